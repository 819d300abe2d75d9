"""Voting, and one layer that unifies ensembles and mixtures of experts.

Every collective here is a weighted sum of specialists, ``y = Σ_e w_e f_e(x)``;
what differs is where the weights come from:

- :class:`VotingLayer`: expert outputs ``(E, B, C)`` -> class probabilities
  ``(B, C)`` by soft vote (mean probability), hard vote (share of votes) or
  confidence-weighted vote;
- :class:`UnifiedCollective`: ``uniform`` weights (an ensemble mean),
  ``learned`` weights from a softmax gate on the input (a dense-gated mixture
  of experts) or ``confidence`` weights from the experts' own outputs;
- :class:`RelevanceScorer`: scores each token's relevance and routes it to its
  top-k experts with relevance-conditioned routing logits;
- :func:`swarm_allocate`: a token budget flows to relevant tokens over a few
  competitive (replicator) iterations, then tokens are drawn by multinomial
  sampling of the final budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from colonylab.collective_ml.ensemble import Ensemble, hard_vote, vote_counts

__all__ = [
    "CONFIDENCE_MEASURES",
    "VOTING_MODES",
    "WEIGHTINGS",
    "RelevanceRouting",
    "RelevanceScorer",
    "SwarmAllocation",
    "UnifiedCollective",
    "VotingLayer",
    "confidence_weights",
    "swarm_allocate",
]

VOTING_MODES = ("soft", "hard", "confidence")
WEIGHTINGS = ("uniform", "learned", "confidence")
CONFIDENCE_MEASURES = ("max_prob", "entropy")


# --------------------------------------------------------------------------- #
# Confidence-weighted voting
# --------------------------------------------------------------------------- #


def confidence_weights(probs: Tensor, measure: str = "max_prob") -> Tensor:
    """Per-expert, per-example weights from each expert's own confidence.

    Args:
        probs: ``(E, ..., C)`` expert class probabilities.
        measure: ``"max_prob"``: confidence is the expert's top probability,
            in ``[1/C, 1]``; ``"entropy"``: ``1 − H(p) / log C``, in ``[0, 1]``
            (0 for a uniform guess, 1 for a one-hot one).

    Returns:
        ``(E, ...)`` weights, non-negative and summing to 1 over experts
        (uniform where every expert has zero confidence). Not detached:
        gradients flow through the weights.
    """
    if measure not in CONFIDENCE_MEASURES:
        raise ValueError(
            f"confidence measure must be one of {CONFIDENCE_MEASURES}, got {measure!r}"
        )
    num_classes = probs.shape[-1]
    if measure == "max_prob":
        confidence = probs.amax(dim=-1)
    else:
        if num_classes < 2:
            raise ValueError(f"entropy confidence needs C >= 2 classes, got C={num_classes}")
        entropy = -torch.special.xlogy(probs, probs).sum(dim=-1)
        confidence = (1.0 - entropy / math.log(num_classes)).clamp_min(0.0)
    total = confidence.sum(dim=0, keepdim=True)
    uniform = torch.full_like(confidence, 1.0 / confidence.shape[0])
    return torch.where(total > 0, confidence / total.clamp_min(1e-30), uniform)


class VotingLayer(nn.Module):
    """Combine expert class predictions ``(E, B, C) -> (B, C)`` probabilities.

    Args:
        mode: ``"soft"``: mean of the experts' probabilities; ``"hard"``: the
            share of experts whose argmax is each class (the argmax of it,
            :meth:`predict`, is the majority vote, ties to the lowest class);
            ``"confidence"``: probabilities averaged with
            :func:`confidence_weights` per example.
        confidence: the confidence measure for ``mode="confidence"``.
        from_probs: whether inputs are probabilities (default: logits).
    """

    def __init__(
        self, mode: str = "soft", *, confidence: str = "max_prob", from_probs: bool = False
    ) -> None:
        super().__init__()
        if mode not in VOTING_MODES:
            raise ValueError(f"voting mode must be one of {VOTING_MODES}, got {mode!r}")
        if confidence not in CONFIDENCE_MEASURES:
            raise ValueError(
                f"confidence measure must be one of {CONFIDENCE_MEASURES}, got {confidence!r}"
            )
        self.mode = mode
        self.confidence = confidence
        self.from_probs = from_probs

    def _probs(self, outputs: Tensor) -> Tensor:
        if outputs.dim() != 3:
            raise ValueError(
                f"VotingLayer expects (E, B, C) expert outputs, got {tuple(outputs.shape)}"
            )
        return outputs if self.from_probs else torch.softmax(outputs, dim=-1)

    def forward(self, outputs: Tensor) -> Tensor:
        """``(E, B, C)`` logits (or probabilities) -> ``(B, C)`` probabilities / vote shares."""
        probs = self._probs(outputs)
        if self.mode == "soft":
            return probs.mean(dim=0)
        if self.mode == "hard":
            return vote_counts(probs) / probs.shape[0]
        weights = confidence_weights(probs, self.confidence)  # (E, B)
        return (weights.unsqueeze(-1) * probs).sum(dim=0)

    def predict(self, outputs: Tensor) -> Tensor:
        """``(E, B, C) -> (B,)`` int64 labels; hard mode uses :func:`hard_vote` (ties to the lowest class)."""
        if self.mode == "hard":
            return hard_vote(self._probs(outputs))
        return self(outputs).argmax(dim=-1)


# --------------------------------------------------------------------------- #
# Ensembles and MoE as one layer
# --------------------------------------------------------------------------- #


class UnifiedCollective(nn.Module):
    """``y(x) = Σ_e w_e(x) f_e(x)``: ensemble, dense MoE and confidence vote in one layer.

    Args:
        experts: the expert modules (one architecture) or an :class:`Ensemble`
            of them; they run in one batched ``vmap`` call.
        weighting: ``"uniform"``: ``w_e = 1/E`` (the ensemble mean);
            ``"learned"``: ``w(x) = softmax(gate(x))``, a dense-gated mixture
            of experts (every expert weighted, none skipped); ``"confidence"``:
            :func:`confidence_weights` of ``softmax(f_e(x))``.
        gate: for ``"learned"``, a module mapping ``x: (..., d_in)`` to
            logits ``(..., E)``; default ``nn.Linear(in_features, E)``.
        in_features: input width for the default gate.
        combine: ``"outputs"`` sums the raw expert outputs (regression values,
            logits — as a MoE does); ``"probs"`` sums ``softmax`` of them
            (a soft vote, for classifiers).
        confidence: the measure for ``weighting="confidence"``.

    Shapes: ``x: (*batch, d_in)``, expert outputs ``(E, *batch, D)``,
    weights ``(E, *batch)``, result ``(*batch, D)``.
    """

    def __init__(
        self,
        experts: Sequence[nn.Module] | Ensemble,
        weighting: str = "uniform",
        *,
        gate: nn.Module | None = None,
        in_features: int | None = None,
        combine: str = "outputs",
        confidence: str = "max_prob",
    ) -> None:
        super().__init__()
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        if combine not in ("outputs", "probs"):
            raise ValueError(f"combine must be 'outputs' or 'probs', got {combine!r}")
        if confidence not in CONFIDENCE_MEASURES:
            raise ValueError(
                f"confidence measure must be one of {CONFIDENCE_MEASURES}, got {confidence!r}"
            )
        self.experts = experts if isinstance(experts, Ensemble) else Ensemble(list(experts))
        self.num_experts = self.experts.num_members
        self.weighting = weighting
        self.combine = combine
        self.confidence = confidence
        if weighting == "learned":
            if gate is None:
                if not (isinstance(in_features, int) and in_features >= 1):
                    raise ValueError(
                        "weighting='learned' needs a gate module or in_features (an integer >= 1) "
                        f"for the default linear gate, got in_features={in_features!r}"
                    )
                gate = nn.Linear(in_features, self.num_experts)
            self.gate = gate
        elif gate is not None:
            raise ValueError(f"a gate is only used with weighting='learned', got {weighting!r}")
        else:
            self.gate = None

    def weights(self, x: Tensor, outputs: Tensor) -> Tensor:
        """Expert weights ``(E, *batch)`` for inputs ``x`` and expert outputs ``(E, *batch, D)``."""
        batch_shape = outputs.shape[1:-1]
        if self.weighting == "uniform":
            return outputs.new_full((self.num_experts, *batch_shape), 1.0 / self.num_experts)
        if self.weighting == "learned":
            logits = self.gate(x)  # (*batch, E)
            if logits.shape != (*batch_shape, self.num_experts):
                raise ValueError(
                    f"gate must return logits of shape {(*batch_shape, self.num_experts)}, "
                    f"got {tuple(logits.shape)}"
                )
            return torch.softmax(logits, dim=-1).movedim(-1, 0)
        return confidence_weights(torch.softmax(outputs, dim=-1), self.confidence)

    def forward(self, x: Tensor, *, return_weights: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """``x: (*batch, d_in) -> (*batch, D)``; also the weights ``(E, *batch)`` if asked."""
        outputs = self.experts(x)  # (E, *batch, D)
        if outputs.dim() < 3:
            raise ValueError(
                f"experts must return (*batch, D) outputs, got shape {tuple(outputs.shape[1:])}"
            )
        values = torch.softmax(outputs, dim=-1) if self.combine == "probs" else outputs
        weights = self.weights(x, outputs)
        if self.weighting == "uniform":
            combined = values.mean(dim=0)  # exactly the ensemble mean
        else:
            combined = (weights.unsqueeze(-1) * values).sum(dim=0)
        return (combined, weights) if return_weights else combined


# --------------------------------------------------------------------------- #
# Relevance scoring and routing
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class RelevanceRouting:
    """How a :class:`RelevanceScorer` routes a batch of tokens."""

    relevance: Tensor
    """``(B, T)``: each token's relevance score (a logit)."""
    logits: Tensor
    """``(B, T, E)``: relevance-conditioned routing logits."""
    experts: Tensor
    """``(B, T, k)`` int64: each token's top-k experts, best first."""
    gates: Tensor
    """``(B, T, k)``: combination weights of those experts."""

    def dense_gates(self, num_experts: int) -> Tensor:
        """``(B, T, E)`` gates with zeros for the experts a token was not routed to."""
        dense = self.gates.new_zeros((*self.gates.shape[:-1], num_experts))
        return dense.scatter(-1, self.experts, self.gates)


