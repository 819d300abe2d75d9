"""MAgent-class grid worlds on Numba: battle (array core + PettingZoo adapter).

``battle.BattleWorld`` is the array-first core (``BattleConfig`` configures it);
``battle_v0.parallel_env`` wraps it as a PettingZoo ``ParallelEnv``; ``policies``
holds the scripted ``random`` and ``greedy`` policies.
"""
