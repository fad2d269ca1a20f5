"""Ranking figures shared by the benchmarks: how well an order finds the positives.

Pure numpy: `s` holds one value per item, larger = more likely a positive (turn a column
round first when smaller means worse); `pos` is a boolean array of the positives. Ties are
treated fairly everywhere, so an order gets no credit from the input order within a tie.
"""
from __future__ import annotations

import numpy as np


def average_ranks(s: np.ndarray) -> np.ndarray:
    """1-based ranks, ties get their average rank."""
    s = np.asarray(s, dtype=float)
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    ss = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and ss[j + 1] == ss[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def roc_auc(s: np.ndarray, pos: np.ndarray) -> float | None:
    """P(a random positive scores above a random negative), ties ½ (Mann–Whitney U);
    None without positives or without negatives."""
    s, pos = np.asarray(s, dtype=float), np.asarray(pos, dtype=bool)
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if n1 == 0 or n0 == 0:
        return None
    r = average_ranks(s)
    return float((r[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def precision_at_k(s: np.ndarray, pos: np.ndarray, k: int) -> float | None:
    """Expected share of positives among the top k, ties at the cut broken at random."""
    s, pos = np.asarray(s, dtype=float), np.asarray(pos, dtype=bool)
    if k <= 0 or len(s) == 0:
        return None
    k = min(k, len(s))
    t = np.sort(s)[::-1][k - 1]
    above, tie = s > t, s == t
    tp = pos[above].sum() + (k - above.sum()) * pos[tie].sum() / tie.sum()
    return float(tp / k)


def average_precision(s: np.ndarray, pos: np.ndarray) -> float | None:
    """Average precision, Σ_t (R_t − R_{t−1}) · P_t over the distinct values t of `s` taken
    as thresholds from the top (a group of tied values enters all at once, so the input
    order within a tie does not matter; scikit-learn's `average_precision_score` is the same
    sum). 1.0 when every positive is above every negative; None without positives."""
    s, pos = np.asarray(s, dtype=float), np.asarray(pos, dtype=bool)
    n1 = int(pos.sum())
    if n1 == 0:
        return None
    vals, inv = np.unique(-s, return_inverse=True)  # ascending -s = descending s
    tp = np.bincount(inv, weights=pos.astype(float), minlength=len(vals))
    n = np.bincount(inv, minlength=len(vals)).astype(float)
    ctp, cn = np.cumsum(tp), np.cumsum(n)
    return float(np.sum(tp / n1 * (ctp / cn)))


def rank_figures(s: np.ndarray, pos: np.ndarray) -> dict:
    """P@K (K = number of positives, so P@K = R@K), AP and ROC AUC of one order."""
    k = int(np.asarray(pos, dtype=bool).sum())
    return {"p_at_k": precision_at_k(s, pos, k), "ap": average_precision(s, pos),
            "auc": roc_auc(s, pos)}
