"""Benchmark ``colony bench marl``: PPO training throughput in the battle world, against
the network's own ceiling (and MAgent2 driving the same trainer, optionally).

At each agent count (default 1k, 10k, 100k, both teams) one shared network plays
both sides of a battle -- by default MAgent2's ``battle_v4`` on MAgent2's rules
(``colonylab.envs.magent.battle_v4`` ``BattleWorld``; map ``ceil(sqrt(n / 0.08))``, so
the counts are MAgent2's: 968, 9,800, 99,458; its group views are written into one
float32 buffer), or with ``--world grid`` Colony Lab's own battle
(``colonylab.envs.grid.battle``, views stored as ``--obs-dtype``) -- with views
13 x 13 x 5, and the PPO trainer (:mod:`colonylab.collective_ml.trainers.ppo`) runs
full iterations: ``rollout_steps`` world steps with the policy's forward on every
living agent, GAE, then ``epochs`` passes of minibatches of ``minibatch_size``
samples (forward, backward, Adam). The row's ``agent_steps_per_s`` is living
agent-steps collected *and learned from* per second of a whole iteration (the best
of ``repeats`` after one untimed warm-up; ``large_repeats`` above 20,000 agents, where
one iteration takes tens of seconds and the rollout buffer several GB: about 2.7 GB
of float32 views at 100k agents, 5.5 GB resident in all).

In the same run, ``network_ceiling_agent_steps_per_s`` is the same forward and the
same PPO update on a synthetic batch of the same size (``rollout_steps x agents``
samples, every step the views of the battle's first observation; no world, no copies
into the rollout buffer): what the network alone
allows. ``world_share = 1 - agent_steps_per_s / ceiling`` is the share of an
iteration spent outside the network (the world's step and views, and the plumbing
that stores them); ``direct_world_share`` reads the same share off the training
iteration's own clocks (1 - (forward + update) / iteration), which other load on the
machine disturbs less. With ``--anchor-python`` (a venv with ``magent2``, e.g.
``.venv-magent/bin/python``) the same trainer and network also drive MAgent2's
PettingZoo ``battle_v4.parallel_env`` in a worker process of that venv, which
stacks MAgent2's per-agent dicts into a shared-memory array each step
(``anchor_agent_steps_per_s``, ``anchor_world_share``); MAgent2's map for ``n``
agents is ``ceil(sqrt(n / 0.08))`` (0.04 a side per cell), so its counts differ
slightly (``anchor_agents``).

The network (the issue's choice, stated in the JSON): ``GridPolicy((13, 13, 5), 21,
hidden=(128, 128))``, an ``845 -> 128 -> 128 -> 21 + 1`` tanh MLP with a shared
trunk, actor and critic heads. Views are stored as ``--obs-dtype`` (default
``uint8``, a quarter of float32's memory at 100k agents; the network scales them
back to [0, 1] in both measurements).

Threads: torch's intra-op threads (``--threads``, default: torch's own setting)
for both our run and the ceiling; the world's Numba kernels use their own pool (one
thread below 4,096 agents, else ``NUMBA_NUM_THREADS``); MAgent2's engine is
single-threaded. The table title and ``threads`` in the JSON say so.

    colony bench marl --json runs/out/bench-marl.json
    colony bench marl --world grid --json runs/out/bench-marl-grid.json
    colony bench marl --agents 1000,10000 --anchor-python .venv-magent/bin/python

JSON: ``{"suite", "machine", "torch", "network", "threads", "config", "results"}``,
one result per agent count with ``agents``, ``agent_steps_per_s``,
``network_ceiling_agent_steps_per_s``, ``world_share``, ``anchor_agent_steps_per_s``
(null without ``--anchor-python``), ``anchor_agents``, ``anchor_world_share``,
``repeats`` (the timed iterations behind the row), and the
seconds of the best iteration split into ``world_s``, ``forward_s``, ``update_s``.
"""

from __future__ import annotations

import json
import math
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from colonylab._checks import check_choice, check_int
from colonylab.agents.grid_policy import GridPolicy
from colonylab.collective_ml.trainers.ppo import PPO, PPOConfig
from colonylab.runs.benchmarks.grid import parse_counts
from colonylab.runs.common.bench import results_header, threads_info, torch_threads, write_json

N_ACTIONS = 21
VIEW_SHAPE = (13, 13, 5)
LARGE = 20_000
"""Rows above this many agents time ``large_repeats`` iterations."""


