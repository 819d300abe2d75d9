"""Experiment ``battle-selfplay``: one shared network learns MAgent2's ``battle_v4`` by PPO
against an opponent pool (the scripted ``greedy`` and ``random`` armies and past
snapshots of itself).

===============  ==========================================================================
world            ``colonylab.envs.magent.battle_v4`` (MAgent2's rules: 81 vs 81 on map 45,
                 HP 10, damage 2, attack -0.1, hit +0.2, kill +5, step -0.005, death
                 -0.1); ``worlds`` battles side by side, a finished one restarts with the
                 next seed and a new opponent
agent            :class:`~colonylab.agents.grid_policy.GridPolicy` ``845 -> 128 -> 128 ->
                 21 + 1`` (tanh MLP over the 13 x 13 x 5 view, actor and critic), shared
                 by every red soldier of every battle; spec ``{"type": "grid", ...}``
action mask      :func:`~colonylab.agents.grid_policy.attack_mask`: an attack is legal
                 only where the view shows an enemy (without it PPO learns never to
                 attack: every miss costs the attack penalty)
trainer          :class:`~colonylab.collective_ml.trainers.ppo.PPO` (parameter sharing,
                 GAE, clipped objective, entropy bonus); the learner is red, blue is the
                 opponent
opponents        :class:`~colonylab.collective_ml.trainers.selfplay.OpponentPool` (PFSP
                 ``hard``: the opponents red beats least are drawn most): ``greedy``,
                 ``random``, a snapshot of red every ``snapshot_every`` iterations, and
                 with probability ``self_play`` the current weights themselves
selection        every ``validate_every`` iterations red plays ``validate_battles`` fresh
                 battles against ``greedy``; the best (win rate, then kill ratio) is
                 ``checkpoints/battle-selfplay.pt``
===============  ==========================================================================

**Win.** A battle ends when one army is wiped out or after ``max_cycles`` steps; red
wins when more red than blue soldiers are left at the end, a draw is an equal count.
``kill_ratio`` is blue soldiers killed over red soldiers killed (summed over the
battles; ``inf`` when red lost none). Outside training (validation, ``colony eval``,
``colony watch``) the learned army takes its policy's most likely legal action
(``--no-argmax`` samples instead, as in training: on the shipped checkpoint the
argmax army wins more often against greedy).

Larger battles keep MAgent2's density (each army 0.04 of the map, every other cell):
the map side for ``n`` agents is the one whose armies come closest to ``n`` (162: 45,
2,000: 160 -> 2,048 agents, 20,000: 500).

Writes ``metrics.jsonl`` and TensorBoard (``charts/win_rate_<opponent>``,
``charts/kill_ratio``, ``charts/red_survivors``, ``charts/blue_survivors``,
``losses/entropy``, ``emergence/encirclement``: the share of red's targets hit from
at least 3 of 4 sides, ``validation/win_rate_greedy``), ``checkpoints/latest.pt``
(every ``checkpoint_every`` iterations, at the end, on Ctrl-C; ``--resume RUN_DIR``
continues it: the pool, the optimizer and the counters are restored, the battles
under way restart), ``checkpoints/battle-selfplay.pt`` (the best validated weights),
``media/training.png`` (the learning curve) and ``media/late-training.gif`` (the final
weights against greedy on a fresh battle, from the start to its end, with the
viewer's overlay; ``--no-video`` skips it).

Shipped: ``runs/checkpoints/battle-selfplay.pt`` is ``checkpoints/battle-selfplay.pt``
(the best validated weights, iteration 90) of ``colony train battle-selfplay --init
battle-selfplay-prev --mirror-blue True --lr 0.0003 --iterations 300 --minutes 28``
(seed 0, one thread; stopped by its time limit after iteration 230; later validations
swung between 0% and 100%): the previous shipped army, fine-tuned against the pool with
blue mirrored (``mirror_blue``: a network playing blue reads mirrored views). The
previous one, ``runs/checkpoints/battle-selfplay-prev.pt`` (``colony train
battle-selfplay --iterations 100``, unmirrored self-play), is kept for ``colony eval``'s
row against it. Head to head at 162 agents (100 battles a side) the new army wins 96 as
red and 72 as blue (3 draws); note that the red side is favoured: the previous army
against itself wins 87 of 100 as red; at 2,048 agents (10 battles a side) 9 as red and
9 as blue; at 20,000 agents it does NOT beat it (0 of 2 as red: 1,619 vs 1,651 left at
step 1,000). Measured on 2026-12-02 (2 shared cores; ``colony eval battle-selfplay``
rows, argmax, seeds 900,000,000+; fewer battles than the defaults where marked):

==========  ======  =======  ====  ==========  =========  =========  =====
blue        agents  battles  won   kill ratio  red left   blue left  steps
==========  ======  =======  ====  ==========  =========  =========  =====
greedy      162     100      100   1.32        19.8       0          43
greedy      2,048   100      100   1.34        265        8.0        446
greedy      20,000  10       10    1.28        5,161      3,828      1000
random      162     100      100   (no loss)   81         0.17       368
random      2,048   100      100   (1 lost)    1,024      2.4        942
random      20,000  10       10    (3 lost)    10,000     15.4       1000
prev        162     100      96    1.21        14.5       0.36       140
prev        2,048   10 (*)   9     1.04        272        242        1000
prev        20,000  2 (*)    0     1.00        1,619      1,651      1000
==========  ======  =======  ====  ==========  =========  =========  =====

(*) the default is 100 at 2,048 and 10 at 20,000; a 20,000-agent battle took 1-8
minutes on the loaded machine. Against random at scale a few random soldiers are
still alive at step 1,000 (it wins on the count).

    colony train battle-selfplay
    colony train battle-selfplay --iterations 60 --worlds 4
    colony eval battle-selfplay --json runs/out/battle-selfplay-eval.json
    colony eval battle-selfplay --episodes 20 --eval-agents 162
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from colonylab import agents
from colonylab._checks import check_choice, check_dataclass_ints, check_int, check_probability
from colonylab.agents.grid_policy import GridPolicy, attack_mask
from colonylab.collective_ml.trainers.selfplay import SELF, Opponent, OpponentPool
from colonylab.emergence.grid import encirclement_index
from colonylab.envs.magent import battle_v4
from colonylab.envs.magent._env import greedy as greedy_actions
from colonylab.runs.common.checkpoint import load_checkpoint
from colonylab.runs.common.stages import load_model
from colonylab.runs.experiments._grid_ppo import (
    GridPPOConfig,
    report_rows,
    run_grid_ppo,
    set_threads,
    start_run,
)
from colonylab.runs.ppo_loop import PPORun

NAME = "battle-selfplay"
CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
SHIPPED = CHECKPOINTS / f"{NAME}.pt"
PREVIOUS = CHECKPOINTS / f"{NAME}-prev.pt"
"""The checkpoint shipped before ``SHIPPED`` (``colony eval``'s row against it)."""
VIEW_SHAPE = (13, 13, 5)
N_ACTIONS = 21
FIRST_ATTACK = 13
STAY = 6
ENEMY_CHANNEL = 3
ATTACK_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
"""(dy, dx) of MAgent2's attacks 13..20, row by row; view cell ``(6 + dy, 6 + dx)``
(checked against the engine in the tests)."""
MOVE_OFFSETS = (
    (-2, 0), (-1, -1), (-1, 0), (-1, 1), (0, -2), (0, -1), (0, 0), (0, 1), (0, 2),
    (1, -1), (1, 0), (1, 1), (2, 0),
)  # fmt: skip
"""(dy, dx) of MAgent2's moves 0..12 (checked against the engine in the tests)."""
_CELLS = MOVE_OFFSETS + ATTACK_OFFSETS
MIRROR = np.array(
    [
        (_CELLS.index((dy, -dx)) if i < 13 else 13 + ATTACK_OFFSETS.index((dy, -dx)))
        for i, (dy, dx) in enumerate(_CELLS)
    ],
    np.int64,
)
"""Action ``a`` of a left-right mirrored world is action ``MIRROR[a]`` of the real one."""
SCRIPTED = ("greedy", "random")
TRAIN_SEED_BASE = 1_000_000
VALIDATION_SEED_BASE = 500_000_000
VIDEO_SEED = 700_000_000
console = Console()


@dataclass(frozen=True)
class Config(GridPPOConfig):
    """Train a shared army for MAgent2's battle_v4 by PPO against an opponent pool."""

    worlds: int = 8
    """Battles stepped side by side (the learner's rows: worlds x 81 red soldiers)."""
    map_size: int = 45
    """Map side of the training battles (45: MAgent2's 81 vs 81)."""
    max_cycles: int = 1000
    """Steps until a battle is cut off (MAgent2's default)."""
    iterations: int = 200
    """PPO iterations (each: rollout_steps steps of every battle, then the update)."""
    rollout_steps: int = 32
    """Steps of every battle per iteration."""
    gamma: float = 0.99  # help: GridPPOConfig's
    mask_attacks: bool = True
    """Allow an attack only where the view shows an enemy (attack_mask)."""
    mirror_blue: bool = False
    """A network playing blue (snapshot or self) sees its view mirrored left-right and
    its actions are mirrored back, so it plays blue as it learned to play red (the red
    army starts on the left; unmirrored, a snapshot marches east, away from red). Off
    in the shipped run (which it would change); see the module doc."""
    opponents: tuple[str, ...] = SCRIPTED
    """Scripted opponents in the pool (greedy, random)."""
    self_play: float = 0.1
    """Probability that a battle's blue army is red's current weights."""
    snapshot_every: int = 10
    """Add a snapshot of red's weights to the pool every this many iterations (0: never)."""
    max_snapshots: int = 10
    """Snapshots kept in the pool (the oldest goes first)."""
    weighting: str = "hard"
    """PFSP weighting of the pool: hard, variance or uniform."""
    validate_every: int = 5
    """Play validation battles against greedy every this many iterations."""
    validate_battles: int = 32
    """Validation battles (fresh seeds, at map_size) per validation."""
    episodes: int = 100
    """``colony eval``: battles per row at 162 and 2,000 agents."""
    large_episodes: int = 10
    """``colony eval``: battles per row at more than 10,000 agents (at most episodes)."""
    eval_agents: tuple[int, ...] = (162, 2000, 20000)
    """``colony eval``: battle sizes (both armies), same density as map 45."""
    eval_opponents: tuple[str, ...] = (*SCRIPTED, f"{NAME}-prev")
    """``colony eval``: blue armies (:mod:`colonylab.runs.teams` names: greedy, random,
    battle-selfplay-prev -- the previous shipped checkpoint, skipped when absent --, or
    a checkpoint file)."""
    argmax: bool = True
    """Validation, eval and watch: red takes its policy's most likely legal action
    (False: samples it, as in training)."""
    eval_seed: int = 900_000_000
    """``colony eval``: seed of the first battle (training and validation use others)."""
    watch_agents: int = 162
    """``colony watch``: battle size."""
    watch_blue: str = "greedy"
    """``colony watch``: the blue army (a :mod:`colonylab.runs.teams` name: greedy,
    random, noop, a shipped checkpoint's name or a checkpoint file)."""
    init: str | None = None
    """Start from the weights of this battle-selfplay checkpoint (a file, or a name in
    runs/checkpoints such as battle-selfplay-prev) instead of fresh ones."""
    seed: int = 0
    """Seed of the network, the trainer, the pool and the battles."""
    plots: bool = True
    """Write media/training.png."""
    video: bool = True
    """Write media/late-training.gif: the final weights (red) against greedy on a fresh
    battle at map_size, until it ends."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_dataclass_ints(
            self,
            {"map_size": battle_v4.MIN_MAP_SIZE, "max_cycles": 1, "snapshot_every": 0,
             "max_snapshots": 1, "validate_battles": 1, "large_episodes": 1,
             "watch_agents": 8},
        )  # fmt: skip
        check_probability("--self-play", self.self_play)
        check_choice("--weighting", self.weighting, ("hard", "variance", "uniform"))
        for o in self.opponents:
            check_choice("opponent", o, SCRIPTED)
        for o in (*self.eval_opponents, self.watch_blue):
            if not isinstance(o, str) or not o:
                raise ValueError(f"--eval-opponents / --watch-blue: a team name, got {o!r}")
        if not self.eval_agents:
            raise ValueError("--eval-agents needs at least one battle size, e.g. 162")
        for n in self.eval_agents:
            if isinstance(n, bool) or not isinstance(n, int) or n < 8:
                raise ValueError(f"--eval-agents entries must be integers >= 8, got {n!r}")

    def _check_hidden(self) -> None:
        for h in self.hidden:  # this experiment's own check (kept): each width >= 1
            check_int("--hidden widths", h, 1)


# -- the battle, sizes, players ----------------------------------------------------------------
def army_size(map_size: int) -> int:
    """Soldiers per army on MAgent2's battle map of side ``map_size``."""
    return len(battle_v4.armies(map_size)[0])


def map_for(agents_total: int) -> int:
    """The map side whose two armies come closest to ``agents_total`` soldiers (MAgent2's
    density; ties: the smaller map)."""
    side = max(battle_v4.MIN_MAP_SIZE, int(math.sqrt(agents_total / 0.08)) - 3)
    best, best_gap = side, None
    for m in range(side, side + 8):
        gap = abs(2 * army_size(m) - agents_total)
        if best_gap is None or gap < best_gap:
            best, best_gap = m, gap
    return best


def make_world(map_size: int, max_cycles: int) -> battle_v4.BattleWorld:
    """One ``battle_v4`` world (MAgent2's rewards)."""
    return battle_v4.BattleWorld(battle_v4.BattleConfig(map_size=map_size, max_cycles=max_cycles))


def build_policy(cfg: Config) -> GridPolicy:
    """The shared network (initial weights from torch's current seed)."""
    return GridPolicy(VIEW_SHAPE, N_ACTIONS, hidden=cfg.hidden)


def masks(view: np.ndarray, enabled: bool = True, out: np.ndarray | None = None) -> np.ndarray:
    """Legal actions ``bool[N, 21]``: attacks only on cells where the view shows an enemy."""
    return attack_mask(
        view, N_ACTIONS, FIRST_ATTACK, ATTACK_OFFSETS, ENEMY_CHANNEL, out=out, enabled=enabled
    )


class NetworkPlayer:
    """A network's actions for one side: masked, sampled from a seeded generator (or argmax)."""

    def __init__(
        self, policy: GridPolicy, seed: int, mask: bool = True, deterministic: bool = False
    ) -> None:
        self.policy, self.mask, self.deterministic = policy, mask, deterministic
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, view: np.ndarray) -> np.ndarray:
        if len(view) == 0:
            return np.zeros(0, np.int64)
        obs = {"view": torch.from_numpy(view), "mask": torch.from_numpy(masks(view, self.mask))}
        actions, *_ = self.policy.act(obs, self.generator, deterministic=self.deterministic)
        return actions.numpy()


