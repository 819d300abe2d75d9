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


def table_script(table):
    """A script from ``{(t, g, orig): ("m", dx, dy) | ("a", x, y)}``; others stay."""

    def script(t, g, orig, pos, act):
        entry = table.get((t, g, orig))
        if entry is None:
            return None
        kind, a, b = entry
        return act.move(a, b) if kind == "m" else act.attack_cell(pos, (a, b))

    return script


def expand(table):
    """``{(ts, g, orig): entry}`` with ``ts`` an int or a range -> one key per step."""
    out = {}
    for (ts, g, orig), entry in table.items():
        for t in [ts] if isinstance(ts, int) else ts:
            out[(t, g, orig)] = entry
    return out


def battlefield_scenarios(out):
    # battle's rules on battlefield's 80x80 map with custom reward kwargs; a wall
    # column like battlefield's with a one-cell gap that agents move through
    walls = [(20, y) for y in range(10, 30) if y != 18] + [(31, 30)]
    agents = [[(18, 18), (17, 18), (22, 20)], [(23, 20), (22, 17), (30, 30)]]
    table = expand(
        {
            # red 0 walks through the gap: (18,18) -> (20,18) -> (22,18)
            (0, 0, 0): ("m", 2, 0),
            (1, 0, 0): ("m", 2, 0),
            # red 1 follows into the cell red 0 left in the same step (0 moves first)
            (0, 0, 1): ("m", 1, 0),
            # red 2 and blue 0 fight; red 2 kills blue 0 at the 6th hit (t=5),
            # blue 0 strikes back t=0..4 only
            (range(0, 6), 0, 2): ("a", 23, 20),
            (range(0, 5), 1, 0): ("a", 22, 20),
            # blue 1 attacks red 0 as it passes (t=2, 3), then steps to (23, 18) and
            # at t=5 into (23, 20), freed by blue 0's death in that step
            (range(2, 4), 1, 1): ("a", 22, 18),
            (4, 1, 1): ("m", 1, 1),
            (5, 1, 1): ("m", 0, 2),
            # blue 2 tries to move into a wall (stays), then jumps over it
            (0, 1, 2): ("m", 1, 0),
            (1, 1, 2): ("m", 2, 0),
        }
    )
    record_deterministic(
        "battlefield_v5_gap",
        "battlefield_v5",
        {"attack_opponent_reward": 0.25, "dead_penalty": -0.5, "attack_penalty": -0.05},
        walls,
        agents,
        table_script(table),
        8,
        "80x80, a wall column with a gap: red 0 moves through the gap, red 1 follows "
        "into its freed cell; red 2 kills blue 0 (6 hits), blue 0 hits back until it "
        "dies; blue 1 hits red 0 twice then steps into blue 0's cell as it dies; custom "
        "reward kwargs",
        out,
    )


def battlefield_stochastic(out):
    _, gw = make_engine("battlefield_v5", {})
    walls = [
        (int(x), int(y))
        for x, y in gw._get_walls_info()
        if 0 < x < 79 and 0 < y < 79  # MAgent2's battlefield walls, border left out
    ]
    skip = set(walls)
    agents = interleaved(30, 40, 12, 12, 2, skip)
    record_stochastic(
        "battlefield_v5_random",
        "battlefield_v5",
        {},
        walls,
        agents,
        30,
        SEEDS,
        0.8,
        "80x80 with battlefield's own walls, a 12x12 checkerboard of red and blue "
        "across the left wall column's gap, p_attack 0.8, 30 steps",
        out,
    )


