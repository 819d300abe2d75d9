"""Experiment ``sensory-ant``: an AttentionNeuron agent walks MuJoCo's Ant with its 27
observations shuffled (every 200 steps in the paper; Tang & Ha 2021), against an MLP
that collapses when they are.

As in the paper, both agents learn by behaviour cloning from a trained teacher: the
PGPE-trained linear policy of ``colony train ant-teacher`` (shipped as
``runs/checkpoints/ant_teacher.pt``, loaded as an ``agents`` ``linear`` model). The
students learn with :func:`colonylab.collective_ml.trainers.clone.behaviour_clone`
(DART: the teacher drives with action noise 0.2 and labels every state it visits,
including the recoveries; 14 iterations of 32 episodes of 500 steps). The
AttentionNeuron (27 sensory neurons, 8 actions fed back) sees the observations
shuffled every 200 steps as in the evaluation; the MLP student sees them in order.
There is no population stage (so no ``--evaluator``): cloning plays one vectorized
world per iteration.

Shipped checkpoints (``colony eval sensory-ant``, 8 episodes of 1000 steps):

==========================  ================  ===============  ===============
condition                   AttentionNeuron   MLP              teacher
==========================  ================  ===============  ===============
unshuffled                  1446.2 +- 329.5   1986.2 +- 752.0  1971.4 +- 746.6
shuffled at reset           1462.0 +- 341.1   -293.2 +- 595.8  n/a
shuffled every 200 steps    791.5 +- 197.2    -115.6 +- 132.4  n/a
+16 noise channels          530.8 +- 21.2     n/a              n/a
==========================  ================  ===============  ===============

Both were trained by ``colony train sensory-ant`` with these defaults (the
checkpoints record it; ~20 min on 2 cores); re-run after the redesign it gave the
shipped weights bit for bit. ``--resume RUN_DIR`` continues a stopped
run from ``checkpoints/latest.pt``; Ctrl-C writes it first.

    colony train sensory-ant
    colony eval sensory-ant --json eval.json
    colony watch sensory-ant                      # x reshuffles, m swaps the agents
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from colonylab._checks import check_dataclass_ints, check_float, check_optional_int
from colonylab.agents import build
from colonylab.agents.mlp import MLPPolicy
from colonylab.collective_ml.evaluate import (
    continuous_actions,
    evaluate_conditions,
    mean_return,
)
from colonylab.collective_ml.trainers.clone import behaviour_clone
from colonylab.envs.mujoco.ant import AntConfig, AntWorld
from colonylab.envs.render.sensory_watch import SensoryWatch
from colonylab.envs.wrappers.conditions import Condition
from colonylab.runs.common.checkpoint import (
    make_checkpoint,
    provenance,
    reproduce_command,
    save_checkpoint,
)
from colonylab.runs.common.rundir import RunDir
from colonylab.runs.common.seeding import seed_everything
from colonylab.runs.common.stages import Stages, load_model, model_files
from colonylab.runs.common.tables import print_rows

EXPERIMENT = "sensory-ant"
OBS_DIM, ACT_DIM = 27, 8
LABELS = {"attention": "AttentionNeuron", "mlp": "MLP"}
SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints"
TEACHER = SHIPPED / "ant_teacher.pt"
console = Console()


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
    checkpoint_every: int = 1
    """Write ``checkpoints/latest.pt`` every this many cloning iterations."""
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
        check_dataclass_ints(
            self,
            {
                "max_steps": 1,
                "train_steps": 1,
                "bc_iterations": 1,
                "bc_envs": 1,
                "bc_epochs": 1,
                "bc_replay": 1,
                "validate_episodes": 1,
                "checkpoint_every": 1,
                "eval_episodes": 1,
                "shuffle_every": 1,
                "noise_channels": 1,
                "watch_envs": 1,
                "seed": 0,
            },
        )
        check_optional_int("--train-shuffle-every", self.train_shuffle_every, 1)
        check_float("--bc-lr", self.bc_lr, 0.0, low_open=True)
        check_float("--bc-teacher-noise", self.bc_teacher_noise, 0.0)


def agent_spec(cfg: Config, kind: str) -> dict[str, Any]:
    """The ``agents.build`` spec of an agent (saved in its checkpoint)."""
    if kind == "attention":
        return {
            "type": "attention",
            "act_dim": ACT_DIM,
            "num_queries": cfg.num_queries,
            "key_dim": cfg.key_dim,
            "hidden_dim": cfg.hidden_dim,
            "head_hidden": cfg.head_hidden,
        }
    return {
        "type": "mlp",
        "input_shape": [OBS_DIM],
        "act_dim": ACT_DIM,
        "hidden": list(cfg.mlp_hidden),
    }


def world_factory(max_steps: int):
    """``factory(num_envs, device)`` of Ant worlds (float32, finished episodes freeze)."""
    return AntWorld.factory(dtype="float32", max_episode_steps=max_steps, validate_actions=False)


def conditions(cfg: Config) -> list[Condition]:
    return [
        Condition("unshuffled"),
        Condition("shuffled at reset", shuffle=0),
        Condition(f"shuffled every {cfg.shuffle_every} steps", shuffle=cfg.shuffle_every),
        Condition(
            f"+{cfg.noise_channels} noise channels, shuffled", shuffle=0, noise=cfg.noise_channels
        ),
    ]


def _adapt(label: str, policy: torch.nn.Module, condition: Condition) -> Condition | None:
    """The MLP takes exactly 27 inputs: no noise channels."""
    return None if isinstance(policy, MLPPolicy) and condition.noise else condition


def checkpoint_name(kind: str) -> str:
    return f"sensory_ant_{kind}.pt"


def load_teacher(path: str | None = None) -> torch.nn.Module:
    """The Ant teacher (``obs (N, 27) -> actions (N, 8)`` in ``[-1, 1]``): the
    ``ant-teacher`` checkpoint's ``linear`` agent (default: the shipped one)."""
    return load_model(Path(path) if path is not None else TEACHER, "ant-teacher", build)[0]


