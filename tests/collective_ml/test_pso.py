"""Tests for colonylab.collective_ml.pso: convergence, neighbourhoods, boundaries, state, errors."""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from colonylab.collective_ml.pso import (
    BOUNDARIES,
    PSO,
    TOPOLOGIES,
    HybridPSOGradient,
    benchmark_bounds,
    constriction_coefficient,
    functions,
    ring_neighbours,
    von_neumann_grid,
    von_neumann_neighbours,
)

sphere = functions["sphere"]


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_converges_on_sphere_for_every_topology(topology):
    pso = PSO(10, 30, (-5.0, 5.0), topology=topology, seed=0, dtype=torch.float64)
    start = float(sphere(pso.ask()).min())
    params, value = pso.optimize(sphere, 300)
    assert value < 1e-3 < start
    assert value == pytest.approx(float(sphere(params.unsqueeze(0))[0]))
    assert pso.generations == 300


def test_constriction_variant_converges_and_chi_is_clerc():
    assert constriction_coefficient(4.1) == pytest.approx(0.7298437881, abs=1e-9)
    pso = PSO(10, 30, (-5.0, 5.0), variant="constriction", seed=0)
    assert pso.chi == pytest.approx(0.7298437881, abs=1e-9)
    assert (pso.c1, pso.c2) == (2.05, 2.05)
    # with the defaults the two variants are one equation: chi * 2.05 = 1.49618
    assert pso.chi * 2.05 == pytest.approx(1.49618, abs=1e-5)
    assert pso.optimize(sphere, 300).fitness < 1e-3
    with pytest.raises(ValueError, match="phi"):
        PSO(2, 5, variant="constriction", c1=1.0, c2=1.0)
    with pytest.raises(ValueError, match="no inertia weight"):
        PSO(2, 5, variant="constriction", w=0.5)


def test_ring_neighbourhoods_by_hand():
    assert ring_neighbours(5).tolist() == [
        [4, 0, 1],
        [0, 1, 2],
        [1, 2, 3],
        [2, 3, 4],
        [3, 4, 0],
    ]
    hoods = PSO(2, 6, topology="ring").neighbourhoods()
    assert hoods[0] == [0, 1, 5] and hoods[3] == [2, 3, 4]


def test_von_neumann_neighbourhoods_by_hand():
    # 12 particles: a 3 x 4 torus, row-major ids
    #  0  1  2  3
    #  4  5  6  7
    #  8  9 10 11
    assert von_neumann_grid(12) == (3, 4)
    assert von_neumann_grid(100) == (10, 10)
    assert von_neumann_grid(7) == (1, 7)  # a prime: a ring
    nb = von_neumann_neighbours(12)
    assert nb.shape == (12, 5)
    assert nb[5].tolist() == [5, 1, 9, 4, 6]  # self, up, down, left, right
    assert nb[0].tolist() == [0, 8, 4, 3, 1]  # wraps both ways
    assert nb[11].tolist() == [11, 7, 3, 10, 8]
    hoods = PSO(2, 12, topology="von_neumann").neighbourhoods()
    assert hoods[5] == [1, 4, 5, 6, 9]


def test_local_best_is_the_best_of_the_neighbourhood():
    pso = PSO(1, 6, (-10.0, 10.0), topology="ring", seed=0)
    pso.tell(torch.tensor([5.0, 1.0, 7.0, 6.0, 0.5, 9.0]))
    pbest_x, _ = pso.personal_best
    informant = pso._informant_best()
    # particle 2 sees {1, 2, 3}: best is 1; particle 5 sees {4, 5, 0}: best is 4
    assert torch.equal(informant[2], pbest_x[1])
    assert torch.equal(informant[5], pbest_x[4])
    assert torch.equal(informant[0], pbest_x[1])


