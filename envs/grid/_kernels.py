"""Numba kernels of the MAgent-class grid worlds (battle, pursuit, gather).

Every kernel takes arrays and scalars only and writes into preallocated outputs;
dtypes and cell codes come from the constants below. Parallel loops (``prange``)
write only their own agent's slots or the agent's own cell, and every step that
has to resolve a conflict (several attackers on one target, several movers into
one cell) runs as a sequential pass in agent-index order, so results never depend
on the thread count. Each kernel has a NumPy reference in the world's tests
(``tests/envs/test_battle.py``, ``test_pursuit.py``, ``test_gather.py``) and runs under
``NUMBA_DISABLE_JIT=1`` there too.

The phases the three worlds share (begin a step, attacks, hits per target, deaths, kill
rewards, move destinations and claims; in the scripted policies the nearest cell of a
kind in a view and the step towards a point) are small ``@njit(inline="always")``
helpers, each with a NumPy reference in ``tests/envs/test_grid_kernels.py``. They are
inlined rather than called: a plain njit call halves the battle step's speed.

Coordinates are ``(row y, column x)``; rows grow downwards (north is ``-y``). The
grid that kernels see is *padded*: a ring of ``pad`` wall cells around the map,
so that views and moves never index outside it. An agent at map cell ``(y, x)``
sits at padded cell ``(y + pad, x + pad)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

POS_DTYPE = np.int32  # pos[N, 2]: (y, x) map cell of each agent
TEAM_DTYPE = np.int8  # team[N]: 0 (red) or 1 (blue)
HP_DTYPE = np.float32  # hp[N]
GRID_DTYPE = np.int32  # grid[H, W]: agent index, EMPTY or WALL
ACTION_DTYPE = np.int32  # last_action[N]
REWARD_DTYPE = np.float32  # reward[N]

EMPTY = -1  # grid value of an empty cell
WALL = -2  # grid value of a wall (and of everything outside the map)

# ---- actions -------------------------------------------------------------------
# 0 no-op; 1-12 moves to the 12 nearest cells; 13-20 attacks on the 8 neighbours.
# Attack 13 + k hits the cell that move 1 + k would move to.
#   1 N   2 E   3 S   4 W            (distance 1)
#   5 NE  6 SE  7 SW  8 NW           (distance sqrt 2)
#   9 NN 10 EE 11 SS 12 WW           (distance 2)
#  13-16 attack N, E, S, W; 17-20 attack NE, SE, SW, NW
N_ACTIONS = 21
FIRST_MOVE = 1
FIRST_ATTACK = 13
ACTION_DY = np.array(
    [0, -1, 0, 1, 0, -1, 1, 1, -1, -2, 0, 2, 0, -1, 0, 1, 0, -1, 1, 1, -1], dtype=np.int32
)
ACTION_DX = np.array(
    [0, 0, 1, 0, -1, 1, 1, -1, -1, 0, 2, 0, -2, 0, 1, 0, -1, 1, 1, -1, -1], dtype=np.int32
)


def circle_spans(radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Per view row, the first and last column inside the view circle.

    A cell ``(dy, dx)`` of the ``(2r+1) x (2r+1)`` view is seen when
    ``dy**2 + dx**2 <= r**2``; every row holds one contiguous span of such cells.

    Returns:
        ``(lo, hi)``, int32[2r+1] each, inclusive column bounds of row ``r``.
    """
    size = 2 * radius + 1
    lo = np.empty(size, dtype=np.int32)
    hi = np.empty(size, dtype=np.int32)
    for row in range(size):
        dy = row - radius
        half = int(np.floor(np.sqrt(radius * radius - dy * dy)))
        lo[row] = radius - half
        hi[row] = radius + half
    return lo, hi


# ---- actions in ----------------------------------------------------------------


@njit(cache=True)
def first_bad_action(actions, alive, n_actions):
    """Index of the first living agent whose action is outside ``[0, n_actions)``, else -1.

    Args:
        actions: integer[N].
        alive: bool[N]; entries of dead agents are not looked at.
        n_actions: size of the action set.
    """
    for i in range(actions.shape[0]):
        if alive[i]:
            a = actions[i]
            if a < 0 or a >= n_actions:
                return i
    return -1


# ---- step phases shared by the worlds ----------------------------------------------
# Every world's step runs the same phases: begin (clear the agent's per-step slots),
# attacks read from the start-of-step state, hits summed per target, deaths, kill
# rewards, move destinations and move claims. Each phase is one helper below, inlined
# into the worlds' step kernels; the per-agent helpers run inside the worlds' parallel
# loops and write only agent ``i``'s slots and cell, the whole-array ones are the
# sequential passes (agent-index order) that resolve conflicts. References:
# ``tests/envs/test_grid_kernels.py``.


@njit(inline="always")
def begin_agent(i, actions, alive, reward, last_action, killed, attack_target, hits, dest):
    """Start agent ``i``'s step: clear its per-step outputs and scratch, record its action.

    Args:
        i: agent index.
        actions: integer[N], validated; alive: bool[N].
        reward: float32[N], set to 0 for a dead agent (the living get theirs after).
        last_action: int32[N], set to the action of a living agent.
        killed: bool[N], cleared; attack_target: int32[N], set to -1.
        hits: int32[N] (hits or attackers taken), set to 0; dest: int64[N], set to -1.

    Returns:
        The agent's action, or -1 when it is dead (its action is ignored).
    """
    killed[i] = False
    attack_target[i] = -1
    hits[i] = 0
    dest[i] = -1
    if not alive[i]:
        reward[i] = 0.0
        return -1
    a = actions[i]
    last_action[i] = a
    return a


@njit(inline="always")
def attacked_cell(grid, pos, pad, i, action, first_attack):
    """What the cell hit by attack ``action`` of agent ``i`` holds (agent index, EMPTY, WALL).

    Attack ``first_attack + k`` hits the cell that move ``FIRST_MOVE + k`` leads to.

    Args:
        grid: int32[Hp, Wp] padded grid; pos: int32[N, 2] map cells; pad: ring width.
        i: agent index; action: its attack; first_attack: the world's first attack action.
    """
    m = action - first_attack + FIRST_MOVE
    return grid[pos[i, 0] + pad + ACTION_DY[m], pos[i, 1] + pad + ACTION_DX[m]]


@njit(inline="always")
def count_hits(attack_target, hits):
    """Sequential pass: ``hits[t] += 1`` for every agent that hit agent ``t`` this step.

    Args:
        attack_target: int32[N], the agent each agent hit, -1 none.
        hits: int32[N], zeroed by ``begin_agent``, incremented in place.
    """
    for i in range(attack_target.shape[0]):
        t = attack_target[i]
        if t >= 0:
            hits[t] += 1


@njit(inline="always")
def hp_after_hits(hp, hits, damage, i):
    """Agent ``i``'s HP after this step's hits: ``hp - hits * damage`` (float32)."""
    return hp[i] - np.float32(hits[i]) * damage