class RelevanceScorer(nn.Module):
    """Score token relevance and route tokens to experts by it.

    For tokens ``x: (B, T, d)``:

    1. relevance ``r: (B, T)``: ``x · q / sqrt(d)`` with a learnable query
       ``q`` (``scoring="query"``), or a learned linear projection
       ``Linear(d, 1)`` (``scoring="projection"``);
    2. routing logits ``(B, T, E) = router(x) + r · a``, a linear router plus
       the relevance times a learnable per-expert affinity ``a: (E,)``. ``a``
       starts as ``linspace(-1, 1, E)``: relevant tokens lean to the
       high-index experts, irrelevant ones to the low-index ones, until
       training says otherwise;
    3. each token goes to its top-``k`` experts; gates are the softmax over
       those ``k`` logits, times ``sigmoid(r)`` when ``scale_by_relevance``
       (irrelevant tokens contribute little).

    Every step is per token with shared weights, so the scorer is
    permutation-equivariant over tokens.
    """

    def __init__(
        self,
        d_model: int,
        num_experts: int,
        k: int = 1,
        *,
        scoring: str = "query",
        scale_by_relevance: bool = True,
    ) -> None:
        super().__init__()
        for label, value in (("d_model", d_model), ("num_experts", num_experts), ("k", k)):
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ValueError(f"{label} must be an integer >= 1, got {value!r}")
        if k > num_experts:
            raise ValueError(f"k={k} is larger than the number of experts ({num_experts})")
        if scoring not in ("query", "projection"):
            raise ValueError(f"scoring must be 'query' or 'projection', got {scoring!r}")
        self.d_model, self.num_experts, self.k = d_model, num_experts, k
        self.scoring = scoring
        self.scale_by_relevance = scale_by_relevance
        if scoring == "query":
            self.query = nn.Parameter(torch.randn(d_model) / math.sqrt(d_model))
            self.projection = None
        else:
            self.register_parameter("query", None)
            self.projection = nn.Linear(d_model, 1)
        self.router = nn.Linear(d_model, num_experts)
        self.affinity = nn.Parameter(torch.linspace(-1.0, 1.0, num_experts))

    def score(self, x: Tensor) -> Tensor:
        """Relevance ``(B, T, d) -> (B, T)``."""
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(
                f"RelevanceScorer expects tokens (B, T, d_model={self.d_model}), "
                f"got {tuple(x.shape)}"
            )
        if self.query is not None:
            return x @ self.query / math.sqrt(self.d_model)
        return self.projection(x).squeeze(-1)

    def forward(self, x: Tensor) -> RelevanceRouting:
        """Route tokens ``x: (B, T, d)``; see :class:`RelevanceRouting`."""
        relevance = self.score(x)  # (B, T)
        logits = self.router(x) + relevance.unsqueeze(-1) * self.affinity  # (B, T, E)
        top_logits, experts = logits.topk(self.k, dim=-1)  # (B, T, k)
        gates = torch.softmax(top_logits, dim=-1)
        if self.scale_by_relevance:
            gates = gates * torch.sigmoid(relevance).unsqueeze(-1)
        return RelevanceRouting(relevance=relevance, logits=logits, experts=experts, gates=gates)

    @staticmethod
    def combine(expert_outputs: Tensor, routing: RelevanceRouting) -> Tensor:
        """Gate-weighted sum of each token's chosen experts.

        Args:
            expert_outputs: ``(E, B, T, D)`` every expert's output for every
                token (e.g. from an :class:`Ensemble`; sparse dispatch is
                ``moe.py``'s job).
            routing: the routing of the same tokens.

        Returns:
            ``(B, T, D)``: ``Σ_j gates[..., j] · expert_outputs[experts[..., j]]``.
        """
        per_token = expert_outputs.movedim(0, 2)  # (B, T, E, D)
        if per_token.shape[:2] != routing.experts.shape[:2]:
            raise ValueError(
                f"expert_outputs (E, B, T, D) = {tuple(expert_outputs.shape)} do not match "
                f"the routing's (B, T) = {tuple(routing.experts.shape[:2])}"
            )
        index = routing.experts.unsqueeze(-1).expand(-1, -1, -1, per_token.shape[-1])
        chosen = per_token.gather(2, index)  # (B, T, k, D)
        return (routing.gates.unsqueeze(-1) * chosen).sum(dim=2)


