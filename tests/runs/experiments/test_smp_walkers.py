"""``smp-walkers``: a tiny training run writes a checkpoint in the one format that
``colony eval`` reads back into rows {body, split, agent, mean, std, episodes}; the
rollout plays every candidate on every body with the same starts; bad options."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import numpy as np
import pytest
import torch

os.environ.setdefault("MUJOCO_GL", "egl")
pytest.importorskip("mujoco")

from colonylab.agents.modular import NormalizedModular, build_modular  # noqa: E402
from colonylab.collective_ml.base import flatten_params  # noqa: E402
from colonylab.envs.mujoco.morphology import body_names  # noqa: E402
from colonylab.runs.cli import main as cli_main  # noqa: E402
from colonylab.runs.common.stages import load_model  # noqa: E402
from colonylab.runs.experiments.smp_walkers import (  # noqa: E402
    CHECKPOINTS,
    WATCH_BODIES,
    ARSOptions,
    Config,
    Rollouts,
    TD3Options,
    WalkerTask,
    WalkerWatch,
    _NoTorque,
    evaluate_episodes,
    parse_body_weights,
    picture,
    policy_spec,
    train_bodies,
    walks,
)
from colonylab.runs.experiments.smp_walkers import main as smp_walkers_main  # noqa: E402
from colonylab.runs.experiments.smp_walkers import watch as smp_walkers_watch  # noqa: E402


def test_rollouts_give_equal_candidates_equal_returns():
    cfg = Config(pop_size=2)
    policy = build_modular(policy_spec(cfg))
    flat = flatten_params(policy)
    rollouts = Rollouts(policy, train_bodies(cfg)[:3], max_steps=8, threads=1)
    returns = rollouts.returns(torch.stack([flat, flat, flat + 0.5]), seed=3)
    assert returns.shape == (3, 3)
    np.testing.assert_array_equal(returns[0], returns[1])
    assert not np.array_equal(returns[0], returns[2])
    assert 0 < rollouts.last_env_steps <= 3 * 3 * 8


def test_alive_bonus_changes_the_training_reward_only():
    """--alive-bonus b: a training return is the real one less (1 - b) per step alive;
    validation (``returns`` without ``training``) and ``colony eval`` see the real reward."""
    cfg = Config(trainer="ars", hidden=8, message=4)
    policy = build_modular(policy_spec(cfg))
    flat = flatten_params(policy)
    params = torch.stack([flat, flat + 0.3])
    bodies = train_bodies(cfg)[:3]
    real = Rollouts(policy, bodies, max_steps=30, threads=0)
    shaped = Rollouts(policy, bodies, max_steps=30, threads=0, alive_bonus=0.25)
    r_real = real.returns(params, seed=5)
    np.testing.assert_array_equal(shaped.returns(params, seed=5), r_real)
    np.testing.assert_array_equal(real.returns(params, seed=5, training=True), r_real)
    r_train = shaped.returns(params, seed=5, training=True)
    assert (shaped.last_length > 0).all()
    np.testing.assert_allclose(r_real - r_train, 0.75 * shaped.last_length, rtol=1e-5)
    # the fitness ARS sees is the shaped one
    np.testing.assert_allclose(shaped(params, seed=5).numpy(), r_train.mean(1), rtol=1e-6)
    # TD3's task pays the bonus too; colony eval does not read it
    task = WalkerTask(bodies[:1], copies=1, max_steps=3, threads=0, seed=0, alive_bonus=0.0)
    task.reset(seed=1)
    _, reward, *_ = task.step(torch.zeros(1, 7))
    assert abs(float(reward[0])) < 0.5  # forward velocity of a still robot, no +1
    evals = [evaluate_episodes(_NoTorque(), list(bodies), Config(alive_bonus=a, eval_episodes=1,
                                                                 eval_steps=20, threads=0))
             for a in (0.0, 1.0)]  # fmt: skip
    for b in bodies:
        np.testing.assert_array_equal(evals[0][b]["return"], evals[1][b]["return"])
        assert evals[0][b]["return"][0] > 0.5 * evals[0][b]["length"][0]  # +1 per step


def test_standing_reference_and_the_walk_margin():
    cfg = Config(trainer="ars", hidden=8, message=4)
    policy = build_modular(policy_spec(cfg))
    rollouts = Rollouts(policy, train_bodies(cfg)[:2], max_steps=20, threads=0, alive_bonus=0)
    still = rollouts.standing(seed=4)
    assert still.shape == (2,) and (still > 10).all()  # real reward: +1 per step up
    standing = np.array([100.0, 100.0, 100.0, 100.0])
    returns = np.array([250.0, 199.0, 250.0, 300.0])
    distance = np.array([1.5, 3.0, 0.9, 1.0])
    assert walks(returns, distance, standing).tolist() == [True, False, False, True]


@pytest.mark.parametrize("trainer", ["td3", "pgpe", "ars"])
def test_tiny_train_then_eval(tmp_path, trainer):
    out = tmp_path / "runs"
    argv = ["train", "smp-walkers", "--trainer", trainer, "--max-steps", "5"]
    if trainer == "pgpe":
        argv += ["--pop-size", "2", "--generations", "1"]
    elif trainer == "ars":
        argv += ["--ars.directions", "2", "--ars.top", "1", "--generations", "2",
                 "--hidden", "8", "--message", "4"]  # fmt: skip
    else:
        argv += ["--td3.steps", "300", "--td3.start-steps", "100", "--td3.batch-size", "16",
                 "--td3.validate-every", "200", "--eval-steps", "5", "--hidden", "8",
                 "--message", "4"]  # fmt: skip
    assert cli_main([*argv, "--out", str(out)]) == 0
    ckpt = next(out.glob("smp-walkers/*/checkpoints/smp_walkers_smp.pt"))
    path = tmp_path / "eval.json"
    args = ["eval", "smp-walkers", "--checkpoint", str(ckpt), "--json", str(path)]
    assert cli_main([*args, "--eval-episodes", "1", "--eval-steps", "5"]) == 0
    rows = json.loads(path.read_text())["rows"]
    assert {r["agent"] for r in rows} == {"noop", "random", "smp"}
    smp = [r for r in rows if r["agent"] == "smp"]
    assert len(smp) == 12 and {r["split"] for r in smp} == {"train", "held-out"}
    assert {r["body"] for r in smp if r["split"] == "held-out"} == {
        "walker_5_main",
        "walker_6_flipped",
    }
    keys = {"body", "split", "agent", "mean", "std", "episodes", "distance", "length"}
    for r in rows:
        assert set(r) == keys and r["episodes"] == 1 and 1 <= r["length"] <= 5
    if trainer == "ars":  # the policy sees normalised states; the stats travel with it
        policy, _ = load_model(ckpt, "smp-walkers", build_modular)
        assert isinstance(policy, NormalizedModular)
        assert not torch.equal(policy.obs_std, torch.ones_like(policy.obs_std))


def test_validate_episodes_averages_several_starts(tmp_path):
    """--validate-episodes 2: each validation plays two starts per body (the first the
    one-episode validation's), logs their means and the strict (all episodes upright)
    walking count."""
    base = Config(trainer="ars", max_steps=6, hidden=8, message=4, threads=0, generations=1,
                  validate_every=1, ars=ARSOptions(directions=2, top=1))  # fmt: skip
    one = smp_walkers_main(replace(base, out=str(tmp_path / "one")))
    two = smp_walkers_main(replace(base, out=str(tmp_path / "two"), validate_episodes=2))
    rec1, rec2 = one.history[-1], two.history[-1]
    assert rec1["charts/env_steps"] == rec2["charts/env_steps"]  # training is the same
    assert "charts/walking_upright_bodies" in rec2
    assert rec2["charts/walking_upright_bodies"] <= rec2["charts/walking_bodies"]
    body = "validation/walker_7_main"
    assert rec1[body] != rec2[body]  # a mean with a second start
    with pytest.raises(ValueError, match="--validate-episodes"):
        Config(validate_episodes=0)


@pytest.mark.parametrize("select", ["walk", "upright"])
def test_select_scores_whole_bodies_then_the_mean_return(tmp_path, select):
    """--select walk / upright: a validation scores the count of bodies walking (upright:
    every validation episode up all --max-steps steps too), the mean real return / 1e4
    breaking ties."""
    cfg = Config(trainer="ars", max_steps=6, hidden=8, message=4, threads=0, generations=1,
                 validate_every=1, ars=ARSOptions(directions=2, top=1), select=select,
                 out=str(tmp_path))  # fmt: skip
    record = smp_walkers_main(cfg).history[-1]
    key = "charts/walking_upright_bodies" if select == "upright" else "charts/walking_bodies"
    expected = record[key] + record["charts/validation_return"] / 1e4
    assert record["charts/validation"] == pytest.approx(expected)


def test_eval_labels_a_checkpoint_by_its_label(tmp_path):
    """A checkpoint with ``extra["label"]`` (a second policy of one agent, e.g. the
    walking SMP) gets rows under that label on all 12 bodies."""
    out = tmp_path / "runs"
    argv = ["train", "smp-walkers", "--trainer", "ars", "--max-steps", "3", "--hidden", "8",
            "--message", "4", "--ars.directions", "2", "--ars.top", "1", "--generations",
            "1", "--out", str(out)]  # fmt: skip
    assert cli_main(argv) == 0
    ckpt_path = next(out.glob("smp-walkers/*/checkpoints/smp_walkers_smp.pt"))
    ckpt = torch.load(ckpt_path, weights_only=True)
    ckpt["extra"]["label"] = "smp (walk, B=0)"
    torch.save(ckpt, tmp_path / "walk.pt")
    path = tmp_path / "eval.json"
    args = ["eval", "smp-walkers", "--checkpoint", str(tmp_path / "walk.pt"), "--json", str(path)]
    assert cli_main([*args, "--eval-episodes", "1", "--eval-steps", "3"]) == 0
    rows = json.loads(path.read_text())["rows"]
    assert sum(r["agent"] == "smp (walk, B=0)" for r in rows) == 12


def test_ars_resume_continues_bit_identically(tmp_path):
    """3 generations in one go equal 2 + a resume to 3 (core, weights and the running
    observation statistics alike)."""
    base = Config(trainer="ars", max_steps=4, hidden=8, message=4, threads=0,
                  ars=ARSOptions(directions=2, top=1), validate_every=1, checkpoint_every=1)  # fmt: skip
    smp_walkers_main(replace(base, generations=3, out=str(tmp_path / "a")))
    smp_walkers_main(replace(base, generations=2, out=str(tmp_path / "b")))
    run_b = next((tmp_path / "b").glob("smp-walkers/*"))
    latest = run_b / "checkpoints" / "latest.pt"
    ckpt = torch.load(latest, weights_only=True)
    ckpt["trainer"]["stopped"] = ""  # as if interrupted after generation 2
    torch.save(ckpt, latest)
    smp_walkers_main(replace(base, generations=3, out=str(tmp_path / "b")), resume=str(run_b))
    a = torch.load(next((tmp_path / "a").glob("smp-walkers/*/checkpoints/latest.pt")),
                   weights_only=True)  # fmt: skip
    b = torch.load(run_b / "checkpoints" / "latest.pt", weights_only=True)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert torch.equal(a["trainer"]["core"]["state"]["center"],
                       b["trainer"]["core"]["state"]["center"])  # fmt: skip
    assert a["extra"]["obs_norm"]["count"] == b["extra"]["obs_norm"]["count"]


def test_td3_task_pads_and_keeps_final_observations():
    task = WalkerTask(("walker_2_main", "walker_7_main"), copies=1, max_steps=3, threads=0,
                      seed=0)  # fmt: skip
    obs = task.reset(seed=1)
    assert obs["obs"].shape == (2, 7, 19) and obs["mask"].sum(1).tolist() == [2, 7]
    for _ in range(3):
        nxt, reward, terminated, truncated, final = task.step(torch.zeros(2, 7))
    assert truncated.all() and not torch.equal(nxt["obs"], final["obs"])
    assert all(len(v) == 1 for v in task.recent.values())


def test_watch_switches_bodies_with_keys_and_keeps_the_policy():
    policy = build_modular(policy_spec(Config(hidden=8, message=4)))
    watch = WalkerWatch(policy, WATCH_BODIES, max_steps=50, seed=0)
    watch.step()
    assert watch.handle_key("n") and watch.body == WATCH_BODIES[1]
    assert watch.handle_key("p") and watch.body == WATCH_BODIES[0]
    assert watch.handle_key("[") and watch.body == "walker_6_flipped"  # held-out, wraps
    assert watch.handle_key("3") and watch.body == WATCH_BODIES[2]
    assert not watch.handle_key("z")
    watch.step()
    assert watch.policy is policy and watch.step_count == 2
    assert watch.metrics()["body"].startswith(WATCH_BODIES[2])
    auto = WalkerWatch(policy, WATCH_BODIES, max_steps=50, seed=0, switch_every=2)
    for _ in range(4):
        auto.step()
    assert auto.body == WATCH_BODIES[2]


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="--trainer"):
        Config(trainer="sac")
    with pytest.raises(ValueError, match="--ars.top"):
        ARSOptions(directions=4, top=5)
    with pytest.raises(ValueError, match="--env-steps"):
        Config(env_steps=-1)
    with pytest.raises(ValueError, match="--td3.batch-size"):
        TD3Options(batch_size=0)
    with pytest.raises(ValueError, match="--td3.actor-lr"):
        TD3Options(actor_lr=0.0)
    with pytest.raises(ValueError, match="--agent"):
        Config(agent="gnn")
    with pytest.raises(ValueError, match="even"):
        Config(pop_size=3)
    with pytest.raises(ValueError, match="unknown body"):
        Config(agent="body-mlp", body="walker_9_main")
    with pytest.raises(ValueError, match="--init"):
        Config(trainer="td3", init="runs/checkpoints/smp-walkers.pt")
    for bad in (-0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="--alive-bonus"):
            Config(trainer="ars", alive_bonus=bad)
    with pytest.raises(ValueError, match="--select"):
        Config(trainer="ars", select="distance")
    with pytest.raises(ValueError, match="--select"):
        Config(trainer="td3", select="walk")
    with pytest.raises(ValueError, match="--select"):
        Config(trainer="td3", select="upright")


def test_body_weights_weight_each_bodys_share_of_the_fitness():
    """--body-weights: the fitness is the weighted mean over the bodies (returns or, with
    --body-ranks, centred ranks); weight 0 on every body but one = that body's alone."""
    cfg = Config(trainer="ars", hidden=8, message=4)
    bodies = train_bodies(cfg)[:3]
    assert parse_body_weights((), bodies) is None
    weights = parse_body_weights((f"{bodies[1]}=3", f"{bodies[2]}=0"), bodies)
    np.testing.assert_array_equal(weights, [1.0, 3.0, 0.0])
    policy = build_modular(policy_spec(cfg))
    flat = flatten_params(policy)
    params = torch.stack([flat, flat + 0.3, flat - 0.3])
    for ranks in (False, True):
        plain = Rollouts(policy, bodies, max_steps=8, threads=1, body_ranks=ranks)
        only = Rollouts(policy, bodies, max_steps=8, threads=1, body_ranks=ranks,
                        body_weights=np.array([0.0, 2.0, 0.0]))  # fmt: skip
        mixed = Rollouts(policy, bodies, max_steps=8, threads=1, body_ranks=ranks,
                         body_weights=weights)  # fmt: skip
        per_body = torch.as_tensor(plain.returns(params, seed=5, training=True))
        if ranks:
            from colonylab.collective_ml.es import centred_ranks

            per_body = torch.stack([centred_ranks(per_body[:, b]) for b in range(3)], dim=1)
        torch.testing.assert_close(plain(params, 5), per_body.mean(dim=1))
        torch.testing.assert_close(only(params, 5), per_body[:, 1])
        expected = (per_body[:, 0] + 3 * per_body[:, 1]) / 4
        torch.testing.assert_close(mixed(params, 5), expected.to(mixed(params, 5).dtype))
    with pytest.raises(ValueError, match="body_weights"):
        Rollouts(policy, bodies, max_steps=8, threads=1, body_weights=np.zeros(3))


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("walker_9_main=2", "BODY one of walker_7_main"),
        ("walker_6_main", "expected BODY=W"),
        ("walker_6_main=-1", "finite number >= 0"),
        ("walker_6_main=nan", "finite number >= 0"),
        ("walker_5_main=2", "BODY one of"),  # held out: not a training body
    ],
)
def test_bad_body_weights_are_one_error_line(capsys, entry, expected):
    argv = ["train", "smp-walkers", "--trainer", "ars", "--body-weights", entry]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("error:"), err
    assert "--body-weights" in err and entry in err and expected in err, err


