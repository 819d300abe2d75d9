"""Consensus networks: neighbourhoods, symmetries, determinism, classical references."""

from __future__ import annotations

import math

import pytest
import torch

from colonylab.agents.consensus import (
    ConsensusNetwork,
    LocalRule,
    Neighbourhood,
    agreement,
    all_to_all,
    degroot,
    grid,
    local_majority,
    radius_graph,
    ring,
    vicsek_step,
)


def test_ring_lists_neighbours_left_to_right():
    g = ring(7, 2)
    assert g.index.tolist()[0] == [5, 6, 1, 2]
    assert g.index.tolist()[3] == [1, 2, 4, 5]


def test_grid_moore_and_von_neumann_counts():
    assert grid(5, 6, "moore").index.shape == (30, 8)
    assert grid(5, 6, "von_neumann", radius=2).index.shape == (30, 12)
    bounded = grid(3, 3, "moore", torus=False)
    assert bounded.mask.sum(1).tolist() == [3, 5, 3, 5, 8, 5, 3, 5, 3]


def test_radius_graph_matches_dense_distances():
    pos = torch.tensor([[0.0, 0.0], [0.5, 0.0], [3.0, 3.0], [9.8, 0.0]])
    g = radius_graph(pos, 1.0)
    assert [set(g.index[i][g.mask[i]].tolist()) for i in range(4)] == [{1}, {0}, set(), set()]
    periodic = radius_graph(pos, 1.0, box=10.0)
    assert set(periodic.index[0][periodic.mask[0]].tolist()) == {1, 3}


