"""Shared NumPy references of the grid emergence metrics (``refs`` fixture).

The kernel tests (``test_kernels.py``) and the metric tests (``test_grid_metrics.py``)
compare against these brute-force versions instead of keeping their own copies.
"""

from __future__ import annotations

from collections import deque
from types import SimpleNamespace

import numpy as np
import pytest


def random_world(rng: np.random.Generator, h: int, w: int, density: float, n_teams: int = 2):
    """A random map: agents on distinct cells, a few walls, ~5% dead agents (left on the grid)."""
    cells = np.flatnonzero(rng.random(h * w) < density)
    n = cells.size
    grid = np.full(h * w, -1, np.int32)
    grid[cells] = rng.permutation(n).astype(np.int32)
    walls = rng.random(h * w) < 0.03
    walls[cells] = False
    grid[walls] = -2
    grid = grid.reshape(h, w)
    team = rng.integers(0, n_teams, n).astype(np.int8)
    alive = rng.random(n) < 0.95
    pos = np.zeros((n, 2), np.int32)
    ys, xs = np.nonzero(grid >= 0)
    pos[grid[ys, xs]] = np.stack([ys, xs], 1)
    return grid, team, alive, pos


def bfs_labels(mask: np.ndarray, connectivity: int) -> np.ndarray:
    """Reference labelling: flood fill from each unlabelled cell in raster order."""
    h, w = mask.shape
    steps = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if connectivity == 8:
        steps += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    labels = np.full(mask.shape, -1, np.int32)
    k = 0
    for y in range(h):
        for x in range(w):
            if not mask[y, x] or labels[y, x] >= 0:
                continue
            labels[y, x] = k
            queue = deque([(y, x)])
            while queue:
                cy, cx = queue.popleft()
                for dy, dx in steps:
                    ny, nx = cy + dy, cx + dx
                    if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and labels[ny, nx] < 0:
                        labels[ny, nx] = k
                        queue.append((ny, nx))
            k += 1
    return labels


def numpy_team_map(grid, team, alive):
    out = np.where(grid == -2, -2, -1).astype(np.int8)
    occupied = grid >= 0
    idx = grid[occupied]
    out[occupied] = np.where(alive[idx], team[idx], -1)
    return out


def numpy_front_line(tmap):
    a, b = tmap[:, :-1], tmap[:, 1:]
    c, d = tmap[:-1, :], tmap[1:, :]
    return int(((a >= 0) & (b >= 0) & (a != b)).sum() + ((c >= 0) & (d >= 0) & (c != d)).sum())


def numpy_front_cells(tmap, which):
    h, w = tmap.shape
    enemy = np.pad((tmap >= 0) & (tmap != which), 1)
    near = np.zeros((h, w), bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            near |= enemy[dy : dy + h, dx : dx + w]
    return int(((tmap == which) & near).sum())


@pytest.fixture(scope="session")
def refs() -> SimpleNamespace:
    """The references above: ``random_world``, ``bfs_labels``, ``numpy_team_map``,
    ``numpy_front_line``, ``numpy_front_cells`` (session-scoped: usable with hypothesis)."""
    return SimpleNamespace(
        random_world=random_world,
        bfs_labels=bfs_labels,
        numpy_team_map=numpy_team_map,
        numpy_front_line=numpy_front_line,
        numpy_front_cells=numpy_front_cells,
    )
