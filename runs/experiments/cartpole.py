"""Experiments ``cartpole-pso`` and ``cartpole-pgpe``: an MLP policy for CartPole-v1 found
by particle swarm optimization or by PGPE with the ClipUp optimizer.

One experiment, two registered variants (``runs/registry.py``): ``cartpole-pso`` is
``--core pso``, ``cartpole-pgpe`` is ``--core pgpe``; only the core and its options
(``--pso.*``, ``--pgpe.*``) differ, everything else is shared.

===============  ==========================================================================
world            :class:`~colonylab.envs.classic.CartPoleWorld` (CartPole-v1 dynamics,
                 finished episodes freeze), ``pop_size x episodes`` carts at once
agent            :class:`~colonylab.agents.mlp.MLPPolicy` ``4 -> 16 -> 2`` (tanh, logits,
                 argmax actions: 114 numbers), spec ``{"type": "mlp", ...}``
core             ``pso``: :class:`~colonylab.collective_ml.pso.PSO` (ring, reflecting
                 bounds, velocity clamp), every particle a flat weight vector;
                 ``pgpe``: :class:`~colonylab.collective_ml.es.PGPE`, a Gaussian over the
                 weights, antithetic pairs ``mu +- sigma * z``, the mean moved by ClipUp
                 (a normalised step with momentum and a speed limit), ``sigma`` adapted
trainer          :func:`~colonylab.collective_ml.trainers.evolve`
evaluator        ``--evaluator batched`` (default: one vectorized world, one ``vmap``-ed
                 forward per step), ``loop`` (Gymnasium's CartPole-v1, one by one) or
                 ``ray`` (actors; ``--ray-address`` joins a running cluster)
fitness          mean return over ``episodes`` starts, the same for every candidate; PSO:
                 the same starts every generation (its memories stay comparable), PGPE:
                 new starts each generation (each pair compared on equal terms)
validation       the solution (PSO: the swarm's best, PGPE: the mean ``mu``) on 100 fresh
                 episodes every ``validate_every`` generations (and when a candidate
                 reaches 475); stops once solved (mean >= 475, CartPole-v1's criterion)
===============  ==========================================================================

Writes ``metrics.jsonl`` (``charts/fitness_*``, ``charts/validation``),
``checkpoints/latest.pt`` (every ``checkpoint_every`` generations, at the end, on
Ctrl-C; ``--resume RUN_DIR`` continues it bit-identically),
``checkpoints/cartpole_<core>.pt`` (the solution, one checkpoint format, kind
``cartpole-<core>``) and ``media/training.png``.

Shipped: ``runs/checkpoints/cartpole_pso.pt`` from ``colony train cartpole-pso`` (seed 0,
solved in 4 generations) and ``runs/checkpoints/cartpole_pgpe.pt`` from ``colony train
cartpole-pgpe`` (seed 0, solved in 9 generations): each 500.0 +- 0.0 over 100 episodes
of Gymnasium's CartPole-v1.

    colony train cartpole-pso
    colony train cartpole-pgpe --pgpe.center-lr 0.1
    colony train cartpole-pso --evaluator ray               # local Ray, same result
    colony eval cartpole-pgpe --json eval.json              # the shipped checkpoint
    colony watch cartpole-pso
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from colonylab import agents
from colonylab._checks import (
    check_choice,
    check_dataclass_ints,
    check_float,
    check_optional_int,
)
from colonylab.collective_ml.base import unflatten_into
from colonylab.collective_ml.es import OPTIMIZERS, PGPE
from colonylab.collective_ml.population import (
    EVALUATORS,
    BatchedEvaluator,
    LoopEvaluator,
    episode_seeds,
    make_evaluator,
)
from colonylab.collective_ml.pso import BOUNDARIES, PSO, TOPOLOGIES
from colonylab.collective_ml.trainers import EvolveResult, evolve
from colonylab.envs.classic.cartpole import CartPoleConfig, CartPoleWorld
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
from colonylab.runs.common.device import check_device_option, resolve_device
from colonylab.runs.common.progress import progress_bar
from colonylab.runs.common.rundir import RunDir
from colonylab.runs.common.seeding import seed_everything
from colonylab.runs.common.stages import load_model

CORES = ("pso", "pgpe")
"""The cores this experiment trains with; ``--core C`` is the experiment ``cartpole-C``."""
CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
SOLVED_RETURN = 475.0
"""CartPole-v1 is solved at a mean return >= 475 over 100 consecutive episodes."""
console = Console()


@dataclass(frozen=True)
class PSOOptions:
    """Options of ``--core pso`` (``--pso.topology ring``)."""

    bound: float = 2.0
    """Particles live in [-bound, bound] in every weight."""
    topology: str = "ring"
    """Swarm topology: gbest, ring, von_neumann or random."""
    velocity_clamp: float | None = 0.25
    """Largest speed per generation as a fraction of 2 * bound (None: no clamp)."""
    boundary: str = "reflect"
    """What happens at the bounds: clamp, reflect, periodic or random."""

    def __post_init__(self) -> None:
        check_float("--pso.bound", self.bound, 0, low_open=True)
        check_choice("--pso.topology", self.topology, TOPOLOGIES)
        check_choice("--pso.boundary", self.boundary, BOUNDARIES)
        if self.velocity_clamp is not None:
            check_float("--pso.velocity-clamp", self.velocity_clamp, 0, low_open=True)


@dataclass(frozen=True)
class PGPEOptions:
    """Options of ``--core pgpe`` (``--pgpe.center-lr 0.15``)."""

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
        check_choice("--pgpe.optimizer", self.optimizer, OPTIMIZERS)
        check_float("--pgpe.center-lr", self.center_lr, 0, low_open=True)
        check_float("--pgpe.stdev-init", self.stdev_init, 0, low_open=True)
        if self.max_speed is not None:
            check_float("--pgpe.max-speed", self.max_speed, 0, low_open=True)
        check_float("--pgpe.stdev-lr", self.stdev_lr, 0)
        check_float(
            "--pgpe.stdev-max-change", self.stdev_max_change, 0, 1, low_open=True, high_open=True
        )


@dataclass(frozen=True)
class Config:
    """Train an MLP CartPole-v1 policy with PSO or with PGPE and ClipUp."""

    core: str = "pso"
    """The population core: pso (particle swarm) or pgpe (PGPE + ClipUp); the
    experiment is cartpole-<core>."""
    hidden: int = 16
    """Hidden units of the MLP policy (4 -> hidden -> 2, tanh)."""
    pop_size: int = 64
    """Candidates per generation (PSO: particles; PGPE: even, antithetic pairs)."""
    episodes: int = 8
    """Training episodes per candidate (its fitness is their mean return)."""
    generations: int = 200
    """Most generations (training stops earlier once solved, see stop_when_solved)."""
    validate_episodes: int = 100
    """Episodes of the validation of the solution (CartPole-v1: 100)."""
    validate_every: int = 5
    """Validate every this many generations, and whenever a candidate reaches
    solved_return in training."""
    solved_return: float = SOLVED_RETURN
    """Mean validation return that counts as solved (CartPole-v1: 475)."""
    stop_when_solved: bool = True
    """Stop at the first generation whose solution validates as solved."""
    pso: PSOOptions = field(default_factory=PSOOptions)
    """Options of --core pso."""
    pgpe: PGPEOptions = field(default_factory=PGPEOptions)
    """Options of --core pgpe."""
    evaluator: str = "batched"
    """Population evaluation: batched (one vectorized world), loop (Gymnasium's
    CartPole-v1, one candidate after another) or ray (Ray actors)."""
    ray_address: str | None = None
    """With --evaluator ray: a running cluster's address (None: start Ray here)."""
    checkpoint_every: int = 10
    """Write checkpoints/latest.pt every this many generations (and at the end)."""
    eval_episodes: int = 100
    """``colony eval``: episodes of Gymnasium's CartPole-v1."""
    eval_seed: int = 2024
    """``colony eval``: base seed of the evaluation episodes (differs from training's)."""
    watch_envs: int = 9
    """``colony watch``: carts shown."""
    seed: int = 0
    """Seed of the core, the initial policy and every episode."""
    device: str = "cpu"
    """``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when present)."""
    threads: int | None = 1
    """Torch CPU threads (small tensors: one thread is fastest; None: torch's default)."""
    out: str | None = None
    """Run directory root (default runs/out)."""
    plots: bool = True
    """Write media/training.png."""

    def __post_init__(self) -> None:
        check_choice("--core", self.core, CORES)
        check_dataclass_ints(
            self,
            {"hidden": 1, "pop_size": 2, "episodes": 1, "generations": 1,
             "validate_episodes": 1, "validate_every": 1, "checkpoint_every": 1,
             "eval_episodes": 1, "eval_seed": 0, "watch_envs": 1, "seed": 0},
        )  # fmt: skip
        check_float("--solved-return", self.solved_return, 0, 500, low_open=True)
        check_optional_int("--threads", self.threads, 1)
        check_device_option(self.device)
        check_choice("--evaluator", self.evaluator, EVALUATORS)
        if self.ray_address is not None and self.evaluator != "ray":
            raise ValueError(f"--ray-address needs --evaluator ray, got {self.evaluator!r}")
        if self.core == "pso" and self.pso.topology != "gbest" and self.pop_size < 3:
            raise ValueError(f"--pso.topology {self.pso.topology} needs --pop-size >= 3")
        if self.core == "pgpe" and self.pop_size % 2:
            raise ValueError(
                f"--pop-size must be even (PGPE samples antithetic pairs), got {self.pop_size}"
            )

    @property
    def experiment(self) -> str:
        """The experiment (and checkpoint kind) this config runs: ``cartpole-<core>``."""
        return f"cartpole-{self.core}"


