"""Figures of the neural-CA experiments (``nca-grow``, ``nca-digits``): arrays in, files out.

Nothing here runs a rule: the experiment steps its model, turns states into RGB
frames (``uint8 (H, W, 3)``) and hands them over with its loss history and
evaluations.

* :func:`grow_figure`: loss curve, regeneration metrics, a grow/damage/recover strip;
* :func:`write_gif`: frames to an animated GIF;
* :func:`votes_rgb`: a digit state coloured by its cells' votes (:data:`PALETTE`);
* :func:`digits_figure`: loss and held-out curves, ten digits coloured by their
  votes, one digit swapped mid-run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PALETTE", "digits_figure", "grow_figure", "votes_rgb", "write_gif"]

# one colour per class (the tab10 palette), RGB in [0, 1]
PALETTE = np.array(
    [
        [0.122, 0.467, 0.706],
        [1.000, 0.498, 0.055],
        [0.173, 0.627, 0.173],
        [0.839, 0.153, 0.157],
        [0.580, 0.404, 0.741],
        [0.549, 0.337, 0.294],
        [0.890, 0.467, 0.761],
        [0.498, 0.498, 0.498],
        [0.737, 0.741, 0.133],
        [0.090, 0.745, 0.812],
    ],
    dtype=np.float32,
)


def _loss_curve(ax, losses: Sequence[float], ylabel: str, title: str) -> None:
    losses = np.asarray(losses, dtype=np.float64)
    ax.semilogy(np.arange(1, len(losses) + 1), losses, lw=0.6, color="0.5", label="batch")
    if len(losses) >= 20:
        k = max(5, len(losses) // 50)
        smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
        ax.semilogy(np.arange(k, len(losses) + 1), smooth, color="C0", label=f"mean of {k}")
    ax.set(xlabel="iteration", ylabel=ylabel, title=title)
    ax.legend()


def grow_figure(
    path: Path,
    losses: Sequence[float],
    evals: Sequence[tuple[int, dict[str, float]]],
    frames: Sequence[np.ndarray],
    titles: Sequence[str],
    *,
    mode: str,
    grow_steps: int,
    recover_steps: int,
) -> Path:
    """``nca-grow``'s training figure: the loss per iteration, ``loss_grown`` /
    ``loss_damaged`` / ``loss_recovered`` at each evaluation, and ``frames`` (RGB,
    cropped by the caller) under ``titles``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(12, 6.5), constrained_layout=True)
    grid = fig.add_gridspec(2, len(frames), height_ratios=[1.3, 1])
    half = len(frames) // 2
    _loss_curve(fig.add_subplot(grid[0, :half]), losses, "L2 loss (RGBA)", f"training ({mode})")
    ax = fig.add_subplot(grid[0, half:])
    if evals:
        its = [i for i, _ in evals]
        for key, colour in (("loss_grown", "C2"), ("loss_damaged", "C3"), ("loss_recovered", "C1")):
            ax.semilogy(its, [e[key] for _, e in evals], "o-", color=colour, label=key)
        ax.legend()
    ax.set(
        xlabel="iteration",
        ylabel="loss",
        title=f"regeneration: grown at {grow_steps} steps, left half erased, +{recover_steps}",
    )
    for i, (frame, title) in enumerate(zip(frames, titles, strict=True)):
        ax = fig.add_subplot(grid[1, i])
        ax.imshow(frame, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_gif(path: Path, frames: Sequence[np.ndarray], scale: int = 1, duration: int = 40) -> Path:
    """Frames ``uint8 (H, W, 3)``, each pixel ``scale`` x ``scale``, as a looping GIF."""
    import imageio.v3 as iio

    big = [np.repeat(np.repeat(f, scale, 0), scale, 1) for f in frames]
    iio.imwrite(path, big, duration=duration, loop=0)
    return path


def votes_rgb(x, threshold: float = 0.1, classes: int = 10) -> np.ndarray:
    """One digit state ``(H, W, C)`` (tensor or array; channel 0 the ink, the last
    ``classes`` the logits) -> ``uint8 (H, W, 3)``: each live cell in its vote's
    colour, fainter where the ink is fainter, on white."""
    x = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    vote = x[..., -classes:].argmax(axis=-1)
    ink = np.clip(x[..., 0], 0.0, 1.0)
    alive = ink > threshold
    strength = np.where(alive, 0.3 + 0.7 * ink, 0.0)[..., None]
    rgb = 1.0 - strength * (1.0 - PALETTE[vote])
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def digits_figure(
    path: Path,
    losses: Sequence[float],
    evals: Sequence[tuple[int, dict[str, Any]]],
    digits: Sequence[tuple[np.ndarray, int, int]],
    swap: Sequence[tuple[int, np.ndarray, float]],
    *,
    eval_steps: int,
    swap_at: int,
) -> Path:
    """``nca-digits``'s training figure.

    Args:
        losses: training loss per iteration.
        evals: ``(iteration, {"accuracy", "agreement", "stability", "reagreement"})``.
        digits: ``(rgb, label, majority)`` of up to ten held-out digits after
            ``eval_steps`` steps (:func:`votes_rgb`).
        swap: ``(step, rgb, agreement)`` of one digit swapped after ``swap_at``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig = plt.figure(figsize=(13, 8), constrained_layout=True)
    grid = fig.add_gridspec(3, 10, height_ratios=[1.6, 1, 1])
    _loss_curve(fig.add_subplot(grid[0, :5]), losses, "L2 loss per live cell", "training loss")
    ax = fig.add_subplot(grid[0, 5:])
    if evals:
        its = [i for i, _ in evals]
        for key, colour in (
            ("accuracy", "C2"),
            ("agreement", "C0"),
            ("stability", "C1"),
            ("reagreement", "C3"),
        ):
            ax.plot(its, [e[key] for _, e in evals], "o-", ms=3, color=colour, label=key)
    ax.set(xlabel="iteration", ylim=(0, 1.02), title=f"held-out digits after {eval_steps} steps")
    ax.legend(loc="lower right")
    for i, (rgb, label, majority) in enumerate(digits[:10]):
        ax = fig.add_subplot(grid[1, i])
        ax.imshow(rgb, interpolation="nearest")
        colour = "green" if majority == label else "red"
        ax.set_title(f"{label} -> {majority}", fontsize=10, color=colour)
        ax.axis("off")
    for i, (t, rgb, agree) in enumerate(swap[:10]):
        ax = fig.add_subplot(grid[2, i])
        ax.imshow(rgb, interpolation="nearest")
        ax.set_title(f"step {t}\nagree {agree:.2f}", fontsize=9)
        ax.axis("off")
    fig.legend(
        handles=[Patch(color=PALETTE[k], label=str(k)) for k in range(len(PALETTE))],
        loc="lower center",
        ncol=len(PALETTE),
        title=f"vote colours; bottom row: digit swapped after step {swap_at}",
        bbox_to_anchor=(0.5, -0.08),
    )
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
