"""``--device auto|cpu|cuda[:N]|mps`` to a torch device."""

from __future__ import annotations


def resolve_device(device: str = "auto"):
    """The torch device a run should use.

    ``auto`` picks CUDA when present, then Apple's MPS, then the CPU. An explicit
    device that is not available is refused with the list of those that are.
    """
    import torch

    available = ["cpu"]
    if torch.cuda.is_available():
        available += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        available.append("mps")
    if device == "auto":
        return torch.device(
            "cuda" if "cuda" in available else "mps" if "mps" in available else "cpu"
        )
    if device not in available:
        raise ValueError(
            f"device {device!r} is not available here; available: {', '.join(available)} "
            "(or 'auto')"
        )
    return torch.device(device)
