"""`segtriage.toml`: schema, defaults, strict validation and the commented template.

The schema is one table of (section, key) → (default, checker, help). Validation is strict: an
unknown section or key, or a bad value, raises ConfigError naming the file, the key, the value and
what is allowed, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import math
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Mapping

CONFIG_NAME = "segtriage.toml"


class ConfigError(ValueError):
    pass


# -- checkers: each returns the (possibly normalised) value or raises ValueError(allowed) ----

def _choice(*allowed: str) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if v not in allowed:
            raise ValueError("one of " + ", ".join(repr(a) for a in allowed))
        return v
    check.allowed = allowed  # type: ignore[attr-defined]
    return check


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("true or false")
    return v


def _int(lo: int | None = None, hi: int | None = None) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or (lo is not None and v < lo) or (
                hi is not None and v > hi):
            raise ValueError(f"an integer{_range(lo, hi)}")
        return v
    return check


def _float(lo: float | None = None, hi: float | None = None, *, open_lo: bool = False
           ) -> Callable[[Any], float]:
    allowed = f"a {'finite ' if hi is None else ''}number{_range(lo, hi, open_lo)}"

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


def _range(lo, hi, open_lo=False) -> str:
    if lo is not None and hi is not None:
        return f" {'>' if open_lo else '≥'} {lo} and ≤ {hi}"
    if lo is not None:
        return f" {'>' if open_lo else '≥'} {lo}"
    return ""


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError("a string")
    return v


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A key whose default is "not set" (None): TOML has no null, so leaving the key out is
    the only way to say so; a value given is checked by ``check``."""
    def opt(v: Any) -> Any:
        return check(v)
    opt.optional = True  # type: ignore[attr-defined]
    return opt


def _unit(v: Any) -> str:
    # a label in column headers and the app: one short line
    if not isinstance(v, str) or not v.strip() or len(v) > 16 or not v.isprintable():
        raise ValueError("a short unit name such as \"µm\" (1 to 16 printable characters)")
    return v.strip()


# -- the [editor] command template (tui/editor.py expands it with the same function) ---------

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


def _editor_command(v: Any) -> str:
    v = _str(v)
    try:
        parts = shlex.split(v)
    except ValueError as e:
        raise ValueError(f"{EDITOR_BRACES}; it cannot be split into arguments: {e}") from None
    try:
        expand_editor_args(parts, dict.fromkeys(EDITOR_PLACEHOLDERS, ""))
    except ValueError as e:
        raise ValueError(f"{EDITOR_BRACES}; here {e}") from None
    return v


def _folder(v: Any) -> str:
    # "" or "." would put state.db, models and predictions among the data themselves
    if not isinstance(v, str) or v.strip() in ("", "."):
        raise ValueError("a folder name or path (not empty, not the data folder itself)")
    return v


def _str_list(min_len: int = 0) -> Callable[[Any], list[str]]:
    def check(v: Any) -> list[str]:
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v) or len(v) < min_len:
            raise ValueError(f"a list of strings (at least {min_len})" if min_len else
                             "a list of strings")
        return list(v)
    return check


def _codes(v: Any) -> list[str]:
    v = _str_list(2)(v)
    if len(set(v)) != len(v):
        raise ValueError("a list of at least 2 distinct class names")
    return v


def _extensions(v: Any) -> list[str]:
    v = _str_list(1)(v)
    return [x.lower() if x.startswith(".") else "." + x.lower() for x in v]


