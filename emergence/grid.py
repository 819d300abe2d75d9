"""Emergence metrics of MAgent-class grid worlds (battle, pursuit, gather).

Pure functions of the world's state arrays; nothing here imports the world.
The arrays, one per attribute, are those the grid worlds own:

==================  ================  ===============================================
name                dtype[shape]      meaning
==================  ================  ===============================================
``pos``             int32[N, 2]       ``(row y, column x)`` of each agent
``team``            int8[N]           team id, ``0, 1, ...``
``alive``           bool[N]           the agent is on the map
``grid``            int32[H, W]       agent index in each cell, ``-1`` empty, ``-2`` wall
``attack_target``   int32[N]          agent each agent hit this step, ``-1`` none
``killed``          bool[N]           the agent died this step
==================  ================  ===============================================

Rows grow downwards: north is ``-y``, east is ``+x``. The map is bounded (no
wrap-around). Integer inputs of other widths are accepted; indices out of range
are refused with a ``ValueError``.

Metrics: team sizes, kills and the kill ratio over time (:class:`TeamSeries`);
clusters (connected components of a team's cells, 4- or 8-connected, labelled by
a Numba union-find); front-line length; the encirclement index; and, for
pursuit, predator/prey population series, their phase lag and cycle period.
:func:`step_metrics` gathers the per-step scalars under ``emergence/`` names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from colonylab.emergence import _kernels as K

LABEL_DTYPE = np.int32  # component labels, -1 outside the mask
TEAM_MAP_DTYPE = np.int8  # team of the agent in each cell
EMPTY_CELL = -1  # in ``grid`` and in team maps
WALL_CELL = -2  # in ``grid`` and in team maps

# Sectors around a target, in clockwise order (see encirclement_coverage).
SECTORS = ("N", "E", "S", "W")
_SECTOR_BIT = np.array([1, 2, 4, 8], np.uint8)
_POPCOUNT_4 = np.array([bin(i).count("1") for i in range(16)], np.int8)


# ---- validation ---------------------------------------------------------------


def _as_int_array(name: str, value: np.ndarray, ndim: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}; cast it with .astype")
    return arr


def _as_bool_array(name: str, value: np.ndarray, n: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) like team, got {arr.shape}")
    if arr.dtype != np.bool_:
        raise ValueError(f"{name} must be bool, got dtype {arr.dtype}; pass a boolean mask")
    return arr


def _check_team(team: np.ndarray, n_teams: int | None = None) -> tuple[np.ndarray, int]:
    """Validated ``team[N]`` and the number of teams (``max + 1`` unless given)."""
    team = _as_int_array("team", team, 1)
    if team.size and int(team.min()) < 0:
        raise ValueError(f"team ids must be >= 0, got {int(team.min())}")
    inferred = int(team.max()) + 1 if team.size else 0
    if n_teams is None:
        return team, inferred
    if n_teams < inferred:
        raise ValueError(
            f"n_teams={n_teams} but team holds id {inferred - 1}; pass n_teams >= {inferred}"
        )
    return team, int(n_teams)


def _check_targets(attack_target: np.ndarray, n: int) -> np.ndarray:
    attack_target = _as_int_array("attack_target", attack_target, 1)
    if attack_target.shape != (n,):
        raise ValueError(f"attack_target must have shape ({n},), got {attack_target.shape}")
    if attack_target.size and (attack_target.min() < -1 or attack_target.max() >= n):
        bad = attack_target[(attack_target < -1) | (attack_target >= n)][0]
        raise ValueError(
            f"attack_target holds {int(bad)}; expected an agent index in [0, {n}) or -1"
        )
    return attack_target


def _check_series(name: str, series: np.ndarray) -> np.ndarray:
    arr = np.asarray(series, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one series [T], got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(
            f"{name} holds NaN or inf at step {int(np.flatnonzero(~np.isfinite(arr))[0])}"
        )
    return arr


# ---- team sizes and kills -------------------------------------------------------


def team_map(grid: np.ndarray, team: np.ndarray, alive: np.ndarray | None = None) -> np.ndarray:
    """The team of the live agent in each cell.

    Args:
        grid: int32[H, W] agent index per cell, -1 empty, -2 wall.
        team: int8[N] team of each agent.
        alive: bool[N]; cells of dead agents read as empty. None: all alive.

    Returns:
        int8[H, W]: team id, -1 empty (or a dead agent), -2 wall.
    """
    grid = np.ascontiguousarray(_as_int_array("grid", grid, 2))
    team, n_teams = _check_team(team)
    if n_teams > np.iinfo(TEAM_MAP_DTYPE).max:
        raise ValueError(f"at most 127 teams fit a team map, got {n_teams}")
    alive = (
        np.ones(team.shape, bool) if alive is None else _as_bool_array("alive", alive, team.size)
    )
    out = np.empty(grid.shape, TEAM_MAP_DTYPE)
    bad = K.team_map(grid, np.ascontiguousarray(team), np.ascontiguousarray(alive), out)
    if bad >= 0:
        y, x = divmod(int(bad), grid.shape[1])
        raise ValueError(
            f"grid[{y}, {x}] = {int(grid[y, x])}; expected an agent index in [0, {team.size}), "
            f"{EMPTY_CELL} (empty) or {WALL_CELL} (wall)"
        )
    return out


def team_sizes(team: np.ndarray, alive: np.ndarray, n_teams: int | None = None) -> np.ndarray:
    """Live agents per team.

    Args:
        team: int8[N] team of each agent.
        alive: bool[N].
        n_teams: number of teams T; None: ``team.max() + 1`` (teams that died
            out still get their 0, since dead agents keep their team id).

    Returns:
        int64[T].
    """
    team, n_teams = _check_team(team, n_teams)
    alive = _as_bool_array("alive", alive, team.size)
    return np.bincount(team[alive], minlength=n_teams).astype(np.int64)


def deaths_by_team(team: np.ndarray, killed: np.ndarray, n_teams: int | None = None) -> np.ndarray:
    """Agents of each team that died this step: ``int64[T]``."""
    team, n_teams = _check_team(team, n_teams)
    killed = _as_bool_array("killed", killed, team.size)
    return np.bincount(team[killed], minlength=n_teams).astype(np.int64)


def kills_by_team(
    team: np.ndarray,
    killed: np.ndarray,
    attack_target: np.ndarray,
    n_teams: int | None = None,
) -> np.ndarray:
    """Kills credited to each team this step.

    An agent that died this step is credited once to every *other* team that
    hit it this step (so a prey killed by three predators is one kill for the
    predators). A death nobody of another team caused (starvation, friendly
    fire) is credited to no one; :func:`deaths_by_team` still counts it.

    Args:
        team: int8[N]; killed: bool[N] died this step;
        attack_target: int32[N] agent each agent hit this step, -1 none.
        n_teams: number of teams T; None: ``team.max() + 1``.

    Returns:
        int64[T].
    """
    team, n_teams = _check_team(team, n_teams)
    killed = _as_bool_array("killed", killed, team.size)
    attack_target = _check_targets(attack_target, team.size)
    attackers = np.flatnonzero(attack_target >= 0)
    victims = attack_target[attackers]
    credit = killed[victims] & (team[attackers] != team[victims])
    attackers, victims = attackers[credit], victims[credit]
    keys = np.unique(victims.astype(np.int64) * n_teams + team[attackers])
    return np.bincount(keys % n_teams, minlength=n_teams).astype(np.int64)


def kill_ratio(
    kills_by_team: np.ndarray,
    team_a: int = 0,
    team_b: int = 1,
    smoothing: float = 0.0,
) -> float | np.ndarray:
    """Kills by ``team_a`` divided by kills by ``team_b``, without warnings.

    ``(a + smoothing) / (b + smoothing)``; with ``smoothing == 0``, ``a / 0`` is
    ``inf`` and ``0 / 0`` is NaN. A positive ``smoothing`` (1 is the usual
    choice) keeps the ratio finite for plots.

    Args:
        kills_by_team: ``[T]`` kills of one step or cumulative, or ``[S, T]``
            (a series; teams on the last axis).

    Returns:
        A float for ``[T]``, ``float64[S]`` for ``[S, T]``.
    """
    kills = np.asarray(kills_by_team, dtype=np.float64)
    if kills.ndim not in (1, 2):
        raise ValueError(f"kills_by_team must be [T] or [S, T], got shape {kills.shape}")
    for name, idx in (("team_a", team_a), ("team_b", team_b)):
        if not 0 <= idx < kills.shape[-1]:
            raise ValueError(
                f"{name}={idx} is not a team of kills_by_team with {kills.shape[-1]} teams"
            )
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing}")
    num = kills[..., team_a] + smoothing
    den = kills[..., team_b] + smoothing
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = num / den
    return float(ratio) if ratio.ndim == 0 else ratio


class TeamSeries:
    """Records team sizes, kills and deaths step by step; returns them as arrays.

    Call :meth:`record` once per step (and once after ``reset``, with no
    ``killed``, for the starting sizes). Every array has one row per recorded
    step and one column per team.

    Args:
        n_teams: number of teams T.
    """

    def __init__(self, n_teams: int) -> None:
        if n_teams < 1:
            raise ValueError(f"n_teams must be >= 1, got {n_teams}")
        self.n_teams = int(n_teams)
        self._rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return len(self._rows)

    def record(
        self,
        team: np.ndarray,
        alive: np.ndarray,
        killed: np.ndarray | None = None,
        attack_target: np.ndarray | None = None,
    ) -> None:
        """Append one step: sizes from ``alive``; kills and deaths from ``killed``.

        ``killed`` and ``attack_target`` come together (kills are credited by
        who hit whom; see :func:`kills_by_team`); leave both out for a step
        without combat, such as the reset state (zero kills and deaths).
        """
        if (killed is None) != (attack_target is None):
            raise ValueError("pass killed and attack_target together (or neither)")
        sizes = team_sizes(team, alive, self.n_teams)
        if killed is None:
            kills = deaths = np.zeros(self.n_teams, np.int64)
        else:
            kills = kills_by_team(team, killed, attack_target, self.n_teams)
            deaths = deaths_by_team(team, killed, self.n_teams)
        self._rows.append((sizes, kills, deaths))

    def append(
        self, sizes: np.ndarray, kills: np.ndarray, deaths: np.ndarray | None = None
    ) -> None:
        """Append one step from precomputed ``int[T]`` counts (deaths default to zero)."""
        row = []
        for name, value in (("sizes", sizes), ("kills", kills), ("deaths", deaths)):
            arr = np.zeros(self.n_teams, np.int64) if value is None else np.asarray(value)
            if arr.shape != (self.n_teams,):
                raise ValueError(f"{name} must have shape ({self.n_teams},), got {arr.shape}")
            row.append(arr.astype(np.int64))
        self._rows.append((row[0], row[1], row[2]))

    def _stack(self, column: int) -> np.ndarray:
        if not self._rows:
            return np.zeros((0, self.n_teams), np.int64)
        return np.stack([row[column] for row in self._rows])

    @property
    def sizes(self) -> np.ndarray:
        """Live agents per team: ``int64[S, T]``."""
        return self._stack(0)

    @property
    def kills(self) -> np.ndarray:
        """Kills credited to each team at each step: ``int64[S, T]``."""
        return self._stack(1)

    @property
    def deaths(self) -> np.ndarray:
        """Deaths of each team at each step: ``int64[S, T]``."""
        return self._stack(2)

    def cumulative_kills(self) -> np.ndarray:
        """Kills so far: ``int64[S, T]``."""
        return np.cumsum(self.kills, axis=0)

    def kill_ratio(self, team_a: int = 0, team_b: int = 1, smoothing: float = 0.0) -> np.ndarray:
        """Cumulative kill ratio after each step: ``float64[S]`` (see :func:`kill_ratio`)."""
        return kill_ratio(self.cumulative_kills(), team_a, team_b, smoothing)

    def summary(self, prefix: str = "emergence/") -> dict[str, float]:
        """Scalars of the last step for logs: sizes, total kills, and (2+ teams) kill ratio."""
        if not self._rows:
            return {}
        sizes = self._rows[-1][0]
        total = self.cumulative_kills()[-1]
        out: dict[str, float] = {}
        for t in range(self.n_teams):
            out[f"{prefix}team{t}_size"] = float(sizes[t])
            out[f"{prefix}team{t}_kills"] = float(total[t])
        if self.n_teams >= 2:
            out[f"{prefix}kill_ratio"] = kill_ratio(total, 0, 1)
        return out


# ---- clusters -------------------------------------------------------------------


def _check_connectivity(connectivity: int) -> bool:
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    return connectivity == 8


def label_components(mask: np.ndarray, connectivity: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of a boolean mask (bounded map, no wrap-around).

    Args:
        mask: bool[H, W].
        connectivity: 4 (edge neighbours) or 8 (edges and corners).

    Returns:
        ``(labels, sizes)``: ``int32[H, W]`` component id per cell, numbered
        ``0..K-1`` in raster order of each component's first cell, -1 outside
        the mask; and ``int64[K]`` cells per component, indexed by id.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype != np.bool_:
        raise ValueError(f"mask must be bool[H, W], got {mask.dtype}{list(mask.shape)}")
    eight = _check_connectivity(connectivity)
    cells = np.ascontiguousarray(mask).view(np.int8)
    labels = np.empty(mask.shape, LABEL_DTYPE)
    sizes = K.label(cells, 1, eight, labels)
    return labels, sizes


@dataclass(frozen=True, eq=False)
class ClusterStats:
    """Connected groups of one team's agents.

    Attributes:
        count: number of clusters K.
        sizes: int64[K] agents per cluster, largest first.
    """

    count: int
    sizes: np.ndarray

    @property
    def mean(self) -> float:
        """Mean cluster size; NaN when the team has no agents on the map."""
        return float(self.sizes.mean()) if self.count else float("nan")

    @property
    def largest(self) -> int:
        """Size of the largest cluster; 0 when there is none."""
        return int(self.sizes[0]) if self.count else 0

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        """``count``, ``mean`` and ``largest`` as floats, keys prefixed."""
        return {
            f"{prefix}count": float(self.count),
            f"{prefix}mean": self.mean,
            f"{prefix}largest": float(self.largest),
        }


def _cluster_stats(cells: np.ndarray, value: int, connectivity: int) -> ClusterStats:
    eight = _check_connectivity(connectivity)
    labels = np.empty(cells.shape, LABEL_DTYPE)
    sizes = K.label(cells, value, eight, labels)
    return ClusterStats(count=int(sizes.size), sizes=np.sort(sizes)[::-1].copy())


def clusters(
    grid: np.ndarray,
    team: np.ndarray,
    alive: np.ndarray | None,
    which_team: int,
    connectivity: int = 4,
) -> ClusterStats:
    """Connected components of the cells held by live agents of ``which_team``.

    Two agents are in one cluster when a chain of the team's agents joins them,
    each step to an edge neighbour (``connectivity=4``) or to any of the 8
    surrounding cells (``connectivity=8``). Other teams, walls and empty cells
    separate clusters. About 0.1 s for a 4000x4000 map on one core.

    Args:
        grid: int32[H, W] agent index per cell, -1 empty, -2 wall.
        team: int8[N]; alive: bool[N] (None: all alive).
        which_team: the team to group.
        connectivity: 4 or 8.

    Returns:
        :class:`ClusterStats`.
    """
    tmap = team_map(grid, team, alive)
    if not 0 <= which_team <= np.iinfo(TEAM_MAP_DTYPE).max:
        raise ValueError(f"which_team must be a team id >= 0, got {which_team}")
    return _cluster_stats(tmap, which_team, connectivity)


# ---- front line -----------------------------------------------------------------


def front_line_length(grid: np.ndarray, team: np.ndarray, alive: np.ndarray | None = None) -> int:
    """Edge contacts between enemies: 4-neighbour cell pairs held by different teams.

    Each unordered pair of adjacent cells counts once; a checkerboard of two
    teams on an ``H x W`` map gives ``H * (W - 1) + (H - 1) * W``.

    Args:
        grid: int32[H, W] agent index per cell, -1 empty, -2 wall.
        team: int8[N]; alive: bool[N] (None: all alive; dead agents are empty).

    Returns:
        The number of such pairs.
    """
    return int(K.front_line_pairs(team_map(grid, team, alive)))


def front_line_cells(
    grid: np.ndarray,
    team: np.ndarray,
    which_team: int = 0,
    alive: np.ndarray | None = None,
) -> int:
    """Agents of ``which_team`` with an enemy within Chebyshev distance 1 (8 neighbours).

    The front line measured in soldiers rather than in contacts: each agent
    counts once, however many enemies touch it.

    Returns:
        The number of such agents.
    """
    tmap = team_map(grid, team, alive)
    if not 0 <= which_team <= np.iinfo(TEAM_MAP_DTYPE).max:
        raise ValueError(f"which_team must be a team id >= 0, got {which_team}")
    return int(K.front_cells(tmap, which_team))


# ---- encirclement ---------------------------------------------------------------


def attack_sectors(dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """Sector of an offset ``(dy, dx)`` from a target to its attacker.

    The plane around the target is cut by its two diagonals into four 90°
    sectors, N, E, S, W (0, 1, 2, 3; north is ``-y``). Each sector is half-open
    clockwise, so a diagonal offset belongs to the sector clockwise after it:
    NE -> E, SE -> S, SW -> W, NW -> N. Each sector thus holds exactly two of
    the 8 cells around the target (N: N and NW; E: E and NE; S: S and SE; W: W
    and SW), every attacker is in exactly one sector, and the rule turns with
    the map by 90°. Axis-aligned attackers lie inside one sector.

    Args:
        dy, dx: int[M] attacker row and column minus the target's.

    Returns:
        int8[M]: 0 N, 1 E, 2 S, 3 W; -1 for the offset ``(0, 0)``.
    """
    dy = np.asarray(dy, dtype=np.int64)
    dx = np.asarray(dx, dtype=np.int64)
    up = -dy  # north-positive
    north = (up > 0) & (-up <= dx) & (dx < up)
    east = (dx > 0) & (-dx < up) & (up <= dx)
    south = (up < 0) & (up < dx) & (dx <= -up)
    west = (dx < 0) & (dx <= up) & (up < -dx)
    return np.select([north, east, south, west], [0, 1, 2, 3], default=-1).astype(np.int8)


def encirclement_coverage(
    pos: np.ndarray,
    attack_target: np.ndarray,
    alive: np.ndarray | None = None,
    return_targets: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """How many of the four sectors around each attacked agent its attackers cover.

    A target is an agent hit this step by at least one attacker. Each
    attacker's offset from the target falls in one of the sectors N, E, S, W
    (split by the diagonals; see :func:`attack_sectors`); the coverage is the
    number of distinct sectors among the target's attackers, 1 to 4.

    Args:
        pos: int32[N, 2] ``(y, x)`` at the time of the attacks.
        attack_target: int32[N] agent each agent hit this step, -1 none.
        alive: bool[N] agents that could attack this step (alive before the
            step); others' attacks are ignored. None: all attacks count.
        return_targets: also return the targets' agent indices.

    Returns:
        int8[M] coverage of each target, targets in increasing agent index;
        with ``return_targets``, ``(targets int64[M], coverage int8[M])``.
    """
    pos = _as_int_array("pos", pos, 2)
    n = pos.shape[0]
    if pos.shape[1:] != (2,):
        raise ValueError(f"pos must be [N, 2] (y, x), got shape {pos.shape}")
    attack_target = _check_targets(attack_target, n)
    hits = attack_target >= 0
    if alive is not None:
        hits &= _as_bool_array("alive", alive, n)
    attackers = np.flatnonzero(hits)
    victims = attack_target[attackers].astype(np.int64)
    delta = pos[attackers].astype(np.int64) - pos[victims].astype(np.int64)
    sector = attack_sectors(delta[:, 0], delta[:, 1])
    real = sector >= 0  # an agent hitting itself attacks from no side
    # One bit per sector and agent: O(N), no sort.
    bits = np.zeros(n, np.uint8)
    np.bitwise_or.at(bits, victims[real], _SECTOR_BIT[sector[real]])
    targets = np.flatnonzero(bits)
    coverage = _POPCOUNT_4[bits[targets]]
    if return_targets:
        return targets.astype(np.int64), coverage
    return coverage


def encirclement_index(
    pos: np.ndarray,
    attack_target: np.ndarray,
    alive: np.ndarray | None = None,
    min_sectors: int = 3,
) -> float:
    """Share of this step's targets whose attackers cover at least 3 of 4 sectors.

    See :func:`encirclement_coverage` for the sectors. Needs at least three
    attackers around a target; two cannot encircle.

    Args:
        pos, attack_target, alive: as in :func:`encirclement_coverage`.
        min_sectors: sectors needed to count as encircled (1-4).

    Returns:
        A share in [0, 1]; NaN when nobody was attacked.
    """
    if not 1 <= min_sectors <= 4:
        raise ValueError(f"min_sectors must be 1-4, got {min_sectors}")
    coverage = encirclement_coverage(pos, attack_target, alive)
    if coverage.size == 0:
        return float("nan")
    return float(np.mean(coverage >= min_sectors))


# ---- pursuit: populations and cycles --------------------------------------------


def population_series(
    alive_history: np.ndarray | Sequence[np.ndarray],
    team: np.ndarray,
    n_teams: int | None = None,
) -> np.ndarray:
    """Live agents per team over a trajectory.

    Args:
        alive_history: bool[S, N], or S arrays bool[N] (one per step).
        team: int[N] fixed teams, or int[S, N] when slots change team (e.g.
            a dead slot reborn as prey).
        n_teams: T; None: ``team.max() + 1``.

    Returns:
        int64[S, T]; for pursuit, column 0 and 1 are the two species' series.
    """
    alive = np.asarray(alive_history)
    if alive.ndim != 2 or alive.dtype != np.bool_:
        raise ValueError(f"alive_history must be bool[S, N], got {alive.dtype}{list(alive.shape)}")
    team = np.asarray(team)
    if team.shape not in (alive.shape, alive.shape[1:]):
        raise ValueError(
            f"team must be [N] or [S, N] matching alive_history {alive.shape}, got {team.shape}"
        )
    _, n_teams = _check_team(team.reshape(-1), n_teams)
    team = np.broadcast_to(team, alive.shape)
    steps = np.broadcast_to(np.arange(alive.shape[0], dtype=np.int64)[:, None], alive.shape)
    keys = steps[alive] * n_teams + team[alive]
    counts = np.bincount(keys, minlength=alive.shape[0] * n_teams)
    return counts.reshape(alive.shape[0], n_teams).astype(np.int64)


def _correlate(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``r[k] = sum_t x[t] * y[t + k]`` for ``k = 0..T-1`` then ``k = -(T-1)..-1``.

    Returned with length ``n >= 2T - 1``; negative lags sit at ``r[n + k]``.
    """
    n = 1 << int(np.ceil(np.log2(max(2 * x.size - 1, 1))))
    return np.fft.irfft(np.conj(np.fft.rfft(x, n)) * np.fft.rfft(y, n), n)


