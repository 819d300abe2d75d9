"""Density (majority) classification: many local cells agreeing on one global answer.

=================  ============================================================
World ids          ``density-ring`` (``colonylab/DensityRing-v0``, 1-D ring) and
                   ``density-grid`` (``colonylab/DensityGrid-v0``, 2-D torus)
State              ``uint8[B, N]`` (ring) / ``uint8[B, H, W]`` (grid): a batch of
                   ``B`` independent starts, cells 0 / 1 (bit-packed inside: 64
                   starts per ``uint64`` word)
Observation        the cells, as the state
Actions            none (``step()``; a learned, non-table rule is rolled out by
                   its own model, see ``agents/consensus.py``)
Reward             ``float32[B]``: 0 before the last step; at step ``steps`` 1 for
                   a start that ended all-majority (correct), else 0
Episode            ``steps`` synchronous updates (default ``2 N`` for the ring),
                   then ``truncated``
Rules              any binary rule table over the neighbourhood (ring: radius
                   ``r``, ``2 r + 1`` cells; grid: Moore 3 x 3); built in: see
                   :data:`RING_RULES`, :data:`GRID_RULES`
Render             the space-time diagram of the shown start (ring: time down the
                   page, one row per step); the grid shows the current board
=================  ============================================================

The task (Packard 1988; Mitchell, Hraber & Crutchfield 1993): a start is classified
correctly when, after ``steps`` updates, every cell is 1 if the start had more 1s than
0s and every cell is 0 otherwise (``N`` odd: no ties). No two-state rule does this on
every start (Land & Belew 1995). Accuracy is measured on *unbiased* starts (each cell 1
with probability 1/2), the hard case, since most such starts are close to density 1/2.

Rule tables. A radius-``r`` table is ``uint8[2**(2r+1)]``; its index is the
neighbourhood read left to right, cell ``i - r`` the most significant bit and cell
``i + r`` the least. The grid reads its Moore neighbourhood row by row (``(-1, -1)``
most significant, ``(+1, +1)`` least); its table is ``uint8[512]``. The published GA /
GP / coevolved rules are given by the hexadecimal strings of the literature: 128 bits,
the first (most significant) bit the output for neighbourhood ``0000000`` -- the same
order as our index, so bit ``k`` of the string is ``table[k]``.

Sources of the built-in ring rules (the tables, checked: the GKL string is derived
here from its definition and equals the published one; each rule's accuracy measured
here is within the tests' tolerance of the published value):

* ``gkl``: Gács, Kurdyumov & Levin (1978), by its definition (a cell in state 0 takes
  the majority of itself and its neighbours at -1 and -3; in state 1, of itself and +1,
  +3); published ``005F005F005F005F005FFF5F005FFF5F``, 0.816 at N=149 (Mitchell,
  Crutchfield & Das 1996, "Evolving cellular automata with genetic algorithms: a
  review of recent work", EvCA'96).
* ``majority``: the local majority of the ``2 r + 1`` cells (any radius); a poor
  classifier (it freezes into blocks), the baseline everyone beats.
* ``das``: Das, Crutchfield, Mitchell & Hanson (1995), GA-evolved,
  ``070007FF0F000FFF0F0007FF0F310FFF``.
* ``abk``: Andre, Bennett & Koza (1996), genetic programming,
  ``050055050500550555FF55FF55FF55FF``.
* ``phi-par``: Crutchfield & Mitchell (1995, PNAS "The evolution of emergent
  computation"), the GA "particle" rule φ_par, ``0504058705000F77037755837BFFB77F``.
* ``juille-pollack``, ``juille-pollack-2``: Juillé & Pollack (1998), coevolved,
  ``011430D7110F395705B4FF17F13DF957`` and ``1451305C0050CE5F1711FF5F0F53CF5F``.

The strings of ``das``, ``abk`` and the Juillé-Pollack rules were read from the
``put.ci.cevo`` coevolution library (Jaśkowski et al., ``games/dct/rules/*.java``);
φ_par from the ``cellpylib`` density-classification demo (its rule number is the same
128-bit string as an integer). Published accuracies are listed in
:data:`PUBLISHED_ACCURACY`; ``evaluate_rules`` measures ours.

Built-in grid rules: ``majority`` (Moore 3 x 3) and ``toom`` (Toom's NEC rule: the
majority of the cell and its north and east neighbours).

Example::

    world = DensityRingWorld(DensityConfig(n=149, rule="gkl", batch=10_000))
    world.reset(seed=0)
    world.run(world.steps)
    world.correct().mean()               # ~0.816
    classify("gkl", starts)              # the same on given starts, uint8[B, 149]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from colonylab._checks import check_choice, check_dataclass_ints, check_optional_int
from colonylab.envs.base import StepResult, check_allocation, no_policy, normalize_fields
from colonylab.envs.consensus import _kernels as K

# ---- rule tables -----------------------------------------------------------------------

RING_HEX: dict[str, str] = {
    "gkl": "005F005F005F005F005FFF5F005FFF5F",
    "das": "070007FF0F000FFF0F0007FF0F310FFF",
    "abk": "050055050500550555FF55FF55FF55FF",
    "phi-par": "0504058705000F77037755837BFFB77F",
    "juille-pollack": "011430D7110F395705B4FF17F13DF957",
    "juille-pollack-2": "1451305C0050CE5F1711FF5F0F53CF5F",
}
"""Published radius-3 rules as hexadecimal strings (bit ``k`` from the left = ``table[k]``)."""

PUBLISHED_ACCURACY: dict[str, float] = {
    "gkl": 0.816,
    "das": 0.823,
    "abk": 0.824,
    "phi-par": 0.769,
    "juille-pollack-2": 0.86,
}
"""Published accuracies at N=149 on unbiased random starts (the sources above; 0.86 is
the figure of Juillé & Pollack 1998 for their best coevolved rule, which we take to be
``juille-pollack-2``: it measures 0.859 here; ``juille-pollack`` measures 0.850 and
has no published figure listed)."""

RING_RULES = ("gkl", "majority", *[name for name in RING_HEX if name != "gkl"])
"""Built-in ring rules (all radius 3 but ``majority``, which takes any radius)."""
GRID_RULES = ("majority", "toom")
"""Built-in grid rules (Moore 3 x 3 neighbourhood)."""


def table_from_hex(text: str) -> np.ndarray:
    """A rule table from the literature's hexadecimal string (4 bits per digit, the
    first bit is ``table[0]``)."""
    text = "".join(text.split())
    try:
        value = int(text, 16)
    except ValueError:
        raise ValueError(f"rule {text!r} is not a hexadecimal string") from None
    bits = 4 * len(text)
    return np.array([(value >> (bits - 1 - k)) & 1 for k in range(bits)], dtype=K.CELL_DTYPE)


def table_to_hex(table: np.ndarray) -> str:
    """The hexadecimal string of a rule table (inverse of :func:`table_from_hex`)."""
    table = np.asarray(table).astype(int)
    value = 0
    for bit in table:
        value = (value << 1) | int(bit)
    return f"{value:0{len(table) // 4}X}"


def gkl_table() -> np.ndarray:
    """GKL from its definition (radius 3; index bit 6 = cell i-3 ... bit 0 = cell i+3)."""
    table = np.zeros(128, dtype=K.CELL_DTYPE)
    for index in range(128):
        cell = [(index >> (6 - j)) & 1 for j in range(7)]  # cell[j] = cell i - 3 + j
        own = cell[3]
        votes = own + (cell[2] + cell[0] if own == 0 else cell[4] + cell[6])
        table[index] = 1 if votes >= 2 else 0
    return table


def majority_table(k_bits: int) -> np.ndarray:
    """The local majority of ``k_bits`` (odd) cells."""
    index = np.arange(2**k_bits)
    ones = np.array([bin(i).count("1") for i in index])
    return (ones > k_bits // 2).astype(K.CELL_DTYPE)


def toom_table() -> np.ndarray:
    """Toom's NEC rule on the Moore table: majority of self, north and east."""
    table = np.zeros(512, dtype=K.CELL_DTYPE)
    for index in range(512):
        cell = [(index >> (8 - j)) & 1 for j in range(9)]  # row-major, (-1, -1) first
        north, centre, east = cell[1], cell[4], cell[5]
        table[index] = 1 if north + centre + east >= 2 else 0
    return table


