"""The engine process: lock, recovery, initial scan, watcher, job loop, idle exit.

The main thread polls a few times a second (cheap: an in-memory dict and one indexed SQL query)
and handles file changes; jobs run one at a time in a worker thread so a long training never
delays re-scoring an edited mask.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from ..project import index, scoring
from ..project.config import ConfigError, load_config
from ..ml.frozen import remove_stale_frozen_masks
from .control import LOG_NAME, EngineLock, clear_pid, engine_pid, write_pid
from ..project.scoring.rescore import rescore_image
from ..project.models_dir import remove_unfinished_weights
from .jobs import JobContext, run_job
from ..project.project import STATE_DB, Project
from ..store import Store, ensure_state_dirs
from .watch import FolderWatcher, WatchError

log = logging.getLogger("segtriage.engine")
TICK_S = 0.25
HEARTBEAT_S = 2.0


def _setup_logging(state: Path) -> None:
    log.setLevel(logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    fh = logging.FileHandler(state / "logs" / LOG_NAME)
    fh.setFormatter(fmt)
    log.addHandler(fh)
    if sys.stderr is not None and sys.stderr.isatty():
        sh = logging.StreamHandler()
        sh.setFormatter(fmt)
        log.addHandler(sh)


class Engine:
    def __init__(self, root: Path, *, idle_exit_s: float | None = None):
        self.root = Path(root).resolve()
        self.cfg = load_config(self.root)
        self.state = self.cfg.state_path(self.root)
        self.idle_exit_s = self.cfg.engine.idle_exit_s if idle_exit_s is None else idle_exit_s
        self.stopping = threading.Event()
        self.store: Store | None = None
        self.watcher: FolderWatcher | None = None
        self.job_thread: threading.Thread | None = None
        self.current_job: int | None = None
        self.device: str | None = None

    # -- public ------------------------------------------------------------------------------
    def run(self) -> int:
        ensure_state_dirs(self.state)
        _setup_logging(self.state)
        lock = EngineLock(self.state)
        if not lock.acquire():
            msg = f"an engine (pid {engine_pid(self.root)}) already runs for {self.root}"
            log.info(msg)
            print(msg, file=sys.stderr)
            return 1
        write_pid(self.state)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda *_: self.stopping.set())
        try:
            self._main()
            return 0
        finally:
            self._shutdown()
            clear_pid(self.state)
            lock.release()

    @property
    def project(self) -> Project:
        """The folder under the config as last read (each job and change reads it anew)."""
        assert self.store is not None, "the engine's store opens in run()"
        return Project(self.root, self.cfg, self.store)

    # -- internals ---------------------------------------------------------------------------
    def _main(self) -> None:
        store = self.store = Store(self.state / STATE_DB)
        log.info("engine %d started for %s", os.getpid(), self.root)
        requeued = store.recover_interrupted(crashed=True)  # a clean stop left none running
        if requeued:
            log.info("re-queued interrupted jobs as %s", requeued)
        store.set_engine_state(pid=os.getpid(), host=socket.gethostname(), state="scanning",
                               started_at=time.time(), watcher="starting", device=self.device,
                               job=None)
        # watch first, then scan: a change made during the scan is seen by one or the other
        self.watcher = FolderWatcher(self.root, self.cfg, self.cfg.engine.watch)
        self.watcher.start()
        rep = index.scan(self.project)
        log.info("scan: %s", rep.to_json().get("counts"))
        n = remove_stale_frozen_masks(self.state / "models")  # no training runs yet
        if n:
            log.info("removed %d frozen-mask folder(s) left by a killed training", n)
        n = remove_unfinished_weights(self.state / "models", store)  # nor its weights
        if n:
            log.info("removed %d weight file(s) of trainings that did not finish", n)
        self._rescore_masks_edited_offline()
        self._queue_rescore_if_scoring_changed()
        store.set_engine_state(state="idle", watcher=self.watcher.state)
        threading.Thread(target=self._probe_device, daemon=True).start()
        self._queue_predict_if_stale()
        last_activity = time.monotonic()
        last_beat = 0.0
        while not self.stopping.is_set():
            now = time.monotonic()
            if self.job_thread is not None and not self.job_thread.is_alive():
                self.job_thread, self.current_job = None, None
                last_activity = now
            if self.job_thread is None:
                job = store.claim_job(os.getpid())
                if job is not None:
                    self._start_job(job)
                    last_activity = now
            changed = self.watcher.due(self.cfg.engine.debounce_s)
            if changed or self.watcher.rescan_needed:
                self._handle_changes(changed)
                last_activity = now
            if now - last_beat >= HEARTBEAT_S:
                last_beat = now
                store.set_engine_state(
                    state=f"running job {self.current_job}" if self.current_job else "idle",
                    job=self.current_job, watcher=self.watcher.state,
                    last_event=self.watcher.last_event, device=self.device, pid=os.getpid())
                if self.idle_exit_s and self.job_thread is None and not store.active_jobs():
                    if store.live_clients() > 0:
                        last_activity = now
                    elif now - last_activity > self.idle_exit_s:
                        log.info("idle for %.0f s with no client: exiting", self.idle_exit_s)
                        break
            self.stopping.wait(TICK_S)

    def _probe_device(self) -> None:
        try:
            from ..ml.device import pick_device, pick_precision, precision_tag

            dev = pick_device(self.cfg.model.device)
            self.device = precision_tag(dev, pick_precision(self.cfg.model.precision, dev))
        except Exception as e:  # noqa: BLE001
            self.device = f"unavailable ({e})"

    def _reload_config(self) -> ConfigError | None:
        """Take [model], [scoring] and [backup] from the config file as it is now, so an edit
        (say [scoring] before a rescore) needs no restart; where the state lives, the layout
        the watcher follows and the engine's own settings stay as started. On a broken file
        the previous settings stay and the error is returned."""
        try:
            new = load_config(self.root)
        except ConfigError as e:
            return e
        self.cfg = dataclasses.replace(self.cfg, model=new.model, scoring=new.scoring,
                                       backup=new.backup)
        return None

    def _start_job(self, job) -> None:
        err = self._reload_config()
        if err is not None:  # fail the job, not the engine
            log.error("job %d (%s) not started: %s", job.id, job.kind, err)
            self.store.finish_job(job.id, "failed", error=f"ConfigError: {err}")
            return
        ctx = JobContext(self.project, job, self.stopping)
        self.current_job = job.id

        def target() -> None:
            try:
                run_job(ctx)
            finally:
                ctx.store.close()  # this thread's connection

        self.job_thread = threading.Thread(target=target, name=f"job-{job.id}", daemon=True)
        self.job_thread.start()
        self.store.set_engine_state(state=f"running job {job.id}", job=job.id)

    def _rescore_masks_edited_offline(self) -> None:
        """Masks edited while no engine ran: re-score them from the stored probabilities."""
        n = 0
        for r in self.store.review_rows():
            if (r.model_id is not None and r.s_img_sha == r.img_sha256
                    and r.s_mask_sha != r.cur_mask_sha and r.status != "error"):
                n += rescore_image(self.project, r.id)
        if n:
            log.info("re-scored %d mask(s) edited while the engine was not running", n)

    def _queue_rescore_if_scoring_changed(self) -> None:
        """Rows scored by an older formula (an upgrade) are re-scored from their stored
        probabilities, as a job: a mixed list would order old and new priorities together."""
        n = self.store.outdated_scores(scoring.SCORING_VERSION)
        if n and not any(j.kind == "rescore" for j in self.store.active_jobs()):
            log.info("%d score row(s) from an older scoring version: queueing a re-score", n)
            self.store.submit_job("rescore", {"reason": f"scoring version "
                                              f"{scoring.SCORING_VERSION}"},
                                  requested_by="engine")

    def _queue_predict_if_stale(self) -> None:
        store = self.store
        mid = store.current_model_id()
        if mid is None:
            return
        if any(j.kind == "predict" and j.state == "queued" for j in store.active_jobs()):
            return
        if store.unscored_or_stale(mid):
            store.submit_job("predict", {"scope": "stale"}, requested_by="engine")

    def _handle_changes(self, rels: list[str]) -> None:
        store = self.store
        err = self._reload_config()  # an edited mask is scored as a job would score it
        if err is not None:
            log.warning("config not re-read, the previous settings stay: %s", err)
        if self.watcher.rescan_needed:
            self.watcher.rescan_needed = False
            index.scan(self.project)
        need_predict = False
        mid = store.current_model_id()
        # paths that exist first: a moved image's new path takes its row along before the
        # old path, now gone, would delete it (a move is a pair of events)
        rels = sorted(rels, key=lambda r: not (self.root / r).exists())
        for rel in rels:
            try:
                img_rel = index.index_one(self.project, rel)
            except Exception as e:  # noqa: BLE001 - one bad file must not stop the engine
                log.warning("indexing %s failed: %s", rel, e)
                continue
            if img_rel is None:
                continue
            row = store.image(img_rel)
            store.add_event("watch", {"path": rel, "image": img_rel,
                                      "status": row.status if row else "removed"})
            if row is None or row.status == "error":
                continue
            sc = store.score(row.id)
            if sc is not None and sc.image_sha256 == row.img_sha256:
                if sc.mask_sha256 != row.mask_sha256:
                    if rescore_image(self.project, row.id):
                        log.info("re-scored %s after a mask change", img_rel)
                if mid is not None and sc.model_id != mid:
                    need_predict = True
            elif mid is not None:
                need_predict = True
        if need_predict:
            self._queue_predict_if_stale()

    def _shutdown(self) -> None:
        self.stopping.set()
        if self.job_thread is not None:
            # training checks the flag every batch, prediction every image
            self.job_thread.join(timeout=120)
        if self.watcher is not None:
            self.watcher.stop()
        if self.store is not None:
            try:
                requeued = self.store.recover_interrupted()
                if requeued:
                    log.info("engine stopping: interrupted jobs re-queued as %s", requeued)
                self.store.set_engine_state(state="stopped", pid=None, job=None,
                                            watcher="stopped")
            except Exception as e:  # noqa: BLE001
                log.warning("shutdown bookkeeping failed: %s", e)
        log.info("engine %d stopped", os.getpid())


def run(root: Path | str, *, idle_exit_s: float | None = None) -> int:
    try:
        return Engine(Path(root), idle_exit_s=idle_exit_s).run()
    except (ConfigError, WatchError) as e:
        print(f"segtriage engine: {e}", file=sys.stderr)
        return 2
