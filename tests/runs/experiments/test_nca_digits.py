"""The nca-digits experiment: data, training, checkpoints, eval and watch."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from colonylab.runs.cli import main as colony
from colonylab.runs.common.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from colonylab.runs.data.digits import write_fake_mnist
from colonylab.runs.experiments import nca_digits
from colonylab.runs.experiments.nca_digits import Config, evaluate, load_rule, main, train, watch

# scikit-learn's digits at their own 8x8 size (plus a 1-cell border): tiny and fast
TINY = {
    "scale": 1,
    "border": 1,
    "classes": (0, 1),
    "hidden": 32,
    "batch": 8,
    "pool_size": 32,
    "steps_min": 8,
    "steps_max": 12,
    "eval_every": 0,
    "eval_digits": 40,
    "eval_steps": 40,
    "swap_at": 20,
    "threads": 1,
    "plots": False,
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits")
    cfg = Config(**TINY, iterations=300, out=str(out))
    result = main(cfg)
    return cfg, result, result.run.checkpoints / "nca_digits.pt"


def test_training_runs_on_mnist_files(tmp_path):
    write_fake_mnist(tmp_path, n_train=12, n_test=6, size=6)
    with pytest.raises(ValueError, match="does not exist"):
        Config(mnist=str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="has no 'train-images-idx3-ubyte'"):
        Config(mnist=str(tmp_path / "empty"))
    cfg = Config(
        mnist=str(tmp_path),
        **{**TINY, "classes": (), "eval_digits": 6, "eval_steps": 4, "swap_at": 2},
        iterations=2,
    )
    result = train(cfg)
    assert result.digits.source.startswith("mnist") and len(result.losses) == 2
    assert result.evals[-1][1]["accuracy"] >= 0.0


# -- config --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"steps_min": 30, "steps_max": 20}, "--steps-max must be an integer >= 30"),
        ({"pool_size": 4}, "--pool-size must be an integer >= 16"),
        ({"test_share": 1.0}, "--test-share"),
        ({"fresh_share": 0.9, "swap_share": 0.2}, "--fresh-share \\+ --swap-share"),
        ({"swap_at": 300}, "--swap-at"),
        ({"classes": (3, 12)}, "--classes \\(digits\\) must be an integer in \\[0, 9\\]"),
        ({"classes": (4,)}, "at least two"),
        ({"channels": 11}, "--channels must be an integer >= 12"),
        ({"loss": "hinge"}, "--loss must be one of"),
        ({"perception": "magic"}, "perception"),
        ({"fire_rate": 0.0}, "fire_rate"),
        ({"scale": 0}, "--scale"),
        ({"eval_digits": 0}, "--eval-digits"),
        ({"iterations": 2.5}, "--iterations must be an integer"),
    ],
)
def test_bad_config_is_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        Config(**kw)


def test_cli_prints_config_errors_cleanly(capsys):
    assert colony(["train", "nca-digits", "--steps-min", "50", "--steps-max", "10"]) == 2
    assert "--steps-max must be an integer >= 50, got 10" in capsys.readouterr().err


# -- training ------------------------------------------------------------------------------
def test_tiny_run_beats_chance_and_saves_a_checkpoint(tiny_run):
    cfg, result, path = tiny_run
    assert np.mean(result.losses[-10:]) < np.mean(result.losses[:5])
    _, final = result.evals[-1]
    assert final["accuracy"] >= 0.75  # two classes: chance is 0.5
    model, ckpt, _, _ = load_rule(str(path))
    assert ckpt["config"]["iterations"] == 300 and ckpt["kind"] == "nca-digits"
    assert ckpt["extra"]["data"]["scale"] == 1
    assert ckpt["provenance"]["command"].startswith("colony train nca-digits --scale 1")
    assert ckpt["provenance"]["metrics"]["accuracy"] == final["accuracy"]
    assert model.config.frozen_channels == 1
    for name, value in model.state_dict().items():
        assert torch.equal(value, result.model.state_dict()[name])


def test_training_is_seeded():
    cfg = Config(**{**TINY, "eval_digits": 4, "eval_steps": 4, "swap_at": 2}, iterations=3)
    assert train(cfg).losses == train(cfg).losses


# -- checkpoints, eval, watch --------------------------------------------------------------
def test_the_shipped_checkpoint_is_small():  # its numbers: test_shipped_nca.py
    assert (nca_digits.SHIPPED_DIR / "nca_digits.pt").stat().st_size < 1_000_000


def test_bad_checkpoints_are_refused(tmp_path, tiny_run):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        evaluate(Config(), str(junk))
    _, result, _ = tiny_run
    spec = {"type": "nca", **dataclasses.asdict(result.model.config)}
    grow = tmp_path / "grow.pt"
    save_checkpoint(
        grow, make_checkpoint("nca-grow", spec=spec, state_dict=result.model.state_dict())
    )
    with pytest.raises(ValueError, match="is a 'nca-grow' checkpoint, expected a 'nca-digits'"):
        evaluate(Config(), str(grow))
    nodata = tmp_path / "nodata.pt"
    ckpt = make_checkpoint("nca-digits", spec=spec, state_dict=result.model.state_dict())
    save_checkpoint(nodata, ckpt)
    with pytest.raises(ValueError, match="held out"):
        evaluate(Config(), str(nodata))
    with pytest.raises(FileNotFoundError):
        evaluate(Config(), str(tmp_path / "missing.pt"))


def test_cli_eval_writes_json(tmp_path, tiny_run):
    _, _, path = tiny_run
    js = tmp_path / "eval.json"
    args = ["eval", "nca-digits", "--checkpoint", str(path), "--json", str(js)]
    assert colony([*args, "--eval-digits", "10", "--eval-steps", "20", "--swap-at", "10"]) == 0
    out = json.loads(js.read_text())
    assert {"accuracy", "agreement", "stability", "reagreement", "checkpoint", "steps"} <= set(out)
    assert out["digits"] == 10 and out["steps"] == 20
    assert colony(["eval", "nca-digits", "--checkpoint", str(tmp_path / "nope.pt")]) == 2


def test_watch_renders_votes_and_keys_swap_the_digit(tiny_run):
    _, _, path = tiny_run
    world = watch(Config(), str(path))
    frame = world.render_rgb()
    assert frame.dtype == np.uint8 and frame.shape == (*world.state.shape[1:3], 3)
    assert (frame < 250).any() and (frame == 255).any()  # ink on white
    for _ in range(3):
        world.step()
    assert world.handle_key("7")
    assert world.metrics()["digit"] == 7
    ink = world.state[0, ..., 0]
    assert world.handle_key("x") and world.handle_key("3")
    assert world.metrics()["digit"] == 3
    assert not torch.equal(world.state[0, ..., 0], ink)
    world.step()
    assert 0 <= world.metrics()["agreement"] <= 1
    assert not world.handle_key("q")
    # right click adds ink; left click erases it
    world.handle_key("e")
    assert world.state.abs().sum() == 0
    world.handle_click(4, 5, 3)
    assert world.state[0, 5, 4, 0] == 1.0
    assert world.metrics()["digit"] == -1  # a drawing, not a dataset digit
    world.handle_click(4, 5, 1)
    assert world.state[0, 5, 4, 0] == 0.0
    assert nca_digits.votes_rgb(torch.zeros(6, 6, 20)).min() == 255  # no ink: all white


# -- resume ----------------------------------------------------------------------------------
def _metrics(run_path):
    lines = (run_path / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in lines]


def test_stop_then_resume_and_interrupt_then_resume_are_bit_identical(
    tmp_path, monkeypatch, capsys
):
    small = {"eval_every": 2, "eval_digits": 8, "eval_steps": 6, "swap_at": 3}
    cfg = Config(**{**TINY, **small}, iterations=6, checkpoint_every=2, out=str(tmp_path))
    full = main(cfg)

    def same(result):
        for a, b in zip(result.model.parameters(), full.model.parameters(), strict=True):
            assert torch.equal(a, b)
        assert result.losses == full.losses and result.evals == full.evals
        assert _metrics(result.run.path) == _metrics(full.run.path)

    half = main(dataclasses.replace(cfg, iterations=4))  # a multiple of eval_every
    same(main(cfg, resume=str(half.run.path)))

    real, calls = nca_digits.digits_loss, {"n": 0}

    def loss_then_interrupt(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(nca_digits, "digits_loss", loss_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        main(cfg)
    assert "interrupted: checkpoint at" in capsys.readouterr().out
    monkeypatch.setattr(nca_digits, "digits_loss", real)
    (cut,) = [
        p
        for p in (tmp_path / "nca-digits").iterdir()
        if not (p / "checkpoints" / "nca_digits.pt").exists()
    ]
    latest = load_checkpoint(cut / "checkpoints" / "latest.pt", "nca-digits")
    assert latest["trainer"]["iteration"] == 4
    assert latest["trainer"]["buffers"]["pool_labels"].shape == (TINY["pool_size"],)
    same(main(cfg, resume=str(cut)))
