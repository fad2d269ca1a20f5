"""The painter's keys: its bindings (ids ``paint.<name>``; the viewer's are in view.py), the
hint line, and the ``paint.*`` entries of a project's ``[keymap]``, checked by the rules the
app's keymap follows (tui/keymap.py)."""

from __future__ import annotations

from typing import Callable

from textual.binding import Binding

from ..keymap import PAINT_PREFIX, resolve
from .view import VIEW_BINDINGS
from .view import paint_binding as _b


PAINT_BINDINGS = [
    _b("space", "brush", "paint (or erase, in erase mode) the brush at the cursor", "brush"),
    _b("x", "brush(False)", "erase the brush at the cursor", "erase"),
    _b("e", "toggle_erase", "switch the brush and mouse drags between paint and erase",
       "toggle_erase"),
    _b("b", "pen", "pen down/up: moving the cursor paints (or erases) a stroke", "pen"),
    _b("left_square_bracket", "brush_size(-1)", "smaller brush", "brush_smaller"),
    _b("right_square_bracket", "brush_size(1)", "bigger brush", "brush_bigger"),
    _b("f", "flood_fill", "flood fill the area under the cursor (erase mode: clear it)",
       "flood_fill"),
    _b("i", "fill_holes(True)", "fill the holes of the object under the cursor", "fill_holes"),
    _b("I", "fill_holes(False)", "fill the holes of every object", "fill_holes_all"),
    _b("d", "delete_object", "delete the object under the cursor", "delete_object"),
    _b("a", "add_predicted", "add the predicted object under the cursor", "add_predicted"),
    _b("r", "box", "box corner: press at one corner, then at the other to take the "
       "prediction inside the box", "box"),
    _b("g", "grow(True)", "grow the object under the cursor by one pixel", "grow"),
    _b("G", "grow(False)", "grow every object by one pixel", "grow_all"),
    _b("s", "shrink(True)", "shrink the object under the cursor by one pixel", "shrink"),
    _b("S", "shrink(False)", "shrink every object by one pixel", "shrink_all"),
    _b("u", "undo", "undo (without limit)", "undo"),
    _b("U,ctrl+r", "redo", "redo", "redo"),
    _b("escape", "cancel", "cancel the box, lift the pen", "cancel"),
    _b("ctrl+s,w", "save", "save (inside a project: a new version in the mask history)",
       "save"),
    _b("q", "quit", "quit (asks when there are unsaved changes)", "quit"),
    _b("question_mark", "help", "this help", "help"),
]

# every painter binding id → its default keys
DEFAULT_KEYS = {b.id: b.key for b in VIEW_BINDINGS + PAINT_BINDINGS}

# the hint line: (binding ids, what it says, what it says at 80 columns)
HINT_ITEMS = (("help", "help", "help"), ("brush", "paint", "paint"), ("erase", "erase", "erase"),
              ("brush_smaller brush_bigger", "size", "size"), ("delete_object", "delete", "del"),
              ("add_predicted", "add pred", "add"), ("next_disagreement", "next", "next"),
              ("undo", "undo", "undo"), ("save", "save", "save"), ("quit", "quit", ""))


def hint_line(key: Callable[[str], str], short: bool = False) -> str:
    """The keys most fixes need, named as bound (``key``: a binding id's key as shown)."""
    return "  ".join(" ".join([*(key(i) for i in ids.split()), (brief if short else long)]
                              ).rstrip() for ids, long, brief in HINT_ITEMS)


def check_paint_keymap(keymap: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The ``paint.*`` entries of a project's ``[keymap]`` (the app's own entries are the
    app's) against the painter's bindings, by the app's rules (tui/keymap.py): the overrides
    for ``App.set_keymap`` and one message per problem (an unknown id among them)."""
    asked = {k: v for k, v in keymap.items() if k.startswith(PAINT_PREFIX)}
    problems = [f"keymap.{k}: no such painter key (known: {', '.join(DEFAULT_KEYS)})"
                for k in asked if k not in DEFAULT_KEYS]
    overrides, found = resolve({k: v for k, v in asked.items() if k in DEFAULT_KEYS},
                               DEFAULT_KEYS)
    return overrides, problems + found


class PainterKeys:
    """The keys as bound now, for the painter app (``user_keymap``: its overrides)."""

    user_keymap: dict[str, str]

    def key_of(self, binding_id: str) -> str:
        """A binding's key as bound now, shown as the help shows keys (a plain key first:
        the hint line says ``w save`` rather than ``^s save``)."""
        keys = self.current_keys()[f"{PAINT_PREFIX}{binding_id}"].split(",")
        plain = [k for k in keys if "+" not in k]
        return self.get_key_display(Binding((plain or keys)[0].strip(), ""))

    def current_keys(self) -> dict[str, str]:
        """Every binding id → its keys, the keymap applied."""
        return DEFAULT_KEYS | self.user_keymap

    def hint(self, short: bool = False) -> str:
        return hint_line(self.key_of, short)
