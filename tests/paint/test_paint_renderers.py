"""The painter on every renderer: half-cell by default, textual-image's unicode lines, and a
picture per frame for kitty and sixel (a stand-in picture widget records the pictures, as in
tests/tui/test_preview_viewer.py). With a picture the viewport's dots are the cell's pixels,
so a terminal cell of 8 × 12 pixels shows 1 × 1.5 image pixels at 1:1, not 1 × 2: the mouse
brush must hit the pixel under the cell at every zoom. ``--renderer`` and its default."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from PIL import Image

from fakes import picture_widget
from segtriage.tui.paint.app import PaintApp
from segtriage.tui.paint.document import open_document
from segtriage.tui.paint.pictures import PictureView
from segtriage.tui.paint.renderers import RENDERERS, Renderer, select_renderer
from segtriage.tui.paint.view import PaintView

CELL = (8, 12)   # picture pixels per terminal cell (w, h): 80 x 22 cells are 640 x 264


def _pair(tmp_path, h=100, w=150):
    """The image: 0 left of column 75, 180 from it; the mask: rows and columns 5..14."""
    img = np.zeros((h, w), np.uint8)
    img[:, w // 2:] = 180
    mask = np.zeros((h, w), np.uint8)
    mask[5:15, 5:15] = 255
    Image.fromarray(img).save(tmp_path / "pic.png")
    Image.fromarray(mask).save(tmp_path / "pic_mask.png")
    return open_document(tmp_path / "pic_mask.png", image=tmp_path / "pic.png")


async def _settle(pilot) -> None:
    await pilot.pause()
    await pilot.pause()


def _rgb(frame, y, x) -> tuple:
    return tuple(int(c) for c in frame[y, x])


async def test_the_default_is_the_half_cell_canvas(tmp_path):
    app = PaintApp(_pair(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot)
        view = app.query_one(PaintView)
        assert type(view) is PaintView and (view.vp.dot_w, view.vp.dot_h) == (1, 2)
        assert "▀" in view.render_line(0).text


async def test_a_picture_renderer_draws_each_change_as_a_picture_of_the_cells_pixels(tmp_path):
    picture_cls = picture_widget()
    app = PaintApp(_pair(tmp_path), renderer=Renderer("kitty", widget=picture_cls,
                                                      cell_px=CELL))
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot)
        view = app.query_one(PaintView)
        pic = view.query_one(picture_cls)
        assert isinstance(view, PictureView) and (view.vp.dot_w, view.vp.dot_h) == CELL
        assert view.vp.cols == 80 and view.vp.rows == 22
        # 80 x 22 cells of 8 x 12 pixels; fit: 264 picture rows for 100 image rows
        assert pic.image.size == (640, 264)
        assert (pic.styles.width.value, pic.styles.height.value) == (80, 22)
        assert view.vp.zoom == pytest.approx(2.64 / 8) and view.cursor == (50, 75)
        await pilot.press("1")                  # 1:1: 8 picture pixels per image pixel
        await _settle(pilot)
        assert (view.vp.zoom, view.vp.cy, view.vp.cx) == (1.0, 50.5, 75.5)
        frame = np.asarray(pic.image)
        # the view starts at row 50.5 - 264/2/8 = 34, column 75.5 - 640/2/8 = 35.5: the
        # cursor's pixel (50, 75) is picture rows 128..135 and columns 316..323, its outline
        cursor = tuple(app.scene.colors["cursor"])
        assert all(_rgb(frame, 128, x) == cursor for x in range(316, 324))
        assert _rgb(frame, 135, 316) == cursor and _rgb(frame, 130, 320) == (180, 180, 180)
        assert _rgb(frame, 127, 316) != cursor and _rgb(frame, 128, 324) != cursor
        # a key edit shows in the next picture: with the mask as a tint, space paints the
        # brush (radius 1) there, and pixel (50, 74) (columns 308..315, black) turns green:
        # 0.45 of (0, 230, 0)
        await pilot.press("O")
        await _settle(pilot)
        assert _rgb(np.asarray(pic.image), 130, 311) == (0, 0, 0)
        n = len(pic.shown)
        await pilot.press("space")
        await _settle(pilot)
        assert len(pic.shown) > n and app.history.current[50, 75]
        assert _rgb(np.asarray(pic.image), 130, 311) == (0, 103, 0)
        # the brush's size is a mark: a bigger brush is a new picture, not a stale one
        n = len(pic.shown)
        await pilot.press("right_square_bracket")
        await _settle(pilot)
        assert len(pic.shown) > n and app.brush_radius == 2


# (zoom, centre, the cell clicked (column, row), the image pixel (y, x) under its centre):
# a cell is 8 / (8 z) = 1/z image pixels wide and 12 / (8 z) = 1.5 / z high
CLICKS = [
    # fit: 2.64 picture pixels per image pixel, the image centred: origin (0, 75 - 320/2.64)
    # y = (11 + 0.5) * 12 / 2.64 = 52.27, x = -46.21 + (40 + 0.5) * 8 / 2.64 = 76.52
    (None, None, (40, 11), (52, 76)),
    # 1:1: origin (50 - 264/16, 75 - 640/16) = (33.5, 35); y = 33.5 + 4.5 * 1.5 = 40.25
    # (half-cell thinking, 2 rows a cell, would say 42), x = 35 + 10.5 = 45.5
    (1.0, (50, 75), (10, 4), (40, 45)),
    # 2x: origin (50 - 8.25, 75 - 20) = (41.75, 55); y = 41.75 + 4.5 * 0.75 = 45.125,
    # x = 55 + 10.5 * 0.5 = 60.25
    (2.0, (50, 75), (10, 4), (45, 60)),
    # 4x: origin (50 - 4.125, 75 - 10) = (45.875, 65); y = 45.875 + 4.5 * 0.375 = 47.56,
    # x = 65 + 10.5 * 0.25 = 67.625
    (4.0, (50, 75), (10, 4), (47, 67)),
    # 8x: origin (50 - 2.0625, 75 - 5) = (47.9375, 70); y = 47.9375 + 16.5 * 0.1875 = 51.03,
    # x = 70 + 30.5 * 0.125 = 73.81
    (8.0, (50, 75), (30, 16), (51, 73)),
]


@pytest.mark.parametrize("zoom, centre, cell, pixel", CLICKS)
async def test_the_mouse_brush_hits_the_pixel_under_the_cell_at_every_zoom(
        tmp_path, zoom, centre, cell, pixel):
    picture_cls = picture_widget()
    app = PaintApp(_pair(tmp_path), renderer=Renderer("sixel", widget=picture_cls,
                                                      cell_px=CELL))
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot)
        view = app.query_one(PaintView)
        if zoom is not None:
            view.vp.set_zoom(zoom)
            view.vp.center_on(*centre)
            view.redraw()
        await pilot.press("left_square_bracket", "O")   # brush radius 0; the mask as a tint
        await _settle(pilot)
        before = app.history.current.copy()
        await pilot.mouse_down(view, offset=cell)
        await pilot.mouse_up(view, offset=cell)
        await _settle(pilot)
        added = np.argwhere(app.history.current & ~before)
        assert [tuple(p) for p in added] == [pixel] and view.cursor == pixel
        # the picture shows that pixel at the centre of the cell clicked: its picture pixel
        # is inside the pixel's picture box, in the mask's tint (0.45 of (0, 230, 0) over the
        # image's grey)
        col, row = cell
        cx, cy = col * CELL[0] + CELL[0] // 2, row * CELL[1] + CELL[1] // 2
        iy, ix = view.vp.sample_index()
        assert (iy[cy], ix[cx]) == pixel
        grey = 180 if pixel[1] >= 75 else 0
        frame = np.asarray(view.query_one(picture_cls).image)
        if view.vp.scale >= 4:   # else the cursor fills the pixel
            assert _rgb(frame, cy, cx) == (int(grey * 0.55), int(grey * 0.55 + 230 * 0.45),
                                           int(grey * 0.55))
        await pilot.press("u")
        assert np.array_equal(app.history.current, before)


async def test_a_mouse_drag_on_a_picture_paints_the_pixels_under_the_cells(tmp_path):
    picture_cls = picture_widget()
    app = PaintApp(_pair(tmp_path), renderer=Renderer("kitty", widget=picture_cls,
                                                      cell_px=CELL))
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot)
        view = app.query_one(PaintView)
        view.vp.set_zoom(2.0)
        view.vp.center_on(50, 75)               # origin (41.75, 55), as in CLICKS
        view.redraw()
        await pilot.press("left_square_bracket")
        before = app.history.current.copy()
        # cells (10, 4) → (45, 60) and (20, 4) → x = 55 + 20.5 * 0.5 = 65.25: (45, 65)
        await pilot.mouse_down(view, offset=(10, 4))
        await pilot.hover(view, offset=(15, 4))
        await pilot.hover(view, offset=(20, 4))
        await pilot.mouse_up(view, offset=(20, 4))
        await _settle(pilot)
        added = app.history.current & ~before
        assert added.sum() == 6 and added[45, 60:66].all()
        assert len(app.history) == 2            # one undoable stroke


async def test_unicode_lines_keep_the_half_cell_geometry(tmp_path):
    app = PaintApp(_pair(tmp_path), renderer=select_renderer("unicode"))
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(pilot)
        view = app.query_one(PaintView)
        assert type(view) is PaintView and (view.vp.dot_w, view.vp.dot_h) == (1, 2)
        lines = [view.render_line(y) for y in range(22)]
        assert all(line.cell_length == 80 for line in lines)
        assert "▀" not in "".join(line.text for line in lines)   # not the half-cell lines
        view.vp.set_zoom(1.0)
        view.vp.center_on(20, 30)               # origin (20 - 22, 30 - 40) → clamped (0, 0)
        view.redraw()
        await pilot.press("left_square_bracket")
        # cell (20, 10): two image rows a cell, y = 10.5 * 2 = 21, x = 20.5
        await pilot.mouse_down(view, offset=(20, 10))
        await pilot.mouse_up(view, offset=(20, 10))
        await _settle(pilot)
        assert app.history.current[21, 20] and app.history.current.sum() == 100 + 1


# -- the command line --------------------------------------------------------------------------

def _parser():
    from segtriage.tui.cli.commands import paint

    p = argparse.ArgumentParser(prog="segtriage paint")
    paint.add_arguments(p)
    return p


def test_renderer_option_takes_the_renderers_and_refuses_others(capsys):
    p = _parser()
    assert p.parse_args(["m.png"]).renderer is None
    for name in RENDERERS:
        assert p.parse_args(["m.png", "--renderer", name]).renderer == name
    with pytest.raises(SystemExit) as e:
        p.parse_args(["m.png", "--renderer", "fax"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "argument --renderer: invalid choice: 'fax'" in err
    assert "'halfcell', 'auto', 'kitty', 'sixel', 'unicode'" in err


def _ran_with(monkeypatch, argv) -> Renderer:
    """The renderer ``segtriage paint ARGV`` gives its app (the app does not run)."""
    from segtriage.tui.cli.commands import paint
    from segtriage.tui.paint.app import PaintApp

    seen = []

    def run(self):
        seen.append(self.renderer)
        return 0

    monkeypatch.setattr(PaintApp, "run", run)
    monkeypatch.setattr("gc.freeze", lambda: None)  # not the test process's heap
    assert paint.run(_parser().parse_args([str(a) for a in argv])) == 0
    return seen[0]


def test_renderer_default_is_the_projects_then_halfcell(tmp_path, project, monkeypatch):
    _pair(tmp_path)
    plain = tmp_path / "pic_mask.png"
    assert _ran_with(monkeypatch, [plain]) == Renderer("halfcell")
    assert _ran_with(monkeypatch, [plain, "--renderer", "unicode"]).name == "unicode"
    mask = project / "alpha_mask.png"
    assert _ran_with(monkeypatch, [mask]) == Renderer("halfcell")    # the config's default
    (project / "segtriage.toml").write_text('[tui]\nimage_renderer = "unicode"\n')
    got = _ran_with(monkeypatch, [mask])
    assert got.name == "unicode" and got.strips is not None
    assert _ran_with(monkeypatch, [mask, "--renderer", "halfcell"]) == Renderer("halfcell")
    kitty = _ran_with(monkeypatch, [mask, "--renderer", "kitty"])
    assert kitty.widget.__name__ == "TGPImage" and kitty.cell_px == select_renderer(
        "kitty").cell_px


def test_auto_is_half_cell_where_textual_image_finds_no_graphics(monkeypatch):
    from textual_image import renderable
    from textual_image import widget as tiw

    for found in (renderable.HalfcellImage, renderable.UnicodeImage):
        monkeypatch.setattr(renderable, "Image", found)
        assert select_renderer("auto") == Renderer("halfcell")
    monkeypatch.setattr(renderable, "Image", renderable.TGPImage)
    monkeypatch.setattr(tiw, "Image", tiw.AutoImage)
    assert select_renderer("auto").widget is tiw.AutoImage
    with pytest.raises(ValueError, match="unknown image renderer 'fax'; one of halfcell, auto"):
        select_renderer("fax")
