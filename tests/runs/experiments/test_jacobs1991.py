"""The ``jacobs1991`` experiment: data loading and checks, speaker split, synthetic data,
statistics, a tiny run and the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from colonylab.runs.experiments.jacobs1991 import Config, main, parse_model

PB52 = Path(__file__).parents[3].parent / "shared/data/pb52.csv"
needs_pb52 = pytest.mark.skipif(
    not PB52.is_file(), reason=f"the Praat export of Peterson & Barney is not at {PB52}"
)
HEADER = ["Type", "Sex", "Speaker", "Vowel", "IPA", "F0", "F1", "F2", "F3"]


def _write(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_model_names_and_config_checks():
    assert parse_model("moe-4-coop") == ("moe", 4, "cooperative")
    assert parse_model("bp-12") == ("bp", 12, "")
    for bad in ("moe-0", "bp-6-coop", "svm-3"):
        with pytest.raises(ValueError, match="unknown model"):
            parse_model(bad)
    with pytest.raises(ValueError, match="criterion"):
        Config(criterion=1.5)
    with pytest.raises(ValueError, match="normalise"):
        Config(normalise="mel")


def test_tiny_run_writes_table_and_plots(tmp_path):
    cfg = Config(
        models=("moe-4", "bp-6", "moe-4-coop"),
        trials=3,
        max_epochs=150,
        criterion=0.7,
        out=str(tmp_path),
        docs_png=str(tmp_path / "docs" / "fig.png"),
    )
    summary = main(cfg)
    (run,) = (tmp_path / "jacobs1991").iterdir()
    for name in (
        "config.json",
        "metrics.jsonl",
        "table.csv",
        "table.md",
        "results.json",
        "media/jacobs1991.png",
        "media/decision_regions.png",
        "media/curves.png",
        "media/responsibilities.png",
    ):
        assert (run / name).is_file() and (run / name).stat().st_size > 0, name
    assert (tmp_path / "docs" / "fig.png").stat().st_size > 0
    with open(run / "table.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == ["moe-4", "bp-6", "moe-4-coop"]
    assert all(int(r["trials"]) == 3 for r in rows)
    results = json.loads((run / "results.json").read_text())
    h = np.array(results["moe-4/responsibilities"])
    assert h.shape == (4, 4)
    np.testing.assert_allclose(h.sum(1), 1, atol=1e-5)
    for r in summary["results"]:
        reached = r.reached
        assert np.all(r.train_accuracy[reached] >= 0.7)
        assert np.all(r.epochs[reached] <= 150)
    assert "MoE-4" in (run / "table.md").read_text()


def test_cli_help(capsys):
    from colonylab.runs.cli import main as cli_main

    assert cli_main(["train", "jacobs1991", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--data", "--trials", "--criterion", "--models"):
        assert option in out
