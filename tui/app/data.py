"""The client-side model of the review list: rows from the store, sort, filter, summaries.

Rows are kept as small slotted objects (a 100k-row project is ~100k of them), sorted once per
sort change into ``order`` (indices into ``rows``) and filtered into ``view``. Nothing here
touches Textual; the app reloads rows in a thread worker when the store's ``data_version``
moves, and the list widget only reads ``view``. At launch the loader first reads only the top
of the default review order (``load_head``: ORDER BY … LIMIT through an index), so a 100k-row
project shows its first screen at once; the whole list replaces that page when it is in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from ...engine.store.rows import ListRow

NUMERIC = ("priority", "confidence", "region_confidence", "label_quality", "dice", "iou", "ce")
# statuses that still need a person's look; `n` jumps to the next of these
NEEDS_REVIEW = ("unreviewed", "no-mask")
# engine.project.scoring.CATEGORIES, most worth a look first (a test keeps the two equal). Not imported:
# scoring pulls scipy, 0.7 s of start-up the list does not need.
CATEGORY_ORDER = ("disagrees", "uncertain", "agrees", "no-model")
UNSCORED = "unscored"  # the category count of rows without a score
# rows read first at launch, in the default review order, before the whole list (a screen
# holds ~40; the rest of the page is there for the first page-down keys)
FIRST_PAGE = 200
# lists up to this size are sorted in plain Python: the first page shows without importing
# numpy (~0.1-0.2 s); bigger lists use numpy's argsort (the same order, tested)
SMALL_SORT = 2000


class Row:
    """One image in the list (only what the list, sort and filter need)."""

    __slots__ = ("id", "path", "name", "mask_path", "status", "error", "category", "priority",
                 "confidence", "region_confidence", "label_quality", "dice", "iou", "ce",
                 "n_pred", "n_mask", "outline_bias", "stale", "model_id", "prob_path",
                 "score_error", "checkpoint")

    def __init__(self, r: ListRow, name: str):
        self.id: int = r.id
        self.path: str = r.path
        self.name = name
        self.mask_path: str | None = r.mask_path
        self.status: str = r.status or "unreviewed"
        self.error: str | None = r.error
        self.category: str | None = r.category
        self.priority = r.priority
        self.confidence = r.confidence
        self.region_confidence = r.region_confidence
        self.label_quality = r.label_quality
        self.dice = r.dice
        self.iou = r.iou
        self.ce = r.ce
        self.n_pred = r.n_pred
        self.n_mask = r.n_mask
        self.outline_bias = r.outline_bias
        self.stale = bool(r.stale)
        self.model_id = r.model_id
        self.prob_path: str | None = r.prob_path
        self.score_error: str | None = r.score_error
        self.checkpoint = bool(r.checkpoint)  # scored by an early ranking's checkpoint

    @property
    def objects_diff(self) -> int | None:
        if self.n_pred is None or self.n_mask is None:
            return None
        return abs(self.n_pred - self.n_mask)


@dataclass(frozen=True)
class SortKey:
    id: str
    title: str          # shown in the column header / status line
    attr: str           # Row attribute
    descending: bool    # natural direction: the rows that most need a look first


SORTS: tuple[SortKey, ...] = (
    SortKey("review", "review order", "priority", True),
    SortKey("confidence", "confidence", "confidence", False),
    SortKey("label_quality", "label quality", "label_quality", False),
    SortKey("dice", "Dice", "dice", False),
    SortKey("ce", "cross-entropy", "ce", True),
    SortKey("objects", "object count mismatch", "objects_diff", True),
    SortKey("outline", "outline bias (tight first)", "outline_bias", False),
    SortKey("name", "name", "name", False),
    SortKey("status", "status", "status", False),
    SortKey("category", "category", "category", False),
)
SORT_BY_ID = {s.id: s for s in SORTS}


def common_dir(paths: Sequence[str]) -> str:
    """The folder prefix every path shares ("images/"), dropped from the shown names."""
    if not paths:
        return ""
    first = paths[0].rpartition("/")[0]
    if all(p.startswith(first + "/") for p in paths):  # the common case: one folder
        return first + "/" if first else ""
    dirs = [p.rpartition("/")[0] for p in paths]
    if not all(dirs):
        return ""
    common = os.path.commonpath(dirs)
    return common + "/" if common else ""


def rows_from_list(list_rows: Iterable[ListRow]) -> list[Row]:
    """The app's rows of the store's list rows, in path order, named without the folder every
    path shares. Streams: no list of the list rows is held beside the rows."""
    rows = [Row(r, r.path) for r in list_rows]
    n = len(common_dir([r.path for r in rows]))
    if n:
        for r in rows:
            r.name = r.path[n:]
    rows.sort(key=lambda r: r.path)  # name order: the stable tie-break of every sort
    return rows


def load_rows(store) -> list[Row]:
    """Every row, streamed from the store's lean query."""
    return rows_from_list(store.list_rows())


