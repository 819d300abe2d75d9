"""Runs made of stages (train a teacher, clone a student, fine-tune it, ...): which stage
a run is in, its resumable ``latest.pt``, one metrics step axis; and loading trained
models back from their checkpoint files.

Plumbing only (no world, agent or core): the trainers' states, the model builder and
the weights are handed in.

``checkpoints/latest.pt`` of a staged run is the one checkpoint format with
``trainer = {"stage": NAME, "done": [stages finished], "state": the stage trainer's
state, "info": notes so far}`` and ``state_dict`` = the weights the stage started
from, so ``--resume`` skips the finished stages (their products are files in the run
directory), rebuilds the stage's start and hands its trainer the saved state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from colonylab.runs.common.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    make_checkpoint,
    rng_states,
    save_checkpoint,
    set_rng_states,
)
from colonylab.runs.common.rundir import RunDir

__all__ = ["Stages", "load_model", "model_files"]


class Stages:
    """The stages of one run and its ``latest.pt``.

    Args:
        run: the run directory (reopened with ``resume``).
        kind: the experiment's name (the checkpoint's ``kind``).
        config: the run's Config (saved in ``latest.pt``).
        sizes: ``{stage: most steps}`` in the order the stages run; each stage logs
            on steps after the previous stages' maxima.
        resume: the run directory to continue (None: a new run).
    """

    def __init__(
        self,
        run: RunDir,
        kind: str,
        config: Any,
        sizes: Mapping[str, int],
        resume: str | Path | None = None,
    ) -> None:
        self.run, self.kind, self.config = run, kind, config
        names = list(sizes)
        self.offsets = {s: sum(sizes[t] for t in names[: names.index(s)]) for s in names}
        self.stage: str | None = None
        self.spec: dict | None = None
        self.start: dict[str, Any] | None = None
        self.info: dict[str, Any] = {}
        self.saved = load_checkpoint(latest_checkpoint(resume), kind) if resume else None
        self.done: list[str] = list(self.saved["trainer"]["done"]) if self.saved else []
        if self.saved is not None:
            trainer = self.saved["trainer"]
            if trainer["stage"] not in self.offsets:
                raise CheckpointError(
                    f"--resume {str(resume)!r}: its stage {trainer['stage']!r} is not one of "
                    f"this run's ({', '.join(names)})"
                )
            inner = trainer["state"] or {}
            step = int(inner.get("generation", inner.get("iteration", 0)))
            run.truncate_metrics(self.offsets[trainer["stage"]] + step)

    def resuming(self, stage: str) -> dict[str, Any] | None:
        """The saved trainer state when the run stopped in ``stage`` (and restore the
        RNGs as they were then); else None."""
        if self.saved is None or self.saved["trainer"]["stage"] != stage:
            return None
        set_rng_states(self.saved["rng"])
        return self.saved["trainer"]["state"]

    @property
    def saved_start(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(weights, info)`` the resumed stage started from."""
        assert self.saved is not None
        return self.saved["state_dict"], dict(self.saved["trainer"]["info"] or {})

    def begin(self, stage: str, spec: dict, model: Any, info: Mapping[str, Any]) -> None:
        """``stage`` starts from ``model`` (built from ``spec``) with notes ``info``."""
        self.stage, self.spec, self.info = stage, dict(spec), dict(info)
        self.start = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def finish(self, stage: str) -> None:
        self.done.append(stage)

    def save(self, state: dict[str, Any]) -> Path:
        """Write ``latest.pt`` with the stage trainer's ``state`` (a trainer's ``save``)."""
        trainer = {"stage": self.stage, "done": list(self.done), "state": state, "info": self.info}
        ckpt = make_checkpoint(
            self.kind,
            spec=self.spec,
            state_dict=self.start,
            config=self.config,
            trainer=trainer,
            rng=rng_states(),
        )
        return save_checkpoint(self.run.checkpoints / "latest.pt", ckpt)

    def log(self, step: int, record: Mapping[str, float]) -> None:
        """Log a stage's record (``stage/name`` scalars) on the run's step axis."""
        stage = self.stage or ""
        self.run.log(
            self.offsets.get(stage, 0) + step, {f"{stage}/{k}": v for k, v in record.items()}
        )


def load_model(path: str | Path, kind: str, build: Callable[[dict], Any]) -> tuple[Any, dict]:
    """``(model in eval mode, checkpoint)`` from a ``kind`` checkpoint, the model made by
    ``build(ckpt["spec"])`` (e.g. :func:`colonylab.agents.build`); one-line
    :class:`CheckpointError` when the weights do not fit the spec."""
    ckpt = load_checkpoint(path, kind)
    try:
        model = build(ckpt["spec"])
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, RuntimeError, ValueError, AttributeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CheckpointError(
            f"{str(path)!r}: weights do not fit {ckpt['spec']}: {first}"
        ) from None
    return model.eval(), ckpt


def model_files(
    checkpoint: str | Path | None, default: Path, names: Mapping[str, str]
) -> dict[str, Path]:
    """``{key: path}`` of the files ``names`` (``{key: file name}``) in the directory
    ``checkpoint`` (None: ``default``), or the one of them that ``checkpoint`` names.

    Raises:
        ValueError: ``checkpoint`` is neither such a directory nor one of those files.
    """
    root = Path(checkpoint) if checkpoint else default
    if root.is_dir():
        return {key: root / name for key, name in names.items()}
    files = {key: root for key, name in names.items() if root.name == name}
    if not files:
        raise ValueError(
            f"{str(root)!r}: give a directory holding {' and '.join(names.values())}, or one "
            "of those files"
        )
    return files
