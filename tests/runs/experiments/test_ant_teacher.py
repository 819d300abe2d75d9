"""``ant-teacher`` (a linear PGPE policy for the vectorized Ant): the shipped checkpoint
walks and keeps its headline, the experiment runs end to end (batched and loop
evaluators), bad input is refused."""

from __future__ import annotations

import json
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest
import torch

pytest.importorskip("mujoco")

from colonylab.envs.mujoco.ant import AntWorld  # noqa: E402
from colonylab.runs.common.checkpoint import load_checkpoint  # noqa: E402
from colonylab.runs.experiments import ant_teacher  # noqa: E402


def _forward_distance(act, seeds, steps=150):
    world = AntWorld.factory(max_episode_steps=steps)(len(seeds))
    obs = world.reset(seed=seeds)
    x0 = world.qpos[:, 0].copy()
    for _ in range(steps):
        obs = world.step(act(obs)).obs
    return world.qpos[:, 0] - x0


def test_teacher_checkpoint_loads_and_walks_forward():
    """The shipped teacher walks farther than standing still (the world holds no weights:
    the teacher is loaded by the experiment)."""
    teacher = ant_teacher.load_teacher()
    seeds = [100, 101]
    walked = _forward_distance(teacher, seeds)
    stood = _forward_distance(AntWorld.factory()(2).policy("noop"), seeds)
    assert (walked > stood + 0.5).all(), (walked, stood)


def test_shipped_teacher_keeps_its_headline():
    """Re-evaluates the shipped teacher on 2 of its 8 scoring episodes (headline: 2249.6
    +- 48.9 over 8 episodes of 1000 steps; these two returned 2261.3 and 2251.7)."""
    result = ant_teacher.evaluate(ant_teacher.Config(final_episodes=2))
    assert result["teacher_return_mean"] == pytest.approx(2249.6, abs=100)
    assert result["teacher_distance_mean"] > 60 and result["zero_return_mean"] < 1100
    ckpt = load_checkpoint(ant_teacher.SHIPPED, "ant-teacher")
    assert ckpt["spec"]["type"] == "linear" and ckpt["provenance"]["command"] == (
        "colony train ant-teacher"
    )


@pytest.mark.parametrize("evaluator", ["batched", "loop"])
def test_teacher_experiment_runs_end_to_end(evaluator, tmp_path):
    """Two tiny generations of ``main``: metrics, loadable checkpoints, a resumable state."""
    cfg = ant_teacher.Config(
        generations=2, pop_size=4, train_steps=5, validate_episodes=1, final_episodes=1,
        evaluator=evaluator, out=str(tmp_path),
    )  # fmt: skip
    summary = ant_teacher.main(cfg)
    (run,) = (tmp_path / "ant-teacher").iterdir()
    act = ant_teacher.load_teacher(run / "checkpoints" / "ant_teacher.pt")
    assert act(torch.zeros(3, 27)).shape == (3, 8)
    assert np.isfinite(summary["final/teacher_return_mean"])
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 3 and "charts/validation" in records[1]  # 2 generations + final
    latest = load_checkpoint(run / "checkpoints" / "latest.pt", "ant-teacher")
    assert latest["trainer"]["generation"] == 2 and latest["trainer"]["stopped"] == "generations"
    assert "--evaluator loop" in latest["provenance"]["command"] or evaluator == "batched"


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"pop_size": 5}, "even"),
        ({"evaluator": "mpi"}, "evaluator"),
        ({"ray_address": "auto"}, "ray-address"),
        ({"time_budget_min": 0.0}, "time-budget-min"),
    ],
)
def test_bad_config_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ant_teacher.Config(**kwargs)
