"""Client datasets with real heterogeneity for the federated experiments.

* :func:`dirichlet_split` / :func:`digits_clients`: scikit-learn's 8x8 digits (64 inputs in
  [0, 1]); 20% of each class (:func:`~colonylab.runs.data.digits.stratified_split`) is the
  global test set, the rest is dealt to the clients with a Dirichlet prior over labels
  (Hsu et al. 2019): for every class a share vector ``p ~ Dir(alpha)`` over the clients.
  Small ``alpha`` (0.05) gives each client one or two classes, large (100) an even split.
  Each client holds out a quarter of its own rows (its personal test).
* :func:`vowel_clients`: Peterson & Barney (1952), all ten vowels, F0-F3 (``pb52.csv``),
  **each speaker a client** (33 men, 28 women, 15 children); a speaker says each vowel
  twice, the first token trains, the second is the personal test; the global test is all
  second tokens. Inputs: ``(ln F - ln F_ref) / 0.25`` with fixed references (no statistic
  of the data is pooled, so nothing leaks between clients).
* :func:`drift_clients`: a synthetic drifting stream per client: 4 Gaussian classes in 8
  dimensions whose means rotate in a plane at a client-specific speed; each client's first
  three quarters of time train, the last quarter (the future) is its personal test.

Every loader returns ``(clients, (x_test, y_test), classes)`` with
:class:`~colonylab.collective_ml.federated.client.ClientData` clients.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import numpy as np
import torch

from colonylab.collective_ml.federated.client import ClientData
from colonylab.runs.data.digits import stratified_split
from colonylab.runs.data.vowels import GROUPS

__all__ = [
    "DATASETS",
    "PB52",
    "TEN_VOWELS",
    "dirichlet_split",
    "digits_clients",
    "drift_clients",
    "client_of",
    "load_clients",
    "vowel_clients",
]

DATASETS = ("digits", "vowels", "drift")
PB52 = Path(__file__).resolve().parents[3] / "shared" / "data" / "pb52.csv"
"""The Peterson & Barney table next to the repository (``../shared/data/pb52.csv``)."""
TEN_VOWELS = ("iy", "ih", "eh", "ae", "aa", "ao", "uh", "uw", "ah", "er")
FORMANT_REF = np.log(np.array([200.0, 500.0, 1500.0, 2500.0]))
GROUP_NAMES = {code: name for code, name, _ in GROUPS}


def _tensor(x, dtype=torch.float32) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=dtype)


def _personal_split(idx: np.ndarray, share: float, rng: np.random.Generator):
    idx = rng.permutation(idx)
    k = int(round(share * len(idx))) if len(idx) > 1 else 0
    return np.sort(idx[k:]), np.sort(idx[:k])


def dirichlet_split(labels: np.ndarray, clients: int, alpha: float, seed: int) -> list[np.ndarray]:
    """Row indices per client: each class's rows dealt by shares drawn from ``Dir(alpha)``."""
    if not isinstance(clients, int) or clients < 1:
        raise ValueError(f"clients must be an integer >= 1, got {clients!r}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha!r}")
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(clients)]
    for c in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == c))
        shares = rng.dirichlet(np.full(clients, float(alpha)))
        cuts = (np.cumsum(shares)[:-1] * len(rows)).round().astype(int)
        for i, chunk in enumerate(np.split(rows, cuts)):
            parts[i].extend(chunk.tolist())
    return [np.sort(np.array(p, dtype=np.int64)) for p in parts]


def digits_clients(
    clients: int = 20,
    alpha: float = 0.1,
    seed: int = 0,
    test_share: float = 0.2,
    personal_share: float = 0.25,
    empty_clients: int = 0,
):
    """scikit-learn digits dealt to ``clients`` clients by ``Dir(alpha)`` over labels; the last
    ``empty_clients`` clients get no rows at all."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = data.data.astype(np.float32) / 16.0
    y = data.target.astype(np.int64)
    train_idx, test_idx = stratified_split(y, test_share, seed)
    holders = clients - empty_clients
    if holders < 1:
        raise ValueError(f"empty_clients must be < clients ({clients}), got {empty_clients}")
    parts = dirichlet_split(y[train_idx], holders, alpha, seed)
    rng = np.random.default_rng([seed, 1])
    out = []
    for i in range(clients):
        rows = train_idx[parts[i]] if i < holders else np.array([], dtype=np.int64)
        tr, te = _personal_split(rows, personal_share, rng)
        out.append(
            ClientData(
                _tensor(x[tr]).reshape(-1, 64),
                _tensor(y[tr], torch.int64),
                _tensor(x[te]).reshape(-1, 64),
                _tensor(y[te], torch.int64),
                group="",
                info={"classes": sorted(set(y[rows].tolist()))},
            )
        )
    return out, (_tensor(x[test_idx]), _tensor(y[test_idx], torch.int64)), 10


def read_pb52(path: str | Path = PB52) -> dict[str, np.ndarray]:
    """All rows of the Peterson & Barney table: ``formants [N, 4]`` (F0-F3, Hz), ``vowel``
    (index into :data:`TEN_VOWELS`), ``speaker``, ``group`` (m / w / c)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no Peterson & Barney table at {str(path)!r}; expected pb52.csv with columns "
            "Type,Sex,Speaker,Vowel,IPA,F0,F1,F2,F3"
        )
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [
            {k.strip(): (v or "").strip() for k, v in r.items() if k} for r in csv.DictReader(f)
        ]
    need = ("Type", "Speaker", "Vowel", "F0", "F1", "F2", "F3")
    if not rows or any(c not in rows[0] for c in need):
        raise ValueError(f"{str(path)!r} needs the columns {list(need)}")
    rows = [r for r in rows if r["Vowel"] in TEN_VOWELS]
    try:
        formants = np.array([[float(r[c]) for c in ("F0", "F1", "F2", "F3")] for r in rows])
    except ValueError as exc:
        raise ValueError(f"{str(path)!r}: a formant does not parse: {exc}") from None
    return {
        "formants": formants,
        "vowel": np.array([TEN_VOWELS.index(r["Vowel"]) for r in rows], dtype=np.int64),
        "speaker": np.array([int(r["Speaker"]) for r in rows], dtype=np.int64),
        "group": np.array([r["Type"] for r in rows]),
    }


