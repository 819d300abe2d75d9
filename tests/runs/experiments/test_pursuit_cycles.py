"""The ``pursuit-cycles`` experiment: a tiny run writes its outputs; the preset cycles."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from colonylab.envs.grid.pursuit import PursuitConfig
from colonylab.runs.experiments.pursuit_cycles import Config, main, measure, run_world


def test_tiny_run_writes_its_outputs(tmp_path):
    cfg = Config(steps=300, burn_in=100, seed=1, out=str(tmp_path))
    result = main(cfg)
    (run,) = (tmp_path / "pursuit-cycles").iterdir()
    for name in ("config.json", "metrics.jsonl", "populations.npz", "media/populations.png"):
        assert (run / name).is_file() and (run / name).stat().st_size > 0, name
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "emergence/prey" in r]
    assert [r["step"] for r in steps] == list(range(1, result.steps + 1))
    assert "emergence/phase_lag" in records[-1]
    saved = np.load(run / "populations.npz")
    np.testing.assert_array_equal(saved["counts"], result.counts)
    assert result.counts.shape == (result.steps + 1, 2) and result.counts[0].tolist() == [100, 400]
    assert [steps[-1]["emergence/predators"], steps[-1]["emergence/prey"]] == result.counts[
        -1
    ].tolist()
    assert json.loads((run / "config.json").read_text())["world"]["prey_birth"] == 0.04


def test_the_preset_cycles_with_predators_behind_prey():
    cfg = Config(steps=2500, burn_in=500, seed=3, plots=False)
    out = run_world(cfg)
    assert out["extinct"] is None and out["steps"] == 2500
    period_pred, period_prey, phase = measure(out["counts"], cfg.burn_in)
    assert 150 < period_pred < 400 and 150 < period_prey < 400
    assert abs(period_pred - period_prey) < 0.2 * period_prey
    assert 0 < phase.lag < period_prey / 2 and phase.correlation > 0.5


def test_a_world_without_dynamics_cannot_cycle():
    with pytest.raises(ValueError, match="no population dynamics"):
        Config(world=PursuitConfig())
    with pytest.raises(ValueError, match="burn_in"):
        Config(steps=100, burn_in=100)
    cfg = Config(steps=50, burn_in=10, policy="greedy-vs-flee")
    # extinction ends a run early: no prey births, so greedy hunters empty the map
    world = dataclasses.replace(
        cfg.world, map_size=12, predators=20, prey=10, prey_birth=0.0, min_attackers=1
    )
    out = run_world(dataclasses.replace(cfg, world=world, steps=300))
    assert out["extinct"] in ("prey", "predators") and out["steps"] < 300
