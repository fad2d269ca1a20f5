"""Kitty and sixel frames for the viewer (``PictureFrames``, ``PictureView``), and
``make_view``: the viewer widget for a ``renderers.Renderer``.

With a picture renderer each frame is a picture of the terminal's own pixels: the viewport's
*dots* are the cell's size in pixels (``Renderer.cell_px``), so an image pixel at zoom z
covers z cell columns and z × cell width / cell height rows. The picture is shown by
textual-image's widget inside the viewer; keys and mouse stay the viewer's (mouse events bubble
up from the picture, and its top-left cell is the viewer's, so the cell under the mouse is the
same in both). The painter (app.py) and the review app's preview use the same classes.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.strip import Strip

from .view import PaintView


class PictureFrames:
    """Mixin for a ``PaintView`` (first in the bases): one picture per refresh, however many
    changes came, and only when the frame changed. ``PICTURE_ID``: the picture widget's id."""

    PICTURE_ID = "paint-picture"

    def __init__(self, picture_cls, cell_px: tuple[int, int], **kw) -> None:
        super().__init__(**kw)
        self._picture_cls = picture_cls
        self.dots = tuple(cell_px)
        self._picture_key = None
        self._pending = False

    def compose(self) -> ComposeResult:
        yield self._picture_cls(id=self.PICTURE_ID)

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
        from PIL import Image

        self._pending = False
        picture = self.query_one(f"#{self.PICTURE_ID}")
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


class PictureView(PictureFrames, PaintView):
    """The painter's viewer for kitty and sixel."""

    DEFAULT_CSS = "PictureView { width: 1fr; height: 1fr; }"


def make_view(renderer, *, plain=PaintView, picture=PictureView, **kw) -> PaintView:
    """The viewer for ``renderer`` (None: half-cell): ``picture`` (a ``PictureFrames``
    class) for kitty and sixel, else ``plain`` with half-cell or the renderer's own lines;
    ``kw`` go to the widget."""
    if renderer is not None and renderer.widget is not None:
        return picture(renderer.widget, renderer.cell_px, **kw)
    if renderer is None or renderer.name == "halfcell":
        return plain(**kw)
    return plain(strips=renderer.strips, **kw)
