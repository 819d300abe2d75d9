"""Experiment ``jacobs1991``: Table 1 of Jacobs, Jordan, Nowlan & Hinton (1991) on vowels.

"Adaptive mixtures of local experts" (Neural Computation 3:79-87) classifies the
vowels [i] [ɪ] [a] [ʌ] (Peterson & Barney's ``iy ih aa ah``) from their first two
formants F1 and F2, speaker-independently: 50 speakers train, the rest test. A
competitive mixture of linear experts (:class:`~colonylab.collective_ml.mixture1991.CompetitiveMixture`)
with 4 or 8 experts is compared with backprop nets with one hidden layer of 6 or
12 logistic units; each system is trained ``trials`` times from different random
weights until it meets the error criterion on the training set, and Table 1
reports train and test accuracy and the epochs it took. The paper found the same
accuracy for all four systems and the mixtures reaching it in about half the
epochs. A cooperative mixture (``moe-4-coop``, squared error of the blend) is
trained alongside for comparison.

Data (``--data``, loaded by :mod:`colonylab.runs.data.vowels`): ``synthetic``
(default; 76 speakers x 4 vowels x 2 repetitions drawn around Peterson & Barney's
published mean formants, seeded by ``data_seed``) or the path of a CSV exported from
Praat (columns ``Type, Speaker, Vowel, F1, F2`` at least; other vowels are ignored).
Split: speakers sorted by number (men 1-33, women 34-61, children 62-76); the first
``train_speakers`` train, the rest test (``--split random`` shuffles them with
``seed`` first). The default split puts every child in the test set.

Inputs: F1 and F2 standardised with the training set's mean and SD
(``--normalise standardise``, default); ``log`` standardises log-Hz; ``khz``
divides by 1000 (formants in kHz). Targets: one-hot vectors over the 4 classes.

Training: full batch, plain gradient descent (``--optimizer sgd``, ``--momentum 0``)
with one learning rate per family, ``moe_lr`` = 1 and ``bp_lr`` = 10: for each, the
fastest of 0.3, 1, 3, 10 at which all of 5 pilot trials converged on both data sets
(larger rates make the mixtures diverge; the backprop nets, with logistic outputs,
tolerate 10). All trials of a system train at once (their weights stacked and the
model ``vmap``-ed over them). The error criterion is met at the first epoch whose
training accuracy reaches ``criterion`` (default 0.88, the training accuracy the
paper reports for every system); the weights of that epoch give the trial's
"train %" and "test %". Trials that never reach it within ``max_epochs`` are counted
as not converged, with the accuracy of their last epoch. With ``continue_to_max``
(default) training goes on to ``max_epochs`` to report the converged ("final")
accuracies too; the plots show those final weights. Classes: argmax of the blend
(mixtures) or of the output units (backprop nets).

Writes ``table.csv``, ``table.md``, ``results.json``, ``metrics.jsonl`` (the mean
curves) and ``media/jacobs1991.png`` (decision regions over the F1-F2 plane,
training curves, responsibility table), ``media/decision_regions.png``,
``media/curves.png``, ``media/responsibilities.png``.

    colony train jacobs1991                                  # synthetic vowels
    colony train jacobs1991 --data ../shared/data/pb52.csv   # Praat export
    colony train jacobs1991 --trials 5 --max-epochs 1000     # quick look

Rooms: the vowels in :mod:`colonylab.runs.data.vowels`, the backprop net in
:mod:`colonylab.agents.mlp`, the mixture in :mod:`colonylab.collective_ml.mixture1991`,
the specialisation metrics in :mod:`colonylab.emergence.specialization`, the figures in
:mod:`colonylab.emergence.plots_mixture`. This file stays longer than ~500 lines
because Table 1's own protocol lives here: all trials of a system trained at once
under ``vmap`` with a per-trial snapshot at the criterion epoch (:func:`train_trials`),
the table writers and the comparison with the paper's numbers. It writes no
checkpoint and has no ``--resume``: a rerun with the same seed gives the same table.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from colonylab._checks import check_choice, check_dataclass_ints, check_float, option
from colonylab.agents.mlp import BackpropNet
from colonylab.collective_ml.mixture1991 import CompetitiveMixture
from colonylab.emergence.plots_mixture import mixture_figures, plane_grid
from colonylab.emergence.specialization import class_responsibilities, mean_ci, specialisation
from colonylab.runs.common import RunDir, seed_everything
from colonylab.runs.data.vowels import (
    NORMALISATIONS,
    SPLITS,
    VOWEL_LABELS,
    VOWELS,
    Normaliser,
    VowelData,
    load_vowels,
    speaker_split,
)

EXPERIMENT = "jacobs1991"
# Table 1 of the paper, as recalled (not re-checked against the print): percent
# correct on the training and test sets, mean epochs to criterion and their SD.
PAPER_TABLE1 = {
    "moe-4": (88, 90, 1124, 23),
    "moe-8": (88, 90, 1083, 12),
    "bp-6": (88, 90, 2209, 83),
    "bp-12": (88, 90, 2435, 124),
}
OPTIMIZERS = ("sgd", "adam")
_MODEL_RE = re.compile(r"^(moe|bp)-(\d+)(-coop)?$")

console = Console()


@dataclass(frozen=True)
class Config:
    """Jacobs et al. (1991) Table 1: competitive mixtures of experts vs backprop on vowels."""

    data: str = "synthetic"
    """``synthetic`` (drawn from Peterson & Barney's published means) or the path of a
    CSV exported from Praat (columns Type, Speaker, Vowel, F1, F2 at least)."""
    models: tuple[str, ...] = ("moe-4", "moe-8", "bp-6", "bp-12", "moe-4-coop")
    """Systems to train: ``moe-N`` (competitive mixture of N linear experts),
    ``moe-N-coop`` (cooperative objective), ``bp-N`` (backprop net, N hidden units)."""
    trials: int = 25
    """Training runs per system, each from different random weights."""
    max_epochs: int = 3000
    """Cap on full-batch epochs per trial."""
    continue_to_max: bool = True
    """Keep training after the criterion, to ``max_epochs``, to also report the final
    (converged) accuracies; the criterion snapshot is not affected."""
    criterion: float = 0.88
    """Error criterion: a trial stops at the first epoch whose training accuracy is at
    least this."""
    optimizer: str = "sgd"
    """``sgd`` (gradient descent, with ``momentum``) or ``adam``."""
    moe_lr: float = 1.0
    """Learning rate of the mixtures (the fastest of 0.3, 1, 3, 10 at which every pilot
    trial converged, on both data sets)."""
    bp_lr: float = 10.0
    """Learning rate of the backprop nets (chosen the same way as ``moe_lr``)."""
    momentum: float = 0.0
    """Momentum of ``sgd`` (0: plain gradient descent)."""
    sigma: float = 1.0
    """Width of the competitive objective's Gaussians."""
    gate_temperature: float = 1.0
    """Softmax temperature of the gate."""
    bp_activation: str = "sigmoid"
    """Hidden units of the backprop nets: ``sigmoid`` (logistic) or ``tanh``; their
    outputs are logistic, trained on squared error."""
    normalise: str = "standardise"
    """Input scaling, fitted on the training set: ``standardise`` (z-score Hz), ``log``
    (z-score of log Hz) or ``khz`` (Hz / 1000)."""
    split: str = "number"
    """Speaker split: ``number`` (the first ``train_speakers`` by speaker number train)
    or ``random`` (speakers shuffled with ``seed`` first)."""
    train_speakers: int = 50
    """Speakers in the training set; the rest test."""
    data_seed: int = 1991
    """Seed of the synthetic data set."""
    seed: int = 0
    """Seed of the weights (trial ``t`` of a system uses ``seed * 100003 + t``)."""
    curve_every: int = 10
    """Record the training curves every this many epochs."""
    out: str | None = None
    """Run directory root (default runs/out)."""
    plots: bool = True
    """Write the PNG figures."""
    docs_png: str | None = None
    """Also copy the combined figure here (e.g. ``docs/jacobs1991.png``)."""

    def __post_init__(self) -> None:
        check_dataclass_ints(
            self, {"trials": 1, "max_epochs": 1, "train_speakers": 1, "curve_every": 1}
        )
        if not self.models:
            raise ValueError("--models is empty; name at least one, e.g. moe-4 bp-6")
        for name in self.models:
            parse_model(name)
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"--models has duplicates: {list(self.models)}")
        check_float("--criterion (a training accuracy)", self.criterion, 0, 1, low_open=True)
        for name in ("moe_lr", "bp_lr", "sigma", "gate_temperature"):
            check_float(option(name), getattr(self, name), 0, low_open=True)
        check_float("--momentum", self.momentum, 0, 1, high_open=True)
        check_choice("--optimizer", self.optimizer, OPTIMIZERS)
        check_choice("--normalise", self.normalise, NORMALISATIONS)
        check_choice("--split", self.split, SPLITS)
        check_choice("--bp-activation", self.bp_activation, ("sigmoid", "tanh"))


