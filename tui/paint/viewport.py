"""The viewer's geometry: which image pixels a grid of terminal cells shows, at what zoom.

The screen is a grid of *dots*: ``dot_w`` × ``dot_h`` dots per cell (half-cell blocks: 1 × 2,
so one cell shows two image rows at 1:1; kitty/sixel: the cell's size in pixels). ``zoom`` is
cells (columns) per image pixel; an image pixel covers ``zoom * dot_w`` dots in both
directions. Zoom levels: fit-to-window, then powers of two up to ``ZOOM_MAX`` (16 cells per
pixel), never below fit. Pan is clamped so the image stays in view (an image smaller than the
view is centred).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ZOOM_MAX = 16.0


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

