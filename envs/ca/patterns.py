"""Life patterns: a small library and the RLE format Life users paste patterns in.

RLE (run-length encoded) patterns look like::

    #N Glider
    x = 3, y = 3, rule = B3/S23
    bo$2bo$3o!

``b`` is a dead cell, ``o`` a live one, ``$`` ends a row, ``!`` ends the
pattern, and a number before a tag repeats it. Lines starting with ``#`` are
comments (``#N`` name, ``#C`` comment, ``#O`` author).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class RLEError(ValueError):
    """A malformed RLE pattern; the message gives line and column (1-based)."""

    def __init__(self, message: str, line: int, column: int):
        self.line = line
        self.column = column
        super().__init__(f"RLE line {line}, column {column}: {message}")


@dataclass
class RLEPattern:
    """A parsed RLE pattern.

    Attributes:
        cells: uint8[h, w], 1 = alive.
        rule: the ``rule =`` field of the header, if any.
        name: the ``#N`` comment, if any.
        comments: other ``#`` lines, without the leading tag.
    """

    cells: np.ndarray
    rule: str | None = None
    name: str | None = None
    comments: list[str] = field(default_factory=list)


def _parse_header(text: str, line_no: int) -> tuple[int, int, str | None]:
    fields: dict[str, str] = {}
    col = 1
    for part in text.split(","):
        if "=" not in part:
            raise RLEError(f"header field {part.strip()!r} is not 'key = value'", line_no, col)
        key, value = part.split("=", 1)
        fields[key.strip().lower()] = value.strip()
        col += len(part) + 1
    try:
        width, height = int(fields["x"]), int(fields["y"])
    except KeyError:
        raise RLEError("header must give 'x = <width>, y = <height>'", line_no, 1) from None
    except ValueError:
        raise RLEError(
            f"x and y must be integers, got x={fields.get('x')!r}, y={fields.get('y')!r}",
            line_no,
            1,
        ) from None
    if width < 0 or height < 0:
        raise RLEError(f"negative size x={width}, y={height}", line_no, 1)
    return width, height, fields.get("rule")


def parse_rle(text: str) -> RLEPattern:
    """Parse an RLE pattern.

    Multi-state tags (``A``-``X``, ``.``) are read as alive/dead so that Generations
    patterns still load as two-state boards.

    Raises:
        RLEError: with the line and column of the first problem.
    """
    name: str | None = None
    comments: list[str] = []
    header: tuple[int, int, str | None] | None = None
    rows: list[list[int]] = [[]]
    count = ""
    done = False
    count_pos = (0, 0)
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if done or not line:
            continue
        if line.startswith("#"):
            tag, _, rest = line.partition(" ")
            if tag == "#N":
                name = rest.strip()
            else:
                comments.append(rest.strip() if len(tag) == 2 else line[1:].strip())
            continue
        if header is None and line.lower().startswith("x"):
            header = _parse_header(line, line_no)
            continue
        offset = len(raw) - len(raw.lstrip())
        for i, ch in enumerate(line):
            col = offset + i + 1
            if ch.isdigit():
                if not count:
                    count_pos = (line_no, col)
                count += ch
                continue
            if ch.isspace():
                continue
            if ch == "!" and count:
                raise RLEError(f"run count {count!r} is not followed by a tag", *count_pos)
            run = int(count) if count else 1
            if count and run == 0:
                raise RLEError("a run count must be at least 1", *count_pos)
            count = ""
            if ch in "bB.":
                rows[-1].extend([0] * run)
            elif ch in "oO" or "A" <= ch <= "X":
                rows[-1].extend([1] * run)
            elif ch == "$":
                rows.extend([] for _ in range(run))
            elif ch == "!":
                done = True
                break
            else:
                raise RLEError(
                    f"unexpected character {ch!r}; expected a count, 'b', 'o', '$' or '!'",
                    line_no,
                    col,
                )
    if header is None and not any(rows):
        raise RLEError("no 'x = .., y = ..' header and no cells", 1, 1)
    if count:
        raise RLEError(f"run count {count!r} is not followed by a tag", *count_pos)
    if not done:
        last = max(1, len(text.splitlines()))
        raise RLEError("pattern does not end with '!'", last, 1)
    width = max((len(r) for r in rows), default=0)
    height = len(rows)
    rule = None
    if header is not None:
        hw, hh, rule = header
        if width > hw or height > hh:
            raise RLEError(
                f"cells ({height} rows x {width} columns) exceed the header's x = {hw}, y = {hh}",
                1,
                1,
            )
        width, height = hw, hh
    cells = np.zeros((height, width), dtype=np.uint8)
    for y, row in enumerate(rows[:height]):
        cells[y, : len(row)] = row
    return RLEPattern(cells, rule=rule, name=name, comments=comments)


def to_rle(cells: np.ndarray, *, rule: str | None = "B3/S23", name: str | None = None) -> str:
    """Write ``cells`` (uint8[h, w]) as RLE, lines of at most 70 characters."""
    cells = np.asarray(cells)
    if cells.ndim != 2:
        raise ValueError(f"cells must be 2-D [h, w], got shape {cells.shape}")
    h, w = cells.shape
    tokens: list[str] = []

    def emit(run: int, tag: str) -> None:
        tokens.append(f"{run}{tag}" if run > 1 else tag)

    current_row = 0  # the row the written tokens have reached
    for y in range(h):
        row = cells[y]
        nz = np.flatnonzero(row)
        if nz.size == 0:
            continue
        if y > current_row:
            emit(y - current_row, "$")
            current_row = y
        row = row[: nz[-1] + 1]
        x = 0
        while x < row.size:
            value = row[x]
            end = x
            while end < row.size and row[end] == value:
                end += 1
            emit(end - x, "o" if value else "b")
            x = end
    tokens.append("!")
    lines: list[str] = []
    if name:
        lines.append(f"#N {name}")
    header = f"x = {w}, y = {h}" + (f", rule = {rule}" if rule else "")
    lines.append(header)
    current = ""
    for tok in tokens:
        if len(current) + len(tok) > 70:
            lines.append(current)
            current = ""
        current += tok
    lines.append(current)
    return "\n".join(lines) + "\n"


def load_rle(path: str | Path) -> RLEPattern:
    """Read an ``.rle`` file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"RLE file {str(path)!r} does not exist")
    if not path.is_file():
        raise ValueError(f"RLE path {str(path)!r} is not a file")
    return parse_rle(path.read_text())