def ring_rule_table(rule: Any, radius: int = 3) -> np.ndarray:
    """The ring's table of a rule name (:data:`RING_RULES`), a hexadecimal string of the
    literature's form (``2**(2r+1) / 4`` digits, e.g. 32 for radius 3) or a table.

    Raises:
        ValueError: an unknown name, a name of another radius, or a table whose length
            is not ``2**(2r+1)`` or whose entries are not 0 / 1.
    """
    if isinstance(rule, str):
        digits = 2 ** (2 * radius + 1) // 4
        if rule not in RING_RULES and len(rule) == digits and _is_hex(rule):
            return table_from_hex(rule)
        if rule not in RING_RULES:
            raise ValueError(
                f"rule must be one of {', '.join(RING_RULES)} or a {digits}-digit hexadecimal "
                f"radius-{radius} table, got {rule!r}"
            )
        if rule == "majority":
            return majority_table(2 * radius + 1)
        if radius != 3:
            raise ValueError(f"rule {rule!r} is a radius-3 rule, got radius={radius}")
        return gkl_table() if rule == "gkl" else table_from_hex(RING_HEX[rule])
    return _check_table(rule, 2 ** (2 * radius + 1), f"a radius-{radius} ring rule")


def _is_hex(text: str) -> bool:
    return all(ch in "0123456789abcdefABCDEF" for ch in text)


