"""Specialisation metrics of a mixture (pure functions of responsibilities) and the
statistics over trials."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from colonylab.emergence.specialization import (
    class_responsibilities,
    mean_ci,
    specialisation,
    t_quantile_975,
)


def test_a_specialised_mixture():
    # 3 classes, 3 experts: expert 2 owns classes 0 and 1, expert 0 owns class 2
    h = np.array([[0.0, 0.1, 0.9], [0.0, 0.0, 1.0], [0.2, 0.0, 0.8], [0.7, 0.3, 0.0]])
    labels = np.array([0, 0, 1, 2])
    table = class_responsibilities(h, labels, 3)
    assert table.shape == (3, 3)
    assert np.allclose(table[0], [0.0, 0.05, 0.95]) and np.allclose(table[2], [0.7, 0.3, 0.0])
    stats = specialisation(h, labels, 3)
    assert stats["max_responsibility"] == pytest.approx((0.9 + 1.0 + 0.8 + 0.7) / 4)
    assert stats["experts_winning_a_class"] == 2.0


def test_a_uniform_gate_has_no_specialists_and_tensors_work():
    h = torch.full((8, 4), 0.25)
    labels = torch.arange(8) % 2
    stats = specialisation(h, labels, 2)
    assert stats["max_responsibility"] == pytest.approx(0.25)
    assert stats["experts_winning_a_class"] == 1.0  # ties: the first expert wins both
    table = class_responsibilities(h, labels, 3)  # class 2 has no cases: a row of NaN
    assert np.isnan(table[2]).all() and np.allclose(table[:2], 0.25)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="h must be"):
        class_responsibilities(np.ones((4, 2)), np.zeros(3, dtype=int), 2)


def test_mean_and_confidence_interval():
    assert t_quantile_975(24) == pytest.approx(2.064)
    assert t_quantile_975(200) == pytest.approx(1.972, abs=0.003)
    assert math.isnan(t_quantile_975(0))
    mean, half, sd, n = mean_ci(np.array([1.0, 2.0, 3.0, np.nan]))
    assert (mean, n) == (2.0, 3) and sd == pytest.approx(1.0)
    assert half == pytest.approx(4.303 / math.sqrt(3))
    assert mean_ci([5.0])[:2][0] == 5.0 and math.isnan(mean_ci([])[0])
