"""Smoke tests of every ``colony`` verb, run in-process through ``main(argv)``; every bad
input is one ``error:`` line and exit status 2; ``--resume`` wiring on fake experiments."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import types

import pytest

from colonylab._checks import check_int
from colonylab.runs import registry
from colonylab.runs.cli import main


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_no_arguments_prints_help(capsys):
    code, out, _ = run([], capsys)
    assert code == 0 and "rollout" in out and "demo" in out


def test_list_shows_every_section(capsys):
    code, out, _ = run(["list"], capsys)
    assert code == 0
    for word in (
        "worlds",
        "life",
        "lenia",
        "ca-showcase",
        "battle",
        "greedy-vs-random",
        "experiments",
        "life-soup",
        "benchmarks",
    ):
        assert word in out


@pytest.mark.parametrize("verb", ["rollout", "watch", "train", "bench", "demo"])
def test_every_verb_has_help(verb, capsys):
    code, out, _ = run([verb, "--help"], capsys)
    assert code == 0 and "usage" in out.lower()


def test_rollout_help_lists_world_options(capsys):
    code, out, _ = run(["rollout", "life", "--help"], capsys)
    assert code == 0 and "--rule" in out and "--boundary" in out


@pytest.mark.parametrize(
    "argv,kind",
    [
        (["rollout", "lifee"], "world"),
        (["train", "nope"], "experiment"),
        (["bench", "nope"], "benchmark"),
        (["watch", "nope"], "world or experiment"),
    ],
)
def test_unknown_names_list_the_known_ones(argv, kind, capsys):
    code, _, err = run(argv, capsys)
    assert code == 2
    assert f"unknown {kind}" in err
    assert "life" in err  # the known names are listed


def test_rollout_life_runs_and_reports_metrics(capsys):
    code, out, _ = run(["rollout", "life", "--steps", "20", "--size", "64"], capsys)
    assert code == 0 and "population" in out and "steps_per_s" in out


def test_rollout_rgb_array(capsys):
    code, out, _ = run(
        ["rollout", "highlife", "--steps", "5", "--size", "64", "--render", "rgb_array"], capsys
    )
    assert code == 0 and "frames" in out


def test_rollout_bad_world_option_is_a_clear_error(capsys):
    code, _, err = run(["rollout", "life", "--rule", "B9/S23"], capsys)
    assert code == 2 and "B9/S23" in err


def test_rollout_unknown_policy(capsys):
    code, _, err = run(["rollout", "life", "--steps", "1", "--policy", "greedy"], capsys)
    assert code == 2 and "no policy 'greedy'" in err


def test_rollout_human_without_display_points_to_record(capsys):
    code, _, err = run(["rollout", "life", "--render", "human"], capsys)
    assert code == 2 and "--record" in err


def test_rollout_record_gif(tmp_path, capsys):
    path = tmp_path / "life.gif"
    code, _, _ = run(
        ["rollout", "life", "--steps", "6", "--size", "64", "--record", str(path)], capsys
    )
    assert code == 0 and path.stat().st_size > 0


def test_watch_without_display_records_instead(tmp_path, capsys):
    path = tmp_path / "lenia.gif"
    code, out, _ = run(
        ["watch", "lenia", "--steps", "4", "--record", str(path), "--size", "64", "--radius", "9"],
        capsys,
    )
    assert code == 0 and "no display" in out and path.exists()


def test_train_life_soup_writes_a_run_directory(run_root, capsys):
    code, out, _ = run(
        [
            "train",
            "life-soup",
            "--steps",
            "30",
            "--size",
            "64",
            "--batch",
            "2",
            "--rules",
            "life",
            "seeds",
            "--out",
            str(run_root),
        ],
        capsys,
    )
    assert code == 0 and "B3/S23" in out
    (run_dir,) = (run_root / "life-soup").iterdir()
    assert (run_dir / "config.json").exists()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    keys = set().union(*records)
    assert {"emergence/B3S23/density", "emergence/B2S/entropy"} <= keys
    assert list((run_dir / "tb").iterdir())  # TensorBoard events
    checkpoint = run_dir / "checkpoints" / "final.pt"
    assert (run_dir / "media" / "metrics.png").exists()

    # the checkpoint opens in the watcher (recorded: no display here)
    gif = run_root / "watch.gif"
    code, out, _ = run(
        [
            "watch",
            "life-soup",
            "--checkpoint",
            str(checkpoint),
            "--steps",
            "3",
            "--record",
            str(gif),
        ],
        capsys,
    )
    assert code == 0 and gif.exists()


def test_train_bad_rule_is_refused_before_work(run_root, capsys):
    code, _, err = run(["train", "life-soup", "--rules", "B3/S2x"], capsys)
    assert code == 2 and "B3/S2x" in err


def test_bench_life_writes_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    code, out, _ = run(
        [
            "bench",
            "life",
            "--json",
            str(path),
            "--sizes",
            "128",
            "--min-time",
            "0.01",
            "--repeats",
            "1",
        ],
        capsys,
    )
    assert code == 0 and "packed/NumPy" in out
    (record,) = json.loads(path.read_text())["results"]
    assert set(record) >= {"size", "cells_per_s", "numpy_cells_per_s", "ratio"}
    assert record["size"] == 128 and record["cells_per_s"] > 0 and record["ratio"] > 0


def test_bench_grid_writes_json_rows(tmp_path, capsys):
    path = tmp_path / "grid.json"
    argv = ["bench", "grid", "--json", str(path), "--agents", "400", "--pettingzoo-agents", "400"]
    code, out, _ = run(
        [*argv, "--seconds", "0.05", "--repeats", "1", "--threads", "1", "--probe-mb", "8"], capsys
    )
    assert code == 0 and "MAgent2 not run" in out
    rows = json.loads(path.read_text())["results"]
    assert [(r["api"], r["agents"]) for r in rows] == [("array", 400), ("pettingzoo", 400)]
    for r in rows:
        assert set(r) >= {"agents", "agent_steps_per_s", "anchor_agent_steps_per_s", "ratio"}
        assert r["agent_steps_per_s"] > 0 and r["peak_rss_mb"] > 0 and r["ratio"] is None


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--agents", "10,x"], "'x' is not an agent count"),
        (["--anchor-python", "/nonexistent/python"], "does not exist"),
        (["--repeats", "0"], "repeats must be >= 1"),
    ],
)
def test_bench_grid_refuses_bad_options(argv, match, capsys):
    code, _, err = run(["bench", "grid", "--agents", "400", *argv], capsys)
    assert code == 2 and match in " ".join(err.split())


def test_demo_records_without_display(run_root, capsys):
    argv = ["demo", "--steps", "6", "--agents", "400", "--out", str(run_root)]
    code, out, _ = run(argv, capsys)
    assert code == 0 and "no display" in out and "kill ratio" in out
    (run_dir,) = (run_root / "demo").iterdir()
    for name in ("demo.gif", "demo.mp4", "last_frame.png", "metrics.png"):
        assert (run_dir / "media" / name).stat().st_size > 0
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 2, 4, 6]
    assert records[0]["emergence/team0_size"] == 200 and "emergence/front_line" in records[-1]


def test_demo_refuses_bad_options(capsys):
    code, _, err = run(["demo", "--agents", "1"], capsys)
    assert code == 2 and "--agents must be an integer >= 2, got 1" in err


def test_rollout_battle_records_with_policy_and_overlay(tmp_path, capsys):
    path = tmp_path / "battle.gif"
    argv = ["rollout", "battle", "--agents", "200", "--policy", "greedy-vs-random"]
    code, out, _ = run([*argv, "--steps", "4", "--record", str(path)], capsys)
    assert code == 0 and path.stat().st_size > 0 and "red_alive" in out


def test_rollout_battle_refuses_unknown_policy_and_small_map(capsys):
    code, _, err = run(["rollout", "battle", "--policy", "nope"], capsys)
    assert code == 2 and "greedy-vs-random" in err
    code, _, err = run(["rollout", "battle", "--map-size", "5", "--agents-per-team", "30"], capsys)
    assert code != 0


def test_rollout_battle_v4_teams_by_name(capsys):
    argv = ["rollout", "battle_v4", "--red", "battle-selfplay", "--blue", "greedy"]
    code, out, _ = run([*argv, "--map-size", "20", "--steps", "3"], capsys)
    assert code == 0 and "red_alive" in out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["watch", "battle_v4", "--red", "nope"], "unknown team 'nope'"),
        (["watch", "life", "--red", "greedy"], "--red/--blue are for battle_v4"),
        (["rollout", "battle_v4", "--policy", "greedy", "--blue", "random"], "not both"),
        (["watch", "battle-selfplay", "--blue", "random"], "--red/--blue are for battle_v4"),
    ],
)
def test_teams_refuse_bad_use_in_one_line(argv, expected, capsys):
    code, _, err = run(argv, capsys)
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1


def test_console_script_is_installed():
    result = subprocess.run(
        [sys.executable, "-m", "colonylab.runs.cli", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "colony" in result.stdout


def test_rollout_malformed_rle_reports_line_and_column(tmp_path, capsys):
    path = tmp_path / "bad.rle"
    path.write_text("x = 3, y = 3\nbo$2bq$3o!\n")
    code, _, err = run(["rollout", "life", "--pattern", str(path), "--steps", "1"], capsys)
    assert code == 2 and "line 2, column 6" in err


def test_rollout_unknown_pattern_lists_known(capsys):
    code, _, err = run(["rollout", "life", "--pattern", "glidr", "--steps", "1"], capsys)
    assert code == 2 and "gosper-glider-gun" in err


# -- errors are one line ----------------------------------------------------------------------


def assert_one_line_error(code, err, *named):
    """Exit status 2; stderr is exactly one line, ``error: ...``, naming every ``named``."""
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    assert lines[0].startswith("error: "), err
    for value in named:
        assert value in lines[0], f"{value!r} not named in: {lines[0]}"
    assert code == 2, err


@pytest.fixture
def bad_files(tmp_path):
    """Files a user might wrongly pass: text, truncated, corrupt tables and patterns."""
    import torch

    from colonylab.runs.common.checkpoint import make_checkpoint, save_checkpoint

    files = {"tmp": tmp_path}
    (tmp_path / "notes.txt").write_text("these are my notes, not a checkpoint\n")
    (tmp_path / "bad.csv").write_text("garbage,1,2\n3,4,5\n")
    (tmp_path / "bad.rle").write_text("x = 3, y = 3\nbo$2bq$3o!\n")
    (tmp_path / "bad.png").write_text("not an image")
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    for name in ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1"):
        (mnist / f"{name}-ubyte").write_bytes(b"junk")
    real = tmp_path / "real.pt"
    torch.save({"weights": torch.zeros(64, 64)}, real)
    (tmp_path / "truncated.pt").write_bytes(real.read_bytes()[:100])
    save_checkpoint(tmp_path / "other-kind.pt", make_checkpoint("cartpole-pso"))
    (tmp_path / "empty_run").mkdir()
    corrupt_run = tmp_path / "corrupt_run" / "checkpoints"
    corrupt_run.mkdir(parents=True)
    (corrupt_run / "latest.pt").write_text("half a checkpoint")
    other_run = tmp_path / "other_run" / "checkpoints"
    other_run.mkdir(parents=True)
    save_checkpoint(other_run / "latest.pt", make_checkpoint("cartpole-pso"))
    return files


# (verb, argv, substrings the one error line must contain); {tmp} is a fresh directory
# holding the files of ``bad_files``. Tiny sizes everywhere: a refusal must come before work.
BAD_INPUTS = [
    ("list", ["list", "extra"], ["extra"]),
    ("verb", ["rollot", "life"], ["'rollot'", "rollout"]),
    ("rollout", ["rollout", "battle", "--steps", "-1"], ["--steps", ">= 1", "-1"]),
    ("rollout", ["rollout", "life", "--steps", "0"], ["--steps", "got 0"]),
    ("rollout", ["rollout", "life", "--steps", "ten"], ["--steps", "'ten'"]),
    ("rollout", ["rollout", "life", "--seed", "-3"], ["--seed", "-3"]),
    ("rollout", ["rollout", "life", "--seed", "abc"], ["--seed", "'abc'"]),
    ("rollout", ["rollout", "life", "--fps", "0"], ["--fps", "got 0"]),
    ("rollout", ["rollout", "life", "--render", "vr"], ["--render", "'vr'", "rgb_array"]),
    ("rollout", ["rollout", "life", "--record", "{tmp}/out.txt"], ["out.txt", ".gif"]),
    ("rollout", ["rollout", "lifee"], ["'lifee'", "life"]),
    ("rollout", ["rollout"], ["world"]),
    ("rollout", ["rollout", "life", "--size", "1000000"], ["1000000 x 1000000", "GiB"]),
    ("rollout", ["rollout", "life", "--size", "-5"], ["-5"]),
    ("rollout", ["rollout", "life", "--size", "abc"], ["--size", "'abc'"]),
    ("rollout", ["rollout", "life", "--boundary", "moebius"], ["--boundary", "'moebius'"]),
    ("rollout", ["rollout", "life", "--no-such-option", "3"], ["--no-such-option"]),
    ("rollout", ["rollout", "life", "--rule", "B9/S23"], ["B9/S23"]),
    ("rollout", ["rollout", "life", "--pattern", "glidr"], ["glidr"]),
    ("rollout", ["rollout", "life", "--pattern", "{tmp}/bad.rle"], ["line 2, column 6"]),
    ("rollout", ["rollout", "battle", "--agents", "20", "--policy", "nope"], ["'nope'"]),
    ("watch", ["watch", "life", "--steps", "0"], ["--steps", "got 0"]),
    ("watch", ["watch", "life", "--seed", "-1"], ["--seed", "-1"]),
    ("watch", ["watch", "nope"], ["'nope'", "life"]),
    ("watch", ["watch", "life", "--size", "-5", "--steps", "1"], ["-5"]),
    ("watch", ["watch", "life", "--checkpoint", "x.pt"], ["--checkpoint"]),
    (
        "watch",
        ["watch", "life-soup", "--checkpoint", "{tmp}/missing.pt", "--size", "64"],
        ["missing.pt"],
    ),
    (
        "watch",
        ["watch", "life-soup", "--checkpoint", "{tmp}/notes.txt", "--size", "64"],
        ["notes.txt", "not a readable checkpoint"],
    ),
    ("train", ["train", "nope"], ["'nope'", "life-soup"]),
    ("train", ["train", "life-soup", "--steps", "-1"], ["steps", "-1"]),
    ("train", ["train", "life-soup", "--steps", "0"], ["steps", "0"]),
    ("train", ["train", "life-soup", "--rules", "B3/S2x"], ["B3/S2x"]),
    ("train", ["train", "life-soup", "--size", "1000000"], ["1000000 x 1000000", "GiB"]),
    ("train", ["train", "life-soup", "--bogus"], ["--bogus"]),
    (
        "train",
        ["train", "jacobs1991", "--data", "{tmp}/missing.csv", "--out", "{tmp}/out"],
        ["missing.csv"],
    ),
    (
        "train",
        ["train", "jacobs1991", "--data", "{tmp}/bad.csv", "--out", "{tmp}/out"],
        ["bad.csv"],
    ),
    (
        "train",
        ["train", "nca-grow", "--target", "{tmp}/missing.png", "--out", "{tmp}/out"],
        ["missing.png"],
    ),
    (
        "train",
        ["train", "nca-grow", "--target", "{tmp}/bad.png", "--out", "{tmp}/out"],
        ["bad.png"],
    ),
    ("train", ["train", "nca-digits", "--mnist", "{tmp}/no-mnist"], ["--mnist", "no-mnist"]),
    (
        "train",
        ["train", "nca-digits", "--mnist", "{tmp}/mnist", "--out", "{tmp}/out"],
        ["train-images-idx3-ubyte", "IDX"],
    ),
    ("train", ["train", "life-soup", "--resume", "{tmp}/empty_run"], ["life-soup", "resume"]),
    ("eval", ["eval", "nope"], ["'nope'", "nca-grow"]),
    ("eval", ["eval", "life-soup"], ["'life-soup'", "nca-grow"]),
    ("eval", ["eval", "nca-grow", "--checkpoint", "{tmp}/notes.txt"], ["notes.txt"]),
    ("eval", ["eval", "nca-grow", "--checkpoint", "{tmp}/missing.pt"], ["missing.pt"]),
    ("eval", ["eval", "nca-grow", "--checkpoint", "{tmp}/truncated.pt"], ["truncated.pt"]),
    ("eval", ["eval", "nca-grow", "--checkpoint", "{tmp}/other-kind.pt"], ["other-kind.pt"]),
    ("eval", ["eval", "nca-grow", "--checkpoint", "{tmp}"], ["{tmp}", "is a directory"]),
    ("eval", ["eval", "nca-grow", "--eval-batch", "0"], ["eval"]),
    ("bench", ["bench", "nope"], ["'nope'", "life"]),
    ("bench", ["bench", "life", "--sizes", "-5", "--repeats", "1"], ["-5"]),
    ("bench", ["bench", "grid", "--agents", "400", "--repeats", "0"], ["repeats", "0"]),
    ("bench", ["bench", "life", "--nonsense", "1"], ["--nonsense"]),
    ("demo", ["demo", "--agents", "1"], ["--agents", "got 1"]),
    ("demo", ["demo", "--steps", "-1"], ["--steps", "-1"]),
    ("demo", ["demo", "--steps", "0"], ["--steps", "got 0"]),
    ("demo", ["demo", "--seed", "-1"], ["--seed", "-1"]),
    ("demo", ["demo", "--every", "0"], ["--every", "got 0"]),
    ("demo", ["demo", "--policy", "greedy-vs-nope"], ["--policy", "'greedy-vs-nope'"]),
    ("demo", ["demo", "--agents", "10000000000", "--record", "True"], ["GiB"]),
]


@pytest.mark.parametrize(
    "verb,argv,named", BAD_INPUTS, ids=[f"{v}:{' '.join(a[1:])}" for v, a, _ in BAD_INPUTS]
)
def test_bad_input_is_one_error_line(verb, argv, named, bad_files, run_root, capsys):
    tmp = str(bad_files["tmp"])
    argv = [a.replace("{tmp}", tmp) for a in argv]
    code, _, err = run(argv, capsys)
    assert_one_line_error(code, err, *[n.replace("{tmp}", tmp) for n in named])


# -- a fake experiment: what the CLI does with what main() raises, and --resume --------------


@dataclasses.dataclass(frozen=True)
class FakeConfig:
    """A fake experiment for the CLI's tests."""

    steps: int = 3
    """Steps to train."""
    lr: float = 0.1
    """Learning rate."""
    threads: int | None = None
    """Torch threads."""
    seed: int = 0
    """Seed."""

    def __post_init__(self) -> None:
        check_int("--steps", self.steps, 1)


