"""`segtriage fix` on a small project built without training: real PNGs, the real scan, one
model row and a probability PNG written directly (as tests/tui/conftest.py does)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segtriage.tui import cli
from segtriage.engine.project.project import Project

S = 20


def _project(root):
    from segtriage.engine.project.config import load_config
    from segtriage.engine.project.index import scan
    from segtriage.engine.store import Store

    root.mkdir()
    mask = np.zeros((S, S), np.uint8)
    mask[2:6, 2:6] = 255          # an object the model sees (with a hole at 3,3)
    mask[3, 3] = 0
    mask[14:17, 14:17] = 255      # an object the model does not see
    pred = np.zeros((S, S), bool)
    pred[2:6, 2:6] = True
    pred[10:13, 2:5] = True       # an object the mask lacks
    for name in ("one", "nopred", "nomask"):
        Image.fromarray(np.full((S, S), 90, np.uint8), "L").save(root / f"{name}.png")
    for name in ("one", "nopred"):
        Image.fromarray(mask, "L").save(root / f"{name}_mask.png")
    cfg = load_config(root)
    store = Store(cfg.state_path(root) / "state.db")
    scan(Project(root, cfg, store))
    mid = store.add_model(kind="plain", arch="resnet18", weights=[], config={}, epochs=1,
                          train_loss=0.2, valid_loss=0.2, valid_dice=0.8, n_train=2,
                          n_valid=1, manifest=[])
    (cfg.state_path(root) / "preds").mkdir(exist_ok=True)
    Image.fromarray(np.where(pred, 230, 20).astype(np.uint8), "L").save(
        cfg.state_path(root) / "preds" / "one.png")
    row = store.image("one.png")
    store.put_score(row.id, mid, fold=None, image_sha256=row.img_sha256,
                    mask_sha256=row.mask_sha256, precision="fp32", prob_path="preds/one.png",
                    category="disagrees", metrics={"dice": 0.5})
    store.close()
    return root, mask > 0, pred


def run(capsys, *argv):
    rc = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def read(path):
    return np.asarray(Image.open(path)) > 0


def test_fix_applies_the_operations_in_order_through_history_and_revert_undoes(
        tmp_path, capsys):
    root, mask, pred = _project(tmp_path / "p")
    before = (root / "one_mask.png").read_bytes()
    rc, out, err = run(capsys, "fix", root, "one.png", "--add-predicted", "--drop-unseen",
                       "--dry-run")
    assert rc == 0 and "one.png: would change: +9 -9 pixels, objects 2 -> 2" in out
    assert (root / "one_mask.png").read_bytes() == before
    rc, out, err = run(capsys, "fix", root, "one.png", "--add-predicted", "--drop-unseen",
                       "--fill-holes")
    assert rc == 0, err
    assert "one.png: +10 -9 pixels, objects 2 -> 2" in out and "segtriage revert" in out
    want = pred.copy()            # the seen object with its hole filled, the missed one added
    assert np.array_equal(read(root / "one_mask.png"), want)
    store = Project.open(root).store
    row = store.image("one.png")
    assert row.status == "edited"
    assert [v.source for v in store.mask_versions("one_mask.png")] == ["scan", "editor"]
    rc, out, _ = run(capsys, "revert", root, "one.png")
    assert rc == 0 and np.array_equal(read(root / "one_mask.png"), mask)
    # grow then shrink: the 4x4 square and the 3x3 square come back as they were, hole filled
    rc, out, _ = run(capsys, "fix", root, "one_mask.png", "--shrink", "1", "--grow", "1")
    closed = mask.copy()
    closed[3, 3] = True
    assert rc == 0 and np.array_equal(read(root / "one_mask.png"), closed)


def test_fix_says_why_an_image_is_left_as_it_is(tmp_path, capsys):
    root, mask, _pred = _project(tmp_path / "p")
    rc, _, err = run(capsys, "fix", root, "nopred.png", "--add-predicted")
    assert rc == 1 and ("nopred.png: left as it is: no current prediction for nopred.png: "
                        "no prediction of model v1 yet (predict it first)") in err
    rc, _, err = run(capsys, "fix", root, "nomask.png", "--grow", "1")
    assert rc == 1 and "nomask.png: left as it is: it has no mask yet" in err
    # fill holes needs no model; a second time there is nothing left to fill
    rc, out, _ = run(capsys, "fix", root, "nopred.png", "one.png", "--fill-holes")
    assert rc == 0 and "nopred.png: +1 -0 pixels" in out
    rc, _, err = run(capsys, "fix", root, "one.png", "--fill-holes")
    assert rc == 1 and "one.png: left as it is: no change" in err
    # an unusable mask (another size than its image)
    Image.new("L", (3, 3)).save(root / "nopred_mask.png")
    run(capsys, "scan", root)
    rc, _, err = run(capsys, "fix", root, "nopred.png", "--grow", "1")
    assert rc == 1 and "nopred.png: left as it is: its mask is unusable" in err
    rc, _, err = run(capsys, "fix", root, "one.png")
    assert rc == 2 and "nothing to do" in err
    with pytest.raises(SystemExit):
        cli.main(["fix", str(root), "one.png", "--grow", "0"])
    rc, _, err = run(capsys, "fix", root, "nope.png", "--grow", "1")
    assert rc == 2 and "nope.png" in err


def test_fix_uses_only_the_current_prediction_of_the_image_as_it_is(tmp_path, capsys):
    """The shown score may be another image content's or an older model's: neither is used."""

    root, mask, _pred = _project(tmp_path / "p")
    before = (root / "one_mask.png").read_bytes()
    img = np.full((S, S), 90, np.uint8)
    img[0, 0] = 7                                   # same size, other content
    Image.fromarray(img, "L").save(root / "one.png")
    run(capsys, "scan", root)
    rc, _, err = run(capsys, "fix", root, "one.png", "--add-predicted")
    assert rc == 1 and ("one.png: left as it is: no current prediction for one.png: the "
                        "image changed since model v1 predicted it (predict it again)") in err
    assert (root / "one_mask.png").read_bytes() == before
    # a newer model is current and has not predicted it: model v1's map is not used either
    root, _, _ = _project(tmp_path / "q")
    project = Project.open(root)
    project.store.add_model(kind="plain", arch="resnet18", weights=[], config={}, epochs=1,
                            train_loss=0.2, valid_loss=0.2, valid_dice=0.8, n_train=2,
                            n_valid=1, manifest=[])
    project.close()
    rc, _, err = run(capsys, "fix", root, "one.png", "--drop-unseen")
    assert rc == 1 and "no prediction of model v2 yet (predict it first)" in err
