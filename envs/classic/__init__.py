"""Vectorized classic control tasks (CartPole and swing-up in torch; Puzzle Pong on Numba).

One class per world, one frozen config: ``CartPoleWorld(CartPoleConfig(...))``,
``SwingUpWorld(SwingUpConfig(...))``, ``PuzzlePongWorld(PuzzlePongConfig(...))``;
``XWorld.factory(...)`` for population evaluators. ``VecCartPole`` / ``VecPong`` are
the deprecated ``(n, **kw)`` spellings. The scalar swing-up Gymnasium env is
``colonylab.envs.classic.swingup_env.CartPoleSwingUpEnv``.
"""

from colonylab.envs.classic.cartpole import CartPoleConfig, CartPoleWorld, VecCartPole
from colonylab.envs.classic.pong import PuzzlePongConfig, PuzzlePongWorld, VecPong
from colonylab.envs.classic.swingup import SwingUpConfig, SwingUpWorld

__all__ = [
    "CartPoleConfig",
    "CartPoleWorld",
    "PuzzlePongConfig",
    "PuzzlePongWorld",
    "SwingUpConfig",
    "SwingUpWorld",
    "VecCartPole",
    "VecPong",
]
