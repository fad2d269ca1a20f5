"""The preview pane: the selected image with its mask, the prediction and the uncertainty map.

Decoding and composing run in a thread worker, sized to the pane (the overlay outline is drawn
at display resolution, so it stays one pixel wide at any zoom), and so does turning the picture
into terminal lines: the UI thread only copies finished lines.

Half-cell blocks are the default (every terminal, tmux, SSH, 256 colours): drawn here, because
importing textual-image's renderables probes the terminal for Sixel and Kitty support first,
which costs 0.3 s of every start inside tmux (two 0.1 s time-outs). Kitty (TGP), Sixel, "auto"
and textual-image's unicode renderer are opt-in; for those ``select_renderer`` imports
textual-image, and it must run before ``App.run()`` (the probe reads the terminal's answers).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rich.color import Color as RichColor
from rich.segment import Segment
from rich.style import Style
from textual import work
from textual.app import ComposeResult
from textual.containers import Container
from textual.geometry import Size
from textual.markup import escape
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static
from textual.worker import get_current_worker

from ..data import Row

RENDERERS = ("halfcell", "auto", "kitty", "sixel", "unicode")


@dataclass(frozen=True)
class Renderer:
    name: str
    strips: Callable | None = None  # picture (PIL) → terminal lines, run in the worker
    widget: Any = None              # textual-image widget class (kitty, sixel, auto)
    cell_px: tuple[int, int] = (1, 2)  # picture pixels per cell (half-cell: 1 wide, 2 high)


def halfcell_strips(picture) -> list[Strip]:
    """Upper-half blocks: each cell shows two pixels (foreground above, background below).
    Runs of equal cells become one segment; styles are shared per colour pair."""
    import numpy as np

    a = np.asarray(picture.convert("RGB"))
    if a.shape[0] % 2:
        a = np.concatenate([a, a[-1:]], axis=0)
    styles: dict[tuple, Style] = {}
    strips = []
    for y in range(0, a.shape[0], 2):
        pairs = np.concatenate([a[y], a[y + 1]], axis=1).tolist()  # [r, g, b, r2, g2, b2]
        segments, run, prev = [], 0, None
        for px in pairs:
            key = tuple(px)
            if key != prev and run:
                segments.append(Segment("▀" * run, styles[prev]))
                run = 0
            if key not in styles:
                styles[key] = Style(color=RichColor.from_rgb(*key[:3]),
                                    bgcolor=RichColor.from_rgb(*key[3:]))
            prev = key
            run += 1
        if run:
            segments.append(Segment("▀" * run, styles[prev]))
        strips.append(Strip(segments, a.shape[1]))
    return strips


def _renderable_strips(renderable_cls: Any) -> Callable:
    """Lines from a textual-image rich renderable (the unicode one), rendered off-screen."""
    def strips(picture) -> list[Strip]:
        import io

        from rich.console import Console

        w, h = picture.width, max(1, picture.height // 2)
        console = Console(file=io.StringIO(), width=w, height=h, color_system="truecolor",
                          legacy_windows=False, force_terminal=True)
        lines = Segment.split_and_crop_lines(
            console.render(renderable_cls(picture, width=w, height=h),
                           console.options.update(width=w, height=h)),
            w, pad=True, include_new_lines=False)
        return [Strip(line, w) for line in list(lines)[:h]]
    return strips


def select_renderer(name: str | None) -> Renderer:
    """The preview's renderer; textual-image (and its terminal probe) only when asked for."""
    name = name or "halfcell"
    if name not in RENDERERS:
        raise ValueError(f"unknown image renderer {name!r}; one of {', '.join(RENDERERS)}")
    if name == "halfcell":
        return Renderer(name, strips=halfcell_strips)
    if name == "unicode":
        from textual_image.renderable.unicode import Image as Unicode

        return Renderer(name, strips=_renderable_strips(Unicode))
    from textual_image import widget as tiw  # probes the cell size (pixels per cell)
    from textual_image._terminal import get_cell_size

    cell = get_cell_size()
    cls = {"kitty": tiw.TGPImage, "sixel": tiw.SixelImage, "auto": tiw.Image}[name]
    if cls in (tiw.HalfcellImage, tiw.UnicodeImage):  # "auto" found no graphics protocol
        return Renderer("halfcell", strips=halfcell_strips)
    return Renderer(name, widget=cls, cell_px=(cell.width, cell.height))


# -- composing (numpy + Pillow, imported in the worker) -------------------------------------------

@dataclass(frozen=True)
class Layers:
    mask: bool = True
    prediction: bool = True
    uncertainty: bool = False
    outline: bool = True


def _fit(w: int, h: int, max_w: int, max_h: int) -> tuple[int, int]:
    scale = min(max_w / w, max_h / h)
    return max(1, int(w * scale)), max(1, int(h * scale))


