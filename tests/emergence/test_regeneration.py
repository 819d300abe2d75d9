"""Regeneration metrics on hand-made states."""

from __future__ import annotations

import pytest
import torch

from colonylab.emergence.regeneration import pattern_loss, regeneration


def _target(h=6, w=6):
    t = torch.zeros(h, w, 4)
    t[1:5, 1:5] = torch.tensor([0.5, 0.2, 0.1, 1.0])
    return t


def test_pattern_loss_is_per_state_mse_of_rgba():
    target = _target()
    x = torch.zeros(2, 6, 6, 8)
    x[1, ..., :4] = target
    x[1, ..., 4:] = 7.0  # hidden channels do not count
    loss = pattern_loss(x, target)
    assert loss.shape == (2,)
    assert loss[1] == 0
    assert torch.isclose(loss[0], target.square().mean())
    with pytest.raises(ValueError, match="does not match"):
        pattern_loss(x, torch.zeros(5, 6, 4))


def test_regeneration_of_a_rule_that_restores_the_target():
    target = _target()

    def heal(x):  # a perfect regenerating rule: one step back to the target
        y = x.clone()
        y[..., :4] = target
        return y

    seed = torch.zeros(3, 6, 6, 4)
    res = regeneration(heal, seed, target, damage=lambda x: x * 0, grow_steps=5, recover_steps=3)
    assert res.loss_grown == 0 and res.loss_recovered == 0
    assert res.loss_damaged == pytest.approx(float(target.square().mean()))
    assert len(res.curve) == 5 + 3 + 1
    assert res.curve[0] == pytest.approx(float(target.square().mean()))


def test_a_rule_that_does_nothing_stays_damaged():
    target = _target()
    grown = target.expand(1, 6, 6, 4).clone()
    res = regeneration(lambda x: x, grown, target, lambda x: x * 0.5, grow_steps=2, recover_steps=4)
    assert res.loss_grown == 0
    assert res.loss_recovered == res.loss_damaged > 0
    with pytest.raises(ValueError):
        regeneration(lambda x: x, grown, target, lambda x: x, grow_steps=-1)
