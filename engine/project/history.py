"""Mask history: every mask version segtriage has seen, kept in the backup object store.

A version is a ``mask_versions`` row (path, sha256, source, pixels changed and Dice against the
version before it) plus the file's bytes stored once under their sha256 in the default backup
destination. Anything that replaces a mask (the editor, accepting a prediction, segment
--overwrite, restore, revert) stores the old content first; if that cannot be done (the
destination is full or missing) the mask is not replaced.

Sources: scan (content found on disk that history had not seen yet), editor, prediction,
segment, restore, revert.

No torch or fastai here: clients import this module.
"""

from __future__ import annotations

import weakref
from pathlib import Path

import numpy as np

from .backup import BackupError, ObjectStore, _utc_iso, default_destination, owner_of
from .imageio import MaskError, read_mask, sha256_file
from .imageio import write_mask as _write_mask_file
from .index import recheck_mask  # index imports this module only lazily


class HistoryError(BackupError, ValueError):
    """A history request that cannot be met (no such path or version, nothing to undo)."""


def history_store(root: Path | str, cfg, store=None) -> ObjectStore:
    """History objects always live in the configured (default) backup destination. With
    ``store``, a destination changed in the config since the last history write first gets
    every history object from the previous one (see _follow_destination)."""
    obj = ObjectStore(default_destination(root, cfg), owner=owner_of(root, store))
    if store is not None:
        _follow_destination(obj, store)
    return obj


# per Store (one per process and connection): the destination it followed last and the
# earlier destinations still away, so a scan writing thousands of versions checks once
_FOLLOWED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _follow_destination(obj: ObjectStore, store) -> None:
    """Copy the history's objects from earlier destinations into ``obj``.

    History rows do not say where their bytes are: they are looked up in the configured
    destination. Pointing ``[backup] destination`` at another disk, as the docs advise,
    would otherwise leave every earlier version behind (undo fails, verify reports missing
    objects, and clearing the old folder loses them). An earlier destination that is away (an
    unplugged disk) stays pending in the state and is copied from once it is back, also after
    further changes of destination."""
    here = str(obj.dest)
    followed, waiting = _FOLLOWED.get(store, (None, []))
    if followed == here:
        # followed already; while a source is away, one stat per write until it is back
        if not any(ObjectStore(w).objects_dir.is_dir() for w in waiting):
            return
    new = str(obj.dest.resolve())
    prev = store.get_meta("history_destination")
    pending = list(store.get_meta("history_pending") or [])
    sources = [d for d in dict.fromkeys(pending + [prev]) if d and d != new]
    still = []
    if sources:
        wanted = {r["sha256"] for r in store.mask_version_refs()}
        with obj.lock():
            for src in sources:
                old = ObjectStore(src)
                for sha in sorted(wanted):
                    if not obj.has(sha) and old.has(sha):
                        obj.put_file(old.path(sha))  # re-hashed on the way in
        if any(not obj.has(sha) for sha in wanted):
            still = [d for d in sources if not ObjectStore(d).objects_dir.is_dir()]
    if prev != new:
        store.set_meta("history_destination", new)
    if still != pending:
        store.set_meta("history_pending", still)
    _FOLLOWED[store] = (here, still)


def mask_diff(a: np.ndarray, b: np.ndarray) -> tuple[int | None, float | None]:
    """(pixels whose class differs, foreground Dice) between two masks; Dice is 1 when both
    are empty; (None, None) when the sizes differ."""
    if a.shape != b.shape:
        return None, None
    fa, fb = a > 0, b > 0
    total = int(fa.sum()) + int(fb.sum())
    dice = 1.0 if total == 0 else 2.0 * int((fa & fb).sum()) / total
    return int((a != b).sum()), dice


def _compare(obj: ObjectStore, cfg, prev_sha: str, sha: str) -> tuple[int | None, float | None]:
    """Compare two stored versions (read from the store: the file may change meanwhile)."""
    try:
        a = read_mask(obj.get(prev_sha), cfg.project.codes)
        b = read_mask(obj.get(sha), cfg.project.codes)
    except (MaskError, BackupError):
        return None, None  # an unreadable version is still kept, just not measured
    return mask_diff(a, b)


def _save(root: Path, cfg, store, rel_mask: str, source: str,
          image_id: int | None) -> tuple[int | None, str]:
    obj = history_store(root, cfg, store)
    with obj.lock():
        sha, _added = obj.put_file(root / rel_mask)
        versions = store.mask_versions(rel_mask)
        prev = versions[-1] if versions else None
        if prev is not None and prev["sha256"] == sha:
            return None, sha
        pixels, dice = _compare(obj, cfg, prev["sha256"], sha) if prev else (None, None)
        if image_id is None:
            row = store.image_by_mask(rel_mask)
            image_id = row["id"] if row is not None else None
        vid = store.add_mask_version(rel_mask, sha, source, image_id=image_id,
                                     pixels_changed=pixels, dice_prev=dice)
    return vid, sha


def save_mask_version(root: Path | str, cfg, store, rel_mask: str, source: str, *,
                      image_id: int | None = None) -> int | None:
    """Store the current bytes of ``rel_mask`` and add a version row; None when the newest
    version already has this content. Raises BackupError when the store cannot be written
    and OSError when the mask cannot be read."""
    return _save(Path(root), cfg, store, rel_mask, source, image_id)[0]


