"""Benchmark ``colony bench ae``: time to target on the static regression, AE against
AdamW and SGD-momentum at tuned learning rates.

The regression (256 points in 8-D, a tanh MLP 8-32-32-1, full batch, MSE of
unit-variance targets): each plain optimizer (AdamW, SGD-momentum 0.9) against the
same optimizer wrapped by :class:`~colonylab.collective_ml.ae.AEController`, same data
and initial weights per seed, interleaved in the same run. For each seed: steps and
wall-seconds until the loss first reaches ``target`` (a run that never does counts
``steps`` and its total time, flagged). Ratios are AE / plain of the medians over
seeds (< 1: AE is faster).

Honest baselines: before the comparison each plain optimizer's learning rate is tuned
on a log grid (``--lr-grid``, default ``1e-4 .. 1`` in half decades) by the same
metric (mean steps to target over ``--tune-seeds`` seeds, ties broken by the mean final
log10 loss) on tuning seeds ``1000, 1001, ...`` that are never reported; the chosen
learning rate then runs on the reported seeds ``0 .. seeds-1``. AE starts from the
optimizer's default learning rate (AdamW 1e-3, SGD-momentum 0.01): adapting it is its
job. ``--tune False`` runs the plain optimizers at those defaults, as before.

The controller's own cost: ``ctrl.step`` (which calls ``optimizer.step``) against a
bare ``optimizer.step`` on the same gradients, interleaved blocks, best of
``repeats``; the difference is the per-step overhead in microseconds.

This module also holds the problems the ``ae-suite`` experiment runs (the regression,
the delayed-gradient quadratic, the plateau), the optimizers' defaults and the
learning-rate tuner, so that the experiment and the benchmark share one definition.

JSON: ``{"suite", "machine", "torch", "threads": {"ours", "baseline"}, "config",
"tuning": {optimizer: {"grid", "scores", "chosen", "default", "metric", "seeds"}},
"seeds": [{"seed", "optimizer", "lr", "ae_start_lr", "plain_steps", "ae_steps",
"plain_seconds", "ae_seconds", "plain_reached", "ae_reached"}], "median": {optimizer:
{...}}, "ratio_steps": {optimizer: ...}, "ratio_seconds": {optimizer: ...},
"overhead_us": {"adamw", "sgdm"}, "step_us": {...}}``.

    colony bench ae --json runs/out/bench-ae.json
    colony bench ae --seeds 10 --target 0.01 --tune-seeds 5
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from colonylab._checks import check_choice, check_float, check_int
from colonylab.collective_ml.ae import AEConfig, AEController
from colonylab.runs.common.bench import (
    machine_info,
    threads_info,
    threads_text,
    torch_threads,
    write_json,
)

OPTIMIZERS = ("adamw", "sgdm")
DEFAULT_LR = {"adamw": 1e-3, "sgdm": 0.01}
"""The optimizers' default learning rates (AdamW: torch's; SGD-momentum: a common one)."""
DELAY_LR = 0.1
"""SGD-momentum's default learning rate on the delayed quadratic."""
LR_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
"""The learning-rate grid the baselines are tuned on (half decades, 1e-4 .. 1)."""
TUNE_SEED0 = 1000
"""Tuning seeds are ``TUNE_SEED0, TUNE_SEED0 + 1, ...``; reported seeds stay below it."""


