"""The README's "Your own experiment" script is run as written, so it cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_script(heading: str = "## Your own experiment") -> str:
    """The first ```python block after ``heading`` in README.md."""
    text = (ROOT / "README.md").read_text()
    start = text.index(heading)
    match = re.search(r"```python\n(.*?)```", text[start:], flags=re.S)
    assert match, f"no python block under {heading!r}"
    return match.group(1)


def test_own_experiment_script_is_short():
    lines = [line for line in readme_script().splitlines() if line.strip()]
    assert len(lines) <= 40, f"the README's example has {len(lines)} non-blank lines"


def test_own_experiment_script_trains(tmp_path):
    script = tmp_path / "own_experiment.py"
    script.write_text(readme_script())
    out = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "validated return" in out.stdout
