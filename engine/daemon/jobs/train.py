"""The train and crossval jobs: which masks are learnt from, the backup before, the model row
after, and the predict each queues."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, replace
from pathlib import Path

from ...project import backup
from ...project.config import ModelConfig
from ...project.models_dir import weights_of_run
from ...store import Store
from . import dist
from . import early as early_ranking
from .context import JobCancelled, JobContext
from .folds import fold_assignment

log = logging.getLogger("segtriage.engine")

# statuses whose masks are not learnt from
EXCLUDED_FROM_TRAINING = ("flagged", "error", "no-mask")

def training_rows(store: Store) -> list:
    """The rows whose masks a training learns from."""
    return [r for r in store.images() if r.mask_path
            and r.status not in EXCLUDED_FROM_TRAINING]


def _backup_before_train(ctx: JobContext) -> None:
    if not ctx.cfg.backup.before_train or ctx.job.params.get("no_backup"):
        return
    ctx.progress(0.0, "backing up before training", force=True)
    snap = backup.snapshot(ctx.project, job_id=ctx.job.id,
                           note=f"before {ctx.job.kind} job {ctx.job.id}")
    ctx.event("log", {"message": f"backup {snap.get('id')} before training"})


def model_cfg(ctx: JobContext, **fixed) -> ModelConfig:
    """The model section with the job's overrides (epochs, arch, folds, gpus, ...:
    ModelConfig.JOB_OVERRIDES) and ``fixed`` applied, checked as the config file's values are
    (a bad one fails the job, naming it; the CLI and the app refuse it before queueing)."""
    return replace(ctx.cfg.model.with_job_params(ctx.job.params), **fixed)


def _rel(root: Path, p) -> str:
    try:
        return Path(p).relative_to(root).as_posix()
    except ValueError:
        return str(p)


def _manifest(rows, folds: dict[str, int] | None = None) -> list[dict]:
    return [{"path": r.path, "mask": r.mask_path, "image_sha256": r.img_sha256,
             "mask_sha256": r.mask_sha256,
             **({"fold": folds[r.path]} if folds is not None else {})} for r in rows]


def _train_one(ctx: JobContext, rows, mcfg, out: Path, *, span: tuple[float, float],
               label: str, fold: int | None = None, valid_idx: list[int] | None = None,
               early: bool = False) -> object:
    """One model's training; ``early``: with the early ranking (``jobs.early``)."""
    from ...ml.callbacks import EPOCH_LINE
    from ...ml.train import TrainCancelled, train

    lo, hi = span
    items = [(ctx.root / r.path, ctx.root / r.mask_path) for r in rows]
    at = [lo]  # the job's progress now: an early ranking's messages keep it

    def on_progress(frac: float, msg: str, eta: float | None) -> None:
        at[0] = lo + (hi - lo) * frac
        ctx.progress(at[0], f"{label}{msg}", eta)

    def on_epoch(d: dict) -> None:
        ctx.event("epoch", {**d, **({"fold": fold} if fold is not None else {})})

    def say(msg: str) -> None:  # the engine's log, and the job's: a follower prints these
        log.info("%s%s", label, msg)  # (skipped masks, epochs raised to reach min_steps)
        if not EPOCH_LINE.match(msg):  # an epoch reaches the job as its epoch event
            ctx.event("log", {"message": f"{label}{msg}"})

    try:
        return train(items, ctx.cfg.project.codes, mcfg, out, epochs=mcfg.epochs,
                           valid_idx=valid_idx, on_progress=on_progress, on_epoch=on_epoch,
                           should_cancel=ctx.should_cancel, log=say,
                           on_checkpoint=early_ranking.ranking_pass(ctx, mcfg, lambda: at[0])
                           if early else None)
    except TrainCancelled:
        ctx.check()  # raises the right one of cancelled / interrupted
        raise JobCancelled() from None


# -- job kinds --------------------------------------------------------------------------------

