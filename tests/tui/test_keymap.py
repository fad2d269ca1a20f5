"""[keymap] in segtriage.toml: key strings read the way Textual reads keys, conflicts reported."""

from __future__ import annotations

import pytest

from segtriage.engine.store import Store
from segtriage.engine.project.config import load_config
from segtriage.tui.app.actions import ACTIONS, check_keymap
from segtriage.tui.keymap import KeyStringError, normalize_key

from .conftest import make_app, screen_text, settle


def db(root) -> Store:
    return Store(load_config(root).state_path(root) / "state.db")


# -- key strings -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, key", [
    ("a", "a"), ("A", "A"), ("?", "question_mark"), ("/", "slash"), ("+", "plus"),
    ("question_mark", "question_mark"), ("slash", "slash"), ("comma", "comma"),
    ("enter", "enter"), ("f5", "f5"), ("pagedown", "pagedown"), ("ctrl+e", "ctrl+e"),
    ("shift+ctrl+up", "ctrl+shift+up"),   # Textual reports modifiers sorted
    ("ctrl+m", "enter"), ("ctrl+i", "tab"),  # aliases: one key
    ("alt+left", "alt+left"), (" ctrl+? ", "ctrl+question_mark"),
])
def test_key_strings_follow_textual(text, key):
    assert normalize_key(text) == key


@pytest.mark.parametrize("text, why", [
    ("ctrl+", "a modifier with no key"),
    ("+a", "an empty part"),
    ("ctrl++", "an empty part"),
    ("", "an empty key"),
    ("Ctrl+e", "unknown modifier 'Ctrl'"),
    ("ctl+e", "unknown modifier 'ctl'"),
    ("ctrl+foo", "unknown key name 'foo'"),
    ("Enter", "unknown key name 'Enter'"),
    ("ctrl+ctrl+a", "a modifier twice"),
])
def test_malformed_key_strings_say_what_is_wrong(text, why):
    with pytest.raises(KeyStringError, match=why):
        normalize_key(text)


def _default_keys(scopes) -> dict[str, str]:
    owner: dict[str, str] = {}
    for a in ACTIONS:
        if a.scope not in scopes:
            continue
        for k in a.keys.split(","):
            key = normalize_key(k)
            assert key not in owner, f"{key}: {owner.get(key)} and {a.id}"
            owner[key] = a.id
    return owner


def test_default_keys_are_valid_and_distinct_within_a_scope():
    main = _default_keys(("app", "list"))
    preview = _default_keys(("preview",))
    assert check_keymap({}) == ({}, [])
    # the preview's keys shadow the app's and the list's on purpose, while it has the keys
    assert {k: (main[k], preview[k]) for k in set(main) & set(preview)} == {
        "j": ("cursor_down", "preview_down"), "down": ("cursor_down", "preview_down"),
        "k": ("cursor_up", "preview_up"), "up": ("cursor_up", "preview_up"),
        "n": ("next_review", "preview_next"), "c": ("cancel_job", "preview_splits"),
        "escape": ("clear_filter", "preview_leave")}


def test_the_preview_is_a_scope_of_its_own():
    # an app key is free in the preview; a preview key moves within the preview
    assert check_keymap({"preview_next": "x"}) == ({"preview_next": "x"}, [])
    overrides, problems = check_keymap({"preview_next": "h"})
    assert overrides == {"preview_next": "h", "preview_left": "left"}
    assert problems == ['keymap.preview_next = "h": h was preview_left\'s key; now it runs '
                        'preview_next and preview_left keeps left']
    # c is the only key of cancel_job (the app) and of preview_splits (the preview): each
    # scope refuses the one asking for it there
    overrides, problems = check_keymap({"preview_one": "c", "accept": "c"})
    assert overrides == {}
    assert [p.split(";")[0] for p in problems] == [
        'keymap.accept = "c": c is the only key of cancel_job',
        'keymap.preview_one = "c": c is the only key of preview_splits']


# -- resolving the keymap ----------------------------------------------------------------------

def test_a_default_key_given_to_another_action_moves_and_is_reported():
    overrides, problems = check_keymap({"accept": "j"})
    # j runs accept; cursor_down loses j (rebound to the key it keeps)
    assert overrides == {"accept": "j", "cursor_down": "down"}
    assert len(problems) == 1
    p = problems[0]
    assert 'keymap.accept = "j"' in p and "cursor_down" in p and "accept" in p
    assert "keeps down" in p


