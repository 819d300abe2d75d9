"""Ant, vectorized: ``N`` MuJoCo Ant robots stepped together, Gymnasium ``Ant-v5`` exactly.

The robot of Tang & Ha (2021) ("The Sensory Neuron as a Transformer"): a four-legged
Ant whose 27 observations an AttentionNeuron agent sees shuffled (wrap the world in
:class:`~colonylab.envs.wrappers.ShuffleObservations`).

=====================  ==================================================================
World id               ``colonylab/Ant-v0`` (alias ``ant``; class :class:`AntWorld`, config
                       :class:`AntConfig`; ``colony rollout ant --policy random``)
Model                  Gymnasium's ``ant.xml`` (read from the installed ``gymnasium``
                       package): a torso on a free joint, four legs of two hinges each,
                       8 motors of gear 150; ``timestep`` 0.01 s
Physics                one ``mujoco.MjData`` per robot, ``mj_step(nstep=frame_skip)``
                       with ``frame_skip`` 5 (``dt`` 0.05 s), then
                       ``mj_rnePostConstraint`` (for the contact forces), as Gymnasium
Observation            ``[N, 27]``: ``qpos[2:]`` (13: torso z, torso quaternion, 8 joint
                       angles) then ``qvel`` (14), float64 by default (float32 on
                       request); the torso's x, y are left out, contact forces too
                       (``include_cfrc_ext_in_observation=False``)
Actions                floats in ``[-1, 1]``, shape ``[N, 8]`` (motor controls)
Reward                 ``forward + healthy - ctrl - contact`` (float32 ``[N]``):
                       ``forward`` = the torso's x displacement over the step / ``dt``
                       (from its ``xpos``, as Gymnasium), ``healthy`` = 1 while healthy,
                       ``ctrl`` = ``0.5 * sum(a^2)``, ``contact`` =
                       ``5e-4 * sum(clip(cfrc_ext, -1, 1)^2)`` (Ant-v5 charges it even
                       with the forces out of the observation); 0 for a frozen episode
Termination            the torso's z outside ``healthy_z_range`` (0.2, 1.0), or a
                       non-finite ``qpos`` / ``qvel``
Truncation             after ``max_episode_steps`` (1000) steps
Reset                  ``qpos0 + U(-0.1, 0.1)`` on ``qpos`` (15), ``0.1 * N(0, 1)`` on
                       ``qvel`` (14), as ``Ant-v5.reset_model``
info                   per-env ``reward_forward``, ``reward_ctrl``, ``reward_contact``,
                       ``reward_survive``, ``x_position``, ``y_position``,
                       ``x_velocity``, ``y_velocity`` (float64 ``[N]`` NumPy arrays)
=====================  ==================================================================

Seeds follow Gymnasium, so the same seed starts the same episode: ``reset(seed=s)``
draws the starts of envs ``0 .. N-1`` in turn (``uniform(size=15)`` then
``standard_normal(14)`` each) from one ``np.random.default_rng(s)``, so env 0 starts
where ``gym.make("Ant-v5").reset(seed=s)`` starts; ``reset(seed=seeds)`` with ``N``
integers gives env ``n`` its own generator ``default_rng(seeds[n])`` (an episode does
not depend on its batch). Finished episodes freeze (reward 0, flags True only on the
step that ends them, :attr:`AntWorld.done`) or, with ``autoreset``, restart in the same
step with ``info["final_obs"]`` holding the last observation, as
:class:`~colonylab.envs.classic.CartPoleWorld`. Frozen robots are not simulated.

Speed (2 shared CPU cores, 1 thread): physics dominates (~60 us per MuJoCo step of one
Ant with contacts). Bare physics, 40 steps of random actions: the loop over the
``MjData`` (``mj_step(model, data, nstep=5)`` + ``mj_rnePostConstraint``) ran 2.7k /
3.1k env steps/s at ``N`` = 64 / 256, ``mujoco.rollout`` 3.1k / 3.2k with 1 thread and
3.6k / 3.3k with 2, ``gym.make("Ant-v5")`` stepped in a loop 2.0k. ``rollout`` keeps no
per-robot ``MjData`` (no contact forces for Gymnasium's contact cost, no ``xpos`` for its
forward reward, no solver warm start across steps), so the loop it is. The whole
:meth:`AntWorld.step` with a linear walking policy ran 2.0k steps/s at 64 and 256 robots against
1.3k for the Gymnasium loop, measured together on a busier machine.

Example::

    world = AntWorld(AntConfig(num_envs=64, autoreset=False))
    obs = world.reset(seed=0)                                  # float64[64, 27]
    obs, reward, terminated, truncated, info = world.step(torch.tanh(out))  # out: [64, 8]
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from colonylab._checks import check_float
from colonylab.envs.base import (
    SeededVectorWorld,
    StepResult,
    WorldFactory,
    check_vector_config,
    make_factory,
    normalize_fields,
)
from colonylab.envs.mujoco._render import make_renderer, tint_done

__all__ = ["AntConfig", "AntWorld", "ant_xml_path"]


def _mujoco():
    """Import ``mujoco`` (the ``colonylab[mujoco]`` extra) with a clear error."""
    try:
        import mujoco
    except ImportError as exc:  # pragma: no cover - mujoco is installed in CI
        raise ImportError("the Ant world needs MuJoCo: pip install 'colonylab[mujoco]'") from exc
    return mujoco


def ant_xml_path() -> Path:
    """Gymnasium's ``ant.xml`` in the installed ``gymnasium`` package (not copied here)."""
    import gymnasium

    path = Path(gymnasium.__file__).resolve().parent / "envs" / "mujoco" / "assets" / "ant.xml"
    if not path.is_file():
        raise FileNotFoundError(
            f"Gymnasium's Ant model is not at {path}; install gymnasium>=1.0 with its "
            "MuJoCo assets (pip install 'gymnasium[mujoco]')"
        )
    return path


