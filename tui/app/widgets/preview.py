"""The preview pane: the selected image with its mask, the prediction and the uncertainty map,
in the painter's viewer, read-only (widgets/viewer.py): zoom, pan, the minimap, the next
disagreement between the mask and the model, split outlines.

Reading the files and building the viewer's ``Scene`` run in a thread worker (scenes are kept
for the last images shown, by file and mtime); drawing samples only the visible window. The
viewer module (numpy) is imported by that worker: the list shows before numpy loads.

How a frame reaches the terminal is the painter's choice too (paint/renderers.py:
``select_renderer``, ``Renderer``; half-cell blocks by default, kitty, sixel, "auto" and
textual-image's unicode renderer opt-in, chosen before ``App.run()``).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.containers import Container
from textual.markup import escape
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static
from textual.worker import get_current_worker

from ...paint.renderers import Renderer
from ..data import Row

SCENE_PIXELS = 40_000_000   # image pixels the scenes kept for the last rows hold together


# -- the files of a row -----------------------------------------------------------------------

def read_sources(root: Path, state_dir: Path, codes, row: Row):
    """(image, mask or None, prob or None, error or None) for a row; never raises."""
    from PIL import Image

    from ....engine.project import imageio

    import numpy as np

    try:
        image = imageio.read_image(root / row.path)
    except (imageio.ImageError, OSError) as e:
        return None, None, None, str(e)
    mask = prob = None
    notes = []
    if row.mask_path:
        try:
            mask = imageio.read_mask(root / row.mask_path, codes, expect_shape=image.shape[:2])
        except (imageio.MaskError, OSError) as e:
            notes.append(str(e))
    if row.prob_path:
        try:
            with Image.open(state_dir / row.prob_path) as im:
                prob = np.asarray(im.convert("L"))
        except OSError as e:
            notes.append(f"prediction: {e}")
        if prob is not None and prob.shape != image.shape[:2]:
            notes.append(f"prediction: {prob.shape[1]}×{prob.shape[0]}, the image "
                         f"{image.shape[1]}×{image.shape[0]}: not shown")
            prob = None
    return image, mask, prob, "; ".join(notes) or None


def _mtime(p: Path) -> int:
    try:
        return p.stat().st_mtime_ns
    except OSError:
        return 0


def info_line(row: Row, note: str | None = None) -> str:
    """The line under the preview's title: the row's status and category, what it lacks, and
    the note its files gave (markup)."""
    info = f"{row.status}" + (f" · {row.category}" if row.category else "")
    if not row.mask_path:
        info += " · no mask"
    if not row.prob_path:
        info += " · no prediction"
    if note:
        info += f" · [b]{escape(note)}[/b]"
    return info


class Preview(Container):
    """The viewer on the selected row, with a line on the row (or, while the viewer has the
    keys, on the pixel under its cursor) and the overlays in its border."""

    show_mask = reactive(True)
    show_prediction = reactive(True)
    show_uncertainty = reactive(False)
    outline = reactive(True)
    show_splits = reactive(False)

    class Loaded(Message):
        """A row's scene from the worker (``scene`` None: the image cannot be shown)."""

        def __init__(self, row: Row, key: tuple, scene, note: str | None) -> None:
            super().__init__()
            self.row = row
            self.key = key
            self.scene = scene
            self.note = note

    def __init__(self, root: Path, state_dir: Path, codes, renderer: Renderer, *,
                 cfg=None, **kw) -> None:
        """``cfg``: the project's config; the split outlines are drawn as its ``[measure]``
        splits objects."""
        super().__init__(**kw)
        self.root = root
        self.state_dir = state_dir
        self.codes = list(codes)
        self.renderer = renderer
        self.cfg = cfg
        self.row: Row | None = None
        self.viewer = None          # widgets.viewer.PreviewViewer, made with the first scene
        self._scenes: OrderedDict[tuple, tuple] = OrderedDict()   # (scene, note) by files
        self._shown_key: tuple | None = None     # files and mtimes of the scene shown
        self._asked_key: tuple | None = None     # ... and of the one being read
        # the image id of the scene shown and the note its files gave (a read error): the
        # line under the title is drawn from them and the row's current data
        self._shown_id: int | None = None
        self._shown_note: str | None = None
        self._colors: dict[str, tuple[int, int, int]] = {}

    def compose(self) -> ComposeResult:
        yield Static("", id="preview-note", markup=True)
        yield Container(id="preview-frame")

    def on_mount(self) -> None:
        self.border_title = "preview"
        self._update_subtitle()

    def on_resize(self) -> None:
        self.refresh_picture()   # shown again (z on a narrow terminal): read what it missed

    # -- inputs ----------------------------------------------------------------------------
    def set_row(self, row: Row | None) -> None:
        """Show ``row``: another row, or the same one with new data (a reload, a decision).
        The line under the title follows the row's data at once when its image is the one
        shown (status, category and scores change without touching its files); a new image
        brings its own line when it is read."""
        self.row = row
        if row is not None and row.id == self._shown_id and self.is_mounted:
            self._update_note()
        self.refresh_picture()

    def set_colors(self, colors: dict[str, tuple[int, int, int]]) -> None:
        self._colors = dict(colors)
        self._update_subtitle()
        if self.viewer is not None and self.viewer.scene is not None:
            self.viewer.scene.colors.update(self._colors)
            self.viewer.redraw()

    def overlay_layers(self):
        from ...paint.scene import Layers

        return Layers(mask=self.show_mask, outline=self.outline,
                      prediction=self.show_prediction, uncertainty=self.show_uncertainty,
                      splits=self.show_splits, minimap=True)

    def watch_show_mask(self) -> None:
        self._changed()

    def watch_show_prediction(self) -> None:
        self._changed()

    def watch_show_uncertainty(self) -> None:
        self._changed()

    def watch_outline(self) -> None:
        self._changed()

    def watch_show_splits(self) -> None:
        self._changed()

    def _changed(self) -> None:
        if not self.is_mounted:
            return
        self._update_subtitle()
        if self.viewer is not None:
            self.viewer.overlays = self.overlay_layers()
            self.viewer.redraw()
            self._update_note()

    # -- what the viewer does, asked from the app ------------------------------------------
    def viewer_action(self, action: str, *args) -> None:
        """Run one of the viewer's actions (zoom_in, zoom_out, zoom_fit, next_disagreement)."""
        if self.viewer is not None and self.viewer.scene is not None:
            getattr(self.viewer, f"action_{action}")(*args)

    def focus_viewer(self) -> bool:
        if self.viewer is None or not self.display:
            return False
        self.viewer.focus()
        return True

    def on_paint_view_view_changed(self, message) -> None:
        message.stop()
        self._update_subtitle()
        self._update_note()

    def on_paint_view_cursor_moved(self, message) -> None:
        message.stop()
        self._update_note()

    # -- the lines around the picture ------------------------------------------------------
    def _update_subtitle(self) -> None:
        scene = self.viewer.scene if self.viewer is not None else None
        colors = scene.colors if scene is not None else self._colors

        def chip(on: bool, var: str, label: str) -> str:
            rgb = colors.get(var)
            mark = "■" if on else "□"
            colour = f"[rgb({rgb[0]},{rgb[1]},{rgb[2]})]{mark}[/]" if rgb and on else mark
            return f"{colour}{label}"

        parts = [chip(self.show_mask, "seg-mask", "mask"),
                 chip(self.show_prediction, "seg-pred", "pred"),
                 chip(self.show_uncertainty, "seg-uncertain", "unc")]
        if self.show_splits:   # off, it says nothing: the line fits 80 columns zoomed
            parts.append(chip(True, "split", "split"))
        parts.append("outline" if self.outline else "tint")
        vp = self.viewer.vp if self.viewer is not None else None
        if vp is not None:
            parts.append("fit" if vp.is_fit() else vp.zoom_label())
        self.border_subtitle = " ".join(parts)

    def _update_note(self) -> None:
        v = self.viewer
        if self._shown_id is None or self.row is None:
            return
        region = v.region_text() if v is not None else ""
        if v is not None and v.has_focus and v.scene is not None:
            text = escape(" · ".join(v.pixel_facts()))
        else:
            row = self.row if self.row.id == self._shown_id else None
            text = info_line(row, self._shown_note) if row is not None else ""
        if region:
            text = f"[b]{escape(region)}[/b] · {text}"
        self._note(text)

    def _note(self, text: str) -> None:
        self.query_one("#preview-note", Static).update(text, layout=False)  # one fixed line

    # -- reading ---------------------------------------------------------------------------
    def refresh_picture(self) -> None:
        if not self.is_mounted:
            return
        row = self.row
        if row is None:
            self._shown_key = self._asked_key = self._shown_id = None
            if self.viewer is not None:
                self.viewer.set_scene(None)
            self.border_title = "preview"
            self._note("no image selected")
            return
        region = self.content_region
        if region.width < 2 or region.height < 2:   # hidden (a narrow terminal): on resize
            return
        files = (row.path, row.mask_path, row.prob_path)
        stamps = tuple(_mtime(p) for p in (self.root / row.path,
                                           self.root / row.mask_path if row.mask_path else None,
                                           self.state_dir / row.prob_path if row.prob_path
                                           else None) if p is not None)
        key = (files, stamps)
        if key == self._shown_key or key == self._asked_key:
            return
        self._asked_key = key
        self.border_title = row.name
        self._load_worker(row, key, dict(self._colors))

    @work(thread=True, exclusive=True, group="preview")
    def _load_worker(self, row: Row, key: tuple, colors: dict) -> None:
        # the viewer's modules load here, off the UI thread (numpy, scipy)
        from ...paint.scene import Scene
        from ...paint.splits import split_settings  # noqa: F401
        from .viewer import make_viewer  # noqa: F401

        worker = get_current_worker()
        got = self._scenes.get(key)
        if got is None:
            image, mask, prob, note = read_sources(self.root, self.state_dir, self.codes, row)
            scene = None
            if image is not None:
                try:
                    scene = Scene(image, mask, prob, colors=colors)
                    size = self.content_region.size
                    # the zoomed-out levels the first frame samples, built here, not by it
                    scene.level(_fit_level(scene, size.width, size.height,
                                           self.renderer.cell_px))
                except (ValueError, MemoryError) as e:   # an image it cannot draw
                    scene, note = None, f"{row.path}: {e}"
            got = (scene, note)
            if worker.is_cancelled:
                return
            self._scenes[key] = got
            # the last images shown, at most 16 and SCENE_PIXELS pixels (a 4096² scene with
            # its pyramid, mask and prediction holds about 110 MB)
            while len(self._scenes) > 1 and (len(self._scenes) > 16 or sum(
                    sc.h * sc.w for sc, _n in self._scenes.values() if sc) > SCENE_PIXELS):
                self._scenes.popitem(last=False)
        if not worker.is_cancelled:
            self.post_message(self.Loaded(row, key, *got))

    def on_preview_loaded(self, message: Loaded) -> None:
        message.stop()
        if message.key != self._asked_key:   # a newer row was asked for meanwhile
            return
        same_image = message.row.id == self._shown_id
        self._shown_key, self._asked_key = message.key, None
        self._shown_id = message.row.id if message.scene is not None else None
        self._shown_note = message.note
        scene = message.scene
        if scene is None:
            if self.viewer is not None:
                self.viewer.set_scene(None)
            self._note(f"[b]cannot show[/b] {escape(message.note or '')}")
            return
        scene.colors.update(self._colors)
        if self.viewer is None:
            from ...paint.splits import split_settings
            from .viewer import make_viewer

            self.viewer = make_viewer(self.renderer, layers=self.overlay_layers(),
                                      id="preview-view")
            self.viewer.split_settings = split_settings(self.cfg)
            self.query_one("#preview-frame").mount(self.viewer)
            if self.screen.has_class("-zoom") and self.app.focused is None:
                self.viewer.focus()   # z came before the first image: the keys go to it now
        self.viewer.set_scene(scene, keep_view=same_image)
        self._update_subtitle()
        self._update_note()


def _fit_level(scene, cols: int, rows: int, cell_px: tuple[int, int]) -> int:
    """The pyramid level a fitted frame of ``cols`` × ``rows`` cells samples."""
    import math

    dw, dh = cell_px
    scale = min(max(1, cols) * dw / scene.w, max(1, rows - 1) * dh / scene.h)
    return max(0, math.floor(math.log2(1 / scale) + 1e-9)) if scale < 1 else 0
