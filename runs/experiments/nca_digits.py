"""Experiment ``nca-digits``: self-classifying digits (Randazzo, Mordvintsev, Niklasson,
Levin & Greydanus 2020, "Self-classifying MNIST Digits").

Every pixel of a digit is a cell running the same small neural CA. A cell sees only
its 3x3 neighbourhood, yet after some steps every live cell should hold the digit's
class in its last 10 channels, and the cells should agree.

=================  ================================================================
State              ``(B, H, W, C)`` channels last; channel 0 the input pixel
                   intensity (frozen: the rule never changes it), channels
                   ``1..C-11`` hidden, the last 10 the class logits
Alive              fixed: the pixels with intensity > ``alive_threshold``; dead
                   cells stay zero (``NCA.step(x, alive=...)``)
Vote               a live cell votes for the argmax of its logits; the image's
                   class is the majority of its votes
Data               scikit-learn's bundled 8x8 digits (1,797 images, 0..16),
                   upscaled ``scale`` times (bilinear) and padded by ``border``
                   empty cells, split by a seeded stratified draw into training
                   and a held-out ``test_share`` never trained on; or MNIST from
                   IDX files (``--mnist DIR``: its official 10k test set is held out)
Loss               L2 between each live cell's logits and the one-hot label,
                   averaged over the live cells of a digit, then over the batch
                   (the paper's final choice: cross-entropy lets logits grow
                   without bound and the votes drift after long runs)
Training           a sample pool (``pool_size`` states): each batch is drawn from
                   it, ``fresh_share`` of it restarted on new digits, ``swap_share``
                   switched to a digit of another class mid-run (the cells must
                   re-agree), ``steps_min..steps_max`` CA steps, per-parameter
                   gradient normalisation, Adam; the states go back to the pool
=================  ================================================================

Every ``eval_every`` iterations the held-out metrics after ``eval_steps`` (200)
steps from fresh states are logged (``emergence/accuracy``, ``emergence/agreement``;
only logged, never used to pick a checkpoint). The digits come from
:mod:`colonylab.runs.data.digits`, the loop is
:class:`~colonylab.collective_ml.trainers.gradient.GradientTrainer`, the figure is
drawn by :mod:`colonylab.emergence.plots_nca`.

Writes ``checkpoints/latest.pt`` every ``checkpoint_every`` iterations, at the end
and on Ctrl-C (model, Adam and LR-schedule state, the pool and its labels, the
iteration, every generator, the history), ``checkpoints/nca_digits.pt`` at the end
(the rule, its data split and the command that reproduces it) and
``media/training.png`` (curves, digits coloured by their votes, a swap).
``--resume RUN_DIR`` continues a stopped run bit-identically (same device and threads).

    colony train nca-digits --threads 1            # the shipped checkpoint, ~10 min on 2 cores
    colony train nca-digits --mnist ~/data/mnist --iterations 20000
    colony train nca-digits --resume runs/out/nca-digits/20260101-120000-s0
    colony eval nca-digits --json eval.json        # the shipped checkpoint
    colony watch nca-digits                        # keys 1-9: swap to that class

Length: this file is over ~500 lines because what is left is this experiment's own: a
Config of 33 documented options (data, architecture, pool, schedule, evaluation), the
task's loss and its held-out measurement (accuracy, agreement, stability,
re-agreement after a swap), the trainer wiring with resume, the training figure's
frames and the ``colony eval`` / ``colony watch`` entry points (the viewer's keys and
clicks). Data, states, model, loop, metrics and plotting live in their rooms.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import Progress

from colonylab._checks import (
    check_choice,
    check_dataclass_ints,
    check_float,
    check_int,
    check_optional_int,
    check_probability,
    option,
)
from colonylab.agents import build
from colonylab.agents.nca import NCA, NCAConfig
from colonylab.collective_ml.trainers.gradient import (
    GradientTrainer,
    adam_with_decay,
    normalise_gradients,
)
from colonylab.emergence.nca import classification_run, majority_vote, pixel_agreement, reagreement
from colonylab.emergence.plots_nca import digits_figure, votes_rgb
from colonylab.envs.ca.nca_canvas import CanvasConfig, NCACanvas, disc_mask
from colonylab.runs.common import RunDir, resolve_device, seed_everything
from colonylab.runs.common.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    make_checkpoint,
    provenance,
    reproduce_command,
    rng_states,
    save_checkpoint,
    set_rng_states,
)
from colonylab.runs.common.progress import progress_bar
from colonylab.runs.common.stages import load_model
from colonylab.runs.common.tables import metrics_table
from colonylab.runs.data.digits import (
    CLASSES,
    MNIST_FILES,
    Digits,
    alive_of,
    eval_subset,
    fresh_states,
    load_digits,
    mnist_file,
    swap_digits,
)

EXPERIMENT = "nca-digits"
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
SHIPPED = "nca_digits.pt"
LOSSES = ("l2", "ce")
METRICS = ("accuracy", "agreement", "stability", "reagreement")

console = Console()


@dataclass(frozen=True)
class Config:
    """Train a neural CA whose cells agree on which digit they form."""

    mnist: str | None = None
    """Folder with MNIST's IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte,
    t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte); None: scikit-learn's 8x8 digits."""
    scale: int = 2
    """Upscaling factor of the 8x8 scikit-learn digits (bilinear; MNIST is used as it is)."""
    border: int = 2
    """Empty cells around each upscaled scikit-learn digit."""
    test_share: float = 0.2
    """Share of the scikit-learn digits held out (stratified by class), never trained on."""
    split_seed: int = 0
    """Seed of the held-out split (fixed apart from ``seed``, so every run holds out the same
    digits)."""
    classes: tuple[int, ...] = ()
    """Train on these digit classes only (empty: all ten); the logits stay 10 wide."""
    train_digits: int | None = None
    """Use only the first N training digits (None: all)."""
    channels: int = 20
    """State channels per cell: the input pixel, hidden channels, 10 class logits."""
    hidden: int = 64
    """Hidden width of the update rule."""
    perception: str = "sobel"
    """``sobel`` (fixed identity + Sobel x/y) or ``learned`` (3x3 conv)."""
    fire_rate: float = 0.5
    """Chance that a cell updates in a step."""
    init_std: float = 0.02
    """Std of the rule's random initial last layer (0: zeros, a rule that does nothing at
    first, as in nca-grow; a small random start lets the hidden channels carry messages
    from the first iteration, without which training stalls at the class prior)."""
    alive_threshold: float = 0.1
    """Pixels brighter than this (intensity in [0, 1]) are live cells."""
    loss: str = "l2"
    """``l2`` (logits vs one-hot, the paper's final choice) or ``ce`` (cross-entropy)."""
    batch: int = 16
    """States per iteration."""
    pool_size: int = 512
    """States in the sample pool."""
    fresh_share: float = 0.25
    """Share of each batch restarted on new training digits."""
    swap_share: float = 0.125
    """Share of each batch whose digit is swapped for one of another class (cells keep
    their state where both digits have ink)."""
    iterations: int = 3000
    """Optimiser steps."""
    steps_min: int = 20
    """Fewest CA steps per iteration."""
    steps_max: int = 40
    """Most CA steps per iteration."""
    lr: float = 2e-3
    """Adam learning rate."""
    lr_decay_at: int = 2000
    """Iteration after which the learning rate is multiplied by ``lr_decay`` (0: never)."""
    lr_decay: float = 0.3
    """Learning-rate factor after ``lr_decay_at``."""
    eval_every: int = 250
    """Log held-out accuracy and agreement every this many iterations (0: only at the end)."""
    eval_digits: int | None = None
    """Held-out digits measured (the first N of a seeded shuffle; None: all). Training logs
    use at most 120 unless this is set."""
    eval_steps: int = 200
    """CA steps before accuracy and agreement are measured."""
    swap_at: int = 100
    """Re-agreement test: the step at which each digit is swapped for one of another class
    (also where the stability window starts)."""
    checkpoint_every: int = 500
    """Save a checkpoint every this many iterations (and at the end)."""
    seed: int = 0
    """Seed of the weights, the pool, the swaps and the fire masks."""
    device: str = "auto"
    """``auto``, ``cpu``, ``cuda``, ..."""
    threads: int | None = None
    """Torch CPU threads (None: torch's default)."""
    out: str | None = None
    """Run directory root (default runs/out)."""
    plots: bool = True
    """Write media/training.png."""

    def __post_init__(self) -> None:
        check_dataclass_ints(
            self,
            {"scale": 1, "batch": 1, "pool_size": self.batch, "iterations": 1, "steps_min": 1},
        )
        check_dataclass_ints(self, {"steps_max": self.steps_min, "eval_steps": 1})
        check_dataclass_ints(
            self,
            {"border": 0, "eval_every": 0, "checkpoint_every": 0, "lr_decay_at": 0, "swap_at": 0},
        )
        check_choice("--loss", self.loss, LOSSES)
        check_float("--test-share", self.test_share, 0, 1, low_open=True, high_open=True)
        check_probability("--fresh-share", self.fresh_share)
        check_probability("--swap-share", self.swap_share)
        if self.fresh_share + self.swap_share > 1.0:
            raise ValueError(
                f"--fresh-share + --swap-share must be <= 1, got {self.fresh_share} + "
                f"{self.swap_share}"
            )
        if self.swap_at > self.eval_steps:
            raise ValueError(
                f"--swap-at ({self.swap_at}) must be <= --eval-steps ({self.eval_steps})"
            )
        for c in self.classes:
            check_int("--classes (digits)", c, 0, CLASSES - 1)
        if len(set(self.classes)) == 1:
            raise ValueError(
                f"--classes must name at least two digits (or none: all ten), got {self.classes}"
            )
        for name in ("train_digits", "eval_digits", "threads"):
            check_optional_int(option(name), getattr(self, name), 1)
        check_float("--lr", self.lr, 0, low_open=True)
        check_float("--init-std", self.init_std, 0, 1, high_open=True)
        check_float("--alive-threshold", self.alive_threshold, 0, 1, high_open=True)
        check_dataclass_ints(self, {"channels": CLASSES + 2})  # pixel, >= 1 hidden, logits
        self.nca_config()  # architecture checks with their own messages
        if self.mnist is not None:
            folder = Path(self.mnist).expanduser()
            if not folder.is_dir():
                raise ValueError(f"--mnist folder {self.mnist!r} does not exist")
            try:
                for stem in MNIST_FILES.values():
                    mnist_file(folder, stem)
            except FileNotFoundError as exc:
                raise ValueError(str(exc)) from None

    def nca_config(self) -> NCAConfig:
        """The rule's architecture: channel 0 frozen and marking life."""
        return NCAConfig(
            channels=self.channels,
            hidden=self.hidden,
            perception=self.perception,
            fire_rate=self.fire_rate,
            alive_threshold=self.alive_threshold,
            alive_channel=0,
            frozen_channels=1,
        )


