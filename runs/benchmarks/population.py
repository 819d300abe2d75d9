"""Benchmark ``colony bench population``: evaluating a population of CartPole policies,
batched against a per-individual loop over Gymnasium.

``pop`` MLP policies (``4 -> 16 -> 2``, tanh, argmax), ``episodes`` episodes each, are
evaluated twice in the same run, on the same episodes (the same seeds):

``batched``  :class:`~colonylab.collective_ml.population.BatchedEvaluator`: every
             episode of every policy in one :class:`~colonylab.envs.classic.VecCartPole`
             (torch), one ``vmap``-ed ``functional_call`` forward per step for the
             whole population; finished episodes are dropped as they end.
``loop``     :class:`~colonylab.collective_ml.population.LoopEvaluator`: policy after
             policy, episode after episode, ``gym.make("CartPole-v1")`` stepped one
             action at a time and the policy called on one observation: how a
             per-individual evaluation is usually written.

Both do the same work: the returns must agree exactly and the environment steps
(counted by both) must be equal, or the benchmark stops. The work depends on the
policies (random ones fall after ~10-50 steps, good ones last 500), so two populations
are measured:

``trained``  the shipped ``cartpole-pso`` weights plus Gaussian noise (``noise``): a
             population late in training, most episodes long;
``random``   freshly initialised MLPs (PyTorch's default init, one seed per policy):
             the start of training, short and ragged episodes.

Reported per population and evaluator: seconds, episodes/s, env-steps/s, and the ratio
batched / loop in env-steps/s (equal work, so also the ratio of the times). The issue's
goal: >= 20x.

Threads: both evaluators run under the same torch intra-op thread count (``--threads``,
default 1) for the policy forwards; Gymnasium's CartPole steps are scalar NumPy (one
thread). Stated in the title and as ``threads: {"ours", "baseline"}``.

JSON: ``{"suite", "machine", "torch", "gymnasium", "threads", "device", "config",
"cases": [{"population", "impl", "seconds", "episodes", "env_steps", "episodes_per_s",
"env_steps_per_s", "ratio_vs_loop", "mean_return"}], "agreement": {population:
max_abs_diff}, "goal": 20, "goal_met": {population: bool}}``.

    colony bench population --json runs/out/bench-population.json
    colony bench population --pop 256 --episodes 4 --populations trained
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from rich.console import Console

from colonylab.agents.mlp import MLPPolicy
from colonylab.collective_ml.population import BatchedEvaluator, LoopEvaluator
from colonylab.envs.classic.cartpole import CartPoleWorld
from colonylab.runs.benchmarks._batched_vs_loop import (
    BatchedVsLoopConfig,
    comparison_table,
    goals_met,
    print_goals,
    random_population,
    time_batched,
    trained_population,
)
from colonylab.runs.common.bench import (
    results_header,
    threads_info,
    threads_text,
    torch_threads,
    write_json,
)
from colonylab.runs.common.device import resolve_device

GOAL = 20.0
SHIPPED_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "cartpole_pso.pt"
EXPERIMENT = "cartpole-pso"


def mlp_policy() -> torch.nn.Module:
    """The CartPole policy: ``obs (B, 4) -> logits (B, 2)``, tanh hidden layer of 16, argmax."""
    return MLPPolicy((4,), 2, hidden=(16,), output="linear")


@dataclass(frozen=True)
class Config(BatchedVsLoopConfig):
    """Batched population evaluation on vectorized CartPole vs a loop over Gymnasium envs."""

    EXPERIMENT: ClassVar[str] = EXPERIMENT


def make_population(kind: str, cfg: Config) -> tuple[torch.nn.Module, torch.Tensor]:
    """``(policy template, params (pop, D))`` of the ``trained`` or ``random`` population."""
    if kind == "trained":
        path = cfg.checkpoint or SHIPPED_CHECKPOINT
        return trained_population(path, EXPERIMENT, cfg.pop, cfg.noise, cfg.seed)
    return random_population(mlp_policy, cfg.pop, cfg.seed)


def main(cfg: Config) -> dict[str, Any]:
    """Time both evaluators on each population, print the table, write JSON.

    ``--threads`` holds for this call only (the previous torch setting comes back).

    Raises:
        SystemExit: the evaluators disagree (status 2).
    """
    with torch_threads(cfg.threads):
        return _run(cfg)


def _run(cfg: Config) -> dict[str, Any]:
    import gymnasium as gym

    device = resolve_device(cfg.device)
    console = Console()
    cases: list[dict[str, Any]] = []
    agreement: dict[str, float] = {}
    total_episodes = cfg.pop * cfg.episodes
    for kind in cfg.populations:
        policy, params = make_population(kind, cfg)
        batched = BatchedEvaluator(
            policy,
            CartPoleWorld.factory(validate_actions=False, max_episode_steps=500),
            episodes=cfg.episodes,
            seed=cfg.seed,
            device=device,
        )
        loop = LoopEvaluator(
            policy, lambda: gym.make("CartPole-v1"), episodes=cfg.episodes, seed=cfg.seed
        )
        with console.status(f"{kind}: batched evaluator ({total_episodes} episodes)..."):
            warmup = params[: min(cfg.pop, 4)]
            best, batched_returns, batched_steps, _ = time_batched(
                batched, params, warmup, cfg.repeats, device
            )
        with console.status(f"{kind}: loop over Gymnasium ({total_episodes} episodes)..."):
            start = time.perf_counter()
            loop_returns = loop.returns(params)
            loop_seconds = time.perf_counter() - start
        diff = float((batched_returns - loop_returns).abs().max())
        agreement[kind] = diff
        if diff > 1e-6 or batched_steps != loop.last_env_steps:
            console.print(
                f"[bold red]error:[/] {kind}: the evaluators disagree (largest return "
                f"difference {diff}, env steps {batched_steps} vs {loop.last_env_steps})",
                highlight=False,
            )
            raise SystemExit(2)
        mean_return = float(loop_returns.mean())
        rows = {"batched": best, "loop": loop_seconds}
        for impl, seconds in rows.items():
            cases.append(
                {
                    "population": kind,
                    "impl": impl,
                    "seconds": seconds,
                    "episodes": total_episodes,
                    "env_steps": batched_steps,
                    "episodes_per_s": total_episodes / seconds,
                    "env_steps_per_s": batched_steps / seconds,
                    "ratio_vs_loop": loop_seconds / seconds,
                    "mean_return": mean_return,
                }
            )
    goal_met = goals_met(cases, GOAL)
    threads = torch.get_num_threads()
    thread_info = threads_info(
        threads, threads, library="torch forwards; Gymnasium CartPole steps are scalar NumPy"
    )
    title = (
        f"colony bench population ({cfg.pop} MLP policies x {cfg.episodes} episodes, "
        f"CartPole-v1, batched on {device}; {threads_text(thread_info)})"
    )
    console.print(comparison_table(title, cases, return_format=".1f", rate_format=",.0f"))
    console.print("returns and env steps agree exactly between the evaluators")
    print_goals(console, cases, goal_met, GOAL, "")
    results = {
        **results_header("population", device, thread_info, cfg, gymnasium=gym.__version__),
        "cases": cases,
        "agreement": agreement,
        "goal": GOAL,
        "goal_met": goal_met,
    }
    if cfg.json:
        write_json(cfg.json, results, console)
    return results


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
