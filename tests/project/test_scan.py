"""Indexing a folder into the state: statuses, incremental re-scan, the bad-input folder,
single-file re-index for the watcher."""

from __future__ import annotations

from dataclasses import asdict

import os
import time
from pathlib import Path

import pytest
from PIL import Image

import badinput
from segtriage.engine.project import index, index_pair
from segtriage.engine.project.config import default_config
from segtriage.engine.store import Store
from segtriage.engine.project.project import Project


def img(path: Path, seed: int = 0, size=(40, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(badinput.grey(*size, seed=seed)).save(path)
    return path


def msk(path: Path, seed: int = 0, size=(40, 48), scale: int = 255) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(badinput.blob(*size, seed=seed) * scale).save(path)
    return path


def bump_mtime(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


@pytest.fixture
def cfg():
    return default_config()


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "data"
    r.mkdir()
    return r


@pytest.fixture
def store(root):
    s = Store(root / ".segtriage" / "state.db")
    yield s
    s.close()


def rows(store) -> dict:
    return {r.path: asdict(r) for r in store.images()}


def unlistable(monkeypatch, suffix: str) -> None:
    """Folders whose path ends with ``suffix`` cannot be listed (permissions)."""
    real = os.scandir

    def flaky(path):
        if os.fspath(path).rstrip("/").endswith(suffix):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(os, "scandir", flaky)


class Counter:
    """Counts the calls of ``name`` by the index (both of its modules)."""

    def __init__(self, monkeypatch, name):
        self.n = 0
        for mod in (index, index_pair):
            if hasattr(mod, name):
                monkeypatch.setattr(mod, name, self._counted(getattr(mod, name)))

    def _counted(self, real):
        def counted(*a, **kw):
            self.n += 1
            return real(*a, **kw)
        return counted


# -- the bad-input folder --------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_bad_input_folder(tmp_path, cfg, monkeypatch):
    root = tmp_path / "bad"
    ex = badinput.build(root)
    monkeypatch.chdir(tmp_path)
    store = Store(root / ".segtriage" / "state.db")
    rep = index.scan(Project(root, cfg, store))
    got = rows(store)
    # every good file is indexed with the right status
    for path, status in ex.good.items():
        assert got[path]["status"] == status, (path, got[path]["error"])
        assert got[path]["error"] is None
        assert (got[path]["width"], got[path]["height"]) == (badinput.W, badinput.H)
    # each bad one is a row in error with a reason that names the file
    for path, phrase in ex.errors.items():
        assert got[path]["status"] == "error"
        assert phrase in got[path]["error"], got[path]["error"]
        stem = path.rsplit(".", 1)[0]
        assert got[path]["error"].startswith(stem), got[path]["error"]
    assert set(got) == set(ex.good) | set(ex.errors)
    # files that are not rows are problems with a kind and a message
    probs = {p: k for p, k, _m in rep.problems}
    assert probs == ex.problems
    assert {r.path for r in store.problems()} == set(ex.problems)
    assert dict(rep.errors).keys() == ex.errors.keys()
    for rel in ex.ignored:
        assert rel not in got and rel not in probs
    assert not (root / "pwned").exists() and not (tmp_path / "pwned").exists()
    assert rep.counts == {"unreviewed": len(ex.good) - 1, "no-mask": 1,
                          "error": len(ex.errors)}
    j = rep.to_json()
    assert j["counts"] == rep.counts and j["new"] == len(got) and j["kind"] == "seed"
    assert {"path": "loop/up", "kind": "symlink-loop",
            "message": "symbolic link to a folder above it (a loop); skipped"} in j["problems"]
    # a second scan changes nothing and hashes nothing
    rep2 = index.scan(Project(root, cfg, store))
    assert (rep2.new, rep2.changed, rep2.removed, rep2.hashed) == (0, 0, 0, 0)
    assert rep2.unchanged == len(got)
    assert rows(store) == got


# -- statuses and incremental re-scan ------------------------------------------------------

def test_statuses_of_a_fresh_folder(root, cfg, store):
    img(root / "a.png"); msk(root / "a_mask.png")
    img(root / "b.png")
    rep = index.scan(Project(root, cfg, store))
    r = rows(store)
    assert r["a.png"]["status"] == "unreviewed" and r["a.png"]["mask_path"] == "a_mask.png"
    assert r["b.png"]["status"] == "no-mask" and r["b.png"]["mask_path"] is None
    assert (r["a.png"]["width"], r["a.png"]["height"]) == (48, 40)
    import hashlib
    assert r["a.png"]["img_sha256"] == hashlib.sha256((root / "a.png").read_bytes()).hexdigest()
    assert rep.counts == {"unreviewed": 1, "no-mask": 1}
    assert (rep.new, rep.changed, rep.unchanged) == (2, 0, 0)


def test_unchanged_files_are_not_rehashed_or_decoded(root, cfg, store, monkeypatch):
    for i in range(5):
        img(root / f"{i}.png", seed=i); msk(root / f"{i}_mask.png", seed=i)
    hashes = Counter(monkeypatch, "sha256_file")
    decodes = Counter(monkeypatch, "image_info")
    masks = Counter(monkeypatch, "read_mask")
    index.scan(Project(root, cfg, store))
    assert (hashes.n, decodes.n, masks.n) == (10, 5, 5)
    hashes.n = decodes.n = masks.n = 0
    rep = index.scan(Project(root, cfg, store))
    assert (hashes.n, decodes.n, masks.n) == (0, 0, 0)
    assert rep.unchanged == 5
    # a touched mask (same bytes) is re-hashed once; its status is kept
    store.set_status([store.image("3.png").id], "accepted")
    bump_mtime(root / "3_mask.png")
    rep = index.scan(Project(root, cfg, store))
    assert (hashes.n, rep.changed, rep.unchanged) == (1, 1, 4)
    assert store.image("3.png").status == "accepted"
    # rehash=True hashes everything again
    hashes.n = 0
    stamp = store.rows_stamp()
    rep = index.scan(Project(root, cfg, store), rehash=True)
    assert hashes.n == 10
    assert store.image("3.png").status == "accepted"
    # ... and finds nothing changed: not reported, not rewritten (clients would reload)
    assert (rep.changed, rep.unchanged) == (0, 5) and store.rows_stamp() == stamp


def test_changed_mask_becomes_edited_and_versions_are_recorded(root, cfg, store):
    img(root / "a.png"); msk(root / "a_mask.png", seed=0)
    index.scan(Project(root, cfg, store))
    store.set_status([store.image("a.png").id], "accepted")
    msk(root / "a_mask.png", seed=3)
    bump_mtime(root / "a_mask.png")
    rep = index.scan(Project(root, cfg, store))
    row = store.image("a.png")
    assert row.status == "edited" and rep.changed == 1
    versions = store.mask_versions("a_mask.png")
    assert [v.source for v in versions] == ["scan", "editor"]  # first sight, then a change on disk
    assert versions[-1].sha256 == row.mask_sha256
    assert versions[0].image_id == row.id


def test_a_rescan_adds_no_second_version_of_the_same_content(root, cfg, store):
    img(root / "a.png"); msk(root / "a_mask.png")
    index.scan(Project(root, cfg, store))
    index.scan(Project(root, cfg, store))  # no second row for the same content
    v = store.mask_versions("a_mask.png")
    assert len(v) == 1 and v[0].sha256 == store.image("a.png").mask_sha256


def test_a_history_that_cannot_be_written_is_caught_up_later(root, cfg, store, monkeypatch):
    # a full or unplugged destination: no version row without its bytes (revert and verify
    # would find it missing), and the next scan stores the content once it can
    from segtriage.engine.project import versions

    def full(*a, **kw):
        raise OSError("backup destination is full")

    monkeypatch.setattr(index, "keep_current", full)
    img(root / "a.png"); msk(root / "a_mask.png")
    rep = index.scan(Project(root, cfg, store))
    assert store.mask_versions("a_mask.png") == []
    assert rep.warnings == ["a_mask.png: mask history not kept yet (backup destination is "
                            "full)"]
    monkeypatch.setattr(index, "keep_current", versions.keep_current)
    rep = index.scan(Project(root, cfg, store))           # nothing changed on disk
    (v,) = store.mask_versions("a_mask.png")
    assert rep.warnings == [] and v.sha256 == store.image("a.png").mask_sha256
    assert versions.history_store(Project(root, cfg, store)).has(v.sha256)


def test_broken_orphan_and_duplicate_masks_are_versioned_too(root, cfg, store):
    img(root / "bad.png"); (root / "bad_mask.png").write_bytes(b"not a png")   # error row
    msk(root / "lonely_mask.png", seed=1)                                      # orphan
    img(root / "d.png"); msk(root / "d_mask.png", seed=2)
    msk(root / "d_mask.bmp", seed=3)                                           # duplicate
    index.scan(Project(root, cfg, store))
    assert store.image("bad.png").status == "error"
    for m in ("bad_mask.png", "lonely_mask.png", "d_mask.png", "d_mask.bmp"):
        assert len(store.mask_versions(m)) == 1, m
    # an edit made outside segtriage to a mask without a row is a new version
    msk(root / "lonely_mask.png", seed=4)
    bump_mtime(root / "lonely_mask.png")
    index.scan(Project(root, cfg, store))
    assert [v.source for v in store.mask_versions("lonely_mask.png")] == ["scan", "editor"]
    index.scan(Project(root, cfg, store))                 # and nothing more while nothing changes
    assert len(store.mask_versions("lonely_mask.png")) == 2


def test_a_metadata_change_costs_a_mask_without_a_row_one_hash(root, cfg, store, monkeypatch):
    # chmod (or cp -a) makes the ctime newer than the last version: hashed once to see the
    # content is the same, then not again at every scan
    msk(root / "lonely_mask.png", seed=1)
    index.scan(Project(root, cfg, store))
    time.sleep(0.05)  # file times tick coarser than time.time()
    os.chmod(root / "lonely_mask.png", 0o600)
    hashes = Counter(monkeypatch, "sha256_file")
    index.scan(Project(root, cfg, store))
    assert hashes.n == 1 and len(store.mask_versions("lonely_mask.png")) == 1
    index.scan(Project(root, cfg, store))
    assert hashes.n == 1
    msk(root / "lonely_mask.png", seed=5)        # a real change is still seen
    index.scan(Project(root, cfg, store))
    assert len(store.mask_versions("lonely_mask.png")) == 2


def test_mask_appearing_and_disappearing(root, cfg, store):
    img(root / "a.png")
    index.scan(Project(root, cfg, store))
    assert store.image("a.png").status == "no-mask"
    msk(root / "a_mask.png")
    index.scan(Project(root, cfg, store))
    assert store.image("a.png").status == "unreviewed"
    (root / "a_mask.png").unlink()
    index.scan(Project(root, cfg, store))
    row = store.image("a.png")
    assert row.status == "no-mask" and row.mask_path is None and row.mask_sha256 is None


def test_changed_image_resets_review(root, cfg, store):
    img(root / "a.png", seed=0); msk(root / "a_mask.png")
    index.scan(Project(root, cfg, store))
    store.set_status([store.image("a.png").id], "accepted")
    img(root / "a.png", seed=5)
    bump_mtime(root / "a.png")
    index.scan(Project(root, cfg, store))
    assert store.image("a.png").status == "unreviewed"


def test_error_fixed_by_editing_the_mask(root, cfg, store):
    img(root / "a.png"); msk(root / "a_mask.png", scale=7)
    index.scan(Project(root, cfg, store))
    row = store.image("a.png")
    assert row.status == "error"
    assert row.error == ("a_mask.png: mask has values {0, 7}; expected 0..1 or 0/255 for "
                            "codes ['naw', 'aye']")
    # unusable here, but a person's file all the same: kept in the history like any other
    assert [v.source for v in store.mask_versions("a_mask.png")] == ["scan"]
    msk(root / "a_mask.png", scale=255)
    bump_mtime(root / "a_mask.png")
    index.scan(Project(root, cfg, store))
    row = store.image("a.png")
    assert row.status == "edited" and row.error is None
    assert [v.source for v in store.mask_versions("a_mask.png")] == ["scan", "editor"]


def test_deleted_image_row_is_gone_and_mask_is_orphan(root, cfg, store):
    img(root / "a.png"); msk(root / "a_mask.png")
    img(root / "b.png")
    index.scan(Project(root, cfg, store))
    (root / "a.png").unlink()
    rep = index.scan(Project(root, cfg, store))
    assert set(rows(store)) == {"b.png"} and rep.removed == 1
    assert rep.problems == [("a_mask.png", "orphan-mask",
                             "mask without an image (no image a.* beside it)")]


def test_codes_change_revalidates_every_mask(root, cfg, store):
    img(root / "a.png"); msk(root / "a_mask.png")
    index.scan(Project(root, cfg, store))
    cfg = cfg.with_values(project={"codes": ["bg", "x", "y"]})
    index.scan(Project(root, cfg, store))
    assert store.image("a.png").error.endswith("expected 0..2 for codes ['bg', 'x', 'y']")


def test_duplicate_name_is_an_error_until_resolved(root, cfg, store):
    img(root / "x.png"); img(root / "x.jpg"); msk(root / "x_mask.png")
    index.scan(Project(root, cfg, store))
    assert store.image("x.png").status == "unreviewed"
    row = store.image("x.jpg")
    assert row.status == "error" and row.error.startswith("duplicate name: same name as")
    (root / "x.png").unlink()
    index.scan(Project(root, cfg, store))
    row = store.image("x.jpg")
    assert row.status == "unreviewed" and row.mask_path == "x_mask.png"


def test_split_layout_scan(root, cfg, store):
    img(root / "images" / "a" / "x.png"); msk(root / "masks" / "a" / "x.bmp")
    img(root / "images" / "y.tif")
    msk(root / "masks" / "z.png")
    rep = index.scan(Project(root, cfg, store))
    assert rep.kind == "split"
    r = rows(store)
    assert r["images/a/x.png"]["mask_path"] == "masks/a/x.bmp"
    assert r["images/a/x.png"]["status"] == "unreviewed"
    assert r["images/y.tif"]["status"] == "no-mask"
    assert [p for p, _k, _m in rep.problems] == ["masks/z.png"]
    assert rep.problems[0][2] == "mask without an image (no image images/z.*)"


def test_a_mask_whose_image_the_config_leaves_out_is_not_called_imageless(root, cfg, store):
    # it said "mask without an image (no image img/a/im04.* beside it)" beside im04.jpg
    cfg = cfg.with_values(layout={"ignore": ["img/a/*.jpg"]})
    img(root / "img" / "a" / "im04.jpg"); msk(root / "img" / "a" / "im04_mask.png")
    img(root / "img" / "a" / "im05.png")
    why = ('mask without an indexed image: its image img/a/im04.jpg is excluded by [layout] '
           'ignore ("img/a/*.jpg")')
    rep = index.scan(Project(root, cfg, store))
    assert rep.problems == [("img/a/im04_mask.png", "orphan-mask", why)]
    store.replace_problems([])
    bump_mtime(root / "img" / "a" / "im04_mask.png")  # the watcher's path
    assert index.index_one(Project(root, cfg, store), "img/a/im04_mask.png") is None
    assert [(r.path, r.kind, r.message) for r in store.problems()] == \
        [("img/a/im04_mask.png", "orphan-mask", why)]


def test_progress_and_missing_root(root, cfg, store, tmp_path):
    for i in range(3):
        img(root / f"{i}.png")
    seen = []
    index.scan(Project(root, cfg, store), progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (3, 3)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        index.scan(Project(tmp_path / "gone", cfg, store))
    assert len(store.images()) == 3


# -- index_one (the watcher) -----------------------------------------------------------------

def test_index_one_follows_single_file_changes(root, cfg, store):
    img(root / "a.png"); msk(root / "a_mask.png")
    index.scan(Project(root, cfg, store))
    # a new image without a mask
    img(root / "sub" / "b.png")
    assert index.index_one(Project(root, cfg, store), "sub/b.png") == "sub/b.png"
    assert store.image("sub/b.png").status == "no-mask"
    # its mask arrives
    msk(root / "sub" / "b_mask.png")
    assert index.index_one(Project(root, cfg, store), "sub/b_mask.png") == "sub/b.png"
    assert store.image("sub/b.png").status == "unreviewed"
    # the mask is edited
    store.set_status([store.image("sub/b.png").id], "accepted")
    msk(root / "sub" / "b_mask.png", seed=4)
    bump_mtime(root / "sub" / "b_mask.png")
    assert index.index_one(Project(root, cfg, store), "sub/b_mask.png") == "sub/b.png"
    assert store.image("sub/b.png").status == "edited"
    # the mask is deleted
    (root / "sub" / "b_mask.png").unlink()
    assert index.index_one(Project(root, cfg, store), "sub/b_mask.png") == "sub/b.png"
    assert store.image("sub/b.png").status == "no-mask"
    # the image with a mask is deleted: row gone, mask reported as orphan
    (root / "a.png").unlink()
    assert index.index_one(Project(root, cfg, store), "a.png") == "a.png"
    assert store.image("a.png") is None
    assert [(r.path, r.kind) for r in store.problems()] == [("a_mask.png", "orphan-mask")]
    # the image comes back: the orphan problem goes away
    img(root / "a.png")
    assert index.index_one(Project(root, cfg, store), "a.png") == "a.png"
    assert store.image("a.png").mask_path == "a_mask.png"
    assert store.problems() == []


def test_index_one_ignores_what_is_not_data(root, cfg, store):
    img(root / "a.png")
    for rel in (".a.png.swp", "4913", "notes.txt", ".segtriage/state.db", "a.png~"):
        (root / rel).parent.mkdir(exist_ok=True)
        (root / rel).write_bytes(b"x") if not (root / rel).exists() else None
        assert index.index_one(Project(root, cfg, store), rel) is None
    msk(root / "orphan_mask.png")
    assert index.index_one(Project(root, cfg, store), "orphan_mask.png") is None
    assert [r.kind for r in store.problems()] == ["orphan-mask"]
    assert index.index_one(Project(root, cfg, store), "never-existed.png") is None


def test_index_one_bad_file_is_an_error_row(root, cfg, store):
    (root / "t.png").write_text("text")
    assert index.index_one(Project(root, cfg, store), "t.png") == "t.png"
    row = store.image("t.png")
    assert row.status == "error" and row.error.startswith("t.png: not an image")


def test_index_one_split(root, cfg, store):
    img(root / "images" / "x.png")
    (root / "masks").mkdir()
    index.scan(Project(root, cfg, store))
    msk(root / "masks" / "x.png")
    assert index.index_one(Project(root, cfg, store), "masks/x.png") == "images/x.png"
    assert store.image("images/x.png").mask_path == "masks/x.png"


def test_unreadable_folder_keeps_its_rows(root, cfg, store, monkeypatch):
    img(root / "a.png"); img(root / "sub" / "b.png"); msk(root / "sub" / "b_mask.png")
    index.scan(Project(root, cfg, store))
    unlistable(monkeypatch, "/sub")
    rep = index.scan(Project(root, cfg, store))
    assert rep.removed == 0 and store.image("sub/b.png").status == "unreviewed"
    assert rep.problems == [("sub", "unreadable", "cannot list folder: Permission denied")]


def test_progress_starts_at_zero(root, cfg, store):
    img(root / "a.png")
    seen = []
    index.scan(Project(root, cfg, store), progress=lambda d, t: seen.append((d, t)))
    assert seen == [(0, 1), (1, 1)]


def _decided_split(root, cfg, store) -> dict:
    for n in ("a", "b", "c"):
        img(root / "images" / f"{n}.png"); msk(root / "masks" / f"{n}.png")
    index.scan(Project(root, cfg, store))
    store.set_status([store.image("images/a.png").id], "accepted")
    store.set_status([store.image("images/b.png").id], "flagged")
    return {p: (r["status"], r["mask_path"], r["mask_sha256"]) for p, r in rows(store).items()}


def test_a_masks_folder_gone_for_a_moment_keeps_every_decision(root, cfg, store):
    before = _decided_split(root, cfg, store)
    (root / "masks").rename(root / "masks.off")          # a disk unmounted, a rename
    rep = index.scan(Project(root, cfg, store))
    assert rep.kind == "split"
    now = {p: (r["status"], r["mask_path"], r["mask_sha256"]) for p, r in rows(store).items()}
    assert now == before
    assert ("masks", "missing-folder") in [(p, k) for p, k, _m in rep.problems]
    # the watcher sees the masks go one by one: the rows stay as they are too
    assert index.index_one(Project(root, cfg, store), "masks/a.png") is None
    assert store.image("images/a.png").status == "accepted"
    (root / "masks.off").rename(root / "masks")
    index.scan(Project(root, cfg, store))
    assert {p: (r["status"], r["mask_path"], r["mask_sha256"])
            for p, r in rows(store).items()} == before
    # one mask deleted for real, with its folder there, is a row without a mask
    (root / "masks" / "c.png").unlink()
    index.scan(Project(root, cfg, store))
    assert store.image("images/c.png").status == "no-mask"


def test_a_broken_masks_link_does_not_turn_a_split_project_into_a_seed_one(root, cfg, store):
    before = _decided_split(root, cfg, store)
    (root / "masks").rename(root / "masks.real")
    (root / "masks").symlink_to(root / "unmounted" / "masks")
    rep = index.scan(Project(root, cfg, store))
    assert cfg.layout.kind == "auto" and rep.kind == "split"
    assert {p: r["status"] for p, r in rows(store).items()} == {p: v[0] for p, v in
                                                               before.items()}
    (root / "masks").unlink()
    (root / "masks.real").rename(root / "masks")
    index.scan(Project(root, cfg, store))
    assert {p: (r["status"], r["mask_path"], r["mask_sha256"])
            for p, r in rows(store).items()} == before


def test_an_unreadable_masks_subfolder_keeps_its_rows_masks(root, cfg, store, monkeypatch):
    img(root / "images" / "s" / "x.png"); msk(root / "masks" / "s" / "x.png")
    img(root / "images" / "y.png"); msk(root / "masks" / "y.png")
    index.scan(Project(root, cfg, store))
    store.set_status([store.image("images/s/x.png").id], "flagged")
    unlistable(monkeypatch, "masks/s")
    index.scan(Project(root, cfg, store))
    row = store.image("images/s/x.png")
    assert (row.status, row.mask_path) == ("flagged", "masks/s/x.png")


def test_a_pair_indexed_by_the_engine_during_a_clients_walk_is_kept(root, cfg, store,
                                                                    monkeypatch):
    img(root / "a.png"); msk(root / "a_mask.png")
    index.scan(Project(root, cfg, store))
    real = index.layout.discover

    def walk_while_the_engine_indexes(root_, cfg_, known=None):
        disc = real(root_, cfg_, known)       # the client's walk (minutes on a big folder)
        img(root / "new.png", seed=3); msk(root / "new_mask.png", seed=3)
        index.index_one(Project(root, cfg, store), "new_mask.png")   # the engine's watcher meanwhile
        return disc

    monkeypatch.setattr(index.layout, "discover", walk_while_the_engine_indexes)
    rep = index.scan(Project(root, cfg, store))
    assert rep.removed == 0 and store.image("new.png").mask_path == "new_mask.png"


def test_the_watcher_versions_an_orphan_mask_edit_at_once(root, cfg, store):
    msk(root / "lonely_mask.png", seed=1)
    index.scan(Project(root, cfg, store))
    msk(root / "lonely_mask.png", seed=4)
    index.index_one(Project(root, cfg, store), "lonely_mask.png")
    assert [v.source for v in store.mask_versions("lonely_mask.png")] == ["scan", "editor"]


def _flag_and_score(root, store, path):
    row = store.image(path)
    store.set_status([row.id], "flagged")
    mid = store.add_model(kind="plain", arch="resnet18", weights=[], config={}, epochs=1,
                          train_loss=1, valid_loss=1, valid_dice=0.5, n_train=1, n_valid=1,
                          manifest=[])
    store.put_score(row.id, mid, fold=None, image_sha256=row.img_sha256,
                    mask_sha256=row.mask_sha256, precision="fp32", prob_path="p.png",
                    category="disagrees", metrics={"dice": 0.2})
    return row.id


def test_a_moved_pair_keeps_its_decision_scores_and_history(root, cfg, store):
    # `mv a* batch1/` while tidying up: a delete and a create to the file system
    img(root / "a.png"); msk(root / "a_mask.png")
    img(root / "b.png", seed=1); msk(root / "b_mask.png", seed=1)
    index.scan(Project(root, cfg, store))
    iid = _flag_and_score(root, store, "a.png")
    (root / "batch1").mkdir()
    for f in ("a.png", "a_mask.png"):
        (root / f).rename(root / "batch1" / f)
    rep = index.scan(Project(root, cfg, store))
    row = store.image("batch1/a.png")
    assert (row.id, row.status, row.mask_path) == (iid, "flagged", "batch1/a_mask.png")
    assert store.image("a.png") is None and rep.removed == 1
    assert store.score(iid).category == "disagrees"
    assert [v.source for v in store.mask_versions("batch1/a_mask.png")] == ["scan"]
    assert store.mask_versions("a_mask.png") == []
    # the watcher's way: one event per path, those that exist first (as the engine orders
    # them), then the paths that are gone
    for f in ("a.png", "a_mask.png"):
        (root / "batch1" / f).rename(root / f"re_{f}")
    for rel in ("re_a.png", "re_a_mask.png", "batch1/a.png", "batch1/a_mask.png"):
        index.index_one(Project(root, cfg, store), rel)
    row = store.image("re_a.png")
    assert (row.id, row.status, row.mask_path) == (iid, "flagged", "re_a_mask.png")
    assert store.image("batch1/a.png") is None
    # a copy is not a move: the original keeps its row, the copy gets a new one
    import shutil

    shutil.copy2(root / "b.png", root / "b_copy.png")
    index.scan(Project(root, cfg, store))
    assert store.image("b_copy.png").id != store.image("b.png").id
    assert store.image("b_copy.png").status == "no-mask"


def test_a_file_that_stops_being_data_loses_its_row(root, cfg, store):
    # spared rows are those created again since the walk, not files a new ignore drops
    img(root / "a.png"); img(root / "rejected" / "r.png")
    index.scan(Project(root, cfg, store))
    (root / "segtriage.toml").write_text('[layout]\nignore = ["rejected"]\n')
    from segtriage.engine.project.config import load_config

    rep = index.scan(Project(root, load_config(root), store))
    assert rep.removed == 1 and sorted(rows(store)) == ["a.png"]


def test_a_move_the_engine_made_during_a_clients_walk_is_not_undone(root, cfg, store,
                                                                    monkeypatch):
    img(root / "a.png"); msk(root / "a_mask.png")
    index.scan(Project(root, cfg, store))
    iid = _flag_and_score(root, store, "a.png")
    real = index.layout.discover

    def walk_while_the_engine_follows_a_move(root_, cfg_, known=None):
        for f in ("a.png", "a_mask.png"):
            (root / f).rename(root / f"b{f[1:]}")
        disc = real(root_, cfg_, known)
        index.index_one(Project(root, cfg, store), "b.png")       # the engine, meanwhile
        return disc

    monkeypatch.setattr(index.layout, "discover", walk_while_the_engine_follows_a_move)
    index.scan(Project(root, cfg, store))
    row = store.image("b.png")
    assert (row.id, row.status) == (iid, "flagged")


def test_a_copy_indexed_before_the_original_goes_is_no_move(root, cfg, store):
    # a move across disks is a copy (mtime kept) and a delete; the engine may index the copy
    # first: then the original's row just goes, and nothing fails
    import shutil

    img(root / "a.png"); msk(root / "a_mask.png")
    index.scan(Project(root, cfg, store))
    (root / "d").mkdir()
    shutil.copy2(root / "a.png", root / "d" / "a.png")
    index.index_one(Project(root, cfg, store), "d/a.png")
    (root / "a.png").unlink()
    rep = index.scan(Project(root, cfg, store))
    assert rep.removed == 1 and sorted(rows(store)) == ["d/a.png"]


def test_the_watcher_keeps_rows_whose_mask_folder_cannot_be_listed(root, cfg, store,
                                                                   monkeypatch):
    img(root / "images" / "s" / "x.png"); msk(root / "masks" / "s" / "x.png")
    index.scan(Project(root, cfg, store))
    store.set_status([store.image("images/s/x.png").id], "accepted")
    unlistable(monkeypatch, "masks/s")
    index.index_one(Project(root, cfg, store), "images/s/x.png")
    row = store.image("images/s/x.png")
    assert (row.status, row.mask_path) == ("accepted", "masks/s/x.png")
    monkeypatch.undo()
    # a masks subfolder behind a broken link (an unmounted disk): the scan keeps it too
    (root / "masks" / "s").rename(root / "s.real")
    (root / "masks" / "s").symlink_to(root / "unmounted" / "s")
    index.scan(Project(root, cfg, store))
    row = store.image("images/s/x.png")
    assert (row.status, row.mask_path) == ("accepted", "masks/s/x.png")


def test_the_watcher_follows_a_move_among_many_files_of_one_size_and_time(root, cfg, store):
    # an unpacked batch: every image has the same size and mtime
    for i in range(40):  # BMP: one size for every image of one shape
        img(root / f"u{i:02d}.bmp", seed=i, size=(16, 16))
        os.utime(root / f"u{i:02d}.bmp", ns=(1_700_000_000_000_000_000,) * 2)
    index.scan(Project(root, cfg, store))
    assert len(store.images_by_fingerprint(*index_pair.fingerprint(root / "u00.bmp"))) == 40
    iid = store.image("u39.bmp").id
    store.set_status([iid], "flagged")
    (root / "u39.bmp").rename(root / "moved.bmp")
    index.index_one(Project(root, cfg, store), "moved.bmp")
    index.index_one(Project(root, cfg, store), "u39.bmp")
    row = store.image("moved.bmp")
    assert (row.id, row.status) == (iid, "flagged")


def test_a_masks_subfolder_deleted_or_renamed_clears_its_masks(root, cfg, store):
    img(root / "images" / "s" / "x.png"); msk(root / "masks" / "s" / "x.png")
    index.scan(Project(root, cfg, store))
    (root / "masks" / "s").rename(root / "masks" / "s_old")
    index.index_one(Project(root, cfg, store), "images/s/x.png")
    assert store.image("images/s/x.png").status == "no-mask"
    index.scan(Project(root, cfg, store))
    assert store.image("images/s/x.png").mask_path is None


def test_an_orphan_mask_replaced_by_an_older_file_is_versioned(root, cfg, store):
    # cp -p, rsync -a and unzip keep the source's (older) mtime
    msk(root / "lonely_mask.png", seed=1)
    index.scan(Project(root, cfg, store))
    msk(root / "lonely_mask.png", seed=5)
    os.utime(root / "lonely_mask.png", ns=(1_600_000_000_000_000_000,) * 2)
    index.scan(Project(root, cfg, store))
    assert len(store.mask_versions("lonely_mask.png")) == 2


def test_a_mask_that_comes_back_unchanged_brings_its_decision_back(root, cfg, store):
    # [layout] kind changed and changed back, or a masks folder moved out and in again:
    # every row went 'no-mask' and then 'unreviewed', and the decisions were gone
    for n in ("a", "b", "c"):
        img(root / f"{n}.png"); msk(root / f"{n}_mask.png", seed=1)
    index.scan(Project(root, cfg, store))
    store.set_status([store.image("a.png").id], "accepted")
    store.set_status([store.image("b.png").id], "flagged")
    away = root.parent / "away"
    away.mkdir()
    for n in ("a", "b", "c"):
        (root / f"{n}_mask.png").rename(away / f"{n}_mask.png")
    index.scan(Project(root, cfg, store))
    assert {store.image(f"{n}.png").status for n in "abc"} == {"no-mask"}
    index.scan(Project(root, cfg, store))                     # still away: nothing forgotten
    for n in ("a", "b"):
        (away / f"{n}_mask.png").rename(root / f"{n}_mask.png")
    msk(root / "c_mask.png", seed=7)                 # c comes back as another mask
    index.scan(Project(root, cfg, store))
    assert [store.image(f"{n}.png").status for n in "abc"] == [
        "accepted", "flagged", "unreviewed"]
    assert store.image("a.png").kept_status is None  # used up
