"""Experiment ``tiger-deer``: tigers learn to hunt deer together by parameter-shared PPO on
MAgent2's ``tiger_deer_v4`` rules.

===============  ==========================================================================
world            ``colonylab.envs.magent.tiger_deer_v4`` (MAgent2's rules and defaults:
                 map 45, 4% walls, 101 deer, 20 tigers, ``max_cycles=300``). Deer: HP 5,
                 +0.2 HP a step, a bite takes 1 HP, so a deer dies of accumulated bites;
                 the killing tiger gains 8 HP. Tigers: HP 10, -0.1 HP a step (they starve
                 after 100 steps without a kill). A tiger is paid only when another tiger
                 bites the same deer in the same step (MAgent2's ``pair`` rule, +0.5 per
                 partner); ``--bite-reward`` (0.1) adds shaping per bite landed (0:
                 MAgent2's reward alone; a deer needs ~7 bites, from any tigers).
                 ``worlds`` episodes side by side; a finished one restarts with the next
                 seed
deer             scripted as MAgent2's examples leave them: ``random`` moves (``--deer-policy
                 noop``: they stand still)
agent            :class:`~colonylab.agents.grid_policy.GridPolicy` (tanh MLP 128-128 over
                 the tiger's 9 x 9 x 5 view = 405 inputs, actor over the 9 tiger actions,
                 critic), shared by every tiger of every episode; spec ``{"type": "grid"}``
action mask      :func:`~colonylab.agents.grid_policy.attack_mask`: bite ``5 + k`` is legal
                 only where the view shows a deer (MAgent2's 4 bite cells N W E S)
trainer          :class:`~colonylab.collective_ml.trainers.ppo.PPO`
selection        every ``validate_every`` iterations ``validate_episodes`` fresh episodes;
                 the best validated catch rate is ``checkpoints/tiger-deer.pt``
===============  ==========================================================================

**Catch rate**: deer killed in an episode over the deer at its start (``deer_killed``:
their number). **Tiger survival**: the share of the tigers alive at the end of the
episode. **Pair bites**: the share of bites that land on a deer another tiger bites in
the same step (what MAgent2 pays). **Encirclement of captures**: for every deer killed,
the sectors N, E, S, W around it (:func:`~colonylab.emergence.grid.attack_sectors`)
covered by the tigers that bit it in the killing step, over 4 (0.25: one side, 1: all
four); ``surround``: the sectors holding any tiger within 2 cells of it, over 4;
``attackers``: tigers biting it in that step.

Scripted references: ``random`` tigers (uniform over the 9 actions) and the lab's
``greedy`` (``colonylab.envs.magent._env.greedy``, the MAgent2 worlds' scripted policy:
bite an adjacent deer, else step toward the nearest one in view, else toward the deer's
centre of mass).

Writes ``metrics.jsonl`` and TensorBoard (``charts/catch_rate``, ``charts/deer_killed``,
``charts/tiger_survival``, ``charts/pair_bites``, ``emergence/encirclement``,
``emergence/surround``, ``emergence/attackers``, ``validation/...``, PPO's losses),
``checkpoints/latest.pt`` (every ``checkpoint_every`` iterations, at the end, on
Ctrl-C; ``--resume RUN_DIR`` continues it), ``checkpoints/tiger-deer.pt`` (best validated
weights), ``media/training.png`` (learning curves) and ``media/episode.gif`` (one
episode of the final weights; deer red, tigers blue, walls grey).

**Measured** (2 shared cores under load, 2026-12-02). Shipped
``runs/checkpoints/tiger-deer.pt`` = the best validated weights (iteration 340, 8
validation episodes: 0.960) of ``colony train tiger-deer --minutes 22`` (stopped by the
time limit after 900 iterations, ~22 min; ``colony train tiger-deer --iterations 340``
writes bit-identical weights: rerun and checked on the CPU). On 20 fresh episodes
(``colony eval tiger-deer``, sampled actions) the learned tigers kill 0.942 of the deer (95.2 of 101 per episode) and 0.26
of them survive the 300 steps; the scripted greedy tigers 0.932 (94.1) with 0.12
surviving; random tigers 0.0005 (0.05 deer) and all starve by step ~100. So the
learned tigers match greedy's catch and keep twice as many tigers fed, but do not
surround: their captures are hit by 1.27 tigers in the killing step (greedy 1.22),
``encirclement`` 0.32 (greedy 0.31), from >= 3 sides 1% (greedy 1%); the pair-bite
share (what MAgent2 pays) rose from ~0.10 to ~0.25 of training bites (0.16 on the
eval episodes, greedy 0.15). Learning is fast: validation catch 0.79 at iteration 20,
~0.9 from iteration 60 on (media/training.png).

    colony train tiger-deer
    colony eval tiger-deer --json runs/out/tiger-deer-eval.json
    colony watch tiger-deer
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from colonylab import agents
from colonylab._checks import check_choice, check_dataclass_ints, check_float
from colonylab.agents.grid_policy import GridPolicy, attack_mask
from colonylab.emergence.grid import attack_sectors, encirclement_coverage
from colonylab.envs.magent import tiger_deer_v4
from colonylab.runs.common.curves import read_metrics, series, smooth
from colonylab.runs.common.stages import load_model
from colonylab.runs.experiments._grid_ppo import (
    EpisodesTask,
    GridPPOConfig,
    MAgentEpisodes,
    none_for_nan,
    record_finite,
    report_rows,
    run_grid_ppo,
    set_threads,
    start_run,
    trained_config,
)
from colonylab.runs.ppo_loop import PPORun

NAME = "tiger-deer"
CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
SHIPPED = CHECKPOINTS / f"{NAME}.pt"
DEER, TIGER = 0, 1
"""MAgent2's group handles."""
VIEW_SHAPE = (9, 9, 5)
N_ACTIONS = 9
N_DEER_ACTIONS = 5
STAY = 2
FIRST_ATTACK = 5
DEER_CHANNEL = 3
ATTACK_OFFSETS = ((-1, 0), (0, -1), (0, 1), (1, 0))
"""(dy, dx) of MAgent2's tiger bites 5..8 (the attack circle row by row); view cell
``(4 + dy, 4 + dx)`` (checked against the engine in the tests)."""
TIGERS = ("learned", "random", "greedy")
SURROUND = 2
TRAIN_SEED_BASE = 1_000_000
VALIDATION_SEED_BASE = 500_000_000
console = Console()


