"""Tests for ``colony bench pso`` (colonylab.runs.benchmarks.pso): tiny runs, JSON, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from colonylab.collective_ml.pso import benchmark_bounds, functions
from colonylab.runs.benchmarks import pso as bench_pso
from colonylab.runs.benchmarks.pso import NUMPY_FUNCTIONS, Config, main, parse_size, quality_verdict
from colonylab.runs.cli import main as cli_main

TINY = {"functions": ("sphere", "rastrigin"), "sizes": ("12x3x5",), "seeds": 2, "heldout": False}
HELDOUT = {"heldout": True, "heldout_sizes": ("10x4x5",), "heldout_seeds": 2}
ROW_FIELDS = {
    "function",
    "pop_size",
    "dim",
    "iterations",
    "evaluations",
    "impl",
    "median_best",
    "best_per_seed",
    "median_ms_per_iter",
    "ms_per_iter_per_seed",
    "quality_vs_pyswarms",
    "speed_vs_pyswarms",
}


def check_common(data: dict) -> None:
    assert data["suite"] == "pso" and data["torch"] == torch.__version__
    assert data["machine"]["cores"] >= 1
    assert data["threads"]["ours"] == 1 and data["threads"]["baseline"] in (
        1,
        "1 (NumPy BLAS: its default)",
    )
    assert data["bounds"]["rastrigin"] == [-5.12, 5.12]
    for r in data["rows"]:
        assert set(r) >= ROW_FIELDS
        if r["set"] == "held-out":
            assert (r["pop_size"], r["dim"], r["iterations"]) == (10, 4, 5)
            assert r["seeds"] == [bench_pso.HELDOUT_SEED0, bench_pso.HELDOUT_SEED0 + 1]
            continue
        assert r["form"] == "plain" and r["seeds"] == [0, 1]
        assert (r["pop_size"], r["dim"], r["iterations"], r["evaluations"]) == (12, 3, 5, 60)
        assert len(r["best_per_seed"]) == 2 and len(r["ms_per_iter_per_seed"]) == 2
        assert r["median_best"] >= 0 and r["median_ms_per_iter"] > 0


def test_tiny_run_ours_only_writes_json(tmp_path):
    path = tmp_path / "bench-pso.json"
    payload = main(Config(**TINY, pyswarms=False, json=str(path)))
    data = json.loads(path.read_text())
    assert data == json.loads(json.dumps(payload))
    check_common(data)
    assert data["pyswarms"] is None and data["goal_met"] == {}
    assert {(r["function"], r["impl"]) for r in data["rows"]} == {
        (f, impl) for f in ("sphere", "rastrigin") for impl in ("ours", "ours-gbest")
    }
    assert all(r["quality_vs_pyswarms"] is None for r in data["rows"])
    assert data["settings"]["ours"]["topology"] == "gbest"
    assert data["settings"]["ours"]["w"] == [0.8, 0.6]  # decreasing over each row's budget
    assert data["settings"]["ours"]["velocity_norm_clamp"] == 1.5
    assert "w" not in data["settings"]["ours-gbest"]  # like for like: PySwarms' constant w


def test_constriction_and_constant_w_settings():
    tiny = {**TINY, "pyswarms": False, "like_for_like": False}
    ours = main(Config(**tiny, variant="constriction"))["settings"]["ours"]
    assert ours["variant"] == "constriction" and "w" not in ours  # chi replaces w
    assert main(Config(**tiny, w=0.7, w_end=None))["settings"]["ours"]["w"] == 0.7


def test_missing_pyswarms_runs_ours_only_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench_pso, "pyswarms_version", lambda: None)
    payload = main(Config(**TINY, like_for_like=False, topology="ring"))
    assert "not installed" in capsys.readouterr().out
    assert {r["impl"] for r in payload["rows"]} == {"ours"}
    assert payload["settings"]["ours"]["topology"] == "ring"


def test_tiny_run_against_pyswarms(tmp_path, monkeypatch):
    if bench_pso.pyswarms_version() is None:  # not imported here: it writes a log file
        pytest.skip("PySwarms (the bench extra) is not installed")
    monkeypatch.chdir(tmp_path)  # PySwarms must not leave a report.log behind
    path = tmp_path / "out.json"
    data = main(Config(**TINY, json=str(path)))
    assert json.loads(path.read_text()) == json.loads(json.dumps(data))
    check_common(data)
    assert not (tmp_path / "report.log").exists()
    assert data["pyswarms"] is not None
    rows = {(r["function"], r["impl"]): r for r in data["rows"]}
    assert set(rows) == {
        (f, impl) for f in ("sphere", "rastrigin") for impl in ("pyswarms", "ours", "ours-gbest")
    }
    for r in data["rows"]:
        assert r["quality_vs_pyswarms"] in ("better", "equal", "worse")
        assert r["speed_vs_pyswarms"] > 0
    assert rows[("sphere", "pyswarms")]["quality_vs_pyswarms"] == "equal"
    assert rows[("sphere", "pyswarms")]["speed_vs_pyswarms"] == pytest.approx(1.0)
    assert len(data["goal_met"]) == 4 and all(
        isinstance(v, bool) for v in data["goal_met"].values()
    )


def test_heldout_set_against_pyswarms(tmp_path, monkeypatch):
    if bench_pso.pyswarms_version() is None:
        pytest.skip("PySwarms (the bench extra) is not installed")
    monkeypatch.chdir(tmp_path)
    data = main(Config(**{**TINY, **HELDOUT}, like_for_like=False))
    check_common(data)
    held = [r for r in data["rows"] if r["set"] == "held-out"]
    assert {(r["function"], r["form"], r["impl"]) for r in held} == {
        (f, form, impl)
        for f in ("sphere", "rastrigin")
        for form in ("plain", "shift-rotate")
        for impl in ("pyswarms", "ours")
    }
    for r in held:
        assert r["quality_vs_pyswarms"] in ("better", "equal", "worse")
    goals = data["goal_met"]
    assert set(goals) == {
        f"ours: {what} every {s} row"
        for what in ("quality >= pyswarms on", "faster on")
        for s in ("tuning", "held-out")
    }
    for goal, met in goals.items():  # a missed goal names its rows
        assert met == (data["goal_missed_rows"][goal] == [])
    assert data["transform"]["seed"] == bench_pso.TRANSFORM_SEED


def test_heldout_ours_only_and_problem_set():
    cfg = Config(**{**TINY, **HELDOUT}, pyswarms=False, heldout_forms=("shift-rotate",))
    problems = bench_pso.problem_set(cfg)
    assert [(p[0], p[3]) for p in problems] == [("tuning", "plain")] * 2 + [
        ("held-out", "shift-rotate")
    ] * 2
    data = main(cfg)
    check_common(data)
    assert {r["set"] for r in data["rows"]} == {"tuning", "held-out"}


@pytest.mark.parametrize("name", sorted(functions))
@pytest.mark.parametrize("d", [2, 10])
def test_shift_rotate_variants(name, d):
    shift, q = bench_pso.shift_rotation(name, d)
    np.testing.assert_allclose(q @ q.T, np.eye(d), atol=1e-12)
    assert np.linalg.det(q) == pytest.approx(1.0)
    b = benchmark_bounds[name]
    assert np.all(np.abs(shift) <= bench_pso.SHIFT_FRACTION * b)
    again = bench_pso.shift_rotation(name, d)  # fixed: every run sees the same problem
    assert np.array_equal(again[0], shift) and np.array_equal(again[1], q)
    ours, twin = bench_pso.problem_functions(
        name, d, "shift-rotate", torch.device("cpu"), torch.float64
    )
    x = np.random.default_rng(2).uniform(-b, b, (7, d))
    np.testing.assert_allclose(twin(x), ours(torch.from_numpy(x)).numpy(), rtol=1e-10)
    assert twin(shift[None])[0] == pytest.approx(0.0, abs=1e-9)  # the minimum moved to o
    assert np.all(twin(x) > 0)
    plain = bench_pso.problem_functions(name, d, "plain", torch.device("cpu"), torch.float64)
    assert plain[0] is functions[name]


def test_cli_help_and_run(tmp_path, capsys):
    assert cli_main(["bench", "pso", "--help"]) == 0
    out = capsys.readouterr().out
    flags = ("--json", "--seeds", "--sizes", "--topology", "--velocity-clamp", "--tie")
    for flag in (*flags, "--w", "--w-end", "--velocity-norm-clamp", "--heldout-sizes"):
        assert flag in out
    path = tmp_path / "cli.json"
    argv = ["bench", "pso", "--sizes", "10x2x3", "--seeds", "1", "--functions", "ackley"]
    argv += ["--pyswarms", "False", "--heldout", "False", "--json", str(path)]
    assert cli_main(argv) == 0
    assert json.loads(path.read_text())["rows"][0]["function"] == "ackley"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"functions": ("griewank",)}, "unknown"),
        ({"sizes": ("100x30",)}, "PxDxITERATIONS"),
        ({"sizes": ("100x1x10",)}, "D >= 2"),
        ({"seeds": 0}, "seeds"),
        ({"topology": "star"}, "topology"),
        ({"velocity_clamp": -1.0}, "velocity-clamp"),
        ({"velocity_norm_clamp": 0.0}, "velocity-norm-clamp"),
        ({"w_end": -0.5}, "w-end"),
        ({"dtype": "float16"}, "dtype"),
        ({"heldout_forms": ("mirror",)}, "heldout-forms"),
        ({"heldout_sizes": ("10x1x5",)}, "D >= 2"),
        ({"heldout_seeds": 0}, "heldout-seeds"),
        ({"heldout_sizes": ()}, "heldout"),
        ({"seeds": 101}, "seeds"),
    ],
)
def test_bad_config_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Config(**kwargs)


def test_parse_size_and_verdicts():
    assert parse_size("100x30x1000") == (100, 30, 1000)
    assert quality_verdict(1.0, 2.0, 1e-8) == "better"
    assert quality_verdict(3.0, 2.0, 1e-8) == "worse"
    assert quality_verdict(1e-20, 1e-24, 1e-8) == "equal"  # both solved
    assert quality_verdict(2.0, 2.0, 1e-8) == "equal"


@pytest.mark.parametrize("name", sorted(functions))
def test_numpy_twins_equal_the_torch_functions(name):
    b = benchmark_bounds[name]
    x = np.random.default_rng(1).uniform(-b, b, (9, 6))
    np.testing.assert_allclose(
        NUMPY_FUNCTIONS[name](x), functions[name](torch.from_numpy(x)).numpy(), rtol=1e-12
    )
