"""AE-Swarm: M training trajectories, each with its own AE controller, sharing a step budget.

::

    swarm = AESwarm(model, lambda ps: torch.optim.AdamW(ps, lr=1e-3), SwarmConfig(trajectories=4))
    for _ in range(rounds):
        swarm.train_round(lambda net, i: loss_fn(net(x), y))     # training (K M steps in all)
        swarm.tell(torch.tensor([val_loss(net) for net in swarm.models]))   # scoring
    params, score = swarm.best

Each trajectory ``i`` is a copy of ``model`` with its own optimizer (from
``make_optimizer``) wrapped by an :class:`~colonylab.collective_ml.ae.AEController`
(its own noise seed; its initial learning rate jittered by ``exp(init_spread xi)``
so the swarm starts diverse). A round is:

1. **training**: trajectory ``i`` takes ``n_i`` steps of ``loss_fn(model_i, i)``
   -> ``backward`` -> ``ctrl_i.step``. ``sum_i n_i = B = round_steps * M`` (the round's
   budget; at first ``n_i = round_steps`` for all).
2. **scoring**: the caller scores each trajectory (a validation loss, lower is
   better) and calls :meth:`tell` -- the ask/tell interface of every population core:
   :meth:`ask` returns the trajectories' flat weights ``(M, D)``.
3. **budget reallocation**: with scores standardised,
   ``s'_i = (s_i - mean s) / (std s + 1e-12)``, the shares are
   ``w = softmax(-s' / temperature)`` and ``n_i = round(w_i B)`` by largest remainders
   (so the counts sum to ``B`` exactly). NaN/inf scores count as the worst (+inf:
   share 0).
4. **coefficient consensus**: every controller's log-coefficients ``z_i`` (and its
   gauge target ``log gamma*_i``) are pulled toward the share-weighted mean,
   ``z_i <- z_i + kappa (sum_j w_j z_j - z_i)``, then projected onto its bounds.
5. **dither of the worst** (``dither``): the worst trajectory takes the best one's
   log-coefficients plus ``N(0, dither_sigma^2)`` noise (the sigma column excepted), and
   with ``copy_best_weights`` the best one's weights and optimizer state too.
6. **offload**: a trajectory with ``n_i = 0`` is inactive for the next round; with
   ``offload`` its weights and optimizer state go to the CPU (``.to("cpu")``) and come
   back to :attr:`device` when it gets steps again (a no-op when the device is the CPU).

Lower score is better (the base class's convention); ``best`` is the best-scored
weights seen. ``state_dict()`` holds every model, optimizer and controller state and the
generator, so a resumed swarm continues identically.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from colonylab.collective_ml.ae import AEConfig, AEController
from colonylab.collective_ml.base import PopulationOptimizer, flatten_params, num_params

__all__ = ["AESwarm", "SwarmConfig", "allocate_budget"]


@dataclass(frozen=True)
class SwarmConfig:
    """Size, budget and the round's laws of an :class:`AESwarm`."""

    trajectories: int = 4
    """M, model copies trained side by side."""
    round_steps: int = 20
    """K, mean steps per trajectory per round (the round's budget is K * M)."""
    temperature: float = 1.0
    """tau of the softmax over standardised scores (small: winner takes all)."""
    consensus: float = 0.2
    """kappa, pull of each controller's log-coefficients toward the weighted mean."""
    dither: bool = True
    """Re-seed the worst trajectory's coefficients from the best one's plus noise."""
    dither_sigma: float = 0.3
    """Std of the log-space noise of a dither."""
    copy_best_weights: bool = True
    """A dither also copies the best trajectory's weights and optimizer state."""
    init_spread: float = 0.5
    """Std of the log-space jitter of each trajectory's initial learning rate."""
    offload: bool = True
    """Move inactive trajectories (zero steps) to the CPU until they get steps again."""

    def __post_init__(self) -> None:
        for name in ("trajectories", "round_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if self.trajectories < 2:
            raise ValueError(
                f"trajectories must be >= 2 for a swarm (got {self.trajectories}); "
                "use AEController directly for one"
            )
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        if not 0 <= self.consensus <= 1:
            raise ValueError(f"consensus (kappa) must be in [0, 1], got {self.consensus!r}")
        for name in ("dither_sigma", "init_spread"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")


def allocate_budget(scores: Tensor, budget: int, temperature: float) -> tuple[list[int], Tensor]:
    """Steps per trajectory, ``softmax(-standardised score / temperature)`` of ``budget``.

    Args:
        scores: ``(M,)``, lower is better; ``+inf`` gets nothing (if every score is
            ``+inf`` the budget is split evenly).
        budget: Total steps (>= 0).
        temperature: Softmax temperature (> 0).

    Returns:
        ``(counts, shares)``: ``M`` integers summing to ``budget`` exactly (largest
        remainders) and the ``(M,)`` float64 shares.
    """
    s = scores.detach().to("cpu", torch.float64)
    finite = torch.isfinite(s)
    if not bool(finite.any()):
        shares = torch.full_like(s, 1.0 / len(s))
    else:
        f = s[finite]
        std = float(f.std(unbiased=False)) if f.numel() > 1 else 0.0
        z = (s - float(f.mean())) / (std + 1e-12)
        logits = torch.where(finite, -z / temperature, torch.tensor(-math.inf, dtype=s.dtype))
        shares = torch.softmax(logits, 0)
    raw = (shares * budget).tolist()
    counts = [int(math.floor(r)) for r in raw]
    rest = budget - sum(counts)
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[:rest]:
        counts[i] += 1
    return counts, shares


def _move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Move the optimizer's per-parameter tensors (not scalar step counters) to ``device``."""
    for state in optimizer.state.values():
        for key, v in state.items():
            if isinstance(v, Tensor) and v.dim() > 0:
                state[key] = v.to(device)


class AESwarm(PopulationOptimizer):
    """M trajectories of ``model`` trained by AE-controlled optimizers (module doc).

    Args:
        model: The template; each trajectory trains a deep copy (on ``device``).
        make_optimizer: ``params -> torch.optim.Optimizer`` for one trajectory.
        config: Swarm settings.
        ae_config: The controllers' config (seeds become ``seed * M + i``).
        seed: Seed of the swarm's generator (jitter, dither).
        device: Where active trajectories train (default: the template's device).
    """

    def __init__(
        self,
        model: nn.Module,
        make_optimizer: Callable[[Any], torch.optim.Optimizer],
        config: SwarmConfig | None = None,
        ae_config: AEConfig | None = None,
        *,
        seed: int = 0,
        device: torch.device | str | None = None,
    ) -> None:
        self.config = cfg = config if config is not None else SwarmConfig()
        first = next(model.parameters(), None)
        if first is None:
            raise ValueError(f"{type(model).__name__} has no parameters to train")
        dev = torch.device(device) if device is not None else first.device
        super().__init__(num_params(model), cfg.trajectories, seed=seed, device=dev)
        base_ae = ae_config if ae_config is not None else AEConfig()
        self.models: list[nn.Module] = []
        self.optimizers: list[torch.optim.Optimizer] = []
        self.controllers: list[AEController] = []
        jitter = self._normal(cfg.trajectories)
        for i in range(cfg.trajectories):
            net = copy.deepcopy(model).to(self.device)
            opt = make_optimizer(net.parameters())
            ae = dataclasses.replace(base_ae, seed=base_ae.seed * cfg.trajectories + i)
            ctrl = AEController(opt, ae)
            kl = ctrl.names.index("lr")
            for row, lo, hi in zip(ctrl.z, ctrl.z_lo, ctrl.z_hi, strict=True):
                row[kl] = min(max(row[kl] + cfg.init_spread * jitter[i], lo[kl]), hi[kl])
            ctrl.z0 = [list(r) for r in ctrl.z]
            ctrl._write([ctrl.value("lr", g) for g in range(len(ctrl.z))])
            self.models.append(net)
            self.optimizers.append(opt)
            self.controllers.append(ctrl)
        self.steps = [cfg.round_steps] * cfg.trajectories
        """Steps each trajectory takes in the next round (sums to K * M)."""
        self.shares = [1.0 / cfg.trajectories] * cfg.trajectories
        self.on_device = [True] * cfg.trajectories
        self.rounds = 0
        self.total_steps = 0
        self.dithers = 0
        self._best_params: Tensor | None = None
        self._best_score = math.inf
        self.last_scores: list[float] = []

    # -- randomness ---------------------------------------------------------------------------
    def _normal(self, n: int) -> list[float]:
        return torch.randn(n, generator=self.generator, device=self.device).tolist()

    # -- placement ----------------------------------------------------------------------------
    def _place(self, i: int, device: torch.device) -> None:
        self.models[i].to(device)
        _move_optimizer_state(self.optimizers[i], device)
        self.on_device[i] = device == self.device

    @property
    def active(self) -> list[bool]:
        """Trajectories with steps in the next round."""
        return [n > 0 for n in self.steps]

    # -- the round ----------------------------------------------------------------------------
    def train_round(self, loss_fn: Callable[[nn.Module, int], Tensor]) -> list[float]:
        """Train each active trajectory for its allotted steps.

        Args:
            loss_fn: ``(model, i) -> scalar loss`` (a fresh batch each call if wanted).

        Returns:
            The last training loss of each trajectory (nan where it took no step).
        """
        last = [math.nan] * self.pop_size
        for i, n in enumerate(self.steps):
            if n == 0:
                continue
            if not self.on_device[i]:
                self._place(i, self.device)
            net, opt, ctrl = self.models[i], self.optimizers[i], self.controllers[i]
            for _ in range(n):
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(net, i)
                loss.backward()
                ctrl.step(loss.detach())
                last[i] = float(loss.detach())
            self.total_steps += n
        self.rounds += 1
        return last

    def ask(self) -> Tensor:
        """The trajectories' current weights, ``(M, D)`` on :attr:`device` (copies)."""
        return torch.stack([flatten_params(m).to(self.device) for m in self.models])

    def _tell(self, fitness: Tensor) -> None:
        """Scores -> best, budget reallocation, consensus, dither, offload."""
        cfg = self.config
        scores = fitness.detach().to("cpu", torch.float64)
        self.last_scores = scores.tolist()
        i_best = int(torch.argmin(scores))
        if float(scores[i_best]) < self._best_score:
            self._best_score = float(scores[i_best])
            self._best_params = flatten_params(self.models[i_best]).to(self.device).clone()
        budget = cfg.round_steps * cfg.trajectories
        self.steps, shares = allocate_budget(scores, budget, cfg.temperature)
        self.shares = shares.tolist()
        self._consensus(shares)
        finite = torch.isfinite(scores)
        i_worst = int(torch.argmax(torch.where(finite, scores, torch.inf)))
        if cfg.dither and i_worst != i_best:
            self._dither(i_worst, i_best)
        if cfg.offload:
            cpu = torch.device("cpu")
            for i, n in enumerate(self.steps):
                if n == 0 and self.on_device[i] and self.device != cpu:
                    self._place(i, cpu)
                elif n == 0:
                    self.on_device[i] = self.device == cpu

    def _consensus(self, shares: Tensor) -> None:
        kappa = self.config.consensus
        if kappa == 0:
            return
        w = shares.tolist()
        ctrls = self.controllers
        G, K = len(ctrls[0].z), len(ctrls[0].names)
        for g in range(G):
            mean = [sum(w[i] * ctrls[i].z[g][k] for i in range(len(ctrls))) for k in range(K)]
            lg = [c.log_gamma[g] for c in ctrls]
            mean_lg = (
                sum(wi * v for wi, v in zip(w, lg, strict=True))
                if all(math.isfinite(v) for v in lg)
                else math.nan
            )
            for c in ctrls:
                row = c.z[g]
                for k in range(K):
                    v = row[k] + kappa * (mean[k] - row[k])
                    row[k] = min(max(v, c.z_lo[g][k]), c.z_hi[g][k])
                if math.isfinite(mean_lg):
                    c.log_gamma[g] += kappa * (mean_lg - c.log_gamma[g])
        for c in ctrls:
            c._write([c.value("lr", g) for g in range(G)])

    def _dither(self, worst: int, best: int) -> None:
        cfg = self.config
        cw, cb = self.controllers[worst], self.controllers[best]
        ks = cw.names.index("sigma")
        for g, row in enumerate(cb.z):
            noise = self._normal(len(row))
            cw.z[g] = [
                min(max(v + (0.0 if k == ks else cfg.dither_sigma * e), lo), hi)
                for k, (v, e, lo, hi) in enumerate(
                    zip(row, noise, cw.z_lo[g], cw.z_hi[g], strict=True)
                )
            ]
            cw.log_gamma[g] = cb.log_gamma[g]
        if cfg.copy_best_weights:
            place = self.device if self.on_device[worst] else torch.device("cpu")
            self.models[worst].load_state_dict(self.models[best].state_dict())
            # a deep copy: load_state_dict keeps same-device tensors, which would alias
            # the best trajectory's buffers (both would then update them in place)
            self.optimizers[worst].load_state_dict(
                copy.deepcopy(self.optimizers[best].state_dict())
            )
            _move_optimizer_state(self.optimizers[worst], place)
        cw._write([cw.value("lr", g) for g in range(len(cw.z))])
        self.dithers += 1

    def _best(self) -> tuple[Tensor, float]:
        if self._best_params is None:
            raise RuntimeError("no scores told yet: call tell(scores) after a round first")
        return self._best_params, self._best_score

    # -- state --------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "models": [{k: v.detach().cpu().clone() for k, v in m.state_dict().items()}
                       for m in self.models],
            "optimizers": [copy.deepcopy(o.state_dict()) for o in self.optimizers],
            "controllers": [c.state_dict() for c in self.controllers],
            "steps": list(self.steps),
            "shares": list(self.shares),
            "rounds": self.rounds,
            "total_steps": self.total_steps,
            "dithers": self.dithers,
            "best_params": self._best_params,
            "best_score": self._best_score,
            "last_scores": list(self.last_scores),
        }  # fmt: skip

    def _load_state(self, state: dict[str, Any]) -> None:
        for i, (net, opt, ctrl) in enumerate(
            zip(self.models, self.optimizers, self.controllers, strict=True)
        ):
            self._place(i, self.device)
            net.load_state_dict(state["models"][i])
            opt.load_state_dict(state["optimizers"][i])
            ctrl.load_state_dict(state["controllers"][i])
        self.steps = [int(n) for n in state["steps"]]
        self.shares = [float(v) for v in state["shares"]]
        self.rounds = int(state["rounds"])
        self.total_steps = int(state["total_steps"])
        self.dithers = int(state["dithers"])
        bp = state["best_params"]
        self._best_params = None if bp is None else bp.to(self.device)
        self._best_score = float(state["best_score"])
        self.last_scores = list(state["last_scores"])
        if self.config.offload:
            for i, n in enumerate(self.steps):
                if n == 0 and self.device.type != "cpu":
                    self._place(i, torch.device("cpu"))