@dataclass(frozen=True)
class Config(GridPPOConfig):
    """Train tigers to hunt deer together (MAgent2's tiger_deer_v4) by shared PPO."""

    worlds: int = 8
    """Episodes stepped side by side (the learner's rows: worlds x tigers)."""
    map_size: int = 45
    """Map side (MAgent2's default 45: 101 deer, 20 tigers)."""
    max_cycles: int = 300
    """Steps of an episode (MAgent2's default)."""
    deer_policy: str = "random"
    """Scripted deer: random (uniform moves) or noop (stand still)."""
    bite_reward: float = 0.1
    """Shaping added to a tiger's reward per bite it lands (0: MAgent2's reward only, which
    pays only bites shared with another tiger; a kill takes ~7 bites)."""
    iterations: int = 3000
    """PPO iterations (each: rollout_steps steps of every episode, then the update)."""
    rollout_steps: int = 50
    """Steps of every episode per iteration."""
    validate_every: int = 20
    """Play validation episodes every this many iterations."""
    validate_episodes: int = 8
    """Validation episodes (fresh seeds) per validation."""
    episodes: int = 20
    """``colony eval``: episodes per row."""
    argmax: bool = False
    """Validation, eval, watch and the episode gif: the learned tigers take their most
    likely legal action (False: sample, as in training)."""
    eval_seed: int = 900_000_000
    """``colony eval`` / ``watch``: seed of the first episode (training and validation use
    others)."""
    seed: int = 0
    """Seed of the network, the trainer and the episodes."""
    plots: bool = True
    """Write media/training.png and media/episode.gif."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_dataclass_ints(
            self,
            {"map_size": tiger_deer_v4.MIN_MAP_SIZE, "max_cycles": 1, "validate_episodes": 1},
        )
        check_choice("--deer-policy", self.deer_policy, ("random", "noop"))
        check_float("--bite-reward", self.bite_reward)


# -- the world, the network ------------------------------------------------------------------
def make_world(cfg: Config) -> tiger_deer_v4.TigerDeerWorld:
    """One episode's world (MAgent2's rules; a single Numba thread)."""
    return tiger_deer_v4.TigerDeerWorld(
        tiger_deer_v4.TigerDeerConfig(map_size=cfg.map_size, max_cycles=cfg.max_cycles, threads=1)
    )


def build_policy(cfg: Config) -> GridPolicy:
    """The shared network (initial weights from torch's current seed)."""
    return GridPolicy(VIEW_SHAPE, N_ACTIONS, hidden=cfg.hidden)


def masks(view: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Legal actions ``bool[N, 9]``: a bite only on a cell where the view shows a deer."""
    return attack_mask(view, N_ACTIONS, FIRST_ATTACK, ATTACK_OFFSETS, DEER_CHANNEL, out=out)


def captures(
    pos: np.ndarray, target: np.ndarray, died: np.ndarray, tigers: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(sectors int8[M], attackers int64[M], surround int8[M])`` of the deer killed in the
    step just taken: ``pos`` the agents' ``(y, x)`` before it, ``target`` each agent's bite
    target (-1 none), ``died`` the deer that died in it, ``tigers`` the living tigers' rows
    (module doc)."""
    hit = target >= 0
    kill = np.where(hit & died[np.maximum(target, 0)], target, -1).astype(np.int32)
    victims, sectors = encirclement_coverage(pos, kill, return_targets=True)
    attackers = np.bincount(kill[kill >= 0], minlength=len(pos))[victims]
    surround = np.zeros(len(victims), np.int8)
    for j, v in enumerate(victims):
        d = pos[tigers].astype(np.int64) - pos[v].astype(np.int64)
        near = np.abs(d).max(axis=1) <= SURROUND
        sec = attack_sectors(d[near, 0], d[near, 1])
        surround[j] = len(set(sec[sec >= 0].tolist()))
    return sectors, attackers.astype(np.int64), surround


class Episodes(MAgentEpisodes):
    """``worlds`` tiger_deer_v4 episodes with scripted deer; the tigers' actions come from
    outside (``step``). ``view`` / ``mask`` / ``alive`` hold the tigers' rows
    (``worlds * tigers``); finished episodes restart with the next seed. Measures
    accumulate until :meth:`drain`."""

    OBS_KEY, VIEW_SHAPE, N_ACTIONS, STAY = "tiger", VIEW_SHAPE, N_ACTIONS, STAY
    make_world = staticmethod(make_world)

    def __init__(self, cfg: Config, seed: int) -> None:
        super().__init__(cfg, seed)
        self.n_deer, self.t = self.n_others, self.per_world
        self.kills = np.zeros(cfg.worlds, np.int64)

    def _masks(self, view: np.ndarray, out: np.ndarray) -> None:
        masks(view, out=out)

    def reset_measures(self) -> None:
        self.finished: list[dict[str, float]] = []
        self.sectors: list[int] = []
        self.attackers: list[int] = []
        self.surround: list[int] = []
        self.bites = 0
        self.pair_bites = 0

    def _start(self, k: int) -> None:
        self.kills[k] = 0
        super()._start(k)

    def deer_actions(self, k: int) -> np.ndarray:
        if self.cfg.deer_policy == "noop":
            return np.full(self.n_deer, STAY, np.int64)
        return self.rngs[k].integers(0, N_DEER_ACTIONS, self.n_deer)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Step every episode with the tigers' ``actions``; returns the tigers' rewards
        (plus ``bite_reward`` per bite) and dones."""
        reward = np.zeros(self.n_agents, np.float32)
        done = np.zeros(self.n_agents, bool)
        nd = self.n_deer
        for k, world in enumerate(self.worlds):
            sl = self._rows(k)
            pos = world.pos
            before = world.alive
            result = world.step(np.concatenate([self.deer_actions(k), actions[sl]]))
            target = world.attack_target.copy()
            target[:nd] = -1
            bit = target[nd:] >= 0
            reward[sl] = result.reward[nd:] + self.cfg.bite_reward * bit
            after = world.alive
            died = before & ~after
            died[nd:] = False
            if bit.any():
                counts = np.bincount(target[target >= 0])
                self.bites += int(counts.sum())
                self.pair_bites += int(counts[counts >= 2].sum())
            n_died = int(died.sum())
            if n_died:
                self.kills[k] += n_died
                tigers = np.flatnonzero(before[nd:]) + nd
                s, a, r = captures(pos, target, died, tigers)
                self.sectors += s.tolist()
                self.attackers += a.tolist()
                self.surround += r.tolist()
            done[sl] = (result.terminated | result.truncated)[nd:]
            if bool(result.info.get("done")) or world.step_count >= self.cfg.max_cycles:
                done[sl] |= self.alive[sl]
                self.finished.append(
                    {
                        "catch_rate": self.kills[k] / nd,
                        "deer_killed": float(self.kills[k]),
                        "tiger_survival": float(after[nd:].mean()),
                        "steps": float(world.step_count),
                    }
                )
                self._start(k)
            else:
                self._take(k, result.obs)
        return reward, done

    def drain(self) -> dict[str, float]:
        """:func:`summarise` of the measures since the last call (then cleared)."""
        out = summarise(
            self.finished, self.sectors, self.attackers, self.surround, self.bites,
            self.pair_bites,
        )  # fmt: skip
        self.reset_measures()
        return out


def summarise(
    finished: list[dict[str, float]],
    sectors: list[int],
    attackers: list[int],
    surround: list[int],
    bites: int,
    pair_bites: int,
) -> dict[str, float]:
    """Means over the finished episodes and the captures (module doc); NaN when none."""
    nan = float("nan")
    s = np.asarray(sectors, float)

    def mean(key: str) -> float:
        return float(np.mean([f[key] for f in finished])) if finished else nan

    return {
        "catch_rate": mean("catch_rate"),
        "deer_killed": mean("deer_killed"),
        "tiger_survival": mean("tiger_survival"),
        "steps": mean("steps"),
        "pair_bites": pair_bites / bites if bites else nan,
        "encirclement": float(np.mean(s) / 4) if s.size else nan,
        "encircled": float(np.mean(s >= 3)) if s.size else nan,
        "attackers": float(np.mean(attackers)) if attackers else nan,
        "surround": float(np.mean(surround) / 4) if surround else nan,
        "captures": float(s.size),
        "episodes": float(len(finished)),
    }


def play(
    cfg: Config, tigers: str, episodes: int, seed: int, policy: GridPolicy | None = None
) -> dict[str, float]:
    """Play ``episodes`` episodes (seeds ``seed, seed + 1, ...``, ``cfg.worlds`` at a time)
    with ``tigers``: ``learned`` (``policy``), ``random`` or ``greedy``."""
    check_choice("tigers", tigers, TIGERS)
    ep = Episodes(dataclasses.replace(cfg, worlds=min(cfg.worlds, episodes)), seed)
    return ep.play(tigers, episodes, seed, policy, cfg.argmax)


# -- training --------------------------------------------------------------------------------
TRAINING_KEYS = ("catch_rate", "deer_killed", "tiger_survival", "pair_bites")
EMERGENCE_KEYS = ("encirclement", "encircled", "attackers", "surround")


def main(cfg: Config, resume: str | None = None) -> dict[str, Any]:
    """Train; save ``latest.pt`` and the best validated ``tiger-deer.pt``; plot; gif.

    Args:
        cfg: The run's config.
        resume: A run directory to continue from its ``checkpoints/latest.pt``.
    """
    start_run(cfg)
    policy = build_policy(cfg)
    episodes = Episodes(cfg, TRAIN_SEED_BASE * (cfg.seed + 1))

    def scalars(iteration: int, record: dict[str, float]) -> None:
        s = episodes.drain()
        record_finite(record, "charts", s, TRAINING_KEYS)
        record_finite(record, "emergence", s, EMERGENCE_KEYS)
        record["charts/captures_per_step"] = s["captures"] / (cfg.rollout_steps * cfg.worlds)

    def validate(iteration: int, record: dict[str, float]) -> tuple[Any, dict[str, Any]]:
        v = play(cfg, "learned", cfg.validate_episodes,
                 VALIDATION_SEED_BASE + iteration * 1000, policy)  # fmt: skip
        for key in (*TRAINING_KEYS, *EMERGENCE_KEYS):
            record[f"validation/{key}"] = v[key]
        metrics = {"validation_catch_rate": v["catch_rate"],
                   "validation_tiger_survival": v["tiger_survival"],
                   "validation_episodes": cfg.validate_episodes,
                   "iteration": iteration}  # fmt: skip
        return v["catch_rate"], metrics

    def progress(record: dict[str, float]) -> str:
        vc = record.get("validation/catch_rate")
        return (
            f"catch {record.get('charts/catch_rate', float('nan')):.3f}  "
            f"survival {record.get('charts/tiger_survival', float('nan')):.2f}  "
            f"pair bites {record.get('charts/pair_bites', float('nan')):.2f}  "
            f"captures/step {record['charts/captures_per_step']:.3f}  "
            f"encirclement {record.get('emergence/encirclement', float('nan')):.3f}"
            + (f"  | validation catch {vc:.3f}" if vc is not None else "")
        )

    def media(run: PPORun) -> None:
        if cfg.plots:
            plot_training(run.path / "metrics.jsonl", run.media / "training.png")
            record_episode(cfg, policy, run.media / "episode.gif", VALIDATION_SEED_BASE - 1)

    return run_grid_ppo(
        NAME, cfg, policy, EpisodesTask(episodes), resume=resume, seeds=episodes,
        best_file=SHIPPED.name, scalars=scalars, validate=validate, progress=progress,
        media=media, describe_best=lambda score: f"best validated catch rate {score}",
        console=console,
    )  # fmt: skip


# -- pictures --------------------------------------------------------------------------------
def plot_training(metrics: Path, path: Path, references: dict[str, float] | None = None) -> Path:
    """Learning curves: catch rate (training, validation; ``references``: catch rates as
    horizontal lines), tiger survival and pair bites, encirclement of captures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), constrained_layout=True)
    x, y = series(rows, "charts/catch_rate")
    axes[0].plot(x, smooth(y), color="C0", alpha=0.5, label="training episodes")
    x, y = series(rows, "validation/catch_rate")
    axes[0].plot(x, y, "o-", color="C0", ms=3, label="validation (fresh seeds)")
    for j, (name, value) in enumerate((references or {}).items()):
        axes[0].axhline(value, color="0.4", ls=("--", ":", "-.")[j % 3], lw=1, label=name)
    axes[0].set(xlabel="PPO iteration", ylabel="deer killed / deer at start", ylim=(0, None),
                title="catch rate per episode")  # fmt: skip
    for key, c, label in (("tiger_survival", "C2", "tiger survival (end of episode)"),
                          ("pair_bites", "C3", "pair bites (share of bites)")):  # fmt: skip
        x, y = series(rows, f"charts/{key}")
        axes[1].plot(x, smooth(y), color=c, label=label)
        x, y = series(rows, f"validation/{key}")
        axes[1].plot(x, y, "o", color=c, ms=3)
    axes[1].set(xlabel="PPO iteration", ylim=(0, 1.02), title="survival, bites together")
    for key, c, label in (("encirclement", "C4", "encirclement (sectors / 4)"),
                          ("surround", "C5", "surround (tigers <= 2 away)"),
                          ("encircled", "C6", "encircled (>= 3 sides)")):  # fmt: skip
        x, y = series(rows, f"emergence/{key}")
        axes[2].plot(x, smooth(y), color=c, label=label)
    axes[2].set(xlabel="PPO iteration", ylim=(0, 1.02), title="encirclement of captures")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def record_episode(
    cfg: Config, policy: GridPolicy, path: Path, seed: int, every: int = 2, steps: int | None = None
) -> Path:
    """A GIF of one episode (seed ``seed``) of the learned tigers: every ``every``-th step
    (deer red, tigers blue, walls grey)."""
    ep = Episodes(dataclasses.replace(cfg, worlds=1), seed)
    return ep.record(policy, path, seed, cfg.argmax, every, steps or cfg.max_cycles, fps=15)


