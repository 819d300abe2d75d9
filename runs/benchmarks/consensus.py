"""Benchmark ``colony bench consensus``: density-ring cell updates/s and flock particle-steps/s.

Two suites, each against a plain NumPy reference in the same run:

* ``density``: the density-classification ring (radius 3, GKL's table through the general
  rule-table path, ``N = 149``, a batch of 65,536 starts) stepped bit-parallel by the
  Numba kernel (64 starts per word, a multiplexer tree over the table) against the NumPy
  reference step (``np.roll`` + table lookup, one byte per cell). Cell updates per
  second = ``N x starts x steps / seconds``. Goal: >= 1e9.
* ``flock``: Vicsek's model at 1,000,000 particles (density 4, radius 1: ~36 candidate
  neighbours in the 3 x 3 cells, ~13.6 within the radius), the Numba cell lists against
  a NumPy cell-list step (argsort by cell, then the 9 neighbour cells slot by slot,
  masked). Particle-steps per second. Goal: >= 1e7.

Each implementation is checked against the other before timing. Threads: ours runs on
Numba's thread pool (``--threads``, default all cores); the NumPy references are
element-wise array code on one thread. JSON: one record per suite with ``rate``
(ours), ``numpy_rate``, ``ratio`` and the sizes.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field

import numpy as np
from rich.console import Console
from rich.table import Table

from colonylab._checks import check_int
from colonylab.envs.consensus import density as D
from colonylab.envs.consensus.flock import FlockConfig, FlockWorld
from colonylab.runs.common.bench import threads_info, threads_text, write_json

SUITES = ("density", "flock")


@dataclass(frozen=True)
class Config:
    """Consensus-world throughput against NumPy references."""

    suites: tuple[str, ...] = SUITES
    """Which suites to run: density, flock."""
    lattice: int = 149
    """Density ring: cells per ring."""
    starts: int = 65_536
    """Density ring: starts stepped together (64 per word)."""
    rule: str = "gkl"
    """Density ring: the rule (through the general table kernel)."""
    particles: int = 1_000_000
    """Flock: particles."""
    noise: float = 2.0
    """Flock: Vicsek noise eta."""
    min_time: float = 1.0
    """Seconds each implementation is timed for (at least one step)."""
    repeats: int = 3
    """Timed repeats; the best one counts (the least disturbed by other load)."""
    seed: int = 0
    """Seed of the starts and flocks."""
    json: str | None = None
    """Write the results to this JSON file."""
    threads: int | None = None
    """Numba threads (default: all cores)."""
    extra: dict[str, str] = field(default_factory=dict)
    """Free-form notes stored in the JSON."""

    def __post_init__(self) -> None:
        check_int("--lattice", self.lattice, low=7)
        check_int("--starts", self.starts, low=1)
        check_int("--particles", self.particles, low=1)
        check_int("--repeats", self.repeats, low=1)
        for suite in self.suites:
            if suite not in SUITES:
                raise ValueError(f"suites must be among {SUITES}, got {suite!r}")


def _time(fn, min_time: float, repeats: int) -> float:
    """Best seconds per step of ``fn(n)`` (which runs n steps), calibrated to ``min_time``."""
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


def measure_density(cfg: Config) -> dict[str, float]:
    """Cell updates per second of the packed kernel and of the NumPy step."""
    n, batch = cfg.lattice, cfg.starts
    table = D.ring_rule_table(cfg.rule, 3)
    neighbours = D.ring_neighbours(n, 3)
    starts = D.random_starts(batch, n, np.random.default_rng(cfg.seed))
    words = D.pack(starts)
    # correctness guard: the kernel and the reference agree after a few steps
    check = D.pack(starts[:256])
    D.run_packed(check, neighbours, table, 5)
    ref = starts[:256]
    for _ in range(5):
        ref = D.ring_step_numpy(ref, table, 3)
    if not np.array_equal(D.unpack(check, 256), ref):
        raise AssertionError("packed density kernel disagrees with the NumPy reference")
    ours = _time(lambda k: D.run_packed(words, neighbours, table, k), cfg.min_time, cfg.repeats)
    state = {"cells": starts}

    def run_numpy(k: int) -> None:
        for _ in range(k):
            state["cells"] = D.ring_step_numpy(state["cells"], table, 3)

    numpy_s = _time(run_numpy, cfg.min_time, max(1, cfg.repeats - 1))
    cells = n * batch
    return {
        "suite": "density",
        "lattice": n,
        "starts": batch,
        "rule": cfg.rule,
        "rate": cells / ours,
        "numpy_rate": cells / numpy_s,
        "ratio": numpy_s / ours,
        "unit": "cell updates/s",
    }


def numpy_vicsek_step(
    pos: np.ndarray,
    theta: np.ndarray,
    box: float,
    radius: float,
    speed: float,
    noise: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The reference: one Vicsek step of one flock in plain NumPy with cell lists.

    Particles are sorted by cell (side >= ``radius``); for each of the 9 neighbour cells
    the candidates are visited slot by slot (slot ``k`` = the ``k``-th particle of that
    cell), masked where the cell has fewer. Returns the new ``(pos, theta)``.
    """
    m = max(1, int(box / radius))
    if m < 3:
        raise ValueError("the NumPy reference needs a box of at least 3 x 3 cells")
    ix = np.minimum((pos[:, 0] * (m / box)).astype(np.int64), m - 1)
    iy = np.minimum((pos[:, 1] * (m / box)).astype(np.int64), m - 1)
    cell = iy * m + ix
    order = np.argsort(cell, kind="stable")
    counts = np.bincount(cell, minlength=m * m)
    starts = np.concatenate([[0], np.cumsum(counts)])
    vx, vy = np.cos(theta), np.sin(theta)
    sx = np.zeros_like(theta)
    sy = np.zeros_like(theta)
    r2 = radius * radius
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            other = ((iy + dy) % m) * m + (ix + dx) % m
            first, size = starts[other], counts[other]
            for k in range(int(counts.max())):
                has = size > k
                j = order[np.where(has, first + k, 0)]
                ddx = pos[j, 0] - pos[:, 0]
                ddy = pos[j, 1] - pos[:, 1]
                ddx -= box * np.round(ddx / box)
                ddy -= box * np.round(ddy / box)
                near = has & (ddx * ddx + ddy * ddy <= r2)
                sx += np.where(near, vx[j], 0.0)
                sy += np.where(near, vy[j], 0.0)
    new_theta = np.arctan2(sy, sx) + noise
    new_theta = (new_theta + np.pi) % (2 * np.pi) - np.pi
    new_pos = pos + speed * np.stack([np.cos(new_theta), np.sin(new_theta)], axis=1)
    return new_pos % box, new_theta


