"""sensory-cartpole: tiny seeded runs of both trainers, evaluation rows, watch, checkpoints."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from colonylab.runs.common.sensory import (
    Condition,
    MLPPolicy,
    behaviour_clone,
    build_agent,
    load_agent,
    save_agent,
    train_pgpe,
)
from colonylab.runs.experiments import sensory_cartpole as exp

TINY = exp.Config(
    generations=3,
    pop_size=8,
    episodes=1,
    max_steps=40,
    validate_every=1,
    validate_episodes=2,
    bc_iterations=2,
    bc_envs=4,
    bc_epochs=1,
    finetune_generations=2,
    finetune_episodes=1,
    reshuffle_generations=2,
    reshuffle_every=10,
    eval_episodes=2,
    shuffle_every=10,
    noise_channels=3,
    watch_envs=2,
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sensory")
    summary = exp.main(dataclasses.replace(TINY, out=str(out)))
    (run,) = (out / "sensory-cartpole").iterdir()
    return run, summary


def test_main_writes_both_checkpoints_and_the_evaluation(tiny_run):
    run, summary = tiny_run
    for kind in ("attention", "mlp"):
        policy, payload = load_agent(
            run / "checkpoints" / exp.checkpoint_name(kind), exp.EXPERIMENT
        )
        assert payload["agent"]["kind"] == kind
        assert "trained_by" in payload["meta"] and "command" in payload["meta"]
        if kind == "attention":
            stage = payload["meta"]["reshuffle"]
            assert stage["generations"] == 2 and {"before", "after"} <= set(stage)
    rows = json.loads((run / "eval.json").read_text())["rows"]
    assert rows == summary["rows"]
    assert {r["agent"] for r in rows} == {"AttentionNeuron", "MLP"}
    for r in rows:
        assert {"condition", "agent", "mean", "std", "episodes"} <= set(r)
    noise = [r for r in rows if "noise" in r["condition"]]
    assert {r["agent"]: r["mean"] is None for r in noise} == {"AttentionNeuron": False, "MLP": True}


def test_attention_scores_equal_unshuffled_and_shuffled_at_reset(tiny_run):
    """A permutation fixed for the episode is an exact symmetry of the AttentionNeuron."""
    run, summary = tiny_run
    rows = {(r["condition"], r["agent"]): r for r in summary["rows"]}
    a = rows[("unshuffled", "AttentionNeuron")]["returns"]
    b = rows[("shuffled at reset", "AttentionNeuron")]["returns"]
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_watch_steps_renders_and_reshuffles(tiny_run):
    run, _ = tiny_run
    world = exp.watch(TINY, str(run / "checkpoints"))
    for _ in range(3):
        world.step()
    before = world.obs.clone()
    perm = world.world.permutation.clone()
    assert world.handle_key("x")
    assert not torch.equal(world.world.permutation, perm) or perm.shape[1] == 1
    # the same values, moved
    torch.testing.assert_close(before.sort(dim=1).values, world.obs.sort(dim=1).values)
    assert world.handle_key("m") and world.labels[world.current] == "MLP"
    frame = world.render_rgb()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert "agent" in world.metrics()


def test_pgpe_improves_the_mlp_on_swing_up():
    torch.manual_seed(0)
    policy = build_agent({"kind": "mlp", "input_shape": [5], "act_dim": 1, "hidden": [8]})
    result = train_pgpe(
        policy,
        exp.world_factory(dataclasses.replace(TINY, max_steps=200)),
        label="test",
        generations=12,
        pop_size=16,
        episodes=2,
        max_steps=200,
        seed=0,
        center_lr=0.05,
        stdev_init=0.1,
        validate_every=100,
        validate_episodes=2,
    )
    first = np.mean([h["charts/fitness_mean"] for h in result.history[:3]])
    last = np.mean([h["charts/fitness_mean"] for h in result.history[-3:]])
    assert last > first


def test_behaviour_cloning_lowers_the_loss_of_a_shuffled_attention_student():
    torch.manual_seed(0)
    teacher = MLPPolicy([5], 1, hidden=(8,))
    student = build_agent({"kind": "attention", "act_dim": 1, "num_queries": 4, "key_dim": 4})
    cond = Condition("train", shuffle=10)
    factory = exp.world_factory(TINY)

    def teach(world):
        return teacher(world.observe(world.state).float()).squeeze(-1).detach()

    result = behaviour_clone(
        student,
        lambda n: cond.wrap(factory(num_envs=n), 0),
        teach,
        label="test",
        iterations=4,
        envs=4,
        steps=40,
        seed=0,
        lr=1e-2,
        epochs=3,
        beta_decay=1.0,
    )
    losses = [h["losses/bc"] for h in result.history]
    assert losses[-1] < losses[0]


def test_checkpoint_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_agent(tmp_path / "missing.pt", exp.EXPERIMENT)
    policy = MLPPolicy([5], 1)
    path = save_agent(
        tmp_path / "x.pt",
        policy,
        {"kind": "mlp", "input_shape": [5], "act_dim": 1, "hidden": [16, 16]},
        experiment="other",
        meta={},
    )
    with pytest.raises(ValueError, match="not 'sensory-cartpole'"):
        load_agent(path, exp.EXPERIMENT)
    bad = save_agent(
        tmp_path / "y.pt",
        policy,
        {"kind": "mlp", "input_shape": [7], "act_dim": 1},
        experiment=exp.EXPERIMENT,
        meta={},
    )
    with pytest.raises(ValueError, match="do not fit"):
        load_agent(bad, exp.EXPERIMENT)


def test_mlp_refuses_a_different_number_of_inputs():
    with pytest.raises(ValueError, match="fixed|different number"):
        MLPPolicy([5], 1)(torch.zeros(2, 7))


@pytest.mark.parametrize(
    "field, value",
    [("pop_size", 7), ("generations", 0), ("shuffle_every", 0), ("center_lr", 0.0)],
)
def test_bad_config_is_refused(field, value):
    with pytest.raises(ValueError, match=field.replace("_", "-")):
        dataclasses.replace(TINY, **{field: value})
