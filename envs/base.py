"""The array-first world interface every Colony Lab world implements.

A world owns its state as one array per attribute and steps everything at once.
Adapters (PettingZoo ``ParallelEnv``, Gymnasium ``Env``) sit on top; the viewer
(:mod:`colonylab.envs.render`) and the ``colony`` CLI only use what is here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass
class StepResult:
    """What ``World.step`` returns; unpacks like Gymnasium's 5-tuple.

    Attributes:
        obs: observations, leading axis = batch or agents.
        reward: float32[N] (zeros for worlds without rewards).
        terminated: bool[N].
        truncated: bool[N].
        info: extra, non-array-first data (never per-agent objects).
    """

    obs: Any
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def __iter__(self):
        return iter((self.obs, self.reward, self.terminated, self.truncated, self.info))


@runtime_checkable
class World(Protocol):
    """Array-first world.

    Required:
        ``reset(seed=None) -> obs``; ``step(actions=None) -> StepResult``;
        ``render_rgb() -> uint8[H, W, 3]`` (the picture of the whole world);
        ``metrics() -> dict[str, float]`` (numbers for overlays and logs);
        ``step_count: int``; ``metadata: dict`` with at least ``name`` and
        ``render_fps``.

    Optional hooks the viewer uses when present:
        ``handle_click(x, y, button)`` with world pixel coordinates and
        ``handle_key(name) -> bool`` for world-specific keys.
    """

    metadata: dict[str, Any]
    step_count: int

    def reset(self, seed: int | None = None) -> Any: ...

    def step(self, actions: Any = None) -> StepResult: ...

    def render_rgb(self) -> np.ndarray: ...

    def metrics(self) -> dict[str, float]: ...


class BoardTooLargeError(MemoryError, ValueError):
    """Raised before allocating when a requested world would not fit in memory."""


def available_memory_bytes() -> int:
    """Memory the OS says is available now (``MemAvailable``), else total RAM."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 1024**3


def check_allocation(nbytes: int, what: str, *, fraction: float = 0.8) -> None:
    """Refuse (before allocating) an allocation above ``fraction`` of free memory.

    Args:
        nbytes: bytes the world would allocate in total.
        what: a description of the request, e.g. ``"Life board 4 x 65536 x 65536"``.
        fraction: share of available memory a single world may take.

    Raises:
        BoardTooLargeError: naming the request, its size and the limit.
    """
    limit = int(available_memory_bytes() * fraction)
    if nbytes > limit:
        raise BoardTooLargeError(
            f"{what} needs {nbytes / 1024**3:.2f} GiB but only {limit / 1024**3:.2f} GiB "
            f"({fraction:.0%} of available memory) may be used; use a smaller board or batch."
        )
