"""Evaluators: a population of flat policy parameters ``(P, D)`` -> fitness ``(P,)``.

Fitness is the **mean episode return** over ``episodes`` episodes per individual:
HIGHER IS BETTER. The population cores minimise, so build them with
``maximize=True`` (or tell ``-fitness``)::

    policy = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2))
    evaluator = BatchedEvaluator(policy, CartPoleWorld.factory(validate_actions=False),
                                 episodes=8, seed=0)
    core = PSO(dim=evaluator.num_params, pop_size=64, bounds=(-2, 2), maximize=True)
    for generation in range(50):
        core.tell(evaluator(core.ask()))

:func:`make_evaluator` builds one of them by name (an experiment's ``--evaluator
batched|loop|ray`` and ``--ray-address``). Three evaluators, one call (``evaluator(params, seed=None) -> (P,)``) and one result for
the same seed:

:class:`BatchedEvaluator`  in-process: one vectorized world holding ``P * episodes``
                           environments and ONE batched policy forward per step for
                           the whole population (``torch.func.functional_call`` under
                           ``torch.vmap`` over :func:`~colonylab.collective_ml.base.batched_params_dict`).
:class:`LoopEvaluator`     the baseline: individual by individual, episode by episode,
                           over one Gymnasium-style ``Env`` (``reset(seed=...)``,
                           ``step(int)``).
:class:`RayEvaluator`      Ray actors, each holding a world and a policy template (a
                           :class:`BatchedEvaluator`); the population is cut into
                           chunks; tasks on a restarted actor are retried by Ray and
                           chunks of an actor that died for good are resubmitted to a
                           fresh one. ``pip install "colonylab[distributed]"``.

**Seeds.** Episode ``e`` of individual ``i`` starts from seed
``episode_seeds(seed, i, e)``, a hash of the three numbers, so cutting the population
into chunks (Ray) or evaluating it in another order changes nothing. With
``shared_episodes=True`` the individual is left out of the hash: every individual
meets the same starts (common random numbers, which rank candidates with less noise).
``seed=None`` in a call uses the evaluator's ``seed``, i.e. the same episodes every
call; pass a new seed per generation to resample them.

**Worlds.** This module does not import ``colonylab.envs`` (the arrows point the other
way): the world is injected as a factory ``world_factory(num_envs=N, device=device)``
returning anything that speaks the vectorized protocol :class:`VectorWorld` —
``reset(seed=int64[N]) -> obs[N, ...]`` and ``step(actions[N]) -> (obs, reward,
terminated, truncated, info)`` on tensors, for example
``colonylab.envs.classic.CartPoleWorld.factory(validate_actions=False)`` (every world's
``XWorld.factory(config, **overrides)``).
The evaluator masks rewards after an episode's first ``terminated | truncated`` itself,
so freezing and auto-resetting worlds both work. Each episode runs at most
``max_steps`` steps.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call

from colonylab.collective_ml.base import batched_params_dict, num_params, unflatten_into

__all__ = [
    "EVALUATORS",
    "BatchedEvaluator",
    "LoopEvaluator",
    "RayEvaluator",
    "VectorWorld",
    "argmax_actions",
    "episode_seeds",
    "init_ray",
    "make_evaluator",
]

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@runtime_checkable
class VectorWorld(Protocol):
    """What :class:`BatchedEvaluator` needs from a world of ``N`` environments."""

    def reset(self, seed: Any = None) -> Tensor:
        """``seed``: ``int64[N]``, one per env. Returns ``obs[N, ...]``."""
        ...

    def step(self, actions: Tensor) -> Any:
        """``actions[N]`` -> ``(obs[N, ...], reward[N], terminated[N], truncated[N], info)``."""
        ...


WorldFactory = Callable[..., VectorWorld]
"""``world_factory(num_envs=N, device=device) -> VectorWorld``."""


def argmax_actions(output: Tensor) -> Tensor:
    """Discrete actions from policy outputs: ``(..., A) -> (...)`` int64, the argmax."""
    return output.argmax(dim=-1)


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser over a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def episode_seeds(
    seed: int, indices: np.ndarray | range | int, episodes: int, *, shared: bool = False
) -> np.ndarray:
    """Seeds of every (individual, episode): ``int64[len(indices), episodes]`` in
    ``[0, 2**63)``, a SplitMix64 hash of ``(seed, index, episode)``.

    Args:
        seed: Base seed (>= 0).
        indices: Individuals' indices in the population (an int means ``range(n)``).
        episodes: Episodes per individual.
        shared: Leave the index out of the hash (every individual, the same starts).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    idx = np.arange(indices) if isinstance(indices, (int, np.integer)) else np.asarray(indices)
    idx = idx.astype(np.uint64)
    if shared:
        idx = np.zeros_like(idx)
    eps = np.arange(episodes, dtype=np.uint64)
    h = _splitmix64(np.full(1, int(seed) & int(_MASK64), dtype=np.uint64))
    h = _splitmix64(h[:, None] ^ idx[:, None])  # (n, 1)
    h = _splitmix64(h ^ _splitmix64(eps + np.uint64(0x632BE59BD9B4E019))[None, :])  # (n, E)
    return (h >> np.uint64(1)).astype(np.int64)


