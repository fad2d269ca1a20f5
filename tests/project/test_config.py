"""segtriage.toml: defaults, strict validation messages, the template."""

import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

from segtriage.engine.project.config import SECTIONS, ConfigError, default_config, load_config, state_path, template, write_template
from segtriage.engine.project.scoring import score_image


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
    # NaN is below and above nothing, so range checks alone let it through to job time
    ('[model]\nlr = nan', "model.lr = nan is not allowed; expected a number > 0.0 and ≤ 10.0"),
    ('[scoring]\ndisagree_dice = nan', "scoring.disagree_dice = nan is not allowed; expected a "
                                       "number ≥ 0.0 and ≤ 1.0"),
    ('[scoring]\nlq_temperature = nan', "scoring.lq_temperature = nan is not allowed"),
    ('[engine]\nidle_exit_s = inf', "engine.idle_exit_s = inf is not allowed; expected a finite "
                                    "number ≥ 0.0"),
    ('[engine]\nidle_exit_s = 1' + "0" * 400, "is not allowed; expected a finite number ≥ 0.0"),
    ('[model]\nseed = 1' + "0" * 20, "model.seed = 1" + "0" * 20 + " is not allowed; expected "
                                     "an integer ≥ 0 and ≤ 9223372036854775807"),
    ('[project]\ncodes = ["a", "a"]', "project.codes = ['a', 'a'] is not allowed"),
    ('[editor]\nmode = "emacs"', "editor.mode = 'emacs' is not allowed; expected one of "
                                 "'terminal', 'gui'"),
    ('[keymap]\nedit = ""', "keymap.edit = '' is not allowed"),
    ('model = 3', "[model] must be a table"),
    ('[model\n', "not valid TOML"),
])
def test_bad_values_are_named(tmp_path, text, expected):
    assert_named(tmp_path, text, expected, load_config)


def _numeric_keys(kind):
    return [(section, key) for section, cls in SECTIONS.items()
            for key in cls.keys() if type(cls.default_of(key)) is kind]


@pytest.mark.parametrize("section, key", _numeric_keys(float))
@pytest.mark.parametrize("value", ["nan", "-nan", "inf", "-inf",
                                   pytest.param("1" + "0" * 400, id="int-beyond-float")])
def test_every_number_refuses_nan_infinity_and_overflow(tmp_path, section, key, value):
    assert_named(tmp_path, f"[{section}]\n{key} = {value}\n",
                 f"{section}.{key} = {tomllib.loads(f'v = {value}')['v']!r} is not allowed; "
                 "expected a ", load_config)


@pytest.mark.parametrize("section, key", _numeric_keys(int))
def test_every_integer_has_an_upper_bound(tmp_path, section, key):
    # TOML integers have as many digits as written; every consumer of these has a limit
    assert_named(tmp_path, f"[{section}]\n{key} = {2**64}\n",
                 f"{section}.{key} = {2**64} is not allowed; expected an integer", load_config)


@pytest.mark.parametrize("text, expected", [
    ('[scoring]\nconfident = 0.5', "scoring.confident = 0.5 is not allowed; expected a number "
                                   "> 0.5 and ≤ 1.0"),
    ('[scoring]\nlq_temperature = 1e-310', "scoring.lq_temperature = 1e-310 is not allowed; "
                                           "expected a number ≥ 1e-300 and ≤ 10.0"),
])
def test_scoring_edges_that_break_a_formula_are_refused(tmp_path, text, expected):
    assert_named(tmp_path, text, expected, load_config)


_SCORING_EDGES = {  # the extremes the [scoring] validators allow
    "uncertain_threshold": [0.5, 1.0], "lq_temperature": [1e-300, 10.0],
    "match_iou": [5e-324, 1.0], "boundary_px": [0, 64], "disagree_dice": [0.0, 1.0],
    "confident": [math.nextafter(0.5, 1.0), 1.0], "small_object_px": [1, 100_000],
}


