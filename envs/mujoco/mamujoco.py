"""MaMuJoCo partitions, batched: Ant and HalfCheetah split into agents, joint by joint.

The multi-agent MuJoCo of de Witt et al. (now ``gymnasium_robotics.mamujoco_v1``): one
robot, its joints shared out among agents; every agent sees its own joints, the joints
one edge away, and the torso, and all share the robot's reward. Observations, actions
and rewards here equal ``mamujoco_v1.parallel_env(scenario, agent_conf)``'s for the same
seed and actions (``tests/envs/test_mamujoco.py`` runs the real package beside these).

=================  =================================================================
Scenarios          ``Ant`` (``2x4``: front / back legs, ``2x4d``: diagonal pairs,
                   ``4x2``: a leg each) on :class:`~colonylab.envs.mujoco.ant.AntWorld`
                   (Gymnasium ``Ant-v5`` exactly); ``HalfCheetah`` (``2x3``: back / front
                   leg, ``6x1``: a joint each) on
                   :class:`~colonylab.envs.mujoco.half_cheetah.HalfCheetahBatch`
Agents             ``agent_0 .. agent_{n-1}``
Observation        per agent (``agent_obsk`` = 1): for its joints in label order their
                   ``qpos``, ``qvel`` (Ant: and ``clip(cfrc_ext, -1, 1)`` of each body of
                   the joint not yet listed), then for the joints one edge away their
                   ``qpos``; then the torso: Ant ``qpos[2:7]``, ``qvel[:6]``,
                   HalfCheetah ``qpos[1:3]``, ``qvel[0:3]`` (float64)
Action             per agent ``Box(-1, 1, (joints,))``, written to the robot's motors in
                   the partition's order
Reward             the robot's reward, the same for every agent (and its flags)
=================  =================================================================

:class:`PartitionedWorld` steps ``num_envs`` robots (per-agent arrays ``[N, d]``);
:func:`parallel_env` is the PettingZoo ``ParallelEnv`` of one robot.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from pettingzoo import ParallelEnv

__all__ = ["PARTITIONS", "MaMuJoCoParallelEnv", "PartitionedWorld", "parallel_env"]


@dataclass(frozen=True)
class Joint:
    """One actuated joint: qpos / qvel index (negative: from the end), motor index, and
    the bodies whose contact forces it reports."""

    label: str
    qpos: int
    qvel: int
    motor: int
    bodies: tuple[int, ...] = ()


def _ant() -> dict[str, Any]:
    # Ant-v5 bodies: 1 torso; legs (front left 2-4, front right 5-7, back 8-10,
    # right back 11-13). Motors in ant.xml order: hip4, ankle4, hip1, ankle1, ...
    j = {
        "hip1": Joint("hip1", -8, -8, 2, (1, 2)),
        "ankle1": Joint("ankle1", -7, -7, 3, (2, 3, 4)),
        "hip2": Joint("hip2", -6, -6, 4, (1, 5)),
        "ankle2": Joint("ankle2", -5, -5, 5, (5, 6, 7)),
        "hip3": Joint("hip3", -4, -4, 6, (1, 8)),
        "ankle3": Joint("ankle3", -3, -3, 7, (8, 9, 10)),
        "hip4": Joint("hip4", -2, -2, 0, (1, 11)),
        "ankle4": Joint("ankle4", -1, -1, 1, (11, 12, 13)),
    }
    edges = [
        ("ankle4", "hip4"),
        ("ankle1", "hip1"),
        ("ankle2", "hip2"),
        ("ankle3", "hip3"),
        ("hip4", "hip1", "hip2", "hip3"),  # the torso joins the four hips
    ]
    parts = {
        "2x4": [("hip1", "ankle1", "hip2", "ankle2"), ("hip3", "ankle3", "hip4", "ankle4")],
        "2x4d": [("hip1", "ankle1", "hip4", "ankle4"), ("hip2", "ankle2", "hip3", "ankle3")],
        "4x2": [("hip1", "ankle1"), ("hip2", "ankle2"), ("hip3", "ankle3"), ("hip4", "ankle4")],
    }
    return {
        "joints": j,
        "edges": edges,
        "parts": parts,
        "local": [("qpos", "qvel", "cfrc_ext"), ("qpos",)],
        "global_qpos": list(range(2, 7)),
        "global_qvel": list(range(0, 6)),
    }


def _half_cheetah() -> dict[str, Any]:
    names = ("bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot")
    j = {n: Joint(n, k - 6, k - 6, k) for k, n in enumerate(names)}
    edges = [
        ("bfoot", "bshin"),
        ("bshin", "bthigh"),
        ("bthigh", "fthigh"),
        ("fthigh", "fshin"),
        ("fshin", "ffoot"),
    ]
    parts = {"2x3": [names[:3], names[3:]], "6x1": [(n,) for n in names]}
    return {
        "joints": j,
        "edges": edges,
        "parts": parts,
        "local": [("qpos", "qvel"), ("qpos",)],
        "global_qpos": [1, 2],  # root z, root pitch (root x left out)
        "global_qvel": [0, 1, 2],
    }


SCENARIOS = {"Ant": _ant(), "HalfCheetah": _half_cheetah()}
PARTITIONS: dict[str, tuple[str, ...]] = {s: tuple(t["parts"]) for s, t in SCENARIOS.items()}
"""Scenario -> its agent configurations."""


def _rings(own: tuple[str, ...], edges: list[tuple[str, ...]], k: int) -> list[list[str]]:
    """Joints at graph distance 0, 1, .., k from an agent's joints (each ring sorted by
    label; an edge of several joints links all of them)."""
    seen = set(own)
    rings = [sorted(own)]
    frontier = set(own)
    for _ in range(k):
        nxt = set()
        for joint in frontier:
            for edge in edges:
                if joint in edge:
                    nxt.update(edge)
        nxt -= seen
        seen |= nxt
        rings.append(sorted(nxt))
        frontier = nxt
    return rings


def _gather_index(
    table: dict[str, Any], own: tuple[str, ...], k: int, nq: int, nv: int
) -> np.ndarray:
    """Indices into ``concat(qpos, qvel, clip(cfrc_ext).flat)`` of one agent's
    observation."""
    out: list[int] = []
    cats = table["local"]
    listed: set[int] = set()  # bodies whose forces are already in
    for depth, ring in enumerate(_rings(own, table["edges"], k)):
        for label in ring:
            joint = table["joints"][label]
            for cat in cats[min(depth, len(cats) - 1)]:
                if cat == "qpos":
                    out.append(joint.qpos % nq)
                elif cat == "qvel":
                    out.append(nq + joint.qvel % nv)
                else:
                    for b in joint.bodies:
                        if b not in listed:
                            out.extend(nq + nv + 6 * b + c for c in range(6))
                            listed.add(b)
    out += list(table["global_qpos"])
    out += [nq + i for i in table["global_qvel"]]
    return np.array(out, dtype=np.int64)


class PartitionedWorld:
    """``num_envs`` robots of a MaMuJoCo scenario, observed and driven per agent.

    Args:
        scenario: ``"Ant"`` or ``"HalfCheetah"``.
        agent_conf: one of :data:`PARTITIONS` ``[scenario]``.
        num_envs: robots stepped together.
        agent_obsk: how many edges away an agent sees joints' ``qpos`` (MaMuJoCo's
            default 1; 0: its own joints only).
        max_episode_steps: truncation limit (1000, as ``gym.make``).

    Raises:
        ValueError: an unknown scenario or configuration.
    """

    def __init__(
        self,
        scenario: str = "Ant",
        agent_conf: str = "2x4",
        num_envs: int = 1,
        agent_obsk: int = 1,
        max_episode_steps: int = 1000,
    ) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; choose one of {sorted(SCENARIOS)}")
        table = SCENARIOS[scenario]
        if agent_conf not in table["parts"]:
            raise ValueError(
                f"unknown agent_conf {agent_conf!r} for {scenario}; choose one of "
                f"{sorted(table['parts'])}"
            )
        if not isinstance(agent_obsk, int) or agent_obsk < 0:
            raise ValueError(f"agent_obsk must be an integer >= 0, got {agent_obsk!r}")
        self.scenario, self.agent_conf, self.num_envs = scenario, agent_conf, num_envs
        if scenario == "Ant":
            from colonylab.envs.mujoco.ant import AntConfig, AntWorld

            self.robot: Any = AntWorld(
                AntConfig(
                    num_envs=num_envs,
                    autoreset=False,
                    dtype="float64",
                    max_episode_steps=max_episode_steps,
                    validate_actions=False,
                )
            )
        else:
            from colonylab.envs.mujoco.half_cheetah import HalfCheetahBatch

            self.robot = HalfCheetahBatch(num_envs, max_episode_steps)
        model = self.robot.model
        self.nq, self.nv, self.nbody = model.nq, model.nv, model.nbody
        self.uses_forces = any("cfrc_ext" in c for c in table["local"])
        parts = table["parts"][agent_conf]
        self.num_agents = len(parts)
        self.motors = [np.array([table["joints"][n].motor for n in p]) for p in parts]
        """Per agent: the robot's motor of each of its actions."""
        self.index = [_gather_index(table, p, agent_obsk, self.nq, self.nv) for p in parts]
        """Per agent: where its observation comes from (see :func:`_gather_index`)."""
        self.num_motors = model.nu

    def _source(self) -> np.ndarray:
        src = [self.robot.qpos, self.robot.qvel]
        if self.uses_forces:
            forces = np.stack([d.cfrc_ext.reshape(-1) for d in self.robot.datas])
            src.append(np.clip(forces, -1.0, 1.0))
        return np.concatenate(src, axis=1)

    def observe(self) -> list[np.ndarray]:
        """Per agent ``float64[N, d_agent]``."""
        src = self._source()
        return [src[:, idx] for idx in self.index]

    def reset(self, seed: int | None = None) -> list[np.ndarray]:
        """Start every robot (``reset(seed=s)``: robot 0 as the peer's ``reset(seed=s)``)."""
        self.robot.reset(seed=seed)
        return self.observe()

    def step(
        self, actions: list[np.ndarray]
    ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Per-agent actions ``[N, joints]`` -> ``(obs, reward float64[N], terminated,
        truncated, info)``."""
        if len(actions) != self.num_agents:
            raise ValueError(f"need {self.num_agents} action arrays (one per agent)")
        full = np.zeros((self.num_envs, self.num_motors))
        for a, (motors, act) in enumerate(zip(self.motors, actions, strict=True)):
            act = np.asarray(act, dtype=np.float64).reshape(self.num_envs, -1)
            if act.shape[1] != motors.size:
                raise ValueError(
                    f"agent_{a} takes {motors.size} actions per robot, got {act.shape[1]}"
                )
            full[:, motors] = act
        if self.scenario == "Ant":
            result = self.robot.step(full)
            info = result.info
            reward = (info["reward_forward"] + info["reward_survive"]) - (
                -info["reward_ctrl"] + -info["reward_contact"]
            )
            terminated = result.terminated.numpy()
            truncated = result.truncated.numpy()
        else:
            _, reward, truncated, info = self.robot.step(full)
            terminated = np.zeros(self.num_envs, dtype=bool)
        return self.observe(), reward, terminated, truncated, info


class MaMuJoCoParallelEnv(ParallelEnv):
    """PettingZoo ``ParallelEnv`` of one partitioned robot (MaMuJoCo's API)."""

    metadata = {"name": "colonylab_mamujoco_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, scenario: str = "Ant", agent_conf: str = "2x4", agent_obsk: int = 1):
        import gymnasium

        self.world = PartitionedWorld(scenario, agent_conf, 1, agent_obsk)
        self.possible_agents = [f"agent_{a}" for a in range(self.world.num_agents)]
        self.agents: list[str] = []
        self.render_mode = None
        self._obs_spaces = {
            name: gymnasium.spaces.Box(-np.inf, np.inf, (idx.size,), np.float64)
            for name, idx in zip(self.possible_agents, self.world.index, strict=True)
        }
        self._act_spaces = {
            name: gymnasium.spaces.Box(-1.0, 1.0, (m.size,), np.float32)
            for name, m in zip(self.possible_agents, self.world.motors, strict=True)
        }

    @functools.cache  # noqa: B019 - spaces are fixed per env
    def observation_space(self, agent: str) -> Any:
        return self._obs_spaces[agent]

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> Any:
        return self._act_spaces[agent]

    @property
    def num_agents(self) -> int:
        return len(self.agents)

    @property
    def max_num_agents(self) -> int:
        return len(self.possible_agents)

    def _dict(self, obs: list[np.ndarray]) -> dict[str, np.ndarray]:
        return {a: o[0] for a, o in zip(self.possible_agents, obs, strict=True)}

    def reset(self, seed: int | None = None, options: dict | None = None):
        obs = self.world.reset(seed=seed)
        self.agents = list(self.possible_agents)
        return self._dict(obs), {a: {} for a in self.agents}

    def step(self, actions: dict[str, np.ndarray]):
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"actions missing for {missing}")
        acts = [np.asarray(actions[a])[None] for a in self.possible_agents]
        obs, reward, terminated, truncated, _ = self.world.step(acts)
        agents = self.agents
        rewards = {a: float(reward[0]) for a in agents}
        terms = {a: bool(terminated[0]) for a in agents}
        truncs = {a: bool(truncated[0]) for a in agents}
        infos: dict[str, dict] = {a: {} for a in agents}
        observations = {a: o for a, o in self._dict(obs).items() if a in agents}
        if terminated[0] or truncated[0]:
            self.agents = []
        return observations, rewards, terms, truncs, infos

    def state(self) -> np.ndarray:
        return self.world._source()[0]

    def render(self) -> None:
        return None

    def close(self) -> None:
        pass


def parallel_env(scenario: str = "Ant", agent_conf: str = "2x4", agent_obsk: int = 1):
    """The PettingZoo ``ParallelEnv`` of one ``scenario`` robot split as ``agent_conf``."""
    return MaMuJoCoParallelEnv(scenario, agent_conf, agent_obsk)