def parse_model(name: str) -> tuple[str, int, str]:
    """``"moe-4"`` -> ``("moe", 4, "competitive")``; ``"moe-4-coop"`` -> cooperative;
    ``"bp-6"`` -> ``("bp", 6, "")``."""
    match = _MODEL_RE.match(name)
    if match is None or int(match.group(2)) < 1 or (match.group(1) == "bp" and match.group(3)):
        raise ValueError(
            f"unknown model {name!r}; use moe-N (competitive mixture of N experts), "
            "moe-N-coop (cooperative) or bp-N (backprop net with N hidden units), N >= 1"
        )
    kind, size = match.group(1), int(match.group(2))
    objective = ("cooperative" if match.group(3) else "competitive") if kind == "moe" else ""
    return kind, size, objective


def display_name(name: str) -> str:
    """Row label of a model in the tables: ``MoE-4``, ``MoE-4 cooperative``, ``BP-6 hidden``."""
    kind, size, objective = parse_model(name)
    if kind == "bp":
        return f"BP {size} hidden"
    return f"MoE-{size}" + (" cooperative" if objective == "cooperative" else "")


# -- models and batched training -------------------------------------------------------------


class _LossAndScores(nn.Module):
    """``(loss, class scores)`` of a model, for ``functional_call`` under ``vmap``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        if isinstance(self.model, CompetitiveMixture):
            out = self.model(x)
            return self.model.loss_from_output(out, targets), out.mixture
        return self.model.loss(x, targets), self.model(x)


def build_model(name: str, cfg: Config, in_dim: int = 2, out_dim: int = 4) -> nn.Module:
    """A fresh model ``name`` (see :func:`parse_model`) with weights from torch's generator."""
    kind, size, objective = parse_model(name)
    if kind == "bp":
        return BackpropNet(in_dim, size, out_dim, cfg.bp_activation)
    return CompetitiveMixture(
        in_dim,
        out_dim,
        size,
        objective=objective,
        sigma=cfg.sigma,
        gate_temperature=cfg.gate_temperature,
    )


