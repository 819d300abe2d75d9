"""Replay of MAgent2 itself (fixtures recorded from MAgent2 0.3.4, no MAgent2 needed here).

``tests/envs/data/magent2/*.npz`` (format: ``docs/magent2-rules.md`` section 8):

* deterministic scenarios (agents at given cells, scripted actions, MAgent2's output
  identical under several engine seeds, so the attack order cannot matter): positions,
  alive flags, HP fractions, rewards, views and features must be equal step by step
  (float32, exactly; rewards to 1e-6 for a different summation order), and ``done``;
* stochastic scenarios (attack-heavy random play, armies in contact, >= 40 seeds on
  each side): per group, the mean cumulative deaths at the middle and last step and
  the mean summed reward must agree with MAgent2's within 3 standard errors;
* the PettingZoo layer (MAgent2's own ``parallel_env`` on its default map): agent
  names, ``agents`` before and after each step, rewards, terminations, truncations,
  the observation dict's keys and the kept agents' observations, exactly.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data" / "magent2"
FIXTURES = sorted(DATA.glob("*.npz"))


def _load(path: Path) -> tuple[dict, dict]:
    f = np.load(path)
    return json.loads(str(f["meta"])), {k: f[k] for k in f.files if k != "meta"}


def _kind(path: Path) -> str:
    return _load(path)[0]["kind"]


DETERMINISTIC = [p for p in FIXTURES if _kind(p) == "deterministic"]
STOCHASTIC = [p for p in FIXTURES if _kind(p) == "stochastic"]
PETTINGZOO = [p for p in FIXTURES if _kind(p) == "pettingzoo"]


def _engine(meta: dict, arrays: dict):
    module = importlib.import_module(f"colonylab.envs.magent.{meta['world']}")
    engine = module.world(**meta["kwargs"])
    agents = [arrays[f"agents_g{g}"] for g in range(meta["groups"])]
    engine.reset(seed=0, options={"walls": arrays["walls"], "agents": agents})
    return engine


def _equal(got, expected, what: str, atol: float = 0.0) -> None:
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != MAgent2's {expected.shape}"
    if atol:
        np.testing.assert_allclose(got, expected, rtol=0, atol=atol, err_msg=what)
    else:
        np.testing.assert_array_equal(got, expected, err_msg=what)


def test_there_are_fixtures_for_all_six_worlds():
    worlds = {_load(p)[0]["world"] for p in FIXTURES}
    assert worlds == {
        "battle_v4",
        "battlefield_v5",
        "combined_arms_v6",
        "adversarial_pursuit_v4",
        "tiger_deer_v4",
        "gather_v5",
    }
    assert {_load(p)[0]["world"] for p in DETERMINISTIC} == worlds
    assert {_load(p)[0]["world"] for p in STOCHASTIC} == worlds


@pytest.mark.parametrize("path", DETERMINISTIC, ids=lambda p: p.stem)
def test_deterministic_scenario_replays_exactly(path):
    meta, a = _load(path)
    engine = _engine(meta, a)
    groups, passive = meta["groups"], set(meta["passive_groups"])
    for g in range(groups):
        view, feature = engine.observe(g)
        _equal(engine.positions(g), a[f"pos_init_g{g}"], f"initial positions of group {g}")
        _equal(view, a[f"view_init_g{g}"], f"initial views of group {g}")
        _equal(feature, a[f"feature_init_g{g}"], f"initial features of group {g}")
    for t in range(meta["steps"]):
        actions = [None if g in passive else a[f"actions_t{t}_g{g}"] for g in range(groups)]
        done = engine.step(actions)
        assert done == bool(a[f"done_t{t}"]), f"step {t}: done"
        for g in range(groups):
            at = f"step {t} group {g}"
            _equal(engine.positions(g), a[f"pos_t{t}_g{g}"], f"{at}: positions")
            _equal(engine.alive(g), a[f"alive_t{t}_g{g}"], f"{at}: alive")
            hp = a[f"hp_t{t}_g{g}"]
            live = ~np.isnan(hp)
            _equal((engine.hp(g) / engine.hp_max[g])[live], hp[live], f"{at}: HP fractions")
            _equal(engine.rewards(g), a[f"reward_t{t}_g{g}"], f"{at}: rewards", atol=1e-6)
            view, feature = engine.observe(g)
            _equal(view, a[f"view_t{t}_g{g}"], f"{at}: views")
            _equal(feature, a[f"feature_t{t}_g{g}"], f"{at}: features")
        engine.clear_dead()


def _random_play(meta: dict, a: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One run of the fixture's recipe: deaths int[steps, G], reward sums float[steps, G]."""
    engine = _engine(meta, a)
    engine.reset(
        seed=seed,
        options={"walls": a["walls"], "agents": [a[f"agents_g{g}"] for g in range(meta["groups"])]},
    )
    rng = np.random.default_rng(seed)
    groups, steps, passive = meta["groups"], meta["steps"], set(meta["passive_groups"])
    base, n_actions, p = meta["attack_base"], meta["n_actions"], meta["p_attack"]
    deaths = np.zeros((steps, groups), np.int64)
    rewards = np.zeros((steps, groups), np.float64)
    for t in range(steps):
        actions = []
        for g in range(groups):
            if g in passive:
                actions.append(None)
                continue
            n = engine.num(g)
            u = rng.random(n)
            moves = rng.integers(0, base[g], n)
            if n_actions[g] > base[g]:
                attacks = rng.integers(base[g], n_actions[g], n)
                actions.append(np.where(u < p, attacks, moves).astype(np.int32))
            else:
                actions.append(moves.astype(np.int32))
        engine.step(actions)
        for g in range(groups):
            deaths[t, g] = int((~engine.alive(g)).sum())
            rewards[t, g] = float(engine.rewards(g).astype(np.float64).sum())
        engine.clear_dead()
    return deaths, rewards


