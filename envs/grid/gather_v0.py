"""Gather as a PettingZoo ``ParallelEnv``: ``colonylab.envs.grid.gather_v0``.

A thin adapter over :class:`colonylab.envs.grid.gather.GatherWorld`; the rules,
observation channels and rewards are in that module's card.

=====================  ===========================================================
Import                 ``from colonylab.envs.grid import gather_v0``
Parallel API           ``gather_v0.parallel_env(render_mode=None, **config)``
AEC API                ``gather_v0.env(...)`` (``parallel_to_aec`` of the above)
Agents                 ``agent_0 .. agent_{N-1}`` (100 by default), one species,
                       free-for-all; an agent leaves ``agents`` in the step it dies
Observation space      ``Box(0, 1, (11, 11, 5), float32)`` (``uint8``: ``0..255``;
                       ``minimap=True``: 7 channels); ``extra_features=True``:
                       ``Dict(view=Box, features=Box((F,), float32))``
Action space           ``Discrete(21)``: 0 no-op, 1-12 move, 13-20 attack
State                  ``state()``: ``float32[H, W, 4]`` (wall, agent presence, agent
                       HP / max, food / capacity), ``state_space`` its Box
Config                 every ``GatherConfig`` field as a keyword: ``map_size``,
                       ``agents``, ``patches``, ``regrow``, ``hunger``,
                       ``max_cycles`` (500), ``minimap``, ``obs_dtype``, rewards, ...
Render                 ``rgb_array``: the map, each cell ``k x k`` pixels (``k`` so
                       the picture is about 400 px or more); ``human``: the Colony
                       Lab viewer (headless without a display)
=====================  ===========================================================

``step(actions)`` takes a dict ``{agent: int}`` for agents in ``agents`` (agents
left out take the no-op); an action for a dead or unknown agent, or a value that
is not an integer in ``[0, 21)``, raises ``ValueError`` naming the agent, and the
world is not stepped. Observations are views into buffers that are reused only
once nobody holds them any more, so returned values never change under you.

Example::

    env = gather_v0.parallel_env(agents=50)
    obs, infos = env.reset(seed=0)
    while env.agents:
        actions = {a: env.action_space(a).sample() for a in env.agents}
        obs, rewards, terminations, truncations, infos = env.step(actions)
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from colonylab.envs.base import check_allocation
from colonylab.envs.grid import _kernels as K
from colonylab.envs.grid.gather import STATE_CHANNELS, GatherConfig, GatherWorld

_POOL_SIZE = 4  # observation buffers kept for reuse
_RENDER_PIXELS = 400  # rgb_array pictures are at least this wide (when the map is smaller)


class GatherParallelEnv(ParallelEnv):
    """PettingZoo ``ParallelEnv`` of the gather world (see the module docstring).

    Args:
        render_mode: None, ``"rgb_array"`` or ``"human"``.
        **config: ``GatherConfig`` fields.
    """

    metadata = {
        "render_modes": ["human", "rgb_array"],
        "name": "gather_v0",
        "render_fps": 20,
        "is_parallelizable": True,
    }

    def __init__(self, render_mode: str | None = None, **config: Any) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, "
                f"got {render_mode!r}"
            )
        self.render_mode = render_mode
        self.world = world = GatherWorld(GatherConfig(**config))
        self.possible_agents = [f"agent_{i}" for i in range(world.n_agents)]
        self.agent_name_mapping = {name: i for i, name in enumerate(self.possible_agents)}
        self.max_cycles = world.config.max_cycles
        high = 255 if world.obs_dtype == np.uint8 else 1.0
        view = spaces.Box(0, high, world.view_shape, dtype=world.obs_dtype)
        if world.config.extra_features:  # one space object, shared by every agent
            features = spaces.Box(-np.inf, np.inf, (world.feature_size,), dtype=np.float32)
            self._obs_space: gymnasium.Space = spaces.Dict({"view": view, "features": features})
        else:
            self._obs_space = view
        self._action_space = spaces.Discrete(K.N_ACTIONS)
        self.state_space = spaces.Box(
            0.0, 1.0, (*world.map_shape, STATE_CHANNELS), dtype=np.float32
        )
        self.agents: list[str] = []
        self._live = np.empty(0, dtype=np.int64)  # world index of each entry of agents
        self._live_mask = np.zeros(world.n_agents, dtype=bool)
        self._pool: list[np.ndarray] = []
        self._viewer: Any = None

    # -- spaces -------------------------------------------------------------------------------
    def _index(self, agent: str) -> int:
        try:
            return self.agent_name_mapping[agent]
        except (KeyError, TypeError):
            raise ValueError(
                f"unknown agent {agent!r}; agents are named agent_0..agent_"
                f"{self.world.n_agents - 1}"
            ) from None

    def observation_space(self, agent: str) -> gymnasium.Space:
        """The (cached, shared) observation space of ``agent``."""
        self._index(agent)
        return self._obs_space

    def action_space(self, agent: str) -> gymnasium.Space:
        """The (cached, shared) ``Discrete(21)`` action space of ``agent``."""
        self._index(agent)
        return self._action_space

    # -- episode ----------------------------------------------------------------------------------
    def reset(
        self, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, Any], dict[str, dict]]:
        """Start an episode; returns ``(observations, infos)`` for every agent."""
        self.world.reset(seed=seed)
        self.agents = self.possible_agents[:]
        self._live = np.arange(self.world.n_agents, dtype=np.int64)
        self._live_mask[:] = True
        if self._viewer is not None:
            self._viewer.refresh()
        return self._observations(), {agent: {} for agent in self.agents}

    def step(
        self, actions: Mapping[str, Any]
    ) -> tuple[dict, dict[str, float], dict[str, bool], dict[str, bool], dict[str, dict]]:
        """Step every agent at once; see the module docstring for what is refused."""
        world = self.world
        acts = self._actions_array(actions)
        result = world.step(acts, observe=False)
        agents = self.agents
        live = self._live
        obs = self._observations()
        rewards = dict(zip(agents, result.reward[live].tolist(), strict=True))
        dead = world.killed[live]
        terminations = dict(zip(agents, dead.tolist(), strict=True))
        done = world.step_count >= self.max_cycles
        truncations = dict.fromkeys(agents, done)
        infos = {agent: {} for agent in agents}
        if done:
            self.agents = []
            self._live = live[:0]
            self._live_mask[:] = False
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
        if not isinstance(actions, Mapping):
            raise TypeError(
                f"actions must be a dict {{agent: action}}, got {type(actions).__name__}"
            )
        out = np.zeros(self.world.n_agents, dtype=K.ACTION_DTYPE)
        if not actions:
            return out
        names = list(actions)
        if names == self.agents:  # the usual case: one action per live agent, in order
            index = self._live
        else:
            index = np.array([self._index(a) for a in names], dtype=np.int64)
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
        values = list(actions.values())
        try:
            arr = np.asarray(values)
        except (TypeError, ValueError):
            arr = np.asarray(values, dtype=object)
        if arr.shape != (len(values),) or arr.dtype.kind not in "iuf":
            for name, value in zip(names, values, strict=True):
                if not _is_int_like(value):
                    raise ValueError(_bad_action(name, value))
            arr = np.asarray([int(np.asarray(v).item()) for v in values], dtype=np.int64)
        with np.errstate(invalid="ignore"):
            bad = (arr < 0) | (arr >= K.N_ACTIONS) | (arr != np.floor(arr))
        if bad.any():
            k = int(np.argmax(bad))
            raise ValueError(_bad_action(names[k], values[k]))
        out[index] = arr
        return out

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
            check_allocation(nbytes, f"gather_v0 observation buffer {shape}")
        buf = np.zeros(shape, dtype=world.obs_dtype)
        if len(self._pool) >= _POOL_SIZE:
            self._pool.pop(0)  # still held by the caller; freed when they let go
        self._pool.append(buf)
        return buf

    # -- extras ---------------------------------------------------------------------------------
    def state(self) -> np.ndarray:
        """Global map ``float32[H, W, 4]``: wall, agent presence, agent HP, food."""
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

            self._viewer = Viewer(self.world, title="Colony Lab - gather_v0")
        self._viewer.process_events()
        self._viewer.draw()
        return None

    def close(self) -> None:
        """Close the viewer (if any); safe to call twice."""
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None


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


def _bad_action(name: str, value: Any) -> str:
    return (
        f"action of agent {name!r} = {value!r} is not a gather action; expected an integer in "
        f"[0, {K.N_ACTIONS}): 0 no-op, 1-12 move, 13-20 attack"
    )


def parallel_env(render_mode: str | None = None, **config: Any) -> GatherParallelEnv:
    """The gather world as a PettingZoo ``ParallelEnv`` (keywords: ``GatherConfig`` fields)."""
    return GatherParallelEnv(render_mode=render_mode, **config)


def env(render_mode: str | None = None, **config: Any):
    """The gather world as a PettingZoo AEC env (``parallel_to_aec`` of ``parallel_env``)."""
    return parallel_to_aec(parallel_env(render_mode=render_mode, **config))


raw_env = GatherParallelEnv
