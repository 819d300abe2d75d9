"""Experiment ``federated``: federated ensembles -- experts on many clients, routed, averaged
or gossiped, with a meta-learned start, surviving dropouts and bad clients.

Clients hold private data (:mod:`colonylab.runs.data.federated_splits`): scikit-learn digits
dealt by a Dirichlet prior over labels (``--alpha`` 0.05 non-IID ... 100 IID) to
``--clients`` clients, the Peterson & Barney vowels with each speaker a client (``--data
vowels``; men, women, children), or a drifting synthetic stream per client (``--data
drift``). Every client runs the same model, a mixture of MLP experts under a linear router
(:class:`~colonylab.collective_ml.federated.model.FederatedMoE`); the strategies
(``--strategy``, several at once) differ in what travels
(:mod:`colonylab.collective_ml.federated.runner`): ``fedavg``, ``fedprox``, ``local``,
``fedavg_ft``, ``fedmoe`` (experts averaged, each gate local), ``gossip`` (no server),
``insight`` (statistics only), ``reptile``, ``median``, ``trimmed``.

Each strategy runs for every seed in ``--seeds`` on the same clients (the split is drawn
from the seed too). A row per strategy and seed, and the mean over seeds:
``{data, clients, alpha, strategy, rounds, global_acc, personal_acc_mean,
personal_acc_worst10, bytes_per_round}``; ``global_acc`` is accuracy on the held-out global
test set (for ``local``/``gossip``: the mean over the clients' own models),
``personal_acc_mean`` the mean over clients of each one's model on its own held-out rows,
``personal_acc_worst10`` the mean of the worst 10% of clients. Faults: ``--dropout`` (share
of clients missing each round), ``--bad-clients K`` (clients ``0..K-1`` upload NaN or
1e6-scaled weights, ``--bad-mode``), ``--empty-clients K`` (the last K clients hold no data).

Engines: ``--engine inprocess`` (default) or ``flower`` (Flower's simulation engine on Ray,
``--flower-cpus`` CPUs; server strategies only), which gives the same weights for the
same seed.

Writes ``results.json``, ``metrics.jsonl`` (per strategy and seed, per round),
``checkpoints/final.pt`` (config, rows, curves, the first seed's weights) and
``media/federated-rounds.png`` (accuracy over rounds per strategy) and, with ``fedmoe``,
``media/federated-routing.png`` (the router's expert choice per client group).

    colony train federated --data digits --clients 20 --alpha 0.1 --strategy fedavg local fedmoe
    colony train federated --data vowels --strategy fedavg fedmoe --rounds 60
    colony train federated --strategy fedavg median trimmed --bad-clients 2 --bad-mode scale
    colony train federated --engine flower --strategy fedavg --clients 4 --rounds 2
    colony eval federated --json eval.json
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from colonylab._checks import check_choice, check_float, check_int, option
from colonylab.collective_ml.federated.client import ClientData, accuracy
from colonylab.collective_ml.federated.model import FederatedMoE, is_expert_key, set_weights
from colonylab.collective_ml.federated.runner import (
    SERVER_STRATEGIES,
    STRATEGIES,
    FedConfig,
    personal_scores,
    personal_weights_for,
    personalize,
    run_federated,
)
from colonylab.runs.common import (
    RunDir,
    load_checkpoint,
    make_checkpoint,
    provenance,
    reproduce_command,
)
from colonylab.runs.data.federated_splits import DATASETS, client_of, load_clients

EXPERIMENT = "federated"
ENGINES = ("inprocess", "flower")
SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "federated.pt"
ROW_KEYS = (
    "data",
    "clients",
    "alpha",
    "strategy",
    "rounds",
    "global_acc",
    "personal_acc_mean",
    "personal_acc_worst10",
    "bytes_per_round",
)


@dataclass(frozen=True)
class Config:
    """Federated strategies compared on clients with private, heterogeneous data."""

    data: str = "digits"
    """``digits`` (Dirichlet split), ``vowels`` (one client per speaker) or ``drift``."""
    clients: int = 20
    """Clients (digits, drift; vowels always has its 76 speakers)."""
    alpha: float = 0.1
    """Dirichlet concentration over labels (digits): 0.05 non-IID ... 100 IID."""
    strategy: tuple[str, ...] = ("fedavg", "local", "fedmoe", "gossip")
    """Strategies to run: fedavg fedprox local fedavg_ft fedmoe gossip insight reptile median trimmed."""
    rounds: int = 40
    """Communication rounds."""
    local_epochs: int = 2
    """Passes over its data a client makes per round."""
    batch_size: int = 16
    """Rows per local step."""
    lr: float = 0.01
    """Adam's learning rate on the clients (insight: the first round's)."""
    experts: int = 4
    """Experts in the mixture."""
    hidden: int = 32
    """Hidden units per expert."""
    private_experts: int = 0
    """fedmoe: experts a client keeps to itself, like its gate (0: all experts shared)."""
    expert_weighting: bool = True
    """fedmoe: average expert e weighting each client by how much its gate used e."""
    gate_epochs: int = 0
    """fedmoe: passes re-fitting only a client's gate to the averaged experts before its
    personal evaluation (0: none)."""
    prox_mu: float = 0.01
    """fedprox: weight of the proximal term."""
    finetune_epochs: int = 3
    """fedavg_ft / reptile: local passes before a client's personal evaluation."""
    reptile_step: float = 0.5
    """reptile: server step toward the clients' mean."""
    trim: float = 0.1
    """trimmed: share cut at each end per coordinate."""
    gossip_steps: int = 1
    """gossip: pairings (exchanges) per round."""
    dropout: float = 0.0
    """Share of clients missing each round."""
    bad_clients: int = 0
    """Clients 0..K-1 upload corrupted weights every round."""
    bad_mode: str = "nan"
    """``nan`` or ``scale`` (weights times 1e6)."""
    screen: bool = False
    """fedavg/fedprox/fedmoe: refuse non-finite uploads (median/trimmed always do)."""
    empty_clients: int = 0
    """digits: the last K clients hold no data."""
    seeds: tuple[int, ...] = (0,)
    """Seeds (data split, initial weights, local shuffles, dropouts)."""
    eval_every: int = 2
    """Rounds between evaluations (the last round is always evaluated)."""
    engine: str = "inprocess"
    """``inprocess`` or ``flower`` (Flower simulation on Ray; server strategies only)."""
    flower_cpus: int = 2
    """CPUs Ray may use with ``--engine flower``."""
    threads: int = 1
    """Torch threads."""
    plots: bool = True
    """Write the PNGs."""
    out: str | None = None
    """Run directory root (default runs/out)."""

    def __post_init__(self) -> None:
        check_choice(option("data"), self.data, DATASETS)
        check_choice(option("engine"), self.engine, ENGINES)
        check_choice(option("bad_mode"), self.bad_mode, ("nan", "scale"))
        if not self.strategy:
            raise ValueError("strategy must name at least one of " + ", ".join(STRATEGIES))
        for s in self.strategy:
            check_choice(option("strategy"), s, STRATEGIES)
            if self.engine == "flower" and s not in SERVER_STRATEGIES:
                raise ValueError(
                    f"--engine flower runs {', '.join(SERVER_STRATEGIES)}; got strategy {s!r} "
                    "(run it with --engine inprocess)"
                )
        for name in ("clients", "rounds", "local_epochs", "batch_size", "experts", "hidden"):
            check_int(option(name), getattr(self, name), low=1)
        for name in (
            "bad_clients",
            "empty_clients",
            "gossip_steps",
            "finetune_epochs",
            "gate_epochs",
        ):
            check_int(option(name), getattr(self, name), low=0)
        check_int(option("eval_every"), self.eval_every, low=1)
        check_int(option("flower_cpus"), self.flower_cpus, low=1)
        check_int(option("threads"), self.threads, low=1)
        check_float(option("alpha"), self.alpha, low=1e-6)
        check_float(option("lr"), self.lr, low=1e-8)
        check_float(option("dropout"), self.dropout, low=0.0, high=0.95)
        if self.bad_clients + self.empty_clients > self.clients:
            raise ValueError(
                f"bad_clients + empty_clients must be <= clients ({self.clients}), "
                f"got {self.bad_clients} + {self.empty_clients}"
            )
        if not self.seeds:
            raise ValueError("seeds must list at least one seed")
        if not 0 <= self.private_experts < self.experts:
            raise ValueError(
                f"private_experts must be in [0, experts={self.experts}), got {self.private_experts}"
            )

    def fed_config(self, strategy: str, seed: int) -> FedConfig:
        """The runner's config for one strategy and seed."""
        return FedConfig(
            strategy=strategy,
            rounds=self.rounds,
            local_epochs=self.local_epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            experts=self.experts,
            hidden=self.hidden,
            prox_mu=self.prox_mu,
            finetune_epochs=self.finetune_epochs,
            reptile_step=self.reptile_step,
            trim=self.trim,
            dropout=self.dropout,
            bad_clients=tuple(range(self.bad_clients)),
            bad_mode=self.bad_mode,
            screen=self.screen,
            gossip_steps=self.gossip_steps,
            private_experts=self.private_experts,
            expert_weighting=self.expert_weighting,
            gate_epochs=self.gate_epochs,
            eval_every=self.eval_every,
            seed=seed,
        )


