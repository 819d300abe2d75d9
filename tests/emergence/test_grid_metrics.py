"""Grid-world emergence metrics against hand-built maps and brute-force references."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from colonylab.emergence.grid import (
    ClusterStats,
    TeamSeries,
    attack_sectors,
    autocorrelation,
    clusters,
    cycle_period,
    deaths_by_team,
    encirclement_coverage,
    encirclement_index,
    front_line_cells,
    front_line_length,
    kill_ratio,
    kills_by_team,
    label_components,
    population_series,
    predator_prey_phase,
    step_metrics,
    team_map,
    team_sizes,
)

# ---- helpers ----------------------------------------------------------------


def world_from_picture(picture: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``grid, team, pos`` from rows of characters: ``.`` empty, ``#`` wall, digits teams.

    Agents are indexed in raster order.
    """
    rows = textwrap.dedent(picture).strip().splitlines()
    grid = np.full((len(rows), len(rows[0])), -1, np.int32)
    team, pos = [], []
    for y, row in enumerate(rows):
        for x, ch in enumerate(row):
            if ch == "#":
                grid[y, x] = -2
            elif ch.isdigit():
                grid[y, x] = len(team)
                team.append(int(ch))
                pos.append((y, x))
    return grid, np.array(team, np.int8), np.array(pos, np.int32).reshape(-1, 2)


# ---- team sizes, kills, series ----------------------------------------------


def test_team_sizes_counts_live_agents_and_keeps_extinct_teams():
    team = np.array([0, 0, 1, 1, 1, 2], np.int8)
    alive = np.array([True, False, True, True, False, False])
    sizes = team_sizes(team, alive)
    assert sizes.dtype == np.int64 and sizes.tolist() == [1, 2, 0]
    assert team_sizes(team, alive, n_teams=5).tolist() == [1, 2, 0, 0, 0]
    assert team_sizes(np.zeros(0, np.int8), np.zeros(0, bool), n_teams=2).tolist() == [0, 0]


def test_team_sizes_refuses_bad_input():
    team = np.array([0, 1, 2], np.int8)
    with pytest.raises(ValueError, match="n_teams=2"):
        team_sizes(team, np.ones(3, bool), n_teams=2)
    with pytest.raises(ValueError, match="alive must be bool"):
        team_sizes(team, np.ones(3, np.int8))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        team_sizes(team, np.ones(4, bool))
    with pytest.raises(ValueError, match=">= 0"):
        team_sizes(np.array([0, -1]), np.ones(2, bool))
    with pytest.raises(ValueError, match="integers"):
        team_sizes(np.array([0.0, 1.0]), np.ones(2, bool))


def test_kills_are_credited_once_per_victim_and_enemy_team():
    # agents 0, 1: team 0; 2, 3, 4: team 1.
    team = np.array([0, 0, 1, 1, 1], np.int8)
    # 0 and 1 both kill 2 (one kill for team 0); 3 kills 0 (team 1);
    # 4 kills its teammate 3 (friendly fire: nobody's kill); 2 hits 1, who survives.
    attack_target = np.array([2, 2, 1, 0, 3], np.int32)
    killed = np.array([True, False, True, True, False])
    assert kills_by_team(team, killed, attack_target).tolist() == [1, 1]
    assert deaths_by_team(team, killed).tolist() == [1, 2]
    assert kills_by_team(team, np.zeros(5, bool), attack_target, n_teams=3).tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="attack_target holds 7"):
        kills_by_team(team, killed, np.array([7, -1, -1, -1, -1]))
    with pytest.raises(ValueError, match="attack_target holds -3"):
        kills_by_team(team, killed, np.array([-3, -1, -1, -1, -1]))


def test_kill_ratio_handles_zeros_without_warnings():
    with np.errstate(all="raise"):
        assert kill_ratio(np.array([6, 3])) == 2.0
        assert kill_ratio(np.array([0, 4])) == 0.0
        assert kill_ratio(np.array([3, 0])) == np.inf
        assert np.isnan(kill_ratio(np.array([0, 0])))
        assert kill_ratio(np.array([0, 0]), smoothing=1.0) == 1.0
        assert kill_ratio(np.array([3, 0]), smoothing=1.0) == 4.0
        assert kill_ratio(np.array([1, 2, 4]), team_a=2, team_b=0) == 4.0
        series = kill_ratio(np.array([[0, 0], [2, 0], [2, 4]]))
    assert np.isnan(series[0]) and series[1:].tolist() == [np.inf, 0.5]
    with pytest.raises(ValueError, match="team_b=2"):
        kill_ratio(np.array([1, 1]), team_b=2)
    with pytest.raises(ValueError, match="smoothing"):
        kill_ratio(np.array([1, 1]), smoothing=-1)


