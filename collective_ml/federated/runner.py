"""The in-process runner: every strategy, round by round, deterministic under a seed.

Strategies (``FedConfig.strategy``), what travels and what the personal model is:

=============  ===========================================  ==============================
strategy       each round                                   personal model
=============  ===========================================  ==============================
``fedavg``     clients train from the global model; the     the global model
               server averages all weights (by examples)
``fedprox``    as fedavg, local loss + ``mu/2 |w - w0|^2``   the global model
``local``      nothing travels; each client trains alone    its own model
``fedavg_ft``  as fedavg                                    global, fine-tuned locally
``fedmoe``     experts averaged across clients; each        global experts + its own gate
               client's router (gate) never leaves it
``gossip``     no server: clients train their own model,    its own model
               then random pairs average their weights
``insight``    clients send statistics only; the server's   server start, adapted locally
               meta-learner sets start and learning rate
``reptile``    server start += step * (mean - start)        start, fine-tuned locally
``median``     as fedavg, coordinate-wise median            the global model
``trimmed``    as fedavg, trimmed mean                      the global model
=============  ===========================================  ==============================

Faults: ``dropout`` (a share of clients misses each round; the round completes with the
rest), ``bad_clients`` (their uploads are NaN or scaled by 1e6; robust rules refuse the
non-finite ones and out-vote the rest, every refusal is logged in ``events``), clients with
no data (they weigh nothing). The server-side aggregation, :func:`server_aggregate`, is the
one the Flower ``ServerApp`` calls, so both engines compute the same numbers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import Tensor

from colonylab.collective_ml.federated.aggregate import (
    coordinate_median,
    corrupt,
    fedavg,
    fedavg_by_expert,
    gossip_round,
    random_matching,
    reptile_step,
    screen,
    trimmed_mean,
)
from colonylab.collective_ml.federated.client import (
    ClientData,
    Update,
    accuracy,
    client_seed,
    client_update,
)
from colonylab.collective_ml.federated.insight import (
    class_statistics,
    fit_from_statistics,
    next_lr,
    pool_statistics,
)
from colonylab.collective_ml.federated.model import (
    FederatedMoE,
    Weights,
    get_weights,
    is_expert_key,
    merge_personal,
    nbytes,
    set_weights,
)

__all__ = [
    "SERVER_STRATEGIES",
    "STRATEGIES",
    "FedConfig",
    "FedResult",
    "build_model",
    "personal_scores",
    "personal_weights_for",
    "personalize",
    "run_federated",
    "server_aggregate",
]

log = logging.getLogger(__name__)

STRATEGIES = (
    "fedavg",
    "fedprox",
    "local",
    "fedavg_ft",
    "fedmoe",
    "gossip",
    "insight",
    "reptile",
    "median",
    "trimmed",
)
SERVER_STRATEGIES = ("fedavg", "fedprox", "fedavg_ft", "reptile", "median", "trimmed")
"""Strategies whose server step is :func:`server_aggregate` (the Flower ServerApp runs these)."""
BAD_MODES = ("nan", "scale")


@dataclass(frozen=True)
class FedConfig:
    """How a federated run goes (all strategies read the fields they need)."""

    strategy: str = "fedavg"
    rounds: int = 20
    local_epochs: int = 2
    batch_size: int = 16
    lr: float = 0.01
    experts: int = 4
    hidden: int = 32
    prox_mu: float = 0.01
    finetune_epochs: int = 3
    reptile_step: float = 0.5
    trim: float = 0.1
    dropout: float = 0.0
    bad_clients: tuple[int, ...] = ()
    bad_mode: str = "nan"
    screen: bool = False
    gossip_steps: int = 1
    private_experts: int = 0
    gate_epochs: int = 0
    expert_weighting: bool = False
    eval_every: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}"
            )
        if self.bad_mode not in BAD_MODES:
            raise ValueError(f"bad_mode must be one of {BAD_MODES}, got {self.bad_mode!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        for name in ("rounds", "local_epochs", "batch_size", "experts", "hidden", "eval_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not 0 <= self.private_experts < self.experts:
            raise ValueError(
                f"private_experts must be in [0, experts={self.experts}), got {self.private_experts!r}"
            )


@dataclass
class FedResult:
    """A run's rows per evaluated round, its logged events and its final weights."""

    history: list[dict]
    events: list[dict]
    global_weights: Weights
    personal_weights: list[Weights]
    config: dict = field(default_factory=dict)

    @property
    def final(self) -> dict:
        return self.history[-1]


def build_model(d_in: int, classes: int, cfg: FedConfig) -> FederatedMoE:
    """The run's model, its initial weights drawn from ``cfg.seed``."""
    torch.manual_seed(cfg.seed)
    return FederatedMoE(d_in, classes, experts=cfg.experts, hidden=cfg.hidden)


