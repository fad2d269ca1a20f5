"""Where the model and the mask disagree: ``disagreements`` (one mask, from scratch) and
``Disagreements`` (the painter's: kept up to date edit by edit, redoing only the objects an
edit touched). numpy / scipy only; ``ops.disagreements`` and ``ops.Region`` are these.

A region is a predicted object the mask has nothing of ("missed"), a mask object the
prediction has nothing of ("extra"), or an 8-connected piece of the rest of mask XOR
prediction ("boundary"; with P(object), only where the model is confident). Objects are
8-connected, as the scorer's (engine/project/scoring/objects.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ...engine.project.scoring.objects import MIN_SHAPE_PX, STRUCTURE
from .history import changed_box


@dataclass(frozen=True)
class Region:
    """A place where the model and the mask disagree.

    kind: "missed" (a predicted object the mask has nothing of), "extra" (a mask object the
    prediction has nothing of) or "boundary" (pixels of a shared object on which they differ).
    y0, x0, y1, x1: bounding box (inclusive-exclusive); pixels: its size; (cy, cx): the
    region's pixel nearest its centroid (always on the region: a cursor put there acts on it).
    """
    kind: str
    y0: int
    x0: int
    y1: int
    x1: int
    pixels: int
    cy: int
    cx: int


def _bool(a, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (H, W), got shape {a.shape}")
    return a if a.dtype == bool else a != 0


def _confident(prob, shape, confident: float) -> np.ndarray | None:
    """Where max(P, 1 - P) >= ``confident`` (None without P). 8-bit P is compared as integers
    (q/255 >= c exactly when q >= ceil(255 c)), never turned into a float image."""
    if prob is None:
        return None
    q = np.asarray(prob)
    if q.shape != shape:
        raise ValueError(f"probability shape {q.shape} differs from the mask's {shape}")
    if q.dtype == np.uint8:
        hi = int(np.ceil(255 * confident - 1e-9))
        return (q >= hi) | (q <= 255 - hi)
    q = q.astype(np.float64, copy=False)
    return np.maximum(q, 1 - q) >= confident


def _region(kind: str, lab: np.ndarray, sl: tuple, i: int, oy: int = 0, ox: int = 0
            ) -> Region:
    part = lab[sl] == i
    rr, cc = np.nonzero(part)
    j = int(np.argmin((rr - rr.mean()) ** 2 + (cc - cc.mean()) ** 2))
    y0, x0 = sl[0].start + oy, sl[1].start + ox
    return Region(kind, y0, x0, sl[0].stop + oy, sl[1].stop + ox, int(rr.size),
                  int(rr[j]) + y0, int(cc[j]) + x0)


def _order(regions) -> list[Region]:
    return sorted(regions, key=lambda r: (-r.pixels, r.y0, r.x0, r.kind))


def _label(a: np.ndarray) -> tuple[np.ndarray, int]:
    lab, n = ndi.label(a, structure=STRUCTURE)
    return lab.astype(np.int32, copy=False), int(n)


def disagreements(mask, pred, prob=None, min_px: int = MIN_SHAPE_PX, *,
                  confident: float = 0.75) -> list[Region]:
    """Where the model (``pred``) and the mask disagree, most pixels first.

    Missed and extra objects are whole objects with no overlap at all with the other side;
    the rest of mask XOR prediction, split into 8-connected pieces, gives the boundary
    regions. With ``prob`` (P(object), float in [0, 1] or 8-bit 0..255), boundary pixels the
    model is not confident about (max(P, 1-P) < ``confident``) do not count. Regions smaller
    than ``min_px`` pixels are left out."""
    m = _bool(mask, "mask")
    p = _bool(pred, "prediction")
    if p.shape != m.shape:
        raise ValueError(f"prediction shape {p.shape} differs from the mask's {m.shape}")
    index = Disagreements(p, prob, min_px, confident=confident)
    return index.regions(m)


class Disagreements:
    """The disagreements of one prediction with a mask that changes edit by edit.

    ``regions(mask)`` gives what ``disagreements`` gives. The first call labels everything;
    later calls find the box the mask changed in since the previous one and redo only the
    mask objects, predicted objects and boundary pieces that reach into it (the window grows
    until it holds all of them), so an edit of one object costs what that object costs,
    whatever the image size. Labels of the mask and of the boundary pieces are kept between
    calls (two int32 images)."""

    def __init__(self, pred, prob=None, min_px: int = MIN_SHAPE_PX, *,
                 confident: float = 0.75) -> None:
        self.pred = _bool(pred, "prediction")
        self.shape = self.pred.shape
        self.conf = _confident(prob, self.shape, confident)
        self.min_px = int(min_px)
        self.lp, n_p = _label(self.pred)
        self.p_slices = ndi.find_objects(self.lp)
        self.p_seen = np.zeros(n_p + 1, bool)
        self.mask: np.ndarray | None = None
        self._missed: dict[int, Region] = {}
        self._extra: dict[int, Region] = {}
        self._boundary: dict[int, Region] = {}

    # -- from scratch --------------------------------------------------------------------------
    def _build(self, m: np.ndarray) -> None:
        p = self.pred
        self.lm, n_m = _label(m)
        self.m_slices = {i + 1: s for i, s in enumerate(ndi.find_objects(self.lm)) if s}
        self.next_m = n_m + 1
        self.p_seen[:] = False
        self.p_seen[self.lp[m]] = True
        self.p_seen[0] = True
        self.m_seen = np.zeros(n_m + 1, bool)
        self.m_seen[self.lm[p]] = True
        self.m_seen[0] = True
        self._missed = {i: _region("missed", self.lp, s, i)
                        for i, s in enumerate(self.p_slices, 1)
                        if s is not None and not self.p_seen[i] and self._big(self.lp, s, i)}
        self._extra = {i: _region("extra", self.lm, s, i) for i, s in self.m_slices.items()
                       if not self.m_seen[i] and self._big(self.lm, s, i)}
        d = self._diff(m, (slice(0, self.shape[0]), slice(0, self.shape[1])))
        self.ld, n_d = _label(d)
        self.d_slices = {i + 1: s for i, s in enumerate(ndi.find_objects(self.ld)) if s}
        self.next_d = n_d + 1
        self._boundary = {i: _region("boundary", self.ld, s, i)
                          for i, s in self.d_slices.items() if self._big(self.ld, s, i)}

    def _big(self, lab, sl, i) -> bool:
        if self.min_px <= 1:
            return True
        part = lab[sl]
        return (sl[0].stop - sl[0].start) * (sl[1].stop - sl[1].start) >= self.min_px and \
            int(np.count_nonzero(part == i)) >= self.min_px

    def _diff(self, m: np.ndarray, w: tuple) -> np.ndarray:
        """Boundary pixels (mask XOR prediction, on objects both sides have) in window w."""
        d = m[w] ^ self.pred[w]
        ys, xs = np.nonzero(d)
        keep = self.p_seen[self.lp[w][ys, xs]] & self.m_seen[self.lm[w][ys, xs]]
        if self.conf is not None:
            keep &= self.conf[w][ys, xs]
        d[ys[~keep], xs[~keep]] = False
        return d

    # -- edit by edit --------------------------------------------------------------------------
    def _grow(self, box, more) -> tuple:
        y0, y1, x0, x1 = box
        for s in more:
            y0, y1 = min(y0, s[0].start), max(y1, s[0].stop)
            x0, x1 = min(x0, s[1].start), max(x1, s[1].stop)
        return y0, y1, x0, x1

    def _pad(self, box, k=1) -> tuple:
        h, w = self.shape
        y0, y1, x0, x1 = box
        return max(0, y0 - k), min(h, y1 + k), max(0, x0 - k), min(w, x1 + k)

    @staticmethod
    def _sl(box) -> tuple:
        return slice(box[0], box[1]), slice(box[2], box[3])

    def _update(self, m0: np.ndarray, m1: np.ndarray, changed: tuple) -> None:
        box = (changed[0].start, changed[0].stop, changed[1].start, changed[1].stop)
        # mask objects: the old ones in the changed box, and whatever the new ones join
        old = set(np.unique(self.lm[self._sl(box)]).tolist()) - {0}
        while True:
            win = self._pad(self._grow(box, (self.m_slices[i] for i in old)))
            w = self._sl(win)
            lab, _n = _label(m1[w])
            seed = np.zeros(lab.shape, bool)
            cy, cx = changed[0].start - win[0], changed[1].start - win[2]
            seed[cy:cy + changed[0].stop - changed[0].start,
                 cx:cx + changed[1].stop - changed[1].start] = True
            seed |= np.isin(self.lm[w], list(old)) if old else False
            new = set(np.unique(lab[seed]).tolist()) - {0}
            # a new object may have joined old ones (inside the window, or reaching its edge:
            # then they run on outside it)
            more = set(np.unique(self.lm[w][np.isin(lab, list(new))]).tolist()) - {0} - old
            if not more:
                break
            old |= more
        for i in old:
            s = self.m_slices.pop(i)
            part = self.lm[s]
            part[part == i] = 0
            self._extra.pop(i, None)
        new_ids = []
        for c in sorted(new):
            i = self.next_m
            self.next_m += 1
            here = lab == c
            self.lm[w][here] = i
            ys, xs = np.nonzero(here)
            self.m_slices[i] = (slice(win[0] + int(ys.min()), win[0] + int(ys.max()) + 1),
                                slice(win[2] + int(xs.min()), win[2] + int(xs.max()) + 1))
            new_ids.append(i)
        if self.next_m > self.m_seen.size:
            self.m_seen = np.concatenate([self.m_seen,
                                          np.zeros(max(self.next_m, 2 * self.m_seen.size)
                                                   - self.m_seen.size, bool)])
        for i in new_ids:
            s = self.m_slices[i]
            self.m_seen[i] = bool((self.pred[s] & (self.lm[s] == i)).any())
            if not self.m_seen[i] and self._big(self.lm, s, i):
                self._extra[i] = _region("extra", self.lm, s, i)
        # predicted objects the change reaches: seen or not
        preds = set(np.unique(self.lp[self._sl(box)]).tolist()) - {0}
        for i in preds:
            s = self.p_slices[i - 1]
            self.p_seen[i] = bool((m1[s] & (self.lp[s] == i)).any())
            self._missed.pop(i, None)
            if not self.p_seen[i] and self._big(self.lp, s, i):
                self._missed[i] = _region("missed", self.lp, s, i)
        # boundary pieces: everything they can change in, then the pieces reaching into that
        area = self._grow(box, [self.m_slices[i] for i in new_ids]
                          + [self.p_slices[i - 1] for i in preds])
        area = self._grow(area, [self._sl(win)])
        while True:
            w = self._sl(area)
            olds = set(np.unique(self.ld[w]).tolist()) - {0}
            grown = self._grow(area, (self.d_slices[i] for i in olds))
            big = self._pad(grown)
            d = self._diff(m1, self._sl(big))
            lab, _n = _label(d)
            inner = np.zeros(d.shape, bool)
            inner[grown[0] - big[0]:grown[1] - big[0], grown[2] - big[2]:grown[3] - big[2]] = 1
            cross = set(np.unique(lab[inner]).tolist()) - {0}
            out = np.isin(lab, list(cross)) & ~inner
            if grown == area and not out.any():
                break
            if out.any():
                ys, xs = np.nonzero(out)
                grown = (min(grown[0], big[0] + int(ys.min())),
                         max(grown[1], big[0] + int(ys.max()) + 1),
                         min(grown[2], big[2] + int(xs.min())),
                         max(grown[3], big[2] + int(xs.max()) + 1))
            area = grown
        w = self._sl(area)
        for i in olds:
            s = self.d_slices.pop(i)
            part = self.ld[s]
            part[part == i] = 0
            self._boundary.pop(i, None)
        sub = lab[area[0] - big[0]:area[1] - big[0], area[2] - big[2]:area[3] - big[2]]
        for c, s in enumerate(ndi.find_objects(sub), 1):
            if s is None:
                continue
            i = self.next_d
            self.next_d += 1
            part = self.ld[w][s]
            part[sub[s] == c] = i
            gs = (slice(area[0] + s[0].start, area[0] + s[0].stop),
                  slice(area[2] + s[1].start, area[2] + s[1].stop))
            self.d_slices[i] = gs
            if self._big(self.ld, gs, i):
                self._boundary[i] = _region("boundary", self.ld, gs, i)

    def regions(self, mask) -> list[Region]:
        """The disagreements of ``mask`` with the prediction, most pixels first."""
        m = _bool(mask, "mask")
        if m.shape != self.shape:
            raise ValueError(f"prediction shape {self.shape} differs from the mask's "
                             f"{m.shape}")
        if self.mask is None:
            self._build(m)
        elif m is not self.mask:
            changed = changed_box(self.mask, m)
            if changed is not None:
                self._update(self.mask, m, changed)
        self.mask = m if not m.flags.writeable else m.copy()
        return _order([*self._missed.values(), *self._extra.values(),
                       *self._boundary.values()])
