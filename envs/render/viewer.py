"""The pygame viewer every Colony Lab world shares, and headless rollout recording.

``Viewer`` shows any object with the :class:`colonylab.envs.base.World` interface
(``render_rgb``, ``step``, ``metrics``, ``step_count``, ``metadata``): a window (or
an off-screen surface when headless) with zoom, pan, pause, screenshots, MP4
recording and a metrics overlay. ``record_rollout`` is the headless path behind
``colony watch`` when there is no display.

=============================  ==============================================
Key / mouse                    Action
=============================  ==============================================
space                          pause / resume
``.`` (or right arrow, paused) single step
``+`` / ``=``, ``-``           faster / slower (fps up to 60, then steps/frame)
mouse wheel                    zoom about the cursor (fit .. 32 px per cell)
left-drag, arrows, W A D, S*   pan  (*shift+S: plain ``s`` is screenshot)
``0``                          fit the world to the window
``s``                          screenshot PNG into ``media_dir``
``r``                          start / stop an MP4 recording into ``media_dir``
``h``                          help panel
``o``                          overlay (stats panel + minimap) on / off
``q`` / Esc                    quit
click (no drag)                ``world.handle_click(x, y, button)``
any other key                  ``world.handle_key(name)``
=============================  ==============================================

Only the visible part of the world picture is cropped (and, below one pixel per
cell, strided) before pygame scales it, so huge worlds stay interactive.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402  (the prompt variable must be set before the import)

from colonylab.envs.render.recorder import ClosesOnExit, VideoRecorder, save_png  # noqa: E402

__all__ = ["NoDisplayError", "Viewer", "display_available", "record_rollout"]

_HEADLESS_DRIVERS = ("dummy", "offscreen")
_BACKGROUND = (28, 28, 34)
_TEXT = (235, 235, 235)
_TEXT_DIM = (170, 176, 190)
_ACCENT = (255, 196, 64)
_PANEL_ALPHA = 165
_MONO_FONTS = "dejavusansmono,liberationmono,menlo,consolas,couriernew,monospace"
_DRAG_THRESHOLD_PX = 4
_MAX_METRIC_LINES = 24

_HELP_LINES: tuple[tuple[str, str], ...] = (
    ("space", "pause / resume"),
    (". / right", "single step (when paused)"),
    ("+ / -", "faster / slower"),
    ("wheel", "zoom about the cursor"),
    ("drag, arrows", "pan  (also W A D, shift+S)"),
    ("0", "fit world to window"),
    ("s", "screenshot (PNG)"),
    ("r", "start / stop MP4 recording"),
    ("o", "overlay on / off"),
    ("h", "this help"),
    ("q / Esc", "quit"),
    ("click", "sent to the world"),
)


class NoDisplayError(RuntimeError):
    """A window was requested but there is no display to open it on."""


def display_available() -> bool:
    """Whether a pygame window can be opened here.

    Returns:
        False when ``SDL_VIDEODRIVER`` is ``dummy`` / ``offscreen``, or on Linux when
        neither ``DISPLAY`` nor ``WAYLAND_DISPLAY`` is set; True otherwise.
    """
    if os.environ.get("SDL_VIDEODRIVER", "").strip().lower() in _HEADLESS_DRIVERS:
        return False
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


# Headless viewers share one dummy-driver display; the last one to close shuts it down
# and restores SDL_VIDEODRIVER, so a later windowed viewer in the same process works.
_headless_users = 0
_headless_owned = False
_saved_driver: str | None = None


def _acquire_headless_display() -> None:
    global _headless_users, _headless_owned, _saved_driver
    if _headless_users == 0 and not pygame.display.get_init():
        _saved_driver = os.environ.get("SDL_VIDEODRIVER")
        os.environ["SDL_VIDEODRIVER"] = "dummy"
        pygame.display.init()
        _headless_owned = True
    _headless_users += 1


def _release_headless_display() -> None:
    global _headless_users, _headless_owned
    _headless_users = max(0, _headless_users - 1)
    if _headless_users == 0 and _headless_owned:
        pygame.display.quit()
        if _saved_driver is None:
            os.environ.pop("SDL_VIDEODRIVER", None)
        else:
            os.environ["SDL_VIDEODRIVER"] = _saved_driver
        _headless_owned = False


_font_cache: dict[int, pygame.font.Font] = {}
_font_path: str | None | bool = False  # False = not looked up yet


def _font(size: int) -> pygame.font.Font:
    global _font_path
    if not pygame.font.get_init():
        pygame.font.init()
    if _font_path is False:
        try:
            _font_path = pygame.font.match_font(_MONO_FONTS)
        except Exception:  # font discovery shells out (fc-list); fall back quietly
            _font_path = None
    font = _font_cache.get(size)
    if font is None:
        font = pygame.font.Font(_font_path, size)  # type: ignore[arg-type]
        _font_cache[size] = font
    return font


def _format_value(value: Any) -> str:
    """Ints as ints, floats with 4 significant digits, anything else via ``str``."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isfinite(value) and abs(value) >= 1e4:
            return f"{value:,.0f}"  # 19,890 rather than 1.989e+04
        return f"{value:.4g}"
    if isinstance(value, np.ndarray) and value.size == 1:
        return _format_value(value.item())
    text = str(value)
    return text if len(text) <= 24 else text[:23] + "…"


