"""Emergence numbers of a live grid world, for the viewer overlay and run logs.

Worlds do not import ``emergence`` (the arrows point one way), and this module imports
no world either: it reads any object with a grid world's state arrays (``grid``,
``pos``, ``team``, ``alive``, ``attack_target``, optional ``team_names``).
:func:`grid_overlay` returns a short dict the viewer's stats panel shows
(``Viewer(metrics_fn=grid_overlay)``); :func:`grid_log_metrics` returns the full
``emergence/...`` scalars for ``metrics.jsonl``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from colonylab.emergence import grid as eg


def _team_names(world: Any) -> tuple[str, ...]:
    names = getattr(world, "team_names", None)
    if names:
        return tuple(names)
    n_teams = int(np.max(world.team)) + 1 if len(world.team) else 1
    return tuple(f"team{t}" for t in range(n_teams))


def grid_overlay(world: Any) -> dict[str, float | str]:
    """Clusters per team, front line and encirclement of the current step.

    Args:
        world: a grid world with ``grid`` int32[H, W], ``pos`` int32[N, 2],
            ``team`` int8[N], ``alive`` bool[N] and ``attack_target`` int32[N].

    Returns:
        ``{"<team> clusters": n, "<team> largest": n, "front line": n,
        "encircled": share or "-"}`` (8-connected clusters; encirclement over
        this step's targets, ``-`` when nobody attacked).
    """
    names = _team_names(world)
    out: dict[str, float | str] = {}
    for t, name in enumerate(names):
        stats = eg.clusters(world.grid, world.team, world.alive, t, connectivity=8)
        out[f"{name} clusters"] = stats.count
        out[f"{name} largest"] = stats.largest
    if len(names) >= 2:
        out["front line"] = eg.front_line_length(world.grid, world.team, world.alive)
    attack_target = getattr(world, "attack_target", None)
    if attack_target is not None:
        share = eg.encirclement_index(world.pos, attack_target)
        out["encircled"] = "-" if math.isnan(share) else round(share, 3)
    return out


def grid_log_metrics(world: Any, prefix: str = "emergence/") -> dict[str, float]:
    """The per-step ``emergence/`` scalars of a grid world (``emergence.grid.step_metrics``,
    8-connected clusters, encirclement over this step's attacks)."""
    return eg.step_metrics(
        world.grid,
        world.pos,
        world.team,
        world.alive,
        attack_target=getattr(world, "attack_target", None),
        n_teams=len(_team_names(world)),
        connectivity=8,
        prefix=prefix,
    )