def _fake_module(name: str, *, resumable: bool) -> types.ModuleType:
    module = types.ModuleType(name)
    module.Config = FakeConfig
    module.calls = []
    module.raises = None

    if resumable:

        def main(cfg, resume=None):
            module.calls.append((cfg, resume))
            if module.raises is not None:
                raise module.raises
    else:

        def main(cfg):
            module.calls.append((cfg, None))
            if module.raises is not None:
                raise module.raises

    def evaluate(cfg, checkpoint=None):
        from colonylab.runs.common.checkpoint import load_checkpoint

        load_checkpoint(checkpoint, "fake")
        return {"score": 1.0}

    module.main = main
    module.evaluate = evaluate
    return module


@pytest.fixture
def fake(monkeypatch):
    """Experiments ``fake`` (main takes resume) and ``fake-old`` (it does not)."""
    modules = {}
    for exp, resumable in (("fake", True), ("fake-old", False)):
        module_name = f"experiments._cli_{exp.replace('-', '_')}"
        module = _fake_module(f"colonylab.runs.{module_name}", resumable=resumable)
        monkeypatch.setitem(sys.modules, module.__name__, module)
        spec = registry.RunSpec(exp, module_name, f"a fake experiment ({exp})", evaluable=True)
        monkeypatch.setitem(registry.EXPERIMENTS, exp, spec)
        modules[exp] = module
    return modules


