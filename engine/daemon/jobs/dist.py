"""The engine's side of distributed jobs (``gpus > 1``): write the run folder, launch torchrun,
follow it, and turn what the ranks wrote into database rows.

``runner.job_train`` / ``job_crossval`` / ``job_predict`` call in here when the job's ``gpus``
(job param, else ``[model] gpus``) is above 1. The engine stays the only process that opens
SQLite; ranks talk to it through ``engine.runfolder`` files (see there for the protocol):

* train: one ``torchrun --nproc_per_node N`` (N GPU ranks over nccl, or N CPU ranks over gloo
  on a machine without CUDA); rank 0 writes the weights and ``result.json``; this module builds
  the ``TrainResult`` from it and ``runner.job_train`` adds the one model row as usual.
* predict: every rank writes its shard's probability PNGs and a JSON-lines list; this module
  scores each listed image from its PNG (``rescore.score_and_store``, numpy only) while the
  ranks run, and checks at the end that every image was scored exactly once.
* crossval on GPUs: the K fold models train side by side, one process (or GPU group) per slot
  (``CUDA_VISIBLE_DEVICES``); on CPU ranks the folds run one after another.
* ``params["launch"] == "external"``: no torchrun is started here; the engine writes the run
  folder and waits for ranks started elsewhere (SLURM, a second host; docs/scaling.md).

Cancel / engine stop: the ``cancel`` file is written, the ranks stop within a batch; torchrun
still running after a grace period gets SIGTERM, then SIGKILL. kill -9 of the engine: torchrun
was started with a parent-death signal (and so was every rank), and the ranks also stop when
the engine's heartbeat file stops changing, so nothing keeps running orphaned; the next engine
marks the job interrupted as for any job.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ...ml.dist.runfolder import LAUNCH_LOG, JsonlTail, RunFolder, set_parent_death_signal

if TYPE_CHECKING:  # runner imports this module
    from . import JobContext

log = logging.getLogger("segtriage.engine")

TICK_S = 0.2
BEAT_S = 1.0
HEARTBEAT_TIMEOUT_S = 60.0   # ranks stop when the engine's heartbeat stalls this long
CANCEL_GRACE_S = 60.0        # after the cancel file: then SIGTERM to torchrun
STOP_GRACE_S = 20.0          # the same when the engine stops (the daemon waits 120 s)
KILL_GRACE_S = 15.0          # after SIGTERM: then SIGKILL
FINAL_STATES = ("done", "cancelled", "failed")
MIN_IMAGES_PER_RANK = 4      # a train job's images per rank (valid ones included)


# -- what to run where ---------------------------------------------------------------------------

def job_gpus(ctx: JobContext) -> int:
    """GPUs (= ranks) for this job: the job's ``gpus`` param, else ``[model] gpus``."""
    v = ctx.job.params.get("gpus")
    if v is None:
        v = getattr(ctx.cfg.model, "gpus", 1)
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise ValueError(f"gpus must be a whole number, got {v!r}") from None
    if n < 1:
        raise ValueError(f"gpus must be at least 1, got {n}")
    if n < 2 and ctx.job.params.get("launch") == "external":
        raise ValueError("launch = external needs gpus = the total number of ranks you will "
                         "start (2 or more), e.g. --gpus 8 for 2 nodes x 4 GPUs")
    return n


def rank_device(mcfg, gpus: int) -> str:
    """'cuda' (one rank per GPU, nccl) or 'cpu' (CPU ranks over gloo, e.g. in CI)."""
    from ...ml.device import pick_device

    if pick_device(getattr(mcfg, "device", "auto") or "auto").type != "cuda":
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


def _job_device(ctx: JobContext, mcfg, gpus: int) -> str:
    # external ranks run on other hosts: they pick CUDA or CPU themselves
    return "auto" if _external(ctx) else rank_device(mcfg, gpus)


def visible_gpus() -> list[str]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [x.strip() for x in env.split(",") if x.strip()]
    import torch
    return [str(i) for i in range(torch.cuda.device_count())]


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


def gpu_groups(slots: int, per_slot: int, visible: list[str]) -> list[str]:
    """CUDA_VISIBLE_DEVICES for each slot: disjoint groups of `per_slot` visible GPUs."""
    if slots * per_slot > len(visible):
        raise ValueError(f"{slots} x {per_slot} GPUs wanted, {len(visible)} visible")
    return [",".join(visible[i * per_slot:(i + 1) * per_slot]) for i in range(slots)]


