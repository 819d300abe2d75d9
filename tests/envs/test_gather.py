"""Gather: kernels against a NumPy reference, hand-computed cases, invariants, PettingZoo."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from colonylab.envs.base import BoardTooLargeError, World
from colonylab.envs.grid import gather_v0
from colonylab.envs.grid.gather import GatherConfig, GatherWorld

# moves 0..12 as documented: no-op, N E S W, NE SE SW NW, NN EE SS WW; attack 13 + k
# hits the cell of move 1 + k
MOVES = [(0, 0), (-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1)]
MOVES += [(-2, 0), (0, 2), (2, 0), (0, -2)]
ATTACK = {"N": 13, "E": 14, "S": 15, "W": 16, "NE": 17, "SE": 18, "SW": 19, "NW": 20}
F32 = np.float32


# ---- NumPy references --------------------------------------------------------------------


def snapshot(world: GatherWorld) -> dict:
    return {
        "pos": world.pos.copy(),
        "hp": world.hp.copy(),
        "alive": world.alive.copy(),
        "grid": world.grid.copy(),
        "food": world.food.copy(),
        "step": world.step_count,
        "last_action": world.last_action.copy(),
        "last_reward": world.last_reward.copy(),
        "metrics": world.metrics(),
    }


def reference_step(
    snap: dict, patches: np.ndarray, actions: np.ndarray, cfg: GatherConfig, reference_moves
):
    """One gather step by the rules of the module card, in plain Python on float32."""
    pos, hp, alive, grid, food = (snap[k].copy() for k in ("pos", "hp", "alive", "grid", "food"))
    n = len(pos)
    h, w = grid.shape
    cap = F32(cfg.food_capacity)
    reward = np.zeros(n, dtype=F32)
    eaten = np.zeros(n, dtype=F32)
    target = np.full(n, -1)
    killed = np.zeros(n, dtype=bool)
    living = np.flatnonzero(alive)

    def die(i):
        hp[i], alive[i], killed[i] = 0, False, True
        reward[i] = reward[i] + F32(cfg.dead_penalty)
        y, x = pos[i]
        grid[y, x] = -1
        if cfg.corpse_food > 0:
            food[y, x] = min(food[y, x] + F32(cfg.corpse_food), cap)

    for i in living:
        a = int(actions[i])
        r = F32(cfg.step_reward)
        if a >= 13:
            r = r + F32(cfg.attack_penalty)
            dy, dx = MOVES[a - 12]
            y, x = pos[i, 0] + dy, pos[i, 1] + dx
            if 0 <= y < h and 0 <= x < w and grid[y, x] >= 0:
                target[i] = grid[y, x]
        reward[i] = r
    hits = np.bincount(target[target >= 0], minlength=n)
    for i in living:
        if hits[i]:
            new = hp[i] - F32(hits[i]) * F32(cfg.damage)
            if new <= 0:
                die(i)
            else:
                hp[i] = new
    for i in range(n):
        if target[i] >= 0 and killed[target[i]]:
            reward[i] = reward[i] + F32(cfg.kill_reward)
    slain = int(killed.sum())
    reference_moves(actions, alive, pos, grid, MOVES)
    for i in range(n):
        if not alive[i]:
            continue
        y, x = pos[i]
        life = hp[i]
        e = min(F32(cfg.eat_rate), food[y, x])
        if e > 0:
            food[y, x] = food[y, x] - e
            eaten[i] = e
            life = min(life + e * F32(cfg.hp_per_food), F32(cfg.max_hp))
            reward[i] = reward[i] + F32(cfg.food_reward) * e
        life = life - F32(cfg.hunger)
        if life <= 0:
            die(i)
        else:
            hp[i] = life
    if cfg.regrow > 0:
        for y, x in zip(*np.nonzero(patches), strict=True):
            if food[y, x] < cap:
                food[y, x] = min(food[y, x] + F32(cfg.regrow), cap)
    return {
        "pos": pos,
        "hp": hp,
        "alive": alive,
        "grid": grid,
        "food": food,
        "reward": reward,
        "killed": killed,
        "target": target,
        "eaten": eaten,
        "slain": slain,
        "starved": int(killed.sum()) - slain,
    }


def reference_minimap(world: GatherWorld) -> np.ndarray:
    s = world.view_shape[0]
    side = world.map_size
    planes = np.zeros((2, s, s))
    area = np.zeros((s, s))
    for y in range(side):
        for x in range(side):
            b = (y * s // side, x * s // side)
            area[b] += 1
            planes[1][b] += world.food[y, x] / world.config.food_capacity
    for i in np.flatnonzero(world.alive):
        planes[0][world.pos[i, 0] * s // side, world.pos[i, 1] * s // side] += 1
    return np.divide(planes, area, out=np.zeros_like(planes), where=area > 0).astype(F32)


def reference_views(world: GatherWorld) -> np.ndarray:
    """float32[N, S, S, 5 (+2)] views of the world's state, cell by cell."""
    r = world.radius
    s = 2 * r + 1
    grid, pos, hp, food = world.grid, world.pos, world.hp, world.food
    max_hp, cap = F32(world.config.max_hp), F32(world.config.food_capacity)
    h, w = grid.shape
    out = np.zeros((world.n_agents, s, s, world.n_channels), dtype=F32)
    planes = reference_minimap(world) if world.config.minimap else None
    for i in np.flatnonzero(world.alive):
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                if dy * dy + dx * dx > r * r:
                    continue
                y, x = pos[i, 0] + dy, pos[i, 1] + dx
                cell = out[i, dy + r, dx + r]
                cell[4] = hp[i] / max_hp
                if not (0 <= y < h and 0 <= x < w):
                    cell[0] = 1
                    continue
                cell[0] = grid[y, x] == -2
                if grid[y, x] >= 0 and grid[y, x] != i:
                    cell[1] = 1
                    cell[2] = hp[grid[y, x]] / max_hp
                cell[3] = food[y, x] / cap
        if planes is not None:
            out[i, :, :, 5] = planes[0]
            out[i, :, :, 6] = planes[1]
    return out


