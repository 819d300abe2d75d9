"""Running mean and standard deviation of observation features (ARS "V2", PPO's
observation normalisation): merge batches of states, read ``mean`` and ``std``.

::

    norm = RunningNorm(dim=19)
    norm.update(states)                  # float[M, 19]: every state visited this round
    x = (obs - norm.mean) / norm.std     # what the policy sees

Batches merge exactly (Chan et al.'s parallel variance), in float64, so the order of
the batches does not matter beyond rounding. ``std`` is floored at ``min_std`` (a
constant feature, e.g. a one-hot that never changes, stays finite).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["RunningNorm"]


class RunningNorm:
    """Mean and variance of ``dim`` features over every row seen.

    Args:
        dim: features per row.
        min_std: floor of :attr:`std`.
    """

    def __init__(self, dim: int, min_std: float = 1e-2) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
        if not min_std > 0:
            raise ValueError(f"min_std must be > 0, got {min_std!r}")
        self.dim, self.min_std = dim, float(min_std)
        self.count = 0
        self._mean = torch.zeros(dim, dtype=torch.float64)
        self._m2 = torch.zeros(dim, dtype=torch.float64)  # sum of squared deviations

    def update(self, rows: Tensor) -> None:
        """Merge ``rows`` ``[M, dim]`` (any float dtype; ``M`` may be 0)."""
        rows = torch.as_tensor(rows).reshape(-1, self.dim).to(torch.float64)
        m = rows.shape[0]
        if m == 0:
            return
        mean = rows.mean(0)
        m2 = ((rows - mean) ** 2).sum(0)
        total = self.count + m
        delta = mean - self._mean
        self._mean = self._mean + delta * (m / total)
        self._m2 = self._m2 + m2 + delta**2 * (self.count * m / total)
        self.count = total

    @property
    def mean(self) -> Tensor:
        """``float64[dim]`` (zeros before any row)."""
        return self._mean.clone()

    @property
    def std(self) -> Tensor:
        """``float64[dim]``, population std floored at ``min_std`` (ones before 2 rows)."""
        if self.count < 2:
            return torch.ones(self.dim, dtype=torch.float64)
        return (self._m2 / self.count).sqrt().clamp_min(self.min_std)

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "mean": self._mean.clone(), "m2": self._m2.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if tuple(state["mean"].shape) != (self.dim,):
            raise ValueError(
                f"RunningNorm state has dim {tuple(state['mean'].shape)}, want ({self.dim},)"
            )
        self.count = int(state["count"])
        self._mean = state["mean"].to(torch.float64).clone()
        self._m2 = state["m2"].to(torch.float64).clone()
