"""The house, enforced: the import-linter contracts of pyproject.toml (layers, forbidden imports,
no cycles), and modules a person can read in one sitting."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(ROOT / "engine").rglob("*.py"), *(ROOT / "tui").rglob("*.py")])
MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 300


def test_the_import_contracts_hold():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    kinds = sorted(c["type"] for c in contracts["contracts"])
    # the contracts this house relies on are all there (a deleted one would pass silently)
    assert kinds == ["acyclic_siblings", "forbidden", "forbidden", "forbidden", "layers",
                     "layers"]
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"Contracts: {len(kinds)} kept, 0 broken." in out.stdout


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_module_opens_with_what_it_holds_and_fits_one_sitting(path):
    text = path.read_text()
    tree = ast.parse(text)
    if path.name != "__init__.py" or text.strip():
        assert ast.get_docstring(tree), f"{path.relative_to(ROOT)} has no opening docstring"
    n = len(text.splitlines())
    assert n <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)}: {n} lines"
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            size = node.end_lineno - node.lineno + 1
            assert size <= MAX_CLASS_LINES, (
                f"{path.relative_to(ROOT)}: class {node.name} is {size} lines")
