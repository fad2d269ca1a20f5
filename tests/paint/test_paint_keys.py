"""Every fixing key of the painter in Pilot, on 12 x 16 masks written below as 0/1 grids:
the mask after each key against one worked out by hand, then undo (u) and redo (U).
Covered for each: the object under the cursor, touching objects, the image border, an
empty mask."""

from __future__ import annotations

import numpy as np
from PIL import Image

from segtriage.tui.paint.app import PaintApp
from segtriage.tui.paint.document import open_document
from segtriage.tui.paint.view import PaintView


def grid(text: str) -> np.ndarray:
    rows = [r.strip() for r in text.strip().splitlines()]
    assert len({len(r) for r in rows}) == 1 and set("".join(rows)) <= {"0", "1"}
    return np.array([[c == "1" for c in r] for r in rows], dtype=bool)


def show(m: np.ndarray) -> str:
    return "\n".join("".join("1" if v else "0" for v in row) for row in m)


def same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    assert np.array_equal(got, want), f"got\n{show(got)}\nwant\n{show(want)}"


EMPTY = np.zeros((12, 16), bool)

# A: a ring with a hole at (2, 2); B: a 3x2 block; C and D: 2x2 blocks touching at a corner
# ((8, 5) and (9, 6)), one object for 8-connectivity; E: a ring in the bottom-right corner,
# cut by the frame on two sides, with a hole at (10, 14)
MASK = grid("""
    0000000000000000
    0111000000000000
    0101000000110000
    0111000000110000
    0000000000110000
    0000000000000000
    0000000000000000
    0000110000000000
    0000110000000000
    0000001100000111
    0000001100000101
    0000000000000111
""")
# the model: A without its hole; no B; F, a 2x2 object the mask lacks at (5..6, 8..9);
# G, one cut by the top-right corner; C one column wider (so C and D are one object, 4-touching
# at (8, 6) - (9, 6)); E without its hole
PRED = grid("""
    0000000000000011
    0111000000000011
    0111000000000000
    0111000000000000
    0000000000000000
    0000000011000000
    0000000011000000
    0000111000000000
    0000111000000000
    0000001100000111
    0000001100000111
    0000000000000111
""")


def _doc(tmp_path, mask, pred=None, name="cells"):
    mask_path = tmp_path / f"{name}_mask.png"
    Image.fromarray(mask.astype(np.uint8) * 255).save(mask_path)
    image = tmp_path / f"{name}.png"
    Image.fromarray((mask * 100 + 50).astype(np.uint8)).save(image)
    prob = None
    if pred is not None:
        prob = tmp_path / f"{name}_prob.png"
        Image.fromarray(pred.astype(np.uint8) * 255).save(prob)
    return open_document(mask_path, image=image, prob=prob)


def _status(app) -> str:
    return str(app.query_one("#paint-status").render())


async def goto(pilot, y: int, x: int) -> None:
    """Put the painter's cursor on (y, x) (as a mouse click does; the arrow keys are tested
    in test_paint_app.py)."""
    view = pilot.app.query_one(PaintView)
    view.set_cursor(y, x)
    await pilot.pause()
    assert view.cursor == (y, x)


async def undo_redo(pilot, before: np.ndarray, after: np.ndarray) -> None:
    """u gives back ``before``, U ``after`` again, and what is drawn follows."""
    app = pilot.app
    await pilot.press("u")
    same(app.history.current, before)
    same(app.scene.mask, before)
    await pilot.press("U")
    same(app.history.current, after)
    same(app.scene.mask, after)


async def check(pilot, keys, want, at=None) -> None:
    """Press ``keys`` (after moving to ``at``); the mask must become ``want``; then undo and
    redo; then undo again so the next check starts from the same mask."""
    app = pilot.app
    if at is not None:
        await goto(pilot, *at)
    before = app.history.current.copy()
    await pilot.press(*keys)
    same(app.history.current, want)
    if np.array_equal(before, want):
        assert "nothing changed" in _status(app)
        return
    await undo_redo(pilot, before, want)
    await pilot.press("u")
    same(app.history.current, before)