def _standardize(x: np.ndarray) -> np.ndarray | None:
    x = x - x.mean()
    std = x.std()
    if std <= 1e-12 * max(1.0, float(np.abs(x).max())):
        return None
    return x / std


@dataclass(frozen=True, eq=False)
class PhaseLag:
    """Where the cross-correlation of prey and predator counts peaks.

    Attributes:
        lag: steps by which predators follow prey (the peak's lag ``k`` of
            ``corr(prey[t], pred[t + k])``); negative when predators lead;
            NaN when either series is constant or too short.
        correlation: the correlation at the peak (NaN likewise).
        lags: int64[L] lags searched, ``-max_lag..max_lag``.
        correlations: float64[L] correlation at each lag (biased estimate:
            sums divided by T, which damps long lags with little overlap).
    """

    lag: float
    correlation: float
    lags: np.ndarray
    correlations: np.ndarray


def predator_prey_phase(
    pred_counts: np.ndarray, prey_counts: np.ndarray, max_lag: int | None = None
) -> PhaseLag:
    """Lagged cross-correlation of predator and prey populations, and its peak.

    In predator-prey cycles predators peak after prey (a quarter period in the
    Lotka-Volterra picture): a clear positive ``lag`` with a high correlation
    is the signature; for near-uncorrelated series the lag means little.

    Args:
        pred_counts, prey_counts: float or int[T] population series.
        max_lag: largest |lag| searched; None: ``T // 2``.

    Returns:
        :class:`PhaseLag`.
    """
    pred = _check_series("pred_counts", pred_counts)
    prey = _check_series("prey_counts", prey_counts)
    if pred.shape != prey.shape:
        raise ValueError(f"series lengths differ: pred {pred.shape} vs prey {prey.shape}")
    t = pred.size
    max_lag = t // 2 if max_lag is None else int(max_lag)
    if max_lag < 0:
        raise ValueError(f"max_lag must be >= 0, got {max_lag}")
    max_lag = min(max_lag, max(t - 1, 0))
    lags = np.arange(-max_lag, max_lag + 1, dtype=np.int64)
    x, y = (_standardize(prey), _standardize(pred)) if t >= 2 else (None, None)
    if x is None or y is None:
        return PhaseLag(float("nan"), float("nan"), lags, np.full(lags.size, np.nan))
    r = _correlate(x, y) / t
    corr = r[lags % r.size]
    best = int(np.argmax(corr))  # ties: the most negative lag
    return PhaseLag(float(lags[best]), float(corr[best]), lags, corr)


