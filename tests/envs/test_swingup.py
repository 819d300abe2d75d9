"""SwingUpWorld: CartPole's equations, energy, the hanging start, reward, the
track's end, seeding, freezing / autoreset and bad actions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from colonylab.envs.classic import CartPoleWorld
from colonylab.envs.classic.swingup import SwingUpWorld


def _hanging(env: SwingUpWorld, offsets: list[float]) -> None:
    state = torch.zeros(len(offsets), 4, dtype=torch.float64)
    state[:, 2] = math.pi + torch.tensor(offsets, dtype=torch.float64)
    env.set_state(state)


def test_frictionless_step_is_cartpoles_step():
    """With CartPole's constants and no friction, a force of +-10 moves the state exactly
    as CartPoleWorld's step does."""
    cart = CartPoleWorld.factory(seed=0)(6)
    state = cart.reset(seed=3) * 20  # wider states than CartPole's start
    swing = SwingUpWorld.factory(friction=0.0)(6)
    for name in ("gravity", "masscart", "masspole", "total_mass", "length", "tau"):
        setattr(swing, name, getattr(CartPoleWorld, name))
    swing.polemass_length = CartPoleWorld.polemass_length
    push = torch.tensor([0, 1, 1, 0, 1, 0])
    want = cart._dynamics(state, push.bool())
    got = swing._dynamics(state, 10.0 * (2.0 * push - 1).double())
    torch.testing.assert_close(got, want, rtol=0, atol=1e-15)


def test_observation_and_shapes():
    env = SwingUpWorld.factory()(3)
    obs = env.reset(seed=0)
    assert obs.shape == (3, 5) and obs.dtype == torch.float64
    x, x_dot, theta, theta_dot = env.state.unbind(1)
    torch.testing.assert_close(obs, torch.stack((x, x_dot, theta.cos(), theta.sin(), theta_dot), 1))
    obs, reward, terminated, truncated, info = env.step(torch.zeros(3, 1))
    assert obs.shape == (3, 5) and reward.dtype == torch.float32 and reward.shape == (3,)
    assert terminated.dtype == torch.bool and truncated.shape == (3,) and info == {}
    assert SwingUpWorld.factory(dtype=torch.float32)(2).reset(seed=0).dtype == torch.float32


def test_reset_hangs_down_with_small_noise():
    env = SwingUpWorld.factory()(2000)
    env.reset(seed=1)
    theta = env.state[:, 2]
    assert abs(float(theta.mean()) - math.pi) < 0.02
    assert 0.18 < float(theta.std()) < 0.22
    assert float(env.state[:, 0].abs().mean()) < 0.2
    env.reset(seed=1, options={"std": 0.0})
    torch.testing.assert_close(env.state[0], torch.tensor([0, 0, math.pi, 0], dtype=torch.float64))


def test_hanging_pole_stays_near_the_bottom_without_force():
    env = SwingUpWorld.factory()(3)
    _hanging(env, [0.0, 0.1, -0.05])
    worst = 0.0
    for _ in range(1000):
        env.step(torch.zeros(3))
        worst = max(worst, float((env.state[:, 2] - math.pi).abs().max()))
    assert worst < 0.3
    assert float((env.state[0, 2] - math.pi).abs()) < 1e-12  # the exact bottom is at rest
    assert float(env.state[:, 0].abs().max()) < 0.5


def test_energy_conserved_short_term_and_drained_by_friction():
    bottom = -SwingUpWorld.masspole * SwingUpWorld.gravity * SwingUpWorld.length
    free = SwingUpWorld.factory(friction=0.0)(2)
    _hanging(free, [-0.3, 0.2])
    start = free.energy(free.state)
    swing = start - bottom
    for _ in range(20):
        free.step(torch.zeros(2))
    # explicit Euler lets the energy creep up, slowly at first
    drift = free.energy(free.state) - start
    assert bool((drift.abs() < 0.05 * swing).all())
    assert bool((drift >= 0).all())

    damped = SwingUpWorld.factory(friction=5.0)(2)
    _hanging(damped, [-0.3, 0.2])
    for _ in range(1000):
        damped.step(torch.zeros(2))
    assert bool((damped.energy(damped.state) < start).all())
    assert bool((damped.energy(damped.state) >= bottom - 1e-9).all())


def test_force_accelerates_the_cart_and_swings_the_pole():
    env = SwingUpWorld.factory()(2)
    _hanging(env, [0.0, 0.0])
    env.step(torch.tensor([1.0, -1.0]))
    env.step(torch.tensor([1.0, -1.0]))
    assert float(env.state[0, 1]) > 0 > float(env.state[1, 1])
    # pushing the cart right swings the hanging pole's bottom end left (theta above pi)
    assert float(env.state[0, 3]) > 0 > float(env.state[1, 3])


