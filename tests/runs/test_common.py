"""Run plumbing: seeding, devices, atomic checkpoints, run directories."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from colonylab.runs.common import (
    CheckpointError,
    RunDir,
    atomic_write_bytes,
    latest_checkpoint,
    load_checkpoint,
    make_checkpoint,
    provenance,
    read_torch_file,
    reproduce_command,
    resolve_device,
    rng_states,
    save_checkpoint,
    seed_everything,
    set_rng_states,
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
    state = read_torch_file(path)
    assert state["step"] == 5
    assert torch.equal(state["boards"], torch.ones((2, 3), dtype=torch.uint8))
    assert torch.load(path, weights_only=True)["step"] == 5


def test_one_format_roundtrip_with_spec_rng_and_provenance(tmp_path):
    model = torch.nn.Linear(3, 2)
    ckpt = make_checkpoint(
        "toy",
        spec={"type": "mlp", "input_shape": [3], "act_dim": 2, "hidden": []},
        state_dict=model.state_dict(),
        config={"lr": 0.1, "path": Path("x")},
        trainer={"step": 4, "core": {"mean": np.zeros(3)}},
        rng=rng_states(),
        provenance=provenance(
            "colony train toy --lr 0.1", seed=3, metrics={"return": np.float32(2)}
        ),
    )
    path = save_checkpoint(tmp_path / "toy.pt", ckpt)
    back = load_checkpoint(path, "toy")
    assert back["version"] == 1 and back["kind"] == "toy"
    assert back["provenance"]["command"] == "colony train toy --lr 0.1"
    assert back["provenance"]["seed"] == 3 and back["provenance"]["metrics"]["return"] == 2.0
    assert back["config"] == {"lr": 0.1, "path": "x"}
    assert torch.equal(back["state_dict"]["weight"], model.weight.detach())
    assert torch.equal(back["trainer"]["core"]["mean"], torch.zeros(3, dtype=torch.float64))
    assert load_checkpoint(path, ("other", "toy"))["kind"] == "toy"


def test_rng_states_restore_every_generator():
    import random

    states = rng_states()
    first = (random.random(), np.random.rand(), torch.rand(2))
    set_rng_states(states)
    again = (random.random(), np.random.rand(), torch.rand(2))
    assert first[:2] == again[:2] and torch.equal(first[2], again[2])


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"hello, not a checkpoint", "not a readable checkpoint: not a torch file"),
        (None, "not a readable checkpoint"),  # truncated
        ("other-dict", "not a Colony Lab checkpoint"),
        ("other-kind", "is a 'toy' checkpoint, expected a 'nca-grow' checkpoint"),
        ("future", "version 99"),
    ],
)
def test_load_checkpoint_refuses_in_one_line(tmp_path, content, match):
    path = tmp_path / "bad.pt"
    good = save_checkpoint(tmp_path / "good.pt", make_checkpoint("toy"))
    if content is None:
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif content == "other-dict":
        save_checkpoint(path, {"weights": torch.zeros(2)})
    elif content == "other-kind":
        path = good
    elif content == "future":
        save_checkpoint(path, {**make_checkpoint("nca-grow"), "version": 99})
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match) as info:
        load_checkpoint(path, "nca-grow")
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_reproduce_command_lists_changed_fields_only():
    from dataclasses import dataclass, field

    @dataclass(frozen=True)
    class Inner:
        lr: float = 1e-3

    @dataclass(frozen=True)
    class Cfg:
        steps: int = 3
        name: str = "a"
        inner: Inner = field(default_factory=Inner)
        sizes: tuple[int, ...] = (1, 2)
        every: int | None = None

    cfg = Cfg(steps=5, inner=Inner(lr=0.1), sizes=(3, 4), every=2)
    assert (
        reproduce_command("train toy", cfg)
        == "colony train toy --steps 5 --inner.lr 0.1 --sizes 3 4 --every 2"
    )
    assert reproduce_command("train toy", Cfg()) == "colony train toy"


def test_config_from_plain_rebuilds_nested_configs():
    from dataclasses import dataclass, field

    from colonylab.runs.common.checkpoint import config_from_plain, plain

    @dataclass(frozen=True)
    class Inner:
        lr: float = 1e-3

    @dataclass(frozen=True)
    class Cfg:
        steps: int = 3
        inner: Inner = field(default_factory=Inner)
        sizes: tuple[int, ...] = (1, 2)
        out: str | None = None

    cfg = Cfg(steps=5, inner=Inner(lr=0.1), sizes=(3, 4), out="x")
    assert config_from_plain(Cfg, plain(cfg)) == cfg
    with pytest.raises(CheckpointError, match="lacks"):
        config_from_plain(Cfg, {"steps": 1, "bogus": 2})


def test_rundir_resume_truncates_metrics(tmp_path):
    with RunDir("toy", 0, {"a": 1}, root=tmp_path, tensorboard=False) as run:
        for step in range(5):
            run.log(step, {"x": float(step)})
        path = run.path
    with RunDir("toy", 0, resume=path, tensorboard=False) as run:
        assert run.path == path
        run.truncate_metrics(2)
        run.log(3, {"x": 30.0})
    steps = [json.loads(line)["step"] for line in (path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 1, 2, 3]
    with pytest.raises(FileNotFoundError, match="no such run directory"):
        RunDir("toy", 0, resume=tmp_path / "missing")


def test_latest_checkpoint_of_a_run_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such run directory"):
        latest_checkpoint(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="latest.pt"):
        latest_checkpoint(tmp_path)
    path = save_checkpoint(tmp_path / "checkpoints" / "latest.pt", make_checkpoint("toy"))
    assert latest_checkpoint(tmp_path) == path
    assert latest_checkpoint(path) == path


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


def test_check_device_option_spells_a_device_without_asking_for_it():
    from colonylab.runs.common.device import check_device_option

    for ok in ("cpu", "cuda", "cuda:3", "auto"):
        assert check_device_option(ok) == ok
    with pytest.raises(ValueError, match="--device must be cpu, cuda, cuda:N or auto, got 'tpu'"):
        check_device_option("tpu")


def test_bench_plumbing(tmp_path):
    from dataclasses import dataclass

    from colonylab.runs.common.bench import best_time, check_checkpoint_option, results_header

    check_checkpoint_option(None, "nca-grow")  # None: the shipped one
    (tmp_path / "a.pt").write_bytes(b"x")
    check_checkpoint_option(str(tmp_path / "a.pt"), "nca-grow")
    with pytest.raises(ValueError, match="make one with 'colony train nca-grow'"):
        check_checkpoint_option(str(tmp_path / "missing.pt"), "nca-grow")
    calls = []
    seconds, result = best_time(lambda: calls.append(1) or len(calls), 3)
    assert result == 3 and len(calls) == 3 and 0 <= seconds < 1

    @dataclass(frozen=True)
    class Cfg:
        pop: int = 2

    header = results_header("x", torch.device("cpu"), {"ours": 1}, Cfg(), lib="1.0")
    assert list(header) == ["suite", "machine", "torch", "lib", "threads", "device", "config"]
    assert header["config"] == {"pop": 2} and header["device"] == "cpu"


def test_metrics_table_formats_ints_and_floats():
    from rich.console import Console

    from colonylab.runs.common.tables import metrics_table

    console = Console(record=True, width=80)
    console.print(metrics_table("t", {"steps": 12345, "loss": 0.123456}, caption="c"))
    text = console.export_text()
    assert "12,345" in text and "0.1235" in text and "c" in text
