"""``tiger-deer``: bite cells against the engine, capture measures, bad flags, a tiny
training run (files, determinism, resume), eval rows and the shipped checkpoint."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from colonylab.runs.common.checkpoint import load_checkpoint
from colonylab.runs.experiments import tiger_deer as td
from colonylab.runs.experiments.tiger_deer import Config

SMALL = dict(worlds=2, map_size=16, max_cycles=12)


def test_bite_cells_and_view_match_the_engine():
    ep = td.Episodes(Config(**SMALL), seed=0)
    ep.reset()
    e = ep.worlds[0].engine
    assert ep.view.shape[1:] == td.VIEW_SHAPE == e.view_shape(td.TIGER)
    assert int(e.n_actions[td.TIGER]) == td.N_ACTIONS
    assert int(e.n_moves[td.TIGER]) == td.FIRST_ATTACK
    assert int(e.n_actions[td.DEER]) == td.N_DEER_ACTIONS
    got = list(zip(e.att_dy[td.TIGER].tolist(), e.att_dx[td.TIGER].tolist(), strict=True))
    assert tuple(got) == td.ATTACK_OFFSETS
    assert int(e.channel_of[td.TIGER][td.DEER]) == td.DEER_CHANNEL
    # a deer next to a tiger: the mask allows exactly that bite, and the bite lands on it
    world = ep.worlds[0]
    tiger = e.group_ids(td.TIGER)[0]
    deer = e.group_ids(td.DEER)
    for k, (dy, dx) in enumerate(td.ATTACK_OFFSETS):
        ty, tx = int(e.pos[tiger, 1]), int(e.pos[tiger, 0])
        hit = [d for d in deer if (int(e.pos[d, 1]), int(e.pos[d, 0])) == (ty + dy, tx + dx)]
        view = world._observation()["tiger"]
        mask = td.masks(view)
        assert mask[0, td.FIRST_ATTACK + k] == bool(hit)


def test_bites_land_where_the_mask_allows_and_pay_the_shaping():
    """Same seed, same actions, bite_reward 0 and 0.25: the rewards differ by 0.25 for
    exactly the bites landed (every bite the mask allows hits a deer)."""
    plain = td.Episodes(Config(**SMALL, bite_reward=0.0), seed=3)
    shaped = td.Episodes(Config(**SMALL, bite_reward=0.25), seed=3)
    plain.reset()
    shaped.reset()
    rng = np.random.default_rng(0)
    for _ in range(10):
        mask = shaped.obs()["mask"]
        acts = np.array([rng.choice(np.flatnonzero(m)[-1:]) for m in mask])  # bite if legal
        before = shaped.bites
        r0, _ = plain.step(acts)
        r1, _ = shaped.step(acts)
        diff = r1 - r0
        assert np.all(np.isclose(diff, 0.0) | np.isclose(diff, 0.25))
        assert np.isclose(diff.sum(), 0.25 * (shaped.bites - before))
    assert shaped.bites > 0 and shaped.bites == plain.bites


def test_capture_measures():
    # deer 0 at (5, 5) bitten from N and S (2 sectors); a third tiger 2 cells east
    pos = np.array([[5, 5], [4, 5], [6, 5], [5, 7]], np.int32)
    target = np.array([-1, 0, 0, -1], np.int32)
    died = np.array([True, False, False, False])
    sectors, attackers, surround = td.captures(pos, target, died, np.array([1, 2, 3]))
    assert sectors.tolist() == [2] and attackers.tolist() == [2] and surround.tolist() == [3]
    s = td.summarise([{"catch_rate": 0.5, "deer_killed": 3.0, "tiger_survival": 1.0,
                       "steps": 9.0}], [2, 4], [2, 3], [3, 4], bites=10, pair_bites=4)  # fmt: skip
    assert s["encirclement"] == 0.75 and s["encircled"] == 0.5 and s["pair_bites"] == 0.4


@pytest.mark.parametrize(
    "kw, word",
    [({"worlds": 0}, "worlds"), ({"deer_policy": "flee"}, "deer-policy"),
     ({"map_size": 5}, "map-size"), ({"lr": 0.0}, "lr"), ({"bite_reward": float("nan")},
     "bite-reward"), ({"hidden": ()}, "hidden")],
)  # fmt: skip
def test_bad_config_is_one_line_value_error(kw, word):
    with pytest.raises(ValueError, match=word) as err:
        Config(**kw)
    assert "\n" not in str(err.value)


TINY = dict(worlds=2, map_size=16, max_cycles=12, iterations=2, rollout_steps=8, epochs=1,
            minibatches=2, validate_every=1, validate_episodes=2, checkpoint_every=1,
            hidden=(16,))  # fmt: skip


def _rows(path):
    return [json.loads(x) for x in (path / "metrics.jsonl").read_text().splitlines()]


def test_tiny_run_writes_its_files_is_deterministic_and_resumes(tmp_path):
    torch.set_num_threads(1)
    a = td.main(Config(**TINY, out=str(tmp_path / "a")))
    b = td.main(Config(**TINY, out=str(tmp_path / "b"), plots=False))
    assert a["iterations"] == b["iterations"] == 2
    (pa,) = (tmp_path / "a" / "tiger-deer").iterdir()
    (pb,) = (tmp_path / "b" / "tiger-deer").iterdir()
    ra, rb = _rows(pa), _rows(pb)
    assert [r["step"] for r in ra] == [1, 2]
    assert "validation/catch_rate" in ra[-1] and "losses/entropy" in ra[-1]
    for key in ("losses/policy", "charts/reward_mean", "validation/catch_rate"):
        assert ra[-1][key] == rb[-1][key]  # same seed, same run
    assert (pa / "media" / "training.png").stat().st_size > 1000
    assert (pa / "media" / "episode.gif").stat().st_size > 1000
    best = load_checkpoint(pa / "checkpoints" / "tiger-deer.pt", "tiger-deer")
    assert best["provenance"]["command"].startswith("colony train tiger-deer")
    assert best["spec"]["view_shape"] == [9, 9, 5] and best["spec"]["n_actions"] == 9
    cfg = Config(**TINY, out=str(tmp_path / "a"), plots=False)
    assert td.main(dataclasses.replace(cfg, iterations=3), resume=str(pa))["iterations"] == 3
    assert [r["step"] for r in _rows(pa)] == [1, 2, 3]
    out = td.evaluate(Config(episodes=2, max_cycles=12), str(pa / "checkpoints" / "latest.pt"))
    assert [r["tigers"] for r in out["rows"]] == ["learned", "random", "greedy"]
    assert all(0.0 <= r["catch_rate"] <= 1.0 for r in out["rows"])
    assert out["rows"][0]["map_size"] == 16  # the checkpoint's world, not the defaults
    world = td.watch(Config(), str(pa / "checkpoints" / "latest.pt"))
    world.step()
    assert world.step_count == 1


@pytest.mark.skipif(not td.SHIPPED.exists(), reason="no shipped tiger-deer checkpoint")
def test_shipped_checkpoint_catches_far_more_than_random():
    """The headline of runs/checkpoints/tiger-deer.pt on a few fresh episodes (the full
    table: ``colony eval tiger-deer``)."""
    torch.set_num_threads(1)
    ckpt = load_checkpoint(td.SHIPPED, "tiger-deer")
    assert ckpt["provenance"]["command"].startswith("colony train tiger-deer")
    policy, ckpt = td.load_policy()
    cfg = td.world_config(Config(worlds=4), ckpt)
    learned = td.play(cfg, "learned", 4, 900_000_000, policy)
    rand = td.play(cfg, "random", 4, 900_000_000)
    # measured on 20 fresh episodes (colony eval tiger-deer): learned 0.942 of the deer,
    # tiger survival 0.26; random 0.0005, survival 0; greedy 0.932, survival 0.12
    assert rand["catch_rate"] < 0.02 and rand["tiger_survival"] == 0.0
    assert learned["catch_rate"] >= 0.85
    assert learned["tiger_survival"] >= 0.1
