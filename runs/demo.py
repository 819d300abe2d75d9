"""``colony demo``: the main job on its embedded default -- a battle of thousands, a
learned army against a scripted one.

Two armies of about ``agents / 2`` soldiers meet in MAgent2's ``battle_v4`` on
MAgent2's own rules (``colonylab.envs.magent``: shuffled sequential attacks, the
killing blow alone earns the kill, sequential moves). Red is the **learned** army:
one shared network trained by self-play against an opponent pool
(``runs/checkpoints/battle-selfplay.pt``, ``colony train battle-selfplay``; it learned
on 81 vs 81 and plays here at 2,000 a side). Blue is the scripted ``greedy`` army in
MAgent2's action numbering (attack an enemy in reach, else take the move closest to
the nearest enemy in view, else head for the enemy army's centre). ``--policy
<red>-vs-<blue>`` picks other teams (:mod:`colonylab.runs.teams`: ``random``,
``greedy``, ``noop``, a shipped checkpoint's name or a ``.pt`` file; a learned army on
the blue side plays mirrored). With a display the battle runs in the live pygame
viewer (zoom, pan, pause; the overlay shows team sizes, kills, clusters, the front line
and the encirclement index); without one it is recorded to ``demo.gif`` and
``demo.mp4`` under ``runs/out/demo/<run>/media`` with ``metrics.png`` (the emergence
series), ``last_frame.png`` and ``metrics.jsonl``, and a summary table is printed
that says who won (more soldiers left; "leads" when neither army is wiped out yet).

The cellular-automata showcase of the first release is still one command away:
``colony watch ca-showcase``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from colonylab._checks import check_int
from colonylab.emergence.grid import TeamSeries, kill_ratio
from colonylab.emergence.overlay import grid_log_metrics, grid_overlay
from colonylab.envs.magent.battle_v4 import BattleConfig, BattleWorld
from colonylab.runs import teams
from colonylab.runs.common import RunDir, seed_everything

TEAM_NAMES = ("red", "blue")
DEFAULT_POLICY = "battle-selfplay-vs-greedy"


@dataclass(frozen=True)
class Config:
    """A battle of thousands, the learned army (red) against the scripted greedy one
    (blue): live, or recorded headless."""

    agents: int = 4000
    """Soldiers of both teams together, about (the map is sized for MAgent2's battle
    density, 0.04 a side)."""
    policy: str = DEFAULT_POLICY
    """The teams, ``<red>-vs-<blue>`` (or one for both): random, greedy, noop, a shipped
    checkpoint (battle-selfplay) or a checkpoint file."""
    steps: int = 300
    """Steps to record when headless (live: runs until you quit)."""
    seed: int = 0
    """Seed of the world and the policies."""
    fps: int = 20
    """Frames per second of the recording."""
    every: int = 2
    """Record (and measure) one frame every this many steps."""
    record: bool | None = None
    """Record instead of opening a window (default: only when there is no display)."""
    mp4: bool = True
    """Also write an MP4 beside the GIF when recording."""
    out: str | None = None
    """Run directory root (default runs/out)."""

    def __post_init__(self) -> None:
        check_int("--agents", self.agents, 2)  # one a side at least
        check_int("--steps", self.steps, 1)
        check_int("--seed", self.seed, 0)
        check_int("--fps", self.fps, 1)
        check_int("--every", self.every, 1)
        self.teams()

    def teams(self) -> tuple[str, str]:
        """``(red, blue)`` team names of ``policy``.

        Raises:
            ValueError: not ``<red>-vs-<blue>`` of known teams (one line naming them).
        """
        parts = self.policy.split("-vs-") if isinstance(self.policy, str) else []
        if not 1 <= len(parts) <= 2:
            parts = []
        for part in parts:
            try:
                teams.checkpoint_of(part)
            except ValueError:
                parts = []
                break
        if not parts:
            raise ValueError(
                f"--policy must be '<red>-vs-<blue>' (or one team for both) of "
                f"{', '.join(teams.known_teams())} or checkpoint files (e.g. "
                f"'{DEFAULT_POLICY}'), got {self.policy!r}"
            )
        return (parts[0], parts[-1])


def map_size_for(agents: int) -> int:
    """MAgent2's battle map side for about ``agents`` soldiers (0.04 of the cells a side)."""
    return max(12, math.ceil(math.sqrt(agents / 0.08)))