# -- the schema ------------------------------------------------------------------------------
# section → key → (default, checker, help line for the template)
SCHEMA: dict[str, dict[str, tuple[Any, Callable[[Any], Any], str]]] = {
    "project": {
        "codes": (["naw", "aye"], _codes,
                  "class names; index 0 is background, the rest are objects"),
        "state_dir": (".segtriage", _folder,
                      "project state (database, models, predictions), relative to the folder"),
        "pixel_size": (None, _optional(_float(0.0, open_lo=True)),
                       "size of one pixel in `unit` (e.g. 0.65); unset: measurements in pixels "
                       "only"),
        "unit": ("µm", _unit, "the unit of pixel_size (measurements: lengths in it, areas in "
                              "it squared)"),
    },
    "layout": {
        "kind": ("auto", _choice("auto", "seed", "split"),
                 "seed: NAME.EXT beside NAME_mask.EXT; split: images/ and masks/; auto detects"),
        "mask_suffix": ("_mask", _str, "seed layout: suffix that marks a mask"),
        "images_dir": ("images", _str, "split layout: folder of images"),
        "masks_dir": ("masks", _str, "split layout: folder of masks"),
        "extensions": ([".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"], _extensions,
                       "image and mask file extensions"),
        "ignore": ([], _str_list(), "extra glob patterns to ignore (relative paths)"),
    },
    "model": {
        "arch": ("resnet34", _choice("resnet18", "resnet34", "resnet50"), "U-Net encoder"),
        "pretrained": (False, _bool,
                       "ImageNet weights (must already be in the torch cache: no download)"),
        "size_policy": ("resize", _choice("resize", "crop", "pad"),
                        "how images are made square for the network"),
        "image_size": (128, _int(0, 4096), "network input side in pixels; 0 = native size"),
        "batch_size": (8, _int(1, 1024), "batch size (lowered automatically for tiny sets)"),
        "epochs": (8, _int(1, 10_000), "epochs of fit_one_cycle"),
        "min_steps": (200, _int(0, 1_000_000),
                      "minimum optimizer steps per training; epochs are raised to reach it"),
        "lr": (1e-3, _float(0.0, 10.0, open_lo=True), "maximum learning rate"),
        "augment": (True, _bool, "random flips, 90° turns, small warps and brightness changes "
                                 "while training"),
        "folds": (3, _int(2, 20), "models trained by crossval (out-of-fold scoring)"),
        "valid_pct": (0.2, _float(0.0, 0.9), "share of labelled images held out for validation"),
        # TOML's own limit: torch.manual_seed overflows on a larger one, at training time
        "seed": (42, _int(0, 2**63 - 1), "random seed for the validation split and folds"),
        "device": ("auto", _choice("auto", "cpu", "cuda", "mps"), "where to train and predict"),
        "precision": ("auto", _choice("auto", "fp32", "bf16", "fp16"),
                      "inference and mixed-precision training (CPU: bf16 only)"),
        "gpus": (1, _int(1, 1024), "GPUs (processes) for training and prediction"),
        "cpu_threads": (0, _int(0, 1024),
                        "torch threads on the CPU; 0 = auto: one per core, but one core left "
                        "free in bf16 (docs/benchmarks.md, CPU threads)"),
    },
    "scoring": {
        "uncertain_threshold": (0.8, _float(0.5, 1.0),
                                "τ: a pixel is uncertain when its max class probability < τ"),
        # (1 − s)/T must stay finite: below ~5.6e-309 it overflows and lq_softmin is NaN
        "lq_temperature": (0.1, _float(1e-300, 10.0),
                           "temperature of cleanlab's soft-minimum label quality"),
        "match_iou": (0.5, _float(0.0, 1.0, open_lo=True), "IoU for matching objects"),
        "boundary_px": (2, _int(0, 64), "half-width of the boundary band in pixels"),
        "disagree_dice": (0.8, _float(0.0, 1.0),
                          "Dice or label quality below this, model confident → disagrees"),
        # > 0.5: the cut-off 2·confident − 1 of scoring's confident disagreement d ≥ cut-off
        # is 0 at 0.5, and d ≥ 0 holds for every pixel, agreeing ones too (all images wrong)
        "confident": (0.9, _float(0.5, 1.0, open_lo=True),
                      "core confidence (object interiors and unsure pixels away from edges) "
                      "at or above this counts as a confident model"),
        "small_object_px": (9, _int(1, 100_000),
                            "objects smaller than this are left out of the shape averages"),
    },
    "measure": {
        "split": ("none", _choice("none", "watershed"),
                  "touching objects: none (connected components) or watershed (split them)"),
        "min_distance": (5, _int(1, 1000),
                         "watershed: pixels between two object centres for them to be two"),
        "compactness": (0.0, _float(0.0, 1e6),
                        "watershed: 0 the classic one; larger gives straighter, more even cuts"),
        "exclude_border_from_sizes": (True, _bool,
                                      "objects touching the image border are left out of size "
                                      "means (they still count for density)"),
    },
    "editor": {
        "command": ("", _editor_command,
                    "argv template with {mask} and {image} ({{ and }}: a literal brace); empty: "
                    "$SEGTRIAGE_EDITOR, $VISUAL, $EDITOR"),
        "mode": ("terminal", _choice("terminal", "gui"),
                 "terminal: suspend the TUI; gui: launch detached"),
    },
    "backup": {
        "destination": ("", _str, "snapshot store; empty: <state_dir>/backups (prefer "
                                  "another disk; one folder per project)"),
        "before_train": (True, _bool, "snapshot automatically before every training job"),
    },
    "engine": {
        "idle_exit_s": (900.0, _float(0.0), "exit after this long idle with no client (0: never)"),
        "watch": ("auto", _choice("auto", "native", "polling", "off"),
                  "file watching; polling for network file systems"),
        "debounce_s": (0.5, _float(0.0, 60.0), "wait this long after the last change to a file"),
    },
    "tui": {
        "theme": ("segtriage-dark", _str, "theme name (themes/*.toml or a user theme)"),
        "image_renderer": ("halfcell", _choice("halfcell", "auto", "kitty", "sixel", "unicode"),
                           "terminal image protocol for the preview"),
    },
}
# keymap is free-form: action id → key string (validated by the TUI against its registry)
FREE_SECTIONS = {"keymap"}