@njit(inline="always")
def remove_dead(i, pos, pad, grid, alive, killed, reward, dead_penalty):
    """Agent ``i`` dies this step: not alive, ``killed``, ``dead_penalty``, off the grid.

    Args:
        i: agent index; pos: int32[N, 2]; pad: ring width; grid: int32 padded grid.
        alive, killed: bool[N]; reward: float32[N]; dead_penalty: float32.

    Returns:
        The flat padded cell it left (``y * Wp + x``).
    """
    alive[i] = False
    killed[i] = True
    reward[i] += dead_penalty
    y = pos[i, 0] + pad
    x = pos[i, 1] + pad
    grid[y, x] = EMPTY
    return y * grid.shape[1] + x


@njit(inline="always")
def reward_kill(i, attack_target, killed, kill_reward, reward):
    """Kill reward: agent ``i`` earns ``kill_reward`` when the agent it hit died this step.

    Returns:
        Whether it took part in a kill.
    """
    t = attack_target[i]
    if t >= 0 and killed[t]:
        reward[i] += kill_reward
        return True
    return False


@njit(inline="always")
def move_destination(grid, pos, pad, i, action):
    """Flat padded cell that move ``action`` of agent ``i`` leads to if it is empty now, else -1.

    Moves jump: the cells in between do not matter.
    """
    y = pos[i, 0] + pad + ACTION_DY[action]
    x = pos[i, 1] + pad + ACTION_DX[action]
    if grid[y, x] == EMPTY:
        return y * grid.shape[1] + x
    return -1


@njit(inline="always")
def claim_move(i, d, pos, pad, flat, width):
    """Move agent ``i`` to flat padded cell ``d`` if that cell is still empty.

    Called in agent-index order (a sequential pass), so the first claimant of a
    cell moves and later ones stay.

    Args:
        i: agent index; d: its destination (``move_destination``), -1 none.
        pos: int32[N, 2], updated; pad: ring width.
        flat: the padded grid flattened (``grid.reshape(-1)``), updated; width: ``Wp``.

    Returns:
        The flat padded cell it left, or -1 when it did not move.
    """
    if d < 0 or flat[d] != EMPTY:
        return -1
    old = (pos[i, 0] + pad) * width + pos[i, 1] + pad
    flat[old] = EMPTY
    flat[d] = i
    pos[i, 0] = d // width - pad
    pos[i, 1] = d % width - pad
    return old


# ---- one battle step ---------------------------------------------------------------


@njit(parallel=True, cache=True)
def battle_step(
    actions,
    pos,
    team,
    hp,
    alive,
    grid,
    pad,
    max_hp,
    damage,
    recover,
    step_reward,
    dead_penalty,
    attack_penalty,
    hit_reward,
    kill_reward,
    reward,
    killed,
    attack_target,
    last_action,
    hits,
    dest,
    vacated,
    deaths,
):
    """Advance the battle one step, in place.

    Order within the step (all agents simultaneously):

    1. Attacks, read from the state at the start of the step: an attack costs
       ``attack_penalty``; if the target cell holds an enemy, the attacker earns
       ``hit_reward`` and the target takes ``damage`` (attacks on allies, walls or
       empty cells do nothing else).
    2. Damage is summed per target; agents with ``hp <= 0`` die (``dead_penalty``),
       leave the grid, and every attacker that hit them this step earns ``kill_reward``.
       Agents that die still deliver their own attacks of this step.
    3. Moves of the survivors: a move succeeds when its destination is empty after
       the deaths of this step (a cell vacated by a mover this step does not count)
       and no lower-indexed agent claims the same cell (sequential pass, lowest
       index wins). Moves jump: the cell in between does not matter.
    4. Survivors recover ``recover`` HP, capped at ``max_hp``.

    Every agent alive at the start earns ``step_reward``; dead agents earn 0 and
    their actions are ignored.

    Args:
        actions: integer[N], validated (``first_bad_action``).
        pos: int32[N, 2] map cells (y, x), updated.
        team: int8[N].
        hp: float32[N], updated (0 for the dead).
        alive: bool[N], updated.
        grid: int32[H + 2 pad, W + 2 pad] padded agent-index grid, updated.
        pad: width of the wall ring around the map in ``grid`` (>= 2).
        max_hp, damage, recover: float32 scalars.
        step_reward, dead_penalty, attack_penalty, hit_reward, kill_reward: float32.
        reward: float32[N] out.
        killed: bool[N] out, died this step.
        attack_target: int32[N] out, the enemy each agent hit this step, -1 none.
        last_action: int32[N], set to the action of every agent alive at the start.
        hits: int32[N] scratch (hits taken).
        dest: int64[N] scratch (flat padded destination of each mover, -1 none).
        vacated: int64[N] out, the flat padded cell each agent left this step (it
            moved or died), -1 none.
        deaths: int64[2] out, agents of each team that died this step.
    """
    n = actions.shape[0]
    width = grid.shape[1]
    flat = grid.reshape(-1)
    # 1. attacks against the state at the start of the step
    for i in prange(n):
        vacated[i] = -1
        a = begin_agent(i, actions, alive, reward, last_action, killed, attack_target, hits, dest)
        if a < 0:
            continue
        r = step_reward
        if a >= FIRST_ATTACK:
            r += attack_penalty
            g = attacked_cell(grid, pos, pad, i, a, FIRST_ATTACK)
            if g >= 0 and team[g] != team[i]:
                attack_target[i] = g
                r += hit_reward
        reward[i] = r
    # 2a. sum the hits per target (sequential: many attackers may share a target)
    count_hits(attack_target, hits)
    # 2b. damage, deaths and recovery; each agent writes only itself and its own cell
    dead0 = 0
    dead1 = 0
    for i in prange(n):
        if alive[i] and hits[i] > 0:
            h = hp_after_hits(hp, hits, damage, i)
            if h <= 0:
                hp[i] = 0.0
                vacated[i] = remove_dead(i, pos, pad, grid, alive, killed, reward, dead_penalty)
                if team[i] == 0:
                    dead0 += 1
                else:
                    dead1 += 1
            else:
                hp[i] = min(h + recover, max_hp)
        elif alive[i]:
            hp[i] = min(hp[i] + recover, max_hp)
    deaths[0] = dead0
    deaths[1] = dead1
    # 2c. kill rewards to every attacker that hit an agent that died
    for i in prange(n):
        reward_kill(i, attack_target, killed, kill_reward, reward)
    # 3a. move destinations, checked against the grid after the deaths
    for i in prange(n):
        if alive[i] and FIRST_MOVE <= actions[i] < FIRST_ATTACK:
            dest[i] = move_destination(grid, pos, pad, i, actions[i])
    # 3b. claims in index order: the first claimant of a cell moves, later ones stay
    for i in range(n):
        old = claim_move(i, dest[i], pos, pad, flat, width)
        if old >= 0:
            vacated[i] = old


# ---- observations ------------------------------------------------------------------


