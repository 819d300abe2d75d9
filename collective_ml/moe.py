"""Sparse mixture-of-experts layers: noisy top-k (Shazeer et al. 2017) and Switch (Fedus et al. 2021).

A router scores every token against ``E`` experts, keeps the best ``k``, and the
layer's output is the gate-weighted sum of those experts' feed-forward outputs.
The experts are one stacked set of weights (:class:`ExpertFFN`: ``w1 [E, d, h]``,
``w2 [E, h, d]``), so the forward pass has no Python loop over experts:

1. **route** (:meth:`TopKMoE.route`): logits ``x W_g`` (plus, in training, Shazeer's
   noise ``softplus(x W_noise) * N(0, 1)``), top-k, gates.
2. **plan**: the ``T * k`` assignments are sorted by expert (a stable sort, so
   within an expert they keep their priority order, see *Capacity*); each gets its
   position in its expert's queue; those past the capacity are dropped.
3. **dispatch**: one gather builds a padded buffer ``[E, C, d]`` (``C`` = the largest
   kept load, at most the capacity; padding rows read a zero row).
4. **compute**: two ``torch.baddbmm`` over the stacked weights, ``[E, C, d] ->
   [E, C, h] -> [E, C, d]``.
5. **combine**: the kept rows, times their gates, are scatter-added
   (``index_add``) back to their tokens.

:class:`LoopMoE` is the reference that research code writes -- for each expert, a
boolean mask of its tokens, ``x[tokens]``, that expert's FFN, ``index_add_`` back --
with the same routing and drop rule and, through :meth:`LoopMoE.from_moe`, a copy of
a layer's weights (its experts as separate modules, an ``nn.ModuleList`` as research
code keeps them), so values and gradients can be compared directly.

**Capacity.** Each expert takes at most ``capacity = ceil(capacity_factor * T * k /
E)`` assignments (``capacity_factor=None``: no limit). Priority is by choice rank,
then token index (GShard/Switch): every token's first choice is served before any
second choice, and among equal ranks the earlier token wins. The gates are
normalised before dropping, so a dropped assignment's share is lost, not handed to
the token's other experts. A token whose assignments are all dropped gets ``0`` from
the layer; with ``residual=True`` the layer returns ``x + moe(x)``, so such a token
passes through unchanged (the default, ``residual=False``, leaves adding the
residual to the caller, as a transformer block does).

**Losses** (set on the module by every forward, with gradients; ``moe.loss`` is
their weighted sum to add to the task loss):

- ``aux_loss`` -- load balance. ``balance_loss="switch"`` (default):
  ``E * sum_i f_i * P_i`` with ``f_i`` the share of the ``T * k`` assignments routed
  to expert ``i`` (before capacity; no gradient) and ``P_i`` the mean router
  probability of ``i``. It equals 1 at uniform routing, its minimum, and grows as
  routing concentrates. ``balance_loss="importance"``: Shazeer's ``CV(importance)^2``
  with ``importance_i`` the sum over tokens of the gate of ``i``; 0 when balanced.
- ``z_loss`` -- router z-loss (ST-MoE / Switch): ``mean_t logsumexp(logits_t)^2`` of
  the noise-free logits, keeping them small.

``stats`` (:class:`MoEStats`, detached) gives the load per expert, the share
dropped and the router entropy of the latest forward.

**Speed.** On a GPU the loop reference pays per expert a mask, a ``nonzero`` (a
host sync), a gather, a handful of small kernel launches and a scatter, so at 64
experts a grouped dispatch removes most of a step's time. On a CPU there is little
to remove: both paths are bound by the same matrix-multiply FLOPs (MKL runs the
loop's ``[~256, 512] x [512, 2048]`` products near full speed; Python's per-expert
overhead is microseconds against a step's seconds), so the grouped path runs at
about the loop's speed -- a little slower where uneven loads make it pad (the buffer
is as deep as the *largest* load: ~13-17% padded rows at 64 experts, 8192 tokens).
``colony bench moe`` measured 0.86-1.16x the loop and 0.67-0.95x a dense FFN of the
same active size on 2 CPU cores (fp32, d 512, h 2048). A loop that indexes the
*stacked* weights (``w1[e]``) is a different story: autograd then materialises a
full ``[E, d, h]`` zero gradient per expert, which made such a loop 7.6-9.4x slower
than the grouped path at 64 experts on the same machine; the reference here keeps
its experts as separate modules (as research code does), so it is not handicapped so.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Activation = Callable[[Tensor], Tensor]

ACTIVATIONS: dict[str, Activation] = {
    "gelu": F.gelu,
    "relu": F.relu,
    "silu": F.silu,
    "tanh": torch.tanh,
}
BALANCE_LOSSES = ("switch", "importance")


def _activation(activation: str | Activation) -> Activation:
    if callable(activation):
        return activation
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {', '.join(ACTIVATIONS)} or a callable, got {activation!r}"
        )
    return ACTIVATIONS[activation]


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def _check_capacity_factor(capacity_factor: float | None) -> None:
    if capacity_factor is None:
        return
    if (
        isinstance(capacity_factor, bool)
        or not isinstance(capacity_factor, (int, float))
        or not math.isfinite(capacity_factor)
        or capacity_factor <= 0
    ):
        raise ValueError(
            f"capacity_factor must be a finite number > 0, or None for no token dropping; "
            f"got {capacity_factor!r}"
        )


def expert_capacity(
    tokens: int, k: int, num_experts: int, capacity_factor: float | None
) -> int | None:
    """Assignments each expert takes: ``ceil(capacity_factor * tokens * k / num_experts)``.

    ``None`` when ``capacity_factor`` is ``None`` (no limit).
    """
    _check_capacity_factor(capacity_factor)
    if capacity_factor is None:
        return None
    return math.ceil(capacity_factor * tokens * k / num_experts)


class DispatchPlan(NamedTuple):
    """Where every assignment goes; assignments are flattened rank-major,
    ``a = rank * T + token``, ``A = T * k``."""

    order: Tensor
    """``[A]`` int64: assignment ids sorted by expert (stable: priority order within)."""
    sorted_expert: Tensor
    """``[A]`` int64: the expert of each sorted assignment (non-decreasing)."""
    position: Tensor
    """``[A]`` int64: each sorted assignment's place in its expert's queue."""
    counts: Tensor
    """``[E]`` int64: assignments routed to each expert, before capacity."""


def plan_dispatch(expert_index: Tensor, num_experts: int) -> DispatchPlan:
    """Group the assignments of ``expert_index`` (``[T, k]`` int64) by expert, no loop.

    Within an expert the order is rank, then token (the capacity priority).
    """
    t, k = expert_index.shape
    flat = expert_index.t().reshape(-1)  # [A], rank-major
    sorted_expert, order = torch.sort(flat, stable=True)
    counts = torch.bincount(flat, minlength=num_experts)  # [E]
    starts = torch.cumsum(counts, 0) - counts  # [E]
    position = torch.arange(t * k, device=flat.device) - starts[sorted_expert]  # [A]
    return DispatchPlan(order, sorted_expert, position, counts)


def capacity_keep_mask(plan: DispatchPlan, capacity: int | None, tokens: int, k: int) -> Tensor:
    """``[T, k]`` bool: which assignments fit in their expert's capacity."""
    if capacity is None:
        return torch.ones(tokens, k, dtype=torch.bool, device=plan.order.device)
    keep_flat = torch.empty_like(plan.position, dtype=torch.bool)
    keep_flat[plan.order] = plan.position < capacity
    return keep_flat.view(k, tokens).t()


