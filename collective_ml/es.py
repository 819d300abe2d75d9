"""Evolution strategies behind the ask/tell interface. LOWER FITNESS IS BETTER.

::

    from colonylab.collective_ml.es import PGPE
    es = PGPE(dim=D, pop_size=256, center_init=net_params, stdev_init=0.1, seed=0)
    for _ in range(iterations):
        params = es.ask()              # (P, D)
        es.tell(evaluate(params))      # (P,), lower is better (or maximize=True)
    es.center                          # (D,) the distribution's mean: the solution to deploy

Three strategies:

:class:`PGPE`     policy gradients with parameter-based exploration (Sehnke et al.
                  2010): a separable Gaussian ``N(mu, diag(sigma^2))`` whose mean takes
                  ClipUp (Toklu et al. 2020), Adam or SGD steps and whose per-coordinate
                  ``sigma`` is learned too. EvoJAX's workhorse.
:class:`OpenAIES` the evolution strategy of Salimans et al. (2017): fixed isotropic
                  ``sigma``, antithetic sampling, Adam (or SGD) on the mean, L2 decay.
:class:`CMAES`    CMA-ES from the ``cma`` package (Hansen), not re-implemented: this
                  class only translates between ``(P, D)`` tensors and ``cma``'s lists.

Fitness shaping (PGPE and OpenAI-ES): the fitness of a generation is replaced by its
centred ranks (:func:`centred_ranks`): rank ``r`` in ``0..P-1`` (lowest fitness first,
ties share their mean rank) becomes ``r / (P - 1) - 0.5``, in ``[-0.5, 0.5]`` with sum
0. The *utility* used below is ``u = -centred_rank``: the best candidate has
``u = +0.5``, the worst ``-0.5``, and every update ascends ``u``. Ranks make the
updates invariant to monotone transforms of the fitness, and a NaN/inf fitness (``+inf``
after the base class's check) simply ranks last (ties share a rank, so a pair whose
members both failed adds nothing to the mean's gradient).

Sampling: with antithetic (symmetric) sampling, ``h = P / 2`` directions
``z_i ~ N(0, I_D)`` give the rows ``mu + sigma * z_i`` (rows ``0..h-1``) and
``mu - sigma * z_i`` (rows ``h..P-1``), so ``ask()[i] + ask()[i + h] == 2 mu``.
Without it, ``P`` directions give ``mu + sigma * z_i``. All noise comes from the core's
own generator (:class:`~colonylab.collective_ml.base.PopulationOptimizer`), so
``load_state_dict(state_dict())`` continues bit-identically, even between ``ask`` and
``tell``.
"""

from __future__ import annotations

import functools
import math
import types
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from colonylab.collective_ml.base import PopulationOptimizer

__all__ = ["CMAES", "OPTIMIZERS", "PGPE", "OpenAIES", "centred_ranks"]

OPTIMIZERS = ("clipup", "adam", "sgd")
"""Step rules for the mean of PGPE (OpenAI-ES takes ``adam`` or ``sgd``)."""
_DEFAULT_CENTER_LR = {"clipup": 0.15, "adam": 0.05, "sgd": 0.05}


def centred_ranks(fitness: Tensor) -> Tensor:
    """Centred ranks of ``fitness`` ``(P,)``: ``rank / (P - 1) - 0.5``, lowest fitness first.

    Ties (including several ``+inf``) share their mean rank, so the result is in
    ``[-0.5, 0.5]``, sums to 0, and does not depend on the order of tied entries. No
    host synchronisation (safe on an accelerator). ``P = 1`` gives ``[0.0]``.

    Args:
        fitness: ``(P,)`` real tensor without NaN.

    Returns:
        ``(P,)`` tensor of ``fitness``'s dtype (float32 for integer input).
    """
    if fitness.dim() != 1:
        raise ValueError(f"fitness must be one-dimensional (P,), got shape {tuple(fitness.shape)}")
    p = fitness.shape[0]
    dtype = fitness.dtype if fitness.is_floating_point() else torch.float32
    if p < 2:
        return torch.zeros(p, dtype=dtype, device=fitness.device)
    sorted_f, order = fitness.sort(stable=True)
    idx = torch.arange(p, device=fitness.device)
    first = torch.ones(p, dtype=torch.bool, device=fitness.device)  # starts a tie group
    first[1:] = sorted_f[1:] != sorted_f[:-1]
    last = torch.ones_like(first)  # ends a tie group
    last[:-1] = first[1:]
    start = torch.where(first, idx, 0).cummax(0).values
    end = torch.where(last, idx, p - 1).flip(0).cummin(0).values.flip(0)
    ranks = torch.empty(p, dtype=dtype, device=fitness.device)
    ranks[order] = (start + end).to(dtype) / 2
    return ranks / (p - 1) - 0.5


# -- argument checks ----------------------------------------------------------------------------
def _positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(
            f"{name} must be a finite number {'>=' if allow_zero else '>'} 0, got {value!r}"
        )
    return float(value)