def torchrun_cmd(kind: str, run_dir: Path, nproc: int) -> list[str]:
    """torchrun on one host; --standalone picks a free rendezvous port (jobs never collide)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc_per_node", str(int(nproc)), "-m", "segtriage.engine.ml.dist.ranks", kind,
            "--run-dir", str(run_dir)]


def rank_env(device: str, nproc: int, extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    if device == "cpu":  # N CPU ranks share the cores: one thread each on this 2-core box
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // int(nproc))))
    env.update(extra or {})
    return env


# -- launching and supervising ---------------------------------------------------------------------

@dataclass
class Launch:
    """One torchrun (or, with cmd None, ranks started elsewhere) working in one run folder."""
    run: RunFolder
    cmd: list[str] | None
    env_for_slot: Callable[[int], dict] | None = None
    proc: subprocess.Popen | None = None
    rc: int | None = None
    slot: int = 0
    stop_sent: float | None = None
    term_sent: float | None = None
    killed: bool = False
    extra: dict = field(default_factory=dict)

    def start(self, slot: int = 0) -> None:
        self.slot = slot
        if self.cmd is None:
            return
        engine_pid = os.getpid()
        env = self.env_for_slot(slot) if self.env_for_slot else None
        with open(self.run.file(LAUNCH_LOG), "ab") as logf:
            # same session as the engine, and a parent-death signal: a killed engine takes
            # torchrun (and through theirs, the ranks) along. The preexec function only makes
            # one prctl call through a function looked up before the fork.
            self.proc = subprocess.Popen(
                self.cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                env=env, cwd=self.run.path, start_new_session=False,
                preexec_fn=lambda: set_parent_death_signal(signal.SIGTERM,
                                                           expect_parent=engine_pid))

    def poll(self) -> int | None:
        if self.rc is None:
            self.rc = self.proc.poll() if self.proc is not None else _external_rc(self.run)
        return self.rc

    def request_stop(self, why: str) -> None:
        if self.stop_sent is None:
            self.stop_sent = time.monotonic()
            self.run.request_cancel(why)

    def escalate(self, grace: float) -> None:
        """Ranks that ignore the cancel file past `grace`: SIGTERM torchrun, then SIGKILL."""
        if self.stop_sent is None or self.rc is not None:
            return
        now = time.monotonic()
        if self.proc is None:  # external ranks: nothing to signal; stop waiting for them
            running = any(r.get("state") == "running" for r in self.run.ranks().values())
            if not running or now - self.stop_sent > grace:
                self.rc = -1
            return
        if self.term_sent is None and now - self.stop_sent > grace:
            self.term_sent = now
            log.warning("ranks in %s ignored the cancel for %.0f s: SIGTERM to torchrun",
                        self.run.path, grace)
            self.proc.terminate()
        elif self.term_sent is not None and not self.killed and now - self.term_sent > KILL_GRACE_S:
            self.killed = True
            self.proc.kill()  # the ranks get their parent-death signal

    def kill_now(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _external_rc(run: RunFolder) -> int | None:
    """Ranks started elsewhere: finished when every rank's marker says so."""
    ranks = run.ranks()
    if not ranks:
        return None
    world = max(int(r.get("world", 1)) for r in ranks.values())
    if len(ranks) < world or any(r.get("state") not in FINAL_STATES for r in ranks.values()):
        return None
    return 0 if all(r.get("state") != "failed" for r in ranks.values()) else 1


def failure_message(launch: Launch) -> str:
    """The first failing rank's own error, else the end of torchrun's output."""
    for r, m in sorted(launch.run.ranks().items()):
        if m.get("state") == "failed":
            return f"rank {r}: {m.get('error')}"
    tail = launch.run.log_tail(1500)
    return (f"torchrun exited with {launch.rc}; end of {launch.run.file(LAUNCH_LOG)}:\n{tail}"
            if tail else f"torchrun exited with {launch.rc}")


