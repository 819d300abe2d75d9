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
