"""``evolve``: the one ask/tell loop every population experiment runs (EvoJAX's trainer).

::

    from colonylab.collective_ml.es import PGPE
    from colonylab.collective_ml.trainers import evolve

    core = PGPE(dim=D, pop_size=64, center_init=initial, seed=0, maximize=True)
    result = evolve(
        core,
        evaluator,                               # (P, D) [, seed] -> fitness (P,)
        generations=200,
        seeds=lambda g: 1000 + g,                # the evaluation seed of generation g
        validate=lambda params, g: score(params),  # the deployed solution's score
        validate_every=5,
        target=475.0,                            # stop once a validation reaches it
        log=run.log,                             # (step, scalars) or an object with .log
        save=lambda state: save_checkpoint(path, {"trainer": state}),
        checkpoint_every=10,
        resume=None,                             # or the state a save() received
    )
    result.params, result.score                  # the best validated solution

Every generation: ``params = core.ask()`` -> ``fitness = evaluator(params[, seed])``
-> ``core.tell(fitness)``; the record ``charts/fitness_mean|max|min``,
``charts/best_so_far`` (the core's best), ``charts/env_steps`` (training steps, when
the evaluator reports ``last_env_steps``) and ``charts/seconds`` goes to ``log`` and
the history. The solution (``solution(core)``: by default the core's ``center`` when
it has one, else its best) is validated every ``validate_every`` generations, when
``validate_when(generation, record)`` says so, and at the last generation; the
record gets ``charts/validation`` (and any extra scalars ``validate`` returns). The
best validated solution is kept (a tie goes to the later one). Scores and ``target``
are read in the core's sense: higher is better when ``core.maximize``.

Stops after ``generations``, when a validation reaches ``target``, when ``stop``
says so, or after ``time_budget_s`` seconds (wall clock: not reproducible).

Checkpoint / resume: ``save(state)`` receives a dict of tensors, numbers and strings
(the core's ``state_dict()``, the generation, the history, the best validated
solution, the counters) every ``checkpoint_every`` generations, at the end, and on
``KeyboardInterrupt`` (then the interrupt is re-raised). ``evolve(...,
resume=state)`` with a fresh core built with the same arguments continues from it:
the final core, solution and history are bit-identical to an uninterrupted run on
the CPU, as long as the evaluator's randomness comes from ``seeds(generation)`` (or
from state the caller restores). A Ctrl-C during ``tell`` or the bookkeeping is held
until the generation is complete, so a saved state is never half-updated. This module
imports no world and no run plumbing: the caller decides where ``save`` writes.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from colonylab._checks import check_int, check_optional_int
from colonylab.collective_ml.base import PopulationOptimizer

__all__ = ["EvolveResult", "evolve"]

STATE_VERSION = 1
Scalars = dict[str, float]


@dataclass
class EvolveResult:
    """What :func:`evolve` returns."""

    params: Tensor
    """``(D,)`` the best validated solution (without validation: the final solution)."""
    score: float | None
    """Its validation score (None without ``validate``)."""
    best_generation: int
    """Generation of ``params``."""
    generations: int
    """Generations completed."""
    stopped: str
    """Why the loop ended: ``generations``, ``target``, ``stop`` or ``time``."""
    env_steps: int
    """Training environment steps (when the evaluator reports ``last_env_steps``)."""
    seconds: float
    """Wall clock of the whole run (resumed parts included)."""
    history: list[dict[str, float]] = field(default_factory=list)
    """One record per generation (``generation`` plus the logged scalars)."""
    state: dict[str, Any] = field(default_factory=dict)
    """The final state (what ``save`` received last)."""


def _default_solution(core: PopulationOptimizer) -> Tensor:
    center = getattr(core, "center", None)
    return center if isinstance(center, Tensor) else core.best.params


def _logger(log: Any) -> Callable[[int, Scalars], Any] | None:
    if log is None or callable(log) and not hasattr(log, "log"):
        return log
    if callable(getattr(log, "log", None)):
        return log.log
    raise TypeError(
        f"log must be a callable (step, scalars) or have .log(step, scalars), got {log!r}"
    )


@contextlib.contextmanager
def _hold_interrupts() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) until the block ends, then raise it (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    except (ValueError, OSError):  # no signals here (embedded interpreter)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def evolve(
    core: PopulationOptimizer,
    evaluator: Callable[..., Tensor],
    generations: int,
    *,
    seeds: Callable[[int], int] | None = None,
    solution: Callable[[PopulationOptimizer], Tensor] | None = None,
    validate: Callable[[Tensor, int], float | tuple[float, Mapping[str, float]]] | None = None,
    validate_every: int = 1,
    validate_when: Callable[[int, Scalars], bool] | None = None,
    target: float | None = None,
    stop: Callable[[int, Scalars], bool] | None = None,
    time_budget_s: float | None = None,
    log: Any = None,
    progress: Callable[[int, Scalars], None] | None = None,
    save: Callable[[dict[str, Any]], Any] | None = None,
    checkpoint_every: int | None = None,
    resume: Mapping[str, Any] | None = None,
) -> EvolveResult:
    """Run ``core`` against ``evaluator`` for up to ``generations`` generations.

    Args:
        core: An ask/tell core (:class:`~colonylab.collective_ml.base.PopulationOptimizer`).
        evaluator: ``evaluator(params (P, D)) -> fitness (P,)``, or
            ``evaluator(params, seed)`` when ``seeds`` is given (the population
            evaluators' call).
        generations: Most generations in all (resumed ones included), >= 1.
        seeds: ``generation -> seed`` of that generation's evaluation.
        solution: ``core -> (D,)`` the params to deploy (default: ``core.center`` when
            the core has one, else ``core.best.params``).
        validate: ``(params (D,), generation) -> score`` or ``(score, extra scalars)``.
        validate_every: Validate every this many generations (also at the last).
        validate_when: ``(generation, record) -> bool``: validate this generation too.
        target: Stop once a validation score reaches it (core's sense).
        stop: ``(generation, record) -> bool`` after each generation: stop when True.
        time_budget_s: Stop after this many seconds in all (not reproducible).
        log: ``log(step, scalars)`` or an object with ``.log(step, scalars)``.
        progress: ``progress(generation, record)`` after each generation.
        save: ``save(state)`` (its return value, e.g. a path, is printed on Ctrl-C).
        checkpoint_every: Save every this many generations (None: only at the end and
            on Ctrl-C).
        resume: A state ``save`` received: continue from it.

    Returns:
        An :class:`EvolveResult`.

    Raises:
        ValueError: a bad argument, or a ``resume`` state of another shape of run.
        KeyboardInterrupt: after saving the last complete generation.
    """
    check_int("generations", generations, 1)
    check_int("validate_every", validate_every, 1)
    check_optional_int("checkpoint_every", checkpoint_every, 1)
    if time_budget_s is not None and not time_budget_s > 0:
        raise ValueError(f"time_budget_s must be > 0 or None, got {time_budget_s!r}")
    emit = _logger(log)
    solution = solution or _default_solution
    sign = 1.0 if core.maximize else -1.0

    generation, env_steps, seconds_before = 0, 0, 0.0
    history: list[dict[str, float]] = []
    best: dict[str, Any] | None = None  # {"score", "params", "generation"}
    stopped = ""
    if resume is not None:
        if resume.get("evolve") != STATE_VERSION:
            raise ValueError(
                f"resume state is not an evolve state (version {resume.get('evolve')!r}, "
                f"expected {STATE_VERSION})"
            )
        core.load_state_dict(dict(resume["core"]))
        generation = int(resume["generation"])
        env_steps = int(resume["env_steps"])
        seconds_before = float(resume["seconds"])
        history = [dict(r) for r in resume["history"]]
        best = dict(resume["best"]) if resume.get("best") is not None else None
        stopped = str(resume.get("stopped") or "")
    start = time.perf_counter()

    def elapsed() -> float:
        return seconds_before + time.perf_counter() - start

    def state() -> dict[str, Any]:
        return {
            "evolve": STATE_VERSION,
            "core": core.state_dict(),
            "generation": generation,
            "env_steps": env_steps,
            "seconds": elapsed(),
            "history": [dict(r) for r in history],
            "best": dict(best) if best is not None else None,
            "stopped": stopped,
        }

    try:
        while not stopped:
            if generation >= generations:
                stopped = "generations"
                break
            g = generation + 1
            params = core.ask()  # (P, D)
            fitness = evaluator(params) if seeds is None else evaluator(params, int(seeds(g)))
            with _hold_interrupts():  # the generation completes as a whole, or not at all
                core.tell(fitness)
                fit = torch.as_tensor(fitness).detach().double()  # (P,)
                steps = getattr(evaluator, "last_env_steps", None)
                record: dict[str, float] = {
                    "charts/fitness_mean": float(fit.mean()),
                    "charts/fitness_max": float(fit.max()),
                    "charts/fitness_min": float(fit.min()),
                    "charts/best_so_far": float(core.best.fitness),
                }
                if isinstance(steps, int):
                    env_steps += steps
                    record["charts/env_steps"] = float(env_steps)
                out_of_time = time_budget_s is not None and elapsed() > time_budget_s
                user_stop = bool(stop(g, record)) if stop is not None else False
                last = g >= generations or out_of_time or user_stop
                reached = False
                if validate is not None and (
                    g % validate_every == 0
                    or last
                    or (validate_when is not None and validate_when(g, record))
                ):
                    candidate = solution(core).detach().cpu().clone()
                    answer = validate(candidate, g)
                    score, extra = answer if isinstance(answer, tuple) else (answer, {})
                    score = float(score)
                    record["charts/validation"] = score
                    record.update({k: float(v) for k, v in extra.items()})
                    if best is None or sign * score >= sign * float(best["score"]):
                        best = {"score": score, "params": candidate, "generation": g}
                    reached = (
                        target is not None
                        and math.isfinite(score)
                        and (sign * score >= sign * target)
                    )
                record["charts/seconds"] = elapsed()
                generation = g
                history.append({"generation": float(g), **record})
                if emit is not None:
                    emit(g, record)
                if progress is not None:
                    progress(g, record)
                if reached:
                    stopped = "target"
                elif user_stop:
                    stopped = "stop"
                elif out_of_time:
                    stopped = "time"
                elif g >= generations:
                    stopped = "generations"
                if (
                    save is not None
                    and checkpoint_every
                    and g % checkpoint_every == 0
                    and not stopped
                ):
                    save(state())
    except KeyboardInterrupt:
        if save is not None:
            where = save(state())
            print(
                f"interrupted: checkpoint at {where}" if where is not None else "interrupted",
                file=sys.stderr,
                flush=True,
            )
        raise
    final = state()
    if save is not None:
        save(final)
    if best is not None:
        params, score, best_gen = best["params"], float(best["score"]), int(best["generation"])
    else:
        params, score, best_gen = solution(core).detach().cpu().clone(), None, generation
    return EvolveResult(
        params=params,
        score=score,
        best_generation=best_gen,
        generations=generation,
        stopped=stopped,
        env_steps=env_steps,
        seconds=final["seconds"],
        history=history,
        state=final,
    )
