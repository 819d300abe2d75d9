"""``colony bench population``: a tiny run writes the JSON with its fields; bad options."""

from __future__ import annotations

import json

import pytest

from colonylab.runs.benchmarks.population import Config, main
from colonylab.runs.cli import main as cli_main

CASE_FIELDS = {
    "population",
    "impl",
    "seconds",
    "episodes",
    "env_steps",
    "episodes_per_s",
    "env_steps_per_s",
    "ratio_vs_loop",
    "mean_return",
}


def test_tiny_bench_writes_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    argv = ["bench", "population", "--pop", "6", "--episodes", "2", "--json", str(path)]
    assert cli_main(argv) == 0
    assert "goal >= 20x" in capsys.readouterr().out
    data = json.loads(path.read_text())
    assert (
        data["suite"] == "population"
        and data["goal"] == 20
        and data["threads"]["ours"] == data["threads"]["baseline"] == 1
    )
    assert {(c["population"], c["impl"]) for c in data["cases"]} == {
        (p, i) for p in ("trained", "random") for i in ("batched", "loop")
    }
    for case in data["cases"]:
        assert set(case) >= CASE_FIELDS and case["episodes"] == 12 and case["env_steps"] > 0
    for kind in ("trained", "random"):
        rows = [c for c in data["cases"] if c["population"] == kind]
        assert rows[0]["env_steps"] == rows[1]["env_steps"]  # equal work
        assert data["agreement"][kind] == 0.0 and isinstance(data["goal_met"][kind], bool)
    loop = next(c for c in data["cases"] if c["impl"] == "loop")
    assert loop["ratio_vs_loop"] == 1.0


def test_one_population_only():
    data = main(Config(pop=3, populations=("random",)))
    assert {c["population"] for c in data["cases"]} == {"random"}


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"pop": 0}, "--pop"),
        ({"populations": ("nope",)}, "populations"),
        ({"noise": -1.0}, "noise"),
        ({"device": "tpu"}, "device"),
        ({"checkpoint": "/nonexistent.pt"}, "does not exist"),
    ],
)
def test_bad_options_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Config(**kwargs)
