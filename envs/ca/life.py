"""Life-like cellular automata on batched boards.

=================  ============================================================
World id           ``life`` (also ``highlife``, ``seeds``, ``daynight``)
State              ``uint8[B, H, W]`` boards, 1 = alive (bit-packed inside)
Observation        the boards, ``uint8[B, H, W]``
Actions            none (``step()`` / ``step(None)``)
Reward             zeros ``float32[B]``
Rules              any B/S rule (``B3/S23``, ``B36/S23``, ``B2/S``, ...)
Boundary           ``torus`` (wraps) or ``bounded`` (dead outside)
Kernels            bit-packed Numba (64 cells per word, when W % 64 == 0) or
                   byte Numba; both tested against a NumPy reference
=================  ============================================================

Example::

    world = LifeWorld(LifeConfig(size=512, rule="B36/S23", batch=4))
    boards = world.reset(seed=0)        # uint8[4, 512, 512]
    world.run(1000)                     # fast: no observations in between
    boards, *_ = world.step()
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from colonylab._checks import check_choice, check_dataclass_ints, check_optional_int
from colonylab.envs.base import StepResult, check_allocation, no_policy
from colonylab.envs.ca import _kernels as K
from colonylab.envs.ca.patterns import get_pattern, load_rle, stamp
from colonylab.envs.ca.rules import LifeRule


@dataclass(frozen=True)
class LifeConfig:
    """Configuration of a Life-like world."""

    size: int = 256
    """Side of a square board (used when ``height``/``width`` are not given)."""
    height: int | None = None
    """Board height in cells (default: ``size``)."""
    width: int | None = None
    """Board width in cells (default: ``size``); a multiple of 64 enables the bit-packed kernel."""
    batch: int = 1
    """Number of independent boards stepped together."""
    rule: str = "B3/S23"
    """B/S rule, e.g. B3/S23 (Life), B36/S23 (HighLife), B2/S (Seeds), or a rule name."""
    boundary: Literal["torus", "bounded"] = "torus"
    """``torus`` wraps around the edges; ``bounded`` treats cells outside as dead."""
    density: float = 0.35
    """Share of live cells in the random soup that ``reset`` draws."""
    pattern: str | None = None
    """A library pattern name (``glider``, ``gosper-glider-gun``, ...) or a path to an
    ``.rle`` file, placed at the centre of every board instead of a soup."""
    kernel: Literal["auto", "packed", "bytes"] = "auto"
    """``packed`` (64 cells per word; needs width % 64 == 0), ``bytes``, or ``auto``."""
    trail: float = 0.85
    """Rendering only: how slowly dead cells fade (0 = no trail)."""

    def __post_init__(self) -> None:
        LifeRule.parse(self.rule)  # raises InvalidRuleError naming the rule
        check_dataclass_ints(self, {"size": 1, "batch": 1}, cli=False)
        for name in ("height", "width"):
            check_optional_int(name, getattr(self, name), 3)
        if self.shape[0] < 3 or self.shape[1] < 3:
            raise ValueError(f"boards must be at least 3 x 3 cells, got {self.shape}")
        check_choice("boundary", self.boundary, ("torus", "bounded"))
        check_choice("kernel", self.kernel, ("auto", "packed", "bytes"))
        if self.kernel == "packed" and self.shape[1] % 64:
            raise ValueError(
                f"kernel='packed' needs a width that is a multiple of 64, got {self.shape[1]}; "
                "use kernel='bytes' or 'auto'"
            )
        if not 0.0 <= self.density <= 1.0:
            raise ValueError(f"density must be in [0, 1], got {self.density!r}")
        if not 0.0 <= self.trail < 1.0:
            raise ValueError(f"trail must be in [0, 1), got {self.trail!r}")
        if self.pattern is not None:
            cells = _load_pattern(self.pattern)  # unknown names / malformed RLE fail here
            h, w = self.shape
            if cells.shape[0] > h or cells.shape[1] > w:
                raise ValueError(
                    f"pattern {self.pattern!r} ({cells.shape[0]} x {cells.shape[1]} cells) does "
                    f"not fit a {h} x {w} board"
                )

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of one board."""
        return (self.height or self.size, self.width or self.size)

    @property
    def packed(self) -> bool:
        """Whether the bit-packed kernel is used."""
        return self.kernel == "packed" or (self.kernel == "auto" and self.shape[1] % 64 == 0)


