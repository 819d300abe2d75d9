"""CartPole swing-up, natively vectorized in torch: the pole starts hanging down.

The swing-up task of Tang & Ha (2021) ("The Sensory Neuron as a Transformer"), after
Ha's ``cartpole_swingup`` in estool, on :class:`~colonylab.envs.classic.CartPoleWorld`'s
machinery (seeding, freezing / autoreset, subsets, rendering).

=====================  ==================================================================
World id               ``colonylab/CartPoleSwingUp-v0`` (alias ``cartpole-swingup``; class
                       :class:`SwingUpWorld`, config :class:`SwingUpConfig`)
Dynamics               CartPole's equations (explicit Euler, the pole a uniform rod of
                       half-length ``length``) with a continuous force and optional
                       viscous cart friction: the force on the cart is
                       ``force_mag * action - friction * x_dot``. Constants as in Ha's
                       swing-up: gravity 9.82, cart mass 0.5, pole mass 0.5, half-length
                       0.6, ``force_mag`` 10, ``tau`` 0.01 s, friction 0.1
State                  ``[N, 4]`` (x, x_dot, theta, theta_dot); theta 0 is upright, pi
                       hanging down; theta is not wrapped
Observation            ``[N, 5]`` (x, x_dot, cos theta, sin theta, theta_dot), float64 by
                       default (float32 on request)
Actions                floats in ``[-1, 1]``, shape ``[N]`` or ``[N, 1]``
Reward                 ``(1 + cos theta) / 2 * cos(pi / 2 * x / x_threshold)`` per step
                       of a running episode (float32 ``[N]``): 1 upright at the centre,
                       0 hanging down or at the track edge (slightly negative past it,
                       on the terminating step, as in estool); 0 for a frozen episode
Termination            ``|x| > 2.4`` (the track's end); the pole may turn freely
Truncation             after ``max_episode_steps`` (1000) steps
Reset                  x, x_dot, theta_dot ~ N(0, 0.2), theta ~ N(pi, 0.2)
=====================  ==================================================================

Seeds: ``reset(seed=s)`` draws all ``N`` starts from one ``np.random.default_rng(s)``
(``normal(size=(4, N))``); ``reset(seed=seeds)`` with ``N`` integers gives env ``n``
its own generator ``default_rng(seeds[n])``, so an episode does not depend on its
batch. ``autoreset`` and freezing work as in :class:`CartPoleWorld`.

With ``friction=0`` and the same constants the step is :class:`CartPoleWorld`'s step with
``force = force_mag * action`` (a test checks this). Without friction the continuous
system conserves the energy
``E = M x_dot^2 / 2 + m l x_dot theta_dot cos(theta) + 2/3 m l^2 theta_dot^2 + m g l cos(theta)``;
explicit Euler lets it creep up slowly, friction drains it.

Example::

    env = SwingUpWorld(SwingUpConfig(num_envs=1024, autoreset=False))
    obs = env.reset(seed=0)                        # float64[1024, 5]
    obs, reward, terminated, truncated, info = env.step(torch.tanh(out))   # float[1024]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from colonylab._checks import check_float
from colonylab.envs.base import (
    StepResult,
    WorldFactory,
    check_vector_config,
    make_factory,
)
from colonylab.envs.classic.cartpole import CartPoleWorld
from colonylab.envs.classic.swingup_env import SwingUpPhysics

__all__ = ["SwingUpConfig", "SwingUpWorld"]


@dataclass(frozen=True)
class SwingUpConfig:
    """Configuration of the ``cartpole-swingup`` world (``colony rollout cartpole-swingup``).

    Defaults are the viewer's (16 carts, autoreset); population evaluators build
    worlds through :meth:`SwingUpWorld.factory` (finished episodes freeze).
    """

    num_envs: int = 16
    """Carts stepped together."""
    max_episode_steps: int = 1000
    """Truncation limit (Ha's swing-up: 1000 steps of 0.01 s)."""
    autoreset: bool = True
    """Start a new episode as soon as one ends (False: finished carts freeze)."""
    friction: float = 0.1
    """Viscous friction of the cart on the track (N s/m), >= 0; 0 gives CartPole's
    frictionless equations."""
    init_std: float = 0.2
    """Standard deviation of the initial state around (0, 0, pi, 0)."""
    dtype: Literal["float64", "float32"] = "float64"
    """State precision (``torch.float32`` is accepted too)."""
    device: str = "cpu"
    """Torch device of the state (cpu, cuda, cuda:N)."""
    seed: int | None = None
    """Seed of the world's generator (``reset()`` without a seed and autoreset draws use
    it); None: fresh entropy."""
    validate_actions: bool = True
    """Check that actions are finite and within [-1, 1] (one reduction per step). Shape
    and dtype are always checked."""
    render_envs: int = 16
    """Carts drawn by the viewer, as a grid of panels."""

    def __post_init__(self) -> None:
        check_vector_config(self)
        check_float("friction", self.friction, 0.0)
        check_float("init_std", self.init_std, 0.0)


class SwingUpWorld(SwingUpPhysics, CartPoleWorld):
    """``config.num_envs`` cart-pole swing-up environments stepped together as tensors.

    Args:
        config: A :class:`SwingUpConfig` (default: its defaults): ``num_envs``,
            ``device``, ``dtype``, ``seed``, ``max_episode_steps``, ``autoreset`` (as
            :class:`CartPoleWorld`), ``validate_actions``, ``render_envs``,
            ``friction``, ``init_std``.

    Raises:
        ValueError: (from the config) a bad size, dtype, a negative ``friction`` /
            ``init_std``.
    """

    metadata: dict[str, Any] = {
        "name": "colonylab/CartPoleSwingUp-v0",
        "render_fps": 100,
        "render_modes": ["rgb_array"],
    }
    policies: tuple[str, ...] = ("random", "noop")
    """Scripted policies of :meth:`policy` (``noop``: no force)."""

    # the physics constants come from SwingUpPhysics (shared with the scalar env)
    theta_threshold_radians = math.inf  # the pole may turn freely
    num_actions = 1
    obs_dim = 5
    render_track_height = 0.5  # the pole hangs below the track too

    def __init__(self, config: SwingUpConfig | None = None) -> None:
        config = config if config is not None else SwingUpConfig()
        super().__init__(config)  # type: ignore[arg-type]
        self.friction = float(config.friction)
        self.init_std = float(config.init_std)
        self._mean = np.array([0.0, 0.0, math.pi, 0.0])

    @classmethod
    def factory(cls, config: SwingUpConfig | None = None, **overrides: Any) -> WorldFactory:  # type: ignore[override]
        """``factory(num_envs=N, device=d) -> world`` for population evaluators: the
        ``config`` (default: finished episodes freeze, ``autoreset=False``) with
        ``overrides``, e.g. ``SwingUpWorld.factory(dtype="float32", validate_actions=False)``."""
        return make_factory(cls, SwingUpConfig, config, **overrides)

    # -- reset ----------------------------------------------------------------------------------
    def reset(
        self,
        seed: int | Sequence[int] | np.ndarray | Tensor | None = None,
        options: dict[str, float] | None = None,
    ) -> Tensor:
        """Start every env's episode with the pole hanging down.

        Args:
            seed: None (the world's generator), an integer (one generator for all), or
                ``N`` integers >= 0 (one generator per env).
            options: ``{"std": ...}`` overrides ``init_std`` for this reset.

        Returns:
            ``[N, 5]`` observation in :attr:`dtype` on :attr:`device`.
        """
        if options and "std" in options:
            self.init_std = check_float("reset option std", options["std"], 0.0)
        init = np.concatenate(self._seeded_draws(seed, self._draw))
        self._set(torch.as_tensor(np.ascontiguousarray(init), dtype=torch.float64))
        return self.observe(self.state)

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``[n, 4]`` initial states around (0, 0, pi, 0)."""
        return self._mean + self.init_std * rng.standard_normal(size=(4, n)).T

    def set_state(self, state: Tensor | np.ndarray | Sequence[Sequence[float]]) -> Tensor:
        """Start episodes from the given ``[N, 4]`` state; returns the ``[N, 5]`` observation."""
        super().set_state(state)
        return self.observe(self.state)

    def subset(self, index: Tensor | np.ndarray | Sequence[int]) -> SwingUpWorld:
        """A new world of the envs ``index`` (see :meth:`CartPoleWorld.subset`)."""
        world = super().subset(index)
        world.init_std = self.init_std  # a reset option may have changed it
        return world  # type: ignore[return-value]

    @staticmethod
    def observe(state: Tensor) -> Tensor:
        """``[N, 4]`` state -> ``[N, 5]`` observation (x, x_dot, cos theta, sin theta, theta_dot)."""
        x, x_dot, theta, theta_dot = state.unbind(1)
        return torch.stack((x, x_dot, torch.cos(theta), torch.sin(theta), theta_dot), dim=1)

    def reward(self, state: Tensor) -> Tensor:
        """Upright-and-centred reward ``[N]`` (float32) of ``[N, 4]`` states."""
        upright = (1.0 + torch.cos(state[:, 2])) / 2.0
        centred = torch.cos(state[:, 0] * (math.pi / 2.0 / self.x_threshold))
        return (upright * centred).to(torch.float32)

    def energy(self, state: Tensor) -> Tensor:
        """Mechanical energy ``[N]`` of ``[N, 4]`` states (conserved without force and
        friction by the continuous dynamics; 0 potential at the pivot's height)."""
        _, x_dot, theta, theta_dot = state.unbind(1)
        m, ml = self.masspole, self.polemass_length
        return (
            0.5 * self.total_mass * x_dot.square()
            + ml * x_dot * theta_dot * torch.cos(theta)
            + (2.0 / 3.0) * ml * self.length * theta_dot.square()
            + m * self.gravity * self.length * torch.cos(theta)
        )

    # -- step -----------------------------------------------------------------------------------
    def step(self, actions: Tensor | np.ndarray | Sequence[float] | None = None) -> StepResult:
        """Advance every running env one step.

        Args:
            actions: ``[N]`` or ``[N, 1]`` floats in ``[-1, 1]`` (the force is
                ``force_mag * action``); None: the :attr:`default_policy`'s actions.

        Returns:
            ``StepResult(obs [N, 5], reward float32[N], terminated bool[N],
            truncated bool[N], info)``; with ``autoreset`` ``info["final_obs"]`` is the
            ``[N, 5]`` observation before any reset.

        Raises:
            ValueError: actions of the wrong shape, dtype or value (naming the first bad
                env); the world is left unchanged.
            RuntimeError: before the first ``reset``.
        """
        if not self._ready:
            raise RuntimeError("call reset(seed) before step()")
        if actions is None:
            if self.default_policy is None:
                raise ValueError(
                    "step() got no actions and the world has no default_policy; pass "
                    f"{self.num_envs} actions in [-1, 1] or set default_policy"
                )
            actions = self.default_policy(self.observe(self.state))
        force = self.force_mag * self._check_actions(actions)
        new = self._dynamics(self.state, force)
        terminated = new[:, 0].abs() > self.x_threshold
        elapsed = self.elapsed + 1
        truncated = elapsed >= self.max_episode_steps
        reward = self.reward(new)
        info: dict[str, Any] = {}
        if self.autoreset:
            ended = terminated | truncated
            info["final_obs"] = self.observe(new)
            n_ended = int(ended.sum())
            if n_ended:
                fresh = torch.as_tensor(np.ascontiguousarray(self._draw(self._rng, n_ended)))
                new = new.clone()
                new[ended] = fresh.to(device=self.device, dtype=self.dtype)
                self._record_lengths(elapsed[ended])
                elapsed = torch.where(ended, 0, elapsed)
            self.state, self.elapsed = new, elapsed
        else:
            active = ~self.done
            terminated &= active
            truncated &= active
            reward = torch.where(active, reward, 0.0)
            self.state = torch.where(active[:, None], new, self.state)
            self.elapsed = torch.where(active, elapsed, self.elapsed)
            ended = terminated | truncated
            self.done = self.done | ended
            if self.device.type == "cpu" and bool(ended.any()):
                self._record_lengths(self.elapsed[ended])
        self.step_count += 1
        return StepResult(self.observe(self.state), reward, terminated, truncated, info)

    def _dynamics(self, state: Tensor, force: Tensor) -> Tensor:  # type: ignore[override]
        """One explicit Euler step of CartPole's equations with the force ``[N]`` and
        viscous cart friction (``force - friction * x_dot`` acts on the cart)."""
        return self._euler(state, force - self.friction * state[:, 1])

    def _check_actions(self, actions: Any) -> Tensor:
        """``actions`` as a float ``[N]`` tensor in the world's dtype on its device, or a
        ``ValueError`` naming what is wrong."""
        if isinstance(actions, Tensor):
            t = actions.detach()
        else:
            arr = np.asarray(actions)
            if arr.dtype.kind != "f":
                raise ValueError(
                    f"swing-up actions must be floats in [-1, 1], got {actions!r} "
                    f"(dtype {arr.dtype})"
                )
            t = torch.as_tensor(arr)
        if t.shape == (self.num_envs, 1):
            t = t[:, 0]
        if t.shape != (self.num_envs,):
            raise ValueError(
                f"actions must have shape ({self.num_envs},) or ({self.num_envs}, 1), one "
                f"per env, got shape {tuple(t.shape)}"
            )
        if not t.is_floating_point():
            raise ValueError(
                f"swing-up actions must be floats in [-1, 1], got dtype {t.dtype}; "
                "squash a policy's output with torch.tanh"
            )
        if self.validate_actions:
            bad = ~(t.abs() <= 1.0)  # NaN counts as bad
            if bool(bad.any()):
                i = int(bad.nonzero()[0, 0])
                raise ValueError(
                    f"action {float(t[i])} for env {i} is outside [-1, 1]; squash with "
                    "torch.tanh or clamp(-1, 1)"
                )
        return t.to(device=self.device, dtype=self.dtype)

    # -- policies for the CLI ---------------------------------------------------------------------
    def policy(self, name: str, seed: int = 0) -> Callable[[Tensor], Tensor]:
        """A scripted policy ``obs [N, 5] -> actions [N]`` in ``[-1, 1]``.

        ``noop``: no force; ``random``: uniform in ``[-1, 1]`` from a generator seeded
        with ``seed``.
        """
        if name == "noop":
            return lambda obs: torch.zeros(obs.shape[0], dtype=obs.dtype, device=obs.device)
        if name == "random":
            gen = torch.Generator(device=self.device).manual_seed(seed)

            def random_policy(obs: Tensor) -> Tensor:
                u = torch.rand(obs.shape[0], generator=gen, device=self.device, dtype=obs.dtype)
                return 2.0 * u - 1.0

            return random_policy
        raise ValueError(f"unknown swing-up policy {name!r}; choose noop or random")
