"""Life-like worlds: kernels against a NumPy reference, known patterns, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from colonylab.envs import make
from colonylab.envs.base import BoardTooLargeError
from colonylab.envs.ca import _kernels as K
from colonylab.envs.ca.life import LifeConfig, LifeWorld
from colonylab.envs.ca.patterns import PATTERNS, get_pattern, stamp
from colonylab.envs.ca.rules import InvalidRuleError, LifeRule

RULES = ["B3/S23", "B36/S23", "B2/S", "B3678/S34678", "B0/S8", "B1357/S1357"]


def reference_step(board: np.ndarray, rule: str, torus: bool) -> np.ndarray:
    """A plain NumPy Life-like step on uint8[B, H, W]."""
    birth, survive = LifeRule.parse(rule).masks()
    h, w = board.shape[1:]
    if torus:
        padded = np.pad(board, ((0, 0), (1, 1), (1, 1)), mode="wrap")
    else:
        padded = np.pad(board, ((0, 0), (1, 1), (1, 1)))
    count = np.zeros(board.shape, dtype=np.int64)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if dy != 1 or dx != 1:
                count += padded[:, dy : dy + h, dx : dx + w]
    return np.where(board == 1, survive[count], birth[count]).astype(np.uint8)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("boundary", ["torus", "bounded"])
@pytest.mark.parametrize("kernel,width", [("packed", 128), ("bytes", 128), ("bytes", 37)])
def test_kernel_equals_numpy_reference(rule, boundary, kernel, width):
    rng = np.random.default_rng(hash((rule, boundary, width)) % 2**32)
    board = (rng.random((3, 29, width)) < 0.4).astype(np.uint8)
    world = LifeWorld(
        LifeConfig(height=29, width=width, batch=3, rule=rule, boundary=boundary, kernel=kernel)
    )
    world.set_board(board)
    expected = board
    for _ in range(5):
        expected = reference_step(expected, rule, boundary == "torus")
        obs, reward, terminated, truncated, info = world.step()
        np.testing.assert_array_equal(obs, expected)
    assert reward.shape == (3,) and not terminated.any() and not truncated.any()


def test_kernels_without_jit_match_reference(script):
    """The Python path of the kernels (NUMBA_DISABLE_JIT=1) stays right."""
    code = """
        import numpy as np
        from colonylab.envs.ca import _kernels as K
        from colonylab.envs.ca.rules import LifeRule
        import numba
        assert numba.config.DISABLE_JIT
        rng = np.random.default_rng(1)
        board = (rng.random((1, 12, 64)) < 0.4).astype(np.uint8)
        out = {"board": board}
        for rule in ("B3/S23", "B36/S23"):
            b, s = LifeRule.parse(rule).masks()
            out_bytes = np.empty_like(board)
            K.life_step_bytes(board, out_bytes, b, s, True)
            packed = np.empty((1, 12, 1), dtype=np.uint64)
            K.pack_bits(board, packed)
            nxt = np.empty_like(packed)
            K.life_step_packed(packed, nxt, b, s, True)
            out_packed = np.empty_like(board)
            K.unpack_bits(nxt, out_packed)
            out[f"{rule.replace('/', '')}_bytes"] = out_bytes
            out[f"{rule.replace('/', '')}_packed"] = out_packed
        np.savez("out.npz", **out)
        """
    got = script.elsewhere(code, NUMBA_DISABLE_JIT="1")
    for rule in ("B3/S23", "B36/S23"):
        expected = reference_step(got["board"], rule, True)
        key = rule.replace("/", "")
        np.testing.assert_array_equal(got[f"{key}_bytes"], expected)
        np.testing.assert_array_equal(got[f"{key}_packed"], expected)


def test_pack_unpack_roundtrip_and_popcount():
    rng = np.random.default_rng(0)
    board = (rng.random((2, 8, 192)) < 0.5).astype(np.uint8)
    packed = np.empty((2, 8, 3), dtype=np.uint64)
    K.pack_bits(board, packed)
    back = np.empty_like(board)
    K.unpack_bits(packed, back)
    np.testing.assert_array_equal(back, board)
    counts = np.empty(2, dtype=np.int64)
    K.popcount_boards(packed, counts)
    np.testing.assert_array_equal(counts, board.reshape(2, -1).sum(axis=1))


@pytest.mark.parametrize("kernel", ["packed", "bytes"])
def test_glider_moves_one_cell_diagonally_every_four_steps(kernel):
    world = LifeWorld(LifeConfig(size=64, pattern="glider", kernel=kernel))
    start = world.reset()[0].copy()
    for k in range(1, 5):
        world.run(4)
        np.testing.assert_array_equal(world.board[0], np.roll(start, (k, k), axis=(0, 1)))
        assert world.population()[0] == 5


def test_glider_wraps_around_the_torus():
    world = LifeWorld(LifeConfig(size=64, pattern="glider"))
    start = world.reset()[0].copy()
    world.run(4 * 64)  # 64 cells diagonally = once around
    np.testing.assert_array_equal(world.board[0], start)


@pytest.mark.parametrize(
    "name", [n for n, p in PATTERNS.items() if p.kind in ("still life", "oscillator", "spaceship")]
)
def test_known_patterns_have_their_periods(name):
    entry = PATTERNS[name]
    world = LifeWorld(LifeConfig(size=64, pattern=name, rule=entry.rule))
    start = world.reset()[0].copy()
    for t in range(1, entry.period):
        world.run(1)
        shifted_back = any(
            np.array_equal(world.board[0], np.roll(start, s, axis=(0, 1)))
            for s in [(0, 0), entry.displacement]
        )
        assert not shifted_back, f"{name} repeated after {t} < {entry.period} steps"
    world.run(1)
    np.testing.assert_array_equal(world.board[0], np.roll(start, entry.displacement, axis=(0, 1)))


def test_gosper_gun_emits_a_glider_every_30_steps():
    world = LifeWorld(LifeConfig(size=192, pattern="gosper-glider-gun", boundary="bounded"))
    world.reset()
    pops = []
    for _ in range(5):
        world.run(30)
        pops.append(int(world.population()[0]))
    # the gun returns to its shape every 30 steps and has added one 5-cell glider
    assert np.diff(pops).tolist() == [5, 5, 5, 5]


def test_diehard_vanishes_after_130_steps():
    world = LifeWorld(LifeConfig(size=64, pattern="diehard", boundary="bounded"))
    world.reset()
    world.run(129)
    assert world.population()[0] > 0
    world.run(1)
    assert world.population()[0] == 0


def test_highlife_replicator_replicates_but_not_in_life():
    def populations(rule):
        world = LifeWorld(LifeConfig(size=256, pattern="replicator", rule=rule))
        world.reset()
        out = []
        for _ in range(32):
            world.run(12)
            out.append(int(world.population()[0]))
        return out

    # HighLife: copies of the 12-cell replicator multiply along the diagonal
    assert max(populations("B36/S23")) >= 96
    # Life: it settles into a small fixed debris
    assert max(populations("B3/S23")) < 48


def test_seeded_soup_is_identical_twice_and_differs_across_seeds():
    def trajectory(seed):
        world = make("life", size=96, batch=2)
        out = [world.reset(seed=seed).copy()]
        for _ in range(20):
            out.append(world.step().obs.copy())
        return np.stack(out)

    a, b, c = trajectory(7), trajectory(7), trajectory(8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_packed_and_bytes_kernels_agree_on_long_runs():
    worlds = [LifeWorld(LifeConfig(size=128, batch=2, kernel=k)) for k in ("packed", "bytes")]
    boards = [w.reset(seed=3) for w in worlds]
    np.testing.assert_array_equal(boards[0], boards[1])
    for w in worlds:
        w.run(200)
    np.testing.assert_array_equal(worlds[0].board, worlds[1].board)
    np.testing.assert_allclose(worlds[0].activity(), worlds[1].activity())


def test_metrics_and_render():
    world = make("life", size=64)
    world.reset(seed=0)
    world.step()
    m = world.metrics()
    assert m["population"] == int(world.board[0].sum())
    assert 0 < m["activity"] < 1
    frame = world.render_rgb()
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) >= 2


def test_click_and_keys_edit_the_board():
    world = LifeWorld(LifeConfig(size=64, batch=2, density=0.0))
    world.reset()
    world.handle_click(10, 20, 1)
    assert world.board[0, 20, 10] == 1
    world.handle_click(30, 30, 3)
    assert world.population()[0] == 1 + 5
    assert world.handle_key("]") and world.view_index == 1
    assert not world.handle_key("x")


@pytest.mark.parametrize(
    "bad",
    ["B9/S23", "B3/S2a", "Life!", "B33/S23", "X3/Y23", "", "B3S23", 323],
)
def test_invalid_rules_are_refused_with_the_value(bad):
    with pytest.raises(InvalidRuleError) as exc:
        LifeRule.parse(bad)
    assert repr(bad) in str(exc.value)
    with pytest.raises(ValueError):
        LifeConfig(rule=bad)


def test_rule_parsing_forms_and_names():
    assert LifeRule.parse("B3/S23") == LifeRule.parse("life") == LifeRule.parse("23/3")
    assert LifeRule.parse("s23/b36").notation == "B36/S23"
    assert LifeRule.parse("B2/S").survive == frozenset()
    assert LifeRule.parse("daynight").notation == "B3678/S34678"


def test_board_too_large_is_refused_before_allocating():
    with pytest.raises(BoardTooLargeError, match="GiB"):
        LifeWorld(LifeConfig(size=1 << 22, batch=4))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"size": 0}, "size"),
        ({"density": 1.5}, "density"),
        ({"boundary": "sphere"}, "boundary"),
        ({"kernel": "packed", "width": 100}, "multiple of 64"),
        ({"batch": -1}, "batch"),
    ],
)
def test_bad_config_values_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LifeConfig(**kwargs)


def test_actions_are_refused():
    world = make("life", size=16)
    world.reset()
    with pytest.raises(ValueError, match="no actions"):
        world.step(np.zeros(3))


def test_set_board_validates():
    world = LifeWorld(LifeConfig(size=64))
    with pytest.raises(ValueError, match="shape"):
        world.set_board(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="0 .*or 1"):
        world.set_board(np.full((64, 64), 2))


def test_stamp_refuses_patterns_that_do_not_fit():
    board = np.zeros((8, 8), dtype=np.uint8)
    with pytest.raises(ValueError, match="does not fit"):
        stamp(board, get_pattern("gosper-glider-gun"), 0, 0)
