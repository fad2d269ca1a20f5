"""07 BACKUP: a content-addressed object store, snapshots, verify, restore and prune.

Layout of a backup destination (default ``<state_dir>/backups``; better on another disk)::

    objects/ab/cdef…        one file per distinct content, named by its sha256, read-only
    snapshots/<id>.json     one manifest per snapshot: {relpath: {sha, size}}, masks, models
    tmp/                    files being written (renamed into objects/ when complete)
    lock                    flock: writers share it, prune takes it alone
    owner.json              the one project that writes here: {"project": id, "root": path}
                            (one inside the project folder without it is the project's)

Safety rules this module keeps:
- Every write is temp file + fsync + rename, and an object is re-hashed after it is written, so a
  crash or a full disk leaves no half object under its final name.
- A manifest is written last: a snapshot that did not finish does not exist. Objects it had
  already stored are valid, merely unreferenced, and ``prune`` collects them.
- Restore re-hashes every object before it writes anything and writes each file atomically; the
  file it replaces is stored first, so a restore can be undone.
- Objects referenced by mask history (``mask_versions``) are never garbage-collected.
- One project per destination (``owner.json``, checked by every writer): prune collects what
  no manifest and no history row of *this* project references, and another project's history
  rows live in another database, so a shared destination would lose them.

No torch or fastai here: clients import this module.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from ..imageio import sha256_file
from ..layout import _is_within

log = logging.getLogger(__name__)

CHUNK = 1 << 20
MANIFEST_FORMAT = 1
CONFIG_NAME = "segtriage.toml"
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")

Progress = Callable[[float, str], Any]


class BackupError(RuntimeError):
    """A backup operation failed; the message names the destination or file and the cause."""


# -- small file helpers ------------------------------------------------------------------------

def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _utc_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _safe_rel(rel: str) -> str:
    """A manifest path must stay inside the folder it is restored into."""
    p = Path(rel)
    if not rel or p.is_absolute() or ".." in p.parts:
        raise BackupError(f"refusing unsafe path {rel!r} in a snapshot manifest")
    return rel


def _in_the_way(path: str | os.PathLike | None) -> str | None:
    """The file that keeps ``path`` from being a folder: the first part of it, from the top,
    that exists and is not a folder (mkdir reports the path it was asked for, say
    /x/afile/sub, though the file in the way is /x/afile). ``path`` itself when none is."""
    if path is None:
        return None
    p = Path(os.fsdecode(path))
    for q in [*reversed(p.parents), p]:
        if os.path.lexists(q) and not q.is_dir():
            return str(q)
    return str(p)


def _dest_error(dest: Path, e: OSError, doing: str) -> BackupError:
    """Turn an OSError raised while writing the destination into a message a person can act on."""
    where = f"backup destination {dest}"
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        msg = (f"{where} is full (no space left on device) while {doing}; free space there or "
               "set [backup] destination in segtriage.toml to another disk")
    elif e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        msg = f"{where} is not writable ({e.strerror}) while {doing}"
    elif e.errno in (errno.ENOTDIR, errno.EEXIST):
        msg = (f"{where} is not a folder (a file is in the way: {_in_the_way(e.filename)}) "
               f"while {doing}")
    else:
        msg = f"{where}: {e.strerror or e} while {doing}"
    return BackupError(msg)


# -- the object store ------------------------------------------------------------------------

# (dest, project, root) → owner.json's stamp when it was found to be ours
_CLAIMED: dict[tuple[str, str | None, str], tuple[int, int] | None] = {}


def _whole(manifests: list[dict]) -> list[dict]:
    """Snapshots of the whole folder, without the files restores kept ("partial")."""
    return [m for m in manifests if not m.get("partial")]


def _stamp(f: Path) -> tuple[int, int] | None:
    try:
        st = f.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


class ObjectStore:
    """Files stored once each under their sha256. Nothing is created until the first write."""

    def __init__(self, dest: Path | str, owner: dict | None = None):
        """``owner`` (``owner_of``): the project that writes; every ``lock()`` checks the
        destination is its own (``owner.json``)."""
        self.dest = Path(dest)
        self.owner = owner
        self.objects_dir = self.dest / "objects"
        self.snapshots_dir = self.dest / "snapshots"
        self.tmp_dir = self.dest / "tmp"

    def __repr__(self) -> str:
        return f"ObjectStore({str(self.dest)!r})"

    # -- paths and lookups
    def path(self, sha: str) -> Path:
        if not _SHA_RE.match(sha):
            raise BackupError(f"not a sha256: {sha!r}")
        return self.objects_dir / sha[:2] / sha[2:]

    def has(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def get(self, sha: str) -> Path:
        p = self.path(sha)
        if not p.is_file():
            raise BackupError(f"object {sha} is missing from {self.dest}")
        return p

    def verify_object(self, sha: str) -> bool:
        """Re-hash one object: True when it is present and its content matches its name."""
        try:
            return sha256_file(self.path(sha)) == sha
        except OSError:
            return False

    def iter_objects(self) -> Iterator[str]:
        if not self.objects_dir.is_dir():
            return
        for sub in sorted(self.objects_dir.iterdir()):
            if not sub.is_dir() or len(sub.name) != 2:
                continue
            for f in sorted(sub.iterdir()):
                sha = sub.name + f.name
                if _SHA_RE.match(sha) and f.is_file():
                    yield sha

    # -- locking: writers share the lock, prune (garbage collection) holds it alone
    @contextmanager
    def lock(self, exclusive: bool = False) -> Iterator[None]:
        self._ensure_dirs("locking")
        try:
            fd = os.open(self.dest / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise _dest_error(self.dest, e, "locking") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            if self.owner is not None:
                self._claim()
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def _claim(self) -> None:
        """Refuse a destination that belongs to another project; take a new or unowned one.
        The same project id (a moved folder) or the same folder (a wiped .segtriage/, then a
        restore) is the same project, and the record follows it."""
        st = self.owner.get("store")
        project = st.project_id() if st is not None else None
        key = (str(self.dest), project, str(self.owner["root"]))
        f = self.dest / "owner.json"
        if key in _CLAIMED and _CLAIMED[key] == _stamp(f):
            return  # owner.json as this process wrote or read it: a scan writes thousands
        me = {"project": project, "root": str(Path(self.owner["root"]).resolve())}
        try:
            cur = json.loads(f.read_text(encoding="utf-8"))
        except FileNotFoundError:
            cur = None
        except (OSError, ValueError) as e:
            raise BackupError(f"{f}: unreadable ({e}); it names the project that owns this "
                              "backup destination: fix or remove it") from None
        if self.owner.get("take_over"):
            pass  # `segtriage backup DIR --take-over`: the person says it is this project's
        elif cur is not None:
            if not ((me["project"] and cur.get("project") == me["project"])
                    or cur.get("root") == me["root"]):
                raise self._shared(cur.get("root") or "another project")
        elif not _is_within(str(self.dest.resolve()), me["root"]):
            # written before owner.json: the folders its snapshots name. One that is gone may
            # be on a disk unplugged now, or on another machine: unsure, so refused. (Inside
            # the project folder, the default, it moved or was restored with the project.)
            good, _bad = self.manifests()
            others = sorted({m["root"] for m in _whole(good) if m.get("root")} - {me["root"]})
            if others:
                raise self._shared(others[0])
        if cur != me:
            tmp = self.dest / f".owner-{secrets.token_hex(4)}"
            try:
                tmp.write_text(json.dumps(me, indent=1), encoding="utf-8")
                os.replace(tmp, f)
            except OSError as e:
                tmp.unlink(missing_ok=True)
                raise _dest_error(self.dest, e, "recording the owner") from None
        _CLAIMED[key] = _stamp(f)

    def _shared(self, other: str) -> BackupError:
        me = Path(self.owner["root"]).resolve()
        return BackupError(
            f"backup destination {self.dest} belongs to {other}; segtriage keeps one project "
            "per destination, so that pruning or restoring one never touches another's files. "
            f"Set [backup] destination of {me} to a folder of its own (e.g. "
            f"{self.dest.parent / (me.name + '-backups')}). If {other} is this project before "
            "a move, or no longer backs up there, `segtriage backup DIR --take-over` makes the "
            "destination this project's")

    # -- writing (the two methods below are the seams the fault tests patch)
    def _ensure_dirs(self, doing: str) -> None:
        try:
            for d in (self.dest, self.objects_dir, self.snapshots_dir, self.tmp_dir):
                d.mkdir(mode=0o700, parents=True, exist_ok=True)  # private, like .segtriage/
        except OSError as e:
            raise _dest_error(self.dest, e, doing) from None

    def _open_temp(self, directory: Path):
        """A new, exclusive temp file in ``directory``; returns (file object, path)."""
        p = directory / f".tmp-{os.getpid()}-{secrets.token_hex(6)}"
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        return os.fdopen(fd, "wb"), p

    def _write(self, fh, data: bytes) -> None:
        fh.write(data)

    def _write_temp(self, chunks, directory: Path, doing: str) -> tuple[Path, str, int]:
        """Write chunks to a fsynced temp file; returns (temp path, sha256, size).

        OSErrors from the destination become BackupError; the temp file never survives a
        failure. OSErrors raised by ``chunks`` (reading the source) pass through unchanged.
        """
        self._ensure_dirs(doing)
        try:
            fh, tmp = self._open_temp(directory)
        except OSError as e:
            raise _dest_error(self.dest, e, doing) from None
        h, size = hashlib.sha256(), 0
        try:
            with fh:
                for chunk in chunks:
                    h.update(chunk)
                    size += len(chunk)
                    try:
                        self._write(fh, chunk)
                    except OSError as e:
                        raise _dest_error(self.dest, e, doing) from None
                try:
                    fh.flush()
                    os.fsync(fh.fileno())
                except OSError as e:
                    raise _dest_error(self.dest, e, doing) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp, h.hexdigest(), size

    def _commit_object(self, tmp: Path, sha: str, size: int, doing: str) -> int:
        """Move a written temp file to its object name after re-hashing what is on disk."""
        try:
            if self.has(sha):
                return 0
            if sha256_file(tmp) != sha:
                raise BackupError(f"{self.dest}: the copy written while {doing} does not match "
                                  "what was read (disk or memory error); nothing was stored")
            target = self.path(sha)
            target.parent.mkdir(exist_ok=True)
            os.chmod(tmp, 0o444)  # objects are never modified in place
            os.replace(tmp, target)
            _fsync_dir(target.parent)
            return size
        except OSError as e:
            raise _dest_error(self.dest, e, doing) from None
        finally:
            tmp.unlink(missing_ok=True)

    def put_file(self, path: Path | str) -> tuple[str, int]:
        """Store a file (streamed); returns (sha256, bytes added: 0 when already stored).

        The source is hashed first so an unchanged file costs one read and no write.
        Reading errors on the source raise OSError naming it; destination errors BackupError.
        """
        path = Path(path)
        sha = sha256_file(path)
        if self.has(sha):
            return sha, 0

        def chunks():
            with open(path, "rb") as f:
                while c := f.read(CHUNK):
                    yield c

        doing = f"storing {path}"
        # if the file changed since it was hashed, what was read (and written) is stored
        tmp, sha, size = self._write_temp(chunks(), self.tmp_dir, doing)
        return sha, self._commit_object(tmp, sha, size, doing)

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        sha = hashlib.sha256(data).hexdigest()
        if self.has(sha):
            return sha, 0
        doing = "storing snapshot metadata"
        tmp, sha, size = self._write_temp([data], self.tmp_dir, doing)
        return sha, self._commit_object(tmp, sha, size, doing)

    def copy_out(self, sha: str, target: Path) -> None:
        """Write an object to ``target`` byte-identically and atomically.

        The copy is hashed while it is written and only renamed over ``target`` when the hash
        matches, so a corrupt object never replaces a file and no half file is ever visible.
        """
        src = self.get(sha)
        # hidden and ending in .tmp: the folder scanner ignores it
        tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
        h = hashlib.sha256()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                mode = target.stat().st_mode & 0o7777  # keep the permissions of what it replaces
            except FileNotFoundError:
                mode = 0o644
            with open(src, "rb") as f, open(tmp, "xb") as out:
                while c := f.read(CHUNK):
                    h.update(c)
                    out.write(c)
                out.flush()
                os.fsync(out.fileno())
            if h.hexdigest() != sha:
                raise BackupError(f"stored copy of {target} (object {sha[:12]}) is corrupt: "
                                  "refusing to restore it; run `segtriage verify`")
            os.chmod(tmp, mode)
            os.replace(tmp, target)
            _fsync_dir(target.parent)
        except OSError as e:
            raise BackupError(f"cannot restore {target}: {e.strerror or e}"
                              f"{f' ({e.filename})' if e.filename else ''}") from None
        finally:
            tmp.unlink(missing_ok=True)

    # -- manifests
    def write_manifest(self, snap_id: str, manifest: dict) -> Path:
        data = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
        doing = f"writing snapshot manifest {snap_id}"
        tmp, _sha, _size = self._write_temp([data], self.snapshots_dir, doing)
        final = self.snapshots_dir / f"{snap_id}.json"
        try:
            os.replace(tmp, final)
            _fsync_dir(self.snapshots_dir)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise _dest_error(self.dest, e, doing) from None
        return final

    def manifests(self) -> tuple[list[dict], list[dict]]:
        """(valid manifests oldest first, [{file, error}] for unreadable ones)."""
        good, bad = [], []
        if not self.snapshots_dir.is_dir():
            return good, bad
        for f in self.snapshots_dir.glob("*.json"):
            try:
                m = json.loads(f.read_text(encoding="utf-8"))
                if not isinstance(m, dict) or not isinstance(m.get("files"), dict):
                    raise ValueError("not a segtriage snapshot manifest")
                m["id"] = f.stem
                good.append(m)
            except (OSError, ValueError) as e:
                bad.append({"file": str(f), "error": str(e)})
        good.sort(key=lambda m: (m.get("created_ts", 0.0), m["id"]))
        return good, bad


# -- destination and config ------------------------------------------------------------------

def default_destination(root: Path | str, cfg) -> Path:
    """``[backup] destination`` (relative to the data folder, ``~`` expanded) or
    ``<state_dir>/backups``."""
    d = (cfg.backup.destination or "").strip()
    if not d:
        return cfg.state_path(root) / "backups"
    p = Path(d).expanduser()
    return p if p.is_absolute() else Path(root) / p


def owner_of(root: Path | str, store=None, take_over: bool = False) -> dict:
    """Who writes to a destination: the project's folder and state (its id is read, or made,
    only when something is written); ``take_over``: make it this project's whoever had it."""
    # the root is resolved in _claim, once per process
    return {"root": Path(root), "store": store, "take_over": take_over}


