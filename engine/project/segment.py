"""00 SEGMENT: first masks from a classical threshold (scikit-image), for images that have none.

The masks made here are a starting point for human review, not an answer: Gaussian smoothing +
a global Otsu threshold (or a local, block-wise threshold) + a small opening. They are fast and
predictable, and they fail the way classical methods do (touching objects merge, faint objects
vanish, blur makes halos), which is what the rest of segtriage exists to catch.

Polarity: the foreground is the *minority* side of the threshold. Particles, bubbles and cells
cover less of a frame than the background does, whether they are brighter (fluorescence, dark
field) or darker (bright field) than it. `polarity='bright'|'dark'` overrides the guess for data
where objects fill most of the frame.

No torch or fastai here: clients (the CLI) import this module.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np
from scipy import ndimage as ndi
from skimage import filters, morphology

from .history import replace_mask
from .imageio import ImageError, read_image, read_image_raw, write_mask
from .layout import discover
from .project import Project

log = logging.getLogger(__name__)

METHODS = ("otsu", "local")
POLARITIES = ("auto", "bright", "dark")


def to_grey(image: np.ndarray) -> np.ndarray:
    """Any grey / RGB / RGBA array of any integer or float dtype → float64 (H, W) grey.

    Values keep their own scale (a 16-bit image stays 0..65535): both thresholds are
    scale-invariant, so there is nothing to gain from rescaling and no precision to lose.
    """
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 3 and a.shape[2] in (3, 4):
        rgb = a[:, :, :3].astype(np.float64)
        # ITU-R 709 luma weights, as skimage.color.rgb2gray uses.
        return rgb @ np.array([0.2125, 0.7154, 0.0721])
    if a.ndim != 2:
        raise ValueError(f"expected a grey (H, W) or colour (H, W, 3|4) image, got shape {a.shape}")
    return a.astype(np.float64)


def noise_sigma(grey: np.ndarray) -> float:
    """Robust estimate of pixel noise: MAD of neighbour differences, which ignores smooth
    illumination and (being a median) the few large steps at object edges."""
    d = np.diff(grey, axis=1).ravel()
    if d.size == 0:
        return 0.0
    mad = np.median(np.abs(d - np.median(d)))
    return float(1.4826 * mad / np.sqrt(2.0))


def threshold_mask(
    image: np.ndarray,
    method: str = "otsu",
    *,
    sigma: float = 1.0,
    polarity: str = "auto",
    opening: int = 1,
    min_contrast: float = 0.6,
    block_size: int | None = None,
    local_offset: float = 1.0,
) -> np.ndarray:
    """Binary mask (uint8, 0/1, same H×W) of `image` by a classical threshold.

    method 'otsu': Gaussian smoothing (`sigma` px), then skimage's Otsu threshold over the
      whole image. Otsu always splits, even a frame of pure noise or a lighting gradient, so
      the split is kept only if it has an edge: the (smoothed) step across the mask outline,
      median of a 2 px band inside minus a 3 px ring outside, must reach `min_contrast` times
      the estimated pixel noise. A gradient or noise split has almost no step there (over 768
      demo frames: <= 0.47); real object masks have one (>= 0.71). Otherwise: empty mask.
    method 'local': Gaussian smoothing, then skimage's threshold_local (Gaussian-weighted block
      mean, `block_size` px, odd; default a third of the short side); a pixel is foreground
      when it is more than `local_offset` times the (raw) pixel noise past the local mean on
      the foreground side. Copes with strongly uneven light; hollows objects near block size
      and marks speckle on empty frames, so on evenly lit data 'otsu' is the better start.
    polarity: see the module doc ('auto' = minority side of the global Otsu split).
    opening: radius of a binary opening that drops speckle (0 = none).
    A constant image gives an empty mask.
    """
    if method not in METHODS:
        raise ValueError(f"unknown threshold method {method!r}; allowed: {', '.join(METHODS)}")
    if polarity not in POLARITIES:
        raise ValueError(f"unknown polarity {polarity!r}; allowed: {', '.join(POLARITIES)}")
    grey = to_grey(image)
    empty = np.zeros(grey.shape, dtype=np.uint8)
    if grey.size == 0 or not np.isfinite(grey).all() or grey.min() == grey.max():
        return empty
    smooth = filters.gaussian(grey, sigma=sigma, preserve_range=True) if sigma > 0 else grey
    if smooth.min() == smooth.max():
        return empty

    t = filters.threshold_otsu(smooth)
    above = smooth > t
    if polarity == "auto":
        bright = above.mean() <= 0.5
    else:
        bright = polarity == "bright"

    if method == "otsu":
        fg = above if bright else ~above
    else:
        h, w = grey.shape
        if block_size is None:
            block_size = max(11, (min(h, w) // 3) | 1)
        block_size = int(block_size) | 1  # threshold_local needs an odd block
        local = filters.threshold_local(smooth, block_size, method="gaussian")
        margin = local_offset * noise_sigma(grey)
        fg = smooth > local + margin if bright else smooth < local - margin

    if opening > 0:
        fg = ndi.binary_opening(fg, structure=morphology.disk(opening))
    if not fg.any() or fg.all():
        return empty
    if method == "otsu" and min_contrast > 0:
        step = edge_step(smooth, fg) * (1 if bright else -1)
        if step < min_contrast * noise_sigma(grey):
            return empty
    return fg.astype(np.uint8)


def edge_step(smooth: np.ndarray, fg: np.ndarray) -> float:
    """Median of `smooth` in a 2 px band just inside the mask minus that of a 3 px ring just
    outside it: how sharply the masked regions stand out from what surrounds them. The frame
    border is no outline (border_value=1), or a lighting ramp cut by the frame would count."""
    band = fg & ~ndi.binary_erosion(fg, structure=morphology.disk(2), border_value=1)
    ring = ndi.binary_dilation(fg, structure=morphology.disk(3)) & ~fg
    if not band.any() or not ring.any():
        return 0.0
    return float(np.median(smooth[band]) - np.median(smooth[ring]))


def read_for_threshold(path: Path) -> np.ndarray:
    """Single-channel images at their native depth (16-bit keeps its precision); anything
    with colour or a palette as the RGB the rest of segtriage sees."""
    raw = read_image_raw(path)
    if raw.ndim == 2:
        return raw
    return read_image(path)


def segment_folder(
    project: Project,
    *,
    method: str = "otsu",
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    **threshold_kw: Any,
) -> dict[str, Any]:
    """Write a threshold mask for every image of the project that has none (the seed's 00
    SEGMENT).

    An existing mask is never replaced unless `overwrite`; then its old content is kept in
    mask history first (and if that fails the mask is left alone and the failure is
    reported). Every mask written is recorded in history with source 'segment'
    (history.replace_mask); the image rows are left to the scan the caller runs next. A bad
    image is reported and skipped; the run goes on.

    Returns {"method", "written": [mask relpaths], "skipped_existing": [mask relpaths],
    "empty": [mask relpaths written with no foreground], "errors": [(relpath, message)]}.
    """
    if method not in METHODS:
        raise ValueError(f"unknown threshold method {method!r}; allowed: {', '.join(METHODS)}")
    root, cfg = project.root, project.cfg
    n_codes = len(cfg.project.codes)

    summary: dict[str, Any] = {"method": method, "written": [], "skipped_existing": [],
                               "empty": [], "errors": []}
    pairs = discover(root, cfg).pairs
    for i, pair in enumerate(pairs):
        if progress is not None:
            progress(i, len(pairs))
        rel = pair.mask or pair.mask_target
        target = root / rel
        exists = pair.mask is not None or target.exists()
        if exists and not overwrite:
            summary["skipped_existing"].append(rel)
            continue
        try:
            mask = threshold_mask(read_for_threshold(root / pair.image), method, **threshold_kw)
        except (ImageError, OSError, ValueError) as e:
            summary["errors"].append((pair.image, _message(e)))
            continue
        stage = ["keep"]  # how far replace_mask got: what a failure means

        def write(path: Path, old: Path | None, mask: np.ndarray = mask,
                  stage: list[str] = stage) -> None:
            stage[0] = "write"
            write_mask(path, mask, like=old, n_codes=n_codes)  # keeps the old convention
            stage[0] = "record"

        try:  # the old content is kept in history first; the caller scans the folder after
            replace_mask(project, rel, write, "segment", recheck=False)
        except Exception as e:  # noqa: BLE001 - BackupError, OSError, MaskError: reported
            if stage[0] == "keep":  # nothing was written
                summary["errors"].append((rel, "not replaced: could not keep the old mask in "
                                               f"history ({_message(e)})"))
                continue
            if stage[0] == "write":
                if not isinstance(e, (OSError, ValueError)):
                    raise
                summary["errors"].append((rel, _message(e)))
                continue
            summary["errors"].append(
                (rel, f"written, but not recorded in history ({_message(e)})"))
        summary["written"].append(rel)
        if not mask.any():
            summary["empty"].append(rel)
    if progress is not None:
        progress(len(pairs), len(pairs))
    return summary


def _message(e: BaseException) -> str:
    return str(e) or type(e).__name__
