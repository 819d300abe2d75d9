"""The world contract, checked over EVERY registered world (small sizes):

* one versioned id (``colonylab/<Name>-v<N>``) shared by the registry, the short alias
  and ``metadata["name"]``; honest ``render_modes`` (worlds draw ``rgb_array``; human
  windows come from the viewer); the world declares its scripted policies (the registry
  lists the same), one name for "do nothing" (``noop``) and none of the old spellings;
* ``reset(seed=None, options=None)``; reset / step shapes and dtypes (reward float32,
  flags bool, one per agent or env);
* determinism under a seed (same seed, same policy seed: same trajectory);
* a bad action (wrong shape, out-of-range value) refused with ``ValueError`` and the
  state unchanged (worlds without agents refuse any action);
* a non-blank ``render_rgb()``; finite ``metrics()``.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest
import torch

from colonylab.envs import registry
from colonylab.envs.base import StepResult

SMALL: dict[str, dict[str, Any]] = {
    "life": {"size": 32},
    "highlife": {"size": 32},
    "seeds": {"size": 32},
    "daynight": {"size": 32},
    "lenia": {"size": 64},
    "ca-showcase": {"panel": 128},
    "battle": {"map_size": 16, "agents_per_team": 12, "placement": "random"},
    "pursuit": {"map_size": 16},
    "pursuit-breeding": {"map_size": 32, "predators": 10, "prey": 40},
    "gather": {"map_size": 20, "agents": 12},
    "battle_v4": {"map_size": 16},
    "battlefield_v5": {"map_size": 46},
    "combined_arms_v6": {"map_size": 16},
    "adversarial_pursuit_v4": {"map_size": 16},
    "tiger_deer_v4": {"map_size": 16},
    "gather_v5": {"map_size": 60},
    "density-ring": {"n": 33, "batch": 8},
    "density-grid": {"size": 9, "batch": 4},
    "flock": {"n": 64, "batch": 2},
    "flock-informed": {"n": 40, "batch": 2},
    "cartpole": {"num_envs": 3, "render_envs": 3},
    "cartpole-swingup": {"num_envs": 3, "render_envs": 3},
    "puzzle-pong": {"num_envs": 3, "render_envs": 3},
    "ant": {"num_envs": 2, "render_envs": 2},
    "modular-walkers": {
        "num_envs": 2,
        "render_envs": 2,
        "bodies": ("walker_2_main", "walker_5_main"),
    },
}
NAMES = sorted(registry.WORLDS)
STEPS = 4


def test_every_registered_world_has_a_small_size_here():
    assert sorted(SMALL) == NAMES


def _make(name: str) -> Any:
    if name in ("ant", "modular-walkers"):
        pytest.importorskip("mujoco")
    return registry.make(name, **SMALL[name])


def _numpy(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, dict):
        return {k: _numpy(v) for k, v in x.items()}
    return None if x is None else np.asarray(x)


def _same(a: Any, b: Any) -> bool:
    a, b = _numpy(a), _numpy(b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


def _shapes(obs: Any) -> Any:
    obs = _numpy(obs)
    if isinstance(obs, dict):
        return {k: _shapes(v) for k, v in obs.items()}
    return None if obs is None else (obs.shape, obs.dtype)


def _policy(world: Any, name: str, seed: int = 0):
    spec = registry.spec(name)
    if spec.default_policy is None:
        return lambda obs: None
    return world.policy(spec.default_policy, seed=seed)


def _rollout(name: str, seed: int) -> list[Any]:
    world = _make(name)
    act = _policy(world, name, seed=seed)
    obs = world.reset(seed=seed)
    out = [obs]
    for _ in range(STEPS):
        result = world.step(act(obs))
        obs = result.obs
        out += [obs, result.reward, result.terminated, result.truncated]
    return out


@pytest.mark.parametrize("name", NAMES)
def test_id_metadata_policies_and_render_modes(name):
    spec = registry.spec(name)
    assert spec.id.startswith("colonylab/") and registry.spec(spec.id) is spec
    world = _make(name)
    assert type(world) is type(registry.make(spec.id, **SMALL[name]))
    assert world.metadata["name"] == spec.id
    assert world.metadata["render_modes"] == ["rgb_array"]
    assert world.metadata["render_fps"] > 0
    assert world.policies == spec.policies  # the world declares, the registry lists
    assert not {"none", "zero", "teacher"} & set(spec.policies)
    if spec.policies:
        assert spec.default_policy in spec.policies
    for policy in spec.policies:
        assert callable(world.policy(policy, seed=0))
    with pytest.raises(ValueError):
        world.policy("dance", seed=0)


@pytest.mark.parametrize("name", NAMES)
def test_reset_step_shapes_and_dtypes(name):
    world = _make(name)
    params = inspect.signature(world.reset).parameters
    assert list(params)[:2] == ["seed", "options"]
    assert params["seed"].default is None and params["options"].default is None
    obs = world.reset(seed=0, options=None)
    act = _policy(world, name)
    for _ in range(STEPS):
        result = world.step(act(obs))
        assert isinstance(result, StepResult) and len(tuple(result)) == 5
        assert _shapes(result.obs) == _shapes(obs)
        reward, terminated, truncated = map(
            _numpy, (result.reward, result.terminated, result.truncated)
        )
        assert reward.dtype == np.float32 and terminated.dtype == truncated.dtype == np.bool_
        assert reward.ndim == 1 and terminated.shape == truncated.shape == reward.shape
        assert np.isfinite(reward).all()
        obs = result.obs
    assert world.step_count == STEPS
    world.reset(seed=1)
    assert world.step_count == 0


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_trajectory(name):
    first, again = _rollout(name, seed=3), _rollout(name, seed=3)
    assert len(first) == len(again)
    for i, (a, b) in enumerate(zip(first, again, strict=True)):
        assert _same(a, b), f"{name}: item {i} of the trajectory differs"


def _bad_actions(world: Any, name: str, obs: Any) -> list[Any]:
    """A wrong-shaped and an out-of-range action batch (or any action, for CA)."""
    good = _policy(world, name)(obs)
    if good is None:  # no agents: any action is refused
        return [np.zeros(1, dtype=np.int64)]
    good = _numpy(good)
    wrong_shape = np.concatenate([good, good[:1]])
    out_of_range = np.full_like(good, 10**6 if good.dtype.kind in "iu" else 5.0)
    return [wrong_shape, out_of_range]


@pytest.mark.parametrize("name", NAMES)
def test_bad_action_is_refused_and_state_unchanged(name, state_guard):
    world = _make(name)
    obs = world.reset(seed=0)
    obs = world.step(_policy(world, name)(obs)).obs  # not only the fresh start
    for bad in _bad_actions(world, name, obs):
        snap = state_guard.snapshot(world)
        with pytest.raises(ValueError):
            world.step(bad)
        state_guard.assert_unchanged(world, snap)


@pytest.mark.parametrize("name", NAMES)
def test_render_is_a_picture_and_metrics_are_finite(name):
    world = _make(name)
    obs = world.reset(seed=0)
    act = _policy(world, name)
    for _ in range(2):
        obs = world.step(act(obs)).obs
    try:
        image = world.render_rgb()
    except RuntimeError as exc:  # MuJoCo without an OpenGL context
        pytest.skip(f"{name} cannot render here: {exc}")
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.shape[0] >= 16 and image.shape[1] >= 16
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 1, "a blank picture"
    metrics = world.metrics()
    assert metrics and all(np.isfinite(float(v)) for v in metrics.values()), metrics
    if hasattr(world, "close"):
        world.close()


@pytest.mark.parametrize(
    "name, module", [("battle", "battle_v0"), ("pursuit", "pursuit_v0"), ("gather", "gather_v0")]
)
def test_pettingzoo_names_are_the_registry_ids(name, module):
    import importlib

    env = importlib.import_module(f"colonylab.envs.grid.{module}").parallel_env(**SMALL[name])
    assert env.metadata["name"] == registry.spec(name).id == env.world.metadata["name"]
    assert set(env.metadata["render_modes"]) == {"human", "rgb_array"}  # the adapter opens windows
    env.close()