def _open_store(root: Path, cfg, dest: Path | str | None, store=None,
                take_over: bool = False) -> ObjectStore:
    return ObjectStore(Path(dest) if dest is not None else default_destination(root, cfg),
                       owner=owner_of(root, store, take_over))


def _new_snapshot_id(ts: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(ts)) + "-" + secrets.token_hex(2)


# -- snapshot --------------------------------------------------------------------------------

def _data_files(root: Path, cfg, store) -> tuple[list[str], set[str]]:
    """Every image and mask relpath (index rows and files on disk, orphan and duplicate masks
    included: they are still someone's annotation); and the set of masks among them."""
    from ..layout import discover

    images: set[str] = set()
    masks: set[str] = set()
    for r in store.images():
        images.add(r["path"])
        if r["mask_path"]:
            masks.add(r["mask_path"])
    disc = discover(root, cfg)
    for pair in disc.pairs:
        images.add(pair.image)
        if pair.mask:
            masks.add(pair.mask)
    masks.update(disc.orphan_masks)
    masks.update(p for p, kind, _msg in disc.problems if kind == "duplicate-mask")
    return sorted(images | masks), masks


def _model_files(cfg, root: Path, store=None) -> list[tuple[str, Path]]:
    models = cfg.state_path(root) / "models"
    if not models.is_dir():
        return []
    # weights of trainings that did not finish belong to no model (runner.unfinished_weights;
    # the engine deletes them at start): a cancelled crossval's folds went into every snapshot
    if store is not None:
        from ...daemon.jobs import unfinished_weights  # the engine's side; no torch at import

        orphans = unfinished_weights(models, store)
    else:
        orphans = set()
    out = []
    for p in sorted(models.rglob("*")):
        rel = p.relative_to(models)
        # skip what a running training writes: temp files, its frozen masks (.train-masks-*)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts) \
                and ".tmp" not in p.name and rel.as_posix() not in orphans:
            out.append((rel.as_posix(), p))
    return out