def test_random_topology_links_and_redraw_when_best_stalls():
    pso = PSO(2, 10, (-1.0, 1.0), topology="random", informants=3, seed=0)
    hoods = pso.neighbourhoods()
    assert all(i in hood for i, hood in enumerate(hoods))
    assert sum(len(h) - 1 for h in hoods) <= 10 * 3
    targets = pso._targets.clone()
    pso.tell(torch.arange(10.0))  # best improves from +inf: links kept
    assert torch.equal(pso._targets, targets)
    pso.tell(torch.full((10,), 5.0))  # no improvement: links re-drawn
    assert not torch.equal(pso._targets, targets)
    # the informant best is the best over each particle's hood
    _, pf = pso.personal_best
    best = pso._informant_best()
    px, _ = pso.personal_best
    for i, hood in enumerate(pso.neighbourhoods()):
        j = min(hood, key=lambda k: (float(pf[k]), k))
        assert torch.equal(best[i], px[j])


@settings(max_examples=25, deadline=None)
@given(
    boundary=st.sampled_from(BOUNDARIES),
    seed=st.integers(0, 2**16),
    scale=st.floats(0.1, 100.0),
    clamp=st.sampled_from([None, 0.1, 2.0]),
)
def test_boundaries_keep_particles_in_bounds(boundary, seed, scale, clamp):
    lo = torch.tensor([-1.0, 0.0, 2.0]) * scale
    hi = torch.tensor([1.0, 0.5, 2.5]) * scale
    pso = PSO(3, 8, (lo, hi), boundary=boundary, velocity_clamp=clamp, seed=seed)
    # push hard away from the box: the best is far outside, velocities blow up
    with torch.no_grad():
        pso._v = pso._v * 50.0
    for _ in range(5):
        x = pso.ask()
        assert ((x >= lo) & (x <= hi)).all(), boundary
        pso.tell(-x.sum(dim=1))
    x = pso.ask()
    assert ((x >= lo) & (x <= hi)).all() and torch.isfinite(pso.velocities).all()


def test_boundary_rules_by_hand():
    pso = PSO(1, 3, (0.0, 1.0), boundary="reflect")
    x, v = pso._apply_boundary(torch.tensor([[1.25], [-0.5], [2.25]]), torch.ones(3, 1))
    assert torch.allclose(x, torch.tensor([[0.75], [0.5], [0.25]]))
    assert v.flatten().tolist() == [-1.0, -1.0, 1.0]  # folded once, once, twice
    pso = PSO(1, 3, (0.0, 1.0), boundary="periodic")
    x, _ = pso._apply_boundary(torch.tensor([[1.25], [-0.25], [0.5]]), torch.ones(3, 1))
    assert torch.allclose(x, torch.tensor([[0.25], [0.75], [0.5]]))
    pso = PSO(1, 3, (0.0, 1.0), boundary="clamp")
    x, v = pso._apply_boundary(torch.tensor([[1.25], [-0.25], [0.5]]), torch.ones(3, 1))
    assert x.flatten().tolist() == [1.0, 0.0, 0.5] and v.flatten().tolist() == [0.0, 0.0, 1.0]


def test_velocity_clamp_caps_speed():
    pso = PSO(4, 10, (-2.0, 2.0), velocity_clamp=0.1, seed=1)
    for _ in range(5):
        pso.tell(sphere(pso.ask()) * 1e6)
        assert pso.velocities.abs().max() <= 0.4 + 1e-6


def test_velocity_norm_clamp_caps_the_step_in_box_units():
    lo, hi = torch.tensor([-1.0, 0.0, -10.0]), torch.tensor([1.0, 0.5, 10.0])
    kappa = 0.3
    pso = PSO(3, 10, (lo, hi), velocity_norm_clamp=kappa, boundary="periodic", seed=2)
    with torch.no_grad():
        pso._v = pso._v * 50.0
    for _ in range(5):
        pso.tell(sphere(pso.ask()) * 1e6)
        norm = torch.linalg.vector_norm(pso.velocities / (hi - lo), dim=1)
        assert (norm <= kappa * (1 + 1e-5)).all() and (norm > 0.9 * kappa).any()


def test_velocity_norm_clamp_keeps_direction_and_leaves_slow_particles_alone():
    pso = PSO(2, 3, (0.0, 2.0), velocity_norm_clamp=1.0)  # cap: a step of 2 (one box side)
    v = torch.tensor([[3.0, 4.0], [0.6, -0.8], [0.0, 0.0]])
    out = pso._cap_step_norm(v.clone())
    assert torch.allclose(out[0], torch.tensor([1.2, 1.6]))  # norm 5 -> 2, same direction
    assert torch.equal(out[1:], v[1:])  # under the cap, and a standing particle: untouched
    per_dim = PSO(2, 3, ([0.0, 0.0], [2.0, 4.0]), velocity_norm_clamp=1.0)
    out = per_dim._cap_step_norm(torch.tensor([[6.0, 16.0]]))  # box units (3, 4): norm 5
    assert torch.allclose(out, torch.tensor([[1.2, 3.2]]))


