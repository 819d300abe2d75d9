"""Shared run plumbing: run directories, seeding, devices, checkpoints, metrics."""
