"""Vectorized classic control tasks in torch (CartPole; later swing-up, Puzzle Pong)."""

from colonylab.envs.classic.cartpole import CartPoleConfig, CartPoleWorld, VecCartPole

__all__ = ["CartPoleConfig", "CartPoleWorld", "VecCartPole"]
