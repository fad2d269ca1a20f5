"""Split outlines worked out for a window: the whole image's ``split_labels`` pieces there,
patched edit by edit, and given up (None) when the objects around the
window are too many pixels."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from segtriage.engine.project.measure import split_labels
from segtriage.tui.paint import ops
from segtriage.tui.paint.splits import SplitLabels, closed_box


def cuts(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where two 4-neighbours, both on objects, have different labels: the split lines."""
    dy = (lab[1:] != lab[:-1]) & (lab[1:] > 0) & (lab[:-1] > 0)
    dx = (lab[:, 1:] != lab[:, :-1]) & (lab[:, 1:] > 0) & (lab[:, :-1] > 0)
    return dy, dx


def same_pieces(got, m: np.ndarray, full: np.ndarray, window) -> None:
    """The box holds the window and whole objects, labelled where the mask is, and each
    object the window touches is cut into as many pieces as in the whole image's split.
    (Where a split line runs is only the same up to ties: skimage's watershed floods basins
    of equal depth in an order that depends on the whole array.)"""
    from segtriage.engine.project.scoring.objects import label

    labels, (oy, ox) = got
    y0, x0, y1, x1 = window
    h, w = labels.shape
    assert oy <= y0 and ox <= x0 and y1 <= oy + h and x1 <= ox + w
    box = (slice(oy, oy + h), slice(ox, ox + w))
    assert np.array_equal(labels > 0, m[box])
    objs, _n = label(m)
    for i in set(np.unique(objs[y0:y1, x0:x1]).tolist()) - {0}:
        obj = objs == i
        assert not (obj & ~np.pad(np.ones((h, w), bool), ((oy, m.shape[0] - oy - h),
                                                         (ox, m.shape[1] - ox - w)))).any()
        assert len(np.unique(labels[obj[box]])) == len(np.unique(full[obj]))


def disks(centres, shape=(60, 80), r=6) -> np.ndarray:
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    m = np.zeros(shape, bool)
    for cy, cx in centres:
        m |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    return m


def test_closed_box_holds_every_object_it_touches():
    m = disks([(10, 10), (10, 20), (40, 60)])       # two touching disks, one apart
    assert closed_box(m, (8, 12, 8, 12), 10_000) is not None
    y0, y1, x0, x1 = closed_box(m, (8, 12, 8, 12), 10_000)
    assert y0 <= 4 and y1 >= 17 and x0 <= 4 and x1 >= 27      # both touching disks
    assert closed_box(m, (30, 32, 0, 2), 10_000) == (30, 32, 0, 2)   # nothing there
    assert closed_box(m, (8, 12, 8, 12), 50) is None          # more than 50 px


def test_the_window_gets_the_whole_images_split_and_edits_are_patched():
    m = disks([(20, 20), (20, 30), (45, 65)])
    full = split_labels(m)
    assert full.max() == 3                           # the touching pair is split in two
    s = SplitLabels(split_labels)
    window = (10, 10, 30, 40)                         # y0, x0, y1, x1
    got = s.get(m, window)
    same_pieces(got, m, full, window)
    assert sum(c.sum() for c in cuts(got[0])) > 0        # a line between the pair
    box, gen = s.box, s.generation
    # a dab far from the pair: the pair's labels stay, the box is patched
    m2 = ops.brush(m, 45, 20, 3)
    got = s.get(m2, window)
    assert s.box == box and s.generation == gen + 1
    same_pieces(got, m2, split_labels(m2), window)
    # deleting one of the pair: no split line is left
    m3 = ops.delete_object(m2, 20, 20) | disks([(20, 20)])   # delete both, put one back
    got = s.get(m3, window)
    assert not any(c.any() for c in cuts(got[0]))
    same_pieces(got, m3, split_labels(m3), window)
    # the same mask again: nothing worked out again
    gen = s.generation
    assert s.get(m3, window)[0] is got[0] and s.generation == gen


def test_too_many_pixels_around_the_window_gives_none():
    m = np.ones((100, 100), bool)
    s = SplitLabels(split_labels, limit_px=5_000)
    assert s.get(m, (40, 40, 50, 50)) is None
    # remembered for that window, edits or not, until the view moves
    small = np.zeros((100, 100), bool)
    small[40:50, 40:50] = True
    assert s.get(small, (40, 40, 50, 50)) is None
    assert s.get(small, (41, 40, 51, 50)) is not None
    assert s.get(small, (0, 0, 100, 100)) is None    # the window alone is too big


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 59), st.integers(0, 79)), min_size=1, max_size=10),
       st.integers(0, 50), st.integers(0, 70), st.integers(1, 30), st.integers(1, 40),
       st.lists(st.tuples(st.integers(0, 59), st.integers(0, 79), st.integers(0, 5),
                          st.booleans()), max_size=4))
