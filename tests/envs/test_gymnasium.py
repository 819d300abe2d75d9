"""Gymnasium registration: every single-agent world is ``gymnasium.make``-able and
``make_vec``-able (native vector entry point) under ``colonylab/`` after
``import colonylab``, passes ``check_env``, and the scalar swing-up agrees with the
vectorized world step for step."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import colonylab  # noqa: F401  (registers the ids)
from colonylab.envs import registry
from colonylab.envs.classic.swingup import SwingUpConfig, SwingUpWorld
from colonylab.envs.classic.swingup_env import CartPoleSwingUpEnv
from colonylab.envs.wrappers.gymnasium import WorldVectorEnv

SINGLE_AGENT = ["cartpole", "cartpole-swingup", "puzzle-pong", "ant"]


def _needs(name: str) -> None:
    if name == "ant":
        pytest.importorskip("mujoco")


def test_every_single_agent_world_is_registered_under_its_id():
    with_gym = [n for n, s in registry.WORLDS.items() if s.gym_entry_point is not None]
    assert sorted(with_gym) == sorted(SINGLE_AGENT)
    for name in SINGLE_AGENT:
        spec = registry.spec(name)
        assert spec.id.startswith("colonylab/") and spec.id in gym.registry
        gym_spec = gym.registry[spec.id]
        assert gym_spec.entry_point == spec.gym_entry_point
        assert gym_spec.vector_entry_point == spec.gym_vector_entry_point
        assert isinstance(gym_spec.entry_point, str)  # lazy: nothing imported to register


def test_import_colonylab_imports_nothing_heavy():
    code = (
        "import sys, colonylab, gymnasium as gym;"
        "assert 'colonylab/CartPoleSwingUp-v0' in gym.registry;"
        "print(sorted(m for m in ('torch', 'numba', 'mujoco', 'pettingzoo') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", SINGLE_AGENT)
def test_make_passes_check_env_and_names_match(name):
    _needs(name)
    spec = registry.spec(name)
    env = gym.make(spec.id)
    assert env.unwrapped.metadata["name"] == spec.id == env.spec.id
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Gymnasium warns about unbounded Boxes (its own CartPole does too): allowed
        warnings.filterwarnings("ignore", message=".*infinity.*")
        check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("name", SINGLE_AGENT)
def test_make_vec_is_the_native_vectorized_world(name):
    _needs(name)
    spec = registry.spec(name)
    n = 16 if name == "ant" else 256
    venv = gym.make_vec(spec.id, num_envs=n, vectorization_mode="vector_entry_point")
    inner = venv.unwrapped
    assert isinstance(inner, WorldVectorEnv) and inner.world.num_envs == n  # not a loop
    assert inner.metadata["name"] == spec.id == inner.world.metadata["name"]
    assert inner.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    obs, _ = venv.reset(seed=0)
    assert obs.shape == venv.observation_space.shape and obs in venv.observation_space
    venv.action_space.seed(0)
    obs2, reward, terminated, truncated, _ = venv.step(venv.action_space.sample())
    assert obs2.shape == obs.shape and reward.shape == terminated.shape == truncated.shape == (n,)
    assert np.isfinite(reward).all()
    again = gym.make_vec(spec.id, num_envs=n, vectorization_mode="vector_entry_point")
    np.testing.assert_array_equal(again.reset(seed=0)[0], obs)  # seeded
    venv.close()
    again.close()


def test_vector_env_same_step_autoreset_reports_final_obs():
    venv = gym.make_vec(
        "colonylab/CartPole-v0", 4, vectorization_mode="vector_entry_point", max_episode_steps=3
    )
    venv.reset(seed=0)
    for _ in range(2):
        _, _, _, truncated, info = venv.step(np.zeros(4, dtype=np.int64))
        assert not truncated.any() and "final_obs" not in info
    obs, _, terminated, truncated, info = venv.step(np.zeros(4, dtype=np.int64))
    ended = terminated | truncated
    assert ended.all() and info["_final_obs"].all()
    assert all(
        f.shape == (4,) and not np.array_equal(f, o)
        for f, o in zip(info["final_obs"], obs, strict=True)
    )
    assert (np.abs(obs) <= 0.05).all()  # fresh starts


def test_make_vec_kwargs_are_config_fields():
    venv = gym.make_vec(
        "colonylab/PuzzlePong-v0", 2, vectorization_mode="vector_entry_point", points_to_win=3
    )
    assert venv.unwrapped.world.config.points_to_win == 3
    with pytest.raises(TypeError, match="unexpected keyword"):
        gym.make_vec("colonylab/PuzzlePong-v0", 2, vectorization_mode="vector_entry_point", bogus=1)


# -- the scalar swing-up ------------------------------------------------------------------------
def test_swingup_entry_point_is_the_scalar_numpy_env():
    env = gym.make("colonylab/CartPoleSwingUp-v0")
    assert type(env.unwrapped) is CartPoleSwingUpEnv
    assert not hasattr(env.unwrapped, "world")  # no vectorized world inside


@pytest.mark.parametrize("action_dtype", [np.float64, np.float32])
def test_scalar_swingup_agrees_with_the_vectorized_world(action_dtype):
    """Same seeds, same actions: observations and rewards agree to float32 precision for
    whole episodes (until each ends)."""
    seeds = [3, 7, 11, 12]
    world = SwingUpWorld(SwingUpConfig(num_envs=len(seeds), autoreset=False, friction=0.1))
    envs = [CartPoleSwingUpEnv() for _ in seeds]
    got = np.stack([e.reset(seed=s)[0] for e, s in zip(envs, seeds, strict=True)])
    np.testing.assert_allclose(got, world.reset(seed=seeds).numpy(), rtol=0, atol=1e-6)
    rng = np.random.default_rng(0)
    running = np.ones(len(seeds), dtype=bool)
    steps = 0
    while running.any() and steps < 1000:
        a = rng.uniform(-1, 1, size=len(seeds)).astype(action_dtype)
        want = world.step(torch.as_tensor(a))
        for i in np.flatnonzero(running):
            obs, reward, terminated, truncated, _ = envs[i].step(a[i : i + 1])
            np.testing.assert_allclose(obs, want.obs[i].numpy(), rtol=1e-6, atol=1e-6)
            assert reward == pytest.approx(float(want.reward[i]), abs=1e-6)
            assert terminated == bool(want.terminated[i]) and truncated == bool(want.truncated[i])
            running[i] = not (terminated or truncated)
        steps += 1
    assert steps > 50


def test_scalar_swingup_refuses_bad_actions_and_keeps_its_state():
    env = CartPoleSwingUpEnv()
    env.reset(seed=0)
    state = env.state
    for bad in (np.array([1.5], dtype=np.float32), np.array([np.nan]), np.zeros(2), "left"):
        with pytest.raises(ValueError, match="action"):
            env.step(bad)
        assert env.state == state and env.elapsed == 0
    with pytest.raises(ValueError, match="render_mode"):
        CartPoleSwingUpEnv(render_mode="human")
    with pytest.raises(ValueError, match="friction"):
        CartPoleSwingUpEnv(friction=-1.0)


def test_scalar_swingup_renders_a_picture():
    env = gym.make("colonylab/CartPoleSwingUp-v0", render_mode="rgb_array")
    env.reset(seed=0)
    image = env.render()
    assert image.shape == (160, 240, 3) and image.dtype == np.uint8 and image.std() > 5
