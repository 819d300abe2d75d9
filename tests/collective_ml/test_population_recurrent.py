"""The evaluators with a recurrent policy (AttentionNeuron): the state of each env is
its own, travels with it when finished episodes are dropped, and batched == loop."""

from __future__ import annotations

import numpy as np
import torch

from colonylab.agents.sensory import AttentionNeuronPolicy
from colonylab.collective_ml.base import num_params
from colonylab.collective_ml.population import BatchedEvaluator, LoopEvaluator
from colonylab.envs.classic.swingup import SwingUpWorld


class OneSwingUp:
    """A Gymnasium-style single env over a 1-env vectorized world."""

    def __init__(self, max_steps: int) -> None:
        self.world = SwingUpWorld.factory(
            dtype=torch.float32, validate_actions=False, max_episode_steps=max_steps
        )(1)

    def reset(self, seed: int):
        return self.world.reset(seed=[seed])[0], {}

    def step(self, action):
        obs, reward, terminated, truncated, _ = self.world.step(
            torch.as_tensor(np.asarray(action, dtype=np.float32)).reshape(1)
        )
        return obs[0], float(reward[0]), bool(terminated[0]), bool(truncated[0]), {}


def squeeze(out: torch.Tensor) -> torch.Tensor:
    return out.squeeze(-1)


def population(policy: torch.nn.Module, size: int, scale: float) -> torch.Tensor:
    gen = torch.Generator().manual_seed(3)
    return scale * torch.randn(size, num_params(policy), generator=gen)


def test_recurrent_policy_is_detected_and_batched_equals_loop():
    torch.manual_seed(0)
    policy = AttentionNeuronPolicy(act_dim=1, num_queries=4, key_dim=4, hidden_dim=4)
    params = population(policy, 3, 0.5)
    factory = SwingUpWorld.factory(dtype="float32", validate_actions=False)
    batched = BatchedEvaluator(policy, factory, episodes=2, max_steps=80, seed=5, action_fn=squeeze)
    loop = LoopEvaluator(
        policy, lambda: OneSwingUp(80), episodes=2, max_steps=80, seed=5, action_fn=squeeze
    )
    assert batched.recurrent and loop.recurrent
    a, b = batched.returns(params), loop.returns(params)
    torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-4)
    assert batched.last_env_steps == loop.last_env_steps


def test_state_travels_with_the_env_when_finished_episodes_are_dropped():
    torch.manual_seed(1)
    policy = AttentionNeuronPolicy(act_dim=1, num_queries=4, key_dim=4, hidden_dim=4)
    # large weights: carts leave the track at very different times
    params = population(policy, 8, 2.0)
    factory = SwingUpWorld.factory(dtype="float32", validate_actions=False)
    kwargs = dict(episodes=4, max_steps=300, seed=2, action_fn=squeeze)
    dropping = BatchedEvaluator(policy, factory, drop_min=2, **kwargs)
    keeping = BatchedEvaluator(policy, factory, drop_finished=False, **kwargs)
    a, b = dropping.returns(params), keeping.returns(params)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-5)
    lengths = dropping.last_env_steps
    assert lengths < 8 * 4 * 300  # some episodes did end early, so drops happened


def test_a_stateless_policy_is_not_treated_as_recurrent():
    policy = torch.nn.Sequential(torch.nn.Linear(5, 1), torch.nn.Tanh())
    factory = SwingUpWorld.factory(dtype="float32", validate_actions=False)
    evaluator = BatchedEvaluator(policy, factory, max_steps=10, action_fn=squeeze)
    assert not evaluator.recurrent
    assert evaluator(population(policy, 2, 0.1)).shape == (2,)
