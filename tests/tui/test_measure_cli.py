"""`segtriage measure` on the fixture project: which mask each source takes, the documented
CSV columns in pandas, the same bytes on a re-run, errors named with their file."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from segtriage.engine.project import measure
from segtriage.tui import cli
from segtriage.engine.project.project import Project

SIZE = 24


def _disk(cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


# name → (has mask, has prediction); image i: a disk at (8 + i, 12) of radius 4 + i % 3
NAMES = {"alpha": (True, True), "bravo": (True, True), "charlie": (True, True),
         "delta": (False, True), "echo": (True, False), "foxtrot": (False, False)}


@pytest.fixture
def project(tmp_path):
    """A seed-layout project, scanned, with model v1's probability maps written directly
    (no training): the prediction of image i is a disk at (9 + i, 12) of radius 5 and a band
    of doubt (128) along the top edge."""
    from PIL import Image

    from segtriage.engine.project.config import load_config
    from segtriage.engine.project.index import scan
    from segtriage.engine.store import Store

    root = tmp_path / "proj"
    root.mkdir()
    for i, (name, (has_mask, _p)) in enumerate(NAMES.items()):
        d = _disk(8 + i, 12, 4 + i % 3)
        Image.fromarray(np.where(d, 200, 40).astype(np.uint8), "L").save(root / f"{name}.png")
        if has_mask:
            Image.fromarray(d.astype(np.uint8) * 255, "L").save(root / f"{name}_mask.png")
    cfg = load_config(root)
    store = Store(cfg.state_path(root) / "state.db")
    scan(Project(root, cfg, store))
    mid = store.add_model(kind="plain", arch="resnet18", weights=[], config={}, epochs=1,
                          train_loss=0.2, valid_loss=0.2, valid_dice=0.9, n_train=4,
                          n_valid=1, manifest=[])
    for i, (name, (_m, has_pred)) in enumerate(NAMES.items()):
        if not has_pred:
            continue
        row = store.image(f"{name}.png")
        prob = np.where(_disk(9 + i, 12, 5), 230, 20).astype(np.uint8)
        prob[0:3, :] = 128
        Image.fromarray(prob, "L").save(cfg.state_path(root) / "preds" / f"{name}.png")
        store.put_score(row.id, mid, fold=None, image_sha256=row.img_sha256,
                        mask_sha256=row.mask_sha256, precision="fp32",
                        prob_path=f"preds/{name}.png", category="agrees", metrics={})
    store.close()
    return root


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def review(project, decisions: dict[str, str]) -> None:
    store = Project.open(project).store
    for name, status in decisions.items():
        store.set_status([store.image(f"{name}.png").id], status)
    store.close()


def images_table(capsys, project, *args) -> pd.DataFrame:
    rc, out, _err = run(capsys, "measure", project, "--per", "image", "--format", "csv", *args)
    assert rc == 0
    return pd.read_csv(io.StringIO(out), comment="#").set_index("image")


def mask_area(i: int) -> int:      # the fixture's mask of image i (conftest.build_project)
    return int(_disk(8 + i, 12, 4 + i % 3).sum())


def pred_area(i: int) -> int:      # its stored prediction: P > 0.5 inside a disk of radius 5
    p = np.where(_disk(9 + i, 12, 5), 230, 20)
    p[0:3, :] = 128                 # 128/255 > 0.5: the band of doubt counts as object
    return int((p > 127).sum())


def test_each_source_takes_the_right_masks(project, capsys):
    review(project, {"alpha": "accepted", "bravo": "edited"})
    t = images_table(capsys, project, "--source", "reviewed")
    assert list(t.index) == ["alpha.png", "bravo.png"]
    assert set(t["source"]) == {"reviewed"}
    assert t.loc["alpha.png", "area_mean_px"] == mask_area(0)
    assert t.loc["bravo.png", "area_fraction"] == pytest.approx(mask_area(1) / SIZE ** 2)

    t = images_table(capsys, project, "--source", "masks")
    assert list(t.index) == ["alpha.png", "bravo.png", "charlie.png", "echo.png"]
    assert list(t["source"]) == ["reviewed", "reviewed", "mask", "mask"]
    assert t["error"].isna().all()

    t = images_table(capsys, project, "--source", "best")
    assert list(t.index) == ["alpha.png", "bravo.png", "charlie.png", "delta.png", "echo.png",
                             "foxtrot.png"]
    assert list(t["source"]) == ["reviewed", "reviewed", "prediction", "prediction",
                                 "prediction", "prediction"]
    # reviewed rows come from the mask, the others from the model's P > 0.5, with its version
    assert t.loc["alpha.png", "area_fraction"] == pytest.approx(mask_area(0) / SIZE ** 2)
    assert t.loc["delta.png", "area_fraction"] == pytest.approx(pred_area(3) / SIZE ** 2)
    assert pd.isna(t.loc["alpha.png", "model"]) and t.loc["delta.png", "model"] == 1
    assert t.loc["delta.png", "mask"].startswith(".segtriage/preds/")
    # no prediction: an error row naming the reason, the others still measured
    for name in ("echo.png", "foxtrot.png"):
        assert t.loc[name, "error"] == "no prediction of model v1 yet (predict it first)"
    assert t.loc[["alpha.png", "delta.png"], "error"].isna().all()


def test_the_object_csv_has_the_documented_columns_and_the_same_bytes_twice(project, capsys):
    review(project, {"alpha": "accepted"})
    rc, first, err = run(capsys, "measure", project, "--format", "csv")
    assert rc == 0
    assert "echo.png: not measured: no prediction of model v1" in err
    df = pd.read_csv(io.StringIO(first), comment="#")
    assert tuple(df.columns) == measure.OBJECT_COLUMNS
    # the predictions' band of doubt along the top edge is an object of its own, on the border
    assert len(df) == 7 and set(df["image"]) == {"alpha.png", "bravo.png", "charlie.png",
                                                 "delta.png"}
    assert df["touches_border"].dtype == bool
    assert list(df.loc[df["touches_border"], "bbox_min_row"]) == [0, 0, 0]
    assert df.loc[df["image"] == "alpha.png", "area_px"].item() == mask_area(0)
    assert df["area_unit"].isna().all()  # no pixel size: pixels only
    head = [ln for ln in first.splitlines() if ln.startswith("#")]
    assert '# source: "best"' in head and '# split: "none"' in head
    assert any(ln.startswith("# segtriage: ") for ln in head)
    assert run(capsys, "measure", project, "--format", "csv")[1] == first


def test_out_writes_objects_images_and_summary_in_the_unit(project, capsys, tmp_path):
    (project / "segtriage.toml").write_text('[project]\npixel_size = 0.5\nunit = "µm"\n')
    out = tmp_path / "res" / "objects.csv"
    rc, _o, err = run(capsys, "measure", project, "--source", "masks", "--out", out)
    assert rc == 0 and f"object rows → {out}" in err
    objs = pd.read_csv(out, comment="#")
    imgs = pd.read_csv(tmp_path / "res" / "objects-images.csv", comment="#")
    summ = pd.read_csv(tmp_path / "res" / "objects-summary.csv", comment="#")
    assert tuple(imgs.columns) == measure.IMAGE_COLUMNS
    assert tuple(summ.columns) == measure.SUMMARY_COLUMNS
    assert np.allclose(objs["area_unit"], objs["area_px"] * 0.25)
    assert np.allclose(objs["perimeter_unit"], objs["perimeter_px"] * 0.5)
    assert np.allclose(imgs["density_unit"], imgs["density_px"] / 0.25)
    assert summ["objects"].item() == len(objs) == 4
    assert '# unit: "µm"' in out.read_text(encoding="utf-8")
    before = out.read_bytes()
    run(capsys, "measure", project, "--source", "masks", "--out", out)
    assert out.read_bytes() == before


def test_json_carries_header_rows_summary_and_errors(project, capsys):
    rc, out, _err = run(capsys, "measure", project, "--format", "json", "--per", "image",
                        "--split", "watershed")
    doc = json.loads(out)
    assert rc == 0 and doc["per"] == "image"
    assert doc["header"]["split"] == "watershed" and doc["header"]["source"] == "best"
    assert {e["image"] for e in doc["errors"]} == {"echo.png", "foxtrot.png"}
    assert doc["summary"]["errors"] == 2 and doc["summary"]["measured"] == 4
    assert [r["image"] for r in doc["rows"]] == sorted(r["image"] for r in doc["rows"])


def test_the_terminal_summary_and_refusals(project, capsys, tmp_path):
    rc, out, _err = run(capsys, "measure", project)
    assert rc == 0 and "images measured" in out and "source best" in out
    rc, _out, err = run(capsys, "measure", project, "--format", "table", "--out",
                        tmp_path / "x.csv")
    assert rc == 2 and "--out writes csv or json" in err
    (project / "segtriage.toml").write_text('[measure]\nsplit = "maybe"\n')
    rc, _out, err = run(capsys, "measure", project)
    assert rc == 2 and "measure.split = 'maybe' is not allowed" in err


def test_an_unreadable_mask_is_a_row_with_its_file_and_reason(project, capsys):
    review(project, {"alpha": "accepted"})
    (project / "alpha_mask.png").write_bytes(b"not a png")
    t = images_table(capsys, project, "--source", "reviewed")
    assert "alpha_mask.png" in t.loc["alpha.png", "error"]
