"""Experiment ``cartpole-pso``: an MLP policy for CartPole-v1 found by particle swarm
optimization through the batched population evaluator.

Every particle is a flat vector of the policy's weights (``4 -> 16 -> 2``, tanh,
argmax actions: 114 numbers). Each generation the whole swarm is evaluated in one
:class:`~colonylab.collective_ml.population.BatchedEvaluator` call: ``pop_size x
episodes`` carts of :class:`~colonylab.envs.classic.VecCartPole` stepped together, one
``vmap``-ed forward per step. The training episodes are the same every generation
(PSO's memories stay comparable: the objective is deterministic) and the same for every
particle. The swarm's best is validated on 100 fresh episodes; training stops once that
mean reaches 475 (CartPole-v1's criterion). ``colony eval`` then scores the checkpoint
on Gymnasium's own ``CartPole-v1``.

Writes ``checkpoints/cartpole_pso.pt``, ``metrics.jsonl`` (``charts/fitness_*``,
``charts/validation_mean``) and ``media/training.png``.

    colony train cartpole-pso
    colony eval cartpole-pso --json eval.json     # the shipped checkpoint, 100 episodes
    colony watch cartpole-pso
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from colonylab.collective_ml.base import PopulationOptimizer
from colonylab.collective_ml.pso import BOUNDARIES, PSO, TOPOLOGIES
from colonylab.envs.classic.cartpole import CartPoleWorld
from colonylab.runs.common.policies import (
    CartPoleTrainConfig,
    TrainResult,
    evaluate_checkpoint,
    run_experiment,
    watch_world,
)

EXPERIMENT = "cartpole-pso"
SHIPPED = "cartpole_pso.pt"


@dataclass(frozen=True)
class Config(CartPoleTrainConfig):
    """Train an MLP CartPole-v1 policy with particle swarm optimization."""

    bound: float = 2.0
    """Particles live in [-bound, bound] in every weight."""
    topology: str = "ring"
    """Swarm topology: gbest, ring, von_neumann or random."""
    velocity_clamp: float | None = 0.25
    """Largest speed per generation as a fraction of 2 * bound (None: no clamp)."""
    boundary: str = "reflect"
    """What happens at the bounds: clamp, reflect, periodic or random."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.bound > 0:
            raise ValueError(f"--bound must be > 0, got {self.bound}")
        if self.topology not in TOPOLOGIES:
            raise ValueError(
                f"--topology must be one of {', '.join(TOPOLOGIES)}, got {self.topology!r}"
            )
        if self.boundary not in BOUNDARIES:
            raise ValueError(
                f"--boundary must be one of {', '.join(BOUNDARIES)}, got {self.boundary!r}"
            )
        if self.topology != "gbest" and self.pop_size < 3:
            raise ValueError(f"--topology {self.topology} needs --pop-size >= 3")


def _make_core(cfg: Config):
    def make(dim: int, initial: Tensor, device: torch.device) -> PopulationOptimizer:
        return PSO(
            dim,
            cfg.pop_size,
            bounds=(-cfg.bound, cfg.bound),
            topology=cfg.topology,
            boundary=cfg.boundary,
            velocity_clamp=cfg.velocity_clamp,
            seed=cfg.seed,
            device=device,
            maximize=True,
        )

    return make


def _solution(core: PopulationOptimizer) -> Tensor:
    return core.best.params


def main(cfg: Config) -> TrainResult:
    """Train until solved (or ``generations``), save the checkpoint and the plot."""
    return run_experiment(
        cfg,
        EXPERIMENT,
        _make_core(cfg),
        _solution,
        resample_episodes=False,
        algorithm=f"PSO, {cfg.topology}, {cfg.pop_size} particles",
    )


def evaluate(cfg: Config, checkpoint: str | None = None) -> dict[str, Any]:
    """``colony eval cartpole-pso``: mean / sd return over ``eval_episodes`` episodes of
    Gymnasium's CartPole-v1 (``solved``: mean >= 475)."""
    return evaluate_checkpoint(cfg, checkpoint, EXPERIMENT, SHIPPED)


def watch(cfg: Config, checkpoint: str | None = None) -> CartPoleWorld:
    """``colony watch cartpole-pso``: carts driven by the policy, restarting when they fall."""
    return watch_world(cfg, checkpoint, EXPERIMENT, SHIPPED)


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
