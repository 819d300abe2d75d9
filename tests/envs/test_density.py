"""Density classification worlds: the bit-parallel kernel against the NumPy reference,
the published rule tables, the classic accuracies, symmetries, errors."""

from __future__ import annotations

import numpy as np
import pytest

from colonylab.envs import registry
from colonylab.envs.consensus import _kernels as K
from colonylab.envs.consensus import density as D


def _starts(batch: int, n: int, seed: int = 0) -> np.ndarray:
    return D.random_starts(batch, n, np.random.default_rng(seed))


def test_gkl_from_its_definition_is_the_published_string():
    assert D.table_to_hex(D.gkl_table()) == "005F005F005F005F005FFF5F005FFF5F"
    assert D.table_to_hex(D.table_from_hex(D.RING_HEX["das"])) == D.RING_HEX["das"]


def test_gkl_rule_in_words():
    table = D.gkl_table()
    # state 0: majority of (i-3, i-1, i); state 1: of (i, i+1, i+3)
    for index in range(128):
        c = [(index >> (6 - j)) & 1 for j in range(7)]
        votes = [c[0], c[2], c[3]] if c[3] == 0 else [c[3], c[4], c[6]]
        assert table[index] == (sum(votes) >= 2)


@pytest.mark.parametrize("radius, batch", [(1, 5), (3, 130), (2, 64)])
def test_packed_kernel_matches_numpy_reference(radius, batch):
    rng = np.random.default_rng(radius)
    table = rng.integers(0, 2, 2 ** (2 * radius + 1)).astype(np.uint8)
    start = _starts(batch, 37, seed=batch)
    words = D.pack(start)
    D.run_packed(words, D.ring_neighbours(37, radius), table, 7)
    ref = start
    for _ in range(7):
        ref = D.ring_step_numpy(ref, table, radius)
    np.testing.assert_array_equal(D.unpack(words, batch), ref)
    # the byte kernel agrees too
    out = np.empty_like(start)
    src = D.ring_step_numpy(start, table, radius)
    K.table_step_bytes(start, out, D.ring_neighbours(37, radius), table)
    np.testing.assert_array_equal(out, src)


def test_grid_kernel_matches_numpy_reference():
    rng = np.random.default_rng(5)
    table = rng.integers(0, 2, 512).astype(np.uint8)
    start = (rng.random((70, 7, 9)) < 0.5).astype(np.uint8)
    words = D.pack(start.reshape(70, -1))
    D.run_packed(words, D.grid_neighbours(7, 9), table, 3)
    ref = start
    for _ in range(3):
        ref = D.grid_step_numpy(ref, table)
    np.testing.assert_array_equal(D.unpack(words, 70).reshape(70, 7, 9), ref)


def test_pack_unpack_round_trip():
    start = _starts(200, 11)
    np.testing.assert_array_equal(D.unpack(D.pack(start), 200), start)


def test_gkl_accuracy_near_published_at_149():
    # 2,000 starts: standard error ~0.009; the 10,000-start goal check is in the report
    acc = D.classify("gkl", _starts(2000, 149, seed=11))
    assert abs(acc - 0.816) < 0.03


def test_published_rules_near_their_published_accuracy():
    starts = _starts(1500, 149, seed=12)
    for name, published in D.PUBLISHED_ACCURACY.items():
        assert abs(D.classify(name, starts) - published) < 0.04, name


def test_majority_rule_fails_and_all_equal_starts_are_fixed_points():
    assert D.classify("majority", _starts(500, 149, seed=3)) < 0.05
    ones = np.ones((3, 149), np.uint8)
    for name in D.RING_RULES:
        assert D.classify(name, ones) == 1.0
        assert D.classify(name, 1 - ones) == 1.0


def test_mirror_and_complement_symmetry_of_gkl():
    # GKL is symmetric under 0 <-> 1 together with left <-> right
    starts = _starts(300, 59, seed=4)
    each = D.classify_each("gkl", starts)
    mirrored = D.classify_each("gkl", 1 - starts[:, ::-1])
    np.testing.assert_array_equal(each, mirrored)
    # and rotation of the ring changes nothing
    np.testing.assert_array_equal(each, D.classify_each("gkl", np.roll(starts, 17, axis=1)))