def test_team_series_records_sizes_kills_and_ratio():
    team = np.array([0, 0, 1, 1], np.int8)
    series = TeamSeries(n_teams=2)
    assert len(series) == 0 and series.sizes.shape == (0, 2) and series.summary() == {}
    series.record(team, np.ones(4, bool))  # reset state
    # step 1: 0 kills 2
    series.record(
        team,
        np.array([True, True, False, True]),
        killed=np.array([False, False, True, False]),
        attack_target=np.array([2, -1, -1, -1], np.int32),
    )
    # step 2: 3 kills 1, 0 kills 3
    series.record(
        team,
        np.array([True, False, False, False]),
        killed=np.array([False, True, False, True]),
        attack_target=np.array([3, -1, -1, 1], np.int32),
    )
    series.append(sizes=np.array([1, 0]), kills=np.array([0, 0]))
    assert len(series) == 4
    assert series.sizes.tolist() == [[2, 2], [2, 1], [1, 0], [1, 0]]
    assert series.kills.tolist() == [[0, 0], [1, 0], [1, 1], [0, 0]]
    assert series.deaths.tolist() == [[0, 0], [0, 1], [1, 1], [0, 0]]
    assert series.cumulative_kills()[-1].tolist() == [2, 1]
    ratio = series.kill_ratio()
    assert np.isnan(ratio[0]) and ratio[1:].tolist() == [np.inf, 2.0, 2.0]
    summary = series.summary()
    assert summary["emergence/team0_size"] == 1.0 and summary["emergence/team1_size"] == 0.0
    assert summary["emergence/team0_kills"] == 2.0 and summary["emergence/kill_ratio"] == 2.0
    with pytest.raises(ValueError, match="together"):
        series.record(team, np.ones(4, bool), killed=np.zeros(4, bool))
    with pytest.raises(ValueError, match="sizes must have shape"):
        series.append(sizes=np.array([1, 2, 3]), kills=np.array([0, 0]))
    with pytest.raises(ValueError, match="n_teams"):
        TeamSeries(0)


# ---- clusters ----------------------------------------------------------------------


def test_clusters_on_a_hand_built_map():
    grid, team, _ = world_from_picture(
        """
        00.1.0
        0..1.0
        ..0#.0
        .0.#00
        11....
        """
    )
    alive = np.ones(team.size, bool)
    four = clusters(grid, team, alive, which_team=0)
    # right column + (3, 4): 5; top-left L: 3; (2, 2) alone; (3, 1) alone
    assert four.count == 4 and four.sizes.tolist() == [5, 3, 1, 1]
    assert four.sizes.dtype == np.int64
    assert four.mean == 2.5 and four.largest == 5
    eight = clusters(grid, team, alive, which_team=0, connectivity=8)
    # (2, 2) and (3, 1) touch by a corner; the L and (2, 2) are two cells apart.
    assert eight.sizes.tolist() == [5, 3, 2]
    ones = clusters(grid, team, alive, which_team=1)
    assert ones.sizes.tolist() == [2, 2]
    assert ones.as_dict("c/") == {"c/count": 2.0, "c/mean": 2.0, "c/largest": 2.0}


def test_dead_agents_and_walls_split_clusters_and_empty_teams_give_nan():
    grid, team, _ = world_from_picture("000#00")
    alive = np.ones(team.size, bool)
    assert clusters(grid, team, alive, 0).sizes.tolist() == [3, 2]
    alive[1] = False  # the middle of the first run
    assert clusters(grid, team, alive, 0).sizes.tolist() == [2, 1, 1]
    none = clusters(grid, team, alive, which_team=1)
    assert isinstance(none, ClusterStats) and none.count == 0 and none.largest == 0
    assert np.isnan(none.mean) and none.sizes.shape == (0,)


def test_clusters_refuse_bad_input():
    grid, team, _ = world_from_picture("01")
    alive = np.ones(2, bool)
    with pytest.raises(ValueError, match="connectivity"):
        clusters(grid, team, alive, 0, connectivity=6)
    with pytest.raises(ValueError, match="which_team"):
        clusters(grid, team, alive, -1)
    bad = grid.copy()
    bad[0, 1] = 5
    with pytest.raises(ValueError, match=r"grid\[0, 1\] = 5"):
        clusters(bad, team, alive, 0)
    bad[0, 1] = -3
    with pytest.raises(ValueError, match=r"grid\[0, 1\] = -3"):
        team_map(bad, team)
    with pytest.raises(ValueError, match="2 dimension"):
        team_map(grid[0], team)


