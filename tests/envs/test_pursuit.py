"""Pursuit: kernels against a NumPy reference, hand-computed hunts, invariants, PettingZoo."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from colonylab.envs.base import BoardTooLargeError, World
from colonylab.envs.grid import _kernels as K
from colonylab.envs.grid import pursuit_v0
from colonylab.envs.grid.pursuit import PursuitConfig, PursuitWorld

# moves 0..8 as documented: no-op, N E S W, NE SE SW NW; predator attack 9 + k hits the
# cell of move 1 + k
MOVES = [(0, 0), (-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1)]
ATTACK = {"N": 9, "E": 10, "S": 11, "W": 12, "NE": 13, "SE": 14, "SW": 15, "NW": 16}
MOVE = {"N": 1, "E": 2, "S": 3, "W": 4, "NE": 5, "SE": 6, "SW": 7, "NW": 8}
F32 = np.float32
DYNAMICS = {
    "prey_birth": 0.3,
    "predator_starvation": 0.125,
    "predator_birth": 0.5,
    "birth_energy": 1.0,
    "kill_energy": 0.75,
    "min_attackers": 1,
}


# ---- NumPy references --------------------------------------------------------------------


def snapshot(world: PursuitWorld) -> dict:
    return {
        "pos": world.pos.copy(),
        "alive": world.alive.copy(),
        "energy": world.energy.copy(),
        "grid": world.grid.copy(),
        "step": world.step_count,
        "last_action": world.last_action.copy(),
        "last_reward": world.last_reward.copy(),
        "metrics": world.metrics(),
    }


def random_actions(rng: np.random.Generator, world: PursuitWorld) -> np.ndarray:
    return rng.integers(0, world.n_actions)


def reference_step(snap: dict, world: PursuitWorld, actions: np.ndarray, reference_moves) -> dict:
    """One pursuit step by the rules of the module card, in plain Python on float32.

    Births use the world's draws of that step (``birth_draw``, ``cell_draw``).
    """
    cfg = world.config
    team = world.team
    pos, alive, energy, grid = (snap[k].copy() for k in ("pos", "alive", "energy", "grid"))
    n = len(team)
    h, w = grid.shape
    reward = np.zeros(n, dtype=F32)
    target = np.full(n, -1)
    for i in np.flatnonzero(alive):
        a = int(actions[i])
        if team[i] == 0:
            r = F32(cfg.predator_step_reward)
            if a >= 9:
                r = r + F32(cfg.attack_penalty)
                dy, dx = MOVES[a - 8]
                y, x = pos[i, 0] + dy, pos[i, 1] + dx
                if 0 <= y < h and 0 <= x < w and grid[y, x] >= 0 and team[grid[y, x]] == 1:
                    target[i] = grid[y, x]
        else:
            r = F32(cfg.prey_step_reward)
        reward[i] = r
    attackers = np.bincount(target[target >= 0], minlength=n)
    killed = np.zeros(n, dtype=bool)
    for i in np.flatnonzero(alive & (team == 1) & (attackers >= cfg.min_attackers)):
        alive[i], killed[i] = False, True
        reward[i] = reward[i] + F32(cfg.dead_penalty)
        grid[pos[i, 0], pos[i, 1]] = -1
    for i in np.flatnonzero(alive & (team == 0)):
        e = energy[i]
        if target[i] >= 0 and killed[target[i]]:
            reward[i] = reward[i] + F32(cfg.kill_reward)
            e = min(e + F32(cfg.kill_energy), F32(cfg.max_energy))
        if cfg.predator_starvation > 0:
            e = e - F32(cfg.predator_starvation)
            if e <= 0:
                e = F32(0)
                alive[i], killed[i] = False, True
                reward[i] = reward[i] + F32(cfg.dead_penalty)
                grid[pos[i, 0], pos[i, 1]] = -1
        energy[i] = e
    reference_moves(actions, alive, pos, grid, MOVES)
    born = np.zeros(n, dtype=bool)
    if cfg.prey_birth > 0 or cfg.predator_birth > 0:
        lo, hi = world.first_slot, world.end_slot
        for i in range(n):
            if not alive[i] or born[i]:
                continue
            t = team[i]
            if t == 0:
                if energy[i] < F32(cfg.birth_energy):
                    continue
                if not world.birth_draw[i] < F32(cfg.predator_birth):
                    continue
            elif not world.birth_draw[i] < F32(cfg.prey_birth):
                continue
            free = [s for s in range(lo[t], hi[t]) if not alive[s] and not killed[s]]
            cells = [
                (pos[i, 0] + dy, pos[i, 1] + dx)
                for dy, dx in MOVES[1:]
                if 0 <= pos[i, 0] + dy < h
                and 0 <= pos[i, 1] + dx < w
                and grid[pos[i, 0] + dy, pos[i, 1] + dx] == -1
            ]
            if not free or not cells:
                continue
            s = free[0]
            cell = cells[min(int(float(world.cell_draw[i]) * len(cells)), len(cells) - 1)]
            grid[cell] = s
            pos[s] = cell
            alive[s] = born[s] = True
            if t == 0:
                energy[i] = energy[i] * F32(0.5)
                energy[s] = energy[i]
            else:
                energy[s] = 0
    return {
        "pos": pos,
        "alive": alive,
        "energy": energy,
        "grid": grid,
        "reward": reward,
        "killed": killed,
        "born": born,
        "target": target,
    }


def reference_views(world: PursuitWorld) -> np.ndarray:
    """float32[N, S, S, 4 (+2)] views of the world's state, cell by cell."""
    r = world.radius
    s = 2 * r + 1
    grid, pos, team = world.grid, world.pos, world.team
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
                    cell[1 + team[j]] = 1
                    if team[j] == 0:
                        cell[3] = min(world.energy[j] / F32(world.config.max_energy), 1)
        if planes is not None:
            out[i, :, :, 4] = planes[0]
            out[i, :, :, 5] = planes[1]
    return out