@pytest.mark.parametrize("path", STOCHASTIC, ids=lambda p: p.stem)
def test_stochastic_scenario_agrees_within_three_standard_errors(path):
    meta, a = _load(path)
    theirs_deaths = a["deaths"].astype(np.float64)  # [S, steps, G]
    theirs_reward = a["reward_sum"].astype(np.float64)
    seeds = len(a["seeds"])
    assert seeds >= 40
    runs = [_random_play(meta, a, 1000 + s) for s in range(seeds)]
    ours_deaths = np.stack([r[0] for r in runs]).astype(np.float64)
    ours_reward = np.stack([r[1] for r in runs])
    steps = meta["steps"]

    def check(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
        se = np.sqrt(
            ours.var(axis=0, ddof=1) / len(ours) + theirs.var(axis=0, ddof=1) / len(theirs)
        )
        gap = np.abs(ours.mean(axis=0) - theirs.mean(axis=0))
        ok = (gap <= 3 * se) | (gap < 1e-9)
        assert ok.all(), (
            f"{what}: ours {ours.mean(axis=0)} vs MAgent2 {theirs.mean(axis=0)} "
            f"(3 standard errors {3 * se})"
        )

    for t in (steps // 2 - 1, steps - 1):
        check(
            ours_deaths[:, : t + 1].sum(axis=1),
            theirs_deaths[:, : t + 1].sum(axis=1),
            f"deaths by step {t}",
        )
    check(ours_reward.sum(axis=1), theirs_reward.sum(axis=1), "summed rewards")


@pytest.mark.parametrize("path", PETTINGZOO, ids=lambda p: p.stem)
def test_pettingzoo_layer_replays_exactly(path):
    meta, a = _load(path)
    module = importlib.import_module(f"colonylab.envs.magent.{meta['world']}")
    env = module.parallel_env(**meta["kwargs"])
    names = [str(n) for n in a["possible_agents"]]
    assert env.possible_agents == names
    keep = [names[k] for k in a["keep"]]
    obs, _ = env.reset(seed=0)
    _equal(np.stack([obs[n] for n in keep]), a["obs_init"], "observations after reset")
    for t in range(meta["steps"]):
        agents = [names[k] for k in a[f"agents_t{t}"]]
        assert env.agents == agents, f"step {t}: agents before the step"
        actions = dict(zip(agents, a[f"actions_t{t}"].tolist(), strict=True))
        obs, rewards, terminations, truncations, _ = env.step(actions)
        rew = np.array([rewards[n] for n in agents], np.float32)
        _equal(rew, a[f"reward_t{t}"], f"step {t}: rewards", atol=1e-6)
        _equal([terminations[n] for n in agents], a[f"termination_t{t}"], f"step {t}: terminations")
        _equal([truncations[n] for n in agents], a[f"truncation_t{t}"], f"step {t}: truncations")
        _equal(sorted(names.index(n) for n in obs), a[f"obs_keys_t{t}"], f"step {t}: obs keys")
        shape = a[f"obs_t{t}"].shape[1:]
        kept = np.stack([obs.get(n, np.zeros(shape, np.float32)) for n in keep])
        _equal(kept, a[f"obs_t{t}"], f"step {t}: observations")
        assert env.agents == [names[k] for k in a[f"after_t{t}"]], f"step {t}: agents after"
