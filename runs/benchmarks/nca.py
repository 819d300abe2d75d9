"""Benchmark ``colony bench nca``: neural-CA steps per second and training-iteration time.

Our :class:`~colonylab.agents.nca.NCA` (sparse channels-last update on CPU, dense
masked update on CUDA) against :class:`~colonylab.agents.nca.ReferenceNCA`, the
plain implementation (separate ``conv2d`` perception, an ``nn.Sequential`` of 1x1
convolutions, no fusion), with the same weights and random draws, interleaved in
the same run. The issue's goal: ours >= 1.5x the reference on CPU.

Cases (batch 8, 72 x 72, 16 channels, hidden 128 by default); every inference case
times CA steps/s under ``torch.no_grad``:

``infer-grown``  a grown pattern: the rule of the shipped ``nca-grow`` checkpoint
                 (or ``--checkpoint``) grows it from the seed for ``grow_steps``
                 steps. Only with a checkpoint; the pattern is as large as the
                 rule's target (a 32-pixel target alive on ~15% of 72 x 72).
``infer-blob``   a seeded disc of live cells with random colour and hidden
                 channels, ~35% of the canvas alive (the paper's 40-pixel emoji on
                 72 x 72 is about that).
``infer-full``   every cell alive: the worst case for the sparse path, which then
                 updates every firing cell.
``train``        seconds per training iteration: ``steps`` CA steps from a
                 pool-like batch (the grown pattern, else the blob, its first
                 sample reset to the seed as ``nca-grow`` does), L2 loss of RGBA
                 against that pattern, backward, per-parameter gradient
                 normalisation, an Adam step.

The rule is the checkpoint's; without one (or with ``--synthetic``) a seeded
random rule with a small nonzero last layer stands in -- speed does not depend on
the weights' values, only on how many cells live.

Each inference case also times our other path (dense on CPU, sparse on CUDA), so
the table shows where the speed comes from. (``torch.compile`` of our step was tried
on CPU with torch 2.13: it works, but the sparse step has data-dependent shapes and
gained nothing; compiling the dense step doubles its speed and still trails the
sparse one. So there is no ``--compile`` option.)
Every step of a timed block starts from the same input state, so the work per step
stays fixed. Before timing, the implementations must agree on the benchmarked
states (largest absolute difference after one step with a shared fire mask and
after a few steps from the same generator seed, at most ``tolerance``), or the
benchmark stops. Best of ``repeats`` per row; ratios are ours / reference in
throughput (reference / ours in seconds), so > 1 is faster.

Threads: ours and the reference run in one process under the same torch intra-op
thread count (``--threads``), stated in the title and as ``threads: {"ours", "baseline"}``.

JSON: ``{"suite", "machine", "torch", "threads", "device", "config", "rule",
"alive_share", "agreement", "train_loss", "cases": [{"case", "impl",
"value", "unit", "ratio_vs_reference", ...}], "goal": 1.5, "goal_met": {case: bool}}``.

    colony bench nca --json runs/out/bench-nca.json
    colony bench nca --threads 1 --repeats 5
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from colonylab._checks import check_dataclass_ints, check_float, check_optional_int
from colonylab.agents import build as build_agent
from colonylab.agents.nca import NCA, NCAConfig, ReferenceNCA, alive_mask, fire_mask
from colonylab.runs.common.bench import (
    check_checkpoint_option,
    results_header,
    threads_info,
    threads_text,
    torch_threads,
    write_json,
)
from colonylab.runs.common.checkpoint import load_checkpoint
from colonylab.runs.common.device import check_device_option, resolve_device

GOAL = 1.5
SHIPPED_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "nca_grow.pt"
AGREEMENT_STEPS = 8
LEARNING_RATE = 2e-3


@dataclass(frozen=True)
class Config:
    """Neural-CA steps/s and training-iteration time against a plain reference."""

    batch: int = 8
    """States stepped together."""
    size: int = 72
    """Canvas side (size x size cells)."""
    channels: int = 16
    """State channels per cell (RGBA first)."""
    hidden: int = 128
    """Width of the hidden 1x1 layer."""
    steps: int = 64
    """CA steps per training iteration (the paper uses 64-96)."""
    grow_steps: int = 96
    """Steps the checkpoint's rule grows the benchmarked pattern from the seed."""
    repeats: int = 3
    """Timed repeats of every row, interleaved across implementations; the best counts."""
    seconds: float = 1.0
    """Approximate seconds of stepping per timed inference block."""
    device: str = "cpu"
    """Torch device: cpu, cuda (or cuda:N) or auto."""
    threads: int | None = None
    """Torch intra-op threads (default: torch's choice)."""
    checkpoint: str | None = None
    """nca-grow checkpoint that grows the pattern (default: the shipped one, if present)."""
    synthetic: bool = False
    """Use the seeded random rule (no grown case) even when a checkpoint exists."""
    tolerance: float = 1e-4
    """Largest absolute state difference allowed between the implementations."""
    seed: int = 0
    """Seed of the random rule, the blob and full states, and every fire mask."""
    json: str | None = None
    """Write the results to this JSON file."""

    def __post_init__(self) -> None:
        check_dataclass_ints(
            self,
            {"batch": 1, "size": 3, "channels": 4, "hidden": 1, "steps": 1, "grow_steps": 0,
             "repeats": 1, "seed": 0},
        )  # fmt: skip
        check_float("--seconds", self.seconds, 0, low_open=True)
        check_float("--tolerance", self.tolerance, 0, low_open=True)
        check_optional_int("--threads", self.threads, 1)
        check_device_option(self.device)
        if self.checkpoint is not None and self.synthetic:
            raise ValueError("--checkpoint and --synthetic exclude each other; pick one")
        check_checkpoint_option(self.checkpoint, "nca-grow")


