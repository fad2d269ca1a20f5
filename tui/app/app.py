"""The segtriage Textual app: its composition and lifecycle; the rest is in one mixin per
concern.

The app is a client of the project state (``.segtriage/state.db``): it reads rows, scores, jobs
and engine facts through ``engine.store`` and writes review decisions and job requests into
it. It never imports torch or fastai. Loading rows, decoding images and changing masks run in
thread workers (each thread has its own SQLite connection), so a key press never waits on them.

    feed.py            DataFeed: polling the store, loading rows, header, metrics, the detail
    review_actions.py  ReviewActions: accept, flag, next, edit, use prediction, undo
    jobs.py            JobActions: the engine, this client, the status pane, the job actions
    view_actions.py    ViewActions: sort, filters, the preview's overlays and zoom, themes
    writes.py          StoreWrites: the two ways an action writes, failures as messages
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Input, Static

from ...engine.daemon.control import DeadEngineRule, engine_pid, ensure_engine
from ...engine.project.project import Project
from ..run import run_frozen
from ..paint.renderers import Renderer, select_renderer
from . import actions, editor
from .data import FIRST_PAGE, ChangeWatch, ReviewModel, Row
from .feed import DataFeed
from .jobs import EngineControl, JobActions
from .palette import ActionCommands
from .review_actions import ReviewActions
from .screens.help import key_text
from .themes import load_themes, preview_colors
from .view_actions import ViewActions
from .widgets.metrics import MetricsPane
from .widgets.preview import Preview
from .widgets.result_list import ResultList
from .widgets.status import StatusPane
from .writes import StoreWrites

DEFAULT_THEME = "segtriage-dark"


class SegtriageApp(DataFeed, ReviewActions, JobActions, ViewActions, StoreWrites, App[int]):
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
        # the engine's control, taken from this module when the app is made (tests stand in)
        self.engine_control = EngineControl(start=ensure_engine, pid=engine_pid)
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
    def key_of(self, action_id: str) -> str:
        """The key that runs an action now (its first one, [keymap] applied), as the help
        screen shows keys: what messages name when they say which key to press."""
        return key_text(self, self.keymap[action_id].split(",")[0])

    def compose(self) -> ComposeResult:
        # kept as attributes: timers and workers may still report while the app shuts down,
        # when a query would no longer find them
        self.header = Static("", id="header-counts")
        self.header_view = Static("", id="header-view")
        self.result_list = ResultList(self.model, id="list")
        self.filter_box = Input(placeholder="filter by name (enter keeps, escape clears)",
                                id="filter-input")
        # split outlines as the project measures, as the painter draws them
        self.preview = Preview(self.root, self.state_dir, self.cfg.project.codes, self.renderer,
                               cfg=self.cfg, id="preview")
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

    # -- lifecycle -------------------------------------------------------------------------
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

    def on_unmount(self) -> None:
        self._unregister_client()

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
    result = run_frozen(app)
    return result if isinstance(result, int) else (app.return_code or 0)
