"""Tests for colonylab.envs.ca.nca_canvas: seeding, damage, rendering, viewer hooks."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import numpy as np  # noqa: E402
import pygame  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from colonylab.envs.ca.nca_canvas import (  # noqa: E402
    CanvasConfig,
    NCACanvas,
    add_noise,
    disc_mask,
    erase_discs,
    erase_halves,
    rgba_to_rgb,
    seed_cell,
)

WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
RED = (217, 38, 26)  # a hidden channel at +1 in the blue-white-red map


def canvas(h: int = 10, w: int = 12, batch: int = 2, channels: int = 8, **kw) -> NCACanvas:
    world = NCACanvas(config=CanvasConfig(height=h, width=w, channels=channels, batch=batch), **kw)
    world.reset(seed=0)
    return world


def filled(batch: int = 2, h: int = 8, w: int = 8, c: int = 6) -> torch.Tensor:
    """Every cell alive (alpha 1) with distinct nonzero values."""
    x = torch.arange(batch * h * w * c, dtype=torch.float32).reshape(batch, h, w, c) + 1.0
    x[..., 3] = 1.0
    return x


# -- pure operations -----------------------------------------------------------------------------


def test_seed_cell_centre_and_position():
    x = seed_cell(2, 7, 9, 6)
    assert x.shape == (2, 7, 9, 6) and x.dtype == torch.float32
    assert torch.equal(x[:, 3, 4], torch.tensor([[0, 0, 0, 1, 1, 1]] * 2, dtype=torch.float32))
    assert x.sum() == 2 * 3  # nothing else
    y = seed_cell(1, 7, 9, 6, at=(0, 8))
    assert y[0, 0, 8, 3] == 1 and y.sum() == 3


@pytest.mark.parametrize("at", [(7, 0), (0, 9), (-1, 3), (3, -1)])
def test_seed_cell_outside_the_canvas_is_refused(at):
    with pytest.raises(ValueError, match="outside the 7x9 canvas"):
        seed_cell(1, 7, 9, 6, at=at)


def test_disc_mask_and_erase_discs():
    mask = disc_mask(9, 9, torch.tensor([[4.0, 4.0], [0.0, 0.0]]), 2.0)
    assert mask.shape == (2, 9, 9) and mask.dtype == torch.bool
    assert mask[0].sum() == 13  # cells within distance 2 of the centre
    assert mask[0, 4, 6] and mask[0, 6, 4] and not mask[0, 6, 6]
    assert mask[1].sum() == 6  # a quarter disc in the corner
    x = filled(2, 9, 9)
    out = erase_discs(x, torch.tensor([[4.0, 4.0], [0.0, 0.0]]), torch.tensor([2.0, 1.0]))
    assert torch.count_nonzero(out[0][mask[0]]) == 0
    assert torch.equal(out[0][~mask[0]], x[0][~mask[0]])
    assert torch.count_nonzero(out[1].abs().sum(-1) == 0) == 3  # radius 1 at a corner
    with pytest.raises(ValueError, match="expected NCA states"):
        erase_discs(torch.zeros(9, 9, 4), torch.zeros(1, 2), 1.0)


@pytest.mark.parametrize(
    ("side", "erased"),
    [
        ("left", (slice(None), slice(0, 3))),
        ("right", (slice(None), slice(3, 7))),
        ("top", (slice(0, 3), slice(None))),
        ("bottom", (slice(3, 6), slice(None))),
    ],
)
def test_erase_halves_each_side(side, erased):
    x = filled(2, 6, 7)
    out = erase_halves(x, side)
    want = x.clone()
    want[:, erased[0], erased[1]] = 0
    assert torch.equal(out, want)


def test_erase_halves_one_side_per_state_and_bad_sides():
    x = filled(2, 6, 6)
    out = erase_halves(x, ["left", "bottom"])
    assert torch.equal(out[0], erase_halves(x[:1], "left")[0])
    assert torch.equal(out[1], erase_halves(x[1:], "bottom")[0])
    with pytest.raises(ValueError, match="side must be one of"):
        erase_halves(x, "middle")
    with pytest.raises(ValueError, match="one side per state"):
        erase_halves(x, ["left"])


def test_add_noise_changes_only_living_cells():
    x = torch.zeros(2, 8, 8, 6)
    x[:, 2:5, 3:6, 3] = 0.5  # living block; the rest is dead
    living = x[..., 3] > 0
    gen = torch.Generator().manual_seed(0)
    out = add_noise(x, 0.1, gen)
    assert torch.equal(out[~living], x[~living])
    assert (out[living] != x[living]).all()
    assert 0.05 < (out - x)[living].std() < 0.2
    again = add_noise(x, 0.1, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # seeded
    assert torch.equal(add_noise(x, 0.0), x)


@pytest.mark.parametrize("scale", [-0.1, float("nan"), float("inf")])
def test_add_noise_bad_scale_is_refused(scale):
    with pytest.raises(ValueError, match="noise scale"):
        add_noise(torch.zeros(1, 4, 4, 4), scale)


def test_rgba_to_rgb_composites_on_white():
    rgba = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], [0.5, 0.0, 0.0, 0.5]]])
    rgb = rgba_to_rgb(rgba)
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 3, 3)
    assert rgb[0, 0].tolist() == list(WHITE)
    assert rgb[0, 1].tolist() == list(BLACK)
    assert rgb[0, 2].tolist() == [255, 128, 128]
    assert np.array_equal(rgba_to_rgb(rgba.numpy()), rgb)


# -- the world -----------------------------------------------------------------------------------


def test_reset_seeds_every_canvas():
    world = canvas()
    assert world.state.shape == (2, 10, 12, 8)
    assert torch.equal(world.state, seed_cell(2, 10, 12, 8))
    assert world.step_count == 0


def test_step_without_rule_keeps_state_and_counts():
    world = canvas()
    before = world.state.clone()
    result = world.step()
    obs, reward, terminated, truncated, info = result
    assert torch.equal(world.state, before) and obs is world.state
    assert world.step_count == 1
    assert reward.shape == (2,) and not reward.any() and not terminated.any()
    assert not truncated.any() and info == {}


def test_step_applies_the_rule_without_gradients():
    seen = []

    def rule(x):
        seen.append(torch.is_grad_enabled())
        return x * 0.5

    world = canvas(rule=rule)
    world.step()
    world.step()
    assert seen == [False, False]
    assert torch.equal(world.state, seed_cell(2, 10, 12, 8) * 0.25)
    assert world.step_count == 2


def test_render_rgb_shape_dtype_and_white_background():
    world = canvas()
    world.set_state(torch.zeros_like(world.state))
    frame = world.render_rgb()
    assert frame.shape == (10, 12, 3) and frame.dtype == np.uint8
    assert (frame == 255).all()
    world.reset()
    frame = world.render_rgb()
    assert frame[5, 6].tolist() == list(BLACK)  # the seed: alpha 1, RGB 0
    assert (frame == 255).all(axis=-1).sum() == 10 * 12 - 1


def test_hidden_channel_view_cycles_with_c_and_v():
    world = canvas(channels=6)
    assert world.view_name == "rgba"
    assert world.handle_key("c")
    assert world.view_channel == 4 and world.view_name == "channel 4"
    frame = world.render_rgb()
    assert frame[5, 6].tolist() == list(RED)  # hidden channels of the seed are 1
    assert (frame == 255).all(axis=-1).sum() == 10 * 12 - 1
    world.state[0, 0, 0, 4] = -1.0
    assert world.render_rgb()[0, 0].tolist() == [26, 77, 217]  # blue for -1
    world.handle_key("c")
    assert world.view_channel == 5
    world.handle_key("c")
    assert world.view_channel == -1  # back to RGBA
    world.handle_key("v")
    assert world.view_channel == 5


def test_batch_view_keys_noise_key_and_key_fn():
    world = canvas(batch=3)
    world.handle_key("]")
    assert world.view_index == 1
    world.handle_key("[")
    world.handle_key("[")
    assert world.view_index == 2
    before = world.state.clone()
    assert world.handle_key("n")
    assert not torch.equal(world.state, before) and world.damage_events == 1
    assert world.handle_key("x") is False
    got = []
    world.key_fn = lambda w, name: got.append(name) or name == "t"
    assert world.handle_key("t") and not world.handle_key("y")
    assert got == ["t", "y"]


def test_left_click_erases_and_right_click_reseeds():
    world = canvas(h=20, w=20, batch=2)
    world.set_state(torch.ones_like(world.state))
    world.handle_click(5, 8, 1)  # x=col 5, y=row 8
    radius = max(1.0, world.config.damage_radius * 20)
    mask = disc_mask(20, 20, torch.tensor([[8.0, 5.0]]), radius)[0]
    for b in range(2):
        assert torch.count_nonzero(world.state[b][mask]) == 0
        assert (world.state[b][~mask] == 1).all()
    assert world.damage_events == 1
    world.step()
    world.handle_click(15, 2, 3)
    assert torch.equal(world.state, seed_cell(2, 20, 20, 8, at=(2, 15)))
    assert world.step_count == 0
    world.handle_click(25, 2, 3)  # outside: nothing happens
    assert torch.equal(world.state, seed_cell(2, 20, 20, 8, at=(2, 15)))


def test_damage_methods_on_one_canvas_and_their_errors():
    world = canvas(h=8, w=8, batch=2)
    world.set_state(torch.ones_like(world.state))
    world.erase_half("top", index=1)
    assert (world.state[0] == 1).all()
    assert torch.count_nonzero(world.state[1, :4]) == 0 and (world.state[1, 4:] == 1).all()
    world.erase_disc(0, 0, 1.5, index=0)
    assert torch.count_nonzero(world.state[0, 0, 0]) == 0
    world.add_noise(0.1, index=0)
    assert torch.equal(world.state[1, :4], torch.zeros(4, 8, 8))  # dead cells keep still
    with pytest.raises(ValueError, match="canvas index 2 out of range"):
        world.erase_half("left", index=2)
    with pytest.raises(ValueError, match="radius must be > 0"):
        world.erase_disc(1, 1, 0.0)
    with pytest.raises(ValueError, match="state shape"):
        world.set_state(torch.zeros(1, 8, 8, 8))


def test_seed_fn_render_fn_and_metrics_fn():
    def seed_fn(world, at):
        x = torch.zeros(2, 6, 6, 5)
        x[:, 1, 1, 3] = 0.5 if at is None else 1.0
        return x

    world = NCACanvas(
        config=CanvasConfig(height=6, width=6, channels=5, batch=2),
        seed_fn=seed_fn,
        render_fn=lambda w: np.full((6, 6, 3), 7, np.uint8),
        metrics_fn=lambda w: {"loss": 0.25},
    )
    world.reset()
    assert world.state[0, 1, 1, 3] == 0.5
    world.reseed(3, 3)
    assert world.state[0, 1, 1, 3] == 1.0
    assert (world.render_rgb() == 7).all()
    metrics = world.metrics()
    assert set(metrics) == {"alive_share", "mean_alpha", "loss"}
    assert metrics["alive_share"] == pytest.approx(1 / 36)
    assert metrics["mean_alpha"] == pytest.approx(1 / 36)
    bad = NCACanvas(config=CanvasConfig(height=6, width=6, channels=5, batch=2))
    bad.seed_fn = lambda w, at: torch.zeros(1, 6, 6, 5)
    with pytest.raises(ValueError, match="seed_fn returned shape"):
        bad.reset()


def test_metrics_keys_and_values():
    world = canvas()
    metrics = world.metrics()
    assert set(metrics) == {"alive_share", "mean_alpha"}
    assert metrics["alive_share"] == pytest.approx(1 / 120)
    assert all(isinstance(v, float) for v in metrics.values())


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"height": 0}, "height"),
        ({"width": 2.5}, "width"),
        ({"batch": 0}, "batch"),
        ({"channels": 3}, "channels"),
        ({"alive_channel": 16}, "alive_channel"),
        ({"damage_radius": 0.0}, "damage_radius"),
        ({"damage_radius": 1.5}, "damage_radius"),
    ],
)
def test_bad_config_is_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        CanvasConfig(**kw)


# -- the viewer, headless ------------------------------------------------------------------------


def test_headless_viewer_draws_clicks_and_switches_channel(tmp_path):
    from colonylab.envs.render import Viewer

    world = canvas(h=24, w=24, batch=1)
    viewer = Viewer(world, window_size=(480, 480), headless=True, overlay=False, media_dir=tmp_path)
    try:
        viewer.draw()
        frame = viewer.frame()
        assert viewer.zoom == pytest.approx(20.0)
        sx, sy = (int(v) for v in viewer.world_to_screen(12.5, 12.5))  # the seed cell
        assert frame[sy, sx].tolist() == list(BLACK)
        assert frame[20, 20].tolist() == list(WHITE)
        viewer.handle_event(key(pygame.K_c, "c"))  # hidden channel 4
        viewer.draw()
        assert viewer.frame()[sy, sx].tolist() == list(RED)
        viewer.handle_event(key(pygame.K_v, "v"))
        viewer.handle_event(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=(sx, sy)))
        viewer.handle_event(pygame.event.Event(pygame.MOUSEBUTTONUP, button=1, pos=(sx, sy)))
        viewer.draw()
        assert torch.count_nonzero(world.state) == 0  # the click erased the seed
        assert (viewer.frame()[40:440, 40:440] == 255).all()
        rx, ry = (int(v) for v in viewer.world_to_screen(3.5, 5.5))
        viewer.handle_event(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=3, pos=(rx, ry)))
        assert world.state[0, 5, 3, 3] == 1 and torch.count_nonzero(world.state[..., 3]) == 1
        viewer.draw()
        assert viewer.frame()[ry, rx].tolist() == list(BLACK)
    finally:
        viewer.close()


def key(k: int, unicode: str = "") -> pygame.event.Event:
    return pygame.event.Event(pygame.KEYDOWN, key=k, unicode=unicode, mod=0)
