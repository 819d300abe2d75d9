"""Battle: kernels against a NumPy reference, hand-computed fights, invariants, PettingZoo."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from colonylab.envs.base import BoardTooLargeError, World
from colonylab.envs.grid import _kernels as K
from colonylab.envs.grid import battle_v0
from colonylab.envs.grid.battle import BattleConfig, BattleWorld

# moves 0..12 as documented: no-op, N E S W, NE SE SW NW, NN EE SS WW; attack 13 + k
# hits the cell of move 1 + k
MOVES = [(0, 0), (-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1)]
MOVES += [(-2, 0), (0, 2), (2, 0), (0, -2)]
F32 = np.float32


# ---- NumPy references --------------------------------------------------------------------


def snapshot(world: BattleWorld) -> dict:
    return {
        "pos": world.pos.copy(),
        "hp": world.hp.copy(),
        "alive": world.alive.copy(),
        "grid": world.grid.copy(),
        "step": world.step_count,
        "last_action": world.last_action.copy(),
        "last_reward": world.last_reward.copy(),
    }


def reference_step(
    snap: dict, team: np.ndarray, actions: np.ndarray, cfg: BattleConfig, reference_moves
) -> dict:
    """One battle step by the rules of the module card, in plain Python on float32."""
    pos, hp, alive, grid = (snap[k].copy() for k in ("pos", "hp", "alive", "grid"))
    n = len(team)
    h, w = grid.shape
    reward = np.zeros(n, dtype=F32)
    target = np.full(n, -1)
    for i in np.flatnonzero(alive):
        a = int(actions[i])
        r = F32(cfg.step_reward)
        if a >= 13:
            r = r + F32(cfg.attack_penalty)
            dy, dx = MOVES[a - 12]
            y, x = pos[i, 0] + dy, pos[i, 1] + dx
            if 0 <= y < h and 0 <= x < w and grid[y, x] >= 0 and team[grid[y, x]] != team[i]:
                target[i] = grid[y, x]
                r = r + F32(cfg.attack_opponent_reward)
        reward[i] = r
    hits = np.bincount(target[target >= 0], minlength=n)
    killed = np.zeros(n, dtype=bool)
    for i in np.flatnonzero(alive):
        new = hp[i] - F32(hits[i]) * F32(cfg.damage)
        if new <= 0:
            hp[i], alive[i], killed[i] = 0, False, True
            reward[i] = reward[i] + F32(cfg.dead_penalty)
            grid[pos[i, 0], pos[i, 1]] = -1
        else:
            hp[i] = min(new + F32(cfg.recover), F32(cfg.max_hp))
    for i in range(n):
        if target[i] >= 0 and killed[target[i]]:
            reward[i] = reward[i] + F32(cfg.kill_reward)
    reference_moves(actions, alive, pos, grid, MOVES)
    return {
        "pos": pos,
        "hp": hp,
        "alive": alive,
        "grid": grid,
        "reward": reward,
        "killed": killed,
        "target": target,
    }


def reference_views(world: BattleWorld) -> np.ndarray:
    """float32[N, S, S, 5 (+2)] views of the world's state, cell by cell."""
    r = world.radius
    s = 2 * r + 1
    grid, pos, team, hp = world.grid, world.pos, world.team, world.hp
    h, w = grid.shape
    out = np.zeros((world.n_agents, s, s, world.n_channels), dtype=F32)
    planes = world.minimap_planes() if world.config.minimap else None
    for i in np.flatnonzero(world.alive):
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                if dy * dy + dx * dx > r * r:
                    continue
                y, x = pos[i, 0] + dy, pos[i, 1] + dx
                cell = out[i, dy + r, dx + r]
                if not (0 <= y < h and 0 <= x < w) or grid[y, x] == -2:
                    cell[0] = 1
                elif grid[y, x] >= 0:
                    j = grid[y, x]
                    ch = 1 if team[j] == team[i] else 3
                    cell[ch] = 1
                    cell[ch + 1] = hp[j] / F32(world.config.max_hp)
        if planes is not None:
            out[i, :, :, 5] = planes[team[i]]
            out[i, :, :, 6] = planes[1 - team[i]]
    return out


def small_world(**kw) -> BattleWorld:
    cfg = {"map_size": 14, "agents_per_team": 30, "placement": "random", **kw}
    return BattleWorld(BattleConfig(**cfg))


