"""Sensory wrappers: shuffles are permutations re-drawn exactly when promised, noise
channels leave the original untouched, occlusion hides round(share * P) patches, the
background swap blends with the world's mask, bad arguments are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colonylab.envs.base import StepResult
from colonylab.envs.classic.swingup import SwingUpWorld
from colonylab.envs.wrappers import (
    BackgroundSwap,
    NoiseChannels,
    OccludePatches,
    ShuffleObservations,
)


class ToyWorld:
    """``obs[n, d, ...] = 1000 n + d + t / 100``, all distinct; episodes end every
    ``period`` steps (autoreset)."""

    def __init__(self, num_envs=4, shape=(6,), period=None):
        self.num_envs, self.shape, self.period, self.t = num_envs, shape, period, 0

    def _obs(self):
        n = torch.arange(self.num_envs, dtype=torch.float64).reshape(-1, *[1] * len(self.shape))
        if not self.shape:
            return n.clone()
        d = torch.arange(self.shape[0], dtype=torch.float64)
        d = d.reshape(-1, *[1] * (len(self.shape) - 1))
        return (1000 * n + d + self.t / 100).expand(self.num_envs, *self.shape).clone()

    def reset(self, seed=None):
        self.t = 0
        return self._obs()

    def step(self, actions=None):
        self.t += 1
        ended = torch.zeros(self.num_envs, dtype=torch.bool)
        info = {}
        if self.period is not None:
            info["final_obs"] = self._obs()
            ended[:] = self.t % self.period == 0
        reward = torch.ones(self.num_envs)
        return StepResult(self._obs(), reward, ended, torch.zeros_like(ended), info)

    def subset(self, index):
        return ToyWorld(len(index), self.shape, self.period)


def _is_permutation(perm, channels):
    return bool((perm.sort(dim=1).values == torch.arange(channels)).all())


def test_shuffle_is_a_permutation_of_the_original_obs():
    world = ToyWorld(5, (7,))
    env = ShuffleObservations(world, seed=0)
    obs = env.reset(seed=0)
    perm = env.permutation
    assert perm.shape == (5, 7) and _is_permutation(perm, 7)
    raw = world._obs()
    for n in range(5):
        assert torch.equal(obs[n], raw[n, perm[n]])
    # per-env different permutations
    assert len({tuple(p.tolist()) for p in perm}) > 1
    # the permutation stays for the whole episode without `every`
    for _ in range(10):
        obs, *_ = env.step()
        assert torch.equal(env.permutation, perm)
    assert torch.equal(obs, torch.gather(world._obs(), 1, perm))


def test_shuffle_moves_whole_patches():
    world = ToyWorld(3, (5, 4))
    env = ShuffleObservations(world, seed=1)
    obs = env.reset(seed=0)
    raw = world._obs()
    for n in range(3):
        assert torch.equal(obs[n], raw[n, env.permutation[n]])


def test_shuffle_redrawn_every_k_steps_and_only_then():
    env = ShuffleObservations(ToyWorld(8, (10,)), every=3, seed=2)
    env.reset(seed=0)
    history = [env.permutation.clone()]
    for _ in range(9):
        obs, *_ = env.step()
        history.append(env.permutation.clone())
        assert torch.equal(obs, torch.gather(env.world._obs(), 1, env.permutation))
    for t in range(1, 10):
        changed = not torch.equal(history[t], history[t - 1])
        assert changed == (t % 3 == 0), t
        assert _is_permutation(history[t], 10)
    before = env.permutation.clone()
    after = env.reshuffle()
    assert not torch.equal(before, after) and _is_permutation(after, 10)


def test_shuffle_redrawn_for_envs_whose_episode_ended():
    env = ShuffleObservations(ToyWorld(6, (8,), period=2), seed=3)
    env.reset(seed=0)
    first = env.permutation.clone()
    _, _, _, _, info = env.step()
    assert torch.equal(env.permutation, first)
    _, _, _, _, info = env.step()  # every env ends: final_obs uses the old permutation
    assert torch.equal(info["final_obs"], torch.gather(env.world._obs(), 1, first))
    assert not torch.equal(env.permutation, first)


def test_shuffle_seeded_determinism():
    def run(seed, reset_seed):
        env = ShuffleObservations(SwingUpWorld.factory()(4), every=5, seed=seed)
        out = [env.reset(seed=reset_seed)]
        for _ in range(12):
            out.append(env.step(torch.zeros(4)).obs)
        return torch.stack(out), env.permutation

    a, pa = run(7, 1)
    b, pb = run(7, 1)
    assert torch.equal(a, b) and torch.equal(pa, pb)
    _, pc = run(8, 1)
    _, pd = run(7, 2)
    assert not torch.equal(pa, pc) and not torch.equal(pa, pd)


def test_shuffle_subset_keeps_rows():
    env = ShuffleObservations(ToyWorld(5, (6,)), seed=0)
    env.reset(seed=0)
    part = env.subset(torch.tensor([4, 2]))
    assert torch.equal(part.permutation, env.permutation[[4, 2]])
    assert part.num_envs == 2


def test_noise_channels_count_statistics_and_originals():
    world = ToyWorld(2000, (3,))
    env = NoiseChannels(world, extra=4, std=0.5, seed=0)
    obs = env.reset(seed=0)
    assert obs.shape == (2000, 7)
    assert torch.equal(obs[:, :3], world._obs())
    noise = obs[:, 3:]
    assert abs(float(noise.mean())) < 0.02
    assert abs(float(noise.std()) - 0.5) < 0.02
    corr = torch.corrcoef(noise.T)
    assert float((corr - torch.eye(4)).abs().max()) < 0.1
    obs2, *_ = env.step()
    assert torch.equal(obs2[:, :3], world._obs())
    assert not torch.equal(obs2[:, 3:], noise)  # fresh every step
    env2 = NoiseChannels(ToyWorld(2000, (3,)), extra=4, std=0.5, seed=0)
    assert torch.equal(env2.reset(seed=0), obs)


def test_occlusion_removes_exactly_round_share_patches():
    for patches, share in [(10, 0.7), (9, 0.5), (16, 0.0), (5, 0.25)]:
        world = ToyWorld(6, (patches, 3))
        env = OccludePatches(world, share=share, seed=0)
        obs = env.reset(seed=0)
        kept = patches - round(share * patches)
        assert obs.shape == (6, kept, 3)
        assert env.keep_mask.shape == (6, patches)
        assert env.keep_mask.sum(dim=1).tolist() == [kept] * 6
        raw = world._obs()
        for n in range(6):
            assert torch.equal(obs[n], raw[n, env.keep_mask[n]])


def test_occlusion_fixed_per_episode_and_zero_mode():
    world = ToyWorld(4, (10, 2), period=3)
    env = OccludePatches(world, share=0.7, seed=1, mode="zero")
    obs = env.reset(seed=0)
    assert obs.shape == (4, 10, 2)
    mask = env.keep_mask.clone()
    assert torch.equal(obs == 0, (~mask)[:, :, None].expand(-1, -1, 2) | (world._obs() == 0))
    env.step()
    env.step()
    assert torch.equal(env.keep_mask, mask)
    env.step()  # episodes end: new masks
    assert not torch.equal(env.keep_mask, mask)
    assert env.keep_mask.sum(dim=1).tolist() == [3] * 4
    assert len({tuple(m.tolist()) for m in mask}) > 1  # per-env different


class PixelWorld(ToyWorld):
    def __init__(self):
        super().__init__(2, (4, 5, 3))

    def _obs(self):
        return torch.full((2, 4, 5, 3), 200, dtype=torch.uint8)

    def foreground_mask(self):
        mask = torch.zeros(2, 4, 5, dtype=torch.bool)
        mask[:, 1:3, 2] = True
        return mask


def test_background_swap_blends_with_the_mask():
    world = PixelWorld()
    background = torch.full((4, 5, 3), 7, dtype=torch.uint8)
    env = BackgroundSwap(world, background)
    obs = env.reset(seed=0)
    assert obs.dtype == torch.uint8 and obs.shape == (2, 4, 5, 3)
    mask = world.foreground_mask()
    assert bool((obs[mask] == 200).all()) and bool((obs[~mask] == 7).all())
    obs, *_ = env.step()
    assert bool((obs[~mask] == 7).all())


def test_background_swap_errors():
    with pytest.raises(ValueError, match="foreground_mask"):
        BackgroundSwap(ToyWorld(2, (4, 5, 3)), torch.zeros(4, 5, 3))
    with pytest.raises(ValueError, match=r"\(3, 3, 3\)"):
        BackgroundSwap(PixelWorld(), torch.zeros(3, 3, 3, dtype=torch.uint8)).reset(seed=0)
    with pytest.raises(ValueError, match="background must be"):
        BackgroundSwap(PixelWorld(), torch.zeros(4, 5))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda w: OccludePatches(w, share=1.0), "share must be in \\[0, 1\\), got 1.0"),
        (lambda w: OccludePatches(w, share=-0.1), "got -0.1"),
        (lambda w: OccludePatches(w, mode="blur"), "'blur'"),
        (lambda w: ShuffleObservations(w, every=0), "K >= 1, got 0"),
        (lambda w: ShuffleObservations(w, every=2.5), "got 2.5"),
        (
            lambda w: NoiseChannels(w, extra=0),
            r"extra must be an integer >= 1 \(noise channels\), got 0",
        ),
        (lambda w: NoiseChannels(w, std=-1.0), "got -1.0"),
        (lambda w: ShuffleObservations(w, seed=-3), "got -3"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make(ToyWorld())


def test_wrong_observation_rank():
    with pytest.raises(ValueError, match=r"shape \(4, 6\) \(rank 2\)"):
        OccludePatches(ToyWorld(4, (6,))).reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(4,\) \(rank 1\)"):
        ShuffleObservations(ToyWorld(4, ())).reset(seed=0)
    with pytest.raises(ValueError, match="hides all"):
        OccludePatches(ToyWorld(2, (2, 3)), share=0.9).reset(seed=0)
    with pytest.raises(ValueError, match="float"):
        NoiseChannels(PixelWorld()).reset(seed=0)


def test_wrappers_stack_and_forward_attributes():
    world = SwingUpWorld.factory()(3)
    env = ShuffleObservations(NoiseChannels(world, extra=2, seed=0), every=10, seed=0)
    obs = env.reset(seed=0)
    assert obs.shape == (3, 7) and _is_permutation(env.permutation, 7)
    obs, reward, *_ = env.step(torch.zeros(3))
    assert obs.shape == (3, 7) and reward.shape == (3,)
    assert env.unwrapped is world and env.max_episode_steps == 1000
    assert np.asarray(env.render_rgb()).ndim == 3
