"""MAgent2's ``adversarial_pursuit_v4`` on MAgent2's own rules: 2x2 predators tag 1x1 prey
among random walls. Tags do no damage (nobody dies); each tag pays the predator +1 and
costs the prey -1.

| | |
|---|---|
| Import | ``from colonylab.envs.magent import adversarial_pursuit_v4`` |
| Agents | ``predator_0 .. 24``, ``prey_0 .. 49`` (at ``map_size=45``) |
| Actions | predator Discrete(13): 0-4 moves (2 stays), 5-12 tags (the ring around the 2x2 body); prey Discrete(9): 3x3 moves (4 stays) |
| Observation | predator (10, 10, 5) (an even view, the body's centre between cells), prey (9, 9, 5) |
| Rewards | predator +1 a tag, ``tag_penalty`` (-0.2) a tag attempt; prey -1 per tag |
| Episode | ``max_cycles=500`` |

Arguments (MAgent2's): ``map_size=45, max_cycles=500, minimap_mode=False,
extra_features=False, render_mode=None, seed=None, tag_penalty=-0.2``.
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

MIN_MAP_SIZE = 7


@dataclass(frozen=True)
class AdversarialPursuitConfig:
    """``adversarial_pursuit_v4``'s arguments (MAgent2's names and defaults)."""

    map_size: int = 45
    """Side of the square map (>= 7); 3% walls, 1.25% predators, 2.5% prey."""
    max_cycles: int = 500
    """Steps until truncation."""
    minimap_mode: bool = False
    """Add the group-density minimap planes and the position features."""
    extra_features: bool = False
    """Add the id bits, last action and last reward as planes."""
    tag_penalty: float = -0.2
    """Predator's reward for any tag attempt."""
    threads: int | None = None
    """Numba threads of the parallel kernels (None: 1 below 4,096 agents, else all)."""
    world_id: str = "colonylab/MagentAdversarialPursuit-v4"
    """The Colony Lab id (registry)."""

    def __post_init__(self) -> None:
        check_config(self, MIN_MAP_SIZE)

    def definition(self) -> WorldDef:
        return DEFINITION


def engine_spec(cfg: AdversarialPursuitConfig) -> EngineSpec:
    predator = AgentType(
        "predator",
        hp=1,
        speed=1,
        view_radius=5,
        attack_radius=2,
        width=2,
        attack_penalty=cfg.tag_penalty,
    )
    prey = AgentType("prey", hp=1, speed=1.5, view_radius=4, attack_radius=0)
    return EngineSpec(
        cfg.map_size,
        (predator, prey),
        (Rule("attack", 0, 1, 1.0, -1.0),),
        bool(cfg.minimap_mode),
        10,
    )


def generate_map(cfg: AdversarialPursuitConfig, engine: MagentEngine, rng: np.random.Generator):
    area = cfg.map_size * cfg.map_size
    engine.begin_random_map()
    walls = engine.random_blank(rng, int(area * 0.03), wall=True)
    predators = engine.random_blank(rng, int(area * 0.0125), size=2)
    prey = engine.random_blank(rng, int(area * 0.025))
    return walls, [predators, prey]


def reward_values(cfg: AdversarialPursuitConfig) -> list[float]:
    return [1, -1, -1, -1, -1, cfg.tag_penalty]


DEFINITION = WorldDef(
    name="adversarial_pursuit_v4",
    names=("predator", "prey"),
    spec=engine_spec,
    generate_map=generate_map,
    reward_values=reward_values,
    min_map_size=MIN_MAP_SIZE,
    enemies=((1,), ()),
)


def parallel_env(
    map_size: int = 45,
    max_cycles: int = 500,
    minimap_mode: bool = False,
    extra_features: bool = False,
    render_mode: str | None = None,
    seed: int | None = None,
    **reward_args: float,
) -> MagentParallelEnv:
    """MAgent2's ``adversarial_pursuit_v4.parallel_env``."""
    cfg = AdversarialPursuitConfig(
        map_size, max_cycles, minimap_mode, extra_features, **reward_args
    )
    return MagentParallelEnv(DEFINITION, cfg, render_mode=render_mode, seed=seed)


raw_env = make_raw_env(parallel_env, "adversarial_pursuit_v4")

env = make_aec(raw_env)


world = make_world_fn(DEFINITION, AdversarialPursuitConfig)


class AdversarialPursuitWorld(MagentWorld):
    """``adversarial_pursuit_v4`` behind Colony Lab's world contract."""
