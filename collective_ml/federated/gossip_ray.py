"""Gossip on Ray actors: no server, each client an actor that keeps its own weights.

Every round each active peer trains on its own data (:func:`~.client.client_update`, the
runner's seed), then the peers of each random pair (:func:`~.aggregate.random_matching`, the
runner's draw) send each other their weights and both keep the mean. The driver only
schedules: the weights go from actor to actor as Ray object references and are never
averaged by the driver. Same seed, same weights as ``run_federated`` with ``gossip``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from torch import Tensor

from colonylab.collective_ml.federated.aggregate import random_matching
from colonylab.collective_ml.federated.client import ClientData, accuracy, client_update
from colonylab.collective_ml.federated.model import FederatedMoE, Weights, get_weights, set_weights
from colonylab.collective_ml.federated.runner import (
    FedConfig,
    _train_kwargs,
    build_model,
    personal_scores,
)

__all__ = ["GossipPeer", "run_gossip_ray"]


class GossipPeer:
    """One client: its data (built by ``data_fn(cid)`` inside the actor) and its weights."""

    def __init__(self, cid: int, data_fn, cfg: FedConfig, d_in: int, classes: int, start: Weights):
        import torch

        torch.set_num_threads(1)
        self.cid, self.cfg, self.data = cid, cfg, data_fn(cid)
        self.model = FederatedMoE(d_in, classes, experts=cfg.experts, hidden=cfg.hidden)
        self.weights = {k: v.clone() for k, v in start.items()}

    def train(self, round_: int) -> int:
        up = client_update(
            self.model, self.weights, self.data, **_train_kwargs(self.cfg, round_, self.cid)
        )
        self.weights = up.weights
        return up.num_examples

    def get(self) -> Weights:
        return self.weights

    def mix(self, other: Weights) -> None:
        self.weights = {k: 0.5 * (self.weights[k] + other[k]) for k in self.weights}

    def personal_accuracy(self) -> float:
        return accuracy(set_weights(self.model, self.weights), self.data.x_test, self.data.y_test)


def run_gossip_ray(
    cfg: FedConfig,
    data_fn: Callable[[int], ClientData],
    clients: int,
    d_in: int,
    classes: int,
    test: tuple[Tensor, Tensor],
    *,
    num_cpus: int = 2,
) -> dict:
    """Gossip for ``cfg.rounds`` rounds with one Ray actor per client; returns ``history``
    (the final row), ``personal_weights`` and ``bytes`` sent."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        model = build_model(d_in, classes, cfg)
        start = get_weights(model)
        actor = ray.remote(num_cpus=0)(GossipPeer)
        peers = [actor.remote(i, data_fn, cfg, d_in, classes, start) for i in range(clients)]
        sent = 0
        for r in range(1, cfg.rounds + 1):
            rng = np.random.default_rng([cfg.seed, r, 7])
            drop = int(round(cfg.dropout * clients))
            dropped = set(rng.choice(clients, drop, replace=False).tolist()) if drop else set()
            active = [i for i in range(clients) if i not in dropped]
            ray.get([peers[i].train.remote(r) for i in active])
            for step in range(cfg.gossip_steps):
                pairs = random_matching(active, np.random.default_rng([cfg.seed, r, step, 11]))
                calls = []
                for a, b in pairs:
                    wa, wb = peers[a].get.remote(), peers[b].get.remote()
                    calls += [peers[a].mix.remote(wb), peers[b].mix.remote(wa)]
                ray.get(calls)
                sent += 2 * len(pairs) * sum(t.numel() * t.element_size() for t in start.values())
        personal = ray.get([p.get.remote() for p in peers])
        accs = ray.get([p.personal_accuracy.remote() for p in peers])
        global_acc = float(np.mean([accuracy(set_weights(model, w), *test) for w in personal]))
        mean, worst = personal_scores(accs)
        row = {"round": cfg.rounds, "global_acc": global_acc, "personal_acc_mean": mean}
        row.update(personal_acc_worst10=worst, personal_accs=accs)
        return {"history": [row], "personal_weights": personal, "bytes": sent}
    finally:
        if started:
            ray.shutdown()