def grid_rule_table(rule: Any) -> np.ndarray:
    """The grid's table (Moore 3 x 3, ``uint8[512]``) of a name or a table."""
    if isinstance(rule, str):
        check_choice("rule", rule, GRID_RULES)
        return majority_table(9) if rule == "majority" else toom_table()
    return _check_table(rule, 512, "a Moore-neighbourhood grid rule")


def _check_table(rule: Any, size: int, what: str) -> np.ndarray:
    table = np.asarray(rule)
    if table.shape != (size,):
        raise ValueError(f"{what} needs a table of {size} entries, got shape {table.shape}")
    if table.size and (table.min() < 0 or table.max() > 1):
        raise ValueError(f"rule table entries must be 0 or 1, got values in {np.unique(table)}")
    return table.astype(K.CELL_DTYPE)


def ring_neighbours(n: int, radius: int) -> np.ndarray:
    """``int32[n, 2r+1]``: cell ``i - r + j`` (mod n) in column ``j``."""
    offsets = np.arange(-radius, radius + 1)
    return ((np.arange(n)[:, None] + offsets[None, :]) % n).astype(K.INDEX_DTYPE)


def grid_neighbours(height: int, width: int) -> np.ndarray:
    """``int32[H * W, 9]``: the Moore neighbours of each cell (row-major), torus."""
    y, x = np.divmod(np.arange(height * width), width)
    cols = [
        ((y + dy) % height) * width + (x + dx) % width for dy in (-1, 0, 1) for dx in (-1, 0, 1)
    ]
    return np.stack(cols, axis=1).astype(K.INDEX_DTYPE)


# ---- packing ----------------------------------------------------------------------------


def pack(cells: np.ndarray) -> np.ndarray:
    """``uint8[B, C]`` starts -> ``uint64[C, ceil(B / 64)]`` words (bit b = start 64 w + b)."""
    cells = np.ascontiguousarray(np.asarray(cells, dtype=K.CELL_DTYPE).T)
    n_cells, batch = cells.shape
    n_words = (batch + 63) // 64
    padded = np.zeros((n_cells, n_words * 64), dtype=K.CELL_DTYPE)
    padded[:, :batch] = cells
    packed = np.packbits(padded, axis=1, bitorder="little")
    return np.ascontiguousarray(packed).view("<u8").astype(K.WORD_DTYPE, copy=False)


