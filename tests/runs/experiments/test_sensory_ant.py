"""sensory-ant: a tiny cloning run writes both students, the evaluation has its rows,
the teacher and the shipped students load, watch steps."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

pytest.importorskip("mujoco")

from colonylab.runs.common.sensory import load_agent  # noqa: E402
from colonylab.runs.experiments import sensory_ant as exp  # noqa: E402

TINY = exp.Config(
    train_steps=20,
    max_steps=20,
    bc_iterations=2,
    bc_envs=2,
    bc_epochs=1,
    validate_episodes=1,
    eval_episodes=2,
    num_queries=4,
    head_hidden=8,
    mlp_hidden=(8,),
    watch_envs=1,
)


def test_tiny_run_and_evaluation(tmp_path):
    summary = exp.main(dataclasses.replace(TINY, out=str(tmp_path)))
    (run,) = (tmp_path / "sensory-ant").iterdir()
    for kind in ("attention", "mlp"):
        _, payload = load_agent(run / "checkpoints" / exp.checkpoint_name(kind), exp.EXPERIMENT)
        assert "teacher" in payload["meta"]["trained_by"]
    rows = json.loads((run / "eval.json").read_text())["rows"]
    assert rows == summary["rows"]
    agents = {r["agent"] for r in rows}
    assert agents == {"AttentionNeuron", "MLP", "teacher (linear, PGPE)"}
    for r in rows:
        assert {"condition", "agent", "mean", "std", "episodes"} <= set(r)
    by = {(r["condition"], r["agent"]): r for r in rows}
    np.testing.assert_allclose(
        by[("unshuffled", "AttentionNeuron")]["returns"],
        by[("shuffled at reset", "AttentionNeuron")]["returns"],
        atol=1e-3,
    )
    assert by[(exp.conditions(TINY)[-1].name, "MLP")]["mean"] is None

    world = exp.watch(TINY, str(run / "checkpoints"))
    world.step()
    assert world.handle_key("x")
    world.step()


def test_shipped_students_load():
    agents = exp.load_agents(None)
    assert set(agents) == {"AttentionNeuron", "MLP"}


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="bc-envs"):
        dataclasses.replace(TINY, bc_envs=0)
    with pytest.raises(ValueError, match="train-shuffle-every"):
        dataclasses.replace(TINY, train_shuffle_every=0)
