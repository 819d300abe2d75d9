"""``cartpole-pso`` / ``cartpole-pgpe``: help, tiny training runs and their files, the
shipped checkpoints solve Gymnasium's CartPole-v1, watch, bad input."""

from __future__ import annotations

import json

import pytest
import torch

from colonylab.runs.cli import main as cli_main
from colonylab.runs.common.policies import load_policy
from colonylab.runs.experiments import cartpole_pgpe, cartpole_pso

TINY = dict(pop_size=8, episodes=2, generations=3, validate_episodes=4, validate_every=1)


def test_train_help_lists_the_options(capsys):
    assert cli_main(["train", "cartpole-pso", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--pop-size" in out and "--topology" in out and "--validate-episodes" in out
    assert cli_main(["train", "cartpole-pgpe", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--center-lr" in out and "--optimizer" in out


@pytest.mark.parametrize(
    "module,name", [(cartpole_pso, "cartpole_pso"), (cartpole_pgpe, "cartpole_pgpe")]
)
def test_tiny_training_run_writes_its_files(module, name, run_root):
    result = module.main(module.Config(**TINY, seed=1, out=str(run_root)))
    (run,) = (run_root / module.EXPERIMENT).iterdir()
    for rel in ("config.json", "metrics.jsonl", f"checkpoints/{name}.pt", "media/training.png"):
        assert (run / rel).is_file(), rel
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == result.generations and "charts/validation_mean" in records[0]
    payload = torch.load(run / f"checkpoints/{name}.pt", weights_only=True)
    assert payload["meta"]["config"]["pop_size"] == 8 and "command" in payload["meta"]
    assert payload["params"].shape == (114,) and payload["optimizer"]["kind"]
    policy, _ = load_policy(run / f"checkpoints/{name}.pt", module.EXPERIMENT)
    assert policy(torch.zeros(3, 4)).shape == (3, 2)
    assert result.validation_mean > 0 and result.env_steps > 0


def test_seeded_training_is_reproducible(run_root):
    cfg = cartpole_pso.Config(**TINY, seed=3, out=str(run_root), plots=False)
    a, b = cartpole_pso.main(cfg), cartpole_pso.main(cfg)

    def untimed(history):
        return [{k: v for k, v in h.items() if k != "charts/seconds"} for h in history]

    assert torch.equal(a.params, b.params) and untimed(a.history) == untimed(b.history)


@pytest.mark.parametrize("experiment", ["cartpole-pso", "cartpole-pgpe"])
def test_shipped_checkpoint_solves_gymnasium_cartpole(experiment, tmp_path, capsys):
    path = tmp_path / "eval.json"
    argv = ["eval", experiment, "--eval-episodes", "10", "--json", str(path)]
    assert cli_main(argv) == 0
    data = json.loads(path.read_text())
    assert data["episodes"] == 10 and data["solved"] is True
    assert data["mean_return"] >= 475 and data["std_return"] >= 0
    assert data["env"] == "gymnasium CartPole-v1" and "colony train" in data["command"]


def test_eval_refuses_a_checkpoint_of_the_other_experiment(capsys):
    from colonylab.runs.common.policies import SHIPPED

    code = cli_main(["eval", "cartpole-pso", "--checkpoint", str(SHIPPED / "cartpole_pgpe.pt")])
    assert code != 0
    assert "cartpole-pgpe" in capsys.readouterr().err


def test_watch_world_plays_the_policy():
    world = cartpole_pso.watch(cartpole_pso.Config(watch_envs=4), None)
    for _ in range(50):
        world.step()
    assert world.episodes_finished == 0  # the solved policy keeps every cart up
    assert world.render_rgb().shape == (320, 480, 3)


def test_rollout_cartpole_world_from_the_cli(capsys):
    assert cli_main(["rollout", "cartpole", "--steps", "30", "--num-envs", "4"]) == 0
    assert "running" in capsys.readouterr().out


@pytest.mark.parametrize(
    "module,kwargs,match",
    [
        (cartpole_pso, {"topology": "nope"}, "topology"),
        (cartpole_pso, {"pop_size": 1}, "pop-size"),
        (cartpole_pgpe, {"pop_size": 7}, "even"),
        (cartpole_pgpe, {"optimizer": "rmsprop"}, "optimizer"),
        (cartpole_pso, {"solved_return": 600.0}, "solved-return"),
    ],
)
def test_bad_config_is_refused(module, kwargs, match):
    with pytest.raises(ValueError, match=match):
        module.Config(**kwargs)
