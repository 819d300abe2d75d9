"""Tests for colonylab.collective_ml.es: PGPE, OpenAI-ES, CMA-ES behind ask/tell."""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from colonylab.collective_ml.es import CMAES, OPTIMIZERS, PGPE, OpenAIES, centred_ranks
from colonylab.collective_ml.pso import functions

sphere = functions["sphere"]
rastrigin = functions["rastrigin"]


def center_value(es) -> float:
    return float(sphere(es.center.unsqueeze(0))[0])


def roundtrip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


# -- centred ranks -------------------------------------------------------------------------------
def test_centred_ranks_by_hand():
    ranks = centred_ranks(torch.tensor([3.0, -1.0, 10.0, 0.5, 2.0]))
    assert ranks.tolist() == pytest.approx([0.25, -0.5, 0.5, -0.25, 0.0])
    # ties share their mean rank; several +inf rank last together
    tied = centred_ranks(torch.tensor([1.0, math.inf, 0.0, math.inf, 1.0]))
    assert tied.tolist() == pytest.approx([-0.125, 0.375, -0.5, 0.375, -0.125])
    assert centred_ranks(torch.tensor([4.0])).tolist() == [0.0]
    with pytest.raises(ValueError, match="one-dimensional"):
        centred_ranks(torch.zeros(2, 3))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-5, 5) | st.just(10**6), min_size=2, max_size=40))
def test_centred_ranks_are_in_range_sum_to_zero_and_keep_order(values):
    f = torch.tensor(values, dtype=torch.float64)
    r = centred_ranks(f)
    assert float(r.min()) >= -0.5 and float(r.max()) <= 0.5
    assert abs(float(r.sum())) < 1e-9
    # order kept, ties equal
    fi, fj = f.unsqueeze(1), f.unsqueeze(0)
    ri, rj = r.unsqueeze(1), r.unsqueeze(0)
    assert bool(((fi < fj) <= (ri < rj)).all())
    assert bool(((fi == fj) <= (ri == rj)).all())
    if len(set(values)) == len(values):
        assert float(r.min()) == -0.5 and float(r.max()) == 0.5


# -- convergence ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("optimizer", "center_lr", "tolerance"),
    [("clipup", 0.02, 5e-3), ("adam", 0.05, 1e-3), ("sgd", 0.05, 1e-3)],
)
def test_pgpe_solves_sphere(optimizer, center_lr, tolerance):
    es = PGPE(10, 40, center_init=1.0, stdev_init=0.3, center_lr=center_lr, optimizer=optimizer)
    start = center_value(es)
    best = es.optimize(sphere, 300)
    assert center_value(es) < tolerance < start
    assert best.fitness < 1e-2
    assert best.fitness == pytest.approx(float(sphere(best.params.unsqueeze(0))[0]))
    assert float(es.stdev.max()) < 0.3  # sigma adapted downwards near the optimum
    assert es.generations == 300


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_openai_es_solves_sphere(optimizer):
    lr = 0.01 if optimizer == "adam" else 0.002
    es = OpenAIES(10, 40, center_init=1.0, sigma=0.05, lr=lr, optimizer=optimizer, seed=1)
    start = center_value(es)
    es.optimize(sphere, 300)
    assert center_value(es) < 1e-3 < start


def test_openai_es_without_antithetic_sampling_also_converges():
    es = OpenAIES(10, 41, center_init=1.0, antithetic=False, seed=2)
    es.optimize(sphere, 300)
    assert center_value(es) < 1e-2


def test_cmaes_solves_sphere_and_respects_bounds():
    es = CMAES(10, x0=1.0, sigma0=0.5, seed=0)
    assert es.pop_size == 4 + int(3 * math.log(10))
    es.optimize(sphere, 150)
    assert center_value(es) < 1e-6
    assert es.best.fitness < 1e-6
    boxed = CMAES(5, 8, x0=0.5, sigma0=2.0, bounds=(0.0, 1.0), seed=0)
    for _ in range(20):
        x = boxed.ask()
        assert x.shape == (8, 5) and x.dtype == torch.float32
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
        boxed.tell(sphere(x))
    assert float(boxed.center.max()) < 0.05  # optimum sits on the lower bound


def test_pgpe_beats_random_search_on_rastrigin():
    for seed in range(3):
        es = PGPE(10, 50, center_init=3.0, stdev_init=1.0, center_lr=0.1, seed=seed)
        pgpe_best = es.optimize(rastrigin, 200).fitness
        g = torch.Generator().manual_seed(seed)
        uniform = torch.rand(200 * 50, 10, generator=g) * 10.24 - 5.12  # same evaluations
        random_best = float(rastrigin(uniform).min())
        assert pgpe_best < 0.75 * random_best, (seed, pgpe_best, random_best)


