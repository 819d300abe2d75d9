"""Adaptive Evolution (AE): a controller that evolves a torch optimizer's coefficients.

::

    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ctrl = AEController(opt, AEConfig(seed=0))
    for x, y in batches:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        ctrl.step(loss)          # reads loss + grads, sets coefficients, calls opt.step()
    ctrl.history["lr"]           # coefficient and signal trajectories

**Contract of** :meth:`AEController.step`: the caller has run ``loss.backward()``
(the gradients in ``param.grad`` belong to ``loss``). ``step(loss)`` reads the loss
value and gradient statistics, updates the filters, evolves the coefficients of every
param group, writes them into ``optimizer.param_groups`` and then calls
``optimizer.step()`` exactly once. It never calls ``zero_grad`` and never builds an
autograd graph. A non-finite loss or gradient skips ``optimizer.step()`` (parameters
stay as they were), counts a skipped step and clamps the step size (see the
resonance law); the caller goes on with the next batch.

Design: the issue's "AE theory notes" are not part of this repository, so the laws
below were designed here from the issue's description; every one is written out so
it can be reviewed, and every one has a switch in :class:`AEConfig` for ablations.

Coefficients and coordinates
----------------------------
Per param group ``g`` the controller holds a log-coordinate ``z[g, k]`` for each
managed coefficient ``k`` (a small float64 CPU tensor ``(G, K)``):

=============  ====================  =================================================
family         coefficient           coordinate
=============  ====================  =================================================
SGD            ``lr`` (alpha)        ``z = log alpha``
SGD            ``momentum`` (beta)   ``z = log(1 - beta)``  (only if momentum > 0)
Adam / AdamW   ``lr`` (alpha)        ``z = log alpha``
Adam / AdamW   ``beta1``             ``z = log(1 - beta1)``
Adam / AdamW   ``beta2``             ``z = log(1 - beta2)``
Adam / AdamW   ``eps``               ``z = log eps``
Adam / AdamW   ``weight_decay``      ``z = log wd``        (only if wd > 0)
any            ``sigma``             ``z = log sigma``      (the controller's own noise)
other optim    ``lr`` and ``sigma``
=============  ====================  =================================================

Measurement filters (Python floats; ``a_f`` = ``fast``, ``a_s`` = ``slow``)
---------------------------------------------------------------------------
With the loss ``L_t``, its fast EMA ``Lbar`` and the scale-free change
``d_t = clip((L_t - L_{t-1}) / (|Lbar_{t-1}| + 1e-12), -1, 4)``::

    Lbar_t = Lbar + a_f (L_t - Lbar)                 loss level
    T_t    = T + a_s (d_t - T)                       trend (< 0: improving)
    V_t    = V + a_s ((d_t - T_t)^2 - V)             variance of the change
    R_t    = R + a_f (-d_t - R)                      reward delta (recent improvement)
    rho_t  = rho + a_f (c_t - rho)                   gradient alignment
    S_t    = sqrt(V_t) / (|T_t| + sqrt(V_t) + 1e-12) uncertainty in [0, 1]

``c_t`` is the cosine between this step's gradient ``g_t`` and the optimizer's
momentum buffer from before the step (``momentum_buffer`` of SGD, ``exp_avg`` of
Adam): the previous update direction, so ``-alpha g_t . m_{t-1}`` is the
hypergradient of the loss in ``alpha`` -- no copy of the parameters or of the
previous gradient is kept. Without a buffer (plain SGD, other optimizers, first
step) it is the loss proxy ``c_t = 2 d_t d_{t-1} / (d_t^2 + d_{t-1}^2)`` (+1 for a
steady change, -1 for an alternating one). The progress index is
``p_t = tanh(-T_t / (sqrt(V_t) + 1e-3))`` and the fast one
``r_t = tanh(R_t / (sqrt(V_t) + 1e-3))``.

Drive field ``u`` (per group, in log-coordinates)
-------------------------------------------------
The step drive (how the step size should move)::

    q = k_align rho_t                      [use_alignment]
      + (1 - S_t) (k_trend p_t + k_reward r_t)   [use_trend]

Without the gauge law ``q`` drives ``log alpha`` directly; with it ``q`` drives the
gauge target ``log gamma*`` and alpha follows through the gauge term. The drives::

    u_lr       = q                                          (gauge off)
               = -k_gauge log(alpha ||D_g|| / gamma*_g)     (gauge on)
               + u_mom                                      [coupling, SGD]
    u_mom      = -k_momentum rho_t   on log(1 - beta), beta1   [use_alignment]
    u_beta2    = k_beta2 (S_t - 1/2) on log(1 - beta2)      [use_trend]
    u_eps      = -k_eps log(eps / (eps_ratio rms(sqrt(vhat))))   [use_gauge]
    u_wd       = -k_wd (z_lr + z_wd - z_lr0 - z_wd0)        [use_coupling]
    u_sigma    = k_sigma (p_target - p_t)                   [use_noise]
    log gamma* += eta q  (clipped to gamma*_0 * gauge_range)

``||D_g||`` is the norm of the update direction the optimizer is about to apply:
SGD ``||beta m + g|| = sqrt(beta^2 m.m + 2 beta g.m + g.g)`` (from the scalar
reductions, exact, before the step), Adam ``||mhat / (sqrt(vhat) + eps)||`` measured
after the previous step (``sqrt(#params)`` before the first: Adam's first update is a
sign vector), other optimizers ``||g||``.

Gauge law [use_gauge]: the effective step ``alpha ||D||`` (the length of the
parameter update) is driven toward ``gamma*``. ``gamma*_0`` is ``gauge_target`` or
``gauge_rel * sqrt(||w_g||^2 + n_g gauge_floor^2)``, a length in parameter units, so
rescaling the loss by ``c`` rescales ``||g||`` and alpha settles at ``1/c`` times its
value: the trajectory is unchanged (gauge invariance). The coefficient written to
the optimizer is also capped, ``alpha_applied = min(alpha, trust gamma* / ||D||)`` (the
gauge ceiling: an instantaneous cap that can only shorten a step; the state ``alpha``
is unchanged by it).

Coupling law [use_coupling]: SGD's effective learning rate is ``alpha / (1 - beta)``;
when the momentum drive moves ``log(1 - beta)`` the same amount is added to
``log alpha`` so the effective rate holds still. AdamW's decoupled decay per step is
``alpha wd``; ``u_wd`` pulls that product back to its initial value. Adam's
``beta1 <= sqrt(beta2)`` (the stable region) is enforced after each update by
projecting ``1 - beta1 >= 1 - sqrt(beta2)``.

Update (multiplicative in the coefficient, additive in ``z``)::

    Delta = eta u + sigma xi,     xi ~ N(0, I), noise only on non-sigma entries  [use_noise]
    Delta += resonance clamp (below)
    Delta <- Delta / (1 + lambda)                     (budget law)
    Delta <- Delta min(1, B_step / ||Delta||_2)       (per group, budget law)
    z     <- clip(z + Delta, log lo, log hi)          (projection onto bounds)

Noise law [use_noise]: ``sigma`` is itself a coefficient; ``u_sigma`` makes it grow
while progress ``p_t`` is below ``p_target`` (a stall) and shrink while it is above.

Resonance clamp [use_resonance]: oscillation is declared when the alignment EMA
``rho_t < resonance_align`` or the loss jumps, ``d_t > spike``, or the loss or a
gradient is non-finite. Then (at most once per ``cooldown`` steps, except for
non-finite steps)::

    Delta[lr]  += log(clamp_lr)           Delta[1 - beta] += -log(clamp_momentum)
    log gamma* += log(clamp_lr)

i.e. the step size shrinks and the momentum falls (``1 - beta`` grows).

Budget law with its dual variable [use_budget]: each step's total log-change per
group is at most ``B_step`` (``||Delta||_2 <= budget_step``, so the projection onto
bounds, which only shortens moves from a point inside the bounds, keeps it). The
long-run mean spend is held at ``budget_mean`` by dual ascent on the multiplier::

    lambda <- clip(lambda + dual_rate (spend_t - budget_mean) / budget_mean, 0, dual_max)

where ``spend_t`` is the mean over groups of ``||Delta_g||_2``; ``lambda`` divides
the next proposal.

Lyapunov energy (logged, ``history["energy"]``)::

    E_t = Lbar_t / |Lbar_1| + (mu/2) mean_g ||z_g - z_g0||^2
          + (mu/2) mean_g log^2(alpha_g ||D_g|| / gamma*_g)   [gauge term only with use_gauge]

Signals are Python floats; the gradient statistics are a handful of reductions
per group gathered in one device->host transfer per step. No parameter copies.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import Tensor

__all__ = ["AEConfig", "AEController", "LAWS"]

LAWS = ("trend", "alignment", "noise", "resonance", "budget", "coupling", "gauge")
"""The switchable laws: ``AEConfig(use_<law>=False)`` turns one off."""

_LOG1M = {"momentum", "beta1", "beta2"}  # coordinates z = log(1 - value)


@dataclass(frozen=True)
class AEConfig:
    """Gains, filters, bounds and law switches of an :class:`AEController`."""

    use_trend: bool = True
    """Trend/reward drive of the step size and the beta2 drive from uncertainty."""
    use_alignment: bool = True
    """Gradient-alignment (hypergradient) drive of the step size and the momentum."""
    use_noise: bool = True
    """Exploration noise in log space with the sigma law (off: no noise, sigma fixed)."""
    use_resonance: bool = True
    """Resonance clamp on oscillation, loss spikes and non-finite steps."""
    use_budget: bool = True
    """Per-step log-change budget and its dual variable."""
    use_coupling: bool = True
    """alpha/(1-beta) held under momentum moves; alpha*wd pulled back; beta1 <= sqrt(beta2)."""
    use_gauge: bool = True
    """Effective step alpha*||D|| driven toward gamma*, the gauge ceiling and the eps gauge."""

    eta: float = 1.0
    """Global gain on the drive field."""
    k_align: float = 0.04
    """Step drive per unit of alignment rho."""
    k_trend: float = 0.02
    """Step drive per unit of slow progress p."""
    k_reward: float = 0.02
    """Step drive per unit of fast progress r."""
    k_momentum: float = 0.02
    """Drive of log(1 - beta) per unit of alignment (aligned: more momentum)."""
    k_beta2: float = 0.01
    """Drive of log(1 - beta2) per unit of (S - 1/2) (noisy: longer second-moment memory)."""
    k_eps: float = 0.02
    """Drive of log eps toward eps_ratio * rms(sqrt(vhat)) (Adam, gauge law)."""
    k_wd: float = 0.01
    """Pull of log(alpha * wd) back to its initial value (coupling law)."""
    k_gauge: float = 0.3
    """Gain of the gauge law: fraction of log(alpha ||D|| / gamma*) removed per step."""
    k_sigma: float = 0.05
    """Drive of log sigma per unit of (p_target - p)."""

    fast: float = 0.1
    """EMA rate of the fast filters (loss level, reward, alignment)."""
    slow: float = 0.02
    """EMA rate of the slow filters (trend, variance)."""

    sigma0: float = 0.005
    """Initial exploration noise (std of the log-space noise per step)."""
    sigma_bounds: tuple[float, float] = (1e-4, 0.05)
    """Bounds of sigma."""
    p_target: float = 0.2
    """Progress index below which sigma grows (a stall) and above which it shrinks."""

    resonance_align: float = -0.3
    """Alignment EMA below which the resonance clamp fires."""
    spike: float = 0.5
    """Relative loss jump d_t above which the resonance clamp fires."""
    resonance_progress: float = -0.5
    """Progress index p_t below which the clamp fires (the loss keeps growing)."""
    clamp_lr: float = 0.5
    """Step-size factor of one clamp."""
    clamp_momentum: float = 0.7
    """Factor on beta's distance to 1 is divided by this (1 - beta grows) on a clamp."""
    cooldown: int = 5
    """Fewest steps between two clamps (non-finite steps always clamp)."""

    budget_step: float = 0.5
    """Largest L2 norm of one step's log-change per param group (nats)."""
    budget_mean: float = 0.05
    """Long-run mean log-change per step the dual variable holds."""
    dual_rate: float = 0.05
    """Dual-ascent rate of the budget multiplier lambda."""
    dual_max: float = 100.0
    """Largest lambda."""

    gauge_target: float | None = None
    """gamma*_0 in parameter units (None: gauge_rel * ||w_g|| with a floor)."""
    gauge_rel: float = 0.01
    """gamma*_0 relative to the group's weight norm when gauge_target is None."""
    gauge_floor: float = 0.1
    """Per-parameter floor of the weight scale in gamma*_0 (zero-initialised groups)."""
    gauge_range: tuple[float, float] = (1e-4, 1e2)
    """gamma* stays within gamma*_0 times this range."""
    trust: float = 10.0
    """Gauge ceiling: the applied step is at most trust * gamma*."""
    eps_ratio: float = 1e-6
    """Adam's eps target relative to rms(sqrt(vhat)) (eps gauge)."""

    lr_range: tuple[float, float] = (1e-6, 1e3)
    """Bounds of the learning rate relative to its initial value."""
    momentum_bounds: tuple[float, float] = (0.0, 0.999)
    """Bounds of SGD's momentum and Adam's beta1."""
    beta2_bounds: tuple[float, float] = (0.9, 0.9999)
    """Bounds of Adam's beta2."""
    eps_bounds: tuple[float, float] = (1e-12, 1e-3)
    """Bounds of Adam's eps."""
    wd_range: tuple[float, float] = (1e-2, 1e2)
    """Bounds of the weight decay relative to its initial value."""

    energy_mu: float = 0.01
    """Weight of the coefficient and gauge terms of the Lyapunov energy."""
    history: bool = True
    """Keep per-step trajectories in ``history``."""
    seed: int = 0
    """Seed of the controller's own noise generator."""

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name.startswith("use_") or f.name == "history":
                if not isinstance(v, bool):
                    raise ValueError(f"{f.name} must be True or False, got {v!r}")
            elif isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"{f.name} must be finite, got {v!r}")
        positive = ("eta", "fast", "slow", "sigma0", "clamp_lr", "clamp_momentum")
        positive += ("budget_step", "budget_mean", "gauge_rel", "trust", "eps_ratio")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("fast", "slow", "clamp_lr", "clamp_momentum"):
            if not getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)!r}")
        for name in ("sigma_bounds", "gauge_range", "lr_range", "eps_bounds", "wd_range"):
            lo, hi = getattr(self, name)
            if not 0 < lo < hi:
                raise ValueError(f"{name} must be (lo, hi) with 0 < lo < hi, got {(lo, hi)!r}")
        for name in ("momentum_bounds", "beta2_bounds"):
            lo, hi = getattr(self, name)
            if not 0 <= lo < hi < 1:
                raise ValueError(f"{name} must be (lo, hi) with 0 <= lo < hi < 1, got {(lo, hi)}")
        if self.gauge_target is not None and not self.gauge_target > 0:
            raise ValueError(f"gauge_target must be > 0 or None, got {self.gauge_target!r}")
        if not (isinstance(self.cooldown, int) and self.cooldown >= 0):
            raise ValueError(f"cooldown must be an integer >= 0, got {self.cooldown!r}")
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")

    def without(self, *laws: str) -> AEConfig:
        """This config with the named laws switched off (``without("gauge", "noise")``)."""
        unknown = [law for law in laws if law not in LAWS]
        if unknown:
            raise ValueError(f"unknown law(s) {unknown}; the laws are {LAWS}")
        return AEConfig(**{**asdict(self), **{f"use_{law}": False for law in laws}})