class Routing(NamedTuple):
    """The router's decision for ``T`` tokens (``x`` flattened to ``[T, d]``)."""

    expert_index: Tensor
    """``[T, k]`` int64: chosen experts, best first."""
    gates: Tensor
    """``[T, k]`` float: weight of each chosen expert (with gradient)."""
    keep: Tensor
    """``[T, k]`` bool: the assignment fits in its expert's capacity."""
    probs: Tensor
    """``[T, E]`` float: softmax of the routing logits (noisy in training)."""
    logits: Tensor
    """``[T, E]`` float: noise-free router logits."""
    plan: DispatchPlan
    capacity: int | None


class MoEStats(NamedTuple):
    """Expert utilisation of one forward (detached tensors; no host sync)."""

    tokens_per_expert: Tensor
    """``[E]`` int64: assignments routed to each expert (sums to ``T * k``)."""
    kept_per_expert: Tensor
    """``[E]`` int64: assignments each expert processed (at most the capacity)."""
    dropped_fraction: Tensor
    """Scalar: share of the ``T * k`` assignments dropped by the capacity."""
    tokens_dropped_fraction: Tensor
    """Scalar: share of tokens with every assignment dropped (they get 0 / pass through)."""
    router_entropy: Tensor
    """Scalar: mean entropy (nats) of the routing distribution; ``log E`` is uniform."""
    capacity: int | None
    """Assignments per expert allowed in that forward (``None``: no limit)."""