@dataclass
class TrialResults:
    """All trials of one system.

    Attributes:
        name: the model (``moe-4``, ...).
        epochs: float64[T], epochs to criterion (NaN where not reached).
        reached: bool[T].
        train_accuracy, test_accuracy: float64[T] at the criterion epoch (or the last).
        final_train_accuracy, final_test_accuracy: float64[T] at ``final_epoch``, where
            training ended (``max_epochs`` with ``continue_to_max``).
        curve_epochs: int64[C], epochs of the curve samples.
        curve_loss, curve_train_accuracy, curve_test_accuracy: float64[T, C].
        params: the stacked weights of every trial at its criterion epoch.
        template: a model of this architecture (weights meaningless) for ``params``.
        seconds: training wall time.
    """

    name: str
    epochs: np.ndarray
    reached: np.ndarray
    train_accuracy: np.ndarray
    test_accuracy: np.ndarray
    curve_epochs: np.ndarray
    curve_loss: np.ndarray
    curve_train_accuracy: np.ndarray
    curve_test_accuracy: np.ndarray
    params: dict[str, Tensor]
    template: nn.Module
    final_train_accuracy: np.ndarray
    final_test_accuracy: np.ndarray
    final_epoch: int
    final_params: dict[str, Tensor]
    seconds: float


