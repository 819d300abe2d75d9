"""Four cellular automata side by side: the ``colony demo`` world.

=========  ==================================================================
Panel      What emerges
=========  ==================================================================
top-left   Life (B3/S23): Gosper's gun fires gliders into a random soup
top-right  Lenia: Orbium creatures glide and collide
bottom-l.  HighLife (B36/S23): the replicator copies itself
bottom-r.  Day & Night (B3678/S34678): blobs of either phase grow and merge
=========  ==================================================================

Each panel is its own world; this one steps them together, tiles their
pictures with labels, and prefixes their metrics (``life/population``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from colonylab._checks import check_dataclass_ints, check_int
from colonylab.envs.base import StepResult, no_policy
from colonylab.envs.ca.lenia import LeniaConfig, LeniaWorld
from colonylab.envs.ca.life import LifeConfig, LifeWorld
from colonylab.envs.ca.patterns import get_pattern, stamp


@dataclass(frozen=True)
class ShowcaseConfig:
    """Configuration of the four-panel showcase."""

    panel: int = 256
    """Side of each panel in cells (a multiple of 64, at least 128)."""
    gap: int = 4
    """Pixels between panels."""
    orbia: int = 4
    """Orbium creatures in the Lenia panel."""
    labels: bool = True
    """Draw each panel's name into the picture."""

    def __post_init__(self) -> None:
        check_int("panel", self.panel, 128)
        if self.panel % 64:
            raise ValueError(f"panel must be a multiple of 64 and >= 128, got {self.panel!r}")
        check_dataclass_ints(self, {"gap": 0, "orbia": 0}, cli=False)


class ShowcaseWorld:
    """Life, Lenia, HighLife and Day & Night stepped together (see module docstring)."""

    # render_rgb() is the world's picture; "human" windows come from envs.render.Viewer
    metadata = {"name": "colonylab/CAShowcase-v0", "render_fps": 30, "render_modes": ["rgb_array"]}
    policies: tuple[str, ...] = ()
    """No agents, no scripted policies."""

    def policy(self, name: str, seed: int | None = None) -> Any:
        """Cellular automata have no agents, hence no scripted policies: always a
        ``ValueError``."""
        raise no_policy(self, name)

    names = ("life", "lenia", "highlife", "daynight")
    titles = (
        "Life B3/S23: glider gun + soup",
        "Lenia: Orbium",
        "HighLife B36/S23: replicator",
        "Day & Night B3678/S34678",
    )

    def __init__(self, config: ShowcaseConfig | None = None) -> None:
        self.config = cfg = config or ShowcaseConfig()
        n = cfg.panel
        self.worlds = {
            "life": LifeWorld(LifeConfig(size=n, rule="B3/S23", density=0.3, boundary="bounded")),
            "lenia": LeniaWorld(LeniaConfig(size=n, init="orbia", num_creatures=cfg.orbia)),
            "highlife": LifeWorld(LifeConfig(size=n, rule="B36/S23", pattern="replicator")),
            "daynight": LifeWorld(LifeConfig(size=n, rule="B3678/S34678", density=0.5)),
        }
        self.step_count = 0
        self._labels: list[np.ndarray] | None = None

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> dict[str, np.ndarray]:
        """Reset every panel (panel ``i`` gets ``seed + i``); returns their states by name."""
        obs = {}
        for i, (name, world) in enumerate(self.worlds.items()):
            obs[name] = world.reset(seed=None if seed is None else seed + i)
        # Life panel (bounded): a gun near the top-left corner fires gliders down-right
        # into the soup kept to the lower half
        life = self.worlds["life"]
        board = life.board.copy()
        n = self.config.panel
        board[:, : n // 2, :] = 0
        stamp(board[0], get_pattern("gosper-glider-gun"), n // 8, 8)
        life.set_board(board)
        obs["life"] = life.board
        self.step_count = 0
        return obs

    def step(self, actions: None = None) -> StepResult:
        """Advance every panel one step."""
        if actions is not None:
            raise ValueError("the showcase takes no actions")
        obs = {name: world.step().obs for name, world in self.worlds.items()}
        self.step_count += 1
        zeros = np.zeros(len(self.worlds), dtype=np.float32)
        flags = np.zeros(len(self.worlds), dtype=bool)
        return StepResult(obs, zeros, flags, flags.copy(), {})

    def metrics(self) -> dict[str, float]:
        """Each panel's metrics, prefixed with its name."""
        out: dict[str, float] = {}
        keep = {"population", "activity", "mass", "speed"}
        for name, world in self.worlds.items():
            for key, value in world.metrics().items():
                if key in keep:
                    out[f"{name}/{key}"] = value
        return out

    def render_rgb(self) -> np.ndarray:
        """The four panels in a 2 x 2 grid: ``uint8[2n + gap, 2n + gap, 3]``."""
        n, gap = self.config.panel, self.config.gap
        side = 2 * n + gap
        frame = np.full((side, side, 3), 40, dtype=np.uint8)
        for i, world in enumerate(self.worlds.values()):
            y, x = (i // 2) * (n + gap), (i % 2) * (n + gap)
            frame[y : y + n, x : x + n] = world.render_rgb()
        if self.config.labels:
            self._draw_labels(frame)
        return frame

    def _draw_labels(self, frame: np.ndarray) -> None:
        if self._labels is None:
            self._labels = [
                _text_rgba(t, size=max(11, self.config.panel // 22)) for t in self.titles
            ]
        n, gap = self.config.panel, self.config.gap
        for i, label in enumerate(self._labels):
            y, x = (i // 2) * (n + gap) + 4, (i % 2) * (n + gap) + 4
            h, w = min(label.shape[0], n - 4), min(label.shape[1], n - 4)
            alpha = label[:h, :w, 3:4].astype(np.float32) / 255.0
            region = frame[y : y + h, x : x + w].astype(np.float32)
            region = region * (1 - 0.55 * (alpha > 0)) + label[:h, :w, :3] * alpha
            frame[y : y + h, x : x + w] = np.clip(region, 0, 255).astype(np.uint8)

    def panel_at(self, x: int, y: int) -> tuple[str, int, int] | None:
        """Which panel holds world pixel ``(x, y)``, and the cell inside it."""
        n, gap = self.config.panel, self.config.gap
        col, px = divmod(x, n + gap)
        row, py = divmod(y, n + gap)
        if px >= n or py >= n or not (0 <= col < 2 and 0 <= row < 2):
            return None
        return self.names[row * 2 + col], px, py

    def handle_click(self, x: int, y: int, button: int) -> None:
        """Forward a click to the panel under it (Life: toggle/glider, Lenia: Orbium/erase)."""
        hit = self.panel_at(x, y)
        if hit is not None:
            name, px, py = hit
            self.worlds[name].handle_click(px, py, button)


def _text_rgba(text: str, size: int) -> np.ndarray:
    """Render ``text`` with pygame's default font: ``uint8[h, w, 4]`` on transparent."""
    import os

    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    if not pygame.font.get_init():
        pygame.font.init()
    font = pygame.font.Font(None, int(size * 1.4))
    surf = font.render(text, True, (255, 255, 255))
    rgb = pygame.surfarray.array3d(surf).transpose(1, 0, 2)
    alpha = pygame.surfarray.array_alpha(surf).T[..., None]
    pad = np.zeros((rgb.shape[0] + 4, rgb.shape[1] + 8, 4), dtype=np.uint8)
    pad[2:-2, 4:-4, :3] = rgb
    pad[2:-2, 4:-4, 3:] = alpha
    pad[..., 3] = np.maximum(pad[..., 3], 1)  # a faint box behind the text
    return pad
