"""HalfCheetah, batched: ``N`` Gymnasium ``HalfCheetah-v5`` robots stepped together.

The physics the MaMuJoCo partitions ``HalfCheetah 2x3`` / ``6x1`` split into agents
(:mod:`colonylab.envs.mujoco.mamujoco`); not a registered world of its own.

=====================  ==================================================================
Model                  Gymnasium's ``half_cheetah.xml`` (read from the installed package):
                       planar root (``rootx``, ``rootz``, ``rooty``) and six hinges
                       (bthigh, bshin, bfoot, fthigh, fshin, ffoot); timestep 0.01 s
Physics                one ``MjData`` per robot, ``mj_step(nstep=5)`` then
                       ``mj_rnePostConstraint``, as Gymnasium's ``do_simulation``
Observation            ``float64[N, 17]``: ``qpos[1:]`` then ``qvel``
Actions                ``[N, 6]`` floats in ``[-1, 1]``
Reward                 ``x_velocity - 0.1 * sum(a^2)`` (float64 terms in ``info``)
Termination            never; truncation after ``max_episode_steps`` (1000)
Reset                  ``qpos0 + U(-0.1, 0.1)``, ``qvel0 + 0.1 N(0, 1)``; ``reset(seed=s)``
                       draws robot 0, 1, ... in turn from ``default_rng(s)`` (robot 0
                       starts as ``gym.make("HalfCheetah-v5").reset(seed=s)``)
=====================  ==================================================================
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["HalfCheetahBatch", "half_cheetah_xml_path"]


def half_cheetah_xml_path() -> Path:
    """Gymnasium's ``half_cheetah.xml`` in the installed package (not copied here)."""
    import gymnasium

    root = Path(gymnasium.__file__).resolve().parent
    path = root / "envs" / "mujoco" / "assets" / "half_cheetah.xml"
    if not path.is_file():
        raise FileNotFoundError(f"Gymnasium's HalfCheetah model is not at {path}")
    return path


class HalfCheetahBatch:
    """``num_envs`` HalfCheetah-v5 robots (NumPy in, NumPy out).

    Args:
        num_envs: robots (>= 1).
        max_episode_steps: truncation limit.
    """

    frame_skip = 5
    ctrl_cost_weight = 0.1
    reset_noise_scale = 0.1

    def __init__(self, num_envs: int = 1, max_episode_steps: int = 1000) -> None:
        import mujoco

        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        self._mj = mujoco
        self.model = mujoco.MjModel.from_xml_path(str(half_cheetah_xml_path()))
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self.datas = [mujoco.MjData(self.model) for _ in range(num_envs)]
        self.init_qpos = self.datas[0].qpos.copy()
        self.init_qvel = self.datas[0].qvel.copy()
        self.dt = float(self.model.opt.timestep) * self.frame_skip
        self.qpos = np.zeros((num_envs, self.model.nq))
        self.qvel = np.zeros((num_envs, self.model.nv))
        self.elapsed = np.zeros(num_envs, dtype=np.int64)
        self._rng = np.random.default_rng()

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start every robot (Gymnasium's reset noise); returns ``float64[N, 17]``."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        mj, model = self._mj, self.model
        nq, nv, s = model.nq, model.nv, self.reset_noise_scale
        for i, data in enumerate(self.datas):
            qpos = self.init_qpos + self._rng.uniform(low=-s, high=s, size=nq)
            qvel = self.init_qvel + s * self._rng.standard_normal(nv)
            mj.mj_resetData(model, data)
            data.qpos[:] = qpos
            data.qvel[:] = qvel
            mj.mj_forward(model, data)
            self.qpos[i], self.qvel[i] = data.qpos, data.qvel
        self.elapsed[:] = 0
        return self.observe()

    def observe(self) -> np.ndarray:
        return np.concatenate((self.qpos[:, 1:], self.qvel), axis=1)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Advance all robots; returns ``(obs, reward float64[N], truncated bool[N], info)``."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (self.num_envs, self.model.nu):
            raise ValueError(
                f"actions must have shape ({self.num_envs}, {self.model.nu}), got {action.shape}"
            )
        mj, model = self._mj, self.model
        x_before = self.qpos[:, 0].copy()
        for i, data in enumerate(self.datas):
            data.ctrl[:] = action[i]
            mj.mj_step(model, data, nstep=self.frame_skip)
            mj.mj_rnePostConstraint(model, data)
            self.qpos[i], self.qvel[i] = data.qpos, data.qvel
        x_velocity = (self.qpos[:, 0] - x_before) / self.dt
        ctrl = self.ctrl_cost_weight * np.square(action).sum(axis=1)
        reward = x_velocity - ctrl
        self.elapsed += 1
        truncated = self.elapsed >= self.max_episode_steps
        info = {"reward_forward": x_velocity, "reward_ctrl": -ctrl, "x_velocity": x_velocity}
        return self.observe(), reward, truncated, info
