"""Experiment ``ae-suite``: the Adaptive Evolution controller against plain optimizers.

Every scenario runs over ``seeds`` seeds (the same data, initial weights and starting
points for both methods of a pair) and reports mean +- 95% confidence half-width
(Student t). "AE-X" is :class:`~colonylab.collective_ml.ae.AEController` wrapping
optimizer X, started at X's default learning rate (AdamW 1e-3, SGD-momentum 0.01; 0.1
on the delayed quadratic): adapting it is AE's job.

Honest baselines: before a scenario runs, each plain optimizer's learning rate is tuned
on a log grid (``--lr-grid``, default ``1e-4 .. 1`` in half decades) by that scenario's
own metric, on ``--tune-seeds`` tuning seeds (1000, 1001, ...) that are never reported;
the chosen rate is what the plain rows run at (``--tune False``: the defaults). The
tables give each row's learning rate; ``results.json`` has every grid score.

``regression``  a teacher-student regression (256 points in 8-D, a tanh MLP
                8-32-32-1, full batch, MSE of targets with unit variance):
                steps and seconds to reach ``target`` (0.02) against AdamW and
                SGD-momentum (0.9). Runs that never reach it count as ``steps``.
                Tuned on steps to target (tie-break: final log10 loss).
``delay``       a 20-D ill-conditioned quadratic (curvatures 0.05..1) whose gradient
                arrives ``delay`` (3) steps late: SGD-momentum (0.9; default lr 0.1)
                rings and grows; AE should damp it (resonance clamp, alignment drive).
                Final log10 loss, steps to 1e-3 of the start, share of steps the
                loss went up. Tuned on the final log10 loss.
``scaling``     the regression with the loss multiplied by 0.1, 1 and 10: plain
                SGD-momentum changes behaviour with the scale, AE should not (gauge
                law). Final log10 loss per scale and its spread across scales. Tuned
                (one lr for every scale) on the mean final log10 loss over the scales.
``plateau``     ``1 - exp(-|x|^2 / 2)`` in 10-D from |x| = 4, where the gradient is
                ~1e-3: steps to escape (loss < 0.5) for SGD-momentum and AdamW with and
                without AE. Tuned on steps to escape (tie-break: final loss).
``bad-lr``      the regression with SGD-momentum at lr 10 and 100: non-finite loss
                steps, the step after which the loss stays finite and below its start
                ("stable at"), final loss. Not tuned: the absurd lr is the scenario.
``knockout``    AE with each law off in turn (``use_<law>=False``) on the regression
                (AE-AdamW, steps to target) and the delayed quadratic (AE-SGD, final
                log10 loss). AE only: no baseline to tune.

The problems, the optimizers' defaults and the tuner live in
:mod:`colonylab.runs.benchmarks.ae` (shared with ``colony bench ae``). The file is
longer than ~500 lines because it is six experiments in one (each scenario's runs, its
tuning metric and its rows), plus the verdicts, the markdown report and two figures
that read across all of them.

Writes ``results.md`` and ``results.json`` (every row, every seed), and
``media/ae_coefficients.png`` (AE's coefficient trajectories per scenario) and
``media/ae_summary.png`` into the run directory; ``--picture PATH`` also copies the
combined figure there (``docs/ae-suite.png`` in the repository).

    colony train ae-suite                     # the full suite with tuning: ~5 CPU-minutes
    colony train ae-suite --quick             # 2 seeds, short runs, 3-point grid: a smoke test
    colony train ae-suite --scenarios delay plateau --seeds 10
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from colonylab._checks import check_int
from colonylab.collective_ml.ae import LAWS, AEConfig
from colonylab.runs.benchmarks.ae import (
    DEFAULT_LR,
    DELAY_LR,
    LR_GRID,
    OPTIMIZERS,
    TUNE_SEED0,
    Trace,
    check_lr_grid,
    final_loss,
    log10,
    print_tuning,
    run_delay,
    run_plateau,
    run_regression,
    tune_lr,
    tuning_seeds,
)
from colonylab.runs.common import RunDir
from colonylab.runs.common.bench import threads_info, torch_threads
from colonylab.runs.common.progress import progress_bar
from colonylab.runs.common.tables import ci95

EXPERIMENT = "ae-suite"
SCENARIOS = ("regression", "delay", "scaling", "plateau", "bad-lr", "knockout")
QUICK_GRID = (1e-3, 1e-2, 0.1)
console = Console()


@dataclass(frozen=True)
class Config:
    """AE vs plain optimizers: regression, delayed gradients, scaling, plateau, bad lr."""

    seeds: int = 5
    """Seeds per scenario and method (>= 2 for a confidence interval)."""
    scenarios: tuple[str, ...] = SCENARIOS
    """Scenarios to run: regression, delay, scaling, plateau, bad-lr, knockout."""
    steps: int = 1000
    """Steps of the regression, scaling and knock-out runs (also the time-to-target cap)."""
    target: float = 0.02
    """Regression loss target (MSE; the targets have unit variance)."""
    delay: int = 3
    """Gradient delay of the delayed quadratic, in steps."""
    delay_steps: int = 600
    """Steps of the delayed-quadratic runs."""
    plateau_steps: int = 1000
    """Steps of the plateau runs (the escape-time cap)."""
    bad_lr_steps: int = 400
    """Steps of the absurd-learning-rate runs."""
    tune: bool = True
    """Tune each plain optimizer's lr per scenario on --lr-grid (--tune False: defaults)."""
    lr_grid: tuple[float, ...] = LR_GRID
    """Learning rates tried for each plain optimizer."""
    tune_seeds: int = 3
    """Tuning seeds (1000, 1001, ...; never the reported ones)."""
    quick: bool = False
    """Smoke test: 2 seeds, short runs, 1 tuning seed, grid 1e-3 1e-2 0.1 (overrides)."""
    threads: int = 1
    """Torch CPU threads (tiny models: one is fastest)."""
    out: str | None = None
    """Run directory root (default runs/out)."""
    picture: str | None = None
    """Also copy the combined figure to this path (e.g. docs/ae-suite.png)."""
    plots: bool = True
    """Write the figures."""

    def __post_init__(self) -> None:
        check_int("--seeds", self.seeds, 1, TUNE_SEED0)
        for name in ("steps", "delay_steps", "plateau_steps", "bad_lr_steps", "threads"):
            check_int("--" + name.replace("_", "-"), getattr(self, name), 1)
        check_int("--tune-seeds", self.tune_seeds, 1)
        check_int("--delay", self.delay, 0)
        check_lr_grid(self.lr_grid)
        unknown = [s for s in self.scenarios if s not in SCENARIOS]
        if unknown or not self.scenarios:
            raise ValueError(
                f"--scenarios must name some of {', '.join(SCENARIOS)}, got {list(self.scenarios)}"
            )
        if not (isinstance(self.target, (int, float)) and self.target > 0):
            raise ValueError(f"--target must be > 0, got {self.target!r}")

    def resolved(self) -> Config:
        """The config with ``--quick`` applied."""
        if not self.quick:
            return self
        return Config(
            **{
                **asdict(self),
                "seeds": 2,
                "steps": 300,
                "delay_steps": 150,
                "plateau_steps": 300,
                "bad_lr_steps": 60,
                "tune_seeds": 1,
                "lr_grid": QUICK_GRID if self.lr_grid == LR_GRID else self.lr_grid,
                "quick": False,
            }
        )


