"""Self-play: an opponent pool of past snapshots and scripted policies, sampled by win rate.

The learner trains against opponents drawn from a pool (AlphaStar's prioritised
fictitious self-play, PFSP): past snapshots of its own weights, added every so
often, and named scripted policies (``random``, ``greedy``, ...) passed in as
callables. Each draw is weighted by how often the learner *fails* to beat that
opponent, so the pool keeps serving the opponents that still teach something::

    pool = OpponentPool(weighting="hard", self_play=0.2, max_snapshots=20, seed=0)
    pool.add_scripted("random", random_policy)        # any callable: obs -> actions
    pool.add_scripted("greedy", greedy_policy)
    pool.add_snapshot("iter-0", policy.state_dict())  # a frozen copy of the weights
    for iteration in ...:
        opponent = pool.sample()                      # Opponent(name, kind, params | act)
        ...play battles against it (the task builds a network from opponent.params)...
        pool.record(opponent.name, wins=w, draws=d, games=g)
        if iteration % 10 == 0:
            pool.add_snapshot(f"iter-{iteration}", policy.state_dict())

Win-rate estimate of opponent ``o`` (the learner's score against it, a draw counting
half): ``p_o = (wins + draws / 2 + prior) / (games + 2 prior)`` (``prior`` = 1: an
unplayed opponent sits at 1/2). Weights (``f`` of AlphaStar's PFSP):

===============  ====================================  ================================
``weighting``    ``f(p)``                              serves
===============  ====================================  ================================
``hard``         ``(1 - p) ** exponent``               the opponents the learner loses to
``variance``     ``p (1 - p)``                         the evenly matched ones
``uniform``      ``1``                                 all alike (plain fictitious play)
===============  ====================================  ================================

With probability ``self_play`` the draw is the learner itself (name ``"self"``, kind
``"self"``: the task plays the current weights on both sides). Only ``max_snapshots``
snapshots are kept (the oldest goes first); scripted opponents stay. Draws come
from the pool's own ``numpy`` generator, so a seeded pool repeats its draws;
:meth:`OpponentPool.state_dict` (tensors, numbers, strings) goes into the trainer
entry of a checkpoint -- scripted callables are not saved: add them again by name
before :meth:`OpponentPool.load_state_dict`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor

from colonylab._checks import check_choice, check_float, check_int, check_probability

__all__ = ["SELF", "Opponent", "OpponentPool"]

SELF = "self"
"""The name (and kind) of a draw that is the learner's current weights."""


@dataclass(frozen=True)
class Opponent:
    """One draw from the pool."""

    name: str
    """The opponent's name in the pool (``"self"`` for the learner itself)."""
    kind: str
    """``"snapshot"``, ``"scripted"`` or ``"self"``."""
    params: dict[str, Tensor] | None = None
    """A snapshot's frozen weights (a ``state_dict``), else None."""
    act: Callable[..., Any] | None = None
    """A scripted opponent's callable, else None."""


