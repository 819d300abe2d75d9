"""Metrics of continuous-CA boards (Lenia): mass, toroidal centroid, displacement.

Pure functions of arrays; boards are float[B, H, W] (a single float[H, W] board
is treated as B = 1). Positions are (y, x) in cells.
"""

from __future__ import annotations

import numpy as np

from colonylab.emergence.ca import as_batched as _batched


def mass(state: np.ndarray) -> np.ndarray:
    """Total of every board.

    Args:
        state: float[B, H, W] (or float[H, W]).

    Returns:
        float64[B].
    """
    return _batched(state).sum(axis=(1, 2), dtype=np.float64)


def centroid(state: np.ndarray) -> np.ndarray:
    """Mass-weighted centroid of every board on a torus (circular mean per axis).

    Each axis is mapped to an angle ``2 pi i / n``; the mean of the mass-weighted
    unit vectors gives the angle of the centroid, so a blob straddling an edge
    gets a centroid next to that edge, not in the middle of the board.

    Args:
        state: float[B, H, W] (or float[H, W]), values >= 0.

    Returns:
        float64[B, 2] (y, x) in [0, H) x [0, W); NaN for a board of zero mass.
    """
    boards = _batched(state)
    _, height, width = boards.shape
    out = np.empty((boards.shape[0], 2), dtype=np.float64)
    totals = mass(boards)
    for axis, n, column in ((2, height, 0), (1, width, 1)):
        profile = boards.sum(axis=axis, dtype=np.float64)  # [B, n]
        angle = 2.0 * np.pi * np.arange(n) / n
        mean = np.arctan2(profile @ np.sin(angle), profile @ np.cos(angle))
        out[:, column] = (mean * n / (2.0 * np.pi)) % n
    out[totals <= 0] = np.nan
    return out


def displacement(c0: np.ndarray, c1: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Shortest displacement from ``c0`` to ``c1`` on an H x W torus.

    Args:
        c0: float[..., 2] start positions (y, x).
        c1: float[..., 2] end positions (y, x).
        shape: (H, W) of the board.

    Returns:
        float64[..., 2], each component in [-n/2, n/2).
    """
    period = np.asarray(shape, dtype=np.float64)
    delta = np.asarray(c1, dtype=np.float64) - np.asarray(c0, dtype=np.float64)
    return (delta + period / 2.0) % period - period / 2.0
