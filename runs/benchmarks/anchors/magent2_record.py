"""Record MAgent2 ground truth for the parity tests of ``colonylab.envs.magent``.

Runs inside the separate MAgent2 venv (``.venv-magent``; magent2 0.3.4 needs pygame-ce)
and imports nothing from colonylab. For each of the six PettingZoo worlds it builds
MAgent2's own engine with the world's own config (``<world>.parallel_env(**kwargs).env``,
a ``magent2.GridWorld``), places walls and agents at given cells through MAgent2's API
(``add_walls(method="custom")``, ``add_agents(handle, method="custom")``) and records:

* deterministic scenarios: scripted actions; per step the actions per group and the
  engine's outputs (``get_observation`` views and features, ``get_reward``,
  ``get_alive``, ``get_pos``, the own HP fraction read from the view) exactly as
  MAgent2 returns them. Each scenario is run under three engine seeds (MAgent2
  shuffles the attacks with its seeded engine) and must give identical outputs, so
  the attack order cannot matter;
* stochastic scenarios: attack-heavy random play with the armies in contact, many
  seeds; per seed, step and group the deaths and the summed rewards.

The files are compressed ``.npz``; docs/magent2-rules.md describes the format.

    .venv-magent/bin/python runs/benchmarks/anchors/magent2_record.py \\
        --out tests/envs/data/magent2 [--only battle_v4]
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
from pathlib import Path

import numpy as np

MAGENT2_VERSION = "0.3.4"

# per world, per group (MAgent2's handle order): (body width, speed, attack radius,
# group name); the names are MAgent2's agent-name prefixes (gather's food has none)
TYPES = {
    "battle_v4": [(1, 2, 1.5, "red"), (1, 2, 1.5, "blue")],
    "battlefield_v5": [(1, 2, 1.5, "red"), (1, 2, 1.5, "blue")],
    "combined_arms_v6": [
        (1, 1, 1, "redmelee"),
        (1, 2, 2, "redranged"),
        (1, 1, 1, "bluemelee"),
        (1, 2, 2, "blueranged"),
    ],
    "adversarial_pursuit_v4": [(2, 1, 2, "predator"), (1, 1.5, 0, "prey")],
    "tiger_deer_v4": [(1, 1, 0, "deer"), (1, 1, 1, "tiger")],
    "gather_v5": [(1, 0, 0, "food"), (1, 3, 1, "omnivore")],
}
# groups that MAgent2's PettingZoo env never gives actions (gather's food)
PASSIVE = {"gather_v5": {0}}


def circle_cells(radius: float, inner: float, parity: int) -> list[tuple[int, int]]:
    """The (dx, dy) of a circular range in MAgent2's numbering (row by row, dy then dx)."""
    eps = 1e-8
    width = 2 * int(radius + eps) + parity
    if width % 2 != parity:
        width += 1
    center = int(radius)
    delta = 0.5 if parity == 0 else 0.0
    cells = []
    for i in range(width):
        for j in range(width):
            dis = math.hypot(j - center + delta, i - center + delta)
            if dis < radius + eps and dis > inner - eps:
                cells.append((j - center, i - center))
    return cells


class Actions:
    """Action numbers of one group: moves first, then attacks (no turn actions)."""

    def __init__(self, width: int, speed: float, attack_radius: float):
        self.width = width
        self.moves = circle_cells(speed, 0.0, 1)
        self.attacks = circle_cells(attack_radius, width / 2.0, width % 2)
        self.attack_base = len(self.moves)
        self.n = self.attack_base + len(self.attacks)

    def move(self, dx: int, dy: int) -> int:
        return self.moves.index((dx, dy))

    def stay(self) -> int:
        return self.moves.index((0, 0))

    def attack_cell(self, pos, target) -> int:
        """The attack action from anchor cell ``pos`` at map cell ``target``."""
        off = self.width // 2
        d = (int(target[0]) - int(pos[0]) - off, int(target[1]) - int(pos[1]) - off)
        return self.attack_base + self.attacks.index(d)


def make_engine(world: str, kwargs: dict):
    """MAgent2's GridWorld configured exactly as the PettingZoo world configures it."""
    mod = importlib.import_module(f"magent2.environments.{world}")
    penv = mod.parallel_env(**kwargs)
    return penv, penv.env


def place(gw, walls, agents):
    gw.reset()
    if len(walls):
        gw.add_walls(method="custom", pos=[[int(x), int(y)] for x, y in walls])
    handles = gw.get_handles()
    for h, cells in zip(handles, agents, strict=True):
        if len(cells):
            gw.add_agents(h, method="custom", pos=[[int(x), int(y), 0] for x, y in cells])
        assert gw.get_num(h) == len(cells), f"agents of group {h.value} overlap"
    return handles


