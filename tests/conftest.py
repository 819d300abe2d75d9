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


@pytest.fixture(autouse=True)
def _torch_one_thread():
    """Run torch on one thread in tests: small tensors, a shared 2-core machine.

    Results do not depend on the thread count; this only keeps the suite fast
    when other processes compete for the cores.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
