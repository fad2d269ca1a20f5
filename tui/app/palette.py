"""The command palette's provider: every registry action, with the key it has now."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from . import actions
from .screens.help import key_text


class ActionCommands(Provider):
    """Every registry action in the command palette, with its current key."""

    def _entries(self):
        app = self.app
        keymap = app.keymap
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