def test_linearly_decreasing_inertia_schedule():
    pso = PSO(2, 4, w=(0.9, 0.4), iterations=11)
    assert (pso.w, pso.w_end, pso.iterations) == (0.9, 0.4, 11)
    got = [pso.inertia_at(t) for t in (0, 5, 10, 11, 100)]
    assert got == pytest.approx([0.9, 0.65, 0.4, 0.4, 0.4])
    assert PSO(2, 4, w=(0.5, 0.5), iterations=1).inertia_at(0) == 0.5
    constant = PSO(2, 4, w=0.6, iterations=11)
    assert constant.w_end is None and constant.inertia_at(7) == 0.6
    assert PSO(2, 4, variant="constriction").inertia_at(3) == pytest.approx(0.72984, abs=1e-5)


def test_inertia_schedule_is_what_the_swarm_moves_with():
    """One move by hand: v' = w_t v + c1 r1 (p - x) + c2 r2 (l - x), with w_t from the schedule."""
    kw = {"w": (0.9, 0.1), "iterations": 5, "boundary": "periodic", "dtype": torch.float64}
    pso = PSO(3, 5, (-2.0, 2.0), seed=3, **kw)
    pso.optimize(sphere, 2)  # the next move is the one after tell number t = 2
    x, v = pso.ask().clone(), pso.velocities
    r = torch.rand(2, 5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    pso.uniform = lambda *shape: r  # the move's r1, r2
    pso.tell(sphere(x))
    p, _ = pso.personal_best
    g = pso.best.params
    want = 0.5 * v + pso.c1 * r[0] * (p - x) + pso.c2 * r[1] * (g - x)
    assert torch.allclose(pso.velocities, want)


def test_schedule_state_dict_round_trip_continues_identically():
    f = functions["ackley"]
    kw = {"w": (0.8, 0.6), "iterations": 20, "velocity_norm_clamp": 0.5, "boundary": "periodic"}
    a = PSO(6, 10, (-32.768, 32.768), seed=1, **kw)
    a.optimize(f, 8)
    b = PSO(6, 10, (-32.768, 32.768), seed=99, **kw)
    b.load_state_dict(a.state_dict())
    for _ in range(12):
        xa, xb = a.ask(), b.ask()
        assert torch.equal(xa, xb)
        a.tell(f(xa))
        b.tell(f(xb))
    assert torch.equal(a.velocities, b.velocities) and a.best.fitness == b.best.fitness


def test_per_dimension_bounds_and_errors():
    pso = PSO(2, 5, ([0.0, -10.0], [1.0, 10.0]), seed=0)
    x = pso.ask()
    assert (x[:, 0] <= 1).all() and (x[:, 1].abs() > 1).any()
    with pytest.raises(ValueError, match="lo < hi"):
        PSO(2, 5, (1.0, 1.0))
    with pytest.raises(ValueError, match=r"dimension\(s\) \[1\]"):
        PSO(2, 5, ([0.0, 3.0], [1.0, 2.0]))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        PSO(2, 5, ([0.0, 0.0, 0.0], 1.0))
    with pytest.raises(ValueError, match="pair"):
        PSO(2, 5, 1.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"topology": "star"}, "unknown topology 'star'.*gbest, ring"),
        ({"variant": "momentum"}, "unknown variant"),
        ({"boundary": "bounce"}, "unknown boundary"),
        ({"velocity_clamp": 0.0}, "velocity_clamp"),
        ({"w": -0.1}, "w must be"),
        ({"w": (0.9, 0.4)}, "pass iterations="),
        ({"w": (0.9, -0.4), "iterations": 10}, "w_end must be"),
        ({"w": (0.9, 0.4, 0.1), "iterations": 10}, "pair"),
        ({"w": True}, "w must be"),
        ({"iterations": 0}, "iterations must be"),
        ({"iterations": 2.5}, "iterations must be"),
        ({"velocity_norm_clamp": 0.0}, "velocity_norm_clamp"),
        ({"velocity_norm_clamp": float("inf")}, "velocity_norm_clamp"),
        ({"variant": "constriction", "w": (0.9, 0.4), "iterations": 5}, "no inertia weight"),
        ({"informants": 0}, "informants"),
    ],
)
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PSO(3, 10, **kwargs)


