"""What `pip install .` installs: every package folder under engine/, tui/ and themes/ (a
folder left out of pyproject.toml's list works in the editable install the tests use and is
missing from a wheel: the installed command then fails on its first import of it)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_folder_is_in_the_installed_package_list():
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    to_name = {folder: name for name, folder in setup["package-dir"].items()}
    found = set()
    for top, name in to_name.items():
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            found.add(".".join([name, *rel.parts]))
    assert found and set(setup["packages"]) == found
