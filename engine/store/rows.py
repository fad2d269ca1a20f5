"""What the store's tables hold, as values: statuses, job kinds and states, the promoted score
columns, and the row types it returns."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, fields
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


def _fields_of(cls) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


class _FromRow:
    """A row type made from a ``sqlite3.Row`` (or a dict) by its field names."""

    @classmethod
    def from_row(cls, r) -> Any:
        return cls(**{name: r[name] for name in _fields_of(cls)})


@dataclass(frozen=True, slots=True)
class ImageRow(_FromRow):
    """One image of the project: its files (paths relative to the data folder), their
    fingerprints and hashes, and the review status."""
    id: int
    path: str
    mask_path: str | None
    width: int | None
    height: int | None
    img_size: int | None
    img_mtime_ns: int | None
    img_sha256: str | None
    mask_size: int | None
    mask_mtime_ns: int | None
    mask_sha256: str | None
    status: str
    error: str | None
    added_at: float
    updated_at: float
    reviewed_at: float | None
    kept_status: str | None
    kept_mask_sha: str | None

    @property
    def shape(self) -> tuple[int, int] | None:
        """(height, width) when known."""
        return (self.height, self.width) if self.height and self.width else None


@dataclass(frozen=True, slots=True)
class ProblemRow(_FromRow):
    """A file that is not an image row: an orphan mask, an unreadable name or folder."""
    path: str
    kind: str
    message: str
    seen_at: float


@dataclass(frozen=True, slots=True)
class ModelRow:
    """A model version: what it was trained on, how, and its weight files; or an early
    ranking's checkpoint (kind ``checkpoint``, negative id, no weights; info: step, steps)."""
    id: int
    created_at: float
    kind: str                 # plain | crossval | checkpoint
    arch: str | None
    weights: list[str]        # relative to the models folder
    config: dict
    epochs: int | None
    train_loss: float | None
    valid_loss: float | None
    valid_dice: float | None
    n_train: int | None
    n_valid: int | None
    manifest: list[dict]      # path, mask, image_sha256, mask_sha256 (fold)
    job_id: int | None
    info: dict

    @classmethod
    def from_row(cls, r) -> "ModelRow":
        d = {name: r[name] for name in _fields_of(cls)}
        for k, empty in (("weights", []), ("config", {}), ("manifest", []), ("info", {})):
            d[k] = _loads(d[k]) or empty
        return cls(**d)


@dataclass(frozen=True, slots=True)
class ScoreRow:
    """The score of an image under a model: the promoted columns and every other figure the
    scorer computed (``metrics``); ``error`` when it could not be scored."""
    image_id: int
    model_id: int
    fold: int | None
    image_sha256: str | None
    mask_sha256: str | None
    precision: str | None
    prob_path: str | None      # relative to the state folder
    computed_at: float
    category: str | None
    error: str | None
    metrics: dict              # every figure, the promoted columns included

    @classmethod
    def from_row(cls, r) -> "ScoreRow":
        metrics = {k: r[k] for k in SCORE_COLUMNS}
        metrics.update(_loads(r["metrics"]) or {})
        return cls(image_id=r["image_id"], model_id=r["model_id"], fold=r["fold"],
                   image_sha256=r["image_sha256"], mask_sha256=r["mask_sha256"],
                   precision=r["precision"], prob_path=r["prob_path"],
                   computed_at=r["computed_at"], category=r["category"], error=r["error"],
                   metrics=metrics)

    def as_dict(self) -> dict:
        """Every field and figure in one flat record (what a person reads, or JSON gets)."""
        d = {name: getattr(self, name) for name in _SCORE_FIELDS if name != "metrics"}
        d.update(self.metrics)
        return d

    def get(self, name: str) -> Any:
        """A figure by its column name (None when the scorer did not compute it)."""
        if name in _SCORE_FIELDS:
            return getattr(self, name)
        return self.metrics.get(name)


