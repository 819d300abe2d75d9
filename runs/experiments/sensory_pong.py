"""Experiment ``sensory-pong`` (Puzzle Pong, Tang & Ha 2021): an AttentionNeuron agent
plays Pong from a 32 x 32 screen cut into 64 patches that arrive in any order, against
an ordinary MLP that collapses when they are shuffled.

Training: both agents are cloned from Pong's scripted teacher
(``PuzzlePongWorld.teacher_actions``: it reads the true state and wins 5-0) with DAgger
(:func:`colonylab.collective_ml.trainers.clone.behaviour_clone`, ``discrete=True``:
cross-entropy to the teacher's action on the states the student visits, the teacher
driving with probability ``0.5 ** iteration``). The MLP sees the screen unshuffled on a
black court (28 iterations of 64 games, Adam 1e-2, one step per 50-step chunk; 13 min).
The AttentionNeuron is the paper's vision variant: a feed-forward sensory layer
(``--recurrent False``, no previous action: ``--feed-action False``; 16 queries, keys
16, sensory width 16, head 32; 20k parameters) on a court with a vertical grey ramp
behind the game (``--background 0.5``), and it sees the patches re-shuffled every 100
steps. Being stateless it is cloned frame by frame (``--bc-minibatch 256``: shuffled
minibatches of single frames from the last 6 iterations' rollouts, 4 passes, Adam
3e-3), 40 iterations of 64 games, validated every 4 on 32 games re-shuffled every 100
steps; the best validation is kept (+0.44, iteration 40). That took 57 min on one
thread (1.36 M env steps; the iterations lengthen as the student learns to return the
ball). ``colony train sensory-pong`` (both; ``--agents attention`` / ``--agents mlp``,
as each checkpoint records) reproduces the shipped checkpoints (same seed and thread
count gave the same losses to the last digit; not re-run since the redesign); a second
seed (``--seed 1 --bc-iterations 48``, 85 min) kept iteration 40 (validated +0.81) and
scored +1.0 +- 2.9 (23 wins of 32) on the evaluation games. ``--resume RUN_DIR``
continues a stopped run from ``checkpoints/latest.pt`` (Ctrl-C writes it first). There
is no population stage, so no ``--evaluator``.

Why the ramp: a permutation-invariant agent sees the multiset of patch contents, and on
a black 32 x 32 court no patch says where it is (a 1-pixel ball, a 1-pixel-wide paddle
that the ball enters only on the step of contact, a net that repeats with the patch
size). Without it every attempt (recurrent AN with the previous action, as in the paper;
truncated-BPTT cloning; occluded iterations) converged on "stay" (-3.5: invariant only
vacuously). The ramp plays the part of an Atari screen's static scenery: each patch's
grey level tells its height. The MLP keeps the black court (cloning it on the ramp
validated at -2.9 at best); each agent is evaluated on the court it was trained on
(saved with its checkpoint).

Result of the shipped checkpoints (``colony eval sensory-pong``, 32 games to 5 points
each, mean +- sd over games, wins of 32 in brackets; for scale: teacher +5.0, a paddle
that never moves -3.5 +- 1.4 on these games, uniformly random actions -3.8 +- 1.1):

=============================================  ================  ================
condition                                      AttentionNeuron  MLP
=============================================  ================  ================
unshuffled                                     +1.0 +- 2.5 (21) +2.4 +- 2.3 (28)
shuffled at reset                              +1.0 +- 2.5 (21) -3.5 +- 1.7 (2)
shuffled every 100 steps                       +1.0 +- 2.5 (21) -3.8 +- 1.3 (1)
70% occluded (AN: dropped, MLP: zeroed)        -3.7 +- 1.4 (1)  -3.5 +- 1.6 (1)
+16 noise patches, shuffled every 100 steps    -4.1 +- 1.0 (0)  n/a
=============================================  ================  ================

The AttentionNeuron wins 21 of 32 games whatever order its patches come in (a
feed-forward sensory layer is exactly invariant, so the three rows agree game for
game), while the MLP, which plays better on its own screen, loses nearly every game
once the patches move. Neither was trained with occlusion or noise patches and neither
survives them: with 70% of the patches gone the ball is usually hidden, and N(0, 1)
noise patches, never seen in training, derail it. (The paper's Puzzle
Pong agent played Atari Pong on 84 x 84 frames with a feed-forward AttentionNeuron and
a CNN head; this world is a different, smaller game.)

``colony eval sensory-pong`` scores the shipped (or given) checkpoints of both agents
unshuffled, shuffled at reset, shuffled every ``K`` steps, with 70% of the patches
occluded and with pure-noise patches added (the AttentionNeuron only: the MLP takes
64 patches). Episodes are played to ``points_to_win`` (5) points, so a return is in
``[-5, 5]``: +5 is a 5-0 win, -5 a 0-5 loss.

This file is longer than ~500 lines (about 560) for a stated reason: the card keeps the
record of what did and did not work on Puzzle Pong, and the Config documents ~45
options (two students with their own schedules and courts).

    colony train sensory-pong                 # both agents (~72 min on 1 thread)
    colony eval sensory-pong --json eval.json
    colony watch sensory-pong                 # x reshuffles the patches, m: MLP
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from rich.console import Console

from colonylab._checks import check_dataclass_ints, check_float, check_optional_int
from colonylab.agents import build
from colonylab.agents.mlp import MLPPolicy
from colonylab.collective_ml.evaluate import discrete_actions, evaluate_conditions, mean_return
from colonylab.collective_ml.trainers.clone import behaviour_clone
from colonylab.envs.classic.pong import PuzzlePongConfig, PuzzlePongWorld
from colonylab.envs.render.sensory_watch import SensoryWatch
from colonylab.envs.wrappers.conditions import Condition, wrapped_factory
from colonylab.runs.common.checkpoint import (
    load_checkpoint,
    make_checkpoint,
    provenance,
    reproduce_command,
    save_checkpoint,
)
from colonylab.runs.common.rundir import RunDir
from colonylab.runs.common.seeding import seed_everything
from colonylab.runs.common.stages import Stages, load_model, model_files
from colonylab.runs.common.tables import print_rows

EXPERIMENT = "sensory-pong"
SCREEN, PATCH, FRAMES = 32, 4, 2
NUM_PATCHES = (SCREEN // PATCH) ** 2  # 64
PATCH_DIM = PATCH * PATCH * FRAMES  # 32
NUM_ACTIONS = 3  # 0 stay, 1 up, 2 down
LABELS = {"attention": "AttentionNeuron", "mlp": "MLP"}
SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints"
console = Console()


POSITIVE = (
    "points_to_win max_steps bc_iterations mlp_iterations bc_envs bc_epochs bc_replay "
    "bc_chunk mlp_envs mlp_epochs mlp_replay validate_every validate_episodes "
    "checkpoint_every eval_episodes shuffle_every noise_channels watch_envs "
)
"""Config fields that must be integers >= 1."""


@dataclass(frozen=True)
class Config:
    """Clone an AttentionNeuron (on shuffled, partly occluded patches) and an MLP (on
    the plain screen) from Pong's scripted teacher; evaluate both with shuffled,
    reshuffled, occluded and noisy patches."""

    agents: Literal["both", "attention", "mlp"] = "both"
    """Which agents to train."""
    points_to_win: int = 5
    """Episodes (training and evaluation) end when a side has this many points."""
    max_steps: int = 1500
    """Steps per episode at most (truncation; the teacher needs ~460 to win 5-0)."""
    bc_iterations: int = 40
    """DAgger iterations of the AttentionNeuron's behaviour cloning."""
    bc_envs: int = 64
    """AttentionNeuron: episodes played per DAgger iteration."""
    bc_epochs: int = 4
    """AttentionNeuron: passes over the kept rollouts per iteration."""
    bc_replay: int = 6
    """AttentionNeuron: rollouts kept for training (the latest)."""
    bc_lr: float = 3e-3
    """AttentionNeuron: Adam learning rate of the cloning."""
    bc_chunk: int = 50
    """AttentionNeuron: steps of truncated backpropagation through time."""
    mlp_iterations: int = 28
    """DAgger iterations of the MLP's behaviour cloning."""
    mlp_envs: int = 64
    """MLP: episodes played per DAgger iteration."""
    mlp_epochs: int = 8
    """MLP: passes over the kept rollouts per iteration."""
    mlp_replay: int = 4
    """MLP: rollouts kept for training (the latest)."""
    mlp_lr: float = 1e-2
    """MLP: Adam learning rate (high: each first-layer weight sees one pixel, which the
    1-pixel ball lights up rarely)."""
    bc_beta_decay: float = 0.5
    """DAgger: the teacher drives an env with probability ``beta_decay ** iteration``."""
    train_shuffle_every: int | None = 100
    """The AttentionNeuron learns with patches re-shuffled every this many steps (None:
    shuffled at reset only, an exact symmetry). The MLP trains unshuffled."""
    train_occlude: float = 0.7
    """Share of patches dropped in the AttentionNeuron's occluded iterations."""
    train_occlude_every: int = 0
    """Every this many-th DAgger iteration of the AttentionNeuron plays with
    ``train_occlude`` of the patches dropped (0: never)."""
    validate_every: int = 4
    """Validate every this many DAgger iterations (the best validated weights are kept)."""
    validate_episodes: int = 32
    """Episodes per validation."""
    num_queries: int = 16
    """AttentionNeuron: fixed queries (rows of the latent, each a 32-value patch mix)."""
    key_dim: int = 16
    """AttentionNeuron: width of queries and keys."""
    hidden_dim: int = 16
    """AttentionNeuron: width of the shared LSTM cell of every sensory neuron."""
    head_hidden: int = 32
    """AttentionNeuron: hidden units of the action head (on the 16 x 32 latent)."""
    feed_action: bool = False
    """AttentionNeuron: feed the previous action to its neurons (the paper's design;
    off: cloning cannot learn to repeat the last action)."""
    recurrent: bool = False
    """AttentionNeuron: keep each neuron's LSTM state between steps (off: a feed-forward
    sensory layer, as the paper used for image patches)."""
    bc_minibatch: int | None = 256
    """AttentionNeuron (with ``--recurrent False --feed-action False``): train on shuffled
    minibatches of this many single frames; None: truncated BPTT over whole rollouts."""
    background: float = 0.5
    """AttentionNeuron's court: grey level at the bottom of a vertical background ramp
    behind the game (0: black). A ramp tells a shuffled patch its height, as the static
    parts of an Atari screen do. Saved with the checkpoint; ``colony eval`` plays each
    agent on its own."""
    mlp_background: float = 0.0
    """The MLP's court (as ``background``)."""
    mlp_minibatch: int | None = None
    """MLP: train on shuffled minibatches of this many frames (None: one step per chunk)."""
    mlp_hidden: tuple[int, ...] = (24, 16)
    """MLP baseline: hidden layer sizes (input: the 64 x 32 patches, flattened)."""
    checkpoint_every: int = 4
    """Write ``checkpoints/latest.pt`` every this many cloning iterations (it holds the
    replay: some hundred MB for the shipped recipe)."""
    eval_episodes: int = 32
    """``colony eval``: episodes per agent and condition."""
    eval_seed: int = 2024
    """``colony eval``: base seed of its episodes, shuffles and occlusions."""
    shuffle_every: int = 100
    """``colony eval`` and ``colony watch``: K of "shuffled every K steps"."""
    occlude: float = 0.7
    """``colony eval``: share of patches occluded (the paper: 70%); dropped for the
    AttentionNeuron, zeroed for the MLP."""
    noise_channels: int = 16
    """``colony eval``: pure-noise patches (N(0, 1) values) added in the noise condition."""
    watch_envs: int = 4
    """``colony watch``: games shown."""
    seed: int = 0
    """Seed of the initial weights and every training episode."""
    threads: int | None = 1
    """Torch CPU threads (None: torch's default)."""
    device: str = "cpu"
    """Where the evaluation's worlds and forward run (cpu, cuda, cuda:N); training
    runs on the CPU."""
    out: str | None = None
    """Run directory root (default runs/out)."""

    def __post_init__(self) -> None:
        lows = dict.fromkeys(POSITIVE.split(), 1)
        check_dataclass_ints(self, {**lows, **{"train_occlude_every": 0, "seed": 0}})
        check_optional_int("--train-shuffle-every", self.train_shuffle_every, 1)
        check_optional_int("--bc-minibatch", self.bc_minibatch, 1)
        check_optional_int("--mlp-minibatch", self.mlp_minibatch, 1)
        for name in ("train_occlude", "occlude", "background", "mlp_background"):
            check_float(
                f"--{name.replace('_', '-')}", getattr(self, name), 0.0, 1.0, high_open=True
            )
        for name in ("bc_lr", "mlp_lr"):
            check_float(f"--{name.replace('_', '-')}", getattr(self, name), 0.0, low_open=True)
        check_float("--bc-beta-decay", self.bc_beta_decay, 0.0, 1.0, low_open=True)