# The views are copied from two *planes*, one per team's point of view: float
# [2, H + 2 pad, W + 2 pad, 5] maps holding, for every cell, the five channels an
# agent of that team sees there (obstacle, own presence, own HP, enemy presence,
# enemy HP), already encoded in the observation dtype. A view row is then a
# contiguous copy, and the planes follow the agents with O(N) writes per step.


@njit(parallel=True, cache=True)
def sync_planes(planes, pad, pos, team, alive, vacated, hp_code, one):
    """Bring the planes up to date after a step (or after ``reset_planes``).

    Args:
        planes: [2, H + 2 pad, W + 2 pad, 5] in the observation's kernel dtype.
        pad: wall ring width of the planes (and of the padded grid).
        pos: int32[N, 2]; team: int8[N]; alive: bool[N].
        vacated: int64[N] flat padded cells left this step (``battle_step``), -1 none.
        hp_code: [N] encoded HP fractions; one: the code of 1.0.
    """
    n = pos.shape[0]
    width = planes.shape[2]
    # cells left by movers and the dead: no agent there any more (distinct cells)
    for i in prange(n):
        v = vacated[i]
        if v >= 0:
            y = v // width
            x = v % width
            for k in range(1, 5):
                planes[0, y, x, k] = 0
                planes[1, y, x, k] = 0
    # every living agent's cell, in both points of view (each agent owns its cell)
    for i in prange(n):
        if alive[i]:
            y = pos[i, 0] + pad
            x = pos[i, 1] + pad
            me = team[i]
            other = 1 - me
            h = hp_code[i]
            planes[me, y, x, 1] = one
            planes[me, y, x, 2] = h
            planes[me, y, x, 3] = 0
            planes[me, y, x, 4] = 0
            planes[other, y, x, 1] = 0
            planes[other, y, x, 2] = 0
            planes[other, y, x, 3] = one
            planes[other, y, x, 4] = h


@njit(parallel=True, cache=True)
def reset_planes(planes, grid, one):
    """Planes of a map with no agents: channel 0 = ``one`` on walls (``grid == WALL``).

    Args:
        planes: [2, Hp, Wp, 5] out; grid: int32[Hp, Wp] padded grid.
    """
    for y in prange(grid.shape[0]):
        for x in range(grid.shape[1]):
            wall = one if grid[y, x] == WALL else 0
            for t in range(2):
                planes[t, y, x, 0] = wall
                for k in range(1, 5):
                    planes[t, y, x, k] = 0


@njit(parallel=True, cache=True)
def write_views(
    planes, pad, pos, team, alive, killed, row_lo, row_hi, minimap, channels, index, full, out
):
    """Each agent's view of the map around it, copied from its team's plane into ``out``.

    Channels: 0 obstacle (wall or outside the map), 1 own-team presence, 2 own-team
    HP / max, 3 enemy presence, 4 enemy HP / max; with ``channels == 7`` also 5
    own-team and 6 enemy minimap (``minimap[team]``, the whole S x S plane). Cells
    outside the view circle are 0 in channels 0-4.

    Arrays come flattened (zero-copy reshapes of C-contiguous arrays) so that each
    row of a view is one contiguous copy; indices are unsigned so that LLVM
    vectorizes the copies (no negative-index wraparound checks).

    Args:
        planes: [2, H + 2 pad, (W + 2 pad) * 5] (``sync_planes``), kernel dtype of ``out``.
        pad: wall ring width of the planes, >= the view radius.
        pos: int32[N, 2]; team: int8[N]; alive: bool[N].
        killed: bool[N]; rows of agents that died this step are zeroed.
        row_lo, row_hi: int32[S] circle spans (``circle_spans``).
        minimap: [2, S, S, 2] in the dtype of ``out`` (read when ``channels == 7``).
        channels: C, 5 or 7.
        index: int64[M], the agent whose view goes into row ``j`` of ``out``.
        full: write every value (any buffer); else write only the cells inside the
            circle, the minimap channels and the rows of the newly dead, trusting the
            rest of ``out`` to hold the zeros written before.
        out: [M, S * S * C] output, a view ``[S, S, C]`` per row (S = 2 radius + 1).
    """
    m = index.shape[0]
    size = row_lo.shape[0]
    corner = pad - size // 2  # padded offset of a view's top-left cell
    five = np.uint64(5)
    ch = np.uint64(channels)
    row_len = np.uint64(size) * ch
    for row in prange(m):
        i = index[row]
        dst = out[row]
        if not alive[i]:
            if full or killed[i]:
                for j in range(dst.shape[0]):
                    dst[j] = 0
            continue
        y0 = pos[i, 0] + corner
        x0 = np.uint64(pos[i, 1] + corner)
        me = team[i]
        src = planes[me]
        for r in range(size):
            lo = np.uint64(row_lo[r])
            hi = np.uint64(row_hi[r]) + np.uint64(1)
            srow = src[y0 + r]
            base = np.uint64(r) * row_len
            if channels == 5:
                if full:
                    for j in range(base, base + lo * five):
                        dst[j] = 0
                    for j in range(base + hi * five, base + row_len):
                        dst[j] = 0
                d = base + lo * five
                s = (x0 + lo) * five
                for j in range((hi - lo) * five):
                    dst[d + j] = srow[s + j]
            else:
                for c in range(np.uint64(size)):
                    d = base + c * ch
                    if lo <= c < hi:
                        s = (x0 + c) * five
                        for k in range(five):
                            dst[d + k] = srow[s + k]
                    elif full:
                        for k in range(five):
                            dst[d + k] = 0
                    dst[d + five] = minimap[me, r, c, 0]
                    dst[d + five + np.uint64(1)] = minimap[me, r, c, 1]


@njit(parallel=True, cache=True)
def write_features(pos, team, alive, last_action, last_reward, team_size, id_bits, h, w, out):
    """Each agent's extra features, written into ``out`` (dead agents: zeros).

    Layout of a row: ``id_bits`` bits of the agent's index within its team (least
    significant first), a one-hot of its last action (``N_ACTIONS``), its last
    reward, and its position ``(y / (H - 1), x / (W - 1))``.

    Args:
        pos: int32[N, 2]; team: int8[N]; alive: bool[N].
        last_action: int32[N]; last_reward: float32[N].
        team_size: agents a side (agent ``i`` of team ``t`` has index ``i - t * team_size``).
        id_bits: bits of the id embedding.
        h, w: map height and width.
        out: float32[N, id_bits + N_ACTIONS + 3].
    """
    n = out.shape[0]
    width = out.shape[1]
    sy = 1.0 / max(h - 1, 1)
    sx = 1.0 / max(w - 1, 1)
    for i in prange(n):
        row = out[i]
        for k in range(width):
            row[k] = 0.0
        if not alive[i]:
            continue
        index = i - team[i] * team_size
        for b in range(id_bits):
            row[b] = (index >> b) & 1
        a = last_action[i]
        if 0 <= a < N_ACTIONS:
            row[id_bits + a] = 1.0
        row[id_bits + N_ACTIONS] = last_reward[i]
        row[id_bits + N_ACTIONS + 1] = pos[i, 0] * sy
        row[id_bits + N_ACTIONS + 2] = pos[i, 1] * sx


