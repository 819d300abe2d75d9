"""``runs/teams.py``: battle_v4 teams by name (scripted, shipped checkpoint, file), the
mirrored blue side, and one-line refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colonylab.runs import teams
from colonylab.runs.experiments import battle_selfplay as bs


def _fight(world, steps: int) -> dict:
    for _ in range(steps):
        if world.step().info["done"]:
            break
    return world.metrics()


def test_known_teams_and_unknown_names_are_refused_in_one_line():
    assert teams.known_teams()[:3] == ["random", "greedy", "noop"]
    assert "battle-selfplay" in teams.known_teams()
    for bad in ("tiger", "runs/checkpoints/nope.pt", ""):
        with pytest.raises(ValueError) as err:
            teams.battle_world(bad, "greedy", agents=162)
        message = str(err.value)
        assert "\n" not in message and repr(bad) in message and "greedy" in message
    with pytest.raises(ValueError, match="pursuit-coop"):  # another experiment's checkpoint
        teams.battle_world("greedy", str(bs.CHECKPOINTS / "pursuit-coop.pt"), agents=162)
    with pytest.raises(ValueError, match="--agents"):
        teams.battle_world("greedy", "random", agents=4)


def test_battle_world_sizes_and_scripted_blue_matches_the_experiment():
    world = teams.battle_world("random", "greedy", agents=2000, seed=1, max_cycles=5)
    assert world.n_agents == 2048 and world.step_count == 0
    assert world.default_policy is not None and "random (red) vs greedy (blue)" in str(
        world.metadata["name"]
    )
    world = teams.battle_world("noop", "greedy", agents=162, seed=1, max_cycles=5)
    a = teams.scripted_actions(world, 1, "greedy", np.random.default_rng(5))
    b = bs.scripted(world, "greedy", np.random.default_rng(5))
    assert np.array_equal(a, b)
    assert (teams.scripted_actions(world, 0, "noop", np.random.default_rng(0)) == bs.STAY).all()
    _fight(world, 3)
    assert world.step_count == 3


def test_the_learned_army_wins_on_either_side():
    """The shipped checkpoint learned red; as blue it plays mirrored and still wins
    (measured at seed 3: 81 red vs 0 random at step 202, as blue 81 vs 0 at step 125;
    against greedy 19 vs 0 and, as blue, 21 vs 0)."""
    torch.set_num_threads(1)
    m = _fight(teams.battle_world("battle-selfplay", "random", 162, seed=3, max_cycles=200), 200)
    assert m["red_alive"] > 70 and m["blue_alive"] < 10
    m = _fight(teams.battle_world("random", "battle-selfplay", 162, seed=3, max_cycles=200), 200)
    assert m["blue_alive"] > 70 and m["red_alive"] < 10
    path = str(bs.SHIPPED)  # a file names a team too
    m = _fight(teams.battle_world("greedy", path, 162, seed=3, max_cycles=200), 200)
    assert m["blue_alive"] > m["red_alive"]


def test_mirrored_player_flips_views_and_actions():
    seen = []

    def player(view):
        seen.append(view.copy())
        return np.arange(len(view)) % bs.N_ACTIONS

    view = np.random.default_rng(0).random((3, 13, 13, 5)).astype(np.float32)
    out = teams.Mirrored(player)(view)
    assert np.array_equal(seen[0], view[:, :, ::-1])
    assert np.array_equal(out, bs.MIRROR[np.arange(3)])
    assert teams.Mirrored(player)(view[:0]).shape == (0,)


def test_demo_teams_and_who_won():
    from colonylab.runs import demo

    assert demo.Config().teams() == ("battle-selfplay", "greedy")
    assert demo.Config(policy="random").teams() == ("random", "random")
    with pytest.raises(ValueError, match="'greedy-vs-tiger'"):
        demo.Config(policy="greedy-vs-tiger")
    world = demo.make_world(demo.Config(agents=200, policy="greedy-vs-noop"))
    assert "level" in demo.verdict(world, ("greedy", "noop"))
    for _ in range(60):
        world.step()
    text = demo.verdict(world, ("greedy", "noop"))
    assert text.startswith("red (greedy, scripted) leads") or "red (greedy, scripted) wins" in text
    assert "blue (noop, scripted)" in text
