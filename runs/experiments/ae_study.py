"""Experiment ``ae-study``: Adaptive Evolution on the lab's own training runs, against tuned
baselines, and its four falsifiable predictions (issue 21).

Tasks (reduced sizes for a shared 2-core machine; minibatch noise, real data):

=================  ================================================================
``nca-grow``       the growing neural CA (:class:`~colonylab.agents.nca.NCA`, 12
                   channels, hidden 48) growing the butterfly (14 px) on a 20x20
                   canvas from one seed cell, 16-22 CA steps per iteration, batch 4,
                   per-parameter gradient normalisation (the lab's recipe);
                   held-out metric: pattern loss after 22 steps (4 fire draws)
``nca-digits``     self-classifying digits: an NCA (16 channels, hidden 48, channel
                   0 frozen input, life fixed by the pixel) on scikit-learn's 8x8
                   digits padded to 10x10, fresh digits each iteration, 10-14 CA
                   steps, L2 on the live cells' logits, gradient normalisation;
                   metric: held-out accuracy of the cells' majority vote (200 digits)
``moe-digits``     a top-k MoE classifier on the 8x8 digits: Linear 64->32, a
                   residual :class:`~colonylab.collective_ml.moe.TopKMoE` (4 experts,
                   k=2, noisy gating, capacity 1.25, balance loss), Linear 32->10;
                   cross-entropy + aux loss, batch 32; metric: held-out accuracy
``vowels``         the 1991 competitive mixture (4 linear experts) on Peterson &
                   Barney's vowels (``../shared/data/pb52.csv`` when present, else the
                   synthetic tokens), 50 speakers train, batch 16; metric: held-out
                   accuracy of the speakers never trained on
=================  ================================================================

Methods, all from the same initial weights, data order and random draws per seed:

* ``adam`` / ``sgdm`` with ``const``, ``cosine`` (to 0 at the budget) and ``step`` (x0.1
  at 2/3 of the budget) schedules; learning rate (and SGD's momentum, 0.9 or 0.99)
  tuned on a grid on the tuning seeds (1000, 1001, ...), never on the reported ones;
* ``adam-lrrt`` / ``sgdm-lrrt``: the LR range test (exponential ramp on a tuning seed;
  the suggestion is the rate at the smoothed-loss minimum / 10) at a constant rate;
* ``ae-adam`` / ``ae-sgdm``: :class:`~colonylab.collective_ml.ae.AEController` from an
  untuned start (Adam 1e-3; SGD 0.01, momentum 0.9).

Time to target (TTT): the first step at which the training-loss EMA (rate 0.05) is at or
below the task's target; a run that never gets there counts the budget (flagged). The
target is set without looking at AE: the level that the best-by-final-loss grid config
reaches (mean EMA over the tuning seeds) at half the budget. The tuned baseline of each
(optimizer, schedule) is the grid point with the lowest tuning-seed TTT (ties: final
loss); all of them, the range tests and AE then run on the evaluation seeds 0..seeds-1.
"Best tuned baseline" is the baseline row with the lowest evaluation mean TTT (a choice
on the evaluation seeds: it favours the baselines). Instability incident: a run with a
non-finite loss or a loss EMA above 5x its first loss (on drift variants, after the drift:
5x the first loss after it; the EMA restarts there).

Predictions (each answered per task and optimizer with a 95% interval; "yes" needs the
interval on the predicted side of zero):

1. ``coupling``: Pearson correlation of log alpha and log 1/(1-beta) (SGD momentum,
   Adam beta1) along each AE evaluation run (after 10% burn-in); mean over seeds with a
   bootstrap interval over seeds. Yes: the interval is below 0. The coupling
   knock-out's correlation is reported next to it.
2. ``gauge``: AE-SGDm with the gauge law on and off, batch sizes x1/4, x1, x4 and loss
   scales 0.01, 1, 100: per seed the spread (max - min) of log10 final loss (unscaled)
   across the sweep; yes: the paired difference off - on has its interval above 0.
3. ``drift``: ``moe-digits-drift`` (labels permuted by a seeded derangement at half the
   budget) and ``vowels-drift`` (men's tokens, then at half the budget women's and
   children's, the normaliser fitted on the men): every baseline re-tuned on the drift
   variant, TTT counted from the drift (the recovery), target set as above on the
   second half. Yes: AE's recovery is shorter than the best baseline's (paired interval
   over seeds of the difference below 0); the issue's "halved" is reported as the ratio.
   AE with the resonance clamp knocked out runs alongside (the clamp fires on the jump).
4. ``noise``: plateau variants (all weights x0.02 at the start, the vowels' experts
   tanh MLPs: the product of small weights is a saddle): steps until the EMA falls to 80% of its first value, AE with
   the noise law on and off, and blow-ups. Yes: paired difference on - off has its
   interval below 0 and no more incidents with the noise law than without.

Knock-outs: each law off in turn, AE-Adam on ``moe-digits`` and AE-SGDm on ``vowels``
(TTT, final metric, incidents, coupling correlation, paired difference to all laws on).
Cost, on both NCA tasks and the MoE: per-step wall time of ``ctrl.step`` minus
``optimizer.step`` relative to a plain training step (interleaved, medians), and the
bytes the controller allocates per step (torch profiler, top-level ops) next to one
forward + backward.

Writes ``table.md``, ``verdicts.json``, ``results.json`` and ``media/ae_study.png`` (+
panels) into the run directory; ``--picture PATH`` copies the figure there.

    colony train ae-study                       # the full study (~1 CPU-hour)
    colony train ae-study --quick               # seconds: the smoke test
    colony train ae-study --tasks moe-digits vowels --seeds 8

This file is longer than ~500 lines: it is the study's whole protocol (four tasks, their
drift and plateau variants, tuning, evaluation, four prediction experiments, knock-outs,
cost, verdicts, report and figure) kept in one place so it can be reviewed as one.
"""

from __future__ import annotations

import functools
import json
import math
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from torch import Tensor, nn

from colonylab._checks import check_int
from colonylab.agents.nca import NCA, NCAConfig
from colonylab.collective_ml.ae import LAWS, AEConfig, AEController
from colonylab.collective_ml.mixture1991 import CompetitiveMixture
from colonylab.collective_ml.moe import TopKMoE
from colonylab.collective_ml.trainers.gradient import normalise_gradients
from colonylab.runs.common import RunDir
from colonylab.runs.common.bench import torch_threads
from colonylab.runs.common.tables import ci95

EXPERIMENT = "ae-study"
TASKS = ("nca-grow", "nca-digits", "moe-digits", "vowels")
SCHEDULES = ("const", "cosine", "step")
OPTS = ("adam", "sgdm")
START = {"adam": (1e-3, 0.9), "sgdm": (0.01, 0.9)}
"""AE's untuned start: (learning rate, momentum / beta1)."""
TUNE_SEED0 = 1000
EMA = 0.05
BLOWUP = 5.0
PLATEAU_SHRINK = 0.02
COST_TASKS = ("nca-grow", "nca-digits", "moe-digits")
KNOCKOUT_OPT = {"moe-digits": "adam", "vowels": "sgdm"}
"""The AE variant whose laws are knocked out, per task."""
DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data"
console = Console()


