"""Experiment ``density``: a learned radius-3 rule for density (majority) classification.

A ring of ``N`` binary cells must turn all 1s if it started with more 1s, else all 0s,
within ``2 N`` synchronous steps, every cell seeing only the 3 cells on each side. No
two-state rule solves it (Land & Belew 1995); the best published two-state rules score
about 0.82 (GKL) to 0.86 (Juillé & Pollack's coevolved rule) at ``N = 149`` on unbiased
random starts. Here every cell also carries a few real hidden channels: a learned CA
with hidden channels, the same small network in every cell.

===============  ==========================================================================
world            a ring of ``N`` cells, radius 3, ``2 N`` steps (the table rules run in
                 :mod:`colonylab.envs.consensus.density`'s bit-parallel evaluator; the
                 learned rule is a torch model, rolled out here)
agent            :class:`~colonylab.agents.consensus.LocalRule`: state per cell = the
                 potential of its visible bit + ``hidden`` channels; a cell reads the
                 *binary* visible bits and hidden channels of the 7 cells around it
                 through one MLP (``width`` tanh units) and adds its output to its state;
                 spec ``{"type": "local-rule", ...}``
methods          ``--method bptt``: backpropagation through the whole ``2 N``-step
                 rollout (straight-through gradients through the binary bits), Adam,
                 rings of random odd sizes in ``[train_min, train_max]``, a curriculum on
                 the start density (each start's density drawn within ``spread / 2`` of
                 1/2, ``spread`` shrinking from 1 to ``spread_min``), loss = binary
                 cross-entropy of every cell's potential against the majority over the
                 last ``keep_fraction`` of the steps.
                 ``--method pgpe``: :class:`~colonylab.collective_ml.es.PGPE` (ClipUp)
                 through :func:`~colonylab.collective_ml.trainers.evolve` on the same
                 network, fitness = share of rings classified + share of cells right
                 after ``2 N`` steps, same ring sizes and curriculum.
budget           ``budget`` simulated cell updates (a BPTT iteration counts 3 forward
                 passes: its backward pass costs about two); both methods stop there
validation       accuracy at ``N = 149`` on ``validate_starts`` unbiased starts (its own
                 seed stream) every ``validate_every`` iterations; the best is kept
evaluation       ``colony eval density``: rows ``{rule, lattice, starts, accuracy}`` for
                 the classic table rules and the learned one on ``eval_starts`` unbiased
                 starts per lattice (149, 599, 999; seed ``eval_seed``, never trained on;
                 every rule sees the same starts)
===============  ==========================================================================

Writes ``metrics.jsonl`` (``losses/bce``, ``charts/validation``, ``charts/spread``,
``charts/cell_updates``), ``checkpoints/latest.pt`` (``--resume RUN_DIR`` continues it),
``checkpoints/density.pt`` (the best validated rule, one checkpoint format, kind
``density``) and ``media/spacetime.png`` (GKL and the learned rule on one start).

Shipped, in two stages (each checkpoint records its command):

1. ``runs/checkpoints/density_stage1.pt`` from ``colony train density`` (BPTT from the
   identity, rings 21..79, the density curriculum; 1.2e9 cell updates, 17 min on the
   shared CPU): 0.80 at N = 149;
2. ``runs/checkpoints/density.pt`` from ``colony train density --init
   runs/checkpoints/density_stage1.pt --loss ring --train-min 41 --train-max 149 --lr
   0.001 --curriculum 1 --budget 1100000000.0 --validate-every 25`` (BPTT on larger rings
   with the ring loss; 1.1e9 cell updates, 8 min). On unbiased starts never trained on
   (seed 2026): 0.9333 at N = 149 (10,000 starts; GKL 0.8157, Juille-Pollack 0.8503 on
   the same), 0.841 at N = 599 (the first 1,000 starts; GKL 0.774, J-P 0.799 on them)
   and 0.835 at N = 999 (the first 1,000; GKL 0.779, J-P 0.789), without retraining.

Same budget, from scratch (3e8 simulated cell updates): BPTT's validation at N = 149
reached 0.60, PGPE's 0.50 (``--method pgpe --budget 3e8 --validate-every 10``: it fits
its small training rings, fitness 1.86 of 2, but does not carry over to N = 149).

    colony train density
    colony train density --method pgpe --budget 3e8 --validate-every 10
    colony eval density --json density.json
    colony eval density --eval-starts 1000 --lattices 149
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from colonylab._checks import check_choice, check_dataclass_ints, check_float, check_optional_int
from colonylab.agents.consensus import LocalRule
from colonylab.collective_ml.base import flatten_params, unflatten_into
from colonylab.collective_ml.es import PGPE
from colonylab.collective_ml.trainers import evolve
from colonylab.envs.consensus.density import evaluate_rules, majority_of, random_starts
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
from colonylab.runs.common.device import check_device_option, resolve_device
from colonylab.runs.common.rundir import RunDir
from colonylab.runs.common.seeding import seed_everything

EXPERIMENT = "density"
METHODS = ("bptt", "pgpe")
LOSSES = ("cell", "ring")
CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
SHIPPED = CHECKPOINTS / "density.pt"
CLASSIC_RULES = ("gkl", "das", "abk", "phi-par", "juille-pollack", "majority")
"""The table rules ``colony eval density`` scores beside the learned one."""
RADIUS = 3
console = Console()


@dataclass(frozen=True)
class Config:
    """Learn a radius-3 density-classification rule with hidden channels (BPTT or PGPE)."""

    method: str = "bptt"
    """Training method: bptt (backpropagation through time) or pgpe (population)."""
    init: str | None = None
    """Start from the rule of this density checkpoint (None: a fresh rule, the identity)."""
    loss: str = "cell"
    """BPTT loss: cell (mean cross-entropy over cells) or ring (adds each ring's worst
    cell: a ring is right only when every cell is)."""
    hidden: int = 4
    """Hidden real channels per cell (besides the visible bit's potential)."""
    width: int = 32
    """Tanh units of the per-cell network."""
    train_min: int = 21
    """Smallest training ring (odd sizes drawn from [train_min, train_max])."""
    train_max: int = 79
    """Largest training ring."""
    batch: int = 64
    """Rings per BPTT iteration (PGPE: per candidate)."""
    lr: float = 3e-3
    """BPTT: Adam's learning rate."""
    keep_fraction: float = 0.125
    """BPTT: the loss reads the last this share of the 2 N steps."""
    spread_min: float = 0.1
    """Curriculum: start densities end within spread_min / 2 of 1/2."""
    curriculum: int = 400
    """Curriculum: iterations (PGPE: generations) over which the spread shrinks from 1."""
    pop_size: int = 16
    """PGPE: candidates per generation (even: antithetic pairs)."""
    center_lr: float = 0.05
    """PGPE: ClipUp's step of the mean."""
    stdev_init: float = 0.05
    """PGPE: initial sampling standard deviation."""
    budget: float = 1.2e9
    """Simulated cell updates both methods may spend (BPTT iterations count 3x)."""
    lr_final: float = 0.1
    """BPTT: after the curriculum the learning rate decays (cosine, over the rest of the
    budget) to this share of ``lr``."""
    validate_every: int = 50
    """Validate every this many iterations / generations."""
    validate_starts: int = 400
    """Unbiased starts of the validation at N = 149."""
    checkpoint_every: int = 100
    """Write checkpoints/latest.pt every this many iterations / generations."""
    eval_starts: int = 10_000
    """``colony eval``: unbiased starts per lattice."""
    lattices: tuple[int, ...] = (149, 599, 999)
    """``colony eval``: ring sizes (odd)."""
    learned_starts: int | None = None
    """``colony eval``: score the learned rule on only the first this many of each
    lattice's starts (None: all; a torch rollout is far slower than the bit-parallel
    tables: about 2e10 cell updates for 10,000 starts at N = 999)."""
    device: str = "cpu"
    """``colony eval``: device of the learned rule's rollout (cpu, cuda, auto)."""
    eval_seed: int = 2026
    """``colony eval``: seed of the test starts (training and validation use others)."""
    seed: int = 0
    """Seed of the initial rule, the starts and the core."""
    threads: int = 1
    """Torch CPU threads."""
    out: str | None = None
    """Run directory root (default runs/out)."""
    plots: bool = True
    """Write media/spacetime.png."""

    def __post_init__(self) -> None:
        check_choice("--method", self.method, METHODS)
        check_choice("--loss", self.loss, LOSSES)
        check_dataclass_ints(
            self,
            {"hidden": 0, "width": 1, "train_min": 2 * RADIUS + 1, "train_max": 2 * RADIUS + 1,
             "batch": 1, "curriculum": 1, "pop_size": 2, "validate_every": 1,
             "validate_starts": 1, "checkpoint_every": 1, "eval_starts": 1, "eval_seed": 0,
             "seed": 0, "threads": 1},
        )  # fmt: skip
        if self.train_max < self.train_min:
            raise ValueError(
                f"--train-max must be >= --train-min, got {self.train_max} < {self.train_min}"
            )
        check_float("--lr", self.lr, 0, low_open=True)
        check_float("--lr-final", self.lr_final, 0, 1)
        check_float("--keep-fraction", self.keep_fraction, 0, 1, low_open=True)
        check_float("--spread-min", self.spread_min, 0, 1)
        check_float("--center-lr", self.center_lr, 0, low_open=True)
        check_float("--stdev-init", self.stdev_init, 0, low_open=True)
        check_float("--budget", self.budget, 0, low_open=True)
        if self.method == "pgpe" and self.pop_size % 2:
            raise ValueError(f"--pop-size must be even (antithetic pairs), got {self.pop_size}")
        check_optional_int("--learned-starts", self.learned_starts, 1)
        check_device_option(self.device)
        if not self.lattices:
            raise ValueError("--lattices needs at least one ring size")
        for n in self.lattices:
            if isinstance(n, bool) or not isinstance(n, int) or n < 2 * RADIUS + 1 or n % 2 == 0:
                raise ValueError(f"--lattices must be odd sizes >= {2 * RADIUS + 1}, got {n!r}")


def rule_spec(cfg: Config) -> dict[str, Any]:
    """The learned rule's spec (``{"type": "local-rule", ...}``)."""
    return {"type": "local-rule", "radius": RADIUS, "hidden": cfg.hidden, "width": cfg.width}


def build_rule(spec: dict[str, Any]) -> LocalRule:
    """The :class:`LocalRule` a spec describes."""
    if not isinstance(spec, dict) or spec.get("type") != "local-rule":
        raise ValueError(f"expected a 'local-rule' spec, got {spec!r}")
    return LocalRule(**{k: v for k, v in spec.items() if k != "type"})


# -- data -------------------------------------------------------------------------------------
def spread_at(cfg: Config, it: int) -> float:
    """The curriculum's density spread at iteration ``it``: 1 -> ``spread_min``."""
    return max(cfg.spread_min, 1.0 - it / cfg.curriculum)


def training_batch(
    cfg: Config, it: int, g: torch.Generator, batch: int
) -> tuple[int, torch.Tensor, torch.Tensor]:
    """A ring size ``N`` (odd), starts ``(batch, N)`` and their majorities ``(batch,)``."""
    sizes = (cfg.train_max - cfg.train_min) // 2 + 1
    n = cfg.train_min + (cfg.train_min % 2 == 0) + 2 * int(torch.randint(sizes, (1,), generator=g))
    n = min(n, cfg.train_max if cfg.train_max % 2 else cfg.train_max - 1)
    density = 0.5 + (torch.rand(batch, 1, generator=g) - 0.5) * spread_at(cfg, it)
    v = (torch.rand(batch, n, generator=g) < density).float()
    return n, v, (2 * v.sum(1) > n).float()


def unbiased_starts(count: int, n: int, seed: int, stream: int) -> np.ndarray:
    """``uint8[count, n]`` unbiased starts from ``default_rng([seed, stream, n])``."""
    return random_starts(count, n, np.random.default_rng([seed, stream, n]))


def accuracy(rule: LocalRule, starts: np.ndarray, chunk: int = 1000) -> float:
    """Share of ``starts`` (``uint8[B, N]``) the rule classifies after ``2 N`` steps
    (on the rule's device)."""
    n = starts.shape[1]
    device = next(rule.parameters()).device
    majority = torch.from_numpy(majority_of(starts)).to(device)
    correct = 0
    for i in range(0, len(starts), chunk):
        v = torch.from_numpy(starts[i : i + chunk]).to(device, torch.float32)
        final = rule.final_bits(v, 2 * n)
        want = majority[i : i + chunk, None].float()
        correct += int((final == want).all(1).sum())
    return correct / len(starts)


# -- training ---------------------------------------------------------------------------------
def learning_rate(cfg: Config, it: int, spent: float) -> float:
    """``lr`` during the curriculum, then a cosine decay to ``lr * lr_final`` by the end
    of the budget (the budget spent is read at the curriculum's end: ``spent``)."""
    if it < cfg.curriculum:
        return cfg.lr
    mean_n = (cfg.train_min + cfg.train_max) / 2
    start = 3.0 * cfg.batch * 2 * mean_n**2 * cfg.curriculum  # about what it had spent
    frac = min(1.0, max(0.0, (spent - start) / max(cfg.budget - start, 1.0)))
    return cfg.lr * (cfg.lr_final + (1 - cfg.lr_final) * 0.5 * (1 + math.cos(math.pi * frac)))


def bptt_loss(cfg: Config, rule: LocalRule, v: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of every cell's potential (x 2 as a logit) against the
    majority, over the last ``keep_fraction`` of ``2 N`` steps."""
    n = v.shape[1]
    _, kept = rule(v, 2 * n, keep_last=max(1, int(round(cfg.keep_fraction * 2 * n))))
    logits = 2 * torch.stack(kept)  # (K, B, N)
    target = y[None, :, None].expand_as(logits)
    per_cell = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    if cfg.loss == "ring":  # the worst cell of each ring and step, too
        return per_cell.mean() + per_cell.amax(2).mean()
    return per_cell.mean()


def train_bptt(cfg: Config, rule: LocalRule, run: RunDir, state: dict | None, save, validate):
    """The BPTT loop; returns the trainer state (best validated weights inside)."""
    opt = torch.optim.Adam(rule.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + 1)
    st = {"iteration": 0, "cell_updates": 0.0, "best": None, "best_score": -1.0}
    if state is not None:
        rule.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        g.set_state(state["generator"])
        st = {k: state[k] for k in st}
    t0 = time.time()

    def snapshot() -> dict:
        return {**st, "model": rule.state_dict(), "optimizer": opt.state_dict(),
                "generator": g.get_state(), "method": "bptt"}  # fmt: skip

    try:
        while st["cell_updates"] < cfg.budget:
            it = st["iteration"]
            for group in opt.param_groups:
                group["lr"] = learning_rate(cfg, it, st["cell_updates"])
            n, v, y = training_batch(cfg, it, g, cfg.batch)
            loss = bptt_loss(cfg, rule, v, y)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(rule.parameters(), 1.0)
            opt.step()
            st["iteration"] = it + 1
            st["cell_updates"] += 3.0 * cfg.batch * n * 2 * n
            record = {"losses/bce": loss.item(), "charts/spread": spread_at(cfg, it),
                      "charts/cell_updates": st["cell_updates"],
                      "charts/lr": opt.param_groups[0]["lr"],
                      "charts/seconds": time.time() - t0}  # fmt: skip
            if st["iteration"] % cfg.validate_every == 0 or st["cell_updates"] >= cfg.budget:
                score = validate(rule)
                record["charts/validation"] = score
                if score >= st["best_score"]:
                    st["best_score"] = score
                    st["best"] = {k: t.clone() for k, t in rule.state_dict().items()}
                console.print(
                    f"it {st['iteration']}: loss {loss.item():.4f}, validation {score:.3f} "
                    f"(best {st['best_score']:.3f}), {st['cell_updates']:.2e} cell updates"
                )
            run.log(st["iteration"], record)
            if st["iteration"] % cfg.checkpoint_every == 0:
                save(snapshot())
    except KeyboardInterrupt:
        save(snapshot())
        raise
    return snapshot()


def pgpe_fitness(cfg: Config, rule: LocalRule, params: torch.Tensor, it: int) -> torch.Tensor:
    """Fitness ``(P,)`` of flat weights ``params: (P, D)`` on one shared batch of starts:
    share of rings classified + share of cells right after ``2 N`` steps."""
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + 7 + 7919 * it)
    n, v, y = training_batch(cfg, it, g, cfg.batch)
    out = torch.empty(len(params))
    with torch.no_grad():
        for i, p in enumerate(params):
            final = unflatten_into(rule, p).final_bits(v, 2 * n)
            right = final == y[:, None]
            out[i] = right.all(1).float().mean() + right.float().mean()
    return out


def train_pgpe(cfg: Config, rule: LocalRule, run: RunDir, state: dict | None, save, validate):
    """The PGPE loop (through ``evolve``); returns the trainer state."""
    center = flatten_params(rule)
    # a fresh rule is the identity (zero last layer): start from small random weights
    core = PGPE(center.numel(), cfg.pop_size, center_init=center, stdev_init=cfg.stdev_init,
                center_lr=cfg.center_lr, seed=cfg.seed, maximize=True)  # fmt: skip
    per_gen = cfg.pop_size * cfg.batch * ((cfg.train_min + cfg.train_max) / 2) ** 2 * 2
    generations = max(1, int(cfg.budget // per_gen))
    holder = LocalRule(**rule.spec())

    def evaluator(params: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        return pgpe_fitness(cfg, holder, params, int(seed))

    def validate_params(params: torch.Tensor, g: int) -> float:
        return validate(unflatten_into(holder, params))

    result = evolve(
        core, evaluator, generations, seeds=lambda g: g, validate=validate_params,
        validate_every=cfg.validate_every, log=run,
        save=lambda s: save({**s, "method": "pgpe"}), checkpoint_every=cfg.checkpoint_every,
        resume=state,
    )  # fmt: skip
    unflatten_into(rule, result.params)
    return {**result.state, "method": "pgpe", "best_score": result.score,
            "best": rule.state_dict(), "cell_updates": generations * per_gen}  # fmt: skip


def main(cfg: Config, resume: str | None = None) -> dict[str, Any]:
    """Train the rule with ``cfg.method``; save the best validated rule and a picture.

    Args:
        cfg: The run's config.
        resume: A run directory to continue from its ``checkpoints/latest.pt``.
    """
    torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    rule = build_rule(rule_spec(cfg))
    if cfg.init is not None:
        start, _ = load_rule(cfg.init)
        if start.spec() != rule.spec():
            raise ValueError(
                f"--init {cfg.init!r} holds a rule {start.spec()}, expected {rule.spec()} "
                "(set --hidden / --width to match)"
            )
        rule.load_state_dict(start.state_dict())
    elif cfg.method == "pgpe":  # a zero last layer is a flat spot for a population too
        torch.nn.init.normal_(rule.l2.weight, std=0.05)
    state = None
    if resume is not None:
        ckpt = load_checkpoint(latest_checkpoint(resume), EXPERIMENT)
        state = ckpt["trainer"]
        set_rng_states(ckpt["rng"])
    run = RunDir(EXPERIMENT, cfg.seed, cfg, root=cfg.out, resume=resume)
    if state is not None:
        run.truncate_metrics(int(state.get("iteration", state.get("generation", 0))))
    command = reproduce_command(f"train {EXPERIMENT}", cfg)
    valid = unbiased_starts(cfg.validate_starts, 149, cfg.seed, 2)

    def validate(r: LocalRule) -> float:
        return accuracy(r, valid)

    def checkpoint(trainer: dict, weights: dict, metrics: dict | None = None) -> dict:
        return make_checkpoint(
            EXPERIMENT, spec=rule_spec(cfg), state_dict=weights, config=cfg, trainer=trainer,
            rng=rng_states(), provenance=provenance(command, seed=cfg.seed, metrics=metrics),
        )  # fmt: skip

    def save(trainer: dict) -> Path:
        weights = trainer.get("model") or rule.state_dict()
        return save_checkpoint(run.checkpoints / "latest.pt", checkpoint(trainer, weights))

    console.print(f"[bold]{EXPERIMENT}[/] ({cfg.method}) -> {run.path}")
    t0 = time.time()
    train = train_bptt if cfg.method == "bptt" else train_pgpe
    trainer = train(cfg, rule, run, state, save, validate)
    seconds = time.time() - t0
    rule.load_state_dict(trainer["best"])
    score = float(trainer["best_score"])
    metrics = {"validation_accuracy_149": score, "validation_starts": cfg.validate_starts,
               "method": cfg.method, "cell_updates": float(trainer["cell_updates"]),
               "seconds": seconds}  # fmt: skip
    path = save_checkpoint(
        run.checkpoints / "density.pt", checkpoint(trainer, rule.state_dict(), metrics)
    )
    save_checkpoint(run.checkpoints / "latest.pt", checkpoint(trainer, rule.state_dict(), metrics))
    run.close()
    if cfg.plots:
        plot_spacetime(rule, run.media / "spacetime.png", n=149, seed=cfg.seed)
    console.print(f"best validation accuracy {score:.3f} at N=149 ({cfg.validate_starts} starts), "
                  f"{seconds:.0f} s\ncheckpoint: {path}")  # fmt: skip
    return metrics


# -- evaluation -------------------------------------------------------------------------------
def load_rule(checkpoint: str | Path | None = None) -> tuple[LocalRule, dict]:
    """The learned rule of a ``density`` checkpoint (None: the shipped one)."""
    ckpt = load_checkpoint(checkpoint if checkpoint is not None else SHIPPED, EXPERIMENT)
    rule = build_rule(ckpt["spec"])
    rule.load_state_dict(ckpt["state_dict"])
    return rule.eval(), ckpt


def evaluate(cfg: Config, checkpoint: str | None = None) -> dict[str, Any]:
    """``colony eval density``: rows ``{rule, lattice, starts, accuracy}`` for the classic
    table rules (bit-parallel) and the learned rule, all on the same ``eval_starts``
    unbiased starts per lattice (drawn from ``default_rng([eval_seed, N])``)."""
    torch.set_num_threads(cfg.threads)
    rule, ckpt = load_rule(checkpoint)
    device = resolve_device(cfg.device)
    rule = rule.to(device)
    chunk = 10_000 if device.type == "cuda" else 1000
    rows = []
    for n in cfg.lattices:
        rows += evaluate_rules(CLASSIC_RULES, (n,), cfg.eval_starts, cfg.eval_seed)
        starts = random_starts(cfg.eval_starts, n, np.random.default_rng([cfg.eval_seed, n]))
        starts = starts[: cfg.learned_starts]  # the first ones: the same for every rule
        t0 = time.time()
        acc = accuracy(rule, starts, chunk)
        rows.append({"rule": "learned", "lattice": n, "starts": len(starts), "accuracy": acc,
                     "seconds": round(time.time() - t0, 1), "device": str(device)})  # fmt: skip
    for r in rows:  # binomial 95% half-width
        r["interval95"] = 1.96 * math.sqrt(
            max(r["accuracy"] * (1 - r["accuracy"]), 1e-12) / r["starts"]
        )
    table = Table(title=f"density classification, {cfg.eval_starts} unbiased starts per lattice")
    table.add_column("rule")
    for n in cfg.lattices:
        table.add_column(f"N={n}", justify="right")
    for name in [*CLASSIC_RULES, "learned"]:
        cells = [f"{r['accuracy']:.4f}" for n in cfg.lattices for r in rows
                 if r["rule"] == name and r["lattice"] == n]  # fmt: skip
        table.add_row(name, *cells)
    console.print(table)
    where = str(checkpoint if checkpoint is not None else SHIPPED)
    return {"experiment": EXPERIMENT, "rows": rows, "checkpoint": where,
            "command": ckpt["provenance"].get("command", "")}  # fmt: skip


def plot_spacetime(rule: LocalRule, path: Path, n: int = 149, seed: int = 0) -> Path:
    """GKL and the learned rule side by side on one unbiased start near density 1/2
    (time down the page, ``2 N`` steps)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from colonylab.envs.consensus.density import gkl_table, ring_step_numpy

    rng = np.random.default_rng([seed, 99, n])
    for _ in range(1000):  # a hard start: density within 3 cells of one half
        start = random_starts(1, n, rng)
        if abs(int(start.sum()) - n / 2) < 3:
            break
    rows = [start[0]]
    cells, table = start.copy(), gkl_table()
    for _ in range(2 * n):
        cells = ring_step_numpy(cells, table, RADIUS)
        rows.append(cells[0])
    gkl = np.stack(rows)
    learned = rule.spacetime(torch.from_numpy(start[0]), 2 * n).numpy()
    majority = int(majority_of(start)[0])
    fig, axes = plt.subplots(1, 2, figsize=(9, 9), constrained_layout=True)
    for ax, img, name in ((axes[0], gkl, "GKL"), (axes[1], learned, "learned (hidden channels)")):
        ok = bool((img[-1] == majority).all())
        ax.imshow(img, cmap="Greys", interpolation="nearest", aspect="auto")
        ax.set(title=f"{name}: {'right' if ok else 'wrong'}", xlabel="cell", ylabel="step")
    fig.suptitle(f"density classification, N={n}, start density {start.mean():.3f} "
                 f"(majority {majority})")  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