def small_world(**kw) -> PursuitWorld:
    cfg = {"map_size": 14, "predators": 20, "prey": 40, **kw}
    return PursuitWorld(PursuitConfig(**cfg))


# ---- kernels vs references ----------------------------------------------------------------


def test_action_table_matches_documented_order():
    for a, (dy, dx) in enumerate(MOVES):
        assert (K.ACTION_DY[a], K.ACTION_DX[a]) == (dy, dx)
    assert K.PURSUIT_PREDATOR_ACTIONS == 17 and K.PURSUIT_PREY_ACTIONS == 9
    assert K.PURSUIT_FIRST_ATTACK == 9
    world = small_world()
    assert world.n_actions[:20].tolist() == [17] * 20 and world.n_actions[20:].tolist() == [9] * 40


@pytest.mark.parametrize(
    "walls, dynamics", [(True, False), (False, False), (True, True), (False, True)]
)
def test_step_and_views_match_reference(walls, dynamics, reference_moves):
    extra = {"predator_capacity": 30, "prey_capacity": 60, **DYNAMICS} if dynamics else {}
    world = small_world(**{"walls": walls, "min_attackers": 1, **extra})
    world.reset(seed=3)
    rng = np.random.default_rng(3)
    births = deaths = 0
    for _ in range(30):
        before = snapshot(world)
        actions = random_actions(rng, world)
        obs, reward, terminated, truncated, info = world.step(actions)
        expected = reference_step(before, world, actions, reference_moves)
        for key in ("pos", "alive", "energy", "grid", "born"):
            np.testing.assert_array_equal(getattr(world, key), expected[key], err_msg=key)
        np.testing.assert_array_equal(reward, expected["reward"])
        np.testing.assert_array_equal(terminated, expected["killed"])
        np.testing.assert_array_equal(world.attack_target, expected["target"])
        assert not truncated.any()
        np.testing.assert_array_equal(obs, reference_views(world))
        fresh = np.full_like(obs, 7.0)  # a buffer written in full equals the world's one
        np.testing.assert_array_equal(world.observe(out=fresh), obs)
        births += int(info["births"].sum())
        deaths += int(info["deaths"].sum())
        np.testing.assert_array_equal(info["alive"], np.bincount(world.team[world.alive], None, 2))
    assert deaths > 0
    assert (births > 0) == dynamics


@pytest.mark.parametrize("dtype", ["float16", "uint8"])
@pytest.mark.parametrize("minimap", [False, True])
def test_obs_dtypes_and_minimap_match_reference(dtype, minimap, encode, team_density):
    world = small_world(obs_dtype=dtype, minimap=minimap, predator_starvation=0.1)
    obs = world.reset(seed=1)
    assert obs.dtype == np.dtype(dtype) and obs.shape == (60, 11, 11, 6 if minimap else 4)
    rng = np.random.default_rng(1)
    for _ in range(6):
        obs, *_ = world.step(random_actions(rng, world))
    np.testing.assert_array_equal(obs, encode(reference_views(world), dtype))
    if minimap:
        np.testing.assert_allclose(world.minimap_planes(), team_density(world), rtol=1e-6)
    if dtype == "uint8":
        assert obs.max() == 255 and set(np.unique(obs[..., 1])) <= {0, 255}
    # the scripted policies read every dtype like float32
    for name in ("greedy-vs-flee", "random"):
        got = world.policy(name, seed=0)(obs)
        want = world.policy(name, seed=0)(reference_views(world))
        np.testing.assert_array_equal(got, want)
        assert ((got >= 0) & (got < world.n_actions)).all()


