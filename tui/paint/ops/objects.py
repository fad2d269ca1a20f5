"""Object operations: on the object under a point or on every object (delete, add the
predicted one, the prediction in a box, grow and shrink, objects one side does not see)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage as ndi

from ....engine.project.scoring.objects import MIN_PART_PX, label
from .base import _BIG, _check_px, _object, _point, _pred, as_mask


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
