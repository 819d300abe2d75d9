"""Lenia: FFT convolution, fused growth kernel, Orbium gliding, determinism, config checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from colonylab.emergence.lenia import centroid, displacement, mass
from colonylab.envs import World, make
from colonylab.envs.base import BoardTooLargeError
from colonylab.envs.ca import _kernels as K
from colonylab.envs.ca.lenia import (
    LeniaConfig,
    LeniaWorld,
    lenia_kernel,
    orbium,
    rescale,
    toroidal_kernel_fft,
)

GROWTH_KINDS = {
    "gaussian": K.GROWTH_GAUSSIAN,
    "polynomial": K.GROWTH_POLYNOMIAL,
    "step": K.GROWTH_STEP,
}


# ---------------------------------------------------------------- NumPy references


def direct_convolution(board: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Toroidal convolution by shifted sums: U[y, x] = sum k[c+dy, c+dx] A[y-dy, x-dx]."""
    ch, cw = kernel.shape[0] // 2, kernel.shape[1] // 2
    out = np.zeros(board.shape, dtype=np.float64)
    for i in range(kernel.shape[0]):
        for j in range(kernel.shape[1]):
            if kernel[i, j] != 0:
                out += kernel[i, j] * np.roll(board, (i - ch, j - cw), axis=(-2, -1))
    return out


def reference_growth(u: np.ndarray, mu: float, sigma: float, kind: str) -> np.ndarray:
    d = u.astype(np.float64) - mu
    if kind == "gaussian":
        return 2.0 * np.exp(-(d**2) / (2.0 * sigma**2)) - 1.0
    if kind == "polynomial":
        return 2.0 * np.maximum(0.0, 1.0 - d**2 / (9.0 * sigma**2)) ** 4 - 1.0
    return np.where(np.abs(d) <= sigma, 1.0, -1.0)


def reference_update(state, potential, mu, sigma, dt, kind):
    """(next float32[B, H, W], row growth float64[B, H]) as the fused kernel computes them."""
    nxt = np.clip(
        state.astype(np.float64) + dt * reference_growth(potential, mu, sigma, kind), 0, 1
    )
    nxt = nxt.astype(np.float32)
    rows = ((nxt.astype(np.float64) - state.astype(np.float64)) / dt).sum(axis=-1)
    return nxt, rows


def random_update_inputs(seed: int = 0, shape=(2, 17, 23)):
    rng = np.random.default_rng(seed)
    state = rng.random(shape, dtype=np.float32)
    potential = (rng.random(shape) * 0.3).astype(np.float32)
    return state, potential


# ---------------------------------------------------------------- convolution


def test_fft_convolution_matches_direct_toroidal_convolution():
    cfg = LeniaConfig(height=24, width=30, batch=2, radius=5, init="random", seed=1)
    world = LeniaWorld(cfg)
    before = world.state.copy()
    world.step()
    expected = direct_convolution(before, world.kernel)
    np.testing.assert_allclose(world.potential, expected, atol=2e-6)


def test_kernel_fft_convention_with_asymmetric_kernel():
    rng = np.random.default_rng(2)
    board = rng.random((11, 13))
    kernel = rng.random((3, 5))  # not symmetric: pins convolution (not correlation)
    spectrum = np.fft.rfft2(board) * toroidal_kernel_fft(kernel, board.shape)
    got = np.fft.irfft2(spectrum, s=board.shape)
    np.testing.assert_allclose(got, direct_convolution(board, kernel), atol=1e-5)


@pytest.mark.parametrize("core", ["exponential", "polynomial", "step"])
@pytest.mark.parametrize("rings", [(1.0,), (0.5, 1.0, 0.25)])
def test_kernel_is_normalised_symmetric_and_within_radius(core, rings):
    kernel = lenia_kernel(7, rings, core)
    assert kernel.shape == (15, 15)
    assert kernel.sum() == pytest.approx(1.0)
    assert (kernel >= 0).all()
    np.testing.assert_allclose(kernel, kernel.T)
    np.testing.assert_allclose(kernel, kernel[::-1])
    offsets = np.arange(-7, 8)
    outside = np.hypot(offsets[:, None], offsets[None, :]) >= 7
    assert (kernel[outside] == 0).all()


# ---------------------------------------------------------------- growth kernel


