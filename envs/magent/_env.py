"""What the six MAgent2 worlds share: the world definition, MAgent2's PettingZoo
``ParallelEnv`` over :class:`MagentEngine`, and the array-first Colony Lab world.

``MagentParallelEnv`` behaves like MAgent2's ``magent_parallel_env``: agents named
``<group name>_<i>`` in handle order, observations ``view`` (plus, with
``minimap_mode`` or ``extra_features``, the features tiled over the view as extra
planes), rewards and deaths read after the step and before ``clear_dead``, every agent
terminated once some group is wiped out, truncation after ``max_cycles`` steps. A
missing action of a living agent counts as "stay" (MAgent2 would read out of bounds).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils import wrappers
from pettingzoo.utils.conversions import parallel_to_aec_wrapper

from colonylab.envs.base import StepResult, check_render_mode, no_policy
from colonylab.envs.magent import _kernels as K
from colonylab.envs.magent._engine import EngineSpec, MagentEngine

GROUP_COLOURS = ((220, 70, 70), (70, 110, 230), (90, 200, 110), (230, 190, 60))
"""Picture colours by group (handle order)."""
FLOOR = (16, 17, 24)
WALL_COLOUR = (118, 120, 130)


@dataclass(frozen=True)
class WorldDef:
    """One MAgent2 world: its PettingZoo name, group names (handle order), the groups
    that act (gather's food does not), its engine spec and map from a config, the
    rewards' range (MAgent2's ``reward_range``) and its smallest map."""

    name: str
    names: tuple[str, ...]
    spec: Callable[[Any], EngineSpec]
    generate_map: Callable[[Any, MagentEngine, np.random.Generator], tuple[Any, list[Any]]]
    reward_values: Callable[[Any], list[float]]
    active: tuple[int, ...] | None = None
    min_map_size: int = 7
    enemies: tuple[tuple[int, ...], ...] = ()
    """For the greedy policy: the groups each group attacks."""


def check_config(cfg: Any, min_map_size: int) -> None:
    """The checks MAgent2's constructors make, as one-line ValueErrors."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.name == "map_size":
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, np.integer))
                or value < min_map_size
            ):
                raise ValueError(f"map_size must be an integer >= {min_map_size}, got {value!r}")
        elif f.name == "max_cycles":
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"max_cycles must be a positive integer, got {value!r}")
        elif f.name in ("minimap_mode", "extra_features"):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{f.name} must be True or False, got {value!r}")
        elif f.name == "threads":
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(f"threads must be a positive integer or None, got {value!r}")
        elif f.type in ("float", float) and (
            isinstance(value, bool)
            or not isinstance(value, (int, float, np.number))
            or not np.isfinite(value)
        ):
            raise ValueError(f"{f.name} must be a finite number, got {value!r}")


def build_engine(definition: WorldDef, cfg: Any) -> MagentEngine:
    """The engine of ``cfg`` (not reset)."""
    return MagentEngine(
        definition.spec(cfg),
        generate_map=lambda engine, rng: definition.generate_map(cfg, engine, rng),
        threads=getattr(cfg, "threads", None),
    )