def small_world(**kw) -> GatherWorld:
    cfg = {"map_size": 14, "agents": 30, "patches": 3, "patch_radius": 2, **kw}
    return GatherWorld(GatherConfig(**cfg))


# ---- kernels vs references ----------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        {"walls": True},
        {"walls": False, "corpse_food": 3.0, "regrow": 0.3, "eat_rate": 0.7},
    ],
)
def test_step_and_views_match_reference(extra, reference_moves):
    # small HP and strong hunger: kills and starvation both happen within 30 steps
    world = small_world(max_hp=4.0, hunger=0.3, hp_per_food=0.5, **extra)
    cfg = world.config
    world.reset(seed=3)
    rng = np.random.default_rng(3)
    slain = starved = 0
    for _ in range(30):
        before = snapshot(world)
        actions = rng.integers(0, 21, world.n_agents)
        expected = reference_step(before, world.patches, actions, cfg, reference_moves)
        obs, reward, terminated, truncated, info = world.step(actions)
        for key in ("pos", "hp", "alive", "grid", "food"):
            np.testing.assert_array_equal(getattr(world, key), expected[key], err_msg=key)
        np.testing.assert_array_equal(reward, expected["reward"])
        np.testing.assert_array_equal(terminated, expected["killed"])
        np.testing.assert_array_equal(world.attack_target, expected["target"])
        np.testing.assert_array_equal(world.last_eaten, expected["eaten"])
        assert (info["kills"], info["starved"]) == (expected["slain"], expected["starved"])
        assert not truncated.any()
        np.testing.assert_array_equal(obs, reference_views(world))
        # a fresh buffer written in full equals the world's incrementally written one
        fresh = np.full_like(obs, 7.0)
        np.testing.assert_array_equal(world.observe(out=fresh), obs)
        slain += info["kills"]
        starved += info["starved"]
    assert slain > 0 and starved > 0
    assert world.metrics()["kills"] == slain and world.metrics()["starved"] == starved


