"""Prune: keep the newest snapshots, collect the objects nothing references any more."""

from __future__ import annotations

from pathlib import Path

from ..project import Project
from ..objectstore import BackupError, fsync_dir, open_destination, whole_snapshots
from .verify import references

def prune(project: Project, *, keep: int, dest: Path | str | None = None) -> dict:
    """Delete all but the newest ``keep`` snapshots, then delete objects referenced by no
    remaining snapshot and by no mask-history row. ``keep`` must be at least 1."""
    if keep < 1:
        raise BackupError("prune --keep must be at least 1 (segtriage never deletes every "
                          "snapshot)")
    store = project.store
    obj = open_destination(project.root, project.cfg, dest, store)
    if not obj.dest.is_dir():
        return {"kept": [], "deleted": [], "objects_deleted": 0, "bytes_freed": 0}
    with obj.lock(exclusive=True):
        good, bad = obj.manifests()
        if bad:
            # an unreadable manifest may reference anything: collecting garbage could destroy it
            raise BackupError(f"{obj.dest} has unreadable manifests ({bad[0]['file']}): "
                              "fix or remove them before pruning")
        # keep the newest `keep` whole snapshots, and what restores kept since the oldest
        whole = whole_snapshots(good)
        cutoff = whole[-keep]["created_ts"] if len(whole) >= keep else float("-inf")
        stay = [m for m in good if m["created_ts"] >= cutoff]
        drop = [m for m in good if m["created_ts"] < cutoff]
        for m in drop:
            (obj.snapshots_dir / f"{m['id']}.json").unlink(missing_ok=True)
        fsync_dir(obj.snapshots_dir)
        live = set(references(stay, store))
        n = freed = 0
        for sha in list(obj.iter_objects()):
            if sha not in live:
                p = obj.path(sha)
                freed += p.stat().st_size
                p.unlink()
                n += 1
        # under the exclusive lock no writer is active: every temp file is a crash leftover
        leftovers = [*obj.tmp_dir.glob("*"), *obj.snapshots_dir.glob(".tmp-*")]
        for t in leftovers:
            t.unlink(missing_ok=True)
    store.delete_backups(str(obj.dest), [m["id"] for m in drop])
    return {"kept": [m["id"] for m in stay], "deleted": [m["id"] for m in drop],
            "objects_deleted": n, "bytes_freed": freed}