# ---- kernels vs references ----------------------------------------------------------------


def test_action_table_matches_documented_order():
    for a, (dy, dx) in enumerate(MOVES):
        assert (K.ACTION_DY[a], K.ACTION_DX[a]) == (dy, dx)
    for k in range(8):
        assert (K.ACTION_DY[13 + k], K.ACTION_DX[13 + k]) == MOVES[1 + k]
        assert max(abs(MOVES[1 + k][0]), abs(MOVES[1 + k][1])) == 1  # within range 1.5
    lo, hi = K.circle_spans(6)
    assert int((hi - lo + 1).sum()) == 113  # cells with dy^2 + dx^2 <= 36


@pytest.mark.parametrize("walls", [True, False])
def test_step_and_views_match_reference(walls, reference_moves):
    world = small_world(walls=walls, max_hp=5.0, recover=0.3)  # deaths come sooner
    cfg = world.config
    world.reset(seed=3)
    rng = np.random.default_rng(3)
    for _ in range(30):
        before = snapshot(world)
        actions = rng.integers(0, 21, world.n_agents)
        expected = reference_step(before, world.team, actions, cfg, reference_moves)
        obs, reward, terminated, truncated, info = world.step(actions)
        for key in ("pos", "hp", "alive", "grid"):
            np.testing.assert_array_equal(getattr(world, key), expected[key], err_msg=key)
        np.testing.assert_array_equal(reward, expected["reward"])
        np.testing.assert_array_equal(terminated, expected["killed"])
        np.testing.assert_array_equal(world.attack_target, expected["target"])
        assert not truncated.any()
        np.testing.assert_array_equal(obs, reference_views(world))
        # a fresh buffer written in full equals the world's incrementally written one
        fresh = np.full_like(obs, 7.0)
        np.testing.assert_array_equal(world.observe(out=fresh), obs)
    assert world.metrics()["red_alive"] + world.metrics()["blue_alive"] < world.n_agents


@pytest.mark.parametrize("dtype", ["float16", "uint8"])
@pytest.mark.parametrize("minimap", [False, True])
def test_obs_dtypes_and_minimap_match_reference(dtype, minimap, encode, team_density):
    world = small_world(obs_dtype=dtype, minimap=minimap)
    obs = world.reset(seed=1)
    assert obs.dtype == np.dtype(dtype) and obs.shape == (60, 13, 13, 7 if minimap else 5)
    rng = np.random.default_rng(1)
    for _ in range(6):
        obs, *_ = world.step(rng.integers(0, 21, world.n_agents))
    np.testing.assert_array_equal(obs, encode(reference_views(world), dtype))
    if minimap:
        np.testing.assert_allclose(world.minimap_planes(), team_density(world), rtol=1e-6)
    if dtype == "uint8":
        assert obs.max() == 255 and set(np.unique(obs[..., 1])) <= {0, 255}
    # the greedy policy reads every dtype; where no HP ties arise it acts as on float32
    greedy = world.policy("greedy", seed=0)(obs)
    reference = world.policy("greedy", seed=0)(reference_views(world))
    assert ((greedy >= 0) & (greedy < 21)).all()
    assert (greedy == reference).mean() > 0.9


def test_kernels_without_jit_match_jitted(script):
    """The Python path of the kernels (NUMBA_DISABLE_JIT=1) gives the jitted results."""
    code = """
        import numpy as np, numba
        from colonylab.envs.grid.battle import BattleConfig, BattleWorld
        world = BattleWorld(BattleConfig(map_size=12, agents_per_team=12, placement="random",
                                         minimap=True))
        obs = world.reset(seed=5)
        act = world.policy("greedy-vs-random", seed=5)
        rewards = []
        for _ in range(6):
            obs, reward, *_ = world.step(act(obs))
            rewards.append(reward)
        np.savez("out.npz", obs=obs, pos=world.pos, hp=world.hp, alive=world.alive,
                 reward=np.stack(rewards), image=world.render_rgb(),
                 jit=not numba.config.DISABLE_JIT)
        """
    got, want = script.elsewhere(code, NUMBA_DISABLE_JIT="1"), script.here(code)
    assert not got["jit"] and want["jit"]
    for key in ("obs", "pos", "hp", "alive", "reward", "image"):
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


# ---- hand-computed fights -------------------------------------------------------------------


