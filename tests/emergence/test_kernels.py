"""emergence/_kernels.py against NumPy references, jitted and as plain Python."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from colonylab.emergence import _kernels as K


def labels_of(cells: np.ndarray, value: int, eight: bool) -> tuple[np.ndarray, np.ndarray]:
    labels = np.empty(cells.shape, np.int32)
    sizes = K.label(cells, value, eight, labels)
    return labels, sizes


@pytest.mark.parametrize("seed", range(25))
def test_team_map_matches_numpy(refs, seed):
    rng = np.random.default_rng(seed)
    grid, team, alive, _ = refs.random_world(rng, 1 + seed % 9, 3 + seed % 7, 0.5, n_teams=3)
    out = np.empty(grid.shape, np.int8)
    assert K.team_map(grid, team, alive, out) == -1
    np.testing.assert_array_equal(out, refs.numpy_team_map(grid, team, alive))


def test_team_map_reports_the_first_bad_cell():
    grid = np.array([[0, -1], [-2, 5]], np.int32)  # 5 is not an agent of 2
    out = np.empty(grid.shape, np.int8)
    assert K.team_map(grid, np.zeros(2, np.int8), np.ones(2, bool), out) == 3
    grid[1, 1] = -3  # not a cell code
    assert K.team_map(grid, np.zeros(2, np.int8), np.ones(2, bool), out) == 3


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("eight", [False, True])
def test_label_matches_flood_fill(refs, seed, eight):
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 3, size=(1 + seed % 11, 1 + seed % 13)).astype(np.int8)
    labels, sizes = labels_of(cells, 1, eight)
    want = refs.bfs_labels(cells == 1, 8 if eight else 4)
    np.testing.assert_array_equal(labels, want)
    np.testing.assert_array_equal(sizes, np.bincount(want[want >= 0], minlength=sizes.size))


def test_union_find_keeps_the_smaller_root():
    parent = np.arange(6, dtype=np.int32)
    assert K.union(parent, -1, 4) == 4  # nothing to join: the root of b
    assert K.union(parent, 4, 2) == 2 and K.find_root(parent, 4) == 2
    assert K.union(parent, 5, 4) == 2 and K.find_root(parent, 5) == 2
    assert (parent <= np.arange(6)).all()


@pytest.mark.parametrize("seed", range(25))
def test_front_line_kernels_match_numpy(refs, seed):
    rng = np.random.default_rng(seed)
    grid, team, alive, _ = refs.random_world(rng, 2 + seed % 12, 2 + seed % 9, 0.6, n_teams=3)
    tmap = refs.numpy_team_map(grid, team, alive)
    assert K.front_line_pairs(tmap) == refs.numpy_front_line(tmap)
    for which in range(3):
        assert K.front_cells(tmap, which) == refs.numpy_front_cells(tmap, which)


def _kernel_outputs(seed: int) -> dict:
    """Every kernel on one random map (run both jitted and without the JIT)."""
    rng = np.random.default_rng(seed)
    mask = rng.random((9, 13)) < 0.5
    team = rng.integers(0, 2, 117).astype(np.int8)
    grid = rng.permutation(117).astype(np.int32).reshape(9, 13)
    grid[mask] = -1
    alive = rng.random(117) < 0.9
    tmap = np.empty(grid.shape, np.int8)
    K.team_map(grid, team, alive, tmap)
    l4 = np.empty(mask.shape, np.int32)
    l8 = np.empty(mask.shape, np.int32)
    return {
        "map": tmap.tolist(),
        "s4": K.label(mask.astype(np.int8), 1, False, l4).tolist(),
        "l4": l4.tolist(),
        "s8": K.label(mask.astype(np.int8), 1, True, l8).tolist(),
        "l8": l8.tolist(),
        "front": int(K.front_line_pairs(tmap)),
        "cells": int(K.front_cells(tmap, 1)),
    }


def test_kernels_without_jit_match_jit(refs):
    """The Python path of the kernels (NUMBA_DISABLE_JIT=1) gives what the JIT does."""
    code = textwrap.dedent(
        f"""
        import json, sys, numba
        assert numba.config.DISABLE_JIT
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import test_kernels as T
        print(json.dumps(T._kernel_outputs(3)))
        """
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    got = json.loads(result.stdout)
    assert got == _kernel_outputs(3)
    # and both are right on this map
    mask = np.array(got["l8"]) >= 0
    assert got["l8"] == refs.bfs_labels(mask, 8).tolist()
