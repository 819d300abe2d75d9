"""NCA target images: the butterfly and ladybug this project draws, and any RGBA image.

:func:`load_target` turns a path (or a built-in name) into the premultiplied RGBA
canvas ``float32 (size, size, 4)`` that ``nca-grow`` learns to grow;
:func:`draw_butterfly` / :func:`draw_ladybug` made ``runs/assets/*.png``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

__all__ = ["BUILTIN_TARGETS", "DEFAULT_TARGET", "draw_butterfly", "draw_ladybug", "load_target"]

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_TARGET = ASSETS / "butterfly.png"
BUILTIN_TARGETS = {"butterfly": ASSETS / "butterfly.png", "ladybug": ASSETS / "ladybug.png"}
"""Built-in targets drawn by this project (``--target butterfly`` / ``--target ladybug``)."""


def draw_butterfly(size: int = 40, supersample: int = 8):
    """The default target: a butterfly drawn with Pillow (a ``PIL.Image`` in RGBA)."""
    from PIL import Image, ImageDraw

    big = size * supersample
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    u = big / 46.0  # drawing unit: the butterfly spans ~40 units, centred
    cx, cy = big / 2.0, big / 2.0 + 1.5 * u
    ink = (40, 25, 30, 255)
    body = (50, 35, 40, 255)

    def wing(x: float, y0: float, y1: float, half_width: float, fill: tuple) -> None:
        draw.ellipse((x - half_width, y0, x + half_width, y1), fill=ink)
        rim = 1.6 * u
        draw.ellipse((x - half_width + rim, y0 + rim, x + half_width - rim, y1 - rim), fill=fill)

    for side in (-1, 1):
        wing(cx + side * 11 * u, cy - 17 * u, cy + 2 * u, 10 * u, (245, 140, 30, 255))
        wing(cx + side * 8.5 * u, cy - 1 * u, cy + 15 * u, 7.5 * u, (250, 190, 50, 255))
        for dx, dy, r, colour in (
            (15, -12, 1.8, (255, 255, 255, 255)),
            (11, -6, 2.6, (200, 40, 60, 255)),
            (9, 6, 2.2, (60, 120, 220, 255)),
        ):
            x, y = cx + side * dx * u, cy + dy * u
            draw.ellipse((x - r * u, y - r * u, x + r * u, y + r * u), fill=colour)
        tip_x, tip_y = cx + side * 6 * u, cy - 19.5 * u
        draw.line((cx + side * u, cy - 15 * u, tip_x, tip_y), fill=body, width=int(1.2 * u))
        draw.ellipse(
            (tip_x - 1.2 * u, tip_y - 1.2 * u, tip_x + 1.2 * u, tip_y + 1.2 * u), fill=body
        )
    draw.ellipse((cx - 1.8 * u, cy - 13 * u, cx + 1.8 * u, cy + 14 * u), fill=body)
    draw.ellipse((cx - 2.6 * u, cy - 16 * u, cx + 2.6 * u, cy - 11 * u), fill=body)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def draw_ladybug(size: int = 40, supersample: int = 8):
    """The second built-in target: a ladybug drawn with Pillow (``PIL.Image``, RGBA)."""
    from PIL import Image, ImageDraw

    big = size * supersample
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    u = big / 46.0
    cx, cy = big / 2.0, big / 2.0 + 2 * u
    black = (30, 25, 30, 255)
    # legs
    for side in (-1, 1):
        for k, dy in enumerate((-6, 1, 8)):
            x0, y0 = cx + side * 8 * u, cy + dy * u
            x1, y1 = cx + side * 18 * u, cy + (dy + (k - 1) * 4) * u
            d.line((x0, y0, x1, y1), fill=black, width=int(1.3 * u))
    # antennae
    for side in (-1, 1):
        d.line(
            (cx + side * 2 * u, cy - 16 * u, cx + side * 7 * u, cy - 21 * u),
            fill=black,
            width=int(1.2 * u),
        )
    # head
    d.ellipse((cx - 7 * u, cy - 19 * u, cx + 7 * u, cy - 8 * u), fill=black)
    for side in (-1, 1):
        d.ellipse(
            (
                cx + side * 3.5 * u - 1.4 * u,
                cy - 16 * u - 1.4 * u,
                cx + side * 3.5 * u + 1.4 * u,
                cy - 16 * u + 1.4 * u,
            ),
            fill=(250, 250, 250, 255),
        )
    # body (shell)
    d.ellipse((cx - 14 * u, cy - 12 * u, cx + 14 * u, cy + 17 * u), fill=black)
    d.ellipse((cx - 13 * u, cy - 11 * u, cx + 13 * u, cy + 16 * u), fill=(220, 35, 35, 255))
    d.line((cx, cy - 11 * u, cx, cy + 16 * u), fill=black, width=int(1.4 * u))
    for dx, dy, r in (
        (-6, -4, 3.0),
        (6, -4, 3.0),
        (-8, 6, 2.6),
        (8, 6, 2.6),
        (-4, 12, 2.2),
        (4, 12, 2.2),
    ):
        x, y = cx + dx * u, cy + dy * u
        d.ellipse((x - r * u, y - r * u, x + r * u, y + r * u), fill=black)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def load_target(path: str | Path | None, target_size: int | None, size: int) -> torch.Tensor:
    """The target as premultiplied RGBA ``float32 (size, size, 4)``, centred.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an image, not convertible to RGBA, fully transparent, or larger
            than the canvas.
    """
    from PIL import Image, UnidentifiedImageError

    if path is None:
        path = DEFAULT_TARGET
    elif str(path) in BUILTIN_TARGETS:
        path = BUILTIN_TARGETS[str(path)]
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"target image {str(path)!r} does not exist")
    try:
        with Image.open(path) as im:
            img = im.convert("RGBA")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValueError(
            f"target {str(path)!r} is not an image Pillow can read as RGBA: {exc}"
        ) from None
    if target_size is not None:
        w, h = img.size
        scale = target_size / max(w, h)
        new = (max(1, round(w * scale)), max(1, round(h * scale)))
        if new != img.size:
            img = img.resize(new, Image.Resampling.LANCZOS)
    w, h = img.size
    if w > size or h > size:
        raise ValueError(
            f"target {str(path)!r} is {w}x{h}, larger than the {size}x{size} canvas; "
            "pass --target-size N (resize) or a larger --size"
        )
    rgba = np.asarray(img, dtype=np.float32) / 255.0
    if rgba[..., 3].max() <= 0.1:
        raise ValueError(
            f"target {str(path)!r} is fully transparent (alpha <= 0.1 everywhere); "
            "the CA grows only where alpha > 0.1"
        )
    rgba[..., :3] *= rgba[..., 3:4]  # premultiplied colour, as the CA's RGB channels are
    out = np.zeros((size, size, 4), dtype=np.float32)
    top, left = (size - h) // 2, (size - w) // 2
    out[top : top + h, left : left + w] = rgba
    return torch.from_numpy(out)
