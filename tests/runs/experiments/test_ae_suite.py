"""``colony train ae-suite`` and ``colony bench ae``: quick runs, tables, help."""

from __future__ import annotations

import json
import math

import pytest

from colonylab.runs.benchmarks import ae as bench_ae
from colonylab.runs.cli import main as colony
from colonylab.runs.experiments import ae_suite


def test_quick_suite_writes_its_tables(run_root, tmp_path):
    cfg = ae_suite.Config(
        quick=True,
        scenarios=("regression", "bad-lr"),
        picture=str(tmp_path / "p.png"),
        out=str(run_root),
    )
    payload = ae_suite.main(cfg)
    run_dir = next((run_root / "ae-suite").iterdir())
    md = (run_dir / "results.md").read_text()
    assert "| regression | steps to target | ae-adamw |" in md
    data = json.loads((run_dir / "results.json").read_text())
    assert data["resolved"]["seeds"] == 2 and data["rows"]
    assert {r["scenario"] for r in payload["rows"]} == {"regression", "bad-lr"}
    assert all(v["verdict"] in ("better", "worse", "tie") for v in payload["verdicts"])
    assert (tmp_path / "p.png").stat().st_size > 10_000
    bad = [
        r for r in payload["rows"] if r["metric"].startswith("non-finite") and r["method"] == "sgdm"
    ]
    assert all(r["mean"] > 0 for r in bad)  # the plain optimizer does blow up


def test_ci95():
    mean, half = ae_suite.ci95([1.0, 2.0, 3.0, math.nan])
    assert mean == 2.0 and half == pytest.approx(4.303 / math.sqrt(3))
    assert math.isnan(ae_suite.ci95([])[0])


def test_config_refuses_unknown_scenarios():
    with pytest.raises(ValueError, match="scenarios"):
        ae_suite.Config(scenarios=("nope",))


def test_help(capsys):
    try:
        code = colony(["train", "ae-suite", "--help"])
    except SystemExit as exc:
        code = exc.code
    assert code in (0, None)
    out = capsys.readouterr().out
    assert "--quick" in out and "--seeds" in out


def test_bench_ae_tiny(tmp_path):
    path = tmp_path / "bench.json"
    payload = bench_ae.main(
        bench_ae.Config(
            seeds=1, steps=150, target=0.2, overhead_steps=20, repeats=1, json=str(path)
        )
    )
    data = json.loads(path.read_text())
    assert data["ratio_steps"] > 0 and set(data["overhead_us"]) == {"adamw", "sgdm"}
    assert payload["seeds"][0]["ae_steps"] >= 1
