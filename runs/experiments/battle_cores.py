"""Experiment ``battle-cores``: the population cores (PGPE, PSO) against PPO on the same
budget of environment agent-steps, and AE-Adam against tuned Adam for PPO, all on
MAgent2's ``battle_v4`` against the scripted ``greedy`` army.

===============  ==========================================================================
world            ``colonylab.envs.magent.battle_v4`` (MAgent2's rules; ``map_size`` 45:
                 81 vs 81); blue is always the scripted ``greedy`` army
agent            the ``battle-selfplay`` network, :class:`~colonylab.agents.grid_policy.
                 GridPolicy` ``845 -> 128 -> 128 -> 21 + 1`` (tanh MLP; 127,638
                 parameters), attacks masked to cells showing an enemy
``ppo``          :class:`~colonylab.collective_ml.trainers.ppo.PPO` on ``worlds`` battles
                 (the ``battle-selfplay`` task with a pool of ``greedy`` only); with
                 ``--ray-address`` the rollouts come from ``--ray-actors`` Ray actors
                 (:mod:`~colonylab.collective_ml.trainers.ray_rollout`)
``pgpe``/``pso`` the ask/tell cores (:class:`~colonylab.collective_ml.es.PGPE` with ClipUp,
                 :class:`~colonylab.collective_ml.pso.PSO`) over the same network's flat
                 parameters, driven by :func:`~colonylab.collective_ml.trainers.evolve`;
                 :class:`BattleEvaluator` plays ``battles`` battles per candidate, all
                 ``pop_size x battles`` battles side by side with ONE batched forward per
                 step for the whole population (``torch.baddbmm`` over the stacked
                 weights); candidates act by argmax; every candidate of a generation
                 meets the same battle seeds (common random numbers)
fitness          mean over a candidate's battles of ``(blue lost - red lost) / army``
                 (the kill difference, in ``[-1, 1]``)
budget           ``budget`` living red agent-steps per method (PPO: the learner's rows;
                 the cores: every candidate's soldiers in every battle); wall time is
                 reported beside it
curve            every ``budget / curve_points`` agent-steps the current solution (PPO's
                 weights, PGPE's mean, PSO's best) plays ``validate_battles`` fresh
                 battles against greedy (argmax): win rate and kill difference
``ae-study``     PPO with Adam at each of ``adam_lrs`` on ``tune_seed``; the best (final
                 validation kill difference) and AE-Adam from ``ae_lr`` (untuned) then run
                 on each of ``eval_seeds``; mean and a 95% t-interval of the final win rate,
                 kill difference and episode return
===============  ==========================================================================

``--method compare`` runs ``ppo``, ``pgpe`` (and ``pso`` with ``--with-pso``) one after
the other and writes ``summary.json`` and ``media/cores.png`` (win rate and kill
difference against agent-steps, and against wall time); ``--method ae-study`` writes
``ae_study.json`` and ``media/ae_study.png``. Scalars go to ``metrics.jsonl`` /
TensorBoard namespaced by method (``ppo/validation_win_rate``, ...). The final rows
``{method, agent_steps, seconds, win_rate, kill_diff, kill_ratio}`` are measured on
``final_battles`` battles (``eval_seed`` onward, MAgent2's 1,000-step limit).
No checkpoints are shipped and runs are not resumable (short studies); each method's
final weights are saved to ``checkpoints/<method>.pt``.

**Measured** (seed 0, one thread, niced, on 2 cores shared with ~8 other jobs, so the
wall times are loose). ``--method compare --budget 2000000 --with-pso True`` at map 45,
final 50 battles against greedy: PPO 2.01M agent-steps in 485 s, win rate 1.00, kill
difference +0.21 (kill ratio 1.26); PGPE 2.03M in 915 s, win 0.00, -0.18 (0.82), still
climbing; PSO 2.04M in 1,131 s, win 0.00, -0.66 (0.34). ``--method ae-study
--ae-budget 200000 --ae-worlds 4 --curve-points 2 --final-battles 30``: Adam tuned to
lr 1e-3 on seed 0 (of 3e-4, 1e-3, 3e-3), then on seeds 1-3 win rate 0.37 +- 0.79, kill
difference -0.02 +- 0.12; AE-Adam from 3e-4: 0.02 +- 0.10 and -0.38 +- 0.61 (95%
t-intervals over 3 seeds). AE raised the learning rate to ~3.6e-3 in its first
iteration and then cut it to 1e-7 .. 2e-5 by the end, so those runs stopped learning.

    colony train battle-cores --method compare --budget 1000000
    colony train battle-cores --method ae-study --ae-budget 200000
    colony train battle-cores --method ppo --ray-address local --ray-actors 2
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from colonylab._checks import check_choice, check_dataclass_ints, check_float, check_int
from colonylab.agents.grid_policy import GridPolicy
from colonylab.collective_ml.base import batched_params_dict, flatten_params, unflatten_into
from colonylab.collective_ml.trainers.evolve import evolve
from colonylab.collective_ml.trainers.ppo import PPO, PPOConfig
from colonylab.runs.common.checkpoint import (
    make_checkpoint,
    provenance,
    reproduce_command,
    save_checkpoint,
)
from colonylab.runs.common.rundir import RunDir
from colonylab.runs.common.seeding import seed_everything
from colonylab.runs.experiments import battle_selfplay as bs

NAME = "battle-cores"
METHODS = ("compare", "ppo", "pgpe", "pso", "ae-study")
TRAIN_SEED_BASE = 3_000_000_000
VALIDATION_SEED_BASE = 600_000_000
console = Console()


@dataclass(frozen=True)
class Config:
    """The population cores vs PPO, and AE-Adam vs tuned Adam, on battle_v4 vs greedy."""

    method: str = "compare"
    """compare (ppo, pgpe[, pso]), ppo, pgpe, pso or ae-study."""
    budget: int = 1_000_000
    """Living red agent-steps of training per method."""
    map_size: int = 45
    """Map side of every battle (45: MAgent2's 81 vs 81)."""
    max_cycles: int = 1000
    """Steps until a battle is cut off (training and evaluation)."""
    worlds: int = 8
    """PPO: battles stepped side by side."""
    rollout_steps: int = 32
    """PPO: steps of every battle per iteration."""
    epochs: int = 4
    """PPO: passes over each batch."""
    minibatches: int = 4
    """PPO: minibatches per pass."""
    lr: float = 1e-3
    """PPO: Adam's learning rate (battle-selfplay's)."""
    optimizer: str = "adam"
    """PPO: adam or ae-adam."""
    entropy_coef: float = 0.01
    """PPO: weight of the entropy bonus."""
    ray_address: str | None = None
    """PPO: collect rollouts on Ray actors (local: start Ray on this machine)."""
    ray_actors: int = 2
    """PPO with --ray-address: actors (each steps worlds / ray_actors battles)."""
    pop_size: int = 24
    """PGPE / PSO: candidates per generation (even for PGPE)."""
    battles: int = 2
    """PGPE / PSO: battles per candidate per generation."""
    stdev: float = 0.02
    """PGPE: initial standard deviation of every parameter."""
    center_lr: float = 0.05
    """PGPE: ClipUp's step size of the mean."""
    pso_radius: float = 0.05
    """PSO: the swarm searches (and starts uniform in) the box of +- this around the
    initial weights."""
    with_pso: bool = False
    """compare: run PSO too."""
    curve_points: int = 8
    """Validations over the budget (the learning curve's points)."""
    validate_battles: int = 16
    """Battles against greedy per validation (fresh seeds)."""
    final_battles: int = 50
    """Battles against greedy of each method's final solution (from eval_seed)."""
    eval_seed: int = 910_000_000
    """Seed of the first final battle."""
    adam_lrs: tuple[float, ...] = (3e-4, 1e-3, 3e-3)
    """ae-study: Adam's grid (on tune_seed)."""
    ae_lr: float = 3e-4
    """ae-study: AE-Adam's starting learning rate (PPO's default; not tuned)."""
    ae_budget: int = 200_000
    """ae-study: agent-steps per run."""
    ae_worlds: int = 4
    """ae-study: PPO battles side by side."""
    tune_seed: int = 0
    """ae-study: the seed the Adam grid is tuned on."""
    eval_seeds: tuple[int, ...] = (1, 2, 3)
    """ae-study: the seeds both optimizers are compared on."""
    seed: int = 0
    """Seed of the network, the trainers and the battles."""
    threads: int | None = 1
    """Torch CPU threads (None: torch's default)."""
    out: str | None = None
    """Run directory root (default runs/out)."""
    plots: bool = True
    """Write the plots."""

    def __post_init__(self) -> None:
        check_choice("--method", self.method, METHODS)
        check_dataclass_ints(
            self,
            {"budget": 1, "map_size": bs.battle_v4.MIN_MAP_SIZE, "max_cycles": 1, "worlds": 1,
             "rollout_steps": 1, "epochs": 1, "minibatches": 1, "ray_actors": 1,
             "pop_size": 2, "battles": 1, "curve_points": 1, "validate_battles": 1,
             "final_battles": 1, "eval_seed": 0, "ae_budget": 1, "ae_worlds": 1,
             "tune_seed": 0, "seed": 0},
        )  # fmt: skip
        check_float("--lr", self.lr, 0.0, low_open=True)
        check_float("--ae-lr", self.ae_lr, 0.0, low_open=True)
        check_float("--stdev", self.stdev, 0.0, low_open=True)
        check_float("--center-lr", self.center_lr, 0.0, low_open=True)
        check_float("--pso-radius", self.pso_radius, 0.0, low_open=True)
        check_float("--entropy-coef", self.entropy_coef, 0.0)
        check_choice("--optimizer", self.optimizer, ("adam", "ae-adam"))
        if self.threads is not None:
            check_int("--threads", self.threads, 1)
        if self.method in ("compare", "pgpe") and self.pop_size % 2:
            raise ValueError(f"--pop-size must be even for PGPE (pairs), got {self.pop_size}")
        if self.ray_address is not None and self.worlds % self.ray_actors:
            raise ValueError(
                f"--worlds {self.worlds} must be a multiple of --ray-actors {self.ray_actors}"
            )
        if not self.adam_lrs or not self.eval_seeds:
            raise ValueError("--adam-lrs and --eval-seeds need at least one entry each")
        for lr in self.adam_lrs:
            check_float("--adam-lrs entries", lr, 0.0, low_open=True)
        for s in self.eval_seeds:
            check_int("--eval-seeds entries", s, 0)


# -- the network and its batched forward -------------------------------------------------------
def build_policy(seed: int) -> GridPolicy:
    """The battle-selfplay network, initial weights from ``seed``."""
    torch.manual_seed(seed)
    return GridPolicy(bs.VIEW_SHAPE, bs.N_ACTIONS, hidden=(128, 128))


def population_actions(
    policy: GridPolicy, params: torch.Tensor, view: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """Argmax legal actions of ``P`` candidate networks, each on its own rows.

    Args:
        policy: the template (an ``mlp`` :class:`GridPolicy` without extra inputs).
        params: ``float32[P, D]`` flat parameters (``flatten_params`` order).
        view: ``float32[P, R, 13, 13, 5]``, candidate ``p``'s soldiers in row block ``p``.
        mask: ``bool[P, R, 21]`` legal actions.

    Returns:
        ``int64[P, R]``, the same actions as ``policy`` with those weights would take.
    """
    if policy.encoder_kind != "mlp" or policy.features or policy.agent_ids or policy.mean_field:
        raise ValueError("population_actions needs a plain mlp GridPolicy (view input only)")
    weights = batched_params_dict(policy, params)
    p, r = view.shape[:2]
    x = torch.from_numpy(view).reshape(p, r, -1)
    for k in range(0, len(policy.trunk), 2):
        w, b = weights[f"trunk.{k}.weight"], weights[f"trunk.{k}.bias"]
        x = torch.tanh(torch.baddbmm(b[:, None, :], x, w.transpose(1, 2)))
    w, b = weights["actor.weight"], weights["actor.bias"]
    logits = torch.baddbmm(b[:, None, :], x, w.transpose(1, 2))
    logits = logits.masked_fill(~torch.from_numpy(mask), float("-inf"))
    return logits.argmax(dim=2).numpy()


class BattleEvaluator:
    """Fitness of a population: ``(P, D) -> (P,)``, the mean kill difference of each
    candidate's ``battles`` battles against greedy (module doc), all played side by side.

    ``last_env_steps`` is the living red agent-steps of the last call (the budget's unit).
    """

    def __init__(self, policy: GridPolicy, map_size: int, battles: int, max_cycles: int) -> None:
        self.policy, self.map_size, self.battles = policy, map_size, battles
        self.max_cycles = max_cycles
        self.n_red = bs.army_size(map_size)
        self.last_env_steps = 0
        self.last_results: list[dict[str, float]] = []

    def __call__(self, params: torch.Tensor, seed: int) -> torch.Tensor:
        params = params.detach().float().cpu()
        pop, b, n = params.shape[0], self.battles, self.n_red
        seeds = [seed + j for j in range(b)]  # common random numbers across candidates
        worlds = [bs.make_world(self.map_size, self.max_cycles) for _ in range(pop * b)]
        rngs = [np.random.default_rng(seeds[k % b]) for k in range(pop * b)]
        view = np.zeros((pop, b * n, *bs.VIEW_SHAPE), np.float32)
        mask = np.ones((pop, b * n, bs.N_ACTIONS), bool)
        live = []
        for k, w in enumerate(worlds):
            view[k // b, (k % b) * n : (k % b + 1) * n] = w.reset(seed=seeds[k % b])["red"]
            live.append(k)
        results: list[dict[str, float] | None] = [None] * len(worlds)
        steps = 0
        while live:
            bs.masks(view.reshape(-1, *bs.VIEW_SHAPE), True, out=mask.reshape(-1, bs.N_ACTIONS))
            actions = population_actions(self.policy, params, view, mask)
            still = []
            for k in live:
                w = worlds[k]
                red = actions[k // b, (k % b) * n : (k % b + 1) * n]
                steps += int(w.alive[:n].sum())
                result = w.step(np.concatenate([red, bs.scripted(w, "greedy", rngs[k])]))
                if bs._finished(w, result):
                    results[k] = bs.outcome(w)
                else:
                    view[k // b, (k % b) * n : (k % b + 1) * n] = result.obs["red"]
                    still.append(k)
            live = still
        self.last_env_steps = steps
        self.last_results = [r for r in results if r is not None]
        diff = np.array([(r["blue_lost"] - r["red_lost"]) / n for r in self.last_results])
        return torch.from_numpy(diff.reshape(pop, b).mean(axis=1))


# -- validation -------------------------------------------------------------------------------
def validate(policy: GridPolicy, cfg: Config, battles: int, seed: int) -> dict[str, float]:
    """``battles`` argmax battles against greedy: win rate, kill difference, kill ratio."""
    player = bs.NetworkPlayer(policy, seed, True, deterministic=True)
    results = bs.play(player, "greedy", cfg.map_size, battles, seed, cfg.max_cycles)
    s = bs.summarise(results)
    n = bs.army_size(cfg.map_size)
    diff = float(np.mean([(r["blue_lost"] - r["red_lost"]) / n for r in results]))
    return {
        "win_rate": s["win_rate"],
        "kill_diff": diff,
        "kill_ratio": min(s["kill_ratio"], 1e3),
        "survivors": s["mean_survivors"],
    }


def _thresholds(budget: int, points: int) -> list[int]:
    return [math.ceil(budget * (i + 1) / points) for i in range(points)]


# -- PPO ----------------------------------------------------------------------------------------
def _selfplay_config(cfg: Config, worlds: int) -> bs.Config:
    return bs.Config(
        worlds=worlds, map_size=cfg.map_size, max_cycles=cfg.max_cycles,
        opponents=("greedy",), self_play=0.0, snapshot_every=0, seed=cfg.seed,
    )  # fmt: skip


class ShardTask:
    """``make_task`` of the Ray collector: a shard's ``worlds / shards`` battles against
    greedy (the battle-selfplay task, its finished-battle records dropped)."""

    def __init__(self, cfg: Config, seed: int) -> None:
        self.cfg, self.seed = cfg, seed

    def __call__(self, shard: int, shards: int, policy: GridPolicy) -> Any:
        sp = _selfplay_config(self.cfg, self.cfg.worlds // shards)
        task = bs.SelfPlayTask(sp, policy, bs.make_pool(sp), self.seed * 1000 + shard)
        return _Draining(task)


class _Draining:
    def __init__(self, task: Any) -> None:
        self.task, self.n_agents = task, task.n_agents

    def reset(self, seed: int) -> Any:
        return self.task.reset(seed)

    def step(self, actions: np.ndarray) -> Any:
        out = self.task.step(actions)
        self.task.drain()
        return out


def run_ppo(
    cfg: Config, run: RunDir, *, tag: str, seed: int, lr: float, optimizer: str,
    budget: int, worlds: int,
) -> dict[str, Any]:  # fmt: skip
    """Train PPO for ``budget`` agent-steps; the curve and the final policy."""
    policy = build_policy(seed)
    pcfg = PPOConfig(
        rollout_steps=cfg.rollout_steps, epochs=cfg.epochs, minibatches=cfg.minibatches,
        lr=lr, entropy_coef=cfg.entropy_coef, optimizer=optimizer, seed=seed,
    )  # fmt: skip
    collector = None
    if cfg.ray_address is not None:
        from colonylab.collective_ml.trainers.ray_rollout import RayCollector

        collector = RayCollector(
            ShardTask(replace(cfg, worlds=worlds), seed), policy, cfg.ray_actors, seed,
            address=cfg.ray_address, threads_per_actor=cfg.threads or 1,
        )  # fmt: skip
        ppo = PPO(policy, None, pcfg, collector=collector)
    else:
        sp = _selfplay_config(replace(cfg, seed=seed), worlds)
        task = bs.SelfPlayTask(sp, policy, bs.make_pool(sp), seed)
        ppo = PPO(policy, task, pcfg)
    curve = []
    marks = _thresholds(budget, cfg.curve_points)
    start = time.perf_counter()
    returns: list[float] = []
    try:
        while ppo.agent_steps < budget:
            record = ppo.iterate()
            if ppo.task is not None:
                ppo.task.drain()
            returns += ppo.finished
            scalars = {f"{tag}/{k.split('/')[-1]}": v for k, v in record.items()
                       if k in ("charts/reward_mean", "losses/entropy", "charts/lr",
                                "charts/episode_return")}  # fmt: skip
            if marks and ppo.agent_steps >= marks[0]:
                while marks and ppo.agent_steps >= marks[0]:
                    marks.pop(0)
                seconds = time.perf_counter() - start
                v = validate(policy, cfg, cfg.validate_battles,
                             VALIDATION_SEED_BASE + ppo.iteration)  # fmt: skip
                curve.append({"agent_steps": ppo.agent_steps, "seconds": seconds, **v})
                scalars.update({f"{tag}/validation_{k}": x for k, x in v.items()})
                console.print(
                    f"{tag} it {ppo.iteration:4d}  {ppo.agent_steps:>9,} steps  "
                    f"{seconds:6.0f}s  vs greedy: win {v['win_rate']:.2f} "
                    f"kill diff {v['kill_diff']:+.2f}"
                )
            run.log(ppo.agent_steps, scalars)
    finally:
        if collector is not None:
            collector.close()
    seconds = time.perf_counter() - start
    tail = returns[-64:]
    return {
        "policy": policy, "curve": curve, "agent_steps": ppo.agent_steps, "seconds": seconds,
        "iterations": ppo.iteration,
        "episode_return": float(np.mean(tail)) if tail else float("nan"),
    }  # fmt: skip


# -- the population cores ------------------------------------------------------------------------
def make_core(kind: str, cfg: Config, center: torch.Tensor) -> Any:
    """PGPE (ClipUp) or PSO over the flat parameters, started at ``center``."""
    if kind == "pgpe":
        from colonylab.collective_ml.es import PGPE

        return PGPE(
            center.numel(), cfg.pop_size, center_init=center, stdev_init=cfg.stdev,
            center_lr=cfg.center_lr, seed=cfg.seed, maximize=True,
        )  # fmt: skip
    from colonylab.collective_ml.pso import PSO

    r = cfg.pso_radius  # the swarm searches the box of +-r around the initial weights
    return PSO(
        center.numel(), cfg.pop_size, (center - r, center + r), topology="ring",
        velocity_clamp=0.25, seed=cfg.seed, maximize=True,
    )  # fmt: skip


def run_core(kind: str, cfg: Config, run: RunDir) -> dict[str, Any]:
    """Run PGPE or PSO for ``budget`` agent-steps; the curve and the final policy."""
    policy = build_policy(cfg.seed)
    core = make_core(kind, cfg, flatten_params(policy))
    evaluator = BattleEvaluator(policy, cfg.map_size, cfg.battles, cfg.max_cycles)
    marks = _thresholds(cfg.budget, cfg.curve_points)
    steps = {"n": 0}
    curve: list[dict[str, float]] = []
    start = time.perf_counter()

    def counting(params: torch.Tensor, seed: int) -> torch.Tensor:
        fitness = evaluator(params, seed)
        steps["n"] += evaluator.last_env_steps
        return fitness

    def solution(c: Any) -> torch.Tensor:
        return c.center if kind == "pgpe" else c.best.params

    def check(params: torch.Tensor, g: int) -> tuple[float, dict[str, float]]:
        unflatten_into(policy, params)
        v = validate(policy, cfg, cfg.validate_battles, VALIDATION_SEED_BASE + g)
        seconds = time.perf_counter() - start
        curve.append({"agent_steps": steps["n"], "seconds": seconds, **v})
        console.print(
            f"{kind} gen {g:4d}  {steps['n']:>9,} steps  {seconds:6.0f}s  vs greedy: "
            f"win {v['win_rate']:.2f} kill diff {v['kill_diff']:+.2f}"
        )
        return v["kill_diff"], {f"{kind}/validation_{k}": x for k, x in v.items()}

    def due(g: int, record: dict[str, float]) -> bool:
        hit = bool(marks) and steps["n"] >= marks[0]
        while marks and steps["n"] >= marks[0]:
            marks.pop(0)
        return hit

    def log(g: int, record: dict[str, float]) -> None:
        record[f"{kind}/fitness_mean"] = record.get("charts/fitness_mean", float("nan"))
        record[f"{kind}/fitness_max"] = record.get("charts/fitness_max", float("nan"))
        run.log(steps["n"], {k: v for k, v in record.items() if k.startswith(f"{kind}/")})

    result = evolve(
        core, counting, 10**6, seeds=lambda g: TRAIN_SEED_BASE + 1000 * g, solution=solution,
        validate=check, validate_every=10**6, validate_when=due,
        stop=lambda g, record: steps["n"] >= cfg.budget, log=log,
    )  # fmt: skip
    unflatten_into(policy, solution(core))
    return {
        "policy": policy, "curve": curve, "agent_steps": steps["n"],
        "seconds": time.perf_counter() - start, "generations": result.generations,
    }  # fmt: skip


# -- main -------------------------------------------------------------------------------------
def _final(cfg: Config, method: str, out: dict[str, Any]) -> dict[str, Any]:
    v = validate(out["policy"], cfg, cfg.final_battles, cfg.eval_seed)
    return {
        "method": method, "agent_steps": out["agent_steps"], "seconds": out["seconds"],
        "final_battles": cfg.final_battles, **v, "curve": out["curve"],
    }  # fmt: skip


def _save(run: RunDir, cfg: Config, method: str, policy: GridPolicy, command: str) -> None:
    ckpt = make_checkpoint(
        NAME, spec=policy.spec(), state_dict=policy.state_dict(), config=cfg, trainer=None,
        rng=None, provenance=provenance(command, seed=cfg.seed),
    )  # fmt: skip
    save_checkpoint(run.checkpoints / f"{method}.pt", ckpt)


def main(cfg: Config) -> dict[str, Any]:
    """Run the chosen method(s); write the summary, the checkpoints and the plots."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    command = reproduce_command(f"train {NAME}", cfg)
    run = RunDir(NAME, cfg.seed, cfg, root=cfg.out)
    console.print(f"[bold]{NAME}[/] ({cfg.method}) -> {run.path}")
    try:
        if cfg.method == "ae-study":
            summary = ae_study(cfg, run)
        else:
            methods = {"compare": ("ppo", "pgpe", *(("pso",) if cfg.with_pso else ()))}.get(
                cfg.method, (cfg.method,)
            )
            rows = []
            for method in methods:
                if method == "ppo":
                    out = run_ppo(cfg, run, tag="ppo", seed=cfg.seed, lr=cfg.lr,
                                  optimizer=cfg.optimizer, budget=cfg.budget,
                                  worlds=cfg.worlds)  # fmt: skip
                else:
                    out = run_core(method, cfg, run)
                _save(run, cfg, method, out["policy"], command)
                rows.append(_final(cfg, method, out))
                r = rows[-1]
                console.print(
                    f"[bold]{method}[/]: {r['agent_steps']:,} agent-steps in {r['seconds']:.0f}s; "
                    f"final vs greedy ({cfg.final_battles} battles): win {r['win_rate']:.2f}, "
                    f"kill diff {r['kill_diff']:+.3f}, kill ratio {r['kill_ratio']:.3g}"
                )
            summary = {"command": command, "map_size": cfg.map_size, "rows": rows}
            (run.path / "summary.json").write_text(json.dumps(summary, indent=1))
            if cfg.plots:
                plot_curves(rows, run.media / "cores.png", cfg)
    finally:
        run.close()
    return {"run": str(run.path), **summary}


def _interval(xs: list[float]) -> tuple[float, float]:
    """Mean and the half-width of a 95% t-interval."""
    from scipy import stats

    a = np.asarray(xs, float)
    if len(a) < 2:
        return float(a.mean()), float("nan")
    half = stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / math.sqrt(len(a))
    return float(a.mean()), float(half)


def ae_study(cfg: Config, run: RunDir) -> dict[str, Any]:
    """Tune Adam's learning rate on ``tune_seed``, then Adam (tuned) vs AE-Adam (untuned
    start) on ``eval_seeds``; the same budget everywhere (module doc)."""
    common = dict(budget=cfg.ae_budget, worlds=cfg.ae_worlds)
    tuning = []
    for lr in cfg.adam_lrs:
        out = run_ppo(cfg, run, tag=f"tune-adam-{lr:g}", seed=cfg.tune_seed, lr=lr,
                      optimizer="adam", **common)  # fmt: skip
        v = validate(out["policy"], cfg, cfg.final_battles, cfg.eval_seed)
        tuning.append({"lr": lr, "seconds": out["seconds"],
                       "episode_return": out["episode_return"], **v})  # fmt: skip
    best = max(tuning, key=lambda r: (r["kill_diff"], r["win_rate"]))
    rows: dict[str, list[dict[str, float]]] = {"adam": [], "ae-adam": []}
    for seed in cfg.eval_seeds:
        for opt, lr in (("adam", best["lr"]), ("ae-adam", cfg.ae_lr)):
            out = run_ppo(cfg, run, tag=f"{opt}-seed{seed}", seed=seed, lr=lr, optimizer=opt,
                          **common)  # fmt: skip
            v = validate(out["policy"], cfg, cfg.final_battles, cfg.eval_seed)
            rows[opt].append({"seed": seed, "lr": lr, "seconds": out["seconds"],
                              "episode_return": out["episode_return"], **v})  # fmt: skip
    table = {}
    for opt, rs in rows.items():
        table[opt] = {
            key: dict(zip(("mean", "ci95"), _interval([r[key] for r in rs]), strict=True))
            for key in ("win_rate", "kill_diff", "episode_return")
        }
    summary = {"tuning": tuning, "adam_lr": best["lr"], "ae_lr": cfg.ae_lr, "runs": rows,
               "table": table, "budget": cfg.ae_budget, "worlds": cfg.ae_worlds}  # fmt: skip
    (run.path / "ae_study.json").write_text(json.dumps(summary, indent=1))
    for opt, t in table.items():
        console.print(
            f"{opt}: win {t['win_rate']['mean']:.2f} ± {t['win_rate']['ci95']:.2f}, kill diff "
            f"{t['kill_diff']['mean']:+.3f} ± {t['kill_diff']['ci95']:.3f}, return "
            f"{t['episode_return']['mean']:.1f} ± {t['episode_return']['ci95']:.1f}"
        )
    if cfg.plots:
        plot_ae(summary, run.media / "ae_study.png")
    return summary


# -- plots --------------------------------------------------------------------------------------
def plot_curves(rows: list[dict[str, Any]], path: Path, cfg: Config) -> Path:
    """Win rate and kill difference against greedy over agent-steps and wall time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4), constrained_layout=True)
    for i, r in enumerate(rows):
        c = r["curve"]
        x = [p["agent_steps"] for p in c]
        kw = {"color": f"C{i}", "marker": "o", "ms": 3, "label": r["method"]}
        axes[0].plot(x, [p["win_rate"] for p in c], **kw)
        axes[1].plot(x, [p["kill_diff"] for p in c], **kw)
        axes[2].plot([p["seconds"] for p in c], [p["kill_diff"] for p in c], **kw)
    n = bs.army_size(cfg.map_size)
    axes[0].set(xlabel="agent-steps", ylabel="win rate vs greedy", ylim=(-0.03, 1.03),
                title=f"battle_v4 {n} vs {n} (map {cfg.map_size}): win rate")  # fmt: skip
    axes[1].set(xlabel="agent-steps", ylabel="(blue lost - red lost) / army",
                title="kill difference vs greedy")  # fmt: skip
    axes[2].set(xlabel="wall seconds (2 shared cores, niced)", ylabel="kill difference",
                title="the same against wall time")  # fmt: skip
    for ax in axes:
        ax.legend(fontsize=8)
    for ax in axes[1:]:
        ax.axhline(0.0, color="0.5", lw=0.8, ls="--")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_ae(summary: dict[str, Any], path: Path) -> Path:
    """Final kill difference and win rate per seed: Adam (tuned) vs AE-Adam."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for j, key in enumerate(("kill_diff", "win_rate")):
        ax = axes[j]
        for i, (opt, rs) in enumerate(summary["runs"].items()):
            ys = [r[key] for r in rs]
            ax.scatter([i] * len(ys), ys, color=f"C{i}", alpha=0.7)
            t = summary["table"][opt][key]
            ax.errorbar([i + 0.15], [t["mean"]], yerr=[t["ci95"]], fmt="s", color=f"C{i}",
                        capsize=4)  # fmt: skip
        ax.set_xticks([0, 1], [f"adam lr {summary['adam_lr']:g}",
                               f"ae-adam from {summary['ae_lr']:g}"])  # fmt: skip
        ax.set(ylabel=key.replace("_", " ") + " vs greedy",
               title=f"PPO, {summary['budget']:,} agent-steps per run")  # fmt: skip
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