def test_body_weights_refused_twice_all_zero_or_with_td3():
    with pytest.raises(ValueError, match="weighted twice"):
        Config(trainer="ars", body_weights=("walker_6_main=2", "walker_6_main=3"))
    zeros = tuple(f"{b}=0" for b in train_bodies(Config()))
    with pytest.raises(ValueError, match="every body weighs 0"):
        Config(trainer="ars", body_weights=zeros)
    with pytest.raises(ValueError, match="--trainer td3"):
        Config(trainer="td3", body_weights=("walker_6_main=2",))
    with pytest.raises(ValueError, match="BODY one of walker_4_main"):  # body-mlp: its body
        Config(trainer="ars", agent="body-mlp", body="walker_4_main",
               body_weights=("walker_6_main=2",))  # fmt: skip


def test_bad_alive_bonus_is_one_error_line(capsys):
    argv = ["train", "smp-walkers", "--trainer", "ars", "--alive-bonus", "-1"]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("error:"), err
    assert "--alive-bonus" in err and "-1" in err


SHIPPED = CHECKPOINTS / "smp-walkers.pt"


STANDING = ("walker_7_main", "walker_7_flipped", "walker_6_main", "walker_5_flipped")
"""Training bodies the shipped SMP keeps up for all 1000 steps (it does not walk: it stands)."""


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped smp-walkers checkpoint")
def test_shipped_smp_stays_up_1000_steps_and_is_watched_by_default():
    """The shipped SMP (ARS) re-scored as ``colony eval`` does, one 1000-step episode per
    body: it stays up the whole episode on four training bodies and, zero-shot, on the
    held-out walker_6_flipped (standing still falls after ~100 steps); on walker_4_main it
    beats standing still by > 100 before it falls. It does not walk: < 1 m travelled."""
    policy, ckpt = load_model(SHIPPED, "smp-walkers", build_modular)
    assert ckpt["provenance"]["command"].startswith("colony train smp-walkers")
    cfg = Config(eval_episodes=1, eval_steps=1000, threads=0)
    bodies = [*STANDING, "walker_6_flipped", "walker_4_main"]
    smp = evaluate_episodes(policy, bodies, cfg)
    still = evaluate_episodes(_NoTorque(), bodies, cfg)
    for b in bodies:
        assert smp[b]["return"][0] > still[b]["return"][0] + 100, b
        assert abs(smp[b]["distance"][0]) < 1.0, b
    for b in [*STANDING, "walker_6_flipped"]:
        assert smp[b]["length"][0] == 1000, b
    watch = smp_walkers_watch(Config(), None)
    assert watch.body == "walker_7_main" and watch.metadata["name"].endswith("(smp-walkers.pt)")
    watch.close()


