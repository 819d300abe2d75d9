"""Flocks: self-propelled particles agreeing on a heading (Vicsek; Couzin's informed minority).

=================  ============================================================
World id           ``flock`` (``colonylab/Flock-v0``)
State              ``B`` independent flocks of ``n`` particles in a periodic
                   ``L x L`` box, ``L = sqrt(n / density)``: positions
                   ``float64[B, n, 2]``, headings ``float64[B, n]`` (radians),
                   speed ``v0`` for all
Observation        ``float32[B, n, 7]`` per particle, egocentric (rotated by its
                   own heading): cos / sin of the mean neighbour heading, local
                   order (length of the mean neighbour heading), neighbour count /
                   expected count, informed flag, cos / sin of the target
                   direction (zeros for the uninformed)
Actions            ``vicsek`` / ``couzin``: none (``step()``); ``external``: the
                   desired heading of every particle, ``float[B, n]`` radians
Reward             ``float32[B]``: the flock's alignment with the target
                   ``mean_i cos(theta_i - target)`` (0 without informed individuals)
Episode            ``max_episode_steps`` steps, then ``truncated``
Kernels            Numba cell lists (cell side >= interaction radius, counting sort,
                   parallel and deterministic), up to millions of particles
=================  ============================================================

Controllers (the desired heading of particle ``i``):

* ``vicsek`` (Vicsek et al., PRL 1995): the direction of the sum of the unit headings of
  every particle within ``radius`` (itself included);
* ``couzin`` (Couzin et al., J. theor. Biol. 2002; Nature 2005): anyone within
  ``repulse_radius`` -> away from them; else the headings within ``radius`` plus the unit
  vectors toward the neighbours within ``attract_radius``;
* ``external``: a learned policy supplies it (``step(headings)``); it reads
  :meth:`FlockWorld.observe`, :meth:`neighbour_mean_heading`, :meth:`neighbour_count`.

Informed individuals (Couzin et al. 2005): ``round(informed_frac * n)`` particles of
every flock, drawn at random at each reset (:attr:`FlockWorld.informed`), know the target direction ``g``; under ``vicsek`` / ``couzin``
their desired direction is ``(d + omega g) / |d + omega g|`` with ``d`` the unit social
direction and ``omega = informed_weight``. Nobody can tell who is informed.

Then every particle turns toward its desired heading (by at most ``max_turn``), gets the
angular noise ``uniform(-noise/2, noise/2)`` and moves ``speed`` along its new heading
(Vicsek's eqs. 1-2). Vicsek's curve: ``density=4, radius=1, speed=0.03``, the order
parameter falls from ~1 at ``noise`` 0 to ~0 near 5 (see :func:`order_curve`).

Example::

    world = FlockWorld(FlockConfig(n=4000, density=4, noise=2.0))
    world.reset(seed=0)
    world.run(2000)
    world.order()                       # float64[B]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from colonylab._checks import check_choice, check_dataclass_ints, check_optional_int
from colonylab.envs.base import StepResult, check_allocation, no_policy
from colonylab.envs.consensus import _kernels as K

CONTROLLERS = ("vicsek", "couzin", "external")
N_FEATURES = 7


@dataclass(frozen=True)
class FlockConfig:
    """Configuration of a flock world."""

    n: int = 1000
    """Particles per flock."""
    batch: int = 1
    """Independent flocks stepped together."""
    density: float = 4.0
    """Particles per unit area: the box side is ``sqrt(n / density)``."""
    radius: float = 1.0
    """Interaction radius ``r`` (Vicsek alignment; Couzin orientation zone)."""
    speed: float = 0.03
    """Speed ``v0`` (distance per step)."""
    noise: float = 1.0
    """Angular noise amplitude ``eta``: each step adds ``uniform(-eta/2, eta/2)``."""
    controller: str = "vicsek"
    """``vicsek``, ``couzin`` or ``external`` (a policy gives the headings)."""
    informed_frac: float = 0.0
    """Share of informed individuals (they know the target direction)."""
    informed_weight: float = 1.0
    """``omega``: weight of the target direction against the unit social direction."""
    target_angle: float | None = 0.0
    """Target direction (radians); None: a random one per flock at every reset."""
    repulse_radius: float = 0.2
    """Couzin: the zone of repulsion."""
    attract_radius: float = 1.0
    """Couzin: the zone of attraction (the cell side is at least this and ``radius``)."""
    max_turn: float = math.pi
    """Largest turn per step toward the desired heading (radians; pi = no limit)."""
    max_episode_steps: int = 1000
    """Steps per episode (then ``truncated``)."""

    def __post_init__(self) -> None:
        check_dataclass_ints(self, {"n": 1, "batch": 1, "max_episode_steps": 1}, cli=False)
        check_choice("controller", self.controller, CONTROLLERS)
        for name in ("density", "radius", "speed", "attract_radius", "max_turn"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        for name in ("noise", "repulse_radius", "informed_weight"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not 0.0 <= self.informed_frac <= 1.0:
            raise ValueError(f"informed_frac must be in [0, 1], got {self.informed_frac!r}")
        if self.target_angle is not None and not math.isfinite(self.target_angle):
            raise ValueError(f"target_angle must be finite or None, got {self.target_angle!r}")
        if self.box < 2 * self.cell_side:
            raise ValueError(
                f"the box (side {self.box:.3g} = sqrt(n / density)) must be at least twice the "
                f"interaction radius {self.cell_side:.3g}; use more particles or a lower density"
            )
        check_optional_int("n", self.n, 1)

    @property
    def box(self) -> float:
        """Side ``L`` of the periodic box."""
        return math.sqrt(self.n / self.density)

    @property
    def cell_side(self) -> float:
        """The longest interaction range: the cell lists' minimum cell side."""
        if self.controller == "couzin":
            return max(self.radius, self.attract_radius, self.repulse_radius)
        return self.radius

    @property
    def cells(self) -> int:
        """Cells per box side."""
        return max(1, int(self.box / self.cell_side))

    @property
    def informed_count(self) -> int:
        """Informed individuals per flock."""
        return int(round(self.informed_frac * self.n))


