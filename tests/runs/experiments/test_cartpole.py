"""``cartpole-pso`` / ``cartpole-pgpe`` (one experiment, ``experiments/cartpole.py``, two
registered variants): help, tiny training runs and their files, resume and Ctrl-C, the
Ray evaluator's result, the shipped checkpoints, watch, bad input."""

from __future__ import annotations

import json

import pytest
import torch

from colonylab.collective_ml.base import flatten_params
from colonylab.runs import registry
from colonylab.runs.cli import main as cli_main
from colonylab.runs.common.checkpoint import load_checkpoint
from colonylab.runs.experiments import cartpole
from colonylab.runs.experiments.cartpole import Config

TINY = dict(pop_size=8, episodes=2, generations=3, validate_episodes=4, validate_every=1)


def test_train_help_lists_the_options(capsys):
    assert cli_main(["train", "cartpole-pso", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--pop-size" in out and "--pso.topology" in out and "--validate-episodes" in out
    assert "--evaluator" in out and "--ray-address" in out and "(default: pso)" in out
    assert cli_main(["train", "cartpole-pgpe", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--pgpe.center-lr" in out and "--pgpe.optimizer" in out and "--evaluator" in out
    assert "(default: pgpe)" in out


def test_the_two_experiments_are_variants_of_one_module():
    pso, pgpe = registry.experiment("cartpole-pso"), registry.experiment("cartpole-pgpe")
    assert pso.module == pgpe.module == "experiments.cartpole"
    assert (
        pso.default_config(Config).core == "pso"
        and pso.default_config(Config).experiment == "cartpole-pso"
    )
    assert pgpe.default_config(Config) == Config(core="pgpe")


@pytest.mark.parametrize("core", ["pso", "pgpe"])
def test_tiny_training_run_writes_its_files(core, run_root):
    cfg = Config(core=core, **TINY, seed=1, out=str(run_root))
    result = cartpole.main(cfg)
    name, experiment = f"cartpole_{core}", f"cartpole-{core}"
    (run,) = (run_root / experiment).iterdir()
    for rel in ("config.json", "metrics.jsonl", f"checkpoints/{name}.pt", "media/training.png"):
        assert (run / rel).is_file(), rel
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == result.generations and "charts/validation" in records[0]
    ckpt = load_checkpoint(run / f"checkpoints/{name}.pt", experiment)
    assert ckpt["config"]["pop_size"] == 8 and ckpt["spec"]["type"] == "mlp"
    assert ckpt["config"]["core"] == core and isinstance(ckpt["config"][core], dict)
    assert ckpt["provenance"]["command"].startswith(f"colony train {experiment} ")
    assert "--pop-size 8" in ckpt["provenance"]["command"]
    assert "--core" not in ckpt["provenance"]["command"]  # the variant's own default
    assert ckpt["trainer"]["core"]["kind"] == core.upper()
    policy, _ = cartpole.load_policy(run / f"checkpoints/{name}.pt", core)
    assert policy(torch.zeros(3, 4)).shape == (3, 2)
    assert torch.equal(flatten_params(policy), result.params)
    assert result.score > 0 and result.env_steps > 0
    evaluated = cartpole.evaluate(
        Config(core=core, eval_episodes=2), str(run / f"checkpoints/{name}.pt")
    )
    assert evaluated["episodes"] == 2 and evaluated["command"] == ckpt["provenance"]["command"]


def test_seeded_training_is_reproducible(run_root):
    cfg = Config(**TINY, seed=3, out=str(run_root), plots=False)
    a, b = cartpole.main(cfg), cartpole.main(cfg)
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


@pytest.mark.parametrize("core", ["pgpe", "pso"])
def test_ctrl_c_then_resume_is_bit_identical(core, tmp_path, monkeypatch, capsys):
    """G generations in one go == Ctrl-C after G/2 + ``main(cfg, resume=run_dir)``: the
    same final params, checkpoint and metrics.jsonl (times aside)."""
    module, experiment = cartpole, f"cartpole-{core}"
    cfg = Config(
        core=core, pop_size=8, episodes=2, generations=6, validate_episodes=4, validate_every=2,
        stop_when_solved=False, checkpoint_every=2, plots=False,
    )  # fmt: skip
    full = module.main(Config(**{**cfg.__dict__, "out": str(tmp_path / "full")}))
    cut = Config(**{**cfg.__dict__, "out": str(tmp_path / "cut")})
    build = module.make_evaluator
    monkeypatch.setattr(module, "make_evaluator", lambda *a, **k: _Interrupting(build(*a, **k), 4))
    with pytest.raises(KeyboardInterrupt):
        module.main(cut)
    (run,) = (tmp_path / "cut" / experiment).iterdir()
    assert "interrupted: checkpoint at" in capsys.readouterr().err
    latest = load_checkpoint(run / "checkpoints" / "latest.pt", experiment)
    assert latest["trainer"]["generation"] == 3  # the last complete generation
    policy, _ = module.load_policy(run / "checkpoints" / "latest.pt", core)  # loadable
    assert policy(torch.zeros(1, 4)).shape == (1, 2)
    monkeypatch.setattr(module, "make_evaluator", build)
    resumed = module.main(cut, resume=str(run))
    assert torch.equal(resumed.params, full.params) and resumed.score == full.score
    (full_run,) = (tmp_path / "full" / experiment).iterdir()
    assert _metrics(run) == _metrics(full_run) and len(_metrics(run)) == 6
    name = cartpole.shipped(core).name
    a = load_checkpoint(run / "checkpoints" / name)["state_dict"]
    b = load_checkpoint(full_run / "checkpoints" / name)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in b)


def test_ray_evaluator_gives_the_in_process_result(tmp_path):
    ray = pytest.importorskip("ray")
    cfg = dict(TINY, generations=2, plots=False, stop_when_solved=False)
    local = cartpole.main(Config(**cfg, out=str(tmp_path / "a")))
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = cartpole.main(Config(**cfg, evaluator="ray", out=str(tmp_path / "b")))
    finally:
        if started:
            ray.shutdown()
    assert torch.equal(remote.params, local.params)
    assert _untimed(remote.history) == _untimed(local.history)


@pytest.mark.parametrize("core", ["pso", "pgpe"])
def test_shipped_checkpoint_solves_gymnasium_cartpole(core, tmp_path):
    """Re-evaluates the shipped checkpoint (headline: 500.0 over 100 episodes)."""
    path = tmp_path / "eval.json"
    experiment = f"cartpole-{core}"
    argv = ["eval", experiment, "--eval-episodes", "5", "--json", str(path)]
    assert cli_main(argv) == 0
    data = json.loads(path.read_text())
    assert data["episodes"] == 5 and data["solved"] is True
    assert data["mean_return"] == pytest.approx(500.0, abs=25)
    assert data["env"] == "gymnasium CartPole-v1"
    assert data["command"] == f"colony train {experiment}"
    assert data["checkpoint"] == str(cartpole.shipped(core))
    ckpt = load_checkpoint(cartpole.shipped(core), experiment)
    assert ckpt["provenance"]["metrics"]["solved"] is True and ckpt["provenance"]["commit"]


def test_eval_refuses_a_checkpoint_of_the_other_experiment(capsys):
    code = cli_main(["eval", "cartpole-pso", "--checkpoint", str(cartpole.shipped("pgpe"))])
    assert code != 0
    assert "cartpole-pgpe" in capsys.readouterr().err


def test_watch_world_plays_the_policy():
    world = cartpole.watch(Config(core="pgpe", watch_envs=4), None)
    for _ in range(50):
        world.step()
    assert world.episodes_finished == 0  # the solved policy keeps every cart up
    assert world.render_rgb().shape == (320, 480, 3)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: cartpole.PSOOptions(topology="nope"), "--pso.topology"),
        (lambda: Config(pop_size=1), "pop-size"),
        (lambda: Config(core="pgpe", pop_size=7), "even"),
        (lambda: cartpole.PGPEOptions(optimizer="rmsprop"), "--pgpe.optimizer"),
        (lambda: Config(solved_return=600.0), "solved-return"),
        (lambda: Config(evaluator="mpi"), "evaluator"),
        (lambda: Config(core="pgpe", ray_address="10.0.0.1:6379"), "ray-address"),
        (lambda: Config(core="cmaes"), "--core"),
    ],
)
def test_bad_config_is_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_options_of_the_other_core_do_not_constrain_it():
    assert Config(core="pso", pop_size=7).pop_size == 7  # odd is fine for PSO
    assert Config(core="pgpe", pop_size=2, pso=cartpole.PSOOptions(topology="ring"))


