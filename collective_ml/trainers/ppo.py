"""PPO with parameter sharing: one policy, every agent of every parallel world, one batch.

The trainer never sees a world class or a per-agent dict. It drives a **task**, any
object speaking this small array protocol (``N`` = the rows the learner controls:
all of its agents in all parallel worlds; a row keeps its index for the whole run)::

    task.n_agents -> int                      # N
    task.reset(seed: int) -> obs              # start every world
    task.step(actions int64[N]) -> (obs, reward float32[N], done bool[N])
        # (with a message head: task.step(actions, messages=float32[N, M]))
    # optional, for a bit-identical --resume:
    task.state_dict() -> dict                 # the worlds' state and RNG, plain values
    task.load_state_dict(state)

``obs`` is a mapping of NumPy (or torch) arrays, one row per agent: ``"view"
[N, V, V, C]`` (any dtype the policy reads: float32, float16, uint8) and any of the
policy's other inputs (``"features" [N, F]``, ``"ids" int64[N]``, ``"mean_action"
[N, A]``, ``"mask" bool[N, A]``), plus ``"alive" bool[N]``: the rows that act in this
step (absent: all). A dead (or not yet born) row is masked everywhere: it is not
run through the policy, its sample is not in the loss, its reward is ignored and
its advantage is zero. ``reward[i]`` is what row ``i`` got for the action just
taken; ``done[i]`` says that row's episode ended with it (terminated or truncated,
CleanRL's treatment: no bootstrap across it). A task that auto-resets returns the
next episode's first observation in those rows. Arrays are read zero-copy
(``torch.from_numpy``) and copied once into the rollout buffer, so the task may
reuse its buffers between steps. A task whose ``step`` takes ``out=`` may skip even
that copy: on the CPU PPO passes ``out``, a dict of writable NumPy arrays (the next
step's slot of the rollout buffer, one per observation key), and an observation
array returned that *is* its slot (the same memory) is not copied again.
Opponents (scripted, or past snapshots from
:mod:`~colonylab.collective_ml.trainers.selfplay`) live inside the task: their rows
are simply not the learner's.

The **policy** is any ``nn.Module`` with the two calls of
:class:`~colonylab.agents.grid_policy.GridPolicy`: ``act(obs, generator) ->
(actions, logprob, value, message | None)`` (no gradients) and
``evaluate_actions(obs, actions, messages) -> (logprob, entropy, value)``; its
``message_dim`` (0 or absent: no messages).

One iteration: ``rollout_steps`` steps of every world (forward on the living rows
only), GAE(lambda) over ``[T, N]`` with dead rows masked, then ``epochs`` passes of
``minibatches`` shuffled minibatches of the living samples: clipped surrogate,
value loss (MSE to the GAE returns), entropy bonus, gradient-norm clipping, and
Adam -- or Adam steered by the AE controller (``optimizer="ae-adam"``,
:class:`~colonylab.collective_ml.ae.AEController`), which reads each minibatch's loss
and gradients and sets Adam's coefficients before the step.

**Collectors** (scale-out). ``PPO(policy, None, config, collector=c)`` gathers each
iteration's rollout from ``c`` instead of stepping a task itself; the learner keeps
GAE and the update. A collector speaks::

    c.n_agents -> int                          # N, all of its shards' rows
    c.collect(policy, steps) -> (buffer, finished, timings)
        # buffer: this module's rollout arrays for ``steps`` steps (``obs/<key>``
        # [T, N, ...], ``actions``, ``logprob``, ``values`` [T + 1, N], ``rewards``,
        # ``dones``, ``alive_next`` [N], ``messages``), collected with ``policy``'s
        # current weights; finished: the returns of the episodes that ended
    c.state_dict() / c.load_state_dict(state)  # for --resume

:mod:`~colonylab.collective_ml.trainers.ray_rollout` has one on Ray actors (each
stepping its own worlds with the current weights) and its in-process twin.

Checkpoint / resume: :meth:`PPO.state_dict` holds the iteration, the optimizer (and
AE controller) state, the sampling generator, the running episode returns, the last
observation, the history, and the task's own state when it has one -- tensors,
numbers and strings only, so it goes into the ``trainer`` entry of the one
checkpoint format (``runs/common/checkpoint.py``) beside the policy's weights.
A fresh ``PPO`` over a freshly built policy and task, after
``policy.load_state_dict(weights)`` and ``ppo.load_state_dict(trainer_state)``,
continues bit-identically on the CPU. A Ctrl-C lets the iteration under way finish,
saves (``save(ppo)``), then raises ``KeyboardInterrupt``; a second one stops at once.
This module imports no world and no run plumbing.

::

    ppo = PPO(policy, task, PPOConfig(rollout_steps=16, optimizer="adam"), log=run.log,
              save=lambda p: save_checkpoint(path, {..., "trainer": p.state_dict()}))
    history = ppo.fit(iterations=500)
"""

