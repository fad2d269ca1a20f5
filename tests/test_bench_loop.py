"""The loop benchmark's simulated person (bench/loop.py): a fix goes through the mask history,
leaves the row edited and re-scored from the stored prediction; and the verdicts it prints."""
from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import loop  # noqa: E402

from segtriage.engine.project import imageio  # noqa: E402
from segtriage.engine.project.config import load_config  # noqa: E402
from segtriage.engine.project.demo import truth_dir  # noqa: E402
from segtriage.engine.project.index import scan  # noqa: E402
from segtriage.engine.project.project import Project  # noqa: E402
from segtriage.engine.store import Store  # noqa: E402

SIZE = 16


def square(y0: int, x0: int, side: int) -> np.ndarray:
    m = np.zeros((SIZE, SIZE), bool)
    m[y0:y0 + side, x0:x0 + side] = True
    return m


# a: the given mask is a 4x4 square at (2, 2), the truth a 4x4 square at (2, 4): they share
# 8 pixels. b: given and truth agree (a 3x3 square at (9, 9)); it is not fixed.
GIVEN = {"a": square(2, 2, 4), "b": square(9, 9, 3)}
TRUTH = {"a": square(2, 4, 4), "b": square(9, 9, 3)}


@pytest.fixture
def project(tmp_path):
    """Two images in the seed layout with masks, their truth in the sibling `-truth` folder
    (as the demo writes it), scanned, and scored by one model whose stored P(object) is the
    truth (230 inside, 20 outside)."""
    root = tmp_path / "demo"
    root.mkdir()
    (truth_dir(root) / "masks").mkdir(parents=True)
    for name in GIVEN:
        img = np.where(TRUTH[name], 200, 40).astype(np.uint8)
        Image.fromarray(img, "L").save(root / f"{name}.png")
        Image.fromarray(GIVEN[name].astype(np.uint8) * 255, "L").save(root / f"{name}_mask.png")
        Image.fromarray(TRUTH[name].astype(np.uint8) * 255, "L").save(
            truth_dir(root) / "masks" / f"{name}_mask.png")
    cfg = load_config(root)
    store = Store(cfg.state_path(root) / "state.db")
    scan(Project(root, cfg, store))
    mid = store.add_model(kind="plain", arch="resnet18", weights=[], config={}, epochs=1,
                          train_loss=0.5, valid_loss=0.5, valid_dice=0.5, n_train=2,
                          n_valid=0, manifest=[])
    preds = cfg.state_path(root) / "preds"
    preds.mkdir(exist_ok=True)
    for name in GIVEN:
        row = store.image(f"{name}.png")
        Image.fromarray(np.where(TRUTH[name], 230, 20).astype(np.uint8), "L").save(
            preds / f"{name}.png")
        # figures as a predict job would leave them for the given mask: Dice 2*8/(16+16)
        dice = 0.5 if name == "a" else 1.0
        store.put_score(row.id, mid, fold=None, image_sha256=row.img_sha256,
                        mask_sha256=row.mask_sha256, precision="fp32",
                        prob_path=f"preds/{name}.png", category="disagrees",
                        metrics={"dice": dice, "priority": 1.0 - dice})
    store.close()
    return root


def test_fix_writes_the_truth_through_the_history_and_rescores_the_row(project):
    cfg = load_config(project)
    store = Store(cfg.state_path(project) / "state.db")
    before_a = store.image("a.png")
    before_b = store.image("b.png")
    assert store.score(before_a.id).get("dice") == 0.5
    # the scan kept the given mask as the first version
    assert [(v.source, v.sha256) for v in store.mask_versions("a_mask.png")] == [
        ("scan", before_a.mask_sha256)]
    versions_b = store.mask_versions("b_mask.png")
    store.close()

    loop.fix(project, cfg, ["a_mask.png"])

    store = Store(cfg.state_path(project) / "state.db")
    try:
        got = imageio.read_mask(project / "a_mask.png", cfg.project.codes) > 0
        np.testing.assert_array_equal(got, TRUTH["a"])
        # the file keeps the given mask's 0/255 convention
        assert sorted(np.unique(np.asarray(Image.open(project / "a_mask.png")))) == [0, 255]
        versions = store.mask_versions("a_mask.png")
        # the given mask as the scan kept it, then the person's edit: one new version
        assert [v.source for v in versions] == ["scan", "editor"]
        assert versions[0].sha256 == before_a.mask_sha256
        row = store.image("a.png")
        assert versions[1].sha256 == row.mask_sha256 == imageio.sha256_file(
            project / "a_mask.png")
        assert row.mask_sha256 != before_a.mask_sha256
        assert row.status == "edited"
        sc = store.score(row.id)
        assert sc.mask_sha256 == row.mask_sha256
        # re-scored from the stored prediction: P > 0.5 is the truth, now the mask: Dice 1
        assert sc.get("dice") == 1.0
        assert sc.prob_path == "preds/a.png"
        # the other image is untouched
        b = store.image("b.png")
        assert store.mask_versions("b_mask.png") == versions_b
        assert (b.status, b.mask_sha256) == (before_b.status, before_b.mask_sha256)
        assert store.score(b.id).mask_sha256 == before_b.mask_sha256
    finally:
        store.close()


