"""The editor's operations against masks worked out by hand (drawn below as text: '#' is
object, '.' background), and properties that must hold for any mask."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from segtriage.tui.paint import ops


def grid(text: str) -> np.ndarray:
    rows = [r.strip() for r in text.strip().splitlines()]
    assert len({len(r) for r in rows}) == 1, "ragged test grid"
    return np.array([[c == "#" for c in r] for r in rows], dtype=bool)


def show(m: np.ndarray) -> str:
    return "\n".join("".join("#" if v else "." for v in row) for row in m)


def same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == bool and got.shape == want.shape
    assert np.array_equal(got, want), f"got\n{show(got)}\nwant\n{show(want)}"


# two objects: a 3x3 square and, one background pixel to its right, a 2x2 square; and an
# object at the top-right border
TWO = grid("""
    .........
    .###.##.#
    .###.##.#
    .###.....
    .........
""")
EMPTY = np.zeros((5, 9), bool)


# ---------------------------------------------------------------------------- brush, stroke

def test_brush_paints_a_disk_clipped_at_the_border_and_erases():
    same(ops.brush(EMPTY, 2, 4, 1), grid("""
        .........
        ....#....
        ...###...
        ....#....
        .........
    """))
    same(ops.brush(EMPTY, 0, 0, 2), grid("""
        ###......
        ##.......
        #........
        .........
        .........
    """))
    same(ops.brush(EMPTY, 4, 8, 0), grid("""
        .........
        .........
        .........
        .........
        ........#
    """))
    # erase a radius-1 disk at the centre of the 3x3 square
    same(ops.brush(TWO, 2, 2, 1, value=False), grid("""
        .........
        .#.#.##.#
        .....##.#
        .#.#.....
        .........
    """))
    # a centre outside the image paints what of the disk lies inside
    same(ops.brush(EMPTY, -1, 4, 1), grid("""
        ....#....
        .........
        .........
        .........
        .........
    """))
    same(ops.brush(EMPTY, -5, 4, 1), EMPTY)


def test_stroke_joins_the_points_with_lines():
    same(ops.stroke(EMPTY, [(0, 0), (0, 3), (3, 3)], 0), grid("""
        ####.....
        ...#.....
        ...#.....
        ...#.....
        .........
    """))
    same(ops.stroke(EMPTY, [(2, -3), (2, 20)], 0), grid("""
        .........
        .........
        #########
        .........
        .........
    """))
    same(ops.stroke(EMPTY, [(4, 0), (4, 2)], 1), grid("""
        .........
        .........
        .........
        ###......
        ####.....
    """))
    same(ops.stroke(TWO, [], 3), TWO)
    with pytest.raises(ValueError, match="radius"):
        ops.stroke(EMPTY, [(1, 1)], -1)


# ---------------------------------------------------------------------------- fills

def test_flood_fill_is_four_connected_and_stops_at_objects():
    ring = grid("""
        .......
        .####..
        .#..#..
        .#..#..
        .####..
        .......
    """)
    inside = grid("""
        .......
        .####..
        .####..
        .####..
        .####..
        .......
    """)
    same(ops.flood_fill(ring, 2, 2), inside)
    same(ops.flood_fill(ring, 0, 0), ~grid("""
        .......
        .......
        ..##...
        ..##...
        .......
        .......
    """))
    # on an object with False: that object's 4-connected pixels go
    same(ops.flood_fill(ring, 1, 1, value=False), np.zeros_like(ring))
    # 4-connected: a diagonal step does not leak
    diag = grid("""
        #.
        .#
    """)
    same(ops.flood_fill(diag, 0, 0, value=False), grid("""
        ..
        .#
    """))
    same(ops.flood_fill(EMPTY, 3, 3), np.ones_like(EMPTY))
    with pytest.raises(ops.OutsideImage, match=r"\(y=5, x=0\) is outside the 5 x 9 image"):
        ops.flood_fill(EMPTY, 5, 0)


RINGS = grid("""
    ..........
    .####.###.
    .#..#.#.#.
    .####.###.
    ..........
    ##........
    .#........
