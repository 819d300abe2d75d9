"""Digits for ``nca-digits``: scikit-learn's 8x8 digits or MNIST's IDX files, split.

* :func:`load_sklearn_digits`: the 1,797 bundled digits, upscaled (bilinear) and
  padded, with a seeded stratified held-out share (:func:`stratified_split`);
* :func:`load_mnist`: MNIST from its four IDX files (:func:`read_idx`; the
  official 10k test set is held out); :func:`write_idx` / :func:`write_fake_mnist`
  write test fixtures;
* :func:`eval_subset`: a seeded, reproducible subset of the held-out digits;
* digit states for a neural CA (:func:`fresh_states`, :func:`swap_digits`,
  :func:`alive_of`): channel 0 the input pixel, live where it is inked.

Every error names the file or folder and what was expected, in one line.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "CLASSES",
    "MNIST_FILES",
    "Digits",
    "alive_of",
    "eval_subset",
    "fresh_states",
    "load_digits",
    "load_mnist",
    "load_sklearn_digits",
    "mnist_file",
    "read_idx",
    "stratified_split",
    "swap_digits",
    "upscale",
    "write_fake_mnist",
    "write_idx",
]

CLASSES = 10
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


def write_fake_mnist(
    folder: str | Path,
    n_train: int = 6,
    n_test: int = 4,
    size: int = 5,
    *,
    gz: bool = True,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """A fixture: MNIST's four IDX files with random ``size`` x ``size`` images in
    ``folder`` (train labels ``i % 10``, test labels ``3i % 10``); returns the arrays
    by file stem."""
    rng = np.random.default_rng(seed)
    arrays = {
        MNIST_FILES["train_images"]: rng.integers(0, 256, (n_train, size, size), dtype=np.uint8),
        MNIST_FILES["train_labels"]: np.arange(n_train, dtype=np.uint8) % 10,
        MNIST_FILES["test_images"]: rng.integers(0, 256, (n_test, size, size), dtype=np.uint8),
        MNIST_FILES["test_labels"]: (np.arange(n_test, dtype=np.uint8) * 3) % 10,
    }
    for stem, array in arrays.items():
        write_idx(Path(folder) / (stem + (".gz" if gz else "")), array)
    return arrays


def mnist_file(folder: str | Path, stem: str) -> Path:
    """The IDX file ``stem`` in ``folder`` (also ``stem.gz`` or ``stem`` with ``.idx``).

    Raises:
        FileNotFoundError: none of those names exists.
    """
    folder = Path(folder)
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
    arrays = {key: read_idx(mnist_file(folder, stem)) for key, stem in MNIST_FILES.items()}
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


def load_digits(spec: dict[str, Any]) -> Digits:
    """MNIST when ``spec["mnist"]`` names a folder, else scikit-learn's digits with
    ``spec``'s ``scale``, ``border``, ``test_share`` and ``split_seed``."""
    if spec.get("mnist"):
        return load_mnist(spec["mnist"])
    return load_sklearn_digits(
        spec["scale"], spec["border"], spec["test_share"], spec["split_seed"]
    )


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


# -- digit states for a neural CA ---------------------------------------------------------------
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
