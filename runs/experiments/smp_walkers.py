"""Experiment ``smp-walkers``: one modular policy for the Walker++ family, trained with
PGPE on all training walkers at once, tested zero-shot on the held-out ones.

===============  ==========================================================================
world            :class:`~colonylab.envs.mujoco.modular.ModularWorld`: every candidate
                 plays every training body (the 10 Walker++ bodies of modular-rl's
                 training split) in ONE batched world of ``pop_size x 10`` robots;
                 finished episodes freeze; episodes of at most ``max_steps`` steps
agent            ``--agent smp`` (:class:`~colonylab.agents.modular.SharedModularPolicy`),
                 ``independent`` (the limb network without messages), ``transformer``
                 (Amorpheus-style), or ``body-mlp`` (a monolithic MLP trained on ONE
                 body, ``--body``: the per-body baseline)
core             :class:`~colonylab.collective_ml.es.PGPE` + ClipUp over the policy's
                 flat weights; candidates run as one ``vmap``-ed ``functional_call``
trainer          :func:`~colonylab.collective_ml.trainers.evolve`
fitness          mean return over the bodies (one episode each, the same starts for
                 every candidate of a generation, new starts every generation)
validation       the mean ``mu`` on fresh starts every ``validate_every`` generations
===============  ==========================================================================

Writes ``metrics.jsonl``, ``checkpoints/latest.pt`` (``--resume RUN_DIR`` continues)
and ``checkpoints/smp_walkers_<agent>.pt`` (one checkpoint format, kind
``smp-walkers``). ``colony eval smp-walkers --json PATH`` evaluates the checkpoint
given (or every ``runs/checkpoints/smp_walkers_*.pt`` shipped) on every Walker++ body,
train and held-out, plus a standing-still reference (``noop``: no torque): rows
``{body, split, agent, mean, std, episodes}``.

Budget note: the SMP paper trains with TD3 for 20M steps; the runs here are short
population runs on a shared CPU and say so in their provenance.

    colony train smp-walkers --generations 40
    colony train smp-walkers --agent independent
    colony train smp-walkers --agent body-mlp --body walker_5_main
    colony eval smp-walkers --json runs/out/eval-smp-walkers.json
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from torch.func import functional_call, vmap

from colonylab._checks import check_choice, check_dataclass_ints, check_optional_int
from colonylab.agents.modular import build_modular
from colonylab.collective_ml.base import batched_params_dict, flatten_params, unflatten_into
from colonylab.collective_ml.es import PGPE
from colonylab.collective_ml.population import episode_seeds
from colonylab.collective_ml.trainers import EvolveResult, evolve
from colonylab.envs.mujoco.modular import ModularConfig, ModularWorld
from colonylab.envs.mujoco.morphology import HELD_OUT, body, body_names
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
from colonylab.runs.common.stages import load_model

EXPERIMENT = "smp-walkers"
AGENTS = ("smp", "independent", "transformer", "body-mlp")
CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
OBS_DIM = 19  # 15 per limb + the 4 walker limb types
MAX_LIMBS = 7
console = Console()


@dataclass(frozen=True)
class PGPEOptions:
    """Options of the PGPE core (``--pgpe.center-lr 0.05``)."""

    center_lr: float = 0.03
    """ClipUp step length of the mean."""
    stdev_init: float = 0.05
    """Initial sampling standard deviation of every weight."""
    stdev_lr: float = 0.1
    """Step size of the standard deviations."""


@dataclass(frozen=True)
class Config:
    """Train one modular walker policy on the Walker++ training bodies with PGPE."""

    agent: str = "smp"
    """smp, independent, transformer, or body-mlp (one body, --body)."""
    body: str = "walker_5_main"
    """The body of --agent body-mlp (trained on it alone)."""
    message: int = 16
    """SMP message width."""
    hidden: int = 32
    """Hidden width of the limb networks (body-mlp: of its two layers)."""
    pop_size: int = 24
    """Candidates per generation (even: antithetic pairs)."""
    generations: int = 40
    """Generations."""
    max_steps: int = 200
    """Steps per training episode at most (the world's truncation)."""
    validate_every: int = 5
    """Validate the mean every this many generations (and at the end)."""
    pgpe: PGPEOptions = field(default_factory=PGPEOptions)
    """PGPE options."""
    threads: int = 2
    """MuJoCo rollout threads."""
    torch_threads: int | None = 1
    """Torch CPU threads."""
    checkpoint_every: int = 5
    """Write checkpoints/latest.pt every this many generations."""
    time_budget_s: float | None = None
    """Stop after this many seconds (not reproducible)."""
    eval_episodes: int = 4
    """``colony eval``: episodes per body."""
    eval_steps: int = 1000
    """``colony eval``: steps per episode (modular-rl: 1000)."""
    eval_seed: int = 2024
    """``colony eval``: base seed of the evaluation starts."""
    seed: int = 0
    """Seed of the core, the initial policy and every start."""
    out: str | None = None
    """Run directory root (default runs/out)."""

    def __post_init__(self) -> None:
        check_choice("--agent", self.agent, AGENTS)
        body(self.body)
        check_dataclass_ints(
            self,
            {"message": 1, "hidden": 1, "pop_size": 2, "generations": 1, "max_steps": 1,
             "validate_every": 1, "threads": 0, "checkpoint_every": 1, "eval_episodes": 1,
             "eval_steps": 1, "eval_seed": 0, "seed": 0},
        )  # fmt: skip
        check_optional_int("--torch-threads", self.torch_threads, 1)
        if self.pop_size % 2:
            raise ValueError(f"--pop-size must be even (antithetic pairs), got {self.pop_size}")


def train_bodies(cfg: Config) -> tuple[str, ...]:
    """The bodies a candidate plays: the training split, or --body for body-mlp."""
    if cfg.agent == "body-mlp":
        return (cfg.body,)
    return tuple(body_names("walker", "train"))


def policy_spec(cfg: Config) -> dict[str, Any]:
    """The agent's spec (:func:`~colonylab.agents.modular.build_modular`)."""
    if cfg.agent == "smp":
        return {"type": "smp", "obs_dim": OBS_DIM, "message": cfg.message, "hidden": cfg.hidden}
    if cfg.agent == "independent":
        return {"type": "independent", "obs_dim": OBS_DIM, "hidden": cfg.hidden}
    if cfg.agent == "transformer":
        return {"type": "transformer", "obs_dim": OBS_DIM, "width": 32, "heads": 2, "layers": 2}
    return {
        "type": "body-mlp",
        "obs_dim": OBS_DIM,
        "num_limbs": MAX_LIMBS,
        "hidden": [cfg.hidden, cfg.hidden],
    }


def padded(obs: torch.Tensor, parents: torch.Tensor, mask: torch.Tensor) -> tuple:
    """The world's ``[..., L, D]`` tensors padded to :data:`MAX_LIMBS` limb slots (a
    body-MLP sees the same 7 slots on every walker)."""
    pad = MAX_LIMBS - obs.shape[-2]
    if pad <= 0:
        return obs, parents, mask
    fn = torch.nn.functional.pad
    return fn(obs, (0, 0, 0, pad)), fn(parents, (0, pad), value=-1), fn(mask, (0, pad))


class Rollouts:
    """Play ``P`` policies (flat weights) on ``bodies``, one episode each, in one world.

    Robot ``p * B + b`` is candidate ``p`` on body ``b``; every candidate gets the same
    starts (seeds ``episode_seeds(seed, ...)`` per body).
    """

    def __init__(self, policy: torch.nn.Module, bodies: tuple[str, ...], max_steps: int,
                 threads: int) -> None:  # fmt: skip
        self.policy, self.bodies = policy, bodies
        self.max_steps, self.threads = max_steps, threads
        self.last_env_steps = 0
        self._worlds: dict[int, ModularWorld] = {}

    def world(self, robots: int) -> ModularWorld:
        if robots not in self._worlds:
            self._worlds[robots] = ModularWorld(
                ModularConfig(
                    num_envs=robots, bodies=self.bodies, autoreset=False,
                    max_episode_steps=self.max_steps, threads=self.threads,
                    validate_actions=False, limb_types=True, render_envs=1,
                )
            )  # fmt: skip
        return self._worlds[robots]

    @torch.no_grad()
    def returns(self, params: torch.Tensor, seed: int) -> np.ndarray:
        """``float64[P, B]`` returns of the ``(P, D)`` candidates."""
        P, B = params.shape[0], len(self.bodies)
        world = self.world(P * B)
        starts = episode_seeds(seed, np.array([0]), B)[0]
        obs = world.reset(seed=np.tile(starts, P).astype(np.int64))
        L = obs.shape[1]
        _, parents, mask = padded(
            obs, torch.as_tensor(world.parents), torch.as_tensor(world.limb_mask)
        )
        parents, mask = parents.view(P, B, -1), mask.view(P, B, -1)
        weights = batched_params_dict(self.policy, params.to(torch.float32))

        def act(w, o, pa, m):
            return functional_call(self.policy, w, (o, pa, m))

        forward = vmap(act)
        total = np.zeros(P * B)
        steps = 0
        for _ in range(self.max_steps):
            running = ~world.done
            if not running.any():
                break
            o = torch.nn.functional.pad(obs, (0, 0, 0, MAX_LIMBS - L))
            actions = forward(weights, o.view(P, B, *o.shape[1:]), parents, mask)
            result = world.step(actions.reshape(P * B, -1)[:, :L])
            total += result.reward.numpy()
            steps += int(running.sum())
            obs = result.obs
        self.last_env_steps = steps
        return total.reshape(P, B)

    def __call__(self, params: torch.Tensor, seed: int) -> torch.Tensor:
        return torch.as_tensor(self.returns(params, seed).mean(axis=1))


def main(cfg: Config, resume: str | None = None) -> EvolveResult:
    """Train with PGPE; save the checkpoints."""
    if cfg.torch_threads is not None:
        torch.set_num_threads(cfg.torch_threads)
    seed_everything(cfg.seed)
    policy = build_modular(policy_spec(cfg))
    initial = flatten_params(policy)
    o = cfg.pgpe
    core = PGPE(
        initial.numel(), cfg.pop_size, center_init=initial, stdev_init=o.stdev_init,
        center_lr=o.center_lr, stdev_lr=o.stdev_lr, seed=cfg.seed, maximize=True,
    )  # fmt: skip
    bodies = train_bodies(cfg)
    rollouts = Rollouts(policy, bodies, cfg.max_steps, cfg.threads)
    validation_seed = int(episode_seeds(cfg.seed, np.array([2]), 1)[0, 0])
    state = None
    if resume is not None:
        ckpt = load_checkpoint(latest_checkpoint(resume), EXPERIMENT)
        state = ckpt["trainer"]
        set_rng_states(ckpt["rng"])
    run = RunDir(EXPERIMENT, cfg.seed, cfg, root=cfg.out, resume=resume)
    if state is not None:
        run.truncate_metrics(int(state["generation"]))
    command = reproduce_command(f"train {EXPERIMENT}", cfg, default=Config())

    def checkpoint(trainer: dict[str, Any], metrics: dict[str, Any] | None = None) -> dict:
        best = trainer["best"]["params"] if trainer.get("best") else core.center
        model = unflatten_into(build_modular(policy_spec(cfg)), best.to(torch.float32))
        return make_checkpoint(
            EXPERIMENT, spec=policy_spec(cfg), state_dict=model.state_dict(), config=cfg,
            trainer=trainer, rng=rng_states(),
            provenance=provenance(command, seed=cfg.seed, metrics=metrics),
            extra={"bodies": list(bodies), "agent": cfg.agent},
        )  # fmt: skip

    def save(trainer: dict[str, Any]) -> Path:
        return save_checkpoint(run.checkpoints / "latest.pt", checkpoint(trainer))

    def validate(params: torch.Tensor, generation: int) -> tuple[float, dict[str, float]]:
        per_body = rollouts.returns(params[None], validation_seed)[0]
        return float(per_body.mean()), {
            f"validation/{b}": float(r) for b, r in zip(bodies, per_body, strict=True)
        }

    console.print(f"[bold]{EXPERIMENT}[/] ({cfg.agent}, {len(bodies)} bodies) -> {run.path}")
    result = evolve(
        core,
        rollouts,
        cfg.generations,
        seeds=lambda g: int(episode_seeds(cfg.seed, np.array([1]), g + 1)[0, g]),
        validate=validate,
        validate_every=cfg.validate_every,
        log=run,
        progress=lambda g, r: console.print(
            f"gen {g}: fitness mean {r['charts/fitness_mean']:.1f} max "
            f"{r['charts/fitness_max']:.1f}"
            + (f" validation {r['charts/validation']:.1f}" if "charts/validation" in r else "")
        ),
        save=save,
        checkpoint_every=cfg.checkpoint_every,
        time_budget_s=cfg.time_budget_s,
        resume=state,
    )
    run.close()
    metrics = {"validation_mean": result.score, "generations": result.generations,
               "env_steps": result.env_steps, "seconds": result.seconds}  # fmt: skip
    name = f"smp_walkers_{cfg.agent}" + (f"_{cfg.body}" if cfg.agent == "body-mlp" else "")
    path = save_checkpoint(run.checkpoints / f"{name}.pt", checkpoint(result.state, metrics))
    save_checkpoint(run.checkpoints / "latest.pt", checkpoint(result.state, metrics))
    console.print(
        f"validation mean {result.score:.1f} after {result.generations} generations, "
        f"{result.env_steps:,} env steps, {result.seconds:.0f} s\ncheckpoint: {path}"
    )
    return result


class _NoTorque(torch.nn.Module):
    """Standing still: no torque on any limb (the reference a walker must beat)."""

    def forward(self, obs, parents, mask):  # noqa: D102
        return torch.zeros(obs.shape[:2], dtype=obs.dtype)


def checkpoints_to_evaluate(checkpoint: str | None) -> list[Path]:
    """The checkpoint given, or every shipped ``runs/checkpoints/smp_walkers_*.pt``."""
    if checkpoint is not None:
        if not Path(checkpoint).is_file():
            raise FileNotFoundError(f"checkpoint {checkpoint!r} does not exist")
        return [Path(checkpoint)]
    return sorted(CHECKPOINTS.glob("smp_walkers_*.pt"))


def evaluate_policy(
    policy: torch.nn.Module, bodies: list[str], cfg: Config
) -> dict[str, np.ndarray]:
    """``{body: float64[episodes] returns}`` of one policy, all bodies in one world."""
    out: dict[str, list[float]] = {b: [] for b in bodies}
    with torch.no_grad():
        world = ModularWorld(
            ModularConfig(
                num_envs=len(bodies) * cfg.eval_episodes, bodies=tuple(bodies),
                autoreset=False, max_episode_steps=cfg.eval_steps, threads=cfg.threads,
                validate_actions=False, limb_types=True, render_envs=1,
            )
        )  # fmt: skip
        seeds = episode_seeds(cfg.eval_seed, np.array([0]), world.num_envs)[0]
        obs = world.reset(seed=seeds.astype(np.int64))
        parents = torch.as_tensor(world.parents)
        mask = torch.as_tensor(world.limb_mask)
        total = np.zeros(world.num_envs)
        for _ in range(cfg.eval_steps):
            if world.done.all():
                break
            o, pa, m = padded(obs, parents, mask)
            actions = policy(o, pa, m)[:, : obs.shape[1]]
            result = world.step(actions)
            total += result.reward.numpy()
            obs = result.obs
        world.close()
    for k, name in enumerate(world.body_names):
        out[name].append(float(total[k]))
    return {b: np.array(v) for b, v in out.items()}


def evaluate(cfg: Config, checkpoint: str | None = None) -> dict[str, Any]:
    """``colony eval smp-walkers``: rows ``{body, split, agent, mean, std, episodes}`` on
    every Walker++ body for each checkpoint (and standing still)."""
    if cfg.torch_threads is not None:
        torch.set_num_threads(cfg.torch_threads)
    held = set(HELD_OUT["walker"])
    all_bodies = body_names("walker")
    agents: list[tuple[str, torch.nn.Module, list[str]]] = [("noop", _NoTorque(), all_bodies)]
    for path in checkpoints_to_evaluate(checkpoint):
        model, ckpt = load_model(path, EXPERIMENT, build_modular)
        name = ckpt["extra"].get("agent", ckpt["spec"]["type"])
        trained_on = ckpt["extra"].get("bodies", [])
        if name == "body-mlp":
            name = f"body-mlp[{trained_on[0]}]"
            bodies = list(trained_on)
        else:
            bodies = all_bodies
        agents.append((name, model, bodies))
    rows = []
    for name, model, bodies in agents:
        returns = evaluate_policy(model, bodies, cfg)
        for b in bodies:
            r = returns[b]
            rows.append({"body": b, "split": "held-out" if b in held else "train", "agent": name,
                         "mean": float(r.mean()), "std": float(r.std()), "episodes": int(r.size)})  # fmt: skip
    table = Table(
        title=f"{EXPERIMENT}: return over {cfg.eval_episodes} episodes of {cfg.eval_steps} steps"
    )
    for col in ("body", "split", "agent", "mean", "std"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["body"], r["split"], r["agent"], f"{r['mean']:.1f}", f"{r['std']:.1f}")
    console.print(table)
    return {"experiment": EXPERIMENT, "world": "modular-walkers", "rows": rows}


def watch(cfg: Config, checkpoint: str | None = None) -> ModularWorld:
    """``colony watch smp-walkers --checkpoint PATH``: the 12 Walker++ bodies side by
    side (the 10 training bodies, then the held-out two), every one driven by the same
    policy, each restarting when it falls."""
    paths = checkpoints_to_evaluate(checkpoint)
    if not paths:
        raise FileNotFoundError(
            "no smp-walkers checkpoint shipped yet; train one (colony train smp-walkers) "
            "and pass --checkpoint RUN/checkpoints/smp_walkers_smp.pt"
        )
    policy, ckpt = load_model(paths[0], EXPERIMENT, build_modular)
    bodies = body_names("walker", "train") + body_names("walker", "held-out")
    if ckpt["extra"].get("agent") == "body-mlp":
        bodies = list(ckpt["extra"]["bodies"])
    world = ModularWorld(
        ModularConfig(
            num_envs=len(bodies), bodies=tuple(bodies), render_envs=len(bodies),
            limb_types=True, max_episode_steps=cfg.eval_steps,
        )
    )  # fmt: skip
    parents = torch.as_tensor(world.parents)
    mask = torch.as_tensor(world.limb_mask)

    @torch.no_grad()
    def act(obs: torch.Tensor) -> torch.Tensor:
        o, pa, m = padded(obs.float(), parents, mask)
        return policy(o, pa, m)[:, : obs.shape[1]]

    world.default_policy = act
    world.metadata = {**world.metadata, "name": f"{EXPERIMENT} ({paths[0].name})"}
    world.reset(seed=cfg.seed)
    return world
