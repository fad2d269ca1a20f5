"""The project state: every SQL statement segtriage runs lives in this package.

db.py       the connection (WAL, one per thread), transactions, migrations, the meta table
schema.py   the schema and its forward migrations
rows.py     statuses, job kinds, score columns and the row types the store returns
images.py   images and problems;  models.py  model versions;  scores.py  scores, review list
jobs.py     jobs and events;  history.py  mask versions and backups;  clients.py  clients

``Store`` is the one object a process opens: every table group's methods on one connection.
"""

from __future__ import annotations

from .clients import ClientsTable
from .db import BUSY_TIMEOUT_MS, Database, StoreError, ensure_state_dirs
from .history import HistoryTables
from .images import ImagesTable
from .jobs import JobsTable
from .models import ModelsTable
from .rows import (ACTIVE_JOB_STATES, JOB_KINDS, JOB_STATES, SCORE_COLUMNS, STATUSES, Job)
from .schema import MIGRATIONS, SCHEMA_VERSION
from .scores import ScoresTable


class Store(ImagesTable, ModelsTable, ScoresTable, JobsTable, HistoryTables, ClientsTable,
            Database):
    """One SQLite connection per thread onto ``state.db``, with every table group's methods."""


__all__ = ["ACTIVE_JOB_STATES", "BUSY_TIMEOUT_MS", "JOB_KINDS", "JOB_STATES", "MIGRATIONS",
           "SCHEMA_VERSION", "SCORE_COLUMNS", "STATUSES", "Job", "Store", "StoreError",
           "ensure_state_dirs"]
