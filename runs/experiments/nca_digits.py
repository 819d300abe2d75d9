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
only logged, never used to pick a checkpoint). Writes ``checkpoints/nca_digits.pt``
and ``media/training.png`` (curves, digits coloured by their votes, a swap).

    colony train nca-digits --threads 1            # the shipped checkpoint, ~10 min on 2 cores
    colony train nca-digits --mnist ~/data/mnist --iterations 20000
    colony eval nca-digits --json eval.json        # the shipped checkpoint
    colony watch nca-digits                        # keys 1-9: swap to that class
"""

from __future__ import annotations

import dataclasses
import gzip
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from colonylab.agents.nca import NCA, NCAConfig
from colonylab.emergence.nca import (
    classification_run,
    majority_vote,
    pixel_agreement,
    reagreement,
)
from colonylab.envs.ca.nca_canvas import CanvasConfig, NCACanvas, disc_mask
from colonylab.runs.common import RunDir, resolve_device, seed_everything
from colonylab.runs.common.nca_io import load_nca, save_nca, shipped_checkpoint
from colonylab.runs.common.progress import progress_bar

EXPERIMENT = "nca-digits"
SHIPPED = "nca_digits.pt"
CLASSES = 10
LOSSES = ("l2", "ce")
# one colour per class (the tab10 palette), RGB in [0, 1]
PALETTE = np.array(
    [
        [0.122, 0.467, 0.706],
        [1.000, 0.498, 0.055],
        [0.173, 0.627, 0.173],
        [0.839, 0.153, 0.157],
        [0.580, 0.404, 0.741],
        [0.549, 0.337, 0.294],
        [0.890, 0.467, 0.761],
        [0.498, 0.498, 0.498],
        [0.737, 0.741, 0.133],
        [0.090, 0.745, 0.812],
    ],
    dtype=np.float32,
)
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# IDX type codes -> big-endian NumPy dtypes
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

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
        for name in ("scale", "batch", "pool_size", "iterations", "steps_min", "eval_steps"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("border", "eval_every", "checkpoint_every", "lr_decay_at", "swap_at"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 0):
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.steps_max < self.steps_min:
            raise ValueError(
                f"steps_max ({self.steps_max}) must be >= steps_min ({self.steps_min})"
            )
        if self.pool_size < self.batch:
            raise ValueError(f"pool_size ({self.pool_size}) must be >= batch ({self.batch})")
        if not 0.0 < self.test_share < 1.0:
            raise ValueError(f"test_share must be in (0, 1), got {self.test_share}")
        for name in ("fresh_share", "swap_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.fresh_share + self.swap_share > 1.0:
            raise ValueError(
                f"fresh_share + swap_share must be <= 1, got {self.fresh_share} + {self.swap_share}"
            )
        if self.swap_at > self.eval_steps:
            raise ValueError(f"swap_at ({self.swap_at}) must be <= eval_steps ({self.eval_steps})")
        if bad := [c for c in self.classes if not (isinstance(c, int) and 0 <= c < CLASSES)]:
            raise ValueError(f"classes must be digits 0-9, got {bad}")
        if len(set(self.classes)) == 1:
            raise ValueError(
                f"classes must name at least two digits (or none: all ten), got {self.classes}"
            )
        for name in ("train_digits", "eval_digits", "threads"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be an integer >= 1 (or None), got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.init_std < 1.0:
            raise ValueError(f"init_std must be in [0, 1), got {self.init_std}")
        if not 0.0 <= self.alive_threshold < 1.0:
            raise ValueError(f"alive_threshold must be in [0, 1), got {self.alive_threshold}")
        if self.channels < CLASSES + 2:
            raise ValueError(
                f"channels must be >= {CLASSES + 2} (input pixel, >= 1 hidden, "
                f"{CLASSES} logits), got {self.channels}"
            )
        self.nca_config()  # architecture checks with their own messages
        if self.mnist is not None:
            folder = Path(self.mnist).expanduser()
            if not folder.is_dir():
                raise ValueError(f"mnist folder {self.mnist!r} does not exist")
            try:
                for stem in MNIST_FILES.values():
                    _idx_file(folder, stem)
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


# -- data ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Digits:
    """Digit images in [0, 1] and their labels, split into training and held-out.

    Attributes:
        train_images: ``float32 (N, H, W)``; train_labels: ``int64 (N,)``.
        test_images: ``float32 (M, H, W)``; test_labels: ``int64 (M,)``.
        source: a description (``sklearn-digits ...`` or the MNIST folder).
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: str


