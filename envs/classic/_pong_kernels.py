"""Numba kernels of Puzzle Pong (:mod:`colonylab.envs.classic.pong`).

Every kernel takes arrays and scalars only and writes into preallocated outputs; dtypes,
action codes and the layout of the ``params`` vector come from the constants below. The
kernels loop over envs serially (one env's work is a few dozen flops, less than waking a
thread costs). A NumPy reference of each kernel lives in ``tests/envs/test_pong.py``,
which also runs them under ``NUMBA_DISABLE_JIT=1``.

Geometry: the court is the unit square, ``x`` to the right, ``y`` downwards (screen
rows); the ball is a square of side ``2 * ball_half`` and the paddles are rectangles of
``2 * paddle_half_w`` by ``2 * paddle_half``, all given by their centres. Index 0 of a
pair of paddles is the opponent (left), index 1 the agent (right).

Randomness is counter-based: env ``n`` draws its ``k``-th number as a hash of its key
``rng_key[n]`` (32 bits) and ``k`` (``rng_counter[n]`` counts the draws), so an env's
episode does not depend on the other envs of its batch, and a subset carries its
random stream along. The hash works on 32-bit values held in int64 (multiplications are
split so that nothing ever overflows, in Numba and in plain Python alike).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

POS_DTYPE = np.float32  # ball_xy[N, 2], ball_v[N, 2], paddle_y[N, 2]
SCORE_DTYPE = np.int32  # score[N, 2]: (opponent, agent)
COUNT_DTYPE = np.int64  # elapsed[N], rng_key[N], rng_counter[N]
ACTION_DTYPE = np.int64  # actions[N]
REWARD_DTYPE = np.float32  # reward[N]
OBS_DTYPE = np.float32  # observations

STAY, UP, DOWN = 0, 1, 2  # actions: UP moves the paddle to smaller y (up the screen)
NUM_ACTIONS = 3
OPPONENT, AGENT = 0, 1  # paddle / score index

# ---- the params vector (float64) ----------------------------------------------------------
BALL_HALF = 0  # half the ball's side
BALL_SPEED = 1  # distance the ball moves per step
PADDLE_HALF = 2  # half a paddle's height
PADDLE_HALF_W = 3  # half a paddle's width
LEFT_X = 4  # centre x of the opponent's paddle
RIGHT_X = 5  # centre x of the agent's paddle
AGENT_SPEED = 6  # agent paddle's move per UP / DOWN step
OPPONENT_SPEED = 7  # the opponent's largest move per step
OPPONENT_ERROR = 8  # the opponent's aim error, a share of the hitting half-height
MAX_BOUNCE = 9  # angle (radians) of a ball leaving a paddle's edge
SERVE_ANGLE = 10  # serves leave at a uniform angle in [-SERVE_ANGLE, SERVE_ANGLE]
NET_VALUE = 11  # grey level of the dashed centre line (0: none)
BACKGROUND = 12  # grey level of the background's bottom row (a vertical ramp from 0)
NUM_PARAMS = 13

_MASK32 = 0xFFFFFFFF


# ---- randomness ----------------------------------------------------------------------------
@njit(cache=True)
def _mul32(x, c):
    """``(x * c) mod 2**32`` for ``0 <= x, c < 2**32`` without overflowing int64."""
    lo = c & 0xFFFF
    hi = c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & _MASK32


@njit(cache=True)
def hash32(x):
    """A 32-bit integer hash (Wellons' ``lowbias32``) of ``0 <= x < 2**32``."""
    x = x & _MASK32
    x ^= x >> 16
    x = _mul32(x, 0x7FEB352D)
    x ^= x >> 15
    x = _mul32(x, 0x846CA68B)
    x ^= x >> 16
    return x


@njit(cache=True)
def uniform(key, counter):
    """The ``counter``-th uniform number in ``[0, 1)`` of the stream ``key``."""
    h = hash32(int(key) ^ hash32(_mul32(int(counter) & _MASK32, 0x9E3779B9) ^ 0x5BD1E995))
    return h / 4294967296.0


@njit(cache=True)
def _draw(rng_key, rng_counter, n):
    u = uniform(rng_key[n], rng_counter[n])
    rng_counter[n] += 1
    return u


# ---- geometry ------------------------------------------------------------------------------
@njit(cache=True)
def fold(y, lo, hi):
    """Reflect ``y`` into ``[lo, hi]`` as a ball bouncing between two walls would.

    Returns ``(folded y, flipped)``: ``flipped`` is True after an odd number of
    reflections (the vertical velocity changes sign).
    """
    span = hi - lo
    u = (y - lo) / span
    k = math.floor(u)
    f = u - k
    if int(k) % 2 == 0:
        return lo + f * span, False
    return hi - f * span, True


@njit(cache=True)
def _serve(n, ball_xy, ball_v, opp_aim, rng_key, rng_counter, params):
    """Put env ``n``'s ball at the centre, heading to a random side at a random angle;
    the opponent draws a fresh aim error."""
    side = _draw(rng_key, rng_counter, n)
    angle = (2.0 * _draw(rng_key, rng_counter, n) - 1.0) * params[SERVE_ANGLE]
    speed = params[BALL_SPEED]
    direction = 1.0 if side < 0.5 else -1.0
    ball_xy[n, 0] = 0.5
    ball_xy[n, 1] = 0.5
    ball_v[n, 0] = direction * speed * math.cos(angle)
    ball_v[n, 1] = speed * math.sin(angle)
    opp_aim[n] = _aim_error(rng_key, rng_counter, n, params)


@njit(cache=True)
def _aim_error(rng_key, rng_counter, n, params):
    reach = params[PADDLE_HALF] + params[BALL_HALF]
    return (2.0 * _draw(rng_key, rng_counter, n) - 1.0) * params[OPPONENT_ERROR] * reach


@njit(cache=True)
def _push_history(n, ball_xy, paddle_y, hist_ball, hist_paddle):
    """Shift env ``n``'s frame history one frame back and store the current state last."""
    k = hist_ball.shape[1]
    for j in range(k - 1):
        for a in range(2):
            hist_ball[n, j, a] = hist_ball[n, j + 1, a]
            hist_paddle[n, j, a] = hist_paddle[n, j + 1, a]
    for a in range(2):
        hist_ball[n, k - 1, a] = ball_xy[n, a]
        hist_paddle[n, k - 1, a] = paddle_y[n, a]


# ---- reset ---------------------------------------------------------------------------------
@njit(cache=True)
def pong_reset(
    envs,
    ball_xy,
    ball_v,
    paddle_y,
    score,
    elapsed,
    opp_aim,
    rng_key,
    rng_counter,
    hist_ball,
    hist_paddle,
    params,
):
    """Start the episodes of the envs ``envs`` (int64[M]): paddles centred, score 0-0,
    a serve from the centre; every frame of the history shows the start.

    ``rng_key`` / ``rng_counter`` are not re-seeded here (the caller sets them for a
    seeded reset; an autoreset continues the env's stream).
    """
    for i in range(envs.shape[0]):
        n = envs[i]
        paddle_y[n, 0] = 0.5
        paddle_y[n, 1] = 0.5
        score[n, 0] = 0
        score[n, 1] = 0
        elapsed[n] = 0
        _serve(n, ball_xy, ball_v, opp_aim, rng_key, rng_counter, params)
        for j in range(hist_ball.shape[1]):
            for a in range(2):
                hist_ball[n, j, a] = ball_xy[n, a]
                hist_paddle[n, j, a] = paddle_y[n, a]


# ---- step ----------------------------------------------------------------------------------
@njit(cache=True)
def pong_step(
    actions,
    ball_xy,
    ball_v,
    paddle_y,
    score,
    elapsed,
    done,
    opp_aim,
    rng_key,
    rng_counter,
    hist_ball,
    hist_paddle,
    params,
    points_to_win,
    max_episode_steps,
    reward,
    terminated,
    truncated,
):
    """One step of every running env (``done[n]`` False); finished envs are left as they
    are with reward 0 and both flags False.

    Per env: the agent's paddle moves by its action, the opponent's toward the ball's
    ``y`` plus its aim error (at most ``OPPONENT_SPEED``); then the ball moves one step,
    bouncing off the walls (exact reflection) and off a paddle whose face it crosses
    within the paddle's height (the new angle is ``MAX_BOUNCE`` times the hit's offset
    from the paddle's centre, in ``[-1, 1]``). A ball whose centre leaves the court
    scores for the other side (``reward`` +1 when the opponent missed, -1 when the
    agent did) and is served again. ``terminated`` when a side reaches
    ``points_to_win``; ``truncated`` at ``max_episode_steps`` (unless terminated).

    Args:
        actions: int64[N] in {STAY, UP, DOWN} (checked by the caller).
        reward, terminated, truncated: outputs, float32[N] / bool[N] / bool[N].
    """
    hb = params[BALL_HALF]
    speed = params[BALL_SPEED]
    ph = params[PADDLE_HALF]
    reach = ph + hb
    lo_y, hi_y = hb, 1.0 - hb  # where the ball's centre can be
    lo_p, hi_p = ph, 1.0 - ph  # where a paddle's centre can be
    left_face = params[LEFT_X] + params[PADDLE_HALF_W] + hb  # ball centre x at contact
    right_face = params[RIGHT_X] - params[PADDLE_HALF_W] - hb
    max_bounce = params[MAX_BOUNCE]
    for n in range(actions.shape[0]):
        reward[n] = 0.0
        terminated[n] = False
        truncated[n] = False
        if done[n]:
            continue
        # paddles
        a = actions[n]
        py = np.float64(paddle_y[n, 1])
        if a == UP:
            py -= params[AGENT_SPEED]
        elif a == DOWN:
            py += params[AGENT_SPEED]
        paddle_y[n, 1] = min(max(py, lo_p), hi_p)
        oy = np.float64(paddle_y[n, 0])
        move = np.float64(ball_xy[n, 1]) + opp_aim[n] - oy
        limit = params[OPPONENT_SPEED]
        move = min(max(move, -limit), limit)
        paddle_y[n, 0] = min(max(oy + move, lo_p), hi_p)
        # ball
        x = np.float64(ball_xy[n, 0])
        y = np.float64(ball_xy[n, 1])
        vx = np.float64(ball_v[n, 0])
        vy = np.float64(ball_v[n, 1])
        hit = -1
        t = 0.0
        if vx > 0.0 and x <= right_face < x + vx:
            t = (right_face - x) / vx
            hit = AGENT
        elif vx < 0.0 and x >= left_face > x + vx:
            t = (left_face - x) / vx
            hit = OPPONENT
        contact_y = 0.0
        if hit >= 0:
            contact_y, _ = fold(y + vy * t, lo_y, hi_y)
            offset = (contact_y - np.float64(paddle_y[n, hit])) / reach
            if abs(offset) > 1.0:
                hit = -1
        if hit >= 0:
            angle = offset * max_bounce
            vx = speed * math.cos(angle) * (-1.0 if hit == AGENT else 1.0)
            vy = speed * math.sin(angle)
            x = (right_face if hit == AGENT else left_face) + vx * (1.0 - t)
            y, flipped = fold(contact_y + vy * (1.0 - t), lo_y, hi_y)
            if hit == AGENT:
                opp_aim[n] = _aim_error(rng_key, rng_counter, n, params)
        else:
            x = x + vx
            y, flipped = fold(y + vy, lo_y, hi_y)
        if flipped:
            vy = -vy
        ball_xy[n, 0] = x
        ball_xy[n, 1] = y
        ball_v[n, 0] = vx
        ball_v[n, 1] = vy
        # points
        point = -1
        if x >= 1.0:
            point = OPPONENT
            reward[n] = -1.0
        elif x <= 0.0:
            point = AGENT
            reward[n] = 1.0
        if point >= 0:
            score[n, point] += 1
            _serve(n, ball_xy, ball_v, opp_aim, rng_key, rng_counter, params)
            if score[n, point] >= points_to_win:
                terminated[n] = True
        elapsed[n] += 1
        if not terminated[n] and elapsed[n] >= max_episode_steps:
            truncated[n] = True
        _push_history(n, ball_xy, paddle_y, hist_ball, hist_paddle)


# ---- rendering -----------------------------------------------------------------------------
@njit(cache=True)
def _span(centre, half, size):
    """Pixels ``[first, end)`` whose centres lie in ``[centre - half, centre + half)``
    on an axis of ``size`` pixels (at least the one pixel under ``centre``; clipped)."""
    first = math.ceil((centre - half) * size - 0.5)
    end = math.ceil((centre + half) * size - 0.5)
    if end <= first:
        first = math.floor(centre * size)
        end = first + 1
    return max(first, 0), min(end, size)


def layout_offsets(
    height: int, width: int, channels: int, patch: int, patch_height: int | None = None
):
    """Flat offsets of rows and columns in one env's observation: pixel ``(r, c)``,
    channel ``k`` sits at ``row_off[r] + col_off[c] + k``.

    ``patch == 0`` gives pixels ``[H, W, C]`` row-major; otherwise the layout of
    :func:`colonylab.agents.sensory.patchify`: ``[P, patch_height, patch, C]`` with the
    patches row-major over the grid (both offsets are separable in ``r`` and ``c``);
    ``patch_height`` None: square patches (``patch`` x ``patch``).

    Returns:
        ``(row_off int64[height], col_off int64[width])``.
    """
    r = np.arange(height, dtype=np.int64)
    c = np.arange(width, dtype=np.int64)
    if patch == 0:
        return r * width * channels, c * channels
    ph = patch if patch_height is None else patch_height
    cols = width // patch
    row_off = ((r // ph) * cols * ph * patch + (r % ph) * patch) * channels
    col_off = ((c // patch) * ph * patch + c % patch) * channels
    return row_off, col_off


@njit(cache=True)
def _fill(out, n, x, y, half_w, half_h, value, height, width, row_off, col_off, k):
    c0, c1 = _span(x, half_w, width)
    r0, r1 = _span(y, half_h, height)
    for r in range(r0, r1):
        base = row_off[r] + k
        for c in range(c0, c1):
            out[n, base + col_off[c]] = value


@njit(cache=True)
def pong_render(envs, hist_ball, hist_paddle, params, row_off, col_off, net, out):
    """Draw the frame history of the envs ``envs`` (int64[M]) into ``out[n]``.

    Args:
        hist_ball, hist_paddle: float32[N, K, 2] (frame ``K - 1`` the newest).
        row_off, col_off: int64[H], int64[W] from :func:`layout_offsets` (the screen
            size and the pixel or patch layout).
        net: draw the dashed centre line (grey level ``NET_VALUE``).
        out: float32[N, H * W * K], written for the rows ``envs`` only: background 0
            (or the ramp ``BACKGROUND * (r + 0.5) / H`` in pixel row ``r``), paddles
            and ball 1, channel ``k`` showing frame ``k``.
    """
    channels = hist_ball.shape[1]
    height = row_off.shape[0]
    width = col_off.shape[0]
    hb = params[BALL_HALF]
    ph = params[PADDLE_HALF]
    pw = params[PADDLE_HALF_W]
    net_value = params[NET_VALUE]
    net_col = col_off[width // 2]
    ramp = params[BACKGROUND]
    for i in range(envs.shape[0]):
        n = envs[i]
        out[n, :] = 0.0
        if ramp > 0.0:
            for r in range(height):
                level = ramp * (r + 0.5) / height
                for c in range(width):
                    for k in range(channels):
                        out[n, row_off[r] + col_off[c] + k] = level
        for k in range(channels):
            if net and net_value > 0.0:
                for r in range(0, height, 4):
                    out[n, row_off[r] + net_col + k] = net_value
                    if r + 1 < height:
                        out[n, row_off[r + 1] + net_col + k] = net_value
            for side in range(2):
                px = params[LEFT_X] if side == OPPONENT else params[RIGHT_X]
                py = np.float64(hist_paddle[n, k, side])
                _fill(out, n, px, py, pw, ph, 1.0, height, width, row_off, col_off, k)
            bx = np.float64(hist_ball[n, k, 0])
            by = np.float64(hist_ball[n, k, 1])
            if 0.0 < bx < 1.0:
                _fill(out, n, bx, by, hb, hb, 1.0, height, width, row_off, col_off, k)


# ---- the scripted teacher ------------------------------------------------------------------
@njit(cache=True)
def _return_path(y_hit, offset, params):
    """Where a return hit at height ``y_hit`` with hit ``offset`` (a share of the hitting
    half-height) reaches the opponent's face, and how many steps it takes to get there."""
    hb = params[BALL_HALF]
    angle = offset * params[MAX_BOUNCE]
    back_vx = params[BALL_SPEED] * math.cos(angle)
    back_vy = params[BALL_SPEED] * math.sin(angle)
    left_face = params[LEFT_X] + params[PADDLE_HALF_W] + hb
    right_face = params[RIGHT_X] - params[PADDLE_HALF_W] - hb
    t_back = (right_face - left_face) / back_vx
    y_far, _ = fold(y_hit + back_vy * t_back, hb, 1.0 - hb)
    return y_far, t_back


@njit(cache=True)
def pong_teacher(ball_xy, ball_v, paddle_y, params, candidates, actions):
    """The expert's actions from the true state, int64[N] into ``actions``.

    While the ball comes toward the agent, predict where it crosses the agent's paddle
    face (walls folded in); for each hit offset in ``candidates`` (shares of the
    hitting half-height) predict where the return reaches the opponent and how far the
    opponent, at full speed, stays from it; aim for the best offset that the paddle can
    still reach in time (the plain predicted crossing if none can). While the ball moves
    away, return to the centre. Moves when the target is more than half a move away.
    """
    hb = params[BALL_HALF]
    ph = params[PADDLE_HALF]
    reach = ph + hb
    lo_y, hi_y = hb, 1.0 - hb
    lo_p, hi_p = ph, 1.0 - ph
    right_face = params[RIGHT_X] - params[PADDLE_HALF_W] - hb
    agent_speed = params[AGENT_SPEED]
    opp_speed = params[OPPONENT_SPEED]
    for n in range(actions.shape[0]):
        py = np.float64(paddle_y[n, 1])
        x = np.float64(ball_xy[n, 0])
        vx = np.float64(ball_v[n, 0])
        target = 0.5
        if vx > 0.0 and x <= right_face:
            t_hit = (right_face - x) / vx
            y_hit, _ = fold(
                np.float64(ball_xy[n, 1]) + np.float64(ball_v[n, 1]) * t_hit, lo_y, hi_y
            )
            steps = math.ceil(t_hit)
            target = min(max(y_hit, lo_p), hi_p)
            best = -1e9
            oy = np.float64(paddle_y[n, 0])
            for j in range(candidates.shape[0]):
                want = min(max(y_hit - candidates[j] * reach, lo_p), hi_p)
                offset = (y_hit - want) / reach
                if abs(offset) > 0.95:
                    continue
                if abs(want - py) > agent_speed * steps - 0.5 * agent_speed:
                    continue
                y_far, t_back = _return_path(y_hit, offset, params)
                margin = abs(y_far - oy) - opp_speed * (steps + t_back) - reach
                if margin > best:
                    best = margin
                    target = want
        if target < py - 0.5 * agent_speed:
            actions[n] = UP
        elif target > py + 0.5 * agent_speed:
            actions[n] = DOWN
        else:
            actions[n] = STAY


@njit(cache=True)
def pong_aim_teacher(ball_xy, paddle_y, params, candidates, actions):
    """A teacher that acts on what a full-height strip of the screen shows: the ball's
    ``y`` and both paddles' ``y`` (no ball ``x``, no velocity), int64[N] into ``actions``.

    It keeps its paddle at the ball's height, offset by the candidate hit offset (shares
    of the hitting half-height) whose return -- were the ball hit now, at its present
    height -- reaches the opponent's side farthest beyond what the opponent, at full
    speed from where it is, can cover. The paddle (0.04 per step) outruns the ball's
    vertical speed (at most 0.026), so the offset holds when the ball arrives. Moves
    when the target is more than half a move away.
    """
    hb = params[BALL_HALF]
    ph = params[PADDLE_HALF]
    reach = ph + hb
    lo_p, hi_p = ph, 1.0 - ph
    agent_speed = params[AGENT_SPEED]
    opp_speed = params[OPPONENT_SPEED]
    for n in range(actions.shape[0]):
        py = np.float64(paddle_y[n, 1])
        oy = np.float64(paddle_y[n, 0])
        y = np.float64(ball_xy[n, 1])
        target = min(max(y, lo_p), hi_p)
        best = -1e9
        for j in range(candidates.shape[0]):
            want = min(max(y - candidates[j] * reach, lo_p), hi_p)
            offset = (y - want) / reach
            if abs(offset) > 0.95:
                continue
            y_far, t_back = _return_path(y, offset, params)
            margin = abs(y_far - oy) - opp_speed * t_back
            if margin > best:
                best = margin
                target = want
        if target < py - 0.5 * agent_speed:
            actions[n] = UP
        elif target > py + 0.5 * agent_speed:
            actions[n] = DOWN
        else:
            actions[n] = STAY