def armies(agents: int, map_size: int) -> list[np.ndarray]:
    """Two armies of ``agents // 2`` soldiers laid out like MAgent2's battle (every other
    cell of a square block, 3 columns either side of the middle), exactly that many."""
    n = agents // 2
    side = math.ceil(math.sqrt(n))
    top = (map_size - 2 * side) // 2
    cells = [(2 * (k // side), top + 2 * (k % side)) for k in range(n)]
    mid, gap = map_size // 2, 3
    left = np.array([(mid - gap - 2 * side + x, y) for x, y in cells], np.int32)
    right = np.array([(mid + gap + x, y) for x, y in cells], np.int32)
    return [left.reshape(-1, 2), right.reshape(-1, 2)]


def make_world(cfg: Config) -> BattleWorld:
    """The demo's battle: MAgent2's ``battle_v4`` (its rules and its map density) with
    ``cfg.agents`` soldiers; ``default_policy`` set for the viewer."""
    size = map_size_for(cfg.agents)
    world = BattleWorld(BattleConfig(map_size=size, max_cycles=10**9))
    world.reset(seed=cfg.seed, options={"agents": armies(cfg.agents, size)})
    red, blue = cfg.teams()
    teams.set_teams(world, red, blue, seed=cfg.seed)
    return world


class BattleLog:
    """Per-frame record of the battle: team series, emergence scalars, ``metrics.jsonl``."""

    def __init__(self, run: RunDir | None) -> None:
        self.run = run
        self.series = TeamSeries(2)
        self.steps: list[int] = []
        self.rows: list[dict[str, float]] = []
        self._last_kills = np.zeros(2, dtype=np.int64)

    def __call__(self, world: BattleWorld) -> None:
        m = world.metrics()
        total = np.array([m["red_kills"], m["blue_kills"]], dtype=np.int64)
        sizes = np.array([m["red_alive"], m["blue_alive"]], dtype=np.int64)
        self.series.append(sizes, total - self._last_kills)
        self._last_kills = total
        row = grid_log_metrics(world)
        row.update(self.series.summary())
        self.steps.append(world.step_count)
        self.rows.append(row)
        if self.run is not None:
            self.run.log(world.step_count, row)

    def column(self, key: str) -> np.ndarray:
        return np.array([r.get(key, math.nan) for r in self.rows], dtype=np.float64)


def plot_metrics(log: BattleLog, path: Path, title: str = "colony demo") -> Path:
    """Team sizes, cumulative kill ratio, clusters, front line and encirclement over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.asarray(log.steps)
    colours = ("#ff5440", "#5096ff")
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), constrained_layout=True)
    ax = axes[0, 0]
    for t, name in enumerate(TEAM_NAMES):
        ax.plot(steps, log.series.sizes[:, t], color=colours[t], label=name)
    ax.set(title="soldiers alive", xlabel="step")
    ax.legend()
    ax = axes[0, 1]
    ratio = log.series.kill_ratio(smoothing=1.0)
    ax.plot(steps, ratio, color="#444")
    ax.set(title="kill ratio red : blue (cumulative, +1 smoothed)", xlabel="step", yscale="log")
    ax = axes[1, 0]
    for t, name in enumerate(TEAM_NAMES):
        ax.plot(steps, log.column(f"emergence/team{t}_clusters"), color=colours[t], label=name)
    ax.set(title="clusters (8-connected groups)", xlabel="step", yscale="log")
    ax.legend()
    ax = axes[1, 1]
    ax.plot(steps, log.column("emergence/front_line"), color="#333", label="front line (contacts)")
    ax.set(xlabel="step", title="front line and encirclement")
    ax.legend(loc="upper left")
    twin = ax.twinx()
    twin.plot(steps, log.column("emergence/encirclement"), color="#c08000", lw=1, alpha=0.8)
    twin.set_ylabel("encircled share of targets", color="#c08000")
    twin.set_ylim(0, 1)
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def label(name: str) -> str:
    """``battle-selfplay, learned`` / ``greedy, scripted``: a team and what it is."""
    return f"{Path(name).stem}, {'scripted' if teams.checkpoint_of(name) is None else 'learned'}"


def verdict(world: BattleWorld, names: tuple[str, str] = ("red", "blue")) -> str:
    """Who won: the army with more soldiers left ("wins" once the other is wiped out,
    "leads" while both still fight), e.g. ``red (battle-selfplay, learned) wins: 1,530
    soldiers left, blue (greedy, scripted) 0, after 300 steps``."""
    m = world.metrics()
    left = (m["red_alive"], m["blue_alive"])
    who = [f"{side} ({label(n)})" for side, n in zip(TEAM_NAMES, names, strict=True)]
    over = min(left) == 0
    after = f"after {world.step_count} steps"
    if left[0] == left[1]:
        state = "both wiped out" if over else "level"
        return f"draw ({state}): {who[0]} {left[0]:,} soldiers left, {who[1]} {left[1]:,}, {after}"
    w = 0 if left[0] > left[1] else 1
    return (
        f"{who[w]} {'wins' if over else 'leads'}: {left[w]:,} soldiers left, "
        f"{who[1 - w]} {left[1 - w]:,}, {after}"
    )


def summarize(
    world: BattleWorld,
    log: BattleLog | None,
    elapsed: float,
    names: tuple[str, str] = ("red", "blue"),
) -> Table:
    """What the battle came to: the winner, sizes, kills, kill ratio, clusters, front,
    encirclement (``names``: the red and blue teams)."""
    m = world.metrics()
    table = Table(
        title=f"battle of {world.n_agents:,} after {world.step_count} steps ({elapsed:.1f} s)"
    )
    table.add_column("metric")
    table.add_column(f"red: {label(names[0])}" if names[0] != "red" else "red", justify="right")
    table.add_column(f"blue: {label(names[1])}" if names[1] != "blue" else "blue", justify="right")
    table.add_row("alive", f"{m['red_alive']:,}", f"{m['blue_alive']:,}")
    table.add_row("kills", f"{m['red_kills']:,}", f"{m['blue_kills']:,}")
    overlay = grid_overlay(world)
    table.add_row(
        "clusters (largest)",
        f"{overlay['red clusters']} ({overlay['red largest']})",
        f"{overlay['blue clusters']} ({overlay['blue largest']})",
    )
    ratio = kill_ratio(np.array([m["red_kills"], m["blue_kills"]]), smoothing=1.0)
    table.add_row("kill ratio red:blue (+1)", f"{ratio:.1f}", "")
    table.add_row("front line now", f"{overlay['front line']}", "")
    if log is not None and log.rows:
        enc = log.column("emergence/encirclement")
        peak = np.nanmax(enc) if np.isfinite(enc).any() else math.nan
        mean = np.nanmean(enc) if np.isfinite(enc).any() else math.nan
        table.add_row("encircled share (mean / peak)", f"{mean:.3f} / {peak:.3f}", "")
        front = log.column("emergence/front_line")
        table.add_row("front line (peak)", f"{int(np.nanmax(front))}", "")
    return table


def main(cfg: Config) -> Path | None:
    """Run the battle; returns the GIF's path when headless."""
    from colonylab.envs.render.viewer import Viewer, display_available, record_rollout

    console = Console()
    seed_everything(cfg.seed)
    world = make_world(cfg)
    record = cfg.record if cfg.record is not None else not display_available()
    if not record:
        console.print("[bold]Colony Lab demo[/]: h for help, space to pause, q to quit")
        t0 = time.perf_counter()
        with Viewer(world, title="Colony Lab - battle", metrics_fn=grid_overlay) as viewer:
            viewer.run()
        console.print(summarize(world, None, time.perf_counter() - t0, cfg.teams()))
        console.print(f"[bold]{verdict(world, cfg.teams())}[/]")
        return None
    if cfg.record is None:
        console.print(
            "[yellow]no display found[/] (DISPLAY unset or SDL_VIDEODRIVER=dummy): "
            "recording the battle instead of opening a window"
        )
    run = RunDir("demo", cfg.seed, cfg, root=cfg.out, tensorboard=False)
    log = BattleLog(run)
    gif = run.media / "demo.gif"
    paths = [gif] + ([run.media / "demo.mp4"] if cfg.mp4 else [])
    t0 = time.perf_counter()
    record_rollout(
        world,
        paths,
        cfg.steps,
        fps=cfg.fps,
        every=cfg.every,
        metrics_fn=grid_overlay,
        on_frame=log,
    )
    elapsed = time.perf_counter() - t0
    import imageio.v3 as iio

    iio.imwrite(run.media / "last_frame.png", world.render_rgb())
    red, blue = cfg.teams()
    title = f"colony demo: {label(red)} (red) vs {label(blue)} (blue)"
    plot_metrics(log, run.media / "metrics.png", title)
    run.close()
    console.print(summarize(world, log, elapsed, (red, blue)))
    console.print(f"[bold]{verdict(world, (red, blue))}[/]")
    frames = 1 + math.ceil(cfg.steps / cfg.every)
    names = ", ".join(p.name for p in paths)
    console.print(f"recorded {frames} frames to {names} and metrics.png in [bold]{run.media}[/]")
    return gif


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