class ExpertFFN(nn.Module):
    """``E`` two-layer feed-forward experts as stacked weights.

    ``expert_e(x) = act(x w1[e] + b1[e]) w2[e] + b2[e]``. Weights are drawn like
    ``nn.Linear``'s (uniform, bound ``1/sqrt(fan_in)``); biases start at zero.
    """

    def __init__(
        self,
        d_model: int,
        d_hidden: int,
        num_experts: int,
        activation: str | Activation = "gelu",
    ) -> None:
        super().__init__()
        e, d, h = (
            _positive_int("num_experts", num_experts),
            _positive_int("d_model", d_model),
            _positive_int("d_hidden", d_hidden),
        )
        self.activation = _activation(activation)
        self.w1 = nn.Parameter(torch.empty(e, d, h).uniform_(-(d**-0.5), d**-0.5))  # [E, d, h]
        self.b1 = nn.Parameter(torch.zeros(e, h))  # [E, h]
        self.w2 = nn.Parameter(torch.empty(e, h, d).uniform_(-(h**-0.5), h**-0.5))  # [E, h, d]
        self.b2 = nn.Parameter(torch.zeros(e, d))  # [E, d]

    def forward(self, x: Tensor) -> Tensor:
        """All experts at once: ``x [E, C, d]`` (row block ``e`` goes to expert ``e``) -> ``[E, C, d]``."""
        hidden = self.activation(torch.baddbmm(self.b1.unsqueeze(1), x, self.w1))  # [E, C, h]
        return torch.baddbmm(self.b2.unsqueeze(1), hidden, self.w2)  # [E, C, d]


class _Expert(nn.Module):
    """One expert with its own parameters: ``act(x w1 + b1) w2 + b2``."""

    def __init__(self, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, activation: Activation):
        super().__init__()
        self.activation = activation
        self.w1, self.b1 = nn.Parameter(w1), nn.Parameter(b1)  # [d, h], [h]
        self.w2, self.b2 = nn.Parameter(w2), nn.Parameter(b2)  # [h, d], [d]

    def forward(self, x: Tensor) -> Tensor:
        """``x [n, d]`` -> ``[n, d]``."""
        hidden = self.activation(torch.addmm(self.b1, x, self.w1))  # [n, h]
        return torch.addmm(self.b2, hidden, self.w2)  # [n, d]


