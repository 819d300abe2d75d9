"""Argument checks shared by every subpackage: one place, one wording.

Every config ``__post_init__`` and public constructor refuses bad input at the
boundary with a ``ValueError`` that names the value and what was expected, e.g.
``--hidden must be an integer >= 1, got 0``. The CLI turns it into one ``error:``
line. ``name`` is written as the caller wants it shown (``"--pop-size"`` for a CLI
option, ``"pop_size"`` for a constructor argument).

Lives in the top-level ``colonylab`` package so that worlds, agents and cores can all
use it without importing one another.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import fields, is_dataclass
from typing import Any

__all__ = [
    "check_choice",
    "check_dataclass_ints",
    "check_float",
    "check_int",
    "check_optional_int",
    "check_probability",
    "option",
]


def option(field_name: str) -> str:
    """The CLI spelling of a config field: ``pop_size`` -> ``--pop-size``."""
    return "--" + field_name.replace("_", "-")


def _bounds_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high}"
    return ""


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """``value`` if it is an int (not a bool) within ``[low, high]``, else ``ValueError``."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    if ok and low is not None and value < low:
        ok = False
    if ok and high is not None and value > high:
        ok = False
    if not ok:
        bounds = _bounds_text(low, high, False, False)
        raise ValueError(
            f"{name} must be an integer{' ' + bounds if bounds else ''}, got {value!r}"
        )
    return value


def check_optional_int(
    name: str, value: Any, low: int | None = None, high: int | None = None
) -> int | None:
    """Like :func:`check_int`, but ``None`` passes (an option that may be unset)."""
    if value is None:
        return None
    try:
        return check_int(name, value, low, high)
    except ValueError:
        bounds = _bounds_text(low, high, False, False)
        raise ValueError(
            f"{name} must be None or an integer{' ' + bounds if bounds else ''}, got {value!r}"
        ) from None


def check_float(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``float(value)`` if it is a finite real number within the bounds, else ``ValueError``.

    ``low_open`` / ``high_open`` exclude the bound itself (``low=0, low_open=True``: > 0).
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        value_f = float(value)
        ok = math.isfinite(value_f)
        if ok and low is not None:
            ok = value_f > low if low_open else value_f >= low
        if ok and high is not None:
            ok = value_f < high if high_open else value_f <= high
    if not ok:
        bounds = _bounds_text(low, high, low_open, high_open)
        raise ValueError(
            f"{name} must be a finite number{' ' + bounds if bounds else ''}, got {value!r}"
        )
    return float(value)


def check_probability(name: str, value: Any) -> float:
    """A number in ``[0, 1]``."""
    return check_float(name, value, 0.0, 1.0)


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``, else ``ValueError`` listing them."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_dataclass_ints(obj: Any, lows: dict[str, int], *, cli: bool = True) -> None:
    """Check several int fields of a config dataclass at once: ``{field: low}``.

    Names are shown as CLI options (``--pop-size``) unless ``cli`` is False.
    """
    if not is_dataclass(obj):
        raise TypeError(f"expected a dataclass instance, got {type(obj).__name__}")
    known = {f.name for f in fields(obj)}
    for field_name, low in lows.items():
        if field_name not in known:
            raise KeyError(f"{type(obj).__name__} has no field {field_name!r}")
        shown = option(field_name) if cli else field_name
        check_int(shown, getattr(obj, field_name), low)
