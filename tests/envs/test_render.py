"""Tests for colonylab.envs.render: viewer (headless), recorder, colormaps."""

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from pathlib import Path  # noqa: E402

import imageio.v3 as iio  # noqa: E402
import numpy as np  # noqa: E402
import pygame  # noqa: E402
import pytest  # noqa: E402

from colonylab.envs.render import (  # noqa: E402
    NoDisplayError,
    VideoRecorder,
    Viewer,
    apply_colormap,
    binary_rgb,
    display_available,
    record_rollout,
    save_png,
    upscale_nearest,
)

BACKGROUND = (20, 40, 90)
SQUARE = (250, 150, 30)
BORDER = (90, 200, 120)


class SquareWorld:
    """A 64 x 48 board with an 8 x 8 square moving one cell right per step."""

    metadata = {"name": "square_v0", "render_fps": 30}

    def __init__(self, width: int = 64, height: int = 48) -> None:
        self.width, self.height = width, height
        self.clicks: list[tuple[int, int, int]] = []
        self.keys: list[str] = []
        self.reset()

    def reset(self, seed=None):
        self.step_count = 0
        self.x = 0
        return None

    def step(self, actions=None):
        self.step_count += 1
        self.x = (self.x + 1) % (self.width - 8)

    def render_rgb(self) -> np.ndarray:
        img = np.empty((self.height, self.width, 3), np.uint8)
        img[:] = BACKGROUND
        img[0, :] = BORDER
        img[-1, :] = BORDER
        img[:, 0] = BORDER
        img[:, -1] = BORDER
        img[20:28, self.x : self.x + 8] = SQUARE
        return img

    def metrics(self) -> dict[str, float]:
        return {"square_x": self.x, "coverage": 64 / (self.width * self.height)}

    def handle_click(self, x: int, y: int, button: int) -> None:
        self.clicks.append((x, y, button))

    def handle_key(self, name: str) -> bool:
        self.keys.append(name)
        return name == "c"


def key(k: int, unicode: str = "", mod: int = 0) -> pygame.event.Event:
    return pygame.event.Event(pygame.KEYDOWN, key=k, unicode=unicode, mod=mod)


@pytest.fixture
def viewer(tmp_path):
    v = Viewer(SquareWorld(), window_size=(960, 720), headless=True, media_dir=tmp_path)
    yield v
    v.close()


def has_color(frame: np.ndarray, color) -> bool:
    return bool(np.all(frame == np.array(color, np.uint8), axis=-1).any())


# -- viewer ----------------------------------------------------------------------------


def test_display_available_false_under_dummy():
    assert display_available() is False
    with pytest.raises(NoDisplayError, match="headless=True"):
        Viewer(SquareWorld(), headless=False)


def test_headless_frame_shows_world(viewer):
    viewer.draw()
    frame = viewer.frame()
    assert frame.shape == (720, 960, 3) and frame.dtype == np.uint8
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) >= 5
    for color in (SQUARE, BORDER):
        assert has_color(frame, color)
    # 64 x 48 in 960 x 720 fits at exactly 15 px per cell; the square is 120 px wide.
    assert viewer.zoom == pytest.approx(15.0)
    assert np.all(frame[20 * 15 + 7, 0 : 8 * 15] == SQUARE)


def test_overlay_text_present(viewer):
    viewer.draw()
    with_overlay = viewer.frame()
    viewer.handle_event(key(pygame.K_o, "o"))
    assert not viewer.show_overlay
    viewer.draw()
    without = viewer.frame()
    panel = (slice(0, 150), slice(0, 200))
    assert not np.array_equal(with_overlay[panel], without[panel])
    # light text pixels only appear with the overlay
    light = (with_overlay[panel] > 200).all(axis=-1).sum()
    assert light > 50
    assert (without[panel] > 200).all(axis=-1).sum() == 0