def snapshot(root: Path | str, cfg, store, *, dest: Path | str | None = None,
             note: str | None = None, progress: Progress | None = None,
             job_id: int | None = None, include_models: bool = True,
             take_over: bool = False) -> dict:
    """Store every image, mask, ``segtriage.toml`` and the model metadata (and the weights of
    every model version: all of ``models/`` but the files of trainings that did not finish);
    write the manifest last; record the snapshot in ``backups``. Returns the manifest summary.

    Raises BackupError (no manifest written, nothing recorded) when the destination is full,
    read-only or not a folder. Source files that vanish or cannot be read are listed in
    ``skipped`` instead of failing the whole snapshot.
    """
    root = Path(root)
    obj = _open_store(root, cfg, dest, store, take_over)
    report = progress or (lambda f, m: None)
    rels, mask_set = _data_files(root, cfg, store)
    if (root / CONFIG_NAME).is_file():
        rels.append(CONFIG_NAME)
    model_files = _model_files(cfg, root, store) if include_models else []
    total = len(rels) + len(model_files) + 1
    files: dict[str, dict] = {}
    model_entries: dict[str, dict] = {}
    skipped: list[dict] = []
    added = 0
    ts = time.time()
    snap_id = _new_snapshot_id(ts)
    report(0.0, f"snapshot {snap_id}: {total} files")
    with obj.lock():
        previous = _whole(obj.manifests()[0])
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
        meta = json.dumps({"current": store.current_model_id(), "models": store.models()},
                          sort_keys=True, default=str).encode("utf-8")
        meta_sha, n = obj.put_bytes(meta)
        added += n
        masks = sorted(r for r in files if r in mask_set)
        masks_changed = _masks_changed(files, masks, prev)
        manifest = {
            "format": MANIFEST_FORMAT, "id": snap_id, "created_ts": ts,
            "created_at": _utc_iso(ts), "root": str(root.resolve()), "note": note,
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
                   store=None) -> list[dict]:
    """Snapshots oldest first, from the manifests (the source of truth). ``recorded`` says
    whether this project's ``backups`` table knows the snapshot (pass ``store`` to join);
    unreadable manifests appear with an ``error`` key."""
    obj = _open_store(Path(root), cfg, dest, store)
    good, bad = obj.manifests()
    rows = {}
    if store is not None:
        rows = {r["snapshot"]: r for r in store.backups()}
    out = []
    for m in good:
        s = _summary(m, obj.dest)
        r = rows.get(m["id"])
        s["recorded"] = r is not None
        if r is not None and s["note"] is None:
            s["note"] = r["note"]
        out.append(s)
    out += [{"id": Path(b["file"]).stem, "error": b["error"], "destination": str(obj.dest)}
            for b in bad]
    return out