# ---- rendering ---------------------------------------------------------------------


@njit(parallel=True, cache=True)
def paint_agents(pos, team, hp, alive, max_hp, low, high, image):
    """One pixel per living agent: its team's colour between ``low`` (HP 0) and ``high``.

    Args:
        pos: int32[N, 2]; team: int8[N]; hp: float32[N]; alive: bool[N].
        max_hp: float.
        low, high: uint8[T, 3] colours per team.
        image: uint8[H, W, 3], painted in place (each agent owns its own pixel).
    """
    for i in prange(pos.shape[0]):
        if alive[i]:
            t = team[i]
            f = min(max(hp[i] / max_hp, 0.0), 1.0)
            for k in range(3):
                lo = np.float32(low[t, k])
                image[pos[i, 0], pos[i, 1], k] = np.uint8(lo + (np.float32(high[t, k]) - lo) * f)


# ---- scripted policies ---------------------------------------------------------------
# Phases shared by the scripted policies of the three worlds (inlined helpers): find the
# nearest cell of a kind in a view, and step towards a point of the view.


@njit(inline="always")
def nearest_in_view(v, channel):
    """The view cell nearest to the centre (squared distance) with ``v[y, x, channel] > 0``.

    Ties go to the first cell in row-major view order.

    Args:
        v: [S, S, C] one agent's view; channel: the channel to look for.

    Returns:
        ``(y, x, d)``: the cell and its squared distance, or ``(-1, -1, 1 << 30)``.
    """
    size = v.shape[0]
    rad = size // 2
    ty = -1
    tx = -1
    best_d = 1 << 30
    for y in range(size):
        for x in range(size):
            if v[y, x, channel] > 0:
                d = (y - rad) * (y - rad) + (x - rad) * (x - rad)
                if d < best_d:
                    best_d = d
                    ty = y
                    tx = x
    return ty, tx, best_d


@njit(inline="always")
def move_towards(v, gy, gx, end_move, blocked):
    """The move that brings an agent closest to view point ``(gy, gx)``, or 0 (stay).

    Among moves ``FIRST_MOVE .. end_move - 1`` whose destination is free in the view
    (no channel of ``blocked`` above 0 there), the one whose destination is strictly
    nearer (squared distance) than the centre and every lower move.

    Args:
        v: [S, S, C] one agent's view; gy, gx: the goal in view coordinates (int or float).
        end_move: one past the last move action; blocked: tuple of channel indices.
    """
    rad = v.shape[0] // 2
    best = (gy - rad) * (gy - rad) + (gx - rad) * (gx - rad)
    action = 0
    for a in range(FIRST_MOVE, end_move):
        y = rad + ACTION_DY[a]
        x = rad + ACTION_DX[a]
        free = True
        for c in blocked:
            if v[y, x, c] > 0:
                free = False
        if not free:
            continue
        d = (gy - y) * (gy - y) + (gx - x) * (gx - x)
        if d < best:
            best = d
            action = a
    return action


@njit(parallel=True, cache=True)
def minimap_goals(view, pos_frac, goal_y, goal_x):
    """Heading of each agent towards the nearest minimap block that holds enemies.

    The minimap channels (6: enemy density of the whole map on the S x S view grid)
    and the agent's own position (the last two extra features, ``y / (H - 1)`` and
    ``x / (W - 1)``) give a direction even when no enemy is in view. The heading
    is written as a far-away point in view coordinates (``radius + 64 * unit
    vector``); NaN when the map holds no enemy or the nearest enemy block is the
    agent's own.

    Args:
        view: [N, S, S, 7] observations (any dtype the greedy policy takes).
        pos_frac: float32[N, 2] own position scaled to [0, 1].
        goal_y, goal_x: float32[N] out.
    """
    n = view.shape[0]
    size = view.shape[1]
    rad = size // 2
    for i in prange(n):
        my = min(pos_frac[i, 0] * size, size - 1e-3)
        mx = min(pos_frac[i, 1] * size, size - 1e-3)
        best = 1e30
        by = 0.0
        bx = 0.0
        for y in range(size):
            for x in range(size):
                if view[i, y, x, 6] > 0:
                    dy = y + 0.5 - my
                    dx = x + 0.5 - mx
                    d = dy * dy + dx * dx
                    if d < best:
                        best = d
                        by = dy
                        bx = dx
        norm = np.sqrt(best)
        if best == 1e30 or norm < 0.5:
            goal_y[i] = np.nan
            goal_x[i] = np.nan
        else:
            goal_y[i] = rad + 64.0 * by / norm
            goal_x[i] = rad + 64.0 * bx / norm


@njit(parallel=True, cache=True)
def greedy_actions(view, mask, fallback, goal_y, goal_x, out):
    """Greedy battle policy from the views alone, one agent per ``prange`` iteration.

    An agent with an enemy in one of its 8 neighbouring cells attacks the weakest
    of them (first in attack order on ties). Otherwise it takes the move (or stays)
    that brings it closest to the nearest visible enemy (nearest by squared
    distance, first in row-major view order on ties), among destinations that are
    free in its view. With no enemy in view it heads for ``(goal_y[i], goal_x[i])``
    (view coordinates, e.g. from ``minimap_goals``) the same way, or takes
    ``fallback[i]`` when the goal is NaN.

    Args:
        view: [N, S, S, C] observations (float32, uint8, or float16 bits as uint16:
            presence is ``> 0`` and HP codes order like the values in all three).
        mask: bool[N]; agents where it is False are skipped (``out`` untouched).
        fallback: integer[N] actions for agents that see no enemy and have no goal.
        goal_y, goal_x: float32[N] goal points in view coordinates, NaN for none.
        out: int32[N] actions out.
    """
    n = view.shape[0]
    size = view.shape[1]
    rad = size // 2
    for i in prange(n):
        if not mask[i]:
            continue
        v = view[i]
        best = -1
        best_hp = v[0, 0, 4]
        for k in range(8):
            y = rad + ACTION_DY[FIRST_MOVE + k]
            x = rad + ACTION_DX[FIRST_MOVE + k]
            if v[y, x, 3] > 0 and (best < 0 or v[y, x, 4] < best_hp):
                best = k
                best_hp = v[y, x, 4]
        if best >= 0:
            out[i] = FIRST_ATTACK + best
            continue
        ty, tx, _ = nearest_in_view(v, 3)
        gy = np.float64(ty)
        gx = np.float64(tx)
        if ty < 0:
            if np.isnan(goal_y[i]):
                out[i] = fallback[i]
                continue
            gy = np.float64(goal_y[i])
            gx = np.float64(goal_x[i])
        out[i] = move_towards(v, gy, gx, FIRST_ATTACK, (0, 1, 3))


# ---- pursuit (predators and prey) ------------------------------------------------------

