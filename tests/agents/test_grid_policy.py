"""The shared grid policy: shapes, batch invariance, determinism, masks, options, helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colonylab.agents import build
from colonylab.agents.grid_policy import GridPolicy, message_planes, neighbour_mean_action

VIEW = (5, 5, 3)


def _policy(**kw) -> GridPolicy:
    torch.manual_seed(0)
    return GridPolicy(VIEW, 6, hidden=(16, 16), **kw)


def _views(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, *VIEW), generator=g)


@pytest.mark.parametrize("encoder", ["mlp", "conv"])
def test_shapes_and_build_round_trip(encoder):
    policy = _policy(encoder=encoder, features=4, agent_ids=10, mean_field=True, message_dim=2)
    n = 7
    out = policy(
        _views(n),
        features=torch.zeros(n, 4),
        ids=torch.arange(n),
        mean_action=torch.full((n, 6), 1 / 6),
    )
    assert out.logits.shape == (n, 6) and out.value.shape == (n,) and out.message.shape == (n, 2)
    assert out.message.abs().max() <= 1
    rebuilt = build(policy.spec())
    rebuilt.load_state_dict(policy.state_dict())
    assert isinstance(rebuilt, GridPolicy) and rebuilt.spec() == policy.spec()


def test_issue_network_is_845_128_128_22():
    policy = GridPolicy((13, 13, 5), 21)
    sizes = [(m.in_features, m.out_features) for m in policy.modules() if hasattr(m, "in_features")]
    assert sizes == [(845, 128), (128, 128), (128, 21), (128, 1)]


@pytest.mark.parametrize("encoder", ["mlp", "conv"])
def test_agent_output_does_not_depend_on_other_rows(encoder):
    policy = _policy(encoder=encoder)
    views = _views(16)
    with torch.no_grad():
        base = policy(views)
        changed = views.clone()
        changed[1:] = _views(15, seed=5)  # every other row differs
        again = policy(changed)
        alone = policy(views[:1])
    assert torch.equal(base.logits[0], again.logits[0])
    assert torch.equal(base.value[0], again.value[0])
    torch.testing.assert_close(alone.logits[0], base.logits[0])  # batch size may round
    torch.testing.assert_close(alone.value[0], base.value[0])


def test_uint8_and_float16_views_read_like_float32():
    policy = _policy()
    raw = np.random.default_rng(0).integers(0, 256, (4, *VIEW)).astype(np.uint8)
    as_u8 = torch.from_numpy(raw)  # zero-copy from the NumPy buffer
    assert as_u8.data_ptr() == raw.ctypes.data
    with torch.no_grad():
        a = policy(as_u8).logits
        b = policy(torch.from_numpy(raw.astype(np.float32) / 255)).logits
        c = policy(torch.from_numpy((raw.astype(np.float32) / 255).astype(np.float16))).logits
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c, atol=1e-3, rtol=1e-3)


def test_act_is_deterministic_under_a_seeded_generator():
    policy = _policy(message_dim=3)
    obs = {"view": _views(32)}
    first = policy.act(obs, generator=torch.Generator().manual_seed(3))
    second = policy.act(obs, generator=torch.Generator().manual_seed(3))
    other = policy.act(obs, generator=torch.Generator().manual_seed(4))
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first[0], other[0])
    # the stored log-probability is the one evaluate_actions recomputes
    logprob, entropy, value = policy.evaluate_actions(obs, first[0], first[3])
    torch.testing.assert_close(logprob, first[1])
    torch.testing.assert_close(value, first[2])
    assert entropy.shape == (32,)


def test_action_mask_forbids_actions():
    policy = _policy()
    n = 200
    mask = torch.zeros(n, 6, dtype=torch.bool)
    mask[:, 2] = True
    mask[::2, 4] = True
    obs = {"view": _views(n), "mask": mask}
    actions, logprob, _, _ = policy.act(obs, generator=torch.Generator().manual_seed(0))
    assert mask[torch.arange(n), actions].all()
    assert set(actions[1::2].tolist()) == {2} and set(actions[::2].tolist()) == {2, 4}
    assert torch.allclose(logprob[1::2], torch.zeros(n // 2), atol=1e-6)  # one legal action
    _, entropy, _ = policy.evaluate_actions(obs, actions)
    assert torch.isfinite(entropy).all() and entropy[1::2].abs().max() < 1e-6
    mask[3] = False
    with pytest.raises(ValueError, match="mask row 3 allows no action"):
        policy(obs["view"], mask=mask)


def test_bad_inputs_are_refused_in_one_line():
    policy = _policy(agent_ids=4)
    with pytest.raises(ValueError, match=r"view must have shape \[N, 5, 5, 3\]"):
        policy(torch.zeros(2, 5, 5, 4), ids=torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="needs 'ids'"):
        policy(_views(2))
    with pytest.raises(ValueError, match=r"ids must be in 0\.\.3"):
        policy(_views(2), ids=torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="takes no 'features'"):
        policy(_views(2), features=torch.zeros(2, 1), ids=torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="unknown agent type|does not fit 'grid'"):
        build({"type": "grid", "view_shape": [5, 5, 3], "n_actions": 6, "width": 3})
    with pytest.raises(ValueError, match="encoder must be one of"):
        GridPolicy(VIEW, 6, encoder="rnn")


def test_agent_ids_condition_the_output():
    policy = _policy(agent_ids=2)
    views = _views(1).expand(2, *VIEW)
    with torch.no_grad():
        out = policy(views, ids=torch.tensor([0, 1]))
    assert not torch.equal(out.value[0], out.value[1])


def test_message_planes_put_neighbours_messages_at_their_offsets():
    positions = np.array([[2, 2], [2, 3], [4, 0], [0, 0]], dtype=np.int32)
    messages = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]], dtype=np.float32)
    alive = np.array([True, True, True, False])
    planes = message_planes(positions, messages, (5, 5), radius=1, alive=alive)
    assert planes.shape == (4, 3, 3, 2)
    # agent 0 at (2, 2) sees agent 1 one cell east: view cell (1, 2)
    expected0 = np.zeros((3, 3, 2), np.float32)
    expected0[1, 2] = [2.0, 20.0]
    np.testing.assert_array_equal(planes[0], expected0)
    expected1 = np.zeros((3, 3, 2), np.float32)
    expected1[1, 0] = [1.0, 10.0]
    np.testing.assert_array_equal(planes[1], expected1)
    assert not planes[2].any()  # nobody near (4, 0); the dead agent at (0, 0) sends nothing
    assert not planes[3].any()  # dead rows are zero


def test_neighbour_mean_action_matches_a_loop():
    rng = np.random.default_rng(1)
    n, a, side, r = 40, 5, 12, 2
    cells = rng.choice(side * side, n, replace=False)
    positions = np.stack([cells // side, cells % side], axis=1).astype(np.int32)
    actions = rng.integers(0, a, n)
    alive = rng.random(n) < 0.8
    got = neighbour_mean_action(positions, actions, a, (side, side), r, alive=alive)
    for i in range(n):
        want = np.zeros(a)
        if alive[i]:
            for j in range(n):
                near = np.abs(positions[j] - positions[i]).max() <= r
                if j != i and alive[j] and near:
                    want[actions[j]] += 1
            if want.sum():
                want /= want.sum()
        np.testing.assert_allclose(got[i], want, atol=1e-6)
    assert got.dtype == np.float32 and got.shape == (n, a)
    with pytest.raises(ValueError, match="positions must lie on the 12 x 12 map"):
        neighbour_mean_action(positions + side, actions, a, (side, side), r)


def test_sampled_actions_follow_the_softmax():
    policy = _policy()
    with torch.no_grad():
        policy.actor.bias.copy_(torch.tensor([2.0, 1.0, 0.0, -1.0, 0.5, 0.0]))
        policy.actor.weight.zero_()
    n = 20_000
    obs = {"view": torch.zeros(n, *VIEW)}
    actions, _, _, _ = policy.act(obs, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(actions, minlength=6).double() / n
    torch.testing.assert_close(
        freq, torch.softmax(policy.actor.bias.double(), 0), atol=0.015, rtol=0
    )


def test_attack_mask_allows_attacks_only_on_seen_enemies():
    from colonylab.agents.grid_policy import attack_mask

    view = np.zeros((2, 5, 5, 3), dtype=np.uint8)
    view[0, 1, 2, 2] = 255  # an enemy north of agent 0
    view[1, 3, 3, 2] = 255  # south-east of agent 1
    view[1, 2, 3, 1] = 255  # a friend east of agent 1: not a target
    offsets = ((-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1))
    mask = attack_mask(view, 21, 13, offsets, enemy_channel=2)
    assert mask[:, :13].all()
    assert mask[0, 13:].tolist() == [True] + [False] * 7
    assert mask[1, 13:].tolist() == [False] * 5 + [True, False, False]
    with pytest.raises(ValueError, match="enemy_channel must be an integer in"):
        attack_mask(view, 21, 13, offsets, enemy_channel=3)
    with pytest.raises(ValueError, match="outside the 5-cell view"):
        attack_mask(view, 21, 13, ((3, 0),), enemy_channel=2)


def test_message_entropy_is_left_out_of_the_bonus_by_default():
    """PPO's entropy bonus must not widen the message noise: by default the entropy is
    the action distribution's alone; message_entropy=True adds the Gaussian's."""
    obs = {"view": _views(9)}
    for flag in (False, True):
        policy = _policy(message_dim=3, message_entropy=flag)
        actions, _, _, msg = policy.act(obs, generator=torch.Generator().manual_seed(1))
        _, entropy, _ = policy.evaluate_actions(obs, actions, msg)
        logp = torch.log_softmax(policy(obs["view"]).logits, dim=1)
        categorical = -(logp.exp() * logp).sum(1)
        log_std = policy.message_log_std_clamped()
        gauss = (0.5 + 0.5 * np.log(2 * np.pi) + log_std).sum()
        torch.testing.assert_close(entropy, categorical + gauss if flag else categorical)
        # without the flag, the entropy gives message_log_std no gradient at all
        policy.zero_grad()
        entropy.sum().backward()
        grad = policy.message_log_std.grad
        assert (grad is not None and bool(grad.abs().sum() > 0)) == flag


def test_message_std_is_capped():
    policy = _policy(message_dim=2, message_std_max=0.3)
    with torch.no_grad():
        policy.message_log_std.fill_(3.0)  # std e^3 ~ 20 if it were not capped
    obs = {"view": _views(4000)}
    _, _, _, msg = policy.act(obs, generator=torch.Generator().manual_seed(0))
    mean = policy(obs["view"]).message.detach()
    assert abs(float((msg - mean).std()) - 0.3) < 0.02
    rebuilt = build(policy.spec())
    assert rebuilt.message_std_max == 0.3 and rebuilt.message_entropy is False
    with pytest.raises(ValueError, match="message_std_max"):
        _policy(message_dim=2, message_std_min=0.5, message_std_max=0.1)
