"""Flower's simulation engine and Ray actors give the in-process runner's numbers."""

from __future__ import annotations

import functools

import pytest
import torch

from colonylab.collective_ml.federated.runner import FedConfig, run_federated
from colonylab.runs.data.federated_splits import client_of, digits_clients

pytest.importorskip("flwr")
pytest.importorskip("ray")


@pytest.mark.slow
def test_flower_fedavg_equals_the_in_process_runner():
    """4 clients, 2 rounds, 2 CPUs: same global weights bit for bit, same personal accuracies."""
    from colonylab.collective_ml.federated.flower import run_flower

    clients, test, classes = digits_clients(4, 0.5, 0)
    cfg = FedConfig(rounds=2, local_epochs=1, experts=2, hidden=8)
    ours = run_federated(clients, test, classes, cfg)
    data_fn = functools.partial(client_of, data="digits", clients=4, alpha=0.5, seed=0)
    flower = run_flower(cfg, data_fn, 4, 64, classes, test, num_cpus=2)
    assert all(
        torch.equal(ours.global_weights[k], flower["global_weights"][k])
        for k in ours.global_weights
    )
    assert flower["history"][-1]["global_acc"] == ours.final["global_acc"]
    assert flower["history"][-1]["personal_accs"] == ours.final["personal_accs"]


@pytest.mark.slow
def test_gossip_on_ray_actors_equals_in_process_gossip():
    from colonylab.collective_ml.federated.gossip_ray import run_gossip_ray

    clients, test, classes = digits_clients(5, 0.5, 0)
    cfg = FedConfig(strategy="gossip", rounds=2, local_epochs=1, experts=2, hidden=8, dropout=0.2)
    ours = run_federated(clients, test, classes, cfg)
    data_fn = functools.partial(client_of, data="digits", clients=5, alpha=0.5, seed=0)
    ray_run = run_gossip_ray(cfg, data_fn, 5, 64, classes, test, num_cpus=2)
    for a, b in zip(ours.personal_weights, ray_run["personal_weights"], strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert ray_run["history"][-1]["personal_accs"] == ours.final["personal_accs"]
