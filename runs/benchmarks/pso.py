"""Benchmark ``colony bench pso``: PSO best value and ms/iteration against PySwarms.

Our :class:`~colonylab.collective_ml.pso.PSO` against PySwarms 1.3's
``GlobalBestPSO`` (the ``bench`` extra: ``pip install 'colonylab[bench]'``) on
Sphere, Rastrigin, Rosenbrock and Ackley, in two sizes, ``P x D x iterations``:
``100 x 30 x 1000`` and ``1000 x 100 x 200``. Every run gets the same number of
objective evaluations (``P`` per iteration, ``P * iterations`` in all), the same
search box, which is also where the swarm starts: Sphere and Rastrigin
``+-5.12``, Rosenbrock ``+-5``, Ackley ``+-32.768``. Seeds ``0 .. seeds-1``;
runs of every implementation interleave seed by seed, so a load spike on a
shared machine hits all of them alike.

Implementations (rows):

``pyswarms``    ``GlobalBestPSO``, ``w = 0.7298``, ``c1 = c2 = 1.49618``, ``bounds`` =
                the box (its default periodic boundary), velocities start in
                ``[0, 1)`` (its default), NumPy float64, its global NumPy RNG.
``ours-gbest``  like for like: our gbest PSO with the same coefficients and the
                periodic boundary, no velocity clamp.
``ours``        our bench configuration (``--topology``, ``--variant``,
                ``--boundary``, ``--w``/``--w-end``, ``--velocity-clamp``,
                ``--velocity-norm-clamp``); default gbest, inertia, periodic,
                inertia decreasing linearly 0.8 -> 0.6 over the run's iterations,
                no per-coordinate clamp, velocity norm clamp 1.5 box sides.

Both sides evaluate the same formulas, each natively (ours on torch tensors,
PySwarms on NumPy arrays); ms/iteration is the wall time of the whole run
(evaluation, memory and swarm update) over the iterations, after construction.
The table gives the median over seeds of the best value (``best``) and of
ms/iteration (``ms/it``); ``quality`` compares our median best to PySwarms' (both
below ``--tie`` count as equal: solved), ``speed`` is PySwarms' ms / ours (> 1:
ours faster). Without PySwarms the bench runs ours only and says so.

Why the ``ours`` default: with 200 iterations in 100-D, an unclamped swarm spends
its budget flying round the periodic box (``ours-gbest`` loses Rastrigin,
Rosenbrock and Ackley-100); a per-coordinate clamp (0.2 of the range) makes it
converge there but costs Rastrigin-30 (1000 iterations) its exploration. The
velocity *norm* clamp bounds the whole step to ``kappa`` box sides, which is
tight per coordinate in 100-D (RMS share ``kappa / 10``) and loose in 30-D
(``kappa / 5.5``), so it converges the 100-D swarm and leaves the 30-D swarm
nearly unclamped. The inertia schedule 0.8 -> 0.6 (Shi & Eberhart's linearly
decreasing weight, given the budget) explores a little longer early and
converges harder late than the constant 0.7298. Over 20 seeds (not only the
bench's 5) it has the lower median on Rosenbrock-30 (20.2 vs PySwarms' 22.1) and
Rastrigin-30 (17.4 vs 17.9), the latter within seed noise (quartiles ~15-21 for
both); on Ackley-30 both are trapped in a local minimum on 6 of 20 seeds and
solve the rest; it wins the 100-D rows by 2-30x. Its cost is one more kernel
per iteration (``renorm``), about 13 us at 100 x 30, so the 30-D speed ratios
are thin (~1.05-1.6x) and can dip below 1 on a busy machine.

The search that led here: constant w with no clamp ties or wins the 30-D rows
but loses three 100-D rows; any per-coordinate clamp (0.2-0.5), ring, von
Neumann or clamp/reflect/random boundaries lose Rastrigin-30; w 0.9 -> 0.4 is
trapped on Ackley-30 on some seeds. PySwarms' Rosenbrock-100 median (4702)
comes from its default initial velocities U[0, 1) in every coordinate: a
coherent drift toward +1, where the Rosenbrock minimum is, which is bimodal
over seeds (3.6e3-2.1e4); ours start at SPSO 2006's unbiased ``(u - x) / 2``.

JSON: ``{"suite", "machine", "torch", "numpy", "pyswarms", "threads", "device",
"dtype", "config", "settings", "bounds", "rows": [{"function", "pop_size", "dim",
"iterations", "evaluations", "impl", "median_best", "best_per_seed",
"median_ms_per_iter", "ms_per_iter_per_seed", "quality_vs_pyswarms",
"speed_vs_pyswarms"}], "goal_met"}``.

    colony bench pso --json runs/out/bench-pso.json
    colony bench pso --seeds 3 --sizes 100x30x200 --functions rastrigin
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich import box
from rich.console import Console
from rich.table import Table

from colonylab.collective_ml.pso import (
    BOUNDARIES,
    INERTIA_C,
    INERTIA_W,
    PSO,
    TOPOLOGIES,
    VARIANTS,
    benchmark_bounds,
    functions,
)
from colonylab.runs.common.bench import machine_info, torch_threads, write_json
from colonylab.runs.common.device import resolve_device
from colonylab.runs.common.progress import progress_bar


@dataclass(frozen=True)
class Config:
    """PSO best value and ms/iteration on four test functions against PySwarms' GlobalBestPSO."""

    functions: tuple[str, ...] = ("sphere", "rastrigin", "rosenbrock", "ackley")
    """Test functions: any of sphere, rastrigin, rosenbrock, ackley."""
    sizes: tuple[str, ...] = ("100x30x1000", "1000x100x200")
    """Problem sizes as PxDxITERATIONS (particles, dimensions, iterations)."""
    seeds: int = 5
    """Seeds per (function, size, implementation); medians are over them."""
    topology: str = "gbest"
    """Topology of the 'ours' row: gbest, ring, von_neumann or random."""
    variant: str = "inertia"
    """Variant of the 'ours' row: inertia or constriction."""
    boundary: str = "periodic"
    """Boundary of the 'ours' row: clamp, reflect, periodic or random."""
    w: float = 0.8
    """Inertia weight of the 'ours' row at the first iteration (inertia variant only)."""
    w_end: float | None = 0.6
    """Inertia at the last iteration, linear in between (None: constant --w)."""
    velocity_clamp: float | None = None
    """Per-coordinate velocity clamp of the 'ours' row, fraction of the range (None: off)."""
    velocity_norm_clamp: float | None = 1.5
    """Cap on the 'ours' row's step norm in box sides, ||v / (hi - lo)|| (None: off)."""
    like_for_like: bool = True
    """Also run 'ours-gbest': our gbest PSO with PySwarms' settings."""
    pyswarms: bool = True
    """Run PySwarms when it is installed (--no-pyswarms: ours only)."""
    dtype: str = "float64"
    """Our dtype: float64 (as PySwarms' NumPy) or float32."""
    device: str = "cpu"
    """Torch device of our swarm: cpu, cuda (or cuda:N) or auto."""
    threads: int | None = 1
    """Torch intra-op threads (default 1: PySwarms' NumPy element-wise ops use one core)."""
    tie: float = 1e-8
    """Median bests both below this count as equal (both solved)."""
    json: str | None = None
    """Write the results to this JSON file."""

    def __post_init__(self) -> None:
        unknown = [f for f in self.functions if f not in functions]
        if unknown or not self.functions:
            raise ValueError(
                f"--functions {list(self.functions)!r}: unknown {unknown}; choose from "
                f"{', '.join(functions)}"
            )
        for size in self.sizes:
            parse_size(size)
        if not self.sizes:
            raise ValueError("--sizes needs at least one PxDxITERATIONS")
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or self.seeds < 1:
            raise ValueError(f"--seeds must be an integer >= 1, got {self.seeds!r}")
        for name, value, allowed in (
            ("topology", self.topology, TOPOLOGIES),
            ("variant", self.variant, VARIANTS),
            ("boundary", self.boundary, BOUNDARIES),
        ):
            if value not in allowed:
                raise ValueError(f"--{name} {value!r}: choose one of {', '.join(allowed)}")
        if self.velocity_clamp is not None and not self.velocity_clamp > 0:
            raise ValueError(f"--velocity-clamp must be > 0 (or None), got {self.velocity_clamp!r}")
        if self.velocity_norm_clamp is not None and not self.velocity_norm_clamp > 0:
            raise ValueError(
                f"--velocity-norm-clamp must be > 0 (or None), got {self.velocity_norm_clamp!r}"
            )
        for name, value in (("w", self.w), ("w-end", self.w_end)):
            if value is not None and not value >= 0:
                raise ValueError(f"--{name} must be >= 0, got {value!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"--dtype must be float32 or float64, got {self.dtype!r}")
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise ValueError(f"--threads must be an integer >= 1, got {self.threads!r}")
        if not self.tie >= 0:
            raise ValueError(f"--tie must be >= 0, got {self.tie!r}")


def parse_size(size: str) -> tuple[int, int, int]:
    """``"100x30x1000"`` -> ``(P, D, iterations)``."""
    try:
        p, d, iters = (int(part) for part in size.lower().split("x"))
    except ValueError:
        raise ValueError(f"size {size!r} is not PxDxITERATIONS (e.g. 100x30x1000)") from None
    if p < 1 or d < 2 or iters < 1:
        raise ValueError(f"size {size!r}: need P >= 1, D >= 2, iterations >= 1")
    return p, d, iters


# -- the same formulas in NumPy, for PySwarms -----------------------------------------------------
def _np_sphere(x: np.ndarray) -> np.ndarray:
    return (x * x).sum(axis=1)


def _np_rastrigin(x: np.ndarray) -> np.ndarray:
    return (x * x - 10.0 * np.cos(2.0 * np.pi * x)).sum(axis=1) + 10.0 * x.shape[1]


def _np_rosenbrock(x: np.ndarray) -> np.ndarray:
    head, tail = x[:, :-1], x[:, 1:]
    return (100.0 * (tail - head * head) ** 2 + (1.0 - head) ** 2).sum(axis=1)


def _np_ackley(x: np.ndarray) -> np.ndarray:
    d = x.shape[1]
    term1 = -20.0 * np.exp(-0.2 * np.sqrt((x * x).sum(axis=1) / d))
    term2 = -np.exp(np.cos(2.0 * np.pi * x).sum(axis=1) / d)
    return term1 + term2 + (20.0 + np.e)


NUMPY_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sphere": _np_sphere,
    "rastrigin": _np_rastrigin,
    "rosenbrock": _np_rosenbrock,
    "ackley": _np_ackley,
}


