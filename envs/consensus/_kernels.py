"""Numba kernels of the consensus worlds (density classification, flocks).

Every kernel takes arrays and scalars only and writes into preallocated outputs; dtypes
come from the constants below. Each has a NumPy reference in the tests.

Density classification (bit-parallel). The batch of starts is packed 64 to a word:
``state[c, w]`` holds cell ``c`` of starts ``64 w .. 64 w + 63`` (bit ``b`` = start
``64 w + b``). Starts never interact, so every block of words runs all its steps on its
own thread with no synchronisation (deterministic). A rule table of ``K`` input bits is
evaluated on 64 starts at once as a binary multiplexer tree: the ``2**K`` table entries
are the leaves (all-zero or all-one words), the least significant neighbour selects at
the bottom level, the most significant at the root -- ``2**K - 1`` word-wide muxes per
cell and word, whatever the rule.

Flocks. Particles live in a periodic ``L x L`` box cut into ``M x M`` cells of side
``>= r``; a counting sort orders the particles by cell (sequential, stable: the order
is deterministic), then every particle scans the 3 x 3 cells around its own in
parallel, writing only its own outputs.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

WORD_DTYPE = np.uint64  # 64 starts per word
CELL_DTYPE = np.uint8  # unpacked cells: 0 / 1
INDEX_DTYPE = np.int32  # neighbour tables, particle indices
REAL_DTYPE = np.float64  # particle positions and headings

BLOCK_WORDS = 32
"""Most words (x 64 starts) one thread steps together: wide for SIMD, small for L1/L2
(fewer when there are too few words to keep every thread busy)."""


@njit(parallel=True, cache=True)
def table_run_packed(state, neighbours, leaf, flip, steps, block):
    """Advance packed starts ``steps`` steps under one rule table, in place.

    Args:
        state: uint64[C, W] packed cells (see the module docstring); updated in place.
        neighbours: int32[C, K] the cells read by cell ``c``, most significant first
            (the table index is ``sum(bit[neighbours[c, j]] << (K - 1 - j))``).
        leaf: uint64[2**(K-1)] the word of table entry ``2 k`` (all zeros or all ones).
        flip: uint64[2**(K-1)] ``leaf[k] ^ word(table[2 k + 1])``.
        steps: number of synchronous updates.
        block: words per thread block.
    """
    n_cells, n_words = state.shape
    k_bits = neighbours.shape[1]
    half = leaf.shape[0]
    n_blocks = (n_words + block - 1) // block
    for bi in prange(n_blocks):
        w0 = bi * block
        w1 = min(n_words, w0 + block)
        bw = w1 - w0
        a = np.empty((n_cells, bw), dtype=state.dtype)
        b = np.empty((n_cells, bw), dtype=state.dtype)
        v = np.empty((half, bw), dtype=state.dtype)
        for c in range(n_cells):
            for w in range(bw):
                a[c, w] = state[c, w0 + w]
        for _ in range(steps):
            for c in range(n_cells):
                # the three lowest levels fused (8 table entries per group, in registers)
                s0 = a[neighbours[c, k_bits - 1]]
                s1 = a[neighbours[c, k_bits - 2]]
                s2 = a[neighbours[c, k_bits - 3]]
                for g in range(half // 4):
                    l0 = leaf[4 * g]
                    l1 = leaf[4 * g + 1]
                    l2 = leaf[4 * g + 2]
                    l3 = leaf[4 * g + 3]
                    f0 = flip[4 * g]
                    f1 = flip[4 * g + 1]
                    f2 = flip[4 * g + 2]
                    f3 = flip[4 * g + 3]
                    for w in range(bw):
                        x0 = l0 ^ (f0 & s0[w])
                        x1 = l1 ^ (f1 & s0[w])
                        x2 = l2 ^ (f2 & s0[w])
                        x3 = l3 ^ (f3 & s0[w])
                        y0 = x0 ^ ((x0 ^ x1) & s1[w])
                        y1 = x2 ^ ((x2 ^ x3) & s1[w])
                        v[g, w] = y0 ^ ((y0 ^ y1) & s2[w])
                n = half // 4
                for level in range(k_bits - 4, -1, -1):
                    sel = a[neighbours[c, level]]
                    n //= 2
                    for k in range(n):
                        for w in range(bw):
                            x0 = v[2 * k, w]
                            v[k, w] = x0 ^ ((x0 ^ v[2 * k + 1, w]) & sel[w])
                for w in range(bw):
                    b[c, w] = v[0, w]
            a, b = b, a
        for c in range(n_cells):
            for w in range(bw):
                state[c, w0 + w] = a[c, w]


@njit(parallel=True, cache=True)
def table_step_bytes(src, dst, neighbours, table):
    """One step of unpacked starts (the byte kernel; tests and tiny batches).

    Args:
        src: uint8[B, C] cells; dst: uint8[B, C] output (must not alias ``src``).
        neighbours: int32[C, K] as in :func:`table_run_packed`; table: uint8[2**K].
    """
    n_starts, n_cells = src.shape
    k_bits = neighbours.shape[1]
    for s in prange(n_starts):
        for c in range(n_cells):
            index = 0
            for j in range(k_bits):
                index = (index << 1) | src[s, neighbours[c, j]]
            dst[s, c] = table[index]


@njit(cache=True)
def all_equal_words(state, ones, zeros):
    """Per word: which starts are all ones (``ones``) / all zeros (``zeros``), uint64[W]."""
    n_cells, n_words = state.shape
    for w in range(n_words):
        all_one = ~np.uint64(0)
        any_one = np.uint64(0)
        for c in range(n_cells):
            all_one &= state[c, w]
            any_one |= state[c, w]
        ones[w] = all_one
        zeros[w] = ~any_one


# ---- flocks ---------------------------------------------------------------------------
# B independent flocks of n particles each are stored flat (particle i is in flock
# i // n); flock f owns cells f * m * m .. (f + 1) * m * m - 1.


@njit(cache=True)
def cell_sort(pos, n_per, box, m, cell_of, order, starts):
    """Counting sort of particles into ``m x m`` cells per flock (periodic ``box``).

    Args:
        pos: float64[B * n, 2] positions in ``[0, box)``.
        n_per: particles per flock ``n``.
        cell_of: int32[B * n] output: each particle's cell ``f m^2 + iy m + ix``.
        order: int32[B * n] output: particle indices grouped by cell (ascending within).
        starts: int32[B m^2 + 1] output: ``order[starts[c]:starts[c + 1]]`` is cell ``c``.

    Returns:
        the most particles in one cell.
    """
    total = pos.shape[0]
    n_cells = starts.shape[0] - 1
    scale = m / box
    for c in range(n_cells + 1):
        starts[c] = 0
    for i in range(total):
        ix = int(pos[i, 0] * scale)
        iy = int(pos[i, 1] * scale)
        ix = min(max(ix, 0), m - 1)
        iy = min(max(iy, 0), m - 1)
        c = (i // n_per) * m * m + iy * m + ix
        cell_of[i] = c
        starts[c + 1] += 1
    most = 0
    for c in range(n_cells):
        most = max(most, starts[c + 1])
        starts[c + 1] += starts[c]
    fill = starts[:-1].copy()
    for i in range(total):
        c = cell_of[i]
        order[fill[c]] = i
        fill[c] += 1
    return most


@njit(parallel=True, cache=True)
def gather_sorted(pos, vel, order, out):
    """``out[:, t] = (x, y, vx, vy)`` of particle ``order[t]``: the particles in cell order
    and in columns, so that the neighbour scans read contiguous memory."""
    for t in prange(order.shape[0]):
        i = order[t]
        out[0, t] = pos[i, 0]
        out[1, t] = pos[i, 1]
        out[2, t] = vel[i, 0]
        out[3, t] = vel[i, 1]


@njit(inline="always")
def _wrap(d, box, half):
    if d > half:
        return d - box
    if d < -half:
        return d + box
    return d


@njit(inline="always")
def _cell_block(cell, m, box, starts, lo, hi, shift_x, shift_y):
    """The particles around ``cell`` as ranges ``order[lo[k]:hi[k]]`` (cell order) with
    the offsets that bring them next to ``cell`` across the periodic edges
    (``shift_x``, ``shift_y``); returns how many ranges. The 3 x 3 cells around it,
    a row of three merged into one range where no x-edge is crossed; every cell of a
    box of < 3 x 3 cells once, unshifted."""
    mm = m * m
    base = (cell // mm) * mm
    cx = (cell - base) % m
    cy = (cell - base) // m
    k = 0
    if m < 3:
        lo[0] = starts[base]
        hi[0] = starts[base + mm]
        shift_x[0] = 0.0
        shift_y[0] = 0.0
        return 1
    for oy in range(-1, 2):
        ny = cy + oy
        sy = 0.0
        if ny < 0:
            ny += m
            sy = -box
        elif ny >= m:
            ny -= m
            sy = box
        row = base + ny * m
        if 0 < cx < m - 1:  # cells cx-1, cx, cx+1 of this row are contiguous
            lo[k] = starts[row + cx - 1]
            hi[k] = starts[row + cx + 2]
            shift_x[k] = 0.0
            shift_y[k] = sy
            k += 1
            continue
        for ox in range(-1, 2):
            nx = cx + ox
            sx = 0.0
            if nx < 0:
                nx += m
                sx = -box
            elif nx >= m:
                nx -= m
                sx = box
            lo[k] = starts[row + nx]
            hi[k] = starts[row + nx + 1]
            shift_x[k] = sx
            shift_y[k] = sy
            k += 1
    return k


NEIGHBOUR_CHUNK = 64
"""Cells per thread task in :func:`neighbour_sums`."""


@njit(parallel=True, cache=True, fastmath=True)
def neighbour_sums(cols, box, radius, m, order, starts, most, out_sum, out_count):
    """Sum of the unit headings of the neighbours within ``radius`` (self included) and
    their number, for every particle (minimum-image distances in its own flock).

    Per cell, the candidates of the 3 x 3 block are first copied (shifted across the
    periodic edges) into a small contiguous buffer; every particle of the cell then
    scans that buffer branch-free (one long loop that vectorizes).

    Args:
        cols: float64[4, B * n] ``x, y, vx, vy`` in cell order (:func:`gather_sorted`).
        most: the most particles in one cell (:func:`cell_sort`'s return).
        out_sum: float64[B * n, 2] output; out_count: int32[B * n] output (particle
            order).
    """
    r2 = radius * radius
    half = 0.5 * box
    n_cells = starts.shape[0] - 1
    px = cols[0]
    py = cols[1]
    vx = cols[2]
    vy = cols[3]
    chunk = NEIGHBOUR_CHUNK
    n_chunks = (n_cells + chunk - 1) // chunk
    cap = 9 * most  # a 3 x 3 block; a box of < 3 x 3 cells has at most 4 cells
    for ch in prange(n_chunks):
        lo = np.empty(9, dtype=np.int64)
        hi = np.empty(9, dtype=np.int64)
        shift_x = np.empty(9)
        shift_y = np.empty(9)
        bx = np.empty(cap)
        by = np.empty(cap)
        bvx = np.empty(cap)
        bvy = np.empty(cap)
        for cell in range(ch * chunk, min(n_cells, (ch + 1) * chunk)):
            if starts[cell] == starts[cell + 1]:
                continue
            k = _cell_block(cell, m, box, starts, lo, hi, shift_x, shift_y)
            nc = 0
            for q in range(k):
                for u in range(lo[q], hi[q]):
                    bx[nc] = px[u] + shift_x[q]
                    by[nc] = py[u] + shift_y[q]
                    bvx[nc] = vx[u]
                    bvy[nc] = vy[u]
                    nc += 1
            for t in range(starts[cell], starts[cell + 1]):
                xi = px[t]
                yi = py[t]
                sx = 0.0
                sy = 0.0
                count = 0.0
                if m >= 3:  # the shifts did the wrapping
                    for u in range(nc):
                        ddx = bx[u] - xi
                        ddy = by[u] - yi
                        w = 1.0 if ddx * ddx + ddy * ddy <= r2 else 0.0
                        sx += w * bvx[u]
                        sy += w * bvy[u]
                        count += w
                else:
                    for u in range(nc):
                        ddx = _wrap(bx[u] - xi, box, half)
                        ddy = _wrap(by[u] - yi, box, half)
                        if ddx * ddx + ddy * ddy <= r2:
                            sx += bvx[u]
                            sy += bvy[u]
                            count += 1.0
                i = order[t]
                out_sum[i, 0] = sx
                out_sum[i, 1] = sy
                out_count[i] = int(count)


@njit(parallel=True, cache=True)
def couzin_directions(cols, box, r_repulse, r_orient, r_attract, m, order, starts, out_dir):
    """Couzin et al.'s zone rule (2002; 2005 with ``r_orient == r_attract``): if anyone
    is within ``r_repulse``, the sum of unit vectors away from them; else the sum of the
    headings within ``r_orient`` (self included) plus the unit vectors toward the
    neighbours within ``r_attract``. ``out_dir`` float64[B * n, 2] (particle order) gets
    that (unnormalised) desired direction: the own heading when no one is near.

    ``cols``: float64[4, B * n] ``x, y, vx, vy`` in cell order (:func:`gather_sorted`).
    The cell side must be ``>= max(r_repulse, r_orient, r_attract)``.
    """
    half = 0.5 * box
    rr2 = r_repulse * r_repulse
    ro2 = r_orient * r_orient
    ra2 = r_attract * r_attract
    n_cells = starts.shape[0] - 1
    px = cols[0]
    py = cols[1]
    vx = cols[2]
    vy = cols[3]
    for cell in prange(n_cells):
        lo = np.empty(9, dtype=np.int64)
        hi = np.empty(9, dtype=np.int64)
        shift_x = np.empty(9)
        shift_y = np.empty(9)
        k = _cell_block(cell, m, box, starts, lo, hi, shift_x, shift_y)
        for t in range(starts[cell], starts[cell + 1]):
            rx = 0.0
            ry = 0.0
            n_rep = 0
            sx = vx[t]
            sy = vy[t]
            for q in range(k):
                xi = px[t] - shift_x[q]
                yi = py[t] - shift_y[q]
                for u in range(lo[q], hi[q]):
                    if u == t:
                        continue
                    ddx = _wrap(px[u] - xi, box, half)
                    ddy = _wrap(py[u] - yi, box, half)
                    d2 = ddx * ddx + ddy * ddy
                    if d2 <= 0.0:
                        continue
                    if d2 <= rr2:
                        d = np.sqrt(d2)
                        rx -= ddx / d
                        ry -= ddy / d
                        n_rep += 1
                        continue
                    if d2 <= ro2:
                        sx += vx[u]
                        sy += vy[u]
                    if d2 <= ra2:
                        d = np.sqrt(d2)
                        sx += ddx / d
                        sy += ddy / d
            i = order[t]
            if n_rep > 0:
                out_dir[i, 0] = rx
                out_dir[i, 1] = ry
            else:
                out_dir[i, 0] = sx
                out_dir[i, 1] = sy


@njit(parallel=True, cache=True, fastmath=True)
def desired_headings(direction, theta, n_per, informed, target, weight, out):
    """The desired heading of every particle from its social ``direction``
    float64[B * n, 2]: its angle, or for the ``informed`` (bool[B * n]) particles the
    angle of ``unit(direction) + weight * (cos, sin)(target[flock])`` (Couzin et
    al. 2005); the own heading ``theta`` where that vector is zero. ``out`` float64[B * n]."""
    for i in prange(theta.shape[0]):
        dx = direction[i, 0]
        dy = direction[i, 1]
        if informed[i]:
            norm = np.sqrt(dx * dx + dy * dy)
            if norm > 0.0:
                dx /= norm
                dy /= norm
            g = target[i // n_per]
            dx += weight * np.cos(g)
            dy += weight * np.sin(g)
        if dx == 0.0 and dy == 0.0:
            out[i] = theta[i]
        else:
            out[i] = np.arctan2(dy, dx)


@njit(inline="always")
def uniform_hash(seed, i):
    """A uniform double in [0, 1) from ``(seed, i)`` (splitmix64 of a Weyl sequence): the
    same number whatever thread draws it, so the noise is parallel and deterministic."""
    z = seed + np.uint64(i + 1) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return float(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(parallel=True, cache=True)
def uniform_noise(seed, amplitude, out):
    """``out[i] = amplitude * (uniform_hash(seed, i) - 0.5)`` (tests, references)."""
    for i in prange(out.shape[0]):
        out[i] = amplitude * (uniform_hash(seed, i) - 0.5)


@njit(parallel=True, cache=True, fastmath=True)
def heading_update(pos, theta, vel, box, speed, desired, amplitude, seed, max_turn):
    """Turn toward ``desired`` (at most ``max_turn`` radians), add the angular noise
    ``amplitude * (u - 1/2)``, ``u = uniform_hash(seed, i)``, then move at ``speed``
    along the NEW heading (Vicsek et al. 1995, eqs. 1-2), wrapped into the box. Updates
    ``pos`` float64[M, 2], ``theta`` float64[M] and ``vel`` float64[M, 2] (cos, sin of
    theta) in place; ``seed`` is a uint64 drawn once per step."""
    total = pos.shape[0]
    two_pi = 2.0 * np.pi
    for i in prange(total):
        turn = desired[i] - theta[i]
        turn -= two_pi * np.floor((turn + np.pi) / two_pi)
        if turn > max_turn:
            turn = max_turn
        elif turn < -max_turn:
            turn = -max_turn
        a = theta[i] + turn
        if amplitude > 0.0:
            a += amplitude * (uniform_hash(seed, i) - 0.5)
        a -= two_pi * np.floor((a + np.pi) / two_pi)  # into [-pi, pi)
        theta[i] = a
        c = np.cos(a)
        s = np.sin(a)
        vel[i, 0] = c
        vel[i, 1] = s
        x = pos[i, 0] + speed * c
        y = pos[i, 1] + speed * s
        x -= box * np.floor(x / box)
        y -= box * np.floor(y / box)
        if x >= box:
            x -= box
        if y >= box:
            y -= box
        pos[i, 0] = x
        pos[i, 1] = y