BASELINES = (
    "smp-walkers-independent.pt",
    "smp-walkers-mlp-walker_5_main.pt",
    "smp-walkers-mlp-walker_6_flipped.pt",
)
"""The same-budget baselines of the shipped SMP (one stage each)."""
TRANSFORMER = CHECKPOINTS / "smp-walkers-transformer.pt"
WALKER = CHECKPOINTS / "smp-walkers-walk.pt"


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped smp-walkers checkpoint")
def test_every_shipped_checkpoint_records_a_command_that_parses():
    import shlex

    from colonylab.runs.cli import parse_config

    paths = sorted(CHECKPOINTS.glob("smp-walkers*.pt"))
    assert {"smp-walkers.pt", *BASELINES, TRANSFORMER.name} <= {p.name for p in paths}
    total = torch.load(SHIPPED, weights_only=True)["provenance"]["metrics"]["env_steps_total"]
    for path in paths:
        ckpt = torch.load(path, weights_only=True)
        assert path.stat().st_size < 1_000_000, path.name
        words = shlex.split(ckpt["provenance"]["command"])
        assert words[:3] == ["colony", "train", "smp-walkers"], path.name
        cfg = parse_config(Config, words[3:], prog="colony train smp-walkers")
        assert cfg.agent == ckpt["extra"]["agent"] and cfg.trainer == "ars"
        one_generation = 2 * cfg.ars.directions * cfg.max_steps * len(train_bodies(cfg))
        if path.name in BASELINES:  # the shared policy's budget (a tenth per body)
            share = total // 10 if cfg.agent == "body-mlp" else total
            assert cfg.env_steps == share, path.name
            assert 0 <= ckpt["trainer"]["env_steps"] - share <= one_generation, path.name
        elif path != SHIPPED:  # --init stages: the last one's command, every stage's steps
            metrics = ckpt["provenance"]["metrics"]
            stages = metrics["env_steps_stages"]
            assert sum(stages) == metrics["env_steps_total"], path.name
            assert ckpt["trainer"]["env_steps"] == stages[-1], path.name
            assert ckpt["extra"]["init"]["env_steps"] == stages[-2], path.name
            assert cfg.init is not None, path.name
        if path == TRANSFORMER:  # at most the SMP's budget
            assert cfg.agent == "transformer"
            assert ckpt["provenance"]["metrics"]["env_steps_total"] <= total + one_generation