def clients_for(cfg: Config, seed: int):
    """``(clients, test, classes)`` of ``cfg.data`` for ``seed``."""
    return load_clients(cfg.data, cfg.clients, cfg.alpha, seed, cfg.empty_clients)


def routing_table(model: FederatedMoE, weights: list[dict], clients: list[ClientData]) -> dict:
    """Mean gate per expert over each client's rows, averaged by client group:
    ``{group: [share of expert 0, ...]}`` plus ``per_client`` ``[[...], ...]``."""
    per_client, groups = [], {}
    for w, c in zip(weights, clients, strict=True):
        x = torch.cat([c.x_train, c.x_test])
        if x.shape[0] == 0:
            per_client.append(None)
            continue
        with torch.no_grad():
            share = set_weights(model, w).gate(x).mean(0).tolist()
        per_client.append(share)
        groups.setdefault(c.group or "all", []).append(share)
    table = {g: np.mean(v, axis=0).round(4).tolist() for g, v in groups.items()}
    return {"groups": table, "per_client": per_client, "client_groups": [c.group for c in clients]}


def _row(
    cfg: Config, strategy: str, seed: Any, n_clients: int, final: dict, bytes_total: float
) -> dict:
    return {
        "data": cfg.data,
        "clients": n_clients,
        "alpha": cfg.alpha if cfg.data == "digits" else None,
        "strategy": strategy,
        "rounds": cfg.rounds,
        "global_acc": final["global_acc"],
        "personal_acc_mean": final["personal_acc_mean"],
        "personal_acc_worst10": final["personal_acc_worst10"],
        "bytes_per_round": bytes_total / cfg.rounds,
        "seed": seed,
        "dropout": cfg.dropout,
        "bad_clients": cfg.bad_clients,
        "bad_mode": cfg.bad_mode if cfg.bad_clients else None,
        "engine": cfg.engine,
    }


