"""Rollout collection in shards (in-process and on Ray actors) for PPO: the same run either
way, bit for bit, and resumable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colonylab.agents.grid_policy import GridPolicy
from colonylab.collective_ml.trainers.ppo import PPO, PPOConfig
from colonylab.collective_ml.trainers.ray_rollout import LocalCollector, shard_seed


class Bandit:
    """Each of ``live`` agents sees a one-hot context and earns 1 for pulling its arm."""

    def __init__(self, live: int = 8, arms: int = 3) -> None:
        self.live, self.arms, self.n_agents = live, arms, live
        self.view = np.zeros((live, 1, 1, arms), np.float32)
        self.alive = np.ones(live, bool)
        self.rng = np.random.default_rng(0)
        self.context = np.zeros(live, np.int64)

    def _observe(self) -> dict:
        self.context = self.rng.integers(0, self.arms, self.live)
        self.view[...] = 0.0
        self.view[np.arange(self.live), 0, 0, self.context] = 1.0
        return {"view": self.view, "alive": self.alive}

    def reset(self, seed: int) -> dict:
        self.rng = np.random.default_rng(seed)
        return self._observe()

    def step(self, actions: np.ndarray):
        reward = (actions == self.context).astype(np.float32)
        return self._observe(), reward, np.ones(self.live, bool)

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "context": torch.from_numpy(self.context)}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.context = state["context"].numpy().copy()
        self.view[...] = 0.0
        self.view[np.arange(self.live), 0, 0, self.context] = 1.0


def make_bandit(shard: int, shards: int, policy) -> Bandit:
    return Bandit(live=4 + shard)  # shards of different sizes


def bandit_policy() -> GridPolicy:
    torch.manual_seed(0)
    return GridPolicy((1, 1, 3), 3, hidden=(16,))


CFG = PPOConfig(rollout_steps=4, epochs=2, minibatches=2, lr=3e-3, seed=5)


def weights(policy) -> dict:
    return {k: v.clone() for k, v in policy.state_dict().items()}


def test_shard_seeds_differ_and_are_stable():
    assert shard_seed(0, 0) != shard_seed(0, 1) != shard_seed(1, 0)
    assert shard_seed(3, 2) == shard_seed(3, 2)


def test_ppo_learns_from_a_collector_and_the_shards_fill_the_rows():
    policy = bandit_policy()
    collector = LocalCollector(make_bandit, policy, shards=2, seed=5)
    assert collector.n_agents == 4 + 5
    ppo = PPO(policy, None, CFG, collector=collector)
    history = ppo.fit(25)
    assert ppo._buffer["obs/view"].shape == (4, 9, 1, 1, 3)
    early = np.mean([r["charts/reward_mean"] for r in history[:5]])
    late = np.mean([r["charts/reward_mean"] for r in history[-5:]])
    assert late > max(0.7, early + 0.3), (early, late)


def test_a_collector_run_resumes_bit_identically():
    policy = bandit_policy()
    straight = PPO(policy, None, CFG, collector=LocalCollector(make_bandit, policy, 2, seed=5))
    straight.fit(4)
    policy2 = bandit_policy()
    first = PPO(policy2, None, CFG, collector=LocalCollector(make_bandit, policy2, 2, seed=5))
    first.fit(2)
    saved, state = weights(policy2), first.state_dict()
    policy3 = bandit_policy()
    policy3.load_state_dict(saved)
    again = PPO(policy3, None, CFG, collector=LocalCollector(make_bandit, policy3, 2, seed=5))
    again.load_state_dict(state)
    again.fit(4)
    for k, v in weights(policy).items():
        torch.testing.assert_close(policy3.state_dict()[k], v, rtol=0, atol=0)
    assert [r["charts/reward_mean"] for r in again.history] == [
        r["charts/reward_mean"] for r in straight.history
    ]


def test_collector_errors_are_one_line():
    policy = bandit_policy()
    collector = LocalCollector(make_bandit, policy, 2, seed=5)
    with pytest.raises(ValueError, match="either a task or a collector"):
        PPO(policy, Bandit(), CFG, collector=collector)
    ppo = PPO(policy, None, CFG, collector=collector)
    ppo.fit(1)
    state = ppo.state_dict()
    with pytest.raises(ValueError, match="has 2 shards; this collector has 3"):
        LocalCollector(make_bandit, policy, 3, seed=5).load_state_dict(state["collector"])
    with pytest.raises(ValueError, match="collected by a collector"):
        PPO(policy, Bandit(9), CFG).load_state_dict(state)
    with pytest.raises(ValueError, match="shards must be an integer >= 1"):
        LocalCollector(make_bandit, policy, 0)


# -- Ray on localhost: the same battles, the same weights -------------------------------------------
@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(
            num_cpus=2, include_dashboard=False, log_to_driver=False,
            configure_logging=False, ignore_reinit_error=True,
        )  # fmt: skip
    yield ray
    if started:
        ray.shutdown()


def test_ray_actors_give_the_in_process_run_on_a_tiny_battle(ray_local):
    from colonylab.collective_ml.trainers.ray_rollout import RayCollector
    from colonylab.runs.experiments import battle_cores as bc

    cfg = bc.Config(method="ppo", map_size=16, worlds=2, ray_actors=2, max_cycles=30)
    make_task = bc.ShardTask(cfg, seed=0)
    ppo_cfg = PPOConfig(rollout_steps=6, epochs=1, minibatches=2, seed=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the actors' setting: the same floating-point sums
    try:
        runs = []
        for kind in ("local", "ray"):
            policy = bc.build_policy(0)
            if kind == "local":
                collector = LocalCollector(make_task, policy, shards=2, seed=0)
            else:
                collector = RayCollector(make_task, policy, shards=2, seed=0, address="local")
            ppo = PPO(policy, None, ppo_cfg, collector=collector)
            ppo.fit(3)
            runs.append((weights(policy), [r["charts/reward_mean"] for r in ppo.history]))
            collector.close()
    finally:
        torch.set_num_threads(threads)
    (local_w, local_curve), (ray_w, ray_curve) = runs
    assert ray_curve == local_curve
    for k, v in local_w.items():
        torch.testing.assert_close(ray_w[k], v, rtol=0, atol=0)
    assert ppo._buffer["obs/view"].shape[1] == 2 * 6  # two shards of one 6-soldier battle
