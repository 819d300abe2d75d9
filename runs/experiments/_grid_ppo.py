"""What the grid-PPO experiments share: ``battle-selfplay``, ``pursuit-coop``, ``tiger-deer``
and ``gather-learn`` each train one :class:`~colonylab.agents.grid_policy.GridPolicy` by
parameter-shared PPO on ``worlds`` grid worlds side by side, validate it every
``validate_every`` iterations on fresh seeds and keep the best validated weights.

Not an experiment (no ``colony train`` entry): the experiments import it, it imports no
experiment (of the worlds, only the MAgent2 engine's scripted ``greedy``).

- :class:`GridPPOConfig`: the PPO and run fields whose default and help are the same in
  all four (``--minutes``, ``--epochs``, ``--minibatches``, ``--lr``, ``--gamma``,
  ``--gae-lambda``, ``--entropy-coef``, ``--hidden``, ``--checkpoint-every``,
  ``--threads``, ``--out``) and the checks of the fields every one of them has. An
  experiment's ``Config`` subclasses it and adds its world, ``worlds``, ``iterations``,
  ``rollout_steps``, ``validate_every``, ``episodes``, ``eval_seed``, ``seed`` and
  ``plots`` (their defaults and help differ: "battles", "hunts", "episodes").
- :func:`run_grid_ppo`: ``main``'s wiring around :func:`~colonylab.runs.ppo_loop.train_ppo`:
  the resumable state (``next_seed`` of the training worlds, the best validation), the
  validation schedule, the best checkpoint, the progress line and the closing summary.
- :class:`MAgentEpisodes`: the episode runner of a two-group MAgent2 world whose group 1
  learns (tiger-deer's tigers, gather-learn's omnivores): worlds side by side, the
  learners' rows, restarts with the next seed, the scripted ``random`` / ``greedy``
  learners; the experiment adds its step and measures.
- :class:`EpisodesTask`: an episode runner (``reset()``, ``obs()``, ``step(actions)``)
  as PPO's task; :func:`learned_actions`, :func:`trained_config`, :func:`report_rows`
  for validation, ``colony eval`` and ``colony watch``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from colonylab._checks import check_dataclass_ints, check_float, check_optional_int
from colonylab.envs.magent._env import greedy as greedy_actions
from colonylab.runs.common.seeding import seed_everything
from colonylab.runs.ppo_loop import PPORun, ppo_config, train_ppo

__all__ = [
    "EpisodesTask",
    "GridPPOConfig",
    "MAgentEpisodes",
    "learned_actions",
    "none_for_nan",
    "record_finite",
    "report_rows",
    "run_grid_ppo",
    "set_threads",
    "start_run",
    "trained_config",
]


@dataclass(frozen=True)
class GridPPOConfig:
    """PPO and run fields shared by the grid-PPO experiments (module doc).

    A subclass defines ``worlds``, ``iterations``, ``rollout_steps``, ``validate_every``,
    ``episodes``, ``eval_seed`` and ``seed`` (checked here) and ``plots``; its own
    ``__post_init__`` calls this one first.
    """

    minutes: float = 0.0
    """Also stop after this many minutes of wall time, at a checkpoint (0: no limit)."""
    epochs: int = 4
    """PPO passes over each batch."""
    minibatches: int = 4
    """Minibatches per pass."""
    lr: float = 1e-3
    """Adam's learning rate."""
    gamma: float = 0.97
    """Discount."""
    gae_lambda: float = 0.95
    """GAE's lambda."""
    entropy_coef: float = 0.01
    """Weight of the entropy bonus."""
    hidden: tuple[int, ...] = (128, 128)
    """Widths of the shared tanh trunk."""
    checkpoint_every: int = 10
    """Write checkpoints/latest.pt every this many iterations (and at the end)."""
    threads: int | None = 1
    """Torch CPU threads (None: torch's default)."""
    out: str | None = None
    """Run directory root (default runs/out)."""

    def __post_init__(self) -> None:
        check_dataclass_ints(
            self,
            {"worlds": 1, "iterations": 1, "rollout_steps": 1, "epochs": 1, "minibatches": 1,
             "validate_every": 1, "checkpoint_every": 1, "episodes": 1, "eval_seed": 0,
             "seed": 0},
        )  # fmt: skip
        check_float("--minutes", self.minutes, 0.0)
        check_float("--lr", self.lr, 0.0, low_open=True)
        check_float("--gamma", self.gamma, 0.0, 1.0)
        check_float("--gae-lambda", self.gae_lambda, 0.0, 1.0)
        check_float("--entropy-coef", self.entropy_coef, 0.0)
        check_optional_int("--threads", self.threads, 1)
        self._check_hidden()

    def _check_hidden(self) -> None:
        """``--hidden``: one or more positive widths."""
        if not self.hidden or any(isinstance(h, bool) or int(h) < 1 for h in self.hidden):
            raise ValueError(f"--hidden must be positive widths, got {self.hidden!r}")