def stratified_split(labels: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, test_idx)``: ``share`` of each class (rounded, >= 1) held out, drawn
    with ``seed``; both sorted."""
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = min(len(idx) - 1, max(1, round(share * len(idx))))
        test.append(rng.choice(idx, k, replace=False))
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(len(labels)), test_idx)
    return train_idx, test_idx


def upscale(images: np.ndarray, scale: int, border: int) -> np.ndarray:
    """``(N, h, w)`` in [0, 1] -> ``(N, h*scale + 2*border, w*scale + 2*border)``, bilinear."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).unsqueeze(1)
    if scale > 1:
        x = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
    x = F.pad(x, (border, border, border, border))
    return x.squeeze(1).clamp(0.0, 1.0).numpy()


def load_sklearn_digits(scale: int = 2, border: int = 2, test_share: float = 0.2, seed: int = 0):
    """scikit-learn's 8x8 digits (values 0..16) as :class:`Digits`, upscaled and split."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ModuleNotFoundError(
            "the digits come with scikit-learn, which is not installed: "
            "pip install 'scikit-learn>=1.3' (or pass --mnist DIR with MNIST's IDX files)"
        ) from None

    data = load_digits()
    images = upscale(data.images / 16.0, scale, border)
    labels = np.asarray(data.target, dtype=np.int64)
    train_idx, test_idx = stratified_split(labels, test_share, seed)
    return Digits(
        torch.from_numpy(images[train_idx]),
        torch.from_numpy(labels[train_idx]),
        torch.from_numpy(images[test_idx]),
        torch.from_numpy(labels[test_idx]),
        f"sklearn-digits x{scale} +{border} (held out {test_share:g}, split seed {seed})",
    )


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (MNIST's format; gzip-compressed when the name ends in ``.gz``).

    Header: two zero bytes, a type code (0x08 = unsigned byte, ...), the number of
    dimensions, then each dimension as a big-endian int32; the data follows.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a bad header or a data size that does not match it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file {str(path)!r} does not exist")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ValueError(f"{str(path)!r} is not a readable gzip file: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise ValueError(
            f"{str(path)!r} is not an IDX file (expected the magic bytes 00 00 <type> <ndim>, "
            f"got {raw[:4].hex(' ') or 'an empty file'})"
        )
    dtype, ndim = IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if ndim < 1 or len(raw) < header:
        raise ValueError(f"{str(path)!r}: truncated IDX header ({ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">i4", ndim, 4))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{str(path)!r}: the header says {shape} ({expected} bytes of data) but the file "
            f"holds {len(raw) - header}; the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` (uint8) as an IDX file (gzip-compressed when the name ends in .gz)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    head = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">i4").tobytes()
    data = head + array.tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def _idx_file(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"MNIST folder {str(folder)!r} has no {stem!r} (or {stem}.gz); it needs "
        + ", ".join(MNIST_FILES.values())
    )


def load_mnist(folder: str | Path) -> Digits:
    """MNIST from its four IDX files: images ``/255``, the official test set held out."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"MNIST folder {str(folder)!r} does not exist")
    arrays = {key: read_idx(_idx_file(folder, stem)) for key, stem in MNIST_FILES.items()}
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if images.ndim != 3:
            raise ValueError(f"MNIST {part} images must be (N, H, W), got shape {images.shape}")
        if labels.shape != images.shape[:1]:
            raise ValueError(
                f"MNIST {part}: {images.shape[0]} images but labels of shape {labels.shape}"
            )
        if labels.size and not 0 <= labels.min() <= labels.max() < CLASSES:
            raise ValueError(f"MNIST {part} labels must be 0-9, got {labels.min()}..{labels.max()}")
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise ValueError("MNIST train and test images differ in size")

    def images(key: str) -> torch.Tensor:
        return torch.from_numpy(arrays[key].astype(np.float32) / 255.0)

    def labels(key: str) -> torch.Tensor:
        return torch.from_numpy(arrays[key].astype(np.int64))

    return Digits(
        images("train_images"),
        labels("train_labels"),
        images("test_images"),
        labels("test_labels"),
        f"mnist {folder}",
    )


def data_spec(cfg: Config) -> dict[str, Any]:
    """What :func:`load_data` needs (saved in checkpoints, so eval holds out the same digits)."""
    return {
        "mnist": cfg.mnist,
        "scale": cfg.scale,
        "border": cfg.border,
        "test_share": cfg.test_share,
        "split_seed": cfg.split_seed,
    }


