"""The segtriage Textual app: composition, polling the project state, routing actions.

The app is a client of the project state (``.segtriage/state.db``): it reads rows, scores, jobs
and engine facts through ``engine.store`` and writes review decisions and job requests into
it. It never imports torch or fastai. Loading rows, decoding images and changing masks run in
thread workers (each thread has its own SQLite connection), so a key press never waits on them.
"""

from __future__ import annotations

import threading
import time
from functools import partial
from pathlib import Path
from typing import Callable

from textual import on, work
from textual.app import App, ComposeResult, SuspendNotSupported
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.message import Message
from textual.widgets import Footer, Input, Static
from textual.worker import get_current_worker

from ...engine.project import review
from ...engine.project.project import Project
from . import actions, editor
from .data import FIRST_PAGE, UNSCORED, ChangeWatch, ReviewModel, Row, gather_status, load_head, load_rows
from .screens.confirm import ConfirmScreen
from .screens.filter import FilterScreen
from .screens.help import HelpScreen, key_text
from .screens.retrain import RetrainScreen
from .themes import load_themes, preview_colors
from .widgets.metrics import MetricsPane
from .widgets.preview import Preview, Renderer, select_renderer
from .widgets.result_list import ResultList
from .widgets.status import StatusPane

from ...engine.daemon.control import DeadEngineRule, engine_pid, ensure_engine

DEFAULT_THEME = "segtriage-dark"
DETAIL_DELAY_S = 0.04
# the loader waits at most this long for the first page to be drawn before it reads the rest
# (building 100k rows holds the GIL most of the time: the first frame goes first)
FIRST_FRAME_WAIT_S = 0.5


