"""Gymnasium adapters: every single-agent world as a ``gymnasium.Env`` and as a native
``gymnasium.vector.VectorEnv`` (registered under ``colonylab/`` by
:func:`colonylab.envs.registry.register_gymnasium` when ``colonylab`` is imported).

=================================  ======================  ================================
Gymnasium id                       ``entry_point``         ``vector_entry_point``
=================================  ======================  ================================
``colonylab/CartPole-v0``          :class:`CartPoleEnv`    :class:`CartPoleVecEnv`
``colonylab/CartPoleSwingUp-v0``   scalar NumPy            :class:`CartPoleSwingUpVecEnv`
                                   :class:`~colonylab.envs.classic.swingup_env.CartPoleSwingUpEnv`
``colonylab/PuzzlePong-v0``        :class:`PuzzlePongEnv`  :class:`PuzzlePongVecEnv`
``colonylab/Ant-v0``               :class:`AntEnv`         :class:`AntVecEnv`
=================================  ======================  ================================

The vector envs are our vectorized worlds themselves (one tensor step for all ``N``
envs, never a Python loop over envs), with Gymnasium's same-step autoreset
(``metadata["autoreset_mode"] = AutoresetMode.SAME_STEP``): an env whose episode ends
returns the first observation of its next episode, ``info["final_obs"]`` (an object
array, None where nothing ended) holds its last one and ``info["_final_obs"]`` marks
which. The single envs wrap a one-env world (the swing-up's is a genuine scalar NumPy
env). Keyword arguments of ``gymnasium.make`` / ``make_vec`` are fields of the world's
config (``gymnasium.make_vec("colonylab/PuzzlePong-v0", 8, points_to_win=5,
vectorization_mode="vector_entry_point")``).

Observations are NumPy arrays in the observation space's dtype (float32; float64 for
Ant, as Gymnasium's Ant-v5); the worlds keep Gymnasium's float64 state.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from colonylab.envs.base import check_render_mode
from colonylab.envs.registry import load_entry_point

__all__ = [
    "AntEnv",
    "AntVecEnv",
    "CartPoleEnv",
    "CartPoleSwingUpVecEnv",
    "CartPoleVecEnv",
    "PuzzlePongEnv",
    "PuzzlePongVecEnv",
    "WorldEnv",
    "WorldVectorEnv",
]


def _numpy(value: Any) -> np.ndarray:
    """A tensor or array as a NumPy array on the CPU (may share memory)."""
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


class _WorldAdapter:
    """What the single and the vector adapters share: which world, its spaces."""

    world_entry: str = ""
    """``"module:WorldClass"`` of the vectorized world."""
    config_entry: str = ""
    """``"module:ConfigClass"`` of its frozen config."""
    gym_id: str = ""
    """The Gymnasium id; a concrete env class gets ``metadata["name"]`` from it."""
    render_fps: int = 30
    """The world's frames per second (``metadata["render_fps"]``)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.gym_id and "metadata" not in cls.__dict__:
            cls.metadata = {**cls.metadata, "name": cls.gym_id, "render_fps": cls.render_fps}

    def _set_render_mode(self, render_mode: str | None) -> None:
        self.render_mode = check_render_mode(render_mode, self.metadata)

    def render(self) -> np.ndarray | None:
        """The world's picture (a vector env: its first ``render_envs`` envs, tiled)."""
        if self.render_mode is None:
            gym.logger.warn(
                "render() without a render_mode; make the env with render_mode='rgb_array'"
            )
            return None
        return self.world.render_rgb()

    def _close_world(self) -> None:
        if hasattr(self.world, "close"):
            self.world.close()

    def _build_world(self, num_envs: int, autoreset: bool, overrides: dict[str, Any]) -> Any:
        world_cls = load_entry_point(self.world_entry)
        config_cls = load_entry_point(self.config_entry)
        fixed = {"num_envs": num_envs, "autoreset": autoreset}
        clash = sorted(set(overrides) & set(fixed))
        if clash:
            raise ValueError(f"{self.gym_id}: {clash} are set by the adapter; leave them out")
        return world_cls(config_cls(**overrides, **fixed))

    def _spaces(self, world: Any) -> tuple[spaces.Space, spaces.Space]:
        """``(single_observation_space, single_action_space)`` of one env."""
        raise NotImplementedError