def test_mean_field_mean_equals_explicit_all_to_all():
    n = 6
    explicit = Neighbourhood(n, torch.tensor([[j for j in range(n) if j != i] for i in range(n)]))
    x = torch.randn(3, n, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(all_to_all(n).mean(x), explicit.mean(x))
    torch.testing.assert_close(all_to_all(n).mean(x, True), explicit.mean(x, True))


def test_network_is_permutation_equivariant_on_all_to_all():
    torch.manual_seed(0)
    net = ConsensusNetwork(3, 2, hidden=8, message=8, steps=3)
    x = torch.randn(2, 10, 3)
    perm = torch.randperm(10)
    g = all_to_all(10)
    torch.testing.assert_close(net(x, g)[:, perm], net(x[:, perm], g), atol=1e-5, rtol=1e-5)


def test_network_is_translation_equivariant_on_the_ring():
    torch.manual_seed(1)
    net = ConsensusNetwork(2, 3, hidden=8, message=8, steps=4)
    x = torch.randn(2, 12, 2)
    g = ring(12, 2)
    torch.testing.assert_close(
        torch.roll(net(x, g), 5, 1), net(torch.roll(x, 5, 1), g), atol=1e-5, rtol=1e-5
    )


def _random_rule(seed: int) -> LocalRule:
    torch.manual_seed(seed)
    rule = LocalRule(radius=3, hidden=3, width=16)
    torch.nn.init.normal_(rule.l2.weight, std=0.5)  # a fresh rule is the identity
    return rule


def test_local_rule_is_translation_equivariant_and_binary():
    rule = _random_rule(2)
    v = (torch.rand(3, 21) < 0.5).float()
    with torch.no_grad():
        out, _ = rule(v, 10)
        shifted, _ = rule(torch.roll(v, 4, 1), 10)
    assert torch.equal(torch.roll(out, 4, 1), shifted)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert rule.spacetime(v[0], 10).shape == (11, 21)
    assert torch.equal(rule.spacetime(v[0], 10)[-1].float(), out[0])


def test_fresh_local_rule_is_the_identity():
    v = (torch.rand(4, 15) < 0.5).float()
    out, _ = LocalRule(hidden=2, width=8)(v, 5)
    assert torch.equal(out, v)


def test_local_rule_fast_path_equals_the_plain_rollout():
    rule = _random_rule(5)
    with torch.no_grad():
        torch.nn.init.constant_(rule.l2.bias, 0.0)
        rule.l2.bias[0] = 0.3  # drifts towards 1: many rings turn uniform early
    v = (torch.rand(64, 15, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    with torch.no_grad():
        plain, _ = rule(v, 40)
    assert torch.equal(rule.final_bits(v, 40, check_every=4), plain)


def test_local_rule_trains_through_the_binary_bits():
    rule = _random_rule(6)
    _, kept = rule((torch.rand(2, 9) < 0.5).float(), 4, keep_last=2)
    sum(k.sum() for k in kept).backward()
    assert rule.l1.weight.grad.abs().sum() > 0


def test_network_is_deterministic_under_a_seed():
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        net = ConsensusNetwork(4, 2, steps=2)
        outs.append(net(torch.ones(1, 5, 4), grid(1, 5, "moore")))
    assert torch.equal(*outs)


def test_network_trace_has_one_output_per_round():
    net = ConsensusNetwork(1, 2, hidden=4, message=4, steps=3)
    y, trace = net(torch.zeros(2, 7, 1), ring(7), trace=True)
    assert len(trace) == 4 and torch.equal(trace[-1], y)


def test_degroot_converges_to_the_mean_on_a_connected_ring():
    x = torch.arange(9, dtype=torch.float32).reshape(1, 9, 1)
    out = degroot(x, ring(9, 1), 300)
    torch.testing.assert_close(out, torch.full_like(x, 4.0), atol=1e-4, rtol=0)


def test_local_majority_mean_field_is_the_global_majority():
    bits = torch.tensor([[1, 1, 0, 1, 0, 1, 1]])
    assert local_majority(bits, all_to_all(7), 1).tolist() == [[1] * 7]
    # radius-1 ring majority: isolated bits flip, blocks of two or more freeze
    assert local_majority(torch.tensor([[1, 1, 0, 0, 0, 1, 0]]), ring(7), 3).tolist() == [
        [1, 1, 0, 0, 0, 0, 1]
    ]


def test_vicsek_without_noise_aligns_all_to_one_heading():
    g = torch.Generator().manual_seed(0)
    pos = torch.rand(1, 20, 2, generator=g) * 2
    theta = (torch.rand(1, 20, generator=g) - 0.5) * 2
    for _ in range(50):
        pos, theta = vicsek_step(pos, theta, speed=0.03, radius=5.0, noise=0.0, box=2.0)
    order = torch.stack([theta.cos(), theta.sin()], -1).mean(1).norm(dim=-1)
    assert float(order) > 0.999 and pos.min() >= 0 and pos.max() < 2
    assert theta.abs().max() <= math.pi


def test_agreement_counts_the_plurality():
    logits = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [3.0, 1.0]]])
    assert agreement(logits).tolist() == [0.75]
    assert agreement(torch.tensor([[1, 1, 1]])).tolist() == [1.0]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: ring(5, 3), "needs n >= 7"),
        (lambda: ring(0), "n must be"),
        (lambda: grid(3, 3, "hex"), "grid kind"),
        (lambda: radius_graph(torch.zeros(4, 3), 1.0), "pos must"),
        (lambda: radius_graph(torch.zeros(4, 2), 0.0), "radius must"),
        (lambda: ConsensusNetwork(0, 2), "in_dim"),
        (lambda: ConsensusNetwork(2, 2)(torch.zeros(1, 4, 3), ring(4)), "x must have"),
        (lambda: ConsensusNetwork(2, 2)(torch.zeros(1, 5, 2), ring(4)), "graph has 4"),
        (lambda: LocalRule(radius=3)(torch.zeros(1, 5), 3), "N >= 7"),
        (lambda: agreement(torch.zeros(3)), "outputs must"),
        (lambda: Neighbourhood(3, torch.tensor([[0], [1], [5]])), r"\[0, 3\)"),
    ],
)
def test_bad_input_is_one_line_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