class FlockWorld:
    """Batched flocks stepped by Numba cell-list kernels (see the module docstring)."""

    metadata = {"name": "colonylab/Flock-v0", "render_fps": 30, "render_modes": ["rgb_array"]}
    policies: tuple[str, ...] = ()
    """No scripted policies: the controller is part of the config."""

    def policy(self, name: str, seed: int | None = None) -> Any:
        """The controller is part of the config: always a ``ValueError``."""
        raise no_policy(self, name)

    def __init__(self, config: FlockConfig | None = None) -> None:
        self.config = config or FlockConfig()
        c = self.config
        total = c.batch * c.n
        check_allocation(total * 8 * 12 + c.batch * c.cells**2 * 4, f"flock of {total} particles")
        self.pos = np.zeros((total, 2), dtype=K.REAL_DTYPE)
        self.theta = np.zeros(total, dtype=K.REAL_DTYPE)
        self.vel = np.zeros((total, 2), dtype=K.REAL_DTYPE)
        self.target = np.zeros(c.batch, dtype=K.REAL_DTYPE)
        self.informed = np.zeros((c.batch, c.n), dtype=bool)
        """``bool[B, n]``: who knows the target (drawn at each reset)."""
        self._cell_of = np.zeros(total, dtype=K.INDEX_DTYPE)
        self._order = np.zeros(total, dtype=K.INDEX_DTYPE)
        self._starts = np.zeros(c.batch * c.cells**2 + 1, dtype=K.INDEX_DTYPE)
        self._cols = np.zeros((4, total), dtype=K.REAL_DTYPE)  # x, y, vx, vy in cell order
        self._sums = np.zeros((total, 2), dtype=K.REAL_DTYPE)
        self._counts = np.zeros(total, dtype=K.INDEX_DTYPE)
        self._sums_step = -1  # step_count the neighbour sums belong to
        self._most = 0  # the most particles in one cell (last sort)
        self._rng = np.random.default_rng(0)
        self.step_count = 0
        self.view_index = 0
        self.metadata = dict(FlockWorld.metadata)

    # -- state ------------------------------------------------------------------------
    @property
    def positions(self) -> np.ndarray:
        """``float64[B, n, 2]`` (a view of the world's buffer)."""
        return self.pos.reshape(self.config.batch, self.config.n, 2)

    @property
    def headings(self) -> np.ndarray:
        """``float64[B, n]`` radians in [-pi, pi) (a view of the world's buffer)."""
        return self.theta.reshape(self.config.batch, self.config.n)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> np.ndarray:
        """Uniform random positions and headings; returns :meth:`observe`.

        ``options``: ``{"positions": float[B, n, 2], "headings": float[B, n],
        "target": float[B]}`` replace the drawn ones (any subset).
        """
        options = options or {}
        unknown = set(options) - {"positions", "headings", "target"}
        if unknown:
            raise ValueError(
                f"unknown reset option(s) {sorted(unknown)}; known: positions, headings, target"
            )
        c = self.config
        self._rng = np.random.default_rng(seed)
        pos = self._rng.random((c.batch * c.n, 2)) * c.box
        theta = self._rng.uniform(-np.pi, np.pi, c.batch * c.n)
        target = (
            self._rng.uniform(-np.pi, np.pi, c.batch)
            if c.target_angle is None
            else np.full(c.batch, c.target_angle)
        )
        if "positions" in options:
            pos = _checked(options["positions"], (c.batch, c.n, 2), "positions").reshape(-1, 2)
            if pos.min() < 0 or pos.max() >= c.box:
                raise ValueError(f"positions must lie in [0, {c.box:.6g}) (the box)")
        if "headings" in options:
            theta = _checked(options["headings"], (c.batch, c.n), "headings").ravel()
        if "target" in options:
            target = _checked(options["target"], (c.batch,), "target")
        informed = np.zeros((c.batch, c.n), dtype=bool)
        if c.informed_count:
            ranks = self._rng.random((c.batch, c.n)).argsort(axis=1)
            informed = ranks < c.informed_count
        if "positions" not in options:
            # number the drawn particles in cell order (they are exchangeable): memory
            # order follows space, so the neighbour scans stay in cache
            m = c.cells
            cell = np.minimum((pos * (m / c.box)).astype(np.int64), m - 1)
            key = (cell[:, 1] * m + cell[:, 0]).reshape(c.batch, c.n)
            order = np.argsort(key, axis=1, kind="stable")
            pos = np.take_along_axis(pos.reshape(c.batch, c.n, 2), order[..., None], 1)
            pos = pos.reshape(-1, 2)
        self.informed[:] = informed
        self.pos[:] = pos
        self.theta[:] = (theta + np.pi) % (2 * np.pi) - np.pi
        self.vel[:, 0] = np.cos(self.theta)
        self.vel[:, 1] = np.sin(self.theta)
        self.target[:] = target
        self.step_count = 0
        self._sums_step = -1
        return self.observe()

    # -- neighbour queries ----------------------------------------------------------------
    def _sort(self) -> None:
        c = self.config
        self._most = K.cell_sort(
            self.pos, c.n, c.box, c.cells, self._cell_of, self._order, self._starts
        )
        K.gather_sorted(self.pos, self.vel, self._order, self._cols)

    def neighbour_sums(self) -> tuple[np.ndarray, np.ndarray]:
        """Sum of the unit headings within ``radius`` (self included) ``float64[B, n, 2]``
        and the neighbour count (self included) ``int32[B, n]`` (cached per step)."""
        c = self.config
        if self._sums_step != self.step_count:
            self._sort()
            K.neighbour_sums(
                self._cols,
                c.box,
                c.radius,
                c.cells,
                self._order,
                self._starts,
                self._most,
                self._sums,
                self._counts,
            )
            self._sums_step = self.step_count
        return self._sums.reshape(c.batch, c.n, 2), self._counts.reshape(c.batch, c.n)

    def neighbour_mean_heading(self) -> np.ndarray:
        """Direction of the mean neighbour heading (Vicsek's ``<theta>_r``), ``float64[B, n]``."""
        sums, _ = self.neighbour_sums()
        return np.arctan2(sums[..., 1], sums[..., 0])

    def neighbour_count(self) -> np.ndarray:
        """Particles within ``radius``, self included, ``int32[B, n]``."""
        return self.neighbour_sums()[1].copy()

    def observe(self) -> np.ndarray:
        """``float32[B, n, 7]`` egocentric features (see the module docstring)."""
        c = self.config
        sums, counts = self.neighbour_sums()
        theta = self.headings
        mean = sums / counts[..., None]
        phi = np.arctan2(mean[..., 1], mean[..., 0]) - theta
        expected = math.pi * c.radius**2 * c.density + 1.0
        informed = self.informed.astype(np.float64)
        rel_target = self.target[:, None] - theta
        out = np.empty((c.batch, c.n, N_FEATURES), dtype=np.float32)
        out[..., 0] = np.cos(phi)
        out[..., 1] = np.sin(phi)
        out[..., 2] = np.hypot(mean[..., 0], mean[..., 1])
        out[..., 3] = counts / expected
        out[..., 4] = informed
        out[..., 5] = informed * np.cos(rel_target)
        out[..., 6] = informed * np.sin(rel_target)
        return out

    # -- stepping ---------------------------------------------------------------------------
    def _desired(self) -> np.ndarray:
        """The controller's desired headings, ``float64[B * n]``."""
        c = self.config
        if c.controller == "vicsek":
            self.neighbour_sums()
            direction = self._sums
        else:
            self._sort()
            direction = np.empty_like(self.vel)
            K.couzin_directions(
                self._cols,
                c.box,
                c.repulse_radius,
                c.radius,
                c.attract_radius,
                c.cells,
                self._order,
                self._starts,
                direction,
            )
        desired = np.empty_like(self.theta)
        K.desired_headings(
            direction,
            self.theta,
            c.n,
            self.informed.ravel(),
            self.target,
            float(c.informed_weight),
            desired,
        )
        return desired

    def _check_actions(self, actions: Any) -> np.ndarray | None:
        c = self.config
        if c.controller != "external":
            if actions is not None:
                raise ValueError(
                    f"controller {c.controller!r} takes no actions (step()); use "
                    f"controller='external' to give headings, got {type(actions).__name__}"
                )
            return None
        if actions is None:
            raise ValueError("controller 'external' needs the desired headings float[B, n]")
        headings = np.asarray(actions, dtype=np.float64)
        if headings.shape != (c.batch, c.n):
            raise ValueError(
                f"headings must have shape {(c.batch, c.n)} (batch, n), got {headings.shape}"
            )
        if not np.isfinite(headings).all() or np.abs(headings).max(initial=0) > 4 * np.pi:
            raise ValueError("headings must be finite radians within [-4 pi, 4 pi]")
        return headings.ravel()

    def step(self, actions: Any = None) -> StepResult:
        """One step of every flock; ``actions``: the headings (``external`` only)."""
        desired = self._check_actions(actions)
        self._advance(desired)
        c = self.config
        obs = self.observe()
        reward = self.target_alignment().astype(np.float32)
        if c.informed_count == 0:
            reward[:] = 0.0
        truncated = np.full(c.batch, self.step_count >= c.max_episode_steps, dtype=bool)
        return StepResult(obs, reward, np.zeros(c.batch, dtype=bool), truncated, {})

    def _advance(self, desired: np.ndarray | None) -> None:
        c = self.config
        if desired is None:
            desired = self._desired()
        # one seed per step; each particle's noise is a hash of (seed, index)
        seed = np.uint64(self._rng.integers(0, 2**63))
        K.heading_update(
            self.pos,
            self.theta,
            self.vel,
            c.box,
            c.speed,
            desired,
            float(c.noise),
            seed,
            c.max_turn,
        )
        self.step_count += 1

    def run(self, steps: int) -> None:
        """Advance ``steps`` steps with the built-in controller (no observations)."""
        if self.config.controller == "external":
            raise ValueError("run() needs a built-in controller; step(headings) the external one")
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        for _ in range(steps):
            self._advance(None)

    # -- measurements -------------------------------------------------------------------------
    def order(self) -> np.ndarray:
        """Vicsek's order parameter per flock, ``float64[B]``."""
        v = self.vel.reshape(self.config.batch, self.config.n, 2).mean(axis=1)
        return np.hypot(v[:, 0], v[:, 1])

    def group_heading(self) -> np.ndarray:
        """Direction of each flock's mean heading, ``float64[B]``."""
        v = self.vel.reshape(self.config.batch, self.config.n, 2).mean(axis=1)
        return np.arctan2(v[:, 1], v[:, 0])

    def target_alignment(self) -> np.ndarray:
        """``mean_i cos(theta_i - target)`` per flock, ``float64[B]``."""
        return np.cos(self.headings - self.target[:, None]).mean(axis=1)

    def metrics(self) -> dict[str, float]:
        """Order (shown flock and mean), alignment with the target, mean neighbours."""
        order = self.order()
        out = {
            "order": float(order[self.view_index]),
            "mean_order": float(order.mean()),
            "target_alignment": float(self.target_alignment().mean()),
        }
        if self._sums_step == self.step_count:
            out["mean_neighbours"] = float(self._counts.mean())
        return out

    # -- rendering ------------------------------------------------------------------------------
    def render_rgb(self) -> np.ndarray:
        """The shown flock: particles coloured by heading (hue wheel), informed ones white,
        the target direction as a white tick at the centre; ``uint8[S, S, 3]``."""
        c = self.config
        size = int(min(512, max(128, round(c.box * 32))))
        image = np.empty((size, size, 3), dtype=np.uint8)
        image[:] = (12, 14, 22)
        pos = self.positions[self.view_index]
        theta = self.headings[self.view_index]
        px = np.minimum((pos * (size / c.box)).astype(np.int64), size - 1)
        hue = ((theta + np.pi) / (2 * np.pi) * 255).astype(np.int64) % 256
        colour = _HUE_WHEEL[hue]
        colour[self.informed[self.view_index]] = 255
        dot = 3 if c.n <= 2_000 else (2 if c.n <= 20_000 else 1)
        for dy in range(dot):
            for dx in range(dot):
                y = np.minimum(size - 1 - px[:, 1] + dy, size - 1)  # y up
                image[y, np.minimum(px[:, 0] + dx, size - 1)] = colour
        if c.informed_count:
            t = self.target[self.view_index]
            for s in range(size // 10):
                y = int(size / 2 - s * math.sin(t))
                x = int(size / 2 + s * math.cos(t))
                image[y % size, x % size] = 255
        return image

    def handle_key(self, name: str) -> bool:
        """``[`` / ``]`` switch the flock shown."""
        if name in ("[", "]"):
            self.view_index = (self.view_index + (1 if name == "]" else -1)) % self.config.batch
            return True
        return False


def _checked(value: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite")
    return array


def _hue_wheel() -> np.ndarray:
    """256 saturated colours around the hue circle (heading -pi ... pi)."""
    h = np.linspace(0.0, 6.0, 256, endpoint=False)
    k = np.stack([(5 + h) % 6, (3 + h) % 6, (1 + h) % 6], axis=1)
    rgb = 1 - np.clip(np.minimum(k, 4 - k), 0, 1)
    return (40 + 215 * rgb).astype(np.uint8)


_HUE_WHEEL = _hue_wheel()


def order_curve(
    sizes: tuple[int, ...] = (40, 400, 4000),
    noises: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0),
    density: float = 4.0,
    steps: int = 2000,
    measure: int = 1000,
    flocks: int = 16,
    seed: int = 0,
) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Vicsek's Fig. 2a: the order parameter against noise at fixed density.

    For every ``N`` in ``sizes`` and noise in ``noises``: ``max(2, flocks * 400 // N)``
    independent flocks of ``N`` (more for small ``N``, whose order fluctuates most) start
    from random positions and headings and run ``steps`` steps; the order parameter is
    averaged over the last ``measure`` steps (every 10th), then over the flocks.
    Returns ``{N: (noise, mean order, std over flocks)}``.
    """
    out = {}
    for n in sizes:
        batch = max(2, flocks * 400 // n)
        means, stds = [], []
        for k, eta in enumerate(noises):
            world = FlockWorld(FlockConfig(n=n, batch=batch, density=density, noise=eta))
            world.reset(seed=[seed, n, k])  # type: ignore[arg-type]
            world.run(steps - measure)
            samples = []
            for _ in range(measure // 10):
                world.run(10)
                samples.append(world.order())
            per_flock = np.mean(samples, axis=0)
            means.append(per_flock.mean())
            stds.append(per_flock.std())
        out[n] = (np.asarray(noises), np.asarray(means), np.asarray(stds))
    return out


COUZIN_2005: dict[str, Any] = {
    "controller": "couzin",
    "density": 0.1,
    "radius": 6.0,
    "attract_radius": 6.0,
    "repulse_radius": 1.0,
    "speed": 0.5,
    "max_turn": 0.4,
    "noise": 0.05,
    "informed_frac": 0.05,
    "informed_weight": 0.5,
    "target_angle": None,
    "max_episode_steps": 400,
}
"""Couzin et al. (Nature 2005) in this world's units: repulsion zone 1, orientation and
attraction zone 6, speed 0.5 and at most 0.4 rad of turn per step (their 1 unit/s and
2 rad/s at a 0.2 s step, halved), small noise, omega = 0.5, 5% informed, a random target
per flock, at density 0.1 in the periodic box. Measured here (``evaluate``, 8 flocks,
400 steps, seed 1): accuracy toward the target 0.90 at N=100 and 0.95 at N=1,000
(0.63 / 0.65 with nobody informed; chance is 0.5), the group-size effect of their Fig. 1."""


def evaluate(
    config: FlockConfig,
    runs: int = 32,
    steps: int | None = None,
    seed: int = 0,
    policy: Any = None,
) -> dict[str, Any]:
    """One ``colony eval flock`` row: ``runs`` flocks of ``config`` for ``steps`` steps
    (default ``config.max_episode_steps``), measured at the end.

    Args:
        config: the flock (its ``batch`` is replaced by ``runs``).
        policy: for ``controller="external"``: ``policy(world, obs) -> float[B, n]``
            desired headings, called every step.

    Returns:
        ``{controller, n, noise, informed, order, accuracy_to_target, share_within_20deg,
        target_alignment, runs, steps}`` (metrics of :mod:`colonylab.emergence.consensus`,
        computed here without importing it: ``envs`` imports no other subpackage).
    """
    import dataclasses

    config = dataclasses.replace(config, batch=int(runs))
    steps = config.max_episode_steps if steps is None else int(steps)
    world = FlockWorld(config)
    obs = world.reset(seed=seed)
    if config.controller == "external":
        if policy is None:
            raise ValueError("controller 'external' needs a policy(world, obs) -> headings")
        for _ in range(steps):
            obs = world.step(policy(world, obs)).obs
    else:
        world.run(steps)
    heading = world.group_heading()
    error = np.abs((heading - world.target + np.pi) % (2 * np.pi) - np.pi)
    return {
        "controller": config.controller,
        "n": config.n,
        "noise": config.noise,
        "informed": config.informed_frac,
        "order": float(world.order().mean()),
        "accuracy_to_target": float(np.mean(1.0 - error / np.pi)),
        "share_within_20deg": float(np.mean(error <= np.pi / 9)),
        "target_alignment": float(world.target_alignment().mean()),
        "runs": int(runs),
        "steps": steps,
    }
