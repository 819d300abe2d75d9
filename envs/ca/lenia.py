"""Lenia: Bert Wang-Chak Chan's continuous cellular automaton, batched, on a torus.

Each cell holds a value in [0, 1]. One step (Chan 2019, "Lenia - Biology of
Artificial Life", Complex Systems 28(3)):

    U = K * A                       (kernel convolution, by FFT, wrapping)
    A <- clip(A + G(U) / T, 0, 1)   (growth mapping G, Euler step dt = 1/T)

With the defaults (R=13, T=10, m=0.15, s=0.015, one exponential ring, gaussian
growth) an *Orbium* glides across the board.

=================  ==========================================================
World              ``lenia`` (``colonylab.envs.make("lenia", size=256)``)
Agents             none: the board evolves on its own
State / obs        ``state``: float32[B, H, W] in [0, 1]
Actions            none (``step()`` / ``step(None)``)
Reward             float32[B] zeros; terminated / truncated bool[B] False
Metrics            ``mass``, ``growth``, ``centroid_x``, ``centroid_y``, ``speed``
                   of the shown board (``view_index``, 0 by default)
Arguments          :class:`LeniaConfig`
=================  ==========================================================

The convolution multiplies the precomputed ``rfft2`` of the kernel with the
``rfft2`` of all boards at once; growth, update and clip are one parallel Numba
kernel (:func:`colonylab.envs.ca._kernels.lenia_update`) writing into a
preallocated buffer.
"""

from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colonylab.envs.base import StepResult, check_allocation, no_policy
from colonylab.envs.ca import _kernels as K

try:  # scipy.fft keeps float32 as complex64 and splits work over threads
    import scipy.fft as _fft

    _FFT_KW: dict[str, Any] = {"workers": os.cpu_count() or 1}
except ImportError:  # pragma: no cover - scipy is an optional extra
    _fft = np.fft
    _FFT_KW = {}

KERNEL_CORES = ("exponential", "polynomial", "step")
GROWTHS = ("gaussian", "polynomial", "step")
INITS = ("orbium", "random", "orbia", "empty")
_GROWTH_CODES = {
    "gaussian": K.GROWTH_GAUSSIAN,
    "polynomial": K.GROWTH_POLYNOMIAL,
    "step": K.GROWTH_STEP,
}
# Bytes per cell a step touches: state and potential (float32), the half-spectrum
# of the state (complex64, ~W/2 columns), FFT scratch and the observation copy.
_BYTES_PER_CELL = 24
DATA_DIR = Path(__file__).parent / "data"


def _choice(name: str, value: str, accepted: tuple[str, ...]) -> None:
    if value not in accepted:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(map(repr, accepted))}")


