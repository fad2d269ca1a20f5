"""Snapshots, verify, restore and prune on real files, a real SQLite store and real faults."""

from __future__ import annotations

import errno
import hashlib
from dataclasses import asdict
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segtriage.engine.project import backup
from segtriage.engine.project.backup import BackupError, ObjectStore
from segtriage.engine.project.config import load_config
from segtriage.engine.project.history import history
from segtriage.engine.project.versions import save_mask_version
from segtriage.engine.project.imageio import sha256_file
from segtriage.engine.project.layout import discover
from segtriage.engine.store import Store
from segtriage.engine.project.project import Project

# names a shell would mangle: spaces, quotes, command substitution, unicode, a leading dash
WEIRD = ["plain", "with space", "it's \"quoted\"", "$(touch pwned)", "ünïcødé 粒子", "-leading"]


def _write_pair(root: Path, name: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (12, 16), dtype=np.uint8)).save(root / f"{name}.png")
    m = np.zeros((12, 16), np.uint8)
    m[2:2 + seed % 5 + 2, 3:9] = 255
    Image.fromarray(m).save(root / f"{name}_mask.png")


def _index(root: Path, cfg, store: Store) -> None:
    """What the scan does for these tests: one row per discovered pair."""
    for p in discover(root, cfg).pairs:
        store.upsert_image(p.image, mask_path=p.mask,
                           mask_sha256=sha256_file(root / p.mask) if p.mask else None)


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    for i, name in enumerate(WEIRD[:3]):
        _write_pair(root, name, i)
    (root / "segtriage.toml").write_text("[model]\nepochs = 3\n", encoding="utf-8")
    cfg = load_config(root)
    store = Project.open(root).store
    _index(root, cfg, store)
    return root, cfg, store