def data_spec(cfg: Config) -> dict[str, Any]:
    """What :func:`~colonylab.runs.data.digits.load_digits` needs (saved in checkpoints,
    so eval holds out the same digits)."""
    return {
        "mnist": cfg.mnist,
        "scale": cfg.scale,
        "border": cfg.border,
        "test_share": cfg.test_share,
        "split_seed": cfg.split_seed,
    }


# -- loss and measuring ----------------------------------------------------------------------
def digits_loss(
    x: torch.Tensor, labels: torch.Tensor, threshold: float = 0.1, kind: str = "l2"
) -> torch.Tensor:
    """Per-digit loss ``(B,)``: ``l2`` between each live cell's logits (the last 10
    channels) and the one-hot label, or ``ce`` (cross-entropy of their softmax), averaged
    over the live cells of each digit."""
    alive = alive_of(x, threshold).float()  # (B, H, W)
    logits = x[..., -CLASSES:]
    if kind == "ce":
        target = labels[:, None, None].expand(logits.shape[:3])
        err = F.cross_entropy(logits.permute(0, 3, 1, 2), target, reduction="none")
    else:
        onehot = F.one_hot(labels, CLASSES).float()[:, None, None, :]  # (B, 1, 1, K)
        err = (logits - onehot).square().sum(dim=-1)  # (B, H, W)
    return (err * alive).sum(dim=(1, 2)) / alive.sum(dim=(1, 2)).clamp(min=1.0)


