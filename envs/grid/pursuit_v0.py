"""Pursuit as a PettingZoo ``ParallelEnv``: ``colonylab.envs.grid.pursuit_v0``.

A thin adapter over :class:`colonylab.envs.grid.pursuit.PursuitWorld`; the rules,
observation channels, rewards and population dynamics are in that module's card.

=====================  ===========================================================
Import                 ``from colonylab.envs.grid import pursuit_v0``
Parallel API           ``pursuit_v0.parallel_env(render_mode=None, **config)``
AEC API                ``pursuit_v0.env(...)`` (``parallel_to_aec`` of the above)
Agents                 ``predator_0 ..``, ``prey_0 ..`` (40 and 81 by default); an
                       agent leaves ``agents`` in the step it dies. With births on,
                       each newborn joins ``agents`` under a new name (``prey_81``,
                       ``prey_82``, ... in order of birth; names are never reused)
Possible agents        every name that can appear before ``max_cycles``: the initial
                       agents plus, for a species that breeds, ``max_cycles *
                       (capacity // 2)`` names (a step has at most ``capacity // 2``
                       births: each needs a living parent and a free slot). A
                       sequence that makes the names on demand (``AgentNames``;
                       over a million with ``CYCLE_PRESET``), with a parsing
                       ``agent_name_mapping``
Observation space      ``Box(0, 1, (11, 11, 4), float32)`` per species (``uint8``:
                       ``0..255``; ``minimap=True``: 6 channels)
Action space           predators ``Discrete(17)``: 0 no-op, 1-8 move, 9-16 attack;
                       prey ``Discrete(9)``: 0 no-op, 1-8 move
State                  ``state()``: ``float32[H, W, 4]`` (wall, predator presence,
                       prey presence, predator energy / max), ``state_space`` its Box
Config                 every ``PursuitConfig`` field as a keyword: ``map_size``,
                       ``predators``, ``prey``, ``agents``, ``min_attackers``,
                       ``prey_birth``, ``predator_starvation``, ``max_cycles``, ...
Render                 ``rgb_array``: the map, each cell ``k x k`` pixels (``k`` so
                       the picture is about 400 px or more); ``human``: the Colony
                       Lab viewer (headless without a display)
=====================  ===========================================================

``step(actions)`` takes a dict ``{agent: int}`` for agents in ``agents`` (agents
left out take the no-op); an action for a dead, unborn or unknown agent, or a value
that is not an integer in the agent's action range, raises ``ValueError`` naming
the agent, and the world is not stepped. Each step's dicts hold the agents that
were in ``agents`` before it (those that died with ``terminations`` True) and the
newborns (reward 0), except in the truncating step, whose newborns are never
reported. Observations are fresh arrays.

Example::

    env = pursuit_v0.parallel_env(map_size=45)
    obs, infos = env.reset(seed=0)
    while env.agents:
        actions = {a: env.action_space(a).sample() for a in env.agents}
        obs, rewards, terminations, truncations, infos = env.step(actions)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

import gymnasium
import numpy as np
from gymnasium import spaces
from pettingzoo.utils.conversions import parallel_to_aec

from colonylab.envs.grid import _kernels as K
from colonylab.envs.grid._parallel_env import (
    GridEnvBase,
    action_values,
    check_actions_mapping,
)
from colonylab.envs.grid.pursuit import N_ACTIONS, SPECIES, PursuitConfig, PursuitWorld

_ACTION_HELP = ("0 no-op, 1-8 move, 9-16 attack", "0 no-op, 1-8 move")


class AgentNames(Sequence[str]):
    """``possible_agents`` without a string per name: ``predator_0 .. predator_{P-1}``, then
    ``prey_0 .. prey_{Q-1}`` (with births on, P and Q reach the millions).

    Indexing, slicing (a list), ``len``, iteration, ``in`` and ``index`` work as on the
    list they stand for; ``index`` and ``in`` parse the name (O(1)).

    Args:
        lives: names per species, ``(P, Q)``.
    """

    def __init__(self, lives: tuple[int, int]) -> None:
        self.lives = (int(lives[0]), int(lives[1]))

    def __len__(self) -> int:
        return self.lives[0] + self.lives[1]

    @overload
    def __getitem__(self, k: int) -> str: ...

    @overload
    def __getitem__(self, k: slice) -> list[str]: ...

    def __getitem__(self, k: int | slice) -> str | list[str]:
        if isinstance(k, slice):
            return [self._name(i) for i in range(*k.indices(len(self)))]
        i = int(k)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"agent index {k} out of range for {len(self)} possible agents")
        return self._name(i)

    def _name(self, i: int) -> str:
        if i < self.lives[0]:
            return f"{SPECIES[0]}_{i}"
        return f"{SPECIES[1]}_{i - self.lives[0]}"

    def __iter__(self) -> Iterator[str]:
        return (self._name(i) for i in range(len(self)))

    def __contains__(self, name: object) -> bool:
        return self.find(name) >= 0

    def index(self, name: Any, start: int = 0, stop: int | None = None) -> int:
        """Position of ``name`` (ValueError if it is not a possible agent)."""
        i = self.find(name)
        if i < 0 or i < start or (stop is not None and i >= stop):
            raise ValueError(f"{name!r} is not in possible_agents")
        return i

    def find(self, name: object) -> int:
        """Position of ``name``, or -1 if it is not a possible agent."""
        if not isinstance(name, str):
            return -1
        species, _, number = name.rpartition("_")
        if species not in SPECIES or not number.isdigit() or str(int(number)) != number:
            return -1
        t = SPECIES.index(species)
        k = int(number)
        if k >= self.lives[t]:
            return -1
        return k + (self.lives[0] if t == 1 else 0)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AgentNames):
            return self.lives == other.lives
        if isinstance(other, (list, tuple)):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # compares like a list

    def __repr__(self) -> str:
        return f"AgentNames(predator_0..predator_{self.lives[0] - 1}, prey_0..prey_{self.lives[1] - 1})"


class AgentIndex(Mapping[str, int]):
    """``agent_name_mapping``: name -> position in ``possible_agents`` (parsed, O(1))."""

    def __init__(self, names: AgentNames) -> None:
        self.names = names

    def __getitem__(self, name: str) -> int:
        i = self.names.find(name)
        if i < 0:
            raise KeyError(name)
        return i

    def __contains__(self, name: object) -> bool:
        return self.names.find(name) >= 0

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


class PursuitParallelEnv(GridEnvBase):
    """PettingZoo ``ParallelEnv`` of the pursuit (see the module docstring).

    Args:
        render_mode: None, ``"rgb_array"`` or ``"human"``.
        **config: ``PursuitConfig`` fields.
    """

    metadata = {**GridEnvBase.metadata, "name": "colonylab/Pursuit-v0"}

    def __init__(self, render_mode: str | None = None, **config: Any) -> None:
        self._set_render_mode(render_mode)
        self.world = world = PursuitWorld(PursuitConfig(**config))
        cfg = world.config
        self.max_cycles = cfg.max_cycles
        breeds = (cfg.predator_birth > 0, cfg.prey_birth > 0)
        initial = (world.n_predators, world.n_prey)
        slots = (world.predator_slots, world.prey_slots)
        self._lives = np.array(
            [initial[t] + (cfg.max_cycles * (slots[t] // 2) if breeds[t] else 0) for t in range(2)],
            dtype=np.int64,
        )
        self.possible_agents = AgentNames((self._lives[0], self._lives[1]))
        self.agent_name_mapping = AgentIndex(self.possible_agents)
        self._name_offset = np.array([0, self._lives[0]], dtype=np.int64)
        self._action_high = np.array(N_ACTIONS, dtype=np.int64)
        self._name_slot = np.full(len(self.possible_agents), -1, dtype=np.int64)  # living only
        self._slot_name = np.full(world.n_agents, -1, dtype=np.int64)
        self._next_life = np.zeros(2, dtype=np.int64)
        high = 255 if world.obs_dtype == np.uint8 else 1.0
        # one space object per species, shared by its agents
        self._obs_spaces = [
            spaces.Box(0, high, world.view_shape, dtype=world.obs_dtype) for _ in SPECIES
        ]
        self._action_spaces = [spaces.Discrete(n) for n in N_ACTIONS]
        self.state_space = spaces.Box(
            0.0, 1.0, (*world.map_shape, K.PURSUIT_CHANNELS), dtype=np.float32
        )
        self.agents: list[str] = []
        self._live = np.empty(0, dtype=np.int64)  # world slot of each entry of agents

    # -- spaces -------------------------------------------------------------------------------
    def _index(self, agent: str) -> int:
        try:
            return self.agent_name_mapping[agent]
        except (KeyError, TypeError):
            raise ValueError(
                f"unknown agent {agent!r}; agents are named predator_0..predator_"
                f"{self._lives[0] - 1} and prey_0..prey_{self._lives[1] - 1}"
            ) from None

    def observation_space(self, agent: str) -> gymnasium.Space:
        """The (cached, per-species) observation space of ``agent``."""
        return self._obs_spaces[int(self._index(agent) >= self._lives[0])]

    def action_space(self, agent: str) -> gymnasium.Space:
        """The (cached, per-species) action space of ``agent``: Discrete(17) or (9)."""
        return self._action_spaces[int(self._index(agent) >= self._lives[0])]

    # -- episode ----------------------------------------------------------------------------------
    def reset(
        self, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, Any], dict[str, dict]]:
        """Start a pursuit; returns ``(observations, infos)`` for every agent."""
        world = self.world
        world.reset(seed=seed)
        self._name_slot[:] = -1
        self._slot_name[:] = -1
        self._next_life[:] = 0
        self._live = self._name(np.flatnonzero(world.alive))
        self.agents = [self.possible_agents[int(k)] for k in self._slot_name[self._live]]
        if self._viewer is not None:
            self._viewer.refresh()
        obs = dict(zip(self.agents, world.observe()[self._live], strict=True))
        return obs, {agent: {} for agent in self.agents}

    def _name(self, slots: np.ndarray) -> np.ndarray:
        """Give the agents in ``slots`` (new lives, increasing slot order) the next names."""
        team = self.world.team[slots]
        for t in range(2):
            new = slots[team == t]
            if not new.size:
                continue
            first = self._next_life[t]
            if first + new.size > self._lives[t]:
                raise RuntimeError(
                    f"more {SPECIES[t]} lives than the {self._lives[t]} names possible_agents "
                    f"holds; max_cycles was raised to {self.max_cycles} after construction "
                    f"(from {self.world.config.max_cycles}): pass max_cycles to parallel_env"
                )
            names = self._name_offset[t] + first + np.arange(new.size)
            self._slot_name[new] = names
            self._name_slot[names] = new
            self._next_life[t] += new.size
        return slots

    def step(
        self, actions: Mapping[str, Any]
    ) -> tuple[dict, dict[str, float], dict[str, bool], dict[str, bool], dict[str, dict]]:
        """Step every agent at once; see the module docstring for what is refused."""
        world = self.world
        acts = self._actions_array(actions)
        result = world.step(acts, observe=False)
        live = self._live
        done = world.step_count >= self.max_cycles
        # a child born in the truncating step never joins ``agents``, so it is not reported
        newborn = self._name(np.flatnonzero(world.born)) if not done else live[:0]
        index = np.concatenate([live, newborn])
        names = self.agents + [self.possible_agents[int(k)] for k in self._slot_name[newborn]]
        obs = dict(zip(names, world.observe()[index], strict=True))
        rewards = dict(zip(names, result.reward[index].tolist(), strict=True))
        dead = world.killed[index]
        terminations = dict(zip(names, dead.tolist(), strict=True))
        truncations = dict.fromkeys(names, done)
        infos = {agent: {} for agent in names}
        gone = index[dead]
        self._name_slot[self._slot_name[gone]] = -1
        self._slot_name[gone] = -1
        if done:
            self._name_slot[self._slot_name[index[~dead]]] = -1
            self.agents = []
            self._live = index[:0]
        else:
            keep = ~dead
            self.agents = [a for a, k in zip(names, keep.tolist(), strict=True) if k]
            self._live = index[keep]
        if self.render_mode == "human":
            self.render()
        return obs, rewards, terminations, truncations, infos

    def _actions_array(self, actions: Mapping[str, Any]) -> np.ndarray:
        """The dict as an int32[N] array (no-op for absent agents), or ValueError naming
        the first bad agent; nothing is changed before it is all checked."""
        check_actions_mapping(actions)
        out = np.zeros(self.world.n_agents, dtype=K.ACTION_DTYPE)
        if not actions:
            return out
        names = list(actions)
        # the usual case: one action per live agent, in order
        index = self._slot_name[self._live] if names == self.agents else self._positions(names)
        team = (index >= self._lives[0]).astype(np.int64)
        slots = self._name_slot[index]
        gone = slots < 0
        if gone.any():
            k = int(np.argmax(gone))
            if not self.agents and self.world.step_count > 0:
                why = "is done (the episode ended; reset())"
            elif index[k] - self._name_offset[team[k]] >= self._next_life[team[k]]:
                why = "is not born yet"
            else:
                why = "is dead"
            raise ValueError(
                f"agent {names[k]!r} {why} and not in env.agents; it takes no action "
                "(leave it out of the actions dict)"
            )
        out[slots] = action_values(
            list(actions.values()),
            self._action_high[team],
            lambda k, value: self._bad_action(names[k], team[k], value),
        )
        return out

    def _bad_action(self, name: str, team: int, value: Any) -> str:
        t = int(team)
        return (
            f"action of agent {name!r} = {value!r} is not a {SPECIES[t]} action; expected an "
            f"integer in [0, {N_ACTIONS[t]}): {_ACTION_HELP[t]}"
        )


def parallel_env(render_mode: str | None = None, **config: Any) -> PursuitParallelEnv:
    """The pursuit as a PettingZoo ``ParallelEnv`` (keywords: ``PursuitConfig`` fields)."""
    return PursuitParallelEnv(render_mode=render_mode, **config)


def env(render_mode: str | None = None, **config: Any):
    """The pursuit as a PettingZoo AEC env (``parallel_to_aec`` of ``parallel_env``)."""
    return parallel_to_aec(parallel_env(render_mode=render_mode, **config))


raw_env = PursuitParallelEnv
