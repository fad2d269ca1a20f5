"""``PaintApp``: the terminal mask editor (``segtriage paint``).

The canvas is ``PaintView`` (view.py; half-cell blocks, or with a ``renderers.Renderer``
textual-image's unicode lines or a kitty / sixel picture per frame: pictures.py); every edit is one function of ops/ applied to the
current mask (the keys call exactly what ``segtriage fix`` and the benchmark call), recorded
in an ``ops.History`` (undo and redo without limit). Saving goes through ``Document.save``
(document.py: the project's mask history, or a plain atomic write with the old file kept).

Every binding (keys.py; the viewer's in view.py) has an id (``paint.<name>``). A project's
``[keymap]`` rebinds them with those
ids (``"paint.save" = "ctrl+w"``: quoted, as TOML needs for a dot), checked by the rules the
app's keymap follows (tui/keymap.py); ``PaintApp(keymap=...)`` gives the entries directly.
The keys are listed by ``?``, in the hint line as bound, and in README.md.
"""

from __future__ import annotations

import threading

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Static

from . import ops
from .disagree import Disagreements
from .document import Document, DocumentError
from .keys import PAINT_BINDINGS, PainterKeys, check_paint_keymap
from .pictures import make_view
from .splits import split_settings
from .view import VIEW_BINDINGS, Layers, PaintView, Scene


def shown_name(name: str, limit: int = 28) -> str:
    """A file name for the status line: on one line (characters that are not printable
    become '?'), and at most ``limit`` characters (a long one keeps its start and its end:
    the end tells masks of one folder apart)."""
    name = "".join(c if c.isprintable() else "?" for c in name)
    if len(name) <= limit:
        return name
    head = (limit - 1) // 2
    return name[:head] + "…" + name[len(name) - (limit - 1 - head):]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss(None)", "Close", show=False)]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    #paint-help { width: 90%; height: 90%; border: round $accent; background: $surface;
                  padding: 0 1; overflow-y: auto; }
    """

    def __init__(self, keymap: dict[str, str]) -> None:
        super().__init__()
        self.keymap = keymap

    def compose(self) -> ComposeResult:
        lines = ["[b]segtriage paint: keys[/b]  (escape closes)", "", "[b]Seeing[/b]"]
        for group in (VIEW_BINDINGS, PAINT_BINDINGS):
            if group is PAINT_BINDINGS:
                lines += ["", "[b]Fixing[/b]"]
            for b in group:
                keys = ", ".join(self.app.get_key_display(Binding(k.strip(), ""))
                                 for k in self.keymap.get(b.id, b.key).split(","))
                lines.append(f"  [b]{escape(keys):<22}[/b] {escape(b.description)}  "
                             f"[dim]{b.id}[/dim]")
        lines += ["", "Mouse: left drag paints (erase mode: erases), right drag erases, "
                  "middle or ctrl drag pans, the wheel pans (shift: sideways).", "",
                  escape("Rebind a key in the project's segtriage.toml by its id: [keymap] "
                         '"paint.save" = "ctrl+w"')]
        with Vertical(id="paint-help"):
            yield Static("\n".join(lines))


class QuitScreen(ModalScreen[str]):
    BINDINGS = [Binding("w,y", "dismiss('save')", show=False),
                Binding("q,n", "dismiss('quit')", show=False),
                Binding("escape", "dismiss('stay')", show=False)]
    DEFAULT_CSS = """
    QuitScreen { align: center middle; }
    #paint-quit { width: 60; height: auto; border: round $warning; background: $surface;
                  padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        yield Static("[b]Unsaved changes.[/b]\n\n[b]w[/b] save and quit   "
                     "[b]q[/b] quit without saving   [b]escape[/b] keep editing", id="paint-quit")


