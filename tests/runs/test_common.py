"""Run plumbing: seeding, devices, atomic checkpoints, run directories."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from colonylab.runs.common import (
    RunDir,
    atomic_write_bytes,
    load_checkpoint,
    resolve_device,
    save_checkpoint,
    seed_everything,
)


def _draws():
    from numba import njit

    @njit
    def numba_draw():
        return np.random.random()

    return (random.random(), np.random.random(), torch.rand(1).item(), numba_draw())


def test_seed_everything_repeats_every_generator():
    seed_everything(3)
    a = _draws()
    seed_everything(3)
    b = _draws()
    seed_everything(4)
    c = _draws()
    assert a == b
    assert all(x != y for x, y in zip(a, c, strict=True))


def test_seed_must_be_a_non_negative_int():
    with pytest.raises(ValueError, match="-1"):
        seed_everything(-1)


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda:3"):
            resolve_device("cuda:3")


def test_checkpoint_roundtrip_weights_only(tmp_path):
    path = save_checkpoint(
        tmp_path / "ck" / "a.pt", {"boards": np.ones((2, 3), np.uint8), "step": np.int64(5)}
    )
    state = load_checkpoint(path)
    assert state["step"] == 5
    assert torch.equal(state["boards"], torch.ones((2, 3), dtype=torch.uint8))
    assert torch.load(path, weights_only=True)["step"] == 5


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "x.bin"
    atomic_write_bytes(path, b"old")
    import os

    def boom(*_):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]  # no temp file left


def test_rundir_layout_and_logging(tmp_path):
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Cfg:
        lr: float = 0.1
        name: str = "x"

    with RunDir("exp", 7, Cfg(), root=tmp_path) as run:
        run.log(0, {"losses/loss": 1.5, "emergence/x": float("nan")})
        run.log(1, {"losses/loss": 1.0})
        ck = run.save_checkpoint("last", {"w": torch.zeros(2)})
    assert run.path.parent == tmp_path / "exp" and run.path.name.endswith("-s7")
    assert json.loads((run.path / "config.json").read_text()) == {"lr": 0.1, "name": "x"}
    lines = [json.loads(x) for x in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [0, 1]
    assert lines[0]["emergence/x"] is None  # NaN stored as null, valid JSON
    assert ck.exists() and (run.path / "media").is_dir()
    assert any((run.path / "tb").iterdir())
    # a second run in the same second gets its own folder
    other = RunDir("exp", 7, root=tmp_path, tensorboard=False)
    other.close()
    assert other.path != run.path