def stamp(board: np.ndarray, cells: np.ndarray, y: int, x: int, *, wrap: bool = False) -> None:
    """Write ``cells`` into ``board[..., y:, x:]`` in place (live cells only are set)."""
    h, w = board.shape[-2:]
    ph, pw = cells.shape
    if not wrap and (y < 0 or x < 0 or y + ph > h or x + pw > w):
        raise ValueError(
            f"pattern of {ph} x {pw} cells at ({y}, {x}) does not fit a {h} x {w} board"
        )
    ys = (np.arange(ph) + y) % h
    xs = (np.arange(pw) + x) % w
    region = board[..., ys[:, None], xs[None, :]]
    board[..., ys[:, None], xs[None, :]] = np.maximum(region, cells.astype(board.dtype))


@dataclass(frozen=True)
class Pattern:
    """A library entry.

    Attributes:
        rle: the pattern in RLE.
        description: one line.
        kind: ``still life``, ``oscillator``, ``spaceship``, ``gun``, ``methuselah``
            or ``replicator``.
        rule: the rule it lives in.
        period: steps until it repeats (for a gun: steps between emissions).
        displacement: ``(dy, dx)`` per period for spaceships, else ``(0, 0)``.
    """

    rle: str
    description: str
    kind: str
    rule: str = "B3/S23"
    period: int | None = None
    displacement: tuple[int, int] = (0, 0)


PATTERNS: dict[str, Pattern] = {
    "block": Pattern("2o$2o!", "still life, 4 cells", "still life", period=1),
    "beehive": Pattern("b2o$o2bo$b2o!", "still life, 6 cells", "still life", period=1),
    "loaf": Pattern("b2o$o2bo$bobo$2bo!", "still life, 7 cells", "still life", period=1),
    "boat": Pattern("2o$obo$bo!", "still life, 5 cells", "still life", period=1),
    "blinker": Pattern("3o!", "period-2 oscillator", "oscillator", period=2),
    "toad": Pattern("b3o$3o!", "period-2 oscillator", "oscillator", period=2),
    "beacon": Pattern("2o$2o$2b2o$2b2o!", "period-2 oscillator", "oscillator", period=2),
    "pulsar": Pattern(
        "2b3o3b3o2$o4bobo4bo$o4bobo4bo$o4bobo4bo$2b3o3b3o2$2b3o3b3o$o4bobo4bo$"
        "o4bobo4bo$o4bobo4bo2$2b3o3b3o!",
        "period-3 oscillator, 48 cells",
        "oscillator",
        period=3,
    ),
    "pentadecathlon": Pattern(
        "2bo4bo$2ob4ob2o$2bo4bo!", "period-15 oscillator", "oscillator", period=15
    ),
    "glider": Pattern(
        "bo$2bo$3o!",
        "the smallest spaceship: 1 cell diagonally per 4 steps",
        "spaceship",
        period=4,
        displacement=(1, 1),
    ),
    "lwss": Pattern(
        "bo2bo$o$o3bo$4o!",
        "lightweight spaceship: 2 cells left per 4 steps",
        "spaceship",
        period=4,
        displacement=(0, -2),
    ),
    "r-pentomino": Pattern("b2o$2o$bo!", "methuselah: settles after 1103 steps", "methuselah"),
    "acorn": Pattern("bo$3bo$2o2b3o!", "methuselah: 7 cells that run 5206 steps", "methuselah"),
    "diehard": Pattern("6bo$2o$bo3b3o!", "methuselah that vanishes after 130 steps", "methuselah"),
    "gosper-glider-gun": Pattern(
        "24bo$22bobo$12b2o6b2o12b2o$11bo3bo4b2o12b2o$2o8bo5bo3b2o$"
        "2o8bo3bob2o4bobo$10bo5bo7bo$11bo3bo$12b2o!",
        "Gosper's gun: one glider every 30 steps",
        "gun",
        period=30,
    ),
    "replicator": Pattern(
        "2b3o$bo2bo$o3bo$o2bo$3o!",
        "HighLife's replicator: copies itself",
        "replicator",
        rule="B36/S23",
    ),
}


def get_pattern(name: str) -> np.ndarray:
    """Cells (uint8[h, w]) of a library pattern, by name."""
    try:
        entry = PATTERNS[name]
    except KeyError:
        raise KeyError(
            f"unknown pattern {name!r}; known patterns: {', '.join(sorted(PATTERNS))}"
        ) from None
    return parse_rle(entry.rle).cells