@pytest.mark.parametrize("key, value", [(k, v) for k, vs in _SCORING_EDGES.items() for v in vs])
def test_every_allowed_scoring_value_keeps_a_right_mask_right(tmp_path, key, value):
    """At each extreme the config allows, a mask the model agrees with everywhere has no
    confident disagreement and full label quality (confident = 0.5 gave every image an error
    region, even an empty mask under an empty prediction)."""
    (tmp_path / "segtriage.toml").write_text(f"[scoring]\n{key} = {value!r}\n")
    prm = load_config(tmp_path).scoring
    obj = np.zeros((32, 32), np.uint8)
    obj[8:20, 10:24] = 1
    cases = [(obj * 255, obj),                                      # saturated, one object
             (np.where(obj > 0, 0.97, 0.02).astype(np.float32), obj),  # sure, not saturated
             (np.full((32, 32), 0.01, np.float32), obj * 0)]         # empty and empty
    for prob, mask in cases:
        s = score_image(prob, mask, cfg_scoring=prm)
        assert (s["error_regions"], s["missed_confident"], s["extra_confident"]) == (0, 0, 0)
        assert s["dice"] == 1.0 and s["label_quality"] == 1.0
        assert s["lq_softmin"] is not None and s["lq_softmin"] > 0.9
        assert s["category"] in ("agrees", "uncertain")


_PLACEHOLDERS = "expected a command line whose only placeholders are {mask} and {image}"


@pytest.mark.parametrize("command, problem", [
    ("vi {mask", "a '{' in argument '{mask' is never closed"),
    ("vi mask}", "a '}' in argument 'mask}' is never opened"),
    ("gimp --ref={img} {mask}", "unknown placeholder {img} in argument '--ref={img}'"),
    ("vi {}", "unknown placeholder {} in argument '{}'"),
    ("vi {{mask}", "a '}' in argument '{{mask}' is never opened"),
    ("vi '{mask}", "it cannot be split into arguments: No closing quotation"),
])
def test_editor_command_typos_are_refused_listing_the_placeholders(tmp_path, command, problem):
    # a typo opened the editor on a new file literally named "{mask"
    (tmp_path / "segtriage.toml").write_text(f"[editor]\ncommand = '''{command}'''\n")
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "segtriage.toml") in msg
    assert f"editor.command = {command!r} is not allowed; {_PLACEHOLDERS}" in msg
    assert "(write {{ and }} for a literal brace)" in msg and problem in msg


@pytest.mark.parametrize("command", [
    "", "vi", "gimp {mask} --ref={image}", "sh -c 'ed ${{HOME}}/x \"$0\"' {mask}",
    "paint {{literal}} {image}",
])
def test_editor_commands_with_known_placeholders_load(tmp_path, command):
    (tmp_path / "segtriage.toml").write_text(f"[editor]\ncommand = '''{command}'''\n")
    assert load_config(tmp_path).editor.command == command


def test_the_editor_placeholders_live_in_the_engine_for_the_app_to_use():
    from segtriage.engine.project import config
    from segtriage.tui.app import editor
    assert config.EDITOR_PLACEHOLDERS == ("mask", "image")
    assert editor.EDITOR_PLACEHOLDERS is config.EDITOR_PLACEHOLDERS


def assert_named(tmp_path, text: str, expected: str, read) -> None:
    """``read`` of a folder whose config is ``text`` fails naming the file and the problem."""
    (tmp_path / "segtriage.toml").write_text(text)
    with pytest.raises(ConfigError) as e:
        read(tmp_path)
    assert expected in str(e.value)
    assert str(tmp_path / "segtriage.toml") in str(e.value)


def test_template_is_valid_toml_and_lists_every_key():
    data = tomllib.loads(template())
    assert set(data) >= {"project", "layout", "model", "scoring", "editor", "backup", "engine",
                         "tui"}


# -- the state folder: found from [project] state_dir alone --------------------------------