@settings(max_examples=150, deadline=None)
@given(
    mask=arrays(
        np.bool_,
        st.tuples(st.integers(1, 14), st.integers(1, 14)),
        elements=st.booleans(),
    ),
    connectivity=st.sampled_from([4, 8]),
)
def test_label_components_equals_bfs(refs, mask, connectivity):
    labels, sizes = label_components(mask, connectivity)
    expected = refs.bfs_labels(mask, connectivity)
    np.testing.assert_array_equal(labels, expected)
    assert labels.dtype == np.int32 and sizes.dtype == np.int64
    assert sizes.tolist() == np.bincount(expected[expected >= 0], minlength=sizes.size).tolist()


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shape=st.tuples(st.integers(1, 20), st.integers(1, 20)),
    density=st.floats(0.0, 1.0),
    connectivity=st.sampled_from([4, 8]),
)
def test_clusters_equal_bfs_on_random_worlds(refs, seed, shape, density, connectivity):
    rng = np.random.default_rng(seed)
    grid, team, alive, _ = refs.random_world(rng, *shape, density, n_teams=3)
    tmap = refs.numpy_team_map(grid, team, alive)
    np.testing.assert_array_equal(team_map(grid, team, alive), tmap)
    for which in range(3):
        stats = clusters(grid, team, alive, which, connectivity)
        reference = refs.bfs_labels(tmap == which, connectivity)
        expected = np.sort(np.bincount(reference[reference >= 0]))[::-1]
        assert stats.count == expected.size
        assert stats.sizes.tolist() == expected.tolist()
        assert stats.sizes.sum() == team_sizes(team, alive, 3)[which]


# ---- front line ------------------------------------------------------------------


def test_front_line_on_a_checkerboard():
    h, w = 5, 7
    ys, xs = np.mgrid[:h, :w]
    grid = np.arange(h * w, dtype=np.int32).reshape(h, w)
    team = ((ys + xs) % 2).astype(np.int8).ravel()
    assert front_line_length(grid, team) == h * (w - 1) + (h - 1) * w
    # Every cell of either team has an enemy neighbour.
    assert front_line_cells(grid, team, which_team=0) == int((team == 0).sum())
    assert front_line_cells(grid, team, which_team=1) == int((team == 1).sum())


def test_front_line_of_separated_and_touching_blocks():
    apart, team, _ = world_from_picture(
        """
        000.111
        000.111
        000.111
        """
    )
    assert front_line_length(apart, team) == 0
    assert front_line_cells(apart, team, 0) == 0
    touching, team, _ = world_from_picture(
        """
        000111
        000111
        000111
        .00...
        """
    )
    assert front_line_length(touching, team) == 3
    # Column 2 touches team 1 (rows 0-2), and (3, 2) touches (2, 3) by a corner.
    assert front_line_cells(touching, team, 0) == 4
    assert front_line_cells(touching, team, 1) == 3
    walled, team, _ = world_from_picture("0#1")
    assert front_line_length(walled, team) == 0 and front_line_cells(walled, team) == 0


def test_front_line_ignores_dead_agents():
    grid, team, _ = world_from_picture("01\n10")
    alive = np.array([True, False, True, True])
    assert front_line_length(grid, team) == 4
    assert front_line_length(grid, team, alive) == 2
    assert front_line_cells(grid, team, 0, alive) == 2  # both touch agent 2
    assert front_line_cells(grid, team, 1, alive) == 1


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shape=st.tuples(st.integers(1, 24), st.integers(1, 24)),
    density=st.floats(0.0, 1.0),
)
def test_front_line_matches_numpy_reference(refs, seed, shape, density):
    rng = np.random.default_rng(seed)
    grid, team, alive, _ = refs.random_world(rng, *shape, density, n_teams=3)
    tmap = refs.numpy_team_map(grid, team, alive)
    assert front_line_length(grid, team, alive) == refs.numpy_front_line(tmap)
    for which in range(3):
        assert front_line_cells(grid, team, which, alive) == refs.numpy_front_cells(tmap, which)


# ---- encirclement ---------------------------------------------------------------