def _check_common(episodes: int, max_steps: int, seed: int) -> None:
    for name, value, low in (("episodes", episodes, 1), ("max_steps", max_steps, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")


def _policy_dtype(policy: nn.Module) -> torch.dtype:
    params = list(policy.parameters())
    if not params:
        raise ValueError(f"{type(policy).__name__} has no parameters to evaluate")
    return params[0].dtype


class BatchedEvaluator:
    """The whole population in one vectorized world, one batched forward per step.

    Args:
        policy: Template module ``obs (B, *obs_shape) -> outputs (B, ...)``; only its
            structure is used (a private copy lives on ``device``). Its parameters are
            replaced by each individual's flat vector (``named_parameters`` order).
        world_factory: ``world_factory(num_envs=N, device=device) -> VectorWorld``;
            called once per distinct ``N = P * episodes`` and the world reused.
        episodes: Episodes per individual (the fitness is their mean return).
        max_steps: Steps per episode at most (worlds may end episodes earlier).
        seed: Default base seed of :func:`episode_seeds`.
        shared_episodes: The same starts for every individual.
        device: Where the world and the forward run (default CPU).
        action_fn: Policy outputs ``(P, E, ...)`` -> actions; default argmax.
        obs_dtype: Observations are cast to it before the forward (default: the
            policy's parameter dtype).
        drop_finished: When at most half of the environments still run and the world
            has ``subset(index) -> world``, continue with a world of the running ones
            only (finished episodes cost nothing more). Results are the same either way.
        drop_min: Drop finished episodes only while at least this many envs are stepped.
        recurrent: The policy carries a state: ``policy(obs, state) -> (outputs,
            new_state)`` with ``state=None`` at an episode's start and
            ``policy.initial_state(obs)`` giving the zero state (a pytree of tensors
            with a leading batch axis), e.g. :class:`~colonylab.agents.sensory.AttentionNeuronPolicy`.
            Each environment keeps its own state; it travels with the environment when
            finished episodes are dropped. Default (None): recurrent when the policy
            has an ``initial_state`` method.
    """

    def __init__(
        self,
        policy: nn.Module,
        world_factory: WorldFactory,
        *,
        episodes: int = 1,
        max_steps: int = 500,
        seed: int = 0,
        shared_episodes: bool = False,
        device: torch.device | str | None = None,
        action_fn: Callable[[Tensor], Tensor] = argmax_actions,
        obs_dtype: torch.dtype | None = None,
        drop_finished: bool = True,
        drop_min: int = 64,
        recurrent: bool | None = None,
    ) -> None:
        _check_common(episodes, max_steps, seed)
        if recurrent is None:
            recurrent = callable(getattr(policy, "initial_state", None))
        self.recurrent = bool(recurrent)
        self.drop_finished = bool(drop_finished)
        self.drop_min = drop_min
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.policy = copy.deepcopy(policy).to(self.device).eval()
        self.param_dtype = _policy_dtype(self.policy)
        self.num_params = num_params(self.policy)
        self.world_factory = world_factory
        self.episodes = episodes
        self.max_steps = max_steps
        self.seed = seed
        self.shared_episodes = bool(shared_episodes)
        self.action_fn = action_fn
        self.obs_dtype = obs_dtype or self.param_dtype
        self.last_env_steps = 0
        """Environment steps of running episodes in the last call (the work done)."""
        self._worlds: dict[int, VectorWorld] = {}
        policy_module = self.policy
        # Untying costs ~100 us a call; only modules that share a parameter need it.
        tied = len(list(policy_module.named_parameters(remove_duplicate=False))) > len(
            list(policy_module.named_parameters())
        )

        def forward(params: dict[str, Tensor], obs: Tensor) -> Tensor:
            return functional_call(policy_module, params, (obs,), tie_weights=tied)

        def forward_recurrent(params: dict[str, Tensor], obs: Tensor, state: Any) -> Any:
            return functional_call(policy_module, params, (obs, state), tie_weights=tied)

        # one vmap over environments: (n, 1, *obs) with (n, *param) -> (n, 1, ...)
        self._batched_forward = torch.vmap(forward_recurrent if self.recurrent else forward)

    def world(self, num_envs: int) -> VectorWorld:
        """The (cached) world of ``num_envs`` environments."""
        if num_envs not in self._worlds:
            self._worlds[num_envs] = self.world_factory(num_envs=num_envs, device=self.device)
        return self._worlds[num_envs]

    def __call__(self, params: Tensor, seed: int | None = None, *, first_index: int = 0) -> Tensor:
        """Mean return per individual: ``(P, D) -> (P,)`` float64 on :attr:`device`.

        Args:
            params: ``(P, D)`` flat parameters, any float dtype and device.
            seed: Base seed (default: the evaluator's).
            first_index: Index of ``params[0]`` in the whole population (for chunks).
        """
        return self.returns(params, seed, first_index=first_index).mean(dim=1)

    @torch.no_grad()
    def returns(self, params: Tensor, seed: int | None = None, *, first_index: int = 0) -> Tensor:
        """Every episode's return: ``(P, D) -> (P, episodes)`` float64 on :attr:`device`.

        Each environment gets its individual's parameters (gathered once, and again when
        finished episodes are dropped) and one ``vmap``-ed forward runs the policy on
        every running environment: an individual's numbers do not depend on how the
        population is chunked or how many episodes are still running.
        """
        params = self._check_params(params)
        pop, eps = params.shape[0], self.episodes
        n = pop * eps
        seeds = episode_seeds(
            self.seed if seed is None else seed,
            np.arange(first_index, first_index + pop),
            eps,
            shared=self.shared_episodes,
        )
        world = self.world(n)
        obs = world.reset(seed=seeds.reshape(n))
        per_individual = batched_params_dict(self.policy, params)
        owner = torch.arange(n, device=self.device) // eps  # env -> individual
        slot = torch.arange(n, device=self.device)  # env -> flat (individual, episode)
        env_params = {k: v[owner] for k, v in per_individual.items()}
        total = torch.zeros(n, dtype=torch.float64, device=self.device)
        steps = torch.zeros(n, dtype=torch.int64, device=self.device)
        acc = torch.zeros(n, dtype=torch.float64, device=self.device)
        count = torch.zeros(n, dtype=torch.int64, device=self.device)
        running = torch.ones(n, dtype=torch.bool, device=self.device)
        # Reading "how many still run" waits for an accelerator; there, look every 16 steps.
        check_every = 1 if self.device.type == "cpu" else 16
        can_drop = self.drop_finished and hasattr(world, "subset")
        state = None
        if self.recurrent:
            x = torch.as_tensor(obs, device=self.device).to(self.obs_dtype).unsqueeze(1)
            # (n, 1, ...) per environment, zeros: every episode starts fresh
            state = torch.utils._pytree.tree_map(
                lambda t: t.unsqueeze(1),
                self.policy.initial_state(x.squeeze(1)),
            )
        for t in range(self.max_steps):
            x = torch.as_tensor(obs, device=self.device).to(self.obs_dtype).unsqueeze(1)
            if self.recurrent:
                out, state = self._batched_forward(env_params, x, state)
                out = out.squeeze(1)  # (n_running, ...)
            else:
                out = self._batched_forward(env_params, x).squeeze(1)  # (n_running, ...)
            obs, reward, terminated, truncated, _ = world.step(self.action_fn(out))
            reward = torch.as_tensor(reward, device=self.device).to(torch.float64)
            acc += torch.where(running, reward, 0.0)
            count += running
            running &= ~(
                torch.as_tensor(terminated, device=self.device)
                | torch.as_tensor(truncated, device=self.device)
            )
            if (t + 1) % check_every:
                continue
            left = int(running.sum())
            if left == 0:
                break
            if can_drop and left <= running.numel() // 2 and running.numel() >= self.drop_min:
                # bank the finished episodes, keep only the running envs
                total.index_add_(0, slot, acc)
                steps.index_add_(0, slot, count)
                keep = running.nonzero().squeeze(1)
                world = world.subset(keep)
                obs = torch.as_tensor(obs, device=self.device)[keep]
                if state is not None:
                    state = torch.utils._pytree.tree_map(lambda t, keep=keep: t[keep], state)
                slot, owner = slot[keep], owner[keep]
                env_params = {k: v[owner] for k, v in per_individual.items()}
                acc = torch.zeros(left, dtype=torch.float64, device=self.device)
                count = torch.zeros(left, dtype=torch.int64, device=self.device)
                running = torch.ones(left, dtype=torch.bool, device=self.device)
        total.index_add_(0, slot, acc)
        steps.index_add_(0, slot, count)
        self.last_env_steps = int(steps.sum())
        return total.reshape(pop, eps)

    def _check_params(self, params: Tensor) -> Tensor:
        params = torch.as_tensor(params)
        if params.dim() != 2 or params.shape[1] != self.num_params or params.shape[0] < 1:
            raise ValueError(
                f"params must have shape (P, {self.num_params}) with P >= 1 (one flat "
                f"vector per individual for {type(self.policy).__name__}), got "
                f"{tuple(params.shape)}"
            )
        return params.detach().to(device=self.device, dtype=self.param_dtype)


class LoopEvaluator:
    """The per-individual baseline: one Gymnasium-style env, one episode at a time.

    Args:
        policy: Template module (a private CPU copy receives each individual's params).
        env_factory: ``env_factory() -> env`` with ``reset(seed=int) -> (obs, info)`` and
            ``step(int) -> (obs, reward, terminated, truncated, info)``, e.g.
            ``lambda: gymnasium.make("CartPole-v1")``.
        episodes, max_steps, seed, shared_episodes, action_fn, obs_dtype, recurrent: as
            :class:`BatchedEvaluator`; the same seeds start the same episodes. An action
            of one integer goes to the env as an ``int``, any other as a NumPy array.
    """

    def __init__(
        self,
        policy: nn.Module,
        env_factory: Callable[[], Any],
        *,
        episodes: int = 1,
        max_steps: int = 500,
        seed: int = 0,
        shared_episodes: bool = False,
        action_fn: Callable[[Tensor], Tensor] = argmax_actions,
        obs_dtype: torch.dtype | None = None,
        recurrent: bool | None = None,
    ) -> None:
        _check_common(episodes, max_steps, seed)
        if recurrent is None:
            recurrent = callable(getattr(policy, "initial_state", None))
        self.recurrent = bool(recurrent)
        self.policy = copy.deepcopy(policy).cpu().eval()
        self.param_dtype = _policy_dtype(self.policy)
        self.num_params = num_params(self.policy)
        self.env_factory = env_factory
        self.env = env_factory()
        self.episodes = episodes
        self.max_steps = max_steps
        self.seed = seed
        self.shared_episodes = bool(shared_episodes)
        self.action_fn = action_fn
        self.obs_dtype = obs_dtype or self.param_dtype
        self.last_env_steps = 0

    def __call__(self, params: Tensor, seed: int | None = None, *, first_index: int = 0) -> Tensor:
        """Mean return per individual: ``(P, D) -> (P,)`` float64 (CPU)."""
        return self.returns(params, seed, first_index=first_index).mean(dim=1)

    @torch.no_grad()
    def returns(self, params: Tensor, seed: int | None = None, *, first_index: int = 0) -> Tensor:
        """Every episode's return: ``(P, D) -> (P, episodes)`` float64 (CPU)."""
        params = torch.as_tensor(params)
        if params.dim() != 2 or params.shape[1] != self.num_params or params.shape[0] < 1:
            raise ValueError(
                f"params must have shape (P, {self.num_params}) with P >= 1, got "
                f"{tuple(params.shape)}"
            )
        params = params.detach().cpu().to(self.param_dtype)
        pop = params.shape[0]
        seeds = episode_seeds(
            self.seed if seed is None else seed,
            np.arange(first_index, first_index + pop),
            self.episodes,
            shared=self.shared_episodes,
        )
        out = torch.zeros(pop, self.episodes, dtype=torch.float64)
        env_steps = 0
        for i in range(pop):
            unflatten_into(self.policy, params[i])
            for e in range(self.episodes):
                obs, _ = self.env.reset(seed=int(seeds[i, e]))
                total = 0.0
                state = None
                for _ in range(self.max_steps):
                    x = torch.as_tensor(obs).to(self.obs_dtype).unsqueeze(0)
                    if self.recurrent:
                        output, state = self.policy(x, state)
                    else:
                        output = self.policy(x)
                    action = self.action_fn(output)[0]
                    if action.numel() == 1 and not action.is_floating_point():
                        action = int(action)
                    else:
                        action = action.numpy()
                    obs, reward, terminated, truncated, _ = self.env.step(action)
                    total += float(reward)
                    env_steps += 1
                    if terminated or truncated:
                        break
                out[i, e] = total
        self.last_env_steps = env_steps
        return out


# -- Ray ----------------------------------------------------------------------------------------
class _RolloutWorker:
    """Body of the Ray actor: a :class:`BatchedEvaluator` on the actor's CPU."""

    def __init__(self, policy: nn.Module, world_factory: WorldFactory, kwargs: dict, threads: int):
        if threads:
            torch.set_num_threads(threads)
        self.evaluator = BatchedEvaluator(policy, world_factory, device="cpu", **kwargs)

    def returns(self, params: np.ndarray, seed: int, first_index: int) -> tuple[np.ndarray, int]:
        out = self.evaluator.returns(torch.from_numpy(params), seed, first_index=first_index)
        return out.numpy(), self.evaluator.last_env_steps

    def ping(self) -> bool:
        return True


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ImportError(
            'RayEvaluator needs Ray: pip install "colonylab[distributed]" (or "ray[default]")'
        ) from None
    return ray


class RayEvaluator:
    """Population evaluation on Ray actors; the same result as :class:`BatchedEvaluator`.

    Each of ``num_actors`` actors holds a :class:`BatchedEvaluator` (its own world and
    policy template, on the actor's CPU). A call cuts the population into
    ``num_actors * chunks_per_actor`` contiguous chunks, sends them round-robin, and
    puts the returns back in order; the seeds depend only on each individual's index,
    so the result equals the in-process one.

    Failures: actors are created with ``max_restarts`` and ``max_task_retries`` equal to
    ``max_retries``, so Ray restarts an actor that dies and re-runs its pending tasks
    (evaluation is a pure function, so a re-run gives the same answer). When an actor
    is gone for good (killed with ``no_restart=True``, restarts used up) the chunk's
    ``RayActorError`` makes this class replace the actor and resubmit the chunk, up to
    ``max_retries`` times per chunk. Errors raised by the evaluation itself (bad
    params) are not retried.

    Ray is started on first use if it is not running (``ray.init()`` on this machine);
    call ``ray.init(address=...)`` before to use a cluster. :meth:`shutdown` ends the
    actors (Ray keeps running).

    Args:
        policy, world_factory, episodes, max_steps, seed, shared_episodes, action_fn,
            obs_dtype: as :class:`BatchedEvaluator` (all must pickle with cloudpickle).
        num_actors: Actors to create.
        chunks_per_actor: Chunks per actor and call (more: better balance).
        max_retries: Restarts / retries per actor and resubmissions per chunk.
        cpus_per_actor: Ray CPUs each actor reserves.
        threads_per_actor: Torch threads inside each actor.
    """

    def __init__(
        self,
        policy: nn.Module,
        world_factory: WorldFactory,
        *,
        episodes: int = 1,
        max_steps: int = 500,
        seed: int = 0,
        shared_episodes: bool = False,
        action_fn: Callable[[Tensor], Tensor] = argmax_actions,
        obs_dtype: torch.dtype | None = None,
        num_actors: int = 2,
        chunks_per_actor: int = 1,
        max_retries: int = 3,
        cpus_per_actor: float = 1.0,
        threads_per_actor: int = 1,
    ) -> None:
        _check_common(episodes, max_steps, seed)
        for name, value, low in (
            ("num_actors", num_actors, 1),
            ("chunks_per_actor", chunks_per_actor, 1),
            ("max_retries", max_retries, 0),
            ("threads_per_actor", threads_per_actor, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        ray = _import_ray()
        self._ray = ray
        template = copy.deepcopy(policy).cpu().eval()
        self.num_params = num_params(template)
        self.param_dtype = _policy_dtype(template)
        self.seed = seed
        self.episodes = episodes
        self.max_retries = max_retries
        self.chunks_per_actor = chunks_per_actor
        self.last_env_steps = 0
        self.resubmissions = 0
        """Chunks resubmitted after an actor died for good (over the evaluator's life)."""
        self._kwargs = dict(
            episodes=episodes,
            max_steps=max_steps,
            seed=seed,
            shared_episodes=shared_episodes,
            action_fn=action_fn,
            obs_dtype=obs_dtype,
        )
        self._actor_cls = ray.remote(_RolloutWorker).options(
            num_cpus=cpus_per_actor, max_restarts=max_retries, max_task_retries=max_retries
        )
        # Put the (policy, factory) pair in the object store once; every actor reads it.
        self._policy_ref = ray.put(template)
        self._factory_ref = ray.put(world_factory)
        self._threads = threads_per_actor
        self.actors = [self._new_actor() for _ in range(num_actors)]

    def _new_actor(self):
        return self._actor_cls.remote(
            self._policy_ref, self._factory_ref, self._kwargs, self._threads
        )

    def __call__(self, params: Tensor, seed: int | None = None) -> Tensor:
        """Mean return per individual: ``(P, D) -> (P,)`` float64 on ``params``' device."""
        return self.returns(params, seed).mean(dim=1)

    def returns(self, params: Tensor, seed: int | None = None) -> Tensor:
        """Every episode's return: ``(P, D) -> (P, episodes)`` float64 on ``params``' device."""
        ray = self._ray
        params = torch.as_tensor(params)
        if params.dim() != 2 or params.shape[1] != self.num_params or params.shape[0] < 1:
            raise ValueError(
                f"params must have shape (P, {self.num_params}) with P >= 1, got "
                f"{tuple(params.shape)}"
            )
        if self.actors is None:
            raise RuntimeError("this RayEvaluator was shut down; build a new one")
        seed = self.seed if seed is None else seed
        flat = params.detach().to("cpu", self.param_dtype).numpy()
        bounds = np.array_split(np.arange(len(flat)), len(self.actors) * self.chunks_per_actor)
        chunks = [(int(b[0]), int(b[-1]) + 1) for b in bounds if len(b)]
        results: list[np.ndarray | None] = [None] * len(chunks)
        steps = [0] * len(chunks)
        attempts = [0] * len(chunks)
        pending: dict[Any, tuple[int, int, Any]] = {}  # ref -> (chunk, slot, actor)

        def submit(k: int, slot: int) -> None:
            start, stop = chunks[k]
            actor = self.actors[slot]
            pending[actor.returns.remote(flat[start:stop], seed, start)] = (k, slot, actor)

        for k in range(len(chunks)):
            submit(k, k % len(self.actors))
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            ref = done[0]
            k, slot, actor = pending.pop(ref)
            try:
                results[k], steps[k] = ray.get(ref)
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
                attempts[k] += 1
                if attempts[k] > self.max_retries:
                    raise RuntimeError(
                        f"chunk {chunks[k]} of the population failed {attempts[k]} times; "
                        f"last error: {exc}"
                    ) from exc
                if self.actors[slot] is actor:  # not yet replaced for another chunk
                    self._replace_actor(slot)
                self.resubmissions += 1
                submit(k, slot)
            except ray.exceptions.RayTaskError as exc:
                # an error of the evaluation itself (not of the machinery): no retry
                raise exc.as_instanceof_cause() from None
        self.last_env_steps = int(sum(steps))
        out = torch.from_numpy(np.concatenate(results, axis=0))  # type: ignore[arg-type]
        return out.to(params.device)

    def _replace_actor(self, slot: int) -> None:
        with contextlib.suppress(Exception):  # it may be gone already
            self._ray.kill(self.actors[slot], no_restart=True)
        self.actors[slot] = self._new_actor()

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until every actor answers (they start in the background)."""
        deadline = time.monotonic() + timeout
        refs = [a.ping.remote() for a in self.actors]
        self._ray.get(refs, timeout=max(deadline - time.monotonic(), 1.0))

    def shutdown(self) -> None:
        """Kill the actors (Ray itself keeps running)."""
        if self.actors is None:
            return
        for actor in self.actors:
            with contextlib.suppress(Exception):  # it may be gone already
                self._ray.kill(actor, no_restart=True)
        self.actors = None

    def __enter__(self) -> RayEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


# -- choosing one from the command line ---------------------------------------------------------
EVALUATORS = ("batched", "loop", "ray")
"""Names of :func:`make_evaluator`'s kinds (an experiment's ``--evaluator``)."""


def _probe_ray_address(address: str, timeout_s: float = 5.0) -> None:
    """Refuse at once an address where nothing listens (``ray.init`` would retry for
    minutes, printing its own log lines)."""
    import socket

    if address in ("auto", "local"):
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--ray-address {address!r}: expected HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ValueError(
            f"--ray-address {address!r}: nothing answers at {host}:{port} "
            f"({exc.strerror or exc}); start a cluster with 'ray start --head' or drop "
            "--ray-address for a local Ray"
        ) from None


def init_ray(address: str | None = None) -> Any:
    """Ray, started if it is not running: ``ray.init(address=address)`` to join a running
    cluster, or a local Ray on this machine when ``address`` is None. Returns the module.

    Raises:
        ImportError: Ray is not installed.
        ValueError: no cluster answers at ``address``.
    """
    ray = _import_ray()
    if address:
        _probe_ray_address(address)
    if not ray.is_initialized():
        try:
            ray.init(address=address) if address else ray.init()
        except ConnectionError as exc:
            first = (str(exc).strip().splitlines() or ["no answer"])[0][:200]
            raise ValueError(f"--ray-address {address!r}: cannot connect to Ray: {first}") from None
    return ray


def make_evaluator(
    kind: str,
    policy: nn.Module,
    *,
    world_factory: WorldFactory | None = None,
    env_factory: Callable[[], Any] | None = None,
    episodes: int = 1,
    max_steps: int = 500,
    seed: int = 0,
    shared_episodes: bool = False,
    device: torch.device | str | None = None,
    action_fn: Callable[[Tensor], Tensor] = argmax_actions,
    obs_dtype: torch.dtype | None = None,
    ray_address: str | None = None,
    num_actors: int | None = None,
) -> BatchedEvaluator | LoopEvaluator | RayEvaluator:
    """The evaluator an experiment's ``--evaluator`` names; the same call and, for
    ``batched`` and ``ray``, the same result for the same seed.

    Args:
        kind: ``batched`` (in-process, one vectorized world), ``loop`` (one
            single-environment ``env_factory()`` env, individual by individual) or
            ``ray`` (Ray actors, each a :class:`BatchedEvaluator`).
        policy: The template module.
        world_factory: ``world_factory(num_envs=N, device=d)`` (batched, ray).
        env_factory: ``env_factory() -> env`` with the Gymnasium API (loop).
        episodes, max_steps, seed, shared_episodes, action_fn, obs_dtype: As
            :class:`BatchedEvaluator`.
        device: Where the batched evaluator runs (Ray actors and the loop use the CPU).
        ray_address: A running cluster for ``ray`` (None: Ray on this machine, started
            unless already running).
        num_actors: Ray actors (default: the cluster's CPUs).

    Raises:
        ValueError: an unknown ``kind``, a missing factory, ``ray_address`` without
            ``ray``, or a cluster that does not answer.
    """
    if kind not in EVALUATORS:
        raise ValueError(f"--evaluator must be one of {', '.join(EVALUATORS)}, got {kind!r}")
    if ray_address is not None and kind != "ray":
        raise ValueError(f"--ray-address {ray_address!r} needs --evaluator ray, got {kind!r}")
    common = dict(
        episodes=episodes,
        max_steps=max_steps,
        seed=seed,
        shared_episodes=shared_episodes,
        action_fn=action_fn,
        obs_dtype=obs_dtype,
    )
    if kind == "loop":
        if env_factory is None:
            raise ValueError("--evaluator loop needs a single-environment world; this one has none")
        return LoopEvaluator(policy, env_factory, **common)
    if world_factory is None:
        raise ValueError(f"--evaluator {kind} needs a vectorized world factory")
    if kind == "batched":
        return BatchedEvaluator(policy, world_factory, device=device, **common)
    ray = init_ray(ray_address)
    if num_actors is None:
        num_actors = max(1, int(ray.cluster_resources().get("CPU", 1)))
    return RayEvaluator(policy, world_factory, num_actors=num_actors, **common)
