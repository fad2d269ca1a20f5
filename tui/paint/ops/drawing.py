"""Painting operations: a brush disk, a stroke along points, flood fill, filling holes."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage as ndi

from .base import _flood, _object, _point, as_mask


def stroke(mask, points: Sequence[tuple[int, int]], radius: int, value: bool = True
           ) -> np.ndarray:
    """Paint (``value`` True) or erase (False) a disk of ``radius`` along the polyline through
    ``points`` ((y, x) pairs; consecutive points joined by a straight line). Radius 0 is one
    pixel wide. Clipped at the image border; points may lie outside the image."""
    from skimage.draw import line
    from skimage.morphology import disk

    out = as_mask(mask)
    r = int(radius)
    if r < 0:
        raise ValueError(f"brush radius must be >= 0, got {radius}")
    pts = [(int(y), int(x)) for y, x in points]
    if not pts:
        return out
    ys, xs = [np.array([pts[0][0]])], [np.array([pts[0][1]])]
    for (ya, xa), (yb, xb) in zip(pts, pts[1:]):
        ly, lx = line(ya, xa, yb, xb)
        ys.append(ly)
        xs.append(lx)
    ys, xs = np.concatenate(ys), np.concatenate(xs)
    h, w = out.shape
    keep = (ys >= -r) & (ys < h + r) & (xs >= -r) & (xs < w + r)  # disks that reach the image
    ys, xs = ys[keep], xs[keep]
    if ys.size == 0:
        return out
    y0, x0 = ys.min() - r, xs.min() - r
    canvas = np.zeros((ys.max() + r + 1 - y0, xs.max() + r + 1 - x0), bool)
    canvas[ys - y0, xs - x0] = True
    if r > 0:
        canvas = ndi.binary_dilation(canvas, structure=disk(r))
    cy0, cx0 = max(0, y0), max(0, x0)
    cy1, cx1 = min(h, y0 + canvas.shape[0]), min(w, x0 + canvas.shape[1])
    if cy0 >= cy1 or cx0 >= cx1:
        return out
    part = canvas[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    out[cy0:cy1, cx0:cx1][part] = bool(value)
    return out


def brush(mask, y: int, x: int, radius: int, value: bool = True) -> np.ndarray:
    """Paint (or erase) a disk of ``radius`` centred at (y, x): the pixels with
    dy² + dx² <= radius² (radius 0: the pixel itself). Clipped at the border."""
    return stroke(mask, [(y, x)], radius, value)


def flood_fill(mask, y: int, x: int, value: bool = True) -> np.ndarray:
    """Set the 4-connected region of pixels equal to mask[y, x] that contains (y, x) to
    ``value`` (on background: fill the enclosed area; on an object with False: erase it)."""
    out = as_mask(mask)
    y, x = _point(out.shape, y, x)
    reg, win = _flood(out, y, x, 1)
    out[win][reg] = bool(value)
    return out


def fill_holes(mask, y: int | None = None, x: int | None = None) -> np.ndarray:
    """Fill holes (background enclosed by an object; 4-connected background that does not
    reach the image border).

    With no point: the holes of every object. On an object: that object's holes (an object
    inside one of them joins it). On a hole: that hole. On open background: unchanged."""
    out = as_mask(mask)
    if y is None or x is None:
        return ndi.binary_fill_holes(out)
    y, x = _point(out.shape, y, x)
    if out[y, x]:
        obj, win = _object(out, y, x, pad=1)
        out[win] |= ndi.binary_fill_holes(obj)
        return out
    reg, win = _flood(out, y, x, 1)
    h, w = out.shape
    at_border = ((win[0].start == 0 and reg[0].any()) or (win[0].stop == h and reg[-1].any())
                 or (win[1].start == 0 and reg[:, 0].any())
                 or (win[1].stop == w and reg[:, -1].any()))
    if not at_border:
        out[win] |= reg
    return out
