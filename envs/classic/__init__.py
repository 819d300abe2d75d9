"""Vectorized classic control tasks (CartPole and swing-up in torch; Puzzle Pong on Numba)."""

from colonylab.envs.classic.cartpole import CartPoleConfig, CartPoleWorld, VecCartPole
from colonylab.envs.classic.pong import PuzzlePongConfig, PuzzlePongWorld, VecPong

__all__ = [
    "CartPoleConfig",
    "CartPoleWorld",
    "PuzzlePongConfig",
    "PuzzlePongWorld",
    "VecCartPole",
    "VecPong",
]
