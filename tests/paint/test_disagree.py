"""The painter's disagreements kept up to date edit by edit (``Disagreements``) give what
working them out from scratch gives, after any edit."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from segtriage.tui.paint import ops
from segtriage.tui.paint.disagree import Disagreements, Region


def key(r: Region) -> tuple:
    return (r.kind, r.y0, r.x0, r.y1, r.x1, r.pixels, r.cy, r.cx)


def grid(text: str) -> np.ndarray:
    return np.array([[c == "#" for c in r.strip()] for r in text.strip().splitlines()])


def test_an_edit_that_joins_an_extra_object_to_another_ends_it():
    # the mask's lone pixel at (3, 3) is extra (the model has nothing there); painting
    # (2, 2) joins it to the big object, which the model does see
    m0 = grid("""
        #.#..
        .#.#.
        .#...
        ##.#.
        #....
    """)
    pred = grid("""
        .#.#.
        .#.#.
        .#..#
        #.#..
        #....
    """)
    d = Disagreements(pred, None, min_px=1)
    assert ("extra", 3, 3, 4, 4, 1, 3, 3) in [key(r) for r in d.regions(m0)]
    m1 = ops.brush(m0, 2, 2, 0)
    got = [key(r) for r in d.regions(m1)]
    assert got == [key(r) for r in ops.disagreements(m1, pred, None, 1)]
    assert not [k for k in got if k[0] == "extra"]
    # one mask object now; the model's two both overlap it; mask XOR model is row 0's four
    # pixels and the five of (2, 2), (2, 4), (3, 1..3); centres nearest (2.6, 2.4) and (0, 1.5)
    assert got == [("boundary", 2, 1, 4, 5, 5, 3, 2), ("boundary", 0, 0, 1, 4, 4, 0, 1)]


def test_8_bit_confidence_is_the_same_as_the_float_one():
    m = np.zeros((4, 4), bool)
    pred = np.ones((4, 4), bool)
    m[0] = True
    prob = np.array([[255] * 4, [192] * 4, [191] * 4, [100] * 4], np.uint8)
    # max(P, 1 - P) >= 0.75: 192/255 = 0.753 counts, 191/255 = 0.749 does not
    got = ops.disagreements(m, pred, prob, 1)
    assert [(r.y0, r.y1, r.pixels) for r in got] == [(1, 2, 4)]
    assert [key(r) for r in got] == [key(r) for r in ops.disagreements(m, pred, prob / 255, 1)]


edits = st.lists(st.tuples(st.sampled_from(["paint", "erase", "delete", "fill", "grow",
                                            "add"]),
                           st.integers(0, 15), st.integers(0, 19), st.integers(0, 3)),
                 min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(arrays(bool, (16, 20)), arrays(bool, (16, 20)), edits, st.integers(1, 6),
       st.booleans())
def test_kept_up_to_date_equals_from_scratch(m, pred, steps, min_px, with_prob):
    prob = np.where(pred, 200, 30).astype(np.uint8) if with_prob else None
    if with_prob:
        prob[::3] = 140                              # some pixels the model is unsure of
    d = Disagreements(pred, prob, min_px)
    assert [key(r) for r in d.regions(m)] == \
        [key(r) for r in ops.disagreements(m, pred, prob, min_px)]
    for what, y, x, r in steps:
        if what in ("paint", "erase"):
            m = ops.brush(m, y, x, r, what == "paint")
        elif what == "delete":
            m = ops.delete_object(m, y, x)
        elif what == "fill":
            m = ops.flood_fill(m, y, x)
        elif what == "grow":
            m = ops.grow(m, px=r)
        else:
            m = ops.add_predicted_object(m, pred, y, x)
        assert [key(r) for r in d.regions(m)] == \
            [key(r) for r in ops.disagreements(m, pred, prob, min_px)]
