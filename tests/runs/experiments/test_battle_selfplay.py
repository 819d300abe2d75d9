"""``battle-selfplay``: the attack cells against the engine, battle sizes, bad input, a
tiny training run (files, resume), watch, and the shipped checkpoint's headline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from colonylab.runs.common.checkpoint import load_checkpoint
from colonylab.runs.experiments import battle_selfplay as bs
from colonylab.runs.experiments.battle_selfplay import Config

NO_WALLS = np.zeros((0, 2), np.int32)


@pytest.mark.parametrize("dy, dx", bs.ATTACK_OFFSETS)
def test_attack_k_strikes_the_view_cell_the_mask_allows(dy, dx):
    """One red soldier at (x, y) = (10, 10) and one blue at (10 + dx, 10 + dy): the mask
    allows exactly the attack whose offset points at it, and that attack (alone) hits."""
    world = bs.make_world(20, 10)
    cells = [np.array([[10, 10]], np.int32), np.array([[10 + dx, 10 + dy]], np.int32)]
    obs = world.reset(seed=0, options={"walls": NO_WALLS, "agents": cells})
    mask = bs.masks(obs["red"])
    k = bs.ATTACK_OFFSETS.index((dy, dx))
    allowed = np.flatnonzero(mask[0, bs.FIRST_ATTACK :])
    assert allowed.tolist() == [k]
    assert mask[0, : bs.FIRST_ATTACK].all()
    for a in range(8):
        world.reset(seed=0, options={"walls": NO_WALLS, "agents": cells})
        world.step(np.array([bs.FIRST_ATTACK + a, bs.STAY]))
        hit = world.engine.hp(1)[0] < 10
        assert hit == (a == k), (a, k)


def test_battle_sizes_keep_magent2s_density():
    assert bs.map_for(162) == 45 and bs.army_size(45) == 81
    assert 2 * bs.army_size(bs.map_for(2000)) == 2048
    assert bs.map_for(20000) == 500 and bs.army_size(500) == 10000


@pytest.mark.parametrize(
    "kw, word",
    [({"worlds": 0}, "worlds"), ({"opponents": ("tiger",)}, "opponent"),
     ({"self_play": 1.5}, "self-play"), ({"eval_agents": (4,)}, "eval-agents"),
     ({"map_size": 5}, "map-size")],
)  # fmt: skip
def test_bad_config_is_one_line_value_error(kw, word):
    with pytest.raises(ValueError, match=word) as err:
        Config(**kw)
    assert "\n" not in str(err.value)


def test_outcome_counts_survivors_and_draws():
    world = bs.make_world(45, 1)
    world.reset(seed=0)
    world.step(np.full(world.n_agents, bs.STAY))
    o = bs.outcome(world)
    assert o["win"] == 0.0 and o["draw"] == 1.0 and o["red_alive"] == o["blue_alive"] == 81
    s = bs.summarise([o, {**o, "win": 1.0, "draw": 0.0, "blue_lost": 4.0, "red_lost": 2.0}])
    assert s["win_rate"] == 0.5 and s["draw_rate"] == 0.5 and s["kill_ratio"] == 2.0


TINY = dict(worlds=1, iterations=2, rollout_steps=8, epochs=1, minibatches=2, max_cycles=30,
            validate_every=1, validate_battles=2, snapshot_every=1, checkpoint_every=1,
            self_play=0.5, mirror_blue=True, plots=True)  # fmt: skip


def test_tiny_run_writes_its_files_and_resumes(tmp_path):
    cfg = Config(**TINY, out=str(tmp_path))
    result = bs.main(cfg)
    run = tmp_path / "battle-selfplay"
    (path,) = run.iterdir()
    assert result["iterations"] == 2
    rows = [json.loads(x) for x in (path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert "validation/win_rate_greedy" in rows[-1] and "losses/entropy" in rows[-1]
    assert (path / "media" / "training.png").stat().st_size > 1000
    assert (path / "media" / "late-training.gif").stat().st_size > 1000
    best = load_checkpoint(path / "checkpoints" / "battle-selfplay.pt", "battle-selfplay")
    assert best["spec"]["type"] == "grid"
    assert best["provenance"]["command"].startswith("colony train battle-selfplay")
    latest = load_checkpoint(path / "checkpoints" / "latest.pt", "battle-selfplay")
    assert latest["trainer"]["ppo"]["iteration"] == 2
    assert len(latest["trainer"]["pool"]["order"]) == 4  # greedy, random, 2 snapshots
    # --resume continues to iteration 3 with the pool and the counters restored
    import dataclasses

    more = dataclasses.replace(cfg, iterations=3)
    assert bs.main(more, resume=str(path))["iterations"] == 3
    rows = [json.loads(x) for x in (path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    # watch: the learned red army against the scripted greedy one
    world = bs.watch(
        Config(watch_agents=162, max_cycles=50), str(path / "checkpoints" / "latest.pt")
    )
    assert world.n_agents == 162
    for _ in range(3):
        world.step()
    assert world.step_count == 3
    # eval against a learned blue army (mirrored); the evaluated weights themselves: skipped
    latest_pt = str(path / "checkpoints" / "latest.pt")
    small = Config(episodes=2, eval_agents=(162,), max_cycles=20)
    out = bs.evaluate(dataclasses.replace(small, eval_opponents=("battle-selfplay", latest_pt)),
                      latest_pt)  # fmt: skip
    assert [(r["opponent"], r["episodes"]) for r in out["rows"]] == [("battle-selfplay", 2)]
    assert "evaluated weights" in out["notes"][0]
    with pytest.raises(ValueError, match="'tiger'"):
        bs.evaluate(dataclasses.replace(small, eval_opponents=("tiger",)), latest_pt)


def test_shipped_checkpoint_beats_random_and_greedy_at_162_agents():
    """The headline of runs/checkpoints/battle-selfplay.pt on a few fresh battles
    (the full table: ``colony eval battle-selfplay``)."""
    torch.set_num_threads(1)
    ckpt = load_checkpoint(bs.SHIPPED, "battle-selfplay")
    assert ckpt["provenance"]["command"].startswith("colony train battle-selfplay")
    out = bs.evaluate(Config(episodes=8, eval_agents=(162,), max_cycles=300))
    rows = {r["opponent"]: r for r in out["rows"]}
    # measured: random 8/8 won, no red soldier lost; greedy 8/8 won, kill ratio 1.30;
    # the previous checkpoint (blue, mirrored) 7/8
    assert rows["random"]["win_rate"] == 1.0 and rows["random"]["mean_survivors"] >= 80
    assert rows["greedy"]["win_rate"] >= 0.75
    assert rows["greedy"]["kill_ratio"] > 1.05


def test_move_cells_and_the_left_right_mirror_match_the_engine():
    world = bs.make_world(21, 10)
    e = world.engine
    assert list(zip(e.move_dy[0], e.move_dx[0], strict=True)) == list(bs.MOVE_OFFSETS)
    assert list(zip(e.att_dy[0], e.att_dx[0], strict=True)) == list(bs.ATTACK_OFFSETS)
    assert (bs.MIRROR[bs.MIRROR] == np.arange(bs.N_ACTIONS)).all()
    # a move and its mirror land on mirrored cells (map 21: x -> 20 - x)
    for a in range(bs.FIRST_ATTACK):
        ends = []
        for action in (a, bs.MIRROR[a]):
            cells = [np.array([[10, 10]], np.int32), np.array([[1, 1]], np.int32)]
            world.reset(seed=0, options={"walls": NO_WALLS, "agents": cells})
            world.step(np.array([action, bs.STAY]))
            ends.append(tuple(world.engine.positions(0)[0]))
        assert ends[1] == (20 - ends[0][0], ends[0][1]), a


def test_init_refuses_a_checkpoint_of_another_network(tmp_path):
    cfg = Config(**{**TINY, "hidden": (32,)}, init="battle-selfplay", out=str(tmp_path))
    with pytest.raises(ValueError, match="--init 'battle-selfplay'") as err:
        bs.main(cfg)
    assert "\n" not in str(err.value) and not (tmp_path / "battle-selfplay").exists()