class OpponentPool:
    """Past snapshots and scripted opponents with their records (see the module doc).

    Args:
        weighting: ``hard``, ``variance`` or ``uniform``.
        exponent: the ``hard`` weighting's exponent (AlphaStar: 2).
        self_play: probability that a draw is the learner itself.
        max_snapshots: snapshots kept (the oldest is dropped first).
        prior: pseudo-games at a score of 1/2 behind every estimate.
        seed: seed of the pool's generator.
    """

    def __init__(
        self,
        weighting: str = "hard",
        exponent: float = 2.0,
        self_play: float = 0.0,
        max_snapshots: int = 20,
        prior: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.weighting = check_choice("weighting", weighting, ("hard", "variance", "uniform"))
        self.exponent = check_float("exponent", exponent, 0.0, low_open=True)
        self.self_play = check_probability("self_play", self_play)
        self.max_snapshots = check_int("max_snapshots", max_snapshots, 1)
        self.prior = check_float("prior", prior, 0.0, low_open=True)
        self.rng = np.random.default_rng(check_int("seed", seed, 0))
        self._order: list[str] = []  # names in the order added
        self._kind: dict[str, str] = {}
        self._params: dict[str, dict[str, Tensor]] = {}
        self._act: dict[str, Callable[..., Any]] = {}
        self._record: dict[str, list[float]] = {}  # name -> [wins, draws, games]

    # -- members ---------------------------------------------------------------------------
    def _new_name(self, name: str) -> None:
        if not isinstance(name, str) or not name or name == SELF:
            raise ValueError(
                f"an opponent's name is a non-empty string other than 'self', got {name!r}"
            )
        if name in self._kind:
            raise ValueError(f"the pool already holds an opponent named {name!r}")

    def add_scripted(self, name: str, act: Callable[..., Any]) -> None:
        """Add a scripted opponent: ``act`` is whatever the task calls to get its actions."""
        self._new_name(name)
        if not callable(act):
            raise ValueError(f"scripted opponent {name!r} must be a callable, got {act!r}")
        self._order.append(name)
        self._kind[name] = "scripted"
        self._act[name] = act
        self._record[name] = [0.0, 0.0, 0.0]

    def add_snapshot(self, name: str, params: Mapping[str, Tensor]) -> None:
        """Add a frozen copy of ``params`` (a ``state_dict``); drops the oldest snapshot
        once more than ``max_snapshots`` are held."""
        self._new_name(name)
        frozen = {k: v.detach().cpu().clone() for k, v in params.items()}
        self._order.append(name)
        self._kind[name] = "snapshot"
        self._params[name] = frozen
        self._record[name] = [0.0, 0.0, 0.0]
        snapshots = self.snapshots()
        while len(snapshots) > self.max_snapshots:
            self.remove(snapshots.pop(0))

    def remove(self, name: str) -> None:
        """Drop an opponent and its record."""
        self._check_name(name)
        self._order.remove(name)
        del self._kind[name], self._record[name]
        self._params.pop(name, None)
        self._act.pop(name, None)

    def _check_name(self, name: str) -> None:
        if name not in self._kind:
            raise ValueError(
                f"no opponent named {name!r} in the pool; it holds {', '.join(self._order) or 'none'}"
            )

    def names(self) -> list[str]:
        """Every opponent's name, in the order added."""
        return list(self._order)

    def snapshots(self) -> list[str]:
        """The snapshots' names, oldest first."""
        return [n for n in self._order if self._kind[n] == "snapshot"]

    def __len__(self) -> int:
        return len(self._order)

    # -- records ---------------------------------------------------------------------------
    def record(
        self, name: str, wins: float = 0, draws: float = 0, games: float | None = None
    ) -> None:
        """Add results of the learner against ``name`` (``games`` default: wins + draws;
        losses are the rest). ``"self"`` games are not recorded."""
        if name == SELF:
            return
        self._check_name(name)
        games = wins + draws if games is None else games
        for label, value in (("wins", wins), ("draws", draws), ("games", games)):
            check_float(label, value, 0.0)
        if wins + draws > games:
            raise ValueError(f"wins + draws ({wins} + {draws}) exceed games ({games})")
        entry = self._record[name]
        entry[0] += float(wins)
        entry[1] += float(draws)
        entry[2] += float(games)

    def win_rate(self, name: str) -> float:
        """The learner's estimated score against ``name`` (the prior-smoothed rate)."""
        self._check_name(name)
        wins, draws, games = self._record[name]
        return (wins + draws / 2 + self.prior) / (games + 2 * self.prior)

    def table(self) -> list[dict[str, Any]]:
        """One row per opponent: ``name, kind, games, wins, draws, win_rate, weight``."""
        weights = self.weights()
        return [
            {
                "name": n,
                "kind": self._kind[n],
                "games": self._record[n][2],
                "wins": self._record[n][0],
                "draws": self._record[n][1],
                "win_rate": self.win_rate(n),
                "weight": float(weights[i]),
            }
            for i, n in enumerate(self._order)
        ]

    def weights(self) -> np.ndarray:
        """The normalised PFSP weights of the opponents, in :meth:`names` order."""
        if not self._order:
            return np.zeros(0)
        p = np.array([self.win_rate(n) for n in self._order])
        if self.weighting == "hard":
            f = (1.0 - p) ** self.exponent
        elif self.weighting == "variance":
            f = p * (1.0 - p)
        else:
            f = np.ones_like(p)
        total = f.sum()
        return f / total if total > 0 else np.full(len(p), 1.0 / len(p))

    # -- drawing ---------------------------------------------------------------------------
    def get(self, name: str) -> Opponent:
        """The opponent called ``name`` (``"self"``: the learner)."""
        if name == SELF:
            return Opponent(SELF, SELF)
        self._check_name(name)
        return Opponent(name, self._kind[name], self._params.get(name), self._act.get(name))

    def sample(self) -> Opponent:
        """Draw the next opponent (module doc); the learner itself when the pool is empty."""
        if not self._order or self.rng.random() < self.self_play:
            return self.get(SELF)
        i = int(self.rng.choice(len(self._order), p=self.weights()))
        return self.get(self._order[i])

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Snapshots, records, order and the generator (scripted callables by name only)."""
        return {
            "order": list(self._order),
            "kind": dict(self._kind),
            "params": {n: dict(p) for n, p in self._params.items()},
            "record": {n: list(r) for n, r in self._record.items()},
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`; every scripted opponent it names must have been
        added again (``add_scripted``) first.

        Raises:
            ValueError: a scripted opponent of the state is missing from this pool.
        """
        missing = [
            n for n in state["order"] if state["kind"][n] == "scripted" and n not in self._act
        ]
        if missing:
            raise ValueError(
                f"the pool state names scripted opponents {missing}; add_scripted them "
                "before load_state_dict"
            )
        acts = dict(self._act)
        self._order = list(state["order"])
        self._kind = dict(state["kind"])
        self._params = {n: {k: v.clone() for k, v in p.items()} for n, p in state["params"].items()}
        self._act = {n: acts[n] for n in self._order if self._kind[n] == "scripted"}
        self._record = {n: [float(x) for x in r] for n, r in state["record"].items()}
        self.rng.bit_generator.state = dict(state["rng"])
