"""Per-image scores from a stored probability map and the current mask.

numpy / scipy / scikit-image only: clients import this module, so never torch or fastai.
Every formula, its empty-mask convention and its failure modes are in docs/scoring.md.

Notation: p(x) = P(foreground), y(x) the current mask (class index > 0 = object),
ŷ = [p > 0.5], m(x) = max(p, 1 - p), margin g(x) = |2p - 1| = 2m - 1,
p_y(x) = p where y else 1 - p.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from . import objects
from ..config import ScoringConfig
from .order import categorize, params_from, priority_of

SCORING_VERSION = 4  # bump when a formula changes, so stored rows can be re-scored
# 2: priority is the within-band score alone (no category bands; docs/scoring.md)
# 3: lq_object counts the objects the mask lacks, not those the model does not see
# 4: adds outline_bias (the priority is unchanged)
EPS = 1e-6           # probabilities are clamped to [EPS, 1 - EPS] before any log


# ----------------------------------------------------------------------------------------
# input checks
# ----------------------------------------------------------------------------------------
def _prob_array(prob) -> np.ndarray:
    p = np.asarray(prob)
    if p.ndim != 2:
        raise ValueError(f"prob must be a 2-D (H, W) array of P(foreground), got shape {p.shape}")
    if p.size == 0:
        raise ValueError(f"prob is empty (shape {p.shape})")
    if p.dtype == np.uint8:  # 8-bit PNG storage: 0..255
        return p.astype(np.float32) / np.float32(255)
    if p.dtype == bool:
        return p.astype(np.float32)
    if p.dtype.kind != "f":
        raise ValueError(f"prob must be float in [0, 1] or uint8 0..255, got dtype {p.dtype}")
    p = p.astype(np.float32, copy=False)
    lo, hi = float(np.min(p)), float(np.max(p))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("prob contains NaN or infinite values")
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(f"prob must lie in [0, 1], got values in [{lo:g}, {hi:g}]")
    return np.clip(p, 0, 1)


def _mask_array(mask, shape) -> np.ndarray | None:
    if mask is None:
        return None
    y = np.asarray(mask)
    if y.shape != shape:
        raise ValueError(f"shape mismatch: prob {shape} vs mask {y.shape}")
    if y.dtype == bool:
        return y
    if y.dtype.kind not in "iu":
        raise ValueError(f"mask must hold integer class indices (0 = background), got dtype "
                         f"{y.dtype}")
    if y.dtype.kind == "i" and y.size and int(y.min()) < 0:
        raise ValueError("mask holds negative class indices")
    return y > 0


# ----------------------------------------------------------------------------------------
# morphology helpers (square structuring element: Chebyshev distance, separable and fast)
# ----------------------------------------------------------------------------------------
def _grow(a: np.ndarray, r: int) -> np.ndarray:
    if r <= 0:
        return a.copy()
    return ndi.maximum_filter(a.view(np.uint8), size=2 * r + 1, mode="constant", cval=0) > 0


def _shrink(a: np.ndarray, r: int) -> np.ndarray:
    # 'nearest': the image border is not an object edge (a full mask stays full)
    if r <= 0:
        return a.copy()
    return ndi.minimum_filter(a.view(np.uint8), size=2 * r + 1, mode="nearest") > 0


def _band(a: np.ndarray, r: int) -> np.ndarray:
    """Pixels within r of an edge of a (both sides)."""
    if r <= 0 or not a.any():
        return np.zeros(a.shape, bool)
    return _grow(a, r) & ~_shrink(a, r)


def _mean(x: np.ndarray, where: np.ndarray | None = None) -> float | None:
    """Mean in float64; None over an empty set."""
    if where is not None:
        x = x[where]
    return float(x.mean(dtype=np.float64)) if x.size else None


def _finite(v):
    """JSON-safe: numpy scalars → Python, NaN/inf → None."""
    if v is None or isinstance(v, (str, bool)):
        return v
    if isinstance(v, (int, np.integer)):
        return int(v)
    v = float(v)
    return v if math.isfinite(v) else None


# ----------------------------------------------------------------------------------------
# single formulas (public: tests and the benchmark use them on their own)
# ----------------------------------------------------------------------------------------
def dice(a, b) -> float:
    """Foreground Dice/F1 = 2|a∧b| / (|a| + |b|); 1.0 when both are empty."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * int((a & b).sum()) / s


