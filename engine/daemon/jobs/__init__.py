"""Running one claimed job: train, crossval, predict, rescore, backup.

Each job reports progress into its row (fraction, message, ETA) and checks for a cancel request
once per batch. torch/fastai are imported inside the job functions, so an idle engine stays light.
"""

from __future__ import annotations

import glob
import json
import logging
import random
import re
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from . import dist  # gpus > 1: torchrun ranks
from ...store import Job, Store

log = logging.getLogger("segtriage.engine")

# statuses whose masks are not learnt from
EXCLUDED_FROM_TRAINING = ("flagged", "error", "no-mask")


class JobCancelled(Exception):
    pass


class JobInterrupted(Exception):
    """The engine is stopping: the job is marked interrupted and re-queued."""


@dataclass
class JobContext:
    root: Path
    cfg: object
    store: Store
    job: Job
    stopping: threading.Event
    _last_write: float = field(default=0.0)

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


# -- helpers --------------------------------------------------------------------------------

def training_rows(store: Store) -> list:
    return [r for r in store.images() if r["mask_path"]
            and r["status"] not in EXCLUDED_FROM_TRAINING]


def _backup_before_train(ctx: JobContext) -> None:
    if not ctx.cfg.backup.before_train or ctx.job.params.get("no_backup"):
        return
    from ...project import backup

    ctx.progress(0.0, "backing up before training", force=True)
    snap = backup.snapshot(ctx.root, ctx.cfg, ctx.store, job_id=ctx.job.id,
                           note=f"before {ctx.job.kind} job {ctx.job.id}")
    ctx.event("log", {"message": f"backup {snap.get('id')} before training"})


def _model_cfg(ctx: JobContext):
    """The model section with per-job overrides (epochs, arch) applied."""
    from types import SimpleNamespace

    m = SimpleNamespace(**ctx.cfg.model.as_dict())
    for key in ("epochs", "arch", "batch_size", "lr", "image_size"):
        if ctx.job.params.get(key) is not None:
            setattr(m, key, ctx.job.params[key])
    return m


def _rel(root: Path, p) -> str:
    try:
        return Path(p).relative_to(root).as_posix()
    except ValueError:
        return str(p)


def _manifest(rows, folds: dict[str, int] | None = None) -> list[dict]:
    return [{"path": r["path"], "mask": r["mask_path"], "image_sha256": r["img_sha256"],
             "mask_sha256": r["mask_sha256"],
             **({"fold": folds[r["path"]]} if folds is not None else {})} for r in rows]


def _train_one(ctx: JobContext, rows, mcfg, out: Path, *, span: tuple[float, float],
               label: str, fold: int | None = None, valid_idx: list[int] | None = None) -> object:
    from ...ml import model

    lo, hi = span
    items = [(ctx.root / r["path"], ctx.root / r["mask_path"]) for r in rows]

    def on_progress(frac: float, msg: str, eta: float | None) -> None:
        ctx.progress(lo + (hi - lo) * frac, f"{label}{msg}", eta)

    def on_epoch(d: dict) -> None:
        ctx.event("epoch", {**d, **({"fold": fold} if fold is not None else {})})

    def say(msg: str) -> None:  # the engine's log, and the job's: a follower prints these
        log.info("%s%s", label, msg)  # (skipped masks, epochs raised to reach min_steps)
        if not model.EPOCH_LINE.match(msg):  # an epoch reaches the job as its epoch event
            ctx.event("log", {"message": f"{label}{msg}"})

    try:
        return model.train(items, ctx.cfg.project.codes, mcfg, out, epochs=mcfg.epochs,
                           valid_idx=valid_idx, on_progress=on_progress, on_epoch=on_epoch,
                           should_cancel=ctx.should_cancel, log=say)
    except model.TrainCancelled:
        ctx.check()  # raises the right one of cancelled / interrupted
        raise JobCancelled() from None


