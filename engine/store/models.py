"""Model versions and which one is current."""

from __future__ import annotations

import sqlite3
from typing import Any

from . import db
from .db import Database, StoreError, _dumps
from .rows import ModelRow

class ModelsTable(Database):
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
                (db.now(), kind, arch, _dumps(weights), _dumps(config), epochs, train_loss,
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
        return [ModelRow.from_row(r) for r in
                self.conn.execute("SELECT * FROM models ORDER BY id")]
