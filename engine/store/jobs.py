"""Jobs (requests clients queue, the engine claims and runs) and events (what happened, for followers)."""

from __future__ import annotations

from typing import Any, Iterable

from . import db
from .db import Database, _dumps, _loads
from .rows import ACTIVE_JOB_STATES, JOB_KINDS, Event, Job

class JobsTable(Database):
    # -- jobs ------------------------------------------------------------------------------
    def submit_job(self, kind: str, params: dict | None = None, *,
                   requested_by: str = "cli") -> int:
        if kind not in JOB_KINDS:
            raise ValueError(f"unknown job kind {kind!r}; allowed: {', '.join(JOB_KINDS)}")
        with self.tx() as c:
            cur = c.execute("INSERT INTO jobs(kind, params, created_at, requested_by) "
                            "VALUES(?,?,?,?)", (kind, _dumps(params or {}), db.now(), requested_by))
            c.execute("INSERT INTO events(ts, job_id, kind, data) VALUES(?,?, 'job', ?)",
                      (db.now(), cur.lastrowid, _dumps({"state": "queued", "kind": kind})))
            return cur.lastrowid

    def job(self, job_id: int) -> Job | None:
        r = self.conn.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if r is None else Job.from_row(r)

    def jobs(self, *, limit: int = 50, states: Iterable[str] | None = None) -> list[Job]:
        if states is None:
            rows = self.conn.execute("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (limit,))
        else:
            st = list(states)
            rows = self.conn.execute(
                f"SELECT * FROM jobs WHERE state IN ({','.join('?' * len(st))}) "
                "ORDER BY id DESC LIMIT ?", (*st, limit))
        return [Job.from_row(r) for r in rows]

    def active_jobs(self) -> list[Job]:
        return self.jobs(states=ACTIVE_JOB_STATES)

    def claim_job(self, pid: int) -> Job | None:
        """Atomically move the oldest queued job to running (engine only)."""
        with self.tx() as c:
            r = c.execute("SELECT * FROM jobs WHERE state='queued' AND cancel_requested=0 "
                          "ORDER BY id LIMIT 1").fetchone()
            if r is None:
                # a queued job cancelled before it ran
                c.execute("UPDATE jobs SET state='cancelled', finished_at=? "
                          "WHERE state='queued' AND cancel_requested=1", (db.now(),))
                return None
            now = db.now()
            c.execute("UPDATE jobs SET state='running', started_at=?, heartbeat=?, pid=?, "
                      "attempts=attempts+1, message='starting' WHERE id=?",
                      (now, now, pid, r["id"]))
            c.execute("INSERT INTO events(ts, job_id, kind, data) VALUES(?,?, 'job', ?)",
                      (now, r["id"], _dumps({"state": "running"})))
        return self.job(r["id"])

    def update_job(self, job_id: int, *, progress: float | None = None,
                   message: str | None = None, eta: float | None = None,
                   params: dict | None = None) -> bool:
        """Progress from the running job; returns True when a cancel was requested."""
        sets, vals = ["heartbeat=?"], [db.now()]
        if progress is not None:
            sets.append("progress=?"); vals.append(max(0.0, min(1.0, float(progress))))
        if message is not None:
            sets.append("message=?"); vals.append(message)
        if eta is not None or progress is not None:
            sets.append("eta=?"); vals.append(eta)
        if params is not None:
            sets.append("params=?"); vals.append(_dumps(params))
        with self.tx() as c:
            c.execute(f"UPDATE jobs SET {','.join(sets)} WHERE id=?", (*vals, job_id))
            r = c.execute("SELECT cancel_requested FROM jobs WHERE id=?", (job_id,)).fetchone()
        return bool(r and r[0])

    def finish_job(self, job_id: int, state: str, *, error: str | None = None,
                   result: Any = None, message: str | None = None) -> None:
        if state not in ("done", "failed", "cancelled", "interrupted"):
            raise ValueError(state)
        now = db.now()
        with self.tx() as c:
            c.execute("UPDATE jobs SET state=?, finished_at=?, heartbeat=?, error=?, result=?,"
                      " message=COALESCE(?, message), progress=CASE WHEN ?='done' THEN 1 "
                      "ELSE progress END, eta=NULL WHERE id=?",
                      (state, now, now, error, _dumps(result), message, state, job_id))
            c.execute("INSERT INTO events(ts, job_id, kind, data) VALUES(?,?, 'job', ?)",
                      (now, job_id, _dumps({"state": state, "error": error})))

    def request_cancel(self, job_id: int) -> bool:
        """Ask for a cancel; a queued job is cancelled at once. False if not active."""
        with self.tx() as c:
            r = c.execute("SELECT state FROM jobs WHERE id=?", (job_id,)).fetchone()
            if r is None or r[0] not in ACTIVE_JOB_STATES:
                return False
            if r[0] == "queued":
                c.execute("UPDATE jobs SET state='cancelled', cancel_requested=1, finished_at=?"
                          " WHERE id=?", (db.now(), job_id))
            else:
                c.execute("UPDATE jobs SET cancel_requested=1 WHERE id=?", (job_id,))
            return True

    def cancel_requested(self, job_id: int) -> bool:
        r = self.conn.execute("SELECT cancel_requested FROM jobs WHERE id=?",
                              (job_id,)).fetchone()
        return bool(r and r[0])

    MAX_CRASHES = 2  # a job that took the engine down this often is not run again

    def recover_interrupted(self, requeue: bool = True, *, crashed: bool = False) -> list[int]:
        """Jobs left 'running' are marked interrupted and, unless cancelled, queued again as a
        fresh job carrying the same params: at a clean stop (``crashed=False``), and at start
        for jobs of an engine that died (``crashed=True``). A job whose runs the engine died
        in MAX_CRASHES times (out of memory, a native crash) fails instead: re-queued, it would
        take down every engine a client starts."""
        out = []
        with self.tx() as c:
            rows = c.execute("SELECT * FROM jobs WHERE state='running'").fetchall()
            for r in rows:
                now = db.now()
                params = _loads(r["params"]) or {}
                crashes = int(params.get("crashes", 0)) + (1 if crashed else 0)
                if crashes >= self.MAX_CRASHES and not r["cancel_requested"]:
                    c.execute("UPDATE jobs SET state='failed', finished_at=?, error=? "
                              "WHERE id=?", (now, (
                                  f"the engine died {crashes} times while running this job "
                                  "(out of memory? see logs/engine.log); not run again: "
                                  "submit it anew to retry"), r["id"]))
                    c.execute("INSERT INTO events(ts, job_id, kind, data) VALUES(?,?, 'job', ?)",
                              (now, r["id"], _dumps({"state": "failed"})))
                    continue
                c.execute("UPDATE jobs SET state='interrupted', finished_at=?, message=? "
                          "WHERE id=?", (now, "engine died while running" if crashed else
                                         "engine stopped while running", r["id"]))
                c.execute("INSERT INTO events(ts, job_id, kind, data) VALUES(?,?, 'job', ?)",
                          (now, r["id"], _dumps({"state": "interrupted"})))
                if requeue and not r["cancel_requested"]:
                    params["resumed_from"] = r["id"]
                    if crashes:
                        params["crashes"] = crashes
                    cur = c.execute("INSERT INTO jobs(kind, params, created_at, requested_by)"
                                    " VALUES(?,?,?, 'recovery')",
                                    (r["kind"], _dumps(params), now))
                    out.append(cur.lastrowid)
        return out

    # -- events ----------------------------------------------------------------------------
    def add_event(self, kind: str, data: Any = None, job_id: int | None = None) -> int:
        with self.tx() as c:
            return c.execute("INSERT INTO events(ts, job_id, kind, data) VALUES(?,?,?,?)",
                             (db.now(), job_id, kind, _dumps(data))).lastrowid

    def events(self, *, job_id: int | None = None, kind: str | None = None,
               after_id: int = 0, limit: int = 1000) -> list[Event]:
        where, vals = ["id > ?"], [after_id]
        if job_id is not None:
            where.append("job_id = ?"); vals.append(job_id)
        if kind is not None:
            where.append("kind = ?"); vals.append(kind)
        rows = self.conn.execute(
            f"SELECT * FROM events WHERE {' AND '.join(where)} ORDER BY id LIMIT ?",
            (*vals, limit))
        return [Event.from_row(r) for r in rows]

    def last_event(self, kind: str) -> Event | None:
        r = self.conn.execute("SELECT * FROM events WHERE kind=? ORDER BY id DESC LIMIT 1",
                              (kind,)).fetchone()
        return None if r is None else Event.from_row(r)
