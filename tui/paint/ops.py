"""Mask editing operations: plain functions on numpy arrays (no Textual, no torch).

The painter's keys, `segtriage fix` and bench/fix_effort.py all call exactly these.

Conventions
- A mask is a 2-D array, HxW: bool, or any numbers where non-zero is foreground. Every
  operation returns a NEW bool array of the same shape and never changes its input.
- A prediction (``pred``) is a mask of the same shape: the model's P(object) > 0.5.
- An *object* is a connected component with 8-connectivity, the same as the scorer's
  (engine/objects.py). Background regions (flood fill of background, holes) are 4-connected,
  the complement of 8-connected objects: a diagonal chain of object pixels closes a hole.
- Coordinates are (y, x) = (row, column). An operation that acts on "the thing under (y, x)"
  raises ``OutsideImage`` (a ValueError naming the point and the image size) for a point
  outside the image. The brush and strokes are clipped instead: a disk whose centre lies
  outside paints the part of it that overlaps the image (a mouse drag may leave the picture),
  and boxes are clipped to the image (a box entirely outside changes nothing).
- Grow and shrink go one 4-neighbour step per pixel (``px`` steps: a diamond of radius px),
  for one object or all alike. Grow never lets an object touch, and so merge with, another
  object; shrink takes only the object's own pixels. An object cut by the image frame
  continues straight beyond it: shrinking does not eat it from the frame's side. Grow then
  shrink (a closing) belongs in one ``grow_shrink`` call: it remembers what grew up to the
  frame from inside and takes it back; two calls cannot (the pixels are the same as those of
  an object the frame cuts), so they glue an object that was near the frame to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import ndimage as ndi

from ...engine.project.scoring.objects import MIN_PART_PX, STRUCTURE
from .disagree import Region, disagreements  # noqa: F401  (ops.disagreements, ops.Region)
from .history import History  # noqa: F401  (undo and redo, in history.py; ops.History)

CROSS = ndi.generate_binary_structure(2, 1)  # 4-connectivity
_BIG = np.iinfo(np.int32).max


class OutsideImage(ValueError):
    """A point operation was given coordinates outside the image."""


# ---------------------------------------------------------------------------- helpers

def as_mask(mask, name: str = "mask") -> np.ndarray:
    """``mask`` as a new 2-D bool array (a copy: the caller's array is never shared)."""
    a = np.asarray(mask)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (H, W), got shape {a.shape}")
    return a.astype(bool, copy=True) if a.dtype == bool else (a != 0)


def _pred(pred, shape: tuple[int, int]) -> np.ndarray:
    p = np.asarray(pred)
    if p.shape != shape:
        raise ValueError(f"prediction shape {p.shape} differs from the mask's {shape}")
    return p if p.dtype == bool else p != 0


def _point(shape: tuple[int, int], y, x) -> tuple[int, int]:
    yi, xi = int(y), int(x)
    if not (0 <= yi < shape[0] and 0 <= xi < shape[1]):
        raise OutsideImage(f"point (y={yi}, x={xi}) is outside the {shape[0]} x {shape[1]} "
                           "image (y 0.." f"{shape[0] - 1}, x 0..{shape[1] - 1})")
    return yi, xi


def _flood(m: np.ndarray, y: int, x: int, connectivity: int) -> tuple[np.ndarray, tuple]:
    """The connected region of pixels equal to m[y, x] containing (y, x), as (region within
    a window, the window's slices). The window starts small and grows only while the region
    reaches its edge, so an object of a 4096² image costs what its surroundings cost."""
    h, w = m.shape
    structure = STRUCTURE if connectivity == 2 else CROSS
    r = 32
    while True:
        y0, y1, x0, x1 = max(0, y - r), min(h, y + r + 1), max(0, x - r), min(w, x + r + 1)
        sub = m[y0:y1, x0:x1]
        same = sub if sub[y - y0, x - x0] else ~sub
        lab, _n = ndi.label(same, structure=structure)
        reg = lab == lab[y - y0, x - x0]
        full = (y0 == 0 and y1 == h and x0 == 0 and x1 == w)
        if full or not ((y0 > 0 and reg[0].any()) or (y1 < h and reg[-1].any())
                        or (x0 > 0 and reg[:, 0].any()) or (x1 < w and reg[:, -1].any())):
            return reg, (slice(y0, y1), slice(x0, x1))
        r *= 4


def _bbox_window(reg: np.ndarray, win: tuple, shape: tuple[int, int], pad: int) -> tuple:
    """The slices of ``reg``'s bounding box (within window ``win``) grown by ``pad``,
    clipped to the image."""
    rows, cols = np.flatnonzero(reg.any(1)), np.flatnonzero(reg.any(0))
    y0 = win[0].start + rows[0] - pad
    y1 = win[0].start + rows[-1] + 1 + pad
    x0 = win[1].start + cols[0] - pad
    x1 = win[1].start + cols[-1] + 1 + pad
    return (slice(max(0, y0), min(shape[0], y1)), slice(max(0, x0), min(shape[1], x1)))


def _object(m: np.ndarray, y: int, x: int, pad: int = 0):
    """(object pixels within a window, window) of the object under (y, x), the window being
    the object's bounding box + ``pad``; None when (y, x) is background."""
    if not m[y, x]:
        return None
    reg, win = _flood(m, y, x, 2)
    big = _bbox_window(reg, win, m.shape, pad)
    out = np.zeros((big[0].stop - big[0].start, big[1].stop - big[1].start), bool)
    # the region's window holds the bounding box: copy the part the two windows share
    gy0, gy1 = max(win[0].start, big[0].start), min(win[0].stop, big[0].stop)
    gx0, gx1 = max(win[1].start, big[1].start), min(win[1].stop, big[1].stop)
    out[gy0 - big[0].start:gy1 - big[0].start, gx0 - big[1].start:gx1 - big[1].start] = \
        reg[gy0 - win[0].start:gy1 - win[0].start, gx0 - win[1].start:gx1 - win[1].start]
    return out, big


def _shifted_max(a: np.ndarray, fill) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the max and the min of its four 4-neighbours in ``a`` (``fill`` beyond the
    border)."""
    p = np.pad(a, 1, constant_values=fill)
    nb = (p[:-2, 1:-1], p[2:, 1:-1], p[1:-1, :-2], p[1:-1, 2:])
    return np.maximum.reduce(nb), np.minimum.reduce(nb)


def _grow_step(lab: np.ndarray, growing: np.ndarray) -> np.ndarray:
    """One 4-neighbour step of growth of the labels in ``growing`` (label ids) into the
    background, never letting two labels touch (8-neighbourhood). Returns the new labels."""
    fg = lab > 0
    grow_lab = np.where(np.isin(lab, growing), lab, 0)
    nz = np.where(grow_lab > 0, grow_lab, _BIG)
    cmax, _ = _shifted_max(grow_lab, 0)
    _, cmin = _shifted_max(nz, _BIG)
    # a background pixel with exactly one growing label among its 4-neighbours ...
    cand = ~fg & (cmax > 0) & (cmax == cmin)
    # ... and no other label anywhere in its 3x3 neighbourhood
    nzall = np.where(fg, lab, _BIG)
    smax = ndi.maximum_filter(lab, size=3, mode="constant", cval=0)
    smin = ndi.minimum_filter(nzall, size=3, mode="constant", cval=_BIG)
    cand &= (smax == cmax) & (smin == cmax)
    new = np.where(cand, cmax, lab)
    # two new pixels of different labels may have become neighbours: drop both
    nzn = np.where(new > 0, new, _BIG)
    nmax = ndi.maximum_filter(new, size=3, mode="constant", cval=0)
    nmin = ndi.minimum_filter(nzn, size=3, mode="constant", cval=_BIG)
    clash = cand & ((nmax != cmax) | (nmin != cmax))
    new[clash] = 0
    return new


def _check_px(px) -> int:
    p = int(px)
    if p < 0:
        raise ValueError(f"px must be >= 0, got {px}")
    return p


# ---------------------------------------------------------------------------- painting

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


# ---------------------------------------------------------------------------- objects

def object_at(mask, y: int, x: int) -> np.ndarray | None:
    """The pixels (HxW bool) of the object under (y, x); None on background."""
    m = as_mask(mask)
    y, x = _point(m.shape, y, x)
    found = _object(m, y, x)
    if found is None:
        return None
    obj, win = found
    out = np.zeros_like(m)
    out[win] = obj
    return out


def delete_object(mask, y: int, x: int) -> np.ndarray:
    """Remove the object under (y, x) (objects touching it, even diagonally, are part of it);
    unchanged on background."""
    out = as_mask(mask)
    y, x = _point(out.shape, y, x)
    found = _object(out, y, x)
    if found is not None:
        obj, win = found
        out[win] &= ~obj
    return out


def add_predicted_object(mask, pred, y: int, x: int) -> np.ndarray:
    """Add the predicted object under (y, x) to the mask (a union: what the mask has there
    stays); unchanged where the prediction has no object."""
    out = as_mask(mask)
    p = _pred(pred, out.shape)
    y, x = _point(out.shape, y, x)
    found = _object(p, y, x)
    if found is not None:
        obj, win = found
        out[win] |= obj
    return out


def take_prediction_in_box(mask, pred, y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
    """Replace the mask by the prediction inside the box rows y0..y1-1, columns x0..x1-1
    (corners in either order; clipped to the image; an empty box changes nothing)."""
    out = as_mask(mask)
    p = _pred(pred, out.shape)
    ya, yb = sorted((int(y0), int(y1)))
    xa, xb = sorted((int(x0), int(x1)))
    h, w = out.shape
    ya, yb, xa, xb = max(0, ya), min(h, yb), max(0, xa), min(w, xb)
    if ya < yb and xa < xb:
        out[ya:yb, xa:xb] = p[ya:yb, xa:xb]
    return out


def _world(lab: np.ndarray, win: tuple, shape: tuple[int, int], depth: int):
    """``lab`` (labels of window ``win``) with a strip of ``depth`` pixels added beyond every
    side where the window reaches the image frame, each strip pixel a copy of the frame pixel
    it faces (an object cut by the frame continues straight beyond it). Returns (labels,
    slices of the window inside them)."""
    h, w = shape
    pads = ((depth if win[0].start == 0 else 0, depth if win[0].stop == h else 0),
            (depth if win[1].start == 0 else 0, depth if win[1].stop == w else 0))
    big = np.pad(lab, pads, mode="edge")
    inner = (slice(pads[0][0], pads[0][0] + lab.shape[0]),
             slice(pads[1][0], pads[1][0] + lab.shape[1]))
    return big, inner


def _erode_step(lab: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """One 4-neighbour step of erosion of the labels in ``ids``: a pixel of one of them goes
    when a 4-neighbour holds another label or background (beyond the array: the same)."""
    p = np.pad(lab, 1, mode="edge")
    nb = (p[:-2, 1:-1], p[2:, 1:-1], p[1:-1, :-2], p[1:-1, 2:])
    keep = (nb[0] == lab) & (nb[1] == lab) & (nb[2] == lab) & (nb[3] == lab)
    return np.where(np.isin(lab, ids) & ~keep, 0, lab)


def grow_shrink(mask, steps: Sequence[int], y: int | None = None, x: int | None = None
                ) -> np.ndarray:
    """Grow (a positive step: that many pixels) and shrink (negative) the object under
    (y, x), or every object when y is None, in the order given, in one go: ``[2, -2]`` is
    grow 2 then shrink 2 (a closing), ``[-1, 1]`` an opening. Unchanged on background.

    Grow goes one 4-neighbour step per pixel into the background and never lets an object
    touch (and so merge with) another one; shrink takes only the objects' own pixels. The
    image frame: an object cut by it continues straight beyond it, so shrinking does not eat
    it from the frame's side, and growing runs along the frame. Done in one go, the steps
    also remember what grew up to the frame from inside (it ends there: a later shrink
    takes it back), so growing then shrinking gives back the object also next to the frame.
    ``grow`` and ``shrink`` are this with one step; as two calls, the second cannot tell
    an object grown up to the frame from one the frame cuts (the same pixels) and treats it
    as cut."""
    out = as_mask(mask)
    seq = [int(s) for s in steps if int(s)]
    if not seq:
        return out
    k = sum(abs(s) for s in seq)
    if y is None or x is None:
        if not out.any():
            return out
        from ...engine.project.scoring.objects import label

        rows, cols = np.flatnonzero(out.any(1)), np.flatnonzero(out.any(0))
        h, w = out.shape
        win = (slice(max(0, rows[0] - k - 1), min(h, rows[-1] + k + 2)),
               slice(max(0, cols[0] - k - 1), min(w, cols[-1] + k + 2)))
        lab, n = label(out[win])
        ids = np.arange(1, n + 1)
    else:
        y, x = _point(out.shape, y, x)
        found = _object(out, y, x, pad=k + 2)
        if found is None:
            return out
        obj, win = found
        lab = np.where(obj, 1, np.where(out[win], 2, 0)).astype(np.int32)
        ids = np.array([1])
    world, inner = _world(lab, win, out.shape, k + 1)
    for s in seq:
        for _ in range(abs(s)):
            if s > 0:
                # inside the image an object grows from inside pixels only (never back in
                # from beyond the frame); beyond it from anything next to it
                here = _grow_step(world[inner], ids)
                world = _grow_step(world, ids)
                world[inner] = here
            else:
                world = _erode_step(world, ids)
    out[win] = world[inner] > 0
    return out


def grow(mask, y: int | None = None, x: int | None = None, px: int = 1) -> np.ndarray:
    """Grow the object under (y, x), or every object when y is None, by ``px`` 4-neighbour
    steps into the background. An object never grows into touching another one (it stops a
    pixel short), so objects never merge. Unchanged on background. (``grow_shrink``.)"""
    px = _check_px(px)
    return grow_shrink(mask, [px], y, x)


def shrink(mask, y: int | None = None, x: int | None = None, px: int = 1) -> np.ndarray:
    """Shrink the object under (y, x), or every object when y is None, by ``px`` 4-neighbour
    steps (an erosion; an object cut by the image frame is not eaten from the frame's side).
    Only the object's own pixels go; a thin object may split or vanish. Unchanged on
    background. (``grow_shrink``.)"""
    px = _check_px(px)
    return grow_shrink(mask, [-px], y, x)


def add_unseen_predicted(mask, pred, min_px: int = MIN_PART_PX) -> np.ndarray:
    """Add every predicted object (of at least ``min_px`` pixels) that no mask pixel
    overlaps: the objects the mask missed."""
    from ...engine.project.scoring.objects import label

    out = as_mask(mask)
    p = _pred(pred, out.shape)
    lp, n = label(p)
    if n == 0:
        return out
    area = np.bincount(lp.ravel(), minlength=n + 1)
    seen = np.zeros(n + 1, bool)
    seen[np.unique(lp[out])] = True
    take = ~seen & (area >= min_px)
    take[0] = False
    out |= take[lp]
    return out


def drop_unseen(mask, pred, min_overlap: float = 0.0) -> np.ndarray:
    """Remove every mask object of which the prediction covers at most ``min_overlap`` (a
    share, 0..1) of its pixels; by default the objects the prediction does not touch at all."""
    from ...engine.project.scoring.objects import label

    out = as_mask(mask)
    p = _pred(pred, out.shape)
    if not 0.0 <= float(min_overlap) < 1.0:
        raise ValueError(f"min_overlap must be a share in [0, 1), got {min_overlap}")
    lm, n = label(out)
    if n == 0:
        return out
    area = np.bincount(lm.ravel(), minlength=n + 1).astype(float)
    covered = np.bincount(lm[p], minlength=n + 1).astype(float)
    drop = covered <= float(min_overlap) * area
    drop[0] = False
    out &= ~drop[lm]
    return out


# ---------------------------------------------------------------------------- registry

@dataclass(frozen=True)
class Op:
    """One operation for menus, help and the benchmark's oracle.

    at: what position it takes: "point" (y, x required), "object" (y, x or None for all
    objects), "points" (a stroke), "box" (y0, x0, y1, x1) or "none".
    pred: it needs the prediction (passed right after the mask). brush: a painting tool."""
    name: str
    func: Callable[..., np.ndarray]
    description: str
    at: str
    pred: bool = False
    brush: bool = False


OPS: dict[str, Op] = {op.name: op for op in (
    Op("brush", brush, "paint (or erase) a disk at the cursor", "point", brush=True),
    Op("stroke", stroke, "paint (or erase) along a line of points", "points", brush=True),
    Op("flood_fill", flood_fill, "fill the 4-connected area of equal value", "point"),
    Op("fill_holes", fill_holes, "fill the holes of the object (or of all objects)", "object"),
    Op("delete_object", delete_object, "delete the object under the cursor", "point"),
    Op("add_predicted_object", add_predicted_object,
       "add the predicted object under the cursor", "point", pred=True),
    Op("take_prediction_in_box", take_prediction_in_box,
       "replace the mask by the prediction inside a box", "box", pred=True),
    Op("grow", grow, "grow the object (or all objects) by px pixels", "object"),
    Op("shrink", shrink, "shrink the object (or all objects) by px pixels", "object"),
    Op("add_unseen_predicted", add_unseen_predicted,
       "add every predicted object the mask lacks", "none", pred=True),
    Op("drop_unseen", drop_unseen, "remove every mask object the model does not see", "none",
       pred=True),
)}
