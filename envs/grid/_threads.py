"""How many Numba threads a grid world's kernels use.

Small worlds run their kernels on one thread: a step of a thousand agents takes
about 0.2 ms, less than it costs to wake a second thread for each of the step's
parallel loops, and far less than a parallel loop costs when the other core is
busy (the barrier then waits for the scheduler). Large worlds use every thread
Numba has (``NUMBA_NUM_THREADS``). ``colonylab`` also asks OpenMP to sleep rather
than spin between parallel loops (``OMP_WAIT_POLICY=PASSIVE``, unless you set it):
spinning threads steal the core the other thread needs on a shared machine.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numba

SERIAL_BELOW = 4096
"""Worlds with fewer agents run their kernels on one thread (``threads=None``)."""

F = TypeVar("F", bound=Callable[..., Any])


def resolve_threads(n_agents: int, requested: int | None) -> int:
    """Threads for a world of ``n_agents``: ``requested`` (clamped to what Numba has), or
    1 below ``SERIAL_BELOW`` agents and all of Numba's threads above."""
    available = int(numba.config.NUMBA_NUM_THREADS)
    if requested is None:
        return 1 if n_agents < SERIAL_BELOW else available
    return max(1, min(int(requested), available))


@contextmanager
def numba_threads(threads: int) -> Iterator[None]:
    """Run the block's kernels on ``threads`` threads (Numba's setting is per thread of
    the caller, and restored afterwards)."""
    previous = numba.get_num_threads()
    if threads == previous:
        yield
        return
    numba.set_num_threads(threads)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def with_kernel_threads(method: F) -> F:
    """Method decorator: run under ``numba_threads(self.kernel_threads)``."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with numba_threads(self.kernel_threads):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