def agent_spec(cfg: Config, kind: str) -> dict[str, Any]:
    """The ``agents.build`` spec of an agent (saved in its checkpoint)."""
    if kind == "attention":
        return {
            "type": "attention",
            "act_dim": NUM_ACTIONS,
            "input_dim": PATCH_DIM,
            "num_queries": cfg.num_queries,
            "key_dim": cfg.key_dim,
            "hidden_dim": cfg.hidden_dim,
            "head_hidden": cfg.head_hidden,
            "output": "linear",
            "feed_action": cfg.feed_action,
            "recurrent": cfg.recurrent,
        }
    return {
        "type": "mlp",
        "input_shape": [NUM_PATCHES, PATCH_DIM],
        "act_dim": NUM_ACTIONS,
        "hidden": list(cfg.mlp_hidden),
        "output": "linear",
    }


def world_factory(cfg: Config):
    """``factory(num_envs, device)`` of Pong worlds (patches, games to ``points_to_win``,
    finished games frozen)."""
    return PuzzlePongWorld.factory(
        screen=SCREEN,
        patch=PATCH,
        frame_stack=FRAMES,
        points_to_win=cfg.points_to_win,
        max_episode_steps=cfg.max_steps,
        background=cfg.background,
    )


def conditions(cfg: Config) -> list[Condition]:
    share = f"{round(cfg.occlude * 100)}%"
    return [
        Condition("unshuffled"),
        Condition("shuffled at reset", shuffle=0),
        Condition(f"shuffled every {cfg.shuffle_every} steps", shuffle=cfg.shuffle_every),
        Condition(
            f"{share} occluded, shuffled every {cfg.shuffle_every} steps",
            shuffle=cfg.shuffle_every,
            occlude=cfg.occlude,
        ),
        Condition(
            f"+{cfg.noise_channels} noise patches, shuffled every {cfg.shuffle_every} steps",
            shuffle=cfg.shuffle_every,
            noise=cfg.noise_channels,
        ),
    ]