# Team 0 are predators, team 1 prey. Actions: 0 no-op, 1-8 moves to the 8 neighbours
# in the table order above (N E S W NE SE SW NW); predators also 9-16, attack 9 + k on
# the cell of move 1 + k. The step is parallel over agents with sequential passes where
# agents compete (attacks counted per prey, move claims, birth slot and cell claims),
# all in agent-index order, so results never depend on the thread count. References:
# ``tests/envs/test_pursuit.py``.

PURSUIT_PREDATOR_ACTIONS = 17
PURSUIT_PREY_ACTIONS = 9
PURSUIT_FIRST_ATTACK = 9  # attack 9 + k hits the cell of move 1 + k
PURSUIT_CHANNELS = 4  # obstacle, predator, prey, predator energy / max_energy
ENERGY_DTYPE = np.float32  # energy[N]


@njit(cache=True)
def pursuit_first_bad_action(actions, team, alive, n_predator_actions, n_prey_actions):
    """Index of the first living agent whose action is outside its species' range, else -1.

    Args:
        actions: integer[N].
        team: int8[N], 0 predator, 1 prey.
        alive: bool[N]; entries of dead agents are not looked at.
        n_predator_actions, n_prey_actions: sizes of the two action sets.
    """
    for i in range(actions.shape[0]):
        if alive[i]:
            a = actions[i]
            high = n_predator_actions if team[i] == 0 else n_prey_actions
            if a < 0 or a >= high:
                return i
    return -1


@njit(parallel=True, cache=True)
def pursuit_step(
    actions,
    pos,
    team,
    alive,
    energy,
    grid,
    pad,
    min_attackers,
    predator_step_reward,
    prey_step_reward,
    attack_penalty,
    kill_reward,
    dead_penalty,
    starvation,
    kill_energy,
    max_energy,
    reward,
    killed,
    born,
    attack_target,
    last_action,
    attackers,
    dest,
    deaths,
):
    """Advance the pursuit one step (without births), in place.

    Order within the step (all agents simultaneously):

    1. Attacks, read from the state at the start of the step: each predator attack
       costs ``attack_penalty``; it hits when the target cell holds a prey.
    2. Prey hit by at least ``min_attackers`` predators die (``dead_penalty``) and
       leave the grid; every predator that hit a prey that died earns
       ``kill_reward`` and ``kill_energy`` (energy capped at ``max_energy``).
    3. Starvation (when ``starvation > 0``): every living predator loses
       ``starvation`` energy; at energy ``<= 0`` it dies (``dead_penalty``) and
       leaves the grid.
    4. Moves of the survivors into cells empty after the deaths (a cell vacated by
       a mover this step does not count); several claims on one cell: the lowest
       agent index moves (sequential pass).

    Every agent alive at the start earns its species' step reward; dead agents
    earn 0 and their actions are ignored. ``born`` is cleared (births come after,
    in ``pursuit_births``).

    Args:
        actions: integer[N], validated (``pursuit_first_bad_action``).
        pos: int32[N, 2] map cells (y, x), updated.
        team: int8[N]; alive: bool[N], updated.
        energy: float32[N] predator energy, updated (prey: unused).
        grid: int32[H + 2 pad, W + 2 pad] padded agent-index grid, updated.
        pad: width of the wall ring around the map in ``grid`` (>= 1).
        min_attackers: attackers needed to kill a prey in one step (>= 1).
        predator_step_reward, prey_step_reward, attack_penalty, kill_reward,
            dead_penalty, starvation, kill_energy, max_energy: float32 scalars.
        reward: float32[N] out.
        killed: bool[N] out, died this step (killed or starved).
        born: bool[N] out, cleared.
        attack_target: int32[N] out, the prey each predator hit this step, -1 none.
        last_action: int32[N], set to the action of every agent alive at the start.
        attackers: int32[N] scratch (predators that hit each prey).
        dest: int64[N] scratch (flat padded destination of each mover, -1 none).
        deaths: int64[2] out: predators starved, prey killed this step.
    """
    n = actions.shape[0]
    width = grid.shape[1]
    flat = grid.reshape(-1)
    zero = np.float32(0.0)
    # 1. attacks against the state at the start of the step
    for i in prange(n):
        born[i] = False
        a = begin_agent(
            i, actions, alive, reward, last_action, killed, attack_target, attackers, dest
        )
        if a < 0:
            continue
        if team[i] == 0:
            r = predator_step_reward
            if a >= PURSUIT_FIRST_ATTACK:
                r += attack_penalty
                g = attacked_cell(grid, pos, pad, i, a, PURSUIT_FIRST_ATTACK)
                if g >= 0 and team[g] == 1:
                    attack_target[i] = g
        else:
            r = prey_step_reward
        reward[i] = r
    # 2a. attackers per prey (sequential: many predators may share a prey)
    count_hits(attack_target, attackers)
    # 2b. prey deaths; each prey writes only itself and its own cell
    dead_prey = 0
    for i in prange(n):
        if alive[i] and team[i] == 1 and attackers[i] >= min_attackers:
            remove_dead(i, pos, pad, grid, alive, killed, reward, dead_penalty)
            dead_prey += 1
    # 2c. kill rewards and energy, then starvation; each predator writes only itself
    starved = 0
    for i in prange(n):
        if alive[i] and team[i] == 0:
            e = energy[i]
            if reward_kill(i, attack_target, killed, kill_reward, reward):
                e = min(e + kill_energy, max_energy)
            if starvation > zero:
                e -= starvation
                if e <= zero:
                    e = zero
                    remove_dead(i, pos, pad, grid, alive, killed, reward, dead_penalty)
                    starved += 1
            energy[i] = e
    deaths[0] = starved
    deaths[1] = dead_prey
    # 3a. move destinations, checked against the grid after the deaths
    for i in prange(n):
        if alive[i] and FIRST_MOVE <= actions[i] < PURSUIT_FIRST_ATTACK:
            dest[i] = move_destination(grid, pos, pad, i, actions[i])
    # 3b. claims in index order: the first claimant of a cell moves, later ones stay
    for i in range(n):
        claim_move(i, dest[i], pos, pad, flat, width)


