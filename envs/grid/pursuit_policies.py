"""Scripted pursuit policies: ``obs -> int32[N]`` callables over all agent slots at once.

==================  ==============================================================
Name                Behaviour
==================  ==============================================================
``random``          each species uniform over its own actions (predators 0-16,
                    prey 0-8; seeded Generator)
``greedy``          predators attack an adjacent prey, preferring the one with the
                    most other predators around it; else step towards the nearest
                    prey in view (free cells only); else a random move. Prey play
                    ``flee`` (``greedy`` = ``greedy-vs-flee``)
``flee``            (prey only) move to the free neighbouring cell farthest from
                    the nearest visible predator (or stay if that is farthest);
                    with no predator in view a random move
``noop``            everyone waits
``A-vs-B``          predators play ``A`` (random, greedy, noop), prey play ``B``
                    (random, flee, noop), e.g. ``greedy-vs-flee``, ``greedy-vs-random``
==================  ==============================================================

A policy is called as ``policy(obs)`` or ``policy(obs, mask)``; with a mask it only
has to be right where ``mask`` is True. Every policy acts only for its own species
(slots of the other species get the no-op), so each returns valid actions for the
whole array. Policies read only the observations (a view array ``[N, S, S, C]``),
so they work with every obs dtype; ``greedy`` and ``flee`` run in Numba kernels
(``_kernels.pursuit_greedy`` / ``pursuit_flee``), no Python per agent. Each policy
owns a ``numpy`` Generator seeded at construction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from colonylab.envs.grid import _kernels as K
from colonylab.envs.grid.policies import NoopPolicy, RandomPolicy, TeamPolicy

PREDATOR_POLICIES = ("random", "greedy", "noop")
PREY_POLICIES = ("random", "flee", "noop")
POLICY_NAMES = (
    "random",
    "greedy",
    "noop",
    "greedy-vs-flee",
    "greedy-vs-random",
    "random-vs-flee",
    "greedy-vs-noop",
)
"""Names worth listing in a registry (any ``A-vs-B`` of the tables above works)."""
Policy = Callable[..., np.ndarray]


def _views(obs: Any) -> np.ndarray:
    """The view array of an observation, checked to be ``[N, S, S, C]``."""
    view = np.asarray(obs)
    if view.ndim != 4 or view.shape[-1] < K.PURSUIT_CHANNELS:
        raise ValueError(
            f"pursuit policies take views of shape [N, S, S, C >= {K.PURSUIT_CHANNELS}], "
            f"got {view.shape}"
        )
    return view


def _kernel_view(view: np.ndarray) -> np.ndarray:
    """float16 travels to the kernels as its bits (positive values order like them)."""
    return view.view(np.uint16) if view.dtype == np.float16 else view


class _SpeciesPolicy:
    """Base of the per-species policies: acts where ``team == species`` (and ``mask``);
    a subclass sets ``species`` and ``_kernel(view, act, fallback, out)``."""

    species: int = 0

    def __init__(self, team: np.ndarray, seed: int | None = None) -> None:
        self.team = np.asarray(team)
        self.own = self.team == self.species
        self.rng = np.random.default_rng(seed)

    def _mask(self, n: int, mask: np.ndarray | None) -> np.ndarray:
        if n != self.team.shape[0]:
            raise ValueError(f"a pursuit policy of {self.team.shape[0]} agents got {n} views")
        return self.own if mask is None else self.own & mask

    def __call__(self, obs: Any, mask: np.ndarray | None = None) -> np.ndarray:
        view = _views(obs)
        n = view.shape[0]
        act = self._mask(n, mask)
        fallback = self.rng.integers(K.FIRST_MOVE, K.FIRST_MOVE + 8, n, dtype=K.ACTION_DTYPE)
        out = np.zeros(n, dtype=K.ACTION_DTYPE)
        self._kernel(_kernel_view(view), act, fallback, out)
        return out


class GreedyPolicy(_SpeciesPolicy):
    """Predators hunt together: attack the adjacent prey with the most company, else
    approach the nearest visible prey, else move at random. Prey slots get the no-op.

    Args:
        team: int8[N] species of each slot.
        seed: seed of the random moves of predators that see no prey.
    """

    species = 0
    _kernel = staticmethod(K.pursuit_greedy)


class FleePolicy(_SpeciesPolicy):
    """Prey run: move to the free neighbour farthest from the nearest visible predator,
    else move at random. Predator slots get the no-op.

    Args:
        team: int8[N] species of each slot.
        seed: seed of the random moves of prey that see no predator.
    """

    species = 1
    _kernel = staticmethod(K.pursuit_flee)


class PairPolicy(TeamPolicy):
    """Predators play one policy, prey another: slot ``i`` takes ``policies[team[i]]``'s
    action (a :class:`~colonylab.envs.grid.policies.TeamPolicy` over species).

    Args:
        team: int8[N] species of each slot.
        policies: ``(predator policy, prey policy)``.
    """

    _what = "a pursuit policy"

    @staticmethod
    def _views(obs: Any) -> np.ndarray:
        return _views(obs)


def _random(team: np.ndarray, seed: int | None) -> RandomPolicy:
    """Each species uniform over its own action set (predators 0-16, prey 0-8)."""
    high = np.where(np.asarray(team) == 0, K.PURSUIT_PREDATOR_ACTIONS, K.PURSUIT_PREY_ACTIONS)
    return RandomPolicy(high, seed)


def _base(name: str, species: int, team: np.ndarray, seed: int | None) -> Policy:
    known = PREDATOR_POLICIES if species == 0 else PREY_POLICIES
    if name not in known:
        who = "predator" if species == 0 else "prey"
        raise ValueError(
            f"unknown {who} policy {name!r}; {who} policies: {', '.join(known)} (the name "
            "reads '<predators>-vs-<prey>', e.g. 'greedy-vs-flee')"
        )
    if name == "random":
        return _random(team, seed)
    if name == "noop":
        return NoopPolicy()
    if name == "greedy":
        return GreedyPolicy(team, seed)
    return FleePolicy(team, seed)


def make_policy(name: str, team: np.ndarray, seed: int | None = None) -> Policy:
    """A pursuit policy by name: ``random``, ``greedy``, ``noop`` or ``"<A>-vs-<B>"``.

    Args:
        name: the policy name (see the module docstring).
        team: int8[N] species of each slot (0 predator, 1 prey).
        seed: seeds the policy (each species' policy gets its own stream).

    Raises:
        ValueError: an unknown name, naming the policies each species accepts.
    """
    if name == "random":
        return _random(team, seed)
    if name == "noop":
        return NoopPolicy()
    if name == "greedy":
        name = "greedy-vs-flee"
    parts = name.split("-vs-")
    if len(parts) != 2:
        raise ValueError(
            f"unknown pursuit policy {name!r}; known: random, greedy, noop, or "
            f"'<predators>-vs-<prey>' with predators in {PREDATOR_POLICIES} and prey in "
            f"{PREY_POLICIES}, e.g. 'greedy-vs-flee'"
        )
    seeds = np.random.SeedSequence(seed).spawn(2)
    policies = tuple(
        _base(part, species, team, int(s.generate_state(1)[0]))
        for species, (part, s) in enumerate(zip(parts, seeds, strict=True))
    )
    return PairPolicy(team, policies)
