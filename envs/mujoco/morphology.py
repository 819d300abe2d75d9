"""Planar bodies from a small spec: a tree of capsule limbs -> MJCF (MuJoCo's XML).

A :class:`BodySpec` is a torso and a tree of :class:`Limb` s. Every limb is a capsule
that starts at a point of its parent (``attach``: 0 = the parent's start, 1 = its end),
points in the x-z plane at ``angle`` degrees from straight down (positive: towards +x,
forward), and turns about a hinge at its start (axis ``(0, -1, 0)`` by default, as
Gymnasium's Walker2d) within ``joint_range`` degrees, driven by a motor of ``gear``.
The torso carries the planar root: ``rootx`` / ``rootz`` slides and the ``rooty`` hinge
at the torso's centre. The body is placed so that its lowest point rests on the floor.

The four families of modular-rl (Huang, Mordatch & Pathak, ICML 2020) are reproduced
as named bodies with modular-rl's names and limb counts; the geometry is ours
(Gymnasium's Walker2d / Hopper / HalfCheetah proportions; a planar humanoid of our
own), built by dropping limbs from one full body per family:

==============  =====  ===============================================  =======================
Family          count  bodies (limbs incl. torso in the name)           held out
==============  =====  ===============================================  =======================
Walker++        12     ``walker_{2..7}_main``, ``walker_{2..7}_flipped`` ``walker_5_main``,
                                                                        ``walker_6_flipped``
Humanoid++      8      ``humanoid_2d_9_full``, ``_8_left_knee``,        ``humanoid_2d_7_right_arm``,
                       ``_8_right_knee``, ``_7_left_arm``, ``_7_right_  ``humanoid_2d_7_lower_arms``
                       arm``, ``_7_left_leg``, ``_7_right_leg``,
                       ``_7_lower_arms``
Cheetah++       15     ``cheetah_7_full`` ... ``cheetah_2_back``        ``cheetah_4_front``,
                                                                        ``cheetah_5_balanced``,
                                                                        ``cheetah_6_front``
Hopper++        3      ``hopper_3``, ``hopper_4``, ``hopper_5``         (none)
==============  =====  ===============================================  =======================

Walkers: ``main`` bodies keep the Walker2d shape and lose limbs in the order left foot,
right foot, left leg, left thigh, right leg; ``flipped`` bodies are the mirror image
(knees bend forward, feet point back) and lose limbs in the order right foot, right
leg, left foot, left leg, left thigh. (Our definition: modular-rl ships hand-written XML
files; only the names, counts and splits are taken from it.)

Example::

    spec = body("walker_7_main")
    xml = to_mjcf(spec)                     # a complete MJCF model, one robot on a floor
    model = mujoco.MjModel.from_xml_string(xml)
    custom = BodySpec("stick", "custom", (Limb("torso", None, 0.4, 0.05),
                                           Limb("leg", "torso", 0.5, 0.04, joint_range=(-90, 90))))
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from xml.sax.saxutils import quoteattr

import numpy as np

__all__ = [
    "FAMILIES",
    "HELD_OUT",
    "BodySpec",
    "Limb",
    "body",
    "body_names",
    "family_of",
    "rest_points",
    "to_mjcf",
]


@dataclass(frozen=True)
class Limb:
    """One capsule of a planar body.

    Attributes:
        name: unique within the body (MJCF body, joint and motor names).
        parent: the parent limb's name; None for the torso (exactly one).
        length: capsule length in metres (> 0).
        radius: capsule radius in metres (> 0).
        angle: direction at rest, degrees from straight down (-z), positive towards +x.
        joint_range: hinge limits in degrees, ``low < high`` (ignored for the torso).
        gear: motor gear (> 0; ignored for the torso).
        attach: where on the parent the limb starts, 0 = parent's start, 1 = its end.
        axis: the hinge axis (Walker2d: ``(0, -1, 0)``).
        kind: limb type for the one-hot of the observation (``torso``, ``thigh`` ...).
    """

    name: str
    parent: str | None
    length: float
    radius: float
    angle: float = 0.0
    joint_range: tuple[float, float] = (-90.0, 90.0)
    gear: float = 100.0
    attach: float = 1.0
    axis: tuple[float, float, float] = (0.0, -1.0, 0.0)
    kind: str = "limb"


@dataclass(frozen=True)
class BodySpec:
    """A named planar body: its limbs (torso first, then any order) and its family.

    ``healthy_z_fraction`` / ``healthy_angle``: the episode ends when the torso's height
    drops below this fraction of its starting height or its pitch leaves
    ``(-healthy_angle, healthy_angle)`` radians (None: never, as HalfCheetah).
    ``healthy_z_band`` (``(low, high)`` metres relative to the starting height) replaces
    the fraction when set: the torso must stay within ``(z0 + low, z0 + high)``.
    Walkers use modular-rl's band: its full walker starts at 1.25 m and must keep
    ``0.8 < z < 2.0`` (shorter walkers: both limits shifted down), i.e. ``(-0.45, 0.75)``.
    """

    name: str
    family: str
    limbs: tuple[Limb, ...]
    healthy_z_fraction: float | None = 0.5
    healthy_angle: float | None = 1.0
    kinds: tuple[str, ...] = field(default=("torso", "limb"))
    healthy_z_band: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        validate(self)

    @property
    def num_limbs(self) -> int:
        return len(self.limbs)

    def order(self) -> list[int]:
        """Limb indices in depth-first pre-order from the torso (MuJoCo's body order)."""
        children = self.children()
        out: list[int] = []
        stack = [self.root()]
        while stack:
            i = stack.pop()
            out.append(i)
            stack.extend(reversed(children[i]))
        return out

    def root(self) -> int:
        return next(i for i, limb in enumerate(self.limbs) if limb.parent is None)

    def children(self) -> list[list[int]]:
        index = {limb.name: i for i, limb in enumerate(self.limbs)}
        kids: list[list[int]] = [[] for _ in self.limbs]
        for i, limb in enumerate(self.limbs):
            if limb.parent is not None:
                kids[index[limb.parent]].append(i)
        return kids


def validate(spec: BodySpec) -> None:
    """Refuse a malformed spec with a one-line ``ValueError`` (names, tree, numbers)."""
    where = f"body {spec.name!r}"
    if not spec.limbs:
        raise ValueError(f"{where}: needs at least a torso limb, got no limbs")
    names = [limb.name for limb in spec.limbs]
    for name in names:
        if not isinstance(name, str) or not name or not name.replace("_", "").isalnum():
            raise ValueError(f"{where}: limb name {name!r} must be letters, digits and '_'")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{where}: limb names must be unique, {dupes[0]!r} appears twice")
    roots = [limb.name for limb in spec.limbs if limb.parent is None]
    if len(roots) != 1:
        raise ValueError(f"{where}: needs exactly one root limb (parent None), got {roots}")
    for limb in spec.limbs:
        lw = f"{where}, limb {limb.name!r}"
        if limb.parent is not None and limb.parent not in names:
            raise ValueError(f"{lw}: parent {limb.parent!r} is not a limb of the body")
        for attr in ("length", "radius"):
            value = getattr(limb, attr)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{lw}: {attr} must be a finite number > 0, got {value!r}")
        low, high = limb.joint_range
        if not (math.isfinite(low) and math.isfinite(high)) or (
            limb.parent is not None and not low < high
        ):
            raise ValueError(
                f"{lw}: joint_range must be (low, high) degrees with low < high, "
                f"got {limb.joint_range!r} (inverted or empty)"
            )
        if limb.parent is not None and not (math.isfinite(limb.gear) and limb.gear > 0):
            raise ValueError(f"{lw}: gear must be a finite number > 0, got {limb.gear!r}")
        if not (math.isfinite(limb.angle) and 0.0 <= limb.attach <= 1.0):
            raise ValueError(f"{lw}: angle must be finite and attach in [0, 1]")
        if not any(limb.axis) or not all(math.isfinite(a) for a in limb.axis):
            raise ValueError(f"{lw}: axis must be a finite non-zero vector, got {limb.axis!r}")
        if limb.kind not in spec.kinds:
            raise ValueError(f"{lw}: kind {limb.kind!r} not among the body's kinds {spec.kinds}")
    parent_of = {limb.name: limb.parent for limb in spec.limbs}
    for name in names:  # every chain of parents must reach the root without a loop
        seen, node = {name}, parent_of[name]
        while node is not None:
            if node in seen:
                raise ValueError(f"{where}: the limbs form a cycle through {node!r}")
            seen.add(node)
            node = parent_of[node]


# -- geometry ----------------------------------------------------------------------------------
def _direction(angle_deg: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return np.array([math.sin(a), 0.0, -math.cos(a)])


def rest_points(spec: BodySpec) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of every limb at rest, ``float64[L, 3]`` each, relative to the
    torso's centre (limb order of ``spec.limbs``)."""
    index = {limb.name: i for i, limb in enumerate(spec.limbs)}
    start = np.zeros((len(spec.limbs), 3))
    end = np.zeros((len(spec.limbs), 3))
    for i in spec.order():
        limb = spec.limbs[i]
        d = _direction(limb.angle) * limb.length
        if limb.parent is None:
            start[i], end[i] = -d / 2, d / 2
        else:
            p = index[limb.parent]
            start[i] = start[p] + limb.attach * (end[p] - start[p])
            end[i] = start[i] + d
    return start, end


def torso_height(spec: BodySpec, clearance: float = 0.01) -> float:
    """Height of the torso's centre that puts the body's lowest point ``clearance``
    above the floor."""
    start, end = rest_points(spec)
    radius = np.array([limb.radius for limb in spec.limbs])
    low = np.minimum(start[:, 2], end[:, 2]) - radius
    return float(-low.min() + clearance)


def _fmt(values: Iterable[float]) -> str:
    return " ".join(f"{v:.6g}" for v in values)


_COLOURS = {
    "torso": "0.8 0.6 0.4 1",
    "thigh": "0.45 0.6 0.85 1",
    "leg": "0.35 0.75 0.55 1",
    "foot": "0.9 0.45 0.35 1",
    "shin": "0.35 0.75 0.55 1",
    "upper_arm": "0.75 0.5 0.8 1",
    "lower_arm": "0.9 0.7 0.3 1",
}


def body_xml(
    spec: BodySpec,
    prefix: str = "",
    x_offset: float = 0.0,
    sensors: bool = False,
    side_offset: float = 0.0,
) -> tuple[str, str, str]:
    """The MJCF pieces of one robot: ``(worldbody bodies, actuators, sensors)``.

    Names get ``prefix`` (several robots in one model); the robot stands at
    ``x_offset``; ``side_offset`` moves limbs named ``left*`` that hang from the torso
    by that much in +y (pictures only: the two legs of a walker share one plane).
    Sensors (if asked): per limb in MuJoCo body order, the body frame's
    position, quaternion, linear and angular velocity (13 numbers).
    """
    start, end = rest_points(spec)
    children = spec.children()
    z0 = torso_height(spec)
    lines: list[str] = []
    motors: list[str] = []
    sense: list[str] = []

    def emit(i: int, depth: int, origin: np.ndarray) -> None:
        limb = spec.limbs[i]
        pad = "  " * depth
        name = prefix + limb.name
        rgba = _COLOURS.get(limb.kind, "0.7 0.7 0.7 1")
        if limb.parent is None:
            pos = np.array([x_offset, 0.0, z0])
            lines.append(f"{pad}<body name={quoteattr(name)} pos={quoteattr(_fmt(pos))}>")
            for jname, jtype, axis in (
                ("rootx", "slide", "1 0 0"),
                ("rootz", "slide", "0 0 1"),
                ("rooty", "hinge", "0 1 0"),
            ):
                lines.append(
                    f'{pad}  <joint name="{prefix}{jname}" type="{jtype}" axis="{axis}" '
                    'limited="false" armature="0" damping="0" stiffness="0"/>'
                )
            here = np.zeros(3)
        else:
            here = start[i]
            rel = here - origin
            if limb.parent == spec.limbs[spec.root()].name and limb.name.startswith("left"):
                rel = rel + np.array([0.0, side_offset, 0.0])
            lines.append(f"{pad}<body name={quoteattr(name)} pos={quoteattr(_fmt(rel))}>")
            low, high = limb.joint_range
            lines.append(
                f'{pad}  <joint name={quoteattr(name + "_joint")} type="hinge" '
                f'pos="0 0 0" axis="{_fmt(limb.axis)}" range="{low:.6g} {high:.6g}"/>'
            )
            motors.append(
                f"    <motor name={quoteattr(name + '_motor')} "
                f'joint={quoteattr(name + "_joint")} gear="{limb.gear:.6g}"/>'
            )
        a, b = start[i] - here, end[i] - here
        lines.append(
            f'{pad}  <geom name={quoteattr(name + "_geom")} type="capsule" '
            f'fromto="{_fmt(a)} {_fmt(b)}" size="{limb.radius:.6g}" rgba="{rgba}"/>'
        )
        for k in children[i]:
            emit(k, depth + 1, here)
        lines.append(f"{pad}</body>")

    emit(spec.root(), 2, np.zeros(3))
    if sensors:
        for i in spec.order():
            name = quoteattr(prefix + spec.limbs[i].name)
            for kind in ("framepos", "framequat", "framelinvel", "frameangvel"):
                sense.append(f'    <{kind} objtype="xbody" objname={name}/>')
    return "\n".join(lines), "\n".join(motors), "\n".join(sense)


_HEADER = """<mujoco model={model}>
  <compiler angle="degree" inertiafromgeom="true"/>
  <option integrator="RK4" timestep="{timestep}"/>
  <visual>
    <global offwidth="{offwidth}" offheight="480"/><quality shadowsize="0"/>
    <headlight ambient=".45 .45 .45" diffuse=".55 .55 .55" specular=".1 .1 .1"/>
  </visual>
  <default>
    <joint armature="0.01" damping="0.1" limited="true"/>
    <geom conaffinity="0" contype="1" condim="3" density="1000" friction="0.9 0.1 0.1"/>
    <motor ctrllimited="true" ctrlrange="-1 1"/>
  </default>
  <asset>
    <texture name="sky" type="skybox" builtin="gradient" rgb1=".55 .7 .85" rgb2=".95 .97 1"
             width="64" height="64"/>
    <texture name="grid" type="2d" builtin="checker" rgb1=".82 .84 .86" rgb2=".7 .72 .75"
             width="100" height="100"/>
    <material name="grid" texture="grid" texrepeat="1 1" texuniform="true"/>
  </asset>
  <worldbody>
    <light pos="0 -4 6" dir="0 0.5 -1" directional="true" castshadow="false"/>
    <geom name="floor" type="plane" pos="{floor_x} 0 0" size="{floor_half} 20 0.1"
          conaffinity="1" contype="1" material="grid"/>
"""


def to_mjcf(
    spec: BodySpec | Sequence[BodySpec],
    *,
    sensors: bool = False,
    spacing: float = 2.5,
    timestep: float = 0.002,
    side_offset: float = 0.0,
) -> str:
    """A complete MJCF model: one robot on a floor, or several (names prefixed ``r{k}_``,
    robot ``k`` standing at ``x = k * spacing``; robots never touch each other, as the
    limbs of one robot never touch: only limb-floor contacts)."""
    specs = [spec] if isinstance(spec, BodySpec) else list(spec)
    if not specs:
        raise ValueError("to_mjcf needs at least one body")
    single = len(specs) == 1
    parts = [
        body_xml(
            s,
            prefix="" if single else f"r{k}_",
            x_offset=k * spacing,
            sensors=sensors,
            side_offset=side_offset,
        )
        for k, s in enumerate(specs)
    ]
    width = max(640, min(4096, 320 * len(specs)))
    head = _HEADER.format(
        model=quoteattr(specs[0].name if single else "row"),
        timestep=timestep,
        offwidth=width,
        floor_x=(len(specs) - 1) * spacing / 2,
        floor_half=max(50.0, len(specs) * spacing),
    )
    body = "\n".join(p[0] for p in parts)
    actuators = "\n".join(p[1] for p in parts if p[1])
    sense = "\n".join(p[2] for p in parts if p[2])
    tail = "  </worldbody>\n"
    tail += f"  <actuator>\n{actuators}\n  </actuator>\n" if actuators else ""
    tail += f"  <sensor>\n{sense}\n  </sensor>\n" if sense else ""
    return head + body + "\n" + tail + "</mujoco>\n"


# -- the four families -------------------------------------------------------------------------
_WALKER_KINDS = ("torso", "thigh", "leg", "foot")
WALKER_Z_BAND = (-0.45, 0.75)
"""modular-rl's walker health band (0.8 < z < 2.0 for a torso starting at 1.25 m), as
offsets from the starting torso height."""


def _walker_full(mirror: bool) -> tuple[Limb, ...]:
    s = -1.0 if mirror else 1.0

    def rng(low: float, high: float) -> tuple[float, float]:
        return (low, high) if not mirror else (-high, -low)

    limbs = [Limb("torso", None, 0.4, 0.05, kind="torso")]
    for side in ("", "left_"):
        limbs += [
            Limb(f"{side}thigh", "torso", 0.45, 0.05, 0.0, rng(-150, 0), 100, kind="thigh"),
            Limb(f"{side}leg", f"{side}thigh", 0.5, 0.04, 0.0, rng(-150, 0), 100, kind="leg"),
            Limb(f"{side}foot", f"{side}leg", 0.2, 0.06, 90 * s, rng(-45, 45), 100, kind="foot"),
        ]
    return tuple(limbs)


_WALKER_DROP = {
    "main": ("left_foot", "foot", "left_leg", "left_thigh", "leg"),
    "flipped": ("foot", "leg", "left_foot", "left_leg", "left_thigh"),
}


def _humanoid_full() -> tuple[Limb, ...]:
    limbs = [Limb("torso", None, 0.5, 0.07, kind="torso")]
    for side in ("right", "left"):
        limbs += [
            Limb(f"{side}_thigh", "torso", 0.45, 0.06, 0.0, (-110, 20), 100, kind="thigh"),
            Limb(f"{side}_shin", f"{side}_thigh", 0.45, 0.05, 0.0, (-160, -2), 100, kind="shin"),
            Limb(
                f"{side}_upper_arm", "torso", 0.3, 0.04, 0.0, (-90, 90), 25, 0.0, kind="upper_arm"
            ),
            Limb(
                f"{side}_lower_arm",
                f"{side}_upper_arm",
                0.3,
                0.035,
                0.0,
                (-90, 50),
                25,
                kind="lower_arm",
            ),
        ]
    return tuple(limbs)


_HUMANOID_DROP = {
    "9_full": (),
    "8_right_knee": ("right_shin",),
    "8_left_knee": ("left_shin",),
    "7_right_leg": ("right_shin", "right_thigh"),
    "7_left_leg": ("left_shin", "left_thigh"),
    "7_right_arm": ("right_lower_arm", "right_upper_arm"),
    "7_left_arm": ("left_lower_arm", "left_upper_arm"),
    "7_lower_arms": ("right_lower_arm", "left_lower_arm"),
}


def _cheetah_full() -> tuple[Limb, ...]:
    return (
        Limb("torso", None, 1.0, 0.046, 90.0, kind="torso"),
        Limb("bthigh", "torso", 0.29, 0.046, -38.0, (-30, 60), 120, 0.0, kind="thigh"),
        Limb("bshin", "bthigh", 0.30, 0.046, 40.0, (-45, 45), 90, kind="shin"),
        Limb("bfoot", "bshin", 0.19, 0.046, -20.0, (-23, 45), 60, kind="foot"),
        Limb("fthigh", "torso", 0.27, 0.046, 30.0, (-57, 40), 120, 1.0, kind="thigh"),
        Limb("fshin", "fthigh", 0.25, 0.046, -20.0, (-69, 50), 60, kind="shin"),
        Limb("ffoot", "fshin", 0.15, 0.046, 20.0, (-28, 28), 30, kind="foot"),
    )


_CHEETAH_DROP = {
    "7_full": (),
    "6_front": ("bfoot",),
    "6_back": ("ffoot",),
    "5_balanced": ("bfoot", "ffoot"),
    "5_front": ("bfoot", "bshin"),
    "5_back": ("ffoot", "fshin"),
    "4_front": ("bfoot", "bshin", "ffoot"),
    "4_back": ("ffoot", "fshin", "bfoot"),
    "4_allfront": ("bfoot", "bshin", "bthigh"),
    "4_allback": ("ffoot", "fshin", "fthigh"),
    "3_front": ("bfoot", "bshin", "bthigh", "ffoot"),
    "3_back": ("ffoot", "fshin", "fthigh", "bfoot"),
    "3_balanced": ("bfoot", "bshin", "ffoot", "fshin"),
    "2_front": ("bfoot", "bshin", "bthigh", "ffoot", "fshin"),
    "2_back": ("ffoot", "fshin", "fthigh", "bfoot", "bshin"),
}


def _hopper(n: int) -> tuple[Limb, ...]:
    segments = n - 2  # torso + segments + foot
    each = 0.95 / segments
    limbs = [Limb("torso", None, 0.4, 0.05, kind="torso")]
    parent = "torso"
    for k in range(segments):
        name = ("thigh", "leg", "shin")[k] if segments > 1 else "leg"
        kind = "thigh" if k == 0 and segments > 1 else "leg"
        limbs.append(Limb(name, parent, each, 0.05 - 0.005 * k, 0.0, (-150, 0), 200, kind=kind))
        parent = name
    limbs.append(Limb("foot", parent, 0.26, 0.06, 90.0, (-45, 45), 200, kind="foot"))
    return tuple(limbs)


def _drop(limbs: tuple[Limb, ...], names: Sequence[str]) -> tuple[Limb, ...]:
    gone = set(names)
    kept = tuple(limb for limb in limbs if limb.name not in gone)
    orphans = [limb.name for limb in kept if limb.parent in gone]
    if orphans:  # a family table error, not a user error
        raise AssertionError(f"dropping {sorted(gone)} orphans {orphans}")
    return kept


def _build_families() -> dict[str, dict[str, BodySpec]]:
    families: dict[str, dict[str, BodySpec]] = {"walker": {}, "humanoid": {}, "cheetah": {}}
    families["hopper"] = {}
    for variant, order in _WALKER_DROP.items():
        full = _walker_full(mirror=variant == "flipped")
        for n in range(7, 1, -1):
            limbs = _drop(full, order[: 7 - n])
            families["walker"][f"walker_{n}_{variant}"] = BodySpec(
                f"walker_{n}_{variant}", "walker", limbs, 0.5, 1.0, _WALKER_KINDS, WALKER_Z_BAND
            )
    hk = ("torso", "thigh", "shin", "upper_arm", "lower_arm")
    for suffix, drop in _HUMANOID_DROP.items():
        name = f"humanoid_2d_{suffix}"
        families["humanoid"][name] = BodySpec(
            name, "humanoid", _drop(_humanoid_full(), drop), 0.5, 1.0, hk
        )
    ck = ("torso", "thigh", "shin", "foot")
    for suffix, drop in _CHEETAH_DROP.items():
        name = f"cheetah_{suffix}"
        families["cheetah"][name] = BodySpec(
            name, "cheetah", _drop(_cheetah_full(), drop), None, None, ck
        )
    for n in (3, 4, 5):
        name = f"hopper_{n}"
        families["hopper"][name] = BodySpec(
            name, "hopper", _hopper(n), 0.5, 0.6, ("torso", "thigh", "leg", "foot")
        )
    return families


FAMILIES: dict[str, dict[str, BodySpec]] = _build_families()
"""family -> body name -> :class:`BodySpec` (walker 12, humanoid 8, cheetah 15, hopper 3)."""

HELD_OUT: dict[str, tuple[str, ...]] = {
    "walker": ("walker_5_main", "walker_6_flipped"),
    "humanoid": ("humanoid_2d_7_right_arm", "humanoid_2d_7_lower_arms"),
    "cheetah": ("cheetah_4_front", "cheetah_5_balanced", "cheetah_6_front"),
    "hopper": (),
}
"""The bodies modular-rl holds out of training, per family."""

_ALL = {name: spec for fam in FAMILIES.values() for name, spec in fam.items()}


def body_names(family: str | None = None, split: str = "all") -> list[str]:
    """Named bodies of a family (or all), ``split`` in ``all|train|held-out``."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"unknown body family {family!r}; choose one of {sorted(FAMILIES)}")
    if split not in ("all", "train", "held-out"):
        raise ValueError(f"split must be all, train or held-out, got {split!r}")
    fams = [family] if family is not None else list(FAMILIES)
    out = []
    for fam in fams:
        for name in FAMILIES[fam]:
            held = name in HELD_OUT[fam]
            if split == "all" or (split == "held-out") == held:
                out.append(name)
    return out


def body(name: str | BodySpec) -> BodySpec:
    """A named body (``walker_7_main``, ``cheetah_7_full`` ...), or the spec itself."""
    if isinstance(name, BodySpec):
        return name
    try:
        return _ALL[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(str(name), list(_ALL), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown body {name!r}; named bodies are walker_N_main|flipped (N 2-7), "
            f"humanoid_2d_*, cheetah_*, hopper_3|4|5{hint}"
        ) from None


def family_of(name: str) -> str:
    """The family of a named body."""
    return body(name).family


def mirrored(spec: BodySpec, name: str | None = None) -> BodySpec:
    """The mirror image of a body in x (angles and joint ranges negated)."""
    limbs = tuple(
        replace(limb, angle=-limb.angle, joint_range=(-limb.joint_range[1], -limb.joint_range[0]))
        for limb in spec.limbs
    )
    return replace(spec, name=name or spec.name + "_mirrored", limbs=limbs)
