"""CartPole swing-up as one scalar Gymnasium ``Env`` in plain NumPy and ``math``.

What a user would write for one cart (``gymnasium.make("colonylab/CartPoleSwingUp-v0")``):
the same equations, constants, reward, termination and seeding as the vectorized
:class:`~colonylab.envs.classic.swingup.SwingUpWorld` (a test checks that the two agree
step for step), but one cart, Python floats, no torch. It is the per-individual
baseline of ``colony bench sensory`` and the ``entry_point`` of the Gymnasium id;
``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")`` gives the
vectorized world instead (:class:`~colonylab.envs.wrappers.gymnasium.CartPoleSwingUpVecEnv`).

=====================  ==================================================================
Gymnasium id           ``colonylab/CartPoleSwingUp-v0``
Observation            ``Box(-inf, inf, (5,), float32)``: x, x_dot, cos theta, sin theta,
                       theta_dot (theta 0 upright, pi hanging down)
Action                 ``Box(-1, 1, (1,), float32)`` (a number or 0-d array is accepted
                       too); the force on the cart is ``force_mag * action - friction *
                       x_dot``
Reward                 ``(1 + cos theta) / 2 * cos(pi / 2 * x / x_threshold)``
Termination            ``|x| > 2.4``
Truncation             after ``max_episode_steps`` (1000) steps
Reset                  x, x_dot, theta_dot ~ N(0, init_std), theta ~ N(pi, init_std),
                       drawn from ``self.np_random`` (``reset(seed=s)`` starts where env
                       ``n`` of ``SwingUpWorld.reset(seed=[..., s, ...])`` starts)
=====================  ==================================================================

Example::

    env = CartPoleSwingUpEnv()
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(np.array([0.5], dtype=np.float32))
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from colonylab._checks import check_choice, check_float, check_int

__all__ = ["CartPoleSwingUpEnv"]


class SwingUpPhysics:
    """Ha's swing-up constants (estool cartpole_swingup) in CartPole's names: shared by
    this scalar env and :class:`~colonylab.envs.classic.swingup.SwingUpWorld`."""

    gravity = 9.82
    masscart = 0.5
    masspole = 0.5
    total_mass = masspole + masscart
    length = 0.6  # half the pole's length
    polemass_length = masspole * length
    force_mag = 10.0
    tau = 0.01
    x_threshold = 2.4


class CartPoleSwingUpEnv(SwingUpPhysics, gym.Env[np.ndarray, np.ndarray]):
    """One cart-pole swing-up episode at a time, in scalar NumPy.

    Args:
        render_mode: None or ``"rgb_array"`` (one 240 x 160 panel).
        max_episode_steps: Truncation limit (Ha's swing-up: 1000).
        friction: Viscous friction of the cart on the track (N s/m), >= 0.
        init_std: Standard deviation of the start around (0, 0, pi, 0), >= 0.
        validate_actions: Refuse actions outside ``[-1, 1]`` (and non-finite ones).

    Raises:
        ValueError: a bad argument, or (in ``step``) a bad action; the state is then
            unchanged.
    """

    metadata: dict[str, Any] = {
        "name": "colonylab/CartPoleSwingUp-v0",
        "render_modes": ["rgb_array"],
        "render_fps": 100,
    }

    def __init__(
        self,
        render_mode: str | None = None,
        max_episode_steps: int = 1000,
        friction: float = 0.1,
        init_std: float = 0.2,
        validate_actions: bool = True,
    ) -> None:
        if render_mode is not None:
            check_choice("render_mode", render_mode, self.metadata["render_modes"])
        self.render_mode = render_mode
        self.max_episode_steps = check_int("max_episode_steps", max_episode_steps, 1)
        self.friction = check_float("friction", friction, 0.0)
        self.init_std = check_float("init_std", init_std, 0.0)
        self.validate_actions = bool(validate_actions)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(5,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.state: tuple[float, float, float, float] | None = None
        """(x, x_dot, theta, theta_dot) as Python floats; None before the first reset."""
        self.elapsed = 0
        self.done = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode with the pole hanging down.

        Args:
            seed: Reseeds ``self.np_random`` (Gymnasium's rule).
            options: ``{"std": ...}`` overrides ``init_std`` for this reset.
        """
        super().reset(seed=seed)
        std = self.init_std
        if options and "std" in options:
            std = check_float("reset option std", options["std"], 0.0)
        noise = self.np_random.standard_normal(4)
        self.state = (
            0.0 + std * float(noise[0]),
            0.0 + std * float(noise[1]),
            math.pi + std * float(noise[2]),
            0.0 + std * float(noise[3]),
        )
        self.elapsed = 0
        self.done = False
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One explicit Euler step of 0.01 s under ``force_mag * action``."""
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        a = self._check_action(action)
        x, x_dot, theta, theta_dot = self.state
        force = self.force_mag * a - self.friction * x_dot
        costheta = math.cos(theta)
        sintheta = math.sin(theta)
        temp = (force + self.polemass_length * (theta_dot * theta_dot) * sintheta) / self.total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * (costheta * costheta) / self.total_mass)
        )
        xacc = temp - self.polemass_length * thetaacc * costheta / self.total_mass
        x = x + self.tau * x_dot
        x_dot = x_dot + self.tau * xacc
        theta = theta + self.tau * theta_dot
        theta_dot = theta_dot + self.tau * thetaacc
        self.state = (x, x_dot, theta, theta_dot)
        self.elapsed += 1
        upright = (1.0 + math.cos(theta)) / 2.0
        centred = math.cos(x * (math.pi / 2.0 / self.x_threshold))
        reward = float(np.float32(upright * centred))
        terminated = abs(x) > self.x_threshold
        truncated = self.elapsed >= self.max_episode_steps
        self.done = terminated or truncated
        return self._obs(), reward, terminated, truncated, {}

    def _check_action(self, action: Any) -> float:
        arr = np.asarray(action)
        if arr.dtype.kind not in "fiu" or arr.size != 1 or arr.ndim > 1:
            raise ValueError(
                f"a swing-up action is one float in [-1, 1] (shape (1,) or a number), got "
                f"{action!r}"
            )
        a = float(arr.reshape(()))
        if self.validate_actions and not (abs(a) <= 1.0):
            raise ValueError(f"action {a} is outside [-1, 1]; squash with tanh or clip(-1, 1)")
        return a

    def _obs(self) -> np.ndarray:
        x, x_dot, theta, theta_dot = self.state  # type: ignore[misc]
        return np.array((x, x_dot, math.cos(theta), math.sin(theta), theta_dot), dtype=np.float32)

    def render(self) -> np.ndarray | None:
        """``uint8[160, 240, 3]``: the track, the cart and the pole (``rgb_array``)."""
        if self.render_mode is None:
            gym.logger.warn(
                "render() without a render_mode; make the env with render_mode='rgb_array'"
            )
            return None
        from colonylab.envs.classic.cartpole import draw_cart_pole

        image = np.empty((160, 240, 3), dtype=np.uint8)
        state = self.state if self.state is not None else (0.0, 0.0, math.pi, 0.0)
        draw_cart_pole(image, np.asarray(state), self.done, self.x_threshold, self.length, 0.5)
        return image
