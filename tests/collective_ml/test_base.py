"""Tests for colonylab.collective_ml.base: fitness checks, RNG state, flat-parameter utilities."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from colonylab.collective_ml.base import (
    PopulationOptimizer,
    batched_params_dict,
    flatten_params,
    num_params,
    params_dict_from_flat,
    unflatten_into,
)


class RandomSearch(PopulationOptimizer):
    """A minimal core: fresh uniform candidates each generation, remembers the best."""

    def __init__(self, dim: int, pop_size: int, **kwargs) -> None:
        super().__init__(dim, pop_size, **kwargs)
        self._x = self.uniform(pop_size, dim)
        self._best_x = self._x[0].clone()
        self._best_f = torch.tensor(float("inf"), dtype=self.dtype)
        self.told: list[torch.Tensor] = []

    def ask(self) -> torch.Tensor:
        return self._x

    def _tell(self, fitness: torch.Tensor) -> None:
        self.told.append(fitness)
        i = fitness.argmin()
        if fitness[i] < self._best_f:
            self._best_f, self._best_x = fitness[i].clone(), self._x[i].clone()
        self._x = self.uniform(self.pop_size, self.dim)

    def _best(self):
        return self._best_x, self._best_f

    def _state(self):
        return {"x": self._x, "best_x": self._best_x, "best_f": self._best_f}

    def _load_state(self, state):
        self._x, self._best_x, self._best_f = state["x"], state["best_x"], state["best_f"]


def sphere(x: torch.Tensor) -> torch.Tensor:
    return (x * x).sum(-1)


def test_wrong_fitness_shape_names_the_shape():
    opt = RandomSearch(3, 5)
    opt.ask()
    for bad in (torch.zeros(4), torch.zeros(5, 1), torch.zeros(())):
        with pytest.raises(ValueError, match=r"shape \(5,\).*got shape"):
            opt.tell(bad)
    assert opt.generations == 0  # nothing half-applied


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"dim": 0, "pop_size": 3}, "dim"),
        ({"dim": 2, "pop_size": 0}, "pop_size"),
        ({"dim": 2, "pop_size": 3, "seed": -1}, "seed"),
        ({"dim": 2, "pop_size": 3, "dtype": torch.int64}, "dtype"),
    ],
)
def test_bad_construction_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RandomSearch(**kwargs)


def test_nonfinite_fitness_is_worst_counted_and_warned_once():
    opt = RandomSearch(2, 4)
    fitness = torch.tensor([3.0, float("nan"), float("inf"), -float("inf")])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        opt.tell(fitness)
        opt.tell(fitness)
    assert opt.nonfinite_count == 6
    assert len([w for w in caught if issubclass(w.category, RuntimeWarning)]) == 1
    assert "NaN/inf" in str(caught[0].message)
    for told in opt.told:
        assert told.tolist() == [3.0, float("inf"), float("inf"), float("inf")]
    assert opt.best.fitness == 3.0  # -inf is not "the best"


def test_maximize_negates_and_best_reports_the_callers_sign():
    opt = RandomSearch(2, 4, maximize=True)
    with pytest.warns(RuntimeWarning, match="NaN/inf"):
        opt.tell(torch.tensor([1.0, 5.0, 2.0, float("nan")]))
    assert opt.told[0].tolist() == [-1.0, -5.0, -2.0, float("inf")]
    assert opt.best.fitness == 5.0


def test_fitness_with_a_graph_is_detached():
    opt = RandomSearch(2, 3)
    x = opt.ask().clone().requires_grad_(True)
    opt.tell(sphere(x))
    assert not opt.told[0].requires_grad


def test_fitness_of_other_dtype_and_numpy_is_accepted():
    opt = RandomSearch(2, 3, dtype=torch.float64)
    opt.tell(np.array([1, 2, 3], dtype=np.int32))
    assert opt.told[0].dtype == torch.float64


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_state_dict_round_trip_continues_identically(dtype):
    a = RandomSearch(4, 6, seed=3, dtype=dtype)
    a.optimize(sphere, 3)
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    b = RandomSearch(4, 6, seed=999, dtype=dtype)
    b.load_state_dict(state)
    assert b.generations == 3
    for _ in range(4):
        xa, xb = a.ask(), b.ask()
        assert torch.equal(xa, xb) and xa.dtype == dtype
        a.tell(sphere(xa))
        b.tell(sphere(xb))
    assert torch.equal(a.best.params, b.best.params)


def test_load_state_dict_refuses_another_shape():
    state = RandomSearch(4, 6).state_dict()
    with pytest.raises(ValueError, match="pop_size"):
        RandomSearch(4, 7).load_state_dict(state)


def test_same_seed_same_draws_and_global_rng_untouched():
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    a, b = RandomSearch(3, 4, seed=7), RandomSearch(3, 4, seed=7)
    assert torch.equal(a.uniform(5, 3), b.uniform(5, 3))
    assert torch.equal(a.randint(10, 8), b.randint(10, 8))
    assert not torch.equal(RandomSearch(3, 4, seed=8).ask(), a.ask())
    assert torch.equal(torch.rand(1), before)


def test_optimize_runs_iterations_and_validates():
    opt = RandomSearch(2, 8)
    best = opt.optimize(sphere, 5)
    assert opt.generations == 5 and best.params.shape == (2,)
    assert best.fitness == pytest.approx(float(sphere(best.params)))
    with pytest.raises(ValueError, match="iterations"):
        opt.optimize(sphere, -1)


# -- flat parameters ------------------------------------------------------------------------------
def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


def test_flatten_unflatten_round_trip():
    net = small_net()
    d = num_params(net)
    assert d == 3 * 4 + 4 + 4 * 2 + 2
    flat = flatten_params(net)
    assert flat.shape == (d,)
    other = small_net()
    with torch.no_grad():
        for p in other.parameters():
            p.zero_()
    unflatten_into(other, flat)
    x = torch.randn(5, 3)
    assert torch.equal(other(x), net(x))
    assert torch.equal(flatten_params(other), flat)
    with pytest.raises(ValueError, match=rf"\({d},\).*got \({d + 1},\)"):
        unflatten_into(other, torch.zeros(d + 1))


def test_params_dict_works_with_functional_call_and_gradients_reach_the_vector():
    net = small_net()
    flat = flatten_params(net).clone().requires_grad_(True)
    x = torch.randn(5, 3)
    out = functional_call(net, params_dict_from_flat(net, flat), (x,))
    assert torch.allclose(out, net(x))
    out.sum().backward()
    assert flat.grad is not None and flat.grad.shape == flat.shape
    assert flat.grad.abs().sum() > 0


def test_batched_params_dict_with_vmap_matches_a_loop():
    net = small_net()
    d = num_params(net)
    population = torch.randn(6, d)
    x = torch.randn(5, 3)
    params = batched_params_dict(net, population)
    assert params["0.weight"].shape == (6, 4, 3)

    def forward(p, inputs):
        return functional_call(net, p, (inputs,))

    batched = torch.vmap(forward, in_dims=(0, None))(params, x)
    assert batched.shape == (6, 5, 2)
    for i in range(6):
        single = functional_call(net, params_dict_from_flat(net, population[i]), (x,))
        assert torch.allclose(batched[i], single, atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        batched_params_dict(net, torch.zeros(d))
