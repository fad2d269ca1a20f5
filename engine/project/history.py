"""Mask history, the use cases: write a mask, list a mask's versions, revert to one.

Every mask segtriage writes in a project goes through ``replace_mask``: under the mask's own
lock it keeps the old content as a version (versions.py), writes, keeps the new content, and
(for the use cases of one mask) leaves the image row as a scan of the new file would
(index.recheck_mask). No torch or fastai: clients call these.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Union

import numpy as np

from .imageio import atomic_write_bytes, sha256_file
from .imageio import write_mask as _write_mask_file
from .index import recheck_mask
from .layout import discover_one
from .objectstore import utc_iso
from .project import Project
from .scoring.rescore import rescore_image
from .versions import HistoryError, history_store, keep_current, mask_lock, save_version

# what replace_mask writes: the file's bytes, or a function writing (path, old file or None)
Content = Union[bytes, Callable[[Path, "Path | None"], None]]


def _mask_target(project: Project, image_rel: str) -> str:
    for pair in discover_one(project.root, project.cfg, image_rel).pairs:
        if pair.image == image_rel:
            return pair.mask or pair.mask_target
    raise HistoryError(f"{image_rel}: not an image of this folder's layout; cannot tell where "
                       "its mask goes")


def replace_mask(project: Project, rel: str, content: Content, source: str, *,
                 image_id: int | None = None, recheck: bool = True,
                 status: str | None = "edited") -> tuple[int | None, str | None]:
    """Replace (or create) the mask file ``rel``, keeping its history: under the mask's
    exclusive lock, the content there now is kept first (labelled by keep_current's rule;
    when it cannot be kept this raises and nothing is written), then ``content`` is written
    and kept as a version of ``source``. ``recheck``: index the row as a scan of the new file
    would, ``status`` for a usable mask (see index.recheck_mask); callers that scan the whole
    folder afterwards (segment, restore, demo) pass False.

    Returns (the new version's id, or None when the content did not change; the image path
    whose row was re-indexed, or None)."""
    path = project.root / rel
    with mask_lock(project, rel):
        old = path if path.is_file() else None
        if old is not None:
            keep_current(project, rel, image_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(path, old)
        else:
            atomic_write_bytes(path, content)
        vid, _sha = save_version(project, rel, source, image_id)
        touched = recheck_mask(project, rel, status=status) if recheck else None
    return vid, touched


def remove_mask(project: Project, rel: str) -> None:
    """Delete the mask file ``rel`` after keeping its content in history (a regenerated
    data set with fewer images), under the mask's lock; raises, deleting nothing, when it
    cannot be kept."""
    path = project.root / rel
    with mask_lock(project, rel):
        if path.is_file():
            keep_current(project, rel)
            path.unlink()


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
    n_codes = len(project.cfg.project.codes)

    def write(path: Path, old: Path | None) -> None:  # keeps the old file's convention
        _write_mask_file(path, mask, like=old, n_codes=n_codes)

    # raises, and nothing is written, when the old mask cannot be kept; the row ends as a
    # scan leaves it
    vid, _touched = replace_mask(project, rel, write, source, image_id=image_row.id,
                                 status=status)
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


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One version of a mask as `segtriage history` and the app show it."""
    version: int                 # 1..n, oldest first
    id: int                      # the mask_versions row
    path: str                    # the mask, relative to the project folder
    time: str                    # created_at, UTC ISO 8601
    created_at: float
    source: str                  # scan, editor, prediction, segment, revert, restore, ...
    pixels_changed: int | None   # against the version before (None for the first)
    dice_prev: float | None      # Dice to the version before
    sha: str                     # the content's sha256 (its object in the history store)
    current: bool                # the newest version whose content is the file now


def history(project: Project, path: str | Path) -> list[HistoryEntry]:
    """Versions of the mask of ``path`` (an image or its mask), oldest first, numbered 1..n.
    ``current`` marks the newest version whose content is the file on disk now."""
    rel, _image = _resolve(project, path)
    versions = project.store.mask_versions(rel)
    try:
        cur = sha256_file(project.root / rel)
    except OSError:
        cur = None
    current_idx = max((i for i, v in enumerate(versions) if v.sha256 == cur), default=None)
    return [HistoryEntry(version=i + 1, id=v.id, path=rel, time=utc_iso(v.created_at),
                         created_at=v.created_at, source=v.source,
                         pixels_changed=v.pixels_changed, dice_prev=v.dice_prev,
                         sha=v.sha256, current=i == current_idx)
            for i, v in enumerate(versions)]


def revert(project: Project, path: str | Path, version: int | None = None) -> dict:
    """Bring back version ``version`` (1-based) of a mask; default: the newest version whose
    content differs from the file now (undo the last change). The current content is versioned
    first, so a revert is itself undone by another ``revert``. The image row ends as a scan of
    the file leaves it: ``error`` with the reason for an unusable version, else ``edited``."""
    store = project.store
    rel, image = _resolve(project, path)
    mpath = project.root / rel
    with mask_lock(project, rel):  # the versions looked at are the ones replaced
        if mpath.is_file():
            keep_current(project, rel)
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

        def put_back(p: Path, _old: Path | None) -> None:
            with obj.lock():  # refuses a corrupt object, writes atomically
                obj.copy_out(target.sha256, p)

        # an undo is a person's edit: 'edited', unless the version brought back is unusable
        vid, touched = replace_mask(project, rel, put_back, "revert", status="edited")
        n = len(store.mask_versions(rel))
    row = store.image(touched) if touched else None
    if row is not None:
        rescore_image(project, row.id)  # from the stored prediction: no model run
    store.add_event("mask", {"image": image, "mask": rel, "source": "revert",
                             "from_version": idx + 1, "version_id": vid})
    return {**out, "changed": True, "new_version": n}
