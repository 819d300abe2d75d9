"""Colony Lab: a multi-agent simulation and emergence lab.

The import namespace ``colonylab`` maps onto the repository's top-level folders:
``colonylab.envs`` (worlds), ``colonylab.agents`` (torch modules),
``colonylab.collective_ml`` (cores that combine or train many parts),
``colonylab.emergence`` (metrics, recorders, plots) and ``colonylab.runs``
(the ``colony`` CLI, experiments and benchmarks).
"""

import os

# Numba's parallel kernels run on OpenMP; its default spin-wait between parallel loops
# makes a loop 10-100x slower when another process (or torch's own OpenMP pool) holds
# the other core. Sleeping threads cost a few microseconds per loop instead. Set
# OMP_WAIT_POLICY=ACTIVE yourself for a dedicated machine (read when OpenMP loads).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"


def _register_gymnasium() -> None:
    """Register the single-agent worlds with Gymnasium (``colonylab/CartPoleSwingUp-v0``,
    ...): string entry points, so this imports neither torch nor Numba nor MuJoCo."""
    try:
        from colonylab.envs.registry import register_gymnasium
    except ImportError:  # pragma: no cover - a partial install
        return
    try:
        register_gymnasium()
    except ImportError:  # pragma: no cover - gymnasium missing
        return


_register_gymnasium()