@pytest.mark.parametrize("dtype", ["float16", "uint8"])
@pytest.mark.parametrize("minimap", [False, True])
def test_obs_dtypes_and_minimap_match_reference(dtype, minimap, encode):
    world = small_world(obs_dtype=dtype, minimap=minimap)
    obs = world.reset(seed=1)
    assert obs.dtype == np.dtype(dtype) and obs.shape == (30, 11, 11, 7 if minimap else 5)
    rng = np.random.default_rng(1)
    for _ in range(6):
        obs, *_ = world.step(rng.integers(0, 21, world.n_agents))
    np.testing.assert_array_equal(obs, encode(reference_views(world), dtype))
    if minimap:
        np.testing.assert_allclose(world.minimap_planes(), reference_minimap(world), rtol=1e-6)
    # the policies read every dtype and act as on float32 where no rounding ties arise
    for name in ("forage", "greedy"):
        got = world.policy(name, seed=0)(obs)
        reference = world.policy(name, seed=0)(reference_views(world))
        assert ((got >= 0) & (got < 21)).all()
        assert (got == reference).mean() > 0.9


RUN_SCRIPT = """
import numpy as np, numba
from colonylab.envs.grid.gather import GatherConfig, GatherWorld
world = GatherWorld(GatherConfig(map_size={size}, agents={agents}, patches=3, patch_radius=2,
                                 view_radius={radius}, minimap=True, corpse_food=2.0,
                                 threads={threads}))
obs = world.reset(seed=5)
act = world.policy("greedy", seed=5)
rewards, views = [], []
for _ in range({steps}):
    obs, reward, *_ = world.step(act(obs))
    rewards.append(reward)
    views.append(obs.copy())
np.savez("out.npz", obs=np.stack(views), pos=world.pos, hp=world.hp, alive=world.alive,
         food=world.food, reward=np.stack(rewards), image=world.render_rgb(),
         threads=world.kernel_threads, jit=not numba.config.DISABLE_JIT)
"""


TRAJECTORY = ("obs", "pos", "hp", "alive", "food", "reward", "image")


def assert_same_run(got: dict, expected: dict) -> None:
    for key in TRAJECTORY:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


def test_kernels_without_jit_match_jitted(script):
    """The Python path of the kernels (NUMBA_DISABLE_JIT=1) gives the jitted results."""
    code = RUN_SCRIPT.format(size=12, agents=14, radius=3, steps=8, threads=None)
    got = script.elsewhere(code, NUMBA_DISABLE_JIT="1")
    assert not got["jit"]
    assert_same_run(got, script.here(code))


def test_seeded_trajectory_identical_twice_and_across_thread_counts(script):
    import numba

    most = numba.config.NUMBA_NUM_THREADS  # small worlds default to 1: ask for all
    kw = {"size": 24, "agents": 60, "radius": 5, "steps": 40}
    first = script.here(RUN_SCRIPT.format(**kw, threads=most))
    assert_same_run(script.here(RUN_SCRIPT.format(**kw, threads=most)), first)
    other = 1 if most > 1 else 3  # a subprocess with another NUMBA_NUM_THREADS
    code = RUN_SCRIPT.format(**kw, threads=other)
    got = script.elsewhere(code, NUMBA_NUM_THREADS=str(other))
    assert got["jit"] and int(got["threads"]) == other != most
    assert_same_run(got, first)
    assert first["alive"].sum() < 60  # the run had fights: it tests something


# ---- hand-computed cases --------------------------------------------------------------------


def open_world(**kw) -> GatherWorld:
    """A 10 x 10 open map (no walls) with 4 agents, placed by hand; no regrowth."""
    cfg = {"map_size": 10, "agents": 4, "walls": False, "patches": 0, "regrow": 0.0, **kw}
    world = GatherWorld(GatherConfig(**cfg))
    world.reset(seed=0)
    return world


