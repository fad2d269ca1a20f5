"""Indexing a data folder into the project state (``images`` and ``problems`` tables).

Change detection is by fingerprint (size + mtime_ns): a pair whose image and mask fingerprints
match its row is skipped without hashing or decoding, so re-scanning a large unchanged folder
costs one ``stat`` per file. When a fingerprint moved, the file is re-hashed (sha256) and
re-validated (full decode: truncated files are only visible then).

How one pair's row is worked out (the status rules, moves) is index_pair.py's.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable

from . import layout
from .imageio import sha256_file
from .index_pair import (ScanReport, duplicate_names, evaluate, hidden_mask_dirs,
                         mask_out_of_sight, moved_here, still_an_image)
from .project import Project
from .versions import keep_current

log = logging.getLogger(__name__)

FLUSH_EVERY = 256          # rows per write transaction (keeps the write lock short)
PROGRESS_EVERY = 200


# -- history ----------------------------------------------------------------------------

def _record_version(project: Project, rel_mask: str, sha: str, image_id: int | None,
                    report: ScanReport) -> None:
    versions = project.store.mask_versions(rel_mask)
    if versions and versions[-1].sha256 == sha:
        return
    try:  # first sight of a mask is its 'scan' version, a later change a person's edit
        keep_current(project, rel_mask, image_id)
    except Exception as e:  # noqa: BLE001 - destination full/missing/another project's
        # no row without its bytes (revert and verify would find it missing): the next
        # scan's catch-up stores this content once the destination takes it
        msg = f"{rel_mask}: mask history not kept yet ({e})"
        if msg not in report.warnings:  # the catch-up may try the same mask again
            report.warnings.append(msg)
            log.warning(msg)  # the engine's log: the watcher's re-index has no report


LOOSE_META = "loose_mask_stats"  # orphan/duplicate mask -> [size, mtime_ns, ctime_ns, sha256]


def _catch_up_history(project: Project, rows, disc, report: ScanReport, *,
                      whole: bool = True) -> None:
    """Version every mask seen (of ``rows`` and ``disc``) whose current content the history
    lacks: masks whose row is an error, orphan and duplicate masks (no row to hang a change
    on), and contents a full or unplugged destination could not take before. ``whole``: rows
    are the whole project (one query for all); else a few (one query each)."""
    root, store = project.root, project.store
    rows = [r for r in rows if r is not None and r.mask_path and r.mask_sha256]
    loose = list(disc.orphan_masks) + [p for p, k, _m in disc.problems if k == "duplicate-mask"]
    latest = store.latest_mask_shas(None if whole else
                                    [r.mask_path for r in rows] + loose)
    todo = [(r.mask_path, r.mask_sha256, r.id) for r in rows
            if (latest.get(r.mask_path) or (None,))[0] != r.mask_sha256]
    # no row keeps their hash: hash those changed since their last version; the stat of the
    # last hash is kept in the meta table, so a metadata-only change (chmod, cp -a: ctime
    # newer than the version) costs one hash, not one at every scan
    known = (store.get_meta(LOOSE_META) or {}) if (loose or whole) else {}
    seen = {} if whole else dict(known)
    for m in loose:
        have = latest.get(m)
        try:
            st = os.stat(root / m)  # ctime too: cp -p, rsync -a and unzip set mtime back
            stat = [st.st_size, st.st_mtime_ns, st.st_ctime_ns]
            if have is not None and (max(st.st_mtime, st.st_ctime) <= have[1]
                                     or known.get(m) == [*stat, have[0]]):
                seen[m] = known.get(m) or [*stat, have[0]]
                continue
            sha = sha256_file(root / m)
        except OSError:
            continue
        seen[m] = [*stat, sha]
        if have is None or have[0] != sha:
            todo.append((m, sha, None))
    if seen != known:
        store.set_meta(LOOSE_META, seen)
    for rel, sha, image_id in todo:
        _record_version(project, rel, sha, image_id, report)


class _Writer:
    """Buffers row writes and commits them in short transactions."""

    def __init__(self, project: Project, report: ScanReport):
        self.project, self.store, self.report = project, project.store, report
        self.buf: list[tuple[str, dict, str | None, str | None]] = []

    def add(self, path: str, fields: dict, mask: str | None, sha: str | None) -> None:
        self.buf.append((path, fields, mask, sha))
        if len(self.buf) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if not self.buf:
            return
        ids = []
        with self.store.tx():
            for path, fields, mask, sha in self.buf:
                ids.append(self.store.upsert_image(path, **fields))
        # history copies bytes: outside the row transaction, one mask at a time
        for (path, fields, mask, sha), image_id in zip(self.buf, ids):
            if mask is not None and sha is not None:
                _record_version(self.project, mask, sha, image_id, self.report)
        self.buf.clear()


def _signature(cfg) -> dict:
    """Settings that change what a valid mask is: when they change, everything is re-checked."""
    return {"codes": list(cfg.project.codes)}


# -- the scan ------------------------------------------------------------------------------

def scan(project: Project, *, rehash: bool = False,
         progress: Callable[[int, int], Any] | None = None,
         recheck: set[str] | frozenset[str] = frozenset()) -> ScanReport:
    """Index every pair under ``root``; ``progress(done, total)`` is called now and then.
    ``recheck``: paths (images or masks) segtriage has just written itself (a restore): their
    pairs are re-validated even where the row's fingerprint matches the file."""
    t0 = time.monotonic()
    root, cfg, store = project.root, project.cfg, project.store
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")  # never treat as 'everything gone'
    report = ScanReport(root=str(root))
    # rows before the walk: a pair the engine's watcher indexes while this (client) scan
    # walks a big folder is then neither in `rows` nor in `seen`, instead of 'gone'
    rows = {r.path: r for r in store.images()}
    disc = layout.discover(root, cfg, known=store.get_meta("layout_kind"))
    report.kind = disc.kind
    sig = _signature(cfg)
    revalidate = store.get_meta("scan_signature") != sig
    dups = duplicate_names(disc)
    writer = _Writer(project, report)
    total = len(disc.pairs)
    seen: set[str] = set()
    if progress is not None:
        progress(0, total)
    hidden = hidden_mask_dirs(root, cfg, disc.kind, disc.problems)
    # a move takes the row of an image that is gone: those rows by fingerprint, once
    found = {p.image for p in disc.pairs}
    vanished: dict[tuple, list] = {}
    for p, r in rows.items():
        if p not in found:
            vanished.setdefault((r.img_size, r.img_mtime_ns), []).append(r)
    for n, pair in enumerate(disc.pairs, 1):
        row = rows.get(pair.image)
        if row is None:  # new here, or indexed by the engine meanwhile, or moved here
            row = store.image(pair.image) or (
                moved_here(root, store, pair, vanished) if vanished else None)
        if mask_out_of_sight(root, pair, row, hidden):
            seen.add(pair.image)
            report.unchanged += 1
            continue
        try:
            fields, sha = evaluate(root, cfg, pair, row, dups.get(pair.image), report,
                                    revalidate=revalidate or pair.image in recheck
                                    or pair.mask in recheck, rehash=rehash)
        except FileNotFoundError:
            continue  # vanished since the walk: removed below like any other missing image
        except OSError as e:  # unreadable image file (permissions, I/O error)
            fields = dict(mask_path=pair.mask, status="error",
                          error=f"{pair.image}: cannot read: {e.strerror or e}")
            sha = None
        seen.add(pair.image)
        if fields is not None and row is not None and all(
                getattr(row, k) == v for k, v in fields.items()):
            fields = None  # re-read (revalidate, --rehash) and found as it was
        if fields is None:
            report.unchanged += 1
        else:
            if row is None:
                report.new += 1
            else:
                report.changed += 1
            writer.add(pair.image, fields, pair.mask, sha)
        if progress is not None and (n % PROGRESS_EVERY == 0 or n == total):
            progress(n, total)
    writer.flush()
    # a folder that could not be listed (permissions, a network hiccup) keeps its rows
    unreadable = [p for p, k, _m in disc.problems if k == "unreadable"]
    gone = sorted(p for p in set(rows) - seen
                  if not any(d == "." or p.startswith(d + "/") for d in unreadable)
                  and not still_an_image(root, cfg, disc.kind, p))
    if gone:
        with store.tx():
            for p in gone:
                store.delete_image(p)
    report.removed = len(gone)
    _catch_up_history(project, store.images(), disc, report)

    problems = [p for p in disc.problems if p[0] not in dups]  # those rows carry the error
    problems += [layout.orphan_problem(cfg, disc, m) for m in disc.orphan_masks]
    problems.sort()
    store.replace_problems(problems)
    store.set_meta("scan_signature", sig)
    store.set_meta("layout_kind", disc.kind)
    report.problems = problems
    _finish(report, store, t0)
    return report