# -- weights of a training that does not finish ------------------------------------------------
#
# A training writes its weights (``mNNNN.pt``, a crossval one ``mNNNN_fK.pt`` per fold, each
# with a ``.json`` sidecar) before its model row exists; the number is the next model id. A
# run that does not finish (cancelled, failed, the engine stopped or killed) adds no row, so
# its files belong to no model: the next model takes the same number (a plain m0003.pt beside
# a cancelled crossval's m0003_f0.pt) and every snapshot copied them (119 MB a fold). Nothing
# resumes from them: a re-queued training starts over. So a run that does not finish removes
# every file it was to write, and one a killed engine could not clean up is listed in a hidden
# marker (``.unfinished-job-N.json``, never in a snapshot) that the next engine start deletes
# with its files. A file a model row names is never deleted.

UNFINISHED_PREFIX = ".unfinished-job-"
_WEIGHTS = re.compile(r"m(\d+)(?:_f\d+)?\.pt(?:\.json)?")
_WEIGHTS_TMP = re.compile(r"\.m\d+(?:_f\d+)?\.pt(?:\.json)?\..+\.tmp")  # atomic_write's


def _referenced(store: Store) -> set[str]:
    """Every file a model row names: its weights and their sidecars."""
    names: set[str] = set()
    for m in store.models():
        for w in m["weights"] or []:
            names.update((w, f"{w}.json"))
    return names


def _with_sidecars(names) -> set[str]:
    return {n for w in names for n in (w, f"{w}.json")}


def _markers(models_dir: Path) -> list[Path]:
    try:
        return sorted(models_dir.glob(f"{UNFINISHED_PREFIX}*.json"))
    except OSError:
        return []


def _marked(marker: Path) -> set[str]:
    try:
        files = json.loads(marker.read_text()).get("files") or []
    except (OSError, ValueError, AttributeError):
        return set()
    return _with_sidecars(f for f in files if isinstance(f, str) and _WEIGHTS.fullmatch(f))


def unfinished_weights(models_dir: Path, store: Store) -> set[str]:
    """Names of the weight files in ``models_dir`` that belong to no model: those listed by the
    marker of a training that did not finish and named by no model row. Nothing is guessed
    from names alone: a file no row names may come from before ``state.db`` was lost or
    rebuilt, and the next model may reuse its number, so only a marker says a file is waste."""
    if not models_dir.is_dir():
        return set()
    keep = _referenced(store)
    found: set[str] = set()
    for marker in _markers(models_dir):
        found |= _marked(marker)
    return {n for n in found if n not in keep and (models_dir / n).is_file()}


def _remove(models_dir: Path, names: set[str]) -> int:
    n = 0
    for name in sorted(names):
        try:
            (models_dir / name).unlink()
            n += 1
        except FileNotFoundError:
            pass
        except OSError as e:
            log.warning("cannot remove %s of an unfinished training: %s", models_dir / name, e)
    return n


