"""Observation wrappers over vectorized worlds: sensory substitution (shuffle, noise,
occlusion, background swap)."""

from colonylab.envs.wrappers.sensory import (
    BackgroundSwap,
    NoiseChannels,
    OccludePatches,
    SensoryWrapper,
    ShuffleObservations,
)

__all__ = [
    "BackgroundSwap",
    "NoiseChannels",
    "OccludePatches",
    "SensoryWrapper",
    "ShuffleObservations",
]
