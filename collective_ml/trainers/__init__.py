"""Trainers: one file per method, each owning its loop, logging, checkpoint and resume.

* ``evolve``: the ask/tell loop of every population experiment (core + evaluator).
* ``clone``: behaviour cloning (plain BC, DAgger, DART; recurrent or frame-wise).

Trainers never import a world: the experiment passes world factories, rollouts and
teachers in as callables.
"""

from colonylab.collective_ml.trainers.evolve import EvolveResult, evolve  # noqa: F401
