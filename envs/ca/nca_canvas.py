"""The neural-CA canvas: batched NCA states, seeding, damage and rendering.

=================  ============================================================
State              ``state: float32 (B, H, W, C)`` torch tensor, channels last;
                   channels 0-3 are RGBA, alpha (``alive_channel``) marks life
Rule               any callable ``state -> state`` (an NCA step from
                   ``colonylab.agents.nca``, wired by the experiment: worlds
                   import no agents); None leaves the state as it is
Step               ``step()`` applies the rule once under ``torch.no_grad``;
                   rewards are zeros, nothing terminates
Seeding            ``seed_cell``: one live cell (alpha and hidden channels 1,
                   RGB 0), by default in the centre; ``seed_fn`` replaces it
Damage             ``erase_disc`` (zero a disc), ``erase_half`` (zero the
                   left/right/top/bottom half), ``add_noise`` (Gaussian noise on
                   living cells); batched forms ``erase_discs`` / ``erase_halves``
                   for training
Rendering          ``render_rgb()``: RGBA composited on white (the papers'
                   convention ``rgb = 1 - a + rgb``), or one hidden channel in a
                   blue-white-red map; ``render_fn`` replaces it (digits votes)
Viewer             left click erases a disc, right click reseeds at the cell,
                   ``c``/``v`` next/previous channel shown (RGBA, then 4..C-1),
                   ``[``/``]`` batch element shown, ``n`` noise; ``key_fn`` gets
                   the other keys (switch target or digit)
=================  ============================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from colonylab.envs.base import StepResult

__all__ = [
    "CanvasConfig",
    "NCACanvas",
    "add_noise",
    "disc_mask",
    "erase_discs",
    "erase_halves",
    "rgba_to_rgb",
    "seed_cell",
]

HALVES = ("left", "right", "top", "bottom")


@dataclass(frozen=True)
class CanvasConfig:
    """A batch of NCA canvases."""

    height: int = 72
    """Rows of each canvas."""
    width: int = 72
    """Columns of each canvas."""
    channels: int = 16
    """State channels per cell (>= 4: RGBA first)."""
    batch: int = 1
    """Canvases stepped together."""
    alive_channel: int = 3
    """Channel that marks life (alpha)."""
    damage_radius: float = 0.15
    """Radius of the viewer's click-erased disc, as a share of the canvas width."""
    device: str = "cpu"
    """Torch device of the state."""

    def __post_init__(self) -> None:
        for name in ("height", "width", "batch"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not (isinstance(self.channels, int) and self.channels >= 4):
            raise ValueError(
                f"channels must be an integer >= 4 (RGBA first), got {self.channels!r}"
            )
        if not 0 <= self.alive_channel < self.channels:
            raise ValueError(
                f"alive_channel must be in [0, {self.channels}), got {self.alive_channel}"
            )
        if not 0.0 < self.damage_radius <= 1.0:
            raise ValueError(f"damage_radius must be in (0, 1], got {self.damage_radius}")


# -- pure operations on (B, H, W, C) states ---------------------------------------------------
def seed_cell(
    batch: int,
    height: int,
    width: int,
    channels: int,
    at: tuple[int, int] | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Zero states with one live cell at ``at = (row, col)`` (default: the centre):
    channels 3.. set to 1, RGB 0. Returns ``(B, H, W, C)``."""
    row, col = at if at is not None else (height // 2, width // 2)
    if not (0 <= row < height and 0 <= col < width):
        raise ValueError(f"seed cell {(row, col)} is outside the {height}x{width} canvas")
    x = torch.zeros(batch, height, width, channels, device=device)
    x[:, row, col, 3:] = 1.0
    return x


def disc_mask(
    height: int, width: int, centres: torch.Tensor, radii: torch.Tensor | float
) -> torch.Tensor:
    """``bool (B, H, W)``: cells within ``radii`` of ``centres`` (``(B, 2)`` as row, col;
    cells measured at their centres)."""
    centres = torch.as_tensor(centres, dtype=torch.float32)
    radii = torch.as_tensor(radii, dtype=torch.float32).reshape(-1, 1, 1)
    rows = torch.arange(height, dtype=torch.float32, device=centres.device).view(1, -1, 1)
    cols = torch.arange(width, dtype=torch.float32, device=centres.device).view(1, 1, -1)
    d2 = (rows - centres[:, 0].view(-1, 1, 1)) ** 2 + (cols - centres[:, 1].view(-1, 1, 1)) ** 2
    return d2 <= radii.to(centres.device) ** 2


def erase_discs(
    x: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor | float
) -> torch.Tensor:
    """Zero a disc in each state: ``x (B, H, W, C)``, ``centres (B, 2)`` (row, col)."""
    _check_state(x)
    mask = disc_mask(x.shape[1], x.shape[2], centres.to(x.device), radii)
    return x * (~mask).unsqueeze(-1)


def erase_halves(x: torch.Tensor, sides: str | list[str]) -> torch.Tensor:
    """Zero one half of each state (``left``, ``right``, ``top`` or ``bottom``; one side
    for all, or one per state)."""
    _check_state(x)
    b, h, w, _ = x.shape
    sides = [sides] * b if isinstance(sides, str) else list(sides)
    if len(sides) != b:
        raise ValueError(f"erase_halves needs one side per state ({b}), got {len(sides)}")
    keep = torch.ones(b, h, w, dtype=torch.bool, device=x.device)
    for i, side in enumerate(sides):
        if side == "left":
            keep[i, :, : w // 2] = False
        elif side == "right":
            keep[i, :, w // 2 :] = False
        elif side == "top":
            keep[i, : h // 2] = False
        elif side == "bottom":
            keep[i, h // 2 :] = False
        else:
            raise ValueError(f"side must be one of {HALVES}, got {side!r}")
    return x * keep.unsqueeze(-1)


def add_noise(
    x: torch.Tensor,
    scale: float,
    generator: torch.Generator | None = None,
    alive_channel: int = 3,
) -> torch.Tensor:
    """Gaussian noise of std ``scale`` on every channel of the living cells (alpha > 0)."""
    _check_state(x)
    if not (scale >= 0 and np.isfinite(scale)):
        raise ValueError(f"noise scale must be a finite number >= 0, got {scale!r}")
    noise = torch.randn(x.shape, generator=generator, device=x.device) * scale
    living = (x[..., alive_channel] > 0).unsqueeze(-1)
    return x + noise * living


def rgba_to_rgb(rgba: torch.Tensor | np.ndarray) -> np.ndarray:
    """``(..., 4)`` RGBA in [0, 1] composited on white -> ``uint8 (..., 3)``."""
    rgba = rgba.detach().cpu().numpy() if isinstance(rgba, torch.Tensor) else np.asarray(rgba)
    alpha = np.clip(rgba[..., 3:4], 0.0, 1.0)
    rgb = 1.0 - alpha + np.clip(rgba[..., :3], 0.0, 1.0)
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _channel_rgb(values: np.ndarray) -> np.ndarray:
    """A hidden channel in a blue (-1) / white (0) / red (+1) map: ``uint8 (H, W, 3)``."""
    v = np.clip(values, -1.0, 1.0)[..., None]
    pos = np.array([0.85, 0.15, 0.1], dtype=np.float32)
    neg = np.array([0.1, 0.3, 0.85], dtype=np.float32)
    rgb = np.where(v >= 0, 1.0 + v * (pos - 1.0), 1.0 - v * (neg - 1.0))
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _check_state(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[-1] < 4:
        shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
        raise ValueError(f"expected NCA states (B, H, W, C >= 4) as a tensor, got {shape}")


# -- the world ----------------------------------------------------------------------------
class NCACanvas:
    """A batch of NCA canvases stepped by a rule; see the module docstring.

    Args:
        rule: ``state (B, H, W, C) -> state``; None: the state never changes.
        config: canvas sizes and device.
        seed_fn: ``(canvas, at) -> state`` for reset and right-click reseeding, where
            ``at`` is the clicked ``(row, col)`` or None (default :func:`seed_cell`).
        render_fn: ``(canvas) -> uint8 (H, W, 3)``, replacing the RGBA/channel view.
        metrics_fn: ``(canvas) -> dict`` merged into :meth:`metrics` (e.g. loss to target).
        key_fn: ``(canvas, name) -> bool`` for keys the canvas does not use.
    """

    metadata: dict[str, Any] = {"name": "nca-canvas", "render_fps": 30}

    def __init__(
        self,
        rule: Callable[[torch.Tensor], torch.Tensor] | None = None,
        config: CanvasConfig | None = None,
        seed_fn: Callable[[NCACanvas, tuple[int, int] | None], torch.Tensor] | None = None,
        render_fn: Callable[[NCACanvas], np.ndarray] | None = None,
        metrics_fn: Callable[[NCACanvas], dict[str, float]] | None = None,
        key_fn: Callable[[NCACanvas, str], bool] | None = None,
    ) -> None:
        self.config = cfg = config or CanvasConfig()
        self.rule = rule
        self.seed_fn = seed_fn
        self.render_fn = render_fn
        self.metrics_fn = metrics_fn
        self.key_fn = key_fn
        self.device = torch.device(cfg.device)
        self.state = torch.zeros(cfg.batch, cfg.height, cfg.width, cfg.channels, device=self.device)
        self.step_count = 0
        self.view_index = 0  # batch element shown
        self.view_channel = -1  # -1: RGBA; k >= 4: hidden channel k
        self.generator = torch.Generator(device=self.device)
        self.damage_events = 0

    # -- episode ----------------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> torch.Tensor:
        """Seed every canvas; returns the state ``(B, H, W, C)``."""
        if seed is not None:
            self.generator.manual_seed(int(seed))
        self.step_count = 0
        self.state = self._seed(None)
        return self.state

    def _seed(self, at: tuple[int, int] | None) -> torch.Tensor:
        cfg = self.config
        if self.seed_fn is not None:
            state = self.seed_fn(self, at)
            _check_state(state)
            expected = (cfg.batch, cfg.height, cfg.width, cfg.channels)
            if tuple(state.shape) != expected:
                raise ValueError(
                    f"seed_fn returned shape {tuple(state.shape)}, expected {expected}"
                )
            return state.to(self.device)
        return seed_cell(cfg.batch, cfg.height, cfg.width, cfg.channels, at, self.device)

    def set_state(self, state: torch.Tensor) -> None:
        """Replace the state (same shape)."""
        _check_state(state)
        if state.shape != self.state.shape:
            raise ValueError(f"state shape {tuple(state.shape)} != {tuple(self.state.shape)}")
        self.state = state.to(self.device)

    def step(self, actions: Any = None) -> StepResult:
        """Apply the rule once (no gradients)."""
        if self.rule is not None:
            with torch.no_grad():
                self.state = self.rule(self.state)
        self.step_count += 1
        b = self.config.batch
        return StepResult(
            self.state,
            np.zeros(b, dtype=np.float32),
            np.zeros(b, dtype=bool),
            np.zeros(b, dtype=bool),
            {},
        )

    # -- damage (on the canvases in ``index``, default all) ---------------------------------
    def _indices(self, index: int | None) -> list[int]:
        if index is None:
            return list(range(self.config.batch))
        if not 0 <= index < self.config.batch:
            raise ValueError(f"canvas index {index} out of range [0, {self.config.batch})")
        return [index]

    def erase_disc(self, row: float, col: float, radius: float, index: int | None = None) -> None:
        """Zero every channel within ``radius`` cells of ``(row, col)``."""
        if not radius > 0:
            raise ValueError(f"radius must be > 0, got {radius!r}")
        idx = self._indices(index)
        centres = torch.tensor([[row, col]] * len(idx), dtype=torch.float32)
        self.state[idx] = erase_discs(self.state[idx], centres, radius)
        self.damage_events += 1

    def erase_half(self, side: str = "left", index: int | None = None) -> None:
        """Zero the ``left``, ``right``, ``top`` or ``bottom`` half."""
        idx = self._indices(index)
        self.state[idx] = erase_halves(self.state[idx], side)
        self.damage_events += 1

    def add_noise(self, scale: float = 0.1, index: int | None = None) -> None:
        """Gaussian noise on the living cells."""
        idx = self._indices(index)
        self.state[idx] = add_noise(
            self.state[idx], scale, self.generator, self.config.alive_channel
        )
        self.damage_events += 1

    def reseed(self, row: int | None = None, col: int | None = None) -> None:
        """Start every canvas again from a seed (at ``(row, col)`` when given)."""
        at = None if row is None or col is None else (int(row), int(col))
        self.state = self._seed(at)
        self.step_count = 0

    # -- viewing ----------------------------------------------------------------------------
    def render_rgb(self) -> np.ndarray:
        """``uint8 (H, W, 3)`` of the shown canvas: RGBA on white, or a hidden channel."""
        if self.render_fn is not None:
            return self.render_fn(self)
        cell = self.state[self.view_index]
        if self.view_channel < 0:
            return rgba_to_rgb(cell[..., :4])
        return _channel_rgb(cell[..., self.view_channel].detach().cpu().numpy())

    @property
    def view_name(self) -> str:
        """What ``render_rgb`` shows: ``rgba`` or ``channel k``."""
        return "rgba" if self.view_channel < 0 else f"channel {self.view_channel}"

    def handle_click(self, x: int, y: int, button: int) -> None:
        """Left click erases a disc; right (or middle) click reseeds at the cell."""
        cfg = self.config
        if button == 1:
            self.erase_disc(y, x, max(1.0, cfg.damage_radius * cfg.width))
        elif 0 <= y < cfg.height and 0 <= x < cfg.width:
            self.reseed(y, x)

    def handle_key(self, name: str) -> bool:
        """``c``/``v`` channel shown, ``[``/``]`` canvas shown, ``n`` noise; else ``key_fn``."""
        cfg = self.config
        if name in ("c", "v"):
            views = [-1, *range(4, cfg.channels)]
            k = views.index(self.view_channel) if self.view_channel in views else 0
            self.view_channel = views[(k + (1 if name == "c" else -1)) % len(views)]
            return True
        if name in ("[", "]"):
            self.view_index = (self.view_index + (1 if name == "]" else -1)) % cfg.batch
            return True
        if name == "n":
            self.add_noise(0.1)
            return True
        if self.key_fn is not None:
            return bool(self.key_fn(self, name))
        return False

    def metrics(self) -> dict[str, float]:
        """Living share of cells and mean alpha of the shown canvas, plus ``metrics_fn``."""
        cell = self.state[self.view_index]
        alpha = cell[..., self.config.alive_channel]
        out = {
            "alive_share": float((alpha > 0.1).float().mean()),
            "mean_alpha": float(alpha.clamp(0, 1).mean()),
        }
        if self.metrics_fn is not None:
            out.update(self.metrics_fn(self))
        return out
