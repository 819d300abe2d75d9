"""The colony CLI, experiments (one file each) and benchmarks."""
