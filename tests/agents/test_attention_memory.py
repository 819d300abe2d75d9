"""AttentionMemoryPolicy: order-free in its patches (also when re-shuffled mid-episode,
since the memory sits after the pooling), any number of patches, starts as the
feed-forward AttentionNeuron it is loaded from, runs under vmap, refuses bad input."""

from __future__ import annotations

import pytest
import torch

from colonylab.agents.attention_memory import AttentionMemoryPolicy, MemoryState
from colonylab.agents.sensory import AttentionNeuronPolicy

SIZES = dict(num_queries=4, key_dim=4, hidden_dim=4, head_hidden=8)


def _policy(seed: int = 0) -> AttentionMemoryPolicy:
    torch.manual_seed(seed)
    policy = AttentionMemoryPolicy(3, 6, memory_dim=5, readout_hidden=7, integrator_dim=2, **SIZES)
    torch.nn.init.normal_(policy.readout[-1].weight, std=0.5)  # a memory that matters
    return policy


def _episode(policy, frames, perms=None):
    state, outs = None, []
    for t, obs in enumerate(frames):
        if perms is not None:
            obs = obs[:, perms[t]]
        out, state = policy(obs, state)
        outs.append(out)
    return torch.stack(outs), state


def test_reshuffling_every_step_changes_nothing():
    policy = _policy()
    gen = torch.Generator().manual_seed(1)
    frames = [torch.rand(2, 9, 6, generator=gen) for _ in range(6)]
    perms = [torch.randperm(9, generator=gen) for _ in range(6)]
    plain, state = _episode(policy, frames)
    shuffled, state_s = _episode(policy, frames, perms)
    torch.testing.assert_close(plain, shuffled)
    torch.testing.assert_close(state.memory, state_s.memory)
    assert plain.shape == (6, 2, 3) and state.prev_action.sum(-1).eq(1).all()
    # the memory matters: the same frame after another history gives other logits
    first, _ = policy(frames[-1])
    assert not torch.allclose(first, plain[-1])


def test_the_accumulator_sums_the_actions_taken_and_stops_at_its_bounds():
    policy = _policy()
    with torch.no_grad():
        policy.integrator.copy_(torch.tensor([[0.0, 0.0], [-0.4, 0.1], [0.4, 0.1]]))
    obs = torch.rand(1, 9, 6)
    state, sums = None, torch.zeros(1, 2)
    for _ in range(8):
        before = state
        _, state = policy(obs, state)
        if before is not None:
            sums = (sums + before.prev_action @ policy.integrator).clamp(-1, 1)
        torch.testing.assert_close(state.accumulator, sums)
    assert state.accumulator.abs().max() <= 1.0


def test_any_number_of_patches_and_unbatched_input():
    policy = _policy()
    out, state = policy(torch.rand(3, 11, 6))
    assert out.shape == (3, 3) and state.memory.shape == (3, 5)
    out, state = policy(torch.rand(4, 6))
    assert out.shape == (3,) and state.memory.shape == (5,) and state.prev_action.shape == (3,)


def test_starts_as_the_feed_forward_agent_it_is_loaded_from():
    torch.manual_seed(0)
    ff = AttentionNeuronPolicy(3, 6, **SIZES, output="linear", feed_action=False, recurrent=False)
    mem = AttentionMemoryPolicy(3, 6, **SIZES)
    missing = mem.load_state_dict(ff.state_dict(), strict=False).missing_keys
    assert missing and not any(k.startswith(("sensory.", "head.")) for k in missing)
    obs = torch.rand(5, 9, 6)
    state = None
    for _ in range(3):
        out, state = mem(obs, state)
        torch.testing.assert_close(out, ff(obs)[0])


def test_runs_under_vmap_with_batched_parameters():
    policy = _policy()
    params = {k: torch.stack([v, v + 0.01]) for k, v in policy.named_parameters()}
    obs = torch.rand(2, 3, 9, 6)

    def call(p, o, s):
        return torch.func.functional_call(policy, p, (o, s))

    state = MemoryState(torch.zeros(2, 3, 5), torch.zeros(2, 3, 3), torch.zeros(2, 3, 2))
    out, new = torch.vmap(call)(params, obs, state)
    assert out.shape == (2, 3, 3) and new.memory.shape == (2, 3, 5)
    torch.testing.assert_close(out[0], policy(obs[0])[0])


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="memory_dim must be an integer >= 1"):
        AttentionMemoryPolicy(3, 6, memory_dim=0)
    policy = _policy()
    with pytest.raises(ValueError, match="patch observations must be"):
        policy(torch.rand(2, 9, 5))
    with pytest.raises(ValueError, match="integrator_dim must be an integer >= 0"):
        AttentionMemoryPolicy(3, 6, integrator_dim=-1)
    with pytest.raises(ValueError, match="pass state=None"):
        policy(
            torch.rand(2, 9, 6),
            MemoryState(torch.zeros(3, 5), torch.zeros(3, 3), torch.zeros(3, 2)),
        )


def _aux_policy(seed: int = 0, **kw) -> AttentionMemoryPolicy:
    torch.manual_seed(seed)
    return AttentionMemoryPolicy(
        3, 6, memory_dim=5, readout_hidden=7, integrator_dim=2, aux_dim=4, **SIZES, **kw
    )


@pytest.mark.parametrize("memory_input", ["feat", "latent"])
def test_encode_then_recur_is_a_step_and_the_aux_head_has_its_shape(memory_input):
    policy = _aux_policy(memory_input=memory_input)
    obs = torch.rand(3, 9, 6)
    logits, state, attention = policy.step(obs)
    latent, attention2, unbatched = policy.encode(obs)
    assert latent.shape == (3, 4 * 6) and not unbatched
    out, state2, aux = policy.recur(latent, policy.initial_state(obs))
    torch.testing.assert_close(out, logits)
    torch.testing.assert_close(attention2, attention)
    torch.testing.assert_close(state2.memory, state.memory)
    assert aux.shape == (3, 4)
    plain = AttentionMemoryPolicy(3, 6, memory_dim=5, **SIZES)
    assert plain.aux_head is None
    assert plain.recur(plain.encode(obs)[0], plain.initial_state(obs))[2].shape == (3, 0)


def test_the_aux_loss_trains_the_memory_and_never_the_action_readout():
    policy = _aux_policy(memory_input="latent")
    obs = [torch.rand(2, 9, 6) for _ in range(3)]
    state, preds = policy.initial_state(obs[0]), []
    for frame in obs:
        _, state, aux = policy.recur(policy.encode(frame)[0], state)
        preds.append(aux)
    torch.stack(preds).square().mean().backward()
    grads = {k: p.grad for k, p in policy.named_parameters()}
    for name in ("aux_head.weight", "gru_input.weight", "gru_hidden.weight", "sensory.cell.weight"):
        assert grads[name] is not None and grads[name].abs().sum() > 0, name
    assert all(grads[k] is None for k in grads if k.startswith("readout."))


def test_memory_aux_options_are_refused_when_bad():
    with pytest.raises(ValueError, match="aux_dim must be an integer >= 0"):
        AttentionMemoryPolicy(3, 6, aux_dim=-1)
    with pytest.raises(ValueError, match="memory_input must be 'feat' or 'latent', got 'pixels'"):
        AttentionMemoryPolicy(3, 6, memory_input="pixels")