def load_head(store, limit: int = FIRST_PAGE) -> tuple[list[Row], int]:
    """The first ``limit`` rows of the default review order (the store's ``list_head``) and the
    number of rows in the project. The rows come back in path order, like ``load_rows``, with
    the same names: the folder every path shares is the one the smallest and the largest path
    share (the longest common prefix of a set of strings is that of its min and max)."""
    head = store.list_head(limit)
    bounds = [p for p in (head.first_path, head.last_path) if p is not None]
    n = len(common_dir(bounds))
    rows = [Row(r, r.path[n:]) for r in head.rows]
    rows.sort(key=lambda r: r.path)
    return rows, head.total


def _order_small(raw: list, descending: bool) -> list[int]:
    """The order numpy's stable argsort gives (see ReviewModel.resort), in plain Python:
    values ascending or descending, ties in their given order, None and NaN last."""
    have = [i for i, v in enumerate(raw) if v is not None and v == v]
    have.sort(key=raw.__getitem__, reverse=descending)  # stable in both directions
    return have + [i for i, v in enumerate(raw) if v is None or v != v]


class ReviewModel:
    """All rows, their sort order and the filtered view the list shows.

    ``total`` is set while only the first page of a bigger project is loaded (the rows of the
    default review order's top): the list shows them, counts and summaries wait for the rest.
    """

    def __init__(self, rows: list[Row] | None = None):
        self.rows: list[Row] = []
        self.by_id: dict[int, Row] = {}
        self.sort: SortKey = SORTS[0]
        self.reversed = False
        self.name_filter = ""
        self.status_filter: str | None = None     # a status, or None for all
        self.category_filter: str | None = None   # a category, "" for "no category"
        self.order: list[int] = []
        self.view: list[Row] = []
        self._sort_values = None   # float values of a numeric sort column (for the histogram)
        self._hist: dict | None = None
        self._status_counts: dict[str, int] | None = None
        self.total: int | None = None             # rows in the project, while partial
        self.set_rows(rows or [])

    # -- loading ---------------------------------------------------------------------------
    def set_rows(self, rows: list[Row], total: int | None = None) -> None:
        """``rows`` in path order; ``total`` when they are only the first page of ``total``."""
        self.rows = rows
        self.by_id = {r.id: r for r in rows}
        self.total = total if total is not None and total > len(rows) else None
        self._status_counts = None
        self.resort()

    @property
    def partial(self) -> bool:
        """Only the first page is loaded: counts, summaries and the histogram would be wrong."""
        return self.total is not None

    @property
    def missing(self) -> int:
        """Rows of the project not loaded yet."""
        return 0 if self.total is None else self.total - len(self.rows)

    def copy_settings(self, other: "ReviewModel") -> None:
        """Take ``other``'s sort and filters (before set_rows, or followed by resort())."""
        self.sort, self.reversed = other.sort, other.reversed
        self.name_filter = other.name_filter
        self.status_filter = other.status_filter
        self.category_filter = other.category_filter

    def same_settings(self, other: "ReviewModel") -> bool:
        return (self.sort, self.reversed, self.name_filter, self.status_filter,
                self.category_filter) == (other.sort, other.reversed, other.name_filter,
                                          other.status_filter, other.category_filter)

    # -- sorting and filtering --------------------------------------------------------------
    @property
    def descending(self) -> bool:
        return self.sort.descending != self.reversed

    def set_sort(self, sort_id: str, *, reversed: bool = False) -> None:
        self.sort = SORT_BY_ID[sort_id]
        self.reversed = reversed
        self.resort()

    def next_sort(self) -> None:
        i = SORTS.index(self.sort)
        self.set_sort(SORTS[(i + 1) % len(SORTS)].id)

    def reverse(self) -> None:
        self.reversed = not self.reversed
        self.resort()

    def resort(self) -> None:
        """Order rows by the sort column; rows without a value always come last.

        numpy's stable argsort on floats (strings by rank, None as NaN, which argsort puts
        last in both directions since -NaN is NaN): ties keep name order. 100k rows in tens
        of milliseconds; numpy is imported on first use (the first sort runs in the loader).
        Small lists (the first page) take the same order from ``_order_small``."""
        attr = self.sort.attr
        rows = self.rows
        self._sort_values = None
        self._hist = None
        if attr == "name":  # rows are kept in path order already
            order = list(range(len(rows)))
            self.order = order[::-1] if self.descending else order
            self.refilter()
            return
        if attr == "objects_diff":
            raw = [r.objects_diff for r in rows]
        else:
            raw = [getattr(r, attr) for r in rows]
        if attr in ("category", "status"):
            known = list(CATEGORY_ORDER) if attr == "category" else []
            extra = sorted({v for v in raw if v is not None and v not in known})
            rank = {v: float(i) for i, v in enumerate(known + extra)}
            raw = [None if v is None else rank[v] for v in raw]
        nan = float("nan")
        if len(raw) <= SMALL_SORT:
            self.order = _order_small(raw, self.descending)
            values = [nan if v is None else float(v) for v in raw]
        else:
            import numpy as np

            values = np.fromiter((nan if v is None else v for v in raw), dtype=float,
                                 count=len(raw))
            order = np.argsort(-values if self.descending else values, kind="stable")
            self.order = order.tolist()
        if attr in NUMERIC or attr == "objects_diff":
            self._sort_values = values
        self.refilter()

    def set_filter(self, *, name: str | None = None, status: Any = ...,
                   category: Any = ...) -> None:
        if name is not None:
            self.name_filter = name
        if status is not ...:
            self.status_filter = status
        if category is not ...:
            self.category_filter = category
        self.refilter()

    @property
    def filtered(self) -> bool:
        return bool(self.name_filter) or self.status_filter is not None or \
            self.category_filter is not None

    def refilter(self) -> None:
        rows = self.rows
        tests: list[Callable[[Row], bool]] = []
        if self.name_filter:
            needle = self.name_filter.lower()
            tests.append(lambda r: needle in r.name.lower())
        if self.status_filter is not None:
            st = self.status_filter
            tests.append(lambda r: r.status == st)
        if self.category_filter is not None:
            cat = self.category_filter or None
            tests.append(lambda r: r.category == cat)
        if not tests:
            self.view = [rows[i] for i in self.order]
        else:
            self.view = [r for r in (rows[i] for i in self.order) if all(t(r) for t in tests)]

    def index_of(self, image_id: int | None) -> int | None:
        if image_id is None:
            return None
        for i, r in enumerate(self.view):
            if r.id == image_id:
                return i
        return None

    def next_needing_review(self, start: int) -> int | None:
        """Index of the next row after ``start`` (wrapping) that still needs review."""
        n = len(self.view)
        for step in range(1, n + 1):
            i = (start + step) % n
            if self.view[i].status in NEEDS_REVIEW:
                return i
        return None

    # -- counts and summaries ----------------------------------------------------------------
    def status_counts(self) -> dict[str, int]:
        """Rows per status (kept up to date by set_status; the header shows it per key)."""
        if self._status_counts is None:
            out: dict[str, int] = {}
            for r in self.rows:
                out[r.status] = out.get(r.status, 0) + 1
            self._status_counts = out
        return dict(self._status_counts)

    def set_status(self, row: Row, status: str) -> None:
        """A decision made here, shown before the store's next reload confirms it."""
        counts = self._status_counts
        if counts is not None:
            counts[row.status] -= 1
            if not counts[row.status]:
                del counts[row.status]
            counts[status] = counts.get(status, 0) + 1
        row.status = status

    def category_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rows:
            key = r.category or UNSCORED
            out[key] = out.get(key, 0) + 1
        return out

    def summary(self) -> dict:
        """Data-set facts for the metrics pane, over every row (not only the filtered ones):
        counts, means. O(rows): computed by the loader thread, once per load. While only the
        first page is loaded: ``{"loading": True, "n": rows in the project}``."""
        if self.partial:
            return {"loading": True, "n": self.total}
        means = {}
        for col in ("confidence", "label_quality", "dice", "ce"):
            vals = [v for r in self.rows if (v := getattr(r, col)) is not None]
            means[col] = (sum(vals) / len(vals)) if vals else None
        return {
            "n": len(self.rows),
            "scored": sum(1 for r in self.rows if r.model_id is not None),
            "stale": sum(1 for r in self.rows if r.stale),
            "means": means,
            "status": self.status_counts(),
            "category": self.category_counts(),
        }

    def histogram(self, bins: int = 20) -> dict | None:
        """Histogram of the sort column over every row (numeric columns only), from the
        values the last sort computed: {"title", "lo", "hi", "counts"}."""
        if self._hist is None and self._sort_values is not None and not self.partial:
            import numpy as np

            v = np.asarray(self._sort_values, dtype=float)
            v = v[~np.isnan(v)]
            if v.size:
                lo, hi = float(v.min()), float(v.max())
                if hi == lo:
                    counts = [int(v.size)] + [0] * (bins - 1)
                else:
                    idx = np.minimum(bins - 1, ((v - lo) * (bins / (hi - lo))).astype(int))
                    counts = np.bincount(idx, minlength=bins).tolist()
                self._hist = {"title": self.sort.title, "lo": lo, "hi": hi, "counts": counts}
        return self._hist


