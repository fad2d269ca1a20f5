"""The `segtriage` commands, one module per group. Each module lists what it adds to the
command line in COMMANDS, a list of Command; tui/cli/parser.py reads them in the order of the
help.

A command module imports only argparse and the standard library at its top (the parser is
built at every start, `segtriage --help` included); its run functions import what they need.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, its line in `segtriage --help`, what adds its arguments to
    its parser, and what runs it (the parsed arguments in, the exit status out)."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def dir_arg(p: argparse.ArgumentParser, default: str | None = None) -> None:
    """The DIR argument: required, or optional with ``default``."""
    if default is None:
        p.add_argument("dir", help="data folder")
    else:
        p.add_argument("dir", nargs="?", default=default, help=f"data folder (default {default})")