def place(world, cells: dict[int, tuple[int, int]], hp: dict | None = None, food=None):
    """Agents in ``cells`` alive at those cells (``hp`` overrides), all others dead."""
    n = world.n_agents
    pos = np.zeros((n, 2), dtype=np.int32)
    alive = np.zeros(n, dtype=bool)
    hps = np.zeros(n, dtype=F32)
    for i, cell in cells.items():
        pos[i], alive[i], hps[i] = cell, True, (hp or {}).get(i, world.config.max_hp)
    return world.set_state(pos, hp=hps, alive=alive, food=food)


def test_eating_amounts_hp_and_reward(act):
    world = open_world()
    food = np.zeros((10, 10), dtype=F32)
    food[2, 2], food[5, 5], food[5, 7] = 0.25, 3.0, 4.0
    place(world, {0: (2, 2), 1: (5, 5), 2: (5, 6)}, hp={0: 5.0, 1: 9.5}, food=food)
    _, reward, *_, info = world.step(act(world, a2=2))  # agent 2 steps east onto food
    # agent 0 eats what is left (0.25 < eat_rate 1); agent 1 eats 1 and is capped at 10
    assert world.last_eaten.tolist() == [0.25, 1.0, 1.0, 0.0]
    assert world.food[2, 2] == 0 and world.food[5, 5] == 2 and world.food[5, 7] == 3
    assert world.hp[0] == F32(5.0) + F32(0.25) - F32(0.05)
    assert world.hp[1] == F32(10.0) - F32(0.05)
    assert world.hp[2] == F32(10.0) - F32(0.05)
    assert reward[0] == F32(-0.01) + F32(0.5) * F32(0.25)
    assert reward[1] == reward[2] == F32(-0.01) + F32(0.5)
    assert info["eaten"] == 2.25 and world.metrics()["food_eaten"] == 2.25
    assert world.metrics()["food"] == pytest.approx(5.0)
    # the food an agent moves away from stays; an empty cell feeds nothing
    world.step(act(world, a0=2))
    assert world.last_eaten[0] == 0 and world.hp[0] == F32(F32(5.2) - F32(0.05))


def test_attack_damage_and_kill_reward_to_every_attacker(act):
    world = open_world(agents=5)
    # agent 4 at (5, 5) with 4 HP, hit by 0 (west of it) and 1 (north of it): 2 x 2 = 4
    # damage kills it; agent 2 hits agent 1 (east of 2), agent 3 attacks an empty cell
    place(world, {0: (5, 4), 1: (4, 5), 2: (4, 4), 3: (8, 8), 4: (5, 5)}, hp={4: 4.0})
    obs, reward, terminated, _, info = world.step(
        act(world, a0=ATTACK["E"], a1=ATTACK["S"], a2=ATTACK["E"], a3=ATTACK["N"])
    )
    attack = F32(-0.01) + F32(-0.1)
    assert reward[0] == reward[1] == attack + F32(5.0)
    assert reward[2] == attack and reward[3] == attack
    assert reward[4] == F32(-0.01) + F32(-1.0)
    assert world.hp[1] == F32(10.0) - F32(2.0) - F32(0.05)  # free-for-all: any agent
    assert world.attack_target.tolist() == [4, 4, 1, -1, -1]
    assert terminated.tolist() == [False, False, False, False, True]
    assert not world.alive[4] and world.hp[4] == 0 and world.grid[5, 5] == -1
    assert info["kills"] == 1 and world.metrics()["kills"] == 1 and world.n_alive == 4
    assert not obs[4].any()  # the dead see nothing
    assert world.food[5, 5] == 0  # no corpse food by default
    # the dead stay dead: no second termination, no reward, action ignored
    _, reward, terminated, _, _ = world.step(act(world, a4=ATTACK["W"]))
    assert not terminated[4] and reward[4] == 0 and world.hp[0] == F32(9.95) - F32(0.05)