def supervise(ctx: JobContext, launches: list[Launch], *, on_tick: Callable[[], None],
              slots: int = 1) -> None:
    """Run `launches` (at most `slots` at a time), beat the heartbeat, relay cancel and engine
    stop, call `on_tick` a few times a second. Raises JobCancelled / JobInterrupted, or
    RuntimeError naming the failure."""
    pending, running, finished = list(launches), [], []
    free = list(range(slots))
    beat, last_beat = 0, 0.0
    stop_why: str | None = None
    failed: Launch | None = None
    try:
        while pending or running:
            while pending and free and stop_why is None:
                la = pending.pop(0)
                la.run.beat(beat)
                la.start(free.pop(0))
                running.append(la)
            on_tick()
            for la in list(running):
                if la.poll() is not None:
                    running.remove(la)
                    finished.append(la)
                    free.append(la.slot)
                    if la.rc != 0 and failed is None and la.stop_sent is None:
                        failed = la
            now = time.monotonic()
            if now - last_beat >= BEAT_S:
                beat, last_beat = beat + 1, now
                for la in running:
                    la.run.beat(beat)
            if stop_why is None and (failed is not None or ctx.should_cancel()):
                stop_why = ("engine stopping" if ctx.stopping.is_set() else
                            "another part of the job failed" if failed is not None else "cancel")
                pending.clear()
                for la in running:
                    la.request_stop(stop_why)
            for la in running:
                la.escalate(STOP_GRACE_S if ctx.stopping.is_set() else CANCEL_GRACE_S)
            if running or pending:
                time.sleep(TICK_S)
    finally:
        for la in running:  # only on an exception in here: never leave ranks behind
            la.request_stop("engine error")
            la.kill_now()
    on_tick()
    if failed is not None:
        raise RuntimeError(f"distributed job failed: {failure_message(failed)}")
    if stop_why is not None:
        from . import JobCancelled

        ctx.check()  # JobInterrupted when the engine stops, JobCancelled on a cancel
        raise JobCancelled()


def _launch(ctx: JobContext, run: RunFolder, kind: str, nproc: int, device: str,
            env_for_slot: Callable[[int], dict] | None = None) -> Launch:
    if _external(ctx):
        ctx.progress(0.0, f"waiting for ranks started elsewhere on run folder {run.path} "
                     "(docs/scaling.md)", force=True)
        return Launch(run, None)
    env = env_for_slot or (lambda slot: rank_env(device, nproc))
    return Launch(run, torchrun_cmd(kind, run.path, nproc), env_for_slot=env)


# -- training ----------------------------------------------------------------------------------------

def train_spec(*, job_id: int, root: Path, pairs: list[tuple[str, str]], codes, mcfg,
               out_name: str, device: str, valid_idx: list[int] | None) -> dict:
    """spec.json of a training run: (image, mask) paths relative to `root`; the weights go to
    ``<state>/models/<out_name>``."""
    return {"kind": "train", "job": job_id, "root": str(root),
            "items": [[a, b] for a, b in pairs], "codes": list(codes),
            "model": dict(vars(mcfg)), "out": out_name, "epochs": mcfg.epochs,
            "valid_idx": valid_idx, "device": device,
            "heartbeat_timeout_s": HEARTBEAT_TIMEOUT_S}


def _train_spec(ctx: JobContext, rows, mcfg, out: Path, device: str,
                valid_idx: list[int] | None) -> dict:
    return train_spec(job_id=ctx.job.id, root=ctx.root,
                      pairs=[(r["path"], r["mask_path"]) for r in rows],
                      codes=ctx.cfg.project.codes, mcfg=mcfg, out_name=out.name, device=device,
                      valid_idx=valid_idx)