def scripted(world: battle_v4.BattleWorld, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Actions of the blue army (every slot; the dead's are ignored): ``greedy`` or ``random``."""
    e = world.engine
    n = int(e.group_start[2] - e.group_start[1])
    if kind == "random":
        return rng.integers(0, N_ACTIONS, n)
    acts = np.full(n, STAY, np.int64)
    ids = e.group_ids(1)
    ids = ids[~e.dead[ids]]
    if ids.size:
        acts[ids - e.group_start[1]] = greedy_actions(e, 1, ids, (0,), rng)
    return acts


def outcome(world: battle_v4.BattleWorld) -> dict[str, float]:
    """The battle's score: survivors, losses, and win / draw for red (module doc)."""
    m = world.metrics()
    red, blue = m["red_alive"], m["blue_alive"]
    return {
        "win": float(red > blue),
        "draw": float(red == blue),
        "red_alive": float(red),
        "blue_alive": float(blue),
        "red_lost": float(world.deaths[0]),
        "blue_lost": float(world.deaths[1]),
        "steps": float(world.step_count),
    }


def _finished(world: battle_v4.BattleWorld, result: Any) -> bool:
    return bool(result.info.get("done")) or world.step_count >= world.config.max_cycles


# -- the training task -------------------------------------------------------------------------
class SelfPlayTask:
    """The red armies of ``worlds`` battles as the PPO learner's rows; each battle's blue
    army is an opponent drawn from ``pool`` when the battle starts (array protocol of
    :mod:`~colonylab.collective_ml.trainers.ppo`)."""

    def __init__(self, cfg: Config, policy: GridPolicy, pool: OpponentPool, seed: int) -> None:
        self.cfg, self.policy, self.pool = cfg, policy, pool
        self.worlds = [make_world(cfg.map_size, cfg.max_cycles) for _ in range(cfg.worlds)]
        self.n_red = army_size(cfg.map_size)
        self.n_agents = cfg.worlds * self.n_red
        self.view = np.zeros((self.n_agents, *VIEW_SHAPE), np.float32)
        self.mask = np.ones((self.n_agents, N_ACTIONS), bool)
        self.alive = np.zeros(self.n_agents, bool)
        self.opponent: list[Opponent] = [Opponent(SELF, SELF)] * cfg.worlds
        self.rngs: list[np.random.Generator] = [np.random.default_rng(0)] * cfg.worlds
        self.blue_views: list[np.ndarray] = [np.zeros(0)] * cfg.worlds
        self.next_seed = TRAIN_SEED_BASE * (seed + 1)
        self.generator = torch.Generator().manual_seed(seed + 7)
        self._players: dict[str, GridPolicy] = {}
        self.results: list[tuple[str, dict[str, float]]] = []
        """(opponent name, outcome) of the battles finished since the last ``drain``."""
        self.encirclement: list[float] = []

    def _start(self, k: int) -> None:
        seed = self.next_seed
        self.next_seed += 1
        obs = self.worlds[k].reset(seed=seed)
        self.rngs[k] = np.random.default_rng(seed)
        self.opponent[k] = self.pool.sample()
        self._take(k, obs)

    def _take(self, k: int, obs: dict[str, np.ndarray]) -> None:
        sl = slice(k * self.n_red, (k + 1) * self.n_red)
        self.view[sl] = obs["red"]
        self.alive[sl] = self.worlds[k].alive[: self.n_red]
        self.blue_views[k] = obs["blue"]

    def _obs(self) -> dict[str, np.ndarray]:
        masks(self.view, self.cfg.mask_attacks, out=self.mask)
        return {"view": self.view, "mask": self.mask, "alive": self.alive}

    def reset(self, seed: int) -> dict[str, np.ndarray]:
        for k in range(len(self.worlds)):
            self._start(k)
        return self._obs()

    def _network(self, opponent: Opponent) -> GridPolicy:
        if opponent.kind == SELF:
            return self.policy
        net = self._players.get(opponent.name)
        if net is None:
            net = build_policy(self.cfg)
            net.load_state_dict(opponent.params)
            self._players = {opponent.name: net, **dict(list(self._players.items())[-15:])}
        return net

    def _blue(self) -> list[np.ndarray]:
        out: list[np.ndarray] = [np.zeros(0)] * len(self.worlds)
        by_net: dict[str, list[int]] = {}
        for k, opp in enumerate(self.opponent):
            if opp.kind == "scripted":
                out[k] = scripted(self.worlds[k], opp.name, self.rngs[k])
            else:
                by_net.setdefault(opp.name, []).append(k)
        for ks in by_net.values():
            net = self._network(self.opponent[ks[0]])
            view = np.concatenate([self.blue_views[k] for k in ks])
            if self.cfg.mirror_blue:
                view = np.ascontiguousarray(view[:, :, ::-1])
            obs = {
                "view": torch.from_numpy(view),
                "mask": torch.from_numpy(masks(view, self.cfg.mask_attacks)),
            }
            actions = net.act(obs, self.generator)[0].numpy()
            if self.cfg.mirror_blue:
                actions = MIRROR[actions]
            for j, k in enumerate(ks):
                n = len(self.blue_views[k])
                out[k] = actions[j * n : (j + 1) * n]
        return out

    def step(self, actions: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        blue = self._blue()
        reward = np.zeros(self.n_agents, np.float32)
        done = np.zeros(self.n_agents, bool)
        for k, world in enumerate(self.worlds):
            sl = slice(k * self.n_red, (k + 1) * self.n_red)
            pos = world.pos if k == 0 else None
            before = world.alive if k == 0 else None
            result = world.step(np.concatenate([actions[sl], blue[k]]))
            if k == 0:
                target = world.attack_target.copy()
                target[self.n_red :] = -1  # red's attacks only
                index = encirclement_index(pos, target, before)
                if not math.isnan(index):
                    self.encirclement.append(index)
            reward[sl] = result.reward[: self.n_red]
            done[sl] = (result.terminated | result.truncated)[: self.n_red]
            if _finished(world, result):
                done[sl] |= self.alive[sl]
                self.results.append((self.opponent[k].name, outcome(world)))
                self._start(k)
            else:
                self._take(k, result.obs)
        return self._obs(), reward, done

    def drain(self) -> tuple[list[tuple[str, dict[str, float]]], list[float]]:
        """The battles finished and the encirclement samples since the last call."""
        results, self.results = self.results, []
        enc, self.encirclement = self.encirclement, []
        return results, enc


# -- playing battles (validation, evaluation) --------------------------------------------------
def play(
    red: Callable[[np.ndarray], np.ndarray],
    blue: str | Callable[[np.ndarray], np.ndarray],
    map_size: int,
    battles: int,
    seed: int,
    max_cycles: int = 1000,
    parallel: int | None = None,
) -> list[dict[str, float]]:
    """Outcomes of ``battles`` battles (seeds ``seed, seed + 1, ...``) of the network player
    ``red`` against ``blue``: a scripted army's name, or a player of blue's views (e.g.
    :class:`colonylab.runs.teams.Mirrored`), ``parallel`` battles at a time (one forward
    for all)."""
    n_red = army_size(map_size)
    parallel = parallel or max(1, min(battles, 20_000 // max(n_red, 1)))
    out: list[dict[str, float]] = []
    for first in range(0, battles, parallel):
        seeds = range(seed + first, seed + min(battles, first + parallel))
        worlds = [make_world(map_size, max_cycles) for _ in seeds]
        obs = [w.reset(seed=s) for w, s in zip(worlds, seeds, strict=True)]
        rngs = [np.random.default_rng(s) for s in seeds]
        live = list(range(len(worlds)))
        done: dict[int, dict[str, float]] = {}
        while live:
            actions = _living(red, [obs[k]["red"] for k in live],
                              [worlds[k].alive[:n_red] for k in live])  # fmt: skip
            if callable(blue):
                blue_actions = _living(blue, [obs[k]["blue"] for k in live],
                                       [worlds[k].alive[n_red:] for k in live])  # fmt: skip
            still = []
            for j, k in enumerate(live):
                w = worlds[k]
                if callable(blue):
                    b = blue_actions[j * n_red : (j + 1) * n_red]
                else:
                    b = scripted(w, blue, rngs[k])
                result = w.step(np.concatenate([actions[j * n_red : (j + 1) * n_red], b]))
                if _finished(w, result):
                    done[k] = outcome(w)
                else:
                    obs[k] = result.obs
                    still.append(k)
            live = still
        out += [done[k] for k in range(len(worlds))]
    return out


def _living(
    player: Callable[[np.ndarray], np.ndarray], views: list[np.ndarray], alive: list[np.ndarray]
) -> np.ndarray:
    """``player``'s actions for the living rows of ``views`` (concatenated), ``STAY``
    for the dead (late in a large battle most rows are dead: no forward for them)."""
    living = np.concatenate(alive)
    actions = np.full(len(living), STAY, np.int64)
    if living.any():
        actions[living] = player(np.concatenate(views)[living])
    return actions


def summarise(results: list[dict[str, float]]) -> dict[str, float]:
    """Win and draw rate, kill ratio (sums), mean survivors of a list of outcomes."""
    n = max(len(results), 1)
    red_lost = sum(r["red_lost"] for r in results)
    blue_lost = sum(r["blue_lost"] for r in results)
    return {
        "win_rate": sum(r["win"] for r in results) / n,
        "draw_rate": sum(r["draw"] for r in results) / n,
        "kill_ratio": blue_lost / red_lost if red_lost else float("inf"),
        "mean_survivors": sum(r["red_alive"] for r in results) / n,
        "mean_enemy_survivors": sum(r["blue_alive"] for r in results) / n,
        "mean_steps": sum(r["steps"] for r in results) / n,
    }


# -- training ----------------------------------------------------------------------------------
def make_pool(cfg: Config) -> OpponentPool:
    pool = OpponentPool(
        weighting=cfg.weighting, self_play=cfg.self_play,
        max_snapshots=cfg.max_snapshots, seed=cfg.seed,
    )  # fmt: skip
    for name in cfg.opponents:
        pool.add_scripted(name, lambda *a, _n=name: _n)  # the task plays it by name
    return pool


def main(cfg: Config, resume: str | None = None) -> dict[str, Any]:
    """Train; save ``latest.pt`` and the best validated ``battle-selfplay.pt``; plot.

    Args:
        cfg: The run's config.
        resume: A run directory to continue from its ``checkpoints/latest.pt``.
    """
    start_run(cfg)
    policy = build_policy(cfg)
    if cfg.init is not None:
        from colonylab.runs import teams

        start, _ = load_policy(teams.checkpoint_of(cfg.init) or cfg.init)
        if start.spec() != policy.spec():
            raise ValueError(
                f"--init {cfg.init!r}: its network {start.spec()} is not this run's "
                f"{policy.spec()} (--hidden)"
            )
        policy.load_state_dict(start.state_dict())
    pool = make_pool(cfg)
    task = SelfPlayTask(cfg, policy, pool, cfg.seed)
    recent: dict[str, deque] = {}

    def scalars(iteration: int, record: dict[str, float]) -> None:
        results, enc = task.drain()
        for name, r in results:
            if name == SELF or name in pool.names():  # a snapshot may have left the pool
                pool.record(name, wins=r["win"], draws=r["draw"], games=1)
            recent.setdefault(name, deque(maxlen=32)).append(r)
        for name, rs in recent.items():
            record[f"charts/win_rate_{name if name != SELF else 'self'}"] = summarise(list(rs))[
                "win_rate"
            ]
        if results:
            s = summarise([r for _, r in results])
            record["charts/kill_ratio"] = min(s["kill_ratio"], 1e3)
            record["charts/red_survivors"] = s["mean_survivors"]
            record["charts/blue_survivors"] = s["mean_enemy_survivors"]
            record["charts/battle_steps"] = s["mean_steps"]
        if enc:
            record["emergence/encirclement"] = float(np.mean(enc))
        record["charts/battles"] = float(len(results))
        if cfg.snapshot_every and iteration % cfg.snapshot_every == 0:
            pool.add_snapshot(f"iter-{iteration}", policy.state_dict())

    def validate(iteration: int, record: dict[str, float]) -> tuple[Any, dict[str, Any]]:
        player = NetworkPlayer(policy, cfg.seed, cfg.mask_attacks, cfg.argmax)
        v = summarise(
            play(player, "greedy", cfg.map_size, cfg.validate_battles,
                 VALIDATION_SEED_BASE + iteration * 1000, cfg.max_cycles)
        )  # fmt: skip
        record["validation/win_rate_greedy"] = v["win_rate"]
        record["validation/kill_ratio_greedy"] = min(v["kill_ratio"], 1e3)
        record["validation/survivors_greedy"] = v["mean_survivors"]
        metrics = {"validation_win_rate_greedy": v["win_rate"],
                   "validation_kill_ratio_greedy": v["kill_ratio"],
                   "validation_battles": cfg.validate_battles, "iteration": iteration}  # fmt: skip
        return (v["win_rate"], min(v["kill_ratio"], 1e3)), metrics

    def progress(record: dict[str, float]) -> str:
        wr = record.get("validation/win_rate_greedy")
        rates = "  ".join(
            f"{name} {record[f'charts/win_rate_{name}']:.2f}"
            for name in (*SCRIPTED, "self")
            if f"charts/win_rate_{name}" in record
        )
        return rates + (f"  | validation vs greedy {wr:.2f}" if wr is not None else "")

    def media(run: PPORun) -> None:
        if cfg.plots:
            plot_training(run.path / "metrics.jsonl", run.media / "training.png")
        if cfg.video:
            battle = record_battle(policy, cfg, run.media / "late-training.gif", VIDEO_SEED)
            console.print(
                f"late-training battle vs greedy: {battle['red_alive']:.0f} red vs "
                f"{battle['blue_alive']:.0f} blue left after {battle['steps']:.0f} steps -> "
                f"{run.media / 'late-training.gif'}"
            )

    def describe_best(score: list[float] | None) -> str:
        return f"best validation against greedy: win rate {score[0] if score else 'n/a'}"

    return run_grid_ppo(
        NAME, cfg, policy, task, resume=resume, seeds=task, best_file=SHIPPED.name,
        scalars=scalars, validate=validate, progress=progress, media=media,
        describe_best=describe_best, console=console,
        state=lambda: {"pool": pool.state_dict()},
        load_state=lambda trainer: pool.load_state_dict(trainer["pool"]),
    )  # fmt: skip


def record_battle(
    policy: GridPolicy, cfg: Config, path: Path, seed: int, blue: str = "greedy"
) -> dict[str, float]:
    """Record one battle of ``policy`` (red, as in validation) against the scripted
    ``blue`` at ``cfg.map_size`` to ``path`` (GIF or MP4, the viewer's frames with the
    emergence overlay), from the start until it ends; returns its :func:`outcome`."""
    from colonylab.emergence.overlay import grid_overlay
    from colonylab.envs.render.viewer import record_rollout

    def battle() -> battle_v4.BattleWorld:
        world = make_world(cfg.map_size, cfg.max_cycles)
        player = NetworkPlayer(policy, seed, cfg.mask_attacks, cfg.argmax)
        rng = np.random.default_rng(seed)

        def act(obs: dict[str, np.ndarray]) -> np.ndarray:
            return np.concatenate([player(obs["red"]), scripted(world, blue, rng)])

        world.default_policy = act
        world.metadata = {**world.metadata, "name": f"{NAME} (red) vs {blue} (blue)"}
        world.reset(seed=seed)
        return world

    world = battle()  # play it once to learn its length, then replay it (seeded) on camera
    while not _finished(world, world.step()):
        pass
    steps = world.step_count
    world = battle()
    record_rollout(
        world, path, steps, fps=10, window_size=(720, 720), metrics_fn=grid_overlay, progress=False
    )
    return outcome(world)


def plot_training(metrics: Path, path: Path) -> Path:
    """The learning curve: win rates (training battles per opponent, validation against
    greedy), kill ratio, entropy and encirclement over iterations."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in Path(metrics).read_text().splitlines() if line.strip()]

    def series(key: str) -> tuple[list[int], list[float]]:
        pts = [(r["step"], r[key]) for r in rows if key in r and r[key] is not None]
        return ([p[0] for p in pts], [p[1] for p in pts]) if pts else ([], [])

    fig, axes = plt.subplots(1, 3, figsize=(14, 4), constrained_layout=True)
    ax = axes[0]
    for name, colour in (("greedy", "C3"), ("random", "C0"), ("self", "C2")):
        x, y = series(f"charts/win_rate_{name}")
        if x:
            ax.plot(x, y, color=colour, alpha=0.6, label=f"training battles vs {name}")
    x, y = series("validation/win_rate_greedy")
    if x:
        ax.plot(x, y, "o-", color="k", ms=3, label="validation vs greedy (fresh seeds)")
    ax.set(xlabel="PPO iteration", ylabel="red win rate", ylim=(-0.03, 1.03),
           title="battle_v4 81 vs 81: win rate")  # fmt: skip
    ax.legend(loc="lower right", fontsize=8)
    ax = axes[1]
    x, y = series("charts/kill_ratio")
    y = [max(v, 1e-2) for v in y]
    ax.semilogy(x, y, color="C1", label="kill ratio (training battles)")
    x, y = series("validation/kill_ratio_greedy")
    y = [max(v, 1e-2) for v in y]
    if x:
        ax.semilogy(x, y, "o-", color="k", ms=3, label="kill ratio vs greedy (validation)")
    ax.axhline(1.0, color="0.5", lw=0.8, ls="--")
    ax.set(xlabel="PPO iteration", title="blue killed / red killed")
    ax.legend(fontsize=8)
    ax = axes[2]
    x, y = series("losses/entropy")
    ax.plot(x, y, color="C4", label="policy entropy")
    x, y = series("emergence/encirclement")
    ax2 = ax.twinx()
    ax2.plot(x, y, color="C5", alpha=0.7, label="encirclement index")
    ax2.set_ylim(0, 1)
    ax.set(xlabel="PPO iteration", title="entropy / encirclement (3 of 4 sides)")
    ax.legend(loc="upper left", fontsize=8)
    ax2.legend(loc="upper right", fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# -- checkpoint, evaluation, watching -----------------------------------------------------------
def load_policy(checkpoint: str | Path | None = None) -> tuple[GridPolicy, dict[str, Any]]:
    """``(policy, checkpoint dict)`` of a ``battle-selfplay`` checkpoint (default: shipped)."""
    return load_model(checkpoint if checkpoint is not None else SHIPPED, NAME, agents.build)


def evaluate(cfg: Config, checkpoint: str | None = None) -> dict[str, Any]:
    """``colony eval battle-selfplay``: rows ``{opponent, agents, episodes, win_rate,
    draw_rate, kill_ratio, mean_survivors}`` (plus ``map_size``, ``mean_enemy_survivors``,
    ``mean_steps``) against each blue army of ``eval_opponents`` at each size (module doc:
    win, density); ``kill_ratio`` is null when red lost no soldier. A learned opponent
    (``battle-selfplay-prev``: the previous shipped checkpoint, or any checkpoint) plays
    blue mirrored (:mod:`colonylab.runs.teams`); it is skipped, with a note, when it is
    missing (the default ``battle-selfplay-prev``) or holds the evaluated weights."""
    from colonylab.runs import teams

    set_threads(cfg)
    policy, ckpt = load_policy(checkpoint)
    mask = bool((ckpt.get("config") or {}).get("mask_attacks", True))
    opponents: list[tuple[str, Path | None]] = []
    notes: list[str] = []
    for name in cfg.eval_opponents:
        if name == PREVIOUS.stem and not PREVIOUS.is_file():
            notes.append(f"no {PREVIOUS.name} shipped: no row against the previous checkpoint")
            continue
        path = teams.checkpoint_of(name)
        if path is not None:
            other = load_checkpoint(path, NAME)["state_dict"]
            mine = ckpt["state_dict"]
            if other.keys() == mine.keys() and all(torch.equal(other[k], mine[k]) for k in mine):
                notes.append(f"{name}: the evaluated weights themselves; row skipped")
                continue
        opponents.append((name, path))
    for note in notes:
        console.print(f"[yellow]{note}[/]")
    rows = []
    for agents_total in cfg.eval_agents:
        map_size = map_for(agents_total)
        episodes = cfg.episodes if agents_total <= 10_000 else min(cfg.episodes, cfg.large_episodes)
        for blue, path in opponents:
            player = NetworkPlayer(policy, cfg.eval_seed, mask, cfg.argmax)
            opponent: str | Callable[[np.ndarray], np.ndarray] = blue
            if path is not None:
                opponent = teams.network_player(str(path), "blue", cfg.eval_seed + 1, cfg.argmax)
            s = summarise(play(player, opponent, map_size, episodes, cfg.eval_seed, cfg.max_cycles))
            if math.isinf(s["kill_ratio"]):
                s["kill_ratio"] = None  # red lost no soldier (JSON has no infinity)
            rows.append({"opponent": blue, "agents": 2 * army_size(map_size),
                         "map_size": map_size, "episodes": episodes, **s})  # fmt: skip
    columns = {"opponent": "blue", "agents": "agents", "episodes": "battles",
               "win_rate": "win", "draw_rate": "draw", "kill_ratio": "kills",
               "mean_survivors": "red left", "mean_enemy_survivors": "blue left",
               "mean_steps": "steps"}  # fmt: skip
    return report_rows(
        f"{NAME}: {Path(str(checkpoint or SHIPPED)).name}", rows, columns,
        checkpoint=checkpoint if checkpoint is not None else SHIPPED, ckpt=ckpt,
        console=console, fold=True,
        win="more red than blue soldiers left when a side is wiped out or at max_cycles",
        notes=notes,
    )  # fmt: skip


def watch(cfg: Config, checkpoint: str | None = None) -> battle_v4.BattleWorld:
    """``colony watch battle-selfplay``: the learned red army (``checkpoint``, default
    the shipped one) against ``watch_blue`` (any team of :mod:`colonylab.runs.teams`) at
    ``watch_agents`` soldiers; ``world.step()`` plays both sides."""
    from colonylab.runs import teams

    red = str(checkpoint) if checkpoint is not None else str(SHIPPED)
    return teams.battle_world(
        red, cfg.watch_blue, cfg.watch_agents, cfg.seed, cfg.max_cycles, cfg.argmax
    )


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
