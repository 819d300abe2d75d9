"""Tests for colonylab.collective_ml.voting: voting, the unified collective, relevance, swarm allocation."""

import math

import pytest
import torch
from torch import nn

from colonylab.collective_ml.ensemble import Ensemble
from colonylab.collective_ml.voting import (
    RelevanceScorer,
    UnifiedCollective,
    VotingLayer,
    confidence_weights,
    swarm_allocate,
)


def make_experts(n: int = 4, d_in: int = 5, d_out: int = 3, seed: int = 0) -> list[nn.Module]:
    torch.manual_seed(seed)
    return [nn.Sequential(nn.Linear(d_in, 6), nn.Tanh(), nn.Linear(6, d_out)) for _ in range(n)]


# --------------------------------------------------------------------------- #
# VotingLayer
# --------------------------------------------------------------------------- #


def test_voting_modes_by_hand():
    probs = torch.tensor(
        [
            [[0.9, 0.1]],  # confident, class 0
            [[0.4, 0.6]],  # unsure, class 1
            [[0.45, 0.55]],  # unsure, class 1
        ]
    )  # (E=3, B=1, C=2)
    soft = VotingLayer("soft", from_probs=True)
    torch.testing.assert_close(soft(probs), probs.mean(0))
    hard = VotingLayer("hard", from_probs=True)
    torch.testing.assert_close(hard(probs), torch.tensor([[1 / 3, 2 / 3]]))
    assert hard.predict(probs).item() == 1  # the majority
    confident = VotingLayer("confidence", from_probs=True)
    weights = torch.tensor([0.9, 0.6, 0.55]) / 2.05
    torch.testing.assert_close(confident(probs), (weights[:, None, None] * probs).sum(0))
    # logits in, same answers
    torch.testing.assert_close(VotingLayer("soft")(probs.log()), probs.mean(0))
    assert VotingLayer("hard").predict(probs.log()).item() == 1


def test_confidence_weights_measures():
    probs = torch.tensor([[[1.0, 0.0]], [[0.5, 0.5]]])  # (E=2, B=1, C=2)
    # entropy: 1 - H/log C -> 1 and 0: the uniform expert gets no say
    torch.testing.assert_close(confidence_weights(probs, "entropy"), torch.tensor([[1.0], [0.0]]))
    torch.testing.assert_close(
        confidence_weights(probs, "max_prob"), torch.tensor([[1 / 1.5], [0.5 / 1.5]])
    )
    # all-uniform experts under entropy: fall back to uniform weights
    flat = torch.full((3, 2, 4), 0.25)
    torch.testing.assert_close(confidence_weights(flat, "entropy"), torch.full((3, 2), 1 / 3))
    layer = VotingLayer("confidence", confidence="entropy", from_probs=True)
    torch.testing.assert_close(layer(probs), torch.tensor([[1.0, 0.0]]))
    with pytest.raises(ValueError, match="confidence measure"):
        confidence_weights(probs, "margin")


def test_voting_outputs_are_distributions():
    torch.manual_seed(0)
    logits = 3 * torch.randn(5, 8, 4)
    for mode in ("soft", "hard", "confidence"):
        out = VotingLayer(mode)(logits)
        assert out.shape == (8, 4)
        torch.testing.assert_close(out.sum(-1), torch.ones(8))
        assert (out >= 0).all()


def test_voting_bad_input():
    with pytest.raises(ValueError, match="voting mode"):
        VotingLayer("majority")
    with pytest.raises(ValueError, match="confidence measure"):
        VotingLayer("confidence", confidence="margin")
    with pytest.raises(ValueError, match=r"\(E, B, C\)"):
        VotingLayer("soft")(torch.zeros(4, 3))


# --------------------------------------------------------------------------- #
# UnifiedCollective
# --------------------------------------------------------------------------- #


def test_uniform_weighting_equals_ensemble_mean():
    experts = make_experts()
    x = torch.randn(9, 5)
    unified = UnifiedCollective(experts, "uniform")
    ensemble = Ensemble(experts, aggregation="mean")
    torch.testing.assert_close(unified(x), ensemble.predict(x))
    out, weights = unified(x, return_weights=True)
    torch.testing.assert_close(weights, torch.full((4, 9), 0.25))
    # and with probabilities combined it is the soft vote
    soft = UnifiedCollective(experts, "uniform", combine="probs")
    torch.testing.assert_close(soft(x), Ensemble(experts, aggregation="soft").predict(x))


def test_learned_weighting_equals_dense_gated_moe():
    experts = make_experts()
    torch.manual_seed(1)
    gate = nn.Linear(5, 4)
    unified = UnifiedCollective(experts, "learned", gate=gate)
    x = torch.randn(9, 5)
    # the textbook dense-gated mixture: sum_i softmax(g(x))_i f_i(x)
    gate_probs = torch.softmax(gate(x), dim=-1)  # (B, E)
    expected = sum(gate_probs[:, i : i + 1] * expert(x) for i, expert in enumerate(experts))
    torch.testing.assert_close(unified(x), expected)

    # the same gradients reach the gate and the experts
    target = torch.randn(9, 3)
    ((unified(x) - target) ** 2).sum().backward()
    ((expected - target) ** 2).sum().backward()
    torch.testing.assert_close(unified.gate.weight.grad, gate.weight.grad)
    torch.testing.assert_close(
        unified.experts.stacked_params["2/weight"].grad[1], experts[1][2].weight.grad
    )