def _adapt(label: str, policy: torch.nn.Module, condition: Condition) -> Condition | None:
    """The MLP takes exactly 64 patches: no noise patches; occluded ones are zeroed."""
    if not isinstance(policy, MLPPolicy):
        return condition
    if condition.noise:
        return None
    if condition.occlude > 0:
        return dataclasses.replace(
            condition, name=f"{condition.name} (zeroed)", occlude_mode="zero"
        )
    return condition


def checkpoint_name(kind: str) -> str:
    return f"sensory_pong_{kind}.pt"


def _teacher(world: Any) -> torch.Tensor:
    """The scripted expert's actions, from the true state of the unwrapped world."""
    return world.teacher_actions()


def _validation(cfg: Config, validation_conditions: list[Condition]):
    """``validate(policy)``: mean return over the conditions (fixed episodes)."""

    def validate(policy: torch.nn.Module) -> float:
        values = []
        for i, condition in enumerate(validation_conditions):
            factory = wrapped_factory(world_factory(cfg), condition, cfg.seed + 1 + i)
            values.append(
                mean_return(
                    policy,
                    factory,
                    episodes=cfg.validate_episodes,
                    max_steps=cfg.max_steps,
                    seed=cfg.seed + 7919,
                    action_fn=discrete_actions,
                )
            )
        return sum(values) / len(values)

    return validate


