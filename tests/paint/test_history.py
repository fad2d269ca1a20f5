"""The painter's undo history: each step keeps only the box its edit changed, the content
comes back exactly, and 'modified' follows the content, not the path."""

from __future__ import annotations

import numpy as np
import pytest

from segtriage.tui.paint import ops
from segtriage.tui.paint.history import History, changed_box


def test_changed_box_is_the_smallest_box_around_the_differences():
    for w in (13, 16):                      # a width the 8-pixel compare can and cannot take
        a = np.zeros((6, w), bool)
        assert changed_box(a, a.copy()) is None
        b = a.copy()
        b[1, 2] = True
        b[4, 9] = True
        assert changed_box(a, b) == (slice(1, 5), slice(2, 10))
        b = a.copy()
        b[5, w - 1] = True
        assert changed_box(a, b) == (slice(5, 6), slice(w - 1, w))


def test_a_step_keeps_only_the_changed_box():
    m = np.zeros((4096, 4096), bool)
    h = History(m)
    dab = ops.brush(m, 2000, 3000, 3)
    assert h.push(dab, "paint")
    assert h._steps[0][0] == (slice(1997, 2004), slice(2997, 3004))
    assert h.nbytes < 100                   # two 7x7 patches, packed and compressed
    assert h.undo() is not None and not h.current.any()
    assert np.array_equal(h.redo(), dab)


def test_push_copies_unless_the_caller_gives_the_array_up():
    m = np.zeros((5, 9), bool)
    h = History(m)
    a = ops.brush(m, 2, 2, 1)
    h.push(a, "paint")
    assert h.current is not a and a.flags.writeable    # the caller's array is its own
    b = ops.brush(a, 2, 6, 1)
    h.push(b, "paint", own=True)
    assert h.current is b and not b.flags.writeable    # kept as it is, made read-only
    with pytest.raises(ValueError):
        b[0, 0] = True
    # a non-bool mask is converted (non-zero is foreground)
    h.push(np.where(b, 255, 0).astype(np.uint8), "same")
    assert len(h) == 3


def test_modified_follows_the_content_whatever_the_path():
    m = np.zeros((5, 9), bool)
    h = History(m)
    assert not h.dirty
    h.push(ops.brush(m, 1, 1, 0), "paint")
    assert h.dirty
    h.push(m, "erase")                          # back to the opened content another way
    assert not h.dirty and len(h) == 3
    h.undo()
    assert h.dirty
    h.mark_saved()
    assert not h.dirty
    h.undo()
    assert h.dirty and not h.current.any()
    h.redo()
    assert not h.dirty
    h.push(ops.brush(h.current, 3, 7, 1), "paint")
    h.push(ops.brush(h.current, 3, 7, 1, False), "erase")
    assert not h.dirty and not h.can_redo