def backup_status(store) -> dict:
    """For `status` and the TUI's status pane: the last snapshot and masks changed since."""
    last = store.last_backup()
    since = last["created_at"] if last is not None else None
    return {"last_snapshot": last["snapshot"] if last is not None else None,
            "last_time": _utc_iso(since) if since is not None else None,
            "last_ts": since, "destination": last["destination"] if last is not None else None,
            "masks_changed_since": store.mask_edits_since(since)}


def resolve_snapshot(obj: ObjectStore, snapshot_id: str) -> dict:
    """A manifest by exact id, unique id prefix, or ``latest``."""
    good, _bad = obj.manifests()
    if not good:
        raise BackupError(f"no snapshots in {obj.dest}")
    if snapshot_id == "latest":  # the newest whole snapshot, not what a restore kept
        whole = _whole(good)
        if not whole:
            raise BackupError(f"no whole snapshot in {obj.dest} (only files kept by restores)")
        return whole[-1]
    hits = [m for m in good if m["id"] == snapshot_id] or [
        m for m in good if m["id"].startswith(snapshot_id)]
    if len(hits) != 1:
        what = "no snapshot" if not hits else f"{len(hits)} snapshots match"
        raise BackupError(f"{what} {snapshot_id!r} in {obj.dest} (see `segtriage backups`)")
    return hits[0]