def set_threads(cfg: Any) -> None:
    """Torch's CPU threads from ``cfg.threads`` (None: leave torch's default)."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)


def run_grid_ppo(
    name: str,
    cfg: Any,
    policy: torch.nn.Module,
    task: Any,
    *,
    resume: str | None,
    seeds: Any,
    best_file: str,
    scalars: Callable[[int, dict[str, float]], Any],
    validate: Callable[[int, dict[str, float]], tuple[Any, dict[str, Any]]],
    progress: Callable[[dict[str, float]], str],
    media: Callable[[PPORun], Any],
    describe_best: Callable[[Any], str],
    console: Console,
    state: Callable[[], dict[str, Any]] | None = None,
    load_state: Callable[[dict[str, Any]], Any] | None = None,
) -> dict[str, Any]:
    """Train ``policy`` on ``task`` by :func:`~colonylab.runs.ppo_loop.train_ppo` with an
    experiment's callbacks; returns ``{"iterations", "best", "run"}``.

    After every iteration: ``scalars(iteration, record)`` adds the training worlds'
    measures to ``record``; every ``cfg.validate_every`` iterations and at the last,
    ``validate(iteration, record)`` plays the validation episodes, adds its
    ``validation/...`` keys and returns ``(score, metrics)``: a score (a number or a
    tuple, compared as such) at least as good as the best so far saves
    ``checkpoints/<best_file>`` with ``metrics`` in its provenance; then one line
    ``it N  steps/s  entropy ...`` + ``progress(record)``. At the end (also on Ctrl-C)
    ``media(run)`` (plots, videos) and ``describe_best(best score)`` + where the best
    checkpoint is.

    Args:
        name: the experiment's name (run folder, checkpoint kind).
        cfg: its config (a :class:`GridPPOConfig`).
        policy: the shared network (built after ``seed_everything``).
        task: the training worlds in PPO's array protocol.
        resume: a run directory to continue from its ``checkpoints/latest.pt``.
        seeds: the object whose ``next_seed`` the training worlds start from (saved
            and restored with the run).
        best_file: the best checkpoint's file name (``<name>.pt``).
        scalars, validate, progress, media, describe_best: as above.
        console: where the lines go.
        state, load_state: more resumable state, saved before ``next_seed`` and
            ``best`` in the trainer entry (e.g. an opponent pool) and restored from it.
    """
    best: dict[str, Any] = {"score": None, "iteration": 0}

    def trainer_state() -> dict[str, Any]:
        extra = state() if state is not None else {}
        return {**extra, "next_seed": seeds.next_seed, "best": dict(best)}

    def load_trainer_state(trainer: dict[str, Any]) -> None:
        if load_state is not None:
            load_state(trainer)
        seeds.next_seed = int(trainer["next_seed"])
        best.update(trainer["best"])

    def log(run: PPORun, iteration: int, record: dict[str, float]) -> None:
        scalars(iteration, record)
        if iteration % cfg.validate_every == 0 or iteration == cfg.iterations:
            score, metrics = validate(iteration, record)
            if best["score"] is None or _ordered(score) >= _ordered(best["score"]):
                best.update(score=list(score) if isinstance(score, tuple) else score,
                            iteration=iteration)  # fmt: skip
                run.save(best_file, metrics=metrics)
        console.print(
            f"it {iteration:4d}  {record['charts/agent_steps_per_s']:6.0f} steps/s  "
            f"entropy {record.get('losses/entropy', float('nan')):.2f}  " + progress(record)
        )

    def finish(run: PPORun) -> None:
        media(run)
        console.print(
            f"{describe_best(best['score'])} at iteration {best['iteration']}\n"
            f"checkpoint: {run.dir.checkpoints / best_file}"
        )

    run = train_ppo(
        name, policy, task, ppo_config(cfg), cfg, iterations=cfg.iterations, seed=cfg.seed,
        resume=resume, out=cfg.out, minutes=cfg.minutes, checkpoint_every=cfg.checkpoint_every,
        log=log, state=trainer_state, load_state=load_trainer_state, finish=finish,
        echo=console.print,
    )  # fmt: skip
    return {"iterations": run.iteration, "best": best["score"], "run": str(run.path)}


def start_run(cfg: Any) -> None:
    """Before building the network: torch's threads, then every generator seeded."""
    set_threads(cfg)
    seed_everything(cfg.seed)


