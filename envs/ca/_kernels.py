"""Numba kernels of the cellular-automata worlds.

Every kernel takes arrays and scalars only and writes into preallocated
outputs; dtypes come from the constants below. Each has a NumPy reference in
the tests (and runs under ``NUMBA_DISABLE_JIT=1`` there too).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

CELL_DTYPE = np.uint8  # Life-like boards: 0 dead, 1 alive
WORD_DTYPE = np.uint64  # bit-packed Life boards: 64 cells per word
FIELD_DTYPE = np.float32  # continuous CA (Lenia) states

# ---- Life-like (byte and bit-packed) -----------------------------------------
# A rule is two 9-entry masks: birth[n] / survive[n] = 1 when a dead / live cell
# with n live neighbours is alive next step. Boundaries: torus (wrap) or
# bounded (cells outside the board are dead).


@njit(parallel=True, cache=True)
def life_step_bytes(src, dst, birth, survive, torus):
    """One Life-like step on byte boards.

    Args:
        src: uint8[B, H, W] current boards (0/1).
        dst: uint8[B, H, W] output, must not alias ``src``.
        birth, survive: uint8[9] rule masks.
        torus: wrap around when True, dead outside when False.
    """
    nb, h, w = src.shape
    lut = np.zeros(18, dtype=np.uint8)  # lut[alive * 9 + count]
    for n in range(9):
        lut[n] = birth[n]
        lut[9 + n] = survive[n]
    zeros = np.zeros(w, dtype=src.dtype)
    for row in prange(nb * h):
        b = row // h
        y = row % h
        up = (y - 1) % h if torus else y - 1
        down = (y + 1) % h if torus else y + 1
        above = src[b, up] if up >= 0 else zeros
        below = src[b, down] if down < h else zeros
        mid = src[b, y]
        out = dst[b, y]
        # interior columns: branch-free so LLVM vectorizes the loop
        for x in range(1, w - 1):
            count = (
                above[x - 1]
                + above[x]
                + above[x + 1]
                + mid[x - 1]
                + mid[x + 1]
                + below[x - 1]
                + below[x]
                + below[x + 1]
            )
            out[x] = lut[mid[x] * 9 + count]
        # the two edge columns
        for x in (0, w - 1):
            count = above[x] + below[x]
            for dx in (-1, 1):
                xn = x + dx
                if torus:
                    xn = xn % w
                elif xn < 0 or xn >= w:
                    continue
                count += above[xn] + mid[xn] + below[xn]
            out[x] = lut[mid[x] * 9 + count]


@njit(inline="always")
def _neighbour_count_bits(a_w, a, a_e, m_w, m_e, c_w, c, c_e):
    """Bit-sliced sum of eight 1-bit neighbour words -> four bit planes (1, 2, 4, 8)."""
    # full adder over the row above and the row below, half adder in the middle row
    s_a = a_w ^ a ^ a_e
    k_a = (a_w & a) | (a_e & (a_w ^ a))
    s_c = c_w ^ c ^ c_e
    k_c = (c_w & c) | (c_e & (c_w ^ c))
    s_m = m_w ^ m_e
    k_m = m_w & m_e
    # ones column
    bit0 = s_a ^ s_m ^ s_c
    k1 = (s_a & s_m) | (s_c & (s_a ^ s_m))
    # twos column: k_a + k_m + k_c + k1
    t1 = k_a ^ k_m ^ k_c
    t2 = (k_a & k_m) | (k_c & (k_a ^ k_m))
    bit1 = t1 ^ k1
    u2 = t1 & k1
    bit2 = t2 ^ u2
    bit3 = t2 & u2
    return bit0, bit1, bit2, bit3


@njit(inline="always")
def _apply_rule_bits(alive, bit0, bit1, bit2, bit3, birth, survive, ones):
    """next = OR_n eq(count, n) & (birth[n] & ~alive | survive[n] & alive)."""
    nxt = alive ^ alive  # zero of the word type
    dead = alive ^ ones
    for n in range(9):
        if birth[n] == 0 and survive[n] == 0:
            continue
        eq = (bit0 if n & 1 else bit0 ^ ones) & (bit1 if n & 2 else bit1 ^ ones)
        eq &= (bit2 if n & 4 else bit2 ^ ones) & (bit3 if n & 8 else bit3 ^ ones)
        if birth[n] and survive[n]:
            nxt |= eq
        elif birth[n]:
            nxt |= eq & dead
        else:
            nxt |= eq & alive
    return nxt


@njit(parallel=True, cache=True)
def life_step_packed(src, dst, birth, survive, torus):
    """One Life-like step on bit-packed boards (64 cells per uint64 word).

    Bit ``j`` of word ``k`` in a row is the cell at ``x = 64 * k + j``.

    Args:
        src: uint64[B, H, W // 64] current boards.
        dst: uint64[B, H, W // 64] output, must not alias ``src``.
        birth, survive: uint8[9] rule masks.
        torus: wrap around when True, dead outside when False.
    """
    nb, h, nw = src.shape
    ones = ~np.uint64(0)
    zero = np.uint64(0)
    one = np.uint64(1)
    s63 = np.uint64(63)
    for row in prange(nb * h):
        b = row // h
        y = row % h
        up = y - 1
        down = y + 1
        if torus:
            up = up % h
            down = down % h
        mid = src[b, y]
        out = dst[b, y]
        above = src[b, up] if up >= 0 else src[b, y]
        below = src[b, down] if down < h else src[b, y]
        mask_up = ones if up >= 0 else zero
        mask_down = ones if down < h else zero
        # a sliding window of three words per row: (left, centre, right)
        if torus:
            a_l = above[nw - 1] & mask_up
            m_l = mid[nw - 1]
            c_l = below[nw - 1] & mask_down
        else:
            a_l = zero
            m_l = zero
            c_l = zero
        a = above[0] & mask_up
        m = mid[0]
        c = below[0] & mask_down
        for k in range(nw):
            kr = k + 1
            if kr < nw:
                a_r = above[kr] & mask_up
                m_r = mid[kr]
                c_r = below[kr] & mask_down
            elif torus:
                a_r = above[0] & mask_up
                m_r = mid[0]
                c_r = below[0] & mask_down
            else:
                a_r = zero
                m_r = zero
                c_r = zero
            # west neighbour of x is x - 1: shift towards higher bits, carry in from the left word
            a_w = (a << one) | (a_l >> s63)
            m_w = (m << one) | (m_l >> s63)
            c_w = (c << one) | (c_l >> s63)
            a_e = (a >> one) | (a_r << s63)
            m_e = (m >> one) | (m_r << s63)
            c_e = (c >> one) | (c_r << s63)
            bit0, bit1, bit2, bit3 = _neighbour_count_bits(a_w, a, a_e, m_w, m_e, c_w, c, c_e)
            out[k] = _apply_rule_bits(m, bit0, bit1, bit2, bit3, birth, survive, ones)
            a_l, a, m_l, m, c_l, c = a, a_r, m, m_r, c, c_r


@njit(cache=True)
def life_run_packed(a, b, steps, birth, survive, torus):
    """Advance bit-packed boards ``steps`` times, ping-ponging between ``a`` and ``b``.

    Returns:
        0 when the result is in ``a``, 1 when it is in ``b``.
    """
    for t in range(steps):
        if t % 2 == 0:
            life_step_packed(a, b, birth, survive, torus)
        else:
            life_step_packed(b, a, birth, survive, torus)
    return steps % 2


@njit(cache=True)
def life_run_bytes(a, b, steps, birth, survive, torus):
    """Advance byte boards ``steps`` times between ``a`` and ``b`` (see ``life_run_packed``)."""
    for t in range(steps):
        if t % 2 == 0:
            life_step_bytes(a, b, birth, survive, torus)
        else:
            life_step_bytes(b, a, birth, survive, torus)
    return steps % 2


@njit(parallel=True, cache=True)
def pack_bits(board, out):
    """uint8[B, H, W] (0/1) -> uint64[B, H, W // 64]; W must be a multiple of 64."""
    nb, h, nw = out.shape
    for row in prange(nb * h):
        b = row // h
        y = row % h
        for k in range(nw):
            word = np.uint64(0)
            base = 64 * k
            for j in range(64):
                if board[b, y, base + j]:
                    word |= np.uint64(1) << np.uint64(j)
            out[b, y, k] = word


@njit(parallel=True, cache=True)
def unpack_bits(words, out):
    """uint64[B, H, W // 64] -> uint8[B, H, W] (0/1)."""
    nb, h, nw = words.shape
    one = np.uint64(1)
    for row in prange(nb * h):
        b = row // h
        y = row % h
        for k in range(nw):
            word = words[b, y, k]
            base = 64 * k
            for j in range(64):
                out[b, y, base + j] = np.uint8((word >> np.uint64(j)) & one)


@njit(inline="always")
def _popcount64(x):
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


@njit(parallel=True, cache=True)
def popcount_boards(words, out):
    """Live cells per packed board: uint64[B, H, nw] -> int64[B] (written into ``out``)."""
    nb = words.shape[0]
    for b in prange(nb):
        total = 0
        for y in range(words.shape[1]):
            for k in range(words.shape[2]):
                total += _popcount64(words[b, y, k])
        out[b] = total


@njit(parallel=True, cache=True)
def popcount_xor_boards(a, b_words, out):
    """Cells that differ between two packed boards: int64[B] into ``out``."""
    nb = a.shape[0]
    for b in prange(nb):
        total = 0
        for y in range(a.shape[1]):
            for k in range(a.shape[2]):
                total += _popcount64(a[b, y, k] ^ b_words[b, y, k])
        out[b] = total


# ---- Lenia (continuous CA) ---------------------------------------------------

# Growth-function codes shared with ``colonylab.envs.ca.lenia`` (``LeniaConfig.growth``).
GROWTH_GAUSSIAN = 0  # 2 exp(-(u - mu)^2 / (2 sigma^2)) - 1
GROWTH_POLYNOMIAL = 1  # 2 max(0, 1 - (u - mu)^2 / (9 sigma^2))^4 - 1
GROWTH_STEP = 2  # +1 where |u - mu| <= sigma, else -1


@njit(cache=True)
def lenia_growth(u, mu, sigma, kind):
    """Growth mapping G(u) in [-1, 1] of one potential value (Chan 2019, eqs. for G).

    Args:
        u: potential (the kernel-weighted neighbourhood sum), float.
        mu: growth centre ``m``.
        sigma: growth width ``s`` (> 0).
        kind: ``GROWTH_GAUSSIAN``, ``GROWTH_POLYNOMIAL`` or ``GROWTH_STEP``.

    Returns:
        float64 growth value.
    """
    d = u - mu
    if kind == GROWTH_GAUSSIAN:
        return 2.0 * np.exp(-(d * d) / (2.0 * sigma * sigma)) - 1.0
    if kind == GROWTH_POLYNOMIAL:
        q = 1.0 - (d * d) / (9.0 * sigma * sigma)
        if q < 0.0:
            q = 0.0
        return 2.0 * q * q * q * q - 1.0
    return 1.0 if abs(d) <= sigma else -1.0


@njit(parallel=True, cache=True)
def lenia_update(state, potential, out, row_growth, mu, sigma, dt, kind):
    """One Lenia Euler step after the convolution: growth, update and clip, fused.

    ``out = clip(state + dt * G(potential), 0, 1)``; rows run in parallel and each
    writes only its own cells and its own ``row_growth`` slot, so results do not
    depend on the thread count.

    Args:
        state: float32[B, H, W] current board(s) in [0, 1].
        potential: float32[B, H, W] kernel convolution of ``state``.
        out: float32[B, H, W] next state (preallocated; may be ``state`` itself, as
            every cell reads only its own old value).
        row_growth: float64[B, H] receives, per row, the sum of the effective growth
            rate ``(out - state) / dt`` (the clipped update, so empty cells add 0).
        mu: growth centre.
        sigma: growth width.
        dt: time step ``1 / T``.
        kind: growth-function code (``GROWTH_*``).
    """
    nb, nh, nw = state.shape
    for row in prange(nb * nh):
        b = row // nh
        y = row - b * nh
        total = 0.0
        for x in range(nw):
            # float64 arithmetic whether jitted or not (NumPy 2 keeps float32 scalars)
            old = np.float64(state[b, y, x])
            new = old + dt * lenia_growth(np.float64(potential[b, y, x]), mu, sigma, kind)
            if new < 0.0:
                new = 0.0
            elif new > 1.0:
                new = 1.0
            new32 = np.float32(new)
            out[b, y, x] = new32
            total += (new32 - old) / dt
        row_growth[b, y] = total