# --------------------------------------------------------------------------- #
# Swarm token allocation
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class SwarmAllocation:
    """The flow of a token budget and the tokens it selected."""

    budgets: Tensor
    """``(iterations + 1, *batch, T)``: the budget per token at each iteration
    (index 0 is the uniform start); every row sums to the total budget."""
    selected: Tensor
    """``(*batch, K)`` int64: selected token indices, ascending."""

    @property
    def final(self) -> Tensor:
        """``(*batch, T)``: the final budget."""
        return self.budgets[-1]


def _cap_budget(budget: Tensor, cap: float) -> Tensor:
    """Clip budgets ``(..., T)`` at ``cap`` and hand the excess to uncapped tokens in proportion.

    Water-filling: tokens pushed over the cap are fixed at it; at most ``T``
    rounds. The row sums are unchanged.
    """
    fixed = torch.zeros_like(budget, dtype=torch.bool)
    tolerance = 1e-6 * cap
    for _ in range(budget.shape[-1]):
        over = budget > cap + tolerance
        if not bool(over.any()):
            break
        fixed = fixed | over
        excess = torch.where(over, budget - cap, torch.zeros_like(budget)).sum(-1, keepdim=True)
        budget = torch.where(over, torch.full_like(budget, cap), budget)
        free = torch.where(fixed, torch.zeros_like(budget), budget)
        free_mass = free.sum(-1, keepdim=True)
        budget = torch.where(fixed, budget, budget + excess * free / free_mass.clamp_min(1e-30))
    return budget