def vowel_features(formants: np.ndarray) -> np.ndarray:
    """``(ln F - ln F_ref) / 0.25`` for F0-F3 with fixed references 200/500/1500/2500 Hz."""
    return ((np.log(formants) - FORMANT_REF) / 0.25).astype(np.float32)


def vowel_clients(path: str | Path = PB52, seed: int = 0):
    """One client per speaker: first token of each vowel trains, the second tests."""
    table = read_pb52(path)
    x = vowel_features(table["formants"])
    y = table["vowel"]
    out, test_rows = [], []
    for speaker in np.unique(table["speaker"]):
        rows = np.flatnonzero(table["speaker"] == speaker)
        first, second = [], []
        for v in range(len(TEN_VOWELS)):
            mine = rows[y[rows] == v]
            first.extend(mine[:1].tolist())
            second.extend(mine[1:].tolist())
        tr, te = np.array(first, dtype=np.int64), np.array(second, dtype=np.int64)
        test_rows.extend(te.tolist())
        code = str(table["group"][rows[0]])
        out.append(
            ClientData(
                _tensor(x[tr]),
                _tensor(y[tr], torch.int64),
                _tensor(x[te]),
                _tensor(y[te], torch.int64),
                group=GROUP_NAMES.get(code, code),
                info={"speaker": int(speaker)},
            )
        )
    test = np.array(test_rows, dtype=np.int64)
    return out, (_tensor(x[test]), _tensor(y[test], torch.int64)), len(TEN_VOWELS)


def drift_clients(
    clients: int = 20, seed: int = 0, steps: int = 120, dim: int = 8, classes: int = 4
):
    """A drifting stream per client (see the module doc); ``info["speed"]`` is its drift speed."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0, 2.0, size=(classes, dim))
    out, tx, ty = [], [], []
    for i in range(clients):
        speed = (i / max(clients - 1, 1)) * np.pi / steps  # up to half a turn over the stream
        t = np.arange(steps)
        y = rng.integers(0, classes, steps)
        angle = speed * t
        mean = np.repeat(base[y][:, None, :], 1, 1)[:, 0, :].copy()
        c, s = np.cos(angle), np.sin(angle)
        m0, m1 = mean[:, 0].copy(), mean[:, 1].copy()
        mean[:, 0], mean[:, 1] = c * m0 - s * m1, s * m0 + c * m1
        x = (mean + rng.normal(0.0, 1.0, size=(steps, dim))).astype(np.float32)
        cut = int(0.75 * steps)
        out.append(
            ClientData(
                _tensor(x[:cut]),
                _tensor(y[:cut], torch.int64),
                _tensor(x[cut:]),
                _tensor(y[cut:], torch.int64),
                group="fast" if i >= clients // 2 else "slow",
                info={"speed": float(speed)},
            )
        )
        tx.append(x[cut:])
        ty.append(y[cut:])
    return out, (_tensor(np.concatenate(tx)), _tensor(np.concatenate(ty), torch.int64)), classes


def load_clients(
    data: str, clients: int = 20, alpha: float = 0.1, seed: int = 0, empty_clients: int = 0
):
    """``digits`` / ``vowels`` / ``drift`` clients by name (vowels ignore ``clients`` and
    ``alpha``: one client per speaker)."""
    if data == "digits":
        return digits_clients(clients, alpha, seed, empty_clients=empty_clients)
    if data == "vowels":
        return vowel_clients(seed=seed)
    if data == "drift":
        return drift_clients(clients, seed)
    raise ValueError(f"data must be one of {', '.join(DATASETS)}, got {data!r}")


@functools.lru_cache(maxsize=4)
def _cached(data: str, clients: int, alpha: float, seed: int, empty_clients: int):
    return load_clients(data, clients, alpha, seed, empty_clients)


def client_of(
    pid: int,
    data: str = "digits",
    clients: int = 20,
    alpha: float = 0.1,
    seed: int = 0,
    empty_clients: int = 0,
) -> ClientData:
    """Client ``pid`` of :func:`load_clients` (cached per process): the ``data_fn`` a Flower
    ``ClientApp`` or a Ray actor calls, through ``functools.partial(client_of, data=...)``."""
    return _cached(data, clients, alpha, seed, empty_clients)[0][pid]
