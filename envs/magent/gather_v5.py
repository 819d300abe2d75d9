"""MAgent2's ``gather_v5`` on MAgent2's own rules: omnivores gather food that is itself a
group of motionless agents (HP 25) in squares and a central lattice; they may also eat
each other.

| | |
|---|---|
| Import | ``from colonylab.envs.magent import gather_v5`` |
| Agents | ``omnivore_0 .. 494`` (the food group does not act) |
| Actions | Discrete(33): 0-28 moves (radius 3, 14 stays), 29-32 attacks |
| Observation | (15, 15, 5): wall, own presence, own HP, food presence, food HP (no id bits: ``extra_features`` adds 33 last-action + 1 last-reward planes) |
| Rewards | 5 for the bite that eats a food, +0.5 a non-eating bite, -0.01 a step, -0.1 an attack, -1 on death |
| Episode | ``max_cycles=500``; done once all food or all omnivores are gone |

Omnivores: HP 3, damage 6 (one bite kills another omnivore), speed 3, view radius 7.

Arguments (MAgent2's): ``max_cycles=500, minimap_mode=False, extra_features=False,
render_mode=None, seed=None, step_reward=-0.01, attack_penalty=-0.1,
dead_penalty=-1, attack_food_reward=0.5``; and ``map_size=200`` (MAgent2 fixes it at
200; smaller maps, >= 60, shrink the squares alike and keep the 53 x 53 lattice).
"""

from __future__ import annotations

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
MIN_MAP_SIZE = 60


@dataclass(frozen=True)
class GatherConfig:
    """``gather_v5``'s arguments (MAgent2's names and defaults, plus ``map_size``)."""

    map_size: int = 200
    """Side of the square map (MAgent2: always 200; here >= 60)."""
    max_cycles: int = 500
    """Steps until truncation."""
    minimap_mode: bool = False
    """Add the group-density minimap planes and the position features."""
    extra_features: bool = False
    """Add the last action and last reward as planes."""
    step_reward: float = -0.01
    """Reward every step."""
    attack_penalty: float = -0.1
    """Reward for any attack."""
    dead_penalty: float = -1.0
    """Reward on death."""
    attack_food_reward: float = 0.5
    """Reward for a (non-eating) bite of food."""
    threads: int | None = None
    """Numba threads of the parallel kernels (None: 1 below 4,096 agents, else all)."""
    world_id: str = "colonylab/MagentGather-v5"
    """The Colony Lab id (registry)."""

    def __post_init__(self) -> None:
        check_config(self, MIN_MAP_SIZE)

    def definition(self) -> WorldDef:
        return DEFINITION


def engine_spec(cfg: GatherConfig) -> EngineSpec:
    omnivore = AgentType(
        "agent",
        hp=3,
        speed=3,
        view_radius=7,
        attack_radius=1,
        damage=6,
        attack_in_group=True,
        step_reward=cfg.step_reward,
        attack_penalty=cfg.attack_penalty,
        dead_penalty=cfg.dead_penalty,
    )
    food = AgentType(
        "food", hp=25, speed=0, view_radius=1, attack_radius=0, kill_reward=KILL_REWARD
    )
    rules = (Rule("attack", 1, 0, cfg.attack_food_reward),)
    return EngineSpec(
        cfg.map_size, (food, omnivore), rules, bool(cfg.minimap_mode), embedding_size=0
    )


def _square(cells: list, centre: int, side: float, gap: int) -> None:
    side = int(side)
    lo, hi = centre - side // 2, centre + side // 2
    for x in range(lo, hi + 1, gap):
        cells += [(x, lo), (x, hi)]
    for y in range(lo, hi + 1, gap):
        cells += [(lo, y), (hi, y)]


def generate_map(cfg: GatherConfig, engine: MagentEngine, rng: np.random.Generator):
    size = cfg.map_size
    centre = size // 2
    agents: list = []
    for side, gap in ((0.9, 3), (0.8, 4), (0.7, 6)):
        _square(agents, centre, size * side, gap)
    food: list = []
    for side, gap in ((0.65, 10), (0.6, 10), (0.55, 10), (0.5, 4), (0.45, 3), (0.4, 1), (0.3, 1)):
        _square(food, centre, size * side, gap)
    for shrink in (2, 4, 6):
        _square(food, centre, size * 0.3 - shrink, 1)
    n = 53
    base = size // 2 - n // 2
    lattice = [
        (base + j, base + i)
        for i in range(n)
        for j in range(n)
        if not (i % 4 in (0, 1) or j % 4 in (0, 1))
    ]
    engine.begin_random_map()
    omnivores = engine.claim(agents)
    foods = np.concatenate([engine.claim(food), engine.claim(lattice)])
    return np.zeros((0, 2), np.int32), [foods, omnivores]


def reward_values(cfg: GatherConfig) -> list[float]:
    return [5, cfg.step_reward, cfg.attack_penalty, cfg.dead_penalty, cfg.attack_food_reward]


DEFINITION = WorldDef(
    name="gather_v5",
    names=("food", "omnivore"),
    spec=engine_spec,
    generate_map=generate_map,
    reward_values=reward_values,
    active=(1,),
    min_map_size=MIN_MAP_SIZE,
    enemies=((), (0,)),
)


def parallel_env(
    max_cycles: int = 500,
    minimap_mode: bool = False,
    extra_features: bool = False,
    render_mode: str | None = None,
    seed: int | None = None,
    map_size: int = 200,
    **reward_args: float,
) -> MagentParallelEnv:
    """MAgent2's ``gather_v5.parallel_env`` (``map_size``: ours, MAgent2 fixes 200)."""
    cfg = GatherConfig(map_size, max_cycles, minimap_mode, extra_features, **reward_args)
    return MagentParallelEnv(DEFINITION, cfg, render_mode=render_mode, seed=seed)


raw_env = make_raw_env(parallel_env, "gather_v5")

env = make_aec(raw_env)


world = make_world_fn(DEFINITION, GatherConfig)


class GatherWorld(MagentWorld):
    """``gather_v5`` behind Colony Lab's world contract."""
