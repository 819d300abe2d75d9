"""Ensembles: many copies of one architecture, evaluated in one batched call.

An :class:`Ensemble` holds ``M`` members that share an architecture. Their
parameters are stacked along a leading member axis (``torch.func.
stack_module_state``) and kept as the ensemble's own ``nn.Parameter``\\ s, so an
optimizer trains all members at once; the forward pass is a single
``torch.func.vmap`` over ``torch.func.functional_call`` (``batched=True``), or
a plain loop over members (``batched=False``, the test reference). Members
come back out as ordinary modules with :meth:`Ensemble.export_members` /
:meth:`Ensemble.load_into`.

Shapes: inputs ``x: (B, ...)`` shared by every member, or ``(M, B, ...)`` with
one batch per member (``per_member=True``, used by bagging); member outputs
``(M, B, ...)``; classifier outputs are logits ``(M, B, C)``.

The rest of the module is made of pure functions over member outputs:

- aggregation: :func:`mean_aggregate`, :func:`weighted_aggregate` (softmax
  weights), :func:`soft_vote` (mean of probabilities), :func:`hard_vote` (mode
  of the members' argmax; ties go to the lowest class index);
- uncertainty: :func:`classifier_uncertainty` (predictive variance, predictive
  entropy, expected entropy, mutual information) and
  :func:`regression_uncertainty` (mean and variance);
- bagging: :func:`bootstrap_indices`, :func:`fit_ensemble`, :func:`fit_bagging`;
- negative correlation learning (Liu & Yao 1999): :func:`ncl_loss`;
- stacking (Wolpert 1992): :func:`kfold_indices`,
  :func:`out_of_fold_predictions`, :class:`StackingEnsemble`,
  :func:`fit_stacking`;
- greedy ensemble selection (Caruana et al. 2004): :func:`greedy_selection`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

__all__ = [
    "AGGREGATIONS",
    "BaggingResult",
    "ClassifierUncertainty",
    "Ensemble",
    "OutOfFold",
    "StackingEnsemble",
    "bootstrap_indices",
    "classifier_uncertainty",
    "fit_bagging",
    "fit_ensemble",
    "fit_meta_learner",
    "fit_stacking",
    "greedy_selection",
    "hard_vote",
    "kfold_indices",
    "mean_aggregate",
    "ncl_loss",
    "out_of_fold_predictions",
    "regression_uncertainty",
    "soft_vote",
    "vote_counts",
    "weighted_aggregate",
]

AGGREGATIONS = ("mean", "weighted", "soft", "hard")
"""Aggregation modes of :class:`Ensemble`."""


# --------------------------------------------------------------------------- #
# The batched ensemble
# --------------------------------------------------------------------------- #


def _escape(name: str) -> str:
    """A dotted parameter name as a registrable attribute name (``a.b`` -> ``a/b``)."""
    return name.replace(".", "/")


def _architecture(module: nn.Module) -> tuple:
    """What must match between members: module types, parameter and buffer shapes."""
    modules = tuple((name, type(m).__name__) for name, m in module.named_modules())
    params = tuple((n, tuple(p.shape), p.dtype) for n, p in module.named_parameters())
    buffers = tuple((n, tuple(b.shape), b.dtype) for n, b in module.named_buffers())
    return modules, params, buffers


def _check_same_architecture(members: Sequence[nn.Module], check_device: bool = True) -> None:
    """Raise ``ValueError`` naming the first member and field that differ from member 0."""
    reference = _architecture(members[0])
    labels = ("submodules (name, type)", "parameters (name, shape, dtype)", "buffers")
    for index, member in enumerate(members[1:], start=1):
        arch = _architecture(member)
        for label, ref_part, part in zip(labels, reference, arch, strict=True):
            if ref_part != part:
                diff = sorted(set(part) ^ set(ref_part), key=str)[:4]
                raise ValueError(
                    f"ensemble members must share one architecture: member {index} "
                    f"({type(member).__name__}) differs from member 0 "
                    f"({type(members[0]).__name__}) in its {label}; first differences: "
                    f"{diff}. Build every member with the same constructor arguments."
                )
    devices = {p.device for m in members for p in m.parameters()}
    if check_device and len(devices) > 1:
        raise ValueError(
            f"ensemble members must live on one device, got {sorted(map(str, devices))}; "
            "move them with .to(device) first"
        )


class Ensemble(nn.Module):
    """``M`` members of one architecture, run in one ``vmap``-ed call.

    Args:
        members: the member modules (copied: later changes to them do not
            reach the ensemble; use :meth:`load_into` to write back).
        factory: instead of ``members``, a zero-argument callable building one
            member; called ``n`` times (seed torch beforehand for reproducible
            initialisations).
        n: number of members to build with ``factory``.
        aggregation: how :meth:`predict` combines member outputs, one of
            :data:`AGGREGATIONS`. ``"weighted"`` adds learnable member weight
            logits ``weight_logits: (M,)`` (softmax weights, uniform at start).
        batched: ``True`` evaluates members with ``vmap`` (one call);
            ``False`` loops over members (the reference path; same values).
        randomness: ``vmap`` randomness for members with dropout or other
            random ops: ``"different"`` (independent draws per member),
            ``"same"`` or ``"error"``.

    The stacked parameters are ``nn.Parameter`` s of the ensemble, named after
    the member's parameters with ``/`` for ``.`` (``stacked_params["0/weight"]``
    has shape ``(M, *weight.shape)``), so optimizers, ``state_dict`` and
    ``.to(device)`` work as for any module. Members that update buffers in
    place during the forward pass (BatchNorm in training mode) are not
    supported by ``vmap``; use ``batched=False`` for them.
    """

    def __init__(
        self,
        members: Sequence[nn.Module] | None = None,
        *,
        factory: Callable[[], nn.Module] | None = None,
        n: int | None = None,
        aggregation: str = "mean",
        batched: bool = True,
        randomness: str = "different",
    ) -> None:
        super().__init__()
        if (members is None) == (factory is None):
            raise ValueError(
                "Ensemble takes either `members` (a list of modules) or `factory` and `n`, "
                f"got members={'None' if members is None else type(members).__name__} and "
                f"factory={factory!r}"
            )
        if factory is not None:
            if not (isinstance(n, int) and not isinstance(n, bool) and n >= 1):
                raise ValueError(f"n must be an integer >= 1 when a factory is given, got {n!r}")
            members = [factory() for _ in range(n)]
        elif n is not None:
            raise ValueError(f"n is only used with `factory`; got n={n!r} together with members")
        members = list(members)
        if not members:
            raise ValueError("an ensemble needs at least one member, got an empty list")
        for index, member in enumerate(members):
            if not isinstance(member, nn.Module):
                raise ValueError(
                    f"ensemble members must be torch nn.Modules, member {index} is "
                    f"{type(member).__name__}"
                )
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
        if randomness not in ("different", "same", "error"):
            raise ValueError(
                f"randomness must be 'different', 'same' or 'error', got {randomness!r}"
            )
        _check_same_architecture(members)

        self.num_members = len(members)
        self.aggregation = aggregation
        self.batched = bool(batched)
        self.randomness = randomness

        params, buffers = stack_module_state(members)
        self._param_names = list(params)
        self._buffer_names = list(buffers)
        requires_grad = dict(members[0].named_parameters())
        self.stacked_params = nn.ParameterDict(
            {
                _escape(name): nn.Parameter(
                    value.detach().clone(), requires_grad=requires_grad[name].requires_grad
                )
                for name, value in params.items()
            }
        )
        self.stacked_buffers = nn.Module()
        for name, value in buffers.items():
            self.stacked_buffers.register_buffer(_escape(name), value.detach().clone())
        if aggregation == "weighted":
            self.weight_logits = nn.Parameter(torch.zeros(self.num_members))
        else:
            self.register_parameter("weight_logits", None)

        # The skeleton gives functional_call the module's code; its own tensors
        # live on the meta device and are always replaced by the stacked ones.
        # A list keeps it from being registered as a submodule.
        self._skeleton = [copy.deepcopy(members[0]).to("meta")]

    # ---- stacked state ---------------------------------------------------- #

    def params(self) -> dict[str, Tensor]:
        """Stacked parameters by member-module name: ``{name: (M, *shape)}``."""
        return {name: self.stacked_params[_escape(name)] for name in self._param_names}

    def buffers_by_name(self) -> dict[str, Tensor]:
        """Stacked buffers by member-module name: ``{name: (M, *shape)}``."""
        return {name: getattr(self.stacked_buffers, _escape(name)) for name in self._buffer_names}

    def __len__(self) -> int:
        return self.num_members

    # ---- forward ---------------------------------------------------------- #

    def forward(self, x: Tensor, *, per_member: bool = False) -> Tensor:
        """Every member's output.

        Args:
            x: ``(B, ...)`` shared by all members, or ``(M, B, ...)`` with
                ``per_member=True`` (member ``m`` sees ``x[m]``).
            per_member: whether ``x`` carries one batch per member.

        Returns:
            ``(M, B, ...)``: member outputs, stacked.
        """
        if per_member and (x.dim() < 1 or x.shape[0] != self.num_members):
            raise ValueError(
                f"per_member=True needs x of shape (M={self.num_members}, B, ...), "
                f"got {tuple(x.shape)}"
            )
        skeleton = self._skeleton[0]
        skeleton.train(self.training)
        params, buffers = self.params(), self.buffers_by_name()

        def call(p: dict[str, Tensor], b: dict[str, Tensor], inp: Tensor) -> Tensor:
            return functional_call(skeleton, (p, b), (inp,))

        if self.batched:
            in_x = 0 if per_member else None
            return vmap(call, in_dims=(0, 0, in_x), randomness=self.randomness)(params, buffers, x)
        outputs = []
        for m in range(self.num_members):
            p = {name: value[m] for name, value in params.items()}
            b = {name: value[m] for name, value in buffers.items()}
            outputs.append(call(p, b, x[m] if per_member else x))
        return torch.stack(outputs)

    def member_weights(self) -> Tensor:
        """Member weights ``(M,)`` summing to 1: softmax of ``weight_logits`` or uniform."""
        if self.weight_logits is None:
            device = next(iter(self.stacked_params.values())).device
            return torch.full((self.num_members,), 1.0 / self.num_members, device=device)
        return torch.softmax(self.weight_logits, dim=0)

    def aggregate(self, outputs: Tensor) -> Tensor:
        """Combine member outputs ``(M, B, ...)`` with this ensemble's ``aggregation``.

        Returns:
            ``mean`` / ``weighted``: ``(B, ...)`` averaged outputs; ``soft``:
            ``(B, C)`` mean probabilities; ``hard``: ``(B, C)`` vote shares
            (fraction of members whose argmax is each class).
        """
        if self.aggregation == "mean":
            return mean_aggregate(outputs)
        if self.aggregation == "weighted":
            return weighted_aggregate(outputs, self.weight_logits)
        if self.aggregation == "soft":
            return soft_vote(outputs)
        return vote_counts(outputs) / outputs.shape[0]

    def predict(self, x: Tensor) -> Tensor:
        """Aggregated prediction for ``x: (B, ...)`` (see :meth:`aggregate`)."""
        return self.aggregate(self(x))

    # ---- members out ------------------------------------------------------ #

    def export_members(self) -> list[nn.Module]:
        """The members as independent modules (copies of the stacked values)."""
        device = next(iter(self.stacked_params.values())).device
        modules = []
        for _ in range(self.num_members):
            module = copy.deepcopy(self._skeleton[0]).to_empty(device=device)
            modules.append(module)
        self.load_into(modules)
        for module in modules:
            module.train(self.training)
        return modules

    @torch.no_grad()
    def load_into(self, modules: Sequence[nn.Module]) -> None:
        """Copy the stacked parameters and buffers into ``M`` modules of the same architecture."""
        if len(modules) != self.num_members:
            raise ValueError(f"load_into needs {self.num_members} modules, got {len(modules)}")
        _check_same_architecture([self._skeleton[0], *modules], check_device=False)
        params, buffers = self.params(), self.buffers_by_name()
        for m, module in enumerate(modules):
            for name, tensor in module.named_parameters():
                tensor.copy_(params[name][m])
            for name, tensor in module.named_buffers():
                tensor.copy_(buffers[name][m])


# --------------------------------------------------------------------------- #
# Aggregation
# --------------------------------------------------------------------------- #


def _check_member_outputs(outputs: Tensor, name: str, min_dim: int = 2) -> None:
    if not isinstance(outputs, Tensor) or outputs.dim() < min_dim:
        shape = tuple(outputs.shape) if isinstance(outputs, Tensor) else type(outputs).__name__
        expected = "(M, B, ...)" if min_dim == 2 else "(M, B, C)"
        raise ValueError(f"{name} must be a tensor of shape {expected}, got {shape}")
    if outputs.shape[0] == 0:
        raise ValueError(f"{name} has no members (M=0), shape {tuple(outputs.shape)}")


def mean_aggregate(outputs: Tensor) -> Tensor:
    """Mean over members: ``(M, B, ...) -> (B, ...)``."""
    _check_member_outputs(outputs, "outputs")
    return outputs.mean(dim=0)


def weighted_aggregate(outputs: Tensor, weight_logits: Tensor) -> Tensor:
    """Softmax-weighted mean over members: ``sum_m softmax(w)_m outputs[m]``.

    Args:
        outputs: ``(M, B, ...)`` member outputs.
        weight_logits: ``(M,)`` unnormalised member weights (learnable).

    Returns:
        ``(B, ...)``.
    """
    _check_member_outputs(outputs, "outputs")
    if weight_logits.shape != (outputs.shape[0],):
        raise ValueError(
            f"weight_logits must have shape (M,) = ({outputs.shape[0]},), "
            f"got {tuple(weight_logits.shape)}"
        )
    weights = torch.softmax(weight_logits, dim=0).to(outputs.dtype)  # (M,)
    return torch.tensordot(weights, outputs, dims=1)


def soft_vote(logits: Tensor) -> Tensor:
    """Soft vote: mean of member class probabilities, ``(M, B, C) -> (B, C)``."""
    _check_member_outputs(logits, "logits", min_dim=3)
    return torch.softmax(logits, dim=-1).mean(dim=0)


def vote_counts(logits: Tensor) -> Tensor:
    """Number of members voting for each class: ``(M, B, C) -> (B, C)`` (float)."""
    _check_member_outputs(logits, "logits", min_dim=3)
    num_classes = logits.shape[-1]
    votes = logits.argmax(dim=-1)  # (M, B)
    return F.one_hot(votes, num_classes).sum(dim=0).to(logits.dtype)


def hard_vote(logits: Tensor) -> Tensor:
    """Hard (majority) vote: the mode of the members' argmax classes.

    Ties between classes with equally many votes go to the **lowest class
    index**, by construction (not by relying on ``argmax`` tie rules).

    Args:
        logits: ``(M, B, C)`` member logits or probabilities.

    Returns:
        ``(B,)`` int64 class indices.
    """
    counts = vote_counts(logits).long()  # (B, C)
    num_classes = counts.shape[-1]
    # Rank by count first, then prefer the lower index: count*C + (C-1-index)
    # is unique per class, so the argmax has no ties.
    preference = torch.arange(num_classes - 1, -1, -1, device=counts.device)
    return (counts * num_classes + preference).argmax(dim=-1)


# --------------------------------------------------------------------------- #
# Uncertainty
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class ClassifierUncertainty:
    """Uncertainty of an ensemble of classifiers for a batch (entropies in nats)."""

    mean_probs: Tensor
    """``(B, C)``: the soft-vote prediction."""
    class_variance: Tensor
    """``(B, C)``: variance of each class probability across members (population, 1/M)."""
    predictive_variance: Tensor
    """``(B,)``: total variance, the sum of ``class_variance`` over classes."""
    predictive_entropy: Tensor
    """``(B,)``: H[mean_m p_m], total uncertainty."""
    expected_entropy: Tensor
    """``(B,)``: mean_m H[p_m], aleatoric part."""
    mutual_information: Tensor
    """``(B,)``: predictive − expected entropy, the members' disagreement (epistemic part), >= 0."""


