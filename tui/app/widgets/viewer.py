"""The preview's viewer: the painter's ``PaintView``, read-only, with the app's keys.

Zoom, pan (keys, mouse drags, the wheel), the minimap and the overlays are the painter's;
nothing here edits a mask (``editable=False``: every drag pans, no ``Stroke`` is posted, and
no key is bound to an operation). The keys are the registry's "preview" scope (actions.py),
so ``[keymap]`` rebinds them and the help lists them. The disagreements with the model for
``n`` / ``]`` are found in a thread worker the first time they are asked for on an image.

Imported by the preview when it shows its first image (numpy loads with it, off the UI thread
at start-up). ``make_viewer(renderer)`` picks how a frame reaches the terminal: half-cell
lines (the default), textual-image's unicode lines, or a kitty / sixel picture (the painter's
``paint/pictures.py``; the renderer is chosen by ``paint/renderers.py``).
"""

from __future__ import annotations

import numpy as np
from textual import events, work

from ...paint.disagree import disagreements
from ...paint.pictures import PictureFrames, make_view
from ...paint.view import Marks, PaintView
from .. import actions


class PreviewViewer(PaintView, inherit_bindings=False):
    """``PaintView`` read-only. Its pixel cursor shows only while it has the keys."""

    DEFAULT_CSS = "PreviewViewer { width: 1fr; height: 1fr; }"
    BINDINGS = actions.bindings("preview")

    def __init__(self, **kw) -> None:
        """``strips`` (in ``kw``): picture (PIL) → terminal lines, for a renderer other than
        half-cell."""
        super().__init__(editable=False, **kw)

    def marks(self) -> Marks:
        return Marks(cursor=self.cursor) if self.has_focus else Marks()

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


class PictureViewer(PictureFrames, PreviewViewer):
    """The viewer for kitty and sixel (the painter's ``PictureFrames``): each frame is a
    picture of the terminal's own pixels, shown by textual-image's widget inside it."""

    DEFAULT_CSS = "PictureViewer { width: 1fr; height: 1fr; }"
    PICTURE_ID = "preview-picture"


def make_viewer(renderer, **kw) -> PreviewViewer:
    """The viewer for a ``renderers.Renderer``."""
    return make_view(renderer, plain=PreviewViewer, picture=PictureViewer, **kw)