@dataclass(frozen=True)
class Config:
    """AE-Adam / AE-SGDm against tuned baselines on the lab's training runs (issue 21)."""

    tasks: tuple[str, ...] = TASKS
    """Tasks: nca-grow, nca-digits, moe-digits, vowels."""
    seeds: int = 5
    """Evaluation seeds 0..seeds-1 (>= 2 for an interval)."""
    tune_seeds: int = 2
    """Tuning seeds (1000, 1001, ...)."""
    nca_tune_seeds: int = 1
    """Tuning seeds of the two NCA tasks (their runs cost ~20x a classifier's)."""
    steps: tuple[int, ...] = (160, 160, 200, 200)
    """Step budget per task, in --tasks order of TASKS (nca-grow, nca-digits, moe, vowels)."""
    adam_grid: tuple[float, ...] = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
    """Adam learning-rate grid."""
    sgd_grid: tuple[float, ...] = (3e-3, 1e-2, 3e-2, 0.1, 0.3)
    """SGD-momentum learning-rate grid."""
    momenta: tuple[float, ...] = (0.9, 0.99)
    """SGD momenta tried (constant schedule; the schedules reuse the chosen one)."""
    predictions: bool = True
    """Run the drift, gauge, noise and knock-out experiments and the cost measurement."""
    cost_steps: int = 30
    """Timed steps per method in the cost measurement."""
    cost_only: bool = False
    """Only the cost measurement (NCA and MoE tasks of --tasks, --cost-repeats times)."""
    cost_repeats: int = 1
    """Repeats of the cost measurement (fresh models each time; every repeat is listed)."""
    time_limit_min: float = 0.0
    """Start no further task after this many minutes (0: no limit); skipped tasks are listed."""
    quick: bool = False
    """Smoke test: 2 seeds, 1 tuning seed, 20-step budgets, 1-point grids (overrides)."""
    threads: int = 1
    """Torch CPU threads."""
    out: str | None = None
    """Run directory root (default runs/out)."""
    picture: str | None = None
    """Also copy the figure to this path (e.g. docs/ae-study.png)."""
    plots: bool = True
    """Write the figures."""

    def __post_init__(self) -> None:
        check_int("--seeds", self.seeds, 2, TUNE_SEED0)
        check_int("--tune-seeds", self.tune_seeds, 1)
        check_int("--nca-tune-seeds", self.nca_tune_seeds, 1)
        check_int("--threads", self.threads, 1)
        check_int("--cost-steps", self.cost_steps, 3)
        check_int("--cost-repeats", self.cost_repeats, 1)
        if not (isinstance(self.time_limit_min, (int, float)) and self.time_limit_min >= 0):
            raise ValueError(f"--time-limit-min must be >= 0, got {self.time_limit_min!r}")
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown or not self.tasks:
            raise ValueError(f"--tasks must name some of {', '.join(TASKS)}, got {self.tasks}")
        if len(self.steps) != len(TASKS):
            raise ValueError(
                f"--steps needs {len(TASKS)} budgets (one per task of {', '.join(TASKS)}), "
                f"got {len(self.steps)}"
            )
        for s in self.steps:
            check_int("--steps", s, 20)
        for name in ("adam_grid", "sgd_grid", "momenta"):
            vals = getattr(self, name)
            if not vals or not all(isinstance(v, (int, float)) and v > 0 for v in vals):
                raise ValueError(f"--{name.replace('_', '-')} must be numbers > 0, got {vals}")
        if not all(v < 1 for v in self.momenta):
            raise ValueError(f"--momenta must be in (0, 1), got {self.momenta}")

    def resolved(self) -> Config:
        """The config with ``--quick`` applied."""
        if not self.quick:
            return self
        return replace(
            self,
            seeds=2,
            tune_seeds=1,
            nca_tune_seeds=1,
            steps=(20, 20, 20, 20),
            adam_grid=(1e-2,),
            sgd_grid=(0.1,),
            momenta=(0.9,),
            cost_steps=3,
            quick=False,
        )

    def budget(self, task: str) -> int:
        return self.steps[TASKS.index(task.split(":")[0])]


# -- data ---------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _digits(scale: int, border: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    from colonylab.runs.data.digits import load_sklearn_digits

    d = load_sklearn_digits(scale, border, 0.2, 0)
    return d.train_images, d.train_labels, d.test_images, d.test_labels


@functools.lru_cache(maxsize=1)
def _vowels() -> Any:
    from colonylab.runs.data.vowels import load_praat_csv, synthetic_vowels

    path = DATA_DIR / "pb52.csv"
    return load_praat_csv(path) if path.exists() else synthetic_vowels(1991)


@functools.lru_cache(maxsize=2)
def _grow_target(size: int, target_size: int) -> Tensor:
    from colonylab.runs.data.targets import load_target

    return load_target(None, target_size, size)


def _derangement(n: int, seed: int) -> Tensor:
    rng = np.random.default_rng(50_000 + seed)
    while True:
        p = rng.permutation(n)
        if not np.any(p == np.arange(n)):
            return torch.as_tensor(p)


# -- problems -----------------------------------------------------------------------------------
@dataclass
class Problem:
    """One task instance for one seed: the model, the minibatch loss of step ``t`` (draws
    its own batch), the held-out metric, and whether gradients are normalised."""

    model: nn.Module
    loss: Callable[[int], Tensor]
    evaluate: Callable[[], float]
    normalise: bool = False
    drift_at: int | None = None
    metric: str = "accuracy"


def _seeded(seed: int, build: Callable[[], nn.Module]) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _shrink(model: nn.Module, factor: float) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(factor)


def nca_grow(seed: int, steps: int, batch: int, variant: str) -> Problem:
    from colonylab.emergence.regeneration import pattern_loss
    from colonylab.envs.ca.nca_canvas import seed_cell

    size, smin, smax = 20, 16, 22
    target = _grow_target(size, 14)
    model = _seeded(seed, lambda: NCA(NCAConfig(channels=12, hidden=48)))
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    start = seed_cell(1, size, size, 12)

    def loss(t: int) -> Tensor:
        x = start.repeat(batch, 1, 1, 1)
        for _ in range(int(rng.integers(smin, smax + 1))):
            x = model.step(x, generator=gen)
        return pattern_loss(x, target).mean()

    @torch.no_grad()
    def evaluate() -> float:
        g = torch.Generator().manual_seed(777)
        x = model(start.repeat(4, 1, 1, 1), smax, generator=g)
        return float(pattern_loss(x, target).mean())

    return Problem(model, loss, evaluate, normalise=True, metric="pattern loss")


def _votes(x: Tensor, alive: Tensor) -> Tensor:
    votes = F.one_hot(x[..., -10:].argmax(-1), 10) * alive.unsqueeze(-1)
    return votes.sum(dim=(1, 2)).argmax(-1)