def _with(m: np.ndarray, *cells, value=True) -> np.ndarray:
    out = m.copy()
    for y, x in cells:
        out[y, x] = value
    return out


C = [(7, 4), (7, 5), (8, 4), (8, 5)]
D = [(9, 6), (9, 7), (10, 6), (10, 7)]
E = [(9, 13), (9, 14), (9, 15), (10, 13), (10, 15), (11, 13), (11, 14), (11, 15)]


# ---------------------------------------------------------------------------- flood fill

async def test_flood_fill_keys(tmp_path):
    app = PaintApp(_doc(tmp_path, MASK))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        # in A's hole: only the hole (it is closed off, 4-connected)
        await check(pilot, ["f"], _with(MASK, (2, 2)), at=(2, 2))
        # on an object in paint mode: it is already set
        await check(pilot, ["f"], MASK, at=(1, 1))
        # at the border, on the open background: everything but the two holes
        await check(pilot, ["f"], ~grid("""
            0000000000000000
            0000000000000000
            0010000000000000
            0000000000000000
            0000000000000000
            0000000000000000
            0000000000000000
            0000000000000000
            0000000000000000
            0000000000000000
            0000000000000010
            0000000000000000
        """), at=(0, 0))
        # erase mode on C: C goes, D (touching it only at a corner) stays
        await pilot.press("e")
        await check(pilot, ["f"], _with(MASK, *C, value=False), at=(8, 5))
        # erase mode on E, cut by the frame: all of the ring
        await check(pilot, ["f"], _with(MASK, *E, value=False), at=(11, 15))


async def test_flood_fill_of_an_empty_mask_fills_it(tmp_path):
    app = PaintApp(_doc(tmp_path, EMPTY))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await check(pilot, ["f"], ~EMPTY, at=(11, 0))
        await pilot.press("e")
        await check(pilot, ["f"], EMPTY)                # erasing nothing changes nothing


# ---------------------------------------------------------------------------- fill holes

async def test_fill_holes_keys(tmp_path):
    app = PaintApp(_doc(tmp_path, MASK))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await check(pilot, ["i"], _with(MASK, (2, 2)), at=(3, 3))        # A's hole only
        await check(pilot, ["i"], _with(MASK, (10, 14)), at=(9, 13))     # E, at the border
        await check(pilot, ["i"], _with(MASK, (10, 14)), at=(10, 14))    # on the hole itself
        await check(pilot, ["i"], MASK, at=(8, 4))                       # C has none
        await check(pilot, ["i"], MASK, at=(5, 5))                       # open background
        await check(pilot, ["I"], _with(MASK, (2, 2), (10, 14)))         # every object


async def test_fill_holes_of_an_empty_mask_changes_nothing(tmp_path):
    app = PaintApp(_doc(tmp_path, EMPTY))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await check(pilot, ["I"], EMPTY)
        await check(pilot, ["i"], EMPTY, at=(0, 0))
        assert len(app.history) == 1


# ---------------------------------------------------------------------------- delete

async def test_delete_object_keys(tmp_path):
    app = PaintApp(_doc(tmp_path, MASK))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        a = [(1, 1), (1, 2), (1, 3), (2, 1), (2, 3), (3, 1), (3, 2), (3, 3)]
        await check(pilot, ["d"], _with(MASK, *a, value=False), at=(2, 3))
        # C and D touch at a corner: one object, both go
        await check(pilot, ["d"], _with(MASK, *C, *D, value=False), at=(10, 7))
        await check(pilot, ["d"], _with(MASK, *E, value=False), at=(11, 15))   # the border
        await check(pilot, ["d"], MASK, at=(10, 14))                           # E's hole
        await check(pilot, ["d"], MASK, at=(0, 0))


async def test_delete_on_an_empty_mask_changes_nothing(tmp_path):
    app = PaintApp(_doc(tmp_path, EMPTY))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await check(pilot, ["d"], EMPTY)
        assert not app.history.dirty


# ---------------------------------------------------------------------------- prediction

