"""A zoomable, pannable image viewer for masks: the painter's canvas and the app's preview.

Three layers, the first two without a terminal:

* ``Viewport`` (viewport.py): the geometry: which image pixels the cells show, zoom and pan.
* ``Scene`` (scene.py): the pixels (image, mask, P(object), split labels) and their rendering,
  which samples only the visible window; ``Layers`` and ``Marks`` say what is drawn.
* ``PaintView`` (here): the Textual widget (Line API) and its key bindings. It renders one
  frame per change and hands out its lines; mouse drags become ``PaintView.Stroke`` messages
  (for the painter) or pans. Read-only (``editable=False``), as the app's preview uses it,
  every drag pans and nothing posts an edit.

The benchmark entry point (no terminal, no App)::

    scene = Scene(image, mask, prob)           # image (H,W) or (H,W,3) uint8
    vp = Viewport(H, W, cols=160, rows=50)     # fit; vp.set_zoom(1.0, (y, x)) for 1:1
    lines = scene.render_lines(vp, Layers(), Marks(cursor=(y, x)))   # list[Strip]

``render_lines`` is exactly what the widget draws per frame; a brush stroke is
``scene.set_mask(new_mask)`` then ``render_lines`` again, a zoom step ``vp.zoom_in(anchor)``
then ``render_lines``.
"""

from __future__ import annotations

from dataclasses import replace

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from ..keymap import PAINT_PREFIX
from .mouse import ViewMouse
from .scene import Layers, Marks, Scene  # noqa: F401 (re-exported)
from .viewport import ZOOM_MAX, Viewport  # noqa: F401 (re-exported)


# -- the widget ----------------------------------------------------------------------------

def paint_binding(key: str, action: str, description: str, id: str) -> Binding:
    """A painter binding, hidden from the footer, with its keymap id ``paint.<id>``."""
    return Binding(key, action, description, show=False, id=f"{PAINT_PREFIX}{id}")


_b = paint_binding


VIEW_BINDINGS = [
    _b("left,h", "move(0,-1)", "cursor left", "left"),
    _b("right,l", "move(0,1)", "cursor right", "right"),
    _b("up,k", "move(-1,0)", "cursor up", "up"),
    _b("down,j", "move(1,0)", "cursor down", "down"),
    _b("shift+left,H", "page(0,-1)", "pan a screen left", "page_left"),
    _b("shift+right,L", "page(0,1)", "pan a screen right", "page_right"),
    _b("shift+up,K", "page(-1,0)", "pan a screen up", "page_up"),
    _b("shift+down,J", "page(1,0)", "pan a screen down", "page_down"),
    _b("plus,equals_sign", "zoom_in", "zoom in (around the cursor)", "zoom_in"),
    _b("minus", "zoom_out", "zoom out", "zoom_out"),
    _b("0", "zoom_fit", "fit the image to the window", "zoom_fit"),
    _b("1", "zoom_one", "1:1 (one pixel per cell column; half-cells: two per row)",
       "zoom_one"),
    _b("n", "next_disagreement(1)", "jump to the next place model and mask disagree",
       "next_disagreement"),
    _b("N", "next_disagreement(-1)", "jump to the previous disagreement", "prev_disagreement"),
    _b("m", "toggle('mask')", "show or hide the mask", "toggle_mask"),
    _b("O", "toggle('outline')", "mask and prediction as outline or tint", "toggle_outline"),
    _b("o", "toggle('prediction')", "show or hide the model's prediction", "toggle_prediction"),
    _b("v", "toggle('uncertainty')", "show or hide the model's uncertainty", "toggle_uncertainty"),
    _b("c", "toggle('splits')", "show or hide split outlines (touching objects)",
       "toggle_splits"),
]


