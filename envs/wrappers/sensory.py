"""Sensory-substitution wrappers: shuffle, add noise to, occlude and re-background what a
vectorized world shows its agents (Tang & Ha 2021, "The Sensory Neuron as a Transformer").

They wrap any vectorized world with ``reset(seed=None) -> obs [N, ...]`` and
``step(actions) -> (obs, reward, terminated, truncated, info)`` and change only the
observation (a torch tensor; NumPy observations are converted). Rewards, flags, actions
and ``info`` pass through; an autoreset world's ``info["final_obs"]`` is transformed like
``obs`` with the transform in force before the reset. Other attributes (``render_rgb``,
``metrics``, ``done``, ...) are the world's.

======================  =============================  ======================================
Wrapper                 Observation in -> out          What it does
======================  =============================  ======================================
ShuffleObservations     ``[N, D, ...] -> same``        a random permutation of axis 1 per env,
                                                       drawn at reset or every ``K`` steps
NoiseChannels           ``[N, D, ...] -> [N, D+k, ...]``  appends ``k`` channels of fresh
                                                       ``N(0, std)`` noise each step
                                                       (``k`` fixed, or drawn per reset)
OccludePatches          ``[N, P, d] -> [N, P-r, d]``   removes ``r = round(share * P)``
                                                       random patches per env and episode
                                                       (``mode="zero"``: zeroes them instead)
BackgroundSwap          ``[N, H, W, C] -> same``       ``obs * mask + background * (1 - mask)``
                                                       with the world's foreground mask
======================  =============================  ======================================

Randomness: each wrapper owns a ``torch.Generator`` (on the CPU) seeded with its
``seed``. ``reset(seed=s)`` with an integer re-seeds it from ``(seed, s)``, so the same
wrapper seed and reset seed give the same draws; a reset without an integer seed
continues the generator. ``seed=None`` takes fresh entropy.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from colonylab.envs.base import StepResult

__all__ = [
    "BackgroundSwap",
    "NoiseChannels",
    "OccludePatches",
    "SensoryWrapper",
    "ShuffleObservations",
]


def _check_seed(seed: Any) -> int:
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be None or an integer >= 0, got {seed!r}")
    return int(seed)


class SensoryWrapper:
    """Base of the wrappers: forwards to ``world`` and transforms observations.

    Subclasses implement :meth:`_on_reset` (draw per-episode state for ``obs``),
    :meth:`_transform` and, where they keep per-env state, :meth:`_take`.
    """

    def __init__(self, world: Any, seed: int | None = None) -> None:
        self.world = world
        self.seed = _check_seed(seed)
        self.generator = torch.Generator().manual_seed(self.seed)

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes the wrapper lacks: the world's.
        if name == "world":
            raise AttributeError(name)
        return getattr(self.world, name)

    @property
    def unwrapped(self) -> Any:
        """The innermost world."""
        return getattr(self.world, "unwrapped", self.world)

    def reset(self, seed: Any = None, options: dict[str, Any] | None = None) -> Tensor:
        """Reset the world (same arguments) and draw this wrapper's per-episode state."""
        obs = self.world.reset(seed=seed) if options is None else self.world.reset(seed, options)
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            mixed = np.random.SeedSequence([self.seed, int(seed)]).generate_state(2)
            self.generator.manual_seed(int(mixed[0]) << 32 | int(mixed[1]))
        obs = self._as_tensor(obs)
        self._on_reset(obs)
        return self._transform(obs)

    def step(self, actions: Any = None) -> StepResult:
        """Step the world; the observation (and ``info["final_obs"]``) transformed."""
        obs, reward, terminated, truncated, info = self.world.step(actions)
        obs = self._as_tensor(obs)
        if "final_obs" in info:
            info = dict(info)
            info["final_obs"] = self._transform(self._as_tensor(info["final_obs"]))
            ended = torch.as_tensor(terminated) | torch.as_tensor(truncated)
            if bool(ended.any()):
                self._on_episode_end(ended.to(torch.bool).cpu(), obs)
        self._on_step(obs)
        return StepResult(self._transform(obs), reward, terminated, truncated, info)

    def subset(self, index: Tensor | np.ndarray | Any) -> SensoryWrapper:
        """The wrapper over ``world.subset(index)``, keeping those envs' wrapper state
        (the generator is shared)."""
        idx = torch.as_tensor(index, dtype=torch.int64).reshape(-1).cpu()
        new = copy.copy(self)
        new.world = self.world.subset(index)
        new._take(idx)
        return new

    # -- hooks ------------------------------------------------------------------------------------
    @staticmethod
    def _as_tensor(obs: Any) -> Tensor:
        return obs if isinstance(obs, Tensor) else torch.as_tensor(np.asarray(obs))

    def _on_reset(self, obs: Tensor) -> None:
        pass

    def _on_step(self, obs: Tensor) -> None:
        pass

    def _on_episode_end(self, ended: Tensor, obs: Tensor) -> None:
        pass

    def _take(self, idx: Tensor) -> None:
        pass

    def _transform(self, obs: Tensor) -> Tensor:
        raise NotImplementedError

    def _check_rank(self, obs: Tensor, ranks: tuple[int, ...], what: str) -> None:
        if obs.dim() not in ranks:
            raise ValueError(
                f"{type(self).__name__} needs {what}, got an observation of shape "
                f"{tuple(obs.shape)} (rank {obs.dim()})"
            )


