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

from colonylab._checks import check_choice, check_int, check_optional_int
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
from colonylab.runs.common.bench import (
    machine_info,
    threads_info,
    threads_text,
    torch_threads,
    write_json,
)
from colonylab.runs.common.device import resolve_device
from colonylab.runs.common.progress import progress_bar

FORMS = ("plain", "shift-rotate")
HELDOUT_SEED0 = 100
"""Held-out seeds start here; tuning seeds stay below it."""
TRANSFORM_SEED = 20_261_202
"""Root seed of the held-out rotations and shifts (one per function and dimension)."""
SHIFT_FRACTION = 0.8
"""Shifts are drawn uniformly within this fraction of the box, so the optimum stays inside."""


@dataclass(frozen=True)
class Config:
    """PSO best value and ms/iteration on four test functions against PySwarms' GlobalBestPSO."""

    functions: tuple[str, ...] = ("sphere", "rastrigin", "rosenbrock", "ackley")
    """Test functions: any of sphere, rastrigin, rosenbrock, ackley."""
    sizes: tuple[str, ...] = ("100x30x1000", "1000x100x200")
    """Problem sizes as PxDxITERATIONS (particles, dimensions, iterations)."""
    seeds: int = 5
    """Seeds 0 .. seeds-1 per (function, size, implementation) of the tuning set."""
    heldout: bool = True
    """Also run the held-out set (--heldout False: the tuning set only)."""
    heldout_sizes: tuple[str, ...] = ("50x10x500", "200x50x500")
    """Held-out problem sizes as PxDxITERATIONS (dimensions the default was not chosen on)."""
    heldout_forms: tuple[str, ...] = FORMS
    """Held-out forms: plain (as tuned) and/or shift-rotate (f(Q (x - o)), Q, o fixed)."""
    heldout_seeds: int = 5
    """Seeds of the held-out set: HELDOUT_SEED0 .. HELDOUT_SEED0 + heldout_seeds - 1."""
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
        check_int("--seeds", self.seeds, 1, HELDOUT_SEED0)
        check_int("--heldout-seeds", self.heldout_seeds, 1)
        for size in self.heldout_sizes:
            parse_size(size)
        if self.heldout and not (self.heldout_sizes and self.heldout_forms):
            raise ValueError(
                "--heldout-sizes and --heldout-forms need at least one value each (or --heldout False)"
            )
        for form in self.heldout_forms:
            check_choice("--heldout-forms", form, FORMS)
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
        check_optional_int("--threads", self.threads, 1)
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


# -- held-out variants: shifted and rotated ---------------------------------------------------------
def shift_rotation(name: str, d: int) -> tuple[np.ndarray, np.ndarray]:
    """The fixed ``(shift o (D,), rotation Q (D, D))`` of ``name`` in ``d`` dimensions.

    ``Q`` is a uniformly random proper rotation (QR of a Gaussian matrix, signs fixed,
    det +1); ``o`` is uniform within ``SHIFT_FRACTION`` of the box; both come from a
    generator seeded by ``(TRANSFORM_SEED, function index, d)``, so every run, seed and
    implementation sees the same problem.
    """
    rng = np.random.default_rng([TRANSFORM_SEED, sorted(functions).index(name), d])
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    b = benchmark_bounds[name]
    shift = rng.uniform(-SHIFT_FRACTION * b, SHIFT_FRACTION * b, d)
    return shift, q


def _centre(name: str) -> float:
    """Where the unshifted function has its minimum (Rosenbrock: all ones, else 0)."""
    return 1.0 if name == "rosenbrock" else 0.0


def problem_functions(
    name: str, d: int, form: str, device: torch.device, dtype: torch.dtype
) -> tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[np.ndarray], np.ndarray]]:
    """``(ours, numpy)`` objectives of ``name`` in ``form``: ``plain``, or ``shift-rotate``
    ``x -> f(Q (x - o) + c)`` with ``c`` the unshifted minimiser, so the minimum is 0 at
    ``x = o`` (inside the box) and the function is no longer separable."""
    f, f_np = functions[name], NUMPY_FUNCTIONS[name]
    if form == "plain":
        return f, f_np
    shift, q = shift_rotation(name, d)
    c = _centre(name)
    shift_t = torch.as_tensor(shift, device=device, dtype=dtype)
    qt_t = torch.as_tensor(q.T.copy(), device=device, dtype=dtype)
    qt = q.T.copy()

    def ours(x: torch.Tensor) -> torch.Tensor:
        return f((x - shift_t) @ qt_t + c)

    def numpy(x: np.ndarray) -> np.ndarray:
        return f_np((x - shift) @ qt + c)

    return ours, numpy


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


