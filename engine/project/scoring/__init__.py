"""Per-image scores from a stored probability map and the current mask; triage and order.

numpy / scipy / scikit-image only: clients import this package, so never torch or fastai.

metrics.py  every per-image figure from P(object) and the mask (score_image)
order.py    category, priority, sort directions, review order and summaries
objects.py  connected components, object matching and shape statistics
probs.py    the stored probability maps (8-bit PNGs in the state folder)
rescore.py  score an image from its stored map against its current mask
Every formula, its empty-mask convention and its failure modes are in docs/scoring.md.

Notation: p(x) = P(foreground), y(x) the current mask (class index > 0 = object),
ŷ = [p > 0.5], m(x) = max(p, 1 - p), margin g(x) = |2p - 1| = 2m - 1,
p_y(x) = p where y else 1 - p.
"""
from __future__ import annotations

from .metrics import (EPS, SCORING_VERSION, binary_entropy, cross_entropy, dice, iou,
                      outline_bias, score_image, soft_dice, softmin_quality)
from .order import (CATEGORIES, SORT_KEYS, categorize, params_from, priority_of, review_order,
                    summarize)

__all__ = ["CATEGORIES", "EPS", "SCORING_VERSION", "SORT_KEYS",
           "binary_entropy", "categorize", "cross_entropy", "dice", "iou", "outline_bias",
           "params_from", "priority_of", "review_order", "score_image", "soft_dice",
           "softmin_quality", "summarize"]