def shipped(core: str) -> Path:
    """The checkpoint shipped for ``core``: ``runs/checkpoints/cartpole_<core>.pt``."""
    return CHECKPOINTS / f"cartpole_{check_choice('--core', core, CORES)}.pt"


def make_core(cfg: Config, policy: torch.nn.Module, device: torch.device):
    """The population core of ``cfg.core`` over the policy's flat weights."""
    initial = torch.cat([p.detach().reshape(-1) for p in policy.parameters()])  # (D,)
    if cfg.core == "pso":
        o = cfg.pso
        return PSO(
            initial.numel(), cfg.pop_size, bounds=(-o.bound, o.bound), topology=o.topology,
            boundary=o.boundary, velocity_clamp=o.velocity_clamp, seed=cfg.seed,
            device=device, maximize=True,
        )  # fmt: skip
    o = cfg.pgpe
    return PGPE(
        initial.numel(), cfg.pop_size, center_init=initial.to(device),
        stdev_init=o.stdev_init, center_lr=o.center_lr, max_speed=o.max_speed,
        stdev_lr=o.stdev_lr, stdev_max_change=o.stdev_max_change, optimizer=o.optimizer,
        seed=cfg.seed, device=device, maximize=True,
    )  # fmt: skip


def solution(cfg: Config, core) -> torch.Tensor:
    """The deployed weights: PSO's best particle, PGPE's mean."""
    return core.best.params if cfg.core == "pso" else core.center


