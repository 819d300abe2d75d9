"""Emergence metrics of cellular automata: pure functions of boards.

All functions take batched boards ``[B, H, W]`` (uint8 0/1 for Life-like,
float in [0, 1] for continuous CA) and return one number per board.
:class:`PeriodDetector` finds still lifes, oscillators and spaceships by
hashing states.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np


def as_batched(board: np.ndarray) -> np.ndarray:
    """``[H, W]`` -> ``[1, H, W]``; ``[B, H, W]`` unchanged; anything else refused."""
    board = np.asarray(board)
    if board.ndim == 2:
        return board[None]
    if board.ndim != 3:
        raise ValueError(f"expected boards [B, H, W] or [H, W], got shape {board.shape}")
    return board


def population(board: np.ndarray) -> np.ndarray:
    """Live cells (or total mass for continuous states) per board: ``[B]``."""
    board = as_batched(board)
    if board.dtype == np.uint8 or board.dtype == bool:
        return board.reshape(board.shape[0], -1).sum(axis=1, dtype=np.int64)
    return board.reshape(board.shape[0], -1).sum(axis=1, dtype=np.float64)


def density(board: np.ndarray) -> np.ndarray:
    """Population divided by the number of cells: ``float64[B]``."""
    board = as_batched(board)
    return population(board) / float(board.shape[1] * board.shape[2])


def activity(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Share of cells that changed (mean absolute change for continuous states): ``[B]``."""
    previous, current = as_batched(previous), as_batched(current)
    if previous.shape != current.shape:
        raise ValueError(f"shapes differ: {previous.shape} vs {current.shape}")
    diff = np.abs(current.astype(np.float32) - previous.astype(np.float32))
    return diff.reshape(diff.shape[0], -1).mean(axis=1, dtype=np.float64)


def block_entropy(board: np.ndarray, block: int = 2) -> np.ndarray:
    """Shannon entropy of ``block x block`` patterns, in bits per cell: ``float64[B]``.

    0 for an empty or uniform board; 1 for independent fair coin flips. Blocks
    tile the board (toroidally, non-overlapping); each block is read as a
    ``block**2``-bit code and the entropy of the code histogram is divided by
    ``block**2``.
    """
    board = as_batched(board)
    if board.dtype != np.uint8 and board.dtype != bool:
        raise ValueError("block_entropy needs binary boards; use value_entropy for continuous")
    if not 1 <= block <= 4:
        raise ValueError(f"block must be 1-4, got {block}")
    b, h, w = board.shape
    hh, ww = h - h % block, w - w % block
    cells = board[:, :hh, :ww].astype(np.int64)
    codes = np.zeros((b, hh // block, ww // block), dtype=np.int64)
    bit = 0
    for dy in range(block):
        for dx in range(block):
            codes |= cells[:, dy::block, dx::block] << bit
            bit += 1
    out = np.empty(b)
    n_codes = 1 << (block * block)
    for i in range(b):
        counts = np.bincount(codes[i].ravel(), minlength=n_codes)
        p = counts[counts > 0] / counts.sum()
        out[i] = float(-(p * np.log2(p)).sum()) / (block * block)
    return out


def value_entropy(state: np.ndarray, bins: int = 32) -> np.ndarray:
    """Entropy (bits) of the histogram of continuous values in [0, 1], over live cells."""
    state = as_batched(state)
    out = np.zeros(state.shape[0])
    for i, s in enumerate(state):
        live = s[s > 1e-3]
        if live.size == 0:
            continue
        counts, _ = np.histogram(live, bins=bins, range=(0.0, 1.0))
        p = counts[counts > 0] / counts.sum()
        out[i] = float(-(p * np.log2(p)).sum())
    return out


@dataclass(frozen=True)
class PeriodResult:
    """What a board settled into.

    Attributes:
        kind: ``extinct``, ``still life``, ``oscillator`` or ``spaceship``.
        period: steps between repeats (0 for extinct).
        displacement: ``(dy, dx)`` the pattern moved per period (spaceships).
        first_seen: the step at which the repeating state first appeared.
        detected_at: the step at which the repeat was found.
    """

    kind: str
    period: int
    displacement: tuple[int, int]
    first_seen: int
    detected_at: int

    @property
    def velocity(self) -> tuple[float, float]:
        """Cells per step ``(dy, dx)``."""
        if self.period == 0:
            return (0.0, 0.0)
        return (self.displacement[0] / self.period, self.displacement[1] / self.period)


def _signed(delta: int, size: int) -> int:
    """Minimal displacement on a ring of ``size`` cells."""
    delta %= size
    return delta - size if delta > size // 2 else delta


class PeriodDetector:
    """Detects periodic behaviour of one board by hashing its states.

    A state is keyed by its live cells cropped to their bounding box, so a
    pattern that repeats shifted (a glider) is found as well as one that
    repeats in place (an oscillator). Call :meth:`update` once per step.

    Args:
        max_history: states remembered (the longest detectable period).
    """

    def __init__(self, max_history: int = 4096) -> None:
        self.max_history = max_history
        self._seen: dict[bytes, tuple[int, int, int]] = {}
        self._order: list[bytes] = []

    def update(self, board: np.ndarray, step: int) -> PeriodResult | None:
        """Record ``board`` (``[H, W]``) at ``step``; a result once it repeats."""
        board = np.asarray(board)
        if board.ndim != 2:
            raise ValueError(f"PeriodDetector takes one [H, W] board, got shape {board.shape}")
        h, w = board.shape
        rows = np.flatnonzero(board.any(axis=1))
        if rows.size == 0:
            return PeriodResult("extinct", 0, (0, 0), step, step)
        cols = np.flatnonzero(board.any(axis=0))
        y0, x0 = int(rows[0]), int(cols[0])
        crop = np.ascontiguousarray(board[y0 : rows[-1] + 1, x0 : cols[-1] + 1], dtype=np.uint8)
        key = hashlib.blake2b(crop.tobytes() + bytes(str(crop.shape), "ascii"), digest_size=16)
        digest = key.digest()
        if digest in self._seen:
            t0, py, px = self._seen[digest]
            period = step - t0
            disp = (_signed(y0 - py, h), _signed(x0 - px, w))
            if disp == (0, 0):
                kind = "still life" if period == 1 else "oscillator"
            else:
                kind = "spaceship"
            return PeriodResult(kind, period, disp, t0, step)
        self._seen[digest] = (step, y0, x0)
        self._order.append(digest)
        if len(self._order) > self.max_history:
            self._seen.pop(self._order.pop(0), None)
        return None


def detect_period(
    boards: list[np.ndarray] | np.ndarray, start_step: int = 0
) -> PeriodResult | None:
    """Run a :class:`PeriodDetector` over a trajectory ``[T, H, W]``; the first repeat."""
    detector = PeriodDetector(max_history=len(boards) + 1)
    for t, board in enumerate(boards):
        result = detector.update(board, start_step + t)
        if result is not None:
            return result
    return None
