"""The 1991 competitive mixture: losses, responsibilities, gradients, gate, errors,
and specialisation on the synthetic vowels."""

from __future__ import annotations

import math

import pytest
import torch

from colonylab.collective_ml.mixture1991 import (
    CompetitiveMixture,
    competitive_loss,
    cooperative_loss,
    responsibilities,
)


def _batch(b=7, i=3, o=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, i, generator=g, dtype=torch.float64)
    d = torch.randn(b, o, generator=g, dtype=torch.float64)
    return x, d


def _mixture(**kw):
    torch.manual_seed(0)
    defaults = {"in_dim": 3, "out_dim": 4, "num_experts": 5}
    return CompetitiveMixture(**{**defaults, **kw}).double()


def test_shapes_and_batching():
    m = _mixture(expert="mlp", hidden=6)
    x, d = _batch(b=9)
    out = m(x)
    assert out.expert_outputs.shape == (9, 5, 4)
    assert out.gate_probs.shape == out.gate_log_probs.shape == (9, 5)
    assert out.mixture.shape == (9, 4)
    assert m.loss(x, d).shape == ()
    assert m.loss(x, d, reduction="none").shape == (9,)
    assert m.responsibilities(x, d).shape == (9, 5)
    assert m.predict(x).shape == m.predict(x, mode="select").shape == (9, 4)
    # each case is independent of the others in the batch
    torch.testing.assert_close(m.loss(x, d, reduction="none")[3:5], m.loss(x[3:5], d[3:5], "none"))
    torch.testing.assert_close(m.loss(x, d, reduction="sum"), m.loss(x, d, "none").sum())


def test_experts_are_independent_linear_maps():
    m = _mixture()
    x, _ = _batch()
    out = m.expert_outputs(x)
    for i in range(m.num_experts):
        torch.testing.assert_close(out[:, i], x @ m.expert_weight[i] + m.expert_bias[i])


def test_competitive_loss_formula():
    m = _mixture(sigma=0.7)
    x, d = _batch()
    out = m(x)
    sq = ((d[:, None, :] - out.expert_outputs) ** 2).sum(-1)
    expected = -torch.log((out.gate_probs * torch.exp(-sq / (2 * 0.7**2))).sum(-1))
    torch.testing.assert_close(m.loss(x, d, reduction="none"), expected)
    # logsumexp keeps it finite where the naive form underflows
    far = competitive_loss(out.expert_outputs + 1e3, out.gate_log_probs, d, 0.01)
    assert torch.isfinite(far).all() and (far > 1e6).all()


def test_cooperative_loss_formula():
    m = _mixture(objective="cooperative")
    x, d = _batch()
    out = m(x)
    blend = sum(out.gate_probs[:, i : i + 1] * out.expert_outputs[:, i] for i in range(5))
    expected = 0.5 * ((d - blend) ** 2).sum(-1)
    torch.testing.assert_close(m.loss(x, d, reduction="none"), expected)
    torch.testing.assert_close(cooperative_loss(out.expert_outputs, out.gate_probs, d), expected)
    torch.testing.assert_close(m.predict(x), blend)


def test_responsibilities_are_the_posterior_and_sum_to_one():
    m = _mixture(sigma=1.3)
    x, d = _batch()
    h = m.responsibilities(x, d)
    torch.testing.assert_close(h.sum(-1), torch.ones(7, dtype=torch.float64))
    out = m(x)
    sq = ((d[:, None, :] - out.expert_outputs) ** 2).sum(-1)
    joint = out.gate_probs * torch.exp(-sq / (2 * 1.3**2))
    torch.testing.assert_close(h, joint / joint.sum(-1, keepdim=True))
    torch.testing.assert_close(h, responsibilities(out.expert_outputs, out.gate_log_probs, d, 1.3))


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_autograd_matches_the_responsibility_gradients(temperature):
    """dE/do_i = h_i (o_i - d) / sigma^2 and dE/dz_i = (p_i - h_i) / T, per case."""
    sigma = 0.8
    m = _mixture(sigma=sigma, gate_temperature=temperature)
    x, d = _batch()
    out = m(x)
    outputs = out.expert_outputs.detach().requires_grad_(True)
    logits = m.gate_logits(x).detach().requires_grad_(True)  # already divided by T
    loss = competitive_loss(outputs, torch.log_softmax(logits, -1), d, sigma).sum()
    g_out, g_logits = torch.autograd.grad(loss, (outputs, logits))
    h = m.responsibilities(x, d).detach()
    torch.testing.assert_close(g_out, h[..., None] * (outputs.detach() - d[:, None]) / sigma**2)
    torch.testing.assert_close(g_logits, out.gate_probs.detach() - h)
    # and through the module: the gate weights see (p - h) / T
    m.zero_grad()
    m.loss(x, d, reduction="sum").backward()
    expected = x.T @ (out.gate_probs.detach() - h) / temperature
    torch.testing.assert_close(m.gate_weight.grad, expected)
    expected_w = torch.einsum("bi,be,beo->eio", x, h, outputs.detach() - d[:, None]) / sigma**2
    torch.testing.assert_close(m.expert_weight.grad, expected_w)


