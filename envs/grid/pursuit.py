"""Pursuit: predators hunt prey on a square grid (inspired by MAgent's tiger-deer), array-first.

Not MAgent2's ``tiger_deer_v4`` (that one, on MAgent2's own rules, is
``colonylab.envs.magent.tiger_deer_v4``): here a prey dies at once when enough
predators (``min_attackers``) attack it in one step and the kill pays every attacker;
in MAgent2 deer have HP 5 and die from accumulated bites (with 0.2 recovery), tigers
have their own 9 x 9 view and 9 actions and lose 0.1 HP a step, and a tiger is paid
only when another tiger bites the same deer in the same step. Actions, views, energy
and breeding here are our own.

=====================  ===========================================================
World id               ``pursuit`` (PettingZoo: ``colonylab.envs.grid.pursuit_v0``)
Agents                 agent slots ``0..Pc-1`` predators (team 0), ``Pc..Pc+Qc-1``
                       prey (team 1); ``Pc``, ``Qc`` the capacities. On the default
                       45 x 45 map 40 predators (``floor(0.02 * 45**2)``) and 81 prey
                       (``floor(0.04 * 45**2)``) start alive in the lowest slots
State                  ``pos int32[N, 2]`` (y, x), ``team int8[N]``, ``alive bool[N]``,
                       ``energy float32[N]`` (predators), ``grid int32[H, W]`` (agent
                       index, -1 empty, -2 wall), ``attack_target int32[N]`` (prey hit
                       this step, -1), ``killed bool[N]`` (died this step), ``born
                       bool[N]`` (born this step), ``last_action``, ``last_reward``
Observation            ``[N, 11, 11, C]`` (view radius 5), C = 4: obstacle (wall or
                       outside the map), predator presence, prey presence, predator
                       energy / ``max_energy`` (always reported; constant unless kills
                       or starvation change it); ``minimap=True`` adds 4 predator and
                       5 prey density of the whole map on an 11 x 11 grid (C = 6).
                       Cells outside the view circle ``dy**2 + dx**2 <= r**2`` and rows
                       of dead or empty slots are 0. dtype ``float32`` (default),
                       ``float16`` or ``uint8`` (values x 255, rounded)
Actions                predators ``Discrete(17)``: 0 no-op; moves 1 N, 2 E, 3 S, 4 W,
                       5 NE, 6 SE, 7 SW, 8 NW; attacks 9-16 on the cell of moves 1-8.
                       Prey ``Discrete(9)``: 0 no-op, moves 1-8
Rewards                predator: ``predator_step_reward`` (0) a step, ``attack_penalty``
                       (-0.01) per attack, ``kill_reward`` (+1) to *every* predator
                       that hit a prey that died this step; prey: ``prey_step_reward``
                       (0) a step; any agent: ``dead_penalty`` (-1) in the step it dies
Rules                  a prey dies when at least ``min_attackers`` (2) predators attack
                       it in the same step, so hunting pays only together. Order in a
                       step: attacks read the state at the start of the step; prey
                       deaths; kill energy and starvation; moves of the survivors into
                       cells empty after the deaths (several claims on a cell: the
                       lowest agent index moves); births
Population dynamics    all off by default (a fixed-population pursuit). ``prey_birth``:
                       chance a step that a prey puts a child on a random empty
                       neighbouring cell. ``predator_starvation``: energy a predator
                       loses each step; it starts with ``predator_energy``, gains
                       ``kill_energy`` per kill it took part in (capped at
                       ``max_energy``) and dies at energy <= 0 (with binary-exact values,
                       e.g. 1.0 and 0.25, after exactly ``predator_energy /
                       predator_starvation`` steps without a kill). ``predator_birth``:
                       chance a step that a predator with energy >= ``birth_energy``
                       splits: the child gets half the energy. Children take the lowest
                       free slot of their species (a slot that died this step is free
                       from the next step) up to the capacity (``*_capacity``; default
                       the initial count, 4x when that species breeds); the draws come
                       from ``np_random`` each step; slots and cells are claimed in one
                       sequential pass in agent-index order (deterministic)
Cycles                 ``CYCLE_PRESET`` (``presets.py``; random) makes predator and
                       prey numbers cycle (period ~240 steps) with the predators a
                       quarter period behind the prey (``runs/pursuit_cycles.py``)
Episode                ``terminated[i]`` is True in the step slot ``i`` dies; a slot
                       reborn later is a new agent (``born[i]``); ``truncated`` is True
                       for the living once ``max_cycles`` steps have run
Placement              distinct uniformly random cells from the reset seed
Sizes                  ``predators``/``prey`` counts, or ``agents=N`` (total, split 1:2:
                       ``N // 3`` predators) on a map of side ``ceil(sqrt(N / 0.06))``
Policies               ``policy(name, seed)``: ``random`` (each species uniform over its
                       own actions), ``greedy`` (= ``greedy-vs-flee``), ``noop``,
                       ``A-vs-B`` (predators A in random/greedy/noop, prey B in
                       random/flee/noop); ``step()`` without actions uses
                       ``default_policy``, else no-ops
Kernels                Numba, ``_kernels.py`` (pursuit section): the step and the
                       births (parallel with sequential conflict passes), the views,
                       the greedy and flee policies
=====================  ===========================================================

The observation is the world's own buffer, rewritten in place by the next
``step``/``reset``: ``.copy()`` it to keep it. Rewards, terminated and truncated
are fresh arrays.

Example::

    world = PursuitWorld(PursuitConfig(**CYCLE_PRESET))
    obs = world.reset(seed=0)                    # float32[4400, 11, 11, 4]
    act = world.policy("random", seed=0)
    for _ in range(1000):
        obs, reward, terminated, truncated, info = world.step(act(obs))
    world.metrics()                              # predators, prey, kills, births, step
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from colonylab.envs.base import StepResult, check_allocation
from colonylab.envs.grid import _kernels as K
from colonylab.envs.grid._world import (
    OBS_DTYPES,  # noqa: F401  (re-exported)
    GridWorld,
    check_common_fields,
    check_finite_fields,
    is_int,
    is_number,
)
from colonylab.envs.grid.presets import CYCLE_PRESET  # noqa: F401  (re-exported)

SPECIES = ("predator", "prey")
PREDATOR = 0
PREY = 1
N_ACTIONS = (K.PURSUIT_PREDATOR_ACTIONS, K.PURSUIT_PREY_ACTIONS)
CAPACITY_FACTOR = 4  # default slots per initial agent of a species that breeds

# CYCLE_PRESET (population cycles) lives in presets.py, importable without Numba

# colours per species at energy 0 and at full energy (prey are not shaded)
_LOW = np.array([[96, 28, 12], [60, 200, 90]], dtype=np.uint8)
_HIGH = np.array([[255, 120, 30], [60, 200, 90]], dtype=np.uint8)


@dataclass(frozen=True)
class PursuitConfig:
    """Configuration of a pursuit; the defaults are a fixed-population tiger-deer hunt."""

    map_size: int | None = None
    """Side of the square map in cells; None: 45, or derived from the counts and densities."""
    predators: int | None = None
    """Predators alive at reset; None: ``agents // 3``, else ``floor(predator_density *
    map_size**2)``."""
    prey: int | None = None
    """Prey alive at reset; None: ``agents - agents // 3``, else ``floor(prey_density *
    map_size**2)``."""
    agents: int | None = None
    """Total agents at reset, split 1:2 into predators and prey; sizes the map from the
    densities unless ``map_size`` is given."""
    predator_density: float = 0.02
    """Predators per map cell, used to derive a count or a map size (MAgent: 0.02)."""
    prey_density: float = 0.04
    """Prey per map cell, used to derive a count or a map size (MAgent: 0.04)."""
    walls: bool = True
    """Surround the map with a ring of wall cells; off, the map edge still blocks moves and
    views see outside the map as obstacle."""
    view_radius: int = 5
    """Radius of the view circle; the view is ``(2r + 1) x (2r + 1)`` cells (1 to 32)."""
    min_attackers: int = 2
    """Predators that must attack a prey in the same step to kill it (>= 1)."""
    kill_reward: float = 1.0
    """Reward of each predator that hit a prey in the step it died."""
    attack_penalty: float = -0.01
    """Reward of every predator attack, whatever the target cell holds."""
    dead_penalty: float = -1.0
    """Reward of an agent in the step it dies (killed prey, starved predator)."""
    predator_step_reward: float = 0.0
    """Reward of every living predator each step."""
    prey_step_reward: float = 0.0
    """Reward of every living prey each step (a small positive value pays survival)."""
    prey_birth: float = 0.0
    """Chance per step that a living prey puts a child on a random empty neighbouring
    cell (0: no prey births)."""
    predator_starvation: float = 0.0
    """Energy a predator loses each step; it dies at energy <= 0 (0: no starvation)."""
    predator_energy: float = 1.0
    """Energy of a predator at reset."""
    kill_energy: float = 0.5
    """Energy each predator that took part in a kill gains (capped at ``max_energy``)."""
    max_energy: float = 2.0
    """Cap of a predator's energy; the energy channel is ``energy / max_energy``."""
    predator_birth: float = 0.0
    """Chance per step that a predator with energy >= ``birth_energy`` splits (0: no
    predator births); parent and child each keep half the energy."""
    birth_energy: float = 1.0
    """Energy a predator needs to split."""
    predator_capacity: int | None = None
    """Predator slots (the most predators alive at once); None: the initial count, or
    4x it when ``predator_birth > 0``."""
    prey_capacity: int | None = None
    """Prey slots (the most prey alive at once); None: the initial count, or 4x it when
    ``prey_birth > 0``."""
    max_cycles: int = 500
    """Steps after which the living are truncated."""
    minimap: bool = False
    """Add two channels: predator and prey density of the whole map on the view grid."""
    obs_dtype: Literal["float32", "float16", "uint8"] = "float32"
    """dtype of the views; ``uint8`` stores ``round(255 * value)``."""

    def __post_init__(self) -> None:
        check_common_fields(self, view_radius_low=1)
        for name in (
            "map_size",
            "agents",
            "predators",
            "prey",
            "predator_capacity",
            "prey_capacity",
        ):
            value = getattr(self, name)
            if value is not None and (not is_int(value) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
        if self.map_size is not None and self.map_size < 3:
            raise ValueError(f"map_size must be >= 3, got {self.map_size}")
        if self.agents is not None:
            if self.agents < 2:
                raise ValueError(f"agents must be >= 2 (one predator, one prey), got {self.agents}")
            split = {"predators": self.agents // 3 or 1}
            split["prey"] = self.agents - split["predators"]
            for name, value in split.items():
                given = getattr(self, name)
                if given is not None and given != value:
                    raise ValueError(
                        f"agents={self.agents} splits into {value} {name} but {name}={given}; "
                        f"give agents or the counts, not both"
                    )
        for name in ("predator_density", "prey_density"):
            value = getattr(self, name)
            if not (is_number(value) and 0.0 < value <= 0.5):
                raise ValueError(f"{name} must be in (0, 0.5] agents per cell, got {value!r}")
        if not is_int(self.min_attackers) or not 1 <= self.min_attackers <= 8:
            raise ValueError(
                f"min_attackers must be an integer in [1, 8] (a prey has 8 neighbours), "
                f"got {self.min_attackers!r}"
            )
        check_finite_fields(
            self,
            (
                "kill_reward",
                "attack_penalty",
                "dead_penalty",
                "predator_step_reward",
                "prey_step_reward",
            ),
        )
        for name in ("prey_birth", "predator_birth"):
            value = getattr(self, name)
            if not (is_number(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
        check_finite_fields(
            self, ("predator_starvation", "kill_energy", "birth_energy"), at_least_zero=True
        )
        if not (is_number(self.max_energy) and self.max_energy > 0):
            raise ValueError(f"max_energy must be a finite number > 0, got {self.max_energy!r}")
        if not (is_number(self.predator_energy) and 0 < self.predator_energy <= self.max_energy):
            raise ValueError(
                f"predator_energy must be in (0, max_energy={self.max_energy}], got "
                f"{self.predator_energy!r}"
            )
        _resolve_sizes(self)  # refuses a map too small for the agents
        _capacities(self)  # refuses a capacity below the initial count

    @property
    def size(self) -> int:
        """The map side actually used (``map_size`` or the derived one)."""
        return _resolve_sizes(self)[0]

    @property
    def counts(self) -> tuple[int, int]:
        """``(predators, prey)`` alive at reset."""
        _, predators, prey = _resolve_sizes(self)
        return predators, prey

    @property
    def capacities(self) -> tuple[int, int]:
        """``(predator slots, prey slots)``."""
        return _capacities(self)

    @property
    def dynamics(self) -> bool:
        """Whether any population dynamics (births or starvation) is on."""
        return self.prey_birth > 0 or self.predator_birth > 0 or self.predator_starvation > 0


# ---- sizes ------------------------------------------------------------------------------


def _free_cells(size: int, walls: bool) -> int:
    inner = size - 2 * (1 if walls else 0)
    return max(inner, 0) ** 2


def _resolve_sizes(cfg: PursuitConfig) -> tuple[int, int, int]:
    """``(map side, predators, prey)`` from the config; raises if they cannot fit."""
    predators, prey = cfg.predators, cfg.prey
    if cfg.agents is not None:
        predators = cfg.agents // 3 or 1
        prey = cfg.agents - predators
    density = cfg.predator_density + cfg.prey_density
    if cfg.map_size is not None:
        size = int(cfg.map_size)
    elif predators is not None and prey is not None:
        size = max(8, math.ceil(math.sqrt((predators + prey) / density)))
    else:
        size = 45
    area = size * size
    if predators is None:
        predators = int(cfg.predator_density * area)
    if prey is None:
        prey = int(cfg.prey_density * area)
    for name, count, field in (
        ("predators", predators, "predator_density"),
        ("prey", prey, "prey_density"),
    ):
        if count < 1:
            raise ValueError(
                f"a {size} x {size} map at {field}={getattr(cfg, field)} holds no {name}; "
                f"give {name}=... or a larger map_size"
            )
    total = predators + prey
    if total > _free_cells(size, cfg.walls):
        need = size + 1
        while total > _free_cells(need, cfg.walls):
            need += 1
        raise ValueError(
            f"a {size} x {size} map (walls={cfg.walls}) has {_free_cells(size, cfg.walls)} free "
            f"cells but {predators} predators + {prey} prey = {total} agents need one each; "
            f"use map_size >= {need} or fewer agents"
        )
    return size, int(predators), int(prey)


def _capacities(cfg: PursuitConfig) -> tuple[int, int]:
    """``(predator slots, prey slots)``; raises if a capacity is below its initial count."""
    _, predators, prey = _resolve_sizes(cfg)
    out = []
    for name, count, capacity, birth in (
        ("predator", predators, cfg.predator_capacity, cfg.predator_birth),
        ("prey", prey, cfg.prey_capacity, cfg.prey_birth),
    ):
        if capacity is None:
            capacity = CAPACITY_FACTOR * count if birth > 0 else count
        elif capacity < count:
            raise ValueError(
                f"{name}_capacity={capacity} is below the {count} {name} alive at reset; "
                f"use {name}_capacity >= {count} (or None)"
            )
        out.append(int(capacity))
    return out[0], out[1]


# ---- the world ---------------------------------------------------------------------------


class PursuitWorld(GridWorld):
    """Predators and prey on a grid, stepped all at once by Numba kernels (see the module
    docstring).

    Args:
        config: a ``PursuitConfig`` (default: 40 predators, 81 prey on 45 x 45, no births).

    Raises:
        ValueError: a map too small for the agents (from the config).
        BoardTooLargeError: the buffers would not fit in memory.
    """

    # render_rgb() is the world's picture; "human" windows come from envs.render.Viewer
    metadata = {"name": "colonylab/Pursuit-v0", "render_fps": 20, "render_modes": ["rgb_array"]}
    policies: tuple[str, ...] = (
        "greedy-vs-flee",
        "random",
        "greedy",
        "noop",
        "greedy-vs-random",
        "random-vs-flee",
        "greedy-vs-noop",
    )
    """Scripted policies of :meth:`policy` (any ``<predators>-vs-<prey>`` works)."""
    team_names = ("predators", "prey")

    def __init__(self, config: PursuitConfig | None = None) -> None:
        self.config = cfg = config or PursuitConfig()
        self.map_size, self.n_predators, self.n_prey = _resolve_sizes(cfg)
        self.predator_slots, self.prey_slots = _capacities(cfg)
        n = self.predator_slots + self.prey_slots
        side = self.map_size
        view = self._init_view(K.PURSUIT_CHANNELS + (2 if cfg.minimap else 0))
        pad = self.radius
        padded = side + 2 * pad
        view_bytes = n * view * view * self.n_channels * self.obs_dtype.itemsize
        check_allocation(
            view_bytes
            + padded * padded * (4 + K.PURSUIT_CHANNELS * self.obs_dtype.itemsize)
            + side * side * 3
            + n * 64,
            f"pursuit of {n:,} agent slots on {side} x {side} "
            f"({view_bytes / n:,.0f} bytes of observation per agent)",
        )
        self._init_common(n, side, pad)
        """``n_agents``: agent slots N (both capacities); the living are ``alive``."""
        self.team = np.repeat(
            np.arange(2, dtype=K.TEAM_DTYPE), (self.predator_slots, self.prey_slots)
        )
        """Species of each slot, int8[N]: 0 predator, 1 prey (fixed)."""
        self.n_actions = np.where(self.team == PREDATOR, N_ACTIONS[0], N_ACTIONS[1]).astype(
            K.ACTION_DTYPE
        )
        self._action_limit = self.n_actions
        """Size of each slot's action set, int32[N] (17 or 9)."""
        self.first_slot = np.array([0, self.predator_slots], dtype=np.int64)
        self.end_slot = np.array([self.predator_slots, n], dtype=np.int64)
        self.energy = np.zeros(n, dtype=K.ENERGY_DTYPE)
        self.born = np.zeros(n, dtype=bool)
        self._attackers = np.zeros(n, dtype=np.int32)
        self._births = np.zeros(2, dtype=np.int64)
        # the draws of the last step's births (kept for tests and references)
        self.birth_draw = np.zeros(n, dtype=np.float32)
        self.cell_draw = np.zeros(n, dtype=np.float32)
        self._plane = np.zeros((padded, padded, K.PURSUIT_CHANNELS), dtype=self._kernel_dtype)
        self._minimap = np.zeros((view, view, 2), dtype=self._kernel_dtype)
        self._alive_counts = np.zeros(2, dtype=np.int64)
        self._kills = 0
        self._starved = 0
        self._born_total = np.zeros(2, dtype=np.int64)
        self._breeds = cfg.prey_birth > 0 or cfg.predator_birth > 0
        self._params = tuple(
            np.float32(v)
            for v in (
                cfg.predator_step_reward,
                cfg.prey_step_reward,
                cfg.attack_penalty,
                cfg.kill_reward,
                cfg.dead_penalty,
                cfg.predator_starvation,
                cfg.kill_energy,
                cfg.max_energy,
            )
        )

    # -- sizes ------------------------------------------------------------------------------
    @property
    def species_alive(self) -> np.ndarray:
        """Living ``(predators, prey)``, ``int64[2]`` (a copy)."""
        return self._alive_counts.copy()

    def agent_name(self, index: int) -> str:
        """The slot name ``predator_k`` / ``prey_k`` of agent ``index``."""
        t = int(self.team[index])
        return f"{SPECIES[t]}_{int(index) - int(self.first_slot[t])}"

    def _agent_label(self, index: int) -> str:
        return f" ({self.agent_name(index)})"

    # -- reset -------------------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> np.ndarray:
        """Place predators and prey on distinct random cells; returns the first observations.

        Args:
            seed: seeds ``np_random`` (placement and births; policies have their own seeds).
        """
        self.np_random = np.random.default_rng(seed)
        side, pad = self.map_size, self._pad
        border = self._border
        self._clear_grid()
        inner = side - 2 * border
        p, q = self.n_predators, self.n_prey
        slots = np.concatenate([np.arange(p), self.predator_slots + np.arange(q)]).astype(np.int64)
        cells = self.np_random.choice(inner * inner, p + q, replace=False)
        self.alive.fill(False)
        self.alive[slots] = True
        self.pos.fill(0)
        self.pos[slots, 0] = border + cells // inner
        self.pos[slots, 1] = border + cells % inner
        self._grid[self.pos[slots, 0] + pad, self.pos[slots, 1] + pad] = slots.astype(np.int32)
        self.energy.fill(0.0)
        self.energy[:p] = self.config.predator_energy
        self.born.fill(False)
        self._alive_counts[:] = (p, q)
        self._kills = 0
        self._starved = 0
        self._born_total[:] = 0
        return self._begin_episode()

    def set_state(self, pos: Any, alive: Any = None, energy: Any = None) -> np.ndarray:
        """Place the agents by hand (scripted scenarios, tests); returns the observations.

        Args:
            pos: int[N, 2] map cells ``(y, x)`` (entries of dead slots are ignored).
            alive: bool[N]; default all slots alive.
            energy: float[N]; default ``predator_energy`` for living predators (prey
                entries are ignored).

        Raises:
            ValueError: wrong shapes, a living agent outside the map, on a wall or on
                another's cell, or a living predator's energy outside ``(0, max_energy]``;
                nothing is changed then.

        The step counter and the kill and birth counts are kept; ``np_random`` is not
        touched.
        """
        n = self.n_agents
        pos, alive, live, _, _ = self._checked_placement(pos, alive)
        predator = self.team == PREDATOR
        if energy is None:
            energy = np.where(predator, self.config.predator_energy, 0.0)
        energy = np.asarray(energy, dtype=np.float64)
        if energy.shape != (n,):
            raise ValueError(f"energy must have shape ({n},), got {energy.shape}")
        bad = alive & predator & ~((energy > 0) & (energy <= self.config.max_energy))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"energy[{i}] ({self.agent_name(i)}) = {float(energy[i])!r} must be in "
                f"(0, max_energy={self.config.max_energy}]"
            )
        self._place(pos, alive, live)
        self.energy[:] = np.where(alive & predator, energy, 0.0)
        self.born.fill(False)
        self._alive_counts[:] = np.bincount(self.team[live], minlength=2)
        return self._ready_observation()

    # -- step ----------------------------------------------------------------------------------
    def step(self, actions: Any = None, *, observe: bool = True) -> StepResult:
        """Advance every agent one step.

        Args:
            actions: integer[N] (dead slots' entries are ignored), or None: the
                ``default_policy``'s actions, else no-ops.
            observe: build the observations (False: ``obs`` is None, the step is
                cheaper; ``observe()`` builds them later).

        Returns:
            ``StepResult(obs, reward float32[N], terminated bool[N], truncated bool[N],
            info)`` with ``info = {"alive": int64[2], "deaths": int64[2], "births":
            int64[2]}`` per species (predators, prey): living after the step, died this
            step (predators starve, prey are killed), born this step. Children born
            this step have reward 0, and ``born`` marks them.

        Raises:
            ValueError: actions of the wrong shape or dtype, out of their species' range
                or NaN (naming the first bad agent index and value); the world is left
                unchanged.
            RuntimeError: before the first ``reset``.
        """
        acts = self._step_actions(actions)
        cfg = self.config
        K.pursuit_step(
            acts,
            self.pos,
            self.team,
            self.alive,
            self.energy,
            self._grid,
            self._pad,
            cfg.min_attackers,
            *self._params,
            self.last_reward,
            self.killed,
            self.born,
            self.attack_target,
            self.last_action,
            self._attackers,
            self._dest,
            self._deaths,
        )
        if self._breeds:
            # pre-drawn so the trajectory depends only on the seed, not on threads
            self.birth_draw[:] = self.np_random.random(self.n_agents, dtype=np.float32)
            self.cell_draw[:] = self.np_random.random(self.n_agents, dtype=np.float32)
            K.pursuit_births(
                self.pos,
                self.team,
                self.alive,
                self.killed,
                self.born,
                self.energy,
                self.last_action,
                self._grid,
                self._pad,
                np.float32(cfg.prey_birth),
                np.float32(cfg.predator_birth),
                np.float32(cfg.birth_energy),
                self.birth_draw,
                self.cell_draw,
                self.first_slot,
                self.end_slot,
                self._births,
            )
        else:
            self._births[:] = 0
        self.step_count += 1
        self._alive_counts += self._births - self._deaths
        self._starved += int(self._deaths[PREDATOR])
        self._kills += int(self._deaths[PREY])
        self._born_total += self._births
        info = {
            "alive": self._alive_counts.copy(),
            "deaths": self._deaths.copy(),
            "births": self._births.copy(),
        }
        return self._step_result(info, observe)

    def _first_bad_int_action(self, arr: np.ndarray) -> int:
        return K.pursuit_first_bad_action(arr, self.team, self.alive, *N_ACTIONS)

    def _action_error(self, index: int, value: Any) -> str:
        t = int(self.team[index])
        what = "0 no-op, 1-8 move, 9-16 attack" if t == PREDATOR else "0 no-op, 1-8 move"
        return (
            f"actions[{index}] (agent {self.agent_name(index)}) = {value!r} is not a "
            f"{SPECIES[t]} action; expected an integer in [0, {N_ACTIONS[t]}): {what}"
        )

    def _check_actions(self, actions: Any) -> np.ndarray:
        """Validated actions as int32[N] (dead slots' entries zeroed), or ValueError."""
        arr = super()._check_actions(actions)
        return np.where(self.alive, arr, 0).astype(K.ACTION_DTYPE)

    # -- observations ---------------------------------------------------------------------------
    def _observation(self) -> np.ndarray:
        """The current observations in the world's buffer (rewritten in full)."""
        if self._view is None:
            self._view = np.zeros((self.n_agents, *self.view_shape), dtype=self.obs_dtype)
        self.write_view(self._view)
        return self._view

    def observe(self, out: np.ndarray | None = None) -> np.ndarray:
        """Every agent's view of the current state.

        Args:
            out: ``[N, S, S, C]`` C-contiguous array of ``obs_dtype`` to write into;
                None: the world's own buffer.

        Returns:
            ``out`` or the world's buffer (rows of dead slots are zero).
        """
        if out is None:
            return self._observation()
        expected = (self.n_agents, *self.view_shape)
        if out.shape != expected or out.dtype != self.obs_dtype or not out.flags.c_contiguous:
            raise ValueError(
                f"out must be a C-contiguous {self.obs_dtype} array of shape {expected}, got "
                f"{out.dtype} {out.shape}"
            )
        self.write_view(out)
        return out

    def write_view(self, out: np.ndarray) -> None:
        """Write every agent's view into ``out`` (``[N, S, S, C]``, ``obs_dtype``)."""
        energy = np.clip(self.energy / np.float32(self.config.max_energy), 0.0, 1.0)
        K.pursuit_plane(self._grid, self.team, self._encode(energy), self._one, self._plane)
        if self.config.minimap:
            self._minimap[:] = self._encode(np.moveaxis(self.minimap_planes(), 0, -1))
        kernel_out = out.view(np.uint16) if self.obs_dtype == np.float16 else out
        K.pursuit_views(
            self._plane,
            self._pad,
            self.pos,
            self.alive,
            self._row_lo,
            self._row_hi,
            self._minimap,
            kernel_out,
        )

    def minimap_planes(self) -> np.ndarray:
        """Species densities on the view grid, float32[2, S, S] (predators, prey): share of
        each block's cells held by a living agent of the species (block ``r`` covers rows
        ``y`` with ``y * S // H == r``, and likewise columns)."""
        return self._team_density_planes()

    def state(self) -> np.ndarray:
        """The global map, float32[H, W, 4]: wall, predator presence, prey presence,
        predator energy / max_energy."""
        out = np.zeros((*self.map_shape, K.PURSUIT_CHANNELS), dtype=np.float32)
        out[..., 0] = self.grid == K.WALL
        live = np.flatnonzero(self.alive)
        y, x = self.pos[live, 0], self.pos[live, 1]
        out[y, x, 1 + self.team[live].astype(np.int64)] = 1.0
        predators = live[self.team[live] == PREDATOR]
        fraction = self.energy[predators] / np.float32(self.config.max_energy)
        out[self.pos[predators, 0], self.pos[predators, 1], 3] = np.clip(fraction, 0, 1)
        return out

    # -- policies, measurements, pictures ----------------------------------------------------------
    def policy(self, name: str, seed: int | None = None) -> Callable[[Any], np.ndarray]:
        """A scripted policy ``obs -> int32[N]``: ``random``, ``greedy`` (greedy-vs-flee),
        ``noop``, or ``"<predators>-vs-<prey>"`` (e.g. ``greedy-vs-random``)."""
        from colonylab.envs.grid.pursuit_policies import make_policy

        return make_policy(name, self.team, seed=seed)

    def metrics(self) -> dict[str, float]:
        """Living predators and prey, kills and starvations so far, births so far per
        species, mean energy of the living predators (0 when none), step."""
        living_predators = self.alive & (self.team == PREDATOR)
        count = int(living_predators.sum())
        mean_energy = float(self.energy[living_predators].mean()) if count else 0.0
        return {
            "step": self.step_count,
            "predators": int(self._alive_counts[PREDATOR]),
            "prey": int(self._alive_counts[PREY]),
            "kills": self._kills,
            "starved": self._starved,
            "predator_births": int(self._born_total[PREDATOR]),
            "prey_births": int(self._born_total[PREY]),
            "predator_energy": mean_energy,
        }

    def render_rgb(self) -> np.ndarray:
        """The map, one pixel per cell, ``uint8[H, W, 3]``: predators orange (shaded
        darker as they starve, when starvation is on), prey green, walls grey."""
        if self._base_image is None:
            self._base_image = self._walled_base_image()
        image = self._base_image.copy()
        if self.config.predator_starvation > 0:
            shade = self.energy
            top = self.config.max_energy
        else:
            shade = np.ones(self.n_agents, dtype=np.float32)
            top = 1.0
        K.paint_agents(self.pos, self.team, shade, self.alive, top, _LOW, _HIGH, image)
        return image