def test_pause_and_single_step(viewer):
    world = viewer.world
    assert viewer.run(max_steps=3) == 3 and world.step_count == 3
    pygame.event.post(key(pygame.K_SPACE, " "))
    viewer.process_events()
    assert viewer.paused
    for _ in range(3):  # a paused viewer's loop would not step; emulate its frames
        if not viewer.paused:
            viewer.step_world(viewer.steps_per_frame)
        viewer.draw()
    assert world.step_count == 3
    viewer.handle_event(key(pygame.K_PERIOD, "."))
    assert world.step_count == 4
    viewer.handle_event(key(pygame.K_RIGHT))
    assert world.step_count == 5
    viewer.handle_event(key(pygame.K_SPACE, " "))
    assert not viewer.paused


def test_speed_keys(viewer):
    viewer.fps = 60
    viewer.handle_event(key(pygame.K_EQUALS, "="))
    viewer.handle_event(key(pygame.K_EQUALS, "+", pygame.KMOD_SHIFT))
    assert viewer.steps_per_frame == 4
    viewer.handle_event(key(pygame.K_MINUS, "-"))
    assert viewer.steps_per_frame == 2
    assert viewer.run(max_steps=5) == 5  # 2 + 2 + 1


def test_zoom_and_fit(viewer):
    viewer.draw()
    before = viewer.frame()
    fit = viewer.zoom
    center = (480, 360)
    wx, wy = viewer.screen_to_world(*center)
    for _ in range(3):
        viewer.handle_event(pygame.event.Event(pygame.MOUSEWHEEL, x=0, y=1, pos=center))
    assert viewer.zoom == pytest.approx(min(fit * 1.25**3, 32.0))
    # the world point under the cursor stays under the cursor
    assert viewer.screen_to_world(*center) == pytest.approx((wx, wy))
    viewer.draw()
    zoomed = viewer.frame()
    assert not np.array_equal(before, zoomed)
    x0, y0, x1, y1 = viewer.visible_rect()
    assert x1 - x0 < 64 and y1 - y0 < 48
    viewer.handle_event(pygame.event.Event(pygame.MOUSEWHEEL, x=0, y=50, pos=center))
    assert viewer.zoom == pytest.approx(32.0)
    # pan by keys and by drag stays inside the world
    cam = viewer.camera
    viewer.handle_event(key(pygame.K_d, "d"))
    assert viewer.camera[0] > cam[0]
    viewer.handle_event(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=(500, 400)))
    viewer.handle_event(pygame.event.Event(pygame.MOUSEMOTION, pos=(900, 700), rel=(400, 300)))
    viewer.handle_event(pygame.event.Event(pygame.MOUSEBUTTONUP, button=1, pos=(900, 700)))
    assert viewer.world.clicks == []  # a drag is not a click
    assert viewer.camera[0] >= 0 and viewer.camera[1] >= 0
    viewer.handle_event(key(pygame.K_0, "0"))
    assert viewer.zoom == pytest.approx(fit)
    viewer.draw()
    assert np.array_equal(viewer.frame()[200:], before[200:])  # below the overlay panel


def test_minimap_only_when_zoomed(viewer):
    viewer.show_overlay = True
    viewer.draw()
    corner = (slice(520, 720), slice(760, 960))
    fit_corner = viewer.frame()[corner].copy()
    viewer.zoom_at(2.0, (100, 100))  # top-left part visible; bottom-right corner is world
    viewer.draw()
    zoomed = viewer.frame()[corner]
    assert has_color(zoomed, (255, 70, 70))  # the visible-rectangle outline
    assert not has_color(fit_corner, (255, 70, 70))


def test_screenshot_writes_png(viewer, tmp_path, capsys):
    viewer.handle_event(key(pygame.K_s, "s"))
    pngs = list(Path(tmp_path).glob("*.png"))
    assert len(pngs) == 1
    assert str(pngs[0]) in capsys.readouterr().out
    assert iio.imread(pngs[0]).shape == (720, 960, 3)