@pytest.mark.parametrize("kind", list(GROWTH_KINDS))
def test_update_kernel_matches_numpy_reference(kind):
    state, potential = random_update_inputs()
    out = np.empty_like(state)
    rows = np.empty(state.shape[:2])
    K.lenia_update(state, potential, out, rows, 0.15, 0.015, 0.1, GROWTH_KINDS[kind])
    want, want_rows = reference_update(state, potential, 0.15, 0.015, 0.1, kind)
    np.testing.assert_allclose(out, want, atol=1e-7)
    np.testing.assert_allclose(rows, want_rows, rtol=1e-9, atol=1e-9)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_update_kernel_in_place_matches_separate_output():
    state, potential = random_update_inputs(seed=3)
    out = np.empty_like(state)
    rows, rows_in_place = np.empty(state.shape[:2]), np.empty(state.shape[:2])
    K.lenia_update(state, potential, out, rows, 0.15, 0.015, 0.1, K.GROWTH_GAUSSIAN)
    K.lenia_update(state, potential, state, rows_in_place, 0.15, 0.015, 0.1, K.GROWTH_GAUSSIAN)
    np.testing.assert_array_equal(state, out)
    np.testing.assert_array_equal(rows_in_place, rows)


def test_kernels_without_jit_match_reference(script):
    """The Python path of the kernels (NUMBA_DISABLE_JIT=1) gives the same numbers."""
    code = """
        import numpy as np
        from colonylab.envs.ca import _kernels as K
        from colonylab.envs.ca.lenia import LeniaConfig, LeniaWorld
        rng = np.random.default_rng(0)
        state = rng.random((2, 9, 11), dtype=np.float32)
        potential = (rng.random((2, 9, 11)) * 0.3).astype(np.float32)
        out = np.empty_like(state)
        rows = np.empty((2, 9))
        K.lenia_update(state, potential, out, rows, 0.15, 0.015, 0.1, K.GROWTH_POLYNOMIAL)
        world = LeniaWorld(LeniaConfig(size=32, radius=4, init="random", seed=5))
        world.run(3)
        np.savez("out.npz", out=out, rows=rows, world=world.state)
        """
    got = script.elsewhere(code, NUMBA_DISABLE_JIT="1")
    rng = np.random.default_rng(0)
    state = rng.random((2, 9, 11), dtype=np.float32)
    potential = (rng.random((2, 9, 11)) * 0.3).astype(np.float32)
    want, want_rows = reference_update(state, potential, 0.15, 0.015, 0.1, "polynomial")
    np.testing.assert_allclose(got["out"], want, atol=1e-7)
    np.testing.assert_allclose(got["rows"], want_rows, rtol=1e-9, atol=1e-9)
    jitted = LeniaWorld(LeniaConfig(size=32, radius=4, init="random", seed=5))
    jitted.run(3)
    np.testing.assert_allclose(got["world"], jitted.state, atol=1e-6)


# ---------------------------------------------------------------- Orbium


def test_orbium_glides_and_keeps_its_mass():
    world = LeniaWorld(LeniaConfig(size=64))
    start_mass = mass(world.state)[0]
    assert start_mass == pytest.approx(float(orbium().sum()), rel=1e-5)
    previous = centroid(world.state)[0]
    travelled = np.zeros(2)
    masses = []
    for _ in range(30):  # 300 steps, the centroid sampled every 10
        world.run(10)
        masses.append(mass(world.state)[0])
        now = centroid(world.state)[0]
        travelled += displacement(previous, now, world.state.shape[1:])
        previous = now
    masses = np.array(masses)
    # Measured: mass settles between 92 % and 98 % of the published pattern's.
    assert (masses > 0.85 * start_mass).all() and (masses < 1.15 * start_mass).all()
    assert world.state.max() > 0.5  # still a dense creature, not a faded smear
    # Measured: ~0.6 cells/step (about 180 cells in 300 steps).
    speed = np.hypot(*travelled) / 300
    assert 0.3 < speed < 1.0
    metrics = world.metrics()
    world.run(10)
    assert 0.3 < world.metrics()["speed"] < 1.0
    assert metrics["mass"] == pytest.approx(masses[-1])


def test_scaled_orbium_lives_at_a_larger_radius():
    world = LeniaWorld(LeniaConfig(size=128, radius=20))  # Orbium resampled 20/13
    start = mass(world.state)[0]
    world.run(150)
    assert 0.8 * start < mass(world.state)[0] < 1.2 * start


