"""``talking-ensemble``: a tiny run writes its rows, summary and plot; seeds reproduce;
bad input is one line."""

from __future__ import annotations

import json

import pytest

from colonylab.runs.experiments import talking_ensemble
from colonylab.runs.experiments.talking_ensemble import COMBINERS, Config

TINY = dict(members=3, hidden=8, subspace=24, epochs=2, folds=2, steps=1, talk_hidden=8,
            talk_epochs=2, seeds=2)  # fmt: skip


def test_tiny_run_compares_every_combiner(tmp_path):
    result = talking_ensemble.main(Config(**TINY, out=str(tmp_path)))
    (run,) = (tmp_path / "talking-ensemble").iterdir()
    assert (run / "media/talking.png").is_file() and (run / "metrics.jsonl").is_file()
    saved = json.loads((run / "results.json").read_text())
    assert [s["combiner"] for s in saved["summary"]] == list(COMBINERS)
    assert len(saved["rows"]) == len(COMBINERS) * 2
    assert all(0 <= r["accuracy"] <= 1 and r["nll"] >= 0 for r in result["rows"])
    assert 0 < result["talking_agreement"] <= 1


def test_seeded_runs_reproduce(tmp_path):
    cfg = dict(TINY, seeds=1, plots=False)
    a = talking_ensemble.main(Config(**cfg, out=str(tmp_path / "a")))
    b = talking_ensemble.main(Config(**cfg, out=str(tmp_path / "b")))
    assert a["rows"] == b["rows"]


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"members": 1}, "--members"),
        ({"subspace": 65}, "--subspace"),
        ({"test_share": 1.0}, "--test-share"),
        ({"folds": 1}, "--folds"),
    ],
)
def test_bad_config_is_one_line_value_error(kw, match):
    with pytest.raises(ValueError, match=match):
        Config(**kw)
