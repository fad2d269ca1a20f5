"""Model versions and which one is current; the early ranking's checkpoint rows.

A model version has a positive id: the number people see (v1, v2) and the only kind of row
that can be current. A checkpoint row (kind ``checkpoint``) records the early ranking a
training made on its way (docs/scoring.md, "Early ranking"): no weights, never current, left
out of ``models()`` and of the version numbers, and its id is negative, a new one below every
other each time, so its scores lose to any model version's (the shown score is the current
model's, else the largest model id's) and an earlier checkpoint's scores stay shown until
the newer checkpoint has scored every image and the earlier one is dropped.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Iterable

from . import db
from .db import Database, StoreError, _dumps
from .rows import ImageRow, ModelRow

CHECKPOINT = "checkpoint"


class ModelsTable(Database):
    # -- models ----------------------------------------------------------------------------
    def add_model(self, *, kind: str, arch: str, weights: list[str], config: dict,
                  epochs: int, train_loss: float | None, valid_loss: float | None,
                  valid_dice: float | None, n_train: int, n_valid: int, manifest: Any,
                  job_id: int | None = None, info: dict | None = None,
                  make_current: bool = True) -> int:
        if kind == CHECKPOINT:
            raise StoreError("a checkpoint is not a model version: use add_checkpoint")
        with self.tx() as c:
            mid = self._next_model_id(c)  # never rowid's own choice: that follows a checkpoint
            c.execute(
                "INSERT INTO models(id, created_at, kind, arch, weights, config, epochs,"
                " train_loss, valid_loss, valid_dice, n_train, n_valid, manifest, job_id, info)"
                " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (mid, db.now(), kind, arch, _dumps(weights), _dumps(config), epochs,
                 train_loss, valid_loss, valid_dice, n_train, n_valid, _dumps(manifest),
                 job_id, _dumps(info or {})))
            if make_current:
                self._set_current_model(c, mid)
            return mid

    def next_model_id(self) -> int:
        return self._next_model_id(self.conn)

    @staticmethod
    def _next_model_id(c: sqlite3.Connection) -> int:
        return c.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM models WHERE id > 0"
                         ).fetchone()[0]

    def _set_current_model(self, c: sqlite3.Connection, model_id: int) -> None:
        c.execute("INSERT INTO meta(key, value) VALUES('current_model', ?) "
                  "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (_dumps(model_id),))

    def set_current_model(self, model_id: int) -> None:
        m = self.model(model_id)
        if m is None or m.kind == CHECKPOINT:
            raise StoreError(f"no model version {model_id}" + (
                " (that is an early ranking's checkpoint, not a model version)" if m else ""))
        with self.tx() as c:
            self._set_current_model(c, model_id)
            c.execute("INSERT INTO events(ts, kind, data) VALUES(?, 'model', ?)",
                      (db.now(), _dumps({"current": model_id})))

    def current_model_id(self) -> int | None:
        return self.get_meta("current_model")

    def model(self, model_id: int) -> ModelRow | None:
        r = self.conn.execute("SELECT * FROM models WHERE id=?", (model_id,)).fetchone()
        return None if r is None else ModelRow.from_row(r)

    def current_model(self) -> ModelRow | None:
        mid = self.current_model_id()
        return None if mid is None else self.model(mid)

    def models(self) -> list[ModelRow]:
        """The model versions, oldest first (checkpoints are not versions)."""
        return [ModelRow.from_row(r) for r in
                self.conn.execute("SELECT * FROM models WHERE id > 0 ORDER BY id")]

    # -- the early ranking's checkpoints ---------------------------------------------------
    def add_checkpoint(self, *, arch: str, config: dict, step: int, steps: int,
                       job_id: int | None, info: dict | None = None) -> int:
        """A checkpoint row for a ranking pass about to start; its id is below every other."""
        with self.tx() as c:
            mid = c.execute("SELECT MIN(COALESCE(MIN(id), 0), 0) - 1 FROM models"
                            ).fetchone()[0]
            c.execute(
                "INSERT INTO models(id, created_at, kind, arch, weights, config, epochs,"
                " manifest, job_id, info) VALUES(?,?,?,?,?,?,?,?,?,?)",
                (mid, db.now(), CHECKPOINT, arch, _dumps([]), _dumps(config), None,
                 _dumps([]), job_id, _dumps({"step": step, "steps": steps, **(info or {})})))
            return mid

    def finish_checkpoint(self, model_id: int, *, valid_dice: float | None,
                          info: dict) -> None:
        """A checkpoint's pass is done: its valid Dice and what the pass took."""
        m = self.model(model_id)
        if m is None or m.kind != CHECKPOINT:
            raise StoreError(f"no checkpoint {model_id}")
        with self.tx() as c:
            c.execute("UPDATE models SET valid_dice=?, info=? WHERE id=?",
                      (valid_dice, _dumps({**m.info, **info}), model_id))

    def checkpoints(self) -> list[ModelRow]:
        """The checkpoint rows, newest first."""
        return [ModelRow.from_row(r) for r in self.conn.execute(
            "SELECT * FROM models WHERE kind = ? ORDER BY id", (CHECKPOINT,))]

    def drop_checkpoints(self, *, keep: Iterable[int] = ()) -> list[int]:
        """Delete every checkpoint row but ``keep``, with its scores. Returns the ids deleted
        (their probability maps are the caller's to remove)."""
        keep = set(keep)
        gone = [m.id for m in self.checkpoints() if m.id not in keep]
        if gone:
            marks = ",".join("?" * len(gone))
            with self.tx() as c:
                c.execute(f"DELETE FROM scores WHERE model_id IN ({marks})", gone)
                c.execute(f"DELETE FROM models WHERE id IN ({marks}) AND kind = ?",
                          (*gone, CHECKPOINT))
        return gone

    def checkpoint_shown(self) -> dict[int, int]:
        """Checkpoint id → how many images show its score (no model version scored them)."""
        return dict(self.conn.execute(
            "SELECT s.model_id, COUNT(*) FROM scores s WHERE s.model_id < 0 AND NOT EXISTS"
            " (SELECT 1 FROM scores n WHERE n.image_id = s.image_id AND n.model_id > s.model_id)"
            " GROUP BY s.model_id").fetchall())

    def without_model_score(self) -> list[ImageRow]:
        """The images an early ranking scores: no model version has scored them (an error
        image excepted: it cannot be read)."""
        return [ImageRow.from_row(r) for r in self.conn.execute(
            "SELECT i.* FROM images i WHERE i.status != 'error' AND NOT EXISTS"
            " (SELECT 1 FROM scores s WHERE s.image_id = i.id AND s.model_id > 0)"
            " ORDER BY i.path")]
