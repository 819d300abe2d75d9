"""A gradient-descent loop that checkpoints, survives Ctrl-C and resumes bit-identically.

:class:`GradientTrainer` owns the loop every gradient experiment used to write by
hand: per iteration ``loss_fn(it) -> (loss, scalars)``, backward, an optional
gradient transform (e.g. per-parameter normalisation), the optimizer and LR
scheduler steps, an ``after_step`` hook (e.g. write states back into a sample
pool), evaluation every so often, logging, and a checkpoint every
``checkpoint_every`` iterations and at the end. The experiment chooses the model,
the optimizer, the loss and where files go; the trainer never touches a file
itself (``save(trainer)`` is a callback), so it imports nothing of ``runs``.

Resume: :meth:`GradientTrainer.state_dict` holds the iteration, the optimizer and
scheduler states, the history of logged scalars, the states of the ``generators``
the loss draws from (NumPy ``Generator`` s, torch ``Generator`` s) and the
``buffers`` it keeps between iterations (e.g. a sample pool) -- tensors and numbers
only, so ``torch.load(weights_only=True)`` reads it. The caller saves it beside the
model's weights (and the global RNG states); loading both into a fresh trainer
built the same way and calling :meth:`fit` again continues where it stopped, with
the same weights and scalars as the uninterrupted run (on CPU, same threads).

Ctrl-C: while :meth:`fit` runs, SIGINT only raises a flag; the iteration under
way finishes, a checkpoint is saved, and ``KeyboardInterrupt`` is raised again.
A ``KeyboardInterrupt`` raised inside ``loss_fn`` (a second Ctrl-C, or one raised
by code) rolls the ``generators`` back to the start of that iteration, so the
checkpoint is the state after the previous iteration (``loss_fn`` must change
nothing else before the optimizer step: write buffers in ``after_step``).

    trainer = GradientTrainer(model, optimizer, loss_fn, save=save, checkpoint_every=100)
    history = trainer.fit(1000)          # list of {"losses/loss": ..., ...}, one per iteration
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["GradientTrainer", "adam_with_decay", "normalise_gradients"]

LossFn = Callable[[int], "tuple[Tensor, dict[str, float]]"]


def normalise_gradients(model: nn.Module, eps: float = 1e-8) -> None:
    """Scale each parameter's gradient to unit L2 norm (Mordvintsev et al. 2020)."""
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p.grad /= p.grad.norm() + eps


def adam_with_decay(
    params: Any, lr: float, decay_at: int = 0, decay: float = 1.0
) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.MultiStepLR]:
    """``(Adam(params, lr), schedule)``: the learning rate is multiplied by ``decay`` once,
    after iteration ``decay_at`` (0: never) -- the neural-CA papers' schedule."""
    optimizer = torch.optim.Adam(params, lr=lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=[decay_at] if decay_at else [], gamma=decay
    )
    return optimizer, scheduler


