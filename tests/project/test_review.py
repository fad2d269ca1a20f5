"""engine/project/review.py: use-prediction (the app's P) and the editor's first mask (e) take
only the current model's prediction of the image as it is now, read through the guarded
reader; without one, e thresholds the image as `segtriage segment` does (16-bit at full
depth). A small project built without training: real PNGs, the real scan, model rows and
probability PNGs written directly."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from segtriage.engine.project.index import scan
from segtriage.engine.project.project import Project
from segtriage.engine.project.review import ReviewError, prepare_edit, replace_with_prediction

S = 20
MASK = np.zeros((S, S), bool)
MASK[2:6, 2:6] = True                # the mask on disk
PRED = np.zeros((S, S), bool)
PRED[10:14, 3:9] = True              # what model v1 predicts for "one" and "bare"


def _model(store, n=1):
    return store.add_model(kind="plain", arch="resnet18", weights=[], config={}, epochs=1,
                           train_loss=0.2, valid_loss=0.2, valid_dice=0.8, n_train=2,
                           n_valid=1, manifest=[])


def _put_prediction(project, name, model_id, prob_u8, rel=None):
    row = project.store.image(name)
    rel = rel or f"preds/m{model_id}/{name}"
    (project.state / rel).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(prob_u8, "L").save(project.state / rel)
    project.store.put_score(row.id, model_id, fold=None, image_sha256=row.img_sha256,
                            mask_sha256=row.mask_sha256, precision="fp32", prob_path=rel,
                            category=None, metrics={})
    return project.state / rel


def _project(root, *, model=True) -> Project:
    root.mkdir()
    for name in ("one", "bare"):
        Image.fromarray(np.full((S, S), 90, np.uint8), "L").save(root / f"{name}.png")
    Image.fromarray(MASK.astype(np.uint8) * 255, "L").save(root / "one_mask.png")
    project = Project.open(root)
    scan(project)
    if model:
        mid = _model(project.store)
        for name in ("one.png", "bare.png"):
            _put_prediction(project, name, mid, np.where(PRED, 230, 20).astype(np.uint8))
    return project


def _mask(project, name="one_mask.png"):
    return np.asarray(Image.open(project.root / name)) > 0


def _replace_image(project, name):
    """The same size, other content: the row's image hash changes with the scan."""
    img = np.full((S, S), 90, np.uint8)
    img[0, 0] = 7
    Image.fromarray(img, "L").save(project.root / name)
    scan(project)


def test_use_prediction_writes_the_current_models_map_cut_at_one_half(tmp_path):
    project = _project(tmp_path / "p")
    assert replace_with_prediction(project, project.store.image("one.png").id) == \
        "one.png: mask replaced by the prediction"
    assert np.array_equal(_mask(project), PRED)
    assert [v.source for v in project.store.mask_versions("one_mask.png")] == \
        ["scan", "prediction"]


def test_use_prediction_refuses_the_map_of_an_image_since_replaced(tmp_path):
    project = _project(tmp_path / "p")
    _replace_image(project, "one.png")
    before = (project.root / "one_mask.png").read_bytes()
    with pytest.raises(ReviewError) as e:
        replace_with_prediction(project, project.store.image("one.png").id)
    assert str(e.value) == ("no current prediction for one.png: the image changed since "
                            "model v1 predicted it (predict it again)")
    assert (project.root / "one_mask.png").read_bytes() == before


def test_use_prediction_refuses_an_older_models_or_a_checkpoints_map(tmp_path):
    project = _project(tmp_path / "p")
    assert _model(project.store) == 2                  # current now, and it predicted nothing
    with pytest.raises(ReviewError, match=r"^no current prediction for one.png: no "
                                          r"prediction of model v2 yet \(predict it first\)$"):
        replace_with_prediction(project, project.store.image("one.png").id)
    # no model version yet, only an early ranking's checkpoint (negative id) scored it
    other = _project(tmp_path / "q", model=False)
    cp = other.store.add_checkpoint(arch="resnet18", config={}, step=1, steps=4, job_id=None)
    assert cp < 0
    _put_prediction(other, "one.png", cp, np.full((S, S), 255, np.uint8))
    with pytest.raises(ReviewError, match=r"^no current prediction for one.png: no model "
                                          r"yet \(train one first\)$"):
        replace_with_prediction(other, other.store.image("one.png").id)
    assert np.array_equal(_mask(other), MASK)


def bomb_png(path, w=10_000, h=10_000):
    """A PNG whose header declares w×h 8-bit grey pixels (100 M > the 89 M limit), with no
    pixel data: refused from the header, nothing decoded."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0,
                                                                        0, 0, 0))
                     + chunk(b"IEND", b""))


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_damaged_or_bomb_map_is_refused_with_its_file_named(tmp_path):
    project = _project(tmp_path / "p")
    path = project.state / project.store.score(project.store.image("one.png").id).prob_path
    bomb_png(path)
    with pytest.raises(ReviewError) as e:
        replace_with_prediction(project, project.store.image("one.png").id)
    assert str(e.value).startswith(f"cannot read the prediction: {path}: declares "
                                   "10000×10000 pixels")
    assert "decompression bomb" in str(e.value)
    path.write_bytes(b"")
    with pytest.raises(ReviewError, match="empty file"):
        replace_with_prediction(project, project.store.image("one.png").id)
    assert np.array_equal(_mask(project), MASK)


def test_edit_starts_from_the_current_prediction_else_from_a_threshold(tmp_path):
    project = _project(tmp_path / "p")
    mask, image = prepare_edit(project, project.store.image("bare.png").id)
    assert (mask, image) == (project.root / "bare_mask.png", project.root / "bare.png")
    assert np.array_equal(_mask(project, "bare_mask.png"), PRED)
    assert [v.source for v in project.store.mask_versions("bare_mask.png")] == ["prediction"]
    # the image replaced: model v1's map is another image's; a flat image thresholds empty
    (project.root / "bare_mask.png").unlink()
    _replace_image(project, "bare.png")
    prepare_edit(project, project.store.image("bare.png").id)
    assert not _mask(project, "bare_mask.png").any()
    assert project.store.mask_versions("bare_mask.png")[-1].source == "segment"


def test_edit_thresholds_a_16_bit_image_as_segment_does(tmp_path):
    """A bright disk overlapping a faint one 5 levels of 40 000 high: the 8-bit stretch loses
    the faint one (5 · 255 / 40 005 rounds to 0) and the smoothed edge moves by 8 pixels;
    `segtriage segment` thresholds at full depth, and so must the editor's first mask."""
    from segtriage.engine.project.imageio import read_image
    from segtriage.engine.project.segment import segment_folder, threshold_mask

    n = 48
    yy, xx = np.mgrid[0:n, 0:n]
    img = (1000 + 5 * ((yy - 18) ** 2 + (xx - 23) ** 2 <= 81)
           + 40000 * ((yy - 12) ** 2 + (xx - 12) ** 2 <= 16)).astype(np.uint16)
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        Image.fromarray(img).save(tmp_path / d / "deep.png")
    assert Image.open(tmp_path / "a" / "deep.png").mode.startswith("I")
    segment_folder(Project.open(tmp_path / "a"))
    by_segment = _mask(Project.open(tmp_path / "a"), "deep_mask.png")
    eight_bit = threshold_mask(read_image(tmp_path / "a" / "deep.png")) > 0
    assert int((by_segment != eight_bit).sum()) == 8            # the two readings differ
    project = Project.open(tmp_path / "b")
    scan(project)
    prepare_edit(project, project.store.image("deep.png").id)
    assert np.array_equal(_mask(project, "deep_mask.png"), by_segment)
