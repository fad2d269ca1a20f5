"""The help screen, generated from the action registry with the keys in effect."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Static

from .. import actions


def key_text(app, keys: str) -> str:
    return " ".join(app.get_key_display(Binding(k.strip(), "")) for k in keys.split(","))


def help_markup(app, keymap: dict[str, str]) -> str:
    lines = []
    for group in actions.GROUPS:
        items = [a for a in actions.ACTIONS if a.group == group]
        if not items:
            continue
        lines.append(f"[b $accent]{group}[/]")
        for a in items:
            keys = key_text(app, keymap.get(a.id, a.keys))
            lines.append(f"  [b]{escape(keys):<14}[/b] {escape(a.help)}  "
                         f"[$foreground-muted]{a.id}[/]")
        lines.append("")
    lines.append("[$foreground-muted]ctrl+p: command palette (every action, themes) · mouse: "
                 "click a row, wheel scrolls · rebind any action in segtriage.toml: "
                 "[keymap] <id> = \"key\"[/]")
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss(None)", "Close", show=False)]

    def __init__(self, keymap: dict[str, str]) -> None:
        super().__init__()
        self.keymap = keymap

    def compose(self) -> ComposeResult:
        with Vertical(id="help", classes="dialog"):
            yield Static("segtriage keys", classes="dialog-title")
            with VerticalScroll():
                yield Static(help_markup(self.app, self.keymap), id="help-text")