class _DeferredInterrupt:
    """Inside the block, the first SIGINT sets ``pending``; a second raises at once."""

    def __init__(self) -> None:
        self.pending = False
        self._previous: Any = None

    def _handler(self, signum: int, frame: Any) -> None:
        if self.pending:
            raise KeyboardInterrupt
        self.pending = True

    def __enter__(self) -> _DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class GradientTrainer:
    """One optimizer over one model, iterations ``1..N``, checkpointed and resumable.

    Args:
        model: the module trained (its ``parameters()`` get the gradients).
        optimizer: a torch optimizer over ``model``'s parameters.
        loss_fn: ``loss_fn(iteration) -> (loss, scalars)``: a scalar tensor to
            minimise and extra numbers to log (e.g. ``{"charts/steps": 80}``).
        scheduler: an LR scheduler stepped after every optimizer step (or None).
        grad_transform: called with ``model`` between backward and the step
            (e.g. :func:`normalise_gradients`).
        after_step: ``after_step(iteration)`` after the optimizer step (e.g. write
            the batch back into a sample pool).
        evaluate: ``evaluate(iteration) -> scalars``, called every
            ``evaluate_every`` iterations and at the last one.
        evaluate_every: 0: only at the last iteration.
        log: ``log(iteration, scalars)`` once per iteration.
        save: ``save(trainer) -> path`` writes a checkpoint (see the module doc).
        checkpoint_every: save every this many iterations (0: only at the end and
            on Ctrl-C).
        generators: every generator ``loss_fn`` draws from, by name (NumPy or torch
            ``Generator``): saved, restored, and rolled back after an interrupt.
        buffers: tensors the loop keeps between iterations (e.g. a sample pool), by
            name: saved, and restored in place.
        echo: where "interrupted: checkpoint at PATH" goes (default ``print``).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: LossFn,
        *,
        scheduler: Any = None,
        grad_transform: Callable[[nn.Module], None] | None = None,
        after_step: Callable[[int], None] | None = None,
        evaluate: Callable[[int], dict[str, float]] | None = None,
        evaluate_every: int = 0,
        log: Callable[[int, dict[str, float]], None] | None = None,
        save: Callable[[GradientTrainer], Any] | None = None,
        checkpoint_every: int = 0,
        generators: dict[str, np.random.Generator | torch.Generator] | None = None,
        buffers: dict[str, Tensor] | None = None,
        echo: Callable[[str], None] = print,
    ) -> None:
        if checkpoint_every < 0 or evaluate_every < 0:
            raise ValueError(
                f"checkpoint_every and evaluate_every must be >= 0, got {checkpoint_every} "
                f"and {evaluate_every}"
            )
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.scheduler, self.grad_transform, self.after_step = scheduler, grad_transform, after_step
        self.evaluate, self.evaluate_every = evaluate, evaluate_every
        self.log, self.save, self.checkpoint_every = log, save, checkpoint_every
        self.generators, self.buffers = dict(generators or {}), dict(buffers or {})
        self.echo = echo
        self.iteration = 0
        """Iterations completed."""
        self.history: list[dict[str, float]] = []
        """The scalars of every completed iteration (what ``log`` got)."""

    # -- state ---------------------------------------------------------------------------
    def generator_states(self) -> dict[str, Any]:
        """The state of every generator in ``generators``."""
        return {
            name: g.get_state() if isinstance(g, torch.Generator) else g.bit_generator.state
            for name, g in self.generators.items()
        }

    def set_generator_states(self, states: dict[str, Any]) -> None:
        """Restore what :meth:`generator_states` returned."""
        for name, g in self.generators.items():
            if isinstance(g, torch.Generator):
                g.set_state(states[name])
            else:
                g.bit_generator.state = states[name]

    def state_dict(self) -> dict[str, Any]:
        """Iteration, optimizer, scheduler, history, generators and buffers (not the
        model: save that beside)."""
        return {
            "iteration": self.iteration,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "history": [dict(h) for h in self.history],
            "generators": self.generator_states(),
            "buffers": {name: b.detach().cpu().clone() for name, b in self.buffers.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (load the model's weights first)."""
        self.iteration = int(state["iteration"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.history = [dict(h) for h in state.get("history", [])]
        self.set_generator_states(state.get("generators", {}))
        for name, saved in state.get("buffers", {}).items():
            self.buffers[name].copy_(saved.to(self.buffers[name].device))

    # -- the loop ------------------------------------------------------------------------
    def _iterate(self, it: int, iterations: int) -> None:
        loss, scalars = self.loss_fn(it)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_transform is not None:
            self.grad_transform(self.model)
        self._committing = True  # from here on the iteration cannot be rolled back
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        if self.after_step is not None:
            self.after_step(it)
        record = {"losses/loss": float(loss.detach())}
        if self.scheduler is not None:
            record["charts/lr"] = float(self.scheduler.get_last_lr()[0])
        record.update({k: float(v) for k, v in scalars.items()})
        due = self.evaluate_every and it % self.evaluate_every == 0
        if self.evaluate is not None and (due or it == iterations):
            record.update({k: float(v) for k, v in self.evaluate(it).items()})
        self.iteration = it
        self.history.append(record)
        if self.log is not None:
            self.log(it, record)

    def _save(self) -> Any:
        return self.save(self) if self.save is not None else None

    def fit(self, iterations: int) -> list[dict[str, float]]:
        """Run iterations ``self.iteration + 1 .. iterations``; returns the history.

        Raises:
            KeyboardInterrupt: after saving a checkpoint (see the module doc).
        """
        with _DeferredInterrupt() as interrupt:
            while self.iteration < iterations:
                it = self.iteration + 1
                snapshot = self.generator_states()
                self._committing = False
                try:
                    self._iterate(it, iterations)
                except KeyboardInterrupt:
                    if self._committing:  # half-applied: keep the last periodic checkpoint
                        self.echo(f"interrupted inside iteration {it}'s update; not saved")
                        raise
                    self.set_generator_states(snapshot)
                    self._interrupted()
                    raise
                last = it == iterations
                if (self.checkpoint_every and it % self.checkpoint_every == 0) or last:
                    self._save()
                    if interrupt.pending:
                        self.echo(f"interrupted: checkpoint after iteration {it}")
                        raise KeyboardInterrupt
                elif interrupt.pending:
                    self._interrupted()
                    raise KeyboardInterrupt
        return self.history

    def _interrupted(self) -> None:
        path = self._save()
        where = f" at {path}" if path is not None else ""
        self.echo(f"interrupted: checkpoint{where} (after iteration {self.iteration})")
