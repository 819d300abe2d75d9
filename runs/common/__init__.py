"""Shared run plumbing: run directories, seeding, devices, checkpoints, progress.

Plumbing only: nothing here imports a world, an agent or a core.
"""

from colonylab.runs.common.checkpoint import (
    CheckpointError,
    atomic_write_bytes,
    latest_checkpoint,
    load_checkpoint,
    make_checkpoint,
    provenance,
    read_torch_file,
    reproduce_command,
    rng_states,
    save_checkpoint,
    set_rng_states,
)
from colonylab.runs.common.device import resolve_device
from colonylab.runs.common.rundir import MetricsLogger, RunDir
from colonylab.runs.common.seeding import seed_everything

__all__ = [
    "CheckpointError",
    "MetricsLogger",
    "RunDir",
    "atomic_write_bytes",
    "latest_checkpoint",
    "load_checkpoint",
    "make_checkpoint",
    "provenance",
    "read_torch_file",
    "reproduce_command",
    "resolve_device",
    "rng_states",
    "save_checkpoint",
    "seed_everything",
    "set_rng_states",
]
