"""The nca-grow experiment: targets, training modes, checkpoints, eval and watch."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from colonylab.runs.cli import main as colony
from colonylab.runs.common.checkpoint import (
    load_checkpoint,
    make_checkpoint,
    save_checkpoint,
)
from colonylab.runs.experiments import nca_grow
from colonylab.runs.experiments.nca_grow import Config, evaluate, load_rule, main, train, watch

TINY = {
    "size": 16,
    "target_size": 8,
    "hidden": 32,
    "batch": 4,
    "pool_size": 8,
    "steps_min": 12,
    "steps_max": 16,
    "eval_every": 0,
    "eval_batch": 2,
    "threads": 1,
    "plots": False,
}


def _blob(path, size=10, rgba=(200, 60, 30, 255), mode="RGBA"):
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    for y in range(2, size - 2):
        for x in range(2, size - 2):
            img.putpixel((x, y), rgba)
    img.convert(mode).save(path)
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("nca")
    target = _blob(out / "blob.png")
    cfg = Config(**TINY, target=str(target), iterations=60, mode="growing", out=str(out))
    result = main(cfg)
    return cfg, result, result.run.checkpoints / "nca_grow.pt"


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"mode": "melting"}, "--mode must be one of"),
        ({"steps_min": 10, "steps_max": 5}, "--steps-max must be an integer >= 10"),
        ({"target_size": 100}, "--target-size"),
        ({"pool_size": 2}, "--pool-size"),
        ({"damage_count": 8}, "--damage-count"),
        ({"perception": "magic"}, "perception"),
        ({"fire_rate": 0.0}, "fire_rate"),
        ({"half_damage": 2.0}, "--half-damage"),
        ({"iterations": True}, "--iterations must be an integer"),
    ],
)
def test_bad_config_is_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        Config(**kw)


def test_training_lowers_the_loss_and_saves_a_checkpoint(tiny_run):
    cfg, result, path = tiny_run
    first, last = np.mean(result.losses[:5]), np.mean(result.losses[-5:])
    assert last < 0.6 * first
    model, target, ckpt = load_rule(path)
    assert ckpt["config"]["iterations"] == 60 and ckpt["config"]["steps_max"] == cfg.steps_max
    assert ckpt["spec"]["type"] == "nca" and ckpt["kind"] == "nca-grow"
    assert ckpt["provenance"]["command"].startswith(
        "colony train nca-grow --mode growing --target "
    )
    assert "--iterations 60" in ckpt["provenance"]["command"]
    assert ckpt["provenance"]["metrics"]["loss_grown"] == result.evals[-1][1]["loss_grown"]
    for name, value in model.state_dict().items():
        assert torch.equal(value, result.model.state_dict()[name])
    assert torch.equal(target, result.target)


@pytest.mark.parametrize("mode", ["growing", "persistent"])
def test_other_modes_run_and_are_seeded(tmp_path, mode):
    target = _blob(tmp_path / "b.png")
    cfg = Config(**TINY, target=str(target), iterations=3, mode=mode)
    a, b = train(cfg), train(cfg)
    assert a.losses == b.losses  # same seed, same run
    assert len(a.evals) == 1  # the final regeneration measurement


def test_evaluate_reports_the_regeneration_keys(tiny_run, tmp_path):
    cfg, _, path = tiny_run
    out = evaluate(cfg, str(path))
    for key in ("loss_grown", "loss_damaged", "loss_recovered", "recovery_ratio"):
        assert np.isfinite(out[key]) and out[key] >= 0
    assert out["grow_steps"] == cfg.steps_max and out["recover_steps"] == 100
    assert evaluate(cfg, str(path)) == out  # seeded
    js = tmp_path / "eval.json"
    assert colony(["eval", "nca-grow", "--checkpoint", str(path), "--json", str(js)]) == 0
    assert set(json.loads(js.read_text())) >= {"loss_grown", "loss_damaged", "loss_recovered"}


def test_bad_checkpoints_give_clear_errors(tiny_run, tmp_path, capsys):
    cfg, result, _ = tiny_run
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        evaluate(cfg, str(corrupt))
    other = tmp_path / "other.pt"
    save_checkpoint(other, make_checkpoint("nca-digits", state_dict=result.model.state_dict()))
    with pytest.raises(ValueError, match="is a 'nca-digits' checkpoint, expected a 'nca-grow'"):
        evaluate(cfg, str(other))
    wrong = tmp_path / "wrong.pt"
    spec = {"type": "nca", "channels": 16, "hidden": 64}
    save_checkpoint(
        wrong, make_checkpoint("nca-grow", spec=spec, state_dict=result.model.state_dict())
    )
    with pytest.raises(ValueError, match="weights do not fit"):
        evaluate(cfg, str(wrong))
    assert colony(["eval", "nca-grow", "--checkpoint", str(corrupt)]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err


def test_watch_world_grows_and_takes_damage(tiny_run):
    cfg, _, path = tiny_run
    canvas = watch(cfg, str(path))
    for _ in range(cfg.steps_max):
        canvas.step()
    frame = canvas.render_rgb()
    assert frame.shape == (16, 16, 3) and (frame < 250).any()
    alive = float(canvas.state[..., 3].gt(0.1).sum())
    assert canvas.handle_key("l")
    assert float(canvas.state[..., 3].gt(0.1).sum()) < alive
    canvas.handle_click(8, 8, 3)  # right click: reseed there
    assert int(canvas.state[..., 3].gt(0).sum()) == 1
    assert "loss" in canvas.metrics()


def test_shipped_checkpoint_regrows():
    out = evaluate(Config(eval_batch=2))
    assert out["loss_recovered"] <= 2.0 * out["loss_grown"]
    assert out["loss_damaged"] > out["loss_recovered"]
    assert out["command"].startswith("colony train nca-grow")


# -- resume ----------------------------------------------------------------------------------
def _metrics(run_path):
    """metrics.jsonl without the wall-clock field."""
    lines = (run_path / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in lines]


@pytest.fixture(scope="module")
def resume_case(tmp_path_factory):
    """A tiny regenerating run of 8 iterations (eval and checkpoint every 2), done in one go."""
    out = tmp_path_factory.mktemp("resume")
    target = _blob(out / "blob.png")
    cfg = Config(
        **{**TINY, "eval_every": 2},
        target=str(target),
        iterations=8,
        mode="regenerating",
        damage_count=1,
        checkpoint_every=2,
        out=str(out),
    )
    return cfg, main(cfg)


def _assert_same_run(result, full):
    for a, b in zip(result.model.parameters(), full.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert result.losses == full.losses and result.evals == full.evals
    assert _metrics(result.run.path) == _metrics(full.run.path)


def test_stop_then_resume_is_bit_identical(resume_case):
    cfg, full = resume_case
    half = main(dataclasses.replace(cfg, iterations=4))
    latest = load_checkpoint(half.run.path / "checkpoints" / "latest.pt", "nca-grow")
    trainer = latest["trainer"]
    assert trainer["iteration"] == 4 and trainer["buffers"]["pool"].shape == (8, 16, 16, 16)
    assert set(trainer["generators"]) == {"numpy", "torch"} and len(trainer["history"]) == 4
    assert {"optimizer", "scheduler"} <= set(trainer) and {"python", "torch"} <= set(latest["rng"])
    resumed = main(cfg, resume=str(half.run.path))
    assert resumed.run.path == half.run.path
    _assert_same_run(resumed, full)


def test_interrupt_leaves_a_checkpoint_that_resumes_identically(resume_case, monkeypatch, capsys):
    cfg, full = resume_case
    real, calls = nca_grow._random_damage, {"n": 0}

    def damage_then_interrupt(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:  # inside iteration 6, after the pool draw
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(nca_grow, "_random_damage", damage_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        main(cfg)
    assert "interrupted: checkpoint at" in capsys.readouterr().out
    monkeypatch.setattr(nca_grow, "_random_damage", real)
    (run_path,) = [
        p for p in (full.run.path.parent).iterdir() if not (p / "checkpoints/nca_grow.pt").exists()
    ]
    latest = load_checkpoint(run_path / "checkpoints" / "latest.pt", "nca-grow")
    assert latest["trainer"]["iteration"] == 5  # the last whole iteration
    # the CLI continues it from its saved config
    assert colony(["train", "nca-grow", "--resume", str(run_path)]) == 0
    model, _, _ = load_rule(run_path / "checkpoints" / "nca_grow.pt")
    for a, b in zip(model.parameters(), full.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert _metrics(run_path) == _metrics(full.run.path)


def test_a_text_file_is_refused_in_one_line(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("this is not a checkpoint\n")
    with pytest.raises(ValueError, match="notes.pt") as info:
        evaluate(Config(), str(path))
    assert "\n" not in str(info.value)
