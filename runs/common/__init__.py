"""Shared run plumbing: run directories, seeding, devices, checkpoints, metrics."""

from colonylab.runs.common.checkpoint import atomic_write_bytes, load_checkpoint, save_checkpoint
from colonylab.runs.common.device import resolve_device
from colonylab.runs.common.rundir import MetricsLogger, RunDir
from colonylab.runs.common.seeding import seed_everything

__all__ = [
    "MetricsLogger",
    "RunDir",
    "atomic_write_bytes",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
    "seed_everything",
]
