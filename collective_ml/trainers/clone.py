"""Behaviour cloning: plain BC, DAgger (Ross et al. 2011) and DART (Laskey et al. 2017).

One loop for any student (recurrent or not) and any world: it imports none, it gets
``make_world(num_envs, iteration) -> world`` (``reset(seed=)``, ``step(actions)``; the
student sees its observations, e.g. shuffled) and ``teacher(world) -> actions``, the
expert's labels from the TRUE state (``world.unwrapped`` when there is one).

Each iteration plays ``envs`` episodes of at most ``steps`` steps. The teacher labels
every step; the env executes the teacher's action with probability ``beta =
beta_decay ** iteration`` (``beta_decay=1``: plain BC on the teacher's own states;
``< 1``: DAgger), with ``N(0, teacher_noise)`` added to the executed (never the
labelled) action for continuous actions (DART). The last ``replay`` rollouts are
kept and the student is fitted for ``epochs`` passes: by truncated backpropagation
through time (``chunk`` steps, its state carried between chunks), or, with
``minibatch`` and a student whose output depends on the current observation only,
on shuffled minibatches of single frames. Loss: MSE to the clamped teacher actions
(``discrete``: cross-entropy to its choices); Adam; gradients clipped to norm 1.

Checkpoint/resume: every ``checkpoint_every`` iterations, at the end and on
``KeyboardInterrupt`` (then re-raised) the trainer calls ``save(state)`` with the
state at the last completed iteration (iteration, student weights, optimizer, replay
of live frames, generator, best validation, history). ``resume=state`` continues from
it; the result is bit-identical to the uninterrupted run when the caller's worlds and
validation depend only on ``(seed, iteration)``.
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from colonylab._checks import check_float, check_int, check_optional_int

__all__ = ["CloneResult", "behaviour_clone"]

COUNTS = ("iterations", "envs", "steps", "epochs", "chunk", "replay")
COUNTS += ("validate_every", "checkpoint_every")
Memory = list[tuple[Tensor, Tensor, Tensor]]  # (obs (T, N, ...), labels (T, N, ...), alive (T, N))


@dataclass
class CloneResult:
    """What :func:`behaviour_clone` returns."""

    validation: float  # the best validation (the student has its weights); NaN without
    iterations: int
    seconds: float
    env_steps: int
    history: list[dict[str, float]] = field(default_factory=list)


def _rollout(student, world, teacher, envs, steps, seed, beta, noise, discrete, generator):
    """One DAgger rollout: ``(obs, labels, alive)`` stacked over time, and env steps."""
    recurrent = callable(getattr(student, "initial_state", None))
    obs = torch.as_tensor(world.reset(seed=seed)).float()
    alive = torch.ones(envs, dtype=torch.bool)
    seen, labels, masks = [], [], []
    state, env_steps = None, 0
    for _ in range(steps):
        target = torch.as_tensor(teacher(getattr(world, "unwrapped", world)))
        out, state = student(obs, state) if recurrent else (student(obs), None)
        own = out.argmax(-1) if discrete else out.squeeze(-1) if out.shape[-1] == 1 else out
        pick = torch.rand(envs, generator=generator) < beta
        if not discrete and own.dim() > 1:
            pick = pick[:, None]
        executed = target.to(own.dtype)
        if noise and not discrete:  # DART: a noisy teacher visits the states it must recover from
            jitter = torch.randn(executed.shape, generator=generator).to(own.dtype)
            executed = (executed + noise * jitter).clamp(-1, 1)
        seen.append(obs)
        labels.append(target)
        masks.append(alive.clone())
        obs, _, terminated, truncated, _ = world.step(torch.where(pick, executed, own))
        obs = torch.as_tensor(obs).float()
        env_steps += int(alive.sum())
        alive &= ~(torch.as_tensor(terminated) | torch.as_tensor(truncated))
        if not bool(alive.any()):
            break
    return (torch.stack(seen), torch.stack(labels), torch.stack(masks)), env_steps


def _loss(out: Tensor, target: Tensor, discrete: bool) -> Tensor:
    """Per-sample loss: cross-entropy to a choice, or MSE to a clamped action."""
    if discrete:
        return nn.functional.cross_entropy(out, target.long(), reduction="none")
    return (out - target.float().reshape(out.shape).clamp(-1, 1)).square().mean(-1)


def _step(student: nn.Module, optimizer: torch.optim.Optimizer, loss: Tensor) -> float:
    optimizer.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(student.parameters(), 1.0)
    optimizer.step()
    return float(loss.detach())


def _fit_frames(student, optimizer, memory, epochs, minibatch, discrete, generator) -> list[float]:
    """``epochs`` passes of shuffled minibatches over every live frame in ``memory``."""
    obs = torch.cat([o[m] for o, _, m in memory])  # (S, ...) live frames only
    labels = torch.cat([y[m] for _, y, m in memory])
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(obs), generator=generator)
        for i in range(0, len(obs), minibatch):
            idx = order[i : i + minibatch]
            out = student(obs[idx])
            out = out[0] if isinstance(out, tuple) else out  # (b, A)
            if discrete:
                loss = nn.functional.cross_entropy(out, labels[idx].long())
            else:
                target = labels[idx].float().reshape(out.shape).clamp(-1, 1)
                loss = (out - target).square().mean()
            losses.append(_step(student, optimizer, loss))
    return losses


def _fit_sequences(student, optimizer, memory, epochs, chunk, discrete) -> list[float]:
    """``epochs`` passes of truncated BPTT (``chunk`` steps) over every kept rollout."""
    recurrent = callable(getattr(student, "initial_state", None))
    losses = []
    for _ in range(epochs):
        for seq_obs, seq_label, seq_mask in memory:
            state = None
            for c0 in range(0, seq_obs.shape[0], chunk):
                if state is not None:
                    state = type(state)(*(t.detach() for t in state))
                outs = []
                for t in range(c0, min(c0 + chunk, seq_obs.shape[0])):
                    out, state = (
                        student(seq_obs[t], state) if recurrent else (student(seq_obs[t]), None)
                    )
                    outs.append(out)
                out = torch.stack(outs)  # (L, N, A)
                mask = seq_mask[c0 : c0 + len(outs)].float()  # (L, N)
                target = seq_label[c0 : c0 + len(outs)]
                per = _loss(out.flatten(0, 1), target.flatten(0, 1), discrete).view_as(mask)
                losses.append(
                    _step(student, optimizer, (per * mask).sum() / mask.sum().clamp(min=1))
                )
    return losses


def _pack(rollout: tuple[Tensor, Tensor, Tensor]) -> dict[str, Tensor]:
    """A rollout for a checkpoint, losslessly smaller: live frames only (dead ones never
    reach a loss), observations of at most 256 distinct values (pixels) as uint8 codes."""
    obs, labels, alive = rollout
    live = obs[alive]
    packed = {"labels": labels[alive], "alive": alive}
    flat = live.flatten()
    values = torch.unique(flat[:: max(1, flat.numel() // 1_000_000)])  # a sample's values
    if 0 < len(values) <= 256:
        codes = torch.bucketize(live, values).clamp(max=len(values) - 1)
        # lossless only if every value is one of the sample's (and no -0.0 hides as 0.0)
        if torch.equal(values[codes], live) and not bool(torch.signbit(live[live == 0]).any()):
            return {**packed, "values": values, "codes": codes.to(torch.uint8)}
    return {**packed, "obs": live}


def _unpack(item: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    def full(live: Tensor, alive: Tensor) -> Tensor:  # zeros where the episode had ended
        out = live.new_zeros((*alive.shape, *live.shape[1:]))
        out[alive] = live
        return out

    obs = item["values"][item["codes"].long()] if "codes" in item else item["obs"]
    return full(obs, item["alive"]), full(item["labels"], item["alive"]), item["alive"]


def behaviour_clone(
    student: nn.Module,
    make_world: Callable[[int, int], Any],
    teacher: Callable[[Any], Tensor],
    *,
    iterations: int,
    envs: int,
    steps: int,
    seed: int,
    lr: float = 3e-3,
    epochs: int = 2,
    chunk: int = 50,
    replay: int = 4,
    beta_decay: float = 0.5,
    teacher_noise: float = 0.0,
    discrete: bool = False,
    minibatch: int | None = None,
    validate: Callable[[nn.Module], float] | None = None,
    validate_every: int = 1,
    on_best: Callable[[nn.Module, float, int], None] | None = None,
    log: Callable[[int, dict[str, float]], None] | None = None,
    save: Callable[[dict[str, Any]], None] | None = None,
    checkpoint_every: int = 1,
    resume: dict[str, Any] | None = None,
) -> CloneResult:
    """Clone ``teacher`` into ``student`` (see the module docstring); the student ends
    with the weights of its best validation (``validate(student)``, higher is better)
    when one is given.

    Args:
        make_world: ``(num_envs, iteration) -> world``; iteration counts from 0.
        teacher: ``world -> actions`` (``(N,)`` choices or ``(N,)``/``(N, A)`` actions).
        seed: seeds the rollouts (``reset(seed=seed * 1000 + iteration)``) and the
            trainer's generator (DAgger coins, DART noise, minibatch order).
        on_best: called as ``on_best(student, value, iteration)`` at each new best
            validation (e.g. to save a product checkpoint part-way).
        log: called as ``log(iteration, record)`` after each iteration (1-based).
        save: receives the trainer state to checkpoint (plain tensors and numbers);
            what it returns (a path) is printed on Ctrl-C.
        resume: a state from ``save``: continue after its iteration.
    """
    counts = (iterations, envs, steps, epochs, chunk, replay, validate_every, checkpoint_every)
    for name, value in zip(COUNTS, counts, strict=True):
        check_int(name, value, 1)
    check_optional_int("minibatch", minibatch, 1)
    check_float("lr", lr, 0.0, low_open=True)
    check_float("beta_decay", beta_decay, 0.0, 1.0)
    check_float("teacher_noise", teacher_noise, 0.0)
    recurrent = callable(getattr(student, "initial_state", None))
    framewise = minibatch is not None and not getattr(student, "recurrent", recurrent)
    optimizer = torch.optim.Adam(student.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    memory: Memory = []
    packed: list[dict[str, Tensor]] = []
    history: list[dict[str, float]] = []
    best: tuple[float, dict[str, Tensor]] | None = None
    env_steps, first = 0, 0
    if resume is not None:
        first = int(resume["iteration"])
        student.load_state_dict(resume["student"])
        optimizer.load_state_dict(resume["optimizer"])
        generator.set_state(resume["generator"])
        packed = list(resume["replay"])
        memory = [_unpack(item) for item in packed]
        history = [dict(h) for h in resume["history"]]
        env_steps = int(resume["env_steps"])
        if resume.get("best") is not None:
            best = (float(resume["best"]["value"]), dict(resume["best"]["state_dict"]))
    start = time.perf_counter() - (history[-1]["charts/seconds"] if history else 0.0)

    def snapshot(done: int) -> dict[str, Any]:
        return {
            "iteration": done,
            "student": copy.deepcopy(student.state_dict()),
            "optimizer": copy.deepcopy(optimizer.state_dict()),
            "generator": generator.get_state(),
            "replay": list(packed),
            "history": [dict(h) for h in history],
            "env_steps": env_steps,
            "best": None if best is None else {"value": best[0], "state_dict": best[1]},
        }

    state = snapshot(first)
    try:
        for iteration in range(first, iterations):
            beta = beta_decay**iteration
            student.eval()
            with torch.no_grad():
                world = make_world(envs, iteration)
                rollout, played = _rollout(
                    student, world, teacher, envs, steps, seed * 1000 + iteration, beta,
                    teacher_noise, discrete, generator,
                )  # fmt: skip
            env_steps += played
            memory = [*memory, rollout][-replay:]
            if save is not None:  # packed once per rollout
                packed = [*packed, _pack(rollout)][-replay:]
            student.train()
            if framewise:
                losses = _fit_frames(
                    student, optimizer, memory, epochs, minibatch, discrete, generator
                )
            else:
                losses = _fit_sequences(student, optimizer, memory, epochs, chunk, discrete)
            student.eval()
            record = {
                "iteration": iteration + 1,
                "losses/bc": float(np.mean(losses)),
                "charts/beta": beta,
                "charts/env_steps": env_steps,
                "charts/seconds": time.perf_counter() - start,
            }
            if validate is not None and (
                (iteration + 1) % validate_every == 0 or iteration + 1 == iterations
            ):
                value = float(validate(student))
                record["charts/validation_mean"] = value
                if best is None or value >= best[0]:
                    best = (value, {k: v.clone() for k, v in student.state_dict().items()})
                    if on_best is not None:
                        on_best(student, value, iteration + 1)
            history.append(record)
            if log is not None:
                log(iteration + 1, {k: v for k, v in record.items() if k != "iteration"})
            state = snapshot(iteration + 1)
            if save is not None and (
                (iteration + 1) % checkpoint_every == 0 or iteration + 1 == iterations
            ):
                save(state)
    except KeyboardInterrupt:
        if save is not None:
            print(f"interrupted: checkpoint at {save(state)}", file=sys.stderr, flush=True)
        raise
    if best is not None:
        student.load_state_dict(best[1])
    return CloneResult(
        validation=best[0] if best is not None else float("nan"),
        iterations=iterations,
        seconds=time.perf_counter() - start,
        env_steps=env_steps,
        history=history,
    )
