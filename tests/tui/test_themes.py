"""Theme files: the shipped ones load, bad ones name the file and the key."""

from __future__ import annotations

import pytest

from segtriage.tui.app.themes import ThemeError, load_theme_file, load_themes, preview_colors, shipped_theme_dir, user_theme_dir


def test_shipped_themes_load_without_errors():
    themes, errors = load_themes([shipped_theme_dir()])
    assert errors == []
    names = {t.name for t in themes}
    assert {"segtriage-dark", "segtriage-light", "segtriage-256"} <= names
    light = next(t for t in themes if t.name == "segtriage-light")
    assert light.dark is False
    assert preview_colors(light)["seg-mask"] == (0x00, 0xB0, 0x50)


def test_256_colour_theme_uses_only_palette_colours():
    from textual.color import Color

    cube = {0x00, 0x5F, 0x87, 0xAF, 0xD7, 0xFF}
    grey = {8 + 10 * i for i in range(24)}
    theme = load_theme_file(shipped_theme_dir() / "segtriage-256.toml")
    for field in ("primary", "secondary", "accent", "warning", "error", "success",
                  "foreground", "background", "surface", "panel", *()):
        c = Color.parse(getattr(theme, field))
        rgb = {c.r, c.g, c.b}
        assert rgb <= cube or (c.r == c.g == c.b and c.r in grey), (field, c.hex)


@pytest.mark.parametrize("text, match", [
    ('name = "x"\nprimary = "#123456"\nprimry = "#fff"\n', r"bad\.toml: unknown key 'primry'"),
    ('name = "x"\n', r"bad\.toml: missing required key 'primary'"),
    ('name = "x"\nprimary = "blurple"\n', r"bad\.toml: primary = 'blurple' is not a colour"),
    ('name = "x"\nprimary = "#fff"\ndark = "yes"\n', r"bad\.toml: dark = 'yes' must be a bool"),
    ('name = "x"\nprimary = "#fff"\n[variables]\nseg-mask = "nope"\n',
     r"bad\.toml: variables\.seg-mask = 'nope' is not a colour"),
    ('name = x\n', r"bad\.toml: not valid TOML"),
])
def test_bad_theme_files_name_file_and_key(tmp_path, text, match):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ThemeError, match=match):
        load_theme_file(p)


def test_user_themes_from_xdg_config_override_and_report_bad_files(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    d = user_theme_dir()
    assert d == tmp_path / "segtriage" / "themes"
    d.mkdir(parents=True)
    (d / "mine.toml").write_text('name = "mine"\nprimary = "#ff0000"\n')
    (d / "broken.toml").write_text('name = "broken"\n')
    themes, errors = load_themes()
    assert "mine" in {t.name for t in themes}
    assert len(errors) == 1 and "broken.toml" in errors[0] and "'primary'" in errors[0]
    # a theme without preview variables falls back to its success / accent / warning colours
    mine = next(t for t in themes if t.name == "mine")
    assert preview_colors(mine)["seg-mask"] == (255, 0, 0)