JIT_FREE_RUN = """
import numpy as np, numba
from colonylab.envs.grid.pursuit import PursuitConfig, PursuitWorld
cfg = PursuitConfig(map_size=10, predators=5, prey=8, prey_birth=0.3, predator_birth=0.5,
                    predator_starvation=0.125, birth_energy=1.0, min_attackers=2,
                    kill_energy=0.75, minimap=True)
world = PursuitWorld(cfg)
obs = world.reset(seed=5)
act = world.policy("greedy-vs-flee", seed=5)
rewards, counts = [], []
for _ in range(STEPS):
    obs, reward, *_ = world.step(act(obs))
    rewards.append(reward)
    counts.append(world.species_alive)
np.savez("out.npz", obs=obs, pos=world.pos, alive=world.alive, energy=world.energy,
         reward=np.stack(rewards), counts=np.stack(counts), image=world.render_rgb(),
         disabled=numba.config.DISABLE_JIT, threads=numba.config.NUMBA_NUM_THREADS)
"""


def test_kernels_without_jit_match_jitted(script):
    """The Python path of the kernels (NUMBA_DISABLE_JIT=1) gives the jitted results."""
    code = JIT_FREE_RUN.replace("STEPS", "8")
    got, want = script.elsewhere(code, NUMBA_DISABLE_JIT="1"), script.here(code)
    assert bool(got["disabled"]) and not bool(want["disabled"])
    for key in ("obs", "pos", "alive", "energy", "reward", "counts", "image"):
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_thread_count_does_not_change_the_trajectory(script):
    code = JIT_FREE_RUN.replace("STEPS", "60")
    got, want = script.elsewhere(code, NUMBA_NUM_THREADS="1"), script.here(code)
    assert int(got["threads"]) == 1
    for key in ("obs", "pos", "alive", "energy", "reward", "counts"):
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    counts = want["counts"]
    assert counts[:, 1].max() > 8 and counts[:, 0].max() > 5  # both species bred


# ---- hand-computed hunts -------------------------------------------------------------------


def hunt_world(**kw) -> PursuitWorld:
    """A 10 x 10 open map with 3 predators (0-2) and 3 prey (3-5), placed by hand."""
    world = PursuitWorld(PursuitConfig(map_size=10, predators=3, prey=3, walls=False, **kw))
    world.reset(seed=0)
    return world


def place(world: PursuitWorld, cells: dict[int, tuple[int, int]], energy: dict | None = None):
    """Agents in ``cells`` alive at those cells (``energy`` overrides), all others dead."""
    n = world.n_agents
    pos = np.zeros((n, 2), dtype=np.int32)
    alive = np.zeros(n, dtype=bool)
    energies = np.zeros(n, dtype=F32)
    for i, cell in cells.items():
        pos[i], alive[i] = cell, True
        energies[i] = (energy or {}).get(i, world.config.predator_energy)
    return world.set_state(pos, alive=alive, energy=energies)


def test_one_predator_alone_cannot_kill(act):
    world = hunt_world()
    place(world, {0: (5, 4), 3: (5, 5)})
    _, reward, terminated, _, info = world.step(act(world, a0=ATTACK["E"]))
    assert world.alive[3] and world.grid[5, 5] == 3 and not terminated.any()
    assert world.attack_target[0] == 3
    assert reward[0] == F32(-0.01) and reward[3] == 0
    assert info["deaths"].tolist() == [0, 0] and world.metrics()["kills"] == 0


def test_two_predators_kill_and_both_are_rewarded(act):
    world = hunt_world()
    # prey 3 at (5, 5): predator 0 from the west, predator 1 from the north-east;
    # predator 2 attacks an empty cell, prey 4 attacked once only... by nobody
    place(world, {0: (5, 4), 1: (4, 6), 2: (8, 8), 3: (5, 5), 4: (1, 1)})
    obs, reward, terminated, _, info = world.step(
        act(world, a0=ATTACK["E"], a1=ATTACK["SW"], a2=ATTACK["N"])
    )
    assert reward[0] == F32(-0.01) + F32(1.0) and reward[1] == F32(-0.01) + F32(1.0)
    assert reward[2] == F32(-0.01)
    assert reward[3] == F32(-1.0) and reward[4] == 0
    assert terminated.tolist() == [False, False, False, True, False, False]
    assert not world.alive[3] and world.grid[5, 5] == -1 and not obs[3].any()
    assert info["deaths"].tolist() == [0, 1] and info["alive"].tolist() == [3, 1]
    assert world.metrics()["kills"] == 1
    assert world.energy[0] == world.energy[1] == F32(1.5)  # kill_energy 0.5, cap 2
    # the dead stay dead: no second termination, no reward, action ignored
    _, reward, terminated, _, _ = world.step(act(world, a3=MOVE["N"]))
    assert not terminated[3] and reward[3] == 0 and not world.alive[3]


def test_min_attackers_three_needs_three(act):
    world = hunt_world(min_attackers=3)
    place(world, {0: (5, 4), 1: (4, 5), 2: (6, 5), 3: (5, 5)})
    world.step(act(world, a0=ATTACK["E"], a1=ATTACK["S"]))
    assert world.alive[3]
    world.step(act(world, a0=ATTACK["E"], a1=ATTACK["S"], a2=ATTACK["N"]))
    assert not world.alive[3]