def mean_rows(cfg: Config, rows: list[dict]) -> list[dict]:
    """One row per strategy: the mean over seeds (``seed: "mean"``, ``seeds: n``)."""
    out = []
    for s in cfg.strategy:
        mine = [r for r in rows if r["strategy"] == s]
        if not mine:
            continue
        row = dict(mine[0], seed="mean", seeds=len(mine))
        for key in ("global_acc", "personal_acc_mean", "personal_acc_worst10", "bytes_per_round"):
            row[key] = float(np.mean([r[key] for r in mine]))
        out.append(row)
    return out


def run_one(cfg: Config, strategy: str, seed: int, run: RunDir | None = None) -> dict:
    """One strategy and seed: ``{row, curve, events, weights}``."""
    clients, test, classes = clients_for(cfg, seed)
    fed = cfg.fed_config(strategy, seed)
    if cfg.engine == "flower":
        from colonylab.collective_ml.federated.flower import run_flower

        data_fn = functools.partial(
            client_of,
            data=cfg.data,
            clients=cfg.clients,
            alpha=cfg.alpha,
            seed=seed,
            empty_clients=cfg.empty_clients,
        )
        out = run_flower(
            fed,
            data_fn,
            len(clients),
            clients[0].x_train.shape[1],
            classes,
            test,
            num_cpus=cfg.flower_cpus,
        )
        history, events = out["history"], out["events"]
        global_w, personal = out["global_weights"], [out["global_weights"]] * len(clients)
    else:
        res = run_federated(clients, test, classes, fed)
        history, events, global_w, personal = (
            res.history,
            res.events,
            res.global_weights,
            res.personal_weights,
        )
    if cfg.engine == "flower":  # every round is a row
        total = float(sum(r["bytes"] for r in history))
    else:  # the bytes sent up to the last round
        total = float(history[-1]["bytes_total"])
    final = history[-1]
    if run is not None:
        for r in history:
            scalars = {
                f"{strategy}/s{seed}/{k}": r[k]
                for k in ("global_acc", "personal_acc_mean", "personal_acc_worst10")
                if k in r
            }
            run.log(r["round"], scalars)
    curve = [
        {k: r.get(k) for k in ("round", "global_acc", "personal_acc_mean", "personal_acc_worst10")}
        for r in history
    ]
    return {
        "row": _row(cfg, strategy, seed, len(clients), final, total),
        "curve": curve,
        "events": events,
        "global": global_w,
        "personal": personal,
        "personal_accs": final.get("personal_accs"),
    }