def _edge(m):
    """Inner boundary of a boolean map: pixels with a 4-neighbour outside it (the image border
    counts as outside, so objects cut by the frame are closed)."""
    import numpy as np

    p = np.pad(m, 1)
    inner = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return m & ~inner


def compose(image, mask, prob, max_px: tuple[int, int], layers: Layers,
            colors: dict[str, tuple[int, int, int]]):
    """The picture to show: ``image`` (H,W,3 uint8) scaled to fit ``max_px`` with the mask
    (H,W 0/1 or None), the prediction and the uncertainty from ``prob`` (H,W uint8 P(object)
    ×255, or None) drawn over it. Returns a PIL RGB image."""
    import numpy as np
    from PIL import Image

    h, w = image.shape[:2]
    tw, th = _fit(w, h, *max_px)
    th -= th % 2 if th > 1 else 0  # half-cells draw pixel rows in pairs
    up = tw >= w
    img = Image.fromarray(image).resize((tw, th), Image.NEAREST if up else Image.BOX)
    out = np.asarray(img, dtype=np.float32)

    def scaled(a, resample):
        return np.asarray(Image.fromarray(a).resize((tw, th), resample))

    def blend(where, rgb, alpha):
        a = alpha if np.isscalar(alpha) else alpha[..., None]
        out[where] = out[where] * (1 - (a if np.isscalar(a) else a[where])) + \
            np.array(rgb, np.float32) * (a if np.isscalar(a) else a[where])

    pred = None
    if prob is not None and prob.shape[:2] == (h, w):
        p = scaled(prob, Image.BILINEAR).astype(np.float32) / 255.0
        if layers.uncertainty:
            unc = 1.0 - np.abs(2.0 * p - 1.0)          # 1 at p = 0.5, 0 when sure
            where = unc > 0.1
            blend(where, colors["seg-uncertain"], np.clip(unc * 0.9, 0, 0.9))
        pred = p > 0.5
    m = None
    if mask is not None and mask.shape[:2] == (h, w):
        m = scaled((mask > 0).astype(np.uint8) * 255, Image.NEAREST if up else Image.BOX) >= 96
    for on, layer, color in ((layers.prediction, pred, "seg-pred"), (layers.mask, m, "seg-mask")):
        if not on or layer is None:
            continue
        if layers.outline:
            out[_edge(layer)] = colors[color]
        else:
            blend(layer, colors[color], 0.45)
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB")


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
    return image, mask, prob, "; ".join(notes) or None