def blas_limit_available() -> bool:
    """Whether ``threadpoolctl`` can hold NumPy's BLAS to one thread during PySwarms runs
    (the held-out rotation is a matmul; PySwarms' own element-wise ops use one thread)."""
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    if not blas_limit_available():
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def run_pyswarms(
    name: str,
    p: int,
    d: int,
    iterations: int,
    seed: int,
    objective: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[float, float]:
    """``(best value, ms per iteration)`` of PySwarms' GlobalBestPSO (on ``objective``,
    default: the plain NumPy ``name``)."""
    b = benchmark_bounds[name]
    objective = objective or NUMPY_FUNCTIONS[name]
    with _quiet_pyswarms(), _one_blas_thread():
        import pyswarms  # its first import already writes the log file, hence inside

        np.random.seed(seed)  # noqa: NPY002 (PySwarms draws from the global RNG)
        opt = pyswarms.single.GlobalBestPSO(
            n_particles=p,
            dimensions=d,
            options={"c1": INERTIA_C, "c2": INERTIA_C, "w": INERTIA_W},
            bounds=(np.full(d, -b), np.full(d, b)),
        )
        t0 = time.perf_counter()
        best, _ = opt.optimize(objective, iters=iterations, verbose=False)
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
    objective: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[float, float]:
    """``(best value, ms per iteration)`` of our PSO with ``settings`` (on ``objective``,
    default: the plain ``name``).

    The swarm is told the budget (``iterations``), which a ``w=(start, end)`` schedule uses.
    """
    b = benchmark_bounds[name]
    f = objective or functions[name]
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
    problems = problem_set(cfg)
    results: dict[tuple, list[tuple[float, float]]] = {}
    total = sum(len(seeds) for *_, seeds in problems) * len(settings)
    with progress_bar(console) as progress:
        task = progress.add_task("bench pso", total=total, rate="")
        for set_name, (p, d, iters), name, form, seeds in problems:
            ours_f, numpy_f = problem_functions(name, d, form, device, dtype)
            for seed in seeds:
                for impl, kw in settings.items():
                    label = f"{set_name} {name} {form} {p}x{d}x{iters} seed {seed} {impl}"
                    progress.update(task, rate=label)
                    if impl == "pyswarms":
                        out = run_pyswarms(name, p, d, iters, seed, numpy_f)
                    else:
                        out = run_ours(name, p, d, iters, seed, kw, device, dtype, ours_f)
                    key = (set_name, p, d, iters, name, form, impl)
                    results.setdefault(key, []).append(out)
                    progress.advance(task)

    rows: list[dict[str, Any]] = []
    for (set_name, p, d, iters, name, form, impl), runs in results.items():
        bests = [r[0] for r in runs]
        ms = [r[1] for r in runs]
        rows.append(
            {
                "set": set_name,
                "function": name,
                "form": form,
                "pop_size": p,
                "dim": d,
                "iterations": iters,
                "evaluations": p * iters,
                "bounds": [-benchmark_bounds[name], benchmark_bounds[name]],
                "seeds": list(_seeds(cfg, set_name)),
                "impl": impl,
                "median_best": statistics.median(bests),
                "best_per_seed": bests,
                "median_ms_per_iter": statistics.median(ms),
                "ms_per_iter_per_seed": ms,
                "quality_vs_pyswarms": None,
                "speed_vs_pyswarms": None,
            }
        )

    def problem_key(r: dict[str, Any]) -> tuple:
        return (r["set"], r["pop_size"], r["dim"], r["iterations"], r["function"], r["form"])

    if version is not None:
        reference = {problem_key(r): r for r in rows if r["impl"] == "pyswarms"}
        for r in rows:
            ref = reference[problem_key(r)]
            r["quality_vs_pyswarms"] = quality_verdict(
                r["median_best"], ref["median_best"], cfg.tie
            )
            r["speed_vs_pyswarms"] = ref["median_ms_per_iter"] / r["median_ms_per_iter"]

    goal_met: dict[str, bool] = {}
    misses: dict[str, list[str]] = {}
    if version is not None:
        for impl in (i for i in settings if i != "pyswarms"):
            for set_name in dict.fromkeys(r["set"] for r in rows):
                mine = [r for r in rows if r["impl"] == impl and r["set"] == set_name]
                goal = f"{impl}: quality >= pyswarms on every {set_name} row"
                goal_met[goal] = all(r["quality_vs_pyswarms"] != "worse" for r in mine)
                misses[goal] = [_row_name(r) for r in mine if r["quality_vs_pyswarms"] == "worse"]
                goal = f"{impl}: faster on every {set_name} row"
                goal_met[goal] = all(r["speed_vs_pyswarms"] > 1 for r in mine)
                misses[goal] = [_row_name(r) for r in mine if not r["speed_vs_pyswarms"] > 1]

    threads = torch.get_num_threads()
    thread_info = threads_info(
        threads,
        1 if blas_limit_available() else "1 (NumPy BLAS: its default)",
        ours_library="torch",
        baseline_library="NumPy",
    )
    for set_name in dict.fromkeys(r["set"] for r in rows):
        title = (
            f"colony bench pso, {set_name} set (medians over seeds; ours on {device} "
            f"{cfg.dtype}; PySwarms {version or 'not installed'}; {threads_text(thread_info)})"
        )
        table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)  # fits 80 columns
        for col in ("PxDxiters", "function", "impl", "best", "ms/it", "quality", "speed"):
            left = col in ("function", "impl")
            table.add_column(col, justify="left" if left else "right", no_wrap=True)
        for r in (r for r in rows if r["set"] == set_name):
            quality = r["quality_vs_pyswarms"]
            colour = {"better": "green", "worse": "red"}.get(quality or "", "")
            speed = r["speed_vs_pyswarms"]
            table.add_row(
                f"{r['pop_size']}x{r['dim']}x{r['iterations']}",
                r["function"] + (" s+r" if r["form"] == "shift-rotate" else ""),
                r["impl"],
                f"{r['median_best']:.4g}",
                f"{r['median_ms_per_iter']:.3f}",
                "-" if quality is None else (f"[{colour}]{quality}[/]" if colour else quality),
                "-" if speed is None else f"{speed:.2f}x",
            )
        console.print(table)
    names = dict.fromkeys(r["function"] for r in rows)
    bounds_text = ", ".join(f"{n} +-{benchmark_bounds[n]:g}" for n in names)
    console.print(f"search box = initial box: {bounds_text}; equal evaluations (P per iteration)")
    console.print(
        f"tuning set: seeds 0..{cfg.seeds - 1} (the rows the default was chosen on); "
        + (
            f"held-out set: seeds {HELDOUT_SEED0}..{HELDOUT_SEED0 + cfg.heldout_seeds - 1}, "
            f"s+r = f(Q (x - o) + c), Q a fixed random rotation, o a fixed random shift"
            if cfg.heldout
            else "no held-out set (--heldout False)"
        ),
        highlight=False,
    )
    for impl, kw in settings.items():
        console.print(f"{impl}: {kw}")
    for goal, met in goal_met.items():
        missed = f" ({', '.join(misses[goal])})" if misses[goal] else ""
        console.print(f"goal {goal}: {'[green]met[/]' if met else '[red]missed[/]'}{missed}")

    payload = {
        "suite": "pso",
        "machine": machine_info(device),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pyswarms": version,
        "threads": thread_info,
        "device": str(device),
        "dtype": cfg.dtype,
        "config": asdict(cfg),
        "settings": settings,
        "bounds": {n: [-benchmark_bounds[n], benchmark_bounds[n]] for n in names},
        "transform": {
            "seed": TRANSFORM_SEED,
            "shift_fraction": SHIFT_FRACTION,
            "formula": "f(Q (x - o) + c), c = 1 for rosenbrock else 0; minimum 0 at x = o",
        },
        "rows": rows,
        "goal_met": goal_met,
        "goal_missed_rows": misses,
    }
    if cfg.json:
        write_json(cfg.json, payload, console)
    return payload


def _seeds(cfg: Config, set_name: str) -> range:
    if set_name == "tuning":
        return range(cfg.seeds)
    return range(HELDOUT_SEED0, HELDOUT_SEED0 + cfg.heldout_seeds)


def problem_set(cfg: Config) -> list[tuple[str, tuple[int, int, int], str, str, range]]:
    """``(set, (P, D, iterations), function, form, seeds)`` of every problem: the tuning
    set (``--sizes``, plain, seeds ``0..``) then the held-out set (``--heldout-sizes`` x
    ``--heldout-forms``, seeds from ``HELDOUT_SEED0``)."""
    out = [
        ("tuning", parse_size(size), name, "plain", _seeds(cfg, "tuning"))
        for size in cfg.sizes
        for name in cfg.functions
    ]
    if cfg.heldout:
        out += [
            ("held-out", parse_size(size), name, form, _seeds(cfg, "held-out"))
            for size in cfg.heldout_sizes
            for form in cfg.heldout_forms
            for name in cfg.functions
        ]
    return out


def _row_name(r: dict[str, Any]) -> str:
    form = " s+r" if r["form"] == "shift-rotate" else ""
    return f"{r['function']}{form}-{r['dim']}"


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