""")


def test_fill_holes_of_one_object_all_objects_and_a_hole_under_the_cursor():
    left = grid("""
        ..........
        .####.###.
        .####.#.#.
        .####.###.
        ..........
        ##........
        .#........
    """)
    same(ops.fill_holes(RINGS, 1, 1), left)
    same(ops.fill_holes(RINGS, 2, 2), left)       # the cursor in the hole itself
    same(ops.fill_holes(RINGS, 0, 0), RINGS)      # open background: nothing
    # the notch at the image border (6, 0) is open to the outside, not a hole
    same(ops.fill_holes(RINGS, 5, 0), RINGS)
    same(ops.fill_holes(RINGS), grid("""
        ..........
        .####.###.
        .####.###.
        .####.###.
        ..........
        ##........
        .#........
    """))
    same(ops.fill_holes(EMPTY), EMPTY)
    same(ops.fill_holes(EMPTY, 2, 2), EMPTY)


def test_filling_a_ring_takes_in_the_object_inside_it():
    m = grid("""
        .......
        .#####.
        .#...#.
        .#.#.#.
        .#...#.
        .#####.
        .......
    """)
    full = grid("""
        .......
        .#####.
        .#####.
        .#####.
        .#####.
        .#####.
        .......
    """)
    same(ops.fill_holes(m, 1, 1), full)
    same(ops.fill_holes(m, 2, 2), full)  # the hole is the ring of background around the dot
    # the dot has no holes of its own
    same(ops.fill_holes(m, 3, 3), m)


# ---------------------------------------------------------------------------- objects

def test_object_at_and_delete_object_take_the_whole_eight_connected_object():
    touching = grid("""
        ##....
        ##....
        ..##..
        ..##.#
    """)
    obj = ops.object_at(touching, 0, 0)
    same(obj, grid("""
        ##....
        ##....
        ..##..
        ..##..
    """))
    assert ops.object_at(touching, 0, 5) is None
    same(ops.delete_object(touching, 3, 3), grid("""
        ......
        ......
        ......
        .....#
    """))
    same(ops.delete_object(touching, 0, 4), touching)  # background: unchanged
    same(ops.delete_object(TWO, 1, 8), grid("""
        .........
        .###.##..
        .###.##..
        .###.....
        .........
    """))
    same(ops.delete_object(EMPTY, 0, 0), EMPTY)
    with pytest.raises(ops.OutsideImage):
        ops.delete_object(TWO, 0, -1)
    with pytest.raises(ops.OutsideImage):
        ops.object_at(TWO, 0, 9)


PRED = grid("""
    .....####
    .#...####
    .........
    ......##.
    ......##.
