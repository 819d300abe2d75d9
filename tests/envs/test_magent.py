"""The six MAgent2 worlds (``colonylab.envs.magent``): PettingZoo conformance, MAgent2's
names / shapes / numbering, determinism under a seed and the thread count, one-line
errors. Agreement with MAgent2 itself is ``test_magent2_parity.py``."""

from __future__ import annotations

import importlib
import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, render_test

from colonylab.envs.magent._engine import circle_range

SMALL = {
    "battle_v4": {"map_size": 16},
    "battlefield_v5": {"map_size": 46},
    "combined_arms_v6": {"map_size": 16},
    "adversarial_pursuit_v4": {"map_size": 16},
    "tiger_deer_v4": {"map_size": 16},
    "gather_v5": {"map_size": 60},
}
WORLDS = sorted(SMALL)

# MAgent2 0.3.4 at its defaults: agents per group, view shape, feature size, actions
MAGENT2_DEFAULTS = {
    "battle_v4": [(81, (13, 13, 5), 32, 21), (81, (13, 13, 5), 32, 21)],
    "battlefield_v5": [(12, (13, 13, 5), 32, 21), (12, (13, 13, 5), 32, 21)],
    "combined_arms_v6": [
        (45, (13, 13, 9), 20, 9),
        (36, (13, 13, 9), 36, 25),
        (45, (13, 13, 9), 20, 9),
        (36, (13, 13, 9), 36, 25),
    ],
    "adversarial_pursuit_v4": [(25, (10, 10, 5), 24, 13), (50, (9, 9, 5), 20, 9)],
    "tiger_deer_v4": [(101, (3, 3, 5), 16, 5), (20, (9, 9, 5), 20, 9)],
    "gather_v5": [(2272, (3, 3, 5), 2, 1), (495, (15, 15, 5), 34, 33)],
}
MAGENT2_OBS_FULL = {  # minimap_mode=True, extra_features=True
    "battle_v4": {"red": 41, "blue": 41},
    "combined_arms_v6": {"redmelee": 35, "redranged": 51},
    "adversarial_pursuit_v4": {"predator": 33, "prey": 29},
    "tiger_deer_v4": {"deer": 25, "tiger": 29},
    "gather_v5": {"omnivore": 43},
}


def _module(name: str):
    return importlib.import_module(f"colonylab.envs.magent.{name}")


@pytest.mark.parametrize("name", WORLDS)
def test_magent2_defaults_counts_shapes_and_actions(name):
    env = _module(name).parallel_env()
    engine = env.engine
    got = [
        (engine.num(g), engine.view_shape(g), engine.feature_sizes[g], int(engine.n_actions[g]))
        for g in range(engine.n_groups)
    ]
    assert got == MAGENT2_DEFAULTS[name]
    assert env.metadata["name"] == name
    assert (
        env.possible_agents[0].endswith("_0")
        and len(set(env.possible_agents)) == env.max_num_agents
    )
    if name in MAGENT2_OBS_FULL:
        full = _module(name).parallel_env(minimap_mode=True, extra_features=True)
        channels = {
            a.rsplit("_", 1)[0]: full.observation_space(a).shape[2] for a in full.possible_agents
        }
        assert {k: channels[k] for k in MAGENT2_OBS_FULL[name]} == MAGENT2_OBS_FULL[name]


def test_action_numbering_is_magent2s():
    _, moves = circle_range(2, 0, 1)  # battle: speed 2
    assert (
        moves[0].tolist() == [0, -2]
        and moves[6].tolist() == [0, 0]
        and moves[12].tolist() == [0, 2]
    )
    assert [tuple(m) for m in moves[4:9]] == [(-2, 0), (-1, 0), (0, 0), (1, 0), (2, 0)]
    _, attacks = circle_range(1.5, 0.5, 1)
    assert len(attacks) == 8 and (0, 0) not in [tuple(a) for a in attacks]
    _, ring = circle_range(2, 1.0, 0)  # a 2x2 predator's tag ring
    assert len(ring) == 8
    engine = _module("battle_v4").world(map_size=16)
    engine.reset(options={"agents": [np.array([[5, 5]]), np.array([[10, 10]])]})
    engine.step([np.array([8]), np.array([6])])  # red: (+2, 0); blue: stays
    assert engine.positions(0).tolist() == [[7, 5]] and engine.positions(1).tolist() == [[10, 10]]


