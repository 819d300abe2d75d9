"""Numba kernels of the MAgent2 engine (:mod:`colonylab.envs.magent._engine`).

Every kernel takes only arrays and scalars. The map is ``occ: int32[H, W]`` indexed
``[y, x]``: an agent id, :data:`EMPTY` or :data:`WALL`. Agents are rows of flat
arrays over every id (all groups, ids in group order): ``group``, ``pos`` (x, y; the
anchor cell, the top-left of a 2x2 body), ``hp`` (float32), ``dead``, ``listed`` (not
yet removed by ``clear_dead``), ``next_reward`` (the reward being collected this step,
float32), ``last_op`` / ``op_obj`` (what the agent's attack did: :data:`OP_ATTACK` or
:data:`OP_KILL` on agent ``op_obj``). Per-group tables (one row per group) hold the
agent types. The phases follow MAgent2's ``GridWorld::step``: attacks one by one in a
shuffled order, then step recovery ("starve"), then moves one by one, then the reward
rules. float32 arithmetic is done in the same order as MAgent2's C++ so that HP and
rewards agree bit for bit.

The sequential phases (attacks, moves) run on one thread by their nature; the
observation writer and the recovery run as parallel loops over agents, each agent
writing only its own rows, so the results do not depend on the thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

EMPTY = -1
WALL = -2
OP_NULL = 0
OP_ATTACK = 1
OP_KILL = 2
RULE_ATTACK = 0
"""Reward rule ``Event(a, "attack", b)``: the attacker (``a``) and the target (``b``)."""
RULE_KILL = 1
"""Reward rule ``Event(a, "kill", b)``."""
RULE_PAIR = 2
"""Reward rule ``Event(a, "attack", c) & Event(b, "attack", c)`` (two of one group on one
target): each ordered pair of attackers pays ``value`` to both."""

_KERNEL = dict(cache=True, nogil=True, error_model="numpy")


@njit(**_KERNEL)
def _area_free(occ, x, y, size, self_id):
    """MAgent2's ``Map::is_blank_area``: the ``size`` x ``size`` square at ``(x, y)``
    lies inside the map (strictly before the last row / column) and holds only empty
    cells or ``self_id``."""
    h, w = occ.shape
    if x < 0 or y < 0 or x + size >= w or y + size >= h:
        return False
    for dy in range(size):
        for dx in range(size):
            o = occ[y + dy, x + dx]
            if o == WALL or (o >= 0 and o != self_id):
                return False
    return True


@njit(**_KERNEL)
def _fill(occ, x, y, size, value):
    for dy in range(size):
        for dx in range(size):
            occ[y + dy, x + dx] = value


@njit(**_KERNEL)
def place_agents(occ, pos, size_of, group, ids):
    """Put agents ``ids`` on the map at ``pos``; returns the first id whose square is
    not free (-1 if all were placed; those before it stay placed)."""
    for k in range(ids.shape[0]):
        i = ids[k]
        s = size_of[group[i]]
        if not _area_free(occ, pos[i, 0], pos[i, 1], s, -3):
            return i
        _fill(occ, pos[i, 0], pos[i, 1], s, i)
    return -1


@njit(**_KERNEL)
def splitmix_shuffle(order, seed):
    """MAgent2's shuffle of the attack buffer (``j = rand % (i + 1)``, swap) with a
    SplitMix64 stream seeded by ``seed``: a uniform permutation, deterministic."""
    state = np.uint64(seed)
    for i in range(order.shape[0]):
        state += np.uint64(0x9E3779B97F4A7C15)
        z = state
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        j = np.int64(z % np.uint64(i + 1))
        t = order[i]
        order[i] = order[j]
        order[j] = t


@njit(**_KERNEL)
def resolve_attacks(
    att_agent,
    att_index,
    occ,
    group,
    pos,
    hp,
    dead,
    next_reward,
    last_op,
    op_obj,
    size_of,
    att_dx,
    att_dy,
    hp_max,
    damage,
    kill_supply,
    kill_reward,
    dead_penalty,
    attack_penalty,
    attack_in_group,
    dead_count,
):
    """Attacks one by one in the given (shuffled) order, as ``GridWorld::step``: a dead
    attacker does nothing; an attack on an empty cell, a wall, off the map or (without
    ``attack_in_group``) on its own group costs only ``attack_penalty``; a hit takes
    ``damage`` HP and a target below zero HP dies at once (leaves the map, its reward
    becomes its ``dead_penalty``); the killing blow earns the victim's ``kill_reward``
    and ``kill_supply`` HP and is recorded as a kill, any other hit as an attack."""
    h, w = occ.shape
    for k in range(att_agent.shape[0]):
        a = att_agent[k]
        if dead[a]:
            continue
        g = group[a]
        off = size_of[g] // 2
        tx = pos[a, 0] + off + att_dx[g, att_index[k]]
        ty = pos[a, 1] + off + att_dy[g, att_index[k]]
        if tx < 0 or tx >= w or ty < 0 or ty >= h:
            next_reward[a] += attack_penalty[g]
            continue
        o = occ[ty, tx]
        if o < 0 or (not attack_in_group[g] and group[o] == g):
            next_reward[a] += attack_penalty[g]
            continue
        go = group[o]
        gain = np.float32(0.0)
        hp[o] -= damage[g]
        if hp[o] < np.float32(0.0):
            dead[o] = True
            dead_count[go] += 1
            next_reward[o] = dead_penalty[go]
            last_op[a] = OP_KILL
            op_obj[a] = o
            _fill(occ, pos[o, 0], pos[o, 1], size_of[go], EMPTY)
            hp[a] = min(hp_max[g], hp[a] + kill_supply[go])
            gain = kill_reward[go]
        else:
            last_op[a] = OP_ATTACK
            op_obj[a] = o
        next_reward[a] += gain + attack_penalty[g]


@njit(parallel=True, **_KERNEL)
def recover(
    ids, occ, group, pos, hp, dead, next_reward, size_of, hp_max, step_recover, dead_penalty
):
    """MAgent2's "starve" phase for the listed agents ``ids``: a positive
    ``step_recover`` heals (up to ``hp``), otherwise it is taken as damage and may kill
    (the agent leaves the map, its reward becomes its ``dead_penalty``)."""
    for k in prange(ids.shape[0]):
        i = ids[k]
        if dead[i]:
            continue
        g = group[i]
        rec = step_recover[g]
        if rec > np.float32(0.0):
            hp[i] = min(hp_max[g], hp[i] + rec)
        else:
            hp[i] -= -rec
            if hp[i] < np.float32(0.0):
                dead[i] = True
                next_reward[i] = dead_penalty[g]
                _fill(occ, pos[i, 0], pos[i, 1], size_of[g], EMPTY)


@njit(**_KERNEL)
def large_map_order(movers, pos, width, buffers):
    """MAgent2's move order on a map of more than 99 x 99 cells: the map is cut into
    ``buffers`` vertical stripes; movers well inside a stripe move first, stripe by
    stripe, then those within 4 columns of a stripe edge; each in set_action order."""
    band = (width + buffers - 1) // buffers
    key = np.empty(movers.shape[0], dtype=np.int64)
    counts = np.zeros(buffers + 2, dtype=np.int64)
    for k in range(movers.shape[0]):
        x = pos[movers[k], 0]
        r = x % band
        if r < 4 or r > band - 4:
            key[k] = buffers
        else:
            key[k] = x // band
        counts[key[k] + 1] += 1
    for b in range(buffers + 1):
        counts[b + 1] += counts[b]
    out = np.empty_like(movers)
    for k in range(movers.shape[0]):
        out[counts[key[k]]] = movers[k]
        counts[key[k]] += 1
    return out


@njit(**_KERNEL)
def resolve_moves(movers, move_index, occ, group, pos, dead, size_of, move_dx, move_dy):
    """Moves one by one in order (``Map::do_move``): a living agent takes its step when
    the square it would cover is free of walls and other agents (a cell freed by an
    earlier mover can be entered), else it stays."""
    for k in range(movers.shape[0]):
        i = movers[k]
        if dead[i]:
            continue
        g = group[i]
        s = size_of[g]
        nx = pos[i, 0] + move_dx[g, move_index[k]]
        ny = pos[i, 1] + move_dy[g, move_index[k]]
        if _area_free(occ, nx, ny, s, i):
            _fill(occ, pos[i, 0], pos[i, 1], s, EMPTY)
            _fill(occ, nx, ny, s, i)
            pos[i, 0] = nx
            pos[i, 1] = ny


@njit(**_KERNEL)
def apply_rules(
    ids, group, last_op, op_obj, next_reward, kinds, g_sub, g_obj, v_sub, v_obj, obj_paid, scratch
):
    """MAgent2's reward rules in their order over the listed agents ``ids`` (the dead of
    this step included, as in ``GridWorld::calc_reward``). ``scratch``: int32[N] zeros
    (left zeroed)."""
    for r in range(kinds.shape[0]):
        kind = kinds[r]
        if kind in (RULE_ATTACK, RULE_KILL):
            op = OP_ATTACK if kind == RULE_ATTACK else OP_KILL
            for k in range(ids.shape[0]):
                a = ids[k]
                if group[a] != g_sub[r] or last_op[a] != op:
                    continue
                o = op_obj[a]
                if o < 0 or group[o] != g_obj[r]:
                    continue
                next_reward[a] += v_sub[r]
                if obj_paid[r]:
                    next_reward[o] += v_obj[r]
        else:  # two attackers of group g_sub on one target of group g_obj
            for k in range(ids.shape[0]):
                a = ids[k]
                if group[a] == g_sub[r] and last_op[a] == OP_ATTACK:
                    o = op_obj[a]
                    if o >= 0 and group[o] == g_obj[r]:
                        scratch[o] += 1
            for k in range(ids.shape[0]):
                a = ids[k]
                if group[a] == g_sub[r] and last_op[a] == OP_ATTACK:
                    o = op_obj[a]
                    if o >= 0 and group[o] == g_obj[r]:
                        # each ordered pair (a, b) and (b, a) pays v to both
                        for _ in range(2 * (scratch[o] - 1)):
                            next_reward[a] += v_sub[r]
            for k in range(ids.shape[0]):
                a = ids[k]
                if group[a] == g_sub[r] and last_op[a] == OP_ATTACK:
                    o = op_obj[a]
                    if o >= 0:
                        scratch[o] = 0


@njit(**_KERNEL)
def minimap_planes(ids, group, pos, n_groups, view_h, view_w, scale_h, scale_w):
    """float32[G, view_h, view_w]: each group's listed agents (dead of this step
    included) counted by anchor cell in blocks of ``scale_h`` x ``scale_w``, divided by
    the group's listed count (0/0 gives NaN, as MAgent2)."""
    planes = np.zeros((n_groups, view_h, view_w), dtype=np.float32)
    total = np.zeros(n_groups, dtype=np.int64)
    for k in range(ids.shape[0]):
        i = ids[k]
        g = group[i]
        planes[g, pos[i, 1] // scale_h, pos[i, 0] // scale_w] += np.float32(1.0)
        total[g] += 1
    for g in range(n_groups):
        t = np.float32(total[g])
        for y in range(view_h):
            for x in range(view_w):
                planes[g, y, x] = planes[g, y, x] / t
    return planes


@njit(parallel=True, **_KERNEL)
def build_cell_maps(occ, group, hp, hp_max, code, hp_frac):
    """Per cell what a view shows, once per step for every observer: ``code`` uint8
    (0 empty, 1 wall, 2 + g an agent of group g) and ``hp_frac`` float32 (its HP / max
    HP, else 0)."""
    h, w = occ.shape
    for y in prange(h):
        for x in range(w):
            o = occ[y, x]
            if o == EMPTY:
                code[y, x] = 0
                hp_frac[y, x] = 0.0
            elif o == WALL:
                code[y, x] = 1
                hp_frac[y, x] = 0.0
            else:
                g = group[o]
                code[y, x] = 2 + g
                hp_frac[y, x] = hp[o] / hp_max[g]


@njit(parallel=True, **_KERNEL)
def write_observations(
    ids,
    code,
    hp_frac,
    group,
    pos,
    last_action,
    last_reward,
    size_of,
    lut_channel,
    lut_value,
    row_lo,
    row_hi,
    view_x1,
    view_y1,
    minimap,
    minimap_channel,
    scale_h,
    scale_w,
    embedding_size,
    n_actions,
    with_position,
    view,
    feature,
):
    """One group's observations, MAgent2's ``get_observation``: ``view[k]`` float32[VH,
    VW, C] of agent ``ids[k]`` (rows = y, columns = x; inside the view circle, row ``r``
    spanning columns ``[row_lo[r], row_hi[r])``, from the cell maps of
    :func:`build_cell_maps`: channel 0 a wall, channel ``lut_channel[2 + g]`` "an agent
    of group g here" and the next one its HP / max HP; cells off the map stay 0), the minimap planes (when ``minimap`` has groups) with the
    agent's own block + 1; ``feature[k]``: the id's low bits, the last action one-hot,
    the last reward, and (with ``with_position``) x / W, y / H.
    (Each row is cleared whole first: a sequential memset is cheaper than clearing
    only the cells written last time, which are scattered over cold cache lines.)"""
    h, w = code.shape
    vh = row_lo.shape[0]
    vw = view.shape[2]
    nc = view.shape[3]
    n_groups = minimap.shape[0]
    flat = view.reshape(view.shape[0], vh * vw * nc)
    for k in prange(ids.shape[0]):
        i = ids[k]
        g = group[i]
        out = flat[k]
        out[:] = 0.0
        off = size_of[g] // 2
        top = pos[i, 1] + off + view_y1
        left = pos[i, 0] + off + view_x1
        for r in range(vh):
            y = top + r
            if y < 0 or y >= h:
                continue
            lo = max(row_lo[r], -left)
            hi = min(row_hi[r], w - left)
            codes = code[y]
            fracs = hp_frac[y]
            for c in range(lo, hi):
                # branch-free: an empty cell writes 0 into channels 0 and 1 (already 0),
                # a wall 1 into channel 0, an agent 1 and its HP fraction into its pair
                k2 = codes[left + c]
                base = (r * vw + c) * nc + lut_channel[k2]
                out[base] = lut_value[k2]
                out[base + 1] = fracs[left + c]
        if n_groups > 0:
            sy = pos[i, 1] // scale_h
            sx = pos[i, 0] // scale_w
            for j in range(n_groups):
                ch = minimap_channel[j]
                for r in range(vh):
                    for c in range(vw):
                        out[(r * vw + c) * nc + ch] = minimap[j, r, c]
                out[(sy * vw + sx) * nc + ch] += np.float32(1.0)
        f = feature[k]
        f[:] = 0.0
        t = i
        for b in range(embedding_size):
            f[b] = np.float32(t & 1)
            t >>= 1
        f[embedding_size + last_action[i]] = 1.0
        f[embedding_size + n_actions] = last_reward[i]
        if with_position:
            f[embedding_size + n_actions + 1] = np.float32(pos[i, 0]) / np.float32(w)
            f[embedding_size + n_actions + 2] = np.float32(pos[i, 1]) / np.float32(h)


@njit(**_KERNEL)
def greedy_actions(
    ids,
    occ,
    group,
    pos,
    size_of,
    enemy_of,
    move_dx,
    move_dy,
    n_moves,
    att_dx,
    att_dy,
    n_att,
    radius,
    target_x,
    target_y,
    noise,
    out,
):
    """A scripted "greedy" policy in MAgent2's action numbering: attack an enemy in
    attack range (the first in action order), else take the move onto a free square
    that brings the agent closest to the nearest enemy within ``radius`` (Chebyshev
    window), else to the enemies' centre ``(target_x[g], target_y[g])``; ties by
    ``noise``. ``out[k]`` is the
    action of agent ``ids[k]``."""
    h, w = occ.shape
    for k in range(ids.shape[0]):
        i = ids[k]
        g = group[i]
        off = size_of[g] // 2
        cx = pos[i, 0] + off
        cy = pos[i, 1] + off
        done = False
        for a in range(n_att[g]):
            tx = cx + att_dx[g, a]
            ty = cy + att_dy[g, a]
            if 0 <= tx < w and 0 <= ty < h:
                o = occ[ty, tx]
                if o >= 0 and enemy_of[g, group[o]]:
                    out[k] = n_moves[g] + a
                    done = True
                    break
        if done:
            continue
        best_d = 1 << 30
        gx = target_x[g]
        gy = target_y[g]
        for dy in range(-radius, radius + 1):
            y = cy + dy
            if y < 0 or y >= h:
                continue
            for dx in range(-radius, radius + 1):
                x = cx + dx
                if x < 0 or x >= w:
                    continue
                o = occ[y, x]
                if o >= 0 and enemy_of[g, group[o]]:
                    d = dx * dx + dy * dy
                    if d < best_d:
                        best_d = d
                        gx = x
                        gy = y
        best = 1 << 30
        choice = 0
        for m in range(n_moves[g]):
            dxm = move_dx[g, m]
            dym = move_dy[g, m]
            if (dxm != 0 or dym != 0) and not _area_free(
                occ, pos[i, 0] + dxm, pos[i, 1] + dym, size_of[g], i
            ):
                continue  # a taken square: the move would be wasted
            nx = cx + dxm
            ny = cy + dym
            d = (nx - gx) * (nx - gx) + (ny - gy) * (ny - gy)
            d = d * 64 + (noise[k] + m * 7) % 64
            if d < best:
                best = d
                choice = m
        out[k] = choice