def iou(a, b) -> float:
    """Foreground IoU = |a∧b| / |a∨b|; 1.0 when both are empty."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    u = int((a | b).sum())
    return 1.0 if u == 0 else int((a & b).sum()) / u


def soft_dice(p, y) -> float:
    """2 Σ p·y / (Σ p + Σ y); 1.0 when both sums are zero."""
    p = np.asarray(p, np.float64)
    y = np.asarray(y, bool)
    den = p.sum() + y.sum()
    return 1.0 if den == 0 else float(2.0 * p[y].sum() / den)


def cross_entropy(p, y) -> float:
    """−mean log p_{y(x)}(x), probabilities clamped to [EPS, 1 − EPS] (nats)."""
    p = np.clip(np.asarray(p, np.float64), EPS, 1 - EPS)
    y = np.asarray(y, bool)
    return float(-np.mean(np.log(np.where(y, p, 1 - p))))


def binary_entropy(p) -> np.ndarray:
    """Per-pixel −p ln p − (1−p) ln(1−p) in nats (both terms; max ln 2), clamped."""
    p = np.clip(np.asarray(p, np.float64), EPS, 1 - EPS)
    return -(p * np.log(p) + (1 - p) * np.log1p(-p))


def softmin_quality(p, y, temperature: float = 0.1) -> float:
    """cleanlab.segmentation's image score: Σ s·softmax((1 − s)/T) with s = p_{y(x)}(x)."""
    p = np.asarray(p, np.float64)
    s = np.where(np.asarray(y, bool), p, 1 - p).ravel()
    z = (1 - s) / temperature
    w = np.exp(z - z.max())  # shift: exp never overflows; the ratio is unchanged
    return float((s * w).sum() / w.sum())  # not np.dot: BLAS threads cost ms here


# ----------------------------------------------------------------------------------------
# per-image scoring
# ----------------------------------------------------------------------------------------
def score_image(prob, mask, *, cfg_scoring: ScoringConfig | None = None) -> dict:
    """Score one image. ``prob``: (H, W) P(foreground), float in [0, 1] or uint8 0..255.
    ``mask``: (H, W) integer class indices (0 = background, ≥ 1 = object) or None.

    Returns a flat dict of JSON-safe values (None where undefined) holding every column of
    store.SCORE_COLUMNS plus the confidence, agreement, label-quality and object metrics
    listed in docs/scoring.md, ``category`` and ``scoring_version``.
    """
    prm = params_from(cfg_scoring)
    p = _prob_array(prob)
    y = _mask_array(mask, p.shape)
    npx = p.size
    r = int(prm.boundary_px)

    pred = p > 0.5
    g = np.abs(2 * p - 1)               # margin p_(1) − p_(2)
    mx = 0.5 + 0.5 * g                  # max class probability m(x)
    unc = mx < prm.uncertain_threshold  # uncertain pixels
    ent = binary_entropy(p)

    union = pred | y if y is not None else pred
    region = _grow(union, max(1, r))    # object region: dilated union of ŷ and y
    has_region = bool(region.any())
    band = _band(pred, r)
    if y is not None:
        band |= _band(y, r)
    interior = union & ~band
    core = interior | (unc & ~band)     # where doubt is not explained by an edge

    def region_mean(x):
        return _mean(x, region) if has_region else _mean(x)

    out: dict[str, Any] = {
        "scoring_version": SCORING_VERSION,
        "confidence": _mean(mx),
        "region_confidence": region_mean(mx),
        "entropy": _mean(ent),
        "entropy_region": region_mean(ent),
        "margin": _mean(g),
        "margin_region": region_mean(g),
        "frac_uncertain": _mean(unc),
        "frac_uncertain_region": region_mean(unc),
        "uncertainty_boundary": _mean(1 - g, band),
        "uncertainty_interior": _mean(1 - g, interior),
        "uncertainty_background": _mean(1 - g, ~region),
        "fg_frac_pred": float(pred.sum()) / npx,
    }
    core_conf = _mean(mx, core)
    out["core_confidence"] = core_conf if core_conf is not None else out["region_confidence"]

    lp, n_pred = objects.label(pred)
    if y is None:
        out.update(_no_mask_keys())
        out.update(objects.label_stats(lp, n_pred, objects.object_areas(lp, n_pred), "pred"))
        out.update(n_mask=None, area_mask_mean=None, area_mask_median=None, density_mask=None,
                   eccentricity_mask=None, solidity_mask=None)
    else:
        out.update(_agreement(p, y, pred, g, mx, band, region, has_region, prm))
        out["outline_bias"] = outline_bias(p, y, pred, r, prm.small_object_px)
        lm, n_mask = objects.label(y)
        match = objects.match_labels(lp, n_pred, lm, n_mask, prm.match_iou)
        out.update(objects.matching_stats(match))
        out.update(_label_quality(g, pred, y, band, match, prm))

    out["category"] = categorize(out, prm)
    out["priority"] = priority_of(out, out["category"])
    return {k: _finite(v) for k, v in out.items()}