def measure_flock(cfg: Config) -> dict[str, float]:
    """Particle-steps per second of the flock world and of the NumPy step."""
    fc = FlockConfig(n=cfg.particles, density=4.0, radius=1.0, noise=cfg.noise)
    world = FlockWorld(fc)
    world.reset(seed=cfg.seed)
    # neighbours per particle at the uniform start (later the flock clusters, by how much
    # depends on how many steps the timing ran)
    start_neighbours = float(world.neighbour_count().mean())
    # correctness guard on a small flock: one noiseless step agrees
    small = FlockWorld(FlockConfig(n=2000, density=4.0, noise=0.0))
    small.reset(seed=cfg.seed)
    pos, theta = small.pos.copy(), small.theta.copy()
    small.run(1)
    ref_pos, ref_theta = numpy_vicsek_step(
        pos, theta, small.config.box, 1.0, small.config.speed, np.zeros_like(theta)
    )
    if not (np.allclose(small.theta, ref_theta, atol=1e-9) and np.allclose(small.pos, ref_pos)):
        raise AssertionError("flock kernel disagrees with the NumPy reference")
    world.run(1)  # compile / warm
    ours = _time(world.run, cfg.min_time, cfg.repeats)
    rng = np.random.default_rng(cfg.seed)
    state = {"pos": world.pos.copy(), "theta": world.theta.copy()}

    def run_numpy(k: int) -> None:
        for _ in range(k):
            noise = rng.uniform(-cfg.noise / 2, cfg.noise / 2, state["theta"].shape)
            state["pos"], state["theta"] = numpy_vicsek_step(
                state["pos"], state["theta"], fc.box, 1.0, fc.speed, noise
            )

    numpy_s = _time(run_numpy, cfg.min_time, 1)
    return {
        "suite": "flock",
        "particles": cfg.particles,
        "density": 4.0,
        "radius": 1.0,
        "rate": cfg.particles / ours,
        "numpy_rate": cfg.particles / numpy_s,
        "ratio": numpy_s / ours,
        "unit": "particle-steps/s",
        "mean_neighbours": start_neighbours,
    }


def main(cfg: Config) -> list[dict[str, float]]:
    """Run the suites, print a table, write JSON when asked."""
    import numba

    if cfg.threads:
        numba.set_num_threads(cfg.threads)
    console = Console()
    results = []
    with console.status("benchmarking consensus worlds...") as status:
        if "density" in cfg.suites:
            status.update(f"density ring N={cfg.lattice}, {cfg.starts} starts...")
            results.append(measure_density(cfg))
        if "flock" in cfg.suites:
            status.update(f"flock of {cfg.particles} particles...")
            results.append(measure_flock(cfg))
    info = threads_info(numba.get_num_threads(), 1, ours_library="Numba", baseline_library="NumPy")
    table = Table(title=f"colony bench consensus ({threads_text(info)})")
    for col in ("suite", "size", "ours /s", "NumPy /s", "ours/NumPy", "goal"):
        table.add_column(col, justify="right")
    goals = {"density": 1e9, "flock": 1e7}
    for r in results:
        size = (
            f"N={r['lattice']} x {r['starts']} starts"
            if r["suite"] == "density"
            else f"{r['particles']:,} particles"
        )
        goal = goals[r["suite"]]
        table.add_row(
            f"{r['suite']} ({r['unit']})",
            size,
            f"{r['rate']:.3g}",
            f"{r['numpy_rate']:.3g}",
            f"{r['ratio']:.1f}x",
            f">= {goal:.0e} {'met' if r['rate'] >= goal else 'NOT met'}",
        )
    console.print(table)
    if cfg.json:
        payload = {
            "suite": "consensus",
            "threads": info,
            "machine": platform.machine(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "numba": numba.__version__,
            "results": results,
            **({"notes": cfg.extra} if cfg.extra else {}),
        }
        write_json(cfg.json, payload, console)
    return results


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
