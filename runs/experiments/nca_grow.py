"""Experiment ``nca-grow``: a neural CA that grows an image from one cell, keeps it, and
regrows it when cut (Mordvintsev, Randazzo, Niklasson & Levin 2020).

The three experiments of the paper, chosen with ``--mode``:

``growing``       every iteration starts from the single seed cell;
``persistent``    a pool of ``pool_size`` states: each batch is drawn from it, its
                  worst sample (highest loss) is replaced by the seed, and the
                  states after the CA steps go back into the pool, so the rule
                  learns to hold the pattern, not only to reach it;
``regenerating``  as persistent, and the ``damage_count`` best samples of each
                  batch are damaged first: a random disc erased (radius 0.1-0.4 of
                  the half-size, centre within the middle half), or with chance
                  ``half_damage`` a random half erased.

Each iteration runs a random number of CA steps in ``[steps_min, steps_max]``,
takes the L2 loss of the RGBA channels against the target (colour premultiplied
by alpha), normalises each parameter's gradient to unit norm and steps Adam
(``lr``, times ``lr_decay`` after ``lr_decay_at`` iterations); the loop is
:class:`~colonylab.collective_ml.trainers.gradient.GradientTrainer`.

The target is any image Pillow reads as RGBA (``--target PATH``), resized so its
longer side is ``target_size`` and centred on the ``size`` x ``size`` canvas, or a
built-in one drawn by this project (``butterfly``, the default, or ``ladybug``;
:mod:`colonylab.runs.data.targets`). Every ``eval_every`` iterations the
regeneration metrics are logged (``emergence/loss_grown`` after ``steps_max``
steps from a seed, ``emergence/loss_damaged`` right after erasing the left half,
``emergence/loss_recovered`` 100 steps later).

Writes ``checkpoints/latest.pt`` every ``checkpoint_every`` iterations, at the end
and on Ctrl-C (model, Adam and LR-schedule state, the sample pool, the iteration,
every generator, the history), ``checkpoints/nca_grow.pt`` at the end (the model,
its target and the command that reproduces it), ``media/training.png`` (curves and
a grow/damage/recover strip) and ``media/regrow.gif``. ``--resume RUN_DIR``
continues a stopped run bit-identically (same device and threads).

    colony train nca-grow --mode regenerating --iterations 8000
    colony train nca-grow --target my_emoji.png --size 64 --target-size 40
    colony train nca-grow --resume runs/out/nca-grow/20260101-120000-s0
    colony watch nca-grow                  # the shipped checkpoints; click to cut them
    colony eval nca-grow --json eval.json

Rooms: the target images in :mod:`colonylab.runs.data.targets`, the rule in
:mod:`colonylab.agents.nca`, the loop in :mod:`colonylab.collective_ml.trainers.gradient`,
the regeneration metric in :mod:`colonylab.emergence.regeneration`, the figures in
:mod:`colonylab.emergence.plots_nca`. This file stays a little over ~500 lines because
it holds what is this experiment's own: a documented Config of 25 options, the three
modes' batch preparation (pool, reseeding, damage), the trainer wiring with resume,
and the ``colony eval`` / ``colony watch`` entry points (the viewer's keys).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import Progress

from colonylab._checks import (
    check_choice,
    check_dataclass_ints,
    check_float,
    check_optional_int,
    check_probability,
)
from colonylab.agents import build
from colonylab.agents.nca import NCA, NCAConfig
from colonylab.collective_ml.trainers.gradient import (
    GradientTrainer,
    adam_with_decay,
    normalise_gradients,
)
from colonylab.emergence.plots_nca import grow_figure, write_gif
from colonylab.emergence.regeneration import RegenerationResult, pattern_loss, regeneration
from colonylab.envs.ca.nca_canvas import (
    CanvasConfig,
    NCACanvas,
    erase_discs,
    erase_halves,
    rgba_to_rgb,
    seed_cell,
)
from colonylab.runs.common import RunDir, resolve_device, seed_everything
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
from colonylab.runs.common.progress import progress_bar
from colonylab.runs.common.stages import load_model
from colonylab.runs.common.tables import metrics_table
from colonylab.runs.data.targets import load_target

EXPERIMENT = "nca-grow"
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
SHIPPED = "nca_grow.pt"
MODES = ("growing", "persistent", "regenerating")
RECOVER_STEPS = 100

console = Console()


@dataclass(frozen=True)
class Config:
    """Train a neural CA to grow, persist and regenerate an RGBA image."""

    mode: str = "regenerating"
    """``growing`` (from the seed every time), ``persistent`` (sample pool) or
    ``regenerating`` (pool + damage)."""
    target: str | None = None
    """RGBA image to grow (a path to any image Pillow reads), or a built-in target drawn by
    this project: ``butterfly`` (default) or ``ladybug``."""
    target_size: int | None = 40
    """Resize the target so its longer side has this many pixels (None: keep its size)."""
    size: int = 72
    """Side of the square canvas in cells (the target is centred on it)."""
    channels: int = 16
    """State channels per cell (RGBA + hidden)."""
    hidden: int = 128
    """Hidden width of the update rule."""
    perception: str = "sobel"
    """``sobel`` (fixed identity + Sobel x/y) or ``learned`` (3x3 conv)."""
    fire_rate: float = 0.5
    """Chance that a cell updates in a step."""
    batch: int = 8
    """States per iteration."""
    pool_size: int = 1024
    """States in the sample pool (persistent and regenerating modes)."""
    iterations: int = 8000
    """Optimiser steps."""
    steps_min: int = 64
    """Fewest CA steps per iteration."""
    steps_max: int = 96
    """Most CA steps per iteration (also the step count ``loss_grown`` is measured at)."""
    lr: float = 2e-3
    """Adam learning rate."""
    lr_decay_at: int = 2000
    """Iteration after which the learning rate is multiplied by ``lr_decay``."""
    lr_decay: float = 0.1
    """Learning-rate factor after ``lr_decay_at``."""
    damage_count: int = 3
    """Regenerating mode: samples damaged per batch (the lowest-loss ones)."""
    half_damage: float = 0.25
    """Regenerating mode: chance a damage erases a random half instead of a disc."""
    eval_every: int = 250
    """Log the regeneration metrics every this many iterations (0: only at the end)."""
    eval_batch: int = 4
    """Seeds (fire-mask draws) averaged in the regeneration metrics."""
    checkpoint_every: int = 500
    """Write checkpoints/latest.pt every this many iterations (and at the end, and on
    Ctrl-C); ``--resume RUN_DIR`` continues from it."""
    seed: int = 0
    """Seed of the weights, the pool sampling, the damage and the fire masks."""
    device: str = "auto"
    """``auto``, ``cpu``, ``cuda``, ..."""
    threads: int | None = None
    """Torch CPU threads (None: torch's default)."""
    out: str | None = None
    """Run directory root (default runs/out)."""
    plots: bool = True
    """Write media/training.png and media/regrow.gif."""

    def __post_init__(self) -> None:
        check_choice("--mode", self.mode, MODES)
        check_dataclass_ints(
            self,
            {"size": 3, "batch": 1, "iterations": 1, "steps_min": 1, "eval_batch": 1},
        )
        check_dataclass_ints(
            self, {"steps_max": self.steps_min, "eval_every": 0, "checkpoint_every": 0}
        )
        check_dataclass_ints(self, {"lr_decay_at": 0, "pool_size": 1, "damage_count": 0})
        if self.target_size is not None and not 1 <= self.target_size <= self.size:
            raise ValueError(
                f"--target-size must be in [1, size={self.size}], got {self.target_size}; "
                "raise --size or lower --target-size"
            )
        if self.mode != "growing" and self.pool_size < self.batch:
            raise ValueError(f"--pool-size ({self.pool_size}) must be >= batch ({self.batch})")
        if self.mode == "regenerating" and not self.damage_count < self.batch:
            raise ValueError(
                f"--damage-count must be in [0, batch={self.batch}) (the worst sample is "
                f"reseeded, not damaged), got {self.damage_count}"
            )
        check_probability("--half-damage", self.half_damage)
        check_float("--lr", self.lr, 0, low_open=True)
        check_float("--lr-decay", self.lr_decay, 0, low_open=True)
        check_optional_int("--threads", self.threads, 1)
        check_dataclass_ints(self, {"channels": 4})  # RGBA first
        self.nca_config()  # architecture checks with their own messages

    def nca_config(self) -> NCAConfig:
        """The rule's architecture."""
        return NCAConfig(
            channels=self.channels,
            hidden=self.hidden,
            perception=self.perception,
            fire_rate=self.fire_rate,
        )


# -- training -------------------------------------------------------------------------------
def _random_damage(x: torch.Tensor, rng: np.random.Generator, half_share: float) -> torch.Tensor:
    """Erase a random disc (or, with chance ``half_share``, a random half) in each state."""
    b, h, w, _ = x.shape
    halves = rng.random(b) < half_share
    centres = torch.tensor(
        np.stack(
            [h / 2 + rng.uniform(-0.5, 0.5, b) * h / 2, w / 2 + rng.uniform(-0.5, 0.5, b) * w / 2],
            axis=1,
        ),
        dtype=torch.float32,
    )
    radii = torch.tensor(rng.uniform(0.1, 0.4, b) * min(h, w) / 2, dtype=torch.float32)
    out = erase_discs(x, centres, radii)
    if halves.any():
        sides = rng.choice(["left", "right", "top", "bottom"], b).tolist()
        halved = erase_halves(x, sides)
        out = torch.where(torch.as_tensor(halves, device=x.device).view(b, 1, 1, 1), halved, out)
    return out


def measure_regeneration(
    model: NCA,
    target: torch.Tensor,
    grow_steps: int,
    batch: int = 4,
    seed: int = 0,
    recover_steps: int = RECOVER_STEPS,
) -> RegenerationResult:
    """Grow ``batch`` seeds for ``grow_steps``, erase the left half, recover."""
    h, w, _ = target.shape
    device = target.device
    generator = torch.Generator(device=device).manual_seed(seed)
    start = seed_cell(batch, h, w, model.config.channels, device=device)
    return regeneration(
        lambda x: model.step(x, generator=generator),
        start,
        target,
        damage=lambda x: erase_halves(x, "left"),
        grow_steps=grow_steps,
        recover_steps=recover_steps,
    )


REGENERATION_KEYS = ("loss_grown", "loss_damaged", "loss_recovered", "recovery_ratio")


@dataclass
class TrainResult:
    """What :func:`train` returns (``evals``: ``(iteration, {loss_grown, ...})``)."""

    model: NCA
    target: torch.Tensor
    losses: list[float]
    evals: list[tuple[int, dict[str, float]]]
    seconds: float
    run: RunDir | None


def checkpoint_of(cfg: Config, model: NCA, target: torch.Tensor, **parts: Any) -> dict:
    """The one-format checkpoint of a rule (``parts``: ``trainer``, ``rng``, metrics)."""
    metrics = parts.pop("metrics", None)
    return make_checkpoint(
        EXPERIMENT,
        spec={"type": "nca", **asdict(model.config)},
        state_dict=model.state_dict(),
        config=cfg,
        provenance=provenance(
            reproduce_command(f"train {EXPERIMENT}", cfg), seed=cfg.seed, metrics=metrics
        ),
        extra={"target": target.cpu()},
        **parts,
    )


def train(
    cfg: Config,
    run: RunDir | None = None,
    progress: Progress | None = None,
    resume: dict[str, Any] | None = None,
) -> TrainResult:
    """Train a rule; with ``run``, log and write ``checkpoints/latest.pt``; ``resume``: a
    checkpoint of this config's run to continue from."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    target = load_target(cfg.target, cfg.target_size, cfg.size).to(device)
    model = NCA(cfg.nca_config()).to(device)
    optimizer, scheduler = adam_with_decay(
        model.parameters(), cfg.lr, cfg.lr_decay_at, cfg.lr_decay
    )
    seed_state = seed_cell(1, cfg.size, cfg.size, cfg.channels, device=device)
    pool = seed_state.repeat(cfg.pool_size, 1, 1, 1) if cfg.mode != "growing" else None
    batch: dict[str, Any] = {}

    def loss_fn(it: int) -> tuple[torch.Tensor, dict[str, float]]:
        if pool is None:
            idx = None
            x = seed_state.repeat(cfg.batch, 1, 1, 1)
        else:
            idx = rng.choice(cfg.pool_size, cfg.batch, replace=False)
            x = pool[idx]
            with torch.no_grad():
                order = torch.argsort(pattern_loss(x, target), descending=True).cpu().numpy()
            idx = idx[order]
            x = x[torch.as_tensor(order, device=device)]
            x[:1] = seed_state  # the worst sample starts again from the seed
            if cfg.mode == "regenerating" and cfg.damage_count:
                k = cfg.damage_count
                x[-k:] = _random_damage(x[-k:], rng, cfg.half_damage)
        steps = int(rng.integers(cfg.steps_min, cfg.steps_max + 1))
        for _ in range(steps):
            x = model.step(x, generator=generator)
        batch["idx"], batch["x"] = idx, x
        return pattern_loss(x, target).mean(), {"charts/steps": steps}

    def after_step(it: int) -> None:
        if pool is not None:
            pool[batch["idx"]] = batch["x"].detach()
        batch.clear()

    def evaluate(it: int) -> dict[str, float]:
        model.eval()
        result = measure_regeneration(model, target, cfg.steps_max, cfg.eval_batch, cfg.seed)
        model.train()
        return {f"emergence/{key}": getattr(result, key) for key in REGENERATION_KEYS}

    def save(trainer: GradientTrainer) -> Path | None:
        if run is None:
            return None
        ckpt = checkpoint_of(cfg, model, target, trainer=trainer.state_dict(), rng=rng_states())
        return save_checkpoint(run.checkpoints / "latest.pt", ckpt)

    task = progress.add_task("nca-grow", total=cfg.iterations, rate="") if progress else None

    def log(it: int, scalars: dict[str, float]) -> None:
        if run is not None:
            run.log(it, scalars)
        if progress is not None and task is not None:
            progress.update(task, completed=it, rate=f"loss {scalars['losses/loss']:.4f}")

    trainer = GradientTrainer(
        model,
        optimizer,
        loss_fn,
        scheduler=scheduler,
        grad_transform=normalise_gradients,
        after_step=after_step,
        evaluate=evaluate,
        evaluate_every=cfg.eval_every,
        log=log,
        save=save,
        checkpoint_every=cfg.checkpoint_every,
        generators={"numpy": rng, "torch": generator},
        buffers={"pool": pool} if pool is not None else None,
        echo=console.print,
    )
    if resume is not None:
        model.load_state_dict(resume["state_dict"])
        trainer.load_state_dict(resume["trainer"])  # optimizer, schedule, pool, generators
        set_rng_states(resume["rng"])
    start = time.perf_counter()
    history = trainer.fit(cfg.iterations)
    return TrainResult(
        model,
        target,
        [h["losses/loss"] for h in history],
        _evals(history),
        time.perf_counter() - start,
        run,
    )


def _evals(history: list[dict[str, float]]) -> list[tuple[int, dict[str, float]]]:
    return [
        (i + 1, {k: h[f"emergence/{k}"] for k in REGENERATION_KEYS})
        for i, h in enumerate(history)
        if "emergence/loss_grown" in h
    ]


# -- pictures -------------------------------------------------------------------------------
@torch.no_grad()
def plot_training(result: TrainResult, cfg: Config, path: Path) -> Path:
    """Loss curve, regeneration metrics and a grow/damage/recover strip (cropped to the
    target): target, grown, left half erased, 20/50/100 steps later."""
    model, target = result.model, result.target
    h, w, _ = target.shape
    generator = torch.Generator(device=target.device).manual_seed(cfg.seed)
    x = model(
        seed_cell(1, h, w, cfg.channels, device=target.device), cfg.steps_max, generator=generator
    )
    frames = [rgba_to_rgb(target), rgba_to_rgb(x[0, ..., :4])]
    x = erase_halves(x, "left")
    frames.append(rgba_to_rgb(x[0, ..., :4]))
    done = 0
    for k in (20, 50, 100):
        x = model(x, k - done, generator=generator)
        done = k
        frames.append(rgba_to_rgb(x[0, ..., :4]))
    rows, cols = np.nonzero(target[..., 3].cpu().numpy() > 0.1)
    if rows.size:
        top, left = max(0, rows.min() - 3), max(0, cols.min() - 3)
        frames = [f[top : rows.max() + 4, left : cols.max() + 4] for f in frames]
    titles = ["target", f"grown ({cfg.steps_max})", "left half erased", "+20", "+50", "+100"]
    return grow_figure(
        path,
        result.losses,
        result.evals,
        frames,
        titles,
        mode=cfg.mode,
        grow_steps=cfg.steps_max,
        recover_steps=RECOVER_STEPS,
    )


@torch.no_grad()
def regrow_gif(
    model: NCA, target: torch.Tensor, grow_steps: int, path: Path, seed: int = 0
) -> Path:
    """A GIF: growth from the seed, then the left half erased and regrown."""
    h, w, _ = target.shape
    generator = torch.Generator(device=target.device).manual_seed(seed)
    x = seed_cell(1, h, w, model.config.channels, device=target.device)
    frames = []
    for t in range(grow_steps + RECOVER_STEPS + 1):
        if t == grow_steps:
            x = erase_halves(x, "left")
        if t % 2 == 0:
            frames.append(rgba_to_rgb(x[0, ..., :4]))
        x = model.step(x, generator=generator)
    return write_gif(path, frames, scale=max(1, 256 // max(h, w)))


# -- entry points -----------------------------------------------------------------------------
def main(cfg: Config, resume: str | None = None) -> TrainResult:
    """Train (or continue the run in ``resume``), log, save the checkpoints and pictures,
    print the regeneration table."""
    ckpt = load_checkpoint(latest_checkpoint(resume), EXPERIMENT) if resume else None
    run = RunDir(EXPERIMENT, cfg.seed, cfg, root=cfg.out, resume=resume)
    if ckpt is not None:
        run.truncate_metrics(int(ckpt["trainer"]["iteration"]))
    console.print(f"[bold]nca-grow[/] ({cfg.mode}) -> {run.path}")
    try:
        with progress_bar(console) as progress:
            result = train(cfg, run, progress, resume=ckpt)
    finally:
        run.close()
    _, final = result.evals[-1]
    save_checkpoint(
        run.checkpoints / SHIPPED, checkpoint_of(cfg, result.model, result.target, metrics=final)
    )
    if cfg.plots:
        plot_training(result, cfg, run.media / "training.png")
        regrow_gif(result.model, result.target, cfg.steps_max, run.media / "regrow.gif", cfg.seed)
    title = f"nca-grow after {cfg.iterations} iterations ({result.seconds:.0f} s)"
    console.print(metrics_table(title, {key: final[key] for key in REGENERATION_KEYS}))
    console.print(f"checkpoint: {run.checkpoints / SHIPPED}")
    return result


def load_rule(path: str | Path) -> tuple[NCA, torch.Tensor, dict[str, Any]]:
    """``(model, target, checkpoint)`` from an ``nca-grow`` checkpoint.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an ``nca-grow`` checkpoint, no target, or weights that do not fit
            the spec (one line naming the path).
    """
    model, ckpt = load_model(path, EXPERIMENT, build)
    target = ckpt["extra"].get("target")
    if not isinstance(target, torch.Tensor) or target.dim() != 3 or target.shape[-1] != 4:
        raise ValueError(f"{str(path)!r} holds no target image (H, W, 4)")
    return model, target, ckpt


def evaluate(cfg: Config, checkpoint: str | None = None) -> dict[str, Any]:
    """``colony eval nca-grow``: ``loss_grown`` at the trained step count from one seed
    (mean over ``eval_batch`` fire-mask draws), ``loss_damaged`` right after erasing the
    left half, ``loss_recovered`` 100 steps later."""
    path = Path(checkpoint) if checkpoint else SHIPPED_DIR / SHIPPED
    model, target, ckpt = load_rule(path)
    grow_steps = int((ckpt["config"] or {}).get("steps_max", cfg.steps_max))
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    result = measure_regeneration(model, target, grow_steps, cfg.eval_batch, cfg.seed)
    return {
        **{key: getattr(result, key) for key in REGENERATION_KEYS},
        "grow_steps": grow_steps,
        "recover_steps": RECOVER_STEPS,
        "seeds": cfg.eval_batch,
        "checkpoint": str(path),
        "command": ckpt["provenance"].get("command", ""),
    }


def watch(cfg: Config, checkpoint: str | None = None) -> NCACanvas:
    """``colony watch nca-grow``: the checkpoint's rule growing its target live.

    Left click erases a disc, right click reseeds there, ``l`` erases the left half,
    ``c``/``v`` cycle the channel shown, ``t`` switches between the shipped targets.
    """
    if checkpoint:
        paths = [Path(checkpoint)]
    else:
        paths = sorted(SHIPPED_DIR.glob("nca_grow*.pt"), key=lambda p: (p.name != SHIPPED, p.name))
        if not paths:
            raise FileNotFoundError(f"no shipped nca-grow checkpoint in {SHIPPED_DIR}")
    loaded = [(*load_rule(path)[:2], path.stem) for path in paths]
    current = {"k": 0}
    h, w, _ = loaded[0][1].shape
    canvas_cfg = CanvasConfig(height=h, width=w, channels=loaded[0][0].config.channels)

    def rule(x: torch.Tensor) -> torch.Tensor:
        return loaded[current["k"]][0].step(x, generator=canvas.generator)

    def metrics(canvas: NCACanvas) -> dict[str, float]:
        target = loaded[current["k"]][1]
        if target.shape[:2] != canvas.state.shape[1:3]:
            return {}
        view = canvas.state[canvas.view_index : canvas.view_index + 1]
        return {"loss": float(pattern_loss(view, target))}

    def keys(canvas: NCACanvas, name: str) -> bool:
        if name == "l":
            canvas.erase_half("left")
            return True
        if name == "t" and len(loaded) > 1:
            current["k"] = (current["k"] + 1) % len(loaded)
            model, target, stem = loaded[current["k"]]
            th, tw, _ = target.shape
            canvas.config = dataclasses.replace(
                canvas.config, height=th, width=tw, channels=model.config.channels
            )
            canvas.reseed()
            canvas.metadata = {**canvas.metadata, "name": f"nca-grow ({stem})"}
            return True
        return False

    canvas = NCACanvas(rule, canvas_cfg, metrics_fn=metrics, key_fn=keys)
    canvas.metadata = {**NCACanvas.metadata, "name": f"nca-grow ({loaded[0][2]})"}
    canvas.reset(seed=cfg.seed)
    return canvas


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
