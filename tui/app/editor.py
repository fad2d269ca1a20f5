"""The external mask editor: its argument list, and running it.

Which editor ``e`` opens: ``[editor] command`` in segtriage.toml if set (an argv template,
shlex-split, with ``{mask}`` and ``{image}`` placeholders and ``{{``/``}}`` for a literal brace;
any other brace is an error, refused when the config is loaded; the mask path is appended when
no placeholder appears), else ``$SEGTRIAGE_EDITOR`` if set (shlex-split, the mask path
appended; shared with other programs, so only ``{mask}`` and ``{image}`` are replaced there and
other braces stay as they are), else segtriage's own terminal painter (``segtriage paint``,
run as ``python -m segtriage.tui.cli paint MASK --image IMAGE --project DIR --renderer R``,
R being the app's image renderer, so the painter draws as the preview did).
``$VISUAL`` and ``$EDITOR`` name text editors and are not used for masks: a default SSH
set-up (``EDITOR=vim``) gets the painter, and a GIMP user sets ``[editor] command = "gimp
{mask}"`` (with ``mode = "gui"``) or ``SEGTRIAGE_EDITOR=gimp``. The placeholders and their
expansion live in engine/project/config/checks.py, which validates the template. The result is always a list
handed to the OS directly, never to a shell, so odd file names are safe.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Mapping
from pathlib import Path

from ...engine.project.config import EDITOR_BRACES, EDITOR_PLACEHOLDERS, expand_editor_args

ENV_VARS = ("SEGTRIAGE_EDITOR",)
_WHERE = (" (set [editor] command in segtriage.toml or $SEGTRIAGE_EDITOR; with neither, e "
          "opens the painter)")


class EditorError(RuntimeError):
    pass


def painter_argv(mask: Path, image: Path, project: Path | None = None,
                 renderer: str | None = None) -> list[str]:
    """segtriage's own painter, run with this Python (no PATH lookup); ``renderer``: the
    app's image renderer, so the painter draws as the preview did."""
    import sys

    argv = [sys.executable, "-m", "segtriage.tui.cli", "paint", "--image", str(image)]
    if project is not None:
        argv += ["--project", str(project)]
    if renderer is not None:
        argv += ["--renderer", renderer]
    return argv + ["--", str(mask)]  # "--": a mask named "-x.png" is not an option


def is_painter(argv: list[str]) -> bool:
    """Whether ``argv`` runs segtriage's painter as painter_argv builds it (a terminal
    program: never launched detached, whatever [editor] mode says)."""
    import sys

    return argv[:4] == [sys.executable, "-m", "segtriage.tui.cli", "paint"]


def editor_argv(template: str, mask: Path, image: Path,
                env: Mapping[str, str] | None = None, project: Path | None = None,
                renderer: str | None = None) -> list[str]:
    """The argv that opens ``mask`` (``image`` for reference) in the chosen editor; the
    painter (of the project ``project``, drawing with ``renderer``) when none is chosen."""
    env = os.environ if env is None else env
    source = "[editor] command"
    if not template.strip():
        for var in ENV_VARS:
            if env.get(var, "").strip():
                template, source = env[var], f"${var}"
                break
        else:
            return painter_argv(mask, image, project, renderer)
    try:
        parts = shlex.split(template)
    except ValueError as e:
        raise EditorError(f"{source} = {template!r} cannot be split into arguments: {e}") from None
    if not parts:
        raise EditorError(f"{source} is empty")
    values = {"mask": str(mask), "image": str(image)}
    if source == "[editor] command":  # validated at load; a Config built otherwise is not
        try:
            argv, placeholders = expand_editor_args(parts, values)
        except ValueError as e:
            raise EditorError(f"{source} = {template!r} is not {EDITOR_BRACES}: {e}") from None
    else:  # only the placeholders: other braces in an environment editor stay as they are
        token = re.compile("|".join(re.escape("{" + n + "}") for n in EDITOR_PLACEHOLDERS))
        placeholders = any(token.search(p) for p in parts)
        argv = [token.sub(lambda m: values[m.group(0)[1:-1]], p) for p in parts]
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