def duel_world(**kw) -> BattleWorld:
    """A 10 x 10 open map with 3 agents a side (red 0-2, blue 3-5), placed by hand."""
    world = BattleWorld(BattleConfig(map_size=10, agents_per_team=3, walls=False, **kw))
    world.reset(seed=0)
    return world


def place(world: BattleWorld, cells: dict[int, tuple[int, int]], hp: dict | None = None):
    """Agents in ``cells`` alive at those cells (``hp`` overrides), all others dead."""
    n = world.n_agents
    pos = np.zeros((n, 2), dtype=np.int32)
    alive = np.zeros(n, dtype=bool)
    hps = np.zeros(n, dtype=F32)
    for i, cell in cells.items():
        pos[i], alive[i], hps[i] = cell, True, (hp or {}).get(i, world.config.max_hp)
    world.set_state(pos, hp=hps, alive=alive)


ATTACK = {"N": 13, "E": 14, "S": 15, "W": 16, "NE": 17, "SE": 18, "SW": 19, "NW": 20}


def test_hit_damage_and_recovery(act):
    world = duel_world()
    place(world, {0: (5, 5), 3: (5, 6)})
    _, reward, terminated, _, info = world.step(act(world, a0=ATTACK["E"]))
    assert world.hp[3] == F32(10) - F32(2) + F32(0.1)  # 8.1
    assert world.hp[0] == 10  # recovery is capped
    assert reward[0] == F32(-0.005) + F32(-0.1) + F32(0.2)
    assert reward[3] == F32(-0.005)
    assert world.attack_target[0] == 3 and not terminated.any()
    assert info["kills"].tolist() == [0, 0]
    for _ in range(3):  # recovery only
        world.step(act(world))
    assert world.hp[3] == pytest.approx(8.4, abs=1e-5)


def test_kill_reward_to_every_attacker_and_friendly_fire(act):
    world = duel_world()
    # blue 3 at (5, 5) with 4 HP, attacked by red 0 (west of it) and red 1 (north of it);
    # red 2 hits its friend red 1 (east of 2), blue 4 attacks an empty cell
    place(world, {0: (5, 4), 1: (4, 5), 2: (4, 4), 3: (5, 5), 4: (8, 8)}, hp={3: 4.0})
    obs, reward, terminated, _, info = world.step(
        act(world, a0=ATTACK["E"], a1=ATTACK["S"], a2=ATTACK["E"], a4=ATTACK["N"])
    )
    hit_and_kill = F32(-0.005) + F32(-0.1) + F32(0.2) + F32(5.0)
    assert reward[0] == hit_and_kill and reward[1] == hit_and_kill
    assert reward[2] == F32(-0.005) + F32(-0.1)  # friendly fire: penalty, no damage
    assert world.hp[1] == 10
    assert reward[3] == F32(-0.005) + F32(-0.1)  # death
    assert reward[4] == F32(-0.005) + F32(-0.1)  # attack on an empty cell
    assert terminated.tolist() == [False, False, False, True, False, False]
    assert not world.alive[3] and world.hp[3] == 0 and world.grid[5, 5] == -1
    assert info["kills"].tolist() == [1, 0] and world.metrics()["red_kills"] == 1
    assert not obs[3].any()  # the dead see nothing
    # the dead stay dead: no second termination, no reward, action ignored
    _, reward, terminated, _, _ = world.step(act(world, a3=ATTACK["W"]))
    assert not terminated[3] and reward[3] == 0 and not world.alive[3]
    assert world.hp[0] == 10


def test_simultaneous_kills_and_exact_zero_hp(act):
    world = duel_world()
    place(world, {0: (5, 5), 3: (5, 6)}, hp={0: 2.0, 3: 2.0})
    _, reward, terminated, _, info = world.step(act(world, a0=ATTACK["E"], a3=ATTACK["W"]))
    both = F32(-0.005) + F32(-0.1) + F32(0.2) + F32(-0.1) + F32(5.0)
    assert terminated[0] and terminated[3]
    np.testing.assert_allclose(reward[[0, 3]], both, rtol=1e-6)
    assert info["kills"].tolist() == [1, 1] and info["team_alive"].tolist() == [0, 0]


