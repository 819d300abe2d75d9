"""PatchFilter / FilteredPolicy: identity at start, per-patch (order-equivariant), specs."""

from __future__ import annotations

import pytest
import torch

from colonylab.agents import build
from colonylab.agents.patch_filter import FilteredPolicy, PatchFilter

GRID = {
    "type": "attention-grid",
    "act_dim": 2,
    "input_dim": 48,
    "grid": 4,
    "key_dim": 8,
    "key_hidden": 8,
    "value_dim": 4,
    "value_hidden": 8,
    "conv": [4, 4],
    "head_hidden": 8,
}


def test_untrained_filter_is_nearly_the_identity_and_shares_paint_the_fill() -> None:
    filt = PatchFilter(patch=4, width=6, layers=3, fill=(0.2, 0.8, 0.2))
    x = torch.rand(2, 5, 48)
    out, share = filt.parts(x)
    assert share.shape == (2, 5, 16) and torch.allclose(out, x, atol=0.01)
    with torch.no_grad():
        filt.net[-1].bias[0] = 50.0  # every pixel background: all fill
    assert torch.allclose(filt(x), torch.tensor([0.2, 0.8, 0.2]).repeat(2, 5, 16))
    with torch.no_grad():
        filt.net[-1].bias[0] = -50.0  # none: the input passes exactly
    assert torch.allclose(filt(x), x, atol=1e-7)


def test_each_patch_is_filtered_alone() -> None:
    torch.manual_seed(0)
    filt = PatchFilter(patch=4, width=6, layers=3)
    torch.nn.init.normal_(filt.net[-1].weight)
    x = torch.rand(2, 7, 48)
    perm = torch.randperm(7)
    assert torch.allclose(filt(x[:, perm]), filt(x)[:, perm], atol=1e-6)
    # one patch changed: only its own output changes
    y = x.clone()
    y[:, 3] = torch.rand(2, 48)
    changed = (filt(y) - filt(x)).abs().amax(dim=-1) > 0
    assert changed[:, 3].all() and not changed[:, [0, 1, 2, 4, 5, 6]].any()
    # the (p, p, C) layout: a pixel's channels sit together; unbatched input works too
    assert filt(x[0]).shape == (7, 48)


def test_filtered_policy_stays_permutation_invariant_and_round_trips() -> None:
    torch.manual_seed(1)
    spec = {"type": "filtered", "filter": {"patch": 4, "width": 6, "layers": 3}, "policy": GRID}
    policy = build(spec)
    assert isinstance(policy, FilteredPolicy) and not policy.recurrent
    torch.nn.init.normal_(policy.filter.net[-1].weight, std=0.1)
    x = torch.rand(3, 9, 48)
    perm = torch.randperm(9)
    assert torch.allclose(policy(x[:, perm]), policy(x), atol=1e-5)
    latent, attention = policy.attend(x)
    assert attention.shape == (3, 16, 9)
    again = build(spec)
    again.load_state_dict(policy.state_dict())
    assert torch.equal(again(x), policy(x))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"patch": 0}, "patch must be an integer >= 1"),
        ({"patch": 4, "layers": 1}, "layers must be an integer >= 2"),
        ({"patch": 4, "width": 2.5}, "width must be an integer"),
        ({"patch": 4, "fill": (0.1, 2.0, 0.1)}, r"fill must be 3 values in \[0, 1\]"),
    ],
)
def test_bad_filter_arguments_are_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PatchFilter(**kwargs)


def test_wrong_patch_size_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match=r"expects \(\.\.\., N, 48\) patches"):
        PatchFilter(patch=4)(torch.rand(2, 5, 40))
    with pytest.raises(ValueError, match="filter and policy must be dicts"):
        FilteredPolicy([4], GRID)  # type: ignore[arg-type]
