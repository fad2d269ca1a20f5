"""Pick a status or a category to show (or all rows)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ..data import UNSCORED


class FilterScreen(ModalScreen[tuple[str, str | None] | None]):
    """Returns ("all", None), ("status", s) or ("category", c); None when dismissed."""

    BINDINGS = [Binding("escape,q", "dismiss(None)", "Close", show=False)]

    def __init__(self, status_counts: dict[str, int], category_counts: dict[str, int],
                 total: int) -> None:
        super().__init__()
        self.status_counts = status_counts
        self.category_counts = category_counts
        self.total = total

    def compose(self) -> ComposeResult:
        options: list[Option | None] = [Option(f"all images  ({self.total})", id="all:")]
        options.append(None)
        for s, n in sorted(self.status_counts.items(), key=lambda kv: -kv[1]):
            options.append(Option(f"status   {s}  ({n})", id=f"status:{s}"))
        if any(c != UNSCORED for c in self.category_counts):
            options.append(None)
            for c, n in sorted(self.category_counts.items(), key=lambda kv: -kv[1]):
                key = "" if c == UNSCORED else c
                options.append(Option(f"category {c}  ({n})", id=f"category:{key}"))
        with Vertical(id="dialog", classes="dialog"):
            yield Static("Show only", classes="dialog-title")
            yield OptionList(*options, id="filter-options")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        kind, _, value = (event.option.id or "all:").partition(":")
        self.dismiss((kind, value if kind != "all" else None))