def test_move_conflicts_lowest_index_wins_and_freed_cells(act):
    world = hunt_world()
    # predator 0 and prey 4 both move into (5, 5): predator 0 (lower index) wins
    place(world, {0: (5, 4), 4: (5, 6), 1: (2, 2), 2: (2, 3), 3: (8, 1)})
    world.step(act(world, a0=MOVE["E"], a4=MOVE["W"], a1=MOVE["E"], a2=MOVE["W"], a3=MOVE["NE"]))
    assert tuple(world.pos[0]) == (5, 5) and tuple(world.pos[4]) == (5, 6)
    # swaps fail: each target was occupied at the start
    assert tuple(world.pos[1]) == (2, 2) and tuple(world.pos[2]) == (2, 3)
    assert tuple(world.pos[3]) == (7, 2)
    # the edge of an open map blocks; a cell freed by a kill can be entered at once
    place(world, {0: (5, 4), 1: (4, 5), 2: (0, 0), 3: (5, 5), 4: (5, 6)})
    world.step(act(world, a0=ATTACK["E"], a1=ATTACK["S"], a2=MOVE["NW"], a4=MOVE["W"]))
    assert not world.alive[3] and tuple(world.pos[4]) == (5, 5) and tuple(world.pos[2]) == (0, 0)


def test_starvation_kills_after_documented_steps_and_kills_feed(act):
    world = hunt_world(predator_starvation=0.25, predator_energy=1.0, kill_energy=0.5)
    place(world, {0: (5, 4), 1: (4, 5), 2: (1, 1), 3: (5, 5)})
    world.step(act(world, a0=ATTACK["E"], a1=ATTACK["S"]))  # 0 and 1 kill prey 3
    assert world.energy.tolist()[:3] == [1.25, 1.25, 0.75]  # 1 + 0.5 - 0.25; 1 - 0.25
    for step in (2, 3):  # 1.0 / 0.25 = 4 steps without a kill
        _, _, terminated, _, _ = world.step(act(world))
        assert not terminated.any() and world.energy[2] == F32(1.0 - 0.25 * step)
    _, reward, terminated, _, info = world.step(act(world))
    assert terminated.tolist() == [False, False, True, False, False, False]
    assert reward[2] == F32(-1.0) and world.grid[1, 1] == -1 and world.energy[2] == 0
    assert info["deaths"].tolist() == [1, 0] and world.metrics()["starved"] == 1
    assert world.energy[0] == world.energy[1] == F32(0.5)
    world.step(act(world))
    assert world.alive[:2].all()  # 0.25 left
    _, _, terminated, _, _ = world.step(act(world))  # 1.5 / 0.25 = 6 steps after the kill
    assert terminated[:2].all() and not world.alive[:3].any()
    assert world.metrics()["starved"] == 3 and world.species_alive.tolist() == [0, 0]


def test_prey_birth_lands_in_the_free_neighbour_and_lowest_free_slot():
    world = PursuitWorld(
        PursuitConfig(map_size=8, predators=2, prey=2, walls=False, prey_birth=1.0)
    )
    world.reset(seed=0)
    assert (world.predator_slots, world.prey_slots) == (2, 8)  # 4x the initial prey
    # prey slot 2 in the corner (0, 0): its neighbours E (0, 1) and SE (1, 1) are taken
    # by predators, only S (1, 0) is free; prey slots 3 and 5 alive, 4 dead
    alive = np.zeros(world.n_agents, dtype=bool)
    pos = np.zeros((world.n_agents, 2), dtype=np.int32)
    for i, cell in {0: (0, 1), 1: (1, 1), 2: (0, 0), 3: (6, 6), 5: (3, 6)}.items():
        alive[i], pos[i] = True, cell
    world.set_state(pos, alive=alive)
    _, reward, terminated, _, info = world.step(np.zeros(world.n_agents, dtype=np.int32))
    # parents in index order: prey 2's child takes slot 4 (lowest free), prey 3's slot 6,
    # prey 5's slot 7; the child of 2 sits on the only free neighbour
    assert world.born.tolist() == [False] * 4 + [True, False, True, True, False, False]
    assert tuple(world.pos[4]) == (1, 0) and world.grid[1, 0] == 4
    for child, parent in ((6, 3), (7, 5)):
        assert np.abs(world.pos[child] - world.pos[parent]).max() == 1
    assert info["births"].tolist() == [0, 3] and info["alive"].tolist() == [2, 6]
    assert reward[world.born].tolist() == [0, 0, 0] and not terminated.any()
    assert world.metrics()["prey_births"] == 3
    # no free slot left beyond 8 prey; a fully surrounded prey has no child
    world.step(np.zeros(world.n_agents, dtype=np.int32))
    assert world.species_alive.tolist() == [2, 8] and world.alive.all()