def nca_digits(seed: int, steps: int, batch: int, variant: str) -> Problem:
    from colonylab.runs.data.digits import alive_of, fresh_states
    from colonylab.runs.experiments.nca_digits import digits_loss

    tr_x, tr_y, te_x, te_y = _digits(1, 1)
    cfg = NCAConfig(channels=16, hidden=48, alive_channel=0, frozen_channels=1)
    model = _seeded(seed, lambda: NCA(cfg))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.w2.normal_(0.0, 0.02, generator=gen)
    rng = np.random.default_rng(seed)

    def run(images: Tensor, n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
        x = fresh_states(images, 16)
        alive = alive_of(x)
        for _ in range(n):
            x = model.step(x, alive=alive, generator=g)
        return x, alive

    def loss(t: int) -> Tensor:
        idx = torch.as_tensor(rng.integers(0, len(tr_y), batch))
        x, _ = run(tr_x[idx], int(rng.integers(10, 15)), gen)
        return digits_loss(x, tr_y[idx]).mean()

    @torch.no_grad()
    def evaluate() -> float:
        x, alive = run(te_x[:200], 14, torch.Generator().manual_seed(777))
        return float((_votes(x, alive) == te_y[:200]).float().mean())

    return Problem(model, loss, evaluate, normalise=True)


class MoEClassifier(nn.Module):
    """Linear 64->32, residual top-2-of-4 MoE, Linear 32->10."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(64, 32)
        self.moe = TopKMoE(32, 64, 4, k=2, residual=True)
        self.head = nn.Linear(32, 10)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.head(self.moe(torch.tanh(self.embed(x)), generator=generator))


def moe_digits(seed: int, steps: int, batch: int, variant: str) -> Problem:
    tr_x, tr_y, te_x, te_y = _digits(1, 0)
    tr_x, te_x = tr_x.reshape(len(tr_x), -1), te_x.reshape(len(te_x), -1)
    model = _seeded(seed, MoEClassifier)
    if variant == "plateau":
        _shrink(model, PLATEAU_SHRINK)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    drift_at = steps // 2 if variant == "drift" else None
    perm = _derangement(10, seed)

    def labels(y: Tensor, t: int) -> Tensor:
        return perm[y] if drift_at is not None and t >= drift_at else y

    def loss(t: int) -> Tensor:
        idx = torch.as_tensor(rng.integers(0, len(tr_y), batch))
        logits = model(tr_x[idx], generator=gen)
        return F.cross_entropy(logits, labels(tr_y[idx], t)) + model.moe.loss

    @torch.no_grad()
    def evaluate() -> float:
        model.eval()
        pred = model(te_x).argmax(-1)
        model.train()
        return float((pred == labels(te_y, steps)).float().mean())

    return Problem(model, loss, evaluate, drift_at=drift_at)


def vowels(seed: int, steps: int, batch: int, variant: str) -> Problem:
    from colonylab.runs.data.vowels import Normaliser, speaker_split

    data = _vowels()
    drift_at = steps // 2 if variant == "drift" else None
    if variant == "drift":
        men = np.flatnonzero(data.groups == "m")
        rest_speakers = np.unique(data.speakers[data.groups != "m"])
        test_speakers = rest_speakers[::4]  # every 4th woman/child is held out
        rest = np.flatnonzero((data.groups != "m") & ~np.isin(data.speakers, test_speakers))
        test = np.flatnonzero(np.isin(data.speakers, test_speakers))
        norm = Normaliser.fit(data.formants[men])
        phases = [men, rest]
    else:
        train, test = speaker_split(data, 50)
        norm = Normaliser.fit(data.formants[train])
        phases = [train]
    x_all = torch.as_tensor(norm(data.formants), dtype=torch.float32)
    y_all = F.one_hot(torch.as_tensor(data.labels), 4).float()
    if variant == "plateau":  # tanh-MLP experts from tiny weights: a saddle
        model = _seeded(seed, lambda: CompetitiveMixture(2, 4, 4, expert="mlp", hidden=8))
        _shrink(model, PLATEAU_SHRINK)
    else:
        model = _seeded(seed, lambda: CompetitiveMixture(2, 4, 4))
    rng = np.random.default_rng(seed)

    def loss(t: int) -> Tensor:
        pool = phases[1] if drift_at is not None and t >= drift_at else phases[0]
        idx = torch.as_tensor(pool[rng.integers(0, len(pool), batch)])
        return model.loss(x_all[idx], y_all[idx])

    @torch.no_grad()
    def evaluate() -> float:
        pred = model.predict(x_all[test]).argmax(-1)
        return float((pred == y_all[test].argmax(-1)).float().mean())

    return Problem(model, loss, evaluate, drift_at=drift_at)


BUILDERS: dict[str, tuple[Callable[..., Problem], int]] = {
    "nca-grow": (nca_grow, 4),
    "nca-digits": (nca_digits, 8),
    "moe-digits": (moe_digits, 32),
    "vowels": (vowels, 16),
}
"""Task -> (builder, default batch)."""


def build(task: str, seed: int, steps: int, batch: int | None = None) -> Problem:
    """``task`` is a name of TASKS, optionally with ``:drift`` or ``:plateau``."""
    name, _, variant = task.partition(":")
    fn, default_batch = BUILDERS[name]
    return fn(seed, steps, batch or default_batch, variant or "base")


# -- methods and runs ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Method:
    """An optimizer, a schedule (``const``/``cosine``/``step``, ``ae``, ``range``) and its
    coefficients; ``off``: AE laws switched off; ``gauge_scale``: loss multiplier."""

    opt: str
    schedule: str
    lr: float
    momentum: float = 0.9
    off: tuple[str, ...] = ()
    label: str = ""

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        if self.schedule == "ae":
            return f"ae-{self.opt}" + "".join(f" -{law}" for law in self.off)
        return f"{self.opt}-{self.schedule}"


def ae_method(opt: str, off: tuple[str, ...] = ()) -> Method:
    lr, mom = START[opt]
    return Method(opt, "ae", lr, mom, off)


def _optimizer(m: Method, params: Any) -> torch.optim.Optimizer:
    if m.opt == "adam":
        return torch.optim.Adam(params, lr=m.lr, betas=(m.momentum, 0.999))
    return torch.optim.SGD(params, lr=m.lr, momentum=m.momentum)


def _factor(schedule: str, t: int, steps: int) -> float:
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t / steps))
    if schedule == "step":
        return 0.1 if t >= (2 * steps) // 3 else 1.0
    return 1.0


@dataclass
class Run:
    """One training run's record."""

    losses: list[float]
    ema: list[float]
    metric: float
    nonfinite: int
    incident: bool
    seconds: float
    alpha: list[float] = field(default_factory=list)
    beta: list[float] = field(default_factory=list)
    sigma: list[float] = field(default_factory=list)
    drift_at: int | None = None
    lrs: list[float] = field(default_factory=list)

    def ttt(self, target: float) -> int | None:
        """Steps from the start (or the drift) to the first EMA <= target (None: never)."""
        start = self.drift_at or 0
        for i in range(start, len(self.ema)):
            if self.ema[i] <= target:
                return i - start
        return None

    def final(self, last: float = 0.1) -> float:
        """Mean raw loss over the last ``last`` share of the steps (inf if any non-finite)."""
        k = max(1, int(len(self.losses) * last))
        tail = self.losses[-k:]
        return sum(tail) / k if all(math.isfinite(v) for v in tail) else math.inf


def train(
    task: str,
    seed: int,
    m: Method,
    steps: int,
    *,
    batch: int | None = None,
    scale: float = 1.0,
    range_lrs: tuple[float, float] | None = None,
) -> Run:
    """``steps`` steps of ``task`` for ``seed`` with method ``m``; the loss is multiplied by
    ``scale`` before backward (the record keeps it unscaled). A plain optimizer stops at
    its first non-finite loss (the run is then an incident; its metric is nan)."""
    prob = build(task, seed, steps, batch)
    params = [p for p in prob.model.parameters() if p.requires_grad]
    opt = _optimizer(m, params)
    ctrl = AEController(opt, AEConfig(seed=seed).without(*m.off)) if m.schedule == "ae" else None
    losses, ema, lrs = [], [], []
    nonfinite, level, first, blown = 0, math.nan, math.nan, False
    t0 = time.perf_counter()
    for t in range(steps):
        if prob.drift_at is not None and t == prob.drift_at:
            level = math.nan  # the EMA starts again at the drift
        if ctrl is None:
            lr = m.lr * _factor(m.schedule, t, steps)
            if range_lrs is not None:
                lo, hi = range_lrs
                lr = lo * (hi / lo) ** (t / max(steps - 1, 1))
            for g in opt.param_groups:
                g["lr"] = lr
            lrs.append(lr)
        opt.zero_grad(set_to_none=True)
        loss = prob.loss(t)
        value = float(loss.detach())
        (loss * scale).backward()
        if prob.normalise:
            normalise_gradients(prob.model)
        losses.append(value)
        if not math.isfinite(value):
            nonfinite += 1
            ema.append(math.inf)
            if ctrl is None:
                break
            ctrl.step(loss.detach() * scale)
            continue
        if math.isnan(level):  # first step, or first after the drift: the blow-up reference
            first = value
        level = value if math.isnan(level) else level + EMA * (value - level)
        ema.append(level)
        blown = blown or level > BLOWUP * abs(first)
        if ctrl is None:
            opt.step()
        else:
            ctrl.step(loss.detach() * scale)
        if range_lrs is not None and len(ema) > 10 and level > 4 * min(ema):
            break
    seconds = time.perf_counter() - t0
    metric = prob.evaluate() if nonfinite == 0 or ctrl is not None else math.nan
    incident = nonfinite > 0 or blown
    run = Run(losses, ema, metric, nonfinite, incident, seconds, drift_at=prob.drift_at, lrs=lrs)
    if ctrl is not None:
        h = ctrl.history
        run.alpha = list(h["lr"])
        run.lrs = list(h["applied_lr"])
        run.beta = list(h.get("momentum", h.get("beta1", [])))
        run.sigma = list(h["sigma"])
    return run


# -- statistics ---------------------------------------------------------------------------------
def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs and all(math.isfinite(x) for x in xs) else math.inf


def paired(a: list[float], b: list[float]) -> dict[str, float]:
    """Mean and 95% interval (Student t) of the per-seed differences ``a - b``."""
    d = [x - y for x, y in zip(a, b, strict=True)]
    mean, half = ci95(d)
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "n": len(d)}


