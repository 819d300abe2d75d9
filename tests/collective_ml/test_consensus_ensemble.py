"""Talking ensembles: shapes, symmetry, agreement, training, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from colonylab.collective_ml.consensus_ensemble import TalkingEnsemble, fit_talking


def test_shapes_and_agreement_range():
    torch.manual_seed(0)
    talk = TalkingEnsemble(5, 3, hidden=8, message=8, steps=2)
    logits = torch.randn(5, 7, 3)
    assert talk(logits).shape == (7, 3)
    assert talk.opinions(logits).shape == (7, 5, 3)
    a = talk.agreement(logits)
    assert a.shape == (7,) and (a >= 1 / 3).all() and (a <= 1).all()
    # log-probabilities
    torch.testing.assert_close(talk(logits).exp().sum(-1), torch.ones(7))


def test_an_untrained_talk_is_the_mean_of_log_probabilities():
    talk = TalkingEnsemble(4, 3, hidden=8, message=8, steps=2)
    logits = torch.randn(4, 6, 3)
    want = torch.log_softmax(torch.log_softmax(logits, -1).mean(0), -1)
    torch.testing.assert_close(talk(logits), want)


def test_without_member_ids_the_answer_ignores_member_order():
    torch.manual_seed(1)
    talk = TalkingEnsemble(6, 4, hidden=8, message=8, steps=3, member_ids=False)
    logits = torch.randn(6, 5, 4)
    perm = torch.randperm(6)
    torch.testing.assert_close(talk(logits[perm]), talk(logits), atol=1e-5, rtol=1e-5)


def test_training_learns_to_trust_the_reliable_member():
    """Member 0 is always right, the other four guess: the mean is poor, a trained
    talking ensemble follows member 0."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (600,), generator=g)
    logits = torch.randn(5, 600, 3, generator=g) * 2
    logits[0] = F.one_hot(y, 3).float() * 1.5
    torch.manual_seed(0)
    talk = TalkingEnsemble(5, 3, hidden=16, message=16, steps=2)
    fit_talking(talk, logits[:, :500], y[:500], epochs=30, generator=g)
    with torch.no_grad():
        talk_acc = (talk(logits[:, 500:]).argmax(-1) == y[500:]).float().mean()
    mean_acc = (logits[:, 500:].mean(0).argmax(-1) == y[500:]).float().mean()
    assert talk_acc > 0.95 and talk_acc > mean_acc + 0.2


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: TalkingEnsemble(0, 3), "num_members"),
        (lambda: TalkingEnsemble(3, 1), "num_classes"),
        (lambda: TalkingEnsemble(3, 3, graph="star"), "graph must"),
        (lambda: TalkingEnsemble(2, 3, graph="ring"), ">= 3 members"),
        (lambda: TalkingEnsemble(3, 3)(torch.zeros(4, 2, 3)), "member logits"),
        (
            lambda: fit_talking(TalkingEnsemble(3, 3), torch.zeros(3, 4, 3), torch.zeros(5)),
            "y must",
        ),
    ],
)
def test_bad_input_is_one_line_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
