"""Worlds: state, rules, rendering. No learning (imports no other colonylab subpackage)."""

from colonylab.envs.base import StepResult, World
from colonylab.envs.registry import WORLDS, UnknownNameError, make, make_config

__all__ = ["WORLDS", "StepResult", "UnknownNameError", "World", "make", "make_config"]
