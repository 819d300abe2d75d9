"""sensory-cartpole: tiny seeded runs of both trainers, evaluation rows, watch, checkpoints."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from colonylab.agents import build as build_agent
from colonylab.agents.mlp import MLPPolicy
from colonylab.collective_ml.trainers.clone import behaviour_clone
from colonylab.envs.wrappers.conditions import Condition
from colonylab.runs.common.checkpoint import (
    CheckpointError,
    config_from_plain,
    load_checkpoint,
    make_checkpoint,
    reproduce_command,
    save_checkpoint,
)
from colonylab.runs.common.stages import Stages
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
    eval_noise=(3,),
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
        ckpt = load_checkpoint(run / "checkpoints" / exp.checkpoint_name(kind), exp.EXPERIMENT)
        assert ckpt["spec"]["type"] == kind and ckpt["extra"]["agent"] == exp.LABELS[kind]
        assert ckpt["provenance"]["command"].startswith("colony train sensory-cartpole --")
        assert "trained_by" in ckpt["provenance"]
        if kind == "attention":
            stage = ckpt["provenance"]["reshuffle"]
            assert stage["generations"] == 2 and {"before", "after"} <= set(stage)
    rows = json.loads((run / "eval.json").read_text())["rows"]
    assert rows == summary["rows"]
    assert {r["agent"] for r in rows} == {"AttentionNeuron", "MLP", "teacher (the MLP, unshuffled)"}
    for r in rows:
        assert {"condition", "agent", "mean", "std", "episodes"} <= set(r)
    noise = [r for r in rows if "noise" in r["condition"] and "teacher" not in r["agent"]]
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


@pytest.mark.parametrize(
    "stage, counter", [("mlp", "generation"), ("clone", "iteration"), ("reshuffle", "generation")]
)
def test_resume_is_bit_identical(tiny_run, tmp_path, stage, counter):
    """A run stopped by Ctrl-C in any stage (PGPE or cloning) and resumed from its
    latest.pt ends with the uninterrupted run's weights and metrics."""
    full, _ = tiny_run
    real = Stages.save

    def interrupting(self, state):
        path = real(self, state)
        if self.stage == stage and state.get(counter) == 1:
            raise KeyboardInterrupt
        return path

    cfg = dataclasses.replace(TINY, checkpoint_every=1, out=str(tmp_path))
    Stages.save = interrupting
    try:
        with pytest.raises(KeyboardInterrupt):
            exp.main(cfg)
    finally:
        Stages.save = real
    (stopped,) = (tmp_path / "sensory-cartpole").iterdir()
    latest = load_checkpoint(stopped / "checkpoints" / "latest.pt", exp.EXPERIMENT)
    assert latest["trainer"]["stage"] == stage
    exp.main(cfg, resume=str(stopped))
    for kind in ("attention", "mlp"):
        a = load_checkpoint(full / "checkpoints" / exp.checkpoint_name(kind))["state_dict"]
        b = load_checkpoint(stopped / "checkpoints" / exp.checkpoint_name(kind))["state_dict"]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    def metrics(run):
        lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if "seconds" not in k and k != "time"} for r in lines]

    assert metrics(full) == metrics(stopped)


@pytest.mark.parametrize("method", ["distill", "pgpe", "dagger", "dagger-reshuffled"])
def test_noise_stage_continues_from_init(tiny_run, tmp_path, method):
    """--init starts the AttentionNeuron from a checkpoint and runs only the noise stage
    (a random number of noise channels per episode batch, shuffled in)."""
    run, _ = tiny_run
    ckpts = run / "checkpoints"
    cfg = dataclasses.replace(
        TINY,
        agents="attention",
        teacher=str(ckpts / exp.checkpoint_name("mlp")),
        init=str(ckpts / exp.checkpoint_name("attention")),
        noise_method=method.removesuffix("-reshuffled"),
        noise_reshuffle_min=5 if method.endswith("reshuffled") else 0,
        noise_reshuffle_max=9,
        noise_reshuffle_grace=2,
        noise_generations=1,
        noise_episodes=1,
        train_noise_max=3,
        noise_steps=20,
        noise_chunk=8,
        out=str(tmp_path),
    )
    exp.main(cfg)
    (out,) = (tmp_path / "sensory-cartpole").iterdir()
    ckpt = load_checkpoint(out / "checkpoints" / exp.checkpoint_name("attention"))
    noise = ckpt["provenance"]["noise"]
    assert {"before", "after", "before_by_noise", "after_by_noise"} <= set(noise)
    assert ckpt["provenance"]["init"]["command"].startswith("colony train sensory-cartpole")
    assert "--init" in ckpt["provenance"]["command"]
    if method == "dagger-reshuffled":
        assert noise["reshuffle_steps"] == [5, 9] and noise["reshuffle_grace"] == 2
        assert "validation_reshuffled10" in noise["before_by_noise"]
        assert "--noise-reshuffle-min 5" in ckpt["provenance"]["command"]


