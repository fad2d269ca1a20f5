"""Mask history: versions, metrics against the previous version, write_mask, revert/undo."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segtriage.engine.project import backup
from segtriage.engine.project import versions as hist
from segtriage.engine.project.backup import BackupError, ObjectStore
from segtriage.engine.project.config import load_config
from segtriage.engine.project.history import history, revert, write_mask
from segtriage.engine.project.versions import HistoryError, mask_diff, save_mask_version
from segtriage.engine.project.imageio import read_mask, sha256_file
from segtriage.engine.project.project import Project

SQUARE = np.zeros((8, 8), np.uint8)
SQUARE[2:6, 2:6] = 1  # 16 foreground pixels


def _save(path: Path, m: np.ndarray) -> None:
    Image.fromarray(m * 255).save(path)


@pytest.fixture
def project(tmp_path):
    """One image with a 0/255 mask (a 4×4 square) and one image without a mask."""
    root = tmp_path / "data"
    root.mkdir()
    for name in ("cells", "bare"):
        Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(root / f"{name}.png")
    _save(root / "cells_mask.png", SQUARE)
    cfg = load_config(root)
    store = Project.open(root).store
    store.upsert_image("cells.png", mask_path="cells_mask.png",
                       mask_sha256=sha256_file(root / "cells_mask.png"))
    store.upsert_image("bare.png", status="no-mask")
    return root, cfg, store


def test_mask_diff_hand_computed():
    b = SQUARE.copy()
    b[2, 2:5] = 0  # 3 pixels removed: 13 left, all inside the square
    assert mask_diff(SQUARE, b) == (3, 2 * 13 / (16 + 13))
    assert mask_diff(np.zeros((4, 4)), np.zeros((4, 4))) == (0, 1.0)
    assert mask_diff(SQUARE, np.zeros((4, 4), np.uint8)) == (None, None)


def test_save_mask_version_dedups_and_measures(project):
    root, cfg, store = project
    v1 = save_mask_version(Project(root, cfg, store), "cells_mask.png", "scan")
    assert v1 is not None
    assert save_mask_version(Project(root, cfg, store), "cells_mask.png", "editor") is None  # same
    b = SQUARE.copy()
    b[2, 2:5] = 0
    _save(root / "cells_mask.png", b)
    v2 = save_mask_version(Project(root, cfg, store), "cells_mask.png", "editor")
    rows = store.mask_versions("cells_mask.png")
    assert [r.id for r in rows] == [v1, v2]
    assert rows[0].pixels_changed is None and rows[0].dice_prev is None
    assert rows[1].pixels_changed == 3
    assert rows[1].dice_prev == pytest.approx(26 / 29)
    assert rows[1].image_id == store.image("cells.png").id
    obj = hist.history_store(Project(root, cfg, store))
    assert obj.get(rows[1].sha256).read_bytes() == (root / "cells_mask.png").read_bytes()


def test_unreadable_mask_is_still_kept(project):
    root, cfg, store = project
    save_mask_version(Project(root, cfg, store), "cells_mask.png", "scan")
    (root / "cells_mask.png").write_bytes(b"\x89PNG truncated by a crashed editor")
    vid = save_mask_version(Project(root, cfg, store), "cells_mask.png", "editor")
    row = store.mask_versions("cells_mask.png")[-1]
    assert row.id == vid and row.pixels_changed is None and row.dice_prev is None
    revert(Project(root, cfg, store), "cells.png")
    assert np.array_equal(read_mask(root / "cells_mask.png", cfg.project.codes), SQUARE)


def test_write_mask_versions_old_and_new(project):
    root, cfg, store = project
    old_bytes = (root / "cells_mask.png").read_bytes()
    new = SQUARE.copy()
    new[0, 0] = 1
    rel = write_mask(Project(root, cfg, store), store.image("cells.png"), new, "prediction")
    assert rel == "cells_mask.png"
    # the file keeps its 0/255 convention and holds the new mask
    assert np.array(Image.open(root / rel)).max() == 255
    assert np.array_equal(read_mask(root / rel, cfg.project.codes), new)
    h = history(Project(root, cfg, store), "cells.png")
    assert [(v.version, v.source, v.pixels_changed) for v in h] == [
        (1, "scan", None), (2, "prediction", 1)]
    assert h[1].dice_prev == pytest.approx(2 * 16 / (16 + 17))
    assert [v.current for v in h] == [False, True]
    obj = hist.history_store(Project(root, cfg, store))
    assert obj.get(h[0].sha).read_bytes() == old_bytes
    row = store.image("cells.png")
    assert row.status == "edited" and row.mask_sha256 == sha256_file(root / rel)
    assert row.mask_size == (root / rel).stat().st_size
    ev = store.last_event("mask").data
    assert (ev["mask"], ev["source"]) == ("cells_mask.png", "prediction")


def test_write_mask_for_an_image_without_one(project):
    root, cfg, store = project
    rel = write_mask(Project(root, cfg, store), store.image("bare.png"), SQUARE, "segment",
                     status=None)
    assert rel == "bare_mask.png"
    assert np.array_equal(read_mask(root / rel, cfg.project.codes), SQUARE)
    row = store.image("bare.png")
    # status=None: the scan's rules, as for a mask appearing for a known image ('no-mask'
    # with a mask on disk is a state no scan leaves)
    assert row.mask_path == rel and row.status == "unreviewed" and row.error is None
    assert [v.source for v in history(Project(root, cfg, store), "bare_mask.png")] == ["segment"]


def test_write_mask_refuses_when_the_old_mask_cannot_be_kept(project, monkeypatch):
    """A full history store: the new mask is not written, the old one stays on disk."""
    root, cfg, store = project
    before = (root / "cells_mask.png").read_bytes()

    def full(self, fh, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ObjectStore, "_write", full)
    with pytest.raises(BackupError, match="full"):
        write_mask(Project(root, cfg, store), store.image("cells.png"), np.zeros((8, 8), np.uint8),
                   "editor")
    assert (root / "cells_mask.png").read_bytes() == before
    assert store.mask_versions("cells_mask.png") == []
    assert store.image("cells.png").status == "unreviewed"


def test_revert_and_undo_round_trip(project):
    root, cfg, store = project
    a = (root / "cells_mask.png").read_bytes()
    b_mask = SQUARE.copy()
    b_mask[5, :] = 1
    write_mask(Project(root, cfg, store), store.image("cells.png"), b_mask, "editor")
    b = (root / "cells_mask.png").read_bytes()
    # undo the edit: back to A, byte for byte
    r = revert(Project(root, cfg, store), "cells.png")
    assert (r["version"], r["new_version"], r["changed"]) == (1, 3, True)
    assert (root / "cells_mask.png").read_bytes() == a
    # undo the undo: back to B
    r = revert(Project(root, cfg, store), "cells_mask.png")
    assert (r["version"], r["new_version"]) == (2, 4)
    assert (root / "cells_mask.png").read_bytes() == b
    # an explicit version
    r = revert(Project(root, cfg, store), "cells.png", 1)
    assert (root / "cells_mask.png").read_bytes() == a
    h = history(Project(root, cfg, store), "cells.png")
    assert [v.source for v in h] == ["scan", "editor", "revert", "revert", "revert"]
    assert [v.pixels_changed for v in h] == [None, 4, 4, 4, 4]  # row 5 gains 4 pixels
    assert h[-1].current and not any(v.current for v in h[:-1])
    # reverting to what is already there changes nothing
    r = revert(Project(root, cfg, store), "cells.png", 5)
    assert r["changed"] is False and len(store.mask_versions("cells_mask.png")) == 5
    row = store.image("cells.png")
    assert row.status == "edited" and row.mask_sha256 == sha256_file(
        root / "cells_mask.png")


def test_revert_keeps_an_unseen_edit(project):
    """An edit made outside segtriage, never versioned, is versioned before a revert replaces
    it, so it can be brought back; it is a person's edit ('editor'), as a scan labels it."""
    root, cfg, store = project
    save_mask_version(Project(root, cfg, store), "cells_mask.png", "scan")
    _save(root / "cells_mask.png", np.ones((8, 8), np.uint8))
    unseen = (root / "cells_mask.png").read_bytes()
    revert(Project(root, cfg, store), "cells.png")
    h = history(Project(root, cfg, store), "cells.png")
    assert [v.source for v in h] == ["scan", "editor", "revert"]
    assert h[1].pixels_changed == 48
    revert(Project(root, cfg, store), "cells.png")
    assert (root / "cells_mask.png").read_bytes() == unseen


