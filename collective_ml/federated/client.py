"""A client: its private data, its local training and its evaluation.

:func:`client_update` is the whole of a client's work in a round: start from the weights it
was sent, train ``epochs`` passes of Adam over its own rows (shuffled by a generator seeded
with ``seed``, so a round is reproducible anywhere: in this process, on a Ray actor or in a
Flower ``ClientApp``), optionally with FedProx's proximal term ``mu/2 ||w - w_start||^2``, and
return the new weights, the number of examples and a few statistics. A client with no rows
returns its start unchanged with ``num_examples = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colonylab.collective_ml.federated.model import Weights, get_weights, set_weights

__all__ = ["ClientData", "Update", "accuracy", "client_seed", "client_update", "mean_loss"]


@dataclass(frozen=True)
class ClientData:
    """One client's rows: ``x_train float32 [n, d]``, ``y_train int64 [n]`` and its own
    held-out rows ``x_test``, ``y_test`` (its personal test); ``group`` names the kind of
    client (e.g. men / women / children) for reports."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    group: str = ""
    info: dict = field(default_factory=dict)

    @property
    def n_train(self) -> int:
        return int(self.y_train.shape[0])


@dataclass(frozen=True)
class Update:
    """What a client sends back after local training."""

    weights: Weights
    num_examples: int
    loss_before: float
    loss_after: float
    usage: list[float] | None = None
    """Mean gate per expert over the training rows (models with a ``gate``), else None."""


def client_seed(seed: int, round_: int, client: int) -> int:
    """The seed of ``client``'s local training in ``round_`` (same in every engine)."""
    return (seed * 1_000_003 + round_ * 10_007 + client) % (2**63 - 1)


@torch.no_grad()
def mean_loss(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Mean negative log-likelihood of ``model`` (log-probabilities) on ``(x, y)``; nan if empty."""
    if y.numel() == 0:
        return float("nan")
    return float(F.nll_loss(model(x), y))


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Share of rows whose argmax is right; nan if there are none."""
    if y.numel() == 0:
        return float("nan")
    return float((model(x).argmax(-1) == y).float().mean())


def client_update(
    model: nn.Module,
    start: Weights,
    data: ClientData,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    prox_mu: float = 0.0,
    trainable=None,
) -> Update:
    """Train ``model`` from ``start`` on ``data``'s training rows; return the :class:`Update`.

    Args:
        model: the architecture (its weights are overwritten with ``start``).
        epochs, lr, batch_size: Adam passes over the rows, its learning rate, rows per step.
        seed: seeds the shuffling (see :func:`client_seed`).
        prox_mu: FedProx's proximal weight (0 = plain local training).
        trainable: names of the weights to train (None = all); the others stay at ``start``.
    """
    torch.set_num_threads(1)
    set_weights(model, start)
    n = data.n_train
    if n == 0:
        return Update({k: v.clone() for k, v in start.items()}, 0, float("nan"), float("nan"))
    model.train()
    loss_before = mean_loss(model, data.x_train, data.y_train)
    params = [p for name, p in model.named_parameters() if trainable is None or name in trainable]
    anchors = [
        start[name]
        for name, _ in model.named_parameters()
        if trainable is None or name in trainable
    ]
    optimizer = torch.optim.Adam(params, lr=lr)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for rows in order.split(batch_size):
            loss = F.nll_loss(model(data.x_train[rows]), data.y_train[rows])
            if prox_mu > 0:
                loss = loss + 0.5 * prox_mu * sum(
                    ((p - a) ** 2).sum() for p, a in zip(params, anchors, strict=True)
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()
    usage = None
    if hasattr(model, "gate"):
        with torch.no_grad():
            usage = model.gate(data.x_train).mean(0).tolist()
    return Update(
        get_weights(model), n, loss_before, mean_loss(model, data.x_train, data.y_train), usage
    )
