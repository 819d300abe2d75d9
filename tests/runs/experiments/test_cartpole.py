"""``cartpole-pso`` / ``cartpole-pgpe``: help, tiny training runs and their files, resume
and Ctrl-C, the Ray evaluator's result, the shipped checkpoints, watch, bad input."""

from __future__ import annotations

import json

import pytest
import torch

from colonylab.collective_ml.base import flatten_params
from colonylab.runs.cli import main as cli_main
from colonylab.runs.common.checkpoint import load_checkpoint
from colonylab.runs.experiments import cartpole_pgpe, cartpole_pso

TINY = dict(pop_size=8, episodes=2, generations=3, validate_episodes=4, validate_every=1)


def test_train_help_lists_the_options(capsys):
    assert cli_main(["train", "cartpole-pso", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--pop-size" in out and "--topology" in out and "--validate-episodes" in out
    assert "--evaluator" in out and "--ray-address" in out
    assert cli_main(["train", "cartpole-pgpe", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--center-lr" in out and "--optimizer" in out and "--evaluator" in out


@pytest.mark.parametrize(
    "module,name", [(cartpole_pso, "cartpole_pso"), (cartpole_pgpe, "cartpole_pgpe")]
)
def test_tiny_training_run_writes_its_files(module, name, run_root):
    cfg = module.Config(**TINY, seed=1, out=str(run_root))
    result = module.main(cfg)
    (run,) = (run_root / module.EXPERIMENT).iterdir()
    for rel in ("config.json", "metrics.jsonl", f"checkpoints/{name}.pt", "media/training.png"):
        assert (run / rel).is_file(), rel
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == result.generations and "charts/validation" in records[0]
    ckpt = load_checkpoint(run / f"checkpoints/{name}.pt", module.EXPERIMENT)
    assert ckpt["config"]["pop_size"] == 8 and ckpt["spec"]["type"] == "mlp"
    assert ckpt["provenance"]["command"].startswith(f"colony train {module.EXPERIMENT} ")
    assert "--pop-size 8" in ckpt["provenance"]["command"]
    assert ckpt["trainer"]["core"]["kind"] in ("PSO", "PGPE")
    policy, _ = module.load_policy(run / f"checkpoints/{name}.pt")
    assert policy(torch.zeros(3, 4)).shape == (3, 2)
    assert torch.equal(flatten_params(policy), result.params)
    assert result.score > 0 and result.env_steps > 0
    evaluated = module.evaluate(module.Config(eval_episodes=2), str(run / f"checkpoints/{name}.pt"))
    assert evaluated["episodes"] == 2 and evaluated["command"] == ckpt["provenance"]["command"]


def test_seeded_training_is_reproducible(run_root):
    cfg = cartpole_pso.Config(**TINY, seed=3, out=str(run_root), plots=False)
    a, b = cartpole_pso.main(cfg), cartpole_pso.main(cfg)
    assert torch.equal(a.params, b.params) and _untimed(a.history) == _untimed(b.history)


def _untimed(records):
    return [{k: v for k, v in r.items() if k not in ("time", "charts/seconds")} for r in records]


def _metrics(run):
    return _untimed(json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines())


class _Interrupting:
    """An evaluator that raises KeyboardInterrupt (a Ctrl-C) at its ``at``-th call."""

    def __init__(self, inner, at):
        self.inner, self.at, self.calls, self.last_env_steps = inner, at, 0, 0

    def __call__(self, params, seed=None):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        out = self.inner(params, seed)
        self.last_env_steps = self.inner.last_env_steps
        return out


@pytest.mark.parametrize("module", [cartpole_pgpe, cartpole_pso])
def test_ctrl_c_then_resume_is_bit_identical(module, tmp_path, monkeypatch, capsys):
    """G generations in one go == Ctrl-C after G/2 + ``main(cfg, resume=run_dir)``: the
    same final params, checkpoint and metrics.jsonl (times aside)."""
    cfg = module.Config(
        pop_size=8, episodes=2, generations=6, validate_episodes=4, validate_every=2,
        stop_when_solved=False, checkpoint_every=2, plots=False,
    )  # fmt: skip
    full = module.main(
        module.Config(**{**cfg.__dict__, "out": str(tmp_path / "full")})
    )  # fmt: skip
    cut = module.Config(**{**cfg.__dict__, "out": str(tmp_path / "cut")})
    build = module.make_evaluator
    monkeypatch.setattr(module, "make_evaluator", lambda *a, **k: _Interrupting(build(*a, **k), 4))
    with pytest.raises(KeyboardInterrupt):
        module.main(cut)
    (run,) = (tmp_path / "cut" / module.EXPERIMENT).iterdir()
    assert "interrupted: checkpoint at" in capsys.readouterr().err
    latest = load_checkpoint(run / "checkpoints" / "latest.pt", module.EXPERIMENT)
    assert latest["trainer"]["generation"] == 3  # the last complete generation
    policy, _ = module.load_policy(run / "checkpoints" / "latest.pt")  # loadable
    assert policy(torch.zeros(1, 4)).shape == (1, 2)
    monkeypatch.setattr(module, "make_evaluator", build)
    resumed = module.main(cut, resume=str(run))
    assert torch.equal(resumed.params, full.params) and resumed.score == full.score
    (full_run,) = (tmp_path / "full" / module.EXPERIMENT).iterdir()
    assert _metrics(run) == _metrics(full_run) and len(_metrics(run)) == 6
    name = module.SHIPPED.name
    a = load_checkpoint(run / "checkpoints" / name)["state_dict"]
    b = load_checkpoint(full_run / "checkpoints" / name)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in b)


def test_ray_evaluator_gives_the_in_process_result(tmp_path):
    ray = pytest.importorskip("ray")
    cfg = dict(TINY, generations=2, plots=False, stop_when_solved=False)
    local = cartpole_pso.main(cartpole_pso.Config(**cfg, out=str(tmp_path / "a")))
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = cartpole_pso.main(
            cartpole_pso.Config(**cfg, evaluator="ray", out=str(tmp_path / "b"))
        )
    finally:
        if started:
            ray.shutdown()
    assert torch.equal(remote.params, local.params)
    assert _untimed(remote.history) == _untimed(local.history)


@pytest.mark.parametrize("module", [cartpole_pso, cartpole_pgpe])
def test_shipped_checkpoint_solves_gymnasium_cartpole(module, tmp_path):
    """Re-evaluates the shipped checkpoint (headline: 500.0 over 100 episodes)."""
    path = tmp_path / "eval.json"
    argv = ["eval", module.EXPERIMENT, "--eval-episodes", "5", "--json", str(path)]
    assert cli_main(argv) == 0
    data = json.loads(path.read_text())
    assert data["episodes"] == 5 and data["solved"] is True
    assert data["mean_return"] == pytest.approx(500.0, abs=25)
    assert data["env"] == "gymnasium CartPole-v1"
    assert data["command"] == f"colony train {module.EXPERIMENT}"
    ckpt = load_checkpoint(module.SHIPPED, module.EXPERIMENT)
    assert ckpt["provenance"]["metrics"]["solved"] is True and ckpt["provenance"]["commit"]


def test_eval_refuses_a_checkpoint_of_the_other_experiment(capsys):
    code = cli_main(["eval", "cartpole-pso", "--checkpoint", str(cartpole_pgpe.SHIPPED)])
    assert code != 0
    assert "cartpole-pgpe" in capsys.readouterr().err


def test_watch_world_plays_the_policy():
    world = cartpole_pso.watch(cartpole_pso.Config(watch_envs=4), None)
    for _ in range(50):
        world.step()
    assert world.episodes_finished == 0  # the solved policy keeps every cart up
    assert world.render_rgb().shape == (320, 480, 3)


@pytest.mark.parametrize(
    "module,kwargs,match",
    [
        (cartpole_pso, {"topology": "nope"}, "topology"),
        (cartpole_pso, {"pop_size": 1}, "pop-size"),
        (cartpole_pgpe, {"pop_size": 7}, "even"),
        (cartpole_pgpe, {"optimizer": "rmsprop"}, "optimizer"),
        (cartpole_pso, {"solved_return": 600.0}, "solved-return"),
        (cartpole_pso, {"evaluator": "mpi"}, "evaluator"),
        (cartpole_pgpe, {"ray_address": "10.0.0.1:6379"}, "ray-address"),
    ],
)
def test_bad_config_is_refused(module, kwargs, match):
    with pytest.raises(ValueError, match=match):
        module.Config(**kwargs)
