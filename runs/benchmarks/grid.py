"""Benchmark ``colony bench grid``: battle agent-steps per second against MAgent2, thread
for thread.

The workload is MAgent2's ``battle_v4`` with random actions, observations built every
step (13 x 13 x 5 float32 views and 32 features per agent, MAgent2's layout), on
battle's own map scaled to the agent count (``map_size = sqrt(agents / 0.08)``),
through the array API (MAgent2's ``GridWorld`` calls: ``get_observation``,
``set_action``, ``step``, ``get_reward``, ``clear_dead`` per step; ours the same calls
on ``colonylab.envs.magent.battle_v4.world()``) and through the PettingZoo dict API
(``parallel_env().step(dict)``). Our side runs ``colonylab.envs.magent.battle_v4``
(MAgent2's rules); where that module is missing it falls back to the older
``colonylab.envs.grid.battle`` (own rules) and says so.

Threads: MAgent2's engine runs on one thread (its wheel is built without OpenMP; the
anchor checks that no OpenMP runtime is loaded). Ours runs once per thread count of
``--threads`` (default ``1,all``): every measurement is its own subprocess started
with ``NUMBA_NUM_THREADS`` = that count, which also calls ``numba.set_num_threads`` and
reports ``numba.get_num_threads()``. So the 1-thread columns compare like with like.

Memory-bandwidth ceiling: each measurement's thread count also gets a write-bandwidth
probe in the same run (a Numba parallel fill of a 256 MiB float32 array, best of 5,
and a copy for reference; ``--probe-mb``). An agent-step must write at least its observation
(``OBS_BYTES`` = 3,380 B view + 128 B features), so the ceiling is
``write_bandwidth / OBS_BYTES`` agent-steps/s; ``of ceiling`` is our rate over it.

With ``--anchor-python PATH`` (the python of a venv where ``magent2`` is installed; it
needs pygame-ce, so keep it apart, e.g. ``.venv-magent``) MAgent2 runs the same
workload, interleaved with ours, in the same run.

    python3 -m venv .venv-magent && .venv-magent/bin/pip install magent2
    colony bench grid --anchor-python .venv-magent/bin/python --json bench-grid.json

JSON: ``{"suite", "world", "machine", "python", "threads", "bandwidth", "results"}``;
one result per (api, agents) (``agents`` as asked, ``agents_placed`` as battle's map
holds them, the same on both sides) with MAgent2's ``anchor_agent_steps_per_s`` and, per
thread count, ``by_threads[k]`` = ``{"threads", "agent_steps_per_s", "ratio",
"obs_gb_per_s", "write_gb_per_s", "ceiling_share", "peak_rss_mb", ...}``; the row's own
``agent_steps_per_s`` / ``ratio`` / ``threads`` are those of the first thread count
(1 by default: MAgent2's count).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba import njit, prange
from rich.console import Console
from rich.table import Table

from colonylab.runs.benchmarks.anchors.magent2_battle import map_size_for

ANCHOR_SCRIPT = Path(__file__).parent / "anchors" / "magent2_battle.py"
VIEW_BYTES = 13 * 13 * 5 * 4
"""MAgent2's battle view per agent-step: 13 x 13 x 5 float32."""
FEATURE_BYTES = 32 * 4
"""Battle's feature vector per agent-step: 10 id bits + 21 last action + last reward."""
OBS_BYTES = VIEW_BYTES + FEATURE_BYTES


