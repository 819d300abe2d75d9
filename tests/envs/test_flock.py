"""Flock world: cell-list kernels against brute-force NumPy, Vicsek's update, the
informed minority, Couzin's zones, the external controller, symmetries, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from colonylab.envs import registry
from colonylab.envs.consensus.flock import FlockConfig, FlockWorld


def _brute_sums(pos: np.ndarray, theta: np.ndarray, box: float, radius: float):
    """Reference: all pairs, minimum image, per flock ``pos[B, n, 2]``."""
    d = pos[:, :, None, :] - pos[:, None, :, :]
    d -= box * np.round(d / box)
    near = (d**2).sum(-1) <= radius**2
    vel = np.stack([np.cos(theta), np.sin(theta)], -1)
    return np.einsum("bij,bjk->bik", near, vel), near.sum(-1)


@pytest.mark.parametrize("n, density, batch", [(300, 4.0, 2), (40, 4.0, 3), (20, 2.0, 1)])
def test_neighbour_sums_match_brute_force(n, density, batch):
    world = FlockWorld(FlockConfig(n=n, density=density, batch=batch))
    world.reset(seed=n)
    world.run(3)
    sums, counts = world.neighbour_sums()
    ref_sums, ref_counts = _brute_sums(
        world.positions, world.headings, world.config.box, world.config.radius
    )
    np.testing.assert_array_equal(counts, ref_counts)
    np.testing.assert_allclose(sums, ref_sums, atol=1e-9)
    np.testing.assert_allclose(
        world.neighbour_mean_heading(), np.arctan2(ref_sums[..., 1], ref_sums[..., 0])
    )


def test_vicsek_step_is_the_published_update():
    cfg = FlockConfig(n=50, density=4.0, noise=0.0, speed=0.05)
    world = FlockWorld(cfg)
    world.reset(seed=1)
    pos, theta = world.positions.copy(), world.headings.copy()
    sums, _ = _brute_sums(pos, theta, cfg.box, cfg.radius)
    world.step()
    want = np.arctan2(sums[..., 1], sums[..., 0])
    np.testing.assert_allclose(world.headings, want, atol=1e-12)
    moved = pos + cfg.speed * np.stack([np.cos(want), np.sin(want)], -1)
    np.testing.assert_allclose(world.positions, moved % cfg.box, atol=1e-12)


def test_noise_orders_and_disorders():
    ordered = FlockWorld(FlockConfig(n=300, batch=2, noise=0.3))
    ordered.reset(seed=0)
    ordered.run(400)
    assert ordered.order().min() > 0.9
    messy = FlockWorld(FlockConfig(n=300, batch=2, noise=6.0))
    messy.reset(seed=0)
    messy.run(100)
    assert messy.order().max() < 0.3


def test_informed_minority_steers_the_flock():
    cfg = FlockConfig(n=200, batch=4, noise=0.5, informed_frac=0.1, target_angle=1.0)
    world = FlockWorld(cfg)
    world.reset(seed=2)
    world.run(600)
    error = np.angle(np.exp(1j * (world.group_heading() - 1.0)))
    assert np.abs(error).max() < 0.5
    assert world.informed.sum(axis=1).tolist() == [20] * 4
    obs = world.observe()
    assert obs.shape == (4, 200, 7) and obs.dtype == np.float32
    np.testing.assert_array_equal(obs[..., 4], world.informed)
    assert not obs[~world.informed][:, 5:].any()
    first = world.informed.copy()
    world.reset(seed=3)
    assert world.informed.sum() == 80 and (world.informed != first).any()  # drawn anew


def test_couzin_controller_runs_and_repels():
    cfg = FlockConfig(
        n=4, density=0.25, controller="couzin", noise=0.0, repulse_radius=0.5, attract_radius=1.5
    )
    world = FlockWorld(cfg)
    # particle 0 and 1 too close: each turns away from the other
    pos = np.array([[[1.0, 1.0], [1.3, 1.0], [3.0, 3.0], [3.0, 1.0]]])
    world.reset(seed=0, options={"positions": pos, "headings": np.zeros((1, 4))})
    world.step()
    assert world.headings[0, 0] == pytest.approx(-math.pi)
    assert world.headings[0, 1] == pytest.approx(0.0)


def test_external_controller_takes_headings():
    cfg = FlockConfig(n=30, batch=2, controller="external", noise=0.0)
    world = FlockWorld(cfg)
    world.reset(seed=0)
    want = np.full((2, 30), 0.7)
    result = world.step(want)
    np.testing.assert_allclose(world.headings, want)
    assert result.obs.shape == (2, 30, 7) and result.reward.shape == (2,)
    with pytest.raises(ValueError, match="needs the desired headings"):
        world.step()
    with pytest.raises(ValueError, match="shape"):
        world.step(np.zeros(30))
    with pytest.raises(ValueError, match="finite"):
        world.step(np.full((2, 30), np.nan))


def test_rotating_everything_rotates_the_result():
    cfg = FlockConfig(n=60, density=4.0, noise=0.0)
    box = cfg.box
    rng = np.random.default_rng(0)
    pos = rng.random((1, 60, 2)) * box
    theta = rng.uniform(-np.pi, np.pi, (1, 60))
    a = FlockWorld(cfg)
    a.reset(options={"positions": pos, "headings": theta})
    a.run(5)
    # a quarter turn of the square box: (x, y) -> (box - y, x), heading + pi/2
    rot = np.stack([(box - pos[..., 1]) % box, pos[..., 0]], -1)
    b = FlockWorld(cfg)
    b.reset(options={"positions": rot, "headings": theta + np.pi / 2})
    b.run(5)
    np.testing.assert_allclose(
        np.angle(np.exp(1j * (b.headings - a.headings - np.pi / 2))), 0, atol=1e-9
    )


def test_deterministic_under_a_seed_and_thread_count(script):
    code = """
