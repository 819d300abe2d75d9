"""A small CNN policy over screen patches: the baseline of ``sensory-carracing``.

It takes the same input as a patch :class:`~colonylab.agents.sensory.AttentionNeuronPolicy`,
``(B, N, patch*patch*C)`` patches in row-major order, puts them back on their grid
(:func:`~colonylab.agents.sensory.unpatchify`; shuffled patches give a scrambled picture)
and runs two strided convolutions and an MLP head (patches of another square size that
tile the same screen are put back on their own grid: the picture is the same)::

    (B, N, p*p*C) -> (B, C, H, W) -> conv k5 s2 -> ReLU -> conv k3 s2 -> ReLU
                  -> flatten -> Linear(hidden) -> ReLU -> Linear(A) [-> tanh]
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from colonylab.agents.sensory import unpatchify

__all__ = ["PatchCNNPolicy"]


class PatchCNNPolicy(nn.Module):
    """CNN on patches reassembled into the screen.

    Args:
        height, width: screen size in pixels (``patch`` divides both).
        patch: side of a square patch.
        channels: colour channels per pixel.
        act_dim: ``A``, outputs.
        conv: output channels of the two convolutions.
        hidden: width of the head's hidden layer.
        output: ``"tanh"`` (actions in [-1, 1]) or ``"linear"``.
    """

    def __init__(
        self,
        height: int,
        width: int,
        patch: int,
        act_dim: int,
        channels: int = 3,
        conv: tuple[int, int] | list[int] = (16, 32),
        hidden: int = 64,
        output: str = "tanh",
    ) -> None:
        super().__init__()
        for name, value in (("height", height), ("width", width), ("patch", patch)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if height % patch or width % patch:
            raise ValueError(f"patch {patch} must divide height {height} and width {width}")
        if output not in ("tanh", "linear"):
            raise ValueError(f"output must be 'tanh' or 'linear', got {output!r}")
        if len(conv) != 2 or min(conv) < 1:
            raise ValueError(f"conv must be two channel counts >= 1, got {conv!r}")
        self.height, self.width, self.patch, self.channels = height, width, patch, channels
        self.output = output
        self.features = nn.Sequential(
            nn.Conv2d(channels, conv[0], 5, stride=2),
            nn.ReLU(),
            nn.Conv2d(conv[0], conv[1], 3, stride=2),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            size = self.features(torch.zeros(1, channels, height, width)).shape[1]
        self.head = nn.Sequential(nn.Linear(size, hidden), nn.ReLU(), nn.Linear(hidden, act_dim))

    def forward(self, obs: Tensor) -> Tensor:
        """``(B, N, patch*patch*C)`` (or unbatched ``(N, ...)``) -> ``(B, A)`` (or ``(A,)``)."""
        unbatched = obs.dim() == 2
        if unbatched:
            obs = obs.unsqueeze(0)
        # patches of another side that tile the same screen are accepted too (the side
        # follows from their size): the screen is the same picture, re-cut
        patch = self.patch
        if obs.dim() == 3 and obs.shape[-1] != patch * patch * self.channels:
            side = math.isqrt(obs.shape[-1] // self.channels)
            if side * side * self.channels == obs.shape[-1] and side >= 1:
                patch = side
        expected = (self.height // patch) * (self.width // patch)
        if (
            obs.dim() != 3
            or self.height % patch
            or self.width % patch
            or obs.shape[1] != expected
            or obs.shape[2] != patch * patch * self.channels
        ):
            cells = (self.height // self.patch) * (self.width // self.patch)
            raise ValueError(
                f"PatchCNNPolicy expects (B, {cells}, {self.patch**2 * self.channels}) "
                f"patches (or square patches of another side tiling the {self.height} x "
                f"{self.width} screen), got {tuple(obs.shape)}"
            )
        image = unpatchify(obs, self.height, self.width, patch).permute(0, 3, 1, 2)
        out = self.head(self.features(image))
        if self.output == "tanh":
            out = torch.tanh(out)
        return out[0] if unbatched else out
