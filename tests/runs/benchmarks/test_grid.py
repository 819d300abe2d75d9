"""``colony bench grid``: the JSON states the threads each side uses (the rest of the
bench is covered in tests/runs/test_cli.py)."""

from __future__ import annotations

import json

from colonylab.runs.benchmarks.grid import Config, main


def test_grid_states_threads(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_NUM_THREADS", "1")  # the worker subprocess inherits it
    path = tmp_path / "grid.json"
    rows = main(Config(agents="200", pettingzoo_agents="", seconds=0.02, repeats=1, json=str(path)))
    data = json.loads(path.read_text())
    assert data["threads"]["ours"] == 1 and data["threads"]["baseline"] == 1
    assert "Numba" in data["threads"]["ours_library"]
    assert "MAgent2" in data["threads"]["baseline_library"]
    assert rows[0]["threads"] == 1