def _finish(report: ScanReport, store, t0: float) -> None:
    report.counts = store.status_counts()
    report.total = sum(report.counts.values())
    report.errors = [(r.path, r.error or "error") for r in store.images(["error"])]
    report.elapsed = time.monotonic() - t0


def index_one(project: Project, relpath: str, *, revalidate: bool = False,
              status: str | None = None) -> str | None:
    """Re-index the pair that ``relpath`` (an image or a mask, relative to root) belongs to,
    after it was created, changed or deleted. Returns the image path whose row was written or
    deleted, or None when the path is not part of the data set. Folder changes need scan().

    ``revalidate``: re-read the files even where the row's fingerprint matches them.
    ``status``: the status a row whose mask is ``relpath`` gets when that mask is usable (a
    person's act: an undo, an edit); an unusable mask makes the row ``error`` regardless.
    See recheck_mask."""
    root, cfg, store = project.root, project.cfg, project.store
    rel = layout.norm_rel(relpath)
    kind = layout.detect_kind(root, cfg, known=store.get_meta("layout_kind"))
    role, key = layout.classify(rel, cfg, kind)
    if role is None:
        return None
    disc = layout.discover_one(root, cfg, rel, kind)
    report = ScanReport(root=str(root), kind=kind)
    dups = duplicate_names(disc)
    writer = _Writer(project, report)
    touched: str | None = None
    images_now = {p.image for p in disc.pairs}
    before = store.image_by_mask(rel) if role == "mask" else None

    group_paths = {rel} | images_now | {p.mask for p in disc.pairs if p.mask} \
        | set(disc.orphan_masks)
    store.delete_problems(group_paths)
    hidden = hidden_mask_dirs(root, cfg, kind, [])
    kept: set[str] = set()
    for pair in disc.pairs:
        row = store.image(pair.image) or moved_here(root, store, pair)
        if mask_out_of_sight(root, pair, row, hidden):
            kept.add(pair.image)
            continue
        try:
            fields, sha = evaluate(root, cfg, pair, row, dups.get(pair.image), report,
                                    revalidate=revalidate)
        except FileNotFoundError:
            continue
        except OSError as e:
            fields = dict(mask_path=pair.mask, status="error",
                          error=f"{pair.image}: cannot read: {e.strerror or e}")
            sha = None
        if fields is not None:
            if status and pair.mask is not None and pair.mask == rel \
                    and fields.get("status") != "error":
                fields["status"] = status
            writer.add(pair.image, fields, pair.mask, sha)
        if pair.image == rel or pair.mask == rel:
            touched = pair.image
    writer.flush()
    if role == "image" and rel not in images_now and store.image(rel) is not None:
        store.delete_image(rel)
        touched = rel
    if role == "mask" and touched is None and before is not None \
            and before.path not in kept:
        # the mask went (or moved away): its image row was re-evaluated above if it exists
        touched = before.path
    _catch_up_history(project, [store.image(p.image) for p in disc.pairs], disc, report,
                      whole=False)
    for m in disc.orphan_masks:
        store.upsert_problem(*layout.orphan_problem(cfg, disc, m))
    for p, k, m in disc.problems:
        if k != "duplicate-name":
            store.upsert_problem(p, k, m)
    return touched


def recheck_mask(project: Project, rel_mask: str, *, status: str | None = None
                 ) -> str | None:
    """Index a mask segtriage has just written itself (revert/undo, write_mask) the way a scan
    of that file would: read and validated with the scan's own rules (evaluate), so an
    unusable mask makes its row ``error`` with the reason and a usable one clears an earlier
    error. Writers must not put the new fingerprint into the row themselves: a scan or the
    watcher would then take the row for unchanged and never look at the file (a restored or
    reverted bad mask stayed ``edited``; a stale error stayed on a good one).

    ``status``: what a usable mask's row becomes (None: the scan's rules). Returns the image
    path whose row was written, or None (an orphan mask, a path outside the layout)."""
    return index_one(project, rel_mask, revalidate=True, status=status)