@pytest.mark.parametrize("broken", [
    '[model]\nlr = "fast"',            # a bad value
    '[model]\nlr = fast',              # not TOML at all (an unquoted string)
    '[modle]\nlr = 0.001',             # an unknown section
    '[scoring]\ntau = 0.8',            # an unknown key
])
def test_state_path_reads_only_state_dir(tmp_path, broken):
    # clients find the running engine (and stop it, cancel its job) while another section is
    # broken; load_config, for whatever needs the whole file, still refuses it
    cfg = tmp_path / "segtriage.toml"
    cfg.write_text(broken)
    assert state_path(tmp_path) == tmp_path / ".segtriage"
    cfg.write_text(f'[project]\nstate_dir = "st"  # here\n{broken}')
    assert state_path(tmp_path) == tmp_path / "st"
    # the generated template mentions state_dir in comments too
    cfg.write_text(template().replace('state_dir = ".segtriage"', 'state_dir = "/abs/st"')
                   .replace("[model]", broken, 1))
    assert state_path(tmp_path) == Path("/abs/st")
    with pytest.raises(ConfigError):
        load_config(tmp_path)


@pytest.mark.parametrize("text, expected", [
    ('[project]\nstate_dir = 5', "project.state_dir = 5 is not allowed; expected a folder"),
    # the data folder itself would mix state.db, models and predictions into the data
    ('[project]\nstate_dir = ""', "project.state_dir = '' is not allowed; expected a folder"),
    ('[project]\nstate_dir = "."', "not the data folder itself"),
    ('project = 3', "[project] must be a table"),
    # not TOML, and state_dir is where the error is or cannot be told from the rest
    ('[project]\nstate_dir = st', "not valid TOML"),
    ('[project]\nstate_dir = "a"\n[model\nstate_dir = "b"', "project.state_dir"),
    ('[model]\nstate_dir = "st"\nlr = fast', "project.state_dir"),
])
def test_state_path_names_a_bad_state_dir(tmp_path, text, expected):
    assert_named(tmp_path, text, expected, state_path)


def test_state_path_agrees_with_the_full_config(tmp_path):
    assert state_path(tmp_path) == load_config(tmp_path).state_path(tmp_path)
    (tmp_path / "segtriage.toml").write_text('[project]\nstate_dir = "../elsewhere"\n')
    assert state_path(tmp_path) == load_config(tmp_path).state_path(tmp_path) \
        == tmp_path / "../elsewhere"


def test_a_jobs_overrides_are_checked_as_the_files_values_are(tmp_path):
    (tmp_path / "segtriage.toml").write_text('[model]\nepochs = 5\nfolds = 4\n')
    model = load_config(tmp_path).model
    got = model.with_job_params({"epochs": 2, "folds": None, "arch": "resnet50", "scope": "x"})
    assert (got.epochs, got.folds, got.arch) == (2, 4, "resnet50")  # None and others: unset
    assert model.with_job_params({}) == model
    from segtriage.engine.project.config import SettingError
    for params, message in [
            ({"epochs": 0}, "model.epochs = 0 is not allowed; expected an integer ≥ 1 and ≤ 10000"),
            ({"folds": 1}, "model.folds = 1 is not allowed; expected an integer ≥ 2 and ≤ 20"),
            ({"folds": 21}, "model.folds = 21 is not allowed; expected an integer ≥ 2 and ≤ 20"),
            ({"gpus": 0}, "model.gpus = 0 is not allowed; expected an integer ≥ 1 and ≤ 1024"),
            ({"lr": 0}, "model.lr = 0 is not allowed; expected a number > 0.0 and ≤ 10.0"),
            ({"arch": "vgg"}, "model.arch = 'vgg' is not allowed; expected one of 'resnet18', "
                              "'resnet34', 'resnet50'")]:
        with pytest.raises(SettingError) as e:
            model.with_job_params(params)
        assert str(e.value) == message and e.value.key == next(iter(params))


def test_a_choice_keys_values_come_from_its_checker():
    from segtriage.engine.project.config import ModelConfig

    assert ModelConfig.choices("arch") == ("resnet18", "resnet34", "resnet50")
    assert ModelConfig.choices("device") == ("auto", "cpu", "cuda", "mps")