_RULE_IDS = {
    "B3/S23": "colonylab/Life-v0",
    "B36/S23": "colonylab/HighLife-v0",
    "B2/S": "colonylab/Seeds-v0",
    "B3678/S34678": "colonylab/DayNight-v0",
}
"""Registered variants of :class:`LifeWorld` by rule: their ids (``metadata["name"]``)."""


class LifeWorld:
    """Batched Life-like boards stepped by Numba kernels (see the module docstring)."""

    # render_rgb() is the world's picture; "human" windows come from envs.render.Viewer
    metadata = {"name": "colonylab/Life-v0", "render_fps": 30, "render_modes": ["rgb_array"]}
    policies: tuple[str, ...] = ()
    """No agents, no scripted policies: ``step()`` takes no actions."""

    def policy(self, name: str, seed: int | None = None) -> Any:
        """Cellular automata have no agents, hence no scripted policies: always a
        ``ValueError``."""
        raise no_policy(self, name)

    def __init__(self, config: LifeConfig | None = None) -> None:
        self.config = config or LifeConfig()
        self.rule = LifeRule.parse(self.config.rule)
        self._birth, self._survive = self.rule.masks()
        self._torus = self.config.boundary == "torus"
        b = self.config.batch
        h, w = self.config.shape
        cells = b * h * w
        # two state buffers + one unpacked observation + render buffers for one board
        per_cell = (2 / 8 + 1) if self.config.packed else 3
        check_allocation(
            int(cells * per_cell + h * w * 8),
            f"Life world of {b} board(s) of {h} x {w} cells",
        )
        if self.config.packed:
            self._a = np.zeros((b, h, w // 64), dtype=K.WORD_DTYPE)
        else:
            self._a = np.zeros((b, h, w), dtype=K.CELL_DTYPE)
        self._b = np.zeros_like(self._a)
        self._counts = np.zeros(b, dtype=np.int64)
        self._board = np.zeros((b, h, w), dtype=K.CELL_DTYPE)
        self._board_step = -1
        self._trail: np.ndarray | None = None
        self._prev_available = False
        self.step_count = 0
        self.view_index = 0  # which board render_rgb shows
        self.metadata = {
            **LifeWorld.metadata,
            "name": _RULE_IDS.get(self.rule.notation, LifeWorld.metadata["name"]),
        }

    # -- state -------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """``(batch, height, width)``."""
        return (self.config.batch, *self.config.shape)

    @property
    def board(self) -> np.ndarray:
        """The current boards, ``uint8[B, H, W]`` (unpacked lazily, cached per step).

        This is the world's own buffer, overwritten as the world steps; ``reset`` and
        ``step`` return copies.
        """
        if self._board_step != self.step_count:
            if self.config.packed:
                K.unpack_bits(self._a, self._board)
            else:
                self._board[...] = self._a
            self._board_step = self.step_count
        return self._board

    def set_board(self, board: np.ndarray) -> None:
        """Replace the state with ``board`` (``[H, W]`` for every board or ``[B, H, W]``)."""
        board = np.asarray(board)
        if board.ndim == 2:
            board = np.broadcast_to(board, self.shape)
        if board.shape != self.shape:
            raise ValueError(f"board shape {board.shape} does not match the world {self.shape}")
        if board.size and (board.min() < 0 or board.max() > 1):
            raise ValueError("board values must be 0 (dead) or 1 (alive)")
        cells = np.ascontiguousarray(board, dtype=K.CELL_DTYPE)
        if self.config.packed:
            K.pack_bits(cells, self._a)
        else:
            self._a[...] = cells
        self._board_step = -1
        self._prev_available = False
        self._trail = None

    # -- World API -----------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> np.ndarray:
        """Start again from the configured pattern or a random soup; returns the boards."""
        rng = np.random.default_rng(seed)
        b, h, w = self.shape
        if self.config.pattern:
            cells = _load_pattern(self.config.pattern)
            board = np.zeros((h, w), dtype=K.CELL_DTYPE)
            stamp(board, cells, (h - cells.shape[0]) // 2, (w - cells.shape[1]) // 2)
        else:
            board = (rng.random((b, h, w), dtype=np.float32) < self.config.density).astype(
                K.CELL_DTYPE
            )
        self.step_count = 0
        self.set_board(board)
        return self.board.copy()

    def step(self, actions: None = None) -> StepResult:
        """Advance every board one step; returns the new boards."""
        if actions is not None:
            raise ValueError(f"Life worlds take no actions, got {type(actions).__name__}")
        self.run(1)
        b = self.config.batch
        return StepResult(
            self.board.copy(),  # a copy: the cached board changes with the next step
            np.zeros(b, dtype=np.float32),
            np.zeros(b, dtype=bool),
            np.zeros(b, dtype=bool),
            {},
        )

    def run(self, steps: int) -> None:
        """Advance ``steps`` steps inside the kernel (no observations in between)."""
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        if steps == 0:
            return
        runner = K.life_run_packed if self.config.packed else K.life_run_bytes
        where = runner(self._a, self._b, steps, self._birth, self._survive, self._torus)
        if where == 1:
            self._a, self._b = self._b, self._a
        # the last kernel step read from the other buffer: it now holds the previous state
        self._prev_available = True
        self.step_count += steps

    # -- measurements ------------------------------------------------------------------
    def population(self) -> np.ndarray:
        """Live cells per board, ``int64[B]``."""
        if self.config.packed:
            K.popcount_boards(self._a, self._counts)
            return self._counts.copy()
        return self._a.reshape(self.config.batch, -1).sum(axis=1, dtype=np.int64)

    def activity(self) -> np.ndarray:
        """Share of cells that changed in the last single step, ``float64[B]`` (NaN if unknown)."""
        b, h, w = self.shape
        if not self._prev_available:
            return np.full(b, np.nan)
        if self.config.packed:
            K.popcount_xor_boards(self._a, self._b, self._counts)
            changed = self._counts
        else:
            changed = (self._a != self._b).reshape(b, -1).sum(axis=1)
        return changed / (h * w)

    def metrics(self) -> dict[str, float]:
        """Population, density and activity of the shown board (entropy etc.: ``emergence``)."""
        i = self.view_index
        pop = self.population()
        h, w = self.config.shape
        out = {
            "population": int(pop[i]),
            "density": float(pop[i]) / (h * w),
            "activity": float(self.activity()[i]),
        }
        if self.config.batch > 1:
            out["mean_population"] = float(pop.mean())
        return out

    # -- rendering --------------------------------------------------------------------------
    def render_rgb(self) -> np.ndarray:
        """The shown board as ``uint8[H, W, 3]``: live cells bright, dead ones fading."""
        board = self.board[self.view_index]
        decay = self.config.trail
        if self._trail is None or self._trail.shape != board.shape:
            self._trail = board.astype(np.float32)
        else:
            np.multiply(self._trail, decay, out=self._trail)
            np.maximum(self._trail, board, out=self._trail)
        level = np.minimum((self._trail * 255.0), 255).astype(np.uint8)
        return _LIFE_LUT[level]

    def handle_key(self, name: str) -> bool:
        """``[`` / ``]`` switch the board shown."""
        if name in ("[", "]"):
            step = 1 if name == "]" else -1
            self.view_index = (self.view_index + step) % self.config.batch
            self._trail = None
            return True
        return False

    def handle_click(self, x: int, y: int, button: int) -> None:
        """Left click toggles a cell; right click drops a glider."""
        board = self.board.copy()
        i = self.view_index
        if button == 3:
            stamp(board[i], get_pattern("glider"), y - 1, x - 1, wrap=True)
        else:
            board[i, y % board.shape[1], x % board.shape[2]] ^= 1
        self.set_board(board)


def _load_pattern(pattern: str) -> np.ndarray:
    """Cells of a library pattern name or an ``.rle`` file path."""
    path = Path(pattern)
    if path.suffix.lower() == ".rle" or path.exists():
        try:
            return load_rle(path).cells
        except FileNotFoundError as exc:
            raise ValueError(str(exc)) from None
    try:
        return get_pattern(pattern)
    except KeyError as exc:
        raise ValueError(f"{exc.args[0]}; or give a path to an .rle file") from None


def _make_lut() -> np.ndarray:
    """256-entry palette: level 255 = alive (warm white), lower = fading trail (teal to navy)."""
    t = np.linspace(0.0, 1.0, 256, dtype=np.float32)[:, None]
    dead = np.array([8, 10, 24], dtype=np.float32)
    trail = np.array([30, 120, 160], dtype=np.float32)
    lut = dead + (trail - dead) * t**1.5
    lut[255] = (250, 244, 220)
    return lut.astype(np.uint8)


_LIFE_LUT = _make_lut()
