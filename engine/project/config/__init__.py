"""`segtriage.toml`: typed sections, strict loading and the commented template.

sections.py holds every key once (type, default, checker, help); checks.py the checkers.
Loading is strict: an unknown section or key, or a bad value, raises ConfigError naming the
file, the key, the value and what is allowed, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .checks import EDITOR_BRACES, EDITOR_PLACEHOLDERS, expand_editor_args
from .sections import (SECTIONS, BackupConfig, EditorConfig, EngineConfig, LayoutConfig,
                       MeasureConfig, ModelConfig, ProjectConfig, ScoringConfig, Section,
                       SettingError, TuiConfig)

CONFIG_NAME = "segtriage.toml"
# keymap is free-form: action id → key string (validated by the TUI against its registry)
FREE_SECTIONS = {"keymap"}


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Config:
    project: ProjectConfig = field(default_factory=ProjectConfig)
    layout: LayoutConfig = field(default_factory=LayoutConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    editor: EditorConfig = field(default_factory=EditorConfig)
    backup: BackupConfig = field(default_factory=BackupConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    tui: TuiConfig = field(default_factory=TuiConfig)
    keymap: dict[str, str] = field(default_factory=dict)
    source: Path | None = None  # the file it was read from (None: the defaults)

    def state_path(self, root: Path | str) -> Path:
        return _state_path(root, self.project.state_dir)

    def with_values(self, **sections: dict[str, Any]) -> "Config":
        """A copy with some keys set, checked as the file's values are:
        ``cfg.with_values(layout={"kind": "split"})``."""
        return replace(self, **{name: replace(getattr(self, name), **keys)
                                for name, keys in sections.items()})

    def as_dict(self) -> dict:
        d = {name: getattr(self, name).as_dict() for name in SECTIONS}
        d["keymap"] = dict(self.keymap)
        return d


def default_config() -> Config:
    return Config()


def _state_path(root: Path | str, state_dir: str) -> Path:
    p = Path(state_dir)
    return p if p.is_absolute() else Path(root) / p


def _section(where: str, cls: type[Section], given: dict) -> Section:
    for key in given:
        if key not in cls.keys():
            raise ConfigError(f"{where}: unknown key {cls.section}.{key}; allowed: "
                              + ", ".join(cls.keys()))
    try:
        return cls(**given)
    except SettingError as e:
        raise ConfigError(f"{where}: {e}") from None


def _build(data: dict, source: Path | None = None) -> Config:
    where = str(source) if source else CONFIG_NAME
    for name, val in data.items():
        if name not in SECTIONS and name not in FREE_SECTIONS:
            raise ConfigError(f"{where}: unknown section [{name}]; allowed: "
                              + ", ".join(f"[{s}]" for s in [*SECTIONS, *FREE_SECTIONS]))
        if not isinstance(val, dict):
            raise ConfigError(f"{where}: [{name}] must be a table, got {val!r}")
    sections = {name: _section(where, cls, data.get(name, {})) for name, cls in SECTIONS.items()}
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
    default = ProjectConfig.default_of("state_dir")
    if not path.exists():
        return _state_path(root, default)
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
        return _state_path(root, default)
    given = project["state_dir"]
    try:
        return _state_path(root, ProjectConfig.keys()["state_dir"].metadata["check"](given))
    except ValueError as e:
        raise ConfigError(f"{path}: {SettingError('project', 'state_dir', given, str(e))}"
                          ) from None


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


def template() -> str:
    """A commented default config: every key, its default and what it means."""
    lines = ["# segtriage configuration. Every key is optional; the values shown are the",
             "# defaults. Unknown keys are errors, so a typo is reported, never ignored.", ""]
    for name, cls in SECTIONS.items():
        lines.append(f"[{name}]")
        for key, f in cls.keys().items():
            allowed = getattr(f.metadata["check"], "allowed", None)
            note = f"  ({' | '.join(allowed)})" if allowed else ""
            lines.append(f"# {f.metadata['help']}{note}")
            default = cls.default_of(key)
            if default is None:  # not set by default: shown commented out, with an example
                lines.append(f"# {key} = {_toml_value(f.metadata['example'])}")
                continue
            lines.append(f"{key} = {_toml_value(default)}")
        lines.append("")
    lines += ["[keymap]", "# rebind an action: action id = \"key\" (see `?` in the app for ids)",
              "# edit = \"ctrl+e\"",
              "# a painter key: its id from `?` in the painter, quoted (TOML keys with a dot)",
              "# \"paint.save\" = \"ctrl+w\"", ""]
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


__all__ = ["CONFIG_NAME", "EDITOR_BRACES", "EDITOR_PLACEHOLDERS", "SECTIONS", "BackupConfig",
           "Config", "ConfigError", "EditorConfig", "EngineConfig", "LayoutConfig",
           "MeasureConfig", "ModelConfig", "ProjectConfig", "ScoringConfig", "SettingError",
           "TuiConfig", "default_config", "expand_editor_args", "load_config", "state_path",
           "template", "write_template"]