class ExpertList(nn.Module):
    """The experts of an :class:`ExpertFFN` kept apart, one parameter set each in an
    ``nn.ModuleList`` -- the way research code holds them; the loop reference's experts.

    (Indexing stacked weights ``w1[e]`` inside a loop would also work, but then autograd
    builds a full ``[E, d, h]`` zero gradient for every expert, which makes a loop look
    far slower than one over separate modules.)
    """

    NAMES = ("w1", "b1", "w2", "b2")

    def __init__(self, stacked: ExpertFFN) -> None:
        super().__init__()
        self.activation = stacked.activation
        views = [p.detach().unbind(0) for p in (stacked.w1, stacked.b1, stacked.w2, stacked.b2)]
        self.experts = nn.ModuleList(
            _Expert(*(v.clone() for v in params), activation=stacked.activation)
            for params in zip(*views, strict=True)
        )

    def __len__(self) -> int:
        return len(self.experts)

    def stacked(self) -> dict[str, Tensor]:
        """The weights stacked like :class:`ExpertFFN`'s (``w1 [E, d, h]`` ...), detached."""
        return {n: torch.stack([getattr(m, n).detach() for m in self.experts]) for n in self.NAMES}

    def stacked_grads(self) -> dict[str, Tensor]:
        """The gradients stacked like :class:`ExpertFFN`'s (zeros where an expert got none)."""
        return {
            n: torch.stack(
                [
                    torch.zeros_like(p) if p.grad is None else p.grad
                    for p in (getattr(m, n) for m in self.experts)
                ]
            )
            for n in self.NAMES
        }