class PaintView(ViewMouse, Widget, can_focus=True):
    """The viewer widget: half-cell lines of the visible window (or the ``strips``
    function's; a kitty / sixel picture: pictures.py), a pixel cursor, keys and mouse
    for zoom and pan. ``editable``: left drags paint (``Stroke`` messages), right drags erase,
    middle or ctrl drags pan; read-only: every drag pans."""

    DEFAULT_CSS = "PaintView { width: 1fr; height: 1fr; }"
    BINDINGS = VIEW_BINDINGS

    class CursorMoved(Message):
        pass

    class ViewChanged(Message):
        pass

    class Stroke(Message):
        """A mouse-drag segment: ``phase`` start, move or end; ``points`` image (y, x)."""

        def __init__(self, points: list[tuple[int, int]], erase: bool, phase: str) -> None:
            super().__init__()
            self.points = points
            self.erase = erase
            self.phase = phase

    def __init__(self, scene: Scene | None = None, *, editable: bool = False,
                 layers: Layers | None = None, strips=None, **kw) -> None:
        """``strips``: picture (PIL) → terminal lines, for lines other than half-cell blocks
        (textual-image's unicode renderer); pictures.py draws kitty and sixel frames."""
        super().__init__(**kw)
        self.scene = scene
        self._strips_fn = strips
        self.editable = editable
        self.overlays = layers or Layers()
        self.vp: Viewport | None = None
        self.cursor: tuple[int, int] = (0, 0)
        self.marks_extra: dict = {}         # brush, erase, box: set by the painter
        self.regions: list = []             # disagreement regions (the painter's ops)
        self.region_index = -1
        self.regions_for: int | None = None  # scene version the regions were found for
        self.find_regions = None             # callable(scene) -> regions
        self._frame_key = None
        self._lines: list[Strip] = []
        self._drag: dict | None = None
        self.split_settings: dict = {}       # min_distance, compactness: set by the painter
        self._splits = None                  # splits.SplitLabels, made on first use
        self._splits_seen = None
        self.splits_note = ""
        self.dots = (1, 2)                   # dots per cell (w, h): half-cell blocks

    # -- scene ------------------------------------------------------------------------------
    def set_scene(self, scene: Scene | None, keep_view: bool = False) -> None:
        old = self.vp
        self.scene = scene
        if scene is None:
            self.vp = None
        else:
            cols, rows = (self.size.width, self.size.height) if self.size.width else (80, 24)
            if keep_view and old is not None and (old.img_h, old.img_w) == (scene.h, scene.w):
                old.resize(cols, rows)
            else:
                self.vp = Viewport(scene.h, scene.w, max(1, cols), max(1, rows),
                                   dot_w=self.dots[0], dot_h=self.dots[1])
                self.cursor = (scene.h // 2, scene.w // 2)
        self.regions, self.region_index, self.regions_for = [], -1, None
        self._splits = self._splits_seen = None
        self.redraw()

    def scene_changed(self) -> None:
        """The scene's mask changed (an edit): redraw; the split outlines follow when drawn
        (only the objects the edit touched are split again)."""
        self.redraw()

    def _split_labels(self):
        """``SplitLabels`` with the painter's settings; None without split_labels."""
        if self._splits is None:
            try:
                from ...engine.project.measure import split_labels
            except ImportError:
                return None
            from .splits import SplitLabels

            self._splits = SplitLabels(split_labels, **self.split_settings)
        return self._splits

    def _update_labels(self) -> None:
        """Split labels for the window in view (called before a frame is drawn)."""
        sc, vp = self.scene, self.vp
        if sc is None or vp is None or not self.overlays.splits or sc.mask is None:
            return
        splits = self._split_labels()
        if splits is None:
            return
        got = splits.get(sc.mask, vp.window())
        if got is None:
            self.splits_note = "splits: zoom in"
            if sc.labels is not None:
                sc.set_labels(None)
            return
        self.splits_note = ""
        seen = (splits.generation, id(sc.mask))
        if sc.labels is None or seen != self._splits_seen:
            sc.set_labels(*got)
            self._splits_seen = seen

    def redraw(self) -> None:
        self._frame_key = None
        self._changed()

    def _changed(self) -> None:
        """Something the frame shows changed: draw it again (a subclass that puts its frame
        on the screen another way hooks in here)."""
        self.refresh()

    # -- geometry ---------------------------------------------------------------------------
    def on_resize(self, event: events.Resize) -> None:
        if self.vp is not None:
            self.vp.resize(self.size.width, self.size.height)
            self.post_message(self.ViewChanged())  # the zoom a status line shows may change
        self.redraw()

    def marks(self) -> Marks:
        return Marks(cursor=self.cursor, **self.marks_extra)

    def frame_key(self) -> tuple:
        """What the frame depends on (the viewport follows the widget's size first)."""
        vp = self.vp
        if (vp.cols, vp.rows) != (self.size.width, self.size.height):
            vp.resize(self.size.width, self.size.height)
        if self.overlays.splits:
            self._update_labels()
        return (self.scene.version, self.scene.labels_version, vp.zoom, vp.cy, vp.cx, vp.cols,
                vp.rows, self.overlays, self.marks())

    def make_lines(self, vp: Viewport, layers: Layers, marks: Marks) -> list[Strip]:
        """One frame as terminal lines: half-cell blocks, or the ``strips`` function's."""
        if self._strips_fn is None:
            return self.scene.render_lines(vp, layers, marks)
        from PIL import Image

        return self._strips_fn(Image.fromarray(self.scene.render(vp, layers, marks)))

    def render_line(self, y: int) -> Strip:
        if self.scene is None or self.vp is None:
            return Strip.blank(self.size.width, self.rich_style)
        key = self.frame_key()
        if key != self._frame_key:
            self._lines = self.make_lines(self.vp, self.overlays, self.marks())
            self._frame_key = key
        if y < len(self._lines):
            return self._lines[y]
        return Strip.blank(self.size.width, self.rich_style)

    # -- cursor and view --------------------------------------------------------------------
    def set_cursor(self, y: int, x: int, follow: bool = True) -> None:
        if self.scene is None:
            return
        y = min(max(0, y), self.scene.h - 1)
        x = min(max(0, x), self.scene.w - 1)
        self.cursor = (y, x)
        if follow and self.vp is not None:
            self.vp.ensure_visible(y, x)
        self.post_message(self.CursorMoved())
        self._changed()

    def action_move(self, dy: int, dx: int) -> None:
        self.set_cursor(self.cursor[0] + dy, self.cursor[1] + dx)

    def action_page(self, dy: int, dx: int) -> None:
        if self.vp is None:
            return
        vh, vw = self.vp.view_size_px()
        py, px = round(dy * max(1, vh * 0.9)), round(dx * max(1, vw * 0.9))
        self.vp.pan(py, px)
        self.set_cursor(self.cursor[0] + py, self.cursor[1] + px)
        self._view_changed()

    def _view_changed(self) -> None:
        self.post_message(self.ViewChanged())
        self._changed()

    def action_zoom_in(self) -> None:
        if self.vp is not None:
            self.vp.zoom_in(self._anchor())
            self.vp.ensure_visible(*self.cursor)
            self._view_changed()

    def action_zoom_out(self) -> None:
        if self.vp is not None:
            self.vp.zoom_out(self._anchor())
            self._view_changed()

    def action_zoom_fit(self) -> None:
        if self.vp is not None:
            self.vp.set_zoom(self.vp.fit_zoom())
            self._view_changed()

    def action_zoom_one(self) -> None:
        if self.vp is not None:
            self.vp.set_zoom(1.0)
            self.vp.center_on(self.cursor[0] + 0.5, self.cursor[1] + 0.5)
            self._view_changed()

    def _anchor(self) -> tuple[float, float]:
        return self.cursor[0] + 0.5, self.cursor[1] + 0.5

    def action_toggle(self, name: str) -> None:
        if name == "splits" and not self.overlays.splits and self._split_labels() is None:
            self.notify("split outlines need engine/project/measure (split_labels)",
                        severity="warning")
            return
        self.overlays = replace(self.overlays, **{name: not getattr(self.overlays, name)})
        self._view_changed()

    def action_next_disagreement(self, step: int = 1) -> None:
        sc = self.scene
        if sc is None or self.vp is None:
            return
        if self.regions_for != sc.version:
            self.regions = self.find_regions(sc) if self.find_regions is not None else []
            self.regions_for = sc.version
            self.region_index = -1 if step > 0 else 0
        if not self.regions:
            self.notify("no disagreement between the model and the mask"
                        if sc.pred is not None else "no prediction to compare with")
            return
        self.region_index = (self.region_index + step) % len(self.regions)
        r = self.regions[self.region_index]
        self.vp.set_zoom(self.vp.zoom_for_box(r.y1 - r.y0, r.x1 - r.x0))
        self.vp.center_on((r.y0 + r.y1) / 2, (r.x0 + r.x1) / 2)
        self.set_cursor(int(r.cy), int(r.cx), follow=False)
        self._view_changed()

    def region_text(self) -> str:
        if self.region_index < 0 or not self.regions or self.regions_for != getattr(
                self.scene, "version", None):
            return ""
        r = self.regions[self.region_index]
        return f"{self.region_index + 1}/{len(self.regions)} {r.kind} ({r.pixels} px)"

    def pixel_facts(self) -> list[str]:
        """The pixel under the cursor: its coordinates, the mask and P(object) there, the
        image's value (last: three numbers in colour), and why no split outlines are drawn
        when they are not (the painter's status line and the preview's line)."""
        sc = self.scene
        if sc is None or self.vp is None:
            return []
        y, x = self.cursor
        parts = [f"x {x} y {y}"]
        if sc.mask is not None:
            parts.append(f"mask {int(sc.mask[y, x])}")
        if sc.prob is not None:
            parts.append(f"P {sc.prob[y, x] / 255:.2f}")
        parts.append(f"value {sc.value_text(y, x)}")
        if self.overlays.splits:
            self._update_labels()
            if self.splits_note:
                parts.append(self.splits_note)
        return parts

    def status_text(self) -> str:
        """The pixel's facts and the zoom: the painter's status line."""
        facts = self.pixel_facts()
        return "  ".join(facts + [f"zoom {self.vp.zoom_label()}"]) if facts else ""
