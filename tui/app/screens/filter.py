"""Pick a status or a category to show (or all rows)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ....engine.store import STATUSES
from ..data import CATEGORY_ORDER, UNSCORED


class FilterScreen(ModalScreen[tuple[str, str | None] | None]):
    """Returns ("all", None), ("status", s) or ("category", c); None when dismissed.

    Counts None (the list is still loading): every status and category, without counts."""

    BINDINGS = [Binding("escape,q", "dismiss(None)", "Close", show=False)]

    def __init__(self, status_counts: dict[str, int] | None,
                 category_counts: dict[str, int] | None, total: int | None) -> None:
        super().__init__()
        self.status_counts = status_counts
        self.category_counts = category_counts
        self.total = total

    def compose(self) -> ComposeResult:
        counted = self.status_counts is not None and self.category_counts is not None
        if counted:
            statuses = sorted(self.status_counts.items(), key=lambda kv: -kv[1])
            categories = sorted(self.category_counts.items(), key=lambda kv: -kv[1])
            if all(c == UNSCORED for c in self.category_counts):
                categories = []
        else:
            statuses = [(s, None) for s in STATUSES]
            categories = [(c, None) for c in (*CATEGORY_ORDER, UNSCORED)]

        def count(n: int | None) -> str:
            return "" if n is None else f"  ({n})"

        options: list[Option | None] = [Option(f"all images{count(self.total)}", id="all:")]
        options.append(None)
        for s, n in statuses:
            options.append(Option(f"status   {s}{count(n)}", id=f"status:{s}"))
        if categories:
            options.append(None)
            for c, n in categories:
                key = "" if c == UNSCORED else c
                options.append(Option(f"category {c}{count(n)}", id=f"category:{key}"))
        with Vertical(id="dialog", classes="dialog"):
            yield Static("Show only" if counted else "Show only (counting: the list is "
                         "still loading)", classes="dialog-title")
            yield OptionList(*options, id="filter-options")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        kind, _, value = (event.option.id or "all:").partition(":")
        self.dismiss((kind, value if kind != "all" else None))