async def test_add_predicted_object_keys(tmp_path):
    app = PaintApp(_doc(tmp_path, MASK, PRED))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        f = [(5, 8), (5, 9), (6, 8), (6, 9)]
        await check(pilot, ["a"], _with(MASK, *f), at=(6, 9))
        g = [(0, 14), (0, 15), (1, 14), (1, 15)]
        await check(pilot, ["a"], _with(MASK, *g), at=(0, 15))          # cut by the frame
        # the predicted C touches D: one predicted object; C's extra column joins the mask
        await check(pilot, ["a"], _with(MASK, (7, 6), (8, 6)), at=(8, 6))
        # A: the predicted one has no hole; a union, so the mask's ring stays
        await check(pilot, ["a"], _with(MASK, (2, 2)), at=(2, 2))
        await check(pilot, ["a"], _with(MASK, (10, 14)), at=(11, 13))   # E, at the border
        await check(pilot, ["a"], MASK, at=(3, 11))      # B: the model has nothing there


async def test_add_predicted_object_on_an_empty_mask(tmp_path):
    app = PaintApp(_doc(tmp_path, EMPTY, PRED))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        a = grid("""
            0000000000000000
            0111000000000000
            0111000000000000
            0111000000000000
            0000000000000000
            0000000000000000
            0000000000000000
            0000000000000000
            0000000000000000
            0000000000000000
            0000000000000000
            0000000000000000
        """)
        await check(pilot, ["a"], a, at=(1, 1))


async def test_add_predicted_without_a_prediction_says_so(tmp_path):
    app = PaintApp(_doc(tmp_path, MASK))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await goto(pilot, 1, 1)
        await pilot.press("a")
        same(app.history.current, MASK)
        assert "no prediction" in _status(app)
        await pilot.press("r")
        assert app.box_corner is None and "no prediction" in _status(app)


async def test_take_the_prediction_inside_a_box(tmp_path):
    app = PaintApp(_doc(tmp_path, MASK, PRED))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        # rows 1..3, columns 1..11 (both corners included): A's hole filled, B's two top rows
        # go (the model has nothing there); B's bottom row is outside the box
        want = _with(MASK, (2, 10), (2, 11), (3, 10), (3, 11), value=False)
        want[2, 2] = True
        await goto(pilot, 3, 11)
        await pilot.press("r")                               # one corner: nothing yet
        same(app.history.current, MASK)
        assert app.box_corner == (3, 11) and "box" in _status(app)
        await check(pilot, ["r"], want, at=(1, 1))
        assert app.box_corner is None
        # along the right border, the corners given bottom-right first: G comes, E's hole fills
        await goto(pilot, 11, 15)
        await pilot.press("r")
        await check(pilot, ["r"], _with(MASK, (0, 14), (0, 15), (1, 14), (1, 15), (10, 14)),
                    at=(0, 13))
        # escape drops a started box
        await pilot.press("r", "escape", "j", "r")
        assert app.box_corner == (1, 13)
        await pilot.press("escape")


async def test_take_the_prediction_in_a_box_on_an_empty_mask(tmp_path):
    app = PaintApp(_doc(tmp_path, EMPTY, PRED))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await goto(pilot, 0, 0)
        await pilot.press("r")
        await check(pilot, ["r"], PRED, at=(11, 15))         # the whole image


# ---------------------------------------------------------------------------- grow, shrink

# S1: a 3x3 block with one background column between it and S2, a 2x2 block; S3: a block cut
# by the right and bottom frame
GS = grid("""
    0000000000000000
    0000000000000000
    0011100000000000
    0011101100000000
    0011101100000000
    0000000000000000
    0000000000000000
    0000000000000000
    0000000000000111
    0000000000000111
    0000000000000111
    0000000000000111
""")


