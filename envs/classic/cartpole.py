"""CartPole-v1, natively vectorized in torch: N carts as tensors, one step for all.

=====================  ==================================================================
World id               ``cartpole`` (``colony rollout cartpole --policy balance``)
Dynamics               Gymnasium's ``CartPole-v1`` exactly: explicit Euler, gravity 9.8,
                       cart mass 1.0, pole mass 0.1, pole half-length 0.5, force 10,
                       ``tau`` 0.02 s
State / observation    ``[N, 4]`` (x, x_dot, theta, theta_dot), float64 by default
                       (float32 on request), on any torch device
Actions                integer or bool ``[N]``: 0 pushes left, 1 pushes right
Reward                 1 for every step of a running episode (float32 ``[N]``), the
                       terminating step included; 0 for a finished, frozen episode
Termination            ``|x| > 2.4`` or ``|theta| > 12 degrees``
Truncation             after ``max_episode_steps`` (500) steps
Reset                  every state variable uniform in ``[-0.05, 0.05)``
=====================  ==================================================================

Seeds follow Gymnasium, so the same seed starts the same episode:

* ``reset(seed=s)`` with an integer draws all ``N`` states from one
  ``np.random.default_rng(s)`` as ``uniform(size=(4, N))``, like Gymnasium's
  ``CartPoleVectorEnv.reset(seed=s)``;
* ``reset(seed=seeds)`` with ``N`` integers starts env ``n`` where
  ``gym.make("CartPole-v1").reset(seed=seeds[n])`` starts (its own generator), which is
  how population evaluators pin every episode (see ``collective_ml.population``).

Two ways to treat finished episodes (``autoreset``):

``False`` (default; for fitness evaluation)
    A finished env freezes: its state stays, its reward is 0 and its ``terminated`` /
    ``truncated`` flags are False on later steps (they are True only on the step that
    ends the episode). :attr:`CartPoleWorld.done` marks finished envs; summing the reward
    gives each episode's return without masking. ``reset`` starts them all again.
``True`` (for watching)
    Same-step reset: an env whose episode ends returns the first observation of its next
    episode (drawn from the world's generator); ``info["final_obs"]`` holds the last
    observation of every env (equal to ``obs`` where nothing ended). Unlike Gymnasium's
    vector envs (next-step reset) no step is spent on the reset.

Differences to ``gym.make("CartPole-v1")``: the observation is the state in the world's
dtype (Gymnasium returns float32 copies of a float64 state; cast with ``.float()`` to
get exactly its numbers); stepping a finished episode is defined (frozen) instead of a
warning.

Example::

    env = CartPoleWorld(CartPoleConfig(num_envs=4096, device="cuda", autoreset=False))
    obs = env.reset(seed=0)                      # float64[4096, 4]
    obs, reward, terminated, truncated, info = env.step(actions)   # actions: int[4096]
    factory = CartPoleWorld.factory(validate_actions=False)   # for population evaluators
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from colonylab.envs.base import (
    SeededVectorWorld,
    StepResult,
    WorldFactory,
    check_vector_config,
    make_factory,
)

__all__ = ["CartPoleConfig", "CartPoleWorld"]

_TORCH_DTYPES = {"float64": torch.float64, "float32": torch.float32}

_BACKGROUND = np.array([250, 250, 250], dtype=np.uint8)
_BACKGROUND_DONE = np.array([250, 222, 222], dtype=np.uint8)
_CART = np.array([40, 40, 40], dtype=np.uint8)
_POLE = np.array([202, 152, 101], dtype=np.uint8)
_AXLE = np.array([129, 132, 203], dtype=np.uint8)
_TRACK = np.array([0, 0, 0], dtype=np.uint8)
_BORDER = np.array([200, 200, 200], dtype=np.uint8)


@dataclass(frozen=True)
class CartPoleConfig:
    """Configuration of the ``cartpole`` world (``colony rollout cartpole``).

    Defaults are the viewer's (16 carts, autoreset); population evaluators build
    worlds through :meth:`CartPoleWorld.factory` (finished episodes freeze).
    """

    num_envs: int = 16
    """Carts stepped together."""
    max_episode_steps: int = 500
    """Truncation limit (CartPole-v1: 500)."""
    autoreset: bool = True
    """Start a new episode as soon as one ends (False: finished carts freeze)."""
    dtype: Literal["float64", "float32"] = "float64"
    """State precision; float64 is Gymnasium's (``torch.float32`` is accepted too)."""
    device: str = "cpu"
    """Torch device of the state (cpu, cuda, cuda:N)."""
    seed: int | None = None
    """Seed of the world's generator (``reset()`` without a seed and autoreset draws use
    it); None: fresh entropy."""
    validate_actions: bool = True
    """Check action values (one reduction per step; on an accelerator it waits for the
    device). Shape and dtype are always checked."""
    render_envs: int = 16
    """Carts drawn by the viewer, as a grid of panels."""

    def __post_init__(self) -> None:
        check_vector_config(self)


