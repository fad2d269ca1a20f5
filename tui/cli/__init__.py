"""The `segtriage` command: `segtriage [DIR]` opens the app, `segtriage COMMAND ...` runs a
command; main() turns the first case into the second, dispatches, and turns a closed pipe or
Ctrl-C into an exit status.

Where things are: parser.py builds the parser from the commands that each module under
commands/ registers; common.py opens DIR, its config, state and project; output.py prints;
follow.py follows a job in the engine.

Only argparse is imported at start so `segtriage --help` answers at once; each command imports
what it needs. Nothing here imports torch or fastai: commands that compute submit a job to the
engine process and follow its progress from the project state.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .output import err
from .parser import build_parser, registry

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run `segtriage` with ``argv`` (default: the process's); the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = registry()
    # `segtriage [DIR]` opens the app: anything that is not a command or an option is a folder
    if argv and argv[0] not in commands and not argv[0].startswith("-") \
            and not Path(argv[0]).expanduser().exists():
        import difflib

        near = difflib.get_close_matches(argv[0], list(commands), n=1)
        if near or len(argv) > 1:  # `segtriage reprot DIR`: a mistyped command, not a folder
            hint = f"; did you mean {near[0]!r}?" if near else ""
            return err(f"{argv[0]!r} is neither a command nor a folder{hint} "
                       f"(commands: {', '.join(commands)})")
    if not argv or (argv[0] not in commands and not argv[0].startswith("-")):
        argv = ["open", *argv]
    elif argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv = ["open", *argv]
    a = build_parser(commands).parse_args(argv)
    try:
        return commands[a.cmd].run(a) or 0
    except SystemExit as e:
        return int(e.code or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `segtriage report DIR | head`: the reader left; no traceback, and none at exit when
        # Python flushes stdout again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
