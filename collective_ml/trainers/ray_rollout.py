"""Rollout collection on Ray actors for :class:`~colonylab.collective_ml.trainers.ppo.PPO`.

The learner keeps GAE and the update; the worlds live in ``shards``. Each shard owns
its own worlds (a task in PPO's array protocol, built by ``make_task(shard,
shards, policy)`` inside the shard), a copy of the policy, and its own sampling
generator. Every iteration the learner sends the current weights to every shard;
each steps its worlds ``rollout_steps`` times with them (forward on its living rows)
and returns the rollout arrays (views and the policy's other inputs, actions,
log-probabilities, values with the bootstrap, rewards, dones, alive), which the
collector concatenates along the rows (shard 0's rows first) into the learner's
buffer::

    collector = RayCollector(make_task, policy, shards=4, seed=cfg.seed, address="local")
    ppo = PPO(policy, None, PPOConfig(...), collector=collector)
    ppo.fit(iterations=100)
    collector.close()

**Random streams.** Shard ``k`` resets its task with, and samples its actions from,
``shard_seed(seed, k)`` (a hash of the two numbers); the learner's generator only
shuffles minibatches. So a run depends on the seed and the number of shards, not on
where the shards run: :class:`LocalCollector` (the shards stepped one after another
in this process) and :class:`RayCollector` with the same shards give the same
weights, bit for bit on the CPU. Against PPO's own in-process collection (one task,
the learner's generator for sampling too) the streams differ, so the curve agrees
within noise only.

**Resume.** ``state_dict()`` holds every shard's generator, running episode returns,
last observation and task state (when its task has ``state_dict``); PPO saves it in
its own state, and a fresh collector with the same shards continues bit-identically.

A shard is an in-process PPO instance that only collects (its ``collect`` is the
learner's own code path), so a task that works in-process works here.
``make_task`` and the policy must pickle (cloudpickle) for Ray. ``address``:
``"local"`` starts Ray on this machine (``num_cpus`` CPUs), ``"auto"`` or
``HOST:PORT`` joins a running cluster; a Ray that is already running is used as it is.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from colonylab._checks import check_int
from colonylab.collective_ml.trainers.ppo import PPO, PPOConfig

__all__ = ["LocalCollector", "RayCollector", "RolloutShard", "shard_seed"]

TaskFactory = Callable[[int, int, nn.Module], Any]
"""``make_task(shard, shards, policy) -> task`` (the shard's worlds; ``policy`` is the
shard's copy of the network, for tasks whose opponents play the current weights)."""


def shard_seed(seed: int, shard: int) -> int:
    """The seed of shard ``shard``'s worlds and sampling: a hash of ``(seed, shard)``."""
    return int(np.random.SeedSequence([int(seed), int(shard), 0x5EED]).generate_state(1)[0])


def _to_numpy(weights: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in weights.items()}


class RolloutShard:
    """One shard: its task, its copy of the policy and its generator (the body of a Ray
    actor, or one of :class:`LocalCollector`'s shards).

    Args:
        make_task: ``make_task(shard, shards, policy) -> task``.
        policy: the network (copied).
        shard, shards: this shard's index and the number of shards.
        seed: the run's seed (the shard uses :func:`shard_seed`).
        threads: torch threads in this process (None: leave them).
    """

    def __init__(
        self,
        make_task: TaskFactory,
        policy: nn.Module,
        shard: int,
        shards: int,
        seed: int,
        threads: int | None = None,
    ) -> None:
        if threads:
            torch.set_num_threads(threads)
        self.policy = copy.deepcopy(policy).cpu()
        self.task = make_task(shard, shards, self.policy)
        self.seed = shard_seed(seed, shard)
        self._ppo: PPO | None = None
        self._steps = 0

    @property
    def n_agents(self) -> int:
        return int(self.task.n_agents)

    def _trainer(self, steps: int) -> PPO:
        if self._ppo is None or self._steps != steps:
            state = self._ppo.state_dict() if self._ppo is not None else None
            self._ppo = PPO(self.policy, self.task, PPOConfig(rollout_steps=steps, seed=self.seed))
            self._steps = steps
            if state is not None:
                self._ppo.load_state_dict(state)
        return self._ppo

    def collect(
        self, weights: Mapping[str, Any], steps: int
    ) -> tuple[dict[str, np.ndarray], list[float], dict[str, float]]:
        """Step the worlds ``steps`` times with ``weights``: ``(arrays, finished returns,
        timings)``."""
        self.policy.load_state_dict({k: torch.as_tensor(v) for k, v in weights.items()})
        ppo = self._trainer(steps)
        ppo.collect()
        arrays = {k: v.numpy().copy() for k, v in ppo._buffer.items() if not k.endswith("_cpu")}
        return arrays, list(ppo.finished), dict(ppo.timings)

    def state_dict(self) -> dict[str, Any]:
        ppo = self._trainer(max(self._steps, 1))
        full = ppo.state_dict()
        return {
            "steps": self._steps,
            **{k: full[k] for k in ("generator", "running_returns", "obs", "task")},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        ppo = self._trainer(max(int(state["steps"]), 1))
        full = ppo.state_dict()
        full.update({k: state[k] for k in ("generator", "running_returns", "obs", "task")})
        ppo.load_state_dict(full)
        self._steps = int(state["steps"])

    def ping(self) -> int:
        return self.n_agents


def _merge(parts: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    out = {}
    for key in parts[0]:
        axis = 0 if key == "alive_next" else 1  # [N] or [T(+1), N, ...]
        out[key] = np.concatenate([p[key] for p in parts], axis=axis)
    return out


def _combine(
    results: Sequence[tuple[dict, list, dict]], seconds: float
) -> tuple[dict[str, np.ndarray], list[float], dict[str, float]]:
    arrays = _merge([r[0] for r in results])
    finished = [x for r in results for x in r[1]]
    timings = {
        "collect": seconds,
        "world": max(r[2].get("world", 0.0) for r in results),
        "forward": max(r[2].get("forward", 0.0) for r in results),
    }
    return arrays, finished, timings


class LocalCollector:
    """The shards in this process, stepped one after another: the same rollouts as
    :class:`RayCollector` with the same shards (no Ray needed)."""

    def __init__(
        self, make_task: TaskFactory, policy: nn.Module, shards: int = 2, seed: int = 0
    ) -> None:
        check_int("shards", shards, 1)
        self.shards = [RolloutShard(make_task, policy, k, shards, seed) for k in range(shards)]
        self.n_agents = sum(s.n_agents for s in self.shards)

    def collect(self, policy: nn.Module, steps: int):
        start = time.perf_counter()
        weights = _to_numpy(policy.state_dict())
        results = [s.collect(weights, steps) for s in self.shards]
        return _combine(results, time.perf_counter() - start)

    def state_dict(self) -> dict[str, Any]:
        return {"shards": [s.state_dict() for s in self.shards]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        _check_shards(state, len(self.shards))
        for shard, s in zip(self.shards, state["shards"], strict=True):
            shard.load_state_dict(s)

    def close(self) -> None:
        pass


def _check_shards(state: Mapping[str, Any], shards: int) -> None:
    if len(state.get("shards", ())) != shards:
        raise ValueError(
            f"the collector state has {len(state.get('shards', ()))} shards; this collector "
            f"has {shards} (--ray-actors must match the run being resumed)"
        )


def start_ray(address: str | None, num_cpus: int | None = None) -> Any:
    """Ray, started or joined: ``"local"`` (or None) starts it on this machine with
    ``num_cpus`` CPUs, ``"auto"`` / ``HOST:PORT`` joins a cluster; a running Ray is kept.

    Raises:
        ValueError: Ray is not installed, or no cluster answers at ``address``.
    """
    try:
        import ray
    except ImportError:
        raise ValueError('--ray-address needs Ray: pip install "colonylab[distributed]"') from None
    if ray.is_initialized():
        return ray
    if address in (None, "", "local"):
        ray.init(
            num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
            configure_logging=False,
        )  # fmt: skip
        return ray
    from colonylab.collective_ml.population import init_ray

    return init_ray(address)


class RayCollector:
    """The shards as Ray actors (one each), stepping their worlds in parallel.

    Args:
        make_task: ``make_task(shard, shards, policy) -> task`` (must pickle).
        policy: the network (a copy goes to every actor).
        shards: actors (each one shard).
        seed: the run's seed.
        address: ``"local"`` (Ray on this machine), ``"auto"`` or ``HOST:PORT``.
        num_cpus: CPUs of a local Ray (None: all of the machine's).
        cpus_per_actor: Ray CPUs each actor reserves.
        threads_per_actor: torch threads inside each actor.
    """

    def __init__(
        self,
        make_task: TaskFactory,
        policy: nn.Module,
        shards: int = 2,
        seed: int = 0,
        *,
        address: str | None = "local",
        num_cpus: int | None = None,
        cpus_per_actor: float = 1.0,
        threads_per_actor: int = 1,
    ) -> None:
        check_int("shards", shards, 1)
        check_int("threads_per_actor", threads_per_actor, 1)
        ray = self._ray = start_ray(address, num_cpus)
        actor = ray.remote(RolloutShard).options(num_cpus=cpus_per_actor)
        template = copy.deepcopy(policy).cpu()
        self.actors = [
            actor.remote(make_task, template, k, shards, seed, threads_per_actor)
            for k in range(shards)
        ]
        self.n_agents = sum(ray.get([a.ping.remote() for a in self.actors]))

    def _get(self, refs: list) -> list:
        try:
            return self._ray.get(refs)
        except self._ray.exceptions.RayTaskError as exc:
            raise exc.as_instanceof_cause() from None

    def collect(self, policy: nn.Module, steps: int):
        if self.actors is None:
            raise RuntimeError("this RayCollector was closed; build a new one")
        start = time.perf_counter()
        weights = self._ray.put(_to_numpy(policy.state_dict()))
        results = self._get([a.collect.remote(weights, steps) for a in self.actors])
        return _combine(results, time.perf_counter() - start)

    def state_dict(self) -> dict[str, Any]:
        return {"shards": self._get([a.state_dict.remote() for a in self.actors])}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        _check_shards(state, len(self.actors))
        self._get(
            [a.load_state_dict.remote(s) for a, s in zip(self.actors, state["shards"], strict=True)]
        )

    def close(self) -> None:
        """Kill the actors (Ray itself keeps running)."""
        for a in self.actors or ():
            with contextlib.suppress(Exception):  # it may be gone already
                self._ray.kill(a)
        self.actors = None