def test_click_forwarded_in_world_coords(viewer):
    world = viewer.world
    # fit zoom 15 px/cell, world flush with the window corner
    viewer.handle_event(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=(100, 200)))
    viewer.handle_event(pygame.event.Event(pygame.MOUSEBUTTONUP, button=1, pos=(100, 200)))
    viewer.handle_event(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=3, pos=(959, 719)))
    assert world.clicks == [(100 // 15, 200 // 15, 1), (63, 47, 3)]


def test_click_forwarded_letterboxed(tmp_path):
    world = SquareWorld()
    with Viewer(world, window_size=(800, 400), headless=True, media_dir=tmp_path) as v:
        # zoom = min(800/64, 400/48) = 8.33; the world is centred horizontally
        z = 400 / 48
        left = (800 - 64 * z) / 2
        v.handle_event(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=(300, 50)))
        v.handle_event(pygame.event.Event(pygame.MOUSEBUTTONUP, button=1, pos=(300, 50)))
        v.handle_event(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=3, pos=(5, 50)))
    assert world.clicks == [(int((300 - left) / z), int(50 / z), 1)]  # (5, 50) is off-world


def test_other_keys_forwarded(viewer):
    viewer.handle_event(key(pygame.K_c, "c"))
    viewer.handle_event(key(pygame.K_x, "x"))
    assert viewer.world.keys == ["c", "x"]


def test_headless_run_requires_max_steps(viewer):
    with pytest.raises(ValueError, match="max_steps"):
        viewer.run()


def test_quit_key_stops(viewer):
    viewer.handle_event(key(pygame.K_q, "q"))
    assert not viewer.running


def test_run_records_video(viewer, tmp_path):
    out = tmp_path / "run.gif"
    assert viewer.run(max_steps=4, record_path=out) == 4
    assert not viewer.recording
    assert iio.imread(out, index=None).shape == (5, 720, 960, 3)


def test_record_rollout_gif(tmp_path):
    world = SquareWorld()
    path = record_rollout(world, tmp_path / "sub" / "roll.gif", steps=6, every=2, progress=False)
    frames = iio.imread(path, index=None)
    assert frames.shape[0] == 4  # initial + 3
    assert frames.shape[1:] == (576, 768, 3)  # 64 x 48 at 12 px per cell
    assert world.step_count == 6


def test_record_rollout_to_several_files_with_callbacks(tmp_path):
    world = SquareWorld()
    seen: list[int] = []
    extra = {"calls": 0}

    def metrics_fn(w):
        extra["calls"] += 1
        return {"square_doubled": 2 * w.x}

    gif, mp4 = tmp_path / "a.gif", tmp_path / "b.mp4"
    path = record_rollout(
        world,
        [gif, mp4],
        steps=4,
        every=2,
        progress=False,
        metrics_fn=metrics_fn,
        on_frame=lambda w: seen.append(w.step_count),
    )
    assert path == gif and seen == [0, 2, 4] and extra["calls"] >= 3
    assert iio.imread(gif, index=None).shape[0] == 3
    assert iio.imread(mp4, index=None).shape[0] == 3
    with pytest.raises(ValueError, match="at least one"):
        record_rollout(SquareWorld(), [], steps=1)


def test_metrics_fn_adds_overlay_rows(tmp_path):
    v = Viewer(SquareWorld(), headless=True, metrics_fn=lambda w: {"answer": 42.0})
    v.draw()
    assert v._metrics["answer"] == 42.0 and "square_x" in v._metrics
    v.close()
    with pytest.raises(TypeError, match="metrics_fn"):
        Viewer(SquareWorld(), headless=True, metrics_fn=3)


# -- recorder --------------------------------------------------------------------------