def test_toom_grid_classifies_most_biased_starts():
    rng = np.random.default_rng(7)
    starts = (rng.random((200, 15, 15)) < 0.3).astype(np.uint8)
    assert D.classify("toom", starts) > 0.9


def test_world_steps_like_classify_and_rewards_the_verdict():
    world = registry.make("density-ring", n=49, batch=100, rule="gkl")
    start = world.reset(seed=3)
    assert start.shape == (100, 49) and start.dtype == np.uint8
    for _ in range(world.steps - 1):
        result = world.step()
        assert not result.truncated.any() and not result.reward.any()
    result = world.step()
    assert result.truncated.all()
    np.testing.assert_array_equal(result.reward.astype(bool), D.classify_each("gkl", start))
    image = world.render_rgb()
    assert image.shape == (world.steps + 1, 49, 3)


def test_world_space_time_and_reset_options():
    world = D.DensityRingWorld(D.DensityConfig(n=21, batch=3, steps=10))
    starts = _starts(3, 21, seed=1)
    world.reset(options={"starts": starts})
    diagram = world.space_time(start=2)
    ref = starts[2:3]
    for t in range(10):
        np.testing.assert_array_equal(diagram[t], ref[0])
        ref = D.ring_step_numpy(ref, world.table, 3)
    np.testing.assert_array_equal(world.cells, starts)  # space_time changed nothing


def test_hex_rule_strings_are_accepted():
    hex_das = D.RING_HEX["das"]
    np.testing.assert_array_equal(D.DensityConfig(rule=hex_das).table, D.ring_rule_table("das"))
    np.testing.assert_array_equal(D.ring_rule_table(hex_das.lower()), D.ring_rule_table("das"))
    with pytest.raises(ValueError, match="32-digit hexadecimal"):
        D.DensityConfig(rule="0F")


def test_rule_table_in_the_config_is_frozen_and_used():
    table = D.ring_rule_table("das")
    cfg = D.DensityConfig(n=31, rule=table)
    assert isinstance(cfg.rule, tuple)
    np.testing.assert_array_equal(cfg.table, table)
    hash(cfg)


def test_evaluate_rules_rows():
    rows = D.evaluate_rules(("gkl", ("mine", D.gkl_table())), (21, 31), starts=64, seed=1)
    assert [(r["rule"], r["lattice"]) for r in rows] == [
        ("gkl", 21),
        ("mine", 21),
        ("gkl", 31),
        ("mine", 31),
    ]
    assert rows[0]["accuracy"] == rows[1]["accuracy"] and rows[0]["starts"] == 64


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 150}, "odd"),
        ({"rule": "gkk"}, "rule"),
        ({"rule": "gkl", "radius": 2}, "radius-3"),
        ({"rule": np.zeros(64, np.uint8)}, "128 entries"),
        ({"rule": np.full(128, 2)}, "0 or 1"),
        ({"p": 1.5}, "p must"),
        ({"radius": 9}, "radius"),
    ],
)
def test_bad_config_is_refused_in_one_line(kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        D.DensityConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_bad_inputs_are_refused():
    world = D.DensityRingWorld(D.DensityConfig(n=11, batch=2))
    with pytest.raises(ValueError, match="shape"):
        world.reset(options={"starts": np.zeros((2, 12), np.uint8)})
    with pytest.raises(ValueError, match="unknown reset option"):
        world.reset(options={"start": 1})
    with pytest.raises(ValueError, match="no actions"):
        world.step(np.zeros(2))
    with pytest.raises(ValueError, match="lattice sizes must be odd"):
        D.evaluate_rules(("gkl",), (20,), starts=8)
    with pytest.raises(ValueError, match="entries"):
        D.classify(np.zeros(12, np.uint8), _starts(2, 11))


def test_same_result_without_jit(script):
    code = """
import numpy as np
from colonylab.envs.consensus import density as D
starts = D.random_starts(70, 23, np.random.default_rng(0))
np.savez("out.npz", each=D.classify_each("das", starts, steps=9))
"""
    here = script.here(code)["each"]
    there = script.elsewhere(code, NUMBA_DISABLE_JIT="1")["each"]
    np.testing.assert_array_equal(here, there)