""")


def test_add_predicted_object_unions_the_predicted_object_under_the_cursor():
    mask = grid("""
        .....#...
        .........
        .........
        .........
        .........
    """)
    same(ops.add_predicted_object(mask, PRED, 1, 8), grid("""
        .....####
        .....####
        .........
        .........
        .........
    """))
    same(ops.add_predicted_object(mask, PRED, 4, 7), grid("""
        .....#...
        .........
        .........
        ......##.
        ......##.
    """))
    same(ops.add_predicted_object(mask, PRED, 2, 2), mask)  # no prediction there
    same(ops.add_predicted_object(EMPTY, PRED, 1, 1), grid("""
        .........
        .#.......
        .........
        .........
        .........
    """))
    with pytest.raises(ValueError, match="prediction shape"):
        ops.add_predicted_object(mask, PRED[:3], 0, 0)


def test_take_prediction_in_box_is_inclusive_exclusive_and_clipped():
    same(ops.take_prediction_in_box(TWO, PRED, 0, 5, 3, 20), grid("""
        .....####
        .###.####
        .###.....
        .###.....
        .........
    """))
    # corners in either order, clipped at the top-left
    same(ops.take_prediction_in_box(TWO, PRED, 2, 3, -4, -4),
         ops.take_prediction_in_box(TWO, PRED, 0, 0, 2, 3))
    same(ops.take_prediction_in_box(TWO, PRED, 0, 0, 2, 3), grid("""
        .........
        .#.#.##.#
        .###.##.#
        .###.....
        .........
    """))
    same(ops.take_prediction_in_box(TWO, PRED, 10, 10, 20, 20), TWO)  # outside: nothing
    same(ops.take_prediction_in_box(TWO, PRED, 1, 1, 1, 5), TWO)      # empty box
    same(ops.take_prediction_in_box(EMPTY, PRED, 0, 0, 5, 9), PRED)


# ---------------------------------------------------------------------------- grow, shrink

def test_grow_one_object_stops_short_of_its_neighbours():
    # the 3x3 square grows by one 4-neighbour step, except where it would touch the 2x2
    # square (one background pixel away) or come diagonal to it
    same(ops.grow(TWO, 2, 2), grid("""
        .###.....
        ####.##.#
        ####.##.#
        ####.....
        .###.....
    """))
    # the 2x2 square: left is the 3x3 square, right the border object
    # the 2x2 square: left is the 3x3 square, right the border object
    same(ops.grow(TWO, 1, 5), grid("""
        .....##..
        .###.##.#
        .###.##.#
        .###.##..
        .........
    """))
    same(ops.grow(TWO, 0, 0), TWO)           # background
    same(ops.grow(EMPTY, 2, 2), EMPTY)
    same(ops.grow(TWO, 2, 2, px=0), TWO)


def test_grow_at_the_border_and_by_two():
    m = grid("""
        #....
        .....
        .....
    """)
    same(ops.grow(m, 0, 0, px=2), grid("""
        ###..
        ##...
        #....
    """))
    same(ops.grow(m, px=2), ops.grow(m, 0, 0, px=2))


def test_grow_all_keeps_every_object_apart():
    m = grid("""
        #...#
        .....
        .....
    """)
    # each grows one step; (0, 2) would touch both, so neither takes it
    got = ops.grow(m)
    same(got, grid("""
        ##.##
        #...#
        .....
    """))
    from segtriage.engine.project.scoring.objects import label
    assert label(got)[1] == 2
    same(ops.grow(EMPTY), EMPTY)


def test_shrink_takes_only_the_object_and_not_from_the_border_side():
    m = grid("""
        ####..
        ####..
        ####..
        ......
        ....##
    """)
    same(ops.shrink(m, 1, 1), grid("""
        ###...
        ###...
        ......
        ......
        ....##
    """))
    # every object: the frame does not eat the block's top and left rows; the bar at the
    # bottom border is open above, so it goes
    same(ops.shrink(m), grid("""
        ###...
        ###...
        ......
        ......
        ......
    """))
    same(ops.shrink(m, 3, 3), m)             # background
    same(ops.shrink(EMPTY), EMPTY)
    same(ops.shrink(m, 0, 0, px=5), grid("""
        ......
        ......
        ......
        ......
        ....##
    """))
    with pytest.raises(ValueError, match="px must be >= 0"):
        ops.shrink(m, px=-1)


def test_shrink_all_equals_shrink_of_each_object():
    m = TWO.copy()
    one_by_one = ops.shrink(ops.shrink(ops.shrink(m, 1, 1), 1, 5), 1, 8)
    same(ops.shrink(m), one_by_one)


# a 3x3 square cut by the left frame, two rows from the top and from the bottom
NEAR_FRAME = grid("""
    .......
    .......
    ###....
    ###....
    ###....
    .......
    .......
