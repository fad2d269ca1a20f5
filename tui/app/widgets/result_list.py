"""The review list: a Line-API ScrollView that renders only the rows on screen.

Mounting costs the same for 10 or 100 000 rows: ``virtual_size`` says how tall the list is and
``render_line`` draws one visible line from the model's ``view``. Moving the cursor redraws two
lines. Line 0 of the viewport is the column header (it does not scroll).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from .. import actions
from ..data import ReviewModel, Row

STATUS_CLASSES = ("unreviewed", "accepted", "edited", "flagged", "no-mask", "error")


def fmt_num(v: float | None, width: int = 5) -> str:
    if v is None:
        return "·".rjust(width)
    if v != v:  # NaN
        return "nan".rjust(width)
    if abs(v) >= 100:
        s = f"{v:.0f}"
    elif abs(v) >= 10:
        s = f"{v:.1f}"
    elif width >= 5:
        s = f"{v:.3f}"
    else:
        s = f"{v:.2f}"
    return s.rjust(width)[:width] if len(s) <= width else s[:width]


def fmt_objects(r: Row) -> str:
    if r.n_pred is None and r.n_mask is None:
        return "·"
    p = "·" if r.n_pred is None else str(r.n_pred)
    m = "·" if r.n_mask is None else str(r.n_mask)
    return f"{p}/{m}"


@dataclass(frozen=True)
class Column:
    id: str
    title: str
    width: int              # 0: takes the remaining width
    align: str              # "<" or ">"
    text: Callable[[Row], str]
    sort_attr: str | None   # the Row attribute this column shows (header sort marker)
    drop: int = 0           # narrow screens drop higher numbers first; 0 never


COLUMNS: tuple[Column, ...] = (
    Column("stale", "~", 1, "<",  # c: scored by an early ranking's checkpoint
           lambda r: "c" if r.checkpoint else "~" if r.stale else " ", None),
    Column("name", "name", 0, "<", lambda r: r.name, "name"),
    Column("status", "status", 10, "<", lambda r: r.status, "status"),
    Column("category", "category", 11, "<", lambda r: r.category or "·", "category", drop=4),
    Column("confidence", "conf", 5, ">", lambda r: fmt_num(r.confidence), "confidence", drop=2),
    Column("label_quality", "LQ", 5, ">", lambda r: fmt_num(r.label_quality), "label_quality",
           drop=3),
    Column("dice", "Dice", 5, ">", lambda r: fmt_num(r.dice), "dice"),
    Column("ce", "CE", 5, ">", lambda r: fmt_num(r.ce), "ce", drop=1),
    Column("objects", "obj p/m", 7, ">", fmt_objects, "objects_diff", drop=5),
)
MIN_NAME = 14


def layout_columns(width: int) -> list[tuple[Column, int]]:
    """Columns that fit ``width`` (dropping the least needed first) with their widths."""
    cols = list(COLUMNS)
    while True:
        fixed = sum(c.width for c in cols if c.width) + (len(cols) - 1)
        name_w = width - fixed
        droppable = [c for c in cols if c.drop]
        if name_w >= MIN_NAME or not droppable:
            break
        cols.remove(max(droppable, key=lambda c: c.drop))
    name_w = max(4, width - sum(c.width for c in cols if c.width) - (len(cols) - 1))
    return [(c, c.width or name_w) for c in cols]


def _cell(text: str, width: int, align: str) -> str:
    if len(text) > width:
        return text[: max(0, width - 1)] + "…" if width > 1 else text[:width]
    return text.rjust(width) if align == ">" else text.ljust(width)


class ResultList(ScrollView, can_focus=True, inherit_bindings=False):
    """Every image of the project, one line each, in the model's current order."""

    BINDINGS = actions.bindings("list")

    COMPONENT_CLASSES = {
        "result-list--header", "result-list--cursor", "result-list--cursor-blur",
        "result-list--stale",
        "result-list--missing", *(f"result-list--{s}" for s in STATUS_CLASSES),
    }

    DEFAULT_CSS = """
    ResultList { overflow-x: hidden; overflow-y: auto; }
    """

    class Highlighted(Message):
        """The row under the cursor changed (or its content did)."""

        def __init__(self, row: Row | None) -> None:
            super().__init__()
            self.row = row

    def __init__(self, model: ReviewModel, **kw) -> None:
        super().__init__(**kw)
        self.model = model
        self.cursor = 0  # index into model.view
        self.empty_text = "loading…"
        self._styles: dict[str, Style] | None = None
        self._columns: list[tuple[Column, int]] = []
        self._columns_width = -1
        self._line_cache: LRUCache[tuple, Strip] = LRUCache(1024)

    # -- model updates ---------------------------------------------------------------------
    def model_changed(self, keep_id: int | None = None) -> None:
        """The view was re-sorted, filtered or reloaded: keep the cursor on ``keep_id`` when it
        is still shown, else at the same index."""
        idx = self.model.index_of(keep_id) if keep_id is not None else None
        self.virtual_size = Size(self.size.width, self._lines())
        self.set_cursor(self.cursor if idx is None else idx, center=idx is not None)
        self.refresh()

    def refresh_row(self, row: Row) -> None:
        """Redraw one row's line if it is on screen (its status changed)."""
        top = round(self.scroll_y)
        for i, r in enumerate(self.model.view[top:top + self.size.height]):
            if r is row:
                self.refresh_line(top + i + 1)

    def _lines(self) -> int:
        """Header, rows, and a "loading" line under the first page while the rest loads."""
        return len(self.model.view) + 1 + (1 if self.model.partial else 0)

    @property
    def row(self) -> Row | None:
        view = self.model.view
        return view[self.cursor] if 0 <= self.cursor < len(view) else None

    def set_cursor(self, index: int, *, center: bool = False) -> None:
        n = len(self.model.view)
        index = max(0, min(index, n - 1)) if n else 0
        old = self.cursor
        self.cursor = index
        if old != index:
            self.refresh_line(old + 1)
        self.refresh_line(index + 1)
        self._scroll_to_cursor(center=center)
        self.post_message(self.Highlighted(self.row))

    def _scroll_to_cursor(self, *, center: bool = False) -> None:
        body = max(1, self.scrollable_content_region.height - 1)
        top = round(self.scroll_y)
        if center and not (top <= self.cursor < top + body):
            top = self.cursor - body // 2
        elif self.cursor < top:
            top = self.cursor
        elif self.cursor >= top + body:
            top = self.cursor - body + 1
        top = max(0, min(top, len(self.model.view) + 1 - body - 1))
        if top != round(self.scroll_y):
            self.scroll_to(y=top, animate=False, immediate=True)

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(self.size.width, self._lines())
        self._scroll_to_cursor()

    # -- actions ---------------------------------------------------------------------------
    @property
    def _half_page(self) -> int:
        return max(1, (self.scrollable_content_region.height - 1) // 2)

    def action_cursor_down(self) -> None:
        self.set_cursor(self.cursor + 1)

    def action_cursor_up(self) -> None:
        self.set_cursor(self.cursor - 1)

    def action_page_down(self) -> None:
        self.set_cursor(self.cursor + self._half_page)

    def action_page_up(self) -> None:
        self.set_cursor(self.cursor - self._half_page)

    def action_first(self) -> None:
        self.set_cursor(0)

    def action_last(self) -> None:
        self.set_cursor(len(self.model.view) - 1)

    class Activated(Message):
        """A row was double-clicked: open it."""

    def on_click(self, event: events.Click) -> None:
        y = event.y - self.gutter.top
        if y >= 1:
            index = round(self.scroll_y) + y - 1
            if index < len(self.model.view):
                self.set_cursor(index)
                if event.chain == 2:
                    self.post_message(self.Activated())

    # -- rendering -------------------------------------------------------------------------
    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None
        self._line_cache.clear()

    def _get_styles(self) -> dict[str, Style]:
        if self._styles is None:
            self._styles = {
                name.removeprefix("result-list--"): self.get_component_rich_style(name,
                                                                                  partial=True)
                for name in self.COMPONENT_CLASSES
            }
        return self._styles

    def _get_columns(self, width: int) -> list[tuple[Column, int]]:
        if width != self._columns_width:
            self._columns = layout_columns(width)
            self._columns_width = width
        return self._columns

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        styles = self._get_styles()
        cols = self._get_columns(width)
        if y == 0:
            return self._render_header(cols, width, base + styles["header"])
        index = round(self.scroll_y) + y - 1
        view = self.model.view
        if index >= len(view):
            if index == len(view) and self.model.partial:  # under the first page
                text = f"… {self.model.missing} more images loading"
                return Strip([Segment(" " + text, base + styles["missing"])]
                             ).adjust_cell_length(width, base)
            if y == 1 and not view:  # say why the list is empty
                text = self.empty_text if not self.model.filtered else \
                    "no rows match the filters (escape clears them)"
                return Strip([Segment(" " + text, base + styles["missing"])]
                             ).adjust_cell_length(width, base)
            return Strip.blank(width, base)
        row = view[index]
        cursor = index == self.cursor
        # rows are immutable but for their status (reloads bring new Row objects): a scroll
        # or a repaint of the panes beside the list mostly hits this cache
        key = (row, row.status, cursor, cursor and self.has_focus, width)
        strip = self._line_cache.get(key)
        if strip is None:
            strip = self._line_cache[key] = self._render_row(row, cursor, cols, width, base,
                                                             styles)
        return strip

    def _render_row(self, row: Row, cursor: bool, cols, width: int, base: Style,
                    styles: dict[str, Style]) -> Strip:
        if cursor:
            # the cursor's background wins; the status colours stay readable on top of it
            base = base + (styles["cursor"] if self.has_focus else styles["cursor-blur"])
        segs: list[Segment] = []
        for i, (col, w) in enumerate(cols):
            if i:
                segs.append(Segment(" ", base))
            text = _cell(col.text(row), w, col.align)
            style = base
            if col.id == "status":
                style = base + styles.get(row.status, styles["unreviewed"])
            elif col.id == "stale" and (row.stale or row.checkpoint):
                style = base + styles["stale"]
            elif text.strip() == "·":
                style = base + styles["missing"]
            segs.append(Segment(text, style))
        return Strip(segs).adjust_cell_length(width, base)

    def _render_header(self, cols, width: int, style: Style) -> Strip:
        parts = []
        arrow = "▼" if self.model.descending else "▲"
        for col, w in cols:
            title = col.title
            if col.sort_attr and col.sort_attr == self.model.sort.attr:
                title = f"{title}{arrow}"
            parts.append(_cell(title, w, col.align))
        return Strip([Segment(" ".join(parts), style)]).adjust_cell_length(width, style)
