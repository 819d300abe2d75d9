"""A learned per-patch filter in front of a patch policy (NOT in Tang & Ha's paper).

:class:`PatchFilter` is a small fully convolutional network run on every patch *alone*
(zero padding at the patch's own border, nothing crosses patches): ``(B, N, p*p*C)`` ->
``(B, N, p*p*C)``, each pixel blended toward a fill colour by a learned share (an
untrained filter is nearly the identity). Because each patch is filtered by the same
function of its own pixels, a permutation-invariant policy behind it stays exactly
invariant to the patches' order.

:class:`FilteredPolicy` is ``policy(filter(patches))``: in ``sensory-carracing`` the filter
is trained (with the policy frozen) to turn a screen whose grass is replaced by a
background into the same screen with the grass painted one flat green, so that the
AttentionNeuron behind it sees what it was cloned on::

    (B, N, p*p*C) -> per patch: conv 3x3 -> ReLU -> ... -> conv 1x1 -> (share a, colour y)
                  -> (1 - a) * x + a * (fill + y) -> policy
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["FilteredPolicy", "PatchFilter"]


class PatchFilter(nn.Module):
    """Per-patch network that paints what it takes for background one fill colour.

    For every pixel it predicts a share ``a`` in ``[0, 1]`` (how much of the pixel is
    background) and a colour ``y`` (the fill plus a learned correction, for pixels that
    mix road and background) and outputs ``(1 - a) * x + a * y``: where ``a`` is 0 the
    pixel passes exactly, where it is 1 it becomes the fill. An untrained filter has
    ``a`` about 0.002 everywhere (nearly the identity).

    Args:
        patch: side of a square patch in pixels.
        channels: colour channels per pixel (the patch vectors are ``(p, p, C)`` row-major,
            as :func:`~colonylab.envs.classic.carracing.screen_patches` cuts them).
        width: channels of the hidden convolutions.
        layers: convolutions in all (``layers - 1`` of 3 x 3, then one 1 x 1), >= 2.
        fill: the colour background becomes (``C`` values in ``[0, 1]``; default black).
    """

    def __init__(
        self,
        patch: int,
        channels: int = 3,
        width: int = 24,
        layers: int = 4,
        fill: tuple[float, ...] | list[float] | None = None,
    ) -> None:
        super().__init__()
        for name, value, low in (
            ("patch", patch, 1),
            ("channels", channels, 1),
            ("width", width, 1),
            ("layers", layers, 2),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        fill = [0.0] * channels if fill is None else [float(v) for v in fill]
        if len(fill) != channels or not all(0.0 <= v <= 1.0 for v in fill):
            raise ValueError(f"fill must be {channels} values in [0, 1], got {fill!r}")
        self.patch, self.channels = patch, channels
        self.register_buffer("fill", torch.tensor(fill).view(1, channels, 1, 1), persistent=False)
        mods: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
        for _ in range(layers - 2):
            mods += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        last = nn.Conv2d(width, channels + 1, 1)  # share logit, colour correction
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        with torch.no_grad():
            last.bias[0] = -6.0
        self.net = nn.Sequential(*mods, last)

    @property
    def input_dim(self) -> int:
        return self.patch * self.patch * self.channels

    def parts(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """``(filtered patches (..., N, p*p*C), background share (..., N, p*p))``."""
        if obs.dim() < 2 or obs.shape[-1] != self.input_dim:
            raise ValueError(
                f"PatchFilter expects (..., N, {self.input_dim}) patches of "
                f"{self.patch} x {self.patch} x {self.channels}, got shape {tuple(obs.shape)}"
            )
        p, c = self.patch, self.channels
        lead = obs.shape[:-1]
        image = obs.reshape(-1, p, p, c).permute(0, 3, 1, 2)
        head = self.net(image)
        share = torch.sigmoid(head[:, :1])
        out = (1.0 - share) * image + share * (self.fill + head[:, 1:])
        out = out.permute(0, 2, 3, 1).reshape(*lead, self.input_dim)
        return out, share.reshape(*lead, p * p)

    def forward(self, obs: Tensor) -> Tensor:
        return self.parts(obs)[0]


class FilteredPolicy(nn.Module):
    """``policy(filter(obs))``: a :class:`PatchFilter` in front of any patch policy.

    Args:
        filter: the :class:`PatchFilter`'s arguments.
        policy: the policy's agent spec (``{"type": ..., ...}``, :func:`colonylab.agents.build`).
    """

    def __init__(self, filter: Mapping[str, Any], policy: Mapping[str, Any]) -> None:  # noqa: A002
        super().__init__()
        from colonylab.agents import build

        if not isinstance(filter, Mapping) or not isinstance(policy, Mapping):
            raise ValueError(
                f"filter and policy must be dicts (arguments, agent spec), got "
                f"{type(filter).__name__} and {type(policy).__name__}"
            )
        self.filter = PatchFilter(**filter)
        self.policy = build(policy)
        self.recurrent = bool(getattr(self.policy, "recurrent", False))

    def attend(self, obs: Tensor) -> Any:
        """The policy's :meth:`attend` on the filtered patches (viewers)."""
        return self.policy.attend(self.filter(obs))

    def forward(self, obs: Tensor, *args: Any) -> Any:
        return self.policy(self.filter(obs), *args)
