"""What the three grid worlds (battle, gather, pursuit) and their PettingZoo adapters
(battle_v0, gather_v0, pursuit_v0) all must do, run once per world. What only one world
does (its rules, names, births, its own action ranges) is tested in that world's file."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from colonylab.envs.grid import battle_v0, gather_v0, pursuit_v0
from colonylab.envs.grid.battle import BattleConfig, BattleWorld
from colonylab.envs.grid.gather import GatherConfig, GatherWorld
from colonylab.envs.grid.pursuit import PursuitConfig, PursuitWorld

# six agents on a 10 x 10 map, per world (keywords: more config fields)
SIX = {
    "battle": lambda **kw: BattleWorld(BattleConfig(map_size=10, agents_per_team=3, **kw)),
    "gather": lambda **kw: GatherWorld(GatherConfig(map_size=10, agents=6, **kw)),
    "pursuit": lambda **kw: PursuitWorld(PursuitConfig(map_size=10, predators=3, prey=3, **kw)),
}
DEFAULT_POLICY = {"battle": "greedy", "gather": "forage", "pursuit": "greedy"}


@pytest.mark.parametrize("name", list(SIX))
@pytest.mark.parametrize(
    "actions, match",
    [
        (np.zeros(5, dtype=np.int64), r"shape \(6,\)"),
        (np.zeros((6, 1), dtype=np.int64), r"shape \(6,\)"),
        (np.array(["0"] * 6), "integers"),
        (np.zeros(6, dtype=bool), "integers"),
        (np.array([0, 0, 0, -1, 0, 0]), r"actions\[3\].*-1"),
        (np.array([0, 0, 0, 0, np.nan, 0]), r"actions\[4\].*nan"),
        (np.array([0, 1.5, 0, 0, 0, 0]), r"actions\[1\].*1\.5"),
    ],
)
def test_bad_actions_are_refused_and_change_nothing(name, actions, match, state_guard):
    world = SIX[name]()
    world.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(3):
        world.step(rng.integers(0, 9, world.n_agents))  # moves and some attacks
    state_guard.assert_refused(world, lambda: world.step(actions), match, views=True)


@pytest.mark.parametrize("name", list(SIX))
def test_dead_agents_actions_are_ignored_and_floats_accepted(name):
    world = SIX[name]()
    world.reset(seed=0)
    pos = np.zeros((6, 2), dtype=np.int64)
    pos[0], pos[3] = (5, 4), (5, 5)
    world.set_state(pos, alive=np.array([True, False, False, True, False, False]))
    world.step(np.array([2.0, 99, -5, 0, 1e9, np.nan]))  # agents 1, 2, 4, 5 are dead
    assert tuple(world.pos[0]) == (5, 4)  # east (action 2) was occupied by agent 3
    world.step(np.array([0, 99, -5, 3, 1e9, 2**40], dtype=np.int64))
    assert tuple(world.pos[3]) == (6, 5)  # south (action 3)


@pytest.mark.parametrize("name", list(SIX))
def test_step_before_reset_is_refused(name):
    with pytest.raises(RuntimeError, match="reset"):
        SIX[name]().step()


@pytest.mark.parametrize("name", list(SIX))
def test_default_policy_drives_step_without_actions(name):
    world = SIX[name]()
    world.reset(seed=0)
    start = world.pos.copy()
    world.step()  # no policy: everyone waits
    np.testing.assert_array_equal(world.pos, start)
    world.default_policy = world.policy(DEFAULT_POLICY[name], seed=0)
    world.step()
    assert (world.pos != start).any() and (world.last_action != 0).any()
    with pytest.raises(ValueError, match="C-contiguous float32"):
        world.observe(out=np.zeros((6, *world.view_shape), dtype=np.float64))


@pytest.mark.parametrize("name", list(SIX))
def test_max_cycles_truncates_the_living(name):
    world = SIX[name](max_cycles=3)
    world.reset(seed=0)
    pos = np.zeros((6, 2), dtype=np.int64)
    pos[0], pos[3] = (5, 4), (5, 5)
    world.set_state(pos, alive=np.array([True, False, False, True, False, False]))
    for _ in range(2):
        assert not world.step().truncated.any()
    assert world.step().truncated.tolist() == [True, False, False, True, False, False]


@pytest.mark.parametrize(
    "world",
    [
        BattleWorld(
            BattleConfig(map_size=14, agents_per_team=30, placement="random", extra_features=True)
        ),
        GatherWorld(
            GatherConfig(map_size=14, agents=30, patches=3, patch_radius=2, extra_features=True)
        ),
    ],
    ids=["battle", "gather"],
)
def test_extra_features_match_reference(world):
    """id bits within the agent's team, last action one-hot, last reward, position / (H - 1)."""
    obs = world.reset(seed=2)
    assert set(obs) == {"view", "features"}
    rng = np.random.default_rng(2)
    for _ in range(4):
        obs, reward, *_ = world.step(rng.integers(0, 21, world.n_agents))
    feats = obs["features"]
    bits = world.id_bits
    assert bits == 5 and feats.shape == (world.n_agents, bits + 21 + 3)
    team_size = world.n_agents // len(world.team_names)
    for i in range(world.n_agents):
        if not world.alive[i]:
            assert not feats[i].any()
            continue
        index = i % team_size
        np.testing.assert_array_equal(feats[i, :bits], [(index >> b) & 1 for b in range(bits)])
        onehot = np.zeros(21, dtype=np.float32)
        onehot[world.last_action[i]] = 1
        np.testing.assert_array_equal(feats[i, bits : bits + 21], onehot)
        assert feats[i, bits + 21] == reward[i]
        np.testing.assert_allclose(feats[i, bits + 22 :], world.pos[i] / 13, rtol=1e-6)


