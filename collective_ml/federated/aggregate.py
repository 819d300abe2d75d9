"""Aggregation rules: functions of the clients' weights (``{name: tensor}`` dicts).

* :func:`fedavg` -- the mean weighted by each client's number of examples (McMahan et al.
  2017); clients with no examples weigh nothing.
* :func:`coordinate_median`, :func:`trimmed_mean` -- robust rules (Yin et al. 2018): per
  coordinate, the median, or the mean after dropping the ``trim`` share of the largest and
  of the smallest values; a minority of wild clients is out-voted.
* :func:`screen` -- refuse updates with non-finite values (or, with ``max_norm``, a norm far
  beyond the start); returns the accepted indices and the reasons of the refused ones.
* :func:`reptile_step` -- Reptile (Nichol et al. 2018): ``start + step * (mean - start)``.
* :func:`random_matching`, :func:`gossip_round` -- gossip without a server: a random
  pairing of the clients, each pair averages (some of) its weights.
* :func:`corrupt` -- a bad client: NaN or ``1e6``-scaled weights (fault injection).

The order of summation is the order of the list, so the same inputs give the same bits.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from colonylab.collective_ml.federated.model import Weights

__all__ = [
    "coordinate_median",
    "corrupt",
    "fedavg",
    "fedavg_by_expert",
    "gossip_round",
    "random_matching",
    "reptile_step",
    "screen",
    "trimmed_mean",
]


def _check_nonempty(weights: list[Weights]) -> None:
    if not weights:
        raise ValueError("aggregation needs at least one client's weights, got none")


def fedavg(weights: list[Weights], counts: list[int], keys=None) -> Weights:
    """Mean of ``weights`` weighted by ``counts`` (over ``keys`` only, if given).

    All-zero counts (only empty clients) fall back to the plain mean.
    """
    _check_nonempty(weights)
    if len(counts) != len(weights):
        raise ValueError(f"{len(weights)} weight sets but {len(counts)} counts")
    if any(c < 0 for c in counts):
        raise ValueError(f"counts must be >= 0, got {counts}")
    total = float(sum(counts))
    shares = [c / total for c in counts] if total > 0 else [1.0 / len(counts)] * len(counts)
    names = [k for k in weights[0] if keys is None or k in keys]
    out = {}
    for name in names:
        acc = torch.zeros_like(weights[0][name])
        for w, s in zip(weights, shares, strict=True):
            if s:
                acc = acc + s * w[name]
        out[name] = acc
    return out


def fedavg_by_expert(
    weights: list[Weights], counts: list[int], usage: list[list[float]], is_expert
) -> Weights:
    """FedAvg where expert ``e``'s rows (the leading axis of the stacked expert weights, names
    with ``is_expert(name)``) weigh each client by ``count * usage[e]`` (how much its gate used
    ``e``); the other weights by ``count``. A client that never routes to an expert does not
    drag it toward its own copy."""
    out = fedavg(weights, counts)
    usage_t = (
        torch.tensor(usage, dtype=torch.float64)
        * torch.tensor(counts, dtype=torch.float64)[:, None]
    )
    total = usage_t.sum(0)  # [E]
    shares = torch.where(total > 0, usage_t / total.clamp_min(1e-300), 1.0 / len(weights))  # [K, E]
    for name in out:
        if not is_expert(name):
            continue
        acc = torch.zeros_like(weights[0][name])
        for k, w in enumerate(weights):
            share = shares[k].to(acc.dtype).reshape(-1, *([1] * (acc.dim() - 1)))
            acc = acc + share * w[name]
        out[name] = acc
    return out


def coordinate_median(weights: list[Weights], keys=None) -> Weights:
    """Per-coordinate median (the lower middle value for an even count)."""
    _check_nonempty(weights)
    names = [k for k in weights[0] if keys is None or k in keys]
    return {n: torch.stack([w[n] for w in weights]).median(dim=0).values for n in names}


def trimmed_mean(weights: list[Weights], trim: float = 0.1, keys=None) -> Weights:
    """Per coordinate, drop the ``floor(trim * n)`` largest and smallest values, average the rest."""
    _check_nonempty(weights)
    if not 0 <= trim < 0.5:
        raise ValueError(f"trim must be in [0, 0.5), got {trim!r}")
    n = len(weights)
    cut = math.floor(trim * n)
    names = [k for k in weights[0] if keys is None or k in keys]
    out = {}
    for name in names:
        values = torch.stack([w[name] for w in weights]).sort(dim=0).values
        out[name] = values[cut : n - cut].mean(dim=0)
    return out


def _norm(w: Weights) -> float:
    return math.sqrt(sum(float((t.double() ** 2).sum()) for t in w.values()))


def screen(
    weights: list[Weights], start: Weights | None = None, max_norm: float | None = None
) -> tuple[list[int], dict[int, str]]:
    """Indices of acceptable updates and ``{index: reason}`` for the refused.

    Refused: any non-finite value; with ``start`` and ``max_norm``, an update whose distance
    from ``start`` exceeds ``max_norm`` times the norm of ``start``.
    """
    accepted, refused = [], {}
    for i, w in enumerate(weights):
        if not all(bool(torch.isfinite(t).all()) for t in w.values()):
            refused[i] = "non-finite weights"
            continue
        if start is not None and max_norm is not None:
            distance = _norm({k: w[k] - start[k] for k in w})
            if distance > max_norm * max(_norm(start), 1e-12):
                refused[i] = f"update norm {distance:.3g} > {max_norm:g} x |start|"
                continue
        accepted.append(i)
    return accepted, refused


def reptile_step(start: Weights, weights: list[Weights], step: float) -> Weights:
    """Reptile's meta-update: ``start + step * (mean(weights) - start)`` (``step=1``: the mean)."""
    _check_nonempty(weights)
    mean = fedavg(weights, [1] * len(weights))
    return {k: start[k] + step * (mean[k] - start[k]) for k in start}


def random_matching(ids: list[int], rng: np.random.Generator) -> list[tuple[int, int]]:
    """A random pairing of ``ids`` (one left out when their number is odd)."""
    order = [ids[i] for i in rng.permutation(len(ids))]
    return [(order[i], order[i + 1]) for i in range(0, len(order) - 1, 2)]


def gossip_round(
    weights: dict[int, Weights], pairs: list[tuple[int, int]], keys=None
) -> dict[int, Weights]:
    """Each pair averages the weights named in ``keys`` (all if None); the rest stay put."""
    out = {i: dict(w) for i, w in weights.items()}
    for a, b in pairs:
        for name in weights[a]:
            if keys is None or name in keys:
                mean = 0.5 * (weights[a][name] + weights[b][name])
                out[a][name], out[b][name] = mean, mean.clone()
    return out


def corrupt(weights: Weights, mode: str) -> Weights:
    """A bad client's weights: ``"nan"`` (all NaN) or ``"scale"`` (times 1e6)."""
    if mode == "nan":
        return {k: torch.full_like(v, float("nan")) for k, v in weights.items()}
    if mode == "scale":
        return {k: v * 1e6 for k, v in weights.items()}
    raise ValueError(f"bad-client mode must be 'nan' or 'scale', got {mode!r}")