def test_corpse_food_and_cells_freed_by_deaths(act):
    world = open_world(corpse_food=3.0)
    place(world, {0: (5, 4), 1: (5, 6), 2: (5, 5)}, hp={2: 2.0})
    world.step(act(world, a0=ATTACK["E"], a1=4))  # 0 kills 2, 1 moves west onto the corpse
    assert not world.alive[2] and tuple(world.pos[1]) == (5, 5)
    assert world.last_eaten[1] == 1 and world.food[5, 5] == 2  # the corpse fed it at once
    # a starving agent leaves corpse food too, capped at the capacity
    food = np.zeros((10, 10), dtype=F32)
    food[1, 1] = 4.5
    place(world, {3: (1, 1)}, hp={3: 0.05}, food=food)
    _, reward, terminated, _, info = world.step(act(world, a3=2))  # steps off the food
    assert terminated[3] and info["starved"] == 1 and info["kills"] == 0
    assert world.food[1, 2] == 3.0 and world.food[1, 1] == 4.5
    assert reward[3] == F32(-0.01) + F32(-1.0)


def test_hunger_death_after_documented_steps():
    # exact in binary: 10 / 0.25 = 40 steps
    world = open_world(hunger=0.25)
    place(world, {0: (5, 5)})
    for step in range(1, 41):
        _, reward, terminated, *_ = world.step()
        assert terminated[0] == (step == 40), step
    assert reward[0] == F32(-0.01) + F32(-1.0) and world.metrics()["starved"] == 1
    # the card's default: a fasting agent from full HP starves in its 200th step
    world = open_world()
    place(world, {1: (2, 2)})
    steps = 0
    while world.alive[1]:
        world.step()
        steps += 1
    assert steps == 200


def test_move_conflicts_lowest_index_wins(act):
    world = open_world(agents=6)
    # agents 0 and 4 both move into (5, 5): 0 (lower index) wins
    place(world, {0: (5, 4), 4: (5, 6), 1: (2, 2), 2: (2, 3), 3: (8, 1)})
    world.step(act(world, a0=2, a4=4, a1=2, a2=4, a3=10))
    assert tuple(world.pos[0]) == (5, 5) and tuple(world.pos[4]) == (5, 6)
    # 1 and 2 swap attempts fail: each target was occupied at the start
    assert tuple(world.pos[1]) == (2, 2) and tuple(world.pos[2]) == (2, 3)
    assert tuple(world.pos[3]) == (8, 3)  # two cells east
    # the lower index wins whichever side it comes from: 3 from the south
    place(world, {5: (4, 8), 3: (6, 8)})
    world.step(act(world, a5=3, a3=1))  # both into (5, 8)
    assert tuple(world.pos[3]) == (5, 8) and tuple(world.pos[5]) == (4, 8)
    # walls block moves and views see them
    walled = GatherWorld(GatherConfig(map_size=10, agents=2, patches=0))
    walled.reset(seed=0)
    walled.set_state(np.array([[1, 1], [8, 8]]))
    walled.step(np.array([4, 10]))  # west into the wall ring, east two cells into it
    assert walled.pos.tolist() == [[1, 1], [8, 8]]
    assert walled.observe()[0, 5, 4, 0] == 1  # wall to the west


def test_food_is_conserved_without_regrowth():
    world = GatherWorld(GatherConfig(agents=60, map_size=30, regrow=0.0))
    obs = world.reset(seed=7)
    initial = world.metrics()["food"]
    assert initial == 5.0 * world.patches.sum() > 0
    policy = world.policy("greedy", seed=7)
    for _ in range(120):
        obs, *_ = world.step(policy(obs))
        m = world.metrics()
        assert m["food"] + m["food_eaten"] == pytest.approx(initial, rel=1e-6)
    assert m["food_eaten"] > 0.3 * initial and m["kills"] > 0


