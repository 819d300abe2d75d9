"""MAgent2's ``combined_arms_v6`` on MAgent2's own rules: two armies of melee and ranged units
(four groups), friendly fire allowed but unrewarded.

| | |
|---|---|
| Import | ``from colonylab.envs.magent import combined_arms_v6`` |
| Agents | ``redmelee_0 .. 44``, ``redranged_0 .. 35``, ``bluemelee_0 .. 44``, ``blueranged_0 .. 35`` |
| Actions | melee Discrete(9): 0-4 moves (2 stays), 5-8 attacks; ranged Discrete(25): 0-12 moves (6 stays), 13-24 attacks |
| Observation | (13, 13, 9): wall, then (presence, HP) of own group, then the other three groups cyclically in handle order (``minimap_mode``: a minimap plane after each HP plane + 2 position planes) |
| Rewards | 5 for a kill of an enemy, -0.005 a step, -0.1 an attack, +0.2 a non-killing hit on an enemy, -0.1 on death |
| Episode | ``max_cycles=1000`` |

Melee: HP 10, speed 1, attack radius 1; ranged: HP 3, speed 2, attack radius 2; both
damage 2, recovery 0.1, view radius 6. Kills are paid by reward rules (the killer is
paid even when it dies later in the same step).

Arguments (MAgent2's): ``map_size=45, max_cycles=1000, minimap_mode=False,
extra_features=False, render_mode=None, seed=None, step_reward=-0.005,
dead_penalty=-0.1, attack_penalty=-0.1, attack_opponent_reward=0.2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from colonylab.envs.magent._engine import AgentType, EngineSpec, MagentEngine, Rule
from colonylab.envs.magent._env import (
    MagentParallelEnv,
    MagentWorld,
    WorldDef,
    check_config,
    make_aec,
    make_raw_env,
    make_world_fn,
)

KILL_REWARD = 5.0
MIN_MAP_SIZE = 16


@dataclass(frozen=True)
class CombinedArmsConfig:
    """``combined_arms_v6``'s arguments (MAgent2's names and defaults)."""

    map_size: int = 45
    """Side of the square map (>= 16)."""
    max_cycles: int = 1000
    """Steps until truncation."""
    minimap_mode: bool = False
    """Add the group-density minimap planes and the position features."""
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
    world_id: str = "colonylab/MagentCombinedArms-v6"
    """The Colony Lab id (registry)."""

    def __post_init__(self) -> None:
        check_config(self, MIN_MAP_SIZE)

    def definition(self) -> WorldDef:
        return DEFINITION


def engine_spec(cfg: CombinedArmsConfig) -> EngineSpec:
    common = dict(
        damage=2,
        step_recover=0.1,
        attack_in_group=True,
        step_reward=cfg.step_reward,
        dead_penalty=cfg.dead_penalty,
        attack_penalty=cfg.attack_penalty,
    )
    melee = AgentType("melee", hp=10, speed=1, view_radius=6, attack_radius=1, **common)
    ranged = AgentType("ranged", hp=3, speed=2, view_radius=6, attack_radius=2, **common)
    v = cfg.attack_opponent_reward
    pairs = [(0, 2), (0, 3), (1, 2), (1, 3), (2, 0), (2, 1), (3, 0), (3, 1)]
    rules = [Rule("attack", a, b, v) for a, b in pairs] + [
        Rule("kill", a, b, KILL_REWARD) for a, b in pairs
    ]
    return EngineSpec(
        cfg.map_size, (melee, ranged, melee, ranged), tuple(rules), bool(cfg.minimap_mode), 10
    )


def generate_map(cfg: CombinedArmsConfig, engine: MagentEngine, rng: np.random.Generator):
    width = height = cfg.map_size
    gap = 3
    side = int(math.sqrt(width * height * 0.04)) * 2
    left = [[], []]
    ct = 0
    for x in range(max(width // 2 - gap - side, 1), width // 2 - gap - side + side, 2):
        for y in range((height - side) // 2, (height - side) // 2 + side, 2):
            left[ct % 2].append((x, y))
        ct += 1
    columns = ct
    right = [[], []]
    xs = range(width // 2 + gap, min(width // 2 + gap + side, height - 1), 2)
    for ct, x in enumerate(xs):  # MAgent2 stops after as many columns as the left
        if ct >= columns:
            break
        for y in range((height - side) // 2, min((height - side) // 2 + side, height - 1), 2):
            right[ct % 2].append((x, y))
    engine.begin_random_map()
    return np.zeros((0, 2), np.int32), [engine.claim(c) for c in (*left, *right)]


def reward_values(cfg: CombinedArmsConfig) -> list[float]:
    return [
        KILL_REWARD,
        cfg.step_reward,
        cfg.dead_penalty,
        cfg.attack_penalty,
        cfg.attack_opponent_reward,
    ]


DEFINITION = WorldDef(
    name="combined_arms_v6",
    names=("redmelee", "redranged", "bluemelee", "blueranged"),
    spec=engine_spec,
    generate_map=generate_map,
    reward_values=reward_values,
    min_map_size=MIN_MAP_SIZE,
    enemies=((2, 3), (2, 3), (0, 1), (0, 1)),
)


def parallel_env(
    map_size: int = 45,
    max_cycles: int = 1000,
    minimap_mode: bool = False,
    extra_features: bool = False,
    render_mode: str | None = None,
    seed: int | None = None,
    **reward_args: float,
) -> MagentParallelEnv:
    """MAgent2's ``combined_arms_v6.parallel_env``."""
    cfg = CombinedArmsConfig(map_size, max_cycles, minimap_mode, extra_features, **reward_args)
    return MagentParallelEnv(DEFINITION, cfg, render_mode=render_mode, seed=seed)


raw_env = make_raw_env(parallel_env, "combined_arms_v6")

env = make_aec(raw_env)


world = make_world_fn(DEFINITION, CombinedArmsConfig)


class CombinedArmsWorld(MagentWorld):
    """``combined_arms_v6`` behind Colony Lab's world contract."""