class Picture(Widget):
    """Pre-rendered picture lines (Line API): cheap to show, sized to the picture."""

    DEFAULT_CSS = "Picture { width: auto; height: auto; }"

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._strips: list[Strip] = []
        self._cells = (0, 0)

    def show(self, strips: list[Strip], cells: tuple[int, int]) -> None:
        if cells != self._cells:  # a new size needs a layout pass; the same size only a paint
            self._cells = cells
            self.styles.width, self.styles.height = cells
        self._strips = strips
        self.refresh()

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return self._cells[0]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self._cells[1]

    def render_line(self, y: int) -> Strip:
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width, self.rich_style)


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
    """Shows the composed picture of one row."""

    show_mask = reactive(True)
    show_prediction = reactive(True)
    show_uncertainty = reactive(False)
    outline = reactive(True)

    class Composed(Message):
        def __init__(self, row: Row, key: tuple, picture, note: str | None,
                     strips: list[Strip] | None = None) -> None:
            super().__init__()
            self.row = row
            self.key = key
            self.picture = picture
            self.note = note
            self.strips = strips

    def __init__(self, root: Path, state_dir: Path, codes, renderer: Renderer, **kw) -> None:
        super().__init__(**kw)
        self.root = root
        self.state_dir = state_dir
        self.codes = list(codes)
        self.renderer = renderer
        self.row: Row | None = None
        self._sources: OrderedDict[tuple, tuple] = OrderedDict()   # decoded files, by mtime
        self._shown_key: tuple | None = None
        # the image id of the picture shown and the note its files gave (a read error): the
        # line under the title is drawn from them and the row's current data
        self._shown_id: int | None = None
        self._shown_note: str | None = None
        self._colors: dict[str, tuple[int, int, int]] = {}

    def compose(self) -> ComposeResult:
        yield Static("", id="preview-note")
        with Container(id="preview-frame"):  # centres the picture in the pane
            if self.renderer.widget is not None:
                yield self.renderer.widget(id="preview-image")
            else:
                yield Picture(id="preview-image")

    def on_mount(self) -> None:
        self.border_title = "preview"
        self._update_subtitle()

    # -- inputs ----------------------------------------------------------------------------
    def set_row(self, row: Row | None) -> None:
        """Show ``row``: another row, or the same one with new data (a reload, a decision).
        The line under the title follows the row's data at once when its picture is the one
        shown (status, category and scores change without touching its files); a new picture
        brings its own line when it is composed."""
        self.row = row
        if row is not None and row.id == self._shown_id and self.is_mounted:
            self._note(info_line(row, self._shown_note))
        self.refresh_picture()

    def set_colors(self, colors: dict[str, tuple[int, int, int]]) -> None:
        self._colors = colors
        self._update_subtitle()
        self.refresh_picture()

    def watch_show_mask(self) -> None:
        self._changed()

    def watch_show_prediction(self) -> None:
        self._changed()

    def watch_show_uncertainty(self) -> None:
        self._changed()

    def watch_outline(self) -> None:
        self._changed()

    def _changed(self) -> None:
        if self.is_mounted:
            self._update_subtitle()
            self.refresh_picture()

    def on_resize(self) -> None:
        self.refresh_picture()

    def _update_subtitle(self) -> None:
        def chip(on: bool, var: str, label: str) -> str:
            rgb = self._colors.get(var)
            mark = "■" if on else "□"
            colour = f"[rgb({rgb[0]},{rgb[1]},{rgb[2]})]{mark}[/]" if rgb and on else mark
            return f"{colour}{label}"

        parts = [chip(self.show_mask, "seg-mask", "mask"),
                 chip(self.show_prediction, "seg-pred", "pred"),
                 chip(self.show_uncertainty, "seg-uncertain", "unc"),
                 "outline" if self.outline else "tint"]
        self.border_subtitle = " ".join(parts)

    # -- composing -------------------------------------------------------------------------
    def _target(self) -> tuple[int, int]:
        region = self.content_region
        cells_w, cells_h = region.width, max(1, region.height - 1)  # one line for the note
        cw, ch = self.renderer.cell_px
        return cells_w * cw, cells_h * ch

    def refresh_picture(self) -> None:
        if not self.is_mounted:
            return
        row = self.row
        if row is None:
            self._shown_key = self._shown_id = None
            self._set_picture(None)
            self._note("no image selected")
            return
        px = self._target()
        if px[0] < 2 or px[1] < 2:
            return
        layers = Layers(self.show_mask, self.show_prediction, self.show_uncertainty, self.outline)
        files = (row.path, row.mask_path, row.prob_path)
        stamps = tuple(_mtime(p) for p in (self.root / row.path,
                                           self.root / row.mask_path if row.mask_path else None,
                                           self.state_dir / row.prob_path if row.prob_path
                                           else None) if p is not None)
        key = (files, stamps, px, layers, tuple(sorted(self._colors.items())))
        if key == self._shown_key:
            return
        self.border_title = row.name
        self._compose_worker(row, key, px, layers, dict(self._colors))

    @work(thread=True, exclusive=True, group="preview")
    def _compose_worker(self, row: Row, key: tuple, px: tuple[int, int], layers: Layers,
                        colors: dict) -> None:
        worker = get_current_worker()
        src_key = key[:2]
        sources = self._sources.get(src_key)
        if sources is None:
            sources = read_sources(self.root, self.state_dir, self.codes, row)
            if worker.is_cancelled:
                return
            self._sources[src_key] = sources
            while len(self._sources) > 16:
                self._sources.popitem(last=False)
        image, mask, prob, note = sources
        if image is None:
            self.post_message(self.Composed(row, key, None, note))
            return
        if not colors:
            colors = {"seg-mask": (0, 255, 0), "seg-pred": (255, 0, 255),
                      "seg-uncertain": (255, 160, 0)}
        picture = compose(image, mask, prob, px, layers, colors)
        strips = None
        if self.renderer.strips is not None and not worker.is_cancelled:
            strips = self.renderer.strips(picture)
        if not worker.is_cancelled:
            self.post_message(self.Composed(row, key, picture, note, strips))

    def _note(self, text: str) -> None:
        self.query_one("#preview-note", Static).update(text, layout=False)  # one fixed line

    def _cells(self, picture) -> tuple[int, int]:
        cw, ch = self.renderer.cell_px
        return max(1, picture.width // cw), max(1, picture.height // ch)

    def on_preview_composed(self, message: Composed) -> None:
        message.stop()
        self._shown_key = message.key
        self._shown_id = message.row.id if message.picture is not None else None
        self._shown_note = message.note
        if message.picture is None:
            self._set_picture(None)
            self._note(f"[b]cannot show[/b] {escape(message.note or '')}")
            return
        # the row as it is now when it is still this image (the compose read older data)
        row = self.row if self.row is not None and self.row.id == message.row.id else message.row
        self._note(info_line(row, message.note))
        self._set_picture(message.picture, message.strips)

    def _set_picture(self, picture, strips: list[Strip] | None = None) -> None:
        target = self.query_one("#preview-image")
        if self.renderer.widget is not None:  # kitty / sixel: textual-image's own widget
            if picture is not None:
                target.styles.width, target.styles.height = self._cells(picture)
            target.image = picture
            return
        if picture is None or strips is None:
            target.show([], (0, 0))
        else:
            target.show(strips, self._cells(picture))
