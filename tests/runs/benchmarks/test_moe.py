"""Tests for ``colony bench moe`` (colonylab.runs.benchmarks.moe): tiny runs, JSON, refusals."""

from __future__ import annotations

import json

import pytest
import torch

from colonylab.runs.benchmarks import moe as bench_moe
from colonylab.runs.benchmarks.moe import AgreementError, Config, check_agreement, main
from colonylab.runs.cli import main as cli_main

TINY = {
    "experts": (4, 8),
    "k": (1, 2),
    "tokens": 64,
    "d_model": 16,
    "d_hidden": 32,
    "repeats": 1,
    "threads": 1,
    "device": "cpu",
}
ROW_KEYS = {
    "experts",
    "k",
    "tokens_per_s",
    "loop_tokens_per_s",
    "dense_tokens_per_s",
    "ratio_vs_loop",
    "ratio_vs_dense",
}


def test_tiny_run_writes_json_with_the_required_rows(tmp_path):
    path = tmp_path / "bench-moe.json"
    payload = main(Config(**TINY, json=str(path)))
    data = json.loads(path.read_text())
    assert data == json.loads(json.dumps(payload))
    assert data["suite"] == "moe" and data["torch"] == torch.__version__
    assert (
        data["threads"]["ours"] == data["threads"]["baseline"] == 1
        and data["machine"]["device"] == "cpu"
    )
    assert [(r["experts"], r["k"]) for r in data["rows"]] == [(4, 1), (4, 2), (8, 1), (8, 2)]
    for r in data["rows"]:
        assert set(r) >= ROW_KEYS
        for key in ("tokens_per_s", "loop_tokens_per_s", "dense_tokens_per_s"):
            assert r[key] > 0
        assert r["ratio_vs_loop"] == pytest.approx(r["tokens_per_s"] / r["loop_tokens_per_s"])
        assert r["ratio_vs_dense"] == pytest.approx(r["tokens_per_s"] / r["dense_tokens_per_s"])
        assert r["capacity"] == -(-5 * 64 * r["k"] // (4 * r["experts"]))  # ceil(1.25 T k / E)
        assert 0 <= r["dropped_fraction"] < 1 and 0 <= r["padding_fraction"] < 1
        assert set(r["agreement"]) == {"output", "input_grad", "w1_grad", "router_grad"}
        assert all(0 <= d <= 1e-4 for d in r["agreement"].values())
    assert data["goals"] == {
        "ratio_vs_loop": {"min": 5.0, "experts": 64},
        "ratio_vs_dense": {"min": 0.5},
    }
    assert data["goal_met"]["ratio_vs_loop"] is None  # no 64-expert row in this run
    assert isinstance(data["goal_met"]["ratio_vs_dense"], bool)
    assert torch.get_num_threads() == 1


def test_cli_help_and_a_tiny_invocation(tmp_path, capsys):
    assert cli_main(["bench", "moe", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--experts", "--k", "--tokens", "--d-model", "--d-hidden", "--repeats"):
        assert option in out
    for option in ("--threads", "--device", "--capacity-factor", "--json"):
        assert option in out
    path = tmp_path / "out.json"
    argv = ["bench", "moe", "--json", str(path), "--experts", "4", "--k", "2"]
    argv += ["--tokens", "32", "--d-model", "8", "--d-hidden", "16", "--repeats", "1"]
    argv += ["--warmup", "0", "--threads", "1", "--device", "cpu", "--capacity-factor", "None"]
    assert cli_main(argv) == 0
    out = capsys.readouterr().out
    assert "vs loop" in out and "ratio_vs_dense" in out
    data = json.loads(path.read_text())
    assert [(r["experts"], r["k"]) for r in data["rows"]] == [(4, 2)]
    assert data["config"]["capacity_factor"] is None
    assert data["rows"][0]["capacity"] is None and data["rows"][0]["dropped_fraction"] == 0


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"experts": ()}, "--experts"),
        ({"experts": (0,)}, "--experts"),
        ({"k": (3,), "experts": (2, 8)}, "--k 3 is larger than --experts 2"),
        ({"tokens": 0}, "--tokens"),
        ({"d_model": 0}, "--d-model"),
        ({"repeats": 0}, "--repeats"),
        ({"capacity_factor": 0.0}, "--capacity-factor"),
        ({"threads": 0}, "--threads"),
        ({"tolerance": 0.0}, "--tolerance"),
        ({"device": "tpu"}, "--device"),
    ],
)
def test_bad_config_is_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        Config(**kw)


def test_bad_option_on_the_command_line_exits_2(capsys):
    assert cli_main(["bench", "moe", "--k", "9", "--experts", "8"]) == 2
    assert "--k 9 is larger than --experts 8" in capsys.readouterr().err


def test_disagreeing_implementations_stop_the_benchmark(monkeypatch, capsys):
    cfg = Config(**TINY)
    device = torch.device("cpu")
    moe, loop, _ = bench_moe.make_layers(cfg, 4, 2, device)
    x, grad_out = bench_moe.make_inputs(cfg, device)
    diffs = check_agreement(moe, loop, x, grad_out, 0, 1e-4)
    assert all(d <= 1e-4 for d in diffs.values())
    monkeypatch.setattr(bench_moe.LoopMoE, "_dispatch", _scaled(bench_moe.LoopMoE._dispatch))
    with pytest.raises(AgreementError, match="disagrees with the loop reference on output"):
        check_agreement(moe, loop, x, grad_out, 0, 1e-4)
    with pytest.raises(SystemExit) as exc:
        main(Config(**{**TINY, "threads": 2}))
    assert exc.value.code == 2
    assert torch.get_num_threads() == 1  # --threads held for that call only
    assert "disagrees with the loop reference" in capsys.readouterr().out


def _scaled(dispatch):
    def wrong(self, x, routing):
        return 1.01 * dispatch(self, x, routing)

    return wrong