# -- verify ----------------------------------------------------------------------------------

@dataclass
class VerifyReport:
    destination: Path
    snapshots: int = 0
    objects: int = 0
    bytes: int = 0
    missing: list[dict] = field(default_factory=list)   # {sha, refs: [...]}
    corrupt: list[dict] = field(default_factory=list)   # {sha, refs: [...]}
    bad_manifests: list[dict] = field(default_factory=list)  # {file, error}

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupt or self.bad_manifests)

    def to_dict(self) -> dict:
        return {"destination": str(self.destination), "ok": self.ok,
                "snapshots": self.snapshots, "objects": self.objects, "bytes": self.bytes,
                "missing": self.missing, "corrupt": self.corrupt,
                "bad_manifests": self.bad_manifests}

    def lines(self) -> list[str]:
        out = [f"{self.destination}: {self.snapshots} snapshots, {self.objects} objects, "
               f"{self.bytes} bytes re-hashed"]
        for kind, items in (("MISSING", self.missing), ("CORRUPT", self.corrupt)):
            for it in items:
                refs = ", ".join(it["refs"][:5]) + (" …" if len(it["refs"]) > 5 else "")
                out.append(f"{kind} object {it['sha'][:12]} used by {refs or 'nothing'}")
        for b in self.bad_manifests:
            out.append(f"UNREADABLE manifest {b['file']}: {b['error']}")
        out.append("ok" if self.ok else "FAILED: the backup store is damaged")
        return out


