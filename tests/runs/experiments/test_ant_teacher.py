"""The Ant teacher (a linear PGPE policy for the vectorized Ant): the shipped checkpoint
walks, and the experiment runs end to end. Moved from tests/envs/test_ant.py (worlds hold
no weights)."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest
import torch

pytest.importorskip("mujoco")

from colonylab.envs.mujoco.ant import AntWorld  # noqa: E402


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
    from colonylab.runs.experiments.ant_teacher import load_teacher

    teacher = load_teacher()
    seeds = [100, 101]
    walked = _forward_distance(teacher, seeds)
    stood = _forward_distance(AntWorld.factory()(2).policy("noop"), seeds)
    assert (walked > stood + 0.5).all(), (walked, stood)


def test_teacher_experiment_runs_end_to_end(tmp_path, monkeypatch):
    """One tiny generation of ``main``: metrics, a loadable checkpoint, nothing shipped."""
    from colonylab.runs.common import rundir
    from colonylab.runs.experiments import ant_teacher

    monkeypatch.setattr(rundir, "DEFAULT_ROOT", tmp_path)
    cfg = ant_teacher.Config(
        generations=1, pop_size=4, train_steps=5, validate_episodes=1, final_episodes=1,
        ship=False,
    )  # fmt: skip
    summary = ant_teacher.main(cfg)
    run = tmp_path / "ant-teacher"
    (ckpt,) = run.glob("*/checkpoints/ant_teacher.pt")
    act = ant_teacher.load_teacher(ckpt)
    assert act(torch.zeros(3, 27)).shape == (3, 8)
    assert np.isfinite(summary["final/teacher_return_mean"])
    assert (next(run.glob("*/metrics.jsonl"))).read_text().count("\n") == 2
    with pytest.raises(ValueError, match="even"):
        ant_teacher.Config(pop_size=5)