class Section(SimpleNamespace):
    def as_dict(self) -> dict:
        return dict(vars(self))


@dataclass
class Config:
    project: Section
    layout: Section
    model: Section
    scoring: Section
    measure: Section
    editor: Section
    backup: Section
    engine: Section
    tui: Section
    keymap: dict[str, str]
    source: Path | None = None

    def state_path(self, root: Path | str) -> Path:
        return _state_path(root, self.project.state_dir)

    def as_dict(self) -> dict:
        d = {name: getattr(self, name).as_dict() for name in SCHEMA}
        d["keymap"] = dict(self.keymap)
        return d


def default_config() -> Config:
    return _build({})


def _checked(where: str, section: str, key: str, value: Any) -> Any:
    """One key's value checked against the schema: the only place a value is judged."""
    try:
        return SCHEMA[section][key][1](value)
    except ValueError as e:
        raise ConfigError(f"{where}: {section}.{key} = {value!r} is not allowed; "
                          f"expected {e}") from None


def _state_path(root: Path | str, state_dir: str) -> Path:
    p = Path(state_dir)
    return p if p.is_absolute() else Path(root) / p


def _build(data: dict, source: Path | None = None) -> Config:
    where = str(source) if source else CONFIG_NAME
    sections: dict[str, Any] = {}
    for name, val in data.items():
        if name not in SCHEMA and name not in FREE_SECTIONS:
            raise ConfigError(f"{where}: unknown section [{name}]; allowed: "
                              + ", ".join(f"[{s}]" for s in [*SCHEMA, *FREE_SECTIONS]))
        if not isinstance(val, dict):
            raise ConfigError(f"{where}: [{name}] must be a table, got {val!r}")
    for name, keys in SCHEMA.items():
        given = data.get(name, {})
        for key in given:
            if key not in keys:
                raise ConfigError(f"{where}: unknown key {name}.{key}; allowed: "
                                  + ", ".join(keys))
        values = {}
        for key, (default, _check, _help) in keys.items():
            if key in given:
                values[key] = _checked(where, name, key, given[key])
            else:
                values[key] = list(default) if isinstance(default, list) else default
        sections[name] = Section(**values)
    keymap = data.get("keymap", {})
    for k, v in keymap.items():
        if not isinstance(v, str) or not v.strip():
            raise ConfigError(f"{where}: keymap.{k} = {v!r} is not allowed; expected a key "
                              "string such as \"ctrl+e\" or \"e,enter\"")
    return Config(**sections, keymap=dict(keymap), source=source)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None