@dataclass(frozen=True)
class Config:
    """battle_v4 throughput (array and PettingZoo APIs) against MAgent2, thread for thread."""

    agents: str = "1000,10000,100000,1000000"
    """Total agents (both teams) for the array API, comma-separated."""
    pettingzoo_agents: str = "1000"
    """Total agents for the PettingZoo dict API, comma-separated ("" to skip)."""
    threads: str = "1,all"
    """Numba thread counts of our side, comma-separated ("all": every core)."""
    anchor_python: str | None = None
    """Python of a venv with magent2 installed; runs the anchor in the same run."""
    seconds: float = 2.0
    """Approximate seconds of stepping per measurement."""
    repeats: int = 3
    """Runs of each side per row, alternating ours and MAgent2; the best of each counts."""
    seed: int = 0
    """Seed of both worlds."""
    probe_mb: int = 256
    """Size of the memory-bandwidth probe's arrays (MiB; well above the caches)."""
    json: str | None = None
    """Write the results to this JSON file."""
    worker: str | None = None
    """Internal: run one measurement (``array:N:T``, ``pettingzoo:N:T`` or
    ``bandwidth:0:T``) and print JSON."""

    def __post_init__(self) -> None:
        parse_counts("agents", self.agents)  # refuse bad lists before any work
        parse_counts("pettingzoo_agents", self.pettingzoo_agents)
        parse_threads(self.threads)
        if self.repeats < 1:
            raise ValueError(f"--repeats must be >= 1, got {self.repeats}")
        if self.probe_mb < 1:
            raise ValueError(f"--probe-mb must be >= 1, got {self.probe_mb}")
        if self.seconds <= 0:
            raise ValueError(f"--seconds must be > 0, got {self.seconds}")
        if self.anchor_python and not Path(self.anchor_python).exists():
            raise ValueError(
                f"--anchor-python {self.anchor_python!r} does not exist; make the venv with "
                "python3 -m venv .venv-magent && .venv-magent/bin/pip install magent2"
            )


def parse_counts(name: str, text: str) -> list[int]:
    """``"1000,10000"`` -> ``[1000, 10000]``; refuses anything but integers >= 2."""
    counts = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        try:
            value = int(part.replace("_", ""))
        except ValueError:
            value = 0
        if value < 2:
            raise ValueError(
                f"--{name.replace('_', '-')}: {part!r} is not an agent count; expected "
                "comma-separated integers >= 2, e.g. 1000,10000"
            )
        counts.append(value)
    return counts


def parse_threads(text: str) -> list[int]:
    """``"1,all"`` -> ``[1, cores]`` (duplicates dropped, order kept)."""
    out: list[int] = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        if part == "all":
            value = os.cpu_count() or 1
        else:
            try:
                value = int(part)
            except ValueError:
                value = 0
            if value < 1:
                raise ValueError(
                    f"--threads: {part!r} is not a thread count; expected comma-separated "
                    "integers >= 1 or 'all', e.g. 1,all"
                )
        if value not in out:
            out.append(value)
    if not out:
        raise ValueError("--threads: expected at least one thread count, e.g. 1,all")
    return out


def _steps_for(agents: int, seconds: float, rate_guess: float) -> int:
    return int(max(2, min(500, seconds * rate_guess / max(agents, 1))))


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all its threads) since ``start``."""
    return time.perf_counter() - start[0], time.process_time() - start[1]


def _set_threads(threads: int) -> int:
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    return numba.get_num_threads()


def world_module():
    """``(module, name)``: MAgent2-rules battle_v4 if present, else the older battle."""
    try:
        from colonylab.envs.magent import battle_v4

        if hasattr(battle_v4, "world"):
            return battle_v4, "battle_v4"
    except ImportError:
        pass
    return None, "battle (colonylab.envs.grid, own rules: fallback)"


def _magent_array(mod, agents, threads, seconds, seed):
    rng = np.random.default_rng(seed)
    small = mod.world(map_size=20, max_cycles=10**9, threads=threads, seed=seed)
    _engine_steps(small, rng, 2)  # compile the kernels first: RSS after is the baseline
    del small
    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    engine = mod.world(map_size=map_size_for(agents), max_cycles=10**9, threads=threads, seed=seed)
    agents0 = sum(engine.num(g) for g in range(engine.n_groups))
    _engine_steps(engine, rng, 1)  # warm-up, like the anchor's untimed first step
    steps = _steps_for(agents, seconds, 3e6)
    t0 = _clock()
    done = _engine_steps(engine, rng, steps)
    return agents0, steps, done, _since(t0), baseline_mb


def _engine_steps(engine, rng, steps: int) -> int:
    """MAgent2's call sequence per step: observe, set actions, step, rewards, clear."""
    done = 0
    groups = range(engine.n_groups)
    n_actions = [int(engine.n_actions[g]) for g in groups]
    for _ in range(steps):
        actions = []
        for g in groups:
            engine.observe(g)
            n = engine.num(g)
            actions.append(rng.integers(0, n_actions[g], n, dtype=np.int32))
        engine.step(actions)
        for g in groups:
            done += len(engine.rewards(g))
        engine.clear_dead()
    return done


