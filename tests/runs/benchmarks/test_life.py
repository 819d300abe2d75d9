"""``colony bench life``: the JSON states the threads each side uses (the rest of the
bench is covered in tests/runs/test_cli.py)."""

from __future__ import annotations

import json

import numba

from colonylab.runs.benchmarks.life import Config, main


def test_life_states_threads(tmp_path):
    path = tmp_path / "life.json"
    main(Config(sizes=(128,), min_time=0.01, repeats=1, json=str(path)))
    data = json.loads(path.read_text())
    assert data["threads"] == {
        "ours": numba.get_num_threads(),
        "baseline": 1,
        "ours_library": "Numba",
        "baseline_library": "NumPy",
    }
    assert data["results"][0]["ratio"] > 0
