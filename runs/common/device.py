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


def check_device_option(value: object, name: str = "--device") -> str:
    """``value`` if it spells a run device (``cpu``, ``cuda``,
    ``cuda:N`` or ``auto``), else ``ValueError``; whether that device is
    present is :func:`resolve_device`'s question, asked when the run starts."""
    device = str(value)
    if not (device in ("cpu", "auto", "cuda") or device.startswith("cuda:")):
        raise ValueError(f"{name} must be cpu, cuda, cuda:N or auto, got {value!r}")
    return device
