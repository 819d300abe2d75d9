"""Saving and loading neural-CA checkpoints (shared by ``nca-grow`` and ``nca-digits``).

A checkpoint is a dict loadable with ``torch.load(weights_only=True)``::

    {"format": "colonylab-nca/1", "experiment": "nca-grow", "nca_config": {...},
     "state_dict": {...}, "meta": {"command": ..., "config": {...}, ...}, ...extra}

Loading checks the format, the experiment and the architecture, and says what is
wrong in one line (``ValueError``) instead of a torch traceback.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from colonylab.agents.nca import NCA, NCAConfig
from colonylab.runs.common.checkpoint import read_torch_file, save_checkpoint

FORMAT = "colonylab-nca/1"
SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints"


def shipped_checkpoint(name: str) -> Path:
    """Path of a checkpoint shipped with the package (``runs/checkpoints/<name>``)."""
    return SHIPPED / name


def save_nca(path: str | Path, model: NCA, experiment: str, meta: dict, **extra: Any) -> Path:
    """Write ``model`` with its architecture, the run's ``meta`` (command, config) and
    ``extra`` tensors or plain values (e.g. the target image)."""
    payload = {
        "format": FORMAT,
        "experiment": experiment,
        "nca_config": asdict(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": meta,
        **extra,
    }
    return save_checkpoint(path, payload)


def read_nca_checkpoint(path: str | Path, experiment: str) -> dict[str, Any]:
    """The payload of an NCA checkpoint of ``experiment``, checked.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a torch file, not an NCA checkpoint, or one of another experiment.
    """
    path = Path(path)
    payload = read_torch_file(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(
            f"{str(path)!r} is not a Colony Lab NCA checkpoint (format {FORMAT!r}); "
            "make one with 'colony train nca-grow' or 'colony train nca-digits'"
        )
    if payload.get("experiment") != experiment:
        raise ValueError(
            f"{str(path)!r} is a checkpoint of {payload.get('experiment')!r}, not {experiment!r}"
        )
    return payload


def nca_from_payload(payload: dict[str, Any], path: str | Path = "checkpoint") -> NCA:
    """Build the NCA a checkpoint describes and load its weights.

    Raises:
        ValueError: an unknown architecture field or weights of another shape.
    """
    known = {f.name for f in fields(NCAConfig)}
    cfg = payload.get("nca_config", {})
    unknown = set(cfg) - known
    if unknown:
        raise ValueError(f"{str(path)!r}: unknown NCA architecture fields {sorted(unknown)}")
    model = NCA(NCAConfig(**cfg))
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError) as exc:
        raise ValueError(
            f"{str(path)!r}: weights do not fit the architecture {cfg}: "
            f"{str(exc).splitlines()[0][:300]}"
        ) from None
    return model


def load_nca(path: str | Path, experiment: str) -> tuple[NCA, dict[str, Any]]:
    """``(model, payload)`` from an NCA checkpoint of ``experiment`` (see the module doc)."""
    payload = read_nca_checkpoint(path, experiment)
    return nca_from_payload(payload, path), payload