def bootstrap_mean(values: list[float], seed: int = 0, draws: int = 2000) -> dict[str, float]:
    """Mean of the finite ``values`` and its 95% percentile bootstrap interval."""
    xs = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if xs.size == 0:
        return {"mean": math.nan, "lo": math.nan, "hi": math.nan, "n": 0}
    rng = np.random.default_rng(seed)
    means = xs[rng.integers(0, xs.size, (draws, xs.size))].mean(1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"mean": float(xs.mean()), "lo": float(lo), "hi": float(hi), "n": int(xs.size)}


def coupling_corr(run: Run, burn: float = 0.1) -> float:
    """Pearson correlation of log alpha and log 1/(1 - beta) along ``run`` after ``burn``."""
    k = int(len(run.alpha) * burn)
    a = np.log(np.asarray(run.alpha[k:], dtype=float))
    b = -np.log1p(-np.asarray(run.beta[k:], dtype=float))
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size < 3 or a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def _verdict(stat: dict[str, float], side: str) -> str:
    """``yes`` when the interval lies on the predicted ``side`` (below/above) of zero."""
    lo, hi = stat["lo"], stat["hi"]
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "no (undetermined)"
    if side == "below":
        return "yes" if hi < 0 else ("no (opposite)" if lo > 0 else "no (interval spans 0)")
    return "yes" if lo > 0 else ("no (opposite)" if hi < 0 else "no (interval spans 0)")


# -- tuning and evaluation ----------------------------------------------------------------------
def _capped(run: Run, target: float, steps: int) -> float:
    hit = run.ttt(target)
    return float(steps - (run.drift_at or 0) if hit is None else hit)


def _seeds_for(cfg: Config, task: str) -> list[int]:
    n = cfg.nca_tune_seeds if task.startswith("nca") else cfg.tune_seeds
    return list(range(TUNE_SEED0, TUNE_SEED0 + n))


def tune(cfg: Config, task: str, tick: Callable[[str], None]) -> dict[str, Any]:
    """Grid runs on the tuning seeds, the target, the tuned baselines and the range tests."""
    steps = cfg.budget(task)
    seeds = _seeds_for(cfg, task)
    runs: dict[Method, list[Run]] = {}

    def grid(methods: list[Method]) -> None:
        for m in methods:
            runs[m] = [train(task, s, m, steps) for s in seeds]
            tick(f"tune {task} {m.name} lr {m.lr:g}")

    grid([Method("adam", s, lr) for s in SCHEDULES for lr in cfg.adam_grid])
    grid([Method("sgdm", "const", lr, mom) for mom in cfg.momenta for lr in cfg.sgd_grid])
    final = {m: _mean([r.final() for r in rs]) for m, rs in runs.items()}
    # target: where the best-final config's mean EMA is at half the budget
    ref = min(final, key=lambda m: final[m])
    start = runs[ref][0].drift_at or 0
    half = start + (steps - start) // 2
    target = float(np.mean([r.ema[min(half, len(r.ema) - 1)] for r in runs[ref]]))

    def score(m: Method) -> tuple[float, float]:
        rs = runs[m]
        if any(r.nonfinite for r in rs):
            return math.inf, math.inf
        return _mean([_capped(r, target, steps) for r in rs]), final[m]

    sgd_const = [m for m in runs if m.opt == "sgdm"]
    mom = min(sgd_const, key=score).momentum
    grid([Method("sgdm", s, lr, mom) for s in SCHEDULES[1:] for lr in cfg.sgd_grid])
    final = {m: _mean([r.final() for r in rs]) for m, rs in runs.items()}
    tuned = {}
    for opt in OPTS:
        for sched in SCHEDULES:
            cands = [m for m in runs if m.opt == opt and m.schedule == sched]
            tuned[f"{opt}-{sched}"] = min(cands, key=score)
    ranges = {}
    for opt, (lo, hi) in (("adam", (1e-5, 1.0)), ("sgdm", (1e-4, 10.0))):
        r = train(
            task, seeds[0], Method(opt, "range", lo, 0.9), min(steps, 100), range_lrs=(lo, hi)
        )
        i = int(np.argmin([e if math.isfinite(e) else math.inf for e in r.ema]))
        suggestion = r.lrs[i] / 10
        ranges[opt] = {"lrs": r.lrs, "ema": r.ema, "suggested": suggestion}
        tuned[f"{opt}-lrrt"] = Method(opt, "const", suggestion, 0.9, label=f"{opt}-lrrt")
        tick(f"range test {task} {opt}")
    table = [
        {"method": m.name, "lr": m.lr, "momentum": m.momentum, "ttt": score(m)[0],
         "final": final[m]}
        for m in runs
    ]  # fmt: skip
    return {"target": target, "reference": ref.name, "tuned": tuned, "grid": table,
            "ranges": ranges, "seeds": seeds}  # fmt: skip


def evaluate(
    cfg: Config, task: str, methods: dict[str, Method], target: float, tick: Callable[[str], None]
) -> dict[str, dict[str, Any]]:
    """Every method on the evaluation seeds: per-seed TTT, final loss, metric, incidents."""
    steps = cfg.budget(task)
    out = {}
    for name, m in methods.items():
        rs = [train(task, s, m, steps) for s in range(cfg.seeds)]
        out[name] = summarise(rs, m, target, steps)
        tick(f"eval {task} {name}")
    return out


def summarise(rs: list[Run], m: Method, target: float, steps: int) -> dict[str, Any]:
    return {
        "method": m.name, "lr": m.lr, "momentum": m.momentum, "schedule": m.schedule,
        "ttt": [_capped(r, target, steps) for r in rs],
        "reached": [r.ttt(target) is not None for r in rs],
        "final": [r.final() for r in rs],
        "metric": [r.metric for r in rs],
        "incidents": [int(r.incident) for r in rs],
        "nonfinite": [r.nonfinite for r in rs],
        "runs": rs,
    }  # fmt: skip


def _best(evals: dict[str, dict[str, Any]]) -> str:
    base = [k for k in evals if not k.startswith("ae-")]
    return min(base, key=lambda k: _mean(evals[k]["ttt"]))


# -- predictions --------------------------------------------------------------------------------
def _log_final(r: Run) -> float:
    """log10 of the final loss, a diverged run clipped to 10x its first loss."""
    first = abs(r.losses[0]) if r.losses and math.isfinite(r.losses[0]) else 1.0
    v = r.final()
    return math.log10(max(min(v, 10 * first) if math.isfinite(v) else 10 * first, 1e-12))