def test_move_conflicts_lowest_index_wins(act):
    world = duel_world()
    # red 0 and blue 4 both move into (5, 5): red 0 (lower index) wins
    place(world, {0: (5, 4), 4: (5, 6), 1: (2, 2), 2: (2, 3), 3: (8, 1)})
    world.step(act(world, a0=2, a4=4, a1=2, a2=4, a3=10))
    assert tuple(world.pos[0]) == (5, 5) and tuple(world.pos[4]) == (5, 6)
    # red 1 and red 2 swap attempts fail: each target was occupied at the start
    assert tuple(world.pos[1]) == (2, 2) and tuple(world.pos[2]) == (2, 3)
    # blue 3 jumps two cells east (nothing in between matters)
    assert tuple(world.pos[3]) == (8, 3)
    # the lower index wins whichever side it comes from: blue 3 from the south
    place(world, {5: (4, 8), 3: (6, 8)})
    world.step(act(world, a5=3, a3=1))  # both into (5, 8)
    assert tuple(world.pos[3]) == (5, 8) and tuple(world.pos[5]) == (4, 8)


def test_moves_blocked_by_walls_edges_and_followers(act):
    world = duel_world()
    # no walls here: the map edge blocks; a follower cannot enter a cell vacated this step
    place(world, {0: (0, 0), 1: (5, 5), 2: (5, 4), 3: (9, 9)})
    world.step(act(world, a0=1, a1=2, a2=2, a3=11))
    assert tuple(world.pos[0]) == (0, 0)  # north of row 0 is outside
    assert tuple(world.pos[1]) == (5, 6) and tuple(world.pos[2]) == (5, 4)
    assert tuple(world.pos[3]) == (9, 9)
    walled = BattleWorld(BattleConfig(map_size=10, agents_per_team=1))
    walled.reset(seed=0)
    walled.set_state(np.array([[1, 1], [8, 8]]))
    walled.step(np.array([4, 10]))  # west into the wall ring, east two cells into it
    assert walled.pos.tolist() == [[1, 1], [8, 8]]
    assert walled.grid[0, 0] == -2 and walled.observe()[0, 6, 5, 0] == 1  # wall to the west


def test_cell_freed_by_a_death_can_be_entered_the_same_step(act):
    world = duel_world()
    place(world, {0: (5, 4), 1: (5, 6), 3: (5, 5)}, hp={3: 2.0})
    world.step(act(world, a0=ATTACK["E"], a1=4))  # red 0 kills blue 3, red 1 moves west
    assert not world.alive[3] and tuple(world.pos[1]) == (5, 5)


# ---- determinism and invariants -----------------------------------------------------------------


def trajectory(seed: int, steps: int = 30, **kw) -> list[np.ndarray]:
    world = small_world(**kw)
    obs = world.reset(seed=seed)
    policy = world.policy("greedy-vs-random", seed=seed)
    out = []
    for _ in range(steps):
        obs, reward, *_ = world.step(policy(obs))
        out += [obs.copy(), reward, world.pos.copy(), world.hp.copy()]
    return out


def test_seeded_trajectory_identical_twice_and_across_thread_counts():
    import numba

    most = numba.config.NUMBA_NUM_THREADS  # small worlds default to 1: ask for all
    first = trajectory(11, threads=most)
    second = trajectory(11, threads=most)
    single = trajectory(11, threads=1)
    assert small_world(threads=most).kernel_threads == most
    for a, b, c in zip(first, second, single, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert not all(np.array_equal(a, b) for a, b in zip(first, trajectory(12), strict=True))


def test_kernel_threads_default_and_refusal():
    import numba

    assert small_world().kernel_threads == 1  # below SERIAL_BELOW agents
    big = BattleWorld(BattleConfig(agents=5000))
    assert big.kernel_threads == numba.config.NUMBA_NUM_THREADS
    assert small_world(threads=10**6).kernel_threads == numba.config.NUMBA_NUM_THREADS
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        BattleConfig(threads=0)


def check_invariants(world: BattleWorld, before_alive: np.ndarray, before_counts: np.ndarray):
    live = np.flatnonzero(world.alive)
    grid = world.grid
    assert (grid[world.pos[live, 0], world.pos[live, 1]] == live).all()
    on_grid = np.sort(grid[grid >= 0])
    np.testing.assert_array_equal(on_grid, live)  # one agent per cell; the dead are gone
    assert ((world.hp > 0) & (world.hp <= world.config.max_hp))[live].all()
    assert (world.hp[~world.alive] == 0).all()
    assert not (world.alive & ~before_alive).any()  # nobody comes back
    counts = np.bincount(world.team[live], minlength=2)
    assert (counts <= before_counts).all()
    np.testing.assert_array_equal(counts, world.team_alive)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    walls=st.booleans(),
    steps=st.lists(st.lists(st.integers(0, 20), min_size=36, max_size=36), max_size=12),
)
def test_invariants_under_random_actions(seed, walls, steps):
    world = BattleWorld(
        BattleConfig(map_size=9, agents_per_team=18, placement="random", walls=walls)
    )
    world.reset(seed=seed)
    for actions in steps:
        alive, counts = world.alive.copy(), world.team_alive
        world.step(np.array(actions))
        check_invariants(world, alive, counts)