def test_needs_fixing_counts_corrupted_and_bad_masks(tmp_path):
    root = tmp_path / "d"
    (truth_dir(root)).mkdir(parents=True)
    (truth_dir(root) / "manifest.json").write_text(
        '{"corrupted": {"x_mask.png": "dilated"}, '
        '"given_dice": {"x_mask.png": 0.9, "y_mask.png": 0.49, "z_mask.png": 0.5}}')
    assert loop.needs_fixing(root, 0.5) == {"x_mask.png", "y_mask.png"}


def rec(seed, order, rnd, fixed, dice, picked=()):
    return {"seed": seed, "train_seed": 42, "order": order, "round": rnd, "fixed": fixed,
            "test_dice": dice, "unfixed_need": 0, "seconds": 60.0, "picked": list(picked),
            "load": 1.0}


def test_verdicts_compare_means_against_the_larger_sd_and_the_ceiling():
    # 96 masks: B = 12 a round, 25 % fixed after round 2; two replicates (demo seeds 0, 1)
    recs = []
    for s, (r0, p1, p2, q1, q2, c) in enumerate([(0.60, 0.70, 0.80, 0.70, 0.70, 0.85),
                                                 (0.64, 0.74, 0.84, 0.72, 0.78, 0.87)]):
        recs += [rec(s, "round0", 0, 0, r0), rec(s, "ceiling", None, 96, c),
                 rec(s, "priority", 1, 12, p1, "abcdefghijkl"),
                 rec(s, "priority", 2, 24, p2, "abcdefghijklmnopqrstuvwx"),
                 rec(s, "random", 1, 12, q1, "abcdefMNOPQR"),
                 rec(s, "random", 2, 24, q2, "abcdefMNOPQRSTUVWXYZ0123")]
    a = SimpleNamespace(count=96, rounds=2, orders=["priority", "random"])
    text = loop.verdicts(recs, a, 3000.0, (1.0, 2.0))
    # round 2: priority 0.82 ± 0.0283, random 0.74 ± 0.0566: +0.080 > 0.057, above; paired
    # differences 0.10 and 0.06: +0.080 ± 0.028; 6 of the 24 picks shared
    assert "| 2 | 24 | random | +0.080 | 0.057 | +0.080 ± 0.028 | 6.0 / 24 | above |" in text
    # round 1: 0.72 ± 0.0283 against 0.71 ± 0.0141: +0.010 < 0.028, within
    assert "| 1 | 12 | random | +0.010 | 0.028 | +0.010 ± 0.014 | 6.0 / 12 | within |" in text
    assert "goal 2: MISSED in 1 of 2 comparisons (random round 1: within)" in text
    # 0.82 / 0.86 = 95.35 %
    assert "95.3% (priority 0.820 ± 0.028, ceiling 0.860 ± 0.014" in text
    assert "met by 0.3 points" in text
    # best order after 24 fixes: priority, +0.200 over round 0 (0.62 ± 0.028)
    assert "at most +0.200 (priority; round 0 0.620 ± 0.028)" in text
    assert "beyond the spread" in text and "50.0 min: met by 10.0 min" in text


def test_report_joins_the_replicates_of_two_sittings_and_refuses_one_twice(tmp_path, capsys):
    import json

    def sitting(seed, r0, p2, c):
        return [rec(seed, "round0", 0, 0, r0), rec(seed, "ceiling", None, 96, c),
                rec(seed, "priority", 1, 12, r0), rec(seed, "priority", 2, 24, p2)]

    (tmp_path / "a.json").write_text(json.dumps(sitting(0, 0.60, 0.80, 0.85)))
    (tmp_path / "b.json").write_text(json.dumps(sitting(1, 0.64, 0.84, 0.87)))
    args = ["--orders", "priority", "--png", str(tmp_path / "p.png"), "--report"]
    assert loop.main([*args, str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    assert "| priority | 24 | 0.820 ± 0.028 |" in out and "| 2 |" in out  # both seeds' mean
    assert "rounds' time in all 8.0 min" in out            # 8 rounds of 60 s
    assert (tmp_path / "p.png").stat().st_size > 0
    with pytest.raises(SystemExit, match=r"b.json: replicate seed 1, training seed 42 is "
                                         r"also in .*b.json"):
        loop.main([*args, str(tmp_path / "b.json"), str(tmp_path / "b.json")])