class ActionCommands(Provider):
    """Every registry action in the command palette, with its current key."""

    def _entries(self):
        app = self.app
        keymap = getattr(app, "keymap", {})
        for a in actions.ACTIONS:
            if a.palette:
                keys = key_text(app, keymap.get(a.id, a.keys))
                yield a, f"{a.label} ({keys})", partial(app.run_action, a.target)

    async def discover(self) -> Hits:
        for a, text, run in self._entries():
            yield DiscoveryHit(text, run, help=a.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for a, text, run in self._entries():
            score = matcher.match(f"{text} {a.id}")
            if score > 0:
                yield Hit(score, matcher.highlight(text), run, text=text, help=a.help)


class RowsLoaded(Message):
    """Rows from the loader: every row, or (``model.partial``) the first page at launch."""

    def __init__(self, model: ReviewModel, seconds: float) -> None:
        super().__init__()
        self.model = model
        self.seconds = seconds


class SummaryReady(Message):
    def __init__(self, summary: dict, model: ReviewModel) -> None:
        super().__init__()
        self.summary = summary
        self.model = model


class SegtriageApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "segtriage"
    BINDINGS = actions.bindings("app")
    COMMANDS = App.COMMANDS | {ActionCommands}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]

    def __init__(self, root: Path, cfg=None, *, renderer: Renderer | None = None,
                 start_engine: bool = True, poll_s: float = 0.25,
                 clock: Callable[[], float] = time.time,
                 first_page: int = FIRST_PAGE) -> None:
        """``first_page``: rows read first at launch, in the default review order, and shown
        while the rest loads (0: wait for every row, the old way; the benchmark compares)."""
        super().__init__()
        from ...engine.store import Store

        if cfg is None:
            from ...engine.project.config import load_config

            cfg = load_config(root)
        self.root = Path(root).resolve()
        self.cfg = cfg
        self.state_dir = cfg.state_path(self.root)
        self.store = Store(self.state_dir / "state.db")
        self.project = Project(self.root, cfg, self.store)
        self.renderer = renderer or select_renderer("halfcell")
        self.start_engine = start_engine
        self.poll_s = poll_s
        self.clock = clock
        self.model = ReviewModel()
        self.summary: dict | None = None
        self.watch_db = ChangeWatch(self.store)
        self.client_id: int | None = None
        self.engine_pid: int | None = None
        self.engine_starting = False
        self._dead_engine = DeadEngineRule()  # when the app starts a dead engine again
        self.first_page = first_page
        self.loaded = False          # every row is in (not only the first page)
        self._loading = False
        self._first_frame = threading.Event()   # the first page was drawn
        self._decisions: list[tuple[int, str]] = []  # written while the current load ran
        self._reload_pending = False
        self._next_load_at = 0.0
        self._load_seconds = 0.0
        self._last_status_at = 0.0
        self._status_busy = self._status_again = False
        self._status_info: dict = {}
        self._detail_timer = None
        # replaced in tests: runs a terminal editor while the app is suspended
        self.run_terminal_editor = editor.run_terminal
        keymap, self._keymap_problems = actions.check_keymap(dict(cfg.keymap or {}))
        self.keymap = {a.id: a.keys for a in actions.ACTIONS} | keymap
        self._user_keymap = keymap
        themes, self._theme_problems = load_themes()
        self.segtriage_themes = [t.name for t in themes]
        for t in themes:
            self.register_theme(t)
        wanted = cfg.tui.theme or DEFAULT_THEME
        if wanted not in self.available_themes:
            self._theme_problems.append(f"theme {wanted!r} not found (known: "
                                        f"{', '.join(self.segtriage_themes)}); using "
                                        f"{DEFAULT_THEME}")
            wanted = DEFAULT_THEME if DEFAULT_THEME in self.available_themes else "textual-dark"
        self.theme = wanted

    # -- composition -----------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        # kept as attributes: timers and workers may still report while the app shuts down,
        # when a query would no longer find them
        self.header = Static("", id="header-counts")
        self.header_view = Static("", id="header-view")
        self.result_list = ResultList(self.model, id="list")
        self.filter_box = Input(placeholder="filter by name (enter keeps, escape clears)",
                                id="filter-input")
        self.preview = Preview(self.root, self.state_dir, self.cfg.project.codes, self.renderer,
                               id="preview")
        self.metrics = MetricsPane("", id="metrics")
        self.status_pane = StatusPane("", id="status")
        with Horizontal(id="header"):
            yield self.header
            yield self.header_view
        with Horizontal(id="main"):
            with Vertical(id="list-pane"):
                yield self.result_list
                yield self.filter_box
            with Vertical(id="side"):
                yield self.preview
                yield self.metrics
        yield self.status_pane
        yield Footer()

    def notify(self, message: str, *, markup: bool = False, **kw) -> None:
        # messages carry file names and config keys such as "[editor] command": not markup
        super().notify(message, markup=markup, **kw)

    @property
    def current_row(self) -> Row | None:
        return self.result_list.row

    def on_mount(self) -> None:
        if self._user_keymap:
            self.set_keymap(self._user_keymap)
        for msg in self._keymap_problems + self._theme_problems:
            self.notify(msg, severity="warning", timeout=10)
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self.preview.set_colors(preview_colors(self.current_theme))
        self.result_list.focus()
        self._render_header()
        self.watch_db.changed()  # the first load reads this state: no second load for it
        self.watch_db.rows_changed()
        self._request_reload(now=True)
        self._refresh_status()
        self.set_interval(self.poll_s, self._poll)
        self._register_client()
        if self.start_engine:  # in a worker: the screen shows while the engine starts
            self._start_engine_worker()

    def _theme_changed(self, theme) -> None:
        self.preview.set_colors(preview_colors(theme))

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
            pid = ensure_engine(self.root)
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

    def on_unmount(self) -> None:
        if self.client_id is not None:
            try:
                self.store.unregister_client(self.client_id)
            except Exception:  # noqa: BLE001 - leaving anyway; the row just ages out
                pass
            self.client_id = None

    # -- polling and loading ---------------------------------------------------------------
    def _poll(self) -> None:
        """A few times a second: reload rows when they changed; the status pane each second."""
        now = time.monotonic()
        if self.watch_db.changed() and self.watch_db.rows_changed():
            self._request_reload()
        elif self._reload_pending and not self._loading and now >= self._next_load_at:
            self._request_reload()
        if now - self._last_status_at >= 1.0:
            self._refresh_status()

    def _request_reload(self, now: bool = False) -> None:
        """Reload rows, at most as often as loading takes twice its own time (100k rows)."""
        if self._loading or (not now and time.monotonic() < self._next_load_at):
            self._reload_pending = True
            return
        self._reload_pending = False
        self._loading = True
        self._decisions = []  # the load reads a snapshot taken from now on
        # the first load of a big project shows its first page while the rest loads
        self._load_worker(head=not self.loaded and self.first_page > 0)

    @work(thread=True, group="load")
    def _load_worker(self, head: bool = False) -> None:
        t0 = time.perf_counter()
        try:
            if head:
                rows, total = load_head(self.store, self.first_page)
                model = ReviewModel()
                model.copy_settings(self.model)
                model.set_rows(rows, total)
                if model.partial:
                    self.post_message(RowsLoaded(model, time.perf_counter() - t0))
                    self._first_frame.wait(FIRST_FRAME_WAIT_S)
                    if get_current_worker().is_cancelled:
                        return
                    t0 = time.perf_counter()
                else:  # the first page holds every row: it is the whole list
                    self.post_message(RowsLoaded(model, time.perf_counter() - t0))
                    self.post_message(SummaryReady(model.summary(), model))
                    return
            rows = load_rows(self.store)
        except Exception as e:  # noqa: BLE001
            self.call_from_thread(self.notify, f"cannot read the project state: {e}",
                                  severity="error")
            self._loading = False
            return
        model = ReviewModel()
        model.copy_settings(self.model)
        model.set_rows(rows)
        self.post_message(RowsLoaded(model, time.perf_counter() - t0))
        self.post_message(SummaryReady(model.summary(), model))  # after: the list shows first

    def on_rows_loaded(self, message: RowsLoaded) -> None:
        new = message.model
        old = self.model
        if new.partial:
            if self.loaded:  # cannot happen (one loader at a time); never go back to a page
                self._first_frame.set()
                return
            # drawn, then the loader reads the rest
            self.call_after_refresh(self._first_frame.set)
        else:
            self._loading = False
            self._load_seconds = message.seconds
            self._next_load_at = time.monotonic() + max(self.poll_s, 2 * message.seconds)
        # settings changed while loading: apply the current ones to the fresh rows
        if not new.same_settings(old):
            new.copy_settings(old)
            new.resort()
        if not new.partial:
            # decisions written while the loader read: its snapshot may predate them
            for image_id, status in self._decisions:
                row = new.by_id.get(image_id)
                if row is not None and row.status != status:
                    new.set_status(row, status)
            self._decisions = []
        keep = self.current_row.id if self.current_row is not None else None
        self.model = new
        lst = self.result_list
        lst.model = new
        lst.empty_text = ("no images found yet: the engine scans the folder" if
                          self.engine_pid or self.start_engine else
                          "no images in the project state (segtriage scan DIR indexes them)")
        lst.model_changed(keep_id=keep)
        self.loaded = not new.partial
        self._render_header()
        self._show_metrics()

    def on_summary_ready(self, message: SummaryReady) -> None:
        if message.model is self.model:
            self.summary = message.summary
            self._show_metrics()

    # -- header, metrics, status -----------------------------------------------------------
    def _render_header(self) -> None:
        m = self.model
        parts = [f"[b]segtriage[/b] {escape(self.root.name)}"]
        if m.partial:  # counts of the first page would be wrong: say what is shown
            parts.append(f"first {len(m.rows)} of {m.total} images")
        else:
            counts = m.status_counts()
            parts.append(f"{len(m.rows)} images")
            for st in ("unreviewed", "no-mask", "edited", "accepted", "flagged", "error"):
                if counts.get(st):
                    parts.append(f"{counts[st]} {st}")
        if not self.loaded:
            parts.append("[$foreground-muted]loading…[/]")
        right = f"sort: {m.sort.title} {'▼' if m.descending else '▲'}"
        filters = []
        if m.name_filter:
            filters.append(f"name~{escape(m.name_filter)}")
        if m.status_filter is not None:
            filters.append(f"status={m.status_filter}")
        if m.category_filter is not None:
            filters.append(f"category={escape(m.category_filter or UNSCORED)}")
        if filters:
            right += f" · [$accent]{' '.join(filters)}[/] ({len(m.view)} shown)"
        self.header.update(" · ".join(parts), layout=False)
        self.header_view.update(right)  # its width follows the text: a layout pass

    def _show_metrics(self) -> None:
        row = self.current_row
        score = None
        if row is not None and row.model_id is not None:
            try:
                sc = self.store.score(row.id)
                score = sc.as_dict() if sc is not None else None
            except Exception as e:  # noqa: BLE001
                score = {"error": f"cannot read scores: {e}"}
        summary = self.summary
        if self.model.partial:
            summary = self.model.summary()  # "loading", not the last load's facts
        self.metrics.show(score, row, summary, self.model.histogram())

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
            pid = engine_pid(self.root)
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
        self.status_pane.show(info, self.clock())

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

    # -- list events -----------------------------------------------------------------------
    @on(ResultList.Highlighted)
    def _row_highlighted(self, event: ResultList.Highlighted) -> None:
        # the list moves at once; preview and metrics follow when the keys pause (DETAIL_DELAY_S),
        # so holding j scrolls smoothly instead of decoding every image passed over
        if self._detail_timer is not None:
            self._detail_timer.stop()
        self._detail_timer = self.set_timer(DETAIL_DELAY_S, self._show_detail)

    @on(ResultList.Activated)
    def _row_activated(self) -> None:
        self.action_edit()

    def _show_detail(self) -> None:
        self._detail_timer = None
        self.preview.set_row(self.current_row)
        self._show_metrics()

    # -- helpers for actions ---------------------------------------------------------------
    # Two ways to change things, both turning every failure into a message:
    # _store_write: one short store write (a decision, a job request, the client heartbeat) on
    #   this thread's connection, the one the poller reads data_version from. A connection does
    #   not see its own commits there, so accepting a row does not reload 100k rows; the engine
    #   commits in short transactions, so the busy wait is short.
    # _write: file work (masks, history) in a worker; its commits do reload the rows, as the
    #   mask fingerprint and status of a row change.
    def _store_write(self, fn: Callable[[], object], done: str | None = None,
                     after: Callable[[object], None] | None = None) -> None:
        try:
            result = fn()
        except Exception as e:  # noqa: BLE001
            self.notify(str(e) or type(e).__name__, severity="error", timeout=8)
            return
        self._wrote(result, done, after)

    def _write(self, fn: Callable[[], object], done: str | None = None,
               after: Callable[[object], None] | None = None) -> None:
        self._write_worker(fn, done, after)

    @work(thread=True, group="write")
    def _write_worker(self, fn, done, after) -> None:
        try:
            result = fn()
        except Exception as e:  # noqa: BLE001
            self.call_from_thread(self.notify, str(e) or type(e).__name__, severity="error",
                                  timeout=8)
            return
        self.call_from_thread(self._wrote, result, done, after)

    def _wrote(self, result, done: str | None, after) -> None:
        if done:
            self.notify(done.replace("{}", str(result)))
        if after is not None:
            after(result)

    def _need_row(self) -> Row | None:
        row = self.current_row
        if row is None:
            self.bell()
        return row

    def _set_status_local(self, row: Row, status: str) -> None:
        self.model.set_status(row, status)
        self.result_list.refresh_row(row)
        self._render_header()
        if row is self.preview.row:  # its title line shows the status (unflag stays on it)
            self.preview.set_row(row)

    def _decide(self, row: Row, status: str) -> None:
        """A review decision: shown at once, written to the store, and remembered until the
        running load is in (its snapshot may be older than the write)."""
        self._set_status_local(row, status)
        self._store_write(partial(self.store.set_status, [row.id], status),
                          after=lambda _r: self._decisions.append((row.id, status)))

    # -- review actions --------------------------------------------------------------------
    def action_accept(self) -> None:
        row = self._need_row()
        if row is None:
            return
        problem = review.accept_problem(row.mask_path, row.error)
        if problem:
            self.notify(f"{row.name}: not accepted: {problem}", severity="warning")
            return
        self._decide(row, "accepted")
        self.result_list.action_cursor_down()

    def action_flag(self) -> None:
        row = self._need_row()
        if row is None:
            return
        if row.status == "flagged":  # a correction of this row: stay on it
            self._decide(row, review.unflagged_status(row.mask_path, row.error))
            return
        self._decide(row, "flagged")
        self.result_list.action_cursor_down()

    def action_next_review(self) -> None:
        lst = self.result_list
        i = self.model.next_needing_review(lst.cursor)
        if i is None:
            self.notify("nothing left to review in this view")
            return
        lst.set_cursor(i, center=True)

    # -- masks -----------------------------------------------------------------------------
    def action_edit(self) -> None:
        row = self._need_row()
        if row is not None:
            self._prepare_edit_worker(row.id)

    @work(thread=True, group="mask")
    def _prepare_edit_worker(self, image_id: int) -> None:
        try:
            mask, image = review.prepare_edit(self.project, image_id)
        except Exception as e:  # noqa: BLE001
            self.call_from_thread(self.notify, f"cannot open the editor: {e}", severity="error",
                                  timeout=8)
            return
        self.call_from_thread(self._open_editor, mask, image)

    def _open_editor(self, mask: Path, image: Path) -> None:
        try:
            argv = editor.editor_argv(self.cfg.editor.command, mask, image, project=self.root)
        except editor.EditorError as e:
            self.notify(str(e), severity="error", timeout=10)
            return
        rel = mask.relative_to(self.root).as_posix()
        try:
            if self.cfg.editor.mode == "gui" and not editor.is_painter(argv):
                editor.launch_gui(argv, self.root)
                self.notify(f"opened {rel} in {Path(argv[0]).name}; save it and the row "
                            "updates")
                return
            failed = None
            with self.suspend():
                # an exception leaving this block would skip Textual's resume and leave a
                # blank, dead screen: catch it inside, report it once the app is back
                try:
                    rc = self.run_terminal_editor(argv, self.root)
                except editor.EditorError as e:
                    failed = e
            if failed is not None:
                raise failed
        except SuspendNotSupported:
            self.notify("this terminal cannot hand itself to an editor; set [editor] mode = "
                        "\"gui\" in segtriage.toml", severity="error", timeout=10)
            return
        except editor.EditorError as e:
            self.notify(str(e), severity="error", timeout=10)
            return
        if rc:
            self.notify(f"{Path(argv[0]).name} exited with status {rc}", severity="warning")
        self._write(partial(review.nudge_index, self.project, rel))

    def action_replace_with_prediction(self) -> None:
        row = self._need_row()
        if row is None:
            return
        if not row.prob_path:
            self.notify(f"{row.name}: no prediction yet (p predicts)", severity="warning")
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._write(partial(review.replace_with_prediction, self.project, row.id),
                            done="{} (u undoes)")

        self.push_screen(ConfirmScreen(
            f"Replace the mask of {escape(row.name)} with the model's prediction?",
            "The current mask is kept in the history: u undoes it.", yes="Replace"), answer)

    def action_undo(self) -> None:
        row = self._need_row()
        if row is not None:
            self._write(partial(review.undo, self.project, row.id), done="{}")

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

        self.push_screen(RetrainScreen(m.epochs, m.folds, n, self.cfg.backup.before_train,
                                       gpus=m.gpus, min_steps=m.min_steps), answer)

    def action_predict(self) -> None:
        self._submit("predict", {"scope": "stale"}, "re-predict")

    def action_backup(self) -> None:
        self._submit("backup", {}, "backup")

    def action_cancel_job(self) -> None:
        active = self.store.active_jobs()  # newest first
        job = next((j for j in active if j.state == "running"), active[-1] if active else None)
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

    # -- view ------------------------------------------------------------------------------
    def _view_changed(self, keep: int | None) -> None:
        self.result_list.model_changed(keep_id=keep)
        self._render_header()

    def _keep_id(self) -> int | None:
        row = self.current_row
        return row.id if row is not None else None

    def action_sort_next(self) -> None:
        keep = self._keep_id()
        self.model.next_sort()
        self._view_changed(keep)

    def action_sort_reverse(self) -> None:
        keep = self._keep_id()
        self.model.reverse()
        self._view_changed(keep)

    def action_filter_name(self) -> None:
        box = self.filter_box
        box.value = self.model.name_filter
        box.add_class("-shown")
        box.focus()

    @on(Input.Changed, "#filter-input")
    def _filter_typed(self, event: Input.Changed) -> None:
        keep = self._keep_id()
        self.model.set_filter(name=event.value)
        self._view_changed(keep)

    @on(Input.Submitted, "#filter-input")
    def _filter_done(self, event: Input.Submitted) -> None:
        event.input.remove_class("-shown")
        self.result_list.focus()

    def action_clear_filter(self) -> None:
        box = self.filter_box
        box.remove_class("-shown")
        if self.model.filtered:
            keep = self._keep_id()
            box.value = ""
            self.model.set_filter(name="", status=None, category=None)
            self._view_changed(keep)
        self.result_list.focus()

    def action_filter_status(self) -> None:
        def answer(choice) -> None:
            if choice is None:
                return
            kind, value = choice
            keep = self._keep_id()
            if kind == "all":
                self.model.set_filter(status=None, category=None)
            elif kind == "status":
                self.model.set_filter(status=value, category=None)
            else:
                self.model.set_filter(status=None, category=value)
            self._view_changed(keep)

        if self.model.partial:  # the choices, without counts until every row is in
            self.push_screen(FilterScreen(None, None, None), answer)
            return
        self.push_screen(FilterScreen(self.model.status_counts(), self.model.category_counts(),
                                      len(self.model.rows)), answer)

    def action_toggle_mask(self) -> None:
        self.preview.show_mask = not self.preview.show_mask

    def action_toggle_prediction(self) -> None:
        self.preview.show_prediction = not self.preview.show_prediction

    def action_toggle_uncertainty(self) -> None:
        self.preview.show_uncertainty = not self.preview.show_uncertainty

    def action_toggle_outline(self) -> None:
        self.preview.outline = not self.preview.outline

    def action_zoom(self) -> None:
        self.screen.toggle_class("-zoom")
        if not self.screen.has_class("-zoom"):
            self.result_list.focus()

    def action_cycle_theme(self) -> None:
        names = self.segtriage_themes or [self.theme]
        i = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(i + 1) % len(names)]
        self.notify(f"theme: {self.theme}", timeout=2)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.keymap))

    async def action_quit(self) -> None:
        self.exit(0)


