"""Experiment ``ae-suite``: the Adaptive Evolution controller against plain optimizers.

Every scenario runs over ``seeds`` seeds (the same data, initial weights and starting
points for both methods of a pair) and reports mean +- 95% confidence half-width
(Student t). "AE-X" is :class:`~colonylab.collective_ml.ae.AEController` wrapping
optimizer X with X's own starting coefficients.

``regression``  a teacher-student regression (256 points in 8-D, a tanh MLP
                8-32-32-1, full batch, MSE of targets with unit variance):
                steps and seconds to reach ``target`` (0.02) against AdamW (lr 1e-3)
                and SGD-momentum (lr 0.01, 0.9). Runs that never reach it count as
                ``steps``.
``delay``       a 20-D ill-conditioned quadratic (curvatures 0.05..1) whose gradient
                arrives ``delay`` (3) steps late: SGD-momentum (lr 0.1, 0.9) rings
                and grows; AE should damp it (resonance clamp, alignment drive).
                Final log10 loss, steps to 1e-3 of the start, share of steps the
                loss went up.
``scaling``     the regression with the loss multiplied by 0.1, 1 and 10: plain
                SGD-momentum changes behaviour with the scale, AE should not (gauge
                law). Final log10 loss per scale and its spread across scales.
``plateau``     ``1 - exp(-|x|^2 / 2)`` in 10-D from |x| = 4, where the gradient is
                ~1e-3: steps to escape (loss < 0.5) for SGD-momentum and AdamW with and
                without AE.
``bad-lr``      the regression with SGD-momentum at lr 10 and 100: non-finite loss
                steps, the step after which the loss stays finite and below its start
                ("stable at"), final loss.
``knockout``    AE with each law off in turn (``use_<law>=False``) on the regression
                (AE-AdamW, steps to target) and the delayed quadratic (AE-SGD, final
                log10 loss).

Writes ``results.md`` and ``results.json`` (every row, every seed), and
``media/ae_coefficients.png`` (AE's coefficient trajectories per scenario) and
``media/ae_summary.png`` into the run directory; ``--picture PATH`` also copies the
combined figure there (``docs/ae-suite.png`` in the repository).

    colony train ae-suite                     # the full suite, ~3-5 min on 2 cores
    colony train ae-suite --quick             # 2 seeds, short runs: a smoke test
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
from torch import nn

from colonylab.collective_ml.ae import LAWS, AEConfig, AEController
from colonylab.runs.common import RunDir
from colonylab.runs.common.bench import torch_threads
from colonylab.runs.common.progress import progress_bar

EXPERIMENT = "ae-suite"
SCENARIOS = ("regression", "delay", "scaling", "plateau", "bad-lr", "knockout")
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
    quick: bool = False
    """Smoke test: 2 seeds and short runs (overrides seeds and the step counts)."""
    threads: int = 1
    """Torch CPU threads (tiny models: one is fastest)."""
    out: str | None = None
    """Run directory root (default runs/out)."""
    picture: str | None = None
    """Also copy the combined figure to this path (e.g. docs/ae-suite.png)."""
    plots: bool = True
    """Write the figures."""

    def __post_init__(self) -> None:
        for name in ("seeds", "steps", "delay_steps", "plateau_steps", "bad_lr_steps", "threads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be an integer >= 1, got {v!r}")
        if isinstance(self.delay, bool) or not isinstance(self.delay, int) or self.delay < 0:
            raise ValueError(f"--delay must be an integer >= 0, got {self.delay!r}")
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
                "quick": False,
            }
        )


# -- statistics ---------------------------------------------------------------------------------
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179]
_T975 += [2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086]


def ci95(values: list[float]) -> tuple[float, float]:
    """Mean and 95% half-width (Student t) of the finite ``values`` (nan if none / one)."""
    xs = [float(v) for v in values if math.isfinite(float(v))]
    if not xs:
        return math.nan, math.nan
    n = len(xs)
    mean = sum(xs) / n
    if n == 1:
        return mean, math.nan
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    t = _T975[n - 2] if n - 2 < len(_T975) else 1.96
    return mean, t * sd / math.sqrt(n)


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
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=1e-3 if lr is None else lr)
    if kind == "sgdm":
        return torch.optim.SGD(params, lr=0.01 if lr is None else lr, momentum=0.9)
    raise ValueError(f"optimizer kind must be adamw or sgdm, got {kind!r}")


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


def _train(
    step_fn: Callable[[], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    ae: AEConfig | None,
    steps: int,
    scale: float = 1.0,
    grad_hook: Callable[[], None] | None = None,
) -> Trace:
    """``steps`` steps of ``loss = step_fn(); (scale * loss).backward()``; AE when ``ae``."""
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
    return Trace(losses, seconds, ctrl.history if ctrl is not None else None)


def run_regression(
    seed: int,
    method: str,
    steps: int,
    *,
    scale: float = 1.0,
    lr: float | None = None,
    ae: AEConfig | None = None,
) -> Trace:
    """The regression with ``method`` in ``adamw``, ``sgdm``, ``ae-adamw``, ``ae-sgdm``."""
    x, y = regression_data(seed)
    model = regression_model(seed)
    kind = method.removeprefix("ae-")
    opt = make_optimizer(kind, model.parameters(), lr)
    cfg = (ae or AEConfig(seed=seed)) if method.startswith("ae-") else None
    return _train(lambda: (model(x) - y).square().mean(), opt, cfg, steps, scale)


def run_delay(
    seed: int, method: str, steps: int, delay: int, *, ae: AEConfig | None = None
) -> Trace:
    """The delayed-gradient quadratic: the gradient applied at step t is from step t - delay."""
    g = torch.Generator().manual_seed(20_000 + seed)
    curv = torch.logspace(math.log10(0.05), 0.0, 20, dtype=torch.float64)
    x = nn.Parameter(torch.randn(20, generator=g, dtype=torch.float64))
    opt = make_optimizer(method.removeprefix("ae-"), [x], 0.1)
    cfg = (ae or AEConfig(seed=seed)) if method.startswith("ae-") else None
    queue: list[torch.Tensor] = []

    def hook() -> None:
        queue.append(x.grad.detach().clone())  # the scenario's delay line, not the controller's
        x.grad = queue.pop(0) if len(queue) > delay else torch.zeros_like(x)

    return _train(lambda: 0.5 * (curv * x * x).sum(), opt, cfg, steps, grad_hook=hook)


def run_plateau(seed: int, method: str, steps: int, *, ae: AEConfig | None = None) -> Trace:
    """``1 - exp(-|x|^2/2)`` in 10-D from a random point at radius 4."""
    g = torch.Generator().manual_seed(30_000 + seed)
    start = torch.randn(10, generator=g, dtype=torch.float64)
    x = nn.Parameter(4.0 * start / start.norm())
    opt = make_optimizer(method.removeprefix("ae-"), [x])
    cfg = (ae or AEConfig(seed=seed)) if method.startswith("ae-") else None
    return _train(lambda: 1.0 - torch.exp(-0.5 * (x * x).sum()), opt, cfg, steps)


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


def _log10(v: float) -> float:
    return math.log10(v) if math.isfinite(v) and v > 0 else math.nan


def _final(trace: Trace, last: int = 20) -> float:
    """Mean of the last ``last`` losses (inf when any is non-finite)."""
    tail = trace.losses[-last:]
    return sum(tail) / len(tail) if all(math.isfinite(v) for v in tail) else math.inf


def scenario_regression(cfg: Config, tick: Callable[[], None]) -> tuple[list[dict], dict]:
    rows, traces = [], {}
    for method in ("adamw", "ae-adamw", "sgdm", "ae-sgdm"):
        steps, secs = [], []
        for s in range(cfg.seeds):
            tr = run_regression(s, method, cfg.steps)
            hit = tr.first_below(cfg.target)
            steps.append(float(cfg.steps if hit is None else hit + 1))
            secs.append(tr.seconds[-1] if hit is None else tr.seconds[hit])
            if s == 0:
                traces[method] = tr
            tick()
        rows.append(_row("regression", "steps to target", method, steps))
        rows.append(_row("regression", "seconds to target", method, secs))
    return rows, traces


def scenario_delay(cfg: Config, tick: Callable[[], None]) -> tuple[list[dict], dict]:
    rows, traces = [], {}
    for method in ("sgdm", "ae-sgdm"):
        final, hits, ups = [], [], []
        for s in range(cfg.seeds):
            tr = run_delay(s, method, cfg.delay_steps, cfg.delay)
            final.append(_log10(_final(tr)))
            hit = tr.first_below(1e-3 * tr.losses[0])
            hits.append(float(cfg.delay_steps if hit is None else hit + 1))
            diffs = np.diff(np.asarray(tr.losses))
            ups.append(float(np.mean(diffs > 0)) if len(diffs) else math.nan)
            if s == 0:
                traces[method] = tr
            tick()
        rows.append(_row("delay", "final log10 loss", method, final))
        rows.append(_row("delay", "steps to 1e-3 of start", method, hits))
        rows.append(_row("delay", "share of loss increases", method, ups))
    return rows, traces


SCALES = (0.1, 1.0, 10.0)


def scenario_scaling(cfg: Config, tick: Callable[[], None]) -> tuple[list[dict], dict]:
    rows, traces = [], {}
    for method in ("sgdm", "ae-sgdm", "adamw", "ae-adamw"):
        per_scale: dict[float, list[float]] = {c: [] for c in SCALES}
        for s in range(cfg.seeds):
            for c in SCALES:
                tr = run_regression(s, method, cfg.steps, scale=c)
                per_scale[c].append(_log10(_final(tr)))
                if s == 0 and method.startswith("ae-"):
                    traces[f"{method} x{c:g}"] = tr
                tick()
        for c in SCALES:
            rows.append(_row("scaling", f"final log10 loss, loss x{c:g}", method, per_scale[c]))
        spread = [
            max(vals) - min(vals) if all(math.isfinite(v) for v in vals) else math.inf
            for vals in zip(*(per_scale[c] for c in SCALES), strict=True)
        ]
        rows.append(_row("scaling", "spread of log10 loss over scales", method, spread))
    return rows, traces


def scenario_plateau(cfg: Config, tick: Callable[[], None]) -> tuple[list[dict], dict]:
    rows, traces = [], {}
    for method in ("sgdm", "ae-sgdm", "adamw", "ae-adamw"):
        hits = []
        for s in range(cfg.seeds):
            tr = run_plateau(s, method, cfg.plateau_steps)
            hit = tr.first_below(0.5)
            hits.append(float(cfg.plateau_steps if hit is None else hit + 1))
            if s == 0:
                traces[method] = tr
            tick()
        rows.append(_row("plateau", "steps to escape (loss < 0.5)", method, hits))
    return rows, traces


BAD_LRS = (10.0, 100.0)


def scenario_bad_lr(cfg: Config, tick: Callable[[], None]) -> tuple[list[dict], dict]:
    rows, traces = [], {}
    for lr in BAD_LRS:
        for method in ("sgdm", "ae-sgdm"):
            nans, stable, final = [], [], []
            for s in range(cfg.seeds):
                tr = run_regression(s, method, cfg.bad_lr_steps, lr=lr)
                nans.append(float(sum(not math.isfinite(v) for v in tr.losses)))
                at = tr.stable_at(tr.losses[0])
                stable.append(float(cfg.bad_lr_steps if at is None else at))
                final.append(_log10(_final(tr)))
                if s == 0 and method.startswith("ae-"):
                    traces[f"{method} lr {lr:g}"] = tr
                tick()
            tag = f"lr {lr:g}"
            rows.append(_row("bad-lr", f"non-finite steps, {tag}", method, nans))
            rows.append(_row("bad-lr", f"stable at step, {tag}", method, stable))
            rows.append(_row("bad-lr", f"final log10 loss, {tag}", method, final))
    return rows, traces


def scenario_knockout(cfg: Config, tick: Callable[[], None]) -> tuple[list[dict], dict]:
    rows = []
    variants = [("all laws", ())] + [(f"no {law}", (law,)) for law in LAWS]
    for name, off in variants:
        steps, final = [], []
        for s in range(cfg.seeds):
            ae = AEConfig(seed=s).without(*off)
            tr = run_regression(s, "ae-adamw", cfg.steps, ae=ae)
            hit = tr.first_below(cfg.target)
            steps.append(float(cfg.steps if hit is None else hit + 1))
            td = run_delay(s, "ae-sgdm", cfg.delay_steps, cfg.delay, ae=ae)
            final.append(_log10(_final(td)))
            tick()
        rows.append(_row("knockout", "regression steps to target (AE-AdamW)", name, steps))
        rows.append(_row("knockout", "delay final log10 loss (AE-SGD)", name, final))
    return rows, {}


RUNNERS = {
    "regression": (scenario_regression, 4),
    "delay": (scenario_delay, 2),
    "scaling": (scenario_scaling, 12),
    "plateau": (scenario_plateau, 4),
    "bad-lr": (scenario_bad_lr, 4),
    "knockout": (scenario_knockout, 1 + len(LAWS)),
}


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


def markdown(rows: list[dict], verdict_rows: list[dict], cfg: Config, seconds: float) -> str:
    """The results table as markdown."""
    lines = [
        f"# ae-suite results ({cfg.seeds} seeds, mean ± 95% CI, {seconds:.0f} s)",
        "",
        "| scenario | metric | method | value |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['scenario']} | {r['metric']} | {r['method']} | {_fmt(r)} |")
    lines += ["", "## AE against its plain optimizer (lower is better everywhere)", ""]
    lines += ["| scenario | metric | AE | plain | AE mean | plain mean | verdict |"]
    lines += ["|---|---|---|---|---|---|---|"]
    for v in verdict_rows:
        lines.append(
            f"| {v['scenario']} | {v['metric']} | {v['ae']} | {v['baseline']} | "
            f"{v['ae_mean']:.4g} | {v['baseline_mean']:.4g} | {v['verdict']} |"
        )
    return "\n".join(lines) + "\n"


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
    t0 = time.perf_counter()
    with progress_bar(console) as progress:
        for scen in run_cfg.scenarios:
            fn, runs_per_seed = RUNNERS[scen]
            task = progress.add_task(scen, total=runs_per_seed * run_cfg.seeds, rate="")

            def tick(task: Any = task) -> None:
                progress.advance(task)

            t_s = time.perf_counter()
            new_rows, new_traces = fn(run_cfg, tick)
            progress.update(task, rate=f"{time.perf_counter() - t_s:.0f} s")
            rows += new_rows
            traces[scen] = new_traces
    seconds = time.perf_counter() - t0
    verdict_rows = verdicts(rows)

    table = Table(title=f"ae-suite: {run_cfg.seeds} seeds, mean ± 95% CI ({seconds:.0f} s)")
    for col in ("scenario", "metric", "method", "value"):
        table.add_column(col, justify="right" if col == "value" else "left")
    for r in rows:
        table.add_row(r["scenario"], r["metric"], r["method"], _fmt(r))
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

    md = markdown(rows, verdict_rows, run_cfg, seconds)
    (run.path / "results.md").write_text(md)
    payload = {
        "experiment": EXPERIMENT,
        "config": asdict(cfg),
        "resolved": asdict(run_cfg),
        "seconds": seconds,
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
