"""The grid-PPO base (``runs/experiments/_grid_ppo.py``) shared by battle-selfplay,
pursuit-coop, tiger-deer and gather-learn: the shared fields and checks, the shipped
checkpoints' commands, and ``run_grid_ppo``'s wiring on a toy runner defined here."""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console

from colonylab.agents.grid_policy import GridPolicy
from colonylab.runs.cli import parse_config
from colonylab.runs.common.checkpoint import config_from_plain, load_checkpoint
from colonylab.runs.experiments import _grid_ppo as gp
from colonylab.runs.experiments import battle_selfplay, gather_learn, pursuit_coop, tiger_deer

EXPERIMENTS = [battle_selfplay, pursuit_coop, tiger_deer, gather_learn]
CHECKPOINTS = Path(battle_selfplay.__file__).resolve().parent.parent / "checkpoints"


@pytest.mark.parametrize("module", EXPERIMENTS, ids=lambda m: m.NAME)
def test_every_field_of_every_config_has_its_help(module):
    """A field a Config redeclares (battle's ``gamma``) keeps the base's help text."""
    from tyro._docstrings import get_field_docstring

    assert issubclass(module.Config, gp.GridPPOConfig)
    for field in dataclasses.fields(module.Config):
        assert get_field_docstring(module.Config, field.name, ()), field.name
    assert battle_selfplay.Config().gamma == 0.99 and tiger_deer.Config().gamma == 0.97


@pytest.mark.parametrize("module", EXPERIMENTS, ids=lambda m: m.NAME)
@pytest.mark.parametrize(
    "kw, flag",
    [({"iterations": 0}, "--iterations"), ({"lr": 0.0}, "--lr"), ({"gamma": 1.5}, "--gamma"),
     ({"minutes": -1.0}, "--minutes"), ({"threads": 0}, "--threads"),
     ({"checkpoint_every": 0}, "--checkpoint-every"), ({"validate_every": 0}, "--validate-every"),
     ({"hidden": (0,)}, "--hidden")],
)  # fmt: skip
def test_shared_fields_are_refused_in_one_line_naming_the_flag(module, kw, flag):
    with pytest.raises(ValueError, match=flag) as err:
        module.Config(**kw)
    assert "\n" not in str(err.value)


SHIPPED = [
    (battle_selfplay, "battle-selfplay.pt"),
    (battle_selfplay, "battle-selfplay-prev.pt"),
    (pursuit_coop, "pursuit-coop.pt"),
    (tiger_deer, "tiger-deer.pt"),
    (gather_learn, "gather-learn.pt"),
]


@pytest.mark.parametrize(("module", "name"), SHIPPED, ids=[n for _, n in SHIPPED])
def test_a_shipped_checkpoints_command_parses_back_to_its_config(module, name):
    path = CHECKPOINTS / name
    if not path.is_file():
        pytest.skip(f"no {name} shipped")
    ckpt = load_checkpoint(path, module.NAME)
    words = shlex.split(ckpt["provenance"]["command"])
    assert words[:3] == ["colony", "train", module.NAME]
    saved = config_from_plain(module.Config, ckpt["config"])
    parsed = parse_config(module.Config, words[3:], prog="test")
    if name == "battle-selfplay-prev.pt":
        # trained before eval_opponents gained the row against it (an eval-only field)
        saved = dataclasses.replace(saved, eval_opponents=parsed.eval_opponents)
    assert parsed == saved


