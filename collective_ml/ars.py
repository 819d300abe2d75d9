"""Augmented Random Search (Mania, Guy & Recht, NeurIPS 2018) behind the ask/tell
interface. LOWER FITNESS IS BETTER (``maximize=True`` for rewards).

::

    from colonylab.collective_ml.ars import ARS
    core = ARS(dim=D, directions=16, top=8, step_size=0.02, noise=0.03,
               center_init=flat_params, seed=0, maximize=True)
    for _ in range(iterations):
        params = core.ask()          # (2 * directions, D): mu + nu d_i, then mu - nu d_i
        core.tell(returns(params))   # (2 * directions,)
    core.center                      # (D,) the policy to deploy

One update (version "V1-t"/"V2-t" of the paper: the ``t`` is the top-``b``
selection; "V2" is the observation normalisation, which lives with the policy, not
here): ``N`` directions ``d_i ~ N(0, I_D)`` are asked as antithetic pairs ``mu + nu
d_i`` (rows ``0..N-1``) and ``mu - nu d_i`` (rows ``N..2N-1``); with rewards ``r+_i,
r-_i`` the ``b`` directions with the largest ``max(r+_i, r-_i)`` move the mean::

    mu <- mu + alpha / (b sigma_R) * sum_{top b} (r+_i - r-_i) d_i

where ``sigma_R`` is the standard deviation of the ``2b`` rewards used (a step of
fixed size in reward-standardised units; the paper's scaling). Raw rewards, not ranks:
a direction's weight is how much better one side did. NaN/inf fitness (the base
class's ``+inf``) counts as the worst finite reward of the generation. All noise comes
from the core's own generator, so ``load_state_dict(state_dict())`` continues
bit-identically.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from colonylab.collective_ml.base import PopulationOptimizer
from colonylab.collective_ml.es import _vector

__all__ = ["ARS"]


class ARS(PopulationOptimizer):
    """Augmented Random Search with top-``b`` directions. LOWER FITNESS IS BETTER.

    Args:
        dim: ``D``.
        directions: ``N`` directions per generation (``pop_size = 2 N``).
        top: ``b`` best directions that update the mean (``1 <= b <= N``).
        step_size: ``alpha``.
        noise: ``nu``, the exploration standard deviation of every weight.
        center_init: initial mean: a number or ``(D,)``.
        seed, device, dtype, maximize: see
            :class:`~colonylab.collective_ml.base.PopulationOptimizer`.
    """

    def __init__(
        self,
        dim: int,
        directions: int,
        *,
        top: int | None = None,
        step_size: float = 0.02,
        noise: float = 0.03,
        center_init: float | Tensor = 0.0,
        seed: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        maximize: bool = False,
    ) -> None:
        if isinstance(directions, bool) or not isinstance(directions, int) or directions < 1:
            raise ValueError(f"directions must be an integer >= 1, got {directions!r}")
        top = directions if top is None else top
        if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= directions:
            raise ValueError(f"top must be an integer in [1, directions={directions}], got {top!r}")
        for name, value in (("step_size", step_size), ("noise", noise)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        super().__init__(
            dim, 2 * directions, seed=seed, device=device, dtype=dtype, maximize=maximize
        )
        self.directions, self.top = directions, top
        self.step_size, self.noise = float(step_size), float(noise)
        self._center = _vector("center_init", center_init, dim, dtype, self.device)  # (D,)
        self._deltas: Tensor | None = None  # (N, D) of the pending ask
        self._pop: Tensor | None = None  # (2N, D)
        self._best_x = self._center.clone()
        self._best_f = torch.full((), math.inf, dtype=dtype, device=self.device)
        self.last_reward_std = 0.0
        """``sigma_R`` of the last update (0 when every used reward was equal)."""

    def ask(self) -> Tensor:
        """``(2N, D)``: ``mu + nu d_i`` then ``mu - nu d_i`` (the same until :meth:`tell`)."""
        if self._deltas is None:
            self._deltas = self.normal(self.directions, self.dim)
        if self._pop is None:
            step = self.noise * self._deltas
            self._pop = torch.cat([self._center + step, self._center - step])
        return self._pop

    def _tell(self, fitness: Tensor) -> None:
        if self._pop is None or self._deltas is None:
            raise RuntimeError("ARS.tell() needs the candidates of an ask() first")
        best_i = fitness.argmin()
        better = fitness[best_i] < self._best_f
        self._best_f = torch.where(better, fitness[best_i], self._best_f)
        self._best_x = torch.where(better, self._pop[best_i], self._best_x)
        reward = -fitness  # higher is better; -inf for a failed candidate
        finite = torch.isfinite(reward)
        if not bool(finite.all()):
            floor = reward[finite].min() if bool(finite.any()) else reward.new_zeros(())
            reward = torch.where(finite, reward, floor)
        n = self.directions
        plus, minus = reward[:n], reward[n:]
        chosen = torch.topk(torch.maximum(plus, minus), self.top).indices  # (b,)
        used = torch.cat([plus[chosen], minus[chosen]])
        sigma = float(used.std(unbiased=False))
        self.last_reward_std = sigma
        if sigma > 0:
            weights = (plus[chosen] - minus[chosen]) / (self.top * sigma)  # (b,)
            self._center = self._center + self.step_size * (weights @ self._deltas[chosen])
        self._deltas = self._pop = None

    @property
    def center(self) -> Tensor:
        """``(D,)`` the mean (a copy): the policy to deploy."""
        return self._center.clone()

    def _best(self) -> tuple[Tensor, Tensor]:
        return self._best_x, self._best_f

    def _state(self) -> dict[str, Any]:
        empty = torch.empty(0, self.dim, dtype=self.dtype, device=self.device)
        return {
            "center": self._center,
            "deltas": self._deltas if self._deltas is not None else empty,
            "best_x": self._best_x,
            "best_f": self._best_f,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        kw = {"dtype": self.dtype, "device": self.device}
        for key in ("center", "best_x"):
            if tuple(state[key].shape) != (self.dim,):
                raise ValueError(
                    f"state {key} has shape {tuple(state[key].shape)}, want ({self.dim},)"
                )
        self._center = state["center"].to(**kw).clone()
        self._best_x = state["best_x"].to(**kw).clone()
        self._best_f = state["best_f"].to(**kw).clone()
        deltas = state["deltas"].to(**kw).clone()
        self._deltas = deltas if deltas.shape[0] > 0 else None
        self._pop = None
