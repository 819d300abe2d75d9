"""What the grid worlds' array cores share: action checks, observation codes, buffers.

``GridWorld`` is a mixin base of ``BattleWorld``, ``GatherWorld`` and
``PursuitWorld``. A world sets ``obs_dtype``, ``view_shape``, ``map_size``,
``n_agents``, ``alive``, ``kernel_threads`` and ``step_count`` and provides
``write_view(out, full)``; it says what its actions are through
``_action_limit`` (an int, or int32[N] per agent), ``_first_bad_int_action`` and
``_action_error``. The helpers below hold what the three worlds' constructors,
``reset``/``set_state``, ``step`` and pictures do alike (the rules stay in each world
and in ``_kernels.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from colonylab.envs.base import StepResult
from colonylab.envs.grid import _kernels as K
from colonylab.envs.grid._threads import numba_threads

Policy = Callable[..., np.ndarray]

OBS_DTYPES = {"float32": np.float32, "float16": np.float16, "uint8": np.uint8}
"""The grid worlds' observation dtypes by config name."""
BACKGROUND = (16, 17, 24)
"""Floor colour of the grid worlds' pictures."""
WALL_COLOUR = (118, 120, 130)
"""Wall colour of the grid worlds' pictures."""


def is_int(value: Any) -> bool:
    """An integer (Python or NumPy), not a bool."""
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))


def is_number(value: Any) -> bool:
    """A finite real number (Python or NumPy), not a bool."""
    return (
        not isinstance(value, (bool, np.bool_))
        and isinstance(value, (int, float, np.integer, np.floating))
        and math.isfinite(value)
    )