# ---- invariants ---------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    walls=st.booleans(),
    regrow=st.sampled_from([0.0, 0.5]),
    corpse_food=st.sampled_from([0.0, 4.0]),
    steps=st.lists(st.lists(st.integers(0, 20), min_size=20, max_size=20), max_size=12),
)
def test_invariants_under_random_actions(seed, walls, regrow, corpse_food, steps):
    world = GatherWorld(
        GatherConfig(
            map_size=9,
            agents=20,
            walls=walls,
            patches=2,
            patch_radius=2,
            regrow=regrow,
            corpse_food=corpse_food,
            max_hp=3.0,
            hunger=0.4,
        )
    )
    world.reset(seed=seed)
    cap = world.config.food_capacity
    for actions in steps:
        before_alive, before_food = world.alive.copy(), world.food.copy()
        world.step(np.array(actions))
        live = np.flatnonzero(world.alive)
        grid = world.grid
        assert (grid[world.pos[live, 0], world.pos[live, 1]] == live).all()
        np.testing.assert_array_equal(np.sort(grid[grid >= 0]), live)  # one per cell
        assert ((world.hp > 0) & (world.hp <= world.config.max_hp))[live].all()
        assert (world.hp[~world.alive] == 0).all()
        assert not (world.alive & ~before_alive).any()  # nobody comes back
        assert world.n_alive == live.size
        assert ((world.food >= 0) & (world.food <= cap)).all()
        assert (world.food[grid == -2] == 0).all()
        if regrow == 0 and corpse_food == 0:
            assert (world.food <= before_food).all()


# ---- policies ---------------------------------------------------------------------------------


def test_forage_gathers_more_than_random():
    eaten = {"forage": [], "random": []}
    for seed in range(3):
        for name in eaten:
            world = GatherWorld()
            obs = world.reset(seed=seed)
            policy = world.policy(name, seed=seed)
            for _ in range(100):
                obs, *_ = world.step(policy(obs))
            eaten[name].append(world.metrics()["food_eaten"])
            if name == "forage":
                assert world.metrics()["kills"] == 0  # foragers never attack
    for forage, random in zip(eaten["forage"], eaten["random"], strict=True):
        assert forage > 1.4 * random, eaten


def test_forage_and_greedy_choices():
    world = open_world(agents=4)
    food = np.zeros((10, 10), dtype=F32)
    food[5, 7] = 5.0  # two cells east of agent 0
    food[1, 1] = 2.0  # under agent 1: it stays and eats
    place(world, {0: (5, 5), 1: (1, 1), 2: (8, 2)}, food=food)
    forage = world.policy("forage", seed=0)(world.observe())
    assert forage[0] == 10 and forage[1] == 0 and 1 <= forage[2] <= 12  # 2 sees no food
    # greedy: hit the weakest neighbour weaker than itself, never a stronger one
    hp = {0: 8.0, 1: 6.0, 2: 5.5}
    place(world, {0: (5, 5), 1: (4, 5), 2: (5, 6), 3: (6, 6)}, hp=hp)
    greedy = world.policy("greedy", seed=0)(world.observe())
    assert greedy[0] == ATTACK["E"]  # agent 2 (5.5 HP) rather than agent 1 (6 HP)
    assert greedy[1] == ATTACK["SE"]  # agent 2; agent 0 (8 HP) is stronger
    assert 1 <= greedy[2] <= 12  # all its neighbours are stronger: it forages (no food)
    assert greedy[3] == ATTACK["N"]  # agent 2 rather than agent 0
    # hungry (HP below half, no food underfoot): it attacks the weakest neighbour anyway
    place(world, {0: (5, 5), 1: (4, 5), 2: (5, 6), 3: (6, 6)}, hp={**hp, 2: 3.0})
    assert world.policy("greedy", seed=0)(world.observe())[2] == ATTACK["NW"]  # agent 1
    food = np.zeros((10, 10), dtype=F32)
    food[5, 6] = 1.0
    place(world, {0: (5, 5), 1: (4, 5), 2: (5, 6), 3: (6, 6)}, hp={**hp, 2: 3.0}, food=food)
    assert world.policy("greedy", seed=0)(world.observe())[2] == 0  # it eats instead
    assert (world.policy("noop")(world.observe()) == 0).all()


