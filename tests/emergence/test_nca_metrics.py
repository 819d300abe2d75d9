"""Neural-CA metrics on hand-made tensors."""

from __future__ import annotations

import pytest
import torch

from colonylab.emergence.nca import (
    classification_run,
    majority_vote,
    majority_vote_accuracy,
    pixel_agreement,
    reagreement,
    stability,
    vote_counts,
)


# -- digits --------------------------------------------------------------------------------
def _votes(grid: list[list[int]], classes: int = 10) -> torch.Tensor:
    """Logits ``(1, H, W, K)`` whose argmax is ``grid`` (-1: a dead cell, logits zero)."""
    g = torch.tensor(grid)
    logits = torch.zeros(*g.shape, classes)
    for (r, c), v in zip(torch.nonzero(g >= 0).tolist(), g[g >= 0].tolist(), strict=True):
        logits[r, c, v] = 1.0
    return logits.unsqueeze(0)


def _batch():
    """Two images: image 0 votes 3,3,3,7 (+1 dead cell); image 1 votes 1,2,2 (+2 dead)."""
    a = _votes([[3, 3, -1], [3, 7, -1]])
    b = _votes([[1, 2, -1], [2, -1, -1]])
    logits = torch.cat([a, b])
    alive = torch.tensor(
        [[[True, True, False], [True, True, False]], [[True, True, False], [True, False, False]]]
    )
    return logits, alive


def test_vote_counts_and_majority():
    logits, alive = _batch()
    counts = vote_counts(logits, alive)
    assert counts.shape == (2, 10)
    assert counts[0, 3] == 3 and counts[0, 7] == 1 and counts[0].sum() == 4
    assert counts[1, 1] == 1 and counts[1, 2] == 2 and counts[1].sum() == 3
    assert majority_vote(logits, alive).tolist() == [3, 2]


def test_dead_cells_do_not_vote():
    logits, alive = _batch()
    logits[0, 0, 2, 9] = 100.0  # a dead cell with a strong opinion
    logits[0, 1, 2, 9] = 100.0
    logits[0, 0, 0] = 0.0  # a live cell with no opinion votes class 0 (argmax of zeros)
    assert majority_vote(logits, alive)[0] == 3
    assert vote_counts(logits, alive)[0, 9] == 0


def test_ties_go_to_the_lowest_class_and_empty_images_to_minus_one():
    logits = _votes([[4, 6]])
    alive = torch.ones(1, 1, 2, dtype=torch.bool)
    assert majority_vote(logits, alive).tolist() == [4]
    assert majority_vote(logits, torch.zeros_like(alive)).tolist() == [-1]
    assert majority_vote_accuracy(logits, torch.zeros_like(alive), torch.tensor([0])) == 0.0


def test_majority_vote_accuracy():
    logits, alive = _batch()
    assert majority_vote_accuracy(logits, alive, torch.tensor([3, 2])) == 1.0
    assert majority_vote_accuracy(logits, alive, torch.tensor([3, 1])) == 0.5
    assert majority_vote_accuracy(logits, alive, torch.tensor([7, 1])) == 0.0
    with pytest.raises(ValueError, match="labels"):
        majority_vote_accuracy(logits, alive, torch.tensor([3, 2, 1]))


def test_pixel_agreement_is_a_mean_over_images():
    logits, alive = _batch()
    # image 0: 3 of 4 agree; image 1: 2 of 3
    assert pixel_agreement(logits, alive) == pytest.approx((3 / 4 + 2 / 3) / 2)
    unanimous = _votes([[5, 5], [5, 5]])
    assert pixel_agreement(unanimous, torch.ones(1, 2, 2, dtype=torch.bool)) == 1.0
    # an image without live cells is left out
    both = torch.cat([unanimous, unanimous])
    alive = torch.ones(2, 2, 2, dtype=torch.bool)
    alive[1] = False
    assert pixel_agreement(both, alive) == 1.0
    assert pixel_agreement(both, torch.zeros_like(alive)) == 1.0


def test_shape_errors_name_the_shapes():
    logits, alive = _batch()
    with pytest.raises(ValueError, match=r"alive mask shape \(2, 3, 2\)"):
        vote_counts(logits, alive.transpose(1, 2))
    with pytest.raises(ValueError, match="logits must be"):
        vote_counts(logits[0], alive[0])


def test_stability_counts_images_whose_majority_never_changes():
    majorities = torch.tensor([[1, 2, 3, 4], [1, 2, 5, 4], [1, 0, 3, 4]])  # (T=3, B=4)
    assert stability(majorities) == 0.5  # images 0 and 3 keep theirs
    assert stability(majorities[:1]) == 1.0
    with pytest.raises(ValueError, match="majorities"):
        stability(torch.tensor([1, 2]))


def _converging_rule(target_class: int, speed: float = 0.5):
    """A toy "CA": each step moves every cell's logits towards one-hot ``target_class``."""

    def step(x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        goal = torch.zeros(10)
        goal[target_class] = 1.0
        y[..., -10:] += speed * (goal - y[..., -10:])
        return y * (x[..., :1] > 0)

    return step


def test_classification_run_curves_accuracy_and_stability():
    x = torch.zeros(3, 4, 4, 12)
    x[:, 1:3, 1:3, 0] = 1.0  # live cells: a 2x2 block per image
    x[:, 1:3, 1:3, -10 + 7] = 1.0  # they all start voting 7
    alive = x[..., 0] > 0
    labels = torch.tensor([2, 2, 7])
    run = classification_run(_converging_rule(2), x, alive, labels, steps=10, stable_from=5)
    assert len(run.accuracy_curve) == len(run.agreement_curve) == 11
    assert run.accuracy_curve[0] == pytest.approx(1 / 3)  # only the "7" is right at first
    assert run.accuracy == pytest.approx(2 / 3) and run.agreement == 1.0
    assert run.stability == 1.0  # settled well before step 5
    early = classification_run(_converging_rule(2), x, alive, labels, steps=10, stable_from=0)
    assert early.stability == 0.0  # every image flips from 7 to 2 after step 0
    with pytest.raises(ValueError, match="stable_from"):
        classification_run(_converging_rule(2), x, alive, labels, steps=3, stable_from=4)


def test_reagreement_scores_the_new_label_after_the_swap():
    x = torch.zeros(2, 3, 3, 12)
    x[..., 0] = 1.0

    def to_class(k):
        return _converging_rule(k, speed=1.0)

    phase = {"k": 4}

    def step(s):
        return to_class(phase["k"])(s)

    def swap(s):
        phase["k"] = 6  # the new digits are sixes; the cells must follow
        return s, s[..., 0] > 0

    assert reagreement(step, x, swap, torch.tensor([6, 6]), swap_at=3, steps=6) == 1.0
    phase["k"] = 4
    assert reagreement(step, x, swap, torch.tensor([6, 6]), swap_at=6, steps=6) == 0.0
    with pytest.raises(ValueError, match="swap_at"):
        reagreement(step, x, swap, torch.tensor([6, 6]), swap_at=7, steps=6)