def combined_arms_scenarios(out):
    # groups: 0 redmelee, 1 redranged, 2 bluemelee, 3 blueranged
    agents = [
        [(5, 5), (5, 9), (12, 12)],  # redmelee
        [(4, 7), (8, 9), (14, 4)],  # redranged
        [(6, 5), (10, 12)],  # bluemelee
        [(6, 7), (16, 4)],  # blueranged
    ]
    table = expand(
        {
            # redranged 0 (4,7) kills blueranged 0 (6,7) at range 2: hp 3 -> 1.1 -> dead
            # (kill rule +5); blueranged 0 hits back at t=0 only
            (range(0, 2), 1, 0): ("a", 6, 7),
            (0, 3, 0): ("a", 4, 7),
            # melee duel: redmelee 0 (5,5) and bluemelee 0 (6,5) hit each other 4 times
            (range(0, 4), 0, 0): ("a", 6, 5),
            (range(0, 4), 2, 0): ("a", 5, 5),
            # friendly fire across groups of one army: redmelee 1 walks (5,9) -> (7,9)
            # and kills redranged 1 (8,9) in 2 hits (no rule reward: same army)
            (range(0, 2), 0, 1): ("m", 1, 0),
            (range(2, 4), 0, 1): ("a", 8, 9),
            # redmelee 2 steps next to bluemelee 1 and hits it twice; it then steps up
            (0, 0, 2): ("m", -1, 0),
            (range(1, 3), 0, 2): ("a", 10, 12),
            (3, 2, 1): ("m", 0, -1),
            # redranged 2 (14,4) kills blueranged 1 (16,4) in 2 hits, then jumps into
            # its cell
            (range(0, 2), 1, 2): ("a", 16, 4),
            (2, 1, 2): ("m", 2, 0),
        }
    )
    record_deterministic(
        "combined_arms_v6_skirmish",
        "combined_arms_v6",
        {"map_size": 20},
        [(10, 3)],
        agents,
        table_script(table),
        7,
        "20x20, four groups: ranged kills ranged at range 2 (kill rule +5), melee duel, "
        "friendly fire across groups of one army (damage, no rule reward), ranged "
        "steps into a freed cell",
        out,
    )
    # same-group friendly fire and the minimap with four groups
    table2 = expand(
        {
            (range(0, 3), 0, 0): ("a", 5, 6),  # redmelee 0 hits redmelee 1 (same group)
            (range(0, 2), 3, 0): ("a", 9, 9),  # blueranged 0 hits bluemelee 0
            (1, 1, 0): ("m", -2, 0),
            (2, 2, 0): ("m", 0, 1),
        }
    )
    record_deterministic(
        "combined_arms_v6_minimap",
        "combined_arms_v6",
        {"map_size": 18, "minimap_mode": True, "extra_features": True},
        [],
        [[(5, 5), (5, 6)], [(12, 3)], [(9, 9)], [(10, 10)]],
        table_script(table2),
        4,
        "18x18 with the minimap: same-group friendly fire (attack_in_group), a ranged "
        "agent hits a team-mate of another group, moves",
        out,
    )


def combined_arms_stochastic(out):
    record_stochastic(
        "combined_arms_v6_random",
        "combined_arms_v6",
        {"map_size": 24},
        [],
        interleaved(6, 6, 12, 12, 4),
        30,
        SEEDS,
        0.8,
        "24x24, a 12x12 block dealt to the four groups on diagonals (x + y) % 4, "
        "p_attack 0.8, 30 steps",
        out,
    )


def pursuit_scenarios(out):
    # predators are 2x2 (anchor = top-left cell; they tag the 8 cells edge-adjacent
    # to their body); prey 1x1
    agents = [[(3, 3), (8, 8), (3, 10)], [(5, 3), (10, 8), (6, 12), (1, 12)]]
    table = expand(
        {
            # predator 0 tags prey 0 at (5,3) twice; prey 0 flees at t=2 and predator
            # 0 follows: predators move before prey, so at t=2 it is blocked, at t=3 not
            (range(0, 2), 0, 0): ("a", 5, 3),
            (2, 0, 0): ("m", 1, 0),
            (2, 1, 0): ("m", 1, 0),
            (3, 0, 0): ("m", 1, 0),
            # predator 1 (8,8) tags an empty cell, then prey 1 at (10,8)
            (0, 0, 1): ("a", 7, 8),
            (1, 0, 1): ("a", 10, 8),
            # prey 2 steps diagonally next to predator 2, which tags it
            (0, 1, 2): ("m", -1, -1),
            (1, 0, 2): ("a", 5, 11),
            # predator 2 tags a wall (penalty only), then its move up hits a wall
            (2, 0, 2): ("a", 2, 10),
            (3, 0, 2): ("m", 0, -1),
            # prey 3 (1,12) tries to move into the border wall, then up
            (0, 1, 3): ("m", -1, 0),
            (1, 1, 3): ("m", 0, -1),
        }
    )
    record_deterministic(
        "adversarial_pursuit_v4_tags",
        "adversarial_pursuit_v4",
        {"map_size": 16},
        [(4, 9), (2, 10)],
        agents,
        table_script(table),
        5,
        "16x16, 2x2 predators: tags (+1 predator, -1 prey, tag_penalty), tags of an "
        "empty cell and a wall (penalty only), a 2x2 move blocked by a prey that moves "
        "later in order then free, a 2x2 move blocked by a wall, prey diagonal moves",
        out,
    )
    table2 = expand(
        {
            # two predators tag one prey in the same step (damage 0: order-free)
            (range(0, 3), 0, 0): ("a", 6, 5),
            (range(0, 3), 0, 1): ("a", 6, 5),
            (1, 1, 1): ("m", 1, 1),
        }
    )
    record_deterministic(
        "adversarial_pursuit_v4_minimap",
        "adversarial_pursuit_v4",
        {"map_size": 14, "minimap_mode": True, "extra_features": True, "tag_penalty": -0.5},
        [(10, 10)],
        [[(4, 4), (7, 4)], [(6, 5), (9, 9)]],
        table_script(table2),
        3,
        "14x14 with the minimap: two predators tag the same prey each step (-2 for it)",
        out,
    )


