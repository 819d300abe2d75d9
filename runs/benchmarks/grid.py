"""Benchmark ``colony bench grid``: battle agent-steps per second, against MAgent2.

Random actions, observations included (13 x 13 x 5 float32 views, as MAgent2 builds
them), through the array API and through the PettingZoo dict API. Every
measurement runs in its own subprocess, so ``peak_rss_mb`` is that workload's
alone. With ``--anchor-python PATH`` (the python of a venv where ``magent2`` is
installed -- it needs pygame-ce, so keep it apart, e.g. ``.venv-magent``) the same
workload runs in MAgent2, interleaved with ours, and the table reports ratios.

    python3 -m venv .venv-magent && .venv-magent/bin/pip install magent2
    colony bench grid --anchor-python .venv-magent/bin/python --json bench-grid.json

Threads: ours runs the world's Numba kernels on Numba's thread pool (all cores unless
``NUMBA_NUM_THREADS`` says otherwise; the count is measured in each worker); MAgent2's
engine is single-threaded (its ``CMakeLists.txt`` builds without OpenMP, so its
``#pragma omp`` lines are inert). The table title and ``threads`` in the JSON say so.

JSON: ``{"suite", "machine", "python", "threads": {"ours", "baseline", ...},
"results": [...]}``, one result per (api, agents) with ``agents``,
``agent_steps_per_s``, ``anchor_agent_steps_per_s``, ``ratio``, ``peak_rss_mb`` (and the
anchor's), ``threads`` (our Numba threads in that measurement).
"""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from colonylab.runs.common.bench import threads_info

ANCHOR_SCRIPT = Path(__file__).parent / "anchors" / "magent2_battle.py"
# MAgent2 builds a 13 x 13 x 5 float32 view per agent-step: 3,380 bytes
VIEW_BYTES = 13 * 13 * 5 * 4
# what this 2-core machine writes to memory, about (the figure): the ceiling
# of agent-steps/s is WRITE_BANDWIDTH / VIEW_BYTES, about 7.4M
WRITE_BANDWIDTH = 25e9


@dataclass(frozen=True)
class Config:
    """Battle throughput (array and PettingZoo APIs) against MAgent2 in the same run."""

    agents: str = "1000,10000,100000,1000000"
    """Total agents (both teams) for the array API, comma-separated."""
    pettingzoo_agents: str = "1000,10000"
    """Total agents for the PettingZoo dict API, comma-separated ("" to skip)."""
    anchor_python: str | None = None
    """Python of a venv with magent2 installed; runs the anchor in the same run."""
    seconds: float = 2.0
    """Approximate seconds of stepping per measurement."""
    repeats: int = 3
    """Runs of each side per row, alternating ours and MAgent2; the best of each counts."""
    seed: int = 0
    """Seed of both worlds."""
    json: str | None = None
    """Write the results to this JSON file."""
    worker: str | None = None
    """Internal: run one measurement (``array:N`` or ``pettingzoo:N``) and print JSON."""

    def __post_init__(self) -> None:
        parse_counts("agents", self.agents)  # refuse bad lists before any work
        parse_counts("pettingzoo_agents", self.pettingzoo_agents)
        if self.repeats < 1:
            raise ValueError(f"--repeats must be >= 1, got {self.repeats}")
        if self.seconds <= 0:
            raise ValueError(f"--seconds must be > 0, got {self.seconds}")
        if self.anchor_python and not Path(self.anchor_python).exists():
            raise ValueError(
                f"--anchor-python {self.anchor_python!r} does not exist; make the venv with "
                "python3 -m venv .venv-magent && .venv-magent/bin/pip install magent2"
            )


def parse_counts(name: str, text: str) -> list[int]:
    """``"1000,10000"`` -> ``[1000, 10000]``; refuses anything but positive integers."""
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


def _steps_for(agents: int, seconds: float, rate_guess: float) -> int:
    return int(max(2, min(500, seconds * rate_guess / max(agents, 1))))


def measure_ours(api: str, agents: int, seconds: float, seed: int) -> dict:
    """One workload in this process: random actions, observations built every step."""
    from colonylab.envs.grid.battle import BattleConfig, BattleWorld

    rng = np.random.default_rng(seed)
    # compile the kernels on a small world first, so the memory the big one adds is its own
    small = BattleWorld(BattleConfig(agents=200))
    small.reset(seed=seed)
    small.step(rng.integers(0, 21, small.n_agents))
    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    del small
    if api == "array":
        world = BattleWorld(BattleConfig(agents=agents, max_cycles=10**9))
        world.reset(seed=seed)
        n = len(world.alive)
        world.step(rng.integers(0, 21, n))  # warm-up: compile, first obs buffers
        steps = _steps_for(agents, seconds, 3e6)
        done = 0
        t0 = time.perf_counter()
        for _ in range(steps):
            done += int(world.alive.sum())
            world.step(rng.integers(0, 21, n))
        elapsed = time.perf_counter() - t0
    else:
        from colonylab.envs.grid import battle_v0

        env = battle_v0.parallel_env(agents=agents, max_cycles=10**9)
        env.reset(seed=seed)
        env.step(dict(zip(env.agents, rng.integers(0, 21, len(env.agents)).tolist(), strict=True)))
        steps = _steps_for(agents, seconds, 1e6)
        done = 0
        t0 = time.perf_counter()
        for _ in range(steps):
            live = env.agents
            acts = rng.integers(0, 21, len(live)).tolist()
            env.step(dict(zip(live, acts, strict=True)))
            done += len(live)
        elapsed = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    import numba

    return {
        "threads": numba.get_num_threads(),
        "api": api,
        "agents": agents,
        "steps": steps,
        "agent_steps": done,
        "seconds": elapsed,
        "agent_steps_per_s": done / elapsed,
        "peak_rss_mb": rss_mb,
        "world_mb": rss_mb - baseline_mb,
    }


