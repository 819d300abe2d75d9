"""The federated model: experts and a router from the lab's own modules.

:class:`FederatedMoE` is a dense mixture of ``E`` small classifiers. The experts are one
:class:`~colonylab.collective_ml.ensemble.Ensemble` of two-layer MLPs (``d -> h -> C``,
evaluated in one ``vmap``-ed call); the router is the linear
:class:`~colonylab.collective_ml.moe.Router` of the MoE layers (noise off) plus a gate bias.
The prediction is the gate-weighted mixture of the experts' class probabilities::

    p(y | x) = sum_e g_e(x) softmax(expert_e(x))_y,   g(x) = softmax(x W_g + b)

Weights travel as ``{name: tensor}`` dicts (:func:`get_weights` / :func:`set_weights`);
the names of the experts start with ``experts.`` and those of the router (``router.w_gate``,
``gate_bias``) do not (:func:`is_expert_key`), so a strategy can share one part and keep the
other.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from colonylab.collective_ml.ensemble import Ensemble
from colonylab.collective_ml.moe import Router

__all__ = [
    "Expert",
    "FederatedMoE",
    "Weights",
    "get_weights",
    "is_expert_key",
    "merge_personal",
    "nbytes",
    "set_weights",
]

Weights = dict[str, Tensor]


class Expert(nn.Module):
    """One expert: ``Linear(d, h) -> ReLU -> Linear(h, C)`` (class logits)."""

    def __init__(self, d_in: int, hidden: int, classes: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_in, hidden)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


class FederatedMoE(nn.Module):
    """``E`` MLP experts (an :class:`Ensemble`) mixed by a linear :class:`Router`.

    Args:
        d_in: input features; classes: output classes; experts: ``E``;
        hidden: hidden units of each expert. Weights are drawn from torch's global RNG
        (seed it first).
    """

    def __init__(self, d_in: int, classes: int, experts: int = 4, hidden: int = 32) -> None:
        super().__init__()
        for name, value in (("d_in", d_in), ("classes", classes), ("experts", experts)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.d_in, self.classes, self.num_experts = d_in, classes, experts
        self.experts = Ensemble(factory=lambda: Expert(d_in, hidden, classes), n=experts)
        self.router = Router(d_in, experts, noisy=False)
        self.gate_bias = nn.Parameter(torch.zeros(experts))

    def gate(self, x: Tensor) -> Tensor:
        """``x [B, d]`` -> gate probabilities ``[B, E]``."""
        logits, _ = self.router(x, add_noise=False)
        return torch.softmax(logits + self.gate_bias, dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        """``x [B, d]`` -> log-probabilities of the mixture ``[B, C]``."""
        log_gate = torch.log_softmax(self.router(x, add_noise=False)[0] + self.gate_bias, -1)
        log_p = torch.log_softmax(self.experts(x), dim=-1)  # [E, B, C]
        return torch.logsumexp(log_gate.t().unsqueeze(-1) + log_p, dim=0)


def is_expert_key(name: str) -> bool:
    """Whether the weight ``name`` belongs to the experts (shared by the federated MoE)."""
    return name.startswith("experts.")


def merge_personal(shared: Weights, own: Weights, private: int = 0) -> Weights:
    """A client's weights under the federated MoE: the shared experts from ``shared``, its last
    ``private`` experts and its router (gate) from ``own``."""
    out = {}
    for name, value in own.items():
        if not is_expert_key(name):
            out[name] = value
        elif private:
            merged = shared[name].clone()
            merged[-private:] = value[-private:]
            out[name] = merged
        else:
            out[name] = shared[name]
    return out


def get_weights(model: nn.Module) -> Weights:
    """Detached copies of the model's parameters by name."""
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@torch.no_grad()
def set_weights(model: nn.Module, weights: Weights) -> nn.Module:
    """Copy ``weights`` into the model's parameters (every name must match)."""
    params = dict(model.named_parameters())
    if set(params) != set(weights):
        missing, extra = sorted(set(params) - set(weights)), sorted(set(weights) - set(params))
        raise ValueError(f"weights do not fit the model: missing {missing}, unexpected {extra}")
    for name, p in params.items():
        p.copy_(weights[name])
    return model


def nbytes(weights: Weights, keys=None) -> int:
    """Bytes of ``weights`` (only ``keys`` if given) as sent: elements x element size."""
    return sum(
        t.numel() * t.element_size() for n, t in weights.items() if keys is None or n in keys
    )
