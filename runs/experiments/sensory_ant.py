"""Experiment ``sensory-ant``: an AttentionNeuron agent walks MuJoCo's Ant with its 27
observations shuffled (every 200 steps in the paper; Tang & Ha 2021), against an MLP
that collapses when they are.

As in the paper, both agents learn by behaviour cloning from a trained teacher: the
teacher is the PGPE-trained linear policy of ``python -m colonylab.runs.experiments.ant_teacher`` (shipped as
``runs/checkpoints/ant_teacher.pt``); the students learn with
:func:`colonylab.runs.common.sensory.behaviour_clone` (DART: the teacher drives with
action noise and labels every state it visits, including the recoveries). The
AttentionNeuron (27 sensory neurons, 8 actions fed back) sees the observations
shuffled as in the evaluation; the MLP student sees them in order.

``colony eval sensory-ant`` scores both agents (and the teacher, for reference)
unshuffled, shuffled at reset, shuffled every ``shuffle_every`` steps, and with
pure-noise inputs added (AttentionNeuron only).

    colony train sensory-ant                      # ~20 min on 2 cores
    colony eval sensory-ant --json eval.json
    colony watch sensory-ant                      # x reshuffles, m swaps the agents
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from colonylab.collective_ml.base import flatten_params
from colonylab.collective_ml.population import BatchedEvaluator
from colonylab.envs.mujoco.ant import AntConfig, AntWorld, VecAnt
from colonylab.runs.common.policies import command_line
from colonylab.runs.common.rundir import RunDir
from colonylab.runs.common.seeding import seed_everything
from colonylab.runs.common.sensory import (
    AGENT_LABELS,
    Condition,
    SensoryWatch,
    behaviour_clone,
    build_agent,
    console,
    continuous_actions,
    evaluate_conditions,
    print_rows,
    save_agent,
)
from colonylab.runs.common.sensory import (
    load_agents as load_agents_of,
)
from colonylab.runs.experiments.ant_teacher import load_teacher

EXPERIMENT = "sensory-ant"
OBS_DIM = 27
ACT_DIM = 8


@dataclass(frozen=True)
class Config:
    """Clone an AttentionNeuron and an MLP from the Ant teacher; evaluate both with
    shuffled and noisy inputs."""

    teacher: str | None = None
    """Teacher checkpoint (default: the shipped runs/checkpoints/ant_teacher.pt)."""
    max_steps: int = 1000
    """Steps per evaluation episode (Ant-v5: 1000)."""
    train_steps: int = 500
    """Steps per cloning episode."""
    train_shuffle_every: int | None = 200
    """The AttentionNeuron learns with its inputs re-shuffled every this many steps
    (None: shuffled at reset only)."""
    bc_iterations: int = 14
    """Cloning iterations (each plays ``bc_envs`` new episodes)."""
    bc_envs: int = 32
    """Episodes per cloning iteration."""
    bc_epochs: int = 6
    """Passes over the kept rollouts per iteration."""
    bc_replay: int = 6
    """Rollouts kept for training."""
    bc_lr: float = 3e-3
    """Adam learning rate."""
    bc_teacher_noise: float = 0.2
    """Noise on the teacher's executed actions (DART)."""
    num_queries: int = 32
    """AttentionNeuron: fixed queries (rows of the latent)."""
    key_dim: int = 16
    """AttentionNeuron: width of queries and keys."""
    hidden_dim: int = 8
    """AttentionNeuron: LSTM width of every sensory neuron."""
    head_hidden: int = 32
    """AttentionNeuron: hidden units of the action head."""
    mlp_hidden: tuple[int, ...] = (32, 32)
    """MLP student: hidden layer sizes."""
    validate_episodes: int = 8
    """Episodes per validation of a student."""
    eval_episodes: int = 8
    """``colony eval``: episodes per agent and condition."""
    eval_seed: int = 2024
    """``colony eval``: base seed of its episodes and shuffles."""
    shuffle_every: int = 200
    """``colony eval``: K of the "shuffled every K steps" condition (the paper: 200)."""
    noise_channels: int = 16
    """``colony eval``: pure-noise inputs added in the noise condition."""
    watch_envs: int = 2
    """``colony watch``: robots shown."""
    seed: int = 0
    """Seed of the students, the episodes and the shuffles."""
    threads: int | None = 1
    """Torch CPU threads (None: torch's default)."""
    out: str | None = None
    """Run directory root (default runs/out)."""

    def __post_init__(self) -> None:
        for name, low in (
            ("max_steps", 1),
            ("train_steps", 1),
            ("bc_iterations", 1),
            ("bc_envs", 1),
            ("bc_epochs", 1),
            ("bc_replay", 1),
            ("validate_episodes", 1),
            ("eval_episodes", 1),
            ("shuffle_every", 1),
            ("noise_channels", 1),
            ("watch_envs", 1),
            ("seed", 0),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(
                    f"--{name.replace('_', '-')} must be an integer >= {low}, got {value!r}"
                )
        if self.train_shuffle_every is not None and self.train_shuffle_every < 1:
            raise ValueError(
                f"--train-shuffle-every must be >= 1 or None, got {self.train_shuffle_every}"
            )
        if not self.bc_lr > 0 or not self.bc_teacher_noise >= 0:
            raise ValueError("--bc-lr must be > 0 and --bc-teacher-noise >= 0")


def agent_spec(cfg: Config, kind: str) -> dict[str, Any]:
    if kind == "attention":
        return {
            "kind": "attention",
            "act_dim": ACT_DIM,
            "num_queries": cfg.num_queries,
            "key_dim": cfg.key_dim,
            "hidden_dim": cfg.hidden_dim,
            "head_hidden": cfg.head_hidden,
        }
    return {
        "kind": "mlp",
        "input_shape": [OBS_DIM],
        "act_dim": ACT_DIM,
        "hidden": list(cfg.mlp_hidden),
    }


def world_factory(max_steps: int):
    return partial(VecAnt, dtype=torch.float32, max_episode_steps=max_steps, validate_actions=False)


def conditions(cfg: Config) -> list[Condition]:
    return [
        Condition("unshuffled"),
        Condition("shuffled at reset", shuffle=0),
        Condition(f"shuffled every {cfg.shuffle_every} steps", shuffle=cfg.shuffle_every),
        Condition(
            f"+{cfg.noise_channels} noise channels, shuffled", shuffle=0, noise=cfg.noise_channels
        ),
    ]


def _mlp_condition(condition: Condition) -> Condition | None:
    return None if condition.noise else condition


def checkpoint_name(kind: str) -> str:
    return f"sensory_ant_{kind}.pt"


def _clone(cfg: Config, kind: str, run: RunDir) -> tuple[torch.nn.Module, dict[str, Any]]:
    spec = agent_spec(cfg, kind)
    seed_everything(cfg.seed)
    student = build_agent(spec)
    teacher_policy = load_teacher(cfg.teacher)
    every = cfg.train_shuffle_every if kind == "attention" else None
    condition = (
        Condition("train", shuffle=every or 0) if kind == "attention" else Condition("train")
    )
    base = world_factory(cfg.train_steps)

    def make(num_envs: int, device: Any = None, seed: int = cfg.seed) -> Any:
        return condition.wrap(base(num_envs=num_envs, device=device), seed)

    def teacher(world: VecAnt) -> torch.Tensor:
        return teacher_policy(world.observe().float())

    def validate(policy: torch.nn.Module) -> float:
        evaluator = BatchedEvaluator(
            policy,
            partial(make, seed=cfg.seed + 1),
            episodes=cfg.validate_episodes,
            max_steps=cfg.train_steps,
            seed=cfg.seed + 7919,
            shared_episodes=True,
            action_fn=continuous_actions,
        )
        return float(evaluator(flatten_params(policy)[None]).mean())

    result = behaviour_clone(
        student,
        lambda n: make(num_envs=n),
        teacher,
        label=f"{kind} (BC)",
        iterations=cfg.bc_iterations,
        envs=cfg.bc_envs,
        steps=cfg.train_steps,
        seed=cfg.seed,
        lr=cfg.bc_lr,
        epochs=cfg.bc_epochs,
        replay=cfg.bc_replay,
        beta_decay=1.0,
        teacher_noise=cfg.bc_teacher_noise,
        validate=validate,
        run=run,
    )
    shuffled = f", inputs shuffled every {every} steps" if kind == "attention" else ""
    info = {
        "trained_by": f"behaviour cloning (DART, teacher noise {cfg.bc_teacher_noise}, "
        f"{cfg.bc_iterations} x {cfg.bc_envs} episodes of {cfg.train_steps} steps{shuffled}) "
        "from the PGPE-trained Ant teacher",
        "validation_mean": result.validation,
        "seconds": result.seconds,
        "env_steps": result.env_steps,
    }
    return student, info


def main(cfg: Config) -> dict[str, Any]:
    """Clone both students, save their checkpoints, and evaluate them."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    run = RunDir(EXPERIMENT, cfg.seed, cfg, root=cfg.out)
    console.print(f"[bold]{EXPERIMENT}[/] -> {run.path}")
    meta = {"command": command_line(), "config": dataclasses.asdict(cfg)}
    for kind in ("mlp", "attention"):
        student, info = _clone(cfg, kind, run)
        console.print(f"{AGENT_LABELS[kind]}: validation {info['validation_mean']:.1f}")
        save_agent(
            run.checkpoints / checkpoint_name(kind),
            student,
            agent_spec(cfg, kind),
            experiment=EXPERIMENT,
            meta={**meta, **info},
        )
    run.close()
    summary = evaluate(cfg, checkpoint=str(run.checkpoints))
    (run.path / "eval.json").write_text(json.dumps(summary, indent=2))
    return summary


class _Teacher(torch.nn.Module):
    """The teacher as an agent of the evaluation (a reference row)."""

    def __init__(self, path: str | None) -> None:
        super().__init__()
        self.act = load_teacher(path)
        self.dummy = torch.nn.Parameter(torch.zeros(1))  # the evaluator needs a parameter

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.act(obs)


def load_agents(checkpoint: str | None) -> dict[str, torch.nn.Module]:
    """Both agents: from the directory ``checkpoint`` (or the shipped ones)."""
    return load_agents_of(checkpoint, EXPERIMENT)


def evaluate(cfg: Config, checkpoint: str | None = None) -> dict[str, Any]:
    """``colony eval sensory-ant``: rows ``{condition, agent, mean, std, episodes}``."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    agents = load_agents(checkpoint)
    rows = evaluate_conditions(
        agents,
        world_factory(cfg.max_steps),
        conditions(cfg),
        episodes=cfg.eval_episodes,
        max_steps=cfg.max_steps,
        seed=cfg.eval_seed,
        mlp_condition=_mlp_condition,
    )
    # the teacher, unshuffled, for reference (it is an MLP on ordered inputs too)
    teacher_rows = evaluate_conditions(
        {"teacher (linear, PGPE)": _Teacher(cfg.teacher)},
        world_factory(cfg.max_steps),
        conditions(cfg)[:1],
        episodes=cfg.eval_episodes,
        max_steps=cfg.max_steps,
        seed=cfg.eval_seed,
    )
    rows += teacher_rows
    print_rows(
        rows, f"{EXPERIMENT}: return over {cfg.eval_episodes} episodes of {cfg.max_steps} steps"
    )
    return {"experiment": EXPERIMENT, "world": "ant", "rows": rows}


def watch(cfg: Config, checkpoint: str | None = None) -> SensoryWatch:
    """``colony watch sensory-ant``: the AttentionNeuron walking with its inputs shuffled
    every ``shuffle_every`` steps; ``x`` re-shuffles, ``m`` hands over to the MLP."""
    agents = load_agents(checkpoint)
    world = AntWorld(
        AntConfig(num_envs=cfg.watch_envs, render_envs=cfg.watch_envs, dtype="float32")
    )
    return SensoryWatch(
        world,
        agents,
        shuffle_every=cfg.shuffle_every,
        action_fn=lambda out: out.clamp(-1, 1),
        seed=cfg.seed,
        name=f"{EXPERIMENT} (x: reshuffle, m: MLP/AttentionNeuron)",
    )


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
