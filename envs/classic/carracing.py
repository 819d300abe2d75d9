"""A batch of Gymnasium ``CarRacing-v3`` cars, headless, stepped by worker processes, seen
as (optionally re-backgrounded) screen patches: the world of ``sensory-carracing``.

=====================  ======================================================================
batch                  ``num_envs`` independent cars (Box2D, one random track each)
observation            ``float32[N, P, patch*patch*3]`` in ``[0, 1]``: the 96 x 96 RGB screen,
                       average-pooled by ``downsample`` (default 2: 48 x 48), cut into
                       ``P`` square patches, row-major (:func:`colonylab.agents.sensory.patchify`)
action                 ``float32[N, 2]`` in ``[-1, 1]``: steer (-1 left) and accel
                       (``gas = max(accel, 0)``, ``brake = max(-accel, 0)``)
reward                 CarRacing's: ``+1000 / tiles`` per new tile, ``-0.1`` per frame,
                       ``-100`` off the playfield; summed over ``action_repeat`` frames
episode end            terminated: lap done or off the playfield; truncated after
                       ``max_episode_steps`` frames (Gymnasium's standard: 1000)
teacher                :meth:`CarRacingWorld.teacher_actions`: steers to a look-ahead point
                       of the track polyline (yaw-rate damped), throttle by the curvature ahead
background             ``None`` (CarRacing's green grass) or a natural image from
                       ``skimage.data`` (``astronaut``, ``coffee``, ``chelsea``, ``rocket``)
                       pasted, fixed to the screen, over every grass pixel above the
                       dashboard (:func:`grass_mask`)
=====================  ======================================================================

Arguments: :class:`CarRacingConfig`. Rendering is pygame drawing in Python (about 5 ms a
frame on one core), so the cars live in ``workers`` processes (``0``: in this process),
each stepping its share of the batch; only the frames and rewards cross the pipes. With
``action_repeat=2`` every second frame is drawn (the physics runs every frame): the
agents act at 25 Hz. Finished cars freeze (``autoreset=False``: reward 0, their flags
stay set) or start a new track in the same step (``autoreset=True``, for watching;
``info["final_obs"]``).

Needs ``box2d`` (``pip install box2d==2.3.10``); background images need ``scikit-image``.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from colonylab.envs.base import StepResult

__all__ = [
    "BACKGROUNDS",
    "CarRacingConfig",
    "CarRacingWorld",
    "apply_background",
    "background_image",
    "procedural_background",
    "PROCEDURAL_STYLES",
    "TRAINING_STYLES",
    "grass_mask",
    "dashboard_black",
    "scripted_action",
    "screen_patches",
    "TRAINING_IMAGES",
    "FLAT_GRASS",
    "thin_lines",
    "training_background",
]

SCREEN = 96
DASHBOARD = 84
"""Rows ``[84, 96)`` are CarRacing's dashboard (speed, ABS, steering, gyro bars)."""
BACKGROUNDS = ("astronaut", "coffee", "chelsea", "rocket", "grace_hopper", "china", "flower")
"""Natural images shipped with installed packages (no download): ``skimage.data``'s
``astronaut``, ``coffee``, ``chelsea`` and ``rocket``; matplotlib's sample
``grace_hopper.jpg``; scikit-learn's sample ``china.jpg`` and ``flower.jpg`` (the last
three were added in session 29 as held-out test backgrounds, chosen before the filter that
they test was trained). None of them is ever a training background (:data:`TRAINING_IMAGES`)."""


def _natural_image(name: str) -> np.ndarray:
    """``uint8[H, W, 3]``: the full-size image of background ``name``."""
    if name == "grace_hopper":
        import matplotlib.cbook
        import matplotlib.image

        return matplotlib.image.imread(
            matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        )
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    import skimage.data

    return getattr(skimage.data, name)()