def test_revert_errors(project):
    root, cfg, store = project
    with pytest.raises(HistoryError, match="nothing to undo"):
        revert(Project(root, cfg, store), "cells.png")  # only the version just recorded
    with pytest.raises(HistoryError, match="no version 7"):
        revert(Project(root, cfg, store), "cells.png", 7)
    with pytest.raises(HistoryError, match="no history"):
        revert(Project(root, cfg, store), "nothing_mask.png")


def test_revert_refuses_a_corrupt_version(project):
    root, cfg, store = project
    write_mask(Project(root, cfg, store), store.image("cells.png"), np.zeros((8, 8), np.uint8),
               "editor")
    current = (root / "cells_mask.png").read_bytes()
    obj = hist.history_store(Project(root, cfg, store))
    p = obj.get(history(Project(root, cfg, store), "cells.png")[0].sha)
    p.chmod(0o644)
    p.write_bytes(p.read_bytes()[:-4] + b"XXXX")
    with pytest.raises(BackupError, match="corrupt"):
        revert(Project(root, cfg, store), "cells.png", 1)
    assert (root / "cells_mask.png").read_bytes() == current
    assert [f for f in os.listdir(root) if f.endswith(".tmp")] == []
    rep = backup.verify(root, cfg)  # opens the project's store itself for the history refs
    assert not rep.ok and rep.corrupt[0]["refs"][0].startswith("history:cells_mask.png#")


