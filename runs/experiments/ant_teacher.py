"""Experiment ``ant-teacher``: a walking policy for the vectorized Ant, found by PGPE.

The teacher that an AttentionNeuron agent (Tang & Ha 2021) is later cloned from: a
small tanh network on the 27 observations of :class:`~colonylab.envs.mujoco.VecAnt`
(Gymnasium ``Ant-v5``), the observations normalised by fixed statistics
(``(obs - mean) / std``), the outputs squashed to ``[-1, 1]`` by tanh. ``hidden=0`` is
a linear policy (ARS's choice for MuJoCo walkers: 224 numbers), ``hidden=32`` a
``27 -> 32 -> 8`` MLP.

PGPE with ClipUp (:class:`~colonylab.collective_ml.es.PGPE`) searches the weights;
each generation the whole population runs in one
:class:`~colonylab.collective_ml.population.BatchedEvaluator` call on ``train_steps``-
step episodes that start from the same, freshly drawn states for every candidate.
The normalisation statistics come from a short rollout of random actions and stay
fixed (refreshing them from rollouts of a standing policy shrank the velocities' spread
and blew up the normalised inputs). Every
``validate_every`` generations the mean is scored on ``validate_episodes`` full
1000-step episodes; the best validated mean is the teacher. Training stops after
``generations`` or ``time_budget_min`` minutes.

Writes ``metrics.jsonl`` (``charts/train_return``, ``charts/validation_return``, ...)
and ``checkpoints/ant_teacher.pt`` in the run dir, and (``ship=True``)
``runs/checkpoints/ant_teacher.pt``: a plain dict ``{"state_dict", "config",
"validation_return", "generation"}`` (``torch.load(..., weights_only=True)``).

Shipped teacher: the linear policy (224 numbers) of seed 0 with the defaults and
``--time-budget-min 27`` (232 generations, ~27 min on one shared CPU core): return
2249.6 +- 49.0 (mean +- sd, 88 m forward) over 8 episodes of 1000 steps, against
994.3 +- 3.8 (0.0 m) for the zero policy.

    python -m colonylab.runs.experiments.ant_teacher --time-budget-min 30
    python -c "from colonylab.runs.experiments.ant_teacher import load_teacher; act = load_teacher()"
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from colonylab.collective_ml.base import flatten_params, unflatten_into
from colonylab.collective_ml.es import PGPE
from colonylab.collective_ml.population import BatchedEvaluator
from colonylab.envs.mujoco.ant import VecAnt, default_teacher_path
from colonylab.runs.common.checkpoint import read_torch_file, save_checkpoint
from colonylab.runs.common.rundir import RunDir
from colonylab.runs.common.seeding import seed_everything

EXPERIMENT = "ant-teacher"
OBS_DIM, ACT_DIM = VecAnt.obs_dim, VecAnt.action_dim


@dataclass(frozen=True)
class Config:
    """Train a walking Ant teacher with PGPE + ClipUp (Gymnasium Ant-v5 dynamics)."""

    seed: int = 0
    """Seed of the core, the episodes and the normalisation rollout."""
    hidden: int = 0
    """Hidden tanh units (0: a linear policy ``tanh(W x + b)``)."""
    pop_size: int = 48
    """PGPE population (even: antithetic pairs)."""
    generations: int = 1000
    """Generations at most."""
    time_budget_min: float = 30.0
    """Stop training after this many minutes of wall clock."""
    train_steps: int = 300
    """Steps of each training episode (validation always runs 1000)."""
    center_lr: float = 0.02
    """ClipUp step length of the mean."""
    stdev_init: float = 0.025
    """Initial sampling standard deviation of every weight."""
    stdev_lr: float = 0.1
    """Step size of the standard deviations."""
    validate_every: int = 5
    """Generations between validations of the mean."""
    validate_episodes: int = 4
    """1000-step episodes per validation."""
    final_episodes: int = 8
    """1000-step episodes of the final score (teacher and zero policy)."""
    threads: int = 1
    """Torch threads."""
    ship: bool = True
    """Also write the teacher to ``runs/checkpoints/ant_teacher.pt``."""

    def __post_init__(self) -> None:
        for name in ("pop_size", "generations", "train_steps", "validate_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        if self.pop_size % 2:
            raise ValueError(f"--pop-size must be even (antithetic pairs), got {self.pop_size}")
        for name in ("validate_episodes", "final_episodes", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        if self.hidden < 0:
            raise ValueError(f"--hidden must be >= 0, got {self.hidden}")
        if not (self.center_lr > 0 and self.stdev_init > 0 and self.time_budget_min > 0):
            raise ValueError("--center-lr, --stdev-init and --time-budget-min must be > 0")


class TeacherPolicy(nn.Module):
    """``obs (B, 27) -> actions (B, 8)`` in ``[-1, 1]``: normalised observations through
    tanh layers (the format :func:`colonylab.envs.mujoco.ant.mlp_policy_from_checkpoint`
    reads back)."""

    def __init__(self, hidden: int = 0) -> None:
        super().__init__()
        sizes = [OBS_DIM, hidden, ACT_DIM] if hidden else [OBS_DIM, ACT_DIM]
        self.layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.register_buffer("obs_mean", torch.zeros(OBS_DIM))
        self.register_buffer("obs_std", torch.ones(OBS_DIM))

    def forward(self, obs: Tensor) -> Tensor:  # obs: (B, 27)
        x = (obs - self.obs_mean) / self.obs_std
        for layer in self.layers:
            x = torch.tanh(layer(x))
        return x  # (B, 8)


class ObsStats:
    """Running mean / variance of observations (Chan's parallel update)."""

    def __init__(self) -> None:
        self.count, self.mean, self.m2 = 0, np.zeros(OBS_DIM), np.zeros(OBS_DIM)

    def update(self, obs: np.ndarray) -> None:  # obs: (B, 27)
        n = obs.shape[0]
        mean, var = obs.mean(axis=0), obs.var(axis=0)
        total = self.count + n
        delta = mean - self.mean
        self.m2 += var * n + delta**2 * self.count * n / total
        self.mean += delta * n / total
        self.count = total

    def std(self) -> np.ndarray:
        return np.sqrt(self.m2 / max(self.count, 1)).clip(1e-2, None)


@torch.no_grad()
def rollout(
    act: Callable[[Tensor], Tensor], episodes: int, seed: int, steps: int = 1000,
    stats: ObsStats | None = None,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Run ``act`` on ``episodes`` Ant episodes (seeds ``seed .. seed+episodes-1``).

    Returns:
        ``return``, ``distance`` (final torso x minus start x) and ``length`` per episode.
    """
    world = VecAnt(episodes, max_episode_steps=steps, validate_actions=False)
    obs = world.reset(seed=np.arange(seed, seed + episodes))
    start_x = world.qpos[:, 0].copy()
    total = np.zeros(episodes)
    for _ in range(steps):
        if stats is not None:
            stats.update(obs[torch.as_tensor(~world.done)].numpy())
        obs, reward, _, _, _ = world.step(act(obs.float()).double().clamp(-1, 1))
        total += reward.double().numpy()
        if world.done.all():
            break
    return {"return": total, "distance": world.qpos[:, 0] - start_x, "length": world.elapsed}


def _set_stats(policy: nn.Module, stats: ObsStats) -> None:
    policy.obs_mean.copy_(torch.as_tensor(stats.mean, dtype=torch.float32))
    policy.obs_std.copy_(torch.as_tensor(stats.std(), dtype=torch.float32))


def _state(policy: TeacherPolicy, cfg: Config, val: float, gen: int) -> dict[str, Any]:
    return {
        "state_dict": {k: v.detach().clone() for k, v in policy.state_dict().items()},
        "config": dataclasses.asdict(cfg),
        "validation_return": float(val),
        "generation": int(gen),
    }


def main(cfg: Config) -> dict[str, Any]:
    """Train, validate, keep the best mean; score it and the zero policy; save."""
    torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    policy = TeacherPolicy(cfg.hidden)
    with torch.no_grad():
        for layer in policy.layers:
            layer.weight.zero_()
            layer.bias.zero_()
        if cfg.hidden:  # a zero hidden layer would block every gradient-free signal too
            nn.init.normal_(policy.layers[0].weight, std=1.0 / math.sqrt(OBS_DIM))
    stats = ObsStats()
    gen_noise = torch.Generator().manual_seed(cfg.seed)
    rollout(  # random actions: a wide spread of velocities for the normalisation
        lambda o: 0.3 * (2 * torch.rand(o.shape[0], ACT_DIM, generator=gen_noise) - 1),
        8, seed=10_000 + cfg.seed, steps=100, stats=stats,
    )  # fmt: skip
    _set_stats(policy, stats)
    evaluator = BatchedEvaluator(
        policy,
        partial(VecAnt, validate_actions=False),
        episodes=1,
        max_steps=cfg.train_steps,
        seed=cfg.seed,
        shared_episodes=True,
        action_fn=lambda out: out,  # the policy already squashes with tanh
    )
    core = PGPE(
        evaluator.num_params, cfg.pop_size, center_init=flatten_params(policy),
        stdev_init=cfg.stdev_init, center_lr=cfg.center_lr, stdev_lr=cfg.stdev_lr,
        optimizer="clipup", seed=cfg.seed, maximize=True,
    )  # fmt: skip
    run = RunDir(EXPERIMENT, cfg.seed, cfg)
    best = (-math.inf, None, -1)  # (validation return, state, generation)
    start = time.perf_counter()
    deployed = TeacherPolicy(cfg.hidden)
    gen = 0
    for gen in range(1, cfg.generations + 1):
        t0 = time.perf_counter()
        fitness = evaluator(core.ask(), seed=cfg.seed * 100_003 + gen)
        core.tell(fitness)
        scalars = {
            "charts/train_return": float(fitness.mean()),
            "charts/train_return_max": float(fitness.max()),
            "charts/env_steps_per_s": evaluator.last_env_steps / (time.perf_counter() - t0),
            "losses/stdev_mean": float(core.stdev.mean()),
        }
        out_of_time = time.perf_counter() - start > 60 * cfg.time_budget_min
        if gen % cfg.validate_every == 0 or out_of_time or gen == cfg.generations:
            deployed.load_state_dict(evaluator.policy.state_dict())  # its normalisation
            unflatten_into(deployed, core.center)
            val = rollout(deployed, cfg.validate_episodes, seed=1_000_000 + gen)
            score = float(val["return"].mean())
            scalars["charts/validation_return"] = score
            scalars["charts/validation_distance"] = float(val["distance"].mean())
            if score > best[0]:
                best = (score, _state(deployed, cfg, score, gen), gen)
            print(
                f"gen {gen:4d}  train {scalars['charts/train_return']:8.1f}  "
                f"val {score:8.1f} (dist {scalars['charts/validation_distance']:6.2f})  "
                f"{(time.perf_counter() - start) / 60:5.1f} min",
                flush=True,
            )
        run.log(gen, scalars)
        if out_of_time:
            break
    state = best[1]
    run.save_checkpoint("ant_teacher", state)
    if cfg.ship:
        save_checkpoint(default_teacher_path(), state)
    teacher = _module_from_state(state)
    final = rollout(teacher, cfg.final_episodes, seed=2_000_000)
    zero = rollout(lambda o: torch.zeros(o.shape[0], ACT_DIM), cfg.final_episodes, seed=2_000_000)
    summary = {
        "final/teacher_return_mean": float(final["return"].mean()),
        "final/teacher_return_sd": float(final["return"].std()),
        "final/teacher_distance_mean": float(final["distance"].mean()),
        "final/zero_return_mean": float(zero["return"].mean()),
        "final/zero_return_sd": float(zero["return"].std()),
        "final/zero_distance_mean": float(zero["distance"].mean()),
        "final/best_generation": best[2],
        "final/generations": gen,
        "final/minutes": (time.perf_counter() - start) / 60,
    }
    run.log(gen, summary)
    run.close()
    print({k: round(v, 2) for k, v in summary.items()}, f"\nrun dir: {run.path}")
    return {**summary, "run_dir": str(run.path)}


def _module_from_state(state: dict[str, Any]) -> TeacherPolicy:
    module = TeacherPolicy(int(state["config"]["hidden"]))
    module.load_state_dict(state["state_dict"])
    return module.eval()


def load_teacher(path: str | Path | None = None) -> Callable[[Tensor], Tensor]:
    """The teacher as ``obs [N, 27] -> actions [N, 8]`` in ``[-1, 1]`` (float32 math,
    returned in the observation's dtype), from ``path`` (default: the shipped
    ``runs/checkpoints/ant_teacher.pt``)."""
    state = read_torch_file(path if path is not None else default_teacher_path())
    module = _module_from_state(state)

    @torch.no_grad()
    def teacher(obs: Tensor) -> Tensor:
        obs = torch.as_tensor(obs)
        return module(obs.float().cpu()).to(device=obs.device, dtype=obs.dtype)

    return teacher


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
