"""Experiment ``gather-learn``: omnivores learn to gather food by parameter-shared PPO on
MAgent2's ``gather_v5`` rules.

===============  ==========================================================================
world            ``colonylab.envs.magent.gather_v5`` (MAgent2's rules and rewards: map 200,
                 495 omnivores, 2,272 food agents of HP 25 in squares and a central
                 lattice, ``max_cycles=500``; +5 for the bite that eats a food, +0.5 for
                 any other bite of food, -0.1 per attack, -0.01 a step, -1 on death;
                 omnivores HP 3, damage 6, speed 3, view radius 7). An episode ends when
                 every food or every omnivore is gone, or after ``max_cycles`` steps;
                 ``worlds`` episodes side by side, a finished one restarts with the next
                 seed
agent            :class:`~colonylab.agents.grid_policy.GridPolicy` (tanh MLP 128-128 over
                 the 15 x 15 x 5 view = 1,125 inputs, actor over the 33 actions, critic),
                 shared by every omnivore of every episode; spec ``{"type": "grid"}``
action mask      :func:`~colonylab.agents.grid_policy.attack_mask`: bite ``29 + k`` is
                 legal only where the view shows food (MAgent2's 4 bite cells N W E S):
                 the learned omnivores, like the scripted greedy, never bite each other
                 (``--no-mask-attacks``: every action legal)
trainer          :class:`~colonylab.collective_ml.trainers.ppo.PPO`
selection        every ``validate_every`` iterations ``validate_episodes`` fresh episodes;
                 the best validated food per omnivore is ``checkpoints/gather-learn.pt``
===============  ==========================================================================

**Food per agent**: food agents eaten in an episode over the omnivores at its start;
``food_share``: eaten over the food at the start; ``survival``: the share of omnivores
alive at the end; ``steps``: the episode's length (short when the food runs out);
``food_per_100_steps``: food eaten per omnivore per 100 steps of the episode;
``steps_to_90``: the step by which 90% of the food was eaten (``max_cycles`` if never:
how fast they clear the map). **Clusters**
(emergence): the mean size of the 8-connected groups of omnivores
(:func:`~colonylab.emergence.grid.clusters`), sampled every 10th step of the first
episode slot.

Scripted references: ``random`` (uniform over the 33 actions: the omnivores bite each
other and starve) and the lab's ``greedy`` for the MAgent2 worlds
(``colonylab.envs.magent._env.greedy``: bite adjacent food, else move toward the
nearest food in view, else toward the food's centre of mass). The lab's
``envs/grid/gather_policies.py`` (``forage``, ``greedy``) reads the food planes of our
own gather variant, where food lies on cells; ``gather_v5``'s food is a group of
agents in the view's enemy planes, so they do not apply here.

Writes ``metrics.jsonl`` and TensorBoard (``charts/food_per_agent``,
``charts/food_share``, ``charts/survival``, ``charts/food_per_step``, ``emergence/
cluster_mean``, ``validation/...``, PPO's losses), ``checkpoints/latest.pt`` (every
``checkpoint_every`` iterations, at the end, on Ctrl-C; ``--resume RUN_DIR``),
``checkpoints/gather-learn.pt`` (best validated weights), ``media/training.png`` and
``media/episode.gif`` (one episode of the final weights; food red, omnivores blue).

**Measured** (2 shared cores under load, 2026-12-02). Shipped
``runs/checkpoints/gather-learn.pt`` = the best validated weights (iteration 200, the
last; 2 validation episodes) of ``colony train gather-learn --minutes 21`` (200
iterations, ~21 min; the shipped copy keeps the weights, spec, config and provenance
but not the optimizer / rollout state, which made it 6.6 MB). On 6 fresh episodes
(``colony eval gather-learn --episodes 6``, sampled actions) the learned omnivores eat
all 2,272 food (4.59 per omnivore), 90% of it by step 214 (mean), the last by step 276,
and all 495 survive; the scripted greedy also eats it all, 90% by step 100 and the last
by step 128 (2.1x faster), all survive; random omnivores eat 0.0003 food each and bite
each other until 54% are left. Emergence: greedy omnivores converge into big clumps
(mean 8-connected cluster 62 omnivores), the learned ones stay spread out (1.07, random
1.04). Learning is fast: validation eats 98.5% of the food by iteration 25 (all of it
from 75 on).

    colony train gather-learn
    colony eval gather-learn --json runs/out/gather-learn-eval.json
    colony watch gather-learn
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
from colonylab._checks import check_choice, check_dataclass_ints
from colonylab.agents.grid_policy import GridPolicy, attack_mask
from colonylab.emergence.grid import clusters
from colonylab.envs.magent import gather_v5
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

NAME = "gather-learn"
CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
SHIPPED = CHECKPOINTS / f"{NAME}.pt"
FOOD, OMNIVORE = 0, 1
"""MAgent2's group handles."""
VIEW_SHAPE = (15, 15, 5)
N_ACTIONS = 33
STAY = 14
FIRST_ATTACK = 29
FOOD_CHANNEL = 3
ATTACK_OFFSETS = ((-1, 0), (0, -1), (0, 1), (1, 0))
"""(dy, dx) of MAgent2's omnivore bites 29..32; view cell ``(7 + dy, 7 + dx)`` (checked
against the engine in the tests)."""
GATHERERS = ("learned", "random", "greedy")
CLUSTER_EVERY = 10
TRAIN_SEED_BASE = 1_000_000
VALIDATION_SEED_BASE = 500_000_000
console = Console()