@dataclass(frozen=True)
class CarRacingConfig:
    """Arguments of :class:`CarRacingWorld`."""

    num_envs: int = 4
    """Cars in the batch."""
    max_episode_steps: int = 1000
    """Frames per episode at most (Gymnasium's CarRacing-v3: 1000)."""
    action_repeat: int = 2
    """Frames per action (rewards summed; only the last frame is drawn)."""
    downsample: int = 2
    """Average-pool the 96 x 96 screen by this factor (1, 2, 3, 4, 6, ...: divides 96)."""
    patch: int = 4
    """Side of a square patch in (downsampled) pixels; divides ``96 // downsample``."""
    background: str | None = None
    """``None``: the grass as CarRacing draws it; or one of :data:`BACKGROUNDS`."""
    procedural: float = 0.0
    """Probability that an episode's grass is replaced by a random procedural texture
    (:func:`procedural_background`, drawn from the track's seed; never a photograph) --
    domain randomisation for training (0: never; ``background`` must then be ``None``)."""
    procedural_style: str = "basic"
    """Textures of ``procedural``: one of :data:`PROCEDURAL_STYLES`, or ``photos`` /
    ``mixed``: :func:`training_background`'s training photos (never a test background),
    or those and ``rich`` textures half and half (:data:`TRAINING_STYLES`)."""
    workers: int = 2
    """Worker processes stepping the cars (0: all in this process)."""
    autoreset: bool = False
    """Start a new track in the step an episode ends (for watching)."""
    device: str = "cpu"
    """Where observations and rewards are returned."""

    def __post_init__(self) -> None:
        for name, low in (
            ("num_envs", 1),
            ("max_episode_steps", 1),
            ("action_repeat", 1),
            ("downsample", 1),
            ("patch", 1),
            ("workers", 0),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if SCREEN % self.downsample:
            raise ValueError(f"downsample {self.downsample} must divide the screen size {SCREEN}")
        side = SCREEN // self.downsample
        if side % self.patch:
            raise ValueError(
                f"patch {self.patch} must divide the downsampled screen side {side} "
                f"(96 // downsample {self.downsample})"
            )
        if not 0.0 <= float(self.procedural) <= 1.0:
            raise ValueError(f"procedural must be a probability in [0, 1], got {self.procedural!r}")
        if self.procedural_style not in TRAINING_STYLES:
            raise ValueError(
                f"procedural_style {self.procedural_style!r} is not one of {TRAINING_STYLES}"
            )
        if self.procedural and self.background is not None:
            raise ValueError("procedural backgrounds replace the grass: give background=None")
        if self.background is not None and self.background not in BACKGROUNDS:
            raise ValueError(
                f"background {self.background!r} is not one of {', '.join(BACKGROUNDS)} (or None)"
            )

    @property
    def side(self) -> int:
        """Side of the observed (downsampled) screen in pixels."""
        return SCREEN // self.downsample

    @property
    def num_patches(self) -> int:
        return (self.side // self.patch) ** 2

    @property
    def patch_dim(self) -> int:
        return self.patch * self.patch * 3


# -- the screen ---------------------------------------------------------------------------------
def grass_mask(screen: np.ndarray) -> np.ndarray:
    """``bool[..., 96, 96]``: the grass pixels of CarRacing screens ``uint8[..., 96, 96, 3]``.

    Grass (both of CarRacing's greens, and road edges blended mostly into them) is where
    green exceeds red and blue by more than 40; the dashboard rows are never grass (its
    steering bar is green too).
    """
    rgb = screen.astype(np.int16)
    mask = rgb[..., 1] - np.maximum(rgb[..., 0], rgb[..., 2]) > 40
    mask[..., DASHBOARD:, :] = False
    return mask


def dashboard_black(screen: Any) -> Any:
    """``bool[..., 96, 96]``: the pure black pixels of the dashboard rows of CarRacing
    screens ``uint8[..., 96, 96, 3]`` (a NumPy array or a tensor; the bars are not black)."""
    mask = (screen == 0).all(-1)
    mask[..., :DASHBOARD, :] = False
    return mask


_IMAGES: dict[str, np.ndarray] = {}


def background_image(name: str) -> np.ndarray:
    """``uint8[96, 96, 3]``: the natural image ``name`` (:data:`BACKGROUNDS`) cropped to
    the screen's aspect (centre) and resized (cached)."""
    if name not in BACKGROUNDS:
        raise ValueError(f"background {name!r} is not one of {', '.join(BACKGROUNDS)}")
    if name not in _IMAGES:
        try:
            from skimage.transform import resize

            image = np.asarray(_natural_image(name))[..., :3]
        except ImportError as exc:
            raise ValueError(
                f"background {name!r} needs scikit-image, matplotlib and scikit-learn: {exc}"
            ) from None
        height, width = image.shape[:2]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        square = image[top : top + side, left : left + side]
        resized = resize(square, (SCREEN, SCREEN), anti_aliasing=True, preserve_range=True)
        _IMAGES[name] = np.clip(np.rint(resized), 0, 255).astype(np.uint8)
    return _IMAGES[name]


TRAINING_IMAGES = (
    "colorwheel",
    "hubble_deep_field",
    "immunohistochemistry",
    "logo",
    "retina",
    "stereo_motorcycle",
    "brick",
    "camera",
    "clock",
    "coins",
    "grass",
    "gravel",
    "moon",
    "page",
    "text",
    "cell",
)
"""``skimage.data`` images that :func:`training_background` may show in training: every
image scikit-image ships offline except the test backgrounds (:data:`BACKGROUNDS`) and
``cat`` (``chelsea`` again); the grey ones are tinted with random colours."""

_TRAINING: dict[str, np.ndarray] = {}


def _training_image(name: str) -> np.ndarray:
    """``uint8[H, W, 3]`` or ``uint8[H, W]`` (grey) of ``skimage.data.<name>()`` (cached)."""
    if name not in TRAINING_IMAGES:
        raise ValueError(f"training image {name!r} is not one of {', '.join(TRAINING_IMAGES)}")
    if name not in _TRAINING:
        import skimage.data

        image = getattr(skimage.data, name)()
        image = image[0] if isinstance(image, tuple) else image  # stereo: the left view
        image = np.asarray(image)
        if image.dtype != np.uint8:
            image = np.clip(np.rint(image.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
        _TRAINING[name] = image[..., :3] if image.ndim == 3 else image
    return _TRAINING[name]


def training_background(rng: np.random.Generator, images: str = "mixed") -> np.ndarray:
    """``uint8[96, 96, 3]``: a background for training off the grass (NOT in the paper).

    ``images``: ``photos`` -- a random square crop (a fifth of the image's short side to
    all of it) of one of :data:`TRAINING_IMAGES`, flipped at random, grey images mapped
    through a random 2-colour ramp, colour images with their channels permuted, then a
    random contrast and brightness; ``procedural`` -- :func:`procedural_background`'s
    ``rich`` textures; ``mixed`` -- either, half and half. Never a test background.
    """
    if images not in ("photos", "procedural", "mixed"):
        raise ValueError(f"images must be photos, procedural or mixed, got {images!r}")
    if images == "procedural" or (images == "mixed" and rng.random() < 0.5):
        return procedural_background(rng, "rich")
    image = _training_image(TRAINING_IMAGES[int(rng.integers(len(TRAINING_IMAGES)))])
    height, width = image.shape[:2]
    side = int(rng.integers(max(8, min(height, width) // 5), min(height, width) + 1))
    top = int(rng.integers(0, height - side + 1))
    left = int(rng.integers(0, width - side + 1))
    crop = image[top : top + side, left : left + side].astype(np.float64)
    index = np.minimum((np.arange(SCREEN) * side / SCREEN).astype(int), side - 1)
    crop = crop[index][:, index]  # nearest-neighbour resize to 96 x 96
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    if rng.random() < 0.5:
        crop = crop[::-1]
    if crop.ndim == 2:
        ends = rng.uniform(0, 255, size=(2, 3))
        crop = ends[0] + (crop / 255.0)[..., None] * (ends[1] - ends[0])
    else:
        crop = crop[..., rng.permutation(3)]
    mean = crop.mean()
    crop = (crop - mean) * rng.uniform(0.6, 1.4) + mean + rng.uniform(-40, 40)
    return np.clip(np.rint(crop), 0, 255).astype(np.uint8)


PROCEDURAL_SALT = 0x0BAC6
"""Mixed into a track's seed to draw its procedural background (the track is unchanged)."""


def _smooth_noise(rng: np.random.Generator, cells: int) -> np.ndarray:
    """``float[96, 96]`` in [0, 1]: a ``cells x cells`` random grid, bilinearly upsampled."""
    grid = rng.random((cells + 1, cells + 1))
    pos = np.linspace(0.0, cells, SCREEN, endpoint=False)
    i = np.minimum(pos.astype(int), cells - 1)
    f = pos - i
    rows = grid[i] * (1 - f)[:, None] + grid[i + 1] * f[:, None]
    return rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]


def _collage(rng: np.random.Generator) -> np.ndarray:
    """``float[96, 96, 3]``: a blob texture under 3-30 random rectangles and discs of
    random sizes, colours often greyish (like the road), with sharp edges."""
    image = procedural_background(rng).astype(np.float64)
    y, x = np.mgrid[0:SCREEN, 0:SCREEN].astype(np.float64)
    for _ in range(int(rng.integers(3, 31))):
        grey = rng.random() < 0.4
        colour = np.full(3, rng.uniform(0, 255)) if grey else rng.uniform(0, 255, size=3)
        cy, cx = rng.uniform(0, SCREEN, size=2)
        size = float(rng.uniform(3.0, 40.0))
        if rng.random() < 0.5:
            shape = (np.abs(y - cy) < size / 2) & (np.abs(x - cx) < size * rng.uniform(0.2, 2.0))
        else:
            shape = (y - cy) ** 2 + (x - cx) ** 2 < (size / 2) ** 2
        image[shape] = colour
    return image


def thin_lines(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` (``uint8[96, 96, 3]``) with 3-40 thin straight lines drawn over it
    (1-3 pixels wide, random angles and lengths; 60% of them greyish, dark to light), half
    the time as a lattice (two families of parallel lines crossing, like a truss): the
    thin structures -- masts, wires, branches -- that a patch filter must not take for
    road edges. NumPy only; never a photograph."""
    out = image.astype(np.float64)
    y, x = np.mgrid[0:SCREEN, 0:SCREEN].astype(np.float64)

    def line(cy: float, cx: float, angle: float, length: float, width: float) -> np.ndarray:
        along = (x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)
        across = -(x - cx) * np.sin(angle) + (y - cy) * np.cos(angle)
        return (np.abs(across) < width / 2) & (np.abs(along) < length / 2)

    def colour() -> np.ndarray:
        if rng.random() < 0.6:
            return np.full(3, rng.uniform(0, 255)) + rng.normal(0, 12, size=3)
        return rng.uniform(0, 255, size=3)

    if rng.random() < 0.5:  # a lattice in a random box
        cy, cx = rng.uniform(0, SCREEN, size=2)
        size = float(rng.uniform(15.0, 80.0))
        base = float(rng.uniform(0.0, np.pi))
        spacing = float(rng.uniform(3.0, 12.0))
        width = float(rng.uniform(0.8, 2.5))
        paint = colour()
        for angle in (base, base + rng.uniform(0.4, 1.2)):
            for offset in np.arange(-size / 2, size / 2, spacing):
                shift = offset * np.array([-np.sin(angle), np.cos(angle)])
                out[line(cy + shift[1], cx + shift[0], angle, size, width)] = paint
    for _ in range(int(rng.integers(3, 41))):
        cy, cx = rng.uniform(0, SCREEN, size=2)
        mask = line(
            cy,
            cx,
            float(rng.uniform(0.0, np.pi)),
            float(rng.uniform(5.0, 130.0)),
            float(rng.uniform(0.8, 3.0)),
        )
        out[mask] = colour()
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


PROCEDURAL_STYLES = ("basic", "rich")
"""``basic``: solid, blobs, stripes, checkerboard; ``rich`` adds greyish colours,
multi-scale noise and collages of shapes (:func:`procedural_background`)."""

TRAINING_STYLES = (*PROCEDURAL_STYLES, "photos", "mixed")
"""What :class:`CarRacingConfig`'s ``procedural`` episodes show: a
:data:`PROCEDURAL_STYLES` texture, or :func:`training_background`'s ``photos`` or
``mixed``."""


def procedural_background(rng: np.random.Generator, style: str = "basic") -> np.ndarray:
    """``uint8[96, 96, 3]``: a random texture made by NumPy (no photograph): a solid
    colour, smoothed colour noise at a random scale (blobs), stripes at a random angle
    and period, or a checkerboard; random colours, plus a little pixel noise. ``rich``
    also draws half of its textures as multi-scale (fractal) noise in a random 2-colour
    ramp, or collages of rectangles and discs (often grey) over a ``basic`` texture."""
    if style not in PROCEDURAL_STYLES:
        raise ValueError(f"procedural style {style!r} is not one of {PROCEDURAL_STYLES}")
    if style == "rich" and rng.random() < 0.5:
        if rng.random() < 0.5:
            image = _collage(rng)
        else:
            level = sum(
                _smooth_noise(rng, cells) * 0.6**octave
                for octave, cells in enumerate((2, 4, 8, 16, 32))
            )
            level = (level - level.min()) / max(float(np.ptp(level)), 1e-9)
            ends = rng.uniform(0, 255, size=(2, 3))
            if rng.random() < 0.4:
                ends = np.repeat(ends[:, :1], 3, axis=1) + rng.normal(0, 15, size=(2, 3))
            image = ends[0] + level[..., None] * (ends[1] - ends[0])
        image += rng.normal(0.0, float(rng.uniform(0.0, 12.0)), size=image.shape)
        return np.clip(np.rint(image), 0, 255).astype(np.uint8)
    kind = rng.integers(4)
    colours = rng.integers(0, 256, size=(4, 3)).astype(np.float64)
    if kind == 0:  # solid
        image = np.broadcast_to(colours[0], (SCREEN, SCREEN, 3)).copy()
    elif kind == 1:  # blobs: low-frequency noise mixing 2-4 colours
        count = int(rng.integers(2, 5))
        weights = np.stack(
            [_smooth_noise(rng, int(rng.integers(2, 17))) for _ in range(count)], axis=-1
        )
        weights = np.exp(weights * float(rng.uniform(2.0, 12.0)))
        weights /= weights.sum(axis=-1, keepdims=True)
        image = weights @ colours[:count]
    else:
        y, x = np.mgrid[0:SCREEN, 0:SCREEN].astype(np.float64)
        period = float(rng.uniform(4.0, 48.0))
        if kind == 2:  # stripes
            angle = float(rng.uniform(0.0, np.pi))
            phase = (x * np.cos(angle) + y * np.sin(angle)) / period
        else:  # checkerboard
            phase = np.floor(x / period) + np.floor(y / period)
        pick = (np.floor(phase) % 2).astype(int)
        image = colours[:2][pick]
    image += rng.normal(0.0, float(rng.uniform(0.0, 20.0)), size=image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


FLAT_GRASS = (99, 206, 99)
"""The mean colour of CarRacing's grass on the screen (both greens), in RGB."""


def apply_background(screen: np.ndarray, image: np.ndarray | None) -> np.ndarray:
    """``screen`` (``uint8[..., 96, 96, 3]``) with its grass replaced by ``image``."""
    if image is None:
        return screen
    return np.where(grass_mask(screen)[..., None], image, screen)


def screen_patches(screens: Tensor, downsample: int, patch: int) -> Tensor:
    """``uint8[N, 96, 96, 3]`` screens (a tensor) -> ``float32[N, P, patch*patch*3]``: in
    ``[0, 1]``, average-pooled by ``downsample``, cut into row-major square patches (what
    :meth:`CarRacingWorld.observe` gives)."""
    x = screens.float().div_(255.0)
    n, side = x.shape[0], SCREEN // downsample
    if downsample > 1:
        x = x.reshape(n, side, downsample, side, downsample, 3).mean(dim=(2, 4))
    x = x.reshape(n, side // patch, patch, side // patch, patch, 3).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(n, (side // patch) ** 2, patch * patch * 3)


# -- the teacher --------------------------------------------------------------------------------
def scripted_action(env: Any) -> tuple[float, float]:
    """``(steer, accel)`` of the scripted driver for one ``CarRacing`` env (its true state).

    Steer toward the track point ``5 + speed / 8`` points ahead of the nearest one
    (``-1.0 x`` heading error to it, ``+0.2 x`` yaw rate as damping); target speed 100
    on straights down to 45 where the track turns by 1.2 rad or more within the next
    24 points; accel ``(target - speed) / 10``, clipped.
    """
    track = env._teacher_track
    hull = env.car.hull
    px, py = hull.position
    vx, vy = hull.linearVelocity
    speed = math.hypot(vx, vy)
    xy = track[:, 2:4]
    nearest = int(np.argmin((xy[:, 0] - px) ** 2 + (xy[:, 1] - py) ** 2))
    count = len(track)
    tx, ty = xy[(nearest + 5 + int(speed / 8.0)) % count]
    fx, fy = -math.sin(hull.angle), math.cos(hull.angle)
    dx, dy = tx - px, ty - py
    error = math.atan2(fx * dy - fy * dx, fx * dx + fy * dy)  # > 0: target on the left
    steer = float(np.clip(-1.0 * error + 0.2 * hull.angularVelocity, -1.0, 1.0))
    ahead = track[(nearest + np.arange(1, 25)) % count, 1] - track[nearest, 1]
    turn = float(np.abs((ahead + math.pi) % (2 * math.pi) - math.pi).max())
    target = 100.0 - 55.0 * min(turn / 1.2, 1.0)
    return steer, float(np.clip((target - speed) / 10.0, -1.0, 1.0))


# -- a share of the cars, in one process ---------------------------------------------------------
def _car_racing_class() -> type:
    try:
        from gymnasium.envs.box2d.car_racing import CarRacing
    except ImportError as exc:  # gymnasium raises DependencyNotInstalled (an ImportError)
        raise ValueError(
            f"CarRacing needs box2d: pip install box2d==2.3.10 ({exc})".splitlines()[0]
        ) from None

    from gymnasium.envs.box2d import car_racing as module
    from pygame import gfxdraw

    class _Car(CarRacing):
        """CarRacing that draws its screen only when asked (physics every frame), and
        draws the road as Gymnasium does -- the same polygons, colours, order and
        off-screen culling -- with the ~800 polygons moved to the screen in one NumPy
        step instead of one Python loop each (about 3x faster a frame)."""

        draw = True
        _polygons: tuple[Any, np.ndarray, list[Any], list[Any]] | None = None

        def _render(self, mode: str, *args: Any, **kwargs: Any) -> Any:
            if mode == "state_pixels" and not self.draw:
                return None
            return super()._render(mode, *args, **kwargs)

        def _road_polygons(self) -> tuple[np.ndarray, list[Any]]:
            """``(points float64[K, 4, 2], colours)``: grass squares then road tiles."""
            if self._polygons is None or self._polygons[0] is not self.road_poly:
                dim = module.GRASS_DIM
                grass = [
                    [(dim * x + dim, dim * y), (dim * x, dim * y), (dim * x, dim * y + dim),
                     (dim * x + dim, dim * y + dim)]
                    for x in range(-20, 20, 2)
                    for y in range(-20, 20, 2)
                ]  # fmt: skip
                road = [[(p[0], p[1]) for p in poly] for poly, _ in self.road_poly]
                colours = [self.grass_color] * len(grass) + [
                    [int(c) for c in colour] for _, colour in self.road_poly
                ]
                points = np.asarray(grass + road, dtype=np.float64)
                self._polygons = (self.road_poly, points, colours, [])
            return self._polygons[1], self._polygons[2]

        def _render_road(self, zoom: float, translation: Any, angle: float) -> None:
            bounds = module.PLAYFIELD
            field = [(bounds, bounds), (bounds, -bounds), (-bounds, -bounds), (-bounds, bounds)]
            self._draw_colored_polygon(
                self.surf, field, self.bg_color, zoom, translation, angle, clip=False
            )
            points, colours = self._road_polygons()
            cos, sin = math.cos(angle), math.sin(angle)
            x = (points[..., 0] * cos - points[..., 1] * sin) * zoom + translation[0]
            y = (points[..., 0] * sin + points[..., 1] * cos) * zoom + translation[1]
            margin = module.MAX_SHAPE_DIM
            inside = (
                (x >= -margin)
                & (x <= module.WINDOW_W + margin)
                & (y >= -margin)
                & (y <= module.WINDOW_H + margin)
            ).any(axis=1)
            for k in np.flatnonzero(inside):
                poly = list(zip(x[k].tolist(), y[k].tolist(), strict=True))
                gfxdraw.aapolygon(self.surf, poly, colours[k])
                gfxdraw.filled_polygon(self.surf, poly, colours[k])

    return _Car


class _Shard:
    """``count`` cars stepped in a loop (inside a worker process, or in this one)."""

    def __init__(
        self,
        count: int,
        action_repeat: int,
        background: np.ndarray | None,
        procedural: float = 0.0,
        style: str = "basic",
    ) -> None:
        car_class = _car_racing_class()
        self.envs = [car_class(verbose=False) for _ in range(count)]
        self.action_repeat = action_repeat
        self.background = background
        self.procedural = float(procedural)
        self.style = style
        self.backgrounds: list[np.ndarray | None] = [background] * count
        self.screens = np.zeros((count, SCREEN, SCREEN, 3), dtype=np.uint8)

    def _teacher(self) -> np.ndarray:
        return np.array([scripted_action(env) for env in self.envs], dtype=np.float32)

    def _reset_one(self, k: int, seed: int) -> None:
        env = self.envs[k]
        env.draw = True
        screen, _ = env.reset(seed=int(seed))
        env._teacher_track = np.asarray(env.track, dtype=np.float64)
        if self.procedural:
            rng = np.random.default_rng([int(seed), PROCEDURAL_SALT])
            use = rng.random() < self.procedural
            if not use:
                self.backgrounds[k] = None
            elif self.style in PROCEDURAL_STYLES:
                self.backgrounds[k] = procedural_background(rng, self.style)
            else:
                self.backgrounds[k] = training_background(rng, self.style)
        self.screens[k] = apply_background(screen, self.backgrounds[k])

    def reset(self, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        for k, seed in enumerate(seeds):
            self._reset_one(k, seed)
        return self.screens.copy(), self._teacher()

    def step(
        self, actions: np.ndarray, active: np.ndarray, restart: np.ndarray, truncating: np.ndarray
    ) -> tuple:
        """Step the active cars. A car whose episode ends here (terminated, or
        ``truncating``) with ``restart[k] >= 0`` starts the track of that seed (autoreset).
        Returns screens, rewards, terminated, the screens before any restart, teacher actions."""
        count = len(self.envs)
        reward = np.zeros(count, dtype=np.float64)
        terminated = np.zeros(count, dtype=bool)
        for k, env in enumerate(self.envs):
            if not active[k]:
                continue
            steer, accel = (float(v) for v in np.clip(actions[k], -1.0, 1.0))
            command = np.array([steer, max(accel, 0.0), max(-accel, 0.0)])
            for frame in range(self.action_repeat):
                env.draw = frame == self.action_repeat - 1
                screen, r, term, _, _ = env.step(command)
                reward[k] += r
                if term:
                    terminated[k] = True
                    break
            if screen is None:
                env.draw = True
                screen = env._render("state_pixels")
            self.screens[k] = apply_background(screen, self.backgrounds[k])
        final = self.screens.copy()
        for k in np.flatnonzero((restart >= 0) & active & (terminated | truncating)):
            self._reset_one(k, int(restart[k]))
        return self.screens.copy(), reward, terminated, final, self._teacher()

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _serve(
    conn: Any,
    count: int,
    action_repeat: int,
    background: np.ndarray | None,
    procedural: float,
    style: str,
) -> None:
    """A worker process: a :class:`_Shard` answering ``(method, args)`` on ``conn``."""
    try:
        shard = _Shard(count, action_repeat, background, procedural, style)
        conn.send(("ok", None))
    except Exception as exc:  # reported to the parent as one line
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    while True:
        try:
            method, args = conn.recv()
        except (EOFError, KeyboardInterrupt):
            break
        if method == "close":
            shard.close()
            break
        try:
            conn.send(("ok", getattr(shard, method)(*args)))
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


def _close_workers(conns: list[Any], procs: list[Any]) -> None:
    for conn in conns:
        with contextlib.suppress(OSError, BrokenPipeError):
            conn.send(("close", ()))
    for proc in procs:
        proc.join(timeout=2.0)
        if proc.is_alive():
            proc.terminate()


class CarRacingWorld:
    """``num_envs`` CarRacing cars as one vectorized world (see the module card).

    ``reset(seed)`` takes an int (car ``k`` gets ``seed + k``) or ``int64[N]`` (one track
    seed per car); ``step(actions)`` returns a :class:`~colonylab.envs.base.StepResult`
    of torch tensors.
    """

    metadata = {"render_modes": ["rgb_array"], "name": "carracing_v0", "render_fps": 25}

    def __init__(self, config: CarRacingConfig | None = None, **overrides: Any) -> None:
        if config is None:
            config = CarRacingConfig(**overrides)
        elif overrides:
            raise ValueError("give a CarRacingConfig or keyword arguments, not both")
        self.config = config
        self.num_envs = config.num_envs
        self.device = torch.device(config.device)
        image = background_image(config.background) if config.background else None
        workers = min(config.workers, config.num_envs)
        self._bounds = np.linspace(0, config.num_envs, max(workers, 1) + 1).astype(int)
        self._local: _Shard | None = None
        self._conns: list[Any] = []
        procs: list[Any] = []
        if workers == 0:
            self._local = _Shard(
                config.num_envs,
                config.action_repeat,
                image,
                config.procedural,
                config.procedural_style,
            )
        else:
            context = mp.get_context("fork")
            for w in range(workers):
                parent, child = context.Pipe()
                count = int(self._bounds[w + 1] - self._bounds[w])
                proc = context.Process(
                    target=_serve,
                    args=(
                        child,
                        count,
                        config.action_repeat,
                        image,
                        config.procedural,
                        config.procedural_style,
                    ),
                    daemon=True,
                )
                proc.start()
                child.close()
                self._conns.append(parent)
                procs.append(proc)
            self._finalizer = weakref.finalize(self, _close_workers, self._conns, procs)
            for conn in self._conns:
                status, message = conn.recv()
                if status != "ok":
                    self.close()
                    raise ValueError(f"a CarRacing worker failed to start: {message}")
        n = config.num_envs
        self.screens = np.zeros((n, SCREEN, SCREEN, 3), dtype=np.uint8)
        self._teacher = np.zeros((n, 2), dtype=np.float32)
        self.frames = np.zeros(n, dtype=np.int64)
        self.done = np.zeros(n, dtype=bool)
        self.terminated = np.zeros(n, dtype=bool)
        self.truncated = np.zeros(n, dtype=bool)
        self._seed_rng = np.random.default_rng()

    @classmethod
    def factory(cls, **kwargs: Any):
        """``factory(num_envs, device=None) -> CarRacingWorld`` with these config fields."""

        def make(num_envs: int, device: Any = None) -> CarRacingWorld:
            return cls(CarRacingConfig(num_envs=num_envs, device=str(device or "cpu"), **kwargs))

        return make

    # -- plumbing -------------------------------------------------------------------------------
    def _call(self, method: str, *per_shard: Any) -> list[Any]:
        """``method`` on every shard, ``per_shard[i]`` sliced to each shard's cars."""
        if self._local is not None:
            return [getattr(self._local, method)(*per_shard)]
        for w, conn in enumerate(self._conns):
            lo, hi = self._bounds[w], self._bounds[w + 1]
            conn.send((method, tuple(a[lo:hi] for a in per_shard)))
        out = []
        for conn in self._conns:
            status, value = conn.recv()
            if status != "ok":
                raise RuntimeError(f"CarRacing worker: {value}")
            out.append(value)
        return out

    def observe(self, screens: np.ndarray) -> Tensor:
        """``uint8[N, 96, 96, 3]`` screens -> ``float32[N, P, patch*patch*3]`` patches."""
        cfg = self.config
        x = torch.from_numpy(np.ascontiguousarray(screens))
        return screen_patches(x, cfg.downsample, cfg.patch).to(self.device)

    # -- the world API -----------------------------------------------------------------------------
    def reset(self, seed: Any = None, options: dict[str, Any] | None = None) -> Tensor:
        """New tracks for every car; returns the first observation ``[N, P, D]``."""
        n = self.num_envs
        if seed is None:
            seeds = self._seed_rng.integers(0, 2**31 - 1, size=n)
        elif np.ndim(seed) == 0:
            seeds = int(seed) + np.arange(n)
            self._seed_rng = np.random.default_rng(int(seed))
        else:
            seeds = np.asarray(seed, dtype=np.int64).reshape(-1)
            if len(seeds) != n:
                raise ValueError(f"reset got {len(seeds)} seeds for {n} cars")
            self._seed_rng = np.random.default_rng(seeds.tolist())
        seeds = np.asarray(seeds, dtype=np.int64) % (2**31 - 1)
        results = self._call("reset", seeds)
        self.screens = np.concatenate([r[0] for r in results])
        self._teacher = np.concatenate([r[1] for r in results])
        self.frames[:] = 0
        self.done[:] = self.terminated[:] = self.truncated[:] = False
        return self.observe(self.screens)

    def step(self, actions: Any) -> StepResult:
        """Advance every running car by ``action_repeat`` frames with ``actions`` ``[N, 2]``."""
        act = torch.as_tensor(actions).detach().to("cpu", torch.float32).numpy()
        if act.shape != (self.num_envs, 2):
            raise ValueError(
                f"actions must be [N, 2] = [{self.num_envs}, 2] (steer, accel), got {act.shape}"
            )
        cfg = self.config
        active = ~self.done
        frames_after = self.frames + cfg.action_repeat
        truncating = active & (frames_after >= cfg.max_episode_steps)
        restart = np.full(self.num_envs, -1, dtype=np.int64)
        if cfg.autoreset:
            restart = self._seed_rng.integers(0, 2**31 - 1, size=self.num_envs)
        results = self._call("step", act, active, restart, truncating)
        self.screens = np.concatenate([r[0] for r in results])
        reward = np.concatenate([r[1] for r in results])
        term = np.concatenate([r[2] for r in results]) & active
        final = np.concatenate([r[3] for r in results])
        self._teacher = np.concatenate([r[4] for r in results])
        trunc = truncating & ~term
        info: dict[str, Any] = {}
        if cfg.autoreset:
            self.frames = np.where(term | trunc, 0, frames_after)
            info["final_obs"] = self.observe(final)
        else:
            self.frames = np.where(active, frames_after, self.frames)
            self.terminated |= term
            self.truncated |= trunc
            self.done |= term | trunc
        return StepResult(
            self.observe(self.screens),
            torch.as_tensor(reward, dtype=torch.float32, device=self.device),
            torch.as_tensor(term | (self.terminated & ~active), device=self.device),
            torch.as_tensor(trunc | (self.truncated & ~active), device=self.device),
            info,
        )

    def teacher_actions(self) -> Tensor:
        """``float32[N, 2]``: the scripted driver's (steer, accel) for the current state."""
        return torch.as_tensor(self._teacher, device=self.device).clone()

    def render_rgb(self, scale: int = 4) -> np.ndarray:
        """The cars' screens side by side, ``uint8[96 * scale, 96 * N * scale, 3]``."""
        shown = self.screens[: min(self.num_envs, 4)]
        row = np.concatenate(list(shown), axis=1)
        return np.repeat(np.repeat(row, scale, axis=0), scale, axis=1)

    def close(self) -> None:
        """Stop the worker processes (also done when the world is garbage-collected)."""
        if self._local is not None:
            self._local.close()
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer()
