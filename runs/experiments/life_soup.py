"""Experiment ``life-soup``: what random soups become under Life-like rules.

For each rule, ``batch`` random soups are stepped together on the Numba
kernels; every ``log_every`` steps the emergence metrics (density, activity,
2x2 block entropy) are logged as ``emergence/<rule>/...``, and a period
detector watches board 0 until it settles into still lifes and oscillators.
Writes ``media/metrics.png`` (curves per rule), ``media/final_boards.png`` and
``checkpoints/final.pt`` (the boards; ``colony watch life-soup --checkpoint``
opens them).

    colony train life-soup --rules life highlife daynight --steps 1000
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from colonylab.emergence.ca import PeriodDetector, block_entropy, density
from colonylab.envs.ca.life import LifeConfig, LifeWorld
from colonylab.envs.ca.rules import LifeRule
from colonylab.runs.common import (
    RunDir,
    load_checkpoint,
    make_checkpoint,
    provenance,
    reproduce_command,
    save_checkpoint,
    seed_everything,
)


@dataclass(frozen=True)
class Config:
    """Random soups under several Life-like rules, measured as they settle."""

    rules: tuple[str, ...] = ("life", "highlife", "seeds", "daynight", "maze")
    """Rules to compare (B/S strings such as B3/S23, or names)."""
    size: int = 256
    """Board side in cells."""
    batch: int = 8
    """Soups per rule, stepped together."""
    density: float = 0.35
    """Initial share of live cells."""
    steps: int = 500
    """Steps per rule."""
    log_every: int = 10
    """Steps between metric records."""
    seed: int = 0
    """Seed of the soups."""
    boundary: str = "torus"
    """``torus`` or ``bounded``."""
    out: str | None = None
    """Run directory root (default runs/out)."""
    plots: bool = True
    """Write the PNG plots."""

    def __post_init__(self) -> None:
        for rule in self.rules:
            LifeRule.parse(rule)  # refuse bad rules before doing any work
        if not self.rules:
            raise ValueError("rules must name at least one rule")
        for name in ("size", "batch", "steps", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def _rule_key(rule: str) -> str:
    return LifeRule.parse(rule).notation.replace("/", "")


def run_rule(cfg: Config, rule: str, run: RunDir, progress: Progress) -> dict:
    """Step one rule's soups; returns its curves and final state."""
    world = LifeWorld(
        LifeConfig(
            size=cfg.size, batch=cfg.batch, rule=rule, density=cfg.density, boundary=cfg.boundary
        )
    )
    world.reset(seed=cfg.seed)
    key = _rule_key(rule)
    detector = PeriodDetector(max_history=512)
    settled = None
    curves: dict[str, list[float]] = {"step": [], "density": [], "activity": [], "entropy": []}
    task = progress.add_task(f"{world.rule.notation:>14}", total=cfg.steps)
    for t in range(cfg.steps + 1):
        if t > 0:
            world.run(1)
        if settled is None:
            settled = detector.update(world.board[0], t)
        if t % cfg.log_every == 0 or t == cfg.steps:
            boards = world.board
            values = {
                "density": float(density(boards).mean()),
                "activity": float(np.nanmean(world.activity())) if t else float("nan"),
                "entropy": float(block_entropy(boards).mean()),
            }
            curves["step"].append(t)
            for name, value in values.items():
                curves[name].append(value)
            run.log(t, {f"emergence/{key}/{name}": v for name, v in values.items()})
            progress.update(task, completed=t)
    return {
        "rule": world.rule.notation,
        "curves": curves,
        "settled": settled,
        "boards": world.board.copy(),
    }


def _plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    for r in results:
        c = r["curves"]
        for ax, name in zip(axes, ("density", "activity", "entropy"), strict=True):
            ax.plot(c["step"], c[name], label=r["rule"])
    titles = ("live-cell density", "activity (share of cells changing)", "2x2 block entropy")
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[1].set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.suptitle("Random soups under Life-like rules (mean over the batch)")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _boards_png(results: list[dict], path: Path) -> None:
    import imageio.v3 as iio

    tiles = []
    for r in results:
        board = r["boards"][0]
        tile = np.where(board[..., None] > 0, np.uint8(235), np.uint8(15)).repeat(3, axis=-1)
        tiles.append(np.pad(tile, ((2, 2), (2, 2), (0, 0)), constant_values=90))
    iio.imwrite(path, np.concatenate(tiles, axis=1))


def main(cfg: Config) -> list[dict]:
    """Run every rule; log, plot, checkpoint and print a summary table."""
    seed_everything(cfg.seed)
    console = Console()
    run = RunDir("life-soup", cfg.seed, cfg, root=cfg.out)
    results = []
    t0 = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        for rule in cfg.rules:
            results.append(run_rule(cfg, rule, run, progress))
    elapsed = time.perf_counter() - t0
    final = {r["rule"]: r["boards"] for r in results}
    save_checkpoint(
        run.checkpoints / "final.pt",
        make_checkpoint(
            "life-soup",
            config=cfg,
            provenance=provenance(
                reproduce_command("train life-soup", cfg),
                seed=cfg.seed,
                metrics={f"density/{r['rule']}": r["curves"]["density"][-1] for r in results},
            ),
            extra={"step": cfg.steps, "rules": list(final), "boards": final},
        ),
    )
    if cfg.plots:
        _plot(results, run.media / "metrics.png")
        _boards_png(results, run.media / "final_boards.png")
    run.close()

    table = Table(title=f"life-soup: {cfg.batch} soups of {cfg.size}^2 per rule, {cfg.steps} steps")
    for col in ("rule", "density", "activity", "entropy", "board 0 settled"):
        table.add_column(col, justify="right")
    for r in results:
        c, s = r["curves"], r["settled"]
        settled = "no" if s is None else f"{s.kind}, period {s.period} at step {s.first_seen}"
        table.add_row(
            r["rule"],
            f"{c['density'][-1]:.4f}",
            f"{c['activity'][-1]:.4f}",
            f"{c['entropy'][-1]:.3f}",
            settled,
        )
    console.print(table)
    cells = cfg.size**2 * cfg.batch * cfg.steps * len(cfg.rules)
    console.print(f"{cells / elapsed:.3g} cell updates/s incl. metrics; run: [bold]{run.path}[/]")
    return results


def watch(cfg: Config, checkpoint: str | None) -> LifeWorld:
    """The world ``colony watch life-soup`` shows: the first rule's soups, from a checkpoint."""
    rule = LifeRule.parse(cfg.rules[0]).notation
    if checkpoint is None:
        world = LifeWorld(
            LifeConfig(size=cfg.size, batch=cfg.batch, rule=rule, density=cfg.density)
        )
        world.reset(seed=cfg.seed)
        return world
    state = load_checkpoint(checkpoint, "life-soup")["extra"]
    boards = state["boards"]
    if rule not in boards:
        rule = state["rules"][0]
    array = boards[rule].numpy()
    world = LifeWorld(
        LifeConfig(
            height=array.shape[1],
            width=array.shape[2],
            batch=array.shape[0],
            rule=rule,
            boundary=cfg.boundary,
        )
    )
    world.set_board(array)
    world.step_count = int(state["step"])
    return world


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
