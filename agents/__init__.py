"""Agents: torch modules over batches -- one small shared rule, many copies.

Every model is built from a small spec, ``build({"type": NAME, **arguments})``, and a
checkpoint stores that spec beside the weights, so ``build(ckpt["spec"])`` followed by
``load_state_dict(ckpt["state_dict"])`` rebuilds any shipped agent.

====================  =============================================  ====================
type                  model                                          module
====================  =============================================  ====================
``mlp``               MLP policy (vectors or patches, tanh/linear)   ``agents/mlp.py``
``linear``            normalised linear / one-layer tanh policy      ``agents/mlp.py``
``backprop``          Jacobs (1991) backprop net                     ``agents/mlp.py``
``attention``         AttentionNeuron policy (permutation-invariant) ``agents/sensory.py``
``attention-grid``    AttentionNeuron onto a fixed 2-D latent grid   ``agents/sensory.py``
                      (Tang & Ha's vision layer), a small CNN on it
``attention-memory``  feed-forward AttentionNeuron + GRU memory      ``agents/attention_memory.py``
``patch-cnn``         CNN on the patches put back on their grid      ``agents/patch_cnn.py``
``filtered``          a per-patch conv filter in front of any patch  ``agents/patch_filter.py``
                      policy (``{"filter": {...}, "policy": spec}``)
``nca``               neural cellular automaton                      ``agents/nca.py``
``grid``              shared grid actor-critic (views, ids, mean     ``agents/grid_policy.py``
                      field, messages)
``smp``               Shared Modular Policy: one net per limb,       ``agents/modular.py``
                      bottom-up then top-down messages on the tree
``independent``       the same limb net without messages             ``agents/modular.py``
``transformer``       attention over limbs (Amorpheus-style)         ``agents/modular.py``
``body-mlp``          monolithic MLP for one body                    ``agents/modular.py``
``consensus``         message-passing consensus network (GRU) on a   ``agents/consensus.py``
                      sparse neighbourhood
``local-rule``        learned ring CA with hidden channels           ``agents/consensus.py``
====================  =============================================  ====================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn


def _mlp(**kw: Any) -> nn.Module:
    from colonylab.agents.mlp import MLPPolicy

    kw["input_shape"] = tuple(kw["input_shape"])
    if "hidden" in kw:
        kw["hidden"] = tuple(kw["hidden"])
    return MLPPolicy(**kw)


def _linear(**kw: Any) -> nn.Module:
    from colonylab.agents.mlp import LinearPolicy

    return LinearPolicy(**kw)


def _backprop(**kw: Any) -> nn.Module:
    from colonylab.agents.mlp import BackpropNet

    return BackpropNet(**kw)


def _attention(**kw: Any) -> nn.Module:
    from colonylab.agents.sensory import AttentionNeuronPolicy

    return AttentionNeuronPolicy(**kw)


def _attention_grid(**kw: Any) -> nn.Module:
    from colonylab.agents.sensory import AttentionGridPolicy

    return AttentionGridPolicy(**kw)


def _attention_memory(**kw: Any) -> nn.Module:
    from colonylab.agents.attention_memory import AttentionMemoryPolicy

    return AttentionMemoryPolicy(**kw)


def _patch_cnn(**kw: Any) -> nn.Module:
    from colonylab.agents.patch_cnn import PatchCNNPolicy

    return PatchCNNPolicy(**kw)


def _filtered(**kw: Any) -> nn.Module:
    from colonylab.agents.patch_filter import FilteredPolicy

    return FilteredPolicy(**kw)


def _grid(**kw: Any) -> nn.Module:
    from colonylab.agents.grid_policy import GridPolicy

    return GridPolicy(**kw)


def _modular(kind: str) -> Callable[..., nn.Module]:
    def build_one(**kw: Any) -> nn.Module:
        from colonylab.agents.modular import build_modular

        return build_modular({"type": kind, **kw})

    return build_one


def _consensus(**kw: Any) -> nn.Module:
    from colonylab.agents.consensus import ConsensusNetwork

    return ConsensusNetwork(**kw)


def _local_rule(**kw: Any) -> nn.Module:
    from colonylab.agents.consensus import LocalRule

    return LocalRule(**kw)


def _nca(**kw: Any) -> nn.Module:
    from colonylab.agents.nca import NCA, NCAConfig

    return NCA(NCAConfig(**kw))


BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "mlp": _mlp,
    "linear": _linear,
    "backprop": _backprop,
    "attention": _attention,
    "attention-grid": _attention_grid,
    "attention-memory": _attention_memory,
    "patch-cnn": _patch_cnn,
    "filtered": _filtered,
    "nca": _nca,
    "grid": _grid,
    "consensus": _consensus,
    "local-rule": _local_rule,
    **{kind: _modular(kind) for kind in ("smp", "independent", "transformer", "body-mlp")},
}
"""``type`` -> builder; a new agent registers its builder here."""


def build(spec: Mapping[str, Any]) -> nn.Module:
    """The model a spec describes: ``{"type": NAME, **constructor arguments}``.

    Raises:
        ValueError: no ``type``, an unknown type, or arguments the model refuses
            (the message names the spec).
    """
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise ValueError(f"an agent spec is a dict with a 'type' key, got {spec!r}")
    kind = spec["type"]
    if kind not in BUILDERS:
        raise ValueError(f"unknown agent type {kind!r}; known: {', '.join(sorted(BUILDERS))}")
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    try:
        return BUILDERS[kind](**kwargs)
    except TypeError as exc:
        raise ValueError(f"agent spec {dict(spec)} does not fit {kind!r}: {exc}") from None


__all__ = ["BUILDERS", "build"]
