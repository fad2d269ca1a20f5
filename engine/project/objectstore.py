"""The content-addressed object store of a backup destination, and who may write to it.

Backups (backup/) and the mask history (versions.py) keep their files here.

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
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from ..store import Store
from .config import Config
from .imageio import sha256_file
from .layout import is_within

log = logging.getLogger(__name__)

CHUNK = 1 << 20
MANIFEST_FORMAT = 1
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")

Progress = Callable[[float, str], Any]


class BackupError(RuntimeError):
    """A backup operation failed; the message names the destination or file and the cause."""


# -- small file helpers ------------------------------------------------------------------------

def fsync_dir(d: Path) -> None:
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


def utc_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def safe_rel(rel: str) -> str:
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


def whole_snapshots(manifests: list[dict]) -> list[dict]:
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

    def __init__(self, dest: Path | str, owner: Owner | None = None):
        """``owner``: the project that writes; every ``lock()`` checks the
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
        st = self.owner.store
        project = st.project_id() if st is not None else None
        key = (str(self.dest), project, str(self.owner.root))
        f = self.dest / "owner.json"
        if key in _CLAIMED and _CLAIMED[key] == _stamp(f):
            return  # owner.json as this process wrote or read it: a scan writes thousands
        me = {"project": project, "root": str(Path(self.owner.root).resolve())}
        try:
            cur = json.loads(f.read_text(encoding="utf-8"))
        except FileNotFoundError:
            cur = None
        except (OSError, ValueError) as e:
            raise BackupError(f"{f}: unreadable ({e}); it names the project that owns this "
                              "backup destination: fix or remove it") from None
        if self.owner.take_over:
            pass  # `segtriage backup DIR --take-over`: the person says it is this project's
        elif cur is not None:
            if not ((me["project"] and cur.get("project") == me["project"])
                    or cur.get("root") == me["root"]):
                raise self._shared(cur.get("root") or "another project")
        elif not is_within(str(self.dest.resolve()), me["root"]):
            # written before owner.json: the folders its snapshots name. One that is gone may
            # be on a disk unplugged now, or on another machine: unsure, so refused. (Inside
            # the project folder, the default, it moved or was restored with the project.)
            good, _bad = self.manifests()
            others = sorted({m["root"] for m in whole_snapshots(good) if m.get("root")} - {me["root"]})
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
        me = Path(self.owner.root).resolve()
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
            fsync_dir(target.parent)
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
            fsync_dir(target.parent)
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
            fsync_dir(self.snapshots_dir)
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
                _check_manifest(m)
                m["id"] = f.stem
                good.append(m)
            except (OSError, ValueError) as e:
                bad.append({"file": str(f), "error": str(e)})
        good.sort(key=lambda m: (m.get("created_ts", 0.0), m["id"]))
        return good, bad


def _is_sha(v: Any) -> bool:
    return isinstance(v, str) and bool(_SHA_RE.match(v))


def _check_manifest(m: Any) -> None:
    """Raise ValueError naming what is wrong with a parsed manifest: verify, prune, restore
    and snapshot read every field below without further checks."""
    if not isinstance(m, dict) or not isinstance(m.get("files"), dict):
        raise ValueError("not a segtriage snapshot manifest")
    ts = m.get("created_ts")
    if isinstance(ts, bool) or not isinstance(ts, (int, float)):
        raise ValueError(f"damaged manifest: created_ts is {ts!r}, not a time")
    if not isinstance(m.get("root"), (str, type(None))):
        raise ValueError(f"damaged manifest: root is {m['root']!r}, not a folder")
    masks = m.get("masks", [])
    if not isinstance(masks, list) or not all(isinstance(p, str) for p in masks):
        raise ValueError("damaged manifest: masks is not a list of paths")
    models = m.get("models", {})
    if not isinstance(models, dict) or not isinstance(models.get("files", {}), dict):
        raise ValueError("damaged manifest: models is not {meta, files}")
    if models.get("meta") is not None and not _is_sha(models["meta"]):
        raise ValueError(f"damaged manifest: models.meta is {models['meta']!r}, not a sha256")
    for where, files in (("files", m["files"]), ("models.files", models.get("files", {}))):
        for rel, e in files.items():
            if not isinstance(e, dict) or not _is_sha(e.get("sha")):
                raise ValueError(f"damaged manifest: {where} entry {rel!r} is {e!r}, not "
                                 "{sha: <sha256>, size}")


# -- destination and owner -------------------------------------------------------------------

def default_destination(root: Path | str, cfg: Config) -> Path:
    """``[backup] destination`` (relative to the data folder, ``~`` expanded) or
    ``<state_dir>/backups``."""
    d = (cfg.backup.destination or "").strip()
    if not d:
        return cfg.state_path(root) / "backups"
    p = Path(d).expanduser()
    return p if p.is_absolute() else Path(root) / p


@dataclass(frozen=True)
class Owner:
    """Who writes to a destination: the project's folder and state (its id is read, or made,
    only when something is written); ``take_over``: make it this project's whoever had it."""
    root: Path  # resolved in _claim, once per process
    store: Store | None = None
    take_over: bool = False


def open_destination(root: Path | str, cfg: Config, dest: Path | str | None = None,
                     store: Store | None = None, take_over: bool = False) -> ObjectStore:
    """The object store at ``dest`` (default: the configured destination), written to as the
    project of ``root``."""
    return ObjectStore(Path(dest) if dest is not None else default_destination(root, cfg),
                       owner=Owner(Path(root), store, take_over))


def new_snapshot_id(ts: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(ts)) + "-" + secrets.token_hex(2)
