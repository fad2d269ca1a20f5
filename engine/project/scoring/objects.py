"""Object-level view of a binary segmentation: connected components, matching, shape.

numpy / scipy / scikit-image only (clients import this module: no torch here).

Connectivity is 8 (a 3x3 structuring element): thresholded masks have staircase edges, and
with 4-connectivity a thin diagonal object or a diagonal bridge of a blob would fall apart
into several "objects". 8-connectivity is also what skimage.measure.label uses by default in 2D.

Everything per object is computed with ``bincount`` / ``find_objects`` over the label image,
never with one full-image pass per object, so hundreds of objects stay in the millisecond range.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import convex_hull_image

CONNECTIVITY = 8
STRUCTURE = np.ones((3, 3), dtype=bool)
# merged / split: a part "substantially" overlaps another object when at least COVER of the
# part lies inside it; parts smaller than MIN_PART_PX (thresholding specks) never count.
COVER = 0.5
MIN_PART_PX = 4
# shape means (eccentricity, solidity) skip specks: their shape is the pixel grid's, and a
# convex hull per speck would make a speckled mask cost hundreds of milliseconds
MIN_SHAPE_PX = 9


def _as_bool(a, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {a.shape}")
    return a if a.dtype == bool else a != 0


def label(mask_bool) -> tuple[np.ndarray, int]:
    """Connected components (8-connectivity). Returns (labels int32 (H, W), n); 0 = background."""
    m = _as_bool(mask_bool, "mask")
    labels, n = ndi.label(m, structure=STRUCTURE)
    return labels.astype(np.int32, copy=False), int(n)


def object_areas(labels: np.ndarray, n: int) -> np.ndarray:
    """Pixel count of objects 1..n (index i-1 holds object i)."""
    return np.bincount(labels.ravel(), minlength=n + 1)[1:n + 1].astype(np.int64)


def eccentricities(labels: np.ndarray, n: int) -> np.ndarray:
    """Eccentricity of the ellipse with the same second central moments, per object.

    Same definition as skimage's regionprops (sqrt(1 - l2/l1) of the inertia-tensor
    eigenvalues, 0 for a single pixel), computed for all objects at once from moment sums.
    """
    if n == 0:
        return np.zeros(0)
    flat = labels.ravel()
    idx = np.flatnonzero(flat)  # object pixels only: background costs nothing
    lab = flat[idx]
    rr, cc = np.divmod(idx, labels.shape[1])
    rr, cc = rr.astype(np.float64), cc.astype(np.float64)
    k = n + 1
    a = np.bincount(lab, minlength=k)[1:].astype(np.float64)
    mr = np.concatenate([[0.0], np.bincount(lab, rr, k)[1:] / a])
    mc = np.concatenate([[0.0], np.bincount(lab, cc, k)[1:] / a])
    # central second moments, each pixel taken around its own object's centroid
    dr, dc = rr - mr[lab], cc - mc[lab]
    vrr = np.bincount(lab, dr * dr, k)[1:] / a
    vcc = np.bincount(lab, dc * dc, k)[1:] / a
    vrc = np.bincount(lab, dr * dc, k)[1:] / a
    half_tr = (vrr + vcc) / 2
    root = np.sqrt(((vrr - vcc) / 2) ** 2 + vrc ** 2)
    l1 = np.clip(half_tr + root, 0, None)
    l2 = np.clip(half_tr - root, 0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        ecc = np.where(l1 > 0, np.sqrt(np.clip(1 - l2 / l1, 0, 1)), 0.0)
    return ecc


def solidities(labels: np.ndarray, n: int, areas: np.ndarray | None = None,
               which: np.ndarray | None = None) -> np.ndarray:
    """Area / convex-hull area per object (skimage's definition, hull on the object's crop).

    ``which``: optional bool (n,) selecting the objects to compute (others are NaN).
    """
    if n == 0:
        return np.zeros(0)
    if areas is None:
        areas = object_areas(labels, n)
    out = np.ones(n)
    if which is not None:
        out[~which] = np.nan
    for i, sl in enumerate(ndi.find_objects(labels, max_label=n)):
        if sl is None or areas[i] <= 2 or (which is not None and not which[i]):
            continue  # 1-2 pixels are their own hull
        out[i] = areas[i] / convex_hull_image(labels[sl] == i + 1).sum()
    return out


@dataclass
class Matching:
    """Result of matching pred objects to mask objects (object ids are 1-based)."""
    pred_labels: np.ndarray
    n_pred: int
    mask_labels: np.ndarray
    n_mask: int
    pred_areas: np.ndarray
    mask_areas: np.ndarray
    pairs: np.ndarray          # (k, 2) matched (pred id, mask id)
    pair_iou: np.ndarray       # (k,)
    pred_matched: np.ndarray   # bool (n_pred,)
    mask_matched: np.ndarray   # bool (n_mask,)
    merged: int
    split: int


def _overlaps(lp: np.ndarray, n_pred: int, lm: np.ndarray, n_mask: int):
    """Sparse contingency table: (pred id, mask id, overlap pixels) for every touching pair."""
    both = (lp > 0) & (lm > 0)
    if not both.any():
        e = np.zeros(0, dtype=np.int64)
        return e, e, e
    code = lp[both].astype(np.int64) * (n_mask + 1) + lm[both]
    codes, counts = np.unique(code, return_counts=True)
    return codes // (n_mask + 1), codes % (n_mask + 1), counts.astype(np.int64)


def match_labels(lp: np.ndarray, n_pred: int, lm: np.ndarray, n_mask: int,
                 iou: float = 0.5, *, min_part_px: int = MIN_PART_PX) -> Matching:
    """One-to-one matching of labelled objects by IoU >= ``iou`` (greedy, best IoU first).

    For ``iou > 0.5`` a match is unique anyway; the greedy pass only settles exact ties and
    lower thresholds.
    """
    if not 0 < iou <= 1:
        raise ValueError(f"match iou must be in (0, 1], got {iou}")
    ap, am = object_areas(lp, n_pred), object_areas(lm, n_mask)
    pi, mi, inter = _overlaps(lp, n_pred, lm, n_mask)
    pred_matched = np.zeros(n_pred, bool)
    mask_matched = np.zeros(n_mask, bool)
    pairs, pair_iou = [], []
    if inter.size:
        ious = inter / (ap[pi - 1] + am[mi - 1] - inter)
        cand = np.flatnonzero(ious >= iou - 1e-12)
        for j in cand[np.argsort(-ious[cand], kind="stable")]:
            p, m = pi[j] - 1, mi[j] - 1
            if not pred_matched[p] and not mask_matched[m]:
                pred_matched[p] = mask_matched[m] = True
                pairs.append((p + 1, m + 1))
                pair_iou.append(float(ious[j]))
        # merged: a pred object that contains most of >= 2 (non-speck) mask objects
        part_m = (inter >= COVER * am[mi - 1]) & (am[mi - 1] >= min_part_px)
        merged = int(np.count_nonzero(np.bincount(pi[part_m], minlength=n_pred + 1) >= 2))
        # split: a mask object that contains most of >= 2 (non-speck) pred objects
        part_p = (inter >= COVER * ap[pi - 1]) & (ap[pi - 1] >= min_part_px)
        split = int(np.count_nonzero(np.bincount(mi[part_p], minlength=n_mask + 1) >= 2))
    else:
        merged = split = 0
    return Matching(lp, n_pred, lm, n_mask, ap, am,
                    np.array(pairs, dtype=np.int64).reshape(-1, 2),
                    np.array(pair_iou, dtype=np.float64), pred_matched, mask_matched,
                    merged, split)


def label_stats(labels: np.ndarray, n: int, areas: np.ndarray, suffix: str,
                min_shape_px: int = MIN_SHAPE_PX) -> dict:
    """Counts, areas, density and shape of one side (pred or mask).

    Shape means are over objects of at least ``min_shape_px`` pixels (None if there are none).
    """
    mpx = labels.size / 1e6
    out = {f"n_{suffix}": int(n), f"area_{suffix}_mean": None, f"area_{suffix}_median": None,
           f"density_{suffix}": float(n / mpx), f"eccentricity_{suffix}": None,
           f"solidity_{suffix}": None}
    if n == 0:
        return out
    out[f"area_{suffix}_mean"] = float(areas.mean())
    out[f"area_{suffix}_median"] = float(np.median(areas))
    big = areas >= min_shape_px
    if big.any():
        out[f"eccentricity_{suffix}"] = float(eccentricities(labels, n)[big].mean())
        out[f"solidity_{suffix}"] = float(solidities(labels, n, areas, big)[big].mean())
    return out


def matching_stats(m: Matching) -> dict:
    """The flat, JSON-ready dict of a Matching (see match_objects)."""
    k = len(m.pairs)
    out = {"matched": k, "missed": int(m.n_mask - k), "extra": int(m.n_pred - k),
           "merged": m.merged, "split": m.split,
           "matched_iou": float(m.pair_iou.mean()) if k else None}
    out.update(label_stats(m.pred_labels, m.n_pred, m.pred_areas, "pred"))
    out.update(label_stats(m.mask_labels, m.n_mask, m.mask_areas, "mask"))
    return out


def match_objects(pred_bool, mask_bool, iou: float = 0.5) -> dict:
    """Match the objects of a prediction and a mask (both (H, W), truthy = object).

    Returns n_pred, n_mask, matched, missed (mask objects without a match), extra (pred
    objects without a match), merged (pred objects covering >= 2 mask objects), split (mask
    objects covering >= 2 pred objects), matched_iou (mean IoU of matched pairs), and per side
    area_*_mean, area_*_median (pixels), density_* (objects per megapixel), eccentricity_*,
    solidity_* (means over objects of ≥ MIN_SHAPE_PX pixels). Undefined means are None.
    """
    p = _as_bool(pred_bool, "pred")
    y = _as_bool(mask_bool, "mask")
    if p.shape != y.shape:
        raise ValueError(f"shape mismatch: pred {p.shape} vs mask {y.shape}")
    lp, n_pred = label(p)
    lm, n_mask = label(y)
    return matching_stats(match_labels(lp, n_pred, lm, n_mask, iou))
