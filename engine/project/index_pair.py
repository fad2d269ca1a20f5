"""How the index works out one image's row: its fields and status from its files (the
status rules), and the row a moved image takes along; masks out of sight keep their row.

Status rules:
* no mask → ``no-mask``; an unreadable image or mask → ``error`` with the reason (the row stays);
* a new row with a mask → ``unreviewed``; a mask appearing for a known image → ``unreviewed``;
* mask content changed (sha256) → ``edited``; image content changed → ``unreviewed`` (the
  earlier review was about another picture);
* otherwise a person's status (unreviewed / accepted / edited / flagged) is kept.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import layout
from .imageio import ImageError, MaskError, fingerprint, image_info, read_mask, sha256_file
from .layout import Discovery, Pair

log = logging.getLogger(__name__)

DUP_PREFIX = "duplicate name: "


@dataclass
class ScanReport:
    root: str
    kind: str = "seed"
    counts: dict[str, int] = field(default_factory=dict)   # status → rows (whole folder)
    total: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    hashed: int = 0                                         # files whose sha256 was computed
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (path, kind, message)
    errors: list[tuple[str, str]] = field(default_factory=list)         # rows in 'error'
    warnings: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root, "kind": self.kind, "counts": dict(self.counts),
            "total": self.total, "new": self.new, "changed": self.changed,
            "unchanged": self.unchanged, "removed": self.removed, "hashed": self.hashed,
            "problems": [{"path": p, "kind": k, "message": m} for p, k, m in self.problems],
            "errors": [{"path": p, "kind": "error", "message": m} for p, m in self.errors],
            "warnings": list(self.warnings), "elapsed": round(self.elapsed, 3),
        }



def rel_msg(msg: str, root: Path) -> str:
    """Error texts name files relative to the data folder (shorter, and stable if moved)."""
    pre = str(root).rstrip(os.sep) + os.sep
    return msg.replace(pre, "")


KEPT_STATUSES = ("accepted", "flagged", "edited", "unreviewed")  # what a mask's return restores


def evaluate(root: Path, cfg, pair: Pair, row, dup: str | None, report: ScanReport, *,
              revalidate: bool = False, rehash: bool = False) -> tuple[dict | None, str | None]:
    """``(fields to write, mask sha to record)``; ``(None, None)`` when nothing changed.
    ``revalidate`` re-reads files whose fingerprint matches; ``rehash`` also re-hashes them.
    Raises FileNotFoundError when the image vanished meanwhile."""
    img_abs = root / pair.image
    isz, imt = fingerprint(img_abs)
    mfp = None
    if pair.mask is not None:
        try:
            mfp = fingerprint(root / pair.mask)
        except OSError:
            mfp = None  # vanished meanwhile: validated (and reported) below
    img_same = row is not None and row.img_size == isz and row.img_mtime_ns == imt
    mask_same = row is not None and row.mask_path == pair.mask and (
        pair.mask is None or (mfp is not None and row.mask_size == mfp[0]
                              and row.mask_mtime_ns == mfp[1]))
    if img_same and mask_same and not (revalidate or rehash) and dup is None and not (
            row.status == "error" and (row.error or "").startswith(DUP_PREFIX)):
        return None, None

    if img_same and row.img_sha256 and not rehash:
        img_sha = row.img_sha256
    else:
        img_sha = sha256_file(img_abs)
        report.hashed += 1
    error = dup
    w = h = None
    try:
        w, h, _mode = image_info(img_abs, decode=not img_same or revalidate or rehash
                                 or row.status == "error")
    except ImageError as e:
        error = error or str(e)

    mask_sha = None
    msz = mmt = None
    mask_ok = False
    if pair.mask is not None:
        mask_abs = root / pair.mask
        try:
            if mfp is None:
                mfp = fingerprint(mask_abs)
            msz, mmt = mfp
            if mask_same and row.mask_sha256 and not rehash:
                mask_sha = row.mask_sha256
            else:
                mask_sha = sha256_file(mask_abs)
                report.hashed += 1
            if w is not None:
                read_mask(mask_abs, cfg.project.codes, expect_shape=(h, w))
                mask_ok = True
        except MaskError as e:
            error = error or str(e)
        except OSError as e:
            error = error or f"{mask_abs}: cannot read mask: {e.strerror or e}"

    fields: dict[str, Any] = dict(
        mask_path=pair.mask, width=w, height=h, img_size=isz, img_mtime_ns=imt,
        img_sha256=img_sha, mask_size=msz, mask_mtime_ns=mmt, mask_sha256=mask_sha,
        error=rel_msg(error, root) if error else None)
    prev = row.status if row is not None else None
    if pair.mask is None:
        # the mask went away: its decision is kept with its hash, for the mask coming back
        # (a layout changed and changed back, a masks folder moved out and in again)
        if row is not None and row.mask_sha256 and prev in KEPT_STATUSES:
            fields.update(kept_status=prev, kept_mask_sha=row.mask_sha256)
    else:
        fields.update(kept_status=None, kept_mask_sha=None)
    if error:
        fields["status"] = "error"
    elif pair.mask is None:
        fields["status"] = "no-mask"
    elif row is not None and row.mask_sha256 is None and row.kept_mask_sha == mask_sha:
        fields["status"] = row.kept_status  # the same mask is back: so is its decision
    elif row is None or row.mask_sha256 is None:
        fields["status"] = "unreviewed"
    elif mask_sha != row.mask_sha256:
        fields["status"] = "edited"
    elif row.img_sha256 and img_sha != row.img_sha256:
        fields["status"] = "unreviewed"
    elif prev in ("no-mask", "error"):
        fields["status"] = "unreviewed"
    # else: keep the person's status (not written, so a decision made meanwhile survives)
    return fields, (mask_sha if mask_ok else None)


def duplicate_names(disc: Discovery) -> dict[str, str]:
    return {p: DUP_PREFIX + m for p, k, m in disc.problems if k == "duplicate-name"}



def moved_here(root: Path, store, pair: Pair, vanished: dict | None = None):
    """The row of an image that moved to ``pair.image`` (renamed, or moved to another
    folder), renamed to it; None for a new image. A move keeps size and mtime: rows with the
    same fingerprint whose file is gone are candidates (``vanished``, by fingerprint, from a
    scan; else a few from the store), and the content must match too."""
    try:
        fp = fingerprint(root / pair.image)
    except OSError:
        return None
    if vanished is not None:
        cands = vanished.get(fp, [])
    elif not store.images_by_fingerprint(*fp, limit=1):
        return None
    else:  # the watcher: same fingerprint and content (an unpacked batch shares mtimes)
        try:
            cands = store.images_by_fingerprint(*fp, sha256=sha256_file(root / pair.image))
        except OSError:
            return None
    sha = None
    for cand in cands:
        if cand.path == pair.image or (root / cand.path).exists():
            continue
        try:
            sha = sha or sha256_file(root / pair.image)
        except OSError:
            return None
        if cand.img_sha256 != sha or not store.move_image(cand.path, pair.image,
                                                             pair.mask):
            continue
        if vanished is not None:
            vanished[fp].remove(cand)
        log.info("%s moved to %s: its row goes along", cand.path, pair.image)
        return store.image(pair.image)
    return None


def still_an_image(root: Path, cfg, kind: str, rel: str) -> bool:
    """True for an image created again since the walk passed it (the engine indexed it
    meanwhile); a file that stopped being data (a new ignore pattern, an extension dropped)
    is not one, and its row goes."""
    return (root / rel).is_file() and layout.classify(rel, cfg, kind)[0] == "image"


def hidden_mask_dirs(root: Path, cfg, kind: str, problems) -> list[str]:
    """Folders whose masks cannot be seen now: a split layout's masks folder that is missing,
    and every folder that could not be listed."""
    dirs = [p for p, k, _m in problems if k == "unreadable"]
    masks_dir = layout.norm_rel(cfg.layout.masks_dir)
    if kind == "split" and not (Path(root) / masks_dir).is_dir():
        dirs.append(masks_dir)
    return dirs


def mask_out_of_sight(root: Path, pair, row, hidden: list[str]) -> bool:
    """A row whose mask lies in a folder that cannot be seen keeps its mask, hash and the
    person's decision: without this, a masks folder on a disk unmounted for a moment turned
    every row 'no-mask', and 'unreviewed' when it came back (accepted and flagged lost)."""
    if pair.mask is not None or row is None or not row.mask_path:
        return False
    m = row.mask_path
    if any(d == "." or m == d or m.startswith(d + "/") for d in hidden):
        return True
    # the watcher's re-index sees no folder problems: a mask folder that cannot be listed
    # now (permissions, I/O) or lies behind a broken link (an unmounted disk) hides the mask
    # too; a folder simply deleted or renamed does not
    folder = root / os.path.dirname(m)
    try:
        with os.scandir(folder):
            return False
    except FileNotFoundError:
        p = folder
        while p != root and root in p.parents:
            if p.is_symlink() and not p.exists():
                return True
            p = p.parent
        return False
    except OSError:
        return True
