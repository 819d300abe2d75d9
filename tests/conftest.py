"""Test-wide settings: headless pygame and matplotlib, run outputs in a temp dir."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pytest  # noqa: E402


@pytest.fixture
def run_root(tmp_path, monkeypatch):
    """A temporary ``runs/out`` for tests that write run directories."""
    root = tmp_path / "runs_out"
    monkeypatch.setenv("COLONY_RUNS_DIR", str(root))
    monkeypatch.chdir(tmp_path)
    return root
