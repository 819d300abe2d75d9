"""Modular bodies, batched: ``N`` planar robots, of one or many bodies, stepped together.

The world of Shared Modular Policies (Huang, Mordatch & Pathak, ICML 2020): every
robot is a tree of limbs (:mod:`colonylab.envs.mujoco.morphology`), seen limb by limb
and driven by one torque per limb, padded to the largest body with a mask.

=====================  ==================================================================
World id               ``colonylab/ModularWalkers-v0`` (alias ``modular-walkers``; class
                       :class:`ModularWorld`, config :class:`ModularConfig`); robot ``n``
                       has body ``bodies[n % len(bodies)]`` (default: the 12 Walker++)
Model                  one MJCF per body from the morphology generator (RK4, timestep
                       0.002 s, limb-floor contacts only), with sensors for every limb's
                       frame position, quaternion, linear and angular velocity
Physics                robots grouped by body, stepped by MuJoCo's ``rollout`` for
                       ``frame_skip`` = 4 MuJoCo steps per env step (``dt`` 0.008 s);
                       with ``threads`` >= 2 each thread steps its share of the robots
                       (``step_threads``)
Observation            ``[N, L, D]`` with ``L`` the largest body's limb count and ``D`` =
                       15 (+ the limb-type one-hot on a walker-only world), limbs in
                       depth-first order from the torso; per limb as modular-rl: body
                       position with the torso's x subtracted (3), linear velocity
                       clipped to +-10 (3), angular velocity (3), orientation as an
                       exp-map (3), joint angle normalised to [0, 1] in its range, the
                       range as ``(180 + deg) / 360`` (2; torso: 0, 0, 0). Padding rows
                       are 0; :attr:`limb_mask` ``bool[N, L]`` marks the real limbs
Actions                floats in ``[-1, 1]``, ``[N, L]``: one torque per limb slot; the
                       torso's slot and padding are ignored (:attr:`action_mask`)
Reward                 ``forward + survive - ctrl`` (float32 ``[N]``): forward = the
                       ``rootx`` displacement / ``dt``, survive = 1, ctrl = 0.001 *
                       ``sum(a^2)`` over the motors; each term in ``info``
Termination            the torso's height outside its body's health band or its pitch
                       outside ``+-healthy_angle`` (per family; walkers: modular-rl's
                       ``0.8 < z < 2.0`` for a 1.25 m torso, as offsets from the start
                       height, ``|pitch| < 1``; others: below ``healthy_z_fraction`` of
                       the start height; cheetahs never terminate), or a non-finite
                       state (``terminate=False``: never)
Truncation             after ``max_episode_steps`` (1000) steps
Reset                  ``qpos0 + U(-s, s)``, ``qvel = U(-s, s)`` with ``s`` = 0.005
                       (modular-rl)
info                   ``reward_forward``, ``reward_ctrl``, ``reward_survive``,
                       ``x_position``, ``x_velocity`` (float64 ``[N]`` NumPy arrays)
=====================  ==================================================================

The limb poses and velocities after a step are MuJoCo's sensor values, which
``mj_step`` computes at the start of its step: those of the state before the last
physics sub-step (0.002 s earlier; modular-rl read ``data.xpos`` after ``mj_step``, also
a state inside the last sub-step); the joint angles are the final ones. ``rollout`` carries no solver warm
start between env steps. Seeds: ``reset(seed=s)`` draws robot ``0 .. N-1``'s noise in
turn from ``default_rng(s)``; ``reset(seed=[s_0, ...])`` gives robot ``n`` its own
generator. Finished episodes freeze (not simulated) or, with ``autoreset``, restart in
the same step with ``info["final_obs"]``.

Example::

    world = ModularWorld(ModularConfig(num_envs=24, autoreset=False))
    obs = world.reset(seed=0)             # float32[24, 7, 19], world.limb_mask bool[24, 7]
    obs, reward, terminated, truncated, info = world.step(torch.tanh(out))  # out [24, 7]
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from colonylab._checks import check_float, check_int
from colonylab.envs.base import (
    SeededVectorWorld,
    StepResult,
    WorldFactory,
    check_vector_config,
    make_factory,
    no_policy,
    normalize_fields,
)
from colonylab.envs.mujoco._render import make_renderer, tint_done
from colonylab.envs.mujoco.morphology import (
    BodySpec,
    body,
    body_names,
    to_mjcf,
    torso_height,
)

__all__ = ["ModularConfig", "ModularWorld", "quat_to_expmap"]

LIMB_FEATURES = 15
"""Numbers per limb before the limb-type one-hot."""


def _mujoco():
    try:
        import mujoco
    except ImportError as exc:  # pragma: no cover
        raise ImportError("modular bodies need MuJoCo: pip install 'colonylab[mujoco]'") from exc
    return mujoco


def quat_to_expmap(quat: np.ndarray) -> np.ndarray:
    """Unit quaternions ``[..., 4]`` (w, x, y, z) -> exp-maps ``[..., 3]`` (axis * angle,
    angle in ``[0, pi]``)."""
    # norms as sqrt(sum(x * x)): numpy's own norm, without its dispatch (a hot path)
    q = quat / np.sqrt(np.add.reduce(quat * quat, axis=-1, keepdims=True))
    w, v = q[..., :1], q[..., 1:]
    sin_half = np.sqrt(np.add.reduce(v * v, axis=-1, keepdims=True))
    theta = 2.0 * np.arctan2(sin_half, w)  # in [0, 2 pi]
    flip = theta > np.pi
    theta = np.where(flip, 2.0 * np.pi - theta, theta)
    axis = np.where(sin_half > 1e-12, v / np.maximum(sin_half, 1e-12), 0.0)
    axis = np.where(flip, -axis, axis)
    return axis * theta


@dataclass(frozen=True)
class ModularConfig:
    """Configuration of the ``modular-walkers`` world."""

    num_envs: int = 12
    """Robots stepped together; robot ``n`` has body ``bodies[n % len(bodies)]``."""
    bodies: tuple[str, ...] = tuple(body_names("walker"))
    """Named bodies (``walker_7_main``, ``cheetah_4_back`` ...; see
    :mod:`~colonylab.envs.mujoco.morphology`)."""
    max_episode_steps: int = 1000
    """Truncation limit (modular-rl: 1000)."""
    autoreset: bool = True
    """Start a new episode as soon as one ends (False: finished robots freeze)."""
    dtype: Literal["float64", "float32"] = "float32"
    """Observation precision."""
    device: str = "cpu"
    """Torch device of the observations (physics runs on the CPU)."""
    seed: int | None = None
    """Seed of the world's generator; None: fresh entropy."""
    validate_actions: bool = True
    """Check that the motors' actions are finite and within [-1, 1]."""
    render_envs: int = 12
    """Robots drawn side by side by :meth:`ModularWorld.render_rgb`."""
    frame_skip: int = 4
    """MuJoCo steps per env step (modular-rl: 4)."""
    threads: int = 1
    """Threads of MuJoCo's ``rollout`` (0: the calling thread only)."""
    step_threads: Literal["rollout", "groups"] = "groups"
    """With ``threads`` >= 2: ``groups`` gives each of ``threads`` Python threads its
    share of the robots (all bodies, one hand-off per step); ``rollout`` splits every
    body's robots over MuJoCo's thread pool (one hand-off per body and step). Same
    results; on a quiet 2-core machine ``groups`` was the faster (256 mixed walkers:
    20.1k vs 16.5k env-steps/s), under heavy load it can be the slower."""
    terminate: bool = True
    """End episodes of fallen robots (the family's health check)."""
    limb_types: bool | None = None
    """Append the limb-type one-hot (walker kinds: torso, thigh, leg, foot) to every limb's
    observation; None: when every body is a walker (as modular-rl)."""
    ctrl_cost_weight: float = 1e-3
    """Weight of ``sum(a^2)`` (modular-rl: 0.001)."""
    healthy_reward: float = 1.0
    """Reward per step alive (modular-rl: 1)."""
    reset_noise_scale: float = 0.005
    """Half-width of the uniform reset noise on qpos and qvel (modular-rl: 0.005)."""

    def __post_init__(self) -> None:
        check_vector_config(self, frame_skip=1)
        normalize_fields(self, bodies=lambda b: (b,) if isinstance(b, str) else tuple(b))
        if not self.bodies:
            raise ValueError("bodies must name at least one body, got an empty list")
        for name in self.bodies:
            body(name)  # one-line ValueError for an unknown name
        check_int("threads", self.threads, 0, 64)
        if self.step_threads not in ("groups", "rollout"):
            raise ValueError(f"step_threads must be groups or rollout, got {self.step_threads!r}")
        for name in ("ctrl_cost_weight", "healthy_reward", "reset_noise_scale"):
            check_float(name, getattr(self, name))