def test_deleted_mask_can_be_brought_back(project):
    root, cfg, store = project
    a = (root / "cells_mask.png").read_bytes()
    save_mask_version(Project(root, cfg, store), "cells_mask.png", "scan")
    (root / "cells_mask.png").unlink()
    r = revert(Project(root, cfg, store), "cells.png")
    assert r["version"] == 1 and (root / "cells_mask.png").read_bytes() == a


@pytest.mark.parametrize("name", ["with space", "it's \"quoted\"", "$(touch pwned)",
                                  "ünïcødé 粒子", "-leading"])
def test_weird_names_through_history(project, name):
    root, cfg, store = project
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / f"{name}.png")
    _save(root / f"{name}_mask.png", SQUARE)
    store.upsert_image(f"{name}.png", mask_path=f"{name}_mask.png")
    a = (root / f"{name}_mask.png").read_bytes()
    write_mask(Project(root, cfg, store), store.image(f"{name}.png"), 1 - SQUARE, "editor")
    h = history(Project(root, cfg, store), f"{name}.png")
    assert [(v.source, v.pixels_changed) for v in h] == [("scan", None), ("editor", 64)]
    assert h == history(Project(root, cfg, store), str(root / f"{name}_mask.png"))  # absolute path
    revert(Project(root, cfg, store), f"{name}_mask.png")
    assert (root / f"{name}_mask.png").read_bytes() == a
    assert not (root / "pwned").exists() and not (Path.cwd() / "pwned").exists()


def test_a_new_destination_takes_the_history_along(project, tmp_path):
    # "point [backup] destination at another disk": earlier versions must stay reachable
    import shutil

    root, cfg, store = project
    a = (root / "cells_mask.png").read_bytes()
    b_mask = SQUARE.copy()
    b_mask[5, :] = 1
    write_mask(Project(root, cfg, store), store.image("cells.png"), b_mask, "editor")
    old = backup.default_destination(root, cfg)
    new = tmp_path / "otherdisk" / "backups"
    (root / "segtriage.toml").write_text(f'[backup]\ndestination = "{new}"\n')
    cfg = load_config(root)
    r = revert(Project(root, cfg, store), "cells.png")       # undo, from the new destination
    assert r["changed"] and (root / "cells_mask.png").read_bytes() == a
    assert backup.verify(root, cfg, store=store).ok
    shutil.rmtree(old)                              # the old folder can go now
    revert(Project(root, cfg, store), "cells.png", 2)
    assert backup.verify(root, cfg, store=store).ok
    assert len(history(Project(root, cfg, store), "cells.png")) == 4


def test_the_history_follows_once_the_old_disk_is_back_in_the_same_process(project,
                                                                          tmp_path):
    root, cfg, store = project
    b_mask = SQUARE.copy()
    b_mask[5, :] = 1
    write_mask(Project(root, cfg, store), store.image("cells.png"), b_mask, "editor")
    old = backup.default_destination(root, cfg)
    away = tmp_path / "unplugged"
    old.rename(away)                                  # the old disk is away
    new = tmp_path / "otherdisk" / "backups"
    (root / "segtriage.toml").write_text(f'[backup]\ndestination = "{new}"\n')
    cfg = load_config(root)
    c_mask = SQUARE.copy()
    c_mask[6, :] = 1
    write_mask(Project(root, cfg, store), store.image("cells.png"), c_mask, "editor")
    assert not backup.verify(root, cfg, store=store).ok   # earlier versions still away
    away.rename(old)                                  # plugged back in: the next write follows
    write_mask(Project(root, cfg, store), store.image("cells.png"), SQUARE.copy(), "editor")
    assert backup.verify(root, cfg, store=store).ok