def _check_world_frame(frame: Any, name: str) -> np.ndarray:
    if (
        not isinstance(frame, np.ndarray)
        or frame.ndim != 3
        or frame.shape[2] not in (3, 4)
        or frame.dtype != np.uint8
        or frame.shape[0] < 1
        or frame.shape[1] < 1
    ):
        desc = (
            f"{frame.dtype}{list(frame.shape)}"
            if isinstance(frame, np.ndarray)
            else type(frame).__name__
        )
        raise TypeError(f"{name}.render_rgb() returned {desc}; expected a uint8[H, W, 3] array")
    return frame[..., :3] if frame.shape[2] == 4 else frame


def _surface_from_rgb(rgb: np.ndarray) -> pygame.Surface:
    """Wrap a contiguous uint8[H, W, 3] array as a Surface (no per-pixel Python)."""
    rgb = np.ascontiguousarray(rgb)
    return pygame.image.frombuffer(rgb, (rgb.shape[1], rgb.shape[0]), "RGB")


class Viewer(ClosesOnExit):
    """Interactive (or headless) viewer for any Colony Lab world.

    Args:
        world: a ``World`` (``render_rgb``, ``step``, ``metrics``, ``step_count``,
            ``metadata``); ``handle_click`` / ``handle_key`` are used when present.
        window_size: (width, height) of the window / off-screen surface in pixels.
        fps: frames drawn per second; defaults to ``world.metadata["render_fps"]`` (else 30).
        steps_per_frame: world steps between two drawn frames.
        title: window caption; defaults to ``"Colony Lab - <world name>"``.
        headless: draw to an off-screen surface (``SDL_VIDEODRIVER=dummy``); None picks
            ``not display_available()``.
        overlay: show the stats panel (and minimap when zoomed in).
        metrics_fn: extra numbers for the stats panel, ``world -> dict`` (called when
            the picture is refreshed, after ``world.metrics()``); experiments pass
            emergence metrics this way, since worlds do not import them.
        media_dir: where ``s`` screenshots and ``r`` recordings go.

    Raises:
        NoDisplayError: ``headless=False`` but no display is available.
        ValueError / TypeError: for a bad argument or a world missing the interface.

    Attributes:
        paused, show_overlay, show_help, running: the interactive state flags.
        steps_per_frame, fps: the current speed (changed by ``+`` / ``-``).
    """

    MAX_ZOOM = 32.0
    MAX_FPS = 60.0
    MIN_FPS = 1.0
    MAX_STEPS_PER_FRAME = 1 << 14
    ZOOM_STEP = 1.25

    def __init__(
        self,
        world: Any,
        *,
        window_size: tuple[int, int] = (960, 720),
        fps: float | None = None,
        steps_per_frame: int = 1,
        title: str | None = None,
        headless: bool | None = None,
        overlay: bool = True,
        media_dir: str | Path = "runs/out/screenshots",
        metrics_fn: Callable[[Any], Mapping[str, Any]] | None = None,
    ) -> None:
        missing = [m for m in ("render_rgb", "step", "metrics") if not hasattr(world, m)]
        if missing:
            raise TypeError(
                f"{type(world).__name__} is not a World: it lacks {', '.join(missing)} "
                "(see colonylab.envs.base.World)"
            )
        size = tuple(window_size)
        if len(size) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 32 for v in size):
            raise ValueError(f"window_size={window_size!r} must be (width, height), ints >= 32")
        metadata: Mapping[str, Any] = getattr(world, "metadata", None) or {}
        if fps is None:
            fps = metadata.get("render_fps") or 30
        if not (isinstance(fps, (int, float, np.number)) and math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps={fps!r} must be a positive number")
        if (
            isinstance(steps_per_frame, bool)
            or not isinstance(steps_per_frame, (int, np.integer))
            or steps_per_frame < 1
        ):
            raise ValueError(f"steps_per_frame={steps_per_frame!r} must be an int >= 1")
        if headless is None:
            headless = not display_available()
        elif not headless and not display_available():
            raise NoDisplayError(
                "no display available (DISPLAY / WAYLAND_DISPLAY unset or SDL_VIDEODRIVER="
                f"{os.environ.get('SDL_VIDEODRIVER', '')!r}); use headless=True, or record a "
                "video instead (record_rollout / --record out.mp4)"
            )

        if metrics_fn is not None and not callable(metrics_fn):
            raise TypeError(f"metrics_fn must be callable world -> dict, got {metrics_fn!r}")
        self.metrics_fn = metrics_fn
        self.world = world
        self.name = str(metadata.get("name", type(world).__name__))
        self.title = title if title is not None else f"Colony Lab - {self.name}"
        self.headless = bool(headless)
        self.media_dir = Path(media_dir)
        self.fps = float(fps)
        self.steps_per_frame = int(steps_per_frame)
        self.paused = False
        self.show_overlay = bool(overlay)
        self.show_help = False
        self.running = True

        pygame.font.init()
        if self.headless:
            _acquire_headless_display()
            self.screen = pygame.Surface((int(size[0]), int(size[1])))
        else:
            pygame.display.init()
            self.screen = pygame.display.set_mode((int(size[0]), int(size[1])), pygame.RESIZABLE)
            pygame.display.set_caption(self.title)
            pygame.key.set_repeat(250, 30)
        self._closed = False
        self._last_size = self.screen.get_size()

        # World picture cache: re-rendered only when the world may have changed.
        self._world_frame: np.ndarray | None = None
        self._metrics: dict[str, Any] = {}
        self._frame_key: Any = None
        self._dirty = True

        # Camera: world coordinates of the window's top-left corner, pixels per cell.
        self._zoom = 1.0
        self._cam_x = 0.0
        self._cam_y = 0.0
        self._fit = True

        self._press: tuple[tuple[int, int], tuple[float, float]] | None = None
        self._dragging = False
        self._steps_taken = 0
        self._last_draw: float | None = None
        self._fps_ema = 0.0
        self._recorder: VideoRecorder | None = None

    # -- lifecycle (``with Viewer(...) as v:`` closes it: ClosesOnExit) -----------------
    def close(self) -> None:
        """Stop any recording and release the window / dummy display. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self.running = False
        self.stop_recording()
        if self.headless:
            _release_headless_display()
        elif pygame.display.get_init():
            pygame.display.quit()

    # -- geometry ----------------------------------------------------------------------
    @property
    def world_size(self) -> tuple[int, int]:
        """(width, height) of the world picture in cells (= pixels of ``render_rgb``)."""
        frame = self._ensure_frame()
        return frame.shape[1], frame.shape[0]

    @property
    def window_size(self) -> tuple[int, int]:
        """(width, height) of the window / off-screen surface."""
        return self.screen.get_size()

    @property
    def zoom(self) -> float:
        """Screen pixels per world cell."""
        self._ensure_frame()
        return self._zoom

    @property
    def fit_zoom(self) -> float:
        """The zoom at which the whole world just fits the window (the minimum zoom)."""
        w, h = self.world_size
        sw, sh = self.window_size
        return min(sw / w, sh / h)

    @property
    def max_zoom(self) -> float:
        """Largest zoom: 32 px per cell, or the fit zoom for tiny worlds."""
        return max(self.MAX_ZOOM, self.fit_zoom)

    @property
    def camera(self) -> tuple[float, float]:
        """World coordinates (x, y) shown at the window's top-left corner."""
        self._ensure_frame()
        return self._cam_x, self._cam_y

    def screen_to_world(self, sx: float, sy: float) -> tuple[float, float]:
        """Window pixel -> continuous world coordinates (cell ``(int(x), int(y))``)."""
        self._ensure_frame()
        return self._cam_x + sx / self._zoom, self._cam_y + sy / self._zoom

    def world_to_screen(self, wx: float, wy: float) -> tuple[float, float]:
        """Continuous world coordinates -> window pixel."""
        self._ensure_frame()
        return (wx - self._cam_x) * self._zoom, (wy - self._cam_y) * self._zoom

    def visible_rect(self) -> tuple[float, float, float, float]:
        """The part of the world on screen, (x0, y0, x1, y1) in world coordinates."""
        w, h = self.world_size
        sw, sh = self.window_size
        x0, y0 = max(0.0, self._cam_x), max(0.0, self._cam_y)
        x1 = min(float(w), self._cam_x + sw / self._zoom)
        y1 = min(float(h), self._cam_y + sh / self._zoom)
        return x0, y0, x1, y1

    def fit(self) -> None:
        """Zoom out so the whole world fits the window, centred."""
        self._ensure_frame()
        self._apply_fit()

    def _apply_fit(self) -> None:
        self._zoom = self.fit_zoom
        self._fit = True
        self._clamp_camera()

    def zoom_at(self, factor: float, screen_pos: tuple[float, float] | None = None) -> None:
        """Multiply the zoom by ``factor``, keeping the world point under ``screen_pos`` fixed.

        Args:
            factor: > 1 zooms in, < 1 out; the result is clamped to [fit_zoom, max_zoom].
            screen_pos: window pixel to zoom about; the window centre when None.
        """
        self._ensure_frame()
        if screen_pos is None:
            sw, sh = self.window_size
            screen_pos = (sw / 2, sh / 2)
        sx, sy = float(screen_pos[0]), float(screen_pos[1])
        wx, wy = self.screen_to_world(sx, sy)
        lo, hi = self.fit_zoom, self.max_zoom
        new_zoom = min(max(self._zoom * float(factor), lo), hi)
        self._fit = math.isclose(new_zoom, lo, rel_tol=1e-9)
        self._zoom = new_zoom
        self._cam_x = wx - sx / new_zoom
        self._cam_y = wy - sy / new_zoom
        self._clamp_camera()

    def pan(self, dx: float, dy: float) -> None:
        """Move the view by (dx, dy) window pixels (positive = towards larger world x / y)."""
        self._ensure_frame()
        self._cam_x += dx / self._zoom
        self._cam_y += dy / self._zoom
        self._clamp_camera()

    def _clamp_camera(self) -> None:
        w, h = self.world_size
        sw, sh = self.window_size
        view_w, view_h = sw / self._zoom, sh / self._zoom
        # A world narrower than the view is centred; otherwise the view stays inside it.
        if view_w >= w:
            self._cam_x = (w - view_w) / 2
        else:
            self._cam_x = min(max(self._cam_x, 0.0), w - view_w)
        if view_h >= h:
            self._cam_y = (h - view_h) / 2
        else:
            self._cam_y = min(max(self._cam_y, 0.0), h - view_h)

    # -- speed -------------------------------------------------------------------------
    def speed_up(self) -> None:
        """Double the fps up to ``MAX_FPS``, then double the steps per frame."""
        if self.fps < self.MAX_FPS:
            self.fps = min(self.fps * 2, self.MAX_FPS)
        else:
            self.steps_per_frame = min(self.steps_per_frame * 2, self.MAX_STEPS_PER_FRAME)

    def slow_down(self) -> None:
        """Halve the steps per frame down to 1, then halve the fps down to ``MIN_FPS``."""
        if self.steps_per_frame > 1:
            self.steps_per_frame //= 2
        else:
            self.fps = max(self.fps / 2, self.MIN_FPS)

    # -- world -------------------------------------------------------------------------
    def step_world(self, n: int = 1) -> int:
        """Advance the world ``n`` steps (``world.step()`` with no actions).

        Returns:
            The number of steps taken (``n``).
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n={n!r} must be an int >= 0")
        for _ in range(int(n)):
            self.world.step()
        self._steps_taken += int(n)
        if n:
            self._dirty = True
        return int(n)

    def refresh(self) -> None:
        """Forget the cached world picture (call after changing the world behind our back
        without changing its ``step_count``, e.g. ``reset`` at step 0)."""
        self._dirty = True

    def _ensure_frame(self) -> np.ndarray:
        key = getattr(self.world, "step_count", None)
        if self._world_frame is not None and not self._dirty and key == self._frame_key:
            return self._world_frame
        frame = _check_world_frame(self.world.render_rgb(), self.name)
        old = self._world_frame
        self._world_frame = frame
        self._metrics = dict(self.world.metrics())
        if self.metrics_fn is not None:
            self._metrics.update(self.metrics_fn(self.world))
        self._frame_key = key
        self._dirty = False
        if old is None or old.shape[:2] != frame.shape[:2]:
            self._apply_fit()
        return frame

    # -- drawing -----------------------------------------------------------------------
    def draw(self) -> None:
        """Compose the world, overlay, minimap and help onto the window (and show it).

        While recording, the composed frame is appended to the video.
        """
        if self._closed:
            raise RuntimeError("this Viewer is closed")
        self._ensure_frame()
        if not self.headless:
            surface = pygame.display.get_surface()
            if surface is not None and surface is not self.screen:
                self.screen = surface
            if self.screen.get_size() != self._last_size:
                self._on_resize()
        self._tick_fps()
        surf = self.screen
        self._draw_world(surf)
        if self.show_overlay:
            self._draw_minimap(surf)
            self._draw_stats(surf)
        if self.show_help:
            self._draw_help(surf)
        if self._recorder is not None:
            self._record_frame()
        if self._recorder is not None:
            self._draw_rec_marker(surf)  # after capture: the marker is not in the video
        if not self.headless:
            pygame.display.flip()

    def _on_resize(self) -> None:
        self._last_size = self.screen.get_size()
        if self._fit or self._zoom < self.fit_zoom:
            self._apply_fit()
        else:
            self._clamp_camera()

    def _tick_fps(self) -> None:
        now = time.perf_counter()
        if self._last_draw is not None:
            dt = max(now - self._last_draw, 1e-6)
            inst = 1.0 / dt
            self._fps_ema = inst if self._fps_ema == 0 else 0.9 * self._fps_ema + 0.1 * inst
        self._last_draw = now

    def _draw_world(self, surf: pygame.Surface) -> None:
        frame = self._world_frame
        assert frame is not None
        h, w = frame.shape[:2]
        sw, sh = surf.get_size()
        z = self._zoom
        surf.fill(_BACKGROUND)
        x0 = max(0, math.floor(self._cam_x))
        y0 = max(0, math.floor(self._cam_y))
        x1 = min(w, math.ceil(self._cam_x + sw / z))
        y1 = min(h, math.ceil(self._cam_y + sh / z))
        if x1 <= x0 or y1 <= y0:
            return
        dx0 = round((x0 - self._cam_x) * z)
        dy0 = round((y0 - self._cam_y) * z)
        dx1 = round((x1 - self._cam_x) * z)
        dy1 = round((y1 - self._cam_y) * z)
        # Below one pixel per cell, take every k-th cell first so pygame scales a small array.
        stride = max(1, int(1.0 / z)) if z < 1.0 else 1
        src = _surface_from_rgb(frame[y0:y1:stride, x0:x1:stride])
        size = (max(1, dx1 - dx0), max(1, dy1 - dy0))
        if src.get_size() != size:
            src = pygame.transform.scale(src, size)
        surf.blit(src, (dx0, dy0))

    def _font_size(self) -> int:
        return int(min(18, max(12, self.screen.get_height() // 40)))

    def _draw_stats(self, surf: pygame.Surface) -> None:
        font = _font(self._font_size())
        state = "PAUSED" if self.paused else "running"
        step = getattr(self.world, "step_count", self._steps_taken)
        rows: list[tuple[str, str]] = [
            ("step", _format_value(step)),
            ("speed", f"{self.steps_per_frame} step/frame"),
            ("fps", f"{self._fps_ema:.1f} / {self.fps:g}"),
            ("zoom", f"{self._zoom:.3g} px/cell"),
        ]
        # the world's own step counter is already the first row
        metrics = [(k, v) for k, v in self._metrics.items() if k not in ("step", "step_count")]
        extra = len(metrics) - _MAX_METRIC_LINES
        for key, value in metrics[:_MAX_METRIC_LINES]:
            label = str(key)
            rows.append((label if len(label) <= 28 else label[:27] + "…", _format_value(value)))
        if extra > 0:
            rows.append(("…", f"{extra} more"))

        line_h = font.get_linesize()
        pad, gap = 8, 12
        title = font.render(self.name, True, _ACCENT)
        status = font.render(state, True, _ACCENT if self.paused else _TEXT_DIM)
        keys = [font.render(k, True, _TEXT_DIM) for k, _ in rows]
        values = [font.render(v, True, _TEXT) for _, v in rows]
        key_w = max(s.get_width() for s in keys)
        val_w = max(s.get_width() for s in values)
        hint = font.render("h: help", True, _TEXT_DIM)
        width = max(title.get_width() + gap + status.get_width(), key_w + gap + val_w)
        width = max(width, hint.get_width()) + 2 * pad
        height = (len(rows) + 2) * line_h + 2 * pad + 4
        panel = pygame.Surface((width, height), pygame.SRCALPHA)
        panel.fill((0, 0, 0, _PANEL_ALPHA))
        panel.blit(title, (pad, pad))
        panel.blit(status, (width - pad - status.get_width(), pad))
        y = pad + line_h + 4
        for key_s, val_s in zip(keys, values, strict=True):
            panel.blit(key_s, (pad, y))
            panel.blit(val_s, (pad + key_w + gap, y))
            y += line_h
        panel.blit(hint, (pad, y))
        surf.blit(panel, (8, 8))

    def _draw_minimap(self, surf: pygame.Surface) -> None:
        frame = self._world_frame
        assert frame is not None
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = self.visible_rect()
        eps = 1e-6
        if x0 <= eps and y0 <= eps and x1 >= w - eps and y1 >= h - eps:
            return  # the whole world is on screen
        sw, sh = surf.get_size()
        side = int(min(200, max(64, min(sw, sh) // 4)))
        scale = side / max(w, h)
        # at least 8 px thick, so very elongated worlds still get a usable strip
        mw, mh = max(8, round(w * scale)), max(8, round(h * scale))
        sx, sy = mw / w, mh / h
        stride_x = max(1, int(1.0 / sx)) if sx < 1.0 else 1
        stride_y = max(1, int(1.0 / sy)) if sy < 1.0 else 1
        image = _surface_from_rgb(frame[::stride_y, ::stride_x])
        if image.get_size() != (mw, mh):
            image = pygame.transform.scale(image, (mw, mh))
        margin = 10
        left, top = sw - mw - margin, sh - mh - margin
        border = pygame.Surface((mw + 6, mh + 6), pygame.SRCALPHA)
        border.fill((0, 0, 0, _PANEL_ALPHA))
        surf.blit(border, (left - 3, top - 3))
        surf.blit(image, (left, top))
        rect = pygame.Rect(
            left + math.floor(x0 * sx),
            top + math.floor(y0 * sy),
            max(3, math.ceil((x1 - x0) * sx)),
            max(3, math.ceil((y1 - y0) * sy)),
        )
        pygame.draw.rect(surf, (255, 70, 70), rect, width=2)

    def _draw_help(self, surf: pygame.Surface) -> None:
        font = _font(self._font_size())
        line_h = font.get_linesize()
        pad, gap = 14, 18
        title = font.render("Colony Lab viewer - keys", True, _ACCENT)
        keys = [font.render(k, True, _ACCENT) for k, _ in _HELP_LINES]
        descs = [font.render(d, True, _TEXT) for _, d in _HELP_LINES]
        key_w = max(s.get_width() for s in keys)
        width = max(title.get_width(), key_w + gap + max(s.get_width() for s in descs)) + 2 * pad
        height = (len(_HELP_LINES) + 1) * line_h + 2 * pad + 6
        panel = pygame.Surface((width, height), pygame.SRCALPHA)
        panel.fill((0, 0, 0, 200))
        panel.blit(title, (pad, pad))
        y = pad + line_h + 6
        for key_s, desc_s in zip(keys, descs, strict=True):
            panel.blit(key_s, (pad, y))
            panel.blit(desc_s, (pad + key_w + gap, y))
            y += line_h
        sw, sh = surf.get_size()
        surf.blit(panel, ((sw - width) // 2, max(0, (sh - height) // 2)))

    def _draw_rec_marker(self, surf: pygame.Surface) -> None:
        font = _font(self._font_size())
        text = font.render("REC", True, (255, 90, 90))
        sw = surf.get_width()
        r = text.get_height() // 3
        x = sw - text.get_width() - 12
        pygame.draw.circle(surf, (230, 40, 40), (x - r - 6, 10 + text.get_height() // 2), r)
        surf.blit(text, (x, 10))

    def frame(self) -> np.ndarray:
        """The composed window content (world + overlay) as uint8[H, W, 3].

        Call ``draw()`` first to bring it up to date.
        """
        width, height = self.screen.get_size()
        data = pygame.image.tobytes(self.screen, "RGB")
        return np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3).copy()

    # -- media -------------------------------------------------------------------------
    def _media_path(self, suffix: str) -> Path:
        step = getattr(self.world, "step_count", self._steps_taken)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.name)
        path = self.media_dir / f"{safe}-step{step}-{stamp}{suffix}"
        n = 1
        while path.exists():
            path = self.media_dir / f"{safe}-step{step}-{stamp}-{n}{suffix}"
            n += 1
        return path

    def screenshot(self, path: str | Path | None = None) -> Path:
        """Draw and save the composed window as a PNG (default: a new file in ``media_dir``).

        Returns:
            The path written (also printed).
        """
        self.draw()
        target = save_png(
            Path(path) if path is not None else self._media_path(".png"), self.frame()
        )
        print(f"screenshot: {target}")
        return target

    @property
    def recording(self) -> bool:
        """Whether composed frames are being recorded."""
        return self._recorder is not None

    def start_recording(self, path: str | Path | None = None) -> Path:
        """Record every drawn frame to ``path`` (GIF / MP4; default a new MP4 in ``media_dir``).

        Returns:
            The video path (also printed).
        """
        self.stop_recording()
        target = Path(path) if path is not None else self._media_path(".mp4")
        self._recorder = VideoRecorder(target, fps=min(max(self.fps, 1.0), 60.0))
        print(f"recording: {target}")
        return target

    def stop_recording(self) -> Path | None:
        """Finish the current recording.

        Returns:
            Its path, or None when nothing was being recorded.
        """
        recorder, self._recorder = self._recorder, None
        if recorder is None:
            return None
        recorder.close()
        if recorder.frames_written:
            print(f"recorded {recorder.frames_written} frames: {recorder.path}")
        else:
            print(f"recording stopped before any frame was drawn; {recorder.path} not written")
        return recorder.path

    def _record_frame(self) -> None:
        assert self._recorder is not None
        shape = self._recorder.frame_shape
        frame = self.frame()
        if shape is not None and frame.shape != shape:
            print("window size changed: recording stopped (start a new one with r)")
            self.stop_recording()
            return
        self._recorder.add(frame)

    # -- events ------------------------------------------------------------------------
    def process_events(self) -> None:
        """Handle every pending pygame event (``pygame.event.get()``)."""
        for event in pygame.event.get():
            self.handle_event(event)

    def handle_event(self, event: pygame.event.Event) -> None:
        """Apply one pygame event (keys, mouse, wheel, resize, quit).

        Synthetic events may carry ``pos`` on ``MOUSEWHEEL`` (real ones use the mouse
        position) and may omit ``unicode`` / ``mod`` on ``KEYDOWN``.
        """
        kind = event.type
        if kind == pygame.QUIT:
            self.running = False
        elif kind == pygame.KEYDOWN:
            self._on_key(event)
        elif kind == pygame.MOUSEWHEEL:
            notches = getattr(event, "y", 0)
            if getattr(event, "flipped", False):
                notches = -notches
            if notches:
                pos = getattr(event, "pos", None) or pygame.mouse.get_pos()
                self.zoom_at(self.ZOOM_STEP**notches, pos)
        elif kind == pygame.MOUSEBUTTONDOWN:
            # Buttons 4-7 are the legacy wheel events pygame sends alongside MOUSEWHEEL.
            if event.button == 1:
                self._press = (tuple(event.pos), (self._cam_x, self._cam_y))
                self._dragging = False
            elif event.button in (2, 3):
                self._forward_click(event.pos, event.button)
        elif kind == pygame.MOUSEMOTION:
            if self._press is not None:
                (px, py), (cx, cy) = self._press
                dx, dy = event.pos[0] - px, event.pos[1] - py
                if self._dragging or abs(dx) + abs(dy) > _DRAG_THRESHOLD_PX:
                    self._dragging = True
                    self._cam_x = cx - dx / self._zoom
                    self._cam_y = cy - dy / self._zoom
                    self._clamp_camera()
        elif kind == pygame.MOUSEBUTTONUP:
            if event.button == 1:
                if self._press is not None and not self._dragging:
                    self._forward_click(self._press[0], 1)
                self._press = None
                self._dragging = False
        elif kind == pygame.VIDEORESIZE and not self.headless:
            surface = pygame.display.get_surface()
            if surface is not None:
                self.screen = surface
            self._on_resize()

    def _forward_click(self, pos: tuple[int, int], button: int) -> None:
        hook = getattr(self.world, "handle_click", None)
        if hook is None:
            return
        w, h = self.world_size
        wx, wy = self.screen_to_world(pos[0], pos[1])
        x, y = math.floor(wx), math.floor(wy)
        if 0 <= x < w and 0 <= y < h:
            hook(x, y, int(button))
            self._dirty = True

    def _on_key(self, event: pygame.event.Event) -> None:
        key = event.key
        char = getattr(event, "unicode", "") or ""
        shift = bool(getattr(event, "mod", 0) & pygame.KMOD_SHIFT)
        sw, sh = self.window_size
        pan_x, pan_y = sw / 8, sh / 8
        if key in (pygame.K_q, pygame.K_ESCAPE):
            self.running = False
        elif key == pygame.K_SPACE:
            self.paused = not self.paused
        elif key in (pygame.K_PERIOD, pygame.K_KP_PERIOD) or char == ".":
            self.paused = True
            self.step_world(1)
        elif key == pygame.K_RIGHT and self.paused:
            self.step_world(1)
        elif char == "+" or key in (pygame.K_PLUS, pygame.K_EQUALS, pygame.K_KP_PLUS):
            self.speed_up()
        elif char == "-" or key in (pygame.K_MINUS, pygame.K_KP_MINUS):
            self.slow_down()
        elif key in (pygame.K_0, pygame.K_KP0):
            self.fit()
        elif key == pygame.K_s and not shift:
            self.screenshot()
        elif key in (pygame.K_s, pygame.K_DOWN):
            self.pan(0, pan_y)
        elif key in (pygame.K_w, pygame.K_UP):
            self.pan(0, -pan_y)
        elif key in (pygame.K_a, pygame.K_LEFT):
            self.pan(-pan_x, 0)
        elif key in (pygame.K_d, pygame.K_RIGHT):
            self.pan(pan_x, 0)
        elif key == pygame.K_r:
            if self.recording:
                self.stop_recording()
            else:
                self.start_recording()
        elif key == pygame.K_h:
            self.show_help = not self.show_help
        elif key == pygame.K_o:
            self.show_overlay = not self.show_overlay
        else:
            hook = getattr(self.world, "handle_key", None)
            if hook is not None and hook(pygame.key.name(key)):
                self._dirty = True

    # -- main loop ---------------------------------------------------------------------
    def run(self, max_steps: int | None = None, record_path: str | Path | None = None) -> int:
        """Step and draw until quit (window) or ``max_steps`` world steps.

        Args:
            max_steps: stop after this many world steps; required when headless.
            record_path: also record the composed frames to this GIF / MP4.

        Returns:
            World steps taken during this call (single steps included).

        Raises:
            ValueError: headless without ``max_steps``, or a negative ``max_steps``.
        """
        if max_steps is not None and (
            isinstance(max_steps, bool)
            or not isinstance(max_steps, (int, np.integer))
            or max_steps < 0
        ):
            raise ValueError(f"max_steps={max_steps!r} must be an int >= 0 or None")
        if self.headless and max_steps is None:
            raise ValueError(
                "a headless Viewer has no window to close: pass max_steps=..., or use "
                "record_rollout(world, 'out.mp4', steps) to make a video"
            )
        start = self._steps_taken
        self.running = True
        if record_path is not None:
            self.start_recording(record_path)
        try:
            if self.headless:
                assert max_steps is not None
                self.draw()
                while self.running and self._steps_taken - start < max_steps:
                    remaining = max_steps - (self._steps_taken - start)
                    self.step_world(min(self.steps_per_frame, remaining))
                    self.draw()
            else:
                clock = pygame.time.Clock()
                self.draw()
                while self.running:
                    self.process_events()
                    if not self.running:
                        break
                    if not self.paused:
                        n = self.steps_per_frame
                        if max_steps is not None:
                            n = min(n, max_steps - (self._steps_taken - start))
                        self.step_world(max(0, n))
                    self.draw()
                    if max_steps is not None and self._steps_taken - start >= max_steps:
                        break
                    clock.tick(self.fps)
        finally:
            if record_path is not None:
                self.stop_recording()
        return self._steps_taken - start


def _auto_window_size(width: int, height: int, target: int = 768) -> tuple[int, int]:
    """A window around ``target`` px on the long side: integer zoom for small worlds."""
    long_side = max(width, height)
    scale = target / long_side if long_side >= target else float(max(1, target // long_side))
    w, h = max(320, round(width * scale)), max(240, round(height * scale))
    return w + w % 2, h + h % 2


def record_rollout(
    world: Any,
    path: str | Path | Sequence[str | Path],
    steps: int,
    *,
    fps: float = 30,
    every: int = 1,
    overlay: bool = True,
    window_size: tuple[int, int] | None = None,
    metrics_fn: Callable[[Any], Mapping[str, Any]] | None = None,
    on_frame: Callable[[Any], None] | None = None,
    progress: bool = True,
) -> Path:
    """Step a world headlessly and record the composed viewer frames to a GIF / MP4.

    Records the current state, then one frame every ``every`` steps (and the final
    state), so ``1 + ceil(steps / every)`` frames. The world is not reset.

    Args:
        world: any ``World``.
        path: output ``.gif`` or ``.mp4`` (parent directories are created), or a list
            of them: every file gets the same frames from one rollout.
        steps: world steps to take (>= 0).
        fps: playback rate of the video.
        every: world steps between recorded frames.
        overlay: include the stats overlay in the video.
        metrics_fn: extra overlay numbers, ``world -> dict`` (see ``Viewer``).
        on_frame: called as ``on_frame(world)`` before each recorded frame (logging).
        window_size: (width, height) of the frames; default ~768 px on the long side
            (integer zoom for small worlds).
        progress: show a rich progress bar.

    Returns:
        The video path (the first one, for a list).

    Raises:
        ValueError: for an unsupported extension or a bad ``steps`` / ``every``.
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps={steps!r} must be an int >= 0")
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise ValueError(f"every={every!r} must be an int >= 1")
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    if not paths:
        raise ValueError("record_rollout needs at least one output path")
    # refuses a bad extension before any work
    recorders = [VideoRecorder(p, fps=fps) for p in paths]
    if window_size is None:
        picture = _check_world_frame(world.render_rgb(), type(world).__name__)
        window_size = _auto_window_size(picture.shape[1], picture.shape[0])

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with (
        contextlib.ExitStack() as stack,
        Viewer(
            world,
            window_size=window_size,
            fps=fps,
            steps_per_frame=int(every),
            headless=True,
            overlay=overlay,
            metrics_fn=metrics_fn,
        ) as viewer,
        Progress(
            TextColumn("[bold]recording[/bold] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            disable=not progress,
        ) as bar,
    ):
        for recorder in recorders:
            stack.enter_context(recorder)
        task = bar.add_task(recorders[0].path.name, total=int(steps))

        def add_frame() -> None:
            frame = viewer.frame()
            for recorder in recorders:
                recorder.add(frame)

        if on_frame is not None:
            on_frame(world)
        viewer.draw()
        add_frame()
        done = 0
        while done < steps:
            done += viewer.step_world(min(int(every), int(steps) - done))
            if on_frame is not None:
                on_frame(world)
            viewer.draw()
            add_frame()
            bar.update(task, completed=done)
    return recorders[0].path
