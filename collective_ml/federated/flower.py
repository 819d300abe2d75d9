"""Flower as the engine: a ``ServerApp``/``ClientApp`` pair for the server strategies.

:func:`make_apps` builds both apps around the same pieces as the in-process runner: the
``ClientApp``'s ``train`` handler calls :func:`~.client.client_update` with the seed
:func:`~.client.client_seed` gives for its partition and round, and the ``ServerApp``'s main
loop calls :func:`~.runner.server_aggregate` on the replies ordered by partition id, so a
Flower run gives the same weights as :func:`~.runner.run_federated` (float32 arrays travel as
bytes, unchanged). The server first asks every node for its partition id (a ``query``
message), so dropout draws the same clients in both engines. ``evaluate`` messages return
each client's personal accuracy (after fine-tuning for ``fedavg_ft``/``reptile``).

:func:`run_flower` runs the pair with Flower's simulation engine (Ray backend, one
supernode per client, ``num_cpus`` CPUs on this machine). The data never leaves the client:
``data_fn(partition_id)`` builds a client's :class:`~.client.ClientData` inside the
``ClientApp`` (it must be picklable: a module-level function or a ``functools.partial``).

Strategies: :data:`~.runner.SERVER_STRATEGIES` (``fedavg``, ``fedprox``, ``fedavg_ft``,
``reptile``, ``median``, ``trimmed``), with ``dropout`` and ``bad_clients`` as in the runner.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from colonylab.collective_ml.federated.aggregate import corrupt
from colonylab.collective_ml.federated.client import ClientData, Update, accuracy, client_update
from colonylab.collective_ml.federated.model import FederatedMoE, get_weights, nbytes, set_weights
from colonylab.collective_ml.federated.runner import (
    SERVER_STRATEGIES,
    FedConfig,
    _train_kwargs,
    build_model,
    personal_scores,
    personalize,
    server_aggregate,
)

__all__ = ["make_apps", "run_flower"]

log = logging.getLogger(__name__)


def _to_record(weights):
    from flwr.app import ArrayRecord

    return ArrayRecord(torch_state_dict={k: v.contiguous() for k, v in weights.items()})


def _from_record(record) -> dict[str, Tensor]:
    return {k: v.clone() for k, v in record.to_torch_state_dict().items()}


def make_apps(
    cfg: FedConfig,
    data_fn: Callable[[int], ClientData],
    clients: int,
    d_in: int,
    classes: int,
    test: tuple[Tensor, Tensor],
    result: dict,
):
    """``(server_app, client_app)`` for ``cfg``; the server fills ``result`` with
    ``history``, ``events``, ``global_weights`` and ``personal_accs`` (it runs in this process)."""
    from flwr.app import ConfigRecord, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp

    if cfg.strategy not in SERVER_STRATEGIES:
        raise ValueError(
            f"the Flower engine runs the server strategies {', '.join(SERVER_STRATEGIES)}; "
            f"got {cfg.strategy!r} (run it in process)"
        )
    client_app = ClientApp()

    def _model() -> FederatedMoE:
        return FederatedMoE(d_in, classes, experts=cfg.experts, hidden=cfg.hidden)

    @client_app.query()
    def query(msg: Message, context) -> Message:
        pid = int(context.node_config["partition-id"])
        return Message(RecordDict({"metrics": MetricRecord({"partition-id": pid})}), reply_to=msg)

    @client_app.train()
    def train(msg: Message, context) -> Message:
        pid = int(context.node_config["partition-id"])
        round_ = int(msg.content["config"]["round"])
        start = _from_record(msg.content["arrays"])
        up = client_update(_model(), start, data_fn(pid), **_train_kwargs(cfg, round_, pid))
        weights = corrupt(up.weights, cfg.bad_mode) if pid in cfg.bad_clients else up.weights
        metrics = {"partition-id": pid, "num-examples": up.num_examples}
        metrics.update(loss_before=up.loss_before, loss_after=up.loss_after)
        content = RecordDict({"arrays": _to_record(weights), "metrics": MetricRecord(metrics)})
        return Message(content, reply_to=msg)

    @client_app.evaluate()
    def evaluate(msg: Message, context) -> Message:
        pid = int(context.node_config["partition-id"])
        round_ = int(msg.content["config"]["round"])
        data, model = data_fn(pid), _model()
        weights = _from_record(msg.content["arrays"])
        weights = personalize(model, weights, data, cfg, round_, pid)
        acc = accuracy(set_weights(model, weights), data.x_test, data.y_test)
        metrics = MetricRecord(
            {"partition-id": pid, "personal-acc": acc, "n-test": len(data.y_test)}
        )
        return Message(RecordDict({"metrics": metrics}), reply_to=msg)

    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context) -> None:
        deadline = time.monotonic() + 300
        while len(nodes := list(grid.get_node_ids())) < clients:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"only {len(nodes)} of {clients} Flower nodes connected in 300 s"
                )
            time.sleep(0.2)
        asked = [
            Message(RecordDict({"config": ConfigRecord({})}), dst_node_id=n, message_type="query")
            for n in nodes
        ]
        node_of = {}
        for reply in grid.send_and_receive(asked, timeout=300):
            if not reply.has_error():
                node_of[int(reply.content["metrics"]["partition-id"])] = reply.metadata.src_node_id
        model = build_model(d_in, classes, cfg)
        global_w = get_weights(model)
        history, events = [], []
        for r in range(1, cfg.rounds + 1):
            rng = np.random.default_rng([cfg.seed, r, 7])
            drop = int(round(cfg.dropout * clients))
            dropped = set(rng.choice(clients, drop, replace=False).tolist()) if drop else set()
            if dropped:
                events.append({"round": r, "event": "dropped", "clients": sorted(dropped)})
            active = [p for p in sorted(node_of) if p not in dropped]
            config = ConfigRecord({"round": r})
            messages = [
                Message(
                    RecordDict({"arrays": _to_record(global_w), "config": config}),
                    dst_node_id=node_of[p],
                    message_type="train",
                )
                for p in active
            ]
            updates = {}
            for reply in grid.send_and_receive(messages, timeout=600):
                if reply.has_error():
                    events.append({"round": r, "event": "error", "reason": str(reply.error)})
                    continue
                m = reply.content["metrics"]
                updates[int(m["partition-id"])] = Update(
                    _from_record(reply.content["arrays"]),
                    int(m["num-examples"]),
                    float(m["loss_before"]),
                    float(m["loss_after"]),
                )
            if updates:
                global_w, evs = server_aggregate(cfg, global_w, updates, r)
                events.extend(evs)
            row = {
                "round": r,
                "global_acc": accuracy(set_weights(model, global_w), *test),
                "bytes": 2 * len(updates) * nbytes(global_w),
                "active": len(updates),
            }
            history.append(row)
        asked = [
            Message(
                RecordDict(
                    {"arrays": _to_record(global_w), "config": ConfigRecord({"round": cfg.rounds})}
                ),
                dst_node_id=node_of[p],
                message_type="evaluate",
            )
            for p in sorted(node_of)
        ]
        accs = {}
        for reply in grid.send_and_receive(asked, timeout=600):
            if not reply.has_error():
                m = reply.content["metrics"]
                accs[int(m["partition-id"])] = float(m["personal-acc"])
        personal = [accs.get(p, float("nan")) for p in range(clients)]
        history[-1]["personal_acc_mean"], history[-1]["personal_acc_worst10"] = personal_scores(
            personal
        )
        history[-1]["personal_accs"] = personal
        result.update(history=history, events=events, global_weights=global_w)

    return server_app, client_app


def run_flower(
    cfg: FedConfig,
    data_fn: Callable[[int], ClientData],
    clients: int,
    d_in: int,
    classes: int,
    test: tuple[Tensor, Tensor],
    *,
    num_cpus: int = 2,
    verbose: bool = False,
) -> dict:
    """Run ``cfg`` on Flower's simulation engine (Ray, ``num_cpus`` CPUs); returns the
    server's ``result`` dict (see :func:`make_apps`)."""
    from flwr.simulation import run_simulation

    result: dict = {}
    server_app, client_app = make_apps(cfg, data_fn, clients, d_in, classes, test, result)
    backend = {
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
        "init_args": {"num_cpus": num_cpus, "num_gpus": 0, "include_dashboard": False},
    }
    torch.set_num_threads(1)
    run_simulation(
        server_app=server_app,
        client_app=client_app,
        num_supernodes=clients,
        backend_name="ray",
        backend_config=backend,
        verbose_logging=verbose,
    )
    if "history" not in result:
        raise RuntimeError("the Flower run ended without a result (see Flower's log above)")
    return result
