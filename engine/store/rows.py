"""What the store's tables hold, as values: statuses, job kinds and states, the promoted score
columns, and the row types it returns."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

STATUSES = ("unreviewed", "accepted", "edited", "flagged", "no-mask", "error")
JOB_KINDS = ("train", "predict", "crossval", "backup", "rescore")
JOB_STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
ACTIVE_JOB_STATES = ("queued", "running")

# Score columns promoted to real SQL columns (the list, sorting, report). Everything else a
# scorer computes goes into the JSON `metrics` column of the same row.
SCORE_COLUMNS = (
    "priority", "confidence", "region_confidence", "label_quality", "dice", "iou", "ce",
    "n_pred", "n_mask", "outline_bias",
)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@dataclass
class Job:
    id: int
    kind: str
    params: dict
    state: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat: float | None
    progress: float
    message: str | None
    eta: float | None
    error: str | None
    result: Any
    pid: int | None
    cancel_requested: bool
    attempts: int

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_JOB_STATES

    @classmethod
    def from_row(cls, r: sqlite3.Row) -> "Job":
        return cls(
            id=r["id"], kind=r["kind"], params=_loads(r["params"]) or {}, state=r["state"],
            created_at=r["created_at"], started_at=r["started_at"],
            finished_at=r["finished_at"], heartbeat=r["heartbeat"], progress=r["progress"],
            message=r["message"], eta=r["eta"], error=r["error"], result=_loads(r["result"]),
            pid=r["pid"], cancel_requested=bool(r["cancel_requested"]), attempts=r["attempts"],
        )
