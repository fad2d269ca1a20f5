"""Restore a snapshot byte-identically, keeping what it replaces so it can be undone."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ...store import Store
from ..config import CONFIG_NAME, ConfigError, load_config
from ..imageio import sha256_file
from ..history import replace_mask
from ..index import scan
from ..project import Project
from ..versions import keep_current
from ..objectstore import (MANIFEST_FORMAT, BackupError, ObjectStore, Progress, new_snapshot_id,
                      open_destination, safe_rel, utc_iso)
from .snapshot import resolve_snapshot

log = logging.getLogger(__name__)

def restore(project: Project, snapshot_id: str, *, to: Path | str | None = None,
            dest: Path | str | None = None, progress: Progress | None = None) -> dict:
    """Restore a snapshot byte-identically into ``root`` (or into ``to``).

    Every object needed is re-hashed before anything is written: one corrupt object and the
    restore refuses, naming the file. A file that differs is stored first (and, for a mask
    restored in place, versioned in the mask history) before it is replaced. Files present now
    but absent from the snapshot are left alone. Data files only: the model weights a
    snapshot holds are not written.
    """
    root, cfg, store = project.root, project.cfg, project.store
    target = Path(to) if to is not None else root
    in_place = target.resolve() == root.resolve()
    obj = open_destination(root, cfg, dest, store)
    report = progress or (lambda f, m: None)
    with obj.lock():
        m = resolve_snapshot(obj, snapshot_id)
        masks = set(m.get("masks", []))
        todo: list[tuple[str, Path, str]] = []  # (label, target path, sha)
        unchanged = 0
        entries = [(rel, target / safe_rel(rel), e["sha"]) for rel, e in m["files"].items()]
        for label, path, sha in entries:
            if path.is_file() and sha256_file(path) == sha:
                unchanged += 1
            else:
                todo.append((label, path, sha))
        bad = [label for label, _p, sha in todo if not obj.verify_object(sha)]
        if bad:
            raise BackupError(
                f"snapshot {m['id']} cannot be restored: the stored copies of "
                f"{', '.join(bad[:5])}{' …' if len(bad) > 5 else ''} are missing or corrupt "
                f"in {obj.dest}; nothing was written (run `segtriage verify`)")
        # keep what is there now before replacing any of it: stored, in the mask history for
        # masks, and named by a manifest of its own, so prune keeps it and `restore` of that
        # snapshot undoes this one
        kept: list[dict] = []
        for label, path, _sha in todo:
            if path.is_file():
                if in_place and label in masks:  # raises before anything is written
                    keep_current(project, label)
                old_sha, _n = obj.put_file(path)
                kept.append({"path": label, "sha": old_sha})
        undo = _write_kept(obj, store, kept, masks, m["id"], target) if kept else None
        for i, (label, path, sha) in enumerate(todo):
            if in_place and label in masks:  # under the mask's lock, kept before and after
                replace_mask(project, label, lambda p, _old, sha=sha: obj.copy_out(sha, p),
                             "restore", recheck=False)  # indexed below, in one scan
            else:
                obj.copy_out(sha, path)
            report((i + 1) / max(1, len(todo)), f"restored {label}")
    out = {"snapshot": m["id"], "target": str(target), "files": len(entries),
           "restored": len(todo), "unchanged": unchanged, "kept": kept, "undo": undo}
    if in_place:
        store.add_event("restore", {"snapshot": m["id"], "restored": len(todo), "kept": kept})
        if todo:
            out["index_error"] = _index_restored(project, {label for label, _p, _s in todo})
    return out


def _index_restored(project: Project, restored: set[str]) -> str | None:
    """Index what a restore wrote as a scan of those files would: a restored mask that is
    unusable (another size than its image, values of no class) makes its row ``error`` with
    the reason, a usable one clears an earlier error (``edited`` when its content differs from
    the row's). Writing the new fingerprints into the rows instead, as before, made every
    later scan skip those files as unchanged. One scan of the folder (a stat per file), not
    one re-index per file: a restore may write thousands of masks into one folder. The
    restore is done when this runs, so a failure is returned (and logged), not raised."""
    if CONFIG_NAME in restored:  # the masks are checked against the config they came with
        try:
            project = project.with_config(load_config(project.root))
        except ConfigError as e:
            log.warning("restore: the restored %s is not valid: %s", CONFIG_NAME, e)
            return f"the restored files are not indexed yet: {e}; fix it and run `segtriage scan`"
    try:
        scan(project, recheck=restored)
    except Exception as e:  # noqa: BLE001 - the files are restored; the next scan indexes them
        log.warning("restore: indexing the restored files failed: %s", e)
        return f"the restored files are not indexed yet ({e}); run `segtriage scan`"
    return None


def _write_kept(obj: ObjectStore, store: Store, kept: list[dict], masks: set[str], restoring: str,
                target: Path) -> str:
    """A manifest of the files a restore is about to replace (only those: restoring it puts
    them back). Returns its snapshot id."""
    ts = time.time()
    snap_id = new_snapshot_id(ts)
    note = f"before restoring {restoring}"
    files = {k["path"]: {"sha": k["sha"], "size": obj.path(k["sha"]).stat().st_size}
             for k in kept}
    obj.write_manifest(snap_id, {
        "format": MANIFEST_FORMAT, "id": snap_id, "created_ts": ts, "created_at": utc_iso(ts),
        "root": str(target.resolve()), "note": note, "job_id": None, "files": files,
        "masks": sorted(p for p in files if p in masks), "models": {"files": {}},
        "bytes_added": 0, "masks_changed": 0, "previous": None, "skipped": [],
        "partial": True})
    store.add_backup(destination=str(obj.dest), snapshot=snap_id, files=len(kept),
                     bytes_added=0, masks_changed=0, job_id=None, note=note, partial=True)
    return snap_id