# -- runs ------------------------------------------------------------------------------------------
def pyswarms_version() -> str | None:
    """The installed PySwarms version, or None."""
    try:
        return importlib.metadata.version("pyswarms")
    except importlib.metadata.PackageNotFoundError:
        return None


@contextlib.contextmanager
def _quiet_pyswarms() -> Iterator[None]:
    """PySwarms' reporter (on import and on every construction) reconfigures logging with
    a ``report.log`` file in the working directory, unless ``LOG_CFG`` names a config:
    point it at an empty one for the duration, and keep the global NumPy RNG as it was."""
    before_env = os.environ.get("LOG_CFG")
    before_rng = np.random.get_state()  # noqa: NPY002 (PySwarms uses the global RNG)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "logging.yaml"
        cfg.write_text("version: 1\ndisable_existing_loggers: false\n")
        os.environ["LOG_CFG"] = str(cfg)
        try:
            yield
        finally:
            if before_env is None:
                os.environ.pop("LOG_CFG", None)
            else:
                os.environ["LOG_CFG"] = before_env
            np.random.set_state(before_rng)  # noqa: NPY002


def run_pyswarms(name: str, p: int, d: int, iterations: int, seed: int) -> tuple[float, float]:
    """``(best value, ms per iteration)`` of PySwarms' GlobalBestPSO."""
    b = benchmark_bounds[name]
    with _quiet_pyswarms():
        import pyswarms  # its first import already writes the log file, hence inside

        np.random.seed(seed)  # noqa: NPY002 (PySwarms draws from the global RNG)
        opt = pyswarms.single.GlobalBestPSO(
            n_particles=p,
            dimensions=d,
            options={"c1": INERTIA_C, "c2": INERTIA_C, "w": INERTIA_W},
            bounds=(np.full(d, -b), np.full(d, b)),
        )
        t0 = time.perf_counter()
        best, _ = opt.optimize(NUMPY_FUNCTIONS[name], iters=iterations, verbose=False)
        seconds = time.perf_counter() - t0
    return float(best), 1e3 * seconds / iterations


