"""Every writer of a project's masks goes through one history entry point: concurrent writers of
one mask lose no content, and an unseen outside edit is labelled ``editor`` whoever finds it."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segtriage.engine.project import backup, history, index
from segtriage.engine.project.demo import make_demo
from segtriage.engine.project.imageio import read_mask, sha256_file
from segtriage.engine.project.project import Project
from segtriage.engine.project.segment import segment_folder
from segtriage.engine.project.versions import history_store

SQUARE = np.zeros((8, 8), np.uint8)
SQUARE[2:6, 2:6] = 1


@pytest.fixture
def root(tmp_path) -> Path:
    """One 8×8 image with a 0/255 mask, indexed."""
    root = tmp_path / "data"
    root.mkdir()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(root / "cells.png")
    Image.fromarray(SQUARE * 255).save(root / "cells_mask.png")
    project = Project.open(root)
    index.scan(project)
    project.close()
    return root


def _pattern(writer: int, i: int) -> np.ndarray:
    """A mask no other (writer, i) gives: row 0 holds i in binary, row 7 the writer."""
    m = np.zeros((8, 8), np.uint8)
    m[0] = [(i >> b) & 1 for b in range(8)]
    m[7, writer] = 1
    return m


def _versions_decoded(project: Project, rel: str) -> list[bytes]:
    obj = history_store(project)
    codes = project.cfg.project.codes
    return [read_mask(obj.get(v.sha256), codes).tobytes()
            for v in project.store.mask_versions(rel)]


@pytest.mark.parametrize("via", ["write_mask", "replace_mask"])
def test_two_writers_of_one_mask_lose_no_content(root, via):
    """Two writers (say a painter's save and `segtriage fix`) replace one mask over and over
    at once: each content written is a version afterwards, and the file is the last one.
    With a shared lock only, a writer's 'new version' could hash the other's content, and its
    own never entered the history."""
    rounds, errors = 25, []
    start = threading.Barrier(2)

    def writer(w: int) -> None:
        project = Project.open(root)  # a connection of its own, as another process has
        try:
            start.wait()
            for i in range(rounds):
                m = _pattern(w, i)
                if via == "write_mask":
                    history.write_mask(project, project.store.image("cells.png"), m, "editor")
                else:
                    history.replace_mask(project, "cells_mask.png", _png_bytes(m),
                                         "editor")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            project.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    project = Project.open(root)
    try:
        kept = set(_versions_decoded(project, "cells_mask.png"))
        written = {_pattern(w, i).tobytes() for w in (1, 2) for i in range(rounds)}
        assert written - kept == set()
        versions = project.store.mask_versions("cells_mask.png")
        assert len(versions) == 1 + 2 * rounds  # the scan's, then one per write
        assert sha256_file(root / "cells_mask.png") == versions[-1].sha256
    finally:
        project.close()


def _png_bytes(m: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(m * 255).save(buf, format="PNG")
    return buf.getvalue()


def _other_writer(kind: str, project: Project, snapshot: str) -> None:
    """One write of the mask by another use case than write_mask."""
    if kind == "segment":
        res = segment_folder(project, overwrite=True)
        assert res["errors"] == []
    elif kind == "restore":
        backup.restore(project, snapshot)
    elif kind == "revert":
        history.revert(project, "cells.png", 1)


@pytest.mark.parametrize("other", ["write_mask", "segment", "restore", "revert"])
def test_every_writer_takes_the_masks_lock(root, other, monkeypatch):
    """Another use case rewrites the mask just after a person's save wrote its file and
    before that save kept its new version. With the mask's lock the other writer waits (the
    save waits for it a little, then goes on), so the versions are the save's content under
    its own source, then the other's. Without it the other writer went ahead in the middle
    of the save: it took the save's content for an unseen outside edit ('scan'), and had its
    own keep come a moment earlier, the save would have recorded the other's content and its
    own never (test_two_writers_of_one_mask_lose_no_content)."""
    from segtriage.engine.project import history as history_module

    project = Project.open(root)
    snapshot = backup.snapshot(project)["id"]  # of the scanned square
    project.close()
    written, other_done = threading.Event(), threading.Event()
    real_write = history_module._write_mask_file
    saver = threading.current_thread()
    errors = []

    def write_then_let_the_other_in(path, mask, **kw):
        real_write(path, mask, **kw)
        if threading.current_thread() is saver:
            written.set()
            other_done.wait(1.5)  # held: the other waits on the lock, not here

    monkeypatch.setattr(history_module, "_write_mask_file", write_then_let_the_other_in)

    def run_other() -> None:
        project = Project.open(root)
        try:
            written.wait(30)
            if other == "write_mask":
                history.write_mask(project, project.store.image("cells.png"), _pattern(2, 0),
                                   "prediction")
            else:
                _other_writer(other, project, snapshot)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            other_done.set()
            project.close()

    t = threading.Thread(target=run_other)
    t.start()
    project = Project.open(root)
    try:
        history.write_mask(project, project.store.image("cells.png"), _pattern(1, 0), "editor")
        t.join()
        assert errors == []
        kept = _versions_decoded(project, "cells_mask.png")
        assert _pattern(1, 0).tobytes() in kept
        versions = project.store.mask_versions("cells_mask.png")
        assert sha256_file(root / "cells_mask.png") == versions[-1].sha256
        # the save's version is its own content, then the other writer's follows
        assert [v.source for v in versions][:2] == ["scan", "editor"]
        assert kept[1] == _pattern(1, 0).tobytes()
    finally:
        project.close()


# -- an outside edit nobody has versioned yet is a person's edit, whoever finds it ----------

def _edit_outside(root: Path) -> bytes:
    """Save a mask as an editor outside segtriage does (no scan sees it)."""
    m = SQUARE.copy()
    m[7, :] = 1  # 8 more pixels
    Image.fromarray(m * 255).save(root / "cells_mask.png")
    return (root / "cells_mask.png").read_bytes()


def _sources(project: Project) -> list[str]:
    return [v.source for v in project.store.mask_versions("cells_mask.png")]


@pytest.mark.parametrize("writer", ["write_mask", "segment", "restore", "revert", "scan"])
def test_an_unseen_outside_edit_is_kept_as_the_editors(root, writer):
    project = Project.open(root)
    try:
        snapshot = backup.snapshot(project)["id"]
        edit = _edit_outside(root)
        if writer == "write_mask":
            history.write_mask(project, project.store.image("cells.png"), SQUARE, "prediction")
            new = "prediction"
        elif writer == "scan":
            index.scan(project)
            new = None
        else:
            _other_writer(writer, project, snapshot)
            new = writer
        assert _sources(project) == ["scan", "editor"] + ([new] if new else [])
        edited = project.store.mask_versions("cells_mask.png")[1]
        assert history_store(project).get(edited.sha256).read_bytes() == edit
        assert edited.pixels_changed == 8
    finally:
        project.close()


def test_a_first_mask_found_by_a_writer_is_the_scans(tmp_path):
    """A mask history has not seen at all: its first version is 'scan' (the rule's other
    half), also when a writer, not a scan, finds it."""
    root = tmp_path / "data"
    root.mkdir()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(root / "cells.png")
    Image.fromarray(SQUARE * 255).save(root / "cells_mask.png")
    project = Project.open(root)
    try:
        project.store.upsert_image("cells.png", mask_path="cells_mask.png")  # not scanned
        history.write_mask(project, project.store.image("cells.png"), 1 - SQUARE, "editor")
        assert _sources(project) == ["scan", "editor"]
    finally:
        project.close()


# -- demo --regenerate over a project ------------------------------------------------------

def test_regenerating_the_demo_of_a_project_keeps_its_masks_in_history(tmp_path):
    """`segtriage demo DIR --regenerate` over a project whose masks hold a person's edits: the
    masks replaced and the masks removed (fewer images) are in the history afterwards, the
    new ones labelled 'demo'; the new files are those a fresh folder gets."""
    root = tmp_path / "demo"
    make_demo(root, count=3, size=32, seed=1)
    project = Project.open(root)
    try:
        index.scan(project)
        m = read_mask(root / "img_001_mask.png", project.cfg.project.codes)
        m[:4, :4] = 1 - m[:4, :4]  # a person's edit, saved through the history
        history.write_mask(project, project.store.image("img_001.png"), m, "editor")
        edited = (root / "img_001_mask.png").read_bytes()
        gone = (root / "img_002_mask.png").read_bytes()
    finally:
        project.close()
    make_demo(root, count=2, size=32, seed=2, overwrite=True)
    fresh = tmp_path / "fresh"
    make_demo(fresh, count=2, size=32, seed=2)
    for n in ("img_000_mask.png", "img_001_mask.png", "img_000.png", "img_001.png"):
        assert (root / n).read_bytes() == (fresh / n).read_bytes(), n
    assert not (root / "img_002_mask.png").exists()
    project = Project.open(root)
    try:
        obj = history_store(project)
        v1 = project.store.mask_versions("img_001_mask.png")
        assert [v.source for v in v1] == ["scan", "editor", "demo"]
        assert obj.get(v1[1].sha256).read_bytes() == edited
        assert v1[2].sha256 == sha256_file(root / "img_001_mask.png")
        v2 = project.store.mask_versions("img_002_mask.png")
        assert [v.source for v in v2] == ["scan"] and obj.get(v2[0].sha256).read_bytes() == gone
        history.revert(project, "img_002_mask.png")  # a removed mask can be brought back
        assert (root / "img_002_mask.png").read_bytes() == gone
    finally:
        project.close()


def test_regenerating_the_demo_changes_nothing_when_its_masks_cannot_be_kept(
        tmp_path, monkeypatch):
    from segtriage.engine.project.backup import BackupError, ObjectStore
    from segtriage.engine.project.versions import HistoryError

    root = tmp_path / "demo"
    make_demo(root, count=2, size=32, seed=1)
    Project.open(root).close()  # a project, never scanned: its masks are in no history yet
    before = {p.name: p.read_bytes() for p in root.glob("img_*")}

    def full(self, fh, data):
        raise BackupError("backup destination is full")

    monkeypatch.setattr(ObjectStore, "_write", full)
    with pytest.raises(HistoryError, match="not regenerated.*full"):
        make_demo(root, count=3, size=32, seed=2, overwrite=True)
    assert {p.name: p.read_bytes() for p in root.glob("img_*")} == before
