"""Snapshots: store every image, mask, the config and the models; list and find them."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from ...store import Store
from ..config import CONFIG_NAME
from ..layout import discover
from ..models_dir import unfinished_weights
from ..project import Project
from ..objectstore import (MANIFEST_FORMAT, BackupError, ObjectStore, Progress, new_snapshot_id,
                      open_destination, utc_iso, whole_snapshots)

def _data_files(project: Project) -> tuple[list[str], set[str]]:
    """Every image and mask relpath (index rows and files on disk, orphan and duplicate masks
    included: they are still someone's annotation); and the set of masks among them."""
    images: set[str] = set()
    masks: set[str] = set()
    for r in project.store.images():
        images.add(r.path)
        if r.mask_path:
            masks.add(r.mask_path)
    disc = discover(project.root, project.cfg)
    for pair in disc.pairs:
        images.add(pair.image)
        if pair.mask:
            masks.add(pair.mask)
    masks.update(disc.orphan_masks)
    masks.update(p for p, kind, _msg in disc.problems if kind == "duplicate-mask")
    return sorted(images | masks), masks


def _model_files(project: Project) -> list[tuple[str, Path]]:
    models = project.state / "models"
    if not models.is_dir():
        return []
    # weights of trainings that did not finish belong to no model (the engine deletes them at
    # start): a cancelled crossval's folds went into every snapshot
    orphans = unfinished_weights(models, project.store)
    out = []
    for p in sorted(models.rglob("*")):
        rel = p.relative_to(models)
        # skip what a running training writes: temp files, its frozen masks (.train-masks-*)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts) \
                and ".tmp" not in p.name and rel.as_posix() not in orphans:
            out.append((rel.as_posix(), p))
    return out


def snapshot(project: Project, *, dest: Path | str | None = None,
             note: str | None = None, progress: Progress | None = None,
             job_id: int | None = None, take_over: bool = False) -> dict:
    """Store every image, mask, ``segtriage.toml`` and the model metadata (and the weights of
    every model version: all of ``models/`` but the files of trainings that did not finish);
    write the manifest last; record the snapshot in ``backups``. Returns the manifest summary.

    Raises BackupError (no manifest written, nothing recorded) when the destination is full,
    read-only or not a folder. Source files that vanish or cannot be read are listed in
    ``skipped`` instead of failing the whole snapshot.
    """
    root, store = project.root, project.store
    obj = open_destination(root, project.cfg, dest, store, take_over)
    report = progress or (lambda f, m: None)
    rels, mask_set = _data_files(project)
    if (root / CONFIG_NAME).is_file():
        rels.append(CONFIG_NAME)
    model_files = _model_files(project)
    total = len(rels) + len(model_files) + 1
    files: dict[str, dict] = {}
    model_entries: dict[str, dict] = {}
    skipped: list[dict] = []
    added = 0
    ts = time.time()
    snap_id = new_snapshot_id(ts)
    report(0.0, f"snapshot {snap_id}: {total} files")
    with obj.lock():
        previous = whole_snapshots(obj.manifests()[0])
        prev = previous[-1] if previous else None
        entries = [(rel, root / rel, files) for rel in rels]
        entries += [(rel, p, model_entries) for rel, p in model_files]
        for i, (rel, path, into) in enumerate(entries):
            try:
                sha, n = obj.put_file(path)  # destination failures raise BackupError
            except OSError as e:  # the source vanished or cannot be read
                label = rel if into is files else f"models/{rel}"
                skipped.append({"path": label, "error": e.strerror or str(e)})
                continue
            into[rel] = {"sha": sha, "size": obj.path(sha).stat().st_size}
            added += n
            if i % 16 == 0 or into is model_entries:
                report(i / total, f"stored {i}/{total} files")
        meta = json.dumps({"current": store.current_model_id(),
                           "models": [asdict(m) for m in store.models()]},
                          sort_keys=True, default=str).encode("utf-8")
        meta_sha, n = obj.put_bytes(meta)
        added += n
        masks = sorted(r for r in files if r in mask_set)
        masks_changed = _masks_changed(files, masks, prev)
        manifest = {
            "format": MANIFEST_FORMAT, "id": snap_id, "created_ts": ts,
            "created_at": utc_iso(ts), "root": str(root.resolve()), "note": note,
            "job_id": job_id, "files": files, "masks": masks,
            "models": {"meta": meta_sha, "current": store.current_model_id(),
                       "files": model_entries},
            "bytes_added": added, "masks_changed": masks_changed,
            "previous": prev["id"] if prev else None, "skipped": skipped,
        }
        obj.write_manifest(snap_id, manifest)  # last: from here on the snapshot exists
    store.add_backup(destination=str(obj.dest), snapshot=snap_id, files=len(files),
                     bytes_added=added, masks_changed=masks_changed, job_id=job_id, note=note)
    report(1.0, f"snapshot {snap_id}: {len(files)} files, {added} bytes added")
    return _summary(manifest, obj.dest)


def _masks_changed(files: dict, masks: list[str], prev: dict | None) -> int:
    """Masks new, changed or gone since the previous snapshot (all masks for the first)."""
    if prev is None:
        return len(masks)
    pf = prev.get("files", {})
    changed = sum(1 for m in masks if pf.get(m, {}).get("sha") != files[m]["sha"])
    gone = sum(1 for m in prev.get("masks", []) if m not in files)
    return changed + gone


def _summary(m: dict, dest: Path) -> dict:
    return {
        "id": m["id"], "time": m.get("created_at"), "created_ts": m.get("created_ts"),
        "files": len(m.get("files", {})), "masks": len(m.get("masks", [])),
        "bytes_added": m.get("bytes_added"), "masks_changed": m.get("masks_changed"),
        "model_files": len(m.get("models", {}).get("files", {})),
        "note": m.get("note"), "job_id": m.get("job_id"), "skipped": m.get("skipped", []),
        "destination": str(dest),
    }


def list_snapshots(root: Path | str, cfg, dest: Path | str | None = None, *,
                   store: Store | None = None) -> list[dict]:
    """Snapshots oldest first, from the manifests (the source of truth). ``recorded`` says
    whether this project's ``backups`` table knows the snapshot (pass ``store`` to join);
    unreadable manifests appear with an ``error`` key. Needs no project state: the snapshots
    of a wiped folder are listed too."""
    obj = open_destination(root, cfg, dest, store)
    good, bad = obj.manifests()
    rows = {}
    if store is not None:
        rows = {b.snapshot: b for b in store.backups()}
    out = []
    for m in good:
        s = _summary(m, obj.dest)
        row = rows.get(m["id"])
        s["recorded"] = row is not None
        if row is not None and s["note"] is None:
            s["note"] = row.note
        out.append(s)
    out += [{"id": Path(b["file"]).stem, "error": b["error"], "destination": str(obj.dest)}
            for b in bad]
    return out


def resolve_snapshot(obj: ObjectStore, snapshot_id: str) -> dict:
    """A manifest by exact id, unique id prefix, or ``latest``."""
    good, _bad = obj.manifests()
    if not good:
        raise BackupError(f"no snapshots in {obj.dest}")
    if snapshot_id == "latest":  # the newest whole snapshot, not what a restore kept
        whole = whole_snapshots(good)
        if not whole:
            raise BackupError(f"no whole snapshot in {obj.dest} (only files kept by restores)")
        return whole[-1]
    hits = [m for m in good if m["id"] == snapshot_id] or [
        m for m in good if m["id"].startswith(snapshot_id)]
    if len(hits) != 1:
        what = "no snapshot" if not hits else f"{len(hits)} snapshots match"
        raise BackupError(f"{what} {snapshot_id!r} in {obj.dest} (see `segtriage backups`)")
    return hits[0]