def _train_kwargs(cfg: FedConfig, round_: int, cid: int, lr: float | None = None) -> dict:
    return dict(
        epochs=cfg.local_epochs,
        lr=cfg.lr if lr is None else lr,
        batch_size=cfg.batch_size,
        seed=client_seed(cfg.seed, round_, cid),
        prox_mu=cfg.prox_mu if cfg.strategy == "fedprox" else 0.0,
    )


def server_aggregate(
    cfg: FedConfig, start: Weights, updates: dict[int, Update], round_: int
) -> tuple[Weights, list[dict]]:
    """The server's step for :data:`SERVER_STRATEGIES`: ``updates`` by client id (summed in
    id order) -> the next global weights and the events (refusals) it logged."""
    ids = sorted(updates)
    weights = [updates[i].weights for i in ids]
    counts = [updates[i].num_examples for i in ids]
    events: list[dict] = []
    robust = cfg.strategy in ("median", "trimmed")
    if robust or cfg.screen:
        accepted, refused = screen(weights)
        for index, reason in refused.items():
            events.append(
                {"round": round_, "client": ids[index], "event": "refused", "reason": reason}
            )
            log.warning("round %d: refused client %d (%s)", round_, ids[index], reason)
        weights = [weights[i] for i in accepted]
        counts = [counts[i] for i in accepted]
        if not weights:
            return {k: v.clone() for k, v in start.items()}, events
    if cfg.strategy == "median":
        return coordinate_median(weights), events
    if cfg.strategy == "trimmed":
        return trimmed_mean(weights, cfg.trim), events
    if cfg.strategy == "reptile":
        return reptile_step(start, weights, cfg.reptile_step), events
    return fedavg(weights, counts), events


def personal_scores(accs: list[float]) -> tuple[float, float]:
    """Mean personal accuracy over clients with test rows, and the mean of the worst 10%."""
    values = sorted(a for a in accs if a == a)
    if not values:
        return float("nan"), float("nan")
    worst = values[: max(1, math.ceil(0.1 * len(values)))]
    return float(np.mean(values)), float(np.mean(worst))


def personalize(
    model, start: Weights, data: ClientData, cfg: FedConfig, round_: int, cid: int
) -> Weights:
    """A client's last local step before its personal evaluation: ``fedavg_ft`` and
    ``reptile`` fine-tune all weights for ``finetune_epochs``; ``fedmoe`` with
    ``gate_epochs`` re-fits only its gate (router) to the freshly averaged experts; the
    other strategies evaluate ``start`` as it is."""
    kwargs = _train_kwargs(cfg, 100_000 + round_, cid)
    kwargs.update(prox_mu=0.0)
    if cfg.strategy in ("fedavg_ft", "reptile") and cfg.finetune_epochs:
        return client_update(
            model, start, data, **{**kwargs, "epochs": cfg.finetune_epochs}
        ).weights
    if cfg.strategy == "fedmoe" and cfg.gate_epochs:
        gate = {k for k in start if not is_expert_key(k)}
        kwargs.update(epochs=cfg.gate_epochs, trainable=gate)
        return client_update(model, start, data, **kwargs).weights
    return start


