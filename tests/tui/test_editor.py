"""The editor's argument list: config template, environment fallbacks, no shell."""

from __future__ import annotations

from pathlib import Path

import pytest

from segtriage.tui.app.editor import EditorError, editor_argv, is_painter

MASK = Path("/data/odd name [1]_mask.png")
IMAGE = Path("/data/odd name [1].png")


def test_template_placeholders_are_replaced_per_argument():
    argv = editor_argv("gimp --new-instance {mask} --ref={image}", MASK, IMAGE, env={})
    assert argv == ["gimp", "--new-instance", str(MASK), f"--ref={IMAGE}"]


def test_template_without_placeholder_gets_the_mask_appended():
    assert editor_argv("'/opt/My Editor/bin/ed' -x", MASK, IMAGE, env={}) == \
        ["/opt/My Editor/bin/ed", "-x", str(MASK)]


def test_environment_segtriage_editor_then_the_painter_never_visual_or_editor():
    import sys

    head = [sys.executable, "-m", "segtriage.tui.cli", "paint", "--image", str(IMAGE)]
    painter = head + ["--", str(MASK)]
    env = {"EDITOR": "vi", "VISUAL": "code --wait", "SEGTRIAGE_EDITOR": ""}
    assert editor_argv("", MASK, IMAGE, env=env) == painter   # text editors are not used
    env["SEGTRIAGE_EDITOR"] = "paint {image} {mask}"
    assert editor_argv("", MASK, IMAGE, env=env) == ["paint", str(IMAGE), str(MASK)]
    assert editor_argv("", MASK, IMAGE, env={"EDITOR": "vi"}) == painter
    assert editor_argv("", MASK, IMAGE, env={}, project=Path("/data")) == \
        head + ["--project", "/data", "--", str(MASK)]
    assert is_painter(painter) and not is_painter(["paint", str(MASK)])
    # the painter as an [editor] command works like any command
    assert editor_argv("segtriage paint {mask} --image {image}", MASK, IMAGE, env={}) == \
        ["segtriage", "paint", str(MASK), "--image", str(IMAGE)]


def test_other_braces_stay_as_they_are_in_an_environment_editor():
    env = {"SEGTRIAGE_EDITOR": "ed --fmt={x} {mask"}
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
    assert editor_argv("", mask, IMAGE, env={"SEGTRIAGE_EDITOR": "ed {mask}"}) == \
        ["ed", str(mask)]


def test_bad_quoting_is_a_clear_error():
    with pytest.raises(EditorError, match=r"\$SEGTRIAGE_EDITOR = .*cannot be split"):
        editor_argv("", MASK, IMAGE, env={"SEGTRIAGE_EDITOR": "vi 'unclosed"})


def test_the_painter_gets_the_renderer_it_is_given():
    import sys

    argv = editor_argv("", MASK, IMAGE, env={}, project=Path("/data"), renderer="kitty")
    assert argv == [sys.executable, "-m", "segtriage.tui.cli", "paint", "--image", str(IMAGE),
                    "--project", "/data", "--renderer", "kitty", "--", str(MASK)]
    assert is_painter(argv)
    # another editor knows nothing of renderers
    assert editor_argv("", MASK, IMAGE, env={"SEGTRIAGE_EDITOR": "gimp"}, renderer="kitty") == \
        ["gimp", str(MASK)]


async def test_e_opens_the_painter_with_the_apps_renderer(project):
    from contextlib import contextmanager

    from textual.widget import Widget

    from segtriage.tui import cli
    from segtriage.tui.paint.renderers import Renderer

    from .conftest import make_app, settle

    @contextmanager
    def no_suspend():   # run_test cannot suspend; tests/tui/test_tmux.py does it for real
        yield

    for renderer, name in ((None, "halfcell"),
                           (Renderer("kitty", widget=Widget, cell_px=(4, 8)), "kitty")):
        app = make_app(project, **({"renderer": renderer} if renderer else {}))
        calls = []
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot)
            app.suspend = no_suspend
            app.run_terminal_editor = lambda argv, cwd: calls.append(argv) or 0
            await pilot.press("e")
            await settle(pilot)
        mask = project / "alpha_mask.png"
        assert is_painter(calls[0]) and calls[0][-4:] == ["--renderer", name, "--", str(mask)]
        args = cli.build_parser().parse_args(calls[0][3:])   # what the painter reads
        assert (args.renderer, args.mask, args.project) == (name, str(mask), str(project))
