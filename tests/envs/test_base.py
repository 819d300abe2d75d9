"""envs/base.py: world factories for population evaluators and the deprecated ``VecX``
constructors."""

from __future__ import annotations

import pickle

import pytest
import torch

from colonylab.envs.base import WorldFactory
from colonylab.envs.classic import CartPoleConfig, CartPoleWorld, VecCartPole
from colonylab.envs.classic.pong import PuzzlePongWorld
from colonylab.envs.classic.swingup import SwingUpConfig, SwingUpWorld, VecCartPoleSwingUp


def test_factory_builds_frozen_worlds_of_any_size_and_device():
    factory = SwingUpWorld.factory(dtype=torch.float32, validate_actions=False)
    assert isinstance(factory, WorldFactory)
    world = factory(num_envs=5, device=torch.device("cpu"))
    assert isinstance(world, SwingUpWorld) and world.num_envs == 5
    assert world.config == SwingUpConfig(
        num_envs=5, autoreset=False, dtype="float32", device="cpu", validate_actions=False
    )
    assert world.reset(seed=list(range(5))).dtype == torch.float32
    again = pickle.loads(pickle.dumps(factory))  # Ray ships factories to its actors
    assert again(num_envs=5).config == world.config


def test_factory_from_a_config_keeps_it():
    config = CartPoleConfig(autoreset=True, max_episode_steps=50)
    world = CartPoleWorld.factory(config)(3)
    assert world.autoreset and world.max_episode_steps == 50 and world.num_envs == 3
    with pytest.raises(TypeError, match="CartPoleConfig"):
        CartPoleWorld.factory(SwingUpConfig())
    with pytest.raises(ValueError, match="points_to_win must be an integer >= 1, got 0"):
        PuzzlePongWorld.factory(points_to_win=0)


def test_deprecated_constructors_warn_and_keep_the_old_defaults():
    with pytest.warns(DeprecationWarning, match="CartPoleWorld"):
        world = VecCartPole(4, max_episode_steps=9, dtype=torch.float32, seed=1)
    assert isinstance(world, CartPoleWorld) and world.config == CartPoleConfig(
        num_envs=4, max_episode_steps=9, dtype="float32", seed=1, autoreset=False
    )
    with pytest.warns(DeprecationWarning):
        assert VecCartPoleSwingUp().num_envs == 1
    assert VecCartPole.obs_dim == 4 and VecCartPoleSwingUp.obs_dim == 5
