"""Experiments, benchmarks and agents known to the ``colony`` CLI.

An experiment or benchmark is one module in ``runs/`` with a ``Config``
dataclass (docstring on every field; tyro makes it the ``--help``) and
``main(cfg)``. Experiments may add ``watch(cfg, checkpoint) -> world`` for
``colony watch`` and ``evaluate(cfg, checkpoint) -> dict`` for ``colony eval``
(``checkpoint`` None: the checkpoint shipped with the package). A training
experiment whose ``main(cfg, resume=None)`` takes ``resume`` (a run directory)
continues a stopped run: ``colony train NAME --resume RUN_DIR``. One module may be
registered several times as variants (MuJoCo Playground's "variants as registry
entries"): each entry's ``defaults`` override its Config's defaults, e.g.
``cartpole-pso`` and ``cartpole-pgpe`` are ``experiments.cartpole`` with ``core="pso"``
and ``core="pgpe"``. Modules are imported only when used (``colony list`` reads ``main``'s signature from the
source file, without importing torch).
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from colonylab.envs.registry import UnknownNameError


@dataclass(frozen=True)
class RunSpec:
    """A runnable module: ``name`` -> ``colonylab.runs.<module>``."""

    name: str
    module: str
    description: str
    evaluable: bool = False
    """The module has ``evaluate(cfg, checkpoint) -> dict`` (``colony eval``)."""
    defaults: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """Config fields this entry sets (a variant of a module registered more than once):
    the CLI starts from ``Config(**defaults)``; the user's flags still override them."""

    def default_config(self, config_cls: type) -> Any:
        """``config_cls(**defaults)``, or None (the Config's own defaults) when there are none."""
        return config_cls(**self.defaults) if self.defaults else None

    def check_variant(self, cfg: Any) -> Any:
        """``cfg`` if it keeps this variant's ``defaults``; else a ValueError naming the
        variant that fits (``colony train cartpole-pso --core pgpe`` is cartpole-pgpe)."""
        changed = {k: getattr(cfg, k) for k, v in self.defaults.items() if getattr(cfg, k) != v}
        if changed:
            others = [
                s.name
                for s in EXPERIMENTS.values()
                if s.module == self.module
                and s.defaults
                and all(getattr(cfg, k) == v for k, v in s.defaults.items())
            ]
            flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in changed.items())
            hint = f"; use {others[0]!r}" if others else ""
            raise ValueError(f"{self.name!r} is the variant '{self.variant}', not {flags!r}{hint}")
        return cfg

    @property
    def variant(self) -> str:
        """``--field value`` for each of ``defaults`` (empty when there are none)."""
        return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in self.defaults.items())

    @property
    def qualified_module(self) -> str:
        """The module's import name, ``colonylab.runs.<module>``."""
        return f"colonylab.runs.{self.module}"

    def load(self) -> ModuleType:
        """Import the module."""
        return importlib.import_module(self.qualified_module)

    @property
    def resumable(self) -> bool:
        """``main`` takes ``resume`` (``colony train NAME --resume RUN_DIR``).

        Read from the imported module when it is loaded already, else from its
        source (no import); False when neither can be read.
        """
        module = sys.modules.get(self.qualified_module)
        if module is not None and callable(getattr(module, "main", None)):
            return accepts_resume(module.main)
        return _source_main_takes_resume(self.qualified_module)


def accepts_resume(main: object) -> bool:
    """Whether an experiment's ``main`` has a ``resume`` parameter."""
    try:
        return "resume" in inspect.signature(main).parameters  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


@functools.cache
def _source_main_takes_resume(qualified_module: str) -> bool:
    """Whether the module's source defines ``def main(..., resume...)`` at top level."""
    try:
        found = importlib.util.find_spec(qualified_module)
        if found is None or not found.origin:
            return False
        tree = ast.parse(Path(found.origin).read_text(encoding="utf-8"))
    except (ImportError, OSError, SyntaxError, ValueError):
        return False
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "main":
            args = node.args
            names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
            return "resume" in names
    return False


