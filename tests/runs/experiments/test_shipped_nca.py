"""Every shipped neural-CA checkpoint, re-evaluated on a few cases: its headline number
holds (within a tolerance for other CPUs and thread counts), it is in the one checkpoint
format, and it records a ``colony train`` command that parses back to its config."""

from __future__ import annotations

import shlex

import pytest

from colonylab.runs.cli import parse_config
from colonylab.runs.common.checkpoint import config_from_plain, load_checkpoint
from colonylab.runs.experiments import nca_digits, nca_grow

# (file, loss_grown of `colony eval nca-grow` with 4 fire-mask seeds; measured at conversion)
GROW = [("nca_grow.pt", 0.003838), ("nca_grow_ladybug.pt", 0.002207)]


@pytest.mark.parametrize(("name", "loss_grown"), GROW)
def test_shipped_nca_grow_regrows_its_target(name, loss_grown):
    path = nca_grow.SHIPPED_DIR / name
    out = nca_grow.evaluate(nca_grow.Config(eval_batch=4, threads=1), str(path))
    assert out["loss_grown"] == pytest.approx(loss_grown, rel=0.1)
    assert out["loss_recovered"] < 1.2 * out["loss_grown"] < out["loss_damaged"]
    assert out["grow_steps"] == 64


def test_shipped_nca_digits_classifies_held_out_digits():
    out = nca_digits.evaluate(nca_digits.Config(eval_digits=100, threads=1), None)
    assert out["accuracy"] == pytest.approx(0.92, abs=0.03)  # 0.9387 on all 359 held out
    assert out["agreement"] > 0.9 and out["reagreement"] > 0.9


@pytest.mark.parametrize(
    ("module", "name"),
    [(nca_grow, "nca_grow.pt"), (nca_grow, "nca_grow_ladybug.pt"), (nca_digits, "nca_digits.pt")],
)
def test_shipped_checkpoints_record_a_real_train_command(module, name):
    ckpt = load_checkpoint(module.SHIPPED_DIR / name, module.EXPERIMENT)
    assert ckpt["spec"]["type"] == "nca" and ckpt["provenance"]["seed"] == 0
    command = ckpt["provenance"]["command"]
    words = shlex.split(command)
    assert words[:3] == ["colony", "train", module.EXPERIMENT] and "--out" not in words
    cfg = config_from_plain(module.Config, ckpt["config"])
    assert parse_config(module.Config, words[3:], prog="test") == cfg
    headline = "loss_grown" if module is nca_grow else "accuracy"
    assert ckpt["provenance"]["metrics"][headline] > 0


@pytest.mark.parametrize("module", [nca_grow, nca_digits])
def test_a_non_checkpoint_file_is_refused_in_one_line(module, tmp_path):
    path = tmp_path / "readme.pt"
    path.write_text("hello, I am a text file\n")
    with pytest.raises(ValueError, match=r"readme\.pt") as info:
        module.evaluate(module.Config(), str(path))
    assert "\n" not in str(info.value)