@njit(cache=True)
def pursuit_births(
    pos,
    team,
    alive,
    killed,
    born,
    energy,
    last_action,
    grid,
    pad,
    prey_birth,
    predator_birth,
    birth_energy,
    birth_draw,
    cell_draw,
    first_slot,
    end_slot,
    births,
):
    """Births after the moves: one sequential pass in agent-index order.

    A parent is an agent alive before the births (not born this step). A prey
    breeds when ``birth_draw[i] < prey_birth``; a predator when its energy is at
    least ``birth_energy`` and ``birth_draw[i] < predator_birth``. The child takes
    the lowest free slot of the parent's species (a slot whose agent is dead and
    did not die this step) and the ``floor(cell_draw[i] * f)``-th of the parent's
    ``f`` empty neighbouring cells (in move order N E S W NE SE SW NW); with no
    free slot or no empty neighbour nothing happens. A predator parent's energy is
    halved and the child gets the other half; a prey child gets energy 0. Earlier
    parents claim slots and cells first, so the pass is deterministic.

    Args:
        pos: int32[N, 2]; team: int8[N]; alive: bool[N]; killed: bool[N] (this step).
        born: bool[N], set for the children.
        energy: float32[N]; last_action: int32[N] (0 for the children).
        grid: int32 padded grid, updated; pad: its wall ring width.
        prey_birth, predator_birth: per-step birth probabilities; birth_energy: float32.
        birth_draw, cell_draw: float32[N] uniform draws in [0, 1), pre-drawn.
        first_slot, end_slot: int64[2] slot range ``[first, end)`` of each species.
        births: int64[2] out, children born per species.
    """
    n = pos.shape[0]
    width = grid.shape[1]
    flat = grid.reshape(-1)
    births[0] = 0
    births[1] = 0
    free0 = first_slot[0]  # no free slot below these (slots only fill up in the pass)
    free1 = first_slot[1]
    half = np.float32(0.5)
    for i in range(n):
        if not alive[i] or born[i]:
            continue
        t = team[i]
        if t == 0:
            if energy[i] < birth_energy or not birth_draw[i] < predator_birth:
                continue
            s = free0
        else:
            if not birth_draw[i] < prey_birth:
                continue
            s = free1
        while s < end_slot[t] and (alive[s] or killed[s]):
            s += 1
        if t == 0:
            free0 = s
        else:
            free1 = s
        if s >= end_slot[t]:
            continue
        y = pos[i, 0] + pad
        x = pos[i, 1] + pad
        n_free = 0
        for k in range(FIRST_MOVE, FIRST_MOVE + 8):
            if flat[(y + ACTION_DY[k]) * width + x + ACTION_DX[k]] == EMPTY:
                n_free += 1
        if n_free == 0:
            continue
        pick = min(int(cell_draw[i] * n_free), n_free - 1)
        cell = -1
        for k in range(FIRST_MOVE, FIRST_MOVE + 8):
            c = (y + ACTION_DY[k]) * width + x + ACTION_DX[k]
            if flat[c] == EMPTY:
                if pick == 0:
                    cell = c
                    break
                pick -= 1
        flat[cell] = s
        pos[s, 0] = cell // width - pad
        pos[s, 1] = cell % width - pad
        alive[s] = True
        born[s] = True
        last_action[s] = 0
        if t == 0:
            energy[i] = energy[i] * half
            energy[s] = energy[i]
        else:
            energy[s] = 0.0
        births[t] += 1
        if t == 0:
            free0 = s + 1
        else:
            free1 = s + 1


@njit(parallel=True, cache=True)
def pursuit_plane(grid, team, energy_code, one, plane):
    """What any agent sees in each cell of the padded map, in the observation's codes.

    Channels: 0 obstacle (wall), 1 predator, 2 prey, 3 predator energy / max.

    Args:
        grid: int32[Hp, Wp] padded agent-index grid (only living agents are on it).
        team: int8[N]; energy_code: [N] encoded energy fractions; one: the code of 1.0.
        plane: [Hp, Wp, 4] out, in the kernel dtype of the observations.
    """
    for y in prange(grid.shape[0]):
        for x in range(grid.shape[1]):
            g = grid[y, x]
            for k in range(PURSUIT_CHANNELS):
                plane[y, x, k] = 0
            if g == WALL:
                plane[y, x, 0] = one
            elif g >= 0:
                if team[g] == 0:
                    plane[y, x, 1] = one
                    plane[y, x, 3] = energy_code[g]
                else:
                    plane[y, x, 2] = one


@njit(parallel=True, cache=True)
def pursuit_views(plane, pad, pos, alive, row_lo, row_hi, minimap, out):
    """Each agent's view: the plane around it, 0 outside the view circle; writes every value.

    Args:
        plane: [Hp, Wp, 4] (``pursuit_plane``), the kernel dtype of ``out``.
        pad: wall ring width of the plane, >= the view radius.
        pos: int32[N, 2]; alive: bool[N] (dead agents' views are all 0).
        row_lo, row_hi: int32[S] circle spans (``circle_spans``).
        minimap: [S, S, 2] predator and prey densities (read when C == 6).
        out: [N, S, S, C] out, C = 4 or 6 (minimap channels 4 and 5, whole view).
    """
    n = out.shape[0]
    size = out.shape[1]
    channels = out.shape[3]
    corner = pad - size // 2
    for i in prange(n):
        v = out[i]
        if not alive[i]:
            for r in range(size):
                for c in range(size):
                    for k in range(channels):
                        v[r, c, k] = 0
            continue
        y0 = pos[i, 0] + corner
        x0 = pos[i, 1] + corner
        for r in range(size):
            lo = row_lo[r]
            hi = row_hi[r]
            for c in range(size):
                if lo <= c <= hi:
                    for k in range(PURSUIT_CHANNELS):
                        v[r, c, k] = plane[y0 + r, x0 + c, k]
                else:
                    for k in range(PURSUIT_CHANNELS):
                        v[r, c, k] = 0
                if channels > PURSUIT_CHANNELS:
                    v[r, c, 4] = minimap[r, c, 0]
                    v[r, c, 5] = minimap[r, c, 1]


@njit(parallel=True, cache=True)
def pursuit_greedy(view, mask, fallback, out):
    """Greedy predators from their views, one agent per ``prange`` iteration.

    A predator with prey in its 8 neighbouring cells attacks the one with the most
    other predators around it in view (first in attack order on ties), so that
    neighbours converge on one prey. Otherwise it takes the move (or stays) that
    brings it closest to the nearest visible prey (squared distance; first in
    row-major view order on ties), among destinations free in its view. With no
    prey in view it takes ``fallback[i]``.

    Args:
        view: [N, S, S, C] observations (float32, uint8, or float16 bits as uint16).
        mask: bool[N]; agents where it is False are skipped (``out`` untouched).
        fallback: integer[N] actions for predators that see no prey.
        out: int32[N] actions out.
    """
    n = view.shape[0]
    size = view.shape[1]
    rad = size // 2
    for i in prange(n):
        if not mask[i]:
            continue
        v = view[i]
        best = -1
        best_company = -1
        for k in range(8):
            y = rad + ACTION_DY[FIRST_MOVE + k]
            x = rad + ACTION_DX[FIRST_MOVE + k]
            if v[y, x, 2] > 0:
                company = 0
                for j in range(8):
                    yy = y + ACTION_DY[FIRST_MOVE + j]
                    xx = x + ACTION_DX[FIRST_MOVE + j]
                    if yy < 0 or yy >= size or xx < 0 or xx >= size or (yy == rad and xx == rad):
                        continue
                    if v[yy, xx, 1] > 0:
                        company += 1
                if company > best_company:
                    best = k
                    best_company = company
        if best >= 0:
            out[i] = PURSUIT_FIRST_ATTACK + best
            continue
        ty, tx, _ = nearest_in_view(v, 2)
        if ty < 0:
            out[i] = fallback[i]
            continue
        out[i] = move_towards(v, ty, tx, PURSUIT_FIRST_ATTACK, (0, 1, 2))


