"""The README tells the truth: its screenshots are the snapshot tests' pictures, and its
command table names every flag each command has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SNAPS = ROOT / "tests" / "tui" / "__snapshots__" / "test_snapshots"

# docs/img/NAME ← the snapshot it is a copy of (`make screenshots` copies them)
SCREENSHOTS = {"main.svg": "test_main_screen.svg", "help.svg": "test_help_screen.svg"}


@pytest.mark.parametrize("name", sorted(SCREENSHOTS))
def test_screenshots_are_the_snapshots(name):
    assert f"](docs/img/{name})" in README
    shot = (ROOT / "docs" / "img" / name).read_bytes()
    assert shot == (SNAPS / SCREENSHOTS[name]).read_bytes(), (
        f"docs/img/{name} differs from the snapshot {SCREENSHOTS[name]}: run `make screenshots`")


def test_makefile_copies_the_same_pictures():
    make = (ROOT / "Makefile").read_text()
    for name, snap in SCREENSHOTS.items():
        assert re.search(rf"cp \$\(SNAPS\)/{snap} docs/img/{name}", make), name


def _subcommands():
    from segtriage.tui import cli

    sub = next(a for a in cli.build_parser()._actions if a.__class__.__name__ ==
               "_SubParsersAction")
    return sub.choices


def test_the_command_table_names_every_command_and_flag():
    table = README[README.index("## Commands"):README.index("## Data layouts")]
    lines = table.splitlines()
    missing = {}
    for name, parser in _subcommands().items():
        pat = r"`segtriage \[DIR\]" if name == "open" else rf"`segtriage {re.escape(name)}\b"
        rows = [line for line in lines if re.search(pat, line)]
        if not rows:
            missing[name] = "no row"
            continue
        flags = [o for a in parser._actions for o in a.option_strings
                 if o.startswith("--") and o != "--help"]
        absent = [f for f in flags if not any(re.search(rf"{re.escape(f)}\b", r) for r in rows)]
        if absent:
            missing[name] = absent
    assert not missing, f"README's command table leaves out: {missing}"