@pytest.fixture
def fake_run(tmp_path):
    """A run directory of ``fake`` whose latest checkpoint saved steps=7, lr=0.5."""
    from colonylab.runs.common.checkpoint import make_checkpoint, save_checkpoint

    run_dir = tmp_path / "fake-run"
    cfg = FakeConfig(steps=7, lr=0.5)
    save_checkpoint(run_dir / "checkpoints" / "latest.pt", make_checkpoint("fake", config=cfg))
    return run_dir


@pytest.mark.parametrize(
    "raised,named",
    [
        (ValueError("--lr must be > 0, got -1\nsecond line"), ["--lr", "-1 second line"]),
        (FileNotFoundError("no vowel table at 'v.csv'"), ["'v.csv'"]),
        (MemoryError("Unable to allocate 8.00 TiB for an array"), ["out of memory", "8.00 TiB"]),
        (MemoryError(), ["out of memory"]),
        (PermissionError(13, "Permission denied", "/root/x.json"), ["/root/x.json"]),
        (ModuleNotFoundError("No module named 'mujoco'", name="mujoco"), ["colonylab[mujoco]"]),
    ],
    ids=["ValueError", "FileNotFoundError", "MemoryError", "bare-MemoryError", "OSError", "extra"],
)
def test_user_errors_raised_inside_an_experiment_are_one_line(fake, raised, named, capsys):
    fake["fake"].raises = raised
    code, _, err = run(["train", "fake"], capsys)
    assert_one_line_error(code, err, *named)


