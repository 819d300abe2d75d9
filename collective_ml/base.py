"""The ask/tell interface every population core speaks, and flat-parameter utilities.

A population optimizer holds ``P`` candidate solutions, each a flat parameter
vector of length ``D``, as one tensor on one device::

    opt = PSO(dim=30, pop_size=100, bounds=(-5.0, 5.0), seed=0)
    for _ in range(iterations):
        params = opt.ask()            # (P, D) tensor, opt.dtype on opt.device
        fitness = evaluate(params)    # (P,) tensor
        opt.tell(fitness)
    params, value = opt.best

**Lower fitness is better.** Every core minimises. To maximise a reward, build the
core with ``maximize=True`` (``tell`` then negates internally and ``best`` reports
the value as given) or tell ``-reward``.

Fitness checks shared by every core (in :meth:`PopulationOptimizer.tell`):

* a fitness of the wrong shape is refused with a ``ValueError`` naming the shape;
* NaN and +-inf are treated as the worst possible value (``+inf`` after the sign
  flip of ``maximize``), counted in :attr:`~PopulationOptimizer.nonfinite_count`,
  and reported once with a ``RuntimeWarning``. They never enter the swarm's
  arithmetic, so a diverging objective cannot make the positions NaN.

Every core owns its random generator, seeded from ``seed`` (global RNGs are never
touched): on the CPU a NumPy ``PCG64`` generator, which draws uniforms about twice
as fast as torch's CPU generator (random draws are a large share of a small
swarm's step); elsewhere a ``torch.Generator`` on the device. Draw through
:meth:`~PopulationOptimizer.uniform`, :meth:`~PopulationOptimizer.normal` and
:meth:`~PopulationOptimizer.randint`.
``state_dict()`` holds the generator state, so ``load_state_dict(state_dict())``
into a fresh core built with the same arguments continues bit-identically (the same
seed gives the same run on the same kind of device; CPU and CUDA streams differ).
State dicts load with ``torch.load(weights_only=True)``.

Flat vectors and torch modules: :func:`num_params`, :func:`flatten_params`,
:func:`unflatten_into`, :func:`params_dict_from_flat` (one vector ->
``functional_call``) and :func:`batched_params_dict` (``(P, D)`` -> dict of
``(P, ...)`` for ``torch.vmap``).
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "Best",
    "PopulationOptimizer",
    "batched_params_dict",
    "flatten_params",
    "num_params",
    "params_dict_from_flat",
    "unflatten_into",
]


class Best(NamedTuple):
    """The best solution seen so far."""

    params: Tensor
    """``(D,)`` parameters (a copy)."""
    fitness: float
    """Its fitness, in the caller's sign (higher is better under ``maximize=True``)."""