def policy_spec(cfg: Config) -> dict[str, Any]:
    """The agent's spec (``agents.build``): the MLP, logits, act by argmax."""
    return {"type": "mlp", "input_shape": [4], "act_dim": 2, "hidden": [cfg.hidden],
            "output": "linear"}  # fmt: skip


def derive_seed(seed: int, stream: int, index: int) -> int:
    """A seed for item ``index`` of ``stream`` (1: training, 2: validation) of a run
    seeded ``seed``, so training, validation and evaluation never share episodes."""
    return int(episode_seeds(seed, np.array([stream]), index + 1)[0, index])


def gymnasium_cartpole():
    """One Gymnasium ``CartPole-v1`` (the loop evaluator's and ``colony eval``'s world)."""
    import gymnasium as gym

    return gym.make("CartPole-v1")


def main(cfg: Config, resume: str | None = None) -> EvolveResult:
    """Train until solved (or ``generations``); save the checkpoints and the plot.

    Args:
        cfg: The run's config.
        resume: A run directory to continue from its ``checkpoints/latest.pt``.
    """
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    policy = agents.build(policy_spec(cfg))  # the initial weights come from the seed
    core = make_core(cfg, policy, device)
    name = cfg.experiment
    world = CartPoleWorld.factory(validate_actions=False, max_episode_steps=500)
    evaluator = make_evaluator(
        cfg.evaluator, policy, world_factory=world, env_factory=gymnasium_cartpole,
        episodes=cfg.episodes, shared_episodes=True, device=device, ray_address=cfg.ray_address,
    )  # fmt: skip
    validator = BatchedEvaluator(
        policy, world, episodes=cfg.validate_episodes,
        seed=derive_seed(cfg.seed, 2, 0), device=device,
    )  # fmt: skip
    state = None
    if resume is not None:
        ckpt = load_checkpoint(latest_checkpoint(resume), name)
        state = ckpt["trainer"]
        set_rng_states(ckpt["rng"])
    run = RunDir(name, cfg.seed, cfg, root=cfg.out, resume=resume)
    if state is not None:
        run.truncate_metrics(int(state["generation"]))
    # the flags are relative to the variant's defaults: `colony train cartpole-pgpe`
    command = reproduce_command(f"train {name}", cfg, default=Config(core=cfg.core))

    def checkpoint(trainer: dict[str, Any], metrics: dict[str, Any] | None = None) -> dict:
        best = trainer["best"]["params"] if trainer["best"] else solution(cfg, core)
        model = unflatten_into(agents.build(policy_spec(cfg)), best.to(torch.float32))
        return make_checkpoint(
            name, spec=policy_spec(cfg), state_dict=model.state_dict(), config=cfg,
            trainer=trainer, rng=rng_states(),
            provenance=provenance(command, seed=cfg.seed, metrics=metrics),
        )  # fmt: skip

    def save(trainer: dict[str, Any]) -> Path:
        return save_checkpoint(run.checkpoints / "latest.pt", checkpoint(trainer))

    console.print(f"[bold]{name}[/] -> {run.path}")
    with progress_bar(console) as bar:
        task = bar.add_task(name, total=cfg.generations, rate="")
        result = evolve(
            core,
            evaluator,
            cfg.generations,
            # PSO: the same starts every generation (its memories stay comparable);
            # PGPE: new starts every generation
            seeds=lambda g: derive_seed(cfg.seed, 1, g if cfg.core == "pgpe" else 0),
            solution=lambda c: solution(cfg, c),
            validate=lambda params, g: float(validator(params[None].to(device)).mean()),
            validate_every=cfg.validate_every,
            validate_when=lambda g, r: r["charts/fitness_max"] >= cfg.solved_return,
            target=cfg.solved_return if cfg.stop_when_solved else None,
            log=run,
            progress=lambda g, r: bar.update(
                task, completed=g, rate=f"max {r['charts/fitness_max']:.0f}"
            ),
            save=save,
            checkpoint_every=cfg.checkpoint_every,
            resume=state,
        )
    if hasattr(evaluator, "shutdown"):
        evaluator.shutdown()
    run.close()
    solved = result.score is not None and result.score >= cfg.solved_return
    metrics = {"validation_mean": result.score, "validation_episodes": cfg.validate_episodes,
               "solved": solved, "generations": result.generations, "env_steps": result.env_steps}  # fmt: skip
    final = run.checkpoints / shipped(cfg.core).name
    path = save_checkpoint(final, checkpoint(result.state, metrics))
    save_checkpoint(run.checkpoints / "latest.pt", checkpoint(result.state, metrics))
    if cfg.plots:
        plot_training(result, cfg, run.media / "training.png")
    console.print(
        f"{'solved' if solved else 'not solved'}: validation mean {result.score:.1f} over "
        f"{cfg.validate_episodes} episodes after {result.generations} generations, "
        f"{result.env_steps:,} env steps, {result.seconds:.1f} s\ncheckpoint: {path}"
    )
    return result