def test_a_bug_inside_an_experiment_shows_its_traceback(fake, capsys):
    fake["fake"].raises = AttributeError("'NoneType' object has no attribute 'step'")
    code, _, err = run(["train", "fake"], capsys)
    assert code == 1
    assert "Traceback" in err and "AttributeError" in err
    last = err.splitlines()[-1]
    assert last.startswith("error: unexpected AttributeError") and "report" in last


@pytest.mark.parametrize("how", ["flag-first", "flag-last", "env"])
def test_debug_reraises(fake, how, monkeypatch, capsys):
    fake["fake"].raises = ValueError("bad value 42")
    argv = ["train", "fake"]
    if how == "flag-first":
        argv = ["--debug", *argv]
    elif how == "flag-last":
        argv = [*argv, "--debug"]
    else:
        monkeypatch.setenv("COLONY_DEBUG", "1")
    with pytest.raises(ValueError, match="bad value 42"):
        main(argv)
    with pytest.raises(Exception, match="--steps must be an integer >= 1"):
        main([*argv, "--steps", "0"])  # parse-time refusals too


def test_debug_off_by_default(fake, monkeypatch, capsys):
    monkeypatch.setenv("COLONY_DEBUG", "0")
    fake["fake"].raises = ValueError("bad value 42")
    assert_one_line_error(main(["train", "fake"]), capsys.readouterr().err, "bad value 42")