class ShuffleObservations(SensoryWrapper):
    """Shuffle the observation channels (axis 1) with a random permutation per env.

    ``out[n, j] = obs[n, permutation[n, j]]``; for patch observations ``[N, P, d]``
    whole patches move. The permutation is drawn at every reset (and, in an autoreset
    world, for each env whose episode ended) when ``every`` is None; with ``every=K``
    it is also re-drawn for all envs after every ``K`` steps since the reset: the
    observations of the reset and steps ``1 .. K-1`` share one permutation, steps
    ``K .. 2K-1`` the next, and so on.

    Args:
        world: A vectorized world with observations ``[N, D, ...]``.
        every: None, or re-draw every ``K >= 1`` steps.
        seed: Seed of the wrapper's generator (None: fresh entropy).

    Raises:
        ValueError: ``every`` not None nor an integer >= 1; (at reset) an observation of
            rank < 2.
    """

    def __init__(self, world: Any, every: int | None = None, seed: int | None = None) -> None:
        if every is not None and (
            isinstance(every, bool) or not isinstance(every, int) or every < 1
        ):
            raise ValueError(f"every must be None or an integer K >= 1, got {every!r}")
        super().__init__(world, seed)
        self.every = every
        self.permutation: Tensor | None = None
        """``int64[N, D]``: channel ``permutation[n, j]`` of env ``n`` is shown at ``j``."""
        self.steps_since_reset = 0

    def _draw(self, rows: int, channels: int) -> Tensor:
        return torch.rand(rows, channels, generator=self.generator).argsort(dim=1)

    def reshuffle(self) -> Tensor:
        """Draw new permutations for every env now (the next observations use them);
        returns :attr:`permutation`."""
        if self.permutation is None:
            raise RuntimeError("call reset(seed) before reshuffle()")
        n, d = self.permutation.shape
        self.permutation = self._draw(n, d).to(self.permutation.device)
        return self.permutation

    def _on_reset(self, obs: Tensor) -> None:
        self._check_rank(obs, (2, 3, 4, 5), "observations [N, D, ...] (rank >= 2)")
        self.steps_since_reset = 0
        self.permutation = self._draw(obs.shape[0], obs.shape[1]).to(obs.device)

    def _on_episode_end(self, ended: Tensor, obs: Tensor) -> None:
        if self.every is None:
            assert self.permutation is not None
            fresh = self._draw(int(ended.sum()), self.permutation.shape[1])
            self.permutation = self.permutation.clone()
            self.permutation[ended.to(self.permutation.device)] = fresh.to(self.permutation.device)

    def _on_step(self, obs: Tensor) -> None:
        self.steps_since_reset += 1
        if self.every is not None and self.steps_since_reset % self.every == 0:
            self.reshuffle()

    def _take(self, idx: Tensor) -> None:
        if self.permutation is not None:
            self.permutation = self.permutation[idx.to(self.permutation.device)]

    def _transform(self, obs: Tensor) -> Tensor:
        if self.permutation is None:
            raise RuntimeError("call reset(seed) before step()")
        index = self.permutation.to(obs.device)
        index = index.reshape(*index.shape, *([1] * (obs.dim() - 2))).expand_as(obs)
        return torch.gather(obs, 1, index)


