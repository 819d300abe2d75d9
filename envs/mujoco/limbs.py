"""Limbs as agents: a PettingZoo ``ParallelEnv`` where every actuated limb of a modular
body is an agent.

=================  =================================================================
Agents             the body's limbs with a motor, named as the limbs (``thigh``,
                   ``left_foot`` ...), in depth-first order from the torso
Observation        the limb's row of the modular world's observation (``Box``
                   float32 ``[D]``: 15 numbers + the limb-type one-hot on walkers)
Action             ``Box(-1, 1, (1,))``: the limb's torque
Reward             the robot's reward (forward + 1 - 0.001 |a|^2), shared by all limbs
Termination        the robot's (fall), truncation after ``max_episode_steps``
=================  =================================================================

One robot of :class:`~colonylab.envs.mujoco.modular.ModularWorld` underneath;
``parallel_env(body="walker_5_main")``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from pettingzoo import ParallelEnv

from colonylab.envs.mujoco.modular import ModularConfig, ModularWorld

__all__ = ["LimbsParallelEnv", "parallel_env"]


class LimbsParallelEnv(ParallelEnv):
    """Every actuated limb of one ``body`` an agent (PettingZoo ``ParallelEnv``)."""

    metadata = {"name": "colonylab_limbs_v0", "render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(
        self,
        body: str = "walker_7_main",
        max_episode_steps: int = 1000,
        render_mode: str | None = None,
    ) -> None:
        import gymnasium

        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self.world = ModularWorld(
            ModularConfig(
                num_envs=1,
                bodies=(body,),
                autoreset=False,
                max_episode_steps=max_episode_steps,
                render_envs=1,
            )
        )
        group = self.world.groups[0]
        self.possible_agents = list(group.limb_names[1:])
        self.agents: list[str] = []
        dim = self.world.obs_dim
        self._obs_space = gymnasium.spaces.Box(-np.inf, np.inf, (dim,), np.float32)
        self._act_space = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)

    @functools.cache  # noqa: B019 - the same space for every limb
    def observation_space(self, agent: str) -> Any:
        return self._obs_space

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> Any:
        return self._act_space

    def _obs(self, obs: Any) -> dict[str, np.ndarray]:
        rows = obs[0].numpy().astype(np.float32)
        return {a: rows[i + 1] for i, a in enumerate(self.possible_agents) if a in self.agents}

    def reset(self, seed: int | None = None, options: dict | None = None):
        obs = self.world.reset(seed=seed)
        self.agents = list(self.possible_agents)
        return self._obs(obs), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]):
        torque = np.zeros((1, self.world.max_limbs))
        for i, agent in enumerate(self.possible_agents):
            if agent in self.agents:
                if agent not in actions:
                    raise ValueError(f"no action for limb {agent!r}")
                torque[0, i + 1] = float(np.asarray(actions[agent]).reshape(-1)[0])
        result = self.world.step(np.clip(torque, -1.0, 1.0))
        obs = self._obs(result.obs)
        reward = float(result.reward[0])
        term, trunc = bool(result.terminated[0]), bool(result.truncated[0])
        agents = list(self.agents)
        rewards = {a: reward for a in agents}
        terms = {a: term for a in agents}
        truncs = {a: trunc for a in agents}
        info = {k: float(v[0]) for k, v in result.info.items() if k.startswith("reward_")}
        infos = {a: dict(info) for a in agents}
        if term or trunc:
            self.agents = []
        return obs, rewards, terms, truncs, infos

    def render(self) -> np.ndarray | None:
        return self.world.render_rgb() if self.render_mode == "rgb_array" else None

    def state(self) -> np.ndarray:
        return self.world.observe()[0].numpy().reshape(-1)

    def close(self) -> None:
        self.world.close()


def parallel_env(body: str = "walker_7_main", **kwargs: Any) -> LimbsParallelEnv:
    """The limbs of ``body`` as agents (PettingZoo ``ParallelEnv``)."""
    return LimbsParallelEnv(body, **kwargs)
