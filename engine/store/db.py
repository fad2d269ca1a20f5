"""The connection to ``state.db``: one per thread, WAL, ``BEGIN IMMEDIATE`` writes, migrations,
the meta table; and the small helpers every table module shares.

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
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .schema import MIGRATIONS, SCHEMA_VERSION, statements

BUSY_TIMEOUT_MS = 30_000


def now() -> float:
    """The clock every row timestamp comes from (one place: tests freeze it here)."""
    return time.time()


def _dumps(obj: Any) -> str | None:
    return None if obj is None else json.dumps(obj, sort_keys=True, default=str)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)



class StoreError(RuntimeError):
    pass


def ensure_state_dirs(state: Path) -> None:
    """Create the state folder private (0700) with its sub-folders."""
    state.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(state, 0o700)
    except OSError:
        pass
    for sub in ("models", "preds", "logs"):
        (state / sub).mkdir(exist_ok=True)


class Database:
    """One SQLite connection per thread onto ``state.db``: transactions, schema, meta."""

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
                    for stmt in statements(MIGRATIONS[step]):
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
            with self.tx() as c:  # two first callers at once agree on one id
                c.execute("INSERT OR IGNORE INTO meta(key, value) VALUES('project_id', ?)",
                          (_dumps(uuid.uuid4().hex),))
            pid = self.get_meta("project_id")
        self._project_id = pid  # never changes once made
        return pid