# -- scenarios ----------------------------------------------------------------------------------
def _row(scenario: str, metric: str, method: str, values: list[float], **extra: Any) -> dict:
    mean, half = ci95(values)
    return {
        "scenario": scenario,
        "metric": metric,
        "method": method,
        "mean": mean,
        "ci95": half,
        "n": sum(math.isfinite(v) for v in values),
        "values": values,
        **extra,
    }


def _capped(hit: int | None, cap: int) -> float:
    return float(cap if hit is None else hit + 1)


def _inf(v: float) -> float:
    """``v``, or ``inf`` when it is not finite (nan included): a failed run scores worst."""
    return v if math.isfinite(v) else math.inf


LRs = dict[str, tuple[float, str]]
"""Plain optimizer -> (learning rate, "tuned" or "default")."""


def _lr(method: str, lrs: LRs, default: float) -> tuple[float, str]:
    """A row's learning rate and where it comes from: the plain optimizer's tuned (or
    default) lr, AE's starting lr."""
    if method.startswith("ae-"):
        return default, "AE start"
    return lrs[method]


def scenario_regression(cfg: Config, tick: Callable[[], None], lrs: LRs) -> tuple[list[dict], dict]:
    rows, traces = [], {}
    for method in ("adamw", "ae-adamw", "sgdm", "ae-sgdm"):
        lr, source = _lr(method, lrs, DEFAULT_LR[method.removeprefix("ae-")])
        steps, secs = [], []
        for s in range(cfg.seeds):
            tr = run_regression(s, method, cfg.steps, lr=lr)
            hit = tr.first_below(cfg.target)
            steps.append(_capped(hit, cfg.steps))
            secs.append(tr.seconds[-1] if hit is None else tr.seconds[hit])
            if s == 0:
                traces[method] = tr
            tick()
        extra = {"lr": lr, "lr_source": source}
        rows.append(_row("regression", "steps to target", method, steps, **extra))
        rows.append(_row("regression", "seconds to target", method, secs, **extra))
    return rows, traces


