"""Battle: two teams fight on a square grid (MAgent2 ``battle_v4``'s numbers, our own step), array-first.

MAgent2's ``battle_v4`` itself, on MAgent2's own rules, is
``colonylab.envs.magent.battle_v4`` (``colony rollout battle_v4``). This world keeps
MAgent2's parameters (HP 10, damage 2, recovery 0.1, 13 x 13 view, 21 actions, reward
terms) but resolves a step its own way: attacks are simultaneous (the dying still land
their hits), every attacker of an agent that dies gets the kill reward and its attack
reward, moves claim cells empty after the deaths (a cell freed by a mover this step
cannot be entered, lowest index wins), the actions are numbered 0 no-op then the unit
and 2-cell moves (MAgent2: 13 moves row by row, 6 stays, then attacks), and the
minimap planes are appended at the end. A policy for one walks the wrong way on the other.

=====================  ===========================================================
World id               ``battle`` (PettingZoo: ``colonylab.envs.grid.battle_v0``)
Agents                 ``2 n``: indices ``0..n-1`` red (team 0), ``n..2n-1`` blue
                       (team 1); ``n = 81`` on the default 45 x 45 map
State                  ``pos int32[N, 2]`` (y, x), ``team int8[N]``, ``hp float32[N]``,
                       ``alive bool[N]``, ``grid int32[H, W]`` (agent index, -1
                       empty, -2 wall), ``last_action int32[N]``,
                       ``last_reward float32[N]``, ``attack_target int32[N]`` (enemy
                       hit this step, -1), ``killed bool[N]`` (died this step)
Observation            ``[N, 13, 13, C]`` (view radius 6), C = 5: obstacle, own-team
                       presence, own-team HP / max, enemy presence, enemy HP / max;
                       ``minimap=True`` adds 6 own-team and 7 enemy density of the
                       whole map on a 13 x 13 grid (C = 7); cells outside the view
                       circle ``dy**2 + dx**2 <= 36`` are 0. dtype ``float32``
                       (default), ``float16`` or ``uint8`` (values x 255, rounded).
                       ``extra_features=True``: obs is ``{"view": ..., "features":
                       float32[N, F]}`` with F = id bits + 21 + 1 + 2 (agent id within
                       its team in binary, last action one-hot, last reward, y and x
                       scaled to [0, 1])
Actions                ``Discrete(21)`` per agent: 0 no-op; moves 1 N, 2 E, 3 S, 4 W,
                       5 NE, 6 SE, 7 SW, 8 NW, 9 NN, 10 EE, 11 SS, 12 WW (2 cells);
                       attacks 13-20 on the cell of moves 1-8 (N E S W NE SE SW NW),
                       i.e. the 8 cells within range 1.5
Rewards                step -0.005, death -0.1, attack -0.1 (any attack), hitting an
                       enemy +0.2, kill +5 to *every* attacker that hit the agent that
                       died in that step
Rules                  HP 10, damage 2 per hit, recovery 0.1 per step (capped); attacks
                       are simultaneous and read the state at the start of the step;
                       friendly fire does no damage; the dead leave the grid that
                       step; then moves: into cells empty after the deaths, several
                       claims on one cell -> the lowest agent index moves
Episode                ``terminated[i]`` is True in the step agent ``i`` dies (it stays
                       dead: ``alive`` False, actions ignored, obs rows zero);
                       ``truncated`` is True for the living once ``max_cycles`` steps
                       have run
Placement              ``blocks`` (default, MAgent-like, deterministic): each team in a
                       block with one empty cell between agents, facing the other
                       across a gap of 6 cells; ``random``: distinct random cells
Sizes                  ``agents=N`` (total) sets ``N // 2`` a side on a map of side
                       ``ceil(sqrt((N / 2) / density))`` (density 0.04 a side, as in
                       MAgent); scales to 1,000,000 agents (map 3536 x 3536)
Policies               ``policy(name, seed)``: ``random``, ``greedy``, ``noop``,
                       ``A-vs-B`` (red A, blue B); ``step()`` without actions uses
                       ``default_policy`` (the viewer steps that way), else no-ops
Kernels                Numba, ``_kernels.py``: the step (parallel with sequential
                       conflict passes: deterministic), the views (parallel over
                       agents), features, greedy policy, rendering; one thread
                       below 4,096 agents, all of Numba's above (``threads``)
=====================  ===========================================================

The observation is the world's own buffer, rewritten in place by the next
``step``/``reset`` (no copy of ``N x 3.4 KB`` per step): ``.copy()`` it to keep it.
Rewards, terminated and truncated are fresh arrays.

Example::

    world = BattleWorld(BattleConfig(agents=10_000))
    obs = world.reset(seed=0)                    # float32[10000, 13, 13, 5]
    act = world.policy("greedy-vs-random", seed=0)
    for _ in range(100):
        obs, reward, terminated, truncated, info = world.step(act(obs))
    world.metrics()                              # team sizes, HP, kills, step
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from colonylab.envs.base import StepResult, check_allocation
from colonylab.envs.grid import _kernels as K
from colonylab.envs.grid._threads import resolve_threads, with_kernel_threads
from colonylab.envs.grid._world import (
    OBS_DTYPES,  # noqa: F401  (re-exported)
    GridWorld,
    check_common_fields,
    check_finite_fields,
    is_int,
    threaded_policy,
)

TEAM_NAMES = ("red", "blue")
BLOCK_GAP = 3  # columns between the map centre and each team's block (MAgent: 3)
_TEAM_LOW = np.array([[90, 22, 26], [22, 40, 96]], dtype=np.uint8)  # HP 0
_TEAM_HIGH = np.array([[255, 84, 64], [80, 150, 255]], dtype=np.uint8)  # full HP


@dataclass(frozen=True)
class BattleConfig:
    """Configuration of a battle; the defaults are MAgent2's ``battle_v4``."""

    map_size: int | None = None
    """Side of the square map in cells; None: 45, or derived from ``agents`` /
    ``agents_per_team`` and ``density``."""
    agents: int | None = None
    """Total agents of both teams (``agents // 2`` a side); sizes the map from
    ``density`` unless ``map_size`` is given."""
    agents_per_team: int | None = None
    """Agents a side (instead of ``agents``); default: ``floor(sqrt(density * map_size**2))**2``,
    MAgent's count (81 on 45 x 45)."""
    density: float = 0.04
    """Agents a side per map cell, used to derive a count or a map size (MAgent: 0.04)."""
    walls: bool = True
    """Surround the map with a ring of wall cells (as MAgent does); off, the map edge
    still blocks moves and views see outside the map as obstacle."""
    placement: Literal["blocks", "random"] = "blocks"
    """``blocks``: two facing blocks, agents on every other cell (deterministic);
    ``random``: distinct uniformly random cells from the reset seed."""
    max_hp: float = 10.0
    """Hit points of a new agent, and the cap of recovery."""
    damage: float = 2.0
    """HP an agent loses per hit."""
    recover: float = 0.1
    """HP a living agent regains per step (MAgent's ``step_recover``)."""
    view_radius: int = 6
    """Radius of the view circle; the view is ``(2r + 1) x (2r + 1)`` cells (>= 2)."""
    step_reward: float = -0.005
    """Reward of every living agent each step."""
    dead_penalty: float = -0.1
    """Reward of an agent in the step it dies."""
    attack_penalty: float = -0.1
    """Reward of every attack, whatever the target cell holds."""
    attack_opponent_reward: float = 0.2
    """Reward of an attack that hits an enemy."""
    kill_reward: float = 5.0
    """Reward of each attacker that hit an agent in the step it died."""
    max_cycles: int = 1000
    """Steps after which the living are truncated."""
    minimap: bool = False
    """Add two channels: own-team and enemy density of the whole map on the view grid."""
    extra_features: bool = False
    """Return ``{"view", "features"}``: id bits, last action one-hot, last reward, position."""
    obs_dtype: Literal["float32", "float16", "uint8"] = "float32"
    """dtype of the views; ``uint8`` stores ``round(255 * value)``."""
    threads: int | None = None
    """Numba threads of this world's kernels; None: 1 below 4,096 agents (waking threads
    costs more than it saves there), else all (``NUMBA_NUM_THREADS``)."""

    def __post_init__(self) -> None:
        for name in ("map_size", "agents", "agents_per_team"):
            value = getattr(self, name)
            if value is not None and not (is_int(value) and value >= 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
        if self.map_size is not None and self.map_size < 3:
            raise ValueError(f"map_size must be >= 3, got {self.map_size}")
        if self.agents is not None and self.agents < 2:
            raise ValueError(f"agents must be >= 2 (one a side), got {self.agents}")
        if (
            self.agents is not None
            and self.agents_per_team is not None
            and self.agents // 2 != self.agents_per_team
        ):
            raise ValueError(
                f"agents={self.agents} and agents_per_team={self.agents_per_team} disagree; "
                "give one of them"
            )
        if not (isinstance(self.density, (int, float)) and 0.0 < self.density <= 0.5):
            raise ValueError(
                f"density must be in (0, 0.5] agents a side per cell, got {self.density!r}"
            )
        check_common_fields(self, view_radius_low=2)
        check_finite_fields(self, ("max_hp", "damage", "recover"), at_least_zero=True)
        if self.max_hp <= 0:
            raise ValueError(f"max_hp must be > 0, got {self.max_hp!r}")
        check_finite_fields(
            self,
            (
                "step_reward",
                "dead_penalty",
                "attack_penalty",
                "attack_opponent_reward",
                "kill_reward",
            ),
        )
        if self.placement not in ("blocks", "random"):
            raise ValueError(f"placement must be 'blocks' or 'random', got {self.placement!r}")
        _resolve_sizes(self)  # refuses a map too small for the agents

    @property
    def size(self) -> int:
        """The map side actually used (``map_size`` or the derived one)."""
        return _resolve_sizes(self)[0]

    @property
    def team_size(self) -> int:
        """Agents a side actually used."""
        return _resolve_sizes(self)[1]


# ---- sizes and placement ------------------------------------------------------------


def _block_layout(size: int, n: int, walls: bool) -> tuple[int, int, int, int, int, int] | None:
    """Where two facing blocks of ``n`` agents fit: ``(spacing, rows, cols, top, left0, left1)``.

    Prefers one empty cell between agents (spacing 2, as MAgent) and a gap of
    ``BLOCK_GAP`` columns each side of the centre, then tighter layouts. None if
    nothing fits.
    """
    border = 1 if walls else 0
    inner = size - 2 * border
    centre = size // 2
    for spacing in (2, 1):
        for gap in range(BLOCK_GAP, 0, -1):
            avail = min(centre - gap - border, size - border - centre - gap)
            max_cols = (avail + spacing - 1) // spacing
            max_rows = (inner + spacing - 1) // spacing
            if max_cols < 1 or max_rows < 1:
                continue
            cols = max(math.isqrt(n - 1) + 1, -(-n // max_rows))
            if cols > max_cols:
                continue
            rows = -(-n // cols)
            span_rows = (rows - 1) * spacing + 1
            span_cols = (cols - 1) * spacing + 1
            top = border + (inner - span_rows) // 2
            return spacing, rows, cols, top, centre - gap - span_cols, centre + gap
    return None


def _fits(size: int, n: int, walls: bool, placement: str) -> bool:
    if placement == "blocks":
        return _block_layout(size, n, walls) is not None
    inner = size - 2 * (1 if walls else 0)
    return inner > 0 and 2 * n <= inner * inner


def _resolve_sizes(cfg: BattleConfig) -> tuple[int, int]:
    """``(map side, agents a side)`` from the config; raises if they cannot fit."""
    if cfg.agents_per_team is not None:
        n = int(cfg.agents_per_team)
    elif cfg.agents is not None:
        n = int(cfg.agents) // 2
    else:
        n = None
    if cfg.map_size is not None:
        size = int(cfg.map_size)
    elif n is not None:
        size = max(8, math.ceil(math.sqrt(n / cfg.density)))
        while not _fits(size, n, cfg.walls, cfg.placement):
            size += 1
    else:
        size = 45
    if n is None:
        n = math.isqrt(int(cfg.density * size * size))
        n *= n
        if n < 1:
            raise ValueError(
                f"a {size} x {size} map at density {cfg.density} holds no agent; "
                "give agents_per_team or a larger map_size"
            )
    if not _fits(size, n, cfg.walls, cfg.placement):
        need = size + 1
        while not _fits(need, n, cfg.walls, cfg.placement):
            need += 1
        raise ValueError(
            f"a {size} x {size} map (walls={cfg.walls}) cannot hold {n} agents a side "
            f"with placement={cfg.placement!r}; use map_size >= {need}, fewer agents"
            + (", or placement='random'" if cfg.placement == "blocks" else "")
        )
    return size, n


# ---- the world ---------------------------------------------------------------------------


class BattleWorld(GridWorld):
    """Two teams on a grid, stepped all at once by Numba kernels (see the module docstring).

    Args:
        config: a ``BattleConfig`` (default: MAgent2's battle on 45 x 45, 81 a side).

    Raises:
        ValueError: a map too small for the agents (from the config).
        BoardTooLargeError: the buffers would not fit in memory.
    """

    # render_rgb() is the world's picture; "human" windows come from envs.render.Viewer
    metadata = {"name": "colonylab/Battle-v0", "render_fps": 20, "render_modes": ["rgb_array"]}
    policies: tuple[str, ...] = (
        "random",
        "greedy",
        "noop",
        "greedy-vs-random",
        "random-vs-greedy",
        "greedy-vs-noop",
    )
    """Scripted policies of :meth:`policy` (any ``<red>-vs-<blue>`` of random, greedy,
    noop works; these are listed)."""
    team_names = TEAM_NAMES

    def __init__(self, config: BattleConfig | None = None) -> None:
        self.config = cfg = config or BattleConfig()
        self.map_size, self.team_size = _resolve_sizes(cfg)
        n = 2 * self.team_size
        side = self.map_size
        view = self._init_view(7 if cfg.minimap else 5, id_count=self.team_size)
        pad = max(self.radius, 2)
        padded = side + 2 * pad
        view_bytes = n * view * view * self.n_channels * self.obs_dtype.itemsize
        feature_bytes = n * self.feature_size * 4 if cfg.extra_features else 0
        plane_bytes = 2 * padded * padded * 5 * self.obs_dtype.itemsize
        check_allocation(
            view_bytes
            + feature_bytes
            + plane_bytes
            + padded * padded * 4
            + side * side * 3
            + n * 72,
            f"battle of {n:,} agents on {side} x {side} "
            f"({view_bytes / n:,.0f} bytes of observation per agent)",
        )
        self._init_common(n, side, pad)
        self.kernel_threads = resolve_threads(n, cfg.threads)
        """Numba threads this world's kernels run on (``BattleConfig.threads``)."""
        self.team = np.repeat(np.arange(2, dtype=K.TEAM_DTYPE), self.team_size)
        self.hp = np.zeros(n, dtype=K.HP_DTYPE)
        self._hits = np.zeros(n, dtype=np.int32)
        self._vacated = np.full(n, -1, dtype=np.int64)
        self._nothing_vacated = np.full(n, -1, dtype=np.int64)
        self._all_index = np.arange(n, dtype=np.int64)
        self._features: np.ndarray | None = None
        self._minimap = np.zeros((2, view, view, 2), dtype=self._kernel_dtype)
        # per-team maps of what an agent sees in each cell (see _kernels.sync_planes)
        self._planes = np.zeros((2, padded, padded, 5), dtype=self._kernel_dtype)
        self._planes_step = -2  # step at which the planes were last brought up to date
        self._team_alive = np.zeros(2, dtype=np.int64)
        self._kills = np.zeros(2, dtype=np.int64)
        self._params = tuple(
            np.float32(v)
            for v in (
                cfg.max_hp,
                cfg.damage,
                cfg.recover,
                cfg.step_reward,
                cfg.dead_penalty,
                cfg.attack_penalty,
                cfg.attack_opponent_reward,
                cfg.kill_reward,
            )
        )

    # -- sizes ------------------------------------------------------------------------------
    @property
    def team_alive(self) -> np.ndarray:
        """Living agents per team, ``int64[2]`` (a copy)."""
        return self._team_alive.copy()

    # -- reset -------------------------------------------------------------------------------
    @with_kernel_threads
    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> np.ndarray | dict[str, np.ndarray]:
        """Place both teams afresh; returns the first observations.

        Args:
            seed: seeds ``np_random`` (random placement; policies have their own seeds).
        """
        self.np_random = np.random.default_rng(seed)
        n, side, pad = self.team_size, self.map_size, self._pad
        self._clear_grid()
        border = self._border
        if self.config.placement == "blocks":
            spacing, rows, cols, top, left0, left1 = _block_layout(side, n, self.config.walls)
            k = np.arange(n)
            ys = top + (k // cols) * spacing
            xs = (k % cols) * spacing
            self.pos[:n, 0] = ys
            self.pos[:n, 1] = left0 + xs
            self.pos[n:, 0] = ys
            self.pos[n:, 1] = left1 + xs
        else:
            inner = side - 2 * border
            cells = self.np_random.choice(inner * inner, 2 * n, replace=False)
            self.pos[:, 0] = border + cells // inner
            self.pos[:, 1] = border + cells % inner
        self._grid[self.pos[:, 0] + pad, self.pos[:, 1] + pad] = np.arange(2 * n, dtype=np.int32)
        self.hp.fill(self.config.max_hp)
        self.alive.fill(True)
        self._team_alive[:] = n
        self._kills[:] = 0
        self._planes_step = -2
        return self._begin_episode()

    @with_kernel_threads
    def set_state(
        self, pos: Any, hp: Any = None, alive: Any = None
    ) -> np.ndarray | dict[str, np.ndarray]:
        """Place the agents by hand (scripted scenarios, tests); returns the observations.

        Args:
            pos: int[N, 2] map cells ``(y, x)`` (entries of dead agents are ignored).
            hp: float[N]; default ``max_hp`` for the living (the dead get 0).
            alive: bool[N]; default all alive.

        Raises:
            ValueError: wrong shapes, a living agent outside the map, on a wall or on
                another's cell, or HP outside ``(0, max_hp]``; nothing is changed then.

        The step counter and the kill counts are kept; ``np_random`` is not touched.
        """
        n = self.n_agents
        pos, alive, live, _, _ = self._checked_placement(pos, alive)
        hp = np.where(alive, self.config.max_hp, 0.0) if hp is None else np.asarray(hp)
        if hp.shape != (n,):
            raise ValueError(f"hp must have shape ({n},), got {hp.shape}")
        bad_hp = ~((hp[live] > 0) & (hp[live] <= self.config.max_hp))
        if bad_hp.any():
            i = live[np.argmax(bad_hp)]
            raise ValueError(f"hp[{i}] = {hp[i]!r} must be in (0, max_hp={self.config.max_hp}]")
        self._place(pos, alive, live)
        self.hp[:] = np.where(alive, hp, 0.0)
        self._team_alive[:] = np.bincount(self.team[live], minlength=2)
        self._planes_step = -2
        return self._ready_observation()

    # -- step ----------------------------------------------------------------------------------
    @with_kernel_threads
    def step(self, actions: Any = None, *, observe: bool = True) -> StepResult:
        """Advance every agent one step.

        Args:
            actions: integer[N] (dead agents' entries are ignored), or None: the
                ``default_policy``'s actions, else no-ops.
            observe: build the observations (False: ``obs`` is None, the step is
                cheaper; ``observe()`` builds them later).

        Returns:
            ``StepResult(obs, reward float32[N], terminated bool[N], truncated bool[N],
            info)`` with ``info = {"team_alive": int64[2], "kills": int64[2]}`` (kills
            this step, credited to the killers' team).

        Raises:
            ValueError: actions of the wrong shape or dtype, out of range or NaN (naming
                the first bad agent index and value); the world is left unchanged.
            RuntimeError: before the first ``reset``.
        """
        acts = self._step_actions(actions)
        K.battle_step(
            acts,
            self.pos,
            self.team,
            self.hp,
            self.alive,
            self._grid,
            self._pad,
            *self._params,
            self.last_reward,
            self.killed,
            self.attack_target,
            self.last_action,
            self._hits,
            self._dest,
            self._vacated,
            self._deaths,
        )
        self.step_count += 1
        deaths = self._deaths
        self._team_alive -= deaths
        kills = deaths[::-1].copy()  # friendly fire does no damage: every death is a kill
        self._kills += kills
        info = {"team_alive": self._team_alive.copy(), "kills": kills}
        return self._step_result(info, observe)

    def _action_error(self, index: int, value: Any) -> str:
        t = int(self.team[index])
        name = f"{TEAM_NAMES[t]}_{index - t * self.team_size}"
        return (
            f"actions[{index}] (agent {name}) = {value!r} is not a battle action; "
            f"expected an integer in [0, {K.N_ACTIONS}): 0 no-op, 1-12 move, 13-20 attack"
        )

    # -- observations ---------------------------------------------------------------------------
    @with_kernel_threads
    def write_view(self, out: np.ndarray, full: bool, index: np.ndarray | None = None) -> None:
        """Write the views of agents ``index`` (default: all) into the rows of ``out``.

        Args:
            out: ``[len(index), S, S, C]`` C-contiguous array of ``obs_dtype``.
            full: write every value; False writes only the cells inside the view
                circle, the minimap channels and the rows of agents that died this
                step, for buffers whose other values are zeros written before.
            index: int64 agent indices, one per row of ``out``.
        """
        if index is None:
            index = self._all_index
        self._sync_planes()
        kernel_out = out.view(np.uint16) if self.obs_dtype == np.float16 else out
        minimap = self._minimap_code() if self.config.minimap else self._minimap
        K.write_views(
            self._planes.reshape(2, self._planes.shape[1], -1),
            self._pad,
            self.pos,
            self.team,
            self.alive,
            self.killed,
            self._row_lo,
            self._row_hi,
            minimap,
            self.n_channels,
            index,
            full,
            kernel_out.reshape(len(index), -1),
        )

    def _sync_planes(self) -> None:
        """Bring the per-team view planes to the current step (O(N); O(H W) after a gap)."""
        if self._planes_step == self.step_count:
            return
        if self._planes_step == self.step_count - 1:
            vacated = self._vacated
        else:  # reset, or steps taken without observations: rebuild
            K.reset_planes(self._planes, self._grid, self._one)
            vacated = self._nothing_vacated
        hp_code = self._encode(self.hp / np.float32(self.config.max_hp))
        K.sync_planes(
            self._planes, self._pad, self.pos, self.team, self.alive, vacated, hp_code, self._one
        )
        self._planes_step = self.step_count

    def minimap_planes(self) -> np.ndarray:
        """Team densities on the view grid, float32[2, S, S]: share of each block's cells
        held by a living agent of the team (block ``r`` covers rows ``y`` with
        ``y * S // H == r``, and likewise columns)."""
        return self._team_density_planes()

    def _minimap_code(self) -> np.ndarray:
        planes = self._encode(self.minimap_planes())
        self._minimap[0, ..., 0] = planes[0]
        self._minimap[0, ..., 1] = planes[1]
        self._minimap[1, ..., 0] = planes[1]
        self._minimap[1, ..., 1] = planes[0]
        return self._minimap

    def features(self, out: np.ndarray | None = None) -> np.ndarray:
        """Extra features of every agent, float32[N, F] (see the module docstring)."""
        return self._write_features(out, self.team_size)

    def state(self) -> np.ndarray:
        """The global map, float32[H, W, 5]: wall, red presence, red HP / max, blue
        presence, blue HP / max."""
        side = self.map_size
        out = np.zeros((side, side, 5), dtype=np.float32)
        out[..., 0] = self.grid == K.WALL
        live = np.flatnonzero(self.alive)
        y, x = self.pos[live, 0], self.pos[live, 1]
        channel = 1 + 2 * self.team[live].astype(np.int64)
        out[y, x, channel] = 1.0
        out[y, x, channel + 1] = self.hp[live] / np.float32(self.config.max_hp)
        return out

    # -- policies, measurements, pictures ----------------------------------------------------------
    def policy(self, name: str, seed: int | None = None) -> Callable[[Any], np.ndarray]:
        """A scripted policy ``obs -> int32[N]``: ``random``, ``greedy``, ``noop``, or
        ``"<red>-vs-<blue>"`` (e.g. ``greedy-vs-random``) for one per team."""
        from colonylab.envs.grid.policies import make_policy

        return threaded_policy(make_policy(name, self.team, seed=seed), self.kernel_threads)

    def metrics(self) -> dict[str, float]:
        """Team sizes, total HP per team, kills so far (per killer's team), step."""
        hp = np.bincount(self.team, weights=self.hp, minlength=2)
        out: dict[str, float] = {"step": self.step_count}
        for t, name in enumerate(TEAM_NAMES):
            out[f"{name}_alive"] = int(self._team_alive[t])
            out[f"{name}_hp"] = float(hp[t])
            out[f"{name}_kills"] = int(self._kills[t])
        return out

    @with_kernel_threads
    def render_rgb(self) -> np.ndarray:
        """The map, one pixel per cell, ``uint8[H, W, 3]``: red and blue agents shaded by
        HP (dark = hurt), walls grey, floor dark."""
        if self._base_image is None:
            self._base_image = self._walled_base_image()
        image = self._base_image.copy()
        K.paint_agents(
            self.pos,
            self.team,
            self.hp,
            self.alive,
            self.config.max_hp,
            _TEAM_LOW,
            _TEAM_HIGH,
            image,
        )
        return image
