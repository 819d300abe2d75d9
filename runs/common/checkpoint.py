"""One checkpoint format for every run, written atomically, read with ``weights_only=True``.

A checkpoint is one dict, the same keys for every kind::

    {
      "format": "colonylab-checkpoint", "version": 1,
      "kind": "nca-grow",                 # what wrote it: an experiment's name
      "spec": {"type": "nca", ...},       # the model's spec (agents.build(spec) rebuilds it)
      "state_dict": {...},                # the model's weights (tensors)
      "config": {...},                    # the experiment's Config, as plain values
      "trainer": {...},                   # optimizer / core / loop state, for --resume
      "rng": {...},                       # Python, NumPy, torch (and CUDA) generator states
      "provenance": {"command": "colony train nca-grow --steps 8000", "commit": "...",
                     "seed": 0, "date": "...", "metrics": {...}},
      "extra": {...},                     # anything else the experiment needs (a target image)
    }

Everything in it is a tensor, a number, a string, None, or a list / tuple / dict of
those, so ``torch.load(path, weights_only=True)`` reads it and nothing is unpickled
freely. A file that is missing, not a torch file, not a checkpoint, or a checkpoint
of another kind is refused by :func:`load_checkpoint` with one line that names the
path and what was expected (:class:`CheckpointError`, a ``ValueError``).
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import os
import random
import shlex
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "colonylab-checkpoint"
VERSION = 1
KEYS = ("spec", "state_dict", "config", "trainer", "rng", "provenance", "extra")


class CheckpointError(ValueError):
    """A file that cannot be used as the checkpoint asked for (the message is one line)."""


# -- atomic writes ----------------------------------------------------------------------------
def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a temp file beside ``path``, fsync, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the permissions a plain open would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def plain(obj: Any) -> Any:
    """``obj`` with NumPy arrays as tensors, NumPy scalars as Python numbers, dataclasses
    and Paths as dicts / strings: what ``weights_only=True`` can read back."""
    import torch

    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu() if obj.device.type != "cpu" or obj.requires_grad else obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v) for v in obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """``torch.save`` ``state`` atomically (temp file + rename); arrays become tensors."""
    import torch

    buffer = io.BytesIO()
    torch.save(plain(state), buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def read_torch_file(path: str | Path, map_location: str = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``, with a one-line error for a missing,
    truncated or non-torch file (:class:`CheckpointError`; ``FileNotFoundError`` when absent)."""
    import torch

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {str(path)!r} is a directory, expected a .pt file")
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] != b"PK" and head[:1] != b"\x80":  # a zip archive, or a legacy pickle
        raise CheckpointError(
            f"{str(path)!r} is not a readable checkpoint: not a torch file (it starts with {head!r}; "
            "expected a .pt file written by 'colony train')"
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # the unpickler raises many kinds on a damaged file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CheckpointError(
            f"{str(path)!r} is not a readable checkpoint (corrupt, truncated or not a torch "
            f"file): {first}"
        ) from None