def test_ctrl_c_during_train_exits_130_with_one_line(fake, fake_run, capsys):
    fake["fake"].raises = KeyboardInterrupt()
    code, _, err = run(["train", "fake"], capsys)
    assert code == 130
    (line,) = err.splitlines()
    assert line.startswith("interrupted") and "colony train fake --resume" in line
    code, _, err = run(["train", "fake", "--resume", str(fake_run)], capsys)
    assert code == 130 and str(fake_run) in err and len(err.splitlines()) == 1
    fake["fake-old"].raises = KeyboardInterrupt()
    code, _, err = run(["train", "fake-old"], capsys)
    assert code == 130 and err.strip() == "interrupted"


def test_train_resume_calls_main_with_the_saved_config(fake, fake_run, capsys):
    code, _, err = run(["train", "fake", "--resume", str(fake_run)], capsys)
    assert code == 0, err
    ((cfg, resume),) = fake["fake"].calls
    assert cfg == FakeConfig(steps=7, lr=0.5) and resume == str(fake_run)


def test_train_resume_accepts_the_latest_checkpoint_file(fake, fake_run, capsys):
    path = fake_run / "checkpoints" / "latest.pt"
    code, _, err = run(["train", "fake", "--resume", str(path)], capsys)
    assert code == 0, err
    ((cfg, resume),) = fake["fake"].calls
    assert cfg.steps == 7 and resume == str(fake_run)


