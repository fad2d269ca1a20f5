"""What every mask operation shares: argument checks (``as_mask``, points, px) and the
connected region under a point, found in a window that grows only as far as the region goes.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ....engine.project.scoring.objects import STRUCTURE

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


def _check_px(px) -> int:
    p = int(px)
    if p < 0:
        raise ValueError(f"px must be >= 0, got {px}")
    return p