class PaintApp(PainterKeys, App[int]):
    """The mask editor on one ``Document``."""

    CSS = """
    Screen { layout: vertical; }
    #paint-status { height: 1; background: $panel; }
    #paint-hint { height: 1; color: $text-muted; }
    """
    BINDINGS = PAINT_BINDINGS
    ENABLE_COMMAND_PALETTE = False

    def __init__(self, doc: Document, *, keymap: dict[str, str] | None = None,
                 renderer=None) -> None:
        """``renderer``: a ``renderers.Renderer`` chosen before the app runs (None:
        half-cell blocks). ``keymap``: binding id → keys (None: the ``paint.*`` entries of
        the document's project config, checked; a problem is shown at start)."""
        super().__init__()
        self.doc = doc
        self.renderer = renderer
        self.history = ops.History(doc.mask)
        self.scene = Scene(doc.image, self.history.current, doc.prob)
        self.brush_radius = 1
        self.erase = False
        self.pen = False
        self.box_corner: tuple[int, int] | None = None
        self._stroke_mask = None
        self._chain: dict | None = None  # the grow/shrink presses in a row
        self._disagreements: Disagreements | None = None
        self._disagreements_lock = threading.Lock()
        self._last_cursor: tuple[int, int] | None = None
        self._message = doc.note
        self.keymap_problems: list[str] = []
        if keymap is None and doc.cfg is not None:
            keymap, self.keymap_problems = check_paint_keymap(doc.cfg.keymap)
        self.user_keymap = dict(keymap or {})
        self.title = f"paint {doc.mask_path.name}"

    # -- layout ----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        layers = Layers(prediction=self.doc.prob is not None)
        yield make_view(self.renderer, scene=self.scene, editable=True, layers=layers,
                        id="paint-view")
        yield Static("", id="paint-status", markup=False)
        yield Static(self.hint(short=True), id="paint-hint", markup=False)

    @property
    def view(self) -> PaintView:
        return self.query_one(PaintView)

    def on_resize(self) -> None:
        long = self.hint()
        hint = long if self.size.width >= len(long) else self.hint(short=True)
        self.query_one("#paint-hint", Static).update(hint)

    def on_mount(self) -> None:
        if self.user_keymap:
            self.set_keymap(self.user_keymap)
        for problem in self.keymap_problems:
            self.notify(problem, severity="warning", timeout=10)
        v = self.view
        v.find_regions = self._regions
        v.split_settings = split_settings(self.doc.cfg)
        v.set_scene(self.scene)
        v.focus()
        self._last_cursor = v.cursor
        self._sync()
        if self.scene.pred is not None:
            self.run_worker(self._prepare_regions, thread=True, group="regions")

    def _regions(self, scene: Scene):
        """The disagreements now (``n``): labelled once (in the background from the start),
        then redone only where edits were."""
        if scene.pred is None:
            return []
        with self._disagreements_lock:
            if self._disagreements is None:
                self._disagreements = Disagreements(scene.pred, scene.prob)
            return self._disagreements.regions(self.history.current)

    def _prepare_regions(self) -> None:
        """Label the prediction and the mask before the first ``n`` (a thread: a 4096² image
        takes about a second)."""
        self._regions(self.scene)

    # -- status ----------------------------------------------------------------------------
    def _sync(self) -> None:
        v = self.view
        v.marks_extra = {"brush": self.brush_radius, "erase": self.erase,
                         "box": (self.box_corner + v.cursor) if self.box_corner else None}
        mode = "ERASE" if self.erase else "paint"
        parts = [v.status_text(), f"{mode} r{self.brush_radius}"]
        if self.pen:
            parts.append("PEN")
        if self.box_corner:
            parts.append("box: r at the other corner")
        region = v.region_text()
        if region:
            parts.append(region)
        if self.history.dirty:
            parts.append("modified")
        text = "  ".join(parts)
        if self._message:
            text = f"{self._message} | {text}"
        # the mask's name first, so it shows at any width (the terminal's title has it too)
        text = f"{shown_name(self.doc.mask_path.name)}  {text}"
        self.query_one("#paint-status", Static).update(text)
        v._changed()   # the marks may have changed (a picture viewer draws a new picture)

    def say(self, message: str) -> None:
        self._message = message
        self._sync()

    def on_paint_view_cursor_moved(self, message: PaintView.CursorMoved) -> None:
        v = self.view
        if self.pen and self._last_cursor is not None and v.cursor != self._last_cursor:
            self._apply("pen", lambda m: ops.stroke(m, [self._last_cursor, v.cursor],
                                                    self.brush_radius, not self.erase),
                        quiet=True)
        self._last_cursor = v.cursor
        self._message = ""
        self._sync()

    def on_paint_view_view_changed(self, message: PaintView.ViewChanged) -> None:
        self._sync()

    # -- applying an operation -------------------------------------------------------------
    def _apply(self, label: str, fn, quiet: bool = False) -> bool:
        try:
            new = fn(self.history.current)
        except ValueError as e:  # ops.OutsideImage and bad arguments
            self.say(str(e))
            return False
        changed = self.history.push(new, label, own=True)  # operations return new arrays
        if changed:
            self.scene.set_mask(self.history.current)
            self.view.scene_changed()
        if not quiet:
            self._message = label if changed else f"{label}: nothing changed"
        self._sync()
        return changed

    def _at(self) -> tuple[int, int]:
        return self.view.cursor

    def _need_pred(self, what: str) -> bool:
        if self.scene.pred is None:
            self.say(f"{what}: no prediction (open it from a project, or give --prob)")
            return False
        return True

    # -- actions ---------------------------------------------------------------------------
    def action_brush(self, paint: bool | None = None) -> None:
        value = (not self.erase) if paint is None else paint
        y, x = self._at()
        self._apply("paint" if value else "erase",
                    lambda m: ops.brush(m, y, x, self.brush_radius, value))

    def action_toggle_erase(self) -> None:
        self.erase = not self.erase
        self.say("erase mode" if self.erase else "paint mode")

    def action_pen(self) -> None:
        self.pen = not self.pen
        if self.pen:
            y, x = self._at()
            self._apply("pen", lambda m: ops.brush(m, y, x, self.brush_radius, not self.erase),
                        quiet=True)
        self.say("pen down: moving paints" + (" (erase)" if self.erase else "")
                 if self.pen else "pen up")

    def action_brush_size(self, step: int) -> None:
        self.brush_radius = min(64, max(0, self.brush_radius + step))
        self.say(f"brush radius {self.brush_radius}")

    def action_flood_fill(self) -> None:
        y, x = self._at()
        self._apply("flood fill", lambda m: ops.flood_fill(m, y, x, not self.erase))

    def action_fill_holes(self, here: bool) -> None:
        y, x = self._at()
        if here:
            self._apply("fill holes", lambda m: ops.fill_holes(m, y, x))
        else:
            self._apply("fill holes (all)", lambda m: ops.fill_holes(m))

    def action_delete_object(self) -> None:
        y, x = self._at()
        self._apply("delete object", lambda m: ops.delete_object(m, y, x))

    def action_add_predicted(self) -> None:
        if self._need_pred("add predicted object"):
            y, x = self._at()
            self._apply("add predicted object",
                        lambda m: ops.add_predicted_object(m, self.scene.pred, y, x))

    def action_box(self) -> None:
        y, x = self._at()
        if self.box_corner is None:
            if self._need_pred("take the prediction in a box"):
                self.box_corner = (y, x)
                self.say("box: move to the other corner and press r (escape cancels)")
            return
        y0, x0 = self.box_corner
        self.box_corner = None
        ya, yb = sorted((y0, y))
        xa, xb = sorted((x0, x))
        self._apply("prediction in box", lambda m: ops.take_prediction_in_box(
            m, self.scene.pred, ya, xa, yb + 1, xb + 1))

    def _grow_shrink(self, here: bool, step: int) -> None:
        """Grow (+1) or shrink (-1) by one pixel. Presses in a row on the same target (the
        cursor not moved, no other edit between) are one ``ops.grow_shrink`` from the mask
        before the first of them, so g g s s gives the object back also next to the frame."""
        at = self._at() if here else None
        what = ("grow" if step > 0 else "shrink") + ("" if here else " all")
        chain = self._chain
        if chain is not None and chain["result"] is self.history.current and chain["at"] == at:
            base, steps = chain["base"], chain["steps"] + [step]
        else:
            base, steps = self.history.current, [step]
        y, x = at if at is not None else (None, None)
        if self._apply(what, lambda _m: ops.grow_shrink(base, steps, y, x)):
            self._chain = {"base": base, "steps": steps, "at": at,
                           "result": self.history.current}

    def action_grow(self, here: bool) -> None:
        self._grow_shrink(here, 1)

    def action_shrink(self, here: bool) -> None:
        self._grow_shrink(here, -1)

    def _restore(self, mask, what: str) -> None:
        self.scene.set_mask(mask)
        self.view.scene_changed()
        self.say(what)

    def action_undo(self) -> None:
        label = self.history.undo_label
        m = self.history.undo()
        self._restore(m, f"undid {label}") if m is not None else self.say("nothing to undo")

    def action_redo(self) -> None:
        label = self.history.redo_label
        m = self.history.redo()
        self._restore(m, f"redid {label}") if m is not None else self.say("nothing to redo")

    def action_cancel(self) -> None:
        self.box_corner = None
        self.pen = False
        self.say("")

    def save(self) -> bool:
        try:
            msg = self.doc.save(self.history.current)
        except DocumentError as e:
            self.say(str(e))
            self.notify(str(e), severity="error", timeout=10)
            return False
        self.history.mark_saved()
        self.say(msg)
        return True

    def action_save(self) -> None:
        self.save()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.current_keys()))

    async def action_quit(self) -> None:
        if not self.history.dirty:
            self.exit(0)
            return

        def answer(choice: str | None) -> None:
            if choice == "save":
                if self.save():
                    self.exit(0)
            elif choice == "quit":
                self.exit(0)

        self.push_screen(QuitScreen(), answer)

    # -- mouse strokes ---------------------------------------------------------------------
    def on_paint_view_stroke(self, message: PaintView.Stroke) -> None:
        value = not (self.erase or message.erase)
        if message.phase == "start":
            self._stroke_mask = ops.stroke(self.history.current, message.points,
                                           self.brush_radius, value)
        elif message.phase == "move" and self._stroke_mask is not None:
            self._stroke_mask = ops.stroke(self._stroke_mask, message.points,
                                           self.brush_radius, value)
        elif message.phase == "end" and self._stroke_mask is not None:
            m, self._stroke_mask = self._stroke_mask, None
            self._apply("stroke" if value else "erase stroke", lambda _m: m)
            return
        if self._stroke_mask is not None:
            self.scene.set_mask(self._stroke_mask)
            self.view.scene_changed()
        self._last_cursor = self.view.cursor