def make_step(model: NCA, generator: torch.Generator | None = None):
    """One CA step on digit states, life fixed by the (frozen) input pixel."""
    threshold = model.config.alive_threshold

    def step(x: torch.Tensor) -> torch.Tensor:
        return model.step(x, alive=alive_of(x, threshold), generator=generator)

    return step


def swap_partners(labels: torch.Tensor, seed: int) -> torch.Tensor:
    """For each digit, the index of another digit of a different class (seeded)."""
    rng = np.random.default_rng(seed)
    lab = labels.cpu().numpy()
    partners = np.empty(len(lab), dtype=np.int64)
    for i, c in enumerate(lab):
        others = np.flatnonzero(lab != c)
        if len(others) == 0:
            raise ValueError("the re-agreement test needs digits of at least two classes")
        partners[i] = rng.choice(others)
    return torch.from_numpy(partners)


@torch.no_grad()
def measure_digits(
    model: NCA,
    images: torch.Tensor,
    labels: torch.Tensor,
    steps: int = 200,
    swap_at: int = 100,
    seed: int = 0,
    chunk: int = 256,
) -> dict[str, Any]:
    """Held-out metrics from fresh states: ``accuracy`` and ``agreement`` after ``steps``,
    ``stability`` (majority unchanged over steps ``swap_at..steps``), ``reagreement``
    (each digit swapped at ``swap_at`` for one of another class: accuracy on the new
    labels at ``steps``), ``accuracy_curve`` (after every step)."""
    threshold = model.config.alive_threshold
    c = model.config.channels
    partners = swap_partners(labels, seed)
    generator = torch.Generator(device=images.device).manual_seed(seed)
    step = make_step(model, generator)
    n = len(labels)
    totals = dict.fromkeys(METRICS, 0.0)
    curve = np.zeros(steps + 1)
    for lo in range(0, n, chunk):
        sl = slice(lo, min(n, lo + chunk))
        x = fresh_states(images[sl], c, threshold)
        run = classification_run(
            step, x, alive_of(x, threshold), labels[sl], steps, swap_at, CLASSES
        )
        new = images[partners[sl]]
        again = reagreement(
            step,
            fresh_states(images[sl], c, threshold),
            lambda s, new=new: swap_digits(s, new, threshold),
            labels[partners[sl]],
            swap_at,
            steps,
            CLASSES,
        )
        k = sl.stop - sl.start
        totals["accuracy"] += run.accuracy * k
        totals["agreement"] += run.agreement * k
        totals["stability"] += run.stability * k
        totals["reagreement"] += again * k
        curve += np.asarray(run.accuracy_curve) * k
    out: dict[str, Any] = {key: value / n for key, value in totals.items()}
    out["accuracy_curve"] = (curve / n).tolist()
    return out