@njit(parallel=True, cache=True)
def pursuit_flee(view, mask, fallback, out):
    """Fleeing prey from their views, one agent per ``prange`` iteration.

    A prey that sees predators takes the move (or stays) whose destination is
    farthest from the nearest visible predator (squared distance from the
    destination; staying wins ties, then the first move in table order), among
    destinations free in its view. With no predator in view it takes
    ``fallback[i]``. Arguments as in ``pursuit_greedy`` (``fallback``: the actions of
    prey that see no predator).
    """
    n = view.shape[0]
    size = view.shape[1]
    rad = size // 2
    for i in prange(n):
        if not mask[i]:
            continue
        v = view[i]
        seen = False
        for y in range(size):
            for x in range(size):
                if v[y, x, 1] > 0:
                    seen = True
        if not seen:
            out[i] = fallback[i]
            continue
        action = 0
        best_d = -1
        for a in range(0, PURSUIT_PREY_ACTIONS):
            cy = rad + ACTION_DY[a]
            cx = rad + ACTION_DX[a]
            if a > 0 and (v[cy, cx, 0] > 0 or v[cy, cx, 1] > 0 or v[cy, cx, 2] > 0):
                continue
            nearest = 1 << 30
            for y in range(size):
                for x in range(size):
                    if v[y, x, 1] > 0:
                        d = (y - cy) * (y - cy) + (x - cx) * (x - cx)
                        if d < nearest:
                            nearest = d
            if nearest > best_d:
                best_d = nearest
                action = a
        out[i] = action


# ---- end of pursuit kernels ----


# ---- gather (food patches, free-for-all) -----------------------------------------------

# One species, free-for-all: any agent may attack any other. Food is a float32 amount
# per cell of a padded map (same padding as the grid, 0 in the pad and on walls).


@njit(parallel=True, cache=True)
def gather_step(
    actions,
    pos,
    hp,
    alive,
    grid,
    food,
    patch_cells,
    pad,
    max_hp,
    damage,
    hunger,
    eat_rate,
    hp_per_food,
    food_capacity,
    regrow,
    corpse_food,
    step_reward,
    dead_penalty,
    attack_penalty,
    food_reward,
    kill_reward,
    reward,
    killed,
    attack_target,
    last_action,
    eaten,
    hits,
    dest,
    deaths,
):
    """Advance the gather world one step, in place.

    Order within the step (all agents simultaneously):

    1. Attacks, read from the state at the start of the step: an attack costs
       ``attack_penalty``; if the target cell holds an agent (any agent: free-for-all),
       that agent takes ``damage``.
    2. Damage is summed per target; agents with ``hp <= 0`` die (``dead_penalty``),
       leave the grid and drop ``corpse_food`` on their cell (capped at
       ``food_capacity``); every attacker that hit them this step earns ``kill_reward``.
       Agents that die still deliver their own attacks of this step.
    3. Moves of the survivors, as in ``battle_step``: into cells empty after the deaths,
       several claims on one cell -> the lowest agent index moves (sequential pass).
    4. Eating: each survivor takes ``e = min(eat_rate, food)`` from its own cell, earns
       ``food_reward * e`` and gains ``hp_per_food * e`` HP (capped at ``max_hp``).
    5. Hunger: each survivor loses ``hunger`` HP; at ``hp <= 0`` it starves (as in 2,
       with ``dead_penalty`` and corpse food, but no kill reward).
    6. Regrowth: every patch cell below ``food_capacity`` gains ``regrow`` (capped).

    Every agent alive at the start earns ``step_reward``; dead agents earn 0 and their
    actions are ignored. Parallel loops write only their agent's slots and cell (one
    agent per cell) or their own patch cell; hits and move claims are sequential.

    Args:
        actions: integer[N], validated (``first_bad_action``).
        pos: int32[N, 2] map cells (y, x), updated.
        hp: float32[N], updated (0 for the dead).
        alive: bool[N], updated.
        grid: int32[H + 2 pad, W + 2 pad] padded agent-index grid, updated.
        food: float32[H + 2 pad, W + 2 pad] padded food map, updated.
        patch_cells: int64[M] distinct flat padded cells that regrow.
        pad: width of the wall ring around the map in ``grid`` and ``food`` (>= 2).
        max_hp, damage, hunger, eat_rate, hp_per_food, food_capacity, regrow,
            corpse_food: float32 scalars (rules).
        step_reward, dead_penalty, attack_penalty, food_reward, kill_reward: float32.
        reward: float32[N] out.
        killed: bool[N] out, died this step (hit or starved).
        attack_target: int32[N] out, the agent each agent hit this step, -1 none.
        last_action: int32[N], set to the action of every agent alive at the start.
        eaten: float32[N] out, food each agent ate this step.
        hits: int32[N] scratch (hits taken).
        dest: int64[N] scratch (flat padded destination of each mover, -1 none).
        deaths: int64[2] out, agents killed by hits and agents starved this step.
    """
    n = actions.shape[0]
    width = grid.shape[1]
    flat = grid.reshape(-1)
    flat_food = food.reshape(-1)
    # 1. attacks against the state at the start of the step
    for i in prange(n):
        eaten[i] = 0.0
        a = begin_agent(i, actions, alive, reward, last_action, killed, attack_target, hits, dest)
        if a < 0:
            continue
        r = step_reward
        if a >= FIRST_ATTACK:
            r += attack_penalty
            g = attacked_cell(grid, pos, pad, i, a, FIRST_ATTACK)
            if g >= 0:
                attack_target[i] = g
        reward[i] = r
    # 2a. sum the hits per target (sequential: many attackers may share a target)
    count_hits(attack_target, hits)
    # 2b. damage and deaths; each agent writes only itself and its own cell
    slain = 0
    for i in prange(n):
        if alive[i] and hits[i] > 0:
            h = hp_after_hits(hp, hits, damage, i)
            if h <= 0:
                hp[i] = 0.0
                c = remove_dead(i, pos, pad, grid, alive, killed, reward, dead_penalty)
                if corpse_food > 0:
                    flat_food[c] = min(flat_food[c] + corpse_food, food_capacity)
                slain += 1
            else:
                hp[i] = h
    deaths[0] = slain
    # 2c. kill rewards to every attacker that hit an agent that died of the hits
    for i in prange(n):
        reward_kill(i, attack_target, killed, kill_reward, reward)
    # 3a. move destinations, checked against the grid after the deaths
    for i in prange(n):
        if alive[i] and FIRST_MOVE <= actions[i] < FIRST_ATTACK:
            dest[i] = move_destination(grid, pos, pad, i, actions[i])
    # 3b. claims in index order: the first claimant of a cell moves, later ones stay
    for i in range(n):
        claim_move(i, dest[i], pos, pad, flat, width)
    # 4-5. eating from the own cell, then hunger; one agent per cell
    starved = 0
    for i in prange(n):
        if not alive[i]:
            continue
        c = (pos[i, 0] + pad) * width + pos[i, 1] + pad
        h = hp[i]
        e = min(eat_rate, flat_food[c])
        if e > 0:
            flat_food[c] -= e
            eaten[i] = e
            h = min(h + e * hp_per_food, max_hp)
            reward[i] += food_reward * e
        h -= hunger
        if h <= 0:
            hp[i] = 0.0
            remove_dead(i, pos, pad, grid, alive, killed, reward, dead_penalty)
            if corpse_food > 0:
                flat_food[c] = min(flat_food[c] + corpse_food, food_capacity)
            starved += 1
        else:
            hp[i] = h
    deaths[1] = starved
    # 6. regrowth of the patch cells (distinct cells)
    if regrow > 0:
        for k in prange(patch_cells.shape[0]):
            c = patch_cells[k]
            f = flat_food[c]
            if f < food_capacity:
                flat_food[c] = min(f + regrow, food_capacity)


