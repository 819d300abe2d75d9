"""``colony bench marl``: rows, shares, threads, the battle task's protocol, the anchor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from colonylab.collective_ml.trainers.ppo import PPO
from colonylab.runs.benchmarks.marl import (
    BattleTask,
    Config,
    MAgent2Task,
    MagentBattleTask,
    _ppo_config,
    main,
    network,
)

ROOT = Path(__file__).resolve().parents[3]
ANCHOR = ROOT / ".venv-magent" / "bin" / "python"
TINY = dict(agents="200", rollout_steps=2, epochs=1, minibatch_size=256, repeats=1, threads=1)


def test_rows_carry_throughput_ceiling_and_share(tmp_path):
    path = tmp_path / "marl.json"
    rows = main(Config(**TINY, json=str(path)))
    data = json.loads(path.read_text())
    assert data["suite"] == "marl" and data["results"] == json.loads(json.dumps(rows))
    (row,) = rows
    # the default world is MAgent2's battle_v4: map 50 holds 100 a side
    assert row["agents"] == 200 and row["anchor_agent_steps_per_s"] is None
    assert row["agent_steps_per_s"] > 0 and row["network_ceiling_agent_steps_per_s"] > 0
    assert row["world_share"] == pytest.approx(
        1 - row["agent_steps_per_s"] / row["network_ceiling_agent_steps_per_s"]
    )
    assert 0 <= row["direct_world_share"] < 1
    assert row["samples"] <= 2 * 200  # living agent-steps of one iteration
    assert row["repeats"] == 1
    assert data["threads"]["ours"] == 1
    assert data["network"]["spec"]["hidden"] == [128, 128]
    assert data["network"]["parameters"] == 845 * 128 + 128 + 128 * 128 + 128 + 129 * 22


def test_battle_task_speaks_the_array_protocol_and_restarts_battles():
    task = BattleTask(20, "uint8", seed=3, max_cycles=3)
    obs = task.reset(seed=3)
    assert obs["view"].shape == (20, 13, 13, 5) and obs["view"].dtype == np.uint8
    assert torch.from_numpy(obs["view"]).data_ptr() == obs["view"].ctypes.data  # zero-copy
    for _ in range(3):
        obs, reward, done = task.step(np.zeros(20, dtype=np.int64))
        assert reward.shape == (20,) and reward.dtype == np.float32
    assert done.all() and obs["alive"].all()  # truncated at 3 steps: a fresh battle
    assert task.world.step_count == 0 and task._seed == 4


def test_bad_options_are_refused_in_one_line():
    with pytest.raises(ValueError, match="--obs-dtype must be one of"):
        Config(obs_dtype="int8")
    with pytest.raises(ValueError, match="--agents: 'x' is not an agent count"):
        Config(agents="1000,x")
    with pytest.raises(ValueError, match="--minibatch-size must be an integer >= 1"):
        Config(minibatch_size=0)
    with pytest.raises(ValueError, match="--large-repeats must be an integer >= 1"):
        Config(large_repeats=0)
    with pytest.raises(ValueError, match="--anchor-python '/nope' does not exist"):
        Config(anchor_python="/nope")


@pytest.mark.skipif(not ANCHOR.exists(), reason="no .venv-magent with magent2")
def test_magent2_task_stacks_the_pettingzoo_dicts():
    task = MAgent2Task(str(ANCHOR), 200, seed=0)
    try:
        obs = task.reset(seed=0)
        n = task.n_agents
        assert obs["view"].shape == (n, 13, 13, 5) and obs["alive"].all()
        assert obs["view"][:, 6, 6, 1].min() > 0  # every agent sees itself (own-team plane)
        obs, reward, done = task.step(np.zeros(n, dtype=np.int64))
        assert reward.shape == (n,) and not done.any()
        np.testing.assert_allclose(reward, -0.005, atol=1e-6)  # no-ops: the step penalty
    finally:
        task.close()


def test_grid_world_task_trains_in_the_bench():
    (row,) = main(Config(**{**TINY, "world": "grid"}))
    assert row["agents"] == 200 and row["agent_steps_per_s"] > 0
    assert 0 <= row["direct_world_share"] < 1


def test_magent_task_writes_straight_into_the_rollout_buffer_with_the_same_result():
    cfg = Config(**TINY)
    runs = []
    for writes in (True, False):
        task = MagentBattleTask(200, seed=0, max_cycles=6)
        ppo = PPO(network(cfg), task, _ppo_config(cfg, task.n_agents))
        assert ppo._task_writes
        ppo._task_writes = writes  # the plain path: the task's own buffer, then a copy
        for _ in range(4):
            ppo.iterate()
        runs.append((ppo, [r["charts/reward_mean"] for r in ppo.history]))
    (a, curve_a), (b, curve_b) = runs
    assert curve_a == curve_b
    for p, q in zip(a.policy.parameters(), b.policy.parameters(), strict=True):
        assert torch.equal(p, q)
    assert a.task._seed >= 1  # a battle restarted: some slots came from the task's reset