def _magent_pettingzoo(mod, agents, threads, seconds, seed):
    rng = np.random.default_rng(seed)
    kwargs = {"max_cycles": 10**9}
    try:
        small = mod.parallel_env(map_size=20, threads=threads, **kwargs)
        kwargs["threads"] = threads
    except (TypeError, ValueError):
        small = mod.parallel_env(map_size=20, **kwargs)
    _pz_steps(small, rng, 2, seed)
    del small
    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    env = mod.parallel_env(map_size=map_size_for(agents), **kwargs)
    agents0 = len(env.possible_agents)
    _pz_steps(env, rng, 1, seed)
    steps = _steps_for(agents, seconds, 1e6)
    t0 = _clock()
    done = _pz_steps(env, rng, steps, None)
    return agents0, steps, done, _since(t0), baseline_mb


def _pz_steps(env, rng, steps: int, reset_seed) -> int:
    if reset_seed is not None:
        env.reset(seed=reset_seed)
    done = 0
    for _ in range(steps):
        live = env.agents
        acts = rng.integers(0, 21, len(live)).tolist()
        env.step(dict(zip(live, acts, strict=True)))
        done += len(live)
    return done


def _fallback(api, agents, seconds, seed):
    """The older own-rules battle (colonylab.envs.grid), when battle_v4 is missing."""
    from colonylab.envs.grid.battle import BattleConfig, BattleWorld

    rng = np.random.default_rng(seed)
    small = BattleWorld(BattleConfig(agents=200))
    small.reset(seed=seed)
    small.step(rng.integers(0, 21, small.n_agents))
    del small
    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if api == "array":
        world = BattleWorld(BattleConfig(agents=agents, max_cycles=10**9))
        world.reset(seed=seed)
        n = len(world.alive)
        world.step(rng.integers(0, 21, n))
        steps = _steps_for(agents, seconds, 3e6)
        done = 0
        t0 = _clock()
        for _ in range(steps):
            done += int(world.alive.sum())
            world.step(rng.integers(0, 21, n))
        return n, steps, done, _since(t0), baseline_mb
    from colonylab.envs.grid import battle_v0

    env = battle_v0.parallel_env(agents=agents, max_cycles=10**9)
    env.reset(seed=seed)
    agents0 = len(env.agents)
    _pz_steps(env, rng, 1, None)
    steps = _steps_for(agents, seconds, 1e6)
    t0 = _clock()
    done = _pz_steps(env, rng, steps, None)
    return agents0, steps, done, _since(t0), baseline_mb


