"""Experiment ``ant-teacher``: a walking policy for the vectorized Ant, found by PGPE.

The teacher that the AttentionNeuron and MLP students of ``sensory-ant`` (Tang & Ha
2021) are cloned from.

===============  ==========================================================================
world            :class:`~colonylab.envs.mujoco.AntWorld` (Gymnasium ``Ant-v5``
                 dynamics, 27 observations, 8 torques in ``[-1, 1]``)
agent            :class:`~colonylab.agents.mlp.LinearPolicy`: observations normalised by
                 fixed statistics (``(obs - mean) / std``), then tanh layers;
                 ``hidden=0`` is linear under one tanh (ARS's choice for MuJoCo walkers:
                 224 numbers), spec ``{"type": "linear", ...}``
core             :class:`~colonylab.collective_ml.es.PGPE` with ClipUp
trainer          :func:`~colonylab.collective_ml.trainers.evolve`
evaluator        ``--evaluator batched`` (default), ``loop`` (Gymnasium's ``Ant-v5``, one
                 by one) or ``ray`` (actors; ``--ray-address`` joins a running cluster)
fitness          return of one ``train_steps``-step episode per candidate, all starting
                 from the same freshly drawn state each generation
validation       the mean on ``validate_episodes`` full 1000-step episodes every
                 ``validate_every`` generations and at the last; the best is the teacher
===============  ==========================================================================

The normalisation statistics come from a short rollout of random actions (seeded) and
stay fixed (refreshing them from rollouts of a standing policy shrank the velocities'
spread and blew up the normalised inputs).

Writes ``metrics.jsonl`` (``charts/fitness_*``, ``charts/validation``,
``charts/validation_distance``, ``losses/stdev_mean``, ``final/*``),
``checkpoints/latest.pt`` (every ``checkpoint_every`` generations, at the end, on
Ctrl-C; ``--resume RUN_DIR`` continues it bit-identically) and
``checkpoints/ant_teacher.pt`` (the teacher, one checkpoint format).

Shipped teacher (``runs/checkpoints/ant_teacher.pt``): ``colony train ant-teacher``, the
linear policy of seed 0 after the default 232 generations (first trained with a 27-minute
time budget, which ended it at generation 232; the defaults now run exactly those
generations, as a wall-clock budget is not reproducible; re-run with this command, 47
minutes on a shared CPU, the weights came out bit-identical): return 2249.6 +- 48.9
(mean +- sd, 88.3 m forward) over 8 episodes of 1000 steps, against 994.3 +- 3.8 (0.0 m)
for the zero policy.

    colony train ant-teacher                       # ~30-50 min on one CPU core
    colony eval ant-teacher --json eval.json       # the shipped teacher, 8 episodes
    colony watch ant-teacher
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from colonylab import agents
from colonylab._checks import check_choice, check_dataclass_ints, check_float
from colonylab.collective_ml.base import flatten_params, unflatten_into
from colonylab.collective_ml.es import PGPE
from colonylab.collective_ml.population import EVALUATORS, make_evaluator
from colonylab.collective_ml.trainers import evolve
from colonylab.envs.mujoco.ant import AntConfig, AntWorld
from colonylab.runs.common.checkpoint import (
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
from colonylab.runs.common.seeding import seed_everything

EXPERIMENT = "ant-teacher"
SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints" / "ant_teacher.pt"
OBS_DIM, ACT_DIM = AntWorld.obs_dim, AntWorld.action_dim
FINAL_SEED = 2_000_000
"""Episodes ``FINAL_SEED ..`` score the teacher (the run's final/* and ``colony eval``)."""


@dataclass(frozen=True)
class Config:
    """Train a walking Ant teacher with PGPE + ClipUp (Gymnasium Ant-v5 dynamics)."""

    seed: int = 0
    """Seed of the core, the episodes and the normalisation rollout."""
    hidden: int = 0
    """Hidden tanh units (0: a linear policy ``tanh(W x + b)``)."""
    pop_size: int = 48
    """PGPE population (even: antithetic pairs)."""
    generations: int = 232
    """Generations (the shipped teacher's run: 232)."""
    time_budget_min: float | None = None
    """Also stop after this many minutes of wall clock (None: no budget; a budget makes
    the run depend on the machine's speed)."""
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
    """1000-step episodes of the final score (teacher and zero policy; ``colony eval``)."""
    evaluator: str = "batched"
    """Population evaluation: batched (one vectorized world), loop (Gymnasium's Ant-v5,
    one candidate after another) or ray (Ray actors)."""
    ray_address: str | None = None
    """With --evaluator ray: a running cluster's address (None: start Ray here)."""
    checkpoint_every: int = 10
    """Write checkpoints/latest.pt every this many generations (and at the end)."""
    watch_envs: int = 4
    """``colony watch``: robots shown."""
    threads: int = 1
    """Torch threads."""
    out: str | None = None
    """Run directory root (default runs/out)."""

    def __post_init__(self) -> None:
        check_dataclass_ints(
            self,
            {"seed": 0, "hidden": 0, "pop_size": 2, "generations": 1, "train_steps": 1,
             "validate_every": 1, "validate_episodes": 1, "final_episodes": 1,
             "checkpoint_every": 1, "watch_envs": 1, "threads": 1},
        )  # fmt: skip
        if self.pop_size % 2:
            raise ValueError(f"--pop-size must be even (antithetic pairs), got {self.pop_size}")
        check_float("--center-lr", self.center_lr, 0, low_open=True)
        check_float("--stdev-init", self.stdev_init, 0, low_open=True)
        check_float("--stdev-lr", self.stdev_lr, 0)
        if self.time_budget_min is not None:
            check_float("--time-budget-min", self.time_budget_min, 0, low_open=True)
        check_choice("--evaluator", self.evaluator, EVALUATORS)
        if self.ray_address is not None and self.evaluator != "ray":
            raise ValueError(f"--ray-address needs --evaluator ray, got {self.evaluator!r}")


def policy_spec(cfg: Config) -> dict[str, Any]:
    """The teacher's spec (``agents.build``)."""
    return {"type": "linear", "obs_dim": OBS_DIM, "act_dim": ACT_DIM, "hidden": cfg.hidden}


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
    world = AntWorld(AntConfig(num_envs=episodes, max_episode_steps=steps,
                               validate_actions=False, autoreset=False))  # fmt: skip
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


def initial_policy(cfg: Config) -> nn.Module:
    """The starting teacher: zero weights (a normal first layer when ``hidden``), and
    normalisation statistics from 8 x 100 steps of seeded random actions."""
    policy = agents.build(policy_spec(cfg))
    with torch.no_grad():
        for layer in policy.layers:
            layer.weight.zero_()
            layer.bias.zero_()
        if cfg.hidden:  # a zero hidden layer would block every gradient-free signal too
            nn.init.normal_(policy.layers[0].weight, std=1.0 / math.sqrt(OBS_DIM))
    stats = ObsStats()
    noise = torch.Generator().manual_seed(cfg.seed)
    rollout(  # random actions: a wide spread of velocities for the normalisation
        lambda o: 0.3 * (2 * torch.rand(o.shape[0], ACT_DIM, generator=noise) - 1),
        8, seed=10_000 + cfg.seed, steps=100, stats=stats,
    )  # fmt: skip
    policy.set_obs_stats(torch.as_tensor(stats.mean), torch.as_tensor(stats.std()))
    return policy


def _squashed(out: Tensor) -> Tensor:
    """The policy already squashes its actions with tanh."""
    return out


def gymnasium_ant():
    """One Gymnasium ``Ant-v5`` with our 27 observations (no contact forces; the loop
    evaluator's world)."""
    import gymnasium as gym

    return gym.make("Ant-v5", include_cfrc_ext_in_observation=False)


def main(cfg: Config, resume: str | None = None) -> dict[str, Any]:
    """Train, validate, keep the best mean; score it and the zero policy; save.

    Args:
        cfg: The run's config.
        resume: A run directory to continue from its ``checkpoints/latest.pt``.
    """
    torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    policy = initial_policy(cfg)
    evaluator = make_evaluator(
        cfg.evaluator, policy, world_factory=AntWorld.factory(validate_actions=False),
        env_factory=gymnasium_ant, episodes=1, max_steps=cfg.train_steps, seed=cfg.seed,
        shared_episodes=True, action_fn=_squashed, ray_address=cfg.ray_address,
    )  # fmt: skip
    core = PGPE(
        flatten_params(policy).numel(), cfg.pop_size, center_init=flatten_params(policy),
        stdev_init=cfg.stdev_init, center_lr=cfg.center_lr, stdev_lr=cfg.stdev_lr,
        optimizer="clipup", seed=cfg.seed, maximize=True,
    )  # fmt: skip

    def teacher(params: Tensor) -> nn.Module:  # the policy with its normalisation
        return unflatten_into(copy.deepcopy(policy), params.to(torch.float32)).eval()

    def validate(params: Tensor, generation: int) -> tuple[float, dict[str, float]]:
        val = rollout(teacher(params), cfg.validate_episodes, seed=1_000_000 + generation)
        return float(val["return"].mean()), {
            "charts/validation_distance": float(val["distance"].mean())
        }

    state = None
    if resume is not None:
        ckpt = load_checkpoint(latest_checkpoint(resume), EXPERIMENT)
        state = ckpt["trainer"]
        set_rng_states(ckpt["rng"])
    run = RunDir(EXPERIMENT, cfg.seed, cfg, root=cfg.out, resume=resume)
    if state is not None:
        run.truncate_metrics(int(state["generation"]))
    command = reproduce_command(f"train {EXPERIMENT}", cfg)

    def checkpoint(trainer: dict[str, Any], metrics: dict[str, Any] | None = None) -> dict:
        best = trainer["best"]["params"] if trainer["best"] else core.center
        return make_checkpoint(
            EXPERIMENT, spec=policy_spec(cfg), state_dict=teacher(best).state_dict(),
            config=cfg, trainer=trainer, rng=rng_states(),
            provenance=provenance(command, seed=cfg.seed, metrics=metrics),
        )  # fmt: skip

    def log(generation: int, scalars: dict[str, float]) -> None:
        run.log(generation, {**scalars, "losses/stdev_mean": float(core.stdev.mean())})
        if "charts/validation" in scalars:
            print(
                f"gen {generation:4d}  train {scalars['charts/fitness_mean']:8.1f}  "
                f"val {scalars['charts/validation']:8.1f} "
                f"(dist {scalars['charts/validation_distance']:6.2f})  "
                f"{scalars['charts/seconds'] / 60:5.1f} min",
                flush=True,
            )

    result = evolve(
        core,
        evaluator,
        cfg.generations,
        seeds=lambda g: cfg.seed * 100_003 + g,
        validate=validate,
        validate_every=cfg.validate_every,
        time_budget_s=None if cfg.time_budget_min is None else 60 * cfg.time_budget_min,
        log=log,
        save=lambda trainer: save_checkpoint(run.checkpoints / "latest.pt", checkpoint(trainer)),
        checkpoint_every=cfg.checkpoint_every,
        resume=state,
    )
    if hasattr(evaluator, "shutdown"):
        evaluator.shutdown()
    scores = score(teacher(result.params), cfg.final_episodes)
    summary = {
        **{f"final/{k}": v for k, v in scores.items() if k != "episodes"},
        "final/best_generation": result.best_generation,
        "final/generations": result.generations,
        "final/minutes": result.seconds / 60,
    }
    run.log(result.generations, summary)
    run.close()
    metrics = {"validation_return": result.score, **summary}
    path = save_checkpoint(run.checkpoints / "ant_teacher.pt", checkpoint(result.state, metrics))
    save_checkpoint(run.checkpoints / "latest.pt", checkpoint(result.state, metrics))
    print({k: round(v, 2) for k, v in summary.items()}, f"\ncheckpoint: {path}")
    return {**summary, "run_dir": str(run.path), "params": result.params}


def score(act: Callable[[Tensor], Tensor], episodes: int) -> dict[str, float]:
    """``act`` and the zero policy on ``episodes`` 1000-step episodes (seeds from
    ``FINAL_SEED``): mean / sd return and mean forward distance."""
    final = rollout(act, episodes, seed=FINAL_SEED)
    zero = rollout(lambda o: torch.zeros(o.shape[0], ACT_DIM), episodes, seed=FINAL_SEED)
    return {
        "teacher_return_mean": float(final["return"].mean()),
        "teacher_return_sd": float(final["return"].std()),
        "teacher_distance_mean": float(final["distance"].mean()),
        "zero_return_mean": float(zero["return"].mean()),
        "zero_return_sd": float(zero["return"].std()),
        "zero_distance_mean": float(zero["distance"].mean()),
        "episodes": episodes,
    }


def load_teacher(path: str | Path | None = None) -> Callable[[Tensor], Tensor]:
    """The teacher as ``obs [N, 27] -> actions [N, 8]`` in ``[-1, 1]`` (float32 math,
    returned in the observation's dtype and device), from ``path`` (default: the
    shipped ``runs/checkpoints/ant_teacher.pt``)."""
    ckpt = load_checkpoint(path if path is not None else SHIPPED, EXPERIMENT)
    module = agents.build(ckpt["spec"])
    module.load_state_dict(ckpt["state_dict"])
    module.eval()

    @torch.no_grad()
    def act(obs: Tensor) -> Tensor:
        obs = torch.as_tensor(obs)
        return module(obs.float().cpu()).to(device=obs.device, dtype=obs.dtype)

    return act


def evaluate(cfg: Config, checkpoint: str | None = None) -> dict[str, Any]:
    """``colony eval ant-teacher``: the teacher and the zero policy on ``final_episodes``
    1000-step episodes."""
    torch.set_num_threads(cfg.threads)
    path = checkpoint if checkpoint is not None else SHIPPED
    command = load_checkpoint(path, EXPERIMENT)["provenance"].get("command", "")
    return {**score(load_teacher(path), cfg.final_episodes), "checkpoint": str(path),
            "command": command}  # fmt: skip


def watch(cfg: Config, checkpoint: str | None = None) -> AntWorld:
    """``colony watch ant-teacher``: robots walking with the teacher (restarting when done)."""
    world = AntWorld(AntConfig(num_envs=cfg.watch_envs, render_envs=cfg.watch_envs))
    world.default_policy = load_teacher(checkpoint)
    world.reset(seed=cfg.seed)
    return world


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