def plot_training(result: EvolveResult, cfg: Config, path: Path) -> Path:
    """Fitness (min, mean, max per generation) and the validation returns."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = result.history
    gens = [r["generation"] for r in h]
    fig, ax = plt.subplots(figsize=(8, 4.5), constrained_layout=True)
    lo, hi = [r["charts/fitness_min"] for r in h], [r["charts/fitness_max"] for r in h]
    ax.fill_between(gens, lo, hi, color="C0", alpha=0.2, label="population min-max")
    ax.plot(gens, [r["charts/fitness_mean"] for r in h], color="C0", label="population mean")
    val = [(r["generation"], r["charts/validation"]) for r in h if "charts/validation" in r]
    if val:
        label = "best particle" if cfg.core == "pso" else "mean mu"
        ax.plot(*zip(*val, strict=True), "o-", color="C3", label=f"{label}, new episodes")
    ax.axhline(cfg.solved_return, color="0.4", ls="--", lw=1, label="solved")
    ax.set(xlabel="generation", ylabel=f"return (mean of {cfg.episodes} episodes)",
           ylim=(0, 520), title=f"{cfg.experiment}: {core_title(cfg)}")  # fmt: skip
    ax.legend(loc="upper left")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def core_title(cfg: Config) -> str:
    """The core in a few words, for the plot's title."""
    if cfg.core == "pso":
        return f"PSO, {cfg.pso.topology}, {cfg.pop_size} particles"
    return f"PGPE + {cfg.pgpe.optimizer}, population {cfg.pop_size}"