def measure_ours(api: str, agents: int, threads: int, seconds: float, seed: int) -> dict:
    """One workload in this process at ``threads`` Numba threads."""
    used = _set_threads(threads)
    mod, name = world_module()
    if mod is None:
        agents0, steps, done, elapsed, baseline_mb = _fallback(api, agents, seconds, seed)
    elif api == "array":
        agents0, steps, done, elapsed, baseline_mb = _magent_array(mod, agents, used, seconds, seed)
    else:
        agents0, steps, done, elapsed, baseline_mb = _magent_pettingzoo(
            mod, agents, used, seconds, seed
        )
    import numba

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "world": name,
        "threads": numba.get_num_threads(),
        "api": api,
        "agents": agents0,
        "map_size": map_size_for(agents),
        "steps": steps,
        "agent_steps": done,
        "seconds": elapsed[0],
        "cpu_seconds": elapsed[1],
        "agent_steps_per_s": done / elapsed[0],
        "agent_steps_per_cpu_s": done / max(elapsed[1], 1e-9),
        "peak_rss_mb": rss_mb,
        "world_mb": rss_mb - baseline_mb,
    }


@njit(parallel=True, cache=True)
def _fill(a, v):
    for i in prange(a.size):
        a[i] = v


@njit(parallel=True, cache=True)
def _copy(dst, src):
    for i in prange(src.size):
        dst[i] = src[i]


def measure_bandwidth(threads: int, probe_mb: int = 256, repeats: int = 5) -> dict:
    """Memory bandwidth at ``threads`` Numba threads: a parallel fill (writes) and copy
    (reads + writes) of a ``probe_mb`` MiB float32 array, best of ``repeats``, in GB/s."""
    used = _set_threads(threads)
    n = probe_mb * 2**20 // 4
    a = np.empty(n, np.float32)
    b = np.empty(n, np.float32)
    _fill(a, np.float32(1))  # touch the pages (and compile on a cold cache)
    _fill(b, np.float32(2))
    best_fill = best_copy = float("inf")
    for k in range(repeats):
        t0 = time.perf_counter()
        _fill(a, np.float32(k))
        best_fill = min(best_fill, time.perf_counter() - t0)
        t0 = time.perf_counter()
        _copy(b, a)
        best_copy = min(best_copy, time.perf_counter() - t0)
    return {
        "threads": used,
        "write_gb_per_s": a.nbytes / best_fill / 1e9,
        "copy_gb_per_s": 2 * a.nbytes / best_copy / 1e9,
        "bytes": int(a.nbytes),
    }


def _subprocess_json(cmd: list[str], env: dict | None = None) -> dict:
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _worker_env(threads: int) -> dict:
    env = dict(os.environ)
    env["NUMBA_NUM_THREADS"] = str(threads)
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[key] = "1"  # NumPy's own helpers stay on one thread
    return env


def run_ours(kind: str, agents: int, threads: int, cfg: Config) -> dict:
    """Our workload (or the bandwidth probe) in a fresh subprocess at ``threads``."""
    cmd = [sys.executable, "-m", "colonylab.runs.benchmarks.grid"]
    cmd += ["--worker", f"{kind}:{agents}:{threads}"]
    cmd += ["--seconds", str(cfg.seconds), "--seed", str(cfg.seed), "--probe-mb", str(cfg.probe_mb)]
    return _subprocess_json(cmd, _worker_env(threads))


def run_anchor(api: str, agents: int, cfg: Config) -> dict:
    """MAgent2's workload in the anchor venv."""
    anchor_api = "raw" if api == "array" else "pettingzoo"
    steps = _steps_for(agents, cfg.seconds, 1e6 if api == "array" else 4e5)
    cmd = [cfg.anchor_python, str(ANCHOR_SCRIPT), "--agents", str(agents), "--api", anchor_api]
    return _subprocess_json(cmd + ["--seed", str(cfg.seed), "--steps", str(steps)])


def _worker(cfg: Config) -> None:
    kind, n, threads = cfg.worker.split(":")
    if kind == "bandwidth":
        print(json.dumps(measure_bandwidth(int(threads), cfg.probe_mb)))
    else:
        print(json.dumps(measure_ours(kind, int(n), int(threads), cfg.seconds, cfg.seed)))


