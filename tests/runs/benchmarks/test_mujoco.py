"""``colony bench mujoco``: a tiny run writes the JSON with its rows and ratios; bad
options are refused."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("mujoco")

from colonylab.runs.benchmarks.mujoco import Config  # noqa: E402
from colonylab.runs.cli import main as cli_main  # noqa: E402

ROW_FIELDS = {
    "impl",
    "robots",
    "env_steps",
    "seconds",
    "env_steps_per_s",
    "ratio_vs_gymnasium",
    "share_of_ceiling",
}


def test_tiny_bench_writes_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    argv = ["bench", "mujoco", "--robots", "6", "--steps", "3", "--gym-steps", "10"]
    assert cli_main([*argv, "--repeats", "1", "--threads", "2", "--json", str(path)]) == 0
    assert "share of ceiling" in capsys.readouterr().out
    data = json.loads(path.read_text())
    assert data["suite"] == "mujoco" and data["goal"] == 0.75
    assert data["threads"]["ours"] == data["threads"]["ceiling"] == 2
    rows = {r["impl"]: r for r in data["rows"]}
    assert set(rows) == {"ours", "ours (rollout threading)", "ceiling", "gymnasium"}
    for row in rows.values():
        assert set(row) >= ROW_FIELDS and row["env_steps"] > 0 and row["seconds"] > 0
    assert rows["ours"]["env_steps"] == rows["ceiling"]["env_steps"] == 18
    assert rows["ours (rollout threading)"]["env_steps"] == 18
    assert rows["ceiling"]["share_of_ceiling"] == 1.0
    assert rows["gymnasium"]["ratio_vs_gymnasium"] == 1.0
    assert isinstance(data["goal_met"], bool)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="robots"):
        Config(robots=0)
    with pytest.raises(ValueError, match="unknown body"):
        Config(bodies=("walker_8_main",))
    with pytest.raises(ValueError, match="--step-threads"):
        Config(step_threads="processes")
