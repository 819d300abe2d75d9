"""MAgent2's ``battle_v4`` on MAgent2's own rules (Numba engine, no MAgent2 needed).

| | |
|---|---|
| Import | ``from colonylab.envs.magent import battle_v4`` |
| Agents | ``red_0 .. red_80``, ``blue_0 .. blue_80`` (162 at ``map_size=45``) |
| Actions | Discrete(21): 0-12 moves (row by row, (dx, dy) from (0, -2) to (0, 2); 6 stays), 13-20 attacks (the 8 neighbours, row by row) |
| Observation | (13, 13, 5): wall, own presence, own HP, other presence, other HP (``minimap_mode``: 7 planes, a minimap plane after each team's HP, + 2 position planes; ``extra_features``: + 10 id bits, 21 last action, 1 last reward planes) |
| Rewards | 5 for the killing blow, -0.005 a step, -0.1 an attack, +0.2 a non-killing hit on an enemy, -0.1 on death |
| Episode | ``max_cycles=1000``; everyone is done once a team is wiped out |

Two square armies (density 0.04 of the map each side, every other cell) face each
other 3 cells apart. Agents: HP 10, damage 2, recovery 0.1 a step, speed 2, view
radius 6, attack radius 1.5. A step is MAgent2's: shuffled sequential attacks (the
dead never strike, the killing blow alone earns the kill), recovery, sequential moves.

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


@dataclass(frozen=True)
class BattleConfig:
    """``battle_v4``'s arguments (MAgent2's names and defaults)."""

    map_size: int = 45
    """Side of the square map (>= 12); each army holds about 0.04 map_size**2 agents."""
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
    world_id: str = "colonylab/MagentBattle-v4"
    """The Colony Lab id (registry)."""

    def __post_init__(self) -> None:
        check_config(self, MIN_MAP_SIZE)

    def definition(self) -> WorldDef:
        return DEFINITION


MIN_MAP_SIZE = 12


def soldier(cfg: BattleConfig) -> AgentType:
    """MAgent2's battle soldier ("small")."""
    return AgentType(
        "small",
        hp=10,
        speed=2,
        view_radius=6,
        attack_radius=1.5,
        damage=2,
        kill_reward=KILL_REWARD,
        step_recover=0.1,
        step_reward=cfg.step_reward,
        dead_penalty=cfg.dead_penalty,
        attack_penalty=cfg.attack_penalty,
    )


def engine_spec(cfg: BattleConfig) -> EngineSpec:
    small = soldier(cfg)
    v = cfg.attack_opponent_reward
    return EngineSpec(
        cfg.map_size,
        (small, small),
        (Rule("attack", 0, 1, v), Rule("attack", 1, 0, v)),
        minimap_mode=bool(cfg.minimap_mode),
        embedding_size=10,
    )


def armies(map_size: int) -> tuple[np.ndarray, np.ndarray]:
    """MAgent2's battle map: two squares of agents on every other cell, (x, y)."""
    width = height = map_size
    gap = 3
    side = int(math.sqrt(map_size * map_size * 0.04)) * 2
    ys = range((height - side) // 2, (height - side) // 2 + side, 2)
    left = [
        (x, y)
        for x in range(width // 2 - gap - side, width // 2 - gap, 2)
        for y in ys
        if 0 < x < width - 1 and 0 < y < height - 1
    ]
    right = [
        (x, y)
        for x in range(width // 2 + gap, width // 2 + gap + side, 2)
        for y in ys
        if 0 < x < width - 1 and 0 < y < height - 1
    ]
    right = right[: len(left)]
    return np.asarray(left, np.int32).reshape(-1, 2), np.asarray(right, np.int32).reshape(-1, 2)


def generate_map(cfg: BattleConfig, engine: MagentEngine, rng: np.random.Generator):
    return np.zeros((0, 2), np.int32), list(armies(cfg.map_size))


def reward_values(cfg: BattleConfig) -> list[float]:
    return [
        KILL_REWARD,
        cfg.step_reward,
        cfg.dead_penalty,
        cfg.attack_penalty,
        cfg.attack_opponent_reward,
    ]


DEFINITION = WorldDef(
    name="battle_v4",
    names=("red", "blue"),
    spec=engine_spec,
    generate_map=generate_map,
    reward_values=reward_values,
    min_map_size=MIN_MAP_SIZE,
    enemies=((1,), (0,)),
)


def _config(map_size, max_cycles, minimap_mode, extra_features, reward_args) -> BattleConfig:
    return BattleConfig(map_size, max_cycles, minimap_mode, extra_features, **reward_args)


def parallel_env(
    map_size: int = 45,
    max_cycles: int = 1000,
    minimap_mode: bool = False,
    extra_features: bool = False,
    render_mode: str | None = None,
    seed: int | None = None,
    **reward_args: float,
) -> MagentParallelEnv:
    """MAgent2's ``battle_v4.parallel_env``."""
    cfg = _config(map_size, max_cycles, minimap_mode, extra_features, reward_args)
    return MagentParallelEnv(DEFINITION, cfg, render_mode=render_mode, seed=seed)


raw_env = make_raw_env(parallel_env, "battle_v4")

env = make_aec(raw_env)


world = make_world_fn(DEFINITION, BattleConfig)


class BattleWorld(MagentWorld):
    """``battle_v4`` behind Colony Lab's world contract (``colony rollout battle_v4``)."""