class NoiseChannels(SensoryWrapper):
    """Append ``extra`` channels of pure noise, fresh ``N(0, std)`` every observation.

    ``[N, D, ...] -> [N, D + extra, ...]``; the original channels come first, unchanged.
    With ``max_extra`` the number of noise channels is drawn at every reset, uniformly
    in ``[extra, max_extra]`` (one number for the whole batch: its envs share a shape),
    as Tang & Ha trained their cart-pole agent; ``extra`` may then be 0.

    Args:
        world: A vectorized world with float observations ``[N, D, ...]``.
        extra: ``k >= 1`` noise channels (the least, ``>= 0``, with ``max_extra``).
        std: Standard deviation of the noise, > 0.
        seed: Seed of the wrapper's generator (None: fresh entropy).
        max_extra: None (always ``extra``), or the most noise channels of a reset.

    Raises:
        ValueError: ``extra`` < 1 (< 0 with ``max_extra``), ``max_extra`` < ``extra`` or
            < 1, ``std`` not a finite positive number; (at reset) an observation of rank
            < 2 or of a non-float dtype.
    """

    def __init__(
        self,
        world: Any,
        extra: int = 1,
        std: float = 1.0,
        seed: int | None = None,
        max_extra: int | None = None,
    ) -> None:
        low = 0 if max_extra is not None else 1
        if isinstance(extra, bool) or not isinstance(extra, int) or extra < low:
            raise ValueError(f"extra must be an integer >= {low} (noise channels), got {extra!r}")
        if max_extra is not None and (
            isinstance(max_extra, bool)
            or not isinstance(max_extra, int)
            or max_extra < max(extra, 1)
        ):
            raise ValueError(
                f"max_extra must be None or an integer >= max(extra, 1) = {max(extra, 1)}, "
                f"got {max_extra!r}"
            )
        if not (isinstance(std, (int, float)) and math.isfinite(std) and std > 0):
            raise ValueError(f"std must be a finite number > 0, got {std!r}")
        super().__init__(world, seed)
        self.min_extra = extra
        self.max_extra = max_extra
        self.extra = extra
        """Noise channels of the current episode batch."""
        self.std = float(std)

    def _on_reset(self, obs: Tensor) -> None:
        self._check_rank(obs, (2, 3, 4, 5), "observations [N, D, ...] (rank >= 2)")
        if not obs.is_floating_point():
            raise ValueError(
                f"NoiseChannels needs float observations, got dtype {obs.dtype}; convert "
                "the world's observations to float first"
            )
        if self.max_extra is not None:
            span = self.max_extra - self.min_extra + 1
            self.extra = self.min_extra + int(torch.randint(span, (1,), generator=self.generator))

    def _transform(self, obs: Tensor) -> Tensor:
        if not self.extra:
            return obs
        shape = (obs.shape[0], self.extra, *obs.shape[2:])
        noise = torch.randn(shape, generator=self.generator, dtype=torch.float64) * self.std
        return torch.cat((obs, noise.to(device=obs.device, dtype=obs.dtype)), dim=1)


class OccludePatches(SensoryWrapper):
    """Hide a fixed random share of the patches of patch observations ``[N, P, d]``.

    For every env and episode ``round(share * P)`` patches (Python's ``round``) are chosen
    at random and stay hidden until the episode ends. With ``max_share`` the share itself
    is drawn at every reset, uniformly in ``[share, max_share]`` (one for the batch), so
    that training meets every degree of occlusion up to ``max_share``. ``mode="drop"`` (default; what the
    paper does: the agent gets fewer inputs) removes them, giving ``[N, P - r, d]`` with
    the kept patches in their original order; ``mode="zero"`` keeps the shape and zeroes
    them.

    Args:
        world: A vectorized world with patch observations ``[N, P, d]``.
        share: Share of patches hidden, in ``[0, 1)`` (the paper: 0.7).
        seed: Seed of the wrapper's generator (None: fresh entropy).
        mode: ``"drop"`` or ``"zero"``.
        max_share: None (always ``share``), or the largest share of a reset.

    Raises:
        ValueError: ``share`` outside ``[0, 1)``, ``max_share`` outside ``[share, 1)``,
            an unknown mode; (at reset) an
            observation that is not ``[N, P, d]`` or a share that hides every patch.
    """

    def __init__(
        self,
        world: Any,
        share: float = 0.7,
        seed: int | None = None,
        mode: str = "drop",
        max_share: float | None = None,
    ) -> None:
        if not (isinstance(share, (int, float)) and 0.0 <= share < 1.0):
            raise ValueError(f"share must be in [0, 1), got {share!r}")
        if max_share is not None and not (
            isinstance(max_share, (int, float)) and share <= max_share < 1.0
        ):
            raise ValueError(
                f"max_share must be None or in [share, 1) = [{share}, 1), got {max_share!r}"
            )
        if mode not in ("drop", "zero"):
            raise ValueError(f"mode must be 'drop' or 'zero', got {mode!r}")
        super().__init__(world, seed)
        self.min_share = float(share)
        self.max_share = None if max_share is None else float(max_share)
        self.share = float(share)
        """Share hidden in the current episode batch."""
        self.mode = mode
        self.keep_mask: Tensor | None = None
        """``bool[N, P]``: True for the patches each env's agent sees."""
        self.keep_index: Tensor | None = None
        """``int64[N, P - r]``: the kept patches' indices, ascending."""

    def _draw(self, rows: int, patches: int) -> Tensor:
        hidden = round(self.share * patches)
        order = torch.rand(rows, patches, generator=self.generator).argsort(dim=1)
        return order[:, hidden:].sort(dim=1).values

    def _set_index(self, keep_index: Tensor, patches: int) -> None:
        self.keep_index = keep_index
        mask = torch.zeros(keep_index.shape[0], patches, dtype=torch.bool, device=keep_index.device)
        self.keep_mask = mask.scatter(1, keep_index, True)

    def _on_reset(self, obs: Tensor) -> None:
        self._check_rank(obs, (3,), "patch observations [N, P, patch_dim] (rank 3)")
        patches = obs.shape[1]
        if self.max_share is not None:
            # one share for the batch (dropped patches change the shape), hiding fewer
            # than all patches
            u = float(torch.rand((), generator=self.generator, dtype=torch.float64))
            share = self.min_share + u * (self.max_share - self.min_share)
            self.share = min(share, (patches - 1) / patches)
        if round(self.share * patches) >= patches:
            raise ValueError(
                f"share {self.share} of {patches} patches hides all of them; use a smaller share"
            )
        self._set_index(self._draw(obs.shape[0], patches).to(obs.device), patches)

    def _on_episode_end(self, ended: Tensor, obs: Tensor) -> None:
        assert self.keep_index is not None and self.keep_mask is not None
        patches = self.keep_mask.shape[1]
        index = self.keep_index.clone()
        fresh = self._draw(int(ended.sum()), patches)
        index[ended.to(index.device)] = fresh.to(index.device)
        self._set_index(index, patches)

    def _take(self, idx: Tensor) -> None:
        if self.keep_index is not None and self.keep_mask is not None:
            self._set_index(
                self.keep_index[idx.to(self.keep_index.device)], self.keep_mask.shape[1]
            )

    def _transform(self, obs: Tensor) -> Tensor:
        if self.keep_index is None or self.keep_mask is None:
            raise RuntimeError("call reset(seed) before step()")
        if self.mode == "zero":
            return obs * self.keep_mask.to(obs.device)[:, :, None].to(obs.dtype)
        index = self.keep_index.to(obs.device)[:, :, None].expand(-1, -1, obs.shape[2])
        return torch.gather(obs, 1, index)


