"""MAgent2's ``battlefield_v5`` on MAgent2's own rules: ``battle_v4``'s soldiers and rewards,
fewer of them (12 a side) on an 80 x 80 map split by four wall bars.

| | |
|---|---|
| Import | ``from colonylab.envs.magent import battlefield_v5`` |
| Agents | ``red_0 .. red_11``, ``blue_0 .. blue_11`` |
| Actions | Discrete(21), as ``battle_v4`` (6 stays, 13-20 attacks) |
| Observation | (13, 13, 5), as ``battle_v4`` |
| Rewards | as ``battle_v4`` |
| Episode | ``max_cycles=1000`` |

Arguments (MAgent2's): ``map_size=80, max_cycles=1000, minimap_mode=False,
extra_features=False, render_mode=None, seed=None, step_reward=-0.005,
dead_penalty=-0.1, attack_penalty=-0.1, attack_opponent_reward=0.2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from colonylab.envs.magent import battle_v4
from colonylab.envs.magent._engine import MagentEngine
from colonylab.envs.magent._env import (
    MagentParallelEnv,
    MagentWorld,
    WorldDef,
    check_config,
    make_aec,
    make_raw_env,
    make_world_fn,
)

MIN_MAP_SIZE = 46


@dataclass(frozen=True)
class BattlefieldConfig:
    """``battlefield_v5``'s arguments (MAgent2's names and defaults)."""

    map_size: int = 80
    """Side of the square map (>= 46)."""
    max_cycles: int = 1000
    """Steps until truncation."""
    minimap_mode: bool = False
    """Add the team-density minimap planes and the position features."""
    extra_features: bool = False
    """Add the id bits, last action and last reward as planes."""
    step_reward: float = -0.005
    """Reward every step."""
    dead_penalty: float = -0.1
    """Reward on death."""
    attack_penalty: float = -0.1
    """Reward for any attack."""
    attack_opponent_reward: float = 0.2
    """Reward for a (non-killing) hit on an enemy."""
    threads: int | None = None
    """Numba threads of the parallel kernels (None: 1 below 4,096 agents, else all)."""
    world_id: str = "colonylab/MagentBattlefield-v5"
    """The Colony Lab id (registry)."""

    def __post_init__(self) -> None:
        check_config(self, MIN_MAP_SIZE)

    def definition(self) -> WorldDef:
        return DEFINITION


def wall_cells(map_size: int) -> np.ndarray:
    """MAgent2's four wall bars, two cells thick, (x, y)."""
    width = height = map_size
    pos = []
    for y in range(10, 45):
        pos += [(width / 2 - 5, y), (width / 2 - 4, y)]
    for y in range(50, height // 2 + 25):
        pos += [(width / 2 - 5, y), (width / 2 - 4, y)]
    for y in range(height // 2 - 25, height - 50):
        pos += [(width / 2 + 5, y), (width / 2 + 4, y)]
    for y in range(height - 45, height - 10):
        pos += [(width / 2 + 5, y), (width / 2 + 4, y)]
    return np.asarray(pos, np.float64).astype(np.int32).reshape(-1, 2)


def generate_map(cfg: BattlefieldConfig, engine: MagentEngine, rng: np.random.Generator):
    width = height = cfg.map_size
    gap = 3
    side = int(math.sqrt(20)) * 2
    ys = range((height - side) // 2, (height - side) // 2 + side, 2)
    left = [(x, y) for x in range(width // 2 - gap - side, width // 2 - gap, 2) for y in ys]
    right = [(x, y) for x in range(width // 2 + gap, width // 2 + gap + side, 2) for y in ys]
    engine.begin_random_map()
    walls = engine.add_scratch_walls(wall_cells(cfg.map_size))
    return walls, [engine.claim(left), engine.claim(right)]


DEFINITION = WorldDef(
    name="battlefield_v5",
    names=("red", "blue"),
    spec=battle_v4.engine_spec,
    generate_map=generate_map,
    reward_values=battle_v4.reward_values,
    min_map_size=MIN_MAP_SIZE,
    enemies=((1,), (0,)),
)


def parallel_env(
    map_size: int = 80,
    max_cycles: int = 1000,
    minimap_mode: bool = False,
    extra_features: bool = False,
    render_mode: str | None = None,
    seed: int | None = None,
    **reward_args: float,
) -> MagentParallelEnv:
    """MAgent2's ``battlefield_v5.parallel_env``."""
    cfg = BattlefieldConfig(map_size, max_cycles, minimap_mode, extra_features, **reward_args)
    return MagentParallelEnv(DEFINITION, cfg, render_mode=render_mode, seed=seed)


raw_env = make_raw_env(parallel_env, "battlefield_v5")

env = make_aec(raw_env)


world = make_world_fn(DEFINITION, BattlefieldConfig)


class BattlefieldWorld(MagentWorld):
    """``battlefield_v5`` behind Colony Lab's world contract."""
