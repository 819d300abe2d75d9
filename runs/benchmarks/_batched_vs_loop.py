"""What ``colony bench population`` and ``colony bench sensory`` share (not a suite).

Both time a population's :class:`~colonylab.collective_ml.population.BatchedEvaluator`
against a per-individual :class:`~colonylab.collective_ml.population.LoopEvaluator` on
two populations, ``trained`` (a checkpoint's weights plus Gaussian noise) and
``random`` (freshly initialised policies, one seed each), and print the same table;
only the world, the policy and what counts as agreement differ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from colonylab.agents import build as build_agent
from colonylab.collective_ml.base import flatten_params
from colonylab.runs.common.bench import best_time
from colonylab.runs.common.checkpoint import load_checkpoint

POPULATIONS = ("trained", "random")
"""The populations a suite can measure (``--populations``)."""


def check_populations(populations: Iterable[str]) -> None:
    """``--populations``: at least one, each of :data:`POPULATIONS`, else ``ValueError``."""
    populations = tuple(populations)
    if not populations:
        raise ValueError(f"--populations needs at least one of {', '.join(POPULATIONS)}")
    unknown = [p for p in populations if p not in POPULATIONS]
    if unknown:
        raise ValueError(f"--populations: unknown {unknown}; choose from {', '.join(POPULATIONS)}")


def trained_population(
    path: str | Path,
    experiment: str,
    pop: int,
    noise: float,
    seed: int,
    check: Callable[[torch.nn.Module], None] | None = None,
) -> tuple[torch.nn.Module, torch.Tensor]:
    """``(policy, params (pop, D))``: the ``experiment`` checkpoint's weights plus
    ``noise`` times a standard normal drawn from a generator seeded ``seed``.
    ``check(policy)`` may refuse the built agent before its weights are loaded."""
    gen = torch.Generator().manual_seed(seed)
    ckpt = load_checkpoint(path, experiment)
    policy = build_agent(ckpt["spec"] or {})
    if check is not None:
        check(policy)
    policy.load_state_dict(ckpt["state_dict"])
    center = flatten_params(policy).float()
    return policy, center + noise * torch.randn(pop, center.numel(), generator=gen)


def random_population(
    make_policy: Callable[[], torch.nn.Module], pop: int, seed: int
) -> tuple[torch.nn.Module, torch.Tensor]:
    """``(policy, params (pop, D))``: ``pop`` policies of PyTorch's default init, policy
    ``i`` drawn under ``torch.manual_seed(seed * 1_000_003 + i)``."""
    rows = []
    for i in range(pop):
        torch.manual_seed(seed * 1_000_003 + i)
        rows.append(flatten_params(make_policy()))
    return make_policy(), torch.stack(rows)


def time_batched(
    batched: Any, params: torch.Tensor, warmup: torch.Tensor, repeats: int, device: torch.device
) -> tuple[float, torch.Tensor, int, int]:
    """Time ``batched.returns(params)`` after one untimed call on ``warmup`` (first-call
    costs): ``(best seconds of repeats, returns on the CPU, env steps, the warm-up's
    env steps)``."""
    batched.returns(warmup)
    warmup_steps = batched.last_env_steps
    seconds, returns = best_time(lambda: batched.returns(params).cpu(), repeats, device)
    return seconds, returns, batched.last_env_steps, warmup_steps


def goals_met(cases: list[dict[str, Any]], goal: float) -> dict[str, bool]:
    """``{population: batched ratio_vs_loop >= goal}``."""
    return {
        r["population"]: bool(r["ratio_vs_loop"] >= goal) for r in cases if r["impl"] == "batched"
    }


def comparison_table(
    title: str, cases: list[dict[str, Any]], *, return_format: str, rate_format: str
) -> Table:
    """One row per population and evaluator: return, env steps, seconds, episodes/s,
    steps/s and the ratio to the loop."""
    table = Table(title=title)
    for col in ("population", "impl", "return", "env steps", "s", "episodes/s", "steps/s",
                "vs loop"):  # fmt: skip
        table.add_column(
            col, justify="left" if col in ("population", "impl") else "right", no_wrap=True
        )
    for r in cases:
        table.add_row(
            r["population"],
            r["impl"],
            f"{r['mean_return']:{return_format}}",
            f"{r['env_steps']:,}",
            f"{r['seconds']:.3f}",
            f"{r['episodes_per_s']:{rate_format}}",
            f"{r['env_steps_per_s']:,.0f}",
            f"{r['ratio_vs_loop']:.1f}x",
        )
    return table


def print_goals(
    console: Console, cases: list[dict[str, Any]], met: dict[str, bool], goal: float, what: str
) -> None:
    """``goal >= 20x<what> on the trained population: 31.2x, met`` for each population."""
    for kind, ok in met.items():
        ratio = next(
            r["ratio_vs_loop"] for r in cases if r["population"] == kind and r["impl"] == "batched"
        )
        mark = "[green]met[/]" if ok else "[yellow]not met[/]"
        console.print(f"goal >= {goal:g}x{what} on the {kind} population: {ratio:.1f}x, {mark}")
