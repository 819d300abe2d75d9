"""Shared scaffolding of the world tests (fixtures; pytest imports no helper modules).

* ``state_guard``: ``snap = state_guard.snapshot(world)`` copies every array, tensor,
  generator state and number a world holds (after calling ``metrics()``, which some
  worlds use to update what they remember between calls);
  ``state_guard.assert_unchanged(world, snap)`` checks a refused call changed none of it;
  ``state_guard.assert_refused(world, call, match)`` does both around ``call()``, which
  must raise ``ValueError`` matching ``match`` (``views=True``: ``world.observe()`` too).
* ``act``: ``act(world, a3=1, a7=12)`` -> ``int64[n_agents]`` no-ops except the named
  agents (grid worlds).
* ``encode``: float32 observation values as the world encodes them for
  ``obs_dtype`` ``"float16"`` / ``"uint8"`` (grid worlds).
* ``team_density``: ``team_density(world)`` -> float32[2, S, S], a loop-by-agent
  reference of a two-team grid world's ``minimap_planes()`` (battle, pursuit).
* ``reference_moves``: ``reference_moves(actions, alive, pos, grid, moves)`` moves the
  grid worlds' agents in plain Python by the shared rule (after the deaths; lowest
  index first; only into cells empty at the start of the phase); ``moves[a]`` is the
  ``(dy, dx)`` of move action ``a`` (1 .. len(moves) - 1). ``pos`` and ``grid`` change
  in place.
* ``script``: runs a script that ends with ``np.savez("out.npz", ...)`` and returns its
  arrays: ``script.elsewhere(code, NUMBA_DISABLE_JIT="1")`` in a fresh interpreter with
  those environment variables, ``script.here(code)`` in this process (the kernels
  already compiled), each in its own temporary folder -- one rollout text for both sides
  of a "same result with / without JIT or threads" test.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import tempfile
import textwrap
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest
import torch


class StateGuard:
    """Snapshot a world's whole state and check that it did not change."""

    @staticmethod
    def snapshot(world: Any) -> dict[str, Any]:
        world.metrics()  # settle what metrics() remembers (Lenia's last centroid)
        state: dict[str, Any] = {}
        for name, value in vars(world).items():
            if isinstance(value, np.ndarray):
                state[name] = value.copy()
            elif isinstance(value, torch.Tensor):
                state[name] = value.detach().clone()
            elif isinstance(value, np.random.Generator):
                state[name] = copy.deepcopy(value.bit_generator.state)
            elif (
                isinstance(value, (bool, int, float, str))
                or value is None
                or isinstance(value, tuple)
                and all(isinstance(v, (bool, int, float, str)) for v in value)
            ):
                state[name] = value
        return state

    @classmethod
    def assert_unchanged(cls, world: Any, snap: dict[str, Any]) -> None:
        now = cls.snapshot(world)
        for name, before in snap.items():
            after = now.get(name, "<missing>")
            if isinstance(before, np.ndarray):
                np.testing.assert_array_equal(after, before, err_msg=name)
            elif isinstance(before, torch.Tensor):
                assert torch.equal(after, before), name
            elif isinstance(before, dict):  # generator states
                assert after.keys() == before.keys(), name
                for key in before:
                    np.testing.assert_array_equal(after[key], before[key], err_msg=f"{name}[{key}]")
            else:
                assert after == before or (after != after and before != before), name

    @classmethod
    def assert_refused(
        cls,
        world: Any,
        call: Any,
        match: str,
        error: type[Exception] = ValueError,
        views: bool = False,
    ) -> None:
        before = cls.snapshot(world)
        obs_before = world.observe().copy() if views else None
        with pytest.raises(error, match=match):
            call()
        cls.assert_unchanged(world, before)
        if views:
            np.testing.assert_array_equal(world.observe(), obs_before)


@pytest.fixture
def state_guard() -> StateGuard:
    return StateGuard()


def _act(world: Any, **by_agent: int) -> np.ndarray:
    actions = np.zeros(world.n_agents, dtype=np.int64)
    for key, a in by_agent.items():
        actions[int(key[1:])] = a
    return actions


@pytest.fixture
def act():
    return _act


def _encode(values: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "float16":
        return values.astype(np.float16)
    if dtype == "uint8":
        return np.floor(values * np.float32(255) + np.float32(0.5)).astype(np.uint8)
    return values


@pytest.fixture
def encode():
    return _encode


class Script:
    """Run a rollout script on both sides of a comparison (see the module docstring)."""

    @staticmethod
    def elsewhere(code: str, **env: str) -> dict[str, np.ndarray]:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [sys.executable, "-c", textwrap.dedent(code)],
                env={**os.environ, **env},
                cwd=tmp,
                check=True,
                timeout=300,
            )
            return dict(np.load(os.path.join(tmp, "out.npz")))

    @staticmethod
    def here(code: str) -> dict[str, np.ndarray]:
        with tempfile.TemporaryDirectory() as tmp:
            cwd = os.getcwd()
            os.chdir(tmp)
            try:
                exec(textwrap.dedent(code), {})
                return dict(np.load("out.npz"))
            finally:
                os.chdir(cwd)


@pytest.fixture
def script() -> Script:
    return Script()


def _team_density(world: Any) -> np.ndarray:
    s = world.view_shape[0]
    side = world.map_size
    counts = np.zeros((2, s, s))
    for i in np.flatnonzero(world.alive):
        counts[world.team[i], world.pos[i, 0] * s // side, world.pos[i, 1] * s // side] += 1
    span = np.array([sum(1 for y in range(side) if y * s // side == b) for b in range(s)])
    area = np.outer(span, span).astype(float)
    return np.divide(counts, area, out=np.zeros_like(counts), where=area > 0).astype(np.float32)


@pytest.fixture
def team_density():
    return _team_density


def _reference_moves(
    actions: np.ndarray,
    alive: np.ndarray,
    pos: np.ndarray,
    grid: np.ndarray,
    moves: list[tuple[int, int]],
) -> None:
    h, w = grid.shape
    start = grid.copy()  # moves see the grid after the deaths
    claimed = set()
    for i in range(len(alive)):  # lowest index first
        a = int(actions[i])
        if alive[i] and 1 <= a < len(moves):
            y, x = pos[i, 0] + moves[a][0], pos[i, 1] + moves[a][1]
            if 0 <= y < h and 0 <= x < w and start[y, x] == -1 and (y, x) not in claimed:
                claimed.add((y, x))
                grid[pos[i, 0], pos[i, 1]] = -1
                grid[y, x] = i
                pos[i] = (y, x)


@pytest.fixture
def reference_moves():
    return _reference_moves