def test_train_resume_may_change_threads_only(fake, fake_run, capsys):
    code, _, err = run(["train", "fake", "--resume", str(fake_run), "--threads", "3"], capsys)
    assert code == 0, err
    ((cfg, _),) = fake["fake"].calls
    assert cfg == FakeConfig(steps=7, lr=0.5, threads=3)
    code, _, err = run(["train", "fake", "--resume", str(fake_run), "--steps", "9"], capsys)
    assert_one_line_error(code, err, "--steps (saved 7, given 9)", "--threads")
    code, _, err = run(["train", "fake", "--resume", str(fake_run), "--lr", "0.5"], capsys)
    assert code == 0, err  # the saved value itself changes nothing
    assert len(fake["fake"].calls) == 2


@pytest.mark.parametrize(
    "experiment,run_dir,named",
    [
        ("fake-old", "fake-run", ["'fake-old'", "cannot resume", "fake"]),
        ("fake", "missing", ["missing", "no such run directory"]),
        ("fake", "empty_run", ["empty_run", "checkpoints/latest.pt"]),
        ("fake", "corrupt_run", ["corrupt_run", "not a readable checkpoint"]),
        ("fake", "other_run", ["'cartpole-pso' checkpoint", "expected a 'fake' checkpoint"]),
        ("fake", "notes.txt", ["notes.txt", "run directory"]),
    ],
)
def test_train_resume_refusals(fake, fake_run, bad_files, experiment, run_dir, named, capsys):
    tmp = bad_files["tmp"]
    path = fake_run if run_dir == "fake-run" else tmp / run_dir
    code, _, err = run(["train", experiment, "--resume", str(path)], capsys)
    assert_one_line_error(code, err, *named)
    assert not fake[experiment].calls