def train_trials(
    name: str,
    cfg: Config,
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor,
    y_test: Tensor,
    progress: Progress | None = None,
) -> TrialResults:
    """Train ``cfg.trials`` copies of ``name`` at once, each to the criterion.

    The trials' weights are stacked (``stack_module_state``) and one ``vmap``-ed
    ``functional_call`` evaluates all of them per epoch; the summed loss gives each
    trial its own gradient. A trial's weights are snapshotted the epoch it reaches the
    criterion; training stops when all have, or at ``max_epochs``.
    """
    t0 = time.perf_counter()
    kind = parse_model(name)[0]
    models = []
    for t in range(cfg.trials):
        torch.manual_seed(cfg.seed * 100003 + t)
        models.append(_LossAndScores(build_model(name, cfg)))
    params, buffers = stack_module_state(models)
    template = copy.deepcopy(models[0]).to("meta")
    targets = torch.nn.functional.one_hot(y_train, len(VOWELS)).to(x_train.dtype)
    test_targets = torch.nn.functional.one_hot(y_test, len(VOWELS)).to(x_train.dtype)

    def call(p: dict[str, Tensor], b: dict[str, Tensor], x: Tensor, d: Tensor):
        return functional_call(template, (p, b), (x, d))

    batched = vmap(call, in_dims=(0, 0, None, None))
    leaves = list(params.values())
    lr = cfg.moe_lr if kind == "moe" else cfg.bp_lr
    if cfg.optimizer == "sgd":
        optimizer = torch.optim.SGD(leaves, lr=lr, momentum=cfg.momentum)
    else:
        optimizer = torch.optim.Adam(leaves, lr=lr)

    trials = cfg.trials
    epochs = np.full(trials, np.nan)
    train_acc = np.zeros(trials)
    test_acc = np.zeros(trials)
    final = {k: v.detach().clone() for k, v in params.items()}
    curve_epochs, curve_loss, curve_train, curve_test = [], [], [], []
    task = (
        progress.add_task(display_name(name), total=cfg.max_epochs)
        if progress is not None
        else None
    )
    epoch = 0
    for epoch in range(cfg.max_epochs + 1):
        loss, scores = batched(params, buffers, x_train, targets)  # (T,), (T, N, 4)
        with torch.no_grad():
            accuracy = (scores.argmax(-1) == y_train).double().mean(-1).numpy()
            new = np.isnan(epochs) & (accuracy >= cfg.criterion)
            record = epoch % cfg.curve_every == 0 or epoch == cfg.max_epochs or new.any()
            if record or new.any():
                _, test_scores = batched(params, buffers, x_test, test_targets)
                test_accuracy = (test_scores.argmax(-1) == y_test).double().mean(-1).numpy()
            if new.any():
                index = torch.from_numpy(np.flatnonzero(new))
                for k, v in params.items():
                    final[k][index] = v.detach()[index]
                epochs[new] = epoch
                train_acc[new] = accuracy[new]
                test_acc[new] = test_accuracy[new]
            if epoch % cfg.curve_every == 0:
                curve_epochs.append(epoch)
                curve_loss.append(loss.detach().double().numpy())
                curve_train.append(accuracy)
                curve_test.append(test_accuracy)
        # stop when every trial has reached the criterion or diverged (non-finite loss)
        finite = torch.isfinite(loss.detach()).numpy()
        if epoch == cfg.max_epochs or not finite.any():
            break
        if not cfg.continue_to_max and not (np.isnan(epochs) & finite).any():
            break
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimizer.step()
        if progress is not None and epoch % 50 == 0:
            progress.update(
                task,
                completed=epoch,
                description=f"{display_name(name)} ({int((~np.isnan(epochs)).sum())}/{trials})",
            )
    with torch.no_grad():  # the weights the loop ended with
        _, scores = batched(params, buffers, x_train, targets)
        final_train = (scores.argmax(-1) == y_train).double().mean(-1).numpy()
        _, scores = batched(params, buffers, x_test, test_targets)
        final_test = (scores.argmax(-1) == y_test).double().mean(-1).numpy()
    reached = ~np.isnan(epochs)
    if not reached.all():  # the last epoch's weights and accuracies stand for the rest
        index = torch.from_numpy(np.flatnonzero(~reached))
        for k, v in params.items():
            final[k][index] = v.detach()[index]
        train_acc[~reached] = final_train[~reached]
        test_acc[~reached] = final_test[~reached]
    if progress is not None:
        progress.update(task, completed=cfg.max_epochs)
    return TrialResults(
        name=name,
        epochs=epochs,
        reached=reached,
        train_accuracy=train_acc,
        test_accuracy=test_acc,
        curve_epochs=np.array(curve_epochs, dtype=np.int64),
        curve_loss=np.stack(curve_loss, 1),
        curve_train_accuracy=np.stack(curve_train, 1),
        curve_test_accuracy=np.stack(curve_test, 1),
        params=final,
        template=template,
        final_train_accuracy=final_train,
        final_test_accuracy=final_test,
        final_epoch=epoch,
        final_params={k: v.detach().clone() for k, v in params.items()},
        seconds=time.perf_counter() - t0,
    )