class _Group:
    """Robots of one body: one MjModel, its rollout datas and index maps."""

    def __init__(self, mj: Any, spec: BodySpec, robots: np.ndarray, nthread: int):
        self.spec = spec
        self.robots = robots
        self.model = mj.MjModel.from_xml_string(to_mjcf(spec, sensors=True))
        self.datas = [mj.MjData(self.model) for _ in range(max(1, nthread))]
        self.scratch = mj.MjData(self.model)
        self.state_spec = mj.mjtState.mjSTATE_FULLPHYSICS
        self.nstate = mj.mj_stateSize(self.model, self.state_spec)
        self.nq, self.nv, self.nu = self.model.nq, self.model.nv, self.model.nu
        self.qpos0 = self.scratch.qpos.copy()
        self.z0 = torso_height(spec)
        if spec.healthy_z_band is not None:
            self.z_band: tuple[float, float] | None = (
                self.z0 + spec.healthy_z_band[0],
                self.z0 + spec.healthy_z_band[1],
            )
        elif spec.healthy_z_fraction is not None:
            self.z_band = (spec.healthy_z_fraction * self.z0, math.inf)
        else:
            self.z_band = None
        self.num_limbs = spec.num_limbs
        order = spec.order()
        limbs = [spec.limbs[i] for i in order]
        low = np.array([0.0] + [lb.joint_range[0] for lb in limbs[1:]])
        high = np.array([0.0] + [lb.joint_range[1] for lb in limbs[1:]])
        self.range_low, self.range_high = low, high
        self.kinds = [lb.kind for lb in limbs]
        names = [lb.name for lb in limbs]
        self.parents = np.array([-1] + [names.index(lb.parent) for lb in limbs[1:]], dtype=np.int64)
        self.limb_names = names
        self._models: list[Any] = []

    def models(self, count: int) -> list[Any]:
        """``count`` references to the model (``rollout`` takes one per trajectory)."""
        if len(self._models) < count:
            self._models = [self.model] * count
        return self._models[:count]