async def test_grow_and_shrink_keys(tmp_path):
    app = PaintApp(_doc(tmp_path, GS))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        # S1 grows a pixel up, down and left; not right, where it would touch S2
        await check(pilot, ["g"], grid("""
            0000000000000000
            0011100000000000
            0111100000000000
            0111101100000000
            0111101100000000
            0011100000000000
            0000000000000000
            0000000000000000
            0000000000000111
            0000000000000111
            0000000000000111
            0000000000000111
        """), at=(3, 3))
        # S3 grows inwards only (the frame is not grown into)
        await check(pilot, ["g"], grid("""
            0000000000000000
            0000000000000000
            0011100000000000
            0011101100000000
            0011101100000000
            0000000000000000
            0000000000000000
            0000000000000111
            0000000000001111
            0000000000001111
            0000000000001111
            0000000000001111
        """), at=(10, 14))
        await check(pilot, ["g"], GS, at=(6, 6))                  # background
        # every object: S1 and S2 both stop short of the column between them
        await check(pilot, ["G"], grid("""
            0000000000000000
            0011100000000000
            0111101100000000
            0111101110000000
            0111101110000000
            0011101100000000
            0000000000000000
            0000000000000111
            0000000000001111
            0000000000001111
            0000000000001111
            0000000000001111
        """))
        # shrinking S1 leaves its centre
        s1 = GS.copy()
        s1[2:5, 2:5] = False
        s1[3, 3] = True
        await check(pilot, ["s"], s1, at=(3, 3))
        # S3 is cut by the frame: it is not eaten from the frame's side
        s3 = GS.copy()
        s3[8, 13:] = False
        s3[8:, 13] = False
        await check(pilot, ["s"], s3, at=(11, 15))
        # every object: S2 (2x2) goes entirely
        s_all = s1 & s3
        s_all[3:5, 6:8] = False
        await check(pilot, ["S"], s_all)


async def test_grow_and_shrink_on_an_empty_mask_change_nothing(tmp_path):
    app = PaintApp(_doc(tmp_path, EMPTY))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        for key in ("g", "G", "s", "S"):
            await check(pilot, [key], EMPTY)
        assert len(app.history) == 1


# a square cut by the left frame, two rows below the top frame
NEAR = grid("""
    0000000000000000
    0000000000000000
    1110000000000000
    1110000000000000
    1110000000000000
    0000000000000000
    0000000000000000
    0000000000000000
    0000000000000000
    0000000000000000
    0000000000000000
    0000000000000000
""")


async def test_grow_twice_then_shrink_twice_gives_the_object_back_at_the_frame(tmp_path):
    app = PaintApp(_doc(tmp_path, NEAR))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await goto(pilot, 3, 1)
        await pilot.press("g", "g")
        grown = grid("""
            1110000000000000
            1111000000000000
            1111100000000000
            1111100000000000
            1111100000000000
            1111000000000000
            1110000000000000
            0000000000000000
            0000000000000000
            0000000000000000
            0000000000000000
            0000000000000000
        """)
        same(app.history.current, grown)
        await pilot.press("s")
        same(app.history.current, grid("""
            0000000000000000
            1110000000000000
            1111000000000000
            1111000000000000
            1111000000000000
            1110000000000000
            0000000000000000
            0000000000000000
            0000000000000000
            0000000000000000
            0000000000000000
            0000000000000000
        """))
        await pilot.press("s")
        same(app.history.current, NEAR)                     # not glued to the top frame
        assert len(app.history) == 5                        # each press is one undo step
        await pilot.press("u", "u")
        same(app.history.current, grown)
        # after an undo the presses start again from the mask as it is: shrinking the grown
        # square, which now touches the top frame, keeps what lies against the frame
        await pilot.press("s", "s")
        same(app.history.current, grid("""
            1000000000000000
            1100000000000000
            1110000000000000
            1110000000000000
            1110000000000000
            0000000000000000
            0000000000000000
            0000000000000000
            0000000000000000
            0000000000000000
            0000000000000000
            0000000000000000
        """))


# ---------------------------------------------------------------------------- next disagreement

