"""What ``colony bench population`` and ``colony bench sensory`` share (not a suite).

Both time a population's :class:`~colonylab.collective_ml.population.BatchedEvaluator`
against a per-individual :class:`~colonylab.collective_ml.population.LoopEvaluator` on
two populations, ``trained`` (a checkpoint's weights plus Gaussian noise) and
``random`` (freshly initialised policies, one seed each), and print the same table;
only the world, the policy and what counts as agreement differ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from rich.console import Console
from rich.table import Table

from colonylab._checks import check_dataclass_ints, check_float, check_optional_int
from colonylab.agents import build as build_agent
from colonylab.collective_ml.base import flatten_params
from colonylab.runs.common.bench import best_time, check_checkpoint_option
from colonylab.runs.common.checkpoint import load_checkpoint
from colonylab.runs.common.device import check_device_option

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


@dataclass(frozen=True)
class BatchedVsLoopConfig:
    """The options both suites take; a suite's ``Config`` derives from it, names the
    ``EXPERIMENT`` whose checkpoint makes its trained population, and may add options."""

    EXPERIMENT: ClassVar[str] = ""
    """The experiment whose checkpoint makes the trained population."""

    pop: int = 256
    """Policies in the population."""
    episodes: int = 1
    """Episodes per policy (both evaluators play the same ones)."""
    populations: tuple[str, ...] = POPULATIONS
    """Which populations to measure: trained (checkpoint + noise) and/or random."""
    noise: float = 0.1
    """Standard deviation of the noise added to the checkpoint's weights (trained)."""
    checkpoint: str | None = None
    """Checkpoint of the trained population (default: the shipped one)."""
    repeats: int = 1
    """Timed runs of the batched evaluator (the best counts; the loop runs once)."""
    device: str = "cpu"
    """Device of the batched evaluator: cpu, cuda, cuda:N or auto (the loop is CPU)."""
    threads: int | None = 1
    """Torch CPU threads for both (None: torch's default)."""
    seed: int = 0
    """Seed of the policies, the noise and the episodes."""
    json: str | None = None
    """Write the results to this JSON file."""

    def __post_init__(self) -> None:
        check_dataclass_ints(self, {"pop": 1, "episodes": 1, "repeats": 1, "seed": 0})
        check_populations(self.populations)
        check_float("--noise", self.noise, 0)
        check_optional_int("--threads", self.threads, 1)
        check_device_option(self.device)
        check_checkpoint_option(self.checkpoint, self.EXPERIMENT)


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