class ChangeWatch:
    """Cheap change detection. ``PRAGMA data_version`` moves when another connection commits
    (the engine, the CLI, this app's worker threads); it moves for the engine's heartbeat and
    job progress too, so before reloading every row the store's ``rows_stamp()`` (when it has
    one: a few indexed aggregates over images and scores) says whether rows changed at all."""

    def __init__(self, store):
        self.store = store
        self.version: int | None = None
        self.stamp: object = None

    def changed(self) -> bool:
        v = self.store.data_version()
        if v != self.version:
            self.version = v
            return True
        return False

    def rows_changed(self) -> bool:
        stamp_of = getattr(self.store, "rows_stamp", None)
        if stamp_of is None:
            return True  # no cheap stamp: any commit may have changed rows
        stamp = stamp_of()
        if stamp != self.stamp:
            self.stamp = stamp
            return True
        return False


# -- the status pane's facts (one read of the store; cheap: a handful of indexed queries) -------

def gather_status(store) -> dict:
    """The status pane's facts (engine, jobs, model, edits, backup; engine.project.queries
    gathers them for every client) as the pane reads them."""
    from ...engine.project.queries import status_facts

    st = status_facts(store, curve=True)
    return {"engine": st.engine, "running": st.running, "queued": st.queued,
            "last_job": st.last_job, "curve": st.curve, "model": st.model,
            "edits_since_train": st.edits_since_train,
            "backup_at": st.last_backup.created_at if st.last_backup else None,
            "edits_since_backup": st.edits_since_backup,
            "checkpoint": st.checkpoint, "checkpoint_rows": st.checkpoint_rows}
