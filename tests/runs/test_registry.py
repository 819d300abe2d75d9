"""Every experiment and benchmark the CLI lists is a module with what the CLI calls."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from colonylab.runs import registry
from colonylab.runs.registry import BENCHMARKS, EXPERIMENTS, accepts_resume, resumable_experiments


@pytest.mark.parametrize(
    "spec", [*EXPERIMENTS.values(), *BENCHMARKS.values()], ids=lambda s: s.name
)
def test_registered_module_has_config_and_main(spec):
    module = spec.load()
    assert dataclasses.is_dataclass(module.Config), f"{spec.module}.Config is not a dataclass"
    module.Config()  # the defaults are valid
    assert callable(module.main)
    assert len(inspect.signature(module.main).parameters) >= 1
    if spec.evaluable:
        assert callable(module.evaluate), f"{spec.name} is evaluable but has no evaluate()"
    assert spec.description and len(spec.description) < 100
    if spec in EXPERIMENTS.values():
        # colony list reads resumability from the source; it must match the signature
        from_source = registry._source_main_takes_resume(spec.qualified_module)
        assert from_source == accepts_resume(module.main) == spec.resumable, spec.name
        assert (spec.name in resumable_experiments()) == spec.resumable


def test_variants_of_one_module_start_from_their_defaults():
    """A module registered twice (``cartpole-pso`` / ``cartpole-pgpe``) is two variants:
    each entry's ``defaults`` make its Config; entries without defaults use the Config's."""
    by_module: dict[str, list[registry.RunSpec]] = {}
    for spec in EXPERIMENTS.values():
        by_module.setdefault(spec.module, []).append(spec)
    for specs in by_module.values():
        if len(specs) > 1:  # variants must differ in their defaults
            assert len({tuple(sorted(s.defaults.items())) for s in specs}) == len(specs)
        for spec in specs:
            cls = spec.load().Config
            cfg = spec.default_config(cls)
            if not spec.defaults:
                assert cfg is None and spec.variant == ""
            else:
                assert all(getattr(cfg, k) == v for k, v in spec.defaults.items())
    assert EXPERIMENTS["cartpole-pgpe"].variant == "--core pgpe"


def test_list_names_the_variant(capsys):
    from colonylab.runs.cli import main as cli_main

    assert cli_main(["list"]) == 0
    out = capsys.readouterr().out
    assert "experiments.cartpole" in out and "--core" in out and "pgpe)" in out


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["train", "cartpole-pso", "--core", "pgpe"], "use 'cartpole-pgpe'"),
        (["eval", "cartpole-pgpe", "--core", "pso"], "use 'cartpole-pso'"),
    ],
)
def test_a_variant_keeps_its_own_core(argv, hint, capsys):
    from colonylab.runs.cli import main as colony

    assert colony(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and hint in err and len(err.splitlines()) == 1


def test_colony_list_names_every_buildable_agent():
    from colonylab.agents import BUILDERS

    assert set(registry.AGENTS) == set(BUILDERS)


def test_unknown_name_lists_each_known_name_once():
    from colonylab.envs.registry import UnknownNameError

    err = UnknownNameError("world or experiment", "flok", ["flock", "life", "flock"],
                           "worlds and experiments")  # fmt: skip
    assert str(err) == (
        "unknown world or experiment 'flok'; known worlds and experiments: flock, life. "
        "Did you mean 'flock'?"
    )
    assert "known verbs: " in str(UnknownNameError("verb", "x", ["eval"]))