class BackgroundSwap(SensoryWrapper):
    """Put a new background behind pixel observations ``[N, H, W, C]``.

    ``out = obs * mask + background * (1 - mask)`` with the world's foreground mask
    (``world.foreground_mask() -> [N, H, W]`` or ``[N, H, W, 1]``, 1 on the objects, 0 on
    the background; bool or float). Integer observations (``uint8`` pixels) are blended
    in float and rounded back to their dtype.

    Args:
        world: A vectorized world with pixel observations and ``foreground_mask()``.
        background: ``[H, W, C]`` (shared) or ``[N, H, W, C]`` image in the
            observations' value range.

    Raises:
        ValueError: a world without ``foreground_mask``; a background of another rank;
            (at reset) observations that are not ``[N, H, W, C]`` or a background that does
            not match them.
    """

    def __init__(self, world: Any, background: Tensor | np.ndarray) -> None:
        if not callable(getattr(world, "foreground_mask", None)):
            raise ValueError(
                f"BackgroundSwap needs a world with a foreground_mask() method (1 on the "
                f"objects, 0 on the background); {type(world).__name__} has none"
            )
        bg = background if isinstance(background, Tensor) else torch.as_tensor(background)
        if bg.dim() not in (3, 4):
            raise ValueError(
                f"background must be an image [H, W, C] or [N, H, W, C], got shape "
                f"{tuple(bg.shape)}"
            )
        super().__init__(world, seed=0)
        self.background = bg

    def _on_reset(self, obs: Tensor) -> None:
        self._check_rank(obs, (4,), "pixel observations [N, H, W, C] (rank 4)")
        want = tuple(obs.shape[1:]) if self.background.dim() == 3 else tuple(obs.shape)
        if tuple(self.background.shape) != want:
            raise ValueError(
                f"background of shape {tuple(self.background.shape)} does not match the "
                f"observations {tuple(obs.shape)}; it must be {want}"
            )

    def _take(self, idx: Tensor) -> None:
        if self.background.dim() == 4:
            self.background = self.background[idx.to(self.background.device)]

    def _transform(self, obs: Tensor) -> Tensor:
        mask = self._as_tensor(self.world.foreground_mask()).to(obs.device)
        if mask.dim() == 3:
            mask = mask[..., None]
        if mask.shape[:3] != obs.shape[:3]:
            raise ValueError(
                f"foreground_mask() of shape {tuple(mask.shape)} does not match the "
                f"observations {tuple(obs.shape)}"
            )
        work = obs.dtype if obs.is_floating_point() else torch.float32
        m = mask.to(work)
        out = obs.to(work) * m + self.background.to(device=obs.device, dtype=work) * (1 - m)
        return out if obs.is_floating_point() else out.round().to(obs.dtype)
