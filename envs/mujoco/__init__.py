"""MuJoCo worlds: Gymnasium's Ant, vectorized (more to come: morphologies, modular walkers).

``AntWorld(AntConfig(...))``; ``AntWorld.factory(...)`` for population evaluators;
``VecAnt`` is the deprecated ``(n, **kw)`` spelling.
"""

from colonylab.envs.mujoco.ant import AntConfig, AntWorld, VecAnt

__all__ = ["AntConfig", "AntWorld", "VecAnt"]
