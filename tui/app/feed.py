"""The app's data feed: polling the store for changes, loading rows in a thread worker (the
first page of a big project first), and what follows a load or a move in the list: the
header's counts, the metrics pane, the preview (a mixin of ``SegtriageApp``)."""

from __future__ import annotations

import time

from textual import work
from textual.markup import escape
from textual.message import Message
from textual.worker import get_current_worker

from .data import UNSCORED, ReviewModel, load_head, load_rows
from .widgets.result_list import ResultList

DETAIL_DELAY_S = 0.04
# the loader waits at most this long for the first page to be drawn before it reads the rest
# (building 100k rows holds the GIL most of the time: the first frame goes first)
FIRST_FRAME_WAIT_S = 0.5


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


class DataFeed:
    """Rows in, and the panes that show them kept in step.

    The store's ``data_version`` and rows stamp (``ChangeWatch``) are polled a few times a
    second; a change reloads every row in a worker, at most as often as loading takes twice
    its own time. Decisions written while a load ran are applied again to its rows (its
    snapshot may predate them)."""

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

    # -- header and metrics ----------------------------------------------------------------
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
        self.metrics.request_objects(row)  # measured in a worker; cached per mask and model

    # -- the selected row ------------------------------------------------------------------
    def on_result_list_highlighted(self, event: ResultList.Highlighted) -> None:
        # the list moves at once; preview and metrics follow when the keys pause (DETAIL_DELAY_S),
        # so holding j scrolls smoothly instead of decoding every image passed over
        if self._detail_timer is not None:
            self._detail_timer.stop()
        self._detail_timer = self.set_timer(DETAIL_DELAY_S, self._show_detail)

    def on_result_list_activated(self, event: ResultList.Activated) -> None:
        self.action_edit()

    def _show_detail(self) -> None:
        self._detail_timer = None
        self.preview.set_row(self.current_row)
        self._show_metrics()
