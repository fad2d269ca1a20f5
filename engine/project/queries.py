"""What clients ask of a project, answered once for all of them: the status facts (engine,
images, jobs, model, edits, backup) the CLI's `status` and the app's status pane show, which
job a cancel means, and the report's rows. No torch, no textual: the CLI and the app both call these."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..store import Job, Store
from ..store.rows import BackupRow, EngineState, ModelRow
from .project import Project


@dataclass(frozen=True)
class StatusFacts:
    """The project's state as a person checks it: is the engine at work, on what, with which
    model, and how much was edited since the last training and the last backup."""
    engine: EngineState           # the engine's own report: state, device, watcher, job
    images: dict[str, int]        # status → rows
    problems: int                 # files that are not image rows (orphan masks, ...)
    running: Job | None
    queued: list[Job]
    last_job: Job | None          # the newest job that ended
    model: ModelRow | None        # the current model
    edits_since_train: int        # masks changed by a person or tool since the model
    last_backup: BackupRow | None
    edits_since_backup: int
    curve: list[dict] = field(default_factory=list)  # the running training's epochs
    # the early ranking (docs/scoring.md): the newest checkpoint whose scores some images
    # show (no model version scored them yet), and how many images show a checkpoint's score
    checkpoint: ModelRow | None = None
    checkpoint_rows: int = 0

    @property
    def active(self) -> list[Job]:
        return ([self.running] if self.running else []) + self.queued


def status_facts(store: Store, *, curve: bool = False) -> StatusFacts:
    """The status facts, from one connection. ``curve``: also the running training's
    epochs (the app draws its loss and valid-Dice curve)."""
    jobs = store.jobs(limit=20)
    active = [j for j in jobs if j.active]
    running = next((j for j in active if j.state == "running"), None)
    epochs: list[dict] = []
    if curve and running is not None and running.kind in ("train", "crossval"):
        epochs = [e.data or {} for e in store.events(job_id=running.id, kind="epoch",
                                                       limit=5000)]
    model = store.current_model()
    backup = store.last_backup()
    shown = store.checkpoint_shown()  # {} without checkpoints: one index probe
    return StatusFacts(
        engine=store.engine_state(), images=store.status_counts(),
        problems=len(store.problems()), running=running,
        queued=[j for j in active if j.state == "queued"],
        last_job=next((j for j in jobs if not j.active), None), model=model,
        edits_since_train=store.mask_edits_since(model.created_at if model else None),
        last_backup=backup,
        edits_since_backup=store.mask_edits_since(backup.created_at if backup else None),
        curve=epochs, checkpoint=store.model(min(shown)) if shown else None,
        checkpoint_rows=sum(shown.values()))


def job_to_cancel(store: Store) -> Job | None:
    """The job a cancel that names none means, for the app and `segtriage cancel` alike: the
    running one, else the queued one the engine would run next (the oldest); None when no
    job is running or queued."""
    active = store.active_jobs()  # newest first
    return next((j for j in active if j.state == "running"), active[-1] if active else None)


# the columns of a report row, before the score's figures; the review row's own fields that
# are not shown as they are (hashes, times) are left out
REPORT_HEAD = ("image", "mask", "status", "error", "category", "model", "checkpoint", "fold",
               "precision", "stale", "prob", "width", "height")


def report_rows(project: Project) -> list[dict]:
    """One record per image for `segtriage report`: its files, status, shown score (model
    version, or ``checkpoint``: the training step of the early ranking that scored it, the
    model then None; fold, precision, whether stale, the probability map's path from the
    folder) and every figure of that score."""
    out = []
    steps = {m.id: m.info.get("step") for m in project.store.checkpoints()}
    for r in project.store.review_rows(full=True):
        d = {"image": r.path, "mask": r.mask_path, "status": r.status,
             "error": r.error or r.score_error,
             "category": r.category or ("no-model" if r.model_id is None else None),
             "model": None if r.checkpoint else r.model_id,
             "checkpoint": steps.get(r.model_id) if r.checkpoint else None,
             "fold": r.fold, "precision": r.precision, "stale": r.stale,
             "prob": (os.path.relpath(project.state / r.prob_path, project.root)
                      if r.prob_path else None),
             "width": r.width, "height": r.height}
        d.update(r.metrics)
        out.append(d)
    return out
