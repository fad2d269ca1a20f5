"""Clients (who is attached, for the engine's idle exit) and the engine's own state for clients."""

from __future__ import annotations

import os
import socket
from typing import Any

from . import db
from .db import Database
from .rows import EngineState

class ClientsTable(Database):
    # -- clients and engine heartbeat --------------------------------------------------------
    def register_client(self, kind: str) -> int:
        now = db.now()
        with self.tx() as c:
            return c.execute("INSERT INTO clients(pid, host, kind, started_at, heartbeat) "
                             "VALUES(?,?,?,?,?)",
                             (os.getpid(), socket.gethostname(), kind, now, now)).lastrowid

    def client_heartbeat(self, client_id: int) -> None:
        with self.tx() as c:
            c.execute("UPDATE clients SET heartbeat=? WHERE id=?", (db.now(), client_id))

    def unregister_client(self, client_id: int) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM clients WHERE id=?", (client_id,))

    def live_clients(self, max_age_s: float = 30.0) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM clients WHERE heartbeat > ?",
                                 (db.now() - max_age_s,)).fetchone()[0]

    def set_engine_state(self, **fields: Any) -> None:
        """Engine status (pid, device, state, watcher, last event, heartbeat) for clients."""
        cur = self.get_meta("engine", {}) or {}
        cur.update(fields)
        cur["heartbeat"] = db.now()
        self.set_meta("engine", cur)

    def engine_state(self) -> EngineState:
        """The engine's last report of itself (every field None when none ran yet)."""
        return EngineState.from_meta(self.get_meta("engine", {}))