def unpack(words: np.ndarray, batch: int) -> np.ndarray:
    """Inverse of :func:`pack`: ``uint64[C, W]`` -> ``uint8[B, C]``."""
    raw = np.ascontiguousarray(words).astype("<u8", copy=False).view(np.uint8)
    bits = np.unpackbits(raw, axis=1, bitorder="little")[:, :batch]
    return np.ascontiguousarray(bits.T)


def _word_bits(words: np.ndarray, batch: int) -> np.ndarray:
    """``uint64[W]`` -> ``bool[B]`` (bit b of word w = start 64 w + b)."""
    raw = np.ascontiguousarray(words).astype("<u8", copy=False).view(np.uint8)
    return np.unpackbits(raw, bitorder="little")[:batch].astype(bool)


def _leaves(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The multiplexer tree's bottom level: ``leaf[k]`` and ``flip[k]`` words."""
    full = np.uint64(0xFFFFFFFFFFFFFFFF)
    words = np.where(table.astype(bool), full, np.uint64(0)).astype(K.WORD_DTYPE)
    return np.ascontiguousarray(words[0::2]), np.ascontiguousarray(words[0::2] ^ words[1::2])


def run_packed(words: np.ndarray, neighbours: np.ndarray, table: np.ndarray, steps: int) -> None:
    """Advance packed starts ``steps`` updates in place (see :mod:`._kernels`)."""
    if steps <= 0:
        return
    leaf, flip = _leaves(table)
    threads = numba.get_num_threads()
    block = max(4, min(K.BLOCK_WORDS, -(-words.shape[1] // threads)))
    K.table_run_packed(words, neighbours, leaf, flip, int(steps), block)


def final_verdict(words: np.ndarray, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """``(all_ones, all_zeros)`` ``bool[B]`` of packed starts."""
    ones = np.empty(words.shape[1], dtype=K.WORD_DTYPE)
    zeros = np.empty_like(ones)
    K.all_equal_words(words, ones, zeros)
    return _word_bits(ones, batch), _word_bits(zeros, batch)


# ---- references (plain NumPy) -------------------------------------------------------------


def ring_step_numpy(cells: np.ndarray, table: np.ndarray, radius: int) -> np.ndarray:
    """The reference: one ring step of ``uint8[B, N]`` cells with ``np.roll``."""
    index = np.zeros(cells.shape, dtype=np.int64)
    for j in range(2 * radius + 1):
        # column j of the neighbourhood is cell i - r + j
        index = (index << 1) | np.roll(cells, radius - j, axis=1)
    return table[index]


def grid_step_numpy(cells: np.ndarray, table: np.ndarray) -> np.ndarray:
    """The reference: one Moore-table step of ``uint8[B, H, W]`` cells (torus)."""
    index = np.zeros(cells.shape, dtype=np.int64)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            index = (index << 1) | np.roll(cells, (-dy, -dx), axis=(1, 2))
    return table[index]


# ---- classification -------------------------------------------------------------------------


def random_starts(
    batch: int, n: int, rng: np.random.Generator, p: float = 0.5, init: str = "bernoulli"
) -> np.ndarray:
    """``uint8[batch, n]`` starts: ``bernoulli`` (each cell 1 w.p. ``p``; ``p=0.5`` is the
    "unbiased" test set) or ``uniform-density`` (density uniform in [0, 1], then each
    cell 1 w.p. that density: the GA training distribution of Mitchell et al.)."""
    check_choice("init", init, ("bernoulli", "uniform-density"))
    if init == "uniform-density":
        density = rng.random((batch, 1))
        return (rng.random((batch, n)) < density).astype(K.CELL_DTYPE)
    return (rng.random((batch, n)) < p).astype(K.CELL_DTYPE)


def majority_of(starts: np.ndarray) -> np.ndarray:
    """``bool[B]``: more 1s than 0s (over every axis but the first)."""
    starts = np.asarray(starts)
    flat = starts.reshape(starts.shape[0], -1)
    return 2 * flat.sum(axis=1, dtype=np.int64) > flat.shape[1]


def classify_each(
    rule: Any, starts: np.ndarray, steps: int | None = None, radius: int | None = None
) -> np.ndarray:
    """``bool[B]``: which starts the rule classifies correctly.

    Args:
        rule: a ring rule name or table (ring, ``starts`` ``uint8[B, N]``; the radius
            follows the table's length), or for ``starts`` ``uint8[B, H, W]`` a grid
            rule name or Moore table.
        starts: the starts (0 / 1), never changed.
        steps: updates before the verdict (default ``2 N``, ``N`` the number of cells).
        radius: the radius of a rule name (default 3); a table's is its own.
    """
    starts = np.asarray(starts)
    if starts.ndim not in (2, 3) or starts.shape[0] < 1:
        raise ValueError(f"starts must be uint8[B, N] or uint8[B, H, W], got {starts.shape}")
    if starts.size and (starts.min() < 0 or starts.max() > 1):
        raise ValueError("starts must hold 0 / 1 cells")
    if starts.ndim == 2:
        if radius is None:
            radius = 3 if isinstance(rule, str) else _radius_of(rule)
        table = ring_rule_table(rule, radius)
        neighbours = ring_neighbours(starts.shape[1], radius)
        cells = starts
    else:
        table = grid_rule_table(rule)
        neighbours = grid_neighbours(*starts.shape[1:])
        cells = starts.reshape(starts.shape[0], -1)
    n_cells = cells.shape[1]
    steps = 2 * n_cells if steps is None else check_optional_int("steps", steps, 0)
    words = pack(cells)
    run_packed(words, neighbours, table, steps)
    ones, zeros = final_verdict(words, cells.shape[0])
    majority = majority_of(cells)
    return np.where(majority, ones, zeros)


def classify(
    rule: Any, starts: np.ndarray, steps: int | None = None, radius: int | None = None
) -> float:
    """Accuracy: the share of ``starts`` that ``rule`` classifies correctly (all 1 iff
    the start's majority is 1) after ``steps`` (default ``2 N``) updates. See
    :func:`classify_each`."""
    return float(classify_each(rule, starts, steps, radius).mean())


def _radius_of(table: Any) -> int:
    size = np.asarray(table).size
    k_bits = size.bit_length() - 1
    if size < 8 or 2**k_bits != size or k_bits % 2 == 0:
        raise ValueError(f"a ring rule table has 2**(2r+1) entries (8, 32, 128, ...), got {size}")
    return (k_bits - 1) // 2


def evaluate_rules(
    rules: Any = ("gkl", "das", "abk", "phi-par", "juille-pollack", "juille-pollack-2", "majority"),
    lattices: Any = (149, 599, 999),
    starts: int = 10_000,
    seed: int = 2026,
) -> list[dict[str, Any]]:
    """``colony eval density`` rows for table rules: ``[{rule, lattice, starts,
    accuracy}]``.

    Every rule sees the same unbiased starts at one lattice size (common random
    numbers): lattice ``N`` draws its ``starts`` from ``default_rng([seed, N])``, so
    rows are comparable across rules and reproducible; pick a ``seed`` no training
    used. ``rules``: names (:data:`RING_RULES`) or ``(name, table)`` pairs. Steps:
    ``2 N``.
    """
    rows = []
    named = [(r, r) if isinstance(r, str) else (str(r[0]), r[1]) for r in rules]
    for n in lattices:
        n = int(n)
        if n < 3 or n % 2 == 0:
            raise ValueError(f"lattice sizes must be odd (no ties) and >= 3, got {n}")
        rng = np.random.default_rng([seed, n])
        test = random_starts(starts, n, rng)
        for name, rule in named:
            accuracy = classify(rule, test)
            rows.append({"rule": name, "lattice": n, "starts": int(starts), "accuracy": accuracy})
    return rows


# ---- worlds -------------------------------------------------------------------------------------

_BACKGROUND = np.array([70, 70, 78], dtype=np.uint8)  # rows not yet computed
_ZERO = np.array([250, 248, 240], dtype=np.uint8)
_ONE = np.array([20, 24, 60], dtype=np.uint8)


@dataclass(frozen=True)
class DensityConfig:
    """Configuration of the density-classification ring."""

    n: int = 149
    """Cells on the ring (odd: no ties). The classic sizes are 149, 599 and 999."""
    radius: int = 3
    """Neighbourhood radius ``r``: a cell reads ``2 r + 1`` cells."""
    batch: int = 64
    """Independent starts stepped together (64 per machine word)."""
    steps: int | None = None
    """Updates per episode (default ``2 n``)."""
    rule: Any = "gkl"
    """A name (gkl, majority, das, abk, phi-par, juille-pollack, juille-pollack-2), a
    hexadecimal string (32 digits for radius 3, bit k from the left = entry k) or a
    rule table ``uint8[2**(2r+1)]`` (index = neighbourhood bits, cell i-r first)."""
    init: str = "bernoulli"
    """``bernoulli`` (each cell 1 w.p. ``p``) or ``uniform-density`` (GA training set)."""
    p: float = 0.5
    """Probability of a 1 per cell for ``bernoulli`` starts (0.5: unbiased)."""

    def __post_init__(self) -> None:
        check_dataclass_ints(self, {"n": 3, "radius": 1, "batch": 1}, cli=False)
        if self.n % 2 == 0:
            raise ValueError(f"n must be odd (no ties in the majority), got {self.n}")
        if 2 * self.radius + 1 > min(self.n, 15):
            raise ValueError(
                f"radius must satisfy 2 r + 1 <= min(n, 15), got radius={self.radius}, n={self.n}"
            )
        check_optional_int("steps", self.steps, 1)
        check_choice("init", self.init, ("bernoulli", "uniform-density"))
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {self.p!r}")
        if not isinstance(self.rule, str):  # freeze tables: hashable, comparable
            normalize_fields(self, rule=lambda r: tuple(int(v) for v in np.asarray(r).ravel()))
        ring_rule_table(
            self.rule if isinstance(self.rule, str) else np.array(self.rule), self.radius
        )

    @property
    def table(self) -> np.ndarray:
        """The rule table, ``uint8[2**(2r+1)]``."""
        rule = self.rule if isinstance(self.rule, str) else np.array(self.rule)
        return ring_rule_table(rule, self.radius)

    @property
    def episode_steps(self) -> int:
        """``steps`` or ``2 n``."""
        return self.steps if self.steps is not None else 2 * self.n


@dataclass(frozen=True)
class DensityGridConfig:
    """Configuration of the 2-D density-classification torus."""

    size: int = 33
    """Side of the square torus (``size**2`` odd: no ties)."""
    batch: int = 64
    """Independent starts stepped together."""
    steps: int | None = None
    """Updates per episode (default ``4 size``)."""
    rule: Any = "toom"
    """``toom`` (majority of self, north, east), ``majority`` (Moore 3 x 3), or a Moore
    table ``uint8[512]`` (row-major, (-1, -1) most significant)."""
    p: float = 0.5
    """Probability of a 1 per cell."""

    def __post_init__(self) -> None:
        check_dataclass_ints(self, {"size": 3, "batch": 1}, cli=False)
        if self.size % 2 == 0:
            raise ValueError(f"size must be odd (size**2 odd: no ties), got {self.size}")
        check_optional_int("steps", self.steps, 1)
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {self.p!r}")
        if not isinstance(self.rule, str):
            normalize_fields(self, rule=lambda r: tuple(int(v) for v in np.asarray(r).ravel()))
        grid_rule_table(self.rule if isinstance(self.rule, str) else np.array(self.rule))

    @property
    def table(self) -> np.ndarray:
        rule = self.rule if isinstance(self.rule, str) else np.array(self.rule)
        return grid_rule_table(rule)

    @property
    def episode_steps(self) -> int:
        """``steps`` or ``4 size``."""
        return self.steps if self.steps is not None else 4 * self.size


class _PackedTableWorld:
    """Shared machinery: packed starts, a rule table, an episode of fixed length."""

    metadata: dict[str, Any] = {}
    policies: tuple[str, ...] = ()
    """No agents, no scripted policies: ``step()`` takes no actions."""

    def policy(self, name: str, seed: int | None = None) -> Any:
        """No agents, hence no scripted policies: always a ``ValueError``."""
        raise no_policy(self, name)

    def _setup(self, table: np.ndarray, neighbours: np.ndarray, batch: int, shape: tuple) -> None:
        self.table = table
        self._neighbours = neighbours
        self._batch = batch
        self._cell_shape = shape
        n_cells = neighbours.shape[0]
        n_words = (batch + 63) // 64
        check_allocation(int(n_cells * n_words * 8 * 3 + batch * n_cells * 2), "density world")
        self._words = np.zeros((n_cells, n_words), dtype=K.WORD_DTYPE)
        self._majority = np.zeros(batch, dtype=bool)
        self.step_count = 0
        self.view_index = 0

    @property
    def steps(self) -> int:
        """Updates per episode."""
        return self.config.episode_steps

    @property
    def cells(self) -> np.ndarray:
        """The current cells, ``uint8[B, ...]`` (a fresh array)."""
        flat = unpack(self._words, self._batch)
        return flat.reshape(self._batch, *self._cell_shape)

    def set_cells(self, cells: np.ndarray) -> None:
        """Replace the state with given starts (``uint8[B, ...]`` 0 / 1); the episode
        restarts (``step_count`` 0, majorities from these cells)."""
        cells = np.asarray(cells)
        want = (self._batch, *self._cell_shape)
        if cells.shape != want:
            raise ValueError(f"cells must have shape {want}, got {cells.shape}")
        if cells.size and (cells.min() < 0 or cells.max() > 1):
            raise ValueError("cells must be 0 or 1")
        flat = cells.reshape(self._batch, -1).astype(K.CELL_DTYPE)
        self._words = pack(flat)
        self._majority = majority_of(flat)
        self.step_count = 0
        self._on_reset(flat)

    def _on_reset(self, flat: np.ndarray) -> None:
        pass

    def run(self, steps: int) -> None:
        """Advance ``steps`` updates inside the kernel (no observations in between)."""
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        run_packed(self._words, self._neighbours, self.table, steps)
        self.step_count += steps

    def correct(self) -> np.ndarray:
        """``bool[B]``: the starts whose current state is all-majority (the verdict
        once ``step_count == steps``)."""
        ones, zeros = final_verdict(self._words, self._batch)
        return np.where(self._majority, ones, zeros)

    def density(self) -> np.ndarray:
        """Share of 1 cells per start, ``float64[B]``."""
        flat = unpack(self._words, self._batch)
        return flat.mean(axis=1)

    def step(self, actions: None = None) -> StepResult:
        """One synchronous update of every start."""
        if actions is not None:
            raise ValueError(
                f"density worlds take no actions (the rule table decides), got "
                f"{type(actions).__name__}"
            )
        self.run(1)
        self._after_step()
        done = self.step_count >= self.steps
        reward = self.correct().astype(np.float32) if done else np.zeros(self._batch, np.float32)
        return StepResult(
            self.cells,
            reward,
            np.zeros(self._batch, dtype=bool),
            np.full(self._batch, done, dtype=bool),
            {"majority": self._majority.copy()},
        )

    def _after_step(self) -> None:
        pass

    def metrics(self) -> dict[str, float]:
        """Share of starts already all-majority, mean density, and the shown start's."""
        density = self.density()
        agreed = np.abs(density - 0.5) * 2  # 1 = every cell the same
        return {
            "correct": float(self.correct().mean()),
            "consensus": float((agreed == 1.0).mean()),
            "density": float(density[self.view_index]),
            "mean_density": float(density.mean()),
        }

    def handle_key(self, name: str) -> bool:
        """``[`` / ``]`` switch the start shown."""
        if name in ("[", "]"):
            self.view_index = (self.view_index + (1 if name == "]" else -1)) % self._batch
            self._redraw()
            return True
        return False

    def _redraw(self) -> None:
        pass


class DensityRingWorld(_PackedTableWorld):
    """A batch of 1-D rings under one rule table (see the module docstring)."""

    metadata = {"name": "colonylab/DensityRing-v0", "render_fps": 30, "render_modes": ["rgb_array"]}

    def __init__(self, config: DensityConfig | None = None) -> None:
        self.config = config or DensityConfig()
        c = self.config
        self._setup(c.table, ring_neighbours(c.n, c.radius), c.batch, (c.n,))
        self.metadata = dict(DensityRingWorld.metadata)
        self._history = np.zeros((self.steps + 1, c.n), dtype=np.int8) - 1

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> np.ndarray:
        """New starts (``options={"starts": uint8[B, N]}`` to give them); returns the cells."""
        options = options or {}
        unknown = set(options) - {"starts"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; known: ['starts']")
        if "starts" in options:
            starts = options["starts"]
        else:
            rng = np.random.default_rng(seed)
            c = self.config
            starts = random_starts(c.batch, c.n, rng, c.p, c.init)
        self.set_cells(starts)
        return self.cells

    def _on_reset(self, flat: np.ndarray) -> None:
        self._history = np.zeros((self.steps + 1, self.config.n), dtype=np.int8) - 1
        self._history[0] = flat[self.view_index]

    def _after_step(self) -> None:
        if self.step_count < self._history.shape[0]:
            self._history[self.step_count] = self._shown_row()

    def _shown_row(self) -> np.ndarray:
        w, b = divmod(self.view_index, 64)
        return ((self._words[:, w] >> np.uint64(b)) & np.uint64(1)).astype(np.int8)

    def _redraw(self) -> None:
        self._history[:] = -1
        self._history[min(self.step_count, self._history.shape[0] - 1)] = self._shown_row()

    def space_time(self, start: int = 0, steps: int | None = None) -> np.ndarray:
        """``uint8[T + 1, N]``: the space-time diagram of one start from the CURRENT
        state onwards (a copy is stepped; the world does not change)."""
        steps = self.steps if steps is None else steps
        w, b = divmod(start, 64)
        words = self._words[:, w : w + 1].copy()
        rows = np.empty((steps + 1, self.config.n), dtype=K.CELL_DTYPE)
        rows[0] = (words[:, 0] >> np.uint64(b)) & np.uint64(1)
        for t in range(steps):
            run_packed(words, self._neighbours, self.table, 1)
            rows[t + 1] = (words[:, 0] >> np.uint64(b)) & np.uint64(1)
        return rows

    def render_rgb(self) -> np.ndarray:
        """The space-time diagram of the shown start so far (time down the page; 1 dark,
        0 light, rows still to come grey), ``uint8[steps + 1, N, 3]``."""
        return space_time_rgb(self._history)


def space_time_rgb(rows: np.ndarray) -> np.ndarray:
    """``uint8[T, N, 3]`` picture of a space-time diagram (``-1`` rows: not yet run)."""
    rows = np.asarray(rows)
    image = np.empty((*rows.shape, 3), dtype=np.uint8)
    image[:] = _BACKGROUND
    image[rows == 0] = _ZERO
    image[rows == 1] = _ONE
    return image


class DensityGridWorld(_PackedTableWorld):
    """A batch of 2-D tori under one Moore-neighbourhood rule table."""

    metadata = {"name": "colonylab/DensityGrid-v0", "render_fps": 30, "render_modes": ["rgb_array"]}

    def __init__(self, config: DensityGridConfig | None = None) -> None:
        self.config = config or DensityGridConfig()
        c = self.config
        self._setup(c.table, grid_neighbours(c.size, c.size), c.batch, (c.size, c.size))
        self.metadata = dict(DensityGridWorld.metadata)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> np.ndarray:
        """New starts (``options={"starts": uint8[B, S, S]}`` to give them)."""
        options = options or {}
        unknown = set(options) - {"starts"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; known: ['starts']")
        c = self.config
        if "starts" in options:
            starts = options["starts"]
        else:
            rng = np.random.default_rng(seed)
            starts = (rng.random((c.batch, c.size, c.size)) < c.p).astype(K.CELL_DTYPE)
        self.set_cells(starts)
        return self.cells

    def render_rgb(self) -> np.ndarray:
        """The shown start's board, each cell 4 x 4 pixels (1 dark, 0 light)."""
        board = self.cells[self.view_index].astype(np.int8)
        return np.repeat(np.repeat(space_time_rgb(board), 4, axis=0), 4, axis=1)
