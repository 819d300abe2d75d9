"""Particle swarm optimization: the whole swarm as one tensor, ask/tell, lower is better.

::

    from colonylab.collective_ml.pso import PSO, functions
    pso = PSO(dim=30, pop_size=100, bounds=(-5.12, 5.12), topology="ring", seed=0)
    for _ in range(1000):
        x = pso.ask()                       # (P, D)
        pso.tell(functions["rastrigin"](x)) # (P,), LOWER IS BETTER
    params, value = pso.best

Each particle ``i`` has a position ``x_i``, a velocity ``v_i`` and the best position
it has seen, ``p_i`` (fitness ``f(p_i)``). Its informants' best ``l_i`` is the best
``p_j`` over its neighbourhood ``N(i)`` (``i`` included). Every generation, with
``r1, r2 ~ U[0, 1)`` drawn per particle and per dimension::

    v_i <- w v_i + c1 r1 (p_i - x_i) + c2 r2 (l_i - x_i)
    x_i <- boundary(x_i + clamp(v_i, -v_max, v_max))

Variants:

``inertia``       the update above; defaults ``w = 0.7298``, ``c1 = c2 = 1.49618``
                  (Clerc & Kennedy 2002 / SPSO's constants).
``constriction``  ``v_i <- chi (v_i + c1 r1 (p_i - x_i) + c2 r2 (l_i - x_i))`` with
                  ``c1 = c2 = 2.05`` by default, ``phi = c1 + c2 = 4.1`` and Clerc's
                  ``chi = 2 / |2 - phi - sqrt(phi^2 - 4 phi)| = 0.72984`` (needs
                  ``phi > 4``). With the defaults both variants are the same equation
                  (``chi * 2.05 = 1.49618``); they differ when ``c1``/``c2`` change.

Topologies (``N(i)`` as index tensors; no Python loop over particles):

``gbest``        star: everyone informs everyone, ``l_i`` is the swarm's best.
``ring``         lbest: ``{i-1, i, i+1} mod P`` (k = 1 on each side, self included).
``von_neumann``  a ``rows x cols`` torus with ``rows * cols = P`` and rows the largest
                 divisor of ``P`` not above ``sqrt(P)`` (near-square; a prime ``P``
                 gives a 1 x P torus, i.e. a ring); ``N(i)`` = self, up, down, left,
                 right (row-major ids).
``random``       SPSO 2011's adaptive random topology: each particle informs
                 ``informants`` (K = 3) particles drawn uniformly with replacement, plus
                 itself; the links are re-drawn after every generation in which the
                 swarm's best did not improve.

Boundaries (applied per coordinate after the move):

``clamp``     absorbing wall: the coordinate is set to the bound, its velocity to 0.
``reflect``   mirrored back inside (overshoots of any length fold); the velocity
              component flips sign when the fold count is odd.
``periodic``  wraps around: ``lo + (x - lo) mod (hi - lo)``; velocity kept.
``random``    an out-of-bounds coordinate is re-drawn uniformly in ``[lo, hi]``.

``velocity_clamp`` (a fraction of ``hi - lo`` per dimension, or None) caps ``|v|``
coordinate by coordinate. ``velocity_norm_clamp`` (``kappa``, or None) caps the
whole step instead: with ``u_d = v_d / (hi_d - lo_d)`` (the velocity in box units),
a particle whose ``||u||_2 > kappa`` has its velocity scaled by ``kappa / ||u||_2``
(direction kept). A per-coordinate cap ``c`` lets a step span ``c sqrt(D)`` box
sides; the norm cap holds it to ``kappa`` in any ``D``, so it bites harder as
``D`` grows (each coordinate's RMS share is ``kappa / sqrt(D)``: 0.37 in 30-D,
0.2 in 100-D for ``kappa = 2``). Both may be set (coordinate cap first).

Linearly decreasing inertia (Shi & Eberhart 1998): ``w=(w_start, w_end)`` with
``iterations=T`` (the budget, in ``tell`` calls) moves the swarm with
``w_t = w_start + (w_end - w_start) t / (T - 1)`` after the ``t``-th tell
(``t = 0 .. T-1``), then ``w_end`` for any tell past the budget. The schedule is a
function of :attr:`generations`, so a restored ``state_dict`` resumes it exactly.

Initial positions are uniform in the bounds; initial velocities are SPSO 2006's
``(u - x_0) / 2`` with ``u`` uniform in the bounds.

:class:`HybridPSOGradient` adds a few gradient steps on the best particles' memories
each generation. ``functions`` holds batched test functions ``(P, D) -> (P,)`` with
their customary bounds (``benchmark_bounds``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from colonylab.collective_ml.base import PopulationOptimizer

__all__ = [
    "BOUNDARIES",
    "PSO",
    "TOPOLOGIES",
    "VARIANTS",
    "HybridPSOGradient",
    "benchmark_bounds",
    "constriction_coefficient",
    "functions",
    "ring_neighbours",
    "von_neumann_grid",
    "von_neumann_neighbours",
]

TOPOLOGIES = ("gbest", "ring", "von_neumann", "random")
VARIANTS = ("inertia", "constriction")
BOUNDARIES = ("clamp", "reflect", "periodic", "random")
INERTIA_W = 0.7298
INERTIA_C = 1.49618
CONSTRICTION_C = 2.05


def constriction_coefficient(phi: float = 4.1) -> float:
    """Clerc's constriction ``chi = 2 / |2 - phi - sqrt(phi^2 - 4 phi)|`` for ``phi > 4``."""
    if not phi > 4.0:
        raise ValueError(
            f"constriction needs phi = c1 + c2 > 4, got {phi!r}; the usual is c1 = c2 = 2.05"
        )
    return 2.0 / abs(2.0 - phi - math.sqrt(phi * phi - 4.0 * phi))