EXPERIMENTS: dict[str, RunSpec] = {
    s.name: s
    for s in [
        RunSpec(
            "life-soup",
            "experiments.life_soup",
            "random soups under several Life-like rules: population, activity, entropy, period",
        ),
        RunSpec(
            "pursuit-cycles",
            "experiments.pursuit_cycles",
            "predator-prey population cycles in pursuit: period, phase lag, phase portrait",
        ),
        RunSpec(
            "nca-grow",
            "experiments.nca_grow",
            "neural CA growing, persisting and regenerating an RGBA target (Mordvintsev 2020)",
            evaluable=True,
        ),
        RunSpec(
            "nca-digits",
            "experiments.nca_digits",
            "self-classifying digits: every live pixel votes, neighbours agree (Randazzo 2020)",
            evaluable=True,
        ),
        RunSpec(
            "jacobs1991",
            "experiments.jacobs1991",
            "competitive mixture of experts on vowels [i] [I] [a] [^] vs backprop nets (Jacobs 1991)",
        ),
        RunSpec(
            "federated",
            "experiments.federated",
            "federated experts: FedAvg, federated MoE, gossip, Reptile, robust rules (Flower/Ray)",
            evaluable=True,
        ),
        RunSpec(
            "cartpole-pso",
            "experiments.cartpole",
            "an MLP policy for CartPole-v1 found by PSO through the batched evaluator",
            evaluable=True,
            defaults={"core": "pso"},
        ),
        RunSpec(
            "cartpole-pgpe",
            "experiments.cartpole",
            "an MLP policy for CartPole-v1 found by PGPE + ClipUp through the batched evaluator",
            evaluable=True,
            defaults={"core": "pgpe"},
        ),
        RunSpec(
            "ant-teacher",
            "experiments.ant_teacher",
            "a walking linear PGPE teacher for the vectorized Ant (Ant-v5): sensory-ant's teacher",
            evaluable=True,
        ),
        RunSpec(
            "sensory-cartpole",
            "experiments.sensory_cartpole",
            "AttentionNeuron vs MLP on swing-up with shuffled / noisy inputs (Tang & Ha 2021)",
            evaluable=True,
        ),
        RunSpec(
            "sensory-pong",
            "experiments.sensory_pong",
            "AttentionNeuron vs MLP playing Pong from shuffled / 70%-occluded screen patches",
            evaluable=True,
        ),
        RunSpec(
            "sensory-carracing",
            "experiments.sensory_carracing",
            "AttentionNeuron vs CNN driving CarRacing-v3 from shuffled patches / new backgrounds",
            evaluable=True,
        ),
        RunSpec(
            "sensory-ant",
            "experiments.sensory_ant",
            "AttentionNeuron vs MLP walking MuJoCo Ant with its 27 inputs shuffled every 200 steps",
            evaluable=True,
        ),
        RunSpec(
            "ae-suite",
            "experiments.ae_suite",
            "Adaptive Evolution controller vs AdamW: regression, delay, scaling, plateau, bad lr",
        ),
        RunSpec(
            "ae-study",
            "experiments.ae_study",
            "AE-Adam/AE-SGDm vs tuned baselines on NCA, MoE and 1991-mixture runs; 4 predictions",
        ),
        RunSpec(
            "density",
            "experiments.density",
            "learned radius-3 density-classification rule with hidden channels (BPTT or PGPE) vs GKL",
            evaluable=True,
        ),
        RunSpec(
            "talking-ensemble",
            "experiments.talking_ensemble",
            "ensemble members talk (consensus network) vs mean, soft/hard vote, stacking on digits",
        ),
        RunSpec(
            "flock",
            "experiments.flock",
            "learned heading controller for a flock with 5% informed (PGPE) vs Couzin's zone model",
            evaluable=True,
        ),
        RunSpec(
            "smp-walkers",
            "experiments.smp_walkers",
            "one modular policy (SMP, no-message, transformer), 10 walkers, ARS/TD3/PGPE; held-out zero-shot",
            evaluable=True,
        ),
        RunSpec(
            "battle-selfplay",
            "experiments.battle_selfplay",
            "a shared army for MAgent2's battle_v4 by PPO vs greedy, random and its own snapshots",
            evaluable=True,
        ),
        RunSpec(
            "battle-cores",
            "experiments.battle_cores",
            "PGPE / PSO vs PPO on the same agent-steps, and AE-Adam vs tuned Adam, on battle_v4",
        ),
        RunSpec(
            "pursuit-coop",
            "experiments.pursuit_coop",
            "predators learn by shared PPO to hunt in pairs (a kill needs 2); --messages K ablation",
            evaluable=True,
        ),
        RunSpec(
            "tiger-deer",
            "experiments.tiger_deer",
            "tigers learn by shared PPO to hunt deer on MAgent2's tiger_deer_v4 vs random and greedy",
            evaluable=True,
        ),
        RunSpec(
            "gather-learn",
            "experiments.gather_learn",
            "omnivores learn by shared PPO to gather food on MAgent2's gather_v5 vs random and greedy",
            evaluable=True,
        ),
    ]
}

