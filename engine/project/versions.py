"""Mask versions: every mask content segtriage has seen, kept in the backup object store.

A version is a ``mask_versions`` row (path, sha256, source, pixels changed and Dice against the
version before it) plus the file's bytes stored once under their sha256 in the default backup
destination. Anything that replaces a mask keeps the old content here first (history.py); if
that cannot be done (the destination is full or missing) the mask is not replaced.

Sources: scan (the first content of a mask history sees), editor (a person's edit: also a later
content found on disk that history had not seen yet, see keep_current), prediction, segment,
demo, restore, revert. No torch or fastai here: clients import this module.

Writers of one mask are serialised by ``mask_lock`` (an exclusive lock per mask); the whole
keep-old, write, keep-new sequence is history.replace_mask's.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import weakref
from contextlib import contextmanager
from typing import Iterator

import numpy as np

from .objectstore import BackupError, ObjectStore, Owner, default_destination
from .imageio import MaskError, read_mask
from ..store import Store
from .project import Project


class HistoryError(BackupError, ValueError):
    """A history request that cannot be met (no such path or version, nothing to undo)."""


def history_store(project: Project) -> ObjectStore:
    """History objects always live in the configured (default) backup destination. A
    destination changed in the config since the last history write first gets every history
    object from the previous one (see _follow_destination)."""
    obj = ObjectStore(default_destination(project.root, project.cfg),
                      owner=Owner(project.root, project.store))
    _follow_destination(obj, project.store)
    return obj


# per Store (one per process and connection): the destination it followed last and the
# earlier destinations still away, so a scan writing thousands of versions checks once
_FOLLOWED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _follow_destination(obj: ObjectStore, store: Store) -> None:
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
        wanted = {sha for _id, _path, sha in store.mask_version_refs()}
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


def _compare(obj: ObjectStore, codes: list[str], prev_sha: str, sha: str
             ) -> tuple[int | None, float | None]:
    """Compare two stored versions (read from the store: the file may change meanwhile)."""
    try:
        a = read_mask(obj.get(prev_sha), codes)
        b = read_mask(obj.get(sha), codes)
    except (MaskError, BackupError):
        return None, None  # an unreadable version is still kept, just not measured
    return mask_diff(a, b)


# lock files held by this thread: (path → depth), so a holder may take its own lock again
_HELD = threading.local()


@contextmanager
def mask_lock(project: Project, rel_mask: str) -> Iterator[None]:
    """Hold the exclusive lock of one mask (``<state dir>/locks/<sha1 of its path>``): what
    replaces a mask keeps the old content, writes and keeps the new one under it, so another
    writer's content cannot slip in between (the destination's lock is shared by all writers).
    Re-entrant within a thread; other threads and processes wait."""
    d = project.state / "locks"
    f = d / hashlib.sha1(rel_mask.encode("utf-8", "surrogateescape")).hexdigest()
    held = _HELD.__dict__.setdefault("held", {})
    key = str(f)
    if held.get(key):
        held[key] += 1
        try:
            yield
        finally:
            held[key] -= 1
        return
    d.mkdir(parents=True, exist_ok=True)
    fd = os.open(f, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        held[key] = 1
        try:
            yield
        finally:
            del held[key]
    finally:
        os.close(fd)  # closing releases the flock


def keep_current(project: Project, rel_mask: str, image_id: int | None = None) -> int | None:
    """Keep the content of ``rel_mask`` on disk now in its history, labelled by the one rule
    for content history has not seen: ``scan`` the first time a mask is seen, ``editor`` for
    a later change made outside segtriage. Returns the new version's id, or None when the
    newest version already has this content. Raises like ``save_version``."""
    with mask_lock(project, rel_mask):
        return save_version(project, rel_mask, None, image_id)[0]


def save_version(project: Project, rel_mask: str, source: str | None,
                 image_id: int | None = None) -> tuple[int | None, str]:
    """Store the current bytes of ``rel_mask`` and add a version row: (its id, or None when
    the newest version already has this content; the content's sha256). ``source`` None: the
    rule of keep_current. Raises BackupError when the store cannot be written and OSError
    when the mask cannot be read."""
    store = project.store
    obj = history_store(project)
    with obj.lock():
        sha, _added = obj.put_file(project.root / rel_mask)
        versions = store.mask_versions(rel_mask)
        prev = versions[-1] if versions else None
        if prev is not None and prev.sha256 == sha:
            return None, sha
        if source is None:  # first sight of a mask is its 'scan'; a later change a person's
            source = "editor" if prev is not None else "scan"
        pixels, dice = (_compare(obj, project.cfg.project.codes, prev.sha256, sha)
                        if prev else (None, None))
        if image_id is None:
            row = store.image_by_mask(rel_mask)
            image_id = row.id if row is not None else None
        vid = store.add_mask_version(rel_mask, sha, source, image_id=image_id,
                                     pixels_changed=pixels, dice_prev=dice)
    return vid, sha


def save_mask_version(project: Project, rel_mask: str, source: str, *,
                      image_id: int | None = None) -> int | None:
    """``save_version`` without the sha: the version row's id, or None when unchanged."""
    return save_version(project, rel_mask, source, image_id)[0]