def run_ours(
    name: str,
    p: int,
    d: int,
    iterations: int,
    seed: int,
    settings: dict[str, Any],
    device: torch.device,
    dtype: torch.dtype,
) -> tuple[float, float]:
    """``(best value, ms per iteration)`` of our PSO with ``settings``.

    The swarm is told the budget (``iterations``), which a ``w=(start, end)`` schedule uses.
    """
    b = benchmark_bounds[name]
    f = functions[name]
    pso = PSO(
        d, p, (-b, b), seed=seed, device=device, dtype=dtype, iterations=iterations, **settings
    )
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(iterations):
        pso.tell(f(pso.ask()))
    sync()
    seconds = time.perf_counter() - t0
    return pso.best.fitness, 1e3 * seconds / iterations


def quality_verdict(ours: float, reference: float, tie: float) -> str:
    """``better``, ``equal`` or ``worse`` (lower is better; both <= tie: equal)."""
    if ours <= tie and reference <= tie:
        return "equal"
    if ours < reference:
        return "better"
    return "equal" if ours == reference else "worse"


def main(cfg: Config) -> dict[str, Any]:
    """Run every (size, function, seed, implementation), print the table, write JSON.

    ``--threads`` holds for this call only (the previous torch setting comes back).
    """
    with torch_threads(cfg.threads):
        return _run(cfg)


