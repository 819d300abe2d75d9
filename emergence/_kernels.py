"""Numba kernels of the grid emergence metrics (``emergence.grid``).

Arrays and scalars only; the public functions in ``emergence/grid.py`` validate their
inputs and call these. Each kernel has a NumPy reference in
``tests/emergence/test_kernels.py``, which also runs them with ``NUMBA_DISABLE_JIT=1``.
Cell values follow the grid worlds: agent index ``>= 0``, ``-1`` empty, ``-2`` wall.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def team_map(grid, team, alive, out):
    """Team of the live agent in each cell.

    Args:
        grid: int[H, W] agent index, -1 empty, -2 wall.
        team: int[N]; alive: bool[N].
        out: int8[H, W] output: team id, -1 empty (or a dead agent), -2 wall.

    Returns:
        Flat index of the first cell holding a value outside ``[-2, N)``, or -1.
    """
    h, w = grid.shape
    n = team.shape[0]
    for y in range(h):
        for x in range(w):
            v = grid[y, x]
            if v >= 0:
                if v >= n:
                    return y * w + x
                out[y, x] = team[v] if alive[v] else -1
            elif v == -1:
                out[y, x] = -1
            elif v == -2:
                out[y, x] = -2
            else:
                return y * w + x
    return -1


@njit(cache=True)
def find_root(parent, a):
    while parent[a] != a:
        parent[a] = parent[parent[a]]  # path halving keeps parent[a] <= a
        a = parent[a]
    return a


@njit(cache=True)
def union(parent, a, b):
    """Join the sets of ``a`` (or nothing when -1) and ``b``; returns the root.

    The smaller label becomes the root, so ``parent[x] <= x`` always holds.
    """
    rb = find_root(parent, b)
    if a < 0:
        return rb
    ra = find_root(parent, a)
    if ra < rb:
        parent[rb] = ra
        return ra
    if rb < ra:
        parent[ra] = rb
    return rb


@njit(cache=True)
def label(cells, value, eight, labels):
    """Connected components of the cells equal to ``value``, by two-pass union-find.

    Args:
        cells: int8[H, W].
        value: the cell value that is foreground.
        eight: True for 8-connectivity, False for 4-connectivity.
        labels: int32[H, W] output: component id ``0..K-1`` numbered in raster
            order of each component's first cell, -1 for background.

    Returns:
        int64[K] size of each component, indexed by label.
    """
    h, w = cells.shape
    n_fg = 0
    for y in range(h):
        for x in range(w):
            if cells[y, x] == value:
                n_fg += 1
    parent = np.empty(n_fg, np.int32)
    n = 0
    for y in range(h):
        for x in range(w):
            if cells[y, x] != value:
                labels[y, x] = -1
                continue
            lab = -1
            if x > 0 and labels[y, x - 1] >= 0:
                lab = labels[y, x - 1]
            if y > 0:
                if labels[y - 1, x] >= 0:
                    lab = union(parent, lab, labels[y - 1, x])
                if eight:
                    if x > 0 and labels[y - 1, x - 1] >= 0:
                        lab = union(parent, lab, labels[y - 1, x - 1])
                    if x + 1 < w and labels[y - 1, x + 1] >= 0:
                        lab = union(parent, lab, labels[y - 1, x + 1])
            if lab < 0:
                parent[n] = n
                lab = n
                n += 1
            labels[y, x] = lab
    # parent[l] <= l, so one increasing sweep resolves every label to its root's id.
    final = np.empty(n, np.int32)
    k = 0
    for lab in range(n):
        p = parent[lab]
        if p == lab:
            final[lab] = k
            k += 1
        else:
            final[lab] = final[p]
    sizes = np.zeros(k, np.int64)
    for y in range(h):
        for x in range(w):
            lab = labels[y, x]
            if lab >= 0:
                f = final[lab]
                labels[y, x] = f
                sizes[f] += 1
    return sizes


@njit(cache=True)
def front_line_pairs(tmap):
    """Unordered 4-neighbour pairs of cells holding agents of different teams.

    Args:
        tmap: int8[H, W] team map (``team_map``): team id, -1 empty, -2 wall.
    """
    h, w = tmap.shape
    count = 0
    for y in range(h):
        for x in range(w):
            t = tmap[y, x]
            if t < 0:
                continue
            if x + 1 < w:
                u = tmap[y, x + 1]
                if u >= 0 and u != t:
                    count += 1
            if y + 1 < h:
                u = tmap[y + 1, x]
                if u >= 0 and u != t:
                    count += 1
    return count


@njit(cache=True)
def front_cells(tmap, which_team):
    """Cells of ``which_team`` with an agent of another team among their 8 neighbours.

    Args:
        tmap: int8[H, W] team map (``team_map``); which_team: a team id.
    """
    h, w = tmap.shape
    count = 0
    for y in range(h):
        for x in range(w):
            if tmap[y, x] != which_team:
                continue
            found = False
            for yy in range(max(y - 1, 0), min(y + 2, h)):
                for xx in range(max(x - 1, 0), min(x + 2, w)):
                    u = tmap[yy, xx]
                    if u >= 0 and u != which_team:
                        found = True
            if found:
                count += 1
    return count