class PopulationOptimizer(ABC):
    """Ask/tell over a population of flat parameter vectors. LOWER FITNESS IS BETTER.

    Subclasses implement :meth:`ask`, :meth:`_tell` (receives a checked fitness of
    shape ``(P,)``, finite or ``+inf``, always lower-is-better), :attr:`best`
    (through :meth:`_best`), :meth:`_state` and :meth:`_load_state`.

    Args:
        dim: ``D``, parameters per candidate.
        pop_size: ``P``, candidates per generation.
        seed: Seed of the optimizer's own generator (global RNGs are never touched).
        device: Torch device of every tensor (default: CPU).
        dtype: ``torch.float32`` or ``torch.float64``.
        maximize: ``True`` when larger fitness is better (internally negated).
    """

    def __init__(
        self,
        dim: int,
        pop_size: int,
        *,
        seed: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        maximize: bool = False,
    ) -> None:
        for name, value in (("dim", dim), ("pop_size", pop_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
        self.dim = dim
        self.pop_size = pop_size
        self.seed = seed
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype
        self.maximize = bool(maximize)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self._np_rng = (
            np.random.Generator(np.random.PCG64(seed)) if self.device.type == "cpu" else None
        )
        self._np_dtype = np.float32 if dtype == torch.float32 else np.float64
        self.generations = 0
        """Completed ``tell`` calls."""
        self._nonfinite = 0
        # On the CPU a count is read for free; on an accelerator it stays a device
        # tensor until asked for, so ``tell`` never waits on the device.
        self._eager = self.device.type == "cpu"
        self._nonfinite_pending: Tensor | None = None
        self._warned = False

    # -- the interface ------------------------------------------------------------------------
    @abstractmethod
    def ask(self) -> Tensor:
        """The candidates to evaluate: ``(P, D)``, :attr:`dtype`, on :attr:`device`.

        Asking again before :meth:`tell` returns the same candidates. The core never
        writes into a tensor it has returned.
        """

    def tell(self, fitness: Tensor) -> None:
        """Report the fitness of the candidates of the last :meth:`ask`.

        Args:
            fitness: ``(P,)``, LOWER IS BETTER (unless ``maximize=True``). Any real
                dtype and device; NaN/inf count as the worst value (see the module doc).

        Raises:
            ValueError: ``fitness`` is not of shape ``(P,)``.
        """
        self._tell(self._check_fitness(fitness))
        self.generations += 1

    @abstractmethod
    def _tell(self, fitness: Tensor) -> None:
        """Update from a checked fitness: ``(P,)``, finite or ``+inf``, lower is better."""

    @property
    def best(self) -> Best:
        """``(params (D,), fitness)`` of the best candidate seen, fitness in the caller's sign."""
        params, value = self._best()
        value = float(value)
        return Best(params.detach().clone(), -value if self.maximize else value)

    @abstractmethod
    def _best(self) -> tuple[Tensor, Tensor | float]:
        """Best params ``(D,)`` and its internal (lower-is-better) fitness."""

    @property
    def nonfinite_count(self) -> int:
        """Fitness values told so far that were NaN or +-inf (treated as the worst)."""
        self._flush_nonfinite()
        return self._nonfinite

    def optimize(self, objective: Callable[[Tensor], Tensor], iterations: int) -> Best:
        """Run ``iterations`` rounds of ``tell(objective(ask()))`` and return :attr:`best`.

        Args:
            objective: Batched, ``(P, D) -> (P,)``, lower is better (unless ``maximize``).
            iterations: Rounds to run (>= 0).
        """
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
            raise ValueError(f"iterations must be an integer >= 0, got {iterations!r}")
        for _ in range(iterations):
            self.tell(objective(self.ask()))
        return self.best

    # -- randomness -----------------------------------------------------------------------------
    def uniform(self, *shape: int) -> Tensor:
        """``U[0, 1)`` of :attr:`dtype` on :attr:`device`, from the optimizer's generator."""
        if self._np_rng is not None:
            return torch.from_numpy(self._np_rng.random(shape, dtype=self._np_dtype))
        return torch.rand(shape, generator=self.generator, device=self.device, dtype=self.dtype)

    def normal(self, *shape: int) -> Tensor:
        """``N(0, 1)`` of :attr:`dtype` on :attr:`device`, from the optimizer's generator."""
        if self._np_rng is not None:
            return torch.from_numpy(self._np_rng.standard_normal(shape, dtype=self._np_dtype))
        return torch.randn(shape, generator=self.generator, device=self.device, dtype=self.dtype)

    def randint(self, high: int, *shape: int) -> Tensor:
        """Integers uniform in ``[0, high)``, int64 on :attr:`device`."""
        if self._np_rng is not None:
            return torch.from_numpy(self._np_rng.integers(0, high, shape, dtype=np.int64))
        return torch.randint(high, shape, generator=self.generator, device=self.device)

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs, including the generator state.

        Tensors are copies; loadable with ``torch.load(weights_only=True)``.
        """
        self._flush_nonfinite()
        state = {
            k: v.detach().clone() if isinstance(v, Tensor) else v for k, v in self._state().items()
        }
        return {
            "kind": type(self).__name__,
            "dim": self.dim,
            "pop_size": self.pop_size,
            "generations": self.generations,
            "nonfinite_count": self._nonfinite,
            "generator": self.generator.get_state(),
            "numpy_generator": None if self._np_rng is None else self._np_rng.bit_generator.state,
            "state": state,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output into a core built with the same arguments.

        Raises:
            ValueError: the state belongs to another kind of core or another shape.
        """
        want = {"kind": type(self).__name__, "dim": self.dim, "pop_size": self.pop_size}
        got = {k: state_dict.get(k) for k in want}
        if got != want:
            raise ValueError(
                f"state_dict is for {got}, this optimizer is {want}; build the optimizer "
                "with the arguments the state was saved from"
            )
        inner = {
            k: v.to(self.device) if isinstance(v, Tensor) and v.is_floating_point() else v
            for k, v in state_dict["state"].items()
        }
        self._load_state(inner)
        self.generator.set_state(state_dict["generator"])
        if self._np_rng is not None:
            if state_dict.get("numpy_generator") is None:
                raise ValueError(
                    "state_dict was saved on another kind of device (no CPU generator state); "
                    "resume on the device it was saved from"
                )
            self._np_rng.bit_generator.state = state_dict["numpy_generator"]
        self.generations = int(state_dict["generations"])
        self._nonfinite = int(state_dict["nonfinite_count"])
        self._nonfinite_pending = None

    @abstractmethod
    def _state(self) -> dict[str, Any]:
        """The subclass's tensors and scalars."""

    @abstractmethod
    def _load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_state` returned."""

    # -- fitness checks -------------------------------------------------------------------------
    def _check_fitness(self, fitness: Tensor) -> Tensor:
        """``fitness`` as a ``(P,)`` tensor of :attr:`dtype` on :attr:`device`, lower is
        better, NaN/inf replaced by ``+inf`` (counted)."""
        f = torch.as_tensor(fitness).detach()  # never carry an autograd graph into the state
        if f.shape != (self.pop_size,):
            raise ValueError(
                f"fitness must have shape ({self.pop_size},), one value per candidate from "
                f"ask(), got shape {tuple(f.shape)}; reduce per-candidate results to one "
                "number each (lower is better)"
            )
        if f.is_complex() or f.dtype == torch.bool:
            raise ValueError(f"fitness must be real numbers, got dtype {f.dtype}")
        f = f.to(device=self.device, dtype=self.dtype)
        if self.maximize:
            f = -f
        if self._eager:
            # One reduction on the hot path: a finite sum means every value is finite.
            if math.isfinite(float(f.sum())):
                return f
            finite = torch.isfinite(f)
            self._count_nonfinite(int(finite.numel() - finite.sum()))
        else:
            finite = torch.isfinite(f)
            bad = (~finite).sum()
            self._nonfinite_pending = (
                bad if self._nonfinite_pending is None else self._nonfinite_pending + bad
            )
        return torch.where(finite, f, torch.inf)

    def _flush_nonfinite(self) -> None:
        if self._nonfinite_pending is not None:
            pending, self._nonfinite_pending = self._nonfinite_pending, None
            self._count_nonfinite(int(pending))

    def _count_nonfinite(self, n: int) -> None:
        if n <= 0:
            return
        self._nonfinite += n
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"{type(self).__name__}: {n} NaN/inf fitness value(s) told; they count as the "
                "worst fitness (see nonfinite_count). Reported once.",
                RuntimeWarning,
                stacklevel=4,
            )


# -- flat vectors <-> modules -------------------------------------------------------------------
def num_params(module: nn.Module) -> int:
    """Number of scalars in ``module.parameters()`` (the ``D`` of its flat vector)."""
    return sum(p.numel() for p in module.parameters())


def flatten_params(module: nn.Module) -> Tensor:
    """``module``'s parameters as one detached ``(D,)`` vector, in ``named_parameters`` order."""
    params = [p.detach().reshape(-1) for p in module.parameters()]
    if not params:
        raise ValueError(f"{type(module).__name__} has no parameters to flatten")
    return torch.cat(params)


def _check_flat(module: nn.Module, vec: Tensor, batched: bool) -> int:
    d = num_params(module)
    want = ("P", d) if batched else (d,)
    ok = vec.dim() == len(want) and vec.shape[-1] == d
    if not ok:
        raise ValueError(
            f"flat parameters for {type(module).__name__} must have shape "
            f"{want if batched else (d,)} (num_params = {d}), got {tuple(vec.shape)}"
        )
    return d


def unflatten_into(module: nn.Module, vec: Tensor) -> nn.Module:
    """Copy the ``(D,)`` vector ``vec`` into ``module``'s parameters in place; returns it."""
    _check_flat(module, vec, batched=False)
    with torch.no_grad():
        offset = 0
        for p in module.parameters():
            n = p.numel()
            p.copy_(vec[offset : offset + n].view_as(p))
            offset += n
    return module


def params_dict_from_flat(module: nn.Module, vec: Tensor) -> dict[str, Tensor]:
    """``{name: view of vec}`` shaped like ``module``'s parameters, for
    ``torch.func.functional_call(module, params, args)``. Views keep ``vec``'s autograd
    graph, so gradients flow back to the flat vector."""
    _check_flat(module, vec, batched=False)
    out: dict[str, Tensor] = {}
    offset = 0
    for name, p in module.named_parameters():
        n = p.numel()
        out[name] = vec[offset : offset + n].view(p.shape)
        offset += n
    return out


def batched_params_dict(module: nn.Module, population: Tensor) -> dict[str, Tensor]:
    """``(P, D)`` -> ``{name: (P, *param.shape)}`` views, for ``torch.vmap`` over
    ``functional_call``::

        params = batched_params_dict(net, population)
        out = torch.vmap(lambda p, x: functional_call(net, p, (x,)), in_dims=(0, None))(params, x)
    """
    _check_flat(module, population, batched=True)
    pop = population.shape[0]
    out: dict[str, Tensor] = {}
    offset = 0
    for name, p in module.named_parameters():
        n = p.numel()
        out[name] = population[:, offset : offset + n].reshape(pop, *p.shape)
        offset += n
    return out
