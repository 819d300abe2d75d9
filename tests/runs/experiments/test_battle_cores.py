"""battle-cores: the population's batched forward, the battle evaluator, tiny runs of every mode."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from colonylab.collective_ml.base import flatten_params, unflatten_into
from colonylab.runs.experiments import battle_cores as bc
from colonylab.runs.experiments import battle_selfplay as bs

TINY = dict(
    map_size=16, max_cycles=40, worlds=2, rollout_steps=4, epochs=1, minibatches=1,
    pop_size=4, battles=1, curve_points=2, validate_battles=2, final_battles=2,
    threads=1, plots=True,
)  # fmt: skip


def test_population_actions_are_each_networks_own_argmax():
    policy = bc.build_policy(0)
    center = flatten_params(policy)
    params = center + 0.05 * torch.randn(
        3, center.numel(), generator=torch.Generator().manual_seed(1)
    )
    world = bs.make_world(16, 50)
    views = world.reset(seed=2)["red"]
    view = np.stack([views, views[::-1].copy(), views])  # [3, R, 13, 13, 5]
    mask = bs.masks(view.reshape(-1, *bs.VIEW_SHAPE)).reshape(3, len(views), -1)
    got = bc.population_actions(policy, params, view, mask)
    for p in range(3):
        net = unflatten_into(bc.build_policy(0), params[p])
        obs = {"view": torch.from_numpy(view[p]), "mask": torch.from_numpy(mask[p])}
        want, *_ = net.act(obs, deterministic=True)
        np.testing.assert_array_equal(got[p], want.numpy())


def test_battle_evaluator_is_seeded_and_counts_agent_steps():
    policy = bc.build_policy(0)
    ev = bc.BattleEvaluator(policy, map_size=16, battles=2, max_cycles=40)
    center = flatten_params(policy)
    params = torch.stack([center, center, center + 0.1])
    fitness = ev(params, seed=7)
    assert fitness.shape == (3,) and bool((fitness.abs() <= 1).all())
    assert fitness[0] == fitness[1]  # the same weights meet the same battles
    steps = ev.last_env_steps
    assert 0 < steps <= 3 * 2 * bs.army_size(16) * 40
    torch.testing.assert_close(ev(params, seed=7), fitness, rtol=0, atol=0)
    assert ev.last_env_steps == steps


def test_compare_runs_every_method_on_the_same_budget(tmp_path):
    out = bc.main(bc.Config(method="compare", budget=600, with_pso=True, out=str(tmp_path), **TINY))
    rows = {r["method"]: r for r in out["rows"]}
    assert set(rows) == {"ppo", "pgpe", "pso"}
    for r in rows.values():
        assert r["agent_steps"] >= 600 and len(r["curve"]) >= 1
        assert 0 <= r["win_rate"] <= 1 and -1 <= r["kill_diff"] <= 1
    run = tmp_path / "battle-cores"
    (path,) = list(run.iterdir())
    assert json.loads((path / "summary.json").read_text())["map_size"] == 16
    assert (path / "media" / "cores.png").stat().st_size > 0
    assert (path / "checkpoints" / "pgpe.pt").exists()


def test_ae_study_tunes_adam_then_compares_on_other_seeds(tmp_path):
    cfg = bc.Config(
        method="ae-study", ae_budget=200, ae_worlds=1, adam_lrs=(3e-3,),
        eval_seeds=(1, 2), out=str(tmp_path), **{**TINY, "worlds": 1},
    )  # fmt: skip
    out = bc.main(cfg)
    assert out["adam_lr"] == 3e-3 and len(out["tuning"]) == 1
    assert [r["seed"] for r in out["runs"]["ae-adam"]] == [1, 2]
    t = out["table"]["ae-adam"]["win_rate"]
    assert 0 <= t["mean"] <= 1 and t["ci95"] >= 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "cmaes"}, "--method must be one of"),
        ({"pop_size": 5}, "--pop-size must be even"),
        ({"ray_address": "local", "worlds": 3, "ray_actors": 2}, "multiple of --ray-actors 2"),
        ({"adam_lrs": ()}, "--adam-lrs and --eval-seeds"),
        ({"budget": 0}, "budget"),
    ],
)
def test_bad_options_are_refused_in_one_line(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bc.Config(**kwargs)
