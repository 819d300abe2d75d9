"""MuJoCo worlds: Gymnasium's Ant, vectorized (more to come: morphologies, modular walkers)."""

from colonylab.envs.mujoco.ant import AntConfig, AntWorld, VecAnt

__all__ = ["AntConfig", "AntWorld", "VecAnt"]
