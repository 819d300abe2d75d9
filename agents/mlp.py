"""Small feed-forward models: the MLP policy, the linear (or one-layer) policy with
observation normalisation, and the backprop net of Jacobs et al. (1991).

Each is built from a small spec by :func:`colonylab.agents.build`
(``{"type": "mlp", "input_shape": [5], "act_dim": 1, "hidden": [16, 16]}``) and
saved in the one checkpoint format with that spec beside its weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from colonylab._checks import check_choice, check_int

__all__ = ["BackpropNet", "LinearPolicy", "MLPPolicy"]


class MLPPolicy(nn.Module):
    """All inputs, in their fixed order, through a tanh MLP.

    ``obs (B, *input_shape) -> (B, act_dim)``; ``input_shape`` is ``(D,)`` for vectors
    or ``(P, d)`` for patches (flattened to ``P * d``). ``output="tanh"`` squashes the
    result to ``[-1, 1]`` (continuous actions), ``"linear"`` leaves logits (act by
    argmax). As a sensory baseline it only works if input ``j`` always carries the
    same signal: shuffle the inputs and it collapses.

    Args:
        input_shape: shape of one observation, ``(D,)`` or ``(P, d)``.
        act_dim: outputs.
        hidden: widths of the tanh hidden layers (may be empty: a linear map).
        output: ``"tanh"`` or ``"linear"``.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        act_dim: int,
        hidden: Sequence[int] = (16, 16),
        output: str = "tanh",
    ) -> None:
        super().__init__()
        check_choice("output", output, ("tanh", "linear"))
        self.input_shape = tuple(check_int("input_shape entries", int(s), 1) for s in input_shape)
        check_int("act_dim", act_dim, 1)
        hidden = tuple(check_int("hidden widths", int(h), 1) for h in hidden)
        self.output = output
        sizes = [math.prod(self.input_shape), *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(a, b), nn.Tanh()]
        layers.append(nn.Linear(sizes[-1], act_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, obs: Tensor) -> Tensor:
        """``obs (B, *input_shape) -> (B, act_dim)`` (unbatched works too)."""
        shape = tuple(obs.shape[-len(self.input_shape) :])
        if shape != self.input_shape:
            raise ValueError(
                f"the MLP takes inputs of shape (B, {', '.join(map(str, self.input_shape))})"
                f", got {tuple(obs.shape)}: it cannot take a different number of inputs"
            )
        out = self.net(obs.flatten(-len(self.input_shape)) if len(self.input_shape) > 1 else obs)
        return torch.tanh(out) if self.output == "tanh" else out


class LinearPolicy(nn.Module):
    """``obs (B, obs_dim) -> actions (B, act_dim)`` in ``[-1, 1]``: observations
    normalised by stored running statistics (buffers ``obs_mean`` / ``obs_std``), then
    tanh layers; ``hidden=0`` is a linear map under one tanh (the Ant teacher).

    Args:
        obs_dim: observation size.
        act_dim: action size.
        hidden: width of one tanh hidden layer (0: none).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: int = 0) -> None:
        super().__init__()
        check_int("obs_dim", obs_dim, 1)
        check_int("act_dim", act_dim, 1)
        check_int("hidden", hidden, 0)
        sizes = [obs_dim, hidden, act_dim] if hidden else [obs_dim, act_dim]
        self.layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_std", torch.ones(obs_dim))

    def set_obs_stats(self, mean: Tensor, std: Tensor) -> None:
        """Set the normalisation (``(obs_dim,)`` each; ``std`` > 0)."""
        self.obs_mean.copy_(torch.as_tensor(mean, dtype=self.obs_mean.dtype))
        self.obs_std.copy_(torch.as_tensor(std, dtype=self.obs_std.dtype))

    def forward(self, obs: Tensor) -> Tensor:  # obs: (B, obs_dim)
        x = (obs - self.obs_mean) / self.obs_std
        for layer in self.layers:
            x = torch.tanh(layer(x))
        return x  # (B, act_dim)


class BackpropNet(nn.Module):
    """One hidden layer (logistic or tanh) and logistic outputs, trained on squared
    error: the backprop baseline of Jacobs, Jordan, Nowlan & Hinton (1991).

    Args:
        in_dim: inputs.
        hidden: hidden units.
        out_dim: outputs (one per class).
        activation: ``"sigmoid"`` or ``"tanh"`` for the hidden layer.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int, activation: str = "sigmoid"):
        super().__init__()
        check_choice("activation", activation, ("sigmoid", "tanh"))
        self.hidden = nn.Linear(check_int("in_dim", in_dim, 1), check_int("hidden", hidden, 1))
        self.output = nn.Linear(hidden, check_int("out_dim", out_dim, 1))
        self.activation = torch.sigmoid if activation == "sigmoid" else torch.tanh

    def forward(self, x: Tensor) -> Tensor:
        """Output activities in (0, 1): ``x (B, in) -> (B, out)``."""
        return torch.sigmoid(self.output(self.activation(self.hidden(x))))

    def loss(self, x: Tensor, targets: Tensor) -> Tensor:
        """Mean over cases of ``1/2 ||d - y||^2``."""
        return 0.5 * (targets - self(x)).pow(2).sum(-1).mean()
