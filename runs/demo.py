"""``colony demo``: the main job on its embedded default.

For now a cellular-automata showcase (Life with a glider gun, Lenia's Orbium,
HighLife's replicator, Day & Night), watched live in a pygame window, or, on a
machine without a display, recorded to a GIF and MP4 with a summary of the
emergence metrics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from colonylab.emergence.ca import block_entropy
from colonylab.envs import make
from colonylab.envs.ca.showcase import ShowcaseConfig
from colonylab.runs.common import RunDir, seed_everything


@dataclass(frozen=True)
class Config:
    """The CA showcase: live window with a display, recorded otherwise."""

    steps: int = 300
    """Steps to record when headless (live: runs until you quit)."""
    seed: int = 0
    """Seed of every panel."""
    panel: int = 256
    """Side of each of the four panels, in cells (multiple of 64)."""
    fps: int = 30
    """Frames per second of the recording."""
    every: int = 2
    """Record one frame every this many steps."""
    record: bool | None = None
    """Record instead of opening a window (default: only when there is no display)."""
    mp4: bool = True
    """Also write an MP4 beside the GIF when recording."""
    out: str | None = None
    """Run directory root (default runs/out)."""


def summarize(world, elapsed: float) -> Table:
    """A table of what each panel shows after the run."""
    table = Table(title=f"CA showcase after {world.step_count} steps ({elapsed:.1f} s)")
    for col in ("panel", "rule", "population / mass", "activity", "block entropy"):
        table.add_column(col, justify="right" if col != "panel" else "left")
    for name, sub in world.worlds.items():
        m = sub.metrics()
        if name == "lenia":
            table.add_row(name, "R=13 T=10 mu=0.15 sigma=0.015", f"{m['mass']:.1f}", "-", "-")
        else:
            ent = block_entropy(sub.board[:1])[0]
            table.add_row(
                name,
                sub.rule.notation,
                f"{m['population']:,}",
                f"{m['activity']:.4f}",
                f"{ent:.3f} bit/cell",
            )
    return table


def main(cfg: Config) -> Path | None:
    """Run the showcase; returns the recording's path when headless."""
    from colonylab.envs.render.viewer import Viewer, display_available, record_rollout

    console = Console()
    seed_everything(cfg.seed)
    world = make("ca-showcase", config=ShowcaseConfig(panel=cfg.panel))
    world.reset(seed=cfg.seed)
    record = cfg.record if cfg.record is not None else not display_available()
    if not record:
        console.print("[bold]Colony Lab demo[/]: h for help, space to pause, q to quit")
        with Viewer(world, title="Colony Lab - cellular automata") as viewer:
            t0 = time.perf_counter()
            viewer.run()
        console.print(summarize(world, time.perf_counter() - t0))
        return None
    if cfg.record is None:
        console.print(
            "[yellow]no display found[/] (DISPLAY unset or SDL_VIDEODRIVER=dummy): "
            "recording the showcase instead of opening a window"
        )
    run = RunDir("demo", cfg.seed, cfg, root=cfg.out, tensorboard=False)
    gif = run.media / "demo.gif"
    t0 = time.perf_counter()
    # the GIF without the overlay (each panel is labelled); the MP4 larger, with it
    record_rollout(world, gif, cfg.steps, fps=cfg.fps, every=cfg.every, overlay=False)
    elapsed = time.perf_counter() - t0
    for name, sub in world.worlds.items():
        run.log(world.step_count, {f"emergence/{name}/{k}": v for k, v in sub.metrics().items()})
    import imageio.v3 as iio

    iio.imwrite(run.media / "last_frame.png", world.render_rgb())
    if cfg.mp4:
        # the same run once more, as MP4 (cheap next to the GIF encoding)
        world.reset(seed=cfg.seed)
        side = 2 * world.render_rgb().shape[0]
        record_rollout(
            world,
            run.media / "demo.mp4",
            cfg.steps,
            fps=cfg.fps,
            window_size=(side, side),
            progress=False,
        )
    run.close()
    console.print(summarize(world, elapsed))
    frames = 1 + int(np.ceil(cfg.steps / cfg.every))
    console.print(
        f"recorded {frames} frames to [bold]{gif}[/]" + (" and demo.mp4" if cfg.mp4 else "")
    )
    console.print(f"run directory: [bold]{run.path}[/]")
    return gif


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
