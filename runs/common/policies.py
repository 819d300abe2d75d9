"""CartPole policies trained by population cores: what ``cartpole-pso`` and
``cartpole-pgpe`` share.

* :func:`mlp_policy` -- the MLP (``4 -> hidden -> 2``, tanh), argmax actions;
* :class:`CartPoleTrainConfig` -- the options both experiments take;
* :func:`train_population` -- the ask/evaluate/tell loop through the batched
  evaluator on :class:`~colonylab.envs.classic.VecCartPole`, with validation of the
  candidate on 100 fresh episodes (solved: mean >= 475, CartPole-v1's criterion),
  logging, progress bar and checkpoint;
* :func:`save_policy` / :func:`load_policy` -- checkpoints loadable with
  ``torch.load(weights_only=True)``::

      {"format": "colonylab-cartpole-policy/1", "experiment": "cartpole-pso",
       "policy": {"obs_dim": 4, "hidden": 16, "actions": 2}, "params": float32[D],
       "meta": {"command", "config", "generations", "solved", "validation_mean", ...},
       "optimizer": core.state_dict()}

* :func:`evaluate_checkpoint` -- ``colony eval``: mean / sd return over episodes of
  Gymnasium's own ``CartPole-v1`` (not only ours);
* :func:`watch_world` -- ``colony watch``: a grid of carts playing the policy.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from torch import Tensor, nn

from colonylab.collective_ml.base import PopulationOptimizer, num_params, unflatten_into
from colonylab.collective_ml.population import BatchedEvaluator, LoopEvaluator, episode_seeds
from colonylab.envs.classic.cartpole import CartPoleConfig, CartPoleWorld, VecCartPole
from colonylab.runs.common.checkpoint import read_torch_file, save_checkpoint
from colonylab.runs.common.device import resolve_device
from colonylab.runs.common.progress import progress_bar
from colonylab.runs.common.rundir import RunDir
from colonylab.runs.common.seeding import seed_everything

FORMAT = "colonylab-cartpole-policy/1"
SOLVED_RETURN = 475.0
"""CartPole-v1 is solved at a mean return >= 475 over 100 consecutive episodes."""
SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints"

# Seed streams derived from the run's seed (see derive_seed).
_TRAIN_STREAM, _VALIDATION_STREAM = 1, 2

console = Console()


# -- the policy --------------------------------------------------------------------------------
def mlp_policy(obs_dim: int = 4, hidden: int = 16, actions: int = 2) -> nn.Sequential:
    """``obs (B, obs_dim) -> logits (B, actions)``: Linear, tanh, Linear; act by argmax."""
    for name, value in (("obs_dim", obs_dim), ("hidden", hidden), ("actions", actions)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, actions))


def cartpole_factory(max_episode_steps: int = 500) -> Callable[..., VecCartPole]:
    """``factory(num_envs=N, device=d)`` for the evaluators: frozen episodes, no value
    checks on the policy's (always valid) argmax actions."""
    return partial(VecCartPole, validate_actions=False, max_episode_steps=max_episode_steps)


def derive_seed(seed: int, stream: int, index: int) -> int:
    """A seed for item ``index`` of ``stream`` of a run seeded ``seed`` (a hash, so the
    training generations, validation and evaluation never share episodes)."""
    return int(episode_seeds(seed, np.array([stream]), index + 1)[0, index])