def ring_neighbours(pop_size: int, k: int = 1) -> Tensor:
    """``(P, 2k+1)`` int64: row ``i`` is ``i-k, ..., i, ..., i+k`` modulo ``P``."""
    offsets = torch.arange(-k, k + 1)
    return (torch.arange(pop_size).unsqueeze(1) + offsets).remainder(pop_size)


def von_neumann_grid(pop_size: int) -> tuple[int, int]:
    """``(rows, cols)`` of the near-square torus: rows = the largest divisor <= sqrt(P)."""
    rows = max(r for r in range(1, math.isqrt(pop_size) + 1) if pop_size % r == 0)
    return rows, pop_size // rows


def von_neumann_neighbours(pop_size: int) -> Tensor:
    """``(P, 5)`` int64: self, up, down, left, right on the :func:`von_neumann_grid` torus."""
    rows, cols = von_neumann_grid(pop_size)
    r = torch.arange(pop_size) // cols
    c = torch.arange(pop_size) % cols
    up = ((r - 1) % rows) * cols + c
    down = ((r + 1) % rows) * cols + c
    left = r * cols + (c - 1) % cols
    right = r * cols + (c + 1) % cols
    return torch.stack([r * cols + c, up, down, left, right], dim=1)


class PSO(PopulationOptimizer):
    """Particle swarm optimizer over ``(P, D)`` tensors. LOWER FITNESS IS BETTER.

    See the module docstring for the equations, topologies and boundary modes.

    Args:
        dim: ``D``, dimensions of the search space.
        pop_size: ``P``, particles. ``gbest`` works with any ``P >= 1`` (one particle
            degenerates to following its own best); the other topologies need ``P >= 3``.
        bounds: ``(lo, hi)``, scalars or ``(D,)`` tensors/sequences, ``lo < hi``
            everywhere. Initial positions are uniform in them and ``boundary`` keeps
            particles inside.
        topology: ``gbest``, ``ring``, ``von_neumann`` or ``random``.
        variant: ``inertia`` or ``constriction``.
        w: Inertia weight (``inertia`` only; default 0.7298), or ``(w_start, w_end)``:
            linearly decreasing over ``iterations`` tells (needs ``iterations``).
        c1: Cognitive coefficient (default 1.49618, or 2.05 for ``constriction``).
        c2: Social coefficient (default 1.49618, or 2.05 for ``constriction``).
        boundary: ``clamp``, ``reflect``, ``periodic`` or ``random``.
        velocity_clamp: ``|v|`` cap as a fraction of ``hi - lo`` per dimension; None: off.
        velocity_norm_clamp: ``kappa``, cap on the norm of the velocity in box units
            (``||v / (hi - lo)||_2``), direction kept; None: off.
        iterations: The run's budget in tells, for a ``(w_start, w_end)`` schedule
            (ignored by a constant ``w``).
        informants: K of the ``random`` topology.
        seed: Seed of the swarm's generator.
        device: Torch device (default CPU).
        dtype: ``torch.float32`` (default) or ``torch.float64``.
        maximize: Larger fitness is better (internally negated; see ``base``).

    Raises:
        ValueError: an unknown name, ``lo >= hi``, bounds of the wrong shape, a
            coefficient out of range, or ``P`` too small for the topology.
    """

    def __init__(
        self,
        dim: int,
        pop_size: int,
        bounds: tuple[float | Tensor, float | Tensor] = (-1.0, 1.0),
        *,
        topology: str = "gbest",
        variant: str = "inertia",
        w: float | tuple[float, float] | None = None,
        c1: float | None = None,
        c2: float | None = None,
        boundary: str = "clamp",
        velocity_clamp: float | None = None,
        velocity_norm_clamp: float | None = None,
        iterations: int | None = None,
        informants: int = 3,
        seed: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        maximize: bool = False,
    ) -> None:
        super().__init__(dim, pop_size, seed=seed, device=device, dtype=dtype, maximize=maximize)
        for name, value, allowed in (
            ("topology", topology, TOPOLOGIES),
            ("variant", variant, VARIANTS),
            ("boundary", boundary, BOUNDARIES),
        ):
            if value not in allowed:
                raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")
        if topology != "gbest" and pop_size < 3:
            raise ValueError(
                f"topology {topology!r} needs pop_size >= 3 to have neighbours, got "
                f"{pop_size}; use topology='gbest' or more particles"
            )
        if isinstance(informants, bool) or not isinstance(informants, int) or informants < 1:
            raise ValueError(f"informants must be an integer >= 1, got {informants!r}")
        self.topology, self.variant, self.boundary = topology, variant, boundary
        self.informants = informants
        self._set_coefficients(variant, w, c1, c2)
        if iterations is not None and (
            isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1
        ):
            raise ValueError(f"iterations must be an integer >= 1 (or None), got {iterations!r}")
        if self.w_end is not None and iterations is None:
            raise ValueError(
                f"w=({self.w!r}, {self.w_end!r}) decreases over a budget: pass iterations= "
                "(the number of tell calls the run will make)"
            )
        self.iterations = iterations
        self._set_bounds(bounds)
        if velocity_clamp is not None and not (
            isinstance(velocity_clamp, (int, float)) and velocity_clamp > 0
        ):
            raise ValueError(
                f"velocity_clamp is a fraction of hi - lo and must be > 0 (or None), "
                f"got {velocity_clamp!r}"
            )
        self.velocity_clamp = velocity_clamp
        self._vmax = None if velocity_clamp is None else self._range * velocity_clamp
        if velocity_norm_clamp is not None and not (
            isinstance(velocity_norm_clamp, (int, float))
            and not isinstance(velocity_norm_clamp, bool)
            and math.isfinite(velocity_norm_clamp)
            and velocity_norm_clamp > 0
        ):
            raise ValueError(
                f"velocity_norm_clamp is a step length in box sides and must be a finite "
                f"number > 0 (or None), got {velocity_norm_clamp!r}"
            )
        self.velocity_norm_clamp = velocity_norm_clamp

        p, d, kw = pop_size, dim, {"device": self.device, "dtype": self.dtype}
        self._neighbours: Tensor | None = None
        if topology == "ring":
            self._neighbours = ring_neighbours(p).to(self.device)
        elif topology == "von_neumann":
            self._neighbours = von_neumann_neighbours(p).to(self.device)
        self._arange = torch.arange(p, device=self.device)
        self._sources = self._arange.repeat_interleave(informants)
        self._targets = self._draw_targets() if topology == "random" else None

        self._x = self._lo + self._range * self.uniform(p, d)
        self._v = 0.5 * (self._lo + self._range * self.uniform(p, d) - self._x)
        self._pbest_x = self._x.clone()
        self._pbest_f = torch.full((p,), torch.inf, **kw)
        self._best_i = torch.zeros(1, dtype=torch.long, device=self.device)
        self._best_f = torch.full((1,), torch.inf, **kw)  # random topology's stall test

    # -- construction helpers -------------------------------------------------------------------
    def _set_coefficients(
        self, variant: str, w: float | None, c1: float | None, c2: float | None
    ) -> None:
        if variant == "constriction":
            if w is not None:
                raise ValueError(
                    "variant='constriction' has no inertia weight w (chi takes its place); "
                    "leave w out or use variant='inertia'"
                )
            c1 = CONSTRICTION_C if c1 is None else c1
            c2 = CONSTRICTION_C if c2 is None else c2
            self.chi = constriction_coefficient(c1 + c2)
            self.w_end = None
            self.w, self.c1, self.c2 = self.chi, c1, c2
            self._w, self._c1, self._c2 = self.chi, self.chi * c1, self.chi * c2
            return
        w = INERTIA_W if w is None else w
        w_end = None
        if isinstance(w, (tuple, list)):
            if len(w) != 2:
                raise ValueError(f"w must be a number or a pair (w_start, w_end), got {w!r}")
            w, w_end = w
        c1 = INERTIA_C if c1 is None else c1
        c2 = INERTIA_C if c2 is None else c2
        checks = [("w", w), ("c1", c1), ("c2", c2)] + ([] if w_end is None else [("w_end", w_end)])
        for name, value in checks:
            if not (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
                and value >= 0
            ):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        self.chi = None
        self.w, self.c1, self.c2 = float(w), float(c1), float(c2)
        self.w_end = None if w_end is None else float(w_end)
        self._w, self._c1, self._c2 = self.w, self.c1, self.c2

    def _set_bounds(self, bounds: Any) -> None:
        try:
            lo, hi = bounds
        except (TypeError, ValueError):
            raise ValueError(f"bounds must be a pair (lo, hi), got {bounds!r}") from None
        kw = {"device": self.device, "dtype": self.dtype}
        lo_t = torch.as_tensor(lo, **kw)
        hi_t = torch.as_tensor(hi, **kw)
        for name, t in (("lo", lo_t), ("hi", hi_t)):
            if t.dim() > 1 or (t.dim() == 1 and t.shape[0] != self.dim):
                raise ValueError(
                    f"bounds {name} must be a scalar or have shape ({self.dim},), got "
                    f"shape {tuple(t.shape)}"
                )
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"bounds {name} must be finite, got {t.tolist()}")
        if not bool((lo_t < hi_t).all()):
            bad = torch.nonzero(~(lo_t < hi_t).expand(self.dim)).flatten()[:5].tolist()
            raise ValueError(
                f"bounds need lo < hi in every dimension; lo >= hi at dimension(s) {bad} "
                f"(lo={lo_t.tolist()}, hi={hi_t.tolist()})"
            )
        self.bounds = (lo_t.expand(self.dim).clone(), hi_t.expand(self.dim).clone())
        if lo_t.dim() == 0 and hi_t.dim() == 0:  # python floats: the cheapest kernels
            self._lo, self._hi = float(lo_t), float(hi_t)
            self._range: float | Tensor = self._hi - self._lo
        else:
            self._lo, self._hi = self.bounds
            self._range = self._hi - self._lo

    def inertia_at(self, t: int) -> float:
        """The inertia weight of the move after the ``t``-th tell (``t`` from 0).

        Constant ``w`` (or ``chi`` for ``constriction``) unless ``w=(w_start, w_end)``:
        then linear from ``w_start`` at ``t = 0`` to ``w_end`` at ``t = iterations - 1``,
        and ``w_end`` after.
        """
        if self.w_end is None:
            return self._w
        span = max(self.iterations - 1, 1)
        return self.w + (self.w_end - self.w) * min(t, span) / span

    def _draw_targets(self) -> Tensor:
        """``(P * K,)``: whom each particle's K links inform (with replacement)."""
        return self.randint(self.pop_size, self.pop_size * self.informants)

    # -- ask/tell -------------------------------------------------------------------------------
    def ask(self) -> Tensor:
        """Current positions ``(P, D)``; the swarm never writes into a returned tensor."""
        return self._x

    def _tell(self, fitness: Tensor) -> None:
        self._remember(fitness)
        self._refine()
        self._move()

    def _remember(self, f: Tensor) -> None:
        """Personal bests and the swarm's best from the fitness of ``self._x``."""
        improved = f < self._pbest_f
        self._pbest_f = torch.minimum(f, self._pbest_f)
        self._pbest_x = torch.where(improved.unsqueeze(1), self._x, self._pbest_x)
        self._update_best()

    def _update_best(self) -> None:
        best_i = self._pbest_f.argmin(dim=0, keepdim=True)  # (1,)
        if self._targets is not None:  # SPSO 2011: new links when the best stalls
            best_f = self._pbest_f.index_select(0, best_i)
            fresh = self._draw_targets()
            self._targets = torch.where(best_f < self._best_f, self._targets, fresh)
            self._best_f = best_f
        self._best_i = best_i

    def _refine(self) -> None:
        """Hook between remembering and moving (the hybrid's gradient steps)."""

    def _informant_best(self) -> Tensor:
        """``l``: each particle's neighbourhood best position, ``(P, D)`` or ``(1, D)``."""
        pf, px = self._pbest_f, self._pbest_x
        if self.topology == "gbest":
            return px.index_select(0, self._best_i)
        if self._neighbours is not None:
            nb = self._neighbours
            pick = pf[nb].argmin(dim=1, keepdim=True)
            return px[nb.gather(1, pick).squeeze(1)]
        # random: the best informant by rank (ties: lowest index) with one scatter
        order = pf.argsort(stable=True)
        rank = torch.empty_like(order).scatter_(0, order, self._arange)
        best_rank = rank.scatter_reduce(
            0, self._targets, rank[self._sources], reduce="amin", include_self=True
        )
        return px[order[best_rank]]

    def _move(self) -> None:
        x = self._x
        r = self.uniform(2, *x.shape)
        v = self._v * self.inertia_at(self.generations)
        v.addcmul_(r[0], self._pbest_x - x, value=self._c1)
        v.addcmul_(r[1], self._informant_best() - x, value=self._c2)
        if self._vmax is not None:
            v = v.clamp_(-self._vmax, self._vmax)
        if self.velocity_norm_clamp is not None:
            v = self._cap_step_norm(v)
        x = x + v
        self._x, self._v = self._apply_boundary(x, v)

    def _cap_step_norm(self, v: Tensor) -> Tensor:
        """Scale rows with ``||v / (hi - lo)||_2 > kappa`` down to ``kappa`` (in place)."""
        span, kappa = self._range, self.velocity_norm_clamp
        if isinstance(span, float):  # one kernel: rows with norm > kappa * span rescaled to it
            return v.renorm_(2, 0, kappa * span)
        return v.div_(span).renorm_(2, 0, kappa).mul_(span)

    def _apply_boundary(self, x: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        lo, hi, span = self._lo, self._hi, self._range
        if self.boundary == "clamp":
            inside = x.clamp(lo, hi)
            return inside, v.masked_fill_(inside != x, 0.0)
        if self.boundary == "periodic":
            return (x - lo).remainder_(span).add_(lo), v
        if self.boundary == "reflect":
            shifted = x - lo
            folds = torch.floor(shifted / span)
            y = shifted.remainder(2 * span)
            y = span - (y - span).abs()
            odd = folds.remainder(2) != 0
            return y.add_(lo).clamp_(lo, hi), torch.where(odd, -v, v)
        # random: redraw the coordinates that left the box
        fresh = self.uniform(*x.shape).mul_(span).add_(lo)
        out = (x < lo) | (x > hi)
        return torch.where(out, fresh, x), v

    # -- results and state ----------------------------------------------------------------------
    def _best(self) -> tuple[Tensor, Tensor]:
        return self._pbest_x[self._best_i[0]], self._pbest_f[self._best_i[0]]

    @property
    def velocities(self) -> Tensor:
        """``(P, D)`` current velocities (a copy)."""
        return self._v.clone()

    @property
    def personal_best(self) -> tuple[Tensor, Tensor]:
        """``(P, D)`` personal best positions and their ``(P,)`` fitness (lower is better)."""
        return self._pbest_x.clone(), self._pbest_f.clone()

    def neighbourhoods(self) -> list[list[int]]:
        """Each particle's informants ``N(i)`` (itself included), sorted, for inspection."""
        p = self.pop_size
        if self.topology == "gbest":
            return [list(range(p)) for _ in range(p)]
        if self._neighbours is not None:
            return [sorted(set(row)) for row in self._neighbours.tolist()]
        hoods = [{i} for i in range(p)]
        for s, t in zip(self._sources.tolist(), self._targets.tolist(), strict=True):
            hoods[t].add(s)
        return [sorted(h) for h in hoods]

    def _state(self) -> dict[str, Any]:
        state = {
            "x": self._x,
            "v": self._v,
            "pbest_x": self._pbest_x,
            "pbest_f": self._pbest_f,
            "best_i": self._best_i,
            "best_f": self._best_f,
        }
        if self._targets is not None:
            state["targets"] = self._targets
        return state

    def _load_state(self, state: dict[str, Any]) -> None:
        want = (self.pop_size, self.dim)
        if (self._targets is not None) != ("targets" in state):
            raise ValueError(
                f"state_dict is {'' if 'targets' in state else 'not '}from a random-topology "
                f"swarm, this one has topology {self.topology!r}; build it as the state was saved"
            )
        if tuple(state["x"].shape) != want:
            raise ValueError(f"state positions have shape {tuple(state['x'].shape)}, want {want}")
        kw = {"device": self.device, "dtype": self.dtype}
        self._x = state["x"].to(**kw).clone()
        self._v = state["v"].to(**kw).clone()
        self._pbest_x = state["pbest_x"].to(**kw).clone()
        self._pbest_f = state["pbest_f"].to(**kw).clone()
        self._best_i = state["best_i"].to(self.device).clone()
        self._best_f = state["best_f"].to(**kw).clone()
        if self._targets is not None:
            self._targets = state["targets"].to(self.device).clone()


class HybridPSOGradient(PSO):
    """PSO for global search plus a few gradient steps on the best particles' memories.

    Every generation, after the personal bests are updated and before the swarm
    moves, the ``refine_top`` best personal-best positions take ``grad_steps`` steps
    of Adam (or SGD) on ``objective``; each refined point is evaluated once more and
    replaces its particle's personal best where it is better (then clamped to the
    bounds). The swarm then moves with the refined memories, so gradient
    information spreads through the social term. Extra objective calls are counted
    in :attr:`gradient_evaluations`.

    Use it like :class:`PSO` (``ask``/``tell`` with any fitness, or ``optimize``);
    ``objective`` is only used for the refinement::

        opt = HybridPSOGradient(f, dim=10, pop_size=20, bounds=(-5, 5), refine_top=2)
        params, value = opt.optimize(f, iterations=100)

    Args:
        objective: Differentiable, batched ``(M, D) -> (M,)``, lower is better (the
            same function the fitness comes from; its sign follows ``maximize``).
        dim, pop_size, bounds: As :class:`PSO`.
        refine_top: ``m``, how many of the best particles are refined per generation.
        grad_steps: Gradient steps per refined particle per generation.
        lr: Learning rate of the gradient steps.
        grad_optimizer: ``adam`` (moments reset each generation) or ``sgd``.
        **pso_kwargs: Any other :class:`PSO` argument (``topology``, ``seed``, ...).
    """

    def __init__(
        self,
        objective: Callable[[Tensor], Tensor],
        dim: int,
        pop_size: int,
        bounds: tuple[float | Tensor, float | Tensor] = (-1.0, 1.0),
        *,
        refine_top: int = 2,
        grad_steps: int = 5,
        lr: float = 0.01,
        grad_optimizer: str = "adam",
        **pso_kwargs: Any,
    ) -> None:
        super().__init__(dim, pop_size, bounds, **pso_kwargs)
        if not callable(objective):
            raise ValueError(f"objective must be callable (M, D) -> (M,), got {objective!r}")
        if isinstance(refine_top, bool) or not isinstance(refine_top, int):
            raise ValueError(f"refine_top must be an integer, got {refine_top!r}")
        if not 1 <= refine_top <= pop_size:
            raise ValueError(f"refine_top must be in [1, pop_size={pop_size}], got {refine_top}")
        if isinstance(grad_steps, bool) or not isinstance(grad_steps, int) or grad_steps < 1:
            raise ValueError(f"grad_steps must be an integer >= 1, got {grad_steps!r}")
        if not (isinstance(lr, (int, float)) and lr > 0):
            raise ValueError(f"lr must be > 0, got {lr!r}")
        if grad_optimizer not in ("adam", "sgd"):
            raise ValueError(f"unknown grad_optimizer {grad_optimizer!r}; choose adam or sgd")
        self.objective = objective
        self.refine_top, self.grad_steps, self.lr = refine_top, grad_steps, float(lr)
        self.grad_optimizer = grad_optimizer
        self.gradient_evaluations = 0
        """Objective calls the refinement made, counted per point (forward passes)."""

    def _loss(self, x: Tensor) -> Tensor:
        out = self.objective(x)
        return -out if self.maximize else out

    def _refine(self) -> None:
        top = self._pbest_f.topk(self.refine_top, largest=False).indices
        start = self._pbest_x[top]
        point = start.clone()
        # Adam/SGD written out over the (m, D) block: no torch.optim machinery per step.
        first = torch.zeros_like(point)
        second = torch.zeros_like(point)
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        with torch.enable_grad():
            for step in range(1, self.grad_steps + 1):
                leaf = point.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(self._loss(leaf).sum(), leaf)
                grad = grad.nan_to_num(0.0, 0.0, 0.0)  # a bad gradient must not poison the point
                if self.grad_optimizer == "sgd":
                    point = point - self.lr * grad
                    continue
                first.mul_(beta1).add_(grad, alpha=1 - beta1)
                second.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                step_size = self.lr / (1 - beta1**step)
                denom = (second / (1 - beta2**step)).sqrt_().add_(eps)
                point = point - step_size * first / denom
        with torch.no_grad():
            refined = point.detach().clamp(self.bounds[0], self.bounds[1])
            value = self._loss(refined).to(self.dtype)
            value = torch.where(torch.isfinite(value), value, torch.inf)
        self.gradient_evaluations += self.refine_top * (self.grad_steps + 1)
        better = value < self._pbest_f[top]
        self._pbest_f = self._pbest_f.index_put((top,), torch.minimum(value, self._pbest_f[top]))
        self._pbest_x = self._pbest_x.index_put(
            (top,), torch.where(better.unsqueeze(1), refined, start)
        )
        self._update_best()

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "gradient_evaluations": self.gradient_evaluations}

    def _load_state(self, state: dict[str, Any]) -> None:
        super()._load_state(state)
        self.gradient_evaluations = int(state.get("gradient_evaluations", 0))


