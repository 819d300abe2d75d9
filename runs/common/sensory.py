"""Shared pieces of the sensory-substitution experiments (``sensory-cartpole``,
``sensory-pong``, ``sensory-ant``; Tang & Ha 2021).

* **Agents** from a small spec dict (saved in checkpoints): ``{"kind": "attention",
  ...}`` is an :class:`~colonylab.agents.sensory.AttentionNeuronPolicy`, ``{"kind":
  "mlp", ...}`` the ordinary baseline :class:`MLPPolicy` (inputs in a fixed order,
  flattened).
* **Conditions** of the evaluation (:class:`Condition`): unshuffled, shuffled at
  reset, shuffled every ``K`` steps, with noise channels, with occluded patches; each
  is a stack of wrappers from :mod:`colonylab.envs.wrappers` over the world.
* **Evaluation** (:func:`evaluate_conditions`): every agent under every condition with
  one :class:`~colonylab.collective_ml.population.BatchedEvaluator` call each (the
  episodes of one condition run as one vectorized world), rows
  ``{condition, agent, mean, std, episodes}`` as ``colony eval`` prints and writes.
* **Training by the population cores** (:func:`train_pgpe`): PGPE + ClipUp over flat
  parameters, fitness from the batched evaluator (the recurrent state of every
  candidate travels with its environment).
* **Checkpoints** (:func:`save_agent`, :func:`load_agent`): a plain dict loadable with
  ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from torch import Tensor, nn

from colonylab.agents.sensory import AttentionNeuronPolicy
from colonylab.collective_ml.base import flatten_params, num_params, unflatten_into
from colonylab.collective_ml.es import PGPE
from colonylab.collective_ml.population import BatchedEvaluator
from colonylab.envs.wrappers import NoiseChannels, OccludePatches, ShuffleObservations
from colonylab.runs.common.checkpoint import read_torch_file, save_checkpoint
from colonylab.runs.common.progress import progress_bar
from colonylab.runs.common.rundir import RunDir

FORMAT = "colonylab-sensory-policy/1"
SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints"
console = Console()

WorldFactory = Callable[..., Any]


# -- agents --------------------------------------------------------------------------------------
class MLPPolicy(nn.Module):
    """The ordinary baseline: all inputs, in their fixed order, into a tanh MLP.

    ``obs (B, *input_shape) -> (B, act_dim)``; ``input_shape`` is ``(D,)`` for vectors
    or ``(P, d)`` for patches (flattened to ``P * d``). It can only work if channel
    ``j`` always carries the same signal: shuffle the inputs and it collapses.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        act_dim: int,
        hidden: Sequence[int] = (16, 16),
        output: str = "tanh",
    ) -> None:
        super().__init__()
        if output not in ("tanh", "linear"):
            raise ValueError(f"output must be 'tanh' or 'linear', got {output!r}")
        self.input_shape = tuple(int(s) for s in input_shape)
        self.output = output
        sizes = [math.prod(self.input_shape), *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(a, b), nn.Tanh()]
        layers.append(nn.Linear(sizes[-1], act_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, obs: Tensor) -> Tensor:
        shape = tuple(obs.shape[-len(self.input_shape) :])
        if shape != self.input_shape:
            raise ValueError(
                f"the MLP baseline takes inputs of shape (B, {', '.join(map(str, self.input_shape))})"
                f", got {tuple(obs.shape)}: it cannot take a different number of inputs"
            )
        out = self.net(obs.flatten(-len(self.input_shape)) if len(self.input_shape) > 1 else obs)
        return torch.tanh(out) if self.output == "tanh" else out


def build_agent(spec: dict[str, Any]) -> nn.Module:
    """An agent from its spec: ``{"kind": "attention" | "mlp", **constructor args}``."""
    kwargs = {k: v for k, v in spec.items() if k != "kind"}
    kind = spec.get("kind")
    if kind == "attention":
        return AttentionNeuronPolicy(**kwargs)
    if kind == "mlp":
        kwargs["hidden"] = tuple(kwargs.get("hidden", (16, 16)))
        return MLPPolicy(**kwargs)
    raise ValueError(f"agent kind must be 'attention' or 'mlp', got {kind!r}")


AGENT_LABELS = {"attention": "AttentionNeuron", "mlp": "MLP"}


# -- checkpoints ----------------------------------------------------------------------------------
def save_agent(
    path: str | Path, policy: nn.Module, spec: dict[str, Any], *, experiment: str, meta: dict
) -> Path:
    """Write an agent checkpoint (flat float32 parameters + its spec); atomic."""
    payload = {
        "format": FORMAT,
        "experiment": experiment,
        "agent": dict(spec),
        "params": flatten_params(policy).detach().to("cpu", torch.float32).clone(),
        "meta": meta,
    }
    return save_checkpoint(path, payload)


def load_agent(path: str | Path, experiment: str) -> tuple[nn.Module, dict[str, Any]]:
    """``(agent with the checkpoint's weights, payload)``; clear errors for a missing
    file, another format or experiment, or weights that do not fit the spec."""
    path = Path(path)
    payload = read_torch_file(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(
            f"{str(path)!r} is not a Colony Lab sensory-agent checkpoint (format {FORMAT!r}); "
            f"make one with 'colony train {experiment}'"
        )
    if payload.get("experiment") != experiment:
        raise ValueError(
            f"{str(path)!r} is a checkpoint of {payload.get('experiment')!r}, not {experiment!r}"
        )
    try:
        policy = build_agent(payload["agent"])
        unflatten_into(policy, payload["params"].float())
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"{str(path)!r}: weights do not fit the agent {payload.get('agent')}: {exc}"
        ) from None
    return policy.eval(), payload


# -- conditions -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Condition:
    """One evaluation condition: which wrappers go over the world.

    Attributes:
        name: Row label (``unshuffled``, ``shuffled at reset``, ...).
        shuffle: ``None`` no shuffle, ``0`` a permutation per episode drawn at reset,
            ``K >= 1`` re-drawn every ``K`` steps.
        noise: Pure-noise channels appended (after shuffling: they are inputs like any).
        occlude: Share of patches hidden (patch worlds).
        occlude_mode: ``drop`` (fewer inputs) or ``zero`` (the baseline's shape kept).
    """

    name: str
    shuffle: int | None = None
    noise: int = 0
    occlude: float = 0.0
    occlude_mode: str = "drop"

    def wrap(self, world: Any, seed: int) -> Any:
        """``world`` under this condition's wrappers (seeded from ``seed``)."""
        if self.occlude > 0:
            world = OccludePatches(world, self.occlude, seed=seed + 1, mode=self.occlude_mode)
        if self.shuffle is not None:
            world = ShuffleObservations(world, every=self.shuffle or None, seed=seed + 2)
        if self.noise:
            world = NoiseChannels(world, extra=self.noise, seed=seed + 3)
        return world

    def changes_input_count(self) -> bool:
        return self.noise > 0 or (self.occlude > 0 and self.occlude_mode == "drop")


def wrapped_factory(factory: WorldFactory, condition: Condition, seed: int) -> WorldFactory:
    """``factory`` whose worlds come wrapped for ``condition``."""

    def make(num_envs: int, device: Any = None) -> Any:
        return condition.wrap(factory(num_envs=num_envs, device=device), seed)

    return make


def mean_return(
    policy: nn.Module,
    factory: WorldFactory,
    *,
    episodes: int,
    max_steps: int,
    seed: int,
    action_fn: Callable[[Tensor], Tensor],
) -> float:
    """Mean return of ``policy`` over ``episodes`` fixed episodes of ``factory``'s worlds
    (a validation score: the same episodes every call)."""
    evaluator = BatchedEvaluator(
        policy,
        factory,
        episodes=episodes,
        max_steps=max_steps,
        seed=seed,
        shared_episodes=True,
        action_fn=action_fn,
    )
    return float(evaluator(flatten_params(policy)[None]).mean())


def continuous_actions(out: Tensor) -> Tensor:
    """Policy outputs ``(n, A)`` -> actions: ``(n,)`` for one action, else as they are."""
    return out.squeeze(-1) if out.shape[-1] == 1 else out


def discrete_actions(out: Tensor) -> Tensor:
    """Logits ``(n, A)`` -> argmax ``(n,)``."""
    return out.argmax(dim=-1)


# -- evaluation -----------------------------------------------------------------------------------
def evaluate_conditions(
    agents: dict[str, nn.Module],
    factory: WorldFactory,
    conditions: Sequence[Condition],
    *,
    episodes: int,
    max_steps: int,
    seed: int,
    action_fn: Callable[[Tensor], Tensor] = continuous_actions,
    mlp_condition: Callable[[Condition], Condition | None] | None = None,
    device: torch.device | str = "cpu",
) -> list[dict[str, Any]]:
    """Every agent under every condition: rows ``{condition, agent, mean, std,
    episodes}`` (plus ``returns``, ``note``).

    ``mlp_condition`` maps a condition to the one the MLP baseline meets (e.g. occlusion
    by zeroing instead of dropping) or ``None`` where it cannot be run (noise channels
    change the number of inputs): that row has ``mean`` and ``std`` ``None`` and a note.
    The same ``seed`` gives every agent the same episode starts and the same shuffles.
    """
    rows: list[dict[str, Any]] = []
    for condition in conditions:
        for label, policy in agents.items():
            cond: Condition | None = condition
            note = ""
            if isinstance(policy, MLPPolicy):
                cond = mlp_condition(condition) if mlp_condition else condition
                if cond is None:
                    note = "n/a: the MLP takes a fixed number of inputs"
                elif cond != condition:
                    note = f"as {cond.name}"
            row: dict[str, Any] = {"condition": condition.name, "agent": label}
            if cond is None:
                row.update(mean=None, std=None, episodes=0, note=note)
                rows.append(row)
                continue
            evaluator = BatchedEvaluator(
                policy,
                wrapped_factory(factory, cond, seed),
                episodes=episodes,
                max_steps=max_steps,
                seed=seed,
                shared_episodes=True,
                action_fn=action_fn,
                device=device,
            )
            returns = evaluator.returns(flatten_params(policy)[None])[0].cpu().numpy()
            row.update(
                mean=float(returns.mean()),
                std=float(returns.std()),
                episodes=int(episodes),
                returns=[round(float(r), 3) for r in returns],
            )
            if note:
                row["note"] = note
            rows.append(row)
    return rows


def print_rows(rows: Sequence[dict[str, Any]], title: str) -> None:
    """The evaluation as a table: one row per condition, one column per agent, plus the
    ratio of each agent's score to its unshuffled score."""
    agents = list(dict.fromkeys(r["agent"] for r in rows))
    # a ratio only against a positive first score (Pong's returns can be negative)
    base = {
        r["agent"]: r["mean"]
        for r in rows
        if r["condition"] == rows[0]["condition"] and r["mean"] is not None and r["mean"] > 0
    }
    table = Table(title=title)
    table.add_column("condition")
    for a in agents:
        table.add_column(f"{a} mean ± sd", justify="right")
        table.add_column("vs first", justify="right")
    for cond in dict.fromkeys(r["condition"] for r in rows):
        cells = [cond]
        for a in agents:
            r = next((r for r in rows if r["condition"] == cond and r["agent"] == a), None)
            if r is None or r["mean"] is None:
                cells += ["n/a", ""]
                continue
            cells.append(f"{r['mean']:.1f} ± {r['std']:.1f}")
            b = base.get(a)
            cells.append(f"{r['mean'] / b:.2f}" if b else "")
        table.add_row(*cells)
    console.print(table)


# -- training with PGPE ----------------------------------------------------------------------------
@dataclass
class PGPEResult:
    """What :func:`train_pgpe` returns."""

    params: Tensor
    """``(D,)`` the best validated mean of the search distribution."""
    validation: float
    generations: int
    seconds: float
    env_steps: int
    history: list[dict[str, float]] = field(default_factory=list)


def train_pgpe(
    policy: nn.Module,
    factory: WorldFactory,
    *,
    label: str,
    generations: int,
    pop_size: int,
    episodes: int,
    max_steps: int,
    seed: int,
    center_lr: float,
    stdev_init: float,
    validate_every: int,
    validate_episodes: int,
    action_fn: Callable[[Tensor], Tensor] = continuous_actions,
    device: torch.device | str = "cpu",
    run: RunDir | None = None,
    target: float | None = None,
) -> PGPEResult:
    """PGPE (ClipUp) on ``policy``'s flat parameters in ``factory``'s worlds.

    Every generation ``pop_size`` candidates (antithetic pairs) each play ``episodes``
    episodes, the same starts for all (new ones each generation); the mean ``mu`` is
    validated on ``validate_episodes`` other episodes every ``validate_every``
    generations and the best validated ``mu`` is kept. Stops early once a validation
    reaches ``target``.
    """
    device = torch.device(device)
    initial = flatten_params(policy).detach()
    core = PGPE(
        num_params(policy),
        pop_size,
        center_init=initial.to(device),
        stdev_init=stdev_init,
        center_lr=center_lr,
        optimizer="clipup",
        seed=seed,
        device=device,
        maximize=True,
    )
    common = dict(max_steps=max_steps, action_fn=action_fn, device=device, shared_episodes=True)
    trainer = BatchedEvaluator(policy, factory, episodes=episodes, seed=seed, **common)
    validator = BatchedEvaluator(
        policy, factory, episodes=validate_episodes, seed=seed + 7919, **common
    )
    best: tuple[float, Tensor] | None = None
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    env_steps = 0
    generation = 0
    with progress_bar(console) as progress:
        task = progress.add_task(label, total=generations, rate="")
        for generation in range(1, generations + 1):
            params = core.ask()
            fitness = trainer(params, seed=seed * 100_003 + generation).double()
            env_steps += trainer.last_env_steps
            core.tell(fitness)
            record = {
                "generation": generation,
                "charts/fitness_mean": float(fitness.mean()),
                "charts/fitness_max": float(fitness.max()),
                "charts/stdev_mean": float(core.stdev.mean()),
                "charts/env_steps": env_steps,
                "charts/seconds": time.perf_counter() - start,
            }
            if generation % validate_every == 0 or generation == generations:
                center = core.center.detach().clone()
                value = float(validator(center[None]).mean())
                env_steps += validator.last_env_steps
                record["charts/validation_mean"] = value
                if best is None or value >= best[0]:
                    best = (value, center.cpu())
            history.append(record)
            if run is not None:
                run.log(
                    generation, {f"{label}/{k}": v for k, v in record.items() if k != "generation"}
                )
            progress.update(
                task,
                completed=generation,
                rate=f"mean {record['charts/fitness_mean']:.0f} max "
                f"{record['charts/fitness_max']:.0f}"
                + (f" val {best[0]:.0f}" if best is not None else ""),
            )
            if target is not None and best is not None and best[0] >= target:
                break
    assert best is not None
    return PGPEResult(
        params=best[1],
        validation=best[0],
        generations=generation,
        seconds=time.perf_counter() - start,
        env_steps=env_steps,
        history=history,
    )


def plot_histories(results: dict[str, PGPEResult], path: Path, title: str) -> Path:
    """Population mean and validation return per generation, one colour per agent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), constrained_layout=True)
    for i, (label, result) in enumerate(results.items()):
        gens = np.array([h["generation"] for h in result.history])
        mean = np.array([h["charts/fitness_mean"] for h in result.history])
        ax.plot(gens, mean, color=f"C{i}", alpha=0.5, label=f"{label}: population mean")
        val = [
            (h["generation"], h["charts/validation_mean"])
            for h in result.history
            if "charts/validation_mean" in h
        ]
        if val:
            g, v = zip(*val, strict=True)
            ax.plot(g, v, "o-", color=f"C{i}", ms=3, label=f"{label}: mean policy, validation")
    ax.set(xlabel="generation", ylabel="return", title=title)
    ax.legend(loc="lower right")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -- behaviour cloning ---------------------------------------------------------------------------
@dataclass
class CloneResult:
    """What :func:`behaviour_clone` returns."""

    validation: float
    """Best validation score (the student keeps the weights that reached it)."""
    iterations: int
    seconds: float
    env_steps: int
    history: list[dict[str, float]] = field(default_factory=list)


def _unwrapped(world: Any) -> Any:
    return getattr(world, "unwrapped", world)


def _train_framewise(
    student: nn.Module,
    optimizer: torch.optim.Optimizer,
    memory: list[tuple[Tensor, Tensor, Tensor]],
    epochs: int,
    minibatch: int,
    discrete: bool,
    generator: torch.Generator,
) -> list[float]:
    """``epochs`` passes of shuffled minibatches over every live frame in ``memory``."""
    obs = torch.cat([o[m] for o, _, m in memory])  # (S, ...) live frames only
    labels = torch.cat([y[m] for _, y, m in memory])
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(obs), generator=generator)
        for i in range(0, len(obs), minibatch):
            idx = order[i : i + minibatch]
            out = student(obs[idx])
            out = out[0] if isinstance(out, tuple) else out  # (b, A)
            if discrete:
                loss = nn.functional.cross_entropy(out, labels[idx].long())
            else:
                target = labels[idx].float().reshape(out.shape).clamp(-1, 1)
                loss = (out - target).square().mean()
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(student.parameters(), 1.0)
            optimizer.step()
            losses.append(float(loss.detach()))
    return losses


def behaviour_clone(
    student: nn.Module,
    make_world: Callable[[int], Any],
    teacher: Callable[[Any], Tensor],
    *,
    label: str,
    iterations: int,
    envs: int,
    steps: int,
    seed: int,
    lr: float = 3e-3,
    epochs: int = 2,
    chunk: int = 50,
    replay: int = 4,
    beta_decay: float = 0.5,
    teacher_noise: float = 0.0,
    discrete: bool = False,
    validate: Callable[[nn.Module], float] | None = None,
    validate_every: int = 1,
    run: RunDir | None = None,
    minibatch: int | None = None,
) -> CloneResult:
    """Behaviour cloning with DAgger (Ross et al. 2011) of a recurrent or plain student.

    Each iteration plays ``envs`` episodes of at most ``steps`` steps in
    ``make_world(envs)`` (the student sees the world's observations, e.g. shuffled by a
    wrapper); every step the teacher labels the TRUE state (``teacher(unwrapped world)
    -> actions``) and the env executes the teacher's action with probability ``beta =
    beta_decay ** iteration``, else the student's. The last ``replay`` rollouts are
    kept; the student is trained on them for ``epochs`` passes by truncated
    backpropagation through time (``chunk`` steps, its state carried between chunks),
    MSE to the teacher's actions (``discrete``: cross-entropy to its choices), Adam.
    With ``teacher_noise`` (continuous actions) the teacher's executed actions get
    ``N(0, teacher_noise)`` added (DART); the labels stay clean.
    The student keeps the weights of its best validation (``validate(student)``, higher
    is better) when one is given.

    ``minibatch``: for a student whose output depends on the current observation only
    (an MLP, or an AttentionNeuronPolicy with ``recurrent=False`` and
    ``feed_action=False``), train instead on shuffled minibatches of this many single
    frames drawn from all kept rollouts (``epochs`` passes over them): many more, and
    less correlated, steps than one step per chunk.
    """
    recurrent = callable(getattr(student, "initial_state", None))
    framewise = minibatch is not None and not getattr(student, "recurrent", recurrent)
    if minibatch is not None and minibatch < 1:
        raise ValueError(f"minibatch must be >= 1, got {minibatch}")
    optimizer = torch.optim.Adam(student.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    memory: list[tuple[Tensor, Tensor, Tensor]] = []
    history: list[dict[str, float]] = []
    best: tuple[float, dict[str, Tensor]] | None = None
    start = time.perf_counter()
    env_steps = 0

    def forward(obs: Tensor, state: Any) -> tuple[Tensor, Any]:
        if recurrent:
            return student(obs, state)
        return student(obs), None

    with progress_bar(console) as progress:
        task = progress.add_task(label, total=iterations, rate="")
        for iteration in range(iterations):
            beta = beta_decay**iteration
            world = make_world(envs)
            obs = torch.as_tensor(world.reset(seed=seed * 1000 + iteration)).float()
            alive = torch.ones(envs, dtype=torch.bool)
            seen, labels, masks = [], [], []
            state = None
            student.eval()
            with torch.no_grad():
                for _ in range(steps):
                    target = torch.as_tensor(teacher(_unwrapped(world)))
                    out, state = forward(obs, state)
                    own = (
                        out.argmax(-1)
                        if discrete
                        else out.squeeze(-1)
                        if out.shape[-1] == 1
                        else out
                    )
                    pick = torch.rand(envs, generator=generator) < beta
                    if not discrete and own.dim() > 1:
                        pick = pick[:, None]
                    executed = target.to(own.dtype)
                    if teacher_noise and not discrete:
                        # DART (Laskey et al. 2017): a noisy teacher visits the states
                        # from which it must recover, and labels them
                        noise = torch.randn(executed.shape, generator=generator)
                        executed = (executed + teacher_noise * noise.to(own.dtype)).clamp(-1, 1)
                    action = torch.where(pick, executed, own)
                    seen.append(obs)
                    labels.append(target)
                    masks.append(alive.clone())
                    obs, _, terminated, truncated, _ = world.step(action)
                    obs = torch.as_tensor(obs).float()
                    env_steps += int(alive.sum())
                    alive &= ~(torch.as_tensor(terminated) | torch.as_tensor(truncated))
                    if not bool(alive.any()):
                        break
            memory.append((torch.stack(seen), torch.stack(labels), torch.stack(masks)))
            memory = memory[-replay:]
            student.train()
            losses = []
            if framewise:
                losses = _train_framewise(
                    student, optimizer, memory, epochs, minibatch, discrete, generator
                )
            for _ in range(0 if framewise else epochs):
                for seq_obs, seq_label, seq_mask in memory:
                    state = None
                    for c0 in range(0, seq_obs.shape[0], chunk):
                        if state is not None:
                            state = type(state)(*(t.detach() for t in state))
                        outs = []
                        for t in range(c0, min(c0 + chunk, seq_obs.shape[0])):
                            out, state = forward(seq_obs[t], state)
                            outs.append(out)
                        out = torch.stack(outs)  # (L, N, A)
                        mask = seq_mask[c0 : c0 + len(outs)].float()  # (L, N)
                        target = seq_label[c0 : c0 + len(outs)]
                        if discrete:
                            per = nn.functional.cross_entropy(
                                out.flatten(0, 1), target.flatten().long(), reduction="none"
                            ).view_as(mask)
                        else:
                            target = target.float().reshape(out.shape).clamp(-1, 1)
                            per = (out - target).square().mean(-1)
                        loss = (per * mask).sum() / mask.sum().clamp(min=1)
                        optimizer.zero_grad()
                        loss.backward()
                        nn.utils.clip_grad_norm_(student.parameters(), 1.0)
                        optimizer.step()
                        losses.append(float(loss.detach()))
            student.eval()
            record = {
                "iteration": iteration + 1,
                "losses/bc": float(np.mean(losses)),
                "charts/beta": beta,
                "charts/env_steps": env_steps,
                "charts/seconds": time.perf_counter() - start,
            }
            if validate is not None and (
                (iteration + 1) % validate_every == 0 or iteration + 1 == iterations
            ):
                value = float(validate(student))
                record["charts/validation_mean"] = value
                if best is None or value >= best[0]:
                    best = (value, {k: v.clone() for k, v in student.state_dict().items()})
            history.append(record)
            if run is not None:
                run.log(
                    iteration + 1,
                    {f"{label}/{k}": v for k, v in record.items() if k != "iteration"},
                )
            progress.update(
                task,
                completed=iteration + 1,
                rate=f"loss {record['losses/bc']:.4f}"
                + (f" val {best[0]:.1f}" if best is not None else ""),
            )
    if best is not None:
        student.load_state_dict(best[1])
    return CloneResult(
        validation=best[0] if best is not None else float("nan"),
        iterations=iterations,
        seconds=time.perf_counter() - start,
        env_steps=env_steps,
        history=history,
    )


# -- watching ------------------------------------------------------------------------------------
class SensoryWatch:
    """What ``colony watch sensory-*`` shows: the world driven by a trained agent, the
    inputs as the agent receives them (shuffled), and its attention.

    Implements the viewer's world interface (``render_rgb``, ``step``, ``metrics``,
    ``step_count``, ``metadata``, ``handle_key``). Key ``x`` re-shuffles the inputs of
    every env now; ``m`` switches between the AttentionNeuron and the MLP baseline (if
    given) so you can watch the MLP collapse under the same shuffle.

    Args:
        world: An auto-resetting vectorized world (``render_rgb``) with observations
            ``[N, D]`` or patches ``[N, P, d]``.
        agents: ``{label: policy}``; the first drives at the start.
        shuffle_every: Re-shuffle every this many steps (None: only on ``x`` and at
            each episode's start).
        action_fn: Policy outputs -> the world's actions.
        image_shape: ``(H, W, patch)`` for patch worlds: the shuffled patches are
            reassembled into the picture the agent sees.
        seed: Seed of the world and the shuffles.
    """

    def __init__(
        self,
        world: Any,
        agents: dict[str, nn.Module],
        *,
        shuffle_every: int | None,
        action_fn: Callable[[Tensor], Tensor],
        image_shape: tuple[int, int, int] | None = None,
        seed: int = 0,
        name: str = "sensory",
    ) -> None:
        self.base = world
        self.world = ShuffleObservations(world, every=shuffle_every, seed=seed)
        self.agents = agents
        self.labels = list(agents)
        self.current = 0
        self.action_fn = action_fn
        self.image_shape = image_shape
        self.metadata = {**getattr(world, "metadata", {}), "name": name}
        self.step_count = 0
        self.reshuffles = 0
        self.obs = torch.as_tensor(self.world.reset(seed=seed)).float()
        self.state: Any = None
        self.attention: Tensor | None = None
        self.returns = torch.zeros(self.obs.shape[0], dtype=torch.float64)
        self.last_returns: list[float] = []

    @property
    def policy(self) -> nn.Module:
        return self.agents[self.labels[self.current]]

    def handle_key(self, name: str) -> bool:
        if name == "x":
            # the observation in hand moves too: un-shuffle it, shuffle it the new way
            old = self._expand(self.world.permutation)
            raw = torch.empty_like(self.obs).scatter_(1, old, self.obs)
            self.obs = torch.gather(raw, 1, self._expand(self.world.reshuffle()))
            self.reshuffles += 1
            return True
        if name == "m" and len(self.labels) > 1:
            self.current = (self.current + 1) % len(self.labels)
            self.state = None
            self.returns.zero_()
            return True
        return False

    def _expand(self, permutation: Tensor) -> Tensor:
        index = permutation.reshape(*permutation.shape, *([1] * (self.obs.dim() - 2)))
        return index.expand_as(self.obs)

    @torch.no_grad()
    def step(self, actions: Any = None) -> Any:
        policy = self.policy
        if callable(getattr(policy, "initial_state", None)):
            out, self.state, attention = policy.step(self.obs, self.state)
            self.attention = attention
        else:
            out, self.attention = policy(self.obs), None
        result = self.world.step(self.action_fn(out))
        obs, reward, terminated, truncated, _ = result
        ended = torch.as_tensor(terminated) | torch.as_tensor(truncated)
        self.returns += torch.as_tensor(reward, dtype=torch.float64)
        if bool(ended.any()):
            self.last_returns = (self.last_returns + self.returns[ended].tolist())[-20:]
            self.returns[ended] = 0.0
            if self.state is not None:  # new episodes start from a zero state
                keep = (~ended).to(self.state[0].dtype)
                self.state = type(self.state)(
                    self.state.h * keep[:, None, None],
                    self.state.c * keep[:, None, None],
                    self.state.prev_action * keep[:, None],
                )
        self.obs = torch.as_tensor(obs).float()
        self.step_count += 1
        return result

    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "agent": self.labels[self.current],
            "step": self.step_count,
            "return (env 0, so far)": round(float(self.returns[0]), 1),
            "x reshuffles": self.reshuffles,
        }
        if self.last_returns:
            out["mean return, last episodes"] = round(float(np.mean(self.last_returns)), 1)
        if self.world.every:
            out["auto-shuffle every"] = self.world.every
        out["keys"] = "x reshuffle, m MLP/AN"
        return out

    def render_rgb(self) -> np.ndarray:
        frame = np.asarray(self.base.render_rgb())
        side = self._inputs_panel(frame.shape[0])
        return np.concatenate([frame, side], axis=1)

    def _inputs_panel(self, height: int) -> np.ndarray:
        """Env 0's inputs as the agent sees them and the attention over them."""
        from PIL import Image, ImageDraw

        width = max(260, height // 2)
        panel = Image.new("RGB", (width, height), (24, 24, 30))
        draw = ImageDraw.Draw(panel)
        draw.text(
            (8, 6), f"{self.labels[self.current]}: what it sees (env 0)", fill=(235, 235, 235)
        )
        obs = self.obs[0]
        attention = self.attention[0] if self.attention is not None else None  # (M, N)
        if self.image_shape is not None:
            h, w, patch = self.image_shape
            from colonylab.agents.sensory import unpatchify

            channels = obs.shape[-1] // (patch * patch)
            picture = unpatchify(obs, h, w, patch)[..., -1].numpy()  # newest frame
            size = min(width - 16, (height - 64) // 2)  # picture + heatmap + captions
            img = Image.fromarray((picture * 255).astype(np.uint8)).resize((size, size), 0)
            panel.paste(img.convert("RGB"), (8, 24))
            draw.text((8, 26 + size), "shuffled patches (newest frame)", fill=(170, 176, 190))
            if attention is not None and channels:
                weight = attention.sum(0).numpy()
                weight = weight / max(weight.max(), 1e-9)
                heat = weight.reshape(h // patch, w // patch)
                img = Image.fromarray((heat * 255).astype(np.uint8)).resize((size, size), 0)
                y0 = 44 + size
                panel.paste(
                    Image.merge("RGB", (img, img.point(lambda v: v // 3), img.point(lambda v: 0))),
                    (8, y0),
                )
                draw.text(
                    (8, y0 + size + 2),
                    "attention per patch (sum over queries)",
                    fill=(170, 176, 190),
                )
            return np.asarray(panel)
        values = obs.numpy()
        n = len(values)
        bar_h = max(4, min(18, (height // 2 - 40) // max(n, 1)))
        for j, v in enumerate(values):
            y = 26 + j * bar_h
            length = int(np.clip(abs(v) / 3.0, 0, 1) * (width / 2 - 30))
            x0 = width // 2
            colour = (90, 170, 255) if v >= 0 else (255, 140, 90)
            draw.rectangle(
                (
                    min(x0, x0 + np.sign(v) * length),
                    y,
                    max(x0, x0 + np.sign(v) * length),
                    y + bar_h - 2,
                ),
                fill=colour,
            )
            draw.text((4, y), f"in {j}", fill=(170, 176, 190))
        y0 = 30 + n * bar_h
        if attention is not None:
            m = attention.shape[0]
            cell = max(2, min((width - 16) // n, (height - y0 - 24) // m))
            heat = (attention.numpy() / max(float(attention.max()), 1e-9) * 255).astype(np.uint8)
            img = Image.fromarray(heat).resize((cell * n, cell * m), 0)
            panel.paste(
                Image.merge("RGB", (img, img.point(lambda v: v // 3), img.point(lambda v: 0))),
                (8, y0 + 14),
            )
            draw.text((8, y0), "attention: queries (rows) x inputs", fill=(170, 176, 190))
        return np.asarray(panel)


def load_agents(checkpoint: str | None, experiment: str) -> dict[str, nn.Module]:
    """The AttentionNeuron and the MLP of ``experiment`` by label: from the directory
    ``checkpoint`` (or the shipped checkpoints), or one file of them.

    Files are named ``<experiment with _>_{attention,mlp}.pt``."""
    stem = experiment.replace("-", "_")
    root = Path(checkpoint) if checkpoint else SHIPPED
    agents = {}
    for kind in ("attention", "mlp"):
        path = root / f"{stem}_{kind}.pt" if root.is_dir() else root
        if root.is_dir() or root.name == f"{stem}_{kind}.pt":
            agents[AGENT_LABELS[kind]], _ = load_agent(path, experiment)
    if not agents:
        raise ValueError(
            f"{str(root)!r}: give a directory holding {stem}_attention.pt and {stem}_mlp.pt, "
            "or one of those files"
        )
    return agents
