"""What the viewer draws: the pixels (``Scene``), the layers shown (``Layers``), the marks
(``Marks``: cursor, brush, box) and the half-cell lines (``StripCache``).

``Scene.render(viewport, layers, marks)`` samples **only the visible window** (one index per
dot, never the whole image), so a 4096² image costs what a 128² one does. Zoomed out below
1:1 it samples a box-filtered pyramid of the image (one level per power of two, built on first
use and kept: that is the per-zoom cache). Outlines are drawn at display resolution (one dot
wide at any zoom). No widget here: the benchmark renders without a terminal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rich.color import Color, ColorTriplet, ColorType
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from .viewport import Viewport

# P(object) > 0.5 on the 8-bit map: engine/project/scoring/probs.py's PRED_CUT (the one cut
# every reader of a stored map uses). Not imported: that package pulls scipy, ~0.4 s the app's
# preview does not need; tests/paint/test_document.py keeps the two equal.
PRED_CUT = 127

DEFAULT_COLORS = {
    "seg-mask": (0, 230, 0), "seg-pred": (255, 0, 255), "seg-uncertain": (255, 160, 0),
    "split": (0, 200, 255), "cursor": (255, 255, 0), "cursor-erase": (255, 60, 60),
    "brush": (200, 200, 80), "box": (0, 255, 255), "minimap-frame": (255, 255, 255),
    "minimap-border": (110, 110, 110), "outside": (20, 20, 20),
}


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
        self.pred = None if prob is None else prob > PRED_CUT
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

