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
    return {m.split(".")[1] for m in out if m.startswith("colonylab.") and m.count(".") >= 1}


def test_import_arrows_point_one_way():
    """envs imports no other subpackage; agents and collective_ml never import envs."""
    assert _imports("envs") <= {"envs"}
    assert "envs" not in _imports("agents") | _imports("collective_ml")
    assert "runs" not in _imports("emergence") | _imports("agents") | _imports("collective_ml")