def test_slot_of_a_prey_killed_this_step_is_not_reused_until_the_next(act):
    world = PursuitWorld(
        PursuitConfig(map_size=8, predators=2, prey=2, walls=False, prey_birth=1.0, prey_capacity=2)
    )
    world.reset(seed=0)
    place(world, {0: (3, 2), 1: (2, 3), 2: (3, 3), 3: (6, 6)})
    world.step(act(world, a0=ATTACK["E"], a1=ATTACK["S"]))  # prey 2 dies, prey 3 breeds
    assert not world.alive[2] and world.killed[2] and not world.born.any()
    world.step(act(world))
    assert world.born[2] and world.alive[2] and not world.killed[2]
    assert np.abs(world.pos[2] - world.pos[3]).max() == 1


def test_predator_birth_halves_energy_and_needs_birth_energy():
    world = PursuitWorld(
        PursuitConfig(
            map_size=8, predators=1, prey=1, walls=False, predator_birth=1.0, birth_energy=1.5
        )
    )
    world.reset(seed=0)
    assert world.predator_slots == 4 and world.prey_slots == 1
    alive = np.zeros(world.n_agents, dtype=bool)
    alive[[0, 4]] = True
    pos = np.zeros((world.n_agents, 2), dtype=np.int32)
    pos[0], pos[4] = (4, 4), (0, 0)
    energy = np.zeros(world.n_agents)
    energy[0] = 1.25
    world.set_state(pos, alive=alive, energy=energy)
    world.step(np.zeros(world.n_agents, dtype=np.int32))
    assert not world.born.any()  # 1.25 < birth_energy
    energy[0] = 2.0
    world.set_state(pos, alive=alive, energy=energy)
    world.step(np.zeros(world.n_agents, dtype=np.int32))
    assert world.born.tolist() == [False, True, False, False, False]
    assert world.energy[0] == world.energy[1] == F32(1.0)
    assert np.abs(world.pos[1] - world.pos[0]).max() == 1


# ---- determinism and invariants -----------------------------------------------------------------


def trajectory(seed: int, steps: int = 40) -> list[np.ndarray]:
    world = small_world(**DYNAMICS, predator_capacity=40, prey_capacity=80)
    obs = world.reset(seed=seed)
    policy = world.policy("greedy-vs-flee", seed=seed)
    out = []
    for _ in range(steps):
        obs, reward, *_ = world.step(policy(obs))
        out += [obs.copy(), reward, world.pos.copy(), world.alive.copy(), world.energy.copy()]
    return out


def test_seeded_trajectory_identical_twice():
    first, second = trajectory(11), trajectory(11)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(first, trajectory(12), strict=True))


def check_invariants(world: PursuitWorld, before: dict, attackers: np.ndarray) -> None:
    live = np.flatnonzero(world.alive)
    grid = world.grid
    assert (grid[world.pos[live, 0], world.pos[live, 1]] == live).all()
    np.testing.assert_array_equal(np.sort(grid[grid >= 0]), live)  # one a cell, dead gone
    np.testing.assert_array_equal(world.species_alive, np.bincount(world.team[live], None, 2))
    # nobody comes back in the step it dies; newborns were dead slots of the step before
    assert not (world.alive & world.killed).any()
    np.testing.assert_array_equal(world.born, world.alive & ~before["alive"])
    dead_prey = before["alive"] & ~world.alive & (world.team == 1)
    assert (attackers[dead_prey] >= world.config.min_attackers).all()
    assert not (attackers[world.alive & (world.team == 1)] >= world.config.min_attackers).any()
    if not world.config.dynamics:
        assert (world.species_alive <= np.bincount(world.team[before["alive"]], None, 2)).all()
        assert not world.born.any()
        assert not (before["alive"] & ~world.alive & (world.team == 0)).any()


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    walls=st.booleans(),
    dynamics=st.booleans(),
    min_attackers=st.integers(1, 3),
    steps=st.lists(st.integers(0, 2**31), min_size=1, max_size=12),
)
def test_invariants_under_random_actions(seed, walls, dynamics, min_attackers, steps):
    extra = {**DYNAMICS, "min_attackers": min_attackers} if dynamics else {}
    world = PursuitWorld(
        PursuitConfig(map_size=9, predators=12, prey=20, walls=walls, min_attackers=min_attackers)
        if not dynamics
        else PursuitConfig(map_size=9, predators=12, prey=20, walls=walls, **extra)
    )
    world.reset(seed=seed)
    for step_seed in steps:
        before = snapshot(world)
        world.step(random_actions(np.random.default_rng(step_seed), world))
        attackers = np.bincount(world.attack_target[world.attack_target >= 0], None, world.n_agents)
        check_invariants(world, before, attackers)


