"""Triage and order: the category and priority of a score row, sorting and summaries.

Depends on stored metrics only, so new thresholds re-categorise stored rows without the
probability maps.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..config import ScoringConfig


def params_from(cfg_scoring: ScoringConfig | None) -> ScoringConfig:
    """The scoring settings: the config's [scoring] section, or its defaults."""
    return ScoringConfig() if cfg_scoring is None else cfg_scoring


CATEGORIES = ["disagrees", "uncertain", "agrees", "no-model"]
_SCORED = ("disagrees", "uncertain", "agrees")  # categories that have a priority
_PRIORITY_MAX = 0.999
_U_WEIGHT = 0.1  # doubt only breaks ties: confidence alone barely finds wrong masks (NOTES)

# default sort direction per column for the clients' sort cycling ('desc' = largest first).
# Directions put the rows most worth a look first: low quality/confidence, high error.
SORT_KEYS: dict[str, str] = {
    "priority": "desc", "category": "asc", "label_quality": "asc", "lq_pixel": "asc",
    "lq_object": "asc", "lq_softmin": "asc", "dice": "asc", "iou": "asc", "soft_dice": "asc",
    "ce": "desc", "ce_region": "desc", "confidence": "asc", "region_confidence": "asc",
    "core_confidence": "asc", "disagreement_confidence": "desc", "entropy": "desc",
    "entropy_region": "desc", "margin": "asc", "margin_region": "asc",
    "frac_uncertain": "desc", "frac_uncertain_region": "desc",
    "uncertainty_boundary": "desc", "uncertainty_interior": "desc",
    "uncertainty_background": "desc", "missed": "desc", "extra": "desc",
    "missed_confident": "desc", "extra_confident": "desc", "error_regions": "desc",
    "merged": "desc", "split": "desc",
    "n_pred": "desc", "n_mask": "desc", "matched_iou": "asc", "outline_bias": "asc",
    "fg_frac_pred": "desc", "fg_frac_mask": "desc", "path": "asc",
}



# ----------------------------------------------------------------------------------------
# triage
# ----------------------------------------------------------------------------------------
def categorize(metrics: Mapping[str, Any] | None, params: ScoringConfig | None = None) -> str:
    """'disagrees' | 'uncertain' | 'agrees' | 'no-model' from a score dict (see docs).

    differs: Dice < disagree_dice, or label_quality < disagree_dice, or at least one whole
    object / object-sized region the model confidently contradicts.
    disagrees: differs, the model is sure of the image away from object edges
    (core_confidence ≥ confident) and not unsure where it differs (disagreement_confidence
    ≥ uncertain_threshold τ).  uncertain: the model is unsure (core_confidence < confident),
    or the mask differs only where the model is unsure.  agrees: otherwise.
    Without a mask only confidence decides (uncertain or agrees). Depends on the metrics
    only, so new thresholds re-categorise stored rows without the probability maps.
    """
    prm = params_from(params)
    if not metrics or metrics.get("confidence") is None:
        return "no-model"
    core = metrics.get("core_confidence")
    if core is None:
        core = metrics.get("region_confidence")
    if core is None:
        core = metrics["confidence"]
    unsure = core < prm.confident
    d, lq = metrics.get("dice"), metrics.get("label_quality")
    if d is None:  # no mask: nothing to disagree with
        return "uncertain" if unsure else "agrees"
    n_conf = sum(metrics.get(k) or 0
                 for k in ("missed_confident", "extra_confident", "error_regions"))
    differs = (d < prm.disagree_dice or (lq is not None and lq < prm.disagree_dice)
               or n_conf > 0)
    dconf = metrics.get("disagreement_confidence")
    if differs and not unsure and dconf is not None and dconf >= prm.uncertain_threshold:
        return "disagrees"
    if unsure or differs:
        return "uncertain"
    return "agrees"