class ModularWorld(SeededVectorWorld):
    """``config.num_envs`` planar robots of the configured bodies stepped together.

    Args:
        config: a :class:`ModularConfig` (default: its defaults).

    Raises:
        ValueError: (from the config) a bad size, an unknown body name.
    """

    metadata: dict[str, Any] = {
        "name": "colonylab/ModularWalkers-v0",
        "render_fps": 30,
        "render_modes": ["rgb_array"],
    }
    policies: tuple[str, ...] = ("random", "noop")
    """Scripted policies (``noop``: no torque); learned ones live in ``agents.modular``."""

    def __init__(self, config: ModularConfig | None = None) -> None:
        config = config if config is not None else ModularConfig()
        self.config = config
        mj = _mujoco()
        self._mj = mj
        from mujoco import rollout

        n = config.num_envs
        self.num_envs = n
        self.device = torch.device(config.device)
        self.dtype = torch.float64 if config.dtype == "float64" else torch.float32
        self.max_episode_steps = config.max_episode_steps
        self.autoreset = bool(config.autoreset)
        self.validate_actions = bool(config.validate_actions)
        self.render_envs = config.render_envs
        self.frame_skip = config.frame_skip
        self.threads = config.threads
        self.body_names: list[str] = [config.bodies[k % len(config.bodies)] for k in range(n)]
        """Body of every robot."""
        self.specs = [body(name) for name in self.body_names]
        unique = list(dict.fromkeys(self.body_names))
        self.groups = [
            _Group(
                mj,
                body(name),
                np.array([k for k in range(n) if self.body_names[k] == name]),
                config.threads,
            )
            for name in unique
        ]
        self.dt = float(self.groups[0].model.opt.timestep) * self.frame_skip
        self.max_limbs = max(g.num_limbs for g in self.groups)
        walkers_only = all(s.family == "walker" for s in self.specs)
        self.limb_types = walkers_only if config.limb_types is None else bool(config.limb_types)
        self.kinds: tuple[str, ...] = ("torso", "thigh", "leg", "foot") if self.limb_types else ()
        self.obs_dim = LIMB_FEATURES + len(self.kinds)
        L = self.max_limbs
        self.limb_mask = np.zeros((n, L), dtype=bool)
        """``bool[N, L]``: real limbs (False: padding)."""
        self.action_mask = np.zeros((n, L), dtype=bool)
        """``bool[N, L]``: limbs with a motor (not the torso, not padding)."""
        self.parents = np.full((n, L), -1, dtype=np.int64)
        """``int64[N, L]``: each limb's parent slot (-1: torso or padding)."""
        self.limb_kind = np.full((n, L), -1, dtype=np.int64)
        """``int64[N, L]``: index of each limb's kind in :attr:`kinds` (-1: none)."""
        for g in self.groups:
            self.limb_mask[g.robots, : g.num_limbs] = True
            self.action_mask[g.robots, 1 : g.num_limbs] = True
            self.parents[g.robots, : g.num_limbs] = g.parents
            if self.limb_types:
                kinds = [self.kinds.index(k) if k in self.kinds else -1 for k in g.kinds]
                self.limb_kind[g.robots, : g.num_limbs] = kinds
        self._pool = rollout.Rollout(nthread=config.threads)
        self._workers: ThreadPoolExecutor | None = None
        self._worker_pools: list[Any] = []
        self._worker_datas: list[list[list[Any]]] = []
        if config.threads >= 2 and config.step_threads == "groups":
            # one Python thread per core, each stepping its share of the groups with
            # its own single-threaded rollout (MuJoCo releases the GIL): one hand-off
            # per env step instead of one per body
            self._workers = ThreadPoolExecutor(config.threads)
            self._worker_pools = [rollout.Rollout(nthread=0) for _ in range(config.threads)]
            self._worker_datas = [
                [[mj.MjData(g.model)] for g in self.groups] for _ in range(config.threads)
            ]
        self._rng = np.random.default_rng(config.seed)
        self.states = [np.zeros((g.robots.size, g.nstate)) for g in self.groups]
        """Per group ``float64[n_g, nstate]``: MuJoCo's full physics state of its robots."""
        self._sensors = [np.zeros((g.robots.size, g.model.nsensordata)) for g in self.groups]
        self._obs_np = np.zeros((n, L, self.obs_dim))
        self._static_obs = [self._static_block(g) for g in self.groups]
        self.x = np.zeros(n)
        """``float64[N]`` torso x of every robot."""
        self.elapsed = np.zeros(n, dtype=np.int64)
        self.done = np.zeros(n, dtype=bool)
        self.episode_return = np.zeros(n)
        self.step_count = 0
        self.episodes_finished = 0
        self.default_policy: Callable[[Tensor], Any] | None = None
        self._recent_returns: deque[float] = deque(maxlen=100)
        self._last_x_velocity = np.zeros(n)
        self._ready = False
        self._renderer: Any = None
        self._row: Any = None

    # -- reset ----------------------------------------------------------------------------------
    def reset(
        self,
        seed: int | Sequence[int] | np.ndarray | Tensor | None = None,
        options: dict[str, Any] | None = None,
    ) -> Tensor:
        """Start every robot's episode (uniform noise around the standing pose).

        Args:
            seed: None (the world's generator), an integer (one generator draws robot
                0, 1, ... in turn) or ``N`` integers >= 0 (one generator per robot).
            options: unused (Gymnasium's signature).

        Returns:
            ``[N, L, D]`` observation (see the module table).
        """
        n = self.num_envs
        if seed is None:
            rngs = [self._rng] * n
        elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            if seed < 0:
                raise ValueError(f"seed must be >= 0, got {seed}")
            self._rng = np.random.default_rng(int(seed))
            rngs = [self._rng] * n
        else:
            seeds = self._check_seeds(seed)
            rngs = [np.random.default_rng(s) for s in seeds]
            self._rng = np.random.default_rng(seeds)
        self._start(np.arange(n), rngs)
        self.elapsed = np.zeros(n, dtype=np.int64)
        self.done = np.zeros(n, dtype=bool)
        self.episode_return = np.zeros(n)
        self._last_x_velocity = np.zeros(n)
        self.step_count = 0
        self._ready = True
        return self._obs()

    def _start(self, robots: np.ndarray, rngs: Sequence[np.random.Generator]) -> None:
        """Draw fresh starts for ``robots`` (in that order, robot ``robots[k]`` from
        ``rngs[k]``) and compute their observations (``mj_forward``)."""
        mj = self._mj
        scale = self.config.reset_noise_scale
        where = self._where()
        for k, r in enumerate(robots):
            gi, row = where[r]
            g = self.groups[gi]
            rng = rngs[k]
            qpos = g.qpos0 + rng.uniform(-scale, scale, size=g.nq)
            qvel = rng.uniform(-scale, scale, size=g.nv)
            d = g.scratch
            mj.mj_resetData(g.model, d)
            d.qpos[:] = qpos
            d.qvel[:] = qvel
            mj.mj_forward(g.model, d)
            mj.mj_getState(g.model, d, self.states[gi][row], g.state_spec)
            self._sensors[gi][row] = d.sensordata
            self._fill_obs(gi, np.array([row]))

    def _where(self) -> list[tuple[int, int]]:
        if not hasattr(self, "_where_cache"):
            out: list[tuple[int, int]] = [(0, 0)] * self.num_envs
            for gi, g in enumerate(self.groups):
                for row, r in enumerate(g.robots):
                    out[r] = (gi, row)
            self._where_cache = out
        return self._where_cache

    # -- observation ----------------------------------------------------------------------------
    def _fill_obs(self, gi: int, rows: np.ndarray) -> None:
        """Observation rows of group ``gi``'s robots ``rows`` from their state and sensors."""
        g = self.groups[gi]
        L = g.num_limbs
        sens = self._sensors[gi][rows].reshape(rows.size, L, 13)
        qpos = self.states[gi][rows, 1 : 1 + g.nq]
        block = np.empty((rows.size, L, self.obs_dim))
        block[:] = self._static_obs[gi]  # joint ranges, limb types: fixed per body
        block[:, :, 0:3] = sens[:, :, 0:3]
        block[:, :, 0] -= sens[:, :1, 0]  # x relative to the torso
        np.clip(sens[:, :, 7:10], -10.0, 10.0, out=block[:, :, 3:6])
        block[:, :, 6:9] = sens[:, :, 10:13]
        block[:, :, 9:12] = quat_to_expmap(sens[:, :, 3:7])
        lo, hi = g.range_low[1:], g.range_high[1:]
        block[:, 1:, 12] = (np.degrees(qpos[:, 3:]) - lo) / (hi - lo)
        self._obs_np[g.robots[rows], :L] = block
        self.x[g.robots[rows]] = qpos[:, 0]

    def _static_block(self, g: _Group) -> np.ndarray:
        """``[L_g, D]``: the observation columns that never change for a body (joint
        range as ``(180 + deg) / 360``, limb-type one-hot); 0 elsewhere."""
        L = g.num_limbs
        out = np.zeros((L, self.obs_dim))
        out[1:, 13] = (180.0 + g.range_low[1:]) / 360.0
        out[1:, 14] = (180.0 + g.range_high[1:]) / 360.0
        if self.limb_types:
            for i, kind in enumerate(g.kinds):
                if kind in self.kinds:
                    out[i, LIMB_FEATURES + self.kinds.index(kind)] = 1.0
        return out

    def _obs(self) -> Tensor:
        return torch.as_tensor(self._obs_np.copy(), dtype=self.dtype, device=self.device)

    def observe(self) -> Tensor:
        """The current ``[N, L, D]`` observation."""
        return self._obs()

    # -- step -----------------------------------------------------------------------------------
    def step(self, actions: Tensor | np.ndarray | Sequence[Any] | None = None) -> StepResult:
        """Advance every running robot one step (``frame_skip`` MuJoCo steps).

        Args:
            actions: ``[N, L]`` floats in ``[-1, 1]`` (torso slot and padding ignored);
                None: the :attr:`default_policy`'s.

        Returns:
            ``StepResult(obs [N, L, D], reward float32[N], terminated bool[N],
            truncated bool[N], info)``.

        Raises:
            ValueError: actions of the wrong shape, dtype or value; the world is unchanged.
            RuntimeError: before the first ``reset``.
        """
        if not self._ready:
            raise RuntimeError("call reset(seed) before step()")
        if actions is None:
            if self.default_policy is None:
                raise ValueError(
                    "step() got no actions and the world has no default_policy; pass "
                    f"[{self.num_envs}, {self.max_limbs}] actions in [-1, 1]"
                )
            actions = self.default_policy(self._obs())
        action = self._check_actions(actions)
        n = self.num_envs
        active = np.ones(n, dtype=bool) if self.autoreset else ~self.done
        x_before = self.x.copy()
        ctrl_sq = np.zeros(n)
        z = np.zeros(n)
        pitch = np.zeros(n)
        finite = np.ones(n, dtype=bool)
        out = (ctrl_sq, z, pitch, finite)
        units = []
        for gi, g in enumerate(self.groups):
            rows = np.flatnonzero(active[g.robots])
            if rows.size:
                units.append((gi, rows))
        if self._workers is None:
            for gi, rows in units:
                chunk = max(1, -(-rows.size // max(1, self.threads)))  # one per thread
                self._advance(gi, rows, action, out, self._pool, self.groups[gi].datas, chunk)
        else:
            jobs = [
                self._workers.submit(self._advance_many, part, action, out, w)
                for w, part in enumerate(self._split(units))
            ]
            for job in jobs:
                job.result()
        x_velocity = (self.x - x_before) / self.dt
        forward = x_velocity
        survive = np.full(n, self.config.healthy_reward)
        ctrl_cost = self.config.ctrl_cost_weight * ctrl_sq
        reward = forward + survive - ctrl_cost
        terminated = ~finite & active
        elapsed = self.elapsed + 1
        truncated = (elapsed >= self.max_episode_steps) & active
        info: dict[str, Any] = {
            "reward_forward": np.where(active, forward, 0.0),
            "reward_ctrl": np.where(active, -ctrl_cost, 0.0),
            "reward_survive": np.where(active, survive, 0.0),
            "x_position": self.x.copy(),
            "x_velocity": np.where(active, x_velocity, 0.0),
        }
        self._last_x_velocity = info["x_velocity"]
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
                robots = np.flatnonzero(ended)
                self._start(robots, [self._rng] * robots.size)
                self.elapsed[robots] = 0
                self.episode_return[robots] = 0.0
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

    def _split(self, units: list[tuple[int, np.ndarray]]) -> list[list[tuple[int, np.ndarray]]]:
        """Cut the (group, rows) units into one contiguous share per worker thread, of
        about equal physics work (robots x degrees of freedom)."""
        cost = [rows.size * self.groups[gi].nv for gi, rows in units]
        share = sum(cost) / len(self._worker_pools)
        parts: list[list[tuple[int, np.ndarray]]] = [[] for _ in self._worker_pools]
        w, filled = 0, 0.0
        for (gi, rows), c in zip(units, cost, strict=True):
            per_robot = c / rows.size
            while rows.size:
                room = share * (w + 1) - filled
                take = rows.size if w == len(parts) - 1 else int(round(room / per_robot))
                take = min(rows.size, max(take, 0))
                if take:
                    parts[w].append((gi, rows[:take]))
                    rows = rows[take:]
                    filled += take * per_robot
                if rows.size:
                    w += 1
        return parts

    def _advance_many(self, part: list, action: np.ndarray, out: tuple, worker: int) -> None:
        pool = self._worker_pools[worker]
        for gi, rows in part:
            self._advance(gi, rows, action, out, pool, self._worker_datas[worker][gi], rows.size)

    def _advance(self, gi: int, rows: np.ndarray, action: np.ndarray, out: tuple, pool: Any,
                 datas: list, chunk: int) -> None:  # fmt: skip
        """Step group ``gi``'s robots ``rows`` by ``frame_skip`` MuJoCo steps; write their
        state, observation, control cost, height, pitch and health (disjoint rows: safe
        from several threads)."""
        ctrl_sq, z, pitch, finite = out
        g = self.groups[gi]
        robots = g.robots[rows]
        ctrl = action[robots, 1 : g.num_limbs]
        ctrl_sq[robots] = np.square(ctrl).sum(axis=1)
        control = np.ascontiguousarray(np.repeat(ctrl[:, None, :], self.frame_skip, axis=1))
        state = np.empty((rows.size, self.frame_skip, g.nstate))
        sensordata = np.empty((rows.size, self.frame_skip, g.model.nsensordata))
        pool.rollout(
            g.models(rows.size),
            datas,
            np.ascontiguousarray(self.states[gi][rows]),
            control,
            nstep=self.frame_skip,
            state=state,
            sensordata=sensordata,
            skip_checks=True,  # shapes are built right here
            chunk_size=chunk,
        )
        self.states[gi][rows] = state[:, -1]
        self._sensors[gi][rows] = sensordata[:, -1]
        self._fill_obs(gi, rows)
        qpos = state[:, -1, 1 : 1 + g.nq]
        z[robots] = g.z0 + qpos[:, 1]
        pitch[robots] = qpos[:, 2]
        finite[robots] = np.isfinite(state[:, -1]).all(axis=1)
        if g.z_band is not None and self.config.terminate:
            zr = z[robots]
            healthy = (zr > g.z_band[0]) & (zr < g.z_band[1])
            finite[robots] &= healthy & (np.abs(pitch[robots]) < g.spec.healthy_angle)

    def _check_actions(self, actions: Any) -> np.ndarray:
        if isinstance(actions, Tensor):
            if not actions.is_floating_point():
                raise ValueError(
                    f"modular actions must be floats in [-1, 1], got dtype {actions.dtype}"
                )
            arr = actions.detach().cpu().double().numpy()
        else:
            arr = np.asarray(actions)
            if arr.dtype.kind != "f":
                raise ValueError(
                    f"modular actions must be floats in [-1, 1], got dtype {arr.dtype}"
                )
            arr = arr.astype(np.float64, copy=False)
        shape = (self.num_envs, self.max_limbs)
        if arr.shape != shape:
            raise ValueError(
                f"actions must have shape {shape} (one torque per limb slot, padded to the "
                f"largest body), got shape {arr.shape}"
            )
        arr = np.where(self.action_mask, arr, 0.0)
        if self.validate_actions:
            bad = ~(np.abs(arr) <= 1.0)
            if bad.any():
                i, j = np.argwhere(bad)[0]
                raise ValueError(
                    f"action {arr[i, j]} for robot {i} (limb {j}) is outside [-1, 1]; squash "
                    "with torch.tanh or clamp(-1, 1)"
                )
        return arr

    # -- policies -------------------------------------------------------------------------------
    def policy(self, name: str, seed: int = 0) -> Callable[[Tensor], Tensor]:
        """A scripted policy ``obs [N, L, D] -> actions [N, L]`` (``noop`` or ``random``)."""
        shape = (self.num_envs, self.max_limbs)
        if name == "noop":
            return lambda obs: torch.zeros(shape, dtype=obs.dtype, device=obs.device)
        if name == "random":
            gen = torch.Generator().manual_seed(seed)

            def random_policy(obs: Tensor) -> Tensor:
                u = torch.rand(shape, generator=gen, dtype=torch.float64)
                return (2.0 * u - 1.0).to(device=obs.device, dtype=obs.dtype)

            return random_policy
        raise no_policy(self, name)

    @classmethod
    def factory(cls, config: ModularConfig | None = None, **overrides: Any) -> WorldFactory:
        """``factory(num_envs=N) -> world`` for population evaluators (default: finished
        episodes freeze)."""
        return make_factory(cls, ModularConfig, config, **overrides)

    # -- viewer ---------------------------------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        """Running robots, mean x and x velocity, finished episodes, mean recent return."""
        out: dict[str, float] = {
            "envs": self.num_envs,
            "running": int((~self.done).sum()),
            "mean_x": float(self.x.mean()),
            "mean_x_velocity": float(self._last_x_velocity.mean()),
            "episodes_finished": self.episodes_finished,
        }
        if self._recent_returns:
            out["mean_return_last_100"] = float(np.mean(self._recent_returns))
        return out

    def render_rgb(self, panel_width: int = 200, panel_height: int = 300) -> np.ndarray:
        """The first :attr:`render_envs` robots side by side in one scene, ``uint8[H, W, 3]``
        (each robot's torso kept at the centre of its slot; finished ones tinted red; a
        single robot walks on a scrolling floor).

        Headless: set ``MUJOCO_GL=egl`` before MuJoCo is imported.

        Raises:
            RuntimeError: MuJoCo could not open a rendering context.
        """
        mj = self._mj
        shown = min(self.num_envs, self.render_envs)
        spacing = 1.6
        width = panel_width * shown
        if self._row is None or self._row[2] != (shown, panel_width, panel_height):
            xml = to_mjcf([self.specs[k] for k in range(shown)], spacing=spacing, side_offset=0.3)
            model = mj.MjModel.from_xml_string(xml)
            model.vis.global_.offwidth = max(width, 640)
            model.vis.global_.offheight = max(panel_height, 480)
            model.vis.global_.fovy = 12.0  # far and narrow: little perspective along the row
            if self._renderer is not None:
                self._renderer.close()
            self._renderer = make_renderer(mj, model, panel_height, width)
            camera = mj.MjvCamera()
            camera.type = mj.mjtCamera.mjCAMERA_FREE
            camera.lookat[:] = [(shown - 1) * spacing / 2, 0.0, 0.75]
            camera.azimuth = 90.0
            camera.elevation = -15.0
            fovy = math.radians(model.vis.global_.fovy)
            half_width = shown * spacing / 2  # slot k spans pixels [k, k + 1) * panel_width
            camera.distance = half_width * panel_height / width / math.tan(fovy / 2)
            self._row = (model, mj.MjData(model), (shown, panel_width, panel_height), camera)
        model, data, _, camera = self._row
        where = self._where()
        adr = 0
        for k in range(shown):
            gi, row = where[k]
            g = self.groups[gi]
            qpos = self.states[gi][row, 1 : 1 + g.nq].copy()
            qpos[0] = 0.0  # the torso stays in its slot
            data.qpos[adr : adr + g.nq] = qpos
            adr += g.nq
        if shown == 1:  # one robot: the floor scrolls under it (its torso stays centred)
            floor = mj.mj_name2id(model, mj.mjtObj.mjOBJ_GEOM, "floor")
            model.geom_pos[floor, 0] = -(float(self.x[0]) % 1.0)  # the checker's period: 1 m
        mj.mj_forward(model, data)
        self._renderer.update_scene(data, camera=camera)
        image = self._renderer.render().copy()
        for k in range(shown):
            if self.done[k]:
                cols = slice(k * panel_width, (k + 1) * panel_width)
                image[:, cols] = tint_done(image[:, cols])
        return image

    def close(self) -> None:
        """Free the renderer and the rollout threads."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self._pool.close()
        if self._workers is not None:
            self._workers.shutdown()
            for pool in self._worker_pools:
                pool.close()
            self._workers = None
