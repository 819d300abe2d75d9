"""Numba kernels of the cellular-automata worlds.

Every kernel takes arrays and scalars only and writes into preallocated
outputs; dtypes come from the constants below. Each has a NumPy reference in
the tests (and runs under ``NUMBA_DISABLE_JIT=1`` there too).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

CELL_DTYPE = np.uint8  # Life-like boards: 0 dead, 1 alive
WORD_DTYPE = np.uint64  # bit-packed Life boards: 64 cells per word
FIELD_DTYPE = np.float32  # continuous CA (Lenia) states

# ---- Life-like (byte and bit-packed) -----------------------------------------

# ---- Lenia (continuous CA) ---------------------------------------------------
