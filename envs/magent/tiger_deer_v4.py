"""MAgent2's ``tiger_deer_v4`` on MAgent2's own rules: tigers hunt deer; a tiger is paid
only when another tiger bites the same deer in the same step.

| | |
|---|---|
| Import | ``from colonylab.envs.magent import tiger_deer_v4`` |
| Agents | ``deer_0 .. 100``, ``tiger_0 .. 19`` (at ``map_size=45``) |
| Actions | deer Discrete(5): moves (2 stays); tiger Discrete(9): 0-4 moves (2 stays), 5-8 attacks |
| Observation | deer (3, 3, 5), tiger (9, 9, 5) |
| Rewards | tiger +1 per other tiger biting the same deer this step (a killing bite does not count); deer ``deer_attacked`` (-0.1) per bite, -1 on death |
| Episode | ``max_cycles=300`` |

Deer: HP 5, recovery 0.2 a step; a bite takes 1 HP, so a deer dies from accumulated
bites (below 0 HP), and its killer gains 8 HP. Tigers: HP 10, lose
``tiger_step_recover`` (0.1) HP a step and starve without deer.

Arguments (MAgent2's): ``map_size=45, max_cycles=300, minimap_mode=False,
extra_features=False, render_mode=None, seed=None, tiger_step_recover=-0.1,
deer_attacked=-0.1``.
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

MIN_MAP_SIZE = 10


@dataclass(frozen=True)
class TigerDeerConfig:
    """``tiger_deer_v4``'s arguments (MAgent2's names and defaults)."""

    map_size: int = 45
    """Side of the square map (>= 10); 4% walls, 5% deer, 1% tigers."""
    max_cycles: int = 300
    """Steps until truncation."""
    minimap_mode: bool = False
    """Add the group-density minimap planes and the position features."""
    extra_features: bool = False
    """Add the id bits, last action and last reward as planes."""
    tiger_step_recover: float = -0.1
    """Tigers' HP change every step (negative: hunger)."""
    deer_attacked: float = -0.1
    """Deer's reward per bite."""
    threads: int | None = None
    """Numba threads of the parallel kernels (None: 1 below 4,096 agents, else all)."""
    world_id: str = "colonylab/MagentTigerDeer-v4"
    """The Colony Lab id (registry)."""

    def __post_init__(self) -> None:
        check_config(self, MIN_MAP_SIZE)

    def definition(self) -> WorldDef:
        return DEFINITION


def engine_spec(cfg: TigerDeerConfig) -> EngineSpec:
    deer = AgentType(
        "deer",
        hp=5,
        speed=1,
        view_radius=1,
        attack_radius=0,
        step_recover=0.2,
        kill_supply=8,
        dead_penalty=-1.0,
    )
    tiger = AgentType(
        "tiger",
        hp=10,
        speed=1,
        view_radius=4,
        attack_radius=1,
        damage=1,
        step_recover=cfg.tiger_step_recover,
    )
    rules = (Rule("pair", 1, 0, 0.5), Rule("attack", 1, 0, 0.0, cfg.deer_attacked))
    return EngineSpec(cfg.map_size, (deer, tiger), rules, bool(cfg.minimap_mode), 10)


def generate_map(cfg: TigerDeerConfig, engine: MagentEngine, rng: np.random.Generator):
    area = cfg.map_size * cfg.map_size
    engine.begin_random_map()
    walls = engine.random_blank(rng, int(area * 0.04), wall=True)
    deer = engine.random_blank(rng, int(area * 0.05))
    tigers = engine.random_blank(rng, int(area * 0.01))
    return walls, [deer, tigers]


def reward_values(cfg: TigerDeerConfig) -> list[float]:
    return [1, -1, cfg.tiger_step_recover, cfg.deer_attacked]


DEFINITION = WorldDef(
    name="tiger_deer_v4",
    names=("deer", "tiger"),
    spec=engine_spec,
    generate_map=generate_map,
    reward_values=reward_values,
    min_map_size=MIN_MAP_SIZE,
    enemies=((), (0,)),
)


def parallel_env(
    map_size: int = 45,
    max_cycles: int = 300,
    minimap_mode: bool = False,
    extra_features: bool = False,
    render_mode: str | None = None,
    seed: int | None = None,
    **env_args: float,
) -> MagentParallelEnv:
    """MAgent2's ``tiger_deer_v4.parallel_env``."""
    cfg = TigerDeerConfig(map_size, max_cycles, minimap_mode, extra_features, **env_args)
    return MagentParallelEnv(DEFINITION, cfg, render_mode=render_mode, seed=seed)


raw_env = make_raw_env(parallel_env, "tiger_deer_v4")

env = make_aec(raw_env)


world = make_world_fn(DEFINITION, TigerDeerConfig)


class TigerDeerWorld(MagentWorld):
    """``tiger_deer_v4`` behind Colony Lab's world contract."""
