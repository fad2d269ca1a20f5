"""The project state: every SQL statement segtriage runs lives in this module.

SQLite in WAL mode is the contract between the engine (writes rows, scores, jobs, progress,
events) and the clients (write job requests and review decisions). Plain Python, no torch, so
clients import it cheaply. Each process opens its own connection; writes use
``BEGIN IMMEDIATE`` so two writers queue on the busy timeout instead of failing half-way.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

SCHEMA_VERSION = 8
BUSY_TIMEOUT_MS = 30_000

STATUSES = ("unreviewed", "accepted", "edited", "flagged", "no-mask", "error")
JOB_KINDS = ("train", "predict", "crossval", "backup", "rescore")
JOB_STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
ACTIVE_JOB_STATES = ("queued", "running")

# Score columns promoted to real SQL columns (the list, sorting, report). Everything else a
# scorer computes goes into the JSON `metrics` column of the same row.
SCORE_COLUMNS = (
    "priority", "confidence", "region_confidence", "label_quality", "dice", "iou", "ce",
    "n_pred", "n_mask", "outline_bias",
)


# -- what a review decision may do (the app's a / x and the CLI's accept / flag) ------------
def accept_problem(mask_path: str | None, error: str | None) -> str | None:
    """Why an image cannot be accepted, or None: there is no mask to call right, or its mask
    is unusable (accepting that would hide the error and send the mask into training)."""
    if error:
        return "its mask is unusable (fix it first: see its error)"
    if not mask_path:
        return "it has no mask yet"
    return None


def unflagged_status(mask_path: str | None, error: str | None) -> str:
    """The status a flagged image goes back to: the one a scan gives it undecided."""
    if error:
        return "error"
    return "unreviewed" if mask_path else "no-mask"


# ----------------------------------------------------------------------------------------
# Schema and forward migrations. MIGRATIONS[v] upgrades a database at user_version v to v+1.
# Never edit a released step: append a new one and bump SCHEMA_VERSION.
# ----------------------------------------------------------------------------------------
_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,           -- image path relative to the data folder (posix)
    mask_path TEXT,                      -- mask path relative to the data folder, NULL if none
    width INTEGER, height INTEGER,
    img_size INTEGER, img_mtime_ns INTEGER, img_sha256 TEXT,
    mask_size INTEGER, mask_mtime_ns INTEGER, mask_sha256 TEXT,
    status TEXT NOT NULL DEFAULT 'unreviewed',
    error TEXT,
    added_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    reviewed_at REAL
);
CREATE TABLE problems (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,                  -- orphan-mask, unreadable, ...
    message TEXT NOT NULL,
    seen_at REAL NOT NULL
);
CREATE TABLE models (
    id INTEGER PRIMARY KEY,              -- the model version number shown to people
    created_at REAL NOT NULL,
    kind TEXT NOT NULL DEFAULT 'plain',  -- plain | crossval
    arch TEXT, weights TEXT,             -- JSON list of weight files relative to models/
    config TEXT,                         -- JSON of the model config used
    epochs INTEGER, train_loss REAL, valid_loss REAL, valid_dice REAL,
    n_train INTEGER, n_valid INTEGER,
    manifest TEXT,                       -- JSON: training set (path, image sha, mask sha, fold)
    job_id INTEGER,
    info TEXT                            -- JSON: anything else (device, precision, history)
);
CREATE TABLE scores (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    fold INTEGER,                        -- fold model that scored it (out-of-fold), NULL = full
    image_sha256 TEXT, mask_sha256 TEXT, precision TEXT,
    prob_path TEXT,                      -- P(class) PNG relative to the state folder
    computed_at REAL NOT NULL,
    category TEXT,
    priority REAL, confidence REAL, region_confidence REAL, label_quality REAL,
    dice REAL, iou REAL, ce REAL, n_pred INTEGER, n_mask INTEGER,
    metrics TEXT,                        -- JSON of every other column
    error TEXT,
    PRIMARY KEY (image_id, model_id)
);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'queued',
    created_at REAL NOT NULL, started_at REAL, finished_at REAL, heartbeat REAL,
    progress REAL NOT NULL DEFAULT 0, message TEXT, eta REAL,
    error TEXT, result TEXT, pid INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    requested_by TEXT
);
CREATE INDEX jobs_state ON jobs(state);
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    job_id INTEGER,
    kind TEXT NOT NULL,                  -- epoch, batch, log, watch, decision, mask, ...
    data TEXT
);
CREATE INDEX events_job ON events(job_id, kind);
CREATE TABLE backups (
    id INTEGER PRIMARY KEY,
    created_at REAL NOT NULL,
    destination TEXT NOT NULL,
    snapshot TEXT NOT NULL,              -- snapshot id (manifest name) in the destination
    files INTEGER, bytes_added INTEGER, masks_changed INTEGER,
    job_id INTEGER, note TEXT
);
CREATE TABLE mask_versions (
    id INTEGER PRIMARY KEY,
    image_id INTEGER REFERENCES images(id) ON DELETE SET NULL,
    path TEXT NOT NULL,                  -- mask path relative to the data folder
    sha256 TEXT NOT NULL,
    created_at REAL NOT NULL,
    source TEXT NOT NULL,                -- scan | editor | prediction | restore | segment | revert
    pixels_changed INTEGER, dice_prev REAL
);
CREATE INDEX mask_versions_path ON mask_versions(path, id);
CREATE TABLE clients (
    id INTEGER PRIMARY KEY,
    pid INTEGER, host TEXT, kind TEXT,
    started_at REAL NOT NULL, heartbeat REAL NOT NULL
);
"""