def _references(obj: ObjectStore, manifests: list[dict], store) -> dict[str, list[str]]:
    """sha → human-readable references ("<snapshot>:<path>", "history:<path>#<n>")."""
    refs: dict[str, list[str]] = {}
    for m in manifests:
        for rel, e in m.get("files", {}).items():
            refs.setdefault(e["sha"], []).append(f"{m['id']}:{rel}")
        models = m.get("models", {})
        if models.get("meta"):
            refs.setdefault(models["meta"], []).append(f"{m['id']}:<model metadata>")
        for rel, e in models.get("files", {}).items():
            refs.setdefault(e["sha"], []).append(f"{m['id']}:models/{rel}")
    if store is not None:
        for r in store.mask_version_refs():
            refs.setdefault(r["sha256"], []).append(f"history:{r['path']}#{r['id']}")
    return refs


def _history_store_of(root: Path, cfg, obj: ObjectStore, store):
    """The project store when ``obj`` is where the mask history lives, else None (objects of
    the history are not expected in another destination)."""
    if obj.dest.resolve() != default_destination(root, cfg).resolve():
        return None
    if store is None:
        from ...store import Store, StoreError
        try:
            store = Store(cfg.state_path(root) / "state.db", create=False, readonly=True)
        except StoreError:
            return None
    return store


