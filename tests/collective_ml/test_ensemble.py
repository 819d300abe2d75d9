"""Tests for colonylab.collective_ml.ensemble: batched members, aggregation, bagging, NCL, stacking."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from colonylab.collective_ml.ensemble import (
    Ensemble,
    bootstrap_indices,
    classifier_uncertainty,
    fit_bagging,
    fit_ensemble,
    fit_stacking,
    greedy_selection,
    hard_vote,
    kfold_indices,
    mean_aggregate,
    ncl_loss,
    out_of_fold_predictions,
    regression_uncertainty,
    soft_vote,
    vote_counts,
    weighted_aggregate,
)


def mlp(d_in: int = 4, hidden: int = 8, d_out: int = 3) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.Tanh(), nn.Linear(hidden, d_out))


def make_members(n: int = 5, seed: int = 0, **kw) -> list[nn.Module]:
    torch.manual_seed(seed)
    return [mlp(**kw) for _ in range(n)]


# --------------------------------------------------------------------------- #
# Batched evaluation
# --------------------------------------------------------------------------- #


def test_vmap_equals_loop_outputs_and_gradients():
    members = make_members()
    x = torch.randn(7, 4)
    batched, looped = Ensemble(members), Ensemble(members, batched=False)
    out_b, out_l = batched(x), looped(x)
    assert out_b.shape == (5, 7, 3)
    torch.testing.assert_close(out_b, out_l)
    for m, member in enumerate(members):
        torch.testing.assert_close(out_b[m], member(x))

    target = torch.randn(5, 7, 3)
    ((out_b - target) ** 2).sum().backward()
    ((out_l - target) ** 2).sum().backward()
    for name, param in batched.stacked_params.items():
        assert param.grad is not None and param.grad.abs().sum() > 0
        torch.testing.assert_close(param.grad, looped.stacked_params[name].grad)
    # Gradients equal those of each member trained on its own.
    for m, member in enumerate(members):
        ((member(x) - target[m]) ** 2).sum().backward()
        torch.testing.assert_close(
            member[0].weight.grad, batched.stacked_params["0/weight"].grad[m]
        )


def test_per_member_inputs_match_loop():
    members = make_members(3)
    x = torch.randn(3, 6, 4)
    out = Ensemble(members)(x, per_member=True)
    torch.testing.assert_close(out, Ensemble(members, batched=False)(x, per_member=True))
    for m, member in enumerate(members):
        torch.testing.assert_close(out[m], member(x[m]))
    with pytest.raises(ValueError, match="per_member"):
        Ensemble(members)(torch.randn(6, 4), per_member=True)


def test_factory_and_export_roundtrip():
    torch.manual_seed(1)
    ensemble = Ensemble(factory=mlp, n=4)
    assert len(ensemble) == 4
    assert ensemble.stacked_params["0/weight"].shape == (4, 8, 4)
    # Train a step so the stacked values differ from any original member.
    optimizer = torch.optim.SGD(ensemble.parameters(), lr=0.1)
    x = torch.randn(5, 4)
    ensemble(x).pow(2).sum().backward()
    optimizer.step()
    exported = ensemble.export_members()
    out = ensemble(x).detach()
    for m, module in enumerate(exported):
        torch.testing.assert_close(module(x), out[m])
    fresh = make_members(4, seed=9)
    ensemble.load_into(fresh)
    for m, module in enumerate(fresh):
        torch.testing.assert_close(module(x), out[m])
    # state_dict round trip into a new ensemble of the same shape
    other = Ensemble(make_members(4, seed=3))
    other.load_state_dict(ensemble.state_dict())
    torch.testing.assert_close(other(x), out)


def test_buffers_are_stacked():
    torch.manual_seed(0)
    members = [nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)) for _ in range(2)]
    for i, member in enumerate(members):
        member[1].running_mean.fill_(float(i))
        member.eval()
    ensemble = Ensemble(members).eval()
    x = torch.randn(5, 3)
    torch.testing.assert_close(ensemble(x)[1], members[1](x))


def test_bad_members_are_refused():
    with pytest.raises(ValueError, match="member 1"):
        Ensemble([mlp(hidden=8), mlp(hidden=9)])
    with pytest.raises(ValueError, match="submodules"):
        Ensemble([mlp(), nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))])
    with pytest.raises(ValueError, match="either"):
        Ensemble()
    with pytest.raises(ValueError, match="either"):
        Ensemble([mlp()], factory=mlp, n=2)
    with pytest.raises(ValueError, match="n must be"):
        Ensemble(factory=mlp, n=0)
    with pytest.raises(ValueError, match="at least one"):
        Ensemble([])
    with pytest.raises(ValueError, match="nn.Module"):
        Ensemble([mlp(), "not a module"])
    with pytest.raises(ValueError, match="aggregation"):
        Ensemble([mlp()], aggregation="median")
    with pytest.raises(ValueError, match="3 modules"):
        Ensemble(make_members(3)).load_into(make_members(2))


# --------------------------------------------------------------------------- #
# Aggregation
# --------------------------------------------------------------------------- #


def test_mean_and_weighted_aggregation_by_hand():
    outputs = torch.tensor([[[1.0], [2.0]], [[3.0], [6.0]]])  # (M=2, B=2, 1)
    torch.testing.assert_close(mean_aggregate(outputs), torch.tensor([[2.0], [4.0]]))
    logits = torch.tensor([0.0, math.log(3.0)])  # weights 1/4, 3/4
    torch.testing.assert_close(weighted_aggregate(outputs, logits), torch.tensor([[2.5], [5.0]]))
    with pytest.raises(ValueError, match="weight_logits"):
        weighted_aggregate(outputs, torch.zeros(3))
    with pytest.raises(ValueError, match="outputs"):
        mean_aggregate(torch.zeros(3))


def test_weighted_ensemble_learns_weights():
    members = make_members(3)
    ensemble = Ensemble(members, aggregation="weighted")
    x = torch.randn(10, 4)
    torch.testing.assert_close(ensemble.predict(x), ensemble(x).mean(0))  # uniform at start
    target = members[2](x).detach()  # member 2 is exactly right
    optimizer = torch.optim.Adam([ensemble.weight_logits], lr=0.1)
    for _ in range(100):
        optimizer.zero_grad()
        F.mse_loss(ensemble.predict(x), target).backward()
        optimizer.step()
    weights = ensemble.member_weights()
    assert weights.argmax() == 2 and weights[2] > 0.9


def test_soft_and_hard_vote_by_hand():
    probs = torch.tensor(
        [
            [[0.6, 0.4, 0.0]],
            [[0.1, 0.5, 0.4]],
            [[0.2, 0.45, 0.35]],
        ]
    )  # (M=3, B=1, C=3): argmaxes 0, 1, 1
    logits = probs.clamp_min(1e-9).log()
    torch.testing.assert_close(soft_vote(logits), probs.mean(0))
    torch.testing.assert_close(vote_counts(logits), torch.tensor([[1.0, 2.0, 0.0]]))
    assert hard_vote(logits).tolist() == [1]
    # mode of the argmaxes, not argmax of the mean: soft vote would say class 1 too,
    # so build one where they disagree
    probs = torch.tensor([[[0.9, 0.1]], [[0.45, 0.55]], [[0.45, 0.55]]])
    assert soft_vote(probs.log()).argmax(-1).item() == 0
    assert hard_vote(probs.log()).item() == 1
    ensemble = Ensemble(make_members(2), aggregation="hard")
    shares = ensemble.predict(torch.randn(4, 4))
    torch.testing.assert_close(shares.sum(-1), torch.ones(4))


def test_hard_vote_ties_go_to_lowest_class():
    # 4 members, votes for classes 2, 2, 1, 1 -> tie between 1 and 2 -> class 1
    logits = torch.full((4, 1, 3), -5.0)
    for m, c in enumerate([2, 2, 1, 1]):
        logits[m, 0, c] = 5.0
    assert hard_vote(logits).item() == 1
    # three-way tie 0,1,2 among 3 members -> class 0 regardless of order
    logits = torch.full((3, 1, 3), -5.0)
    for m, c in enumerate([2, 0, 1]):
        logits[m, 0, c] = 5.0
    assert hard_vote(logits).item() == 0
    with pytest.raises(ValueError, match="logits"):
        hard_vote(torch.zeros(3, 4))


def test_hard_vote_is_the_mode_on_random_votes():
    torch.manual_seed(0)
    logits = torch.randn(7, 50, 4)
    votes = logits.argmax(-1)  # (M, B)
    expected = [
        min(range(4), key=lambda c, col=col: (-(votes[:, col] == c).sum().item(), c))
        for col in range(50)
    ]
    assert hard_vote(logits).tolist() == expected


# --------------------------------------------------------------------------- #
# Uncertainty
# --------------------------------------------------------------------------- #


def test_uncertainty_by_hand():
    probs = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])  # two confident, opposite members
    u = classifier_uncertainty(probs, from_probs=True)
    torch.testing.assert_close(u.predictive_entropy, torch.tensor([math.log(2)]))
    torch.testing.assert_close(u.expected_entropy, torch.tensor([0.0]))
    torch.testing.assert_close(u.mutual_information, torch.tensor([math.log(2)]))
    torch.testing.assert_close(u.class_variance, torch.tensor([[0.25, 0.25]]))
    torch.testing.assert_close(u.predictive_variance, torch.tensor([0.5]))


def test_mutual_information_nonnegative_and_zero_when_agreeing():
    gen = torch.Generator().manual_seed(0)
    for scale in (0.1, 1.0, 10.0):
        logits = scale * torch.randn(6, 40, 5, generator=gen)
        u = classifier_uncertainty(logits)
        assert (u.mutual_information >= 0).all()
        assert (u.predictive_entropy >= u.expected_entropy - 1e-6).all()
        assert (u.mutual_information > 0).any()
    same = torch.randn(1, 40, 5, generator=gen).expand(6, -1, -1)
    u = classifier_uncertainty(same)
    torch.testing.assert_close(u.mutual_information, torch.zeros(40), atol=1e-6, rtol=0)
    torch.testing.assert_close(u.predictive_variance, torch.zeros(40), atol=1e-12, rtol=0)
    torch.testing.assert_close(u.predictive_entropy, u.expected_entropy)


def test_regression_uncertainty():
    outputs = torch.tensor([[1.0, 0.0], [3.0, 0.0]])  # (M=2, B=2)
    mean, var = regression_uncertainty(outputs)
    torch.testing.assert_close(mean, torch.tensor([2.0, 0.0]))
    torch.testing.assert_close(var, torch.tensor([1.0, 0.0]))


# --------------------------------------------------------------------------- #
# Bagging
# --------------------------------------------------------------------------- #


def test_bootstrap_indices_properties():
    indices = bootstrap_indices(1000, 4, torch.Generator().manual_seed(0))
    assert indices.shape == (4, 1000) and indices.dtype == torch.int64
    assert indices.min() >= 0 and indices.max() < 1000
    again = bootstrap_indices(1000, 4, torch.Generator().manual_seed(0))
    assert torch.equal(indices, again)
    assert not torch.equal(indices[0], indices[1])
    for row in indices:
        distinct = row.unique().numel() / 1000
        assert abs(distinct - (1 - math.exp(-1))) < 0.05  # ~63.2% distinct rows
    assert bootstrap_indices(10, 2, size=3).shape == (2, 3)
    with pytest.raises(ValueError, match="members"):
        bootstrap_indices(10, 0)


def test_fit_bagging_trains_members_on_their_own_samples():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(120, 4, generator=gen)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    torch.manual_seed(0)
    ensemble = Ensemble(factory=mlp, n=4)
    result = fit_bagging(
        ensemble, x, y, F.cross_entropy, generator=gen, epochs=40, batch_size=40, lr=0.03
    )
    assert result.indices.shape == (4, 120)
    assert result.losses[-1] < result.losses[0]
    oob = result.out_of_bag(120)
    for m in range(4):
        assert not oob[m, result.indices[m]].any()
        assert oob[m].sum() == 120 - result.indices[m].unique().numel()
    accuracy = (soft_vote(ensemble(x)).argmax(-1) == y).float().mean()
    assert accuracy > 0.8
    with pytest.raises(ValueError, match="rows"):
        fit_ensemble(ensemble, x, y, F.cross_entropy, rows=torch.zeros(3, 5, dtype=torch.long))


def test_fit_ensemble_equals_training_each_member_alone():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(30, 4, generator=gen)
    y = torch.randint(0, 3, (30,), generator=gen)
    rows = bootstrap_indices(30, 3, gen)
    members = make_members(3)
    ensemble = Ensemble(members)
    # one full-batch step per epoch, so the shuffle order does not matter
    fit_ensemble(ensemble, x, y, F.cross_entropy, rows=rows, epochs=3, batch_size=30, lr=0.05)
    for m, member in enumerate(members):
        optimizer = torch.optim.Adam(member.parameters(), lr=0.05)
        for _ in range(3):
            optimizer.zero_grad()
            F.cross_entropy(member(x[rows[m]]), y[rows[m]]).backward()
            optimizer.step()
    trained = ensemble.export_members()
    for member, copy in zip(members, trained, strict=True):
        for a, b in zip(member.parameters(), copy.parameters(), strict=True):
            torch.testing.assert_close(a, b)


# --------------------------------------------------------------------------- #
# Negative correlation learning
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("shape", [(5, 8), (5, 8, 2)])
def test_ncl_gradient_matches_liu_yao(shape):
    gen = torch.Generator().manual_seed(0)
    f = torch.randn(*shape, generator=gen, requires_grad=True)
    d = torch.randn(*shape[1:], generator=gen)
    lam = 0.7
    batch = shape[1]
    losses = ncl_loss(f, d, lam)
    assert losses.shape == (5,)
    losses.sum().backward()
    f_bar = f.detach().mean(0, keepdim=True)
    expected = ((f.detach() - d) - lam * (f.detach() - f_bar)) / batch
    torch.testing.assert_close(f.grad, expected)
    # equivalently (1 - λ)(f_i - d) + λ(f̄ - d)
    torch.testing.assert_close(f.grad, ((1 - lam) * (f.detach() - d) + lam * (f_bar - d)) / batch)


def test_ncl_exact_gradient_and_values():
    gen = torch.Generator().manual_seed(1)
    f = torch.randn(4, 6, generator=gen, requires_grad=True)
    d = torch.randn(6, generator=gen)
    lam = 0.3
    ncl_loss(f, d, lam, detach_mean=False).sum().backward()
    fd = f.detach()
    f_bar = fd.mean(0, keepdim=True)
    torch.testing.assert_close(f.grad, ((fd - d) - 2 * lam * (fd - f_bar)) / 6)
    # values: p_i = -(f_i - f̄)², same in both conventions
    expected = (0.5 * (fd - d) ** 2 - lam * (fd - f_bar) ** 2).mean(1)
    torch.testing.assert_close(ncl_loss(fd, d, lam), expected)
    torch.testing.assert_close(ncl_loss(fd, d, lam, detach_mean=False), expected)
    # λ = 0 is plain squared error; λ = ½ (exact) trains the ensemble mean
    torch.testing.assert_close(ncl_loss(fd, d, 0.0), (0.5 * (fd - d) ** 2).mean(1))
    g = fd.clone().requires_grad_(True)
    ncl_loss(g, d, 0.5, detach_mean=False).sum().backward()
    torch.testing.assert_close(g.grad, (f_bar - d).expand(4, 6) / 6)
    with pytest.raises(ValueError, match="target"):
        ncl_loss(fd, torch.zeros(5))


# --------------------------------------------------------------------------- #
# Stacking
# --------------------------------------------------------------------------- #


def test_kfold_partitions_rows():
    splits = kfold_indices(23, 4, torch.Generator().manual_seed(0))
    held = torch.cat([h for _, h in splits])
    assert sorted(held.tolist()) == list(range(23))
    for train, held_out in splits:
        assert set(train.tolist()).isdisjoint(held_out.tolist())
        assert train.numel() + held_out.numel() == 23
    with pytest.raises(ValueError, match="k must be"):
        kfold_indices(5, 1)


def blobs(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.randint(0, 3, (n,), generator=gen)
    centres = torch.tensor([[0.0, 2.0], [2.0, -1.0], [-2.0, -1.0]])
    return centres[y] + 1.1 * torch.randn(n, 2, generator=gen), y


def test_out_of_fold_predictions_never_see_their_row():
    gen = torch.Generator().manual_seed(0)
    x, y = blobs(40, gen)
    x = torch.cat([x, torch.arange(40.0)[:, None]], dim=1)  # column 2 carries the row id
    seen: list[set[int]] = []

    def fit(ensemble, xs, ys):
        seen.append({int(v) for v in xs[:, 2]})
        fit_ensemble(ensemble, xs, ys, F.cross_entropy, epochs=2, batch_size=16, generator=gen)

    def make():
        return Ensemble(factory=lambda: nn.Linear(3, 3), n=2)

    oof = out_of_fold_predictions(make, fit, x, y, k=4, generator=gen)
    assert oof.predictions.shape == (2, 40, 3)
    assert len(seen) == 4
    for row in range(40):
        fold = int(oof.fold[row])
        assert row not in seen[fold]
        assert row not in set(oof.train_rows[fold].tolist())


def test_stacking_runs_and_matches_the_best_member():
    gen = torch.Generator().manual_seed(0)
    x, y = blobs(150, gen)
    x_test, y_test = blobs(300, gen)
    seeds = iter(range(100))

    def make():
        torch.manual_seed(next(seeds))
        return Ensemble(factory=lambda: mlp(2, 8, 3), n=3)

    def fit(ensemble, xs, ys):
        fit_ensemble(
            ensemble, xs, ys, F.cross_entropy, epochs=25, batch_size=50, lr=0.03, generator=gen
        )

    stacked, oof = fit_stacking(make, fit, x, y, k=3, generator=gen)
    assert oof.predictions.shape == (3, 150, 3)
    with torch.no_grad():
        member_accuracy = (stacked.base(x_test).argmax(-1) == y_test).float().mean(1)
        stacked_accuracy = (stacked(x_test).argmax(-1) == y_test).float().mean()
    assert stacked(x_test).shape == (300, 3)
    assert stacked_accuracy >= member_accuracy.max() - 0.02
    assert stacked_accuracy > 0.8


# --------------------------------------------------------------------------- #
# Greedy selection
# --------------------------------------------------------------------------- #


def test_greedy_selection_picks_best_first():
    gen = torch.Generator().manual_seed(0)
    target = torch.randn(50, generator=gen)
    noise = torch.tensor([1.0, 0.5, 0.05, 2.0])[:, None]
    predictions = target + noise * torch.randn(4, 50, generator=gen)
    chosen = greedy_selection(predictions, target, size=6)
    assert chosen[0] == 2 and len(chosen) == 6
    without = greedy_selection(predictions, target, replacement=False)
    assert without[0] == 2 and sorted(without) == [0, 1, 2, 3]
    prefix = greedy_selection(predictions, target, size=6, best_prefix=True)
    assert prefix[0] == 2 and 3 not in prefix
    with pytest.raises(ValueError, match="replacement"):
        greedy_selection(predictions, target, size=5, replacement=False)
    with pytest.raises(ValueError, match="metric"):
        greedy_selection(predictions, target, metric="auc")


def test_greedy_selection_classification_metrics():
    y = torch.tensor([0, 1, 1, 0])
    good = F.one_hot(y, 2).float() * 0.8 + 0.1
    bad = 1 - good
    predictions = torch.stack([bad, bad, good])  # (3, 4, 2)
    assert greedy_selection(predictions, y, metric="error", size=1) == [2]
    assert greedy_selection(predictions, y, metric="nll", size=1) == [2]
    # ties keep the lowest index
    assert greedy_selection(torch.stack([good, good]), y, metric="error", size=1) == [0]
