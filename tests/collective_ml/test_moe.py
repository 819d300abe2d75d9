"""Tests for the mixture-of-experts layers (colonylab.collective_ml.moe): tiny, seeded, float64."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from colonylab.collective_ml.moe import (
    DenseFFN,
    ExpertList,
    LoopMoE,
    MoEStats,
    SwitchMoE,
    TopKMoE,
    capacity_keep_mask,
    expert_capacity,
    plan_dispatch,
)

D, H, E = 8, 16, 4


def make_moe(seed: int = 0, **kw) -> TopKMoE:
    torch.manual_seed(seed)
    kw.setdefault("z_loss_weight", 1e-3)
    moe = TopKMoE(D, H, kw.pop("num_experts", E), **kw).double()
    with torch.no_grad():  # nonzero biases and noise weights, so their gradients are tested
        moe.experts.b1.normal_(0, 0.1)
        moe.experts.b2.normal_(0, 0.1)
        if moe.router.w_noise is not None:
            moe.router.w_noise.normal_(0, 0.3)
    return moe


def forward_backward(layer, x, seed=1):
    """Output and gradients (every parameter, then the input) of one seeded step."""
    layer.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(True)
    y = layer(x, generator=torch.Generator().manual_seed(seed))
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(7), dtype=y.dtype)
    ((y * g).sum() + layer.loss).backward()
    return y.detach(), {**stacked_grads(layer), "input": x.grad.clone()}


def stacked_grads(layer) -> dict[str, torch.Tensor]:
    """Router and expert gradients named like TopKMoE's (the loop's experts stacked)."""
    grads = {
        f"router.{n}": torch.zeros_like(p) if p.grad is None else p.grad.clone()
        for n, p in layer.router.named_parameters()
    }
    if isinstance(layer.experts, ExpertList):
        experts = layer.experts.stacked_grads()
    else:
        experts = {n: p.grad.clone() for n, p in layer.experts.named_parameters()}
    return grads | {f"experts.{n}": g for n, g in experts.items()}


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("capacity_factor", [None, 1.0, 0.5])
@pytest.mark.parametrize("shape", [(24, D), (3, 10, D)])
@pytest.mark.parametrize("training", [True, False])
def test_grouped_dispatch_equals_loop_in_values_and_gradients(k, capacity_factor, shape, training):
    moe = make_moe(capacity_factor=capacity_factor, k=k)
    moe.train(training)
    loop = LoopMoE.from_moe(moe)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    y, grads = forward_backward(moe, x)
    y_ref, grads_ref = forward_backward(loop, x)
    assert y.shape == x.shape
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    assert (
        set(grads)
        == set(grads_ref)
        == {
            "router.w_gate",
            "router.w_noise",
            "experts.w1",
            "experts.b1",
            "experts.w2",
            "experts.b2",
            "input",
        }
    )
    for name in grads:
        torch.testing.assert_close(grads[name], grads_ref[name], rtol=1e-12, atol=1e-12)
        if name != "router.w_noise" or training:
            assert grads[name].abs().sum() > 0, name  # every gradient is exercised
    if capacity_factor == 0.5:
        assert moe.stats.dropped_fraction > 0  # the drop path is exercised


def test_loop_from_moe_copies_the_weights_into_separate_experts():
    moe = make_moe(k=2, capacity_factor=0.5)
    loop = LoopMoE.from_moe(moe)
    assert len(loop.experts) == E and isinstance(loop.experts.experts, torch.nn.ModuleList)
    for name, weight in loop.experts.stacked().items():
        assert torch.equal(weight, getattr(moe.experts, name))
    assert torch.equal(loop.router.w_gate, moe.router.w_gate)
    assert loop.router.w_gate is not moe.router.w_gate  # a copy: the two train apart
    assert (loop.k, loop.capacity_factor, loop.d_hidden) == (moe.k, moe.capacity_factor, H)
    assert loop.experts.experts[0].w1.shape == (D, H)
    with pytest.raises(ValueError, match="stacked experts"):
        LoopMoE.from_moe(loop)


def identity_router_moe(k: int, capacity_factor: float | None, **kw) -> TopKMoE:
    """d_model == E and W_g = I: the router logits are the input itself."""
    torch.manual_seed(0)
    moe = TopKMoE(E, H, E, k, capacity_factor=capacity_factor, noisy_gating=False, **kw).double()
    with torch.no_grad():
        moe.router.w_gate.copy_(torch.eye(E, dtype=torch.float64))
    return moe.eval()


def logits_for(first: list[int], second: list[int] | None = None) -> torch.Tensor:
    """Rows with logit 4 at the first choice, 2 at the second, 0 elsewhere."""
    x = torch.zeros(len(first), E, dtype=torch.float64)
    x[torch.arange(len(first)), torch.tensor(first)] = 4.0
    if second is not None:
        x[torch.arange(len(second)), torch.tensor(second)] = 2.0
    return x


def test_capacity_drops_exactly_the_overflow_by_token_order():
    # 8 tokens, top-1, capacity ceil(1.0 * 8 / 4) = 2; expert 0 gets 5 tokens
    first = [0, 0, 1, 0, 2, 0, 0, 3]
    moe = identity_router_moe(1, 1.0)
    x = logits_for(first)
    y = moe(x)
    keep = moe.routing.keep[:, 0]
    # expert 0 keeps its two earliest tokens (0, 1), drops 3, 5, 6; the others keep all
    assert keep.tolist() == [True, True, True, False, True, False, False, True]
    assert moe.stats.capacity == 2
    assert moe.stats.tokens_per_expert.tolist() == [5, 1, 1, 1]
    assert moe.stats.kept_per_expert.tolist() == [2, 1, 1, 1]
    assert moe.stats.dropped_fraction.item() == pytest.approx(3 / 8)
    assert moe.stats.tokens_dropped_fraction.item() == pytest.approx(3 / 8)
    # dropped tokens get exactly zero; kept ones do not
    assert torch.all(y[~keep] == 0)
    assert torch.all(y[keep].abs().sum(-1) > 0)


def test_capacity_serves_first_choices_before_second_choices():
    # top-2, 4 tokens, capacity ceil(0.5 * 4 * 2 / 4) = 1 per expert
    first = [1, 0, 2, 3]
    second = [0, 1, 1, 2]
    moe = identity_router_moe(2, 0.5)
    moe(logits_for(first, second))
    keep = moe.routing.keep
    assert moe.routing.expert_index.tolist() == [[1, 0], [0, 1], [2, 1], [3, 2]]
    # first choices all fit (one per expert); every second choice finds its expert full,
    # even token 0's choice of expert 0, which comes earlier than token 1's first choice
    assert keep.tolist() == [[True, False], [True, False], [True, False], [True, False]]
    assert moe.stats.tokens_dropped_fraction.item() == 0.0
    assert moe.stats.dropped_fraction.item() == pytest.approx(0.5)


def test_plan_and_keep_mask_on_hand_built_indices():
    index = torch.tensor([[2, 0], [2, 1], [0, 2], [2, 0]])  # [T=4, k=2]
    plan = plan_dispatch(index, 3)
    assert plan.counts.tolist() == [3, 1, 4]
    assert plan.sorted_expert.tolist() == [0, 0, 0, 1, 2, 2, 2, 2]
    # assignments rank-major a = rank * T + token; expert 2's queue: t0, t1, t3 (rank 0), t2 (rank 1)
    assert plan.order[4:].tolist() == [0, 1, 3, 6]
    assert plan.position.tolist() == [0, 1, 2, 0, 0, 1, 2, 3]
    # capacity 2: expert 0 serves t2 (rank 0) and t0, drops t3's second choice; expert 2
    # serves t0 and t1, drops t3 (rank 0, third in line) and t2's second choice
    keep = capacity_keep_mask(plan, 2, 4, 2)
    assert keep.tolist() == [[True, True], [True, True], [True, False], [False, False]]
    assert capacity_keep_mask(plan, None, 4, 2).all()


def test_dropped_tokens_pass_through_with_residual():
    first = [0, 0, 0, 1]
    moe = identity_router_moe(1, 1.0)  # capacity 1: tokens 1 and 2 dropped
    x = logits_for(first)
    y = moe(x)
    moe_res = identity_router_moe(1, 1.0, residual=True)
    y_res = moe_res(x)
    dropped = ~moe.routing.keep[:, 0]
    assert dropped.tolist() == [False, True, True, False]
    torch.testing.assert_close(y_res, x + y)
    torch.testing.assert_close(y_res[dropped], x[dropped])  # unchanged through the residual


def test_gates_renormalised_for_top2_and_raw_probabilities_for_switch():
    moe = make_moe(k=2).eval()
    x = torch.randn(10, D, dtype=torch.float64)
    moe(x)
    r = moe.routing
    torch.testing.assert_close(r.gates.sum(-1), torch.ones(10, dtype=torch.float64))
    top = r.probs.gather(1, r.expert_index)
    torch.testing.assert_close(r.gates, top / top.sum(-1, keepdim=True))
    torch.manual_seed(0)
    switch = SwitchMoE(D, H, E).double().eval()
    switch(x)
    r = switch.routing
    assert r.expert_index.shape == (10, 1)
    torch.testing.assert_close(r.gates[:, 0], r.probs.max(-1).values)
    assert (r.gates < 1).all()  # the router gets gradient from the task


def test_switch_balance_loss_is_one_at_uniform_routing_and_grows_with_skew():
    moe = identity_router_moe(1, None)
    # perfectly balanced: each expert gets 2 tokens with the same confidence
    balanced = logits_for([0, 1, 2, 3, 0, 1, 2, 3])
    moe(balanced)
    assert moe.aux_loss.item() == pytest.approx(1.0, abs=1e-12)
    # uniform router probabilities (equal logits): E * sum f_i / E = 1 whatever f is
    moe(torch.zeros(8, E, dtype=torch.float64))
    torch.testing.assert_close(moe.routing.probs, torch.full((8, E), 0.25, dtype=torch.float64))
    assert moe.aux_loss.item() == pytest.approx(1.0, abs=1e-12)
    skewed = logits_for([0, 0, 0, 0, 0, 0, 1, 2])
    moe(skewed)
    f = torch.tensor([6, 1, 1, 0], dtype=torch.float64) / 8
    p = torch.softmax(skewed, -1).mean(0)
    assert moe.aux_loss.item() == pytest.approx(E * (f * p).sum().item(), rel=1e-12)
    assert moe.aux_loss.item() > 1.5


def test_importance_loss_is_zero_when_balanced_and_positive_when_skewed():
    moe = identity_router_moe(1, None, balance_loss="importance")
    moe(logits_for([0, 1, 2, 3, 3, 2, 1, 0]))
    assert moe.aux_loss.item() == pytest.approx(0.0, abs=1e-12)
    moe(logits_for([0, 0, 0, 0, 0, 0, 1, 2]))
    importance = torch.zeros(E, dtype=torch.float64).index_add_(
        0, moe.routing.expert_index[:, 0], moe.routing.gates[:, 0]
    )
    cv2 = importance.var(unbiased=False) / importance.mean() ** 2
    assert moe.aux_loss.item() == pytest.approx(cv2.item(), rel=1e-12)
    assert moe.aux_loss.item() > 0.5


def test_switch_z_loss_formula_and_weighted_total():
    torch.manual_seed(0)
    switch = SwitchMoE(D, H, E).double()
    x = torch.randn(2, 5, D, dtype=torch.float64)
    switch(x)
    logits = x.reshape(-1, D) @ switch.router.w_gate
    want = (torch.log(torch.exp(logits).sum(-1)) ** 2).mean()
    assert switch.z_loss.item() == pytest.approx(want.item(), rel=1e-12)
    assert switch.aux_loss_weight == 1e-2 and switch.z_loss_weight == 1e-3
    total = 1e-2 * switch.aux_loss + 1e-3 * switch.z_loss
    assert switch.loss.item() == pytest.approx(total.item(), rel=1e-12)
    assert switch.z_loss.requires_grad and switch.aux_loss.requires_grad


def test_noise_only_in_training_mode():
    moe = make_moe(k=2)
    x = torch.randn(32, D, dtype=torch.float64)
    moe.eval()
    a = moe(x, generator=torch.Generator().manual_seed(0))
    b = moe(x, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b, rtol=0, atol=0)  # no noise: the generator is unused
    torch.testing.assert_close(moe.routing.probs, torch.softmax(moe.routing.logits, -1))
    moe.train()
    c = moe(x, generator=torch.Generator().manual_seed(0))
    noisy_probs = moe.routing.probs
    assert not torch.allclose(noisy_probs, torch.softmax(moe.routing.logits, -1))
    d = moe(x, generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(c, d)
    # without noise weights training changes nothing
    quiet = make_moe(k=2, noisy_gating=False)
    assert quiet.router.w_noise is None
    torch.testing.assert_close(quiet.train()(x), quiet.eval()(x), rtol=0, atol=0)


def test_deterministic_under_a_seed():
    x = torch.randn(3, 7, D, dtype=torch.float64)
    runs = []
    for _ in range(2):
        moe = make_moe(seed=5, k=2, capacity_factor=0.75)
        y, grads = forward_backward(moe, x, seed=11)
        runs.append((y, grads, moe.routing.expert_index))
    torch.testing.assert_close(runs[0][0], runs[1][0], rtol=0, atol=0)
    assert torch.equal(runs[0][2], runs[1][2])
    for name in runs[0][1]:
        torch.testing.assert_close(runs[0][1][name], runs[1][1][name], rtol=0, atol=0)
    # the global RNG drives the noise when no generator is given
    moe = make_moe(seed=5, k=2)
    torch.manual_seed(9)
    a = moe(x)
    torch.manual_seed(9)
    torch.testing.assert_close(a, moe(x), rtol=0, atol=0)


@pytest.mark.parametrize("capacity_factor", [None, 0.5])
def test_utilisation_stats_sum_correctly(capacity_factor):
    moe = make_moe(k=2, capacity_factor=capacity_factor, num_experts=6)
    x = torch.randn(40, D, dtype=torch.float64)
    moe(x)
    s = moe.stats
    assert isinstance(s, MoEStats)
    assert s.tokens_per_expert.shape == s.kept_per_expert.shape == (6,)
    assert s.tokens_per_expert.sum().item() == 40 * 2
    assert (s.kept_per_expert <= s.tokens_per_expert).all()
    kept = s.kept_per_expert.sum().item()
    assert kept == moe.routing.keep.sum().item()
    assert s.dropped_fraction.item() == pytest.approx(1 - kept / 80)
    assert s.capacity == expert_capacity(40, 2, 6, capacity_factor)
    if capacity_factor is None:
        assert s.capacity is None and kept == 80
    else:
        assert s.capacity == math.ceil(0.5 * 40 * 2 / 6) == 7
        assert (s.kept_per_expert <= 7).all() and kept < 80
    probs = moe.routing.probs
    entropy = -(probs * probs.log()).sum(-1).mean()
    assert s.router_entropy.item() == pytest.approx(entropy.item(), rel=1e-12)
    assert 0 < s.router_entropy.item() <= math.log(6)
    assert not any(t.requires_grad for t in s[:5])


def test_dense_ffn_has_the_active_parameter_count_and_shape():
    moe = TopKMoE(D, H, E, k=2)
    dense = DenseFFN(D, 2 * H)
    per_expert = sum(p[0].numel() for p in moe.experts.parameters())
    assert (
        sum(p.numel() for p in dense.parameters()) == 2 * per_expert - D
    )  # one output bias, not two
    x = torch.randn(2, 3, D)
    assert dense(x).shape == (2, 3, D)
    w1, b1, w2, b2 = dense.w1, dense.b1, dense.w2, dense.b2
    torch.testing.assert_close(dense(x), F.gelu(x @ w1 + b1) @ w2 + b2)


def test_activation_is_configurable():
    moe = TopKMoE(D, H, E, k=1, activation="relu", noisy_gating=False, capacity_factor=None)
    moe = moe.double().eval()
    x = torch.randn(6, D, dtype=torch.float64)
    y = moe(x)
    r = moe.routing
    ex = moe.experts
    want = torch.stack(
        [
            r.gates[t, 0] * (F.relu(x[t] @ ex.w1[e] + ex.b1[e]) @ ex.w2[e] + ex.b2[e])
            for t, e in enumerate(r.expert_index[:, 0].tolist())
        ]
    )
    torch.testing.assert_close(y, want)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 5}, r"k must be an integer with 1 <= k <= num_experts \(4\), got 5"),
        ({"k": 0}, "got 0"),
        ({"capacity_factor": 0.0}, "capacity_factor must be .* got 0.0"),
        ({"capacity_factor": -1}, "got -1"),
        ({"capacity_factor": float("inf")}, "got inf"),
        ({"balance_loss": "cv"}, "balance_loss must be one of switch, importance, got 'cv'"),
        ({"activation": "swish"}, "activation must be one of .* got 'swish'"),
        ({"aux_loss_weight": -0.1}, "aux_loss_weight .* got -0.1"),
    ],
)
def test_bad_construction_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TopKMoE(D, H, E, **kwargs)


@pytest.mark.parametrize(
    ("args", "match"),
    [((0, H, E), "d_model must be an integer >= 1, got 0"), ((D, H, 0), "num_experts")],
)
def test_bad_sizes_are_refused(args, match):
    with pytest.raises(ValueError, match=match):
        TopKMoE(*args)


def test_bad_input_is_refused():
    moe = TopKMoE(D, H, E)
    with pytest.raises(ValueError, match=r"expects input \[\.\.\., d_model=8\], got \(5, 7\)"):
        moe(torch.randn(5, 7))
    with pytest.raises(ValueError, match="floating-point input, got torch.int64"):
        moe(torch.ones(5, D, dtype=torch.long))
    with pytest.raises(ValueError, match="no tokens"):
        moe(torch.randn(0, D))
    with pytest.raises(ValueError, match=r"d_model=8\], got \(3, 9\)"):
        DenseFFN(D, H)(torch.randn(3, 9))
    with pytest.raises(RuntimeError, match="no forward pass yet"):
        _ = TopKMoE(D, H, E).loss
