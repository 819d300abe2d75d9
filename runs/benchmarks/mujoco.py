"""Benchmark ``colony bench mujoco``: many modular robots with a policy in the loop,
against a Gymnasium loop and MuJoCo's own physics ceiling, in the same run.

Three ways of stepping MuJoCo robots, timed one after the other:

``ours``        :class:`~colonylab.envs.mujoco.modular.ModularWorld`: ``robots`` robots of
                mixed bodies (default: the 12 Walker++ bodies in turn), stepped by
                MuJoCo's ``rollout``, each of ``threads`` threads stepping its share
                of the robots (``--step-threads groups``, the default), the per-limb
                observations, rewards, terminations and autoresets computed every
                step, and a policy in the loop: one shared linear layer over every
                limb's observation (torch, one thread), ``tanh``, as actions.
``ceiling``     the physics alone: MuJoCo's multi-threaded ``rollout`` of the same
                robots (the same bodies, compiled without the limb sensors the world
                reads its observations from) from the states ``ours`` started its
                timed steps from, replaying open-loop the very controls ``ours``
                applied (``threads`` threads): the same trajectories without the
                policy, the observations and Python. Timed two ways, the faster
                counts: ``long``, one call per body for all steps (the faster of
                MuJoCo's default chunking and one chunk per thread), and
                ``stepped``, one call per body and env step (one chunk per thread);
                on the shared 2-core machine ``stepped`` was the faster (both are in
                the JSON, ``ceiling_env_steps_per_s``). For this, ``ours`` runs with
                ``terminate=False`` (fallen robots go on; episodes of 1000 steps are
                longer than the timed part), so both simulate the same states.
``gymnasium``   ``gymnasium.make("Walker2d-v5")`` stepped in a Python loop with random
                actions, reset when an episode ends (one thread): what a user writes
                without a batched world.

Rows carry env-steps/s, ``ratio_vs_gymnasium`` and ``share_of_ceiling`` (ours / ceiling,
goal >= 0.75). Robots stepped together are the point, so the rates are per env step of
one robot (``frame_skip`` = 4 MuJoCo steps for ours and the ceiling, 4 for
Walker2d-v5 too). Timings on a shared machine move; the best of ``repeats`` counts.

JSON: ``{"suite", "machine", "torch", "mujoco", "threads": {"ours", "baseline",
"ceiling"}, "device", "config", "rows": [{"impl", "robots", "env_steps", "seconds",
"env_steps_per_s", "ratio_vs_gymnasium", "share_of_ceiling"}],
"ceiling_env_steps_per_s": {"long", "stepped"}, "goal": 0.75, "goal_met"}``.

    colony bench mujoco --json runs/out/bench-mujoco.json
    colony bench mujoco --robots 256 --threads 2 --steps 200
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from colonylab._checks import check_dataclass_ints
from colonylab.runs.common.bench import results_header, threads_info, threads_text, write_json

GOAL = 0.75


@dataclass(frozen=True)
class Config:
    """256 modular robots with a policy in the loop vs Gymnasium Walker2d-v5 and the
    physics ceiling (MuJoCo's rollout)."""

    robots: int = 256
    """Robots stepped together (ours and the ceiling)."""
    bodies: tuple[str, ...] = ()
    """Bodies, robot ``n`` gets ``bodies[n % len]`` (empty: the 12 Walker++ bodies)."""
    steps: int = 200
    """Env steps timed (ours and the ceiling)."""
    gym_steps: int = 2000
    """Env steps of the Gymnasium Walker2d-v5 loop."""
    threads: int = 2
    """Threads of MuJoCo's rollout (ours and the ceiling); Gymnasium runs on one."""
    step_threads: str = "groups"
    """How ours uses the threads (the world's ``step_threads``): ``groups`` (each thread
    steps its share of all bodies) or ``rollout`` (every body split over MuJoCo's pool);
    the other way is timed too, as the row ``ours (<other> threading)``."""
    repeats: int = 2
    """Timed repeats; the best counts."""
    seed: int = 0
    """Seed of the starts, the policy and the open-loop controls."""
    json: str | None = None
    """Write the results to this JSON file."""
    extra: dict[str, str] = field(default_factory=dict)
    """Free-form notes stored in the JSON."""

    def __post_init__(self) -> None:
        check_dataclass_ints(
            self, {"robots": 1, "steps": 1, "gym_steps": 1, "threads": 0, "repeats": 1}
        )
        from colonylab.envs.mujoco.morphology import body

        for name in self.bodies:
            body(name)
        if self.step_threads not in ("groups", "rollout"):
            raise ValueError(f"--step-threads must be groups or rollout, got {self.step_threads!r}")


def _world(cfg: Config, step_threads: str | None = None):
    from colonylab.envs.mujoco.modular import ModularConfig, ModularWorld
    from colonylab.envs.mujoco.morphology import body_names

    bodies = tuple(cfg.bodies) or tuple(body_names("walker"))
    return ModularWorld(
        ModularConfig(
            num_envs=cfg.robots,
            bodies=bodies,
            autoreset=True,
            terminate=False,  # fallen robots go on, as in the open-loop ceiling
            threads=cfg.threads,
            step_threads=step_threads or cfg.step_threads,
            validate_actions=False,
            render_envs=1,
        )
    )


def time_ours(
    cfg: Config, step_threads: str | None = None
) -> tuple[float, list[np.ndarray], np.ndarray]:
    """Seconds for ``steps`` steps of the world with the linear policy in the loop; also
    the states the timed part started from (per body) and the actions it applied
    (``[steps, N, L]``), which the ceiling replays."""
    world = _world(cfg, step_threads)
    gen = torch.Generator().manual_seed(cfg.seed)
    weight = 0.3 * torch.randn(world.obs_dim, generator=gen)
    obs = world.reset(seed=cfg.seed)
    actions = np.zeros((cfg.steps, cfg.robots, world.max_limbs))
    with torch.no_grad():
        for _ in range(3):  # warm-up
            obs = world.step(torch.tanh(obs @ weight)).obs
        starts = [state.copy() for state in world.states]
        start = time.perf_counter()
        for t in range(cfg.steps):
            action = torch.tanh(obs @ weight)
            obs = world.step(action).obs
            actions[t] = action.numpy()
        seconds = time.perf_counter() - start
    world.close()
    return seconds, starts, actions


def time_ceiling(cfg: Config, starts: list[np.ndarray], actions: np.ndarray) -> dict[str, float]:
    """Seconds for MuJoCo's rollout of the same robots from the same states with the
    same controls (what ``ours`` applied), open loop, two ways: ``long``, one call per
    body for all steps (the faster of MuJoCo's default chunking and one chunk per
    thread), and ``stepped``, one call per body and env step (``frame_skip`` MuJoCo
    steps, one chunk per thread), which this machine often runs faster."""
    import mujoco
    from mujoco import rollout

    from colonylab.envs.mujoco.morphology import to_mjcf

    world = _world(cfg)
    fs = world.frame_skip
    nstep = cfg.steps * fs
    work = []
    for gi, g in enumerate(world.groups):
        control = actions[:, g.robots, 1 : g.num_limbs]  # [steps, n_g, nu]
        control = np.ascontiguousarray(np.repeat(control.transpose(1, 0, 2), fs, axis=1))
        model = mujoco.MjModel.from_xml_string(to_mjcf(g.spec))  # the body, no sensors
        datas = [mujoco.MjData(model) for _ in range(max(1, cfg.threads))]
        work.append((g, model, datas, np.ascontiguousarray(starts[gi]), control))
    per_thread = [max(1, -(-g.robots.size // max(1, cfg.threads))) for g, *_ in work]
    seconds = {"long": 0.0, "stepped": 0.0}
    with rollout.Rollout(nthread=cfg.threads) as pool:
        for (g, model, datas, state0, control), chunk_one in zip(work, per_thread, strict=True):
            n = state0.shape[0]
            state = np.empty((n, nstep, g.nstate))
            sensordata = np.empty((n, nstep, 0))
            best = np.inf
            for chunk in (None, chunk_one):
                start = time.perf_counter()
                pool.rollout(
                    [model] * n, datas, state0, control, nstep=nstep, state=state,
                    sensordata=sensordata, skip_checks=True, chunk_size=chunk,
                )  # fmt: skip
                best = min(best, time.perf_counter() - start)
            seconds["long"] += best
        current = [w[3].copy() for w in work]
        outs = [(np.empty((w[3].shape[0], fs, w[0].nstate)), np.empty((w[3].shape[0], fs, 0)))
                for w in work]  # fmt: skip
        start = time.perf_counter()
        for t in range(cfg.steps):
            for k, (_g, model, datas, _, control) in enumerate(work):
                n = current[k].shape[0]
                state, sensordata = outs[k]
                pool.rollout(
                    [model] * n, datas, current[k],
                    np.ascontiguousarray(control[:, t * fs : (t + 1) * fs]), nstep=fs,
                    state=state, sensordata=sensordata, skip_checks=True,
                    chunk_size=per_thread[k],
                )  # fmt: skip
                current[k] = np.ascontiguousarray(state[:, -1])
        seconds["stepped"] = time.perf_counter() - start
    world.close()
    return seconds


def time_gymnasium(cfg: Config) -> float:
    """Seconds for ``gym_steps`` steps of ``gym.make("Walker2d-v5")`` with random actions."""
    import gymnasium as gym

    env = gym.make("Walker2d-v5")
    env.reset(seed=cfg.seed)
    env.action_space.seed(cfg.seed)
    actions = np.random.default_rng(cfg.seed).uniform(-1, 1, (cfg.gym_steps, 6))
    start = time.perf_counter()
    for t in range(cfg.gym_steps):
        _, _, terminated, truncated, _ = env.step(actions[t])
        if terminated or truncated:
            env.reset()
    seconds = time.perf_counter() - start
    env.close()
    return seconds


def main(cfg: Config) -> list[dict[str, float]]:
    """Time the three, print a table, write JSON when asked."""
    import mujoco

    console = Console()
    best = {"ours": np.inf, "ours_other": np.inf, "ceiling": np.inf, "gymnasium": np.inf}
    other = "groups" if cfg.step_threads == "rollout" else "rollout"
    modes = {"long": np.inf, "stepped": np.inf}
    with console.status("benchmarking MuJoCo robots..."):
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for _ in range(cfg.repeats):
                best["gymnasium"] = min(best["gymnasium"], time_gymnasium(cfg))
                seconds, starts, actions = time_ours(cfg)
                best["ours"] = min(best["ours"], seconds)
                best["ours_other"] = min(best["ours_other"], time_ours(cfg, other)[0])
                ceiling = time_ceiling(cfg, starts, actions)
                modes = {k: min(modes[k], v) for k, v in ceiling.items()}
                best["ceiling"] = min(best["ceiling"], *ceiling.values())
        finally:
            torch.set_num_threads(previous)
    steps = {k: cfg.robots * cfg.steps for k in ("ours", "ours_other", "ceiling")}
    steps["gymnasium"] = cfg.gym_steps
    rate = {k: steps[k] / best[k] for k in best}
    rows = []
    names = {"ours_other": f"ours ({other} threading)"}
    for impl in ("ours", "ours_other", "ceiling", "gymnasium"):
        rows.append(
            {
                "impl": names.get(impl, impl),
                "robots": 1 if impl == "gymnasium" else cfg.robots,
                "env_steps": steps[impl],
                "seconds": best[impl],
                "env_steps_per_s": rate[impl],
                "ratio_vs_gymnasium": rate[impl] / rate["gymnasium"],
                "share_of_ceiling": rate[impl] / rate["ceiling"],
            }
        )
    thread_info = threads_info(cfg.threads, 1, ceiling=cfg.threads, policy="torch 1")
    table = Table(title=f"colony bench mujoco ({cfg.robots} robots; {threads_text(thread_info)})")
    for col in ("impl", "robots", "env-steps/s", "vs Gymnasium", "share of ceiling"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            r["impl"],
            str(r["robots"]),
            f"{r['env_steps_per_s']:.4g}",
            f"{r['ratio_vs_gymnasium']:.2f}x",
            f"{r['share_of_ceiling']:.0%}",
        )
    console.print(table)
    met = rows[0]["share_of_ceiling"] >= GOAL
    console.print(
        f"goal: ours >= {GOAL:.0%} of the ceiling: {'met' if met else 'NOT met'} "
        f"({rows[0]['share_of_ceiling']:.0%})"
    )
    if cfg.json:
        payload = {
            **results_header(
                "mujoco", torch.device("cpu"), thread_info, cfg, mujoco=mujoco.__version__
            ),
            "rows": rows,
            "ceiling_env_steps_per_s": {k: steps["ceiling"] / v for k, v in modes.items()},
            "goal": GOAL,
            "goal_met": met,
            **({"notes": cfg.extra} if cfg.extra else {}),
        }
        write_json(cfg.json, payload, console)
    return rows