def verify(root: Path | str, cfg, dest: Path | str | None = None, *, store=None,
           progress: Progress | None = None) -> VerifyReport:
    """Re-hash every stored object; report missing and corrupt ones with what uses them,
    including the mask history's objects when ``dest`` is the history's destination."""
    root = Path(root)
    obj = _open_store(root, cfg, dest, store)
    good, bad = obj.manifests()
    rep = VerifyReport(destination=obj.dest, snapshots=len(good), bad_manifests=bad)
    refs = _references(obj, good, _history_store_of(root, cfg, obj, store))
    present = list(obj.iter_objects())
    for i, sha in enumerate(present):
        rep.objects += 1
        try:
            rep.bytes += obj.path(sha).stat().st_size
        except OSError:
            pass
        if not obj.verify_object(sha):
            rep.corrupt.append({"sha": sha, "refs": refs.get(sha, [])})
        if progress and i % 64 == 0:
            progress(i / max(1, len(present)), f"verified {i}/{len(present)} objects")
    have = set(present)
    rep.missing = [{"sha": s, "refs": r} for s, r in sorted(refs.items()) if s not in have]
    return rep


# -- restore ---------------------------------------------------------------------------------

def restore(root: Path | str, cfg, store, snapshot_id: str, *, to: Path | str | None = None,
            dest: Path | str | None = None, progress: Progress | None = None,
            include_models: bool = False) -> dict:
    """Restore a snapshot byte-identically into ``root`` (or into ``to``).

    Every object needed is re-hashed before anything is written: one corrupt object and the
    restore refuses, naming the file. A file that differs is stored first (and, for a mask
    restored in place, versioned in the mask history) before it is replaced. Files present now
    but absent from the snapshot are left alone.
    """
    from ..history import save_mask_version  # history builds on this module

    root = Path(root)
    target = Path(to) if to is not None else root
    in_place = target.resolve() == root.resolve()
    obj = _open_store(root, cfg, dest, store)
    report = progress or (lambda f, m: None)
    with obj.lock():
        m = resolve_snapshot(obj, snapshot_id)
        masks = set(m.get("masks", []))
        todo: list[tuple[str, Path, str]] = []  # (label, target path, sha)
        unchanged = 0
        entries = [(rel, target / _safe_rel(rel), e["sha"]) for rel, e in m["files"].items()]
        if include_models:
            mdir = cfg.state_path(target) / "models"
            entries += [(f"models/{rel}", mdir / _safe_rel(rel), e["sha"])
                        for rel, e in m.get("models", {}).get("files", {}).items()]
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
                if in_place and label in masks:
                    save_mask_version(root, cfg, store, label, "scan")
                old_sha, _n = obj.put_file(path)
                kept.append({"path": label, "sha": old_sha})
        undo = _write_kept(obj, store, kept, masks, m["id"], target) if kept else None
        for i, (label, path, sha) in enumerate(todo):
            obj.copy_out(sha, path)
            if in_place and label in masks:
                save_mask_version(root, cfg, store, label, "restore")
            report((i + 1) / max(1, len(todo)), f"restored {label}")
    out = {"snapshot": m["id"], "target": str(target), "files": len(entries),
           "restored": len(todo), "unchanged": unchanged, "kept": kept, "undo": undo}
    if in_place:
        store.add_event("restore", {"snapshot": m["id"], "restored": len(todo), "kept": kept})
        if todo:
            data = {label for label, _p, _s in todo if not label.startswith("models/")}
            out["index_error"] = _index_restored(root, cfg, store, data)
    return out


