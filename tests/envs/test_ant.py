"""The vectorized Ant (envs/mujoco/ant.py) against Gymnasium's Ant-v5."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest
import torch

pytest.importorskip("mujoco")

from colonylab.envs import registry  # noqa: E402
from colonylab.envs.mujoco.ant import AntConfig, AntWorld  # noqa: E402
from colonylab.envs.wrappers.sensory import ShuffleObservations  # noqa: E402


def _gym_ant():
    gym = pytest.importorskip("gymnasium")
    return gym.make("Ant-v5", include_cfrc_ext_in_observation=False)


def test_matches_gymnasium_ant_v5_step_for_step():
    """Same start (set_state), same actions: obs, reward, terminated agree for 100 steps."""
    world = AntWorld.factory()(3)
    world.reset(seed=[11, 12, 13])
    qpos, qvel = world.qpos.copy(), world.qvel.copy()
    qvel[2, 2] = 4.0  # a robot thrown upwards: it leaves the healthy range and terminates
    obs = world.set_state(qpos, qvel)
    envs = [_gym_ant() for _ in range(3)]
    for i, env in enumerate(envs):
        env.reset(seed=i)
        env.unwrapped.set_state(qpos[i], qvel[i])
        ref = env.unwrapped._get_obs()
        np.testing.assert_allclose(obs[i].numpy(), ref, rtol=0, atol=1e-12)
    # moderate torques: full-range random ones make the robots jump out of the range early
    actions = np.random.default_rng(0).uniform(-0.5, 0.5, size=(100, 3, 8))
    compared = 0
    for t in range(100):
        running = ~world.done.copy()
        obs, reward, terminated, truncated, info = world.step(actions[t])
        for i in np.flatnonzero(running):
            ref_obs, ref_reward, ref_term, ref_trunc, ref_info = envs[i].step(actions[t, i])
            np.testing.assert_allclose(obs[i].numpy(), ref_obs, rtol=1e-6, atol=1e-6)
            assert abs(float(reward[i]) - ref_reward) <= 1e-6 * max(1.0, abs(ref_reward))
            assert bool(terminated[i]) == ref_term and not truncated[i]
            assert abs(info["reward_contact"][i] - ref_info["reward_contact"]) < 1e-9
            compared += 1
    assert world.done[2], "the thrown robot should terminate"
    assert compared > 200


def test_integer_seed_starts_env_zero_like_gymnasium():
    world = AntWorld.factory()(2)
    obs = world.reset(seed=7)
    ref, _ = _gym_ant().reset(seed=7)
    np.testing.assert_array_equal(obs[0].numpy(), ref)
    assert not torch.equal(obs[0], obs[1])


def test_deterministic_under_seed_and_per_env_seeds_independent():
    actions = np.random.default_rng(1).uniform(-1, 1, size=(20, 4, 8))

    def run(seeds, acts):
        world = AntWorld.factory()(len(seeds))
        out = [world.reset(seed=seeds)]
        for a in acts:
            out.append(world.step(a).obs)
        return torch.stack(out)

    a = run([3, 4, 5, 6], actions)
    b = run([3, 4, 5, 6], actions)
    assert torch.equal(a, b)
    # env 1's episode does not depend on its neighbours or its place in the batch
    alone = run([4], actions[:, 1:2])
    assert torch.equal(a[:, 1], alone[:, 0])
    other = run([9, 4], actions[:, [3, 1]])
    assert torch.equal(a[:, 1], other[:, 1])


@pytest.mark.parametrize(
    ("actions", "match"),
    [
        (np.zeros((2, 7)), "shape"),
        (np.zeros(2), "shape"),
        (np.full((2, 8), 1.5), r"outside \[-1, 1\]"),
        (np.array([[0.0] * 8, [np.nan] + [0.0] * 7]), "env 1"),
        (np.zeros((2, 8), dtype=np.int64), "floats"),
        (torch.zeros(2, 8, dtype=torch.int32), "floats"),
    ],
)
def test_bad_actions_are_refused_and_nothing_changes(actions, match, state_guard):
    world = AntWorld.factory()(2)
    world.reset(seed=0)
    state_guard.assert_refused(world, lambda: world.step(actions), match)
    assert world.step_count == 0


def test_step_before_reset_and_bad_seeds():
    world = AntWorld.factory()(2)
    with pytest.raises(RuntimeError, match="reset"):
        world.step(np.zeros((2, 8)))
    with pytest.raises(ValueError, match="2 integers"):
        world.reset(seed=[1, 2, 3])


def test_subset_carries_physics_state_and_counters():
    world = AntWorld.factory()(4)
    world.reset(seed=[0, 1, 2, 3])
    rng = np.random.default_rng(2)
    for _ in range(5):
        world.step(rng.uniform(-1, 1, size=(4, 8)))
    part = world.subset([3, 1])
    assert part.num_envs == 2 and part.step_count == world.step_count
    np.testing.assert_array_equal(part.elapsed, world.elapsed[[3, 1]])
    acts = rng.uniform(-1, 1, size=(10, 4, 8))
    for a in acts:
        whole = world.step(a)
        sub = part.step(a[[3, 1]])
        assert torch.equal(sub.obs, whole.obs[[3, 1]])
        assert torch.equal(sub.reward, whole.reward[[3, 1]])
    np.testing.assert_array_equal(part.episode_return, world.episode_return[[3, 1]])
    with pytest.raises(ValueError, match="subset indices"):
        world.subset([4])


def test_torso_out_of_range_terminates_then_freezes():
    """The torso below healthy_z_range or above it (1.5 > 1.0) ends the episode; the robot
    then freezes. The floor keeps Ant's torso above the default 0.2 (started at z 0.1 it
    is thrown back up to ~0.35 in one step), so the low bound is raised to 0.45 here."""
    world = AntWorld.factory(healthy_z_range=(0.45, 1.0))(3)
    world.reset(seed=0)
    qpos, qvel = world.qpos.copy(), world.qvel.copy()
    qpos[1, 2], qpos[2, 2] = 0.1, 1.5
    world.set_state(qpos, qvel)
    _, reward, terminated, truncated, info = world.step(np.zeros((3, 8)))
    assert terminated.tolist() == [False, True, True] and not truncated.any()
    assert world.done.tolist() == [False, True, True]
    assert info["reward_survive"].tolist() == [1.0, 0.0, 0.0]
    frozen = world.qpos[1].copy()
    _, reward, terminated, _, _ = world.step(np.zeros((3, 8)))
    assert float(reward[1]) == 0.0 and not terminated[1:].any()
    np.testing.assert_array_equal(world.qpos[1], frozen)


def test_truncation_and_autoreset():
    world = AntWorld.factory(max_episode_steps=3, autoreset=True, seed=0)(2)
    world.reset(seed=0)
    for _ in range(2):
        assert not world.step(np.zeros((2, 8))).truncated.any()
    obs, _, _, truncated, info = world.step(np.zeros((2, 8)))
    assert truncated.all() and world.elapsed.tolist() == [0, 0]
    assert not torch.equal(obs, info["final_obs"])
    assert world.episodes_finished == 2


def test_shuffle_wrapper_permutes_the_27_observations():
    world = ShuffleObservations(AntWorld.factory()(3), every=2, seed=0)
    obs = world.reset(seed=5)
    plain = world.unwrapped.observe()
    assert obs.shape == (3, 27)
    perm = world.permutation
    assert torch.equal(obs, torch.gather(plain, 1, perm))
    for _ in range(2):
        obs, *_ = world.step(np.zeros((3, 8)))
    assert not torch.equal(world.permutation, perm)
    assert torch.equal(obs.sort(dim=1).values, world.unwrapped.observe().sort(dim=1).values)
    part = world.subset([2])
    assert torch.equal(part.permutation, world.permutation[[2]])


def test_registry_policies_and_config():
    world = registry.make("ant", num_envs=2, autoreset=False)
    assert isinstance(world, AntWorld) and world.config == AntConfig(num_envs=2, autoreset=False)
    obs = world.reset(seed=0)
    assert registry.spec("ant").policies == AntWorld.policies == ("random", "noop")
    for name in AntWorld.policies:
        act = world.policy(name, seed=0)(obs)
        assert act.shape == (2, 8) and bool((act.abs() <= 1).all())
    with pytest.raises(ValueError, match="choose"):
        world.policy("dance")
    assert world.metrics()["envs"] == 2


def test_render_rgb_tiles_tracking_views(tmp_path):
    world = AntWorld.factory(render_envs=4)(3)
    world.reset(seed=0)
    world.step(np.zeros((3, 8)))
    try:
        image = world.render_rgb(panel_width=64, panel_height=48)
    except RuntimeError as exc:
        pytest.skip(f"MuJoCo cannot render here (MUJOCO_GL={os.environ.get('MUJOCO_GL')}): {exc}")
    assert image.shape == (96, 128, 3) and image.dtype == np.uint8
    assert image[:48, :64].std() > 5  # a picture, not a blank panel
    world.close()