def priority_of(metrics: Mapping[str, Any] | None, category: str | None = None) -> float | None:
    """Default review order key in [0, 0.999], higher = review first; None for 'no-model'.

    s = 1 − (1 − e)(1 − 0.1·u): e = 1 − label_quality (confident disagreement, 0 without a
    mask) and u = 2(1 − core_confidence) (mean doubt off the edges), which only breaks
    near-ties. Both are shares of object area / object count or means over object pixels, so
    images of any size compare. The category does not enter (it used to set a band): e is
    already weighted by the model's confidence pixel by pixel, and an image-level threshold
    on core confidence put rows with a little disagreement above rows with much more
    (docs/scoring.md, docs/benchmarks.md "Triage quality").
    """
    if category is None:
        category = categorize(metrics)
    if category not in _SCORED or not metrics:
        return None
    lq = metrics.get("label_quality")
    e = 0.0 if lq is None else min(1.0, max(0.0, 1.0 - lq))
    core = metrics.get("core_confidence")
    if core is None:
        core = metrics.get("confidence")
    u = 0.0 if core is None else min(1.0, max(0.0, 2.0 * (1.0 - core)))
    s = 1.0 - (1.0 - e) * (1.0 - _U_WEIGHT * u)
    return min(_PRIORITY_MAX, s)


def _sort_value(row: Mapping[str, Any], key: str):
    v = row.get(key)
    if v is None:
        return None
    if key == "category":
        return CATEGORIES.index(v) if v in CATEGORIES else len(CATEGORIES)
    if isinstance(v, (bool, int, float, np.integer, np.floating)):
        v = float(v)
        return v if math.isfinite(v) else None
    return str(v)


def review_order(rows: Iterable[Mapping[str, Any]], key: str = "priority",
                 reverse: bool | None = None) -> list:
    """Rows sorted by ``key``; rows where it is None/NaN/missing always go last.

    ``reverse`` None takes the column's direction from SORT_KEYS ('desc' → largest first;
    unknown columns ascending). The sort is stable: ties keep the input order. 'category'
    sorts in CATEGORIES order (disagrees first).
    """
    if reverse is None:
        reverse = SORT_KEYS.get(key, "asc") == "desc"
    have, missing = [], []
    for row in rows:
        v = _sort_value(row, key)
        (missing if v is None else have).append((v, row))
    # numbers before strings if a column mixes them, so the sort never compares the two
    have.sort(key=lambda t: (isinstance(t[0], str), t[0]) if not reverse
              else (not isinstance(t[0], str), t[0]), reverse=reverse)
    return [r for _, r in have] + [r for _, r in missing]


def summarize(rows: Sequence[Mapping[str, Any]], columns: Iterable[str], bins: int = 10) -> dict:
    """Data-set summary: per column count, mean, min, max and a histogram (None ignored),
    and the number of rows per category (rows without one count as 'no-model')."""
    rows = list(rows)
    cols: dict[str, dict] = {}
    for col in columns:
        vals = []
        for r in rows:
            v = r.get(col)
            if isinstance(v, (bool, int, float, np.integer, np.floating)):
                v = float(v)
                if math.isfinite(v):
                    vals.append(v)
        if vals:
            a = np.asarray(vals)
            counts, edges = np.histogram(a, bins=bins)
            cols[col] = {"count": len(vals), "mean": float(a.mean()), "min": float(a.min()),
                         "max": float(a.max()),
                         "histogram": {"edges": [float(e) for e in edges],
                                       "counts": [int(c) for c in counts]}}
        else:
            cols[col] = {"count": 0, "mean": None, "min": None, "max": None,
                         "histogram": {"edges": [], "counts": []}}
    cats = dict.fromkeys(CATEGORIES, 0)
    for r in rows:
        c = r.get("category") or "no-model"
        cats[c] = cats.get(c, 0) + 1
    return {"n_rows": len(rows), "columns": cols, "categories": cats}
