"""Evaluation conditions of the sensory-substitution experiments: which wrappers go over
a world (shuffled at reset or every ``K`` steps, noise channels, occluded patches).

=====================================  ============================================
condition                               wrappers (innermost first)
=====================================  ============================================
``Condition("unshuffled")``             none
``Condition(.., shuffle=0)``            :class:`ShuffleObservations` drawn at reset
``Condition(.., shuffle=K)``            re-drawn every ``K`` steps
``Condition(.., noise=M)``              :class:`NoiseChannels`, ``M`` channels (then
                                        shuffled in with the real ones)
``Condition(.., occlude=s)``            :class:`OccludePatches`, share ``s`` (first)
=====================================  ============================================

:func:`wrapped_factory` turns a world factory (``factory(num_envs=N, device=d)``) into
one whose worlds come wrapped; :class:`ReseedOnReset` makes a world that a population
evaluator reuses across generations draw its shuffles from each reset's seeds alone
(so a resumed run meets the same shuffles); :class:`OneEnv` presents a one-env vectorized world
with the Gymnasium single-env API (for the per-individual loop evaluator).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from colonylab.envs.wrappers.sensory import (
    NoiseChannels,
    OccludePatches,
    SensoryWrapper,
    ShuffleObservations,
)

__all__ = ["Condition", "OneEnv", "ReseedOnReset", "wrapped_factory"]

WorldFactory = Callable[..., Any]


@dataclass(frozen=True)
class Condition:
    """One evaluation condition: which wrappers go over the world.

    Attributes:
        name: Row label (``unshuffled``, ``shuffled at reset``, ...).
        shuffle: ``None`` no shuffle, ``0`` a permutation per episode drawn at reset,
            ``K >= 1`` re-drawn every ``K`` steps.
        noise: Pure-noise channels appended (before shuffling: shuffled in with the real
            inputs).
        occlude: Share of patches hidden (patch worlds).
        occlude_mode: ``drop`` (fewer inputs) or ``zero`` (the baseline's shape kept).
        noise_max: None, or draw the number of noise channels at every reset uniformly in
            ``[noise, noise_max]`` (training).
        occlude_max: None, or draw the hidden share at every reset uniformly in
            ``[occlude, occlude_max]`` (training).
    """

    name: str
    shuffle: int | None = None
    noise: int = 0
    occlude: float = 0.0
    occlude_mode: str = "drop"
    noise_max: int | None = None
    occlude_max: float | None = None

    def wrap(self, world: Any, seed: int) -> Any:
        """``world`` under this condition's wrappers (seeded from ``seed``): occlusion
        first, then the noise channels, then the shuffle (noise is shuffled in with the
        real inputs)."""
        if self.occlude > 0 or self.occlude_max:
            world = OccludePatches(
                world,
                self.occlude,
                seed=seed + 1,
                mode=self.occlude_mode,
                max_share=self.occlude_max,
            )
        if self.noise or self.noise_max:
            world = NoiseChannels(world, extra=self.noise, seed=seed + 3, max_extra=self.noise_max)
        if self.shuffle is not None:
            world = ShuffleObservations(world, every=self.shuffle or None, seed=seed + 2)
        return world

    def changes_input_count(self) -> bool:
        """Whether the wrapped world has another number of inputs than the world."""
        occluded = (self.occlude > 0 or bool(self.occlude_max)) and self.occlude_mode == "drop"
        return self.noise > 0 or bool(self.noise_max) or occluded


def wrapped_factory(
    factory: WorldFactory, condition: Condition, seed: int, *, reseed: bool = False
) -> WorldFactory:
    """``factory`` whose worlds come wrapped for ``condition`` (``reseed``: and under
    :class:`ReseedOnReset`)."""

    def make(num_envs: int, device: Any = None) -> Any:
        world = condition.wrap(factory(num_envs=num_envs, device=device), seed)
        return ReseedOnReset(world) if reseed else world

    return make


class ReseedOnReset:
    """Over a stack of sensory wrappers: every reset re-seeds each wrapper's generator
    from its own seed and the reset's seeds (``int64[N]`` or an int), so the shuffles,
    occlusions and noise of an episode batch depend on those seeds only, not on what
    the world drew in earlier calls (a population evaluator keeps its world from one
    generation to the next; a resumed run starts with a fresh one)."""

    def __init__(self, world: Any) -> None:
        self.world = world

    def __getattr__(self, name: str) -> Any:
        if name == "world":
            raise AttributeError(name)
        return getattr(self.world, name)

    @property
    def unwrapped(self) -> Any:
        return getattr(self.world, "unwrapped", self.world)

    def reset(self, seed: Any = None, options: dict[str, Any] | None = None) -> Any:
        if seed is not None:
            seeds = np.asarray(seed).astype(np.int64).reshape(-1).astype(np.uint64)
            layer = self.world
            while isinstance(layer, SensoryWrapper):
                mixed = np.random.SeedSequence([layer.seed, *map(int, seeds)]).generate_state(2)
                layer.generator.manual_seed(int(mixed[0]) << 32 | int(mixed[1]))
                layer = layer.world
        return self.world.reset(seed=seed) if options is None else self.world.reset(seed, options)

    def step(self, actions: Any = None) -> Any:
        return self.world.step(actions)


class OneEnv:
    """A vectorized world of one env with the Gymnasium single-env API:
    ``reset(seed=) -> (obs, info)``, ``step(action) -> (obs, reward, terminated,
    truncated, info)``, observations as NumPy arrays without the env axis.

    Args:
        factory: ``factory(num_envs=1, device=None) -> world`` (e.g. a
            :func:`wrapped_factory`).
    """

    def __init__(self, factory: WorldFactory) -> None:
        self.world = factory(num_envs=1, device=None)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        obs = self.world.reset(seed=seed) if options is None else self.world.reset(seed, options)
        return np.asarray(torch.as_tensor(obs)[0]), {}

    def step(self, action: Any):
        act = torch.as_tensor(np.asarray(action))[None]
        obs, reward, terminated, truncated, _ = self.world.step(act)
        return (
            np.asarray(torch.as_tensor(obs)[0]),
            float(torch.as_tensor(reward).reshape(-1)[0]),
            bool(torch.as_tensor(terminated).reshape(-1)[0]),
            bool(torch.as_tensor(truncated).reshape(-1)[0]),
            {},
        )