def test_cli_flags_reach_the_nested_core_options(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(cartpole, "main", lambda cfg, resume=None: seen.append(cfg))
    argv = ["train", "cartpole-pgpe", "--pgpe.center-lr", "0.1", "--out", str(tmp_path)]
    assert cli_main(argv) == 0
    assert cli_main(["train", "cartpole-pso", "--pso.topology", "gbest"]) == 0
    assert seen[0].core == "pgpe" and seen[0].pgpe.center_lr == 0.1
    assert seen[1].core == "pso" and seen[1].pso.topology == "gbest"


def test_resume_takes_the_variant_of_a_config_saved_without_core(tmp_path):
    """``colony train cartpole-pgpe --resume`` starts from the variant's defaults, so a
    checkpoint whose config lacks ``core`` still resumes as PGPE."""
    from colonylab.runs.cli import _resume_config
    from colonylab.runs.common.checkpoint import make_checkpoint, save_checkpoint

    checkpoints = tmp_path / "run" / "checkpoints"
    checkpoints.mkdir(parents=True)
    plain = {"pop_size": 8, "pgpe": {"center_lr": 0.1}}
    save_checkpoint(checkpoints / "latest.pt", make_checkpoint("cartpole-pgpe", config=plain))
    cfg, run_dir = _resume_config("cartpole-pgpe", cartpole, str(tmp_path / "run"), [], "p")
    assert cfg.core == "pgpe" and cfg.pgpe.center_lr == 0.1 and cfg.pop_size == 8
