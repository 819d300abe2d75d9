"""AttentionNeuron: permutation invariance, variable N, patches, bad input, vmap; the
vision variant AttentionGridPolicy (fixed 2-D queries, a latent grid)."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

from colonylab.agents.sensory import (
    AttentionGridPolicy,
    AttentionNeuron,
    AttentionNeuronPolicy,
    SensoryState,
    grid_queries,
    patchify,
    sinusoidal_queries,
    unpatchify,
)
from colonylab.collective_ml.base import batched_params_dict, flatten_params, num_params

ATOL = 1e-5


def make_policy(seed: int = 0, **kwargs) -> AttentionNeuronPolicy:
    torch.manual_seed(seed)
    return AttentionNeuronPolicy(**{"act_dim": 1, **kwargs})


def permute_state(state: SensoryState, perm: torch.Tensor) -> SensoryState:
    """Move per-neuron states along with their inputs (neuron axis is -2)."""
    return SensoryState(state.h[..., perm, :], state.c[..., perm, :], state.prev_action)


def rollout(policy, observations, perms=None, *, move_state=True):
    """Run ``policy`` over ``observations`` (T, B, N[, D]); ``perms[t]`` shuffles step t."""
    state, actions = None, []
    previous = None
    for t, obs in enumerate(observations):
        if perms is not None:
            perm = perms[t]
            if state is not None and move_state:
                # Re-index the old state from the old order to the new one.
                to_new = torch.argsort(previous)[perm]
                state = permute_state(state, to_new)
            obs = obs[:, perm] if obs.dim() >= 2 else obs[perm]
            previous = perm
        action, state = policy(obs, state)
        actions.append(action)
    return torch.stack(actions), state


def test_cartpole_config_is_small():
    policy = make_policy()
    count = num_params(policy)
    print(f"AttentionNeuronPolicy(act_dim=1) for CartPole (obs 5): {count} parameters")
    assert count < 2000
    assert sum(b.numel() for b in policy.state_dict().values()) == count  # queries not saved


def test_queries_are_fixed_sinusoids():
    q = sinusoidal_queries(4, 6)
    assert q.shape == (4, 6)
    assert torch.allclose(q[0], torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]))
    assert torch.allclose(q[1, 0], torch.sin(torch.tensor(1.0)))
    layer = AttentionNeuron(act_dim=1)
    assert "queries" not in dict(layer.named_parameters())


@pytest.mark.parametrize("batched", [True, False])
def test_fixed_permutation_gives_same_episode(batched):
    policy = make_policy(output="linear")
    gen = torch.Generator().manual_seed(1)
    observations = torch.randn(6, 3, 5, generator=gen)
    if not batched:
        observations = observations[:, 0]
    reference, _ = rollout(policy, observations)
    for _ in range(3):
        perm = torch.randperm(5, generator=gen)
        shuffled, _ = rollout(policy, observations, [perm] * 6)
        torch.testing.assert_close(shuffled, reference, atol=ATOL, rtol=0)
    assert reference.shape == ((6, 3, 1) if batched else (6, 1))


def test_latent_and_attention_are_permutation_invariant():
    torch.manual_seed(0)
    layer = AttentionNeuron(act_dim=2, input_dim=3, num_queries=4)
    neurons = torch.randn(2, 7, 3)
    prev = torch.randn(2, 2)
    h, c = torch.randn(2, 7, 8), torch.randn(2, 7, 8)
    latent, attention, h1, c1 = layer(neurons, prev, h, c)
    perm = torch.randperm(7)
    latent_p, attention_p, h1_p, c1_p = layer(neurons[:, perm], prev, h[:, perm], c[:, perm])
    torch.testing.assert_close(latent_p, latent, atol=ATOL, rtol=0)
    torch.testing.assert_close(attention_p, attention[:, :, perm], atol=ATOL, rtol=0)
    torch.testing.assert_close(h1_p, h1[:, perm], atol=ATOL, rtol=0)
    torch.testing.assert_close(c1_p, c1[:, perm], atol=ATOL, rtol=0)
    assert latent.shape == (2, 4, 3)
    torch.testing.assert_close(attention.sum(-1), torch.ones(2, 4))


def test_reshuffle_mid_episode_with_states_moved_along_is_exact():
    policy = make_policy(output="linear")
    gen = torch.Generator().manual_seed(2)
    observations = torch.randn(8, 4, 5, generator=gen)
    reference, _ = rollout(policy, observations)
    # A new permutation every step; the per-neuron states follow their channel.
    perms = [torch.randperm(5, generator=gen) for _ in range(8)]
    shuffled, _ = rollout(policy, observations, perms)
    torch.testing.assert_close(shuffled, reference, atol=ATOL, rtol=0)
    # Without moving the states each neuron inherits another channel's memory: the
    # output differs (the agent re-adapts over a few steps instead).
    perms = [torch.arange(5)] * 4 + [torch.tensor([4, 3, 2, 1, 0])] * 4
    stale, _ = rollout(policy, observations, perms, move_state=False)
    torch.testing.assert_close(stale[:4], reference[:4], atol=ATOL, rtol=0)
    assert not torch.allclose(stale[4:], reference[4:], atol=ATOL)


def test_number_of_inputs_may_change_between_episodes():
    policy = make_policy()
    action4, state4 = policy(torch.randn(2, 4))
    action9, state9 = policy(torch.randn(2, 9))
    assert action4.shape == action9.shape == (2, 1)
    assert state4.h.shape == (2, 4, 8) and state9.h.shape == (2, 9, 8)
    # Mid-episode the state must match N.
    with pytest.raises(ValueError, match="N=9"):
        policy(torch.randn(2, 9), state4)
    # The stateful path re-creates its state on reset.
    policy.reset_state()
    policy.act(torch.randn(4))
    policy.act(torch.randn(4))
    assert policy.last_attention.shape == (16, 4)
    with pytest.raises(ValueError, match="reset_state"):
        policy.act(torch.randn(9))
    policy.reset_state()
    assert policy.act(torch.randn(9)).shape == (1,)


def test_patches_are_permutation_invariant():
    policy = make_policy(act_dim=3, input_dim=2 * 2 * 3, num_queries=6, output="linear")
    gen = torch.Generator().manual_seed(3)
    images = torch.rand(4, 2, 8, 6, 3, generator=gen)  # (T, B, H, W, C)
    patches = torch.stack([patchify(img, 2) for img in images])  # (T, B, 12, 12)
    assert patches.shape == (4, 2, 12, 12)
    reference, _ = rollout(policy, patches)
    shuffled, _ = rollout(policy, patches, [torch.randperm(12, generator=gen) for _ in range(4)])
    torch.testing.assert_close(shuffled, reference, atol=ATOL, rtol=0)
    assert reference.shape == (4, 2, 3)


def test_feed_action_off_ignores_the_previous_action():
    obs = torch.randn(3, 5)
    fed = make_policy(act_dim=2)
    blind = make_policy(act_dim=2, feed_action=False)
    state = blind.initial_state(obs)
    other = SensoryState(state.h, state.c, torch.randn(3, 2))
    torch.testing.assert_close(blind(obs, other)[0], blind(obs, state)[0], atol=0, rtol=0)
    # the same weights with feedback on do react to it
    assert not torch.allclose(fed(obs, other)[0], fed(obs, state)[0])


def test_feed_forward_neurons_forget_their_state():
    obs = torch.randn(3, 5)
    policy = make_policy(act_dim=2, recurrent=False, feed_action=False)
    assert not policy.recurrent and make_policy(recurrent=False).recurrent  # action fed
    state = policy.initial_state(obs)
    _, later = policy(torch.randn(3, 5), state)  # a non-zero state
    torch.testing.assert_close(policy(obs, later)[0], policy(obs, state)[0], atol=0, rtol=0)
    # still exactly permutation invariant, frame by frame
    perm = torch.randperm(5)
    torch.testing.assert_close(policy(obs[:, perm])[0], policy(obs)[0], atol=ATOL, rtol=0)


def test_patchify_round_trip_and_layout():
    image = torch.arange(2 * 4 * 6 * 3, dtype=torch.float32).reshape(2, 4, 6, 3)
    patches = patchify(image, 2)
    assert patches.shape == (2, 6, 12)
    torch.testing.assert_close(patches[0, 1], image[0, 0:2, 2:4].reshape(-1))
    torch.testing.assert_close(patches[1, 4], image[1, 2:4, 2:4].reshape(-1))
    torch.testing.assert_close(unpatchify(patches, 4, 6, 2), image)
    torch.testing.assert_close(unpatchify(patchify(image[0], 2), 4, 6, 2), image[0])
    with pytest.raises(ValueError, match="patch size 4"):
        patchify(image, 4)  # divides H=4 but not W=6
    with pytest.raises(ValueError, match="channels last"):
        patchify(torch.zeros(4, 6), 2)
    with pytest.raises(ValueError, match="do not tile"):
        unpatchify(patches, 4, 4, 2)


def test_bad_input_is_refused():
    policy = make_policy()
    with pytest.raises(ValueError, match="vector observations"):
        policy(torch.randn(2, 5, 3))
    patch_policy = make_policy(input_dim=12)
    with pytest.raises(ValueError, match="patch observations"):
        patch_policy(torch.randn(2, 5, 7))
    with pytest.raises(ValueError, match="patch observations"):
        patch_policy(torch.randn(5))
    _, state = policy(torch.randn(2, 5))
    bad = state._replace(prev_action=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="act_dim=1"):
        policy(torch.randn(2, 5), bad)
    with pytest.raises(ValueError, match="act_dim"):
        AttentionNeuronPolicy(act_dim=0)
    with pytest.raises(ValueError, match="output"):
        AttentionNeuronPolicy(act_dim=1, output="softmax")


def test_population_forward_under_vmap():
    policy = make_policy(output="linear")
    population = 0.5 * torch.randn(
        4, num_params(policy), generator=torch.Generator().manual_seed(5)
    )
    params = batched_params_dict(policy, population)
    obs = torch.randn(6, 3, 5)  # (T, B, N), shared by every individual

    def step(p, x, state):
        return functional_call(policy, p, (x, state))

    initial = policy.initial_state(obs[0])
    state = SensoryState(*(t.expand(4, *t.shape) for t in initial))  # (P, ...)
    vmapped = []
    for x in obs:
        action, state = torch.vmap(step, in_dims=(0, None, 0))(params, x, state)
        vmapped.append(action)
    vmapped = torch.stack(vmapped, 1)  # (P, T, B, 1)
    assert vmapped.shape == (4, 6, 3, 1)
    for i in range(4):
        single = make_policy(output="linear")
        with torch.no_grad():
            flat = population[i]
            offset = 0
            for p in single.parameters():
                p.copy_(flat[offset : offset + p.numel()].view_as(p))
                offset += p.numel()
        torch.testing.assert_close(flatten_params(single), population[i])
        expected, _ = rollout(single, obs)
        torch.testing.assert_close(vmapped[i], expected, atol=ATOL, rtol=0)


def test_module_moves_with_dtype():
    policy = make_policy().double()
    action, state = policy(torch.randn(2, 5, dtype=torch.float64))
    assert action.dtype == state.h.dtype == torch.float64


def test_grid_queries_encode_row_and_column():
    q = grid_queries(3, 4, 8)
    assert q.shape == (12, 8)
    rows, cols = sinusoidal_queries(3, 4), sinusoidal_queries(4, 4)
    torch.testing.assert_close(q[1 * 4 + 2], torch.cat([rows[1], cols[2]]))
    assert len({tuple(r.tolist()) for r in q}) == 12  # every cell its own query
    with pytest.raises(ValueError, match="even dim"):
        grid_queries(3, 3, 5)


def make_grid(seed: int = 0, **kwargs) -> AttentionGridPolicy:
    torch.manual_seed(seed)
    return AttentionGridPolicy(**{"act_dim": 2, "input_dim": 12, "grid": 4, **kwargs})


@pytest.mark.parametrize("value_dim, value_hidden", [(0, 0), (6, 0), (6, 10)])
def test_grid_policy_is_permutation_invariant(value_dim, value_hidden):
    policy = make_grid(value_dim=value_dim, value_hidden=value_hidden)
    obs = torch.rand(3, 20, 12, generator=torch.Generator().manual_seed(1))
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(2))
    out = policy(obs).detach()
    assert out.shape == (3, 2) and float(out.abs().max()) <= 1.0
    torch.testing.assert_close(policy(obs[:, perm]).detach(), out, atol=ATOL, rtol=0)
    torch.testing.assert_close(policy(obs[0]).detach(), out[0], atol=ATOL, rtol=0)
    latent, attention = policy.attend(obs)
    assert latent.shape == (3, value_dim or 12, 4, 4) and attention.shape == (3, 16, 20)
    torch.testing.assert_close(attention.sum(-1), torch.ones(3, 16))
    assert policy(obs[:, :7]).shape == (3, 2)  # another number of patches


def test_grid_policy_refuses_bad_input():
    policy = make_grid()
    with pytest.raises(ValueError, match=r"\(B, N, 12\) patches"):
        policy(torch.zeros(3, 20, 11))
    with pytest.raises(ValueError, match="key_dim must be even"):
        make_grid(key_dim=5)
    with pytest.raises(ValueError, match="grid"):
        make_grid(grid=0)
    with pytest.raises(ValueError, match="output"):
        make_grid(output="softmax")


def test_grid_policy_population_under_vmap():
    policy = make_grid(value_dim=6, value_hidden=10)
    population = 0.3 * torch.randn(
        3, num_params(policy), generator=torch.Generator().manual_seed(4)
    )
    params = batched_params_dict(policy, population)
    obs = torch.rand(5, 20, 12, generator=torch.Generator().manual_seed(3))
    out = torch.vmap(lambda p: functional_call(policy, p, (obs,)))(params)
    assert out.shape == (3, 5, 2)
    single = make_grid(value_dim=6, value_hidden=10)
    with torch.no_grad():
        offset = 0
        for p in single.parameters():
            p.copy_(population[1][offset : offset + p.numel()].view_as(p))
            offset += p.numel()
    torch.testing.assert_close(out[1], single(obs), atol=ATOL, rtol=0)
