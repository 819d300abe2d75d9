"""Benchmark ``colony bench sensory``: evaluating a population of recurrent
AttentionNeuron policies on cart-pole swing-up, batched against a per-individual loop.

``pop`` :class:`~colonylab.agents.sensory.AttentionNeuronPolicy` policies (``act_dim=1``,
recurrent: ``policy(obs, state) -> (action, state)``, the state None at an episode's
start, float32 weights), ``episodes`` episodes of at most ``max_steps`` steps each of
cart-pole swing-up (5 inputs, continuous actions in ``[-1, 1]``), evaluated two ways in
the same run, on the same episodes (the same seeds):

``batched``  :class:`~colonylab.collective_ml.population.BatchedEvaluator`: every
             episode of every policy in one
             :class:`~colonylab.envs.classic.swingup.SwingUpWorld` (torch, float64
             state, its default), one ``vmap``-ed ``functional_call`` forward per step
             for the whole population, each environment carrying its own recurrent
             state; finished episodes are dropped as they end.
``loop``     :class:`~colonylab.collective_ml.population.LoopEvaluator`: what a user
             writes without a vectorized world: policy after policy, episode after
             episode, one scalar Gymnasium env
             (:class:`~colonylab.envs.classic.swingup_env.CartPoleSwingUpEnv`: plain
             NumPy and ``math``, Python-float state, float32 observations), the policy
             called on one observation at a time. The env is built directly, without
             ``gymnasium.make``'s checker and time-limit wrappers, which would only slow
             the loop. Being slow, it plays only the first ``loop_pop`` individuals (all
             of them when ``loop_pop >= pop``); the rates are per episode and per env
             step, so they are compared directly (its time for the whole population,
             ``seconds_scaled``, is its time x ``pop / loop_pop``).

Both skip action validation (the policy's tanh keeps actions in range) and both feed
the policy float32 observations. Both play the same episodes: an episode's start is
drawn from its own seed (``episode_seeds``), the batched world being reset with one
seed per environment and the scalar env with ``reset(seed=s)``, which give the same
generator. On the individuals both evaluate, the env steps must be equal and the
returns agree to ``RTOL`` relative (``|batched - loop| <= RTOL * max(1, |loop|)``), or
the benchmark stops with status 2. The returns are not bit-equal: the batched forward
runs ``vmap``-ed (batched) matmuls in float32 and the loop unbatched ones, whose last
bits differ, and 1000 steps of swing-up carry that on (the two envs' float64
dynamics agree to ~1e-15 a step); ``RTOL = 1e-3`` leaves a wide margin while still
catching a wrong seed, state or action.

Until this benchmark's baseline was the scalar env, the loop drove the torch vector
world with one environment, about 58% of its time being that world's per-step overhead;
the ratios it reported then (74.5x trained, 43.9x random) overstated the batching gain.

Threads: both evaluators run under the same torch intra-op thread count (``--threads``,
default 1); the scalar env is single-threaded Python. The table title and ``threads``
in the JSON (``{"ours", "baseline"}``) say so.

The work depends on the policies: random ones push the cart off the track after a few
hundred steps, good ones swing the pole up and balance it for all ``max_steps``. Two
populations are measured:

``trained``  the ``sensory-cartpole`` AttentionNeuron checkpoint
             (``runs/checkpoints/sensory_cartpole_attention.pt``, or ``--checkpoint``)
             plus Gaussian noise (``noise``): a population late in training, long
             episodes. Skipped, with a note, when there is no such checkpoint yet;
``random``   freshly initialised AttentionNeuron policies (PyTorch's default init, one
             seed per policy): the start of training, ragged episodes.

Reported per population and evaluator: mean return, env steps, seconds, episodes/s,
env-steps/s, and the ratio batched / loop in episodes/s (``ratio_vs_loop``; the same
ratio in env-steps/s is ``ratio_steps_vs_loop``). The goal: >= 20x in episodes/s.

JSON: ``{"suite", "machine", "torch", "threads", "device", "config", "baseline_env", "rtol",
"cases": [{"population", "impl", "seconds", "seconds_scaled", "individuals",
"episodes", "env_steps", "episodes_per_s", "env_steps_per_s", "ratio_vs_loop",
"ratio_steps_vs_loop", "mean_return"}], "agreement": {population: {"individuals",
"max_abs_diff", "max_rel_diff", "env_steps"}}, "skipped": {population: reason},
"goal": 20, "goal_met": {population: bool}}``.

    colony bench sensory --json runs/out/bench-sensory.json
    colony bench sensory --pop 512 --loop-pop 8 --populations random --device cuda
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import torch
from rich.console import Console
from torch import Tensor

from colonylab._checks import check_dataclass_ints
from colonylab.agents.sensory import AttentionNeuronPolicy
from colonylab.collective_ml.population import BatchedEvaluator, LoopEvaluator
from colonylab.envs.classic.swingup import SwingUpWorld
from colonylab.envs.classic.swingup_env import CartPoleSwingUpEnv
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
RTOL = 1e-3
"""Returns agree when ``|batched - loop| <= RTOL * max(1, |loop|)`` (float32 forwards)."""
CHECKPOINT = (
    Path(__file__).resolve().parent.parent / "checkpoints" / "sensory_cartpole_attention.pt"
)
EXPERIMENT = "sensory-cartpole"


@dataclass(frozen=True)
class Config(BatchedVsLoopConfig):
    """Batched evaluation of AttentionNeuron populations on swing-up vs a per-individual loop."""

    EXPERIMENT: ClassVar[str] = EXPERIMENT

    noise: float = 0.05
    """Standard deviation of the noise added to the checkpoint's weights (trained)."""
    max_steps: int = 1000
    """Steps per episode at most (also the world's truncation limit)."""
    loop_pop: int = 16
    """The loop plays only the first loop_pop policies (rates compared per episode)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_dataclass_ints(self, {"max_steps": 1, "loop_pop": 1})


def scalar_env(max_episode_steps: int = 1000) -> CartPoleSwingUpEnv:
    """The loop's env: one scalar Gymnasium swing-up (NumPy and ``math``), actions not
    validated (as the batched world's)."""
    return CartPoleSwingUpEnv(max_episode_steps=max_episode_steps, validate_actions=False)


def continuous_actions(output: Tensor) -> Tensor:
    """Policy outputs ``(..., 1)`` (tanh, in ``[-1, 1]``) -> actions ``(...)``."""
    return output.squeeze(-1)


def make_population(kind: str, cfg: Config) -> tuple[torch.nn.Module, torch.Tensor] | None:
    """``(policy template, params (pop, D))`` of the ``trained`` or ``random`` population;
    None for ``trained`` when there is no checkpoint."""
    if kind == "trained":
        path = Path(cfg.checkpoint) if cfg.checkpoint else CHECKPOINT
        if not path.is_file():
            return None

        def attention_neuron(policy: torch.nn.Module) -> None:
            if not callable(getattr(policy, "initial_state", None)):
                raise ValueError(f"{str(path)!r} is not an AttentionNeuron checkpoint")

        return trained_population(path, EXPERIMENT, cfg.pop, cfg.noise, cfg.seed, attention_neuron)
    return random_population(partial(AttentionNeuronPolicy, act_dim=1), cfg.pop, cfg.seed)


def main(cfg: Config) -> dict[str, Any]:
    """Time both evaluators on each population, print the table, write JSON.

    ``--threads`` holds for this call only (the previous torch setting comes back).

    Raises:
        SystemExit: the evaluators disagree (status 2).
    """
    with torch_threads(cfg.threads):
        return _run(cfg)


def _run(cfg: Config) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    console = Console()
    cases: list[dict[str, Any]] = []
    agreement: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    total_episodes = cfg.pop * cfg.episodes
    loop_pop = min(cfg.loop_pop, cfg.pop)
    loop_episodes = loop_pop * cfg.episodes
    world_factory = SwingUpWorld.factory(
        dtype="float64", validate_actions=False, max_episode_steps=cfg.max_steps
    )
    common = dict(
        episodes=cfg.episodes,
        max_steps=cfg.max_steps,
        seed=cfg.seed,
        action_fn=continuous_actions,
    )
    for kind in cfg.populations:
        made = make_population(kind, cfg)
        if made is None:
            path = cfg.checkpoint or CHECKPOINT
            reason = f"no checkpoint at {path}; make one with 'colony train {EXPERIMENT}'"
            skipped[kind] = reason
            console.print(f"[yellow]note:[/] {kind} population skipped: {reason}", highlight=False)
            continue
        policy, params = made
        batched = BatchedEvaluator(policy, world_factory, device=device, **common)
        loop = LoopEvaluator(policy, partial(scalar_env, cfg.max_steps), **common)
        with console.status(f"{kind}: batched evaluator ({total_episodes} episodes)..."):
            # the warm-up (first-call costs) also counts the env steps of the loop's individuals
            best, batched_returns, batched_steps, subset_steps = time_batched(
                batched, params, params[:loop_pop], cfg.repeats, device
            )
        with console.status(f"{kind}: loop, one scalar env ({loop_episodes} episodes)..."):
            start = time.perf_counter()
            loop_returns = loop.returns(params[:loop_pop])
            loop_seconds = time.perf_counter() - start
        loop_steps = loop.last_env_steps
        diff = (batched_returns[:loop_pop] - loop_returns).abs()
        rel = diff / loop_returns.abs().clamp_min(1.0)
        max_abs, max_rel = float(diff.max()), float(rel.max())
        agreement[kind] = {
            "individuals": loop_pop,
            "max_abs_diff": max_abs,
            "max_rel_diff": max_rel,
            "env_steps": loop_steps,
        }
        if not max_rel <= RTOL or subset_steps != loop_steps:
            console.print(
                f"[bold red]error:[/] {kind}: the evaluators disagree on the first {loop_pop} "
                f"policies (largest relative return difference {max_rel:.3g} > {RTOL:g}, or "
                f"env steps {subset_steps} vs {loop_steps})",
                highlight=False,
            )
            raise SystemExit(2)
        loop_eps_s = loop_episodes / loop_seconds
        rows = {
            "batched": (best, best, cfg.pop, total_episodes, batched_steps, batched_returns),
            "loop": (
                loop_seconds,
                loop_seconds * cfg.pop / loop_pop,
                loop_pop,
                loop_episodes,
                loop_steps,
                loop_returns,
            ),
        }
        loop_steps_s = loop_steps / loop_seconds
        for impl, (seconds, scaled, individuals, episodes, steps, returns) in rows.items():
            cases.append(
                {
                    "population": kind,
                    "impl": impl,
                    "seconds": seconds,
                    "seconds_scaled": scaled,
                    "individuals": individuals,
                    "episodes": episodes,
                    "env_steps": steps,
                    "episodes_per_s": episodes / seconds,
                    "env_steps_per_s": steps / seconds,
                    "ratio_vs_loop": episodes / seconds / loop_eps_s,
                    "ratio_steps_vs_loop": steps / seconds / loop_steps_s,
                    "mean_return": float(returns.mean()),
                }
            )
    goal_met = goals_met(cases, GOAL)
    threads = torch.get_num_threads()
    thread_info = threads_info(
        threads, threads, library="torch forwards; the scalar env is single-threaded Python"
    )
    loop_note = f"loop on the first {loop_pop}" if loop_pop < cfg.pop else "loop on all of them"
    title = (
        f"colony bench sensory ({cfg.pop} AttentionNeuron policies x {cfg.episodes} "
        f"episodes of <= {cfg.max_steps} steps; batched: SwingUpWorld on {device}; loop: "
        f"scalar Gymnasium env, {loop_note}; {threads_text(thread_info)})"
    )
    console.print(comparison_table(title, cases, return_format=".2f", rate_format=",.2f"))
    for kind, a in agreement.items():
        console.print(
            f"{kind}: on the {a['individuals']} policies both evaluate, env steps equal "
            f"({a['env_steps']:,}), returns within {a['max_rel_diff']:.1e} relative "
            f"(tolerance {RTOL:g})",
            highlight=False,
        )
    print_goals(console, cases, goal_met, GOAL, " (episodes/s, batched / loop)")
    results = {
        **results_header("sensory", device, thread_info, cfg),
        "baseline_env": "colonylab.envs.classic.swingup_env.CartPoleSwingUpEnv (scalar NumPy)",
        "rtol": RTOL,
        "cases": cases,
        "agreement": agreement,
        "skipped": skipped,
        "goal": GOAL,
        "goal_met": goal_met,
    }
    if cfg.json:
        write_json(cfg.json, results, console)
    return results


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