@dataclass(frozen=True)
class Config:
    """PPO training throughput on battle vs the network alone (and vs MAgent2)."""

    agents: str = "1000,10000,100000"
    """Total agents (both teams), comma-separated."""
    world: str = "magent"
    """``magent``: the MAgent2-faithful ``envs.magent.battle_v4`` world (map
    ``ceil(sqrt(n / 0.08))``, float32 views); ``grid``: ``envs.grid.battle`` (Colony Lab's
    own battle, views stored as ``--obs-dtype``)."""
    rollout_steps: int = 8
    """World steps per PPO iteration."""
    epochs: int = 4
    """PPO epochs per iteration."""
    minibatch_size: int = 4096
    """Samples per PPO minibatch."""
    hidden: tuple[int, ...] = (128, 128)
    """Widths of the network's shared trunk."""
    obs_dtype: str = "uint8"
    """dtype of the stored views with ``--world grid``: uint8, float16 or float32
    (``magent`` hands out float32)."""
    repeats: int = 2
    """Timed iterations (and ceiling measurements) per row after one warm-up; best counts."""
    large_repeats: int = 1
    """``repeats`` of the rows above 20,000 agents."""
    threads: int | None = None
    """torch threads (None: torch's default)."""
    anchor_python: str | None = None
    """Python of a venv with magent2: also drive MAgent2's PettingZoo battle_v4."""
    seed: int = 0
    """Seed of the worlds, the network and the trainer."""
    json: str | None = None
    """Write the results to this JSON file."""

    def __post_init__(self) -> None:
        parse_counts("agents", self.agents)
        for name in ("rollout_steps", "epochs", "minibatch_size", "repeats", "large_repeats"):
            check_int(f"--{name.replace('_', '-')}", getattr(self, name), 1)
        for h in self.hidden:
            check_int("--hidden widths", h, 1)
        check_choice("--obs-dtype", self.obs_dtype, ("uint8", "float16", "float32"))
        check_choice("--world", self.world, ("grid", "magent"))
        if self.threads is not None:
            check_int("--threads", self.threads, 1)
        if self.anchor_python and not Path(self.anchor_python).exists():
            raise ValueError(
                f"--anchor-python {self.anchor_python!r} does not exist; make the venv with "
                "python3 -m venv .venv-magent && .venv-magent/bin/pip install magent2"
            )


