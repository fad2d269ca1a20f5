"""tui/paint/document.py: what the painter opens inside a project (the current prediction only,
through the guarded reader; a damaged state is a message) and how a save fails (always a
DocumentError naming the file, never a traceback that loses the edits; never a plain save
inside a project's folder). The small scored project of tests/tui/conftest.py."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segtriage.engine.project.project import Project
from segtriage.tui.paint.document import DocumentError, open_document

from .conftest import SIZE


def _state(root):
    return root / ".segtriage"


def _painted(doc):
    m = doc.mask.copy()
    m[5, 5] = not m[5, 5]
    return m


def _read(path):
    return np.asarray(Image.open(path)) > 0


def test_the_scenes_prediction_cut_is_the_engines():
    from segtriage.engine.project.scoring import probs
    from segtriage.tui.paint.scene import PRED_CUT, Scene

    assert PRED_CUT == probs.PRED_CUT == 127
    ramp = np.arange(256, dtype=np.uint8).reshape(16, 16)
    scene = Scene(np.zeros((16, 16), np.uint8), prob=ramp)
    assert np.array_equal(scene.pred, probs.prediction_of(ramp))
    assert int(scene.pred.sum()) == 128                      # 128..255: P > 0.5


def test_a_mask_the_project_does_not_know_is_not_saved_beside_its_data(project):
    """A plain save there would keep NAME_mask.orig-1.png in the data folder (the next scan
    takes it for an image) and write outside the mask history."""
    Image.fromarray(np.zeros((SIZE, SIZE), np.uint8)).save(project / "golf.png")
    Image.fromarray(np.zeros((SIZE, SIZE), np.uint8)).save(project / "golf_mask.png")
    before = (project / "golf_mask.png").read_bytes()
    doc = open_document(project / "golf_mask.png", image=project / "golf.png")
    assert not doc.in_project
    assert doc.note == f"not a mask of the project {project} yet: saving is refused"
    with pytest.raises(DocumentError) as e:
        doc.save(_painted(doc))
    assert str(e.value) == (f"golf.png is not in the project {project} yet: run `segtriage "
                            f"scan {project}` first (not saved)")
    assert (project / "golf_mask.png").read_bytes() == before
    assert not list(project.glob("*orig*"))


def test_a_folder_with_a_config_and_no_state_refuses_a_plain_save_too(tmp_path):
    (tmp_path / "segtriage.toml").write_text("")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a_mask.png")
    doc = open_document(tmp_path / "a_mask.png")
    assert doc.note == f"{tmp_path} has no project state yet: saving is refused"
    with pytest.raises(DocumentError, match=r"^a_mask.png is not in the project .* yet: run "
                                            r"`segtriage scan "):
        doc.save(_painted(doc))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_mask.png", "segtriage.toml"]


def test_a_damaged_state_is_a_message_at_open_and_at_save(project):
    doc = open_document(project / "alpha_mask.png")
    assert doc.in_project
    before = (project / "alpha_mask.png").read_bytes()
    db = _state(project) / "state.db"
    for p in _state(project).glob("state.db*"):
        p.unlink()
    with pytest.raises(DocumentError) as e:       # deleted: StoreError inside
        doc.save(_painted(doc))
    assert str(e.value).startswith(f"alpha_mask.png: not saved: cannot open the project "
                                   f"state of {project}: no segtriage state at {db}")
    db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DocumentError) as e:       # damaged: sqlite3.DatabaseError inside
        doc.save(_painted(doc))
    assert str(e.value) == (f"alpha_mask.png: not saved: cannot open the project state of "
                            f"{project}: file is not a database")
    assert (project / "alpha_mask.png").read_bytes() == before
    with pytest.raises(DocumentError) as e:
        open_document(project / "alpha_mask.png")
    assert str(e.value) == f"cannot open the project state of {project}: file is not a database"


def test_a_save_whose_rescore_fails_says_it_is_saved(project, monkeypatch):
    from segtriage.engine.project.scoring import rescore

    doc = open_document(project / "alpha_mask.png")
    new = _painted(doc)

    def locked(*a, **k):
        import sqlite3
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(rescore, "score_and_store", locked)
    with pytest.raises(DocumentError) as e:
        doc.save(new)
    assert str(e.value) == "alpha_mask.png: saved, not re-scored: database is locked"
    assert np.array_equal(_read(project / "alpha_mask.png"), new)
    store = Project.open(project).store
    assert [v.source for v in store.mask_versions("alpha_mask.png")] == ["scan", "editor"]


def test_a_save_that_fails_before_writing_says_not_saved(project, monkeypatch):
    from segtriage.engine.project import imageio

    doc = open_document(project / "alpha_mask.png")
    before = (project / "alpha_mask.png").read_bytes()

    def refuse(*a, **k):        # the encoder refusing, before anything is written
        raise ValueError("mask must be 2-D class indices")

    monkeypatch.setattr(imageio, "encode_mask", refuse)
    with pytest.raises(DocumentError, match=r"^alpha_mask.png: not saved: mask must be 2-D"):
        doc.save(_painted(doc))
    assert (project / "alpha_mask.png").read_bytes() == before


def test_only_the_current_prediction_of_the_image_as_it_is_is_shown(project):
    doc = open_document(project / "alpha_mask.png")
    assert doc.prob is not None and doc.prob_path == _state(project) / "preds" / "alpha.png"
    img = np.asarray(Image.open(project / "alpha.png")).copy()
    img[0, 0] = 1                                   # same size, other content
    Image.fromarray(img).save(project / "alpha.png")
    from segtriage.engine.project.index import scan

    p = Project.open(project)
    scan(p)
    p.close()
    doc = open_document(project / "alpha_mask.png")
    assert doc.in_project and doc.prob is None and doc.prob_path is None
    assert doc.note == ("no current prediction for alpha.png: the image changed since model "
                        "v1 predicted it (predict it again)")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_stored_map_of_another_size_or_damaged_is_left_out_and_the_note_says_why(project):
    from tests.project.test_review import bomb_png

    pred = _state(project) / "preds" / "alpha.png"
    Image.fromarray(np.zeros((12, 12), np.uint8)).save(pred)
    doc = open_document(project / "alpha_mask.png")
    assert doc.in_project and doc.prob is None
    assert doc.note == (f"the prediction is not shown: {pred}: the probability map is 12×12 "
                        f"but the mask is {SIZE}×{SIZE}")
    bomb_png(pred)
    doc = open_document(project / "alpha_mask.png")
    assert doc.prob is None and "decompression bomb" in doc.note and str(pred) in doc.note
    # asked for with --prob: an error, naming the file
    with pytest.raises(DocumentError, match="decompression bomb"):
        open_document(project / "alpha_mask.png", prob=pred)
