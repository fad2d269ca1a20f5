"""Score rows (one per image and model) and the review list's queries over images and scores.

The score an image shows (the list, the report, re-scoring an edited mask) is its *shown*
score: the current model's, when that model scored it, else its newest. So a rollback brings
back the rolled-back-to model's scores at once, and a new model's rows stay readable (stale)
until it has predicted them. An early ranking's checkpoint (negative model id, models.py)
loses to every model version, so its score shows only where no version scored the image; it
is then marked ``checkpoint`` and is not stale for being from another model than the current.
"""

from __future__ import annotations

from typing import Iterator

from . import db
from .db import Database, _dumps, _loads
from .rows import (SCORE_COLUMNS, ImageRow, ListHead, ListRow, ReviewRow, ScoreRow)

# the score row an image shows (see the module doc); :cur is the current model's id
_SHOWN = """s.model_id = COALESCE(
    (SELECT c.model_id FROM scores c WHERE c.image_id = {img} AND c.model_id = :cur),
    (SELECT MAX(n.model_id) FROM scores n WHERE n.image_id = {img}))"""
_STALE = """(s.model_id IS NOT NULL AND ((s.model_id IS NOT :cur AND s.model_id > 0)
     OR s.image_sha256 IS NOT i.img_sha256 OR s.mask_sha256 IS NOT i.mask_sha256))"""