def print_table(rows: list[dict], title: str, console: Console) -> None:
    """The rows as a rich table (accuracies in %, kB per round)."""
    from rich.table import Table

    table = Table(title=title)
    for col in ("strategy", "seed", "global %", "personal %", "worst 10% %", "kB/round"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            r["strategy"],
            str(r.get("seed", "")),
            f"{100 * r['global_acc']:.1f}",
            f"{100 * r['personal_acc_mean']:.1f}",
            f"{100 * r['personal_acc_worst10']:.1f}",
            f"{r['bytes_per_round'] / 1e3:.0f}",
        )
    console.print(table)


def _stored_personal(
    strategy: str, personal: list[dict], global_w: dict, private: int
) -> list[dict] | None:
    if strategy in ("local", "gossip", "insight"):
        return personal
    if strategy == "fedmoe":
        return [{k: v for k, v in w.items() if not is_expert_key(k) or private} for w in personal]
    return None


def main(cfg: Config, resume: str | None = None) -> dict[str, Any]:
    """Run every strategy for every seed; write rows, curves, plots and a checkpoint."""
    torch.set_num_threads(cfg.threads)
    console = Console()
    run = RunDir(EXPERIMENT, cfg.seeds[0], cfg, root=cfg.out, resume=resume, tensorboard=False)
    done: dict[str, Any] = {"rows": [], "curves": {}, "events": {}, "models": {}, "routing": {}}
    if resume is not None:
        saved = load_checkpoint(Path(resume) / "checkpoints" / "latest.pt", EXPERIMENT)["extra"]
        done.update({k: saved[k] for k in done if k in saved})
    finished = {(r["strategy"], r["seed"]) for r in done["rows"]}
    start = time.perf_counter()

    def save(name: str) -> Path:
        state = make_checkpoint(
            EXPERIMENT,
            config=cfg,
            provenance=provenance(
                reproduce_command(f"train {EXPERIMENT}", cfg),
                seed=cfg.seeds[0],
                metrics={
                    f"{r['strategy']}/personal_acc_mean": r["personal_acc_mean"]
                    for r in mean_rows(cfg, done["rows"])
                },
            ),
            extra=done,
        )
        return run.save_checkpoint(name, state)

    try:
        for seed in cfg.seeds:
            for strategy in cfg.strategy:
                if (strategy, seed) in finished:
                    continue
                t0 = time.perf_counter()
                out = run_one(cfg, strategy, seed, run)
                done["rows"].append(out["row"])
                done["curves"][f"{strategy}/s{seed}"] = out["curve"]
                done["events"][f"{strategy}/s{seed}"] = out["events"]
                if seed == cfg.seeds[0]:
                    done["models"][strategy] = {
                        "global": out["global"],
                        "personal": _stored_personal(
                            strategy, out["personal"], out["global"], cfg.private_experts
                        ),
                    }
                    if strategy == "fedmoe":
                        clients, _, classes = clients_for(cfg, seed)
                        model = FederatedMoE(
                            clients[0].x_train.shape[1], classes, cfg.experts, cfg.hidden
                        )
                        weights = [
                            personal_weights_for(cfg.fed_config("fedmoe", seed), out["global"], p)
                            for p in out["personal"]
                        ]
                        done["routing"] = routing_table(model, weights, clients)
                r = out["row"]
                refused = sum(1 for e in out["events"] if e["event"] == "refused")
                console.print(
                    f"{strategy:>9} seed {seed}: global {r['global_acc']:.3f}  personal "
                    f"{r['personal_acc_mean']:.3f} (worst 10% {r['personal_acc_worst10']:.3f})  "
                    f"{r['bytes_per_round'] / 1e3:.0f} kB/round  refused {refused}  "
                    f"{time.perf_counter() - t0:.0f} s"
                )
                save("latest")
    except KeyboardInterrupt:
        path = save("latest")
        console.print(
            f"interrupted; saved {path} ('colony train {EXPERIMENT} --resume {run.path}' continues)"
        )
        run.close()
        raise
    save("final")
    results = {
        "rows": done["rows"] + mean_rows(cfg, done["rows"]),
        "routing": done["routing"].get("groups"),
        "seconds": time.perf_counter() - start,
    }
    (run.path / "results.json").write_text(__import__("json").dumps(results, indent=2) + "\n")
    if cfg.plots:
        plot_rounds(cfg, done["curves"], run.media / "federated-rounds.png")
        if done["routing"]:
            plot_routing(done["routing"], run.media / "federated-routing.png", cfg.data)
    run.close()
    print_table(results["rows"], f"federated: {cfg.data}", console)
    if done["routing"]:
        console.print(
            f"fedmoe routing by group (mean gate per expert): {done['routing']['groups']}"
        )
    console.print(f"run: [bold]{run.path}[/]")
    return results