def predict_spec(*, job_id: int, root: Path, items: list[dict], codes, mcfg, model: dict,
                 device: str) -> dict:
    """spec.json of a prediction run: items are {id, path (relative to root), sha, fold};
    `model` is the model row (weights, arch, id)."""
    return {"kind": "predict", "job": job_id, "root": str(root), "items": items,
            "codes": list(codes), "model": dict(vars(mcfg)), "weights": list(model["weights"]),
            "arch": model["arch"], "model_id": model["id"], "device": device,
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
    from ...ml.model import TrainResult, read_sidecar

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


def train_one(ctx: JobContext, rows, mcfg, out: Path, *, gpus: int,
              span: tuple[float, float], label: str, fold: int | None = None,
              valid_idx: list[int] | None = None):
    """One model on `gpus` ranks (the distributed twin of ``runner._train_one``)."""
    if len(rows) < MIN_IMAGES_PER_RANK * gpus:
        # each rank gets 1/N of the training images; below a batch each, it would train on none
        raise ValueError(f"{len(rows)} images are too few for {gpus} ranks (at least "
                         f"{MIN_IMAGES_PER_RANK} per rank): train with --gpus "
                         f"{max(1, len(rows) // MIN_IMAGES_PER_RANK)} or fewer")
    device = _job_device(ctx, mcfg, gpus)
    state = ctx.cfg.state_path(ctx.root)
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


def train_folds_parallel(ctx: JobContext, rows, mcfg, folds: dict[str, int], k: int,
                         out_for: Callable[[int], Path], slots: int, per_slot: int) -> list:
    """The K fold models side by side, `slots` at a time, each on its own GPU group."""
    if _external(ctx):
        raise ValueError("crossval with launch = external is not supported: run it on the "
                         "engine's host, or train folds one by one")
    groups = gpu_groups(slots, per_slot, visible_gpus())
    state = ctx.cfg.state_path(ctx.root)
    launches, tails, fracs = [], [], [0.0] * k
    for f in range(k):
        held_out = [i for i, r in enumerate(rows) if folds[r["path"]] == f]
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

def store_prediction(root: Path, cfg, store, model_id: int, row, rec: dict) -> str | None:
    """One rank-reported image: scored from its probability PNG against the image's current
    mask, and its row written (the engine's only per-image work). Returns the prediction
    error, if any."""
    from ...project.scoring import rescore

    fold, prec = rec.get("fold"), rec.get("precision") or ""
    err, prob = rec.get("error"), None
    if err is None:
        try:
            prob = rescore.load_prob(cfg.state_path(root), rec["prob"])
        except (OSError, KeyError, ValueError) as e:
            err = f"cannot read the rank's probability map {rec.get('prob')}: {e}"
    if err is not None:
        store.put_score(row["id"], model_id, fold=fold, image_sha256=row["img_sha256"],
                        mask_sha256=row["mask_sha256"], precision=prec, prob_path=None,
                        category=None, metrics={}, error=err)
        return err
    # a bad mask is recorded in the row by score_and_store, not counted as a prediction error
    # (as in runner.job_predict)
    rescore.score_and_store(root, cfg, store, store.image(row["id"]) or row, model_id=model_id,
                            fold=fold, prob=prob, precision=prec, prob_rel=rec["prob"])
    return None


def predict_sharded(ctx: JobContext, m: dict, rows: list, mcfg, gpus: int) -> dict:
    """Every image predicted by exactly one rank, scored and stored here, exactly once."""
    store, cfg = ctx.store, ctx.cfg
    state = cfg.state_path(ctx.root)
    fold_of: dict[str, int] = {}
    if m["kind"] == "crossval":  # out-of-fold, as in runner.job_predict
        fold_of = {e["path"]: e["fold"] for e in m["manifest"] or []}
    items = [{"id": r["id"], "path": r["path"], "sha": r["img_sha256"],
              "fold": fold_of.get(r["path"])} for r in rows]
    device = _job_device(ctx, mcfg, gpus)
    if device != "auto":
        # decided once here: ranks measuring bf16 speed each on a busy machine could disagree,
        # and scores of two precisions must never share a ranking
        import torch

        from ...ml.device import pick_precision
        mcfg.precision = pick_precision(getattr(mcfg, "precision", "auto") or "auto",
                                        torch.device(device))
    run = RunFolder.create(state, ctx.job.id)
    run.write_spec(predict_spec(job_id=ctx.job.id, root=ctx.root, items=items,
                                codes=cfg.project.codes, mcfg=mcfg, model=m, device=device))
    by_id = {r["id"]: r for r in rows}
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
        if store_prediction(ctx.root, cfg, store, m["id"], by_id[iid], rec) is not None:
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
    missing = [i for i in by_id if i not in seen]
    if missing:
        raise RuntimeError(f"the ranks reported {len(seen)} of {n} images (first missing: "
                           f"{by_id[missing[0]]['path']}); see {run.path}")
    ranks = run.ranks()  # what actually ran (external launches decide it themselves)
    return {"model": m["id"], "predicted": len(seen), "errors": c["errors"],
            "precision": c["precision"], "seconds": round(time.monotonic() - t0, 1),
            "ranks": len(ranks) or gpus,
            "device": ",".join(sorted({str(r.get("device")).split(":")[0]
                                       for r in ranks.values()})) or device}