def trial_model(result: TrialResults, trial: int, final: bool = False) -> nn.Module:
    """The trained model of one trial at its criterion epoch (``final``: at the last
    epoch trained), on the CPU."""
    wrapper = copy.deepcopy(result.template).to_empty(device="cpu")
    params = result.final_params if final else result.params
    wrapper.load_state_dict({k: v[trial] for k, v in params.items()}, strict=False)
    return wrapper.model


# -- statistics and tables ------------------------------------------------------------------


def _fmt(mean: float, half: float, scale: float = 1.0, digits: int = 1) -> str:
    if not math.isfinite(mean):
        return "-"
    if not math.isfinite(half):
        return f"{mean * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f} ± {half * scale:.{digits}f}"


def table_rows(results: list[TrialResults]) -> list[dict]:
    """One row per system: accuracies (percent) and epochs to criterion, mean ± 95% CI."""
    rows = []
    for r in results:
        train = mean_ci(r.train_accuracy)
        test = mean_ci(r.test_accuracy)
        epochs = mean_ci(r.epochs)
        paper = PAPER_TABLE1.get(r.name)
        rows.append(
            {
                "model": r.name,
                "system": display_name(r.name),
                "trials": int(r.reached.size),
                "reached": int(r.reached.sum()),
                "train_pct": 100 * train[0],
                "train_pct_ci95": 100 * train[1],
                "test_pct": 100 * test[0],
                "test_pct_ci95": 100 * test[1],
                "epochs": epochs[0],
                "epochs_ci95": epochs[1],
                "epochs_sd": epochs[2],
                "epochs_median": float(np.nanmedian(r.epochs)) if r.reached.any() else math.nan,
                "final_epoch": r.final_epoch,
                "final_train_pct": 100 * mean_ci(r.final_train_accuracy)[0],
                "final_train_pct_ci95": 100 * mean_ci(r.final_train_accuracy)[1],
                "final_test_pct": 100 * mean_ci(r.final_test_accuracy)[0],
                "final_test_pct_ci95": 100 * mean_ci(r.final_test_accuracy)[1],
                "paper_train_pct": paper[0] if paper else math.nan,
                "paper_test_pct": paper[1] if paper else math.nan,
                "paper_epochs": paper[2] if paper else math.nan,
                "paper_epochs_sd": paper[3] if paper else math.nan,
                "seconds": r.seconds,
            }
        )
    return rows