def test_reward_is_one_upright_at_the_centre_and_zero_hanging():
    env = SwingUpWorld.factory()(5)
    states = torch.tensor(
        [[0, 0, 0, 0], [0, 0, math.pi, 0], [1.2, 0, 0, 0], [0, 0, math.pi / 2, 0], [2.4, 0, 0, 0]],
        dtype=torch.float64,
    )
    reward = env.reward(states)
    torch.testing.assert_close(reward[:2], torch.tensor([1.0, 0.0]))
    assert 0.70 < float(reward[2]) < 0.71  # cos(pi / 4)
    assert abs(float(reward[3]) - 0.5) < 1e-6
    assert abs(float(reward[4])) < 1e-6
    grid = env.reward(torch.rand(1000, 4, dtype=torch.float64) * 4 - 2)
    assert float(grid.max()) <= 1.0 and float(grid.min()) >= -1e-6
    # a step's reward is the reward of the state it reaches
    env.set_state(states)
    _, r, *_ = env.step(torch.zeros(5))
    torch.testing.assert_close(r, env.reward(env.state))


def test_terminates_at_the_track_edge_then_freezes():
    env = SwingUpWorld.factory()(2)
    env.set_state(torch.tensor([[2.39, 2.0, math.pi, 0], [0, 0, math.pi, 0]], dtype=torch.float64))
    _, _, terminated, truncated, _ = env.step(torch.ones(2))
    assert terminated.tolist() == [True, False] and not truncated.any()
    frozen = env.state[0].clone()
    _, reward, terminated, _, _ = env.step(torch.ones(2))
    assert not terminated.any() and float(reward[0]) == 0.0 and float(reward[1]) != 0.0
    torch.testing.assert_close(env.state[0], frozen)
    assert env.done.tolist() == [True, False]


def test_truncates_after_max_episode_steps_and_autoresets():
    env = SwingUpWorld.factory(max_episode_steps=5)(2)
    env.reset(seed=0)
    for _ in range(5):
        _, _, terminated, truncated, _ = env.step(torch.zeros(2))
    assert truncated.all() and not terminated.any()
    assert SwingUpWorld.factory()(1).max_episode_steps == 1000

    auto = SwingUpWorld.factory(max_episode_steps=3, autoreset=True, seed=0)(2)
    auto.reset(seed=0)
    for _ in range(3):
        obs, _, _, truncated, info = auto.step(torch.zeros(2))
    assert truncated.all() and auto.elapsed.tolist() == [0, 0]
    assert not torch.equal(info["final_obs"], obs)
    assert float(obs[:, 2].max()) < -0.5  # fresh episodes hang down again


def test_determinism_under_seed():
    a, b = SwingUpWorld.factory(seed=9)(4), SwingUpWorld.factory(seed=9)(4)
    torch.testing.assert_close(a.reset(seed=5), b.reset(seed=5))
    policy = a.policy("random", seed=2)
    for _ in range(50):
        act = policy(a.observe(a.state))
        oa, ra, *_ = a.step(act)
        ob, rb, *_ = b.step(act)
    torch.testing.assert_close(oa, ob)
    torch.testing.assert_close(ra, rb)
    assert not torch.equal(a.reset(seed=5), SwingUpWorld.factory()(4).reset(seed=6))
    # per-env seeds: an episode does not depend on its batch
    pair = SwingUpWorld.factory()(2).reset(seed=np.array([7, 8]))
    single = SwingUpWorld.factory()(1).reset(seed=np.array([8]))
    torch.testing.assert_close(pair[1:], single)


def test_subset_keeps_the_envs():
    env = SwingUpWorld.factory(friction=0.3)(4)
    env.reset(seed=0)
    part = env.subset([3, 1])
    assert isinstance(part, SwingUpWorld) and part.friction == 0.3
    torch.testing.assert_close(part.state, env.state[[3, 1]])
    obs, *_ = part.step(torch.zeros(2))
    assert obs.shape == (2, 5)


@pytest.mark.parametrize(
    ("actions", "match"),
    [
        (torch.tensor([0.5, 1.5]), r"1\.5 for env 1 is outside \[-1, 1\]"),
        (torch.tensor([0.0, float("nan")]), "for env 1"),
        (torch.tensor([0, 1]), "floats"),
        (np.array([0, 1]), "floats"),
        (torch.zeros(3), r"shape \(2,\) or \(2, 1\)"),
        (torch.zeros(2, 2), r"shape \(2,\) or \(2, 1\)"),
    ],
)
def test_bad_actions_are_refused_and_change_nothing(actions, match, state_guard):
    env = SwingUpWorld.factory()(2)
    env.reset(seed=0)
    state_guard.assert_refused(env, lambda: env.step(actions), match)
    assert env.step_count == 0


def test_bad_construction_and_order():
    with pytest.raises(ValueError, match="friction"):
        SwingUpWorld.factory(friction=-1.0)(2)
    with pytest.raises(ValueError, match="num_envs"):
        SwingUpWorld.factory()(0)
    with pytest.raises(RuntimeError, match="reset"):
        SwingUpWorld.factory()(2).step(torch.zeros(2))


def test_render_draws_panels():
    env = SwingUpWorld.factory(render_envs=4)(4)
    env.reset(seed=0)
    image = env.render_rgb()
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
