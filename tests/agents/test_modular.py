"""Modular policies: shared weights (same limb input -> same output wherever the limb
is), any tree (a body gets the same torques alone or padded in a mixed batch), messages
carry information (SMP) or not (independent), permutation equivariance of the
transformer, population evaluation with vmap, refusals."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call, stack_module_state, vmap

from colonylab.agents.modular import (
    BodyMLP,
    IndependentLimbs,
    LimbTransformer,
    SharedModularPolicy,
    build_modular,
    depths,
)

D = 15
# walker_7 (torso, thigh, leg, foot, left_thigh, left_leg, left_foot), a 3-limb chain,
# a star (torso with three children)
TREES = {
    "walker7": [-1, 0, 1, 2, 0, 4, 5],
    "chain3": [-1, 0, 1],
    "star4": [-1, 0, 0, 0],
}
MODELS = {
    "smp": lambda: SharedModularPolicy(D, message=8, hidden=16),
    "independent": lambda: IndependentLimbs(D, hidden=16),
    "transformer": lambda: LimbTransformer(D, width=16, heads=2, layers=2),
}


def _batch(trees, L=None, gen=None, pad_value=0.0):
    L = L or max(len(t) for t in trees)
    B = len(trees)
    parents = torch.full((B, L), -1, dtype=torch.int64)
    mask = torch.zeros(B, L, dtype=torch.bool)
    obs = torch.full((B, L, D), pad_value)
    for b, t in enumerate(trees):
        parents[b, : len(t)] = torch.tensor(t)
        mask[b, : len(t)] = True
        obs[b, : len(t)] = torch.randn(len(t), D, generator=gen)
    return obs, parents, mask


def test_depths():
    _, parents, _ = _batch([TREES["walker7"], TREES["star4"]])
    assert depths(parents).tolist() == [[0, 1, 2, 3, 1, 2, 3], [0, 1, 1, 1, 0, 0, 0]]


@pytest.mark.parametrize("name", list(MODELS))
def test_a_body_alone_or_padded_in_a_mixed_batch_gets_the_same_torques(name):
    torch.manual_seed(0)
    model = MODELS[name]()
    gen = torch.Generator().manual_seed(1)
    trees = list(TREES.values())
    obs, parents, mask = _batch(trees, gen=gen, pad_value=123.0)  # garbage padding
    together = model(obs, parents, mask)
    assert together.shape == (3, 7) and not together[~mask].any()
    for b, t in enumerate(trees):
        L = len(t)
        alone = model(obs[b : b + 1, :L], parents[b : b + 1, :L], mask[b : b + 1, :L])
        torch.testing.assert_close(alone[0], together[b, :L], atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", list(MODELS))
def test_shared_weights_mirror_limbs_get_mirror_torques(name):
    """Walker_7 with the left leg seeing exactly what the right leg sees: every model
    with shared limb weights gives both legs the same torques."""
    torch.manual_seed(0)
    model = MODELS[name]()
    obs, parents, mask = _batch([TREES["walker7"]], gen=torch.Generator().manual_seed(2))
    obs[0, 4:7] = obs[0, 1:4]
    act = model(obs, parents, mask)[0]
    torch.testing.assert_close(act[1:4], act[4:7], atol=1e-6, rtol=0)


def test_independent_limbs_depend_only_on_their_own_state():
    torch.manual_seed(0)
    model = IndependentLimbs(D, hidden=16)
    obs, parents, mask = _batch([TREES["walker7"], TREES["chain3"]])
    obs[1, 2] = obs[0, 5]  # same input, other body, other slot
    act = model(obs, parents, mask)
    assert torch.allclose(act[1, 2], act[0, 5])


def test_smp_messages_carry_information_the_independent_policy_ignores():
    torch.manual_seed(0)
    smp, ind = SharedModularPolicy(D, message=8, hidden=16), IndependentLimbs(D, hidden=16)
    obs, parents, mask = _batch([TREES["walker7"]], gen=torch.Generator().manual_seed(3))
    changed = obs.clone()
    changed[0, 6] += 1.0  # the left foot
    for model, moves in ((smp, True), (ind, False)):
        before, after = model(obs, parents, mask)[0], model(changed, parents, mask)[0]
        assert (not torch.allclose(before[1], after[1])) == moves  # the right thigh


def test_transformer_is_permutation_equivariant():
    torch.manual_seed(0)
    model = LimbTransformer(D, width=16, heads=2)
    obs, parents, mask = _batch([TREES["walker7"]], gen=torch.Generator().manual_seed(4))
    perm = torch.tensor([0, 4, 5, 6, 1, 2, 3])
    act = model(obs, parents, mask)
    act_p = model(obs[:, perm], parents, mask)
    torch.testing.assert_close(act_p, act[:, perm], atol=1e-6, rtol=0)


def test_body_mlp_is_per_body():
    model = BodyMLP(D, 7, hidden=(16,))
    obs, parents, mask = _batch([TREES["walker7"]])
    assert model(obs, parents, mask).shape == (1, 7)
    obs3, parents3, mask3 = _batch([TREES["chain3"]])
    with pytest.raises(ValueError, match="one per body"):
        model(obs3, parents3, mask3)


@pytest.mark.parametrize("name", list(MODELS))
def test_population_of_parameters_with_vmap(name):
    torch.manual_seed(0)
    members = [MODELS[name]() for _ in range(3)]
    params, buffers = stack_module_state(members)
    base = MODELS[name]().to("meta")
    obs, parents, mask = _batch(list(TREES.values()), gen=torch.Generator().manual_seed(5))

    def run(p, b, o):
        return functional_call(base, (p, b), (o, parents, mask))

    out = vmap(run, in_dims=(0, 0, None))(params, buffers, obs)
    for k, m in enumerate(members):
        torch.testing.assert_close(out[k], m(obs, parents, mask), atol=1e-5, rtol=0)


def test_build_and_refusals():
    assert isinstance(build_modular({"type": "smp", "obs_dim": 19}), SharedModularPolicy)
    assert isinstance(
        build_modular({"type": "body-mlp", "obs_dim": 15, "num_limbs": 4, "hidden": [8]}), BodyMLP
    )
    with pytest.raises(ValueError, match="type"):
        build_modular({"type": "gnn"})
    with pytest.raises(ValueError, match="does not fit"):
        build_modular({"type": "smp", "obs_dim": 19, "width": 3})
    model = SharedModularPolicy(D)
    with pytest.raises(ValueError, match=r"obs must be \[B, L, 15\]"):
        model(
            torch.zeros(2, 3, 14),
            torch.zeros(2, 3, dtype=torch.int64),
            torch.ones(2, 3, dtype=torch.bool),
        )


def test_normalized_wrapper_feeds_the_inner_policy_normalised_limbs():
    from colonylab.agents.modular import NormalizedModular

    wrapped = build_modular({"type": "independent", "obs_dim": D, "hidden": 8, "obs_norm": True})
    assert isinstance(wrapped, NormalizedModular)
    assert {n for n, _ in wrapped.named_buffers()} == {"obs_mean", "obs_std"}
    gen = torch.Generator().manual_seed(0)
    obs, parents, mask = _batch([TREES["walker7"], TREES["chain3"]], gen=gen)
    mean, std = torch.randn(D, generator=gen), torch.rand(D, generator=gen) + 0.5
    wrapped.set_stats(mean, std)
    inner_input = ((obs - mean) / std).clamp(-10, 10) * mask[..., None]
    torch.testing.assert_close(
        wrapped(obs, parents, mask), wrapped.policy(inner_input, parents, mask)
    )
    again = build_modular({"type": "independent", "obs_dim": D, "hidden": 8, "obs_norm": True})
    again.load_state_dict(wrapped.state_dict())
    assert torch.equal(again.obs_std, wrapped.obs_std.float())
