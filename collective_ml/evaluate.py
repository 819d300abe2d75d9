"""Scores of trained agents: mean returns and tables of agents under conditions.

Nothing here imports a world: the caller passes world factories
(``factory(num_envs=N, device=d)``) and conditions, any objects with a ``name`` and a
``wrap(world, seed) -> world`` (:class:`colonylab.envs.wrappers.conditions.Condition`).
Each score is one :class:`~colonylab.collective_ml.population.BatchedEvaluator` call
over fixed episodes (``shared_episodes=True``: every agent meets the same starts and
the same shuffles for the same seed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from colonylab.collective_ml.base import flatten_params
from colonylab.collective_ml.population import BatchedEvaluator

__all__ = [
    "continuous_actions",
    "discrete_actions",
    "episode_returns",
    "evaluate_conditions",
    "mean_return",
]

WorldFactory = Callable[..., Any]


def continuous_actions(out: Tensor) -> Tensor:
    """Policy outputs ``(n, A)`` -> actions: ``(n,)`` for one action, else as they are."""
    return out.squeeze(-1) if out.shape[-1] == 1 else out


def discrete_actions(out: Tensor) -> Tensor:
    """Logits ``(n, A)`` -> argmax ``(n,)``."""
    return out.argmax(dim=-1)


def episode_returns(
    policy: nn.Module,
    factory: WorldFactory,
    *,
    episodes: int,
    max_steps: int,
    seed: int,
    action_fn: Callable[[Tensor], Tensor] = continuous_actions,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """``(episodes,)`` returns of ``policy`` on fixed episodes of ``factory``'s worlds."""
    evaluator = BatchedEvaluator(
        policy,
        factory,
        episodes=episodes,
        max_steps=max_steps,
        seed=seed,
        shared_episodes=True,
        action_fn=action_fn,
        device=device,
    )
    return evaluator.returns(flatten_params(policy)[None])[0].cpu().numpy()


def mean_return(
    policy: nn.Module,
    factory: WorldFactory,
    *,
    episodes: int,
    max_steps: int,
    seed: int,
    action_fn: Callable[[Tensor], Tensor] = continuous_actions,
) -> float:
    """Mean return over ``episodes`` fixed episodes (a validation score: the same
    episodes every call)."""
    evaluator = BatchedEvaluator(
        policy,
        factory,
        episodes=episodes,
        max_steps=max_steps,
        seed=seed,
        shared_episodes=True,
        action_fn=action_fn,
    )
    return float(evaluator(flatten_params(policy)[None]).mean())


def evaluate_conditions(
    agents: dict[str, nn.Module],
    factory: WorldFactory,
    conditions: Sequence[Any],
    *,
    episodes: int,
    max_steps: int,
    seed: int,
    action_fn: Callable[[Tensor], Tensor] = continuous_actions,
    adapt: Callable[[str, nn.Module, Any], Any] | None = None,
    device: torch.device | str = "cpu",
) -> list[dict[str, Any]]:
    """Every agent under every condition: rows ``{condition, agent, mean, std,
    episodes, returns}`` (plus ``note``).

    ``adapt(label, agent, condition)`` returns the condition that agent meets instead
    (e.g. occlusion by zeroing for a fixed-input baseline) or ``None`` where it cannot
    be run (noise channels change the number of inputs): that row has ``mean`` and
    ``std`` ``None`` and a note. The same ``seed`` gives every agent the same episode
    starts and the same shuffles.
    """
    rows: list[dict[str, Any]] = []
    for condition in conditions:
        for label, policy in agents.items():
            cond = adapt(label, policy, condition) if adapt is not None else condition
            note = ""
            if cond is None:
                note = "n/a: the MLP takes a fixed number of inputs"
            elif cond != condition:
                note = f"as {cond.name}"
            row: dict[str, Any] = {"condition": condition.name, "agent": label}
            if cond is None:
                row.update(mean=None, std=None, episodes=0, note=note)
                rows.append(row)
                continue

            def make(num_envs: int, device: Any = None, cond: Any = cond) -> Any:
                return cond.wrap(factory(num_envs=num_envs, device=device), seed)

            returns = episode_returns(
                policy,
                make,
                episodes=episodes,
                max_steps=max_steps,
                seed=seed,
                action_fn=action_fn,
                device=device,
            )
            row.update(
                mean=float(returns.mean()),
                std=float(returns.std()),
                episodes=int(episodes),
                returns=[round(float(r), 3) for r in returns],
            )
            if note:
                row["note"] = note
            rows.append(row)
    return rows