_CHECKPOINT = "COALESCE(s.model_id < 0, 0)"


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

    def score(self, image_id: int, model_id: int | None = None) -> ScoreRow | None:
        """The score of an image under a model (default: the score it shows)."""
        if model_id is None:
            r = self.conn.execute(
                "SELECT * FROM scores s WHERE s.image_id = :img AND "
                + _SHOWN.format(img=":img"),
                {"img": image_id, "cur": self.current_model_id()}).fetchone()
        else:
            r = self.conn.execute("SELECT * FROM scores WHERE image_id=? AND model_id=?",
                                  (image_id, model_id)).fetchone()
        return None if r is None else ScoreRow.from_row(r)

    def scores_for_model(self, model_id: int) -> list[ScoreRow]:
        return [ScoreRow.from_row(r) for r in
                self.conn.execute("SELECT * FROM scores WHERE model_id=?", (model_id,))]

    def review_rows(self, *, full: bool = False) -> list[ReviewRow]:
        """One row per image with its shown score, and whether that score is stale: from a
        model that is not current, or from another image or mask content than the one on
        disk now. ``full`` adds every figure of the score to ``metrics``."""
        sql = f"""
        SELECT i.id, i.path, i.mask_path, i.status, i.error, i.width, i.height,
               i.img_sha256, i.mask_sha256 AS cur_mask_sha, i.updated_at, i.reviewed_at,
               s.model_id, s.fold, s.precision, s.prob_path, s.category, s.computed_at,
               s.image_sha256 AS s_img_sha, s.mask_sha256 AS s_mask_sha, s.error AS score_error,
               {_STALE} AS stale, {_CHECKPOINT} AS checkpoint,
               {','.join('s.' + k for k in SCORE_COLUMNS)}
               {', s.metrics' if full else ''}
        FROM images i
        LEFT JOIN scores s ON s.image_id = i.id AND {_SHOWN.format(img="i.id")}
        """
        names = [f for f in ReviewRow.__dataclass_fields__ if f != "metrics"]
        rows = []
        for r in self.conn.execute(sql, {"cur": self.current_model_id()}):
            d = {k: r[k] for k in names}
            d["stale"] = bool(d["stale"])
            d["checkpoint"] = bool(d["checkpoint"])
            metrics = {k: r[k] for k in SCORE_COLUMNS}
            if full:
                metrics.update(_loads(r["metrics"]) or {})
            rows.append(ReviewRow(**d, metrics=metrics))
        return rows

    _LIST_COLS = f"""
        i.id, i.path, i.mask_path, i.status, i.error,
        s.model_id, s.category, s.prob_path, s.error AS score_error,
        {','.join('s.' + k for k in SCORE_COLUMNS)}, {_STALE} AS stale,
        {_CHECKPOINT} AS checkpoint"""
    _LIST_SQL = f"""
        SELECT {_LIST_COLS}
        FROM images i
        LEFT JOIN scores s ON s.image_id = i.id AND {_SHOWN.format(img="i.id")}
        """
    # CROSS JOIN keeps scores the outer loop, so the priority index drives the order and the
    # LIMIT stops the walk (only equal priorities are sorted by path, in a small temp b-tree)
    _HEAD_SCORED_SQL = f"""
        SELECT {_LIST_COLS}
        FROM scores s CROSS JOIN images i ON i.id = s.image_id
        WHERE s.priority IS NOT NULL AND {_SHOWN.format(img="s.image_id")}
        ORDER BY s.priority DESC, i.path LIMIT :limit
        """
    _HEAD_REST_SQL = _LIST_SQL + "WHERE s.priority IS NULL ORDER BY i.path LIMIT :limit"

    def list_rows(self) -> Iterator[ListRow]:
        """The list's columns for every image, streamed, ``stale`` worked out in SQL.

        The lean sibling of ``review_rows`` for clients holding 100k rows: no hashes, no
        metrics JSON, one small row at a time."""
        for t in self.conn.execute(self._LIST_SQL, {"cur": self.current_model_id()}):
            yield ListRow.from_tuple(tuple(t))

    def list_head(self, limit: int) -> ListHead:
        """The first ``limit`` rows of the default review order, read without touching the rest.

        Same columns as ``list_rows``, in the order the list shows them by default: priority
        descending, rows without one (unscored, or a shown score with no priority) last, ties
        and the unscored rows by path. The scored part walks the ``scores_priority`` index from
        the top and keeps a score row only when it is its image's shown one, so a few hundred
        rows cost a few hundred index steps at any project size; the unscored part is read
        only when fewer than ``limit`` rows have a priority. The total and the path range
        (which gives the folder every path shares) come from the same read snapshot."""
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
            rows = [ListRow.from_tuple(tuple(t)) for t in c.execute(
                self._HEAD_SCORED_SQL, {"cur": cur_model, "limit": limit})]
            if len(rows) < limit:
                rows += [ListRow.from_tuple(tuple(t)) for t in c.execute(
                    self._HEAD_REST_SQL, {"cur": cur_model, "limit": limit - len(rows)})]
        finally:
            if own_tx:
                c.execute("COMMIT")
        return ListHead(rows=rows, total=total, first_path=first, last_path=last)

    def rows_stamp(self) -> tuple:
        """Changes whenever an image or score row changed, or the current model: clients check
        it before reloading, since data_version also moves on every heartbeat."""
        return tuple(self.conn.execute(
            "SELECT (SELECT value FROM meta WHERE key='rows_version'),"
            " (SELECT value FROM meta WHERE key='current_model')").fetchone())

    def unscored_or_stale(self, model_id: int) -> list[ImageRow]:
        """Images with no score from ``model_id`` on their current image content."""
        return [ImageRow.from_row(r) for r in self.conn.execute(
            "SELECT i.* FROM images i LEFT JOIN scores s ON s.image_id=i.id AND s.model_id=? "
            "WHERE i.status != 'error' AND (s.image_id IS NULL OR s.image_sha256 IS NOT "
            "i.img_sha256) ORDER BY i.path", (model_id,))]

    def outdated_scores(self, version: int) -> int:
        """Shown score rows computed by an older scoring formula."""
        return self.conn.execute(
            "SELECT COUNT(*) FROM scores s WHERE s.error IS NULL AND "
            + _SHOWN.format(img="s.image_id") + " AND "
            "COALESCE(json_extract(s.metrics, '$.scoring_version'), 0) < :version",
            {"cur": self.current_model_id(), "version": version}).fetchone()[0]
