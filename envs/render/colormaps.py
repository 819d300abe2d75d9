"""Turning world state into RGB pictures: colormap LUTs, binary boards, nearest upscaling.

Every function here is vectorized NumPy (a table lookup or a broadcast), so it
stays cheap on 8192 x 8192 boards. Matplotlib is only imported the first time a
colormap LUT is built, and each LUT (256 x 3 uint8) is cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

__all__ = ["apply_colormap", "binary_rgb", "colormap_lut", "upscale_nearest"]

_LUT_SIZE = 256


@lru_cache(maxsize=32)
def _build_lut(name: str) -> np.ndarray:
    import matplotlib  # heavy; only needed once per colormap

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError:
        known = ", ".join(sorted(n for n in matplotlib.colormaps if not n.endswith("_r"))[:12])
        raise ValueError(
            f"unknown colormap {name!r}; use a matplotlib colormap name such as "
            f"{known}, ... (see matplotlib.colormaps)"
        ) from None
    rgba = cmap(np.linspace(0.0, 1.0, _LUT_SIZE))
    lut = np.rint(rgba[:, :3] * 255.0).astype(np.uint8)
    lut.setflags(write=False)
    return lut


def colormap_lut(name: str = "viridis") -> np.ndarray:
    """The cached 256-entry lookup table of a matplotlib colormap.

    Args:
        name: any name in ``matplotlib.colormaps`` (e.g. ``"viridis"``, ``"magma"``).

    Returns:
        uint8[256, 3], read-only; row ``i`` is the colour of value ``i / 255``.

    Raises:
        ValueError: if matplotlib does not know ``name``.
    """
    return _build_lut(str(name))


def apply_colormap(values: np.ndarray, name: str = "viridis") -> np.ndarray:
    """Map values in [0, 1] to RGB through a colormap.

    Values outside [0, 1] are clipped; NaN maps to the colour of 0.

    Args:
        values: float[..., H, W] (any real dtype), expected in [0, 1].
        name: a matplotlib colormap name.

    Returns:
        uint8[..., H, W, 3].

    Raises:
        ValueError: for an unknown colormap name.
    """
    lut = colormap_lut(name)
    values = np.asarray(values)
    index = np.nan_to_num(values.astype(np.float32, copy=False), nan=0.0)
    index = np.clip(index, 0.0, 1.0)
    index = (index * (_LUT_SIZE - 1) + 0.5).astype(np.uint8)
    return lut[index]


def _color(value: Sequence[int], what: str) -> tuple[int, int, int]:
    rgb = tuple(int(c) for c in value)
    if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
        raise ValueError(f"{what}={value!r} is not a colour; expected (r, g, b) with 0..255 each")
    return rgb  # type: ignore[return-value]


def binary_rgb(
    board: np.ndarray,
    alive: Sequence[int] = (255, 255, 255),
    dead: Sequence[int] = (0, 0, 0),
    *,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Colour a two-state board with a 2-entry lookup table.

    Any non-zero cell counts as alive.

    Args:
        board: uint8 / bool / int [..., H, W].
        alive: RGB colour of non-zero cells.
        dead: RGB colour of zero cells.
        out: optional preallocated uint8[..., H, W, 3] to write into (saves an allocation
            per frame in a viewer loop).

    Returns:
        uint8[..., H, W, 3] (``out`` when given).

    Raises:
        ValueError: for a colour outside 0..255 or an ``out`` of the wrong shape / dtype.
    """
    lut = np.array([_color(dead, "dead"), _color(alive, "alive")], dtype=np.uint8)
    board = np.asarray(board)
    if board.dtype == np.bool_:
        index = board.view(np.uint8)
    elif board.dtype == np.uint8:
        # 0/1 boards (the common case) index directly; anything larger is folded to 1.
        index = board if board.size == 0 or board.max() <= 1 else (board != 0).view(np.uint8)
    else:
        index = (board != 0).view(np.uint8)
    if out is not None:
        expected = (*board.shape, 3)
        if out.shape != expected or out.dtype != np.uint8:
            raise ValueError(
                f"out has shape {out.shape} and dtype {out.dtype}; expected uint8{list(expected)}"
            )
        np.take(lut, index, axis=0, out=out)
        return out
    return lut[index]


def upscale_nearest(frame: np.ndarray, factor: int) -> np.ndarray:
    """Enlarge an image by an integer factor, each pixel becoming a ``factor`` x ``factor`` block.

    Args:
        frame: [H, W] or [H, W, C] array of any dtype.
        factor: integer >= 1.

    Returns:
        [H * factor, W * factor] or [H * factor, W * factor, C], same dtype.

    Raises:
        ValueError: if ``factor`` is not a positive integer or ``frame`` is not 2-D / 3-D.
    """
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ValueError(f"factor={factor!r} must be an integer >= 1")
    frame = np.asarray(frame)
    if frame.ndim not in (2, 3):
        raise ValueError(f"frame has shape {frame.shape}; expected [H, W] or [H, W, C]")
    factor = int(factor)
    if factor == 1:
        return frame.copy()
    h, w = frame.shape[:2]
    rest = frame.shape[2:]
    blocks = np.broadcast_to(
        frame[:, None, :, None, ...], (h, factor, w, factor, *rest)
    )  # (H, f, W, f, [C])
    return blocks.reshape(h * factor, w * factor, *rest)