from __future__ import annotations

import inspect
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from colonylab._checks import check_choice, check_float, check_int

__all__ = ["PPO", "PPOConfig", "gae"]

STATE_VERSION = 1
Scalars = dict[str, float]


@dataclass(frozen=True)
class PPOConfig:
    """PPO's settings (CleanRL's names and defaults where they exist)."""

    rollout_steps: int = 16
    """Steps of every world per iteration (``T``); the batch is ``T x`` living rows."""
    epochs: int = 4
    """Passes over the batch per iteration."""
    minibatches: int = 4
    """Minibatches per epoch (the living samples are shuffled, then split)."""
    gamma: float = 0.99
    """Discount."""
    gae_lambda: float = 0.95
    """GAE's lambda."""
    clip: float = 0.2
    """PPO's ratio clip epsilon."""
    value_coef: float = 0.5
    """Weight of the value loss."""
    entropy_coef: float = 0.01
    """Weight of the entropy bonus."""
    lr: float = 3e-4
    """Adam's learning rate (AE's starting one with ``ae-adam``)."""
    max_grad_norm: float = 0.5
    """Clip the gradient's global norm to this (0: no clipping)."""
    normalize_advantages: bool = True
    """Standardise the advantages within each minibatch."""
    optimizer: str = "adam"
    """``adam`` or ``ae-adam`` (the AE controller steering Adam's coefficients)."""
    seed: int = 0
    """Seed of the trainer's generator (sampling, shuffling) and of the first reset."""

    def __post_init__(self) -> None:
        for name in ("rollout_steps", "epochs", "minibatches"):
            check_int(name, getattr(self, name), 1)
        check_int("seed", self.seed, 0)
        check_float("gamma", self.gamma, 0.0, 1.0)
        check_float("gae_lambda", self.gae_lambda, 0.0, 1.0)
        check_float("clip", self.clip, 0.0, low_open=True)
        check_float("lr", self.lr, 0.0, low_open=True)
        for name in ("value_coef", "entropy_coef", "max_grad_norm"):
            check_float(name, getattr(self, name), 0.0)
        check_choice("optimizer", self.optimizer, ("adam", "ae-adam"))


