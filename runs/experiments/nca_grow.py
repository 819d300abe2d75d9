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
(``lr``, times ``lr_decay`` after ``lr_decay_at`` iterations).

The target is any image Pillow reads as RGBA (``--target PATH``), resized so its
longer side is ``target_size`` and centred on the ``size`` x ``size`` canvas; the
default is a butterfly this project draws (``runs/assets/butterfly.png``, made by
:func:`draw_butterfly`). Every ``eval_every`` iterations the regeneration metrics
are logged (``emergence/loss_grown`` after ``steps_max`` steps from a seed,
``emergence/loss_damaged`` right after erasing the left half,
``emergence/loss_recovered`` 100 steps later). Writes ``checkpoints/nca_grow.pt``,
``media/training.png`` (curves and a grow/damage/recover strip) and
``media/regrow.gif``.

    colony train nca-grow --mode regenerating --iterations 8000
    colony train nca-grow --target my_emoji.png --size 64 --target-size 40
    colony watch nca-grow                  # the shipped checkpoint; click to cut it
    colony eval nca-grow --json eval.json
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from colonylab.agents.nca import NCA, NCAConfig
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
from colonylab.runs.common.nca_io import load_nca, save_nca, shipped_checkpoint
from colonylab.runs.common.progress import progress_bar