def scenario_delay(cfg: Config, tick: Callable[[], None], lrs: LRs) -> tuple[list[dict], dict]:
    rows, traces = [], {}
    for method in ("sgdm", "ae-sgdm"):
        lr, source = _lr(method, lrs, DELAY_LR)
        final, hits, ups = [], [], []
        for s in range(cfg.seeds):
            tr = run_delay(s, method, cfg.delay_steps, cfg.delay, lr=lr)
            final.append(log10(final_loss(tr)))
            hits.append(_capped(tr.first_below(1e-3 * tr.losses[0]), cfg.delay_steps))
            diffs = np.diff(np.asarray(tr.losses))
            ups.append(float(np.mean(diffs > 0)) if len(diffs) else math.nan)
            if s == 0:
                traces[method] = tr
            tick()
        extra = {"lr": lr, "lr_source": source}
        rows.append(_row("delay", "final log10 loss", method, final, **extra))
        rows.append(_row("delay", "steps to 1e-3 of start", method, hits, **extra))
        rows.append(_row("delay", "share of loss increases", method, ups, **extra))
    return rows, traces


SCALES = (0.1, 1.0, 10.0)


def scenario_scaling(cfg: Config, tick: Callable[[], None], lrs: LRs) -> tuple[list[dict], dict]:
    rows, traces = [], {}
    for method in ("sgdm", "ae-sgdm", "adamw", "ae-adamw"):
        lr, source = _lr(method, lrs, DEFAULT_LR[method.removeprefix("ae-")])
        per_scale: dict[float, list[float]] = {c: [] for c in SCALES}
        for s in range(cfg.seeds):
            for c in SCALES:
                tr = run_regression(s, method, cfg.steps, scale=c, lr=lr)
                per_scale[c].append(log10(final_loss(tr)))
                if s == 0 and method.startswith("ae-"):
                    traces[f"{method} x{c:g}"] = tr
                tick()
        extra = {"lr": lr, "lr_source": source}
        for c in SCALES:
            metric = f"final log10 loss, loss x{c:g}"
            rows.append(_row("scaling", metric, method, per_scale[c], **extra))
        spread = [
            max(vals) - min(vals) if all(math.isfinite(v) for v in vals) else math.inf
            for vals in zip(*(per_scale[c] for c in SCALES), strict=True)
        ]
        rows.append(_row("scaling", "spread of log10 loss over scales", method, spread, **extra))
    return rows, traces


