"""colony train / eval federated: rows, resume, plots, one-line errors, the data splits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from colonylab.runs.common import load_checkpoint
from colonylab.runs.data.federated_splits import (
    digits_clients,
    dirichlet_split,
    drift_clients,
    vowel_clients,
)
from colonylab.runs.experiments import federated as fed


def test_dirichlet_split_deals_every_row_once_and_alpha_sets_the_skew():
    labels = np.repeat(np.arange(10), 50)
    for alpha in (0.05, 100.0):
        parts = dirichlet_split(labels, 10, alpha, seed=0)
        assert sorted(np.concatenate(parts).tolist()) == list(range(500))

    def classes(a):
        return np.mean([len(set(labels[p])) for p in dirichlet_split(labels, 10, a, 0) if len(p)])

    assert classes(0.05) < 3 < 9 < classes(100.0)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        dirichlet_split(labels, 10, 0.0, 0)


def test_digits_clients_keep_the_global_test_apart_and_may_be_empty():
    clients, (x_test, y_test), classes = digits_clients(10, 0.5, seed=1, empty_clients=2)
    assert classes == 10 and x_test.shape[1] == 64 and len(clients) == 10
    assert [c.n_train for c in clients[-2:]] == [0, 0]
    total = sum(c.n_train + len(c.y_test) for c in clients) + len(y_test)
    assert total == 1797


def test_vowel_clients_are_the_76_speakers_with_all_ten_vowels():
    clients, (x, y), classes = vowel_clients()
    assert classes == 10 and len(clients) == 76 and x.shape == (760, 4)
    groups = [c.group for c in clients]
    assert (groups.count("men"), groups.count("women"), groups.count("children")) == (33, 28, 15)
    assert all(sorted(c.y_train.tolist()) == list(range(10)) for c in clients)


def test_drift_clients_drift_at_their_own_speed():
    clients, _, classes = drift_clients(4, seed=0)
    speeds = [c.info["speed"] for c in clients]
    assert classes == 4 and speeds == sorted(speeds) and speeds[0] == 0.0


def test_train_writes_rows_plots_and_a_checkpoint_that_eval_reproduces(run_root):
    cfg = fed.Config(
        clients=4,
        rounds=1,
        strategy=("fedmoe", "local"),
        experts=2,
        hidden=8,
        out=str(run_root),
    )
    results = fed.main(cfg)
    rows = [r for r in results["rows"] if r["seed"] == 0]
    assert [r["strategy"] for r in rows] == ["fedmoe", "local"]
    assert set(fed.ROW_KEYS) <= set(rows[0])
    assert rows[1]["bytes_per_round"] == 0 < rows[0]["bytes_per_round"]
    run_dir = next((run_root / "federated").iterdir())
    assert (run_dir / "media" / "federated-rounds.png").is_file()
    assert (run_dir / "media" / "federated-routing.png").is_file()
    assert json.loads((run_dir / "results.json").read_text())["rows"][0]["strategy"] == "fedmoe"
    again = fed.evaluate(cfg, str(run_dir / "checkpoints" / "final.pt"))
    for a, b in zip(rows, again["rows"], strict=True):
        assert a["personal_acc_mean"] == pytest.approx(b["personal_acc_mean"])
        assert a["global_acc"] == pytest.approx(b["global_acc"])


def test_resume_skips_finished_runs(run_root):
    cfg = fed.Config(
        clients=4,
        rounds=1,
        strategy=("fedavg", "local"),
        experts=2,
        hidden=8,
        plots=False,
        out=str(run_root),
    )
    fed.main(cfg)
    run_dir = next((run_root / "federated").iterdir())
    again = fed.main(cfg, resume=str(run_dir))
    assert [r["strategy"] for r in again["rows"] if r["seed"] == 0] == ["fedavg", "local"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"strategy": ("fedsgd",)}, "strategy must be one of"),
        ({"data": "mnist"}, "data must be one of"),
        ({"engine": "flower", "strategy": ("gossip",)}, "--engine flower runs"),
        ({"dropout": 1.0}, "dropout must be"),
        ({"bad_clients": 15, "empty_clients": 10}, "bad_clients \\+ empty_clients"),
        ({"private_experts": 4}, "private_experts must be in"),
    ],
)
def test_config_errors_are_one_line(kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        fed.Config(**kwargs)
    assert "\n" not in str(info.value)


def test_eval_without_a_checkpoint_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no federated checkpoint"):
        fed.evaluate(fed.Config(), str(tmp_path / "none.pt"))


def test_shipped_checkpoint_gives_its_headline_numbers():
    """runs/checkpoints/federated.pt (digits, 20 clients, alpha 0.1, 40 rounds, seed 0)."""
    out = fed.evaluate(fed.Config(), None)
    rows = {r["strategy"]: r for r in out["rows"]}
    trained = load_checkpoint(fed.SHIPPED, "federated")["extra"]["rows"]
    assert set(rows) == {"fedavg", "fedmoe"}
    for r in trained:
        if r["seed"] == 0 and r["strategy"] in rows:  # eval re-scores what training measured
            assert rows[r["strategy"]]["personal_acc_mean"] == pytest.approx(r["personal_acc_mean"])
    assert rows["fedavg"]["global_acc"] == pytest.approx(0.953, abs=0.001)
    assert rows["fedmoe"]["personal_acc_mean"] == pytest.approx(0.942, abs=0.001)
    assert "colony train federated" in out["command"]
