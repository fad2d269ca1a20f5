"""The painter in Pilot: opening, zoom, pan, the cursor's status line, painting and saving
through the project's mask history (the row turns edited and is re-scored; revert restores
it), quitting with unsaved changes, saving a plain file, and files that cannot be opened."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from PIL import Image

from segtriage.tui.paint.app import PaintApp, QuitScreen
from segtriage.tui.paint.document import DocumentError, open_document
from segtriage.tui.paint.view import PaintView
from segtriage.engine.project.project import Project


def _status(app) -> str:
    return str(app.query_one("#paint-status").render())


def _plain_pair(tmp_path, h=100, w=150):
    img = np.zeros((h, w), np.uint8)
    img[:, w // 2:] = 180
    mask = np.zeros((h, w), np.uint8)
    mask[5:15, 5:15] = 255  # 100 pixels
    Image.fromarray(img).save(tmp_path / "pic.png")
    Image.fromarray(mask).save(tmp_path / "pic_mask.png")
    return tmp_path / "pic_mask.png", tmp_path / "pic.png"


async def test_open_zoom_pan_and_the_cursor_status_line(tmp_path):
    mask, image = _plain_pair(tmp_path)
    doc = open_document(mask, image=image)
    assert not doc.in_project and doc.prob is None
    app = PaintApp(doc)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        view = app.query_one(PaintView)
        assert view.size == (80, 22)                     # status and hint lines below
        assert view.cursor == (50, 75)
        # the pixel's facts in the preview's order (PaintView.pixel_facts), then the zoom
        assert "x 75 y 50  mask 0  value 180  zoom fit" in _status(app)
        assert view.pixel_facts() == ["x 75 y 50", "mask 0", "value 180"]
        await pilot.press("h", "h", "k")
        assert view.cursor == (49, 73) and "x 73 y 49" in _status(app)
        assert "value 0" in _status(app)
        await pilot.press("plus")
        assert view.vp.zoom == 0.5 and "zoom 1/2x" in _status(app)
        await pilot.press("plus")
        assert view.vp.zoom == 1 and "zoom 1x" in _status(app)
        await pilot.press("plus", "plus")
        assert view.vp.zoom == 4
        y0, x0, y1, x1 = view.vp.window()
        assert view.vp.view_size_px() == (11, 20)       # 44 dots / 4, 80 columns / 4
        assert y0 <= 49 < y1 and x0 <= 73 < x1          # the cursor stays in view
        await pilot.press("L")                          # a screen to the right
        assert view.vp.window()[1] > x0 and view.cursor[1] > 73
        await pilot.press("0")
        assert view.vp.is_fit()
        # the cursor over the mask shows it
        view.set_cursor(10, 10)
        await pilot.pause()
        assert "mask 1" in _status(app)


async def test_keys_paint_undo_redo_and_brush_size(tmp_path):
    mask, image = _plain_pair(tmp_path)
    app = PaintApp(open_document(mask, image=image))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        view = app.query_one(PaintView)
        view.set_cursor(30, 40)
        await pilot.press("left_square_bracket")        # radius 1 -> 0: one pixel
        await pilot.press("space")
        m = app.history.current
        assert m[30, 40] and m.sum() == 100 + 1
        assert app.scene.mask[30, 40]                   # what is drawn follows
        await pilot.press("right_square_bracket", "right_square_bracket", "x")  # r2 erase
        assert not app.history.current[29:32, 39:42].any()
        await pilot.press("u")
        assert app.history.current[30, 40]
        await pilot.press("U")
        assert not app.history.current[30, 40]
        assert "modified" not in _status(app) or app.history.dirty


async def test_mouse_drag_paints_one_undoable_stroke(tmp_path):
    mask, image = _plain_pair(tmp_path)
    app = PaintApp(open_document(mask, image=image))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        view = app.query_one(PaintView)
        view.vp.set_zoom(1.0)
        view.vp.center_on(20, 30)
        view.redraw()
        await pilot.press("left_square_bracket")        # radius 0
        start = view.vp.pixel_at(30, 15)
        end = view.vp.pixel_at(50, 15)
        await pilot.mouse_down(view, offset=(30, 15))
        await pilot.hover(view, offset=(40, 15))
        await pilot.hover(view, offset=(50, 15))
        await pilot.mouse_up(view, offset=(50, 15))
        await pilot.pause()
        m = app.history.current
        assert m[start[0], start[1]:end[1] + 1].all()   # the whole line, gaps joined
        assert len(app.history) == 2                    # one entry for the drag
        await pilot.press("u")
        assert app.history.current.sum() == 100


async def test_save_in_a_project_goes_through_history_and_rescores(project):
    from segtriage.engine.project import history
    from segtriage.engine.project.config import load_config
    from segtriage.engine.store import Store

    original = (project / "alpha_mask.png").read_bytes()
    doc = open_document(project / "alpha_mask.png")
    assert doc.in_project and doc.root.resolve() == project.resolve()
    assert doc.prob is not None and doc.image_path == project / "alpha.png"
    app = PaintApp(doc)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "P 0." in _status(app)                   # the stored prediction is shown
        app.query_one(PaintView).set_cursor(20, 20)
        await pilot.press("space")
        assert "modified" in _status(app)
        await pilot.press("w")
        assert not app.history.dirty
        assert ("saved alpha_mask.png (a new version: undo in the app brings the old one "
                "back); re-scored") in _status(app)
        await pilot.press("q")                          # saved: quits without asking
    cfg = load_config(project)
    store = Store(cfg.state_path(project) / "state.db")
    row = store.image("alpha.png")
    assert row.status == "edited"
    saved = np.asarray(Image.open(project / "alpha_mask.png"))
    assert (saved[19:22, 19:22] == 255).tolist() == [[False, True, False], [True, True, True],
                                                      [False, True, False]]  # radius 1
    assert store.mask_versions("alpha_mask.png")[-1].source == "editor"
    assert store.score(row.id).mask_sha256 == row.mask_sha256    # re-scored
    history.revert(Project(project, cfg, store), "alpha_mask.png")
    assert (project / "alpha_mask.png").read_bytes() == original


async def test_a_save_into_a_lost_project_state_keeps_the_edits_and_says_why(project):
    doc = open_document(project / "alpha_mask.png")
    app = PaintApp(doc)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.query_one(PaintView).set_cursor(20, 20)
        await pilot.press("space")
        for p in (project / ".segtriage").glob("state.db*"):
            p.unlink()                                  # the state deleted meanwhile
        await pilot.press("w")
        await pilot.pause()
        assert app.is_running and app.history.dirty    # nothing lost, still unsaved
        assert "alpha_mask.png: not saved: cannot open the project state" in _status(app)


async def test_quit_asks_when_there_are_unsaved_changes(tmp_path):
    mask, image = _plain_pair(tmp_path)
    before = mask.read_bytes()
    app = PaintApp(open_document(mask, image=image))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("space", "q")
        await pilot.pause()
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("escape")                     # keep editing
        await pilot.pause()
        assert not isinstance(app.screen, QuitScreen) and app.is_running
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("q")                          # quit without saving
        await pilot.pause()
    assert not app.is_running and mask.read_bytes() == before


async def test_standalone_save_keeps_the_old_file(tmp_path):
    mask, image = _plain_pair(tmp_path)
    before = mask.read_bytes()
    app = PaintApp(open_document(mask, image=image))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.query_one(PaintView).set_cursor(30, 50)
        await pilot.press("space", "ctrl+s", "space")
        app.query_one(PaintView).set_cursor(35, 50)
        await pilot.press("space", "w")
    kept = tmp_path / "pic_mask.orig-1.png"
    assert kept.read_bytes() == before
    assert not (tmp_path / "pic_mask.orig-2.png").exists()   # once a session
    now = np.asarray(Image.open(mask))
    assert now[30, 50] == 255 and now[35, 50] == 255 and now[10, 10] == 255
    assert set(np.unique(now)) == {0, 255}                    # the file's convention


def test_missing_and_corrupt_files_name_the_file(tmp_path, capsys):
    from segtriage.tui.cli.commands import paint

    def run(*argv):
        p = argparse.ArgumentParser()
        paint.add_arguments(p)
        return paint.run(p.parse_args([str(a) for a in argv]))

    assert run(tmp_path / "nope_mask.png") == 2
    assert f"{tmp_path / 'nope_mask.png'}: no such file" in capsys.readouterr().err
    bad = tmp_path / "bad_mask.png"
    bad.write_bytes(b"not a png")
    assert run(bad) == 2
    assert str(bad) in capsys.readouterr().err
    mask, image = _plain_pair(tmp_path)
    assert run(mask, "--image", tmp_path / "gone.png") == 2
    assert f"{tmp_path / 'gone.png'}: no such file" in capsys.readouterr().err
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(small)
    with pytest.raises(DocumentError, match="small.png: the probability map is 4×4"):
        open_document(mask, image=image, prob=small)