# module, a small config, the first agent's name
WORLDS = {
    "battle": (battle_v0, {"map_size": 16, "agents_per_team": 12, "placement": "random"}, "red_0"),
    "gather": (
        gather_v0,
        {"map_size": 16, "agents": 24, "patches": 3, "patch_radius": 2},
        "agent_0",
    ),
    "pursuit": (pursuit_v0, {"map_size": 16, "predators": 8, "prey": 16}, "predator_0"),
}
# the observation variants every adapter must pass parallel_api_test with
VARIANTS = {
    "battle": [{}, {"extra_features": True}, {"obs_dtype": "uint8", "minimap": True}],
    "gather": [{}, {"extra_features": True}, {"obs_dtype": "uint8", "minimap": True}],
    "pursuit": [{}, {"obs_dtype": "uint8", "minimap": True}],
}
API_CYCLES = {"battle": 120, "gather": 120, "pursuit": 100}


@pytest.mark.parametrize(
    "name, extra", [(name, extra) for name, extras in VARIANTS.items() for extra in extras]
)
def test_parallel_api(name, extra):
    from pettingzoo.test import parallel_api_test

    module, config, _ = WORLDS[name]
    env = module.parallel_env(**config, **extra)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PettingZoo warns about API slips
        parallel_api_test(env, num_cycles=API_CYCLES[name])
    obs, _ = env.reset(seed=0)
    assert set(obs) == set(env.agents) and len(env.agents) == 24
    for agent in env.agents:
        assert env.observation_space(agent).contains(obs[agent])
    assert env.state_space.contains(env.state())


@pytest.mark.parametrize("name", list(WORLDS))
def test_parallel_seed_and_render(name):
    from pettingzoo.test import parallel_seed_test, render_test

    module, config, _ = WORLDS[name]
    parallel_seed_test(lambda: module.parallel_env(**config), num_cycles=50)
    render_test(lambda render_mode=None: module.env(render_mode=render_mode, **config))
    env = module.parallel_env(render_mode="rgb_array", **config)
    env.reset(seed=0)
    assert env.render().shape == (400, 400, 3)
    with pytest.raises(ValueError, match="render_mode"):
        module.parallel_env(render_mode="ansi", **config)


@pytest.mark.parametrize("name", list(WORLDS))
def test_dict_api_truncates_everyone_at_max_cycles(name):
    module, config, first = WORLDS[name]
    env = module.parallel_env(**config, max_cycles=5)
    env.reset(seed=0)
    for _ in range(5):
        _, _, _, truncations, _ = env.step({a: 0 for a in env.agents})
    assert all(truncations.values()) and env.agents == []
    with pytest.raises(ValueError, match="done"):
        env.step({first: 0})
    env.close()


@pytest.mark.parametrize("name", list(WORLDS))
def test_dict_api_refuses_what_is_not_a_dict_of_integers(name, state_guard):
    module, config, first = WORLDS[name]
    env = module.parallel_env(**config)
    env.reset(seed=0)
    before = state_guard.snapshot(env.world)
    with pytest.raises(TypeError, match="dict"):
        env.step([0] * 24)
    for value in (None, "2", True, 1.5, float("nan"), -1):
        with pytest.raises(ValueError, match=re.escape(first) + ".*" + re.escape(repr(value))):
            env.step({first: value})
    with pytest.raises(ValueError, match=re.escape(first) + ".*nan"):
        env.step({env.agents[1]: 0, first: float("nan")})  # names the bad one, not the first
    with pytest.raises(ValueError, match="unknown agent 'nobody_0'"):
        env.step({first: 0, "nobody_0": 0})
    state_guard.assert_unchanged(env.world, before)
    env.step({first: np.int64(0)})  # numpy ints and integral floats are fine
    env.step({first: 0.0})
    env.close()


@pytest.mark.parametrize(
    "module, make_world, config",
    [
        (
            battle_v0,
            lambda **cfg: BattleWorld(BattleConfig(**cfg)),
            {"map_size": 20, "agents_per_team": 15, "placement": "random", "max_hp": 2.0},
        ),
        (
            gather_v0,
            lambda **cfg: GatherWorld(GatherConfig(**cfg)),
            {"map_size": 20, "agents": 30, "max_hp": 4.0, "hunger": 0.2},
        ),
    ],
    ids=["battle", "gather"],
)
def test_dict_api_matches_array_world(module, make_world, config):
    env = module.parallel_env(**config)
    obs, infos = env.reset(seed=4)
    world = make_world(**config)
    world_obs = world.reset(seed=4)
    rng = np.random.default_rng(4)
    held = []
    for _ in range(40):
        actions = rng.integers(0, 21, world.n_agents)
        world_obs, reward, terminated, *_ = world.step(actions)
        live = env.agents
        obs, rewards, terms, truncs, _ = env.step(
            {a: int(actions[env.agent_name_mapping[a]]) for a in live}
        )
        held.append((obs, {a: v.copy() for a, v in obs.items()}))
        assert set(obs) == set(live)
        for agent in live:
            i = env.agent_name_mapping[agent]
            np.testing.assert_array_equal(obs[agent], world_obs[i])
            assert rewards[agent] == reward[i] and terms[agent] == terminated[i]
        assert set(env.agents) == {
            a for a in env.possible_agents if world.alive[env.agent_name_mapping[a]]
        }
    assert len(env.agents) < world.n_agents  # agents died and left
    for obs, copies in held:  # returned observations never change afterwards
        for agent, view in copies.items():
            np.testing.assert_array_equal(obs[agent], view)
    np.testing.assert_array_equal(env.state(), world.state())
