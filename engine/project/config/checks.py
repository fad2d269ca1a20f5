"""The checkers of config values: each returns the (possibly normalised) value or raises
ValueError whose message says what is allowed; and the [editor] command's placeholders."""

from __future__ import annotations

import math
import re
import shlex
from typing import Any, Callable, Mapping


def choice(*allowed: str) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if v not in allowed:
            raise ValueError("one of " + ", ".join(repr(a) for a in allowed))
        return v
    check.allowed = allowed  # type: ignore[attr-defined]
    return check


def boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("true or false")
    return v


def integer(lo: int | None = None, hi: int | None = None) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or (lo is not None and v < lo) or (
                hi is not None and v > hi):
            raise ValueError(f"an integer{_bounds(lo, hi)}")
        return v
    return check


def number(lo: float | None = None, hi: float | None = None, *, open_lo: bool = False
           ) -> Callable[[Any], float]:
    allowed = f"a {'finite ' if hi is None else ''}number{_bounds(lo, hi, open_lo)}"

    def check(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(allowed)
        try:
            v = float(v)
        except OverflowError:  # an integer beyond any float: TOML allows arbitrary digits
            raise ValueError(allowed) from None
        # NaN is neither below nor above any bound, so it is refused by name, with ±inf
        if not math.isfinite(v) or (lo is not None and (v < lo or (open_lo and v == lo))) or (
                hi is not None and v > hi):
            raise ValueError(allowed)
        return v
    return check


def _bounds(lo, hi, open_lo=False) -> str:
    if lo is not None and hi is not None:
        return f" {'>' if open_lo else '≥'} {lo} and ≤ {hi}"
    if lo is not None:
        return f" {'>' if open_lo else '≥'} {lo}"
    return ""


def text(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError("a string")
    return v


def optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A key whose default is "not set" (None): TOML has no null, so leaving the key out is
    the only way to say so; a value given is checked by ``check``."""
    def opt(v: Any) -> Any:
        return None if v is None else check(v)
    opt.optional = True  # type: ignore[attr-defined]
    return opt


def unit(v: Any) -> str:
    # a label in column headers and the app: one short line
    if not isinstance(v, str) or not v.strip() or len(v) > 16 or not v.isprintable():
        raise ValueError("a short unit name such as \"µm\" (1 to 16 printable characters)")
    return v.strip()


# -- the [editor] command template (tui/app/editor.py expands it with the same function) ---------

EDITOR_PLACEHOLDERS = ("mask", "image")  # {mask}: the mask to edit, {image}: its image
EDITOR_BRACES = ("a command line whose only placeholders are "
                 + " and ".join("{" + n + "}" for n in EDITOR_PLACEHOLDERS)
                 + " (write {{ and }} for a literal brace)")
_BRACE_RE = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def expand_editor_args(parts: list[str], values: Mapping[str, str]) -> tuple[list[str], bool]:
    """``parts`` (a shlex-split [editor] command) with each ``{name}`` replaced by
    ``values[name]`` and ``{{``/``}}`` by a literal brace, as str.format does, and whether any
    placeholder occurred. An unknown placeholder or an unbalanced brace raises ValueError
    naming it and the argument: a typo such as ``vi {mask`` must not open a file named
    ``{mask``."""
    out, used = [], False
    for part in parts:
        pieces, pos = [], 0
        for m in _BRACE_RE.finditer(part):
            pieces.append(part[pos:m.start()])
            pos = m.end()
            tok, name = m.group(0), m.group(1)
            if tok in ("{{", "}}"):
                pieces.append(tok[0])
            elif name is None:
                raise ValueError(f"a {tok!r} in argument {part!r} is never "
                                 + ("closed" if tok == "{" else "opened"))
            elif name not in EDITOR_PLACEHOLDERS:
                raise ValueError(f"unknown placeholder {tok} in argument {part!r}")
            else:
                pieces.append(values[name])
                used = True
        pieces.append(part[pos:])
        out.append("".join(pieces))
    return out, used


def editor_command(v: Any) -> str:
    v = text(v)
    try:
        parts = shlex.split(v)
    except ValueError as e:
        raise ValueError(f"{EDITOR_BRACES}; it cannot be split into arguments: {e}") from None
    try:
        expand_editor_args(parts, dict.fromkeys(EDITOR_PLACEHOLDERS, ""))
    except ValueError as e:
        raise ValueError(f"{EDITOR_BRACES}; here {e}") from None
    return v


def folder(v: Any) -> str:
    # "" or "." would put state.db, models and predictions among the data themselves
    if not isinstance(v, str) or v.strip() in ("", "."):
        raise ValueError("a folder name or path (not empty, not the data folder itself)")
    return v


def text_list(min_len: int = 0) -> Callable[[Any], list[str]]:
    def check(v: Any) -> list[str]:
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v) or len(v) < min_len:
            raise ValueError(f"a list of strings (at least {min_len})" if min_len else
                             "a list of strings")
        return list(v)
    return check


def codes(v: Any) -> list[str]:
    v = text_list(2)(v)
    if len(set(v)) != len(v):
        raise ValueError("a list of at least 2 distinct class names")
    return v


def extensions(v: Any) -> list[str]:
    v = text_list(1)(v)
    return [x.lower() if x.startswith(".") else "." + x.lower() for x in v]