def write_tables(rows: list[dict], directory: Path, title: str) -> None:
    """``table.csv`` (every field) and ``table.md`` (the printed table)."""
    with open(directory / "table.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
            )
    lines = [
        f"# {title}",
        "",
        "| system | reached criterion | train % | test % | epochs to criterion (SD) "
        "| final train % | final test % | paper: train % | test % | epochs (SD) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        paper = (
            f"{row['paper_train_pct']:.0f} | {row['paper_test_pct']:.0f} | "
            f"{row['paper_epochs']:.0f} ({row['paper_epochs_sd']:.0f})"
            if math.isfinite(row["paper_epochs"])
            else "- | - | -"
        )
        lines.append(
            f"| {row['system']} | {row['reached']}/{row['trials']} "
            f"| {_fmt(row['train_pct'], row['train_pct_ci95'])} "
            f"| {_fmt(row['test_pct'], row['test_pct_ci95'])} "
            f"| {_fmt(row['epochs'], row['epochs_ci95'], digits=0)} ({row['epochs_sd']:.0f}) "
            f"| {_fmt(row['final_train_pct'], row['final_train_pct_ci95'])} "
            f"| {_fmt(row['final_test_pct'], row['final_test_pct_ci95'])} "
            f"| {paper} |"
        )
    lines += [
        "",
        "Mean ± 95% t-interval over trials. train/test %: at the criterion epoch; epochs: "
        "over the trials that reached the criterion; final: after the last epoch trained "
        f"({rows[0]['final_epoch']}). Paper: Jacobs et al. (1991) Table 1, as recalled.",
    ]
    (directory / "table.md").write_text("\n".join(lines) + "\n")


def rich_table(rows: list[dict], title: str) -> Table:
    """The table printed at the end of a run (accuracies at criterion and final, epochs)."""
    table = Table(title=title, header_style="bold")
    table.add_column("system")
    for column in ("reached", "train %", "test %", "epochs (SD)", "final test %"):
        table.add_column(column, justify="right")
    table.add_column("paper: train/test %, epochs (SD)", justify="right", style="dim")
    for row in rows:
        paper = (
            f"{row['paper_train_pct']:.0f}/{row['paper_test_pct']:.0f}, "
            f"{row['paper_epochs']:.0f} ({row['paper_epochs_sd']:.0f})"
            if math.isfinite(row["paper_epochs"])
            else "-"
        )
        sd = f" ({row['epochs_sd']:.0f})" if math.isfinite(row["epochs_sd"]) else ""
        table.add_row(
            row["system"],
            f"{row['reached']}/{row['trials']}",
            _fmt(row["train_pct"], row["train_pct_ci95"]),
            _fmt(row["test_pct"], row["test_pct_ci95"]),
            _fmt(row["epochs"], row["epochs_ci95"], digits=0) + sd,
            _fmt(row["final_test_pct"], row["final_test_pct_ci95"]),
            paper,
        )
    return table


# -- plots ------------------------------------------------------------------------------------


def decision_regions(model: nn.Module, name: str, normaliser: Normaliser, formants) -> dict:
    """The arrays :func:`~colonylab.emergence.plots_mixture.plot_regions` draws: the class
    (and, for a mixture, the gate's expert and each expert's class) over the F1-F2 plane."""
    f1, f2, points = plane_grid(formants)
    x = torch.as_tensor(normaliser(points), dtype=torch.float32)
    regions = {"x1": f1, "x2": f2, "title": display_name(name)}
    with torch.no_grad():
        if isinstance(model, CompetitiveMixture):
            regions["gate"] = model.gate_choice(x).numpy().reshape(f1.shape)
            regions["experts"] = model.expert_outputs(x).argmax(-1).numpy()  # (P, E)
            regions["num_experts"] = model.num_experts
            regions["classes"] = model.predict(x).argmax(-1).numpy().reshape(f1.shape)
        else:
            regions["classes"] = model(x).argmax(-1).numpy().reshape(f1.shape)
    return regions


def _responsibilities(model: CompetitiveMixture, x: Tensor, y: Tensor) -> Tensor:
    """Posterior responsibilities ``float[N, E]`` of a mixture on the tokens ``x``."""
    with torch.no_grad():
        return model.responsibilities(x, torch.nn.functional.one_hot(y, len(VOWELS)).to(x.dtype))