class CartPoleWorld(SeededVectorWorld):
    """``config.num_envs`` CartPole-v1 environments stepped together as tensors.

    Args:
        config: A :class:`CartPoleConfig` (default: its defaults): ``num_envs``,
            ``device``, ``dtype``, ``seed``, ``max_episode_steps``, ``autoreset`` (see
            the module docstring), ``validate_actions``, ``render_envs``.

    Raises:
        ValueError: (from the config) a non-positive size, an unsupported dtype.
    """

    metadata: dict[str, Any] = {
        "name": "colonylab/CartPole-v0",
        "render_fps": 50,
        "render_modes": ["rgb_array"],
    }
    policies: tuple[str, ...] = ("balance", "random")
    """Scripted policies of :meth:`policy` (CartPole has no do-nothing action)."""

    # Gymnasium's CartPoleEnv constants, computed the same way.
    gravity = 9.8
    masscart = 1.0
    render_track_height = 0.72
    """Height of the track in a rendered panel, as a share of the panel's height."""
    masspole = 0.1
    total_mass = masspole + masscart
    length = 0.5  # half the pole's length
    polemass_length = masspole * length
    force_mag = 10.0
    tau = 0.02
    theta_threshold_radians = 12 * 2 * math.pi / 360
    x_threshold = 2.4
    num_actions = 2
    obs_dim = 4

    def __init__(self, config: CartPoleConfig | None = None) -> None:
        config = config if config is not None else CartPoleConfig()
        self.config = config
        self.num_envs = num_envs = config.num_envs
        self.device = torch.device(config.device)
        self.dtype = dtype = _TORCH_DTYPES[config.dtype]
        self.max_episode_steps = config.max_episode_steps
        self.autoreset = bool(config.autoreset)
        self.validate_actions = bool(config.validate_actions)
        self.render_envs = config.render_envs
        self._rng = np.random.default_rng(config.seed)
        self.state = torch.zeros(num_envs, 4, dtype=dtype, device=self.device)
        """``[N, 4]``: x, x_dot, theta, theta_dot. Replaced (never written in place) by ``step``."""
        self.elapsed = torch.zeros(num_envs, dtype=torch.int64, device=self.device)
        """``[N]`` steps taken in the current episode."""
        self.done = torch.zeros(num_envs, dtype=torch.bool, device=self.device)
        """``[N]`` finished (frozen) episodes; always False with ``autoreset``."""
        self.step_count = 0
        self.default_policy: Callable[[Tensor], Any] | None = None
        """Called with the observation when ``step()`` gets no actions (the viewer does that)."""
        self.episodes_finished = 0
        self._recent_lengths: deque[int] = deque(maxlen=100)
        self._ready = False
        self._low, self._high = -0.05, 0.05
        kw = {"dtype": dtype, "device": self.device}
        self._force_right = torch.tensor(self.force_mag, **kw)
        self._force_left = torch.tensor(-self.force_mag, **kw)
        self._thresholds = torch.tensor([self.x_threshold, self.theta_threshold_radians], **kw)

    # -- reset ----------------------------------------------------------------------------------
    def reset(
        self,
        seed: int | Sequence[int] | np.ndarray | Tensor | None = None,
        options: dict[str, float] | None = None,
    ) -> Tensor:
        """Start every env's episode.

        Args:
            seed: None (the world's generator), an integer (one generator for all, as
                Gymnasium's ``CartPoleVectorEnv``), or ``N`` integers >= 0 (env ``n``
                starts as ``gym.make("CartPole-v1").reset(seed=seed[n])``).
            options: ``{"low": ..., "high": ...}`` bounds of the initial state
                (default -0.05, 0.05), as Gymnasium's option of the same name.

        Returns:
            ``[N, 4]`` observation in :attr:`dtype` on :attr:`device`.
        """
        low, high = -0.05, 0.05
        if options:
            low, high = float(options.get("low", low)), float(options.get("high", high))
            if not low < high:
                raise ValueError(f"reset options need low < high, got low={low}, high={high}")
        self._low, self._high = low, high
        init = np.concatenate(
            self._seeded_draws(seed, lambda rng, n: rng.uniform(low, high, size=(4, n)).T)
        )
        self._set(torch.as_tensor(np.ascontiguousarray(init), dtype=torch.float64))
        return self.state

    def set_state(self, state: Tensor | np.ndarray | Sequence[Sequence[float]]) -> Tensor:
        """Start episodes from the given ``[N, 4]`` state (as Gymnasium's
        ``env.unwrapped.state = ...``); step counters restart. Returns the observation."""
        t = torch.as_tensor(np.asarray(state) if not isinstance(state, Tensor) else state)
        if t.shape != (self.num_envs, 4) or not (t.is_floating_point() and t.isfinite().all()):
            raise ValueError(
                f"state must be finite floats of shape ({self.num_envs}, 4) "
                f"(x, x_dot, theta, theta_dot), got shape {tuple(t.shape)} dtype {t.dtype}"
            )
        self._set(t)
        return self.state

    def _set(self, state: Tensor) -> None:
        self.state = state.to(device=self.device, dtype=self.dtype).clone()
        self.elapsed = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        self.done = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        self.step_count = 0
        self._ready = True

    @classmethod
    def factory(cls, config: CartPoleConfig | None = None, **overrides: Any) -> WorldFactory:
        """``factory(num_envs=N, device=d) -> world`` for population evaluators: the
        ``config`` (default: finished episodes freeze, ``autoreset=False``) with
        ``overrides``, e.g. ``CartPoleWorld.factory(validate_actions=False)``."""
        return make_factory(cls, CartPoleConfig, config, **overrides)

    def subset(self, index: Tensor | np.ndarray | Sequence[int]) -> CartPoleWorld:
        """A new world of the envs ``index`` (their current state, step counters and done
        flags, in that order); this world is unchanged and the two share the generator.

        Population evaluators drop finished episodes this way, so the work per step
        follows the number of episodes still running.
        """
        idx = torch.as_tensor(index, dtype=torch.int64, device=self.device).reshape(-1)
        if idx.numel() < 1:
            raise ValueError("subset needs at least one env index")
        if bool(((idx < 0) | (idx >= self.num_envs)).any()):
            raise ValueError(f"subset indices must lie in [0, {self.num_envs}), got {idx.tolist()}")
        world = type(self)(dataclasses.replace(self.config, num_envs=idx.numel()))
        world._rng = self._rng
        world._low, world._high = self._low, self._high
        world.state = self.state[idx]
        world.elapsed = self.elapsed[idx]
        world.done = self.done[idx]
        world.step_count = self.step_count
        world._ready = self._ready
        return world

    # -- step -----------------------------------------------------------------------------------
    def step(self, actions: Tensor | np.ndarray | Sequence[int] | None = None) -> StepResult:
        """Advance every running env one step.

        Args:
            actions: ``[N]`` integers (or bools) in {0, 1}; None: the
                :attr:`default_policy`'s actions.

        Returns:
            ``StepResult(obs [N, 4], reward float32[N], terminated bool[N],
            truncated bool[N], info)``; with ``autoreset`` ``info["final_obs"]`` is the
            ``[N, 4]`` observation before any reset. ``obs`` is a new tensor every step.

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
                    f"{self.num_envs} actions in {{0, 1}} or set default_policy"
                )
            actions = self.default_policy(self.state)
        push_right = self._check_actions(actions)
        new = self._dynamics(self.state, push_right)
        # |x| > 2.4 or |theta| > 12 degrees (the same test as x < -2.4 or x > 2.4, ...)
        terminated = (new[:, 0::2].abs() > self._thresholds).any(dim=1)
        elapsed = self.elapsed + 1
        truncated = elapsed >= self.max_episode_steps
        info: dict[str, Any] = {}
        if self.autoreset:
            reward = torch.ones(self.num_envs, dtype=torch.float32, device=self.device)
            ended = terminated | truncated
            info["final_obs"] = new
            n_ended = int(ended.sum())
            if n_ended:
                fresh = self._rng.uniform(self._low, self._high, size=(4, n_ended)).T
                fresh_t = torch.as_tensor(np.ascontiguousarray(fresh), dtype=self.dtype)
                new = new.clone()
                new[ended] = fresh_t.to(self.device)
                self._record_lengths(elapsed[ended])
                elapsed = torch.where(ended, 0, elapsed)
            self.state, self.elapsed = new, elapsed
        else:
            active = ~self.done
            terminated &= active
            truncated &= active
            reward = active.to(torch.float32)
            self.state = torch.where(active[:, None], new, self.state)
            self.elapsed = torch.where(active, elapsed, self.elapsed)
            ended = terminated | truncated
            self.done = self.done | ended
            if self.device.type == "cpu" and bool(ended.any()):
                self._record_lengths(self.elapsed[ended])
        self.step_count += 1
        return StepResult(self.state, reward, terminated, truncated, info)

    def _dynamics(self, state: Tensor, push_right: Tensor) -> Tensor:
        """One explicit Euler step, operation for operation as Gymnasium's CartPoleEnv
        (``x + tau * x_dot`` etc. for the four variables at once)."""
        force = torch.where(push_right, self._force_right, self._force_left)
        return self._euler(state, force)

    def _euler(self, state: Tensor, force: Tensor) -> Tensor:
        """One explicit Euler step of the cart-pole equations under ``force [N]`` on the
        cart (shared with the swing-up)."""
        _, x_dot, theta, theta_dot = state.unbind(1)
        costheta = torch.cos(theta)
        sintheta = torch.sin(theta)
        temp = (force + self.polemass_length * theta_dot.square() * sintheta) / self.total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * costheta.square() / self.total_mass)
        )
        xacc = temp - self.polemass_length * thetaacc * costheta / self.total_mass
        return state + self.tau * torch.stack((x_dot, xacc, theta_dot, thetaacc), dim=1)

    def _check_actions(self, actions: Any) -> Tensor:
        """``actions`` as a bool ``[N]`` tensor (True = push right) on the device, or a
        ``ValueError`` naming what is wrong."""
        if isinstance(actions, Tensor):
            t = actions.detach()
        else:
            arr = np.asarray(actions)
            if arr.dtype.kind not in "biuf":
                raise ValueError(
                    f"actions must be integers 0 (push left) or 1 (push right), got {actions!r}"
                )
            t = torch.as_tensor(arr)
        if t.shape != (self.num_envs,):
            raise ValueError(
                f"actions must have shape ({self.num_envs},), one per env, got shape "
                f"{tuple(t.shape)}"
            )
        if t.dtype == torch.bool:
            return t.to(self.device)
        if t.is_floating_point() or t.is_complex():
            raise ValueError(
                f"actions must be integers 0 (push left) or 1 (push right), got dtype "
                f"{t.dtype}; convert with .long() (e.g. logits.argmax(-1))"
            )
        if self.validate_actions:
            bad = (t < 0) | (t > 1)
            if bool(bad.any()):
                i = int(bad.nonzero()[0, 0])
                raise ValueError(
                    f"action {int(t[i])} for env {i} is out of range; CartPole actions are "
                    "0 (push left) or 1 (push right)"
                )
        return (t == 1).to(self.device)

    def _record_lengths(self, lengths: Tensor) -> None:
        values = lengths.tolist()
        self.episodes_finished += len(values)
        self._recent_lengths.extend(int(v) for v in values)

    # -- policies for the CLI ---------------------------------------------------------------------
    def policy(self, name: str, seed: int = 0) -> Callable[[Tensor], Tensor]:
        """A scripted policy ``obs [N, 4] -> actions int64[N]``.

        ``balance``: push toward where the pole leans, corrected for the pole's angular
        velocity and the cart's drift (a linear rule that keeps most episodes alive);
        ``random``: fair coin flips from a generator seeded with ``seed``.
        """
        if name == "balance":

            def balance(obs: Tensor) -> Tensor:
                x, x_dot, theta, theta_dot = obs.unbind(1)
                score = theta + 0.4 * theta_dot + 0.02 * x + 0.1 * x_dot
                return (score > 0).long()

            return balance
        if name == "random":
            gen = torch.Generator(device=self.device).manual_seed(seed)

            def random_policy(obs: Tensor) -> Tensor:
                return torch.randint(
                    2, (obs.shape[0],), generator=gen, device=self.device, dtype=torch.int64
                )

            return random_policy
        raise ValueError(f"unknown CartPole policy {name!r}; choose balance or random")

    # -- viewer ---------------------------------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        """Running envs, mean steps of the current episodes, finished episodes and the
        mean length of the last 100."""
        out: dict[str, float] = {
            "envs": self.num_envs,
            "running": int((~self.done).sum()),
            "mean_steps": float(self.elapsed.double().mean()),
            "episodes_finished": self.episodes_finished,
        }
        if self._recent_lengths:
            out["mean_length_last_100"] = float(np.mean(self._recent_lengths))
        return out

    def render_rgb(self, panel_width: int = 240, panel_height: int = 160) -> np.ndarray:
        """The first :attr:`render_envs` envs as a grid of panels, ``uint8[H, W, 3]``.

        Each panel shows the track, the cart and the pole (Gymnasium's proportions); a
        finished (frozen) episode's panel is tinted red.
        """
        shown = min(self.num_envs, self.render_envs)
        cols = math.ceil(math.sqrt(shown))
        rows = math.ceil(shown / cols)
        image = np.empty((rows * panel_height, cols * panel_width, 3), dtype=np.uint8)
        image[:] = _BORDER
        states = self.state[:shown].detach().double().cpu().numpy()
        done = self.done[:shown].cpu().numpy()
        for k in range(shown):
            r, c = divmod(k, cols)
            panel = image[r * panel_height : (r + 1) * panel_height, c * panel_width :][
                :, :panel_width
            ]
            self._draw_panel(panel[1:-1, 1:-1], states[k], bool(done[k]))
        return image

    def _draw_panel(self, panel: np.ndarray, state: np.ndarray, done: bool) -> None:
        draw_cart_pole(panel, state, done, self.x_threshold, self.length, self.render_track_height)


def draw_cart_pole(
    panel: np.ndarray,
    state: np.ndarray,
    done: bool,
    x_threshold: float,
    half_length: float,
    track_height: float,
) -> None:
    """Draw one cart-pole ``state`` (x, x_dot, theta, theta_dot) into ``panel``
    ``uint8[h, w, 3]`` in place: the track (``track_height`` of the way down), the cart
    and the pole (Gymnasium's proportions); a finished episode's panel is tinted red."""
    h, w, _ = panel.shape
    panel[:] = _BACKGROUND_DONE if done else _BACKGROUND
    scale = w / (2 * x_threshold)  # pixels per metre
    track_y = int(h * track_height)
    panel[track_y, :] = _TRACK
    x, _, theta, _ = state
    cart_x = w / 2 + x * scale
    cart_w, cart_h = 0.4 * scale, 0.24 * scale
    ys, xs = np.mgrid[0:h, 0:w]
    cart = (np.abs(xs - cart_x) <= cart_w / 2) & (np.abs(ys - track_y) <= cart_h / 2)
    panel[cart] = _CART
    axle_x, axle_y = cart_x, track_y - cart_h / 4
    pole_len = 2 * half_length * scale
    tip_x = axle_x + pole_len * math.sin(theta)
    tip_y = axle_y - pole_len * math.cos(theta)
    # distance of each pixel to the pole segment
    dx, dy = tip_x - axle_x, tip_y - axle_y
    t = np.clip(((xs - axle_x) * dx + (ys - axle_y) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    dist2 = (xs - axle_x - t * dx) ** 2 + (ys - axle_y - t * dy) ** 2
    panel[dist2 <= (0.04 * scale) ** 2] = _POLE
    panel[(xs - axle_x) ** 2 + (ys - axle_y) ** 2 <= (0.025 * scale) ** 2] = _AXLE