def _subprocess_json(cmd: list[str]) -> dict:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_ours(api: str, agents: int, cfg: Config) -> dict:
    """Our workload in a fresh subprocess (clean peak RSS)."""
    cmd = [sys.executable, "-m", "colonylab.runs.benchmarks.grid", "--worker", f"{api}:{agents}"]
    cmd += ["--seconds", str(cfg.seconds), "--seed", str(cfg.seed)]
    return _subprocess_json(cmd)


def run_anchor(api: str, agents: int, cfg: Config) -> dict:
    """MAgent2's workload in the anchor venv."""
    anchor_api = "raw" if api == "array" else "pettingzoo"
    cmd = [cfg.anchor_python, str(ANCHOR_SCRIPT), "--agents", str(agents), "--api", anchor_api]
    return _subprocess_json(cmd + ["--seed", str(cfg.seed)])


def main(cfg: Config) -> list[dict]:
    """Interleave ours and the anchor per row; print the table; write JSON."""
    if cfg.worker:
        api, _, n = cfg.worker.partition(":")
        print(json.dumps(measure_ours(api, int(n), cfg.seconds, cfg.seed)))
        return []
    console = Console()
    work = [("array", n) for n in parse_counts("agents", cfg.agents)]
    work += [("pettingzoo", n) for n in parse_counts("pettingzoo_agents", cfg.pettingzoo_agents)]
    rows = []
    with console.status("benchmarking battle...") as status:
        for api, n in work:
            ours_runs, anchor_runs, anchor_errors = [], [], []
            for k in range(cfg.repeats):
                status.update(f"battle, {api} API, {n:,} agents: ours ({k + 1}/{cfg.repeats})")
                ours_runs.append(run_ours(api, n, cfg))
                if cfg.anchor_python:
                    status.update(
                        f"battle, {api} API, {n:,} agents: MAgent2 ({k + 1}/{cfg.repeats})"
                    )
                    try:
                        anchor_runs.append(run_anchor(api, n, cfg))
                    except RuntimeError as exc:  # a crash of the anchor is reported, not fatal
                        anchor_errors.append(str(exc).splitlines()[-1])
                        console.print(f"[yellow]MAgent2 failed[/] ({api}, {n:,}): {exc}")
            ours = max(ours_runs, key=lambda r: r["agent_steps_per_s"])
            row = {
                "api": api,
                "agents": ours["agents"],
                "agent_steps_per_s": ours["agent_steps_per_s"],
                "peak_rss_mb": ours["peak_rss_mb"],
                "bytes_per_agent": ours["world_mb"] * 2**20 / ours["agents"],
                "anchor_agent_steps_per_s": None,
                "anchor_agents": None,
                "anchor_peak_rss_mb": None,
                "ratio": None,
                "repeats": cfg.repeats,
                "threads": ours["threads"],
                "all_agent_steps_per_s": [r["agent_steps_per_s"] for r in ours_runs],
                "anchor_errors": anchor_errors,
            }
            if anchor_runs:
                anchor = max(anchor_runs, key=lambda r: r["agent_steps_per_s"])
                row["anchor_agent_steps_per_s"] = anchor["agent_steps_per_s"]
                row["anchor_agents"] = anchor["agents"]
                row["anchor_peak_rss_mb"] = anchor["peak_rss_mb"]
                row["anchor_all_agent_steps_per_s"] = [r["agent_steps_per_s"] for r in anchor_runs]
                row["ratio"] = ours["agent_steps_per_s"] / anchor["agent_steps_per_s"]
            # share of the memory-bandwidth ceiling: obs bytes written per second
            row["obs_gb_per_s"] = row["agent_steps_per_s"] * VIEW_BYTES / 1e9
            row["ceiling_share"] = row["obs_gb_per_s"] * 1e9 / WRITE_BANDWIDTH
            rows.append(row)
    ours_threads = sorted({r["threads"] for r in rows})
    thread_info = threads_info(
        ours_threads[0] if len(ours_threads) == 1 else ours_threads,
        1,
        ours_library="Numba",
        baseline_library="MAgent2 C++ (built without OpenMP)",
    )
    table = Table(
        title="colony bench grid (battle, random actions, obs 13x13x5 float32; "
        f"threads: ours {thread_info['ours']} (Numba), MAgent2 1)"
    )
    columns = ("api", "agents", "agent-steps/s", "MAgent2", "ratio", "obs GB/s", "of ceiling")
    for col in (*columns, "peak RSS", "B/agent"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            r["api"],
            f"{r['agents']:,}",
            f"{r['agent_steps_per_s'] / 1e6:.2f}M",
            "-"
            if r["anchor_agent_steps_per_s"] is None
            else f"{r['anchor_agent_steps_per_s'] / 1e6:.2f}M",
            "-" if r["ratio"] is None else f"{r['ratio']:.1f}x",
            f"{r['obs_gb_per_s']:.2f}",
            f"{r['ceiling_share']:.0%}",
            f"{r['peak_rss_mb']:,.0f}M",
            f"{r['bytes_per_agent']:,.0f}",
        )
    console.print(table)
    if not cfg.anchor_python:
        console.print("no --anchor-python: MAgent2 not run (see --help for how to set it up)")
    if cfg.json:
        payload = {
            "suite": "grid",
            "machine": platform.machine(),
            "python": platform.python_version(),
            "threads": thread_info,
            "results": rows,
        }
        Path(cfg.json).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.json).write_text(json.dumps(payload, indent=2))
        console.print(f"wrote [bold]{cfg.json}[/]")
    return rows


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
