"""Population evaluators: batched == per-individual loop over Gymnasium for the same seeds,
chunking and dropping finished episodes change nothing, Ray == in-process and survives
killed actors, and the cores improve a CartPole policy through them."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from colonylab.collective_ml.base import flatten_params
from colonylab.collective_ml.es import PGPE
from colonylab.collective_ml.population import (
    BatchedEvaluator,
    LoopEvaluator,
    RayEvaluator,
    episode_seeds,
)
from colonylab.collective_ml.pso import PSO
from colonylab.envs.classic import CartPoleWorld

FACTORY = CartPoleWorld.factory(validate_actions=False)


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))


def balancer() -> torch.Tensor:
    """Flat weights of an ``mlp()`` that balances: hidden unit 0 reads the balance rule
    ``theta + 0.4 theta_dot + 0.02 x + 0.1 x_dot``, the logits are -h0 and +h0."""
    net = mlp()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net[0].weight[0] = 5 * torch.tensor([0.02, 0.1, 1.0, 0.4])
        net[2].weight[:, 0] = torch.tensor([-1.0, 1.0])
    return flatten_params(net)


def population(pop: int, seed: int = 0) -> torch.Tensor:
    """A third noisy balancers (long episodes, some reach 500), the rest random (short)."""
    gen = torch.Generator().manual_seed(seed)
    out = torch.randn(pop, 58, generator=gen)
    good = pop // 3
    out[:good] = balancer() + 0.3 * out[:good]
    return out


@pytest.fixture(scope="module")
def params() -> torch.Tensor:
    return population(12)


def test_episode_seeds_are_a_pure_function_of_seed_index_episode():
    full = episode_seeds(3, 10, 4)
    assert full.shape == (10, 4) and full.dtype == np.int64 and (full >= 0).all()
    assert len(np.unique(full)) == 40
    np.testing.assert_array_equal(episode_seeds(3, np.arange(6, 10), 4), full[6:])
    assert not np.array_equal(episode_seeds(4, 10, 4), full)
    shared = episode_seeds(3, 10, 4, shared=True)
    assert (shared == shared[0]).all()
    with pytest.raises(ValueError, match="seed"):
        episode_seeds(-1, 3, 2)


def test_batched_equals_a_loop_over_gymnasium_for_the_same_seeds(params):
    batched = BatchedEvaluator(mlp(), FACTORY, episodes=3, seed=7)
    loop = LoopEvaluator(mlp(), lambda: gym.make("CartPole-v1"), episodes=3, seed=7)
    ours, theirs = batched.returns(params), loop.returns(params)
    assert ours.shape == (12, 3)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    assert batched.last_env_steps == loop.last_env_steps == int(theirs.sum())
    assert theirs.max() == 500 and theirs.min() < 50  # long and short episodes both tested
    torch.testing.assert_close(batched(params), theirs.mean(1), rtol=0, atol=1e-6)


def test_chunks_dropping_and_sharing(params):
    ev = BatchedEvaluator(mlp(), FACTORY, episodes=2, seed=1)
    full = ev.returns(params)
    # a chunk evaluated alone, with its index offset, gives the same rows
    torch.testing.assert_close(ev.returns(params[5:9], first_index=5), full[5:9], rtol=0, atol=0)
    # dropping finished episodes is an optimisation only
    keep_all = BatchedEvaluator(mlp(), FACTORY, episodes=2, seed=1, drop_finished=False)
    torch.testing.assert_close(keep_all.returns(params), full, rtol=0, atol=0)
    # another seed, other episodes; shared episodes: identical policies score identically
    assert not torch.equal(ev.returns(params, seed=2), full)
    shared = BatchedEvaluator(mlp(), FACTORY, episodes=2, seed=1, shared_episodes=True)
    same = params[3:4].repeat(4, 1)
    assert (shared(same) == shared(same)[0]).all()


def test_bad_params_and_options_are_refused():
    ev = BatchedEvaluator(mlp(), FACTORY)
    with pytest.raises(ValueError, match=r"\(P, 58\)"):
        ev(torch.zeros(3, 57))
    with pytest.raises(ValueError, match=r"\(P, 58\)"):
        ev(torch.zeros(58))
    with pytest.raises(ValueError, match="episodes"):
        BatchedEvaluator(mlp(), FACTORY, episodes=0)
    with pytest.raises(ValueError, match="seed"):
        LoopEvaluator(mlp(), lambda: gym.make("CartPole-v1"), seed=-1)


def test_pso_improves_a_cartpole_policy_through_the_batched_evaluator():
    ev = BatchedEvaluator(mlp(), FACTORY, episodes=2, shared_episodes=True, seed=0)
    pso = PSO(58, 16, bounds=(-2.0, 2.0), topology="ring", seed=0, maximize=True)
    first = ev(pso.ask())
    pso.tell(first)
    for _ in range(5):
        pso.tell(ev(pso.ask()))
    assert pso.best.fitness > first.max() and pso.best.fitness >= 200


def test_pgpe_improves_a_cartpole_policy_through_the_batched_evaluator():
    torch.manual_seed(0)
    center = flatten_params(mlp())
    ev = BatchedEvaluator(mlp(), FACTORY, episodes=4, shared_episodes=True, seed=0)
    es = PGPE(58, 32, center_init=center, stdev_init=0.1, seed=0, maximize=True)
    before = float(ev(center[None]))
    for generation in range(8):
        es.tell(ev(es.ask(), seed=generation))
    after = float(ev(es.center[None]))
    assert after > before + 50, (before, after)


# -- Ray -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            ignore_reinit_error=True,
        )
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def ray_evaluator(ray_local):
    ev = RayEvaluator(mlp(), FACTORY, episodes=3, seed=7, num_actors=2, chunks_per_actor=2)
    ev.wait_ready()
    yield ev
    ev.shutdown()


def test_ray_equals_in_process(ray_evaluator, params):
    expected = BatchedEvaluator(mlp(), FACTORY, episodes=3, seed=7).returns(params)
    got = ray_evaluator.returns(params)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    assert ray_evaluator.last_env_steps == int(expected.sum())
    torch.testing.assert_close(ray_evaluator(params, seed=3), BatchedEvaluator(
        mlp(), FACTORY, episodes=3, seed=3)(params), rtol=0, atol=1e-6)  # fmt: skip


def test_ray_survives_actors_killed_between_and_during_calls(ray_evaluator, ray_local, params):
    expected = BatchedEvaluator(mlp(), FACTORY, episodes=3, seed=7).returns(params)
    # killed between calls, allowed to restart: Ray restarts it and runs the tasks
    ray_local.kill(ray_evaluator.actors[0], no_restart=False)
    torch.testing.assert_close(ray_evaluator.returns(params), expected, rtol=0, atol=1e-6)
    # killed for good: its chunks fail with RayActorError and go to a fresh actor.
    # (Killed before the call, not by a timer during it, so the test cannot race.)
    big = params.repeat(4, 1)
    expected_big = BatchedEvaluator(mlp(), FACTORY, episodes=3, seed=7).returns(big)
    before = ray_evaluator.resubmissions
    victim = ray_evaluator.actors[1]
    ray_local.kill(victim, no_restart=True)
    got = ray_evaluator.returns(big)
    torch.testing.assert_close(got, expected_big, rtol=0, atol=1e-6)
    assert ray_evaluator.resubmissions > before and ray_evaluator.actors[1] is not victim


def test_ray_refuses_bad_params(ray_evaluator):
    with pytest.raises(ValueError, match=r"\(P, 58\)"):
        ray_evaluator(torch.zeros(2, 3))


# -- make_evaluator: the experiments' --evaluator / --ray-address ---------------------------------
def test_make_evaluator_builds_each_kind_and_refuses_bad_choices():
    from colonylab.collective_ml.population import make_evaluator

    policy = mlp()
    batched = make_evaluator("batched", policy, world_factory=FACTORY, episodes=2, seed=3)
    loop = make_evaluator(
        "loop", policy, env_factory=lambda: gym.make("CartPole-v1"), episodes=2, seed=3
    )
    assert isinstance(batched, BatchedEvaluator) and isinstance(loop, LoopEvaluator)
    params = torch.stack([flatten_params(policy), flatten_params(mlp())])
    np.testing.assert_allclose(batched(params).numpy(), loop(params).numpy())
    with pytest.raises(ValueError, match="--evaluator must be one of"):
        make_evaluator("mpi", policy, world_factory=FACTORY)
    with pytest.raises(ValueError, match="--ray-address"):
        make_evaluator("batched", policy, world_factory=FACTORY, ray_address="10.0.0.1:6379")
    with pytest.raises(ValueError, match="single-environment"):
        make_evaluator("loop", policy, world_factory=FACTORY)


@pytest.mark.parametrize(
    ("address", "match"),
    [("127.0.0.1:1", "nothing answers at 127.0.0.1:1"), ("nonsense", "expected HOST:PORT")],
)
def test_unreachable_ray_address_is_refused_at_once(address, match):
    from colonylab.collective_ml.population import init_ray

    pytest.importorskip("ray")
    with pytest.raises(ValueError, match=match):
        init_ray(address)