def check_common_fields(cfg: Any, view_radius_low: int) -> None:
    """The checks every grid config shares: ``view_radius`` in ``[low, 32]``,
    ``max_cycles >= 1``, ``obs_dtype`` known and ``threads`` (when the config has it)."""
    threads = getattr(cfg, "threads", None)
    if threads is not None and not (is_int(threads) and threads >= 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    if not (is_int(cfg.view_radius) and view_radius_low <= cfg.view_radius <= 32):
        raise ValueError(
            f"view_radius must be an integer in [{view_radius_low}, 32], got {cfg.view_radius!r}"
        )
    if not (is_int(cfg.max_cycles) and cfg.max_cycles >= 1):
        raise ValueError(f"max_cycles must be a positive integer, got {cfg.max_cycles!r}")
    if cfg.obs_dtype not in OBS_DTYPES:
        raise ValueError(f"obs_dtype must be one of {sorted(OBS_DTYPES)}, got {cfg.obs_dtype!r}")


def check_finite_fields(cfg: Any, names: tuple[str, ...], at_least_zero: bool = False) -> None:
    """Each field in ``names`` is a finite number (and ``>= 0`` when ``at_least_zero``)."""
    for name in names:
        value = getattr(cfg, name)
        if at_least_zero:
            if not (is_number(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        elif not is_number(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")


def threaded_policy(policy: Policy, threads: int) -> Policy:
    """``policy`` running its kernels on ``threads`` Numba threads (the world's own
    ``kernel_threads``); the wrapped policy is kept as ``.policy``."""

    def act(obs: Any, mask: np.ndarray | None = None) -> np.ndarray:
        with numba_threads(threads):
            return policy(obs, mask)

    act.policy = policy  # type: ignore[attr-defined]
    return act


class GridWorld:
    """Shared members of the grid worlds' array cores (see the module docstring)."""

    _action_limit: int | np.ndarray = K.N_ACTIONS
    """Actions of each agent are integers in ``[0, _action_limit)``."""

    # -- construction -------------------------------------------------------------------------
    def _init_view(self, channels: int, id_count: int | None = None) -> int:
        """``radius``, ``n_channels``, ``view_shape`` and ``obs_dtype`` from the config (and,
        for ids among ``id_count`` agents, ``id_bits`` and ``feature_size`` of the extra
        features); returns the view side ``2 r + 1``."""
        cfg = self.config
        self.radius = int(cfg.view_radius)
        view = 2 * self.radius + 1
        self.n_channels = channels
        self.view_shape = (view, view, channels)
        self.obs_dtype = np.dtype(OBS_DTYPES[cfg.obs_dtype])
        if id_count is not None:
            self.id_bits = max(1, (id_count - 1).bit_length())
            self.feature_size = self.id_bits + K.N_ACTIONS + 3
        return view

    def _init_common(self, n: int, side: int, pad: int) -> None:
        """The members every grid world has: ``n`` agent rows (positions, life, the last
        step's action, reward, attack target and death), the padded grid of side
        ``side + 2 pad`` (``grid`` is its map window), the view circle, the lazy
        observation buffer, seeding and the step bookkeeping."""
        self.n_agents = n
        self.pos = np.zeros((n, 2), dtype=K.POS_DTYPE)
        self.alive = np.zeros(n, dtype=bool)
        self.killed = np.zeros(n, dtype=bool)
        self.attack_target = np.full(n, -1, dtype=np.int32)
        self.last_action = np.zeros(n, dtype=K.ACTION_DTYPE)
        self.last_reward = np.zeros(n, dtype=K.REWARD_DTYPE)
        self._dest = np.zeros(n, dtype=np.int64)
        self._deaths = np.zeros(2, dtype=np.int64)
        self._noop = np.zeros(n, dtype=K.ACTION_DTYPE)
        padded = side + 2 * pad
        self._pad = pad
        self._grid = np.full((padded, padded), K.WALL, dtype=K.GRID_DTYPE)
        self.grid = self._grid[pad : pad + side, pad : pad + side]
        """Agent index per map cell, -1 empty, -2 wall (a view of the padded grid)."""
        self._row_lo, self._row_hi = K.circle_spans(self.radius)
        self._view: np.ndarray | None = None  # the world's observation buffer (lazy)
        self._view_step = -2  # step at which _view was last written
        self._one = self._encode(np.float32(1.0))[()]
        self._base_image: np.ndarray | None = None
        self.np_random = np.random.default_rng()
        self.step_count = 0
        self.default_policy: Callable[[Any], np.ndarray] | None = None
        """Policy ``step()`` uses when called without actions (the viewer does that);
        None: everyone waits (no-op)."""
        self._ready = False

    # -- sizes ----------------------------------------------------------------------------
    @property
    def _border(self) -> int:
        """Width of the wall ring (1 with ``walls``, else 0)."""
        return 1 if self.config.walls else 0

    @property
    def _kernel_dtype(self) -> np.dtype:
        """dtype the kernels write: float16 travels as its bits (uint16)."""
        return np.dtype(np.uint16) if self.obs_dtype == np.float16 else self.obs_dtype

    @property
    def map_shape(self) -> tuple[int, int]:
        """``(H, W)`` of the map."""
        return (self.map_size, self.map_size)

    def _encode(self, values: np.ndarray) -> np.ndarray:
        """float32 values in [0, 1] -> the kernels' codes for ``obs_dtype``."""
        values = np.asarray(values, dtype=np.float32)
        if self.obs_dtype == np.float32:
            return values
        if self.obs_dtype == np.float16:
            return values.astype(np.float16).view(np.uint16)
        return np.floor(values * np.float32(255) + np.float32(0.5)).astype(np.uint8)

    # -- reset and set_state ------------------------------------------------------------------
    def _clear_grid(self) -> None:
        """Walls (the padding and, with ``walls``, the ring), every free cell empty."""
        pad, side, border = self._pad, self.map_size, self._border
        self._grid.fill(K.WALL)
        self._grid[pad + border : pad + side - border, pad + border : pad + side - border] = K.EMPTY

    def _agent_label(self, index: int) -> str:
        """What names agent ``index`` in a message after its index (e.g. `` (prey_3)``)."""
        return ""

    def _checked_placement(
        self, pos: Any, alive: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``set_state``'s shared checks: ``(pos, alive, live, y, x)`` with ``live`` the
        living agents' indices and ``(y, x)`` their cells; ValueError for wrong shapes,
        a living agent outside the free cells or two on one cell."""
        n, side = self.n_agents, self.map_size
        pos = np.asarray(pos)
        alive = np.ones(n, dtype=bool) if alive is None else np.asarray(alive)
        if pos.shape != (n, 2) or pos.dtype.kind not in "iu":
            raise ValueError(f"pos must be integers of shape ({n}, 2), got {pos.dtype} {pos.shape}")
        if alive.shape != (n,) or alive.dtype != bool:
            raise ValueError(f"alive must be bool of shape ({n},), got {alive.dtype} {alive.shape}")
        live = np.flatnonzero(alive)
        y, x = pos[live, 0], pos[live, 1]
        border = self._border
        outside = (y < border) | (y >= side - border) | (x < border) | (x >= side - border)
        if outside.any():
            i = live[np.argmax(outside)]
            raise ValueError(
                f"agent {i}{self._agent_label(i)} at {tuple(pos[i].tolist())} is outside the "
                f"free cells [{border}, {side - border}) of the map"
            )
        cells = y.astype(np.int64) * side + x
        if np.unique(cells).size != cells.size:
            raise ValueError("two living agents share a cell; give each a cell of its own")
        return pos, alive, live, y, x

    def _place(self, pos: np.ndarray, alive: np.ndarray, live: np.ndarray) -> None:
        """``set_state``'s shared writes: clear the grid, put the living agents ``live`` on
        their cells ``pos[live]``, set ``alive``, forget the last step's deaths and attacks."""
        self._clear_grid()
        self.pos[live] = pos[live]
        pad = self._pad
        self._grid[pos[live, 0] + pad, pos[live, 1] + pad] = live.astype(np.int32)
        self.alive[:] = alive
        self.killed.fill(False)
        self.attack_target.fill(-1)

    def _begin_episode(self) -> np.ndarray | dict[str, np.ndarray]:
        """``reset``'s shared ending (after the world placed its agents and zeroed its
        counters): no deaths, attacks, actions or rewards yet, step 0; the observations."""
        self.killed.fill(False)
        self.attack_target.fill(-1)
        self.last_action.fill(0)
        self.last_reward.fill(0.0)
        self.step_count = 0
        return self._ready_observation()

    def _ready_observation(self) -> np.ndarray | dict[str, np.ndarray]:
        """Mark the world ready to step and return observations written afresh."""
        self._view_step = -2
        self._ready = True
        return self._observation()

    # -- step ---------------------------------------------------------------------------------
    def _step_actions(self, actions: Any) -> np.ndarray:
        """``step``'s opening: refuse a step before ``reset``, take ``default_policy``'s
        actions when none are given, and check them."""
        if not self._ready:
            raise RuntimeError("call reset(seed) before step()")
        if actions is None and self.default_policy is not None:
            actions = self.default_policy(self._observation())
        return self._check_actions(actions)

    def _step_result(self, info: dict[str, Any], observe: bool) -> StepResult:
        """``step``'s return after the kernels ran and ``step_count`` moved on: the
        observations (None unless ``observe``), fresh copies of the rewards and deaths,
        ``truncated`` (the living once ``max_cycles`` steps have run) and ``info``."""
        if self.step_count >= self.config.max_cycles:
            truncated = self.alive.copy()
        else:
            truncated = np.zeros(self.n_agents, dtype=bool)
        obs = self._observation() if observe else None
        return StepResult(obs, self.last_reward.copy(), self.killed.copy(), truncated, info)

    # -- actions ----------------------------------------------------------------------------
    def _first_bad_int_action(self, arr: np.ndarray) -> int:
        """Index of the first living agent with an integer action out of range, else -1."""
        return K.first_bad_action(arr, self.alive, K.N_ACTIONS)

    def _action_error(self, index: int, value: Any) -> str:
        """The message for agent ``index``'s bad action ``value``."""
        raise NotImplementedError

    def _check_actions(self, actions: Any) -> np.ndarray:
        """Validated actions as an integer array, or ValueError naming the first bad agent."""
        if actions is None:
            return self._noop
        arr = np.asarray(actions)
        n = self.n_agents
        if arr.shape != (n,):
            raise ValueError(
                f"actions must have shape ({n},), one per agent (dead agents' entries are "
                f"ignored); got shape {arr.shape}"
            )
        kind = arr.dtype.kind
        if kind in "iu":
            bad = self._first_bad_int_action(arr)
        elif kind == "f":
            with np.errstate(invalid="ignore"):
                wrong = (
                    ~np.isfinite(arr)
                    | (arr != np.floor(arr))
                    | (arr < 0)
                    | (arr >= self._action_limit)
                )
            wrong &= self.alive
            bad = int(np.argmax(wrong)) if wrong.any() else -1
        else:
            raise ValueError(
                f"actions must be integers (any int dtype, or integral floats), got dtype "
                f"{arr.dtype}; e.g. np.asarray(actions, dtype=np.int32)"
            )
        if bad >= 0:
            raise ValueError(self._action_error(bad, arr[bad].item()))
        if kind == "f":
            arr = np.where(self.alive, arr, 0).astype(K.ACTION_DTYPE)
        return arr

    # -- observations -----------------------------------------------------------------------
    def _observation(self) -> np.ndarray | dict[str, np.ndarray]:
        """The current observations in the world's buffers (incremental writes)."""
        if self._view is None:
            self._view = np.zeros((self.n_agents, *self.view_shape), dtype=self.obs_dtype)
        full = self._view_step not in (self.step_count - 1, self.step_count)
        self.write_view(self._view, full=full)
        self._view_step = self.step_count
        if not getattr(self.config, "extra_features", False):
            return self._view
        if self._features is None:
            self._features = np.zeros((self.n_agents, self.feature_size), dtype=np.float32)
        return {"view": self._view, "features": self.features(self._features)}

    def observe(self, out: np.ndarray | None = None) -> np.ndarray:
        """Every agent's view of the current state.

        Args:
            out: ``[N, S, S, C]`` array of ``obs_dtype`` to write into (every value is
                written); None: the world's own buffer.

        Returns:
            ``out`` or the world's buffer (dead agents' rows are zero).
        """
        with numba_threads(self.kernel_threads):
            if out is None:
                obs = self._observation()
                return obs["view"] if isinstance(obs, dict) else obs
            expected = (self.n_agents, *self.view_shape)
            if out.shape != expected or out.dtype != self.obs_dtype or not out.flags.c_contiguous:
                raise ValueError(
                    f"out must be a C-contiguous {self.obs_dtype} array of shape {expected}, "
                    f"got {out.dtype} {out.shape}"
                )
            self.write_view(out, full=True)
            return out

    # -- shared pictures and measurements ------------------------------------------------------
    def _walled_base_image(self) -> np.ndarray:
        """The empty map picture: floor, with a grey ring when the map has walls."""
        base = np.empty((*self.map_shape, 3), dtype=np.uint8)
        base[...] = WALL_COLOUR if self.config.walls else BACKGROUND
        if self.config.walls:
            base[1:-1, 1:-1] = BACKGROUND
        return base

    def _team_density_planes(self) -> np.ndarray:
        """Per-team share of each view-grid block's cells held by a living agent,
        float32[2, S, S] (block ``r`` covers rows ``y`` with ``y * S // H == r``)."""
        view = self.view_shape[0]
        side = self.map_size
        live = self.alive
        by = self.pos[live, 0].astype(np.int64) * view // side
        bx = self.pos[live, 1].astype(np.int64) * view // side
        keys = self.team[live].astype(np.int64) * view * view + by * view + bx
        counts = np.bincount(keys, minlength=2 * view * view).reshape(2, view, view)
        span = np.bincount(np.arange(side) * view // side, minlength=view).astype(np.float64)
        area = np.outer(span, span)
        planes = np.divide(counts, area, out=np.zeros(counts.shape), where=area > 0)
        return planes.astype(np.float32)

    def _write_features(self, out: np.ndarray | None, id_count: int) -> np.ndarray:
        """Extra features, float32[N, F]: ids in binary among ``id_count``, last action
        one-hot, last reward, scaled position (see ``_kernels.write_features``)."""
        if out is None:
            out = np.empty((self.n_agents, self.feature_size), dtype=np.float32)
        with numba_threads(self.kernel_threads):
            K.write_features(
                self.pos,
                self.team,
                self.alive,
                self.last_action,
                self.last_reward,
                id_count,
                self.id_bits,
                self.map_size,
                self.map_size,
                out,
            )
        return out