def make_plots(
    results: list[TrialResults],
    cfg: Config,
    data: VowelData,
    normaliser: Normaliser,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    x_train: Tensor,
    y_train: Tensor,
    media: Path,
    title: str,
) -> Path:
    """Write the figures (:func:`~colonylab.emergence.plots_mixture.mixture_figures`) for
    the median trial of the first competitive mixture; returns the combined one."""
    mixtures = [r for r in results if parse_model(r.name)[0] == "moe"]
    shown = (
        [r for r in mixtures if parse_model(r.name)[2] == "competitive"] or mixtures or results
    )[0]
    model = trial_model(shown, _typical_trial(shown), final=True)
    bp = next((r for r in results if parse_model(r.name)[0] == "bp"), None)
    side = None
    if bp is not None:
        side_model = trial_model(bp, _typical_trial(bp), final=True)
        side = decision_regions(side_model, bp.name, normaliser, data.formants)
    resp = None
    if isinstance(model, CompetitiveMixture):
        h = _responsibilities(model, x_train, y_train)
        resp = class_responsibilities(h, y_train, len(VOWELS))
    curves = [
        {
            "label": display_name(r.name),
            "epochs": r.curve_epochs,
            "loss": r.curve_loss,
            "train": r.curve_train_accuracy,
            "test": r.curve_test_accuracy,
        }
        for r in results
    ]
    return mixture_figures(
        media,
        regions=decision_regions(model, shown.name, normaliser, data.formants),
        side_regions=side,
        curves=curves,
        responsibilities=resp,
        criterion=cfg.criterion,
        points=data.formants,
        labels=data.labels,
        train_idx=train_idx,
        test_idx=test_idx,
        class_labels=VOWEL_LABELS,
        row_labels=[f"{VOWEL_LABELS[k]} {VOWELS[k]}" for k in range(len(VOWELS))],
        title=f"{title}\ndecision regions and responsibilities of the median trial after "
        f"{shown.final_epoch} epochs (filled: training speakers, open: test speakers)",
    )


