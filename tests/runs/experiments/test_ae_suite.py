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


def test_quick_suite_tunes_the_baselines_on_other_seeds(run_root):
    cfg = ae_suite.Config(
        quick=True, scenarios=("delay", "plateau"), plots=False, out=str(run_root)
    )
    payload = ae_suite.main(cfg)
    tuning = payload["tuning"]
    assert set(tuning) == {"delay", "plateau"} and set(tuning["plateau"]) == {"sgdm", "adamw"}
    for per_kind in tuning.values():
        for t in per_kind.values():
            assert t["grid"] == list(ae_suite.QUICK_GRID) and t["chosen"] in t["grid"]
            assert len(t["scores"]) == len(t["grid"])
            assert min(t["seeds"]) >= bench_ae.TUNE_SEED0 > payload["resolved"]["seeds"]
    for r in payload["rows"]:  # plain rows run at the chosen lr, AE at its default start
        if r["method"].startswith("ae-"):
            assert r["lr_source"] == "AE start"
        else:
            assert r["lr_source"] == "tuned"
            assert r["lr"] == tuning[r["scenario"]][r["method"]]["chosen"]
    assert payload["threads"] == {"ours": 1, "baseline": 1, "library": "torch"}
    md = (next((run_root / "ae-suite").iterdir()) / "results.md").read_text()
    assert "## Learning-rate tuning" in md and "(AE start)" in md


def test_no_tune_keeps_the_defaults(run_root):
    cfg = ae_suite.Config(
        quick=True, scenarios=("delay",), tune=False, plots=False, out=str(run_root)
    )
    payload = ae_suite.main(cfg)
    assert payload["tuning"] == {}
    plain = [r for r in payload["rows"] if r["method"] == "sgdm"]
    assert all(r["lr"] == bench_ae.DELAY_LR and r["lr_source"] == "default" for r in plain)


def test_tune_lr_picks_the_lowest_mean_and_breaks_ties():
    def score(seed, lr):
        return (abs(lr - 0.1) if lr < 1 else 0.0 + 10 * (seed == 1001), float(lr))

    t = bench_ae.tune_lr("sgdm", "m", score, (0.01, 0.1, 1.0), [1000, 1001], 0.01)
    assert t["chosen"] == 0.1 and t["scores"][1] == 0.0 and t["default"] == 0.01
    tie = bench_ae.tune_lr("sgdm", "m", lambda s, lr: (1.0, -lr), (0.01, 0.1), [1000], 0.01)
    assert tie["chosen"] == 0.1  # equal primary: the tie-break decides
    bad = bench_ae.tune_lr("sgdm", "m", lambda s, lr: (math.nan, 0.0), (0.01,), [1000], 0.01)
    assert bad["scores"] == [math.inf]


def test_bench_ae_tiny(tmp_path):
    path = tmp_path / "bench.json"
    payload = bench_ae.main(
        bench_ae.Config(
            seeds=1,
            steps=150,
            target=0.2,
            lr_grid=(1e-3, 1e-2),
            tune_seeds=1,
            overhead_steps=20,
            repeats=1,
            json=str(path),
        )
    )
    data = json.loads(path.read_text())
    assert set(data["ratio_steps"]) == {"adamw", "sgdm"} and data["ratio_steps"]["adamw"] > 0
    assert set(data["overhead_us"]) == {"adamw", "sgdm"}
    assert data["threads"]["ours"] == data["threads"]["baseline"] == 1
    for kind in ("adamw", "sgdm"):
        t = data["tuning"][kind]
        assert t["grid"] == [1e-3, 1e-2] and t["seeds"] == [bench_ae.TUNE_SEED0]
        row = next(r for r in data["seeds"] if r["optimizer"] == kind)
        assert row["lr"] == t["chosen"] and row["ae_start_lr"] == bench_ae.DEFAULT_LR[kind]
    assert payload["seeds"][0]["ae_steps"] >= 1


def test_bench_ae_no_tune_and_refusals():
    cfg = bench_ae.Config(
        seeds=1, steps=20, optimizers=("sgdm",), tune=False, overhead_steps=5, repeats=1
    )
    payload = bench_ae.main(cfg)
    assert payload["tuning"] == {} and payload["seeds"][0]["lr"] == 0.01
    for kwargs, match in (
        ({"lr_grid": ()}, "lr-grid"),
        ({"lr_grid": (0.0,)}, "lr-grid"),
        ({"optimizers": ("adam",)}, "optimizers"),
        ({"seeds": 2000}, "seeds"),
    ):
        with pytest.raises(ValueError, match=match):
            bench_ae.Config(**kwargs)


def test_tuning_runs_stop_at_a_non_finite_loss():
    full = bench_ae.run_regression(0, "sgdm", 200, lr=100.0)
    short = bench_ae.run_regression(0, "sgdm", 200, lr=100.0, stop_nonfinite=True)
    assert len(full.losses) == 200 and not math.isfinite(full.losses[-1])
    assert len(short.losses) < 200 and not math.isfinite(short.losses[-1])
    assert short.losses[:-1] == full.losses[: len(short.losses) - 1]
    assert math.isinf(bench_ae.final_loss(short))