def _no_mask_keys() -> dict:
    return dict.fromkeys((
        "dice", "iou", "ce", "ce_region", "soft_dice", "lq_softmin", "label_quality",
        "lq_pixel", "lq_object", "disagreement_confidence", "fg_frac_mask", "matched", "missed",
        "extra", "merged", "split", "matched_iou", "missed_confident", "extra_confident",
        "error_regions", "outline_bias"))


def _agreement(p, y, pred, g, mx, band, region, has_region, prm) -> dict:
    inter = int((pred & y).sum())
    sp, sy = int(pred.sum()), int(y.sum())
    uni = sp + sy - inter
    pc = np.clip(p.astype(np.float64), EPS, 1 - EPS)
    nll = -np.log(np.where(y, pc, 1 - pc))
    sum_p = float(p.sum(dtype=np.float64))
    differ = pred != y
    off_edge = differ & ~band
    return {
        "dice": 1.0 if sp + sy == 0 else 2.0 * inter / (sp + sy),
        "iou": 1.0 if uni == 0 else inter / uni,
        "ce": _mean(nll),
        "ce_region": _mean(nll, region) if has_region else _mean(nll),
        "soft_dice": 1.0 if sum_p + sy == 0 else
        2.0 * float(p[y].sum(dtype=np.float64)) / (sum_p + sy),
        "lq_softmin": softmin_quality(p, y, prm.lq_temperature),
        "fg_frac_mask": sy / p.size,
        # how sure the model is where it differs from the mask (edges left out if possible)
        "disagreement_confidence": _mean(mx, off_edge) if off_edge.any() else _mean(mx, differ),
    }


def outline_bias(p, y, pred, grow: int, floor: float) -> float | None:
    """log((M + floor) / (P + floor)) over the objects both the mask and the model see.

    The connected parts of ŷ ∪ y that hold pixels of both are the objects both see; M counts
    the mask's pixels in them and P sums p over them grown by ``grow`` px (the soft edge the
    model spreads around an object). Below 0 the mask's outlines lie inside the model's
    (drawn too tight: eroded), above 0 outside (too loose: dilated, halos); halving every
    object gives about log(1/2) = −0.69. Objects only one side sees are left out: they are
    lq_object's and missed/extra's business, and leaving them out keeps an empty mask (None
    here) from reading as the tightest outline of all. None when no object is seen by both.
    """
    both, n = objects.label(pred | y)
    if n == 0:
        return None
    ids = np.arange(1, n + 1)
    seen = (ndi.sum(y, both, ids) > 0) & (ndi.sum(pred, both, ids) > 0)
    if not seen.any():
        return None
    keep = np.isin(both, ids[seen])
    m = float(np.count_nonzero(y & keep))
    soft = float(p[_grow(keep, grow)].sum(dtype=np.float64))
    return float(np.log((m + floor) / (soft + floor)))


def _edge_distance(a: np.ndarray) -> np.ndarray | None:
    """Chessboard distance of each pixel to the nearest pixel of the other class (≥ 1);
    None when a is all one class (no edge)."""
    if not a.any() or a.all():
        return None
    return np.where(a, ndi.distance_transform_cdt(a, "chessboard"),
                    ndi.distance_transform_cdt(~a, "chessboard")).astype(np.float64)