def observe(gw, h):
    view, feature = gw.get_observation(h)
    return np.array(view, copy=True), np.array(feature, copy=True)


def hp_frac(view, alive):
    """Own HP / max HP from the view: own-group HP plane (channel 2) at the view centre
    (the agent's own cell, also for 2x2 bodies); NaN for agents dead this step."""
    h, w = view.shape[1] // 2, view.shape[2] // 2
    out = view[:, h, w, 2].astype(np.float32).copy()
    out[~alive] = np.nan
    return out


# ---------------------------------------------------------------- deterministic


def run_script(world, kwargs, walls, agents, script, steps, engine_seed):
    """Run a scripted scenario; returns the dict of arrays of the fixture."""
    _, gw = make_engine(world, kwargs)
    gw.set_seed(engine_seed)
    handles = place(gw, walls, agents)
    types = [Actions(*t[:3]) for t in TYPES[world]]
    passive = PASSIVE.get(world, set())
    n_groups = len(handles)
    rec: dict[str, np.ndarray] = {"walls": np.asarray(walls, np.int32).reshape(-1, 2)}
    index = []  # original index (in the initial list) of each agent in MAgent2's list
    for g, h in enumerate(handles):
        rec[f"agents_g{g}"] = np.asarray(agents[g], np.int32).reshape(-1, 2)
        rec[f"ids_g{g}"] = gw.get_agent_id(h).astype(np.int32)
        view, feat = observe(gw, h)
        rec[f"view_init_g{g}"], rec[f"feature_init_g{g}"] = view, feat
        rec[f"pos_init_g{g}"] = gw.get_pos(h).astype(np.int32)
        rec[f"hp_init_g{g}"] = hp_frac(view, np.ones(len(view), bool))
        index.append(np.arange(len(agents[g])))
    for t in range(steps):
        pos = [gw.get_pos(h).astype(np.int32) for h in handles]
        for g, h in enumerate(handles):
            rec[f"index_t{t}_g{g}"] = index[g].astype(np.int32)
            if g in passive:
                continue
            acts = np.full(len(index[g]), types[g].stay(), np.int32)
            for k, orig in enumerate(index[g]):
                a = script(t, g, int(orig), pos[g][k], types[g])
                if a is not None:
                    acts[k] = a
            rec[f"actions_t{t}_g{g}"] = acts
            gw.set_action(h, acts)
        rec[f"done_t{t}"] = np.array(gw.step())
        for g, h in enumerate(handles):
            view, feat = observe(gw, h)
            alive = gw.get_alive(h).astype(bool)
            rec[f"view_t{t}_g{g}"] = view
            rec[f"feature_t{t}_g{g}"] = feat
            rec[f"reward_t{t}_g{g}"] = gw.get_reward(h).astype(np.float32)
            rec[f"alive_t{t}_g{g}"] = alive
            rec[f"pos_t{t}_g{g}"] = gw.get_pos(h).astype(np.int32)
            rec[f"hp_t{t}_g{g}"] = hp_frac(view, alive)
            index[g] = index[g][alive]
        gw.clear_dead()
    rec["_groups"] = np.array(n_groups)
    return rec


def same_records(a, b):
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = a[k], b[k]
        if x.shape != y.shape:
            return False
        if x.dtype.kind == "f":
            if not np.array_equal(x, y, equal_nan=True):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


def record_deterministic(name, world, kwargs, walls, agents, script, steps, describe, out):
    runs = [run_script(world, kwargs, walls, agents, script, steps, s) for s in (0, 1, 12345)]
    for other in runs[1:]:
        if not same_records(runs[0], other):
            raise AssertionError(f"{name}: outputs depend on MAgent2's attack shuffle seed")
    rec = runs[0]
    n_groups = int(rec.pop("_groups"))
    meta = {
        "format": 1,
        "kind": "deterministic",
        "name": name,
        "world": world,
        "kwargs": kwargs,
        "steps": steps,
        "groups": n_groups,
        "group_names": [t[3] for t in TYPES[world]],
        "passive_groups": sorted(PASSIVE.get(world, set())),
        "magent2": MAGENT2_VERSION,
        "engine_seeds_checked": [0, 1, 12345],
        "description": describe,
    }
    rec["meta"] = np.array(json.dumps(meta))
    path = Path(out) / f"{name}.npz"
    np.savez_compressed(path, **rec)
    deaths = [
        int(sum((~rec[f"alive_t{t}_g{g}"]).sum() for t in range(steps))) for g in range(n_groups)
    ]
    print(f"{path}: {path.stat().st_size / 1024:.1f} KB, deaths per group {deaths}")
    return rec


# ----------------------------------------------------------------- scenarios