def test_greedy_beats_random():
    wins = 0
    for seed in range(20):
        world = BattleWorld(
            BattleConfig(map_size=24, agents_per_team=20, placement="random", max_cycles=200)
        )
        obs = world.reset(seed=seed)
        greedy_red = seed % 2 == 0  # greedy plays either side
        name = "greedy-vs-random" if greedy_red else "random-vs-greedy"
        policy = world.policy(name, seed=seed)
        for _ in range(world.config.max_cycles):
            obs, *_ = world.step(policy(obs))
            if world.team_alive.min() == 0:
                break
        red, blue = world.team_alive
        wins += (red > blue) if greedy_red else (blue > red)
    assert wins >= 18, f"greedy won {wins} of 20"


def test_greedy_attacks_weakest_neighbour_and_approaches():
    world = duel_world()
    place(world, {0: (5, 5), 3: (4, 5), 4: (5, 6)}, hp={3: 6.0, 4: 3.0})
    obs = world.observe()
    assert world.policy("greedy", seed=0)(obs)[0] == ATTACK["E"]  # blue 4 is weaker
    place(world, {0: (5, 5), 3: (5, 8)})
    actions = world.policy("greedy", seed=0)(world.observe())
    assert actions[0] == 10  # two cells east: next to blue 3
    assert actions[3] == 12  # and blue 3 comes two cells west


def test_greedy_heads_for_enemies_beyond_its_view_with_minimap_and_position():
    cfg = BattleConfig(map_size=40, agents_per_team=2, walls=False, minimap=True)
    world = BattleWorld(cfg.__class__(**{**cfg.__dict__, "extra_features": True}))
    world.reset(seed=0)
    # red 0 far west, blue 2 far east (30 cells apart: out of the 13 x 13 view)
    place(world, {0: (20, 3), 2: (20, 33)})
    obs = world.observe(), world.features()
    actions = world.policy("greedy", seed=0)({"view": obs[0], "features": obs[1]})
    assert actions[0] in (2, 10) and actions[2] in (4, 12)  # east / west, 1 or 2 cells
    # without the minimap channels the same agents wander at random (seeded fallback)
    plain = BattleWorld(BattleConfig(map_size=40, agents_per_team=2, walls=False))
    plain.reset(seed=0)
    place(plain, {0: (20, 3), 2: (20, 33)})
    fallback = plain.policy("greedy", seed=0)(plain.observe())
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(
        fallback[[0, 2]], rng.integers(K.FIRST_MOVE, K.FIRST_ATTACK, 4)[[0, 2]]
    )


def test_greedy_with_minimap_charges_and_wins_faster():
    """With minimap + position the whole greedy army closes in: more kills in 60 steps."""
    kills = []
    for minimap in (False, True):
        world = BattleWorld(
            BattleConfig(agents=800, minimap=minimap, extra_features=minimap, max_cycles=10**6)
        )
        obs = world.reset(seed=1)
        policy = world.policy("greedy-vs-noop", seed=1)
        for _ in range(60):
            obs, *_ = world.step(policy(obs))
        kills.append(world.metrics()["red_kills"])
    assert kills[1] > 1.25 * kills[0], kills  # measured 253 against 171


# ---- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "actions, match",
    [
        (np.array([0, 0, 21, 0, 0, 0]), r"actions\[2\].*red_2.*21"),
    ],
)
def test_out_of_range_actions_are_refused_and_change_nothing(actions, match, act, state_guard):
    world = duel_world()
    place(world, {0: (5, 4), 1: (2, 2), 2: (7, 7), 3: (5, 5), 4: (1, 8), 5: (8, 1)})
    world.step(act(world, a0=ATTACK["E"]))
    state_guard.assert_refused(world, lambda: world.step(actions), match, views=True)


