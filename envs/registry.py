"""The world registry: ids -> lazily imported world classes and their configs.

Every world has one versioned id, ``colonylab/<Name>-v<N>`` (a change of behaviour is a
new version), used identically here, in the world's ``metadata["name"]``, by its
PettingZoo ``ParallelEnv`` and by Gymnasium (``gymnasium.make(id)`` for the
single-agent worlds, registered by :func:`register_gymnasium` when ``colonylab`` is
imported). The short names of the CLI (``battle``, ``cartpole-swingup``) are aliases:
``make("battle")`` and ``make("colonylab/Battle-v0")`` build the same world.

``make("highlife", size=256)`` builds the config (registry defaults, then the
caller's overrides) and the world. Entry points are strings so that listing the
worlds imports nothing heavy (no Numba compilation on ``colony list``).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from colonylab.envs.grid.presets import CYCLE_PRESET


class UnknownNameError(KeyError):
    """An unknown world, experiment or benchmark name; the message lists the known ones."""

    def __init__(self, kind: str, name: str, known: Iterable[str], plural: str | None = None):
        known = sorted(set(known))
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        self.message = (
            f"unknown {kind} {name!r}; known {plural or kind + 's'}: {', '.join(known)}.{hint}"
        )
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
        name: the short alias used by the CLI (``colony rollout NAME``).
        entry_point: ``"module:Class"``; the class takes one config dataclass.
        config_entry: ``"module:ConfigClass"``, a frozen dataclass.
        description: one line for ``colony list``.
        defaults: config fields this entry overrides (variants of one world).
        policies: the world's scripted policies (its class's ``policies``), accepted by
            ``colony rollout --policy``; ``noop`` is always the "do nothing" one. Empty
            for worlds without agents (cellular automata).
        default_policy: the policy ``colony rollout`` / ``watch`` use when none is named
            (None: no actions).
        id: the versioned id, ``colonylab/<Name>-v<N>``: ``metadata["name"]`` of the
            world, and its Gymnasium / PettingZoo name.
        gym_entry_point: ``"module:Env"``, a single ``gymnasium.Env`` (single-agent
            worlds only).
        gym_vector_entry_point: ``"module:VectorEnv"``, the native
            ``gymnasium.vector.VectorEnv`` over the vectorized world.
    """

    name: str
    entry_point: str
    config_entry: str
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)
    policies: tuple[str, ...] = ()
    default_policy: str | None = None
    id: str = ""
    gym_entry_point: str | None = None
    gym_vector_entry_point: str | None = None


WORLDS: dict[str, WorldSpec] = {}
"""Short name (CLI alias) -> spec."""
IDS: dict[str, str] = {}
"""Versioned id -> short name."""

_ID_PATTERN = re.compile(r"^colonylab/[A-Z][A-Za-z0-9]*-v[0-9]+$")

# scripted policies of the battle: one for both teams, or "<red>-vs-<blue>"
BATTLE_POLICIES = (
    "random",
    "greedy",
    "noop",
    "greedy-vs-random",
    "random-vs-greedy",
    "greedy-vs-noop",
)
PURSUIT_POLICIES = (
    "greedy-vs-flee",
    "random",
    "greedy",
    "noop",
    "greedy-vs-random",
    "random-vs-flee",
    "greedy-vs-noop",
)
GATHER_POLICIES = ("forage", "greedy", "random", "noop")
MAGENT_BATTLE_POLICIES = ("random", "greedy", "noop", "greedy-vs-random", "random-vs-greedy")
MAGENT_POLICIES = ("random", "greedy", "noop")


def register(spec: WorldSpec) -> None:
    """Add a world to the registry (a name and an id may be registered once)."""
    if spec.name in WORLDS or spec.name in IDS:
        raise ValueError(f"world {spec.name!r} is already registered")
    if not _ID_PATTERN.match(spec.id):
        raise ValueError(
            f"world {spec.name!r}: id must read 'colonylab/<Name>-v<N>', got {spec.id!r}"
        )
    if spec.id in IDS:
        raise ValueError(f"world id {spec.id!r} is already registered (by {IDS[spec.id]!r})")
    if spec.default_policy is not None and spec.default_policy not in spec.policies:
        raise ValueError(
            f"world {spec.name!r}: default policy {spec.default_policy!r} not in {spec.policies}"
        )
    WORLDS[spec.name] = spec
    IDS[spec.id] = spec.name