def test_windowed_split_has_the_whole_images_pieces(centres, y0, x0, h, w, dabs):
    m = disks(centres)
    window = (y0, x0, min(60, y0 + h), min(80, x0 + w))
    s = SplitLabels(split_labels, min_distance=3)
    same_pieces(s.get(m, window), m, split_labels(m, min_distance=3), window)
    for y, x, r, v in dabs:
        m = ops.brush(m, y, x, r, v)
        same_pieces(s.get(m, window), m, split_labels(m, min_distance=3), window)


async def test_c_shows_split_outlines_that_follow_edits_and_undo(tmp_path):
    from PIL import Image

    from segtriage.tui.paint.app import PaintApp
    from segtriage.tui.paint.document import open_document
    from segtriage.tui.paint.view import PaintView

    m = disks([(20, 20), (20, 30), (45, 65)])
    Image.fromarray(m.astype(np.uint8) * 255).save(tmp_path / "d_mask.png")
    app = PaintApp(open_document(tmp_path / "d_mask.png"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        view = app.query_one(PaintView)
        assert app.scene.labels is None
        await pilot.press("c")
        await pilot.pause()
        labels, (oy, ox) = app.scene.labels, app.scene.labels_origin
        assert len(np.unique(labels[20 - oy, [20 - ox, 30 - ox]])) == 2   # the pair: 2 pieces
        view.set_cursor(20, 30)
        await pilot.press("d")                           # the pair is one object: both go
        await pilot.pause()
        labels, (oy, ox) = app.scene.labels, app.scene.labels_origin
        assert labels[20 - oy, 20 - ox] == 0 and labels[20 - oy, 30 - ox] == 0
        assert labels[45 - oy, 65 - ox] > 0                               # the third stays
        await pilot.press("u")
        await pilot.pause()
        labels, (oy, ox) = app.scene.labels, app.scene.labels_origin
        assert len(np.unique(labels[20 - oy, [20 - ox, 30 - ox]])) == 2
        assert "splits" not in str(app.query_one("#paint-status").render())
        await pilot.press("c")
        await pilot.pause()
        assert not view.overlays.splits
        # too many pixels around the window: none drawn, and the status line says so
        view._splits = None
        view._split_labels().limit_px = 100
        await pilot.press("c")
        await pilot.pause()
        assert app.scene.labels is None
        assert "splits: zoom in" in str(app.query_one("#paint-status").render())


async def test_split_outlines_use_the_projects_measure_settings(tmp_path):
    from PIL import Image

    from segtriage.engine.project.measure import DEFAULT_COMPACTNESS, DEFAULT_MIN_DISTANCE
    from segtriage.tui.paint.app import PaintApp
    from segtriage.tui.paint.document import open_document

    # two touching disks whose centres are 10 px apart: two pieces when markers may be 5 px
    # apart (the default), one when they must be 20 apart
    m = disks([(20, 20), (20, 30)])
    plain = tmp_path / "plain"
    proj = tmp_path / "proj"
    for d in (plain, proj):
        d.mkdir()
        Image.fromarray(m.astype(np.uint8) * 255).save(d / "d_mask.png")
    (proj / "segtriage.toml").write_text("[measure]\nmin_distance = 20\ncompactness = 0.5\n")
    for folder, wanted, pieces in (
            (plain, {"min_distance": DEFAULT_MIN_DISTANCE,
                     "compactness": DEFAULT_COMPACTNESS}, 2),
            (proj, {"min_distance": 20, "compactness": 0.5}, 1)):
        doc = open_document(folder / "d_mask.png")
        assert (doc.cfg is not None) == (folder is proj)
        app = PaintApp(doc)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press("c")
            await pilot.pause()
            assert app.view.split_settings == wanted
            assert app.view._splits.settings == wanted
            labels, (oy, ox) = app.scene.labels, app.scene.labels_origin
            assert len(np.unique(labels[20 - oy, [20 - ox, 30 - ox]])) == pieces
