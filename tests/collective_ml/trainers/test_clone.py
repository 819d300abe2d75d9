"""Behaviour cloning on a toy task: a linear teacher stabilises a tiny linear system.

The world is defined here (the trainer imports none): ``x' = x + 0.1 * (x @ A + u @ B)``
with ``D=3`` states, ``2`` actions, episodes of 30 steps from seeded random starts.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from colonylab.collective_ml.trainers.clone import behaviour_clone

D, A = 3, 2
GAIN = torch.tensor([[0.6, -0.3], [0.2, 0.5], [-0.4, 0.1]])


class ToyWorld:
    """``N`` copies of a small linear system; observations are the states."""

    def __init__(self, num_envs: int, horizon: int = 30) -> None:
        self.n, self.horizon = num_envs, horizon
        self.x = torch.zeros(num_envs, D)
        self.t = 0

    def reset(self, seed=None, options=None):
        g = torch.Generator().manual_seed(int(seed or 0))
        self.x = torch.randn(self.n, D, generator=g)
        self.t = 0
        return self.x.clone()

    def step(self, actions):
        u = torch.as_tensor(actions, dtype=torch.float32).reshape(self.n, A)
        self.x = self.x + 0.1 * (self.x @ torch.eye(D) * 0.5 + u @ GAIN.T)
        self.t += 1
        # env i ends after horizon - 4 * (i % 3) steps: rollouts hold ended (dead) frames
        done = self.t >= self.horizon - 4 * (torch.arange(self.n) % 3)
        return (
            self.x.clone(),
            -self.x.square().sum(-1),
            torch.zeros(self.n, dtype=torch.bool),
            done,
            {},
        )


def teacher(world: ToyWorld) -> torch.Tensor:
    return (-world.x @ GAIN).clamp(-1, 1)  # (N, A)


def make_world(num_envs: int, iteration: int) -> ToyWorld:
    return ToyWorld(num_envs)


def student_error(student: nn.Module) -> float:
    world = ToyWorld(64)
    obs = world.reset(seed=999)
    with torch.no_grad():
        return float((student(obs) - teacher(world)).square().mean())


def _student(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(D, 16), nn.Tanh(), nn.Linear(16, A), nn.Tanh())


COMMON = dict(iterations=6, envs=8, steps=30, seed=3, lr=1e-2, epochs=3, replay=3)


@pytest.mark.parametrize(
    "mode",
    [
        dict(beta_decay=1.0),  # plain BC
        dict(beta_decay=0.5),  # DAgger
        dict(beta_decay=1.0, teacher_noise=0.3),  # DART
        dict(beta_decay=0.5, minibatch=32),  # frame-wise
    ],
)
def test_the_students_error_falls(mode):
    student = _student()
    before = student_error(student)
    result = behaviour_clone(student, make_world, teacher, **COMMON, **mode)
    assert student_error(student) < 0.25 * before
    losses = [h["losses/bc"] for h in result.history]
    assert losses[-1] < losses[0]
    assert result.env_steps == 6 * sum(30 - 4 * (i % 3) for i in range(8))


def test_best_validation_is_kept_and_reported():
    calls = []
    student = _student()
    result = behaviour_clone(
        student,
        make_world,
        teacher,
        **COMMON,
        validate=lambda s: -student_error(s),
        validate_every=2,
        on_best=lambda s, v, it: calls.append(it),
    )
    assert calls and calls[0] == 2 and set(calls) <= {2, 4, 6}
    assert result.validation == pytest.approx(-student_error(student))


@pytest.mark.parametrize("minibatch", [None, 32])
def test_resume_is_bit_identical(minibatch):
    full_student = _student()
    full = behaviour_clone(
        full_student,
        make_world,
        teacher,
        **COMMON,
        minibatch=minibatch,
        beta_decay=0.5,
        teacher_noise=0.2,
    )

    saved = []

    def stop_after_three(state):
        saved.append(state)
        if state["iteration"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        behaviour_clone(
            _student(),
            make_world,
            teacher,
            **COMMON,
            minibatch=minibatch,
            beta_decay=0.5,
            teacher_noise=0.2,
            save=stop_after_three,
        )
    # the interrupt saves the last completed iteration again
    assert [s["iteration"] for s in saved] == [1, 2, 3, 3]
    resumed_student = _student(seed=123)  # other initial weights: all must come from the state
    resumed = behaviour_clone(
        resumed_student,
        make_world,
        teacher,
        **COMMON,
        minibatch=minibatch,
        beta_decay=0.5,
        teacher_noise=0.2,
        resume=saved[-1],
    )
    for a, b in zip(
        full_student.state_dict().values(), resumed_student.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    assert [h["losses/bc"] for h in full.history] == [h["losses/bc"] for h in resumed.history]
    assert full.env_steps == resumed.env_steps


class PixelWorld(ToyWorld):
    """Observations on a grid of 1/8: few distinct values, as pixels have."""

    def reset(self, seed=None, options=None):
        return (super().reset(seed=seed) * 8).round() / 8 + 0.0  # no -0.0

    def step(self, actions):
        obs, *rest = super().step(actions)
        return ((obs * 8).round() / 8 + 0.0, *rest)


@pytest.mark.parametrize("pixels", [False, True])
def test_resume_through_a_torch_file(tmp_path, pixels):
    """The state survives torch.save / torch.load(weights_only=True), its replay packed
    (live frames; observations of few distinct values as uint8 codes)."""
    world = PixelWorld if pixels else ToyWorld

    def make_world(num_envs: int, iteration: int) -> ToyWorld:
        return world(num_envs)

    saved = {}

    def save(state):
        torch.save(state, tmp_path / "s.pt")
        saved["n"] = state["iteration"]

    a = _student()
    behaviour_clone(a, make_world, teacher, **{**COMMON, "iterations": 2}, save=save)
    state = torch.load(tmp_path / "s.pt", weights_only=True)
    assert all(("codes" in item) == pixels for item in state["replay"])
    b = _student(seed=5)
    behaviour_clone(b, make_world, teacher, **COMMON, resume=state)
    c = _student()
    behaviour_clone(c, make_world, teacher, **COMMON)
    for x, y in zip(b.state_dict().values(), c.state_dict().values(), strict=True):
        assert torch.equal(x, y)


@pytest.mark.parametrize(
    "bad, match",
    [(dict(iterations=0), "iterations"), (dict(lr=0.0), "lr"), (dict(minibatch=0), "minibatch")],
)
def test_bad_arguments_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        behaviour_clone(_student(), make_world, teacher, **{**COMMON, **bad})