def swarm_allocate(
    relevance: Tensor,
    total: float,
    *,
    iterations: int = 3,
    temperature: float = 1.0,
    cap: float | None = None,
    num_select: int | None = None,
    generator: torch.Generator | None = None,
) -> SwarmAllocation:
    """Let a token budget flow to relevant tokens, then draw tokens from it.

    Tokens compete for a fixed budget like replicators: starting uniform
    (``total / T`` each), every iteration

        b_t <- total · b_t exp(r_t / τ) / Σ_s b_s exp(r_s / τ)

    so a token's share grows when it is more relevant than the budget-weighted
    average and shrinks otherwise; after ``n`` iterations without a cap
    ``b = total · softmax(n r / τ)`` — more iterations, sharper
    concentration. With ``cap`` no token holds more than ``cap`` (the excess is
    redistributed among the others in proportion), so the budget spreads over
    at least ``total / cap`` tokens. Finally ``num_select`` tokens are drawn
    by ``torch.multinomial`` without replacement, each draw ∝ the final budget
    of the tokens not yet drawn (sequential draws: a token's chance of being
    kept grows with its budget but is not equal to it).

    Args:
        relevance: ``(T,)`` or ``(B, T)`` token relevance scores.
        total: the budget, e.g. the number of tokens to keep; ``0 < total``,
            and ``total <= cap · T`` with a cap.
        iterations: competitive iterations (>= 0).
        temperature: ``τ > 0``; lower is more competitive.
        cap: optional per-token maximum budget.
        num_select: tokens to draw; ``floor(total)`` by default (``<= T``).
        generator: the random source for the draw (seed it for reproducibility).

    Returns:
        :class:`SwarmAllocation` with the budget after each iteration and the
        selected indices.
    """
    if relevance.dim() not in (1, 2) or relevance.shape[-1] == 0:
        raise ValueError(f"relevance must have shape (T,) or (B, T), got {tuple(relevance.shape)}")
    num_tokens = relevance.shape[-1]
    if not (total > 0 and math.isfinite(total)):
        raise ValueError(f"total budget must be a positive finite number, got {total!r}")
    if not (isinstance(iterations, int) and iterations >= 0):
        raise ValueError(f"iterations must be an integer >= 0, got {iterations!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if cap is not None and not (cap > 0 and cap * num_tokens >= total * (1 - 1e-9)):
        raise ValueError(
            f"cap must be > 0 and leave room for the budget (cap * T >= total): "
            f"cap={cap!r}, T={num_tokens}, total={total!r}"
        )
    num_select = int(total) if num_select is None else num_select
    if not (isinstance(num_select, int) and 1 <= num_select <= num_tokens):
        raise ValueError(
            f"num_select must be an integer in [1, T={num_tokens}], got {num_select!r}"
            + (" (the default is floor(total); pass num_select)" if total < 1 else "")
        )

    relevance = relevance.float() if not relevance.is_floating_point() else relevance
    budget = torch.full_like(relevance, total / num_tokens)
    history = [budget]
    for _ in range(iterations):
        # Log space keeps exp(r / τ) from overflowing.
        budget = total * torch.softmax(budget.log() + relevance / temperature, dim=-1)
        if cap is not None:
            budget = _cap_budget(budget, cap)
        history.append(budget)
    budgets = torch.stack(history)
    final = budgets[-1]
    rows = final.reshape(-1, num_tokens)
    # Tokens whose budget underflowed to zero can still be drawn once the rest run out.
    weights = rows.clamp_min(torch.finfo(rows.dtype).tiny)
    selected = torch.multinomial(weights, num_select, replacement=False, generator=generator)
    selected = selected.sort(dim=-1).values.reshape(*final.shape[:-1], num_select)
    return SwarmAllocation(budgets=budgets, selected=selected)
