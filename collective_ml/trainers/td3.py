"""TD3 (Fujimoto, van Hoof & Meger, ICML 2018): an off-policy actor-critic trainer,
generic over the actor / critic pair.

The trainer never sees a world class. It drives a **task**, any object speaking this
small protocol (``N`` = the rows stepped together, e.g. robots of many bodies in one
batched world; a row keeps its index for the whole run)::

    task.n_agents -> int                                  # N
    task.reset(seed: int) -> obs                          # mapping of [N, ...] arrays
    task.step(actions float[N, *A]) -> (obs, reward float[N], terminated bool[N],
                                        truncated bool[N], final_obs)

``obs`` is a mapping of tensors (or arrays) with one row per agent; every entry is
passed to the networks by name. ``final_obs`` is the observation the action led to
(before an autoreset: what the transition stores), ``obs`` where the next step
starts. ``terminated`` stops the bootstrap; ``truncated`` (a time limit) does not.

The networks::

    actor(**obs) -> action [B, *A] in [-1, 1]
    critic(**obs, action=action) -> Q [B]   (two critics: the twin, clipped double Q)

Shared weights over agents (one SMP for every limb of every body) are the actor's
business: the trainer batches rows, whatever the actor does inside a row.

One step of :meth:`TD3.fit`: every row acts (uniformly random for the first
``start_steps`` transitions, then the actor plus Gaussian noise ``expl_noise``,
clipped to ``[-1, 1]``), the ``N`` transitions go into a ring buffer, then
``updates_per_step * N`` gradient updates (accumulated fractionally): critics towards
``r + gamma (1 - terminated) min(Q1', Q2')(s', clip(actor'(s') + clip(eps)))``, every
``policy_delay`` updates the actor up ``Q1`` and Polyak averaging of the three targets.

:meth:`TD3.state_dict` holds the networks, targets, optimizers, counters and RNG
(tensors and numbers only; the replay buffer is NOT saved: a resumed run refills it).

::

    td3 = TD3(actor, (critic1, critic2), task, TD3Config(batch_size=256), seed=0)
    history = td3.fit(steps=200_000, time_budget_s=1800)
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from colonylab._checks import check_float, check_int

__all__ = ["TD3", "ReplayBuffer", "TD3Config"]

STATE_VERSION = 1
Scalars = dict[str, float]


@dataclass(frozen=True)
class TD3Config:
    """TD3's hyper-parameters (defaults: the paper's, batch 256)."""

    gamma: float = 0.99
    """Discount."""
    tau: float = 0.005
    """Polyak step of the target networks."""
    actor_lr: float = 1e-3
    """Adam step of the actor."""
    critic_lr: float = 1e-3
    """Adam step of the critics."""
    batch_size: int = 256
    """Transitions per gradient update."""
    buffer_size: int = 200_000
    """Replay buffer capacity (transitions)."""
    start_steps: int = 10_000
    """Transitions of uniformly random actions before the actor acts."""
    expl_noise: float = 0.1
    """Std of the Gaussian exploration noise."""
    policy_noise: float = 0.2
    """Std of the target policy smoothing noise."""
    noise_clip: float = 0.5
    """Clip of the target policy smoothing noise."""
    policy_delay: int = 2
    """Critic updates per actor (and target) update."""
    updates_per_step: float = 1.0
    """Gradient updates per collected transition (0.25 with 20 rows: 5 per step)."""
    grad_clip: float | None = None
    """Clip of the gradient norm (None: none)."""

    def __post_init__(self) -> None:
        for name, high in (("gamma", 1.0), ("tau", 1.0), ("expl_noise", None),
                           ("policy_noise", None), ("noise_clip", None),
                           ("updates_per_step", None)):  # fmt: skip
            check_float(name, getattr(self, name), 0.0, high)
        for name in ("actor_lr", "critic_lr"):
            check_float(name, getattr(self, name), 0.0, low_open=True)
        check_int("batch_size", self.batch_size, 1)
        check_int("buffer_size", self.buffer_size, 1)
        check_int("start_steps", self.start_steps, 0)
        check_int("policy_delay", self.policy_delay, 1)
        if self.grad_clip is not None:
            check_float("grad_clip", self.grad_clip, 0.0, low_open=True)


def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))


class ReplayBuffer:
    """A ring buffer of transitions ``(obs mapping, action, reward, terminated, next obs
    mapping)``, allocated on the first :meth:`add` from the shapes it sees."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = 0
        self.pos = 0
        self.data: dict[str, Tensor] = {}

    def _allocate(self, rows: Mapping[str, Tensor]) -> None:
        for key, value in rows.items():
            self.data[key] = torch.zeros((self.capacity, *value.shape[1:]), dtype=value.dtype)

    def add(
        self,
        obs: Mapping[str, Tensor],
        action: Tensor,
        reward: Tensor,
        terminated: Tensor,
        next_obs: Mapping[str, Tensor],
    ) -> None:
        rows: dict[str, Tensor] = {f"obs/{k}": _tensor(v) for k, v in obs.items()}
        rows.update({f"next/{k}": _tensor(v) for k, v in next_obs.items()})
        rows["action"] = action.float()
        rows["reward"] = _tensor(reward).float()
        rows["terminated"] = _tensor(terminated).float()
        if not self.data:
            self._allocate(rows)
        n = rows["action"].shape[0]
        idx = (self.pos + torch.arange(n)) % self.capacity
        for key, value in rows.items():
            self.data[key][idx] = value.to(self.data[key].dtype)
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.capacity, self.size + n)

    def sample(self, batch: int, generator: torch.Generator) -> dict[str, Tensor]:
        idx = torch.randint(0, self.size, (batch,), generator=generator)
        return {key: value[idx] for key, value in self.data.items()}


