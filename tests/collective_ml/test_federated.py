"""Federated strategies: aggregation rules, a client's update, the in-process runner."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from colonylab.collective_ml.federated import aggregate as agg
from colonylab.collective_ml.federated.client import ClientData, client_update
from colonylab.collective_ml.federated.insight import class_statistics, next_lr, pool_statistics
from colonylab.collective_ml.federated.model import (
    FederatedMoE,
    get_weights,
    is_expert_key,
    merge_personal,
)
from colonylab.collective_ml.federated.runner import STRATEGIES, FedConfig, run_federated


def _w(*values):
    return [{"a": torch.tensor([float(v), -float(v)]), "b": torch.tensor(float(v))} for v in values]


def toy_clients(n=4, rows=24, seed=0, empty=()):
    """Gaussian blobs of 3 classes in 5-d; client i sees mostly class i % 3."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(3, 5, generator=g) * 2
    out = []
    for i in range(n):
        m = 0 if i in empty else rows
        y = torch.where(
            torch.rand(m, generator=g) < 0.7, i % 3, torch.randint(0, 3, (m,), generator=g)
        )
        x = means[y] + torch.randn(m, 5, generator=g)
        out.append(ClientData(x[: m * 3 // 4], y[: m * 3 // 4], x[m * 3 // 4 :], y[m * 3 // 4 :]))
    y = torch.arange(60) % 3
    return out, (means[y] + torch.randn(60, 5, generator=g), y)


def test_fedavg_weights_by_examples_and_skips_empty_clients():
    out = agg.fedavg(_w(1, 4, 100), [3, 1, 0])
    assert torch.allclose(out["a"], torch.tensor([1.75, -1.75]))
    assert agg.fedavg(_w(1, 3), [0, 0])["b"] == 2.0  # only empty clients: plain mean


def test_robust_rules_outvote_a_wild_client():
    weights = _w(1, 2, 3, 4, 1e6)
    assert agg.coordinate_median(weights)["b"] == 3.0
    assert agg.trimmed_mean(weights, 0.2)["b"] == 3.0
    assert agg.fedavg(weights, [1] * 5)["b"] > 1e5


def test_screen_refuses_non_finite_and_huge_updates():
    weights = _w(1, 2) + [agg.corrupt(_w(1)[0], "nan"), agg.corrupt(_w(1)[0], "scale")]
    ok, refused = agg.screen(weights)
    assert ok == [0, 1, 3] and refused == {2: "non-finite weights"}
    ok, refused = agg.screen(weights, start=_w(1)[0], max_norm=10.0)
    assert ok == [0, 1] and set(refused) == {2, 3}
    with pytest.raises(ValueError, match="bad-client mode"):
        agg.corrupt(_w(1)[0], "zero")


def test_reptile_step_interpolates_to_the_mean():
    start = _w(0)[0]
    assert agg.reptile_step(start, _w(2, 4), 1.0)["b"] == 3.0
    assert agg.reptile_step(start, _w(2, 4), 0.5)["b"] == 1.5


def test_gossip_pairs_average_and_keep_the_network_mean():
    rng = np.random.default_rng(0)
    pairs = agg.random_matching(list(range(7)), rng)
    flat = [i for p in pairs for i in p]
    assert len(pairs) == 3 and len(set(flat)) == 6
    weights = dict(enumerate(_w(*range(7))))
    mixed = agg.gossip_round(weights, pairs)
    for a, b in pairs:
        assert mixed[a]["b"] == mixed[b]["b"] == (a + b) / 2
    assert sum(float(w["b"]) for w in mixed.values()) == sum(range(7))


def test_expert_weighted_fedavg_ignores_clients_that_do_not_route_there():
    w = [
        {"experts.w": torch.tensor([[1.0], [1.0]]), "g": torch.tensor(1.0)},
        {"experts.w": torch.tensor([[5.0], [5.0]]), "g": torch.tensor(5.0)},
    ]
    out = agg.fedavg_by_expert(w, [1, 1], [[1.0, 0.5], [0.0, 0.5]], is_expert_key)
    assert out["experts.w"].flatten().tolist() == [1.0, 3.0] and out["g"] == 3.0


def test_model_mixture_is_a_distribution_and_merge_keeps_the_gate_local():
    torch.manual_seed(0)
    model = FederatedMoE(5, 3, experts=4, hidden=8)
    logp = model(torch.randn(7, 5))
    assert torch.allclose(logp.exp().sum(-1), torch.ones(7), atol=1e-5)
    shared, own = get_weights(model), {k: v + 1 for k, v in get_weights(model).items()}
    merged = merge_personal(shared, own, private=1)
    assert torch.equal(merged["router.w_gate"], own["router.w_gate"])
    key = next(k for k in merged if is_expert_key(k))
    assert torch.equal(merged[key][:3], shared[key][:3]) and torch.equal(
        merged[key][3], own[key][3]
    )
    with pytest.raises(ValueError, match="experts must be an integer"):
        FederatedMoE(5, 3, experts=0)


def test_client_update_is_seeded_and_an_empty_client_sends_its_start_back():
    clients, _ = toy_clients(2, empty=(1,))
    torch.manual_seed(0)
    model = FederatedMoE(5, 3, experts=2, hidden=8)
    start = get_weights(model)
    kw = dict(epochs=2, lr=0.05, batch_size=4, seed=3)
    a, b = (
        client_update(model, start, clients[0], **kw),
        client_update(model, start, clients[0], **kw),
    )
    assert all(torch.equal(a.weights[k], b.weights[k]) for k in start)
    assert a.loss_after < a.loss_before and a.num_examples == 18
    empty = client_update(model, start, clients[1], **kw)
    assert empty.num_examples == 0 and all(torch.equal(empty.weights[k], start[k]) for k in start)
    near = client_update(model, start, clients[0], **kw, prox_mu=1e4)
    far = sum(float((a.weights[k] - start[k]).abs().sum()) for k in start)
    assert sum(float((near.weights[k] - start[k]).abs().sum()) for k in start) < 0.2 * far


def test_insight_statistics_pool_to_the_union_and_lr_follows_the_loss():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 3, generator=g), torch.randint(0, 2, (40,), generator=g)
    pooled = pool_statistics(
        [class_statistics(x[:15], y[:15], 2), class_statistics(x[15:], y[15:], 2)]
    )
    assert torch.allclose(pooled, class_statistics(x, y, 2), atol=1e-5)
    assert next_lr(0.01, 1.0, 2.0) == pytest.approx(0.012) and next_lr(0.01, 2.0, 1.0) == 0.005
    assert next_lr(0.01, 1.0, None) == 0.01


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_runs_and_is_deterministic(strategy):
    clients, test = toy_clients(4, empty=(3,))
    cfg = FedConfig(
        strategy=strategy, rounds=2, local_epochs=1, batch_size=8, experts=2, hidden=8, lr=0.05
    )
    a, b = run_federated(clients, test, 3, cfg), run_federated(clients, test, 3, cfg)
    assert repr(a.history) == repr(b.history)  # nan-safe comparison
    assert all(torch.equal(a.global_weights[k], b.global_weights[k]) for k in a.global_weights)
    row = a.final
    assert 0 <= row["global_acc"] <= 1 and 0 <= row["personal_acc_mean"] <= 1
    assert math.isnan(row["personal_accs"][3])  # the empty client has no test rows
    assert (row["bytes"] == 0) == (strategy == "local")


def test_dropout_completes_with_the_rest_and_logs_who_dropped():
    clients, test = toy_clients(5)
    cfg = FedConfig(rounds=3, dropout=0.4, experts=2, hidden=8, batch_size=8)
    res = run_federated(clients, test, 3, cfg)
    dropped = [e for e in res.events if e["event"] == "dropped"]
    assert len(dropped) == 3 and all(len(e["clients"]) == 2 for e in dropped)
    assert [r["active"] for r in res.history] == [3, 3, 3]


def test_nan_client_collapses_fedavg_but_median_refuses_it():
    clients, test = toy_clients(5)
    base = dict(rounds=2, experts=2, hidden=8, batch_size=8, bad_clients=(1,), bad_mode="nan")
    plain = run_federated(clients, test, 3, FedConfig(strategy="fedavg", **base))
    assert not all(bool(torch.isfinite(v).all()) for v in plain.global_weights.values())
    robust = run_federated(clients, test, 3, FedConfig(strategy="median", **base))
    assert all(bool(torch.isfinite(v).all()) for v in robust.global_weights.values())
    assert [e["client"] for e in robust.events if e["event"] == "refused"] == [1, 1]


def test_config_rejects_bad_values_in_one_line():
    for kwargs, match in (
        ({"strategy": "fedsgd"}, "strategy must be one of"),
        ({"dropout": 1.0}, "dropout must be in"),
        ({"rounds": 0}, "rounds must be an integer"),
        ({"private_experts": 4}, "private_experts must be in"),
    ):
        with pytest.raises(ValueError, match=match):
            FedConfig(**kwargs)
    clients, test = toy_clients(2)
    with pytest.raises(ValueError, match="bad_clients must be client ids"):
        run_federated(clients, test, 3, FedConfig(bad_clients=(5,)))
