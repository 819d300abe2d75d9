"""Puzzle Pong (``envs/classic/pong.py``): kernels against NumPy references, hand-checked
bounces and points, seeding, the teacher, the sensory wrappers, subsets and the CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from colonylab.agents.sensory import patchify
from colonylab.envs.classic import _pong_kernels as K
from colonylab.envs.classic.pong import PuzzlePongConfig, PuzzlePongWorld
from colonylab.envs.registry import make
from colonylab.envs.wrappers.sensory import BackgroundSwap, OccludePatches, ShuffleObservations

# ---- NumPy references ------------------------------------------------------------------------
M32 = np.uint64(0xFFFFFFFF)


def ref_hash32(x: np.ndarray) -> np.ndarray:
    """lowbias32 on uint64 arrays (NumPy wraps array products silently)."""
    x = np.asarray(x, dtype=np.uint64) & M32
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & M32
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & M32
    x ^= x >> np.uint64(16)
    return x


def ref_uniform(key: np.ndarray, counter: np.ndarray) -> np.ndarray:
    c = (np.asarray(counter, dtype=np.uint64) * np.uint64(0x9E3779B9)) & M32
    inner = ref_hash32(c ^ np.uint64(0x5BD1E995))
    return ref_hash32(np.asarray(key, dtype=np.uint64) ^ inner) / 4294967296.0


def ref_fold(y: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    span = hi - lo
    u = (y - lo) / span
    k = np.floor(u)
    f = u - k
    odd = (k.astype(np.int64) % 2) == 1
    return np.where(odd, hi - f * span, lo + f * span), odd


def ref_step(s: dict, actions: np.ndarray, p: np.ndarray, points: int, max_steps: int):
    """One step of every env, vectorized; ``s`` holds copies of the world's arrays."""
    s = {k: v.copy() for k, v in s.items()}
    n = actions.shape[0]
    active = ~s["done"]
    hb, speed, ph = p[K.BALL_HALF], p[K.BALL_SPEED], p[K.PADDLE_HALF]
    reach = ph + hb
    rf = p[K.RIGHT_X] - p[K.PADDLE_HALF_W] - hb
    lf = p[K.LEFT_X] + p[K.PADDLE_HALF_W] + hb
    f64 = np.float64

    def draw(mask):
        u = ref_uniform(s["rng_key"], s["rng_counter"])
        s["rng_counter"] = s["rng_counter"] + mask
        return u

    move = np.where(actions == K.UP, -p[K.AGENT_SPEED], 0.0)
    move = np.where(actions == K.DOWN, p[K.AGENT_SPEED], move)
    agent = np.clip(s["paddle_y"][:, 1].astype(f64) + move, ph, 1 - ph)
    opp = s["paddle_y"][:, 0].astype(f64)
    step = np.clip(
        s["ball_xy"][:, 1].astype(f64) + s["opp_aim"] - opp,
        -p[K.OPPONENT_SPEED],
        p[K.OPPONENT_SPEED],
    )
    opp = np.clip(opp + step, ph, 1 - ph)
    paddles = np.stack([opp, agent], axis=1).astype(np.float32)
    x, y = s["ball_xy"][:, 0].astype(f64), s["ball_xy"][:, 1].astype(f64)
    vx, vy = s["ball_v"][:, 0].astype(f64), s["ball_v"][:, 1].astype(f64)
    with np.errstate(divide="ignore", invalid="ignore"):
        hit_r = (vx > 0) & (x <= rf) & (rf < x + vx)
        hit_l = (vx < 0) & (x >= lf) & (lf > x + vx)
        t = np.where(hit_r, (rf - x) / vx, np.where(hit_l, (lf - x) / vx, 0.0))
    cy, _ = ref_fold(y + vy * t, hb, 1 - hb)
    offset = (cy - np.where(hit_r, paddles[:, 1], paddles[:, 0]).astype(f64)) / reach
    hit = (hit_r | hit_l) & (np.abs(offset) <= 1.0)
    angle = offset * p[K.MAX_BOUNCE]
    new_vx = speed * np.cos(angle) * np.where(hit_r, -1.0, 1.0)
    new_vy = speed * np.sin(angle)
    hx = np.where(hit_r, rf, lf) + new_vx * (1 - t)
    hy, hflip = ref_fold(cy + new_vy * (1 - t), hb, 1 - hb)
    fy, fflip = ref_fold(y + vy, hb, 1 - hb)
    x = np.where(hit, hx, x + vx)
    y = np.where(hit, hy, fy)
    vx = np.where(hit, new_vx, vx)
    vy = np.where(hit, new_vy, vy)
    vy = np.where(np.where(hit, hflip, fflip), -vy, vy)
    returned = active & hit & hit_r
    aim = (2 * draw(returned) - 1) * p[K.OPPONENT_ERROR] * reach
    opp_aim = np.where(returned, aim, s["opp_aim"])
    agent_point = active & (x <= 0.0)
    opp_point = active & (x >= 1.0)
    scored = agent_point | opp_point
    reward = np.where(agent_point, 1.0, np.where(opp_point, -1.0, 0.0)).astype(np.float32)
    side = draw(scored)
    ang = (2 * draw(scored) - 1) * p[K.SERVE_ANGLE]
    aim = (2 * draw(scored) - 1) * p[K.OPPONENT_ERROR] * reach
    direction = np.where(side < 0.5, 1.0, -1.0)
    x = np.where(scored, 0.5, x)
    y = np.where(scored, 0.5, y)
    vx = np.where(scored, direction * speed * np.cos(ang), vx)
    vy = np.where(scored, speed * np.sin(ang), vy)
    opp_aim = np.where(scored, aim, opp_aim)
    score = s["score"] + np.stack([opp_point, agent_point], axis=1).astype(np.int32)
    terminated = active & (score.max(axis=1) >= points) & scored
    elapsed = s["elapsed"] + active
    truncated = active & ~terminated & (elapsed >= max_steps)
    a = active[:, None]
    out = dict(s)
    out["paddle_y"] = np.where(a, paddles, s["paddle_y"])
    out["ball_xy"] = np.where(a, np.stack([x, y], 1).astype(np.float32), s["ball_xy"])
    out["ball_v"] = np.where(a, np.stack([vx, vy], 1).astype(np.float32), s["ball_v"])
    out["opp_aim"] = np.where(active, opp_aim, s["opp_aim"])
    out["score"] = score
    out["elapsed"] = elapsed
    assert n == len(reward)
    return out, reward, terminated, truncated


