"""RLE parsing and writing, the pattern library."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from colonylab.envs.ca.patterns import PATTERNS, RLEError, get_pattern, load_rle, parse_rle, to_rle

GLIDER_RLE = """#N Glider
#C The smallest spaceship
x = 3, y = 3, rule = B3/S23
bo$2bo$3o!
"""


def test_parse_glider():
    p = parse_rle(GLIDER_RLE)
    np.testing.assert_array_equal(p.cells, [[0, 1, 0], [0, 0, 1], [1, 1, 1]])
    assert p.rule == "B3/S23"
    assert p.name == "Glider"
    assert p.comments == ["The smallest spaceship"]


def test_parse_multiline_with_blank_row_runs():
    text = "x = 4, y = 5\no2bo$\n2$4o!\n"
    cells = parse_rle(text).cells
    assert cells.shape == (5, 4)
    np.testing.assert_array_equal(cells[0], [1, 0, 0, 1])
    assert cells[1:3].sum() == 0
    np.testing.assert_array_equal(cells[3], [1, 1, 1, 1])


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.uint8, st.tuples(st.integers(1, 20), st.integers(1, 90)), elements=st.integers(0, 1))
)
def test_rle_roundtrip(cells):
    text = to_rle(cells, name="random")
    assert all(len(line) <= 70 for line in text.splitlines())
    back = parse_rle(text)
    np.testing.assert_array_equal(back.cells, cells)
    assert back.name == "random"


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_library_roundtrips(name):
    cells = get_pattern(name)
    np.testing.assert_array_equal(parse_rle(to_rle(cells)).cells, cells)


@pytest.mark.parametrize(
    "text,line,column,match",
    [
        ("x = 3, y = 3\nbo$2bz$3o!", 2, 6, "unexpected character 'z'"),
        ("x = 3, y = 3\nbo$2bo$3o", 2, 1, "does not end with '!'"),
        ("x = 2, y = 2\n3o!", 1, 1, "exceed"),
        ("x = a, y = 3\nbo!", 1, 1, "integers"),
        ("#C only comments\n  \n", 1, 1, "no 'x"),
        ("x = 3, y = 3\nbo$\n  2bo$3o12!", 3, 9, "not followed by a tag"),
        ("x = 3, y = 3\n0o!", 2, 1, "at least 1"),
    ],
)
def test_malformed_rle_reports_line_and_column(text, line, column, match):
    with pytest.raises(RLEError, match=match) as exc:
        parse_rle(text)
    assert (exc.value.line, exc.value.column) == (line, column)
    assert f"line {line}, column {column}" in str(exc.value)


def test_load_rle_file(tmp_path):
    path = tmp_path / "glider.rle"
    path.write_text(GLIDER_RLE)
    assert load_rle(path).cells.sum() == 5
    with pytest.raises(FileNotFoundError, match="missing.rle"):
        load_rle(tmp_path / "missing.rle")


def test_unknown_pattern_lists_known_names():
    with pytest.raises(KeyError, match="glider"):
        get_pattern("glidr")


def test_gosper_gun_shape():
    cells = get_pattern("gosper-glider-gun")
    assert cells.shape == (9, 36) and cells.sum() == 36