def _split(batch: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    n = len(prefix)
    return {k[n:]: v for k, v in batch.items() if k.startswith(prefix)}


class TD3:
    """Twin-delayed DDPG over a task (see the module docstring).

    Args:
        actor: ``actor(**obs) -> action`` in ``[-1, 1]``.
        critics: two critics ``critic(**obs, action=a) -> Q [B]`` (distinct weights).
        task: the task protocol above.
        config: hyper-parameters.
        seed: seeds the task's reset, the noise, the random phase and the sampling.
        log: ``log(step, scalars)`` called every ``log_every`` transitions (or None).
    """

    def __init__(
        self,
        actor: nn.Module,
        critics: tuple[nn.Module, nn.Module],
        task: Any,
        config: TD3Config | None = None,
        *,
        seed: int = 0,
        log: Callable[[int, Scalars], Any] | None = None,
    ) -> None:
        if len(critics) != 2 or critics[0] is critics[1]:
            raise ValueError("TD3 needs two distinct critics (the twin), got the same module")
        self.config = config if config is not None else TD3Config()
        self.actor = actor
        self.critics = nn.ModuleList(critics)
        self.actor_target = copy.deepcopy(actor).requires_grad_(False)
        self.critics_target = copy.deepcopy(self.critics).requires_grad_(False)
        c = self.config
        self.actor_opt = torch.optim.Adam(actor.parameters(), lr=c.actor_lr, foreach=True)
        self.critic_opt = torch.optim.Adam(self.critics.parameters(), lr=c.critic_lr, foreach=True)
        self.task = task
        self.seed = seed
        self.log = log
        self.generator = torch.Generator().manual_seed(seed)
        self.buffer = ReplayBuffer(c.buffer_size)
        self.transitions = 0
        self.updates = 0
        self.episodes = 0
        self._owed = 0.0
        self._obs: dict[str, Tensor] | None = None
        self._returns = torch.zeros(task.n_agents, dtype=torch.float64)
        self.recent_returns: list[float] = []

    # -- acting -----------------------------------------------------------------------------
    def _observe(self, obs: Mapping[str, Any]) -> dict[str, Tensor]:
        return {k: _tensor(v) for k, v in obs.items()}

    @torch.no_grad()
    def act(self, obs: Mapping[str, Tensor], noise: bool = True) -> Tensor:
        """The actor's action (plus exploration noise unless ``noise=False``)."""
        action = self.actor(**obs).float()
        if noise and self.config.expl_noise > 0:
            eps = torch.randn(action.shape, generator=self.generator) * self.config.expl_noise
            action = (action + eps).clamp(-1.0, 1.0)
        return action

    def collect(self) -> Tensor:
        """One step of every row; the transitions go into the buffer. Returns the rewards."""
        if self._obs is None:
            self._obs = self._observe(self.task.reset(seed=self.seed))
        obs = self._obs
        if self.transitions < self.config.start_steps:
            like = self.act(obs, noise=False)
            u = torch.rand(like.shape, generator=self.generator)
            action = 2.0 * u - 1.0
        else:
            action = self.act(obs)
        next_obs, reward, terminated, truncated, final_obs = self.task.step(action)
        reward, terminated = _tensor(reward), _tensor(terminated).bool()
        truncated = _tensor(truncated).bool()
        self.buffer.add(obs, action, reward, terminated, self._observe(final_obs))
        self._returns += reward.double()
        ended = terminated | truncated
        if ended.any():
            self.recent_returns.extend(self._returns[ended].tolist())
            self.recent_returns = self.recent_returns[-100:]
            self.episodes += int(ended.sum())
            self._returns[ended] = 0.0
        self._obs = self._observe(next_obs)
        self.transitions += int(action.shape[0])
        return reward

    # -- learning ---------------------------------------------------------------------------
    def update(self) -> Scalars:
        """One gradient update of the critics (and, every ``policy_delay``, the actor)."""
        c = self.config
        batch = self.buffer.sample(c.batch_size, self.generator)
        obs, nxt = _split(batch, "obs/"), _split(batch, "next/")
        action, reward = batch["action"], batch["reward"]
        with torch.no_grad():
            eps = torch.randn(action.shape, generator=self.generator) * c.policy_noise
            eps = eps.clamp(-c.noise_clip, c.noise_clip)
            next_action = (self.actor_target(**nxt).float() + eps).clamp(-1.0, 1.0)
            q1t, q2t = (q(**nxt, action=next_action).reshape(-1) for q in self.critics_target)
            target = reward + c.gamma * (1.0 - batch["terminated"]) * torch.minimum(q1t, q2t)
        q1, q2 = (q(**obs, action=action).reshape(-1) for q in self.critics)
        critic_loss = ((q1 - target) ** 2).mean() + ((q2 - target) ** 2).mean()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        if c.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.critics.parameters(), c.grad_clip)
        self.critic_opt.step()
        self.updates += 1
        out: Scalars = {
            "losses/critic": float(critic_loss.detach()),
            "values/q": float(q1.detach().mean()),
        }
        if self.updates % c.policy_delay == 0:
            critic = self.critics[0]
            critic.requires_grad_(False)
            actor_loss = -critic(**obs, action=self.actor(**obs).float()).mean()
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            if c.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.actor.parameters(), c.grad_clip)
            self.actor_opt.step()
            critic.requires_grad_(True)
            self._polyak()
            out["losses/actor"] = float(actor_loss.detach())
        return out

    @torch.no_grad()
    def _polyak(self) -> None:
        tau = self.config.tau
        for net, target in ((self.actor, self.actor_target), (self.critics, self.critics_target)):
            for p, pt in zip(net.parameters(), target.parameters(), strict=True):
                pt.lerp_(p, tau)

    def step(self) -> Scalars:
        """Collect one step of every row, then the updates it pays for."""
        reward = self.collect()
        out: Scalars = {"charts/reward": float(reward.float().mean())}
        if self.buffer.size < self.config.batch_size:
            return out
        self._owed += self.config.updates_per_step * int(reward.shape[0])
        while self._owed >= 1.0:
            out.update(self.update())
            self._owed -= 1.0
        return out

    def fit(
        self,
        steps: int,
        *,
        time_budget_s: float | None = None,
        log_every: int = 10_000,
        callback: Callable[[TD3], Any] | None = None,
        callback_every: int | None = None,
    ) -> list[Scalars]:
        """Run until ``steps`` transitions in total (or the time budget). ``callback(self)``
        every ``callback_every`` transitions (e.g. validate and save). Returns the log rows."""
        check_int("steps", steps, 1)
        start = time.perf_counter()
        history: list[Scalars] = []
        next_log = (self.transitions // log_every + 1) * log_every
        next_cb = None
        if callback_every is not None:
            next_cb = (self.transitions // callback_every + 1) * callback_every
        last: Scalars = {}
        while self.transitions < steps:
            last.update(self.step())
            elapsed = time.perf_counter() - start
            out_of_time = time_budget_s is not None and elapsed > time_budget_s
            if self.transitions >= next_log or self.transitions >= steps or out_of_time:
                row = {
                    **last,
                    "charts/transitions": float(self.transitions),
                    "charts/updates": float(self.updates),
                    "charts/episodes": float(self.episodes),
                    "charts/seconds": elapsed,
                }
                if self.recent_returns:
                    row["charts/episode_return"] = float(np.mean(self.recent_returns))
                history.append(row)
                if self.log is not None:
                    self.log(self.transitions, row)
                next_log += log_every
            if next_cb is not None and callback is not None and self.transitions >= next_cb:
                callback(self)
                next_cb += callback_every  # type: ignore[operator]
            if out_of_time:
                break
        return history

    # -- checkpoint -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Networks, targets, optimizers, counters and the generator (no replay buffer)."""
        return {
            "version": STATE_VERSION,
            "config": asdict(self.config),
            "actor": self.actor.state_dict(),
            "critics": self.critics.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critics_target": self.critics_target.state_dict(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "generator": self.generator.get_state(),
            "transitions": self.transitions,
            "updates": self.updates,
            "episodes": self.episodes,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (the buffer starts empty and refills)."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"TD3 state version {state.get('version')!r} is not {STATE_VERSION}")
        self.actor.load_state_dict(state["actor"])
        self.critics.load_state_dict(state["critics"])
        self.actor_target.load_state_dict(state["actor_target"])
        self.critics_target.load_state_dict(state["critics_target"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.generator.set_state(state["generator"])
        self.transitions = int(state["transitions"])
        self.updates = int(state["updates"])
        self.episodes = int(state["episodes"])
