"""Benchmark ``colony bench moe``: mixture-of-experts forward+backward tokens per second.

For every ``(experts, k)`` pair, three layers on the same tokens, interleaved in
the same run:

``grouped``  :class:`~colonylab.collective_ml.moe.TopKMoE` -- tokens sorted by expert
             into a padded ``[E, C, d]`` buffer, two batched matmuls over the stacked
             expert weights, a scatter-add back; no Python loop over experts.
``loop``     :class:`~colonylab.collective_ml.moe.LoopMoE` with a copy of those weights
             (experts as separate modules in an ``nn.ModuleList``) and the same routing
             -- the per-expert loop research code writes (mask, ``x[idx]``, the
             expert's FFN, ``index_add_``).
``dense``    :class:`~colonylab.collective_ml.moe.DenseFFN` with the MoE's *active*
             parameters per token (hidden ``k * h``), so the same matmul FLOPs
             without routing.

One timed step is: forward in training mode (noisy gating, its noise drawn from the
same seed for grouped and loop, so both route identically), ``(y * g).sum()`` for a
fixed random ``g`` plus the layer's auxiliary loss, backward (input, router and
expert gradients). Throughput is ``tokens / seconds`` of the best of ``repeats``
steps after ``warmup`` untimed ones; ``ratio_vs_loop`` and ``ratio_vs_dense`` are
grouped throughput over the other's (> 1: grouped is faster).

Before timing, each pair's grouped and loop layers must agree on the first
``check_tokens`` tokens -- output, input gradient, ``w1`` and router gradients, as
the largest absolute difference relative to the largest reference value, at most
``tolerance`` -- or the benchmark stops.

The issue's goals: ``ratio_vs_loop >= 5`` at 64 experts and ``ratio_vs_dense >= 0.5``
(within 2x of dense). The first is a GPU goal and is out of reach on a CPU. There
the loop is neither launch- nor sync-bound: each of its per-expert products
(``[~256, 512] x [512, 2048]`` at 64 experts, top-2, 8192 tokens) runs in MKL near
full speed and the loop's Python overhead is well under 1% of a step, so grouping
has no work to remove: both paths do the same GEMM FLOPs and the ratio stays near
1 (below it where uneven expert loads make the grouped buffer pad to the largest
load; the table shows the padded share). Measured on 2 shared cores (fp32, the
defaults, ``--threads 2``): 0.86-1.16x the loop, 0.67-0.95x dense. A loop over
*stacked* weights (``w1[e]`` inside the loop) measured 7.6-9.4x slower than grouped
at 64 experts (one run, busy machine), only because autograd then builds a
full-size zero gradient per expert; the reference keeps separate expert modules, so
that artefact is not counted.

Threads: the three layers run in one process under the same torch intra-op thread
count (``--threads``), stated in the title and as ``threads: {"ours", "baseline"}``.

JSON: ``{"suite", "machine", "torch", "threads", "device", "config", "rows": [{"experts",
"k", "tokens_per_s", "loop_tokens_per_s", "dense_tokens_per_s", "ratio_vs_loop",
"ratio_vs_dense", "capacity", "dropped_fraction", "padding_fraction", "agreement",
...}], "goals", "goal_met"}``.

    colony bench moe --json runs/out/bench-moe.json
    colony bench moe --experts 8 64 --k 1 2 --threads 2 --repeats 3
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from colonylab.collective_ml.moe import DenseFFN, LoopMoE, TopKMoE
from colonylab.runs.common.bench import (
    machine_info,
    threads_info,
    threads_text,
    torch_threads,
    write_json,
)
from colonylab.runs.common.device import resolve_device
from colonylab.runs.common.progress import progress_bar

GOAL_VS_LOOP = 5.0
GOAL_VS_LOOP_EXPERTS = 64
GOAL_VS_DENSE = 0.5
IMPLS = ("grouped", "loop", "dense")


@dataclass(frozen=True)
class Config:
    """MoE forward+backward tokens/s: grouped dispatch vs a per-expert loop and a dense FFN."""

    experts: tuple[int, ...] = (8, 64)
    """Expert counts E to benchmark."""
    k: tuple[int, ...] = (1, 2)
    """Experts per token to benchmark (each must be <= every E)."""
    tokens: int = 8192
    """Tokens per step (one flat batch [tokens, d_model])."""
    d_model: int = 512
    """Token width d."""
    d_hidden: int = 2048
    """Hidden width h of each expert (the dense FFN has k * h)."""
    capacity_factor: float | None = 1.25
    """Expert capacity ceil(factor * tokens * k / E); None: no token dropping."""
    repeats: int = 3
    """Timed steps per implementation and row, interleaved; the best counts."""
    warmup: int = 1
    """Untimed steps per implementation and row before timing."""
    check_tokens: int = 1024
    """Tokens on which grouped and loop must agree before timing (0: skip the check)."""
    tolerance: float = 1e-4
    """Largest difference allowed between grouped and loop, relative to the largest value."""
    device: str = "auto"
    """Torch device: auto, cpu, cuda (or cuda:N)."""
    threads: int | None = None
    """Torch intra-op threads (default: torch's choice)."""
    seed: int = 0
    """Seed of the weights, tokens, output gradient and gating noise."""
    json: str | None = None
    """Write the results to this JSON file."""

    def __post_init__(self) -> None:
        for name in ("experts", "k"):
            values = getattr(self, name)
            if not values or any(
                isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values
            ):
                raise ValueError(
                    f"--{name} must be one or more integers >= 1, got {tuple(values)!r}"
                )
        if max(self.k) > min(self.experts):
            raise ValueError(
                f"--k {max(self.k)} is larger than --experts {min(self.experts)}: "
                "every k must be <= every expert count"
            )
        for name, low in (
            ("tokens", 1),
            ("d_model", 1),
            ("d_hidden", 1),
            ("repeats", 1),
            ("warmup", 0),
            ("check_tokens", 0),
            ("seed", 0),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(
                    f"--{name.replace('_', '-')} must be an integer >= {low}, got {value!r}"
                )
        cf = self.capacity_factor
        if cf is not None and not (
            isinstance(cf, (int, float)) and not isinstance(cf, bool) and math.isfinite(cf)
        ):
            raise ValueError(f"--capacity-factor must be a number > 0 or None, got {cf!r}")
        if cf is not None and cf <= 0:
            raise ValueError(f"--capacity-factor must be a number > 0 or None, got {cf!r}")
        if not (isinstance(self.tolerance, (int, float)) and self.tolerance > 0):
            raise ValueError(f"--tolerance must be > 0, got {self.tolerance!r}")
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise ValueError(f"--threads must be an integer >= 1, got {self.threads!r}")
        device = str(self.device)
        if not (device in ("cpu", "auto", "cuda") or device.startswith("cuda:")):
            raise ValueError(f"--device must be auto, cpu, cuda or cuda:N, got {self.device!r}")


class AgreementError(RuntimeError):
    """The grouped dispatch and the loop reference disagree."""


# -- setup ----------------------------------------------------------------------------------------
def make_layers(
    cfg: Config, experts: int, k: int, device: torch.device
) -> tuple[TopKMoE, LoopMoE, DenseFFN]:
    """Seeded grouped MoE, the loop reference sharing its parameters, and the dense FFN."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        moe = TopKMoE(
            cfg.d_model, cfg.d_hidden, experts, k, capacity_factor=cfg.capacity_factor
        ).to(device)
        dense = DenseFFN(cfg.d_model, k * cfg.d_hidden).to(device)
    moe.train()
    return moe, LoopMoE.from_moe(moe), dense


def make_inputs(cfg: Config, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens ``[T, d]`` and the fixed output gradient ``[T, d]``."""
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    x = torch.randn(cfg.tokens, cfg.d_model, generator=gen)
    grad_out = torch.randn(cfg.tokens, cfg.d_model, generator=gen) / cfg.tokens**0.5
    return x.to(device), grad_out.to(device)


def _noise(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _step(
    layer: torch.nn.Module, x: torch.Tensor, grad_out: torch.Tensor, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward+backward: ``(output, input gradient)``; parameter grads are set."""
    x = x.detach().requires_grad_(True)
    if isinstance(layer, TopKMoE):
        y = layer(x, generator=_noise(x.device, seed))
        loss = (y * grad_out).sum() + layer.loss
    else:
        y = layer(x)
        loss = (y * grad_out).sum()
    loss.backward()
    assert x.grad is not None
    return y.detach(), x.grad


def _zero_grads(layer: torch.nn.Module) -> None:
    for p in layer.parameters():
        p.grad = None


def check_agreement(
    moe: TopKMoE, loop: LoopMoE, x: torch.Tensor, grad_out: torch.Tensor, seed: int, tol: float
) -> dict[str, float]:
    """Relative largest difference grouped vs loop: output and gradients of the input,
    ``w1`` and the router weights.

    Raises:
        AgreementError: a difference above ``tol`` (or NaN).
    """
    got: dict[str, torch.Tensor] = {}
    want: dict[str, torch.Tensor] = {}
    for layer, store in ((moe, got), (loop, want)):
        _zero_grads(layer)
        store["output"], store["input_grad"] = _step(layer, x, grad_out, seed)
        store["router_grad"] = layer.router.w_gate.grad.clone()
    got["w1_grad"] = moe.experts.w1.grad.clone()
    want["w1_grad"] = loop.experts.stacked_grads()["w1"]
    _zero_grads(moe)
    _zero_grads(loop)
    out = {}
    for name in got:
        scale = want[name].abs().max().clamp_min(1e-30)
        diff = float((got[name] - want[name]).abs().max() / scale)
        out[name] = diff
        if not diff <= tol:
            raise AgreementError(
                f"grouped dispatch disagrees with the loop reference on {name}: relative "
                f"difference {diff:.3g} > tolerance {tol:g} (E={moe.num_experts}, k={moe.k}); "
                "the timings would compare different computations, so the benchmark stops"
            )
    return out


# -- timing ---------------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_step(layer: torch.nn.Module, x: torch.Tensor, grad_out: torch.Tensor, seed: int) -> float:
    """Seconds for one forward+backward of ``layer``."""
    _zero_grads(layer)
    _sync(x.device)
    t0 = time.perf_counter()
    _step(layer, x, grad_out, seed)
    _sync(x.device)
    seconds = time.perf_counter() - t0
    _zero_grads(layer)
    return seconds


def time_row(
    layers: dict[str, torch.nn.Module],
    x: torch.Tensor,
    grad_out: torch.Tensor,
    cfg: Config,
    advance: Callable[[str], None],
) -> dict[str, float]:
    """Best seconds per step of each layer: warm-up, then repeats interleaved."""
    for name, layer in layers.items():
        for _ in range(cfg.warmup):
            time_step(layer, x, grad_out, cfg.seed)
            advance(f"warm-up {name}")
    best = dict.fromkeys(layers, math.inf)
    for _ in range(cfg.repeats):
        for name, layer in layers.items():
            best[name] = min(best[name], time_step(layer, x, grad_out, cfg.seed))
            advance(name)
    return best


def _routing_numbers(moe: TopKMoE) -> dict[str, Any]:
    """Capacity, drops and the grouped buffer's padding share of the latest forward."""
    stats = moe.stats
    assert stats is not None
    kept = stats.kept_per_expert
    depth = int(kept.max())
    return {
        "capacity": stats.capacity,
        "dropped_fraction": float(stats.dropped_fraction),
        "padding_fraction": 1.0 - float(kept.sum()) / (moe.num_experts * depth),
        "max_load": int(stats.tokens_per_expert.max()),
        "mean_load": float(stats.tokens_per_expert.float().mean()),
    }


# -- main -----------------------------------------------------------------------------------------
def main(cfg: Config) -> dict[str, Any]:
    """Check agreement, time every (experts, k) row, print the table, write JSON.

    ``--threads`` holds for this call only (the previous torch setting comes back).

    Raises:
        SystemExit: grouped and loop disagree (status 2).
    """
    with torch_threads(cfg.threads):
        return _run(cfg)


def _run(cfg: Config) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    console = Console()
    x, grad_out = make_inputs(cfg, device)
    pairs = [(e, k) for e in cfg.experts for k in cfg.k]
    steps_per_row = len(IMPLS) * (cfg.warmup + cfg.repeats)
    rows: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    with progress_bar(console) as progress:
        task = progress.add_task("bench moe", total=len(pairs) * steps_per_row, rate="")
        for experts, k in pairs:
            label = f"E={experts} k={k}"
            progress.update(task, description=f"{label}: building", rate="")
            moe, loop, dense = make_layers(cfg, experts, k, device)
            agreement: dict[str, float] = {}
            if cfg.check_tokens:
                progress.update(task, description=f"{label}: checking grouped == loop")
                n = min(cfg.check_tokens, cfg.tokens)
                try:
                    agreement = check_agreement(
                        moe, loop, x[:n], grad_out[:n], cfg.seed, cfg.tolerance
                    )
                except AgreementError as exc:
                    progress.stop()
                    console.print(f"[bold red]error:[/] {exc}", highlight=False)
                    raise SystemExit(2) from exc

            def advance(what: str, label: str = label) -> None:
                progress.update(task, advance=1, description=f"{label}: {what}")

            layers = {"grouped": moe, "loop": loop, "dense": dense}
            seconds = time_row(layers, x, grad_out, cfg, advance)
            _step(moe, x, grad_out, cfg.seed)  # routing numbers of the timed input
            _zero_grads(moe)
            tps = {name: cfg.tokens / s for name, s in seconds.items()}
            rows.append(
                {
                    "experts": experts,
                    "k": k,
                    "tokens_per_s": tps["grouped"],
                    "loop_tokens_per_s": tps["loop"],
                    "dense_tokens_per_s": tps["dense"],
                    "ratio_vs_loop": tps["grouped"] / tps["loop"],
                    "ratio_vs_dense": tps["grouped"] / tps["dense"],
                    "seconds": seconds,
                    **_routing_numbers(moe),
                    "agreement": agreement,
                }
            )
            progress.update(task, rate=f"{tps['grouped']:,.0f} tok/s")
            del moe, loop, dense, layers
    wall = time.perf_counter() - t_start

    at_goal_experts = [r for r in rows if r["experts"] == GOAL_VS_LOOP_EXPERTS]
    goal_met = {
        "ratio_vs_loop": (
            all(r["ratio_vs_loop"] >= GOAL_VS_LOOP for r in at_goal_experts)
            if at_goal_experts
            else None
        ),
        "ratio_vs_dense": all(r["ratio_vs_dense"] >= GOAL_VS_DENSE for r in rows),
    }
    threads = torch.get_num_threads()
    thread_info = threads_info(threads, threads, library="torch (grouped, loop and dense alike)")
    title = (
        f"colony bench moe ({cfg.tokens} tokens, d {cfg.d_model}, h {cfg.d_hidden}, "
        f"capacity factor {cfg.capacity_factor}, fp32, {device}; {threads_text(thread_info)})"
    )
    table = Table(title=title)
    for col in (
        "E",
        "k",
        "grouped tok/s",
        "loop tok/s",
        "dense tok/s",
        "vs loop",
        "vs dense",
        "padding",
        "dropped",
    ):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            str(r["experts"]),
            str(r["k"]),
            f"{r['tokens_per_s']:,.0f}",
            f"{r['loop_tokens_per_s']:,.0f}",
            f"{r['dense_tokens_per_s']:,.0f}",
            f"{r['ratio_vs_loop']:.2f}x",
            f"{r['ratio_vs_dense']:.2f}x",
            f"{r['padding_fraction']:.1%}",
            f"{r['dropped_fraction']:.1%}",
        )
    console.print(table)
    if any(r["agreement"] for r in rows):
        worst = max(max(r["agreement"].values()) for r in rows if r["agreement"])
        console.print(
            f"grouped == loop on the first {min(cfg.check_tokens, cfg.tokens)} tokens: largest "
            f"relative difference {worst:.2g} (tolerance {cfg.tolerance:g})"
        )
    for key, text in (
        ("ratio_vs_loop", f">= {GOAL_VS_LOOP:g} at {GOAL_VS_LOOP_EXPERTS} experts"),
        ("ratio_vs_dense", f">= {GOAL_VS_DENSE:g} (within 2x of dense)"),
    ):
        met = goal_met[key]
        verdict = (
            "[yellow]not measured[/]"
            if met is None
            else "[green]met[/]"
            if met
            else "[red]missed[/]"
        )
        console.print(f"goal {key} {text}: {verdict}")
    if device.type == "cpu" and goal_met["ratio_vs_loop"] is False:
        console.print(
            "(on a CPU the loop is GEMM-bound, not launch-bound: both paths do the same "
            "matmul FLOPs; see the module docstring)"
        )
    console.print(f"wall time {wall:.0f} s")
    payload = {
        "suite": "moe",
        "machine": machine_info(device),
        "torch": torch.__version__,
        "threads": thread_info,
        "device": str(device),
        "dtype": "float32",
        "config": asdict(cfg),
        "rows": rows,
        "goals": {
            "ratio_vs_loop": {"min": GOAL_VS_LOOP, "experts": GOAL_VS_LOOP_EXPERTS},
            "ratio_vs_dense": {"min": GOAL_VS_DENSE},
        },
        "goal_met": goal_met,
        "wall_s": wall,
    }
    if cfg.json:
        write_json(cfg.json, payload, console)
    return payload


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
