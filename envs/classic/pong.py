"""Puzzle Pong: N Pong games stepped together, seen as a small grayscale screen cut into
patches (Tang & Ha 2021, "The Sensory Neuron as a Transformer").

The agent plays the right paddle against a scripted opponent; what it sees is meant to
go through the sensory wrappers of :mod:`colonylab.envs.wrappers.sensory`
(``ShuffleObservations`` turns it into the paper's Puzzle Pong, ``OccludePatches``
hides patches, ``BackgroundSwap`` needs ``obs_mode="pixels"``). Physics and rendering
are Numba kernels (:mod:`colonylab.envs.classic._pong_kernels`).

=====================  ==================================================================
World id               ``colonylab/PuzzlePong-v0`` (alias ``puzzle-pong``; ``colony rollout
                       puzzle-pong --policy track``)
State                  one array per attribute: ``ball_xy`` float32[N, 2] (x, y),
                       ``ball_v`` float32[N, 2] (per step), ``paddle_y`` float32[N, 2]
                       (centres of [opponent (left), agent (right)]), ``score``
                       int32[N, 2] (same order), ``elapsed`` int64[N], ``done`` bool[N].
                       The court is the unit square, y downwards; the ball is a square
                       of side 1/32, a paddle 1/32 wide and 6/32 high
Observation            the last ``frame_stack`` (2) frames of a ``screen`` x ``screen``
                       (32 x 32) grayscale picture, float32 in [0, 1]: background 0,
                       ball and paddles 1, a dashed centre line 0.25 (``net``).
                       ``obs_mode="patches"`` (default): ``[N, P, patch*patch*K]`` with
                       ``P = (screen / patch)**2`` (64 patches of 4 x 4 x 2 = 32 values;
                       ``patch_height`` makes them rectangles, e.g. full-height strips),
                       the layout of :func:`colonylab.agents.sensory.patchify` on the
                       channels-last screen; ``"pixels"``: ``[N, H, W, K]``. Channel
                       ``K - 1`` is the newest frame. Torch tensors on ``device``
Actions                int ``[N]`` (or ``[N, 1]``): 0 stay, 1 up (toward y = 0), 2 down;
                       the agent's paddle moves 0.04 per step
Opponent               follows the ball's y plus an aim error (uniform within 0.9 of
                       the paddle's hitting half-height, drawn at every serve and every
                       return of the agent), at most 0.012 per step: slower than a
                       steep ball (up to 0.026), so well-aimed returns beat it
Ball                   0.03 per step; bounces off the top and bottom walls, and off a
                       paddle at an angle of 60 degrees times the hit's offset from the
                       paddle's centre (in [-1, 1]), so the agent can aim
Reward                 +1 when the opponent misses, -1 when the agent misses, else 0
                       (float32 ``[N]``); 0 for a finished, frozen episode
Termination            a side reaches ``points_to_win`` (21, as in Atari Pong)
Truncation             after ``max_episode_steps`` (5000) steps
Reset                  paddles centred, 0-0; every point (and the first) is served from
                       the centre toward a random side at a uniform angle in +-30 deg
=====================  ==================================================================

Seeds: every random number of env ``n`` (serves, the opponent's aim errors) comes from
its own counter-based stream, keyed by a 32-bit key drawn at reset. ``reset(seed=s)``
draws all ``N`` keys from ``np.random.default_rng(s)``; ``reset(seed=seeds)`` with
``N`` integers draws env ``n``'s key from ``default_rng(seeds[n])``, so an episode does
not depend on its batch (nor on being moved into a :meth:`PuzzlePongWorld.subset`).

Finished episodes freeze (``autoreset=False``, for fitness evaluation) or restart in the
same step (``autoreset=True``, for watching; ``info["final_obs"]`` holds the last
observation before the reset), exactly as in :class:`~colonylab.envs.classic.CartPoleWorld`.

:meth:`PuzzlePongWorld.teacher_actions` is a scripted expert that reads the true state (where
the ball will cross the agent's paddle, walls folded in, and which hit offset sends the
return farthest from the opponent) and wins clearly; it is the ``track`` policy (the
MLP's cloning teacher in ``sensory-pong``; the AttentionNeuron clones ``aim``). Returns of the scripted policies over 64 games with
the default constants (``reset(seed=123)``; +-: standard deviation over games):

==========  =======================  ==========================================
policy      to 5 points              to 21 points (``max_episode_steps`` 5000)
==========  =======================  ==========================================
``track``   +5.0 +- 0 (456 steps)    +21.0 +- 0 (1979 steps)
``aim``     +4.9 +- 0.4 (492 steps)  +20.7 +- 0.6 (2115 steps)
``follow``  +3.7 +- 1.4 (60% trunc.) +4.4 +- 2.4 (all truncated at 5000)
``random``  -3.8 +- 1.1 (284 steps)  -15.9 +- 2.2 (1172 steps)
==========  =======================  ==========================================

``aim`` (:meth:`PuzzlePongWorld.aim_actions`) reads only the ball's height and both
paddles' heights -- what a full-height strip of the screen shows -- and keeps its
paddle at the ball's height, offset so that a return hit now would land farthest from
the opponent: nearly ``track``'s score without the ball's ``x`` or velocity.
``follow`` keeps the paddle's centre at the ball's height: it returns most balls
nearly flat, which the opponent returns too, so its points come slowly.

Example::

    world = PuzzlePongWorld(PuzzlePongConfig(num_envs=1024, autoreset=False))
    obs = world.reset(seed=0)                    # float32[1024, 64, 32]
    obs, reward, terminated, truncated, info = world.step(world.teacher_actions())
    env = ShuffleObservations(PuzzlePongWorld(PuzzlePongConfig(num_envs=64)), every=100, seed=0)
    factory = PuzzlePongWorld.factory(points_to_win=5)   # for population evaluators
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

from colonylab._checks import check_choice, check_float
from colonylab.envs.base import (
    SeededVectorWorld,
    StepResult,
    WorldFactory,
    check_vector_config,
    make_factory,
)
from colonylab.envs.classic import _pong_kernels as K

__all__ = ["PuzzlePongConfig", "PuzzlePongWorld"]

_COURT = np.array([144, 72, 17], dtype=np.uint8)  # Atari Pong's colours
_COURT_DONE = np.array([96, 48, 40], dtype=np.uint8)
_OPPONENT = np.array([213, 130, 74], dtype=np.uint8)
_AGENT = np.array([92, 186, 92], dtype=np.uint8)
_BALL = np.array([236, 236, 236], dtype=np.uint8)
_NET = np.array([200, 160, 120], dtype=np.uint8)
_BORDER = np.array([30, 30, 30], dtype=np.uint8)

# 3 x 5 digits for the score
_DIGITS = {
    d: np.array([[c == "#" for c in row] for row in rows.split("/")], dtype=bool)
    for d, rows in {
        0: "###/#.#/#.#/#.#/###",
        1: ".#./##./.#./.#./###",
        2: "###/..#/###/#../###",
        3: "###/..#/###/..#/###",
        4: "#.#/#.#/###/..#/..#",
        5: "###/#../###/..#/###",
        6: "###/#../###/#.#/###",
        7: "###/..#/..#/..#/..#",
        8: "###/#.#/###/#.#/###",
        9: "###/#.#/###/..#/###",
    }.items()
}

_TEACHER_OFFSETS = np.array([-0.8, -0.6, -0.4, -0.2, 0.0, 0.2, 0.4, 0.6, 0.8])


@dataclass(frozen=True)
class PuzzlePongConfig:
    """Configuration of the ``puzzle-pong`` world (``colony rollout puzzle-pong``).

    Defaults are the viewer's (16 games, autoreset); population evaluators build
    worlds through :meth:`PuzzlePongWorld.factory` (finished games freeze).
    """

    num_envs: int = 16
    """Games stepped together."""
    screen: int = 32
    """Side of the square observation screen in pixels (>= 4)."""
    patch: int = 4
    """Side of a square patch (with ``patch_height``: its width); must divide ``screen``."""
    patch_height: int | None = None
    """Height of a patch (None: ``patch``, square); must divide ``screen``. ``screen``
    makes full-height strips: each patch then spans the court from wall to wall."""
    frame_stack: int = 2
    """Frames shown as channels (the newest last), so motion is visible."""
    obs_mode: Literal["patches", "pixels"] = "patches"
    """patches: [N, P, patch*patch*frame_stack]; pixels: [N, screen, screen, frame_stack]."""
    points_to_win: int = 21
    """A game ends when a side has this many points (Atari Pong: 21)."""
    max_episode_steps: int = 5000
    """Truncation limit."""
    autoreset: bool = True
    """Start a new game as soon as one ends (False: finished games freeze)."""
    ball_speed: float = 0.03
    """Distance the ball moves per step (court widths)."""
    paddle_speed: float = 0.04
    """The agent paddle's move per up / down step."""
    opponent_speed: float = 0.012
    """The opponent's largest move per step (below a steep ball's vertical speed)."""
    opponent_error: float = 0.9
    """The opponent's aim error, a share in [0, 1) of the paddle's hitting half-height."""
    net: bool = True
    """Draw the dashed centre line (grey 0.25) in the observation."""
    background: float = 0.0
    """Grey level in [0, 1) of a vertical background ramp (0 at the top to ``background``
    at the bottom; 0: black). Like the static parts of an Atari screen it tells a patch
    where it sits, which a shuffled screen otherwise hides;
    :class:`~colonylab.envs.wrappers.BackgroundSwap` tests an agent's reliance on it."""
    device: str = "cpu"
    """Torch device of observations, rewards and flags (the state and the kernels stay
    on the CPU)."""
    seed: int | None = None
    """Seed of the world's generator (``reset()`` without a seed uses it); None: fresh
    entropy."""
    render_envs: int = 16
    """Games drawn by the viewer, as a grid of panels."""

    def __post_init__(self) -> None:
        check_vector_config(self, screen=4, patch=1, frame_stack=1, points_to_win=1)
        check_choice("obs_mode", self.obs_mode, ("patches", "pixels"))
        divisors = [d for d in range(1, self.screen + 1) if self.screen % d == 0]
        if self.screen % self.patch:
            raise ValueError(
                f"patch {self.patch} does not divide the screen size {self.screen}; pick one "
                f"of {divisors} or change screen"
            )
        ph = self.patch_height
        if ph is not None and (
            isinstance(ph, bool) or not isinstance(ph, int) or ph < 1 or self.screen % ph
        ):
            raise ValueError(
                f"patch_height {ph!r} must be None or one of {divisors} (divisors of the "
                f"screen size {self.screen})"
            )
        for name in ("ball_speed", "paddle_speed", "opponent_speed"):
            check_float(name, getattr(self, name), 0.0, low_open=True)
        check_float("opponent_error", self.opponent_error, 0.0, 1.0, high_open=True)
        check_float("background", self.background, 0.0, 1.0, high_open=True)


