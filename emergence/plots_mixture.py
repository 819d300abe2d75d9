"""Figures of a mixture of experts on a 2-D input plane (``jacobs1991``): arrays in, PNGs out.

Nothing here runs a model: the experiment evaluates its models on
:func:`plane_grid`'s points and hands over the arrays:

* ``regions``: a dict with ``x1, x2`` (the meshgrid, ``float[n, n]``), ``classes``
  (``int[n, n]``, the predicted class), and for a mixture ``gate`` (``int[n, n]``,
  the expert the gate picks), ``experts`` (``int[n*n, E]``, each expert's class)
  and ``num_experts``; ``title`` names the system;
* ``curves``: a list of dicts with ``label``, ``epochs`` (``int[K]``) and
  ``loss``, ``train``, ``test`` (``float[T, K]``: trials x samples);
* responsibilities: ``float[C, E]`` (see :mod:`colonylab.emergence.specialization`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from colonylab.emergence.specialization import mean_ci

__all__ = [
    "mixture_figures",
    "plane_grid",
    "plot_curves",
    "plot_regions",
    "plot_responsibilities",
]

_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red")
_MARKERS = ("o", "s", "^", "D")


def plane_grid(points: np.ndarray, n: int = 220) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x1, x2, flat)``: an ``n x n`` meshgrid over the range of ``points (N, 2)`` (a
    margin added) and its points flattened, ``float[n*n, 2]``."""
    lo = points.min(0) * 0.9
    hi = points.max(0) * 1.05
    x1, x2 = np.meshgrid(np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n))
    return x1, x2, np.stack([x1.ravel(), x2.ravel()], 1)


def plot_regions(
    ax,
    regions: dict[str, Any],
    points: np.ndarray,
    labels: np.ndarray,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    class_labels: tuple[str, ...],
    axis_labels: tuple[str, str] = ("F1 (Hz)", "F2 (Hz)"),
) -> None:
    """Shaded class regions, for a mixture the gate's regions (black) and each expert's
    class lines where the gate picks it (dashed); tokens on top (filled: train)."""
    import matplotlib.colors as mcolors

    x1, x2, classes = regions["x1"], regions["x2"], regions["classes"]
    gate, experts = regions.get("gate"), regions.get("experts")
    cmap = mcolors.ListedColormap([mcolors.to_rgba(c, 0.14) for c in _COLOURS])
    ax.pcolormesh(x1, x2, classes, cmap=cmap, vmin=-0.5, vmax=3.5, shading="auto")
    if gate is not None:
        num_experts = regions["num_experts"]
        expert_colours = [f"C{4 + i % 6}" for i in range(num_experts)]
        ax.contour(x1, x2, gate, levels=np.arange(num_experts) + 0.5, colors="k", linewidths=2.2)
        for i in np.unique(gate):
            # expert i's class boundaries, drawn only where the gate picks expert i
            decision = np.where(gate == i, experts[:, i].reshape(x1.shape), np.nan)
            ax.contour(
                x1,
                x2,
                np.ma.masked_invalid(decision),
                levels=[0.5, 1.5, 2.5],
                colors=[expert_colours[i]],
                linewidths=1.2,
                linestyles="--",
            )
            centre = np.argwhere(gate == i).mean(0).astype(int)
            ax.text(
                x1[centre[0], centre[1]],
                x2[centre[0], centre[1]],
                f"E{i}",
                fontsize=10,
                weight="bold",
                color=expert_colours[i],
                ha="center",
                va="center",
                bbox={"boxstyle": "round", "fc": "white", "alpha": 0.7, "lw": 0},
            )
    for k in range(len(class_labels)):
        for idx, filled in ((train_idx, True), (test_idx, False)):
            sel = idx[labels[idx] == k]
            ax.scatter(
                points[sel, 0],
                points[sel, 1],
                s=12,
                marker=_MARKERS[k % len(_MARKERS)],
                facecolors=_COLOURS[k % len(_COLOURS)] if filled else "none",
                edgecolors=_COLOURS[k % len(_COLOURS)],
                lw=0.7,
                label=f"{class_labels[k]} {'train' if filled else 'test'}",
            )
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    extra = " — gate regions (black), experts' class lines (dashed)" if gate is not None else ""
    ax.set_title(f"{regions['title']}: classes (shaded){extra}", fontsize=9)


