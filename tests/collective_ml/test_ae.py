"""The Adaptive Evolution controller: bounds, budget, gauge invariance, bad lr, switches."""

from __future__ import annotations

import io
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from colonylab.collective_ml.ae import LAWS, AEConfig, AEController


def _quadratic(dim: int = 10, seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = nn.Parameter(torch.randn(dim, generator=g, dtype=dtype))
    curv = torch.linspace(0.2, 1.0, dim, dtype=dtype)
    return x, lambda: 0.5 * (curv * x * x).sum()


def _run(opt, ctrl, loss_fn, steps, scale=1.0):
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn() * scale
        loss.backward()
        ctrl.step(loss)


def _mlp(seed: int = 0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 4, generator=g)
    y = torch.tanh(x @ torch.randn(4, 1, generator=g))
    return net, lambda: (net(x) - y).square().mean()


def _within(ctrl: AEController) -> bool:
    return all(
        lo - 1e-12 <= v <= hi + 1e-12
        for z, zl, zh in zip(ctrl.z, ctrl.z_lo, ctrl.z_hi, strict=True)
        for v, lo, hi in zip(z, zl, zh, strict=True)
    )


@settings(max_examples=25, deadline=None)
@given(
    losses=st.lists(
        st.one_of(
            st.floats(-1e6, 1e6, allow_nan=False),
            st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1e30]),
        ),
        min_size=1,
        max_size=30,
    ),
    grad_scale=st.floats(1e-8, 1e8),
    family=st.sampled_from(["sgd", "adamw"]),
)
def test_coefficients_stay_within_bounds_under_adversarial_signals(losses, grad_scale, family):
    x = nn.Parameter(torch.ones(5))
    opt = (
        torch.optim.SGD([x], lr=0.1, momentum=0.9)
        if family == "sgd"
        else torch.optim.AdamW([x], lr=1e-3, weight_decay=0.01)
    )
    ctrl = AEController(opt, AEConfig(budget_step=5.0, k_gauge=3.0, k_align=2.0))
    g = torch.Generator().manual_seed(len(losses))
    for value in losses:
        x.grad = torch.randn(5, generator=g) * grad_scale
        if value == 1e30:
            x.grad[0] = math.nan
        ctrl.step(torch.tensor(value))
        assert _within(ctrl)
        for row in ctrl.coefficients():
            assert all(math.isfinite(v) for v in row.values())
        group = opt.param_groups[0]
        assert math.isfinite(group["lr"]) and group["lr"] > 0
    assert torch.isfinite(x).all()


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), budget=st.floats(0.01, 1.0))
def test_each_step_within_budget(seed, budget):
    net, loss_fn = _mlp(seed % 7)
    opt = torch.optim.AdamW(net.parameters(), lr=10 ** (-1 - seed % 4), weight_decay=0.01)
    ctrl = AEController(opt, AEConfig(budget_step=budget, k_gauge=5.0, seed=seed))
    _run(opt, ctrl, loss_fn, 25)
    assert max(ctrl.history["max_spend"]) <= budget + 1e-9
    assert max(ctrl.history["lambda"]) >= 0.0


def test_budget_off_lets_a_step_exceed_the_budget():
    net, loss_fn = _mlp()
    opt = torch.optim.SGD(net.parameters(), lr=1e-5, momentum=0.9)
    cfg = AEConfig(budget_step=0.05, k_gauge=0.9)
    ctrl = AEController(opt, cfg.without("budget"))
    _run(opt, ctrl, loss_fn, 5)
    assert max(ctrl.history["max_spend"]) > 0.05
    assert all(v == 0.0 for v in ctrl.history["lambda"])


def test_dual_variable_rises_when_spending_stays_above_the_mean_budget():
    net, loss_fn = _mlp()
    opt = torch.optim.SGD(net.parameters(), lr=1e-6, momentum=0.9)
    ctrl = AEController(opt, AEConfig(budget_mean=0.01, k_gauge=0.9))
    _run(opt, ctrl, loss_fn, 10)
    assert ctrl.lam > 0


@pytest.mark.parametrize("family", ["sgd", "adamw"])
def test_gauge_equalises_the_effective_step_under_gradient_scaling(family):
    """A linear loss (constant gradient): scaled by 0.1, 1 and 10, the effective step
    alpha ||D|| settles at the same gamma* (trend/alignment/noise/resonance off, so
    gamma* stays at gamma*_0), while alpha itself absorbs the scale."""
    finals, lrs = {}, {}
    for scale in (0.1, 1.0, 10.0):
        g = torch.Generator().manual_seed(1)
        x = nn.Parameter(torch.randn(10, generator=g, dtype=torch.float64))
        a = torch.randn(10, generator=g, dtype=torch.float64)
        opt = (
            torch.optim.SGD([x], lr=0.01, momentum=0.5)
            if family == "sgd"
            else torch.optim.AdamW([x], lr=1e-3, eps=1e-12)
        )
        cfg = AEConfig(gauge_target=0.05).without("trend", "alignment", "noise", "resonance")
        ctrl = AEController(opt, cfg)
        _run(opt, ctrl, lambda x=x, a=a: (a * x).sum(), 100, scale)
        finals[scale] = ctrl.history["effective_step"][-1]
        lrs[scale] = ctrl.value("lr")
    for v in finals.values():
        assert v == pytest.approx(0.05, rel=1e-3)
    if family == "sgd":  # alpha = gamma* (1 - beta) / ||g||: inversely proportional to the scale
        assert lrs[0.1] / lrs[10.0] == pytest.approx(100.0, rel=1e-3)


