"""Insight exchange: clients share statistics, never data or weights.

Each client sends, once, the sufficient statistics of its inputs per class
(:func:`class_statistics`: counts, means and variances, ``C x (1 + 2d)`` numbers) and,
every round, two numbers: its training loss before and after adapting the server's model.
The server's meta-learner turns them into the next round's start and learning rate:

* **start** (:func:`fit_from_statistics`): the server pools the class statistics
  (:func:`pool_statistics`) and trains the model on pseudo-rows drawn from the pooled
  class-conditional Gaussians (diagonal), warm-starting from its previous model;
* **learning rate** (:func:`next_lr`): multiplied by ``up`` when the clients' mean loss
  after adaptation fell since the previous round, by ``down`` when it rose (clipped).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colonylab.collective_ml.federated.model import Weights, get_weights, set_weights

__all__ = ["class_statistics", "fit_from_statistics", "next_lr", "pool_statistics"]


def class_statistics(x: Tensor, y: Tensor, classes: int) -> Tensor:
    """``[C, 1 + 2d]``: per class the count, the mean and the (biased) variance of ``x``."""
    d = x.shape[1]
    out = torch.zeros(classes, 1 + 2 * d)
    for c in range(classes):
        rows = x[y == c]
        if rows.shape[0]:
            out[c, 0] = rows.shape[0]
            out[c, 1 : 1 + d] = rows.mean(0)
            out[c, 1 + d :] = rows.var(0, unbiased=False)
    return out


def pool_statistics(stats: list[Tensor]) -> Tensor:
    """Combine clients' :func:`class_statistics` into those of the union of their rows."""
    if not stats:
        raise ValueError("pool_statistics needs at least one client's statistics")
    d = (stats[0].shape[1] - 1) // 2
    counts = torch.stack([s[:, 0] for s in stats])  # [K, C]
    means = torch.stack([s[:, 1 : 1 + d] for s in stats])  # [K, C, d]
    var = torch.stack([s[:, 1 + d :] for s in stats])
    total = counts.sum(0)  # [C]
    w = counts / total.clamp_min(1)  # [K, C]
    mean = (w.unsqueeze(-1) * means).sum(0)  # [C, d]
    second = (w.unsqueeze(-1) * (var + means**2)).sum(0)
    return torch.cat([total.unsqueeze(1), mean, (second - mean**2).clamp_min(0)], dim=1)


def fit_from_statistics(
    model: nn.Module,
    start: Weights,
    pooled: Tensor,
    *,
    rows: int = 2000,
    epochs: int = 5,
    lr: float = 0.01,
    batch_size: int = 64,
    seed: int = 0,
) -> Weights:
    """The server's meta-learner: train ``model`` from ``start`` on ``rows`` pseudo-rows drawn
    from the pooled class Gaussians (classes in proportion to their counts)."""
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(seed)
    d = (pooled.shape[1] - 1) // 2
    counts = pooled[:, 0]
    if counts.sum() <= 0:
        return {k: v.clone() for k, v in start.items()}
    y = torch.multinomial(counts / counts.sum(), rows, replacement=True, generator=generator)
    noise = torch.randn(rows, d, generator=generator)
    x = pooled[y, 1 : 1 + d] + noise * pooled[y, 1 + d :].sqrt()
    set_weights(model, start)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        for idx in torch.randperm(rows, generator=generator).split(batch_size):
            loss = F.nll_loss(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()
    return get_weights(model)


def next_lr(
    lr: float,
    loss: float,
    previous: float | None,
    *,
    up: float = 1.2,
    down: float = 0.5,
    low: float = 1e-4,
    high: float = 0.1,
) -> float:
    """The next round's learning rate from the clients' mean loss now and a round ago."""
    if previous is None or loss != loss:  # first round or no loss reported
        return lr
    return float(min(high, max(low, lr * (up if loss < previous else down))))
