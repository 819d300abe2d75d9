"""Vectorized classic control tasks (CartPole and swing-up in torch; Puzzle Pong on Numba).

One class per world, one frozen config: ``CartPoleWorld(CartPoleConfig(...))``,
``SwingUpWorld(SwingUpConfig(...))``, ``PuzzlePongWorld(PuzzlePongConfig(...))``;
``XWorld.factory(...)`` for population evaluators. The scalar swing-up Gymnasium env is
``colonylab.envs.classic.swingup_env.CartPoleSwingUpEnv``.
"""

from colonylab.envs.classic.cartpole import CartPoleConfig, CartPoleWorld
from colonylab.envs.classic.pong import PuzzlePongConfig, PuzzlePongWorld
from colonylab.envs.classic.swingup import SwingUpConfig, SwingUpWorld

__all__ = [
    "CartPoleConfig",
    "CartPoleWorld",
    "PuzzlePongConfig",
    "PuzzlePongWorld",
    "SwingUpConfig",
    "SwingUpWorld",
]
