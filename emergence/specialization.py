"""Specialisation of a mixture of experts, from its responsibilities: pure functions.

A mixture's posterior responsibilities ``h: float[N, E]`` (rows sum to 1; e.g.
``CompetitiveMixture.responsibilities(x, targets)``) say which expert takes each
case. The experts have *specialised* when each case has one clear owner (the
largest ``h`` near 1) and different classes are owned by different experts.

* :func:`class_responsibilities`: the mean ``h`` of each expert over each class's
  cases, ``float[C, E]``;
* :func:`specialisation`: ``max_responsibility`` (mean over cases of the largest
  ``h``) and ``experts_winning_a_class`` (how many experts hold the largest mean
  responsibility of some class);
* :func:`mean_ci`: mean and 95% Student-t interval over independent trials, for
  reporting any of these over repeated runs.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["class_responsibilities", "mean_ci", "specialisation", "t_quantile_975"]


def _to_numpy(a) -> np.ndarray:
    return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)


def class_responsibilities(h, labels, num_classes: int) -> np.ndarray:
    """Mean responsibility of each expert over the cases of each class.

    Args:
        h: float[N, E] responsibilities (a NumPy array or a torch tensor; a tensor is
            averaged by torch, in its own precision).
        labels: int[N] class of each case, in ``[0, num_classes)``.
        num_classes: C.

    Returns:
        float[C, E]; a class without cases gives a row of NaN.
    """
    if tuple(h.shape[:1]) != tuple(labels.shape) or len(h.shape) != 2:
        raise ValueError(
            f"h must be (N, E) and labels (N,), got {tuple(h.shape)} and {tuple(labels.shape)}"
        )
    rows = []
    for c in range(num_classes):
        sel = h[labels == c]
        rows.append(_to_numpy(sel.mean(0)) if len(sel) else np.full(h.shape[1], np.nan))
    return np.stack(rows)


def specialisation(h, labels, num_classes: int) -> dict[str, float]:
    """How specialised a mixture is: ``max_responsibility`` (the mean over cases of the
    largest responsibility; 1/E for a uniform gate, 1 for one owner per case) and
    ``experts_winning_a_class`` (distinct experts holding the largest mean
    responsibility of some class, among the classes with cases)."""
    per_class = class_responsibilities(h, labels, num_classes)
    present = ~np.isnan(per_class).any(1)
    largest = h.max(-1)
    largest = getattr(largest, "values", largest)  # torch returns (values, indices)
    return {
        "max_responsibility": float(largest.mean()),
        "experts_winning_a_class": float(len(set(per_class[present].argmax(1).tolist()))),
    }


# -- statistics over trials --------------------------------------------------------------------

# Two-sided 97.5% quantiles of Student's t for 1-30 degrees of freedom (beyond: 1.96 + ...).
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_quantile_975(dof: int) -> float:
    """The 0.975 quantile of Student's t with ``dof`` degrees of freedom."""
    if dof < 1:
        return math.nan
    if dof <= len(_T975):
        return _T975[dof - 1]
    return 1.959964 + 2.4 / dof  # within 0.003 of the exact value for dof > 30


def mean_ci(values) -> tuple[float, float, float, int]:
    """``(mean, 95% t-interval half-width, SD, n)`` of the finite values."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    n = values.size
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    if n == 1:
        return float(values[0]), math.nan, math.nan, 1
    sd = float(values.std(ddof=1))
    return float(values.mean()), t_quantile_975(n - 1) * sd / math.sqrt(n), sd, n