@pytest.mark.parametrize("name", WORLDS)
def test_parallel_api(name):
    parallel_api_test(_module(name).parallel_env(**SMALL[name], max_cycles=30), num_cycles=40)


@pytest.mark.parametrize("name", WORLDS)
def test_parallel_seed(name):
    parallel_seed_test(lambda: _module(name).parallel_env(**SMALL[name]), num_cycles=20)


@pytest.mark.parametrize("name", WORLDS)
def test_aec_api_and_render(name):
    module = _module(name)
    api_test(module.env(**SMALL[name], max_cycles=8), num_cycles=10)
    render_test(lambda render_mode=None: module.env(render_mode=render_mode, **SMALL[name]))


def _rollout(name: str, seed: int, threads: int | None, steps: int = 12, **kw) -> list[np.ndarray]:
    env = _module(name).parallel_env(**SMALL[name], **kw)
    env.engine.requested_threads = threads
    obs, _ = env.reset(seed=seed)
    if threads is not None:
        env.engine.kernel_threads = threads
    rng = np.random.default_rng(seed)
    out = [np.concatenate([obs[a].ravel() for a in sorted(obs)])]
    for _ in range(steps):
        if not env.agents:
            break
        actions = {a: int(rng.integers(env.action_space(a).n)) for a in env.agents}
        obs, rew, term, trunc, _ = env.step(actions)
        out.append(np.concatenate([obs[a].ravel() for a in sorted(obs)]))
        out.append(np.array([rew[a] for a in sorted(rew)]))
        out.append(np.array([term[a] for a in sorted(term)]))
        out.append(env.engine.pos.copy())
    return out


@pytest.mark.parametrize("name", ["battle_v4", "combined_arms_v6", "tiger_deer_v4"])
def test_same_seed_same_episode_twice(name):
    first = _rollout(name, 5, threads=1, minimap_mode=True, extra_features=True)
    again = _rollout(name, 5, threads=1, minimap_mode=True, extra_features=True)
    assert len(first) == len(again)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    other = _rollout(name, 6, threads=1, minimap_mode=True, extra_features=True)
    assert any(
        a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(first, other, strict=False)
    )


THREADS_SCRIPT = """
import numba, numpy as np
from colonylab.envs.magent import battle_v4
threads = numba.config.NUMBA_NUM_THREADS
engine = battle_v4.world(map_size=40, minimap_mode=True, threads=threads, seed=2)
assert engine.kernel_threads == threads
rng = np.random.default_rng(2)
out = {{}}
for t in range(15):
    engine.step([rng.integers(0, 21, engine.num(g)).astype(np.int32) for g in range(2)])
    for g in range(2):
        view, feature = engine.observe(g)
        out[f"v{{t}}{{g}}"], out[f"f{{t}}{{g}}"] = view.copy(), feature.copy()
        out[f"r{{t}}{{g}}"], out[f"p{{t}}{{g}}"] = engine.rewards(g), engine.positions(g)
    engine.clear_dead()
np.savez("out.npz", threads=threads, **out)
"""


def test_same_episode_on_another_thread_count(script):
    here = script.here(THREADS_SCRIPT.format())
    other = 2 if int(here["threads"]) == 1 else 1
    there = script.elsewhere(THREADS_SCRIPT.format(), NUMBA_NUM_THREADS=str(other))
    assert int(there["threads"]) == other != int(here["threads"])
    for key in here:
        if key != "threads":
            np.testing.assert_array_equal(there[key], here[key], err_msg=key)