def test_greedy_predators_kill_more_than_random_ones():
    kills = {}
    for name in ("greedy-vs-random", "random-vs-random", "greedy-vs-flee", "random-vs-flee"):
        total = 0
        for seed in range(4):
            world = PursuitWorld(PursuitConfig(map_size=30, predators=20, prey=40))
            obs = world.reset(seed=seed)
            policy = world.policy(name, seed=seed)
            for _ in range(150):
                obs, *_ = world.step(policy(obs))
            total += world.metrics()["kills"]
        kills[name] = total
    assert kills["greedy-vs-random"] > 3 * max(kills["random-vs-random"], 5), kills
    assert kills["greedy-vs-flee"] > 3 * max(kills["random-vs-flee"], 5), kills


def test_greedy_prefers_prey_with_company_and_approaches():
    world = hunt_world()
    # predator 0 at (5, 5) touches prey 3 (north) and prey 4 (east); predator 1 is next
    # to prey 4 only, so predator 0 joins it on prey 4
    place(world, {0: (5, 5), 1: (4, 7), 3: (4, 5), 4: (5, 6)})
    actions = world.policy("greedy-vs-noop", seed=0)(world.observe())
    assert actions[0] == ATTACK["E"] and actions[1] == ATTACK["SW"]
    assert actions[3] == actions[4] == 0
    place(world, {0: (5, 2), 3: (5, 6)})
    actions = world.policy("greedy", seed=0)(world.observe())
    assert actions[0] == MOVE["E"]  # towards the prey
    assert actions[3] == MOVE["NE"]  # the prey runs (diagonals get farthest; NE before SE)
    place(world, {0: (5, 5), 3: (4, 4)})  # a prey flees from a predator at its south-east
    assert world.policy("noop-vs-flee", seed=0)(world.observe())[3] == MOVE["NW"]
    place(world, {0: (0, 0), 3: (9, 9)})  # nothing in view: random moves, never attacks
    actions = world.policy("greedy", seed=1)(world.observe())
    assert 1 <= actions[0] <= 8 and 1 <= actions[3] <= 8


def test_random_policy_keeps_each_species_in_its_range():
    world = small_world()
    obs = world.reset(seed=0)
    actions = np.stack([world.policy("random", seed=s)(obs) for s in range(50)])
    assert actions[:, :20].max() == 16 and actions[:, 20:].max() == 8 and actions.min() == 0
    with pytest.raises(ValueError, match="prey policies: random, flee, noop"):
        world.policy("greedy-vs-greedy")
    with pytest.raises(ValueError, match="predator policies"):
        world.policy("flee-vs-flee")
    with pytest.raises(ValueError, match="unknown pursuit policy"):
        world.policy("chase")


# ---- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "actions, match",
    [
        (np.array([0, 0, 17, 0, 0, 0]), r"actions\[2\].*predator_2.*17.*\[0, 17\)"),
        (np.array([0, 0, 0, 9, 0, 0]), r"actions\[3\].*prey_0.*9.*prey action.*\[0, 9\)"),
    ],
)
def test_out_of_range_actions_are_refused_and_change_nothing(actions, match, act, state_guard):
    world = hunt_world()
    place(world, {0: (5, 4), 1: (4, 5), 2: (7, 7), 3: (5, 5), 4: (1, 8), 5: (8, 1)})
    world.step(act(world, a0=ATTACK["E"]))
    state_guard.assert_refused(world, lambda: world.step(actions), match, views=True)


def test_set_state_refuses_bad_placements(state_guard):
    world = hunt_world()
    before = state_guard.snapshot(world)
    pos = np.zeros((6, 2), dtype=np.int32)
    with pytest.raises(ValueError, match="share a cell"):
        world.set_state(pos)
    pos[:, 0] = np.arange(6)
    pos[2] = (10, 0)
    with pytest.raises(ValueError, match=r"agent 2 \(predator_2\) at \(10, 0\) is outside"):
        world.set_state(pos)
    pos[2] = (9, 9)
    with pytest.raises(ValueError, match=r"energy\[1\] \(predator_1\) = 3\.0"):
        world.set_state(pos, energy=np.array([1, 3, 1, 0, 0, 0.0]))
    state_guard.assert_unchanged(world, before)


def test_config_errors():
    with pytest.raises(ValueError, match=r"64 free cells.*100 agents.*map_size >= 12"):
        PursuitConfig(map_size=10, predators=40, prey=60)
    with pytest.raises(ValueError, match="give agents or the counts"):
        PursuitConfig(agents=90, predators=10)
    with pytest.raises(ValueError, match=r"prey_capacity=10 is below the 81 prey"):
        PursuitConfig(prey_capacity=10)
    with pytest.raises(ValueError, match="holds no predators"):
        PursuitConfig(map_size=5)
    with pytest.raises(ValueError, match="obs_dtype"):
        PursuitConfig(obs_dtype="float64")
    with pytest.raises(ValueError, match="view_radius"):
        PursuitConfig(view_radius=0)
    with pytest.raises(ValueError, match="min_attackers"):
        PursuitConfig(min_attackers=9)
    with pytest.raises(ValueError, match="prey_birth must be a probability"):
        PursuitConfig(prey_birth=1.5)
    with pytest.raises(ValueError, match="predator_energy"):
        PursuitConfig(predator_energy=3.0)
    with pytest.raises(ValueError, match="predators must be a positive integer"):
        PursuitConfig(predators=True)
    with pytest.raises(BoardTooLargeError, match="pursuit of"):
        PursuitWorld(PursuitConfig(agents=3_000_000_000))