def remove_unfinished_weights(models_dir: Path, store: Store) -> int:
    """At engine start (no training runs): delete the weight files of trainings that did not
    finish (see above), their markers and the temp files of a weights write that was killed.
    Returns the number of files deleted."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return 0
    n = _remove(models_dir, unfinished_weights(models_dir, store))
    for p in list(models_dir.iterdir()):
        if _WEIGHTS_TMP.fullmatch(p.name):
            n += _remove(models_dir, {p.name})
    for marker in _markers(models_dir):  # kept while a file it lists could not be deleted
        if not any((models_dir / f).is_file() for f in _marked(marker) - _referenced(store)):
            marker.unlink(missing_ok=True)
    return n


@contextmanager
def _weights_of_this_run(ctx: JobContext, models_dir: Path, names: list[str]) -> Iterator[None]:
    """Around a training that writes ``names``: when it ends without its model row (a cancel,
    a failure, the engine stopping), those files and their sidecars are deleted; a marker
    lists them meanwhile for the case the engine is killed."""
    from ...project.imageio import atomic_write_bytes

    models_dir.mkdir(parents=True, exist_ok=True)
    marker = models_dir / f"{UNFINISHED_PREFIX}{ctx.job.id}.json"
    atomic_write_bytes(marker, json.dumps({"job": ctx.job.id, "files": names}).encode())
    try:
        yield
    finally:
        try:
            # a file a model row names stays: the run finished, or got that far
            gone = _with_sidecars(names) - _referenced(ctx.store)
            # and the temp file of a weights write a killed rank cut short
            _remove(models_dir, {t.name for n in gone
                                 for t in models_dir.glob(f".{glob.escape(n)}.*.tmp")})
            if _remove(models_dir, gone):
                log.info("job %d did not finish: removed its weights %s", ctx.job.id,
                         ", ".join(sorted(n for n in gone if n.endswith(".pt"))))
            if not any((models_dir / f).is_file() for f in gone):
                marker.unlink(missing_ok=True)
        except Exception as e:  # noqa: BLE001 - never hide the job's own outcome
            log.warning("job %d: cleaning up its weights failed (the next engine start "
                        "retries): %s", ctx.job.id, e)


# -- job kinds --------------------------------------------------------------------------------

def job_train(ctx: JobContext) -> dict:
    rows = training_rows(ctx.store)
    if len(rows) < 2:
        raise ValueError(f"need at least 2 images with usable masks to train, found {len(rows)}")
    gpus = dist.job_gpus(ctx)  # a bad rank count fails before the backup, not after
    _backup_before_train(ctx)
    ctx.check()
    mcfg = _model_cfg(ctx)
    mid = ctx.store.next_model_id()
    models_dir = ctx.cfg.state_path(ctx.root) / "models"
    out = models_dir / f"m{mid:04d}.pt"
    t0 = time.monotonic()
    with _weights_of_this_run(ctx, models_dir, [out.name]):  # no row: the weights go too
        if gpus > 1:  # torchrun ranks; rank 0 writes the weights, the model row is added below
            res = dist.train_one(ctx, rows, mcfg, out, gpus=gpus, span=(0.0, 1.0),
                                      label="")
        else:
            res = _train_one(ctx, rows, mcfg, out, span=(0.0, 1.0), label="")
        ctx.check()
        info = {"device": str(res.device), "seconds": round(time.monotonic() - t0, 1),
                "history": res.history, "batch_size": getattr(res, "batch_size", None),
                "image_size": getattr(res, "image_size", None),
                "skipped": [[_rel(ctx.root, p), why] for p, why in getattr(res, "skipped", [])],
                "valid_items": [_rel(ctx.root, p) for p in res.valid_items]}
        new_id = ctx.store.add_model(
            kind="plain", arch=res.arch, weights=[out.name], config=vars(mcfg),
            epochs=res.epochs, train_loss=res.train_loss, valid_loss=res.valid_loss,
            valid_dice=res.valid_dice, n_train=res.n_train, n_valid=res.n_valid,
            manifest=_manifest(rows), job_id=ctx.job.id, info=info)
    if new_id != mid:  # only one engine writes models, so this cannot happen; be loud if it does
        raise RuntimeError(f"model id race: expected {mid}, got {new_id}")
    ctx.store.submit_job("predict", {"scope": "stale", **dist.follow_up_params(ctx)},
                         requested_by=f"job {ctx.job.id}")
    return {"model": new_id, "valid_dice": res.valid_dice, "epochs": res.epochs}


def fold_assignment(paths: list[str], k: int, seed: int) -> dict[str, int]:
    """Deterministic, balanced fold of each path (same seed and set → same folds)."""
    order = sorted(paths)
    random.Random(seed).shuffle(order)
    return {p: i % k for i, p in enumerate(order)}


def job_crossval(ctx: JobContext) -> dict:
    rows = training_rows(ctx.store)
    k = int(ctx.job.params.get("folds") or ctx.cfg.model.folds)
    if len(rows) < 2 * k:
        raise ValueError(f"crossval with {k} folds needs at least {2 * k} images with usable "
                         f"masks, found {len(rows)}")
    mcfg = _model_cfg(ctx)
    gpus = dist.job_gpus(ctx)  # bad rank counts fail before the backup, not after
    slots, ranks = (dist.crossval_plan(gpus, k, dist.rank_device(mcfg, gpus))
                    if gpus > 1 else (1, 1))
    _backup_before_train(ctx)
    folds = fold_assignment([r["path"] for r in rows], k, mcfg.seed)
    mid = ctx.store.next_model_id()
    models_dir = ctx.cfg.state_path(ctx.root) / "models"
    weights, results = [], []
    # a crossval that does not finish removes every fold's weights (see
    # _weights_of_this_run): nothing resumes from finished folds, and kept they would sit
    # beside the next model of the same number and go into every snapshot
    names = [f"m{mid:04d}_f{f}.pt" for f in range(k)]
    with _weights_of_this_run(ctx, models_dir, names):
        if slots > 1:  # GPUs: fold models side by side, one GPU (group) each
            results = dist.train_folds_parallel(
                ctx, rows, mcfg, folds, k, lambda f: models_dir / f"m{mid:04d}_f{f}.pt",
                slots, ranks)
            weights = [r.weights.name for r in results]
        for f in range(k if slots == 1 else 0):
            ctx.check()
            # fold f is held out: the model trains on the others and validates on it, so its
            # valid Dice is an honest out-of-fold figure
            held_out = [i for i, r in enumerate(rows) if folds[r["path"]] == f]
            out = models_dir / f"m{mid:04d}_f{f}.pt"
            if ranks > 1:
                res = dist.train_one(ctx, rows, mcfg, out, gpus=ranks,
                                          span=(f / k, (f + 1) / k),
                                          label=f"fold {f + 1}/{k} ", fold=f,
                                          valid_idx=held_out)
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
            kind="crossval", arch=results[0].arch, weights=weights, config=vars(mcfg),
            epochs=results[0].epochs, train_loss=mean([r.train_loss for r in results]),
            valid_loss=mean([r.valid_loss for r in results]),
            valid_dice=mean([r.valid_dice for r in results]), n_train=len(rows),
            n_valid=sum(r.n_valid for r in results), manifest=_manifest(rows, folds),
            job_id=ctx.job.id, info=info)
    ctx.store.submit_job("predict", {"scope": "stale", **dist.follow_up_params(ctx)},
                         requested_by=f"job {ctx.job.id}")
    return {"model": new_id, "folds": k, "valid_dice": mean([r.valid_dice for r in results])}


def _rows_to_predict(ctx: JobContext, model_id: int) -> list:
    scope = ctx.job.params.get("scope", "stale")
    store = ctx.store
    if scope == "list":
        wanted = set(ctx.job.params.get("images", []))
        return [r for r in store.images() if r["path"] in wanted and r["status"] != "error"]
    if scope == "all":
        rows = [r for r in store.images() if r["status"] != "error"]
        resumed = ctx.job.params.get("resumed_from")
        if resumed:  # a re-queued 'all' continues where the interrupted one stopped
            prev = store.job(resumed)
            since = prev.started_at if prev and prev.started_at else 0.0
            done = {s["image_id"] for s in store.scores_for_model(model_id)
                    if s["computed_at"] >= since}
            rows = [r for r in rows if r["id"] not in done]
        return rows
    # stale: no score from this model for the current image content (mask changes are
    # re-scored from stored probabilities and need no model run)
    return list(store.unscored_or_stale(model_id))


def job_predict(ctx: JobContext) -> dict:
    from ...ml import infer

    store, cfg = ctx.store, ctx.cfg
    m = store.current_model()
    if m is None:
        raise ValueError("no model yet: train one first (segtriage train DIR)")
    rows = _rows_to_predict(ctx, m["id"])
    if not rows:
        return {"model": m["id"], "predicted": 0}
    state = cfg.state_path(ctx.root)
    weights = [state / "models" / w for w in m["weights"]]
    mcfg = _model_cfg(ctx)
    mcfg.arch = m["arch"]
    gpus = dist.job_gpus(ctx)
    if gpus > 1:  # sharded over torchrun ranks; this process scores and writes every row
        return dist.predict_sharded(ctx, m, rows, mcfg, gpus)
    ctx.progress(0.0, f"loading model {m['id']}", force=True)
    predictor = infer.Predictor(weights if len(weights) > 1 else weights[0], m["arch"],
                                cfg.project.codes, mcfg)
    # out-of-fold: a labelled image is scored by the fold model that never saw its mask
    fold_of: dict[str, tuple[int, str]] = {}
    if m["kind"] == "crossval":
        for e in m["manifest"] or []:
            fold_of[e["path"]] = (e["fold"], e["mask_sha256"])
    groups: dict[int | None, list] = {}
    for r in rows:
        f = fold_of.get(r["path"])
        groups.setdefault(f[0] if f else None, []).append(r)
    n, done, errors, t0 = len(rows), 0, 0, time.monotonic()
    for fold, grp in sorted(groups.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
        by_path = {str(ctx.root / r["path"]): r for r in grp}
        for path, prob in predictor.predict(list(map(Path, by_path)), fold=fold):
            ctx.check()
            r = by_path[str(path)]
            if isinstance(prob, Exception):
                errors += 1
                store.put_score(r["id"], m["id"], fold=fold, image_sha256=r["img_sha256"],
                                mask_sha256=r["mask_sha256"], precision=predictor.precision_tag,
                                prob_path=None, category=None, metrics={}, error=str(prob))
            else:
                from ...project.scoring.rescore import score_and_store

                rel = infer.prob_relpath(r["img_sha256"] or f"id{r['id']}", m["id"], fold)
                infer.save_prob_png(prob, state / rel)
                score_and_store(ctx.root, cfg, store, store.image(r["id"]) or r,
                                model_id=m["id"], fold=fold, prob=prob,
                                precision=predictor.precision_tag, prob_rel=rel)
            done += 1
            el = time.monotonic() - t0
            eta = el / done * (n - done) if done else None
            ctx.progress(done / n, f"predicted {done}/{n} ({done / max(el, 1e-9):.1f} img/s)",
                         eta)
    return {"model": m["id"], "predicted": done, "errors": errors,
            "precision": predictor.precision_tag, "seconds": round(time.monotonic() - t0, 1)}


def job_rescore(ctx: JobContext) -> dict:
    """Re-score every row from its stored probabilities (after a scoring config change)."""
    from ...project.scoring.rescore import rescore_image

    rows = ctx.store.images()
    n = max(len(rows), 1)
    ok = 0
    for i, r in enumerate(rows, 1):
        ctx.check()
        ok += rescore_image(ctx.root, ctx.cfg, ctx.store, r["id"], force=True)
        ctx.progress(i / n, f"re-scored {i}/{n}")
    return {"rescored": ok}


def job_backup(ctx: JobContext) -> dict:
    from ...project import backup

    dest = ctx.job.params.get("dest")

    def progress(frac: float, msg: str) -> None:
        ctx.check()
        ctx.progress(frac, msg)

    snap = backup.snapshot(ctx.root, ctx.cfg, ctx.store, dest=Path(dest) if dest else None,
                           note=ctx.job.params.get("note"), progress=progress,
                           job_id=ctx.job.id, take_over=bool(ctx.job.params.get("take_over")))
    return {k: snap.get(k) for k in ("id", "files", "bytes_added", "masks_changed")}


JOB_FUNCS: dict[str, Callable[[JobContext], dict]] = {
    "train": job_train,
    "crossval": job_crossval,
    "predict": job_predict,
    "rescore": job_rescore,
    "backup": job_backup,
}
