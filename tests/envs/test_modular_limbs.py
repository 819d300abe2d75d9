"""Limbs as agents: PettingZoo's API and seed tests on bodies of several shapes, and
the limbs' observations are the batched world's rows."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mujoco")

from pettingzoo.test import (  # noqa: E402
    api_test,  # noqa: E402
    parallel_api_test,
    parallel_seed_test,
)
from pettingzoo.utils import parallel_to_aec  # noqa: E402

from colonylab.envs.mujoco.limbs import parallel_env  # noqa: E402


@pytest.mark.parametrize("body", ["walker_7_main", "walker_2_flipped", "cheetah_5_back"])
def test_pettingzoo_tests(body):
    parallel_api_test(parallel_env(body), num_cycles=40)
    parallel_seed_test(lambda: parallel_env(body))


def test_aec_conversion_passes_api_test():
    api_test(parallel_to_aec(parallel_env("hopper_4")), num_cycles=20)


def test_agents_are_the_actuated_limbs_and_share_the_reward():
    env = parallel_env("walker_6_flipped")
    obs, _ = env.reset(seed=0)
    assert env.possible_agents == ["thigh", "leg", "left_thigh", "left_leg", "left_foot"]
    rows = env.world.observe()[0].numpy()
    for i, agent in enumerate(env.possible_agents):
        np.testing.assert_array_equal(obs[agent], rows[i + 1].astype(np.float32))
    actions = {a: np.array([0.5], dtype=np.float32) for a in env.agents}
    _, rewards, _, _, infos = env.step(actions)
    assert len(set(rewards.values())) == 1
    assert np.isclose(infos["leg"]["reward_ctrl"], -1e-3 * 0.25 * 5)
