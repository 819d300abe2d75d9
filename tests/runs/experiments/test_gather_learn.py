"""``gather-learn``: bite cells against the engine, bad flags, a tiny training run (files,
determinism, resume), eval rows and the shipped checkpoint."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from colonylab.runs.common.checkpoint import load_checkpoint
from colonylab.runs.experiments import gather_learn as gl
from colonylab.runs.experiments.gather_learn import Config


def test_actions_view_and_bite_cells_match_the_engine():
    ep = gl.Episodes(Config(worlds=1, map_size=60, max_cycles=10), seed=0)
    ep.reset()
    e = ep.worlds[0].engine
    assert ep.view.shape[1:] == gl.VIEW_SHAPE == e.view_shape(gl.OMNIVORE)
    assert int(e.n_actions[gl.OMNIVORE]) == gl.N_ACTIONS
    assert int(e.n_moves[gl.OMNIVORE]) == gl.FIRST_ATTACK
    assert int(e.n_moves[gl.OMNIVORE]) // 2 == gl.STAY
    got = list(zip(e.att_dy[gl.OMNIVORE].tolist(), e.att_dx[gl.OMNIVORE].tolist(), strict=True))
    assert tuple(got) == gl.ATTACK_OFFSETS
    assert int(e.channel_of[gl.OMNIVORE][gl.FOOD]) == gl.FOOD_CHANNEL
    # only bites the mask allows: every bite lands on food, each pays +0.5 - 0.1 or eats
    ep2 = gl.Episodes(Config(worlds=1, map_size=60, max_cycles=50), seed=1)
    ep2.reset()
    greedy = ep2.scripted("greedy")
    mask = ep2.obs()["mask"]
    assert mask[np.arange(len(greedy)), greedy].all()  # greedy bites only food too
    for _ in range(30):
        ep2.step(ep2.scripted("greedy"))
    assert ep2.eaten > 0


@pytest.mark.parametrize(
    "kw, word",
    [({"worlds": 0}, "worlds"), ({"map_size": 59}, "map-size"), ({"lr": -1.0}, "lr"),
     ({"gamma": 2.0}, "gamma"), ({"threads": 0}, "threads")],
)  # fmt: skip
def test_bad_config_is_one_line_value_error(kw, word):
    with pytest.raises(ValueError, match=word) as err:
        Config(**kw)
    assert "\n" not in str(err.value)


TINY = dict(worlds=1, map_size=60, max_cycles=10, iterations=2, rollout_steps=6, epochs=1,
            minibatches=2, validate_every=1, validate_episodes=1, checkpoint_every=1,
            hidden=(16,))  # fmt: skip


def _rows(path):
    return [json.loads(x) for x in (path / "metrics.jsonl").read_text().splitlines()]


def test_tiny_run_writes_its_files_is_deterministic_and_resumes(tmp_path):
    torch.set_num_threads(1)
    gl.main(Config(**TINY, out=str(tmp_path / "a")))
    gl.main(Config(**TINY, out=str(tmp_path / "b"), plots=False))
    (pa,) = (tmp_path / "a" / "gather-learn").iterdir()
    (pb,) = (tmp_path / "b" / "gather-learn").iterdir()
    ra, rb = _rows(pa), _rows(pb)
    assert [r["step"] for r in ra] == [1, 2]
    assert "validation/food_per_agent" in ra[-1] and "charts/food_per_step" in ra[-1]
    for key in ("losses/policy", "charts/reward_mean", "validation/food_per_agent"):
        assert ra[-1][key] == rb[-1][key]
    assert (pa / "media" / "training.png").stat().st_size > 1000
    assert (pa / "media" / "episode.gif").stat().st_size > 1000
    best = load_checkpoint(pa / "checkpoints" / "gather-learn.pt", "gather-learn")
    assert best["provenance"]["command"].startswith("colony train gather-learn")
    cfg = Config(**TINY, out=str(tmp_path / "a"), plots=False)
    assert gl.main(dataclasses.replace(cfg, iterations=3), resume=str(pa))["iterations"] == 3
    assert [r["step"] for r in _rows(pa)] == [1, 2, 3]
    out = gl.evaluate(Config(episodes=1, max_cycles=10), str(pa / "checkpoints" / "latest.pt"))
    assert [r["gatherers"] for r in out["rows"]] == ["learned", "random", "greedy"]
    assert out["rows"][0]["map_size"] == 60 and out["rows"][0]["agents"] == 148
    world = gl.watch(Config(), str(pa / "checkpoints" / "latest.pt"))
    world.step()
    assert world.step_count == 1


@pytest.mark.skipif(not gl.SHIPPED.exists(), reason="no shipped gather-learn checkpoint")
def test_shipped_checkpoint_eats_far_more_than_random():
    """The headline of runs/checkpoints/gather-learn.pt on a fresh episode (the full
    table: ``colony eval gather-learn``)."""
    torch.set_num_threads(1)
    ckpt = load_checkpoint(gl.SHIPPED, "gather-learn")
    assert ckpt["provenance"]["command"].startswith("colony train gather-learn")
    policy, ckpt = gl.load_policy()
    cfg = gl.world_config(Config(worlds=1), ckpt)
    learned = gl.play(cfg, "learned", 1, 900_000_000, policy)
    # measured on 6 fresh episodes (colony eval gather-learn): learned eat all 2,272 food
    # (4.59 per omnivore; 90% by step 214), all survive; greedy the same by step 100;
    # random 0.0003 per omnivore, 54% survive
    assert learned["food_share"] >= 0.95 and learned["survival"] == 1.0
    assert learned["steps_to_90"] < 400