def test_sizes_follow_magent_and_defaults():
    cfg = PursuitConfig()
    assert (cfg.size, cfg.counts, cfg.capacities, cfg.dynamics) == (45, (40, 81), (40, 81), False)
    cfg = PursuitConfig(agents=300)
    assert cfg.counts == (100, 200) and cfg.size == 71  # ceil(sqrt(300 / 0.06))
    assert PursuitConfig(prey_birth=0.1).capacities == (40, 324)
    world = PursuitWorld()
    obs = world.reset(seed=0)
    assert isinstance(world, World) and obs.shape == (121, 11, 11, 4)
    assert world.team.dtype == np.int8 and world.grid[0].tolist() == [-2] * 45
    assert world.metadata["name"] == "colonylab/Pursuit-v0"
    assert world.metrics() == {
        "step": 0,
        "predators": 40,
        "prey": 81,
        "kills": 0,
        "starved": 0,
        "predator_births": 0,
        "prey_births": 0,
        "predator_energy": 1.0,
    }


def test_render_state_and_metrics():
    world = hunt_world(predator_starvation=0.5)
    place(world, {0: (5, 4), 1: (2, 2), 3: (5, 5)}, energy={1: 0.5})
    image = world.render_rgb()
    assert image.shape == (10, 10, 3) and image.dtype == np.uint8
    assert image[5, 4].tolist() > image[2, 2].tolist()  # full energy brighter than hungry
    assert image[5, 4, 0] > 150 and image[5, 4, 2] < 100  # predator: orange
    assert image[5, 5, 1] > image[5, 5, 0]  # prey: green
    walled = PursuitWorld(PursuitConfig(map_size=12, predators=2, prey=2))
    walled.reset(seed=0)
    assert walled.render_rgb()[0, 0].tolist() == [118, 120, 130]
    state = world.state()
    assert state.shape == (10, 10, 4)
    assert state[5, 4, 1] == 1 and state[5, 5, 2] == 1 and state[5, 4, 3] == 0.5
    assert state[2, 2, 3] == 0.25 and not state[..., 0].any()
    assert world.metrics()["predator_energy"] == 0.75


# ---- PettingZoo ----------------------------------------------------------------------------------

PZ = {"map_size": 16, "predators": 8, "prey": 16}
PZ_DYNAMICS = {**PZ, **DYNAMICS, "predator_energy": 2.0, "max_cycles": 200}
# possible_agents lists every name that could be born before max_cycles; the names never
# born never finish, which parallel_api_test reports when the episode ends
UNBORN = "No agents present but not all possible_agents are terminated or truncated"


def test_parallel_names_and_spaces():
    env = pursuit_v0.parallel_env(**PZ)
    env.reset(seed=0)
    assert env.possible_agents[:2] == ["predator_0", "predator_1"] and len(env.agents) == 24
    assert env.action_space("predator_3").n == 17 and env.action_space("prey_3").n == 9


def test_parallel_api_with_births_and_deaths():
    from pettingzoo.test import parallel_api_test

    env = pursuit_v0.parallel_env(**PZ_DYNAMICS)
    assert len(env.possible_agents) == 8 + 200 * 16 + 16 + 200 * 32
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=UNBORN)
        parallel_api_test(env, num_cycles=60)
    world = env.world
    assert world.metrics()["prey_births"] > 0 and world.metrics()["kills"] > 0


def test_children_of_the_truncating_step_are_not_reported():
    """parallel_api_test sees only agents that were in ``agents``: a child born in the
    last step (when ``agents`` empties) must not appear in that step's dicts."""
    env = pursuit_v0.parallel_env(
        **{**PZ_DYNAMICS, "prey_birth": 1.0, "prey_capacity": 200, "max_cycles": 3}
    )
    for seed in range(5):
        env.reset(seed=seed)
        for _ in range(3):
            before = set(env.agents)
            obs, rew, term, trunc, info = env.step({})
            seen = set(env.agents)
            assert set(obs) == set(rew) == set(term) == set(trunc) == set(info)
            assert set(obs) <= before | seen
        assert env.agents == [] and all(trunc.values())
        assert env.world.born.any()  # there were children in the last step, unreported