def gauge_sweep(cfg: Config, task: str, tick: Callable[[str], None]) -> dict[str, Any]:
    """AE-SGDm with the gauge law on/off over batch sizes and loss
    scales: per seed the spread of log10 final loss across each sweep."""
    steps = cfg.budget(task)
    b0 = BUILDERS[task][1]
    sweeps = {"batch": [(max(2, b0 // 4), 1.0), (b0, 1.0), (4 * b0, 1.0)],
              "scale": [(b0, 0.01), (b0, 1.0), (b0, 100.0)]}  # fmt: skip
    methods = {"gauge on": ae_method("sgdm"), "gauge off": ae_method("sgdm", ("gauge",))}
    out: dict[str, Any] = {}
    for sweep, points in sweeps.items():
        per: dict[str, list[float]] = {}
        finals: dict[str, list[list[float]]] = {}
        incidents: dict[str, int] = {}
        for name, m in methods.items():
            spreads, rows, inc = [], [], 0
            for s in range(cfg.seeds):
                vals = []
                for batch, scale in points:
                    r = train(task, s, m, steps, batch=batch, scale=scale)
                    vals.append(_log_final(r))
                    inc += int(r.incident)
                spreads.append(max(vals) - min(vals))
                rows.append(vals)
            per[name], finals[name], incidents[name] = spreads, rows, inc
            tick(f"gauge {task} {sweep} {name}")
        out[sweep] = {
            "points": points, "spread": per, "log10_final": finals, "incidents": incidents,
            "off_minus_on": paired(per["gauge off"], per["gauge on"]),
        }  # fmt: skip
    return out


def plateau(cfg: Config, task: str, tick: Callable[[str], None]) -> dict[str, Any]:
    """AE with the noise law on/off on the small-init plateau: escape steps, incidents."""
    steps = cfg.budget(task)
    out: dict[str, Any] = {}
    for opt in OPTS:
        res = {}
        for name, off in (("noise on", ()), ("noise off", ("noise",))):
            rs = [train(f"{task}:plateau", s, ae_method(opt, off), steps) for s in range(cfg.seeds)]
            esc = []
            for r in rs:
                level = 0.8 * r.losses[0]
                hit = next((i for i, e in enumerate(r.ema) if e <= level), None)
                esc.append(float(steps if hit is None else hit))
            res[name] = {
                "escape": esc,
                "escaped": [e < steps for e in esc],
                "incidents": [int(r.incident) for r in rs],
                "sigma_max_ratio": [max(r.sigma) / r.sigma[0] if r.sigma else math.nan for r in rs],
                "ema": [r.ema for r in rs],
            }
            tick(f"plateau {task} ae-{opt} {name}")
        res["on_minus_off"] = paired(res["noise on"]["escape"], res["noise off"]["escape"])
        out[f"ae-{opt}"] = res
    return out


def knockouts(
    cfg: Config, task: str, target: float, full: dict[str, dict[str, Any]],
    tick: Callable[[str], None],
) -> dict[str, Any]:  # fmt: skip
    """Each law off in turn, paired against all laws on (the evaluation runs)."""
    steps = cfg.budget(task)
    out: dict[str, Any] = {}
    for opt in (KNOCKOUT_OPT[task],):
        ref = full[f"ae-{opt}"]
        for law in LAWS:
            m = ae_method(opt, (law,))
            rs = [train(task, s, m, steps) for s in range(cfg.seeds)]
            row = summarise(rs, m, target, steps)
            row["d_ttt"] = paired(row["ttt"], ref["ttt"])
            row["d_metric"] = paired(row["metric"], ref["metric"])
            row["corr"] = [coupling_corr(r) for r in rs]
            out[m.name] = row
            tick(f"knockout {task} {m.name}")
    return out


def cost(cfg: Config, task: str) -> dict[str, Any]:
    """Per-step wall time and allocations of the controller against the plain optimizer."""
    out: dict[str, Any] = {}
    for opt in OPTS:
        plain_m, ae_m = Method(opt, "const", START[opt][0]), ae_method(opt)
        probs = [build(task, 0, cfg.cost_steps + 2) for _ in range(2)]
        opts = [
            _optimizer(m, p.model.parameters()) for m, p in zip((plain_m, ae_m), probs, strict=True)
        ]
        ctrl = AEController(opts[1], AEConfig(seed=0, history=False))
        loss_box: list[Tensor] = [torch.zeros(()), torch.zeros(())]
        steppers = [opts[0].step, functools.partial(_ctrl_step, ctrl, loss_box)]
        fb: list[list[float]] = [[], []]
        st: list[list[float]] = [[], []]
        for t in range(cfg.cost_steps + 2):
            for i in (0, 1) if t % 2 == 0 else (1, 0):  # interleaved, alternating order
                p, o = probs[i], opts[i]
                t0 = time.perf_counter()
                o.zero_grad(set_to_none=True)
                loss = p.loss(t)
                loss.backward()
                if p.normalise:
                    normalise_gradients(p.model)
                loss_box[i] = loss.detach()
                t1 = time.perf_counter()
                steppers[i]()
                t2 = time.perf_counter()
                if t >= 2:  # warm-up steps are not timed
                    fb[i].append(t1 - t0)
                    st[i].append(t2 - t1)
        plain = [a + b for a, b in zip(fb[0], st[0], strict=True)]
        mem = _allocations(probs[0], steppers[0], probs[1], steppers[1], loss_box)
        # best of the timed steps (a loaded machine only adds time) and the medians
        best = 1e3 * (min(st[1]) - min(st[0]))
        med = 1e3 * (statistics.median(st[1]) - statistics.median(st[0]))
        out[opt] = {
            "plain_step_ms": 1e3 * min(plain),
            "optimizer_step_ms": 1e3 * min(st[0]),
            "controller_step_ms": 1e3 * min(st[1]),
            "overhead_ms": best,
            "overhead_pct": 100 * best / (1e3 * min(plain)),
            "median_plain_step_ms": 1e3 * statistics.median(plain),
            "median_overhead_ms": med,
            "median_overhead_pct": 100 * med / (1e3 * statistics.median(plain)),
            **mem,
        }
    return out


def _ctrl_step(ctrl: AEController, box: list[Tensor]) -> None:
    ctrl.step(box[1])


def _allocations(
    p0: Problem, step0: Callable[[], Any], p1: Problem, step1: Callable[[], Any],
    box: list[Tensor],
) -> dict[str, float]:  # fmt: skip
    """Bytes allocated (torch profiler, top-level ops) by one fwd+bwd, one optimizer step
    and one controller step, and the model + grad + optimizer-state bytes."""
    from torch.profiler import ProfilerActivity, profile

    def allocated(fn: Callable[[], Any]) -> float:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
        return float(sum(max(e.cpu_memory_usage, 0) for e in prof.events() if e.cpu_parent is None))

    def fwd_bwd(p: Problem, i: int) -> Callable[[], None]:
        def run() -> None:
            for q in p.model.parameters():
                q.grad = None
            loss = p.loss(0)
            loss.backward()
            if p.normalise:
                normalise_gradients(p.model)
            box[i] = loss.detach()

        return run

    fb = allocated(fwd_bwd(p0, 0))
    opt_b = allocated(step0)
    fwd_bwd(p1, 1)()
    ctrl_b = allocated(step1)
    params = sum(q.numel() * q.element_size() for q in p0.model.parameters())
    return {
        "fwd_bwd_alloc_mb": fb / 2**20,
        "optimizer_alloc_mb": opt_b / 2**20,
        "controller_alloc_mb": ctrl_b / 2**20,
        "extra_alloc_pct_of_step": 100 * (ctrl_b - opt_b) / max(fb + opt_b, 1.0),
        "param_mb": params / 2**20,
    }


# -- verdicts -----------------------------------------------------------------------------------
def _ratio(a: list[float], b: list[float]) -> float:
    ma, mb = _mean(a), _mean(b)
    return ma / mb if math.isfinite(ma) and math.isfinite(mb) and mb > 0 else math.nan


def verdicts(res: dict[str, Any]) -> dict[str, Any]:
    """The goals and the four predictions' verdicts with their intervals."""
    goals, preds = [], []
    for task, tr in res["tasks"].items():
        ev = tr["eval"]
        best = _best(ev)
        for opt in OPTS:
            ae = ev[f"ae-{opt}"]
            ratio = _ratio(ae["ttt"], ev[best]["ttt"])
            goals.append({
                "goal": "AE within 5% of the best tuned baseline's time to target",
                "task": task, "ae": f"ae-{opt}", "baseline": best, "ratio": ratio,
                "diff": paired(ae["ttt"], ev[best]["ttt"]),
                "met": bool(math.isfinite(ratio) and ratio <= 1.05),
            })  # fmt: skip
            corr = [coupling_corr(r) for r in ae["runs"]]
            stat = bootstrap_mean(corr)
            preds.append({
                "prediction": "1 coupling", "task": task, "method": f"ae-{opt}",
                "statistic": "corr(log alpha, log 1/(1-beta)), mean over seeds (bootstrap)",
                **stat, "verdict": _verdict(stat, "below"), "values": corr,
            })  # fmt: skip
            ko = res["knockout"].get(task, {}).get(f"ae-{opt} -coupling")
            if ko:
                stat = bootstrap_mean(ko["corr"])
                preds.append({
                    "prediction": "1 coupling (law knocked out)", "task": task,
                    "method": f"ae-{opt} -coupling", "statistic": "same correlation", **stat,
                    "verdict": _verdict(stat, "below"), "values": ko["corr"],
                })  # fmt: skip
    for task, g in res["gauge"].items():
        for sweep, d in g.items():
            stat = d["off_minus_on"]
            preds.append({
                "prediction": "2 gauge", "task": task, "method": f"ae-sgdm, {sweep} sweep",
                "statistic": "spread of log10 final loss: gauge off - on (paired)", **stat,
                "verdict": _verdict(stat, "above"),
            })  # fmt: skip
    for task, d in res["drift"].items():
        ev = d["eval"]
        best = _best(ev)
        for opt in OPTS:
            ae = ev[f"ae-{opt}"]
            stat = paired(ae["ttt"], ev[best]["ttt"])
            ratio = _ratio(ae["ttt"], ev[best]["ttt"])
            preds.append({
                "prediction": "3 drift", "task": f"{task}:drift", "method": f"ae-{opt}",
                "statistic": f"recovery steps AE - best fixed schedule ({best}), paired",
                **stat, "ratio": ratio, "halved": bool(ratio <= 0.5),
                "verdict": _verdict(stat, "below"),
            })  # fmt: skip
            ko = ev.get(f"ae-{opt} -resonance")
            if ko:
                stat_ko = paired(ko["ttt"], ev[best]["ttt"])
                preds.append({
                    "prediction": "3 drift (resonance knocked out)", "task": f"{task}:drift",
                    "method": f"ae-{opt} -resonance",
                    "statistic": f"recovery steps AE - best fixed schedule ({best}), paired",
                    **stat_ko, "ratio": _ratio(ko["ttt"], ev[best]["ttt"]),
                    "verdict": _verdict(stat_ko, "below"),
                })  # fmt: skip
            goals.append({
                "goal": "AE better than the best tuned baseline on the drift task",
                "task": f"{task}:drift", "ae": f"ae-{opt}", "baseline": best, "ratio": ratio,
                "diff": stat, "met": stat["hi"] < 0,
            })  # fmt: skip
    for task, p in res["plateau"].items():
        for method, d in p.items():
            stat = d["on_minus_off"]
            inc_on, inc_off = sum(d["noise on"]["incidents"]), sum(d["noise off"]["incidents"])
            v = _verdict(stat, "below")
            if v == "yes" and inc_on > inc_off:
                v = "no (more blow-ups)"
            preds.append({
                "prediction": "4 noise", "task": f"{task}:plateau", "method": method,
                "statistic": "escape steps noise on - off (paired)", **stat,
                "incidents_on": inc_on, "incidents_off": inc_off, "verdict": v,
                "sigma_max_ratio": _mean(d["noise on"]["sigma_max_ratio"]),
            })  # fmt: skip
    for task, c in res["cost"].items():
        for opt, d in c.items():
            goals.append({
                "goal": "controller overhead <= 10% of a training step", "task": task,
                "ae": f"ae-{opt}", "overhead_pct": d["overhead_pct"],
                "met": d["overhead_pct"] <= 10,
            })  # fmt: skip
    return {"goals": goals, "predictions": preds}


# -- report -------------------------------------------------------------------------------------
def _fmt(values: list[float], digits: str = ".4g") -> str:
    mean, half = ci95(values)
    bad = sum(not math.isfinite(v) for v in values)
    if not math.isfinite(mean):
        return "n/a"
    text = f"{mean:{digits}}" + (f" ± {half:.2g}" if math.isfinite(half) else "")
    return text + (f" ({bad} nan)" if bad else "")


def _iv(s: dict[str, float]) -> str:
    return f"{s['mean']:.3g} [{s['lo']:.3g}, {s['hi']:.3g}]"


def _eval_table(name: str, block: dict[str, Any], steps: int) -> list[str]:
    ev, tun = block["eval"], block["tuning"]
    best = _best(ev)
    lines = [f"### {name}: target loss EMA {tun['target']:.4g} (budget {steps} steps; "
             f"target from {tun['reference']} at half the budget)", "",
             "| method | lr (momentum) | steps to target | reached | final loss | "
             "held-out metric | incidents |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for k, e in ev.items():
        lr = "untuned start " if k.startswith("ae-") else ""
        mark = " **(best baseline)**" if k == best else ""
        lines.append(
            f"| {k}{mark} | {lr}{e['lr']:.3g} ({e['momentum']:g}) | {_fmt(e['ttt'], '.1f')} | "
            f"{sum(e['reached'])}/{len(e['reached'])} | {_fmt(e['final'])} | "
            f"{_fmt(e['metric'], '.3f')} | {sum(e['incidents'])} |"
        )
    return lines + [""]


def _cost_lines(costs: dict[str, Any]) -> list[str]:
    lines = ["## Cost per step (best of the interleaved steps; median in brackets; "
              "allocations: torch profiler)", "",
              "| task | optimizer | plain step ms | optimizer.step ms | ctrl.step ms | "
              "overhead % of step | alloc MB fwd+bwd / opt / ctrl | params MB |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for task, c in costs.items():
        for opt, d in c.items():
            lines.append(
                f"| {task} | {opt} | {d['plain_step_ms']:.2f} ({d['median_plain_step_ms']:.2f}) | "
                f"{d['optimizer_step_ms']:.3f} | {d['controller_step_ms']:.3f} | "
                f"{d['overhead_pct']:.1f} ({d['median_overhead_pct']:.1f}) | "
                f"{d['fwd_bwd_alloc_mb']:.2f} / {d['optimizer_alloc_mb']:.3f} / "
                f"{d['controller_alloc_mb']:.3f} | {d['param_mb']:.3f} |"
            )
    lines.append("")
    return lines


def markdown(res: dict[str, Any], ver: dict[str, Any], cfg: Config, seconds: float) -> str:
    lines = [f"# ae-study ({cfg.seeds} evaluation seeds, mean ± 95% CI (Student t); "
             f"{seconds / 60:.1f} min, 1 torch thread)", "",
             "Steps to target: first step whose training-loss EMA (rate 0.05) reaches the "
             "target; never: the budget. Drift rows count from the drift.", ""]  # fmt: skip
    lines += ["## Goals", "", "| goal | task | AE | baseline | measured | met |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for g in ver["goals"]:
        if "overhead_pct" in g:
            measured = f"overhead {g['overhead_pct']:.1f}% of a step"
        else:
            measured = f"TTT ratio AE/best {g['ratio']:.2f}; AE - best {_iv(g['diff'])}"
        lines.append(f"| {g['goal']} | {g['task']} | {g['ae']} | {g.get('baseline', '')} | "
                     f"{measured} | {'yes' if g['met'] else 'no'} |")  # fmt: skip
    lines += ["", "## Predictions", "", "| prediction | task | method | statistic | "
              "mean [95% interval] | verdict |", "|---|---|---|---|---|---|"]  # fmt: skip
    for p in ver["predictions"]:
        extra = ""
        if "ratio" in p:
            extra = f"; ratio {p['ratio']:.2f}"
        if "incidents_on" in p:
            extra = (f"; blow-ups on/off {p['incidents_on']}/{p['incidents_off']}; "
                     f"max sigma/sigma0 {p['sigma_max_ratio']:.2g}")  # fmt: skip
        lines.append(f"| {p['prediction']} | {p['task']} | {p['method']} | {p['statistic']} | "
                     f"{_iv(p)}{extra} | {p['verdict']} |")  # fmt: skip
    lines += ["", "## Time to target against tuned baselines", ""]
    for task, block in res["tasks"].items():
        lines += _eval_table(task, block, cfg.budget(task))
    if res["drift"]:
        lines += ["## Drift (prediction 3): recovery steps after the drift", ""]
        for task, block in res["drift"].items():
            lines += _eval_table(f"{task}:drift", block, cfg.budget(task))
    if res["gauge"]:
        lines += ["## Gauge sweeps (prediction 2): spread of log10 final loss per seed", "",
                  "| task | sweep | points (batch, loss scale) | gauge on | gauge off | "
                  "incidents on/off |", "|---|---|---|---|---|---|"]  # fmt: skip
        for task, g in res["gauge"].items():
            for sweep, d in g.items():
                sp, inc = d["spread"], d["incidents"]
                lines.append(
                    f"| {task} | {sweep} | {d['points']} | {_fmt(sp['gauge on'])} | "
                    f"{_fmt(sp['gauge off'])} | {inc['gauge on']}/{inc['gauge off']} |"
                )
        lines.append("")
    if res["plateau"]:
        lines += ["## Plateau (prediction 4): steps until the EMA is 80% of the first loss",
                  "", "| task | AE | noise on | noise off | escaped on/off | blow-ups on/off |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for task, p in res["plateau"].items():
            for method, d in p.items():
                on, off = d["noise on"], d["noise off"]
                lines.append(
                    f"| {task} | {method} | {_fmt(on['escape'], '.1f')} | "
                    f"{_fmt(off['escape'], '.1f')} | {sum(on['escaped'])}/{sum(off['escaped'])} | "
                    f"{sum(on['incidents'])}/{sum(off['incidents'])} |"
                )
        lines.append("")
    if res["knockout"]:
        lines += ["## Knock-outs: one law off, paired against all laws on", "",
                  "| task | variant | steps to target | Δ TTT [95%] | held-out metric | "
                  "Δ metric [95%] | incidents | corr(log α, log 1/(1-β)) |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for task, ko in res["knockout"].items():
            for name, row in ko.items():
                lines.append(
                    f"| {task} | {name} | {_fmt(row['ttt'], '.1f')} | {_iv(row['d_ttt'])} | "
                    f"{_fmt(row['metric'], '.3f')} | {_iv(row['d_metric'])} | "
                    f"{sum(row['incidents'])} | {_fmt(row['corr'], '.2f')} |"
                )
        lines.append("")
    if res["cost"]:
        lines += _cost_lines(res["cost"])
    lines += ["## Tuning (tuning seeds only; TTT to the task's target, inf: diverged)", ""]
    for task, block in list(res["tasks"].items()) + [
        (f"{k}:drift", v) for k, v in res["drift"].items()
    ]:
        tun = block["tuning"]
        chosen = {m.name: m for m in tun["tuned"].values()}
        lines.append(f"- **{task}** (seeds {tun['seeds']}); range test suggestions: "
                     + ", ".join(f"{o} {r['suggested']:.3g}" for o, r in tun["ranges"].items()))  # fmt: skip
        by: dict[str, list[str]] = {}
        for g in tun["grid"]:
            key = g["method"] + (f" m{g['momentum']:g}" if g["method"].startswith("sgdm") else "")
            pick = (
                "*"
                if any(
                    m.name == g["method"] and m.lr == g["lr"] and m.momentum == g["momentum"]
                    for m in chosen.values()
                )
                else ""
            )
            by.setdefault(key, []).append(f"{g['lr']:g}{pick}: {g['ttt']:.0f}")
        for key, vals in by.items():
            lines.append(f"  - {key}: " + ", ".join(vals))
    return "\n".join(lines) + "\n"


# -- figure -------------------------------------------------------------------------------------
def plot(res: dict[str, Any], ver: dict[str, Any], path: Path) -> Path:
    """Six panels: TTT vs the best baseline, coupling, drift, plateau, gauge, cost."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    ax = axes[0, 0]
    tasks = list(res["tasks"]) + [f"{t}:drift" for t in res["drift"]]
    blocks = list(res["tasks"].values()) + list(res["drift"].values())
    for j, block in enumerate(blocks):
        ev = block["eval"]
        base = max(_mean(ev[_best(ev)]["ttt"]), 1.0)
        names = list(ev)
        for i, k in enumerate(names):
            mean, half = ci95(ev[k]["ttt"])
            colour = "tab:red" if k.startswith("ae-") else "tab:gray"
            x = j + (i - len(names) / 2) * 0.08
            ax.errorbar(x, mean / base, yerr=(half if math.isfinite(half) else 0) / base,
                        fmt="o", ms=4, color=colour)  # fmt: skip
            if k.startswith("ae-"):
                ax.annotate(k[3:], (x, mean / base), fontsize=6)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.axhline(1.05, color="k", lw=0.5, ls="--")
    ax.set_xticks(range(len(tasks)), tasks, rotation=20, fontsize=7)
    ax.set_yscale("log")
    ax.set_title("steps to target / best tuned baseline (red: AE; grey: baselines)", fontsize=9)

    ax = axes[0, 1]
    for task, block in res["tasks"].items():
        for opt, marker in (("adam", "."), ("sgdm", "x")):
            r = block["eval"][f"ae-{opt}"]["runs"][0]
            a = np.log(np.asarray(r.alpha))
            b = -np.log1p(-np.asarray(r.beta))
            ax.plot(b - b[0], a - a[0], marker, ms=2, label=f"{task} ae-{opt}")
    ax.set_xlabel("log 1/(1-beta) - start")
    ax.set_ylabel("log alpha - start")
    ax.set_title("prediction 1: coupling (seed 0 trajectories)", fontsize=9)
    ax.legend(fontsize=6)

    ax = axes[0, 2]
    for task, block in res["drift"].items():
        ev = block["eval"]
        best = _best(ev)
        for k, ls in ((best, "-"), ("ae-adam", "--"), ("ae-sgdm", ":")):
            curves = [r.ema for r in ev[k]["runs"]]
            n = min(len(c) for c in curves)
            mean = np.mean([c[:n] for c in curves], 0)
            ax.plot(mean, ls, lw=1, label=f"{task} {k}")
        ax.axhline(block["tuning"]["target"], color="k", lw=0.5)
        ax.axvline(ev[best]["runs"][0].drift_at, color="k", lw=0.5, ls=":")
    ax.set_yscale("log")
    ax.set_title("prediction 3: drift (loss EMA, mean over seeds)", fontsize=9)
    ax.legend(fontsize=6)

    ax = axes[1, 0]
    for task, p in res["plateau"].items():
        for method, d in p.items():
            for name, ls in (("noise on", "-"), ("noise off", "--")):
                curves = d[name]["ema"]
                n = min(len(c) for c in curves)
                ax.plot(np.mean([c[:n] for c in curves], 0), ls, lw=1,
                        label=f"{task} {method} {name}")  # fmt: skip
    ax.set_yscale("log")
    ax.set_title("prediction 4: plateau (loss EMA, mean over seeds)", fontsize=9)
    ax.legend(fontsize=6)

    ax = axes[1, 1]
    labels, on, off = [], [], []
    for task, g in res["gauge"].items():
        for sweep, d in g.items():
            labels.append(f"{task}\n{sweep}")
            on.append(ci95(d["spread"]["gauge on"]))
            off.append(ci95(d["spread"]["gauge off"]))
    x = np.arange(len(labels))
    for dx, vals, name in ((-0.2, on, "AE-SGDm gauge on"), (0.2, off, "gauge off")):
        ax.bar(x + dx, [v[0] for v in vals], 0.4,
               yerr=[v[1] if math.isfinite(v[1]) else 0 for v in vals], label=name)  # fmt: skip
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_title("prediction 2: spread of log10 final loss across the sweep", fontsize=9)
    ax.legend(fontsize=7)

    ax = axes[1, 2]
    labels = [f"{t}\n{o}" for t, c in res["cost"].items() for o in c]
    vals = [d["overhead_pct"] for c in res["cost"].values() for d in c.values()]
    ax.bar(range(len(vals)), vals, color="tab:purple")
    ax.axhline(10, color="k", lw=0.8, ls="--")
    ax.set_xticks(range(len(vals)), labels, fontsize=7)
    ax.set_title("controller overhead, % of a plain training step", fontsize=9)
    fig.suptitle("colony train ae-study: AE-Adam / AE-SGDm (untuned start) vs tuned baselines")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=85)
    plt.close(fig)
    return path


# -- main ---------------------------------------------------------------------------------------
def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Run):
        return None
    if isinstance(obj, Method):
        return asdict(obj) | {"name": obj.name}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items() if k != "runs"}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj


def _write(
    run: RunDir, cfg: Config, rc: Config, res: dict[str, Any], seconds: float, skipped: list[str]
) -> tuple[dict[str, Any], str]:
    """Write table.md, verdicts.json and results.json for what has run so far."""
    ver = verdicts(res)
    md = markdown(res, ver, rc, seconds)
    if skipped:
        md += f"\nSkipped (past --time-limit-min): {', '.join(skipped)}\n"
    (run.path / "table.md").write_text(md)
    payload = {"experiment": EXPERIMENT, "config": asdict(cfg), "resolved": asdict(rc),
               "seconds": seconds, "skipped": skipped, **ver, "run_dir": str(run.path)}  # fmt: skip
    (run.path / "verdicts.json").write_text(json.dumps(_jsonable(payload), indent=2) + "\n")
    full = {**payload, "results": res}
    (run.path / "results.json").write_text(json.dumps(_jsonable(full), default=str) + "\n")
    return payload, md


def _cost_only(run: RunDir, cfg: Config, rc: Config, tick: Callable[[str], None]) -> dict[str, Any]:
    """``--cost-only``: the cost table, each repeat a row, the goal on the median repeat."""
    goals = []
    lines = [f"# ae-study --cost-only ({rc.cost_repeats} repeats x {rc.cost_steps} steps)", ""]
    costs: dict[str, Any] = {}
    for task in [t for t in rc.tasks if t in COST_TASKS]:
        reps = []
        for i in range(rc.cost_repeats):
            reps.append(cost(rc, task))
            costs[f"{task} #{i + 1}"] = reps[-1]
            tick(f"cost {task} repeat {i + 1}")
        for opt in OPTS:
            pcts = [r[opt]["overhead_pct"] for r in reps]
            goals.append({
                "goal": "controller overhead <= 10% of a training step", "task": task,
                "ae": f"ae-{opt}", "overhead_pct": statistics.median(pcts),
                "overhead_pct_repeats": pcts,
                "overhead_ms_repeats": [r[opt]["overhead_ms"] for r in reps],
                "met": statistics.median(pcts) <= 10,
            })  # fmt: skip
    lines += _cost_lines(costs)
    lines += ["", "| task | AE | overhead % per repeat (best-of) | median | met |",
              "|---|---|---|---|---|"]  # fmt: skip
    for g in goals:
        reps_text = ", ".join(f"{p:.1f}" for p in g["overhead_pct_repeats"])
        lines.append(f"| {g['task']} | {g['ae']} | {reps_text} | {g['overhead_pct']:.1f} | "
                     f"{'yes' if g['met'] else 'no'} |")  # fmt: skip
    md = "\n".join(lines) + "\n"
    (run.path / "cost.md").write_text(md)
    payload = {"experiment": EXPERIMENT, "config": asdict(cfg), "goals": goals}
    (run.path / "cost.json").write_text(json.dumps(_jsonable(payload), indent=2) + "\n")
    console.print(md)
    run.close()
    return payload


def main(cfg: Config) -> dict[str, Any]:
    """Run the study; returns the verdicts payload."""
    run_cfg = cfg.resolved()
    with torch_threads(run_cfg.threads):
        return _run(cfg, run_cfg)


def _run(cfg: Config, rc: Config) -> dict[str, Any]:
    run = RunDir(EXPERIMENT, 0, cfg, root=cfg.out, tensorboard=False)
    console.print(f"[bold]ae-study[/] ({', '.join(rc.tasks)}) -> {run.path}")
    res: dict[str, Any] = {k: {} for k in ("tasks", "drift", "gauge", "plateau", "knockout")}
    res["cost"] = {}
    t0 = time.perf_counter()
    count = [0]

    def tick(what: str) -> None:
        count[0] += 1
        console.print(f"[{time.perf_counter() - t0:7.0f} s] {count[0]:4d} {what}", highlight=False)

    def ae_pair() -> dict[str, Method]:
        return {"ae-adam": ae_method("adam"), "ae-sgdm": ae_method("sgdm")}

    if rc.cost_only:
        return _cost_only(run, cfg, rc, tick)
    cheap_first = [t for t in ("moe-digits", "vowels", "nca-digits", "nca-grow") if t in rc.tasks]
    skipped: list[str] = []
    payload: dict[str, Any] = {}
    md = ""
    for task in cheap_first:
        if rc.time_limit_min and time.perf_counter() - t0 > 60 * rc.time_limit_min:
            skipped.append(task)
            console.print(f"[yellow]skipped {task}: past --time-limit-min {rc.time_limit_min}[/]")
            continue
        tun = tune(rc, task, tick)
        ev = evaluate(rc, task, {**tun["tuned"], **ae_pair()}, tun["target"], tick)
        res["tasks"][task] = {"tuning": tun, "eval": ev}
        if rc.predictions and task in ("moe-digits", "vowels"):
            tun_d = tune(rc, f"{task}:drift", tick)
            no_clamp = {f"ae-{o} -resonance": ae_method(o, ("resonance",)) for o in OPTS}
            ev_d = evaluate(rc, f"{task}:drift", {**tun_d["tuned"], **ae_pair(), **no_clamp},
                            tun_d["target"], tick)  # fmt: skip
            res["drift"][task] = {"tuning": tun_d, "eval": ev_d}
            res["plateau"][task] = plateau(rc, task, tick)
            res["gauge"][task] = gauge_sweep(rc, task, tick)
            res["knockout"][task] = knockouts(rc, task, tun["target"], ev, tick)
        if rc.predictions and task in COST_TASKS:
            res["cost"][task] = cost(rc, task)
            tick(f"cost {task}")
        payload, md = _write(run, cfg, rc, res, time.perf_counter() - t0, skipped)
    if skipped:
        payload, md = _write(run, cfg, rc, res, time.perf_counter() - t0, skipped)
    if cfg.plots and res["tasks"]:
        fig = plot(res, payload, run.media / "ae_study.png")
        if cfg.picture:
            Path(cfg.picture).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(fig, cfg.picture)
            console.print(f"figure: [bold]{cfg.picture}[/]")
    console.print(md)
    run.close()
    console.print(f"results: [bold]{run.path / 'table.md'}[/], verdicts.json, results.json")
    return payload


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
