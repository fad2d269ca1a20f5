"""Measuring one binary mask: its objects' size and shape, the image's count, density and
area fraction, in pixels and in the project's physical unit; and a data set's summary.

numpy / scipy / scikit-image only (clients import this module: no torch, no textual).

Objects are the connected components of a mask (8-connectivity, as in engine/project/scoring/objects.py), or,
with the watershed split, the catchment basins of the distance transform seeded at its local
maxima, so that touching round objects count as several (``split_labels``). Per-object
geometry comes from ``skimage.measure.regionprops_table``, never hand-written formulas.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
import numpy as np
from scipy import ndimage as ndi

from ..config import MeasureConfig, ProjectConfig
from ..scoring import objects

SPLIT_METHODS = ("none", "watershed")
# the watershed's defaults are the [measure] section's: min_distance (px: two markers closer
# than this become one, peak_local_max), compactness (0: the classic watershed; larger: more
# even, straighter cuts)
_MEASURE, _PROJECT = MeasureConfig(), ProjectConfig()
DEFAULT_MIN_DISTANCE = _MEASURE.min_distance
DEFAULT_COMPACTNESS = _MEASURE.compactness


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

    ``method="none"``: the connected components of engine/project/scoring/objects.py (8-connectivity).
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


# ----------------------------------------------------------------------------------------
# settings
# ----------------------------------------------------------------------------------------
SOURCES = ("reviewed", "masks", "predictions", "best")
REVIEWED = ("accepted", "edited")   # statuses whose mask a person has checked


@dataclass(frozen=True)
class Settings:
    """How objects are found and reported ([measure] and [project] of segtriage.toml, whose
    defaults are its defaults)."""
    split: str = _MEASURE.split
    min_distance: int = DEFAULT_MIN_DISTANCE
    compactness: float = DEFAULT_COMPACTNESS
    exclude_border_from_sizes: bool = _MEASURE.exclude_border_from_sizes
    pixel_size: float | None = _PROJECT.pixel_size
    unit: str = _PROJECT.unit

    def __post_init__(self):
        if self.split not in SPLIT_METHODS:
            raise ValueError(f"split must be one of {', '.join(SPLIT_METHODS)}, got "
                             f"{self.split!r}")
        if self.pixel_size is not None and not (math.isfinite(self.pixel_size)
                                                and self.pixel_size > 0):
            raise ValueError(f"pixel_size must be a finite number > 0, got {self.pixel_size!r}")

    def labels(self, mask: np.ndarray) -> np.ndarray:
        return split_labels(mask, min_distance=self.min_distance,
                            compactness=self.compactness, method=self.split)

    def header(self) -> dict:
        return {"split": self.split, "min_distance": self.min_distance,
                "compactness": self.compactness,
                "exclude_border_from_sizes": self.exclude_border_from_sizes,
                "pixel_size": self.pixel_size, "unit": self.unit if self.pixel_size else None}


def settings_from(cfg, *, split: str | None = None) -> Settings:
    """Settings from a loaded Config (``split`` overrides ``[measure] split``)."""
    m, p = cfg.measure, cfg.project
    return Settings(split=split or m.split, min_distance=m.min_distance,
                    compactness=m.compactness,
                    exclude_border_from_sizes=m.exclude_border_from_sizes,
                    pixel_size=p.pixel_size, unit=p.unit)


# ----------------------------------------------------------------------------------------
# one image
# ----------------------------------------------------------------------------------------
# regionprops_table property -> our column (pixel units); lengths and areas get a _unit twin
_PROPS = {
    "area": "area_px", "equivalent_diameter_area": "equivalent_diameter_px",
    "perimeter": "perimeter_px", "axis_major_length": "major_axis_px",
    "axis_minor_length": "minor_axis_px", "eccentricity": "eccentricity",
    "solidity": "solidity", "orientation": "orientation",
}
_LENGTHS = ("equivalent_diameter", "perimeter", "major_axis", "minor_axis")

OBJECT_COLUMNS = (
    "image", "source", "model", "object", "area_px", "area_unit", "equivalent_diameter_px",
    "equivalent_diameter_unit", "perimeter_px", "perimeter_unit", "major_axis_px",
    "major_axis_unit", "minor_axis_px", "minor_axis_unit", "eccentricity", "solidity",
    "orientation", "centroid_row_px", "centroid_col_px", "centroid_row_unit",
    "centroid_col_unit", "bbox_min_row", "bbox_min_col", "bbox_max_row", "bbox_max_col",
    "intensity_mean", "intensity_max", "touches_border",
)
IMAGE_COLUMNS = (
    "image", "source", "status", "mask", "mask_sha256", "model", "model_sha256", "width",
    "height", "objects", "border_objects", "sized_objects", "density_px", "density_unit",
    "area_fraction", "area_mean_px", "area_median_px", "area_mean_unit", "area_median_unit",
    "equivalent_diameter_mean_px", "equivalent_diameter_median_px",
    "equivalent_diameter_mean_unit", "equivalent_diameter_median_unit", "error",
)


def grey(image: np.ndarray) -> np.ndarray:
    """The intensity objects are measured in: a single-channel image as stored (8 or 16 bit,
    float), a colour one as its luma (ITU-R 601: 0.299 R + 0.587 G + 0.114 B, Pillow's "L")."""
    a = np.asarray(image)
    if a.ndim == 2:
        return a.astype(np.float64, copy=False)
    if a.ndim == 3 and a.shape[2] in (1, 2):
        return a[:, :, 0].astype(np.float64)
    if a.ndim == 3 and a.shape[2] >= 3:
        rgb = a[:, :, :3].astype(np.float64)
        return rgb @ np.array([0.299, 0.587, 0.114])
    raise ValueError(f"an image must be (H, W) or (H, W, C), got shape {a.shape}")


def measure_labels(labels: np.ndarray, intensity: np.ndarray | None,
                   settings: Settings = Settings()) -> list[dict]:
    """One dict per object of a label image (columns of OBJECT_COLUMNS from ``object`` on),
    in label order. ``intensity``: (H, W) values under the objects, or None."""
    from skimage.measure import regionprops_table

    labels = np.asarray(labels)
    if labels.max(initial=0) == 0:
        return []
    props = ["label", *_PROPS, "centroid", "bbox"]
    if intensity is not None:
        if intensity.shape != labels.shape:
            raise ValueError(f"image is {intensity.shape[1]}×{intensity.shape[0]} but its "
                             f"mask is {labels.shape[1]}×{labels.shape[0]}")
        props += ["intensity_mean", "intensity_max"]
    t = regionprops_table(labels, intensity_image=intensity, properties=props)
    h, w = labels.shape
    s = settings.pixel_size
    rows = []
    for i in range(len(t["label"])):
        r = {"object": int(t["label"][i])}
        for prop, col in _PROPS.items():
            r[col] = float(t[prop][i])
        r["area_px"] = int(t["area"][i])
        r["centroid_row_px"], r["centroid_col_px"] = float(t["centroid-0"][i]), float(
            t["centroid-1"][i])
        b = [int(t[f"bbox-{k}"][i]) for k in range(4)]
        r["bbox_min_row"], r["bbox_min_col"], r["bbox_max_row"], r["bbox_max_col"] = b
        r["touches_border"] = b[0] == 0 or b[1] == 0 or b[2] == h or b[3] == w
        if intensity is not None:
            r["intensity_mean"] = float(t["intensity_mean"][i])
            r["intensity_max"] = float(t["intensity_max"][i])
        else:
            r["intensity_mean"] = r["intensity_max"] = None
        r["area_unit"] = r["area_px"] * s * s if s else None
        for name in (*_LENGTHS, "centroid_row", "centroid_col"):
            r[f"{name}_unit"] = r[f"{name}_px"] * s if s else None
        rows.append(r)
    return rows


def _stat(values: list[float], fn) -> float | None:
    return float(fn(values)) if values else None


def image_stats(obj_rows: list[dict], shape: tuple[int, int], n_fg: int,
                settings: Settings = Settings()) -> dict:
    """The per-image figures of IMAGE_COLUMNS from ``objects`` on.

    Every object counts for the number density (objects per px², and per unit² with a pixel
    size) and the area fraction; size means and medians leave out the objects touching the
    image border when ``settings.exclude_border_from_sizes`` (a cut object looks smaller)."""
    h, w = shape
    s = settings.pixel_size
    border = sum(1 for r in obj_rows if r["touches_border"])
    sized = [r for r in obj_rows
             if not (settings.exclude_border_from_sizes and r["touches_border"])]
    n = len(obj_rows)
    out = {"width": w, "height": h, "objects": n, "border_objects": border,
           "sized_objects": len(sized), "density_px": n / (h * w),
           "density_unit": n / (h * w * s * s) if s else None,
           "area_fraction": n_fg / (h * w)}
    for name, col, k in (("area", "area_px", 2), ("equivalent_diameter",
                                                  "equivalent_diameter_px", 1)):
        vals = [r[col] for r in sized]
        for stat, fn in (("mean", np.mean), ("median", np.median)):
            v = _stat(vals, fn)
            out[f"{name}_{stat}_px"] = v
            out[f"{name}_{stat}_unit"] = v * s ** k if (s and v is not None) else None
    return out


def measure_mask(mask: np.ndarray, intensity: np.ndarray | None = None,
                 settings: Settings = Settings()) -> tuple[list[dict], dict]:
    """(object rows, image figures) of one binary mask."""
    m = np.asarray(mask)
    m = m if m.dtype == bool else m != 0
    labels = settings.labels(m)
    rows = measure_labels(labels, intensity, settings)
    return rows, image_stats(rows, m.shape, int(m.sum()), settings)


def summarize(images: list[dict], objects_: list[dict], settings: Settings) -> dict:
    """Data-set figures over the measured images (error rows only counted)."""
    ok = [r for r in images if not r.get("error")]
    sized = [o for o in objects_
             if not (settings.exclude_border_from_sizes and o["touches_border"])]
    s = settings.pixel_size
    out = {"images": len(images), "measured": len(ok), "errors": len(images) - len(ok),
           "from_reviewed": sum(r["source"] == "reviewed" for r in ok),
           "from_masks": sum(r["source"] == "mask" for r in ok),
           "from_predictions": sum(r["source"] == "prediction" for r in ok),
           "objects": len(objects_), "border_objects": sum(o["touches_border"]
                                                            for o in objects_),
           "sized_objects": len(sized)}
    counts = [r["objects"] for r in ok]
    out["objects_per_image_mean"] = _stat(counts, np.mean)
    out["objects_per_image_median"] = _stat(counts, np.median)
    px = sum(r["width"] * r["height"] for r in ok)
    # over the set: all objects over all measured pixels (not the mean of per-image ratios)
    out["density_px"] = len(objects_) / px if px else None
    out["density_unit"] = out["density_px"] / (s * s) if (s and px) else None
    out["area_fraction"] = (sum(r["area_fraction"] * r["width"] * r["height"] for r in ok)
                            / px) if px else None
    for name, col, k in (("area", "area_px", 2),
                         ("equivalent_diameter", "equivalent_diameter_px", 1)):
        vals = [o[col] for o in sized]
        for stat, fn in (("mean", np.mean), ("median", np.median)):
            v = _stat(vals, fn)
            out[f"{name}_{stat}_px"] = v
            out[f"{name}_{stat}_unit"] = v * s ** k if (s and v is not None) else None
    return out