def test_learned_weighting_over_tokens_and_default_gate():
    experts = make_experts(3, d_in=4, d_out=2)
    unified = UnifiedCollective(experts, "learned", in_features=4)
    x = torch.randn(2, 7, 4)  # (B, T, d)
    out, weights = unified(x, return_weights=True)
    assert out.shape == (2, 7, 2) and weights.shape == (3, 2, 7)
    torch.testing.assert_close(weights.sum(0), torch.ones(2, 7))


def test_confidence_weighting_matches_voting_layer():
    experts = make_experts()
    x = torch.randn(9, 5)
    unified = UnifiedCollective(experts, "confidence", combine="probs")
    logits = Ensemble(experts)(x)
    torch.testing.assert_close(unified(x), VotingLayer("confidence")(logits))


def test_unified_bad_input():
    experts = make_experts()
    with pytest.raises(ValueError, match="weighting"):
        UnifiedCollective(experts, "attention")
    with pytest.raises(ValueError, match="in_features"):
        UnifiedCollective(experts, "learned")
    with pytest.raises(ValueError, match="gate is only used"):
        UnifiedCollective(experts, "uniform", gate=nn.Linear(5, 4))
    with pytest.raises(ValueError, match="combine"):
        UnifiedCollective(experts, "uniform", combine="logits")
    with pytest.raises(ValueError, match="gate must return"):
        UnifiedCollective(experts, "learned", gate=nn.Linear(5, 3))(torch.randn(2, 5))
    with pytest.raises(ValueError, match="architecture"):
        UnifiedCollective([*make_experts(2), nn.Linear(5, 3)], "uniform")


# --------------------------------------------------------------------------- #
# RelevanceScorer
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("scoring", ["query", "projection"])
def test_relevance_scorer_shapes_and_permutation_equivariance(scoring):
    torch.manual_seed(0)
    scorer = RelevanceScorer(8, num_experts=5, k=2, scoring=scoring)
    x = torch.randn(3, 10, 8)
    routing = scorer(x)
    assert routing.relevance.shape == (3, 10)
    assert routing.logits.shape == (3, 10, 5)
    assert routing.experts.shape == (3, 10, 2) and routing.experts.dtype == torch.int64
    assert routing.gates.shape == (3, 10, 2)
    # gates sum to sigmoid(relevance): softmax over the k chosen, scaled by relevance
    torch.testing.assert_close(routing.gates.sum(-1), torch.sigmoid(routing.relevance))
    # chosen experts are the top-k logits
    assert torch.equal(routing.experts, routing.logits.topk(2, dim=-1).indices)

    perm = torch.randperm(10)
    permuted = scorer(x[:, perm])
    torch.testing.assert_close(permuted.relevance, routing.relevance[:, perm])
    torch.testing.assert_close(permuted.logits, routing.logits[:, perm])
    assert torch.equal(permuted.experts, routing.experts[:, perm])
    torch.testing.assert_close(permuted.gates, routing.gates[:, perm])


def test_relevance_conditions_routing():
    torch.manual_seed(0)
    scorer = RelevanceScorer(4, num_experts=3, k=1)
    with torch.no_grad():
        scorer.router.weight.zero_()
        scorer.router.bias.zero_()
    x = torch.randn(1, 6, 4)
    routing = scorer(x)
    r = x @ scorer.query / 2.0
    torch.testing.assert_close(routing.relevance, r)
    torch.testing.assert_close(routing.logits, r[..., None] * torch.tensor([-1.0, 0.0, 1.0]))
    # with a zero router, relevant tokens go to the last expert, irrelevant ones to the first
    expected = torch.where(r > 0, 2, 0)
    assert torch.equal(routing.experts[..., 0], expected)


def test_relevance_combine_matches_loop():
    torch.manual_seed(0)
    scorer = RelevanceScorer(4, num_experts=3, k=2, scale_by_relevance=False)
    x = torch.randn(2, 5, 4)
    experts = Ensemble(factory=lambda: nn.Linear(4, 6), n=3)
    outputs = experts(x)  # (E, B, T, D)
    routing = scorer(x)
    combined = RelevanceScorer.combine(outputs, routing)
    expected = torch.zeros(2, 5, 6)
    for b in range(2):
        for t in range(5):
            for j in range(2):
                e = routing.experts[b, t, j]
                expected[b, t] += routing.gates[b, t, j] * outputs[e, b, t]
    torch.testing.assert_close(combined, expected)
    dense = routing.dense_gates(3)
    torch.testing.assert_close(combined, torch.einsum("bte,ebtd->btd", dense, outputs))
    torch.testing.assert_close(routing.gates.sum(-1), torch.ones(2, 5))


