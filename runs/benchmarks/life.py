"""Benchmark ``colony bench life``: Life cell updates per second.

The Numba kernels (bit-packed, 64 cells per word; and byte-per-cell) against a
NumPy reference step built from ``np.roll``, all in the same run, on square
boards (2048^2 and 8192^2 by default). Reports the ratio to NumPy because the
machines are shared and noisy. JSON: one record per board with ``size``,
``cells_per_s`` (packed kernel), ``numpy_cells_per_s``, ``ratio``, plus
``bytes_cells_per_s`` and ``bytes_ratio``.

Threads: ours runs on Numba's thread pool (``--threads``, default all cores); the NumPy
reference's ``np.roll`` / ``np.where`` are element-wise and run on one thread. The table
title and ``threads`` in the JSON (``{"ours", "baseline", ...}``) say so.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from colonylab.envs.ca import _kernels as K
from colonylab.envs.ca.rules import LifeRule
from colonylab.runs.common.bench import threads_info


@dataclass(frozen=True)
class Config:
    """Life kernel throughput against a NumPy reference."""

    sizes: tuple[int, ...] = (2048, 8192)
    """Board sides to measure (multiples of 64)."""
    rule: str = "B3/S23"
    """Rule stepped by every implementation."""
    min_time: float = 1.0
    """Seconds each implementation is timed for (at least one step)."""
    repeats: int = 3
    """Timed repeats; the best one counts (the least disturbed by other load)."""
    seed: int = 0
    """Seed of the random soups (density 0.3)."""
    json: str | None = None
    """Write the results to this JSON file."""
    threads: int | None = None
    """Numba threads (default: all cores)."""
    extra: dict[str, str] = field(default_factory=dict)
    """Free-form notes stored in the JSON."""


def numpy_life_step(board: np.ndarray, birth: np.ndarray, survive: np.ndarray) -> np.ndarray:
    """The reference: one toroidal Life-like step with ``np.roll`` (uint8[H, W])."""
    count = np.zeros(board.shape, dtype=np.uint8)
    for dy in (-1, 0, 1):
        rolled = np.roll(board, dy, axis=0)
        for dx in (-1, 0, 1):
            if dy or dx:
                count += np.roll(rolled, dx, axis=1)
    return np.where(board == 1, survive[count], birth[count])


def _time(fn, min_time: float, repeats: int) -> float:
    """Best seconds per call of ``fn(n)`` (which runs n steps), calibrated to ``min_time``."""
    n = 1
    while True:
        t0 = time.perf_counter()
        fn(n)
        dt = time.perf_counter() - t0
        if dt >= min_time / 4 or n >= 1 << 16:
            break
        n *= 2
    steps = max(1, int(n * min_time / max(dt, 1e-9)))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(steps)
        best = min(best, (time.perf_counter() - t0) / steps)
    return best


def measure(size: int, cfg: Config) -> dict[str, float]:
    """Cell updates per second of each implementation on one ``size x size`` board."""
    if size % 64:
        raise ValueError(f"board sides must be multiples of 64, got {size}")
    birth, survive = LifeRule.parse(cfg.rule).masks()
    rng = np.random.default_rng(cfg.seed)
    board = (rng.random((1, size, size), dtype=np.float32) < 0.3).astype(np.uint8)
    cells = size * size

    packed_a = np.empty((1, size, size // 64), dtype=K.WORD_DTYPE)
    K.pack_bits(board, packed_a)
    packed_b = np.empty_like(packed_a)
    bytes_a = board.copy()
    bytes_b = np.empty_like(bytes_a)
    K.life_run_packed(packed_a, packed_b, 2, birth, survive, True)  # compile / warm
    K.life_run_bytes(bytes_a, bytes_b, 2, birth, survive, True)

    # correctness guard: all three agree after a few steps
    ref = board[0]
    for _ in range(3):
        ref = numpy_life_step(ref, birth, survive)
    pa, pb = packed_a.copy(), packed_b.copy()
    K.pack_bits(board, pa)
    where = K.life_run_packed(pa, pb, 3, birth, survive, True)
    out = np.empty_like(board)
    K.unpack_bits(pb if where else pa, out)
    if not np.array_equal(out[0], ref):
        raise AssertionError("packed kernel disagrees with the NumPy reference")

    packed_s = _time(
        lambda n: K.life_run_packed(packed_a, packed_b, n, birth, survive, True),
        cfg.min_time,
        cfg.repeats,
    )
    bytes_s = _time(
        lambda n: K.life_run_bytes(bytes_a, bytes_b, n, birth, survive, True),
        cfg.min_time,
        cfg.repeats,
    )
    state = {"b": board[0]}

    def run_numpy(n: int) -> None:
        for _ in range(n):
            state["b"] = numpy_life_step(state["b"], birth, survive)

    numpy_s = _time(run_numpy, cfg.min_time, max(1, cfg.repeats - 1))
    return {
        "size": size,
        "cells_per_s": cells / packed_s,
        "numpy_cells_per_s": cells / numpy_s,
        "ratio": numpy_s / packed_s,
        "bytes_cells_per_s": cells / bytes_s,
        "bytes_ratio": numpy_s / bytes_s,
    }


def main(cfg: Config) -> list[dict[str, float]]:
    """Measure every size, print a table, write JSON when asked."""
    import numba

    if cfg.threads:
        numba.set_num_threads(cfg.threads)
    console = Console()
    results = []
    with console.status("benchmarking Life kernels...") as status:
        for size in cfg.sizes:
            status.update(f"benchmarking Life kernels on {size} x {size}...")
            results.append(measure(size, cfg))
    thread_info = threads_info(
        numba.get_num_threads(), 1, ours_library="Numba", baseline_library="NumPy"
    )
    table = Table(
        title=f"colony bench life ({cfg.rule}, torus; threads: ours {thread_info['ours']} "
        "(Numba), NumPy 1)"
    )
    for col in ("board", "packed cells/s", "bytes cells/s", "NumPy cells/s", "packed/NumPy"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(
            f"{r['size']}^2",
            f"{r['cells_per_s']:.3g}",
            f"{r['bytes_cells_per_s']:.3g}",
            f"{r['numpy_cells_per_s']:.3g}",
            f"{r['ratio']:.1f}x",
        )
    console.print(table)
    if cfg.json:
        payload = {
            "suite": "life",
            "rule": cfg.rule,
            "threads": thread_info,
            "machine": platform.machine(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "numba": numba.__version__,
            "results": results,
            **({"notes": cfg.extra} if cfg.extra else {}),
        }
        path = Path(cfg.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2))
        console.print(f"wrote [bold]{path}[/]")
    return results


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
