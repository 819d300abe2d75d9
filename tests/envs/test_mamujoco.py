"""MaMuJoCo partitions against the real package: ``gymnasium_robotics.mamujoco_v1``
stepped side by side with ours, same seed and actions; observations, rewards and flags
equal to 1e-6. Plus PettingZoo's API and seed tests."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("mujoco")
gymnasium_robotics = pytest.importorskip("gymnasium_robotics")
from gymnasium_robotics import mamujoco_v1  # noqa: E402
from pettingzoo.test import parallel_api_test, parallel_seed_test  # noqa: E402

from colonylab.envs.mujoco.mamujoco import PartitionedWorld, parallel_env  # noqa: E402

CASES = [
    ("Ant", "2x4"),
    ("Ant", "2x4d"),
    ("Ant", "4x2"),
    ("HalfCheetah", "2x3"),
    ("HalfCheetah", "6x1"),
]
STEPS = 60


@pytest.mark.parametrize("scenario, conf", CASES)
def test_equals_gymnasium_robotics(scenario, conf):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = mamujoco_v1.parallel_env(scenario, conf)
    ours = parallel_env(scenario, conf)
    assert ours.possible_agents == peer.possible_agents
    for agent in peer.possible_agents:
        assert ours.observation_space(agent).shape == peer.observation_space(agent).shape
        assert ours.action_space(agent).shape == peer.action_space(agent).shape
    gen = np.random.default_rng(7)
    for seed in (0, 3):
        po, _ = peer.reset(seed=seed)
        oo, _ = ours.reset(seed=seed)
        for agent in peer.possible_agents:
            np.testing.assert_allclose(oo[agent], po[agent], atol=1e-6, rtol=0)
        for t in range(STEPS):
            actions = {
                a: gen.uniform(-1, 1, peer.action_space(a).shape).astype(np.float32)
                for a in peer.agents
            }
            po, pr, pterm, ptrunc, _ = peer.step(actions)
            oo, orew, oterm, otrunc, _ = ours.step(actions)
            for agent in po:
                np.testing.assert_allclose(
                    oo[agent], po[agent], atol=1e-6, rtol=0, err_msg=f"step {t}"
                )
                assert abs(orew[agent] - pr[agent]) <= 1e-6, (t, orew[agent], pr[agent])
                assert oterm[agent] == pterm[agent] and otrunc[agent] == ptrunc[agent]
            if not peer.agents:
                assert not ours.agents
                break
    peer.close()


def test_batched_world_rows_are_independent_robots():
    world = PartitionedWorld("HalfCheetah", "2x3", num_envs=3)
    single = PartitionedWorld("HalfCheetah", "2x3", num_envs=1)
    obs = world.reset(seed=1)
    one = single.reset(seed=1)
    np.testing.assert_array_equal(obs[0][0], one[0][0])  # robot 0 draws first
    acts = [np.full((3, 3), 0.3), np.full((3, 3), -0.2)]
    obs, reward, term, trunc, _ = world.step(acts)
    assert reward.shape == term.shape == trunc.shape == (3,) and obs[1].shape == (
        3,
        one[1].shape[1],
    )


def test_pettingzoo_api_and_seed_tests():
    for scenario, conf in (("Ant", "4x2"), ("HalfCheetah", "6x1")):
        parallel_api_test(parallel_env(scenario, conf), num_cycles=30)
        parallel_seed_test(lambda s=scenario, c=conf: parallel_env(s, c))


def test_bad_partition_is_refused():
    with pytest.raises(ValueError, match="agent_conf"):
        PartitionedWorld("Ant", "3x3")
    with pytest.raises(ValueError, match="scenario"):
        PartitionedWorld("Walker2d", "2x3")
