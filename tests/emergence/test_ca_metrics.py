"""CA emergence metrics: population, activity, entropy, period detection."""

from __future__ import annotations

import numpy as np
import pytest

from colonylab.emergence.ca import (
    PeriodDetector,
    activity,
    block_entropy,
    density,
    detect_period,
    population,
    value_entropy,
)
from colonylab.envs.ca.life import LifeConfig, LifeWorld


def test_population_density_activity():
    a = np.zeros((2, 4, 4), np.uint8)
    b = a.copy()
    b[0, 0, :2] = 1
    assert population(b).tolist() == [2, 0]
    assert density(b).tolist() == [2 / 16, 0]
    assert activity(a, b).tolist() == [2 / 16, 0]
    with pytest.raises(ValueError, match="shapes differ"):
        activity(a, b[:1])


def test_block_entropy_bounds():
    rng = np.random.default_rng(0)
    empty = np.zeros((1, 64, 64), np.uint8)
    full = np.ones((1, 64, 64), np.uint8)
    noise = rng.integers(0, 2, (1, 256, 256)).astype(np.uint8)
    stripes = np.tile(np.array([[1, 0]], np.uint8), (64, 32))[None]
    assert block_entropy(empty)[0] == 0 and block_entropy(full)[0] == 0
    assert block_entropy(noise)[0] == pytest.approx(1.0, abs=0.01)
    assert block_entropy(stripes)[0] == 0  # one repeated 2x2 block
    with pytest.raises(ValueError, match="binary"):
        block_entropy(noise.astype(np.float32))


def test_value_entropy():
    assert value_entropy(np.zeros((1, 8, 8)))[0] == 0
    x = np.random.default_rng(0).random((1, 64, 64))
    assert value_entropy(x, bins=32)[0] == pytest.approx(5.0, abs=0.05)


@pytest.mark.parametrize(
    "name,kind,period,disp",
    [
        ("block", "still life", 1, (0, 0)),
        ("blinker", "oscillator", 2, (0, 0)),
        ("pulsar", "oscillator", 3, (0, 0)),
        ("pentadecathlon", "oscillator", 15, (0, 0)),
        ("glider", "spaceship", 4, (1, 1)),
        ("lwss", "spaceship", 4, (0, -2)),
    ],
)
def test_period_detector_classifies_patterns(name, kind, period, disp):
    world = LifeWorld(LifeConfig(size=64, pattern=name))
    traj = [world.reset()[0].copy()]
    for _ in range(40):
        world.run(1)
        traj.append(world.board[0].copy())
    result = detect_period(traj)
    assert result is not None
    assert (result.kind, result.period, result.displacement) == (kind, period, disp)
    if kind == "spaceship":
        assert result.velocity == (disp[0] / period, disp[1] / period)


def test_period_detector_extinct_and_methuselah():
    world = LifeWorld(LifeConfig(size=64, pattern="diehard", boundary="bounded"))
    detector = PeriodDetector()
    board = world.reset()[0]
    result = None
    for t in range(200):
        result = detector.update(world.board[0], t)
        if result is not None:
            break
        world.run(1)
    assert result is not None and result.kind == "extinct" and result.detected_at == 130
    assert board.sum() == 7
    with pytest.raises(ValueError, match="one"):
        detector.update(np.zeros((2, 3, 3)), 0)
