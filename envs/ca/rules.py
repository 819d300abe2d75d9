"""Life-like rules in B/S notation (``B3/S23``), parsed and validated.

A Life-like rule says for which live-neighbour counts (0-8, Moore
neighbourhood) a dead cell is born (B) and a live cell survives (S).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

NAMED_RULES: dict[str, str] = {
    "life": "B3/S23",
    "highlife": "B36/S23",
    "seeds": "B2/S",
    "daynight": "B3678/S34678",
    "replicator": "B1357/S1357",
    "2x2": "B36/S125",
    "maze": "B3/S12345",
    "morley": "B368/S245",
    "anneal": "B4678/S35678",
    "diamoeba": "B35678/S5678",
    "lwod": "B2/S0",  # "Live Free or Die"
}


class InvalidRuleError(ValueError):
    """A rule string that is not valid B/S notation."""


_BS = re.compile(r"^B(?P<b>[0-9]*)/S(?P<s>[0-9]*)$")
_SB = re.compile(r"^S(?P<s>[0-9]*)/B(?P<b>[0-9]*)$")
_OLD = re.compile(r"^(?P<s>[0-9]*)/(?P<b>[0-9]*)$")  # Golly's old "S/B" form, e.g. 23/3


def _digits(text: str, which: str, rule: str) -> frozenset[int]:
    counts = [int(ch) for ch in text]
    bad = [c for c in counts if c > 8]
    if bad:
        raise InvalidRuleError(
            f"invalid rule {rule!r}: {which} count {bad[0]} is out of range; "
            "neighbour counts are 0-8 (e.g. 'B3/S23')"
        )
    if len(set(counts)) != len(counts):
        raise InvalidRuleError(f"invalid rule {rule!r}: repeated digit in {which} part {text!r}")
    return frozenset(counts)


@dataclass(frozen=True)
class LifeRule:
    """A Life-like rule.

    Attributes:
        birth: neighbour counts at which a dead cell becomes alive.
        survive: neighbour counts at which a live cell stays alive.
    """

    birth: frozenset[int]
    survive: frozenset[int]

    @classmethod
    def parse(cls, rule: str | LifeRule) -> LifeRule:
        """Parse ``"B3/S23"``, ``"S23/B3"``, ``"23/3"`` or a name (``"highlife"``).

        Raises:
            InvalidRuleError: naming the string and the expected notation.
        """
        if isinstance(rule, LifeRule):
            return rule
        if not isinstance(rule, str):
            raise InvalidRuleError(f"rule must be a string like 'B3/S23', got {rule!r}")
        text = rule.strip()
        if text.lower() in NAMED_RULES:
            text = NAMED_RULES[text.lower()]
        upper = text.upper()
        m = _BS.match(upper) or _SB.match(upper) or _OLD.match(upper)
        if m is None:
            names = ", ".join(sorted(NAMED_RULES))
            raise InvalidRuleError(
                f"invalid rule {rule!r}: expected B/S notation such as 'B3/S23' (Life), "
                f"'B36/S23' (HighLife) or 'B2/S' (Seeds), or one of the names {names}"
            )
        return cls(_digits(m["b"], "birth", rule), _digits(m["s"], "survival", rule))

    @property
    def notation(self) -> str:
        """Canonical B/S string, e.g. ``"B3/S23"``."""
        b = "".join(str(n) for n in sorted(self.birth))
        s = "".join(str(n) for n in sorted(self.survive))
        return f"B{b}/S{s}"

    def masks(self) -> tuple[np.ndarray, np.ndarray]:
        """``(birth, survive)`` as uint8[9] masks for the kernels."""
        birth = np.zeros(9, dtype=np.uint8)
        survive = np.zeros(9, dtype=np.uint8)
        birth[list(self.birth)] = 1
        survive[list(self.survive)] = 1
        return birth, survive

    def __str__(self) -> str:
        return self.notation