def _label_quality(g, pred, y, band, match, prm) -> dict:
    """Confidence-weighted disagreement at pixel and object level (docs/scoring.md).

    Pixel: d(x) = g(x)·[ŷ ≠ y] = max(0, 1 − 2 p_y(x)) is 0 where the model agrees or is unsure
    and 1 where it is certain the label is wrong; its sum over the object area (|ŷ ∪ y| plus
    a small floor) is the share of the objects' area the model confidently contradicts.
    Object: each extra predicted object (one the mask lacks) counts with the mean of d over
    its pixels (how much of it the model confidently contradicts), small ones in proportion
    to their area; the sum over the number of distinct objects is the share of objects the
    mask confidently misses. Every object weighs the same here, so one small object left out
    among large ones still shows. Mask objects the model does not see count by their area
    only (in the pixel term): a model's "nothing here" is much weaker evidence than its
    "an object here" (small faint objects are what segmentation models miss; measured in
    docs/scoring.md).
    Both use d with a boundary tolerance for the pixel term (see below).
    Error regions: connected blobs of confident disagreement (d ≥ 2·confident − 1) away from
    every edge, at least object-sized; they catch a wrong object the matching cannot see,
    e.g. one removed from the mask while it touches a kept one.
    """
    a_s = float(prm.small_object_px)
    d = np.where(pred != y, g, 0).astype(np.float64)
    # boundary tolerance: where ŷ and y differ by an edge offset, the local gap width is
    # dist(x, edge of ŷ) + dist(x, edge of y) − 1; a gap of w ≤ r px counts w/(r+1), so a
    # 1-px offset (any thresholded mask) costs little, a wider one fully, and a whole
    # missing or extra object (no edge of the other side nearby) is never discounted
    d_tol = d
    r = prm.boundary_px
    dp, dy = _edge_distance(pred), _edge_distance(y)
    if r > 0 and dp is not None and dy is not None:
        d_tol = d * np.minimum(1.0, (dp + dy - 1) / (r + 1.0))
    uni = int((pred | y).sum())
    f_pix = float(d_tol.sum()) / (uni + a_s) if uni else 0.0
    strong = 2 * prm.confident - 1  # mean m ≥ confident  ⇔  mean margin ≥ 2·confident − 1

    def unmatched(labels, n, areas, matched):
        if n == 0:
            return np.zeros(0), 0
        contra = (np.bincount(labels.ravel(), d.ravel(), n + 1)[1:] / areas)[~matched]
        big = areas[~matched] >= a_s
        w = contra * np.minimum(1.0, areas[~matched] / a_s)
        return w, int(np.count_nonzero(big & (contra >= strong)))

    w_extra, c_extra = unmatched(match.pred_labels, match.n_pred, match.pred_areas,
                                 match.pred_matched)
    _, c_missed = unmatched(match.mask_labels, match.n_mask, match.mask_areas,
                            match.mask_matched)
    n_obj = match.n_pred + match.n_mask - len(match.pairs)
    f_obj = float(w_extra.sum()) / n_obj if n_obj else 0.0  # extra objects only: see above
    lq_pixel, lq_object = 1.0 - min(1.0, f_pix), 1.0 - min(1.0, f_obj)
    return {"lq_pixel": lq_pixel, "lq_object": lq_object,
            "label_quality": lq_pixel * lq_object,
            "missed_confident": c_missed, "extra_confident": c_extra,
            "error_regions": _error_regions(d >= strong, band, match, a_s)}


def _error_regions(confident_wrong, band, match, a_s) -> int:
    """Blobs of confident disagreement off the edges, ≥ max(a_s, ¼ of the median object)."""
    blobs = confident_wrong & ~band
    if not blobs.any():
        return 0
    lab, n = objects.label(blobs)
    areas = objects.object_areas(lab, n)
    sizes = np.concatenate([match.pred_areas, match.mask_areas])
    floor = max(a_s, 0.25 * float(np.median(sizes))) if sizes.size else a_s
    return int(np.count_nonzero(areas >= floor))
