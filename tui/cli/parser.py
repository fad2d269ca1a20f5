"""The `segtriage` parser, built from the commands each module under tui/cli/commands/
registers (its COMMANDS list), in the order `segtriage --help` shows them.

Only argparse and the command modules (argparse at their top) are imported: the parser is built
at every start, so `segtriage --help` answers at once.
"""

from __future__ import annotations

import argparse

from .commands import Command, backup, engine, fix, jobs, measure, paint, project, report, review

# the command modules, in the order of the help
GROUPS = (project, engine, jobs, report, backup, review, paint, fix, measure)

DESCRIPTION = ("Triage image segmentation masks: train a U-Net, let it point at the masks "
               "that are probably wrong, fix those, retrain.\n"
               "`segtriage [DIR]` opens the app on DIR (default: the current folder).")

EPILOG = """\
examples:
  segtriage demo                 make a demo data set in ./demo and open it
  segtriage ~/data/bubbles       open the triage app on a folder (starts the engine)
  segtriage train DIR --epochs 8 retrain and follow progress (Ctrl-C detaches)
  segtriage report DIR --format json --limit 20
"""


def registry() -> dict[str, Command]:
    """Every command by name, in the order of the help."""
    commands: dict[str, Command] = {}
    for module in GROUPS:
        for c in module.COMMANDS:
            if c.name in commands:
                raise ValueError(f"two commands named {c.name!r} ({module.__name__})")
            commands[c.name] = c
    return commands


def build_parser(commands: dict[str, Command] | None = None) -> argparse.ArgumentParser:
    """The parser of `segtriage`: one subparser per command; the command's name is in
    ``args.cmd``."""
    p = argparse.ArgumentParser(
        prog="segtriage", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description=DESCRIPTION)
    p.add_argument("--version", action="version", version="segtriage 0.1.0")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    for c in (registry() if commands is None else commands).values():
        c.add_arguments(sub.add_parser(c.name, help=c.help))
    return p
