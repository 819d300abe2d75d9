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

BLOCK_WORDS = 8
"""Words (x 64 starts) one thread steps together: small enough for L1, wide for SIMD."""


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
                sel = a[neighbours[c, k_bits - 1]]
                for k in range(half):
                    lo = leaf[k]
                    fl = flip[k]
                    for w in range(bw):
                        v[k, w] = lo ^ (fl & sel[w])
                n = half
                for level in range(k_bits - 2, -1, -1):
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


@njit(cache=True)
def cell_sort(pos, box, m, cell_of, order, starts):
    """Counting sort of particles into ``m x m`` cells of a periodic ``box``.

    Args:
        pos: float64[N, 2] positions in ``[0, box)``.
        cell_of: int32[N] output: each particle's cell ``iy * m + ix``.
        order: int32[N] output: particle indices grouped by cell (ascending within one).
        starts: int32[m * m + 1] output: ``order[starts[c]:starts[c + 1]]`` is cell ``c``.
    """
    n = pos.shape[0]
    scale = m / box
    for c in range(m * m + 1):
        starts[c] = 0
    for i in range(n):
        ix = int(pos[i, 0] * scale)
        iy = int(pos[i, 1] * scale)
        if ix >= m:
            ix = m - 1
        if iy >= m:
            iy = m - 1
        c = iy * m + ix
        cell_of[i] = c
        starts[c + 1] += 1
    for c in range(m * m):
        starts[c + 1] += starts[c]
    fill = starts[:-1].copy()
    for i in range(n):
        c = cell_of[i]
        order[fill[c]] = i
        fill[c] += 1


@njit(parallel=True, cache=True)
def neighbour_sums(pos, vel, box, radius, m, cell_of, order, starts, out_sum, out_count):
    """Sum of the unit headings of the neighbours within ``radius`` (self included) and
    their number, for every particle (periodic minimum-image distances).

    Args:
        vel: float64[N, 2] unit headings (cos, sin).
        out_sum: float64[N, 2] output; out_count: int32[N] output.
    """
    n = pos.shape[0]
    r2 = radius * radius
    half = 0.5 * box
    for i in prange(n):
        c = cell_of[i]
        cx = c % m
        cy = c // m
        sx = 0.0
        sy = 0.0
        count = 0
        xi = pos[i, 0]
        yi = pos[i, 1]
        nd = 3 if m >= 3 else m  # small boxes: every cell once
        for oy in range(nd):
            ny = (cy + oy - 1) % m if m >= 3 else oy
            for ox in range(nd):
                nx = (cx + ox - 1) % m if m >= 3 else ox
                cell = ny * m + nx
                for t in range(starts[cell], starts[cell + 1]):
                    j = order[t]
                    ddx = pos[j, 0] - xi
                    ddy = pos[j, 1] - yi
                    if ddx > half:
                        ddx -= box
                    elif ddx < -half:
                        ddx += box
                    if ddy > half:
                        ddy -= box
                    elif ddy < -half:
                        ddy += box
                    if ddx * ddx + ddy * ddy <= r2:
                        sx += vel[j, 0]
                        sy += vel[j, 1]
                        count += 1
        out_sum[i, 0] = sx
        out_sum[i, 1] = sy
        out_count[i] = count


@njit(parallel=True, cache=True)
def vicsek_update(pos, theta, box, speed, desired, noise, out_pos, out_theta):
    """Vicsek's update: heading <- desired + noise; move at ``speed`` along the NEW
    heading (Vicsek et al. 1995, eqs. 1-2), wrapped into the box.

    Args:
        theta: float64[N] current headings (unused but for the shape).
        desired: float64[N] the headings chosen by the controller.
        noise: float64[N] pre-drawn angular noise.
        out_pos: float64[N, 2]; out_theta: float64[N] outputs (may alias the inputs).
    """
    n = pos.shape[0]
    two_pi = 2.0 * np.pi
    for i in prange(n):
        a = desired[i] + noise[i]
        a = a - two_pi * np.floor((a + np.pi) / two_pi)  # into [-pi, pi)
        out_theta[i] = a
        x = pos[i, 0] + speed * np.cos(a)
        y = pos[i, 1] + speed * np.sin(a)
        x -= box * np.floor(x / box)
        y -= box * np.floor(y / box)
        if x >= box:
            x -= box
        if y >= box:
            y -= box
        out_pos[i, 0] = x
        out_pos[i, 1] = y


@njit(parallel=True, cache=True)
def couzin_zones(pos, vel, box, r_repulse, r_orient, r_attract, m, cell_of, order, starts, out_dir):
    """Couzin et al.'s zone rule (2002, 2005): if anyone is within ``r_repulse``, turn
    away from them (sum of unit vectors away); else the sum of the orientation-zone
    headings (self included) and the attraction-zone unit vectors toward neighbours.
    ``out_dir`` float64[N, 2] gets that (unnormalised) desired direction; zero when no
    one is near (keep the heading).

    The cell side must be ``>= r_attract``.
    """
    n = pos.shape[0]
    half = 0.5 * box
    rr2 = r_repulse * r_repulse
    ro2 = r_orient * r_orient
    ra2 = r_attract * r_attract
    for i in prange(n):
        c = cell_of[i]
        cx = c % m
        cy = c // m
        rx = 0.0
        ry = 0.0
        n_rep = 0
        ox = 0.0
        oy = 0.0
        ax = 0.0
        ay = 0.0
        n_oa = 0
        xi = pos[i, 0]
        yi = pos[i, 1]
        nd = 3 if m >= 3 else m  # small boxes: every cell once
        for oy in range(nd):
            ny = (cy + oy - 1) % m if m >= 3 else oy
            for ox in range(nd):
                nx = (cx + ox - 1) % m if m >= 3 else ox
                cell = ny * m + nx
                for t in range(starts[cell], starts[cell + 1]):
                    j = order[t]
                    if j == i:
                        continue
                    ddx = pos[j, 0] - xi
                    ddy = pos[j, 1] - yi
                    if ddx > half:
                        ddx -= box
                    elif ddx < -half:
                        ddx += box
                    if ddy > half:
                        ddy -= box
                    elif ddy < -half:
                        ddy += box
                    d2 = ddx * ddx + ddy * ddy
                    if d2 <= 0.0:
                        continue
                    if d2 <= rr2:
                        d = np.sqrt(d2)
                        rx -= ddx / d
                        ry -= ddy / d
                        n_rep += 1
                    elif d2 <= ro2:
                        ox += vel[j, 0]
                        oy += vel[j, 1]
                        n_oa += 1
                    elif d2 <= ra2:
                        d = np.sqrt(d2)
                        ax += ddx / d
                        ay += ddy / d
                        n_oa += 1
        if n_rep > 0:
            out_dir[i, 0] = rx
            out_dir[i, 1] = ry
        elif n_oa > 0:
            # orientation includes the focal individual's own heading
            ox += vel[i, 0]
            oy += vel[i, 1]
            no = np.sqrt(ox * ox + oy * oy)
            na = np.sqrt(ax * ax + ay * ay)
            dxo = ox / no if no > 0 else 0.0
            dyo = oy / no if no > 0 else 0.0
            dxa = ax / na if na > 0 else 0.0
            dya = ay / na if na > 0 else 0.0
            out_dir[i, 0] = dxo + dxa
            out_dir[i, 1] = dyo + dya
        else:
            out_dir[i, 0] = 0.0
            out_dir[i, 1] = 0.0