def _typical_trial(result: TrialResults) -> int:
    """The trial whose epochs to criterion is the median one (the first, if none reached)."""
    if not result.reached.any():
        return 0
    epochs = np.where(result.reached, result.epochs, np.inf)
    order = np.argsort(epochs, kind="stable")[: int(result.reached.sum())]
    return int(order[len(order) // 2])


# -- the run ------------------------------------------------------------------------------------


def prepare(cfg: Config) -> tuple[VowelData, Normaliser, np.ndarray, np.ndarray]:
    """Tokens, the fitted input scaling and the train/test indices."""
    data = load_vowels(cfg.data, cfg.data_seed)
    train_idx, test_idx = speaker_split(data, cfg.train_speakers, cfg.split, cfg.seed)
    normaliser = Normaliser.fit(data.formants[train_idx], cfg.normalise)
    return data, normaliser, train_idx, test_idx


def main(cfg: Config) -> dict:
    """Train every system ``cfg.trials`` times, print and write Table 1, plot."""
    seed_everything(cfg.seed)
    torch.set_default_dtype(torch.float32)
    data, normaliser, train_idx, test_idx = prepare(cfg)
    run = RunDir(EXPERIMENT, cfg.seed, cfg, root=cfg.out)
    x = torch.as_tensor(normaliser(data.formants), dtype=torch.float32)
    y = torch.as_tensor(data.labels)
    x_train, y_train, x_test, y_test = x[train_idx], y[train_idx], x[test_idx], y[test_idx]
    n_train_speakers = np.unique(data.speakers[train_idx]).size
    n_test_speakers = np.unique(data.speakers[test_idx]).size
    console.print(
        f"[bold]{EXPERIMENT}[/]: {data.source}; {len(train_idx)} training tokens "
        f"({n_train_speakers} speakers), {len(test_idx)} test tokens ({n_test_speakers} "
        f"speakers); {cfg.trials} trials per system, criterion train accuracy ≥ {cfg.criterion}"
    )
    t0 = time.perf_counter()
    results = []
    with Progress(
        TextColumn("[bold]{task.description:>28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        for name in cfg.models:
            results.append(train_trials(name, cfg, x_train, y_train, x_test, y_test, progress))
    elapsed = time.perf_counter() - t0

    rows = table_rows(results)
    source = "synthetic vowels" if cfg.data == "synthetic" else Path(cfg.data).name
    title = f"jacobs1991 Table 1 on {source} ({cfg.trials} trials, criterion {cfg.criterion:.2f})"
    write_tables(rows, run.path, title)
    summary: dict = {"rows": rows, "seconds": elapsed, "source": data.source}
    for r in results:
        step = int(r.curve_epochs[-1])
        for j, epoch in enumerate(r.curve_epochs):
            run.log(
                int(epoch),
                {
                    f"losses/{r.name}": float(r.curve_loss[:, j].mean()),
                    f"charts/{r.name}/train_accuracy": float(r.curve_train_accuracy[:, j].mean()),
                    f"charts/{r.name}/test_accuracy": float(r.curve_test_accuracy[:, j].mean()),
                },
            )
        if parse_model(r.name)[0] == "moe":
            spec = [
                specialisation(
                    _responsibilities(trial_model(r, t, final=True), x_train, y_train),
                    y_train,
                    len(VOWELS),
                )
                for t in range(cfg.trials)
            ]
            stats = {
                k: float(np.mean([s[k] for s in spec]))
                for k in ("max_responsibility", "experts_winning_a_class")
            }
            model = trial_model(r, _typical_trial(r), final=True)
            summary[f"{r.name}/responsibilities"] = class_responsibilities(
                _responsibilities(model, x_train, y_train), y_train, len(VOWELS)
            ).tolist()
            summary[f"{r.name}/specialisation"] = stats
            run.log(step, {f"emergence/{r.name}/{k}": v for k, v in stats.items()})
    for r in results:
        run.log(
            r.final_epoch,
            {
                f"charts/{r.name}/final_test_accuracy": float(r.final_test_accuracy.mean()),
                f"charts/{r.name}/test_accuracy_at_criterion": float(r.test_accuracy.mean()),
                f"charts/{r.name}/epochs_to_criterion": float(np.nanmean(r.epochs))
                if r.reached.any()
                else math.nan,
            },
        )
    (run.path / "results.json").write_text(json.dumps(_finite(summary), indent=2) + "\n")
    figure = None
    if cfg.plots:
        figure = make_plots(
            results, cfg, data, normaliser, train_idx, test_idx, x_train, y_train, run.media, title
        )
        if cfg.docs_png:
            target = Path(cfg.docs_png)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(figure.read_bytes())
    run.close()

    console.print(rich_table(rows, title))
    for r in results:
        if parse_model(r.name)[0] == "moe":
            s = summary[f"{r.name}/specialisation"]
            console.print(
                f"{display_name(r.name)}: mean max responsibility {s['max_responsibility']:.2f}, "
                f"{s['experts_winning_a_class']:.1f} experts win a class (mean over trials, "
                "final weights)"
            )
    console.print(_comparison(rows))
    console.print(f"{elapsed:.1f} s of training; run: [bold]{run.path}[/]")
    summary["path"] = str(run.path)
    summary["results"] = results
    return summary


def _comparison(rows: list[dict]) -> str:
    """One honest sentence on the paper's claim: mixtures reach the criterion in about
    half the epochs of backprop at the same accuracy."""
    by = {r["model"]: r for r in rows}
    moe = [by[m] for m in ("moe-4", "moe-8") if m in by and by[m]["reached"]]
    bp = [by[m] for m in ("bp-6", "bp-12") if m in by and by[m]["reached"]]
    if not moe or not bp:
        return "(the comparison needs moe-4/moe-8 and bp-6/bp-12 with trials that converged)"
    ratio = np.mean([r["epochs"] for r in moe]) / np.mean([r["epochs"] for r in bp])
    test_gap = np.mean([r["test_pct"] for r in moe]) - np.mean([r["test_pct"] for r in bp])
    final_gap = np.mean([r["final_test_pct"] for r in moe]) - np.mean(
        [r["final_test_pct"] for r in bp]
    )
    return (
        f"mixtures need {ratio:.2f}x the epochs of the backprop nets (paper: ~0.47x) with "
        f"{test_gap:+.1f} points of test accuracy at the criterion (paper: +0) and "
        f"{final_gap:+.1f} after epoch {rows[0]['final_epoch']}"
    )


def _finite(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
