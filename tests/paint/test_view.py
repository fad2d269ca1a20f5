"""The viewer's geometry and rendering without a terminal: zoom steps, fit, pan clamping,
cell → pixel mapping with half-cells, and that only the visible window is sampled."""

from __future__ import annotations

import numpy as np
import pytest

from segtriage.tui.paint.view import ZOOM_MAX, Layers, Marks, Scene, Viewport


def test_fit_and_zoom_levels_are_fit_then_powers_of_two():
    vp = Viewport(128, 128, cols=80, rows=22)          # 80 x 44 dots
    assert vp.zoom == pytest.approx(44 / 128)           # height limits: 44 dots / 128 rows
    assert vp.levels() == [pytest.approx(44 / 128), 0.5, 1, 2, 4, 8, 16]
    vp.zoom_in()
    assert vp.zoom == 0.5
    for _ in range(10):
        vp.zoom_in()
    assert vp.zoom == ZOOM_MAX == 16
    vp.zoom_out()
    assert vp.zoom == 8
    for _ in range(10):
        vp.zoom_out()
    assert vp.is_fit()
    # a huge image fits far below 1:1, with the halving steps in between
    big = Viewport(4096, 4096, cols=80, rows=22)
    assert big.levels()[:3] == [pytest.approx(44 / 4096), 1 / 64, 1 / 32]


def test_half_cells_map_one_cell_to_one_by_two_pixels_at_one_to_one():
    vp = Viewport(100, 200, cols=40, rows=10, zoom=1.0, cy=50, cx=100)
    oy, ox = vp.origin()
    assert (oy, ox) == (40.0, 80.0)                     # 20 dot rows, 40 dot columns in view
    assert vp.window() == (40, 80, 60, 120)
    # cell (col 0, row 0) covers pixels (40, 80) and (41, 80); its centre dot is the lower
    assert vp.pixel_at(0, 0) == (41, 80)
    assert vp.pixel_at(3, 2) == (45, 83)
    # at 2x a pixel is 2 columns and 1 row: exact both ways
    vp.set_zoom(2.0, anchor=(50, 100))
    assert vp.pixel_at(0, 0) == (45, 90)
    assert vp.pixel_at(1, 1) == (46, 90) and vp.pixel_at(2, 1) == (46, 91)


def test_pan_is_clamped_and_small_images_are_centred():
    vp = Viewport(100, 200, cols=40, rows=10, zoom=1.0, cy=50, cx=100)
    vp.pan(-1000, -1000)
    assert vp.origin() == (0, 0)
    vp.pan(10_000, 10_000)
    assert vp.window() == (80, 160, 100, 200)
    small = Viewport(10, 10, cols=40, rows=10, zoom=1.0)
    small.pan(3, 3)
    assert (small.cy, small.cx) == (5, 5)               # smaller than the view: centred


def test_zoom_keeps_the_anchor_on_screen_where_it_was():
    vp = Viewport(512, 512, cols=80, rows=24, zoom=1.0, cy=256, cx=256)
    # at 1:1 the origin is (256 - 24, 256 - 40): cell (col 54, row 9) shows pixels 250 and
    # 251 of column 270 (its centre dot, 251)
    assert vp.origin() == (232, 216) and vp.pixel_at(54, 9) == (251, 270)
    vp.zoom_in(anchor=(250.5, 270.5))
    # at 2x the centre moves half-way to the anchor, (253.25, 263.25): the origin is
    # (253.25 - 12, 263.25 - 20), and the same cell shows pixel (250, 270) alone
    assert vp.zoom == 2 and vp.origin() == (241.25, 243.25)
    assert vp.pixel_at(54, 9) == (250, 270)


def test_ensure_visible_follows_the_cursor():
    vp = Viewport(512, 512, cols=20, rows=10, zoom=1.0, cy=256, cx=256)
    vp.ensure_visible(400, 10)
    y0, x0, y1, x1 = vp.window()
    assert y0 <= 400 < y1 and x0 <= 10 < x1


def test_only_the_visible_window_is_sampled():
    vp = Viewport(4096, 4096, cols=80, rows=22, zoom=1.0, cy=1000, cx=3000)
    iy, ix = vp.sample_index()
    assert iy.size == 44 and ix.size == 80               # one index per dot, not per pixel
    assert iy.min() == 978 and iy.max() == 1021 and ix.min() == 2960 and ix.max() == 3039


def _scene(h=64, w=64):
    img = np.zeros((h, w), np.uint8)
    img[:, w // 2:] = 200
    mask = np.zeros((h, w), bool)
    mask[10:20, 10:20] = True
    return Scene(img, mask)


def test_render_shape_colours_and_outline():
    sc = _scene()
    vp = Viewport(64, 64, cols=64, rows=32, zoom=1.0)    # the whole image, 1 dot per pixel
    rgb = sc.render(vp, Layers(minimap=False))
    assert rgb.shape == (64, 64, 3)
    green = tuple(sc.colors["seg-mask"])
    assert tuple(rgb[10, 15]) == green and tuple(rgb[15, 10]) == green   # the outline
    assert tuple(rgb[15, 15]) == (0, 0, 0)                               # inside: the image
    assert tuple(rgb[40, 50]) == (200, 200, 200)
    tint = sc.render(vp, Layers(outline=False, minimap=False))
    assert tint[15, 15, 1] > 90 and tint[15, 15, 0] == 0
    lines = sc.render_lines(vp, Layers(minimap=False))
    assert len(lines) == 32 and all(line.cell_length == 64 for line in lines)


def test_cursor_brush_and_box_marks_are_drawn():
    sc = _scene()
    vp = Viewport(64, 64, cols=64, rows=32, zoom=1.0)
    rgb = sc.render(vp, Layers(mask=False, minimap=False), Marks(cursor=(30, 30), brush=3,
                                                                 box=(40, 40, 50, 50)))
    assert tuple(rgb[30, 30]) == tuple(sc.colors["cursor"])
    assert tuple(rgb[30, 33]) == tuple(sc.colors["brush"])   # the disk's rim, radius 3
    assert tuple(rgb[40, 45]) == tuple(sc.colors["box"]) and tuple(rgb[45, 45]) == (200, 200, 200)
    erase = sc.render(vp, Layers(minimap=False), Marks(cursor=(30, 30), erase=True))
    assert tuple(erase[30, 30]) == tuple(sc.colors["cursor-erase"])


def test_minimap_appears_only_when_zoomed_in():
    sc = _scene(256, 256)
    vp = Viewport(256, 256, cols=80, rows=24)
    frame = tuple(sc.colors["minimap-frame"])
    fit = sc.render(vp)
    assert not (fit == frame).all(axis=2).any()
    vp.set_zoom(4.0, anchor=(128, 128))
    zoomed = sc.render(vp)
    hits = np.argwhere((zoomed == frame).all(axis=2))
    assert hits.size and hits[:, 1].min() > 80 * 3 // 4 - 2 and hits[:, 0].max() < 24


def test_zoomed_out_uses_the_box_filtered_pyramid():
    img = np.zeros((512, 512), np.uint8)
    img[::2, :] = 255                                   # stripes: nearest would show 0 or 255
    sc = Scene(img)
    vp = Viewport(512, 512, cols=64, rows=32)           # 1/8
    rgb = sc.render(vp, Layers(minimap=False))
    assert np.abs(rgb[..., 0].astype(int) - 128).max() <= 1


def test_mask_of_another_size_is_refused():
    with pytest.raises(ValueError, match="the mask is 3×2 but the image is 64×64"):
        Scene(np.zeros((64, 64), np.uint8), np.zeros((2, 3), bool))