def _entropy(probs: Tensor) -> Tensor:
    """Shannon entropy over the last axis, in nats, with 0 log 0 = 0."""
    return -torch.special.xlogy(probs, probs).sum(dim=-1)


def classifier_uncertainty(logits: Tensor, *, from_probs: bool = False) -> ClassifierUncertainty:
    """Predictive variance, entropy, expected entropy and mutual information.

    Args:
        logits: ``(M, B, C)`` member logits (or probabilities with
            ``from_probs=True``).
        from_probs: whether ``logits`` already holds probabilities.

    The mutual information ``H[mean p] − mean H[p]`` is non-negative by
    Jensen's inequality (entropy is concave); it is clamped at 0 to absorb
    rounding, and is 0 (up to rounding) when all members agree.
    """
    _check_member_outputs(logits, "logits", min_dim=3)
    probs = logits if from_probs else torch.softmax(logits, dim=-1)  # (M, B, C)
    mean_probs = probs.mean(dim=0)  # (B, C)
    class_variance = probs.var(dim=0, unbiased=False)  # (B, C)
    predictive_entropy = _entropy(mean_probs)  # (B,)
    expected_entropy = _entropy(probs).mean(dim=0)  # (B,)
    mutual_information = (predictive_entropy - expected_entropy).clamp_min(0.0)
    return ClassifierUncertainty(
        mean_probs=mean_probs,
        class_variance=class_variance,
        predictive_variance=class_variance.sum(dim=-1),
        predictive_entropy=predictive_entropy,
        expected_entropy=expected_entropy,
        mutual_information=mutual_information,
    )