class MagentParallelEnv(ParallelEnv):
    """MAgent2's PettingZoo parallel env on the Numba engine (see the module docstring)."""

    def __init__(
        self,
        definition: WorldDef,
        config: Any,
        render_mode: str | None = None,
        seed: int | None = None,
    ):
        self.metadata = {
            "render_modes": ["human", "rgb_array"],
            "name": definition.name,
            "render_fps": 5,
        }
        self.render_mode = check_render_mode(render_mode, self.metadata)
        self.definition = definition
        self.config = config
        self.map_size = config.map_size
        self.max_cycles = config.max_cycles
        self.minimap_mode = config.minimap_mode
        self.extra_features = config.extra_features
        self.engine = build_engine(definition, config)
        self.engine.reset(seed=seed)
        engine = self.engine
        self.handles = definition.active or tuple(range(engine.n_groups))
        counts = [engine.num(g) for g in self.handles]
        self.possible_agents = [
            f"{definition.names[g]}_{i}"
            for g, n in zip(self.handles, counts, strict=False)
            for i in range(n)
        ]
        self.agents = self.possible_agents[:]
        self._names = {
            g: [f"{definition.names[g]}_{i}" for i in range(n)]
            for g, n in zip(self.handles, counts, strict=True)
        }
        self._names_cache: dict[int, tuple[np.ndarray, list[str]]] = {}
        self._pool: dict[int, list[np.ndarray]] = {}
        self._first_id = {g: int(engine.group_start[g]) for g in self.handles}
        values = np.asarray(definition.reward_values(config), dtype=np.float64)
        self.reward_range = (float(np.minimum(values, 0).sum()), float(np.maximum(values, 0).sum()))
        self._obs_spaces, self._act_spaces = {}, {}
        for g, n in zip(self.handles, counts, strict=False):
            vh, vw, c = engine.view_shape(g)
            extra = (
                engine.feature_sizes[g] if self.extra_features else (2 if self.minimap_mode else 0)
            )
            low = np.zeros((vh, vw, c + extra), np.float32)
            high = np.full((vh, vw, c + extra), 2.0, np.float32)
            if self.extra_features:
                idx = c + extra - (3 if self.minimap_mode else 1)
                low[:, :, idx], high[:, :, idx] = self.reward_range
            for i in range(n):
                name = f"{definition.names[g]}_{i}"
                self._obs_spaces[name] = spaces.Box(low=low, high=high, dtype=np.float32)
                self._act_spaces[name] = spaces.Discrete(int(engine.n_actions[g]))
        self.frames = 0
        self._viewer = None

    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._act_spaces[agent]

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        """``options``: ``{"walls": ..., "agents": ...}`` places them (the engine's
        ``reset``); other keys are ignored, as PettingZoo envs do."""
        known = {k: v for k, v in (options or {}).items() if k in ("walls", "agents")}
        if "agents" in known:
            agents = known["agents"]
            sizes = [len(self._names[g]) for g in self.handles]
            given = [len(agents[g]) if g < len(agents) else -1 for g in self.handles]
            if given != sizes:
                raise ValueError(
                    f"options['agents'] must keep the group sizes {sizes} of possible_agents, "
                    f"got {given}"
                )
        self.engine.reset(seed=seed, options=known or None)
        self.agents = self.possible_agents[:]
        self.frames = 0
        obs = self._observations()
        return obs, {a: {} for a in self.agents}

    def _group_obs(self, g: int) -> tuple[np.ndarray, np.ndarray]:
        """Observations of group ``g``'s listed agents as MAgent2's env assembles them
        (features tiled into planes when requested), and their ids."""
        engine = self.engine
        ids = engine.group_ids(g)
        if not (self.minimap_mode or self.extra_features):
            view = self._free_buffer(g, ids.size)
            feature = np.empty((ids.size, engine.feature_sizes[g]), np.float32)
            engine.write_observation(g, ids, view, feature)
            return view, ids
        view, feature = engine.observe(g, ids)
        if self.minimap_mode and not self.extra_features:
            feature = feature[:, -2:]
        tiled = np.broadcast_to(feature[:, None, None, :], (*view.shape[:3], feature.shape[1]))
        return np.concatenate([view, tiled], axis=-1), ids

    def _free_buffer(self, g: int, n: int) -> np.ndarray:
        """A view array for ``n`` of group ``g``'s agents that nobody else holds: a
        buffer of the group's pool whose earlier observations have all been dropped
        (reference count), else a new one. Observations handed out stay valid as long as
        they are kept, and a loop that rebinds ``obs`` each step cycles two buffers
        without fresh memory (fresh arrays kept alive into the next step cost page
        faults)."""
        pool = self._pool.setdefault(g, [])
        for k in range(len(pool)):
            if sys.getrefcount(pool[k]) == 2 and pool[k].shape[0] >= n:  # pool + argument
                return pool[k][:n]
        buf = np.empty((n, *self.engine.view_shape(g)), np.float32)
        if len(pool) < 4:
            pool.append(buf)
        return buf

    def _observations(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for g in self.handles:
            view, ids = self._group_obs(g)
            out.update(zip(self._listed_names(g, ids), view, strict=True))
        return out

    def _listed_names(self, g: int, ids: np.ndarray) -> list[str]:
        """Names of group ``g``'s listed agents ``ids`` (cached with the engine's list)."""
        cached = self._names_cache.get(g)
        if cached is None or cached[0] is not ids:
            names, first = self._names[g], self._first_id[g]
            cached = (ids, [names[i] for i in (ids - first).tolist()])
            self._names_cache[g] = cached
        return cached[1]

    def step(self, actions: dict[str, Any]):
        engine = self.engine
        full: list[np.ndarray | None] = [None] * engine.n_groups
        listed = []
        for g in self.handles:
            ids = engine.group_ids(g)
            names = self._listed_names(g, ids)
            listed.append((g, ids, names))
            try:
                acts = list(map(actions.__getitem__, names))
            except KeyError:  # a living agent without an action stays
                stay = int(engine.n_moves[g]) // 2
                acts = [actions.get(a, stay) for a in names]
            full[g] = np.asarray(acts, dtype=np.int64).reshape(-1)
        done = engine.step(full)
        self.frames += 1
        truncated = self.frames >= self.max_cycles
        rewards: dict[str, float] = {}
        terminations: dict[str, bool] = {}
        observations: dict[str, np.ndarray] = {}
        any_dead = done
        for g, ids, names in listed:
            rewards.update(zip(names, engine.next_reward[ids].tolist(), strict=True))
            if done:
                terminations.update(dict.fromkeys(names, True))
            else:
                dead = engine.dead[ids]
                any_dead = any_dead or bool(dead.any())
                terminations.update(zip(names, dead.tolist(), strict=True))
            view, _ = self._group_obs(g)
            observations.update(zip(names, view, strict=True))
        truncations = dict.fromkeys(self.agents, truncated)
        infos = {a: {} for a in self.agents}
        engine.clear_dead()
        if truncated or done:
            self.agents = []
        elif any_dead:
            self.agents = [a for a in self.agents if not terminations[a]]
        if self.render_mode == "human":
            self.render()
        return observations, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        """MAgent2's global state, float32[S, S, 1 + 2 G] (walls; per group presence and
        HP / max HP at the agents' anchors), indexed ``[x, y]`` like MAgent2's."""
        engine = self.engine
        state = np.zeros((self.map_size, self.map_size, 1 + 2 * engine.n_groups), np.float32)
        walls = engine.walls()
        state[walls[:, 0], walls[:, 1], 0] = 1
        for g in range(engine.n_groups):
            ids = engine.group_ids(g)
            x, y = engine.pos[ids, 0], engine.pos[ids, 1]
            state[x, y, 1 + 2 * g] = 1
            state[x, y, 2 + 2 * g] = np.where(
                engine.dead[ids], 0.0, engine.hp_now[ids] / engine.hp_max[g]
            )
        return state

    @property
    def state_space(self) -> spaces.Box:
        return spaces.Box(
            0.0, 2.0, (self.map_size, self.map_size, 1 + 2 * self.engine.n_groups), np.float32
        )

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            return None
        image = render_picture(self.engine)
        if self.render_mode == "rgb_array":
            return image
        return self._show(image)

    def _show(self, image: np.ndarray) -> None:
        import pygame

        if self._viewer is None:
            pygame.init()
            scale = max(1, 720 // max(image.shape[:2]))
            self._viewer = (
                pygame.display.set_mode((image.shape[1] * scale, image.shape[0] * scale)),
                scale,
            )
            pygame.display.set_caption(f"Colony Lab - {self.metadata['name']}")
        screen, scale = self._viewer
        pygame.event.pump()
        surface = pygame.surfarray.make_surface(
            np.repeat(np.repeat(image, scale, 0), scale, 1).swapaxes(0, 1)
        )
        screen.blit(surface, (0, 0))
        pygame.display.flip()
        return None

    def close(self) -> None:
        if self._viewer is not None:
            import pygame

            pygame.display.quit()
            self._viewer = None


def render_picture(engine: MagentEngine) -> np.ndarray:
    """uint8[H, W, 3]: floor, walls grey, each living agent's cells in its group's colour
    (darker as it loses HP)."""
    occ = engine.occ
    image = np.empty((*occ.shape, 3), np.uint8)
    image[...] = FLOOR
    image[occ == K.WALL] = WALL_COLOUR
    ys, xs = np.nonzero(occ >= 0)
    who = occ[ys, xs]
    g = engine.group[who]
    shade = 0.45 + 0.55 * np.clip(engine.hp_now[who] / engine.hp_max[g], 0, 1)
    colours = np.asarray(GROUP_COLOURS, np.float32)[g % len(GROUP_COLOURS)] * shade[:, None]
    image[ys, xs] = colours.astype(np.uint8)
    return image


def make_aec(raw_env: Callable[..., AECEnv]) -> Callable[..., AECEnv]:
    """MAgent2's ``env``: the AEC conversion wrapped like PettingZoo's own envs."""

    def env_fn(**kwargs: Any) -> AECEnv:
        env = raw_env(**kwargs)
        env = wrappers.AssertOutOfBoundsWrapper(env)
        return wrappers.OrderEnforcingWrapper(env)

    return env_fn


def aec(parallel: ParallelEnv) -> AECEnv:
    return parallel_to_aec_wrapper(parallel)


def make_raw_env(parallel_env: Callable[..., ParallelEnv], name: str) -> Callable[..., AECEnv]:
    """MAgent2's ``raw_env``: ``parallel_env``'s arguments (same signature), AEC-converted."""

    @functools.wraps(parallel_env)
    def raw_env(*args: Any, **kwargs: Any) -> AECEnv:
        return aec(parallel_env(*args, **kwargs))

    raw_env.__doc__ = f"MAgent2's ``{name}.raw_env`` (the AEC conversion)."
    raw_env.__name__ = raw_env.__qualname__ = "raw_env"
    raw_env.__signature__ = inspect.signature(parallel_env).replace(return_annotation=AECEnv)  # type: ignore[attr-defined]
    return raw_env


def make_world_fn(definition: WorldDef, config_cls: type) -> Callable[..., MagentEngine]:
    """The module's ``world(**kwargs)``: the array-first engine of MAgent2's keywords, reset."""

    def world(**kwargs: Any) -> MagentEngine:
        kw = {k: v for k, v in kwargs.items() if k not in ("seed", "render_mode")}
        engine = build_engine(definition, config_cls(**kw))
        engine.reset(seed=kwargs.get("seed"))
        return engine

    world.__doc__ = (
        f"The array-first engine of ``{definition.name}(**kwargs)`` (MAgent2's keywords), reset."
    )
    return world


# -- the array-first Colony Lab world ---------------------------------------------------------
BATTLE_POLICIES = ("random", "greedy", "noop", "greedy-vs-random", "random-vs-greedy")
PLAIN_POLICIES = ("random", "greedy", "noop")


class MagentWorld:
    """A MAgent2 world behind Colony Lab's world contract (``envs/base.py``).

    ``reset(seed, options) -> obs``: a dict of group name -> float32[n_g, H, W, C]
    (MAgent2's view plus tiled features, zeros for the dead); ``step(actions)`` takes
    int[N] over every acting agent (``possible_agents`` order; the dead's entries are
    ignored) and returns ``StepResult`` with float32[N] rewards, bool[N] terminated
    (died, or everyone once a group is wiped out) and truncated (at ``max_cycles``).
    ``world.engine`` is the :class:`MagentEngine`.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, config: Any):
        self.config = config
        self.definition: WorldDef = config.definition()
        self.env = MagentParallelEnv(self.definition, config)
        self.engine = self.env.engine
        self.policies = (
            BATTLE_POLICIES
            if self.definition.name in ("battle_v4", "battlefield_v5")
            else PLAIN_POLICIES
        )
        self.metadata = {
            **type(self).metadata,
            "name": getattr(config, "world_id", self.definition.name),
        }
        self.handles = self.env.handles
        self.n_agents = len(self.env.possible_agents)
        self._ids = np.concatenate(
            [
                np.arange(self.engine.group_start[g], self.engine.group_start[g + 1])
                for g in self.handles
            ]
        )
        self.step_count = 0
        self.default_policy: Callable[[Any], np.ndarray] | None = None
        self._ready = False
        self.deaths = np.zeros(self.engine.n_groups, np.int64)
        self.last_reward = np.zeros(0, np.float32)
        self.attack_target = np.zeros(0, np.int32)

    # -- contract -------------------------------------------------------------------------
    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> dict[str, np.ndarray]:
        self.engine.reset(seed=seed, options=options)
        self._ids = np.concatenate(
            [
                np.arange(self.engine.group_start[g], self.engine.group_start[g + 1])
                for g in self.handles
            ]
        )
        self.n_agents = self._ids.size
        self.step_count = 0
        self.deaths[:] = 0
        self.last_reward = np.zeros(self.n_agents, np.float32)
        self.attack_target = np.full(self.n_agents, -1, np.int32)
        self._ready = True
        return self._observation()

    @property
    def alive(self) -> np.ndarray:
        """bool[N]: living agents (acting groups)."""
        e = self.engine
        return e.listed[self._ids] & ~e.dead[self._ids]

    def _observation(self) -> dict[str, np.ndarray]:
        e = self.engine
        out = {}
        for g in self.handles:
            n = int(e.group_start[g + 1] - e.group_start[g])
            view, ids = self.env._group_obs(g)
            if ids.size == n:  # every slot listed (ids is the group's whole range, in
                # order): the pooled view already is the full array -- no zeros + scatter
                out[self.definition.names[g]] = view
                continue
            full = np.zeros((n, *view.shape[1:]), np.float32)
            full[ids - e.group_start[g]] = view
            out[self.definition.names[g]] = full
        return out

    def _check_actions(self, actions: Any) -> np.ndarray:
        n = self.n_agents
        if actions is None:
            return np.concatenate(
                [np.full(e_n, int(self.engine.n_moves[g]) // 2) for g, e_n in self._group_sizes()]
            )
        arr = np.asarray(actions)
        if arr.shape != (n,):
            raise ValueError(
                f"actions must have shape ({n},), one per agent (dead agents' entries are ignored); got shape {arr.shape}"
            )
        if arr.dtype.kind not in "iu":
            raise ValueError(
                f"actions must be integers, got dtype {arr.dtype}; e.g. np.asarray(actions, dtype=np.int32)"
            )
        limit = np.concatenate(
            [np.full(e_n, int(self.engine.n_actions[g])) for g, e_n in self._group_sizes()]
        )
        bad = self.alive & ((arr < 0) | (arr >= limit))
        if bad.any():
            k = int(np.argmax(bad))
            raise ValueError(
                f"action {int(arr[k])} of agent {self.env.possible_agents[k]} is outside [0, {int(limit[k])}) (MAgent2's numbering: moves, then attacks)"
            )
        return arr.astype(np.int64)

    def _group_sizes(self) -> list[tuple[int, int]]:
        e = self.engine
        return [(g, int(e.group_start[g + 1] - e.group_start[g])) for g in self.handles]

    def step(self, actions: Any = None) -> StepResult:
        if not self._ready:
            raise RuntimeError("call reset(seed) before step()")
        if actions is None and self.default_policy is not None:
            actions = self.default_policy(self._observation())
        arr = self._check_actions(actions)
        e = self.engine
        per = [None] * e.n_groups
        start = 0
        for g, n in self._group_sizes():
            ids = e.group_ids(g)
            per[g] = arr[start + ids - e.group_start[g]]
            start += n
        before = self.alive.copy()
        done = e.step(per)
        reward = np.zeros(self.n_agents, np.float32)
        reward[before] = e.next_reward[self._ids[before]]
        died = before & e.dead[self._ids]
        for g in range(e.n_groups):
            lo, hi = e.group_start[g], e.group_start[g + 1]
            self.deaths[g] += int((e.dead[lo:hi] & e.listed[lo:hi]).sum())
        terminated = died | (before if done else np.zeros_like(died))
        hit = e.last_op[self._ids] != K.OP_NULL
        target = np.full(self.n_agents, -1, np.int32)
        slot = np.full(e.n_agents, -1, np.int32)
        slot[self._ids] = np.arange(self._ids.size, dtype=np.int32)
        target[hit] = slot[e.op_obj[self._ids[hit]]]
        self.attack_target = target
        e.clear_dead()
        self.step_count += 1
        truncated = (
            before & ~terminated
            if self.step_count >= self.config.max_cycles
            else np.zeros(self.n_agents, bool)
        )
        self.last_reward = reward
        return StepResult(self._observation(), reward, terminated, truncated, {"done": done})

    def render_rgb(self) -> np.ndarray:
        image = render_picture(self.engine)
        scale = max(1, 512 // max(image.shape[:2]))
        return np.repeat(np.repeat(image, scale, 0), scale, 1) if scale > 1 else image

    def metrics(self) -> dict[str, float]:
        """``<group>_alive`` per group, ``<group>_kills`` (two-team worlds: the other
        team's deaths so far) and ``reward_mean`` of the last step."""
        e = self.engine
        alive = e.listed & ~e.dead
        names = self.definition.names
        out = {
            f"{name}_alive": int(alive[e.group_start[g] : e.group_start[g + 1]].sum())
            for g, name in enumerate(names)
        }
        if len(names) == 2:
            out[f"{names[0]}_kills"] = int(self.deaths[1])
            out[f"{names[1]}_kills"] = int(self.deaths[0])
        out["reward_mean"] = float(self.last_reward.mean()) if self.last_reward.size else 0.0
        return out

    # -- the grid-world view the emergence overlay reads ----------------------------------
    @property
    def team_names(self) -> tuple[str, ...]:
        return tuple(self.definition.names[g] for g in self.handles)

    @property
    def team(self) -> np.ndarray:
        """int8[N]: each acting agent's group (handle order among the acting groups)."""
        return np.searchsorted(self.handles, self.engine.group[self._ids]).astype(np.int8)

    @property
    def pos(self) -> np.ndarray:
        """int32[N, 2]: each acting agent's anchor as (row, column) = (y, x)."""
        return self.engine.pos[self._ids][:, ::-1].copy()

    @property
    def grid(self) -> np.ndarray:
        """int32[H, W]: the acting agent on each cell (its index here), -1 empty, -2 wall
        or a passive group's agent."""
        occ = self.engine.occ
        index = np.full(self.engine.n_agents + 2, -1, np.int32)
        index[self._ids] = np.arange(self._ids.size, dtype=np.int32)
        index[-2] = -2  # WALL
        index[-1] = -1  # EMPTY
        out = index[occ]
        passive = (occ >= 0) & (out < 0)
        out[passive] = -2
        return out

    def policy(self, name: str, seed: int | None = None) -> Callable[[Any], np.ndarray]:
        if name not in self.policies:
            raise no_policy(self, name)
        parts = name.split("-vs-")
        rng = np.random.default_rng(seed)
        world = self

        def act(obs: Any = None) -> np.ndarray:
            return world.scripted_actions(parts, rng)

        return act

    def scripted_actions(self, parts: list[str], rng: np.random.Generator) -> np.ndarray:
        """Actions of every acting agent: ``parts`` names one policy for all groups or
        one per group (``random``, ``greedy``, ``noop``)."""
        e = self.engine
        out = []
        for k, (g, n) in enumerate(self._group_sizes()):
            kind = parts[k] if len(parts) > 1 else parts[0]
            if kind == "random":
                acts = rng.integers(0, int(e.n_actions[g]), n)
            elif kind == "noop":
                acts = np.full(n, int(e.n_moves[g]) // 2)
            else:
                acts = np.full(n, int(e.n_moves[g]) // 2)
                ids = e.group_ids(g)
                ids = ids[~e.dead[ids]]
                acts[ids - e.group_start[g]] = greedy(e, g, ids, self.definition.enemies[g], rng)
            out.append(acts.astype(np.int64))
        return np.concatenate(out)


def greedy(
    engine: MagentEngine,
    g: int,
    ids: np.ndarray,
    enemies: tuple[int, ...],
    rng: np.random.Generator,
) -> np.ndarray:
    """The scripted greedy actions (MAgent2's numbering) of group ``g``'s agents ``ids``."""
    e = engine
    enemy_of = np.zeros((e.n_groups, e.n_groups), bool)
    enemy_of[g, list(enemies)] = True
    alive = e.listed & ~e.dead
    foes = np.flatnonzero(alive & np.isin(e.group, list(enemies)))
    tx = np.zeros(e.n_groups, np.int64)
    ty = np.zeros(e.n_groups, np.int64)
    if foes.size:
        tx[g], ty[g] = int(e.pos[foes, 0].mean()), int(e.pos[foes, 1].mean())
    else:
        tx[g], ty[g] = e.width // 2, e.height // 2
    out = np.zeros(ids.size, np.int64)
    radius = int(e.spec.groups[g].view_radius)
    K.greedy_actions(
        ids, e.occ, e.group, e.pos, e.size_of, enemy_of, e.move_dx, e.move_dy, e.n_moves,
        e.att_dx, e.att_dy, e.n_attacks, radius, tx, ty, rng.integers(0, 64, ids.size), out,
    )  # fmt: skip
    return out
