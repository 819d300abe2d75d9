"""Rendering shared by the MuJoCo worlds (Ant, modular bodies): an offscreen renderer
with a one-line error when no OpenGL context can be opened, shadows and reflections
off, and the red tint of finished robots."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["DONE_TINT", "make_renderer", "tint_done"]

DONE_TINT = np.array([255, 170, 170], dtype=np.float32) / 255.0
"""Colour factor of a finished (fallen) robot's panel."""


def make_renderer(mj: Any, model: Any, height: int, width: int) -> Any:
    """``mujoco.Renderer(model, height, width)`` with shadows and reflections off.

    Raises:
        RuntimeError: MuJoCo could not open a rendering context (the message names the
            ``MUJOCO_GL`` tried; headless: ``MUJOCO_GL=egl`` or ``osmesa`` before
            MuJoCo is imported).
    """
    try:
        renderer = mj.Renderer(model, height, width)
    except Exception as exc:
        raise RuntimeError(
            f"MuJoCo cannot render here (MUJOCO_GL={os.environ.get('MUJOCO_GL')!r}): "
            f"{exc}; headless, set MUJOCO_GL=egl or osmesa before importing mujoco"
        ) from exc
    flags = renderer.scene.flags
    flags[mj.mjtRndFlag.mjRND_SHADOW] = False
    flags[mj.mjtRndFlag.mjRND_REFLECTION] = False
    return renderer


def tint_done(pixels: np.ndarray) -> np.ndarray:
    """The pixels of a finished robot, tinted red (``uint8``)."""
    return (pixels * DONE_TINT).astype(np.uint8)