def moving_frames(n: int, h: int = 48, w: int = 64) -> list[np.ndarray]:
    world = SquareWorld(w, h)
    out = []
    for _ in range(n):
        out.append(world.render_rgb())
        world.step()
    return out


def test_gif_round_trip(tmp_path):
    frames = moving_frames(5)
    path = tmp_path / "a" / "b" / "clip.gif"
    with VideoRecorder(path, fps=10) as rec:
        for f in frames:
            rec.add(f)
    assert rec.frames_written == 5
    back = iio.imread(path, index=None)
    assert back.shape[0] == 5 and back.shape[1:3] == (48, 64)
    assert np.array_equal(back[0][..., :3], frames[0])  # few colours: lossless palette


def test_mp4_round_trip_odd_size(tmp_path):
    frames = moving_frames(8, h=47, w=63)
    path = tmp_path / "clip.mp4"
    with VideoRecorder(path, fps=24) as rec:
        for f in frames:
            rec.add(f)
    back = iio.imread(path, plugin="FFMPEG", index=None)
    assert len(back) >= 7
    assert back[0].shape == (48, 64, 3)  # padded to even
    # lossy, but the picture survives
    assert np.abs(back[0][:47, :63].astype(int) - frames[0]).mean() < 8


def test_max_size_downscales(tmp_path):
    frame = np.zeros((300, 200, 3), np.uint8)
    frame[::2] = 255
    with VideoRecorder(tmp_path / "s.gif", max_size=100) as rec:
        rec.add(frame)
        rec.add(255 - frame)
    assert iio.imread(tmp_path / "s.gif", index=None).shape[1:3] == (100, 67)


def test_recorder_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"'\.avi'.*\.gif, \.mp4"):
        VideoRecorder(tmp_path / "x.avi")
    rec = VideoRecorder(tmp_path / "x.gif")
    rec.add(np.zeros((10, 12, 3), np.uint8))
    with pytest.raises(ValueError, match=r"shape \(11, 12, 3\).*\(10, 12, 3\)"):
        rec.add(np.zeros((11, 12, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        rec.add(np.zeros((10, 12, 3), np.float32))
    rec.close()
    with pytest.raises(ValueError, match="extension"):
        record_rollout(SquareWorld(), tmp_path / "x.webm", steps=1, progress=False)


def test_save_png(tmp_path):
    frame = moving_frames(1)[0]
    path = save_png(tmp_path / "d" / "f.png", frame)
    assert np.array_equal(iio.imread(path), frame)


# -- colormaps -------------------------------------------------------------------------


def test_apply_colormap():
    values = np.linspace(-0.5, 1.5, 48 * 64).reshape(48, 64)
    values[0, 0] = np.nan
    rgb = apply_colormap(values, "viridis")
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    assert np.array_equal(rgb[0, 1], rgb[0, 0])  # NaN and below-0 clip to the lowest colour
    assert not np.array_equal(rgb[0, 0], rgb[-1, -1])
    batch = apply_colormap(np.random.default_rng(0).random((2, 5, 7)), "magma")
    assert batch.shape == (2, 5, 7, 3)
    with pytest.raises(ValueError, match="unknown colormap"):
        apply_colormap(values, "not_a_cmap")


def test_binary_rgb_and_upscale():
    board = np.array([[0, 1], [2, 0]], np.uint8)
    rgb = binary_rgb(board, alive=(1, 2, 3), dead=(9, 9, 9))
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert rgb[0, 1].tolist() == [1, 2, 3] and rgb[1, 0].tolist() == [1, 2, 3]
    assert rgb[0, 0].tolist() == [9, 9, 9]
    out = np.empty((2, 2, 3), np.uint8)
    assert binary_rgb(board.astype(bool), out=out) is out
    big = upscale_nearest(rgb, 3)
    assert big.shape == (6, 6, 3)
    assert np.array_equal(big[::3, ::3], rgb)
    with pytest.raises(ValueError):
        upscale_nearest(rgb, 0)
