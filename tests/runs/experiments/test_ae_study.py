"""``colony train ae-study``: the protocol's pieces and a quick run on the vowels."""

from __future__ import annotations

import json
import math

import pytest

from colonylab.runs.experiments import ae_study as st


def test_quick_study_on_the_vowels_writes_table_and_verdicts(run_root):
    cfg = st.Config(quick=True, tasks=("vowels",), plots=False, out=str(run_root))
    payload = st.main(cfg)
    run_dir = next((run_root / "ae-study").iterdir())
    md = (run_dir / "table.md").read_text()
    assert "### vowels: target loss EMA" in md and "| ae-sgdm |" in md
    assert "## Predictions" in md and "## Knock-outs" in md
    data = json.loads((run_dir / "verdicts.json").read_text())
    assert data["resolved"]["seeds"] == 2 and data["skipped"] == []
    kinds = {p["prediction"] for p in payload["predictions"]}
    assert {"1 coupling", "2 gauge", "3 drift", "4 noise"} <= kinds
    assert all(p["verdict"].startswith(("yes", "no")) for p in payload["predictions"])
    goals = {g["goal"] for g in payload["goals"]}
    assert any("5%" in g for g in goals) and any("drift" in g for g in goals)
    assert (run_dir / "results.json").stat().st_size > 1000


@pytest.mark.parametrize("task", ["nca-grow", "nca-digits", "moe-digits", "vowels"])
def test_runs_are_deterministic_and_ae_records_its_coefficients(task):
    m = st.ae_method("sgdm")
    a = st.train(task, 3, m, 3)
    b = st.train(task, 3, m, 3)
    assert a.losses == b.losses and all(math.isfinite(v) for v in a.losses)
    assert len(a.alpha) == len(a.beta) == len(a.sigma) == 3
    assert 0 < a.beta[0] < 1 and math.isfinite(a.metric)
    plain = st.train(task, 3, st.Method("adam", "cosine", 1e-3), 3)
    assert plain.losses[0] == a.losses[0]  # same weights and first batch for every method
    assert plain.lrs[0] == pytest.approx(1e-3) and plain.lrs[2] < 1e-3


def test_drift_and_plateau_variants():
    drift = st.build("moe-digits:drift", 0, 40)
    assert drift.drift_at == 20
    r = st.train("vowels:drift", 0, st.Method("sgdm", "const", 0.1), 30)
    assert r.drift_at == 15 and len(r.ema) == 30
    assert r.ttt(-1.0) is None and r.ttt(math.inf) == 0
    p = st.build("vowels:plateau", 0, 10)
    assert all(float(q.detach().abs().max()) < 0.05 for q in p.model.parameters())


def test_statistics_and_verdicts():
    d = st.paired([3.0, 4.0, 5.0], [1.0, 1.0, 1.0])
    assert d["mean"] == pytest.approx(3.0) and d["lo"] < 3.0 < d["hi"]
    assert st._verdict({"mean": -1, "lo": -2, "hi": -0.5}, "below") == "yes"
    assert st._verdict({"mean": 1, "lo": 0.5, "hi": 2}, "below") == "no (opposite)"
    assert st._verdict({"mean": 0, "lo": -1, "hi": 1}, "above") == "no (interval spans 0)"
    b = st.bootstrap_mean([-0.9, -0.8, -0.85, math.nan], seed=1)
    assert b["n"] == 3 and b["lo"] <= b["mean"] <= b["hi"] < 0
    run = st.Run([1.0] * 5, [1.0] * 5, 0.5, 0, False, 0.0)
    run.alpha = [1.0, 0.5, 0.25, 0.125, 0.0625]
    run.beta = [0.5, 0.75, 0.875, 0.9375, 0.96875]  # 1/(1-beta) doubles as alpha halves
    assert st.coupling_corr(run, burn=0.0) == pytest.approx(-1.0)


def test_cost_is_measured_for_both_optimizers():
    out = st.cost(st.Config(cost_steps=3), "vowels")
    for opt in ("adam", "sgdm"):
        assert out[opt]["plain_step_ms"] > 0 and math.isfinite(out[opt]["overhead_pct"])
        assert math.isfinite(out[opt]["median_overhead_pct"])
        assert out[opt]["controller_alloc_mb"] >= 0


def test_cost_only_writes_its_table(run_root):
    cfg = st.Config(
        cost_only=True, cost_steps=3, cost_repeats=2, tasks=("moe-digits",), out=str(run_root)
    )
    payload = st.main(cfg)
    run_dir = next((run_root / "ae-study").iterdir())
    assert "| moe-digits #2 | sgdm |" in (run_dir / "cost.md").read_text()
    assert [g["ae"] for g in payload["goals"]] == ["ae-adam", "ae-sgdm"]
    assert len(payload["goals"][0]["overhead_pct_repeats"]) == 2


@pytest.mark.parametrize(
    ("kw", "flag"),
    [
        ({"tasks": ("pong",)}, "--tasks"),
        ({"seeds": 1}, "--seeds"),
        ({"steps": (100, 100)}, "--steps"),
        ({"adam_grid": ()}, "--adam-grid"),
        ({"momenta": (1.5,)}, "--momenta"),
        ({"time_limit_min": -1}, "--time-limit-min"),
        ({"cost_repeats": 0}, "--cost-repeats"),
    ],
)
def test_bad_options_name_the_flag(kw, flag):
    with pytest.raises(ValueError, match=flag):
        st.Config(**kw)