# v1 → v2: review order index and the scored-mask link used for staleness.
_V2 = """
CREATE INDEX scores_model ON scores(model_id);
CREATE INDEX images_status ON images(status);
"""

# v2 → v3: a counter bumped by triggers on every row change, behind rows_stamp(): the
# clients' exact "did any row change?" check (data_version also moves on heartbeats).
_V3 = """
INSERT OR IGNORE INTO meta(key, value) VALUES('rows_version', '0');
CREATE TRIGGER images_insert_bump AFTER INSERT ON images BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'rows_version';
END;
CREATE TRIGGER images_update_bump AFTER UPDATE ON images BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'rows_version';
END;
CREATE TRIGGER images_delete_bump AFTER DELETE ON images BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'rows_version';
END;
CREATE TRIGGER scores_insert_bump AFTER INSERT ON scores BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'rows_version';
END;
CREATE TRIGGER scores_update_bump AFTER UPDATE ON scores BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'rows_version';
END;
CREATE TRIGGER scores_delete_bump AFTER DELETE ON scores BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'rows_version';
END;
"""

# v3 → v4: the review order's first page (priority descending) read through an index, so a
# client shows the top of a 100k-row list without reading every row first (list_head()).
_V4 = """
CREATE INDEX scores_priority ON scores(priority);
"""

# v4 → v5: rows found by their image's size and mtime, which a move keeps: a renamed or
# moved image takes its row along (decision, scores) instead of a delete and a new row.
_V5 = """
CREATE INDEX images_fingerprint ON images(img_size, img_mtime_ns);
"""

# v5 → v6: backups that hold only what a restore replaced are marked: not "the last backup".
# A step may be a function of the connection: development builds of v5 had this column.
def _v6(c: sqlite3.Connection) -> None:
    if "partial" not in {r[1] for r in c.execute("PRAGMA table_info(backups)")}:
        c.execute("ALTER TABLE backups ADD COLUMN partial INTEGER NOT NULL DEFAULT 0")


# v6 → v7: outline_bias (scoring version 4) is a column, so the list can sort by it without
# reading every row's metrics JSON.
_V7 = """
ALTER TABLE scores ADD COLUMN outline_bias REAL;
UPDATE scores SET outline_bias = json_extract(metrics, '$.outline_bias')
    WHERE json_valid(metrics) AND json_extract(metrics, '$.outline_bias') IS NOT NULL;
"""

# v7 → v8: the decision of an image whose mask went out of sight (a layout changed and
# changed back, a masks folder moved away and back) is kept with that mask's hash, and comes
# back with the mask when its content is the same.
_V8 = """
ALTER TABLE images ADD COLUMN kept_status TEXT;
ALTER TABLE images ADD COLUMN kept_mask_sha TEXT;
"""

MIGRATIONS: list = [_V1, _V2, _V3, _V4, _V5, _v6, _V7, _V8]
assert len(MIGRATIONS) == SCHEMA_VERSION


def _statements(script: str) -> Iterator[str]:
    """Split a script into statements (trigger bodies hold ';' too). executescript() would
    commit the migration's transaction half-way, so statements run one by one."""
    buf = ""
    for part in script.split(";"):
        buf += part + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n;"):
                yield buf.strip()
            buf = ""


def _now() -> float:
    return time.time()


def _dumps(obj: Any) -> str | None:
    return None if obj is None else json.dumps(obj, sort_keys=True, default=str)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@dataclass
class Job:
    id: int
    kind: str
    params: dict
    state: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat: float | None
    progress: float
    message: str | None
    eta: float | None
    error: str | None
    result: Any
    pid: int | None
    cancel_requested: bool
    attempts: int

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_JOB_STATES

    @classmethod
    def from_row(cls, r: sqlite3.Row) -> "Job":
        return cls(
            id=r["id"], kind=r["kind"], params=_loads(r["params"]) or {}, state=r["state"],
            created_at=r["created_at"], started_at=r["started_at"],
            finished_at=r["finished_at"], heartbeat=r["heartbeat"], progress=r["progress"],
            message=r["message"], eta=r["eta"], error=r["error"], result=_loads(r["result"]),
            pid=r["pid"], cancel_requested=bool(r["cancel_requested"]), attempts=r["attempts"],
        )


class StoreError(RuntimeError):
    pass


def state_dir_for(root: Path, state_dir: str = ".segtriage") -> Path:
    p = Path(state_dir)
    return p if p.is_absolute() else Path(root) / p


def ensure_state_dirs(state: Path) -> None:
    """Create the state folder private (0700) with its sub-folders."""
    state.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(state, 0o700)
    except OSError:
        pass
    for sub in ("models", "preds", "logs"):
        (state / sub).mkdir(exist_ok=True)