# -- the update rules ---------------------------------------------------------------------------
def test_pgpe_one_step_matches_the_documented_equations():
    dim, pop, lr, slr = 4, 6, 0.3, 0.2
    es = PGPE(
        dim,
        pop,
        center_init=torch.tensor([0.5, -1.0, 2.0, 0.0]),
        stdev_init=torch.tensor([0.1, 0.2, 0.3, 0.4]),
        center_lr=lr,
        stdev_lr=slr,
        optimizer="sgd",
        momentum=0.0,
        stdev_max_change=None,
        dtype=torch.float64,
    )
    mu, sigma = es.center.numpy(), es.stdev.numpy()
    x = es.ask().numpy()
    f = np.array([3.0, 1.0, 4.0, 1.5, 9.0, 2.6])
    es.tell(torch.from_numpy(f))
    h = pop // 2
    utility = -(np.argsort(np.argsort(f)) / (pop - 1) - 0.5)  # distinct values: plain ranks
    eps = x[:h] - mu
    up, um = utility[:h], utility[h:]
    g_mu = ((up - um) / 2) @ eps / h
    g_sigma = (((up + um) / 2 - utility.mean()) @ ((eps**2 - sigma**2) / sigma)) / h
    np.testing.assert_allclose(es.center.numpy(), mu + lr * g_mu, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(es.stdev.numpy(), sigma + slr * g_sigma, rtol=1e-12, atol=1e-12)


def test_openai_es_one_step_matches_the_paper_estimator():
    dim, pop, lr, sigma, decay = 3, 8, 0.1, 0.05, 0.01
    center = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    es = OpenAIES(
        dim,
        pop,
        center_init=center,
        sigma=sigma,
        lr=lr,
        weight_decay=decay,
        optimizer="sgd",
        momentum=0.0,
        dtype=torch.float64,
    )
    x = es.ask().numpy()
    f = np.array([5.0, 2.0, 7.0, 1.0, 3.0, 8.0, 0.0, 6.0])
    es.tell(torch.from_numpy(f))
    utility = -(np.argsort(np.argsort(f)) / (pop - 1) - 0.5)
    z = (x - center.numpy()) / sigma
    g = utility @ z / (pop * sigma) - decay * center.numpy()
    np.testing.assert_allclose(es.center.numpy(), center.numpy() + lr * g, rtol=1e-10)


def test_clipup_velocity_never_exceeds_max_speed():
    es = PGPE(10, 20, center_init=5.0, stdev_init=0.5, center_lr=0.1, seed=3)
    assert es.max_speed == pytest.approx(0.2)  # 2 * center_lr by default
    es.tell(sphere(es.ask()))
    # the first step is exactly center_lr along the normalised gradient
    assert float(es.velocity.norm()) == pytest.approx(0.1, rel=1e-5)
    speeds = []
    for _ in range(100):
        before = es.center
        es.tell(sphere(es.ask()))
        speeds.append(float(es.velocity.norm()))
        torch.testing.assert_close(es.center - before, es.velocity)
    assert max(speeds) <= 0.2 * (1 + 1e-5)
    assert max(speeds) == pytest.approx(0.2, rel=1e-4)  # the clip is reached: the test can fail


def test_stdev_change_is_clamped_relative():
    es = PGPE(6, 10, stdev_init=1.0, stdev_lr=1000.0, stdev_max_change=0.2, seed=0)
    for _ in range(10):
        before = es.stdev
        es.tell(sphere(es.ask()))
        ratio = es.stdev / before
        assert float(ratio.min()) >= 0.8 - 1e-6 and float(ratio.max()) <= 1.2 + 1e-6
    assert float((ratio - 1).abs().max()) == pytest.approx(0.2, rel=1e-4)


@pytest.mark.parametrize("make", [lambda: PGPE(5, 8, center_init=1.5), lambda: OpenAIES(5, 8)])
def test_antithetic_samples_are_symmetric_around_the_center(make):
    es = make()
    for _ in range(3):
        x = es.ask()
        assert es.ask() is x  # the same candidates until tell
        h = es.pop_size // 2
        torch.testing.assert_close((x[:h] + x[h:]) / 2, es.center.expand(h, -1))
        assert not torch.equal(x[:h], x[h:])
        es.tell(sphere(x))


def test_ranks_make_updates_invariant_to_monotone_transforms():
    a = PGPE(6, 10, center_init=2.0, seed=4)
    b = PGPE(6, 10, center_init=2.0, seed=4)
    for _ in range(20):
        a.tell(sphere(a.ask()))
        b.tell(3.0 * sphere(b.ask()) + 7.0)
    assert torch.equal(a.center, b.center) and torch.equal(a.stdev, b.stdev)


def test_weight_decay_pulls_the_center_to_zero_on_flat_fitness():
    es = OpenAIES(4, 6, center_init=1.0, weight_decay=0.5, optimizer="sgd", lr=0.1, momentum=0.0)
    for _ in range(10):
        es.ask()
        es.tell(torch.zeros(6))  # all tied: no gradient, only the decay
    torch.testing.assert_close(es.center, torch.full((4,), 0.95**10))


# -- state ---------------------------------------------------------------------------------------
CASES = {
    "pgpe-clipup": (PGPE, {"dim": 6, "pop_size": 10, "center_init": 1.0, "seed": 7}),
    "pgpe-adam": (
        PGPE,
        {"dim": 6, "pop_size": 10, "center_init": 1.0, "optimizer": "adam", "seed": 7},
    ),
    "openai-es": (
        OpenAIES,
        {"dim": 6, "pop_size": 10, "center_init": 1.0, "weight_decay": 0.01, "seed": 7},
    ),
    "cma-es": (
        CMAES,
        {"dim": 6, "pop_size": 8, "x0": 1.0, "sigma0": 0.3, "bounds": (-2.0, 2.0), "seed": 7},
    ),
}


def make(name: str, **extra):
    cls, kwargs = CASES[name]
    return cls(**kwargs, **extra)


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("between_ask_and_tell", [False, True])
def test_state_dict_roundtrip_continues_identically(name, between_ask_and_tell):
    original = make(name)
    for _ in range(5):
        original.tell(sphere(original.ask()))
    if between_ask_and_tell:
        original.ask()
    state = roundtrip(original.state_dict())
    resumed = make(name)
    resumed.load_state_dict(state)
    assert resumed.generations == original.generations == 5
    for _ in range(4):
        x, y = original.ask(), resumed.ask()
        assert torch.equal(x, y)
        original.tell(sphere(x))
        resumed.tell(sphere(y))
    assert torch.equal(original.center, resumed.center)
    assert original.best.fitness == resumed.best.fitness
    # a fresh core with the same seed and no state would have drawn other candidates
    fresh = make(name)
    assert not torch.equal(fresh.ask(), original.ask())


def test_load_state_dict_refuses_another_kind_or_shape():
    state = PGPE(6, 10).state_dict()
    with pytest.raises(ValueError, match="arguments the state was saved"):
        OpenAIES(6, 10).load_state_dict(state)
    with pytest.raises(ValueError, match="arguments the state was saved"):
        PGPE(7, 10).load_state_dict(state)


def _leaves(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _leaves(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def test_cma_state_holds_numbers_only():
    """No pickled blob: tensors, numbers, booleans, None, and only the codec's own keys
    and the strategy's attribute names as strings."""
    es = CMAES(3, 6, bounds=(-1.0, 1.0), seed=2)
    for _ in range(3):
        es.tell(sphere(es.ask()))
    es.ask()
    state = roundtrip(es.state_dict())["state"]
    for leaf in _leaves(state):
        assert leaf is None or isinstance(leaf, (bool, int, float, str, torch.Tensor)), leaf
        if isinstance(leaf, torch.Tensor):
            assert leaf.dtype != torch.uint8 or leaf.dim() != 1 or leaf.numel() < 64
    # the owned generator's state is part of it
    assert "__rng__" in str(state["cma"])


def test_cma_state_refuses_a_malicious_pickle(tmp_path):
    """An old-style state whose "cma" is a pickled blob (here one whose __reduce__ runs
    a shell command) is refused without unpickling; so is a crafted numbers-only state
    that names dunder attributes or unknown entries."""
    import os
    import pickle

    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    es = CMAES(3, 6, seed=1)
    state = es.state_dict()
    blob = pickle.dumps(Exploit())
    state["state"]["cma"] = torch.frombuffer(bytearray(blob), dtype=torch.uint8)
    with pytest.raises(ValueError, match="pickled strategy is refused"):
        CMAES(3, 6, seed=1).load_state_dict(roundtrip(state))
    assert not marker.exists()
    good = es.state_dict()
    for bad, match in (
        ({"__class__": {"__o__": {}}}, "attribute '__class__'"),
        ({"sigma": {"__reduce__": "os.system"}}, "entry with keys"),
        ({"sigma": {"__a__": torch.zeros(1), "dtype": "object"}}, "dtype 'object'"),
        ({"sigma": "__import__('os')"}, "a str"),
    ):
        crafted = {**good["state"], "cma": {"__o__": {**good["state"]["cma"]["__o__"], **bad}}}
        with pytest.raises(ValueError, match=match):
            CMAES(3, 6, seed=1).load_state_dict({**good, "state": crafted})


# -- bad fitness, maximize ----------------------------------------------------------------------
@pytest.mark.parametrize("name", CASES)
def test_nonfinite_fitness_is_counted_and_the_center_stays_finite(name):
    es = make(name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for generation in range(30):
            x = es.ask()
            f = sphere(x)
            f[0] = math.nan
            f[1] = math.inf
            if generation == 3:
                f[:] = math.nan  # a whole generation lost
            es.tell(f)
    assert es.nonfinite_count == 2 * 29 + es.pop_size
    assert sum(issubclass(w.category, RuntimeWarning) for w in caught) == 1
    assert bool(torch.isfinite(es.center).all()) and bool(torch.isfinite(es.ask()).all())
    assert math.isfinite(es.best.fitness)
    assert center_value(es) < 6.0  # still improving from the start at 1.0 per coordinate


@pytest.mark.parametrize("name", CASES)
def test_maximize_climbs_the_negated_sphere(name):
    es = make(name)
    maximizer = make(name, maximize=True)
    for _ in range(60):
        x, y = es.ask(), maximizer.ask()
        assert torch.equal(x, y)
        es.tell(sphere(x))
        maximizer.tell(-sphere(y))
    assert torch.equal(es.center, maximizer.center)
    assert maximizer.best.fitness == -es.best.fitness
    assert maximizer.best.fitness <= 0.0


def test_tell_before_ask_and_wrong_shapes_are_refused():
    for es in (PGPE(3, 4), OpenAIES(3, 4), CMAES(3, 4)):
        with pytest.raises(RuntimeError, match="ask"):
            es.tell(torch.zeros(4))
        es.ask()
        with pytest.raises(ValueError, match=r"shape \(4,\)"):
            es.tell(torch.zeros(5))


# -- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: PGPE(0, 4), "dim"),
        (lambda: PGPE(3, 5), "even"),
        (lambda: PGPE(3, 1, symmetric=False), "pop_size must be >= 2"),
        (lambda: PGPE(3, 4, stdev_init=0.0), "stdev_init must be"),
        (lambda: PGPE(3, 4, stdev_init=-0.1), "stdev_init must be"),
        (lambda: PGPE(3, 4, stdev_init=torch.tensor([0.1, 0.0, 0.1])), "stdev_init must be > 0"),
        (lambda: PGPE(3, 4, stdev_init=[0.1, 0.1]), r"shape \(3,\)"),
        (lambda: PGPE(3, 4, center_init=[math.nan, 0.0, 0.0]), "finite"),
        (lambda: PGPE(3, 4, optimizer="rmsprop"), "unknown optimizer 'rmsprop'"),
        (lambda: PGPE(3, 4, center_lr=0.0), "center_lr"),
        (lambda: PGPE(3, 4, max_speed=-1.0), "max_speed"),
        (lambda: PGPE(3, 4, momentum=1.0), "momentum"),
        (lambda: PGPE(3, 4, stdev_max_change=1.5), "stdev_max_change"),
        (lambda: PGPE(3, 4, adam_betas=(0.9, 1.0)), "adam_betas"),
        (lambda: OpenAIES(3, 5), "even"),
        (lambda: OpenAIES(3, 4, sigma=0.0), "sigma must be"),
        (lambda: OpenAIES(3, 4, optimizer="clipup"), "unknown optimizer 'clipup'"),
        (lambda: OpenAIES(3, 4, weight_decay=-1.0), "weight_decay"),
        (lambda: CMAES(0), "dim"),
        (lambda: CMAES(3, 1), "pop_size must be >= 2"),
        (lambda: CMAES(3, sigma0=0.0), "sigma0"),
        (lambda: CMAES(3, bounds=(1.0, 1.0)), "lo < hi"),
        (lambda: CMAES(3, options={"popsize": 9}), "popsize"),
    ],
)
def test_bad_arguments_raise_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_optimizer_names_and_defaults():
    assert OPTIMIZERS == ("clipup", "adam", "sgd")
    es = PGPE(3, 4)
    assert (es.optimizer, es.center_lr, es.max_speed) == ("clipup", 0.15, pytest.approx(0.3))
    assert es.ask().shape == (4, 3) and es.ask().dtype == torch.float32
    assert torch.equal(
        OpenAIES(3, 4, dtype=torch.float64).center, torch.zeros(3, dtype=torch.float64)
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_pgpe_runs_on_cuda():
    es = PGPE(
        10, 40, center_init=1.0, stdev_init=0.3, center_lr=0.05, optimizer="adam", device="cuda"
    )
    es.optimize(sphere, 200)
    assert es.ask().device.type == "cuda"
    assert center_value(es) < 1e-2
    again = PGPE(
        10, 40, center_init=1.0, stdev_init=0.3, center_lr=0.05, optimizer="adam", device="cuda"
    )
    again.load_state_dict(es.state_dict())
    assert torch.equal(again.ask(), es.ask())