def gae(
    rewards: Tensor,
    values: Tensor,
    dones: Tensor,
    alive: Tensor,
    gamma: float,
    lam: float,
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation over ``T`` steps of ``N`` rows, dead rows masked.

    Args:
        rewards: ``float[T, N]``, reward of the action taken at step ``t``.
        values: ``float[T + 1, N]``, ``V(obs_t)``; row ``T`` is the bootstrap.
        dones: ``bool[T, N]``, the episode ended with step ``t``.
        alive: ``bool[T + 1, N]``, the row acted at step ``t`` (row ``T``: in the
            bootstrap observation).

    Returns:
        ``(advantages [T, N], returns [T, N])``, zero where the row was not alive.
        With ``c_t = (not done_t) and alive_{t+1}``:
        ``delta_t = r_t + gamma V_{t+1} c_t - V_t`` and
        ``A_t = delta_t + gamma lam c_t A_{t+1}``.
    """
    steps = rewards.shape[0]
    cont = (~dones.bool()) & alive[1:].bool()
    live = alive[:-1].bool()
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[0])
    for t in range(steps - 1, -1, -1):
        c = cont[t].to(rewards.dtype)
        delta = rewards[t] + gamma * values[t + 1] * c - values[t]
        last = torch.where(live[t], delta + gamma * lam * c * last, torch.zeros_like(last))
        adv[t] = last
    returns = torch.where(live, adv + values[:-1], torch.zeros_like(adv))
    return adv, returns


class _DeferredInterrupt:
    """The first SIGINT inside the block sets ``pending``; a second raises at once."""

    def __init__(self) -> None:
        self.pending = False
        self._previous: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        if self.pending:
            raise KeyboardInterrupt
        self.pending = True

    def __enter__(self) -> _DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            try:
                self._previous = signal.signal(signal.SIGINT, self._handler)
            except (ValueError, OSError):
                self._previous = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _tensor(x: Any) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x


class PPO:
    """Parameter-shared PPO over a task in the array protocol (see the module doc).

    Args:
        policy: the shared network (``act`` / ``evaluate_actions``).
        task: the worlds, in the array protocol.
        config: :class:`PPOConfig`.
        log: ``log(iteration, scalars)`` or an object with ``.log(iteration, scalars)``.
        save: ``save(ppo)`` writes a checkpoint (its return value, e.g. a path, is
            echoed on Ctrl-C).
        checkpoint_every: save every this many iterations (0: only at the end of
            :meth:`fit` and on Ctrl-C).
        ae_config: the AE controller's :class:`~colonylab.collective_ml.ae.AEConfig`
            (``ae-adam`` only; default ``AEConfig(seed=config.seed)``).
        device: where the policy, the rollout buffer and the update live (the
            policy is moved there); the task's arrays stay on the CPU and are copied
            over once per step. Bit-identical runs are promised on the CPU only.
        echo: where "interrupted: ..." goes.
        collector: gather the rollouts from this collector (module doc) instead of
            stepping ``task`` (pass ``task=None``).
    """

    def __init__(
        self,
        policy: nn.Module,
        task: Any,
        config: PPOConfig | None = None,
        *,
        log: Any = None,
        save: Callable[[PPO], Any] | None = None,
        checkpoint_every: int = 0,
        ae_config: Any = None,
        device: str | torch.device = "cpu",
        echo: Callable[[str], None] = print,
        collector: Any = None,
    ) -> None:
        self.config = cfg = config or PPOConfig()
        for name in ("act", "evaluate_actions"):
            if not callable(getattr(policy, name, None)):
                raise TypeError(f"the policy needs a .{name}() method (see GridPolicy)")
        if collector is not None:
            if task is not None:
                raise ValueError("pass either a task or a collector, not both (task=None)")
            if not callable(getattr(collector, "collect", None)):
                raise TypeError("the collector needs a .collect() method (see the ppo module doc)")
        else:
            for name in ("reset", "step"):
                if not callable(getattr(task, name, None)):
                    raise TypeError(f"the task needs a .{name}() method (see the ppo module doc)")
        self.device = torch.device(device)
        self.policy, self.task, self.collector = policy.to(self.device), task, collector
        source = collector if collector is not None else task
        self.n_agents = check_int("task.n_agents", int(source.n_agents), 1)
        self._task_writes = (
            collector is None
            and self.device.type == "cpu"
            and "out" in inspect.signature(task.step).parameters
        )
        self.message_dim = int(getattr(policy, "message_dim", 0) or 0)
        self.checkpoint_every = check_int("checkpoint_every", checkpoint_every, 0)
        self.save, self.echo = save, echo
        self._log = self._logger(log)
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.lr, eps=1e-5)
        self.ae = None
        if cfg.optimizer == "ae-adam":
            from colonylab.collective_ml.ae import AEConfig, AEController

            self.ae = AEController(self.optimizer, ae_config or AEConfig(seed=cfg.seed))
        elif ae_config is not None:
            raise ValueError("ae_config is only used with optimizer='ae-adam'")
        self.generator = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.iteration = 0
        """Iterations completed."""
        self.agent_steps = 0
        """Living agent-steps collected (and learned from) so far."""
        self.history: list[Scalars] = []
        """One record per iteration (what ``log`` got)."""
        self._obs: dict[str, Tensor] | None = None  # the next step's observation
        self._running = torch.zeros(self.n_agents, dtype=torch.float64)  # episode returns
        self._buffer: dict[str, Tensor] = {}
        self._gather: dict[str, Tensor] = {}
        self._staging: dict[str, Tensor] = {}
        self.finished: list[float] = []
        """Returns of the episodes that ended in the last collection."""
        self.timings: Scalars = {}
        """Seconds of the last iteration: ``world``, ``forward``, ``update``."""

    @staticmethod
    def _logger(log: Any) -> Callable[[int, Scalars], Any] | None:
        if log is None:
            return None
        if callable(getattr(log, "log", None)):
            return log.log
        if callable(log):
            return log
        raise TypeError(f"log must be a callable (step, scalars) or have .log, got {log!r}")

    # -- observations ----------------------------------------------------------------------
    def _take(self, obs: Mapping[str, Any]) -> dict[str, Tensor]:
        if "view" not in obs:
            raise ValueError(f"an observation needs a 'view' array; got keys {sorted(obs)}")
        out = {k: _tensor(v) for k, v in obs.items()}
        for k, v in out.items():
            if v.shape[0] != self.n_agents:
                raise ValueError(
                    f"obs[{k!r}] has {v.shape[0]} rows; the task has n_agents={self.n_agents}"
                )
        if "alive" not in out:
            out["alive"] = torch.ones(self.n_agents, dtype=torch.bool)
        return out

    def _allocate(self, obs: Mapping[str, Tensor]) -> None:
        steps, n = self.config.rollout_steps, self.n_agents
        on = {"device": self.device}
        buf = {
            f"obs/{k}": torch.empty((steps, *v.shape), dtype=v.dtype, **on) for k, v in obs.items()
        }
        buf["actions"] = torch.zeros((steps, n), dtype=torch.int64, **on)
        buf["logprob"] = torch.zeros((steps, n), **on)
        buf["values"] = torch.zeros((steps + 1, n), **on)
        buf["rewards"] = torch.zeros((steps, n), **on)
        buf["dones"] = torch.zeros((steps, n), dtype=torch.bool, **on)
        buf["alive_next"] = torch.zeros(n, dtype=torch.bool, **on)
        if self.message_dim:
            buf["messages"] = torch.zeros((steps, n, self.message_dim), **on)
        # rows of the living agents gathered for the forward (no fresh memory per step)
        self._gather = {
            k: torch.empty((n, *v.shape[1:]), dtype=v.dtype, **on)
            for k, v in obs.items()
            if k != "alive"
        }
        if self._task_writes:  # the observation after the last step, until the next collect
            self._staging = {k: torch.empty_like(v, device="cpu") for k, v in obs.items()}
        if self.device.type != "cpu":  # the actions go back to the worlds every step
            buf["actions_cpu"] = torch.zeros((steps, n), dtype=torch.int64)
            buf["messages_cpu"] = torch.zeros((steps, n, max(self.message_dim, 1)))
        self._buffer = buf

    def policy_inputs(self, t: int, rows: Tensor | None = None) -> dict[str, Tensor]:
        """The policy's inputs of buffer step ``t`` (only ``rows`` when given: gathered
        into a buffer the next call reuses)."""
        out = {}
        for key, value in self._buffer.items():
            if key.startswith("obs/") and key != "obs/alive":
                if rows is None:
                    out[key[4:]] = value[t]
                else:
                    into = self._gather[key[4:]][: rows.numel()] if self._gather else None
                    out[key[4:]] = torch.index_select(value[t], 0, rows, out=into)
        return out

    # -- one iteration ---------------------------------------------------------------------
    def collect(self) -> Scalars:
        """Run ``rollout_steps`` steps of the task and fill the rollout buffer."""
        if self.collector is not None:
            return self._collect_from(self.collector)
        cfg, n = self.config, self.n_agents
        if self._obs is None:
            self._obs = self._take(self.task.reset(seed=cfg.seed))
        if not self._buffer:
            self._allocate(self._obs)
        buf = self._buffer
        t_world = t_forward = 0.0
        finished: list[float] = []
        for t in range(cfg.rollout_steps):
            for key, value in self._obs.items():
                slot = buf[f"obs/{key}"][t]
                if value.data_ptr() != slot.data_ptr():  # not written there by the task
                    slot.copy_(value)
            alive = buf["obs/alive"][t]
            start = time.perf_counter()
            every = bool(alive.all())
            rows = None if every else alive.nonzero().squeeze(1)
            inputs = self.policy_inputs(t, rows)
            actions, logprob, value, message = self.policy.act(inputs, generator=self.generator)
            if every:
                buf["actions"][t] = actions
                buf["logprob"][t] = logprob
                buf["values"][t] = value
                if message is not None:
                    buf["messages"][t] = message
            else:
                buf["actions"][t].zero_().index_copy_(0, rows, actions)
                buf["logprob"][t].zero_().index_copy_(0, rows, logprob)
                buf["values"][t].zero_().index_copy_(0, rows, value)
                if message is not None:
                    buf["messages"][t].zero_().index_copy_(0, rows, message)
            t_forward += time.perf_counter() - start
            start = time.perf_counter()
            if self.device.type == "cpu":
                acts = buf["actions"][t].numpy()
                sent = buf["messages"][t] if self.message_dim else None
            else:
                acts = buf["actions_cpu"][t].copy_(buf["actions"][t]).numpy()
                sent = (
                    buf["messages_cpu"][t].copy_(buf["messages"][t]) if self.message_dim else None
                )
            kwargs = {}
            if sent is not None:
                kwargs["messages"] = sent.numpy()
            if self._task_writes:
                t_next = t + 1
                kwargs["out"] = {
                    k: (buf[f"obs/{k}"][t_next] if t_next < cfg.rollout_steps else v).numpy()
                    for k, v in self._staging.items()
                }
            result = self.task.step(acts, **kwargs)
            obs, reward, done = result
            self._obs = self._take(obs)
            t_world += time.perf_counter() - start
            reward = _tensor(np.asarray(reward, dtype=np.float32)).to(self.device)
            done = _tensor(np.asarray(done, dtype=bool)).to(self.device)
            if reward.shape != (n,) or done.shape != (n,):
                raise ValueError(
                    f"task.step must return reward float32[{n}] and done bool[{n}], got "
                    f"{tuple(reward.shape)} and {tuple(done.shape)}"
                )
            reward = torch.where(alive, reward, torch.zeros_like(reward))
            done = done & alive
            buf["rewards"][t] = reward
            buf["dones"][t] = done
            self._running += reward.double().cpu()
            if bool(done.any()):
                ended = done.nonzero().squeeze(1).cpu()
                finished += self._running[ended].tolist()
                self._running[ended] = 0.0
        # the bootstrap value of the observation after the last step
        alive = self._obs["alive"].to(self.device)
        start = time.perf_counter()
        every = bool(alive.all())
        rows = None if every else alive.nonzero().squeeze(1)
        inputs = {
            k: (v if rows is None else v.index_select(0, rows))
            for k, v in ((k, v.to(self.device)) for k, v in self._obs.items())
            if k != "alive"
        }
        _, _, value, _ = self.policy.act(inputs, generator=self.generator)
        if every:
            buf["values"][cfg.rollout_steps] = value
        else:
            buf["values"][cfg.rollout_steps].zero_().index_copy_(0, rows, value)
        buf["alive_next"].copy_(alive)
        t_forward += time.perf_counter() - start
        self.timings = {"world": t_world, "forward": t_forward}
        self.finished = finished
        return self._collect_scalars(finished)

    def _collect_from(self, collector: Any) -> Scalars:
        buffer, finished, timings = collector.collect(self.policy, self.config.rollout_steps)
        if "obs/alive" not in buffer or "alive_next" not in buffer:
            raise ValueError("a collector's buffer needs 'obs/alive' and 'alive_next' arrays")
        if not self._buffer:
            self._buffer = {
                k: torch.empty(tuple(v.shape), dtype=_tensor(v).dtype, device=self.device)
                for k, v in buffer.items()
            }
        for key, value in buffer.items():
            self._buffer[key].copy_(_tensor(value))
        self.timings = dict(timings)
        self.finished = list(finished)
        return self._collect_scalars(self.finished)

    def _collect_scalars(self, finished: list[float]) -> Scalars:
        buf = self._buffer
        live = buf["obs/alive"]
        scalars = {
            "charts/agent_steps_iteration": float(live.sum()),
            "charts/reward_mean": float(buf["rewards"].sum() / live.sum().clamp(min=1)),
            "charts/episodes": float(len(finished)),
        }
        if finished:
            scalars["charts/episode_return"] = float(np.mean(finished))
        return scalars

    def update(self) -> Scalars:
        """GAE and ``epochs`` x ``minibatches`` PPO steps over the filled buffer."""
        cfg, buf = self.config, self._buffer
        start = time.perf_counter()
        alive = torch.cat([buf["obs/alive"], buf["alive_next"][None]], 0)
        adv, returns = gae(
            buf["rewards"], buf["values"], buf["dones"], alive, cfg.gamma, cfg.gae_lambda
        )
        flat_live = buf["obs/alive"].reshape(-1).nonzero().squeeze(1)
        count = int(flat_live.numel())
        if count == 0:
            self.timings["update"] = time.perf_counter() - start
            return {}
        steps, n = cfg.rollout_steps, self.n_agents
        obs_flat = {
            k[4:]: v.reshape(steps * n, *v.shape[2:])
            for k, v in buf.items()
            if k.startswith("obs/") and k != "obs/alive"
        }
        actions = buf["actions"].reshape(-1)
        old_logprob = buf["logprob"].reshape(-1)
        adv_flat, ret_flat = adv.reshape(-1), returns.reshape(-1)
        messages = buf["messages"].reshape(steps * n, -1) if self.message_dim else None
        size = max(1, count // cfg.minibatches)
        sums = {"policy": 0.0, "value": 0.0, "entropy": 0.0, "approx_kl": 0.0, "clipfrac": 0.0}
        updates = 0
        for _ in range(cfg.epochs):
            order = flat_live[torch.randperm(count, generator=self.generator, device=self.device)]
            for k in range(cfg.minibatches):
                idx = (
                    order[k * size : (k + 1) * size]
                    if k < cfg.minibatches - 1
                    else order[k * size :]
                )
                if idx.numel() == 0:
                    continue
                inputs = {key: v.index_select(0, idx) for key, v in obs_flat.items()}
                mb_msg = messages.index_select(0, idx) if messages is not None else None
                logprob, entropy, value = self.policy.evaluate_actions(
                    inputs, actions.index_select(0, idx), mb_msg
                )
                mb_adv = adv_flat.index_select(0, idx)
                if cfg.normalize_advantages and idx.numel() > 1:
                    mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                log_ratio = logprob - old_logprob.index_select(0, idx)
                ratio = log_ratio.exp()
                pg_loss = torch.max(
                    -mb_adv * ratio, -mb_adv * ratio.clamp(1 - cfg.clip, 1 + cfg.clip)
                ).mean()
                v_loss = 0.5 * (value - ret_flat.index_select(0, idx)).pow(2).mean()
                ent = entropy.mean()
                loss = pg_loss + cfg.value_coef * v_loss - cfg.entropy_coef * ent
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.max_grad_norm > 0:
                    nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
                if self.ae is not None:
                    self.ae.step(loss)
                else:
                    self.optimizer.step()
                with torch.no_grad():
                    sums["policy"] += float(pg_loss)
                    sums["value"] += float(v_loss)
                    sums["entropy"] += float(ent)
                    sums["approx_kl"] += float(((ratio - 1) - log_ratio).mean())
                    sums["clipfrac"] += float(((ratio - 1).abs() > cfg.clip).float().mean())
                updates += 1
        self.timings["update"] = time.perf_counter() - start
        scalars = {f"losses/{k}": v / max(updates, 1) for k, v in sums.items()}
        scalars["losses/explained_variance"] = _explained_variance(
            buf["values"][:-1].reshape(-1)[flat_live], ret_flat[flat_live]
        )
        if self.ae is not None:
            scalars.update(self.ae.log())
        scalars["charts/lr"] = float(self.optimizer.param_groups[0]["lr"])
        return scalars

    def iterate(self) -> Scalars:
        """One iteration (collect + update); returns and logs its record."""
        start = time.perf_counter()
        record = self.collect()
        record.update(self.update())
        seconds = time.perf_counter() - start
        steps = int(record["charts/agent_steps_iteration"])
        self.agent_steps += steps
        self.iteration += 1
        record["charts/agent_steps"] = float(self.agent_steps)
        record["charts/iteration_seconds"] = seconds
        record["charts/agent_steps_per_s"] = steps / seconds if seconds > 0 else float("nan")
        for key, value in self.timings.items():
            record[f"time/{key}_s"] = value
        self.history.append(record)
        if self._log is not None:
            self._log(self.iteration, record)
        return record

    def fit(self, iterations: int) -> list[Scalars]:
        """Run iterations ``self.iteration + 1 .. iterations``; returns the history.

        Raises:
            KeyboardInterrupt: after the iteration under way and a checkpoint.
        """
        check_int("iterations", iterations, 0)
        with _DeferredInterrupt() as interrupt:
            while self.iteration < iterations:
                self.iterate()
                due = self.checkpoint_every and self.iteration % self.checkpoint_every == 0
                if due or self.iteration == iterations or interrupt.pending:
                    where = self.save(self) if self.save is not None else None
                    if interrupt.pending:
                        self.echo(
                            f"interrupted: checkpoint after iteration {self.iteration}"
                            + (f" at {where}" if where is not None else "")
                        )
                        raise KeyboardInterrupt
        return self.history

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything but the policy's weights (save those beside; see the module doc)."""
        task_state = None
        if callable(getattr(self.task, "state_dict", None)):
            task_state = self.task.state_dict()
        collector_state = None
        if callable(getattr(self.collector, "state_dict", None)):
            collector_state = self.collector.state_dict()
        return {
            "ppo": STATE_VERSION,
            "config": asdict(self.config),
            "iteration": self.iteration,
            "agent_steps": self.agent_steps,
            "optimizer": self.optimizer.state_dict(),
            "ae": self.ae.state_dict() if self.ae is not None else None,
            "generator": self.generator.get_state(),
            "running_returns": self._running.clone(),
            "obs": {k: v.clone() for k, v in self._obs.items()} if self._obs else None,
            "device": str(self.device),
            "history": [dict(r) for r in self.history],
            "task": task_state,
            "collector": collector_state,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict` (load the policy's weights first).

        Raises:
            ValueError: not a PPO state, another optimizer, or another number of rows.
        """
        if state.get("ppo") != STATE_VERSION:
            raise ValueError(f"not a PPO trainer state (version {state.get('ppo')!r})")
        if state["config"].get("optimizer") != self.config.optimizer:
            raise ValueError(
                f"the state was trained with optimizer={state['config'].get('optimizer')!r}, "
                f"this trainer uses {self.config.optimizer!r}"
            )
        if state["running_returns"].shape != (self.n_agents,):
            raise ValueError(
                f"the state has {state['running_returns'].shape[0]} rows; the task has "
                f"{self.n_agents}"
            )
        self.iteration = int(state["iteration"])
        self.agent_steps = int(state["agent_steps"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ae is not None:
            self.ae.load_state_dict(state["ae"])
        self.generator.set_state(state["generator"].cpu())
        self._running = state["running_returns"].clone().double()
        self.history = [dict(r) for r in state["history"]]
        self._obs = {k: v.clone() for k, v in state["obs"].items()} if state["obs"] else None
        if self.collector is not None:
            if state.get("collector") is None:
                raise ValueError("the state holds no collector state; resume it without one")
            self.collector.load_state_dict(state["collector"])
        elif state.get("collector") is not None:
            raise ValueError("the state was collected by a collector; resume it with one")
        if state.get("task") is not None:
            if not callable(getattr(self.task, "load_state_dict", None)):
                raise ValueError("the state holds a task state but the task has no load_state_dict")
            self.task.load_state_dict(state["task"])
        elif self._obs is not None:
            # a task without state: start its worlds afresh (not bit-identical)
            self._obs = None


def _explained_variance(pred: Tensor, target: Tensor) -> float:
    var = float(target.var()) if target.numel() > 1 else 0.0
    return float("nan") if var == 0 else 1.0 - float((target - pred).var()) / var