# -- checkpoint, evaluation, watching --------------------------------------------------------
def load_policy(checkpoint: str | Path | None = None) -> tuple[GridPolicy, dict[str, Any]]:
    """``(policy, checkpoint dict)`` of a ``tiger-deer`` checkpoint (default: shipped)."""
    return load_model(checkpoint if checkpoint is not None else SHIPPED, NAME, agents.build)


def world_config(cfg: Config, ckpt: dict[str, Any]) -> Config:
    """``cfg`` with the world settings the checkpoint was trained on."""
    return trained_config(cfg, ckpt, ("map_size", "max_cycles", "deer_policy", "hidden"))


def evaluate(cfg: Config, checkpoint: str | None = None) -> dict[str, Any]:
    """``colony eval tiger-deer``: rows ``{tigers, deer, episodes, catch_rate, deer_killed,
    tiger_survival, pair_bites, encirclement, ...}`` for the learned, random and greedy
    tigers on the checkpoint's world, fresh seeds (module doc)."""
    set_threads(cfg)
    policy, ckpt = load_policy(checkpoint)
    wc = world_config(cfg, ckpt)
    rows = []
    for who in TIGERS:
        s = none_for_nan(play(wc, who, cfg.episodes, cfg.eval_seed, policy))
        s.pop("episodes")
        rows.append({"tigers": who, "deer": wc.deer_policy, "episodes": cfg.episodes,
                     "map_size": wc.map_size, **s})  # fmt: skip
    columns = ("tigers", "deer", "episodes", "catch_rate", "deer_killed", "tiger_survival",
               "pair_bites", "encirclement", "surround", "attackers")  # fmt: skip
    return report_rows(
        f"{NAME}: {Path(str(checkpoint or SHIPPED)).name}", rows, columns,
        checkpoint=checkpoint if checkpoint is not None else SHIPPED, ckpt=ckpt,
        console=console,
        catch_rate="deer killed in an episode of max_cycles steps / deer at its start",
        tiger_survival="share of the tigers alive at the end of the episode",
    )  # fmt: skip


def watch(cfg: Config, checkpoint: str | None = None) -> tiger_deer_v4.TigerDeerWorld:
    """``colony watch tiger-deer``: the learned tigers against the scripted deer;
    ``world.step()`` plays both (deer red, tigers blue)."""
    policy, ckpt = load_policy(checkpoint)
    wc = dataclasses.replace(world_config(cfg, ckpt), worlds=1)
    ep = Episodes(wc, cfg.eval_seed)
    world = ep.worlds[0]
    generator = torch.Generator().manual_seed(cfg.eval_seed)

    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        view = obs["tiger"]
        inputs = {"view": torch.from_numpy(view), "mask": torch.from_numpy(masks(view))}
        tigers = policy.act(inputs, generator, deterministic=wc.argmax)[0].numpy()
        return np.concatenate([ep.deer_actions(0), tigers])

    world.default_policy = act
    world.metadata = {**world.metadata, "name": f"{NAME} ({Path(str(checkpoint or SHIPPED)).name})"}
    world.reset(seed=cfg.eval_seed)
    ep.rngs[0] = np.random.default_rng(cfg.eval_seed)
    return world


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
