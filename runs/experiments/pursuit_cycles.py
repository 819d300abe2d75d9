"""Experiment ``pursuit-cycles``: predator-prey population cycles in the pursuit world.

Pursuit with population dynamics on (prey births, predator starvation and
births; ``CYCLE_PRESET`` by default) is stepped for ``steps`` steps under a
scripted policy. The predator and prey counts are logged every step as
``emergence/predators`` and ``emergence/prey``; after a burn-in the cycle
period of each series (``emergence.grid.cycle_period``) and the lag at which
predators follow prey (``emergence.grid.predator_prey_phase``) are measured.
Writes ``media/populations.png`` (the two series over time, the phase portrait
prey vs predators, and the cross-correlation by lag) and ``populations.npz``.

    colony train pursuit-cycles --steps 4000 --seed 1
    python -m colonylab.runs.experiments.pursuit_cycles --world.prey-birth 0.05
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from colonylab.emergence.grid import PhaseLag, cycle_period, predator_prey_phase
from colonylab.envs.grid.pursuit import CYCLE_PRESET, PursuitConfig, PursuitWorld
from colonylab.runs.common import RunDir, seed_everything


def _cycle_world() -> PursuitConfig:
    return PursuitConfig(**CYCLE_PRESET)


@dataclass(frozen=True)
class Config:
    """Predator-prey population cycles in the pursuit world: period and phase lag."""

    world: PursuitConfig = field(default_factory=_cycle_world)
    """The pursuit world; default ``CYCLE_PRESET`` (its ``max_cycles`` is replaced by
    ``steps``)."""
    policy: str = "random"
    """Scripted policy: ``random``, ``greedy-vs-flee``, ``greedy-vs-random``, ... (predators
    first)."""
    steps: int = 4000
    """Steps to run (the run ends earlier if a species dies out)."""
    burn_in: int = 500
    """First steps left out of the period and phase measurements (the transient)."""
    seed: int = 0
    """Seed of the world (placement, births) and of the policy."""
    out: str | None = None
    """Run directory root (default runs/out)."""
    plots: bool = True
    """Write the PNG plot."""

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if not 0 <= self.burn_in < self.steps:
            raise ValueError(
                f"burn_in must be in [0, steps={self.steps}), got {self.burn_in}; "
                "lower it or run more steps"
            )
        if not self.world.dynamics:
            raise ValueError(
                "the world has no population dynamics (prey_birth, predator_birth and "
                "predator_starvation are all 0), so nothing can cycle; set some, or keep "
                "the default world (CYCLE_PRESET)"
            )


@dataclass(frozen=True)
class CycleResult:
    """What a run measured.

    Attributes:
        counts: int64[T + 1, 2] living (predators, prey) after each step (row 0: reset).
        steps: steps run (``T``; fewer than asked if a species died out).
        extinct: ``"predators"``, ``"prey"`` or None.
        period_predators, period_prey: cycle periods in steps (NaN: no cycle found).
        phase: the predator-prey cross-correlation and its peak (lag > 0: predators
            follow prey).
    """

    counts: np.ndarray
    steps: int
    extinct: str | None
    period_predators: float
    period_prey: float
    phase: PhaseLag


def run_world(cfg: Config, run: RunDir | None = None, progress: Progress | None = None) -> dict:
    """Step the world, logging the counts; returns ``{"counts", "steps", "extinct",
    "kills", "births"}``."""
    world = PursuitWorld(dataclasses.replace(cfg.world, max_cycles=cfg.steps))
    obs = world.reset(seed=cfg.seed)
    policy = world.policy(cfg.policy, seed=cfg.seed)
    counts = np.zeros((cfg.steps + 1, 2), dtype=np.int64)
    counts[0] = world.species_alive
    task = progress.add_task("pursuit", total=cfg.steps) if progress is not None else None
    extinct = None
    t = 0
    for t in range(1, cfg.steps + 1):
        obs, _, _, _, info = world.step(policy(obs))
        counts[t] = info["alive"]
        if run is not None:
            run.log(
                t,
                {
                    "emergence/predators": float(counts[t, 0]),
                    "emergence/prey": float(counts[t, 1]),
                    "charts/prey_killed": float(info["deaths"][1]),
                    "charts/predators_starved": float(info["deaths"][0]),
                    "charts/predator_births": float(info["births"][0]),
                    "charts/prey_births": float(info["births"][1]),
                },
            )
        if progress is not None and (t % 50 == 0 or t == cfg.steps):
            progress.update(
                task, completed=t, description=f"pred {counts[t, 0]} prey {counts[t, 1]}"
            )
        if counts[t].min() == 0:
            extinct = "predators" if counts[t, 0] == 0 else "prey"
            break
    metrics = world.metrics()
    return {
        "counts": counts[: t + 1],
        "steps": t,
        "extinct": extinct,
        "kills": metrics["kills"],
        "births": (metrics["predator_births"], metrics["prey_births"]),
    }


def measure(counts: np.ndarray, burn_in: int) -> tuple[float, float, PhaseLag]:
    """Cycle periods of both series and their phase lag, after ``burn_in`` steps."""
    pred = counts[burn_in:, 0].astype(np.float64)
    prey = counts[burn_in:, 1].astype(np.float64)
    phase = predator_prey_phase(pred, prey)
    return cycle_period(pred), cycle_period(prey), phase


def _plot(result: CycleResult, cfg: Config, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = result.counts
    t = np.arange(counts.shape[0])
    fig, axes = plt.subplots(
        1, 3, figsize=(16, 4.6), gridspec_kw={"width_ratios": [2.2, 1.2, 1.2]}, layout="constrained"
    )
    ax = axes[0]
    ax.plot(t, counts[:, 1], color="tab:green", lw=1.2, label="prey")
    ax.set_ylabel("prey", color="tab:green")
    ax.set_xlabel("step")
    twin = ax.twinx()
    twin.plot(t, counts[:, 0], color="tab:orange", lw=1.2, label="predators")
    twin.set_ylabel("predators", color="tab:orange")
    ax.axvspan(0, min(cfg.burn_in, t[-1]), color="0.85", zorder=0)
    ax.text(cfg.burn_in / 2, ax.get_ylim()[1], "burn-in", ha="center", va="top", fontsize=8)
    ax.set_title(
        f"populations (period: predators {result.period_predators:.0f}, "
        f"prey {result.period_prey:.0f} steps)"
    )
    ax.grid(alpha=0.3)
    ax = axes[1]
    kept = counts[cfg.burn_in :]
    points = ax.scatter(
        kept[:, 1], kept[:, 0], c=np.arange(cfg.burn_in, counts.shape[0]), s=3, cmap="viridis"
    )
    ax.plot(kept[:, 1], kept[:, 0], color="0.6", lw=0.3, zorder=0)
    fig.colorbar(points, ax=ax, label="step")
    ax.set_xlabel("prey")
    ax.set_ylabel("predators")
    ax.set_title("phase portrait (after burn-in)")
    ax.grid(alpha=0.3)
    ax = axes[2]
    phase = result.phase
    ax.plot(phase.lags, phase.correlations, color="tab:blue")
    ax.axvline(0, color="0.5", lw=0.8)
    if np.isfinite(phase.lag):
        ax.axvline(phase.lag, color="tab:red", ls="--", lw=1)
        ax.annotate(
            f"peak: lag {phase.lag:.0f}\nr = {phase.correlation:.2f}",
            (phase.lag, phase.correlation),
            xytext=(8, -30),
            textcoords="offset points",
            fontsize=9,
            color="tab:red",
        )
    if np.isfinite(result.period_prey) and phase.lags.size:
        span = min(float(phase.lags[-1]), 4 * result.period_prey)  # four periods each side
        ax.set_xlim(-span, span)
    ax.set_xlabel("lag k (steps)")
    ax.set_ylabel("corr(prey[t], predators[t + k])")
    ax.set_title("predators follow prey by k > 0")
    ax.grid(alpha=0.3)
    fig.suptitle(
        f"pursuit-cycles: {cfg.policy} policy, {result.steps} steps, seed {cfg.seed}"
        + (f" ({result.extinct} died out)" if result.extinct else "")
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(cfg: Config) -> CycleResult:
    """Run, measure the cycles, log, plot and print a summary table."""
    seed_everything(cfg.seed)
    console = Console()
    run = RunDir("pursuit-cycles", cfg.seed, cfg, root=cfg.out)
    t0 = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description:>24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        out = run_world(cfg, run, progress)
    elapsed = time.perf_counter() - t0
    counts = out["counts"]
    burn_in = min(cfg.burn_in, max(counts.shape[0] - 4, 0))
    period_pred, period_prey, phase = measure(counts, burn_in)
    result = CycleResult(counts, out["steps"], out["extinct"], period_pred, period_prey, phase)
    summary = {
        "emergence/cycle_period_predators": period_pred,
        "emergence/cycle_period_prey": period_prey,
        "emergence/phase_lag": phase.lag,
        "emergence/phase_correlation": phase.correlation,
    }
    run.log(out["steps"], summary)
    np.savez(
        run.path / "populations.npz",
        counts=counts,
        lags=phase.lags,
        correlations=phase.correlations,
    )
    if cfg.plots:
        _plot(result, dataclasses.replace(cfg, burn_in=burn_in), run.media / "populations.png")
    run.close()

    pred, prey = counts[burn_in:, 0], counts[burn_in:, 1]
    table = Table(title=f"pursuit-cycles: {cfg.policy}, {out['steps']} steps, seed {cfg.seed}")
    table.add_column("measure")
    table.add_column("predators", justify="right")
    table.add_column("prey", justify="right")
    table.add_row("cycle period (steps)", f"{period_pred:.1f}", f"{period_prey:.1f}")
    table.add_row("min / mean / max", _span(pred), _span(prey))
    table.add_row("births", f"{out['births'][0]:,}", f"{out['births'][1]:,}")
    table.add_row("prey killed", "", f"{out['kills']:,}")
    table.add_row(
        "predators follow prey by",
        f"{phase.lag:.0f} steps (r = {phase.correlation:.2f})",
        "",
    )
    console.print(table)
    if out["extinct"]:
        console.print(f"[yellow]the {out['extinct']} died out at step {out['steps']}[/]")
    console.print(f"{out['steps'] / elapsed:,.0f} steps/s incl. logging; run: [bold]{run.path}[/]")
    return result


def _span(x: np.ndarray) -> str:
    return f"{x.min():,} / {x.mean():,.0f} / {x.max():,}" if x.size else "-"


def watch(cfg: Config, checkpoint: str | None) -> PursuitWorld:
    """The world ``colony watch pursuit-cycles`` shows: the run's world, stepped by its
    policy (this experiment saves no checkpoints)."""
    if checkpoint is not None:
        raise ValueError("pursuit-cycles saves no checkpoints; watch it without --checkpoint")
    world = PursuitWorld(dataclasses.replace(cfg.world, max_cycles=cfg.steps))
    world.reset(seed=cfg.seed)
    world.default_policy = world.policy(cfg.policy, seed=cfg.seed)
    return world


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
