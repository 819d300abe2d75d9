"""CartPoleWorld against Gymnasium's CartPole-v1: trajectories, seeds, freezing, autoreset,
bad actions, rendering, the registry entry."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv

from colonylab.envs import make
from colonylab.envs.classic import CartPoleConfig, CartPoleWorld


def _gym_envs(seeds):
    envs = [gym.make("CartPole-v1") for _ in seeds]
    obs = np.stack([e.reset(seed=int(s))[0] for e, s in zip(envs, seeds, strict=True)])
    return envs, obs


def test_same_seeds_and_actions_give_gymnasiums_trajectories():
    seeds = [0, 1, 2, 3, 17, 123, 4096, 99999]
    env = CartPoleWorld.factory()(len(seeds))
    obs = env.reset(seed=seeds)
    envs, gym_obs = _gym_envs(seeds)
    assert obs.dtype == torch.float64
    np.testing.assert_array_equal(obs.float().numpy(), gym_obs)  # the same starts
    rng = np.random.default_rng(0)
    returns = np.zeros(len(seeds))
    finished = np.zeros(len(seeds), dtype=bool)
    compared = 0
    for _ in range(200):
        actions = rng.integers(0, 2, len(seeds))
        obs, reward, terminated, truncated, _ = env.step(torch.as_tensor(actions))
        assert reward.dtype == torch.float32
        for k, genv in enumerate(envs):
            if finished[k]:  # frozen: no reward, no flags, state kept
                assert reward[k] == 0 and not terminated[k] and not truncated[k]
                continue
            g_obs, g_rew, g_term, g_trunc, _ = genv.step(int(actions[k]))
            np.testing.assert_allclose(obs[k].numpy(), genv.unwrapped.state, rtol=0, atol=1e-6)
            np.testing.assert_array_equal(obs[k].float().numpy(), g_obs)
            assert (reward[k].item(), bool(terminated[k]), bool(truncated[k])) == (
                g_rew,
                g_term,
                g_trunc,
            )
            returns[k] += g_rew
            finished[k] = g_term or g_trunc
            compared += 1
    assert finished.all() and compared > 50
    assert env.done.all()
    np.testing.assert_array_equal(env.elapsed.numpy(), returns)


def test_set_state_matches_gymnasium_from_the_same_state():
    """Start both from a hand-set state (gym: ``unwrapped.state``), long balanced episode."""
    state = np.array([[0.3, -0.2, 0.05, 0.1], [-1.0, 0.5, -0.1, -0.3]])
    env = CartPoleWorld.factory()(2)
    env.set_state(state)
    genvs, _ = _gym_envs([0, 0])
    for genv, row in zip(genvs, state, strict=True):
        genv.unwrapped.state = row.copy()
    policy = env.policy("balance")
    steps = 0
    for _ in range(300):
        actions = policy(env.state)
        obs, _, terminated, truncated, _ = env.step(actions)
        for k, genv in enumerate(genvs):
            if env.done[k] and not (terminated[k] or truncated[k]):
                continue
            genv.step(int(actions[k]))
            np.testing.assert_allclose(obs[k].numpy(), genv.unwrapped.state, rtol=0, atol=1e-6)
        steps += 1
    assert steps == 300


def test_integer_seed_matches_gymnasiums_vector_env_reset():
    ours = CartPoleWorld.factory()(6).reset(seed=11)
    theirs, _ = CartPoleVectorEnv(num_envs=6).reset(seed=11)
    np.testing.assert_array_equal(ours.float().numpy(), theirs)
    # and reset without a seed continues the world's own generator: reproducible
    a, b = CartPoleWorld.factory(seed=5)(3), CartPoleWorld.factory(seed=5)(3)
    assert torch.equal(a.reset(), b.reset())


def test_truncation_after_max_episode_steps_and_freeze():
    env = CartPoleWorld.factory(max_episode_steps=10)(3)
    env.reset(seed=[1, 2, 3])
    balance = env.policy("balance")
    total = torch.zeros(3)
    for t in range(15):
        _, reward, terminated, truncated, _ = env.step(balance(env.state))
        total += reward
        if t == 9:
            assert truncated.all() and not terminated.any()
        if t > 9:
            assert not truncated.any() and (reward == 0).all()
    assert torch.equal(total, torch.full((3,), 10.0))
    assert env.metrics()["episodes_finished"] == 3


def test_autoreset_starts_new_episodes_in_the_same_step():
    env = CartPoleWorld.factory(autoreset=True, seed=0)(4)
    env.reset(seed=0)
    left = torch.zeros(4, dtype=torch.int64)  # always push left: falls within ~10 steps
    ended_any = False
    for _ in range(40):
        obs, reward, terminated, _, info = env.step(left)
        assert (reward == 1).all() and not env.done.any()
        if terminated.any():
            ended_any = True
            final = info["final_obs"]
            assert (final[terminated, 0::2].abs() > torch.tensor([2.4, 0.2094])).any(1).all()
            assert (obs[terminated].abs() <= 0.05).all()  # fresh starts
            assert (env.elapsed[terminated] == 0).all()
    assert ended_any and env.episodes_finished > 0


@pytest.mark.parametrize(
    "actions,match",
    [
        (torch.zeros(3, dtype=torch.int64), r"shape \(4,\)"),
        (torch.zeros(4, 1, dtype=torch.int64), r"shape \(4,\)"),
        (torch.zeros(4), "integers 0 .* or 1"),
        (torch.tensor([0, 1, 2, 0]), "action 2 for env 2"),
        (np.array([0, -1, 0, 0]), "action -1 for env 1"),
        ([0, 1, "a", 0], "actions"),
    ],
)
def test_bad_actions_are_refused_and_leave_the_world_unchanged(actions, match, state_guard):
    env = CartPoleWorld.factory()(4)
    env.reset(seed=0)
    state_guard.assert_refused(env, lambda: env.step(actions), match)
    assert env.step_count == 0


def test_other_misuse_is_refused():
    env = CartPoleWorld.factory()(2)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(torch.zeros(2, dtype=torch.int64))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="default_policy"):
        env.step()
    with pytest.raises(ValueError, match="2 integers"):
        env.reset(seed=[1, 2, 3])
    with pytest.raises(ValueError, match=">= 0"):
        env.reset(seed=[1, -2])
    with pytest.raises(ValueError, match="num_envs"):
        CartPoleWorld.factory()(0)
    with pytest.raises(ValueError, match="dtype"):
        CartPoleWorld.factory(dtype=torch.int32)(2)
    with pytest.raises(ValueError, match="shape"):
        env.set_state(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="policy"):
        env.policy("nope")
    # bool actions are fine; so is the default policy
    env.step(torch.tensor([True, False]))
    env.default_policy = env.policy("random", seed=1)
    env.step()


def test_float32_world_and_subset():
    env = CartPoleWorld.factory(dtype=torch.float32)(5)
    obs = env.reset(seed=[5, 6, 7, 8, 9])
    assert obs.dtype == torch.float32
    env.step(torch.ones(5, dtype=torch.int64))
    sub = env.subset(torch.tensor([4, 1]))
    assert sub.num_envs == 2 and torch.equal(sub.state, env.state[[4, 1]])
    a = env.step(torch.tensor([0, 1, 0, 1, 1])).obs
    b = sub.step(torch.tensor([1, 1])).obs
    assert torch.equal(a[[4, 1]], b)
    with pytest.raises(ValueError, match="subset"):
        env.subset([7])


def test_render_rgb_and_metrics():
    env = CartPoleWorld.factory(render_envs=4)(5)
    env.reset(seed=0)
    frame = env.render_rgb()
    assert frame.dtype == np.uint8 and frame.shape == (320, 480, 3)
    for _ in range(60):  # push left until every cart falls: panels turn red
        env.step(torch.zeros(5, dtype=torch.int64))
    done_frame = env.render_rgb()
    assert done_frame[5, 5, 0] > done_frame[5, 5, 1]  # reddish background
    assert (frame != done_frame).any()
    m = env.metrics()
    assert m["running"] == 0 and m["episodes_finished"] == 5 and m["mean_length_last_100"] > 0


def test_registered_world_runs_with_its_policies():
    world = make("cartpole", num_envs=8)
    assert world.config == CartPoleConfig(num_envs=8)
    world.default_policy = world.policy("balance")
    world.reset(seed=0)
    for _ in range(200):
        world.step()
    # the balancing rule keeps every cart up for 200 steps; random ones fall early
    assert world.episodes_finished == 0
    world.default_policy = world.policy("random", seed=0)
    for _ in range(100):
        world.step()
    assert world.episodes_finished > 0
    with pytest.raises(ValueError, match="num_envs"):
        CartPoleConfig(num_envs=0)
