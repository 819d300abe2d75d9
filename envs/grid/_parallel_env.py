"""The PettingZoo ``ParallelEnv`` adapter shared by the grid worlds.

Each world module (``battle_v0``, ``gather_v0``, ``pursuit_v0``) subclasses
:class:`GridParallelEnv` and says only what differs: how to build its world, what
its agents are called, which group (team or species) each agent is in, and that
group's spaces. Everything per-agent -- the dicts, the checks of the actions
dict, the observation buffers -- lives here, the only place with Python objects
per agent.

Observations are views into buffers that are reused only once nobody holds them
any more (reference counts), so returned values never change under the caller.
An agent leaves ``agents`` in the step it dies; worlds with births (a ``born``
bool[N] array set in the step) add the newborn back, in index order.

:class:`GridEnvBase` holds what every grid adapter shares, including
``pursuit_v0`` (which names its agents per life and so keeps its own bookkeeping):
the render mode, ``state``, ``render``, ``close`` and the checks of an actions dict's
values (:func:`action_values`).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from colonylab.envs.base import check_allocation, check_render_mode

_POOL_SIZE = 4  # observation buffers kept for reuse
_RENDER_PIXELS = 400  # rgb_array pictures are at least this wide (when the map is smaller)


def view_space(world: Any) -> gymnasium.Space:
    """The observation space of a grid world's agents: the view ``Box`` (``0..1``, or
    ``0..255`` for uint8), or ``Dict(view, features)`` with ``extra_features``."""
    high = 255 if world.obs_dtype == np.uint8 else 1.0
    view = spaces.Box(0, high, world.view_shape, dtype=world.obs_dtype)
    if not world.config.extra_features:
        return view
    features = spaces.Box(-np.inf, np.inf, (world.feature_size,), dtype=np.float32)
    return spaces.Dict({"view": view, "features": features})


def check_actions_mapping(actions: Any) -> None:
    """TypeError unless ``actions`` is a mapping ``{agent: action}``."""
    if not isinstance(actions, Mapping):
        raise TypeError(f"actions must be a dict {{agent: action}}, got {type(actions).__name__}")


def action_values(
    values: list[Any], limit: np.ndarray, bad_action: Callable[[int, Any], str]
) -> np.ndarray:
    """The actions dict's values as an integer array, each an integer in ``[0, limit[k])``,
    or ValueError with ``bad_action(k, value)`` for the first one that is not."""
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError):
        arr = np.asarray(values, dtype=object)
    if arr.shape != (len(values),) or arr.dtype.kind not in "iuf":
        for k, value in enumerate(values):
            if not _is_int_like(value):
                raise ValueError(bad_action(k, value))
        arr = np.asarray([int(np.asarray(v).item()) for v in values], dtype=np.int64)
    with np.errstate(invalid="ignore"):
        bad = (arr < 0) | (arr >= limit) | (arr != np.floor(arr))
    if bad.any():
        k = int(np.argmax(bad))
        raise ValueError(bad_action(k, values[k]))
    return arr


class GridEnvBase(ParallelEnv):
    """What every grid ``ParallelEnv`` shares: render mode, ``state``, ``render``,
    ``close``. A subclass sets ``metadata["name"]``, ``self.world`` and calls
    :meth:`_set_render_mode` first in its ``__init__``."""

    metadata = {
        "render_modes": ["human", "rgb_array"],
        "name": "colonylab/Grid-v0",
        "render_fps": 20,
        "is_parallelizable": True,
    }

    def _set_render_mode(self, render_mode: str | None) -> None:
        self.render_mode = check_render_mode(render_mode, self.metadata)
        self._viewer: Any = None

    def _positions(self, names: list[Any]) -> np.ndarray:
        """Positions in ``possible_agents`` of ``names``, int64; ValueError (from
        ``_index``) naming the first unknown one."""
        try:
            return np.fromiter(
                map(self.agent_name_mapping.__getitem__, names), np.int64, len(names)
            )
        except (KeyError, TypeError):
            return np.array([self._index(a) for a in names], dtype=np.int64)  # names it

    def state(self) -> np.ndarray:
        """The global map ``float32[H, W, C]`` (see ``state_space`` and the world's card)."""
        return self.world.state()

    def render(self) -> np.ndarray | None:
        """``rgb_array``: ``uint8[H k, W k, 3]``; ``human``: draws the viewer, returns None."""
        if self.render_mode is None:
            gymnasium.logger.warn(
                "render() called without a render_mode; pass render_mode='rgb_array' or 'human'"
            )
            return None
        if self.render_mode == "rgb_array":
            image = self.world.render_rgb()
            k = max(1, -(-_RENDER_PIXELS // self.world.map_size))
            return np.repeat(np.repeat(image, k, axis=0), k, axis=1) if k > 1 else image
        if self._viewer is None:
            from colonylab.envs.render.viewer import Viewer

            self._viewer = Viewer(self.world, title=f"Colony Lab - {self.metadata['name']}")
        self._viewer.process_events()
        self._viewer.draw()
        return None

    def close(self) -> None:
        """Close the viewer (if any); safe to call twice."""
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None


class GridParallelEnv(GridEnvBase):
    """PettingZoo ``ParallelEnv`` over an array-first grid world.

    Subclasses set ``metadata["name"]`` and implement :meth:`_make_world`,
    :meth:`_agent_names` and :meth:`_spaces`; they may override :meth:`_groups`
    (default: the world's ``team``), :meth:`_state_space` and :meth:`_action_help`.

    Args:
        render_mode: None, ``"rgb_array"`` or ``"human"``.
        **config: fields of the world's config dataclass.
    """

    def __init__(self, render_mode: str | None = None, **config: Any) -> None:
        self._set_render_mode(render_mode)
        self.world = world = self._make_world(**config)
        self.possible_agents = self._agent_names(world)
        self.agent_name_mapping = {name: i for i, name in enumerate(self.possible_agents)}
        self.max_cycles = world.config.max_cycles
        self._group = np.asarray(self._groups(world), dtype=np.int64)
        # one space object per group, shared by its agents
        self._obs_spaces, self._action_spaces = self._spaces(world)
        self._n_actions = np.array([s.n for s in self._action_spaces], dtype=np.int64)
        self.state_space = self._state_space(world)
        self.agents: list[str] = []
        self._live = np.empty(0, dtype=np.int64)  # world index of each entry of agents
        self._live_mask = np.zeros(world.n_agents, dtype=bool)
        self._pool: list[np.ndarray] = []

    # -- what subclasses say -------------------------------------------------------------
    def _make_world(self, **config: Any) -> Any:
        raise NotImplementedError

    def _agent_names(self, world: Any) -> list[str]:
        """Names of the world's agents, in index order."""
        raise NotImplementedError

    def _groups(self, world: Any) -> np.ndarray:
        """Group (team, species) of each agent: selects its spaces."""
        return world.team

    def _spaces(self, world: Any) -> tuple[list[gymnasium.Space], list[spaces.Discrete]]:
        """Observation and action space of each group."""
        raise NotImplementedError

    def _state_space(self, world: Any) -> spaces.Box:
        """The ``Box`` of ``state()``: ``float32[H, W, C]`` in [0, 1]."""
        shape = (*world.map_shape, world.state().shape[-1])
        return spaces.Box(0.0, 1.0, shape, dtype=np.float32)

    def _action_help(self, index: int) -> str:
        """What a valid action of agent ``index`` is, for error messages."""
        n = int(self._n_actions[self._group[index]])
        return f"an integer in [0, {n})"

    # -- spaces ------------------------------------------------------------------------------
    def _index(self, agent: str) -> int:
        try:
            return self.agent_name_mapping[agent]
        except (KeyError, TypeError):
            first, last = self.possible_agents[0], self.possible_agents[-1]
            raise ValueError(
                f"unknown agent {agent!r}; agents are named {first} .. {last} (env.possible_agents)"
            ) from None

    def observation_space(self, agent: str) -> gymnasium.Space:
        """The (cached, per-group) observation space of ``agent``."""
        return self._obs_spaces[self._group[self._index(agent)]]

    def action_space(self, agent: str) -> gymnasium.Space:
        """The (cached, per-group) ``Discrete`` action space of ``agent``."""
        return self._action_spaces[self._group[self._index(agent)]]

    # -- episode -------------------------------------------------------------------------------
    def reset(
        self, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, Any], dict[str, dict]]:
        """Start an episode; returns ``(observations, infos)`` for every living agent."""
        self.world.reset(seed=seed)
        self._set_live(np.flatnonzero(self.world.alive))
        if self._viewer is not None:
            self._viewer.refresh()
        return self._observations(), {agent: {} for agent in self.agents}

    def _set_live(self, live: np.ndarray) -> None:
        self._live = live.astype(np.int64)
        self._live_mask[:] = False
        self._live_mask[self._live] = True
        names = self.possible_agents
        if len(live) == len(names):
            self.agents = names[:]
        else:
            self.agents = [names[i] for i in self._live.tolist()]

    def step(
        self, actions: Mapping[str, Any]
    ) -> tuple[dict, dict[str, float], dict[str, bool], dict[str, bool], dict[str, dict]]:
        """Step every agent at once.

        Raises:
            TypeError: ``actions`` is not a mapping.
            ValueError: an action for a dead, done or unknown agent, or a value that is
                not a valid integer action; nothing is stepped then.
        """
        world = self.world
        acts = self._actions_array(actions)
        result = world.step(acts, observe=False)
        agents = self.agents
        live = self._live
        rewards = dict(zip(agents, result.reward[live].tolist(), strict=True))
        dead = world.killed[live]
        terminations = dict(zip(agents, dead.tolist(), strict=True))
        done = world.step_count >= self.max_cycles
        truncations = dict.fromkeys(agents, done)
        infos = {agent: {} for agent in agents}
        # observations of the agents that acted (the dead get their zeroed last view)
        obs = self._observations()
        born = getattr(world, "born", None)
        if done:
            self.agents = []
            self._live = live[:0]
            self._live_mask[:] = False
        elif born is not None and born.any():
            self._set_live(np.flatnonzero(world.alive))
        elif dead.any():
            keep = ~dead
            self.agents = [a for a, k in zip(agents, keep.tolist(), strict=True) if k]
            self._live = live[keep]
            self._live_mask[live[dead]] = False
        if self.render_mode == "human":
            self.render()
        return obs, rewards, terminations, truncations, infos

    def _actions_array(self, actions: Mapping[str, Any]) -> np.ndarray:
        """The dict as an int32[N] array (no-op for absent agents), or ValueError naming
        the first bad agent; nothing is changed before it is all checked."""
        check_actions_mapping(actions)
        out = np.zeros(self.world.n_agents, dtype=np.int32)
        if not actions:
            return out
        names = list(actions)
        # the usual case: one action per live agent, in order
        index = self._live if names == self.agents else self._positions(names)
        gone = ~self._live_mask[index]
        if gone.any():
            name = names[int(np.argmax(gone))]
            why = "is dead" if not self.world.alive[self.agent_name_mapping[name]] else "is done"
            raise ValueError(
                f"agent {name!r} {why} and not in env.agents; it takes no action "
                "(leave it out of the actions dict"
                + (", or reset()" if why == "is done" else "")
                + ")"
            )
        out[index] = action_values(
            list(actions.values()),
            self._n_actions[self._group[index]],
            lambda k, value: self._bad_action(names[k], int(index[k]), value),
        )
        return out

    def _bad_action(self, name: str, index: int, value: Any) -> str:
        world = self.metadata["name"]
        return (
            f"action of agent {name!r} = {value!r} is not a {world} action; expected "
            f"{self._action_help(index)}"
        )

    def _observations(self) -> dict[str, Any]:
        """Per-agent observations of ``agents`` (views into a pooled buffer)."""
        world = self.world
        live = self._live
        buf = self._buffer()[: len(live)]
        world.write_view(buf, full=False, index=live)
        if world.config.extra_features:
            features = world.features()[live]
            return {
                agent: {"view": view, "features": feat}
                for agent, view, feat in zip(self.agents, buf, features, strict=True)
            }
        return dict(zip(self.agents, buf, strict=True))

    def _buffer(self) -> np.ndarray:
        """A zeroed-once observation buffer that no returned observation still uses."""
        for buf in self._pool:
            # references: the pool list, this loop variable, getrefcount's argument
            if sys.getrefcount(buf) <= 3:
                return buf
        world = self.world
        shape = (world.n_agents, *world.view_shape)
        if not self._pool:
            nbytes = int(np.prod(shape)) * world.obs_dtype.itemsize
            check_allocation(nbytes, f"{self.metadata['name']} observation buffer {shape}")
        buf = np.zeros(shape, dtype=world.obs_dtype)
        if len(self._pool) >= _POOL_SIZE:
            self._pool.pop(0)  # still held by the caller; freed when they let go
        self._pool.append(buf)
        return buf


def _is_int_like(value: Any) -> bool:
    """A scalar holding an integer (int, integral float, 0-d integer/float array)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        return False
    if arr.shape != () or arr.dtype.kind not in "iuf":
        return False
    number = float(arr)
    return math.isfinite(number) and number.is_integer()