# -- the format -------------------------------------------------------------------------------
def make_checkpoint(
    kind: str,
    *,
    spec: dict[str, Any] | None = None,
    state_dict: Mapping[str, Any] | None = None,
    config: Any = None,
    trainer: dict[str, Any] | None = None,
    rng: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The checkpoint dict (see the module docstring); weights are detached to the CPU."""
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"kind must be a non-empty string, got {kind!r}")
    weights = None
    if state_dict is not None:
        weights = {k: v.detach().cpu().clone() for k, v in state_dict.items()}
    return {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "spec": dict(spec) if spec is not None else None,
        "state_dict": weights,
        "config": plain(config) if config is not None else None,
        "trainer": trainer,
        "rng": rng,
        "provenance": dict(provenance or {}),
        "extra": dict(extra or {}),
    }


def load_checkpoint(
    path: str | Path, kind: str | Iterable[str] | None = None, map_location: str = "cpu"
) -> dict[str, Any]:
    """Read and check a checkpoint of ``kind`` (one name, several, or None for any).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: not a torch file, not a Colony Lab checkpoint, a newer
            version, or a checkpoint of another kind; the message names the path and
            what was expected.
    """
    path = Path(path)
    payload = read_torch_file(path, map_location)
    kinds = (kind,) if isinstance(kind, str) else tuple(kind) if kind is not None else None
    wanted = f"a {' or '.join(repr(k) for k in kinds)} checkpoint" if kinds else "a checkpoint"
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{str(path)!r} is not a Colony Lab checkpoint (expected {wanted} in format "
            f"{FORMAT!r} v{VERSION}, as 'colony train' writes)"
        )
    version = payload.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(
            f"{str(path)!r} has checkpoint version {version!r}; this Colony Lab reads up to "
            f"v{VERSION} (upgrade colonylab)"
        )
    if kinds is not None and payload.get("kind") not in kinds:
        raise CheckpointError(
            f"{str(path)!r} is a {payload.get('kind')!r} checkpoint, expected {wanted}"
        )
    for key in KEYS:
        payload.setdefault(key, None)
    return payload


# -- provenance -------------------------------------------------------------------------------
def git_commit(cwd: str | Path | None = None) -> str | None:
    """The commit of the source tree this package runs from (None outside a git checkout)."""
    here = Path(cwd) if cwd is not None else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) == 40 else None


def _flag_values(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value] if value else []
    if isinstance(value, Path):
        return [str(value)]
    return [str(value)]


def config_flags(cfg: Any, default: Any = None, prefix: str = "") -> list[str]:
    """The tyro flags that turn ``type(cfg)()`` (or ``default``) into ``cfg``.

    Nested dataclass fields become ``--outer.inner VALUE``; only fields that differ
    from the default are written, so the command stays short and readable.
    """
    if default is None:
        default = type(cfg)()
    flags: list[str] = []
    for f in dataclasses.fields(cfg):
        value, base = getattr(cfg, f.name), getattr(default, f.name, None)
        name = f"{prefix}{f.name.replace('_', '-')}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            flags += config_flags(value, base, prefix=f"{name}.")
        elif value != base:
            flags += [f"--{name}", *_flag_values(value)]
    return flags


def reproduce_command(verb_and_name: str, cfg: Any = None, default: Any = None) -> str:
    """``colony train EXPERIMENT --flag value ...``: the command that rebuilds ``cfg``.

    Args:
        verb_and_name: e.g. ``"train nca-grow"``.
        cfg: the run's Config dataclass (None: no options).
        default: the config the flags are relative to (default: ``type(cfg)()``).
    """
    flags = config_flags(cfg, default) if cfg is not None else []
    return shlex.join(["colony", *verb_and_name.split(), *flags])


def config_from_plain(cls: type, values: Mapping[str, Any] | None) -> Any:
    """Rebuild a (possibly nested) Config dataclass from what :func:`plain` made of it.

    Lists become tuples where the default is a tuple; unknown keys are refused
    (:class:`CheckpointError`) so that a checkpoint of another experiment's Config is
    not half-applied.
    """
    import typing

    values = dict(values or {})
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):  # a class defined in a function: use the defaults only
        hints = {}
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise CheckpointError(
            f"the checkpoint's config has fields {unknown} that {cls.__name__} lacks"
        )
    default = cls()
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        base = getattr(default, name)
        hint = hints.get(name)
        if dataclasses.is_dataclass(base) and isinstance(value, Mapping):
            kwargs[name] = config_from_plain(type(base), value)
        elif (
            isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, Mapping)
        ):
            kwargs[name] = config_from_plain(hint, value)
        elif isinstance(value, list):
            kwargs[name] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def provenance(
    command: str,
    *,
    seed: int | None = None,
    metrics: Mapping[str, Any] | None = None,
    **more: Any,
) -> dict[str, Any]:
    """The ``provenance`` entry: command, commit, seed, UTC date, headline metrics."""
    return {
        "command": command,
        "commit": git_commit(),
        "seed": seed,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "metrics": plain(dict(metrics or {})),
        **plain(more),
    }


# -- generator states -------------------------------------------------------------------------
def rng_states() -> dict[str, Any]:
    """The global generators' states (Python, NumPy legacy, torch CPU and CUDA)."""
    import torch

    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()  # noqa: NPY002
    states: dict[str, Any] = {
        "python": [py_version, list(py_state), py_gauss],
        "numpy": [
            np_name,
            torch.from_numpy(np_keys.astype(np.int64)),
            np_pos,
            np_has_gauss,
            np_gauss,
        ],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_states` saved (missing entries are left alone)."""
    import torch

    if "python" in states:
        version, state, gauss = states["python"]
        random.setstate((version, tuple(int(v) for v in state), gauss))
    if "numpy" in states:
        name, keys, pos, has_gauss, gauss = states["numpy"]
        np.random.set_state(  # noqa: NPY002
            (
                name,
                np.asarray(keys, dtype=np.int64).astype(np.uint32),
                int(pos),
                int(has_gauss),
                float(gauss),
            )
        )
    if "torch" in states:
        torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def generator_state(generator: np.random.Generator) -> dict[str, Any]:
    """A NumPy ``Generator``'s bit-generator state as plain values."""
    return plain(generator.bit_generator.state)


def set_generator_state(generator: np.random.Generator, state: Mapping[str, Any]) -> None:
    """Restore what :func:`generator_state` saved."""
    generator.bit_generator.state = {
        k: (dict(v) if isinstance(v, Mapping) else v) for k, v in state.items()
    }


# -- run directories: where --resume finds its checkpoint ----------------------------------------
LATEST = "latest.pt"
"""Every trainer writes its resumable state to ``RUN_DIR/checkpoints/latest.pt``."""


def latest_checkpoint(run_dir: str | Path) -> Path:
    """The checkpoint ``--resume RUN_DIR`` continues from (``RUN_DIR`` may also be the
    checkpoint file itself).

    Raises:
        FileNotFoundError: no such run directory or no ``checkpoints/latest.pt`` in it.
    """
    run_dir = Path(run_dir)
    if run_dir.is_file():
        return run_dir
    if not run_dir.is_dir():
        raise FileNotFoundError(f"--resume {str(run_dir)!r}: no such run directory")
    path = run_dir / "checkpoints" / LATEST
    if not path.exists():
        raise FileNotFoundError(
            f"--resume {str(run_dir)!r}: no checkpoints/{LATEST} in it (was the run started "
            "by 'colony train' and did it reach its first checkpoint?)"
        )
    return path
