"""Tests for ``colony bench nca`` (colonylab.runs.benchmarks.nca): tiny runs, JSON, refusals."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from colonylab.agents.nca import NCA
from colonylab.runs.benchmarks import nca as bench_nca
from colonylab.runs.benchmarks.nca import AgreementError, Config, check_agreement, main
from colonylab.runs.cli import main as cli_main
from colonylab.runs.common.checkpoint import make_checkpoint, save_checkpoint

TINY = {
    "batch": 1,
    "size": 16,
    "steps": 2,
    "repeats": 1,
    "seconds": 0.01,
    "hidden": 32,
    "threads": 1,
}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread is faster, and steady on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_tiny_run_writes_json_with_positive_ratios(tmp_path):
    path = tmp_path / "bench-nca.json"
    payload = main(Config(**TINY, synthetic=True, json=str(path)))
    data = json.loads(path.read_text())
    assert data == json.loads(json.dumps(payload))
    assert set(data) >= {"machine", "torch", "threads", "cases", "goal", "goal_met", "agreement"}
    assert (
        data["goal"] == 1.5
        and data["torch"] == torch.__version__
        and data["threads"]["ours"] == data["threads"]["baseline"] == 1
    )
    assert data["machine"]["device"] == "cpu" and data["machine"]["cores"] >= 1
    cases = {(r["case"], r["impl"]): r for r in data["cases"]}
    assert set(cases) == {
        (case, impl)
        for case in ("infer-blob", "infer-full")
        for impl in ("ours", "ours-dense", "reference")
    } | {("train", "ours"), ("train", "reference")}
    for r in data["cases"]:
        assert set(r) >= {"case", "impl", "value", "unit", "ratio_vs_reference"}
        assert r["value"] > 0 and r["ratio_vs_reference"] > 0
        assert r["unit"] == ("s/iter" if r["case"] == "train" else "steps/s")
        if r["impl"] == "reference":
            assert r["ratio_vs_reference"] == pytest.approx(1.0)
    assert cases[("infer-full", "ours")]["alive_share"] == 1.0
    assert 0.2 < cases[("infer-blob", "ours")]["alive_share"] < 0.6
    assert set(data["goal_met"]) == {"infer-blob", "infer-full", "train"}
    assert all(isinstance(v, bool) for v in data["goal_met"].values())
    diffs = data["agreement"]["max_abs_diff"]
    assert diffs and all(0 <= d <= 1e-4 for d in diffs.values())
    losses = data["train_loss"]
    assert losses["ours"] == pytest.approx(losses["reference"], rel=1e-4)


def test_checkpoint_rule_grows_the_pattern(tmp_path, capsys):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = NCA(hidden=32)
        with torch.no_grad():
            model.w2.normal_(0.0, 0.05)
    spec = {"type": "nca", **dataclasses.asdict(model.config)}
    ckpt = save_checkpoint(
        tmp_path / "rule.pt",
        make_checkpoint("nca-grow", spec=spec, state_dict=model.state_dict()),
    )
    path = tmp_path / "out.json"
    argv = ["bench", "nca", "--json", str(path), "--checkpoint", str(ckpt), "--grow-steps", "6"]
    for name, value in TINY.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    assert cli_main(argv) == 0
    out = capsys.readouterr().out
    assert "vs reference" in out and "rule.pt" in out
    data = json.loads(path.read_text())
    assert data["rule"].startswith("rule.pt")
    assert [r["case"] for r in data["cases"] if r["impl"] == "ours"] == [
        "infer-grown",
        "infer-blob",
        "infer-full",
        "train",
    ]
    assert 0 < data["alive_share"]["grown"] < 1
    # a checkpoint of another architecture is refused with the fix
    with pytest.raises(ValueError, match="--hidden 32"):
        main(Config(**{**TINY, "hidden": 64}, checkpoint=str(ckpt)))


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"batch": 0}, "--batch"),
        ({"size": 2}, "--size"),
        ({"channels": 3}, "--channels"),
        ({"steps": 0}, "--steps"),
        ({"repeats": 0}, "--repeats"),
        ({"seconds": 0.0}, "--seconds"),
        ({"threads": 0}, "--threads"),
        ({"tolerance": 0.0}, "--tolerance"),
        ({"device": "tpu"}, "--device"),
        ({"checkpoint": "x.pt", "synthetic": True}, "exclude each other"),
        ({"checkpoint": "/nonexistent/rule.pt"}, "does not exist"),
    ],
)
def test_bad_config_is_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        Config(**kw)


def test_bad_option_on_the_command_line_exits_2(capsys):
    assert cli_main(["bench", "nca", "--repeats", "0"]) == 2
    assert "--repeats must be an integer >= 1" in capsys.readouterr().err


def test_disagreeing_implementations_stop_the_benchmark(monkeypatch, capsys):
    cfg = Config(**TINY, synthetic=True)
    state = bench_nca.build_state(cfg, torch.device("cpu"))
    models = bench_nca.make_models(state, torch.device("cpu"))
    diffs = check_agreement(models, state.states, 0, 1e-4)
    assert set(diffs) == {f"{s}/{i}" for s in ("blob", "full") for i in ("ours", "ours-dense")}
    with torch.no_grad():
        models["reference"].update[0].bias.add_(0.5)  # a different computation
    with pytest.raises(AgreementError, match="disagrees with the reference"):
        check_agreement(models, state.states, 0, 1e-4)
    monkeypatch.setattr(bench_nca, "make_models", _tamper(bench_nca.make_models))
    with pytest.raises(SystemExit) as exc:
        main(Config(**{**TINY, "threads": 2}, synthetic=True))
    assert exc.value.code == 2
    assert torch.get_num_threads() == 1  # --threads held for that call only
    assert "disagrees with the reference" in capsys.readouterr().out


def _tamper(make_models):
    def tampered(state, device):
        models = make_models(state, device)
        with torch.no_grad():
            models["reference"].update[2].weight.add_(0.1)
        return models

    return tampered
