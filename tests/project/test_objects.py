"""Object metrics: connected components, matching, merged/split, areas, shape (hand-computed)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skimage.measure import regionprops

from segtriage.engine.project.scoring import objects as O

FAST = settings(max_examples=60, deadline=None)


def grid(*rows: str) -> np.ndarray:
    """Bool image from strings: '#' = object."""
    return np.array([[c == "#" for c in r] for r in rows])


def small_masks(max_side: int = 10):
    return st.tuples(st.integers(1, max_side), st.integers(1, max_side)).flatmap(
        lambda s: arrays(bool, s))


# ---------------------------------------------------------------------------- label
def test_label_uses_8_connectivity():
    # two pixels touching only at a corner are one object (4-connectivity would say two)
    lab, n = O.label(grid("#.", ".#"))
    assert n == 1 and lab[0, 0] == lab[1, 1] == 1 and lab[0, 1] == 0
    assert O.CONNECTIVITY == 8


def test_label_counts_separate_objects_and_empty():
    lab, n = O.label(grid("#.#", "...", "#.."))
    assert n == 3
    assert sorted(O.object_areas(lab, n).tolist()) == [1, 1, 1]
    lab, n = O.label(np.zeros((3, 4), bool))
    assert n == 0 and lab.shape == (3, 4) and not lab.any()


def test_label_accepts_uint8_class_indices_and_rejects_3d():
    lab, n = O.label(np.array([[0, 1, 1], [0, 0, 0], [2, 0, 0]], np.uint8))
    assert n == 2
    with pytest.raises(ValueError, match="2-D"):
        O.label(np.zeros((2, 2, 2)))


# ---------------------------------------------------------------------------- matching
def test_match_one_matched_one_missed_one_extra():
    pred = grid("##....",
                "##....",
                "......",
                "....##")
    mask = grid("##....",
                "##..#.",
                "......",
                "......")
    d = O.match_objects(pred, mask)
    # pred: 2x2 square (4 px) + bar (2 px); mask: same square + a single pixel
    assert (d["n_pred"], d["n_mask"], d["matched"], d["missed"], d["extra"]) == (2, 2, 1, 1, 1)
    assert d["matched_iou"] == 1.0
    assert d["area_pred_mean"] == 3.0 and d["area_pred_median"] == 3.0   # (4 + 2) / 2
    assert d["area_mask_mean"] == 2.5 and d["area_mask_median"] == 2.5   # (4 + 1) / 2
    # 24 px = 2.4e-5 megapixels; 2 objects → 83333.3 per megapixel
    assert d["density_pred"] == pytest.approx(2 / 24e-6)
    assert d["density_mask"] == pytest.approx(2 / 24e-6)
    assert d["merged"] == 0 and d["split"] == 0


def test_match_iou_threshold_is_inclusive():
    # pred 2x2 (4 px) inside mask 2x4 (8 px): IoU = 4/8 = 0.5 exactly → matched at 0.5
    pred = grid("##..", "##..")
    mask = grid("####", "####")
    assert O.match_objects(pred, mask, iou=0.5)["matched"] == 1
    d = O.match_objects(pred, mask, iou=0.51)
    assert (d["matched"], d["missed"], d["extra"]) == (0, 1, 1)
    with pytest.raises(ValueError):
        O.match_objects(pred, mask, iou=0.0)


def test_merged_pred_object_covering_two_mask_objects():
    # one predicted bar (2x6 = 12 px) over two 2x2 mask squares: IoU 4/12 each → no match
    pred = grid("######", "######")
    mask = grid("##..##", "##..##")
    d = O.match_objects(pred, mask)
    assert (d["merged"], d["split"]) == (1, 0)
    assert (d["matched"], d["missed"], d["extra"]) == (0, 2, 1)
    # the same picture seen from the other side is a split
    d = O.match_objects(mask, pred)
    assert (d["merged"], d["split"]) == (0, 1)
    assert (d["matched"], d["missed"], d["extra"]) == (0, 1, 2)


def test_specks_do_not_make_a_merge():
    # a 1-px mask speck inside a large predicted object is not a second merged object
    pred = grid("######", "######", "######")
    mask = grid("####..", "####.#", "####..")
    assert O.match_objects(pred, mask)["merged"] == 0


def test_match_empty_and_full():
    z = np.zeros((4, 5), bool)
    d = O.match_objects(z, z)
    assert (d["n_pred"], d["n_mask"], d["matched"], d["missed"], d["extra"]) == (0, 0, 0, 0, 0)
    assert d["area_pred_mean"] is None and d["eccentricity_mask"] is None
    assert d["density_pred"] == 0.0 and d["matched_iou"] is None
    f = np.ones((4, 5), bool)
    d = O.match_objects(f, f)
    assert (d["n_pred"], d["matched"], d["area_mask_mean"], d["solidity_pred"]) == (1, 1, 20.0, 1.0)
    d = O.match_objects(f, z)
    assert (d["extra"], d["missed"], d["n_mask"]) == (1, 0, 0)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        O.match_objects(np.zeros((2, 3)), np.zeros((3, 2)))


# ---------------------------------------------------------------------------- shape
def test_eccentricity_hand_values():
    # single pixel: 0; a straight line: 1; a square: 0
    lab, n = O.label(grid("#....", ".....", "..###", ".....", "##..."))
    lab2, _ = O.label(grid("##", "##"))
    ecc = O.eccentricities(lab, n)
    by_area = dict(zip(O.object_areas(lab, n).tolist(), ecc.tolist()))
    assert by_area[1] == 0.0
    assert by_area[3] == pytest.approx(1.0) and by_area[2] == pytest.approx(1.0)
    assert O.eccentricities(lab2, 1)[0] == pytest.approx(0.0, abs=1e-12)
    # 1x3 rectangle: var_col = 2/3, var_row = 0 → ellipse degenerate → 1; 2x3 block:
    # var_row = 1/4, var_col = 2/3 → sqrt(1 - (1/4)/(2/3)) = sqrt(5/8)
    lab3, _ = O.label(grid("###", "###"))
    assert O.eccentricities(lab3, 1)[0] == pytest.approx(np.sqrt(5 / 8))


def test_solidity_of_an_l_shape():
    # L of 5 px; its convex hull (pixel-edge midpoints, borders in) also holds the pixel on
    # the diagonal: 6 px → 5/6
    lab, n = O.label(grid("#..", "#..", "###"))
    assert O.solidities(lab, n)[0] == pytest.approx(5 / 6)


def test_shape_means_skip_specks():
    # a 3x3 square (ecc 0, solidity 1), a 1x3 line (ecc 1) and an L of 5 px (solidity 5/6):
    # only the square has >= 9 px, so the means are the square's
    m = grid("###.....",
             "###..#..",
             "###..#..",
             ".....###",
             "#.......",
             "#.......",
             "#.......")
    d = O.match_objects(m, m)
    assert d["n_mask"] == 3 and d["area_mask_mean"] == pytest.approx(17 / 3)
    assert d["eccentricity_mask"] == pytest.approx(0.0, abs=1e-12)
    assert d["solidity_mask"] == 1.0
    d = O.match_objects(grid("#.#", "..."), grid("#.#", "..."))
    assert d["eccentricity_pred"] is None and d["solidity_pred"] is None


@FAST
@given(small_masks(12))
def test_shape_stats_equal_skimage_regionprops(m):
    lab, n = O.label(m)
    rp = regionprops(lab)
    assert np.allclose(O.eccentricities(lab, n), [r.eccentricity for r in rp], atol=1e-9)
    assert np.allclose(O.solidities(lab, n), [r.solidity for r in rp], atol=1e-12)


@FAST
@given(small_masks(10).flatmap(lambda a: st.tuples(st.just(a), arrays(bool, a.shape))))
def test_match_count_identities(pair):
    a, b = pair
    d = O.match_objects(a, b)
    assert d["matched"] + d["missed"] == d["n_mask"]
    assert d["matched"] + d["extra"] == d["n_pred"]
    assert 0 <= d["matched"] <= min(d["n_pred"], d["n_mask"])
    rev = O.match_objects(b, a)
    assert (rev["missed"], rev["extra"], rev["matched"]) == (d["extra"], d["missed"], d["matched"])
    assert (rev["merged"], rev["split"]) == (d["split"], d["merged"])
    same = O.match_objects(a, a)
    assert same["missed"] == same["extra"] == 0 and same["matched"] == same["n_mask"]
