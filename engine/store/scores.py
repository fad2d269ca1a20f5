"""Score rows (one per image and model) and the review list's queries over images and scores."""

from __future__ import annotations

import sqlite3
from typing import Iterator

from . import db
from .db import Database, _dumps, _loads
from .rows import SCORE_COLUMNS

class ScoresTable(Database):
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
                 db.now(), category, *promoted.values(), _dumps(rest), error))

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