# -- config ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CartPoleTrainConfig:
    """Options shared by the CartPole population experiments."""

    hidden: int = 16
    """Hidden units of the MLP policy (4 -> hidden -> 2, tanh)."""
    pop_size: int = 64
    """Candidates per generation."""
    episodes: int = 8
    """Training episodes per candidate (its fitness is their mean return)."""
    generations: int = 200
    """Most generations (training stops earlier once solved, see stop_when_solved)."""
    validate_episodes: int = 100
    """Episodes of the validation of the current solution (CartPole-v1: 100)."""
    validate_every: int = 5
    """Validate every this many generations, and whenever a candidate reaches solved_return
    in training."""
    solved_return: float = SOLVED_RETURN
    """Mean validation return that counts as solved (CartPole-v1: 475)."""
    stop_when_solved: bool = True
    """Stop at the first generation whose solution validates as solved."""
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
    """Torch CPU threads (the tensors are small: one thread is fastest on a shared CPU;
    None: torch's default)."""
    out: str | None = None
    """Run directory root (default runs/out)."""
    plots: bool = True
    """Write media/training.png."""

    def __post_init__(self) -> None:
        for name, low in (
            ("hidden", 1),
            ("pop_size", 2),
            ("episodes", 1),
            ("generations", 1),
            ("validate_episodes", 1),
            ("validate_every", 1),
            ("eval_episodes", 1),
            ("eval_seed", 0),
            ("watch_envs", 1),
            ("seed", 0),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(
                    f"--{name.replace('_', '-')} must be an integer >= {low}, got {value!r}"
                )
        if not 0 < self.solved_return <= 500:
            raise ValueError(f"--solved-return must be in (0, 500], got {self.solved_return}")
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise ValueError(f"--threads must be an integer >= 1, got {self.threads!r}")
        device = str(self.device)
        if not (device in ("cpu", "auto", "cuda") or device.startswith("cuda:")):
            raise ValueError(f"--device must be cpu, cuda, cuda:N or auto, got {self.device!r}")


# -- training ----------------------------------------------------------------------------------
@dataclass
class TrainResult:
    """What :func:`train_population` returns."""

    params: Tensor
    """``(D,)`` the solution (the last validated one; else the final candidate)."""
    solved: bool
    validation_mean: float
    """Mean return of ``params`` over the validation episodes (our CartPole)."""
    generations: int
    seconds: float
    env_steps: int
    """Environment steps of all training episodes."""
    history: list[dict[str, float]] = field(default_factory=list)
    """Per generation: fitness mean / max, candidate fitness, validation (when run)."""
    checkpoint: Path | None = None


def command_line() -> str:
    """The command that started this process, as the user typed it (for checkpoints)."""
    argv = sys.argv
    if argv and Path(argv[0]).name == "colony":
        return shlex.join(["colony", *argv[1:]])
    return shlex.join(["python", *argv])


def train_population(
    cfg: CartPoleTrainConfig,
    experiment: str,
    make_core: Callable[[int, Tensor, torch.device], PopulationOptimizer],
    solution: Callable[[PopulationOptimizer], Tensor],
    *,
    resample_episodes: bool,
    run: RunDir | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Train an MLP policy with a population core until solved (or ``cfg.generations``).

    Every generation: ``params = core.ask()``; fitness = mean return over
    ``cfg.episodes`` episodes each, by one :class:`BatchedEvaluator` call (the same
    starts for every candidate of a generation); ``core.tell(fitness)`` (the core is
    built with ``maximize=True``). The solution (``solution(core)``: PSO's best, PGPE's
    mean) is validated on ``cfg.validate_episodes`` fresh episodes every
    ``cfg.validate_every`` generations and whenever a candidate reaches
    ``cfg.solved_return`` in training.

    Args:
        cfg: The experiment's config.
        experiment: Its name (run folder, checkpoint).
        make_core: ``(dim, initial_params (D,), device) -> core`` with ``maximize=True``.
        solution: The params to deploy from the core, ``(D,)``.
        resample_episodes: New starts every generation (else the same ones throughout,
            a deterministic objective).
        run: Where to log and save ``checkpoints/<experiment>.pt``.
        progress: A progress display to add a task to.
    """
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    policy = mlp_policy(hidden=cfg.hidden)
    dim = num_params(policy)
    initial = torch.cat([p.detach().reshape(-1) for p in policy.parameters()])
    core = make_core(dim, initial, device)
    factory = cartpole_factory()
    evaluator = BatchedEvaluator(
        policy, factory, episodes=cfg.episodes, shared_episodes=True, device=device
    )
    validator = BatchedEvaluator(
        policy,
        factory,
        episodes=cfg.validate_episodes,
        seed=derive_seed(cfg.seed, _VALIDATION_STREAM, 0),
        device=device,
    )
    meta = {"command": command_line(), "config": dataclasses.asdict(cfg)}
    history: list[dict[str, float]] = []
    task = progress.add_task(experiment, total=cfg.generations, rate="") if progress else None
    start = time.perf_counter()
    env_steps = 0
    best_validated: tuple[float, Tensor] | None = None
    solved = False
    generation = 0
    for generation in range(1, cfg.generations + 1):
        params = core.ask()
        episode_seed = derive_seed(cfg.seed, _TRAIN_STREAM, generation if resample_episodes else 0)
        fitness = evaluator(params, episode_seed)
        env_steps += evaluator.last_env_steps
        core.tell(fitness)
        candidate = solution(core)
        fit = fitness.double()
        record: dict[str, float] = {
            "generation": generation,
            "charts/fitness_mean": float(fit.mean()),
            "charts/fitness_max": float(fit.max()),
            "charts/fitness_min": float(fit.min()),
            "charts/best_so_far": float(core.best.fitness),
            "charts/env_steps": env_steps,
            "charts/seconds": time.perf_counter() - start,
        }
        if generation % cfg.validate_every == 0 or float(fit.max()) >= cfg.solved_return:
            value = float(validator(candidate[None]).mean())
            record["charts/validation_mean"] = value
            env_steps += validator.last_env_steps
            if best_validated is None or value >= best_validated[0]:
                best_validated = (value, candidate.detach().cpu().clone())
            solved = solved or value >= cfg.solved_return
        history.append(record)
        if run is not None:
            run.log(generation, {k: v for k, v in record.items() if k != "generation"})
        if progress is not None and task is not None:
            progress.update(
                task,
                completed=generation,
                rate=f"max {record['charts/fitness_max']:.0f} mean {record['charts/fitness_mean']:.0f}"
                + (f" val {best_validated[0]:.0f}" if best_validated is not None else ""),
            )
        if solved and cfg.stop_when_solved:
            break
    seconds = time.perf_counter() - start
    if best_validated is None or not solved:
        # validate the final solution too, and keep the better one
        final = solution(core).detach().cpu().clone()
        value = float(validator(final[None].to(device)).mean())
        if best_validated is None or value >= best_validated[0]:
            best_validated = (value, final)
        solved = best_validated[0] >= cfg.solved_return
    validation_mean, best_params = best_validated
    result = TrainResult(
        params=best_params,
        solved=solved,
        validation_mean=validation_mean,
        generations=generation,
        seconds=seconds,
        env_steps=env_steps,
        history=history,
    )
    if run is not None:
        meta.update(
            generations=generation,
            seconds=seconds,
            solved=solved,
            validation_mean=validation_mean,
            validation_episodes=cfg.validate_episodes,
            env_steps=env_steps,
        )
        result.checkpoint = save_policy(
            run.checkpoints / f"{experiment.replace('-', '_')}.pt",
            best_params,
            hidden=cfg.hidden,
            experiment=experiment,
            meta=meta,
            optimizer=core.state_dict(),
        )
    return result


def run_experiment(
    cfg: CartPoleTrainConfig,
    experiment: str,
    make_core: Callable[[int, Tensor, torch.device], PopulationOptimizer],
    solution: Callable[[PopulationOptimizer], Tensor],
    *,
    resample_episodes: bool,
    algorithm: str,
) -> TrainResult:
    """``main`` of both experiments: run folder, progress bar, training, plot, table."""
    run = RunDir(experiment, cfg.seed, cfg, root=cfg.out)
    console.print(f"[bold]{experiment}[/] -> {run.path}")
    with progress_bar(console) as progress:
        result = train_population(
            cfg,
            experiment,
            make_core,
            solution,
            resample_episodes=resample_episodes,
            run=run,
            progress=progress,
        )
    run.close()
    if cfg.plots:
        plot_training(result, cfg, run.media / "training.png", f"{experiment} ({algorithm})")
    table = Table(title=f"{experiment} after {result.generations} generations")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("solved", "yes" if result.solved else "no")
    table.add_row(
        f"validation mean return ({cfg.validate_episodes} episodes)",
        f"{result.validation_mean:.1f}",
    )
    table.add_row("generations", str(result.generations))
    table.add_row("environment steps", f"{result.env_steps:,}")
    table.add_row("seconds", f"{result.seconds:.1f}")
    console.print(table)
    console.print(f"checkpoint: {result.checkpoint}")
    return result


def plot_training(result: TrainResult, cfg: CartPoleTrainConfig, path: Path, title: str) -> Path:
    """Fitness (min, mean, max per generation) and the validation returns."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gens = np.array([h["generation"] for h in result.history])
    fig, ax = plt.subplots(figsize=(8, 4.5), constrained_layout=True)
    if len(gens):
        lo = np.array([h["charts/fitness_min"] for h in result.history])
        hi = np.array([h["charts/fitness_max"] for h in result.history])
        mean = np.array([h["charts/fitness_mean"] for h in result.history])
        ax.fill_between(gens, lo, hi, color="C0", alpha=0.2, label="population min-max")
        ax.plot(gens, mean, color="C0", label="population mean")
        val = [
            (h["generation"], h["charts/validation_mean"])
            for h in result.history
            if "charts/validation_mean" in h
        ]
        if val:
            g, v = zip(*val, strict=True)
            ax.plot(g, v, "o-", color="C3", label=f"solution, {cfg.validate_episodes} new episodes")
    ax.axhline(
        cfg.solved_return, color="0.4", ls="--", lw=1, label=f"solved ({cfg.solved_return:g})"
    )
    ax.set(
        xlabel="generation",
        ylabel=f"return (mean of {cfg.episodes} episodes)",
        ylim=(0, 520),
        title=f"{title}: {'solved' if result.solved else 'not solved'} in {result.generations} "
        f"generations, {result.seconds:.0f} s",
    )
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="upper left")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -- checkpoints ---------------------------------------------------------------------------------
def save_policy(
    path: str | Path,
    params: Tensor,
    *,
    hidden: int,
    experiment: str,
    meta: dict[str, Any],
    optimizer: dict[str, Any] | None = None,
) -> Path:
    """Write a policy checkpoint (see the module doc); atomic."""
    payload: dict[str, Any] = {
        "format": FORMAT,
        "experiment": experiment,
        "policy": {"obs_dim": 4, "hidden": int(hidden), "actions": 2},
        "params": params.detach().to("cpu", torch.float32).clone(),
        "meta": meta,
    }
    if optimizer is not None:
        payload["optimizer"] = optimizer
    return save_checkpoint(path, payload)


def load_policy(path: str | Path, experiment: str) -> tuple[nn.Module, dict[str, Any]]:
    """``(policy with the checkpoint's weights, payload)``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a readable torch file, not a CartPole policy checkpoint, one of
            another experiment, or weights that do not fit the recorded architecture.
    """
    path = Path(path)
    payload = read_torch_file(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(
            f"{str(path)!r} is not a Colony Lab CartPole policy checkpoint (format "
            f"{FORMAT!r}); make one with 'colony train {experiment}'"
        )
    if payload.get("experiment") != experiment:
        raise ValueError(
            f"{str(path)!r} is a checkpoint of {payload.get('experiment')!r}, not {experiment!r}"
        )
    arch = payload.get("policy", {})
    try:
        policy = mlp_policy(int(arch["obs_dim"]), int(arch["hidden"]), int(arch["actions"]))
        unflatten_into(policy, payload["params"].float())
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"{str(path)!r}: weights do not fit the architecture {arch}: {exc}"
        ) from None
    return policy.eval(), payload


def checkpoint_path(checkpoint: str | None, shipped_name: str) -> Path:
    """``checkpoint``, or the one shipped with the package (``runs/checkpoints/``)."""
    return Path(checkpoint) if checkpoint else SHIPPED / shipped_name


# -- evaluation and watching ---------------------------------------------------------------------
def gymnasium_returns(policy: nn.Module, episodes: int, seed: int) -> np.ndarray:
    """Returns of ``policy`` (argmax) over ``episodes`` episodes of Gymnasium's
    ``CartPole-v1`` (TimeLimit 500 included), seeds from ``episode_seeds(seed, 0, e)``."""
    import gymnasium as gym

    evaluator = LoopEvaluator(
        policy, lambda: gym.make("CartPole-v1"), episodes=episodes, seed=seed, max_steps=10_000
    )
    flat = torch.cat([p.detach().reshape(-1) for p in policy.parameters()])
    return evaluator.returns(flat[None])[0].numpy()


def evaluate_checkpoint(
    cfg: CartPoleTrainConfig, checkpoint: str | None, experiment: str, shipped_name: str
) -> dict[str, Any]:
    """``colony eval``: ``mean_return``, ``std_return``, ``episodes``, ``solved`` (mean >=
    475) on Gymnasium's CartPole-v1, plus the checkpoint and the command that made it."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    path = checkpoint_path(checkpoint, shipped_name)
    policy, payload = load_policy(path, experiment)
    returns = gymnasium_returns(policy, cfg.eval_episodes, cfg.eval_seed)
    mean = float(returns.mean())
    return {
        "mean_return": mean,
        "std_return": float(returns.std()),
        "min_return": float(returns.min()),
        "episodes": int(cfg.eval_episodes),
        "solved": bool(mean >= SOLVED_RETURN),
        "env": "gymnasium CartPole-v1",
        "checkpoint": str(path),
        "command": payload.get("meta", {}).get("command", ""),
    }


def watch_world(
    cfg: CartPoleTrainConfig, checkpoint: str | None, experiment: str, shipped_name: str
) -> CartPoleWorld:
    """``colony watch``: ``cfg.watch_envs`` carts (auto-reset) driven by the policy."""
    policy, _ = load_policy(checkpoint_path(checkpoint, shipped_name), experiment)
    world = CartPoleWorld(CartPoleConfig(num_envs=cfg.watch_envs, render_envs=cfg.watch_envs))

    @torch.no_grad()
    def act(obs: Tensor) -> Tensor:
        return policy(obs.float()).argmax(dim=-1)

    world.default_policy = act
    world.metadata = {**world.metadata, "name": f"{experiment} ({Path(shipped_name).stem})"}
    world.reset(seed=cfg.seed)
    return world
