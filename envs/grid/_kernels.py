"""Numba kernels of the MAgent-class grid worlds (battle).

Every kernel takes arrays and scalars only and writes into preallocated outputs;
dtypes and cell codes come from the constants below. Parallel loops (``prange``)
write only their own agent's slots or the agent's own cell, and every step that
has to resolve a conflict (several attackers on one target, several movers into
one cell) runs as a sequential pass in agent-index order, so results never depend
on the thread count. Each kernel has a NumPy reference in ``tests/envs/test_battle.py``
and runs under ``NUMBA_DISABLE_JIT=1`` there too.

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
        killed[i] = False
        attack_target[i] = -1
        hits[i] = 0
        dest[i] = -1
        vacated[i] = -1
        if not alive[i]:
            reward[i] = 0.0
            continue
        a = actions[i]
        last_action[i] = a
        r = step_reward
        if a >= FIRST_ATTACK:
            r += attack_penalty
            g = grid[pos[i, 0] + pad + ACTION_DY[a], pos[i, 1] + pad + ACTION_DX[a]]
            if g >= 0 and team[g] != team[i]:
                attack_target[i] = g
                r += hit_reward
        reward[i] = r
    # 2a. sum the hits per target (sequential: many attackers may share a target)
    for i in range(n):
        t = attack_target[i]
        if t >= 0:
            hits[t] += 1
    # 2b. damage, deaths and recovery; each agent writes only itself and its own cell
    dead0 = 0
    dead1 = 0
    for i in prange(n):
        if alive[i] and hits[i] > 0:
            h = hp[i] - np.float32(hits[i]) * damage
            if h <= 0:
                hp[i] = 0.0
                alive[i] = False
                killed[i] = True
                reward[i] += dead_penalty
                grid[pos[i, 0] + pad, pos[i, 1] + pad] = EMPTY
                vacated[i] = (pos[i, 0] + pad) * width + pos[i, 1] + pad
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
        t = attack_target[i]
        if t >= 0 and killed[t]:
            reward[i] += kill_reward
    # 3a. move destinations, checked against the grid after the deaths
    for i in prange(n):
        if alive[i]:
            a = actions[i]
            if FIRST_MOVE <= a < FIRST_ATTACK:
                d = (pos[i, 0] + pad + ACTION_DY[a]) * width + pos[i, 1] + pad + ACTION_DX[a]
                if flat[d] == EMPTY:
                    dest[i] = d
    # 3b. claims in index order: the first claimant of a cell moves, later ones stay
    for i in range(n):
        d = dest[i]
        if d >= 0 and flat[d] == EMPTY:
            old = (pos[i, 0] + pad) * width + pos[i, 1] + pad
            flat[old] = EMPTY
            vacated[i] = old
            flat[d] = i
            pos[i, 0] = d // width - pad
            pos[i, 1] = d % width - pad


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


@njit(parallel=True, cache=True)
def greedy_actions(view, mask, fallback, out):
    """Greedy battle policy from the views alone, one agent per ``prange`` iteration.

    An agent with an enemy in one of its 8 neighbouring cells attacks the weakest
    of them (first in attack order on ties). Otherwise it takes the move (or stays)
    that brings it closest to the nearest visible enemy (nearest by squared
    distance, first in row-major view order on ties), among destinations that are
    free in its view. With no enemy in view it takes ``fallback[i]``.

    Args:
        view: [N, S, S, C] observations (float32, uint8, or float16 bits as uint16:
            presence is ``> 0`` and HP codes order like the values in all three).
        mask: bool[N]; agents where it is False are skipped (``out`` untouched).
        fallback: integer[N] actions for agents that see no enemy.
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
        ty = -1
        tx = -1
        best_d = 1 << 30
        for y in range(size):
            for x in range(size):
                if v[y, x, 3] > 0:
                    d = (y - rad) * (y - rad) + (x - rad) * (x - rad)
                    if d < best_d:
                        best_d = d
                        ty = y
                        tx = x
        if ty < 0:
            out[i] = fallback[i]
            continue
        action = 0
        for a in range(FIRST_MOVE, FIRST_ATTACK):
            y = rad + ACTION_DY[a]
            x = rad + ACTION_DX[a]
            if v[y, x, 0] > 0 or v[y, x, 1] > 0 or v[y, x, 3] > 0:
                continue
            d = (ty - y) * (ty - y) + (tx - x) * (tx - x)
            if d < best_d:
                best_d = d
                action = a
        out[i] = action


# ---- pursuit (predators and prey) ------------------------------------------------------

# ---- end of pursuit kernels ----


# ---- gather (food patches, free-for-all) -----------------------------------------------

# ---- end of gather kernels ----