@dataclass(frozen=True)
class AntConfig:
    """Configuration of the ``ant`` world (``colony rollout ant``).

    Defaults are the viewer's (4 robots, autoreset); population evaluators build
    worlds through :meth:`AntWorld.factory` (finished episodes freeze).
    """

    num_envs: int = 4
    """Robots stepped together (each its own ``MjData`` of one shared ``MjModel``)."""
    max_episode_steps: int = 1000
    """Truncation limit (Ant-v5: 1000)."""
    autoreset: bool = True
    """Start a new episode as soon as one ends (False: finished robots freeze)."""
    dtype: Literal["float64", "float32"] = "float64"
    """Observation precision; float64 is Gymnasium's (``torch.float32`` accepted too)."""
    device: str = "cpu"
    """Torch device of the observations (physics runs on the CPU)."""
    seed: int | None = None
    """Seed of the world's generator (``reset()`` without a seed and autoreset draws use
    it); None: fresh entropy."""
    validate_actions: bool = True
    """Check that actions are finite and within [-1, 1] (shape and dtype are always
    checked)."""
    render_envs: int = 4
    """Robots drawn by the viewer, one tracking camera each."""
    frame_skip: int = 5
    """MuJoCo steps per env step (Ant-v5: 5)."""
    forward_reward_weight: float = 1.0
    """Ant-v5's weight of the forward reward."""
    ctrl_cost_weight: float = 0.5
    """Ant-v5's weight of the control cost."""
    contact_cost_weight: float = 5e-4
    """Ant-v5's weight of the contact cost."""
    healthy_reward: float = 1.0
    """Ant-v5's reward per healthy step."""
    healthy_z_range: tuple[float, float] = (0.2, 1.0)
    """Torso heights of a healthy robot."""
    reset_noise_scale: float = 0.1
    """Ant-v5's reset noise."""

    def __post_init__(self) -> None:
        check_vector_config(self, frame_skip=1)
        normalize_fields(self, healthy_z_range=tuple)
        for name in (
            "forward_reward_weight",
            "ctrl_cost_weight",
            "contact_cost_weight",
            "healthy_reward",
            "reset_noise_scale",
        ):
            check_float(name, getattr(self, name))
        low, high = (self.healthy_z_range + (None, None))[:2]
        ok = len(self.healthy_z_range) == 2
        try:
            ok = ok and math.isfinite(low) and math.isfinite(high) and low < high
        except TypeError:
            ok = False
        if not ok:
            raise ValueError(
                f"healthy_z_range must be (low, high) with low < high, got {self.healthy_z_range!r}"
            )