def _run(cfg: Config) -> dict[str, Any]:
    console = Console()
    device = resolve_device(cfg.device)
    dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
    version = pyswarms_version() if cfg.pyswarms else None
    if cfg.pyswarms and version is None:
        console.print(
            "[yellow]PySwarms is not installed[/] (pip install 'colonylab[bench]'): "
            "running ours only, no ratios"
        )
    settings: dict[str, dict[str, Any]] = {}
    if version is not None:
        settings["pyswarms"] = {
            "optimizer": "GlobalBestPSO",
            "w": INERTIA_W,
            "c1": INERTIA_C,
            "c2": INERTIA_C,
            "boundary": "periodic (its default)",
            "velocity_clamp": None,
            "initial_velocity": "U[0, 1) (its default)",
        }
    if cfg.like_for_like:
        settings["ours-gbest"] = {"topology": "gbest", "boundary": "periodic"}
    settings["ours"] = {
        "topology": cfg.topology,
        "variant": cfg.variant,
        "boundary": cfg.boundary,
        "velocity_clamp": cfg.velocity_clamp,
        "velocity_norm_clamp": cfg.velocity_norm_clamp,
    }
    if cfg.variant == "inertia":  # constriction's chi takes the place of w
        settings["ours"]["w"] = cfg.w if cfg.w_end is None else (cfg.w, cfg.w_end)
    sizes = [parse_size(s) for s in cfg.sizes]
    results: dict[tuple, list[tuple[float, float]]] = {}
    total = len(sizes) * len(cfg.functions) * cfg.seeds * len(settings)
    with progress_bar(console) as progress:
        task = progress.add_task("bench pso", total=total, rate="")
        for p, d, iters in sizes:
            for name in cfg.functions:
                for seed in range(cfg.seeds):
                    for impl, kw in settings.items():
                        progress.update(task, rate=f"{name} {p}x{d}x{iters} seed {seed} {impl}")
                        if impl == "pyswarms":
                            out = run_pyswarms(name, p, d, iters, seed)
                        else:
                            out = run_ours(name, p, d, iters, seed, kw, device, dtype)
                        results.setdefault((p, d, iters, name, impl), []).append(out)
                        progress.advance(task)

    rows: list[dict[str, Any]] = []
    for (p, d, iters, name, impl), runs in results.items():
        bests = [r[0] for r in runs]
        ms = [r[1] for r in runs]
        rows.append(
            {
                "function": name,
                "pop_size": p,
                "dim": d,
                "iterations": iters,
                "evaluations": p * iters,
                "bounds": [-benchmark_bounds[name], benchmark_bounds[name]],
                "impl": impl,
                "median_best": statistics.median(bests),
                "best_per_seed": bests,
                "median_ms_per_iter": statistics.median(ms),
                "ms_per_iter_per_seed": ms,
                "quality_vs_pyswarms": None,
                "speed_vs_pyswarms": None,
            }
        )
    if version is not None:
        reference = {
            (r["pop_size"], r["dim"], r["function"]): r for r in rows if r["impl"] == "pyswarms"
        }
        for r in rows:
            ref = reference[(r["pop_size"], r["dim"], r["function"])]
            r["quality_vs_pyswarms"] = quality_verdict(
                r["median_best"], ref["median_best"], cfg.tie
            )
            r["speed_vs_pyswarms"] = ref["median_ms_per_iter"] / r["median_ms_per_iter"]

    goal_met: dict[str, bool] = {}
    if version is not None:
        for impl in (i for i in settings if i != "pyswarms"):
            mine = [r for r in rows if r["impl"] == impl]
            goal_met[f"{impl}: quality >= pyswarms on every row"] = all(
                r["quality_vs_pyswarms"] != "worse" for r in mine
            )
            goal_met[f"{impl}: faster on every row"] = all(r["speed_vs_pyswarms"] > 1 for r in mine)

    threads = torch.get_num_threads()
    title = (
        f"colony bench pso ({cfg.seeds} seeds, medians; ours on {device} {cfg.dtype}, "
        f"{threads} thread(s); PySwarms {version or 'not installed'})"
    )
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)  # fits 80 columns
    for col in ("PxDxiters", "function", "impl", "best", "ms/it", "quality", "speed"):
        left = col in ("function", "impl")
        table.add_column(col, justify="left" if left else "right", no_wrap=True)
    for r in rows:
        quality = r["quality_vs_pyswarms"]
        colour = {"better": "green", "worse": "red"}.get(quality or "", "")
        speed = r["speed_vs_pyswarms"]
        table.add_row(
            f"{r['pop_size']}x{r['dim']}x{r['iterations']}",
            r["function"],
            r["impl"],
            f"{r['median_best']:.4g}",
            f"{r['median_ms_per_iter']:.3f}",
            "-" if quality is None else (f"[{colour}]{quality}[/]" if colour else quality),
            "-" if speed is None else f"{speed:.2f}x",
        )
    console.print(table)
    bounds_text = ", ".join(f"{n} +-{benchmark_bounds[n]:g}" for n in cfg.functions)
    console.print(f"search box = initial box: {bounds_text}; equal evaluations (P per iteration)")
    for impl, kw in settings.items():
        console.print(f"{impl}: {kw}")
    for goal, met in goal_met.items():
        console.print(f"goal {goal}: {'[green]met[/]' if met else '[red]missed[/]'}")

    payload = {
        "suite": "pso",
        "machine": machine_info(device),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pyswarms": version,
        "threads": threads,
        "device": str(device),
        "dtype": cfg.dtype,
        "config": asdict(cfg),
        "settings": settings,
        "bounds": {n: [-benchmark_bounds[n], benchmark_bounds[n]] for n in cfg.functions},
        "rows": rows,
        "goal_met": goal_met,
    }
    if cfg.json:
        write_json(cfg.json, payload, console)
    return payload


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
