"""Scripted battle policies: ``obs -> int32[N]`` callables over all agents at once.

==================  ==============================================================
Name                Behaviour
==================  ==============================================================
``random``          uniform over the 21 actions (seeded Generator)
``greedy``          attack the weakest adjacent enemy; else step towards the
                    nearest enemy in view (free cells only); else, when the obs
                    carry the minimap and the position features (``minimap=True,
                    extra_features=True``), head for the nearest minimap block
                    holding enemies; else a random move
``noop``            everyone waits
``A-vs-B``          red plays ``A``, blue plays ``B`` (e.g. ``greedy-vs-random``)
==================  ==============================================================

A policy is called as ``policy(obs)`` or ``policy(obs, mask)``; with a mask it
only has to be right where ``mask`` is True (per-team policies use that to share
one view array without copies). Policies read only the observations (a view array ``[N, S, S, C]``, or the
``{"view", "features"}`` dict), so they work with every obs dtype; the greedy
rule runs in a Numba kernel (``_kernels.greedy_actions``), no Python per agent.
Each policy owns a ``numpy`` Generator seeded at construction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from colonylab.envs.grid import _kernels as K

BASE_POLICIES = ("random", "greedy", "noop")
Policy = Callable[[Any], np.ndarray]


def _views(obs: Any) -> np.ndarray:
    """The view array of an observation (dict obs carry it under ``"view"``)."""
    view = obs["view"] if isinstance(obs, dict) else obs
    view = np.asarray(view)
    if view.ndim != 4:
        raise ValueError(f"grid policies take views of shape [N, S, S, C], got {view.shape}")
    return view


class RandomPolicy:
    """Uniformly random actions, for every grid world (the one random policy).

    Args:
        num_actions: actions ``0 .. num_actions - 1`` for every agent (battle, gather),
            or an int ``[N]`` array of each slot's own action count (pursuit:
            predators and prey have different action sets).
        seed: seed of the policy's Generator.
    """

    def __init__(self, num_actions: int | np.ndarray = K.N_ACTIONS, seed: int | None = None):
        self.high = num_actions if np.isscalar(num_actions) else np.asarray(num_actions, np.int64)
        self.rng = np.random.default_rng(seed)

    def __call__(self, obs: Any, mask: np.ndarray | None = None) -> np.ndarray:
        n = _views(obs).shape[0]
        if np.isscalar(self.high):
            return self.rng.integers(0, self.high, n, dtype=K.ACTION_DTYPE)
        if n != self.high.shape[0]:
            raise ValueError(f"a random policy of {self.high.shape[0]} agents got {n} views")
        return self.rng.integers(0, self.high, dtype=K.ACTION_DTYPE)


class NoopPolicy:
    """Everyone waits (action 0 is the no-op in every grid world)."""

    def __call__(self, obs: Any, mask: np.ndarray | None = None) -> np.ndarray:
        return np.zeros(_views(obs).shape[0], dtype=K.ACTION_DTYPE)


class GreedyPolicy:
    """Approach the nearest visible enemy, attack the weakest adjacent one.

    Args:
        seed: seed of the random moves of agents that see no enemy.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def __call__(self, obs: Any, mask: np.ndarray | None = None) -> np.ndarray:
        view = _views(obs)
        if view.dtype == np.float16:
            view = view.view(np.uint16)  # positive float16 bits order like the values
        n = view.shape[0]
        if mask is None:
            mask = np.ones(n, dtype=bool)
        fallback = self.rng.integers(K.FIRST_MOVE, K.FIRST_ATTACK, n, dtype=K.ACTION_DTYPE)
        goal_y = np.full(n, np.nan, dtype=np.float32)
        goal_x = np.full(n, np.nan, dtype=np.float32)
        if isinstance(obs, dict) and "features" in obs and view.shape[-1] == 7:
            # minimap + own position: head for the nearest enemies beyond the view
            pos_frac = np.ascontiguousarray(np.asarray(obs["features"])[:, -2:], np.float32)
            K.minimap_goals(view, pos_frac, goal_y, goal_x)
        out = np.zeros(n, dtype=K.ACTION_DTYPE)
        K.greedy_actions(view, mask, fallback, goal_y, goal_x, out)
        return out


class TeamPolicy:
    """One policy per team: agent ``i`` takes ``policies[team[i]]``'s action.

    Args:
        team: int8[N] team of each agent.
        policies: one policy per team.
    """

    _what = "a per-team policy"  # how the size error names this policy

    def __init__(self, team: np.ndarray, policies: tuple[Policy, ...]) -> None:
        self.team = np.asarray(team)
        self.policies = policies

    @staticmethod
    def _views(obs: Any) -> np.ndarray:
        """The checked view array of ``obs``."""
        return _views(obs)

    def __call__(self, obs: Any, mask: np.ndarray | None = None) -> np.ndarray:
        n = self._views(obs).shape[0]
        if n != self.team.shape[0]:
            raise ValueError(f"{self._what} of {self.team.shape[0]} agents got {n} views")
        out = np.zeros(n, dtype=K.ACTION_DTYPE)
        for t, policy in enumerate(self.policies):
            members = self.team == t
            if mask is not None:
                members &= mask
            # every policy sees all views (no copy) and acts where ``members`` is True
            np.copyto(out, policy(obs, members), where=members)
        return out


def _base(name: str, seed: int | None) -> Policy:
    if name == "random":
        return RandomPolicy(K.N_ACTIONS, seed)
    if name == "greedy":
        return GreedyPolicy(seed)
    if name == "noop":
        return NoopPolicy()
    raise ValueError(
        f"unknown battle policy {name!r}; known: {', '.join(BASE_POLICIES)}, or "
        "'<red>-vs-<blue>' such as 'greedy-vs-random'"
    )


def make_policy(name: str, team: np.ndarray, seed: int | None = None) -> Policy:
    """A policy by name: ``random``, ``greedy``, ``noop`` or ``"<red>-vs-<blue>"``.

    Args:
        name: the policy name.
        team: int8[N] team of each agent (used by ``A-vs-B``).
        seed: seeds the policy (each team's policy gets its own stream).
    """
    if "-vs-" in name:
        parts = name.split("-vs-")
        if len(parts) != 2:
            raise ValueError(
                f"policy {name!r}: expected '<red>-vs-<blue>', e.g. 'greedy-vs-random'"
            )
        seeds = np.random.SeedSequence(seed).spawn(2)
        return TeamPolicy(
            team,
            tuple(_base(p, int(s.generate_state(1)[0])) for p, s in zip(parts, seeds, strict=True)),
        )
    return _base(name, seed)