@dataclass(frozen=True, slots=True)
class ListRow:
    """An image as the review list shows it: its status and the promoted columns of its
    shown score (the current model's, else its newest), ``stale`` worked out in SQL;
    ``checkpoint``: that score comes from an early ranking's checkpoint, not a model version
    (``model_id`` is then the checkpoint's negative id)."""
    id: int
    path: str
    mask_path: str | None
    status: str
    error: str | None
    model_id: int | None
    category: str | None
    prob_path: str | None
    score_error: str | None
    priority: float | None
    confidence: float | None
    region_confidence: float | None
    label_quality: float | None
    dice: float | None
    iou: float | None
    ce: float | None
    n_pred: int | None
    n_mask: int | None
    outline_bias: float | None
    stale: bool
    checkpoint: bool = False

    @classmethod
    def from_tuple(cls, t: tuple) -> "ListRow":
        return cls(*t[:-2], bool(t[-2]), bool(t[-1]))


@dataclass(frozen=True, slots=True)
class ListHead:
    """The first rows of the default review order, with what the list needs around them."""
    rows: list[ListRow]
    total: int                 # rows in the project
    first_path: str | None     # the smallest and largest path (the folder every path shares)
    last_path: str | None


@dataclass(frozen=True, slots=True)
class ReviewRow:
    """An image with its shown score, for the report and the engine's checks: the list's
    columns plus hashes, times and, with ``full``, every other figure (``metrics``)."""
    id: int
    path: str
    mask_path: str | None
    status: str
    error: str | None
    width: int | None
    height: int | None
    img_sha256: str | None
    cur_mask_sha: str | None   # the mask on disk now
    updated_at: float
    reviewed_at: float | None
    model_id: int | None
    fold: int | None
    precision: str | None
    prob_path: str | None
    category: str | None
    computed_at: float | None
    s_img_sha: str | None      # the image and mask the score was computed from
    s_mask_sha: str | None
    score_error: str | None
    stale: bool
    metrics: dict              # the promoted columns, and every figure with ``full``
    checkpoint: bool = False   # the score is an early ranking's (model_id < 0)

    def get(self, name: str) -> Any:
        """A column by name: a field of the row, else a figure of its score."""
        if name in _REVIEW_FIELDS:
            return getattr(self, name)
        return self.metrics.get(name)

    def as_dict(self) -> dict:
        """Every column, figures included: the report's record of the image."""
        d = {name: getattr(self, name) for name in _REVIEW_FIELDS if name != "metrics"}
        d.update(self.metrics)
        return d


_REVIEW_FIELDS = frozenset(f.name for f in fields(ReviewRow))
_SCORE_FIELDS = frozenset(f.name for f in fields(ScoreRow))


@dataclass(frozen=True, slots=True)
class MaskVersion(_FromRow):
    """One version of a mask in the mask history (its bytes are in the object store)."""
    id: int
    image_id: int | None
    path: str
    sha256: str
    created_at: float
    source: str                # scan | editor | prediction | restore | segment | revert
    pixels_changed: int | None
    dice_prev: float | None


@dataclass(frozen=True, slots=True)
class BackupRow(_FromRow):
    """A snapshot this project made (the manifest in the destination is the truth)."""
    id: int
    created_at: float
    destination: str
    snapshot: str
    files: int | None
    bytes_added: int | None
    masks_changed: int | None
    job_id: int | None
    note: str | None
    partial: int               # 1: only what a restore replaced


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened (a job's epoch, a log line, a decision, a mask change)."""
    id: int
    ts: float
    job_id: int | None
    kind: str
    data: Any

    @classmethod
    def from_row(cls, r) -> "Event":
        return cls(id=r["id"], ts=r["ts"], job_id=r["job_id"], kind=r["kind"],
                   data=_loads(r["data"]))

@dataclass(frozen=True, slots=True)
class EngineState:
    """The engine's report of itself for clients (``set_engine_state``): its pid and host, its
    state ("scanning", "idle", "running job N", "stopped"), the job it runs, the file
    watcher's state and last event, the device, when it started and its last heartbeat; None
    where it has not said (yet)."""
    pid: int | None = None
    host: str | None = None
    state: str | None = None
    job: int | None = None
    device: str | None = None
    watcher: str | None = None
    last_event: str | None = None
    started_at: float | None = None
    heartbeat: float | None = None

    @classmethod
    def from_meta(cls, d: dict | None) -> "EngineState":
        """From the stored report (keys it does not have: None; others: ignored)."""
        d = d or {}
        return cls(**{name: d.get(name) for name in _ENGINE_FIELDS})


_ENGINE_FIELDS = _fields_of(EngineState)