def scenario_plateau(cfg: Config, tick: Callable[[], None], lrs: LRs) -> tuple[list[dict], dict]:
    rows, traces = [], {}
    for method in ("sgdm", "ae-sgdm", "adamw", "ae-adamw"):
        lr, source = _lr(method, lrs, DEFAULT_LR[method.removeprefix("ae-")])
        hits = []
        for s in range(cfg.seeds):
            tr = run_plateau(s, method, cfg.plateau_steps, lr=lr)
            hits.append(_capped(tr.first_below(0.5), cfg.plateau_steps))
            if s == 0:
                traces[method] = tr
            tick()
        metric = "steps to escape (loss < 0.5)"
        rows.append(_row("plateau", metric, method, hits, lr=lr, lr_source=source))
    return rows, traces


BAD_LRS = (10.0, 100.0)


def scenario_bad_lr(cfg: Config, tick: Callable[[], None], lrs: LRs) -> tuple[list[dict], dict]:
    rows, traces = [], {}
    for lr in BAD_LRS:
        for method in ("sgdm", "ae-sgdm"):
            nans, stable, final = [], [], []
            for s in range(cfg.seeds):
                tr = run_regression(s, method, cfg.bad_lr_steps, lr=lr)
                nans.append(float(sum(not math.isfinite(v) for v in tr.losses)))
                at = tr.stable_at(tr.losses[0])
                stable.append(float(cfg.bad_lr_steps if at is None else at))
                final.append(log10(final_loss(tr)))
                if s == 0 and method.startswith("ae-"):
                    traces[f"{method} lr {lr:g}"] = tr
                tick()
            tag = f"lr {lr:g}"
            source = "AE start" if method.startswith("ae-") else "fixed (the scenario)"
            extra = {"lr": lr, "lr_source": source}
            rows.append(_row("bad-lr", f"non-finite steps, {tag}", method, nans, **extra))
            rows.append(_row("bad-lr", f"stable at step, {tag}", method, stable, **extra))
            rows.append(_row("bad-lr", f"final log10 loss, {tag}", method, final, **extra))
    return rows, traces


def scenario_knockout(cfg: Config, tick: Callable[[], None], lrs: LRs) -> tuple[list[dict], dict]:
    rows = []
    variants = [("all laws", ())] + [(f"no {law}", (law,)) for law in LAWS]
    for name, off in variants:
        steps, final = [], []
        for s in range(cfg.seeds):
            ae = AEConfig(seed=s).without(*off)
            tr = run_regression(s, "ae-adamw", cfg.steps, ae=ae)
            steps.append(_capped(tr.first_below(cfg.target), cfg.steps))
            td = run_delay(s, "ae-sgdm", cfg.delay_steps, cfg.delay, ae=ae)
            final.append(log10(final_loss(td)))
            tick()
        metric = "regression steps to target (AE-AdamW)"
        start = {"lr_source": "AE start"}
        rows.append(_row("knockout", metric, name, steps, lr=DEFAULT_LR["adamw"], **start))
        metric = "delay final log10 loss (AE-SGD)"
        rows.append(_row("knockout", metric, name, final, lr=DELAY_LR, **start))
    return rows, {}


RUNNERS = {
    "regression": (scenario_regression, 4),
    "delay": (scenario_delay, 2),
    "scaling": (scenario_scaling, 12),
    "plateau": (scenario_plateau, 4),
    "bad-lr": (scenario_bad_lr, 4),
    "knockout": (scenario_knockout, 1 + len(LAWS)),
}


# -- learning-rate tuning of the plain optimizers -----------------------------------------------
Score = Callable[[int, float], tuple[float, float]]