def regression_uncertainty(outputs: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and variance (population, 1/M) across members: ``(M, B, ...) -> 2 x (B, ...)``."""
    _check_member_outputs(outputs, "outputs")
    return outputs.mean(dim=0), outputs.var(dim=0, unbiased=False)


# --------------------------------------------------------------------------- #
# Bagging
# --------------------------------------------------------------------------- #


def bootstrap_indices(
    n: int, members: int, generator: torch.Generator | None = None, *, size: int | None = None
) -> Tensor:
    """One bootstrap sample of row indices per member (drawn with replacement).

    Args:
        n: number of rows in the data set.
        members: number of members ``M``.
        generator: the random source (seed it for reproducible samples).
        size: rows per sample; ``n`` by default (about 63.2% distinct rows).

    Returns:
        ``(M, size)`` int64 indices in ``[0, n)``.
    """
    for label, value in (("n", n), ("members", members)):
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            raise ValueError(f"{label} must be an integer >= 1, got {value!r}")
    size = n if size is None else size
    if not (isinstance(size, int) and size >= 1):
        raise ValueError(f"size must be an integer >= 1, got {size!r}")
    return torch.randint(0, n, (members, size), generator=generator)


@dataclass(frozen=True)
class BaggingResult:
    """What :func:`fit_bagging` drew and how training went."""

    indices: Tensor
    """``(M, n)``: each member's bootstrap rows."""
    losses: list[float]
    """Mean training loss per epoch (summed over members)."""

    def out_of_bag(self, n: int) -> Tensor:
        """``(M, n)`` bool: rows a member never saw (for out-of-bag error)."""
        mask = torch.ones(self.indices.shape[0], n, dtype=torch.bool)
        mask.scatter_(1, self.indices.cpu(), False)
        return mask


def fit_ensemble(
    ensemble: Ensemble,
    x: Tensor,
    y: Tensor,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    *,
    rows: Tensor | None = None,
    epochs: int = 50,
    batch_size: int = 64,
    lr: float = 1e-2,
    generator: torch.Generator | None = None,
) -> list[float]:
    """Train every member on its own rows, all members in one batched step.

    Args:
        ensemble: the ensemble (trained in place).
        x: ``(N, ...)`` inputs.
        y: ``(N, ...)`` targets.
        loss_fn: a mean-reduced loss ``loss_fn(pred, target) -> scalar`` (e.g.
            ``F.cross_entropy``); it receives all members' batches flattened to
            ``(M*b, ...)`` and is multiplied by ``M``, so each member's
            parameters get the gradient of its own mean loss.
        rows: ``(M, n)`` the rows each member trains on (a bootstrap sample);
            every member uses all ``N`` rows when ``None``.
        epochs: passes over each member's rows.
        batch_size: rows per member per step.
        lr: Adam learning rate. Adam is elementwise, so one Adam over the
            stacked parameters equals one Adam per member.
        generator: shuffles rows (seed it for reproducible training).

    Returns:
        Mean loss per epoch.
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y need the same number of rows, got {x.shape[0]} and {y.shape[0]}")
    num_members = ensemble.num_members
    if rows is None:
        rows = torch.arange(x.shape[0]).expand(num_members, -1)
    if rows.dim() != 2 or rows.shape[0] != num_members:
        raise ValueError(f"rows must have shape (M={num_members}, n), got {tuple(rows.shape)}")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    params = [p for p in ensemble.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    ensemble.train()
    rows = rows.to(x.device)
    n = rows.shape[1]
    history = []
    for _ in range(epochs):
        order = torch.argsort(torch.rand(num_members, n, generator=generator), dim=1)
        shuffled = torch.gather(rows, 1, order.to(rows.device))  # (M, n)
        total, steps = 0.0, 0
        for start in range(0, n, batch_size):
            batch = shuffled[:, start : start + batch_size]  # (M, b)
            outputs = ensemble(x[batch], per_member=True)  # (M, b, ...)
            loss = loss_fn(outputs.flatten(0, 1), y[batch].flatten(0, 1)) * num_members
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            steps += 1
        history.append(total / steps)
    return history


def fit_bagging(
    ensemble: Ensemble,
    x: Tensor,
    y: Tensor,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    *,
    generator: torch.Generator | None = None,
    **fit_kwargs,
) -> BaggingResult:
    """Bagging (Breiman 1996): each member trains on its own bootstrap sample.

    Draws :func:`bootstrap_indices` then calls :func:`fit_ensemble` with them;
    ``fit_kwargs`` (``epochs``, ``batch_size``, ``lr``) go to it.
    """
    indices = bootstrap_indices(x.shape[0], ensemble.num_members, generator)
    losses = fit_ensemble(ensemble, x, y, loss_fn, rows=indices, generator=generator, **fit_kwargs)
    return BaggingResult(indices=indices, losses=losses)


# --------------------------------------------------------------------------- #
# Negative correlation learning
# --------------------------------------------------------------------------- #


def ncl_loss(
    predictions: Tensor, target: Tensor, lam: float = 0.5, *, detach_mean: bool = True
) -> Tensor:
    """Negative correlation learning loss per member (Liu & Yao 1999).

    For member ``i`` on one example, with ensemble mean ``f̄ = mean_j f_j``::

        e_i = ½ (f_i − d)² + λ p_i,   p_i = (f_i − f̄) Σ_{j≠i} (f_j − f̄)

    Because ``Σ_j (f_j − f̄) = 0``, ``Σ_{j≠i}(f_j − f̄) = −(f_i − f̄)`` and
    ``p_i = −(f_i − f̄)²``: the penalty rewards members for differing from the
    mean. Two gradient conventions:

    - ``detach_mean=True`` (Liu & Yao's): ``f̄`` — and with it the factor
      ``Σ_{j≠i}(f_j − f̄)``, which then depends on no ``f_i`` — is held
      constant, as in the paper's derivation, and each member gets only the
      gradient of its own ``e_i``. Backpropagating ``ncl_loss(...).sum()`` then
      gives exactly ``∂/∂f_i = (f_i − d) − λ (f_i − f̄)``
      ``= (1 − λ)(f_i − d) + λ (f̄ − d)`` (per example, before the batch mean);
      ``λ = 1`` trains each member on the ensemble's error.
    - ``detach_mean=False``: plain autograd through ``f̄`` and through every
      member's penalty; the gradient of the summed loss is
      ``(f_i − d) − 2λ (f_i − f̄)`` (the ``f̄`` terms cancel since the
      deviations sum to zero). This equals the Liu & Yao gradient at ``2λ``;
      ``λ = ½`` here is training the ensemble mean's squared error.

    Either way the loss *values* are the same.

    Args:
        predictions: ``(M, B)`` or ``(M, B, D)`` member outputs (regression).
        target: ``(B,)`` or ``(B, D)``, broadcast against each member.
        lam: penalty strength ``λ`` (Liu & Yao use ``0 <= λ <= 1``).
        detach_mean: the gradient convention above.

    Returns:
        ``(M,)`` per-member losses: ``e_i`` summed over output dimensions and
        averaged over the batch. Sum them to train all members at once.
    """
    _check_member_outputs(predictions, "predictions")
    if target.shape != predictions.shape[1:]:
        raise ValueError(
            f"target must have shape {tuple(predictions.shape[1:])} (predictions without the "
            f"member axis), got {tuple(target.shape)}"
        )
    mean = predictions.mean(dim=0, keepdim=True)  # (1, B, ...)
    if detach_mean:
        mean = mean.detach()
        others = -(predictions - mean).detach()  # Σ_{j≠i}(f_j − f̄), constant in f_i
    else:
        others = (predictions - mean).sum(dim=0, keepdim=True) - (predictions - mean)
    penalty = (predictions - mean) * others  # (M, B, ...)
    per_element = 0.5 * (predictions - target) ** 2 + lam * penalty
    if per_element.dim() > 2:
        per_element = per_element.flatten(2).sum(dim=2)  # (M, B)
    return per_element.mean(dim=1)


# --------------------------------------------------------------------------- #
# Stacking
# --------------------------------------------------------------------------- #


def kfold_indices(
    n: int, k: int, generator: torch.Generator | None = None
) -> list[tuple[Tensor, Tensor]]:
    """Shuffled K-fold split of ``n`` rows.

    Returns:
        ``k`` pairs ``(train_rows, held_out_rows)`` of int64 indices; the held-out
        sets partition ``range(n)`` (fold sizes differ by at most one).
    """
    if not (isinstance(k, int) and 2 <= k <= n):
        raise ValueError(f"k must be an integer in [2, n={n}], got {k!r}")
    order = torch.randperm(n, generator=generator)
    folds = torch.tensor_split(order, k)
    splits = []
    for i, held_out in enumerate(folds):
        train = torch.cat([f for j, f in enumerate(folds) if j != i])
        splits.append((train, held_out))
    return splits


@dataclass(frozen=True)
class OutOfFold:
    """Out-of-fold predictions of every member for every row."""

    predictions: Tensor
    """``(M, N, ...)``: row ``r`` predicted by members trained without it."""
    fold: Tensor
    """``(N,)``: which fold held each row out."""
    train_rows: list[Tensor]
    """Rows each fold's models were trained on (``train_rows[fold[r]]`` never contains ``r``)."""


def out_of_fold_predictions(
    make_ensemble: Callable[[], Ensemble],
    fit: Callable[[Ensemble, Tensor, Tensor], object],
    x: Tensor,
    y: Tensor,
    *,
    k: int = 5,
    generator: torch.Generator | None = None,
) -> OutOfFold:
    """K-fold out-of-fold predictions, the training set of a stacking meta-learner.

    For each fold a fresh ensemble from ``make_ensemble()`` is trained with
    ``fit(ensemble, x[train], y[train])`` and predicts the held-out rows.

    Returns:
        :class:`OutOfFold` with predictions ``(M, N, ...)``.
    """
    n = x.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"x and y need the same number of rows, got {n} and {y.shape[0]}")
    splits = kfold_indices(n, k, generator)
    fold = torch.empty(n, dtype=torch.long)
    predictions = None
    for i, (train, held_out) in enumerate(splits):
        ensemble = make_ensemble()
        fit(ensemble, x[train], y[train])
        ensemble.eval()
        with torch.no_grad():
            out = ensemble(x[held_out])  # (M, n_i, ...)
        if predictions is None:
            predictions = out.new_empty((out.shape[0], n, *out.shape[2:]))
        predictions[:, held_out] = out
        fold[held_out] = i
    return OutOfFold(predictions=predictions, fold=fold, train_rows=[t for t, _ in splits])


def _meta_features(outputs: Tensor, task: str) -> Tensor:
    """Member outputs ``(M, B, D)`` -> meta-learner input ``(B, M*D)`` (probabilities for classifiers)."""
    if task == "classification":
        outputs = torch.softmax(outputs, dim=-1)
    if outputs.dim() == 2:
        outputs = outputs.unsqueeze(-1)
    return outputs.permute(1, 0, 2).flatten(1)


def fit_meta_learner(
    meta: nn.Module,
    features: Tensor,
    y: Tensor,
    *,
    task: str = "classification",
    steps: int = 100,
    weight_decay: float = 1e-4,
) -> float:
    """Fit a (small) meta-learner full-batch with L-BFGS; returns the final loss.

    Cross-entropy on logits for ``task="classification"`` (``y`` int64 ``(N,)``),
    mean squared error for ``"regression"``; plus ``weight_decay * ||θ||²``.
    """
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    optimizer = torch.optim.LBFGS(
        meta.parameters(), lr=1.0, max_iter=steps, line_search_fn="strong_wolfe"
    )

    def loss_of() -> Tensor:
        out = meta(features)
        if task == "classification":
            loss = F.cross_entropy(out, y)
        else:
            loss = F.mse_loss(out, y.reshape(out.shape))
        return loss + weight_decay * sum((p**2).sum() for p in meta.parameters())

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = loss_of()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return float(loss_of())


class StackingEnsemble(nn.Module):
    """Stacked generalisation: a meta-learner over the members' predictions.

    Args:
        base: the member ensemble (trained on all rows).
        meta: maps ``(B, M*D)`` features to ``(B, D_out)``: class logits or
            regression outputs.
        task: ``"classification"`` (features are member probabilities) or
            ``"regression"`` (raw member outputs).
    """

    def __init__(self, base: Ensemble, meta: nn.Module, task: str = "classification") -> None:
        super().__init__()
        if task not in ("classification", "regression"):
            raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
        self.base = base
        self.meta = meta
        self.task = task

    def features(self, x: Tensor) -> Tensor:
        """``(B, ...) -> (B, M*D)`` meta-learner inputs."""
        return _meta_features(self.base(x), self.task)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, ...) -> (B, D_out)``."""
        return self.meta(self.features(x))


def fit_stacking(
    make_ensemble: Callable[[], Ensemble],
    fit: Callable[[Ensemble, Tensor, Tensor], object],
    x: Tensor,
    y: Tensor,
    *,
    task: str = "classification",
    k: int = 5,
    generator: torch.Generator | None = None,
    meta: nn.Module | None = None,
    meta_steps: int = 100,
) -> tuple[StackingEnsemble, OutOfFold]:
    """Train a stacking ensemble: out-of-fold predictions, a meta-learner, a refit base.

    1. :func:`out_of_fold_predictions` with ``k`` seeded folds;
    2. the meta-learner (default: a linear layer, i.e. multinomial logistic
       regression for classifiers) is fit on those out-of-fold predictions
       only, so it learns how members behave on rows they did not see;
    3. a fresh base ensemble is fit on all rows.
    """
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    oof = out_of_fold_predictions(make_ensemble, fit, x, y, k=k, generator=generator)
    features = _meta_features(oof.predictions, task)  # (N, M*D)
    if meta is None:
        out_dim = oof.predictions.shape[-1] if oof.predictions.dim() > 2 else 1
        meta = nn.Linear(features.shape[1], out_dim)
    fit_meta_learner(meta, features, y, task=task, steps=meta_steps)
    base = make_ensemble()
    fit(base, x, y)
    base.eval()
    return StackingEnsemble(base, meta, task), oof


# --------------------------------------------------------------------------- #
# Greedy ensemble selection
# --------------------------------------------------------------------------- #


def _selection_metric(name: str) -> Callable[[Tensor, Tensor], float]:
    """A built-in lower-is-better metric on aggregated predictions."""
    if name == "mse":
        return lambda pred, y: float(((pred - y.reshape(pred.shape)) ** 2).mean())
    if name == "error":
        return lambda probs, y: float((probs.argmax(dim=-1) != y).float().mean())
    if name == "nll":
        return lambda probs, y: float(
            -torch.log(probs.gather(-1, y[:, None]).clamp_min(1e-12)).mean()
        )
    raise ValueError(f"metric must be 'mse', 'error', 'nll' or a callable, got {name!r}")


def greedy_selection(
    predictions: Tensor,
    targets: Tensor,
    *,
    metric: str | Callable[[Tensor, Tensor], float] = "mse",
    size: int | None = None,
    replacement: bool = True,
    best_prefix: bool = False,
) -> list[int]:
    """Forward greedy ensemble selection (Caruana et al. 2004) on a validation set.

    Starting from an empty ensemble, each step adds the member whose addition
    gives the lowest ``metric`` of the averaged predictions; ties go to the
    lowest member index. With ``replacement`` a member may be added again
    (its weight grows), which is Caruana's recommended form.

    Args:
        predictions: ``(M, N, ...)`` validation predictions: outputs for
            ``"mse"``, class *probabilities* ``(M, N, C)`` for ``"error"`` and
            ``"nll"``.
        targets: ``(N, ...)`` targets (int64 labels ``(N,)`` for classifiers).
        metric: ``"mse"``, ``"error"``, ``"nll"``, or a callable
            ``metric(mean_prediction (N, ...), targets) -> float``, lower is better.
        size: number of selection steps; ``M`` by default.
        replacement: allow picking a member more than once.
        best_prefix: return only the prefix with the best score (Caruana's
            final step) instead of all ``size`` picks.

    Returns:
        Chosen member indices in the order they were added (repeats possible
        with replacement).
    """
    _check_member_outputs(predictions, "predictions")
    num_members = predictions.shape[0]
    if predictions.shape[1] != targets.shape[0]:
        raise ValueError(
            f"predictions (M, N, ...) and targets (N, ...) disagree on N: "
            f"{predictions.shape[1]} vs {targets.shape[0]}"
        )
    score = metric if callable(metric) else _selection_metric(metric)
    size = num_members if size is None else size
    if not (isinstance(size, int) and size >= 1):
        raise ValueError(f"size must be an integer >= 1, got {size!r}")
    if not replacement and size > num_members:
        raise ValueError(
            f"without replacement size must be <= M={num_members}, got {size}; "
            "pass replacement=True or a smaller size"
        )
    chosen: list[int] = []
    scores: list[float] = []
    running = torch.zeros_like(predictions[0])  # sum of chosen predictions
    for _ in range(size):
        best_index, best_score = -1, math.inf
        for m in range(num_members):
            if not replacement and m in chosen:
                continue
            candidate = score((running + predictions[m]) / (len(chosen) + 1), targets)
            if candidate < best_score:  # strict: ties keep the lower index
                best_index, best_score = m, candidate
        if best_index < 0:
            raise ValueError(
                f"metric returned no finite score (last: {candidate!r}); check predictions"
            )
        chosen.append(best_index)
        scores.append(best_score)
        running = running + predictions[best_index]
    if best_prefix:
        stop = min(range(len(scores)), key=lambda i: (scores[i], i)) + 1
        chosen = chosen[:stop]
    return chosen
