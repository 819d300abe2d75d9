"""The MAgent2 engine, array-first: agent types, groups, walls, one step on MAgent2's rules.

``MagentEngine`` follows MAgent2's ``GridWorld`` call for call (``reset`` with given
cells, ``step`` with per-group actions of the listed agents, ``observe``,
``rewards``, ``alive``, ``positions``, ``hp``, ``clear_dead``), so a recorded MAgent2
episode can be replayed against it. Coordinates are MAgent2's ``(x, y)``; an agent of
width 2 sits on the 2x2 square whose top-left is its anchor ``(x, y)``.

One step (``GridWorld::step``):

1. the attacks of every group, in the order set, are shuffled and applied one by one:
   an agent killed earlier in that order never strikes, a killed agent leaves the map
   at once, only the killing blow earns ``kill_reward`` (and no attack-rule reward);
2. step recovery ("starve"): ``step_recover`` heals, a negative one hurts and can kill;
3. moves one by one (on maps above 99 x 99 cells in MAgent2's stripe order), so a cell
   freed by an earlier mover can be entered;
4. the reward rules (``Event(a, "attack", b)``, ``"kill"``, two attackers together);
5. done when some group has no living agent.

Action numbering per agent type: the moves first (the cells of the move circle row by
row, ``(dx, dy)`` from ``(0, -speed)`` to ``(0, +speed)``; the middle one stays), then
the attacks (the attack circle without the body, row by row).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from colonylab.envs.base import check_allocation
from colonylab.envs.grid._threads import numba_threads, resolve_threads
from colonylab.envs.magent import _kernels as K


def circle_range(radius: float, inner: float, parity: int) -> tuple[np.ndarray, np.ndarray]:
    """MAgent2's ``CircleRange``: ``(mask bool[S, S], deltas int32[n, 2] (dx, dy))``, the
    cells with distance < radius (and > inner) from the centre, row by row."""
    eps = 1e-8
    side = 2 * int(radius + eps) + parity
    centre = int(radius)
    if side % 2 != parity:
        side += 1
    shift = 0.5 if parity == 0 else 0.0
    mask = np.zeros((side, side), dtype=bool)
    deltas = []
    for i in range(side):
        for j in range(side):
            d = math.hypot(abs(j - centre + shift), abs(i - centre + shift))
            if d < radius + eps and d > inner - eps:
                mask[i, j] = True
                deltas.append((j - centre, i - centre))
    return mask, np.asarray(deltas, dtype=np.int32).reshape(-1, 2)


@dataclass(frozen=True)
class AgentType:
    """One MAgent2 agent type (``cfg.register_agent_type`` options)."""

    name: str
    hp: float
    speed: float
    view_radius: float
    attack_radius: float
    width: int = 1
    damage: float = 0.0
    step_recover: float = 0.0
    kill_supply: float = 0.0
    kill_reward: float = 0.0
    step_reward: float = 0.0
    dead_penalty: float = 0.0
    attack_penalty: float = 0.0
    attack_in_group: bool = False

    def tables(self) -> dict[str, np.ndarray]:
        """View mask and its offsets, move and attack deltas (MAgent2's ranges)."""
        parity = self.width % 2
        view_mask, _ = circle_range(self.view_radius, 0.0, parity)
        _, moves = circle_range(self.speed, 0.0, 1)
        _, attacks = circle_range(self.attack_radius, self.width / 2.0, parity)
        return {"view": view_mask, "moves": moves, "attacks": attacks}

    @property
    def n_moves(self) -> int:
        return len(self.tables()["moves"])

    @property
    def n_actions(self) -> int:
        t = self.tables()
        return len(t["moves"]) + len(t["attacks"])


@dataclass(frozen=True)
class Rule:
    """A reward rule: ``kind`` ``"attack"`` / ``"kill"`` (``Event(sub, kind, obj)``,
    paying ``value`` to the subject and ``obj_value`` to the object when not None) or
    ``"pair"`` (two of ``sub`` attack one ``obj``: ``value`` to both, per ordered pair)."""

    kind: str
    sub: int
    obj: int
    value: float
    obj_value: float | None = None


@dataclass(frozen=True)
class EngineSpec:
    """A MAgent2 world: map size, agent types per group (in handle order), reward rules,
    ``minimap_mode`` and ``embedding_size``."""

    map_size: int
    groups: tuple[AgentType, ...]
    rules: tuple[Rule, ...]
    minimap_mode: bool = False
    embedding_size: int = 10


_RULE_KINDS = {"attack": K.RULE_ATTACK, "kill": K.RULE_KILL, "pair": K.RULE_PAIR}


def _int_cells(value: Any, name: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.size == 0:
        return np.zeros((0, 2), dtype=np.int32)
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.dtype.kind not in "iu":
        raise ValueError(
            f"{name} must be integers of shape (n, 2) (x, y), got {arr.dtype} {arr.shape}"
        )
    return arr.astype(np.int32)


class MagentEngine:
    """MAgent2's ``GridWorld`` on arrays (see the module docstring).

    Args:
        spec: the world.
        generate_map: ``f(engine, rng) -> (walls int32[K, 2], [int32[n_g, 2] per group])``
            (x, y cells) used by ``reset`` without ``options``.
        threads: Numba threads of the parallel kernels (None: 1 below 4,096 agents).
    """

    def __init__(
        self,
        spec: EngineSpec,
        generate_map: Callable[[MagentEngine, np.random.Generator], tuple[Any, Sequence[Any]]]
        | None = None,
        threads: int | None = None,
    ):
        self.spec = spec
        self.generate_map = generate_map
        self.requested_threads = threads
        self.width = self.height = int(spec.map_size)
        cells = self.width * self.height
        # the map (int32 a cell) and, at MAgent2's densest layouts, ~0.1 agents a cell
        check_allocation(cells * (4 + 0.1 * 64), f"MAgent2 map {self.width} x {self.height}")
        self.n_groups = len(spec.groups)
        tables = [t.tables() for t in spec.groups]
        g = self.n_groups
        max_moves = max(len(t["moves"]) for t in tables)
        max_att = max(max(len(t["attacks"]) for t in tables), 1)
        self.move_dx = np.zeros((g, max_moves), np.int32)
        self.move_dy = np.zeros((g, max_moves), np.int32)
        self.att_dx = np.zeros((g, max_att), np.int32)
        self.att_dy = np.zeros((g, max_att), np.int32)
        self.n_moves = np.zeros(g, np.int32)
        self.n_attacks = np.zeros(g, np.int32)
        self.view_masks, self.view_x1, self.view_y1 = [], [], []
        self.view_lo: list[np.ndarray] = []
        self.view_hi: list[np.ndarray] = []
        for k, t in enumerate(tables):
            self.n_moves[k], self.n_attacks[k] = len(t["moves"]), len(t["attacks"])
            self.move_dx[k, : self.n_moves[k]] = t["moves"][:, 0]
            self.move_dy[k, : self.n_moves[k]] = t["moves"][:, 1]
            self.att_dx[k, : self.n_attacks[k]] = t["attacks"][:, 0]
            self.att_dy[k, : self.n_attacks[k]] = t["attacks"][:, 1]
            centre = int(spec.groups[k].view_radius)
            self.view_masks.append(t["view"])
            rows = t["view"]
            lo = np.where(rows.any(1), rows.argmax(1), 0)
            hi = np.where(rows.any(1), rows.shape[1] - rows[:, ::-1].argmax(1), 0)
            self.view_lo.append(lo.astype(np.int64))
            self.view_hi.append(hi.astype(np.int64))
            self.view_x1.append(-centre)
            self.view_y1.append(-centre)
        self.n_actions = self.n_moves + self.n_attacks
        f32 = np.float32
        types = spec.groups
        self.size_of = np.array([t.width for t in types], np.int32)
        self.hp_max = np.array([t.hp for t in types], f32)
        self.damage = np.array([t.damage for t in types], f32)
        self.step_recover = np.array([t.step_recover for t in types], f32)
        self.kill_supply = np.array([t.kill_supply for t in types], f32)
        self.kill_reward = np.array([t.kill_reward for t in types], f32)
        self.step_reward = np.array([t.step_reward for t in types], f32)
        self.dead_penalty = np.array([t.dead_penalty for t in types], f32)
        self.attack_penalty = np.array([t.attack_penalty for t in types], f32)
        self.attack_in_group = np.array([t.attack_in_group for t in types], bool)
        rules = spec.rules
        self.rule_kind = np.array([_RULE_KINDS[r.kind] for r in rules], np.int32)
        self.rule_sub = np.array([r.sub for r in rules], np.int32)
        self.rule_obj = np.array([r.obj for r in rules], np.int32)
        self.rule_value = np.array([r.value for r in rules], f32)
        self.rule_obj_value = np.array([r.obj_value or 0.0 for r in rules], f32)
        self.rule_obj_paid = np.array([r.obj_value is not None for r in rules], bool)
        # channels: wall, then (has, hp[, minimap]) per group, own group first
        per = 3 if spec.minimap_mode else 2
        self.n_channels = 1 + per * g
        self.channel_of = np.array(
            [[1 + per * ((j - k) % g) for j in range(g)] for k in range(g)], np.int32
        )
        self.feature_sizes = [
            spec.embedding_size + int(self.n_actions[k]) + 1 + (2 if spec.minimap_mode else 0)
            for k in range(g)
        ]
        self.large_map = self.width * self.height > 99 * 99
        self.move_buffers = 16 if self.width * self.height > 1000 * 1000 else 8
        self.rng = np.random.default_rng()
        self.occ = np.full((self.height, self.width), K.EMPTY, np.int32)
        self._alloc(np.zeros(g, np.int64))
        self.kernel_threads = 1
        self._obs_buffers: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # per observer group: cell code -> channel and value (0 empty, 1 wall, 2 + g)
        self._luts = []
        for k in range(g):
            lut_channel = np.zeros(2 + g, np.int64)
            lut_channel[2:] = self.channel_of[k]
            lut_value = np.ones(2 + g, np.float32)
            lut_value[0] = 0.0
            self._luts.append((lut_channel, lut_value))
        self._no_minimap = [np.zeros((0, *self.view_masks[k].shape), np.float32) for k in range(g)]
        self._no_channels = np.zeros(0, np.int32)
        self._version = 0  # bumped by every change of the map or HP
        self._maps_version = -1
        self._code: np.ndarray | None = None
        self._hp_frac: np.ndarray | None = None
        self._ready = False

    # -- state ---------------------------------------------------------------------------
    def _alloc(self, counts: np.ndarray) -> None:
        n = int(counts.sum())
        self.n_agents = n
        self.group_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.group = np.repeat(np.arange(self.n_groups, dtype=np.int32), counts)
        self.pos = np.zeros((n, 2), np.int32)
        self.hp_now = np.zeros(n, np.float32)
        self.dead = np.zeros(n, bool)
        self.listed = np.zeros(n, bool)
        self.next_reward = np.zeros(n, np.float32)
        self.last_reward = np.zeros(n, np.float32)
        self.last_op = np.zeros(n, np.int8)
        self.op_obj = np.full(n, -1, np.int32)
        self.last_action = np.zeros(n, np.int32)
        self._scratch = np.zeros(n, np.int32)
        self.dead_count = np.zeros(self.n_groups, np.int64)
        self._pending: list[tuple[np.ndarray, np.ndarray] | None] = [None] * self.n_groups
        self._group_ids: list[np.ndarray | None] = [None] * self.n_groups

    def group_ids(self, g: int) -> np.ndarray:
        """Ids of group ``g``'s listed agents (not yet cleared), in id order (cached until
        the list changes; do not modify)."""
        ids = self._group_ids[g]
        if ids is None:
            lo, hi = self.group_start[g], self.group_start[g + 1]
            ids = (np.flatnonzero(self.listed[lo:hi]) + lo).astype(np.int64)
            self._group_ids[g] = ids
        return ids

    def listed_ids(self) -> np.ndarray:
        return np.flatnonzero(self.listed).astype(np.int64)

    # -- reset ---------------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        """Clear the map and place walls and agents: ``options={"walls": int32[K, 2],
        "agents": [int32[n_g, 2] per group]}`` (x, y cells; ids in the order given), or
        the world's own map (``generate_map``) drawn with ``seed``."""
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
                raise ValueError(f"seed must be None or an integer >= 0, got {seed!r}")
            self.rng = np.random.default_rng(int(seed))
        options = dict(options or {})
        unknown = sorted(set(options) - {"walls", "agents"})
        if unknown:
            raise ValueError(f"unknown reset option(s) {unknown}; known: 'walls', 'agents'")
        if "agents" in options:
            walls = _int_cells(options.get("walls", ()), "options['walls']")
            agents = options["agents"]
            if len(agents) != self.n_groups:
                raise ValueError(
                    f"options['agents'] must hold {self.n_groups} arrays (one per group), got {len(agents)}"
                )
            cells = [_int_cells(a, f"options['agents'][{k}]") for k, a in enumerate(agents)]
        else:
            if self.generate_map is None:
                raise ValueError(
                    "this engine has no map of its own; pass options={'agents': [...]}"
                )
            walls, cells = self.generate_map(self, self.rng)
            walls = _int_cells(walls, "walls")
            cells = [_int_cells(c, "agents") for c in cells]
        self._place(walls, cells)

    def _place(self, walls: np.ndarray, cells: list[np.ndarray]) -> None:
        w, h = self.width, self.height
        occ = np.full((h, w), K.EMPTY, np.int32)
        occ[0, :] = occ[-1, :] = occ[:, 0] = occ[:, -1] = K.WALL
        if len(walls):
            if (walls < 0).any() or (walls[:, 0] >= w).any() or (walls[:, 1] >= h).any():
                raise ValueError(f"a wall lies off the {w} x {h} map")
            occ[walls[:, 1], walls[:, 0]] = K.WALL
        counts = np.array([len(c) for c in cells], np.int64)
        pos = np.concatenate(cells).astype(np.int32) if counts.sum() else np.zeros((0, 2), np.int32)
        group = np.repeat(np.arange(self.n_groups, dtype=np.int32), counts)
        ids = np.arange(pos.shape[0], dtype=np.int64)
        bad = K.place_agents(occ, pos, self.size_of, group, ids)
        if bad >= 0:  # checked before anything changes
            g = int(group[bad])
            first = int(counts[:g].sum())
            raise ValueError(
                f"agent {bad - first} of group {g} at {tuple(pos[bad].tolist())} "
                f"is not on free cells inside the map's wall ring"
            )
        self._alloc(counts)
        self.pos[:] = pos
        self.occ = occ
        self._version += 1
        self.hp_now[:] = self.hp_max[self.group]
        self.listed[:] = True
        self._group_ids = [None] * self.n_groups
        self.last_action[:] = self.n_actions[self.group]  # MAgent2: "no action yet"
        self.next_reward[:] = self.step_reward[self.group]
        self.kernel_threads = resolve_threads(self.n_agents, self.requested_threads)
        self._ready = True

    # -- step ----------------------------------------------------------------------------
    def set_action(self, g: int, actions: Any) -> None:
        """Group ``g``'s actions, one per listed agent in id order (MAgent2's set_action)."""
        ids = self.group_ids(g)
        arr = np.asarray(actions)
        if arr.shape != (ids.size,) or (arr.size and arr.dtype.kind not in "iu"):
            raise ValueError(
                f"actions of group {g} must be {ids.size} integers (one per listed agent), "
                f"got {arr.dtype} {arr.shape}"
            )
        arr = arr.astype(np.int32)
        if arr.size and (arr.min() < 0 or arr.max() >= self.n_actions[g]):
            k = int(np.argmax((arr < 0) | (arr >= self.n_actions[g])))
            raise ValueError(
                f"action {int(arr[k])} of agent {int(ids[k] - self.group_start[g])} of group {g} "
                f"is outside [0, {int(self.n_actions[g])})"
            )
        self._pending[g] = (ids, arr)

    def step(self, actions: Sequence[Any] | None = None) -> bool:
        """One step; ``actions[g]``: group ``g``'s actions (None: the group does not act).
        Returns MAgent2's ``done`` (some group has no living agent)."""
        if not self._ready:
            raise RuntimeError("call reset() before step()")
        if actions is not None:
            if len(actions) != self.n_groups:
                raise ValueError(
                    f"actions must hold {self.n_groups} arrays (one per group), got {len(actions)}"
                )
            pending = list(self._pending)
            try:
                for g, a in enumerate(actions):
                    if a is not None:
                        self.set_action(g, a)
            except ValueError:
                self._pending = pending
                raise
        with self._threads():
            self._step()
        self._version += 1
        return self.done()

    def _step(self) -> None:
        att_agents, att_index, movers, move_index = [], [], [], []
        for g in range(self.n_groups):
            if self._pending[g] is None:
                continue
            ids, arr = self._pending[g]
            self.last_action[ids] = arr
            is_move = arr < self.n_moves[g]
            movers.append(ids[is_move])
            move_index.append(arr[is_move])
            att_agents.append(ids[~is_move])
            att_index.append(arr[~is_move] - self.n_moves[g])
        self._pending = [None] * self.n_groups
        if att_agents:
            agents = np.concatenate(att_agents)
            index = np.concatenate(att_index).astype(np.int32)
            order = np.arange(agents.size, dtype=np.int64)
            K.splitmix_shuffle(order, int(self.rng.integers(0, 2**63 - 1)))
            K.resolve_attacks(
                agents[order], index[order], self.occ, self.group, self.pos, self.hp_now,
                self.dead, self.next_reward, self.last_op, self.op_obj, self.size_of,
                self.att_dx, self.att_dy, self.hp_max, self.damage, self.kill_supply,
                self.kill_reward, self.dead_penalty, self.attack_penalty,
                self.attack_in_group, self.dead_count,
            )  # fmt: skip
        listed = self.listed_ids()
        K.recover(
            listed, self.occ, self.group, self.pos, self.hp_now, self.dead, self.next_reward,
            self.size_of, self.hp_max, self.step_recover, self.dead_penalty,
        )  # fmt: skip
        if movers:
            agents = np.concatenate(movers)
            index = np.concatenate(move_index).astype(np.int32)
            if self.large_map:
                order = K.large_map_order(
                    np.arange(agents.size, dtype=np.int64), self.pos[agents], self.width,
                    self.move_buffers,
                )  # fmt: skip
                agents, index = agents[order], index[order]
            K.resolve_moves(
                agents, index, self.occ, self.group, self.pos, self.dead, self.size_of,
                self.move_dx, self.move_dy,
            )  # fmt: skip
        K.apply_rules(
            listed, self.group, self.last_op, self.op_obj, self.next_reward, self.rule_kind,
            self.rule_sub, self.rule_obj, self.rule_value, self.rule_obj_value,
            self.rule_obj_paid, self._scratch,
        )  # fmt: skip

    def done(self) -> bool:
        """MAgent2's game-over test: some group has no living listed agent."""
        alive = self.listed & ~self.dead
        counts = np.bincount(self.group[alive], minlength=self.n_groups)
        return bool((counts == 0).any())

    def clear_dead(self) -> None:
        """Drop the dead from the group lists; the living start a new reward."""
        ids = self.listed_ids()
        gone = ids[self.dead[ids]]
        if gone.size:
            self.listed[gone] = False
            self._group_ids = [None] * self.n_groups
        keep = ids[~self.dead[ids]]
        self.last_reward[keep] = self.next_reward[keep]
        self.next_reward[keep] = self.step_reward[self.group[keep]]
        self.last_op[keep] = K.OP_NULL
        self.op_obj[keep] = -1

    # -- what MAgent2's getters return ----------------------------------------------------
    def view_shape(self, g: int) -> tuple[int, int, int]:
        mask = self.view_masks[g]
        return (mask.shape[0], mask.shape[1], self.n_channels)

    def observe(self, g: int, ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(view float32[n, H, W, C], feature float32[n, F])`` of group ``g``'s listed
        agents (or of ``ids``), MAgent2's layout."""
        ids = self.group_ids(g) if ids is None else ids
        view, feature = self._buffers(g, ids.size)
        self.write_observation(g, ids, view, feature)
        return view, feature

    def _buffers(self, g: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Group ``g``'s observation buffers for ``n`` agents. Like MAgent2's
        ``get_observation``, ``observe`` returns these buffers: the next ``observe`` of
        the group overwrites them (copy what you keep). Reused, they cost no page
        faults."""
        held = self._obs_buffers.get(g)
        if held is None or held[0].shape[0] < n:
            side = self.view_shape(g)
            held = (
                np.zeros((n, *side), np.float32),
                np.zeros((n, self.feature_sizes[g]), np.float32),
            )
            self._obs_buffers[g] = held
        return held[0][:n], held[1][:n]

    def _threads(self) -> Any:
        """Run kernels on ``kernel_threads`` (no switch needed when Numba has one thread)."""
        if self.kernel_threads == 1 and numba.config.NUMBA_NUM_THREADS == 1:
            return contextlib.nullcontext()
        return numba_threads(self.kernel_threads)

    def minimap(self, g: int) -> tuple[np.ndarray, np.ndarray, int, int]:
        """``(planes float32[G, VH, VW], channels int32[G], scale_h, scale_w)`` of group
        ``g``'s view (no planes without ``minimap_mode``)."""
        vh, vw, _ = self.view_shape(g)
        scale_h = (self.height + vh - 1) // vh
        scale_w = (self.width + vw - 1) // vw
        if not self.spec.minimap_mode:
            return self._no_minimap[g], self._no_channels, scale_h, scale_w
        planes = K.minimap_planes(
            self.listed_ids(), self.group, self.pos, self.n_groups, vh, vw, scale_h, scale_w
        )
        return planes, (self.channel_of[g] + 2).astype(np.int32), scale_h, scale_w

    def write_observation(
        self, g: int, ids: np.ndarray, view: np.ndarray, feature: np.ndarray
    ) -> None:
        """Write group ``g``'s observations of ``ids`` into ``view`` / ``feature`` (the
        group's own buffers from ``observe``, or any arrays of those shapes)."""
        planes, channels, scale_h, scale_w = self.minimap(g)
        code, hp_frac = self._cell_maps()
        lut_channel, lut_value = self._luts[g]
        with self._threads():
            K.write_observations(
                ids, code, hp_frac, self.group, self.pos, self.last_action, self.last_reward,
                self.size_of, lut_channel, lut_value, self.view_lo[g], self.view_hi[g],
                self.view_x1[g], self.view_y1[g], planes, channels, scale_h, scale_w,
                self.spec.embedding_size, int(self.n_actions[g]), self.spec.minimap_mode,
                view, feature,
            )  # fmt: skip

    def _cell_maps(self) -> tuple[np.ndarray, np.ndarray]:
        """What each cell shows (code, HP fraction), rebuilt once per state change."""
        if self._maps_version != self._version:
            if self._code is None or self._code.shape != self.occ.shape:
                self._code = np.zeros(self.occ.shape, np.uint8)
                self._hp_frac = np.zeros(self.occ.shape, np.float32)
            with self._threads():
                K.build_cell_maps(
                    self.occ, self.group, self.hp_now, self.hp_max, self._code, self._hp_frac
                )
            self._maps_version = self._version
        return self._code, self._hp_frac

    def rewards(self, g: int) -> np.ndarray:
        return self.next_reward[self.group_ids(g)].copy()

    def alive(self, g: int) -> np.ndarray:
        return ~self.dead[self.group_ids(g)]

    def positions(self, g: int) -> np.ndarray:
        return self.pos[self.group_ids(g)].copy()

    def hp(self, g: int) -> np.ndarray:
        return self.hp_now[self.group_ids(g)].copy()

    def num(self, g: int) -> int:
        return int(self.listed[self.group_start[g] : self.group_start[g + 1]].sum())

    def walls(self) -> np.ndarray:
        """int32[K, 2] (x, y) of every wall cell, the border ring included."""
        y, x = np.nonzero(self.occ == K.WALL)
        return np.stack([x, y], axis=1).astype(np.int32)

    def random_blank(
        self, rng: np.random.Generator, n: int, size: int = 1, wall: bool = False
    ) -> np.ndarray:
        """``n`` cells drawn like MAgent2's ``get_random_blank`` (uniform over free
        squares, one after another) and claimed on a scratch copy of the map; used by
        the random map generators. Returns int32[n, 2] (x, y)."""
        occ = self._scratch_occ
        out = np.zeros((n, 2), np.int32)
        for k in range(n):
            for _ in range(self.width * self.height + 1):
                x = int(rng.integers(0, self.width - size))
                y = int(rng.integers(0, self.height - size))
                if K._area_free(occ, x, y, size, -3):
                    break
            else:
                raise ValueError("cannot find a blank position in a filled map")
            occ[y : y + size, x : x + size] = K.WALL if wall else 0
            out[k] = (x, y)
        return out

    def claim(self, cells: Any, size: int = 1) -> np.ndarray:
        """The cells of ``cells`` (x, y) whose square is still free on the scratch map,
        claimed in order; the others are dropped, as MAgent2's ``add_agents`` ignores an
        occupied position. Returns int32[k, 2]."""
        occ = self._scratch_occ
        kept = []
        for x, y in np.asarray(cells, np.int64).reshape(-1, 2).tolist():
            if K._area_free(occ, x, y, size, -3):
                occ[y : y + size, x : x + size] = 0
                kept.append((x, y))
        return np.asarray(kept, np.int32).reshape(-1, 2)

    def add_scratch_walls(self, cells: Any) -> np.ndarray:
        """Mark walls (x, y) on the scratch map (MAgent2's ``add_walls``: a cell held by an
        agent is skipped). Returns the walls placed, int32[k, 2]."""
        occ = self._scratch_occ
        kept = []
        for x, y in np.asarray(cells, np.int64).reshape(-1, 2).tolist():
            if occ[y, x] < 0:
                occ[y, x] = K.WALL
                kept.append((x, y))
        return np.asarray(kept, np.int32).reshape(-1, 2)

    def begin_random_map(self) -> None:
        """Start a scratch map (border walls) for :meth:`random_blank`."""
        occ = np.full((self.height, self.width), K.EMPTY, np.int32)
        occ[0, :] = occ[-1, :] = occ[:, 0] = occ[:, -1] = K.WALL
        self._scratch_occ = occ