# ---- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "actions, match",
    [
        (np.array([0, 0, 21, 0]), r"actions\[2\].*agent_2.*21"),
    ],
)
def test_out_of_range_actions_are_refused_and_change_nothing(actions, match, act, state_guard):
    world = open_world()
    food = np.zeros((10, 10), dtype=F32)
    food[5, 4] = 3.0
    place(world, {0: (5, 4), 1: (2, 2), 2: (7, 7), 3: (5, 5)}, food=food)
    world.step(act(world, a0=ATTACK["E"]))
    state_guard.assert_refused(world, lambda: world.step(actions), match, views=True)


def test_set_state_refuses_bad_input_and_changes_nothing(state_guard):
    world = open_world()
    place(world, {0: (5, 4), 1: (2, 2)})
    before = state_guard.snapshot(world)
    pos = np.array([[1, 1], [1, 2], [3, 3], [4, 4]])
    food = np.zeros((10, 10))
    cases = [
        ({"pos": pos[:3]}, r"pos must be integers of shape \(4, 2\)"),
        ({"pos": np.array([[1, 1], [1, 1], [3, 3], [4, 4]])}, "share a cell"),
        ({"pos": np.array([[1, 1], [10, 2], [3, 3], [4, 4]])}, r"agent 1 at \(10, 2\)"),
        ({"pos": pos, "hp": np.array([1.0, 0.0, 1.0, 1.0])}, r"hp\[1\] = 0.0"),
        ({"pos": pos, "hp": np.array([1.0, 1.0, 11.0, 1.0])}, r"hp\[2\] = 11.0.*max_hp=10"),
        ({"pos": pos, "food": food[:5]}, r"food must be numbers of shape \(10, 10\)"),
        ({"pos": pos, "food": np.where(np.eye(10) > 0, 5.5, 0.0)}, r"food\[0, 0\] = 5.5"),
        ({"pos": pos, "food": np.full((10, 10), np.nan)}, r"food\[0, 0\] = nan"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            world.set_state(**kwargs)
        state_guard.assert_unchanged(world, before)
    walled = GatherWorld(GatherConfig(map_size=10, agents=1, patches=0))
    walled.reset(seed=0)
    with pytest.raises(ValueError, match=r"food\[0, 0\] lies on a wall"):
        walled.set_state(np.array([[3, 3]]), food=np.where(np.eye(10) > 0, 1.0, 0.0))


def test_kernel_threads_default_and_refusal():
    import numba

    assert small_world().kernel_threads == 1  # below SERIAL_BELOW agents
    assert small_world(threads=10**6).kernel_threads == numba.config.NUMBA_NUM_THREADS
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        GatherConfig(threads=0)


def test_config_errors():
    with pytest.raises(ValueError, match=r"10 x 10 map \(walls=True\) has 64 free cells.*>= 12"):
        GatherConfig(map_size=10, agents=100)
    with pytest.raises(ValueError, match="patch_layout"):
        GatherConfig(patch_layout="grid")
    with pytest.raises(ValueError, match="obs_dtype"):
        GatherConfig(obs_dtype="float64")
    with pytest.raises(ValueError, match="view_radius"):
        GatherConfig(view_radius=1)
    with pytest.raises(ValueError, match="hunger must be a finite number >= 0"):
        GatherConfig(hunger=-0.1)
    with pytest.raises(ValueError, match="food_capacity must be > 0"):
        GatherConfig(food_capacity=0.0)
    with pytest.raises(ValueError, match="agents must be an integer >= 1"):
        GatherConfig(agents=True)
    with pytest.raises(ValueError, match="kill_reward must be a finite number"):
        GatherConfig(kill_reward=float("inf"))
    with pytest.raises(BoardTooLargeError, match="gather of"):
        GatherWorld(GatherConfig(agents=4_000_000_000))
    with pytest.raises(ValueError, match="unknown gather policy 'greedy-vs-random'"):
        GatherWorld().policy("greedy-vs-random")


def test_defaults_and_layouts():
    cfg = GatherConfig()
    assert (cfg.size, cfg.n_patches, cfg.agents) == (48, 6, 100)
    assert GatherConfig(agents=10_000).size == 472  # ceil(sqrt(10000 / 0.045))
    world = GatherWorld()
    obs = world.reset(seed=0)
    assert isinstance(world, World) and obs.shape == (100, 11, 11, 5)
    assert (world.team == 0).all() and world.grid[0].tolist() == [-2] * 48
    assert world.food[world.patches].min() == 5 and world.food[~world.patches].max() == 0
    first = world.patches.copy()
    world.reset(seed=1)
    assert not np.array_equal(first, world.patches)  # random layout follows the seed
    ring = GatherWorld(GatherConfig(patch_layout="ring", patches=4, map_size=40, agents=10))
    ring.reset(seed=0)
    layout = ring.patches.copy()
    ring.reset(seed=1)
    np.testing.assert_array_equal(ring.patches, layout)
    assert layout.sum() == 4 * 49  # four disjoint discs of radius 4
    single = GatherWorld(GatherConfig(patch_layout="ring", patches=1, map_size=21, agents=4))
    single.reset(seed=0)
    assert single.patches[10, 10] and single.patches.sum() == 49


def test_render_state_and_metrics():
    world = open_world()
    food = np.zeros((10, 10), dtype=F32)
    food[1, 1], food[1, 2] = 5.0, 1.0
    place(world, {0: (5, 4), 1: (5, 5)}, hp={1: 5.0}, food=food)
    image = world.render_rgb()
    assert image.shape == (10, 10, 3) and image.dtype == np.uint8
    assert image[1, 1].tolist() == [60, 190, 75]  # full food
    assert image[1, 1, 1] > image[1, 2, 1] > image[0, 0, 1]  # green by amount
    assert image[5, 4].tolist() == [255, 214, 70]  # agent at full HP
    assert image[5, 5, 0] < image[5, 4, 0]  # a weaker agent is darker
    assert image[0, 0].tolist() == image[9, 9].tolist() == [16, 17, 24]  # floor
    walled = GatherWorld(GatherConfig(map_size=12, agents=2))
    walled.reset(seed=0)
    assert walled.render_rgb()[0, 0].tolist() == [118, 120, 130]
    assert world.metrics() == {
        "step": 0,
        "alive": 2,
        "hp_mean": 7.5,
        "food": 6.0,
        "food_eaten": 0.0,
        "kills": 0,
        "starved": 0,
    }
    state = world.state()
    assert state.shape == (10, 10, 4) and state[5, 4, 1] == 1 and state[5, 5, 2] == 0.5
    assert state[1, 1, 3] == 1 and state[1, 2, 3] == F32(0.2) and state[..., 0].sum() == 0


# ---- PettingZoo ----------------------------------------------------------------------------------

PZ = {"map_size": 16, "agents": 24, "patches": 3, "patch_radius": 2}


def test_parallel_names_and_shared_spaces():
    env = gather_v0.parallel_env(**PZ)
    env.reset(seed=0)
    assert env.possible_agents[-1] == "agent_23"
    assert env.observation_space("agent_0") is env.observation_space("agent_5")


def test_dict_api_refuses_dead_and_out_of_range_actions(state_guard):
    env = gather_v0.parallel_env(map_size=10, agents=4, walls=False, patches=0)
    env.reset(seed=0)
    world = env.world
    place(world, {0: (5, 4), 1: (1, 1), 2: (8, 8), 3: (5, 5)}, hp={3: 2.0})
    env.step({"agent_0": ATTACK["E"]})
    assert "agent_3" not in env.agents and len(env.agents) == 3
    before = state_guard.snapshot(world)
    cases = [
        ({"agent_1": 0, "agent_3": 1}, "agent_3.*dead"),
        ({"agent_1": 0, "agent_2": 21}, "agent_2.*21"),
    ]
    for actions, match in cases:
        with pytest.raises(ValueError, match=match):
            env.step(actions)
        state_guard.assert_unchanged(world, before)
    env.step({"agent_1": np.int64(2), "agent_2": 3.0})  # numpy ints and integral floats
    assert tuple(world.pos[1]) == (1, 2) and tuple(world.pos[2]) == (9, 8)