def autocorrelation(series: np.ndarray, max_lag: int | None = None) -> np.ndarray:
    """Biased autocorrelation ``acf[k] = sum_t x[t] x[t + k] / sum_t x[t]^2`` of the
    mean-removed series, ``k = 0..max_lag`` (None: ``T - 1``): ``float64[K]``.

    All NaN for a constant series.
    """
    x = _check_series("series", series)
    max_lag = x.size - 1 if max_lag is None else min(int(max_lag), x.size - 1)
    z = _standardize(x) if x.size >= 2 else None
    if z is None:
        return np.full(max(max_lag + 1, 0), np.nan)
    r = _correlate(z, z)
    return r[: max_lag + 1] / r[0]


def cycle_period(series: np.ndarray) -> float:
    """Period of a population cycle, from the autocorrelation.

    The autocorrelation of a cycling series falls below zero, then rises to a
    positive peak one period later. The period is the lag of the highest
    point of the first positive lobe after the first zero crossing, located
    on the unbiased estimate (sums divided by ``T - k``, which has the same
    sign) and refined by a parabola through the peak and its neighbours.

    Args:
        series: float or int[T].

    Returns:
        The period in steps; NaN when the series is constant, shorter than 4
        steps, or its autocorrelation never returns above zero.
    """
    x = _check_series("series", series)
    if x.size < 4:
        return float("nan")
    acf = autocorrelation(x)
    if np.isnan(acf[0]):
        return float("nan")
    below = np.flatnonzero(acf <= 0)
    if below.size == 0:
        return float("nan")
    above = np.flatnonzero(acf[below[0] :] > 0)
    if above.size == 0:
        return float("nan")
    start = int(below[0] + above[0])
    after = np.flatnonzero(acf[start:] <= 0)
    stop = start + int(after[0]) if after.size else acf.size
    unbiased = acf * (x.size / (x.size - np.arange(acf.size)))
    k = start + int(np.argmax(unbiased[start:stop]))
    if 0 < k < acf.size - 1:
        left, mid, right = unbiased[k - 1], unbiased[k], unbiased[k + 1]
        curvature = left - 2 * mid + right
        if curvature < 0:
            return float(k + 0.5 * (left - right) / curvature)
    return float(k)