class Router(nn.Module):
    """Linear router ``x W_g`` (``[d, E]``, no bias), with Shazeer's noise weights
    ``W_noise`` (zeros at start, noise std ``softplus(0) ~ 0.69``) when ``noisy``."""

    def __init__(self, d_model: int, num_experts: int, noisy: bool) -> None:
        super().__init__()
        bound = d_model**-0.5
        self.w_gate = nn.Parameter(torch.empty(d_model, num_experts).uniform_(-bound, bound))
        self.w_noise = nn.Parameter(torch.zeros(d_model, num_experts)) if noisy else None

    def forward(
        self, x: Tensor, add_noise: bool, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """``x [T, d]`` -> ``(clean, routing)`` logits, each ``[T, E]``; ``routing`` has
        the noise when ``add_noise`` and the router is noisy."""
        clean = x @ self.w_gate  # [T, E]
        if not add_noise or self.w_noise is None:
            return clean, clean
        std = F.softplus(x @ self.w_noise)  # [T, E]
        noise = torch.randn(clean.shape, generator=generator, device=x.device, dtype=clean.dtype)
        return clean, clean + noise * std


class TopKMoE(nn.Module):
    """Noisy top-k mixture of experts with capacity and load balancing (Shazeer et al. 2017).

    Args:
        d_model: Token width ``d``; input is ``[..., d]``.
        d_hidden: Hidden width ``h`` of each expert.
        num_experts: ``E``.
        k: Experts per token, ``1 <= k <= E``.
        capacity_factor: Capacity is ``ceil(capacity_factor * T * k / E)`` assignments
            per expert; ``None`` never drops.
        noisy_gating: Add ``softplus(x W_noise) * N(0, 1)`` to the logits in training mode.
        renormalize: Gates are the softmax over the ``k`` chosen logits (sum to 1) if
            True, else the full-softmax probabilities of the chosen experts. ``None``
            means ``k > 1`` (with ``k = 1`` a renormalised gate is always 1 and the
            router would get no gradient from the task).
        balance_loss: ``"switch"`` (``E * sum f_i P_i``, minimum 1) or ``"importance"``
            (Shazeer's ``CV^2``, minimum 0) for ``aux_loss``.
        aux_loss_weight: Weight of ``aux_loss`` in :attr:`loss`.
        z_loss_weight: Weight of the router ``z_loss`` in :attr:`loss`.
        activation: ``"gelu"``, ``"relu"``, ``"silu"``, ``"tanh"`` or a callable.
        residual: Return ``x + moe(x)`` instead of ``moe(x)``.

    After each forward: ``aux_loss``, ``z_loss`` (scalar tensors with gradient),
    ``loss`` (their weighted sum), ``stats`` (:class:`MoEStats`), ``routing``
    (:class:`Routing`).
    """

    def __init__(
        self,
        d_model: int,
        d_hidden: int,
        num_experts: int,
        k: int = 2,
        *,
        capacity_factor: float | None = 1.25,
        noisy_gating: bool = True,
        renormalize: bool | None = None,
        balance_loss: str = "switch",
        aux_loss_weight: float = 1e-2,
        z_loss_weight: float = 0.0,
        activation: str | Activation = "gelu",
        residual: bool = False,
    ) -> None:
        super().__init__()
        self.d_model = _positive_int("d_model", d_model)
        self.d_hidden = _positive_int("d_hidden", d_hidden)
        self.num_experts = _positive_int("num_experts", num_experts)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= num_experts:
            raise ValueError(
                f"k must be an integer with 1 <= k <= num_experts ({num_experts}), got {k!r}"
            )
        _check_capacity_factor(capacity_factor)
        if balance_loss not in BALANCE_LOSSES:
            raise ValueError(
                f"balance_loss must be one of {', '.join(BALANCE_LOSSES)}, got {balance_loss!r}"
            )
        for name, value in (("aux_loss_weight", aux_loss_weight), ("z_loss_weight", z_loss_weight)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        self.k = k
        self.capacity_factor = capacity_factor
        self.renormalize = k > 1 if renormalize is None else bool(renormalize)
        self.balance_loss = balance_loss
        self.aux_loss_weight = float(aux_loss_weight)
        self.z_loss_weight = float(z_loss_weight)
        self.residual = bool(residual)
        self.router = Router(d_model, num_experts, noisy_gating)
        self.experts = ExpertFFN(d_model, d_hidden, num_experts, activation)
        self.aux_loss: Tensor | None = None
        self.z_loss: Tensor | None = None
        self.stats: MoEStats | None = None
        self.routing: Routing | None = None

    @property
    def noisy_gating(self) -> bool:
        return self.router.w_noise is not None

    @property
    def loss(self) -> Tensor:
        """``aux_loss_weight * aux_loss + z_loss_weight * z_loss`` of the latest forward."""
        if self.aux_loss is None or self.z_loss is None:
            raise RuntimeError("no forward pass yet: call the layer before reading .loss")
        return self.aux_loss_weight * self.aux_loss + self.z_loss_weight * self.z_loss

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, d_hidden={self.d_hidden}, num_experts={self.num_experts}, "
            f"k={self.k}, capacity_factor={self.capacity_factor}, noisy={self.noisy_gating}, "
            f"renormalize={self.renormalize}, balance_loss={self.balance_loss!r}, "
            f"residual={self.residual}"
        )

    # -- routing -----------------------------------------------------------------------------
    def route(self, x: Tensor, generator: torch.Generator | None = None) -> Routing:
        """Choose experts and gates for ``x [T, d]``; noise only in training mode."""
        t = x.shape[0]
        router_dtype = torch.promote_types(x.dtype, torch.float32)  # bf16 tokens: fp32 router
        xr = x.to(router_dtype)
        clean, noisy = self.router(xr, add_noise=self.training, generator=generator)
        probs = torch.softmax(noisy, dim=-1)  # [T, E]
        top_logits, expert_index = torch.topk(noisy, self.k, dim=-1)  # [T, k]
        if self.renormalize:
            gates = torch.softmax(top_logits, dim=-1)  # == top-k probs / their sum
        else:
            gates = probs.gather(1, expert_index)
        plan = plan_dispatch(expert_index, self.num_experts)
        capacity = expert_capacity(t, self.k, self.num_experts, self.capacity_factor)
        keep = capacity_keep_mask(plan, capacity, t, self.k)
        return Routing(expert_index, gates, keep, probs, clean, plan, capacity)

    def _losses_and_stats(self, routing: Routing) -> tuple[Tensor, Tensor, MoEStats]:
        t, e, k = routing.probs.shape[0], self.num_experts, self.k
        counts = routing.plan.counts
        if self.balance_loss == "switch":
            f = counts.to(routing.probs.dtype) / (t * k)  # [E], no gradient
            aux = e * (f * routing.probs.mean(0)).sum()
        else:
            importance = torch.zeros_like(routing.probs).scatter(
                1, routing.expert_index, routing.gates
            )  # [T, E]
            importance = importance.sum(0)  # [E]
            aux = importance.var(unbiased=False) / importance.mean().square().clamp_min(1e-12)
        z = torch.logsumexp(routing.logits, dim=-1).square().mean()
        with torch.no_grad():
            kept = torch.zeros(e, dtype=torch.long, device=counts.device).index_add_(
                0,
                routing.expert_index.reshape(-1),
                routing.keep.reshape(-1).long(),
            )
            stats = MoEStats(
                tokens_per_expert=counts,
                kept_per_expert=kept,
                dropped_fraction=1.0 - routing.keep.float().mean(),
                tokens_dropped_fraction=(~routing.keep.any(-1)).float().mean(),
                router_entropy=torch.special.entr(routing.probs).sum(-1).mean(),
                capacity=routing.capacity,
            )
        return aux, z, stats

    # -- forward -----------------------------------------------------------------------------
    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``x [..., d]`` -> ``[..., d]``: the gate-weighted sum of the kept experts' outputs
        (plus ``x`` when ``residual``). ``generator`` draws the gating noise."""
        if not isinstance(x, Tensor) or x.dim() < 1 or x.shape[-1] != self.d_model:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"{type(self).__name__} expects input [..., d_model={self.d_model}], got {shape}"
            )
        if not x.is_floating_point():
            raise ValueError(f"{type(self).__name__} expects a floating-point input, got {x.dtype}")
        x2 = x.reshape(-1, self.d_model)  # [T, d]
        if x2.shape[0] == 0:
            raise ValueError(f"{type(self).__name__} got no tokens: input shape {tuple(x.shape)}")
        routing = self.route(x2, generator)
        self.aux_loss, self.z_loss, self.stats = self._losses_and_stats(routing)
        self.routing = routing
        y = self._dispatch(x2, routing)  # [T, d]
        if self.residual:
            y = y + x2
        return y.view(x.shape)

    def _dispatch(self, x: Tensor, routing: Routing) -> Tensor:
        """Grouped dispatch: ``x [T, d]`` -> ``[T, d]`` with batched matmuls, no expert loop."""
        t, d = x.shape
        e = self.num_experts
        plan = routing.plan
        position = plan.position  # [A] sorted by expert
        if routing.capacity is None:
            kept = plan.order  # [K]: every assignment, grouped by expert
            expert, slot_pos = plan.sorted_expert, position
        else:
            fits = position < routing.capacity
            kept, expert, slot_pos = plan.order[fits], plan.sorted_expert[fits], position[fits]
        # the buffer is as deep as the longest kept queue: less padding than the capacity
        depth = int(slot_pos.max()) + 1
        slot = expert * depth + slot_pos  # [K] row of each kept assignment in [E * C]
        token = kept % t  # [K]
        # rows of the padded buffer read token rows; padding reads the zero row ``t``
        source = torch.full((e * depth,), t, dtype=torch.long, device=x.device)
        source[slot] = token
        x_pad = torch.cat([x, x.new_zeros(1, d)])  # [T + 1, d]
        buffer = x_pad.index_select(0, source).view(e, depth, d)  # [E, C, d]
        out = self.experts(buffer).view(e * depth, d)  # [E * C, d]
        gate = routing.gates.t().reshape(-1)[kept].to(x.dtype)  # [K], rank-major like ``kept``
        weighted = out.index_select(0, slot) * gate.unsqueeze(1)  # [K, d]
        return x.new_zeros(t, d).index_add(0, token, weighted)  # [T, d]


class SwitchMoE(TopKMoE):
    """Switch Transformer layer (Fedus et al. 2021): top-1 routing, gate = the router
    probability of the chosen expert (not renormalised), capacity, the ``E * sum f_i P_i``
    load-balance loss and the router z-loss (weights ``1e-2`` and ``1e-3`` as in the
    paper); no gating noise by default."""

    def __init__(
        self,
        d_model: int,
        d_hidden: int,
        num_experts: int,
        *,
        capacity_factor: float | None = 1.25,
        noisy_gating: bool = False,
        aux_loss_weight: float = 1e-2,
        z_loss_weight: float = 1e-3,
        activation: str | Activation = "gelu",
        residual: bool = False,
    ) -> None:
        super().__init__(
            d_model,
            d_hidden,
            num_experts,
            k=1,
            capacity_factor=capacity_factor,
            noisy_gating=noisy_gating,
            renormalize=False,
            balance_loss="switch",
            aux_loss_weight=aux_loss_weight,
            z_loss_weight=z_loss_weight,
            activation=activation,
            residual=residual,
        )


class LoopMoE(TopKMoE):
    """Reference dispatch: a Python loop over experts, the way research snippets write it.

    Routing, gates, capacity drops and losses are :class:`TopKMoE`'s; the experts are
    an :class:`ExpertList` (one ``nn.Module`` each) and the dispatch loops over them.
    :meth:`from_moe` copies a layer's weights, so values and gradients can be compared
    (``experts.stacked_grads()`` lines the expert gradients up with the layer's).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.experts = ExpertList(self.experts)

    @classmethod
    def from_moe(cls, moe: TopKMoE) -> LoopMoE:
        """A loop reference with a copy of ``moe``'s configuration, router and experts."""
        if isinstance(moe.experts, ExpertList):
            raise ValueError("from_moe needs a layer with stacked experts, got a LoopMoE")
        device = moe.experts.w1.device
        with torch.random.fork_rng(devices=[]):  # its own random init is replaced below
            loop = cls(
                moe.d_model,
                1,  # the copied experts replace these; keep the throwaway init small
                moe.num_experts,
                moe.k,
                capacity_factor=moe.capacity_factor,
                noisy_gating=moe.noisy_gating,
                renormalize=moe.renormalize,
                balance_loss=moe.balance_loss,
                aux_loss_weight=moe.aux_loss_weight,
                z_loss_weight=moe.z_loss_weight,
                activation=moe.experts.activation,
                residual=moe.residual,
            )
        loop.d_hidden = moe.d_hidden
        loop.router = copy.deepcopy(moe.router)
        loop.experts = ExpertList(moe.experts)
        loop.train(moe.training)
        return loop.to(device)

    def _dispatch(self, x: Tensor, routing: Routing) -> Tensor:
        """For each expert: mask its kept assignments, gather, FFN, weighted ``index_add_``."""
        y = x.new_zeros(x.shape)  # [T, d]
        for e, expert in enumerate(self.experts.experts):
            mask = (routing.expert_index == e) & routing.keep  # [T, k]
            token, rank = torch.nonzero(mask, as_tuple=True)
            if token.numel() == 0:
                continue
            out = expert(x[token])  # [n, d]
            y.index_add_(0, token, out * routing.gates[token, rank].to(x.dtype).unsqueeze(1))
        return y


class DenseFFN(nn.Module):
    """A plain two-layer FFN ``act(x W1 + b1) W2 + b2`` over ``[..., d]`` (initialised like
    :class:`ExpertFFN`): the dense baseline with a MoE's active parameters, ``d_hidden =
    k * h``."""

    def __init__(self, d_model: int, d_hidden: int, activation: str | Activation = "gelu") -> None:
        super().__init__()
        d, h = _positive_int("d_model", d_model), _positive_int("d_hidden", d_hidden)
        self.d_model, self.d_hidden = d, h
        self.activation = _activation(activation)
        self.w1 = nn.Parameter(torch.empty(d, h).uniform_(-(d**-0.5), d**-0.5))  # [d, h]
        self.b1 = nn.Parameter(torch.zeros(h))  # [h]
        self.w2 = nn.Parameter(torch.empty(h, d).uniform_(-(h**-0.5), h**-0.5))  # [h, d]
        self.b2 = nn.Parameter(torch.zeros(d))  # [d]

    def forward(self, x: Tensor) -> Tensor:
        """``x [..., d]`` -> ``[..., d]``."""
        if x.dim() < 1 or x.shape[-1] != self.d_model:
            raise ValueError(
                f"DenseFFN expects input [..., d_model={self.d_model}], got {tuple(x.shape)}"
            )
        x2 = x.reshape(-1, self.d_model)
        hidden = self.activation(torch.addmm(self.b1, x2, self.w1))
        return torch.addmm(self.b2, hidden, self.w2).view(x.shape)