class _Teacher(torch.nn.Module):
    """The teacher as an agent of the evaluation and the cloning (float32 math on the
    CPU, returned in the observation's dtype and device)."""

    def __init__(self, path: str | None) -> None:
        super().__init__()
        self._teacher = [load_teacher(path)]  # a list: its weights are not this module's
        self.dummy = torch.nn.Parameter(torch.zeros(1))  # the evaluator needs a parameter

    @torch.no_grad()
    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        obs = torch.as_tensor(obs)
        return self._teacher[0](obs.float().cpu()).to(device=obs.device, dtype=obs.dtype)


def load_agents(checkpoint: str | None) -> dict[str, torch.nn.Module]:
    """Both agents by label: from the directory ``checkpoint`` (or the shipped ones),
    or one of their files."""
    files = model_files(checkpoint, SHIPPED, {k: checkpoint_name(k) for k in LABELS})
    return {LABELS[k]: load_model(path, EXPERIMENT, build)[0] for k, path in files.items()}


def _product(cfg: Config, kind: str, policy: torch.nn.Module, info: dict[str, Any]) -> dict:
    """The shipped-style checkpoint of one trained student."""
    command = reproduce_command(f"train {EXPERIMENT}", dataclasses.replace(cfg, out=None))
    return make_checkpoint(
        EXPERIMENT,
        spec=agent_spec(cfg, kind),
        state_dict=policy.state_dict(),
        config=cfg,
        provenance=provenance(
            command,
            seed=cfg.seed,
            metrics={"validation_mean": info["validation_mean"]},
            **{k: v for k, v in info.items() if k != "validation_mean"},
        ),
        extra={"agent": LABELS[kind]},
    )


def _clone(cfg: Config, kind: str, stages: Stages) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Clone one student (DART); resumes where ``stages`` says the run stopped."""
    spec = agent_spec(cfg, kind)
    seed_everything(cfg.seed)
    student = build(spec)
    resume = stages.resuming(kind)  # after the build: the RNGs as the run left them
    teacher_policy = _Teacher(cfg.teacher)
    every = cfg.train_shuffle_every if kind == "attention" else None
    condition = (
        Condition("train", shuffle=every or 0) if kind == "attention" else Condition("train")
    )
    base = world_factory(cfg.train_steps)

    def make(num_envs: int, device: Any = None, seed: int = cfg.seed) -> Any:
        return condition.wrap(base(num_envs=num_envs, device=device), seed)

    def teacher(world: Any) -> torch.Tensor:
        return teacher_policy(world.observe().float())

    def validate(policy: torch.nn.Module) -> float:
        return mean_return(
            policy,
            lambda num_envs, device=None: make(num_envs, device, seed=cfg.seed + 1),
            episodes=cfg.validate_episodes,
            max_steps=cfg.train_steps,
            seed=cfg.seed + 7919,
            action_fn=continuous_actions,
        )

    def log(iteration: int, record: dict[str, float]) -> None:
        stages.log(iteration, record)
        console.print(
            f"{kind} (BC) {iteration}/{cfg.bc_iterations}: loss {record['losses/bc']:.4f}"
        )

    stages.begin(kind, spec, student, {})
    result = behaviour_clone(
        student,
        lambda n, iteration: make(num_envs=n),
        teacher,
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
        log=log,
        save=stages.save,
        checkpoint_every=cfg.checkpoint_every,
        resume=resume,
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


def main(cfg: Config, resume: str | None = None) -> dict[str, Any]:
    """Clone both students (MLP, then AttentionNeuron), save their checkpoints, and
    evaluate them; ``resume``: a run directory to continue from its ``latest.pt``."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    run = RunDir(EXPERIMENT, cfg.seed, cfg, root=cfg.out, resume=resume)
    console.print(f"[bold]{EXPERIMENT}[/] -> {run.path}")
    stages = Stages(run, EXPERIMENT, cfg, {"mlp": cfg.bc_iterations, "attention": 0}, resume)
    for kind in ("mlp", "attention"):
        if kind in stages.done:
            continue
        student, info = _clone(cfg, kind, stages)
        console.print(f"{LABELS[kind]}: validation {info['validation_mean']:.1f}")
        save_checkpoint(run.checkpoints / checkpoint_name(kind), _product(cfg, kind, student, info))
        stages.finish(kind)
    run.close()
    summary = evaluate(cfg, checkpoint=str(run.checkpoints))
    (run.path / "eval.json").write_text(json.dumps(summary, indent=2))
    return summary


def evaluate(cfg: Config, checkpoint: str | None = None) -> dict[str, Any]:
    """``colony eval sensory-ant``: rows ``{condition, agent, mean, std, episodes}``."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    agents = load_agents(checkpoint)
    common = dict(episodes=cfg.eval_episodes, max_steps=cfg.max_steps, seed=cfg.eval_seed)
    rows = evaluate_conditions(
        agents, world_factory(cfg.max_steps), conditions(cfg), adapt=_adapt, **common
    )
    # the teacher, unshuffled, for reference (it needs its inputs in order too)
    rows += evaluate_conditions(
        {"teacher (linear, PGPE)": _Teacher(cfg.teacher)},
        world_factory(cfg.max_steps),
        conditions(cfg)[:1],
        **common,
    )
    print_rows(
        rows,
        f"{EXPERIMENT}: return over {cfg.eval_episodes} episodes of {cfg.max_steps} steps",
        console,
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