def test_loop_evaluator_trains_the_mlp(tmp_path):
    """--evaluator loop: one single-env world per individual, same stage, same files."""
    cfg = dataclasses.replace(TINY, agents="mlp", evaluator="loop", out=str(tmp_path))
    exp.main(cfg)
    (run,) = (tmp_path / "sensory-cartpole").iterdir()
    ckpt = load_checkpoint(run / "checkpoints" / exp.checkpoint_name("mlp"), exp.EXPERIMENT)
    assert "--evaluator loop" in ckpt["provenance"]["command"]
    with pytest.raises(ValueError, match="ray-address"):
        dataclasses.replace(TINY, ray_address="127.0.0.1:6379")


def test_behaviour_cloning_lowers_the_loss_of_a_shuffled_attention_student():
    torch.manual_seed(0)
    teacher = MLPPolicy([5], 1, hidden=(8,))
    student = build_agent({"type": "attention", "act_dim": 1, "num_queries": 4, "key_dim": 4})
    cond = Condition("train", shuffle=10)
    factory = exp.world_factory(TINY)

    def teach(world):
        return teacher(world.observe(world.state).float()).squeeze(-1).detach()

    result = behaviour_clone(
        student,
        lambda n, iteration: cond.wrap(factory(num_envs=n), 0),
        teach,
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
        exp.load_agents(str(tmp_path / exp.checkpoint_name("mlp")))
    policy = MLPPolicy([5], 1)
    spec = {"type": "mlp", "input_shape": [5], "act_dim": 1, "hidden": [16, 16]}
    other = tmp_path / "other" / exp.checkpoint_name("mlp")
    save_checkpoint(other, make_checkpoint("other", spec=spec, state_dict=policy.state_dict()))
    with pytest.raises(CheckpointError, match="expected a 'sensory-cartpole' checkpoint"):
        exp.load_agents(str(other))
    bad = tmp_path / "bad" / exp.checkpoint_name("mlp")
    wrong = {**spec, "input_shape": [7]}
    save_checkpoint(
        bad, make_checkpoint(exp.EXPERIMENT, spec=wrong, state_dict=policy.state_dict())
    )
    with pytest.raises(CheckpointError, match="do not fit"):
        exp.load_agents(str(bad))
    text = tmp_path / "text" / exp.checkpoint_name("mlp")
    text.parent.mkdir()
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        exp.load_agents(str(text))


# the shipped checkpoints' first three episodes of ``colony eval sensory-cartpole
# --eval-episodes 3 --eval-noise 5`` (the default --eval-noise-reshuffled 5): a fixed
# shuffle, re-shuffles mid-episode, noise channels shuffled in, and both at once
SHIPPED_EPISODES = {
    ("AttentionNeuron", "unshuffled"): [647.767, 647.724, 621.177],
    ("AttentionNeuron", "shuffled at reset"): [647.766, 647.725, 621.179],
    ("AttentionNeuron", "shuffled every 200 steps"): [390.654, 142.606, 150.553],
    ("AttentionNeuron", "+5 noise channels, shuffled"): [648.301, 647.82, 620.2],
    ("AttentionNeuron", "+5 noise channels, shuffled every 200 steps"): [154.91, 232.084, 106.895],
    ("MLP", "unshuffled"): [721.491, 747.219, 702.067],
    ("MLP", "shuffled at reset"): [59.219, 7.034, 8.665],
}


def test_shipped_checkpoints_replay_their_evaluation():
    cfg = dataclasses.replace(exp.Config(), eval_episodes=3, eval_noise=(5,))
    rows = exp.evaluate(cfg)["rows"]
    for (agent, condition), returns in SHIPPED_EPISODES.items():
        (row,) = [r for r in rows if r["agent"] == agent and r["condition"] == condition]
        assert row["returns"] == pytest.approx(returns, rel=0.01)
    for kind, command in (
        ("mlp", "colony train sensory-cartpole --agents mlp --validate-episodes 16"),
        (
            "attention",
            "colony train sensory-cartpole --agents attention "
            "--teacher runs/checkpoints/sensory_cartpole_mlp.pt --bc-envs 64 "
            "--noise-method dagger --noise-generations 1200 --noise-distill-lr 0.002 "
            "--noise-attention-weight 3.0 --noise-latent-weight 100.0 --noise-minutes 22.0 "
            "--init runs/checkpoints/sensory_cartpole_attention.pt --validate-episodes 16",
        ),
    ):
        ckpt = load_checkpoint(exp.SHIPPED / exp.checkpoint_name(kind), exp.EXPERIMENT)
        assert ckpt["provenance"]["command"] == command
        cfg = config_from_plain(exp.Config, ckpt["config"])  # the saved config says the same
        assert reproduce_command(f"train {exp.EXPERIMENT}", cfg) == command


def test_mlp_refuses_a_different_number_of_inputs():
    with pytest.raises(ValueError, match="fixed|different number"):
        MLPPolicy([5], 1)(torch.zeros(2, 7))


@pytest.mark.parametrize(
    "field, value",
    [
        ("pop_size", 7),
        ("generations", 0),
        ("shuffle_every", 0),
        ("center_lr", 0.0),
        ("noise_teacher", "cnn"),
        ("noise_zero_share", 1.5),
        ("noise_chunk", 0),
        ("noise_reshuffle_min", -1),
        ("eval_noise_reshuffled", (0,)),
    ],
)
def test_bad_config_is_refused(field, value):
    with pytest.raises(ValueError, match=field.replace("_", "-")):
        dataclasses.replace(TINY, **{field: value})


def test_reshuffle_range_must_be_ordered():
    with pytest.raises(ValueError, match="--noise-reshuffle-max must be >= --noise-reshuffle-min"):
        dataclasses.replace(TINY, noise_reshuffle_min=50, noise_reshuffle_max=20)


def test_dagger_reshuffles_move_each_episode_on_its_own_clock():
    """The noise stage's mid-episode re-shuffles: every episode's permutation changes only
    at its own drawn steps (gaps within the range), the values shown are those of the
    real and noise channels moved, and the noise mask follows them."""
    cfg = dataclasses.replace(TINY, noise_reshuffle_min=3, noise_reshuffle_max=6)
    moves = exp._Reshuffles(cfg, 8, exp.OBS_DIM + 4, iteration=0)
    raw = torch.arange(9.0).expand(8, 9)
    changes, last = torch.zeros(8, dtype=torch.long), moves.permutation.clone()
    stamps: list[list[int]] = [[] for _ in range(8)]
    for t in range(40):
        seen = moves.apply(raw, t)
        torch.testing.assert_close(seen.sort(dim=1).values, raw)
        torch.testing.assert_close(seen, raw.gather(1, moves.permutation))
        moved = (moves.permutation != last).any(dim=1)
        for env in moved.nonzero().flatten().tolist():
            stamps[env].append(t)
        changes += moved
        last = moves.permutation.clone()
        noise = moves.is_noise(torch.device("cpu"))
        assert torch.equal(noise.bool(), seen >= exp.OBS_DIM)
        settled = moves.settled(t, 2, torch.device("cpu")).bool()
        assert torch.equal(settled, (t - moves.last) >= 2)
        assert not settled[moved].any() and bool(((moves.last < 0) <= settled).all())
    assert bool((changes >= 40 // 6 - 1).all()) and bool((changes <= 40 // 3).all())
    for times in stamps:  # a fresh permutation may equal the old one: gaps are >= 3
        assert all(b - a >= 3 for a, b in zip(times, times[1:], strict=False))
    again = exp._Reshuffles(cfg, 8, exp.OBS_DIM + 4, iteration=0)
    assert torch.equal(again.next, exp._Reshuffles(cfg, 8, exp.OBS_DIM + 4, 0).next)


def test_ray_evaluator_on_localhost_gives_the_in_process_result(tmp_path):
    """--evaluator ray (a local Ray, no --ray-address): the PGPE stage's weights equal
    those of --evaluator batched (same seeds)."""
    ray = pytest.importorskip("ray")
    cfg = exp.Config(
        agents="mlp",
        generations=2,
        pop_size=4,
        episodes=1,
        max_steps=30,
        validate_every=1,
        validate_episodes=1,
    )
    weights = {}
    try:
        for evaluator in ("batched", "ray"):
            out = tmp_path / evaluator
            exp.main(dataclasses.replace(cfg, evaluator=evaluator, out=str(out)))
            (run,) = (out / "sensory-cartpole").iterdir()
            path = run / "checkpoints" / exp.checkpoint_name("mlp")
            weights[evaluator] = load_checkpoint(path)["state_dict"]
    finally:
        ray.shutdown()
    assert all(torch.equal(weights["batched"][k], weights["ray"][k]) for k in weights["batched"])


def test_dagger_noise_stage_lowers_the_attention_on_noise_channels():
    """The dagger noise stage's attention loss trains the keys to say "noise": the share
    of attention on appended noise channels falls below its start."""
    torch.manual_seed(0)
    student = build_agent(exp.agent_spec(exp.Config(), "attention"))
    cfg = dataclasses.replace(
        TINY,
        noise_method="dagger",
        noise_generations=6,
        noise_steps=30,
        noise_chunk=10,
        noise_zero_share=0.0,
        noise_distill_lr=1e-2,
        noise_latent_weight=0.0,
        train_noise_max=4,
        validate_every=100,
    )

    class Tracker:
        def log(self, step, record):
            self.records = [*getattr(self, "records", []), dict(record)]

        def save(self, state):
            pass

    tracker = Tracker()
    info = {"seconds": 0.0, "env_steps": 0, "trained_by": "x"}
    exp._noise_dagger(cfg, student, info, tracker, None, None)
    ratios = [r["charts/attention_ratio"] for r in tracker.records]
    assert len(ratios) == 6 and ratios[-1] < ratios[0]
    assert info["noise"]["method"] == "dagger" and info["noise"]["iterations"] == 6
