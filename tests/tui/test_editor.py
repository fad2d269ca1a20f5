"""The editor's argument list: config template, environment fallbacks, no shell."""

from __future__ import annotations

from pathlib import Path

import pytest

from segtriage.tui.editor import EditorError, editor_argv

MASK = Path("/data/odd name [1]_mask.png")
IMAGE = Path("/data/odd name [1].png")


def test_template_placeholders_are_replaced_per_argument():
    argv = editor_argv("gimp --new-instance {mask} --ref={image}", MASK, IMAGE, env={})
    assert argv == ["gimp", "--new-instance", str(MASK), f"--ref={IMAGE}"]


def test_template_without_placeholder_gets_the_mask_appended():
    assert editor_argv("'/opt/My Editor/bin/ed' -x", MASK, IMAGE, env={}) == \
        ["/opt/My Editor/bin/ed", "-x", str(MASK)]


def test_environment_order_segtriage_visual_editor():
    env = {"EDITOR": "vi", "VISUAL": "code --wait", "SEGTRIAGE_EDITOR": ""}
    assert editor_argv("", MASK, IMAGE, env=env) == ["code", "--wait", str(MASK)]
    env["SEGTRIAGE_EDITOR"] = "paint {image} {mask}"
    assert editor_argv("", MASK, IMAGE, env=env) == ["paint", str(IMAGE), str(MASK)]
    assert editor_argv("", MASK, IMAGE, env={"EDITOR": "vi"}) == ["vi", str(MASK)]


def test_other_braces_stay_as_they_are_in_an_environment_editor():
    env = {"EDITOR": "ed --fmt={x} {mask"}
    assert editor_argv("", MASK, IMAGE, env=env) == ["ed", "--fmt={x}", "{mask", str(MASK)]
    env = {"SEGTRIAGE_EDITOR": "ed --fmt={x} {mask}"}
    assert editor_argv("", MASK, IMAGE, env=env) == ["ed", "--fmt={x}", str(MASK)]


def test_config_template_braces_follow_the_validated_rules():
    # a template the config refuses (a Config not built by load_config) never opens "{mask"
    with pytest.raises(EditorError, match=r"\[editor\] command = 'vi \{mask' is not a command "
                                          r"line whose only placeholders are \{mask\} and "
                                          r"\{image\}.*never closed"):
        editor_argv("vi {mask", MASK, IMAGE, env={})
    with pytest.raises(EditorError, match=r"unknown placeholder \{x\}"):
        editor_argv("ed --fmt={x} {mask}", MASK, IMAGE, env={})
    # {{ and }} are literal braces, as in str.format
    assert editor_argv("sh -c 'ed ${{HOME}}/x \"$0\"' {mask}", MASK, IMAGE, env={}) == \
        ["sh", "-c", 'ed ${HOME}/x "$0"', str(MASK)]
    assert editor_argv("ed {{mask}}", MASK, IMAGE, env={}) == ["ed", "{mask}", str(MASK)]


def test_placeholders_are_replaced_once_not_inside_a_path():
    mask = Path("/data/{image}_mask.png")
    assert editor_argv("ed {mask}", mask, IMAGE, env={}) == ["ed", str(mask)]
    assert editor_argv("", mask, IMAGE, env={"EDITOR": "ed {mask}"}) == ["ed", str(mask)]


def test_no_editor_and_bad_quoting_are_clear_errors():
    with pytest.raises(EditorError, match="no mask editor configured"):
        editor_argv("", MASK, IMAGE, env={})
    with pytest.raises(EditorError, match=r"\$EDITOR = .*cannot be split"):
        editor_argv("", MASK, IMAGE, env={"EDITOR": "vi 'unclosed"})