@pytest.mark.parametrize("core", ["exponential", "polynomial", "step"])
@pytest.mark.parametrize("growth", ["gaussian", "polynomial", "step"])
def test_every_kernel_core_and_growth_runs(core, growth):
    world = LeniaWorld(LeniaConfig(size=48, radius=8, kernel_core=core, growth=growth))
    world.run(5)
    assert np.isfinite(world.state).all()
    assert world.state.min() >= 0.0 and world.state.max() <= 1.0
    assert world.metrics()["mass"] > 0


def test_orbium_rotation_and_rescaling():
    cells = orbium()
    assert cells.shape == (20, 20) and cells.dtype == np.float32
    assert cells.min() >= 0.0 and cells.max() == 1.0
    np.testing.assert_array_equal(orbium(rotation=90), np.rot90(cells))
    np.testing.assert_array_equal(orbium(rotation=-90), np.rot90(cells, 3))
    assert orbium(radius=26).shape == (40, 40)
    assert orbium(radius=26, order=0).shape == (40, 40)
    np.testing.assert_allclose(rescale(cells, 1.0), cells)
    with pytest.raises(ValueError, match="45"):
        orbium(rotation=45)


def test_rotated_orbium_glides_in_the_rotated_direction():
    straight = LeniaWorld(LeniaConfig(size=64, init="empty"))
    turned = LeniaWorld(LeniaConfig(size=64, init="empty"))
    straight.place(orbium(), 32, 32)
    turned.place(orbium(rotation=180), 32, 32)
    c0s, c0t = centroid(straight.state)[0], centroid(turned.state)[0]
    straight.run(40)
    turned.run(40)
    ds = displacement(c0s, centroid(straight.state)[0], (64, 64))
    dt = displacement(c0t, centroid(turned.state)[0], (64, 64))
    np.testing.assert_allclose(ds, -dt, atol=0.6)
    assert np.hypot(*ds) > 10


# ---------------------------------------------------------------- world API


def test_world_protocol_and_step_result():
    world = make("lenia", size=48, batch=3, radius=6, init="random", seed=4)
    assert isinstance(world, World)
    assert world.metadata["name"] == "colonylab/Lenia-v0" and world.metadata["render_fps"] == 30
    obs, reward, terminated, truncated, info = world.step()
    assert obs.shape == (3, 48, 48) and obs.dtype == np.float32
    assert reward.shape == (3,) and (reward == 0).all()
    assert terminated.shape == (3,) and not terminated.any() and not truncated.any()
    assert world.step_count == 1
    world.run(4)
    assert world.step_count == 5
    img = world.render_rgb()
    assert img.shape == (48, 48, 3) and img.dtype == np.uint8
    metrics = world.metrics()
    assert set(metrics) == {"mass", "growth", "centroid_y", "centroid_x", "speed"}
    assert all(isinstance(v, float) for v in metrics.values())
    with pytest.raises(ValueError, match="no actions"):
        world.step(np.zeros(3))


def test_observations_are_copies_and_state_keeps_its_identity():
    world = LeniaWorld(LeniaConfig(size=48, radius=6, init="random", seed=2))
    board = world.state
    first = world.step().obs
    kept = first.copy()
    world.run(3)
    world.step()
    assert world.state is board
    np.testing.assert_array_equal(first, kept)
    assert not np.array_equal(first, world.state)


def test_viewer_hooks_drop_erase_and_switch_boards():
    world = LeniaWorld(LeniaConfig(size=64, batch=2, init="empty"))
    world.handle_click(10, 20, 1)
    assert mass(world.state)[0] == pytest.approx(float(orbium().sum()), rel=1e-5)
    assert mass(world.state)[1] == 0
    world.handle_click(10, 20, 3)
    assert mass(world.state)[0] == 0
    assert world.handle_key("]") and world.view_index == 1
    world.handle_click(40, 40, 1)
    assert world.metrics()["mass"] == pytest.approx(float(orbium().sum()), rel=1e-5)
    assert world.handle_key("[") and world.view_index == 0
    assert not world.handle_key("x")