def test_the_history_follows_two_changes_made_while_the_first_disk_was_away(project,
                                                                            tmp_path):
    from segtriage.engine.project import index

    root, cfg, store = project
    edits = iter(range(3, 9))

    def edit(cfg):  # saved by an editor outside segtriage, seen by a scan
        m = SQUARE.copy()
        m[next(edits), :] = 1
        Image.fromarray(m * 255).save(root / "cells_mask.png")
        index.scan(Project(root, cfg, store))

    edit(cfg)
    old = backup.default_destination(root, cfg)
    away = tmp_path / "unplugged"
    old.rename(away)
    for disk in ("b", "c"):                 # two moves while the first disk is away
        (root / "segtriage.toml").write_text(
            f'[backup]\ndestination = "{tmp_path / disk / "backups"}"\n')
        cfg = load_config(root)
        edit(cfg)
    away.rename(old)
    edit(cfg)
    assert backup.verify(root, cfg, store=store).ok    # versions from a, b and c all in c


# -- what a revert writes is validated like any mask a scan finds ---------------------------

def _odd_values(path: Path) -> None:
    """A mask with a value that maps to no class: {0, 7, 255}."""
    m = SQUARE * 255
    m[0, 0] = 7
    Image.fromarray(m).save(path)


def test_revert_and_undo_leave_the_row_as_a_scan_would(project):
    """Reverting to a good version clears the old error; reverting to an unusable version is
    an error with its reason (it used to be 'edited', and a scan then skipped the file as
    unchanged); the next scan agrees with the row either way."""
    from segtriage.engine.project import index

    root, cfg, store = project
    index.scan(Project(root, cfg, store))
    assert store.image("cells.png").status == "unreviewed"
    _odd_values(root / "cells_mask.png")                      # an edit saved outside
    index.scan(Project(root, cfg, store))
    row = store.image("cells.png")
    assert row.status == "error" and "{0, 7, 255}" in row.error

    r = revert(Project(root, cfg, store), "cells.png")                 # undo: the good version
    assert r["changed"] and r["version"] == 1
    row = store.image("cells.png")
    assert (row.status, row.error) == ("edited", None)
    assert index.scan(Project(root, cfg, store)).errors == []

    revert(Project(root, cfg, store), "cells.png")                     # undo the undo: the bad one
    row = store.image("cells.png")
    assert row.status == "error" and "cells_mask.png: mask has values {0, 7, 255}" in \
        row.error
    assert index.scan(Project(root, cfg, store)).errors == [("cells.png", row.error)]
    assert store.image("cells.png").status == "error"

    revert(Project(root, cfg, store), "cells.png", 1)                  # an explicit good version
    row = store.image("cells.png")
    assert (row.status, row.error) == ("edited", None)
    # what the rows say is what a full re-read finds
    rows = {r.path: (r.status, r.error) for r in store.images()}
    index.scan(Project(root, cfg, store), rehash=True)
    assert {r.path: (r.status, r.error) for r in store.images()} == rows


def test_revert_to_a_mask_of_another_size_is_an_error(project):
    from segtriage.engine.project import index

    root, cfg, store = project
    index.scan(Project(root, cfg, store))
    Image.fromarray(np.zeros((4, 6), np.uint8)).save(root / "cells_mask.png")  # 6×4
    index.scan(Project(root, cfg, store))
    assert store.image("cells.png").status == "error"
    revert(Project(root, cfg, store), "cells.png")
    assert store.image("cells.png").error is None
    revert(Project(root, cfg, store), "cells.png")
    row = store.image("cells.png")
    assert row.status == "error" and "mask is 6×4 but its image is 8×8" in row.error
    assert [p for p, _m in index.scan(Project(root, cfg, store)).errors] == ["cells.png"]


def test_write_mask_over_an_error_row_clears_the_error(project):
    """Accepting a prediction (P) or drawing a first mask over an unusable one: the row is
    'edited' with no stale error; and an unusable write is an error, whatever status asked."""
    from segtriage.engine.project import index

    root, cfg, store = project
    _odd_values(root / "cells_mask.png")
    index.scan(Project(root, cfg, store))
    assert store.image("cells.png").status == "error"
    write_mask(Project(root, cfg, store), store.image("cells.png"), SQUARE, "prediction")
    row = store.image("cells.png")
    assert (row.status, row.error) == ("edited", None)
    # the image changed size since its row was read: the mask written is unusable
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "cells.png")
    write_mask(Project(root, cfg, store), store.image("cells.png"), 1 - SQUARE, "editor")
    row = store.image("cells.png")
    assert row.status == "error" and "but its image is 10×10" in row.error
