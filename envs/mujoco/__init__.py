"""MuJoCo worlds: Gymnasium's Ant, vectorized (more to come: morphologies, modular walkers).

``AntWorld(AntConfig(...))``; ``AntWorld.factory(...)`` for population evaluators.
"""

from colonylab.envs.mujoco.ant import AntConfig, AntWorld

__all__ = ["AntConfig", "AntWorld"]
