"""``train_ppo``: the run around PPO.fit (files, resume, time limit, Ctrl-C) on a toy
contextual bandit defined here."""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from colonylab.agents.grid_policy import GridPolicy
from colonylab.collective_ml.trainers.ppo import PPOConfig
from colonylab.runs.common.checkpoint import load_checkpoint
from colonylab.runs.ppo_loop import train_ppo


class Bandit:
    """16 agents see a one-hot context of 3 arms and earn 1 for pulling that arm."""

    def __init__(self, n: int = 16, arms: int = 3) -> None:
        self.n_agents, self.arms = n, arms
        self.view = np.zeros((n, 1, 1, arms), np.float32)
        self.rng = np.random.default_rng(0)
        self.context = np.zeros(n, np.int64)
        self.pulls = 0

    def _observe(self) -> dict:
        self.context = self.rng.integers(0, self.arms, self.n_agents)
        self.view[...] = 0.0
        self.view[np.arange(self.n_agents), 0, 0, self.context] = 1.0
        return {"view": self.view}

    def reset(self, seed: int) -> dict:
        self.rng = np.random.default_rng(seed)
        return self._observe()

    def step(self, actions: np.ndarray):
        self.pulls += len(actions)
        reward = (actions == self.context).astype(np.float32)
        return self._observe(), reward, np.ones(self.n_agents, bool)

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "context": torch.from_numpy(self.context)}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.context = state["context"].numpy().copy()
        self.view[...] = 0.0
        self.view[np.arange(self.n_agents), 0, 0, self.context] = 1.0


@dataclass(frozen=True)
class Cfg:
    iterations: int = 4
    lr: float = 0.01


PPO_CFG = PPOConfig(rollout_steps=4, epochs=2, minibatches=2, lr=0.01, gamma=0.9)


def _train(tmp_path, iterations=4, resume=None, **kw):
    torch.manual_seed(0)
    policy = GridPolicy((1, 1, 3), 3, hidden=(16,))
    task = Bandit()
    calls = {"log": [], "finish": 0, "loaded": None}

    def log(run, iteration, record):
        record["charts/pulls"] = float(task.pulls)
        calls["log"].append(iteration)

    def finish(run):
        calls["finish"] += 1

    run = train_ppo(
        "toy-bandit", policy, task, PPO_CFG, Cfg(iterations=iterations),
        iterations=iterations, seed=0, resume=resume, out=str(tmp_path), checkpoint_every=2,
        log=kw.pop("log", log), state=lambda: {"pulls": task.pulls},
        load_state=lambda s: calls.update(loaded=s["pulls"]), finish=finish, echo=lambda s: None,
        tensorboard=False, **kw,
    )  # fmt: skip
    return run, calls


def _rows(path) -> list[dict]:
    return [json.loads(x) for x in (path / "metrics.jsonl").read_text().splitlines()]


def test_writes_metrics_checkpoint_and_config(tmp_path):
    run, calls = _train(tmp_path)
    assert run.iteration == 4 and calls["log"] == [1, 2, 3, 4] and calls["finish"] == 1
    rows = _rows(run.path)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert rows[-1]["charts/pulls"] == 4 * 4 * 16 and "losses/entropy" in rows[-1]
    ckpt = load_checkpoint(run.path / "checkpoints" / "latest.pt", "toy-bandit")
    assert ckpt["trainer"]["ppo"]["iteration"] == 4 and ckpt["trainer"]["pulls"] == 256
    assert ckpt["provenance"]["command"].startswith("colony train toy-bandit")
    assert ckpt["config"] == {"iterations": 4, "lr": 0.01}
    assert json.loads((run.path / "config.json").read_text())["iterations"] == 4


def test_resume_continues_bit_identically(tmp_path):
    straight, _ = _train(tmp_path / "a", iterations=4)
    half, _ = _train(tmp_path / "b", iterations=2)
    resumed, calls = _train(tmp_path / "c", iterations=4, resume=str(half.path))
    assert calls["loaded"] == 2 * 4 * 16 and resumed.path == half.path
    assert [r["step"] for r in _rows(half.path)] == [1, 2, 3, 4]
    for a, b in zip(straight.ppo.policy.parameters(), resumed.ppo.policy.parameters(), strict=True):
        assert torch.equal(a, b)


def test_time_limit_stops_at_a_checkpoint(tmp_path):
    run, calls = _train(tmp_path, iterations=8, minutes=1e-9)
    assert run.stopped_by_time and run.iteration == 2 and calls["finish"] == 1
    ckpt = load_checkpoint(run.path / "checkpoints" / "latest.pt", "toy-bandit")
    assert ckpt["trainer"]["ppo"]["iteration"] == 2


def test_ctrl_c_saves_finishes_and_reraises(tmp_path):
    def log(run, iteration, record):
        if iteration == 3:
            os.kill(os.getpid(), signal.SIGINT)  # PPO finishes the iteration, then saves

    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path, iterations=8, log=log)
    (path,) = (tmp_path / "toy-bandit").iterdir()
    ckpt = load_checkpoint(path / "checkpoints" / "latest.pt", "toy-bandit")
    assert ckpt["trainer"]["ppo"]["iteration"] == 3
    assert [r["step"] for r in _rows(path)] == [1, 2, 3]


def test_bad_arguments_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="iterations") as err:
        _train(tmp_path, iterations=0)
    assert "\n" not in str(err.value)
    with pytest.raises(FileNotFoundError, match="--resume"):
        _train(tmp_path, resume=str(tmp_path / "nowhere"))