def _tune_regression(cfg: Config, kind: str) -> Score:
    def score(seed: int, lr: float) -> tuple[float, float]:
        tr = run_regression(
            seed, kind, cfg.steps, lr=lr, stop_below=cfg.target, stop_nonfinite=True
        )
        return _capped(tr.first_below(cfg.target), cfg.steps), _inf(log10(tr.losses[-1]))

    return score


def _tune_delay(cfg: Config, kind: str) -> Score:
    def score(seed: int, lr: float) -> tuple[float, float]:
        tr = run_delay(seed, kind, cfg.delay_steps, cfg.delay, lr=lr, stop_nonfinite=True)
        hit = tr.first_below(1e-3 * tr.losses[0])
        return _inf(log10(final_loss(tr))), _capped(hit, cfg.delay_steps)

    return score


def _tune_scaling(cfg: Config, kind: str) -> Score:
    def score(seed: int, lr: float) -> tuple[float, float]:
        runs = [
            run_regression(seed, kind, cfg.steps, scale=c, lr=lr, stop_nonfinite=True)
            for c in SCALES
        ]
        finals = [_inf(log10(final_loss(tr))) for tr in runs]
        return sum(finals) / len(finals), 0.0

    return score


def _tune_plateau(cfg: Config, kind: str) -> Score:
    def score(seed: int, lr: float) -> tuple[float, float]:
        tr = run_plateau(seed, kind, cfg.plateau_steps, lr=lr, stop_nonfinite=True)
        return _capped(tr.first_below(0.5), cfg.plateau_steps), _inf(final_loss(tr))

    return score


TUNING: dict[str, tuple[tuple[str, ...], str, Callable[[Config, str], Score]]] = {
    "regression": (
        ("adamw", "sgdm"),
        "mean steps to target (tie-break: final log10 loss)",
        _tune_regression,
    ),
    "delay": (("sgdm",), "mean final log10 loss", _tune_delay),
    "scaling": (
        ("sgdm", "adamw"),
        f"mean final log10 loss over loss scales {', '.join(f'{c:g}' for c in SCALES)}",
        _tune_scaling,
    ),
    "plateau": (("sgdm", "adamw"), "mean steps to escape (tie-break: final loss)", _tune_plateau),
}
"""Per scenario: the plain optimizers it tunes, the metric, the score maker."""


def tuning_runs(cfg: Config, scenario: str) -> int:
    """Score calls the tuning of ``scenario`` makes (for the progress bar)."""
    if not cfg.tune or scenario not in TUNING:
        return 0
    return len(TUNING[scenario][0]) * len(cfg.lr_grid) * cfg.tune_seeds


def tune_scenario(
    cfg: Config, scenario: str, tick: Callable[[], None]
) -> tuple[LRs, dict[str, dict[str, Any]]]:
    """``(lrs, tuning)``: the plain optimizers' learning rates for ``scenario`` (tuned when
    ``cfg.tune``, else the defaults) and the tuning record (grid, scores, chosen)."""
    kinds, metric, make_score = TUNING.get(scenario, ((), "", _tune_regression))
    defaults = {k: DELAY_LR if scenario == "delay" else DEFAULT_LR[k] for k in OPTIMIZERS}
    lrs: LRs = {k: (lr, "default") for k, lr in defaults.items()}
    if not cfg.tune or not kinds:
        return lrs, {}
    tuning: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        score = make_score(cfg, kind)

        def counted(seed: int, lr: float, score: Score = score) -> tuple[float, float]:
            out = score(seed, lr)
            tick()
            return out

        seeds = tuning_seeds(cfg.tune_seeds)
        tuning[kind] = tune_lr(kind, metric, counted, cfg.lr_grid, seeds, defaults[kind])
    lrs.update({k: (t["chosen"], "tuned") for k, t in tuning.items()})
    return lrs, tuning


