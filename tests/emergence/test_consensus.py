"""Consensus metrics on hand-made states."""

from __future__ import annotations

import numpy as np
import pytest

from colonylab.emergence import consensus as C


def test_agreement_binary_and_categorical():
    states = np.array([[1, 1, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0]])
    np.testing.assert_allclose(C.agreement(states), [0.75, 1.0, 0.5])
    np.testing.assert_allclose(C.agreement(np.array([[2, 2, 5, 7, 2]])), [0.6])


def test_time_to_consensus_needs_agreement_to_last():
    traj = np.array(
        [
            [[0, 1, 1], [0, 1, 0]],
            [[1, 1, 1], [0, 1, 0]],
            [[1, 1, 0], [0, 0, 0]],
            [[1, 1, 1], [0, 0, 0]],
        ]
    )  # [T=4, B=2, N=3]
    np.testing.assert_array_equal(C.time_to_consensus(traj), [3, 2])
    np.testing.assert_array_equal(C.time_to_consensus(traj[:3]), [-1, 2])


def test_classification_accuracy():
    final = np.array([[1, 1, 1], [0, 0, 0], [1, 0, 1]])
    assert C.classification_accuracy(final, np.array([1, 1, 1])) == pytest.approx(1 / 3)
    assert C.classification_accuracy(final, np.array([1, 0, 0])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="answer"):
        C.classification_accuracy(final, np.array([1, 0]))


def test_order_parameter_limits_and_rotation_invariance():
    assert C.order_parameter(np.full(10, 0.3)) == pytest.approx(1.0)
    assert C.order_parameter(np.array([0.0, np.pi])) == pytest.approx(0.0, abs=1e-12)
    rng = np.random.default_rng(0)
    theta = rng.uniform(-np.pi, np.pi, (50, 1000))
    order = C.order_parameter(theta)
    assert order.shape == (50,) and order.mean() < 0.1  # ~ sqrt(pi / 4N)
    np.testing.assert_allclose(C.order_parameter(theta + 1.234), order)


def test_heading_metrics_toward_a_target():
    theta = np.array([[0.1, -0.1, 0.0], [np.pi, np.pi, np.pi]])
    np.testing.assert_allclose(C.group_heading(theta), [0.0, np.pi], atol=1e-12)
    assert C.accuracy_to_target(theta, 0.0) == pytest.approx(0.5)  # one right, one away
    assert C.accuracy_to_target(theta[:1], 0.0) == pytest.approx(1.0)
    assert C.share_within(theta, 0.0) == 0.5
    np.testing.assert_allclose(C.target_alignment(theta, 0.0), [np.cos(0.1) * 2 / 3 + 1 / 3, -1])
    # wrapping: a heading just below pi is close to a target just above -pi
    assert C.accuracy_to_target(np.array([[np.pi - 0.01]]), -np.pi + 0.01) > 0.99


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="headings"):
        C.order_parameter(np.zeros(0))
    with pytest.raises(ValueError, match="trajectory"):
        C.time_to_consensus(np.zeros(3))
