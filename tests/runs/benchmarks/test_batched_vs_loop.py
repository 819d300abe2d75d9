"""The pieces ``bench population`` and ``bench sensory`` share (runs/benchmarks/_batched_vs_loop.py)."""

from __future__ import annotations

import pytest
import torch

from colonylab.agents.mlp import MLPPolicy
from colonylab.collective_ml.base import flatten_params
from colonylab.runs.benchmarks._batched_vs_loop import (
    check_populations,
    comparison_table,
    goals_met,
    random_population,
    trained_population,
)
from colonylab.runs.common.checkpoint import make_checkpoint, save_checkpoint


def _mlp():
    return MLPPolicy((4,), 2, hidden=(3,), output="linear")


def test_populations_are_checked():
    check_populations(("random",))
    with pytest.raises(ValueError, match="needs at least one"):
        check_populations(())
    with pytest.raises(ValueError, match="unknown"):
        check_populations(("trained", "nope"))


def test_random_population_is_one_seed_per_policy():
    policy, params = random_population(_mlp, 3, seed=2)
    torch.manual_seed(2 * 1_000_003 + 1)
    assert torch.equal(params[1], flatten_params(_mlp()))
    assert params.shape == (3, flatten_params(policy).numel())


def test_trained_population_is_the_checkpoint_plus_seeded_noise(tmp_path):
    spec = {"type": "mlp", "input_shape": [4], "act_dim": 2, "hidden": [3], "output": "linear"}
    source = _mlp()
    path = tmp_path / "c.pt"
    save_checkpoint(path, make_checkpoint("toy", spec=spec, state_dict=source.state_dict()))
    _, a = trained_population(path, "toy", 5, 0.0, seed=0)
    _, b = trained_population(path, "toy", 5, 0.1, seed=0)
    _, c = trained_population(path, "toy", 5, 0.1, seed=0)
    assert torch.equal(a[0], flatten_params(source)) and torch.equal(b, c) and not torch.equal(a, b)

    def refuse(policy):
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        trained_population(path, "toy", 5, 0.1, 0, check=refuse)


def test_goals_and_table():
    cases = [
        {"population": "random", "impl": impl, "mean_return": 1.0, "env_steps": 10,
         "seconds": s, "episodes_per_s": 1.0, "env_steps_per_s": 1.0, "ratio_vs_loop": r}
        for impl, s, r in (("batched", 0.1, 25.0), ("loop", 2.5, 1.0))
    ]  # fmt: skip
    assert goals_met(cases, 20.0) == {"random": True}
    table = comparison_table("t", cases, return_format=".1f", rate_format=",.0f")
    assert table.row_count == 2 and len(table.columns) == 8