def test_eval_wrong_kind_checkpoint_through_load_checkpoint(fake, bad_files, capsys):
    path = bad_files["tmp"] / "other-kind.pt"
    code, _, err = run(["eval", "fake", "--checkpoint", str(path)], capsys)
    assert_one_line_error(code, err, str(path), "'cartpole-pso'", "'fake'")


def test_tyro_errors_are_one_line_without_the_hook(monkeypatch, capsys):
    """An older tyro without the parse-error hook: its printed box is squeezed."""
    import tyro._errors

    monkeypatch.delattr(tyro._errors, "on_parse_error")
    code, _, err = run(["rollout", "life", "--boundary", "moebius"], capsys)
    assert_one_line_error(code, err, "moebius")


# -- help and list -----------------------------------------------------------------------------


def test_help_mentions_resume_evaluator_and_debug(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    for word in ("--resume", "--evaluator", "--ray-address", "--debug", "COLONY_DEBUG"):
        assert word in out, word
    for argv in (["train", "--help"], ["train", "life-soup", "--help"]):
        code, out, _ = run(argv, capsys)
        assert code == 0
        for word in ("--resume RUN_DIR", "--evaluator batched|loop|ray", "--ray-address"):
            assert word in out, word
    assert "--steps" in out  # the experiment's own options follow


def test_list_shows_resumability_and_world_ids(fake, capsys):
    from colonylab.envs import registry as world_registry

    code, out, _ = run(["list"], capsys)
    assert code == 0 and "supports" in out
    (fake_row,) = [line for line in out.splitlines() if line.startswith("│ fake ")]
    (old_row,) = [line for line in out.splitlines() if line.startswith("│ fake-old ")]
    assert "[i]" in out and "[a]" in out  # descriptions are not read as rich markup
    assert "resume" in fake_row and "resume" not in old_row and "eval" in old_row
    for spec in world_registry.WORLDS.values():
        world_id = getattr(spec, "id", None)
        if isinstance(world_id, str) and world_id and world_id != spec.name:
            assert world_id in out


# -- the real thing: Ctrl-C and --resume through the CLI on a population experiment ------------


class _InterruptAt:
    """An evaluator that raises KeyboardInterrupt (Ctrl-C) on its ``at``-th call."""

    def __init__(self, inner, at):
        self.inner, self.at, self.calls = inner, at, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, params, seed):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        out = self.inner(params, seed)
        self.last_env_steps = self.inner.last_env_steps
        return out


