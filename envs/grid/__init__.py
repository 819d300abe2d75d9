"""MAgent-class grid worlds on Numba: battle, pursuit, gather.

Each world is an array-first core (``battle.BattleWorld``, ``pursuit.PursuitWorld``,
``gather.GatherWorld``, configured by their frozen config dataclasses) with a
PettingZoo ``ParallelEnv`` module on top (``battle_v0``, ``pursuit_v0``,
``gather_v0``; the shared adapter is ``_parallel_env.GridParallelEnv``). Scripted
policies live in ``policies`` (battle), ``pursuit_policies`` and
``gather_policies``; every hot loop is a Numba kernel in ``_kernels.py``.
"""
