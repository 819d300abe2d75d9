"""Benchmark ``colony bench ae``: time to target on the static regression, AE vs AdamW.

The ``ae-suite`` regression (256 points in 8-D, a tanh MLP 8-32-32-1, full batch, MSE
of unit-variance targets; see :mod:`colonylab.runs.experiments.ae_suite`): plain AdamW (lr 1e-3,
torch defaults) against the same AdamW wrapped by
:class:`~colonylab.collective_ml.ae.AEController`, same data and initial weights per
seed, interleaved in the same run. For each seed: steps and wall-seconds until the
loss first reaches ``target`` (a run that never does counts ``steps`` and its total
time, flagged). Ratios are AE / AdamW of the medians over seeds (< 1: AE is faster).

The controller's own cost: ``ctrl.step`` (which calls ``optimizer.step``) against a
bare ``optimizer.step`` on the same gradients, interleaved blocks, best of
``repeats``; the difference is the per-step overhead in microseconds, for AdamW and
SGD-momentum.

JSON: ``{"suite", "machine", "torch", "threads", "config", "seeds": [{"seed",
"adamw_steps", "ae_steps", "adamw_seconds", "ae_seconds", "adamw_reached",
"ae_reached"}], "median": {...}, "ratio_steps", "ratio_seconds", "overhead_us":
{"adamw": ..., "sgdm": ...}, "step_us": {...}}``.

    colony bench ae --json runs/out/bench-ae.json
    colony bench ae --seeds 10 --target 0.01
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from colonylab.collective_ml.ae import AEConfig, AEController
from colonylab.runs.common.bench import machine_info, torch_threads, write_json
from colonylab.runs.experiments.ae_suite import (
    make_optimizer,
    regression_data,
    regression_model,
    run_regression,
)


@dataclass(frozen=True)
class Config:
    """Static-regression time to target: AE-controlled AdamW vs plain AdamW."""

    seeds: int = 5
    """Seeds (data, initial weights, AE noise)."""
    steps: int = 1500
    """Step cap per run (a run that never reaches the target counts this many)."""
    target: float = 0.02
    """Loss target (MSE; the targets have unit variance)."""
    overhead_steps: int = 300
    """Steps per timed block of the overhead measurement."""
    repeats: int = 3
    """Timed blocks per implementation in the overhead measurement (the best counts)."""
    threads: int = 1
    """Torch CPU threads (tiny model: one is fastest)."""
    json: str | None = None
    """Write the results to this JSON file."""

    def __post_init__(self) -> None:
        for name in ("seeds", "steps", "overhead_steps", "repeats", "threads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be an integer >= 1, got {v!r}")
        if not (isinstance(self.target, (int, float)) and self.target > 0):
            raise ValueError(f"--target must be > 0, got {self.target!r}")


def time_to_target(seed: int, method: str, cfg: Config) -> tuple[int, float, bool]:
    """``(steps, seconds, reached)`` of one regression run."""
    tr = run_regression(seed, method, cfg.steps)
    hit = tr.first_below(cfg.target)
    if hit is None:
        return cfg.steps, tr.seconds[-1], False
    return hit + 1, tr.seconds[hit], True


def step_overhead(kind: str, cfg: Config) -> tuple[float, float]:
    """Microseconds per ``optimizer.step`` and per ``ctrl.step`` on fixed gradients."""
    x, y = regression_data(0)
    model = regression_model(0)
    opt = make_optimizer(kind, model.parameters())
    ctrl = AEController(opt, AEConfig(history=False))
    loss = (model(x) - y).square().mean()
    loss.backward()
    loss = loss.detach()
    for _ in range(20):  # warm-up: optimizer state, dispatch caches
        ctrl.step(loss)
    best = {"plain": float("inf"), "ae": float("inf")}
    n = cfg.overhead_steps
    for _ in range(cfg.repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            opt.step()
        best["plain"] = min(best["plain"], (time.perf_counter() - t0) / n)
        t0 = time.perf_counter()
        for _ in range(n):
            ctrl.step(loss)
        best["ae"] = min(best["ae"], (time.perf_counter() - t0) / n)
    return best["plain"] * 1e6, best["ae"] * 1e6


def main(cfg: Config) -> dict[str, Any]:
    """Run the seeds and the overhead blocks, print the table, write JSON."""
    with torch_threads(cfg.threads):
        return _run(cfg)


def _run(cfg: Config) -> dict[str, Any]:
    console = Console()
    per_seed = []
    with console.status("timing runs to target...") as status:
        for s in range(cfg.seeds):
            status.update(f"seed {s + 1}/{cfg.seeds}: AdamW and AE-AdamW to loss {cfg.target:g}")
            a_steps, a_sec, a_ok = time_to_target(s, "adamw", cfg)
            e_steps, e_sec, e_ok = time_to_target(s, "ae-adamw", cfg)
            per_seed.append(
                {"seed": s, "adamw_steps": a_steps, "ae_steps": e_steps, "adamw_seconds": a_sec,
                 "ae_seconds": e_sec, "adamw_reached": a_ok, "ae_reached": e_ok}
            )  # fmt: skip
        status.update("timing the controller's per-step overhead...")
        step_us = {kind: step_overhead(kind, cfg) for kind in ("adamw", "sgdm")}
    med = {
        key: statistics.median(r[key] for r in per_seed)
        for key in ("adamw_steps", "ae_steps", "adamw_seconds", "ae_seconds")
    }
    ratio_steps = med["ae_steps"] / med["adamw_steps"]
    ratio_seconds = med["ae_seconds"] / med["adamw_seconds"]
    overhead = {k: ae - plain for k, (plain, ae) in step_us.items()}

    table = Table(title=f"colony bench ae: static regression to loss {cfg.target:g}")
    for col in ("seed", "AdamW steps", "AE steps", "AdamW s", "AE s", "steps AE/AdamW"):
        table.add_column(col, justify="right")

    def mark(v: float, ok: bool, fmt: str) -> str:
        return format(v, fmt) + ("" if ok else " (cap)")

    for r in per_seed:
        table.add_row(
            str(r["seed"]),
            mark(r["adamw_steps"], r["adamw_reached"], "d"),
            mark(r["ae_steps"], r["ae_reached"], "d"),
            f"{r['adamw_seconds']:.3f}",
            f"{r['ae_seconds']:.3f}",
            f"{r['ae_steps'] / r['adamw_steps']:.2f}",
        )
    table.add_row(
        "median",
        f"{med['adamw_steps']:g}",
        f"{med['ae_steps']:g}",
        f"{med['adamw_seconds']:.3f}",
        f"{med['ae_seconds']:.3f}",
        f"{ratio_steps:.2f}",
    )
    console.print(table)
    console.print(
        f"time to target AE/AdamW: [bold]{ratio_steps:.2f}x[/] in steps, "
        f"[bold]{ratio_seconds:.2f}x[/] in wall seconds (< 1: AE faster)"
    )
    for kind, (plain, ae) in step_us.items():
        console.print(
            f"{kind}: optimizer.step {plain:.0f} us, ctrl.step {ae:.0f} us -> "
            f"AE overhead {ae - plain:.0f} us/step"
        )
    payload = {
        "suite": "ae",
        "machine": machine_info(torch.device("cpu")),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "config": asdict(cfg),
        "seeds": per_seed,
        "median": med,
        "ratio_steps": ratio_steps,
        "ratio_seconds": ratio_seconds,
        "overhead_us": overhead,
        "step_us": {k: {"optimizer": p, "controller": a} for k, (p, a) in step_us.items()},
    }
    if cfg.json:
        write_json(cfg.json, payload, console)
    return payload


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
