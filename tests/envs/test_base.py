"""envs/base.py: world factories for population evaluators."""

from __future__ import annotations

import pickle

import pytest
import torch

from colonylab.envs.base import WorldFactory
from colonylab.envs.classic import CartPoleConfig, CartPoleWorld
from colonylab.envs.classic.pong import PuzzlePongWorld
from colonylab.envs.classic.swingup import SwingUpConfig, SwingUpWorld


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