def pursuit_stochastic(out):
    predators, prey = [], []
    for x in range(3, 21, 4):
        for y in range(3, 21, 4):
            predators.append((x, y))
            prey += [(x + 2, y), (x, y + 2), (x + 2, y + 2)]
    record_stochastic(
        "adversarial_pursuit_v4_random",
        "adversarial_pursuit_v4",
        {"map_size": 24},
        [],
        [predators, prey],
        30,
        SEEDS,
        0.8,
        "24x24, 25 2x2 predators on a 4-cell grid with 3 prey around each, p_attack 0.8 "
        "(tags never kill: compare the summed rewards), 30 steps",
        out,
    )


def tiger_deer_scenarios(out):
    # groups: 0 deer, 1 tiger
    agents = [[(5, 5), (10, 10), (12, 5)], [(4, 5), (6, 5), (9, 10)]]
    table = expand(
        {
            # both tigers hit deer 0 at t=0, 1 (pair reward, deer -0.1 each)
            (range(0, 2), 1, 0): ("a", 5, 5),
            (range(0, 2), 1, 1): ("a", 5, 5),
            # tiger 0 alone kills it at t=3 (hp 5 -> 3.2 -> 1.4 -> 0.6 -> dead) and
            # gains kill_supply 8 HP (capped at 10) before its own -0.1 starvation
            (range(2, 4), 1, 0): ("a", 5, 5),
            # tiger 1 steps into the dying deer's cell in the kill step
            (3, 1, 1): ("m", -1, 0),
            # tiger 2 hits deer 1 (10,10) once; deer 1 then flees right; tiger 2 follows
            (0, 1, 2): ("a", 10, 10),
            (1, 0, 1): ("m", 1, 0),
            (2, 1, 2): ("m", 1, 0),
            # deer 2 walks up into the border? up twice
            (range(0, 2), 0, 2): ("m", 0, -1),
        }
    )
    record_deterministic(
        "tiger_deer_v4_hunt",
        "tiger_deer_v4",
        {"map_size": 16},
        [(12, 3)],
        agents,
        table_script(table),
        6,
        "16x16: two tigers hit one deer (pair reward), one tiger kills it (kill_supply "
        "before starvation), a tiger enters the dying deer's cell, deer flee",
        out,
    )
    table2 = expand({(range(0, 2), 1, 0): ("a", 6, 6), (3, 0, 1): ("m", -1, 0)})
    record_deterministic(
        "tiger_deer_v4_starve",
        "tiger_deer_v4",
        {"map_size": 12, "tiger_step_recover": -3.0, "deer_attacked": -0.5, "minimap_mode": True},
        [],
        [[(6, 6), (9, 5)], [(5, 6), (8, 5)]],
        table_script(table2),
        5,
        "12x12, tiger_step_recover -3: the tigers starve at step 4 (10 -> 7 -> 4 -> 1 -> "
        "dead); a deer walks into a starved tiger's cell in that step; minimap on",
        out,
    )


def tiger_deer_stochastic(out):
    deer, tigers = interleaved(5, 5, 10, 10, 2)
    record_stochastic(
        "tiger_deer_v4_random",
        "tiger_deer_v4",
        {"map_size": 20},
        [],
        [deer, tigers],
        30,
        SEEDS,
        1.0,
        "20x20, deer and tigers on a 10x10 checkerboard (every deer between tigers), "
        "p_attack 1.0 (tigers always attack; deer only move), 30 steps",
        out,
    )