def load_config(root: Path | str) -> Config:
    """The config of a data folder: defaults overlaid with ``root/segtriage.toml`` if present."""
    path = Path(root) / CONFIG_NAME
    if not path.exists():
        return default_config()
    try:
        data = tomllib.loads(_read_text(path))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    return _build(data, path)


_HEADER = re.compile(r"\[\s*([^\[\]]+?)\s*\]\s*(#.*)?")


def _state_dir_line(text: str) -> dict | None:
    """[project] as far as ``state_dir`` goes, from a file that is not valid TOML (say an
    unquoted string in [model]): {} when nothing in it mentions state_dir, the one
    ``state_dir = ...`` line of [project] parsed alone, or None when it cannot be told."""
    section, found = None, []
    for line in map(str.strip, text.splitlines()):
        m = _HEADER.fullmatch(line)
        if m:
            section = m.group(1)
        elif "state_dir" in line and not line.startswith("#"):
            found.append((section, line))
    if not found:
        return {}
    if len(found) == 1 and found[0][0] == "project":
        try:
            data = tomllib.loads(found[0][1])
        except tomllib.TOMLDecodeError:
            return None
        if list(data) == ["state_dir"]:
            return data
    return None


def state_path(root: Path | str) -> Path:
    """Where a data folder's state lives (``[project] state_dir``), read leniently: nothing
    else in the file is looked at, so the running engine can still be found, stopped and asked
    about while another section is broken (a job started meanwhile fails with that error).
    A bad state_dir itself, or a file it cannot be told from, is a ConfigError naming it."""
    path = Path(root) / CONFIG_NAME
    if not path.exists():
        return _state_path(root, SCHEMA["project"]["state_dir"][0])
    text = _read_text(path)
    try:
        project = tomllib.loads(text).get("project", {})
    except tomllib.TOMLDecodeError as e:
        project = _state_dir_line(text)
        if project is None:
            raise ConfigError(f"{path}: not valid TOML: {e}; so where the project state lives "
                              "(project.state_dir) cannot be read from it") from None
    if not isinstance(project, dict):
        raise ConfigError(f"{path}: [project] must be a table, got {project!r}")
    if "state_dir" not in project:
        return _state_path(root, SCHEMA["project"]["state_dir"][0])
    return _state_path(root, _checked(str(path), "project", "state_dir", project["state_dir"]))


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


# what the template shows, commented out, for keys that are unset by default
_EXAMPLES = {("project", "pixel_size"): 0.65}


def template() -> str:
    """A commented default config: every key, its default and what it means."""
    lines = ["# segtriage configuration. Every key is optional; the values shown are the",
             "# defaults. Unknown keys are errors, so a typo is reported, never ignored.", ""]
    for name, keys in SCHEMA.items():
        lines.append(f"[{name}]")
        for key, (default, check, help_) in keys.items():
            allowed = getattr(check, "allowed", None)
            note = f"  ({' | '.join(allowed)})" if allowed else ""
            lines.append(f"# {help_}{note}")
            if default is None:  # not set by default: shown commented out, with an example
                lines.append(f"# {key} = {_toml_value(_EXAMPLES[name, key])}")
                continue
            lines.append(f"{key} = {_toml_value(default)}")
        lines.append("")
    lines += ["[keymap]", "# rebind an action: action id = \"key\" (see `?` in the app for ids)",
              "# edit = \"ctrl+e\"", ""]
    return "\n".join(lines)


def write_template(root: Path | str, *, force: bool = False) -> Path:
    path = Path(root) / CONFIG_NAME
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists (use --force to overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(template(), encoding="utf-8")
    tmp.replace(path)
    return path
