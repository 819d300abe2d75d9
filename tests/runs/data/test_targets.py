"""NCA targets: premultiplied, centred, resized; the drawn built-ins; bad images refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from colonylab.runs.data.targets import BUILTIN_TARGETS, draw_butterfly, draw_ladybug, load_target


def _blob(path, size=10, rgba=(200, 60, 30, 255), mode="RGBA"):
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    for y in range(2, size - 2):
        for x in range(2, size - 2):
            img.putpixel((x, y), rgba)
    img.convert(mode).save(path)
    return path


def test_target_is_premultiplied_centred_and_resized(tmp_path):
    path = _blob(tmp_path / "t.png", size=10, rgba=(255, 0, 0, 128))
    t = load_target(path, target_size=None, size=14)
    assert t.shape == (14, 14, 4) and t.dtype == torch.float32
    assert torch.allclose(
        t[4, 4], torch.tensor([128 / 255 * 255 / 255, 0, 0, 128 / 255]), atol=1e-3
    )
    assert t[:2].abs().sum() == 0 and t[-2:].abs().sum() == 0  # centred with margins
    small = load_target(path, target_size=5, size=14)
    assert (small[..., 3] > 0).sum() < (t[..., 3] > 0).sum()


def test_rgb_images_convert_and_default_target_loads(tmp_path):
    path = _blob(tmp_path / "rgb.png", mode="RGB")  # no alpha: opaque everywhere
    t = load_target(path, None, 12)
    assert t[..., 3].max() == 1.0
    butterfly = load_target(None, 40, 72)
    assert 0.3 < float((butterfly[..., 3] > 0.1).float().mean() * 72 * 72 / 1600) < 0.8


@pytest.mark.parametrize("name", ["butterfly", "ladybug"])
def test_shipped_targets_are_the_drawn_ones(name):
    draw = {"butterfly": draw_butterfly, "ladybug": draw_ladybug}[name]
    drawn = np.asarray(draw(), dtype=np.float32)
    path = BUILTIN_TARGETS[name]
    shipped = np.asarray(Image.open(path).convert("RGBA"), dtype=np.float32)
    assert shipped.shape == drawn.shape == (40, 40, 4)
    assert np.abs(drawn - shipped).mean() < 2.0
    assert torch.equal(load_target(name, 32, 48), load_target(path, 32, 48))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: p / "missing.png", "does not exist"),
        (lambda p: (p / "text.png").write_text("not an image") and p / "text.png", "not an image"),
        (lambda p: _blob(p / "big.png", size=30), "larger than the 20x20 canvas"),
        (lambda p: _blob(p / "clear.png", rgba=(9, 9, 9, 0)), "fully transparent"),
    ],
)
def test_bad_targets_are_refused(tmp_path, make, match):
    path = make(tmp_path)
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        load_target(path, None, 20)
