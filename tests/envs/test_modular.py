"""The batched modular world: observations as modular-rl computes them (checked
against a plain MjData loop), masks and padding, reward terms, seeds, autoreset,
refusals, the tiled picture."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest
import torch

mujoco = pytest.importorskip("mujoco")

from colonylab.envs.mujoco.modular import ModularConfig, ModularWorld, quat_to_expmap  # noqa: E402
from colonylab.envs.mujoco.morphology import body, body_names, to_mjcf  # noqa: E402

MIXED = ("walker_7_main", "cheetah_4_back", "hopper_3")


def _reference_obs(model, data, spec, kinds, qpos=None):
    """modular-rl's per-limb observation, limb by limb from one MjData (joint angles from
    ``qpos`` if given)."""
    qpos = data.qpos if qpos is None else qpos
    rows = []
    torso_x = data.xpos[1, 0]
    for b in range(1, model.nbody):
        pos = data.xpos[b].copy()
        pos[0] -= torso_x
        vel = np.zeros(6)
        mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_XBODY, b, vel, 0)
        quat = data.xquat[b]
        if b == 1:
            angle, lo, hi = 0.0, 0.0, 0.0
        else:
            j = model.body_jntadr[b]
            low, high = np.degrees(model.jnt_range[j])
            angle = (np.degrees(qpos[model.jnt_qposadr[j]]) - low) / (high - low)
            lo, hi = (180 + low) / 360, (180 + high) / 360
        row = [*pos, *np.clip(vel[3:], -10, 10), *vel[:3], *quat_to_expmap(quat), angle, lo, hi]
        if kinds:
            limb = spec.limbs[spec.order()[b - 1]]
            row += [float(limb.kind == k) for k in kinds]
        rows.append(row)
    return np.array(rows)


@pytest.mark.parametrize("bodies", [("walker_6_flipped",), MIXED])
def test_reset_observation_and_reward_terms(bodies):
    world = ModularWorld(
        ModularConfig(num_envs=len(bodies), bodies=bodies, autoreset=False, dtype="float64")
    )
    obs = world.reset(seed=5).numpy()
    gen = np.random.default_rng(0)
    for k, name in enumerate(bodies):
        spec = body(name)
        model = mujoco.MjModel.from_xml_string(to_mjcf(spec))
        data = mujoco.MjData(model)
        g = world.groups[k]
        state = world.states[k][0]
        data.qpos[:] = state[1 : 1 + model.nq]
        data.qvel[:] = state[1 + model.nq : 1 + model.nq + model.nv]
        mujoco.mj_forward(model, data)
        L = spec.num_limbs
        np.testing.assert_allclose(
            obs[k, :L], _reference_obs(model, data, spec, world.kinds), atol=1e-12
        )
        assert not obs[k, L:].any() and world.limb_mask[k].sum() == L == g.num_limbs
    for _ in range(5):
        actions = gen.uniform(-1, 1, (len(bodies), world.max_limbs))
        result = world.step(actions)
        obs = result.obs.numpy()
        for k, name in enumerate(bodies):
            L = body(name).num_limbs
            assert np.isclose(
                result.reward[k].item(),
                result.info["reward_forward"][k]
                + result.info["reward_survive"][k]
                + result.info["reward_ctrl"][k],
                atol=1e-5,
            )
            assert np.isclose(
                result.info["reward_ctrl"][k], -1e-3 * np.square(actions[k, 1:L]).sum()
            )
            assert not obs[k, L:].any()


def test_steps_equal_mj_step_with_a_cold_warm_start():
    world = ModularWorld(
        ModularConfig(
            num_envs=2, bodies=("walker_7_main", "cheetah_7_full"), autoreset=False, dtype="float64"
        )
    )
    world.reset(seed=1)
    gen = np.random.default_rng(2)
    models = [g.model for g in world.groups]
    datas = [mujoco.MjData(m) for m in models]
    for k, (m, d) in enumerate(zip(models, datas, strict=True)):
        s = world.states[k][0]
        d.qpos[:] = s[1 : 1 + m.nq]
        d.qvel[:] = s[1 + m.nq : 1 + m.nq + m.nv]
    for _ in range(6):
        actions = gen.uniform(-1, 1, (2, world.max_limbs))
        x_before = [d.qpos[0] for d in datas]
        result = world.step(actions)
        for k, (m, d) in enumerate(zip(models, datas, strict=True)):
            d.qacc_warmstart[:] = 0.0  # rollout starts every call cold
            d.ctrl[:] = actions[k, 1 : world.groups[k].num_limbs]
            mujoco.mj_step(m, d, nstep=3)
            before_last = mujoco.MjData(m)  # poses: the state the last sub-step starts from
            before_last.qpos[:], before_last.qvel[:] = d.qpos, d.qvel
            mujoco.mj_forward(m, before_last)
            mujoco.mj_step(m, d)
            spec = world.groups[k].spec
            ref = _reference_obs(m, before_last, spec, world.kinds, qpos=d.qpos)
            np.testing.assert_allclose(result.obs[k, : spec.num_limbs].numpy(), ref, atol=1e-9)
            fwd = (d.qpos[0] - x_before[k]) / world.dt
            assert np.isclose(result.info["reward_forward"][k], fwd, atol=1e-9)


def test_masks_parents_and_ignored_slots():
    world = ModularWorld(ModularConfig(num_envs=3, bodies=MIXED, autoreset=False))
    assert world.obs_dim == 15 and world.kinds == ()  # not walker-only: no one-hot
    assert world.limb_mask.sum(1).tolist() == [7, 4, 3]
    assert (world.action_mask == (world.limb_mask & (np.arange(7) > 0))).all()
    assert world.parents[0].tolist() == [-1, 0, 1, 2, 0, 4, 5]
    obs = world.reset(seed=0)
    a = torch.zeros(3, 7)
    b = a.clone()
    b[:, 0] = 0.9  # torso slot
    b[1, 4:] = 5.0  # padding: ignored, even out of range
    r1 = world.step(a)
    world.reset(seed=0)
    r2 = world.step(b)
    assert torch.equal(r1.obs, r2.obs) and torch.equal(r1.reward, r2.reward)
    assert obs.shape == (3, 7, 15)


def test_walkers_carry_the_limb_type_one_hot():
    world = ModularWorld(ModularConfig(num_envs=12, autoreset=False))
    obs = world.reset(seed=0)
    assert obs.shape == (12, 7, 19) and obs.dtype == torch.float32
    onehot = obs[..., 15:]
    assert torch.equal(onehot.sum(-1), torch.as_tensor(world.limb_mask, dtype=torch.float32))
    assert onehot[:, 0, 0].eq(1).all()  # the torso


def test_seeds_per_robot_do_not_depend_on_the_batch():
    big = ModularWorld(ModularConfig(num_envs=4, bodies=("walker_7_main",), autoreset=False))
    small = ModularWorld(ModularConfig(num_envs=1, bodies=("walker_7_main",), autoreset=False))
    ob = big.reset(seed=[3, 9, 4, 5])
    os_ = small.reset(seed=[9])
    assert torch.equal(ob[1], os_[0])
    assert not torch.equal(ob[0], ob[1])


def test_autoreset_and_freezing():
    cfg = ModularConfig(num_envs=2, bodies=("walker_7_main",), max_episode_steps=3, autoreset=True)
    world = ModularWorld(cfg)
    world.reset(seed=0)
    zeros = torch.zeros(2, 7)
    for _ in range(2):
        r = world.step(zeros)
        assert not r.truncated.any()
    r = world.step(zeros)
    assert r.truncated.all() and "final_obs" in r.info and (world.elapsed == 0).all()
    frozen = ModularWorld(
        ModularConfig(num_envs=2, bodies=("walker_7_main",), max_episode_steps=2, autoreset=False)
    )
    frozen.reset(seed=0)
    frozen.step(zeros)
    frozen.step(zeros)
    assert frozen.done.all()
    before = frozen.observe()
    r = frozen.step(zeros)
    assert torch.equal(before, r.obs) and not r.reward.any() and not r.truncated.any()


def test_bad_actions_and_config_are_refused(state_guard):
    world = ModularWorld(ModularConfig(num_envs=2, bodies=("walker_3_main",), autoreset=False))
    world.reset(seed=0)
    state_guard.assert_refused(world, lambda: world.step(torch.zeros(2, 4)), "shape")
    bad = torch.zeros(2, 3)
    bad[1, 2] = 1.5
    state_guard.assert_refused(world, lambda: world.step(bad), "outside")
    state_guard.assert_refused(
        world, lambda: world.step(torch.zeros(2, 3, dtype=torch.int64)), "floats"
    )
    with pytest.raises(ValueError, match="unknown body"):
        ModularConfig(bodies=("walker_9_main",))
    with pytest.raises(ValueError, match="threads"):
        ModularConfig(threads=-1)


def test_same_result_with_two_threads():
    """One thread, two threads with a share of the bodies each (``groups``), two threads
    splitting every body (``rollout``): the same numbers."""
    runs = []
    for threads, how in ((0, "groups"), (2, "groups"), (3, "rollout")):
        config = ModularConfig(num_envs=6, autoreset=False, threads=threads, step_threads=how)
        world = ModularWorld(config)
        obs = world.reset(seed=4)
        pol = world.policy("random", seed=1)
        for _ in range(5):
            obs = world.step(pol(obs)).obs
        runs.append(obs)
        world.close()
    assert torch.equal(runs[0], runs[1]) and torch.equal(runs[0], runs[2])


def test_render_row_is_a_picture():
    world = ModularWorld(ModularConfig(num_envs=3, bodies=MIXED, render_envs=3))
    world.reset(seed=0)
    try:
        image = world.render_rgb(panel_width=80, panel_height=120)
    except RuntimeError as exc:
        pytest.skip(str(exc))
    assert image.shape == (120, 240, 3) and image.dtype == np.uint8
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 10
    world.close()


def test_body_names_default_world_is_the_walker_family():
    assert ModularConfig().bodies == tuple(body_names("walker"))


def test_walkers_end_outside_modular_rls_height_band():
    """modular-rl's walker health: 0.8 < z < 2.0 for a torso starting at 1.25 m, i.e.
    ``(z0 - 0.45, z0 + 0.75)``, and |pitch| < 1; shorter walkers keep the same offsets."""
    names = ("walker_7_main", "walker_7_main", "walker_7_main", "walker_2_flipped")
    world = ModularWorld(ModularConfig(num_envs=4, bodies=names, autoreset=False))
    world.reset(seed=0)
    g = world.groups[0]
    assert g.z_band == pytest.approx((g.z0 - 0.45, g.z0 + 0.75))
    assert world.groups[1].z_band == pytest.approx(
        (world.groups[1].z0 - 0.45, world.groups[1].z0 + 0.75)
    )
    rootz = 2  # full-physics state: time, then qpos (rootx, rootz, rooty, ...)
    world.states[0][0, rootz] = -0.6  # torso 0.6 m down: below the band
    world.states[0][1, rootz] = 0.9  # thrown 0.9 m up: above it
    world.states[0][2, rootz] = -0.3  # crouched 0.3 m: still healthy
    result = world.step(torch.zeros(4, world.max_limbs))
    assert result.terminated.tolist() == [True, True, False, False]