# -- run_grid_ppo on a toy runner -------------------------------------------------------------
class Arms:
    """``worlds`` x 4 agents see a one-hot arm and earn 1 for pulling it; an episode ends
    every 3 steps and the next one starts from ``next_seed``."""

    N_ACTIONS = 3

    def __init__(self, worlds: int, seed: int) -> None:
        self.n_agents = 4 * worlds
        self.next_seed = seed
        self.view = np.zeros((self.n_agents, 1, 1, self.N_ACTIONS), np.float32)
        self.steps = 0
        self.seeds: list[int] = []

    def _draw(self) -> None:
        rng = np.random.default_rng(self.next_seed)
        self.seeds.append(self.next_seed)
        self.next_seed += 1
        self.arm = rng.integers(0, self.N_ACTIONS, self.n_agents)
        self.view[...] = 0.0
        self.view[np.arange(self.n_agents), 0, 0, self.arm] = 1.0

    def reset(self) -> None:
        self._draw()

    def obs(self) -> dict[str, np.ndarray]:
        return {"view": self.view}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        reward = (actions == self.arm).astype(np.float32)
        self.steps += 1
        done = np.full(self.n_agents, self.steps % 3 == 0)
        if done.all():
            self._draw()
        return reward, done


@dataclass(frozen=True)
class ToyConfig(gp.GridPPOConfig):
    """A toy grid-PPO experiment."""

    worlds: int = 2
    iterations: int = 4
    rollout_steps: int = 6
    validate_every: int = 2
    episodes: int = 1
    eval_seed: int = 0
    seed: int = 0


def _toy_run(cfg: ToyConfig, resume: str | None = None, scores=(0.5, 0.2, 0.5, 0.9)):
    gp.start_run(cfg)
    policy = GridPolicy((1, 1, 3), 3, hidden=cfg.hidden)
    arms = Arms(cfg.worlds, 1000)
    calls: dict[str, list] = {"validated": [], "media": [], "scalars": []}

    def validate(iteration, record):
        calls["validated"].append(iteration)
        score = scores[iteration - 1]
        record["validation/score"] = score
        return (score, -iteration), {"score": score, "iteration": iteration}

    out = gp.run_grid_ppo(
        "toy-grid", cfg, policy, gp.EpisodesTask(arms), resume=resume, seeds=arms,
        best_file="toy-grid.pt", scalars=lambda i, r: calls["scalars"].append(i),
        validate=validate, progress=lambda r: "toy", media=lambda run: calls["media"].append(run),
        describe_best=lambda s: f"best {s}", console=Console(quiet=True),
        state=lambda: {"extra": 7}, load_state=lambda t: calls.setdefault("loaded", t["extra"]),
    )  # fmt: skip
    return out, arms, calls


def test_run_grid_ppo_validates_on_schedule_keeps_the_best_and_resumes(tmp_path):
    torch.set_num_threads(1)
    cfg = ToyConfig(out=str(tmp_path), hidden=(8,))
    out, arms, calls = _toy_run(cfg)
    assert out["iterations"] == 4 and calls["scalars"] == [1, 2, 3, 4]
    assert calls["validated"] == [2, 4]  # every validate_every, and the last
    assert len(calls["media"]) == 1
    # scores (0.2, -2) then (0.9, -4): tuples compared as such, saved as a list
    assert out["best"] == [0.9, -4]
    (run,) = (tmp_path / "toy-grid").iterdir()
    best = load_checkpoint(run / "checkpoints" / "toy-grid.pt", "toy-grid")
    assert best["provenance"]["metrics"] == {"score": 0.9, "iteration": 4}
    latest = load_checkpoint(run / "checkpoints" / "latest.pt", "toy-grid")
    trainer = latest["trainer"]
    assert list(trainer) == ["ppo", "extra", "next_seed", "best"]
    assert trainer["next_seed"] == arms.next_seed
    assert trainer["best"] == {"score": [0.9, -4], "iteration": 4}
    # resumed: the next seed and the best come back; a worse score does not replace it
    more = dataclasses.replace(cfg, iterations=6)
    out, arms, calls = _toy_run(more, resume=str(run), scores=(0, 0, 0, 0, 0, 0.1))
    assert out["iterations"] == 6 and calls["validated"] == [6] and calls["loaded"] == 7
    assert arms.seeds[0] == trainer["next_seed"]
    assert out["best"] == [0.9, -4]