def _ordered(score: Any) -> Any:
    """A score as compared: tuples (saved as lists) element by element."""
    return tuple(score) if isinstance(score, (tuple, list)) else score


class MAgentEpisodes:
    """``cfg.worlds`` episodes of a MAgent2-rules world with two groups -- 0 scripted or
    inert (deer, food), 1 the learners (tigers, omnivores) -- side by side; the learners'
    actions come from outside (the subclass's ``step``). ``view`` / ``mask`` / ``alive``
    hold the learners' rows (``worlds * per_world``); an episode restarts (:meth:`_start`)
    with the next seed and a generator of that seed (``rngs[k]``).

    A subclass sets ``OBS_KEY`` (the learners' observation), ``VIEW_SHAPE``,
    ``N_ACTIONS``, ``STAY`` and defines ``make_world(cfg)``, ``_masks(view, out)``,
    ``reset_measures()``, ``step`` and ``drain`` (its measures since the last call,
    summarised over ``finished``: :meth:`play` uses it).
    """

    LEARNERS, OTHERS = 1, 0
    """MAgent2's group handles."""
    OBS_KEY: str
    VIEW_SHAPE: tuple[int, int, int]
    N_ACTIONS: int
    STAY: int

    def __init__(self, cfg: Any, seed: int) -> None:
        self.cfg = cfg
        self.worlds = [self.make_world(cfg) for _ in range(cfg.worlds)]
        first = self.worlds[0]
        first.reset(seed=0)
        e = first.engine
        self.n_others = int(e.group_start[1] - e.group_start[0])
        self.per_world = int(e.group_start[2] - e.group_start[1])
        self.n_agents = cfg.worlds * self.per_world
        self.view = np.zeros((self.n_agents, *self.VIEW_SHAPE), np.float32)
        self.mask = np.ones((self.n_agents, self.N_ACTIONS), bool)
        self.alive = np.ones(self.n_agents, bool)
        self.next_seed = seed
        self.rngs = [np.random.default_rng(0) for _ in range(cfg.worlds)]
        self.reset_measures()

    def make_world(self, cfg: Any) -> Any:
        raise NotImplementedError

    def _masks(self, view: np.ndarray, out: np.ndarray) -> None:
        raise NotImplementedError

    def reset_measures(self) -> None:
        raise NotImplementedError

    def _rows(self, k: int) -> slice:
        """World ``k``'s learner rows."""
        return slice(k * self.per_world, (k + 1) * self.per_world)

    def _start(self, k: int) -> None:
        seed = self.next_seed
        self.next_seed += 1
        obs = self.worlds[k].reset(seed=seed)
        self.rngs[k] = np.random.default_rng(seed)
        self._take(k, obs)

    def _take(self, k: int, obs: dict[str, np.ndarray]) -> None:
        sl = self._rows(k)
        self.view[sl] = obs[self.OBS_KEY]
        self.alive[sl] = self.worlds[k].alive[-self.per_world :]

    def reset(self) -> None:
        for k in range(len(self.worlds)):
            self._start(k)

    def obs(self) -> dict[str, np.ndarray]:
        self._masks(self.view, self.mask)
        return {"view": self.view, "mask": self.mask, "alive": self.alive}

    def scripted(self, kind: str) -> np.ndarray:
        """Actions ``int64[n_agents]`` of scripted learners: ``random`` (uniform, from each
        episode's generator) or ``greedy`` (the MAgent2 worlds' scripted policy toward
        group 0)."""
        out = np.full(self.n_agents, self.STAY, np.int64)
        for k, world in enumerate(self.worlds):
            sl = self._rows(k)
            if kind == "random":
                out[sl] = self.rngs[k].integers(0, self.N_ACTIONS, self.per_world)
                continue
            e = world.engine
            ids = e.group_ids(self.LEARNERS)
            ids = ids[~e.dead[ids]]
            if ids.size:
                acts = np.full(self.per_world, self.STAY, np.int64)
                acts[ids - e.group_start[self.LEARNERS]] = greedy_actions(
                    e, self.LEARNERS, ids, (self.OTHERS,), self.rngs[k]
                )
                out[sl] = acts
        return out

    def play(
        self, who: str, episodes: int, seed: int, policy: Any = None, argmax: bool = False
    ) -> dict[str, Any]:
        """:meth:`drain`'s summary of the first ``episodes`` episodes to finish (the
        measures of every step played count), the learners played by ``who``:
        ``learned`` (``policy``, sampling from a generator of ``seed``; ``argmax``: its
        most likely legal action), ``random`` or ``greedy``. Resets the episodes first."""
        generator = torch.Generator().manual_seed(seed)
        self.reset()
        while len(self.finished) < episodes:
            if who == "learned":
                actions = learned_actions(policy, self.obs(), generator, argmax)
            else:
                actions = self.scripted(who)
            self.step(actions)
        del self.finished[episodes:]
        return self.drain()

    def record(
        self, policy: Any, path: Path, seed: int, argmax: bool, every: int, steps: int, **video: Any
    ) -> Path:
        """A video (GIF, MP4) of the first world's episode (reset here) with ``policy``'s
        learners (a generator of ``seed``), every ``every``-th of at most ``steps`` steps;
        ``video``: :class:`~colonylab.envs.render.recorder.VideoRecorder`'s options."""
        from colonylab.envs.render.recorder import VideoRecorder

        self.reset()
        world = self.worlds[0]
        generator = torch.Generator().manual_seed(seed)
        with VideoRecorder(path, **video) as recorder:
            recorder.add(world.render_rgb())
            for t in range(steps):
                self.step(learned_actions(policy, self.obs(), generator, argmax))
                if self.finished:
                    break
                if (t + 1) % every == 0:
                    recorder.add(world.render_rgb())
        return path


