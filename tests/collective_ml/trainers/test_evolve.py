"""``evolve``: the ask/tell loop on a toy task (a noisy sphere), with validation, stop
criteria, logging, checkpoint / resume bit-identity and Ctrl-C."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colonylab.collective_ml.es import PGPE
from colonylab.collective_ml.pso import PSO
from colonylab.collective_ml.trainers import evolve

DIM, POP = 6, 16
TIME_KEYS = ("charts/seconds",)


class Sphere:
    """``-|x - 1|^2`` plus noise drawn from ``seed`` (higher is better), counting calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.last_env_steps = 0

    def __call__(self, params: torch.Tensor, seed: int) -> torch.Tensor:
        self.calls += 1
        self.last_env_steps = params.shape[0]
        noise = np.random.default_rng(seed).normal(0, 0.01, params.shape[0])
        return -((params.double() - 1) ** 2).sum(1) + torch.from_numpy(noise)


def _validate(params: torch.Tensor, generation: int) -> tuple[float, dict[str, float]]:
    dist = float((params.double() - 1).norm())
    return -dist, {"charts/distance": dist}


def _core(kind: str):
    if kind == "pgpe":
        return PGPE(DIM, POP, center_init=0.0, stdev_init=0.3, center_lr=0.1, seed=3, maximize=True)
    return PSO(DIM, POP, bounds=(-3.0, 3.0), topology="ring", seed=3, maximize=True)


def _run(kind: str, generations: int, **kw):
    return evolve(
        _core(kind),
        kw.pop("evaluator", Sphere()),
        generations,
        seeds=lambda g: 100 + g,
        validate=_validate,
        validate_every=3,
        **kw,
    )


def _strip(history):
    return [{k: v for k, v in r.items() if k not in TIME_KEYS} for r in history]


@pytest.mark.parametrize("kind", ["pgpe", "pso"])
def test_learns_the_sphere_and_keeps_the_best_validated(kind):
    logged = []
    result = _run(kind, 40, log=lambda step, scalars: logged.append((step, scalars)))
    assert result.generations == 40 and result.stopped == "generations"
    assert result.score is not None and result.score > -0.6  # started at distance >= 2.4
    validated = [r["charts/validation"] for r in result.history if "charts/validation" in r]
    assert len(validated) == 14  # every 3rd generation (13) and the last
    assert result.score == max(validated)
    assert [s for s, _ in logged] == list(range(1, 41))
    assert logged[5][1]["charts/env_steps"] == 6 * POP
    assert torch.equal(result.params, result.state["best"]["params"])


def test_target_stop_and_progress_and_logger_object():
    class Logger:
        def __init__(self):
            self.steps = []

        def log(self, step, scalars):
            self.steps.append(step)

    seen, logger = [], Logger()
    result = _run("pgpe", 200, target=-0.8, progress=lambda g, r: seen.append(g), log=logger)
    assert result.stopped == "target" and result.score >= -0.8
    assert result.generations < 200 and seen == logger.steps == list(
        range(1, result.generations + 1)
    )
    stopped = _run("pgpe", 50, stop=lambda g, r: g == 4)
    assert stopped.stopped == "stop" and stopped.generations == 4
    assert "charts/validation" in stopped.history[-1]  # the last generation is validated


@pytest.mark.parametrize("kind", ["pgpe", "pso"])
def test_resume_is_bit_identical(kind):
    full = _run(kind, 12)
    saved = []
    _run(kind, 12, save=saved.append, checkpoint_every=5)
    assert [s["generation"] for s in saved] == [5, 10, 12]
    resumed = _run(kind, 12, resume=saved[0])  # a fresh core, continued from generation 5
    assert torch.equal(resumed.params, full.params) and resumed.score == full.score
    assert _strip(resumed.history) == _strip(full.history)
    assert torch.equal(resumed.state["core"]["state"]["best_x" if kind == "pgpe" else "x"],
                       full.state["core"]["state"]["best_x" if kind == "pgpe" else "x"])  # fmt: skip
    # a run resumed from its final state does nothing more
    again = _run(kind, 12, resume=saved[-1], evaluator=(counter := Sphere()))
    assert counter.calls == 0 and torch.equal(again.params, full.params)


def test_keyboard_interrupt_saves_then_reraises_and_resumes_identically(capsys):
    full = _run("pgpe", 9)

    class Interrupting(Sphere):
        def __call__(self, params, seed):
            if self.calls == 6:  # during generation 7's evaluation
                raise KeyboardInterrupt
            return super().__call__(params, seed)

    saved = []
    with pytest.raises(KeyboardInterrupt):
        _run("pgpe", 9, evaluator=Interrupting(), save=lambda s: saved.append(s) or "here.pt")
    assert "interrupted: checkpoint at here.pt" in capsys.readouterr().err
    assert saved[-1]["generation"] == 6 and saved[-1]["stopped"] == ""
    resumed = _run("pgpe", 9, resume=saved[-1])
    assert torch.equal(resumed.params, full.params)
    assert _strip(resumed.history) == _strip(full.history)


def test_without_validation_returns_the_final_solution_and_bad_arguments_are_refused():
    core = _core("pgpe")
    result = evolve(core, lambda p: -(p**2).sum(1), 3)
    assert result.score is None and torch.equal(result.params, core.center)
    with pytest.raises(ValueError, match="generations"):
        evolve(core, lambda p: p.sum(1), 0)
    with pytest.raises(ValueError, match="not an evolve state"):
        evolve(core, lambda p: p.sum(1), 3, resume={"core": {}})
    with pytest.raises(TypeError, match="log"):
        evolve(core, lambda p: p.sum(1), 3, log=42)