def test_possible_agents_are_made_on_demand():
    from colonylab.envs.grid.pursuit import CYCLE_PRESET

    env = pursuit_v0.parallel_env(**CYCLE_PRESET)
    names = env.possible_agents
    assert len(names) == 100 + 500 * 600 + 400 + 500 * 1600  # capacity // 2 a step
    assert names[0] == "predator_0" and names[300_099] == "predator_300099"
    assert names[300_100] == "prey_0" and names[-1] == "prey_800399"
    assert names[300_099:300_202:100] == ["predator_300099", "prey_99"]
    assert names.index("prey_5") == 300_105 and env.agent_name_mapping["prey_5"] == 300_105
    for bad in ("prey_800400", "prey_05", "prey_-1", "wolf_1", "prey_", 7, "predator_+3"):
        assert bad not in names and bad not in env.agent_name_mapping
    with pytest.raises(ValueError, match="not in possible_agents"):
        names.index("prey_800400")
    small = pursuit_v0.parallel_env(**PZ).possible_agents
    assert list(small) == [f"predator_{i}" for i in range(8)] + [f"prey_{i}" for i in range(16)]
    assert small == list(small) and small[::-1][0] == "prey_15"
    assert len(env.agent_name_mapping) == len(names)


def test_parallel_seed_and_render_with_dynamics():
    from pettingzoo.test import parallel_seed_test, render_test

    # with births and deaths (the plain config is in test_grid_parallel.py)
    parallel_seed_test(lambda: pursuit_v0.parallel_env(**PZ_DYNAMICS), num_cycles=30)
    render_test(lambda render_mode=None: pursuit_v0.env(render_mode=render_mode, **PZ_DYNAMICS))


def test_dict_api_matches_array_world_with_births():
    config = {**PZ_DYNAMICS, "max_cycles": 500}
    env = pursuit_v0.parallel_env(**config)
    obs, _ = env.reset(seed=4)
    world = PursuitWorld(PursuitConfig(**config))
    world_obs = world.reset(seed=4)
    rng = np.random.default_rng(4)
    slot_of = {a: i for i, a in enumerate(env.agents[:8])}
    slot_of.update({a: world.predator_slots + i for i, a in enumerate(env.agents[8:])})
    born_names = set()
    held = []
    for _ in range(40):
        actions = random_actions(rng, world)
        previous = list(env.agents)
        world_obs, reward, terminated, *_ = world.step(actions)
        obs, rewards, terms, truncs, _ = env.step({a: int(actions[slot_of[a]]) for a in previous})
        held.append((obs, {a: v.copy() for a, v in obs.items()}))
        new = [a for a in obs if a not in previous]
        assert set(obs) == set(previous) | set(new) and not any(terms[a] for a in new)
        newborn = np.flatnonzero(world.born)
        assert len(new) == newborn.size
        for a, slot in zip(new, newborn, strict=True):  # named in slot order per species
            assert a.split("_")[0] == ("predator" if world.team[slot] == 0 else "prey")
            assert a not in born_names
            born_names.add(a)
            slot_of[a] = slot
        for agent in obs:
            i = slot_of[agent]
            np.testing.assert_array_equal(obs[agent], world_obs[i])
            assert rewards[agent] == reward[i] and terms[agent] == terminated[i]
        assert sorted(slot_of[a] for a in env.agents) == np.flatnonzero(world.alive).tolist()
    assert born_names
    for obs, copies in held:  # returned observations never change afterwards
        for agent, view in copies.items():
            np.testing.assert_array_equal(obs[agent], view)
    np.testing.assert_array_equal(env.state(), world.state())


def test_dict_api_refuses_dead_unborn_and_out_of_range_actions(state_guard):
    env = pursuit_v0.parallel_env(map_size=10, predators=3, prey=3, walls=False)
    env.reset(seed=0)
    world = env.world
    place(world, {0: (5, 4), 1: (4, 5), 2: (8, 8), 3: (5, 5), 4: (1, 8), 5: (8, 1)})
    env.step({"predator_0": ATTACK["E"], "predator_1": ATTACK["S"]})
    assert "prey_0" not in env.agents and len(env.agents) == 5
    before = state_guard.snapshot(world)
    cases = [
        ({"predator_1": 0, "prey_0": 1}, "prey_0.*dead"),
        ({"predator_1": 0, "predator_2": 17}, "predator_2.*17.*predator action"),
        ({"prey_1": 9}, r"prey_1.*9.*prey action.*\[0, 9\)"),
    ]
    for actions, match in cases:
        with pytest.raises(ValueError, match=match):
            env.step(actions)
        state_guard.assert_unchanged(world, before)
    breeding = pursuit_v0.parallel_env(map_size=10, predators=3, prey=3, prey_birth=0.5)
    breeding.reset(seed=0)
    with pytest.raises(ValueError, match="prey_7.*not born yet"):
        breeding.step({"prey_7": 0})
    env.step({"predator_2": np.int64(1), "prey_2": 2.0})  # numpy ints, integral floats
    assert tuple(world.pos[2]) == (7, 8) and tuple(world.pos[5]) == (8, 2)


def test_registry_cycle_preset_matches_the_module():
    from colonylab.envs import registry
    from colonylab.envs.grid.pursuit import CYCLE_PRESET

    assert registry.spec("pursuit-breeding").defaults == CYCLE_PRESET