class EpisodesTask:
    """An episode runner's learner rows as PPO's task (array protocol): ``episodes`` has
    ``n_agents``, ``reset()``, ``obs()`` and ``step(actions, **kwargs) -> (reward, done)``
    (``kwargs``: ``messages`` for a policy with a message head)."""

    def __init__(self, episodes: Any) -> None:
        self.episodes = episodes
        self.n_agents = episodes.n_agents

    def reset(self, seed: int) -> dict[str, np.ndarray]:
        self.episodes.reset()
        return self.episodes.obs()

    def step(self, actions: np.ndarray, **kwargs: Any):
        reward, done = self.episodes.step(actions, **kwargs)
        return self.episodes.obs(), reward, done


def learned_actions(
    policy: Any, obs: dict[str, np.ndarray], generator: torch.Generator, argmax: bool
) -> np.ndarray:
    """The shared network's actions for every row of ``obs`` (``view``, ``mask``; the
    dead's rows are computed too and ignored by the world)."""
    inputs = {"view": torch.from_numpy(obs["view"]), "mask": torch.from_numpy(obs["mask"])}
    return policy.act(inputs, generator, deterministic=argmax)[0].numpy()


def trained_config(cfg: Any, ckpt: dict[str, Any], keep: Sequence[str]) -> Any:
    """``cfg`` with the fields ``keep`` (the world, the network) set as the checkpoint
    was trained (fields its config lacks keep ``cfg``'s value)."""
    trained = ckpt.get("config") or {}
    over = {k: tuple(trained[k]) if k == "hidden" else trained[k] for k in keep if k in trained}
    return dataclasses.replace(cfg, **over)


def record_finite(
    record: dict[str, float], prefix: str, summary: dict[str, float], keys: Sequence[str]
) -> None:
    """``record[prefix/key] = summary[key]`` for each of ``keys`` that is not NaN (no
    episode finished, no capture: nothing to log)."""
    for key in keys:
        if not math.isnan(summary[key]):
            record[f"{prefix}/{key}"] = summary[key]


def none_for_nan(summary: dict[str, Any]) -> dict[str, Any]:
    """``summary`` with NaN values as None (JSON has no NaN)."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in summary.items()}


def report_rows(
    title: str,
    rows: list[dict[str, Any]],
    columns: Sequence[str] | dict[str, str],
    *,
    checkpoint: str | Path,
    ckpt: dict[str, Any],
    console: Console,
    fold: bool = False,
    **notes: Any,
) -> dict[str, Any]:
    """``colony eval``'s table of ``rows`` (``columns``: keys, or keys -> headers; floats
    to 3 significant digits; ``fold``: long cells wrap) printed, and its JSON:
    ``{"rows", "checkpoint", "command": the checkpoint's reproduce command, **notes}``."""
    headers = columns if isinstance(columns, dict) else {k: k for k in columns}
    table = Table(title=title)
    for col in headers.values():
        table.add_column(col, justify="right", overflow="fold" if fold else "ellipsis")
    for r in rows:
        table.add_row(*(f"{r[k]:.3g}" if isinstance(r[k], float) else str(r[k]) for k in headers))
    console.print(table)
    return {
        "rows": rows,
        "checkpoint": str(checkpoint),
        "command": ckpt["provenance"].get("command", ""),
        **notes,
    }