def _family(optimizer: torch.optim.Optimizer) -> str:
    if isinstance(optimizer, torch.optim.SGD):
        return "sgd"
    if isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)):
        return "adam"
    return "generic"


class AEController:
    """Evolves the coefficients of ``optimizer``'s param groups each step (module doc).

    Args:
        optimizer: Any ``torch.optim.Optimizer``; SGD (with momentum) and Adam/AdamW
            get the full coefficient sets, others only ``lr``.
        config: Gains, bounds and law switches.

    Attributes:
        names: Managed coefficient names (the columns of :attr:`z`).
        z: ``G x K`` log-coordinates (lists of floats; see the module doc).
        history: Per-step lists (``step``, ``loss``, each coefficient of group 0,
            ``applied_lr``, ``T``, ``V``, ``R``, ``rho``, ``S``, ``gamma``,
            ``effective_step``, ``grad_norm``, ``lambda``, ``spend``, ``max_spend``,
            ``energy``, ``clamped``, ``skipped``), when ``config.history``.
        skipped_steps: Steps whose loss or gradient was non-finite (no optimizer step).
        clamps: Resonance clamps applied.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, config: AEConfig | None = None) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"AEController wraps a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        if config is not None and not isinstance(config, AEConfig):
            raise TypeError(f"config must be an AEConfig, got {type(config).__name__}")
        self.optimizer = optimizer
        self.config = cfg = config if config is not None else AEConfig()
        self.family = _family(optimizer)
        groups = optimizer.param_groups
        names = ["lr"]
        if self.family == "sgd" and all(g.get("momentum", 0) > 0 for g in groups):
            names.append("momentum")
        if self.family == "adam":
            names += ["beta1", "beta2", "eps"]
            if all(g.get("weight_decay", 0) > 0 for g in groups):
                names.append("weight_decay")
        names.append("sigma")
        self.names: list[str] = names
        self._col = {n: i for i, n in enumerate(names)}
        self.z: list[list[float]] = []
        self.z_lo: list[list[float]] = []
        self.z_hi: list[list[float]] = []
        for gi, group in enumerate(groups):
            row, lo, hi = [], [], []
            for n in names:
                v = 1.0 if n == "sigma" else self._read(group, n)
                if not (math.isfinite(v) and (v > 0 or n == "momentum")):
                    raise ValueError(f"param group {gi}: {n} = {v!r}; AE needs a finite value > 0")
                a, b = self._z_bounds(n, v)
                row.append(min(max(self._to_z(n, v), a), b))
                lo.append(a)
                hi.append(b)
            self.z.append(row)
            self.z_lo.append(lo)
            self.z_hi.append(hi)
        self.z0 = [list(r) for r in self.z]
        self.rng = random.Random(cfg.seed)
        G = len(groups)
        self.log_gamma = [math.nan] * G  # set on the first step (needs ||w||)
        self.log_gamma0 = [math.nan] * G
        self.dir_norm = [math.nan] * G  # Adam: ||mhat/(sqrt(vhat)+eps)|| after the last step
        self.v_rms = [math.nan] * G
        self.t = 0
        self.loss_prev = math.nan
        self.d_prev = math.nan
        self.Lbar = math.nan
        self.L0 = math.nan
        self.T = 0.0
        self.V = 0.0
        self.R = 0.0
        self.rho = 0.0
        self.lam = 0.0
        self.last_clamp = -(10**9)
        self.skipped_steps = 0
        self.clamps = 0
        self.history: dict[str, list[float]] = {}
        self._last: dict[str, float] = {}
        self._write([self.value("lr", gi) for gi in range(G)])

    # -- coordinates ---------------------------------------------------------------------------
    @staticmethod
    def _read(group: dict[str, Any], name: str) -> float:
        if name in ("beta1", "beta2"):
            return float(group["betas"][0 if name == "beta1" else 1])
        value = group[name]
        return float(value.item() if isinstance(value, Tensor) else value)

    def _to_z(self, name: str, value: float) -> float:
        if name == "sigma":
            return math.log(self.config.sigma0)
        if name in _LOG1M:
            return math.log(max(1.0 - value, 1e-12))
        return math.log(value)

    def _z_bounds(self, name: str, value: float) -> tuple[float, float]:
        c = self.config
        if name == "lr":
            return math.log(value * c.lr_range[0]), math.log(value * c.lr_range[1])
        if name == "weight_decay":
            return math.log(value * c.wd_range[0]), math.log(value * c.wd_range[1])
        if name == "eps":
            return math.log(c.eps_bounds[0]), math.log(c.eps_bounds[1])
        if name == "sigma":
            return math.log(c.sigma_bounds[0]), math.log(c.sigma_bounds[1])
        lo, hi = c.beta2_bounds if name == "beta2" else c.momentum_bounds
        return math.log(1.0 - hi), math.log(1.0 - lo)  # z = log(1 - beta): reversed

    @staticmethod
    def _from_z(name: str, z: float) -> float:
        return 1.0 - math.exp(z) if name in _LOG1M else math.exp(z)

    def value(self, name: str, group: int = 0) -> float:
        """The current (state) value of coefficient ``name`` in param group ``group``."""
        return self._from_z(name, self.z[group][self._col[name]])

    def coefficients(self) -> list[dict[str, float]]:
        """Current coefficients of every param group (state values, before the ceiling)."""
        return [{n: self.value(n, g) for n in self.names} for g in range(len(self.z))]

    def _write(self, applied_lr: list[float]) -> None:
        """Write the coefficients into the optimizer's param groups."""
        for gi, group in enumerate(self.optimizer.param_groups):
            for k, n in enumerate(self.names):
                if n == "sigma":
                    continue
                v = applied_lr[gi] if n == "lr" else self._from_z(n, self.z[gi][k])
                if n == "beta1":
                    group["betas"] = (v, group["betas"][1])
                elif n == "beta2":
                    group["betas"] = (group["betas"][0], v)
                elif isinstance(group[n], Tensor):
                    group[n].fill_(v)
                else:
                    group[n] = v

    # -- measurements --------------------------------------------------------------------------
    def _group_stats(self) -> list[list[float]]:
        """Per group ``[g.g, g.m, m.m, w.w, n, has_buffer]``, one host transfer in all.

        Foreach norms only (no per-parameter Python arithmetic): ``g.m`` comes from
        ``(||g + m||^2 - ||g||^2 - ||m||^2) / 2``; the sum ``g + m`` is a transient.
        """
        key = "momentum_buffer" if self.family == "sgd" else "exp_avg"
        parts: list[Tensor] = []
        meta: list[tuple[int, bool]] = []
        for group in self.optimizer.param_groups:
            ps = [p for p in group["params"] if p.grad is not None]
            if not ps:
                meta.append((0, False))
                continue
            grads = [p.grad for p in ps]
            bufs = []
            if self.family in ("sgd", "adam"):
                for p in ps:
                    st = self.optimizer.state.get(p)
                    b = st.get(key) if st else None
                    if not isinstance(b, Tensor):
                        bufs = []
                        break
                    bufs.append(b)
            norms = [torch._foreach_norm(grads), torch._foreach_norm(ps)]
            if bufs:
                norms.append(torch._foreach_norm(bufs))
                norms.append(torch._foreach_norm(torch._foreach_add(grads, bufs)))
            flat = torch.stack([t for x in norms for t in x]).view(len(norms), -1)
            parts.append(flat.double().square().sum(1).cpu())
            meta.append((sum(g.numel() for g in grads), bool(bufs)))
        values = torch.cat(parts).tolist() if parts else []
        rows, i = [], 0
        for n, has_buf in meta:
            if n == 0:
                rows.append([0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
                continue
            gg, ww = values[i], values[i + 1]
            i += 2
            gm = mm = 0.0
            if has_buf:
                mm, ss = values[i], values[i + 1]
                i += 2
                gm = 0.5 * (ss - gg - mm)
            rows.append([gg, gm, mm, ww, float(n), float(has_buf)])
        return rows

    @torch.no_grad()
    def _measure_adam(self) -> None:
        """``||mhat/(sqrt(vhat)+eps)||`` and rms(sqrt(vhat)) per group after an Adam step."""
        parts: list[Tensor] = []
        counts: list[int] = []
        for group in self.optimizer.param_groups:
            b1, b2 = group["betas"]
            eps = float(group["eps"])
            sts = [self.optimizer.state.get(p) for p in group["params"]]
            sts = [s for s in sts if s and "exp_avg" in s]
            if not sts:
                counts.append(0)
                continue
            step = sts[0]["step"]
            step = float(step.item() if isinstance(step, Tensor) else step)
            bc1, bc2 = 1.0 - b1**step, 1.0 - b2**step
            m = [s["exp_avg"] for s in sts]
            v = [s["exp_avg_sq"] for s in sts]
            denom = torch._foreach_sqrt(v)
            torch._foreach_div_(denom, math.sqrt(bc2))
            torch._foreach_add_(denom, eps)
            d = torch._foreach_div(m, denom)
            dn = torch.stack(torch._foreach_norm(d)).double().square().sum() / (bc1 * bc1)
            vs = torch.stack([x.sum() for x in v]).double().sum() / bc2
            parts.append(torch.stack([dn, vs]).cpu())
            counts.append(sum(x.numel() for x in v))
        values = torch.cat(parts).tolist() if parts else []
        i = 0
        for gi, n in enumerate(counts):
            if n == 0:
                continue
            dd, vs = values[i], values[i + 1]
            i += 2
            self.dir_norm[gi] = math.sqrt(dd) if math.isfinite(dd) else math.nan
            self.v_rms[gi] = math.sqrt(max(vs, 0.0) / n) if math.isfinite(vs) else math.nan

    # -- the step ------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, loss: Tensor | float) -> bool:
        """Evolve the coefficients from ``loss`` and the current grads, then step.

        Args:
            loss: The loss whose ``backward()`` produced the current gradients (a
                scalar tensor or a float).

        Returns:
            True when ``optimizer.step()`` ran, False when the step was skipped
            (non-finite loss or gradient).
        """
        c = self.config
        L = float(loss.detach() if isinstance(loss, Tensor) else loss)
        stats = self._group_stats()
        self.t += 1
        G, K = len(self.z), len(self.names)
        col = self._col
        finite = math.isfinite(L) and all(math.isfinite(v) for row in stats for v in row[:4])

        if math.isnan(self.log_gamma[0]):  # first step: gauge targets from the weight norms
            for gi, row in enumerate(stats):
                ww = row[3] if math.isfinite(row[3]) else 0.0
                g0 = c.gauge_target or c.gauge_rel * math.sqrt(
                    ww + max(row[4], 1) * c.gauge_floor**2
                )
                self.log_gamma[gi] = self.log_gamma0[gi] = math.log(g0)

        # measurement filters
        d = 0.0
        if finite:
            if math.isnan(self.Lbar):
                self.Lbar = self.L0 = L
            else:
                d = min(max((L - self.loss_prev) / (abs(self.Lbar) + 1e-12), -1.0), 4.0)
                self.Lbar += c.fast * (L - self.Lbar)
            self.T += c.slow * (d - self.T)
            self.V += c.slow * ((d - self.T) ** 2 - self.V)
            self.R += c.fast * (-d - self.R)
            gg = sum(r[0] for r in stats)
            gm = sum(r[1] for r in stats)
            mm = sum(r[2] for r in stats)
            scale = math.sqrt(gg) * math.sqrt(mm)
            if all(r[5] > 0 for r in stats) and scale > 0:
                cos = max(-1.0, min(1.0, gm / scale))
            elif not math.isnan(self.d_prev) and (d * d + self.d_prev**2) > 0:
                cos = 2 * d * self.d_prev / (d * d + self.d_prev**2)
            else:
                cos = 0.0
            self.rho += c.fast * (cos - self.rho)
            self.loss_prev = L
            self.d_prev = d
        sv = math.sqrt(max(self.V, 0.0))
        S = sv / (abs(self.T) + sv) if (sv > 0 or self.T != 0) else 1.0
        p = math.tanh(-self.T / (sv + 1e-3))
        r = math.tanh(self.R / (sv + 1e-3))

        # norms ||D_g|| of the coming update's direction
        mom = col.get("momentum", col.get("beta1"))
        dnorm = []
        for gi, row in enumerate(stats):
            if not finite:
                dnorm.append(math.nan)
            elif self.family == "sgd" and mom is not None and row[5] > 0:
                b = self.value("momentum", gi)
                dnorm.append(math.sqrt(max(b * b * row[2] + 2 * b * row[1] + row[0], 0.0)))
            elif self.family == "adam":
                dn = self.dir_norm[gi]
                dnorm.append(dn if math.isfinite(dn) else math.sqrt(max(row[4], 1.0)))
            else:
                dnorm.append(math.sqrt(max(row[0], 0.0)))

        # drive field -> proposed change
        q = 0.0
        if c.use_alignment:
            q += c.k_align * self.rho
        if c.use_trend:
            q += (1.0 - S) * (c.k_trend * p + c.k_reward * r)
        kl, ks = col["lr"], col["sigma"]
        delta = [[0.0] * K for _ in range(G)]
        for gi in range(G):
            u = [0.0] * K
            z = self.z[gi]
            if finite:
                if c.use_gauge:
                    lg0 = self.log_gamma0[gi]
                    lg = self.log_gamma[gi] + c.eta * q
                    lg = min(
                        max(lg, lg0 + math.log(c.gauge_range[0])), lg0 + math.log(c.gauge_range[1])
                    )
                    self.log_gamma[gi] = lg
                    if dnorm[gi] > 0:
                        u[kl] = -c.k_gauge * (z[kl] + math.log(dnorm[gi]) - lg) / c.eta
                else:
                    u[kl] = q
                if mom is not None and c.use_alignment:
                    u[mom] = -c.k_momentum * (min(self.rho, p) if c.use_trend else self.rho)
                    if c.use_coupling and self.family == "sgd":
                        u[kl] += u[mom]
                if "beta2" in col and c.use_trend:
                    u[col["beta2"]] = c.k_beta2 * (S - 0.5)
                if "eps" in col and c.use_gauge and math.isfinite(self.v_rms[gi]):
                    target = math.log(c.eps_ratio * max(math.sqrt(self.v_rms[gi]), 1e-30))
                    u[col["eps"]] = -c.k_eps * (z[col["eps"]] - target)
                if "weight_decay" in col and c.use_coupling:
                    kw = col["weight_decay"]
                    u[kw] = -c.k_wd * (z[kl] + z[kw] - self.z0[gi][kl] - self.z0[gi][kw])
            if c.use_noise:
                u[ks] = c.k_sigma * (c.p_target - p)
            row = [c.eta * x for x in u]
            if c.use_noise and finite:
                sigma = math.exp(z[ks])
                for k in range(K):
                    if k != ks:
                        row[k] += sigma * self.rng.gauss(0.0, 1.0)
            delta[gi] = row

        # resonance clamp
        clamped = False
        if c.use_resonance:
            oscillating = finite and (
                self.rho < c.resonance_align or d > c.spike or p < c.resonance_progress
            )
            if (not finite) or (oscillating and self.t - self.last_clamp >= c.cooldown):
                clamped = True
                self.last_clamp = self.t
                self.clamps += 1
                for gi in range(G):
                    delta[gi][kl] += math.log(c.clamp_lr)
                    if mom is not None:
                        delta[gi][mom] -= math.log(c.clamp_momentum)
                    if not math.isnan(self.log_gamma[gi]):
                        floor = self.log_gamma0[gi] + math.log(c.gauge_range[0])
                        self.log_gamma[gi] = max(self.log_gamma[gi] + math.log(c.clamp_lr), floor)

        # budget law, projection onto the bounds, coupling projection
        spends = []
        for gi in range(G):
            row = delta[gi]
            if c.use_budget:
                shrink = 1.0 / (1.0 + self.lam)
                norm = math.sqrt(sum(x * x for x in row)) * shrink
                if norm > c.budget_step:
                    shrink *= c.budget_step / norm
                row = [x * shrink for x in row]
            old = self.z[gi]
            lo, hi = self.z_lo[gi], self.z_hi[gi]
            new = [min(max(o + x, a), b) for o, x, a, b in zip(old, row, lo, hi, strict=True)]
            if c.use_coupling and "beta1" in col:  # beta1 <= sqrt(beta2)
                k1 = col["beta1"]
                b2 = 1.0 - math.exp(new[col["beta2"]])
                floor = math.log(max(1.0 - math.sqrt(b2), 1e-12))
                new[k1] = min(
                    max(new[k1], floor, old[k1] if old[k1] >= floor else -math.inf), hi[k1]
                )
            spends.append(math.sqrt(sum((a - b) ** 2 for a, b in zip(new, old, strict=True))))
            self.z[gi] = new
        spend = sum(spends) / G
        if c.use_budget:
            step = c.dual_rate * (spend - c.budget_mean) / c.budget_mean
            self.lam = min(max(self.lam + step, 0.0), c.dual_max)

        # write (gauge ceiling on the applied learning rate), step, measure
        applied = [self.value("lr", gi) for gi in range(G)]
        if c.use_gauge:
            for gi in range(G):
                if math.isfinite(dnorm[gi]) and dnorm[gi] > 0:
                    cap = c.trust * math.exp(self.log_gamma[gi]) / dnorm[gi]
                    applied[gi] = min(applied[gi], cap)
        self._write(applied)
        if finite:
            self.optimizer.step()
            if self.family == "adam":
                self._measure_adam()
        else:
            self.skipped_steps += 1

        # Lyapunov energy and the log
        energy = 0.0 if math.isnan(self.Lbar) else self.Lbar / (abs(self.L0) + 1e-12)
        dev = [
            sum((a - b) ** 2 for a, b in zip(z, z0, strict=True))
            for z, z0 in zip(self.z, self.z0, strict=True)
        ]
        energy += 0.5 * c.energy_mu * sum(dev) / G
        eff = [a * dn for a, dn in zip(applied, dnorm, strict=True)]
        if c.use_gauge:
            errs = [
                (math.log(e) - lg) ** 2
                for e, lg in zip(eff, self.log_gamma, strict=True)
                if math.isfinite(e) and e > 0
            ]
            if errs:
                energy += 0.5 * c.energy_mu * sum(errs) / len(errs)
        rec = {"step": float(self.t), "loss": L}
        for n in self.names:
            rec[n] = self.value(n, 0)
        rec.update(
            applied_lr=applied[0],
            T=self.T,
            V=self.V,
            R=self.R,
            rho=self.rho,
            S=S,
            gamma=math.exp(self.log_gamma[0]),
            effective_step=eff[0],
            grad_norm=math.sqrt(stats[0][0]) if math.isfinite(stats[0][0]) else math.nan,
            spend=spend,
            max_spend=max(spends),
            energy=energy,
            clamped=float(clamped),
            skipped=float(not finite),
        )
        rec["lambda"] = self.lam
        self._last = rec
        if c.history:
            for key, v in rec.items():
                self.history.setdefault(key, []).append(v)
        return finite

    def log(self) -> dict[str, float]:
        """The last step's coefficients (group 0) and signals, namespaced ``ae/...``."""
        return {f"ae/{k}": v for k, v in self._last.items() if k != "step"}

    # -- state ---------------------------------------------------------------------------------
    _SCALARS = (
        "t", "loss_prev", "d_prev", "Lbar", "L0", "T", "V", "R", "rho", "lam",
        "last_clamp", "skipped_steps", "clamps",
    )  # fmt: skip
    _LISTS = ("z", "z0", "z_lo", "z_hi", "log_gamma", "log_gamma0", "dir_norm", "v_rms")

    def state_dict(self) -> dict[str, Any]:
        """The controller's state (not the optimizer's: save both).

        Plain Python containers and numbers, loadable with ``torch.load(weights_only=True)``.
        """
        state: dict[str, Any] = {"names": list(self.names), "config": asdict(self.config)}
        for key in self._LISTS:
            value = getattr(self, key)
            state[key] = [list(r) for r in value] if isinstance(value[0], list) else list(value)
        state["scalars"] = {k: getattr(self, k) for k in self._SCALARS}
        state["rng"] = self.rng.getstate()
        state["history"] = {k: list(v) for k, v in self.history.items()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output and write the coefficients into the optimizer.

        Raises:
            ValueError: the state manages other coefficients or another number of groups.
        """
        if state["names"] != self.names or len(state["z"]) != len(self.z):
            raise ValueError(
                f"state manages {state['names']} over {len(state['z'])} group(s); this "
                f"controller manages {self.names} over {len(self.z)}: wrap the same kind of "
                "optimizer with the same param groups"
            )
        for key in self._LISTS:
            value = state[key]
            setattr(
                self, key, [list(r) for r in value] if isinstance(value[0], list) else list(value)
            )
        for key, v in state["scalars"].items():
            setattr(self, key, v)
        rng_state = state["rng"]
        self.rng.setstate((rng_state[0], tuple(rng_state[1]), rng_state[2]))
        self.history = {k: list(v) for k, v in state.get("history", {}).items()}
        applied = [self.value("lr", gi) for gi in range(len(self.z))]
        self._write(applied)
