"""Split outlines for the viewer: the watershed split of touching objects
(engine/project/measure's ``split_labels``), worked out only for the objects in and around the
visible window, and after an edit only for the objects the edit touched. numpy / scipy only.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ...engine.project.scoring.objects import STRUCTURE
from .history import changed_box

Box = tuple[int, int, int, int]   # y0, y1, x0, x1 (end exclusive)


def split_settings(cfg) -> dict:
    """The watershed settings of the split outlines: ``[measure]`` min_distance and
    compactness of ``cfg`` (a project's ``Config``; None: the defaults, for a plain file)."""
    from ...engine.project.config import default_config

    m = (cfg or default_config()).measure
    return {"min_distance": m.min_distance, "compactness": m.compactness}


def _sl(b: Box) -> tuple[slice, slice]:
    return slice(b[0], b[1]), slice(b[2], b[3])


def _area(b: Box) -> int:
    return (b[1] - b[0]) * (b[3] - b[2])


def _inside(inner: Box, outer: Box) -> bool:
    return (outer[0] <= inner[0] and inner[1] <= outer[1] and outer[2] <= inner[2]
            and inner[3] <= outer[3])


def closed_box(mask: np.ndarray, box: Box, limit_px: int, other: np.ndarray | None = None
               ) -> Box | None:
    """``box`` grown until no object of ``mask`` (8-connected; of ``mask | other`` with
    ``other``) crosses its edge, so every object it touches lies wholly inside; None when
    that takes more than ``limit_px`` pixels."""
    h, w = mask.shape
    y0, y1, x0, x1 = box
    probe = 32      # how far around the box objects are followed in one round
    while True:
        if (y1 - y0) * (x1 - x0) > limit_px:
            return None
        py0, py1 = max(0, y0 - probe), min(h, y1 + probe)
        px0, px1 = max(0, x0 - probe), min(w, x1 + probe)
        sub = mask[py0:py1, px0:px1]
        if other is not None:
            sub = sub | other[py0:py1, px0:px1]
        lab, n = ndi.label(sub, structure=STRUCTURE)
        if n == 0:
            return y0, y1, x0, x1
        inner = np.zeros(lab.shape, bool)
        inner[y0 - py0:y1 - py0, x0 - px0:x1 - px0] = True
        crossing = np.intersect1d(lab[inner], lab[~inner])
        crossing = crossing[crossing > 0]
        if crossing.size == 0:
            return y0, y1, x0, x1
        # take in the crossing objects as far as they are seen (a next round follows those
        # that run on past the probe)
        ys, xs = np.nonzero(np.isin(lab, crossing))
        y0, y1 = min(y0, py0 + int(ys.min())), max(y1, py0 + int(ys.max()) + 1)
        x0, x1 = min(x0, px0 + int(xs.min())), max(x1, px0 + int(xs.max()) + 1)


class SplitLabels:
    """The split labels the viewer draws, for a window of the image.

    ``get(mask, window)`` gives (labels, (y0, x0)): int32 labels of a box holding the window
    (0: background; neighbours with different labels are the split lines), or None when the
    objects around the window take more than ``limit_px`` pixels (zoomed far out on a large
    image: zoom in). Kept between calls: a window inside the box is served as it is, and an
    edit re-splits only the objects it touched (a few milliseconds for one object). The split
    itself is ``split_fn(mask, **settings)`` on the box: a box holds whole objects, so each
    is cut into the pieces the whole image's split gives it; where a line runs between two
    basins of equal depth can differ by a pixel (skimage's watershed breaks such ties in an
    order that depends on the whole array)."""

    def __init__(self, split_fn, *, limit_px: int = 600_000, **settings) -> None:
        self.split_fn = split_fn
        self.settings = settings
        self.limit_px = int(limit_px)
        self.mask: np.ndarray | None = None
        self.box: Box | None = None
        self.labels: np.ndarray | None = None
        self.generation = 0
        self._failed: Box | None = None

    def _split(self, mask: np.ndarray, box: Box) -> np.ndarray:
        """The split of the objects in ``box`` (with a background margin of a pixel, as the
        whole image has around them), cropped to the box."""
        h, w = mask.shape
        y0, y1, x0, x1 = box
        py0, py1, px0, px1 = max(0, y0 - 1), min(h, y1 + 1), max(0, x0 - 1), min(w, x1 + 1)
        lab = self.split_fn(mask[py0:py1, px0:px1], **self.settings)
        return np.ascontiguousarray(lab[y0 - py0:y1 - py0, x0 - px0:x1 - px0], np.int32)

    def _build(self, mask: np.ndarray, window: Box) -> bool:
        h, w = mask.shape
        y0, y1, x0, x1 = window
        my, mx = max(8, (y1 - y0) // 2), max(8, (x1 - x0) // 2)
        want = (max(0, y0 - my), min(h, y1 + my), max(0, x0 - mx), min(w, x1 + mx))
        box = closed_box(mask, want, self.limit_px)
        if box is None:       # the margin is a luxury: try the window itself
            box = closed_box(mask, (y0, y1, x0, x1), self.limit_px)
        self.mask = mask
        if box is None:
            self.box = self.labels = None
            return False
        self.box, self.labels = box, self._split(mask, box)
        return True

    def _patch(self, mask: np.ndarray) -> bool:
        """Re-split what changed between the kept mask and ``mask``; False when the change
        reaches outside the kept box (then it is built again)."""
        changed = changed_box(self.mask, mask)
        if changed is None:
            self.mask = mask
            return True
        b = (changed[0].start, changed[0].stop, changed[1].start, changed[1].stop)
        r = closed_box(mask, b, self.limit_px, other=self.mask)
        if r is None or not _inside(r, self.box):
            return False
        new = self._split(mask, r)
        base = int(self.labels.max()) + 1
        by0, bx0 = self.box[0], self.box[2]
        part = self.labels[r[0] - by0:r[1] - by0, r[2] - bx0:r[3] - bx0]
        # the box r holds whole objects (of the old and the new mask): all of it is redone
        part[...] = np.where(new > 0, new + base, 0)
        self.mask = mask
        return True

    def get(self, mask: np.ndarray, window: tuple[int, int, int, int]):
        """Labels for ``window`` (y0, x0, y1, x1, end exclusive): (labels, (y0, x0)) or
        None. ``generation`` counts the changes to what it gives (the labels are patched in
        place)."""
        win = (window[0], window[2], window[1], window[3])
        if self.labels is not None and _inside(win, self.box):
            if mask is self.mask:
                return self.labels, (self.box[0], self.box[2])
            if self._patch(mask):
                self.generation += 1
                return self.labels, (self.box[0], self.box[2])
        if _area(win) > self.limit_px or self._failed == win:
            # too big (the window, or the objects around it when last tried here): not worked
            # out again, edits or not, until the view moves
            self._failed = win
            return None
        self.generation += 1
        if self._build(mask, win):
            self._failed = None
            return self.labels, (self.box[0], self.box[2])
        self._failed = win
        return None