EXPERIMENT = "nca-grow"
ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_TARGET = ASSETS / "butterfly.png"
# built-in targets drawn by this project (``--target butterfly`` / ``--target ladybug``)
BUILTIN_TARGETS = {"butterfly": ASSETS / "butterfly.png", "ladybug": ASSETS / "ladybug.png"}
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
    """Save a checkpoint every this many iterations (and at the end)."""
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
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        for name in ("size", "batch", "iterations", "steps_min", "eval_batch"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.size < 3:
            raise ValueError(f"size must be >= 3, got {self.size}")
        if self.target_size is not None and not 1 <= self.target_size <= self.size:
            raise ValueError(
                f"target_size must be in [1, size={self.size}], got {self.target_size}; "
                "raise --size or lower --target-size"
            )
        if self.steps_max < self.steps_min:
            raise ValueError(
                f"steps_max ({self.steps_max}) must be >= steps_min ({self.steps_min})"
            )
        if self.mode != "growing" and self.pool_size < self.batch:
            raise ValueError(f"pool_size ({self.pool_size}) must be >= batch ({self.batch})")
        if self.mode == "regenerating" and not 0 <= self.damage_count < self.batch:
            raise ValueError(
                f"damage_count must be in [0, batch={self.batch}) (the worst sample is "
                f"reseeded, not damaged), got {self.damage_count}"
            )
        if not 0.0 <= self.half_damage <= 1.0:
            raise ValueError(f"half_damage must be in [0, 1], got {self.half_damage}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        for name in ("eval_every", "checkpoint_every", "lr_decay_at"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        NCAConfig(  # architecture checks with their own messages
            channels=self.channels,
            hidden=self.hidden,
            perception=self.perception,
            fire_rate=self.fire_rate,
        )
        if self.channels < 4:
            raise ValueError(f"channels must be >= 4 (RGBA first), got {self.channels}")


# -- the target ------------------------------------------------------------------------------
def draw_butterfly(size: int = 40, supersample: int = 8):
    """The default target: a butterfly drawn with Pillow (a ``PIL.Image`` in RGBA)."""
    from PIL import Image, ImageDraw

    big = size * supersample
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    u = big / 46.0  # drawing unit: the butterfly spans ~40 units, centred
    cx, cy = big / 2.0, big / 2.0 + 1.5 * u
    ink = (40, 25, 30, 255)
    body = (50, 35, 40, 255)

    def wing(x: float, y0: float, y1: float, half_width: float, fill: tuple) -> None:
        draw.ellipse((x - half_width, y0, x + half_width, y1), fill=ink)
        rim = 1.6 * u
        draw.ellipse((x - half_width + rim, y0 + rim, x + half_width - rim, y1 - rim), fill=fill)

    for side in (-1, 1):
        wing(cx + side * 11 * u, cy - 17 * u, cy + 2 * u, 10 * u, (245, 140, 30, 255))
        wing(cx + side * 8.5 * u, cy - 1 * u, cy + 15 * u, 7.5 * u, (250, 190, 50, 255))
        for dx, dy, r, colour in (
            (15, -12, 1.8, (255, 255, 255, 255)),
            (11, -6, 2.6, (200, 40, 60, 255)),
            (9, 6, 2.2, (60, 120, 220, 255)),
        ):
            x, y = cx + side * dx * u, cy + dy * u
            draw.ellipse((x - r * u, y - r * u, x + r * u, y + r * u), fill=colour)
        tip_x, tip_y = cx + side * 6 * u, cy - 19.5 * u
        draw.line((cx + side * u, cy - 15 * u, tip_x, tip_y), fill=body, width=int(1.2 * u))
        draw.ellipse(
            (tip_x - 1.2 * u, tip_y - 1.2 * u, tip_x + 1.2 * u, tip_y + 1.2 * u), fill=body
        )
    draw.ellipse((cx - 1.8 * u, cy - 13 * u, cx + 1.8 * u, cy + 14 * u), fill=body)
    draw.ellipse((cx - 2.6 * u, cy - 16 * u, cx + 2.6 * u, cy - 11 * u), fill=body)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def draw_ladybug(size: int = 40, supersample: int = 8):
    """The second built-in target: a ladybug drawn with Pillow (``PIL.Image``, RGBA)."""
    from PIL import Image, ImageDraw

    big = size * supersample
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    u = big / 46.0
    cx, cy = big / 2.0, big / 2.0 + 2 * u
    black = (30, 25, 30, 255)
    # legs
    for side in (-1, 1):
        for k, dy in enumerate((-6, 1, 8)):
            x0, y0 = cx + side * 8 * u, cy + dy * u
            x1, y1 = cx + side * 18 * u, cy + (dy + (k - 1) * 4) * u
            d.line((x0, y0, x1, y1), fill=black, width=int(1.3 * u))
    # antennae
    for side in (-1, 1):
        d.line(
            (cx + side * 2 * u, cy - 16 * u, cx + side * 7 * u, cy - 21 * u),
            fill=black,
            width=int(1.2 * u),
        )
    # head
    d.ellipse((cx - 7 * u, cy - 19 * u, cx + 7 * u, cy - 8 * u), fill=black)
    for side in (-1, 1):
        d.ellipse(
            (
                cx + side * 3.5 * u - 1.4 * u,
                cy - 16 * u - 1.4 * u,
                cx + side * 3.5 * u + 1.4 * u,
                cy - 16 * u + 1.4 * u,
            ),
            fill=(250, 250, 250, 255),
        )
    # body (shell)
    d.ellipse((cx - 14 * u, cy - 12 * u, cx + 14 * u, cy + 17 * u), fill=black)
    d.ellipse((cx - 13 * u, cy - 11 * u, cx + 13 * u, cy + 16 * u), fill=(220, 35, 35, 255))
    d.line((cx, cy - 11 * u, cx, cy + 16 * u), fill=black, width=int(1.4 * u))
    for dx, dy, r in (
        (-6, -4, 3.0),
        (6, -4, 3.0),
        (-8, 6, 2.6),
        (8, 6, 2.6),
        (-4, 12, 2.2),
        (4, 12, 2.2),
    ):
        x, y = cx + dx * u, cy + dy * u
        d.ellipse((x - r * u, y - r * u, x + r * u, y + r * u), fill=black)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def load_target(path: str | Path | None, target_size: int | None, size: int) -> torch.Tensor:
    """The target as premultiplied RGBA ``float32 (size, size, 4)``, centred.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an image, not convertible to RGBA, fully transparent, or larger
            than the canvas.
    """
    from PIL import Image, UnidentifiedImageError

    if path is None:
        path = DEFAULT_TARGET
    elif str(path) in BUILTIN_TARGETS:
        path = BUILTIN_TARGETS[str(path)]
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"target image {str(path)!r} does not exist")
    try:
        with Image.open(path) as im:
            img = im.convert("RGBA")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValueError(
            f"target {str(path)!r} is not an image Pillow can read as RGBA: {exc}"
        ) from None
    if target_size is not None:
        w, h = img.size
        scale = target_size / max(w, h)
        new = (max(1, round(w * scale)), max(1, round(h * scale)))
        if new != img.size:
            img = img.resize(new, Image.Resampling.LANCZOS)
    w, h = img.size
    if w > size or h > size:
        raise ValueError(
            f"target {str(path)!r} is {w}x{h}, larger than the {size}x{size} canvas; "
            "pass --target-size N (resize) or a larger --size"
        )
    rgba = np.asarray(img, dtype=np.float32) / 255.0
    if rgba[..., 3].max() <= 0.1:
        raise ValueError(
            f"target {str(path)!r} is fully transparent (alpha <= 0.1 everywhere); "
            "the CA grows only where alpha > 0.1"
        )
    rgba[..., :3] *= rgba[..., 3:4]  # premultiplied colour, as the CA's RGB channels are
    out = np.zeros((size, size, 4), dtype=np.float32)
    top, left = (size - h) // 2, (size - w) // 2
    out[top : top + h, left : left + w] = rgba
    return torch.from_numpy(out)