@pytest.mark.parametrize("topology", ["ring", "von_neumann", "random"])
def test_population_of_one_needs_gbest(topology):
    with pytest.raises(ValueError, match="pop_size >= 3"):
        PSO(3, 1, topology=topology)
    pso = PSO(3, 1, topology="gbest", seed=0)  # allowed: a lone particle following its best
    pso.optimize(sphere, 3)
    assert torch.isfinite(pso.ask()).all()


def test_wrong_fitness_shape_is_refused():
    pso = PSO(3, 10)
    with pytest.raises(ValueError, match=r"shape \(10,\).*got shape \(10, 1\)"):
        pso.tell(torch.zeros(10, 1))


def test_nan_and_inf_fitness_never_make_a_nan_swarm():
    pso = PSO(4, 10, (-3.0, 3.0), seed=0)
    with pytest.warns(RuntimeWarning, match="NaN/inf"):
        for step in range(30):
            x = pso.ask()
            fitness = sphere(x)
            fitness[step % 10] = float("nan")
            fitness[(step + 3) % 10] = float("inf")
            if step < 2:
                fitness[:] = float("nan")  # all bad at the start
            pso.tell(fitness)
    assert pso.nonfinite_count == 2 * 10 + 28 * 2
    assert torch.isfinite(pso.ask()).all() and torch.isfinite(pso.velocities).all()
    assert math.isfinite(pso.best.fitness)


@pytest.mark.parametrize(
    "topology, boundary", [("gbest", "random"), ("random", "reflect"), ("ring", "periodic")]
)
def test_state_dict_round_trip_continues_identically(topology, boundary):
    f = functions["rastrigin"]
    a = PSO(5, 12, (-5.12, 5.12), topology=topology, boundary=boundary, seed=4)
    a.optimize(f, 7)
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    b = PSO(5, 12, (-5.12, 5.12), topology=topology, boundary=boundary, seed=123)
    b.load_state_dict(torch.load(buffer, weights_only=True))
    for _ in range(15):
        xa, xb = a.ask(), b.ask()
        assert torch.equal(xa, xb)
        a.tell(f(xa))
        b.tell(f(xb))
    assert torch.equal(a.best.params, b.best.params) and a.best.fitness == b.best.fitness
    with pytest.raises(ValueError, match="HybridPSOGradient"):
        HybridPSOGradient(f, 5, 12).load_state_dict(a.state_dict())
    other = "gbest" if topology == "random" else "random"
    with pytest.raises(ValueError, match="random-topology"):
        PSO(5, 12, topology=other).load_state_dict(a.state_dict())


def test_ask_is_stable_and_never_written_into():
    pso = PSO(3, 6, seed=0)
    x = pso.ask()
    kept = x.clone()
    assert pso.ask() is x
    pso.tell(sphere(x))
    assert torch.equal(x, kept) and not torch.equal(pso.ask(), kept)


def test_maximize_flag():
    pso = PSO(3, 20, (-2.0, 2.0), maximize=True, seed=0)
    _, value = pso.optimize(lambda x: -sphere(x), 100)
    assert -1e-3 < value <= 0.0


def test_float64_and_reproducible():
    a = PSO(3, 6, seed=5, dtype=torch.float64).optimize(sphere, 10)
    b = PSO(3, 6, seed=5, dtype=torch.float64).optimize(sphere, 10)
    assert a.params.dtype == torch.float64 and torch.equal(a.params, b.params)


