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

from typing import Any

import gymnasium
from gymnasium import spaces
from pettingzoo.utils.conversions import parallel_to_aec

from colonylab.envs.grid import _kernels as K
from colonylab.envs.grid._parallel_env import GridParallelEnv, view_space
from colonylab.envs.grid.gather import GatherConfig, GatherWorld


class GatherParallelEnv(GridParallelEnv):
    """PettingZoo ``ParallelEnv`` of the gather world (see the module docstring).

    Args:
        render_mode: None, ``"rgb_array"`` or ``"human"``.
        **config: ``GatherConfig`` fields.
    """

    metadata = {**GridParallelEnv.metadata, "name": "colonylab/Gather-v0"}

    def _make_world(self, **config: Any) -> GatherWorld:
        return GatherWorld(GatherConfig(**config))

    def _agent_names(self, world: GatherWorld) -> list[str]:
        return [f"agent_{i}" for i in range(world.n_agents)]

    def _spaces(self, world: GatherWorld) -> tuple[list[gymnasium.Space], list[spaces.Discrete]]:
        return [view_space(world)], [spaces.Discrete(K.N_ACTIONS)]

    def _action_help(self, index: int) -> str:
        return f"an integer in [0, {K.N_ACTIONS}): 0 no-op, 1-12 move, 13-20 attack"


def parallel_env(render_mode: str | None = None, **config: Any) -> GatherParallelEnv:
    """The gather world as a PettingZoo ``ParallelEnv`` (keywords: ``GatherConfig`` fields)."""
    return GatherParallelEnv(render_mode=render_mode, **config)


def env(render_mode: str | None = None, **config: Any):
    """The gather world as a PettingZoo AEC env (``parallel_to_aec`` of ``parallel_env``)."""
    return parallel_to_aec(parallel_env(render_mode=render_mode, **config))


raw_env = GatherParallelEnv
