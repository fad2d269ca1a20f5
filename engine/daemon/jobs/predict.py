"""The predict, rescore and backup jobs."""

from __future__ import annotations

import time
from pathlib import Path

from ...project import backup
from ...project.scoring import probs
from ...project.scoring.rescore import rescore_image, score_and_store, store_score_error
from . import dist
from .context import JobContext
from .folds import fold_groups
from .early import drop_rankings
from .train import model_cfg

def _rows_to_predict(ctx: JobContext, model_id: int) -> list:
    scope = ctx.job.params.get("scope", "stale")
    store = ctx.store
    if scope == "list":
        wanted = set(ctx.job.params.get("images", []))
        return [r for r in store.images() if r.path in wanted and r.status != "error"]
    if scope == "all":
        rows = [r for r in store.images() if r.status != "error"]
        resumed = ctx.job.params.get("resumed_from")
        if resumed:  # a re-queued 'all' continues where the interrupted one stopped
            prev = store.job(resumed)
            since = prev.started_at if prev and prev.started_at else 0.0
            done = {s.image_id for s in store.scores_for_model(model_id)
                    if s.computed_at >= since}
            rows = [r for r in rows if r.id not in done]
        return rows
    # stale: no score from this model for the current image content (mask changes are
    # re-scored from stored probabilities and need no model run)
    return list(store.unscored_or_stale(model_id))


def job_predict(ctx: JobContext) -> dict:
    """Predict and score with the current model; then the early rankings (jobs.early) that
    no image shows any more (a model version has scored each of their images) are dropped."""
    m = ctx.store.current_model()
    if m is None:
        raise ValueError("no model yet: train one first (segtriage train DIR)")
    res = _predict(ctx, m)
    gone = drop_rankings(ctx, keep=ctx.store.checkpoint_shown())
    return {**res, "checkpoints_dropped": len(gone)} if gone else res


def _predict(ctx: JobContext, m) -> dict:
    from ...ml import infer

    store, cfg = ctx.store, ctx.cfg
    rows = _rows_to_predict(ctx, m.id)
    if not rows:
        return {"model": m.id, "predicted": 0}
    state = ctx.project.state
    weights = [state / "models" / w for w in m.weights]
    mcfg = model_cfg(ctx, arch=m.arch)
    gpus = dist.job_gpus(ctx)
    if gpus > 1:  # sharded over torchrun ranks; this process scores and writes every row
        return dist.predict_sharded(ctx, m, rows, mcfg, gpus)
    ctx.progress(0.0, f"loading model {m.id}", force=True)
    predictor = infer.Predictor(weights if len(weights) > 1 else weights[0], m.arch,
                                cfg.project.codes, mcfg)
    n, done, errors, t0 = len(rows), 0, 0, time.monotonic()
    for fold, grp in fold_groups(m, rows):
        by_path = {str(ctx.root / r.path): r for r in grp}
        for path, prob in predictor.predict(list(map(Path, by_path)), fold=fold):
            ctx.check()
            r = by_path[str(path)]
            if isinstance(prob, Exception):
                errors += 1
                store_score_error(store, r, model_id=m.id, fold=fold,
                                  precision=predictor.precision_tag, prob_rel=None,
                                  error=str(prob))
            else:
                rel = probs.prob_relpath(r.img_sha256 or f"id{r.id}", m.id, fold)
                probs.save_prob_png(prob, state / rel)
                score_and_store(ctx.project, store.image(r.id) or r,
                                model_id=m.id, fold=fold, prob=prob,
                                precision=predictor.precision_tag, prob_rel=rel)
            done += 1
            el = time.monotonic() - t0
            eta = el / done * (n - done) if done else None
            ctx.progress(done / n, f"predicted {done}/{n} ({done / max(el, 1e-9):.1f} img/s)",
                         eta)
    return {"model": m.id, "predicted": done, "errors": errors,
            "precision": predictor.precision_tag, "seconds": round(time.monotonic() - t0, 1)}


def job_rescore(ctx: JobContext) -> dict:
    """Re-score every row from its stored probabilities (after a scoring config change)."""
    rows = ctx.store.images()
    n = max(len(rows), 1)
    ok = 0
    for i, r in enumerate(rows, 1):
        ctx.check()
        ok += rescore_image(ctx.project, r.id, force=True)
        ctx.progress(i / n, f"re-scored {i}/{n}")
    return {"rescored": ok}


def job_backup(ctx: JobContext) -> dict:
    dest = ctx.job.params.get("dest")

    def progress(frac: float, msg: str) -> None:
        ctx.check()
        ctx.progress(frac, msg)

    snap = backup.snapshot(ctx.project, dest=Path(dest) if dest else None,
                           note=ctx.job.params.get("note"), progress=progress,
                           job_id=ctx.job.id, take_over=bool(ctx.job.params.get("take_over")))
    return {k: snap.get(k) for k in ("id", "files", "bytes_added", "masks_changed")}
