"""GradientTrainer on a toy regression: it learns, and stop + resume (or an interrupt)
ends with the same weights and history as one uninterrupted run."""

from __future__ import annotations

import copy
import os
import signal

import numpy as np
import pytest
import torch

from colonylab.collective_ml.trainers.gradient import GradientTrainer, normalise_gradients

TRUE_W = torch.tensor([[2.0, -1.0, 0.5]])


def _setup(checkpoints: list | None = None, interrupt_at: int | None = None):
    """A linear model fitting y = x @ TRUE_W.T + 0.3 from minibatches drawn with a
    generator (the state to carry across a resume)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [30], gamma=0.5)
    generator = torch.Generator().manual_seed(1)

    def loss_fn(it: int):
        if it == interrupt_at:
            torch.randn(4, generator=generator)  # draw, then get cut short: must roll back
            raise KeyboardInterrupt
        x = torch.randn(16, 3, generator=generator)
        y = x @ TRUE_W.T + 0.3
        return (model(x) - y).square().mean(), {"charts/batch": 16}

    def save(trainer: GradientTrainer):
        checkpoints.append(
            {
                "model": copy.deepcopy(model.state_dict()),
                "trainer": copy.deepcopy(trainer.state_dict()),
            }
        )
        return f"ckpt-{trainer.iteration}"

    trainer = GradientTrainer(
        model,
        optimizer,
        loss_fn,
        scheduler=scheduler,
        evaluate=lambda it: {"eval/w0": float(model.weight[0, 0].detach())},
        evaluate_every=10,
        save=save if checkpoints is not None else None,
        checkpoint_every=20,
        generators={"batches": generator},
        echo=lambda text: None,
    )
    return model, trainer, generator


def _resume(ckpt):
    model, trainer, generator = _setup()
    model.load_state_dict(ckpt["model"])
    trainer.load_state_dict(ckpt["trainer"])
    return model, trainer


def test_learns_the_toy_regression():
    model, trainer, _ = _setup()
    history = trainer.fit(200)
    assert len(history) == 200 and trainer.iteration == 200
    assert history[-1]["losses/loss"] < 0.01 * history[0]["losses/loss"]
    assert torch.allclose(model.weight, TRUE_W, atol=0.05)
    assert history[29]["charts/lr"] == pytest.approx(0.025)  # the scheduler ran
    assert "eval/w0" in history[9] and "eval/w0" not in history[10]


def test_stop_and_resume_is_bit_identical():
    full, trainer, _ = _setup()
    expected = trainer.fit(60)

    saved: list = []
    _, half, _ = _setup(saved)
    half.fit(20)  # a run asked for 20 iterations, then extended to 60
    model, resumed = _resume(saved[-1])
    history = resumed.fit(60)
    assert all(
        torch.equal(a, b) for a, b in zip(model.parameters(), full.parameters(), strict=True)
    )
    assert history == expected


def test_interrupt_saves_the_last_whole_iteration_and_resumes_identically():
    full, trainer, _ = _setup()
    expected = trainer.fit(50)

    saved: list = []
    _, cut, _ = _setup(saved, interrupt_at=33)
    with pytest.raises(KeyboardInterrupt):
        cut.fit(50)
    assert saved[-1]["trainer"]["iteration"] == 32  # periodic at 20, then the interrupt
    model, resumed = _resume(saved[-1])
    history = resumed.fit(50)
    assert all(
        torch.equal(a, b) for a, b in zip(model.parameters(), full.parameters(), strict=True)
    )
    assert history == expected


def test_normalise_gradients_gives_unit_norms():
    model = torch.nn.Linear(4, 2)
    model(torch.randn(8, 4)).square().sum().backward()
    normalise_gradients(model)
    for p in model.parameters():
        assert p.grad.norm() == pytest.approx(1.0, abs=1e-6)


def test_a_real_sigint_finishes_the_iteration_saves_and_reraises():
    full, trainer, _ = _setup()
    expected = trainer.fit(30)

    saved: list = []
    model, cut, generator = _setup(saved)
    loss_fn = cut.loss_fn

    def loss_with_ctrl_c(it: int):
        if it == 13:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C arrives mid-iteration
        return loss_fn(it)

    cut.loss_fn = loss_with_ctrl_c
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when started in the background
    with pytest.raises(KeyboardInterrupt):
        cut.fit(30)
    assert cut.iteration == 13 and saved[-1]["trainer"]["iteration"] == 13
    assert signal.getsignal(signal.SIGINT) is before  # the handler is restored
    model, resumed = _resume(saved[-1])
    assert resumed.fit(30) == expected
    assert all(
        torch.equal(a, b) for a, b in zip(model.parameters(), full.parameters(), strict=True)
    )


def test_numpy_generators_and_buffers_are_saved_and_restored():
    model = torch.nn.Linear(2, 1)
    rng = np.random.default_rng(4)
    pool = torch.zeros(5)

    def loss_fn(it: int):
        pool[int(rng.integers(5))] += 1.0  # (a real loop would write it in after_step)
        return model(torch.ones(1, 2)).sum(), {}

    def build():
        return GradientTrainer(
            model,
            torch.optim.SGD(model.parameters(), lr=0.1),
            loss_fn,
            generators={"numpy": rng},
            buffers={"pool": pool},
        )

    trainer = build()
    trainer.fit(3)
    state = copy.deepcopy(trainer.state_dict())
    after = (rng.integers(1 << 30), pool.clone())
    pool.zero_()
    rng.integers(7)  # move the generator on
    build().load_state_dict(state)
    assert torch.equal(pool, after[1]) and pool.sum() == 3
    assert rng.integers(1 << 30) == after[0]


def test_adam_with_decay_multiplies_the_rate_once():
    from colonylab.collective_ml.trainers.gradient import adam_with_decay

    w = torch.nn.Parameter(torch.zeros(2))
    optimizer, scheduler = adam_with_decay([w], 0.1, decay_at=2, decay=0.5)
    rates = []
    for _ in range(4):
        optimizer.step()
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates == pytest.approx([0.1, 0.05, 0.05, 0.05])
    _, never = adam_with_decay([w], 0.1, decay_at=0, decay=0.5)
    assert never.milestones == {} or not never.milestones