def job_train(ctx: JobContext) -> dict:
    rows = training_rows(ctx.store)
    if len(rows) < 2:
        raise ValueError(f"need at least 2 images with usable masks to train, found {len(rows)}")
    mcfg = model_cfg(ctx)  # bad settings and rank counts fail before the backup, not after
    gpus = dist.job_gpus(ctx)
    _backup_before_train(ctx)
    ctx.check()
    mid = ctx.store.next_model_id()
    models_dir = ctx.project.state / "models"
    out = models_dir / f"m{mid:04d}.pt"
    t0 = time.monotonic()
    # a run that adds no model row takes its weights along
    with weights_of_run(ctx.store, ctx.job.id, models_dir, [out.name]):
        if gpus > 1:  # torchrun ranks; rank 0 writes the weights, the model row is added below
            res = dist.train_one(ctx, rows, mcfg, out, gpus=gpus, span=(0.0, 1.0), label="")
        else:
            res = _train_one(ctx, rows, mcfg, out, span=(0.0, 1.0), label="", early=True)
        ctx.check()
        info = {"device": str(res.device), "seconds": round(time.monotonic() - t0, 1),
                "history": res.history, "batch_size": res.batch_size,
                "image_size": res.image_size,
                "skipped": [[_rel(ctx.root, p), why] for p, why in res.skipped],
                "valid_items": [_rel(ctx.root, p) for p in res.valid_items]}
        new_id = ctx.store.add_model(
            kind="plain", arch=res.arch, weights=[out.name], config=asdict(mcfg),
            epochs=res.epochs, train_loss=res.train_loss, valid_loss=res.valid_loss,
            valid_dice=res.valid_dice, n_train=res.n_train, n_valid=res.n_valid,
            manifest=_manifest(rows), job_id=ctx.job.id, info=info)
    if new_id != mid:  # only one engine writes models, so this cannot happen; be loud if it does
        raise RuntimeError(f"model id race: expected {mid}, got {new_id}")
    ctx.store.submit_job("predict", {"scope": "stale", **dist.follow_up_params(ctx)},
                         requested_by=f"job {ctx.job.id}")
    return {"model": new_id, "valid_dice": res.valid_dice, "epochs": res.epochs}


def job_crossval(ctx: JobContext) -> dict:
    rows = training_rows(ctx.store)
    mcfg = model_cfg(ctx)  # --folds checked as [model] folds is (2 to 20)
    k = mcfg.folds
    if len(rows) < 2 * k:
        raise ValueError(f"crossval with {k} folds needs at least {2 * k} images with usable "
                         f"masks, found {len(rows)}")
    gpus = dist.job_gpus(ctx)  # bad rank counts fail before the backup, not after
    slots, ranks = (dist.crossval_plan(gpus, k, dist.rank_device(mcfg, gpus))
                    if gpus > 1 else (1, 1))
    _backup_before_train(ctx)
    folds = fold_assignment([r.path for r in rows], k, mcfg.seed)
    mid = ctx.store.next_model_id()
    models_dir = ctx.project.state / "models"
    weights, results = [], []
    # a crossval that does not finish removes every fold's weights (see
    # weights_of_run): nothing resumes from finished folds, and kept they would sit
    # beside the next model of the same number and go into every snapshot
    names = [f"m{mid:04d}_f{f}.pt" for f in range(k)]
    with weights_of_run(ctx.store, ctx.job.id, models_dir, names):
        if slots > 1:  # GPUs: fold models side by side, one GPU (group) each
            results = dist.train_folds_parallel(
                ctx, rows, mcfg, folds, k, lambda f: models_dir / f"m{mid:04d}_f{f}.pt",
                slots, ranks)
            weights = [r.weights.name for r in results]
        for f in range(k if slots == 1 else 0):
            ctx.check()
            # fold f is held out: the model trains on the others and validates on it, so its
            # valid Dice is an honest out-of-fold figure
            held_out = [i for i, r in enumerate(rows) if folds[r.path] == f]
            out = models_dir / f"m{mid:04d}_f{f}.pt"
            if ranks > 1:
                res = dist.train_one(ctx, rows, mcfg, out, gpus=ranks,
                                     span=(f / k, (f + 1) / k), label=f"fold {f + 1}/{k} ",
                                     fold=f, valid_idx=held_out)
            else:
                res = _train_one(ctx, rows, mcfg, out, span=(f / k, (f + 1) / k),
                                 label=f"fold {f + 1}/{k} ", fold=f, valid_idx=held_out)
            weights.append(out.name)
            results.append(res)
        ctx.check()
        mean = lambda xs: (None if any(x is None for x in xs)  # noqa: E731
                           else sum(xs) / len(xs))
        info = {"device": str(results[0].device),
                "folds": [{"fold": i, "valid_dice": r.valid_dice, "n_train": r.n_train}
                          for i, r in enumerate(results)]}
        new_id = ctx.store.add_model(
            kind="crossval", arch=results[0].arch, weights=weights, config=asdict(mcfg),
            epochs=results[0].epochs, train_loss=mean([r.train_loss for r in results]),
            valid_loss=mean([r.valid_loss for r in results]),
            valid_dice=mean([r.valid_dice for r in results]), n_train=len(rows),
            n_valid=sum(r.n_valid for r in results), manifest=_manifest(rows, folds),
            job_id=ctx.job.id, info=info)
    ctx.store.submit_job("predict", {"scope": "stale", **dist.follow_up_params(ctx)},
                         requested_by=f"job {ctx.job.id}")
    return {"model": new_id, "folds": k, "valid_dice": mean([r.valid_dice for r in results])}