# -- training -------------------------------------------------------------------------------
def _command_line() -> str:
    argv = sys.argv
    if argv and Path(argv[0]).name == "colony":
        return shlex.join(["colony", *argv[1:]])
    return shlex.join(["python", *argv])


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


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    model: NCA
    target: torch.Tensor
    losses: list[float]
    evals: list[tuple[int, RegenerationResult]]
    seconds: float
    run: RunDir | None


def train(cfg: Config, run: RunDir | None = None, progress: Progress | None = None) -> TrainResult:
    """Train a rule; logs to ``run`` and saves ``run.checkpoints/nca_grow.pt`` when given."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    target = load_target(cfg.target, cfg.target_size, cfg.size).to(device)
    model = NCA(
        channels=cfg.channels, hidden=cfg.hidden, perception=cfg.perception, fire_rate=cfg.fire_rate
    ).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=[cfg.lr_decay_at] if cfg.lr_decay_at else [], gamma=cfg.lr_decay
    )
    seed_state = seed_cell(1, cfg.size, cfg.size, cfg.channels, device=device)
    pool = seed_state.repeat(cfg.pool_size, 1, 1, 1) if cfg.mode != "growing" else None
    meta = {"command": _command_line(), "config": dataclasses.asdict(cfg)}
    losses: list[float] = []
    evals: list[tuple[int, RegenerationResult]] = []
    task = progress.add_task("nca-grow", total=cfg.iterations, rate="") if progress else None
    start = time.perf_counter()

    def save(iteration: int) -> None:
        if run is None:
            return
        save_nca(
            run.checkpoints / "nca_grow.pt",
            model,
            EXPERIMENT,
            {**meta, "iterations_done": iteration, "trained_steps": cfg.steps_max},
            target=target.cpu(),
        )

    for it in range(1, cfg.iterations + 1):
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
        loss = pattern_loss(x, target).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                if p.grad is not None:
                    p.grad /= p.grad.norm() + 1e-8
        optimizer.step()
        scheduler.step()
        if pool is not None:
            pool[idx] = x.detach()
        losses.append(float(loss.detach()))
        scalars = {
            "losses/loss": losses[-1],
            "charts/lr": scheduler.get_last_lr()[0],
            "charts/steps": steps,
        }
        last = it == cfg.iterations
        if (cfg.eval_every and it % cfg.eval_every == 0) or last:
            model.eval()
            result = measure_regeneration(model, target, cfg.steps_max, cfg.eval_batch, cfg.seed)
            evals.append((it, result))
            scalars.update(
                {
                    "emergence/loss_grown": result.loss_grown,
                    "emergence/loss_damaged": result.loss_damaged,
                    "emergence/loss_recovered": result.loss_recovered,
                    "emergence/recovery_ratio": result.recovery_ratio,
                }
            )
            model.train()
        if run is not None:
            run.log(it, scalars)
        if (cfg.checkpoint_every and it % cfg.checkpoint_every == 0) or last:
            save(it)
        if progress is not None and task is not None:
            progress.update(task, advance=1, rate=f"loss {losses[-1]:.4f}")
    return TrainResult(model, target, losses, evals, time.perf_counter() - start, run)


# -- pictures -------------------------------------------------------------------------------
@torch.no_grad()
def _strip(model: NCA, target: torch.Tensor, grow_steps: int, seed: int) -> list[np.ndarray]:
    """Frames: target, grown, left half erased, 20/50/100 steps later."""
    h, w, _ = target.shape
    generator = torch.Generator(device=target.device).manual_seed(seed)
    x = seed_cell(1, h, w, model.config.channels, device=target.device)
    x = model(x, grow_steps, generator=generator)
    frames = [rgba_to_rgb(target), rgba_to_rgb(x[0, ..., :4])]
    x = erase_halves(x, "left")
    frames.append(rgba_to_rgb(x[0, ..., :4]))
    done = 0
    for k in (20, 50, 100):
        x = model(x, k - done, generator=generator)
        done = k
        frames.append(rgba_to_rgb(x[0, ..., :4]))
    return frames


def plot_training(result: TrainResult, cfg: Config, path: Path) -> Path:
    """Loss curve, regeneration metrics and a grow/damage/recover strip."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(12, 6.5), constrained_layout=True)
    grid = fig.add_gridspec(2, 6, height_ratios=[1.3, 1])
    ax = fig.add_subplot(grid[0, :3])
    ax.semilogy(
        np.arange(1, len(result.losses) + 1), result.losses, lw=0.6, color="0.5", label="batch"
    )
    if len(result.losses) >= 20:
        k = max(5, len(result.losses) // 50)
        smooth = np.convolve(result.losses, np.ones(k) / k, mode="valid")
        ax.semilogy(np.arange(k, len(result.losses) + 1), smooth, color="C0", label=f"mean of {k}")
    ax.set(xlabel="iteration", ylabel="L2 loss (RGBA)", title=f"training ({cfg.mode})")
    ax.legend()
    ax = fig.add_subplot(grid[0, 3:])
    if result.evals:
        its = [i for i, _ in result.evals]
        for key, colour in (("loss_grown", "C2"), ("loss_damaged", "C3"), ("loss_recovered", "C1")):
            ax.semilogy(
                its, [getattr(r, key) for _, r in result.evals], "o-", color=colour, label=key
            )
        ax.legend()
    ax.set(
        xlabel="iteration",
        ylabel="loss",
        title=f"regeneration: grown at {cfg.steps_max} steps, left half erased, +{RECOVER_STEPS}",
    )
    titles = ["target", f"grown ({cfg.steps_max})", "left half erased", "+20", "+50", "+100"]
    frames = _strip(result.model, result.target, cfg.steps_max, cfg.seed)
    rows, cols = np.nonzero(result.target[..., 3].cpu().numpy() > 0.1)  # crop to the target
    if rows.size:
        margin = 3
        top, left = max(0, rows.min() - margin), max(0, cols.min() - margin)
        frames = [f[top : rows.max() + margin + 1, left : cols.max() + margin + 1] for f in frames]
    for i, (frame, title) in enumerate(zip(frames, titles, strict=True)):
        ax = fig.add_subplot(grid[1, i])
        ax.imshow(frame, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@torch.no_grad()
def regrow_gif(
    model: NCA, target: torch.Tensor, grow_steps: int, path: Path, seed: int = 0
) -> Path:
    """A GIF: growth from the seed, then the left half erased and regrown."""
    import imageio.v3 as iio

    h, w, _ = target.shape
    generator = torch.Generator(device=target.device).manual_seed(seed)
    x = seed_cell(1, h, w, model.config.channels, device=target.device)
    frames = []
    scale = max(1, 256 // max(h, w))
    for t in range(grow_steps + RECOVER_STEPS + 1):
        if t == grow_steps:
            x = erase_halves(x, "left")
        if t % 2 == 0:
            img = rgba_to_rgb(x[0, ..., :4])
            frames.append(np.repeat(np.repeat(img, scale, 0), scale, 1))
        x = model.step(x, generator=generator)
    iio.imwrite(path, frames, duration=40, loop=0)
    return path


# -- entry points -----------------------------------------------------------------------------
def main(cfg: Config) -> TrainResult:
    """Train, log, save the checkpoint and pictures, print the regeneration table."""
    run = RunDir(EXPERIMENT, cfg.seed, cfg, root=cfg.out)
    console.print(f"[bold]nca-grow[/] ({cfg.mode}) -> {run.path}")
    with progress_bar(console) as progress:
        result = train(cfg, run, progress)
    run.close()
    if cfg.plots:
        plot_training(result, cfg, run.media / "training.png")
        regrow_gif(result.model, result.target, cfg.steps_max, run.media / "regrow.gif", cfg.seed)
    _, final = result.evals[-1]
    table = Table(title=f"nca-grow after {cfg.iterations} iterations ({result.seconds:.0f} s)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("loss_grown", "loss_damaged", "loss_recovered", "recovery_ratio"):
        table.add_row(key, f"{getattr(final, key):.4g}")
    console.print(table)
    console.print(f"checkpoint: {run.checkpoints / 'nca_grow.pt'}")
    return result


def _checkpoint_path(checkpoint: str | None) -> Path:
    return Path(checkpoint) if checkpoint else shipped_checkpoint(SHIPPED)


def evaluate(cfg: Config, checkpoint: str | None = None) -> dict[str, Any]:
    """``colony eval nca-grow``: ``loss_grown`` at the trained step count from one seed
    (mean over ``eval_batch`` fire-mask draws), ``loss_damaged`` right after erasing the
    left half, ``loss_recovered`` 100 steps later."""
    path = _checkpoint_path(checkpoint)
    model, payload = load_nca(path, EXPERIMENT)
    target = payload.get("target")
    if not isinstance(target, torch.Tensor) or target.dim() != 3 or target.shape[-1] != 4:
        raise ValueError(f"{str(path)!r} holds no target image (H, W, 4)")
    grow_steps = int(payload["meta"].get("trained_steps", cfg.steps_max))
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    model.eval()
    result = measure_regeneration(model, target, grow_steps, cfg.eval_batch, cfg.seed)
    return {
        "loss_grown": result.loss_grown,
        "loss_damaged": result.loss_damaged,
        "loss_recovered": result.loss_recovered,
        "recovery_ratio": result.recovery_ratio,
        "grow_steps": grow_steps,
        "recover_steps": RECOVER_STEPS,
        "seeds": cfg.eval_batch,
        "checkpoint": str(path),
        "command": payload["meta"].get("command", ""),
    }


def watch(cfg: Config, checkpoint: str | None = None) -> NCACanvas:
    """``colony watch nca-grow``: the checkpoint's rule growing its target live.

    Left click erases a disc, right click reseeds there, ``l`` erases the left half,
    ``c``/``v`` cycle the channel shown, ``t`` switches between the shipped targets.
    """
    if checkpoint:
        paths = [Path(checkpoint)]
    else:
        paths = sorted(shipped_checkpoint("").glob("nca_grow*.pt"))
        if not paths:
            raise FileNotFoundError(f"no shipped nca-grow checkpoint in {shipped_checkpoint('')}")
        paths.sort(key=lambda p: p.name != SHIPPED)
    loaded = []
    for path in paths:
        model, payload = load_nca(path, EXPERIMENT)
        model.eval()
        loaded.append((model, payload["target"], path.stem))
    current = {"k": 0}
    h, w, _ = loaded[0][1].shape
    canvas_cfg = CanvasConfig(height=h, width=w, channels=loaded[0][0].config.channels)

    def rule(x: torch.Tensor) -> torch.Tensor:
        return loaded[current["k"]][0].step(x, generator=canvas.generator)

    def metrics(canvas: NCACanvas) -> dict[str, float]:
        target = loaded[current["k"]][1]
        if target.shape[:2] != canvas.state.shape[1:3]:
            return {}
        return {
            "loss": float(
                pattern_loss(canvas.state[canvas.view_index : canvas.view_index + 1], target)
            )
        }

    def keys(canvas: NCACanvas, name: str) -> bool:
        if name == "l":
            canvas.erase_half("left")
            return True
        if name == "t" and len(loaded) > 1:
            current["k"] = (current["k"] + 1) % len(loaded)
            model, target, _ = loaded[current["k"]]
            th, tw, _ = target.shape
            canvas.config = dataclasses.replace(
                canvas.config, height=th, width=tw, channels=model.config.channels
            )
            canvas.reseed()
            canvas.metadata = {**canvas.metadata, "name": f"nca-grow ({loaded[current['k']][2]})"}
            return True
        return False

    canvas = NCACanvas(rule, canvas_cfg, metrics_fn=metrics, key_fn=keys)
    canvas.metadata = {**NCACanvas.metadata, "name": f"nca-grow ({loaded[0][2]})"}
    canvas.reset(seed=cfg.seed)
    return canvas


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
