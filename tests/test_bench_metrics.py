"""The benchmarks' ranking figures (bench/ranking.py): AP, ROC AUC and P@K with ties."""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import ranking  # noqa: E402


def ap_by_hand(order_pos: list[bool]) -> float:
    """AP of a strict order (no ties): mean of the precision at each positive's rank."""
    hits, precs = 0, []
    for i, p in enumerate(order_pos, 1):
        if p:
            hits += 1
            precs.append(hits / i)
    return sum(precs) / len(precs)


def test_average_precision_strict_orders():
    pos = np.array([True, False, True, False, False])
    s = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    # ranks of the positives 1 and 3: (1/1 + 2/3) / 2
    assert ranking.average_precision(s, pos) == pytest.approx((1 + 2 / 3) / 2)
    assert ranking.average_precision(-s, pos) == pytest.approx(ap_by_hand(
        [False, False, True, False, True]))
    assert ranking.average_precision(np.arange(5.0), np.array([0, 0, 0, 1, 1], bool)) == 1.0
    assert ranking.average_precision(s, np.zeros(5, bool)) is None


def test_average_precision_ties_enter_as_a_group():
    # all tied: precision is the base rate at the single threshold
    pos = np.array([True, False, False, True])
    assert ranking.average_precision(np.zeros(4), pos) == pytest.approx(0.5)
    # a tie at the top between one positive and one negative counts P = 1/2 for it,
    # whatever the input order
    s = np.array([2.0, 2.0, 1.0])
    a = ranking.average_precision(s, np.array([True, False, False]))
    b = ranking.average_precision(s, np.array([False, True, False]))
    assert a == b == pytest.approx(0.5)


def test_average_precision_matches_random_strict_orders():
    rng = np.random.default_rng(3)
    for _ in range(30):
        n = int(rng.integers(2, 15))
        pos = rng.random(n) < 0.4
        if not pos.any():
            pos[0] = True
        s = rng.permutation(n).astype(float)  # distinct values
        order = np.argsort(-s)
        assert ranking.average_precision(s, pos) == pytest.approx(ap_by_hand(list(pos[order])))


def test_roc_auc_with_ties_is_the_mean_over_tie_breaks():
    pos = np.array([True, False, True, False, False])
    s = np.array([1.0, 1.0, 0.0, 0.0, 2.0])
    # every way of breaking the ties, averaged, equals the tie-½ AUC
    aucs = []
    for eps in itertools.product([0, 1e-3, 2e-3], repeat=5):
        aucs.append(ranking.roc_auc(s + np.array(eps), pos))
    exact = ranking.roc_auc(s, pos)
    # counted pairs: pos 1.0 vs neg 1.0 (½), vs 0.0 (1), vs 2.0 (0); pos 0.0 vs 1.0 (0),
    # vs 0.0 (½), vs 2.0 (0): (0.5 + 1 + 0 + 0 + 0.5 + 0) / 6
    assert exact == pytest.approx(2 / 6)
    assert np.mean(aucs) == pytest.approx(exact, abs=0.02)
    assert ranking.roc_auc(np.zeros(3), np.array([True, True, True])) is None
    assert ranking.roc_auc(np.array([3.0, 1.0]), np.array([True, False])) == 1.0


def test_precision_at_k_splits_a_tie_at_the_cut():
    pos = np.array([True, True, False, False])
    s = np.array([3.0, 1.0, 1.0, 0.0])
    # top 2: the 3.0 for sure, then one of the two tied at 1.0 (half a positive)
    assert ranking.precision_at_k(s, pos, 2) == pytest.approx(0.75)
    assert ranking.precision_at_k(s, pos, 0) is None
    figs = ranking.rank_figures(s, pos)
    assert figs["p_at_k"] == pytest.approx(0.75)
    assert figs["auc"] == pytest.approx((1 + 1 + 0.5 + 1) / 4)