def kind_config(cfg: Config, kind: str) -> Config:
    """``cfg`` as one agent's training sees it (the MLP plays on ``mlp_background``)."""
    return cfg if kind == "attention" else dataclasses.replace(cfg, background=cfg.mlp_background)


def _product(cfg: Config, kind: str, policy: torch.nn.Module, **meta: Any) -> dict[str, Any]:
    """The product checkpoint of one agent: spec, weights, the command, its court."""
    command = reproduce_command(f"train {EXPERIMENT}", dataclasses.replace(cfg, out=None))
    metrics = {"validation_mean": meta.pop("validation_mean")}
    return make_checkpoint(
        EXPERIMENT,
        spec=agent_spec(cfg, kind),
        state_dict=policy.state_dict(),
        config=cfg,
        provenance=provenance(command, seed=cfg.seed, metrics=metrics, **meta),
        extra={"agent": LABELS[kind], "background": kind_config(cfg, kind).background},
    )


def _clone(cfg: Config, kind: str, stages: Stages) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Behaviour-clone one agent (DAgger, cross-entropy on the teacher's actions);
    resumes where ``stages`` says the run stopped."""
    full, run = cfg, stages.run
    cfg = kind_config(cfg, kind)
    spec = agent_spec(cfg, kind)
    seed_everything(cfg.seed)
    student = build(spec)
    resume = stages.resuming(kind)  # after the build: the RNGs as the run left them
    base = world_factory(cfg)
    if kind == "attention":
        iterations, envs, epochs = cfg.bc_iterations, cfg.bc_envs, cfg.bc_epochs
        replay, lr = cfg.bc_replay, cfg.bc_lr
        shuffled = Condition("train", shuffle=cfg.train_shuffle_every or 0)
        occluded = dataclasses.replace(shuffled, occlude=cfg.train_occlude)
        use_occlusion = cfg.train_occlude_every > 0 and cfg.train_occlude > 0
        validation = [shuffled, occluded] if use_occlusion else [shuffled]
    else:
        iterations, envs, epochs = cfg.mlp_iterations, cfg.mlp_envs, cfg.mlp_epochs
        replay, lr = cfg.mlp_replay, cfg.mlp_lr
        shuffled = occluded = Condition("train")
        use_occlusion = False
        validation = [shuffled]

    def make_world(num_envs: int, iteration: int) -> Any:
        occlude = use_occlusion and (iteration + 1) % cfg.train_occlude_every == 0
        condition = occluded if occlude else shuffled
        return condition.wrap(base(num_envs=num_envs), cfg.seed * 1000 + iteration + 1)

    def on_best(policy: torch.nn.Module, value: float, iteration: int) -> None:
        # a run cut off part-way (these clones take an hour on one core) keeps its best
        path = run.checkpoints / checkpoint_name(kind)
        save_checkpoint(
            path, _product(full, kind, policy, validation_mean=value, partial=iteration)
        )

    def log(iteration: int, record: dict[str, float]) -> None:
        stages.log(iteration, record)
        console.print(f"{kind} (BC) {iteration}/{iterations}: loss {record['losses/bc']:.4f}")

    stages.begin(kind, spec, student, {})
    result = behaviour_clone(
        student,
        make_world,
        _teacher,
        iterations=iterations,
        envs=envs,
        steps=cfg.max_steps,
        seed=cfg.seed,
        lr=lr,
        epochs=epochs,
        chunk=cfg.bc_chunk,
        replay=replay,
        beta_decay=cfg.bc_beta_decay,
        discrete=True,
        minibatch=cfg.bc_minibatch if kind == "attention" else cfg.mlp_minibatch,
        validate=_validation(cfg, validation),
        validate_every=cfg.validate_every,
        on_best=on_best,
        log=log,
        save=stages.save,
        checkpoint_every=cfg.checkpoint_every,
        resume=resume,
    )
    if kind == "attention":
        inputs = f"patches shuffled every {cfg.train_shuffle_every} steps" + (
            f", {round(cfg.train_occlude * 100)}% of them dropped in every "
            f"{cfg.train_occlude_every}th iteration"
            if use_occlusion
            else ""
        )
    else:
        inputs = "patches unshuffled"
    info = {
        "trained_by": f"behaviour cloning (DAgger, {iterations} iterations of {envs} "
        f"episodes to {cfg.points_to_win} points, {inputs}) from the scripted teacher",
        "validation_mean": result.validation,
        "seconds": result.seconds,
        "env_steps": result.env_steps,
        "history": result.history,
    }
    return student, info


def main(cfg: Config, resume: str | None = None) -> dict[str, Any]:
    """Clone the MLP (unshuffled) and the AttentionNeuron (shuffled) from the scripted
    teacher, save both checkpoints, and evaluate them; ``resume``: a run directory to
    continue from its ``checkpoints/latest.pt``."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    run = RunDir(EXPERIMENT, cfg.seed, cfg, root=cfg.out, resume=resume)
    console.print(f"[bold]{EXPERIMENT}[/] -> {run.path}")
    kinds = ("mlp", "attention") if cfg.agents == "both" else (cfg.agents,)
    sizes = {"mlp": cfg.mlp_iterations, "attention": cfg.bc_iterations}
    stages = Stages(run, EXPERIMENT, cfg, {k: sizes[k] for k in kinds}, resume)
    for kind in kinds:
        if kind in stages.done:
            continue
        policy, info = _clone(cfg, kind, stages)
        console.print(
            f"{LABELS[kind]}: validation {info['validation_mean']:.2f} ({info['seconds']:.0f} s)"
        )
        history = info.pop("history")
        save_checkpoint(
            run.checkpoints / checkpoint_name(kind), _product(cfg, kind, policy, **info)
        )
        (run.path / f"history_{kind}.json").write_text(json.dumps(history, indent=2))
        stages.finish(kind)
    run.close()
    summary: dict[str, Any] = {}
    if cfg.agents == "both":
        summary = evaluate(cfg, checkpoint=str(run.checkpoints))
        (run.path / "eval.json").write_text(json.dumps(summary, indent=2))
    return summary


def _agent_files(checkpoint: str | None) -> dict[str, Path]:
    return model_files(checkpoint, SHIPPED, {k: checkpoint_name(k) for k in LABELS})


def load_agents(checkpoint: str | None) -> dict[str, torch.nn.Module]:
    """Both agents: from the directory ``checkpoint`` (or the shipped ones), or one file."""
    files = _agent_files(checkpoint)
    return {LABELS[k]: load_model(path, EXPERIMENT, build)[0] for k, path in files.items()}


def agent_backgrounds(checkpoint: str | None) -> dict[str, float]:
    """The background each agent was trained on (its checkpoint's ``extra``), by label."""
    out = {}
    for kind, path in _agent_files(checkpoint).items():
        extra = load_checkpoint(path, EXPERIMENT)["extra"] or {}
        out[LABELS[kind]] = float(extra.get("background", 0.0))
    return out


def evaluate(cfg: Config, checkpoint: str | None = None) -> dict[str, Any]:
    """``colony eval sensory-pong``: rows ``{condition, agent, mean, std, episodes,
    background}`` for both agents under every condition (returns in
    ``[-points_to_win, points_to_win]``). Each agent plays on the background it was
    trained on (its checkpoint says which)."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    agents = load_agents(checkpoint)
    backgrounds = agent_backgrounds(checkpoint)
    rows = []
    for label, agent in agents.items():
        background = backgrounds.get(label, cfg.background)
        agent_rows = evaluate_conditions(
            {label: agent},
            world_factory(dataclasses.replace(cfg, background=background)),
            conditions(cfg),
            episodes=cfg.eval_episodes,
            max_steps=cfg.max_steps,
            seed=cfg.eval_seed,
            action_fn=discrete_actions,
            adapt=_adapt,
            device=cfg.device,
        )
        rows += [{**row, "background": background} for row in agent_rows]
    order = {c.name: i for i, c in enumerate(conditions(cfg))}
    rows.sort(key=lambda r: order[r["condition"]])  # stable: agents keep their order
    on = ", ".join(f"{label} on background {b:g}" for label, b in backgrounds.items())
    print_rows(
        rows,
        f"{EXPERIMENT}: return over {cfg.eval_episodes} games to {cfg.points_to_win} points "
        f"(in [-{cfg.points_to_win}, {cfg.points_to_win}]; {on})",
        console,
    )
    return {"experiment": EXPERIMENT, "world": "puzzle-pong", "rows": rows}


def watch(cfg: Config, checkpoint: str | None = None) -> SensoryWatch:
    """``colony watch sensory-pong``: games played by the AttentionNeuron with the
    patches shuffled every ``shuffle_every`` steps; ``x`` re-shuffles now, ``m`` hands
    the games to the MLP baseline and back. The court has the AttentionNeuron's
    training background (the MLP then plays on it too)."""
    agents = load_agents(checkpoint)
    background = agent_backgrounds(checkpoint).get(LABELS["attention"], cfg.background)
    world = PuzzlePongWorld(
        PuzzlePongConfig(
            num_envs=cfg.watch_envs,
            screen=SCREEN,
            patch=PATCH,
            frame_stack=FRAMES,
            points_to_win=cfg.points_to_win,
            max_episode_steps=cfg.max_steps,
            autoreset=True,
            render_envs=cfg.watch_envs,
            background=background,
        )
    )
    return SensoryWatch(
        world,
        agents,
        shuffle_every=cfg.shuffle_every,
        action_fn=discrete_actions,
        image_shape=(SCREEN, SCREEN, PATCH),
        seed=cfg.seed,
        name=f"{EXPERIMENT} (x: reshuffle, m: MLP/AttentionNeuron)",
    )


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
