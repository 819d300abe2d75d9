"""PPO with parameter sharing on toy tasks whose optimum is known (defined here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colonylab.agents.grid_policy import GridPolicy
from colonylab.collective_ml.trainers.ppo import PPO, PPOConfig, gae
from colonylab.runs.common.checkpoint import (
    load_checkpoint,
    make_checkpoint,
    rng_states,
    save_checkpoint,
    set_rng_states,
)


class Bandit:
    """``live`` agents each see a one-hot context of ``arms`` arms and earn 1 for
    pulling that arm (every step is a one-step episode; the optimum is 1 per step).
    ``ghosts`` extra rows are never alive: their views are NaN and their rewards
    huge, so any leak of a dead row into the loss shows."""

    def __init__(self, live: int = 32, arms: int = 4, ghosts: int = 0) -> None:
        self.live, self.arms = live, arms
        self.n_agents = live + ghosts
        self.view = np.zeros((self.n_agents, 1, 1, arms), dtype=np.float32)
        self.alive = np.arange(self.n_agents) < live
        self.rng = np.random.default_rng(0)
        self.context = np.zeros(live, dtype=np.int64)

    def _observe(self) -> dict:
        self.context = self.rng.integers(0, self.arms, self.live)
        self.view[...] = 0.0  # the same buffer every step: the trainer must copy it
        self.view[np.arange(self.live), 0, 0, self.context] = 1.0
        self.view[self.live :] = np.nan
        return {"view": self.view, "alive": self.alive}

    def reset(self, seed: int) -> dict:
        self.rng = np.random.default_rng(seed)
        return self._observe()

    def step(self, actions: np.ndarray):
        reward = np.full(self.n_agents, 1e6, dtype=np.float32)
        reward[: self.live] = actions[: self.live] == self.context
        return self._observe(), reward, np.ones(self.n_agents, dtype=bool)

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "context": torch.from_numpy(self.context)}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.context = state["context"].numpy().copy()
        self.view[...] = 0.0
        self.view[np.arange(self.live), 0, 0, self.context] = 1.0
        self.view[self.live :] = np.nan


class Chase:
    """1-D chase: each agent sees the offset to its target on a line of ``length``
    cells (one-hot over ``2 length - 1``), moves left / stays / moves right; +1 and
    the episode ends on reaching the target, -0.05 a step otherwise, truncated after
    ``limit`` steps. Optimal return ``1 - 0.05 (d - 1)`` for a start ``d`` cells away."""

    def __init__(self, n: int = 32, length: int = 7, limit: int = 12) -> None:
        self.n_agents, self.length, self.limit = n, length, limit
        self.view = np.zeros((n, 1, 1, 2 * length - 1), dtype=np.float32)
        self.rng = np.random.default_rng(0)
        self.pos = np.zeros(n, np.int64)
        self.target = np.zeros(n, np.int64)
        self.t = np.zeros(n, np.int64)

    def _start(self, rows: np.ndarray) -> None:
        k = int(rows.sum())
        self.pos[rows] = self.rng.integers(0, self.length, k)
        offset = self.rng.integers(1, self.length, k) * self.rng.choice([-1, 1], k)
        self.target[rows] = np.clip(self.pos[rows] + offset, 0, self.length - 1)
        same = rows & (self.target == self.pos)
        self.target[same] = np.where(self.pos[same] > 0, self.pos[same] - 1, 1)
        self.t[rows] = 0

    def _observe(self) -> dict:
        self.view[...] = 0.0
        self.view[np.arange(self.n_agents), 0, 0, self.target - self.pos + self.length - 1] = 1
        return {"view": self.view}

    def reset(self, seed: int) -> dict:
        self.rng = np.random.default_rng(seed)
        self._start(np.ones(self.n_agents, bool))
        return self._observe()

    def step(self, actions: np.ndarray):
        self.pos = np.clip(self.pos + actions - 1, 0, self.length - 1)
        self.t += 1
        caught = self.pos == self.target
        reward = np.where(caught, 1.0, -0.05).astype(np.float32)
        done = caught | (self.t >= self.limit)
        self._start(done)
        return self._observe(), reward, done


def _policy(arms: int, seed: int = 0, **kw) -> GridPolicy:
    torch.manual_seed(seed)
    return GridPolicy((1, 1, arms), arms, hidden=(32,), **kw)


FAST = dict(rollout_steps=4, epochs=4, minibatches=2, lr=1e-2, gamma=0.9)


def test_gae_matches_a_hand_computed_reference():
    # two rows, three steps; row 1 dies at step 1 and is gone at step 2
    rewards = torch.tensor([[1.0, 2.0], [0.0, -1.0], [3.0, 0.0]])
    values = torch.tensor([[0.5, 1.0], [0.2, 0.4], [0.1, 0.0], [0.7, 0.0]])
    dones = torch.tensor([[False, False], [False, True], [True, False]])
    alive = torch.tensor([[True, True], [True, True], [True, False], [True, False]])
    g, lam = 0.9, 0.8
    adv, ret = gae(rewards, values, dones, alive, g, lam)
    # row 0: the episode ends with step 2 (no bootstrap from V=0.7)
    d2 = 3.0 - 0.1
    d1 = 0.0 + g * 0.1 - 0.2
    d0 = 1.0 + g * 0.2 - 0.5
    a2 = d2
    a1 = d1 + g * lam * a2
    a0 = d0 + g * lam * a1
    # row 1: done at step 1, dead at step 2
    b1 = -1.0 - 0.4
    b0 = 2.0 + g * 0.4 - 1.0 + g * lam * b1
    want = torch.tensor([[a0, b0], [a1, b1], [a2, 0.0]])
    torch.testing.assert_close(adv, want)
    torch.testing.assert_close(ret, torch.where(alive[:-1], want + values[:-1], 0.0))


def test_gae_treats_a_row_missing_next_step_as_ended():
    rewards = torch.tensor([[1.0], [5.0]])
    values = torch.tensor([[0.0], [9.0], [9.0]])
    dones = torch.zeros(2, 1, dtype=torch.bool)
    alive = torch.tensor([[True], [False], [True]])  # gone at step 1 without a done
    adv, _ = gae(rewards, values, dones, alive, 0.99, 0.95)
    torch.testing.assert_close(adv, torch.tensor([[1.0], [0.0]]))


def _bandit_reward(history) -> float:
    return float(np.mean([r["charts/reward_mean"] for r in history[-3:]]))


def test_ppo_learns_the_bandit():
    ppo = PPO(_policy(4), Bandit(live=32), PPOConfig(**FAST))
    history = ppo.fit(25)
    assert history[0]["charts/reward_mean"] < 0.5  # about 1/4 at the start
    assert _bandit_reward(history) > 0.9
    assert ppo.agent_steps == 25 * 4 * 32
    for key in ("losses/policy", "losses/value", "losses/entropy", "losses/approx_kl"):
        assert np.isfinite(history[-1][key])


def test_dead_rows_are_masked_out_completely():
    """Ghost rows with NaN views and 1e6 rewards change nothing: the same weights,
    bit for bit, as the same live agents without them."""
    with_ghosts = PPO(_policy(4), Bandit(live=16, ghosts=16), PPOConfig(**FAST))
    alone = PPO(_policy(4), Bandit(live=16), PPOConfig(**FAST))
    h1, h2 = with_ghosts.fit(3), alone.fit(3)
    for a, b in zip(with_ghosts.policy.parameters(), alone.policy.parameters(), strict=True):
        assert torch.isfinite(a).all()
        assert torch.equal(a, b)
    assert h1[-1]["charts/reward_mean"] == h2[-1]["charts/reward_mean"] <= 1.0
    assert with_ghosts.agent_steps == alone.agent_steps == 3 * 4 * 16


def test_ppo_learns_to_chase_over_several_steps():
    task = Chase()
    task.reset(seed=0)
    rng, running, random_returns = np.random.default_rng(0), np.zeros(task.n_agents), []
    for _ in range(200):  # the uniformly random policy's return, about 0.2
        _, reward, done = task.step(rng.integers(0, 3, task.n_agents))
        running += reward
        random_returns += list(running[done])
        running[done] = 0.0
    cfg = PPOConfig(rollout_steps=8, epochs=4, minibatches=2, lr=1e-2, gamma=0.95)
    history = PPO(_chase_policy(), Chase(), cfg).fit(15)
    returns = [r["charts/episode_return"] for r in history if "charts/episode_return" in r]
    assert np.mean(returns[-3:]) > max(0.85, np.mean(random_returns) + 0.5)  # optimum ~0.93


class WritingBandit(Bandit):
    """The bandit writing its observations into the trainer's ``out`` slot (with a few
    dead rows, so the living rows are gathered too)."""

    def step(self, actions: np.ndarray, out: dict | None = None):
        obs, reward, done = super().step(actions)
        self.slots = getattr(self, "slots", 0)
        if out is None:
            return obs, reward, done
        self.slots += 1
        for key, value in obs.items():
            np.copyto(out[key], value)
        return {k: out[k] for k in obs}, reward, done


def test_a_task_writing_into_the_buffer_changes_nothing_but_the_copies():
    writing = PPO(_policy(4), WritingBandit(live=16, ghosts=4), PPOConfig(**FAST))
    plain = PPO(_policy(4), Bandit(live=16, ghosts=4), PPOConfig(**FAST))
    h1, h2 = writing.fit(3), plain.fit(3)
    assert writing.task.slots == 3 * 4  # every step got a slot
    for a, b in zip(writing.policy.parameters(), plain.policy.parameters(), strict=True):
        assert torch.equal(a, b)
    assert [r["charts/reward_mean"] for r in h1] == [r["charts/reward_mean"] for r in h2]


def _chase_policy() -> GridPolicy:
    torch.manual_seed(1)
    return GridPolicy((1, 1, 13), 3, hidden=(32,))


def test_same_seed_same_run_and_another_seed_differs():
    runs = [PPO(_policy(4), Bandit(), PPOConfig(**FAST, seed=s)) for s in (0, 0, 1)]
    for r in runs:
        r.fit(3)
    p0, p1, p2 = (torch.cat([p.flatten() for p in r.policy.parameters()]) for r in runs)
    assert torch.equal(p0, p1)
    assert not torch.equal(p0, p2)


@pytest.mark.parametrize("optimizer", ["adam", "ae-adam"])
def test_resume_from_a_checkpoint_is_bit_identical(tmp_path, optimizer):
    cfg = PPOConfig(**{**FAST, "optimizer": optimizer})
    straight = PPO(_policy(4), Bandit(), cfg)
    straight.fit(6)

    first = PPO(_policy(4), Bandit(), cfg)
    first.fit(3)
    path = save_checkpoint(
        tmp_path / "latest.pt",
        make_checkpoint(
            "ppo-test",
            spec=first.policy.spec(),
            state_dict=first.policy.state_dict(),
            trainer=first.state_dict(),
            rng=rng_states(),
        ),
    )
    del first
    ckpt = load_checkpoint(path, "ppo-test")  # weights_only=True
    torch.manual_seed(123)  # a different global state: the checkpoint restores it
    policy = _policy(4, seed=99)
    policy.load_state_dict(ckpt["state_dict"])
    resumed = PPO(policy, Bandit(), cfg)
    resumed.load_state_dict(ckpt["trainer"])
    set_rng_states(ckpt["rng"])
    resumed.fit(6)

    for a, b in zip(straight.policy.parameters(), resumed.policy.parameters(), strict=True):
        assert torch.equal(a, b)
    timing = ("charts/iteration_seconds", "charts/agent_steps_per_s")
    for r1, r2 in zip(straight.history, resumed.history, strict=True):
        same = {k: v for k, v in r1.items() if k not in timing and not k.startswith("time/")}
        assert same == {k: r2[k] for k in same}
    if optimizer == "ae-adam":
        assert "ae/lr" in resumed.history[-1]


def test_ae_adam_learns_the_bandit():
    """AE steers Adam (it lowers the step size on PPO's non-stationary loss); the
    reward still rises from 1/4 to well past 1/2."""
    ppo = PPO(_policy(4), Bandit(live=32), PPOConfig(**{**FAST, "optimizer": "ae-adam"}))
    history = ppo.fit(40)
    assert _bandit_reward(history) > 0.5
    assert history[-1]["ae/lr"] != FAST["lr"]


def test_log_hook_save_and_errors():
    seen, saved = [], []
    ppo = PPO(
        _policy(4),
        Bandit(),
        PPOConfig(**FAST),
        log=lambda it, rec: seen.append(it),
        save=lambda p: saved.append(p.iteration),
        checkpoint_every=2,
    )
    ppo.fit(5)
    assert seen == [1, 2, 3, 4, 5] and saved == [2, 4, 5]
    with pytest.raises(ValueError, match="optimizer must be one of 'adam', 'ae-adam'"):
        PPOConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="gae_lambda must be a finite number in"):
        PPOConfig(gae_lambda=1.5)
    with pytest.raises(ValueError, match="rollout_steps must be an integer >= 1"):
        PPOConfig(rollout_steps=0)
    other = PPO(_policy(4), Bandit(), PPOConfig(**{**FAST, "optimizer": "ae-adam"}))
    with pytest.raises(ValueError, match="optimizer='adam'"):
        other.load_state_dict(ppo.state_dict())

    class Wrong(Bandit):
        def step(self, actions):
            obs, reward, done = super().step(actions)
            return obs, reward[:3], done

    with pytest.raises(ValueError, match=r"reward float32\[32\]"):
        PPO(_policy(4), Wrong(), PPOConfig(**FAST)).fit(1)


def test_messages_and_masks_flow_through_the_trainer():
    """A policy with a message head and an action mask: the task gets the messages,
    masked actions are never taken, and the run stays finite."""

    class Masked(Bandit):
        sent = None

        def _observe(self):
            obs = dict(super()._observe())
            mask = np.ones((self.n_agents, self.arms), dtype=bool)
            mask[:, 3] = False
            obs["mask"] = mask
            return obs

        def step(self, actions, messages=None):
            assert not (actions[: self.live] == 3).any()
            Masked.sent = messages
            return super().step(actions)

    ppo = PPO(_policy(4, message_dim=2), Masked(), PPOConfig(**FAST))
    history = ppo.fit(2)
    assert Masked.sent.shape == (32, 2) and np.isfinite(Masked.sent).all()
    assert np.isfinite(history[-1]["losses/policy"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_ppo_on_cuda_learns_the_bandit_and_resumes():
    ppo = PPO(_policy(4), Bandit(live=32), PPOConfig(**FAST), device="cuda")
    history = ppo.fit(25)
    assert next(ppo.policy.parameters()).is_cuda
    assert _bandit_reward(history) > 0.9
    again = PPO(_policy(4).cuda(), Bandit(live=32), PPOConfig(**FAST), device="cuda")
    again.policy.load_state_dict(ppo.policy.state_dict())
    again.load_state_dict(ppo.state_dict())
    assert again.fit(27)[-1]["charts/reward_mean"] > 0.8