# -- training --------------------------------------------------------------------------------
def restrict(digits: Digits, cfg: Config) -> tuple[torch.Tensor, torch.Tensor]:
    """The training digits ``cfg`` asks for (``classes``, ``train_digits``)."""
    images, labels = digits.train_images, digits.train_labels
    if cfg.classes:
        keep = torch.isin(labels, torch.tensor(cfg.classes))
        images, labels = images[keep], labels[keep]
    if cfg.train_digits is not None:
        images, labels = images[: cfg.train_digits], labels[: cfg.train_digits]
    if len(torch.unique(labels)) < 2:
        raise ValueError(
            f"training needs digits of at least two classes; got {len(labels)} digit(s) of "
            f"classes {torch.unique(labels).tolist()} (raise --train-digits)"
        )
    return images, labels


@dataclass
class TrainResult:
    """What :func:`train` returns (``evals``: ``(iteration, {accuracy, ...})``)."""

    model: NCA
    digits: Digits
    losses: list[float]
    evals: list[tuple[int, dict[str, float]]]
    seconds: float
    run: RunDir | None


def checkpoint_of(cfg: Config, model: NCA, **parts: Any) -> dict:
    """The one-format checkpoint of a rule (``parts``: ``trainer``, ``rng``, metrics)."""
    metrics = parts.pop("metrics", None)
    command = reproduce_command(f"train {EXPERIMENT}", cfg)
    return make_checkpoint(
        EXPERIMENT,
        spec={"type": "nca", **asdict(model.config)},
        state_dict=model.state_dict(),
        config=cfg,
        provenance=provenance(command, seed=cfg.seed, metrics=metrics),
        extra={"data": data_spec(cfg)},
        **parts,
    )


