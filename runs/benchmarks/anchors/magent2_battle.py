"""Anchor workload for ``colony bench grid``: MAgent2's battle with random actions.

Runs inside a separate virtual environment where ``magent2`` is installed (it needs
pygame-ce, which conflicts with pygame), so it imports nothing from colonylab.
Prints one JSON line: ``{"api", "agents", "map_size", "steps", "agent_steps",
"seconds", "agent_steps_per_s", "cpu_seconds", "agent_steps_per_cpu_s", "peak_rss_mb",
"threads", "openmp"}`` (``threads`` is
1: the wheel's engine is built without OpenMP, which ``openmp`` checks in the process).

    .venv-magent/bin/python runs/benchmarks/anchors/magent2_battle.py --agents 10000 --api raw
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from pathlib import Path

import numpy as np


def map_size_for(agents: int) -> int:
    """MAgent2's battle places 0.04 * map_size**2 agents per team."""
    return max(12, math.ceil(math.sqrt(agents / 0.08)))


def make_grid(map_size: int, seed: int):
    """MAgent2's battle engine (``magent2.GridWorld`` with battle's config and map).

    Built without the PettingZoo wrapper: its ``__init__`` reads the walls into a fixed
    100 x 100 buffer (``GridWorld._get_walls_info``), which the border alone overflows
    beyond map_size 2,501 (4 * (m - 1) walls), corrupting the heap at a million agents.
    """
    import types

    import magent2
    from magent2.environments.battle import battle

    cfg = battle.get_config(map_size, False, seed, **battle.default_reward_args)
    grid = magent2.GridWorld(cfg, map_size=map_size)
    grid.reset()
    holder = types.SimpleNamespace(
        env=grid, map_size=map_size, handles=grid.get_handles(), leftID=0, rightID=1
    )
    battle._parallel_env.generate_map(holder)  # battle's own map, on this engine
    return grid


def run_raw(map_size: int, steps: int, seed: int, warmup: int = 1) -> tuple[int, int, float, float]:
    grid = make_grid(map_size, seed)  # magent2.GridWorld: the engine under PettingZoo
    handles = grid.get_handles()
    rng = np.random.default_rng(seed)
    agents0 = sum(grid.get_num(h) for h in handles)
    n_actions = [grid.get_action_space(h)[0] for h in handles]
    done = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for k in range(warmup + steps):
        if k == warmup:  # the first steps allocate observation buffers: not timed
            done = 0
            t0, c0 = time.perf_counter(), time.process_time()
        for h, na in zip(handles, n_actions, strict=True):
            grid.get_observation(h)  # views + features, as a policy would read them
            n = grid.get_num(h)
            grid.set_action(h, rng.integers(0, na, n, dtype=np.int32))
        grid.step()
        for h in handles:
            done += len(grid.get_reward(h))
        grid.clear_dead()
    return agents0, done, time.perf_counter() - t0, time.process_time() - c0


def openmp_loaded() -> bool:
    """Whether an OpenMP runtime is mapped into this process (MAgent2 0.3.4's wheel
    links none, so its engine runs on one thread)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return False
    return any(name in maps for name in ("libgomp", "libomp", "libiomp"))


def run_pettingzoo(
    map_size: int, steps: int, seed: int, warmup: int = 1
) -> tuple[int, int, float, float]:
    from magent2.environments import battle_v4

    env = battle_v4.parallel_env(map_size=map_size, max_cycles=10**9)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    agents0 = len(env.agents)
    done = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for k in range(warmup + steps):
        if k == warmup:
            done = 0
            t0, c0 = time.perf_counter(), time.process_time()
        agents = env.agents
        acts = rng.integers(0, 21, len(agents))
        env.step(dict(zip(agents, acts.tolist(), strict=True)))
        done += len(agents)
    return agents0, done, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, required=True, help="total agents (both teams)")
    parser.add_argument("--api", choices=["raw", "pettingzoo"], default="raw")
    parser.add_argument("--steps", type=int, default=0, help="steps (0: about 2 s of work)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    map_size = map_size_for(args.agents)
    run = run_raw if args.api == "raw" else run_pettingzoo
    steps = args.steps or max(2, min(200, 2_000_000 // max(args.agents, 1)))
    # one env (MAgent2 0.3.4 corrupts its heap when a second 1M-agent env is made)
    agents0, done, seconds, cpu_seconds = run(map_size, steps, args.seed)
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "api": args.api,
                "agents": agents0,
                "map_size": map_size,
                "steps": steps,
                "agent_steps": done,
                "seconds": seconds,
                "agent_steps_per_s": done / seconds,
                "cpu_seconds": cpu_seconds,
                "agent_steps_per_cpu_s": done / max(cpu_seconds, 1e-9),
                "peak_rss_mb": rss_kb / 1024,
                "threads": 1,
                "openmp": openmp_loaded(),
            }
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
