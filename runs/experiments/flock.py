"""Experiment ``flock``: a learned heading controller for a flock with an informed minority,
vs Couzin's zone model (Couzin, Krause, Franks & Levin, Nature 2005).

5% of the particles know a target direction (a random one per flock); nobody can tell
who they are. Every particle runs the same small network on what it senses and picks
its desired heading; the flock should end up moving toward the target.

===============  ==========================================================================
world            :class:`~colonylab.envs.consensus.flock.FlockWorld` with
                 :data:`~colonylab.envs.consensus.flock.COUZIN_2005`'s settings (zones,
                 speed, turn limit, noise, density 0.1, 5% informed, random target) and
                 ``controller="external"``
agent            per particle, the same MLP ``7 -> hidden -> 2`` (tanh) over its egocentric
                 observation (mean neighbour heading, local order, neighbour count,
                 informed flag, target direction if informed); desired heading = own
                 heading + ``atan2(sin phi + out_1 + a sin g, cos phi + out_0 + a cos g)``
                 (``phi``: mean neighbour heading, ``g``: the target direction relative
                 to the own heading, known to the informed only; ``a`` a learned gain,
                 starting at 1); the output layer starts at zero, so training starts
                 from Vicsek's alignment with the informed pulled toward the target;
                 the network is made mirror-symmetric (the average of its answer and
                 the flipped answer to the flipped input: no built-in turning bias);
                 spec ``{"type": "flock-mlp", "hidden": H}``
core             :class:`~colonylab.collective_ml.es.PGPE` (ClipUp) through
                 :func:`~colonylab.collective_ml.trainers.evolve`; all candidates' flocks in
                 one batched world, one ``bmm`` per step
fitness          the flock's alignment with the target ``mean_i cos(theta_i - target)``,
                 averaged over the last quarter of ``steps`` and over ``flocks`` flocks of
                 ``n`` particles (fresh flocks and targets every generation)
evaluation       ``colony eval flock``: rows ``{controller, n, noise, informed, order,
                 accuracy_to_target, ...}`` (``flock.evaluate``: ``eval_runs`` flocks,
                 ``1 - |heading error| / pi``) for couzin, vicsek (with the informed
                 weighting) and the learned controller at N = 100 and 1,000, same noise
===============  ==========================================================================

Shipped: ``runs/checkpoints/flock.pt`` from ``colony train flock --generations 30``
(validation alignment 1.000). ``colony eval flock`` (32 flocks x 400 steps, noise 0.05,
5% informed): accuracy to target, learned 0.997 / 0.997 at N = 100 / 1,000 vs Couzin's
zones 0.835 / 0.952 and Vicsek alignment with the same informed weighting 0.994 / 0.990:
in this world plain alignment plus a target pull is already near perfect; the learned
controller starts from exactly that (zero output layer, gain 1) and PGPE keeps it.

    colony train flock
    colony eval flock --json flock.json
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from colonylab._checks import check_dataclass_ints, check_float
from colonylab.collective_ml.es import PGPE
from colonylab.collective_ml.trainers import evolve
from colonylab.envs.consensus.flock import COUZIN_2005, FlockConfig, FlockWorld
from colonylab.envs.consensus.flock import evaluate as evaluate_flock
from colonylab.runs.common.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    make_checkpoint,
    provenance,
    reproduce_command,
    rng_states,
    save_checkpoint,
    set_rng_states,
)
from colonylab.runs.common.rundir import RunDir
from colonylab.runs.common.seeding import seed_everything

EXPERIMENT = "flock"
SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints" / "flock.pt"
N_OBS = 7
console = Console()


@dataclass(frozen=True)
class Config:
    """Train a per-particle heading controller (PGPE) for a flock with 5% informed."""

    n: int = 100
    """Particles per training flock."""
    flocks: int = 8
    """Training flocks per candidate (fresh each generation)."""
    steps: int = 400
    """Steps per training episode."""
    noise: float = COUZIN_2005["noise"]
    """Angular noise (Couzin 2005's setting)."""
    informed: float = 0.05
    """Share of informed particles."""
    hidden: int = 16
    """Hidden units of the controller."""
    pop_size: int = 16
    """PGPE candidates per generation (even)."""
    generations: int = 60
    """Generations."""
    center_lr: float = 0.1
    """ClipUp's step of the mean."""
    stdev_init: float = 0.05
    """Initial sampling standard deviation."""
    validate_every: int = 10
    """Validate the mean every this many generations."""
    checkpoint_every: int = 10
    """Write checkpoints/latest.pt every this many generations."""
    eval_sizes: tuple[int, ...] = (100, 1000)
    """``colony eval``: flock sizes."""
    eval_runs: int = 32
    """``colony eval``: flocks per row."""
    eval_seed: int = 2026
    """``colony eval``: seed of the evaluation flocks (training uses others)."""
    seed: int = 0
    """Seed of the core and the training flocks."""
    threads: int = 1
    """Torch CPU threads."""
    out: str | None = None
    """Run directory root (default runs/out)."""

    def __post_init__(self) -> None:
        check_dataclass_ints(
            self,
            {"n": 20, "flocks": 1, "steps": 4, "hidden": 1, "pop_size": 2, "generations": 1,
             "validate_every": 1, "checkpoint_every": 1, "eval_runs": 1, "eval_seed": 0,
             "seed": 0, "threads": 1},
        )  # fmt: skip
        if self.pop_size % 2:
            raise ValueError(f"--pop-size must be even (antithetic pairs), got {self.pop_size}")
        check_float("--noise", self.noise, 0)
        check_float("--informed", self.informed, 0, 1)
        check_float("--center-lr", self.center_lr, 0, low_open=True)
        check_float("--stdev-init", self.stdev_init, 0, low_open=True)
        if not self.eval_sizes or any(
            isinstance(n, bool) or not isinstance(n, int) or n < 20 for n in self.eval_sizes
        ):
            raise ValueError(f"--eval-sizes must be flock sizes >= 20, got {self.eval_sizes!r}")


def world_config(cfg: Config, n: int, batch: int, controller: str = "external") -> FlockConfig:
    """Couzin 2005's flock of ``n`` with this run's noise and informed share."""
    kw = {**COUZIN_2005, "controller": controller, "noise": cfg.noise,
          "informed_frac": cfg.informed, "max_episode_steps": cfg.steps}  # fmt: skip
    return FlockConfig(n=n, batch=batch, **kw)


def num_params(hidden: int) -> int:
    """Weights of the controller ``7 -> hidden -> 2`` plus its target gain."""
    return N_OBS * hidden + hidden + hidden * 2 + 2 + 1


def unpack(params: torch.Tensor, hidden: int) -> tuple[torch.Tensor, ...]:
    """``(P, D)`` flat weights -> ``w1 (P, 7, H), b1 (P, 1, H), w2 (P, H, 2), b2 (P, 1, 2),
    gain (P, 1, 1)``."""
    p = params.shape[0]
    sizes = [N_OBS * hidden, hidden, hidden * 2, 2, 1]
    w1, b1, w2, b2, gain = torch.split(params, sizes, dim=1)
    return (w1.reshape(p, N_OBS, hidden), b1.reshape(p, 1, hidden),
            w2.reshape(p, hidden, 2), b2.reshape(p, 1, 2), gain.reshape(p, 1, 1))  # fmt: skip


def desired_headings(params: torch.Tensor, hidden: int, world: FlockWorld, obs: np.ndarray):
    """Desired headings ``float64[B, n]`` of ``P`` controllers, each driving ``B / P`` of
    the world's flocks (candidate ``p`` drives flocks ``p * B/P ..``)."""
    b, n, _ = obs.shape
    p = params.shape[0]
    x = torch.from_numpy(obs).reshape(p, (b // p) * n, N_OBS)  # (P, R*n, 7)
    w1, b1, w2, b2, gain = unpack(params, hidden)
    flip = torch.tensor([1.0, -1.0, 1.0, 1.0, 1.0, 1.0, -1.0])  # the mirror image (y -> -y)
    with torch.no_grad():
        out = torch.bmm(torch.tanh(torch.bmm(x, w1) + b1), w2) + b2  # (P, R*n, 2)
        mirrored = torch.bmm(torch.tanh(torch.bmm(x * flip, w1) + b1), w2) + b2
        # mirror-symmetric: a left-right flipped world gets the flipped answer (no
        # built-in turning bias, which would make the flock circle)
        out = 0.5 * (out + mirrored * torch.tensor([1.0, -1.0]))
        out = out + gain * x[..., 5:7]  # the target pull (zero for the uninformed)
    out = out.reshape(b, n, 2).numpy().astype(np.float64)
    rel = np.arctan2(obs[..., 1] + out[..., 1], obs[..., 0] + out[..., 0])
    return world.headings + rel


def alignment(params: torch.Tensor, cfg: Config, seed: int, flocks: int, n: int) -> np.ndarray:
    """``(P,)`` mean target alignment over the last quarter of ``cfg.steps``."""
    p = params.shape[0]
    world = FlockWorld(world_config(cfg, n, p * flocks))
    obs = world.reset(seed=seed)
    total = np.zeros(p * flocks)
    tail = max(1, cfg.steps // 4)
    for t in range(cfg.steps):
        obs = world.step(desired_headings(params, cfg.hidden, world, obs)).obs
        if t >= cfg.steps - tail:
            total += world.target_alignment()
    return (total / tail).reshape(p, flocks).mean(1)


def main(cfg: Config, resume: str | None = None) -> dict[str, Any]:
    """Evolve the controller; save it (``checkpoints/flock.pt``)."""
    torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    dim = num_params(cfg.hidden)
    g = torch.Generator().manual_seed(cfg.seed)
    center = torch.randn(dim, generator=g, dtype=torch.float64).float() * 0.1
    center[N_OBS * cfg.hidden + cfg.hidden :] = 0.0  # zero output: Vicsek + the target pull
    center[-1] = 1.0  # the target gain starts as strong as the social direction
    core = PGPE(dim, cfg.pop_size, center_init=center, stdev_init=cfg.stdev_init,
                center_lr=cfg.center_lr, seed=cfg.seed, maximize=True)  # fmt: skip
    state = None
    if resume is not None:
        ckpt = load_checkpoint(latest_checkpoint(resume), EXPERIMENT)
        state = ckpt["trainer"]
        set_rng_states(ckpt["rng"])
    run = RunDir(EXPERIMENT, cfg.seed, cfg, root=cfg.out, resume=resume)
    if state is not None:
        run.truncate_metrics(int(state["generation"]))
    command = reproduce_command(f"train {EXPERIMENT}", cfg)
    spec = {"type": "flock-mlp", "hidden": cfg.hidden}

    def checkpoint(trainer: dict, params: torch.Tensor, metrics: dict | None = None) -> dict:
        return make_checkpoint(
            EXPERIMENT, spec=spec, state_dict={"params": params.float()}, config=cfg,
            trainer=trainer, rng=rng_states(),
            provenance=provenance(command, seed=cfg.seed, metrics=metrics),
        )  # fmt: skip

    def evaluator(params: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        return torch.from_numpy(alignment(params, cfg, int(seed), cfg.flocks, cfg.n)).float()

    def validate(params: torch.Tensor, gen: int) -> float:
        return float(alignment(params[None], cfg, 10**6 + cfg.seed, 16, cfg.n)[0])

    console.print(f"[bold]{EXPERIMENT}[/] -> {run.path}")
    result = evolve(
        core, evaluator, cfg.generations, seeds=lambda gen: cfg.seed * 100_003 + gen,
        validate=validate, validate_every=cfg.validate_every, log=run,
        save=lambda s: save_checkpoint(run.checkpoints / "latest.pt", checkpoint(s, core.center)),
        checkpoint_every=cfg.checkpoint_every, resume=state,
        progress=lambda gen, r: console.print(
            f"gen {gen}: fitness max {r['charts/fitness_max']:.3f} mean "
            f"{r['charts/fitness_mean']:.3f}"
            + (f", validation {r['charts/validation']:.3f}" if "charts/validation" in r else "")
        ),
    )  # fmt: skip
    run.close()
    metrics = {"validation_alignment": result.score, "generations": result.generations}
    path = save_checkpoint(
        run.checkpoints / "flock.pt", checkpoint(result.state, result.params, metrics)
    )
    console.print(f"validation alignment {result.score:.3f}\ncheckpoint: {path}")
    return metrics


def load_controller(checkpoint: str | Path | None = None) -> tuple[torch.Tensor, dict]:
    """Flat weights ``(D,)`` and the checkpoint (None: the shipped one)."""
    ckpt = load_checkpoint(checkpoint if checkpoint is not None else SHIPPED, EXPERIMENT)
    return ckpt["state_dict"]["params"], ckpt


def evaluate(cfg: Config, checkpoint: str | None = None) -> dict[str, Any]:
    """``colony eval flock``: rows for couzin, vicsek and the learned controller at every
    ``eval_sizes`` flock size, same noise, informed share and seed."""
    torch.set_num_threads(cfg.threads)
    params, ckpt = load_controller(checkpoint)
    hidden = int(ckpt["spec"]["hidden"])
    learned = dataclasses.replace(cfg, hidden=hidden)

    def policy(world: FlockWorld, obs: np.ndarray) -> np.ndarray:
        return desired_headings(params[None], hidden, world, obs)

    rows = []
    for n in cfg.eval_sizes:
        for controller in ("couzin", "vicsek", "external"):
            conf = world_config(learned, n, 1, controller)
            row = evaluate_flock(conf, runs=cfg.eval_runs, steps=cfg.steps, seed=cfg.eval_seed,
                                 policy=policy if controller == "external" else None)  # fmt: skip
            if controller == "external":
                row["controller"] = "learned"
            rows.append(row)
    table = Table(title=f"flock, {cfg.informed:.0%} informed, noise {cfg.noise}, "
                  f"{cfg.eval_runs} flocks x {cfg.steps} steps")  # fmt: skip
    for col in ("controller", "n", "order", "accuracy_to_target", "within 20 deg"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["controller"], str(r["n"]), f"{r['order']:.3f}",
                      f"{r['accuracy_to_target']:.3f}", f"{r['share_within_20deg']:.2f}")  # fmt: skip
    console.print(table)
    where = str(checkpoint if checkpoint is not None else SHIPPED)
    return {"experiment": EXPERIMENT, "rows": rows, "checkpoint": where,
            "command": ckpt["provenance"].get("command", "")}  # fmt: skip