def test_config_errors():
    with pytest.raises(ValueError, match=r"map_size >= \d+"):
        BattleConfig(map_size=10, agents_per_team=50)
    with pytest.raises(ValueError, match="disagree"):
        BattleConfig(agents=100, agents_per_team=10)
    with pytest.raises(ValueError, match="obs_dtype"):
        BattleConfig(obs_dtype="float64")
    with pytest.raises(ValueError, match="placement"):
        BattleConfig(placement="ring")
    with pytest.raises(ValueError, match="view_radius"):
        BattleConfig(view_radius=1)
    with pytest.raises(BoardTooLargeError, match="battle of"):
        BattleWorld(BattleConfig(agents=4_000_000_000))


def test_sizes_follow_magent():
    assert (BattleConfig().size, BattleConfig().team_size) == (45, 81)
    cfg = BattleConfig(agents=10_000)
    assert cfg.team_size == 5000 and cfg.size == 354  # ceil(sqrt(5000 / 0.04))
    assert BattleConfig(map_size=80).team_size == 256
    world = BattleWorld()
    world.reset(seed=0)
    assert isinstance(world, World)
    assert world.pos[:81, 1].max() < world.pos[81:, 1].min()  # red faces blue from the west
    assert world.grid[0].tolist() == [-2] * 45


def test_render_and_metrics():
    world = duel_world()
    place(world, {0: (5, 4), 3: (5, 5)}, hp={3: 5.0})
    image = world.render_rgb()
    assert image.shape == (10, 10, 3) and image.dtype == np.uint8
    assert image[5, 4, 0] > 200 and image[5, 4, 2] < 100  # red at full HP
    assert image[5, 5, 2] > image[5, 5, 0]  # blue
    assert image[0, 0].tolist() == image[9, 9].tolist()  # floor
    walled = BattleWorld(BattleConfig(map_size=12, agents_per_team=2))
    walled.reset(seed=0)
    assert walled.render_rgb()[0, 0].tolist() == [118, 120, 130]
    metrics = world.metrics()
    assert metrics == {
        "step": 0,
        "red_alive": 1,
        "red_hp": 10.0,
        "red_kills": 0,
        "blue_alive": 1,
        "blue_hp": 5.0,
        "blue_kills": 0,
    }
    state = world.state()
    assert state.shape == (10, 10, 5) and state[5, 4, 1] == 1 and state[5, 5, 4] == 0.5


@pytest.mark.slow
def test_a_million_agents_step():
    try:
        world = BattleWorld(BattleConfig(agents=1_000_000))
    except BoardTooLargeError:
        pytest.skip("not enough memory for a million agents here")
    obs = world.reset(seed=0)
    assert obs.shape == (1_000_000, 13, 13, 5) and world.map_size == 3536
    _, reward, *_ = world.step(np.random.default_rng(0).integers(0, 21, world.n_agents))
    assert reward.shape == (1_000_000,) and world.metrics()["red_alive"] == 500_000


# ---- PettingZoo ----------------------------------------------------------------------------------


def test_parallel_agent_names():
    env = battle_v0.parallel_env(map_size=20, agents_per_team=15, placement="random")
    assert env.possible_agents[0] == "red_0" and env.possible_agents[15] == "blue_0"


def test_dict_api_refuses_dead_and_out_of_range_actions(state_guard):
    env = battle_v0.parallel_env(map_size=10, agents_per_team=3, walls=False)
    env.reset(seed=0)
    world = env.world
    place(world, {0: (5, 4), 1: (1, 1), 2: (8, 8), 3: (5, 5), 4: (1, 8), 5: (8, 1)}, hp={3: 2.0})
    env.step({"red_0": ATTACK["E"]})
    assert "blue_0" not in env.agents and len(env.agents) == 5
    before = state_guard.snapshot(world)
    cases = [
        ({"red_1": 0, "blue_0": 1}, "blue_0.*dead"),
        ({"red_1": 0, "red_2": 21}, "red_2.*21"),
    ]
    for actions, match in cases:
        with pytest.raises(ValueError, match=match):
            env.step(actions)
        state_guard.assert_unchanged(world, before)
    env.step({"red_1": np.int64(2), "red_2": 3.0})  # numpy ints and integral floats are fine
    assert tuple(world.pos[1]) == (1, 2) and tuple(world.pos[2]) == (9, 8)
