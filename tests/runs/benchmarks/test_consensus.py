"""``colony bench consensus``: both suites run small, agree with their NumPy references,
and the JSON states the threads each side uses."""

from __future__ import annotations

import json

import numba
import numpy as np
import pytest

from colonylab.envs.consensus.flock import FlockConfig, FlockWorld
from colonylab.runs.benchmarks.consensus import Config, main, numpy_vicsek_step


def test_consensus_bench_states_threads(tmp_path):
    path = tmp_path / "consensus.json"
    cfg = Config(starts=128, particles=4000, min_time=0.01, repeats=1, json=str(path))
    main(cfg)
    data = json.loads(path.read_text())
    assert data["threads"] == {
        "ours": numba.get_num_threads(),
        "baseline": 1,
        "ours_library": "Numba",
        "baseline_library": "NumPy",
    }
    suites = {r["suite"]: r for r in data["results"]}
    assert set(suites) == {"density", "flock"}
    assert all(r["rate"] > 0 and r["numpy_rate"] > 0 for r in suites.values())
    assert suites["flock"]["mean_neighbours"] == pytest.approx(1 + 4 * np.pi, rel=0.1)


def test_numpy_reference_matches_the_world_with_noise():
    world = FlockWorld(FlockConfig(n=900, noise=0.0))
    world.reset(seed=5)
    pos, theta = world.pos.copy(), world.theta.copy()
    world.run(1)
    ref_pos, ref_theta = numpy_vicsek_step(
        pos, theta, world.config.box, 1.0, world.config.speed, np.zeros(900)
    )
    np.testing.assert_allclose(world.theta, ref_theta, atol=1e-9)
    np.testing.assert_allclose(world.pos, ref_pos, atol=1e-9)


def test_unknown_suite_is_refused():
    with pytest.raises(ValueError, match="suites must be among"):
        Config(suites=("lenia",))
