"""Gather: agents forage food patches and may fight over them (inspired by MAgent's gather), array-first.

Not MAgent2's ``gather_v5`` (that one, on MAgent2's own rules, is
``colonylab.envs.magent.gather_v5``): there food is a group of motionless agents with
HP 25 laid out in squares and a lattice, eaten by attacks (+0.5 a bite, +5 the bite
that finishes it), agents have HP 3, damage 6, speed 3 and 33 actions, and nothing
regrows; here food is an amount per cell in regrowing patches, eaten by standing on it.

=====================  ===========================================================
World id               ``gather`` (PettingZoo: ``colonylab.envs.grid.gather_v0``)
Agents                 ``N = agents`` (default 100) of one species, free-for-all:
                       every agent is its own side and may attack any other;
                       PettingZoo names ``agent_0 .. agent_{N-1}``
Map                    ``map_size`` (default: ``ceil(sqrt(agents / density))``, 48
                       for 100 agents at density 0.045), a ring of walls (``walls``);
                       agents on distinct random cells from the reset seed
Food                   a float32 amount per cell (``food``): ``patches`` discs of
                       radius ``patch_radius`` (default 4; number default
                       ``round(H * W / 384)``, 6 on 48 x 48) filled to
                       ``food_capacity`` (5) per cell; centres random from the reset
                       seed (``patch_layout="random"``) or evenly on a ring
                       (``"ring"``, deterministic; one patch: the centre). Patch
                       cells regrow ``regrow`` (0.01) per step up to capacity. Food
                       cells are walkable
State                  ``pos int32[N, 2]`` (y, x), ``team int8[N]`` (all 0),
                       ``hp float32[N]``, ``alive bool[N]``, ``grid int32[H, W]``
                       (agent index, -1 empty, -2 wall), ``food float32[H, W]``,
                       ``patches bool[H, W]`` (the cells that regrow),
                       ``last_action int32[N]``, ``last_reward float32[N]``,
                       ``last_eaten float32[N]``, ``attack_target int32[N]`` (agent hit
                       this step, -1), ``killed bool[N]`` (died this step)
Observation            ``[N, 11, 11, C]`` (view radius 5), C = 5: obstacle,
                       other-agent presence, other-agent HP / max, food / capacity,
                       own HP / max (the same value on every cell of the circle, so
                       a convolution sees it everywhere); the centre cell shows no
                       agent (it is the observer); ``minimap=True`` adds 5 agent and
                       6 food density of the whole map on an 11 x 11 grid (C = 7);
                       cells outside the circle ``dy**2 + dx**2 <= 25`` are 0; dead
                       rows are 0. dtype ``float32`` (default), ``float16`` or
                       ``uint8`` (values x 255, rounded). ``extra_features=True``:
                       obs is ``{"view": ..., "features": float32[N, F]}``, F = id bits
                       + 21 + 1 + 2 (agent index in binary, last action one-hot, last
                       reward, y and x scaled to [0, 1])
Actions                ``Discrete(21)`` per agent, the battle table: 0 no-op; moves
                       1 N, 2 E, 3 S, 4 W, 5 NE, 6 SE, 7 SW, 8 NW, 9 NN, 10 EE, 11 SS,
                       12 WW (2 cells); attacks 13-20 on the cell of moves 1-8
Rewards                step -0.01, eating +0.5 per unit of food, attack -0.1 (any
                       attack), kill +5 to *every* attacker that hit an agent that
                       died of the hits in that step, death -1 (hit or starved)
Rules                  HP 10; hunger 0.05 HP per step (a fasting agent from full HP
                       starves in its 200th step); damage 2 per hit. Order within a
                       step: attacks read the start-of-step state -> damage, deaths
                       by hits (they leave the grid, drop ``corpse_food``, default 0,
                       on their cell) -> moves into cells empty after the deaths
                       (several claims -> the lowest agent index moves) -> eating:
                       ``e = min(eat_rate, food)`` (1.0) off the own cell, HP +
                       ``hp_per_food * e`` (1.0, capped) -> hunger (HP <= 0:
                       starved, no kill reward) -> regrowth
Episode                ``terminated[i]`` is True in the step agent ``i`` dies (it stays
                       dead: ``alive`` False, actions ignored, obs rows zero);
                       ``truncated`` is True for the living once ``max_cycles`` (500)
                       steps have run
Policies               ``policy(name, seed)``: ``random``, ``forage``, ``greedy``,
                       ``noop`` (``gather_policies``); ``step()`` without actions uses
                       ``default_policy`` (the viewer steps that way), else no-ops
Kernels                Numba, ``_kernels.py``: the step (parallel, with sequential
                       passes for hits and move claims: deterministic), the views,
                       the forage/greedy policy, food painting; one thread below
                       4,096 agents, all of Numba's above (``threads``)
=====================  ===========================================================

The observation is the world's own buffer, rewritten in place by the next
``step``/``reset``: ``.copy()`` it to keep it. Rewards, terminated and truncated are
fresh arrays. Without regrowth and corpse food, food is conserved: food eaten so far
plus food on the map equals the food of the reset. Agents eat whenever they stand on
food, even at full HP (the HP gain is capped, the reward is not), so patches empty
fast; on the default map the 260 or so patch cells then regrow about 2.6 food a step,
enough for some 50 agents against a hunger of 0.05 each: the population of foragers
settles near that carrying capacity (about half survive 500 steps of ``forage``).

Example::

    world = GatherWorld(GatherConfig(agents=400))
    obs = world.reset(seed=0)                    # float32[400, 11, 11, 5]
    act = world.policy("forage", seed=0)
    for _ in range(100):
        obs, reward, terminated, truncated, info = world.step(act(obs))
    world.metrics()                              # alive, food, food eaten, kills, step
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
    BACKGROUND,
    OBS_DTYPES,  # noqa: F401  (re-exported)
    WALL_COLOUR,
    GridWorld,
    check_common_fields,
    check_finite_fields,
    is_int,
    is_number,
    threaded_policy,
)

CELLS_PER_PATCH = 384  # default patches: one per this many map cells
MIN_DERIVED_SIZE = 8  # smallest map side derived from ``agents``
STATE_CHANNELS = 4  # wall, agent presence, agent HP / max, food / capacity
_PATCH_GROUND = (22, 36, 26)  # a patch cell with no food left
_FOOD_FULL = np.array([60, 190, 75], dtype=np.uint8)
_AGENT_LOW = np.array([[120, 40, 60]], dtype=np.uint8)  # HP 0
_AGENT_HIGH = np.array([[255, 214, 70]], dtype=np.uint8)  # full HP


@dataclass(frozen=True)
class GatherConfig:
    """Configuration of a gather world (see the module docstring for the rules)."""

    map_size: int | None = None
    """Side of the square map in cells, walls included; None: derived from ``agents``
    and ``density`` (``max(8, ceil(sqrt(agents / density)))``, 48 for 100 agents)."""
    agents: int = 100
    """Number of agents (one species, free-for-all)."""
    density: float = 0.045
    """Agents per map cell, used only to derive ``map_size`` when it is None."""
    walls: bool = True
    """Surround the map with a ring of wall cells; off, the map edge still blocks
    moves and views see outside the map as obstacle."""
    patches: int | None = None
    """Number of food patches; None: ``max(1, round(H * W / 384))`` (6 on 48 x 48)."""
    patch_radius: int = 4
    """Radius of a patch disc: cells with ``dy**2 + dx**2 <= r**2`` (49 cells at 4)."""
    patch_layout: Literal["random", "ring"] = "random"
    """``random``: patch centres on uniformly random free cells from the reset seed
    (discs may overlap); ``ring``: centres evenly spaced on a circle around the map
    centre (deterministic; a single patch sits at the centre)."""
    food_capacity: float = 5.0
    """Food of a full cell: patches start full, regrowth and corpses stop there."""
    regrow: float = 0.01
    """Food a patch cell below capacity regains per step (0: no regrowth)."""
    eat_rate: float = 1.0
    """Most food an agent eats from its own cell per step."""
    hp_per_food: float = 1.0
    """HP gained per unit of food eaten (capped at ``max_hp``)."""
    food_reward: float = 0.5
    """Reward per unit of food eaten."""
    corpse_food: float = 0.0
    """Food a dying agent leaves on its cell (capped at ``food_capacity``; 0: none)."""
    max_hp: float = 10.0
    """Hit points of a new agent, and the cap of eating."""
    hunger: float = 0.05
    """HP every living agent loses per step, after eating."""
    damage: float = 2.0
    """HP an agent loses per hit."""
    view_radius: int = 5
    """Radius of the view circle; the view is ``(2r + 1) x (2r + 1)`` cells (>= 2)."""
    step_reward: float = -0.01
    """Reward of every living agent each step."""
    dead_penalty: float = -1.0
    """Reward of an agent in the step it dies (of hits or of hunger)."""
    attack_penalty: float = -0.1
    """Reward of every attack, whatever the target cell holds."""
    kill_reward: float = 5.0
    """Reward of each attacker that hit an agent in the step it died of the hits."""
    max_cycles: int = 500
    """Steps after which the living are truncated."""
    minimap: bool = False
    """Add two channels: agent and food density of the whole map on the view grid."""
    extra_features: bool = False
    """Return ``{"view", "features"}``: id bits, last action one-hot, last reward, position."""
    obs_dtype: Literal["float32", "float16", "uint8"] = "float32"
    """dtype of the views; ``uint8`` stores ``round(255 * value)``."""
    threads: int | None = None
    """Numba threads of this world's kernels; None: 1 below 4,096 agents (waking threads
    costs more than it saves there), else all (``NUMBA_NUM_THREADS``)."""

    def __post_init__(self) -> None:
        check_common_fields(self, view_radius_low=2)
        for name, at_least in (("map_size", 1), ("patches", 0)):
            value = getattr(self, name)
            if value is not None and not (is_int(value) and value >= at_least):
                raise ValueError(f"{name} must be an integer >= {at_least} or None, got {value!r}")
        for name, value in (("agents", self.agents), ("patch_radius", self.patch_radius)):
            at_least = 1 if name == "agents" else 0
            if not (is_int(value) and value >= at_least):
                raise ValueError(f"{name} must be an integer >= {at_least}, got {value!r}")
        if not (is_number(self.density) and 0.0 < self.density <= 1.0):
            raise ValueError(f"density must be in (0, 1] agents per cell, got {self.density!r}")
        check_finite_fields(
            self,
            (
                "food_capacity",
                "regrow",
                "eat_rate",
                "hp_per_food",
                "corpse_food",
                "max_hp",
                "hunger",
                "damage",
            ),
            at_least_zero=True,
        )
        for name in ("max_hp", "food_capacity"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        check_finite_fields(
            self, ("food_reward", "step_reward", "dead_penalty", "attack_penalty", "kill_reward")
        )
        if self.patch_layout not in ("random", "ring"):
            raise ValueError(f"patch_layout must be 'random' or 'ring', got {self.patch_layout!r}")
        _resolve_size(self)  # refuses a map too small for the agents

    @property
    def size(self) -> int:
        """The map side actually used (``map_size`` or the derived one)."""
        return _resolve_size(self)

    @property
    def n_patches(self) -> int:
        """The number of patches actually used (``patches`` or the derived one)."""
        if self.patches is not None:
            return int(self.patches)
        side = self.size
        return max(1, round(side * side / CELLS_PER_PATCH))


# ---- sizes and layout -----------------------------------------------------------------


def _free_side(side: int, walls: bool) -> int:
    """Side of the square of free cells inside the walls."""
    return side - 2 if walls else side


def _resolve_size(cfg: GatherConfig) -> int:
    """The map side from the config; raises if the agents cannot fit."""
    n = int(cfg.agents)
    if cfg.map_size is not None:
        side = int(cfg.map_size)
    else:
        side = max(MIN_DERIVED_SIZE, math.ceil(math.sqrt(n / cfg.density)))
        while _free_side(side, cfg.walls) ** 2 < n:
            side += 1
    free = max(_free_side(side, cfg.walls), 0)
    if free * free < n:
        need = math.isqrt(n - 1) + 1 + (2 if cfg.walls else 0)
        raise ValueError(
            f"a {side} x {side} map (walls={cfg.walls}) has {free * free} free cells, too few "
            f"for agents={n}; use map_size >= {need}, fewer agents, or map_size=None to "
            "derive the size from density"
        )
    return side


def patch_centres(
    layout: str, n_patches: int, side: int, walls: bool, rng: np.random.Generator
) -> np.ndarray:
    """Map cells ``(y, x)`` of the patch centres, int64[P, 2].

    Args:
        layout: ``"random"`` (uniform over the free cells, from ``rng``) or ``"ring"``
            (evenly spaced on a circle of radius 0.3 x the free side around the centre,
            starting north and going clockwise; ``rng`` is not used).
        n_patches: P.
        side: map side; walls: whether a wall ring takes the border cells.
        rng: the world's Generator.
    """
    border = 1 if walls else 0
    free = _free_side(side, walls)
    if layout == "random":
        return rng.integers(border, border + free, size=(n_patches, 2), dtype=np.int64)
    middle = (side - 1) / 2.0
    radius = 0.3 * free if n_patches > 1 else 0.0
    angle = 2.0 * np.pi * np.arange(n_patches) / max(n_patches, 1)
    ys = np.rint(middle - radius * np.cos(angle)).astype(np.int64)
    xs = np.rint(middle + radius * np.sin(angle)).astype(np.int64)
    return np.stack([ys, xs], axis=1).reshape(n_patches, 2)


def patch_mask(centres: np.ndarray, radius: int, side: int, walls: bool) -> np.ndarray:
    """bool[H, W]: the free cells within ``radius`` of a centre (``dy**2 + dx**2 <= r**2``)."""
    border = 1 if walls else 0
    mask = np.zeros((side, side), dtype=bool)
    ys = np.arange(side)[:, None]
    xs = np.arange(side)[None, :]
    r2 = radius * radius
    for cy, cx in centres:
        y0, y1 = max(cy - radius, 0), min(cy + radius + 1, side)
        x0, x1 = max(cx - radius, 0), min(cx + radius + 1, side)
        mask[y0:y1, x0:x1] |= (ys[y0:y1] - cy) ** 2 + (xs[:, x0:x1] - cx) ** 2 <= r2
    inner = np.zeros_like(mask)
    inner[border : side - border, border : side - border] = True
    return mask & inner


# ---- the world ---------------------------------------------------------------------------


class GatherWorld(GridWorld):
    """Agents, food patches and attacks on a grid, stepped at once by Numba kernels.

    Args:
        config: a ``GatherConfig`` (default: 100 agents on 48 x 48, 6 patches).

    Raises:
        ValueError: a map too small for the agents (from the config).
        BoardTooLargeError: the buffers would not fit in memory.
    """

    # render_rgb() is the world's picture; "human" windows come from envs.render.Viewer
    metadata = {"name": "colonylab/Gather-v0", "render_fps": 20, "render_modes": ["rgb_array"]}
    policies: tuple[str, ...] = ("forage", "greedy", "random", "noop")
    """Scripted policies of :meth:`policy`."""
    team_names = ("agents",)

    def __init__(self, config: GatherConfig | None = None) -> None:
        self.config = cfg = config or GatherConfig()
        self.map_size = side = cfg.size
        self.n_patches = cfg.n_patches
        n = int(cfg.agents)
        self.kernel_threads = resolve_threads(n, cfg.threads)
        """Numba threads this world's kernels run on (``GatherConfig.threads``)."""
        view = self._init_view(7 if cfg.minimap else 5, id_count=n)
        pad = max(self.radius, 2)
        padded = side + 2 * pad
        view_bytes = n * view * view * self.n_channels * self.obs_dtype.itemsize
        feature_bytes = n * self.feature_size * 4 if cfg.extra_features else 0
        map_bytes = padded * padded * (4 + 4 + self.obs_dtype.itemsize) + side * side * 4
        check_allocation(
            view_bytes + feature_bytes + map_bytes + n * 64,
            f"gather of {n:,} agents on {side} x {side} "
            f"({view_bytes / n:,.0f} bytes of observation per agent)",
        )
        self._init_common(n, side, pad)
        self.team = np.zeros(n, dtype=K.TEAM_DTYPE)
        """int8[N], all 0: one species (for the ``emergence.grid`` metrics)."""
        self.hp = np.zeros(n, dtype=K.HP_DTYPE)
        self.last_eaten = np.zeros(n, dtype=np.float32)
        self._hits = np.zeros(n, dtype=np.int32)
        self._all_index = np.arange(n, dtype=np.int64)
        self._food = np.zeros((padded, padded), dtype=np.float32)
        self.food = self._food[pad : pad + side, pad : pad + side]
        """float32[H, W] food per map cell (a view of the padded food map)."""
        self.patches = np.zeros((side, side), dtype=bool)
        """bool[H, W]: the patch cells (they regrow)."""
        self._patch_cells = np.zeros(0, dtype=np.int64)
        self._food_code = np.zeros((padded, padded), dtype=self._kernel_dtype)
        self._code_step = -2  # step at which _food_code / _hp_code were last written
        self._hp_code = np.zeros(n, dtype=self._kernel_dtype)
        self._features: np.ndarray | None = None
        self._minimap = np.zeros((view, view, 2), dtype=self._kernel_dtype)
        self._n_alive = 0
        self._kills = 0
        self._starved = 0
        self._food_eaten = 0.0
        self._initial_food = 0.0
        self._params = tuple(
            np.float32(v)
            for v in (
                cfg.max_hp,
                cfg.damage,
                cfg.hunger,
                cfg.eat_rate,
                cfg.hp_per_food,
                cfg.food_capacity,
                cfg.regrow,
                cfg.corpse_food,
                cfg.step_reward,
                cfg.dead_penalty,
                cfg.attack_penalty,
                cfg.food_reward,
                cfg.kill_reward,
            )
        )

    # -- sizes -------------------------------------------------------------------------------
    @property
    def n_alive(self) -> int:
        """Living agents."""
        return self._n_alive

    # -- reset ---------------------------------------------------------------------------------
    @with_kernel_threads
    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> np.ndarray | dict[str, np.ndarray]:
        """Lay out fresh patches and place the agents; returns the first observations.

        Args:
            seed: seeds ``np_random`` (patch centres, then agent cells; policies have
                their own seeds).
        """
        cfg = self.config
        self.np_random = rng = np.random.default_rng(seed)
        side, pad = self.map_size, self._pad
        self._clear_grid()
        centres = patch_centres(cfg.patch_layout, self.n_patches, side, cfg.walls, rng)
        self.patches[...] = patch_mask(centres, int(cfg.patch_radius), side, cfg.walls)
        ys, xs = np.nonzero(self.patches)
        self._patch_cells = (ys + pad).astype(np.int64) * self._food.shape[1] + xs + pad
        self._food.fill(0.0)
        self.food[self.patches] = np.float32(cfg.food_capacity)
        border = 1 if cfg.walls else 0
        free = _free_side(side, cfg.walls)
        cells = rng.choice(free * free, self.n_agents, replace=False)
        self.pos[:, 0] = border + cells // free
        self.pos[:, 1] = border + cells % free
        self._grid[self.pos[:, 0] + pad, self.pos[:, 1] + pad] = np.arange(
            self.n_agents, dtype=np.int32
        )
        self.hp.fill(cfg.max_hp)
        self.alive.fill(True)
        self.last_eaten.fill(0.0)
        self._n_alive = self.n_agents
        self._kills = 0
        self._starved = 0
        self._food_eaten = 0.0
        self._initial_food = float(self.food.sum(dtype=np.float64))
        self._base_image = None
        self._code_step = -2
        return self._begin_episode()

    @with_kernel_threads
    def set_state(
        self, pos: Any, hp: Any = None, alive: Any = None, food: Any = None
    ) -> np.ndarray | dict[str, np.ndarray]:
        """Place the agents (and food) by hand (scripted scenarios, tests); returns obs.

        Args:
            pos: int[N, 2] map cells ``(y, x)`` (entries of dead agents are ignored).
            hp: float[N]; default ``max_hp`` for the living (the dead get 0).
            alive: bool[N]; default all alive.
            food: float[H, W] food per cell in ``[0, food_capacity]``, 0 on walls;
                None keeps the current food. The patch cells (what regrows) stay.

        Raises:
            ValueError: wrong shapes, a living agent outside the free cells or on
                another's cell, HP outside ``(0, max_hp]``, or bad food; nothing is
                changed then.

        The step counter and the counts (kills, food eaten) are kept; the conservation
        baseline becomes ``food eaten so far + the food now on the map``.
        """
        cfg = self.config
        n, side = self.n_agents, self.map_size
        pos, alive, live, _, _ = self._checked_placement(pos, alive)
        hp = np.where(alive, cfg.max_hp, 0.0) if hp is None else np.asarray(hp)
        if hp.shape != (n,) or hp.dtype.kind not in "iuf":
            raise ValueError(f"hp must be numbers of shape ({n},), got {hp.dtype} {hp.shape}")
        bad_hp = ~((hp[live] > 0) & (hp[live] <= cfg.max_hp))
        if bad_hp.any():
            i = live[np.argmax(bad_hp)]
            raise ValueError(f"hp[{i}] = {hp[i].item()!r} must be in (0, max_hp={cfg.max_hp}]")
        if food is not None:
            food = np.asarray(food)
            if food.shape != (side, side) or food.dtype.kind not in "iuf":
                raise ValueError(
                    f"food must be numbers of shape ({side}, {side}), got {food.dtype} {food.shape}"
                )
            food = food.astype(np.float32)
            bad = ~np.isfinite(food) | (food < 0) | (food > np.float32(cfg.food_capacity))
            if bad.any():
                fy, fx = np.argwhere(bad)[0]
                raise ValueError(
                    f"food[{fy}, {fx}] = {food[fy, fx].item()!r} must be in "
                    f"[0, food_capacity={cfg.food_capacity}]"
                )
            on_wall = (food > 0) & (self.grid == K.WALL)
            if on_wall.any():
                fy, fx = np.argwhere(on_wall)[0]
                raise ValueError(f"food[{fy}, {fx}] lies on a wall; walls hold no food")
        self._place(pos, alive, live)
        self.hp[:] = np.where(alive, hp, 0.0)
        self.last_eaten.fill(0.0)
        if food is not None:
            self.food[...] = food
        self._initial_food = self._food_eaten + float(self.food.sum(dtype=np.float64))
        self._n_alive = int(live.size)
        self._code_step = -2
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
            info)`` with ``info = {"alive": int, "kills": int, "starved": int, "eaten":
            float}`` (deaths by hits, deaths by hunger and food eaten this step).

        Raises:
            ValueError: actions of the wrong shape or dtype, out of range or NaN (naming
                the first bad agent and value); the world is left unchanged.
            RuntimeError: before the first ``reset``.
        """
        acts = self._step_actions(actions)
        K.gather_step(
            acts,
            self.pos,
            self.hp,
            self.alive,
            self._grid,
            self._food,
            self._patch_cells,
            self._pad,
            *self._params,
            self.last_reward,
            self.killed,
            self.attack_target,
            self.last_action,
            self.last_eaten,
            self._hits,
            self._dest,
            self._deaths,
        )
        self.step_count += 1
        kills, starved = int(self._deaths[0]), int(self._deaths[1])
        eaten = float(self.last_eaten.sum(dtype=np.float64))
        self._kills += kills
        self._starved += starved
        self._food_eaten += eaten
        self._n_alive -= kills + starved
        info = {"alive": self._n_alive, "kills": kills, "starved": starved, "eaten": eaten}
        return self._step_result(info, observe)

    def _action_error(self, index: int, value: Any) -> str:
        return (
            f"actions[{index}] (agent agent_{index}) = {value!r} is not a gather action; "
            f"expected an integer in [0, {K.N_ACTIONS}): 0 no-op, 1-12 move, 13-20 attack"
        )

    # -- observations ----------------------------------------------------------------------------
    @with_kernel_threads
    def write_view(self, out: np.ndarray, full: bool, index: np.ndarray | None = None) -> None:
        """Write the views of agents ``index`` (default: all) into the rows of ``out``.

        Args:
            out: ``[len(index), S, S, C]`` array of ``obs_dtype``.
            full: write every value; False writes only the cells inside the view
                circle, the minimap channels and the rows of agents that died this
                step, for buffers whose other values are zeros written before.
            index: int64 agent indices, one per row of ``out``.
        """
        if index is None:
            index = self._all_index
        self._sync_codes()
        kernel_out = out.view(np.uint16) if self.obs_dtype == np.float16 else out
        if self.config.minimap:
            self._minimap[...] = np.moveaxis(self._encode(self.minimap_planes()), 0, -1)
        K.gather_views(
            self._grid,
            self._food_code,
            self._hp_code,
            self.pos,
            self.alive,
            self.killed,
            self._pad,
            self._row_lo,
            self._row_hi,
            self._one,
            self._minimap,
            index,
            full,
            kernel_out,
        )

    def _sync_codes(self) -> None:
        """Encode the food fractions (padded map) and HP fractions for this step."""
        if self._code_step == self.step_count:
            return
        self._food_code[...] = self._encode(self._food / np.float32(self.config.food_capacity))
        self._hp_code[...] = self._encode(self.hp / np.float32(self.config.max_hp))
        self._code_step = self.step_count

    def minimap_planes(self) -> np.ndarray:
        """Agent and food density on the view grid, float32[2, S, S].

        Plane 0: share of each block's cells held by a living agent; plane 1: mean
        ``food / food_capacity`` over the block's cells. Block ``r`` covers the rows
        ``y`` with ``y * S // H == r`` (and likewise columns); blocks without cells
        (maps smaller than the view) are 0.
        """
        view = self.view_shape[0]
        side = self.map_size
        member = np.zeros((view, side), dtype=np.float64)  # block of each row / column
        member[np.arange(side) * view // side, np.arange(side)] = 1.0
        span = member.sum(axis=1)
        area = np.outer(span, span)
        live = self.alive
        by = self.pos[live, 0].astype(np.int64) * view // side
        bx = self.pos[live, 1].astype(np.int64) * view // side
        agents = np.bincount(by * view + bx, minlength=view * view).reshape(view, view)
        food = member @ self.food.astype(np.float64) @ member.T / self.config.food_capacity
        planes = np.zeros((2, view, view), dtype=np.float64)
        np.divide(agents, area, out=planes[0], where=area > 0)
        np.divide(food, area, out=planes[1], where=area > 0)
        return np.clip(planes, 0.0, 1.0).astype(np.float32)

    def features(self, out: np.ndarray | None = None) -> np.ndarray:
        """Extra features of every agent, float32[N, F] (see the module docstring)."""
        return self._write_features(out, self.n_agents)

    def state(self) -> np.ndarray:
        """The global map, float32[H, W, 4]: wall, agent presence, agent HP / max,
        food / capacity."""
        side = self.map_size
        out = np.zeros((side, side, STATE_CHANNELS), dtype=np.float32)
        out[..., 0] = self.grid == K.WALL
        live = np.flatnonzero(self.alive)
        y, x = self.pos[live, 0], self.pos[live, 1]
        out[y, x, 1] = 1.0
        out[y, x, 2] = self.hp[live] / np.float32(self.config.max_hp)
        out[..., 3] = self.food / np.float32(self.config.food_capacity)
        return out

    # -- policies, measurements, pictures --------------------------------------------------------
    def policy(self, name: str, seed: int | None = None) -> Callable[[Any], np.ndarray]:
        """A scripted policy ``obs -> int32[N]``: ``random``, ``forage``, ``greedy``, ``noop``."""
        from colonylab.envs.grid.gather_policies import make_policy

        return threaded_policy(make_policy(name, seed=seed), self.kernel_threads)

    def metrics(self) -> dict[str, float]:
        """Step, living agents, their mean HP, food on the map, food eaten, kills, starved."""
        live = self.hp[self.alive]
        return {
            "step": self.step_count,
            "alive": self._n_alive,
            "hp_mean": float(live.mean(dtype=np.float64)) if live.size else 0.0,
            "food": float(self.food.sum(dtype=np.float64)),
            "food_eaten": self._food_eaten,
            "kills": self._kills,
            "starved": self._starved,
        }

    @with_kernel_threads
    def render_rgb(self) -> np.ndarray:
        """The map, one pixel per cell, ``uint8[H, W, 3]``: food as green by amount (patch
        cells without food faintly green), agents amber shaded by HP (dark = weak),
        walls grey, floor dark."""
        if self._base_image is None:
            base = np.empty((self.map_size, self.map_size, 3), dtype=np.uint8)
            base[...] = BACKGROUND
            base[self.patches] = _PATCH_GROUND
            base[self.grid == K.WALL] = WALL_COLOUR
            self._base_image = base
        image = self._base_image.copy()
        K.paint_food(self.food, np.float32(self.config.food_capacity), _FOOD_FULL, image)
        K.paint_agents(
            self.pos,
            self.team,
            self.hp,
            self.alive,
            self.config.max_hp,
            _AGENT_LOW,
            _AGENT_HIGH,
            image,
        )
        return image
