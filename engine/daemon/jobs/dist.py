"""The engine's side of distributed jobs (``gpus > 1``): write the run folder, launch torchrun,
follow it, and turn what the ranks wrote into database rows.

The train, crossval and predict jobs (train.py, predict.py) call in here when the job's ``gpus``
(job param, else ``[model] gpus``) is above 1. The engine stays the only process that opens
SQLite; ranks talk to it through ``ml.dist.runfolder`` files (see there for the protocol):

* train: one ``torchrun --nproc_per_node N`` (N GPU ranks over nccl, or N CPU ranks over gloo
  on a machine without CUDA); rank 0 writes the weights and ``result.json``; this module builds
  the ``TrainResult`` from it and the train job adds the one model row as usual.
* predict: every rank writes its shard's probability PNGs and a JSON-lines list; this module
  scores each listed image from its PNG (``rescore.score_and_store``, numpy only) while the
  ranks run, and checks at the end that every image was scored exactly once.
* crossval on GPUs: the K fold models train side by side, one process (or GPU group) per slot
  (``CUDA_VISIBLE_DEVICES``); on CPU ranks the folds run one after another.
* ``params["launch"] == "external"``: no torchrun is started here; the engine writes the run
  folder and waits for ranks started elsewhere (SLURM, a second host; docs/scaling.md).

Launching and supervising torchrun is launch.py's. Cancel / engine stop: the ``cancel`` file is written, the ranks stop within a batch; torchrun
still running after a grace period gets SIGTERM, then SIGKILL. kill -9 of the engine: torchrun
was started with a parent-death signal (and so was every rank), and the ranks also stop when
the engine's heartbeat file stops changing, so nothing keeps running orphaned; the next engine
marks the job interrupted as for any job.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

from ...ml.dist.runfolder import JsonlTail, RunFolder
from ...project.config import ModelConfig
from ...project.project import Project
from ...project.scoring import probs
from ...project.scoring.rescore import score_and_store, store_score_error
from ...store.rows import ImageRow, ModelRow
from .context import JobContext
from .folds import fold_of
from .launch import (Launch, failure_message, gpu_groups, rank_env, supervise, torchrun_cmd,
                     visible_gpus)

log = logging.getLogger("segtriage.engine")

HEARTBEAT_TIMEOUT_S = 60.0   # ranks stop when the engine's heartbeat stalls this long
MIN_IMAGES_PER_RANK = 4      # a train job's images per rank (valid ones included)


def job_gpus(ctx: JobContext) -> int:
    """GPUs (= ranks) for this job: the job's ``gpus`` param, else ``[model] gpus``, checked
    as [model] gpus is."""
    n = ctx.cfg.model.with_job_params(ctx.job.params).gpus
    if n < 2 and ctx.job.params.get("launch") == "external":
        raise ValueError("launch = external needs gpus = the total number of ranks you will "
                         "start (2 or more), e.g. --gpus 8 for 2 nodes x 4 GPUs")
    return n


def rank_device(mcfg: ModelConfig, gpus: int) -> str:
    """'cuda' (one rank per GPU, nccl) or 'cpu' (CPU ranks over gloo, e.g. in CI)."""
    from ...ml.device import pick_device

    if pick_device(mcfg.device).type != "cuda":
        return "cpu"
    have = len(visible_gpus())
    if gpus > have:
        raise ValueError(f"gpus = {gpus} but only {have} CUDA GPU(s) are visible here; "
                         f"lower --gpus (or [model] gpus), or set device = 'cpu' for CPU ranks")
    return "cuda"


def follow_up_params(ctx: JobContext) -> dict:
    """Params for the predict a train/crossval job queues: the same ranks, when launched here
    (external ranks were started for this job only)."""
    gpus = ctx.job.params.get("gpus")
    if gpus is None or ctx.job.params.get("launch") == "external":
        return {}
    return {"gpus": gpus}


def _external(ctx: JobContext) -> bool:
    return ctx.job.params.get("launch") == "external"


def _job_device(ctx: JobContext, mcfg: ModelConfig, gpus: int) -> str:
    # external ranks run on other hosts: they pick CUDA or CPU themselves
    return "auto" if _external(ctx) else rank_device(mcfg, gpus)


def crossval_plan(gpus: int, k: int, device: str) -> tuple[int, int]:
    """(fold models trained side by side, ranks per fold model).

    One GPU or none: (1, 1), the single-process loop. CPU ranks: (1, gpus), folds one after
    another, each on `gpus` CPU ranks (side by side they would only share the same cores).
    GPUs: min(gpus, k) folds at once, each on gpus // slots GPUs; more folds than slots queue.
    """
    if gpus <= 1:
        return 1, 1
    if device != "cuda":
        return 1, gpus
    slots = max(1, min(gpus, k))
    return slots, gpus // slots


def _launch(ctx: JobContext, run: RunFolder, kind: str, nproc: int, device: str) -> Launch:
    if _external(ctx):
        ctx.progress(0.0, f"waiting for ranks started elsewhere on run folder {run.path} "
                     "(docs/scaling.md)", force=True)
        return Launch(run, None)
    return Launch(run, torchrun_cmd(kind, run.path, nproc),
                  env_for_slot=lambda slot: rank_env(device, nproc))


# -- training ----------------------------------------------------------------------------------------

def train_spec(*, job_id: int, root: Path, pairs: list[tuple[str, str]], codes,
               mcfg: ModelConfig,
               out_name: str, device: str, valid_idx: list[int] | None) -> dict:
    """spec.json of a training run: (image, mask) paths relative to `root`; the weights go to
    ``<state>/models/<out_name>``."""
    return {"kind": "train", "job": job_id, "root": str(root),
            "items": [[a, b] for a, b in pairs], "codes": list(codes),
            "model": asdict(mcfg), "out": out_name, "epochs": mcfg.epochs,
            "valid_idx": valid_idx, "device": device,
            "heartbeat_timeout_s": HEARTBEAT_TIMEOUT_S}


def _train_spec(ctx: JobContext, rows, mcfg: ModelConfig, out: Path, device: str,
                valid_idx: list[int] | None) -> dict:
    return train_spec(job_id=ctx.job.id, root=ctx.root,
                      pairs=[(r.path, r.mask_path) for r in rows],
                      codes=ctx.cfg.project.codes, mcfg=mcfg, out_name=out.name, device=device,
                      valid_idx=valid_idx)


def predict_spec(*, job_id: int, root: Path, items: list[dict], codes, mcfg: ModelConfig,
                 model: ModelRow, device: str) -> dict:
    """spec.json of a prediction run: items are {id, path (relative to root), sha, fold};
    `model` is the model row (weights, arch, id)."""
    return {"kind": "predict", "job": job_id, "root": str(root), "items": items,
            "codes": list(codes), "model": asdict(mcfg), "weights": list(model.weights),
            "arch": model.arch, "model_id": model.id, "device": device,
            "heartbeat_timeout_s": HEARTBEAT_TIMEOUT_S}


def _relay(ctx: JobContext, ev: dict, span: tuple[float, float], label: str,
           fold: int | None, state: dict) -> None:
    kind = ev.get("kind")
    if kind == "progress":
        frac = float(ev.get("fraction") or 0.0)
        state["fraction"] = frac
        lo, hi = span
        ctx.progress(lo + (hi - lo) * frac, f"{label}{ev.get('message', '')}", ev.get("eta"))
    elif kind == "epoch":
        ctx.event("epoch", {**ev.get("data", {}), **({"fold": fold} if fold is not None else {})})
    elif kind == "log":
        log.info("[rank 0] %s%s", label, ev.get("message"))
    elif kind == "failed":
        log.error("[rank 0] %s%s", label, ev.get("error"))


def _train_result(ctx: JobContext, launch: Launch, out: Path):
    from ...ml.train import TrainResult
    from ...ml.weights import read_sidecar

    r = launch.run.result()
    if r is None or not out.exists():
        raise RuntimeError(f"distributed training ended without a model ({launch.run.path}): "
                           f"{failure_message(launch)}")
    read_sidecar(out)  # raises ModelError naming the file when the sidecar is unreadable
    return TrainResult(
        weights=out, arch=r["arch"], epochs=r["epochs"], train_loss=r.get("train_loss"),
        valid_loss=r.get("valid_loss"), valid_dice=r.get("valid_dice"),
        n_train=r["n_train"], n_valid=r["n_valid"],
        valid_items=[ctx.root / p for p in r.get("valid_items", [])],
        history=r.get("history", []), device=r.get("device", "?"),
        seconds=r.get("seconds", 0.0), batch_size=r.get("batch_size", 0),
        steps_per_epoch=r.get("steps_per_epoch", 0), image_size=r.get("image_size", 0),
        skipped=[(ctx.root / p, why) for p, why in r.get("skipped", [])])


def train_one(ctx: JobContext, rows, mcfg: ModelConfig, out: Path, *, gpus: int,
              span: tuple[float, float], label: str, fold: int | None = None,
              valid_idx: list[int] | None = None):
    """One model on `gpus` ranks (the distributed twin of train.py's ``_train_one``)."""
    if len(rows) < MIN_IMAGES_PER_RANK * gpus:
        # each rank gets 1/N of the training images; below a batch each, it would train on none
        raise ValueError(f"{len(rows)} images are too few for {gpus} ranks (at least "
                         f"{MIN_IMAGES_PER_RANK} per rank): train with --gpus "
                         f"{max(1, len(rows) // MIN_IMAGES_PER_RANK)} or fewer")
    device = _job_device(ctx, mcfg, gpus)
    state = ctx.project.state
    run = RunFolder.create(state, ctx.job.id, None if fold is None else f"fold-{fold}")
    run.write_spec(_train_spec(ctx, rows, mcfg, out, device, valid_idx))
    ctx.progress(span[0], f"{label}starting {gpus} {device} ranks", force=True)
    launch = _launch(ctx, run, "train", gpus, device)
    tail, st = run.events(), {}

    def tick() -> None:
        for ev in tail.read():
            _relay(ctx, ev, span, label, fold, st)

    supervise(ctx, [launch], on_tick=tick)
    return _train_result(ctx, launch, out)


def train_folds_parallel(ctx: JobContext, rows, mcfg: ModelConfig, folds: dict[str, int],
                         k: int,
                         out_for: Callable[[int], Path], slots: int, per_slot: int) -> list:
    """The K fold models side by side, `slots` at a time, each on its own GPU group."""
    if _external(ctx):
        raise ValueError("crossval with launch = external is not supported: run it on the "
                         "engine's host, or train folds one by one")
    groups = gpu_groups(slots, per_slot, visible_gpus())
    state = ctx.project.state
    launches, tails, fracs = [], [], [0.0] * k
    for f in range(k):
        held_out = [i for i, r in enumerate(rows) if folds[r.path] == f]
        run = RunFolder.create(state, ctx.job.id, f"fold-{f}")
        run.write_spec(_train_spec(ctx, rows, mcfg, out_for(f), "cuda", held_out))

        def env(slot: int, f=f) -> dict:
            log.info("fold %d on GPU(s) %s", f, groups[slot])
            return rank_env("cuda", per_slot, {"CUDA_VISIBLE_DEVICES": groups[slot]})

        launches.append(Launch(run, torchrun_cmd("train", run.path, per_slot),
                               env_for_slot=env))
        tails.append(run.events())
    ctx.progress(0.0, f"training {k} fold models, {slots} at a time on {slots * per_slot} GPUs",
                 force=True)

    def tick() -> None:
        for f, tail in enumerate(tails):
            for ev in tail.read():
                st: dict = {}
                if ev.get("kind") == "progress":
                    fracs[f] = float(ev.get("fraction") or 0.0)
                    done = sum(1 for x in fracs if x >= 1.0)
                    ctx.progress(sum(fracs) / k, f"folds done {done}/{k}; fold {f + 1}: "
                                 f"{ev.get('message', '')}", None)
                else:
                    _relay(ctx, ev, (0.0, 1.0), f"fold {f + 1}/{k} ", f, st)

    supervise(ctx, launches, on_tick=tick, slots=slots)
    return [_train_result(ctx, la, out_for(f)) for f, la in enumerate(launches)]


# -- prediction ----------------------------------------------------------------------------------

def store_prediction(project: Project, model_id: int, row, rec: dict) -> str | None:
    """One rank-reported image: scored from its probability PNG against the image's current
    mask, and its row written (the engine's only per-image work). Returns the prediction
    error, if any."""
    fold, prec = rec.get("fold"), rec.get("precision") or ""
    err, prob = rec.get("error"), None
    if err is None:
        try:
            prob = probs.load_prob(project.state, rec["prob"])
        except (OSError, KeyError, ValueError) as e:
            err = f"cannot read the rank's probability map {rec.get('prob')}: {e}"
    if err is not None:
        store_score_error(project.store, row, model_id=model_id, fold=fold, precision=prec,
                          prob_rel=None, error=err)
        return err
    # a bad mask is recorded in the row by score_and_store, not counted as a prediction error
    # (as in the predict job)
    score_and_store(project, project.store.image(row.id) or row, model_id=model_id,
                    fold=fold, prob=prob, precision=prec, prob_rel=rec["prob"])
    return None


def check_all_reported(by_id: dict[int, ImageRow], seen: set[int], run_path: Path) -> None:
    """Raise when the ranks left an image of ``by_id`` (id → row) unreported, naming how many
    they reported, the first missing image and the run folder to look in."""
    missing = [i for i in by_id if i not in seen]
    if missing:
        raise RuntimeError(f"the ranks reported {len(seen)} of {len(by_id)} images (first "
                           f"missing: {by_id[missing[0]].path}); see {run_path}")


def predict_sharded(ctx: JobContext, m: ModelRow, rows: list[ImageRow], mcfg: ModelConfig,
                    gpus: int) -> dict:
    """Every image predicted by exactly one rank, scored and stored here, exactly once."""
    cfg = ctx.cfg
    state = ctx.project.state
    folds = fold_of(m)  # out-of-fold, as in the predict job
    items = [{"id": r.id, "path": r.path, "sha": r.img_sha256,
              "fold": folds.get(r.path)} for r in rows]
    device = _job_device(ctx, mcfg, gpus)
    if device != "auto":
        # decided once here: ranks measuring bf16 speed each on a busy machine could disagree,
        # and scores of two precisions must never share a ranking
        import torch

        from ...ml.device import pick_precision
        mcfg = replace(mcfg, precision=pick_precision(mcfg.precision, torch.device(device)))
    run = RunFolder.create(state, ctx.job.id)
    run.write_spec(predict_spec(job_id=ctx.job.id, root=ctx.root, items=items,
                                codes=cfg.project.codes, mcfg=mcfg, model=m, device=device))
    by_id = {r.id: r for r in rows}
    seen: set[int] = set()
    tails: dict[Path, JsonlTail] = {}
    n, t0 = len(rows), time.monotonic()
    c = {"errors": 0, "duplicates": 0, "precision": None}
    ctx.progress(0.0, f"predicting {n} images on {gpus} {device} ranks", force=True)

    def merge(rec: dict) -> None:
        iid = rec.get("id")
        if iid not in by_id or iid in seen:  # cannot happen with disjoint shards: be loud
            c["duplicates"] += 1
            log.warning("predict job %d: unexpected or repeated result %s", ctx.job.id, rec)
            return
        seen.add(iid)
        c["precision"] = c["precision"] or rec.get("precision")
        if store_prediction(ctx.project, m.id, by_id[iid], rec) is not None:
            c["errors"] += 1

    def tick() -> None:
        before = len(seen)
        for p in run.pred_files():
            tail = tails.setdefault(p, JsonlTail(p))
            for rec in tail.read():
                merge(rec)
        if len(seen) != before:
            el = time.monotonic() - t0
            done = len(seen)
            ctx.progress(done / max(n, 1), f"predicted {done}/{n} ({done / max(el, 1e-9):.1f} "
                         f"img/s, {gpus} ranks)", el / done * (n - done) if done else None)

    supervise(ctx, [_launch(ctx, run, "predict", gpus, device)], on_tick=tick)
    check_all_reported(by_id, seen, run.path)
    ranks = run.ranks()  # what actually ran (external launches decide it themselves)
    return {"model": m.id, "predicted": len(seen), "errors": c["errors"],
            "precision": c["precision"], "seconds": round(time.monotonic() - t0, 1),
            "ranks": len(ranks) or gpus,
            "device": ",".join(sorted({str(r.get("device")).split(":")[0]
                                       for r in ranks.values()})) or device}
