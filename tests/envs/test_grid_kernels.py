"""Shared grid kernel phases: NumPy references, the Python path, and recorded rollouts.

``tests/envs/data/grid_rollouts.npz`` holds, for each world, policy and seed below, one
MD5 digest per step of the whole state (positions, HP or energy, alive, grid, food,
rewards, killed, attack targets, observations), recorded before the step kernels were
factored into shared phase helpers; the worlds must keep producing the same bytes.
Regenerate it (only for an intended change of behaviour) with
``python tests/envs/test_grid_kernels.py --record``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from colonylab.envs.grid import _kernels as K
from colonylab.envs.grid.battle import BattleConfig, BattleWorld
from colonylab.envs.grid.gather import GatherConfig, GatherWorld
from colonylab.envs.grid.presets import CYCLE_PRESET
from colonylab.envs.grid.pursuit import PursuitConfig, PursuitWorld

FIXTURE = Path(__file__).parent / "data" / "grid_rollouts.npz"
STEPS = 50
SEEDS = (0, 1, 2)

# name -> (world factory, policy); each world's registry default policy, plus variants
# that reach the other branches (random placement, corpse food, attacks in gather)
ROLLOUTS = {
    "battle": (lambda: BattleWorld(BattleConfig()), "greedy-vs-random"),
    "battle-random-minimap": (
        lambda: BattleWorld(BattleConfig(map_size=24, placement="random", minimap=True)),
        "greedy",
    ),
    "pursuit": (lambda: PursuitWorld(PursuitConfig()), "greedy-vs-flee"),
    "pursuit-breeding": (lambda: PursuitWorld(PursuitConfig(**CYCLE_PRESET)), "random"),
    "gather": (lambda: GatherWorld(GatherConfig()), "forage"),
    "gather-greedy-corpses": (
        lambda: GatherWorld(GatherConfig(corpse_food=3.0, hunger=0.5)),
        "greedy",
    ),
}

STATE_FIELDS = ("pos", "hp", "energy", "alive", "grid", "food", "attack_target", "born")


def _digest(world, obs, reward, terminated) -> np.ndarray:
    h = hashlib.md5()
    for name in STATE_FIELDS:
        value = getattr(world, name, None)
        if value is not None:
            h.update(name.encode())
            h.update(np.ascontiguousarray(value).tobytes())
    views = obs["view"] if isinstance(obs, dict) else obs
    for arr in (views, reward, terminated):
        h.update(np.ascontiguousarray(arr).tobytes())
    return np.frombuffer(h.digest(), dtype=np.uint8)


def rollout(name: str, seed: int, steps: int = STEPS) -> np.ndarray:
    """uint8[steps + 1, 16]: the digest after the reset and after every step."""
    make, policy = ROLLOUTS[name]
    world = make()
    obs = world.reset(seed=seed)
    act = world.policy(policy, seed=seed)
    rows = [_digest(world, obs, np.zeros(0, np.float32), np.zeros(0, bool))]
    for _ in range(steps):
        obs, reward, terminated, _truncated, _info = world.step(act(obs))
        rows.append(_digest(world, obs, reward, terminated))
    return np.stack(rows)


def record() -> None:
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    data = {f"{name}/{seed}": rollout(name, seed) for name in ROLLOUTS for seed in SEEDS}
    np.savez_compressed(FIXTURE, **data)
    print(f"wrote {FIXTURE} ({len(data)} rollouts of {STEPS} steps)")


# ---- NumPy references of the shared phase helpers ----------------------------------------


def small_state(rng: np.random.Generator, n: int = 12, side: int = 6, pad: int = 2):
    """A random padded grid of ``side x side`` open cells holding ``n`` agents."""
    grid = np.full((side + 2 * pad, side + 2 * pad), K.WALL, dtype=K.GRID_DTYPE)
    grid[pad:-pad, pad:-pad] = K.EMPTY
    cells = rng.choice(side * side, size=n, replace=False)
    pos = np.stack([cells // side, cells % side], axis=1).astype(K.POS_DTYPE)
    grid[pos[:, 0] + pad, pos[:, 1] + pad] = np.arange(n)
    alive = rng.random(n) < 0.8
    return grid, pos, alive, pad


SEEDS_RANDOM = range(20)


@pytest.mark.parametrize("seed", SEEDS_RANDOM)
def test_begin_agent_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    n = 10
    actions = rng.integers(0, K.N_ACTIONS, n).astype(K.ACTION_DTYPE)
    alive = rng.random(n) < 0.7
    reward = rng.random(n).astype(K.REWARD_DTYPE)
    last_action = rng.integers(0, K.N_ACTIONS, n).astype(K.ACTION_DTYPE)
    killed = rng.random(n) < 0.5
    attack_target = rng.integers(-1, n, n).astype(np.int32)
    hits = rng.integers(0, 3, n).astype(np.int32)
    dest = rng.integers(-1, 99, n).astype(np.int64)
    want_reward = np.where(alive, reward, 0).astype(K.REWARD_DTYPE)
    want_last = np.where(alive, actions, last_action)
    got = [
        K.begin_agent(i, actions, alive, reward, last_action, killed, attack_target, hits, dest)
        for i in range(n)
    ]
    np.testing.assert_array_equal(got, np.where(alive, actions, -1))
    np.testing.assert_array_equal(reward, want_reward)
    np.testing.assert_array_equal(last_action, want_last)
    assert not killed.any() and (attack_target == -1).all()
    assert (hits == 0).all() and (dest == -1).all()


@pytest.mark.parametrize("seed", SEEDS_RANDOM)
@pytest.mark.parametrize("first_attack", [K.FIRST_ATTACK, K.PURSUIT_FIRST_ATTACK])
def test_attacked_cell_matches_numpy(seed, first_attack):
    rng = np.random.default_rng(seed)
    grid, pos, _alive, pad = small_state(rng)
    n = len(pos)
    actions = rng.integers(first_attack, first_attack + 8, n)
    move = actions - first_attack + K.FIRST_MOVE
    want = grid[pos[:, 0] + pad + K.ACTION_DY[move], pos[:, 1] + pad + K.ACTION_DX[move]]
    got = [K.attacked_cell(grid, pos, pad, i, actions[i], first_attack) for i in range(n)]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("seed", SEEDS_RANDOM)
def test_count_hits_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    n = 15
    attack_target = rng.integers(-1, n, n).astype(np.int32)
    hits = np.zeros(n, dtype=np.int32)
    K.count_hits(attack_target, hits)
    want = np.bincount(attack_target[attack_target >= 0], minlength=n)
    np.testing.assert_array_equal(hits, want)


@pytest.mark.parametrize("seed", SEEDS_RANDOM)
def test_hp_after_hits_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    hp = (rng.random(8) * 10).astype(K.HP_DTYPE)
    hits = rng.integers(0, 5, 8).astype(np.int32)
    damage = np.float32(rng.random() * 3)
    got = np.array([K.hp_after_hits(hp, hits, damage, i) for i in range(8)], dtype=K.HP_DTYPE)
    np.testing.assert_array_equal(got, hp - hits.astype(np.float32) * damage)


@pytest.mark.parametrize("seed", SEEDS_RANDOM)
def test_remove_dead_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    grid, pos, alive, pad = small_state(rng)
    n = len(pos)
    killed = np.zeros(n, dtype=bool)
    reward = rng.random(n).astype(K.REWARD_DTYPE)
    penalty = np.float32(-0.7)
    dying = np.flatnonzero(alive & (rng.random(n) < 0.5))
    want_grid = grid.copy()
    want_grid[pos[dying, 0] + pad, pos[dying, 1] + pad] = K.EMPTY
    want_reward = reward.copy()
    want_reward[dying] += penalty
    want_alive = alive.copy()
    want_alive[dying] = False
    cells = [K.remove_dead(i, pos, pad, grid, alive, killed, reward, penalty) for i in dying]
    want_cells = (pos[dying, 0] + pad) * grid.shape[1] + pos[dying, 1] + pad
    np.testing.assert_array_equal(np.array(cells, dtype=np.int64), want_cells)
    np.testing.assert_array_equal(grid, want_grid)
    np.testing.assert_array_equal(reward, want_reward)
    np.testing.assert_array_equal(alive, want_alive)
    np.testing.assert_array_equal(np.flatnonzero(killed), dying)


@pytest.mark.parametrize("seed", SEEDS_RANDOM)
def test_reward_kill_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    n = 12
    attack_target = rng.integers(-1, n, n).astype(np.int32)
    killed = rng.random(n) < 0.4
    reward = rng.random(n).astype(K.REWARD_DTYPE)
    bonus = np.float32(5.0)
    took_part = (attack_target >= 0) & killed[np.maximum(attack_target, 0)]
    want = reward.copy()
    want[took_part] += bonus
    got = [K.reward_kill(i, attack_target, killed, bonus, reward) for i in range(n)]
    np.testing.assert_array_equal(got, took_part)
    np.testing.assert_array_equal(reward, want)


@pytest.mark.parametrize("seed", SEEDS_RANDOM)
def test_move_destination_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    grid, pos, _alive, pad = small_state(rng)
    n = len(pos)
    actions = rng.integers(K.FIRST_MOVE, K.FIRST_ATTACK, n)
    y = pos[:, 0] + pad + K.ACTION_DY[actions]
    x = pos[:, 1] + pad + K.ACTION_DX[actions]
    want = np.where(grid[y, x] == K.EMPTY, y * grid.shape[1] + x, -1)
    got = [K.move_destination(grid, pos, pad, i, actions[i]) for i in range(n)]
    np.testing.assert_array_equal(got, want)


def claims_reference(dest, pos, pad, grid):
    """NumPy: of the agents that claim the same (empty) cell, the lowest index moves."""
    width = grid.shape[1]
    movers = np.flatnonzero(dest >= 0)
    _cells, first = np.unique(dest[movers], return_index=True)
    winners = movers[first]
    new_grid = grid.copy().reshape(-1)
    new_pos = pos.copy()
    old = (pos[winners, 0] + pad) * width + pos[winners, 1] + pad
    new_grid[old] = K.EMPTY
    new_grid[dest[winners]] = winners
    new_pos[winners, 0] = dest[winners] // width - pad
    new_pos[winners, 1] = dest[winners] % width - pad
    left = np.full(len(pos), -1, dtype=np.int64)
    left[winners] = old
    return new_grid.reshape(grid.shape), new_pos, left


@pytest.mark.parametrize("seed", SEEDS_RANDOM)
def test_claim_moves_match_numpy(seed):
    rng = np.random.default_rng(seed)
    grid, pos, alive, pad = small_state(rng, n=14, side=5)
    n = len(pos)
    actions = rng.integers(0, K.FIRST_ATTACK, n)
    dest = np.full(n, -1, dtype=np.int64)
    for i in range(n):  # destinations as the worlds compute them (empty before the pass)
        if alive[i] and actions[i] >= K.FIRST_MOVE:
            dest[i] = K.move_destination(grid, pos, pad, i, actions[i])
    want_grid, want_pos, want_left = claims_reference(dest, pos, pad, grid)
    flat = grid.reshape(-1)
    left = [K.claim_move(i, dest[i], pos, pad, flat, grid.shape[1]) for i in range(n)]
    np.testing.assert_array_equal(left, want_left)
    np.testing.assert_array_equal(grid, want_grid)
    np.testing.assert_array_equal(pos, want_pos)


def test_claim_move_lowest_index_wins():
    grid = np.full((5, 5), K.WALL, dtype=K.GRID_DTYPE)
    grid[1:4, 1:4] = K.EMPTY
    pos = np.array([[0, 0], [0, 2]], dtype=K.POS_DTYPE)  # both next to map cell (0, 1)
    grid[1, 1], grid[1, 3] = 0, 1
    flat = grid.reshape(-1)
    target = 1 * 5 + 2
    assert K.claim_move(0, target, pos, 1, flat, 5) == 1 * 5 + 1
    assert K.claim_move(1, target, pos, 1, flat, 5) == -1
    assert grid[1, 2] == 0 and grid[1, 1] == K.EMPTY and grid[1, 3] == 1
    np.testing.assert_array_equal(pos, [[0, 1], [0, 2]])


def random_view(rng: np.random.Generator, size: int = 7, channels: int = 5) -> np.ndarray:
    return (rng.random((size, size, channels)) < 0.15).astype(np.float32)


@pytest.mark.parametrize("seed", SEEDS_RANDOM)
def test_nearest_in_view_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    v = random_view(rng, channels=4) * (rng.random() < 0.9)  # some views see nothing
    rad = v.shape[0] // 2
    ys, xs = np.nonzero(v[..., 2] > 0)  # row-major order
    if ys.size:
        d = (ys - rad) ** 2 + (xs - rad) ** 2
        k = int(np.argmin(d))  # first of the nearest
        want = (ys[k], xs[k], d[k])
    else:
        want = (-1, -1, 1 << 30)
    assert tuple(int(x) for x in K.nearest_in_view(v, 2)) == want


@pytest.mark.parametrize("seed", SEEDS_RANDOM)
@pytest.mark.parametrize(
    "end_move, blocked, float_goal",
    [(K.FIRST_ATTACK, (0, 1, 3), True), (K.PURSUIT_FIRST_ATTACK, (0, 1, 2), False)],
)
def test_move_towards_matches_numpy(seed, end_move, blocked, float_goal):
    rng = np.random.default_rng(seed)
    v = random_view(rng)
    rad = v.shape[0] // 2
    if float_goal:
        gy, gx = (float(g) for g in rng.uniform(-60, 60, 2))
    else:
        gy, gx = (int(g) for g in rng.integers(0, v.shape[0], 2))
    moves = np.arange(K.FIRST_MOVE, end_move)
    y = rad + K.ACTION_DY[moves]
    x = rad + K.ACTION_DX[moves]
    free = ~(v[y, x][:, list(blocked)] > 0).any(axis=1)
    d = (gy - y) * (gy - y) + (gx - x) * (gx - x)
    better = free & (d < (gy - rad) * (gy - rad) + (gx - rad) * (gx - rad))
    want = int(moves[better][np.argmin(d[better])]) if better.any() else 0
    assert K.move_towards(v, gy, gx, end_move, blocked) == want


# ---- the Python path (NUMBA_DISABLE_JIT=1) ------------------------------------------------


def test_python_path_gives_the_recorded_steps(tmp_path):
    """The first steps of every recorded rollout, with the kernels run as plain Python."""
    steps = 3
    code = textwrap.dedent(
        f"""
        import sys
        import numba
        import numpy as np
        assert numba.config.DISABLE_JIT
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import test_grid_kernels as T
        out = {{name: T.rollout(name, 0, steps={steps}) for name in T.ROLLOUTS}}
        np.savez("python_path.npz", **out)
        """
    )
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, check=True, timeout=600)
    got = np.load(tmp_path / "python_path.npz")
    recorded = np.load(FIXTURE)
    for name in ROLLOUTS:
        np.testing.assert_array_equal(got[name], recorded[f"{name}/0"][: steps + 1], err_msg=name)


# ---- recorded rollouts ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ROLLOUTS))
def test_rollouts_match_the_recording(name):
    recorded = np.load(FIXTURE)
    for seed in SEEDS:
        want = recorded[f"{name}/{seed}"]
        got = rollout(name, seed)
        differ = np.flatnonzero((got != want).any(axis=1))
        assert differ.size == 0, f"{name} seed {seed}: first differing step {differ[0]}"


if __name__ == "__main__" and "--record" in sys.argv:
    record()
