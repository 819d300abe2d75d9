"""The grid worlds' emergence overlay and log metrics (emergence.overlay)."""

from __future__ import annotations

import math

import numpy as np

from colonylab.emergence.overlay import grid_log_metrics, grid_overlay
from colonylab.envs.grid.battle import BattleConfig, BattleWorld


def placed_world() -> BattleWorld:
    world = BattleWorld(BattleConfig(map_size=10, agents_per_team=4, walls=False))
    world.reset(seed=0)
    pos = np.array([[4, 3], [4, 5], [3, 4], [5, 4], [4, 4], [0, 0], [0, 1], [9, 9]], np.int32)
    # blue 4 (at 4, 4) is surrounded by red 0-3 on four sides; blue 5, 6 touch; blue 7 alone
    world.set_state(pos)
    return world


def test_overlay_counts_clusters_front_and_encirclement():
    world = placed_world()
    overlay = grid_overlay(world)
    # red's four agents touch diagonally: one 8-connected cluster
    assert overlay["red clusters"] == 1 and overlay["red largest"] == 4
    assert overlay["blue clusters"] == 3 and overlay["blue largest"] == 2
    assert overlay["front line"] == 4  # blue 4's four edges
    assert overlay["encircled"] == "-"  # nobody attacked yet
    # the four reds attack blue 4 from N, S, W, E: one target, 4 sectors covered
    actions = np.zeros(world.n_agents, np.int64)
    actions[[0, 1, 2, 3]] = [14, 16, 15, 13]  # E, W, S, N towards (4, 4)
    world.step(actions)
    assert world.hp[4] == np.float32(10 - 4 * 2 + 0.1)  # hurt, not dead: still a target
    overlay = grid_overlay(world)
    assert overlay["encircled"] == 1.0


def test_log_metrics_are_namespaced_floats():
    world = placed_world()
    row = grid_log_metrics(world)
    assert row["emergence/team0_size"] == 4.0 and row["emergence/team1_clusters"] == 3.0
    assert row["emergence/front_line"] == 4.0 and math.isnan(row["emergence/encirclement"])
    assert all(k.startswith("emergence/") and isinstance(v, float) for k, v in row.items())
