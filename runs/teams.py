"""Battle teams by name for MAgent2's ``battle_v4``: scripted armies and learned ones.

A **team** is named by a string:

==========================  ==================================================================
``random``                  uniform actions over the 21 (moves and attacks)
``greedy``                  the scripted greedy army (attack an enemy in reach, else the move
                            closest to the nearest enemy in view, else head for the enemy
                            army's centre): :func:`~colonylab.runs.experiments.battle_selfplay.
                            scripted`'s policy, for either side
``noop``                    every soldier stays
``battle-selfplay``         a learned army: a ``battle-selfplay`` checkpoint in
                            ``runs/checkpoints/<name>.pt`` (``battle-selfplay``,
                            ``battle-selfplay-prev``) ...
``path/to/file.pt``         ... or a checkpoint file (a run's ``checkpoints/latest.pt``)
==========================  ==================================================================

A learned army was trained as red (the army starting on the left). Playing red it
reads its own views; playing blue it reads each view mirrored left-right and its
actions are mirrored back (:data:`~colonylab.runs.experiments.battle_selfplay.MIRROR`),
so it plays blue as it learned to play red. It takes its policy's most likely legal
action (``argmax=False``: samples, as in training).

:func:`battle_world` builds the battle for ``colony watch battle_v4 --red X --blue Y``
and ``colony demo``: a world whose ``step()`` without actions plays both teams
(``world.default_policy``), on the map whose two armies come closest to ``agents``
soldiers at MAgent2's density
(:func:`~colonylab.runs.experiments.battle_selfplay.map_for`)::

    world = battle_world("battle-selfplay", "greedy", agents=4000, seed=0, max_cycles=1000)
    while world.step().info["done"] is False: ...
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from colonylab.envs.magent import battle_v4
from colonylab.envs.magent._env import greedy as greedy_actions
from colonylab.runs.experiments import battle_selfplay as bs

SCRIPTED = ("random", "greedy", "noop")
SIDES = ("red", "blue")
CHECKPOINTS = bs.CHECKPOINTS

Player = Callable[[battle_v4.BattleWorld, np.ndarray], np.ndarray]
"""``player(world, views [n, 13, 13, 5]) -> int64[n]``: one side's actions (every slot of
that side; the dead's are ignored)."""


def known_teams() -> list[str]:
    """The scripted teams and the ``battle-selfplay`` checkpoints shipped in
    ``runs/checkpoints``."""
    learned = sorted(p.stem for p in CHECKPOINTS.glob(f"{bs.NAME}*.pt"))
    return [*SCRIPTED, *learned]