def battle_duel_script(t, g, orig, pos, act):
    """A 16x16 battle, 4 red and 4 blue agents and 3 walls (see the description)."""
    # red 0 hits blue 0 every step; blue 0 dies at the 6th hit (t=5): it hits back
    # (red 0) until t=4 and stays put at t=5
    if g == 0 and orig == 0 and t <= 5:
        return act.attack_cell(pos, (6, 5))
    if g == 1 and orig == 0 and t <= 4:
        return act.attack_cell(pos, (5, 5))
    # red 1 steps diagonally into blue 0's cell in the step blue 0 dies (t=5): the
    # attacks (and the removal of the dead) come before the moves
    if g == 0 and orig == 1 and t == 5:
        return act.move(1, -1)
    # red 2 jumps over the wall at (9, 8): (9, 7) -> (9, 9) with a speed-2 move
    if g == 0 and orig == 2:
        if t == 0:
            return act.move(0, 2)
        if t == 1:
            return act.attack_cell(pos, (9, 8))  # attacks a wall: penalty only
        if t == 2:
            return act.attack_cell(pos, (10, 10))  # empty cell: penalty only
    # red 3 attacks its own team-mate red 2 (battle: no attack in group -> a blank attack)
    if g == 0 and orig == 3 and t == 3:
        return act.attack_cell(pos, (pos[0] + 1, pos[1]))
    # blue 1 (earlier in order) tries to enter the cell blue 2 leaves later: blocked;
    # blue 3 (later in order) enters the cell blue 2 left: succeeds
    if g == 1 and orig == 1 and t == 1:
        return act.move(-1, 0)
    if g == 1 and orig == 2 and t == 1:
        return act.move(0, -1)
    if g == 1 and orig == 3 and t == 1:
        return act.move(0, -1)
    if g == 1 and orig == 3 and t == 2:
        return act.move(-2, 0)
    # blue 2 walks to red 2 ((11, 5) -> (11, 7) -> (10, 8)) and hits it twice (t=4, 5)
    if g == 1 and orig == 2 and t == 2:
        return act.move(0, 2)
    if g == 1 and orig == 2 and t == 3:
        return act.move(-1, 1)
    if g == 1 and orig == 2 and t in (4, 5):
        return act.attack_cell(pos, (9, 9))
    return None


def battle_scenarios(out):
    # red 0 (5,5) vs blue 0 (6,5); red 1 (5,6); red 2 (9,7) below the wall (9,8);
    # red 3 (8,9) next to where red 2 lands; blue 1 (12,6), blue 2 (11,6) moving up,
    # blue 3 (11,7) following into blue 2's old cell; blue 2 later hits red 2 at (9,9)
    walls = [(9, 8), (3, 3), (3, 4)]
    agents = [
        [(5, 5), (5, 6), (9, 7), (8, 9)],
        [(6, 5), (12, 6), (11, 6), (11, 7)],
    ]
    describe = (
        "red 0 kills blue 0 with 6 hits (t=0..5; blue 0 hits back t=0..4, HP recovery "
        "0.1/step visible); red 1 walks into blue 0's cell in the step blue 0 dies; red 2 jumps a wall "
        "with a speed-2 move, attacks the wall and an empty cell (penalty only); red 3 "
        "attacks a team-mate (no damage in battle); blue 1 is blocked by blue 2 who "
        "moves later in order, blue 3 enters blue 2's freed cell (sequential moves); "
        "blue 2 hits red 2 twice"
    )
    record_deterministic(
        "battle_v4_duel",
        "battle_v4",
        {"map_size": 16},
        walls,
        agents,
        battle_duel_script,
        9,
        describe,
        out,
    )
    # the same with the minimap (13x13 minimap over a 20x20 map) and custom rewards
    record_deterministic(
        "battle_v4_minimap",
        "battle_v4",
        {
            "map_size": 20,
            "minimap_mode": True,
            "extra_features": True,
            "attack_opponent_reward": 0.3,
            "step_reward": -0.01,
        },
        walls + [(17, 17)],
        [agents[0] + [(15, 14)], agents[1] + [(17, 3)]],
        battle_duel_script,
        7,
        describe + "; plus one far agent per team; minimap on, custom rewards",
        out,
    )

    # MAgent2's own default layout (45x45, 81 vs 81): 3 steps of random moves only
    # (no attacks, so no shuffle): many blocked and freed-cell moves in id order
    penv, gw = make_engine("battle_v4", {})
    layout = [gw.get_pos(h).astype(np.int32) for h in gw.get_handles()]
    rng = np.random.default_rng(7)
    moves = {(t, g): rng.integers(0, 13, len(layout[g])) for t in range(3) for g in range(2)}

    def default_script(t, g, orig, pos, act):
        return int(moves[(t, g)][orig])

    record_deterministic(
        "battle_v4_default_moves",
        "battle_v4",
        {},
        [],
        layout,
        default_script,
        3,
        "MAgent2's default 45x45 layout (81 vs 81), 3 steps of random moves only",
        out,
    )


