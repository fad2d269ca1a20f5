"""engine/measure.py: shapes with known answers, the watershed split, units, the border rule,
reproducible output and the sources of a small project."""

from __future__ import annotations

import math

import numpy as np
import pytest

from segtriage.engine import measure


def disk(shape, cy, cx, r):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def ellipse(shape, cy, cx, a, b, theta):
    """Semi-axes a (along the direction theta from the row axis) and b."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(float)
    dy, dx = yy - cy, xx - cx
    u = dy * math.cos(theta) + dx * math.sin(theta)
    v = -dy * math.sin(theta) + dx * math.cos(theta)
    return (u / a) ** 2 + (v / b) ** 2 <= 1


# -- split_labels ---------------------------------------------------------------------------

def test_two_touching_disks_split_into_two_objects_of_the_right_areas():
    d1, d2 = disk((80, 120), 40, 40, 15), disk((80, 120), 40, 68, 15)
    m = d1 | d2
    assert (d1 & d2).any()  # they overlap: one connected component
    merged = measure.split_labels(m, method="none")
    assert merged.max() == 1 and merged.dtype == np.int32
    lab = measure.split_labels(m)
    assert lab.dtype == np.int32 and lab.max() == 2
    assert ((lab > 0) == m).all()  # every mask pixel is in exactly one object
    areas = np.bincount(lab.ravel())[1:]
    half = (m.sum() - (d1 & d2).sum()) / 2 + (d1 & d2).sum() / 2
    assert np.allclose(areas, half, rtol=0.03), (areas, half)
    # object 1 is the one whose first pixel comes first in raster order: the left disk
    assert lab[40, 30] == 1 and lab[40, 78] == 2


@pytest.mark.parametrize("shape_", ["bar", "square", "disk"])
def test_a_single_convex_object_is_never_cut(shape_):
    m = np.zeros((60, 120), bool)
    if shape_ == "bar":
        m[10:20, 5:115] = True     # a ridge of equal distance maxima
    elif shape_ == "square":
        m[5:45, 5:45] = True
    else:
        m = disk(m.shape, 30, 60, 20.5)
    assert measure.split_labels(m, min_distance=3).max() == 1


def test_split_none_is_the_connected_components_of_objects():
    from segtriage.engine import objects

    rng = np.random.default_rng(3)
    m = rng.random((64, 64)) > 0.7
    lab, n = objects.label(m)
    got = measure.split_labels(m, method="none")
    assert got.max() == n
    # the same partition, numbered in raster order of each object's first pixel
    assert len(np.unique(np.stack([lab.ravel(), got.ravel()]), axis=1).T) == n + 1
    firsts = [np.flatnonzero(got.ravel() == k)[0] for k in range(1, n + 1)]
    assert firsts == sorted(firsts)


def test_split_keeps_every_pixel_and_every_component():
    rng = np.random.default_rng(7)
    m = np.zeros((96, 96), bool)
    for _ in range(25):
        m |= disk(m.shape, *rng.uniform(0, 96, 2), rng.uniform(1, 12))
    m[0, 0] = True  # a single pixel
    lab = measure.split_labels(m)
    assert ((lab > 0) == m).all()
    assert lab.max() >= measure.split_labels(m, method="none").max()
    assert np.array_equal(lab, measure.split_labels(m.copy()))  # deterministic


@pytest.mark.parametrize("kw, msg", [
    (dict(min_distance=0), "min_distance must be an integer >= 1"),
    (dict(min_distance=2.5), "min_distance must be an integer >= 1"),
    (dict(compactness=-1.0), "compactness must be a finite number >= 0"),
    (dict(method="magic"), "split method must be one of none, watershed"),
])
def test_bad_split_settings_are_named(kw, msg):
    with pytest.raises(ValueError, match=msg):
        measure.split_labels(np.ones((4, 4), bool), **kw)