# -- test functions ------------------------------------------------------------------------------
def sphere(x: Tensor) -> Tensor:
    """``sum x^2``; minimum 0 at 0. ``(P, D) -> (P,)``."""
    return (x * x).sum(dim=-1)


def rastrigin(x: Tensor) -> Tensor:
    """``10 D + sum(x^2 - 10 cos(2 pi x))``; minimum 0 at 0. ``(P, D) -> (P,)``."""
    return (x * x - 10.0 * torch.cos((2.0 * math.pi) * x)).sum(dim=-1) + 10.0 * x.shape[-1]


def rosenbrock(x: Tensor) -> Tensor:
    """``sum 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2``; minimum 0 at 1. ``(P, D) -> (P,)``."""
    head, tail = x[..., :-1], x[..., 1:]
    return (100.0 * (tail - head * head).square() + (1.0 - head).square()).sum(dim=-1)


def ackley(x: Tensor) -> Tensor:
    """Ackley (a=20, b=0.2, c=2 pi); minimum 0 at 0. ``(P, D) -> (P,)``."""
    d = x.shape[-1]
    term1 = -20.0 * torch.exp(-0.2 * torch.sqrt((x * x).sum(dim=-1) / d))
    term2 = -torch.exp(torch.cos((2.0 * math.pi) * x).sum(dim=-1) / d)
    return term1 + term2 + (20.0 + math.e)


functions: dict[str, Callable[[Tensor], Tensor]] = {
    "sphere": sphere,
    "rastrigin": rastrigin,
    "rosenbrock": rosenbrock,
    "ackley": ackley,
}
"""Batched test functions ``(P, D) -> (P,)``, minimum 0."""

benchmark_bounds: dict[str, float] = {
    "sphere": 5.12,
    "rastrigin": 5.12,
    "rosenbrock": 5.0,
    "ackley": 32.768,
}
"""Customary symmetric search bounds ``(-b, b)`` of each test function."""
