"""Theme files (TOML) → textual Theme, validated.

Textual has no theme-file loader. A theme file holds the fields of ``textual.theme.Theme``:

    name = "segtriage-dark"        # required
    dark = true
    primary = "#5fafff"            # required; every colour is CSS syntax (#rgb, #rrggbb, rgb(), names)
    secondary = "…"   accent = "…"   warning = "…"   error = "…"   success = "…"
    foreground = "…"  background = "…"  surface = "…"  panel = "…"  boost = "…"
    [variables]                    # optional extra CSS variables; these three colour the preview:
    seg-mask = "#00d787"           # the mask overlay      (default: success)
    seg-pred = "#ff5fd7"           # the prediction overlay (default: accent)
    seg-uncertain = "#ffaf00"      # the uncertainty map   (default: warning)

A bad file raises ThemeError naming the file and the bad key; the app reports it and goes on
with the other themes.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import Theme

COLOR_FIELDS = ("primary", "secondary", "accent", "warning", "error", "success", "foreground",
                "background", "surface", "panel", "boost")
OTHER_FIELDS = {"name": str, "dark": bool, "luminosity_spread": float, "text_alpha": float}
PREVIEW_VARIABLES = {"seg-mask": "success", "seg-pred": "accent", "seg-uncertain": "warning"}


class ThemeError(ValueError):
    pass


def _check_color(path: Path, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ThemeError(f"{path}: {key} = {value!r} must be a colour string such as \"#5fafff\"")
    try:
        Color.parse(value)
    except ColorParseError:
        raise ThemeError(f"{path}: {key} = {value!r} is not a colour "
                         "(use #rgb, #rrggbb, rgb(r,g,b) or a colour name)") from None
    return value


def theme_from_dict(data: dict, path: Path) -> Theme:
    allowed = (*OTHER_FIELDS, *COLOR_FIELDS, "variables")
    for key in data:
        if key not in allowed:
            raise ThemeError(f"{path}: unknown key {key!r}; allowed: {', '.join(allowed)}")
    for key in ("name", "primary"):
        if key not in data:
            raise ThemeError(f"{path}: missing required key {key!r}")
    kw: dict = {}
    for key, typ in OTHER_FIELDS.items():
        if key in data:
            value = data[key]
            if typ is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, typ) or (typ is str and not value.strip()):
                raise ThemeError(f"{path}: {key} = {value!r} must be a {typ.__name__}")
            kw[key] = value
    for key in COLOR_FIELDS:
        if key in data:
            kw[key] = _check_color(path, key, data[key])
    variables = data.get("variables", {})
    if not isinstance(variables, dict):
        raise ThemeError(f"{path}: [variables] must be a table of name = \"value\"")
    for key, value in variables.items():
        if not isinstance(value, str):
            raise ThemeError(f"{path}: variables.{key} = {value!r} must be a string")
        if key in PREVIEW_VARIABLES:
            _check_color(path, f"variables.{key}", value)
    kw["variables"] = dict(variables)
    return Theme(**kw)


def load_theme_file(path: Path) -> Theme:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ThemeError(f"{path}: not valid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ThemeError(f"{path}: cannot read: {e}") from None
    return theme_from_dict(data, path)


def shipped_theme_dir() -> Path:
    from ... import themes  # the segtriage.themes package folder holds the .toml files

    return Path(themes.__file__).parent


def user_theme_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "segtriage" / "themes"


def load_themes(dirs: list[Path] | None = None) -> tuple[list[Theme], list[str]]:
    """Every theme in the shipped and user folders (later folders override by name), and the
    error messages of files that could not be used."""
    themes: dict[str, Theme] = {}
    errors: list[str] = []
    for d in dirs if dirs is not None else [shipped_theme_dir(), user_theme_dir()]:
        if not d.is_dir():
            continue
        for path in sorted(d.glob("*.toml")):
            try:
                theme = load_theme_file(path)
            except ThemeError as e:
                errors.append(str(e))
            else:
                themes[theme.name] = theme
    return list(themes.values()), errors


def preview_colors(theme: Theme) -> dict[str, tuple[int, int, int]]:
    """RGB of the mask, prediction and uncertainty overlays for a theme (any theme), and of
    the preview's background around the image ("outside": the theme's background)."""
    out = {}
    for var, fallback in PREVIEW_VARIABLES.items():
        text = theme.variables.get(var) or getattr(theme, fallback, None) or theme.primary
        try:
            c = Color.parse(text)
        except ColorParseError:
            c = Color.parse(theme.primary)
        out[var] = (c.r, c.g, c.b)
    bg = Color.parse(theme.to_color_system().generate()["background"])
    out["outside"] = (bg.r, bg.g, bg.b)
    return out