def _data_bytes(root: Path) -> dict[str, bytes]:
    """Every file of the data folder outside the state folder."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".segtriage" not in p.relative_to(root).parts}


def _meta_bytes(store: Store) -> bytes:
    return json.dumps({"current": store.current_model_id(),
                       "models": [asdict(m) for m in store.models()]},
                      sort_keys=True, default=str).encode("utf-8")


def _flip(path: Path, n: int = 1) -> None:
    """Change n mask pixels (a real edit)."""
    a = np.array(Image.open(path))
    a.flat[:n] = 255 - a.flat[:n]
    Image.fromarray(a).save(path)


# -- snapshot --------------------------------------------------------------------------------

def test_first_snapshot_stores_every_file_once(project):
    root, cfg, store = project
    before = _data_bytes(root)
    snap = backup.snapshot(Project(root, cfg, store), note="first")
    # 3 images + 3 masks + segtriage.toml; bytes added = their sizes + the model metadata
    assert snap["files"] == 7
    assert snap["masks"] == 3 and snap["masks_changed"] == 3
    assert snap["bytes_added"] == sum(map(len, before.values())) + len(_meta_bytes(store))
    dest = root / ".segtriage" / "backups"
    assert snap["destination"] == str(dest)
    manifest = json.loads((dest / "snapshots" / f"{snap['id']}.json").read_text())
    assert set(manifest["files"]) == set(before)
    for rel, e in manifest["files"].items():
        obj = dest / "objects" / e["sha"][:2] / e["sha"][2:]
        assert obj.read_bytes() == before[rel] and e["size"] == len(before[rel])
    row = store.last_backup()
    assert (row.snapshot, row.files, row.bytes_added, row.note) == (
        snap["id"], 7, snap["bytes_added"], "first")


def test_unchanged_folder_second_snapshot_adds_zero_bytes(project):
    root, cfg, store = project
    s1 = backup.snapshot(Project(root, cfg, store))
    s2 = backup.snapshot(Project(root, cfg, store))
    assert (s2["bytes_added"], s2["masks_changed"], s2["files"]) == (0, 0, 7)
    mask = root / "plain_mask.png"
    _flip(mask, 3)
    s3 = backup.snapshot(Project(root, cfg, store))
    assert s3["masks_changed"] == 1
    assert s3["bytes_added"] == mask.stat().st_size
    listed = backup.list_snapshots(root, cfg, store=store)
    assert [s["id"] for s in listed] == [s1["id"], s2["id"], s3["id"]]
    assert [s["bytes_added"] for s in listed] == [s1["bytes_added"], 0, mask.stat().st_size]
    assert [s["masks_changed"] for s in listed] == [3, 0, 1]
    assert all(s["recorded"] for s in listed)


def test_snapshot_progress_and_model_files(project):
    root, cfg, store = project
    weights = root / ".segtriage" / "models" / "model_1.pth"
    weights.write_bytes(b"\x00weights\x01" * 100)
    (weights.parent / ".model_2.pth.tmp").write_bytes(b"half written")  # skipped
    mid = store.add_model(kind="plain", arch="resnet34", weights=["model_1.pth"], config={},
                          epochs=1, train_loss=0.5, valid_loss=0.6, valid_dice=0.7,
                          n_train=2, n_valid=1, manifest=[])
    calls = []
    snap = backup.snapshot(Project(root, cfg, store), progress=lambda f, m: calls.append((f, m)))
    assert calls[0][0] == 0.0 and calls[-1][0] == 1.0
    assert all(0.0 <= f <= 1.0 for f, _ in calls)
    assert snap["model_files"] == 1
    dest = backup.default_destination(root, cfg)
    m = json.loads((dest / "snapshots" / f"{snap['id']}.json").read_text())
    assert list(m["models"]["files"]) == ["model_1.pth"]
    meta = json.loads(ObjectStore(dest).get(m["models"]["meta"]).read_bytes())
    assert meta["current"] == mid and meta["models"][0]["weights"] == ["model_1.pth"]
    assert m["models"]["meta"] == hashlib.sha256(_meta_bytes(store)).hexdigest()
    # a restore writes data files only: the weights stay as they are (docs/safety.md)
    weights.write_bytes(b"retrained")
    res = backup.restore(Project(root, cfg, store), snap["id"])
    assert res["restored"] == 0 and weights.read_bytes() == b"retrained"


def test_vanished_file_is_reported_not_fatal(project):
    root, cfg, store = project
    store.upsert_image("gone.png", mask_path="gone_mask.png")  # index row, no files
    snap = backup.snapshot(Project(root, cfg, store))
    assert snap["files"] == 7
    assert sorted(s["path"] for s in snap["skipped"]) == ["gone.png", "gone_mask.png"]


def test_orphan_mask_is_backed_up(project):
    root, cfg, store = project
    _write_pair(root, "lonely", 9)
    (root / "lonely.png").unlink()
    snap = backup.snapshot(Project(root, cfg, store))
    m = json.loads((backup.default_destination(root, cfg) / "snapshots" /
                    f"{snap['id']}.json").read_text())
    assert "lonely_mask.png" in m["files"] and "lonely_mask.png" in m["masks"]


def test_destination_from_config(tmp_path):
    root = tmp_path / "d"
    root.mkdir()
    (root / "segtriage.toml").write_text('[backup]\ndestination = "../elsewhere"\n')
    assert backup.default_destination(root, load_config(root)) == root / "../elsewhere"
    (root / "segtriage.toml").write_text(f'[backup]\ndestination = "{tmp_path / "abs"}"\n')
    assert backup.default_destination(root, load_config(root)) == tmp_path / "abs"


# -- faults: a full, read-only or impossible destination ---------------------------------

def _assert_nothing_counted(store: Store, dest: Path, n_rows: int = 0, n_manifests: int = 0):
    assert len(store.backups()) == n_rows
    manifests = list((dest / "snapshots").glob("*.json")) if (dest / "snapshots").exists() \
        else []
    assert len(manifests) == n_manifests
    assert len(backup.list_snapshots(dest.parent, None, dest=dest)) == n_manifests
    leftovers = list((dest / "tmp").iterdir()) if (dest / "tmp").exists() else []
    assert leftovers == [], "temp files left behind"


@pytest.mark.parametrize("fail_after", ["first object", "manifest"])
def test_full_destination(project, monkeypatch, fail_after):
    """ENOSPC after N bytes: simulated at the one write seam of the object store (no tiny
    tmpfs can be mounted here). Once during the first object, once while writing the
    manifest, after every object was stored: neither may leave a snapshot that counts."""
    root, cfg, store = project
    data_total = sum(map(len, _data_bytes(root).values())) + len(_meta_bytes(store))
    budget = {"left": 100 if fail_after == "first object" else data_total + 10}
    real_write = ObjectStore._write

    def write(self, fh, data):
        if len(data) > budget["left"]:
            real_write(self, fh, data[: budget["left"]])
            budget["left"] = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        budget["left"] -= len(data)
        real_write(self, fh, data)

    monkeypatch.setattr(ObjectStore, "_write", write)
    dest = backup.default_destination(root, cfg)
    with pytest.raises(BackupError) as ei:
        backup.snapshot(Project(root, cfg, store))
    msg = str(ei.value)
    assert str(dest) in msg and "full" in msg and "no space left" in msg
    _assert_nothing_counted(store, dest)
    # every object that did get stored is complete and correct
    obj = ObjectStore(dest)
    stored = list(obj.iter_objects())
    assert all(obj.verify_object(s) for s in stored)
    assert len(stored) == (0 if fail_after == "first object" else 8)
    # with space again, the next snapshot works and is the only one
    monkeypatch.setattr(ObjectStore, "_write", real_write)
    backup.snapshot(Project(root, cfg, store))
    _assert_nothing_counted(store, dest, 1, 1)
    assert backup.verify(root, cfg).ok


def test_read_only_destination(project, monkeypatch):
    """A read-only destination. As an ordinary user chmod 0500 makes it one; tests here may
    run as root, for whom chmod does not stop writes, so then the temp-file open (the first
    write into an existing store) fails with EROFS as a read-only mount would make it."""
    root, cfg, store = project
    dest = root.parent / "ro-backups"
    backup.snapshot(Project(root, cfg, store), dest=dest)  # an existing store with one snapshot
    _flip(root / "plain_mask.png")  # so the next snapshot has something new to write
    if os.geteuid() != 0:
        for d in [dest, *[p for p in dest.rglob("*") if p.is_dir()]]:
            d.chmod(0o500)
    else:
        def ro(self, directory):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(directory))
        monkeypatch.setattr(ObjectStore, "_open_temp", ro)
    try:
        with pytest.raises(BackupError) as ei:
            backup.snapshot(Project(root, cfg, store), dest=dest)
    finally:
        for d in [dest, *[p for p in dest.rglob("*") if p.is_dir()]]:
            d.chmod(0o700)
    assert str(dest) in str(ei.value) and "not writable" in str(ei.value)
    _assert_nothing_counted(store, dest, 1, 1)


def test_destination_under_a_file(project):
    """A destination path that runs through a regular file (ENOTDIR): refused by the kernel
    for root too, so this is a real, unpatched failure."""
    root, cfg, store = project
    blocker = root.parent / "a-file"
    blocker.write_text("not a folder")
    dest = blocker / "backups"
    with pytest.raises(BackupError) as ei:
        backup.snapshot(Project(root, cfg, store), dest=dest)
    assert str(dest) in str(ei.value) and "not a folder" in str(ei.value)
    assert store.backups() == []
    assert backup.list_snapshots(root, cfg, dest=dest) == []


@pytest.mark.parametrize("below", ["", "sub", "sub/deeper"])
def test_the_file_in_the_way_is_the_one_named(project, below):
    """mkdir names the path it was asked for (a-file/sub/deeper/objects); the message names
    the file that is actually in the way, whatever depth the destination is below it."""
    root, cfg, store = project
    blocker = root.parent / "a-file"
    blocker.write_text("not a folder")
    dest = blocker / below if below else blocker
    with pytest.raises(BackupError) as ei:
        backup.snapshot(Project(root, cfg, store), dest=dest)
    assert f"backup destination {dest} is not a folder (a file is in the way: {blocker}) " \
        in str(ei.value)


def test_a_file_inside_the_destination_is_the_one_named(project):
    root, cfg, store = project
    dest = root.parent / "store"
    dest.mkdir()
    (dest / "objects").write_text("not a folder")
    with pytest.raises(BackupError, match=f"a file is in the way: {re.escape(str(dest))}"
                                          r"/objects\)"):
        backup.snapshot(Project(root, cfg, store), dest=dest)


# -- verify and corrupt objects ----------------------------------------------------------

def _corrupt(obj: ObjectStore, sha: str) -> None:
    p = obj.get(sha)
    p.chmod(0o644)
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))


def test_verify_finds_corrupt_and_missing_objects(project):
    root, cfg, store = project
    snap = backup.snapshot(Project(root, cfg, store))
    rep = backup.verify(root, cfg, store=store)
    assert rep.ok and rep.snapshots == 1 and rep.objects == 8  # 7 files + model metadata
    obj = ObjectStore(backup.default_destination(root, cfg))
    mask_sha = sha256_file(root / "plain_mask.png")
    img_sha = sha256_file(root / "with space.png")
    _corrupt(obj, mask_sha)
    obj.get(img_sha).unlink()
    rep = backup.verify(root, cfg, store=store)
    assert not rep.ok
    assert rep.corrupt == [{"sha": mask_sha, "refs": [f"{snap['id']}:plain_mask.png"]}]
    assert rep.missing == [{"sha": img_sha, "refs": [f"{snap['id']}:with space.png"]}]
    text = "\n".join(rep.lines())
    assert "CORRUPT" in text and "MISSING" in text and "FAILED" in text
    assert rep.to_dict()["ok"] is False


def test_restore_refuses_a_corrupt_object(project):
    root, cfg, store = project
    snap = backup.snapshot(Project(root, cfg, store))
    obj = ObjectStore(backup.default_destination(root, cfg))
    original = (root / "plain_mask.png").read_bytes()
    _corrupt(obj, sha256_file(root / "plain_mask.png"))
    _flip(root / "plain_mask.png")
    _flip(root / "with space_mask.png")
    now = _data_bytes(root)
    with pytest.raises(BackupError) as ei:
        backup.restore(Project(root, cfg, store), snap["id"])
    assert "plain_mask.png" in str(ei.value) and "corrupt" in str(ei.value)
    assert _data_bytes(root) == now  # nothing written, not even the good file
    assert (root / "plain_mask.png").read_bytes() != original
    # the copy-out itself also refuses (a corruption between the check and the write)
    sha = json.loads((obj.snapshots_dir / f"{snap['id']}.json").read_text())[
        "files"]["plain_mask.png"]["sha"]
    with pytest.raises(BackupError, match="corrupt"):
        obj.copy_out(sha, root / "plain_mask.png")
    assert _data_bytes(root) == now
    assert [p.name for p in root.iterdir() if p.name.endswith(".tmp")] == []


def test_unreadable_manifest_is_reported(project):
    root, cfg, store = project
    backup.snapshot(Project(root, cfg, store))
    dest = backup.default_destination(root, cfg)
    (dest / "snapshots" / "20000101T000000Z-dead.json").write_text("{ truncated")
    listed = backup.list_snapshots(root, cfg)
    assert [s.get("error") is not None for s in listed] == [False, True]
    assert not backup.verify(root, cfg).ok
    with pytest.raises(BackupError, match="unreadable manifests"):
        backup.prune(Project(root, cfg, store), keep=1)


@pytest.mark.parametrize("damage, says", [
    (lambda m: m.pop("created_ts"), "created_ts is None, not a time"),
    (lambda m: m.update(masks="a_mask.png"), "masks is not a list of paths"),
    (lambda m: m["files"].update({"x.png": {"size": 3}}), "files entry 'x.png'"),
    (lambda m: m["files"].update({"x.png": {"sha": "../../etc", "size": 3}}),
     "files entry 'x.png'"),
    (lambda m: m.update(models={"meta": 7, "files": {}}), "models.meta is 7, not a sha256"),
])
def test_a_manifest_with_a_damaged_field_is_reported_not_read(project, damage, says):
    """Valid JSON with a field verify, prune, restore and snapshot read without checking:
    it is listed as unreadable, naming the field, instead of a KeyError or a path outside
    the object store later."""
    root, cfg, store = project
    snap = backup.snapshot(Project(root, cfg, store))
    dest = backup.default_destination(root, cfg)
    m = json.loads((dest / "snapshots" / f"{snap['id']}.json").read_text())
    damage(m)
    (dest / "snapshots" / "20000101T000000Z-dead.json").write_text(json.dumps(m))
    listed = {s["id"]: s.get("error") for s in backup.list_snapshots(root, cfg)}
    assert listed[snap["id"]] is None
    assert "damaged manifest" in listed["20000101T000000Z-dead"]
    assert says in listed["20000101T000000Z-dead"]
    assert not backup.verify(root, cfg).ok
    with pytest.raises(BackupError, match="unreadable manifests"):
        backup.prune(Project(root, cfg, store), keep=1)


# -- restore ---------------------------------------------------------------------------------

def test_restore_is_byte_identical_and_keeps_what_it_replaces(project):
    root, cfg, store = project
    original = _data_bytes(root)
    snap = backup.snapshot(Project(root, cfg, store))
    _flip(root / "plain_mask.png", 5)
    (root / "with space.png").write_bytes(b"overwritten image")
    (root / "it's \"quoted\"_mask.png").unlink()
    (root / "new.png").write_bytes(b"not in the snapshot")
    changed_mask = (root / "plain_mask.png").read_bytes()
    changed_image = (root / "with space.png").read_bytes()
    res = backup.restore(Project(root, cfg, store), snap["id"][:10])  # a unique prefix is enough
    assert (res["restored"], res["unchanged"], res["files"]) == (3, 4, 7)
    after = _data_bytes(root)
    assert after.pop("new.png") == b"not in the snapshot"  # left alone
    assert after == original
    # the replaced versions are in the store, and the mask in its history
    obj = ObjectStore(backup.default_destination(root, cfg))
    kept = {k["path"]: k["sha"] for k in res["kept"]}
    assert set(kept) == {"plain_mask.png", "with space.png"}
    assert obj.get(kept["plain_mask.png"]).read_bytes() == changed_mask
    assert obj.get(kept["with space.png"]).read_bytes() == changed_image
    h = history(Project(root, cfg, store), "plain.png")
    assert [v.source for v in h] == ["scan", "restore"]
    assert h[0].sha == kept["plain_mask.png"] and h[1].current
    assert h[1].pixels_changed == 5
    # the image row follows the restored mask
    assert store.image("plain.png").mask_sha256 == sha256_file(root / "plain_mask.png")
    # restoring again changes nothing ("latest" is the newest whole snapshot)
    again = backup.restore(Project(root, cfg, store), "latest")
    assert (again["restored"], again["kept"], again["undo"]) == (0, [], None)
    # what the restore replaced has a snapshot of its own: listed, kept by prune, and
    # restoring it undoes the restore (the deleted mask stays: it was not there to keep)
    listed = {s["id"]: s for s in backup.list_snapshots(root, cfg, store=store)}
    assert listed[res["undo"]]["note"] == f"before restoring {snap['id']}"
    assert listed[res["undo"]]["files"] == 2 and listed[res["undo"]]["recorded"]
    assert store.last_backup().snapshot == snap["id"]  # status: not a fresh backup
    pruned = backup.prune(Project(root, cfg, store), keep=1)
    assert pruned["deleted"] == [] and set(pruned["kept"]) == {snap["id"], res["undo"]}
    backup.restore(Project(root, cfg, store), res["undo"])
    assert (root / "plain_mask.png").read_bytes() == changed_mask
    assert (root / "with space.png").read_bytes() == changed_image
    assert backup.verify(root, cfg).ok
    # a newer whole snapshot makes the restore's leftovers old enough to prune
    backup.snapshot(Project(root, cfg, store))
    assert res["undo"] in backup.prune(Project(root, cfg, store), keep=1)["deleted"]


def test_restore_to_another_folder(project, tmp_path):
    root, cfg, store = project
    original = _data_bytes(root)
    snap = backup.snapshot(Project(root, cfg, store))
    _flip(root / "plain_mask.png")
    out = tmp_path / "restored here"
    res = backup.restore(Project(root, cfg, store), snap["id"], to=out)
    assert res["restored"] == 7 and res["kept"] == []
    assert _data_bytes(out) == original
    assert store.mask_versions("plain_mask.png") == []  # another folder: not this history


def test_restore_unknown_snapshot(project):
    root, cfg, store = project
    with pytest.raises(BackupError, match="no snapshots"):
        backup.restore(Project(root, cfg, store), "nope")
    backup.snapshot(Project(root, cfg, store))
    with pytest.raises(BackupError, match="no snapshot 'nope'"):
        backup.restore(Project(root, cfg, store), "nope")


def test_restore_refuses_paths_outside_the_target(project):
    root, cfg, store = project
    snap = backup.snapshot(Project(root, cfg, store))
    mf = backup.default_destination(root, cfg) / "snapshots" / f"{snap['id']}.json"
    m = json.loads(mf.read_text())
    m["files"]["../escaped.png"] = m["files"]["plain.png"]
    mf.write_text(json.dumps(m))
    with pytest.raises(BackupError, match="unsafe path"):
        backup.restore(Project(root, cfg, store), snap["id"])
    assert not (root.parent / "escaped.png").exists()


def test_weird_names_backup_and_restore(tmp_path):
    root = tmp_path / "weird"
    root.mkdir()
    for i, name in enumerate(WEIRD):
        _write_pair(root, name, i)
    cfg = load_config(root)
    store = Project.open(root).store
    _index(root, cfg, store)
    original = _data_bytes(root)
    assert len(original) == 2 * len(WEIRD)
    snap = backup.snapshot(Project(root, cfg, store))
    assert snap["files"] == 2 * len(WEIRD) and snap["skipped"] == []
    for name in WEIRD:
        _flip(root / f"{name}_mask.png")
        (root / f"{name}.png").unlink()
    res = backup.restore(Project(root, cfg, store), snap["id"])
    assert res["restored"] == 2 * len(WEIRD)
    assert _data_bytes(root) == original
    assert not (root / "pwned").exists() and not (Path.cwd() / "pwned").exists()
    for name in WEIRD:
        assert [v.source for v in history(Project(root, cfg, store), f"{name}.png")] == \
            ["scan", "restore"]
    assert backup.verify(root, cfg, store=store).ok


# -- prune -----------------------------------------------------------------------------------

def test_prune_keeps_newest_and_history_objects(project):
    root, cfg, store = project
    mask = root / "plain_mask.png"
    image = root / "with space.png"
    s1 = backup.snapshot(Project(root, cfg, store))
    v1 = mask.read_bytes()
    save_mask_version(Project(root, cfg, store), "plain_mask.png", "scan")
    _flip(mask, 2)
    v2 = mask.read_bytes()
    save_mask_version(Project(root, cfg, store), "plain_mask.png", "editor")
    old_image = image.read_bytes()
    image.write_bytes(b"a new image content")  # the old image is only in s1
    s2 = backup.snapshot(Project(root, cfg, store))
    _flip(mask, 4)
    s3 = backup.snapshot(Project(root, cfg, store))
    res = backup.prune(Project(root, cfg, store), keep=1)
    assert res["deleted"] == [s1["id"], s2["id"]] and res["kept"] == [s3["id"]]
    # gone: only the old image (v1 and v2 of the mask are history, the rest is in s3)
    assert res["objects_deleted"] == 1 and res["bytes_freed"] == len(old_image)
    obj = ObjectStore(backup.default_destination(root, cfg))
    assert {obj.get(v.sha).read_bytes() for v in history(Project(root, cfg, store), "plain.png")} \
        == {v1, v2}
    assert [r.snapshot for r in store.backups()] == [s3["id"]]
    assert [s["id"] for s in backup.list_snapshots(root, cfg)] == [s3["id"]]
    assert backup.verify(root, cfg, store=store).ok
    with pytest.raises(BackupError, match="at least 1"):
        backup.prune(Project(root, cfg, store), keep=0)


def test_prune_collects_leftovers_of_a_failed_snapshot(project, monkeypatch):
    root, cfg, store = project
    backup.snapshot(Project(root, cfg, store))
    (root / "extra.png").write_bytes(b"stored by a snapshot that then failed")
    monkeypatch.setattr(ObjectStore, "write_manifest",
                        lambda self, i, m: (_ for _ in ()).throw(BackupError("disk gone")))
    with pytest.raises(BackupError):
        backup.snapshot(Project(root, cfg, store))
    monkeypatch.undo()
    dest = backup.default_destination(root, cfg)
    (dest / "tmp" / ".tmp-crashed").write_bytes(b"left by a killed process")
    (dest / "snapshots" / ".tmp-123-abc").write_bytes(b'{"half a manifest')
    res = backup.prune(Project(root, cfg, store), keep=5)
    assert res["deleted"] == [] and res["objects_deleted"] == 1
    assert res["bytes_freed"] == len(b"stored by a snapshot that then failed")
    assert list((dest / "tmp").iterdir()) == []
    assert [p.name for p in (dest / "snapshots").iterdir() if p.name.startswith(".")] == []


def test_verify_of_another_destination_ignores_the_history(project, tmp_path):
    """History objects live in the configured destination only; a snapshot store elsewhere
    must not report them missing."""
    root, cfg, store = project
    save_mask_version(Project(root, cfg, store), "plain_mask.png", "scan")
    _flip(root / "plain_mask.png")
    save_mask_version(Project(root, cfg, store), "plain_mask.png", "editor")
    other = tmp_path / "usb disk"
    backup.snapshot(Project(root, cfg, store), dest=other)
    assert backup.verify(root, cfg, dest=other, store=store).ok
    assert backup.verify(root, cfg).ok
    # the first mask version is in the history only: deleting it is found
    ObjectStore(backup.default_destination(root, cfg)).get(
        history(Project(root, cfg, store), "plain.png")[0].sha).unlink()
    rep = backup.verify(root, cfg)
    assert [m["refs"] for m in rep.missing] == [
        [f"history:plain_mask.png#{store.mask_versions('plain_mask.png')[0].id}"]]


def test_verify_closes_the_history_store_it_opened_and_not_one_it_was_given(project,
                                                                          monkeypatch):
    import importlib

    verify_mod = importlib.import_module("segtriage.engine.project.backup.verify")
    root, cfg, store = project
    backup.snapshot(Project(root, cfg, store))
    opened: list[Store] = []

    class Recording(Store):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.closed = False
            opened.append(self)

        def close(self):
            self.closed = True
            super().close()

    monkeypatch.setattr(verify_mod, "Store", Recording)
    assert backup.verify(root, cfg).ok
    assert [s.closed for s in opened] == [True]
    assert backup.verify(root, cfg, store=store).ok and len(opened) == 1
    assert store.last_backup() is not None          # the caller's store is still open


# -- repository-wide safety rule -----------------------------------------------------------

def test_no_shell_anywhere():
    """No subprocess call with shell=True, and no os.system / os.popen, in any source: a file
    name like `$(touch pwned)` must never reach a shell."""
    import ast

    repo = Path(__file__).resolve().parents[2]
    bad = []
    for folder in ("engine", "tui", "themes", "bench", "tests"):
        for f in (repo / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                fn = node.func
                if isinstance(fn, ast.Attribute) and fn.attr in ("system", "popen") and \
                        isinstance(fn.value, ast.Name) and fn.value.id == "os":
                    bad.append(f"{f.relative_to(repo)}:{node.lineno} os.{fn.attr}")
                for kw in node.keywords:
                    if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant)
                                                  and kw.value.value is False):
                        bad.append(f"{f.relative_to(repo)}:{node.lineno} shell=")
    assert bad == []


def test_one_destination_serves_one_project(tmp_path):
    # two folders pointed at one disk: prune of one used to delete the other's snapshots and
    # objects, and `restore latest` could write one project's files into the other
    shared = tmp_path / "usb" / "backups"
    roots = []
    for name in ("a", "b"):
        root = tmp_path / name
        root.mkdir()
        _write_pair(root, f"{name}0", 1 if name == "a" else 2)
        (root / "segtriage.toml").write_text(f'[backup]\ndestination = "{shared}"\n')
        roots.append(root)
    (a, b) = roots
    ca, sa = load_config(a), Project.open(a).store
    _index(a, ca, sa)
    first = backup.snapshot(Project(a, ca, sa))
    cb, sb = load_config(b), Project.open(b).store
    _index(b, cb, sb)
    with pytest.raises(BackupError, match=r"belongs to .*/a; .* of .*/b to a folder of its own "
                                          r"\(e.g. .*/usb/b-backups\).*--take-over"):
        backup.snapshot(Project(b, cb, sb))
    with pytest.raises(BackupError, match="belongs to"):  # mask history writes too
        save_mask_version(Project(b, cb, sb), "b0_mask.png", "scan")
    with pytest.raises(BackupError, match="belongs to"):
        backup.prune(Project(b, cb, sb), keep=1)
    assert [s["id"] for s in backup.list_snapshots(a, ca)] == [first["id"]]
    assert backup.verify(a, ca).ok
    # the same project moved to another folder is still the owner (its id goes with it)
    moved = tmp_path / "a-moved"
    a.rename(moved)
    cm, sm = load_config(moved), Project.open(moved).store
    backup.snapshot(Project(moved, cm, sm))
    # a wiped .segtriage/ at the owner's path is the owner too (restore, then back up again)
    import shutil

    shutil.rmtree(moved / ".segtriage")
    sm2 = Project.open(moved).store
    backup.restore(Project(moved, cm, sm2), "latest")
    _index(moved, cm, sm2)
    backup.snapshot(Project(moved, cm, sm2))
    assert json.loads((shared / "owner.json").read_text())["root"] == str(moved.resolve())


def test_a_destination_shared_before_owner_json_is_refused_until_taken_over(project, tmp_path):
    # destinations written before owner.json existed: manifests of several folders in one.
    # A folder that is gone may be on an unplugged disk or another machine: still refused.
    root, cfg, store = project
    dest = tmp_path / "dest"
    backup.snapshot(Project(root, cfg, store), dest=dest)
    (dest / "owner.json").unlink()
    m = json.loads(next((dest / "snapshots").glob("*.json")).read_text())
    (dest / "snapshots" / "0-gone.json").write_text(
        json.dumps({**m, "root": str(tmp_path / "unplugged" / "project")}))
    with pytest.raises(BackupError, match="belongs to .*/unplugged/project"):
        backup.prune(Project(root, cfg, store), keep=1, dest=dest)
    assert len(list((dest / "snapshots").glob("*.json"))) == 2  # nothing deleted
    # the person says it is this project's (`segtriage backup DIR --take-over`)
    backup.snapshot(Project(root, cfg, store), dest=dest, take_over=True)
    assert json.loads((dest / "owner.json").read_text())["root"] == str(root.resolve())
    backup.prune(Project(root, cfg, store), keep=1, dest=dest)


def test_another_projects_destination_is_refused_even_inside_this_project(project, tmp_path):
    root, cfg, store = project
    inner = root / "nested-backups"
    other = tmp_path / "other"
    other.mkdir()
    _write_pair(other, "o0", 3)
    co, so = load_config(other), Project.open(other).store
    _index(other, co, so)
    backup.snapshot(Project(other, co, so), dest=inner)
    with pytest.raises(BackupError, match=f"belongs to {other}"):
        backup.snapshot(Project(root, cfg, store), dest=inner)


def test_the_default_destination_moves_with_its_project(project, tmp_path):
    # .segtriage/backups written before owner.json, its manifests naming the old folder
    root, cfg, store = project
    backup.snapshot(Project(root, cfg, store))
    (backup.default_destination(root, cfg) / "owner.json").unlink()
    store.close()
    moved = tmp_path / "renamed"
    root.rename(moved)
    cm, sm = load_config(moved), Project.open(moved).store
    assert backup.snapshot(Project(moved, cm, sm))["files"] == 7
    save_mask_version(Project(moved, cm, sm), "plain_mask.png", "editor")


def test_masks_frozen_by_a_killed_training_stay_out_of_snapshots(project):
    from segtriage.engine.ml.frozen import remove_stale_frozen_masks

    root, cfg, store = project
    models = cfg.state_path(root) / "models"
    (models / ".train-masks-k1").mkdir(parents=True)
    (models / ".train-masks-k1" / "0.png").write_bytes(b"copy")
    (models / "m0001.pt").write_bytes(b"weights")
    snap = backup.snapshot(Project(root, cfg, store))
    assert snap["model_files"] == 1
    assert remove_stale_frozen_masks(models) == 1       # what the engine does at start
    assert sorted(p.name for p in models.iterdir()) == ["m0001.pt"]


def test_restore_leaves_each_row_as_a_scan_of_the_restored_file_would(project):
    """The user's report: unusable masks backed up, replaced by good ones (segment
    --overwrite), restored. The restored masks are errors with their reasons again (the
    restore used to write their fingerprints into 'edited' rows, so no scan looked at them),
    and restoring the good ones clears the errors."""
    from segtriage.engine.project import index

    root, cfg, store = project
    index.scan(Project(root, cfg, store))
    good = {n: (root / f"{n}_mask.png").read_bytes() for n in ("plain", "with space")}
    odd = np.zeros((12, 16), np.uint8)
    odd[:3] = 7
    odd[6:] = 255
    Image.fromarray(odd).save(root / "plain_mask.png")                        # {0, 7, 255}
    Image.fromarray(np.zeros((8, 10), np.uint8)).save(root / "with space_mask.png")  # 10×8
    index.scan(Project(root, cfg, store))
    bad = {p: e for p, e in index.scan(Project(root, cfg, store)).errors}
    assert set(bad) == {"plain.png", "with space.png"}
    bad_snap = backup.snapshot(Project(root, cfg, store))
    for n, data in good.items():                     # fixed, as segment --overwrite would
        (root / f"{n}_mask.png").write_bytes(data)
    index.scan(Project(root, cfg, store))
    assert [(store.image(p).status, store.image(p).error) for p in bad] == \
        [("edited", None)] * 2
    good_snap = backup.snapshot(Project(root, cfg, store))

    res = backup.restore(Project(root, cfg, store), bad_snap["id"])
    assert res["restored"] == 2 and res.get("index_error") is None
    for p, err in bad.items():
        row = store.image(p)
        assert (row.status, row.error) == ("error", err)
    assert store.image("it's \"quoted\".png").status == "unreviewed"  # not restored
    assert dict(index.scan(Project(root, cfg, store)).errors) == bad          # scan lists them

    backup.restore(Project(root, cfg, store), good_snap["id"])
    for p in bad:
        row = store.image(p)
        assert (row.status, row.error) == ("edited", None)
    rows = {r.path: (r.status, r.error) for r in store.images()}
    index.scan(Project(root, cfg, store), rehash=True)                        # a full re-read agrees
    assert {r.path: (r.status, r.error) for r in store.images()} == rows


def test_restored_masks_are_checked_against_the_restored_config(project):
    # a snapshot of a three-class project (masks 0/1/2), restored after the project went
    # back to two classes: the masks fit the config that comes back with them
    from segtriage.engine.project import index

    root, cfg, store = project
    three = np.zeros((12, 16), np.uint8)
    three[2:5, 2:5], three[7:10, 8:12] = 1, 2
    (root / "segtriage.toml").write_text('[project]\ncodes = ["bg", "a", "b"]\n')
    for n in ("plain", "with space", "it's \"quoted\""):
        Image.fromarray(three).save(root / f"{n}_mask.png")
    cfg3 = load_config(root)
    index.scan(Project(root, cfg3, store))
    assert index.scan(Project(root, cfg3, store)).errors == []
    snap = backup.snapshot(Project(root, cfg3, store))
    (root / "segtriage.toml").write_text('[project]\ncodes = ["naw", "aye"]\n')
    Image.fromarray((three > 0).astype(np.uint8)).save(root / "plain_mask.png")
    cfg2 = load_config(root)
    index.scan(Project(root, cfg2, store))
    res = backup.restore(Project(root, cfg2, store), snap["id"])  # the config as it was before
    assert res.get("index_error") is None
    assert (store.image("plain.png").status, store.image("plain.png").error) == (
        "edited", None)
    assert index.scan(Project(root, load_config(root), store)).errors == []