def load_data(spec: dict[str, Any]) -> Digits:
    """MNIST when ``spec["mnist"]`` names a folder, else scikit-learn's digits."""
    if spec.get("mnist"):
        return load_mnist(spec["mnist"])
    return load_sklearn_digits(
        spec["scale"], spec["border"], spec["test_share"], spec["split_seed"]
    )


# -- states ----------------------------------------------------------------------------------
def alive_of(x: torch.Tensor, threshold: float = 0.1) -> torch.Tensor:
    """The live cells of states ``(B, H, W, C)``: input pixel above ``threshold``."""
    return x[..., 0] > threshold


def fresh_states(images: torch.Tensor, channels: int, threshold: float = 0.1) -> torch.Tensor:
    """States ``(B, H, W, C)`` for digits ``(B, H, W)``: channel 0 the pixel on live
    cells, everything else zero."""
    x = images.new_zeros(*images.shape, channels)
    x[..., 0] = images * (images > threshold)
    return x


def swap_digits(
    x: torch.Tensor, images: torch.Tensor, threshold: float = 0.1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace each state's digit by ``images (B, H, W)``: cells live in both keep their
    state, cells of the new digit only start at zero, the others die.

    Returns:
        ``(states, alive)``.
    """
    alive = images > threshold
    out = x * (alive & alive_of(x, threshold)).unsqueeze(-1)
    out[..., 0] = images * alive
    return out, alive


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


# -- measuring -------------------------------------------------------------------------------
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
    totals = {"accuracy": 0.0, "agreement": 0.0, "stability": 0.0, "reagreement": 0.0}
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


def eval_subset(
    digits: Digits, count: int | None, seed: int, classes: tuple[int, ...] = ()
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``count`` held-out digits (of ``classes``, if given) of a seeded shuffle
    (all when None)."""
    order = np.random.default_rng(seed).permutation(len(digits.test_labels))
    if classes:
        order = order[np.isin(digits.test_labels.numpy()[order], classes)]
    if count is not None:
        order = order[:count]
    idx = torch.from_numpy(np.sort(order))
    return digits.test_images[idx], digits.test_labels[idx]


# -- training --------------------------------------------------------------------------------
def _command_line() -> str:
    argv = sys.argv
    if argv and Path(argv[0]).name == "colony":
        return shlex.join(["colony", *argv[1:]])
    return shlex.join(["python", *argv])


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
    """What :func:`train` returns."""

    model: NCA
    digits: Digits
    losses: list[float]
    evals: list[tuple[int, dict[str, Any]]]
    seconds: float
    run: RunDir | None


def train(
    cfg: Config,
    run: RunDir | None = None,
    progress: Progress | None = None,
    digits: Digits | None = None,
) -> TrainResult:
    """Train a rule; logs to ``run`` and saves ``run.checkpoints/nca_digits.pt`` when given."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    digits = digits if digits is not None else load_data(data_spec(cfg))
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
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=[cfg.lr_decay_at] if cfg.lr_decay_at else [], gamma=cfg.lr_decay
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
    meta = {"command": _command_line(), "config": dataclasses.asdict(cfg)}
    losses: list[float] = []
    evals: list[tuple[int, dict[str, Any]]] = []
    task = progress.add_task("nca-digits", total=cfg.iterations, rate="") if progress else None
    start = time.perf_counter()

    def save(iteration: int) -> None:
        if run is None:
            return
        save_nca(
            run.checkpoints / "nca_digits.pt",
            model,
            EXPERIMENT,
            {**meta, "iterations_done": iteration, "seconds": time.perf_counter() - start},
            data=data_spec(cfg),
        )

    for it in range(1, cfg.iterations + 1):
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
        loss = digits_loss(x, labels, threshold, cfg.loss).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                if p.grad is not None:
                    p.grad /= p.grad.norm() + 1e-8
        optimizer.step()
        scheduler.step()
        pool[idx] = x.detach()
        pool_labels[idx] = labels
        losses.append(float(loss.detach()))
        scalars = {"losses/loss": losses[-1], "charts/lr": scheduler.get_last_lr()[0]}
        last = it == cfg.iterations
        if (cfg.eval_every and it % cfg.eval_every == 0) or last:
            model.eval()
            result = measure_digits(
                model, eval_images, eval_labels, cfg.eval_steps, cfg.swap_at, cfg.seed
            )
            model.train()
            evals.append((it, result))
            for key in ("accuracy", "agreement", "stability", "reagreement"):
                scalars[f"emergence/{key}"] = result[key]
        if run is not None:
            run.log(it, scalars)
        if (cfg.checkpoint_every and it % cfg.checkpoint_every == 0) or last:
            save(it)
        if progress is not None and task is not None:
            text = f"loss {losses[-1]:.4f}"
            if evals:
                text += f"  acc {evals[-1][1]['accuracy']:.3f} (it {evals[-1][0]})"
            progress.update(task, advance=1, rate=text)
    return TrainResult(model, digits, losses, evals, time.perf_counter() - start, run)


# -- pictures --------------------------------------------------------------------------------
def votes_rgb(x: torch.Tensor, threshold: float = 0.1) -> np.ndarray:
    """One state ``(H, W, C)`` -> ``uint8 (H, W, 3)``: each live cell in its vote's colour,
    fainter where the pixel is fainter, on white."""
    x = x.detach().cpu()
    vote = x[..., -CLASSES:].argmax(dim=-1).numpy()
    ink = x[..., 0].clamp(0.0, 1.0).numpy()
    alive = ink > threshold
    strength = np.where(alive, 0.3 + 0.7 * ink, 0.0)[..., None]
    rgb = 1.0 - strength * (1.0 - PALETTE[vote])
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def plot_training(result: TrainResult, cfg: Config, path: Path) -> Path:
    """Loss and held-out curves, ten held-out digits coloured by their votes after
    ``eval_steps`` steps, and one digit swapped at ``swap_at``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    model, digits = result.model, result.digits
    device = next(model.parameters()).device
    threshold, c = cfg.alive_threshold, cfg.channels
    fig = plt.figure(figsize=(13, 8), constrained_layout=True)
    grid = fig.add_gridspec(3, 10, height_ratios=[1.6, 1, 1])
    ax = fig.add_subplot(grid[0, :5])
    losses = np.asarray(result.losses)
    ax.semilogy(np.arange(1, len(losses) + 1), losses, lw=0.5, color="0.6", label="batch")
    if len(losses) >= 20:
        k = max(5, len(losses) // 50)
        smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
        ax.semilogy(np.arange(k, len(losses) + 1), smooth, color="C0", label=f"mean of {k}")
    ax.set(xlabel="iteration", ylabel="L2 loss per live cell", title="training loss")
    ax.legend()
    ax = fig.add_subplot(grid[0, 5:])
    if result.evals:
        its = [i for i, _ in result.evals]
        for key, colour in (
            ("accuracy", "C2"),
            ("agreement", "C0"),
            ("stability", "C1"),
            ("reagreement", "C3"),
        ):
            ax.plot(its, [r[key] for _, r in result.evals], "o-", ms=3, color=colour, label=key)
    ax.set(
        xlabel="iteration",
        ylim=(0, 1.02),
        title=f"held-out digits after {cfg.eval_steps} steps",
    )
    ax.legend(loc="lower right")

    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    step = make_step(model, generator)
    picks = []
    for k in range(CLASSES):
        hits = torch.nonzero(digits.test_labels == k).squeeze(1)
        if len(hits):
            picks.append(int(hits[0]))
    images = digits.test_images[picks].to(device)
    labels = digits.test_labels[picks]
    with torch.no_grad():
        x = fresh_states(images, c, threshold)
        for _ in range(cfg.eval_steps):
            x = step(x)
        majority = majority_vote(x[..., -CLASSES:], alive_of(x, threshold)).cpu()
    for i in range(len(picks)):
        ax = fig.add_subplot(grid[1, i])
        ax.imshow(votes_rgb(x[i], threshold), interpolation="nearest")
        colour = "green" if int(majority[i]) == int(labels[i]) else "red"
        ax.set_title(f"{int(labels[i])} -> {int(majority[i])}", fontsize=10, color=colour)
        ax.axis("off")

    # one digit, swapped for another class at swap_at
    first = images[:1]
    second = images[-1:] if len(picks) > 1 else images[:1]
    shown = [1, 10, 30, cfg.swap_at, cfg.swap_at + 1, cfg.swap_at + 10, cfg.swap_at + 30]
    shown = sorted({t for t in shown if t <= cfg.eval_steps} | {cfg.eval_steps})[:10]
    frames = {}
    with torch.no_grad():
        x = fresh_states(first, c, threshold)
        for t in range(1, cfg.eval_steps + 1):
            if t == cfg.swap_at + 1:
                x, _ = swap_digits(x, second, threshold)
            x = step(x)
            if t in shown:
                agree = pixel_agreement(x[..., -CLASSES:], alive_of(x, threshold))
                frames[t] = (votes_rgb(x[0], threshold), agree)
    for i, t in enumerate(shown):
        ax = fig.add_subplot(grid[2, i])
        img, agree = frames[t]
        ax.imshow(img, interpolation="nearest")
        ax.set_title(f"step {t}\nagree {agree:.2f}", fontsize=9)
        ax.axis("off")
    fig.legend(
        handles=[Patch(color=PALETTE[k], label=str(k)) for k in range(CLASSES)],
        loc="lower center",
        ncol=CLASSES,
        title=f"vote colours; bottom row: digit swapped after step {cfg.swap_at}",
        bbox_to_anchor=(0.5, -0.08),
    )
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


# -- entry points ----------------------------------------------------------------------------
def main(cfg: Config) -> TrainResult:
    """Train, log, save the checkpoint and the picture, print the held-out table."""
    run = RunDir(EXPERIMENT, cfg.seed, cfg, root=cfg.out)
    console.print(f"[bold]nca-digits[/] -> {run.path}")
    with progress_bar(console) as progress:
        result = train(cfg, run, progress)
    run.close()
    if cfg.plots:
        plot_training(result, cfg, run.media / "training.png")
    _, final = result.evals[-1]
    table = Table(
        title=f"nca-digits: held-out, step {cfg.eval_steps}",
        caption=f"{cfg.iterations} iterations, {result.seconds:.0f} s",
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("accuracy", "agreement", "stability", "reagreement"):
        table.add_row(key, f"{final[key]:.4g}")
    console.print(table)
    console.print(f"checkpoint: {run.checkpoints / 'nca_digits.pt'}")
    return result


def _checkpoint_path(checkpoint: str | None) -> Path:
    return Path(checkpoint) if checkpoint else shipped_checkpoint(SHIPPED)


def _load(checkpoint: str | None, cfg: Config) -> tuple[NCA, dict[str, Any], Digits, Path]:
    path = _checkpoint_path(checkpoint)
    model, payload = load_nca(path, EXPERIMENT)
    mc = model.config
    if mc.frozen_channels != 1 or mc.channels < CLASSES + 2:
        raise ValueError(
            f"{str(path)!r} is not a digits rule (needs the input pixel frozen and "
            f">= {CLASSES + 2} channels, got {mc})"
        )
    spec = payload.get("data")
    if not isinstance(spec, dict) or not {"scale", "border", "test_share", "split_seed"} <= set(
        spec
    ):
        raise ValueError(f"{str(path)!r} does not say which digits it held out (no 'data')")
    if cfg.mnist:
        spec = {**spec, "mnist": cfg.mnist}
    model.eval()
    return model, payload, load_data(spec), path


def evaluate(cfg: Config, checkpoint: str | None = None) -> dict[str, Any]:
    """``colony eval nca-digits``: on the held-out digits the checkpoint never saw (its own
    split; ``--mnist DIR``: MNIST's test set), from fresh states: ``accuracy`` and
    ``agreement`` after ``eval_steps``, ``stability`` (majority unchanged from ``swap_at``
    to ``eval_steps``), ``reagreement`` (digit swapped at ``swap_at`` for one of another
    class, accuracy on the new label at ``eval_steps``)."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    model, payload, digits, path = _load(checkpoint, cfg)
    images, labels = eval_subset(digits, cfg.eval_digits, cfg.seed)
    start = time.perf_counter()
    out = measure_digits(model, images, labels, cfg.eval_steps, cfg.swap_at, cfg.seed)
    curve = out.pop("accuracy_curve")
    return {
        "accuracy": out["accuracy"],
        "agreement": out["agreement"],
        "stability": out["stability"],
        "reagreement": out["reagreement"],
        "accuracy_at_swap": curve[cfg.swap_at],
        "steps": cfg.eval_steps,
        "swap_at": cfg.swap_at,
        "digits": len(labels),
        "seconds": time.perf_counter() - start,
        "data": digits.source,
        "checkpoint": str(path),
        "command": payload["meta"].get("command", ""),
    }


def watch(cfg: Config, checkpoint: str | None = None) -> NCACanvas:
    """``colony watch nca-digits``: a held-out digit classifying itself, coloured by votes.

    Keys ``0``-``9``: swap to another digit of that class, keeping the cells' states where
    the two overlap (watch them re-agree; the viewer keeps ``0`` for "fit"); ``x``: a
    random digit; ``e``: an empty canvas. Left click erases ink, right click adds ink.
    """
    model, _, digits, _ = _load(checkpoint, cfg)
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
