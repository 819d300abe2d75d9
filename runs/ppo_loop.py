"""The run around :meth:`PPO.fit <colonylab.collective_ml.trainers.ppo.PPO.fit>`: one
function every PPO experiment calls instead of repeating it.

:func:`train_ppo` takes a policy and a task already built (after ``seed_everything``:
their initial weights and worlds are the experiment's business) and does the rest:

- ``resume``: reads ``RUN_DIR/checkpoints/latest.pt`` (or that file itself), loads the
  policy's weights and the global generators' states, continues the run directory
  (``metrics.jsonl`` cut back to the checkpoint's iteration, so it ends as an
  uninterrupted run's), restores PPO's state and hands the rest of the ``trainer``
  entry to ``load_state``;
- the run directory (:class:`~colonylab.runs.common.rundir.RunDir`: ``config.json``,
  ``metrics.jsonl``, TensorBoard, ``checkpoints/``, ``media/``);
- every iteration's record goes to ``log(run, iteration, record)`` (the experiment adds
  its own scalars, validates, saves a best checkpoint with ``run.save(name, metrics)``)
  and then to ``metrics.jsonl`` / TensorBoard;
- ``checkpoints/latest.pt`` every ``checkpoint_every`` iterations and at the end, in the
  one checkpoint format (``runs/common/checkpoint.py``): the policy's spec and weights,
  the experiment's config, ``trainer = {"ppo": ppo.state_dict(), **state()}``, the
  generators, and the command that reproduces the run;
- ``minutes``: stops at the first checkpoint past that much wall time;
- Ctrl-C: the iteration under way finishes, ``latest.pt`` is written (PPO's own
  handling), the run directory is closed, ``finish(run)`` still runs (plots, the
  summary), then ``KeyboardInterrupt`` is raised again.

It imports no world; an experiment keeps only what is its own (the task, its scalars,
its selection of a best checkpoint, its plot)::

    seed_everything(cfg.seed)
    policy, task = build_policy(cfg), Task(cfg)
    best = {"score": None}

    def log(run: PPORun, iteration: int, record: dict[str, float]) -> None:
        record["charts/catch_rate"] = task.drain()
        if record["charts/catch_rate"] > (best["score"] or 0):
            best["score"] = record["charts/catch_rate"]
            run.save("best.pt", metrics={"catch_rate": best["score"]})

    run = train_ppo(
        "my-experiment", policy, task, PPOConfig(rollout_steps=32), cfg,
        iterations=cfg.iterations, seed=cfg.seed, resume=resume, out=cfg.out,
        minutes=cfg.minutes, checkpoint_every=10, log=log,
        state=lambda: {"best": dict(best)},            # saved beside PPO's state
        load_state=lambda s: best.update(s["best"]),   # restored on --resume
        finish=lambda r: plot(r.path / "metrics.jsonl", r.media / "training.png"),
    )
    return {"iterations": run.iteration, "run": str(run.path)}
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from colonylab._checks import check_float, check_int
from colonylab.collective_ml.trainers.ppo import PPO, PPOConfig
from colonylab.runs.common.checkpoint import (
    LATEST,
    latest_checkpoint,
    load_checkpoint,
    make_checkpoint,
    provenance,
    reproduce_command,
    rng_states,
    save_checkpoint,
    set_rng_states,
)
from colonylab.runs.common.rundir import RunDir

__all__ = ["PPORun", "ppo_config", "train_ppo"]


def ppo_config(cfg: Any) -> PPOConfig:
    """The :class:`PPOConfig` of an experiment config with PPO's usual fields
    (``rollout_steps``, ``epochs``, ``minibatches``, ``lr``, ``gamma``, ``gae_lambda``,
    ``entropy_coef``, ``seed``)."""
    return PPOConfig(
        rollout_steps=cfg.rollout_steps, epochs=cfg.epochs, minibatches=cfg.minibatches,
        lr=cfg.lr, gamma=cfg.gamma, gae_lambda=cfg.gae_lambda,
        entropy_coef=cfg.entropy_coef, seed=cfg.seed,
    )  # fmt: skip


@dataclass
class PPORun:
    """What :func:`train_ppo` hands its callbacks and returns."""

    name: str
    """The experiment's name (the checkpoints' kind)."""
    dir: RunDir
    """The run directory (``dir.log``, ``dir.checkpoints``, ``dir.media``)."""
    ppo: PPO
    """The trainer (``ppo.iteration``, ``ppo.history``, ``ppo.state_dict()``)."""
    config: Any
    """The experiment's config (saved in every checkpoint)."""
    command: str
    """The command that reproduces the run (saved in every checkpoint)."""
    seed: int
    state: Callable[[], dict[str, Any]] | None = None
    interrupted: bool = False
    """Stopped by Ctrl-C (``train_ppo`` re-raises after ``finish``)."""
    stopped_by_time: bool = False
    """Stopped by the ``minutes`` limit."""

    @property
    def path(self) -> Path:
        """The run directory's path."""
        return self.dir.path

    @property
    def media(self) -> Path:
        """The run's ``media/`` folder."""
        return self.dir.media

    @property
    def iteration(self) -> int:
        """Iterations completed."""
        return self.ppo.iteration

    def checkpoint(self, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
        """The checkpoint dict of the run as it stands (``metrics`` into its provenance)."""
        policy = self.ppo.policy
        trainer = {"ppo": self.ppo.state_dict(), **(self.state() if self.state else {})}
        spec = policy.spec() if callable(getattr(policy, "spec", None)) else None
        return make_checkpoint(
            self.name, spec=spec, state_dict=policy.state_dict(), config=self.config,
            trainer=trainer, rng=rng_states(),
            provenance=provenance(self.command, seed=self.seed, metrics=metrics),
        )  # fmt: skip

    def save(self, filename: str = LATEST, metrics: dict[str, Any] | None = None) -> Path:
        """Write :meth:`checkpoint` atomically to ``checkpoints/<filename>``."""
        return save_checkpoint(self.dir.checkpoints / filename, self.checkpoint(metrics))


def train_ppo(
    name: str,
    policy: nn.Module,
    task: Any,
    ppo_config: PPOConfig,
    config: Any = None,
    *,
    iterations: int,
    seed: int = 0,
    resume: str | Path | None = None,
    out: str | Path | None = None,
    minutes: float = 0.0,
    checkpoint_every: int = 10,
    log: Callable[[PPORun, int, dict[str, float]], Any] | None = None,
    state: Callable[[], dict[str, Any]] | None = None,
    load_state: Callable[[dict[str, Any]], Any] | None = None,
    finish: Callable[[PPORun], Any] | None = None,
    command: str | None = None,
    tensorboard: bool = True,
    echo: Callable[[str], Any] = print,
    **ppo_kwargs: Any,
) -> PPORun:
    """Train ``policy`` on ``task`` by PPO to ``iterations`` (module doc: what it does).

    Args:
        name: the experiment's name: run folder ``<out>/<name>/...``, checkpoint kind,
            ``colony train <name>`` in the reproduce command.
        policy: the shared network (built, initial weights set).
        task: the worlds in PPO's array protocol.
        ppo_config: PPO's settings.
        config: the experiment's config dataclass (``config.json``, each checkpoint's
            ``config``, the reproduce command's flags).
        iterations: train to this PPO iteration (a resumed run counts from its own).
        seed: the run's seed (folder name, provenance).
        resume: a run directory (or its ``latest.pt``) to continue.
        out: the runs' root (default ``runs/out``).
        minutes: also stop at the first checkpoint after this many minutes (0: none).
        checkpoint_every: write ``latest.pt`` every this many iterations (and at the end).
        log: ``log(run, iteration, record)`` after each iteration; adds to ``record``
            (in place) before it is logged.
        state: the experiment's part of the trainer state (plain values), saved as
            ``trainer[key]`` beside ``trainer["ppo"]``.
        load_state: called with the resumed checkpoint's ``trainer`` dict.
        finish: ``finish(run)`` after training (also after Ctrl-C), the run dir closed.
        command: the reproduce command (default ``colony train <name> <flags of config>``).
        tensorboard: also write TensorBoard events.
        echo: where the run's lines go (``rich``'s ``console.print`` or ``print``).
        **ppo_kwargs: more arguments of :class:`PPO` (``device``, ``ae_config``).

    Returns:
        The :class:`PPORun` (``iteration``, ``path``, ``stopped_by_time``).

    Raises:
        KeyboardInterrupt: on Ctrl-C, after the checkpoint and ``finish``.
        FileNotFoundError, CheckpointError: a ``resume`` without a usable checkpoint.
    """
    check_int("iterations", iterations, 1)
    check_int("checkpoint_every", checkpoint_every, 1)
    check_float("minutes", minutes, 0.0)
    if command is None:
        command = reproduce_command(f"train {name}", config)
    trainer_state = None
    if resume is not None:
        ckpt = load_checkpoint(latest_checkpoint(resume), name)
        policy.load_state_dict(ckpt["state_dict"])
        trainer_state = ckpt["trainer"]
        set_rng_states(ckpt["rng"])
    run_dir = RunDir(name, seed, config, root=out, resume=resume, tensorboard=tensorboard)
    holder: dict[str, PPORun] = {}

    def on_iteration(iteration: int, record: dict[str, float]) -> None:
        if log is not None:
            log(holder["run"], iteration, record)
        run_dir.log(iteration, record)

    ppo = PPO(
        policy, task, ppo_config, log=on_iteration, save=lambda _: holder["run"].save(),
        echo=echo, **ppo_kwargs,
    )  # fmt: skip
    run = holder["run"] = PPORun(name, run_dir, ppo, config, command, seed, state)
    if trainer_state is not None:
        ppo.load_state_dict(trainer_state["ppo"])
        if load_state is not None:
            load_state(trainer_state)
        run_dir.truncate_metrics(ppo.iteration)
    echo(f"{name} -> {run_dir.path}")
    start = time.monotonic()
    try:
        while ppo.iteration < iterations:
            ppo.fit(min(iterations, ppo.iteration + checkpoint_every))
            if minutes and time.monotonic() - start >= 60 * minutes:
                echo(f"time limit: stopping after iteration {ppo.iteration}")
                run.stopped_by_time = True
                break
    except KeyboardInterrupt:
        run.interrupted = True
    run_dir.close()
    if finish is not None:
        finish(run)
    if run.interrupted:
        raise KeyboardInterrupt
    return run
