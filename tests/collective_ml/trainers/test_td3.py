"""TD3: learns a toy continuous task, is deterministic under a seed, resumes its state,
stores terminations (not truncations) as the end of the bootstrap, refuses bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from colonylab.collective_ml.trainers.td3 import TD3, ReplayBuffer, TD3Config


class PointTask:
    """A point on a line: ``x' = x + 0.25 a``, reward ``-|x'|``, 8-step episodes,
    starts uniform in [-1, 1]: the best action moves towards 0."""

    def __init__(self, n: int = 16, horizon: int = 8) -> None:
        self.n_agents, self.horizon = n, horizon
        self.gen = torch.Generator()

    def _start(self, k: int) -> torch.Tensor:
        return torch.rand(k, generator=self.gen) * 2 - 1

    def reset(self, seed: int) -> dict:
        self.gen.manual_seed(seed)
        self.x, self.t = self._start(self.n_agents), torch.zeros(self.n_agents)
        return {"x": self.x[:, None].clone()}

    def step(self, action: torch.Tensor):
        self.x = self.x + 0.25 * action[:, 0]
        self.t += 1
        reward = -self.x.abs()
        truncated = self.t >= self.horizon
        final = {"x": self.x[:, None].clone()}
        if truncated.any():
            self.x[truncated] = self._start(int(truncated.sum()))
            self.t[truncated] = 0
        terminated = torch.zeros(self.n_agents, dtype=torch.bool)
        return {"x": self.x[:, None].clone()}, reward, terminated, truncated, final


class Actor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, x):
        return torch.tanh(self.net(x))


class Critic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, x, action):
        return self.net(torch.cat([x, action], dim=1))[:, 0]


def _td3(seed: int = 0, **overrides) -> TD3:
    torch.manual_seed(seed)
    cfg = dict(batch_size=64, start_steps=256, updates_per_step=0.25, gamma=0.9, tau=0.02)
    cfg.update(overrides)
    return TD3(Actor(), (Critic(), Critic()), PointTask(), TD3Config(**cfg), seed=seed)


def _greedy_distance(actor: nn.Module) -> float:
    x = torch.linspace(-1, 1, 21)
    with torch.no_grad():
        for _ in range(6):
            x = x + 0.25 * actor(x[:, None])[:, 0]
    return float(x.abs().mean())


def test_learns_to_move_the_point_home():
    td3 = _td3()
    before = _greedy_distance(td3.actor)
    history = td3.fit(steps=6_000, log_every=2_000)
    after = _greedy_distance(td3.actor)
    assert after < 0.15 < before, (before, after)
    assert history[-1]["charts/transitions"] == 6_000
    assert td3.updates == pytest.approx((6_000 - 64) * 0.25, abs=5)
    assert history[-1]["charts/episode_return"] > history[0]["charts/episode_return"]


def test_deterministic_under_a_seed_and_state_dict_round_trip():
    a, b = _td3(seed=3), _td3(seed=3)
    a.fit(steps=640, log_every=640)
    b.fit(steps=640, log_every=640)
    for p, q in zip(a.actor.parameters(), b.actor.parameters(), strict=True):
        assert torch.equal(p, q)
    c = _td3(seed=9)
    c.load_state_dict(a.state_dict())
    assert c.transitions == a.transitions and c.updates == a.updates
    for p, q in zip(a.critics.parameters(), c.critics.parameters(), strict=True):
        assert torch.equal(p, q)
    for p, q in zip(a.actor_target.parameters(), c.actor_target.parameters(), strict=True):
        assert torch.equal(p, q)


def test_buffer_keeps_final_observations_and_terminations():
    buf = ReplayBuffer(capacity=3)
    for k in range(4):  # wraps around
        obs = {"x": torch.full((1, 1), float(k))}
        nxt = {"x": torch.full((1, 1), k + 0.5)}
        buf.add(obs, torch.zeros(1, 1), torch.ones(1), torch.tensor([k == 3]), nxt)
    assert buf.size == 3 and buf.pos == 1
    assert buf.data["obs/x"][:, 0].tolist() == [3.0, 1.0, 2.0]
    assert buf.data["next/x"][:, 0].tolist() == [3.5, 1.5, 2.5]
    assert buf.data["terminated"].tolist() == [1.0, 0.0, 0.0]


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="gamma"):
        TD3Config(gamma=1.5)
    with pytest.raises(ValueError, match="actor_lr"):
        TD3Config(actor_lr=0.0)
    with pytest.raises(ValueError, match="batch_size"):
        TD3Config(batch_size=0)
    critic = Critic()
    with pytest.raises(ValueError, match="two distinct critics"):
        TD3(Actor(), (critic, critic), PointTask())
    with pytest.raises(ValueError, match="steps"):
        _td3().fit(steps=0)