def spec(name: str) -> WorldSpec:
    """The spec of a registered world by short name or versioned id, or an error listing
    the known names."""
    try:
        return WORLDS[IDS.get(name, name)]
    except KeyError:
        raise UnknownNameError("world", name, list(WORLDS) + list(IDS)) from None


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
    """Build a registered world by short name or id, e.g. ``make("life", size=512)`` or
    ``make("colonylab/HighLife-v0")``. The world's ``metadata["name"]`` is the entry's id
    (variants of one class, such as ``highlife`` of ``LifeWorld``, get their own)."""
    entry = spec(name)
    world_cls = load_entry_point(entry.entry_point)
    if config is None:
        config = make_config(entry.name, **overrides)
    elif overrides:
        config = dataclasses.replace(config, **overrides)
    world = world_cls(config)
    if world.metadata.get("name") != entry.id:
        world.metadata = {**world.metadata, "name": entry.id}
    return world


def register_gymnasium() -> list[str]:
    """Register every single-agent world with Gymnasium under its id (``colonylab/...``),
    with string entry points (nothing heavy is imported). Idempotent; called when
    ``colonylab`` is imported. Returns the ids registered."""
    import gymnasium

    registered = []
    for entry in WORLDS.values():
        if entry.gym_entry_point is None and entry.gym_vector_entry_point is None:
            continue
        if entry.id not in gymnasium.registry:
            gymnasium.register(
                id=entry.id,
                entry_point=entry.gym_entry_point,
                vector_entry_point=entry.gym_vector_entry_point,
                kwargs=dict(entry.defaults),
            )
        registered.append(entry.id)
    return registered


