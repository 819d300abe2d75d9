"""Smoke tests of every ``colony`` verb, run in-process through ``main(argv)``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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
    code, out, _ = run([*argv, "--seconds", "0.05", "--repeats", "1"], capsys)
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
    assert code == 2 and "agents must be >= 2" in err


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
