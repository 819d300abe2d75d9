"""``colony bench grid``: thread for thread against MAgent2 (small sizes, no timing
asserts). The MAgent2 side runs only where the anchor venv ``.venv-magent`` exists (CI
has none); the rest of the CLI surface is covered in tests/runs/test_cli.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from colonylab.runs.benchmarks.grid import (
    OBS_BYTES,
    Config,
    main,
    map_size_for,
    parse_threads,
    world_module,
)

ANCHOR_PYTHON = Path(__file__).resolve().parents[3] / ".venv-magent" / "bin" / "python"


def test_grid_rows_per_thread_count_and_bandwidth(tmp_path):
    path = tmp_path / "grid.json"
    cfg = Config(
        agents="300",
        pettingzoo_agents="300",
        threads="1,2",
        seconds=0.02,
        repeats=1,
        json=str(path),
    )
    rows = main(cfg)
    data = json.loads(path.read_text())
    assert [(r["api"], r["agents"] > 0) for r in rows] == [("array", True), ("pettingzoo", True)]
    for r in rows:
        # one measurement per thread count, each in a worker that reports its Numba threads
        assert [b["threads"] for b in r["by_threads"]] == [1, 2]
        assert r["threads"] == 1 and r["agent_steps_per_s"] > 0 and r["ratio"] is None
        for b in r["by_threads"]:
            assert b["agent_steps_per_s"] > 0 and b["write_gb_per_s"] > 0
            assert b["agent_steps_per_cpu_s"] > 0 and b["cpu_ratio"] is None
            assert b["ceiling_share"] == pytest.approx(
                b["agent_steps_per_s"] * OBS_BYTES / (b["write_gb_per_s"] * 1e9)
            )
    assert data["threads"]["ours"] == [1, 2] and data["threads"]["baseline"] == 1
    assert "Numba" in data["threads"]["ours_library"]
    assert "MAgent2" in data["threads"]["baseline_library"]
    # the bandwidth was measured in this run, per thread count
    assert set(data["bandwidth"]) == {"1", "2"}
    assert all(
        v["write_gb_per_s"] > 0 and v["copy_gb_per_s"] > 0 for v in data["bandwidth"].values()
    )
    mod, name = world_module()
    assert data["world"] == name
    if mod is not None:  # MAgent2's battle map: the agent count of MAgent2's layout
        engine = mod.world(map_size=map_size_for(300), seed=0)
        assert rows[0]["agents_placed"] == sum(engine.num(g) for g in range(engine.n_groups))


def test_parse_threads():
    assert parse_threads("1,2,1") == [1, 2]
    assert parse_threads("all")[0] >= 1
    with pytest.raises(ValueError, match="'0' is not a thread count"):
        parse_threads("1,0")
    with pytest.raises(ValueError, match="'x' is not a thread count"):
        Config(threads="x")


@pytest.mark.skipif(not ANCHOR_PYTHON.exists(), reason="no MAgent2 venv (.venv-magent)")
def test_grid_runs_magent2_in_the_same_run(tmp_path):
    path = tmp_path / "grid.json"
    cfg = Config(
        agents="400",
        pettingzoo_agents="",
        threads="1",
        seconds=0.02,
        probe_mb=8,
        repeats=1,
        anchor_python=str(ANCHOR_PYTHON),
        json=str(path),
    )
    (row,) = main(cfg)
    assert row["anchor_agent_steps_per_s"] > 0 and row["ratio"] > 0
    assert row["anchor_agents"] == row["agents_placed"]  # the same battle map on both sides
    assert row["anchor_threads"] == 1
    assert row["anchor_agent_steps_per_cpu_s"] > 0 and row["by_threads"][0]["cpu_ratio"] > 0
    data = json.loads(path.read_text())
    assert data["threads"]["baseline_openmp_loaded"] is False