def test_plain_sgd_effective_step_follows_the_scale():
    steps = []
    for scale in (0.1, 10.0):
        x, loss_fn = _quadratic(seed=1)
        opt = torch.optim.SGD([x], lr=0.01)
        opt.zero_grad()
        (loss_fn() * scale).backward()
        steps.append(0.01 * float(x.grad.norm()))
    assert steps[1] / steps[0] == pytest.approx(100.0)


@pytest.mark.parametrize("family", ["sgd", "adamw"])
@pytest.mark.parametrize("lr", [10.0, 100.0])
def test_finite_at_an_absurd_learning_rate(family, lr):
    x, loss_fn = _quadratic(dim=20, dtype=torch.float32)
    opt = (
        torch.optim.SGD([x], lr=lr, momentum=0.9)
        if family == "sgd"
        else torch.optim.AdamW([x], lr=lr)
    )
    ctrl = AEController(opt, AEConfig())
    _run(opt, ctrl, loss_fn, 200)
    assert torch.isfinite(x).all()
    assert math.isfinite(ctrl.history["loss"][-1])
    assert ctrl.history["loss"][-1] < ctrl.history["loss"][0]


def test_plain_sgd_diverges_at_an_absurd_learning_rate():
    x, loss_fn = _quadratic(dim=20, dtype=torch.float32)
    opt = torch.optim.SGD([x], lr=100.0, momentum=0.9)
    for _ in range(200):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
    assert not torch.isfinite(x).all()


def test_non_finite_loss_skips_the_step_and_clamps():
    x, loss_fn = _quadratic()
    opt = torch.optim.SGD([x], lr=0.1, momentum=0.9)
    ctrl = AEController(opt, AEConfig(use_noise=False))
    _run(opt, ctrl, loss_fn, 3)
    before = x.detach().clone()
    lr_before = ctrl.value("lr")
    x.grad = torch.full_like(x, math.nan)
    assert ctrl.step(torch.tensor(math.nan)) is False
    assert torch.equal(x.detach(), before)
    assert ctrl.skipped_steps == 1 and ctrl.value("lr") < lr_before


# -- each switch really disables its law --------------------------------------------------------
def _history(cfg: AEConfig, family: str = "sgd", steps: int = 40, delay: bool = False):
    x, loss_fn = _quadratic(seed=3)
    opt = (
        torch.optim.SGD([x], lr=0.3 if delay else 0.02, momentum=0.9)
        if family == "sgd"
        else torch.optim.AdamW([x], lr=1e-2, weight_decay=0.1)
    )
    ctrl = AEController(opt, cfg)
    queue = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        if delay:
            queue.append(x.grad.clone())
            x.grad = queue.pop(0) if len(queue) > 3 else torch.zeros_like(x)
        ctrl.step(loss)
    return ctrl


def test_switch_noise():
    on = _history(AEConfig(seed=1)).history
    off = _history(AEConfig(seed=1, use_noise=False)).history
    assert len(set(off["sigma"])) == 1 and len(set(on["sigma"])) > 1
    a = _history(AEConfig(seed=1, use_noise=False)).history
    b = _history(AEConfig(seed=2, use_noise=False)).history
    assert a["lr"] == b["lr"]  # without noise the seed does not matter


def test_switch_resonance():
    def run(cfg):
        x = nn.Parameter(torch.ones(4))
        opt = torch.optim.SGD([x], lr=0.1, momentum=0.9)
        ctrl = AEController(opt, cfg)
        for i in range(30):  # a loss that doubles every other step: spikes
            x.grad = torch.ones(4) * (-1) ** i
            ctrl.step(torch.tensor(1.0 + (i % 2)))
        return ctrl

    cfg = AEConfig(use_noise=False, use_gauge=False)
    on, off = run(cfg), run(cfg.without("resonance"))
    assert on.clamps > 0 and off.clamps == 0
    assert on.value("lr") < 0.5 * off.value("lr")
    assert on.value("momentum") < off.value("momentum")


def test_switch_gauge():
    cfg = AEConfig(use_noise=False)
    on = _history(cfg, steps=5).history
    off = _history(cfg.without("gauge"), steps=5).history
    assert on["gamma"][-1] > 0
    # without the gauge the learning rate moves only by the (small) step drive
    assert abs(math.log(off["lr"][-1] / 0.02)) < 0.5 * abs(math.log(on["lr"][-1] / 0.02))
    assert all(a == b for a, b in zip(off["lr"], off["applied_lr"], strict=True))


