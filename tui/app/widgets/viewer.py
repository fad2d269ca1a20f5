"""The preview's viewer: the painter's ``PaintView``, read-only, with the app's keys.

Zoom, pan (keys, mouse drags, the wheel), the minimap and the overlays are the painter's;
nothing here edits a mask (``editable=False``: every drag pans, no ``Stroke`` is posted, and
no key is bound to an operation). The keys are the registry's "preview" scope (actions.py),
so ``[keymap]`` rebinds them and the help lists them. The disagreements with the model for
``n`` / ``]`` are found in a thread worker the first time they are asked for on an image.

Imported by the preview when it shows its first image (numpy loads with it, off the UI thread
at start-up). ``make_viewer(renderer)`` picks how a frame reaches the terminal: half-cell
lines (the default), textual-image's unicode lines, or a kitty / sixel picture.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from textual import events, work
from textual.app import ComposeResult
from textual.strip import Strip

from ...paint.disagree import disagreements
from ...paint.view import Layers, Marks, PaintView, Viewport
from .. import actions


class PreviewViewer(PaintView, inherit_bindings=False):
    """``PaintView`` read-only. Its pixel cursor shows only while it has the keys."""

    DEFAULT_CSS = "PreviewViewer { width: 1fr; height: 1fr; }"
    BINDINGS = actions.bindings("preview")

    def __init__(self, *, strips=None, **kw) -> None:
        """``strips``: picture (PIL) → terminal lines, for a renderer other than half-cell."""
        super().__init__(editable=False, **kw)
        self._strips_fn = strips

    def marks(self) -> Marks:
        return Marks(cursor=self.cursor) if self.has_focus else Marks()

    def make_lines(self, vp: Viewport, layers: Layers, marks: Marks) -> list[Strip]:
        if self._strips_fn is None:
            return super().make_lines(vp, layers, marks)
        return self._strips_fn(Image.fromarray(self.scene.render(vp, layers, marks)))

    def on_resize(self, event: events.Resize) -> None:
        self.post_message(self.ViewChanged())   # the fitted zoom changed with the size

    def on_focus(self, event: events.Focus) -> None:
        self._view_changed()   # the cursor shows, the preview's line says where it is

    def on_blur(self, event: events.Blur) -> None:
        self._view_changed()

    # -- disagreements ---------------------------------------------------------------------
    def action_next_disagreement(self, step: int = 1) -> None:
        sc = self.scene
        if sc is None or self.vp is None:
            return
        if sc.pred is None or self.regions_for == sc.version:
            super().action_next_disagreement(step)   # says why there is none, or jumps
            return
        self._find_regions(sc, step)

    @work(thread=True, exclusive=True, group="disagreements")
    def _find_regions(self, sc, step: int) -> None:
        mask = sc.mask if sc.mask is not None else np.zeros((sc.h, sc.w), bool)
        try:
            regions = disagreements(mask, sc.pred, sc.prob)
        except (ValueError, MemoryError) as e:
            self.app.call_from_thread(self.notify, f"cannot compare the mask with the model: "
                                      f"{e}", severity="error")
            return
        self.app.call_from_thread(self._regions_found, sc, regions, step)

    def _regions_found(self, sc, regions: list, step: int) -> None:
        if sc is not self.scene:   # another image came meanwhile
            return
        self.regions, self.regions_for = regions, sc.version
        self.region_index = -1 if step > 0 else 0
        super().action_next_disagreement(step)


class PictureViewer(PreviewViewer):
    """The viewer for kitty and sixel: each frame is a picture of the terminal's own pixels
    (``dots``: the cell's size in pixels), shown by textual-image's widget inside it; keys and
    mouse stay the viewer's (mouse events bubble up from the picture)."""

    DEFAULT_CSS = "PictureViewer { width: 1fr; height: 1fr; }"

    def __init__(self, picture_cls, cell_px: tuple[int, int], **kw) -> None:
        super().__init__(**kw)
        self._picture_cls = picture_cls
        self.dots = cell_px
        self._picture_key = None
        self._pending = False

    def compose(self) -> ComposeResult:
        yield self._picture_cls(id="preview-picture")

    def render_line(self, y: int) -> Strip:
        return Strip.blank(self.size.width, self.rich_style)   # the picture covers it

    def redraw(self) -> None:
        self._picture_key = None
        super().redraw()

    def _changed(self) -> None:
        super()._changed()
        if not self._pending:   # one picture per refresh, however many changes came
            self._pending = True
            self.call_after_refresh(self._show_picture)

    def _show_picture(self) -> None:
        self._pending = False
        picture = self.query_one("#preview-picture")
        if self.scene is None or self.vp is None or not self.size.width:
            picture.image = None
            self._picture_key = None
            return
        key = self.frame_key()
        if key == self._picture_key:
            return
        self._picture_key = key
        frame = self.scene.render(self.vp, self.overlays, self.marks())
        picture.styles.width, picture.styles.height = self.vp.cols, self.vp.rows
        picture.image = Image.fromarray(frame)


def make_viewer(renderer, **kw) -> PreviewViewer:
    """The viewer for a ``preview.Renderer``."""
    if renderer.widget is not None:
        return PictureViewer(renderer.widget, renderer.cell_px, **kw)
    if renderer.name == "halfcell":
        return PreviewViewer(**kw)
    return PreviewViewer(strips=renderer.strips, **kw)
