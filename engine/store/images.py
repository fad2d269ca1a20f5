"""Images (one row per image: its files, hashes, status) and problems (files that are not image rows)."""

from __future__ import annotations

from typing import Any, Iterable

from . import db
from .db import Database, _dumps
from .rows import STATUSES, ImageRow, ProblemRow


class ImagesTable(Database):
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
        now = db.now()
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

    def image(self, key: int | str) -> ImageRow | None:
        """An image by id or by path."""
        col = "id" if isinstance(key, int) else "path"
        r = self.conn.execute(f"SELECT * FROM images WHERE {col}=?", (key,)).fetchone()
        return None if r is None else ImageRow.from_row(r)

    def image_by_mask(self, mask_path: str) -> ImageRow | None:
        r = self.conn.execute("SELECT * FROM images WHERE mask_path=?", (mask_path,)).fetchone()
        return None if r is None else ImageRow.from_row(r)

    def images(self, status: Iterable[str] | None = None) -> list[ImageRow]:
        """Every image (or those with one of ``status``), by path."""
        if status is None:
            rows = self.conn.execute("SELECT * FROM images ORDER BY path")
        else:
            st = list(status)
            rows = self.conn.execute(
                f"SELECT * FROM images WHERE status IN ({','.join('?' * len(st))}) "
                "ORDER BY path", st)
        return [ImageRow.from_row(r) for r in rows]

    def image_paths(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT path FROM images")}

    def images_by_fingerprint(self, size: int, mtime_ns: int, *, sha256: str | None = None,
                              limit: int = -1) -> list[ImageRow]:
        if sha256 is None:
            rows = self.conn.execute("SELECT * FROM images WHERE img_size=? AND "
                                     "img_mtime_ns=? LIMIT ?", (size, mtime_ns, limit))
        else:
            rows = self.conn.execute("SELECT * FROM images WHERE img_size=? AND img_mtime_ns=? "
                                     "AND img_sha256=? LIMIT ?", (size, mtime_ns, sha256, limit))
        return [ImageRow.from_row(r) for r in rows]

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
            c.execute("UPDATE images SET path=?, updated_at=? WHERE path=?", (new, db.now(), old))
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
        now = db.now()
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
        now = db.now()
        with self.tx() as c:
            c.execute("DELETE FROM problems")
            c.executemany("INSERT OR REPLACE INTO problems(path, kind, message, seen_at) "
                          "VALUES(?,?,?,?)", [(p, k, m, now) for p, k, m in problems])

    def problems(self) -> list[ProblemRow]:
        return [ProblemRow.from_row(r)
                for r in self.conn.execute("SELECT * FROM problems ORDER BY path")]

    # -- index helpers (layout/scan) -------------------------------------------------------
    def upsert_problem(self, path: str, kind: str, message: str) -> None:
        """One problem row (the watcher's single-file re-index; a scan replaces them all)."""
        with self.tx() as c:
            c.execute("INSERT INTO problems(path, kind, message, seen_at) VALUES(?,?,?,?) "
                      "ON CONFLICT(path) DO UPDATE SET kind=excluded.kind, "
                      "message=excluded.message, seen_at=excluded.seen_at",
                      (path, kind, message, db.now()))

    def delete_problems(self, paths: Iterable[str]) -> None:
        with self.tx() as c:
            c.executemany("DELETE FROM problems WHERE path=?", [(p,) for p in paths])
