"""Seed every random number generator a run uses."""

from __future__ import annotations

import os
import random

import numpy as np


def _seed_numba(seed: int) -> None:
    # Numba keeps its own generator per thread, seeded from inside compiled code.
    from numba import njit

    @njit(cache=False)
    def _seed(s):
        np.random.seed(s)  # noqa: NPY002 - seeds the global generator on purpose

    _seed(seed)


def seed_everything(seed: int, *, deterministic_torch: bool = False) -> np.random.Generator:
    """Seed Python, NumPy, torch (CPU and CUDA) and Numba; return a NumPy Generator.

    Worlds and cores take explicit seeds or generators; this covers libraries
    and user code that reach for the global generators.

    Args:
        seed: a non-negative integer.
        deterministic_torch: also ask torch for deterministic algorithms (slower).
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - for code that uses the global generator
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import torch

        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
        if deterministic_torch:
            torch.use_deterministic_algorithms(True)
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
    _seed_numba(seed % 2**32)
    return np.random.default_rng(seed)