def test_gate_temperature_scales_the_logits():
    cold, hot = _mixture(gate_temperature=0.25), _mixture(gate_temperature=4.0)
    x, _ = _batch()
    base = x @ cold.gate_weight + cold.gate_bias
    torch.testing.assert_close(cold.gate_logits(x), base / 0.25)
    torch.testing.assert_close(hot(x).gate_probs, torch.softmax(base / 4.0, -1))

    def entropy(p):
        return -(p * p.log()).sum(-1).mean()

    assert entropy(cold(x).gate_probs) < entropy(hot(x).gate_probs) < math.log(5)
    # the selected expert's output under predict(mode="select")
    pick = cold.gate_choice(x)
    out = cold(x)
    torch.testing.assert_close(cold.predict(x, "select"), out.expert_outputs[torch.arange(7), pick])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"in_dim": 0}, "in_dim"),
        ({"out_dim": 2.5}, "out_dim"),
        ({"num_experts": 0}, "num_experts"),
        ({"objective": "greedy"}, "objective"),
        ({"sigma": 0.0}, "sigma"),
        ({"gate_temperature": -1.0}, "gate_temperature"),
        ({"expert": "rbf"}, "expert"),
        ({"expert": "mlp", "hidden": 0}, "hidden"),
    ],
)
def test_bad_construction_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _mixture(**kwargs)


def test_bad_inputs_are_refused():
    m = _mixture()
    x, d = _batch()
    with pytest.raises(ValueError, match=r"in_dim=3"):
        m(torch.zeros(7, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="targets must have shape"):
        m.loss(x, d[:, :3])
    with pytest.raises(ValueError, match="reduction"):
        m.loss(x, d, reduction="max")
    with pytest.raises(ValueError, match="objective"):
        m.loss(x, d, objective="nope")
    with pytest.raises(ValueError, match="mode"):
        m.predict(x, mode="vote")


def test_the_objective_override_and_experts_disagree_in_their_pull():
    """Competitive: an expert far from the target gets (almost) no gradient; cooperative:
    every expert is pulled by the blend's residual."""
    m = _mixture(num_experts=2, in_dim=1, out_dim=1)
    with torch.no_grad():
        m.expert_weight.zero_()
        m.expert_bias.copy_(torch.tensor([[0.0], [5.0]], dtype=torch.float64))
        m.gate_weight.zero_()
        m.gate_bias.zero_()
    x = torch.zeros(1, 1, dtype=torch.float64)
    d = torch.zeros(1, 1, dtype=torch.float64)
    m.loss(x, d, objective="competitive").backward()
    competitive = m.expert_bias.grad.clone()
    m.zero_grad()
    m.loss(x, d, objective="cooperative").backward()
    cooperative = m.expert_bias.grad.clone()
    assert abs(competitive[1, 0]) < 1e-4 < abs(cooperative[1, 0])
    assert cooperative[0, 0] > 0.5  # the right expert is pushed away to cancel the other


def test_specialises_on_the_synthetic_vowels():
    """A short seeded run: the experts divide the vowels (responsibilities concentrate and
    different experts win different classes), and the mixture classifies them."""
    from colonylab.runs.data.vowels import (
        VOWELS,
        Normaliser,
        speaker_split,
        synthetic_vowels,
    )

    data = synthetic_vowels(seed=5)
    train, _ = speaker_split(data, 50)
    x = torch.as_tensor(Normaliser.fit(data.formants[train])(data.formants[train]))
    y = torch.as_tensor(data.labels[train])
    d = torch.nn.functional.one_hot(y, 4).double()
    torch.manual_seed(3)
    m = CompetitiveMixture(2, 4, num_experts=4).double()
    optimizer = torch.optim.SGD(m.parameters(), lr=1.0)
    for _ in range(400):
        optimizer.zero_grad()
        m.loss(x, d).backward()
        optimizer.step()
    with torch.no_grad():
        h = m.responsibilities(x, d)
        accuracy = (m.predict(x).argmax(-1) == y).double().mean()
    assert h.max(-1).values.mean() > 0.9
    winners = {int(h[y == c].mean(0).argmax()) for c in range(len(VOWELS))}
    assert len(winners) >= 2
    assert accuracy > 0.8
