"""The neural-CA figures take arrays and write files (no model needed)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from colonylab.emergence.plots_nca import PALETTE, digits_figure, grow_figure, votes_rgb, write_gif


def _frame(colour, size=8):
    return np.full((size, size, 3), colour, dtype=np.uint8)


def test_grow_figure_and_gif(tmp_path):
    losses = list(np.linspace(0.1, 0.01, 30))
    evals = [(10, {"loss_grown": 0.05, "loss_damaged": 0.2, "loss_recovered": 0.06})]
    frames = [_frame(c) for c in (0, 50, 100, 150, 200, 250)]
    path = grow_figure(
        tmp_path / "g.png", losses, evals, frames, list("abcdef"), mode="regenerating",
        grow_steps=64, recover_steps=100,
    )  # fmt: skip
    assert Image.open(path).size[0] > 600
    gif = write_gif(tmp_path / "g.gif", frames, scale=3)
    with Image.open(gif) as im:
        assert im.size == (24, 24) and im.n_frames == 6


def test_votes_rgb_colours_live_cells_by_their_vote():
    x = np.zeros((2, 2, 12), dtype=np.float32)
    x[0, 0, 0] = 1.0  # full ink, voting for class 3
    x[0, 0, 2 + 3] = 5.0
    rgb = votes_rgb(x)
    assert rgb.dtype == np.uint8 and (rgb[1, 1] == 255).all()  # no ink: white
    assert np.allclose(rgb[0, 0] / 255.0, PALETTE[3], atol=0.01)


def test_digits_figure(tmp_path):
    digits = [(_frame(25 * k), k, k if k % 2 else 0) for k in range(10)]
    swap = [(t, _frame(40 * i), 0.5) for i, t in enumerate((1, 10, 100, 101, 200))]
    evals = [(5, {"accuracy": 0.5, "agreement": 0.6, "stability": 0.7, "reagreement": 0.4})]
    path = digits_figure(
        tmp_path / "d.png", [1.0, 0.5, 0.2], evals, digits, swap, eval_steps=200, swap_at=100
    )
    assert Image.open(path).size[0] > 600