def test_attack_sectors_split_by_the_diagonals_half_open_clockwise():
    dy, dx = np.mgrid[-4:5, -4:5]
    dy, dx = dy.ravel(), dx.ravel()
    sectors = attack_sectors(dy, dx)
    # Reference: heading clockwise from north, sector k covers [90k - 45, 90k + 45).
    heading = np.degrees(np.arctan2(dx, -dy)) % 360
    expected = np.floor(((heading + 45) % 360) / 90 + 1e-9).astype(int) % 4
    origin = (dy == 0) & (dx == 0)
    assert sectors[origin].tolist() == [-1]
    np.testing.assert_array_equal(sectors[~origin], expected[~origin])
    # The 8 neighbours: N, NW -> N; E, NE -> E; S, SE -> S; W, SW -> W.
    names = {(-1, 0): 0, (-1, -1): 0, (0, 1): 1, (-1, 1): 1, (1, 0): 2, (1, 1): 2}
    names |= {(0, -1): 3, (1, -1): 3}
    for (ody, odx), sector in names.items():
        assert attack_sectors(np.array([ody]), np.array([odx]))[0] == sector
    assert np.bincount(sectors[~origin]).tolist() == [20, 20, 20, 20]


def attack_world(offsets: list[tuple[int, int]], target_pos=(5, 5)):
    """Agent 0 is the target; agents 1.. attack it from the given offsets."""
    pos = np.array([target_pos] + [(target_pos[0] + dy, target_pos[1] + dx) for dy, dx in offsets])
    attack_target = np.array([-1] + [0] * len(offsets), np.int32)
    return pos.astype(np.int32), attack_target


@pytest.mark.parametrize(
    "offsets,coverage",
    [
        ([(-1, 0), (0, 1), (1, 0)], 3),  # N, E, S: encircled
        ([(-1, 0), (0, 1)], 2),  # N, E: not
        ([(-1, 0), (0, 1), (1, 0), (0, -1)], 4),
        ([(-1, -1), (-1, 0), (-1, 1)], 2),  # NW, N -> N; NE -> E
        ([(-1, 1), (1, 1), (1, -1), (-1, -1)], 4),  # the four corners, one per sector
        ([(1, 1), (1, 0)], 1),  # SE and S share a sector
        ([(-2, 0), (0, 3), (2, 0)], 3),  # attackers further than one cell
    ],
)
def test_encirclement_coverage_of_one_target(offsets, coverage):
    pos, attack_target = attack_world(offsets)
    targets, cov = encirclement_coverage(pos, attack_target, return_targets=True)
    assert targets.tolist() == [0] and cov.tolist() == [coverage] and cov.dtype == np.int8
    assert encirclement_index(pos, attack_target) == (1.0 if coverage >= 3 else 0.0)


def test_encirclement_index_over_several_targets():
    # Target 0 at (2, 2) hit from N, E, S (agents 1-3); target 4 at (8, 8) hit from N (agent 5).
    pos = np.array([(2, 2), (1, 2), (2, 3), (3, 2), (8, 8), (7, 8)], np.int32)
    attack_target = np.array([-1, 0, 0, 0, -1, 4], np.int32)
    assert encirclement_coverage(pos, attack_target).tolist() == [3, 1]
    assert encirclement_index(pos, attack_target) == 0.5
    assert encirclement_index(pos, attack_target, min_sectors=1) == 1.0
    # Agent 3 was already dead: target 0 is left with N and E.
    alive = np.array([True, True, True, False, True, True])
    assert encirclement_coverage(pos, attack_target, alive).tolist() == [2, 1]
    assert encirclement_index(pos, attack_target, alive) == 0.0


def test_encirclement_is_nan_without_attacks_and_ignores_self_hits():
    pos = np.array([(0, 0), (0, 1)], np.int32)
    assert np.isnan(encirclement_index(pos, np.array([-1, -1], np.int32)))
    assert encirclement_coverage(pos, np.array([-1, -1])).shape == (0,)
    assert np.isnan(encirclement_index(pos, np.array([0, -1])))  # agent 0 hits itself
    with pytest.raises(ValueError, match=r"pos must be \[N, 2\]"):
        encirclement_index(np.zeros((2, 3), np.int32), np.array([-1, -1]))
    with pytest.raises(ValueError, match="min_sectors"):
        encirclement_index(pos, np.array([1, -1]), min_sectors=5)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60))
def test_encirclement_coverage_matches_a_python_reference(seed, n):
    rng = np.random.default_rng(seed)
    pos = rng.integers(0, 6, (n, 2)).astype(np.int32)
    attack_target = np.where(rng.random(n) < 0.7, rng.integers(0, n, n), -1).astype(np.int32)
    alive = rng.random(n) < 0.8
    sides: dict[int, set[int]] = {}
    for attacker in range(n):
        victim = int(attack_target[attacker])
        if victim < 0 or not alive[attacker]:
            continue
        dy, dx = (pos[attacker] - pos[victim]).tolist()
        if dy == dx == 0:
            continue
        heading = np.degrees(np.arctan2(dx, -dy)) % 360
        sides.setdefault(victim, set()).add(int(np.floor(((heading + 45) % 360) / 90 + 1e-9)) % 4)
    targets, coverage = encirclement_coverage(pos, attack_target, alive, return_targets=True)
    assert targets.tolist() == sorted(sides)
    assert coverage.tolist() == [len(sides[t]) for t in sorted(sides)]
    index = encirclement_index(pos, attack_target, alive)
    if sides:
        assert index == np.mean([len(v) >= 3 for v in sides.values()])
    else:
        assert np.isnan(index)


