"""Experiment ``cartpole-pgpe``: an MLP policy for CartPole-v1 found by PGPE with the
ClipUp optimizer through the batched population evaluator.

PGPE keeps a Gaussian over the policy's weights (``4 -> 16 -> 2``, tanh, argmax
actions: 114 numbers), samples antithetic pairs ``mu +- sigma * z``, and moves the
mean ``mu`` along the rank-weighted differences with ClipUp (a normalised step with
momentum and a speed limit) while adapting ``sigma`` (EvoJAX's workhorse; see
:mod:`colonylab.collective_ml.es`). Each generation the whole population is evaluated
in one :class:`~colonylab.collective_ml.population.BatchedEvaluator` call on new
starts (the same for every candidate of the generation, so each pair is compared on
equal terms). The mean ``mu`` is the policy deployed: it is validated on 100 fresh
episodes every ``validate_every`` generations and training stops once that mean reaches
475 (CartPole-v1's criterion). ``colony eval`` then scores the checkpoint on
Gymnasium's own ``CartPole-v1``.

Writes ``checkpoints/cartpole_pgpe.pt``, ``metrics.jsonl`` and ``media/training.png``.

    colony train cartpole-pgpe
    colony eval cartpole-pgpe --json eval.json    # the shipped checkpoint, 100 episodes
    colony watch cartpole-pgpe
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from colonylab.collective_ml.base import PopulationOptimizer
from colonylab.collective_ml.es import OPTIMIZERS, PGPE
from colonylab.envs.classic.cartpole import CartPoleWorld
from colonylab.runs.common.policies import (
    CartPoleTrainConfig,
    TrainResult,
    evaluate_checkpoint,
    run_experiment,
    watch_world,
)

EXPERIMENT = "cartpole-pgpe"
SHIPPED = "cartpole_pgpe.pt"


@dataclass(frozen=True)
class Config(CartPoleTrainConfig):
    """Train an MLP CartPole-v1 policy with PGPE and ClipUp."""

    optimizer: str = "clipup"
    """Step rule of the mean: clipup, adam or sgd."""
    center_lr: float = 0.15
    """Step size of the mean (ClipUp: the length of each normalised step)."""
    max_speed: float | None = None
    """ClipUp's speed limit (None: 2 * center_lr)."""
    stdev_init: float = 0.1
    """Initial sampling standard deviation of every weight."""
    stdev_lr: float = 0.1
    """Step size of the standard deviations."""
    stdev_max_change: float = 0.2
    """Largest relative change of a standard deviation per generation."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"
            )
        if self.pop_size % 2:
            raise ValueError(
                f"--pop-size must be even (PGPE samples antithetic pairs), got {self.pop_size}"
            )
        for name in ("center_lr", "stdev_init"):
            if not getattr(self, name) > 0:
                raise ValueError(
                    f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)}"
                )
        if self.max_speed is not None and not self.max_speed > 0:
            raise ValueError(f"--max-speed must be > 0 or None, got {self.max_speed}")
        if not self.stdev_lr >= 0:
            raise ValueError(f"--stdev-lr must be >= 0, got {self.stdev_lr}")
        if not 0 < self.stdev_max_change < 1:
            raise ValueError(f"--stdev-max-change must be in (0, 1), got {self.stdev_max_change}")


def _make_core(cfg: Config):
    def make(dim: int, initial: Tensor, device: torch.device) -> PopulationOptimizer:
        return PGPE(
            dim,
            cfg.pop_size,
            center_init=initial.to(device),
            stdev_init=cfg.stdev_init,
            center_lr=cfg.center_lr,
            max_speed=cfg.max_speed,
            stdev_lr=cfg.stdev_lr,
            stdev_max_change=cfg.stdev_max_change,
            optimizer=cfg.optimizer,
            seed=cfg.seed,
            device=device,
            maximize=True,
        )

    return make


def _solution(core: PopulationOptimizer) -> Tensor:
    return core.center  # type: ignore[attr-defined]


def main(cfg: Config) -> TrainResult:
    """Train until solved (or ``generations``), save the checkpoint and the plot."""
    return run_experiment(
        cfg,
        EXPERIMENT,
        _make_core(cfg),
        _solution,
        resample_episodes=True,
        algorithm=f"PGPE + {cfg.optimizer}, population {cfg.pop_size}",
    )


def evaluate(cfg: Config, checkpoint: str | None = None) -> dict[str, Any]:
    """``colony eval cartpole-pgpe``: mean / sd return over ``eval_episodes`` episodes of
    Gymnasium's CartPole-v1 (``solved``: mean >= 475)."""
    return evaluate_checkpoint(cfg, checkpoint, EXPERIMENT, SHIPPED)


def watch(cfg: Config, checkpoint: str | None = None) -> CartPoleWorld:
    """``colony watch cartpole-pgpe``: carts driven by the policy, restarting when they fall."""
    return watch_world(cfg, checkpoint, EXPERIMENT, SHIPPED)


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