def train(
    cfg: Config,
    run: RunDir | None = None,
    progress: Progress | None = None,
    digits: Digits | None = None,
    resume: dict[str, Any] | None = None,
) -> TrainResult:
    """Train a rule; with ``run``, log and write ``checkpoints/latest.pt``; ``resume``: a
    checkpoint of this config's run to continue from."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    digits = digits if digits is not None else load_digits(data_spec(cfg))
    train_images, train_labels = (t.to(device) for t in restrict(digits, cfg))
    eval_images, eval_labels = eval_subset(
        digits, cfg.eval_digits if cfg.eval_digits is not None else 120, cfg.seed, cfg.classes
    )
    eval_images, eval_labels = eval_images.to(device), eval_labels.to(device)
    threshold, c = cfg.alive_threshold, cfg.channels
    n_train = len(train_labels)
    by_class = {int(k): torch.nonzero(train_labels == k).squeeze(1) for k in train_labels.unique()}

    model = NCA(cfg.nca_config()).to(device)
    if cfg.init_std:
        with torch.no_grad():
            model.w2.normal_(0.0, cfg.init_std, generator=generator)
    optimizer, scheduler = adam_with_decay(
        model.parameters(), cfg.lr, cfg.lr_decay_at, cfg.lr_decay
    )
    step = make_step(model, generator)

    def draw(k: int) -> torch.Tensor:
        return torch.as_tensor(rng.integers(0, n_train, k), device=device)

    def other_class(labels: torch.Tensor) -> torch.Tensor:
        picks = []
        for label in labels.tolist():
            choices = [k for k in by_class if k != label]
            pool_k = by_class[int(rng.choice(choices))]
            picks.append(pool_k[int(rng.integers(len(pool_k)))])
        return torch.stack(picks)

    pool_idx = draw(cfg.pool_size)
    pool = fresh_states(train_images[pool_idx], c, threshold)
    pool_labels = train_labels[pool_idx]
    n_fresh = round(cfg.batch * cfg.fresh_share)
    n_swap = round(cfg.batch * cfg.swap_share)
    batch: dict[str, Any] = {}

    def loss_fn(it: int) -> tuple[torch.Tensor, dict[str, float]]:
        idx = torch.as_tensor(rng.choice(cfg.pool_size, cfg.batch, replace=False), device=device)
        x, labels = pool[idx], pool_labels[idx]
        if n_fresh:
            new = draw(n_fresh)
            x[:n_fresh] = fresh_states(train_images[new], c, threshold)
            labels[:n_fresh] = train_labels[new]
        if n_swap:
            part = slice(n_fresh, n_fresh + n_swap)
            new = other_class(labels[part])
            x[part], _ = swap_digits(x[part], train_images[new], threshold)
            labels[part] = train_labels[new]
        for _ in range(int(rng.integers(cfg.steps_min, cfg.steps_max + 1))):
            x = step(x)
        batch.update(idx=idx, x=x, labels=labels)
        return digits_loss(x, labels, threshold, cfg.loss).mean(), {}

    def after_step(it: int) -> None:
        pool[batch["idx"]] = batch["x"].detach()
        pool_labels[batch["idx"]] = batch["labels"]
        batch.clear()

    def evaluate(it: int) -> dict[str, float]:
        model.eval()
        result = measure_digits(
            model, eval_images, eval_labels, cfg.eval_steps, cfg.swap_at, cfg.seed
        )
        model.train()
        return {f"emergence/{key}": result[key] for key in METRICS}

    def save(trainer: GradientTrainer) -> Path | None:
        if run is None:
            return None
        ckpt = checkpoint_of(cfg, model, trainer=trainer.state_dict(), rng=rng_states())
        return save_checkpoint(run.checkpoints / "latest.pt", ckpt)

    task = progress.add_task("nca-digits", total=cfg.iterations, rate="") if progress else None

    def log(it: int, scalars: dict[str, float]) -> None:
        if run is not None:
            run.log(it, scalars)
        if progress is not None and task is not None:
            text = f"loss {scalars['losses/loss']:.4f}"
            if "emergence/accuracy" in scalars:
                log.last = f"  acc {scalars['emergence/accuracy']:.3f} (it {it})"
            progress.update(task, completed=it, rate=text + log.last)

    log.last = ""
    trainer = GradientTrainer(
        model,
        optimizer,
        loss_fn,
        scheduler=scheduler,
        grad_transform=normalise_gradients,
        after_step=after_step,
        evaluate=evaluate,
        evaluate_every=cfg.eval_every,
        log=log,
        save=save,
        checkpoint_every=cfg.checkpoint_every,
        generators={"numpy": rng, "torch": generator},
        buffers={"pool": pool, "pool_labels": pool_labels},
        echo=console.print,
    )
    if resume is not None:
        model.load_state_dict(resume["state_dict"])
        trainer.load_state_dict(resume["trainer"])  # optimizer, schedule, pool, generators
        set_rng_states(resume["rng"])
    start = time.perf_counter()
    history = trainer.fit(cfg.iterations)
    evals = [
        (i + 1, {key: h[f"emergence/{key}"] for key in METRICS})
        for i, h in enumerate(history)
        if "emergence/accuracy" in h
    ]
    losses = [h["losses/loss"] for h in history]
    return TrainResult(model, digits, losses, evals, time.perf_counter() - start, run)


# -- pictures --------------------------------------------------------------------------------
@torch.no_grad()
def plot_training(result: TrainResult, cfg: Config, path: Path) -> Path:
    """Loss and held-out curves, ten held-out digits coloured by their votes after
    ``eval_steps`` steps, and one digit swapped at ``swap_at``."""
    model, digits = result.model, result.digits
    device = next(model.parameters()).device
    threshold, c = cfg.alive_threshold, cfg.channels
    step = make_step(model, torch.Generator(device=device).manual_seed(cfg.seed))
    picks = []
    for k in range(CLASSES):
        hits = torch.nonzero(digits.test_labels == k).squeeze(1)
        if len(hits):
            picks.append(int(hits[0]))
    images = digits.test_images[picks].to(device)
    labels = digits.test_labels[picks]
    x = fresh_states(images, c, threshold)
    for _ in range(cfg.eval_steps):
        x = step(x)
    majority = majority_vote(x[..., -CLASSES:], alive_of(x, threshold)).cpu()
    shown_digits = [
        (votes_rgb(x[i], threshold), int(labels[i]), int(majority[i])) for i in range(len(picks))
    ]
    # one digit, swapped for another class at swap_at
    second = images[-1:] if len(picks) > 1 else images[:1]
    shown = [1, 10, 30, cfg.swap_at, cfg.swap_at + 1, cfg.swap_at + 10, cfg.swap_at + 30]
    shown = sorted({t for t in shown if t <= cfg.eval_steps} | {cfg.eval_steps})[:10]
    swap = []
    x = fresh_states(images[:1], c, threshold)
    for t in range(1, cfg.eval_steps + 1):
        if t == cfg.swap_at + 1:
            x, _ = swap_digits(x, second, threshold)
        x = step(x)
        if t in shown:
            agree = pixel_agreement(x[..., -CLASSES:], alive_of(x, threshold))
            swap.append((t, votes_rgb(x[0], threshold), agree))
    return digits_figure(
        path,
        result.losses,
        result.evals,
        shown_digits,
        swap,
        eval_steps=cfg.eval_steps,
        swap_at=cfg.swap_at,
    )


# -- entry points ----------------------------------------------------------------------------
def main(cfg: Config, resume: str | None = None) -> TrainResult:
    """Train (or continue the run in ``resume``), log, save the checkpoints and the
    picture, print the held-out table."""
    ckpt = load_checkpoint(latest_checkpoint(resume), EXPERIMENT) if resume else None
    run = RunDir(EXPERIMENT, cfg.seed, cfg, root=cfg.out, resume=resume)
    if ckpt is not None:
        run.truncate_metrics(int(ckpt["trainer"]["iteration"]))
    console.print(f"[bold]nca-digits[/] -> {run.path}")
    try:
        with progress_bar(console) as progress:
            result = train(cfg, run, progress, resume=ckpt)
    finally:
        run.close()
    _, final = result.evals[-1]
    save_checkpoint(run.checkpoints / SHIPPED, checkpoint_of(cfg, result.model, metrics=final))
    if cfg.plots:
        plot_training(result, cfg, run.media / "training.png")
    table = metrics_table(
        f"nca-digits: held-out, step {cfg.eval_steps}",
        {key: final[key] for key in METRICS},
        caption=f"{cfg.iterations} iterations, {result.seconds:.0f} s",
    )
    console.print(table)
    console.print(f"checkpoint: {run.checkpoints / SHIPPED}")
    return result


def load_rule(checkpoint: str | None, mnist: str | None = None):
    """``(model, checkpoint, digits, path)`` from an ``nca-digits`` checkpoint (None: the
    shipped one), with the digits it held out (``mnist``: MNIST's instead).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an ``nca-digits`` checkpoint, not a digits rule, or no record of
            its data split (one line naming the path).
    """
    path = Path(checkpoint) if checkpoint else SHIPPED_DIR / SHIPPED
    model, ckpt = load_model(path, EXPERIMENT, build)
    mc = model.config
    if mc.frozen_channels != 1 or mc.channels < CLASSES + 2:
        raise ValueError(
            f"{str(path)!r} is not a digits rule (needs the input pixel frozen and "
            f">= {CLASSES + 2} channels, got {mc})"
        )
    spec = ckpt["extra"].get("data")
    needed = {"scale", "border", "test_share", "split_seed"}
    if not isinstance(spec, dict) or not needed <= set(spec):
        raise ValueError(f"{str(path)!r} does not say which digits it held out (no 'data')")
    if mnist:
        spec = {**spec, "mnist": mnist}
    return model, ckpt, load_digits(spec), path


def evaluate(cfg: Config, checkpoint: str | None = None) -> dict[str, Any]:
    """``colony eval nca-digits``: on the held-out digits the checkpoint never saw (its own
    split; ``--mnist DIR``: MNIST's test set), from fresh states: ``accuracy`` and
    ``agreement`` after ``eval_steps``, ``stability`` (majority unchanged from ``swap_at``
    to ``eval_steps``), ``reagreement`` (digit swapped at ``swap_at`` for one of another
    class, accuracy on the new label at ``eval_steps``)."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    model, ckpt, digits, path = load_rule(checkpoint, cfg.mnist)
    images, labels = eval_subset(digits, cfg.eval_digits, cfg.seed)
    start = time.perf_counter()
    out = measure_digits(model, images, labels, cfg.eval_steps, cfg.swap_at, cfg.seed)
    return {
        **{key: out[key] for key in METRICS},
        "accuracy_at_swap": out["accuracy_curve"][cfg.swap_at],
        "steps": cfg.eval_steps,
        "swap_at": cfg.swap_at,
        "digits": len(labels),
        "seconds": time.perf_counter() - start,
        "data": digits.source,
        "checkpoint": str(path),
        "command": ckpt["provenance"].get("command", ""),
    }


def watch(cfg: Config, checkpoint: str | None = None) -> NCACanvas:
    """``colony watch nca-digits``: a held-out digit classifying itself, coloured by votes.

    Keys ``0``-``9``: swap to another digit of that class, keeping the cells' states where
    the two overlap (watch them re-agree; the viewer keeps ``0`` for "fit"); ``x``: a
    random digit; ``e``: an empty canvas. Left click erases ink, right click adds ink.
    """
    model, _, digits, _ = load_rule(checkpoint, cfg.mnist)
    images, labels = digits.test_images, digits.test_labels
    threshold, c = model.config.alive_threshold, model.config.channels
    _, h, w = images.shape
    rng = np.random.default_rng(cfg.seed)
    current: dict[str, int | None] = {"index": int(rng.integers(len(labels)))}

    def rule(x: torch.Tensor) -> torch.Tensor:
        return model.step(x, alive=alive_of(x, threshold), generator=canvas.generator)

    def seed(canvas: NCACanvas, at: tuple[int, int] | None) -> torch.Tensor:
        if at is None:
            if current["index"] is None:
                return torch.zeros(1, h, w, c)
            return fresh_states(images[current["index"]].unsqueeze(0), c, threshold)
        ink = disc_mask(h, w, torch.tensor([at], dtype=torch.float32), 1.5)  # (1, H, W)
        state = canvas.state.clone()
        state[..., 0] = torch.where(ink, torch.ones_like(state[..., 0]), state[..., 0])
        return state

    def show(index: int) -> None:
        current["index"] = index
        state, _ = swap_digits(canvas.state, images[index].unsqueeze(0), threshold)
        canvas.set_state(state)

    def keys(canvas: NCACanvas, name: str) -> bool:
        if len(name) == 1 and name.isdigit():
            hits = torch.nonzero(labels == int(name)).squeeze(1)
            if len(hits) == 0:
                return False
            show(int(hits[int(rng.integers(len(hits)))]))
            return True
        if name == "x":
            show(int(rng.integers(len(labels))))
            return True
        if name == "e":
            current["index"] = None
            canvas.set_state(torch.zeros_like(canvas.state))
            return True
        return False

    def metrics(canvas: NCACanvas) -> dict[str, float]:
        x = canvas.state[canvas.view_index : canvas.view_index + 1]
        alive = alive_of(x, threshold)
        logits = x[..., -CLASSES:]
        return {
            "digit": -1.0 if current["index"] is None else float(labels[current["index"]]),
            "majority": float(majority_vote(logits, alive)[0]),
            "agreement": pixel_agreement(logits, alive),
            "live_cells": float(alive.sum()),
        }

    canvas = NCACanvas(
        rule,
        CanvasConfig(height=h, width=w, channels=c, batch=1, alive_channel=0, damage_radius=0.1),
        seed_fn=seed,
        render_fn=lambda canvas: votes_rgb(canvas.state[canvas.view_index], threshold),
        metrics_fn=metrics,
        key_fn=keys,
    )
    canvas.metadata = {**NCACanvas.metadata, "name": "nca-digits"}
    canvas.reset(seed=cfg.seed)
    return canvas


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
