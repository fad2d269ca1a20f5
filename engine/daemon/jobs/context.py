"""What a running job sees: its project, its row, progress, events and the cancel check."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ...project.config import Config
from ...project.project import Project
from ...store import Job, Store


class JobCancelled(Exception):
    pass


class JobInterrupted(Exception):
    """The engine is stopping: the job is marked interrupted and re-queued."""


@dataclass
class JobContext:
    project: Project   # the config as read for this job (each job reads it anew)
    job: Job
    stopping: threading.Event
    _last_write: float = field(default=0.0)

    @property
    def root(self) -> Path:
        return self.project.root

    @property
    def cfg(self) -> Config:
        return self.project.cfg

    @property
    def store(self) -> Store:
        return self.project.store

    def should_cancel(self) -> bool:
        if self.stopping.is_set():
            return True
        return self.store.cancel_requested(self.job.id)

    def check(self) -> None:
        if self.stopping.is_set():
            raise JobInterrupted()
        if self.store.cancel_requested(self.job.id):
            raise JobCancelled()

    def progress(self, fraction: float, message: str, eta: float | None = None,
                 force: bool = False) -> None:
        # progress rows are throttled to ~5 writes a second: clients poll at that rate anyway
        now = time.monotonic()
        if force or now - self._last_write > 0.2:
            self._last_write = now
            self.store.update_job(self.job.id, progress=fraction, message=message, eta=eta)

    def event(self, kind: str, data: dict) -> None:
        self.store.add_event(kind, data, job_id=self.job.id)
