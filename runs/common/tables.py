"""Result tables: rows of ``{condition, agent, mean, std}`` printed as one table.

Plumbing only (no world, agent or core): it takes rows that an evaluation produced.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["ci95", "metrics_table", "print_rows"]


def print_rows(rows: Sequence[dict[str, Any]], title: str, console: Console | None = None) -> None:
    """One row per condition, one column per agent (``mean ± sd``), plus the ratio of
    each agent's score to its score under the first condition (only where that is
    positive: returns can be negative)."""
    if not rows:
        raise ValueError("print_rows needs at least one row")
    agents = list(dict.fromkeys(r["agent"] for r in rows))
    base = {
        r["agent"]: r["mean"]
        for r in rows
        if r["condition"] == rows[0]["condition"] and r["mean"] is not None and r["mean"] > 0
    }
    table = Table(title=title)
    table.add_column("condition")
    for a in agents:
        table.add_column(f"{a} mean ± sd", justify="right")
        table.add_column("vs first", justify="right")
    for cond in dict.fromkeys(r["condition"] for r in rows):
        cells = [cond]
        for a in agents:
            r = next((r for r in rows if r["condition"] == cond and r["agent"] == a), None)
            if r is None or r["mean"] is None:
                cells += ["n/a", ""]
                continue
            cells.append(f"{r['mean']:.1f} ± {r['std']:.1f}")
            b = base.get(a)
            cells.append(f"{r['mean'] / b:.2f}" if b else "")
        table.add_row(*cells)
    (console or Console()).print(table)


def metrics_table(title: str, metrics: Mapping[str, Any], caption: str | None = None) -> Table:
    """One row per headline number: ``metric | value`` (integers with thousands
    separators, other numbers to 4 significant digits)."""
    table = Table(title=title, caption=caption, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        is_int = isinstance(value, int) and not isinstance(value, bool)
        table.add_row(key, f"{value:,}" if is_int else f"{value:.4g}")
    return table


# Student t, 97.5% quantile, 1..20 degrees of freedom
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179]
_T975 += [2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086]


def ci95(values: list[float]) -> tuple[float, float]:
    """Mean and 95% half-width (Student t) of the finite ``values`` (nan if none / one)."""
    xs = [float(v) for v in values if math.isfinite(float(v))]
    if not xs:
        return math.nan, math.nan
    n = len(xs)
    mean = sum(xs) / n
    if n == 1:
        return mean, math.nan
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    t = _T975[n - 2] if n - 2 < len(_T975) else 1.96
    return mean, t * sd / math.sqrt(n)