# -- verdicts and tables ------------------------------------------------------------------------
_LOWER_IS_BETTER = True  # every metric in the table: fewer steps, lower loss, fewer NaN


def verdicts(rows: list[dict]) -> list[dict]:
    """AE against its plain optimizer per (scenario, metric): ``better``, ``worse`` or
    ``tie`` (95% intervals overlap)."""
    out = []
    index = {(r["scenario"], r["metric"], r["method"]): r for r in rows}
    for (scen, metric, method), r in index.items():
        if not method.startswith("ae-"):
            continue
        base = index.get((scen, metric, method.removeprefix("ae-")))
        if base is None:
            continue
        a, b = r["mean"], base["mean"]
        ha = 0.0 if math.isnan(r["ci95"]) else r["ci95"]
        hb = 0.0 if math.isnan(base["ci95"]) else base["ci95"]
        a_bad = not math.isfinite(a) or r["n"] < len(r["values"])
        b_bad = not math.isfinite(b) or base["n"] < len(base["values"])
        if a_bad and b_bad:
            verdict = "tie"
        elif a_bad or b_bad:
            verdict = "worse" if a_bad else "better"
        elif a + ha < b - hb:
            verdict = "better"
        elif a - ha > b + hb:
            verdict = "worse"
        else:
            verdict = "tie"
        out.append(
            {"scenario": scen, "metric": metric, "ae": method, "baseline": base["method"],
             "baseline_lr": base.get("lr", math.nan),
             "baseline_lr_source": base.get("lr_source", ""),
             "ae_mean": a, "baseline_mean": b, "verdict": verdict}
        )  # fmt: skip
    return out


def _fmt(r: dict) -> str:
    if r["n"] == 0:
        return "diverged (all seeds)"
    text = f"{r['mean']:.4g}"
    if math.isfinite(r["ci95"]):
        text += f" ± {r['ci95']:.2g}"
    if r["n"] < len(r["values"]):
        text += f" ({len(r['values']) - r['n']} of {len(r['values'])} non-finite)"
    return text


def markdown(
    rows: list[dict],
    verdict_rows: list[dict],
    cfg: Config,
    seconds: float,
    tuning: dict[str, dict[str, dict[str, Any]]] | None = None,
) -> str:
    """The results table as markdown (with the lr tuning when given)."""
    lines = [
        f"# ae-suite results ({cfg.seeds} seeds, mean ± 95% CI, {seconds:.0f} s)",
        "",
        "| scenario | metric | method | value | lr |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['metric']} | {r['method']} | {_fmt(r)} | {_lr_text(r)} |"
        )
    lines += ["", "## AE against its plain optimizer (lower is better everywhere)", ""]
    lines += ["| scenario | metric | AE | plain (lr) | AE mean | plain mean | verdict |"]
    lines += ["|---|---|---|---|---|---|---|"]
    for v in verdict_rows:
        lines.append(
            f"| {v['scenario']} | {v['metric']} | {v['ae']} | {v['baseline']} "
            f"({v['baseline_lr']:g}, {v['baseline_lr_source']}) | "
            f"{v['ae_mean']:.4g} | {v['baseline_mean']:.4g} | {v['verdict']} |"
        )
    if tuning:
        lines += ["", "## Learning-rate tuning of the plain optimizers", ""]
        lines += ["Tuning seeds are never reported seeds; the chosen lr is marked *.", ""]
        lines += ["| scenario | optimizer | metric | tuning seeds | lr: mean score |"]
        lines += ["|---|---|---|---|---|"]
        for scen, per_kind in tuning.items():
            for kind, t in per_kind.items():
                grid = ", ".join(
                    f"{lr:g}{'*' if lr == t['chosen'] else ''}: {sc:.4g}"
                    for lr, sc in zip(t["grid"], t["scores"], strict=True)
                )
                seeds = f"{t['seeds'][0]}..{t['seeds'][-1]}"
                lines.append(f"| {scen} | {kind} | {t['metric']} | {seeds} | {grid} |")
    return "\n".join(lines) + "\n"