def plot_curves(ax_loss, ax_acc, curves: list[dict[str, Any]], criterion: float) -> None:
    """Mean training/test accuracy and training loss over trials, 95% CI bands."""
    for i, c in enumerate(curves):
        colour = f"C{i}"
        for ax, values, style in (
            (ax_acc, c["train"], "-"),
            (ax_acc, c["test"], ":"),
            (ax_loss, c["loss"], "-"),
        ):
            mean = values.mean(0)
            half = np.array([mean_ci(v)[1] for v in values.T]) if values.shape[0] > 1 else 0 * mean
            half = np.nan_to_num(half)
            ax.plot(
                c["epochs"],
                mean,
                style,
                color=colour,
                lw=1.3,
                label=c["label"] if style == "-" else None,
            )
            if style == "-":
                ax.fill_between(c["epochs"], mean - half, mean + half, color=colour, alpha=0.2)
    for ax in (ax_acc, ax_loss):
        ax.set_xscale("symlog", linthresh=10)
    ax_acc.axhline(criterion, color="0.4", lw=0.8, ls="--")
    ax_acc.set_ylim(0.4, 1.0)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (train —, test ···)")
    ax_acc.set_title("accuracy, mean ± 95% CI over trials", fontsize=9)
    ax_acc.legend(fontsize=7, loc="lower right")
    ax_acc.grid(alpha=0.3)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss (own objective)")
    ax_loss.set_title("training loss, mean ± 95% CI", fontsize=9)
    ax_loss.grid(alpha=0.3)


def plot_responsibilities(ax, table: np.ndarray, title: str, row_labels: list[str]):
    """A ``float[C, E]`` heat map of mean responsibilities, values written in."""
    image = ax.imshow(table, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_yticks(range(len(row_labels)), row_labels)
    ax.set_xticks(range(table.shape[1]), [f"E{i}" for i in range(table.shape[1])])
    for (row, col), value in np.ndenumerate(table):
        colour = "white" if value < 0.6 else "black"
        ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=8, color=colour)
    ax.set_xlabel("expert")
    ax.set_title(f"{title}: mean responsibility h per class", fontsize=9)
    return image


def mixture_figures(
    media: Path,
    *,
    regions: dict[str, Any],
    side_regions: dict[str, Any] | None,
    curves: list[dict[str, Any]],
    responsibilities: np.ndarray | None,
    criterion: float,
    points: np.ndarray,
    labels: np.ndarray,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    class_labels: tuple[str, ...],
    row_labels: list[str],
    title: str,
) -> Path:
    """Write ``decision_regions.png``, ``curves.png``, ``responsibilities.png`` (when
    given) and the combined ``jacobs1991.png`` into ``media``; returns the combined one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tokens = (points, labels, train_idx, test_idx, class_labels)
    fig, ax = plt.subplots(figsize=(7.5, 6.2), layout="constrained")
    plot_regions(ax, regions, *tokens)
    ax.legend(fontsize=7, ncol=2, loc="upper right")
    fig.savefig(media / "decision_regions.png", dpi=120)
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
    plot_curves(axes[0], axes[1], curves, criterion)
    fig.savefig(media / "curves.png", dpi=120)
    plt.close(fig)
    resp = responsibilities
    if resp is not None:
        fig, ax = plt.subplots(figsize=(1.2 + 0.8 * resp.shape[1], 3.2), layout="constrained")
        fig.colorbar(plot_responsibilities(ax, resp, regions["title"], row_labels), ax=ax)
        fig.savefig(media / "responsibilities.png", dpi=120)
        plt.close(fig)
    fig = plt.figure(figsize=(17, 10), layout="constrained")
    grid = fig.add_gridspec(2, 3, height_ratios=[1.25, 1])
    ax = fig.add_subplot(grid[0, 0:2])
    plot_regions(ax, regions, *tokens)
    ax.legend(fontsize=7, ncol=2, loc="upper right")
    ax = fig.add_subplot(grid[0, 2])
    if side_regions is not None:
        plot_regions(ax, side_regions, *tokens)
    elif resp is not None:
        plot_responsibilities(ax, resp, regions["title"], row_labels)
    plot_curves(fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1]), curves, criterion)
    ax = fig.add_subplot(grid[1, 2])
    if resp is not None:
        image = plot_responsibilities(ax, resp, regions["title"], row_labels)
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle(title)
    path = media / "jacobs1991.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
