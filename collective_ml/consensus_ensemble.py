"""Ensembles that talk: members exchange messages until they agree on one answer.

The members of an :class:`~colonylab.collective_ml.ensemble.Ensemble` each predict
class logits for an input. Instead of averaging them (mean, soft vote) or feeding them
to one meta-learner (stacking), a :class:`TalkingEnsemble` lets every member be a part
of a consensus network (:class:`~colonylab.agents.consensus.ConsensusNetwork`): a
member's node starts from what it predicted (its probabilities, its confidence, its
entropy and, with ``member_ids``, a learned embedding of who it is), then ``steps``
rounds of messages over a graph of members (all-to-all by default: the mean field;
``ring``: each member hears its two neighbours) and GRU updates; every member then
states a revised opinion -- its own log-probabilities plus what the talk decoded (the
decoder starts at zero, so an untrained talk is the mean of log-probabilities) -- and
the ensemble's answer is the softmax of the mean of those opinions.
:func:`~colonylab.agents.consensus.agreement` says how far the members agree.

Like a stacking meta-learner, the network is trained on *out-of-fold* member
predictions (:func:`~colonylab.collective_ml.ensemble.out_of_fold_predictions`): how
members behave on rows they did not see, not on rows they memorised.

Shapes: member logits ``(M, B, C)``; node features ``(B, M, F)``; outputs ``(B, C)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colonylab.agents.consensus import ConsensusNetwork, Neighbourhood, agreement, all_to_all, ring

__all__ = ["GRAPHS", "TalkingEnsemble", "fit_talking"]

GRAPHS = ("all", "ring")


class TalkingEnsemble(nn.Module):
    """A consensus network over the members of an ensemble.

    Args:
        num_members: Members ``M``.
        num_classes: Classes ``C``.
        hidden: State size per member node.
        message: Message size.
        steps: Rounds of messages.
        graph: ``all`` (every member hears the mean of all others) or ``ring``.
        member_ids: Add a learned embedding per member to its node's input (lets the
            network learn who is reliable; without it the network is permutation-
            equivariant over members).
    """

    def __init__(
        self, num_members: int, num_classes: int, *, hidden: int = 32, message: int = 32,
        steps: int = 3, graph: str = "all", member_ids: bool = True,
    ) -> None:  # fmt: skip
        super().__init__()
        for name, value, low in (("num_members", num_members, 1), ("num_classes", num_classes, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if graph not in GRAPHS:
            raise ValueError(f"graph must be one of {', '.join(GRAPHS)}, got {graph!r}")
        if graph == "ring" and num_members < 3:
            raise ValueError(f"graph 'ring' needs >= 3 members, got {num_members}")
        self.num_members, self.num_classes = num_members, num_classes
        self.graph_kind = graph
        self.ids = nn.Embedding(num_members, 8) if member_ids else None
        in_dim = num_classes + 2 + (8 if member_ids else 0)
        self.net = ConsensusNetwork(
            in_dim, num_classes, hidden=hidden, message=message, steps=steps
        )
        nn.init.zeros_(self.net.decode.weight)  # an untrained talk changes no opinion
        nn.init.zeros_(self.net.decode.bias)
        self.graph: Neighbourhood = all_to_all(num_members) if graph == "all" else ring(num_members)

    def node_features(self, member_logits: Tensor) -> Tensor:
        """``(M, B, C)`` logits -> ``(B, M, F)``: probabilities, top probability, entropy
        (divided by ``log C``) and the member embedding."""
        self._check(member_logits)
        logp = torch.log_softmax(member_logits, -1).transpose(0, 1)  # (B, M, C)
        p = logp.exp()
        entropy = -(p * logp).sum(-1, keepdim=True) / math.log(self.num_classes)
        parts = [p, p.max(-1, keepdim=True).values, entropy]
        if self.ids is not None:
            parts.append(self.ids.weight[None].expand(p.shape[0], -1, -1))
        return torch.cat(parts, -1)

    def opinions(self, member_logits: Tensor) -> Tensor:
        """Every member's revised logits after the talk: ``(M, B, C)`` -> ``(B, M, C)``
        (its own log-probabilities plus the talk's correction)."""
        own = torch.log_softmax(member_logits, -1).transpose(0, 1)  # (B, M, C)
        return own + self.net(self.node_features(member_logits), self.graph)

    def forward(self, member_logits: Tensor) -> Tensor:
        """The ensemble's log-probabilities ``(B, C)``: softmax of the mean revised opinion."""
        return torch.log_softmax(self.opinions(member_logits).mean(1), -1)

    def agreement(self, member_logits: Tensor) -> Tensor:
        """``(B,)`` share of members whose revised opinion is the plurality's."""
        with torch.no_grad():
            return agreement(self.opinions(member_logits))

    def _check(self, member_logits: Tensor) -> None:
        shape = tuple(member_logits.shape)
        if member_logits.dim() != 3 or shape[0] != self.num_members or shape[2] != self.num_classes:
            raise ValueError(
                f"member logits must have shape (M={self.num_members}, B, C={self.num_classes}), "
                f"got {shape}"
            )


def fit_talking(
    talk: TalkingEnsemble,
    member_logits: Tensor,
    y: Tensor,
    *,
    epochs: int = 60,
    batch_size: int = 128,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    generator: torch.Generator | None = None,
) -> list[float]:
    """Train the talking network on (out-of-fold) member logits ``(M, N, C)`` and labels
    ``y: (N,)``: cross-entropy of the ensemble's answer, Adam; returns the loss per epoch."""
    talk._check(member_logits)
    if y.shape != member_logits.shape[1:2]:
        raise ValueError(f"y must have shape ({member_logits.shape[1]},), got {tuple(y.shape)}")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    opt = torch.optim.AdamW(talk.parameters(), lr=lr, weight_decay=weight_decay)
    n = y.shape[0]
    history = []
    talk.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, batch_size):
            rows = order[start : start + batch_size]
            loss = F.nll_loss(talk(member_logits[:, rows]), y[rows])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(rows)
        history.append(total / n)
    talk.eval()
    return history
