"""Neural cellular automata: one small rule, shared by every cell of a grid.

Mordvintsev, Randazzo, Niklasson & Levin (2020), "Growing Neural Cellular
Automata", and Randazzo et al. (2020), "Self-classifying MNIST Digits".

A state holds ``C`` channels per cell, **channels last**: ``x: (B, H, W, C)``
float32. The first four channels are RGBA; alpha (channel 3) marks life. One
CA step:

1. *perceive*: each cell sees its 3x3 neighbourhood through fixed identity +
   Sobel-x + Sobel-y filters applied to every channel (depthwise; ``p: (3C,)``
   per cell, ordered ``[x, dx, dy]``), or through a learned 3x3 convolution
   ``C -> 3C`` (``perception="learned"``);
2. *update*: two 1x1 convolutions (``3C -> hidden -> C``, ReLU between; the
   last is zero-initialised, so a fresh rule leaves the state unchanged);
3. *stochastic update*: each cell fires with probability ``fire_rate``;
4. *alive masking*: a cell lives while its 3x3 neighbourhood holds an alpha
   above ``alive_threshold`` both before and after the update; dead cells are
   zeroed. An explicit ``alive`` mask (the digits model) replaces this rule.

The fast path computes the update only for the cells that fire and are alive
(about a quarter of the canvas for a grown pattern), with the neighbourhood
filters as shifted slices and the 1x1 convolutions as matrix products on
channels-last rows. ``ReferenceNCA`` is the plain textbook implementation
(separate ``conv2d`` perception, an ``nn.Sequential`` update over the whole
grid); both give the same states for the same random draws (tests check it), and
``colony bench nca`` compares their speed.

Everything is translation-equivariant: with ``wrap=True`` (a torus) exactly,
with zero padding away from the border.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["NCA", "NCAConfig", "ReferenceNCA", "SOBEL_X", "alive_mask", "fire_mask"]

# Sobel filter for d/dx (columns), normalised by 8 as in Mordvintsev et al.
SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0
_IDENTITY = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])


@dataclass(frozen=True)
class NCAConfig:
    """Architecture of a neural CA (saved inside checkpoints)."""

    channels: int = 16
    """State channels per cell; the first four are RGBA."""
    hidden: int = 128
    """Width of the hidden 1x1 layer."""
    perception: str = "sobel"
    """``sobel`` (fixed identity + Sobel x/y, depthwise) or ``learned`` (a 3x3 conv C -> 3C)."""
    fire_rate: float = 0.5
    """Chance that a cell updates in a step (stochastic, asynchronous update)."""
    alive_threshold: float = 0.1
    """A cell lives while the largest alpha of its 3x3 neighbourhood exceeds this."""
    alive_channel: int = 3
    """Channel whose value marks life (alpha)."""
    frozen_channels: int = 0
    """Leading channels the rule never changes (the digits model's input pixel)."""
    wrap: bool = False
    """Torus boundaries (circular padding) instead of zero padding."""

    def __post_init__(self) -> None:
        if not (isinstance(self.channels, int) and self.channels >= 1):
            raise ValueError(f"channels must be an integer >= 1, got {self.channels!r}")
        if not (isinstance(self.hidden, int) and self.hidden >= 1):
            raise ValueError(f"hidden must be an integer >= 1, got {self.hidden!r}")
        if self.perception not in ("sobel", "learned"):
            raise ValueError(f"perception must be 'sobel' or 'learned', got {self.perception!r}")
        if not (
            isinstance(self.fire_rate, (int, float))
            and not isinstance(self.fire_rate, bool)
            and 0.0 < self.fire_rate <= 1.0
        ):
            raise ValueError(f"fire_rate must be in (0, 1], got {self.fire_rate!r}")
        if not (
            isinstance(self.alive_threshold, (int, float))
            and not isinstance(self.alive_threshold, bool)
            and math.isfinite(self.alive_threshold)
        ):
            raise ValueError(
                f"alive_threshold must be a finite number, got {self.alive_threshold!r}"
            )
        if not 0 <= self.alive_channel < self.channels:
            raise ValueError(
                f"alive_channel must be in [0, channels={self.channels}), got {self.alive_channel}"
            )
        if not 0 <= self.frozen_channels < self.channels:
            raise ValueError(
                f"frozen_channels must be in [0, channels={self.channels}), "
                f"got {self.frozen_channels}"
            )


def _pad(x: torch.Tensor, wrap: bool) -> torch.Tensor:
    """Pad ``(B, H, W, C)`` by one cell on each side of H and W (zeros or circular)."""
    if not wrap:
        return F.pad(x, (0, 0, 1, 1, 1, 1))
    x = torch.cat([x[:, -1:], x, x[:, :1]], dim=1)
    return torch.cat([x[:, :, -1:], x, x[:, :, :1]], dim=2)


def alive_mask(x: torch.Tensor, channel: int = 3, threshold: float = 0.1, wrap: bool = False):
    """Cells whose 3x3 neighbourhood holds ``x[..., channel] > threshold``.

    Args:
        x: ``(B, H, W, C)`` states.
    Returns:
        ``bool (B, H, W)``.
    """
    alpha = x[..., channel].unsqueeze(1)  # (B, 1, H, W)
    if wrap:
        alpha = F.pad(alpha, (1, 1, 1, 1), mode="circular")
        pooled = F.max_pool2d(alpha, 3, 1, 0)
    else:
        pooled = F.max_pool2d(alpha, 3, 1, 1)
    return (pooled > threshold).squeeze(1)


def fire_mask(
    shape: tuple[int, int, int],
    rate: float,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Which cells update this step: ``bool (B, H, W)``, each True with chance ``rate``.

    Both implementations draw this one tensor per step, so they agree for the same
    generator state.
    """
    if rate >= 1.0:
        return torch.ones(shape, dtype=torch.bool, device=device)
    return torch.rand(shape, generator=generator, device=device) < rate


class NCA(nn.Module):
    """A neural CA rule (fast path: sparse channels-last update).

    Args:
        config: the architecture; keyword arguments override its fields.
        sparse: update only firing, living cells (gather -> matmul -> scatter). None
            picks it on CPU and the dense masked update on CUDA (no host sync there).

    Shapes:
        ``x: (B, H, W, C)`` float32; ``alive: (B, H, W)`` bool.
    """

    def __init__(self, config: NCAConfig | None = None, sparse: bool | None = None, **kw: Any):
        super().__init__()
        cfg = NCAConfig(**{**(asdict(config) if config else {}), **kw})
        self.config = cfg
        self.sparse = sparse
        c, h = cfg.channels, cfg.hidden
        if cfg.perception == "learned":
            # (3C, C, 3, 3) conv weight, stored as rows of the 9C neighbourhood vector
            bound = 1.0 / math.sqrt(9 * c)
            self.perceive_weight = nn.Parameter(torch.empty(3 * c, 9 * c).uniform_(-bound, bound))
        else:
            self.register_parameter("perceive_weight", None)
        bound = 1.0 / math.sqrt(3 * c)
        self.w1 = nn.Parameter(torch.empty(h, 3 * c).uniform_(-bound, bound))  # (hidden, 3C)
        self.b1 = nn.Parameter(torch.empty(h).uniform_(-bound, bound))
        # zero-initialised last layer: a fresh rule is the identity ("do nothing")
        self.w2 = nn.Parameter(torch.zeros(c - cfg.frozen_channels, h))  # (C - frozen, hidden)

    # -- perception -------------------------------------------------------------------------
    def perceive(self, x: torch.Tensor) -> torch.Tensor:
        """Perception vectors ``(B, H, W, 3C)`` ordered ``[x, d/dx, d/dy]``."""
        xp = _pad(x, self.config.wrap)  # (B, H+2, W+2, C)
        if self.perceive_weight is not None:
            return self._neighbourhood(xp) @ self.perceive_weight.t()
        d = xp[:, :, 2:] - xp[:, :, :-2]  # (B, H+2, W, C): column differences
        gx = (d[:, :-2] + 2.0 * d[:, 1:-1] + d[:, 2:]) * 0.125
        e = xp[:, 2:] - xp[:, :-2]  # (B, H, W+2, C): row differences
        gy = (e[:, :, :-2] + 2.0 * e[:, :, 1:-1] + e[:, :, 2:]) * 0.125
        return torch.cat([x, gx, gy], dim=-1)

    @staticmethod
    def _neighbourhood(xp: torch.Tensor) -> torch.Tensor:
        """The 3x3 neighbourhood of each cell as ``(B, H, W, 9C)``, (C, ky, kx) order."""
        b, hp, wp, c = xp.shape
        h, w = hp - 2, wp - 2
        shifts = [xp[:, i : i + h, j : j + w] for i in range(3) for j in range(3)]
        # (B, H, W, 9, C) -> (B, H, W, C, 9): matches conv weight (out, C, 3, 3) flattened
        return torch.stack(shifts, dim=-1).reshape(b, h, w, c * 9)

    # -- one step ---------------------------------------------------------------------------
    def step(
        self,
        x: torch.Tensor,
        fire: torch.Tensor | None = None,
        alive: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        fire_rate: float | None = None,
    ) -> torch.Tensor:
        """One CA step.

        Args:
            x: ``(B, H, W, C)`` states.
            fire: ``bool (B, H, W)`` cells that update (default: drawn with ``fire_rate``).
            alive: ``bool (B, H, W)`` fixed life mask; None: alpha-based alive masking.
            generator: draws the fire mask.
            fire_rate: overrides ``config.fire_rate`` for this step.
        Returns:
            the next states ``(B, H, W, C)``.
        """
        cfg = self.config
        if x.dim() != 4 or x.shape[-1] != cfg.channels:
            raise ValueError(
                f"expected states of shape (B, H, W, {cfg.channels}) (channels last), "
                f"got {tuple(x.shape)}"
            )
        b, h, w, c = x.shape
        pre = (
            alive
            if alive is not None
            else alive_mask(x, cfg.alive_channel, cfg.alive_threshold, cfg.wrap)
        )
        if fire is None:
            rate = cfg.fire_rate if fire_rate is None else fire_rate
            fire = fire_mask((b, h, w), rate, generator, x.device)
        update = fire & pre  # (B, H, W): cells whose update survives the masks
        p = self.perceive(x).reshape(-1, 3 * c)  # (B*H*W, 3C)
        sparse = self.sparse if self.sparse is not None else x.device.type != "cuda"
        flat = x.reshape(-1, c)
        if sparse:
            idx = torch.nonzero(update.reshape(-1)).squeeze(1)  # (n,)
            hid = torch.addmm(self.b1, p.index_select(0, idx), self.w1.t()).relu_()
            dx = hid @ self.w2.t()  # (n, C - frozen)
            if cfg.frozen_channels:
                dx = F.pad(dx, (cfg.frozen_channels, 0))
            out = flat.index_add(0, idx, dx).view(b, h, w, c)
        else:
            hid = torch.addmm(self.b1, p, self.w1.t()).relu()
            dx = hid @ self.w2.t()
            if cfg.frozen_channels:
                dx = F.pad(dx, (cfg.frozen_channels, 0))
            out = (flat + dx * update.reshape(-1, 1)).view(b, h, w, c)
        if alive is None:
            post = alive_mask(out, cfg.alive_channel, cfg.alive_threshold, cfg.wrap)
            keep = pre & post
        else:
            keep = alive
        return out * keep.unsqueeze(-1)

    def forward(
        self,
        x: torch.Tensor,
        steps: int = 1,
        alive: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Run ``steps`` CA steps on ``x: (B, H, W, C)``."""
        for _ in range(steps):
            x = self.step(x, alive=alive, generator=generator)
        return x

    # -- states -----------------------------------------------------------------------------
    def seed_state(
        self, batch: int, height: int, width: int, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """Zero states with one live seed cell in the centre (all channels but RGB = 1)."""
        c = self.config.channels
        x = torch.zeros(batch, height, width, c, device=device)
        x[:, height // 2, width // 2, 3:] = 1.0
        return x

    def extra_repr(self) -> str:
        cfg = self.config
        return (
            f"channels={cfg.channels}, hidden={cfg.hidden}, perception={cfg.perception!r}, "
            f"fire_rate={cfg.fire_rate}, frozen={cfg.frozen_channels}, wrap={cfg.wrap}"
        )


class ReferenceNCA(nn.Module):
    """The plain implementation: channels-first, separate ``conv2d`` per perception filter,
    an ``nn.Sequential`` of 1x1 convolutions over every cell, masks multiplied in.

    It takes and returns channels-last states like :class:`NCA` so the two can be
    compared directly; :meth:`from_nca` copies an ``NCA``'s weights.
    """

    def __init__(self, config: NCAConfig | None = None, **kw: Any):
        super().__init__()
        cfg = NCAConfig(**{**(asdict(config) if config else {}), **kw})
        self.config = cfg
        c = cfg.channels
        if cfg.perception == "learned":
            self.perceive_conv = nn.Conv2d(c, 3 * c, 3, padding=0, bias=False)
        else:
            self.perceive_conv = None
            self.register_buffer("kernel_x", SOBEL_X.expand(c, 1, 3, 3).clone())
            self.register_buffer("kernel_y", SOBEL_X.t().expand(c, 1, 3, 3).clone())
        self.update = nn.Sequential(
            nn.Conv2d(3 * c, cfg.hidden, 1),
            nn.ReLU(),
            nn.Conv2d(cfg.hidden, c - cfg.frozen_channels, 1, bias=False),
        )
        nn.init.zeros_(self.update[2].weight)

    @classmethod
    def from_nca(cls, nca: NCA) -> ReferenceNCA:
        """A reference with ``nca``'s weights."""
        ref = cls(nca.config).to(nca.w1.device)
        c = nca.config.channels
        with torch.no_grad():
            ref.update[0].weight.copy_(nca.w1[:, :, None, None])
            ref.update[0].bias.copy_(nca.b1)
            ref.update[2].weight.copy_(nca.w2[:, :, None, None])
            if ref.perceive_conv is not None:
                ref.perceive_conv.weight.copy_(nca.perceive_weight.view(3 * c, c, 3, 3))
        return ref

    def _pad(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, H, W)
        return F.pad(x, (1, 1, 1, 1), mode="circular" if self.config.wrap else "constant")

    def step(
        self,
        x: torch.Tensor,
        fire: torch.Tensor | None = None,
        alive: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """One CA step on ``(B, H, W, C)`` states (computed channels-first)."""
        cfg = self.config
        if x.dim() != 4 or x.shape[-1] != cfg.channels:
            raise ValueError(
                f"expected states of shape (B, H, W, {cfg.channels}), got {tuple(x.shape)}"
            )
        b, h, w, c = x.shape
        z = x.permute(0, 3, 1, 2)  # (B, C, H, W)

        def alive_of(state: torch.Tensor) -> torch.Tensor:
            a = self._pad(state[:, cfg.alive_channel : cfg.alive_channel + 1])
            return F.max_pool2d(a, 3, 1, 0) > cfg.alive_threshold  # (B, 1, H, W)

        pre = alive.unsqueeze(1) if alive is not None else alive_of(z)
        if fire is None:
            fire = fire_mask((b, h, w), cfg.fire_rate, generator, x.device)
        zp = self._pad(z)
        if self.perceive_conv is not None:
            p = self.perceive_conv(zp)
        else:
            gx = F.conv2d(zp, self.kernel_x, groups=c)
            gy = F.conv2d(zp, self.kernel_y, groups=c)
            p = torch.cat([z, gx, gy], dim=1)  # (B, 3C, H, W)
        dz = self.update(p)
        if cfg.frozen_channels:
            dz = F.pad(dz, (0, 0, 0, 0, cfg.frozen_channels, 0))
        out = z + dz * (fire.unsqueeze(1) & pre).float()
        keep = (pre & alive_of(out)) if alive is None else pre
        return (out * keep.float()).permute(0, 2, 3, 1)

    def forward(
        self,
        x: torch.Tensor,
        steps: int = 1,
        alive: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        for _ in range(steps):
            x = self.step(x, alive=alive, generator=generator)
        return x