# -- tasks: the worlds in the PPO trainer's array protocol -------------------------------------
class BattleTask:
    """Both teams of one ``BattleWorld`` as the learner's rows (one network plays both
    sides); a finished battle is reset with the next seed."""

    def __init__(self, agents: int, obs_dtype: str, seed: int, max_cycles: int = 1000) -> None:
        from colonylab.envs.grid.battle import BattleConfig, BattleWorld

        config = BattleConfig(agents=agents, obs_dtype=obs_dtype, max_cycles=max_cycles)
        self.world = BattleWorld(config)
        self.n_agents = self.world.n_agents
        self.kernel_threads = self.world.kernel_threads
        self._seed = seed

    def _obs(self, view: np.ndarray) -> dict[str, np.ndarray]:
        return {"view": view, "alive": self.world.alive}

    def reset(self, seed: int) -> dict[str, np.ndarray]:
        self._seed = seed
        return self._obs(self.world.reset(seed=seed))

    def step(self, actions: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        result = self.world.step(actions)
        done = result.terminated | result.truncated
        alive = self.world.team_alive
        if result.truncated.any() or (alive == 0).any():
            self._seed += 1
            done |= self.world.alive  # the survivors' episode ends too
            return self.reset(self._seed), result.reward, done
        return self._obs(result.obs), result.reward, done


class MagentBattleTask:
    """Both teams of the MAgent2-faithful ``envs.magent.battle_v4`` world as the learner's
    rows (the group views are written into one preallocated ``[N, 13, 13, 5]`` buffer);
    a finished battle is reset with the next seed."""

    def __init__(self, agents: int, seed: int, max_cycles: int = 1000) -> None:
        try:
            from colonylab.envs.magent import battle_v4
        except ImportError as exc:
            raise ValueError(
                f"--world magent needs colonylab.envs.magent.battle_v4 ({exc})"
            ) from None
        cfg = battle_v4.BattleConfig(map_size=anchor_map_size(agents), max_cycles=max_cycles)
        self.world = battle_v4.BattleWorld(cfg)
        self.n_agents = self.world.n_agents
        self.kernel_threads = getattr(self.world.engine, "kernel_threads", 1)
        self.view = np.zeros((self.n_agents, *VIEW_SHAPE), dtype=np.float32)
        self._seed = seed

    def _obs(
        self, groups: dict[str, np.ndarray], out: dict[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        # with the trainer's out=: the group views go straight into its rollout buffer
        view = out["view"] if out is not None else self.view
        np.concatenate(list(groups.values()), axis=0, out=view)
        if out is None:
            return {"view": view, "alive": self.world.alive}
        np.copyto(out["alive"], self.world.alive)
        return {"view": view, "alive": out["alive"]}

    def reset(self, seed: int) -> dict[str, np.ndarray]:
        self._seed = seed
        obs = self._obs(self.world.reset(seed=seed))
        self.n_agents = self.world.n_agents
        return obs

    def step(
        self, actions: np.ndarray, out: dict[str, np.ndarray] | None = None
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        result = self.world.step(actions)
        done = result.terminated | result.truncated
        if result.info.get("done") or result.truncated.any():
            self._seed += 1
            done |= self.world.alive
            return self.reset(self._seed), result.reward, done
        return self._obs(result.obs, out), result.reward, done


class SyntheticTask:
    """No world: the same views every step (the ceiling's batch). Give it views the
    world made (a reset's), so that the numbers the network sees look like a battle's:
    dense random inputs saturate tanh and slow the CPU down with subnormal floats."""

    def __init__(self, view: np.ndarray) -> None:
        self.n_agents = len(view)
        self.view = view
        self.alive = np.ones(self.n_agents, dtype=bool)
        self.reward = np.zeros(self.n_agents, dtype=np.float32)
        self.done = np.zeros(self.n_agents, dtype=bool)

    def reset(self, seed: int) -> dict[str, np.ndarray]:
        return {"view": self.view, "alive": self.alive}

    def step(self, actions: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        return {"view": self.view, "alive": self.alive}, self.reward, self.done


def anchor_map_size(agents: int) -> int:
    """MAgent2's battle places 0.04 * map_size**2 agents a team."""
    return max(12, math.ceil(math.sqrt(agents / 0.08)))


# the worker runs in MAgent2's venv (no colonylab, no torch there): it steps the PettingZoo
# parallel env and stacks its dicts into arrays in a shared file the trainer reads
ANCHOR_WORKER = r"""
import sys, numpy as np
from magent2.environments import battle_v4
map_size, seed, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
env = battle_v4.parallel_env(map_size=map_size, max_cycles=10**9)
obs, _ = env.reset(seed=seed)
names = list(env.possible_agents)
row = {a: i for i, a in enumerate(names)}
n = len(names)
view_bytes = n * 13 * 13 * 5 * 4
size = view_bytes + n * 4 + n * 4 + 2 * n
mm = np.memmap(path, dtype=np.uint8, mode="w+", shape=(size,))
view = mm[:view_bytes].view(np.float32).reshape(n, 13, 13, 5)
acts = mm[view_bytes:view_bytes + 4 * n].view(np.int32)
reward = mm[view_bytes + 4 * n:view_bytes + 8 * n].view(np.float32)
done = mm[view_bytes + 8 * n:view_bytes + 9 * n].view(np.bool_)
alive = mm[view_bytes + 9 * n:].view(np.bool_)
def write(obs):
    view[...] = 0.0
    alive[...] = False
    for a, o in obs.items():
        i = row[a]
        view[i] = o
        alive[i] = True
write(obs)
print("ready", n, flush=True)
for line in sys.stdin:
    if line.strip() != "step":
        break
    live = env.agents
    obs, rew, term, trunc, _ = env.step({a: int(acts[row[a]]) for a in live})
    reward[...] = 0.0
    done[...] = False
    for a in live:
        i = row[a]
        reward[i] = rew[a]
        done[i] = term[a] or trunc[a]
    write(obs)
    print("ok", flush=True)
"""


class MAgent2Task:
    """MAgent2's PettingZoo battle in a worker process of its own venv (both teams are
    the learner's rows), read through a shared memory-mapped file."""

    def __init__(self, python: str, agents: int, seed: int) -> None:
        self.map_size = anchor_map_size(agents)
        self._dir = tempfile.TemporaryDirectory(prefix="marl-anchor-", dir=_shm_dir())
        path = Path(self._dir.name) / "arrays"
        self._proc = subprocess.Popen(
            [python, "-c", ANCHOR_WORKER, str(self.map_size), str(seed), str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        first = self._proc.stdout.readline().split()
        if not first or first[0] != "ready":
            self.close()
            raise RuntimeError(f"the MAgent2 worker did not start (it said {first!r})")
        n = self.n_agents = int(first[1])
        view_bytes = n * 13 * 13 * 5 * 4
        mm = np.memmap(path, dtype=np.uint8, mode="r+")
        self.view = mm[:view_bytes].view(np.float32).reshape(n, *VIEW_SHAPE)
        self.actions = mm[view_bytes : view_bytes + 4 * n].view(np.int32)
        self.reward = mm[view_bytes + 4 * n : view_bytes + 8 * n].view(np.float32)
        self.done = mm[view_bytes + 8 * n : view_bytes + 9 * n].view(np.bool_)
        self.alive = mm[view_bytes + 9 * n :].view(np.bool_)

    def reset(self, seed: int) -> dict[str, np.ndarray]:
        return {"view": self.view, "alive": self.alive.copy()}

    def step(self, actions: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        self.actions[...] = actions
        self._proc.stdin.write("step\n")
        self._proc.stdin.flush()
        if self._proc.stdout.readline().strip() != "ok":
            raise RuntimeError("the MAgent2 worker stopped")
        return {"view": self.view, "alive": self.alive.copy()}, self.reward, self.done.copy()

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._dir.cleanup()


def _shm_dir() -> str | None:
    return "/dev/shm" if Path("/dev/shm").is_dir() else None


# -- measurements -----------------------------------------------------------------------------
def network(cfg: Config) -> GridPolicy:
    """The benchmarked network (seeded)."""
    torch.manual_seed(cfg.seed)
    return GridPolicy(VIEW_SHAPE, N_ACTIONS, hidden=cfg.hidden)


def _ppo_config(cfg: Config, agents: int) -> PPOConfig:
    samples = cfg.rollout_steps * agents
    return PPOConfig(
        rollout_steps=cfg.rollout_steps,
        epochs=cfg.epochs,
        minibatches=max(1, samples // cfg.minibatch_size),
        seed=cfg.seed,
    )


def _repeats(cfg: Config, agents: int) -> int:
    return cfg.large_repeats if agents > LARGE else cfg.repeats


def measure_training(task: Any, cfg: Config) -> dict[str, float]:
    """Best of ``repeats`` whole PPO iterations on ``task`` after one warm-up."""
    ppo = PPO(network(cfg), task, _ppo_config(cfg, task.n_agents))
    ppo.iterate()  # warm-up: buffers, kernels' first calls
    best: dict[str, float] | None = None
    for _ in range(_repeats(cfg, task.n_agents)):
        record = ppo.iterate()
        if best is None or record["charts/agent_steps_per_s"] > best["agent_steps_per_s"]:
            best = {
                "agent_steps_per_s": record["charts/agent_steps_per_s"],
                "samples": record["charts/agent_steps_iteration"],
                "iteration_s": record["charts/iteration_seconds"],
                "world_s": ppo.timings["world"],
                "forward_s": ppo.timings["forward"],
                "update_s": ppo.timings["update"],
            }
    return best


def measure_ceiling(view: np.ndarray, cfg: Config) -> dict[str, float]:
    """The same forward and PPO update on a synthetic batch of ``rollout_steps x N``
    samples (every step the views ``view [N, 13, 13, 5]``), without a world or copies
    into the buffer: best of ``repeats``."""
    agents = len(view)
    ppo = PPO(network(cfg), SyntheticTask(view), _ppo_config(cfg, agents))
    ppo.collect()  # fills the buffer (untimed)
    ppo.update()  # warm-up
    best = math.inf
    for _ in range(_repeats(cfg, agents)):
        start = time.perf_counter()
        for t in range(cfg.rollout_steps):
            ppo.policy.act(ppo.policy_inputs(t, None), generator=ppo.generator)
        ppo.update()
        best = min(best, time.perf_counter() - start)
    samples = cfg.rollout_steps * agents
    return {"network_ceiling_agent_steps_per_s": samples / best, "ceiling_s": best}


def measure_row(agents: int, cfg: Config, console: Console | None = None) -> dict[str, Any]:
    """One agent count: our training, the ceiling and (with an anchor) MAgent2's training."""
    if cfg.world == "magent":
        task: Any = MagentBattleTask(agents, cfg.seed)
    else:
        task = BattleTask(agents, cfg.obs_dtype, cfg.seed)
    first_views = task.reset(cfg.seed)["view"].copy()
    ours = measure_training(task, cfg)
    ceiling = measure_ceiling(first_views, cfg)
    del first_views
    rate, top = ours["agent_steps_per_s"], ceiling["network_ceiling_agent_steps_per_s"]
    row: dict[str, Any] = {
        "agents": task.n_agents,
        "agent_steps_per_s": rate,
        "network_ceiling_agent_steps_per_s": top,
        "world_share": 1.0 - rate / top,
        "anchor_agent_steps_per_s": None,
        "anchor_agents": None,
        "anchor_world_share": None,
        # the same share read off the iteration's own clocks (less sensitive to noise
        # between the two measurements): the time outside forward and update
        "direct_world_share": 1.0 - (ours["forward_s"] + ours["update_s"]) / ours["iteration_s"],
        "world_threads": task.kernel_threads,
        "repeats": _repeats(cfg, task.n_agents),
        **{k: v for k, v in ours.items() if k != "agent_steps_per_s"},
        "ceiling_s": ceiling["ceiling_s"],
    }
    del task
    if cfg.anchor_python:
        anchor_task = None
        try:
            # MAgent2 stores float32 views; the trainer keeps them as they come
            anchor_task = MAgent2Task(cfg.anchor_python, agents, cfg.seed)
            anchor = measure_training(anchor_task, cfg)
            row["anchor_agents"] = anchor_task.n_agents
            row["anchor_agent_steps_per_s"] = anchor["agent_steps_per_s"]
            anchor_top = measure_ceiling(anchor_task.reset(cfg.seed)["view"].copy(), cfg)
            row["anchor_network_ceiling_agent_steps_per_s"] = anchor_top[
                "network_ceiling_agent_steps_per_s"
            ]
            row["anchor_world_share"] = (
                1.0 - anchor["agent_steps_per_s"] / anchor_top["network_ceiling_agent_steps_per_s"]
            )
            row["anchor_world_s"] = anchor["world_s"]
            row["anchor_direct_world_share"] = (
                1.0 - (anchor["forward_s"] + anchor["update_s"]) / anchor["iteration_s"]
            )
        except (RuntimeError, OSError) as exc:  # a crash of the anchor is reported, not fatal
            row["anchor_error"] = str(exc).splitlines()[-1] if str(exc) else type(exc).__name__
            if console is not None:
                console.print(f"[yellow]MAgent2 failed[/] ({agents:,}): {exc}")
        finally:
            if anchor_task is not None:
                anchor_task.close()
    return row


def main(cfg: Config) -> list[dict[str, Any]]:
    """Measure every agent count, print a table, write JSON when asked."""
    console = Console()
    rows = []
    with torch_threads(cfg.threads):
        torch_count = torch.get_num_threads()
        with console.status("benchmarking PPO on battle...") as status:
            for n in parse_counts("agents", cfg.agents):
                status.update(f"PPO on battle, {n:,} agents...")
                rows.append(measure_row(n, cfg, console))
    world_threads = sorted({r["world_threads"] for r in rows})
    threads = threads_info(
        torch_count,
        1,
        ours_library="torch (network) + Numba (world: "
        + ", ".join(str(t) for t in world_threads)
        + " thread(s))",
        baseline_library="MAgent2 engine (single-threaded); its network on the same torch threads",
    )
    net = network(cfg)
    sizes = [VIEW_SHAPE[0] * VIEW_SHAPE[1] * VIEW_SHAPE[2], *cfg.hidden, N_ACTIONS]
    net_text = " -> ".join(str(s) for s in sizes) + " + 1 (value) tanh MLP"
    table = Table(
        title=f"colony bench marl (PPO, {net_text}, T={cfg.rollout_steps}, {cfg.epochs} epochs, "
        f"minibatch {cfg.minibatch_size}; torch threads {torch_count})"
    )
    for col in (
        "agents",
        "agent-steps/s",
        "network alone",
        "world share",
        "MAgent2",
        "MAgent2 share",
    ):
        table.add_column(col, justify="right")
    for r in rows:
        anchor = r["anchor_agent_steps_per_s"]
        table.add_row(
            f"{r['agents']:,}",
            f"{r['agent_steps_per_s'] / 1e3:,.1f}k",
            f"{r['network_ceiling_agent_steps_per_s'] / 1e3:,.1f}k",
            f"{r['world_share']:.1%}",
            "-" if anchor is None else f"{anchor / 1e3:,.1f}k",
            "-" if r["anchor_world_share"] is None else f"{r['anchor_world_share']:.1%}",
        )
    console.print(table)
    if cfg.json:
        payload = results_header(
            "marl",
            torch.device("cpu"),
            threads,
            cfg,
            network={"spec": net.spec(), "parameters": sum(p.numel() for p in net.parameters())},
        )
        payload["results"] = rows
        write_json(cfg.json, json.loads(json.dumps(payload, default=str)), console)
    return rows
