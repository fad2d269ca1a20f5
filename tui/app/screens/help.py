"""The help screen, generated from the action registry with the keys in effect."""

from __future__ import annotations

from rich.color import Color as RichColor
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.color import Color
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from .. import actions


def key_text(app, keys: str) -> str:
    return " ".join(app.get_key_display(Binding(k.strip(), "")) for k in keys.split(","))


def help_rows(app, keymap: dict[str, str]) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """[(group, [(keys, what it does, action id), ...]), ...] in registry order."""
    out = []
    for group in actions.GROUPS:
        items = [(key_text(app, keymap.get(a.id, a.keys)), a.help, a.id)
                 for a in actions.ACTIONS if a.group == group]
        if items:
            out.append((group, items))
    return out


def _theme_color(app, name: str) -> RichColor:
    """A theme variable as an opaque Rich colour (muted variables carry alpha)."""
    var = app.theme_variables
    color = Color.parse(var.get(name, var["foreground"]))
    if color.a < 1:
        color = Color.parse(var["surface"]) + color
    return color.rich_color


def help_table(app, keymap: dict[str, str]) -> Table:
    accent = Style(color=_theme_color(app, "accent"), bold=True)
    muted = Style(color=_theme_color(app, "foreground-muted"))
    table = Table(box=None, show_header=False, expand=True, padding=(0, 1), pad_edge=False)
    table.add_column(width=14, no_wrap=True, style=Style(bold=True))
    table.add_column(ratio=1)
    table.add_column(no_wrap=True, style=muted)
    for i, (group, items) in enumerate(help_rows(app, keymap)):
        if i:
            table.add_row("", "", "")
        table.add_row(Text(group, accent), "", "")
        for keys, what, action_id in items:
            table.add_row(keys, what, action_id)
    return table


FOOT = ("ctrl+p: command palette (every action and the themes) · mouse: click a row, the wheel "
        "scrolls; in the preview a drag pans, the wheel pans (shift: sideways, ctrl: zoom) · "
        "rebind any action in segtriage.toml under \\[keymap]: <id> = \"key\"")


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss(None)", "Close", show=False)]

    def __init__(self, keymap: dict[str, str]) -> None:
        super().__init__()
        self.keymap = keymap

    def compose(self) -> ComposeResult:
        with Vertical(id="help", classes="dialog"):
            yield Static("segtriage keys", classes="dialog-title")
            with VerticalScroll():
                yield Static(help_table(self.app, self.keymap), id="help-text")
                yield Static(FOOT, classes="dialog-detail")

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()  # arrows, page keys and the wheel scroll
