"""A zoomable, pannable image viewer for masks: the painter's canvas and the preview's viewer.

Three layers, the first two without a terminal:

* ``Viewport``: the geometry. The screen is a grid of *dots*: ``dot_w`` × ``dot_h`` dots per
  cell (half-cell blocks: 1 × 2, so one cell shows two image rows at 1:1; kitty/sixel: the
  cell's size in pixels). ``zoom`` is cells (columns) per image pixel; an image pixel covers
  ``zoom * dot_w`` dots in both directions. Zoom levels: fit-to-window, then powers of two up
  to ``ZOOM_MAX`` (16 cells per pixel), never below fit. Pan is clamped so the image stays in
  view (an image smaller than the view is centred).
* ``Scene``: the pixels (image, mask, P(object), split labels). ``Scene.render(viewport,
  layers, marks)`` samples **only the visible window** (one index per dot, never the whole
  image), so a 4096² image costs what a 128² one does. Zoomed out below 1:1 it samples a
  box-filtered pyramid of the image (one level per power of two, built on first use and kept:
  that is the per-zoom cache). Outlines are drawn at display resolution (one dot wide at any
  zoom).
* ``PaintView``: the Textual widget (Line API). It renders one frame per change and hands out
  its lines; mouse drags become ``PaintView.Stroke`` messages (for the painter) or pans.

The benchmark entry point (no terminal, no App)::

    scene = Scene(image, mask, prob)           # image (H,W) or (H,W,3) uint8
    vp = Viewport(H, W, cols=160, rows=50)     # fit; vp.set_zoom(1.0, (y, x)) for 1:1
    lines = scene.render_lines(vp, Layers(), Marks(cursor=(y, x)))   # list[Strip]

``render_lines`` is exactly what the widget draws per frame; a brush stroke is
``scene.set_mask(new_mask)`` then ``render_lines`` again, a zoom step ``vp.zoom_in(anchor)``
then ``render_lines``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from rich.color import Color, ColorTriplet, ColorType
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

ZOOM_MAX = 16.0
DEFAULT_COLORS = {
    "seg-mask": (0, 230, 0), "seg-pred": (255, 0, 255), "seg-uncertain": (255, 160, 0),
    "split": (0, 200, 255), "cursor": (255, 255, 0), "cursor-erase": (255, 60, 60),
    "brush": (200, 200, 80), "box": (0, 255, 255), "minimap-frame": (255, 255, 255),
    "minimap-border": (110, 110, 110), "outside": (20, 20, 20),
}


# -- geometry ------------------------------------------------------------------------------

@dataclass
class Viewport:
    img_h: int
    img_w: int
    cols: int
    rows: int
    dot_w: int = 1
    dot_h: int = 2
    zoom: float = 0.0          # cells per image pixel; 0: fit
    cy: float | None = None    # image coordinates at the view's centre
    cx: float | None = None

    def __post_init__(self) -> None:
        if self.zoom <= 0:
            self.zoom = self.fit_zoom()
        if self.cy is None or self.cx is None:
            self.cy, self.cx = self.img_h / 2, self.img_w / 2
        self.clamp()

    # sizes
    @property
    def dots(self) -> tuple[int, int]:
        """(height, width) of the screen in dots."""
        return max(1, self.rows) * self.dot_h, max(1, self.cols) * self.dot_w

    @property
    def scale(self) -> float:
        """Dots per image pixel (both directions)."""
        return self.zoom * self.dot_w

    def fit_zoom(self) -> float:
        hd, wd = self.dots
        return min(wd / self.img_w, hd / self.img_h) / self.dot_w

    def levels(self) -> list[float]:
        fit = self.fit_zoom()
        top = max(ZOOM_MAX, fit)
        out = [fit]
        k = math.floor(math.log2(fit)) + 1
        while 2.0 ** k <= top:
            if 2.0 ** k > fit * 1.0001:
                out.append(2.0 ** k)
            k += 1
        return out

    def is_fit(self) -> bool:
        return abs(self.zoom - self.fit_zoom()) < 1e-9

    def resize(self, cols: int, rows: int) -> None:
        was_fit = self.is_fit()
        self.cols, self.rows = max(1, cols), max(1, rows)
        if was_fit or self.zoom < self.fit_zoom():
            self.zoom = self.fit_zoom()
        self.clamp()

    # position
    def origin(self) -> tuple[float, float]:
        """Image coordinates of the top-left corner of the screen."""
        hd, wd = self.dots
        s = self.scale
        return self.cy - hd / 2 / s, self.cx - wd / 2 / s

    def clamp(self) -> None:
        hd, wd = self.dots
        s = self.scale
        for axis, size, d in (("cy", self.img_h, hd), ("cx", self.img_w, wd)):
            half = d / 2 / s
            if size * s <= d:
                setattr(self, axis, size / 2)
            else:
                setattr(self, axis, min(max(getattr(self, axis), half), size - half))

    def window(self) -> tuple[int, int, int, int]:
        """(y0, x0, y1, x1): the image pixels in view, end exclusive."""
        hd, wd = self.dots
        oy, ox = self.origin()
        s = self.scale
        return (max(0, math.floor(oy)), max(0, math.floor(ox)),
                min(self.img_h, math.ceil(oy + hd / s)), min(self.img_w, math.ceil(ox + wd / s)))

    def shows_all(self) -> bool:
        return self.window() == (0, 0, self.img_h, self.img_w)

    def pixel_at(self, col: int, row: int) -> tuple[int, int] | None:
        """The image pixel under a cell (its centre dot), or None outside the image."""
        oy, ox = self.origin()
        s = self.scale
        y = math.floor(oy + (row + 0.5) * self.dot_h / s)
        x = math.floor(ox + (col + 0.5) * self.dot_w / s)
        if 0 <= y < self.img_h and 0 <= x < self.img_w:
            return y, x
        return None

    def cell_of(self, y: int, x: int) -> tuple[int, int]:
        """(row, col) of the first cell showing pixel (y, x) (may be off screen)."""
        oy, ox = self.origin()
        s = self.scale
        return (math.floor((y - oy) * s / self.dot_h + 1e-9),
                math.floor((x - ox) * s / self.dot_w + 1e-9))

    def sample_index(self, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Image row of every dot row and column of every dot column (-1 outside), with
        ``pad`` extra dots on each side."""
        hd, wd = self.dots
        oy, ox = self.origin()
        s = self.scale
        iy = np.floor(oy + (np.arange(-pad, hd + pad) + 0.5) / s).astype(np.int64)
        ix = np.floor(ox + (np.arange(-pad, wd + pad) + 0.5) / s).astype(np.int64)
        iy[(iy < 0) | (iy >= self.img_h)] = -1
        ix[(ix < 0) | (ix >= self.img_w)] = -1
        return iy, ix

    # moves
    def set_zoom(self, zoom: float, anchor: tuple[float, float] | None = None) -> None:
        """Zoom to ``zoom`` keeping the image point ``anchor`` (y, x) where it is on screen."""
        zoom = min(max(zoom, self.fit_zoom()), max(ZOOM_MAX, self.fit_zoom()))
        if anchor is not None:
            ay, ax = anchor
            k = self.zoom / zoom
            self.cy = ay + (self.cy - ay) * k
            self.cx = ax + (self.cx - ax) * k
        self.zoom = zoom
        self.clamp()

    def zoom_in(self, anchor=None) -> None:
        bigger = [z for z in self.levels() if z > self.zoom * 1.0001]
        if bigger:
            self.set_zoom(bigger[0], anchor)

    def zoom_out(self, anchor=None) -> None:
        smaller = [z for z in self.levels() if z < self.zoom / 1.0001]
        self.set_zoom(smaller[-1] if smaller else self.fit_zoom(), anchor)

    def pan(self, dy: float, dx: float) -> None:
        """Pan by (dy, dx) image pixels."""
        self.cy += dy
        self.cx += dx
        self.clamp()

    def center_on(self, y: float, x: float) -> None:
        self.cy, self.cx = y, x
        self.clamp()

    def view_size_px(self) -> tuple[float, float]:
        hd, wd = self.dots
        return hd / self.scale, wd / self.scale

    def ensure_visible(self, y: int, x: int, margin: int = 1) -> None:
        vh, vw = self.view_size_px()
        oy, ox = self.origin()
        m_y, m_x = min(margin, vh / 4), min(margin, vw / 4)
        if y < oy + m_y:
            self.cy -= oy + m_y - y
        elif y + 1 > oy + vh - m_y:
            self.cy += y + 1 - (oy + vh - m_y)
        if x < ox + m_x:
            self.cx -= ox + m_x - x
        elif x + 1 > ox + vw - m_x:
            self.cx += x + 1 - (ox + vw - m_x)
        self.clamp()

    def zoom_for_box(self, h: int, w: int, share: float = 0.5) -> float:
        """The largest zoom level at which an h×w box fills at most ``share`` of the view."""
        hd, wd = self.dots
        best = self.fit_zoom()
        for z in self.levels():
            s = z * self.dot_w
            if h * s <= hd * share and w * s <= wd * share:
                best = z
        return min(best, 8.0) if best > self.fit_zoom() else best

    def zoom_label(self) -> str:
        z = self.zoom
        if self.is_fit():
            return f"fit {z:.2g}x"
        return f"{int(z)}x" if z >= 1 else f"1/{round(1 / z)}x"