def main(cfg: Config) -> list[dict]:
    """Interleave ours (per thread count) and the anchor per row; print the table."""
    if cfg.worker:
        _worker(cfg)
        return []
    console = Console()
    load_at_start = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    thread_counts = parse_threads(cfg.threads)
    work = [("array", n) for n in parse_counts("agents", cfg.agents)]
    work += [("pettingzoo", n) for n in parse_counts("pettingzoo_agents", cfg.pettingzoo_agents)]
    rows, world, anchor_openmp = [], None, None
    with console.status("benchmarking battle...") as status:
        status.update("memory bandwidth probe")
        bandwidth = {k: run_ours("bandwidth", 0, k, cfg) for k in thread_counts}
        for api, n in work:
            runs: dict[int, list[dict]] = {k: [] for k in thread_counts}
            anchor_runs, anchor_errors = [], []
            for rep in range(cfg.repeats):
                for k in thread_counts:
                    status.update(f"{api} API, {n:,} agents: ours, {k} thread(s) ({rep + 1})")
                    runs[k].append(run_ours(api, n, k, cfg))
                if cfg.anchor_python:
                    status.update(f"{api} API, {n:,} agents: MAgent2 ({rep + 1})")
                    try:
                        anchor_runs.append(run_anchor(api, n, cfg))
                    except RuntimeError as exc:  # a crash of the anchor is reported, not fatal
                        anchor_errors.append(str(exc).splitlines()[-1])
                        console.print(f"[yellow]MAgent2 failed[/] ({api}, {n:,}): {exc}")
            anchor = max(anchor_runs, key=lambda r: r["agent_steps_per_s"], default=None)
            if anchor is not None:
                anchor_openmp = bool(anchor.get("openmp", False)) or bool(anchor_openmp)
            by_threads = []
            for k in thread_counts:
                best = max(runs[k], key=lambda r: r["agent_steps_per_s"])
                world = best["world"]
                rate = best["agent_steps_per_s"]
                write_bw = bandwidth[k]["write_gb_per_s"] * 1e9
                by_threads.append(
                    {
                        "threads": best["threads"],
                        "agent_steps_per_s": rate,
                        "all_agent_steps_per_s": [r["agent_steps_per_s"] for r in runs[k]],
                        "ratio": None if anchor is None else rate / anchor["agent_steps_per_s"],
                        "agent_steps_per_cpu_s": best["agent_steps_per_cpu_s"],
                        "cpu_ratio": None
                        if anchor is None or "agent_steps_per_cpu_s" not in anchor
                        else best["agent_steps_per_cpu_s"] / anchor["agent_steps_per_cpu_s"],
                        "obs_gb_per_s": rate * OBS_BYTES / 1e9,
                        "write_gb_per_s": write_bw / 1e9,
                        "ceiling_agent_steps_per_s": write_bw / OBS_BYTES,
                        "ceiling_share": rate * OBS_BYTES / write_bw,
                        "peak_rss_mb": best["peak_rss_mb"],
                        "bytes_per_agent": best["world_mb"] * 2**20 / max(best["agents"], 1),
                        "map_size": best["map_size"],
                        "steps": best["steps"],
                    }
                )
            first = by_threads[0]
            best_first = max(runs[thread_counts[0]], key=lambda r: r["agent_steps_per_s"])
            row = {
                "api": api,
                "agents": n,
                "agents_placed": best_first["agents"],
                "map_size": best_first["map_size"],
                "agent_steps_per_s": first["agent_steps_per_s"],
                "ratio": first["ratio"],
                "threads": first["threads"],
                "peak_rss_mb": first["peak_rss_mb"],
                "bytes_per_agent": first["bytes_per_agent"],
                "obs_gb_per_s": first["obs_gb_per_s"],
                "ceiling_share": first["ceiling_share"],
                "by_threads": by_threads,
                "anchor_agent_steps_per_s": None,
                "anchor_agents": None,
                "anchor_peak_rss_mb": None,
                "anchor_threads": 1,
                "anchor_errors": anchor_errors,
                "repeats": cfg.repeats,
            }
            if anchor is not None:
                row["anchor_agent_steps_per_s"] = anchor["agent_steps_per_s"]
                row["anchor_agent_steps_per_cpu_s"] = anchor.get("agent_steps_per_cpu_s")
                row["anchor_agents"] = anchor["agents"]
                row["anchor_peak_rss_mb"] = anchor["peak_rss_mb"]
                row["anchor_all_agent_steps_per_s"] = [r["agent_steps_per_s"] for r in anchor_runs]
            rows.append(row)
    import torch

    from colonylab.runs.common.bench import machine_info, threads_info  # (torch: not in workers)

    measured = sorted({b["threads"] for r in rows for b in r["by_threads"]})
    thread_info = threads_info(
        measured[0] if len(measured) == 1 else measured,
        1,
        ours_library="Numba (NUMBA_NUM_THREADS per measurement)",
        baseline_library="MAgent2 0.3.4 C++ (wheel built without OpenMP)",
        baseline_openmp_loaded=anchor_openmp,
    )
    _print_table(console, rows, thread_counts, bandwidth, world, cfg)
    if cfg.json:
        payload = {
            "suite": "grid",
            "world": world,
            "machine": machine_info(torch.device("cpu")),  # load_avg_1m: at the end
            "load_avg_1m_at_start": load_at_start,
            "python": platform.python_version(),
            "threads": thread_info,
            "obs_bytes_per_agent_step": OBS_BYTES,
            "bandwidth": {str(k): v for k, v in bandwidth.items()},
            "results": rows,
        }
        Path(cfg.json).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.json).write_text(json.dumps(payload, indent=2))
        console.print(f"wrote [bold]{cfg.json}[/]")
    return rows