def run_app(root: Path, *, renderer: str | None = None, start_engine: bool = True,
            first_page: int = FIRST_PAGE) -> int:
    """Open the review app on a data folder; returns the exit status for the command line.

    ``renderer`` overrides ``[tui] image_renderer``; ``start_engine=False`` only looks (no
    engine is started; queued jobs wait for one); ``first_page`` as in SegtriageApp."""
    import sqlite3
    import sys

    from ...engine.project.config import ConfigError, load_config

    root = Path(root)
    if not root.is_dir():
        print(f"segtriage: {root}: not a folder", file=sys.stderr)
        return 2
    try:
        cfg = load_config(root)
    except ConfigError as e:
        print(f"segtriage: {e}", file=sys.stderr)
        return 2
    # textual-image probes the terminal when imported: before App.run(), never inside it
    try:
        image_renderer = select_renderer(renderer or cfg.tui.image_renderer)
    except ValueError as e:
        print(f"segtriage: {e}", file=sys.stderr)
        return 2
    from ...engine.store import StoreError

    try:
        app = SegtriageApp(root, cfg, renderer=image_renderer, start_engine=start_engine,
                           first_page=first_page)
    except (StoreError, OSError, sqlite3.Error) as e:
        print(f"segtriage: cannot open the project state of {root}: {e}", file=sys.stderr)
        return 2
    result = app.run()
    return result if isinstance(result, int) else (app.return_code or 0)