def test_relevance_scorer_bad_input():
    with pytest.raises(ValueError, match="k=4"):
        RelevanceScorer(4, num_experts=3, k=4)
    with pytest.raises(ValueError, match="scoring"):
        RelevanceScorer(4, num_experts=3, scoring="attention")
    with pytest.raises(ValueError, match="d_model"):
        RelevanceScorer(0, num_experts=3)
    with pytest.raises(ValueError, match="d_model=4"):
        RelevanceScorer(4, num_experts=3)(torch.randn(2, 5, 3))


# --------------------------------------------------------------------------- #
# Swarm token allocation
# --------------------------------------------------------------------------- #


def entropy(budget: torch.Tensor) -> torch.Tensor:
    p = budget / budget.sum(-1, keepdim=True)
    return -torch.special.xlogy(p, p).sum(-1)


def test_swarm_budget_is_conserved_and_flows_to_relevance():
    relevance = torch.tensor([0.1, 2.0, -1.0, 0.5, 1.0, -0.3])
    alloc = swarm_allocate(relevance, 3.0, iterations=6, temperature=0.5)
    assert alloc.budgets.shape == (7, 6)
    torch.testing.assert_close(alloc.budgets.sum(-1), torch.full((7,), 3.0))
    torch.testing.assert_close(alloc.budgets[0], torch.full((6,), 0.5))
    # the final budget ranks tokens exactly as relevance does
    assert torch.equal(alloc.final.argsort(), relevance.argsort())
    # iterations concentrate the budget: entropy falls step by step
    entropies = entropy(alloc.budgets)
    assert (entropies[1:] < entropies[:-1]).all()
    # replicator dynamics in closed form: total * softmax(n r / τ)
    torch.testing.assert_close(alloc.final, 3.0 * torch.softmax(6 * relevance / 0.5, dim=-1))
    assert alloc.selected.shape == (3,)
    assert alloc.selected.unique().numel() == 3
    assert torch.equal(alloc.selected, alloc.selected.sort().values)


def test_swarm_cap_and_batch():
    gen = torch.Generator().manual_seed(0)
    relevance = torch.randn(4, 20, generator=gen)
    alloc = swarm_allocate(relevance, 5.0, iterations=40, cap=1.0, generator=gen)
    assert alloc.budgets.shape == (41, 4, 20)
    torch.testing.assert_close(alloc.budgets.sum(-1), torch.full((41, 4), 5.0))
    assert (alloc.budgets <= 1.0 + 1e-5).all()
    # the four most relevant tokens fill up to the cap; the rest share what is left
    top = relevance.topk(5, dim=-1).indices
    torch.testing.assert_close(alloc.final.gather(-1, top[:, :4]), torch.ones(4, 4))
    assert (alloc.final.gather(-1, top[:, 4:]) > 0.5).all()
    assert alloc.selected.shape == (4, 5)
    for row in range(4):
        assert len(set(alloc.selected[row].tolist()) & set(top[row].tolist())) >= 3


def test_swarm_selection_is_deterministic_under_a_seed():
    relevance = torch.linspace(-1, 1, 30)
    first = swarm_allocate(
        relevance, 10.0, iterations=2, generator=torch.Generator().manual_seed(7)
    )
    second = swarm_allocate(
        relevance, 10.0, iterations=2, generator=torch.Generator().manual_seed(7)
    )
    assert torch.equal(first.selected, second.selected)
    draws = {
        tuple(
            swarm_allocate(
                relevance, 10.0, iterations=2, generator=torch.Generator().manual_seed(s)
            ).selected.tolist()
        )
        for s in range(5)
    }
    assert len(draws) > 1  # the seed matters
    # relevant tokens are drawn more often
    counts = torch.zeros(30)
    for s in range(40):
        picked = swarm_allocate(
            relevance, 5.0, iterations=1, generator=torch.Generator().manual_seed(s)
        ).selected
        counts[picked] += 1
    assert counts[20:].sum() > counts[:10].sum()


def test_swarm_bad_input():
    relevance = torch.randn(8)
    with pytest.raises(ValueError, match="total budget"):
        swarm_allocate(relevance, 0.0)
    with pytest.raises(ValueError, match="cap"):
        swarm_allocate(relevance, 5.0, cap=0.5)
    with pytest.raises(ValueError, match="temperature"):
        swarm_allocate(relevance, 2.0, temperature=0.0)
    with pytest.raises(ValueError, match="num_select"):
        swarm_allocate(relevance, 2.0, num_select=9)
    with pytest.raises(ValueError, match="relevance"):
        swarm_allocate(torch.randn(2, 3, 4), 2.0)
    with pytest.raises(ValueError, match="iterations"):
        swarm_allocate(relevance, 2.0, iterations=-1)
    assert math.isclose(float(swarm_allocate(relevance, 2.0, iterations=0).final.sum()), 2.0)