def _print_table(console, rows, thread_counts, bandwidth, world, cfg) -> None:
    table = Table(
        title=f"colony bench grid: {world}, random actions, 13x13x5 view + 32 features "
        "float32 per agent-step; MAgent2 on 1 thread"
    )
    columns = ("API", "agents", "threads", "ours", "MAgent2", "ratio", "per CPU s", "obs GB/s")
    for col in (*columns, "of ceiling", "peak RSS", "B/agent"):
        table.add_column(col, justify="right")
    for r in rows:
        anchor = r["anchor_agent_steps_per_s"]
        for b in r["by_threads"]:
            table.add_row(
                r["api"],
                f"{r['agents_placed']:,}",
                str(b["threads"]),
                f"{b['agent_steps_per_s'] / 1e6:.2f}M",
                "-" if anchor is None else f"{anchor / 1e6:.2f}M",
                "-" if b["ratio"] is None else f"{b['ratio']:.1f}x",
                "-" if b.get("cpu_ratio") is None else f"{b['cpu_ratio']:.1f}x",
                f"{b['obs_gb_per_s']:.2f}",
                f"{b['ceiling_share']:.0%}",
                f"{b['peak_rss_mb']:,.0f}M",
                f"{b['bytes_per_agent']:,.0f}",
            )
    console.print(table)
    bw = ", ".join(
        f"{k} thread(s) write {v['write_gb_per_s']:.1f} GB/s (copy {v['copy_gb_per_s']:.1f})"
        for k, v in bandwidth.items()
    )
    console.print(
        f"memory bandwidth, measured in this run: {bw}; the ceiling is the write "
        f"bandwidth over {OBS_BYTES} B of observation per agent-step"
    )
    console.print(
        "ratio: agent-steps per wall-clock second, ours / MAgent2; per CPU s: agent-steps "
        "per CPU-second of the process (all its threads), ours / MAgent2 -- the same as "
        "ratio at 1 thread on an idle machine, and robust to other load"
    )
    if not cfg.anchor_python:
        console.print("no --anchor-python: MAgent2 not run (see --help for how to set it up)")


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