def test_hybrid_improves_on_plain_pso_on_a_smooth_function():
    f = functions["rosenbrock"]
    kw = {"bounds": (-5.0, 5.0), "seed": 0, "dtype": torch.float64}
    plain = PSO(10, 20, **kw).optimize(f, 60).fitness
    hybrid = HybridPSOGradient(f, 10, 20, refine_top=2, grad_steps=5, lr=0.02, **kw)
    values = []
    for _ in range(60):
        hybrid.tell(f(hybrid.ask()))
        values.append(hybrid.best.fitness)
    assert all(b <= a for a, b in zip(values, values[1:], strict=False))  # never worse
    assert hybrid.best.fitness < plain
    assert hybrid.gradient_evaluations == 60 * 2 * 6
    x = hybrid.ask()
    assert ((x >= -5) & (x <= 5)).all()


def test_hybrid_bad_arguments():
    f = functions["sphere"]
    with pytest.raises(ValueError, match="refine_top"):
        HybridPSOGradient(f, 3, 5, refine_top=6)
    with pytest.raises(ValueError, match="grad_optimizer"):
        HybridPSOGradient(f, 3, 5, grad_optimizer="lbfgs")
    with pytest.raises(ValueError, match="callable"):
        HybridPSOGradient(None, 3, 5)  # type: ignore[arg-type]


def test_hybrid_survives_a_nan_gradient():
    def spiky(x):
        return torch.sqrt(x).sum(-1).nan_to_num(1e9)  # NaN gradients for x < 0

    opt = HybridPSOGradient(spiky, 3, 6, (-1.0, 1.0), seed=0, grad_optimizer="sgd")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt.optimize(spiky, 5)
    assert torch.isfinite(opt.ask()).all() and math.isfinite(opt.best.fitness)


def np_reference(name: str, x: np.ndarray) -> np.ndarray:
    """The textbook formulas, written out in NumPy."""
    d = x.shape[1]
    if name == "sphere":
        return (x**2).sum(1)
    if name == "rastrigin":
        return 10 * d + (x**2 - 10 * np.cos(2 * np.pi * x)).sum(1)
    if name == "rosenbrock":
        return (100 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (1 - x[:, :-1]) ** 2).sum(1)
    return (
        -20 * np.exp(-0.2 * np.sqrt((x**2).mean(1)))
        - np.exp(np.cos(2 * np.pi * x).mean(1))
        + 20
        + np.e
    )


@pytest.mark.parametrize("name", sorted(functions))
def test_functions_match_numpy_and_have_their_minimum(name):
    rng = np.random.default_rng(0)
    b = benchmark_bounds[name]
    x = rng.uniform(-b, b, (7, 5))
    got = functions[name](torch.from_numpy(x))
    assert got.shape == (7,)
    np.testing.assert_allclose(got.numpy(), np_reference(name, x), rtol=1e-12)
    at = torch.ones(1, 5) if name == "rosenbrock" else torch.zeros(1, 5)
    assert float(functions[name](at.double())[0]) == pytest.approx(0.0, abs=1e-12)


def test_accelerator_code_path_on_the_cpu():
    """Off the CPU, draws come from a torch generator and NaN counts stay on the device
    until read; exercise that path here by switching the CPU shortcuts off."""

    def device_style(**kwargs):
        pso = PSO(4, 9, (-2.0, 2.0), topology="random", boundary="random", seed=2, **kwargs)
        pso._np_rng, pso._eager = None, False
        return pso

    a, b = device_style(), device_style()
    for step in range(6):
        fitness = sphere(a.ask())
        fitness[step] = float("nan")
        a.tell(fitness)
        if step == 2:
            with pytest.warns(RuntimeWarning, match="NaN/inf"):  # state_dict reads the count
                state = a.state_dict()
            assert state["numpy_generator"] is None and state["nonfinite_count"] == 3
            b.load_state_dict(state)
        elif step > 2:
            b.tell(fitness)
    assert torch.equal(a.ask(), b.ask())
    assert a._nonfinite_pending is not None  # not read yet: nothing waited on the device
    assert a.nonfinite_count == 6 and a._nonfinite_pending is None
    with pytest.warns(RuntimeWarning, match="NaN/inf"):
        assert b.nonfinite_count == 6
    assert torch.isfinite(a.ask()).all()
    with pytest.raises(ValueError, match="another kind of device"):
        PSO(4, 9, (-2.0, 2.0), topology="random", boundary="random").load_state_dict(state)
