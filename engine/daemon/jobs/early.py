"""The early ranking: while a training runs, a checkpoint of it scores the images no model
version has scored, so a person has a ranking minutes before the final model (docs/scoring.md,
"Early ranking"). The training's callback (``ml.callbacks.early_ranking_callback``) says when;
this module says what: predict, store the probability maps, score, and replace the previous
checkpoint's ranking. The final model's predict drops the checkpoints (``drop_rankings``).
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from ...project.scoring import probs
from ...project.scoring.rescore import (read_current_mask, score_and_store,
                                        store_score_error)
from .context import JobContext

log = logging.getLogger("segtriage.engine")


def prob_dir(model_id: int) -> str:
    """The folder of a model's (or checkpoint's) probability maps, relative to the state."""
    return Path(probs.prob_relpath("0" * 64, model_id)).parents[1].as_posix()


def drop_rankings(ctx: JobContext, *, keep=()) -> list[int]:
    """Drop every checkpoint row but ``keep`` (models.drop_checkpoints), and its probability
    maps."""
    gone = ctx.store.drop_checkpoints(keep=keep)
    for mid in gone:
        shutil.rmtree(ctx.project.state / prob_dir(mid), ignore_errors=True)
    return gone


def ranking_pass(ctx: JobContext, mcfg, progress_at: Callable[[], float]):
    """The ``on_checkpoint`` of a training job: one ranking pass over the images without a
    model version's score. A pass that does not finish (a cancel, the engine stopping) drops
    its own rows: a ranking is shown whole or not at all."""

    def on_checkpoint(ck) -> None:
        store = ctx.store
        rows = store.without_model_score()
        if not rows:
            return
        mid = store.add_checkpoint(arch=mcfg.arch, config=asdict(mcfg), step=ck.step,
                                   steps=ck.steps, job_id=ctx.job.id,
                                   info={"fit_seconds": round(ck.seconds, 1)})
        try:
            done = _predict(ctx, ck, mid, rows, progress_at)
        except BaseException:
            drop_rankings(ctx, keep=[m.id for m in store.checkpoints() if m.id != mid])
            raise
        if done is None:
            drop_rankings(ctx, keep=[m.id for m in store.checkpoints() if m.id != mid])
            return
        valid_dice, info = done
        store.finish_checkpoint(mid, valid_dice=valid_dice, info=info)
        drop_rankings(ctx, keep=[mid])  # the earlier checkpoints' rows switch to this one
        msg = (f"early ranking of {len(rows)} images from the checkpoint at step {ck.step} of "
               f"{ck.steps} in {info['seconds']:.1f} s"
               + ("" if valid_dice is None else f"; its valid Dice {valid_dice:.4f}"))
        log.info("%s", msg)
        ctx.event("log", {"message": msg})

    return on_checkpoint


def _predict(ctx: JobContext, ck, mid: int, rows, progress_at) -> tuple | None:
    """Predict and score ``rows`` under checkpoint ``mid``: (valid Dice, info), or None when
    the job is to stop."""
    t0 = time.monotonic()
    store, state, pred = ctx.store, ctx.project.state, ck.predictor
    valid = {str(p) for p in ck.valid_items}
    by_path = {str(ctx.root / r.path): r for r in rows}
    n, done, inter, total = len(rows), 0, 0, 0
    label = f"early ranking (checkpoint at step {ck.step} of {ck.steps})"
    ctx.progress(progress_at(), f"{label}: 0/{n}", force=True)
    for path, prob in pred.predict(list(map(Path, by_path))):
        if ctx.should_cancel():
            return None
        r = by_path[str(path)]
        if isinstance(prob, Exception):
            store_score_error(store, r, model_id=mid, fold=None,
                              precision=pred.precision_tag, prob_rel=None, error=str(prob))
        else:
            rel = probs.prob_relpath(r.img_sha256 or f"id{r.id}", mid)
            probs.save_prob_png(prob, state / rel, sync=False)  # a cache: dropped soon
            row = store.image(r.id) or r
            score_and_store(ctx.project, row, model_id=mid, fold=None, prob=prob,
                            precision=pred.precision_tag, prob_rel=rel)
            if str(path) in valid and row.mask_path:
                try:
                    y = read_current_mask(ctx.project, row) > 0
                except Exception:  # noqa: BLE001 - its score row says what is wrong
                    y = None
                if y is not None and y.shape == prob.shape:
                    yhat = prob > 0.5
                    inter += int(np.count_nonzero(y & yhat))
                    total += int(np.count_nonzero(y)) + int(np.count_nonzero(yhat))
        done += 1
        ctx.progress(progress_at(), f"{label}: {done}/{n}")
    has_valid = any(p in valid for p in by_path)
    dice = None if not has_valid else (1.0 if total == 0 else 2.0 * inter / total)
    return dice, {"images": n, "seconds": round(time.monotonic() - t0, 1),
                  "precision": pred.precision_tag}
