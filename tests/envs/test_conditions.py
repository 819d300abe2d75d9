"""Evaluation conditions: wrapper stacks, factories, re-seeding on reset, the one-env
Gymnasium view."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colonylab.envs.classic.swingup import SwingUpWorld
from colonylab.envs.wrappers import NoiseChannels, OccludePatches, ShuffleObservations
from colonylab.envs.wrappers.conditions import Condition, OneEnv, ReseedOnReset, wrapped_factory

FACTORY = SwingUpWorld.factory(dtype="float32", max_episode_steps=50, validate_actions=False)


def test_wrap_stacks_the_wrappers_in_order():
    """Noise channels go under the shuffle: they are shuffled in with the real inputs."""
    world = Condition("x", shuffle=5, noise=3).wrap(FACTORY(num_envs=2), seed=0)
    assert isinstance(world, ShuffleObservations) and isinstance(world.world, NoiseChannels)
    assert world.every == 5
    assert world.reset(seed=1).shape == (2, 8)
    # the five real inputs do not all stay in front
    world = Condition("x", shuffle=0, noise=3).wrap(FACTORY(num_envs=64), seed=0)
    world.reset(seed=1)
    assert bool((world.permutation[:, :5] >= 5).any())
    assert Condition("plain").wrap(FACTORY(num_envs=2), 0).reset(seed=1).shape == (2, 5)
    assert Condition("n", noise=2).changes_input_count()
    assert Condition("z", occlude=0.5, occlude_mode="zero").changes_input_count() is False
    assert Condition("d", occlude=0.5).changes_input_count()


def test_occlusion_goes_innermost():
    class Patches:  # a tiny patch world: (N, P, d) observations
        def reset(self, seed=None, options=None):
            return torch.arange(2 * 8 * 3, dtype=torch.float32).reshape(2, 8, 3)

    world = Condition("o", shuffle=0, occlude=0.5).wrap(Patches(), seed=0)
    assert isinstance(world.world, OccludePatches)
    assert world.reset(seed=0).shape == (2, 4, 3)


def test_wrapped_factory_shuffles_the_same_values():
    make = wrapped_factory(FACTORY, Condition("s", shuffle=0), seed=3)
    plain = FACTORY(num_envs=4).reset(seed=7)
    shuffled = make(num_envs=4).reset(seed=7)
    torch.testing.assert_close(plain.sort(dim=1).values, shuffled.sort(dim=1).values)


def test_reseed_on_reset_forgets_the_history():
    """Array seeds (a population evaluator's reset) give the same shuffles however many
    draws came before."""
    make = wrapped_factory(FACTORY, Condition("s", shuffle=2), seed=3, reseed=True)
    seeds = np.array([11, 12, 13], dtype=np.int64)
    fresh = make(num_envs=3)
    assert isinstance(fresh, ReseedOnReset)
    first = fresh.reset(seed=seeds)
    used = make(num_envs=3)
    used.reset(seed=np.array([1, 2, 3]))
    for _ in range(5):
        used.step(torch.zeros(3))
    torch.testing.assert_close(used.reset(seed=seeds), first)
    for _ in range(3):  # past a re-shuffle (every 2 steps)
        torch.testing.assert_close(used.step(torch.zeros(3)).obs, fresh.step(torch.zeros(3)).obs)
    assert used.unwrapped is not used and hasattr(used, "subset")


def test_one_env_speaks_gymnasium():
    env = OneEnv(wrapped_factory(FACTORY, Condition("s", shuffle=0), seed=0))
    obs, info = env.reset(seed=4)
    assert obs.shape == (5,) and info == {}
    obs, reward, terminated, truncated, _ = env.step(np.float32(0.3))
    assert obs.shape == (5,) and isinstance(reward, float)
    assert isinstance(terminated, bool) and isinstance(truncated, bool)
    again, _ = OneEnv(wrapped_factory(FACTORY, Condition("s", shuffle=0), seed=0)).reset(seed=4)
    np.testing.assert_array_equal(env.reset(seed=4)[0], again)


def test_bad_shuffle_is_refused():
    with pytest.raises(ValueError, match="every"):
        Condition("bad", shuffle=-1).wrap(FACTORY(num_envs=1), 0)


def test_random_noise_count_per_reset_is_seeded_and_in_range():
    cond = Condition("train", shuffle=0, noise=0, noise_max=4)
    assert cond.changes_input_count()
    make = wrapped_factory(FACTORY, cond, seed=3, reseed=True)
    world = make(num_envs=2)
    counts = {world.reset(seed=np.array([s, s + 1])).shape[1] - 5 for s in range(40)}
    assert counts == {0, 1, 2, 3, 4}
    again = make(num_envs=2)
    for s in (5, 9):
        torch.testing.assert_close(
            world.reset(seed=np.array([s, s + 1])), again.reset(seed=np.array([s, s + 1]))
        )


def test_random_occlusion_share_per_reset():
    class Patches:  # (N, P, d) observations
        def reset(self, seed=None, options=None):
            return torch.ones(3, 10, 2)

    world = Condition("o", occlude=0.2, occlude_max=0.8, occlude_mode="zero").wrap(Patches(), 0)
    hidden = set()
    for s in range(30):
        obs = world.reset(seed=s)
        per_env = (obs.sum(-1) == 0).sum(1)
        assert len(set(per_env.tolist())) == 1  # one share for the batch
        hidden.add(int(per_env[0]))
    assert hidden <= set(range(2, 9)) and len(hidden) >= 4
    with pytest.raises(ValueError, match="max_share"):
        OccludePatches(Patches(), 0.5, max_share=0.3)
    with pytest.raises(ValueError, match="max_extra"):
        NoiseChannels(FACTORY(num_envs=1), extra=3, max_extra=2)
