"""The README figures of the consensus worlds (matplotlib; arrays in, PNG files out).

``python -m colonylab.envs.consensus.figures density`` writes ``docs/density-gkl.png``
(GKL's space-time diagrams, time down the page); ``... flock`` writes
``docs/flock-order.png`` (Vicsek's order-vs-noise curve at density 4, N = 40, 400,
4,000; see :func:`colonylab.envs.consensus.flock.order_curve`); ``... view`` writes
``docs/flock-view.png`` (the live view of a Vicsek and a Couzin flock).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from colonylab.envs.consensus import density as D


def gkl_examples(n: int = 149, steps: int = 149, seed: int = 4) -> list[tuple[str, np.ndarray]]:
    """Two GKL space-time diagrams from unbiased starts, one of each majority, both
    classified correctly, densities near 1/2: ``[(title, uint8[steps + 1, n])]``."""
    rng = np.random.default_rng(seed)
    starts = D.random_starts(400, n, rng)
    density = starts.mean(axis=1)
    correct = D.classify_each("gkl", starts)
    out = []
    for want in (False, True):
        ok = np.flatnonzero(correct & (D.majority_of(starts) == want))
        pick = ok[np.argmin(np.abs(density[ok] - 0.5))]
        world = D.DensityRingWorld(D.DensityConfig(n=n, batch=1, rule="gkl", steps=steps))
        world.reset(options={"starts": starts[pick : pick + 1]})
        title = f"start density {density[pick]:.3f} -> all {int(want)}"
        out.append((title, world.space_time(0, steps)))
    return out


def space_time_figure(
    panels: list[tuple[str, np.ndarray]], path: str | Path, suptitle: str = ""
) -> Path:
    """Space-time diagrams side by side (1 black, 0 white, time down the page)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.9))
    for ax, (title, rows) in zip(np.atleast_1d(axes), panels, strict=True):
        ax.imshow(rows, cmap="Greys", interpolation="nearest", aspect="auto", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("cell")
        ax.set_ylabel("time step")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def density_figure(path: str | Path = "docs/density-gkl.png") -> Path:
    """``docs/density-gkl.png``: GKL at N = 149 on two near-1/2 starts."""
    return space_time_figure(
        gkl_examples(),
        path,
        "GKL rule, N = 149, radius 3: space-time diagrams (time down)",
    )


def order_figure(
    curves: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    path: str | Path = "docs/flock-order.png",
    title: str = "",
) -> Path:
    """Vicsek order parameter against noise: ``curves[N] = (noise, mean, std)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    markers = ["s", "+", "x", "^", "o", "D"]
    for (n, (noise, mean, std)), marker in zip(sorted(curves.items()), markers, strict=False):
        ax.errorbar(noise, mean, yerr=std, marker=marker, ms=5, lw=1, capsize=2, label=f"N = {n}")
    ax.set_xlabel("noise η")
    ax.set_ylabel("order parameter  |Σ v| / (N v₀)")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, 2 * np.pi)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title or "Vicsek model, density 4, r = 1, v₀ = 0.03", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def flock_view_figure(path: str | Path = "docs/flock-view.png") -> Path:
    """``docs/flock-view.png``: the live view of two flocks (headings as hue)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from colonylab.envs.consensus.flock import COUZIN_2005, FlockConfig, FlockWorld

    vicsek = FlockWorld(FlockConfig(n=4000, noise=1.5))
    vicsek.reset(seed=0)
    vicsek.run(300)
    couzin = FlockWorld(FlockConfig(n=400, **{**COUZIN_2005, "target_angle": 0.8}))
    couzin.reset(seed=0)
    couzin.run(300)
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 4.5))
    panels = [
        (vicsek, f"Vicsek, N = 4,000, η = 1.5: order {vicsek.order()[0]:.2f}"),
        (couzin, f"Couzin zones, N = 400, 5% informed (white): order {couzin.order()[0]:.2f}"),
    ]
    for ax, (world, title) in zip(axes, panels, strict=True):
        ax.imshow(world.render_rgb(), interpolation="nearest")
        ax.set_title(title, fontsize=8.5)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        "flock live view: colour = heading; white tick = the informed direction", fontsize=9
    )
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


ORDER_TITLE = (
    "Vicsek model, density 4, r = 1, v₀ = 0.03 (1,500 steps;\n"
    "N = 4,000 at η ≤ 3: 4,000 steps, its ordering is slow)"
)


def vicsek_curves() -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The curves of ``docs/flock-order.png``: N = 40, 400, 4,000 over 1,500 steps
    (order averaged over the last 500), N = 4,000 at low noise over 4,000 steps (the
    last 1,000), where 1,500 steps are too few to order a box of side 32."""
    from colonylab.envs.consensus import flock

    curves = flock.order_curve(steps=1500, measure=500, flocks=8)
    low_noise = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
    long = flock.order_curve((4000,), low_noise, steps=4000, measure=1000, flocks=8, seed=1)
    noise, mean, std = (a.copy() for a in curves[4000])
    k = len(low_noise)
    mean[:k], std[:k] = long[4000][1], long[4000][2]
    curves[4000] = (noise, mean, std)
    return curves


def main(argv: Any = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=("density", "flock", "view"))
    parser.add_argument("--out", default=None, help="output PNG path")
    args = parser.parse_args(argv)
    if args.which == "density":
        print(density_figure(args.out or "docs/density-gkl.png"))
    elif args.which == "view":
        print(flock_view_figure(args.out or "docs/flock-view.png"))
    else:
        print(order_figure(vicsek_curves(), args.out or "docs/flock-order.png", ORDER_TITLE))


if __name__ == "__main__":
    main()
