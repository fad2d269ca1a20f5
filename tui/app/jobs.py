"""The engine and its jobs, from the app: starting the engine (and again when it died in a
job), this client's registration, the status pane's facts, and the job actions (retrain,
re-predict, backup, cancel) (a mixin of ``SegtriageApp``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

from textual import work

from ...engine.project.queries import job_to_cancel
from .data import gather_status
from .screens.confirm import ConfirmScreen
from .screens.retrain import RetrainScreen


@dataclass(frozen=True)
class EngineControl:
    """The two calls of engine.daemon.control the app makes (the app passes them in, so a
    test can stand in for the engine)."""
    start: Callable[[Path], int | None]   # ensure_engine: start one unless it runs; its pid
    pid: Callable[[Path], int | None]     # engine_pid: the running engine's pid, or None


class JobActions:
    """The engine, this client and the job actions."""

    # -- the engine and this client --------------------------------------------------------
    def _register_client(self) -> None:
        def registered(client_id: object) -> None:
            self.client_id = client_id  # type: ignore[assignment]
            self.set_interval(10.0, self._heartbeat)

        self._store_write(partial(self.store.register_client, "tui"), after=registered)

    @work(thread=True, group="engine", exclusive=True)
    def _start_engine_worker(self) -> None:
        """Start the engine if none runs (ensure_engine waits until it holds its lock)."""
        self.engine_starting = True
        try:
            pid = self.engine_control.start(self.root)
        except Exception as e:  # noqa: BLE001
            pid = None
            self.call_from_thread(self.notify, f"cannot start the engine: {e}",
                                  severity="error")
        self.engine_starting = False
        self.engine_pid = pid
        self.call_from_thread(self._refresh_status)

    def _heartbeat(self) -> None:
        if self.client_id is not None:
            self._store_write(partial(self.store.client_heartbeat, self.client_id))

    def _unregister_client(self) -> None:
        if self.client_id is not None:
            try:
                self.store.unregister_client(self.client_id)
            except Exception:  # noqa: BLE001 - leaving anyway; the row just ages out
                pass
            self.client_id = None

    # -- the status pane -------------------------------------------------------------------
    def _refresh_status(self) -> None:
        """Gather the status pane's facts in a worker: a dozen queries (some scan the mask
        history) and a look at the engine's lock stay off the UI thread. One at a time; a
        request while one runs makes it run once more."""
        self._last_status_at = time.monotonic()
        if self._status_busy:
            self._status_again = True
            return
        self._status_busy = True
        self._status_worker()

    @work(thread=True, group="status")
    def _status_worker(self) -> None:
        try:
            pid = self.engine_control.pid(self.root)
        except Exception:  # noqa: BLE001 - an unreadable lock file: not running, for us
            pid = None
        try:
            info = gather_status(self.store)
        except Exception as e:  # noqa: BLE001
            info = {"engine_problem": f"cannot read the project state: {e}"}
        info["pid"] = pid
        self.call_from_thread(self._show_status, info)

    def _show_status(self, info: dict) -> None:
        self._status_busy = False
        if self._status_again:
            self._status_again = False
            self._refresh_status()
        self.engine_pid = info["pid"]
        self._restart_a_dead_engine(info.get("running"))
        info["engine_starting"] = self.engine_starting
        self._status_info = info
        self.status_pane.show(info, self.clock(), self.key_of)

    def _restart_a_dead_engine(self, running) -> None:
        """Start the engine again when it died in a job (the rule: DeadEngineRule), as the
        app started it at launch."""
        if not self.start_engine or not self._dead_engine.restart_now(
                job_running=running is not None and running.state == "running",
                engine_alive=self.engine_pid is not None or self.engine_starting):
            return
        self.notify(f"the engine stopped while {running.kind} #{running.id} ran: starting it "
                    "again (the job resumes)", severity="warning", timeout=8)
        self._start_engine_worker()

    # -- jobs ------------------------------------------------------------------------------
    def _submit(self, kind: str, params: dict, what: str) -> None:
        def submit() -> int:
            return self.store.submit_job(kind, params, requested_by="tui")

        def after(job_id: object) -> None:
            offline = self.engine_pid is None
            self.notify(f"{what}: job #{job_id} queued"
                        + (" (starting the engine)" if offline and self.start_engine else "")
                        + (" (engine offline: it runs when the engine starts)"
                           if offline and not self.start_engine else ""))
            if offline and self.start_engine and not self.engine_starting:
                self._start_engine_worker()
            self._refresh_status()

        self._store_write(submit, after=after)

    def action_retrain(self) -> None:
        m = self.cfg.model
        n = None if self.model.partial else sum(  # no count from the first page alone
            1 for r in self.model.rows if r.mask_path and r.status not in ("flagged", "error"))

        def answer(result: dict | None) -> None:
            if not result:
                return
            # always what the dialog showed: left out, a `[model] gpus` above 1 would win
            extra = {"gpus": result["gpus"]}
            if result["kind"] == "crossval":
                self._submit("crossval", {"folds": result["folds"], "epochs": result["epochs"],
                                          **extra},
                             f"cross-validation ({result['folds']} folds)")
            else:
                self._submit("train", {"epochs": result["epochs"], **extra}, "training")

        self.push_screen(RetrainScreen(m, n, self.cfg.backup.before_train), answer)

    def action_predict(self) -> None:
        self._submit("predict", {"scope": "stale"}, "re-predict")

    def action_backup(self) -> None:
        self._submit("backup", {}, "backup")

    def action_cancel_job(self) -> None:
        try:
            job = job_to_cancel(self.store)  # the one `segtriage cancel` means too
        except Exception as e:  # noqa: BLE001 - a busy or damaged database: say so, go on
            self.notify(f"cannot read the jobs: {e}", severity="error", timeout=8)
            return
        if job is None:
            self.notify("no job is running or queued")
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._store_write(partial(self.store.request_cancel, job.id),
                                  done=f"cancel requested for {job.kind} #{job.id}",
                                  after=lambda _r: self._refresh_status())

        self.push_screen(ConfirmScreen(f"Cancel {job.kind} job #{job.id} ({job.state}, "
                                       f"{job.progress * 100:.0f}%)?", yes="Cancel job"), answer)
