"""The competitive mixture of local experts of Jacobs, Jordan, Nowlan & Hinton (1991).

"Adaptive mixtures of local experts", Neural Computation 3(1):79-87. ``E`` expert
networks each map the input to an output vector ``o_i(x)``; a gating network maps
the same input to mixing proportions ``p_i(x)`` (a softmax, here with a
temperature). Two objectives per case, with target ``d``:

``competitive`` (the paper's eq. 1.3, a mixture of Gaussians of width ``sigma``)::

    E = -log sum_i p_i exp(-||d - o_i||^2 / (2 sigma^2))

  computed with ``logsumexp``. Each expert is pulled only towards the cases it is
  responsible for: ``dE/do_i = h_i (o_i - d) / sigma^2`` with the posterior
  responsibility ``h_i = p_i exp(-||d - o_i||^2 / 2 sigma^2) / sum_j (...)``, and
  the gate's logits ``z_i`` move towards it: ``dE/dz_i = (p_i - h_i) / T``.

``cooperative`` (the paper's eq. 1.1, the error of the blend)::

    E = 1/2 ||d - sum_i p_i o_i||^2

  every expert is pulled to cancel the others' residual, so they cooperate and
  do not specialise.

Predictions: :meth:`CompetitiveMixture.predict` returns the gate-weighted mix
``sum_i p_i o_i`` (``mode="mix"``, the default) or the output of the expert the
gate ranks first (``mode="select"``, the paper's reading of the competitive
system as choosing one expert per case). For classification with one-hot target
vectors (the paper's vowel task: linear experts with one output per class), the
class is the argmax of the prediction.

The experts are evaluated together: their weights are stacked ``[E, in, out]``
and applied with one ``einsum``, never a Python loop over experts. Experts are
linear (as in the paper's vowel experiment) or, with ``expert="mlp"``, one tanh
hidden layer of ``hidden`` units each.

    mixture = CompetitiveMixture(2, 4, num_experts=4)
    loss = mixture.loss(x, d)               # x: (B, 2), d: (B, 4); scalar
    h = mixture.responsibilities(x, d)      # (B, 4), rows sum to 1
    classes = mixture.predict(x).argmax(-1)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

OBJECTIVES = ("competitive", "cooperative")
EXPERTS = ("linear", "mlp")
REDUCTIONS = ("mean", "sum", "none")
PREDICT_MODES = ("mix", "select")


class MixtureOutput(NamedTuple):
    """What :meth:`CompetitiveMixture.forward` returns.

    Attributes:
        expert_outputs: float[B, E, out_dim], ``o_i(x)`` of every expert.
        gate_log_probs: float[B, E], ``log p_i(x)`` (log-softmax of the gate logits / T).
        gate_probs: float[B, E], ``p_i(x)``; rows sum to 1.
        mixture: float[B, out_dim], the blend ``sum_i p_i o_i``.
    """

    expert_outputs: Tensor
    gate_log_probs: Tensor
    gate_probs: Tensor
    mixture: Tensor


def gaussian_log_likelihoods(expert_outputs: Tensor, targets: Tensor, sigma: float) -> Tensor:
    """``-||d - o_i||^2 / (2 sigma^2)`` per case and expert (no normalising constant).

    Args:
        expert_outputs: float[B, E, O].
        targets: float[B, O].
        sigma: the Gaussians' width, > 0.

    Returns:
        float[B, E].
    """
    sq = (targets.unsqueeze(-2) - expert_outputs).pow(2).sum(-1)
    return -sq / (2.0 * sigma * sigma)


def competitive_loss(
    expert_outputs: Tensor, gate_log_probs: Tensor, targets: Tensor, sigma: float = 1.0
) -> Tensor:
    """Per-case ``-log sum_i p_i exp(-||d - o_i||^2 / 2 sigma^2)``, float[B] (logsumexp)."""
    ll = gaussian_log_likelihoods(expert_outputs, targets, sigma)
    return -torch.logsumexp(gate_log_probs + ll, dim=-1)


def cooperative_loss(expert_outputs: Tensor, gate_probs: Tensor, targets: Tensor) -> Tensor:
    """Per-case ``1/2 ||d - sum_i p_i o_i||^2``, float[B]."""
    mixture = torch.einsum("be,beo->bo", gate_probs, expert_outputs)
    return 0.5 * (targets - mixture).pow(2).sum(-1)


def responsibilities(
    expert_outputs: Tensor, gate_log_probs: Tensor, targets: Tensor, sigma: float = 1.0
) -> Tensor:
    """Posterior ``h_i = p_i exp(-||d-o_i||^2/2 sigma^2) / sum_j (...)``, float[B, E]."""
    ll = gaussian_log_likelihoods(expert_outputs, targets, sigma)
    return torch.softmax(gate_log_probs + ll, dim=-1)


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


class CompetitiveMixture(nn.Module):
    """Experts and a softmax gate over the same input, trained competitively or cooperatively.

    Args:
        in_dim: input features (the paper: 2, the formants F1 and F2).
        out_dim: output units per expert (the paper: 4, one per vowel class).
        num_experts: number of experts ``E`` (>= 1).
        objective: ``"competitive"`` (mixture of Gaussians) or ``"cooperative"``
            (squared error of the blend); see the module docstring.
        sigma: width of the Gaussians in the competitive objective and the
            responsibilities (> 0).
        gate_temperature: the gate is ``softmax(z / T)``; ``T < 1`` sharpens it,
            ``T > 1`` flattens it (> 0).
        expert: ``"linear"`` (the paper) or ``"mlp"`` (one tanh hidden layer).
        hidden: hidden units per expert when ``expert="mlp"``.

    Parameters (stacked over experts): ``expert_weight`` [E, in, out] (or [E, hidden,
    out] for MLP experts, with ``expert_hidden_weight`` [E, in, hidden]),
    ``expert_bias`` [E, out], ``gate_weight`` [in, E], ``gate_bias`` [E]. All are
    drawn uniform in +-1/sqrt(fan_in), like ``nn.Linear``.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        num_experts: int,
        objective: str = "competitive",
        sigma: float = 1.0,
        gate_temperature: float = 1.0,
        expert: str = "linear",
        hidden: int = 8,
    ) -> None:
        super().__init__()
        self.in_dim = _positive_int("in_dim", in_dim)
        self.out_dim = _positive_int("out_dim", out_dim)
        self.num_experts = _positive_int("num_experts", num_experts)
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"sigma must be a finite number > 0, got {sigma!r}")
        if not (
            isinstance(gate_temperature, (int, float))
            and math.isfinite(gate_temperature)
            and gate_temperature > 0
        ):
            raise ValueError(
                f"gate_temperature must be a finite number > 0, got {gate_temperature!r}"
            )
        if expert not in EXPERTS:
            raise ValueError(f"expert must be one of {EXPERTS}, got {expert!r}")
        self.objective = objective
        self.sigma = float(sigma)
        self.gate_temperature = float(gate_temperature)
        self.expert = expert
        self.hidden = _positive_int("hidden", hidden) if expert == "mlp" else 0
        e = self.num_experts
        if expert == "mlp":
            self.expert_hidden_weight = nn.Parameter(torch.empty(e, in_dim, self.hidden))
            self.expert_hidden_bias = nn.Parameter(torch.empty(e, self.hidden))
            last = self.hidden
        else:
            last = in_dim
        self.expert_weight = nn.Parameter(torch.empty(e, last, out_dim))
        self.expert_bias = nn.Parameter(torch.empty(e, out_dim))
        self.gate_weight = nn.Parameter(torch.empty(in_dim, e))
        self.gate_bias = nn.Parameter(torch.empty(e))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw all weights uniform in +-1/sqrt(fan_in) (the default of ``nn.Linear``)."""
        with torch.no_grad():
            if self.expert == "mlp":
                bound = 1.0 / math.sqrt(self.in_dim)
                self.expert_hidden_weight.uniform_(-bound, bound)
                self.expert_hidden_bias.uniform_(-bound, bound)
            bound = 1.0 / math.sqrt(self.expert_weight.shape[1])
            self.expert_weight.uniform_(-bound, bound)
            self.expert_bias.uniform_(-bound, bound)
            bound = 1.0 / math.sqrt(self.in_dim)
            self.gate_weight.uniform_(-bound, bound)
            self.gate_bias.uniform_(-bound, bound)

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, out_dim={self.out_dim}, num_experts={self.num_experts}, "
            f"objective={self.objective!r}, sigma={self.sigma}, "
            f"gate_temperature={self.gate_temperature}, expert={self.expert!r}"
        )

    # -- the pieces -------------------------------------------------------------------------

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 2 or x.shape[-1] != self.in_dim:
            raise ValueError(
                f"input must have shape (batch, in_dim={self.in_dim}), got {tuple(x.shape)}"
            )

    def _check_targets(self, x: Tensor, targets: Tensor) -> None:
        if targets.shape != (x.shape[0], self.out_dim):
            raise ValueError(
                f"targets must have shape (batch={x.shape[0]}, out_dim={self.out_dim}), "
                f"got {tuple(targets.shape)}"
            )

    def gate_logits(self, x: Tensor) -> Tensor:
        """The gate's logits divided by the temperature, float[B, E]."""
        self._check_input(x)
        return (x @ self.gate_weight + self.gate_bias) / self.gate_temperature

    def expert_outputs(self, x: Tensor) -> Tensor:
        """Every expert's output for every case, float[B, E, out_dim] (one einsum)."""
        self._check_input(x)
        if self.expert == "mlp":
            # x: (B, in) -> hidden: (B, E, H)
            x = torch.tanh(
                torch.einsum("bi,eih->beh", x, self.expert_hidden_weight) + self.expert_hidden_bias
            )
            return torch.einsum("beh,eho->beo", x, self.expert_weight) + self.expert_bias
        return torch.einsum("bi,eio->beo", x, self.expert_weight) + self.expert_bias

    def forward(self, x: Tensor) -> MixtureOutput:
        """Experts, gate and blend for a batch ``x``: float[B, in_dim] (see :class:`MixtureOutput`)."""
        outputs = self.expert_outputs(x)
        log_p = torch.log_softmax(self.gate_logits(x), dim=-1)
        p = log_p.exp()
        return MixtureOutput(outputs, log_p, p, torch.einsum("be,beo->bo", p, outputs))

    # -- training and reading it --------------------------------------------------------------

    def loss(
        self,
        x: Tensor,
        targets: Tensor,
        reduction: str = "mean",
        objective: str | None = None,
    ) -> Tensor:
        """The objective per case, reduced.

        Args:
            x: float[B, in_dim].
            targets: float[B, out_dim] (one-hot class vectors for classification).
            reduction: ``"mean"`` (scalar), ``"sum"`` (scalar) or ``"none"`` (float[B]).
            objective: override the module's objective for this call.

        Returns:
            The loss, a scalar or float[B].
        """
        self._check_targets(x, targets)
        return self.loss_from_output(self(x), targets, reduction, objective)

    def loss_from_output(
        self,
        out: MixtureOutput,
        targets: Tensor,
        reduction: str = "mean",
        objective: str | None = None,
    ) -> Tensor:
        """:meth:`loss` from a :meth:`forward` result (one forward pass for loss and output)."""
        objective = self.objective if objective is None else objective
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        if targets.shape != out.mixture.shape:
            raise ValueError(
                f"targets must have shape {tuple(out.mixture.shape)}, got {tuple(targets.shape)}"
            )
        if objective == "competitive":
            per_case = competitive_loss(out.expert_outputs, out.gate_log_probs, targets, self.sigma)
        else:
            per_case = cooperative_loss(out.expert_outputs, out.gate_probs, targets)
        if reduction == "mean":
            return per_case.mean()
        if reduction == "sum":
            return per_case.sum()
        return per_case

    def responsibilities(self, x: Tensor, targets: Tensor) -> Tensor:
        """Posterior responsibility of each expert for each case, float[B, E]; rows sum to 1."""
        self._check_targets(x, targets)
        out = self(x)
        return responsibilities(out.expert_outputs, out.gate_log_probs, targets, self.sigma)

    def predict(self, x: Tensor, mode: str = "mix") -> Tensor:
        """The system's output, float[B, out_dim].

        Args:
            x: float[B, in_dim].
            mode: ``"mix"``: ``sum_i p_i o_i``; ``"select"``: the output of the expert
                with the largest ``p_i`` (the gate's pick).
        """
        if mode not in PREDICT_MODES:
            raise ValueError(f"mode must be one of {PREDICT_MODES}, got {mode!r}")
        out = self(x)
        if mode == "mix":
            return out.mixture
        pick = out.gate_probs.argmax(-1)  # (B,)
        index = pick[:, None, None].expand(-1, 1, self.out_dim)
        return out.expert_outputs.gather(1, index).squeeze(1)

    def gate_choice(self, x: Tensor) -> Tensor:
        """Index of the expert the gate ranks first for each case, int64[B]."""
        return self.gate_logits(x).argmax(-1)
