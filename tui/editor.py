"""The external mask editor: its argument list, and running it.

Resolution order: ``[editor] command`` in segtriage.toml (an argv template, shlex-split, with
``{mask}`` and ``{image}`` placeholders; the mask path is appended when neither appears), else
``$SEGTRIAGE_EDITOR``, ``$VISUAL``, ``$EDITOR`` (shlex-split, the mask path appended). The result is
always a list handed to the OS directly, never to a shell, so odd file names are safe.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping
from pathlib import Path

ENV_VARS = ("SEGTRIAGE_EDITOR", "VISUAL", "EDITOR")
_WHERE = " (set [editor] command in segtriage.toml, or $SEGTRIAGE_EDITOR, $VISUAL or $EDITOR)"


class EditorError(RuntimeError):
    pass


def editor_argv(template: str, mask: Path, image: Path,
                env: Mapping[str, str] | None = None) -> list[str]:
    """The argv that opens ``mask`` (``image`` for reference) in the configured editor."""
    env = os.environ if env is None else env
    source = "[editor] command"
    if not template.strip():
        for var in ENV_VARS:
            if env.get(var, "").strip():
                template, source = env[var], f"${var}"
                break
        else:
            raise EditorError("no mask editor configured: set [editor] command in "
                              "segtriage.toml, or $SEGTRIAGE_EDITOR, $VISUAL or $EDITOR")
    try:
        parts = shlex.split(template)
    except ValueError as e:
        raise EditorError(f"{source} = {template!r} cannot be split into arguments: {e}") from None
    if not parts:
        raise EditorError(f"{source} is empty")
    placeholders = any("{mask}" in p or "{image}" in p for p in parts)
    # plain str.replace, not str.format: other braces in arguments stay as they are
    argv = [p.replace("{mask}", str(mask)).replace("{image}", str(image)) for p in parts]
    if not placeholders:
        argv.append(str(mask))
    return argv


def run_terminal(argv: list[str], cwd: Path) -> int:
    """Run a terminal editor in the foreground (the caller has suspended the TUI)."""
    try:
        return subprocess.run(argv, cwd=cwd).returncode
    except FileNotFoundError:
        raise EditorError(f"editor not found: {argv[0]!r}{_WHERE}") from None
    except OSError as e:
        raise EditorError(f"cannot start {argv[0]!r}: {e}") from None


def launch_gui(argv: list[str], cwd: Path) -> int:
    """Start a GUI editor detached (own session, no terminal): it outlives the TUI and the
    engine's watcher notices the save. Returns its pid."""
    try:
        proc = subprocess.Popen(argv, cwd=cwd, start_new_session=True, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                close_fds=True)
    except FileNotFoundError:
        raise EditorError(f"editor not found: {argv[0]!r}{_WHERE}") from None
    except OSError as e:
        raise EditorError(f"cannot start {argv[0]!r}: {e}") from None
    return proc.pid
