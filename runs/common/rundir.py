"""Run directories and the metrics logger.

``runs/out/<experiment>/<YYYYmmdd-HHMMSS>-s<seed>/`` holds ``config.json``,
``metrics.jsonl``, TensorBoard events (``tb/``), ``checkpoints/`` and ``media/``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from colonylab.runs.common.checkpoint import atomic_write_bytes, save_checkpoint

DEFAULT_ROOT = Path(os.environ.get("COLONY_RUNS_DIR", "runs/out"))


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):
        return obj.item()
    return obj


class MetricsLogger:
    """Scalars to ``metrics.jsonl`` and (optionally) TensorBoard.

    Names are namespaced the CleanRL way: ``charts/...``, ``losses/...``,
    ``emergence/...``.
    """

    def __init__(self, directory: Path, *, tensorboard: bool = True) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._file = open(self.directory / "metrics.jsonl", "a", buffering=1)  # noqa: SIM115
        self._writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(log_dir=str(self.directory / "tb"))
            except ImportError:  # pragma: no cover - tensorboard is a core dependency
                self._writer = None

    def log(self, step: int, scalars: dict[str, float]) -> None:
        """Append one record ``{"step": step, "time": t, **scalars}``."""
        clean = {}
        for key, value in scalars.items():
            value = float(value)
            clean[key] = value if math.isfinite(value) else None
            if self._writer is not None and math.isfinite(value):
                self._writer.add_scalar(key, value, step)
        self._file.write(json.dumps({"step": int(step), "time": time.time(), **clean}) + "\n")

    def truncate_after(self, step: int) -> None:
        """Keep only the records with ``step <= step`` in ``metrics.jsonl``."""
        self._file.close()
        path = self.directory / "metrics.jsonl"
        kept = [
            line
            for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step
        ]
        atomic_write_bytes(path, "".join(f"{line}\n" for line in kept).encode())
        self._file = open(path, "a", buffering=1)  # noqa: SIM115

    def close(self) -> None:
        """Flush and close the files."""
        self._file.close()
        if self._writer is not None:
            self._writer.close()


class RunDir:
    """One run's output folder, with its logger.

    Args:
        experiment: experiment name (folder under the root).
        seed: the run's seed (part of the folder name).
        config: the config dataclass (or dict), written to ``config.json``.
        root: parent of all runs (default ``runs/out`` or ``$COLONY_RUNS_DIR``).
        tensorboard: also write TensorBoard events.
        resume: an existing run directory to continue (``--resume``): its files are
            reused; call :meth:`truncate_metrics` with the step of the checkpoint
            resumed from, so that ``metrics.jsonl`` ends as the uninterrupted run's.
    """

    def __init__(
        self,
        experiment: str,
        seed: int,
        config: Any = None,
        *,
        root: str | Path | None = None,
        tensorboard: bool = True,
        resume: str | Path | None = None,
    ) -> None:
        if resume is not None:
            path = Path(resume)
            if not path.is_dir():
                raise FileNotFoundError(f"--resume {str(path)!r}: no such run directory")
        else:
            root = Path(root) if root is not None else DEFAULT_ROOT
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = root / experiment / f"{stamp}-s{seed}"
            n = 1
            while path.exists():
                n += 1
                path = root / experiment / f"{stamp}-s{seed}-{n}"
        self.path = path
        self.checkpoints = path / "checkpoints"
        self.media = path / "media"
        for d in (self.path, self.checkpoints, self.media):
            d.mkdir(parents=True, exist_ok=True)
        if config is not None:
            text = json.dumps(_jsonable(config), indent=2, sort_keys=True)
            atomic_write_bytes(path / "config.json", text.encode())
        self.logger = MetricsLogger(path, tensorboard=tensorboard)

    def truncate_metrics(self, step: int) -> None:
        """Drop the ``metrics.jsonl`` records logged after ``step`` (a resumed run logs
        them again)."""
        self.logger.truncate_after(step)

    def log(self, step: int, scalars: dict[str, float]) -> None:
        """Log scalars (see :class:`MetricsLogger`)."""
        self.logger.log(step, scalars)

    def save_checkpoint(self, name: str, state: dict[str, Any]) -> Path:
        """Atomically write ``checkpoints/<name>.pt``."""
        return save_checkpoint(self.checkpoints / f"{name}.pt", state)

    def close(self) -> None:
        """Close the logger."""
        self.logger.close()

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
