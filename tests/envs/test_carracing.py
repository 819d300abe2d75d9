"""CarRacing world: config checks, the grass mask and background swap, a few real steps
in-process and in worker processes (the same numbers), freezing, the scripted teacher."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colonylab.envs.classic.carracing import (
    BACKGROUNDS,
    DASHBOARD,
    TRAINING_IMAGES,
    CarRacingConfig,
    CarRacingWorld,
    apply_background,
    background_image,
    dashboard_black,
    grass_mask,
    procedural_background,
    screen_patches,
    thin_lines,
    training_background,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore:builtin type .* has no __module__ attribute:DeprecationWarning"  # Box2D's SWIG
)
box2d = pytest.mark.skipif(
    not __import__("importlib").util.find_spec("Box2D"),
    reason="box2d is not installed (pip install box2d==2.3.10)",
)


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="num_envs"):
        CarRacingConfig(num_envs=0)
    with pytest.raises(ValueError, match="downsample 5"):
        CarRacingConfig(downsample=5)
    with pytest.raises(ValueError, match="patch 5"):
        CarRacingConfig(patch=5)
    with pytest.raises(ValueError, match="background 'mars'"):
        CarRacingConfig(background="mars")
    with pytest.raises(ValueError, match="procedural must be a probability"):
        CarRacingConfig(procedural=1.5)
    with pytest.raises(ValueError, match="background=None"):
        CarRacingConfig(procedural=0.5, background="coffee")


def test_procedural_backgrounds_are_seeded_and_varied() -> None:
    images = [procedural_background(np.random.default_rng(s)) for s in range(12)]
    for image in images:
        assert image.shape == (96, 96, 3) and image.dtype == np.uint8
    again = procedural_background(np.random.default_rng(3))
    assert np.array_equal(images[3], again)
    means = np.array([image.reshape(-1, 3).mean(axis=0) for image in images])
    assert means.std(axis=0).min() > 10  # random colours, not one texture
    rich = [procedural_background(np.random.default_rng(s), "rich") for s in range(8)]
    assert np.array_equal(rich[5], procedural_background(np.random.default_rng(5), "rich"))
    assert all(image.shape == (96, 96, 3) and image.dtype == np.uint8 for image in rich)
    with pytest.raises(ValueError, match="procedural style 'photo'"):
        procedural_background(np.random.default_rng(0), "photo")
    with pytest.raises(ValueError, match="procedural_style 'photo'"):
        CarRacingConfig(procedural=1.0, procedural_style="photo")


def test_training_backgrounds_never_show_a_test_image() -> None:
    pytest.importorskip("skimage")
    assert not set(TRAINING_IMAGES) & set(BACKGROUNDS) and "cat" not in TRAINING_IMAGES
    for images in ("photos", "procedural", "mixed"):
        drawn = [training_background(np.random.default_rng(s), images) for s in range(10)]
        assert all(b.shape == (96, 96, 3) and b.dtype == np.uint8 for b in drawn)
        again = training_background(np.random.default_rng(4), images)
        assert np.array_equal(drawn[4], again)  # seeded
        assert np.std([b.mean() for b in drawn]) > 5  # varied
    photos = [training_background(np.random.default_rng(s), "photos") for s in range(40)]
    for name in BACKGROUNDS:  # no crop of a test image: far from each one
        test = background_image(name).astype(np.float64)
        assert min(np.abs(p - test).mean() for p in photos) > 20
    with pytest.raises(ValueError, match="images must be photos"):
        training_background(np.random.default_rng(0), "astronaut")


def test_screen_patches_is_what_the_world_observes() -> None:
    screens = np.random.default_rng(0).integers(0, 256, (2, 96, 96, 3), dtype=np.uint8)
    patches = screen_patches(torch.from_numpy(screens), 2, 8)
    assert patches.shape == (2, 36, 192) and patches.dtype == torch.float32
    # patch 0 = the mean of 2 x 2 blocks of the top-left 16 x 16 pixels, row-major
    top_left = screens[0, :16, :16].astype(np.float64).reshape(8, 2, 8, 2, 3).mean((1, 3)) / 255
    assert np.allclose(patches[0, 0].numpy(), top_left.reshape(-1), atol=1e-6)
    world = CarRacingWorld.__new__(CarRacingWorld)  # observe needs only config and device
    world.config = CarRacingConfig(num_envs=2, workers=0, downsample=2, patch=8)
    world.device = torch.device("cpu")
    assert torch.equal(world.observe(screens), patches)


def test_grass_mask_and_background_swap() -> None:
    screen = np.zeros((96, 96, 3), dtype=np.uint8)
    screen[:] = (102, 204, 102)  # CarRacing's grass
    screen[:, 40:56] = (102, 102, 102)  # road
    screen[DASHBOARD:, :10] = (0, 255, 0)  # the dashboard's green steering bar
    mask = grass_mask(screen)
    assert mask[10, 10] and not mask[10, 45] and not mask[90, 5]
    image = np.full((96, 96, 3), 7, dtype=np.uint8)
    out = apply_background(screen, image)
    assert (
        (out[10, 10] == 7).all()
        and (out[10, 45] == 102).all()
        and (out[90, 5] == (0, 255, 0)).all()
    )
    assert apply_background(screen, None) is screen


def _run(workers: int, steps: int = 3, **kw) -> tuple[list[torch.Tensor], torch.Tensor]:
    world = CarRacingWorld(CarRacingConfig(num_envs=2, workers=workers, **kw))
    try:
        obs = [world.reset(seed=5)]
        rewards = []
        for _ in range(steps):
            result = world.step(world.teacher_actions())
            obs.append(result.obs)
            rewards.append(result.reward)
    finally:
        world.close()
    return obs, torch.stack(rewards) if rewards else torch.zeros(0, 2)


@box2d
def test_world_steps_in_process_and_in_workers_alike() -> None:
    obs, rewards = _run(0)
    assert obs[0].shape == (2, 144, 48) and obs[0].dtype == torch.float32
    assert float(obs[0].min()) >= 0.0 and float(obs[0].max()) <= 1.0
    assert rewards.shape == (3, 2)
    again, rewards_again = _run(2)
    for a, b in zip(obs, again, strict=True):
        assert torch.equal(a, b)
    assert torch.equal(rewards, rewards_again)


@box2d
def test_episodes_truncate_then_freeze_and_bad_actions_refused() -> None:
    world = CarRacingWorld(CarRacingConfig(num_envs=2, workers=0, max_episode_steps=4))
    try:
        world.reset(seed=0)
        teacher = world.teacher_actions()
        assert teacher.shape == (2, 2) and float(teacher.abs().max()) <= 1.0
        first = world.step(teacher)
        assert not bool(first.truncated.any())
        second = world.step(teacher)
        assert bool(second.truncated.all()) and not bool(second.terminated.any())
        frozen = world.step(teacher)
        assert torch.equal(frozen.reward, torch.zeros(2)) and bool(frozen.truncated.all())
        assert torch.equal(frozen.obs, second.obs)
        with pytest.raises(ValueError, match=r"actions must be \[N, 2\]"):
            world.step(torch.zeros(3))
    finally:
        world.close()


@box2d
def test_background_world_shows_the_image() -> None:
    pytest.importorskip("skimage", reason="backgrounds need scikit-image")
    plain, _ = _run(0, steps=0)
    swapped, _ = _run(0, steps=0, background="coffee")
    assert not torch.equal(plain[0], swapped[0])
    # the dashboard patches (bottom rows) are untouched
    assert torch.equal(plain[0][:, -12:], swapped[0][:, -12:])


@box2d
def test_fast_road_drawing_matches_gymnasiums_carracing() -> None:
    """Our CarRacing subclass against Gymnasium's own CarRacing-v3, same seed and actions:
    identical rewards and states (the physics is Gymnasium's), screens within 5/255 on
    a few anti-aliased road edges."""
    from gymnasium.envs.box2d.car_racing import CarRacing

    from colonylab.envs.classic.carracing import _car_racing_class

    ours, theirs = _car_racing_class()(verbose=False), CarRacing(verbose=False)
    a, _ = ours.reset(seed=3)
    b, _ = theirs.reset(seed=3)
    screens = [(a, b)]
    for action in ([0.0, 1.0, 0.0], [-0.4, 0.5, 0.0], [0.3, 0.0, 0.2]) * 4:
        sa, ra, *_ = ours.step(np.array(action, np.float32))
        sb, rb, *_ = theirs.step(np.array(action, np.float32))
        assert ra == rb
        screens.append((sa, sb))
    assert ours.car.hull.position == theirs.car.hull.position
    for sa, sb in screens:
        diff = np.abs(sa.astype(int) - sb.astype(int))
        assert diff.max() <= 5 and (diff > 0).mean() < 0.01
    ours.close()
    theirs.close()


@box2d
def test_procedural_world_replaces_grass_per_track() -> None:
    plain, _ = _run(0, steps=1)
    swapped, _ = _run(0, steps=1, procedural=1.0)
    assert not torch.equal(plain[0], swapped[0])
    assert torch.equal(plain[0][:, -12:], swapped[0][:, -12:])  # the dashboard
    again, _ = _run(2, steps=1, procedural=1.0)  # workers: the same textures
    rich, _ = _run(2, steps=1, procedural=1.0, procedural_style="rich")
    assert not torch.equal(rich[0], swapped[0])
    for a, b in zip(swapped, again, strict=True):
        assert torch.equal(a, b)
    pytest.importorskip("skimage")
    photos, _ = _run(0, steps=1, procedural=1.0, procedural_style="photos")
    again, _ = _run(2, steps=1, procedural=1.0, procedural_style="photos")
    assert not torch.equal(photos[0], swapped[0]) and torch.equal(photos[0], again[0])
    assert torch.equal(photos[0][:, -12:], plain[0][:, -12:])  # the dashboard
    never, _ = _run(0, steps=1, procedural=0.0)
    assert all(torch.equal(a, b) for a, b in zip(plain, never, strict=True))


def test_dashboard_black_is_only_the_dashboards_pure_black() -> None:
    screen = np.full((2, 96, 96, 3), 90, dtype=np.uint8)
    screen[:, DASHBOARD:] = 0
    screen[:, DASHBOARD + 4 : DASHBOARD + 6, 10:20] = 255  # a bar
    screen[:, 5:7, 5:7] = 0  # black in the playfield: not the dashboard
    screen[1, DASHBOARD + 1, 40] = (0, 0, 1)  # not pure black
    mask = dashboard_black(screen)
    assert mask.shape == (2, 96, 96) and mask.dtype == bool
    assert not mask[:, :DASHBOARD].any() and not mask[:, DASHBOARD + 4, 10:20].any()
    assert mask[0, DASHBOARD:].sum() == 12 * 96 - 20 and not mask[1, DASHBOARD + 1, 40]
    assert torch.equal(dashboard_black(torch.from_numpy(screen)), torch.from_numpy(mask))


def test_thin_lines_are_seeded_thin_and_drawn_over_the_image() -> None:
    base = np.full((96, 96, 3), 120, dtype=np.uint8)
    drawn = [thin_lines(base, np.random.default_rng(s)) for s in range(6)]
    assert all(d.shape == base.shape and d.dtype == np.uint8 for d in drawn)
    assert np.array_equal(drawn[2], thin_lines(base, np.random.default_rng(2)))
    changed = [(d != base).any(-1).mean() for d in drawn]
    assert all(0.0 < c < 0.8 for c in changed)  # lines, not a new image
    assert np.array_equal(base, np.full((96, 96, 3), 120, dtype=np.uint8))  # not in place
