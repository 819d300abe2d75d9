"""Scripted gather policies: ``obs -> int32[N]`` callables over all agents at once.

==================  ==============================================================
Name                Behaviour
==================  ==============================================================
``random``          uniform over the 21 actions (seeded Generator)
``forage``          stay and eat while the own cell is the best food in view
                    (score ``food / (1 + distance)``); else step towards the best
                    free food cell in view (free cells only); no food in view: a
                    random move. Never attacks
``greedy``          ``forage``, but first attack the weakest adjacent agent weaker
                    than itself, or any adjacent agent when hungry (own HP below
                    half and no food on its cell)
``noop``            everyone waits
==================  ==============================================================

A policy is called as ``policy(obs)`` or ``policy(obs, mask)``; with a mask it only
has to be right where ``mask`` is True. Policies read only the observations (a view
array ``[N, S, S, C]`` with the gather channels, or the ``{"view", "features"}``
dict), so they work with every obs dtype; the forage and greedy rules run in one
Numba kernel (``_kernels.forage_actions``), no Python per agent. Each policy owns a
``numpy`` Generator seeded at construction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from colonylab.envs.grid import _kernels as K
from colonylab.envs.grid.policies import NoopPolicy, RandomPolicy

GATHER_POLICIES = ("random", "forage", "greedy", "noop")
HUNGRY = 0.5  # greedy agents below this HP fraction attack any neighbour
Policy = Callable[..., np.ndarray]


def _views(obs: Any) -> np.ndarray:
    """The view array of an observation (dict obs carry it under ``"view"``)."""
    view = obs["view"] if isinstance(obs, dict) else obs
    view = np.asarray(view)
    if view.ndim != 4 or view.shape[-1] < 5:
        raise ValueError(f"gather policies take views of shape [N, S, S, C >= 5], got {view.shape}")
    return view


class ForagePolicy:
    """Go to the best visible food and eat; with ``attack``, also hit weaker neighbours.

    Args:
        seed: seed of the random moves of agents that see no food.
        attack: the ``greedy`` rule (attack the weakest adjacent agent weaker than
            itself, or any when hungry) before foraging.
        hungry: own HP fraction below which a greedy agent attacks any neighbour.
    """

    def __init__(self, seed: int | None = None, attack: bool = False, hungry: float = HUNGRY):
        self.rng = np.random.default_rng(seed)
        self.attack = bool(attack)
        self.hungry = float(hungry)

    def __call__(self, obs: Any, mask: np.ndarray | None = None) -> np.ndarray:
        view = _views(obs)
        if view.dtype == np.uint8:
            scale = 1.0 / 255.0
        else:
            scale = 1.0
            if view.dtype != np.float32:  # float16 and others: compare real values
                view = view.astype(np.float32)
        n = view.shape[0]
        if mask is None:
            mask = np.ones(n, dtype=bool)
        fallback = self.rng.integers(K.FIRST_MOVE, K.FIRST_ATTACK, n, dtype=K.ACTION_DTYPE)
        out = np.zeros(n, dtype=K.ACTION_DTYPE)
        K.forage_actions(view, mask, fallback, scale, self.attack, self.hungry, out)
        return out


def make_policy(name: str, seed: int | None = None) -> Policy:
    """A gather policy by name: ``random``, ``forage``, ``greedy`` or ``noop``.

    Args:
        name: the policy name.
        seed: seeds the policy's random choices.
    """
    if name == "random":
        return RandomPolicy(K.N_ACTIONS, seed)
    if name == "forage":
        return ForagePolicy(seed)
    if name == "greedy":
        return ForagePolicy(seed, attack=True)
    if name == "noop":
        return NoopPolicy()
    raise ValueError(f"unknown gather policy {name!r}; known: {', '.join(GATHER_POLICIES)}")
