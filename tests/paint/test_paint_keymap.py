"""The painter's keys in a project's [keymap] (ids paint.*): checked by the app's rules
(tui/keymap.py), applied to the painter, named as bound in its hint line and help; the app
leaves those entries to the painter."""

from __future__ import annotations

from segtriage.tui.app.actions import check_keymap
from segtriage.tui.paint.app import PaintApp
from segtriage.tui.paint.keys import check_paint_keymap
from segtriage.tui.paint.document import open_document
from segtriage.tui.paint.view import PaintView


def test_paint_entries_are_checked_by_the_apps_rules():
    overrides, problems = check_paint_keymap({
        "paint.brush": "p", "paint.save": "ctrl+w", "paint.nope": "z", "accept": "A",
        "paint.undo": "x"})
    assert overrides == {"paint.brush": "p", "paint.save": "ctrl+w"}
    assert problems[0].startswith("keymap.paint.nope: no such painter key (known: "
                                  "paint.left, ")
    assert problems[1] == ('keymap.paint.undo = "x": x is the only key of paint.erase; not '
                           "applied (paint.undo keeps u; give paint.erase another key in "
                           "[keymap] first)")
    assert len(problems) == 2
    # a key another painter binding has besides others moves: that binding keeps the rest
    overrides, problems = check_paint_keymap({"paint.quit": "w"})
    assert overrides == {"paint.quit": "w", "paint.save": "ctrl+s"}
    assert problems == ['keymap.paint.quit = "w": w was paint.save\'s key; now it runs '
                        "paint.quit and paint.save keeps ctrl+s"]


def test_the_app_leaves_paint_entries_to_the_painter():
    overrides, problems = check_keymap({"paint.brush": "p", "accept": "A", "nope": "z"})
    assert overrides == {"accept": "A"}
    assert len(problems) == 1 and problems[0].startswith("keymap.nope: no such action")


async def test_a_projects_paint_keys_rebind_the_painter(project):
    (project / "segtriage.toml").write_text(
        '[keymap]\n"paint.brush" = "p"\n"paint.save" = "ctrl+w"\n"paint.nope" = "z"\n')
    doc = open_document(project / "alpha_mask.png")
    before = int(doc.mask.sum())
    app = PaintApp(doc)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        assert any(n.message.startswith("keymap.paint.nope: no such painter key")
                   for n in app._notifications)
        hint = str(app.query_one("#paint-hint").render())
        assert hint.startswith("? help  p paint  x erase") and "  w save" not in hint
        assert "^w save" in hint                           # no plain key left: as shown
        view = app.query_one(PaintView)
        view.set_cursor(5, 5)
        await pilot.press("space")                          # no longer the brush
        assert int(app.history.current.sum()) == before
        await pilot.press("p")
        assert int(app.history.current.sum()) > before
        await pilot.press("w")                              # rebound away from save
        assert app.history.dirty
        await pilot.press("ctrl+w")
        await pilot.pause()
        assert not app.history.dirty
        await pilot.press("question_mark")                  # the help names keys as bound
        await pilot.pause()
        text = str(app.screen.query_one("#paint-help Static").render())
        assert "  p                      paint (or erase, in erase mode) the brush at the " \
               "cursor  paint.brush" in text
        assert 'by its id: [keymap] "paint.save" = "ctrl+w"' in text
