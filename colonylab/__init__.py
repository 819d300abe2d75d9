"""Colony Lab: a multi-agent simulation and emergence lab.

The import namespace ``colonylab`` maps onto the repository's top-level folders:
``colonylab.envs`` (worlds), ``colonylab.agents`` (torch modules),
``colonylab.collective_ml`` (cores that combine or train many parts),
``colonylab.emergence`` (metrics, recorders, plots) and ``colonylab.runs``
(the ``colony`` CLI, experiments and benchmarks).
"""

__version__ = "0.1.0"