def test_python_path_agrees_with_the_kernels(script):
    code = """
        import numpy as np
        from colonylab.envs.magent import battle_v4
        engine = battle_v4.world(map_size=16, minimap_mode=True)
        engine.reset(seed=3)
        rng = np.random.default_rng(3)
        out = {}
        for t in range(10):
            engine.step([rng.integers(13, 21, engine.num(g)).astype(np.int32) if t > 2
                         else np.full(engine.num(g), 8 - 4 * g, np.int32) for g in range(2)])
            for g in range(2):
                view, feature = engine.observe(g)
                out[f"v{t}{g}"], out[f"f{t}{g}"] = view, feature
                out[f"r{t}{g}"], out[f"h{t}{g}"] = engine.rewards(g), engine.hp(g)
            engine.clear_dead()
        np.savez("out.npz", **out)
    """
    got, want = script.elsewhere(code, NUMBA_DISABLE_JIT="1"), script.here(code)
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_engine_refuses_bad_input_in_one_line():
    engine = _module("battle_v4").world(map_size=16)
    n = engine.num(0)
    cases = [
        (
            lambda: engine.step([np.zeros(n + 1, np.int32), np.zeros(n, np.int32)]),
            "actions of group 0",
        ),
        (
            lambda: engine.step([np.full(n, 21, np.int32), np.zeros(n, np.int32)]),
            "outside \\[0, 21\\)",
        ),
        (lambda: engine.step([np.zeros(n, np.int32)]), "one per group"),
        (
            lambda: engine.reset(options={"agents": [np.array([[0, 0]]), np.zeros((0, 2), int)]}),
            "free cells",
        ),
        (lambda: engine.reset(options={"agents": [np.array([[3, 3]])]}), "2 arrays"),
        (
            lambda: engine.reset(
                options={"agents": [np.array([[3, 3], [3, 3]]), np.zeros((0, 2), int)]}
            ),
            "free cells",
        ),
        (lambda: engine.reset(options={"wall": []}), "unknown reset option"),
        (lambda: engine.reset(seed=-1), "seed"),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match) as info:
            call()
        assert "\n" not in str(info.value)
    pos = engine.pos.copy()
    with pytest.raises(ValueError):
        engine.step([np.zeros(n, np.int32), np.full(engine.num(1), 99, np.int32)])
    np.testing.assert_array_equal(engine.pos, pos)  # nothing half-applied
    engine.step([np.full(n, 6, np.int32), np.full(engine.num(1), 6, np.int32)])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"map_size": 11}, "map_size must be an integer >= 12"),
        ({"max_cycles": 0}, "max_cycles"),
        ({"minimap_mode": 1}, "minimap_mode"),
        ({"step_reward": float("nan")}, "step_reward"),
        ({"render_mode": "ansi"}, "render_mode"),
    ],
)
def test_bad_arguments_are_one_line_errors(kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        _module("battle_v4").parallel_env(**kwargs)
    assert "\n" not in str(info.value)


def test_a_freed_cell_can_be_entered_and_the_dead_never_strike():
    engine = _module("battle_v4").world(map_size=16)
    # red 0 at (5, 5) steps right out of (5, 5); red 1 at (4, 5) then steps into it
    engine.reset(options={"agents": [np.array([[5, 5], [3, 5]]), np.array([[12, 12]])]})
    engine.step([np.array([7, 8], np.int32), np.array([6], np.int32)])
    assert engine.positions(0).tolist() == [[6, 5], [5, 5]]
    # a blue at 1 HP short of death attacks red; red kills it first or not, never both land
    engine.reset(options={"agents": [np.array([[5, 5]]), np.array([[6, 5]])]})
    for _ in range(5):
        engine.step([np.array([17], np.int32), np.array([6], np.int32)])  # red hits (+1, 0)
        engine.clear_dead()
    assert engine.hp(1)[0] < 1.0
    engine.step([np.array([17], np.int32), np.array([16], np.int32)])  # both strike
    assert not engine.alive(1)[0]
    red_hp, red_reward = engine.hp(0)[0], engine.rewards(0)[0]
    # the blue died either before striking (red untouched) or after (red hit once)
    assert red_hp in (np.float32(10.0), np.float32(8.1))
    assert red_reward == pytest.approx(5 - 0.1 - 0.005, abs=1e-6)  # the kill, no +0.2