@njit(parallel=True, cache=True)
def gather_views(
    grid,
    food_code,
    hp_code,
    pos,
    alive,
    killed,
    pad,
    row_lo,
    row_hi,
    one,
    minimap,
    index,
    full,
    out,
):
    """Each agent's view of the map around it, written into ``out``.

    Channels: 0 obstacle (wall or outside the map), 1 other-agent presence, 2 other-agent
    HP / max, 3 food / capacity, 4 own HP / max (the same value on every cell of the
    circle); with ``C == 7`` also 5 agent and 6 food density of the whole map
    (``minimap``). Cells outside the view circle are 0 in channels 0-4; the agent's own
    cell shows no agent in channels 1-2 (the view centre is the agent itself).

    Args:
        grid: int32[Hp, Wp] padded agent-index grid.
        food_code: [Hp, Wp] padded food fractions, encoded in the kernel dtype of ``out``.
        hp_code: [N] encoded HP fractions.
        pos: int32[N, 2]; alive: bool[N].
        killed: bool[N]; rows of agents that died this step are zeroed.
        pad: wall ring width of the padded maps, >= the view radius.
        row_lo, row_hi: int32[S] circle spans (``circle_spans``).
        one: the code of 1.0.
        minimap: [S, S, 2] codes (read when ``C == 7``).
        index: int64[M], the agent whose view goes into row ``j`` of ``out``.
        full: write every value (any buffer); else write only the cells inside the
            circle, the minimap channels and the rows of the newly dead, trusting the
            rest of ``out`` to hold the zeros written before.
        out: [M, S, S, C] output (float32, uint8, or float16 bits as uint16).
    """
    m = index.shape[0]
    size = row_lo.shape[0]
    channels = out.shape[3]
    corner = pad - size // 2  # padded offset of a view's top-left cell
    for row in prange(m):
        i = index[row]
        dst = out[row]
        if not alive[i]:
            if full or killed[i]:
                for r in range(size):
                    for c in range(size):
                        for k in range(channels):
                            dst[r, c, k] = 0
            continue
        y0 = pos[i, 0] + corner
        x0 = pos[i, 1] + corner
        own = hp_code[i]
        for r in range(size):
            lo = row_lo[r]
            hi = row_hi[r]
            grow = grid[y0 + r]
            frow = food_code[y0 + r]
            for c in range(size):
                cell = dst[r, c]
                if lo <= c <= hi:
                    g = grow[x0 + c]
                    cell[0] = one if g == WALL else 0
                    if g >= 0 and g != i:
                        cell[1] = one
                        cell[2] = hp_code[g]
                    else:
                        cell[1] = 0
                        cell[2] = 0
                    cell[3] = frow[x0 + c]
                    cell[4] = own
                elif full:
                    for k in range(5):
                        cell[k] = 0
                if channels == 7:
                    cell[5] = minimap[r, c, 0]
                    cell[6] = minimap[r, c, 1]


@njit(parallel=True, cache=True)
def paint_food(food, food_capacity, full, image):
    """Blend every cell holding food towards ``full`` by its share of ``food_capacity``.

    Args:
        food: float32[H, W] food map.
        food_capacity: float, the amount painted as ``full``.
        full: uint8[3] colour of a full cell.
        image: uint8[H, W, 3], painted in place over its ground colours.
    """
    for y in prange(food.shape[0]):
        for x in range(food.shape[1]):
            f = min(food[y, x] / food_capacity, np.float32(1.0))
            if f > 0:
                for k in range(3):
                    base = np.float32(image[y, x, k])
                    image[y, x, k] = np.uint8(base + (np.float32(full[k]) - base) * f)


@njit(parallel=True, cache=True)
def forage_actions(view, mask, fallback, scale, attack, hungry, out):
    """Forage (and, with ``attack``, greedy) gather policy from the views alone.

    Forage: the agent scores each free cell of its view holding food by
    ``food / (1 + distance)`` (its own cell: ``food``), and stays on its cell when that
    scores best (ties: stay, then first in row-major view order); otherwise it takes
    the move whose destination, free in its view, is closest to the best cell (ties:
    lowest action). With no food in view it takes ``fallback[i]``. Never attacks.

    Greedy (``attack`` True) first attacks the weakest adjacent agent (first in attack
    order on ties) among those weaker than itself, or among all adjacent agents when
    it is hungry (own HP below ``hungry`` and no food on its cell); else it forages.

    Args:
        view: [N, S, S, C] observations, float32 or uint8 (codes x ``scale`` = values).
        mask: bool[N]; agents where it is False are skipped (``out`` untouched).
        fallback: integer[N] actions of agents that see no food.
        scale: value of one code step (1.0 for float32, 1 / 255 for uint8).
        attack: use the greedy rule.
        hungry: own HP fraction below which a greedy agent attacks any neighbour.
        out: int32[N] actions out.
    """
    n = view.shape[0]
    size = view.shape[1]
    rad = size // 2
    for i in prange(n):
        if not mask[i]:
            continue
        v = view[i]
        if attack:
            own = v[rad, rad, 4] * scale
            starving = own < hungry and v[rad, rad, 3] <= 0
            best = -1
            best_hp = own
            for k in range(8):
                y = rad + ACTION_DY[FIRST_MOVE + k]
                x = rad + ACTION_DX[FIRST_MOVE + k]
                if v[y, x, 1] > 0:
                    h = v[y, x, 2] * scale
                    if (h < own or starving) and (best < 0 or h < best_hp):
                        best = k
                        best_hp = h
            if best >= 0:
                out[i] = FIRST_ATTACK + best
                continue
        ty = rad
        tx = rad
        best_score = v[rad, rad, 3] * scale
        for y in range(size):
            for x in range(size):
                if v[y, x, 3] > 0 and v[y, x, 1] == 0 and (y != rad or x != rad):
                    dist = np.sqrt(np.float64((y - rad) * (y - rad) + (x - rad) * (x - rad)))
                    score = v[y, x, 3] * scale / (1.0 + dist)
                    if score > best_score:
                        best_score = score
                        ty = y
                        tx = x
        if best_score <= 0:
            out[i] = fallback[i]
            continue
        out[i] = move_towards(v, ty, tx, FIRST_ATTACK, (0, 1))


# ---- end of gather kernels ----