def test_a_malformed_key_is_refused_naming_it():
    overrides, problems = check_keymap({"edit": "ctrl+", "accept": "a,ctrl+foo"})
    assert overrides == {}
    assert problems == [
        'keymap.edit = "ctrl+": a modifier with no key; not applied (edit keeps e,enter)',
        'keymap.accept = "a,ctrl+foo": "ctrl+foo": unknown key name \'foo\' (Textual\'s names '
        'such as "enter", "f5", "pagedown", "slash", "question_mark"); not applied (accept '
        'keeps a)']


def test_two_entries_asking_for_one_key_are_both_refused():
    overrides, problems = check_keymap({"accept": "z", "flag": "Z,z"})
    assert overrides == {}
    assert problems == ['keymap.accept = "z" and keymap.flag = "Z,z": both ask for z; neither '
                        'applied (accept keeps a, flag keeps x)']


def test_the_only_key_of_another_action_is_refused():
    overrides, problems = check_keymap({"edit": "a"})
    assert overrides == {}
    assert len(problems) == 1 and "a is the only key of accept" in problems[0]
    assert "edit keeps e,enter" in problems[0]
    # once accept has another key, a is free
    assert check_keymap({"edit": "a", "accept": "A"}) == ({"edit": "a", "accept": "A"}, [])


def test_a_refusal_gives_the_defaults_back_and_may_displace_others():
    # edit = "a" is refused; then edit has e and enter again, and flag/undo take both: flag
    # (the first to lose edit its last key) is refused too, undo takes enter
    overrides, problems = check_keymap({"edit": "a", "flag": "e", "undo": "enter"})
    assert overrides == {"undo": "enter", "edit": "e"}
    assert [p.split(":")[0] for p in problems] == [
        'keymap.edit = "a"', 'keymap.flag = "e"', 'keymap.undo = "enter"']


def test_swapping_two_keys_is_no_conflict():
    assert check_keymap({"accept": "x", "flag": "a"}) == ({"accept": "x", "flag": "a"}, [])


def test_textuals_own_keys_are_refused():
    overrides, problems = check_keymap({"accept": "ctrl+q", "flag": "tab"})
    assert overrides == {}
    assert "ctrl+q is Textual's own key (quit)" in problems[0]
    assert "tab is Textual's own key (focus next)" in problems[1]


def test_aliases_and_spellings_conflict_like_the_key_they_are():
    overrides, problems = check_keymap({"accept": "ctrl+m", "help": "?"})
    # ctrl+m is enter, edit's key
    assert overrides == {"accept": "enter", "edit": "e", "help": "question_mark"}
    assert any("enter was edit's key" in p for p in problems)
    assert not any("help" in p for p in problems)          # ? is help's own key


def test_unknown_ids_are_still_reported():
    overrides, problems = check_keymap({"nope": "z"})
    assert overrides == {} and problems[0].startswith("keymap.nope: no such action")


# -- in the app --------------------------------------------------------------------------------

def _notices(app) -> list[str]:
    return [n.message for n in app._notifications]


async def test_a_key_taken_from_the_list_accepts_and_the_footer_shows_it(project):
    (project / "segtriage.toml").write_text('[keymap]\naccept = "j"\n')
    app = make_app(project)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert any('keymap.accept = "j"' in m and "cursor_down" in m for m in _notices(app))
        assert "j Accept" in screen_text(app).splitlines()[-1]
        await pilot.press("j")
        await settle(pilot)
        assert db(project).image("alpha.png").status == "accepted"
        assert app.current_row.name == "delta.png"   # accept moves on
        await pilot.press("down")                    # cursor_down keeps its arrow
        assert app.current_row.name == "charlie.png"
        assert app.keymap["cursor_down"] == "down" and app.keymap["accept"] == "j"


async def test_a_malformed_key_is_refused_with_a_notice_and_the_default_stays(project):
    (project / "segtriage.toml").write_text('[keymap]\nedit = "ctrl+"\n')
    app = make_app(project)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert any('keymap.edit = "ctrl+": a modifier with no key' in m for m in _notices(app))
        footer = screen_text(app).splitlines()[-1]
        assert "e Edit" in footer and "^ Edit" not in footer
        assert app.keymap["edit"] == "e,enter"
