"""Regeneration: how well a pattern grows, and how well it grows back after damage.

Pure functions of states and a step function; the neural-CA experiments log them
as ``emergence/loss_grown``, ``emergence/loss_damaged`` and
``emergence/loss_recovered``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["RegenerationResult", "pattern_loss", "regeneration"]


def pattern_loss(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the RGBA channels against the target, per state.

    Args:
        x: ``(B, H, W, C)`` states, channels 0-3 RGBA (premultiplied colour).
        target: ``(H, W, 4)`` premultiplied RGBA in [0, 1].
    Returns:
        ``(B,)`` losses.
    """
    if target.shape != (*x.shape[1:3], 4):
        raise ValueError(
            f"target shape {tuple(target.shape)} does not match the states' grid "
            f"{tuple(x.shape[1:3])} (expected (H, W, 4))"
        )
    return (x[..., :4] - target).square().mean(dim=(1, 2, 3))


@dataclass(frozen=True)
class RegenerationResult:
    """Losses along a grow -> damage -> recover run (each the mean over the batch).

    Attributes:
        loss_grown: after ``grow_steps`` from the seed.
        loss_damaged: right after the damage.
        loss_recovered: ``recover_steps`` after the damage.
        recovery_ratio: ``loss_recovered / loss_grown`` (1: as good as before).
        curve: mean loss after every step, ``grow_steps + recover_steps + 1`` values
            (index ``grow_steps`` is before the damage).
    """

    loss_grown: float
    loss_damaged: float
    loss_recovered: float
    recovery_ratio: float
    curve: list[float]


@torch.no_grad()
def regeneration(
    step: Callable[[torch.Tensor], torch.Tensor],
    seed: torch.Tensor,
    target: torch.Tensor,
    damage: Callable[[torch.Tensor], torch.Tensor],
    grow_steps: int,
    recover_steps: int = 100,
) -> RegenerationResult:
    """Grow from ``seed`` for ``grow_steps``, apply ``damage``, run ``recover_steps``.

    Args:
        step: one CA step, ``(B, H, W, C) -> (B, H, W, C)``.
        seed: ``(B, H, W, C)`` start states (a batch gives a mean over fire masks).
        target: ``(H, W, 4)`` premultiplied RGBA.
        damage: e.g. ``lambda x: erase_halves(x, "left")``.
    """
    if grow_steps < 0 or recover_steps < 0:
        raise ValueError(f"steps must be >= 0, got {grow_steps}, {recover_steps}")
    x = seed
    curve = [float(pattern_loss(x, target).mean())]
    for _ in range(grow_steps):
        x = step(x)
        curve.append(float(pattern_loss(x, target).mean()))
    grown = curve[-1]
    x = damage(x)
    damaged = float(pattern_loss(x, target).mean())
    for _ in range(recover_steps):
        x = step(x)
        curve.append(float(pattern_loss(x, target).mean()))
    recovered = curve[-1] if recover_steps else damaged
    return RegenerationResult(grown, damaged, recovered, recovered / max(grown, 1e-12), curve)
