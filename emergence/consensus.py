"""Consensus metrics: do many local parts agree, how fast, and on the right answer?

Pure functions of arrays (NumPy in, NumPy or floats out); nothing here runs a world.

Discrete states (density classification, votes):

* :func:`agreement` -- share of parts holding the most common value (1 = consensus);
* :func:`time_to_consensus` -- first step from which every part agrees for good;
* :func:`classification_accuracy` -- share of runs whose final state is all the right
  answer (the density task: all 1 iff the start had more 1s).

Headings (flocks; angles in radians, unit speed implied):

* :func:`order_parameter` -- Vicsek's ``|sum v_i| / (N v0)``, the length of the mean unit
  heading (1 = all parallel, ~``1/sqrt(N)`` for random headings);
* :func:`group_heading` -- the direction of the mean heading;
* :func:`target_alignment` -- ``mean_i cos(theta_i - target)``: the mean heading projected
  on the target direction, in [-1, 1]; it needs both order and the right direction
  (the reward of the learned flocking controller);
* :func:`accuracy_to_target` -- per run ``1 - |group heading - target| / pi`` in [0, 1]
  (1 = the group moves exactly toward the target, 0.5 = at right angles, the
  expectation for a random direction, 0 = away). Couzin et al. (Nature 2005) measure
  "accuracy" as the group direction's angular deviation from the informed individuals'
  preferred direction; this is that deviation, normalised so that higher is better;
* :func:`share_within` -- share of runs whose group heading is within ``tolerance``
  (default 20 degrees) of the target.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "accuracy_to_target",
    "agreement",
    "angle_difference",
    "classification_accuracy",
    "group_heading",
    "order_parameter",
    "share_within",
    "target_alignment",
    "time_to_consensus",
]


def agreement(states: np.ndarray) -> np.ndarray:
    """Share of parts holding the most common value, over the last axis.

    Args:
        states: integer array ``[..., N]`` (binary cells or class votes).

    Returns:
        float64 ``[...]`` in ``[1/k, 1]`` (``k`` values present); 1 = consensus.
    """
    states = np.asarray(states)
    if states.ndim == 0 or states.shape[-1] == 0:
        raise ValueError(f"states must be an array [..., N] with N >= 1, got {states.shape}")
    if states.dtype.kind == "b" or (states.size and states.min() >= 0 and states.max() <= 1):
        ones = states.mean(axis=-1, dtype=np.float64)
        return np.maximum(ones, 1.0 - ones)
    flat = states.reshape(-1, states.shape[-1])
    out = np.empty(flat.shape[0])
    for i, row in enumerate(flat):
        _, counts = np.unique(row, return_counts=True)
        out[i] = counts.max() / row.size
    return out.reshape(states.shape[:-1])


def time_to_consensus(trajectory: np.ndarray) -> np.ndarray:
    """First step from which every part agrees until the end of the trajectory.

    Args:
        trajectory: ``[T, ..., N]`` states over time (axis 0 = time).

    Returns:
        int64 ``[...]``: the step index, or -1 when the last state is not a consensus.
    """
    trajectory = np.asarray(trajectory)
    if trajectory.ndim < 2:
        raise ValueError(f"trajectory must be [T, ..., N], got shape {trajectory.shape}")
    agreed = agreement(trajectory) == 1.0  # [T, ...]
    # steps from the end that are all agreed: the run of True at the tail
    tail = np.cumprod(agreed[::-1], axis=0).sum(axis=0)
    t = trajectory.shape[0]
    return np.where(tail > 0, t - tail, -1).astype(np.int64)


def classification_accuracy(final: np.ndarray, answer: np.ndarray) -> float:
    """Share of runs whose every part equals the right answer.

    Args:
        final: ``[B, ...]`` final states (0 / 1 or class indices).
        answer: ``[B]`` the right value per run (e.g. the start's majority).
    """
    final = np.asarray(final)
    answer = np.asarray(answer)
    if final.shape[:1] != answer.shape:
        raise ValueError(f"answer must be [B] = {final.shape[:1]}, got shape {answer.shape}")
    flat = final.reshape(final.shape[0], -1)
    return float((flat == answer.astype(flat.dtype)[:, None]).all(axis=1).mean())


def _mean_vector(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    theta = np.asarray(theta, dtype=np.float64)
    if theta.ndim == 0 or theta.shape[-1] == 0:
        raise ValueError(f"headings must be an array [..., N] with N >= 1, got {theta.shape}")
    return np.cos(theta).mean(axis=-1), np.sin(theta).mean(axis=-1)


def order_parameter(theta: np.ndarray) -> np.ndarray:
    """Vicsek's order parameter ``|sum_i v_i| / (N v0)`` of headings ``[..., N]``
    (radians; every particle at speed ``v0``) -> float64 ``[...]`` in [0, 1]."""
    x, y = _mean_vector(theta)
    return np.hypot(x, y)


def group_heading(theta: np.ndarray) -> np.ndarray:
    """Direction of the mean heading, radians in (-pi, pi], float64 ``[...]``."""
    x, y = _mean_vector(theta)
    return np.arctan2(y, x)


def angle_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a - b`` wrapped into [-pi, pi)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return (d + np.pi) % (2 * np.pi) - np.pi


def target_alignment(theta: np.ndarray, target: float | np.ndarray) -> np.ndarray:
    """``mean_i cos(theta_i - target)`` over the last axis: in [-1, 1]."""
    theta = np.asarray(theta, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)[..., None]
    return np.cos(theta - target).mean(axis=-1)


def accuracy_to_target(theta: np.ndarray, target: float | np.ndarray) -> float:
    """Mean over runs of ``1 - |group heading - target| / pi`` (see the module docstring).

    Args:
        theta: headings ``[runs, N]`` (or ``[N]``, one run).
        target: the informed direction (radians), scalar or ``[runs]``.
    """
    error = np.abs(angle_difference(group_heading(theta), target))
    return float(np.mean(1.0 - error / np.pi))


def share_within(
    theta: np.ndarray, target: float | np.ndarray, tolerance: float = np.pi / 9
) -> float:
    """Share of runs whose group heading is within ``tolerance`` radians of ``target``."""
    error = np.abs(angle_difference(group_heading(theta), target))
    return float(np.mean(error <= tolerance))
