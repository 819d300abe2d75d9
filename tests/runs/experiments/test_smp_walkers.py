"""``smp-walkers``: a tiny training run writes a checkpoint in the one format that
``colony eval`` reads back into rows {body, split, agent, mean, std, episodes}; the
rollout plays every candidate on every body with the same starts; bad options."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("mujoco")

from colonylab.agents.modular import build_modular  # noqa: E402
from colonylab.collective_ml.base import flatten_params  # noqa: E402
from colonylab.runs.cli import main as cli_main  # noqa: E402
from colonylab.runs.experiments.smp_walkers import (  # noqa: E402
    Config,
    Rollouts,
    policy_spec,
    train_bodies,
)


def test_rollouts_give_equal_candidates_equal_returns():
    cfg = Config(pop_size=2)
    policy = build_modular(policy_spec(cfg))
    flat = flatten_params(policy)
    rollouts = Rollouts(policy, train_bodies(cfg)[:3], max_steps=8, threads=1)
    returns = rollouts.returns(torch.stack([flat, flat, flat + 0.5]), seed=3)
    assert returns.shape == (3, 3)
    np.testing.assert_array_equal(returns[0], returns[1])
    assert not np.array_equal(returns[0], returns[2])
    assert 0 < rollouts.last_env_steps <= 3 * 3 * 8


def test_tiny_train_then_eval(tmp_path, capsys):
    out = tmp_path / "runs"
    argv = ["train", "smp-walkers", "--pop-size", "2", "--generations", "1", "--max-steps", "5"]
    assert cli_main([*argv, "--out", str(out)]) == 0
    ckpt = next(out.glob("smp-walkers/*/checkpoints/smp_walkers_smp.pt"))
    path = tmp_path / "eval.json"
    args = ["eval", "smp-walkers", "--checkpoint", str(ckpt), "--json", str(path)]
    assert cli_main([*args, "--eval-episodes", "1", "--eval-steps", "5"]) == 0
    rows = json.loads(path.read_text())["rows"]
    assert {r["agent"] for r in rows} == {"noop", "smp"}
    smp = [r for r in rows if r["agent"] == "smp"]
    assert len(smp) == 12 and {r["split"] for r in smp} == {"train", "held-out"}
    assert {r["body"] for r in smp if r["split"] == "held-out"} == {
        "walker_5_main",
        "walker_6_flipped",
    }
    for r in rows:
        assert (
            set(r) == {"body", "split", "agent", "mean", "std", "episodes"} and r["episodes"] == 1
        )


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="--agent"):
        Config(agent="gnn")
    with pytest.raises(ValueError, match="even"):
        Config(pop_size=3)
    with pytest.raises(ValueError, match="unknown body"):
        Config(agent="body-mlp", body="walker_9_main")
