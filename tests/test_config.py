"""segtriage.toml: defaults, strict validation messages, the template."""

import tomllib

import pytest

from segtriage.engine.config import (ConfigError, default_config, load_config, template,
                                     write_template)


def test_defaults_without_file(tmp_path):
    cfg = load_config(tmp_path)
    assert cfg.project.codes == ["naw", "aye"]
    assert cfg.model.arch == "resnet34" and cfg.model.pretrained is False
    assert cfg.state_path(tmp_path) == tmp_path / ".segtriage"


def test_template_round_trips_to_defaults(tmp_path):
    write_template(tmp_path)
    assert load_config(tmp_path).as_dict() == default_config().as_dict()
    with pytest.raises(ConfigError, match="already exists"):
        write_template(tmp_path)
    assert "# U-Net encoder" in template()


def test_overrides(tmp_path):
    (tmp_path / "segtriage.toml").write_text(
        '[model]\narch = "resnet18"\nepochs = 3\n[layout]\nextensions = ["PNG", ".tif"]\n'
        '[keymap]\nedit = "ctrl+e"\n')
    cfg = load_config(tmp_path)
    assert cfg.model.arch == "resnet18" and cfg.model.epochs == 3
    assert cfg.layout.extensions == [".png", ".tif"]
    assert cfg.keymap == {"edit": "ctrl+e"}
    assert cfg.model.batch_size == 8  # untouched default


@pytest.mark.parametrize("text, expected", [
    ('[model]\narch = "resnet99"', "model.arch = 'resnet99' is not allowed; expected one of "
                                   "'resnet18', 'resnet34', 'resnet50'"),
    ('[model]\nepoch = 3', "unknown key model.epoch; allowed: arch"),
    ('[modle]\narch = "resnet18"', "unknown section [modle]"),
    ('[model]\nepochs = 0', "model.epochs = 0 is not allowed; expected an integer ≥ 1"),
    ('[model]\nepochs = 2.5', "model.epochs = 2.5 is not allowed"),
    ('[model]\npretrained = "yes"', "model.pretrained = 'yes' is not allowed; expected true or"),
    ('[model]\nlr = 0', "model.lr = 0 is not allowed; expected a number > 0.0"),
    ('[project]\ncodes = ["a", "a"]', "project.codes = ['a', 'a'] is not allowed"),
    ('[editor]\nmode = "emacs"', "editor.mode = 'emacs' is not allowed; expected one of "
                                 "'terminal', 'gui'"),
    ('[keymap]\nedit = ""', "keymap.edit = '' is not allowed"),
    ('model = 3', "[model] must be a table"),
    ('[model\n', "not valid TOML"),
])
def test_bad_values_are_named(tmp_path, text, expected):
    (tmp_path / "segtriage.toml").write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path)
    assert expected in str(e.value)
    assert str(tmp_path / "segtriage.toml") in str(e.value)


def test_template_is_valid_toml_and_lists_every_key():
    data = tomllib.loads(template())
    assert set(data) >= {"project", "layout", "model", "scoring", "editor", "backup", "engine",
                         "tui"}