def ref_pixels(world: PuzzlePongWorld) -> np.ndarray:
    """The screen ``[N, H, W, K]`` drawn from the frame history with masks: a pixel is
    lit when its centre lies in an object (the one under its centre for tiny objects)."""
    p, size = world.params, world.screen
    centres = (np.arange(size) + 0.5) / size
    n, k = world.num_envs, world.frame_stack
    out = np.zeros((n, size, size, k), dtype=np.float32)
    net_rows = (np.arange(size) // 2) % 2 == 0
    out[:, net_rows, size // 2, :] = p[K.NET_VALUE]

    def axis(c, half):
        inside = (centres >= c[..., None] - half) & (centres < c[..., None] + half)
        under = np.arange(size) == np.floor(c[..., None] * size)
        return np.where(inside.any(-1, keepdims=True), inside, under)

    hp, hb = world.hist_paddle.astype(np.float64), world.hist_ball.astype(np.float64)
    for side, px in ((0, p[K.LEFT_X]), (1, p[K.RIGHT_X])):
        cols = axis(np.full((n, k), px), p[K.PADDLE_HALF_W])
        rows = axis(hp[:, :, side], p[K.PADDLE_HALF])
        lit = rows[:, :, :, None] & cols[:, :, None, :]  # [N, K, H, W]
        out[lit.transpose(0, 2, 3, 1)] = 1.0
    rows = axis(hb[:, :, 1], p[K.BALL_HALF])
    cols = axis(hb[:, :, 0], p[K.BALL_HALF])
    lit = rows[:, :, :, None] & cols[:, :, None, :]
    out[lit.transpose(0, 2, 3, 1)] = 1.0
    return out


STATE = (
    "ball_xy",
    "ball_v",
    "paddle_y",
    "score",
    "elapsed",
    "done",
    "opp_aim",
    "rng_key",
    "rng_counter",
)


def snapshot(world: PuzzlePongWorld) -> dict:
    return {name: getattr(world, name).copy() for name in STATE}


# ---- kernels against the references ----------------------------------------------------------
def test_hash_matches_numpy_reference():
    keys = np.array([0, 1, 12345, 2**32 - 1, 987654321], dtype=np.int64)
    counters = np.array([0, 7, 3, 2**31, 100000], dtype=np.int64)
    want = ref_uniform(keys, counters)
    got = np.array([K.uniform(k, c) for k, c in zip(keys, counters, strict=True)])
    np.testing.assert_array_equal(got, want)
    u = ref_uniform(np.full(20000, 99), np.arange(20000))
    assert u.min() >= 0.0 and u.max() < 1.0 and abs(u.mean() - 0.5) < 0.01


def test_step_kernel_matches_numpy_reference():
    rng = np.random.default_rng(0)
    world = PuzzlePongWorld.factory(points_to_win=3, max_episode_steps=150)(256)
    world.reset(seed=1)
    # scatter the balls and paddles so that hits, misses and walls all happen
    world.ball_xy[:] = rng.uniform(0.05, 0.95, size=(256, 2))
    angle = rng.uniform(-1.2, 1.2, size=256) + np.pi * (rng.uniform(size=256) < 0.5)
    world.ball_v[:] = 0.03 * np.stack([np.cos(angle), np.sin(angle)], 1)
    world.paddle_y[:] = rng.uniform(0.1, 0.9, size=(256, 2))
    events = {"hit": 0, "point": 0, "end": 0}
    for _ in range(200):
        before = snapshot(world)
        actions = rng.integers(0, 3, size=256)
        _, reward, terminated, truncated, _ = world.step(actions)
        want, w_reward, w_term, w_trunc = ref_step(
            before, actions, world.params, world.points_to_win, world.max_episode_steps
        )
        for name in ("score", "elapsed", "rng_counter"):
            np.testing.assert_array_equal(getattr(world, name), want[name], err_msg=name)
        for name in ("ball_xy", "ball_v", "paddle_y", "opp_aim"):
            np.testing.assert_allclose(getattr(world, name), want[name], atol=1e-6, err_msg=name)
        np.testing.assert_array_equal(reward.numpy(), w_reward)
        np.testing.assert_array_equal(terminated.numpy(), w_term)
        np.testing.assert_array_equal(truncated.numpy(), w_trunc)
        # the newest frame of the history is the state
        np.testing.assert_array_equal(world.hist_ball[:, -1], world.ball_xy)
        events["hit"] += int((np.sign(world.ball_v[:, 0]) != np.sign(before["ball_v"][:, 0])).sum())
        events["point"] += int((reward != 0).sum())
        events["end"] += int((terminated | truncated).sum())
    assert events["hit"] > 50 and events["point"] > 50 and events["end"] > 10, events


@pytest.mark.parametrize("screen,patch,frames", [(32, 4, 2), (48, 8, 3), (20, 5, 1)])
def test_render_kernel_matches_numpy_reference_and_patchify(screen, patch, frames):
    world = PuzzlePongWorld.factory(screen=screen, patch=patch, frame_stack=frames)(12)
    obs = world.reset(seed=2)
    act = world.policy("random", seed=0)
    for i in range(40):
        pixels = world.pixels()
        np.testing.assert_array_equal(pixels.numpy(), ref_pixels(world), err_msg=f"step {i}")
        assert torch.equal(obs, patchify(pixels, patch))
        obs, *_ = world.step(act(obs))
    assert obs.shape == (12, (screen // patch) ** 2, patch * patch * frames)
    assert obs.dtype == torch.float32 and obs.min() >= 0 and obs.max() == 1


def test_kernels_without_jit_match_jitted(script):
    """The Python path of the kernels (NUMBA_DISABLE_JIT=1) gives the jitted results."""
    code = """
        import numpy as np, numba, torch
        from colonylab.envs.classic.pong import PuzzlePongWorld
        world = PuzzlePongWorld.factory(points_to_win=2, autoreset=True)(6)
        obs = world.reset(seed=[3, 4, 5, 6, 7, 8])
        rewards = []
        for i in range(120):
            actions = world.teacher_actions() if i % 3 else torch.tensor([0, 1, 2, 0, 1, 2])
            obs, reward, *_ = world.step(actions)
            rewards.append(reward.numpy())
        np.savez("out.npz", obs=obs.numpy(), ball=world.ball_xy, paddle=world.paddle_y,
                 score=world.score, reward=np.stack(rewards), image=world.render_rgb(),
                 teacher=world.teacher_actions().numpy(), aim=world.aim_actions().numpy(),
                 jit=not numba.config.DISABLE_JIT)
        """
    got, want = script.elsewhere(code, NUMBA_DISABLE_JIT="1"), script.here(code)
    assert not got["jit"] and want["jit"]
    for key in ("obs", "ball", "paddle", "score", "reward", "image", "teacher", "aim"):
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    assert np.abs(got["reward"]).sum() > 0  # points were played


# ---- hand-checked physics --------------------------------------------------------------------
def one_world(**kw) -> PuzzlePongWorld:
    world = PuzzlePongWorld.factory(opponent_error=0.0, **kw)(1)
    world.reset(seed=0)
    return world


def faces(world: PuzzlePongWorld) -> tuple[float, float, float, float]:
    p = world.params
    hb = p[K.BALL_HALF]
    left = p[K.LEFT_X] + p[K.PADDLE_HALF_W] + hb
    right = p[K.RIGHT_X] - p[K.PADDLE_HALF_W] - hb
    return left, right, hb, p[K.PADDLE_HALF] + hb


def test_ball_bounces_off_the_top_wall():
    world = one_world()
    _, _, hb, _ = faces(world)
    world.set_state([[0.5, hb + 0.01]], [[0.01, -0.03]], [[0.5, 0.5]])
    _, reward, *_ = world.step([0])
    np.testing.assert_allclose(world.ball_xy[0], [0.51, hb + 0.02], atol=1e-6)
    np.testing.assert_allclose(world.ball_v[0], [0.01, 0.03], atol=1e-7)
    assert reward.tolist() == [0.0]


def test_centre_hit_returns_straight_and_edge_hit_returns_at_an_angle():
    world = one_world()
    _, right, _, reach = faces(world)
    world.set_state([[right - 0.01, 0.5]], [[0.03, 0.0]], [[0.5, 0.5]])
    world.step([0])  # contact after a third of the step, then 2/3 of a step back
    np.testing.assert_allclose(world.ball_xy[0], [right - 0.02, 0.5], atol=1e-6)
    np.testing.assert_allclose(world.ball_v[0], [-0.03, 0.0], atol=1e-7)
    # the ball meets the paddle half-way down its lower half: 30 degrees, downwards
    world.set_state([[right - 0.01, 0.5]], [[0.03, 0.0]], [[0.5, 0.5 - 0.5 * reach]])
    world.step([0])
    vx, vy = world.ball_v[0]
    assert math.isclose(vx, -0.03 * math.cos(math.radians(30)), rel_tol=1e-5)
    assert math.isclose(vy, 0.03 * math.sin(math.radians(30)), rel_tol=1e-5)


def test_agent_miss_costs_a_point_and_serves_from_the_centre():
    world = one_world()
    world.set_state([[0.99, 0.8]], [[0.03, 0.0]], [[0.5, 0.2]], score=[[2, 1]])
    _, reward, terminated, truncated, _ = world.step([0])
    assert reward.tolist() == [-1.0] and not terminated[0] and not truncated[0]
    assert world.score[0].tolist() == [3, 1]
    np.testing.assert_array_equal(world.ball_xy[0], [0.5, 0.5])
    assert math.isclose(float(np.hypot(*world.ball_v[0])), 0.03, rel_tol=1e-6)
    assert abs(math.atan2(world.ball_v[0, 1], abs(world.ball_v[0, 0]))) <= math.radians(30) + 1e-6


def test_opponent_miss_wins_the_game_and_freezes_it():
    world = one_world(points_to_win=3)
    world.set_state([[0.01, 0.9]], [[-0.03, 0.0]], [[3 / 32, 0.5]], score=[[1, 2]])
    _, reward, terminated, truncated, _ = world.step([0])
    assert reward.tolist() == [1.0] and terminated.tolist() == [True] and not truncated[0]
    assert world.score[0].tolist() == [1, 3] and world.done[0]
    state = snapshot(world)
    _, reward, terminated, truncated, _ = world.step([2])
    assert reward.tolist() == [0.0] and not terminated[0] and not truncated[0]
    for name, value in state.items():
        np.testing.assert_array_equal(getattr(world, name), value)
    assert world.metrics()["mean_return_last_100"] == 2.0


def test_paddles_move_at_their_speeds_and_stop_at_the_walls():
    world = one_world(max_episode_steps=3)
    world.set_state([[0.5, 0.9]], [[0.01, 0.0]], [[0.2, 0.5]])
    world.step([1])
    np.testing.assert_allclose(world.paddle_y[0], [0.2 + 0.012, 0.5 - 0.04], atol=1e-6)
    world.step([2])
    np.testing.assert_allclose(world.paddle_y[0, 1], 0.5, atol=1e-6)
    world.set_state([[0.5, 0.9]], [[0.01, 0.0]], [[0.2, 3 / 32 + 0.01]])
    world.step([1])
    assert world.paddle_y[0, 1] == np.float32(3 / 32)
    world.step([1])
    _, _, terminated, truncated, _ = world.step([1])
    assert truncated.tolist() == [True] and terminated.tolist() == [False]


# ---- seeding ---------------------------------------------------------------------------------
def rollout(world: PuzzlePongWorld, steps: int, seed, action_seed: int = 0):
    obs = world.reset(seed=seed)
    rng = np.random.default_rng(action_seed)
    observations, rewards = [obs], []
    for _ in range(steps):
        teacher = world.teacher_actions().numpy()
        noise = rng.integers(0, 3, size=world.num_envs)
        actions = np.where(rng.uniform(size=world.num_envs) < 0.3, noise, teacher)
        obs, reward, *_ = world.step(actions)
        observations.append(obs)
        rewards.append(reward)
    return torch.stack(observations, 1), torch.stack(rewards, 1)


def test_same_seed_same_games_other_seed_other_games():
    obs_a, rew_a = rollout(PuzzlePongWorld.factory(points_to_win=3)(8), 300, seed=7)
    obs_b, rew_b = rollout(PuzzlePongWorld.factory(points_to_win=3)(8), 300, seed=7)
    assert torch.equal(obs_a, obs_b) and torch.equal(rew_a, rew_b)
    obs_c, _ = rollout(PuzzlePongWorld.factory(points_to_win=3)(8), 300, seed=8)
    assert not torch.equal(obs_a, obs_c)
    assert (rew_a != 0).sum() > 5


def test_per_env_seeds_make_episodes_independent_of_the_batch():
    world = PuzzlePongWorld.factory(points_to_win=3)(4)
    world.reset(seed=[10, 11, 12, 13])
    alone = PuzzlePongWorld.factory(points_to_win=3)(2)
    alone.reset(seed=[12, 99])
    rewards = 0
    for _ in range(400):
        a, b = world.teacher_actions(), alone.teacher_actions()
        a[[0, 1, 3]] = torch.tensor([1, 2, 0])  # the neighbours play differently
        obs_a, rew_a, *_ = world.step(a)
        obs_b, rew_b, *_ = alone.step(b)
        assert torch.equal(obs_a[2], obs_b[0]) and rew_a[2] == rew_b[0]
        rewards += abs(float(rew_b[0]))
    assert rewards >= 2  # serves (random draws) happened after the first
    with pytest.raises(ValueError, match="4 integers"):
        world.reset(seed=[1, 2])


# ---- teacher and opponent --------------------------------------------------------------------
def play(policy: str, games: int = 32, points: int = 5) -> np.ndarray:
    world = PuzzlePongWorld.factory(points_to_win=points, max_episode_steps=5000)(games)
    obs = world.reset(seed=123)
    act = world.policy(policy, seed=1)
    total = np.zeros(games)
    while not world.done.all():
        obs, reward, *_ = world.step(act(obs))
        total += reward.numpy()
    return total


def test_teacher_beats_the_opponent():
    returns = play("track")
    assert returns.mean() > 3.0, returns


def ref_aim(ball_xy: np.ndarray, paddle_y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The aim teacher, vectorized over envs and candidate offsets."""
    hb, ph, speed = p[K.BALL_HALF], p[K.PADDLE_HALF], p[K.BALL_SPEED]
    reach = ph + hb
    span = (p[K.RIGHT_X] - p[K.PADDLE_HALF_W] - hb) - (p[K.LEFT_X] + p[K.PADDLE_HALF_W] + hb)
    y = ball_xy[:, 1].astype(np.float64)[:, None]  # (N, 1)
    py, oy = paddle_y[:, 1].astype(np.float64), paddle_y[:, 0].astype(np.float64)
    cand = np.array([-0.8, -0.6, -0.4, -0.2, 0.0, 0.2, 0.4, 0.6, 0.8])[None, :]
    want = np.clip(y - cand * reach, ph, 1 - ph)  # (N, C)
    offset = (y - want) / reach
    angle = offset * p[K.MAX_BOUNCE]
    t_back = span / (speed * np.cos(angle))
    y_far, _ = ref_fold(y + speed * np.sin(angle) * t_back, hb, 1 - hb)
    margin = np.abs(y_far - oy[:, None]) - p[K.OPPONENT_SPEED] * t_back
    margin = np.where(np.abs(offset) > 0.95, -np.inf, margin)
    best = np.argmax(margin, axis=1)  # the first best, as the kernel's strict ">"
    target = np.where(
        np.isfinite(margin.max(1)), want[np.arange(len(y)), best], np.clip(y[:, 0], ph, 1 - ph)
    )
    half = 0.5 * p[K.AGENT_SPEED]
    return np.where(target < py - half, K.UP, np.where(target > py + half, K.DOWN, K.STAY))


def test_aim_teacher_matches_numpy_reference_and_ignores_ball_x_and_velocity():
    world = PuzzlePongWorld.factory()(256)
    world.reset(seed=5)
    rng = np.random.default_rng(0)
    ball = rng.uniform(0.02, 0.98, size=(256, 2))
    paddles = rng.uniform(0.1, 0.9, size=(256, 2))
    world.set_state(ball, rng.uniform(-0.03, 0.03, size=(256, 2)), paddles)
    got = world.aim_actions().numpy()
    np.testing.assert_array_equal(got, ref_aim(world.ball_xy, world.paddle_y, world.params))
    assert set(np.unique(got)) == {K.STAY, K.UP, K.DOWN}
    # what a full-height strip hides (the ball's x, its velocity) does not change it
    moved = ball.copy()
    moved[:, 0] = rng.uniform(0.02, 0.98, size=256)
    world.set_state(moved, rng.uniform(-0.03, 0.03, size=(256, 2)), paddles)
    np.testing.assert_array_equal(world.aim_actions().numpy(), got)


def test_aim_teacher_beats_the_opponent():
    returns = play("aim", games=16)
    assert returns.mean() > 4.0, returns


def test_random_play_loses():
    returns = play("random")
    assert returns.mean() < -2.0, returns


# ---- bad input -------------------------------------------------------------------------------
def test_bad_construction_is_refused():
    with pytest.raises(ValueError, match="patch 5 does not divide the screen size 32"):
        PuzzlePongWorld.factory(patch=5)(2)
    with pytest.raises(ValueError, match="obs_mode must be one of 'patches', 'pixels'; got 'rgb'"):
        PuzzlePongWorld.factory(obs_mode="rgb")(2)
    with pytest.raises(ValueError, match="frame_stack must be an integer >= 1, got 0"):
        PuzzlePongWorld.factory(frame_stack=0)(2)
    with pytest.raises(
        ValueError, match=r"opponent_error must be a finite number in \[0.0, 1.0\), got 1.0"
    ):
        PuzzlePongWorld.factory(opponent_error=1.0)(2)
    with pytest.raises(ValueError, match="patch 6 does not divide"):
        PuzzlePongConfig(patch=6)
    with pytest.raises(ValueError, match="unknown Pong policy 'nope'"):
        PuzzlePongWorld.factory()(2).policy("nope")


def test_bad_actions_are_refused_and_leave_the_world_unchanged():
    world = PuzzlePongWorld.factory()(3)
    with pytest.raises(RuntimeError, match="reset"):
        world.step([0, 0, 0])
    world.reset(seed=0)
    state = snapshot(world)
    with pytest.raises(ValueError, match=r"shape \(3,\) or \(3, 1\).*got shape \(2,\)"):
        world.step([0, 1])
    with pytest.raises(ValueError, match="integers.*float32.*long"):
        world.step(torch.zeros(3))
    with pytest.raises(ValueError, match="action 3 for env 1 is out of range"):
        world.step(torch.tensor([0, 3, 1]))
    with pytest.raises(ValueError, match="action -1 for env 2"):
        world.step(np.array([0, 0, -1]))
    with pytest.raises(ValueError, match="no default_policy"):
        world.step()
    for name, value in state.items():
        np.testing.assert_array_equal(getattr(world, name), value)
    world.step(torch.tensor([[0], [1], [2]]))  # [N, 1] is accepted
    assert world.step_count == 1


# ---- wrappers, subsets, autoreset ------------------------------------------------------------
def test_shuffle_and_occlude_wrap_the_patches():
    world = PuzzlePongWorld.factory()(4)
    env = ShuffleObservations(world, every=5, seed=0)
    obs = env.reset(seed=1)
    assert obs.shape == (4, 64, 32)
    first = env.permutation.clone()
    for _ in range(5):
        obs, *_ = env.step(world.teacher_actions())
    assert not torch.equal(env.permutation, first)  # reshuffled after 5 steps
    plain = world.observe()
    assert torch.equal(obs, torch.gather(plain, 1, env.permutation[:, :, None].expand(-1, -1, 32)))
    occluded = OccludePatches(PuzzlePongWorld.factory()(4), share=0.75, seed=0)
    obs = occluded.reset(seed=1)
    assert obs.shape == (4, 16, 32)
    obs, *_ = occluded.step(torch.zeros(4, dtype=torch.int64))
    assert torch.equal(
        obs,
        torch.gather(
            occluded.world.observe(), 1, occluded.keep_index[:, :, None].expand(-1, -1, 32)
        ),
    )
    # shuffled and occluded, stepped by the wrapped world's teacher: the game goes on
    env = OccludePatches(
        ShuffleObservations(PuzzlePongWorld.factory(points_to_win=2)(4), every=20, seed=2),
        0.5,
        seed=3,
    )
    env.reset(seed=0)
    total = torch.zeros(4)
    for _ in range(300):
        obs, reward, *_ = env.step(env.unwrapped.teacher_actions())
        total += reward
    assert obs.shape == (4, 32, 32) and total.sum() > 0


def test_background_swap_needs_pixels_and_keeps_the_objects():
    world = PuzzlePongWorld.factory(obs_mode="pixels")(3)
    background = torch.rand(32, 32, 2)
    env = BackgroundSwap(world, background)
    obs = env.reset(seed=0)
    for _ in range(3):
        obs, *_ = env.step(world.teacher_actions())
    mask = world.foreground_mask()
    assert obs.shape == (3, 32, 32, 2) and mask.shape == (3, 32, 32, 2)
    assert 10 < int(mask[0, :, :, 1].sum()) < 20  # two paddles of 6 pixels and a ball
    assert bool((obs[mask] == 1).all())
    assert torch.equal(obs[~mask], background.expand(3, -1, -1, -1)[~mask])
    with pytest.raises(ValueError, match="pixel observations"):
        BackgroundSwap(PuzzlePongWorld.factory()(3), background).reset(seed=0)


def test_subset_keeps_states_streams_and_wrappers():
    world = PuzzlePongWorld.factory(points_to_win=3)(5)
    world.reset(seed=4)
    for _ in range(30):
        world.step(world.teacher_actions())
    part = world.subset(torch.tensor([3, 1]))
    assert part.num_envs == 2 and part.step_count == world.step_count
    for name in STATE:
        np.testing.assert_array_equal(getattr(part, name), getattr(world, name)[[3, 1]])
    assert torch.equal(part.observe(), world.observe()[[3, 1]])
    points = 0
    for _ in range(300):  # serves after the subset draw from the carried streams
        obs, reward, *_ = world.step(world.teacher_actions())
        obs_p, reward_p, *_ = part.step(part.teacher_actions())
        assert torch.equal(obs_p, obs[[3, 1]]) and torch.equal(reward_p, reward[[3, 1]])
        points += int((reward_p != 0).sum())
    assert points > 2
    env = ShuffleObservations(PuzzlePongWorld.factory()(4), seed=0)
    env.reset(seed=0)
    sub = env.subset([2])
    assert torch.equal(sub.permutation, env.permutation[[2]])
    assert sub.step(torch.tensor([1])).obs.shape == (1, 64, 32)
    with pytest.raises(ValueError, match="subset indices"):
        world.subset([5])


def test_autoreset_starts_a_new_game_and_returns_the_final_observation():
    world = PuzzlePongWorld.factory(points_to_win=1, autoreset=True)(4)
    obs = world.reset(seed=0)
    ended_any = False
    for _ in range(200):
        obs, reward, terminated, truncated, info = world.step(torch.zeros(4, dtype=torch.int64))
        ended = terminated | truncated
        if ended.any():
            ended_any = True
            assert not torch.equal(info["final_obs"][ended], obs[ended])
            assert torch.equal(info["final_obs"][~ended], obs[~ended])
            assert (world.score[ended.numpy()] == 0).all()
            assert (world.elapsed[ended.numpy()] == 0).all()
        else:
            assert info["final_obs"] is obs
    assert ended_any and world.episodes_finished >= 4 and not world.done.any()


# ---- registry, viewer, CLI -------------------------------------------------------------------
def test_registry_builds_the_world_and_it_renders():
    world = make("puzzle-pong", num_envs=5, points_to_win=3, obs_mode="pixels")
    assert isinstance(world, PuzzlePongWorld) and world.config.points_to_win == 3
    obs = world.reset(seed=0)
    assert obs.shape == (5, 32, 32, 2)
    act = world.policy("track")
    for _ in range(10):
        obs, *_ = world.step(act(obs))
    image = world.render_rgb()
    assert image.dtype == np.uint8 and image.shape == (2 * 192, 3 * 192, 3)  # 5 panels: 2 rows of 3
    assert (image == [92, 186, 92]).all(-1).sum() >= 5 * 100  # five green agent paddles
    assert (image == [236, 236, 236]).all(-1).sum() >= 5 * 25  # five balls
    metrics = world.metrics()
    assert metrics["envs"] == 5 and metrics["running"] == 5


def test_rollout_puzzle_pong_from_the_cli(capsys):
    from colonylab.runs.cli import main

    assert main(["rollout", "puzzle-pong", "--steps", "50"]) == 0
    out = capsys.readouterr().out
    assert "running" in out and "agent_points" in out
    assert (
        main(["rollout", "puzzle-pong", "--steps", "5", "--policy", "random", "--num-envs", "4"])
        == 0
    )


def test_background_ramp_tells_rows_apart_and_is_not_foreground():
    from colonylab.envs.classic.pong import PuzzlePongWorld

    world = PuzzlePongWorld.factory(background=0.5, obs_mode="pixels")(2)
    world.reset(seed=0)
    pixels = world.pixels()
    mask = world.foreground_mask()
    background = pixels[~mask]
    assert float(background.min()) > 0.0 and float(background.max()) < 0.5
    # the first column (no net, no paddle at x=0) ramps down the screen
    column = pixels[0, :, 0, -1]
    assert bool((column[1:] > column[:-1]).all())
    assert world.subset([1]).background == 0.5
    with pytest.raises(ValueError, match="background"):
        PuzzlePongWorld.factory(background=1.5)(1)


def test_rectangular_patches_tile_the_screen():
    """patch_height: full-height strips (or any rectangle) cut the same pixels."""
    for width, height in ((2, 32), (4, 8)):
        world = PuzzlePongWorld(
            PuzzlePongConfig(num_envs=2, patch=width, patch_height=height, seed=0)
        )
        obs = world.reset(seed=3)
        for _ in range(5):
            obs = world.step(world.teacher_actions()).obs
        assert obs.shape == (2, (32 // width) * (32 // height), width * height * 2)
        pixels = world.pixels()  # [N, 32, 32, 2]
        cut = pixels.reshape(2, 32 // height, height, 32 // width, width, 2)
        cut = cut.permute(0, 1, 3, 2, 4, 5).reshape(obs.shape)
        torch.testing.assert_close(obs, cut)
    with pytest.raises(ValueError, match="patch_height"):
        PuzzlePongConfig(patch_height=5)
