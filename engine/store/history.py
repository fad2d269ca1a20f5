"""Mask versions (the mask history's rows) and backups (the snapshots this project made)."""

from __future__ import annotations

from typing import Iterable

from . import db
from .db import Database
from .rows import BackupRow, MaskVersion

class HistoryTables(Database):
    # -- mask history ----------------------------------------------------------------------
    def add_mask_version(self, path: str, sha256: str, source: str, *,
                         image_id: int | None = None, pixels_changed: int | None = None,
                         dice_prev: float | None = None) -> int:
        with self.tx() as c:
            return c.execute(
                "INSERT INTO mask_versions(image_id, path, sha256, created_at, source,"
                " pixels_changed, dice_prev) VALUES(?,?,?,?,?,?,?)",
                (image_id, path, sha256, db.now(), source, pixels_changed, dice_prev)).lastrowid

    def mask_versions(self, path: str) -> list[MaskVersion]:
        """The versions of a mask, oldest first."""
        return [MaskVersion.from_row(r) for r in self.conn.execute(
            "SELECT * FROM mask_versions WHERE path=? ORDER BY id", (path,))]

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
                (db.now(), destination, snapshot, files, bytes_added, masks_changed, job_id,
                 note, int(partial))).lastrowid

    def backups(self) -> list[BackupRow]:
        return [BackupRow.from_row(r)
                for r in self.conn.execute("SELECT * FROM backups ORDER BY id")]

    def last_backup(self) -> BackupRow | None:
        """The newest whole snapshot (not what a restore kept)."""
        r = self.conn.execute("SELECT * FROM backups WHERE partial = 0 "
                              "ORDER BY id DESC LIMIT 1").fetchone()
        return None if r is None else BackupRow.from_row(r)

    # -- backup/history helpers --------------------------------------------------------------
    # (owned by engine/project/backup/ and engine/project/history.py)
    def mask_version_refs(self) -> list[tuple[int, str, str]]:
        """(id, path, sha256) of every mask version: objects prune must never delete."""
        return [tuple(r) for r in self.conn.execute(
            "SELECT id, path, sha256 FROM mask_versions ORDER BY id")]

    def delete_backups(self, destination: str, snapshots: Iterable[str]) -> int:
        """Forget the rows of snapshots whose manifests prune deleted."""
        snaps = list(snapshots)
        if not snaps:
            return 0
        with self.tx() as c:
            return c.execute(
                f"DELETE FROM backups WHERE destination=? AND snapshot IN "
                f"({','.join('?' * len(snaps))})", (destination, *snaps)).rowcount