def checkpoint_of(name: str) -> Path | None:
    """The checkpoint file a team name stands for (None: a scripted team).

    Raises:
        ValueError: not a scripted team, a shipped checkpoint or a ``.pt`` file; the
            message names the value and the choices.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a team must be a name, got {name!r}; known: {', '.join(known_teams())}")
    if name in SCRIPTED:
        return None
    shipped = CHECKPOINTS / f"{name}.pt"
    if "/" not in name and shipped.is_file():
        return shipped
    path = Path(name)
    if path.suffix == ".pt" and path.is_file():
        return path
    raise ValueError(
        f"unknown team {name!r}: choose one of {', '.join(known_teams())} or a "
        f"{bs.NAME} checkpoint file (.pt)"
    )


def scripted_actions(
    world: battle_v4.BattleWorld, side: int, kind: str, rng: np.random.Generator
) -> np.ndarray:
    """A scripted army's actions for side ``0`` (red) or ``1`` (blue), every slot of it
    (for blue the same as :func:`~colonylab.runs.experiments.battle_selfplay.scripted`)."""
    e = world.engine
    n = int(e.group_start[side + 1] - e.group_start[side])
    if kind == "random":
        return rng.integers(0, bs.N_ACTIONS, n)
    acts = np.full(n, bs.STAY, np.int64)
    if kind == "noop":
        return acts
    ids = e.group_ids(side)
    ids = ids[~e.dead[ids]]
    if ids.size:
        acts[ids - e.group_start[side]] = greedy_actions(e, side, ids, (1 - side,), rng)
    return acts


class Mirrored:
    """A network player for the blue side: it reads each view mirrored left-right and
    its actions are mirrored back (it learned to play red, who starts on the left)."""

    def __init__(self, player: Callable[[np.ndarray], np.ndarray]) -> None:
        self.player = player

    def __call__(self, view: np.ndarray) -> np.ndarray:
        if len(view) == 0:
            return np.zeros(0, np.int64)
        return bs.MIRROR[self.player(np.ascontiguousarray(view[:, :, ::-1]))]


def network_player(
    name: str, side: str, seed: int = 0, argmax: bool = True
) -> Callable[[np.ndarray], np.ndarray]:
    """The views-to-actions player of a learned team on ``side`` (mirrored for blue)."""
    path = checkpoint_of(name)
    if path is None:
        raise ValueError(f"team {name!r} is scripted, not a network")
    policy, ckpt = bs.load_policy(path)
    mask = bool((ckpt.get("config") or {}).get("mask_attacks", True))
    player = bs.NetworkPlayer(policy, seed, mask, deterministic=argmax)
    return Mirrored(player) if side == "blue" else player


def team(name: str, side: str, seed: int = 0, argmax: bool = True) -> Player:
    """The :data:`Player` of team ``name`` on ``side`` (``red`` or ``blue``).

    Raises:
        ValueError: an unknown team or side (one line naming it and the choices), or a
            checkpoint that is not a ``battle-selfplay`` one.
    """
    if side not in SIDES:
        raise ValueError(f"side must be one of {', '.join(SIDES)}, got {side!r}")
    g = SIDES.index(side)
    if checkpoint_of(name) is None:
        rng = np.random.default_rng([seed, g])

        def scripted(world: battle_v4.BattleWorld, view: np.ndarray) -> np.ndarray:
            return scripted_actions(world, g, name, rng)

        return scripted
    player = network_player(name, side, seed + g, argmax)

    def learned(world: battle_v4.BattleWorld, view: np.ndarray) -> np.ndarray:
        return player(view)

    return learned


def set_teams(
    world: battle_v4.BattleWorld, red: str, blue: str, seed: int = 0, argmax: bool = True
) -> battle_v4.BattleWorld:
    """Make ``world.step()`` (without actions) play ``red`` against ``blue``; returns it."""
    red_player = team(red, "red", seed, argmax)
    blue_player = team(blue, "blue", seed, argmax)

    def act(obs: dict[str, Any]) -> np.ndarray:
        return np.concatenate([red_player(world, obs["red"]), blue_player(world, obs["blue"])])

    world.default_policy = act
    world.metadata = {**world.metadata, "name": f"battle_v4: {red} (red) vs {blue} (blue)"}
    return world


def battle_world(
    red: str,
    blue: str,
    agents: int = 162,
    seed: int = 0,
    max_cycles: int = 1000,
    argmax: bool = True,
) -> battle_v4.BattleWorld:
    """A reset ``battle_v4`` world of about ``agents`` soldiers (MAgent2's density and
    layout, :func:`~colonylab.runs.experiments.battle_selfplay.map_for`) whose
    ``step()`` plays ``red`` against ``blue`` (module doc: the team names).

    Raises:
        ValueError: an unknown team (naming it and the known ones), ``agents < 8`` or
            ``max_cycles < 1``.
    """
    if isinstance(agents, bool) or not isinstance(agents, int) or agents < 8:
        raise ValueError(f"--agents must be an integer >= 8, got {agents!r}")
    if isinstance(max_cycles, bool) or not isinstance(max_cycles, int) or max_cycles < 1:
        raise ValueError(f"max_cycles must be an integer >= 1, got {max_cycles!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"--seed must be an integer >= 0, got {seed!r}")
    for name in (red, blue):
        checkpoint_of(name)  # unknown names fail before the world is built
    world = bs.make_world(bs.map_for(agents), max_cycles)
    set_teams(world, red, blue, seed, argmax)
    world.reset(seed=seed)
    return world
