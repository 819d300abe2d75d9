"""The world registry: names -> lazily imported world classes and their configs.

``make("highlife", size=256)`` builds the config (registry defaults, then the
caller's overrides) and the world. Entry points are strings so that listing the
worlds imports nothing heavy (no Numba compilation on ``colony list``).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from colonylab.envs.grid.presets import CYCLE_PRESET


class UnknownNameError(KeyError):
    """An unknown world, experiment or benchmark name; the message lists the known ones."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        self.message = f"unknown {kind} {name!r}; known {kind}s: {', '.join(known)}.{hint}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


def load_entry_point(entry_point: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute."""
    module_name, _, attr = entry_point.partition(":")
    return getattr(importlib.import_module(module_name), attr)


@dataclass(frozen=True)
class WorldSpec:
    """How to build one registered world.

    Attributes:
        name: registry id used by ``make`` and the CLI (``colony rollout NAME``).
        entry_point: ``"module:Class"``; the class takes one config dataclass.
        config_entry: ``"module:ConfigClass"``, a frozen dataclass.
        description: one line for ``colony list``.
        defaults: config fields this entry overrides (variants of one world).
        policies: names accepted by ``colony rollout --policy``.
        default_policy: the policy ``colony rollout`` / ``watch`` use when none is named.
    """

    name: str
    entry_point: str
    config_entry: str
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)
    policies: tuple[str, ...] = ("none",)
    default_policy: str = "none"


WORLDS: dict[str, WorldSpec] = {}

# scripted policies of the battle: one for both teams, or "<red>-vs-<blue>"
BATTLE_POLICIES = (
    "random",
    "greedy",
    "noop",
    "greedy-vs-random",
    "random-vs-greedy",
    "greedy-vs-noop",
    "none",
)


def register(spec: WorldSpec) -> None:
    """Add a world to the registry (a name may be registered once)."""
    if spec.name in WORLDS:
        raise ValueError(f"world {spec.name!r} is already registered")
    WORLDS[spec.name] = spec


def spec(name: str) -> WorldSpec:
    """The spec of a registered world, or an error listing the known names."""
    try:
        return WORLDS[name]
    except KeyError:
        raise UnknownNameError("world", name, WORLDS) from None


def config_class(name: str) -> type:
    """The config dataclass of a registered world."""
    return load_entry_point(spec(name).config_entry)


def make_config(name: str, **overrides: Any) -> Any:
    """Build a world's config: its dataclass defaults, the entry's, then ``overrides``."""
    cls = config_class(name)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(
            f"world {name!r} has no option(s) {unknown}; its options are {sorted(names)}"
        )
    return cls(**{**spec(name).defaults, **overrides})


def make(name: str, config: Any = None, **overrides: Any) -> Any:
    """Build a registered world, e.g. ``make("life", size=512, rule="B36/S23")``."""
    world_cls = load_entry_point(spec(name).entry_point)
    if config is None:
        config = make_config(name, **overrides)
    elif overrides:
        config = dataclasses.replace(config, **overrides)
    return world_cls(config)


def _register_builtin() -> None:
    ca = "colonylab.envs.ca"
    life = dict(entry_point=f"{ca}.life:LifeWorld", config_entry=f"{ca}.life:LifeConfig")
    register(
        WorldSpec("life", description="Conway's Game of Life (B3/S23) on batched boards", **life)
    )
    register(
        WorldSpec(
            "highlife",
            description="HighLife (B36/S23): Life plus a self-replicator",
            defaults={"rule": "B36/S23"},
            **life,
        )
    )
    register(
        WorldSpec(
            "seeds",
            description="Seeds (B2/S): every live cell dies; explosive growth",
            defaults={"rule": "B2/S", "density": 0.05},
            **life,
        )
    )
    register(
        WorldSpec(
            "daynight",
            description="Day & Night (B3678/S34678): symmetric under live/dead swap",
            defaults={"rule": "B3678/S34678", "density": 0.5},
            **life,
        )
    )
    register(
        WorldSpec(
            "lenia",
            entry_point=f"{ca}.lenia:LeniaWorld",
            config_entry=f"{ca}.lenia:LeniaConfig",
            description="Lenia: continuous CA (ring kernel, FFT); Orbium creatures glide",
        )
    )
    register(
        WorldSpec(
            "ca-showcase",
            entry_point=f"{ca}.showcase:ShowcaseWorld",
            config_entry=f"{ca}.showcase:ShowcaseConfig",
            description="Four CA side by side: Life gun + soup, Lenia Orbia, HighLife, Day & Night",
        )
    )
    grid = "colonylab.envs.grid"
    register(
        WorldSpec(
            "battle",
            entry_point=f"{grid}.battle:BattleWorld",
            config_entry=f"{grid}.battle:BattleConfig",
            description="MAgent2-style battle: two teams on a grid, 21 actions, 13x13 views (Numba)",
            policies=BATTLE_POLICIES,
            default_policy="greedy-vs-random",
        )
    )
    pursuit_policies = (
        "greedy-vs-flee",
        "random",
        "greedy",
        "noop",
        "greedy-vs-random",
        "random-vs-flee",
        "greedy-vs-noop",
        "none",
    )
    register(
        WorldSpec(
            "pursuit",
            entry_point=f"{grid}.pursuit:PursuitWorld",
            config_entry=f"{grid}.pursuit:PursuitConfig",
            description="MAgent-style pursuit: predators need 2 attackers to kill a prey (Numba)",
            policies=pursuit_policies,
            default_policy="greedy-vs-flee",
        )
    )
    register(
        WorldSpec(
            "pursuit-breeding",
            entry_point=f"{grid}.pursuit:PursuitWorld",
            config_entry=f"{grid}.pursuit:PursuitConfig",
            description="pursuit with births and starvation: population cycles (CYCLE_PRESET)",
            defaults=dict(CYCLE_PRESET),
            policies=pursuit_policies,
            default_policy="random",
        )
    )
    register(
        WorldSpec(
            "gather",
            entry_point=f"{grid}.gather:GatherWorld",
            config_entry=f"{grid}.gather:GatherConfig",
            description="MAgent-style gather: food patches, free-for-all with attacks (Numba)",
            policies=("forage", "greedy", "random", "noop", "none"),
            default_policy="forage",
        )
    )
    classic = "colonylab.envs.classic"
    register(
        WorldSpec(
            "cartpole",
            entry_point=f"{classic}.cartpole:CartPoleWorld",
            config_entry=f"{classic}.cartpole:CartPoleConfig",
            description="CartPole-v1 (Gymnasium's dynamics), many carts as torch tensors",
            policies=("balance", "random"),
            default_policy="balance",
        )
    )
    register(
        WorldSpec(
            "cartpole-swingup",
            entry_point=f"{classic}.swingup:SwingUpWorld",
            config_entry=f"{classic}.swingup:SwingUpConfig",
            description="CartPole swing-up (Ha's constants): the pole starts hanging down",
            policies=("random", "noop"),
            default_policy="random",
        )
    )
    # -- puzzle pong (envs/classic/pong.py) --
    register(
        WorldSpec(
            "puzzle-pong",
            entry_point=f"{classic}.pong:PuzzlePongWorld",
            config_entry=f"{classic}.pong:PuzzlePongConfig",
            description="Pong vs a scripted opponent, seen as patches of a 32x32 screen (Numba)",
            policies=("track", "follow", "random", "noop"),
            default_policy="track",
        )
    )
    # -- ant (envs/mujoco/ant.py) --
    register(
        WorldSpec(
            "ant",
            entry_point="colonylab.envs.mujoco.ant:AntWorld",
            config_entry="colonylab.envs.mujoco.ant:AntConfig",
            description="MuJoCo Ant (Gymnasium Ant-v5 exactly), many robots; needs mujoco",
            policies=("random", "noop"),
            default_policy="random",
        )
    )


_register_builtin()
