"""Running one claimed job: train, crossval, predict, rescore, backup.

context.py  what a job sees (its project, its row, progress, the cancel check)
train.py    train and crossval; predict.py  predict, rescore and backup
dist.py     the same on torchrun ranks (gpus > 1); launch.py  starting and watching ranks

Each job reports progress into its row (fraction, message, ETA) and checks for a cancel request
once per batch. torch/fastai are imported inside the job functions, so an idle engine stays light.
"""

from __future__ import annotations

import logging
import traceback
from typing import Callable

from .context import JobCancelled, JobContext, JobInterrupted
from .predict import job_backup, job_predict, job_rescore
from .train import job_crossval, job_train

log = logging.getLogger("segtriage.engine")

JOB_FUNCS: dict[str, Callable[[JobContext], dict]] = {
    "train": job_train,
    "crossval": job_crossval,
    "predict": job_predict,
    "rescore": job_rescore,
    "backup": job_backup,
}


def run_job(ctx: JobContext) -> None:
    """Run a claimed job to its end state; never raises."""
    job, store = ctx.job, ctx.store
    fn = JOB_FUNCS.get(job.kind)
    log.info("job %d (%s) started: %s", job.id, job.kind, job.params)
    try:
        if fn is None:
            raise ValueError(f"unknown job kind {job.kind!r}")
        result = fn(ctx)
    except JobCancelled:
        store.finish_job(job.id, "cancelled", message="cancelled")
        log.info("job %d cancelled", job.id)
    except JobInterrupted:
        # the engine is stopping: recover_interrupted (called by the engine) re-queues it
        log.info("job %d interrupted by engine stop", job.id)
    except Exception as e:  # noqa: BLE001 - a failed job must never take the engine down
        if ctx.stopping.is_set():
            log.info("job %d interrupted by engine stop (%s)", job.id, e)
            return
        log.error("job %d failed: %s\n%s", job.id, e, traceback.format_exc())
        store.finish_job(job.id, "failed", error=f"{type(e).__name__}: {e}")
    else:
        store.finish_job(job.id, "done", result=result, message="done")
        log.info("job %d done: %s", job.id, result)


__all__ = ["JOB_FUNCS", "JobCancelled", "JobContext", "JobInterrupted", "run_job"]