def test_seeded_random_runs_are_identical():
    def run(seed):
        world = LeniaWorld(LeniaConfig(size=40, batch=2, radius=5, init="random", seed=seed))
        world.run(25)
        return world.state.copy()

    np.testing.assert_array_equal(run(7), run(7))
    assert not np.array_equal(run(7), run(8))
    world = LeniaWorld(LeniaConfig(size=40, radius=5, init="orbia", num_creatures=2, seed=3))
    first = world.state.copy()
    world.run(5)
    np.testing.assert_array_equal(world.reset(seed=3), first)
    assert world.step_count == 0


def test_orbia_places_separate_creatures():
    cfg = LeniaConfig(size=128, batch=2, init="orbia", num_creatures=3, seed=11)
    world = LeniaWorld(cfg)
    per_orbium = float(orbium().sum())
    np.testing.assert_allclose(mass(world.state), 3 * per_orbium, rtol=1e-5)
    assert not np.array_equal(world.state[0], world.state[1])


def test_place_wraps_around_the_edges():
    world = LeniaWorld(LeniaConfig(size=32, radius=3, init="empty", batch=2))
    pattern = np.arange(1, 17, dtype=np.float32).reshape(4, 4) / 16
    world.place(pattern, 0, 31, board=1)
    assert world.state[0].sum() == 0
    expected = np.zeros((32, 32), dtype=np.float32)
    expected[np.ix_(np.arange(-2, 2) % 32, np.arange(29, 33) % 32)] = pattern
    np.testing.assert_array_equal(world.state[1], expected)
    with pytest.raises(ValueError, match="fit"):
        world.place(np.zeros((40, 2)), 0, 0)


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("overrides", "shown"),
    [
        ({"height": 0}, "height=0"),
        ({"size": -5}, "size=-5"),
        ({"batch": -2}, "batch=-2"),
        ({"growth_sigma": 0.0}, "growth_sigma=0.0"),
        ({"time_resolution": -1.0}, "time_resolution=-1.0"),
        ({"size": 20}, "radius=13"),
        ({"kernel_core": "gauss"}, "'gauss'"),
        ({"growth": "bell"}, "'bell'"),
        ({"init": "glider"}, "'glider'"),
        ({"density": 1.5}, "density=1.5"),
        ({"ring_weights": ()}, "ring_weights=()"),
        ({"num_creatures": -1}, "num_creatures=-1"),
    ],
)
def test_bad_config_values_are_refused(overrides, shown):
    with pytest.raises(ValueError) as err:
        LeniaConfig(**overrides)
    assert shown in str(err.value)


def test_unknown_choice_lists_the_accepted_ones():
    with pytest.raises(ValueError, match="'exponential', 'polynomial', 'step'"):
        LeniaConfig(kernel_core="gauss")


def test_too_large_board_is_refused_before_allocating():
    with pytest.raises(BoardTooLargeError, match="Lenia board"):
        LeniaWorld(LeniaConfig(size=1_000_000, batch=64))


def test_config_is_frozen_and_size_is_a_shortcut():
    cfg = LeniaConfig(size=96)
    assert cfg.shape == (96, 96)
    assert LeniaConfig(size=96, height=40).shape == (40, 96)
    world = LeniaWorld(LeniaConfig(height=40, width=56, radius=5))
    assert world.state.shape == (1, 40, 56)
    world.run(2)
    with pytest.raises(AttributeError):
        cfg.height = 3  # type: ignore[misc]


# ---------------------------------------------------------------- emergence metrics


def test_centroid_on_a_torus_and_displacement():
    board = np.zeros((1, 20, 30))
    board[0, [19, 0], 5] = 1.0  # a blob across the top/bottom edge
    c = centroid(board)[0]
    assert min(abs(c[0] - 19.5), abs(c[0] + 0.5)) < 1e-9
    assert c[1] == pytest.approx(5.0)
    assert np.isnan(centroid(np.zeros((2, 4)))).all()
    d = displacement(np.array([19.0, 1.0]), np.array([1.0, 29.0]), (20, 30))
    np.testing.assert_allclose(d, [2.0, -2.0])
    np.testing.assert_allclose(mass(np.ones((3, 4, 5))), [20.0, 20.0, 20.0])
    world = LeniaWorld(LeniaConfig(size=64))
    world.run(7)
    m = world.metrics()
    np.testing.assert_allclose(centroid(world.state)[0], [m["centroid_y"], m["centroid_x"]])
    assert math.isfinite(m["growth"])
