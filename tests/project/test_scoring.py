"""Per-image scoring: hand-computed formulas, edge cases, invariants, triage and ordering."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage as ndi

from segtriage.engine.project import scoring as S
from segtriage.engine.project.config import ScoringConfig
from segtriage.engine.store import SCORE_COLUMNS

FAST = settings(max_examples=60, deadline=None)
LN2 = math.log(2)


def H(p: float) -> float:
    """Binary entropy in nats, clamped like the module."""
    p = min(max(p, 1e-6), 1 - 1e-6)
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def json_safe(d: dict) -> None:
    json.dumps(d, allow_nan=False)  # raises on NaN / inf / numpy scalars


# ---------------------------------------------------------------------------- formulas
def test_dice_and_iou_by_hand():
    a = np.array([[1, 1, 0, 0]], bool)
    b = np.array([[0, 1, 1, 0]], bool)
    # |a∧b| = 1, |a| + |b| = 4 → Dice 2/4; |a∨b| = 3 → IoU 1/3
    assert S.dice(a, b) == 0.5 and S.iou(a, b) == pytest.approx(1 / 3)
    z = np.zeros((2, 2), bool)
    assert S.dice(z, z) == 1.0 and S.iou(z, z) == 1.0          # both empty: agree
    assert S.dice(z, ~z) == 0.0 and S.iou(z, ~z) == 0.0          # one empty


def test_soft_dice_ce_entropy_softmin_by_hand():
    p = np.array([[0.9, 0.2]])
    y = np.array([[1, 0]], bool)
    # soft Dice = 2·0.9 / (1.1 + 1) = 1.8 / 2.1
    assert S.soft_dice(p, y) == pytest.approx(1.8 / 2.1)
    assert S.soft_dice(np.zeros((2, 2)), np.zeros((2, 2), bool)) == 1.0
    assert S.soft_dice(np.full((2, 2), 0.1), np.zeros((2, 2), bool)) == 0.0  # empty mask, p>0
    # CE = −(ln 0.9 + ln 0.8) / 2
    assert S.cross_entropy(p, y) == pytest.approx(-(math.log(0.9) + math.log(0.8)) / 2)
    # clamping: p = 0 where y = 1 costs −ln 1e-6 = 13.8155, not inf
    assert S.cross_entropy(np.array([[0.0]]), np.array([[True]])) == pytest.approx(13.815510558)
    # both entropy terms: H(0.5) = ln 2, H(0.9) = 0.325083
    assert S.binary_entropy(np.array([0.5, 0.9])) == pytest.approx([LN2, 0.3250829734])
    # cleanlab soft-min, s = [0.9, 0.8], T = 0.1: weights e^{1}, e^{2}
    w1, w2 = math.exp(1), math.exp(2)
    assert S.softmin_quality(p, y, 0.1) == pytest.approx((0.9 * w1 + 0.8 * w2) / (w1 + w2))


def test_score_image_row_by_hand():
    prob = np.array([[0.9, 0.6, 0.25, 0.0]])
    mask = np.array([[1, 1, 0, 1]], np.uint8)
    d = S.score_image(prob, mask)
    json_safe(d)
    assert set(SCORE_COLUMNS) <= set(d)
    # ŷ = [1 1 0 0]; y = [1 1 0 1]: |ŷ∧y| = 2, |ŷ| + |y| = 5, |ŷ∨y| = 3
    assert d["dice"] == 0.8 and d["iou"] == pytest.approx(2 / 3)
    # m = [.9 .6 .75 1] → mean .8125; margin g = [.8 .2 .5 1] → .625; m < .8 at 2 of 4
    assert d["confidence"] == pytest.approx(0.8125)
    assert d["margin"] == pytest.approx(0.625)
    assert d["frac_uncertain"] == 0.5
    assert d["entropy"] == pytest.approx((H(.9) + H(.6) + H(.25) + H(0)) / 4, rel=1e-6)
    # p_y = [.9 .6 .75 1e-6]: CE = (0.1053605 + 0.5108256 + 0.2876821 + 13.8155106) / 4
    assert d["ce"] == pytest.approx(14.7193788 / 4, rel=1e-6)
    # soft Dice = 2(0.9 + 0.6 + 0) / (1.75 + 3) = 3 / 4.75
    assert d["soft_dice"] == pytest.approx(3 / 4.75, rel=1e-6)
    w = [math.exp((1 - s) / 0.1) for s in (0.9, 0.6, 0.75, 0.0)]
    assert d["lq_softmin"] == pytest.approx(
        sum(s * wi for s, wi in zip((0.9, 0.6, 0.75, 0.0), w)) / sum(w), rel=1e-5)
    # the region (union dilated by 2) is the whole row
    assert d["region_confidence"] == pytest.approx(0.8125)
    # objects (8-conn): ŷ one object of 2 px; y two (2 px, 1 px) → 1 matched, 1 missed
    assert (d["n_pred"], d["n_mask"], d["matched"], d["missed"], d["extra"]) == (1, 2, 1, 1, 0)
    assert d["area_mask_mean"] == 1.5 and d["density_pred"] == pytest.approx(1 / 4e-6)
    # label quality: only pixel 3 differs, margin 1. Its gap to the edges: 2 px to ŷ's edge
    # + 1 px to y's edge − 1 = 2 → tolerance 2/3. f_pix = (2/3) / (|ŷ∨y| 3 + floor 9) = 1/18.
    assert d["lq_pixel"] == pytest.approx(1 - 1 / 18)
    # the missed 1-px mask object counts by its area only (above), not as an object: the
    # object term counts extra predicted objects, and there are none
    assert d["lq_object"] == 1.0
    assert d["label_quality"] == pytest.approx(17 / 18)
    # every pixel is within 2 px of an edge: all band, no interior, so core = region
    assert d["uncertainty_boundary"] == pytest.approx((0.2 + 0.8 + 0.5 + 0.0) / 4)
    assert d["uncertainty_interior"] is None and d["uncertainty_background"] is None
    assert d["core_confidence"] == pytest.approx(0.8125)
    assert d["disagreement_confidence"] == 1.0
    # core .8125 < .9 → unsure; Dice .8 is not < .8; lq .944 ≥ .8 → uncertain
    assert d["category"] == "uncertain"
    e, u = 1 / 18, 2 * (1 - 0.8125)
    assert d["priority"] == pytest.approx(1 - (1 - e) * (1 - 0.1 * u))


def test_uint8_probabilities_equal_float_over_255():
    rng = np.random.default_rng(3)
    p8 = rng.integers(0, 256, (9, 11), dtype=np.uint8)
    mask = (rng.random((9, 11)) > 0.6).astype(np.uint8)
    a = S.score_image(p8, mask)
    b = S.score_image(p8.astype(np.float32) / 255, mask)
    assert a == b


# ---------------------------------------------------------------------------- edge cases
def test_empty_mask_and_background_prediction():
    d = S.score_image(np.full((6, 6), 0.05), np.zeros((6, 6), np.uint8))
    json_safe(d)
    assert d["dice"] == 1.0 and d["iou"] == 1.0
    assert d["ce"] == pytest.approx(-math.log(0.95), rel=1e-6)
    assert d["soft_dice"] == 0.0  # Σp·y = 0 while Σp > 0: soft Dice's empty-mask failure
    assert d["n_pred"] == 0 and d["n_mask"] == 0 and d["missed"] == d["extra"] == 0
    assert d["label_quality"] == 1.0 and d["area_mask_mean"] is None
    # no objects anywhere: the region is empty and falls back to the whole image
    assert d["region_confidence"] == pytest.approx(0.95) == d["core_confidence"]
    assert d["category"] == "agrees"
    assert d["priority"] == pytest.approx(0.1 * 2 * 0.05)


def test_prob_all_zero_and_all_one():
    z = np.zeros((5, 5))
    d = S.score_image(z, np.zeros((5, 5), np.uint8))
    assert d["dice"] == 1.0 and d["soft_dice"] == 1.0
    assert d["ce"] == pytest.approx(1e-6, abs=1e-9)            # −ln(1 − 1e-6), clamped
    assert d["entropy"] == pytest.approx(H(0.0), rel=1e-3)      # ≈ 1.48e-5, not NaN
    d = S.score_image(np.ones((5, 5)), np.ones((5, 5), np.uint8))  # full mask, full prediction
    json_safe(d)
    assert d["dice"] == 1.0 and d["soft_dice"] == 1.0 and d["n_pred"] == d["n_mask"] == 1
    assert d["uncertainty_boundary"] is None      # the image border is not an object edge
    assert d["uncertainty_interior"] == 0.0 and d["category"] == "agrees"
    # the model is certain of objects everywhere, the mask is empty: as wrong as it gets
    d = S.score_image(np.ones((5, 5)), np.zeros((5, 5), np.uint8))
    assert d["dice"] == 0.0 and d["ce"] == pytest.approx(13.815510558)
    assert d["label_quality"] == 0.0 and d["extra"] == 1 and d["extra_confident"] == 1
    assert d["category"] == "disagrees" and d["priority"] == pytest.approx(0.999)


def test_single_pixel_image_and_single_pixel_object():
    d = S.score_image(np.array([[0.9]]), np.array([[1]], np.uint8))
    json_safe(d)
    assert d["dice"] == 1.0 and d["ce"] == pytest.approx(-math.log(0.9))
    assert (d["n_pred"], d["matched"]) == (1, 1)
    # a speck has no meaningful shape: shape means skip objects under 9 px
    assert (d["eccentricity_pred"], d["solidity_mask"]) == (None, None)
    prob = np.full((5, 5), 0.02)
    prob[2, 2] = 0.95
    mask = np.zeros((5, 5), np.uint8)
    mask[2, 2] = 1
    d = S.score_image(prob, mask)
    assert d["dice"] == 1.0 and d["label_quality"] == 1.0 and d["area_pred_mean"] == 1.0
    assert d["density_mask"] == pytest.approx(1 / 25e-6)


def test_multi_object_image_by_hand():
    # three 3x3 squares predicted with p = .95 (background .02); the mask lacks the third
    prob = np.full((12, 12), 0.02)
    mask = np.zeros((12, 12), np.uint8)
    for r, c in ((1, 1), (1, 7), (7, 4)):
        prob[r:r + 3, c:c + 3] = 0.95
    mask[1:4, 1:4] = 1
    mask[1:4, 7:10] = 1
    d = S.score_image(prob, mask)
    # |ŷ| = 27, |y| = 18, overlap 18 → Dice 36/45, IoU 18/27
    assert d["dice"] == pytest.approx(0.8) and d["iou"] == pytest.approx(2 / 3)
    assert (d["n_pred"], d["n_mask"], d["matched"], d["missed"], d["extra"]) == (3, 2, 2, 0, 1)
    # the extra object: 9 px, all contradicted with margin .9 → weight .9 over 3 objects
    assert d["lq_object"] == pytest.approx(1 - 0.9 / 3)
    assert d["extra_confident"] == 1 and d["missed_confident"] == 0
    assert d["category"] == "disagrees"


def test_outline_bias_by_hand():
    # one object: the model is certain of a 6x6 square (p = 1, background 0); the mask
    # draws a 4x4 square inside it → M = 16, P = 36 (growing adds only p = 0 pixels)
    prob = np.zeros((14, 14))
    prob[3:9, 3:9] = 1.0
    tight = np.zeros((14, 14), np.uint8)
    tight[4:8, 4:8] = 1
    d = S.score_image(prob, tight)
    assert d["outline_bias"] == pytest.approx(math.log((16 + 9) / (36 + 9)))  # floor 9 px
    # the same outline as the model's: 0; a looser one: above 0
    assert S.score_image(prob, (prob > 0.5).astype(np.uint8))["outline_bias"] == 0.0
    loose = np.zeros((14, 14), np.uint8)
    loose[2:10, 2:10] = 1
    assert S.score_image(prob, loose)["outline_bias"] == pytest.approx(math.log(73 / 45))
    # soft edges count: a ring of p = .5 just outside the square (inside the 2-px growth,
    # not in ŷ) adds .5 per pixel to P: (8² − 6²)·.5 = 14
    soft = prob.copy()
    soft[2:10, 2:10] = np.maximum(soft[2:10, 2:10], 0.5)
    d = S.score_image(soft, (prob > 0.5).astype(np.uint8))
    assert d["outline_bias"] == pytest.approx(math.log((36 + 9) / (36 + 14 + 9)))
    # an object only one side sees does not count: a second 3x3 object in the mask alone
    # leaves the bias of the shared object as it was
    both = tight.copy()
    both[11:14, 11:14] = 1
    assert S.score_image(prob, both)["outline_bias"] == pytest.approx(math.log(25 / 45))
    # nothing both sides see: None (an empty mask is not the tightest outline of all)
    assert S.score_image(prob, np.zeros((14, 14), np.uint8))["outline_bias"] is None
    assert S.score_image(np.zeros((14, 14)), tight)["outline_bias"] is None
    assert S.score_image(prob, None)["outline_bias"] is None


def test_outline_bias_ranks_an_eroded_mask_first():
    # four round objects the model sees; the given masks: the model's own outline, a halo
    # one pixel wider, and the same objects eroded to about half their area
    yy, xx = np.mgrid[:64, :64]
    truth = np.zeros((64, 64), bool)
    for cy, cx in ((16, 16), (16, 46), (46, 16), (46, 46)):
        truth |= (yy - cy) ** 2 + (xx - cx) ** 2 <= 7 ** 2
    prob = np.where(truth, 0.97, 0.02)
    masks = {"same": truth, "halo": ndi.binary_dilation(truth),
             "eroded": ndi.binary_erosion(truth, iterations=2)}
    assert 0.4 < masks["eroded"].sum() / truth.sum() < 0.6
    bias = {k: S.score_image(prob, m.astype(np.uint8))["outline_bias"] for k, m in masks.items()}
    assert bias["eroded"] < -0.5 < bias["same"] < bias["halo"]
    assert S.SORT_KEYS["outline_bias"] == "asc"  # too tight first


def test_no_mask_keeps_confidence_and_blanks_agreement():
    prob = np.full((8, 8), 0.03)
    prob[2:5, 2:5] = 0.97
    d = S.score_image(prob, None)
    json_safe(d)
    assert set(SCORE_COLUMNS) <= set(d)
    for k in ("dice", "iou", "ce", "soft_dice", "lq_softmin", "label_quality", "lq_pixel",
              "lq_object", "n_mask", "missed", "extra", "fg_frac_mask"):
        assert d[k] is None, k
    assert d["confidence"] == pytest.approx(0.97) and d["n_pred"] == 1
    assert d["category"] == "agrees"
    d = S.score_image(np.full((8, 8), 0.45), None)
    # no mask, no disagreement: only the doubt term, u = 2(1 − .55) = .9 → 0.1·u
    assert d["category"] == "uncertain" and d["priority"] == pytest.approx(0.09)


@pytest.mark.parametrize("prob, mask, msg", [
    (np.zeros((4, 4)), np.zeros((4, 5), np.uint8), r"\(4, 4\).*\(4, 5\)"),
    (np.zeros((2, 2, 2)), None, "2-D"),
    (np.full((2, 2), np.nan), None, "NaN"),
    (np.full((2, 2), 1.5), None, r"\[0, 1\]"),
    (np.zeros((2, 2), np.int32), None, "uint8"),
    (np.zeros((2, 2)), np.zeros((2, 2)), "integer class"),
    (np.zeros((2, 2)), -np.ones((2, 2), np.int8), "negative"),
    (np.zeros((0, 3)), None, "empty"),
])
def test_bad_input_raises_value_error(prob, mask, msg):
    with pytest.raises(ValueError, match=msg):
        S.score_image(prob, mask)


def test_params_from_config_section_and_validation():
    sec = ScoringConfig(uncertain_threshold=0.8, lq_temperature=0.1, match_iou=0.5,
                        boundary_px=2, disagree_dice=0.8, confident=0.9)
    assert S.params_from(sec) == ScoringConfig()
    assert S.params_from(None) == ScoringConfig()
    with pytest.raises(ValueError, match="lq_temperature"):
        ScoringConfig(lq_temperature=0)
    with pytest.raises(ValueError, match="confident"):
        ScoringConfig(confident=0.2)
    with pytest.raises(ValueError, match=r"confident = 0.5 is not allowed; expected a number > 0.5"):
        ScoringConfig(confident=0.5)  # every pixel would be "confident"
    # a stricter threshold is honoured
    p = np.full((6, 6), 0.07)
    p[1:4, 1:4] = 0.93  # m = .93 everywhere: confident at .9, not at .95
    m = (p > 0.5).astype(np.uint8)
    assert S.score_image(p, m)["category"] == "agrees"
    strict = ScoringConfig(confident=0.95)
    assert S.score_image(p, m, cfg_scoring=strict)["category"] == "uncertain"


# ---------------------------------------------------------------------------- wrong masks
def _scene(size: int = 64, scale: int = 1):
    """Four separated disks and a smooth, confident P(object) from the signed distance."""
    yy, xx = np.mgrid[:size, :size] / scale
    truth = np.zeros((size, size), bool)
    for cy, cx, r in ((12, 12, 6), (40, 16, 8), (16, 46, 5), (46, 46, 7)):
        truth |= (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
    sd = ndi.distance_transform_edt(truth) - ndi.distance_transform_edt(~truth)
    return (1 / (1 + np.exp(-1.5 * sd / scale))).astype(np.float32), truth, yy, xx


def test_wrong_masks_rank_above_the_right_one():
    prob, truth, yy, xx = _scene()
    right = truth.astype(np.uint8)
    removed = right.copy()
    removed[(yy - 40) ** 2 + (xx - 16) ** 2 < 64] = 0     # model sees it, mask lost it
    added = right.copy()
    added[(yy - 58) ** 2 + (xx - 26) ** 2 < 16] = 1       # mask has it, model says background
    r, a, b = (S.score_image(prob, m) for m in (right, removed, added))
    assert r["category"] == "agrees" and r["label_quality"] > 0.97
    for w in (a, b):
        assert w["category"] == "disagrees"
        # priority grows with the confident disagreement e = 1 − label_quality
        assert w["priority"] >= 1 - w["label_quality"] > r["priority"] + 0.05
        assert w["label_quality"] < r["label_quality"] - 0.05
    assert a["extra_confident"] == 1 and b["missed_confident"] == 1
    # the object the mask lost counts as an object too; the added one only by its area
    assert a["lq_object"] < 0.9 and b["lq_object"] == 1.0
    order = S.review_order([{"n": "right", **r}, {"n": "rem", **a}, {"n": "add", **b}])
    assert order[-1]["n"] == "right"


def test_an_object_the_mask_lacks_outweighs_one_the_model_does_not_see():
    """The same disk, wrong both ways round: the pixel term sees the same contradiction, but
    only the object the model sees and the mask lacks counts as an object (docs/scoring.md:
    a model's "nothing here" is weaker evidence than its "an object here")."""
    with_disk, truth, yy, xx = _scene()
    disk = (yy - 40) ** 2 + (xx - 16) ** 2 < 64
    sd = ndi.distance_transform_edt(truth & ~disk) - ndi.distance_transform_edt(~(truth & ~disk))
    without_disk = (1 / (1 + np.exp(-1.5 * sd))).astype(np.float32)
    lacks = S.score_image(with_disk, (truth & ~disk).astype(np.uint8))   # model sees it
    unseen = S.score_image(without_disk, truth.astype(np.uint8))         # model denies it
    assert lacks["extra"] == 1 and unseen["missed"] == 1
    assert lacks["lq_pixel"] == pytest.approx(unseen["lq_pixel"], abs=0.05)
    assert unseen["lq_object"] == 1.0 and lacks["lq_object"] == pytest.approx(1 - 1 / 4, abs=0.03)
    assert lacks["priority"] > unseen["priority"] + 0.05
    assert unseen["missed_confident"] == 1 and unseen["category"] == "disagrees"


def test_label_quality_is_comparable_across_image_sizes():
    lq, soft = {}, {}
    for scale in (1, 2, 4):
        prob, truth, yy, xx = _scene(64 * scale, scale)
        wrong = truth.copy()
        wrong[(yy - 40) ** 2 + (xx - 16) ** 2 < 64] = False
        lq[scale] = (S.score_image(prob, truth.astype(np.uint8))["label_quality"],
                     S.score_image(prob, wrong.astype(np.uint8))["label_quality"])
        soft[scale] = S.score_image(prob, truth.astype(np.uint8))["lq_softmin"]
    for s in (2, 4):
        assert lq[s][0] == pytest.approx(lq[1][0], abs=0.02)
        assert lq[s][1] == pytest.approx(lq[1][1], abs=0.05)
    # cleanlab's soft-minimum of the same right mask drifts with the pixel count (NOTES)
    assert abs(soft[4] - soft[1]) > 0.1


# ---------------------------------------------------------------------------- properties
def _bool_pair():
    return st.tuples(st.integers(1, 9), st.integers(1, 9)).flatmap(
        lambda s: st.tuples(arrays(bool, s), arrays(bool, s)))


def _prob_and_mask():
    probs = st.floats(0, 1, allow_nan=False, width=32)
    return st.tuples(st.integers(1, 10), st.integers(1, 10)).flatmap(
        lambda s: st.tuples(arrays(np.float32, s, elements=probs),
                            arrays(np.uint8, s, elements=st.integers(0, 2))))


@FAST
@given(_bool_pair())
def test_dice_iou_invariants(pair):
    a, b = pair
    d = S.dice(a, b)
    assert 0.0 <= d <= 1.0 and d == S.dice(b, a)
    assert (d == 1.0) == bool((a == b).all())
    i = S.iou(a, b)
    assert i <= d + 1e-12 and i == pytest.approx(d / (2 - d))


@FAST
@given(_prob_and_mask())
def test_score_image_invariants(pm):
    p, m = pm
    d = S.score_image(p, m)
    json_safe(d)
    assert d["ce"] >= 0 and d["ce_region"] >= 0
    assert 0 <= d["entropy"] <= LN2 + 1e-9 and 0 <= d["entropy_region"] <= LN2 + 1e-9
    assert 0.5 - 1e-7 <= d["confidence"] <= 1 + 1e-7
    for k in ("dice", "iou", "soft_dice", "label_quality", "lq_pixel", "lq_object",
              "lq_softmin", "frac_uncertain", "margin"):
        assert -1e-9 <= d[k] <= 1 + 1e-9, k
    assert d["iou"] <= d["dice"] + 1e-12
    # priority = 1 − (1 − e)(1 − 0.1u) capped at .999: at least e = 1 − label_quality
    assert min(0.999, 1 - d["label_quality"]) - 1e-9 <= d["priority"] <= 0.999 + 1e-12
    # the prediction's own mask: full agreement, never 'disagrees'
    own = S.score_image(p, (p > 0.5).astype(np.uint8))
    assert own["dice"] == 1.0 and own["label_quality"] == 1.0 and own["category"] != "disagrees"


# ---------------------------------------------------------------------------- triage
def test_categorize_rules():
    base = dict(confidence=0.99, core_confidence=0.99, dice=0.95, label_quality=0.97,
                disagreement_confidence=0.95, missed_confident=0, extra_confident=0,
                error_regions=0)
    assert S.categorize(None) == "no-model" and S.categorize({}) == "no-model"
    assert S.categorize({**base, "confidence": None}) == "no-model"
    assert S.categorize(base) == "agrees"
    assert S.categorize({**base, "dice": 0.5}) == "disagrees"
    assert S.categorize({**base, "label_quality": 0.7}) == "disagrees"
    assert S.categorize({**base, "missed_confident": 1}) == "disagrees"
    # differs, but the model is unsure where it differs → uncertain
    assert S.categorize({**base, "dice": 0.5, "disagreement_confidence": 0.6}) == "uncertain"
    # unsure overall
    assert S.categorize({**base, "core_confidence": 0.7}) == "uncertain"
    assert S.categorize({**base, "dice": 0.5, "core_confidence": 0.7}) == "uncertain"
    # no mask: confidence only
    assert S.categorize({"confidence": 0.99, "core_confidence": 0.99, "dice": None}) == "agrees"
    assert S.categorize({"confidence": 0.9, "core_confidence": 0.7, "dice": None}) == "uncertain"
    assert set(S.CATEGORIES) == {"disagrees", "uncertain", "agrees", "no-model"}


def test_priority_follows_disagreement_not_category():
    # the category no longer sets a band: the same scores give the same priority whatever
    # the category, and more confident disagreement always ranks higher (docs/scoring.md)
    m = {"confidence": 1, "core_confidence": 0.95, "label_quality": 0.4}
    e, u = 0.6, 2 * (1 - 0.95)
    p = {c: S.priority_of(m, c) for c in ("disagrees", "uncertain", "agrees")}
    assert p["disagrees"] == p["uncertain"] == p["agrees"] == pytest.approx(
        1 - (1 - e) * (1 - 0.1 * u))
    # a confident image with a little disagreement stays below an unsure one with much more
    little = S.priority_of({"confidence": 1, "core_confidence": 1.0, "label_quality": 0.9},
                           "disagrees")
    much = S.priority_of({"confidence": 1, "core_confidence": 0.8, "label_quality": 0.3},
                         "uncertain")
    assert little == pytest.approx(0.1) and much == pytest.approx(1 - 0.3 * 0.96)
    assert little < much
    # doubt only breaks ties: at most 0.1 on its own, never above any e ≥ 0.1
    assert S.priority_of({"confidence": 1, "core_confidence": 0.5, "label_quality": 1.0},
                         "uncertain") == pytest.approx(0.1)
    assert S.priority_of({"confidence": 1, "core_confidence": 0.0, "label_quality": 0.0},
                         "disagrees") == pytest.approx(0.999)
    assert S.priority_of({"confidence": 1}, "no-model") is None
    assert S.priority_of(None) is None


def test_review_order_puts_none_last_and_is_stable():
    rows = [{"id": 1, "priority": 0.5}, {"id": 2, "priority": None}, {"id": 3, "priority": 2.1},
            {"id": 4}, {"id": 5, "priority": 0.5}, {"id": 6, "priority": float("nan")}]
    assert [r["id"] for r in S.review_order(rows)] == [3, 1, 5, 2, 4, 6]
    assert [r["id"] for r in S.review_order(rows, reverse=False)] == [1, 5, 3, 2, 4, 6]
    assert S.SORT_KEYS["priority"] == "desc" and S.SORT_KEYS["dice"] == "asc"
    # dice defaults to ascending (worst first); 'category' follows CATEGORIES
    rows = [{"dice": 0.9, "category": "agrees"}, {"dice": 0.2, "category": "disagrees"},
            {"dice": None, "category": None}, {"dice": 0.5, "category": "uncertain"}]
    assert [r["dice"] for r in S.review_order(rows, "dice")] == [0.2, 0.5, 0.9, None]
    assert [r["category"] for r in S.review_order(rows, "category")] == [
        "disagrees", "uncertain", "agrees", None]
    # a column mixing numbers and text does not crash
    assert len(S.review_order([{"x": 1}, {"x": "a"}, {"x": 0.5}], "x")) == 3


def test_summarize_by_hand():
    rows = [{"dice": 0.0, "category": "agrees"}, {"dice": 0.5, "category": "disagrees"},
            {"dice": 1.0, "category": "agrees"}, {"dice": None, "category": None}]
    s = S.summarize(rows, ["dice", "nothing"], bins=2)
    assert s["n_rows"] == 4
    d = s["columns"]["dice"]
    assert (d["count"], d["mean"], d["min"], d["max"]) == (3, 0.5, 0.0, 1.0)
    # bins [0, .5) and [.5, 1]: numpy's last bin is closed
    assert d["histogram"] == {"edges": [0.0, 0.5, 1.0], "counts": [1, 2]}
    assert s["columns"]["nothing"] == {"count": 0, "mean": None, "min": None, "max": None,
                                       "histogram": {"edges": [], "counts": []}}
    assert s["categories"] == {"disagrees": 1, "uncertain": 0, "agrees": 2, "no-model": 1}
    json.dumps(s, allow_nan=False)


# ---------------------------------------------------------------------------- boundaries
def test_scoring_and_objects_do_not_import_torch():
    code = ("import sys, segtriage.engine.project.scoring, segtriage.engine.project.scoring.objects; "
            "bad = [m for m in ('torch', 'fastai', 'textual') if m in sys.modules]; "
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == ""
