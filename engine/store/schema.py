"""The database schema and its forward migrations: MIGRATIONS[v] upgrades user_version v to v+1.

Never edit a released step: append a new one and bump SCHEMA_VERSION.
"""

from __future__ import annotations

import sqlite3
from typing import Iterator

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
SCHEMA_VERSION = len(MIGRATIONS)


def statements(script: str) -> Iterator[str]:
    """Split a script into statements (trigger bodies hold ';' too). executescript() would
    commit the migration's transaction half-way, so statements run one by one."""
    buf = ""
    for part in script.split(";"):
        buf += part + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n;"):
                yield buf.strip()
            buf = ""
