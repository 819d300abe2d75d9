"""ARS (top-b augmented random search) and the running observation normaliser: the
update on a toy objective, top-b selection, antithetic rows, resume bit-identical,
refusals; running mean/std equal to NumPy's over the merged batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colonylab.collective_ml.ars import ARS
from colonylab.collective_ml.running_norm import RunningNorm


def test_ars_rows_are_antithetic_and_it_climbs_a_quadratic():
    core = ARS(5, 8, top=4, step_size=0.1, noise=0.05, center_init=3.0, seed=0, maximize=True)
    pop = core.ask()
    assert pop.shape == (16, 5)
    torch.testing.assert_close(pop[:8] + pop[8:], 2 * core.center.expand(8, 5))
    start = float(core.center.norm())
    for _ in range(200):
        x = core.ask()
        core.tell(-(x**2).sum(1))
    assert float(core.center.norm()) < 0.2 * start
    assert core.best.fitness <= 0


def test_ars_moves_only_along_the_top_directions():
    core = ARS(3, 3, top=1, step_size=1.0, noise=1.0, seed=1, maximize=True)
    pop = core.ask()
    deltas = pop[:3].clone()  # noise 1, center 0: the directions themselves
    reward = torch.tensor([0.0, 5.0, 1.0, 0.0, 1.0, 0.0])  # direction 1: +5 vs +1
    core.tell(reward)
    used = torch.tensor([5.0, 1.0])
    expected = (5.0 - 1.0) / float(used.std(unbiased=False)) * deltas[1]
    torch.testing.assert_close(core.center, expected)


def test_ars_resumes_bit_identically_and_refuses_bad_arguments():
    def run(core, gens):
        for _ in range(gens):
            x = core.ask()
            core.tell((x - 1).abs().sum(1))

    a = ARS(4, 3, top=2, seed=7)
    run(a, 5)
    b = ARS(4, 3, top=2, seed=7)
    run(b, 2)
    c = ARS(4, 3, top=2, seed=7)
    c.load_state_dict(b.state_dict())
    run(c, 3)
    assert torch.equal(a.center, c.center)
    with pytest.raises(ValueError, match="top"):
        ARS(4, 3, top=4)
    with pytest.raises(ValueError, match="noise"):
        ARS(4, 3, noise=0.0)
    with pytest.raises(ValueError, match="directions"):
        ARS(4, 0)


def test_running_norm_matches_numpy_over_merged_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(2.0, 3.0, size=(m, 4)) for m in (1, 7, 50, 0, 3)]
    norm = RunningNorm(4, min_std=1e-6)
    assert torch.equal(norm.std, torch.ones(4))
    for b in batches:
        norm.update(torch.as_tensor(b))
    rows = np.concatenate(batches)
    np.testing.assert_allclose(norm.mean.numpy(), rows.mean(0), rtol=1e-12)
    np.testing.assert_allclose(norm.std.numpy(), rows.std(0), rtol=1e-10)
    again = RunningNorm(4, min_std=1e-6)
    again.load_state_dict(norm.state_dict())
    assert torch.equal(again.std, norm.std) and again.count == 61
    constant = RunningNorm(2)
    constant.update(torch.ones(5, 2))
    assert torch.equal(constant.std, torch.full((2,), 1e-2, dtype=torch.float64))
    with pytest.raises(ValueError, match="dim"):
        RunningNorm(0)