class AgreementError(RuntimeError):
    """Our NCA and the reference disagree on the benchmarked state."""


@dataclass
class BenchState:
    """The rule and the states the cases step."""

    weights: dict[str, torch.Tensor]
    nca_config: NCAConfig
    states: dict[str, torch.Tensor]
    """``grown`` (only with a checkpoint), ``blob``, ``full``: each ``(B, H, W, C)``."""
    source: str
    """Where the rule comes from."""

    @property
    def train_start(self) -> torch.Tensor:
        """The pattern training iterations start from (grown, else the blob)."""
        return self.states.get("grown", self.states["blob"])


# -- states -------------------------------------------------------------------------------------
def blob_state(cfg: Config, gen: torch.Generator) -> torch.Tensor:
    """A disc of live cells (alpha in [0.5, 1]) covering 30% of the canvas, about 35%
    alive with its rim, random colour and hidden channels; dead outside."""
    b, s, c = cfg.batch, cfg.size, cfg.channels
    rows = torch.arange(s, dtype=torch.float32).view(-1, 1)
    cols = torch.arange(s, dtype=torch.float32).view(1, -1)
    centre = (s - 1) / 2
    inside = (rows - centre) ** 2 + (cols - centre) ** 2 <= 0.3 / math.pi * s * s
    alpha = (0.5 + 0.5 * torch.rand(b, s, s, generator=gen)) * inside
    x = torch.zeros(b, s, s, c)
    x[..., :3] = torch.rand(b, s, s, 3, generator=gen) * alpha.unsqueeze(-1)
    x[..., 3] = alpha
    x[..., 4:] = torch.randn(b, s, s, c - 4, generator=gen) * 0.5 * inside.unsqueeze(-1)
    return x


def full_state(cfg: Config, gen: torch.Generator) -> torch.Tensor:
    """Every cell alive: alpha in [0.5, 1], random colour and hidden channels."""
    b, s, c = cfg.batch, cfg.size, cfg.channels
    x = torch.randn(b, s, s, c, generator=gen) * 0.5
    x[..., 3] = 0.5 + 0.5 * torch.rand(b, s, s, generator=gen)
    x[..., :3] = torch.rand(b, s, s, 3, generator=gen) * x[..., 3:4]
    return x


