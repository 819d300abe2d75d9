"""Every subpackage is listed in pyproject.toml, and the layout keeps its arrows."""

from __future__ import annotations

import ast
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
TOP = {"envs", "agents", "collective_ml", "emergence", "runs"}


def test_every_subpackage_is_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {"colonylab"}
    for top in TOP:
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT)
            found.add(".".join(["colonylab", *rel.parts]))
    assert found <= listed, f"add to pyproject packages: {sorted(found - listed)}"


def _imports(folder: str) -> set[str]:
    out = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                out.add(node.module)
            elif isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
    # colonylab._checks (argument checks) is shared by every subpackage
    return {
        m.split(".")[1]
        for m in out
        if m.startswith("colonylab.") and m.count(".") >= 1 and m != "colonylab._checks"
    }


def test_import_arrows_point_one_way():
    """envs imports no other subpackage; agents and collective_ml never import envs."""
    assert _imports("envs") <= {"envs"}
    assert "envs" not in _imports("agents") | _imports("collective_ml")
    assert "runs" not in _imports("emergence") | _imports("agents") | _imports("collective_ml")


def test_runs_common_is_plumbing_only():
    """runs/common holds run dirs, seeding, checkpoint I/O, progress, devices: it imports
    no world, agent, core or metric."""
    assert not _imports("runs/common") & {"envs", "agents", "collective_ml", "emergence"}


def test_wheel_ships_data_files(tmp_path):
    """Checkpoints, targets and pattern files shipped with the package land in the wheel,
    so 'colony watch nca-grow' works right after 'pip install'."""
    import subprocess
    import sys
    import zipfile

    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(tmp_path)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("colonylab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = [p for p in (ROOT / "runs" / "checkpoints").glob("*.pt")]
    wanted += list((ROOT / "runs" / "assets").glob("*.png"))
    wanted += list((ROOT / "envs" / "ca" / "data").glob("*.rle"))
    assert wanted, "no data files found"
    for path in wanted:
        rel = path.relative_to(ROOT)
        assert "/".join(["colonylab", *rel.parts]) in names, f"{rel} is not in the wheel"