@dataclass(frozen=True)
class Config(GridPPOConfig):
    """Train omnivores to gather food (MAgent2's gather_v5) by shared PPO."""

    worlds: int = 2
    """Episodes stepped side by side (the learner's rows: worlds x omnivores)."""
    map_size: int = 200
    """Map side (MAgent2 fixes 200: 495 omnivores; >= 60 shrinks the squares alike)."""
    max_cycles: int = 500
    """Steps of an episode at most (MAgent2's default)."""
    mask_attacks: bool = True
    """Allow a bite only where the view shows food (off: every action legal)."""
    iterations: int = 1500
    """PPO iterations (each: rollout_steps steps of every episode, then the update)."""
    rollout_steps: int = 32
    """Steps of every episode per iteration."""
    validate_every: int = 25
    """Play validation episodes every this many iterations."""
    validate_episodes: int = 2
    """Validation episodes (fresh seeds) per validation."""
    episodes: int = 10
    """``colony eval``: episodes per row."""
    argmax: bool = False
    """Validation, eval, watch and the gif: the learned omnivores take their most likely
    legal action (False: sample, as in training)."""
    eval_seed: int = 900_000_000
    """``colony eval`` / ``watch``: seed of the first episode."""
    seed: int = 0
    """Seed of the network, the trainer and the episodes."""
    plots: bool = True
    """Write media/training.png and media/episode.gif."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_dataclass_ints(
            self, {"map_size": gather_v5.MIN_MAP_SIZE, "max_cycles": 1, "validate_episodes": 1}
        )


def make_world(cfg: Config) -> gather_v5.GatherWorld:
    """One episode's world (MAgent2's rules; a single Numba thread)."""
    return gather_v5.GatherWorld(
        gather_v5.GatherConfig(map_size=cfg.map_size, max_cycles=cfg.max_cycles, threads=1)
    )


def build_policy(cfg: Config) -> GridPolicy:
    """The shared network (initial weights from torch's current seed)."""
    return GridPolicy(VIEW_SHAPE, N_ACTIONS, hidden=cfg.hidden)


def masks(view: np.ndarray, enabled: bool = True, out: np.ndarray | None = None) -> np.ndarray:
    """Legal actions ``bool[N, 33]``: a bite only where the view shows food."""
    return attack_mask(
        view, N_ACTIONS, FIRST_ATTACK, ATTACK_OFFSETS, FOOD_CHANNEL, out=out, enabled=enabled
    )


class Episodes(MAgentEpisodes):
    """``worlds`` gather_v5 episodes; the omnivores' actions come from outside (``step``).
    ``view`` / ``mask`` / ``alive`` hold the omnivores' rows; finished episodes restart
    with the next seed; measures accumulate until :meth:`drain`."""

    OBS_KEY, VIEW_SHAPE, N_ACTIONS, STAY = "omnivore", VIEW_SHAPE, N_ACTIONS, STAY
    make_world = staticmethod(make_world)

    def __init__(self, cfg: Config, seed: int) -> None:
        super().__init__(cfg, seed)
        self.n_food, self.a = self.n_others, self.per_world
        self.t90 = np.zeros(cfg.worlds, np.int64)

    def _masks(self, view: np.ndarray, out: np.ndarray) -> None:
        masks(view, self.cfg.mask_attacks, out=out)

    def reset_measures(self) -> None:
        self.finished: list[dict[str, float]] = []
        self.eaten = 0
        self.agent_steps = 0
        self.cluster_means: list[float] = []

    def _start(self, k: int) -> None:
        self.t90[k] = 0
        super()._start(k)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Step every episode; returns the omnivores' rewards and dones."""
        reward = np.zeros(self.n_agents, np.float32)
        done = np.zeros(self.n_agents, bool)
        for k, world in enumerate(self.worlds):
            sl = self._rows(k)
            eaten = int(world.deaths[FOOD])
            self.agent_steps += int(self.alive[sl].sum())
            result = world.step(actions[sl])
            self.eaten += int(world.deaths[FOOD]) - eaten
            if not self.t90[k] and world.deaths[FOOD] >= 0.9 * self.n_food:
                self.t90[k] = world.step_count
            reward[sl] = result.reward
            done[sl] = result.terminated | result.truncated
            if k == 0 and world.step_count % CLUSTER_EVERY == 0:
                c = clusters(world.grid, world.team, world.alive, 0, connectivity=8)
                if c.count:
                    self.cluster_means.append(c.mean)
            if bool(result.info.get("done")) or world.step_count >= self.cfg.max_cycles:
                done[sl] |= self.alive[sl]
                food = float(world.deaths[FOOD])
                self.finished.append(
                    {
                        "food_per_agent": food / self.a,
                        "food_share": food / self.n_food,
                        "survival": float(world.alive.mean()),
                        "steps": float(world.step_count),
                        "food_per_100_steps": 100.0 * food / self.a / world.step_count,
                        "steps_to_90": float(self.t90[k] or self.cfg.max_cycles),
                    }
                )
                self._start(k)
            else:
                self._take(k, result.obs)
        return reward, done

    def drain(self) -> dict[str, float]:
        out = summarise(self.finished, self.eaten, self.agent_steps, self.cluster_means)
        self.reset_measures()
        return out


EPISODE_KEYS = (
    "food_per_agent", "food_share", "survival", "steps", "food_per_100_steps", "steps_to_90",
)  # fmt: skip


def summarise(
    finished: list[dict[str, float]], eaten: int, agent_steps: int, cluster_means: list[float]
) -> dict[str, float]:
    """Means over the finished episodes (module doc); NaN when none."""
    nan = float("nan")
    out = {k: float(np.mean([f[k] for f in finished])) if finished else nan for k in EPISODE_KEYS}
    out["food_per_step"] = eaten / agent_steps if agent_steps else nan
    out["cluster_mean"] = float(np.mean(cluster_means)) if cluster_means else nan
    out["episodes"] = float(len(finished))
    return out


def play(
    cfg: Config, who: str, episodes: int, seed: int, policy: GridPolicy | None = None
) -> dict[str, float]:
    """Play ``episodes`` episodes (seeds ``seed, seed + 1, ...``, ``cfg.worlds`` at a time)
    with ``who``: ``learned`` (``policy``), ``random`` or ``greedy``."""
    check_choice("gatherers", who, GATHERERS)
    ep = Episodes(dataclasses.replace(cfg, worlds=min(cfg.worlds, episodes)), seed)
    return ep.play(who, episodes, seed, policy, cfg.argmax)


# -- training --------------------------------------------------------------------------------
def main(cfg: Config, resume: str | None = None) -> dict[str, Any]:
    """Train; save ``latest.pt`` and the best validated ``gather-learn.pt``; plot; gif.

    Args:
        cfg: The run's config.
        resume: A run directory to continue from its ``checkpoints/latest.pt``.
    """
    start_run(cfg)
    policy = build_policy(cfg)
    episodes = Episodes(cfg, TRAIN_SEED_BASE * (cfg.seed + 1))

    def scalars(iteration: int, record: dict[str, float]) -> None:
        s = episodes.drain()
        record_finite(record, "charts", s, (*EPISODE_KEYS, "food_per_step"))
        record_finite(record, "emergence", s, ("cluster_mean",))

    def validate(iteration: int, record: dict[str, float]) -> tuple[Any, dict[str, Any]]:
        v = play(cfg, "learned", cfg.validate_episodes,
                 VALIDATION_SEED_BASE + iteration * 1000, policy)  # fmt: skip
        for key in (*EPISODE_KEYS, "food_per_step", "cluster_mean"):
            record[f"validation/{key}"] = v[key]
        metrics = {"validation_food_per_agent": v["food_per_agent"],
                   "validation_food_per_100_steps": v["food_per_100_steps"],
                   "validation_survival": v["survival"],
                   "validation_episodes": cfg.validate_episodes,
                   "iteration": iteration}  # fmt: skip
        return (v["food_per_agent"], v["food_per_100_steps"]), metrics

    def progress(record: dict[str, float]) -> str:
        vf = record.get("validation/food_per_agent")
        return (
            f"food/agent-step {record.get('charts/food_per_step', float('nan')):.4f}  "
            f"food/agent {record.get('charts/food_per_agent', float('nan')):.2f}  "
            f"survival {record.get('charts/survival', float('nan')):.2f}  "
            f"clusters {record.get('emergence/cluster_mean', float('nan')):.2f}"
            + (f"  | validation food/agent {vf:.2f}" if vf is not None else "")
        )

    def media(run: PPORun) -> None:
        if cfg.plots:
            plot_training(run.path / "metrics.jsonl", run.media / "training.png")
            record_episode(cfg, policy, run.media / "episode.gif", VALIDATION_SEED_BASE - 1)

    return run_grid_ppo(
        NAME, cfg, policy, EpisodesTask(episodes), resume=resume, seeds=episodes,
        best_file=SHIPPED.name, scalars=scalars, validate=validate, progress=progress,
        media=media, describe_best=lambda score: f"best validated food per omnivore {score}",
        console=console,
    )  # fmt: skip


# -- pictures --------------------------------------------------------------------------------
def plot_training(metrics: Path, path: Path, references: dict[str, float] | None = None) -> Path:
    """Learning curves: food eaten per omnivore-step (training) and per omnivore per
    episode (validation; ``references`` as lines), survival, cluster size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), constrained_layout=True)
    x, y = series(rows, "charts/food_per_step")
    axes[0].plot(x, smooth(y), color="C0", label="training: food per omnivore-step")
    axes[0].set(xlabel="PPO iteration", ylabel="food eaten / omnivore-step",
                title="how fast they eat (training)")  # fmt: skip
    x, y = series(rows, "charts/food_per_agent")
    axes[1].plot(x, y, color="C1", alpha=0.4, label="training episodes")
    x, y = series(rows, "validation/food_per_agent")
    axes[1].plot(x, y, "o-", color="C1", ms=3, label="validation (fresh seeds)")
    for j, (name, value) in enumerate((references or {}).items()):
        axes[1].axhline(value, color="0.4", ls=("--", ":", "-.")[j % 3], lw=1, label=name)
    axes[1].set(xlabel="PPO iteration", ylabel="food eaten / omnivore", ylim=(0, None),
                title="food per omnivore per episode")  # fmt: skip
    x, y = series(rows, "validation/steps_to_90")
    if x:
        twin = axes[1].twinx()
        twin.plot(x, y, "s--", color="C3", ms=3, label="validation: step 90% eaten")
        twin.set(ylabel="step by which 90% of the food is eaten", ylim=(0, None))
        twin.legend(loc="lower right", fontsize=8)
    x, y = series(rows, "charts/survival")
    axes[2].plot(x, y, color="C2", label="survival (end of episode)")
    x, y = series(rows, "emergence/cluster_mean")
    ax2 = axes[2].twinx()
    ax2.plot(x, smooth(y), color="C4", label="mean cluster size (8-connected)")
    axes[2].set(xlabel="PPO iteration", ylim=(0, 1.02), title="survival, clustering")
    ax2.legend(loc="lower right", fontsize=8)
    for ax in axes:
        ax.legend(fontsize=8, loc="upper left")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def record_episode(
    cfg: Config, policy: GridPolicy, path: Path, seed: int, every: int = 2, steps: int | None = None
) -> Path:
    """A GIF of one episode (seed ``seed``) of the learned omnivores, every ``every``-th
    step (food red, omnivores blue)."""
    ep = Episodes(dataclasses.replace(cfg, worlds=1), seed)
    steps = steps or cfg.max_cycles
    return ep.record(policy, path, seed, cfg.argmax, every, steps, fps=15, max_size=400)


# -- checkpoint, evaluation, watching --------------------------------------------------------
def load_policy(checkpoint: str | Path | None = None) -> tuple[GridPolicy, dict[str, Any]]:
    """``(policy, checkpoint dict)`` of a ``gather-learn`` checkpoint (default: shipped)."""
    return load_model(checkpoint if checkpoint is not None else SHIPPED, NAME, agents.build)


def world_config(cfg: Config, ckpt: dict[str, Any]) -> Config:
    """``cfg`` with the world settings the checkpoint was trained on."""
    return trained_config(cfg, ckpt, ("map_size", "max_cycles", "mask_attacks", "hidden"))


def evaluate(cfg: Config, checkpoint: str | None = None) -> dict[str, Any]:
    """``colony eval gather-learn``: rows ``{gatherers, agents, episodes, food_per_agent,
    food_share, survival, steps, food_per_100_steps, ...}`` for the learned, random and
    greedy omnivores on the checkpoint's map, fresh seeds (module doc)."""
    set_threads(cfg)
    policy, ckpt = load_policy(checkpoint)
    wc = world_config(cfg, ckpt)
    rows = []
    n = Episodes(dataclasses.replace(wc, worlds=1), 0).a
    for who in GATHERERS:
        s = none_for_nan(play(wc, who, cfg.episodes, cfg.eval_seed, policy))
        s.pop("episodes")
        rows.append({"gatherers": who, "agents": n, "episodes": cfg.episodes,
                     "map_size": wc.map_size, **s})  # fmt: skip
    columns = ("gatherers", "agents", "episodes", "food_per_agent", "food_share", "survival",
               "steps", "steps_to_90", "cluster_mean")  # fmt: skip
    return report_rows(
        f"{NAME}: {Path(str(checkpoint or SHIPPED)).name}", rows, columns,
        checkpoint=checkpoint if checkpoint is not None else SHIPPED, ckpt=ckpt,
        console=console,
        food_per_agent="food agents eaten in an episode / omnivores at its start",
        survival="share of the omnivores alive at the end of the episode",
    )  # fmt: skip


def watch(cfg: Config, checkpoint: str | None = None) -> gather_v5.GatherWorld:
    """``colony watch gather-learn``: the learned omnivores (food red, omnivores blue);
    ``world.step()`` plays them."""
    policy, ckpt = load_policy(checkpoint)
    wc = world_config(cfg, ckpt)
    world = make_world(wc)
    generator = torch.Generator().manual_seed(cfg.eval_seed)

    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        view = obs["omnivore"]
        inputs = {"view": torch.from_numpy(view),
                  "mask": torch.from_numpy(masks(view, wc.mask_attacks))}  # fmt: skip
        return policy.act(inputs, generator, deterministic=wc.argmax)[0].numpy()

    world.default_policy = act
    world.metadata = {**world.metadata, "name": f"{NAME} ({Path(str(checkpoint or SHIPPED)).name})"}
    world.reset(seed=cfg.eval_seed)
    return world


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