def _lr_text(r: dict) -> str:
    return f"{r['lr']:g} ({r['lr_source']})" if "lr" in r else ""


# -- figures ------------------------------------------------------------------------------------
def plot(traces: dict[str, dict[str, Trace]], rows: list[dict], path: Path, cfg: Config) -> Path:
    """Coefficient trajectories of AE per scenario (top) and the loss curves (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [s for s in SCENARIOS if s in traces and traces[s]]
    ncols = max(len(panels), 1)
    fig, axes = plt.subplots(3, ncols, figsize=(4.2 * ncols, 9.5), squeeze=False)
    for j, scen in enumerate(panels):
        ax_lr, ax_mom, ax_loss = axes[0, j], axes[1, j], axes[2, j]
        for name, tr in traces[scen].items():
            ax_loss.plot(_finite_or_nan(tr.losses), lw=1, label=name)
            h = tr.history
            if h is None:
                continue
            ax_lr.plot(h["applied_lr"], lw=1, label=name)
            key = "momentum" if "momentum" in h else "beta1"
            if key in h:
                ax_mom.plot(h[key], lw=1, label=f"{name} ({'β' if key == 'momentum' else 'β1'})")
        ax_lr.set_yscale("log")
        ax_loss.set_yscale("log")
        ax_lr.set_title(f"{scen}: AE learning rate (applied)", fontsize=9)
        ax_mom.set_title(f"{scen}: AE momentum / β1", fontsize=9)
        ax_loss.set_title(f"{scen}: loss (seed 0)", fontsize=9)
        ax_loss.set_xlabel("step")
        for ax in (ax_lr, ax_mom, ax_loss):
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=6)
    fig.suptitle(f"colony train ae-suite: AE coefficient trajectories ({cfg.seeds} seeds run)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_summary(rows: list[dict], verdict_rows: list[dict], path: Path) -> Path:
    """One bar pair (AE, plain) per compared metric, normalised to the plain mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    usable = [v for v in verdict_rows if "seconds" not in v["metric"]]
    fig, ax = plt.subplots(figsize=(10, 0.32 * max(len(usable), 4) + 1.2))
    labels, vals, colours = [], [], []
    for v in usable:
        a, b = v["ae_mean"], v["baseline_mean"]
        labels.append(f"{v['scenario']}: {v['metric']} [{v['ae']}]")
        if "log10" in v["metric"]:
            diff = a - b if math.isfinite(a) and math.isfinite(b) else math.nan
            text_val = diff
        else:
            text_val = math.log10(a / b) if a > 0 and b > 0 and math.isfinite(a / b) else math.nan
        if not math.isfinite(text_val):
            text_val = -3.0 if v["verdict"] == "better" else 3.0 if v["verdict"] == "worse" else 0
        vals.append(max(-4.0, min(4.0, text_val)))  # clipped: one huge bar hides the rest
        colours.append({"better": "tab:green", "worse": "tab:red", "tie": "tab:gray"}[v["verdict"]])
    y = np.arange(len(labels))
    ax.barh(y, vals, color=colours)
    ax.set_yticks(y, labels, fontsize=7)
    ax.axvline(0, color="k", lw=0.8)
    ax.invert_yaxis()
    ax.set_xlabel(
        "AE vs plain: log10 ratio (or difference of log10 loss), clipped to +-4; < 0: AE better"
    )
    ax.set_title("ae-suite summary (green: AE better, red: worse, grey: 95% CIs overlap)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _finite_or_nan(xs: list[float]) -> list[float]:
    return [v if math.isfinite(v) else math.nan for v in xs]


def combine(paths: list[Path], out: Path) -> Path:
    """Stack PNGs vertically into one picture."""
    from PIL import Image

    images = [Image.open(p).convert("RGB") for p in paths]
    width = max(i.width for i in images)
    canvas = Image.new("RGB", (width, sum(i.height for i in images)), "white")
    y = 0
    for img in images:
        canvas.paste(img, (0, y))
        y += img.height
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    return out


# -- main ---------------------------------------------------------------------------------------
def main(cfg: Config) -> dict[str, Any]:
    """Run the scenarios, print and write the tables and figures; returns the JSON payload."""
    run_cfg = cfg.resolved()
    with torch_threads(run_cfg.threads):
        return _run(cfg, run_cfg)


def _run(cfg: Config, run_cfg: Config) -> dict[str, Any]:
    run = RunDir(EXPERIMENT, 0, cfg, root=cfg.out, tensorboard=False)
    console.print(f"[bold]ae-suite[/] ({', '.join(run_cfg.scenarios)}) -> {run.path}")
    rows: list[dict] = []
    traces: dict[str, dict[str, Trace]] = {}
    tuning: dict[str, dict[str, dict[str, Any]]] = {}
    t0 = time.perf_counter()
    with progress_bar(console) as progress:
        for scen in run_cfg.scenarios:
            fn, runs_per_seed = RUNNERS[scen]
            total = runs_per_seed * run_cfg.seeds + tuning_runs(run_cfg, scen)
            task = progress.add_task(scen, total=total, rate="")

            def tick(task: Any = task) -> None:
                progress.advance(task)

            t_s = time.perf_counter()
            lrs, tuned = tune_scenario(run_cfg, scen, tick)
            if tuned:
                tuning[scen] = tuned
            new_rows, new_traces = fn(run_cfg, tick, lrs)
            progress.update(task, rate=f"{time.perf_counter() - t_s:.0f} s")
            rows += new_rows
            traces[scen] = new_traces
    seconds = time.perf_counter() - t0
    verdict_rows = verdicts(rows)

    for scen, per_kind in tuning.items():
        print_tuning(console, per_kind, f"lr tuning, {scen}")
    threads = torch.get_num_threads()
    table = Table(
        title=f"ae-suite: {run_cfg.seeds} seeds, mean ± 95% CI ({seconds:.0f} s, "
        f"{threads} torch thread(s), AE and plain alike)"
    )
    for col in ("scenario", "metric", "method", "lr", "value"):
        table.add_column(col, justify="right" if col == "value" else "left")
    for r in rows:
        table.add_row(r["scenario"], r["metric"], r["method"], _lr_text(r), _fmt(r))
    console.print(table)
    vt = Table(title="AE against its plain optimizer")
    for col in ("scenario", "metric", "AE", "verdict"):
        vt.add_column(col)
    colour = {"better": "green", "worse": "red", "tie": "white"}
    for v in verdict_rows:
        vt.add_row(
            v["scenario"], v["metric"], v["ae"], f"[{colour[v['verdict']]}]{v['verdict']}[/]"
        )
    console.print(vt)

    md = markdown(rows, verdict_rows, run_cfg, seconds, tuning)
    (run.path / "results.md").write_text(md)
    payload = {
        "experiment": EXPERIMENT,
        "config": asdict(cfg),
        "resolved": asdict(run_cfg),
        "seconds": seconds,
        "threads": threads_info(threads, threads, library="torch"),
        "tuning": tuning,
        "rows": rows,
        "verdicts": verdict_rows,
        "run_dir": str(run.path),
    }
    (run.path / "results.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    if cfg.plots:
        coeff = plot(traces, rows, run.media / "ae_coefficients.png", run_cfg)
        summary = plot_summary(rows, verdict_rows, run.media / "ae_summary.png")
        combined = combine([coeff, summary], run.media / "ae_suite.png")
        if cfg.picture:
            Path(cfg.picture).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(combined, cfg.picture)
            console.print(f"figure: [bold]{cfg.picture}[/]")
    run.close()
    console.print(f"results: [bold]{run.path / 'results.md'}[/] and results.json")
    return payload


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
