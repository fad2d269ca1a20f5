"""The fix-effort oracle (bench/fix_effort.py): its greedy choice and its summary figures."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import fix_effort  # noqa: E402

from segtriage.tui.paint import ops  # noqa: E402


def two_squares():
    """Truth: 3x3 squares A (rows/cols 1..3) and B (rows/cols 7..9) in 12x12; the mask lost B."""
    truth = np.zeros((12, 12), bool)
    truth[1:4, 1:4] = True
    truth[7:10, 7:10] = True
    mask = truth.copy()
    mask[7:10, 7:10] = False
    return mask, truth


def test_with_the_prediction_one_operation_restores_the_lost_object():
    mask, truth = two_squares()
    fx = fix_effort.fix_one(mask, truth, truth.copy(), goal=0.9, max_ops=20)
    assert fx.dice0 == pytest.approx(18 / 27)  # 2*9 / (9 + 18)
    assert fx.n_ops == 1 and fx.reached and not fx.brush
    assert fx.dice == 1.0
    # on a tie (the box of the whole image gives Dice 1 too) the first candidate wins: the
    # predicted object under the error region's centre
    assert fx.steps[0][0] == "add_predicted_object"
    assert fx.problems == []


def test_without_the_prediction_the_best_single_operation_is_a_dab_of_radius_2():
    # B's innermost pixel is (8, 8), 2 px from the outside: radii 0..4 are tried. A dab of
    # radius 1 paints 5 of B's 9 pixels: Dice 2*14/(14+18) = 0.875; radius 2 paints 13
    # pixels, all 9 of B and 4 more: Dice 2*18/(22+18) = 0.9, the goal.
    mask, truth = two_squares()
    fx = fix_effort.fix_one(mask, truth, None, goal=0.9, max_ops=20)
    assert [s[:2] for s in fx.steps] == [("brush", "(8,8) r2 paint")]
    assert fx.dice == pytest.approx(0.9) and fx.reached and fx.brush
    want = mask.copy()
    want[7:10, 7:10] = True
    want[[6, 10, 8, 8], [8, 8, 6, 10]] = True
    np.testing.assert_array_equal(ops.brush(mask, 8, 8, 2), want)


def test_the_oracle_stops_at_the_operation_limit():
    mask, truth = two_squares()
    fx = fix_effort.fix_one(mask, truth, None, goal=0.95, max_ops=1)
    assert fx.n_ops == 1 and not fx.reached and fx.dice == pytest.approx(0.9)


def test_candidates_cover_the_registry_and_nopred_needs_no_prediction():
    mask, truth = two_squares()
    truth[11, 2:10] = True  # a missing line: long enough for a stroke
    names = {c[0] for c in fix_effort.candidates(mask, truth, truth)}
    assert names == set(ops.OPS)
    names = {c[0] for c in fix_effort.candidates(mask, truth, None)}
    assert names == {n for n, op in ops.OPS.items() if not op.pred}


def fix(n_ops: int, reached: bool, brush: bool) -> fix_effort.Fix:
    f = fix_effort.Fix("m", "eroded", "pred", dice0=0.5, dice=0.95 if reached else 0.8,
                       reached=reached)
    f.steps = [("brush" if brush else "grow", "", 0.9)] * n_ops
    return f


def test_summary_counts_an_unfixed_mask_as_one_over_the_limit():
    s = fix_effort.summarize([fix(1, True, False), fix(2, True, True), fix(3, True, False),
                              fix(20, False, True)], max_ops=20)
    assert s["n"] == 4
    assert s["median"] == 2.5        # of 1, 2, 3, 21
    assert s["p90"] == 21            # the smallest cost with >= 90 % at or below it
    assert s["within5"] == 0.75 and s["reached"] == 0.75
    assert s["no_brush"] == 0.5      # the first and the third
    assert fix_effort._ops_text(s["p90"], 20) == "> 20"