TRANSFORMER_HELD_OUT = {"walker_5_main": 318.96, "walker_6_flipped": 1019.50}
"""``colony eval`` means (4 x 1000 steps, seed 2024) of the shipped transformer (the card)."""


@pytest.mark.skipif(not TRANSFORMER.is_file(), reason="no shipped transformer checkpoint")
def test_shipped_transformer_scores_its_card_numbers_and_eval_labels_it():
    """The Amorpheus-style transformer re-scored as ``colony eval`` does on the held-out
    bodies gives the card's numbers; its rows are labelled ``transformer``."""
    policy, ckpt = load_model(TRANSFORMER, "smp-walkers", build_modular)
    assert ckpt["spec"]["type"] == "transformer" and ckpt["extra"]["agent"] == "transformer"
    assert "label" not in ckpt["extra"]  # colony eval's rows: agent "transformer"
    cfg = Config(threads=0)  # colony eval's episodes, steps and seed
    # every body in one world, as colony eval plays them (a robot's start hangs on its slot)
    held = evaluate_episodes(policy, body_names("walker"), cfg)
    for b, mean in TRANSFORMER_HELD_OUT.items():
        assert held[b]["return"].size == 4
        assert held[b]["return"].mean() == pytest.approx(mean, rel=0.02), b


WALKING_UPRIGHT = ("walker_7_main", "walker_7_flipped", "walker_5_flipped")
"""Training bodies the shipped walking SMP walks on upright (every eval episode: >= 1 m,
all 1000 steps up, return >= standing still's + 100)."""


@pytest.mark.skipif(not WALKER.is_file(), reason="no shipped walking smp checkpoint")
def test_shipped_walker_walks_upright_and_is_labelled():
    policy, ckpt = load_model(WALKER, "smp-walkers", build_modular)
    assert ckpt["extra"]["label"] == "smp (walk, B=0)" and ckpt["extra"]["agent"] == "smp"
    cfg = Config(threads=0)
    smp = evaluate_episodes(policy, body_names("walker"), cfg)  # colony eval's starts
    still = evaluate_episodes(_NoTorque(), body_names("walker"), cfg)
    for b in WALKING_UPRIGHT:
        assert (smp[b]["length"] == 1000).all(), b
        assert smp[b]["distance"].mean() >= 1.0, b
        assert smp[b]["return"].mean() >= still[b]["return"].mean() + 100, b


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped smp-walkers checkpoint")
def test_picture_rows_of_the_twelve_bodies(tmp_path):
    try:
        path = picture(Config(), tmp_path / "walkers.png", steps=(2, 4))
    except RuntimeError as exc:  # no rendering context here
        pytest.skip(str(exc))
    from PIL import Image

    image = np.asarray(Image.open(path))
    assert image.shape == (2 * 240, 12 * 160, 3)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 10