class PuzzlePongWorld(SeededVectorWorld):
    """``config.num_envs`` Pong games stepped together; the agent plays the right paddle.

    Args:
        config: A :class:`PuzzlePongConfig` (default: its defaults); every field is
            described there.

    Raises:
        ValueError: (from the config) a non-positive size or count, a ``patch`` that
            does not divide ``screen``, an unknown ``obs_mode``, an ``opponent_error``
            outside ``[0, 1)``.
    """

    metadata: dict[str, Any] = {
        "name": "colonylab/PuzzlePong-v0",
        "render_fps": 30,
        "render_modes": ["rgb_array"],
    }
    policies: tuple[str, ...] = ("track", "aim", "follow", "random", "noop")
    """Scripted policies of :meth:`policy` (``noop``: the paddle stays)."""
    num_actions = K.NUM_ACTIONS

    def __init__(self, config: PuzzlePongConfig | None = None) -> None:
        config = config if config is not None else PuzzlePongConfig()
        self.config = config
        self.num_envs = config.num_envs
        self.screen = config.screen
        self.frame_stack = config.frame_stack
        self.points_to_win = config.points_to_win
        self.max_episode_steps = config.max_episode_steps
        self.render_envs = config.render_envs
        self.obs_mode = config.obs_mode
        self.patch = config.patch
        self.patch_height = config.patch if config.patch_height is None else config.patch_height
        """Rows of a patch (``patch`` unless the config sets ``patch_height``)."""
        self.ball_speed = float(config.ball_speed)
        self.paddle_speed = float(config.paddle_speed)
        self.opponent_speed = float(config.opponent_speed)
        self.opponent_error = float(config.opponent_error)
        self.net = bool(config.net)
        self.background = float(config.background)
        self.autoreset = bool(config.autoreset)
        self.device = torch.device(config.device)
        self._seed = config.seed
        self._rng = np.random.default_rng(config.seed)
        obs_mode = config.obs_mode

        params = np.zeros(K.NUM_PARAMS, dtype=np.float64)
        params[K.BALL_HALF] = 0.5 / 32
        params[K.BALL_SPEED] = self.ball_speed
        params[K.PADDLE_HALF] = 3.0 / 32
        params[K.PADDLE_HALF_W] = 0.5 / 32
        params[K.LEFT_X] = 2.5 / 32
        params[K.RIGHT_X] = 29.5 / 32
        params[K.AGENT_SPEED] = self.paddle_speed
        params[K.OPPONENT_SPEED] = self.opponent_speed
        params[K.OPPONENT_ERROR] = self.opponent_error
        params[K.MAX_BOUNCE] = math.radians(60.0)
        params[K.SERVE_ANGLE] = math.radians(30.0)
        params[K.NET_VALUE] = 0.25
        params[K.BACKGROUND] = self.background
        self.params = params
        """float64[NUM_PARAMS]: the game's constants in the kernels' layout."""

        n, k = self.num_envs, self.frame_stack
        self.ball_xy = np.zeros((n, 2), dtype=K.POS_DTYPE)
        """float32[N, 2]: the ball's centre (x, y); y grows downwards."""
        self.ball_v = np.zeros((n, 2), dtype=K.POS_DTYPE)
        """float32[N, 2]: the ball's velocity per step."""
        self.paddle_y = np.zeros((n, 2), dtype=K.POS_DTYPE)
        """float32[N, 2]: centre y of [opponent (left), agent (right)] paddles."""
        self.score = np.zeros((n, 2), dtype=K.SCORE_DTYPE)
        """int32[N, 2]: points of [opponent, agent] in the current game."""
        self.elapsed = np.zeros(n, dtype=K.COUNT_DTYPE)
        """int64[N]: steps taken in the current game."""
        self.done = np.zeros(n, dtype=bool)
        """bool[N]: finished (frozen) games; always False with ``autoreset``."""
        self.opp_aim = np.zeros(n, dtype=np.float64)
        """float64[N]: the opponent's current aim error (added to the ball's y)."""
        self.rng_key = np.zeros(n, dtype=K.COUNT_DTYPE)
        """int64[N]: each env's 32-bit random-stream key."""
        self.rng_counter = np.zeros(n, dtype=K.COUNT_DTYPE)
        """int64[N]: numbers each env has drawn from its stream."""
        self.hist_ball = np.zeros((n, k, 2), dtype=K.POS_DTYPE)
        """float32[N, K, 2]: the ball in the last K frames (the newest last)."""
        self.hist_paddle = np.zeros((n, k, 2), dtype=K.POS_DTYPE)
        """float32[N, K, 2]: the paddles in the last K frames."""
        self.step_count = 0
        self.default_policy: Callable[[Tensor], Any] | None = None
        """Called with the observation when ``step()`` gets no actions (the viewer does)."""
        self.episodes_finished = 0
        self._recent_returns: deque[int] = deque(maxlen=100)
        self._ready = False
        self._all = np.arange(n, dtype=np.int64)
        self._pixel_offsets = K.layout_offsets(self.screen, self.screen, k, 0)
        self._offsets = (
            K.layout_offsets(self.screen, self.screen, k, self.patch, self.patch_height)
            if obs_mode == "patches"
            else self._pixel_offsets
        )

    # -- shapes ---------------------------------------------------------------------------------
    @property
    def num_patches(self) -> int:
        """``P``, patches per observation (``(screen / patch_height) * (screen / patch)``)."""
        return (self.screen // self.patch_height) * (self.screen // self.patch)

    @property
    def obs_shape(self) -> tuple[int, ...]:
        """The shape of one env's observation."""
        if self.obs_mode == "patches":
            return (self.num_patches, self.patch_height * self.patch * self.frame_stack)
        return (self.screen, self.screen, self.frame_stack)

    # -- reset ----------------------------------------------------------------------------------
    def reset(
        self,
        seed: int | Sequence[int] | np.ndarray | Tensor | None = None,
        options: dict[str, Any] | None = None,
    ) -> Tensor:
        """Start every game at 0-0 with a serve.

        Args:
            seed: None (keys from the world's generator), an integer (all ``N`` keys from
                ``default_rng(seed)``), or ``N`` integers >= 0 (env ``n``'s key from
                ``default_rng(seed[n])``: its game does not depend on the batch).
            options: unused (accepted for the Gymnasium signature).

        Returns:
            The observation (see :attr:`obs_shape`), float32 on :attr:`device`.
        """
        keys = np.concatenate(
            self._seeded_draws(seed, lambda rng, n: rng.integers(0, 2**32, size=n))
        )
        self.rng_key[:] = keys
        self.rng_counter[:] = 0
        self.done[:] = False
        self._reset_envs(self._all)
        self.step_count = 0
        self._ready = True
        return self._to_device(self._render(self._all))

    def _reset_envs(self, envs: np.ndarray) -> None:
        K.pong_reset(
            envs,
            self.ball_xy,
            self.ball_v,
            self.paddle_y,
            self.score,
            self.elapsed,
            self.opp_aim,
            self.rng_key,
            self.rng_counter,
            self.hist_ball,
            self.hist_paddle,
            self.params,
        )

    def set_state(
        self,
        ball_xy: Any,
        ball_v: Any,
        paddle_y: Any,
        score: Any | None = None,
    ) -> Tensor:
        """Put every game into the given state (for tests and demos): ``ball_xy``,
        ``ball_v``, ``paddle_y`` ``[N, 2]`` floats, ``score`` ``[N, 2]`` ints (default
        0-0). Step counters restart, the opponent's aim error is 0, the random streams
        go on and every frame of the history shows this state. Call :meth:`reset` first.

        Returns:
            The observation.
        """
        if not self._ready:
            raise RuntimeError("call reset(seed) before set_state()")
        values = {}
        for name, value, kind in (
            ("ball_xy", ball_xy, "f"),
            ("ball_v", ball_v, "f"),
            ("paddle_y", paddle_y, "f"),
            (
                "score",
                np.zeros((self.num_envs, 2), dtype=np.int32) if score is None else score,
                "i",
            ),
        ):
            arr = np.asarray(value.cpu() if isinstance(value, Tensor) else value)
            ok = arr.shape == (self.num_envs, 2) and (
                arr.dtype.kind in "fiu" if kind == "f" else arr.dtype.kind in "iu"
            )
            if not ok or (kind == "f" and not np.isfinite(arr).all()):
                what = "finite floats" if kind == "f" else "integers"
                raise ValueError(
                    f"{name} must be {what} of shape ({self.num_envs}, 2), got shape "
                    f"{arr.shape} dtype {arr.dtype}"
                )
            values[name] = arr
        self.ball_xy[:] = values["ball_xy"]
        self.ball_v[:] = values["ball_v"]
        self.paddle_y[:] = values["paddle_y"]
        self.score[:] = values["score"]
        self.elapsed[:] = 0
        self.done[:] = False
        self.opp_aim[:] = 0.0
        self.hist_ball[:] = self.ball_xy[:, None, :]
        self.hist_paddle[:] = self.paddle_y[:, None, :]
        return self._to_device(self._render(self._all))

    @classmethod
    def factory(cls, config: PuzzlePongConfig | None = None, **overrides: Any) -> WorldFactory:
        """``factory(num_envs=N, device=d) -> world`` for population evaluators: the
        ``config`` (default: finished games freeze, ``autoreset=False``) with
        ``overrides``, e.g. ``PuzzlePongWorld.factory(points_to_win=5)``."""
        return make_factory(cls, PuzzlePongConfig, config, **overrides)

    def subset(self, index: Tensor | np.ndarray | Sequence[int]) -> PuzzlePongWorld:
        """A new world of the envs ``index`` (their state, frame history, random streams,
        step counters and done flags, in that order); this world is unchanged and the two
        share the world generator.

        Population evaluators drop finished episodes this way, so the work per step
        follows the number of games still running.
        """
        idx = np.asarray(index.cpu() if isinstance(index, Tensor) else index, dtype=np.int64)
        idx = idx.reshape(-1)
        if idx.size < 1:
            raise ValueError("subset needs at least one env index")
        if ((idx < 0) | (idx >= self.num_envs)).any():
            raise ValueError(f"subset indices must lie in [0, {self.num_envs}), got {idx.tolist()}")
        world = self._empty_like(idx.size)
        world._rng = self._rng
        for name in (
            "ball_xy",
            "ball_v",
            "paddle_y",
            "score",
            "elapsed",
            "done",
            "opp_aim",
            "rng_key",
            "rng_counter",
            "hist_ball",
            "hist_paddle",
        ):
            setattr(world, name, np.ascontiguousarray(getattr(self, name)[idx]))
        world.step_count = self.step_count
        world._ready = self._ready
        world.default_policy = self.default_policy
        return world

    def _empty_like(self, num_envs: int) -> PuzzlePongWorld:
        return type(self)(dataclasses.replace(self.config, num_envs=num_envs))

    # -- step -----------------------------------------------------------------------------------
    def step(self, actions: Tensor | np.ndarray | Sequence[int] | None = None) -> StepResult:
        """Advance every running game one step.

        Args:
            actions: ``[N]`` or ``[N, 1]`` integers in {0: stay, 1: up, 2: down}; None:
                the :attr:`default_policy`'s actions.

        Returns:
            ``StepResult(obs, reward float32[N], terminated bool[N], truncated bool[N],
            info)``, torch tensors on :attr:`device`; with ``autoreset``
            ``info["final_obs"]`` is the observation before any reset. ``obs`` is a new
            tensor every step.

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
                    f"{self.num_envs} actions in {{0, 1, 2}} or set default_policy"
                )
            actions = self.default_policy(self._to_device(self._render(self._all)))
        acts = self._check_actions(actions)
        n = self.num_envs
        reward = np.empty(n, dtype=K.REWARD_DTYPE)
        terminated = np.empty(n, dtype=bool)
        truncated = np.empty(n, dtype=bool)
        K.pong_step(
            acts,
            self.ball_xy,
            self.ball_v,
            self.paddle_y,
            self.score,
            self.elapsed,
            self.done,
            self.opp_aim,
            self.rng_key,
            self.rng_counter,
            self.hist_ball,
            self.hist_paddle,
            self.params,
            self.points_to_win,
            self.max_episode_steps,
            reward,
            terminated,
            truncated,
        )
        ended = terminated | truncated
        obs = self._render(self._all)
        final_obs = None
        if ended.any():
            ended_idx = np.flatnonzero(ended)
            self._record_returns(ended_idx)
            if self.autoreset:
                final_obs = self._to_device(obs)
                obs = obs.copy()
                self._reset_envs(ended_idx)
                self._render(ended_idx, obs)
            else:
                self.done |= ended
        self.step_count += 1
        obs_t = self._to_device(obs)
        info: dict[str, Any] = {}
        if self.autoreset:
            info["final_obs"] = obs_t if final_obs is None else final_obs
        return StepResult(
            obs_t,
            self._to_device(reward),
            self._to_device(terminated),
            self._to_device(truncated),
            info,
        )

    def _check_actions(self, actions: Any) -> np.ndarray:
        """``actions`` as a contiguous int64 ``[N]`` array, or a ``ValueError`` naming
        what is wrong."""
        is_tensor = isinstance(actions, Tensor)
        arr = actions.detach().cpu().numpy() if is_tensor else np.asarray(actions)
        if arr.shape == (self.num_envs, 1):
            arr = arr[:, 0]
        if arr.shape != (self.num_envs,):
            raise ValueError(
                f"actions must have shape ({self.num_envs},) or ({self.num_envs}, 1), one per "
                f"env, got shape {arr.shape}"
            )
        if arr.dtype.kind not in "iu":
            raise ValueError(
                f"Pong actions must be integers 0 (stay), 1 (up) or 2 (down), got dtype "
                f"{arr.dtype}; convert with .long() (e.g. logits.argmax(-1))"
            )
        bad = (arr < 0) | (arr >= K.NUM_ACTIONS)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"action {int(arr[i])} for env {i} is out of range; Pong actions are "
                "0 (stay), 1 (up) or 2 (down)"
            )
        return np.ascontiguousarray(arr, dtype=K.ACTION_DTYPE)

    def _record_returns(self, envs: np.ndarray) -> None:
        returns = self.score[envs, K.AGENT] - self.score[envs, K.OPPONENT]
        self.episodes_finished += len(envs)
        self._recent_returns.extend(int(r) for r in returns)

    # -- observations ---------------------------------------------------------------------------
    def _render(self, envs: np.ndarray, out: np.ndarray | None = None, net: bool | None = None):
        """Render the rows ``envs`` into ``out`` (a new array when None), shaped as the
        observation."""
        n = self.num_envs
        if out is None:
            out = np.empty((n, *self.obs_shape), dtype=K.OBS_DTYPE)
        K.pong_render(
            envs,
            self.hist_ball,
            self.hist_paddle,
            self.params,
            *self._offsets,
            self.net if net is None else net,
            out.reshape(n, -1),
        )
        return out

    def _to_device(self, arr: np.ndarray) -> Tensor:
        t = torch.from_numpy(arr)
        return t if self.device.type == "cpu" else t.to(self.device)

    def observe(self) -> Tensor:
        """The current observation (a new tensor; what the last step returned)."""
        return self._to_device(self._render(self._all))

    def pixels(self) -> Tensor:
        """The current screen ``float32[N, H, W, K]`` whatever :attr:`obs_mode` is."""
        out = np.empty((self.num_envs, self.screen, self.screen, self.frame_stack), K.OBS_DTYPE)
        K.pong_render(
            self._all,
            self.hist_ball,
            self.hist_paddle,
            self.params,
            *self._pixel_offsets,
            self.net,
            out.reshape(self.num_envs, -1),
        )
        return self._to_device(out)

    def foreground_mask(self) -> Tensor:
        """``bool[N, H, W, K]``: True on the ball and the paddles of each frame (the centre
        line is background), for :class:`~colonylab.envs.wrappers.sensory.BackgroundSwap`
        (which needs ``obs_mode="pixels"``)."""
        out = np.empty((self.num_envs, self.screen, self.screen, self.frame_stack), K.OBS_DTYPE)
        params = self.params.copy()
        params[K.BACKGROUND] = 0.0
        K.pong_render(
            self._all,
            self.hist_ball,
            self.hist_paddle,
            params,
            *self._pixel_offsets,
            False,
            out.reshape(self.num_envs, -1),
        )
        return self._to_device(out > 0)

    # -- scripted policies ----------------------------------------------------------------------
    def teacher_actions(self) -> Tensor:
        """The scripted expert's actions ``int64[N]`` from the true state (on
        :attr:`device`): it moves to where the ball will cross its paddle, offset so
        that the return lands as far from the opponent as it can reach in time, and
        back to the centre while the ball moves away. Beats the opponent clearly (see
        the module docstring for measured returns)."""
        out = np.empty(self.num_envs, dtype=K.ACTION_DTYPE)
        K.pong_teacher(self.ball_xy, self.ball_v, self.paddle_y, self.params, _TEACHER_OFFSETS, out)
        return self._to_device(out)

    def aim_actions(self) -> Tensor:
        """A teacher ``int64[N]`` that reads only what a full-height strip of the screen
        shows -- the ball's height and both paddles' heights, not the ball's ``x`` nor
        its velocity -- so a feed-forward agent on shuffled strips can act as it does:
        it keeps its paddle at the ball's height, offset so that a return hit now would
        land farthest from the opponent (:func:`~colonylab.envs.classic._pong_kernels.
        pong_aim_teacher`). Nearly as strong as :meth:`teacher_actions` (see the module
        docstring)."""
        out = np.empty(self.num_envs, dtype=K.ACTION_DTYPE)
        K.pong_aim_teacher(self.ball_xy, self.paddle_y, self.params, _TEACHER_OFFSETS, out)
        return self._to_device(out)

    def follow_actions(self) -> Tensor:
        """A naive tracker ``int64[N]``: keep the paddle's centre at the ball's height
        (returns at angle 0 mostly; the opponent returns them easily)."""
        diff = self.ball_xy[:, 1].astype(np.float64) - self.paddle_y[:, 1]
        half = 0.5 * self.paddle_speed
        out = np.where(diff < -half, K.UP, np.where(diff > half, K.DOWN, K.STAY))
        return self._to_device(out.astype(K.ACTION_DTYPE))

    def policy(self, name: str, seed: int = 0) -> Callable[[Any], Tensor]:
        """A scripted policy ``obs -> actions int64[N]``.

        ``track``: :meth:`teacher_actions` (reads the world's true state, ignores
        ``obs``); ``aim``: :meth:`aim_actions` (the ball's and paddles' heights only);
        ``follow``: :meth:`follow_actions`; ``random``: uniform actions from a
        generator seeded with ``seed`` (loses clearly); ``noop``: the paddle stays.
        """
        if name == "noop":
            return lambda obs: torch.full(
                (self.num_envs,), K.STAY, dtype=torch.int64, device=self.device
            )
        if name == "track":
            return lambda obs: self.teacher_actions()
        if name == "aim":
            return lambda obs: self.aim_actions()
        if name == "follow":
            return lambda obs: self.follow_actions()
        if name == "random":
            gen = torch.Generator().manual_seed(seed)

            def random_policy(obs: Any) -> Tensor:
                n = obs.shape[0] if hasattr(obs, "shape") else self.num_envs
                acts = torch.randint(K.NUM_ACTIONS, (n,), generator=gen, dtype=torch.int64)
                return acts.to(self.device)

            return random_policy
        raise ValueError(f"unknown Pong policy {name!r}; choose one of {', '.join(self.policies)}")

    # -- viewer ---------------------------------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        """Running games, mean steps and points of the current games, finished games and
        the agent's mean return and win share over the last 100."""
        out: dict[str, float] = {
            "envs": self.num_envs,
            "running": int((~self.done).sum()),
            "mean_steps": float(self.elapsed.mean()),
            "agent_points": float(self.score[:, K.AGENT].mean()),
            "opponent_points": float(self.score[:, K.OPPONENT].mean()),
            "episodes_finished": self.episodes_finished,
        }
        if self._recent_returns:
            returns = np.asarray(self._recent_returns)
            out["mean_return_last_100"] = float(returns.mean())
            out["win_share_last_100"] = float((returns > 0).mean())
        return out

    def render_rgb(self, panel_size: int = 192) -> np.ndarray:
        """The first :attr:`render_envs` games as a grid of panels, ``uint8[H, W, 3]``.

        Each panel draws the court at ``panel_size`` pixels in Atari Pong's colours: the
        opponent's paddle (orange) left, the agent's (green) right, the ball, a dashed
        net and the score (opponent left, agent right). A finished, frozen game's court
        is darker.
        """
        shown = min(self.num_envs, self.render_envs)
        cols = math.ceil(math.sqrt(shown))
        rows = math.ceil(shown / cols)
        size = panel_size
        image = np.empty((rows * size, cols * size, 3), dtype=np.uint8)
        image[:] = _BORDER
        for k in range(shown):
            r, c = divmod(k, cols)
            panel = image[r * size : (r + 1) * size, c * size : (c + 1) * size]
            self._draw_panel(panel[1:-1, 1:-1], k)
        return image

    def _draw_panel(self, panel: np.ndarray, n: int) -> None:
        h, w, _ = panel.shape
        p = self.params
        panel[:] = _COURT_DONE if self.done[n] else _COURT

        def fill(x: float, y: float, half_w: float, half_h: float, color: np.ndarray) -> None:
            c0, c1 = (round((x - half_w) * w), round((x + half_w) * w))
            r0, r1 = (round((y - half_h) * h), round((y + half_h) * h))
            panel[max(r0, 0) : max(r1, r0 + 1), max(c0, 0) : max(c1, c0 + 1)] = color

        dash = max(h // 32, 1)
        net_x = w // 2
        for y0 in range(0, h, 4 * dash):
            panel[y0 : y0 + 2 * dash, net_x - max(w // 192, 1) + 1 : net_x + 1] = _NET
        self._draw_score(panel, int(self.score[n, K.OPPONENT]), w // 4, _OPPONENT)
        self._draw_score(panel, int(self.score[n, K.AGENT]), 3 * w // 4, _AGENT)
        fill(
            p[K.LEFT_X], float(self.paddle_y[n, 0]), p[K.PADDLE_HALF_W], p[K.PADDLE_HALF], _OPPONENT
        )
        fill(p[K.RIGHT_X], float(self.paddle_y[n, 1]), p[K.PADDLE_HALF_W], p[K.PADDLE_HALF], _AGENT)
        x, y = float(self.ball_xy[n, 0]), float(self.ball_xy[n, 1])
        fill(x, y, p[K.BALL_HALF], p[K.BALL_HALF], _BALL)

    @staticmethod
    def _draw_score(panel: np.ndarray, value: int, centre_x: int, color: np.ndarray) -> None:
        h, _, _ = panel.shape
        scale = max(h // 48, 1)
        digits = [_DIGITS[int(d)] for d in str(value)]
        glyph = np.concatenate([np.pad(d, ((0, 0), (0, 1))) for d in digits], axis=1)[:, :-1]
        big = np.kron(glyph, np.ones((scale, scale), dtype=bool))
        top = max(h // 24, 1)
        left = max(centre_x - big.shape[1] // 2, 0)
        region = panel[top : top + big.shape[0], left : left + big.shape[1]]
        region[big[: region.shape[0], : region.shape[1]]] = color