def _register_builtin() -> None:
    ca = "colonylab.envs.ca"
    life = dict(entry_point=f"{ca}.life:LifeWorld", config_entry=f"{ca}.life:LifeConfig")
    for name, world_id, description, defaults in (
        ("life", "colonylab/Life-v0", "Conway's Game of Life (B3/S23) on batched boards", {}),
        (
            "highlife",
            "colonylab/HighLife-v0",
            "HighLife (B36/S23): Life plus a self-replicator",
            {"rule": "B36/S23"},
        ),
        (
            "seeds",
            "colonylab/Seeds-v0",
            "Seeds (B2/S): every live cell dies; explosive growth",
            {"rule": "B2/S", "density": 0.05},
        ),
        (
            "daynight",
            "colonylab/DayNight-v0",
            "Day & Night (B3678/S34678): symmetric under live/dead swap",
            {"rule": "B3678/S34678", "density": 0.5},
        ),
    ):
        register(
            WorldSpec(
                name,
                id=world_id,
                description=description,
                defaults=defaults,
                **life,
            )
        )
    register(
        WorldSpec(
            "lenia",
            id="colonylab/Lenia-v0",
            entry_point=f"{ca}.lenia:LeniaWorld",
            config_entry=f"{ca}.lenia:LeniaConfig",
            description="Lenia: continuous CA (ring kernel, FFT); Orbium creatures glide",
        )
    )
    register(
        WorldSpec(
            "ca-showcase",
            id="colonylab/CAShowcase-v0",
            entry_point=f"{ca}.showcase:ShowcaseWorld",
            config_entry=f"{ca}.showcase:ShowcaseConfig",
            description="Four CA side by side: Life gun + soup, Lenia Orbia, HighLife, Day & Night",
        )
    )
    consensus = "colonylab.envs.consensus"
    register(
        WorldSpec(
            "density-ring",
            id="colonylab/DensityRing-v0",
            entry_point=f"{consensus}.density:DensityRingWorld",
            config_entry=f"{consensus}.density:DensityConfig",
            description="Density classification on a 1-D ring: GKL & published rules (bit-parallel)",
        )
    )
    register(
        WorldSpec(
            "density-grid",
            id="colonylab/DensityGrid-v0",
            entry_point=f"{consensus}.density:DensityGridWorld",
            config_entry=f"{consensus}.density:DensityGridConfig",
            description="Density classification on a 2-D torus: Toom's NEC rule, Moore majority",
        )
    )
    register(
        WorldSpec(
            "flock",
            id="colonylab/Flock-v0",
            entry_point=f"{consensus}.flock:FlockWorld",
            config_entry=f"{consensus}.flock:FlockConfig",
            description="Vicsek / Couzin flocks with an informed minority, cell lists (Numba)",
        )
    )
    register(
        WorldSpec(
            "flock-informed",
            id="colonylab/FlockInformed-v0",
            entry_point=f"{consensus}.flock:FlockWorld",
            config_entry=f"{consensus}.flock:FlockConfig",
            description="Couzin 2005 zones, 5% informed of a random target (flock.COUZIN_2005)",
            defaults={  # = colonylab.envs.consensus.flock.COUZIN_2005 (a test checks)
                "controller": "couzin",
                "density": 0.1,
                "radius": 6.0,
                "attract_radius": 6.0,
                "repulse_radius": 1.0,
                "speed": 0.5,
                "max_turn": 0.4,
                "noise": 0.05,
                "informed_frac": 0.05,
                "informed_weight": 0.5,
                "target_angle": None,
                "max_episode_steps": 400,
            },
        )
    )
    grid = "colonylab.envs.grid"
    register(
        WorldSpec(
            "battle",
            id="colonylab/Battle-v0",
            entry_point=f"{grid}.battle:BattleWorld",
            config_entry=f"{grid}.battle:BattleConfig",
            description="MAgent2-style battle: two teams on a grid, 21 actions, 13x13 views (Numba)",
            policies=BATTLE_POLICIES,
            default_policy="greedy-vs-random",
        )
    )
    register(
        WorldSpec(
            "pursuit",
            id="colonylab/Pursuit-v0",
            entry_point=f"{grid}.pursuit:PursuitWorld",
            config_entry=f"{grid}.pursuit:PursuitConfig",
            description="MAgent-style pursuit: predators need 2 attackers to kill a prey (Numba)",
            policies=PURSUIT_POLICIES,
            default_policy="greedy-vs-flee",
        )
    )
    register(
        WorldSpec(
            "pursuit-breeding",
            id="colonylab/PursuitBreeding-v0",
            entry_point=f"{grid}.pursuit:PursuitWorld",
            config_entry=f"{grid}.pursuit:PursuitConfig",
            description="pursuit with births and starvation: population cycles (CYCLE_PRESET)",
            defaults=dict(CYCLE_PRESET),
            policies=PURSUIT_POLICIES,
            default_policy="random",
        )
    )
    register(
        WorldSpec(
            "gather",
            id="colonylab/Gather-v0",
            entry_point=f"{grid}.gather:GatherWorld",
            config_entry=f"{grid}.gather:GatherConfig",
            description="MAgent-style gather: food patches, free-for-all with attacks (Numba)",
            policies=GATHER_POLICIES,
            default_policy="forage",
        )
    )
    magent = "colonylab.envs.magent"
    for name, cls, world_id, description, policies, default in (
        ("battle_v4", "Battle", "colonylab/MagentBattle-v4",
         "MAgent2's battle_v4 on MAgent2's own rules (shuffled sequential attacks; Numba)",
         MAGENT_BATTLE_POLICIES, "greedy-vs-random"),
        ("battlefield_v5", "Battlefield", "colonylab/MagentBattlefield-v5",
         "MAgent2's battlefield_v5: 12 vs 12 among wall bars, MAgent2's rules",
         MAGENT_BATTLE_POLICIES, "greedy-vs-random"),
        ("combined_arms_v6", "CombinedArms", "colonylab/MagentCombinedArms-v6",
         "MAgent2's combined_arms_v6: melee + ranged units, four groups, MAgent2's rules",
         MAGENT_POLICIES, "random"),
        ("adversarial_pursuit_v4", "AdversarialPursuit", "colonylab/MagentAdversarialPursuit-v4",
         "MAgent2's adversarial_pursuit_v4: 2x2 predators tag prey, MAgent2's rules",
         MAGENT_POLICIES, "random"),
        ("tiger_deer_v4", "TigerDeer", "colonylab/MagentTigerDeer-v4",
         "MAgent2's tiger_deer_v4: tigers paid for biting a deer together, MAgent2's rules",
         MAGENT_POLICIES, "random"),
        ("gather_v5", "Gather", "colonylab/MagentGather-v5",
         "MAgent2's gather_v5: omnivores eat a food group (HP 25), MAgent2's rules",
         MAGENT_POLICIES, "random"),
    ):  # fmt: skip
        register(
            WorldSpec(
                name,
                id=world_id,
                entry_point=f"{magent}.{name}:{cls}World",
                config_entry=f"{magent}.{name}:{cls}Config",
                description=description,
                policies=policies,
                default_policy=default,
            )
        )
    classic = "colonylab.envs.classic"
    gym = "colonylab.envs.wrappers.gymnasium"
    register(
        WorldSpec(
            "cartpole",
            id="colonylab/CartPole-v0",
            entry_point=f"{classic}.cartpole:CartPoleWorld",
            config_entry=f"{classic}.cartpole:CartPoleConfig",
            description="CartPole-v1 (Gymnasium's dynamics), many carts as torch tensors",
            policies=("balance", "random"),
            default_policy="balance",
            gym_entry_point=f"{gym}:CartPoleEnv",
            gym_vector_entry_point=f"{gym}:CartPoleVecEnv",
        )
    )
    register(
        WorldSpec(
            "cartpole-swingup",
            id="colonylab/CartPoleSwingUp-v0",
            entry_point=f"{classic}.swingup:SwingUpWorld",
            config_entry=f"{classic}.swingup:SwingUpConfig",
            description="CartPole swing-up (Ha's constants): the pole starts hanging down",
            policies=("random", "noop"),
            default_policy="random",
            gym_entry_point=f"{classic}.swingup_env:CartPoleSwingUpEnv",
            gym_vector_entry_point=f"{gym}:CartPoleSwingUpVecEnv",
        )
    )
    register(
        WorldSpec(
            "puzzle-pong",
            id="colonylab/PuzzlePong-v0",
            entry_point=f"{classic}.pong:PuzzlePongWorld",
            config_entry=f"{classic}.pong:PuzzlePongConfig",
            description="Pong vs a scripted opponent, seen as patches of a 32x32 screen (Numba)",
            policies=("track", "aim", "follow", "random", "noop"),
            default_policy="track",
            gym_entry_point=f"{gym}:PuzzlePongEnv",
            gym_vector_entry_point=f"{gym}:PuzzlePongVecEnv",
        )
    )
    register(
        WorldSpec(
            "ant",
            id="colonylab/Ant-v0",
            entry_point="colonylab.envs.mujoco.ant:AntWorld",
            config_entry="colonylab.envs.mujoco.ant:AntConfig",
            description="MuJoCo Ant (Gymnasium Ant-v5 exactly), many robots; needs mujoco",
            policies=("random", "noop"),
            default_policy="random",
            gym_entry_point=f"{gym}:AntEnv",
            gym_vector_entry_point=f"{gym}:AntVecEnv",
        )
    )
    register(
        WorldSpec(
            "modular-walkers",
            id="colonylab/ModularWalkers-v0",
            entry_point="colonylab.envs.mujoco.modular:ModularWorld",
            config_entry="colonylab.envs.mujoco.modular:ModularConfig",
            description="Walker++: 12 planar walkers of 2-7 limbs, per-limb obs/actions; needs mujoco",
            policies=("random", "noop"),
            default_policy="random",
        )
    )


_register_builtin()