class Store:
    """One SQLite connection per thread onto ``state.db``."""

    def __init__(self, db_path: Path | str, *, create: bool = True, readonly: bool = False):
        self.db_path = Path(db_path)
        self.state_dir = self.db_path.parent
        self.readonly = readonly
        self._local = threading.local()
        if create and not readonly:
            ensure_state_dirs(self.state_dir)
        elif not self.db_path.exists():
            raise StoreError(f"no segtriage state at {self.db_path} (run `segtriage scan` first)")
        if not readonly:
            self.migrate()

    @classmethod
    def open(cls, root: Path | str, state_dir: str | None = None, **kw) -> "Store":
        """Open the store of a data folder, honouring ``state_dir`` from its config."""
        root = Path(root)
        if state_dir is None:
            from ..project.config import load_config  # local: config imports nothing heavy either

            state_dir = load_config(root).project.state_dir
        return cls(state_dir_for(root, state_dir) / "state.db", **kw)

    # -- connection ------------------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            if self.readonly:
                uri = f"file:{self.db_path}?mode=ro"
                c = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                                    isolation_level=None, check_same_thread=False)
            else:
                c = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_MS / 1000,
                                    isolation_level=None, check_same_thread=False)
            c.row_factory = sqlite3.Row
            c.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            c.execute("PRAGMA foreign_keys=ON")
            if not self.readonly:
                c.execute("PRAGMA journal_mode=WAL")
                c.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = c
        return c

    def close(self) -> None:
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            self._local.conn = None

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (BEGIN IMMEDIATE): no upgrade deadlocks."""
        c = self.conn
        if c.in_transaction:  # nested use joins the outer transaction
            yield c
            return
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
        except BaseException:
            c.execute("ROLLBACK")
            raise
        else:
            c.execute("COMMIT")

    def data_version(self) -> int:
        """Changes when *another* connection commits: the clients' cheap change detector."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    # -- schema ----------------------------------------------------------------------------
    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> None:
        with self.tx() as c:
            v = c.execute("PRAGMA user_version").fetchone()[0]
            if v > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.db_path} has schema version {v}, newer than this segtriage "
                    f"({SCHEMA_VERSION}): upgrade segtriage")
            for step in range(v, SCHEMA_VERSION):
                if callable(MIGRATIONS[step]):
                    MIGRATIONS[step](c)
                else:
                    for stmt in _statements(MIGRATIONS[step]):
                        c.execute(stmt)
                c.execute(f"PRAGMA user_version={step + 1}")

    # -- meta ------------------------------------------------------------------------------
    def get_meta(self, key: str, default: Any = None) -> Any:
        r = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if r is None else _loads(r[0])

    def set_meta(self, key: str, value: Any) -> None:
        with self.tx() as c:
            c.execute("INSERT INTO meta(key, value) VALUES(?, ?) "
                      "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, _dumps(value)))

    def project_id(self) -> str:
        """This project's id, made on first use: it names the project in the backup
        destination it owns (a moved folder keeps it)."""
        pid = getattr(self, "_project_id", None) or self.get_meta("project_id")
        if not pid:
            import uuid

            with self.tx() as c:  # two first callers at once agree on one id
                c.execute("INSERT OR IGNORE INTO meta(key, value) VALUES('project_id', ?)",
                          (_dumps(uuid.uuid4().hex),))
            pid = self.get_meta("project_id")
        self._project_id = pid  # never changes once made
        return pid

    # -- images ----------------------------------------------------------------------------
    _IMAGE_FIELDS = ("mask_path", "width", "height", "img_size", "img_mtime_ns", "img_sha256",
                     "mask_size", "mask_mtime_ns", "mask_sha256", "status", "error",
                     "kept_status", "kept_mask_sha")

    def upsert_image(self, path: str, **fields: Any) -> int:
        """Insert or update the row of one image; returns its id."""
        bad = set(fields) - set(self._IMAGE_FIELDS) - {"reviewed_at"}
        if bad:
            raise ValueError(f"unknown image fields {sorted(bad)}")
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"bad status {fields['status']!r}")
        now = _now()
        with self.tx() as c:
            r = c.execute("SELECT id FROM images WHERE path=?", (path,)).fetchone()
            if r is None:
                cols = ["path", "added_at", "updated_at", *fields]
                vals = [path, now, now, *fields.values()]
                cur = c.execute(f"INSERT INTO images({','.join(cols)}) "
                                f"VALUES({','.join('?' * len(cols))})", vals)
                return cur.lastrowid
            if fields:
                sets = ",".join(f"{k}=?" for k in fields)
                c.execute(f"UPDATE images SET {sets}, updated_at=? WHERE id=?",
                          [*fields.values(), now, r["id"]])
            return r["id"]

    def image(self, key: int | str) -> sqlite3.Row | None:
        col = "id" if isinstance(key, int) else "path"
        return self.conn.execute(f"SELECT * FROM images WHERE {col}=?", (key,)).fetchone()

    def image_by_mask(self, mask_path: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM images WHERE mask_path=?",
                                 (mask_path,)).fetchone()

    def images(self, status: Iterable[str] | None = None) -> list[sqlite3.Row]:
        if status is None:
            return self.conn.execute("SELECT * FROM images ORDER BY path").fetchall()
        st = list(status)
        return self.conn.execute(
            f"SELECT * FROM images WHERE status IN ({','.join('?' * len(st))}) ORDER BY path",
            st).fetchall()

    def image_paths(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT path FROM images")}

    def images_by_fingerprint(self, size: int, mtime_ns: int, *, sha256: str | None = None,
                              limit: int = -1) -> list[sqlite3.Row]:
        if sha256 is None:
            return self.conn.execute("SELECT * FROM images WHERE img_size=? AND "
                                     "img_mtime_ns=? LIMIT ?", (size, mtime_ns, limit)).fetchall()
        return self.conn.execute("SELECT * FROM images WHERE img_size=? AND img_mtime_ns=? AND "
                                 "img_sha256=? LIMIT ?", (size, mtime_ns, sha256, limit)).fetchall()

    def move_image(self, old: str, new: str, new_mask: str | None) -> bool:
        """The row of ``old`` becomes the row of ``new`` (same id: decision, scores and
        events stay); the mask history of its mask follows to ``new_mask`` unless that path
        has one of its own. False (nothing done) when ``new`` has a row already."""
        with self.tx() as c:
            if c.execute("SELECT 1 FROM images WHERE path=?", (new,)).fetchone():
                return False  # indexed there meanwhile (a copy, then a delete): not a move
            r = c.execute("SELECT mask_path FROM images WHERE path=?", (old,)).fetchone()
            if r is None:
                return False
            c.execute("UPDATE images SET path=?, updated_at=? WHERE path=?", (new, _now(), old))
            old_mask = r["mask_path"] if r is not None else None
            if old_mask and new_mask and old_mask != new_mask and c.execute(
                    "SELECT 1 FROM mask_versions WHERE path=? LIMIT 1",
                    (new_mask,)).fetchone() is None:
                c.execute("UPDATE mask_versions SET path=? WHERE path=?", (new_mask, old_mask))
        return True

    def delete_image(self, path: str) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM images WHERE path=?", (path,))

    def set_status(self, image_ids: Iterable[int], status: str, *, by: str = "user") -> None:
        """A review decision (accept, flag, ...) from a client; logged as an event."""
        if status not in STATUSES:
            raise ValueError(f"bad status {status!r}")
        ids = list(image_ids)
        now = _now()
        with self.tx() as c:
            for i in ids:
                c.execute("UPDATE images SET status=?, reviewed_at=?, updated_at=? WHERE id=?",
                          (status, now, now, i))
                c.execute("INSERT INTO events(ts, kind, data) VALUES(?, 'decision', ?)",
                          (now, _dumps({"image_id": i, "status": status, "by": by})))

    def status_counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in
                self.conn.execute("SELECT status, COUNT(*) FROM images GROUP BY status")}

    # -- problems (files that are not image rows: orphan masks, unreadable names) ----------
    def replace_problems(self, problems: Iterable[tuple[str, str, str]]) -> None:
        now = _now()
        with self.tx() as c:
            c.execute("DELETE FROM problems")
            c.executemany("INSERT OR REPLACE INTO problems(path, kind, message, seen_at) "
                          "VALUES(?,?,?,?)", [(p, k, m, now) for p, k, m in problems])

    def problems(self) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM problems ORDER BY path").fetchall()

    # -- models ----------------------------------------------------------------------------
    def add_model(self, *, kind: str, arch: str, weights: list[str], config: dict,
                  epochs: int, train_loss: float | None, valid_loss: float | None,
                  valid_dice: float | None, n_train: int, n_valid: int, manifest: Any,
                  job_id: int | None = None, info: dict | None = None,
                  make_current: bool = True) -> int:
        with self.tx() as c:
            cur = c.execute(
                "INSERT INTO models(created_at, kind, arch, weights, config, epochs, train_loss,"
                " valid_loss, valid_dice, n_train, n_valid, manifest, job_id, info)"
                " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (_now(), kind, arch, _dumps(weights), _dumps(config), epochs, train_loss,
                 valid_loss, valid_dice, n_train, n_valid, _dumps(manifest), job_id,
                 _dumps(info or {})))
            mid = cur.lastrowid
            if make_current:
                self._set_current_model(c, mid)
            return mid

    def next_model_id(self) -> int:
        r = self.conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM models").fetchone()
        return r[0]

    def _set_current_model(self, c: sqlite3.Connection, model_id: int) -> None:
        c.execute("INSERT INTO meta(key, value) VALUES('current_model', ?) "
                  "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (_dumps(model_id),))

    def set_current_model(self, model_id: int) -> None:
        if self.model(model_id) is None:
            raise StoreError(f"no model version {model_id}")
        with self.tx() as c:
            self._set_current_model(c, model_id)
            c.execute("INSERT INTO events(ts, kind, data) VALUES(?, 'model', ?)",
                      (_now(), _dumps({"current": model_id})))

    def current_model_id(self) -> int | None:
        return self.get_meta("current_model")

    def model(self, model_id: int) -> dict | None:
        r = self.conn.execute("SELECT * FROM models WHERE id=?", (model_id,)).fetchone()
        return None if r is None else self._model_dict(r)

    def current_model(self) -> dict | None:
        mid = self.current_model_id()
        return None if mid is None else self.model(mid)

    def models(self) -> list[dict]:
        return [self._model_dict(r) for r in
                self.conn.execute("SELECT * FROM models ORDER BY id")]

    @staticmethod
    def _model_dict(r: sqlite3.Row) -> dict:
        d = dict(r)
        for k in ("weights", "config", "manifest", "info"):
            d[k] = _loads(d[k])
        return d

    # -- scores ----------------------------------------------------------------------------
    def put_score(self, image_id: int, model_id: int, *, fold: int | None,
                  image_sha256: str | None, mask_sha256: str | None, precision: str,
                  prob_path: str | None, category: str | None, metrics: dict,
                  error: str | None = None) -> None:
        """Write the score row of (image, model). Promoted columns come out of ``metrics``."""
        promoted = {k: metrics.get(k) for k in SCORE_COLUMNS}
        rest = {k: v for k, v in metrics.items() if k not in SCORE_COLUMNS}
        with self.tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO scores(image_id, model_id, fold, image_sha256,"
                " mask_sha256, precision, prob_path, computed_at, category,"
                f" {','.join(SCORE_COLUMNS)}, metrics, error)"
                f" VALUES({','.join('?' * (11 + len(SCORE_COLUMNS)))})",
                (image_id, model_id, fold, image_sha256, mask_sha256, precision, prob_path,
                 _now(), category, *promoted.values(), _dumps(rest), error))

    def score(self, image_id: int, model_id: int | None = None) -> dict | None:
        """The score row of an image under a model (default: its latest score row)."""
        if model_id is None:
            r = self.conn.execute("SELECT * FROM scores WHERE image_id=? ORDER BY model_id DESC"
                                  " LIMIT 1", (image_id,)).fetchone()
        else:
            r = self.conn.execute("SELECT * FROM scores WHERE image_id=? AND model_id=?",
                                  (image_id, model_id)).fetchone()
        if r is None:
            return None
        d = dict(r)
        d.update(_loads(d.pop("metrics")) or {})
        return d

    def scores_for_model(self, model_id: int) -> list[dict]:
        out = []
        for r in self.conn.execute("SELECT * FROM scores WHERE model_id=?", (model_id,)):
            d = dict(r)
            d.update(_loads(d.pop("metrics")) or {})
            out.append(d)
        return out

    def review_rows(self, *, full: bool = False) -> list[dict]:
        """One row per image joined with its newest score row, plus a ``stale`` flag.

        A row is stale when its score came from a model that is not current, or from another
        image or mask content than the one on disk now. ``full`` adds every metric column.
        """
        cur_model = self.current_model_id() or -1
        sql = f"""
        SELECT i.id, i.path, i.mask_path, i.status, i.error, i.width, i.height,
               i.img_sha256, i.mask_sha256 AS cur_mask_sha, i.updated_at, i.reviewed_at,
               s.model_id, s.fold, s.precision, s.prob_path, s.category, s.computed_at,
               s.image_sha256 AS s_img_sha, s.mask_sha256 AS s_mask_sha, s.error AS score_error,
               {','.join('s.' + k for k in SCORE_COLUMNS)}
               {', s.metrics' if full else ''}
        FROM images i
        LEFT JOIN scores s ON s.image_id = i.id AND s.model_id = (
            SELECT MAX(model_id) FROM scores s2 WHERE s2.image_id = i.id)
        """
        rows = []
        for r in self.conn.execute(sql):
            d = dict(r)
            if full:
                d.update(_loads(d.pop("metrics")) or {})
            scored = d["model_id"] is not None
            d["stale"] = bool(scored and (
                d["model_id"] != cur_model or d["s_img_sha"] != d["img_sha256"]
                or d["s_mask_sha"] != d["cur_mask_sha"]))
            rows.append(d)
        return rows

    _LIST_COLS = f"""
        i.id, i.path, i.mask_path, i.status, i.error,
        s.model_id, s.category, s.prob_path, s.error AS score_error,
        {','.join('s.' + k for k in SCORE_COLUMNS)},
        (s.model_id IS NOT NULL AND (s.model_id IS NOT ? OR s.image_sha256 IS NOT
         i.img_sha256 OR s.mask_sha256 IS NOT i.mask_sha256)) AS stale"""
    _LIST_SQL = f"""
        SELECT {_LIST_COLS}
        FROM images i
        LEFT JOIN scores s ON s.image_id = i.id AND s.model_id = (
            SELECT MAX(model_id) FROM scores s2 WHERE s2.image_id = i.id)
        """
    # CROSS JOIN keeps scores the outer loop, so the priority index drives the order and the
    # LIMIT stops the walk (only equal priorities are sorted by path, in a small temp b-tree)
    _HEAD_SCORED_SQL = f"""
        SELECT {_LIST_COLS}
        FROM scores s CROSS JOIN images i ON i.id = s.image_id
        WHERE s.priority IS NOT NULL AND s.model_id = (
            SELECT MAX(model_id) FROM scores s2 WHERE s2.image_id = s.image_id)
        ORDER BY s.priority DESC, i.path LIMIT ?
        """
    _HEAD_REST_SQL = _LIST_SQL + "WHERE s.priority IS NULL ORDER BY i.path LIMIT ?"

    def list_rows(self) -> Iterator[dict]:
        """The list's columns for every image, streamed, ``stale`` worked out in SQL.

        The lean sibling of ``review_rows`` for clients holding 100k rows: no hashes, no
        metrics JSON, one small dict at a time."""
        cur = self.conn.execute(self._LIST_SQL, (self.current_model_id(),))
        names = [d[0] for d in cur.description]
        for r in cur:
            yield dict(zip(names, r))

    def list_head(self, limit: int) -> dict:
        """The first ``limit`` rows of the default review order, read without touching the rest.

        Same columns as ``list_rows``, in the order the list shows them by default: priority
        descending, rows without one (unscored, or a newest score with no priority) last, ties
        and the unscored rows by path. The scored part walks the ``scores_priority`` index from
        the top and keeps a score row only when it is its image's newest, so a few hundred rows
        cost a few hundred index steps at any project size; the unscored part is read only
        when fewer than ``limit`` rows have a priority. Returns ``{"rows": [...], "total": rows
        in the project, "first_path": smallest path, "last_path": largest path}`` (the path
        range gives the folder every path shares), all from one read snapshot."""
        c = self.conn
        own_tx = not c.in_transaction
        if own_tx:
            c.execute("BEGIN")  # deferred: a read snapshot, no lock on writers (WAL)
        try:
            cur_model = self.current_model_id()
            # three subqueries: each alone is O(log n) (b-tree count, index ends); together
            # in one SELECT they would scan every row
            total, first, last = c.execute(
                "SELECT (SELECT COUNT(*) FROM images), (SELECT MIN(path) FROM images),"
                " (SELECT MAX(path) FROM images)").fetchone()
            cur = c.execute(self._HEAD_SCORED_SQL, (cur_model, limit))
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r)) for r in cur]
            if len(rows) < limit:
                cur = c.execute(self._HEAD_REST_SQL, (cur_model, limit - len(rows)))
                rows += [dict(zip(names, r)) for r in cur]
        finally:
            if own_tx:
                c.execute("COMMIT")
        return {"rows": rows, "total": total, "first_path": first, "last_path": last}

    def rows_stamp(self) -> tuple:
        """Changes whenever an image or score row changed, or the current model: clients check
        it before reloading, since data_version also moves on every heartbeat."""
        return tuple(self.conn.execute(
            "SELECT (SELECT value FROM meta WHERE key='rows_version'),"
            " (SELECT value FROM meta WHERE key='current_model')").fetchone())

    def unscored_or_stale(self, model_id: int) -> list[sqlite3.Row]:
        """Images with no score from ``model_id`` on their current image content."""
        return self.conn.execute(
            "SELECT i.* FROM images i LEFT JOIN scores s ON s.image_id=i.id AND s.model_id=? "
            "WHERE i.status != 'error' AND (s.image_id IS NULL OR s.image_sha256 IS NOT "
            "i.img_sha256) ORDER BY i.path", (model_id,)).fetchall()

    def outdated_scores(self, version: int) -> int:
        """Score rows (newest model of each image) computed by an older scoring formula."""
        return self.conn.execute(
            "SELECT COUNT(*) FROM scores s WHERE s.error IS NULL AND s.model_id = ("
            "SELECT MAX(model_id) FROM scores s2 WHERE s2.image_id = s.image_id) AND "
            "COALESCE(json_extract(s.metrics, '$.scoring_version'), 0) < ?",
            (version,)).fetchone()[0]

    # -- jobs ------------------------------------------------------------------------------
    def submit_job(self, kind: str, params: dict | None = None, *,
                   requested_by: str = "cli") -> int:
        if kind not in JOB_KINDS:
            raise ValueError(f"unknown job kind {kind!r}; allowed: {', '.join(JOB_KINDS)}")
        with self.tx() as c:
            cur = c.execute("INSERT INTO jobs(kind, params, created_at, requested_by) "
                            "VALUES(?,?,?,?)", (kind, _dumps(params or {}), _now(), requested_by))
            c.execute("INSERT INTO events(ts, job_id, kind, data) VALUES(?,?, 'job', ?)",
                      (_now(), cur.lastrowid, _dumps({"state": "queued", "kind": kind})))
            return cur.lastrowid

    def job(self, job_id: int) -> Job | None:
        r = self.conn.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if r is None else Job.from_row(r)

    def jobs(self, *, limit: int = 50, states: Iterable[str] | None = None) -> list[Job]:
        if states is None:
            rows = self.conn.execute("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (limit,))
        else:
            st = list(states)
            rows = self.conn.execute(
                f"SELECT * FROM jobs WHERE state IN ({','.join('?' * len(st))}) "
                "ORDER BY id DESC LIMIT ?", (*st, limit))
        return [Job.from_row(r) for r in rows]

    def active_jobs(self) -> list[Job]:
        return self.jobs(states=ACTIVE_JOB_STATES)

    def claim_job(self, pid: int) -> Job | None:
        """Atomically move the oldest queued job to running (engine only)."""
        with self.tx() as c:
            r = c.execute("SELECT * FROM jobs WHERE state='queued' AND cancel_requested=0 "
                          "ORDER BY id LIMIT 1").fetchone()
            if r is None:
                # a queued job cancelled before it ran
                c.execute("UPDATE jobs SET state='cancelled', finished_at=? "
                          "WHERE state='queued' AND cancel_requested=1", (_now(),))
                return None
            now = _now()
            c.execute("UPDATE jobs SET state='running', started_at=?, heartbeat=?, pid=?, "
                      "attempts=attempts+1, message='starting' WHERE id=?",
                      (now, now, pid, r["id"]))
            c.execute("INSERT INTO events(ts, job_id, kind, data) VALUES(?,?, 'job', ?)",
                      (now, r["id"], _dumps({"state": "running"})))
        return self.job(r["id"])

    def update_job(self, job_id: int, *, progress: float | None = None,
                   message: str | None = None, eta: float | None = None,
                   params: dict | None = None) -> bool:
        """Progress from the running job; returns True when a cancel was requested."""
        sets, vals = ["heartbeat=?"], [_now()]
        if progress is not None:
            sets.append("progress=?"); vals.append(max(0.0, min(1.0, float(progress))))
        if message is not None:
            sets.append("message=?"); vals.append(message)
        if eta is not None or progress is not None:
            sets.append("eta=?"); vals.append(eta)
        if params is not None:
            sets.append("params=?"); vals.append(_dumps(params))
        with self.tx() as c:
            c.execute(f"UPDATE jobs SET {','.join(sets)} WHERE id=?", (*vals, job_id))
            r = c.execute("SELECT cancel_requested FROM jobs WHERE id=?", (job_id,)).fetchone()
        return bool(r and r[0])

    def finish_job(self, job_id: int, state: str, *, error: str | None = None,
                   result: Any = None, message: str | None = None) -> None:
        if state not in ("done", "failed", "cancelled", "interrupted"):
            raise ValueError(state)
        now = _now()
        with self.tx() as c:
            c.execute("UPDATE jobs SET state=?, finished_at=?, heartbeat=?, error=?, result=?,"
                      " message=COALESCE(?, message), progress=CASE WHEN ?='done' THEN 1 "
                      "ELSE progress END, eta=NULL WHERE id=?",
                      (state, now, now, error, _dumps(result), message, state, job_id))
            c.execute("INSERT INTO events(ts, job_id, kind, data) VALUES(?,?, 'job', ?)",
                      (now, job_id, _dumps({"state": state, "error": error})))

    def request_cancel(self, job_id: int) -> bool:
        """Ask for a cancel; a queued job is cancelled at once. False if not active."""
        with self.tx() as c:
            r = c.execute("SELECT state FROM jobs WHERE id=?", (job_id,)).fetchone()
            if r is None or r[0] not in ACTIVE_JOB_STATES:
                return False
            if r[0] == "queued":
                c.execute("UPDATE jobs SET state='cancelled', cancel_requested=1, finished_at=?"
                          " WHERE id=?", (_now(), job_id))
            else:
                c.execute("UPDATE jobs SET cancel_requested=1 WHERE id=?", (job_id,))
            return True

    def cancel_requested(self, job_id: int) -> bool:
        r = self.conn.execute("SELECT cancel_requested FROM jobs WHERE id=?",
                              (job_id,)).fetchone()
        return bool(r and r[0])

    MAX_CRASHES = 2  # a job that took the engine down this often is not run again

    def recover_interrupted(self, requeue: bool = True, *, crashed: bool = False) -> list[int]:
        """Jobs left 'running' are marked interrupted and, unless cancelled, queued again as a
        fresh job carrying the same params: at a clean stop (``crashed=False``), and at start
        for jobs of an engine that died (``crashed=True``). A job whose runs the engine died
        in MAX_CRASHES times (out of memory, a native crash) fails instead: re-queued, it would
        take down every engine a client starts."""
        out = []
        with self.tx() as c:
            rows = c.execute("SELECT * FROM jobs WHERE state='running'").fetchall()
            for r in rows:
                now = _now()
                params = _loads(r["params"]) or {}
                crashes = int(params.get("crashes", 0)) + (1 if crashed else 0)
                if crashes >= self.MAX_CRASHES and not r["cancel_requested"]:
                    c.execute("UPDATE jobs SET state='failed', finished_at=?, error=? "
                              "WHERE id=?", (now, (
                                  f"the engine died {crashes} times while running this job "
                                  "(out of memory? see logs/engine.log); not run again: "
                                  "submit it anew to retry"), r["id"]))
                    c.execute("INSERT INTO events(ts, job_id, kind, data) VALUES(?,?, 'job', ?)",
                              (now, r["id"], _dumps({"state": "failed"})))
                    continue
                c.execute("UPDATE jobs SET state='interrupted', finished_at=?, message=? "
                          "WHERE id=?", (now, "engine died while running" if crashed else
                                         "engine stopped while running", r["id"]))
                c.execute("INSERT INTO events(ts, job_id, kind, data) VALUES(?,?, 'job', ?)",
                          (now, r["id"], _dumps({"state": "interrupted"})))
                if requeue and not r["cancel_requested"]:
                    params["resumed_from"] = r["id"]
                    if crashes:
                        params["crashes"] = crashes
                    cur = c.execute("INSERT INTO jobs(kind, params, created_at, requested_by)"
                                    " VALUES(?,?,?, 'recovery')",
                                    (r["kind"], _dumps(params), now))
                    out.append(cur.lastrowid)
        return out

    # -- events ----------------------------------------------------------------------------
    def add_event(self, kind: str, data: Any = None, job_id: int | None = None) -> int:
        with self.tx() as c:
            return c.execute("INSERT INTO events(ts, job_id, kind, data) VALUES(?,?,?,?)",
                             (_now(), job_id, kind, _dumps(data))).lastrowid

    def events(self, *, job_id: int | None = None, kind: str | None = None,
               after_id: int = 0, limit: int = 1000) -> list[dict]:
        where, vals = ["id > ?"], [after_id]
        if job_id is not None:
            where.append("job_id = ?"); vals.append(job_id)
        if kind is not None:
            where.append("kind = ?"); vals.append(kind)
        rows = self.conn.execute(
            f"SELECT * FROM events WHERE {' AND '.join(where)} ORDER BY id LIMIT ?",
            (*vals, limit))
        return [{**dict(r), "data": _loads(r["data"])} for r in rows]

    def last_event(self, kind: str) -> dict | None:
        r = self.conn.execute("SELECT * FROM events WHERE kind=? ORDER BY id DESC LIMIT 1",
                              (kind,)).fetchone()
        return None if r is None else {**dict(r), "data": _loads(r["data"])}

    # -- mask history ----------------------------------------------------------------------
    def add_mask_version(self, path: str, sha256: str, source: str, *,
                         image_id: int | None = None, pixels_changed: int | None = None,
                         dice_prev: float | None = None) -> int:
        with self.tx() as c:
            return c.execute(
                "INSERT INTO mask_versions(image_id, path, sha256, created_at, source,"
                " pixels_changed, dice_prev) VALUES(?,?,?,?,?,?,?)",
                (image_id, path, sha256, _now(), source, pixels_changed, dice_prev)).lastrowid

    def mask_versions(self, path: str) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM mask_versions WHERE path=? ORDER BY id",
                                 (path,)).fetchall()

    def latest_mask_shas(self, paths: Iterable[str] | None = None
                         ) -> dict[str, tuple[str, float]]:
        """path → (content, time) of the newest history version of every mask (or of
        ``paths``)."""
        if paths is None:
            return {r[0]: (r[1], r[2]) for r in self.conn.execute(
                "SELECT path, sha256, created_at FROM mask_versions WHERE id IN "
                "(SELECT MAX(id) FROM mask_versions GROUP BY path)")}
        out = {}
        for p in set(paths):
            r = self.conn.execute("SELECT sha256, created_at FROM mask_versions WHERE path=? "
                                  "ORDER BY id DESC LIMIT 1", (p,)).fetchone()
            if r is not None:
                out[p] = (r[0], r[1])
        return out

    def mask_edits_since(self, ts: float | None) -> int:
        """Masks changed by a person or a tool (not the first scan) after ``ts``."""
        return self.conn.execute(
            "SELECT COUNT(DISTINCT path) FROM mask_versions WHERE source != 'scan' "
            "AND created_at > ?", (ts or 0.0,)).fetchone()[0]

    # -- backups ---------------------------------------------------------------------------
    def add_backup(self, *, destination: str, snapshot: str, files: int, bytes_added: int,
                   masks_changed: int, job_id: int | None = None, note: str | None = None,
                   partial: bool = False) -> int:
        with self.tx() as c:
            return c.execute(
                "INSERT INTO backups(created_at, destination, snapshot, files, bytes_added,"
                " masks_changed, job_id, note, partial) VALUES(?,?,?,?,?,?,?,?,?)",
                (_now(), destination, snapshot, files, bytes_added, masks_changed, job_id,
                 note, int(partial))).lastrowid

    def backups(self) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM backups ORDER BY id").fetchall()

    def last_backup(self) -> sqlite3.Row | None:
        """The newest whole snapshot (not what a restore kept)."""
        return self.conn.execute("SELECT * FROM backups WHERE partial = 0 "
                                 "ORDER BY id DESC LIMIT 1").fetchone()

    # -- clients and engine heartbeat --------------------------------------------------------
    def register_client(self, kind: str) -> int:
        import socket

        now = _now()
        with self.tx() as c:
            return c.execute("INSERT INTO clients(pid, host, kind, started_at, heartbeat) "
                             "VALUES(?,?,?,?,?)",
                             (os.getpid(), socket.gethostname(), kind, now, now)).lastrowid

    def client_heartbeat(self, client_id: int) -> None:
        with self.tx() as c:
            c.execute("UPDATE clients SET heartbeat=? WHERE id=?", (_now(), client_id))

    def unregister_client(self, client_id: int) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM clients WHERE id=?", (client_id,))

    def live_clients(self, max_age_s: float = 30.0) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM clients WHERE heartbeat > ?",
                                 (_now() - max_age_s,)).fetchone()[0]

    def set_engine_state(self, **fields: Any) -> None:
        """Engine status (pid, device, state, watcher, last event, heartbeat) for clients."""
        cur = self.get_meta("engine", {}) or {}
        cur.update(fields)
        cur["heartbeat"] = _now()
        self.set_meta("engine", cur)

    def engine_state(self) -> dict:
        return self.get_meta("engine", {}) or {}

    # -- backup/history helpers --------------------------------------------------------------
    # (owned by engine/backup.py and engine/history.py)
    def mask_version_refs(self) -> list[sqlite3.Row]:
        """(id, path, sha256) of every mask version: objects prune must never delete."""
        return self.conn.execute(
            "SELECT id, path, sha256 FROM mask_versions ORDER BY id").fetchall()

    def delete_backups(self, destination: str, snapshots: Iterable[str]) -> int:
        """Forget the rows of snapshots whose manifests prune deleted."""
        snaps = list(snapshots)
        if not snaps:
            return 0
        with self.tx() as c:
            return c.execute(
                f"DELETE FROM backups WHERE destination=? AND snapshot IN "
                f"({','.join('?' * len(snaps))})", (destination, *snaps)).rowcount

    # -- index helpers (layout/scan) -------------------------------------------------------
    def upsert_problem(self, path: str, kind: str, message: str) -> None:
        """One problem row (the watcher's single-file re-index; a scan replaces them all)."""
        with self.tx() as c:
            c.execute("INSERT INTO problems(path, kind, message, seen_at) VALUES(?,?,?,?) "
                      "ON CONFLICT(path) DO UPDATE SET kind=excluded.kind, "
                      "message=excluded.message, seen_at=excluded.seen_at",
                      (path, kind, message, _now()))

    def delete_problems(self, paths: Iterable[str]) -> None:
        with self.tx() as c:
            c.executemany("DELETE FROM problems WHERE path=?", [(p,) for p in paths])