import numpy as np
from colonylab.envs.consensus.flock import FlockConfig, FlockWorld
w = FlockWorld(FlockConfig(n=500, batch=2, noise=1.0, informed_frac=0.05))
w.reset(seed=4)
w.run(20)
np.savez("out.npz", pos=w.positions, theta=w.headings)
"""
    here = script.here(code)
    there = script.elsewhere(code, NUMBA_NUM_THREADS="1")
    np.testing.assert_array_equal(here["theta"], there["theta"])
    np.testing.assert_array_equal(here["pos"], there["pos"])


def test_registry_and_render():
    world = registry.make("flock", n=100, batch=2, informed_frac=0.1)
    world.reset(seed=0)
    world.step()
    image = world.render_rgb()
    assert image.dtype == np.uint8 and image.shape[2] == 3 and len(np.unique(image)) > 3
    assert set(world.metrics()) >= {"order", "mean_order", "target_alignment"}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"controller": "boids"}, "controller"),
        ({"noise": -1.0}, "noise"),
        ({"informed_frac": 1.5}, "informed_frac"),
        ({"n": 4, "density": 4.0}, "twice the interaction radius"),
        ({"radius": 0.0}, "radius"),
    ],
)
def test_bad_config_is_refused_in_one_line(kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        FlockConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_refused_step_changes_nothing(state_guard):
    world = FlockWorld(FlockConfig(n=50))
    world.reset(seed=0)
    world.step()
    state_guard.assert_refused(world, lambda: world.step(np.zeros(50)), "takes no actions")


def test_couzin_preset_informed_minority_beats_chance():
    from colonylab.envs.consensus.flock import COUZIN_2005, evaluate

    cfg = FlockConfig(n=100, **COUZIN_2005)
    row = evaluate(cfg, runs=8, steps=300, seed=1)
    assert row["controller"] == "couzin" and row["n"] == 100 and row["informed"] == 0.05
    assert row["accuracy_to_target"] > 0.7 and row["order"] > 0.6
    blind = evaluate(FlockConfig(n=100, **{**COUZIN_2005, "informed_frac": 0.0}), 8, 300, 1)
    assert blind["accuracy_to_target"] < row["accuracy_to_target"]


def test_evaluate_with_an_external_policy_matches_vicsek():
    from colonylab.envs.consensus.flock import evaluate

    base = dict(n=80, noise=0.5, informed_frac=0.1, target_angle=0.5)
    vicsek = evaluate(FlockConfig(**base), runs=3, steps=30, seed=2)

    def align(world, obs):  # Vicsek's rule through the external interface
        return world.neighbour_mean_heading()

    ext = evaluate(
        FlockConfig(**base, controller="external"), runs=3, steps=30, seed=2, policy=align
    )
    assert ext["controller"] == "external"
    # same noise draws; only the informed individuals' pull differs
    assert abs(ext["order"] - vicsek["order"]) < 0.2


def test_flock_informed_entry_is_the_couzin_preset():
    from colonylab.envs.consensus.flock import COUZIN_2005

    assert registry.spec("flock-informed").defaults == COUZIN_2005
    world = registry.make("flock-informed", n=40)
    world.reset(seed=0)
    assert world.metadata["name"] == "colonylab/FlockInformed-v0"
    assert world.config.controller == "couzin" and world.informed.sum() == 2


def test_noise_is_uniform_in_plus_minus_half_eta():
    from colonylab.envs.consensus import _kernels as K

    out = np.empty(200_000)
    K.uniform_noise(np.uint64(7), 3.0, out)
    assert out.min() >= -1.5 and out.max() < 1.5
    counts, _ = np.histogram(out, bins=10, range=(-1.5, 1.5))
    assert np.abs(counts / 20_000 - 1).max() < 0.05
    # a world step with no alignment to follow (one particle): heading + noise only
    world = FlockWorld(FlockConfig(n=1, density=0.01, noise=1.0))
    world.reset(seed=0, options={"headings": np.zeros((1, 1))})
    turns = []
    for _ in range(400):
        before = world.headings[0, 0]
        world.step()
        turns.append(np.angle(np.exp(1j * (world.headings[0, 0] - before))))
    assert np.abs(turns).max() <= 0.5 and np.std(turns) == pytest.approx(1 / 12**0.5, rel=0.15)