class AntWorld(SeededVectorWorld):
    """``config.num_envs`` Gymnasium ``Ant-v5`` robots stepped together.

    Args:
        config: An :class:`AntConfig` (default: its defaults); every field is described
            there.

    Raises:
        ValueError: (from the config) a bad size, dtype, coefficient or range.
    """

    metadata: dict[str, Any] = {
        "name": "colonylab/Ant-v0",
        "render_fps": 20,
        "render_modes": ["rgb_array"],
    }
    policies: tuple[str, ...] = ("random", "noop")
    """Scripted policies of :meth:`policy` (``noop``: no torque). Learned walkers live
    in :mod:`colonylab.agents`; a world holds no weights."""
    obs_dim = 27
    action_dim = 8

    def __init__(self, config: AntConfig | None = None) -> None:
        config = config if config is not None else AntConfig()
        self.config = config
        num_envs = config.num_envs
        frame_skip = config.frame_skip
        low, high = config.healthy_z_range
        mujoco = _mujoco()
        self._mj = mujoco
        self.model = mujoco.MjModel.from_xml_path(str(ant_xml_path()))
        self.model.vis.quality.shadowsize = 0
        self.num_envs = num_envs
        self.device = torch.device(config.device)
        self.dtype = torch.float64 if config.dtype == "float64" else torch.float32
        self.max_episode_steps = config.max_episode_steps
        self.autoreset = bool(config.autoreset)
        self.validate_actions = bool(config.validate_actions)
        self.render_envs = config.render_envs
        self.frame_skip = frame_skip
        self.dt = float(self.model.opt.timestep) * frame_skip
        self.forward_reward_weight = float(config.forward_reward_weight)
        self.ctrl_cost_weight = float(config.ctrl_cost_weight)
        self.contact_cost_weight = float(config.contact_cost_weight)
        self.healthy_reward = float(config.healthy_reward)
        self.healthy_z_range = (float(low), float(high))
        self.reset_noise_scale = float(config.reset_noise_scale)
        self._rng = np.random.default_rng(config.seed)
        self.datas = [mujoco.MjData(self.model) for _ in range(num_envs)]
        """One ``mujoco.MjData`` per robot: the physics state (stepped in place)."""
        self.init_qpos = self.datas[0].qpos.copy()
        self.init_qvel = self.datas[0].qvel.copy()
        nq, nv = self.model.nq, self.model.nv
        self.qpos = np.zeros((num_envs, nq))
        """``float64[N, 15]`` positions after the last step (a copy of the datas')."""
        self.qvel = np.zeros((num_envs, nv))
        """``float64[N, 14]`` velocities after the last step."""
        self.elapsed = np.zeros(num_envs, dtype=np.int64)
        """``[N]`` steps taken in the current episode."""
        self.done = np.zeros(num_envs, dtype=bool)
        """``[N]`` finished (frozen) episodes; always False with ``autoreset``."""
        self.episode_return = np.zeros(num_envs)
        """``[N]`` return of the current episode so far."""
        self.step_count = 0
        self.default_policy: Callable[[Tensor], Any] | None = None
        """Called with the observation when ``step()`` gets no actions (the viewer does that)."""
        self.episodes_finished = 0
        self._recent_returns: deque[float] = deque(maxlen=100)
        self._last_x_velocity = np.zeros(num_envs)
        self._ready = False
        self._renderer: Any = None
        self._camera: Any = None
        self._render_size = (240, 240)

    # -- reset ----------------------------------------------------------------------------------
    def reset(
        self,
        seed: int | Sequence[int] | np.ndarray | Tensor | None = None,
        options: dict[str, Any] | None = None,
    ) -> Tensor:
        """Start every robot's episode (``Ant-v5.reset`` noise around the standing pose).

        Args:
            seed: None (the world's generator), an integer (one generator for all; env 0
                starts as ``gym.make("Ant-v5").reset(seed=seed)``), or ``N`` integers
                >= 0 (env ``n`` starts as ``gym.make("Ant-v5").reset(seed=seed[n])``).
            options: unused (Gymnasium's signature).

        Returns:
            ``[N, 27]`` observation in :attr:`dtype` on :attr:`device`.
        """
        draws = self._seeded_draws(seed, self._draw)
        qpos = np.concatenate([d[0] for d in draws])
        qvel = np.concatenate([d[1] for d in draws])
        self._start(np.arange(self.num_envs), qpos, qvel)
        self._begin()
        return self._obs()

    def _draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` starts ``(qpos [n, 15], qvel [n, 14])``, drawn robot by robot as Ant-v5."""
        nq, nv = self.model.nq, self.model.nv
        scale = self.reset_noise_scale
        qpos, qvel = np.empty((n, nq)), np.empty((n, nv))
        for i in range(n):
            qpos[i] = self.init_qpos + rng.uniform(low=-scale, high=scale, size=nq)
            qvel[i] = self.init_qvel + scale * rng.standard_normal(nv)
        return qpos, qvel

    def _start(self, envs: np.ndarray, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Put robots ``envs`` at ``qpos``/``qvel`` as Gymnasium's reset does
        (``mj_resetData``, set the state, ``mj_forward``)."""
        mj, model = self._mj, self.model
        for k, i in enumerate(envs):
            data = self.datas[i]
            mj.mj_resetData(model, data)
            data.qpos[:] = qpos[k]
            data.qvel[:] = qvel[k]
            mj.mj_forward(model, data)
            self.qpos[i] = data.qpos
            self.qvel[i] = data.qvel

    def _begin(self) -> None:
        self.elapsed = np.zeros(self.num_envs, dtype=np.int64)
        self.done = np.zeros(self.num_envs, dtype=bool)
        self.episode_return = np.zeros(self.num_envs)
        self._last_x_velocity = np.zeros(self.num_envs)
        self.step_count = 0
        self._ready = True

    def set_state(
        self, qpos: np.ndarray | Tensor | Sequence[Any], qvel: np.ndarray | Tensor | Sequence[Any]
    ) -> Tensor:
        """Start episodes from the given ``qpos [N, 15]`` and ``qvel [N, 14]`` (as
        Gymnasium's ``env.unwrapped.set_state`` after a reset); counters restart.
        Returns the ``[N, 27]`` observation."""
        q = np.asarray(qpos.detach().cpu() if isinstance(qpos, Tensor) else qpos, dtype=float)
        v = np.asarray(qvel.detach().cpu() if isinstance(qvel, Tensor) else qvel, dtype=float)
        n, nq, nv = self.num_envs, self.model.nq, self.model.nv
        if q.shape != (n, nq) or v.shape != (n, nv):
            raise ValueError(
                f"set_state needs qpos of shape ({n}, {nq}) and qvel of shape ({n}, {nv}), "
                f"got {q.shape} and {v.shape}"
            )
        if not (np.isfinite(q).all() and np.isfinite(v).all()):
            raise ValueError("set_state needs finite qpos and qvel")
        self._start(np.arange(n), q, v)
        self._begin()
        return self._obs()

    @classmethod
    def factory(cls, config: AntConfig | None = None, **overrides: Any) -> WorldFactory:
        """``factory(num_envs=N, device=d) -> world`` for population evaluators: the
        ``config`` (default: finished episodes freeze, ``autoreset=False``) with
        ``overrides``, e.g. ``AntWorld.factory(dtype="float32", validate_actions=False)``."""
        return make_factory(cls, AntConfig, config, **overrides)

    def subset(self, index: Tensor | np.ndarray | Sequence[int]) -> AntWorld:
        """A new world of the robots ``index`` (copies of their ``MjData``, step counters,
        returns and done flags, in that order); this world is unchanged and the two
        share the generator.

        Population evaluators drop finished episodes this way, so the work per step
        follows the number of episodes still running.
        """
        idx = torch.as_tensor(index, dtype=torch.int64).reshape(-1).cpu().numpy()
        if idx.size < 1:
            raise ValueError("subset needs at least one env index")
        if ((idx < 0) | (idx >= self.num_envs)).any():
            raise ValueError(f"subset indices must lie in [0, {self.num_envs}), got {idx.tolist()}")
        world = copy.copy(self)  # same model and settings
        world.num_envs = int(idx.size)
        world.config = dataclasses.replace(self.config, num_envs=int(idx.size))
        world.datas = [copy.copy(self.datas[i]) for i in idx]  # MjData copies (mj_copyData)
        world.qpos, world.qvel = self.qpos[idx].copy(), self.qvel[idx].copy()
        world.elapsed, world.done = self.elapsed[idx].copy(), self.done[idx].copy()
        world.episode_return = self.episode_return[idx].copy()
        world._last_x_velocity = self._last_x_velocity[idx].copy()
        world._recent_returns = deque(self._recent_returns, maxlen=100)
        world._renderer = world._camera = None
        return world

    # -- step -----------------------------------------------------------------------------------
    def step(
        self, actions: Tensor | np.ndarray | Sequence[Sequence[float]] | None = None
    ) -> StepResult:
        """Advance every running robot one step (``frame_skip`` MuJoCo steps).

        Args:
            actions: ``[N, 8]`` floats in ``[-1, 1]``; None: the :attr:`default_policy`'s.

        Returns:
            ``StepResult(obs [N, 27], reward float32[N], terminated bool[N],
            truncated bool[N], info)`` (tensors on :attr:`device`; ``info`` holds the
            reward terms as float64 NumPy arrays; with ``autoreset``
            ``info["final_obs"]`` is the ``[N, 27]`` observation before any reset).

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
                    f"[{self.num_envs}, 8] actions in [-1, 1] or set default_policy"
                )
            actions = self.default_policy(self._obs())
        action = self._check_actions(actions)
        n = self.num_envs
        active = np.ones(n, dtype=bool) if self.autoreset else ~self.done
        xy_before = np.zeros((n, 2))
        xy_after = np.zeros((n, 2))
        contact = np.zeros(n)
        mj, model, nstep = self._mj, self.model, self.frame_skip
        low, high = -1.0, 1.0
        for i in np.flatnonzero(active):
            data = self.datas[i]
            xy_before[i] = data.xpos[1, :2]
            data.ctrl[:] = action[i]
            mj.mj_step(model, data, nstep=nstep)
            mj.mj_rnePostConstraint(model, data)
            xy_after[i] = data.xpos[1, :2]
            self.qpos[i] = data.qpos
            self.qvel[i] = data.qvel
            contact[i] = np.square(np.clip(data.cfrc_ext, low, high)).sum()
        xy_velocity = (xy_after - xy_before) / self.dt
        z = self.qpos[:, 2]
        finite = np.isfinite(self.qpos).all(axis=1) & np.isfinite(self.qvel).all(axis=1)
        healthy = finite & (self.healthy_z_range[0] <= z) & (z <= self.healthy_z_range[1])
        forward = self.forward_reward_weight * xy_velocity[:, 0]
        survive = self.healthy_reward * healthy
        ctrl = self.ctrl_cost_weight * np.square(action).sum(axis=1)
        contact_cost = self.contact_cost_weight * contact
        reward = (forward + survive) - (ctrl + contact_cost)
        terminated = ~healthy
        elapsed = self.elapsed + 1
        truncated = elapsed >= self.max_episode_steps
        info: dict[str, Any] = {
            "reward_forward": np.where(active, forward, 0.0),
            "reward_ctrl": np.where(active, -ctrl, 0.0),
            "reward_contact": np.where(active, -contact_cost, 0.0),
            "reward_survive": np.where(active, survive, 0.0),
            "x_position": self.qpos[:, 0].copy(),
            "y_position": self.qpos[:, 1].copy(),
            "x_velocity": np.where(active, xy_velocity[:, 0], 0.0),
            "y_velocity": np.where(active, xy_velocity[:, 1], 0.0),
        }
        self._last_x_velocity = info["x_velocity"]
        terminated &= active
        truncated &= active
        reward = np.where(active, reward, 0.0)
        self.episode_return = self.episode_return + reward
        self.elapsed = np.where(active, elapsed, self.elapsed)
        ended = terminated | truncated
        if ended.any():
            self.episodes_finished += int(ended.sum())
            self._recent_returns.extend(float(r) for r in self.episode_return[ended])
        if self.autoreset:
            info["final_obs"] = self._obs()
            if ended.any():
                envs = np.flatnonzero(ended)
                qpos, qvel = self._draw(self._rng, envs.size)
                self._start(envs, qpos, qvel)
                self.elapsed[envs] = 0
                self.episode_return[envs] = 0.0
        else:
            self.done = self.done | ended
        self.step_count += 1
        return StepResult(
            self._obs(),
            torch.as_tensor(reward, dtype=torch.float32, device=self.device),
            torch.as_tensor(terminated, device=self.device),
            torch.as_tensor(truncated, device=self.device),
            info,
        )

    def _obs(self) -> Tensor:
        obs = np.concatenate((self.qpos[:, 2:], self.qvel), axis=1)
        return torch.as_tensor(obs, dtype=self.dtype, device=self.device)

    def observe(self) -> Tensor:
        """The current ``[N, 27]`` observation."""
        return self._obs()

    def _check_actions(self, actions: Any) -> np.ndarray:
        """``actions`` as float64 ``[N, 8]`` NumPy, or a ``ValueError`` naming what is wrong."""
        if isinstance(actions, Tensor):
            if not actions.is_floating_point():
                raise ValueError(
                    f"Ant actions must be floats in [-1, 1], got dtype {actions.dtype}; "
                    "squash a policy's output with torch.tanh"
                )
            arr = actions.detach().cpu().double().numpy()
        else:
            arr = np.asarray(actions)
            if arr.dtype.kind != "f":
                raise ValueError(
                    f"Ant actions must be floats in [-1, 1], got dtype {arr.dtype}; "
                    "squash a policy's output with torch.tanh"
                )
            arr = arr.astype(np.float64, copy=False)
        if arr.shape != (self.num_envs, self.action_dim):
            raise ValueError(
                f"actions must have shape ({self.num_envs}, {self.action_dim}) (one row of "
                f"8 motor controls per env), got shape {arr.shape}"
            )
        if self.validate_actions:
            bad = ~(np.abs(arr) <= 1.0)  # NaN counts as bad
            if bad.any():
                i, j = np.argwhere(bad)[0]
                raise ValueError(
                    f"action {arr[i, j]} for env {i} (motor {j}) is outside [-1, 1]; squash "
                    "with torch.tanh or clamp(-1, 1)"
                )
        return arr

    # -- policies for the CLI ---------------------------------------------------------------------
    def policy(self, name: str, seed: int = 0) -> Callable[[Tensor], Tensor]:
        """A scripted policy ``obs [N, 27] -> actions [N, 8]`` in ``[-1, 1]``.

        ``noop``: no torque; ``random``: uniform in ``[-1, 1]`` from a generator seeded
        with ``seed``. (The learned walker is an agent: ``colonylab.agents``.)
        """
        if name == "noop":
            return lambda obs: torch.zeros(obs.shape[0], 8, dtype=obs.dtype, device=obs.device)
        if name == "random":
            gen = torch.Generator().manual_seed(seed)

            def random_policy(obs: Tensor) -> Tensor:
                u = torch.rand(obs.shape[0], 8, generator=gen, dtype=torch.float64)
                return (2.0 * u - 1.0).to(device=obs.device, dtype=obs.dtype)

            return random_policy
        raise ValueError(f"unknown Ant policy {name!r}; choose noop or random")

    # -- viewer ---------------------------------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        """Running robots, their mean x position and x velocity (last step), finished
        episodes and the mean return of the last 100."""
        out: dict[str, float] = {
            "envs": self.num_envs,
            "running": int((~self.done).sum()),
            "mean_x": float(self.qpos[:, 0].mean()),
            "mean_x_velocity": float(self._last_x_velocity.mean()),
            "episodes_finished": self.episodes_finished,
        }
        if self._recent_returns:
            out["mean_return_last_100"] = float(np.mean(self._recent_returns))
        return out

    def render_rgb(self, panel_width: int = 240, panel_height: int = 240) -> np.ndarray:
        """The first :attr:`render_envs` robots, each from a camera tracking its torso,
        tiled as a grid, ``uint8[H, W, 3]`` (finished episodes tinted red).

        Needs an OpenGL context: headless, set ``MUJOCO_GL=egl`` (or ``osmesa``) before
        MuJoCo is first imported.

        Raises:
            RuntimeError: MuJoCo could not open a rendering context (the message says
                which ``MUJOCO_GL`` was tried).
        """
        mj = self._mj
        if self._renderer is None or self._render_size != (panel_height, panel_width):
            if self._renderer is not None:
                self._renderer.close()
            self._renderer = make_renderer(mj, self.model, panel_height, panel_width)
            self._render_size = (panel_height, panel_width)
            camera = mj.MjvCamera()
            camera.type = mj.mjtCamera.mjCAMERA_TRACKING
            camera.trackbodyid = 1
            camera.distance = 4.0
            camera.elevation = -25.0
            camera.azimuth = 135.0
            self._camera = camera
        shown = min(self.num_envs, self.render_envs)
        cols = math.ceil(math.sqrt(shown))
        rows = math.ceil(shown / cols)
        image = np.full((rows * panel_height, cols * panel_width, 3), 200, dtype=np.uint8)
        for k in range(shown):
            self._renderer.update_scene(self.datas[k], camera=self._camera)
            pixels = self._renderer.render()
            if self.done[k]:
                pixels = tint_done(pixels)
            r, c = divmod(k, cols)
            image[
                r * panel_height : (r + 1) * panel_height, c * panel_width : (c + 1) * panel_width
            ] = pixels
        return image

    def close(self) -> None:
        """Free the renderer's OpenGL context."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