def load_policy(
    checkpoint: str | Path | None = None, core: str = "pso"
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """``(policy, checkpoint dict)`` from a ``cartpole-<core>`` ``checkpoint`` (default:
    the one shipped for ``core``)."""
    path = checkpoint if checkpoint is not None else shipped(core)
    return load_model(path, f"cartpole-{core}", agents.build)


def evaluate(cfg: Config, checkpoint: str | None = None) -> dict[str, Any]:
    """``colony eval cartpole-<core>``: mean / sd return over ``eval_episodes`` episodes
    of Gymnasium's CartPole-v1 (``solved``: mean >= 475)."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    policy, ckpt = load_policy(checkpoint, cfg.core)
    loop = LoopEvaluator(policy, gymnasium_cartpole, episodes=cfg.eval_episodes,
                         seed=cfg.eval_seed, max_steps=10_000)  # fmt: skip
    flat = torch.cat([p.detach().reshape(-1) for p in policy.parameters()])
    returns = loop.returns(flat[None])[0].numpy()
    return {
        "mean_return": float(returns.mean()),
        "std_return": float(returns.std()),
        "min_return": float(returns.min()),
        "episodes": int(cfg.eval_episodes),
        "solved": bool(returns.mean() >= SOLVED_RETURN),
        "env": "gymnasium CartPole-v1",
        "checkpoint": str(checkpoint if checkpoint is not None else shipped(cfg.core)),
        "command": ckpt["provenance"].get("command", ""),
    }


def watch(cfg: Config, checkpoint: str | None = None) -> CartPoleWorld:
    """``colony watch cartpole-<core>``: carts driven by the policy, restarting when they
    fall."""
    policy, _ = load_policy(checkpoint, cfg.core)
    world = CartPoleWorld(CartPoleConfig(num_envs=cfg.watch_envs, render_envs=cfg.watch_envs))

    @torch.no_grad()
    def act(obs: torch.Tensor) -> torch.Tensor:  # obs: (N, 4) -> actions (N,)
        return policy(obs.float()).argmax(dim=-1)

    world.default_policy = act
    world.metadata = {
        **world.metadata,
        "name": f"{cfg.experiment} ({Path(checkpoint or shipped(cfg.core)).name})",
    }
    world.reset(seed=cfg.seed)
    return world


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
