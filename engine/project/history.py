"""Mask history, the use cases: write a mask, list a mask's versions, revert to one.

Every write keeps the old content as a version first (versions.py) and leaves the image row as
a scan of the new file would (index.recheck_mask). No torch or fastai: clients call these.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .imageio import sha256_file
from .imageio import write_mask as _write_mask_file
from .index import recheck_mask
from .layout import discover_one
from .objectstore import utc_iso
from .project import Project
from .scoring.rescore import rescore_image
from .versions import HistoryError, history_store, save_version


def _mask_target(project: Project, image_rel: str) -> str:
    for pair in discover_one(project.root, project.cfg, image_rel).pairs:
        if pair.image == image_rel:
            return pair.mask or pair.mask_target
    raise HistoryError(f"{image_rel}: not an image of this folder's layout; cannot tell where "
                       "its mask goes")


def write_mask(project: Project, image_row, mask: np.ndarray, source: str, *,
               mask_rel: str | None = None, status: str | None = "edited") -> str:
    """Replace (or create) the mask of an image, keeping the old one in history first.

    The new mask keeps the old file's convention (0/1, 0/255, palette). The image row is then
    indexed as a scan of the new file would: ``error`` with the reason if the mask is unusable
    (say the image changed size since its row was read), else ``status`` with any earlier
    error cleared (None: the scan's rules decide); and it is re-scored from its stored
    prediction, when it has one. Returns the mask path relative to the project's root.
    """
    rel = image_row.mask_path or mask_rel or _mask_target(project, image_row.path)
    path = project.root / rel
    old = path if path.is_file() else None
    if old is not None:  # raises, and nothing is written, when the old mask cannot be kept
        save_version(project, rel, "scan", image_row.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_mask_file(path, mask, like=old, n_codes=len(project.cfg.project.codes))
    vid, _sha = save_version(project, rel, source, image_row.id)
    recheck_mask(project, rel, status=status)  # the row as a scan leaves it
    rescore_image(project, image_row.id)  # from the stored prediction: no model run
    project.store.add_event("mask", {"image": image_row.path, "mask": rel,
                                     "source": source, "version_id": vid})
    return rel


def _resolve(project: Project, path: str | Path) -> tuple[str, str | None]:
    """(mask relpath, image relpath or None) for an image or a mask path."""
    root, store = project.root, project.store
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.resolve().relative_to(root.resolve())
        except ValueError:
            raise HistoryError(f"{path} is not inside {root}") from None
    rel = p.as_posix()
    row = store.image(rel)
    if row is not None:
        return (row.mask_path or _mask_target(project, rel)), rel
    row = store.image_by_mask(rel)
    return rel, (row.path if row is not None else None)


def history(project: Project, path: str | Path) -> list[dict]:
    """Versions of the mask of ``path`` (an image or its mask), oldest first, numbered 1..n.
    ``current`` marks the newest version whose content is the file on disk now."""
    rel, _image = _resolve(project, path)
    versions = project.store.mask_versions(rel)
    try:
        cur = sha256_file(project.root / rel)
    except OSError:
        cur = None
    current_idx = max((i for i, v in enumerate(versions) if v.sha256 == cur), default=None)
    return [{"version": i + 1, "id": v.id, "path": rel, "time": utc_iso(v.created_at),
             "created_at": v.created_at, "source": v.source,
             "pixels_changed": v.pixels_changed, "dice_prev": v.dice_prev,
             "sha": v.sha256, "current": i == current_idx}
            for i, v in enumerate(versions)]


def revert(project: Project, path: str | Path, version: int | None = None) -> dict:
    """Bring back version ``version`` (1-based) of a mask; default: the newest version whose
    content differs from the file now (undo the last change). The current content is versioned
    first, so a revert is itself undone by another ``revert``. The image row ends as a scan of
    the file leaves it: ``error`` with the reason for an unusable version, else ``edited``."""
    store = project.store
    rel, image = _resolve(project, path)
    mpath = project.root / rel
    if mpath.is_file():
        save_version(project, rel, "scan")
    versions = store.mask_versions(rel)
    if not versions:
        raise HistoryError(f"{rel}: no history")
    cur = versions[-1].sha256 if mpath.is_file() else None
    if version is None:
        older = [i for i, v in enumerate(versions) if v.sha256 != cur]
        if not older:
            raise HistoryError(f"{rel}: nothing to undo (only one version)")
        idx = older[-1]
    elif 1 <= version <= len(versions):
        idx = version - 1
    else:
        raise HistoryError(f"{rel}: no version {version} (versions 1..{len(versions)})")
    target = versions[idx]
    out = {"path": rel, "image": image, "version": idx + 1, "sha": target.sha256}
    if target.sha256 == cur:
        return {**out, "changed": False, "new_version": None}
    obj = history_store(project)
    with obj.lock():
        obj.copy_out(target.sha256, mpath)  # refuses a corrupt object, writes atomically
    vid, _sha = save_version(project, rel, "revert")
    # an undo is a person's edit: 'edited', unless the version brought back is unusable
    touched = recheck_mask(project, rel, status="edited")
    row = store.image(touched) if touched else None
    if row is not None:
        rescore_image(project, row.id)  # from the stored prediction: no model run
    store.add_event("mask", {"image": image, "mask": rel, "source": "revert",
                             "from_version": idx + 1, "version_id": vid})
    return {**out, "changed": True, "new_version": len(store.mask_versions(rel))}