def _index_restored(root: Path, cfg, store, restored: set[str]) -> str | None:
    """Index what a restore wrote as a scan of those files would: a restored mask that is
    unusable (another size than its image, values of no class) makes its row ``error`` with
    the reason, a usable one clears an earlier error (``edited`` when its content differs from
    the row's). Writing the new fingerprints into the rows instead, as before, made every
    later scan skip those files as unchanged. One scan of the folder (a stat per file), not
    one re-index per file: a restore may write thousands of masks into one folder. The
    restore is done when this runs, so a failure is returned (and logged), not raised."""
    from ..config import CONFIG_NAME, ConfigError, load_config
    from ..index import scan  # index builds on history, which builds on this module

    if CONFIG_NAME in restored:  # the masks are checked against the config they came with
        try:
            cfg = load_config(root)
        except ConfigError as e:
            log.warning("restore: the restored %s is not valid: %s", CONFIG_NAME, e)
            return f"the restored files are not indexed yet: {e}; fix it and run `segtriage scan`"
    try:
        scan(root, cfg, store, recheck=restored)
    except Exception as e:  # noqa: BLE001 - the files are restored; the next scan indexes them
        log.warning("restore: indexing the restored files failed: %s", e)
        return f"the restored files are not indexed yet ({e}); run `segtriage scan`"
    return None


def _write_kept(obj: ObjectStore, store, kept: list[dict], masks: set[str], restoring: str,
                target: Path) -> str:
    """A manifest of the files a restore is about to replace (only those: restoring it puts
    them back). Returns its snapshot id."""
    ts = time.time()
    snap_id = _new_snapshot_id(ts)
    note = f"before restoring {restoring}"
    files = {k["path"]: {"sha": k["sha"], "size": obj.path(k["sha"]).stat().st_size}
             for k in kept if not k["path"].startswith("models/")}
    models = {k["path"][len("models/"):]: {"sha": k["sha"],
                                           "size": obj.path(k["sha"]).stat().st_size}
              for k in kept if k["path"].startswith("models/")}
    obj.write_manifest(snap_id, {
        "format": MANIFEST_FORMAT, "id": snap_id, "created_ts": ts, "created_at": _utc_iso(ts),
        "root": str(target.resolve()), "note": note, "job_id": None, "files": files,
        "masks": sorted(p for p in files if p in masks), "models": {"files": models},
        "bytes_added": 0, "masks_changed": 0, "previous": None, "skipped": [],
        "partial": True})
    store.add_backup(destination=str(obj.dest), snapshot=snap_id, files=len(kept),
                     bytes_added=0, masks_changed=0, job_id=None, note=note, partial=True)
    return snap_id


# -- prune -----------------------------------------------------------------------------------

def prune(root: Path | str, cfg, *, keep: int, dest: Path | str | None = None,
          store=None) -> dict:
    """Delete all but the newest ``keep`` snapshots, then delete objects referenced by no
    remaining snapshot and by no mask-history row. ``keep`` must be at least 1."""
    if keep < 1:
        raise BackupError("prune --keep must be at least 1 (segtriage never deletes every "
                          "snapshot)")
    root = Path(root)
    if store is None:
        from ...store import Store
        store = Store.open(root, state_dir=cfg.project.state_dir)
    obj = _open_store(root, cfg, dest, store)
    if not obj.dest.is_dir():
        return {"kept": [], "deleted": [], "objects_deleted": 0, "bytes_freed": 0}
    with obj.lock(exclusive=True):
        good, bad = obj.manifests()
        if bad:
            # an unreadable manifest may reference anything: collecting garbage could destroy it
            raise BackupError(f"{obj.dest} has unreadable manifests ({bad[0]['file']}): "
                              "fix or remove them before pruning")
        # keep the newest `keep` whole snapshots, and what restores kept since the oldest
        whole = _whole(good)
        cutoff = whole[-keep]["created_ts"] if len(whole) >= keep else float("-inf")
        stay = [m for m in good if m["created_ts"] >= cutoff]
        drop = [m for m in good if m["created_ts"] < cutoff]
        for m in drop:
            (obj.snapshots_dir / f"{m['id']}.json").unlink(missing_ok=True)
        _fsync_dir(obj.snapshots_dir)
        live = set(_references(obj, stay, store))
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