class WorldEnv(_WorldAdapter, gym.Env):
    """One env of a vectorized world as a ``gymnasium.Env`` (a world of ``num_envs=1``).

    ``reset(seed=s)`` starts where env ``n`` of the world reset with per-env seeds
    ``[..., s, ...]`` starts; ``reset()`` draws the next start seed from
    ``self.np_random``. Finished episodes stay finished until the next ``reset``.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, render_mode: str | None = None, **config: Any) -> None:
        self._set_render_mode(render_mode)
        self.world = self._build_world(1, False, config)
        self.observation_space, self.action_space = self._spaces(self.world)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        start = seed if seed is not None else int(self.np_random.integers(0, 2**32))
        obs = self.world.reset(seed=[start], options=options)
        return self._obs(obs), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        batched = np.asarray(_numpy(action))[None]
        obs, reward, terminated, truncated, info = self.world.step(batched)
        extra = {k: _numpy(v)[0].item() for k, v in info.items() if k != "final_obs"}
        return (
            self._obs(obs),
            float(_numpy(reward)[0]),
            bool(_numpy(terminated)[0]),
            bool(_numpy(truncated)[0]),
            extra,
        )

    def _obs(self, obs: Any) -> np.ndarray:
        return _numpy(obs)[0].astype(self.observation_space.dtype)  # a copy

    def close(self) -> None:
        self._close_world()


class WorldVectorEnv(_WorldAdapter, VectorEnv):
    """A vectorized world as a native ``gymnasium.vector.VectorEnv`` (same-step autoreset).

    Args:
        num_envs: Environments, all stepped in one world step.
        render_mode: None or ``"rgb_array"`` (the world's tiled picture).
        **config: Fields of the world's config (``num_envs`` and ``autoreset`` are set
            here).
    """

    metadata: dict[str, Any] = {
        "render_modes": ["rgb_array"],
        "render_fps": 30,
        "autoreset_mode": AutoresetMode.SAME_STEP,
    }

    def __init__(self, num_envs: int = 1, render_mode: str | None = None, **config: Any) -> None:
        self._set_render_mode(render_mode)
        self.world = self._build_world(num_envs, True, config)
        self.num_envs = num_envs
        self.single_observation_space, self.single_action_space = self._spaces(self.world)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """``seed``: None, one integer (one generator for all envs), or ``num_envs``
        integers (env ``n`` starts as the single env reset with ``seed[n]``)."""
        super().reset(seed=seed if isinstance(seed, int) or seed is None else None)
        obs = self.world.reset(seed=seed, options=options)
        return self._obs(obs), {}

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.world.step(np.asarray(_numpy(actions)))
        terminated, truncated = _numpy(terminated).copy(), _numpy(truncated).copy()
        infos: dict[str, Any] = {}
        ended = terminated | truncated
        if ended.any():
            last = self._obs(info["final_obs"])
            final = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(ended):
                final[i] = last[i]
            infos["final_obs"], infos["_final_obs"] = final, ended
        for key, value in info.items():
            if key != "final_obs":
                infos[key] = _numpy(value).copy()
                infos[f"_{key}"] = np.ones(self.num_envs, dtype=bool)
        return self._obs(obs), _numpy(reward).copy(), terminated, truncated, infos

    def _obs(self, obs: Any) -> np.ndarray:
        return _numpy(obs).astype(self.single_observation_space.dtype)  # a copy

    def close_extras(self, **kwargs: Any) -> None:
        self._close_world()


# -- the worlds -----------------------------------------------------------------------------------
class _CartPole:
    world_entry = "colonylab.envs.classic.cartpole:CartPoleWorld"
    config_entry = "colonylab.envs.classic.cartpole:CartPoleConfig"
    gym_id = "colonylab/CartPole-v0"
    render_fps = 50

    def _spaces(self, world: Any) -> tuple[spaces.Space, spaces.Space]:
        # Gymnasium's CartPole-v1 bounds: twice the termination thresholds
        high = np.array(
            [world.x_threshold * 2, np.inf, world.theta_threshold_radians * 2, np.inf],
            dtype=np.float32,
        )
        return spaces.Box(-high, high, dtype=np.float32), spaces.Discrete(2)


class _SwingUp:
    world_entry = "colonylab.envs.classic.swingup:SwingUpWorld"
    config_entry = "colonylab.envs.classic.swingup:SwingUpConfig"
    gym_id = "colonylab/CartPoleSwingUp-v0"
    render_fps = 100

    def _spaces(self, world: Any) -> tuple[spaces.Space, spaces.Space]:
        return (
            spaces.Box(-np.inf, np.inf, shape=(5,), dtype=np.float32),
            spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32),
        )


class _PuzzlePong:
    world_entry = "colonylab.envs.classic.pong:PuzzlePongWorld"
    config_entry = "colonylab.envs.classic.pong:PuzzlePongConfig"
    gym_id = "colonylab/PuzzlePong-v0"
    render_fps = 30

    def _spaces(self, world: Any) -> tuple[spaces.Space, spaces.Space]:
        return (
            spaces.Box(0.0, 1.0, shape=world.obs_shape, dtype=np.float32),
            spaces.Discrete(world.num_actions),
        )


class _Ant:
    world_entry = "colonylab.envs.mujoco.ant:AntWorld"
    config_entry = "colonylab.envs.mujoco.ant:AntConfig"
    gym_id = "colonylab/Ant-v0"
    render_fps = 20

    def _spaces(self, world: Any) -> tuple[spaces.Space, spaces.Space]:
        return (
            spaces.Box(-np.inf, np.inf, shape=(world.obs_dim,), dtype=np.float64),
            spaces.Box(-1.0, 1.0, shape=(world.action_dim,), dtype=np.float32),
        )


class CartPoleEnv(_CartPole, WorldEnv):
    """``gymnasium.make("colonylab/CartPole-v0")``: one cart of :class:`CartPoleWorld`."""


class CartPoleVecEnv(_CartPole, WorldVectorEnv):
    """``make_vec("colonylab/CartPole-v0", N, vectorization_mode="vector_entry_point")``."""


class CartPoleSwingUpVecEnv(_SwingUp, WorldVectorEnv):
    """``make_vec("colonylab/CartPoleSwingUp-v0", N, vectorization_mode="vector_entry_point")``."""


class PuzzlePongEnv(_PuzzlePong, WorldEnv):
    """``gymnasium.make("colonylab/PuzzlePong-v0")``: one game of :class:`PuzzlePongWorld`."""


class PuzzlePongVecEnv(_PuzzlePong, WorldVectorEnv):
    """``make_vec("colonylab/PuzzlePong-v0", N, vectorization_mode="vector_entry_point")``."""


class AntEnv(_Ant, WorldEnv):
    """``gymnasium.make("colonylab/Ant-v0")``: one robot of :class:`AntWorld` (needs mujoco)."""


class AntVecEnv(_Ant, WorldVectorEnv):
    """``make_vec("colonylab/Ant-v0", N, vectorization_mode="vector_entry_point")``."""