def test_ctrl_c_then_colony_train_resume_matches_the_full_run(tmp_path, monkeypatch, capsys):
    import torch

    from colonylab.runs.common.checkpoint import load_checkpoint

    module = registry.experiment("cartpole-pso").load()
    if not registry.accepts_resume(module.main):
        pytest.skip("cartpole-pso's main() takes no resume yet")
    flags = ["--pop-size", "8", "--episodes", "1", "--generations", "4", "--validate-episodes"]
    flags += ["1", "--stop-when-solved", "False", "--checkpoint-every", "1", "--plots", "False"]
    full_root, cut_root = tmp_path / "full", tmp_path / "cut"
    code, _, err = run(["train", "cartpole-pso", *flags, "--out", str(full_root)], capsys)
    assert code == 0, err
    build = module.make_evaluator
    monkeypatch.setattr(module, "make_evaluator", lambda *a, **k: _InterruptAt(build(*a, **k), 3))
    code, _, err = run(["train", "cartpole-pso", *flags, "--out", str(cut_root)], capsys)
    assert code == 130
    trainer_line, cli_line = err.splitlines()[-2:]
    assert trainer_line.startswith("interrupted: checkpoint at")
    monkeypatch.setattr(module, "make_evaluator", build)
    (run_dir,) = (cut_root / "cartpole-pso").iterdir()
    assert cli_line == (
        f"interrupted; 'colony train cartpole-pso --resume {run_dir}' continues from its "
        "last checkpoint"
    )
    code, _, err = run(["train", "cartpole-pso", "--resume", str(run_dir)], capsys)
    assert code == 0, err
    (full_dir,) = (full_root / "cartpole-pso").iterdir()
    a = load_checkpoint(run_dir / "checkpoints" / "latest.pt", "cartpole-pso")
    b = load_checkpoint(full_dir / "checkpoints" / "latest.pt", "cartpole-pso")
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in b["state_dict"])
