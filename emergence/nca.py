"""Neural-CA metrics: what a grid of cells running one shared rule agrees on.

Pure functions of states (and, for whole runs, of a step function), logged by the
neural-CA experiments under ``emergence/...``.

Digits (Randazzo et al. 2020, "Self-classifying MNIST Digits"): every live pixel
of a digit holds ``K`` class logits; its *vote* is their argmax. The image's
*majority* is the class with the most votes among its live pixels.

``majority_vote_accuracy``  share of images whose majority is their label
``pixel_agreement``         share of live pixels voting for their image's majority
``stability``               share of images whose majority never changes over a run
``classification_run``      accuracy / agreement / stability of ``steps`` CA steps
``reagreement``             accuracy w.r.t. a new label after swapping the digit
                            mid-run (cells must re-agree on another class)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = [
    "DigitsRun",
    "classification_run",
    "majority_vote",
    "majority_vote_accuracy",
    "pixel_agreement",
    "reagreement",
    "stability",
    "vote_counts",
]


# -- digits --------------------------------------------------------------------------------
def _check_votes(logits: torch.Tensor, alive: torch.Tensor) -> None:
    if logits.dim() != 4:
        raise ValueError(f"logits must be (B, H, W, K), got shape {tuple(logits.shape)}")
    if alive.shape != logits.shape[:3]:
        raise ValueError(
            f"alive mask shape {tuple(alive.shape)} does not match the logits' grid "
            f"{tuple(logits.shape[:3])} (expected (B, H, W))"
        )


def vote_counts(logits: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
    """How many live pixels of each image vote for each class.

    Args:
        logits: ``(B, H, W, K)`` per-pixel class logits.
        alive: ``bool (B, H, W)`` the pixels that vote.
    Returns:
        ``int64 (B, K)`` vote counts.
    """
    _check_votes(logits, alive)
    b, _, _, k = logits.shape
    votes = logits.argmax(dim=-1)  # (B, H, W)
    onehot = torch.nn.functional.one_hot(votes, k) * alive.unsqueeze(-1)  # (B, H, W, K)
    return onehot.reshape(b, -1, k).sum(dim=1)


def majority_vote(logits: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
    """Each image's majority class: ``int64 (B,)``; ties go to the lowest class, and an
    image without live pixels gets ``-1`` (it never counts as correct)."""
    counts = vote_counts(logits, alive)
    majority = counts.argmax(dim=1)
    return torch.where(counts.sum(dim=1) > 0, majority, torch.full_like(majority, -1))


def majority_vote_accuracy(
    logits: torch.Tensor, alive: torch.Tensor, labels: torch.Tensor
) -> float:
    """Share of images whose majority vote equals the label.

    Args:
        logits: ``(B, H, W, K)``; alive: ``bool (B, H, W)``; labels: ``int (B,)``.
    """
    if labels.shape != logits.shape[:1]:
        raise ValueError(
            f"labels must be (B,) = {tuple(logits.shape[:1])}, got {tuple(labels.shape)}"
        )
    majority = majority_vote(logits, alive)
    return float((majority == labels.to(majority.device)).float().mean())


def pixel_agreement(logits: torch.Tensor, alive: torch.Tensor) -> float:
    """Share of live pixels whose vote equals their image's majority.

    Averaged per image first, so a big digit weighs no more than a small one; images
    without live pixels are left out (1.0 if there are none at all).
    """
    counts = vote_counts(logits, alive)  # (B, K)
    live = counts.sum(dim=1)
    has = live > 0
    if not bool(has.any()):
        return 1.0
    share = counts.max(dim=1).values[has].float() / live[has].float()
    return float(share.mean())


def stability(majorities: torch.Tensor) -> float:
    """Share of images whose majority never changes over a run.

    Args:
        majorities: ``int (T, B)``: each image's majority class after each of ``T``
            recorded steps (e.g. every step from 100 to 200).
    """
    if majorities.dim() != 2 or majorities.shape[0] < 1:
        raise ValueError(f"majorities must be (T >= 1, B), got shape {tuple(majorities.shape)}")
    constant = (majorities == majorities[:1]).all(dim=0)
    return float(constant.float().mean())


@dataclass(frozen=True)
class DigitsRun:
    """Classification along one run of the CA from fresh states.

    Attributes:
        accuracy: majority-vote accuracy after the last step.
        agreement: pixel agreement after the last step.
        stability: share of images whose majority is the same after every step from
            ``stable_from`` to the last (see :func:`stability`).
        accuracy_curve: accuracy after each step, ``steps + 1`` values (index 0: start).
        agreement_curve: agreement after each step, ``steps + 1`` values.
    """

    accuracy: float
    agreement: float
    stability: float
    accuracy_curve: list[float]
    agreement_curve: list[float]


@torch.no_grad()
def classification_run(
    step: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    alive: torch.Tensor,
    labels: torch.Tensor,
    steps: int = 200,
    stable_from: int = 100,
    classes: int = 10,
) -> DigitsRun:
    """Run ``steps`` CA steps and measure the vote after each.

    Args:
        step: one CA step ``(B, H, W, C) -> (B, H, W, C)``.
        x: ``(B, H, W, C)`` start states; the last ``classes`` channels are the logits.
        alive: ``bool (B, H, W)`` the digits' pixels.
        labels: ``int (B,)``.
        steps: CA steps to run.
        stable_from: first step of the window :attr:`DigitsRun.stability` covers.
    """
    if not 0 <= stable_from <= steps:
        raise ValueError(f"stable_from must be in [0, steps={steps}], got {stable_from}")
    accuracy, agreement, window = [], [], []
    for t in range(steps + 1):
        if t:
            x = step(x)
        logits = x[..., -classes:]
        accuracy.append(majority_vote_accuracy(logits, alive, labels))
        agreement.append(pixel_agreement(logits, alive))
        if t >= stable_from:
            window.append(majority_vote(logits, alive))
    return DigitsRun(
        accuracy[-1], agreement[-1], stability(torch.stack(window)), accuracy, agreement
    )


@torch.no_grad()
def reagreement(
    step: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    swap: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    new_labels: torch.Tensor,
    swap_at: int = 100,
    steps: int = 200,
    classes: int = 10,
) -> float:
    """Accuracy w.r.t. ``new_labels`` after the digits are swapped mid-run.

    Runs ``swap_at`` steps, replaces each digit by ``swap(x) -> (x, alive)`` (another
    digit, of another class; cells keep their state where both digits have ink), runs
    to ``steps`` and returns the majority-vote accuracy against the new labels.
    """
    if not 0 <= swap_at <= steps:
        raise ValueError(f"swap_at must be in [0, steps={steps}], got {swap_at}")
    for _ in range(swap_at):
        x = step(x)
    x, alive = swap(x)
    for _ in range(steps - swap_at):
        x = step(x)
    return majority_vote_accuracy(x[..., -classes:], alive, new_labels)