def evaluate(cfg: Config, checkpoint: str | None = None) -> dict[str, Any]:
    """``colony eval federated``: re-score the checkpoint's first-seed models (default: the
    shipped ``runs/checkpoints/federated.pt``) on their clients; rows as in training."""
    path = Path(checkpoint) if checkpoint else SHIPPED
    if not path.is_file():
        raise FileNotFoundError(
            f"no federated checkpoint at {str(path)!r}; run 'colony train federated' first"
        )
    ckpt = load_checkpoint(path, EXPERIMENT)
    from colonylab.runs.common.checkpoint import config_from_plain

    saved = config_from_plain(Config, ckpt["config"])
    seed = saved.seeds[0]
    clients, test, classes = clients_for(saved, seed)
    model = FederatedMoE(clients[0].x_train.shape[1], classes, saved.experts, saved.hidden)
    rows = []
    for strategy, stored in ckpt["extra"]["models"].items():
        fed = saved.fed_config(strategy, seed)
        global_w = stored["global"]
        personal_stored = stored["personal"]
        accs, global_accs = [], []
        for i, data in enumerate(clients):
            own = personal_stored[i] if personal_stored is not None else global_w
            if strategy == "fedmoe":
                own = {**global_w, **own}
            w = personalize(
                model, personal_weights_for(fed, global_w, own), data, fed, saved.rounds, i
            )
            accs.append(accuracy(set_weights(model, w), data.x_test, data.y_test))
            if strategy in ("local", "gossip"):
                global_accs.append(accuracy(set_weights(model, own), *test))
        global_acc = (
            float(np.mean(global_accs))
            if global_accs
            else accuracy(set_weights(model, global_w), *test)
        )
        mean, worst = personal_scores(accs)
        bytes_rows = [
            r for r in ckpt["extra"]["rows"] if r["strategy"] == strategy and r["seed"] == seed
        ]
        final = {"global_acc": global_acc, "personal_acc_mean": mean, "personal_acc_worst10": worst}
        rows.append(
            _row(
                saved,
                strategy,
                seed,
                len(clients),
                final,
                bytes_rows[0]["bytes_per_round"] * saved.rounds if bytes_rows else float("nan"),
            )
        )
    print_table(rows, f"federated eval: {path.name}", Console())
    return {
        "rows": rows,
        "routing": (ckpt["extra"].get("routing") or {}).get("groups"),
        "checkpoint": str(path),
        "command": ckpt["provenance"].get("command", ""),
    }


STRATEGY_COLOURS = {
    "fedavg": "tab:blue",
    "fedprox": "tab:cyan",
    "local": "tab:gray",
    "fedavg_ft": "tab:olive",
    "fedmoe": "tab:red",
    "gossip": "tab:green",
    "insight": "tab:purple",
    "reptile": "tab:brown",
    "median": "tab:orange",
    "trimmed": "tab:pink",
}