def gather_scenarios(out):
    # groups: 0 food (passive), 1 omnivore; 200x200 (large-map mode: 8 move bands of 25)
    food = [(100, 100), (101, 100), (60, 60)]
    omni = [
        (99, 100),  # 0: eats food 0 (5 hits: 25 -> 19 -> 13 -> 7 -> 1 -> dead)
        (120, 130),  # 1: kills omnivore 2 in one hit (damage 6 > hp 3)
        (121, 130),  # 2: killed at t=0, does not attack
        (103, 120),  # 3: x % 25 = 3: boundary buffer, moves last
        (107, 120),  # 4: band 4 interior: moves before 3 -> wins (105, 120)
        (72, 140),  # 5: boundary (72 % 25 = 22), earlier id
        (76, 140),  # 6: boundary (76 % 25 = 1), later id -> 5 wins (74, 140)
        (101, 101),  # 7: attacks food 1 once, then an empty cell
    ]
    table = expand(
        {
            (range(0, 5), 1, 0): ("a", 100, 100),
            (0, 1, 1): ("a", 121, 130),
            (1, 1, 1): ("m", 1, 0),  # into the dead omnivore's cell
            (0, 1, 3): ("m", 2, 0),
            (0, 1, 4): ("m", -2, 0),
            (0, 1, 5): ("m", 2, 0),
            (0, 1, 6): ("m", -2, 0),
            (0, 1, 7): ("a", 101, 100),
            (1, 1, 7): ("a", 102, 101),
            (5, 1, 0): ("m", 1, 0),  # into food 0's cell after it died
        }
    )
    record_deterministic(
        "gather_v5_bands",
        "gather_v5",
        {},
        [(98, 99)],
        [food, omni],
        table_script(table),
        6,
        "200x200: an omnivore eats a food in 5 hits (kill reward 5), one omnivore "
        "kills another in one hit, two contested cells decided by MAgent2's large-map "
        "move bands (a boundary-band mover loses to a later-id interior mover; two "
        "boundary movers go in id order), a food stays passive (no actions)",
        out,
    )
    record_deterministic(
        "gather_v5_minimap",
        "gather_v5",
        {"minimap_mode": True, "extra_features": True, "attack_food_reward": 1.0},
        [],
        [[(100, 100), (30, 170)], [(99, 100), (150, 20)]],
        table_script(expand({(range(0, 2), 1, 0): ("a", 100, 100), (1, 1, 1): ("m", 0, 2)})),
        3,
        "200x200 with the minimap (15x15 over 200: cells of 14), custom reward",
        out,
    )


def gather_stochastic(out):
    omni, food = [], []
    for x in range(93, 109):
        for y in range(93, 105):
            (omni if (x + y) % 3 == 0 else food).append((x, y))
    record_stochastic(
        "gather_v5_random",
        "gather_v5",
        {},
        [],
        [food, omni],
        30,
        SEEDS,
        0.8,
        "200x200, a 16x12 block around the centre, every third diagonal an omnivore, "
        "food elsewhere (spans move-band boundaries), p_attack 0.8, 30 steps",
        out,
    )


# ---------------------------------------------------------------- PettingZoo layer


