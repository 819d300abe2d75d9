"""The sensory viewer: generic state resets, the occlusion key (same real patches under
any shuffle, dropped or zeroed per agent), attention put back in place."""

from __future__ import annotations

from typing import NamedTuple

import pytest
import torch

from colonylab.envs.classic.pong import PuzzlePongConfig, PuzzlePongWorld
from colonylab.envs.render.sensory_watch import SensoryWatch, zero_ended


class _State(NamedTuple):
    memory: torch.Tensor
    counts: torch.Tensor


def test_zero_ended_resets_rows_of_any_tuple_state() -> None:
    state = _State(torch.ones(3, 2, 4), torch.ones(3, 1))
    ended = torch.tensor([False, True, False])
    out = zero_ended(state, ended)
    assert isinstance(out, _State)
    assert out.memory[1].abs().sum() == 0 and out.counts[1] == 0
    assert torch.equal(out.memory[[0, 2]], state.memory[[0, 2]])
    plain = zero_ended((torch.ones(3), (torch.ones(3, 2),)), ended)
    assert plain[0].tolist() == [1.0, 0.0, 1.0] and plain[1][0][1].sum() == 0
    assert zero_ended(None, ended) is None
    with pytest.raises(TypeError, match="dict"):
        zero_ended({"h": torch.ones(3)}, ended)


class _Counter:
    """A recurrent agent that records what it is given; attention = 1 on each input."""

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def initial_state(self, obs: torch.Tensor) -> _State:
        return _State(obs.new_zeros(obs.shape[0], 1), obs.new_zeros(obs.shape[0], 1))

    def step(self, obs, state):
        self.seen.append(obs.clone())
        state = self.initial_state(obs) if state is None else state
        state = _State(state.memory + 1, state.counts)
        attention = torch.ones(obs.shape[0], 2, obs.shape[1])
        return torch.zeros(obs.shape[0], 3), state, attention


class _Fixed:
    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def __call__(self, obs):
        self.seen.append(obs.clone())
        return torch.zeros(obs.shape[0], 3)


def _watch(**kwargs) -> tuple[SensoryWatch, _Counter, _Fixed]:
    world = PuzzlePongWorld(
        PuzzlePongConfig(
            num_envs=3,
            screen=32,
            patch=2,
            patch_height=32,
            frame_stack=2,
            points_to_win=1,
            autoreset=True,
            render_envs=3,
        )  # fmt: skip
    )
    recurrent, fixed = _Counter(), _Fixed()
    watch = SensoryWatch(
        world,
        {"AN": recurrent, "MLP": fixed},
        shuffle_every=None,
        action_fn=lambda out: out.argmax(-1),
        seed=3,
        **kwargs,
    )
    return watch, recurrent, fixed


def test_occlusion_key_drops_for_attention_and_zeroes_for_fixed_inputs() -> None:
    watch, recurrent, fixed = _watch(occlude=0.7, fixed_inputs=("MLP",))
    watch.step()
    assert recurrent.seen[-1].shape[1] == 16
    assert watch.handle_key("o") and watch.metrics()["occluded"] == "70%"
    hidden = watch.hidden.clone()
    assert (hidden.sum(1) == round(0.7 * 16)).all()
    before, mask = watch.obs.clone(), watch.hidden_now()
    watch.step()
    assert torch.equal(recurrent.seen[-1], before[~mask].reshape(3, 16 - 11, -1))
    assert watch.attention.shape[-1] == 16
    assert (watch.attention[watch.hidden_now()[:, None, :].expand_as(watch.attention)] == 0).all()
    # a re-shuffle moves the hidden patches with the real ones
    assert watch.handle_key("x")
    assert torch.equal(watch.hidden, hidden)
    assert torch.equal(torch.gather(watch.hidden, 1, watch.world.permutation), watch.hidden_now())
    watch.handle_key("m")
    before, mask = watch.obs.clone(), watch.hidden_now()
    watch.step()
    keep = (~mask).float()[:, :, None]
    assert torch.equal(fixed.seen[-1], before * keep)
    assert before[mask].abs().sum() > 0  # something was hidden (the court's net, paddles)
    assert watch.handle_key("o") and watch.hidden is None
    assert watch.metrics()["occluded"] == "no"


def test_occlusion_key_absent_without_share() -> None:
    watch, _, _ = _watch()
    assert not watch.handle_key("o")
    assert "occluded" not in watch.metrics()
    with pytest.raises(ValueError, match="occlude"):
        _watch(occlude=1.0)
