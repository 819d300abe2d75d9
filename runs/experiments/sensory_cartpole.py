"""Experiment ``sensory-cartpole``: an AttentionNeuron agent swings up and balances a
cart-pole whose five observations arrive in any order (Tang & Ha 2021), against an
ordinary MLP that collapses when they are shuffled.

Training, all through the population cores and the batched evaluator (every candidate
of a generation in one vectorized world, one batched forward per step, each
candidate's recurrent state carried by its environments):

1. the MLP (``5 -> 16 -> 16 -> 1``, tanh) by PGPE with ClipUp, fitness the mean return
   of ``episodes`` 1000-step episodes (the same starts for all candidates, new ones
   each generation);
2. the AttentionNeuron first by behaviour cloning from that MLP (DAgger: the teacher
   labels the states the student visits), because PGPE from random weights hardly
   moves it: its attention starts uniform, so every query sees the mean of the five
   inputs, and small weight perturbations do not change that (mean return stayed
   below 60 after 380 generations here);
3. then by PGPE fine-tuning from the cloned weights (``finetune_*``), which climbs
   from the clone's ~60 to ~710;
4. last by PGPE with the inputs re-shuffled every 100 steps of every training
   episode (``reshuffle_*``): without it a mid-episode re-shuffle costs ~45% of the
   return (the neurons' LSTM states belong to their old channels); with it the
   neurons re-adapt within a few steps, for ~10% of the unshuffled return.

Shipped checkpoints (``colony eval sensory-cartpole``, 64 episodes of 1000 steps):

==============================  ===============  ===============
condition                       AttentionNeuron  MLP
==============================  ===============  ===============
unshuffled                      637.6 +- 5.7     736.2 +- 9.9
shuffled at reset               637.6 +- 5.7     46.6 +- 79.8
shuffled every 200 steps        640.6 +- 54.9    20.8 +- 33.0
+15 noise channels, shuffled    16.1 +- 17.1     n/a
==============================  ===============  ===============

(After stage 3 the AttentionNeuron scored 709.0 unshuffled and at reset but 389.4 +-
197.4 re-shuffled every 200 steps.) Pure-noise channels still defeat it: it never
saw any in training.

The paper used CMA-ES with population 256 and 16 rollouts per fitness; this schedule
fits a 2-core machine. A permutation fixed for an episode is an exact symmetry of the
AttentionNeuron (tested), so training sees unshuffled inputs unless
``train_shuffle_every`` asks for mid-episode re-shuffles.

``colony eval sensory-cartpole`` scores the shipped (or given) checkpoints of both
agents unshuffled, shuffled at reset, shuffled every ``K`` steps and with pure-noise
channels added (the AttentionNeuron only: the MLP takes five inputs).

    colony train sensory-cartpole                 # both agents (~2 h on 2 cores)
    colony eval sensory-cartpole --json eval.json
    colony watch sensory-cartpole                 # x reshuffles, m swaps the agents
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import torch

from colonylab.collective_ml.base import unflatten_into
from colonylab.envs.classic.swingup import SwingUpConfig, SwingUpWorld, VecCartPoleSwingUp
from colonylab.runs.common.policies import command_line
from colonylab.runs.common.rundir import RunDir
from colonylab.runs.common.seeding import seed_everything
from colonylab.runs.common.sensory import (
    Condition,
    SensoryWatch,
    behaviour_clone,
    build_agent,
    console,
    continuous_actions,
    evaluate_conditions,
    load_agent,
    mean_return,
    print_rows,
    save_agent,
    train_pgpe,
    wrapped_factory,
)
from colonylab.runs.common.sensory import (
    load_agents as load_agents_of,
)

EXPERIMENT = "sensory-cartpole"
OBS_DIM = 5


@dataclass(frozen=True)
class Config:
    """Train an AttentionNeuron and an MLP on cart-pole swing-up with PGPE; evaluate
    both with shuffled, reshuffled and noisy inputs."""

    agents: Literal["both", "attention", "mlp"] = "both"
    """Which agents to train (the AttentionNeuron needs the MLP: its teacher)."""
    generations: int = 400
    """PGPE generations per agent (at most; stops early at ``target``)."""
    pop_size: int = 64
    """Candidates per generation (even: antithetic pairs)."""
    episodes: int = 4
    """Training episodes per candidate (the same starts for all, new each generation)."""
    max_steps: int = 1000
    """Steps per episode (Ha's swing-up: 1000, 10 s)."""
    center_lr: float = 0.05
    """ClipUp step length of the search distribution's mean."""
    stdev_init: float = 0.1
    """Initial sampling standard deviation of every weight."""
    teacher: str | None = None
    """An MLP checkpoint to clone from instead of training one."""
    train_shuffle_every: int | None = None
    """The AttentionNeuron learns with inputs re-shuffled every this many steps (None:
    shuffled at reset only). The MLP trains unshuffled."""
    bc_iterations: int = 8
    """DAgger iterations of the AttentionNeuron's behaviour cloning."""
    bc_envs: int = 32
    """Episodes played per DAgger iteration."""
    bc_epochs: int = 4
    """Passes over the kept rollouts per iteration."""
    bc_lr: float = 3e-3
    """Adam learning rate of the cloning."""
    bc_replay: int = 4
    """Rollouts kept for training (the most recent)."""
    bc_beta_decay: float = 0.5
    """The teacher acts with probability ``bc_beta_decay ** iteration`` (1: always,
    with ``bc_teacher_noise``: DART; < 1: DAgger)."""
    bc_teacher_noise: float = 0.0
    """Standard deviation of the noise on the teacher's executed actions."""
    finetune_generations: int = 800
    """After cloning, PGPE generations on the AttentionNeuron's return (starting from
    the cloned weights, inputs shuffled as in the cloning); 0: none."""
    finetune_episodes: int = 2
    """Episodes per candidate in the fine-tuning."""
    finetune_stdev: float = 0.05
    """Initial sampling standard deviation of the fine-tuning."""
    finetune_lr: float = 0.05
    """ClipUp step length of the fine-tuning."""
    reshuffle_generations: int = 250
    """Last, PGPE generations with the inputs re-shuffled every ``reshuffle_every``
    steps of every training episode, so that the neurons learn to re-adapt after a
    mid-episode shuffle (kept if the mean of the unshuffled and the re-shuffled
    validations improves); 0: none."""
    reshuffle_every: int = 100
    """Steps between re-shuffles in that stage."""
    reshuffle_stdev: float = 0.03
    """Initial sampling standard deviation of that stage."""
    reshuffle_lr: float = 0.03
    """ClipUp step length of that stage."""
    target: float | None = None
    """Stop an agent's training once its validated mean return reaches this."""
    validate_every: int = 10
    """Validate the mean policy every this many generations."""
    validate_episodes: int = 32
    """Episodes per validation."""
    num_queries: int = 16
    """AttentionNeuron: fixed queries (rows of the latent)."""
    key_dim: int = 16
    """AttentionNeuron: width of queries and keys."""
    hidden_dim: int = 8
    """AttentionNeuron: width of the shared LSTM cell of every sensory neuron."""
    head_hidden: int = 16
    """AttentionNeuron: hidden units of the action head."""
    mlp_hidden: tuple[int, ...] = (16, 16)
    """MLP baseline: hidden layer sizes."""
    eval_episodes: int = 64
    """``colony eval``: episodes per agent and condition."""
    eval_seed: int = 2024
    """``colony eval``: base seed of its episodes and shuffles (not training's)."""
    shuffle_every: int = 200
    """``colony eval``: K of the "shuffled every K steps" condition."""
    noise_channels: int = 15
    """``colony eval``: pure-noise inputs added in the noise condition (the paper: 15)."""
    watch_envs: int = 4
    """``colony watch``: carts shown."""
    seed: int = 0
    """Seed of the cores, the initial weights and every training episode."""
    threads: int | None = 1
    """Torch CPU threads (None: torch's default)."""
    device: str = "cpu"
    """Where the worlds and the forward run (cpu, cuda, cuda:N)."""
    out: str | None = None
    """Run directory root (default runs/out)."""

    def __post_init__(self) -> None:
        for name, low in (
            ("generations", 1),
            ("pop_size", 2),
            ("episodes", 1),
            ("max_steps", 1),
            ("validate_every", 1),
            ("validate_episodes", 1),
            ("reshuffle_generations", 0),
            ("reshuffle_every", 1),
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
        if self.pop_size % 2:
            raise ValueError(f"--pop-size must be even (antithetic pairs), got {self.pop_size}")
        if self.train_shuffle_every is not None and self.train_shuffle_every < 1:
            raise ValueError(
                f"--train-shuffle-every must be >= 1 or None, got {self.train_shuffle_every}"
            )
        for name in ("center_lr", "stdev_init", "reshuffle_stdev", "reshuffle_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"--{name.replace('_', '-')} must be > 0")


def agent_spec(cfg: Config, kind: str) -> dict[str, Any]:
    """The constructor spec of an agent (saved in its checkpoint)."""
    if kind == "attention":
        return {
            "kind": "attention",
            "act_dim": 1,
            "num_queries": cfg.num_queries,
            "key_dim": cfg.key_dim,
            "hidden_dim": cfg.hidden_dim,
            "head_hidden": cfg.head_hidden,
        }
    return {"kind": "mlp", "input_shape": [OBS_DIM], "act_dim": 1, "hidden": list(cfg.mlp_hidden)}


def world_factory(cfg: Config):
    """``factory(num_envs, device)`` of swing-up worlds (float32, 1000 steps)."""
    return partial(
        VecCartPoleSwingUp,
        dtype=torch.float32,
        max_episode_steps=cfg.max_steps,
        validate_actions=False,
    )


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
    return f"sensory_cartpole_{kind}.pt"


def _train_mlp(cfg: Config, run: RunDir) -> tuple[torch.nn.Module, dict[str, Any]]:
    spec = agent_spec(cfg, "mlp")
    policy = build_agent(spec)
    result = train_pgpe(
        policy,
        world_factory(cfg),
        label="mlp",
        generations=cfg.generations,
        pop_size=cfg.pop_size,
        episodes=cfg.episodes,
        max_steps=cfg.max_steps,
        seed=cfg.seed,
        center_lr=cfg.center_lr,
        stdev_init=cfg.stdev_init,
        validate_every=cfg.validate_every,
        validate_episodes=cfg.validate_episodes,
        device=cfg.device,
        run=run,
        target=cfg.target,
    )
    unflatten_into(policy, result.params.float())
    info = {
        "trained_by": f"PGPE+ClipUp, population {cfg.pop_size}, {cfg.episodes} episodes "
        f"per candidate, {result.generations} generations",
        "validation_mean": result.validation,
        "seconds": result.seconds,
        "env_steps": result.env_steps,
    }
    return policy, info


def _shuffled(cfg: Config, every: int | None, seed: int):
    return wrapped_factory(world_factory(cfg), Condition("train", shuffle=every or 0), seed)


def _validation_return(cfg: Config, policy: torch.nn.Module, factory: Any) -> float:
    return mean_return(
        policy,
        factory,
        episodes=cfg.validate_episodes,
        max_steps=cfg.max_steps,
        seed=cfg.seed + 7919,
        action_fn=continuous_actions,
    )


def _clone_attention(
    cfg: Config, teacher_policy: torch.nn.Module, run: RunDir
) -> tuple[torch.nn.Module, dict[str, Any]]:
    spec = agent_spec(cfg, "attention")
    student = build_agent(spec)
    make = _shuffled(cfg, cfg.train_shuffle_every, cfg.seed)

    @torch.no_grad()
    def teacher(world: VecCartPoleSwingUp) -> torch.Tensor:
        obs = world.observe(world.state).float()
        return teacher_policy(obs).squeeze(-1).clamp(-1, 1)

    validation_world = _shuffled(cfg, cfg.train_shuffle_every, cfg.seed + 1)

    def validate(policy: torch.nn.Module) -> float:
        return _validation_return(cfg, policy, validation_world)

    result = behaviour_clone(
        student,
        lambda n: make(num_envs=n),
        teacher,
        label="attention (BC)",
        iterations=cfg.bc_iterations,
        envs=cfg.bc_envs,
        steps=cfg.max_steps,
        seed=cfg.seed,
        lr=cfg.bc_lr,
        epochs=cfg.bc_epochs,
        replay=cfg.bc_replay,
        beta_decay=cfg.bc_beta_decay,
        teacher_noise=cfg.bc_teacher_noise,
        validate=validate,
        run=run,
    )
    info = {
        "trained_by": f"behaviour cloning (DART/DAgger, {cfg.bc_iterations} iterations of "
        f"{cfg.bc_envs} episodes, teacher noise {cfg.bc_teacher_noise}, inputs shuffled every "
        f"{cfg.train_shuffle_every} steps) "
        "from the PGPE-trained MLP",
        "validation_mean": result.validation,
        "seconds": result.seconds,
        "env_steps": result.env_steps,
    }
    if cfg.finetune_generations:
        tuned = train_pgpe(
            student,
            make,
            label="attention (PGPE fine-tune)",
            generations=cfg.finetune_generations,
            pop_size=cfg.pop_size,
            episodes=cfg.finetune_episodes,
            max_steps=cfg.max_steps,
            seed=cfg.seed + 1,
            center_lr=cfg.finetune_lr,
            stdev_init=cfg.finetune_stdev,
            validate_every=cfg.validate_every,
            validate_episodes=cfg.validate_episodes,
            device=cfg.device,
            run=run,
        )
        before = validate(student)
        candidate = build_agent(spec)
        unflatten_into(candidate, tuned.params.float())
        after = validate(candidate)
        info["finetune"] = {"generations": tuned.generations, "before": before, "after": after}
        if after > before:
            student = candidate
            info["validation_mean"] = after
            info["trained_by"] += f", then {tuned.generations} PGPE generations"
        info["seconds"] += tuned.seconds
        info["env_steps"] += tuned.env_steps
    if cfg.reshuffle_generations:
        student = _reshuffle_stage(cfg, student, spec, validate, info, run)
    return student, info


def _reshuffle_stage(
    cfg: Config,
    student: torch.nn.Module,
    spec: dict[str, Any],
    validate: Any,
    info: dict[str, Any],
    run: RunDir,
) -> torch.nn.Module:
    """PGPE from ``student`` with the inputs re-shuffled every ``reshuffle_every`` steps;
    the result replaces ``student`` if it validates better on the mean of the
    unshuffled-and-re-shuffled returns."""
    reshuffled_world = _shuffled(cfg, cfg.reshuffle_every, cfg.seed + 2)

    def validate_reshuffled(policy: torch.nn.Module) -> float:
        return _validation_return(cfg, policy, reshuffled_world)

    def both(policy: torch.nn.Module) -> float:
        return 0.5 * (validate(policy) + validate_reshuffled(policy))

    tuned = train_pgpe(
        student,
        _shuffled(cfg, cfg.reshuffle_every, cfg.seed + 5),
        label="attention (PGPE, re-shuffled)",
        generations=cfg.reshuffle_generations,
        pop_size=cfg.pop_size,
        episodes=cfg.finetune_episodes,
        max_steps=cfg.max_steps,
        seed=cfg.seed + 2,
        center_lr=cfg.reshuffle_lr,
        stdev_init=cfg.reshuffle_stdev,
        validate_every=cfg.validate_every,
        validate_episodes=cfg.validate_episodes,
        device=cfg.device,
        run=run,
    )
    candidate = build_agent(spec)
    unflatten_into(candidate, tuned.params.float())
    before, after = both(student), both(candidate)
    info["reshuffle"] = {"generations": tuned.generations, "before": before, "after": after}
    info["seconds"] += tuned.seconds
    info["env_steps"] += tuned.env_steps
    if after > before:
        info["trained_by"] += (
            f", then {tuned.generations} PGPE generations with the inputs re-shuffled every "
            f"{cfg.reshuffle_every} steps"
        )
        return candidate
    return student


def main(cfg: Config) -> dict[str, Any]:
    """Train the MLP (PGPE) or load it (``--teacher``), clone the AttentionNeuron from
    it under shuffled inputs, save both checkpoints, and evaluate them."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    run = RunDir(EXPERIMENT, cfg.seed, cfg, root=cfg.out)
    console.print(f"[bold]{EXPERIMENT}[/] -> {run.path}")
    seed_everything(cfg.seed)
    base_meta = {"command": command_line(), "config": dataclasses.asdict(cfg)}
    if cfg.teacher:
        mlp, payload = load_agent(cfg.teacher, EXPERIMENT)
        mlp_info = {k: v for k, v in payload["meta"].items() if k not in base_meta}
    else:
        mlp, mlp_info = _train_mlp(cfg, run)
        console.print(f"MLP: validation {mlp_info['validation_mean']:.1f}")
    save_agent(
        run.checkpoints / checkpoint_name("mlp"),
        mlp,
        agent_spec(cfg, "mlp") if not cfg.teacher else payload["agent"],
        experiment=EXPERIMENT,
        meta={**base_meta, **mlp_info},
    )
    if cfg.agents in ("both", "attention"):
        seed_everything(cfg.seed)
        student, info = _clone_attention(cfg, mlp, run)
        console.print(f"AttentionNeuron: validation {info['validation_mean']:.1f}")
        save_agent(
            run.checkpoints / checkpoint_name("attention"),
            student,
            agent_spec(cfg, "attention"),
            experiment=EXPERIMENT,
            meta={**base_meta, **info},
        )
    run.close()
    summary: dict[str, Any] = {}
    if cfg.agents == "both":
        summary = evaluate(cfg, checkpoint=str(run.checkpoints))
        (run.path / "eval.json").write_text(json.dumps(summary, indent=2))
    return summary


def load_agents(checkpoint: str | None) -> dict[str, torch.nn.Module]:
    """Both agents: from the directory ``checkpoint`` (or the shipped ones)."""
    return load_agents_of(checkpoint, EXPERIMENT)


def evaluate(cfg: Config, checkpoint: str | None = None) -> dict[str, Any]:
    """``colony eval sensory-cartpole``: rows ``{condition, agent, mean, std, episodes}``
    for both agents under every condition."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    agents = load_agents(checkpoint)
    rows = evaluate_conditions(
        agents,
        world_factory(cfg),
        conditions(cfg),
        episodes=cfg.eval_episodes,
        max_steps=cfg.max_steps,
        seed=cfg.eval_seed,
        mlp_condition=_mlp_condition,
        device=cfg.device,
    )
    print_rows(rows, f"{EXPERIMENT}: return over {cfg.eval_episodes} episodes of 1000 steps")
    return {"experiment": EXPERIMENT, "world": "cartpole-swingup", "rows": rows}


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))


def watch(cfg: Config, checkpoint: str | None = None) -> SensoryWatch:
    """``colony watch sensory-cartpole``: carts swung up by the AttentionNeuron with
    their inputs shuffled every ``shuffle_every`` steps; ``x`` re-shuffles now, ``m``
    hands the carts to the MLP baseline and back."""
    agents = load_agents(checkpoint)
    world = SwingUpWorld(SwingUpConfig(num_envs=cfg.watch_envs, render_envs=cfg.watch_envs))
    return SensoryWatch(
        world,
        agents,
        shuffle_every=cfg.shuffle_every,
        action_fn=lambda out: continuous_actions(out).double().clamp(-1, 1),
        seed=cfg.seed,
        name=f"{EXPERIMENT} (x: reshuffle, m: MLP/AttentionNeuron)",
    )