def record_pettingzoo(name, world, kwargs, steps, stride, describe, out):
    """MAgent2's own PettingZoo env on its own (deterministic) default map: reset, then
    ``steps`` steps of moves (no attacks: no shuffle) -- action 0 for every agent first,
    then random moves -- with ``max_cycles`` = steps so the last step truncates.
    Observations of every ``stride``-th agent are kept."""
    mod = importlib.import_module(f"magent2.environments.{world}")
    env = mod.parallel_env(**kwargs, max_cycles=steps)
    obs, _ = env.reset(seed=0)
    names = list(env.possible_agents)
    index = {a: k for k, a in enumerate(names)}
    keep = np.arange(0, len(names), stride)
    groups = [t[3] for t in TYPES[world]]
    moves = {g[3]: Actions(*g[:3]).attack_base for g in TYPES[world]}
    rec = {
        "possible_agents": np.array(names),
        "keep": keep.astype(np.int32),
        "obs_init": np.stack([obs[names[k]] for k in keep]).astype(np.float32),
        "obs_init_present": np.array([names[k] in obs for k in keep]),
    }
    rng = np.random.default_rng(0)
    for t in range(steps):
        live = list(env.agents)
        acts = np.array([rng.integers(0, moves[a.rsplit("_", 1)[0]]) for a in live], np.int32)
        if t == 0:
            # MAgent2 0.3.4's reset() leaves team_sizes at 0 (read before generate_map),
            # so the first step after a reset hands every group the actions from the
            # start of the list (group g gets the first n_g actions). One action for
            # everyone makes that bug invisible; from the second step on it is gone.
            acts[:] = 0
        obs, rew, term, trunc, _ = env.step(dict(zip(live, acts.tolist(), strict=True)))
        rec[f"agents_t{t}"] = np.array([index[a] for a in live], np.int32)
        rec[f"actions_t{t}"] = acts
        rec[f"reward_t{t}"] = np.array([rew[a] for a in live], np.float32)
        rec[f"termination_t{t}"] = np.array([term[a] for a in live])
        rec[f"truncation_t{t}"] = np.array([trunc[a] for a in live])
        rec[f"obs_keys_t{t}"] = np.array(sorted(index[a] for a in obs), np.int32)
        rec[f"obs_t{t}"] = np.stack(
            [obs.get(names[k], np.zeros_like(rec["obs_init"][0])) for k in keep]
        ).astype(np.float32)
        rec[f"after_t{t}"] = np.array([index[a] for a in env.agents], np.int32)
    meta = {
        "format": 1,
        "kind": "pettingzoo",
        "name": name,
        "world": world,
        "kwargs": {**kwargs, "max_cycles": steps},
        "steps": steps,
        "group_names": groups,
        "magent2": MAGENT2_VERSION,
        "stride": stride,
        "description": describe,
    }
    rec["meta"] = np.array(json.dumps(meta))
    path = Path(out) / f"{name}.npz"
    np.savez_compressed(path, **rec)
    print(f"{path}: {path.stat().st_size / 1024:.1f} KB, {len(names)} agents")


def pettingzoo_scenarios(out):
    record_pettingzoo(
        "battle_v4_pettingzoo",
        "battle_v4",
        {"minimap_mode": True, "extra_features": True},
        3,
        9,
        "MAgent2's battle_v4.parallel_env(minimap_mode=True, extra_features=True, "
        "max_cycles=3) on its default map: reset(seed=0), 3 steps of moves (action 0 "
        "for all at the first step, then random moves); obs of every 9th agent "
        "(13x13x41)",
        out,
    )
    record_pettingzoo(
        "combined_arms_v6_pettingzoo",
        "combined_arms_v6",
        {},
        3,
        9,
        "combined_arms_v6.parallel_env(max_cycles=3), default map, 3 steps of moves "
        "(action 0 for all first, then random moves); obs of every 9th agent (13x13x9)",
        out,
    )
    record_pettingzoo(
        "battlefield_v5_pettingzoo",
        "battlefield_v5",
        {"extra_features": True},
        3,
        3,
        "battlefield_v5.parallel_env(extra_features=True, max_cycles=3), default 80x80 "
        "map with its walls, 3 steps of moves; obs of every 3rd agent (13x13x37)",
        out,
    )
    record_pettingzoo(
        "gather_v5_pettingzoo",
        "gather_v5",
        {"minimap_mode": True},
        3,
        50,
        "gather_v5.parallel_env(minimap_mode=True, max_cycles=3), default 200x200 map "
        "(food is no PettingZoo agent), 3 steps of moves; obs of every 50th omnivore "
        "(15x15x9)",
        out,
    )


WORLD_RECORDERS = {
    "battle_v4": [battle_scenarios, battle_stochastic],
    "battlefield_v5": [battlefield_scenarios, battlefield_stochastic],
    "combined_arms_v6": [combined_arms_scenarios, combined_arms_stochastic],
    "adversarial_pursuit_v4": [pursuit_scenarios, pursuit_stochastic],
    "tiger_deer_v4": [tiger_deer_scenarios, tiger_deer_stochastic],
    "gather_v5": [gather_scenarios, gather_stochastic],
    "pettingzoo": [pettingzoo_scenarios],
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