def run_federated(
    clients: list[ClientData],
    test: tuple[Tensor, Tensor],
    classes: int,
    cfg: FedConfig,
    on_round: Callable[[dict], None] | None = None,
) -> FedResult:
    """Run ``cfg.strategy`` for ``cfg.rounds`` rounds on ``clients``; ``test`` is the global
    held-out set. Returns the :class:`FedResult`; ``on_round`` gets each evaluated row."""
    if not clients:
        raise ValueError("a federated run needs at least one client, got none")
    n = len(clients)
    bad = set(cfg.bad_clients)
    if not bad <= set(range(n)):
        raise ValueError(f"bad_clients must be client ids in [0, {n - 1}], got {sorted(bad)}")
    d_in = clients[0].x_train.shape[1]
    model = build_model(d_in, classes, cfg)
    global_w = get_weights(model)
    personal = [dict(global_w) for _ in range(n)]
    expert_keys = [k for k in global_w if is_expert_key(k)]
    model_bytes = nbytes(global_w)
    s = cfg.strategy
    lr, prev_loss, pooled, sent_total = cfg.lr, None, None, 0
    history, events = [], []
    x_test, y_test = test

    for r in range(1, cfg.rounds + 1):
        rng = np.random.default_rng([cfg.seed, r, 7])
        drop = int(round(cfg.dropout * n))
        dropped = set(rng.choice(n, drop, replace=False).tolist()) if drop else set()
        if dropped:
            events.append({"round": r, "event": "dropped", "clients": sorted(dropped)})
        active = [i for i in range(n) if i not in dropped]
        sent = 0
        if s == "insight":
            if pooled is None:
                stats = [class_statistics(c.x_train, c.y_train, classes) for c in clients]
                pooled = pool_statistics(stats)
                sent += sum(t.numel() * 4 for t in stats)
            global_w = fit_from_statistics(
                model, global_w, pooled, seed=client_seed(cfg.seed, r, 999_999)
            )
            losses = []
            for i in active:
                up = client_update(model, global_w, clients[i], **_train_kwargs(cfg, r, i, lr))
                personal[i] = up.weights
                losses.append(up.loss_after)
            sent += len(active) * (model_bytes + 2 * 4)
            finite = [v for v in losses if v == v]
            loss = float(np.mean(finite)) if finite else float("nan")
            lr, prev_loss = next_lr(lr, loss, prev_loss), loss
        else:
            updates: dict[int, Update] = {}
            for i in active:
                if s in ("local", "gossip"):
                    start = personal[i]
                elif s == "fedmoe":
                    start = merge_personal(global_w, personal[i], cfg.private_experts)
                else:
                    start = global_w
                up = client_update(model, start, clients[i], **_train_kwargs(cfg, r, i))
                if i in bad:
                    up = Update(
                        corrupt(up.weights, cfg.bad_mode),
                        up.num_examples,
                        up.loss_before,
                        up.loss_after,
                    )
                updates[i] = up
            if s in SERVER_STRATEGIES and updates:
                global_w, evs = server_aggregate(cfg, global_w, updates, r)
                events.extend(evs)
                sent += 2 * len(updates) * model_bytes
            elif s == "fedmoe" and updates:
                ids = sorted(updates)
                for i in ids:
                    personal[i] = updates[i].weights
                w = [updates[i].weights for i in ids]
                c = [updates[i].num_examples for i in ids]
                if cfg.screen:
                    ok, refused = screen(w)
                    for index, reason in refused.items():
                        events.append(
                            {"round": r, "client": ids[index], "event": "refused", "reason": reason}
                        )
                    w, c = [w[j] for j in ok], [c[j] for j in ok]
                # experts shared; the averaged router is for the global evaluation only
                if w and cfg.expert_weighting:
                    u = [updates[i].usage for i in ids]
                    if cfg.screen:
                        u = [u[j] for j in ok]
                    global_w = fedavg_by_expert(w, c, u, is_expert_key)
                elif w:
                    global_w = fedavg(w, c)
                shared = 1 - cfg.private_experts / cfg.experts
                sent += int(2 * len(updates) * nbytes(global_w, set(expert_keys)) * shared)
            elif s == "local":
                for i, up in updates.items():
                    personal[i] = up.weights
            elif s == "gossip":
                for i, up in updates.items():
                    personal[i] = up.weights
                for step in range(cfg.gossip_steps):
                    pairs = random_matching(active, np.random.default_rng([cfg.seed, r, step, 11]))
                    mixed = gossip_round({i: personal[i] for i in active}, pairs)
                    for i in active:
                        personal[i] = mixed[i]
                    sent += 2 * len(pairs) * model_bytes

        sent_total += sent
        if r % cfg.eval_every and r != cfg.rounds:
            continue
        row = _evaluate(model, clients, x_test, y_test, global_w, personal, cfg, r)
        row.update(round=r, bytes=sent, bytes_total=sent_total, lr=lr, active=len(active))
        history.append(row)
        if on_round is not None:
            on_round(row)
    return FedResult(history, events, global_w, personal, asdict(cfg))


def personal_weights_for(cfg: FedConfig, global_w: Weights, personal: Weights) -> Weights:
    """The weights a client predicts with (before fine-tuning) under ``cfg.strategy``."""
    if cfg.strategy in ("local", "gossip", "insight"):
        return personal
    if cfg.strategy == "fedmoe":
        return merge_personal(global_w, personal, cfg.private_experts)
    return global_w


def _evaluate(model, clients, x_test, y_test, global_w, personal, cfg, r) -> dict:
    s = cfg.strategy
    if s in ("local", "gossip"):
        global_acc = float(
            np.mean([accuracy(set_weights(model, w), x_test, y_test) for w in personal])
        )
    else:
        global_acc = accuracy(set_weights(model, global_w), x_test, y_test)
    accs = []
    for i, data in enumerate(clients):
        w = personalize(model, personal_weights_for(cfg, global_w, personal[i]), data, cfg, r, i)
        accs.append(accuracy(set_weights(model, w), data.x_test, data.y_test))
    mean, worst = personal_scores(accs)
    return {
        "global_acc": global_acc,
        "personal_acc_mean": mean,
        "personal_acc_worst10": worst,
        "personal_accs": accs,
    }
