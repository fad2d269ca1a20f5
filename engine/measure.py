"""Measuring the objects of binary masks: size, shape and number density, per object, per
image and over a data set, in pixels and in the project's physical unit.

numpy / scipy / scikit-image only (clients import this module: no torch, no textual).

Objects are the connected components of a mask (8-connectivity, as in engine/objects.py), or,
with the watershed split, the catchment basins of the distance transform seeded at its local
maxima, so that touching round objects count as several (``split_labels``). Per-object
geometry comes from ``skimage.measure.regionprops_table``, never hand-written formulas.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from . import objects

SPLIT_METHODS = ("none", "watershed")
# the watershed's defaults (the [measure] section of segtriage.toml has the same names)
DEFAULT_MIN_DISTANCE = 5     # px: two markers closer than this become one (peak_local_max)
DEFAULT_COMPACTNESS = 0.0    # 0: the classic watershed; larger: more even, straighter cuts


def _canonical(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 1..n in the raster order of each object's first pixel (int32), so
    the same mask gives the same object ids whatever produced the labels."""
    flat = labels.ravel()
    ids, first = np.unique(flat, return_index=True)
    keep = ids != 0
    ids, first = ids[keep], first[keep]
    order = ids[np.argsort(first, kind="stable")]
    lut = np.zeros(int(labels.max()) + 1 if labels.size else 1, dtype=np.int32)
    lut[order] = np.arange(1, len(order) + 1, dtype=np.int32)
    return lut[labels]


def split_labels(mask: np.ndarray, *, min_distance: int = DEFAULT_MIN_DISTANCE,
                 compactness: float = DEFAULT_COMPACTNESS, method: str = "watershed"
                 ) -> np.ndarray:
    """Object labels of a binary mask (int32 (H, W), 0 = background, objects 1..n numbered in
    raster order of their first pixel).

    ``method="watershed"``: touching objects are split along the valleys of the Euclidean
    distance transform. Markers are the local maxima of the distance transform
    (``skimage.feature.peak_local_max``, at least ``min_distance`` pixels apart, found per
    connected component); maxima that lie on one connected plateau (the ridge of a bar, the
    centre of an even-sized disk) are one marker, and a component without a maximum keeps one
    marker, so nothing is lost and nothing straight is cut into pieces. Then
    ``skimage.segmentation.watershed`` on the negated distance, inside the mask, with
    8-connectivity and ``compactness``. Every pixel of the mask belongs to exactly one object.

    ``method="none"``: the connected components of engine/objects.py (8-connectivity).
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be a 2-D array, got shape {m.shape}")
    m = m if m.dtype == bool else m != 0
    if method not in SPLIT_METHODS:
        raise ValueError(f"split method must be one of {', '.join(SPLIT_METHODS)}, got "
                         f"{method!r}")
    if isinstance(min_distance, bool) or int(min_distance) != min_distance or min_distance < 1:
        raise ValueError(f"min_distance must be an integer >= 1, got {min_distance!r}")
    if not np.isfinite(compactness) or compactness < 0:
        raise ValueError(f"compactness must be a finite number >= 0, got {compactness!r}")
    cc, n = objects.label(m)
    if method == "none" or n == 0:
        return cc
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    dist = ndi.distance_transform_edt(m)
    peaks = peak_local_max(dist, min_distance=int(min_distance), labels=cc,
                           exclude_border=False)
    # plateaus of equal maxima: one marker each (8-connected, like the objects)
    top = (dist == ndi.maximum_filter(dist, footprint=objects.STRUCTURE, mode="constant"))
    top &= m
    plateau, _n_plateau = ndi.label(top, structure=objects.STRUCTURE)
    chosen = np.zeros(m.shape, bool)
    if len(peaks):
        ids = np.unique(plateau[peaks[:, 0], peaks[:, 1]])
        ids = ids[ids > 0]
        chosen = np.isin(plateau, ids)
        # a peak off every plateau (cannot happen for an exact maximum; kept for safety)
        off = plateau[peaks[:, 0], peaks[:, 1]] == 0
        chosen[peaks[off, 0], peaks[off, 1]] = True
    markers, _k = ndi.label(chosen, structure=objects.STRUCTURE)
    # every component keeps at least one marker: its deepest pixel
    have = np.zeros(n + 1, bool)
    have[np.unique(cc[markers > 0])] = True
    missing = np.flatnonzero(~have[1:]) + 1
    if missing.size:
        pos = ndi.maximum_position(dist, cc, missing)
        base = int(markers.max())
        for j, (r, c) in enumerate(pos):
            markers[r, c] = base + 1 + j
    labels = watershed(-dist, markers, mask=m, connectivity=2, compactness=float(compactness))
    return _canonical(labels.astype(np.int32, copy=False))