# the mask has an object the model lacks (A, 9 px: "extra"); the model has one the mask lacks
# (M, 12 px: "missed"); on the shared block they differ by 4 px (under the 9 px that count)
DIS_MASK = grid("""
    0000000000000000
    0111000000000000
    0111000000000000
    0111000000000000
    0000000000000000
    0000000000000000
    0000000000000000
    0000000000111100
    0000000000111100
    0000000000111100
    0000000000000000
    0000000000000000
""")
DIS_PRED = grid("""
    0000000000000000
    0000000000000000
    0000000000000000
    0000000000000000
    0000000000000000
    0000000000000000
    0000000000000000
    0000000000111100
    0111100000111100
    0111100000111100
    0111100000111100
    0000000000000000
""")


async def test_next_disagreement_moves_the_cursor_and_follows_edits(tmp_path):
    app = PaintApp(_doc(tmp_path, DIS_MASK, DIS_PRED))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        view = app.query_one(PaintView)
        await pilot.press("n")
        # biggest first: M, rows 8..10, columns 1..4; the pixel nearest its centre (9, 2.5)
        assert view.cursor == (9, 2) and "1/2 missed (12 px)" in _status(app)
        await pilot.press("n")
        assert view.cursor == (2, 2) and "2/2 extra (9 px)" in _status(app)
        await pilot.press("n")
        assert view.cursor == (9, 2)                        # round again
        await pilot.press("N")
        assert view.cursor == (2, 2)
        # deleting the extra object leaves one region
        await pilot.press("d")
        same(app.history.current, _with(DIS_MASK, *[(y, x) for y in (1, 2, 3)
                                                     for x in (1, 2, 3)], value=False))
        await pilot.press("n")
        assert view.cursor == (9, 2) and "1/1 missed (12 px)" in _status(app)
        # adding it ends the disagreements
        await pilot.press("a")
        await pilot.press("n")
        assert "1/1" not in _status(app) and view.cursor == (9, 2)
        # undo brings the missed object back
        await pilot.press("u", "n")
        assert view.cursor == (9, 2) and "1/1 missed (12 px)" in _status(app)
        await pilot.press("u", "n")
        assert view.cursor == (9, 2) and "1/2 missed (12 px)" in _status(app)


async def test_next_disagreement_on_an_empty_mask_and_without_a_prediction(tmp_path):
    app = PaintApp(_doc(tmp_path, EMPTY, DIS_PRED))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        view = app.query_one(PaintView)
        await pilot.press("n")
        # every predicted object is missed: the 4x4 block (16 px) first, at its centre
        # (8.5, 11.5): the first of the four nearest pixels
        assert view.cursor == (8, 11) and "1/2 missed (16 px)" in _status(app)
        await pilot.press("n")
        assert view.cursor == (9, 2) and "2/2 missed (12 px)" in _status(app)
    app = PaintApp(_doc(tmp_path, DIS_MASK, name="noprob"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        view = app.query_one(PaintView)
        before = view.cursor
        await pilot.press("n")
        assert view.cursor == before and view.regions == []


async def test_next_disagreement_zooms_and_pans_the_view_to_it(tmp_path):
    # the same masks 20 times bigger (240 x 320): M is rows 160..219, columns 20..99
    big = np.ones((20, 20), bool)
    app = PaintApp(_doc(tmp_path, np.kron(DIS_MASK, big), np.kron(DIS_PRED, big)))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        view = app.query_one(PaintView)
        assert view.vp.shows_all()
        await pilot.press("n")
        # the largest zoom step at which the 60 x 80 box takes at most half the view
        # (80 x 44 dots): 1/4 (20 columns, 15 dot rows)
        assert view.vp.zoom == 0.25
        y0, x0, y1, x1 = view.vp.window()
        assert not view.vp.shows_all()
        assert y0 <= 160 and 220 <= y1 and x0 <= 20 and 100 <= x1
        cy, cx = view.cursor
        assert 160 <= cy < 220 and 20 <= cx < 100 and view.scene.pred[cy, cx]
        await pilot.press("n")
        y0, x0, y1, x1 = view.vp.window()
        assert y0 <= 20 and 80 <= y1 and x0 <= 20 and 80 <= x1   # A: rows 20..79
