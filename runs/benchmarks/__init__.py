"""Benchmarks: one file per ``colony bench`` suite, each against a baseline in the same run."""