def _checkpoint_rule(cfg: Config, path: Path) -> NCA:
    """The trained ``nca-grow`` rule in ``path``, checked against the asked architecture."""
    ckpt = load_checkpoint(path, "nca-grow")
    model = build_agent(ckpt["spec"] or {})
    if not isinstance(model, NCA):
        raise ValueError(
            f"checkpoint {str(path)!r} does not hold a neural CA (spec {ckpt['spec']})"
        )
    model.load_state_dict(ckpt["state_dict"])
    mc = model.config
    if (mc.channels, mc.hidden) != (cfg.channels, cfg.hidden):
        raise ValueError(
            f"checkpoint {str(path)!r} has channels={mc.channels}, hidden={mc.hidden}; "
            f"the benchmark asks for {cfg.channels} and {cfg.hidden} (pass --channels "
            f"{mc.channels} --hidden {mc.hidden}, or --synthetic)"
        )
    return model


def _synthetic_rule(cfg: Config) -> NCA:
    """A seeded random rule with a small nonzero last layer, so steps change the state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = NCA(channels=cfg.channels, hidden=cfg.hidden)
        with torch.no_grad():
            model.w2.normal_(0.0, 0.01)
    return model


def build_state(cfg: Config, device: torch.device) -> BenchState:
    """The rule (checkpoint, else synthetic) and the states of the benchmark."""
    model, path = None, None
    if cfg.checkpoint is not None:
        path = Path(cfg.checkpoint)
        model = _checkpoint_rule(cfg, path)
    elif not cfg.synthetic and SHIPPED_CHECKPOINT.exists():
        try:
            path = SHIPPED_CHECKPOINT
            model = _checkpoint_rule(cfg, path)
        except ValueError:  # another architecture than asked: the synthetic rule stands in
            model = None
    gen = torch.Generator().manual_seed(cfg.seed)
    states: dict[str, torch.Tensor] = {}
    if model is not None and path is not None:
        model = model.to(device)
        grow_gen = torch.Generator(device=device).manual_seed(cfg.seed)
        seed = model.seed_state(cfg.batch, cfg.size, cfg.size, device)
        with torch.no_grad():
            states["grown"] = model(seed, cfg.grow_steps, None, grow_gen)
        source = f"{path.name} (grown {cfg.grow_steps} steps from the seed)"
    else:
        model = _synthetic_rule(cfg)
        source = "synthetic (seeded random rule)"
    states["blob"] = blob_state(cfg, gen).to(device)
    states["full"] = full_state(cfg, gen).to(device)
    weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return BenchState(weights, model.config, states, source)


def make_models(state: BenchState, device: torch.device) -> dict[str, torch.nn.Module]:
    """Ours (default path), ours on the other path, and the reference, same weights."""
    ours = NCA(state.nca_config).to(device)
    ours.load_state_dict(state.weights)
    other_sparse = device.type == "cuda"  # ours picks dense on CUDA, sparse elsewhere
    other = NCA(state.nca_config, sparse=other_sparse).to(device)
    other.load_state_dict(state.weights)
    return {
        "ours": ours,
        "ours-sparse" if other_sparse else "ours-dense": other,
        "reference": ReferenceNCA.from_nca(ours),
    }


# -- agreement ------------------------------------------------------------------------------------
@torch.no_grad()
def check_agreement(
    models: dict[str, torch.nn.Module], states: dict[str, torch.Tensor], seed: int, tol: float
) -> dict[str, float]:
    """Largest absolute difference to the reference per (state, impl), after one step
    with a shared fire mask and after ``AGREEMENT_STEPS`` steps from the same seed.

    Raises:
        AgreementError: a difference above ``tol``.
    """
    ref = models["reference"]
    out: dict[str, float] = {}
    for state_name, x in states.items():
        gen = torch.Generator(device=x.device).manual_seed(seed)
        fire = fire_mask(tuple(x.shape[:3]), ref.config.fire_rate, gen, x.device)
        want_one = ref.step(x, fire=fire)
        want_many = ref(x, AGREEMENT_STEPS, generator=torch.Generator(x.device).manual_seed(seed))
        for name, model in models.items():
            if name == "reference":
                continue
            one = (model.step(x, fire=fire) - want_one).abs().max().item()
            got = model(x, AGREEMENT_STEPS, generator=torch.Generator(x.device).manual_seed(seed))
            many = (got - want_many).abs().max().item()
            diff = max(one, many)
            out[f"{state_name}/{name}"] = diff
            if not diff <= tol:  # also catches NaN
                raise AgreementError(
                    f"{name} disagrees with the reference on the {state_name} state: largest "
                    f"absolute difference {diff:.3g} > tolerance {tol:g} (one step {one:.3g}, "
                    f"{AGREEMENT_STEPS} steps {many:.3g}); the timings would compare different "
                    "computations, so the benchmark stops"
                )
    return out


# -- timing ---------------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _inference_block(
    step: Callable[..., torch.Tensor], x: torch.Tensor, seed: int
) -> Callable[[int], float]:
    """``run(n)``: seconds for ``n`` no-grad steps of ``step`` from the fixed state ``x``."""
    gen = torch.Generator(device=x.device).manual_seed(seed)

    @torch.no_grad()
    def run(n: int) -> float:
        _sync(x.device)
        t0 = time.perf_counter()
        for _ in range(n):
            step(x, generator=gen)
        _sync(x.device)
        return time.perf_counter() - t0

    return run


def time_inference(
    steps: dict[str, Callable[..., torch.Tensor]], x: torch.Tensor, cfg: Config
) -> dict[str, float]:
    """Steps/s of each implementation on ``x``, interleaved, best of ``cfg.repeats``."""
    runs = {name: _inference_block(step, x, cfg.seed) for name, step in steps.items()}
    counts = {}
    for name, run in runs.items():
        run(1)  # warm-up: allocator, first-call dispatch
        one = max(run(1), 1e-6)
        counts[name] = max(1, math.ceil(cfg.seconds / one))
    best = dict.fromkeys(runs, math.inf)
    for _ in range(cfg.repeats):
        for name, run in runs.items():
            best[name] = min(best[name], run(counts[name]) / counts[name])
    return {name: 1.0 / t for name, t in best.items()}


def _train_iteration(
    model: torch.nn.Module,
    weights: dict[str, torch.Tensor],
    start: torch.Tensor,
    target: torch.Tensor,
    steps: int,
    seed: int,
) -> tuple[float, float]:
    """One training iteration from the given weights: ``(seconds, loss)``."""
    model.load_state_dict(weights)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    gen = torch.Generator(device=start.device).manual_seed(seed)
    _sync(start.device)
    t0 = time.perf_counter()
    x = start
    for _ in range(steps):
        x = model.step(x, generator=gen)
    loss = (x[..., :4] - target).square().mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p.grad /= p.grad.norm() + 1e-8
    optimizer.step()
    _sync(start.device)
    return time.perf_counter() - t0, float(loss.detach())


def time_training(
    models: dict[str, torch.nn.Module], state: BenchState, cfg: Config
) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds per training iteration of each model (best of ``repeats``) and its loss."""
    start = state.train_start.clone()
    start[:1] = 0.0  # pool-like: the worst sample starts again from the seed
    s = cfg.size
    start[0, s // 2, s // 2, 3:] = 1.0
    target = state.train_start[0, ..., :4].clone()
    weights = {
        name: {k: v.clone() for k, v in m.state_dict().items()} for name, m in models.items()
    }
    for name, model in models.items():  # warm-up with two steps
        _train_iteration(model, weights[name], start, target, 2, cfg.seed)
    best = dict.fromkeys(models, math.inf)
    losses: dict[str, float] = {}
    for _ in range(cfg.repeats):
        for name, model in models.items():
            seconds, loss = _train_iteration(
                model, weights[name], start, target, cfg.steps, cfg.seed
            )
            best[name] = min(best[name], seconds)
            losses[name] = loss
    return best, losses


@contextlib.contextmanager
def _full_fp32(device: torch.device) -> Iterator[None]:
    """On CUDA, keep cuDNN convolutions (the reference's) off TF32 while measuring, as
    matrix products (ours) are by default: both sides then compute the same numbers."""
    if device.type != "cuda":
        yield
        return
    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = before


# -- report ---------------------------------------------------------------------------------------
def _rows_for(
    case: str, values: dict[str, float], unit: str, higher_is_better: bool
) -> list[dict[str, Any]]:
    ref = values["reference"]
    rows = []
    for impl, value in values.items():
        ratio = value / ref if higher_is_better else ref / value
        rows.append(
            {"case": case, "impl": impl, "value": value, "unit": unit, "ratio_vs_reference": ratio}
        )
    return rows


def main(cfg: Config) -> dict[str, Any]:
    """Build the states, check agreement, time every case, print the table, write JSON.

    ``--threads`` holds for this call only (the previous torch setting comes back).

    Raises:
        SystemExit: the implementations disagree on a benchmarked state (status 2).
    """
    with torch_threads(cfg.threads):
        return _run(cfg)


def _run(cfg: Config) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    console = Console()
    cases: list[dict[str, Any]] = []
    with _full_fp32(device), console.status("building the benchmark state...") as status:
        state = build_state(cfg, device)
        models = make_models(state, device)
        nc = state.nca_config
        for m in models.values():
            m.eval()
        shares = {
            name: float(alive_mask(x, nc.alive_channel, nc.alive_threshold, nc.wrap).float().mean())
            for name, x in state.states.items()
        }
        status.update("checking that the implementations agree...")
        try:
            agreement = check_agreement(models, state.states, cfg.seed, cfg.tolerance)
        except AgreementError as exc:
            console.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise SystemExit(2) from exc
        steps: dict[str, Callable[..., torch.Tensor]] = {n: m.step for n, m in models.items()}
        for name, x in state.states.items():
            case = f"infer-{name}"
            status.update(f"timing {case}...")
            values = time_inference(steps, x, cfg)
            rows = _rows_for(case, values, "steps/s", higher_is_better=True)
            for r in rows:
                r["alive_share"] = shares[name]
            cases += rows
        status.update(f"timing training iterations ({cfg.steps} steps, {cfg.repeats} repeats)...")
        train_models = {"ours": models["ours"], "reference": models["reference"]}
        for m in train_models.values():
            m.train()
        seconds, losses = time_training(train_models, state, cfg)
        rows = _rows_for("train", seconds, "s/iter", higher_is_better=False)
        for r in rows:
            r["loss"] = losses[r["impl"]]
        cases += rows

    goal_met = {
        r["case"]: bool(r["ratio_vs_reference"] >= GOAL) for r in cases if r["impl"] == "ours"
    }
    threads = torch.get_num_threads()
    thread_info = threads_info(threads, threads, library="torch (ours and the reference alike)")
    title = (
        f"colony bench nca (batch {cfg.batch}, {cfg.size}x{cfg.size}, {state.nca_config.channels} "
        f"channels, hidden {state.nca_config.hidden}, {device}; {threads_text(thread_info)})"
    )
    table = Table(title=title)
    for col in ("case", "impl", "value", "unit", "vs reference", "alive"):
        table.add_column(col, justify="right" if col not in ("case", "impl") else "left")
    for r in cases:
        share = r.get("alive_share")
        table.add_row(
            r["case"],
            r["impl"],
            f"{r['value']:.3g}",
            r["unit"],
            f"{r['ratio_vs_reference']:.2f}x",
            "-" if share is None else f"{share:.0%}",
        )
    console.print(table)
    console.print(
        f"rule: {state.source}; largest difference to the reference "
        f"{max(agreement.values()):.2g} (tolerance {cfg.tolerance:g})"
    )
    rel = abs(losses["ours"] - losses["reference"]) / max(abs(losses["reference"]), 1e-12)
    console.print(
        f"train loss ours {losses['ours']:.6g} vs reference {losses['reference']:.6g} "
        f"(relative difference {rel:.2g})"
    )
    for case, met in goal_met.items():
        ratio = next(
            r["ratio_vs_reference"] for r in cases if r["case"] == case and r["impl"] == "ours"
        )
        verdict = "[green]met[/]" if met else "[red]missed[/]"
        console.print(f"goal >= {GOAL}x on {case}: {verdict} ({ratio:.2f}x)")
    if device.type != "cpu":
        console.print(f"(the goal is set for the CPU; these numbers are on {device})")
    payload = {
        **results_header("nca", device, thread_info, cfg),
        "rule": state.source,
        "alive_share": shares,
        "agreement": {"max_abs_diff": agreement, "tolerance": cfg.tolerance},
        "train_loss": losses,
        "cases": cases,
        "goal": GOAL,
        "goal_met": goal_met,
    }
    if cfg.json:
        write_json(cfg.json, payload, console)
    return payload


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
