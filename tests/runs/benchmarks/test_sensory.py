"""``colony bench sensory``: a tiny run agrees and writes the JSON with its fields; the
adapter plays the batched world's episodes; bad options."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from colonylab.agents.sensory import AttentionNeuronPolicy
from colonylab.collective_ml.population import episode_seeds
from colonylab.envs.classic.swingup import SwingUpConfig, SwingUpWorld
from colonylab.runs.benchmarks.sensory import Config, main, scalar_env
from colonylab.runs.cli import main as cli_main
from colonylab.runs.common.checkpoint import make_checkpoint, save_checkpoint

CASE_FIELDS = {
    "population",
    "impl",
    "seconds",
    "seconds_scaled",
    "individuals",
    "episodes",
    "env_steps",
    "episodes_per_s",
    "env_steps_per_s",
    "ratio_vs_loop",
    "ratio_steps_vs_loop",
    "mean_return",
}


def test_tiny_bench_writes_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    argv = ["bench", "sensory", "--pop", "4", "--max-steps", "50", "--loop-pop", "2"]
    assert cli_main([*argv, "--populations", "random", "--json", str(path)]) == 0
    assert "goal >= 20x" in capsys.readouterr().out
    data = json.loads(path.read_text())
    assert data["suite"] == "sensory" and data["goal"] == 20
    assert data["threads"]["ours"] == data["threads"]["baseline"] == 1
    assert "CartPoleSwingUpEnv" in data["baseline_env"]
    assert data["config"]["loop_pop"] == 2 and data["rtol"] == 1e-3
    assert {(c["population"], c["impl"]) for c in data["cases"]} == {
        ("random", "batched"),
        ("random", "loop"),
    }
    for case in data["cases"]:
        assert set(case) >= CASE_FIELDS and case["env_steps"] > 0
    batched, loop = data["cases"]
    assert (batched["individuals"], batched["episodes"]) == (4, 4)
    assert (loop["individuals"], loop["episodes"]) == (2, 2)
    assert loop["ratio_vs_loop"] == 1.0
    assert loop["seconds_scaled"] == pytest.approx(2 * loop["seconds"])
    agreement = data["agreement"]["random"]
    assert agreement["individuals"] == 2 and agreement["max_rel_diff"] <= 1e-3
    assert agreement["env_steps"] == loop["env_steps"]
    assert isinstance(data["goal_met"]["random"], bool)


def test_trained_population_from_a_checkpoint(tmp_path):
    policy = AttentionNeuronPolicy(act_dim=1)
    path = tmp_path / "attention.pt"
    ckpt = make_checkpoint(
        "sensory-cartpole",
        spec={"type": "attention", "act_dim": 1},
        state_dict=policy.state_dict(),
        extra={"agent": "attention"},
    )
    save_checkpoint(path, ckpt)
    cfg = Config(pop=3, episodes=2, max_steps=30, loop_pop=5, checkpoint=str(path))
    data = main(cfg)
    assert [c["population"] for c in data["cases"]] == ["trained"] * 2 + ["random"] * 2
    assert data["skipped"] == {}
    for kind in ("trained", "random"):
        batched, loop = (c for c in data["cases"] if c["population"] == kind)
        # loop_pop >= pop: the loop plays every episode, the same work
        assert batched["env_steps"] == loop["env_steps"] and loop["episodes"] == 6
        assert data["agreement"][kind]["max_rel_diff"] <= 1e-3


def test_missing_default_checkpoint_skips_trained(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr("colonylab.runs.benchmarks.sensory.CHECKPOINT", tmp_path / "none.pt")
    data = main(Config(pop=2, max_steps=10, loop_pop=1))
    assert {c["population"] for c in data["cases"]} == {"random"}
    assert "trained" in data["skipped"] and "goal_met" in data
    assert "trained population skipped" in capsys.readouterr().out


def test_scalar_env_plays_the_batched_worlds_episodes():
    """The loop's scalar env and the batched world follow the same trajectories (same
    seeds, same actions) for a whole episode: the comparison is of like with like."""
    seeds = episode_seeds(0, 3, 1).reshape(3)
    world = SwingUpWorld(
        SwingUpConfig(num_envs=3, autoreset=False, validate_actions=False, max_episode_steps=300)
    )
    obs = world.reset(seed=seeds)
    envs = [scalar_env(300) for _ in seeds]
    for env, s, row in zip(envs, seeds, obs, strict=True):
        first, info = env.reset(seed=int(s))
        assert info == {} and first.dtype == np.float32
        np.testing.assert_allclose(first, row.numpy(), rtol=1e-6, atol=1e-7)
    rng = np.random.default_rng(1)
    ended = [False] * 3
    for _ in range(300):
        actions = rng.uniform(-1, 1, 3).astype(np.float32)
        obs, reward, terminated, truncated, _ = world.step(torch.from_numpy(actions))
        for n, env in enumerate(envs):
            if ended[n]:
                continue
            o, r, te, tr, _ = env.step(np.float32(actions[n]))
            np.testing.assert_allclose(env.state, world.state[n].numpy(), rtol=0, atol=1e-9)
            assert r == pytest.approx(float(reward[n]), abs=1e-6)
            assert (te, tr) == (bool(terminated[n]), bool(truncated[n]))
            ended[n] = te or tr
    assert all(ended)  # truncated at 300 or off the track, on both sides alike


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"pop": 0}, "--pop"),
        ({"episodes": 0}, "--episodes"),
        ({"max_steps": 0}, "--max-steps"),
        ({"loop_pop": 0}, "--loop-pop"),
        ({"repeats": 0}, "--repeats"),
        ({"seed": -1}, "--seed"),
        ({"threads": 0}, "--threads"),
        ({"populations": ()}, "populations"),
        ({"populations": ("nope",)}, "populations"),
        ({"noise": -1.0}, "noise"),
        ({"device": "tpu"}, "device"),
        ({"checkpoint": "/nonexistent.pt"}, "does not exist"),
    ],
)
def test_bad_options_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Config(**kwargs)