# -- what to draw --------------------------------------------------------------------------

@dataclass(frozen=True)
class Layers:
    mask: bool = True
    outline: bool = True        # mask (and prediction) as outline; False: tint
    prediction: bool = False
    uncertainty: bool = False
    splits: bool = False
    minimap: bool = True


@dataclass(frozen=True)
class Marks:
    cursor: tuple[int, int] | None = None
    erase: bool = False
    brush: int = 0                              # brush radius in pixels (0: one pixel)
    box: tuple[int, int, int, int] | None = None  # y0, x0, y1, x1 inclusive


def _edge(m: np.ndarray) -> np.ndarray:
    """Pixels of ``m`` with a 4-neighbour outside it; the array's rim counts as outside."""
    p = np.pad(m, 1)
    inner = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return m & ~inner


def _to_rgb(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image)
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        a = ((a - lo) / (hi - lo or 1.0) * 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    return a


class Scene:
    """The pixels a viewer shows; rendering samples only the visible window."""

    def __init__(self, image: np.ndarray, mask: np.ndarray | None = None,
                 prob: np.ndarray | None = None, colors: dict | None = None) -> None:
        self.image = _to_rgb(image)
        self.h, self.w = self.image.shape[:2]
        self._pyramid: dict[int, np.ndarray] = {0: self.image}
        self.mask: np.ndarray | None = None
        self.prob: np.ndarray | None = None
        self.labels: np.ndarray | None = None    # split labels of a box of the image
        self.labels_origin = (0, 0)              # the box's top-left pixel
        self.labels_version = 0
        self.version = 0
        self.colors = dict(DEFAULT_COLORS) | (colors or {})
        self.set_mask(mask)
        self.set_prob(prob)
        self._strips = StripCache()

    def _check(self, a, what):
        if a is not None and a.shape[:2] != (self.h, self.w):
            raise ValueError(f"{what} is {a.shape[1]}×{a.shape[0]} but the image is "
                             f"{self.w}×{self.h}")

    def set_mask(self, mask: np.ndarray | None) -> None:
        self._check(mask, "the mask")
        if mask is not None:
            mask = np.asarray(mask)
            mask = mask if mask.dtype == bool else mask > 0   # a bool mask is not copied
        self.mask = mask
        self.set_labels(None)
        self.version += 1

    def set_prob(self, prob: np.ndarray | None) -> None:
        """P(object) as uint8 ×255 (or float in [0, 1])."""
        self._check(prob, "the prediction")
        if prob is not None and prob.dtype != np.uint8:
            prob = np.clip(np.asarray(prob, np.float32) * 255 + 0.5, 0, 255).astype(np.uint8)
        self.prob = prob
        self.pred = None if prob is None else prob > 127
        self.version += 1

    def set_labels(self, labels: np.ndarray | None, origin: tuple[int, int] = (0, 0)) -> None:
        """Split labels (for the split outlines) of the box of the image whose top-left pixel
        is ``origin``; pixels outside the box show none."""
        self.labels = labels
        self.labels_origin = origin
        self.labels_version += 1

    def level(self, k: int) -> np.ndarray:
        """The image box-filtered by 2**k (cached)."""
        if k not in self._pyramid:
            prev = self.level(k - 1)
            h, w = prev.shape[0] // 2 * 2, prev.shape[1] // 2 * 2
            if h == 0 or w == 0:
                self._pyramid[k] = prev
            else:
                a = prev[:h, :w].astype(np.uint16)
                a = (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2] + 2) // 4
                self._pyramid[k] = a.astype(np.uint8)
        return self._pyramid[k]

    def value_text(self, y: int, x: int) -> str:
        v = self.image[y, x]
        if np.ndim(v) == 0 or (v == v[0]).all():  # grey (also grey stored as RGB)
            return f"{int(v if np.ndim(v) == 0 else v[0])}"
        return "(" + ",".join(str(int(c)) for c in v) + ")"

    # rendering
    def render(self, vp: Viewport, layers: Layers = Layers(), marks: Marks = Marks()
               ) -> np.ndarray:
        """The visible window as an (H, W, 3) uint8 array of dots."""
        c = self.colors
        iy, ix = vp.sample_index(pad=1)
        vy, vx = iy >= 0, ix >= 0
        valid = vy[:, None] & vx[None, :]
        cy, cx = np.where(vy, iy, 0), np.where(vx, ix, 0)
        k = max(0, math.floor(math.log2(1 / vp.scale) + 1e-9)) if vp.scale < 1 else 0
        lv = self.level(k)
        ly = np.minimum(cy >> k, lv.shape[0] - 1)
        lx = np.minimum(cx >> k, lv.shape[1] - 1)
        img = lv[ly[:, None], lx[None, :]]
        out = img.astype(np.float32)
        if out.ndim == 2:
            out = np.repeat(out[:, :, None], 3, axis=2)
        out[~valid] = c["outside"]

        def sample(a):
            return a[cy[:, None], cx[None, :]] & valid

        def blend(where, rgb, alpha):
            if np.isscalar(alpha):
                out[where] = out[where] * (1 - alpha) + np.asarray(rgb, np.float32) * alpha
            else:
                a = alpha[where][:, None]
                out[where] = out[where] * (1 - a) + np.asarray(rgb, np.float32) * a

        if layers.uncertainty and self.prob is not None:
            p = self.prob[cy[:, None], cx[None, :]].astype(np.float32) / 255.0
            unc = (1.0 - np.abs(2.0 * p - 1.0)) * valid
            blend(unc > 0.2, c["seg-uncertain"], np.clip(unc * 0.9, 0, 0.9))  # 0.1 < P < 0.9
        if layers.prediction and self.pred is not None:
            pm = sample(self.pred)
            if layers.outline:
                out[_edge(pm)] = c["seg-pred"]
            else:
                blend(pm, c["seg-pred"], 0.35)
        if layers.mask and self.mask is not None:
            mm = sample(self.mask)
            if layers.outline:
                out[_edge(mm)] = c["seg-mask"]
            else:
                blend(mm, c["seg-mask"], 0.45)
        if layers.splits and self.labels is not None:
            (oy, ox), (lh, lw) = self.labels_origin, self.labels.shape
            ly, lx = cy - oy, cx - ox
            inl = valid & ((ly >= 0) & (ly < lh))[:, None] & ((lx >= 0) & (lx < lw))[None, :]
            lab = np.where(inl, self.labels[np.clip(ly, 0, lh - 1)[:, None],
                                            np.clip(lx, 0, lw - 1)[None, :]], 0)
            cut = np.zeros(lab.shape, bool)
            dy = (lab[1:] != lab[:-1]) & (lab[1:] > 0) & (lab[:-1] > 0)
            dx = (lab[:, 1:] != lab[:, :-1]) & (lab[:, 1:] > 0) & (lab[:, :-1] > 0)
            cut[1:] |= dy
            cut[:, 1:] |= dx
            out[cut] = c["split"]
        if marks.box is not None:
            y0, x0, y1, x1 = marks.box
            by = (iy >= min(y0, y1)) & (iy <= max(y0, y1))
            bx = (ix >= min(x0, x1)) & (ix <= max(x0, x1))
            out[_edge(by[:, None] & bx[None, :])] = c["box"]
        if marks.cursor is not None:
            y, x = marks.cursor
            if marks.brush > 0:
                r = marks.brush
                disk = ((iy[:, None] - y) ** 2 + (ix[None, :] - x) ** 2 <= r * r) & valid
                out[_edge(disk)] = c["brush"]
            here = (iy == y)[:, None] & (ix == x)[None, :]
            colour = c["cursor-erase" if marks.erase else "cursor"]
            if vp.scale >= 4:
                out[_edge(here)] = colour
            else:
                out[here] = colour
        out = out[1:-1, 1:-1]
        if layers.minimap and not vp.shows_all():
            self._minimap(out, vp)
        return np.clip(out, 0, 255).astype(np.uint8)

    def _minimap(self, out: np.ndarray, vp: Viewport) -> None:
        """A small overview in the top-right corner with the view's window framed."""
        hd, wd = out.shape[:2]
        mw = max(8, min(wd // 4, 40))
        mh = max(4, round(mw * self.h / self.w))
        if mh > hd // 2:
            mh = max(4, hd // 2)
            mw = max(4, round(mh * self.w / self.h))
        if mw + 2 >= wd or mh + 2 >= hd:
            return
        s = min(mw / self.w, mh / self.h)
        k = max(0, math.floor(math.log2(1 / s))) if s < 1 else 0
        lv = self.level(k)
        yy = np.minimum(((np.arange(mh) + 0.5) / s).astype(np.int64) >> k, lv.shape[0] - 1)
        xx = np.minimum(((np.arange(mw) + 0.5) / s).astype(np.int64) >> k, lv.shape[1] - 1)
        small = lv[yy[:, None], xx[None, :]].astype(np.float32)
        if small.ndim == 2:
            small = np.repeat(small[:, :, None], 3, axis=2)
        if self.mask is not None:
            mm = self.mask[np.minimum(yy << k, self.h - 1)[:, None],
                           np.minimum(xx << k, self.w - 1)[None, :]]
            small[mm] = small[mm] * 0.5 + np.asarray(self.colors["seg-mask"]) * 0.5
        y0, x0, y1, x1 = vp.window()
        fy0, fx0 = int(y0 * s), int(x0 * s)
        fy1, fx1 = min(mh - 1, max(fy0, math.ceil(y1 * s) - 1)), \
            min(mw - 1, max(fx0, math.ceil(x1 * s) - 1))
        frame = np.zeros((mh, mw), bool)
        frame[fy0:fy1 + 1, fx0:fx1 + 1] = True
        small[_edge(frame)] = self.colors["minimap-frame"]
        top, left = 0, wd - mw - 1
        out[top:top + mh + 1, left - 1:left + mw] = self.colors["minimap-border"]
        out[top:top + mh, left:left + mw] = small

    def render_lines(self, vp: Viewport, layers: Layers = Layers(), marks: Marks = Marks()
                     ) -> list[Strip]:
        """The visible window as terminal lines of upper-half blocks (``vp.dot_h`` must be 2,
        ``vp.dot_w`` 1): what the widget draws."""
        return self._strips.strips(self.render(vp, layers, marks))


class StripCache:
    """Turns dot rows into half-cell Strips. Colours are quantised to 6 bits a channel and
    rich Colors and Styles are kept between frames: making them is the slow part."""

    def __init__(self, limit: int = 200_000) -> None:
        self._colors: dict[int, Color] = {}
        self._styles: dict[int, Style] = {}
        self.limit = limit

    def _color(self, v: int) -> Color:
        c = self._colors.get(v)
        if c is None:
            r, g, b = v >> 16, (v >> 8) & 255, v & 255
            c = self._colors[v] = Color(f"#{v:06x}", ColorType.TRUECOLOR,
                                        triplet=ColorTriplet(r, g, b))
        return c

    def strips(self, rgb: np.ndarray) -> list[Strip]:
        if rgb.shape[0] % 2:
            rgb = np.concatenate([rgb, rgb[-1:]], axis=0)
        q = (rgb & 0xFC).astype(np.uint64)
        packed = (q[..., 0] << 16) | (q[..., 1] << 8) | q[..., 2]
        keys = (packed[0::2] << 24) | packed[1::2]
        width = rgb.shape[1]
        if len(self._styles) > self.limit:
            self._styles.clear()
        styles = self._styles
        out = []
        for row in keys:
            change = np.flatnonzero(row[1:] != row[:-1]) + 1
            starts = [0, *change.tolist()]
            ends = [*change.tolist(), width]
            segs = []
            for s, e, k in zip(starts, ends, row[starts].tolist()):
                st = styles.get(k)
                if st is None:
                    st = styles[k] = Style.from_color(self._color(k >> 24),
                                                      self._color(k & 0xFFFFFF))
                segs.append(Segment("▀" * (e - s), st))
            out.append(Strip(segs, width))
        return out


# -- the widget ----------------------------------------------------------------------------

def _b(key: str, action: str, description: str, id: str, show: bool = False) -> Binding:
    return Binding(key, action, description, show=show, id=f"paint.{id}")


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
    _b("1", "zoom_one", "1:1 (one pixel per cell column, two per row)", "zoom_one"),
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


class PaintView(Widget, can_focus=True):
    """The viewer widget: half-cell lines of the visible window, a pixel cursor, keys and mouse
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
                 layers: Layers | None = None, **kw) -> None:
        super().__init__(**kw)
        self.scene = scene
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
                self.vp = Viewport(scene.h, scene.w, max(1, cols), max(1, rows))
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
        self.refresh()

    # -- geometry ---------------------------------------------------------------------------
    def on_resize(self, event: events.Resize) -> None:
        if self.vp is not None:
            self.vp.resize(self.size.width, self.size.height)
        self.redraw()

    def marks(self) -> Marks:
        return Marks(cursor=self.cursor, **self.marks_extra)

    def render_line(self, y: int) -> Strip:
        if self.scene is None or self.vp is None:
            return Strip.blank(self.size.width, self.rich_style)
        vp = self.vp
        if (vp.cols, vp.rows) != (self.size.width, self.size.height):
            vp.resize(self.size.width, self.size.height)
        if self.overlays.splits:
            self._update_labels()
        key = (self.scene.version, self.scene.labels_version, vp.zoom, vp.cy, vp.cx, vp.cols,
               vp.rows, self.overlays, self.marks())
        if key != self._frame_key:
            self._lines = self.scene.render_lines(vp, self.overlays, self.marks())
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
        self.refresh()

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
        self.refresh()

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

    def status_text(self) -> str:
        """Cursor coordinates and values, zoom: the status line."""
        sc = self.scene
        if sc is None or self.vp is None:
            return ""
        y, x = self.cursor
        parts = [f"x {x} y {y}", f"value {sc.value_text(y, x)}"]
        if sc.mask is not None:
            parts.append(f"mask {int(sc.mask[y, x])}")
        if sc.prob is not None:
            parts.append(f"P {sc.prob[y, x] / 255:.2f}")
        parts.append(f"zoom {self.vp.zoom_label()}")
        if self.overlays.splits:
            self._update_labels()
            if self.splits_note:
                parts.append(self.splits_note)
        return "  ".join(parts)

    # -- mouse ------------------------------------------------------------------------------
    def on_mouse_down(self, event: events.MouseDown) -> None:
        if self.vp is None:
            return
        self.focus()
        px = self.vp.pixel_at(event.x, event.y)
        pan = not self.editable or event.button == 2 or event.ctrl
        self._drag = {"pan": pan, "start": (event.x, event.y), "c": (self.vp.cy, self.vp.cx),
                      "last": px, "erase": event.button == 3}
        self.capture_mouse()
        if px is not None:
            self.set_cursor(*px, follow=False)
            if not pan:
                self.post_message(self.Stroke([px], self._drag["erase"], "start"))
        event.stop()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        d = self._drag
        if d is None or self.vp is None:
            return
        if d["pan"]:
            s = self.vp.scale
            dx = (event.x - d["start"][0]) * self.vp.dot_w / s
            dy = (event.y - d["start"][1]) * self.vp.dot_h / s
            self.vp.cy, self.vp.cx = d["c"][0] - dy, d["c"][1] - dx
            self.vp.clamp()
            self._view_changed()
            return
        px = self.vp.pixel_at(event.x, event.y)
        if px is None or px == d["last"]:
            return
        pts = [px] if d["last"] is None else [d["last"], px]
        d["last"] = px
        self.set_cursor(*px, follow=False)
        self.post_message(self.Stroke(pts, d["erase"], "move"))

    def on_mouse_up(self, event: events.MouseUp) -> None:
        d, self._drag = self._drag, None
        self.release_mouse()
        if d is not None and not d["pan"]:
            self.post_message(self.Stroke([], d["erase"], "end"))

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self._scroll(event, 1)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self._scroll(event, -1)

    def _scroll(self, event, sign: int) -> None:
        if self.vp is None:
            return
        event.stop()
        if event.ctrl:
            px = self.vp.pixel_at(event.x, event.y)
            (self.vp.zoom_out if sign > 0 else self.vp.zoom_in)(px)
        else:
            step = 3 * self.vp.dot_h / self.vp.scale
            if event.shift:
                self.vp.pan(0, sign * step)
            else:
                self.vp.pan(sign * step, 0)
        self._view_changed()