def _mask_target(root: Path, cfg, image_rel: str) -> str:
    from .layout import discover_one

    for pair in discover_one(root, cfg, image_rel).pairs:
        if pair.image == image_rel:
            return pair.mask or pair.mask_target
    raise HistoryError(f"{image_rel}: not an image of this folder's layout; cannot tell where "
                       "its mask goes")


def write_mask(root: Path | str, cfg, store, image_row, mask: np.ndarray, source: str, *,
               mask_rel: str | None = None, status: str | None = "edited") -> str:
    """Replace (or create) the mask of an image, keeping the old one in history first.

    The new mask keeps the old file's convention (0/1, 0/255, palette). The image row is then
    indexed as a scan of the new file would (its scores become stale): ``error`` with the
    reason if the mask is unusable (say the image changed size since its row was read), else
    ``status`` with any earlier error cleared (None: the scan's rules decide).
    Returns the mask path relative to ``root``.
    """
    root = Path(root)
    rel = image_row["mask_path"] or mask_rel or _mask_target(root, cfg, image_row["path"])
    path = root / rel
    old = path if path.is_file() else None
    if old is not None:  # raises, and nothing is written, when the old mask cannot be kept
        _save(root, cfg, store, rel, "scan", image_row["id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_mask_file(path, mask, like=old, n_codes=len(cfg.project.codes))
    vid, _sha = _save(root, cfg, store, rel, source, image_row["id"])
    recheck_mask(root, cfg, store, rel, status=status)  # the row as a scan leaves it
    store.add_event("mask", {"image": image_row["path"], "mask": rel, "source": source,
                             "version_id": vid})
    return rel


def _resolve(root: Path, cfg, store, path: str | Path) -> tuple[str, str | None]:
    """(mask relpath, image relpath or None) for an image or a mask path."""
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.resolve().relative_to(root.resolve())
        except ValueError:
            raise HistoryError(f"{path} is not inside {root}") from None
    rel = p.as_posix()
    row = store.image(rel)
    if row is not None:
        return (row["mask_path"] or _mask_target(root, cfg, rel)), rel
    row = store.image_by_mask(rel)
    return rel, (row["path"] if row is not None else None)


def history(root: Path | str, cfg, store, path: str | Path) -> list[dict]:
    """Versions of the mask of ``path`` (an image or its mask), oldest first, numbered 1..n.
    ``current`` marks the newest version whose content is the file on disk now."""
    root = Path(root)
    rel, _image = _resolve(root, cfg, store, path)
    versions = store.mask_versions(rel)
    try:
        cur = sha256_file(root / rel)
    except OSError:
        cur = None
    current_idx = max((i for i, v in enumerate(versions) if v["sha256"] == cur), default=None)
    return [{"version": i + 1, "id": v["id"], "path": rel, "time": _utc_iso(v["created_at"]),
             "created_at": v["created_at"], "source": v["source"],
             "pixels_changed": v["pixels_changed"], "dice_prev": v["dice_prev"],
             "sha": v["sha256"], "current": i == current_idx}
            for i, v in enumerate(versions)]


def revert(root: Path | str, cfg, store, path: str | Path, version: int | None = None) -> dict:
    """Bring back version ``version`` (1-based) of a mask; default: the newest version whose
    content differs from the file now (undo the last change). The current content is versioned
    first, so a revert is itself undone by another ``revert``. The image row ends as a scan of
    the file leaves it: ``error`` with the reason for an unusable version, else ``edited``."""
    root = Path(root)
    rel, image = _resolve(root, cfg, store, path)
    mpath = root / rel
    if mpath.is_file():
        _save(root, cfg, store, rel, "scan", None)
    versions = store.mask_versions(rel)
    if not versions:
        raise HistoryError(f"{rel}: no history")
    cur = versions[-1]["sha256"] if mpath.is_file() else None
    if version is None:
        older = [i for i, v in enumerate(versions) if v["sha256"] != cur]
        if not older:
            raise HistoryError(f"{rel}: nothing to undo (only one version)")
        idx = older[-1]
    elif 1 <= version <= len(versions):
        idx = version - 1
    else:
        raise HistoryError(f"{rel}: no version {version} (versions 1..{len(versions)})")
    target = versions[idx]
    out = {"path": rel, "image": image, "version": idx + 1, "sha": target["sha256"]}
    if target["sha256"] == cur:
        return {**out, "changed": False, "new_version": None}
    obj = history_store(root, cfg, store)
    with obj.lock():
        obj.copy_out(target["sha256"], mpath)  # refuses a corrupt object, writes atomically
    vid, _sha = _save(root, cfg, store, rel, "revert", None)
    # an undo is a person's edit: 'edited', unless the version brought back is unusable
    recheck_mask(root, cfg, store, rel, status="edited")
    store.add_event("mask", {"image": image, "mask": rel, "source": "revert",
                             "from_version": idx + 1, "version_id": vid})
    return {**out, "changed": True, "new_version": len(store.mask_versions(rel))}
