"""Reading a run's ``metrics.jsonl`` back for learning-curve plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["read_metrics", "series", "smooth"]


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file, in order (blank lines skipped)."""
    return [json.loads(x) for x in Path(path).read_text().splitlines() if x.strip()]


def series(rows: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """``(steps, values)`` of the records that carry ``key``."""
    pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
    return [p[0] for p in pts], [p[1] for p in pts]


def smooth(y: list[float], k: int = 10) -> list[float]:
    """Trailing mean over the last ``k`` values (fewer at the start)."""
    out, acc = [], []
    for v in y:
        acc = [*acc[-(k - 1) :], v]
        out.append(float(np.mean(acc)))
    return out