@dataclass(frozen=True)
class LeniaConfig:
    """Configuration of a batched Lenia world (immutable)."""

    size: int = 128
    """Side of a square board (used when ``height`` / ``width`` are not given)."""
    height: int | None = None
    """Board height H in cells (default: ``size``)."""
    width: int | None = None
    """Board width W in cells (default: ``size``)."""
    batch: int = 1
    """Number of independent boards B stepped together."""
    radius: int = 13
    """Kernel radius R in cells (the Orbium lives at R=13)."""
    time_resolution: float = 10.0
    """T: steps per unit of time; the Euler step is dt = 1/T."""
    growth_mu: float = 0.15
    """Growth centre m: the potential at which cells grow fastest."""
    growth_sigma: float = 0.015
    """Growth width s (> 0)."""
    ring_weights: tuple[float, ...] = (1.0,)
    """beta: peak height of each concentric kernel ring, innermost first."""
    kernel_core: str = "exponential"
    """Shape of one ring: "exponential" (exp(4 - 1/(r(1-r)))), "polynomial"
    ((4r(1-r))^4, Chan's quad4) or "step" (1 on [1/4, 3/4])."""
    growth: str = "gaussian"
    """Growth mapping G: "gaussian", "polynomial" (quad4) or "step"."""
    init: str = "orbium"
    """Initial boards: "orbium" (one Orbium in the middle of each board), "orbia"
    (``num_creatures`` Orbium at random positions and rotations), "random"
    (uniform noise at ``density``) or "empty"."""
    num_creatures: int = 1
    """How many Orbium "orbia" places on each board."""
    density: float = 0.5
    """Share of cells the "random" init gives a uniform value in [0, 1) (others are 0)."""
    seed: int = 0
    """Seed of the world's NumPy generator (random init and placements)."""
    colormap: str = "viridis"
    """Matplotlib colormap name for ``render_rgb`` (checked when first drawn)."""

    def __post_init__(self) -> None:
        for name in ("size", "height", "width", "batch", "radius"):
            value = getattr(self, name)
            if value is None and name in ("height", "width"):
                continue
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if not self.time_resolution > 0:
            raise ValueError(f"time_resolution={self.time_resolution!r} must be > 0")
        if not self.growth_sigma > 0:
            raise ValueError(f"growth_sigma={self.growth_sigma!r} must be > 0")
        if not math.isfinite(self.growth_mu):
            raise ValueError(f"growth_mu={self.growth_mu!r} must be a finite number")
        beta = tuple(float(b) for b in self.ring_weights)
        if not beta or any(b < 0 or not math.isfinite(b) for b in beta) or not any(beta):
            raise ValueError(
                f"ring_weights={self.ring_weights!r} must be a non-empty tuple of finite "
                "weights >= 0, not all zero"
            )
        object.__setattr__(self, "ring_weights", beta)
        _choice("kernel_core", self.kernel_core, KERNEL_CORES)
        _choice("growth", self.growth, GROWTHS)
        _choice("init", self.init, INITS)
        span = 2 * self.radius + 1
        height, width = self.shape
        if span > height or span > width:
            raise ValueError(
                f"radius={self.radius} needs a kernel of {span} x {span} cells but the board "
                f"is {height} x {width}; use a radius <= {(min(height, width) - 1) // 2} "
                "or a bigger board"
            )
        if not isinstance(self.num_creatures, int) or self.num_creatures < 0:
            raise ValueError(f"num_creatures={self.num_creatures!r} must be an integer >= 0")
        if not 0.0 <= self.density <= 1.0:
            raise ValueError(f"density={self.density!r} must be in [0, 1]")
        if not isinstance(self.colormap, str) or not self.colormap:
            raise ValueError(f"colormap={self.colormap!r} must be a colormap name")

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of one board."""
        return (self.height or self.size, self.width or self.size)

    @property
    def dt(self) -> float:
        """Euler time step 1/T."""
        return 1.0 / self.time_resolution


# --------------------------------------------------------------------------- kernel


def kernel_core(r: np.ndarray, core: str) -> np.ndarray:
    """Ring profile on r in [0, 1] (Chan 2019: exponential alpha=4, quad4, step).

    Args:
        r: float64[...] relative distance inside one ring.
        core: one of ``KERNEL_CORES``.

    Returns:
        float64[...] values in [0, 1], 0 at both ends for the smooth cores.
    """
    _choice("kernel_core", core, KERNEL_CORES)
    r = np.asarray(r, dtype=np.float64)
    if core == "exponential":
        q = r * (1.0 - r)
        with np.errstate(divide="ignore", over="ignore"):
            return np.where(q > 0, np.exp(4.0 - 1.0 / np.where(q > 0, q, 1.0)), 0.0)
    if core == "polynomial":
        return np.clip(4.0 * r * (1.0 - r), 0.0, None) ** 4
    return ((r >= 0.25) & (r <= 0.75)).astype(np.float64)


def lenia_kernel(
    radius: int, ring_weights: tuple[float, ...] = (1.0,), core: str = "exponential"
) -> np.ndarray:
    """The Lenia convolution kernel, normalised to sum 1.

    Concentric rings (Chan's shell): with k = len(ring_weights) and D = |offset| / R,
    ``K = [D < 1] * beta[min(floor(k D), k-1)] * core(k D mod 1)``.

    Args:
        radius: R in cells (>= 1).
        ring_weights: beta, one weight per ring.
        core: ring profile, one of ``KERNEL_CORES``.

    Returns:
        float64[2R+1, 2R+1], centred at ``[R, R]``.
    """
    if radius < 1:
        raise ValueError(f"radius={radius!r} must be >= 1")
    beta = np.asarray(ring_weights, dtype=np.float64)
    offsets = np.arange(-radius, radius + 1)
    dist = np.hypot(offsets[:, None], offsets[None, :]) / radius
    scaled = len(beta) * dist
    ring = np.minimum(np.floor(scaled).astype(np.int64), len(beta) - 1)
    kernel = (dist < 1) * beta[ring] * kernel_core(scaled % 1.0, core)
    total = kernel.sum()
    if total <= 0:
        raise ValueError(f"kernel with radius={radius}, ring_weights={ring_weights} is all zero")
    return kernel / total


def toroidal_kernel_fft(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``rfft2`` of a centred kernel wrapped onto an H x W torus (centre at [0, 0]).

    Multiplying a board's ``rfft2`` by this and inverting gives the circular
    convolution ``U[y, x] = sum_{dy,dx} kernel[c+dy, c+dx] * A[y-dy, x-dx]``.

    Args:
        kernel: float[kh, kw] with odd sides no larger than ``shape``.
        shape: (H, W) of the board.

    Returns:
        complex64[H, W // 2 + 1].
    """
    kh, kw = kernel.shape
    height, width = shape
    if kh % 2 == 0 or kw % 2 == 0 or kh > height or kw > width:
        raise ValueError(f"kernel of shape {kernel.shape} does not fit centred on {shape}")
    full = np.zeros(shape, dtype=np.float64)
    rows = np.arange(-(kh // 2), kh // 2 + 1) % height
    cols = np.arange(-(kw // 2), kw // 2 + 1) % width
    full[np.ix_(rows, cols)] = kernel
    return np.fft.rfft2(full).astype(np.complex64)


# --------------------------------------------------------------------------- patterns


@functools.cache
def _load_json(name: str) -> dict[str, Any]:
    path = DATA_DIR / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in DATA_DIR.glob("*.json"))
        raise ValueError(f"unknown Lenia pattern {name!r}; known patterns: {', '.join(known)}")
    with path.open(encoding="utf-8") as f:
        return json.load(f)


def load_pattern(name: str) -> tuple[np.ndarray, dict[str, Any]]:
    """A stored pattern and its parameters from ``envs/ca/data/<name>.json``.

    Returns:
        (cells float32[h, w] in [0, 1], parameters dict: R, T, m, s, b, ...).
    """
    data = _load_json(name)
    cells = np.asarray(data["cells"], dtype=np.float32)
    params = {k: v for k, v in data.items() if k != "cells"}
    return cells, params


def rescale(cells: np.ndarray, factor: float, order: int = 1) -> np.ndarray:
    """Resample a 2-D pattern by ``factor`` (like ``scipy.ndimage.zoom``, corners aligned).

    Args:
        cells: float[h, w].
        factor: size ratio (> 0); the output is ``round(h * factor) x round(w * factor)``.
        order: 0 nearest neighbour, 1 bilinear.

    Returns:
        float32[h', w'] clipped to [0, 1].
    """
    if not factor > 0:
        raise ValueError(f"factor={factor!r} must be > 0")
    if order not in (0, 1):
        raise ValueError(f"order={order!r} must be 0 (nearest) or 1 (bilinear)")
    out = np.asarray(cells, dtype=np.float64)
    for axis in (0, 1):
        n_in = out.shape[axis]
        n_out = max(1, round(n_in * factor))
        coords = np.linspace(0.0, n_in - 1, n_out) if n_out > 1 else np.zeros(1)
        if order == 0:
            out = np.take(out, np.rint(coords).astype(np.int64), axis=axis)
        else:
            lo = np.floor(coords).astype(np.int64)
            hi = np.minimum(lo + 1, n_in - 1)
            frac = coords - lo
            shape = [1, 1]
            shape[axis] = n_out
            frac = frac.reshape(shape)
            out = np.take(out, lo, axis=axis) * (1 - frac) + np.take(out, hi, axis=axis) * frac
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def orbium(rotation: int = 0, radius: int | None = None, order: int = 1) -> np.ndarray:
    """Chan's Orbium (published cell values, stored in ``data/orbium.json``).

    Args:
        rotation: degrees counter-clockwise, a multiple of 90.
        radius: kernel radius to scale the pattern to (default: its own R=13).
        order: resampling when scaling: 0 nearest, 1 bilinear.

    Returns:
        float32[h, w] in [0, 1] (20 x 20 at R=13).
    """
    if rotation % 90 != 0:
        raise ValueError(f"rotation={rotation!r} must be a multiple of 90 degrees")
    cells, params = load_pattern("orbium")
    if radius is not None and radius != params["R"]:
        if radius < 1:
            raise ValueError(f"radius={radius!r} must be >= 1")
        cells = rescale(cells, radius / params["R"], order=order)
    return np.ascontiguousarray(np.rot90(cells, k=(rotation // 90) % 4))


# --------------------------------------------------------------------------- world


def _torus_centroid(board: np.ndarray) -> tuple[float, float]:
    """Mass-weighted circular mean position (y, x) of one board; NaN when empty."""
    total = float(board.sum(dtype=np.float64))
    if total <= 0:
        return math.nan, math.nan
    out = []
    for axis, n in ((1, board.shape[0]), (0, board.shape[1])):
        profile = board.sum(axis=axis, dtype=np.float64)
        angle = 2 * np.pi * np.arange(n) / n
        mean = math.atan2(float(profile @ np.sin(angle)), float(profile @ np.cos(angle)))
        out.append((mean * n / (2 * np.pi)) % n)
    return out[0], out[1]


class LeniaWorld:
    """Batched Lenia on a torus; see the module docstring for the card.

    Attributes:
        config: the :class:`LeniaConfig`.
        state: float32[B, H, W] current boards in [0, 1] (updated in place: the same
            array for the world's lifetime).
        potential: float32[B, H, W] kernel convolution computed by the last step.
        kernel: float64[2R+1, 2R+1] the normalised kernel.
        step_count: steps since the last ``reset``.
        view_index: the board ``render_rgb`` draws and ``metrics`` measures (default 0).
    """

    # render_rgb() is the world's picture; "human" windows come from envs.render.Viewer
    metadata: dict[str, Any] = {
        "name": "colonylab/Lenia-v0",
        "render_fps": 30,
        "render_modes": ["rgb_array"],
    }
    policies: tuple[str, ...] = ()
    """No agents, no scripted policies."""

    def policy(self, name: str, seed: int | None = None) -> Any:
        """Cellular automata have no agents, hence no scripted policies: always a
        ``ValueError``."""
        raise no_policy(self, name)

    def __init__(self, config: LeniaConfig | None = None):
        self.config = config = config if config is not None else LeniaConfig()
        b, (h, w) = config.batch, config.shape
        check_allocation(b * h * w * _BYTES_PER_CELL, f"Lenia board {b} x {h} x {w}")
        self.kernel = lenia_kernel(config.radius, config.ring_weights, config.kernel_core)
        self.kernel_fft = toroidal_kernel_fft(self.kernel, (h, w))  # complex64[H, W//2+1]
        self._growth_code = _GROWTH_CODES[config.growth]
        self.state = np.zeros((b, h, w), dtype=K.FIELD_DTYPE)
        self.potential = np.zeros_like(self.state)
        self._row_growth = np.zeros((b, h), dtype=np.float64)
        self._rng = np.random.default_rng(config.seed)
        self.view_index = 0  # the board render_rgb shows and metrics measures
        self.step_count = 0
        self.reset(seed=config.seed)

    # -- protocol ------------------------------------------------------------------

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> np.ndarray:
        """Start again from ``config.init``.

        Args:
            seed: reseeds the world's generator; ``None`` continues its stream.
            options: unused (Gymnasium signature).

        Returns:
            float32[B, H, W] a copy of the new state.
        """
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        cfg = self.config
        self.state.fill(0.0)
        if cfg.init == "orbium":
            pattern = orbium(radius=cfg.radius)
            self.place(pattern, cfg.shape[0] // 2, cfg.shape[1] // 2)
        elif cfg.init == "orbia":
            for board in range(cfg.batch):
                self._scatter_orbia(board, cfg.num_creatures)
        elif cfg.init == "random":
            shape = self.state.shape
            alive = self._rng.random(shape) < cfg.density
            self.state[...] = self._rng.random(shape, dtype=np.float32) * alive
        self.potential.fill(0.0)
        self._row_growth.fill(0.0)
        self.step_count = 0
        self._last_centroid: tuple[int, float, float] | None = None
        return self.state.copy()

    def step(self, actions: Any = None) -> StepResult:
        """Advance every board one step.

        Args:
            actions: must be ``None`` (Lenia has no agents).

        Returns:
            StepResult with obs float32[B, H, W] (a copy of ``state``), zero rewards
            and all-False terminated / truncated, each of shape [B].
        """
        if actions is not None:
            raise ValueError(f"lenia takes no actions; got {type(actions).__name__}, pass None")
        self._advance()
        b = self.config.batch
        return StepResult(
            self.state.copy(),
            np.zeros(b, dtype=np.float32),
            np.zeros(b, dtype=bool),
            np.zeros(b, dtype=bool),
            {},
        )

    def run(self, n: int) -> None:
        """Advance ``n`` steps without building observations."""
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n={n!r} must be an integer >= 0")
        for _ in range(int(n)):
            self._advance()

    def _advance(self) -> None:
        cfg = self.config
        spectrum = _fft.rfft2(self.state, axes=(-2, -1), **_FFT_KW)  # complex64[B, H, W//2+1]
        np.multiply(spectrum, self.kernel_fft, out=spectrum)
        self.potential = _fft.irfft2(spectrum, s=cfg.shape, axes=(-2, -1), **_FFT_KW).astype(
            K.FIELD_DTYPE, copy=False
        )
        # the update is pointwise once the potential exists, so it runs in place
        K.lenia_update(
            self.state,
            self.potential,
            self.state,
            self._row_growth,
            float(cfg.growth_mu),
            float(cfg.growth_sigma),
            cfg.dt,
            self._growth_code,
        )
        self.step_count += 1

    def render_rgb(self) -> np.ndarray:
        """The shown board (``view_index``) through ``config.colormap``: uint8[H, W, 3].

        Raises:
            ValueError: if matplotlib does not know ``config.colormap``.
        """
        # imported here: the render package is only needed by worlds that are drawn
        from colonylab.envs.render.colormaps import apply_colormap

        return apply_colormap(self.state[self.view_index], self.config.colormap)

    def handle_key(self, name: str) -> bool:
        """Viewer hook: ``[`` / ``]`` switch the board shown (and measured)."""
        if name in ("[", "]"):
            step = 1 if name == "]" else -1
            self.view_index = (self.view_index + step) % self.config.batch
            self._last_centroid = None
            return True
        return False

    def metrics(self) -> dict[str, float]:
        """Numbers of the shown board (``view_index``) for overlays and logs.

        Returns:
            ``mass`` (sum of cells), ``growth`` (mean effective growth rate of the
            last step, (A_t - A_{t-1}) * T averaged over cells), ``centroid_y`` /
            ``centroid_x`` (toroidal circular mean, cells; NaN when empty) and
            ``speed`` (cells per step the centroid moved since the previous
            ``metrics()`` call, 0 on the first).
        """
        board = self.state[self.view_index]
        cy, cx = _torus_centroid(board)
        speed = 0.0
        last = self._last_centroid
        if last is not None and self.step_count > last[0] and math.isfinite(cy + last[1]):
            h, w = board.shape
            dy = (cy - last[1] + h / 2) % h - h / 2
            dx = (cx - last[2] + w / 2) % w - w / 2
            speed = math.hypot(dy, dx) / (self.step_count - last[0])
        if last is None or self.step_count != last[0]:
            self._last_centroid = (self.step_count, cy, cx)
        return {
            "mass": float(board.sum(dtype=np.float64)),
            "growth": float(self._row_growth[self.view_index].sum() / board.size),
            "centroid_y": cy,
            "centroid_x": cx,
            "speed": speed,
        }

    # -- editing -------------------------------------------------------------------

    def place(self, pattern: np.ndarray, y: int, x: int, board: int | None = None) -> None:
        """Stamp ``pattern`` centred at (y, x), wrapping around the edges.

        The pattern's rectangle replaces what was there.

        Args:
            pattern: float[h, w] values (clipped to [0, 1]); at most H x W.
            y: row of the pattern centre.
            x: column of the pattern centre.
            board: board index, or ``None`` for every board.
        """
        cells = np.asarray(pattern, dtype=np.float32)
        _, height, width = self.state.shape
        if cells.ndim != 2 or cells.shape[0] > height or cells.shape[1] > width:
            raise ValueError(
                f"pattern of shape {cells.shape} must be 2-D and fit the {height} x {width} board"
            )
        if board is not None and not -self.config.batch <= board < self.config.batch:
            raise ValueError(f"board={board!r} is out of range for batch={self.config.batch}")
        rows = (np.arange(cells.shape[0]) + int(y) - cells.shape[0] // 2) % height
        cols = (np.arange(cells.shape[1]) + int(x) - cells.shape[1] // 2) % width
        target = self.state if board is None else self.state[board][None]
        target[:, rows[:, None], cols[None, :]] = np.clip(cells, 0.0, 1.0)

    def handle_click(self, x: int, y: int, button: int) -> None:
        """Viewer hook on the shown board: left click drops an Orbium (random quarter turn,
        drawn from the world's generator); right / middle click erases a disc of radius R."""
        cfg = self.config
        if button == 1:
            rotation = 90 * int(self._rng.integers(4))
            self.place(orbium(rotation, radius=cfg.radius), y, x, self.view_index)
        elif button in (2, 3):
            r = cfg.radius
            offs = np.arange(-r, r + 1)
            disc = np.hypot(offs[:, None], offs[None, :]) <= r
            rows = (offs + int(y)) % cfg.shape[0]
            cols = (offs + int(x)) % cfg.shape[1]
            shown = self.state[self.view_index]
            region = shown[np.ix_(rows, cols)]
            region[disc] = 0.0
            shown[np.ix_(rows, cols)] = region

    def _scatter_orbia(self, board: int, count: int) -> None:
        """Place ``count`` Orbium at random positions / rotations, apart where possible."""
        cfg = self.config
        h, w = cfg.shape
        base = orbium(radius=cfg.radius)
        # Centres at least a pattern plus a kernel radius apart do not touch at once.
        min_dist = max(base.shape) + cfg.radius
        centres: list[tuple[int, int]] = []
        for _ in range(count):
            for _attempt in range(100):
                cy, cx = int(self._rng.integers(h)), int(self._rng.integers(w))
                if all(
                    math.hypot(
                        min(abs(cy - py), h - abs(cy - py)), min(abs(cx - px), w - abs(cx - px))
                    )
                    >= min_dist
                    for py, px in centres
                ):
                    break
            centres.append((cy, cx))
            rotation = 90 * int(self._rng.integers(4))
            self.place(np.rot90(base, k=rotation // 90), cy, cx, board)