# ---- pursuit: populations and cycles ---------------------------------------------


def test_population_series_per_team_and_step():
    team = np.array([0, 1, 1, 0], np.int8)
    alive = np.array([[1, 1, 1, 1], [1, 0, 1, 1], [0, 0, 0, 1]], bool)
    assert population_series(alive, team).tolist() == [[2, 2], [2, 1], [1, 0]]
    assert population_series(list(alive), team, n_teams=3)[:, 2].tolist() == [0, 0, 0]
    # A slot reborn in another team.
    teams = np.array([[0, 1, 1, 0], [0, 1, 1, 0], [0, 1, 1, 1]], np.int8)
    assert population_series(alive, teams).tolist() == [[2, 2], [2, 1], [0, 1]]
    with pytest.raises(ValueError, match="team must be"):
        population_series(alive, team[:3])


def test_predator_prey_phase_finds_the_lag():
    t = np.arange(600)
    prey = 100 + 30 * np.sin(2 * np.pi * t / 40)
    pred = 20 + 5 * np.sin(2 * np.pi * (t - 10) / 40)  # predators follow by 10 steps
    phase = predator_prey_phase(pred, prey)
    assert phase.lag == 10 and phase.correlation > 0.9
    assert phase.lags.shape == phase.correlations.shape == (601,)
    assert predator_prey_phase(prey, pred).lag == -10
    assert predator_prey_phase(pred, prey, max_lag=15).lags.tolist() == list(range(-15, 16))
    flat = predator_prey_phase(np.full(50, 3.0), prey[:50])
    assert np.isnan(flat.lag) and np.isnan(flat.correlation)
    with pytest.raises(ValueError, match="lengths differ"):
        predator_prey_phase(pred, prey[:-1])


@pytest.mark.parametrize("period", [20.0, 37.5])
def test_cycle_period_of_a_sine(period):
    t = np.arange(1000)
    assert cycle_period(np.sin(2 * np.pi * t / period)) == pytest.approx(period, abs=0.2)
    noisy = 50 + 10 * np.sin(2 * np.pi * t / period) + np.random.default_rng(0).normal(0, 3, t.size)
    assert cycle_period(noisy) == pytest.approx(period, abs=1.0)


def test_cycle_period_is_nan_without_a_cycle():
    assert np.isnan(cycle_period(np.arange(200.0)))  # a trend never comes back
    assert np.isnan(cycle_period(np.full(100, 7.0)))
    assert np.isnan(cycle_period(np.array([1.0, 2.0, 1.0])))
    acf = autocorrelation(np.sin(np.arange(100) / 3), max_lag=10)
    assert acf.shape == (11,) and acf[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="NaN or inf at step 2"):
        cycle_period(np.array([1.0, 2.0, np.nan, 3.0]))


# ---- all together, at scale -------------------------------------------------------


def test_step_metrics_on_a_large_random_world(refs):
    """1000 x 1000 map, ~100k agents: runs fast and the numbers agree with each other."""
    rng = np.random.default_rng(7)
    grid, team, alive, pos = refs.random_world(rng, 1000, 1000, 0.1)
    n = team.size
    attack_target = np.full(n, -1, np.int32)
    attackers = rng.choice(n, n // 10, replace=False)
    attack_target[attackers] = rng.integers(0, n, attackers.size)
    metrics = step_metrics(grid, pos, team, alive, attack_target)
    sizes = team_sizes(team, alive)
    for t in range(2):
        assert metrics[f"emergence/team{t}_size"] == sizes[t]
        stats = clusters(grid, team, alive, t)
        assert stats.sizes.sum() == sizes[t]
        assert metrics[f"emergence/team{t}_clusters"] == stats.count
        assert metrics[f"emergence/team{t}_cluster_largest"] == stats.largest
        eight = clusters(grid, team, alive, t, connectivity=8)
        assert eight.count <= stats.count and eight.largest >= stats.largest
        assert front_line_cells(grid, team, t, alive) <= sizes[t]
    assert metrics["emergence/front_line"] == front_line_length(grid, team, alive) > 0
    assert 0.0 <= metrics["emergence/encirclement"] <= 1.0