""")


def test_grow_then_shrink_in_one_go_gives_back_an_object_near_the_frame():
    # grown by 2 it reaches the top and bottom rows; shrunk by 2 in the same go, what grew up
    # to the frame from inside ends there and goes again, while the side the frame cuts stays
    same(ops.grow(NEAR_FRAME, px=2), grid("""
        ###....
        ####...
        #####..
        #####..
        #####..
        ####...
        ###....
    """))
    same(ops.grow_shrink(NEAR_FRAME, [2, -2]), NEAR_FRAME)
    same(ops.grow_shrink(NEAR_FRAME, [2, -2], 3, 1), NEAR_FRAME)
    same(ops.grow_shrink(NEAR_FRAME, [1, 1, -1, -1]), NEAR_FRAME)
    # as two calls the shrink sees an object touching the top and bottom rows: the same
    # pixels as one the frame cuts there, so it keeps what lies against the frame
    same(ops.shrink(ops.grow(NEAR_FRAME, px=2), px=2), grid("""
        #......
        ##.....
        ###....
        ###....
        ###....
        ##.....
        #......
    """))
    # shrinking alone: not eaten from the frame's side (it stays cut by the frame)
    same(ops.grow_shrink(NEAR_FRAME, [-1], 3, 0), grid("""
        .......
        .......
        .......
        ##.....
        .......
        .......
        .......
    """))
    same(ops.grow_shrink(NEAR_FRAME, [-1]), ops.shrink(NEAR_FRAME))
    same(ops.grow_shrink(NEAR_FRAME, []), NEAR_FRAME)
    same(ops.grow_shrink(NEAR_FRAME, [2, -2], 0, 6), NEAR_FRAME)   # background


def test_shrink_then_grow_in_one_go_is_an_opening():
    # the block is cut by the top and left frame: those sides stay; the two-pixel spur
    # keeps the pixel a cross still fits over, and the open corner is rounded
    m = grid("""
        ####..
        ####..
        ####..
        ####..
        .#....
        .#....
    """)
    same(ops.grow_shrink(m, [-1, 1]), grid("""
        ####..
        ####..
        ####..
        ###...
        .#....
        ......
    """))


# ---------------------------------------------------------------------------- prediction-wide

def test_add_unseen_predicted_and_drop_unseen():
    mask = grid("""
        ......#..
        .........
        ........#
        ###......
        ###......
    """)
    # the big top-right object overlaps the mask (0, 6): not unseen; the 2x2 one is added;
    # the single pixel (1, 1) is under min_px
    same(ops.add_unseen_predicted(mask, PRED), grid("""
        ......#..
        .........
        ........#
        ###...##.
        ###...##.
    """))
    same(ops.add_unseen_predicted(mask, PRED, min_px=1),
         ops.add_unseen_predicted(mask, PRED) | grid("""
        .........
        .#.......
        .........
        .........
        .........
    """))
    same(ops.add_unseen_predicted(EMPTY, EMPTY), EMPTY)
    # drop: the pixel at (2, 8) and the block at the bottom-left are not predicted
    same(ops.drop_unseen(mask, PRED), grid("""
        ......#..
        .........
        .........
        .........
        .........
    """))
    same(ops.drop_unseen(mask, EMPTY), EMPTY)
    same(ops.drop_unseen(EMPTY, PRED), EMPTY)
    # min_overlap: an object half predicted goes at 0.5, stays below it
    half = grid("""
        ####
        ....
    """)
    pred = grid("""
        ##..
        ....
    """)
    same(ops.drop_unseen(half, pred, min_overlap=0.5), np.zeros_like(half))
    same(ops.drop_unseen(half, pred, min_overlap=0.4), half)


def test_disagreements_find_missed_extra_and_boundary_regions_biggest_first():
    mask = grid("""
        ............
        .####.......
        .####.......
        .####.......
        .####....##.
        .........##.
        ............
    """)
    pred = grid("""
        ............
        .######.....
        .######.....
        .######.....
        .######.....
        ...........#
        ###........#
    """)
    regions = ops.disagreements(mask, pred, min_px=2)
    assert [(r.kind, r.pixels) for r in regions] == [
        ("boundary", 8), ("extra", 4), ("missed", 3), ("missed", 2)]
    b = regions[0]
    assert (b.y0, b.x0, b.y1, b.x1) == (1, 5, 5, 7)
    assert pred[b.cy, b.cx] and not mask[b.cy, b.cx]
    extra = regions[1]
    assert (extra.y0, extra.x0, extra.y1, extra.x1) == (4, 9, 6, 11)
    assert mask[extra.cy, extra.cx]
    assert [r.kind for r in ops.disagreements(mask, pred)] == []  # all under 9 pixels
    assert ops.disagreements(EMPTY, EMPTY) == []
    assert ops.disagreements(mask, mask) == []
    # an unsure model: boundary pixels where P is near 0.5 do not count
    prob = np.where(pred, 0.95, 0.05)
    prob[1:5, 5:7] = 0.6
    assert "boundary" not in [r.kind for r in ops.disagreements(mask, pred, prob, min_px=2)]
    u8 = (prob * 255).astype(np.uint8)
    assert ops.disagreements(mask, pred, u8, min_px=2) == ops.disagreements(
        mask, pred, prob, min_px=2)


def test_every_op_leaves_its_input_alone_on_an_empty_mask():
    for name, op in ops.OPS.items():
        m = EMPTY.copy()
        if op.brush and op.at == "point":
            out = op.func(m, 2, 2, 1)
        elif op.at == "points":
            out = op.func(m, [(0, 0), (4, 8)], 1)
        elif op.at == "box":
            out = op.func(m, PRED, 0, 0, 5, 9)
        elif op.pred:
            out = op.func(m, PRED, 1, 1) if op.at == "point" else op.func(m, PRED)
        elif op.at in ("point", "object"):
            out = op.func(m, 2, 2)
        else:
            out = op.func(m)
        assert out.shape == m.shape and out.dtype == bool, name
        assert not m.any(), name
        assert out is not m, name


# ---------------------------------------------------------------------------- history

def test_history_undo_redo_dirty_and_saved():
    h = ops.History(TWO)
    assert not h.can_undo and not h.can_redo and not h.dirty and h.undo() is None
    a = ops.delete_object(TWO, 1, 1)
    assert h.push(a, "delete") and h.dirty and h.undo_label == "delete"
    assert not h.push(a.copy(), "same again")  # no change, no step
    b = ops.grow(a)
    h.push(b, "grow")
    same(h.undo(), a)
    same(h.undo(), TWO)
    assert not h.dirty and h.redo_label == "delete"
    same(h.redo(), a)
    h.mark_saved()
    assert not h.dirty
    same(h.redo(), b)
    assert h.dirty and h.redo() is None
    h.undo()
    # a new change after an undo drops what could have been redone
    c = ops.brush(a, 4, 0, 0)
    h.push(c, "brush")
    assert not h.can_redo and len(h) == 3
    # back to the saved content by another way: not dirty
    h.push(a, "erase")
    assert not h.dirty
    with pytest.raises(ValueError, match="shape"):
        h.push(EMPTY[:2])


def test_history_of_a_large_mask_stays_small():
    m = np.zeros((2048, 2048), bool)
    h = ops.History(m)
    for i in range(20):
        m = ops.brush(m, 100 + 50 * i, 1000, 30)
        h.push(m, "brush")
    assert h.nbytes < 2_000_000  # 20 states of 4 Mpx in less than one packed copy
    for _ in range(20):
        h.undo()
    assert not h.current.any()


# ---------------------------------------------------------------------------- properties

masks = arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 12)))


@settings(max_examples=60, deadline=None)
@given(masks, st.data())
def test_ops_never_change_their_input_and_keep_shape_and_dtype(m, data):
    h, w = m.shape
    y = data.draw(st.integers(0, h - 1))
    x = data.draw(st.integers(0, w - 1))
    pred = data.draw(arrays(bool, m.shape))
    before = m.copy()
    outs = [ops.brush(m, y, x, data.draw(st.integers(0, 3)), data.draw(st.booleans())),
            ops.stroke(m, [(y, x), (h - 1 - y, w - 1 - x)], 1),
            ops.flood_fill(m, y, x, data.draw(st.booleans())),
            ops.fill_holes(m, y, x), ops.fill_holes(m), ops.delete_object(m, y, x),
            ops.add_predicted_object(m, pred, y, x),
            ops.take_prediction_in_box(m, pred, y, x, h, w),
            ops.grow(m, y, x), ops.grow(m), ops.shrink(m, y, x), ops.shrink(m),
            ops.add_unseen_predicted(m, pred), ops.drop_unseen(m, pred)]
    assert np.array_equal(m, before)
    for out in outs:
        assert out.shape == m.shape and out.dtype == bool
    # object-level facts that must hold whatever the mask
    from segtriage.engine.project.scoring.objects import label

    g = ops.grow(m)
    assert (g >= m).all() and label(g)[1] == label(m)[1]
    assert (ops.shrink(m) <= m).all()
    assert (ops.fill_holes(m) >= m).all()
    obj = ops.object_at(m, y, x)
    assert (obj is None) == (not m[y, x])
    if obj is not None:
        assert not (ops.delete_object(m, y, x) & obj).any()
        assert np.array_equal(ops.delete_object(m, y, x), m & ~obj)
        grown = ops.grow(m, y, x)
        assert (grown >= m).all() and label(grown)[1] == label(m)[1]
        assert (ops.object_at(grown, y, x) >= (grown & ~m)).all()  # all of it joins obj


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 9), st.integers(2, 9), st.integers(0, 30), st.integers(0, 30),
       st.integers(1, 3), st.booleans())
def test_grow_then_shrink_of_an_isolated_blob_is_within_one_pixel(ry, rx, cy, cx, px, one):
    # anywhere in the image: cut by the frame, next to it, or away from it
    yy, xx = np.mgrid[0:40, 0:40]
    blob = ((yy - cy - 4.5) / ry) ** 2 + ((xx - cx - 4.5) / rx) ** 2 <= 1
    y, x = np.argwhere(blob)[0] if one else (None, None)
    back = ops.grow_shrink(blob, [px, -px], y, x)
    assert (back >= blob).all()
    # whatever came in lies next to the blob
    from scipy import ndimage as ndi

    assert not (back & ~ndi.binary_dilation(blob, structure=np.ones((3, 3)))).any()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9), st.integers(0, 2),
                          st.booleans()), min_size=1, max_size=12), st.data())
def test_undo_restores_every_state_exactly(strokes, data):
    m = np.zeros((10, 10), bool)
    h = ops.History(m)
    states = [m]
    for y, x, r, v in strokes:
        m = ops.brush(m, y, x, r, v)
        if h.push(m, "brush"):
            states.append(m)
    assert len(h) == len(states)
    for want in reversed(states[:-1]):
        assert np.array_equal(h.undo(), want)
    assert h.undo() is None and not h.dirty
    for want in states[1:]:
        assert np.array_equal(h.redo(), want)