def _vector(name: str, value: Any, dim: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """A scalar or ``(D,)`` value as a fresh finite ``(D,)`` tensor."""
    try:
        t = torch.as_tensor(value, dtype=dtype, device=device).detach()
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be a number or a ({dim},) tensor, got {value!r}") from err
    if t.dim() == 0:
        t = t.expand(dim)
    if t.shape != (dim,):
        raise ValueError(f"{name} must be a number or have shape ({dim},), got {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return t.clone()


# -- steps on the mean ---------------------------------------------------------------------------
class _Stepper:
    """Turns an ascent direction ``g`` ``(D,)`` into the step added to the mean.

    ``clipup``  ``v <- momentum v + lr g / |g|``; ``v <- v min(1, max_speed / |v|)``;
                step ``v`` (Toklu et al. 2020; ``g = 0`` gives a zero push).
    ``adam``    ``m <- b1 m + (1 - b1) g``; ``s <- b2 s + (1 - b2) g^2``;
                step ``lr (m / (1 - b1^t)) / (sqrt(s / (1 - b2^t)) + eps)``.
    ``sgd``     ``v <- momentum v + g``; step ``lr v``.
    """

    def __init__(
        self,
        kind: str,
        lr: float,
        *,
        momentum: float,
        max_speed: float,
        betas: tuple[float, float],
        eps: float,
        like: Tensor,
    ) -> None:
        self.kind, self.lr, self.momentum, self.max_speed = kind, lr, momentum, max_speed
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.velocity = torch.zeros_like(like)  # clipup, sgd: (D,)
        self.first = torch.zeros_like(like)  # adam: (D,)
        self.second = torch.zeros_like(like)  # adam: (D,)
        self.steps = 0

    def __call__(self, g: Tensor) -> Tensor:
        self.steps += 1
        if self.kind == "clipup":
            tiny = torch.finfo(g.dtype).tiny
            v = self.velocity * self.momentum + g * (self.lr / g.norm().clamp_min(tiny))
            self.velocity = v * (self.max_speed / v.norm().clamp_min(tiny)).clamp_max(1.0)
            return self.velocity
        if self.kind == "sgd":
            self.velocity = self.velocity * self.momentum + g
            return self.velocity * self.lr
        self.first = self.first * self.beta1 + g * (1 - self.beta1)
        self.second = self.second * self.beta2 + g * g * (1 - self.beta2)
        m_hat = self.first / (1 - self.beta1**self.steps)
        s_hat = self.second / (1 - self.beta2**self.steps)
        return m_hat * self.lr / (s_hat.sqrt() + self.eps)

    def state(self) -> dict[str, Any]:
        return {
            "opt_velocity": self.velocity,
            "opt_first": self.first,
            "opt_second": self.second,
            "opt_steps": self.steps,
        }

    def load(self, state: dict[str, Any], like: Tensor) -> None:
        kw = {"dtype": like.dtype, "device": like.device}
        self.velocity = state["opt_velocity"].to(**kw).clone()
        self.first = state["opt_first"].to(**kw).clone()
        self.second = state["opt_second"].to(**kw).clone()
        self.steps = int(state["opt_steps"])


# -- Gaussian strategies ------------------------------------------------------------------------
class _GaussianES(PopulationOptimizer):
    """Shared machinery of PGPE and OpenAI-ES: a Gaussian around ``center``, sampled
    (antithetically) as one ``(P, D)`` tensor, shaped by centred ranks."""

    def __init__(
        self,
        dim: int,
        pop_size: int,
        *,
        center_init: float | Tensor | Sequence[float],
        stdev: float | Tensor | Sequence[float],
        stdev_name: str,
        antithetic: bool,
        stepper: dict[str, Any],
        seed: int,
        device: torch.device | str | None,
        dtype: torch.dtype,
        maximize: bool,
    ) -> None:
        super().__init__(dim, pop_size, seed=seed, device=device, dtype=dtype, maximize=maximize)
        if pop_size < 2:
            raise ValueError(f"pop_size must be >= 2 (ranks need two candidates), got {pop_size}")
        if antithetic and pop_size % 2:
            raise ValueError(
                f"antithetic sampling pairs candidates, so pop_size must be even, got "
                f"{pop_size}; use pop_size={pop_size + 1} or antithetic/symmetric=False"
            )
        self.antithetic = bool(antithetic)
        self._center = _vector("center_init", center_init, dim, dtype, self.device)  # (D,)
        self._stdev = _vector(stdev_name, stdev, dim, dtype, self.device)  # (D,)
        if not bool((self._stdev > 0).all()):
            raise ValueError(f"{stdev_name} must be > 0 everywhere, got {stdev!r}")
        self._stepper = _Stepper(like=self._center, **stepper)
        self._noise: Tensor | None = None  # (P/2 or P, D) standard normal of the pending ask
        self._pop: Tensor | None = None  # (P, D) the pending candidates
        self._best_x = self._center.clone()  # (D,)
        self._best_f = torch.full((), math.inf, dtype=dtype, device=self.device)

    def ask(self) -> Tensor:
        """``(P, D)`` candidates around :attr:`center` (the same ones until :meth:`tell`)."""
        if self._noise is None:
            rows = self.pop_size // 2 if self.antithetic else self.pop_size
            self._noise = self.normal(rows, self.dim)  # z: (P/2 or P, D)
        if self._pop is None:
            step = self._stdev * self._noise  # sigma * z: (P/2 or P, D)
            if self.antithetic:
                self._pop = torch.cat([self._center + step, self._center - step])
            else:
                self._pop = self._center + step
        return self._pop

    def _tell(self, fitness: Tensor) -> None:
        if self._pop is None or self._noise is None:
            raise RuntimeError(
                f"{type(self).__name__}.tell() needs the candidates of an ask() first"
            )
        best_i = fitness.argmin()
        better = fitness[best_i] < self._best_f
        self._best_f = torch.where(better, fitness[best_i], self._best_f)
        self._best_x = torch.where(better, self._pop[best_i], self._best_x)
        utility = -centred_ranks(fitness)  # (P,), best +0.5, worst -0.5
        self._update(utility, self._noise)
        self._noise = self._pop = None

    @abstractmethod
    def _update(self, utility: Tensor, z: Tensor) -> None:
        """Move the distribution: ``utility`` ``(P,)``, ``z`` ``(P/2 or P, D)``."""

    @property
    def center(self) -> Tensor:
        """``(D,)`` the distribution's mean (a copy): the current solution estimate."""
        return self._center.clone()

    def _best(self) -> tuple[Tensor, Tensor]:
        return self._best_x, self._best_f

    def _state(self) -> dict[str, Any]:
        empty = torch.empty(0, self.dim, dtype=self.dtype, device=self.device)
        return {
            "center": self._center,
            "stdev": self._stdev,
            "noise": self._noise if self._noise is not None else empty,
            "best_x": self._best_x,
            "best_f": self._best_f,
            **self._stepper.state(),
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        for key in ("center", "stdev", "best_x"):
            if tuple(state[key].shape) != (self.dim,):
                raise ValueError(
                    f"state {key} has shape {tuple(state[key].shape)}, want ({self.dim},)"
                )
        kw = {"dtype": self.dtype, "device": self.device}
        self._center = state["center"].to(**kw).clone()
        self._stdev = state["stdev"].to(**kw).clone()
        self._best_x = state["best_x"].to(**kw).clone()
        self._best_f = state["best_f"].to(**kw).clone()
        noise = state["noise"].to(**kw).clone()  # (0, D) when saved outside ask..tell
        rows = self.pop_size // 2 if self.antithetic else self.pop_size
        if tuple(noise.shape) not in ((0, self.dim), (rows, self.dim)):
            raise ValueError(
                f"state noise has shape {tuple(noise.shape)}, want ({rows}, {self.dim}) or "
                f"(0, {self.dim}); build the optimizer with the arguments the state was saved from"
            )
        self._noise = noise if noise.shape[0] > 0 else None
        self._pop = None
        self._stepper.load(state, self._center)


def _stepper_args(
    optimizer: str,
    choices: Sequence[str],
    lr_name: str,
    lr: float | None,
    momentum: float,
    max_speed: float | None,
    betas: tuple[float, float],
    eps: float,
) -> dict[str, Any]:
    if optimizer not in choices:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(choices)}")
    lr = _DEFAULT_CENTER_LR[optimizer] if lr is None else _positive(lr_name, lr)
    momentum = _positive("momentum", momentum, allow_zero=True)
    if momentum >= 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    max_speed = 2 * lr if max_speed is None else _positive("max_speed", max_speed)
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise ValueError(f"adam_betas must be two numbers in [0, 1), got {betas!r}")
    eps = _positive("adam_eps", eps)
    return {
        "kind": optimizer,
        "lr": lr,
        "momentum": momentum,
        "max_speed": max_speed,
        "betas": (float(betas[0]), float(betas[1])),
        "eps": eps,
    }


class PGPE(_GaussianES):
    """PGPE with ClipUp, Adam or SGD on the mean. LOWER FITNESS IS BETTER.

    Search distribution ``N(mu, diag(sigma^2))``, ``mu, sigma`` of shape ``(D,)``. With
    utilities ``u`` (see the module doc; ``u+_i, u-_i`` for the pair ``mu +- eps_i``,
    ``eps_i = sigma * z_i``, ``h = P / 2`` pairs) and baseline ``b = mean(u)`` (0 for
    centred ranks), every :meth:`tell` computes (Sehnke et al. 2010, symmetric
    sampling)::

        g_mu    = 1/h sum_i (u+_i - u-_i) / 2 * eps_i
        g_sigma = 1/h sum_i ((u+_i + u-_i) / 2 - b) * (eps_i^2 - sigma^2) / sigma
                = sigma * 1/h sum_i ((u+_i + u-_i) / 2 - b) * (z_i^2 - 1)
        mu    <- mu + step(g_mu)            # ClipUp, Adam or SGD, see below
        sigma <- clamp(sigma + stdev_lr * g_sigma,
                       sigma * (1 - stdev_max_change), sigma * (1 + stdev_max_change))

    With ``symmetric=False`` (``P`` samples ``mu + eps_i``) the sums run over all
    ``P`` with ``(u_i - b)`` in both and ``1/P`` in front. ``step`` is:

    * ``clipup`` (Toklu et al. 2020): ``v <- momentum v + center_lr g / |g|``, then
      ``v <- v * min(1, max_speed / |v|)`` and ``mu <- mu + v``: a normalised gradient
      step whose speed never exceeds ``max_speed`` (default ``2 * center_lr``, the
      paper's recommendation).
    * ``adam``: Adam (bias-corrected, ascent) with ``adam_betas``, ``adam_eps``.
    * ``sgd``: ``v <- momentum v + g``, ``mu <- mu + center_lr v``.

    ``stdev_max_change=None`` lifts the relative clamp; ``sigma`` is then floored at the
    dtype's smallest positive normal number to stay a valid standard deviation.

    Args:
        dim: ``D``.
        pop_size: ``P`` (>= 2; even when ``symmetric``).
        center_init: Initial ``mu``: a number or a ``(D,)`` tensor (e.g.
            :func:`~colonylab.collective_ml.base.flatten_params` of a network).
        stdev_init: Initial ``sigma`` (> 0): a number or ``(D,)``.
        center_lr: Step size of the mean; default 0.15 (clipup), 0.05 (adam, sgd).
        stdev_lr: Step size of ``sigma``.
        optimizer: ``clipup``, ``adam`` or ``sgd``.
        max_speed: ClipUp's speed limit; default ``2 * center_lr``.
        momentum: ClipUp's and SGD's momentum, in ``[0, 1)``.
        stdev_max_change: Largest relative change of ``sigma`` per generation (in
            ``(0, 1)``) or None.
        symmetric: Antithetic pairs ``mu +- eps`` (needs an even ``P``).
        adam_betas, adam_eps: Adam's coefficients.
        seed, device, dtype, maximize: See
            :class:`~colonylab.collective_ml.base.PopulationOptimizer`.
    """

    def __init__(
        self,
        dim: int,
        pop_size: int,
        *,
        center_init: float | Tensor | Sequence[float] = 0.0,
        stdev_init: float | Tensor | Sequence[float] = 0.1,
        center_lr: float | None = None,
        stdev_lr: float = 0.1,
        optimizer: str = "clipup",
        max_speed: float | None = None,
        momentum: float = 0.9,
        stdev_max_change: float | None = 0.2,
        symmetric: bool = True,
        adam_betas: tuple[float, float] = (0.9, 0.999),
        adam_eps: float = 1e-8,
        seed: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        maximize: bool = False,
    ) -> None:
        stepper = _stepper_args(
            optimizer, OPTIMIZERS, "center_lr", center_lr, momentum, max_speed, adam_betas, adam_eps
        )
        self.stdev_lr = _positive("stdev_lr", stdev_lr, allow_zero=True)
        if stdev_max_change is not None and not (
            isinstance(stdev_max_change, (int, float)) and 0 < stdev_max_change < 1
        ):
            raise ValueError(
                f"stdev_max_change must be in (0, 1) or None, got {stdev_max_change!r}"
            )
        self.stdev_max_change = stdev_max_change
        self.optimizer = optimizer
        self.center_lr = stepper["lr"]
        self.max_speed = stepper["max_speed"]
        super().__init__(
            dim,
            pop_size,
            center_init=center_init,
            stdev=stdev_init,
            stdev_name="stdev_init",
            antithetic=symmetric,
            stepper=stepper,
            seed=seed,
            device=device,
            dtype=dtype,
            maximize=maximize,
        )

    def _update(self, utility: Tensor, z: Tensor) -> None:
        sigma, h = self._stdev, z.shape[0]  # (D,); h directions: P/2 pairs or P samples
        if self.antithetic:
            plus, minus = utility[:h], utility[h:]
            g_mu = sigma * (((plus - minus) / 2) @ z) / h  # (D,)
            weight = (plus + minus) / 2 - utility.mean()  # (h,)
        else:
            weight = utility - utility.mean()  # (P,)
            g_mu = sigma * (weight @ z) / h
        g_sigma = sigma * (weight @ (z * z - 1)) / h  # (D,)
        self._center = self._center + self._stepper(g_mu)
        new_sigma = sigma + self.stdev_lr * g_sigma
        if self.stdev_max_change is not None:
            c = self.stdev_max_change
            new_sigma = torch.minimum(torch.maximum(new_sigma, sigma * (1 - c)), sigma * (1 + c))
        self._stdev = new_sigma.clamp_min(torch.finfo(self.dtype).tiny)

    @property
    def stdev(self) -> Tensor:
        """``(D,)`` current ``sigma`` (a copy)."""
        return self._stdev.clone()

    @property
    def velocity(self) -> Tensor:
        """``(D,)`` ClipUp's (or SGD's momentum) velocity (a copy); zeros under Adam."""
        return self._stepper.velocity.clone()


class OpenAIES(_GaussianES):
    """OpenAI's evolution strategy (Salimans et al. 2017). LOWER FITNESS IS BETTER.

    Candidates ``theta + sigma z_i`` with a fixed scalar ``sigma`` (antithetic pairs
    ``+-z_i`` by default). With utilities ``u_i`` (centred ranks, best ``+0.5``; see the
    module doc) every :meth:`tell` computes the paper's estimator and decays the
    weights::

        g     = 1 / (P sigma) sum_{i<P} u_i z_i          # antithetic: z_{i+h} = -z_i
        theta <- theta + step(g - weight_decay * theta)  # Adam (ascent) or SGD-momentum

    Args:
        dim: ``D``.
        pop_size: ``P`` (>= 2; even when ``antithetic``).
        center_init: Initial ``theta``: a number or ``(D,)``.
        sigma: Noise standard deviation (> 0), fixed.
        lr: Step size (Adam's ``alpha`` or SGD's learning rate).
        antithetic: Mirrored pairs ``theta +- sigma z``.
        weight_decay: L2 coefficient (the paper's 0.005 for networks; default 0).
        optimizer: ``adam`` or ``sgd``.
        momentum: SGD's momentum, in ``[0, 1)``.
        adam_betas, adam_eps: Adam's coefficients.
        seed, device, dtype, maximize: See
            :class:`~colonylab.collective_ml.base.PopulationOptimizer`.
    """

    def __init__(
        self,
        dim: int,
        pop_size: int,
        *,
        center_init: float | Tensor | Sequence[float] = 0.0,
        sigma: float = 0.05,
        lr: float = 0.01,
        antithetic: bool = True,
        weight_decay: float = 0.0,
        optimizer: str = "adam",
        momentum: float = 0.9,
        adam_betas: tuple[float, float] = (0.9, 0.999),
        adam_eps: float = 1e-8,
        seed: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        maximize: bool = False,
    ) -> None:
        stepper = _stepper_args(
            optimizer, ("adam", "sgd"), "lr", lr, momentum, None, adam_betas, adam_eps
        )
        self.sigma = _positive("sigma", sigma)
        self.lr = stepper["lr"]
        self.weight_decay = _positive("weight_decay", weight_decay, allow_zero=True)
        self.optimizer = optimizer
        super().__init__(
            dim,
            pop_size,
            center_init=center_init,
            stdev=self.sigma,
            stdev_name="sigma",
            antithetic=antithetic,
            stepper=stepper,
            seed=seed,
            device=device,
            dtype=dtype,
            maximize=maximize,
        )

    def _update(self, utility: Tensor, z: Tensor) -> None:
        if self.antithetic:
            h = z.shape[0]
            weight = utility[:h] - utility[h:]  # (h,): u+_i z_i + u-_i (-z_i)
        else:
            weight = utility  # (P,)
        g = (weight @ z) / (self.pop_size * self.sigma)  # (D,)
        if self.weight_decay:
            g = g - self.weight_decay * self._center
        self._center = self._center + self._stepper(g)


# -- CMA-ES through the cma package ---------------------------------------------------------------
class _Randn:
    """``randn(*shape)`` for ``cma``'s ``randn`` option, from an owned NumPy generator.

    Its generator's state is saved with the strategy's numbers, and numpy's global
    generator is never seeded or drawn from for sampling.
    """

    def __init__(self, seed: int) -> None:
        self.rng = np.random.Generator(np.random.PCG64(seed))

    def __call__(self, *shape: int) -> np.ndarray:
        return self.rng.standard_normal(shape)


_CMA_RESERVED = ("popsize", "seed", "randn", "bounds")


class CMAES(PopulationOptimizer):
    """CMA-ES (Hansen) from the ``cma`` package behind ask/tell. LOWER FITNESS IS BETTER.

    A thin adapter: :meth:`ask` stacks ``cma``'s list of candidate arrays into a
    ``(P, D)`` tensor, :meth:`tell` hands ``cma`` back the very arrays it asked with and
    the fitness as a list of floats. Nothing of CMA-ES is re-implemented here.

    * Randomness: ``cma``'s ``randn`` option is an owned ``PCG64`` generator seeded with
      ``seed`` (``cma``'s own ``seed`` option is ``nan``, so numpy's global generator is
      not seeded).
    * NaN/inf fitness (``+inf`` after the base check, counted) is handed to ``cma`` as a
      finite worst value, ``max_finite + 1 + |max_finite|`` (0 if nothing is finite),
      which keeps it ranked last without feeding infinities into ``cma``'s arithmetic.
    * State: ``state_dict()["state"]["cma"]`` holds the strategy's numbers only: its
      arrays (as tensors), numbers, booleans and containers of them, walked from the
      ``cma`` objects' attributes (:func:`_encode_cma`), plus the pending candidates.
      Nothing is pickled: :meth:`load_state_dict` builds a fresh strategy from this
      core's own arguments and writes those numbers into it (:func:`_overlay_cma`), so
      every class, string, option and callable comes from the fresh strategy, never from
      the checkpoint, and a crafted state cannot run code (an old pickled blob is
      refused). The owned generator's state is restored too, so a resumed run is
      bit-identical (with the same ``cma`` version).

    Args:
        dim: ``D``.
        pop_size: ``P`` (>= 2); default ``cma``'s ``4 + floor(3 ln D)``.
        x0: Initial mean: a number or ``(D,)``.
        sigma0: Initial step size (> 0), about a quarter of the search range.
        bounds: None or ``(lo, hi)`` (numbers or ``(D,)``, ``lo < hi``), handled by
            ``cma``'s ``BoundTransform``: every candidate asked lies inside.
        options: More ``cma`` options (``CMA_diagonal``, ``tolfun``, ...); ``popsize``,
            ``seed``, ``randn`` and ``bounds`` are set by the arguments above.
        seed, device, dtype, maximize: See
            :class:`~colonylab.collective_ml.base.PopulationOptimizer`. ``cma`` computes
            in float64 on the CPU; candidates are cast to ``dtype`` on ``device``.
    """

    def __init__(
        self,
        dim: int,
        pop_size: int | None = None,
        *,
        x0: float | Tensor | Sequence[float] = 0.0,
        sigma0: float = 0.5,
        bounds: tuple[Any, Any] | None = None,
        options: dict[str, Any] | None = None,
        seed: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        maximize: bool = False,
    ) -> None:
        if pop_size is None and isinstance(dim, int) and not isinstance(dim, bool) and dim >= 1:
            pop_size = 4 + int(3 * math.log(dim))
        super().__init__(dim, pop_size, seed=seed, device=device, dtype=dtype, maximize=maximize)  # type: ignore[arg-type]
        if self.pop_size < 2:
            raise ValueError(f"pop_size must be >= 2 for CMA-ES, got {self.pop_size}")
        cpu = torch.device("cpu")
        mean0 = _vector("x0", x0, dim, torch.float64, cpu).numpy()
        self.sigma0 = _positive("sigma0", sigma0)
        opts: dict[str, Any] = dict(options or {})
        clash = sorted(set(opts) & set(_CMA_RESERVED))
        if clash:
            raise ValueError(
                f"options {clash} are set by CMAES's own arguments (pop_size, seed, bounds); "
                "pass them there"
            )
        if bounds is not None:
            if len(bounds) != 2:
                raise ValueError(f"bounds must be (lo, hi), got {bounds!r}")
            lo = _vector("bounds[0]", bounds[0], dim, torch.float64, cpu)
            hi = _vector("bounds[1]", bounds[1], dim, torch.float64, cpu)
            if not bool((lo < hi).all()):
                raise ValueError(f"bounds need lo < hi in every dimension, got {bounds!r}")
            opts["bounds"] = [lo.tolist(), hi.tolist()]
        opts.update(popsize=self.pop_size, seed=math.nan)
        opts.setdefault("verbose", -9)
        opts.setdefault("verb_disp", 0)
        opts.setdefault("verb_log", 0)  # no outcmaes/ files in the working directory
        self._mean0, self._options = mean0, opts
        self._es = self._build_strategy()
        self._solutions: list[np.ndarray] | None = None  # cma's arrays of the pending ask
        self._pop: Tensor | None = None  # (P, D)
        self._best_x = torch.as_tensor(mean0, dtype=dtype).to(self.device)  # (D,)
        self._best_f = torch.full((), math.inf, dtype=dtype, device=self.device)

    def _build_strategy(self) -> Any:
        """A fresh ``cma`` strategy from this core's arguments (and a fresh generator)."""
        import cma  # a core dependency, imported here because it takes ~1 s

        options = {**self._options, "randn": _Randn(self.seed)}
        return cma.CMAEvolutionStrategy(self._mean0.copy(), self.sigma0, options)

    def ask(self) -> Tensor:
        """``(P, D)`` candidates from ``cma`` (the same ones until :meth:`tell`)."""
        if self._solutions is None:
            self._solutions = self._es.ask()
        if self._pop is None:
            self._pop = torch.as_tensor(np.stack(self._solutions), dtype=self.dtype).to(self.device)
        return self._pop

    def _tell(self, fitness: Tensor) -> None:
        if self._solutions is None or self._pop is None:
            raise RuntimeError("CMAES.tell() needs the candidates of an ask() first")
        best_i = fitness.argmin()
        better = fitness[best_i] < self._best_f
        self._best_f = torch.where(better, fitness[best_i], self._best_f)
        self._best_x = torch.where(better, self._pop[best_i], self._best_x)
        values = fitness.detach().to("cpu", torch.float64).numpy().copy()  # (P,)
        finite = np.isfinite(values)
        if not finite.all():
            top = float(values[finite].max()) if finite.any() else -1.0
            values[~finite] = top + 1.0 + abs(top)
        self._es.tell(self._solutions, values.tolist())
        self._solutions = self._pop = None

    @property
    def center(self) -> Tensor:
        """``(D,)`` the distribution's mean (``cma``'s ``xfavorite``, inside the bounds)."""
        return torch.as_tensor(self._es.result.xfavorite, dtype=self.dtype).to(self.device)

    @property
    def sigma(self) -> float:
        """``cma``'s current overall step size."""
        return float(self._es.sigma)

    @property
    def stop(self) -> dict[str, Any]:
        """``cma``'s termination criteria met so far (empty while none is); advisory."""
        return dict(self._es.stop())

    @property
    def strategy(self) -> Any:
        """The wrapped ``cma.CMAEvolutionStrategy`` (for inspection; do not ask/tell it)."""
        return self._es

    def _best(self) -> tuple[Tensor, Tensor]:
        return self._best_x, self._best_f

    def _state(self) -> dict[str, Any]:
        return {
            "cma": _encode_cma(self._es),
            "solutions": None
            if self._solutions is None
            else [_encode_cma(x) for x in self._solutions],
            "best_x": self._best_x,
            "best_f": self._best_f,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        if tuple(state["best_x"].shape) != (self.dim,):
            raise ValueError(
                f"state best_x has shape {tuple(state['best_x'].shape)}, want ({self.dim},)"
            )
        saved = state["cma"]
        if not isinstance(saved, dict) or "__o__" not in saved:
            raise ValueError(
                "the CMA-ES state is not the numbers-only format this version writes (an old "
                "pickled strategy is refused: unpickling could run code); start a new run"
            )
        # a fresh strategy from this core's own arguments, then the saved numbers
        strategy = self._build_strategy()
        _overlay_cma(strategy, saved, [])  # raises ValueError on anything but numbers
        if strategy.countiter > 0 and not hasattr(strategy, "timer"):
            from cma.utilities.utils import ElapsedWCTime  # made by the first ask()

            strategy.timer = ElapsedWCTime()
        if (strategy.N, strategy.popsize) != (self.dim, self.pop_size):
            raise ValueError(
                f"state holds a cma strategy with dim={strategy.N}, pop_size={strategy.popsize}; "
                f"this optimizer has dim={self.dim}, pop_size={self.pop_size}"
            )
        solutions = state.get("solutions")
        pending = None
        if solutions is not None:
            pending = [_restore(x, _MISSING, []) for x in solutions]
            if not all(isinstance(x, np.ndarray) and x.shape == (self.dim,) for x in pending):
                raise ValueError(f"state solutions must be ({self.dim},) arrays")
        kw = {"dtype": self.dtype, "device": self.device}
        self._es, self._solutions, self._pop = strategy, pending, None
        self._best_x = state["best_x"].to(**kw).clone()
        self._best_f = state["best_f"].to(**kw).clone()


# -- the CMA-ES strategy as numbers --------------------------------------------------------------
_ARRAY_DTYPES = {
    name: np.dtype(name)
    for name in (
        "float64",
        "float32",
        "float16",
        "int64",
        "int32",
        "int16",
        "int8",
        "uint8",
        "bool",
    )
}
_CMA_SKIPPED = frozenset({"opts", "inopts", "inputargs", "_es_opts", "logger", "timer"})
"""Attributes never saved: options and inputs (rebuilt from the core's arguments), the
logger and the wall-clock timer."""


def _is_instance(value: Any) -> bool:
    return hasattr(value, "__dict__") and not isinstance(
        value, (type, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
                types.ModuleType, np.ufunc, functools.partial)
    ) and not callable(getattr(value, "__wrapped__", None))  # fmt: skip


def _encode_cma(value: Any, memo: dict[int, int] | None = None) -> Any:
    """``value`` as tensors, numbers, booleans, None and containers; objects as their
    attributes (``{"__o__": ...}``), repeated objects and arrays as ``{"__ref__": n}``.
    Strings, callables, classes and ``cma``'s options are not saved (``_SKIP``): the
    fresh strategy has them (``{"__keep__": True}`` marks their place in a container)."""
    memo = {} if memo is None else memo
    if value is None or type(value) in (bool, int, float):
        return value
    if isinstance(value, (np.ndarray, np.generic)):  # np.float64 is a float: tagged here
        if id(value) in memo:
            return {"__ref__": memo[id(value)]}
        dtype = np.asarray(value).dtype
        if dtype.name not in _ARRAY_DTYPES:
            return _SKIP
        if isinstance(value, np.ndarray):
            memo[id(value)] = len(memo)
        array = np.array(value, copy=True, order="C")  # 0-d for a scalar
        return {"__a__": torch.from_numpy(array), "dtype": dtype.name,
                "scalar": isinstance(value, np.generic)}  # fmt: skip
    if isinstance(value, np.random.Generator):
        state = value.bit_generator.state
        return {"__rng__": {k: v for k, v in state.items() if k != "bit_generator"}}
    if type(value) in (list, tuple):
        return {"__l__" if type(value) is list else "__t__": _encode_sequence(value, memo)}
    if type(value) is dict:
        return {"__d__": _encode_items(value, memo)}
    if _is_instance(value) and type(value).__name__ not in _CMA_SKIPPED_TYPES:
        if id(value) in memo:
            return {"__ref__": memo[id(value)]}
        memo[id(value)] = len(memo)
        out: dict[str, Any] = {"__o__": {}}
        for key, item in vars(value).items():
            if key in _CMA_SKIPPED or key.startswith("__"):
                continue
            encoded = _encode_cma(item, memo)
            if encoded is not _SKIP:
                out["__o__"][key] = encoded
        if isinstance(value, dict):
            out["__items__"] = _encode_items(value, memo)
        elif isinstance(value, list):
            out["__items__"] = _encode_sequence(value, memo)
        return out
    return _SKIP  # a string, a callable, a class, the options: the fresh strategy's own


_SKIP = object()
_KEEP = {"__keep__": True}
_CMA_SKIPPED_TYPES = frozenset({"CMAOptions"})
_PLAIN_KEYS = (int, float, bool, str)


def _encode_sequence(items: Any, memo: dict[int, int]) -> list[Any]:
    encoded = [_encode_cma(v, memo) for v in items]
    return [_KEEP if v is _SKIP else v for v in encoded]


def _encode_items(mapping: dict, memo: dict[int, int]) -> list[list[Any]]:
    pairs = []
    for key, item in mapping.items():
        key = key.item() if isinstance(key, np.generic) else key
        if type(key) not in _PLAIN_KEYS:
            continue  # kept from the fresh strategy (see _restore)
        encoded = _encode_cma(item, memo)
        pairs.append([key, _KEEP if encoded is _SKIP else encoded])
    return pairs


def _refuse(what: str) -> ValueError:
    return ValueError(f"the CMA-ES state holds {what}; refused (only numbers, arrays and "
                      "containers are read back)")  # fmt: skip


_MISSING = object()


def _restore(saved: Any, current: Any, refs: list[Any]) -> Any:
    """The value to store where the fresh strategy holds ``current``: ``saved`` (an
    :func:`_encode_cma` result) decoded, objects written into ``current`` in place.
    Nothing is instantiated except arrays, numbers and containers."""
    if saved is None or type(saved) in (bool, int, float):
        return saved
    if not isinstance(saved, dict):
        raise _refuse(f"a {type(saved).__name__}")
    if saved == _KEEP:
        if current is _MISSING:
            raise _refuse("a kept value the fresh strategy does not have")
        return current
    if "__ref__" in saved:
        index = saved["__ref__"]
        if type(index) is not int or not 0 <= index < len(refs):
            raise _refuse(f"a bad reference {index!r}")
        return refs[index]
    if "__a__" in saved:
        dtype = _ARRAY_DTYPES.get(saved.get("dtype"))
        tensor = saved["__a__"]
        if dtype is None or not isinstance(tensor, torch.Tensor):
            raise _refuse(f"an array of dtype {saved.get('dtype')!r}")
        array = tensor.numpy().astype(dtype, copy=True)
        if saved.get("scalar"):
            return array[()]
        refs.append(array)
        return array
    if "__o__" in saved:
        _overlay_cma(current, saved, refs)
        return current
    if "__rng__" in saved:
        if not isinstance(current, np.random.Generator):
            raise _refuse(f"a generator where the strategy has a {type(current).__name__}")
        name = current.bit_generator.state["bit_generator"]
        current.bit_generator.state = {"bit_generator": name, **dict(saved["__rng__"])}
        return current
    if "__l__" in saved or "__t__" in saved:
        items = _restore_sequence(saved.get("__l__", saved.get("__t__")), current, refs)
        return items if "__l__" in saved else tuple(items)
    if "__d__" in saved:
        return _restore_items(saved["__d__"], current, refs)
    raise _refuse(f"an entry with keys {sorted(map(str, saved))[:4]}")


def _restore_sequence(saved: Any, current: Any, refs: list[Any]) -> list[Any]:
    if not isinstance(saved, (list, tuple)):
        raise _refuse(f"a {type(saved).__name__} where a list belongs")
    old = list(current) if isinstance(current, (list, tuple)) else []
    return [_restore(v, old[i] if i < len(old) else _MISSING, refs) for i, v in enumerate(saved)]


def _restore_items(saved: Any, current: Any, refs: list[Any]) -> dict[Any, Any]:
    if not isinstance(saved, (list, tuple)):
        raise _refuse(f"a {type(saved).__name__} where dict items belong")
    old = current if isinstance(current, dict) else {}
    out: dict[Any, Any] = {}
    for pair in saved:
        if (
            not isinstance(pair, (list, tuple))
            or len(pair) != 2
            or type(pair[0]) not in _PLAIN_KEYS
        ):
            raise _refuse(f"a dict item {pair!r:.60}")
        out[pair[0]] = _restore(pair[1], old.get(pair[0], _MISSING), refs)
    out.update({k: v for k, v in old.items() if type(k) not in _PLAIN_KEYS})
    return out


def _overlay_cma(target: Any, saved: dict[str, Any], refs: list[Any]) -> None:
    """Write the numbers of ``saved`` (an ``{"__o__": ...}`` of :func:`_encode_cma`) into
    the existing object ``target`` of a fresh strategy."""
    if not _is_instance(target):
        raise _refuse(f"an object where the strategy has a {type(target).__name__}")
    refs.append(target)
    attributes = saved.get("__o__")
    if not isinstance(attributes, dict):
        raise _refuse("an object without attributes")
    for key, encoded in attributes.items():
        if not isinstance(key, str) or key.startswith("__") or key in _CMA_SKIPPED:
            raise _refuse(f"the attribute {key!r}")
        vars(target)[key] = _restore(encoded, vars(target).get(key, _MISSING), refs)
    if "__items__" in saved:
        if isinstance(target, dict):
            items = _restore_items(saved["__items__"], dict(target), refs)
            target.clear()
            target.update(items)
        elif isinstance(target, list):
            target[:] = _restore_sequence(saved["__items__"], list(target), refs)
        else:
            raise _refuse(f"items for a {type(target).__name__}")