def test_switch_trend_and_alignment():
    base = AEConfig(use_noise=False, use_gauge=False, use_resonance=False, use_coupling=False)
    neither = _history(base.without("trend", "alignment")).history
    assert len(set(neither["lr"])) == 1 and len(set(neither["momentum"])) == 1
    trend_only = _history(base.without("alignment")).history
    assert len(set(trend_only["lr"])) > 1 and len(set(trend_only["momentum"])) == 1
    align_only = _history(base.without("trend")).history
    assert len(set(align_only["momentum"])) > 1


def test_switch_coupling():
    base = AEConfig(
        use_noise=False, use_gauge=False, use_resonance=False, use_trend=False, k_align=0.0
    )
    on = _history(base)
    off = _history(base.without("coupling"))
    # coupling: log lr moves with log(1 - beta) (alpha / (1 - beta) held still)
    d_lr = math.log(on.value("lr") / 0.02)
    d_mom = math.log((1 - on.value("momentum")) / 0.1)
    assert d_lr == pytest.approx(d_mom, rel=1e-6, abs=1e-9) and d_mom != 0
    assert off.value("lr") == pytest.approx(0.02)
    w_on = _history(AEConfig(use_noise=False), family="adamw")
    w_off = _history(AEConfig(use_noise=False).without("coupling"), family="adamw")
    assert w_on.value("weight_decay") != pytest.approx(0.1)
    assert w_off.value("weight_decay") == pytest.approx(0.1)


def test_without_refuses_unknown_laws_and_config_checks():
    with pytest.raises(ValueError, match="unknown law"):
        AEConfig().without("gravity")
    with pytest.raises(ValueError, match="budget_step"):
        AEConfig(budget_step=0.0)
    with pytest.raises(ValueError, match="lr_range"):
        AEConfig(lr_range=(2.0, 1.0))
    assert set(LAWS) == {f.removeprefix("use_") for f in AEConfig.__dataclass_fields__} & set(LAWS)


def test_refuses_a_zero_learning_rate():
    x = nn.Parameter(torch.ones(2))
    with pytest.raises(ValueError, match="lr"):
        AEController(torch.optim.SGD([x], lr=0.0))


# -- state, optimizers --------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["sgd", "adamw"])
def test_state_dict_round_trip_continues_identically(family):
    def make():
        net, loss_fn = _mlp(2)
        opt = (
            torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
            if family == "sgd"
            else torch.optim.AdamW(net.parameters(), lr=1e-3)
        )
        return net, loss_fn, opt, AEController(opt, AEConfig(seed=5))

    net, loss_fn, opt, ctrl = make()
    _run(opt, ctrl, loss_fn, 10)
    buf = io.BytesIO()
    torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "ctrl": ctrl.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    _run(opt, ctrl, loss_fn, 10)

    net2, loss_fn2, opt2, ctrl2 = make()
    net2.load_state_dict(saved["net"])
    opt2.load_state_dict(saved["opt"])
    ctrl2.load_state_dict(saved["ctrl"])
    _run(opt2, ctrl2, loss_fn2, 10)
    assert ctrl2.history["lr"] == ctrl.history["lr"]
    for a, b in zip(net.parameters(), net2.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9),
        lambda ps: torch.optim.SGD(ps, lr=0.05),
        lambda ps: torch.optim.AdamW(ps, lr=1e-3),
        lambda ps: torch.optim.Adam(ps, lr=1e-3),
        lambda ps: torch.optim.RMSprop(ps, lr=1e-3),
    ],
)
def test_wraps_optimizers_and_trains(make):
    net, loss_fn = _mlp(1)
    opt = make(net.parameters())
    ctrl = AEController(opt, AEConfig(seed=0))
    _run(opt, ctrl, loss_fn, 150)
    h = ctrl.history
    assert h["loss"][-1] < 0.5 * h["loss"][0]
    assert opt.param_groups[0]["lr"] == pytest.approx(h["applied_lr"][-1])
    assert set(ctrl.log()) >= {"ae/lr", "ae/energy", "ae/rho", "ae/T", "ae/V", "ae/S"}
    assert all(math.isfinite(v) for v in h["energy"])


def test_adam_coefficients_and_stability_projection():
    net, loss_fn = _mlp()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.01)
    ctrl = AEController(opt)
    assert ctrl.names == ["lr", "beta1", "beta2", "eps", "weight_decay", "sigma"]
    _run(opt, ctrl, loss_fn, 30)
    b1, b2 = opt.param_groups[0]["betas"]
    assert b1 <= math.sqrt(b2) + 1e-12
    assert (b1, b2) == pytest.approx((ctrl.value("beta1"), ctrl.value("beta2")))


def test_param_groups_are_controlled_separately():
    a, b = nn.Parameter(torch.ones(4)), nn.Parameter(torch.ones(4))
    opt = torch.optim.SGD([{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.001}], momentum=0.9)
    ctrl = AEController(opt, AEConfig(use_noise=False))
    for _ in range(10):
        opt.zero_grad()
        loss = (a * a).sum() + 100 * (b * b).sum()
        loss.backward()
        ctrl.step(loss)
    assert len(ctrl.coefficients()) == 2
    assert ctrl.value("lr", 0) != ctrl.value("lr", 1)