# ------------------------------------------------------------------ stochastic


def random_actions(rng, n, act: Actions, p_attack: float):
    """The action-sampling recipe of the stochastic fixtures (per group, alive agents)."""
    u = rng.random(n)
    moves = rng.integers(0, act.attack_base, n)
    if act.n > act.attack_base:
        attacks = rng.integers(act.attack_base, act.n, n)
        return np.where(u < p_attack, attacks, moves).astype(np.int32)
    return moves.astype(np.int32)


def record_stochastic(name, world, kwargs, walls, agents, steps, seeds, p_attack, describe, out):
    types = [Actions(*t[:3]) for t in TYPES[world]]
    passive = PASSIVE.get(world, set())
    _, gw = make_engine(world, kwargs)
    n_groups = len(gw.get_handles())
    deaths = np.zeros((len(seeds), steps, n_groups), np.int16)
    rewards = np.zeros((len(seeds), steps, n_groups), np.float32)
    alive_end = np.zeros((len(seeds), n_groups), np.int16)
    for s, seed in enumerate(seeds):
        gw.set_seed(int(seed))
        handles = place(gw, walls, agents)
        rng = np.random.default_rng(int(seed))
        for t in range(steps):
            for g, h in enumerate(handles):
                if g in passive:
                    continue
                gw.set_action(h, random_actions(rng, gw.get_num(h), types[g], p_attack))
            gw.step()
            for g, h in enumerate(handles):
                deaths[s, t, g] = int((~gw.get_alive(h)).sum())
                rewards[s, t, g] = float(gw.get_reward(h).astype(np.float64).sum())
            gw.clear_dead()
        alive_end[s] = [gw.get_num(h) for h in handles]
    meta = {
        "format": 1,
        "kind": "stochastic",
        "name": name,
        "world": world,
        "kwargs": kwargs,
        "steps": steps,
        "groups": n_groups,
        "group_names": [t[3] for t in TYPES[world]],
        "passive_groups": sorted(passive),
        "magent2": MAGENT2_VERSION,
        "p_attack": p_attack,
        "recipe": (
            "per seed: rng = numpy.random.default_rng(seed); each step, for each group "
            "in handle order that is not passive, n = alive agents: u = rng.random(n); "
            "moves = rng.integers(0, attack_base, n); if the group has attack actions: "
            "attacks = rng.integers(attack_base, n_actions, n); "
            "actions = where(u < p_attack, attacks, moves) else actions = moves; "
            "MAgent2's engine seed (attack shuffle) = seed"
        ),
        "attack_base": [t.attack_base for t in types],
        "n_actions": [t.n for t in types],
        "description": describe,
    }
    path = Path(out) / f"{name}.npz"
    np.savez_compressed(
        path,
        meta=np.array(json.dumps(meta)),
        walls=np.asarray(walls, np.int32).reshape(-1, 2),
        **{f"agents_g{g}": np.asarray(agents[g], np.int32).reshape(-1, 2) for g in range(n_groups)},
        seeds=np.asarray(seeds, np.int64),
        deaths=deaths,
        reward_sum=rewards,
        alive_end=alive_end,
    )
    tot = deaths.sum(axis=1)
    print(
        f"{path}: {path.stat().st_size / 1024:.1f} KB, deaths per group mean "
        f"{tot.mean(0).round(2).tolist()} sd {tot.std(0, ddof=1).round(2).tolist()}"
    )


def interleaved(x0, y0, w, h, n_groups, skip=()):
    """Cells of a w x h block starting at (x0, y0), dealt to groups in a checkerboard."""
    cells = [[] for _ in range(n_groups)]
    for y in range(y0, y0 + h):
        for x in range(x0, x0 + w):
            if (x, y) in skip:
                continue
            cells[(x + y) % n_groups].append((x, y))
    return cells


SEEDS = list(range(48))


def battle_stochastic(out):
    agents = interleaved(8, 8, 10, 10, 2)
    record_stochastic(
        "battle_v4_random",
        "battle_v4",
        {"map_size": 26},
        [(5, 5), (5, 6), (6, 5)],
        agents,
        30,
        SEEDS,
        0.8,
        "26x26 map, 50 vs 50 on a checkerboard (every agent next to enemies), "
        "p_attack 0.8, 30 steps",
        out,
    )


WORLD_RECORDERS = {
    "battle_v4": [battle_scenarios, battle_stochastic],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="tests/envs/data/magent2")
    parser.add_argument("--only", default="", help="comma-separated worlds (default all)")
    args = parser.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    only = [w for w in args.only.split(",") if w]
    for world, recorders in WORLD_RECORDERS.items():
        if only and world not in only:
            continue
        for rec in recorders:
            rec(args.out)


if __name__ == "__main__":
    main()
