"""Battle as a PettingZoo ``ParallelEnv``: ``colonylab.envs.grid.battle_v0``.

A thin adapter over :class:`colonylab.envs.grid.battle.BattleWorld`; the rules,
observation channels and rewards are in that module's card.

=====================  ===========================================================
Import                 ``from colonylab.envs.grid import battle_v0``
Parallel API           ``battle_v0.parallel_env(render_mode=None, **config)``
AEC API                ``battle_v0.env(...)`` (``parallel_to_aec`` of the above)
Agents                 ``red_0 .. red_{n-1}``, ``blue_0 .. blue_{n-1}`` (81 a side
                       by default); an agent leaves ``agents`` in the step it dies
Observation space      ``Box(0, 1, (13, 13, 5), float32)`` (``uint8``: ``0..255``;
                       ``minimap=True``: 7 channels); ``extra_features=True``:
                       ``Dict(view=Box, features=Box((F,), float32))``
Action space           ``Discrete(21)``: 0 no-op, 1-12 move, 13-20 attack
State                  ``state()``: ``float32[H, W, 5]`` (wall, red presence, red HP,
                       blue presence, blue HP), ``state_space`` its Box
Config                 every ``BattleConfig`` field as a keyword: ``map_size``,
                       ``agents``, ``agents_per_team``, ``max_cycles``, ``minimap``,
                       ``extra_features``, ``obs_dtype``, rewards, ...
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

    env = battle_v0.parallel_env(map_size=45)
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
from colonylab.envs.grid.battle import TEAM_NAMES, BattleConfig, BattleWorld


class BattleParallelEnv(GridParallelEnv):
    """PettingZoo ``ParallelEnv`` of the battle (see the module docstring).

    Args:
        render_mode: None, ``"rgb_array"`` or ``"human"``.
        **config: ``BattleConfig`` fields.
    """

    metadata = {**GridParallelEnv.metadata, "name": "colonylab/Battle-v0"}

    def _make_world(self, **config: Any) -> BattleWorld:
        return BattleWorld(BattleConfig(**config))

    def _agent_names(self, world: BattleWorld) -> list[str]:
        n = world.team_size
        return [f"{name}_{i}" for name in TEAM_NAMES for i in range(n)]

    def _spaces(self, world: BattleWorld) -> tuple[list[gymnasium.Space], list[spaces.Discrete]]:
        obs = [view_space(world) for _ in TEAM_NAMES]
        return obs, [spaces.Discrete(K.N_ACTIONS) for _ in TEAM_NAMES]

    def _action_help(self, index: int) -> str:
        return f"an integer in [0, {K.N_ACTIONS}): 0 no-op, 1-12 move, 13-20 attack"


def parallel_env(render_mode: str | None = None, **config: Any) -> BattleParallelEnv:
    """The battle as a PettingZoo ``ParallelEnv`` (keywords: ``BattleConfig`` fields)."""
    return BattleParallelEnv(render_mode=render_mode, **config)


def env(render_mode: str | None = None, **config: Any):
    """The battle as a PettingZoo AEC env (``parallel_to_aec`` of ``parallel_env``)."""
    return parallel_to_aec(parallel_env(render_mode=render_mode, **config))


raw_env = BattleParallelEnv
