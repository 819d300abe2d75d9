"""The morphology generator: the four families, their counts and splits, MJCF that
compiles, bodies that stand on the floor, and one-line refusals of malformed specs."""

from __future__ import annotations

import pytest

mujoco = pytest.importorskip("mujoco")

from colonylab.envs.mujoco import morphology as M  # noqa: E402
from colonylab.envs.mujoco.morphology import BodySpec, Limb  # noqa: E402

COUNTS = {"walker": 12, "humanoid": 8, "cheetah": 15, "hopper": 3}


def test_family_counts_and_held_out_names():
    assert {fam: len(bodies) for fam, bodies in M.FAMILIES.items()} == COUNTS
    assert M.body_names("walker", "held-out") == ["walker_5_main", "walker_6_flipped"]
    assert len(M.body_names("walker", "train")) == 10
    assert set(M.body_names("cheetah", "held-out")) == {
        "cheetah_4_front",
        "cheetah_5_balanced",
        "cheetah_6_front",
    }
    assert set(M.body_names("humanoid", "held-out")) == {
        "humanoid_2d_7_right_arm",
        "humanoid_2d_7_lower_arms",
    }


def _limb_count(name: str) -> int:
    """modular-rl names carry the limb count: walker_5_main, humanoid_2d_7_..., hopper_3."""
    parts = name.split("_")
    return int(parts[2] if parts[0] == "humanoid" else parts[1])


@pytest.mark.parametrize("name", M.body_names())
def test_every_named_body_compiles_and_rests_on_the_floor(name):
    spec = M.body(name)
    assert spec.num_limbs == _limb_count(name)
    model = mujoco.MjModel.from_xml_string(M.to_mjcf(spec, sensors=True))
    assert model.nbody - 1 == spec.num_limbs and model.nu == spec.num_limbs - 1
    assert model.nq == 3 + model.nu and model.nsensordata == 13 * spec.num_limbs
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    assert data.ncon == 0  # starts just above the floor
    mujoco.mj_step(model, data, nstep=500)  # 1 s without torque
    assert data.ncon > 0  # ...and lands on it
    z = data.xpos[1:, 2]
    assert (z > -0.05).all() and (z < 2.0).all()  # nothing sank or flew off


def test_distinct_bodies_in_each_family():
    for fam, bodies in M.FAMILIES.items():
        xmls = {M.to_mjcf(spec).replace(name, "x") for name, spec in bodies.items()}
        assert len(xmls) == len(bodies), fam


def test_a_custom_spec_and_a_row_of_robots():
    spec = BodySpec(
        "stick",
        "custom",
        (
            Limb("torso", None, 0.4, 0.05, kind="torso"),
            Limb("leg", "torso", 0.5, 0.04, joint_range=(-90, 90), kind="limb"),
        ),
    )
    model = mujoco.MjModel.from_xml_string(M.to_mjcf([spec, M.body("walker_7_main")]))
    assert model.nu == 1 + 6 and model.njnt == 4 + 9


@pytest.mark.parametrize(
    "limbs, match",
    [
        (
            (
                Limb("torso", None, 0.4, 0.05, kind="torso"),
                Limb("a", "b", 0.3, 0.04),
                Limb("b", "a", 0.3, 0.04),
            ),
            "cycle",
        ),
        ((Limb("torso", None, 0.4, 0.05, kind="torso"), Limb("a", "torso", 0.0, 0.04)), "length"),
        ((Limb("torso", None, 0.4, 0.05, kind="torso"), Limb("a", "torso", 0.3, -1.0)), "radius"),
        (
            (
                Limb("torso", None, 0.4, 0.05, kind="torso"),
                Limb("a", "torso", 0.3, 0.04, joint_range=(30, -30)),
            ),
            "inverted",
        ),
        ((Limb("torso", None, 0.4, 0.05, kind="torso"), Limb("a", "nope", 0.3, 0.04)), "parent"),
        (
            (Limb("torso", None, 0.4, 0.05, kind="torso"), Limb("torso", "torso", 0.3, 0.04)),
            "unique",
        ),
        ((Limb("a", None, 0.4, 0.05), Limb("b", None, 0.4, 0.05)), "exactly one root"),
        (
            (Limb("torso", None, 0.4, 0.05, kind="torso"), Limb("a", "torso", 0.3, 0.04, gear=0)),
            "gear",
        ),
    ],
)
def test_malformed_spec_is_refused_in_one_line(limbs, match):
    with pytest.raises(ValueError, match=match) as info:
        BodySpec("bad", "custom", limbs)
    assert "\n" not in str(info.value)


def test_unknown_body_name_suggests_a_close_one():
    with pytest.raises(ValueError, match="walker_5_main"):
        M.body("walker_5_mian")
