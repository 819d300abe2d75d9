"""Trainers: one file per method, each owning its loop, logging, checkpoint and resume.

* ``evolve``: the ask/tell loop of every population experiment (core + evaluator).
* ``clone``: behaviour cloning (plain BC, DAgger, DART; recurrent or frame-wise).
* ``ppo``: PPO with parameter sharing over an array task (all agents of all worlds);
  ``ray_rollout`` collects its rollouts on Ray actors; ``selfplay``: the opponent pool.
  (The run around it -- run directory, resume, time limit, Ctrl-C -- is
  ``runs/ppo_loop.py``'s ``train_ppo``: run plumbing, not a core.)
* ``td3``: TD3 over any actor and twin critics (off-policy, replay buffer).

Trainers never import a world: the experiment passes world factories, rollouts and
teachers in as callables.
"""

from colonylab.collective_ml.trainers.evolve import EvolveResult, evolve  # noqa: F401