BENCHMARKS: dict[str, RunSpec] = {
    s.name: s
    for s in [
        RunSpec(
            "life", "benchmarks.life", "Life cell updates/s: Numba kernels vs a NumPy np.roll step"
        ),
        RunSpec(
            "grid",
            "benchmarks.grid",
            "battle agent-steps/s with observations, array and PettingZoo APIs, vs MAgent2",
        ),
        RunSpec(
            "nca",
            "benchmarks.nca",
            "neural CA steps/s and training-iteration time vs a plain conv2d reference",
        ),
        RunSpec(
            "moe",
            "benchmarks.moe",
            "MoE forward+backward tokens/s: grouped dispatch vs a per-expert loop and a dense FFN",
        ),
        RunSpec(
            "pso",
            "benchmarks.pso",
            "PSO on Sphere/Rastrigin/Rosenbrock/Ackley: best value and ms/iteration vs PySwarms",
        ),
        RunSpec(
            "population",
            "benchmarks.population",
            "256 CartPole MLP policies: batched vmap evaluator vs a loop over Gymnasium envs",
        ),
        RunSpec(
            "sensory",
            "benchmarks.sensory",
            "256 AttentionNeuron policies on swing-up: batched recurrent vmap evaluator vs a loop",
        ),
        RunSpec(
            "ae",
            "benchmarks.ae",
            "time to target on static regression: AE-controlled AdamW vs plain AdamW",
        ),
        RunSpec(
            "marl",
            "benchmarks.marl",
            "PPO training agent-steps/s on battle at 1k-100k agents vs the network alone (and MAgent2)",
        ),
        RunSpec(
            "consensus",
            "benchmarks.consensus",
            "density-ring cell updates/s (bit-parallel) and 1M-particle flock steps/s vs NumPy",
        ),
        RunSpec(
            "mujoco",
            "benchmarks.mujoco",
            "256 modular walkers, policy in the loop: env-steps/s vs Gymnasium Walker2d-v5 and mujoco.rollout",
        ),
    ]
}

# Agents (torch modules in colonylab.agents) register here as they land.
AGENTS: dict[str, str] = {
    # the agents.build(spec) types, one line each
    "mlp": "MLP policy over vectors or patches, tanh or linear output (agents/mlp.py)",
    "patch-cnn": "CNN over screen patches put back on their grid: CarRacing baseline (agents/patch_cnn.py)",
    "filtered": "a per-patch background filter in front of any patch policy: CarRacing's AttentionNeuron + filter (agents/patch_filter.py)",
    "linear": "normalised linear / one-layer tanh policy: the Ant teacher (agents/mlp.py)",
    "backprop": "one-hidden-layer backprop net of Jacobs et al. 1991 (agents/mlp.py)",
    "attention": "AttentionNeuron: shared sensory neurons + fixed-query attention, permutation-invariant (agents/sensory.py)",
    "attention-grid": "AttentionNeuron onto a fixed 2-D latent grid + small CNN: Tang & Ha's vision layer (agents/sensory.py)",
    "attention-memory": "feed-forward AttentionNeuron + GRU memory, permutation-invariant (agents/attention_memory.py)",
    "nca": "neural cellular automaton: Sobel/learned perception, 1x1 update (agents/nca.py)",
    "grid": "shared grid actor-critic over [N, V, V, C] views: ids, mean field, messages (agents/grid_policy.py)",
    "smp": "Shared Modular Policy: one limb net, bottom-up + top-down messages on any tree (agents/modular.py)",
    "independent": "the modular limb net without messages (agents/modular.py)",
    "transformer": "Amorpheus-style attention over limbs, shared weights (agents/modular.py)",
    "body-mlp": "monolithic MLP for one body, the per-body baseline (agents/modular.py)",
    "consensus": "message-passing consensus network: encode, GRU over neighbours' messages, decode (agents/consensus.py)",
    "local-rule": "learned ring CA: binary visible bit + hidden channels, one shared net (agents/consensus.py)",
}


def experiment(name: str) -> RunSpec:
    """The experiment called ``name``, or an error listing the known ones."""
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise UnknownNameError("experiment", name, EXPERIMENTS) from None


def resumable_experiments() -> list[str]:
    """Names of the experiments ``colony train --resume`` can continue."""
    return [name for name, spec in EXPERIMENTS.items() if spec.resumable]


def benchmark(name: str) -> RunSpec:
    """The benchmark suite called ``name``, or an error listing the known ones."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise UnknownNameError("benchmark", name, BENCHMARKS) from None
