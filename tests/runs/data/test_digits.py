"""Digits: scikit-learn's split, MNIST's IDX files (round trip, refusals), digit states."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from colonylab.runs.data.digits import (
    eval_subset,
    fresh_states,
    load_mnist,
    load_sklearn_digits,
    read_idx,
    swap_digits,
    write_fake_mnist,
    write_idx,
)


# -- sklearn digits and MNIST files ----------------------------------------------------------------------------------
def test_sklearn_digits_are_upscaled_and_split_stratified_and_seeded():
    d = load_sklearn_digits(scale=3, border=2, test_share=0.2, seed=0)
    assert d.train_images.shape[1:] == d.test_images.shape[1:] == (28, 28)
    assert len(d.train_labels) + len(d.test_labels) == 1797
    assert 0.19 < len(d.test_labels) / 1797 < 0.21
    counts = np.bincount(d.test_labels.numpy(), minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38  # 20% of each class (174..183)
    assert d.train_images.min() >= 0 and d.train_images.max() <= 1
    assert d.train_images[:, :2].abs().sum() == 0  # the empty border
    again = load_sklearn_digits(scale=3, border=2, test_share=0.2, seed=0)
    assert torch.equal(again.test_images, d.test_images)
    other = load_sklearn_digits(scale=3, border=2, test_share=0.2, seed=1)
    assert not torch.equal(other.test_labels, d.test_labels)
    # no held-out digit is also a training digit
    train = {bytes(x.numpy()) for x in d.train_images}
    assert not any(bytes(x.numpy()) in train for x in d.test_images)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_round_trip(tmp_path, gz):
    arrays = write_fake_mnist(tmp_path, gz=gz)
    images = read_idx(tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else "")))
    assert images.dtype == np.uint8 and np.array_equal(images, arrays["train-images-idx3-ubyte"])
    d = load_mnist(tmp_path)
    assert d.train_images.shape == (6, 5, 5) and d.test_images.shape == (4, 5, 5)
    assert torch.allclose(
        d.train_images, torch.from_numpy(arrays["train-images-idx3-ubyte"] / 255.0).float()
    )
    assert d.test_labels.tolist() == [0, 3, 6, 9]


def test_bad_mnist_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")
    write_fake_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path)
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x12\x34\x08\x01" + bytes(8))
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(bytes([0, 0, 8, 2]) + np.asarray([3, 3], ">i4").tobytes() + bytes(5))
    with pytest.raises(ValueError, match=r"says \(3, 3\).*truncated"):
        read_idx(short)
    notgz = tmp_path / "x.gz"
    notgz.write_bytes(b"plain bytes")
    with pytest.raises(ValueError, match="gzip"):
        read_idx(notgz)
    mismatched = tmp_path / "m"
    mismatched.mkdir()
    write_fake_mnist(mismatched)
    write_idx(mismatched / "train-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    with pytest.raises(ValueError, match="6 images but labels"):
        load_mnist(mismatched)
    assert gzip.decompress((mismatched / "t10k-labels-idx1-ubyte.gz").read_bytes())[2] == 8


# -- states --------------------------------------------------------------------------------
def test_fresh_states_and_digit_swaps():
    a = torch.tensor([[[0.0, 0.5, 0.05], [0.9, 0.0, 0.0]]])  # (1, 2, 3)
    b = torch.tensor([[[0.0, 0.7, 0.8], [0.0, 0.0, 0.0]]])
    x = fresh_states(a, 12)
    assert x.shape == (1, 2, 3, 12) and x[0, 0, 2, 0] == 0  # 0.05 is below the threshold
    x[..., 1:] = 2.0 * (a > 0.1).unsqueeze(-1)
    y, alive = swap_digits(x, b)
    assert alive.tolist() == [[[False, True, True], [False, False, False]]]
    assert y[0, 0, 1, 0] == pytest.approx(0.7) and (y[0, 0, 1, 1:] == 2).all()  # kept
    assert (y[0, 0, 2, 1:] == 0).all()  # new cell starts at zero
    assert (y[0, 1, 0] == 0).all()  # cell of the old digit only dies


def test_eval_subset_is_seeded_and_respects_classes():
    d = load_sklearn_digits(scale=1, border=0)
    images, labels = eval_subset(d, 20, seed=3, classes=(2, 5))
    assert len(labels) == 20 and set(labels.tolist()) <= {2, 5}
    again, _ = eval_subset(d, 20, seed=3, classes=(2, 5))
    assert torch.equal(images, again)
    _, everything = eval_subset(d, None, seed=0)
    assert len(everything) == len(d.test_labels)
