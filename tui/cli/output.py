"""What the commands print through: a rich console, markup escaping, the `segtriage: ...`
error line, and the short forms of numbers and times in tables.

Only the standard library at the top: rich is imported when something is printed, so
`segtriage --help` stays fast.
"""

from __future__ import annotations

import sys
import time


def new_console():
    """A rich console on stdout."""
    from rich.console import Console

    return Console()


def escape(text: str) -> str:
    """Text shown through rich printed as written: '[backup]' in a message, a path or an
    image name is not markup (rich is imported here, not at start: --help stays fast)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def err(msg: str) -> int:
    """Print `segtriage: MSG` on stderr; the exit status of a usage error (2)."""
    print(f"segtriage: {msg}", file=sys.stderr)
    return 2


def ago(ts: float | None) -> str:
    """A past time as '5 min ago' ('never' for none)."""
    if not ts:
        return "never"
    s = max(0, time.time() - ts)
    for unit, n in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= n:
            return f"{s / n:.0f} {unit} ago"
    return f"{s:.0f} s ago"


def fmt(v) -> str:
    """A table cell: '–' for none, floats to 3 decimals (2 from 10 on)."""
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.2f}" if abs(v) >= 10 else f"{v:.3f}"
    return str(v)