# ---- one step, all metrics --------------------------------------------------------


def step_metrics(
    grid: np.ndarray,
    pos: np.ndarray,
    team: np.ndarray,
    alive: np.ndarray,
    attack_target: np.ndarray | None = None,
    n_teams: int | None = None,
    connectivity: int = 4,
    prefix: str = "emergence/",
) -> dict[str, float]:
    """The per-step grid metrics as one flat dict of floats, for ``metrics.jsonl``.

    Keys: ``team{t}_size``, ``team{t}_clusters``, ``team{t}_cluster_mean``,
    ``team{t}_cluster_largest``, ``front_line``, and with ``attack_target``
    ``encirclement`` (NaN when nobody was attacked), each after ``prefix``.
    ``alive`` filters the map and the attackers alike (pass the mask from
    before the step's deaths if attacks should include agents that died).
    """
    team, n_teams = _check_team(team, n_teams)
    tmap = team_map(grid, team, alive)
    out: dict[str, float] = {}
    sizes = team_sizes(team, alive, n_teams)
    for t in range(n_teams):
        stats = _cluster_stats(tmap, t, connectivity)
        out[f"{prefix}team{t}_size"] = float(sizes[t])
        out[f"{prefix}team{t}_clusters"] = float(stats.count)
        out[f"{prefix}team{t}_cluster_mean"] = stats.mean
        out[f"{prefix}team{t}_cluster_largest"] = float(stats.largest)
    out[f"{prefix}front_line"] = float(K.front_line_pairs(tmap))
    if attack_target is not None:
        out[f"{prefix}encirclement"] = encirclement_index(pos, attack_target, alive)
    return out
