"""``History``: the painter's undo and redo without limit, one step per edit, each step only
the box of pixels the edit changed (no Textual, numpy only)."""

from __future__ import annotations

import weakref
import zlib

import numpy as np


def _as_bool(mask, name: str = "mask") -> np.ndarray:
    a = np.asarray(mask)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (H, W), got shape {a.shape}")
    return a if a.dtype == bool else a != 0


_RECENT: list = []     # (weakref a, weakref b, box) of the last few read-only pairs


def changed_box(a: np.ndarray, b: np.ndarray) -> tuple[slice, slice] | None:
    """The smallest box (row and column slices) holding every pixel where the bool arrays
    ``a`` and ``b`` differ; None when they are equal. Whole rows are compared eight pixels
    at a time, columns only within the rows that differ. For two read-only arrays (the
    history's states) the answer is remembered: the history, the disagreements and the split
    outlines all ask it about the same edit."""
    frozen = not a.flags.writeable and not b.flags.writeable
    if frozen:
        for ra, rb, box in _RECENT:
            if ra() is a and rb() is b:
                return box
    box = _changed_box(a, b)
    if frozen:
        _RECENT.insert(0, (weakref.ref(a), weakref.ref(b), box))
        del _RECENT[4:]
    return box


def _changed_box(a: np.ndarray, b: np.ndarray) -> tuple[slice, slice] | None:
    h, w = a.shape
    if w % 8 == 0 and a.flags.c_contiguous and b.flags.c_contiguous and w:
        rows = (a.view(np.uint64) != b.view(np.uint64)).any(axis=1)
    else:
        rows = (a != b).any(axis=1)
    r = np.flatnonzero(rows)
    if r.size == 0:
        return None
    y0, y1 = int(r[0]), int(r[-1]) + 1
    c = np.flatnonzero((a[y0:y1] != b[y0:y1]).any(axis=0))
    return slice(y0, y1), slice(int(c[0]), int(c[-1]) + 1)


def _pack(patch: np.ndarray) -> bytes:
    return zlib.compress(np.packbits(patch, axis=None).tobytes(), 1)


def _unpack(data: bytes, shape: tuple[int, int]) -> np.ndarray:
    bits = np.frombuffer(zlib.decompress(data), dtype=np.uint8)
    return np.unpackbits(bits, count=shape[0] * shape[1]).astype(bool).reshape(shape)


class History:
    """Undo/redo of mask states without limit.

    A step keeps the box the change touched, its pixels before and after (packed bits,
    zlib-compressed), and a label; the current state is kept as a read-only array, and undo
    and redo paste a box into a copy of it. ``push`` after an ``undo`` drops the states that
    could have been redone. ``dirty``: the current content differs from the content last
    marked saved (the state it was opened with, at first), whatever the path back to it (a
    count of the pixels that differ from it, kept up to date within each step's box)."""

    def __init__(self, mask, label: str = "open"):
        m = _as_bool(mask).copy()
        m.flags.writeable = False
        self.shape = m.shape
        self.open_label = label
        self._steps: list[tuple[tuple[slice, slice], bytes, bytes, str]] = []
        self._index = 0                 # steps applied
        self._current = m
        self._saved = m                 # the content last marked saved
        self._ndiff = 0                 # pixels where current and saved differ

    @property
    def current(self) -> np.ndarray:
        """The current mask (read-only: operations return new arrays anyway)."""
        return self._current

    def _count(self, box, patch: np.ndarray) -> int:
        return int(np.count_nonzero(patch != self._saved[box]))

    def push(self, mask, label: str = "", *, own: bool = False) -> bool:
        """Record ``mask`` as the new current state; False (nothing recorded) when it equals
        the current one. ``own``: the caller gives the array up (it is kept, made read-only,
        not copied: what the painter does with an operation's fresh result)."""
        a = np.asarray(mask)
        m = _as_bool(a)
        if m.shape != self.shape:
            raise ValueError(f"mask shape {m.shape} differs from the history's {self.shape}")
        box = changed_box(self._current, m)
        if box is None:
            return False
        if m is a and not (own and m.flags.owndata and m.flags.c_contiguous):
            m = m.copy()
        before, after = self._current[box], m[box]
        self._ndiff += self._count(box, after) - self._count(box, before)
        del self._steps[self._index:]
        self._steps.append((box, _pack(before), _pack(after), label))
        self._index += 1
        m.flags.writeable = False
        self._current = m
        return True

    def _paste(self, box, data: bytes) -> np.ndarray:
        shape = (box[0].stop - box[0].start, box[1].stop - box[1].start)
        patch = _unpack(data, shape)
        self._ndiff += self._count(box, patch) - self._count(box, self._current[box])
        m = self._current.copy()
        m[box] = patch
        m.flags.writeable = False
        self._current = m
        return m

    @property
    def can_undo(self) -> bool:
        return self._index > 0

    @property
    def can_redo(self) -> bool:
        return self._index < len(self._steps)

    @property
    def undo_label(self) -> str | None:
        """The label of the change ``undo`` would take back."""
        return self._steps[self._index - 1][3] if self.can_undo else None

    @property
    def redo_label(self) -> str | None:
        return self._steps[self._index][3] if self.can_redo else None

    def undo(self) -> np.ndarray | None:
        """Step back; returns the mask now current, None when there is nothing to undo."""
        if not self.can_undo:
            return None
        self._index -= 1
        box, before, _after, _label = self._steps[self._index]
        return self._paste(box, before)

    def redo(self) -> np.ndarray | None:
        if not self.can_redo:
            return None
        box, _before, after, _label = self._steps[self._index]
        self._index += 1
        return self._paste(box, after)

    @property
    def dirty(self) -> bool:
        return self._ndiff != 0

    def mark_saved(self) -> None:
        self._saved = self._current
        self._ndiff = 0

    def __len__(self) -> int:
        return len(self._steps) + 1

    @property
    def nbytes(self) -> int:
        """Bytes the stored steps take (compressed)."""
        return sum(len(s[1]) + len(s[2]) for s in self._steps)