# -- problems -----------------------------------------------------------------------------------
def regression_data(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """256 inputs in 8-D and unit-variance targets of a random tanh teacher."""
    g = torch.Generator().manual_seed(10_000 + seed)
    x = torch.randn(256, 8, generator=g)
    w1 = torch.randn(8, 16, generator=g) / math.sqrt(8)
    w2 = torch.randn(16, 1, generator=g) / 4
    y = torch.tanh(x @ w1) @ w2
    return x, (y - y.mean()) / y.std()


def regression_model(seed: int) -> nn.Module:
    """The 8-32-32-1 tanh student, initialised from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1)
        )


def make_optimizer(kind: str, params: Any, lr: float | None = None) -> torch.optim.Optimizer:
    """``adamw`` (lr 1e-3, torch defaults) or ``sgdm`` (lr 0.01, momentum 0.9)."""
    check_choice("optimizer kind", kind, OPTIMIZERS)
    lr = DEFAULT_LR[kind] if lr is None else lr
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=lr)
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


@dataclass
class Trace:
    """One run: per-step loss, wall time, and AE's history when it ran."""

    losses: list[float]
    seconds: list[float]
    history: dict[str, list[float]] | None

    def first_below(self, level: float) -> int | None:
        """First step whose loss is <= ``level`` (None: never)."""
        for i, v in enumerate(self.losses):
            if v <= level:
                return i
        return None

    def stable_at(self, level: float) -> int | None:
        """First step from which every loss is finite and <= ``level`` (None: never)."""
        last_bad = -1
        for i, v in enumerate(self.losses):
            if not (math.isfinite(v) and v <= level):
                last_bad = i
        return None if last_bad == len(self.losses) - 1 else last_bad + 1


def train(
    step_fn: Callable[[], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    ae: AEConfig | None,
    steps: int,
    scale: float = 1.0,
    grad_hook: Callable[[], None] | None = None,
    stop_below: float | None = None,
    stop_nonfinite: bool = False,
) -> Trace:
    """``steps`` steps of ``loss = step_fn(); (scale * loss).backward()``; AE when ``ae``;
    stops early at the first loss <= ``stop_below`` when given, and at the first
    non-finite loss with ``stop_nonfinite`` (the tuner scores a diverged run as worst
    anyway, so it need not run on)."""
    ctrl = AEController(optimizer, ae) if ae is not None else None
    losses, seconds = [], []
    t0 = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = step_fn()
        (loss * scale).backward()
        if grad_hook is not None:
            grad_hook()
        value = float(loss.detach())
        losses.append(value)
        if ctrl is not None:
            ctrl.step(loss.detach() * scale)
        else:
            optimizer.step()
        seconds.append(time.perf_counter() - t0)
        if stop_below is not None and value <= stop_below:
            break
        if stop_nonfinite and not math.isfinite(value):
            break
    return Trace(losses, seconds, ctrl.history if ctrl is not None else None)


def _ae_config(method: str, seed: int, ae: AEConfig | None) -> AEConfig | None:
    return (ae or AEConfig(seed=seed)) if method.startswith("ae-") else None


def run_regression(
    seed: int,
    method: str,
    steps: int,
    *,
    scale: float = 1.0,
    lr: float | None = None,
    ae: AEConfig | None = None,
    stop_below: float | None = None,
    stop_nonfinite: bool = False,
) -> Trace:
    """The regression with ``method`` in ``adamw``, ``sgdm``, ``ae-adamw``, ``ae-sgdm``
    (``lr`` None: the optimizer's default)."""
    x, y = regression_data(seed)
    model = regression_model(seed)
    opt = make_optimizer(method.removeprefix("ae-"), model.parameters(), lr)
    cfg = _ae_config(method, seed, ae)
    loss_fn = lambda: (model(x) - y).square().mean()  # noqa: E731
    return train(
        loss_fn, opt, cfg, steps, scale, stop_below=stop_below, stop_nonfinite=stop_nonfinite
    )


def run_delay(
    seed: int,
    method: str,
    steps: int,
    delay: int,
    *,
    lr: float = DELAY_LR,
    ae: AEConfig | None = None,
    stop_nonfinite: bool = False,
) -> Trace:
    """The delayed-gradient quadratic: the gradient applied at step t is from step t - delay."""
    g = torch.Generator().manual_seed(20_000 + seed)
    curv = torch.logspace(math.log10(0.05), 0.0, 20, dtype=torch.float64)
    x = nn.Parameter(torch.randn(20, generator=g, dtype=torch.float64))
    opt = make_optimizer(method.removeprefix("ae-"), [x], lr)
    queue: list[torch.Tensor] = []

    def hook() -> None:
        queue.append(x.grad.detach().clone())  # the scenario's delay line, not the controller's
        x.grad = queue.pop(0) if len(queue) > delay else torch.zeros_like(x)

    loss_fn = lambda: 0.5 * (curv * x * x).sum()  # noqa: E731
    cfg = _ae_config(method, seed, ae)
    return train(loss_fn, opt, cfg, steps, grad_hook=hook, stop_nonfinite=stop_nonfinite)


def run_plateau(
    seed: int,
    method: str,
    steps: int,
    *,
    lr: float | None = None,
    ae: AEConfig | None = None,
    stop_nonfinite: bool = False,
) -> Trace:
    """``1 - exp(-|x|^2/2)`` in 10-D from a random point at radius 4."""
    g = torch.Generator().manual_seed(30_000 + seed)
    start = torch.randn(10, generator=g, dtype=torch.float64)
    x = nn.Parameter(4.0 * start / start.norm())
    opt = make_optimizer(method.removeprefix("ae-"), [x], lr)
    loss_fn = lambda: 1.0 - torch.exp(-0.5 * (x * x).sum())  # noqa: E731
    cfg = _ae_config(method, seed, ae)
    return train(loss_fn, opt, cfg, steps, stop_nonfinite=stop_nonfinite)


def log10(v: float) -> float:
    """``log10(v)``, nan for a non-finite or non-positive ``v``."""
    return math.log10(v) if math.isfinite(v) and v > 0 else math.nan


def final_loss(trace: Trace, last: int = 20) -> float:
    """Mean of the last ``last`` losses (inf when any is non-finite)."""
    tail = trace.losses[-last:]
    return sum(tail) / len(tail) if all(math.isfinite(v) for v in tail) else math.inf


# -- learning-rate tuning -----------------------------------------------------------------------
def tuning_seeds(n: int) -> list[int]:
    """The ``n`` tuning seeds (never the reported ones, which stay below ``TUNE_SEED0``)."""
    return list(range(TUNE_SEED0, TUNE_SEED0 + n))


def _mean(values: Sequence[float]) -> float:
    """Mean, ``inf`` when any value is not finite (a diverged seed disqualifies the lr)."""
    if any(not math.isfinite(v) for v in values):
        return math.inf
    return sum(values) / len(values)


def tune_lr(
    optimizer: str,
    metric: str,
    score: Callable[[int, float], tuple[float, float]],
    grid: Sequence[float],
    seeds: Sequence[int],
    default: float,
) -> dict[str, Any]:
    """The learning rate of ``grid`` with the lowest mean ``score(seed, lr)`` over ``seeds``.

    ``score`` returns ``(primary, tie_break)``, lower is better; a non-finite value on any
    seed disqualifies the lr for that component. Returns ``{"optimizer", "metric", "grid",
    "seeds", "scores", "tie_break", "chosen", "default"}`` (``scores[i]`` is the mean
    primary score of ``grid[i]``).
    """
    primary, secondary = [], []
    for lr in grid:
        results = [score(s, lr) for s in seeds]
        primary.append(_mean([r[0] for r in results]))
        secondary.append(_mean([r[1] for r in results]))
    best = min(range(len(grid)), key=lambda i: (primary[i], secondary[i], grid[i]))
    return {
        "optimizer": optimizer,
        "metric": metric,
        "grid": list(grid),
        "seeds": list(seeds),
        "scores": primary,
        "tie_break": secondary,
        "chosen": grid[best],
        "default": default,
    }


def check_lr_grid(grid: Sequence[float]) -> None:
    """Refuse an empty grid or a learning rate that is not a positive finite number."""
    if not grid:
        raise ValueError("--lr-grid needs at least one learning rate")
    for lr in grid:
        check_float("--lr-grid", lr, 0.0, None, low_open=True)


# -- the benchmark ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Config:
    """Static-regression time to target: AE against AdamW / SGD-momentum at tuned lrs."""

    seeds: int = 5
    """Reported seeds 0 .. seeds-1 (data, initial weights, AE noise)."""
    steps: int = 1500
    """Step cap per run (a run that never reaches the target counts this many)."""
    target: float = 0.02
    """Loss target (MSE; the targets have unit variance)."""
    optimizers: tuple[str, ...] = OPTIMIZERS
    """Plain optimizers compared with their AE-wrapped selves: adamw and/or sgdm."""
    tune: bool = True
    """Tune each plain optimizer's lr on --lr-grid first (--tune False: the defaults)."""
    lr_grid: tuple[float, ...] = LR_GRID
    """Learning rates tried for each plain optimizer."""
    tune_seeds: int = 3
    """Tuning seeds (1000, 1001, ...; never the reported ones)."""
    overhead_steps: int = 300
    """Steps per timed block of the overhead measurement."""
    repeats: int = 3
    """Timed blocks per implementation in the overhead measurement (the best counts)."""
    threads: int = 1
    """Torch CPU threads, both sides (tiny model: one is fastest)."""
    json: str | None = None
    """Write the results to this JSON file."""

    def __post_init__(self) -> None:
        check_int("--seeds", self.seeds, 1, TUNE_SEED0)
        for name in ("steps", "tune_seeds", "overhead_steps", "repeats", "threads"):
            check_int("--" + name.replace("_", "-"), getattr(self, name), 1)
        check_float("--target", self.target, 0.0, None, low_open=True)
        if not self.optimizers:
            raise ValueError(f"--optimizers needs at least one of {', '.join(OPTIMIZERS)}")
        for kind in self.optimizers:
            check_choice("--optimizers", kind, OPTIMIZERS)
        check_lr_grid(self.lr_grid)


def time_to_target(
    seed: int, method: str, cfg: Config, lr: float | None = None, stop_nonfinite: bool = False
) -> tuple[int, float, bool, float]:
    """``(steps, seconds, reached, final loss)`` of one regression run (stops at the target,
    and at a non-finite loss with ``stop_nonfinite``)."""
    tr = run_regression(
        seed, method, cfg.steps, lr=lr, stop_below=cfg.target, stop_nonfinite=stop_nonfinite
    )
    hit = tr.first_below(cfg.target)
    if hit is None:
        return cfg.steps, tr.seconds[-1], False, tr.losses[-1]
    return hit + 1, tr.seconds[hit], True, tr.losses[hit]


def tune_regression(kind: str, cfg: Config) -> dict[str, Any]:
    """Tune ``kind``'s lr on steps to target (tie-break: final log10 loss)."""

    def score(seed: int, lr: float) -> tuple[float, float]:
        steps, _, _, last = time_to_target(seed, kind, cfg, lr, stop_nonfinite=True)
        return float(steps), log10(last) if last > 0 else -math.inf

    metric = f"mean steps to loss {cfg.target:g} (cap {cfg.steps})"
    return tune_lr(kind, metric, score, cfg.lr_grid, tuning_seeds(cfg.tune_seeds), DEFAULT_LR[kind])


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


def print_tuning(console: Console, tuning: dict[str, dict[str, Any]], title: str) -> None:
    """One table: a row per learning rate, a column of mean scores per optimizer; ``*``
    marks the chosen lr, ``d`` the default."""
    if not tuning:
        return
    first = next(iter(tuning.values()))
    seeds = f"{first['seeds'][0]}..{first['seeds'][-1]}"
    table = Table(title=f"{title} (tuning seeds {seeds})")
    table.add_column("lr", justify="right")
    for kind in tuning:
        table.add_column(kind, justify="right")
    grid = first["grid"]
    for i, lr in enumerate(grid):
        cells = []
        for t in tuning.values():
            mark = (" *" if lr == t["chosen"] else "") + (" d" if lr == t["default"] else "")
            cells.append(f"{t['scores'][i]:.4g}{mark}")
        table.add_row(f"{lr:g}", *cells)
    console.print(table)
    for kind, t in tuning.items():
        console.print(
            f"{kind}: {t['metric']}; chosen lr {t['chosen']:g} (default {t['default']:g})",
            highlight=False,
        )


def main(cfg: Config) -> dict[str, Any]:
    """Tune, run the seeds and the overhead blocks, print the tables, write JSON."""
    with torch_threads(cfg.threads):
        return _run(cfg)


def _run(cfg: Config) -> dict[str, Any]:
    console = Console()
    tuning: dict[str, dict[str, Any]] = {}
    per_seed: list[dict[str, Any]] = []
    with console.status("tuning the baselines...") as status:
        for kind in cfg.optimizers:
            if cfg.tune:
                status.update(f"tuning {kind}'s lr on {len(cfg.lr_grid)} values...")
                tuning[kind] = tune_regression(kind, cfg)
        for s in range(cfg.seeds):
            for kind in cfg.optimizers:
                lr = tuning[kind]["chosen"] if kind in tuning else DEFAULT_LR[kind]
                status.update(f"seed {s + 1}/{cfg.seeds}: {kind} (lr {lr:g}) and AE-{kind}")
                p_steps, p_sec, p_ok, _ = time_to_target(s, kind, cfg, lr)
                e_steps, e_sec, e_ok, _ = time_to_target(s, f"ae-{kind}", cfg)
                per_seed.append(
                    {"seed": s, "optimizer": kind, "lr": lr, "ae_start_lr": DEFAULT_LR[kind],
                     "plain_steps": p_steps, "ae_steps": e_steps, "plain_seconds": p_sec,
                     "ae_seconds": e_sec, "plain_reached": p_ok, "ae_reached": e_ok}
                )  # fmt: skip
        status.update("timing the controller's per-step overhead...")
        step_us = {kind: step_overhead(kind, cfg) for kind in OPTIMIZERS}
    threads = torch.get_num_threads()
    thread_info = threads_info(threads, threads, library="torch")
    med: dict[str, dict[str, float]] = {}
    ratio_steps: dict[str, float] = {}
    ratio_seconds: dict[str, float] = {}
    for kind in cfg.optimizers:
        mine = [r for r in per_seed if r["optimizer"] == kind]
        med[kind] = {
            key: statistics.median(r[key] for r in mine)
            for key in ("plain_steps", "ae_steps", "plain_seconds", "ae_seconds")
        }
        ratio_steps[kind] = med[kind]["ae_steps"] / med[kind]["plain_steps"]
        ratio_seconds[kind] = med[kind]["ae_seconds"] / med[kind]["plain_seconds"]
    overhead = {k: ae - plain for k, (plain, ae) in step_us.items()}

    if tuning:
        print_tuning(console, tuning, "lr tuning")
    table = Table(
        title=f"colony bench ae: static regression to loss {cfg.target:g} "
        f"({threads_text(thread_info)})"
    )
    for col in ("seed", "optimizer", "lr", "plain steps", "AE steps", "plain s", "AE s",
                "steps AE/plain"):  # fmt: skip
        table.add_column(col, justify="right")

    def mark(v: float, ok: bool, fmt: str) -> str:
        return format(v, fmt) + ("" if ok else " (cap)")

    for kind in cfg.optimizers:
        for r in (r for r in per_seed if r["optimizer"] == kind):
            table.add_row(
                str(r["seed"]),
                kind,
                f"{r['lr']:g}",
                mark(r["plain_steps"], r["plain_reached"], "d"),
                mark(r["ae_steps"], r["ae_reached"], "d"),
                f"{r['plain_seconds']:.3f}",
                f"{r['ae_seconds']:.3f}",
                f"{r['ae_steps'] / r['plain_steps']:.2f}",
            )
        m = med[kind]
        table.add_row(
            "median",
            kind,
            "",
            f"{m['plain_steps']:g}",
            f"{m['ae_steps']:g}",
            f"{m['plain_seconds']:.3f}",
            f"{m['ae_seconds']:.3f}",
            f"{ratio_steps[kind]:.2f}",
        )
    console.print(table)
    for kind in cfg.optimizers:
        how = "tuned" if kind in tuning else "default"
        lr = tuning[kind]["chosen"] if kind in tuning else DEFAULT_LR[kind]
        console.print(
            f"time to target AE-{kind} (starts at lr {DEFAULT_LR[kind]:g}) / {kind} ({how} lr "
            f"{lr:g}): [bold]{ratio_steps[kind]:.2f}x[/] in steps, "
            f"[bold]{ratio_seconds[kind]:.2f}x[/] in wall seconds (< 1: AE faster)"
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
        "threads": thread_info,
        "config": asdict(cfg),
        "tuning": tuning,
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