def plot_rounds(
    cfg: Config, curves: dict[str, list[dict]], path: Path, title: str | None = None
) -> Path:
    """Global and mean personal accuracy over rounds, one line per strategy (mean over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for strategy in cfg.strategy:
        runs = [c for k, c in curves.items() if k.split("/")[0] == strategy]
        if not runs:
            continue
        rounds = [r["round"] for r in runs[0]]
        for ax, key in zip(axes, ("global_acc", "personal_acc_mean"), strict=True):
            values = np.mean([[r[key] for r in c] for c in runs], axis=0)
            ax.plot(rounds, values, label=strategy, color=STRATEGY_COLOURS.get(strategy), lw=2)
    axes[0].set_title("global test accuracy")
    axes[1].set_title("personal accuracy (mean over clients)")
    for ax in axes:
        ax.set_xlabel("round")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[1].legend(loc="lower right", fontsize=8)
    seeds = len(cfg.seeds)
    detail = (
        f"{cfg.clients} clients, alpha {cfg.alpha:g}"
        if cfg.data == "digits"
        else "76 speakers"
        if cfg.data == "vowels"
        else f"{cfg.clients} clients"
    )
    fig.suptitle(title or f"federated {cfg.data}: {detail}, mean of {seeds} seed(s)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_routing(routing: dict, path: Path, data: str) -> Path:
    """The router's expert choice: a group x expert table and one bar per client."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = routing["groups"]
    names = list(groups)
    table = np.array([groups[g] for g in names])
    order = [
        i
        for g in names
        for i, cg in enumerate(routing["client_groups"])
        if (cg or "all") == g and routing["per_client"][i] is not None
    ]
    per = np.array([routing["per_client"][i] for i in order])
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [1, 3]})
    im = axes[0].imshow(table, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    axes[0].set_yticks(range(len(names)), names)
    axes[0].set_xticks(range(table.shape[1]), [f"e{e}" for e in range(table.shape[1])])
    for (i, j), v in np.ndenumerate(table):
        axes[0].text(
            j, i, f"{v:.2f}", ha="center", va="center", color="w" if v < 0.6 else "k", fontsize=9
        )
    axes[0].set_title("mean gate by group")
    fig.colorbar(im, ax=axes[0], fraction=0.05)
    bottom = np.zeros(len(order))
    colours = plt.get_cmap("tab10")
    for e in range(per.shape[1]):
        axes[1].bar(
            range(len(order)),
            per[:, e],
            bottom=bottom,
            color=colours(e),
            width=1.0,
            label=f"expert {e}",
        )
        bottom += per[:, e]
    edges = np.cumsum(
        [sum(1 for i in order if (routing["client_groups"][i] or "all") == g) for g in names]
    )
    start = 0
    for g, end in zip(names, edges, strict=True):
        axes[1].axvline(end - 0.5, color="k", lw=1)
        axes[1].text((start + end) / 2 - 0.5, 1.02, g, ha="center", va="bottom")
        start = end
    axes[1].set_xlim(-0.5, len(order) - 0.5)
    axes[1].set_ylim(0, 1.1)
    axes[1].set_xlabel("client (speaker), grouped" if data == "vowels" else "client")
    axes[1].set_ylabel("mean gate")
    axes[1].legend(loc="lower right", fontsize=7, ncol=per.shape[1])
    fig.suptitle(f"federated MoE ({data}): each client's own router, expert choice over its rows")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_compare(
    runs: dict[str, str], path: str | Path, key: str = "global_acc", title: str = ""
) -> Path:
    """One line per ``label: "CHECKPOINT:strategy"`` (the first seed's curve of that strategy
    in that run's ``final.pt``), e.g. a clean run against its faulty twins."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, where in runs.items():
        file, strategy = where.rsplit(":", 1)
        curves = load_checkpoint(file, EXPERIMENT)["extra"]["curves"]
        curve = next(c for k, c in curves.items() if k.split("/")[0] == strategy)
        ax.plot([r["round"] for r in curve], [r[key] for r in curve], label=label, lw=2)
    ax.set_xlabel("round")
    ax.set_ylabel(key.replace("_", " "))
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
