"""The synthetic demo data set: microscope-like frames, classical masks, and a hidden truth.

`make_demo(root)` writes, in the seed layout, `root/img_000.png` (8-bit grey) beside
`root/img_000_mask.png` (0/255). The frames hold round-ish objects (particles, bubbles, cells:
wobbly ellipses) of widely varying size, brightness and profile, some out of focus, some
touching or overlapping, on an unevenly lit background with shot and read noise. Some frames
are empty, some crowded.

The masks beside them are what a classical pipeline gives (`segment.threshold_mask`: Gaussian
smoothing + Otsu + a small opening), so they are wrong the realistic ways. On top of that a known
share (`corrupt_frac`) is deliberately corrupted, one kind per mask (see CORRUPTIONS).

The truth lives *outside* the data folder, in the sibling `<root>-truth/`, so the tool never
sees it: `masks/NAME_mask.png` (union of the true objects) and `manifest.json` (which masks were
corrupted and how; per-mask Dice of the given mask against the truth).

Same arguments → byte-identical files: one numpy PCG64 stream per image (seeded from
(seed, index)), PNGs written by PIL without metadata, JSON with sorted keys.
Regenerating over a folder that is a project keeps the masks it replaces or removes in the
mask history (source ``demo`` for the new ones): they may hold a person's edits.
No torch here: the CLI imports this module.
"""
from __future__ import annotations

import json
import math
import re
import shutil
from io import BytesIO
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image
from scipy import ndimage as ndi
from skimage import morphology

from ..store import StoreError
from . import history
from .imageio import atomic_write_bytes
from .project import Project
from .segment import threshold_mask
from .versions import HistoryError, keep_current

GENERATOR = "segtriage-demo/1"
CORRUPTIONS = ("object_removed", "false_object", "eroded", "dilated", "shifted")
# Kinds that change something already in the mask, so the mask must have some foreground.
_NEEDS_FOREGROUND = {"object_removed", "eroded", "dilated", "shifted"}
_MIN_FG_PX = 12
_NAME_RE = re.compile(r"^img_\d+(_mask)?\.png$")


def truth_dir(root: Path | str) -> Path:
    """The sibling folder that holds the truth: `<root>-truth`."""
    return Path(str(Path(root)).rstrip("/\\") + "-truth")


def load_manifest(root: Path | str) -> dict:
    """The truth manifest of the demo data set at `root`."""
    path = truth_dir(root) / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no demo truth manifest (was {root} made by `segtriage demo`?)") from None


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Foreground Dice of two binary masks; 1.0 when both are empty."""
    a = a.astype(bool)
    b = b.astype(bool)
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * int((a & b).sum()) / s


# ---------------------------------------------------------------- drawing the objects


def _blob(rng: np.random.Generator, r: float, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """A wobbly ellipse of mean radius `r` in a square patch with `pad` px margin.

    Returns (alpha, dist): alpha is an anti-aliased coverage in [0, 1]; dist is the distance
    from the centre relative to the local outline radius (0 centre, 1 outline), for profiles.
    """
    aspect = rng.uniform(0.6, 1.0) if rng.random() < 0.7 else rng.uniform(0.35, 0.6)
    a, b = r / math.sqrt(aspect), r * math.sqrt(aspect)  # same area as a circle of radius r
    rot = rng.uniform(0, math.pi)
    # Low harmonics make the outline irregular; stronger wobble for bigger objects.
    ks = np.arange(2, 7)
    amps = rng.normal(0, 1, ks.size) * (0.035 + 0.05 * min(r, 20) / 20) / np.sqrt(ks - 1)
    phases = rng.uniform(0, 2 * math.pi, ks.size)
    half = int(math.ceil(a * 1.35)) + pad
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float64)
    # Sub-pixel centre so small objects are not all pixel-aligned.
    yy -= rng.uniform(-0.5, 0.5)
    xx -= rng.uniform(-0.5, 0.5)
    c, s = math.cos(rot), math.sin(rot)
    u, v = xx * c + yy * s, -xx * s + yy * c
    theta = np.arctan2(v, u)
    rho = np.hypot(u, v)
    # Radius of the ellipse in direction theta, times the wobble.
    r_ell = (a * b) / np.sqrt((b * np.cos(theta)) ** 2 + (a * np.sin(theta)) ** 2)
    wobble = 1.0 + (amps[:, None, None] * np.cos(ks[:, None, None] * theta + phases[:, None, None])).sum(0)
    r_out = r_ell * wobble
    alpha = np.clip(r_out - rho + 0.5, 0.0, 1.0)
    return alpha, rho / np.maximum(r_out, 1e-6)


def _profile(rng: np.random.Generator, dist: np.ndarray) -> np.ndarray:
    """Relative brightness inside an object: flat particle, domed cell, or ringed bubble."""
    kind = rng.choice(3, p=[0.4, 0.35, 0.25])
    d = np.clip(dist, 0, 1)
    if kind == 0:  # particle: flat
        return np.ones_like(d)
    if kind == 1:  # cell: bright centre, dimmer edge
        return 1.0 - rng.uniform(0.3, 0.6) * d**2
    # bubble: bright rim, dim centre (Otsu may leave a hole)
    centre = rng.uniform(0.25, 0.6)
    return centre + (1.0 - centre) * d**4


def _place(rng, placed, r, size) -> tuple[float, float]:
    """A centre for a new object: often touching or overlapping an earlier one."""
    if placed and rng.random() < 0.35:
        cy, cx, r0 = placed[rng.integers(len(placed))]
        ang = rng.uniform(0, 2 * math.pi)
        d = (r0 + r) * rng.uniform(0.65, 1.05)
        return cy + d * math.sin(ang), cx + d * math.cos(ang)
    return rng.uniform(-0.05, 1.05) * size, rng.uniform(-0.05, 1.05) * size


def _render(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """One frame: (uint8 grey image, bool true mask, number of objects)."""
    sc = size / 128.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size - 0.5

    # Count and size range vary by frame: empty, sparse, crowded.
    u = rng.random()
    if u < 0.06:
        n = 0
    else:
        n = int(max(1, rng.poisson(math.exp(rng.uniform(math.log(1.5), math.log(22))))))
    r_max = min(30.0, 75.0 / math.sqrt(max(n, 1)) + 3.0) * sc
    r_min = 1.6 * sc

    # Camera and exposure first: the faintest objects are set relative to the noise.
    background = rng.uniform(20, 60)
    gain = rng.uniform(0.4, 2.5)  # photons per grey level: lower = noisier
    read_noise = rng.uniform(1.5, 6.0)
    noise = math.sqrt(background / gain + read_noise**2)
    # Objects in one frame are of a kind: most of the brightness spread is between frames.
    # Set as a signal-to-noise ratio, capped so the brightest frames just reach saturation.
    frame_contrast = min(190.0, noise * math.exp(rng.uniform(math.log(5), math.log(20))))

    signal = np.zeros((size, size))  # object brightness above the background
    truth = np.zeros((size, size), dtype=bool)
    placed: list[tuple[float, float, float]] = []
    for _ in range(n):
        r = math.exp(rng.uniform(math.log(r_min), math.log(max(r_max, r_min * 1.5))))
        cy, cx = _place(rng, placed, r, size)
        placed.append((cy, cx, r))
        blur = 0.0
        if rng.random() < 0.3:  # out of focus; small objects blur less or they would vanish
            blur = min(rng.uniform(1.0, 3.5) * sc, 0.5 * r + 0.8 * sc)
        pad = int(math.ceil(3 * blur)) + 2
        alpha, dist = _blob(rng, r, pad)
        if rng.random() < 0.15:  # faint: visible to a person, easy for a threshold to miss
            contrast = frame_contrast * rng.uniform(0.15, 0.35)
        else:
            contrast = frame_contrast * math.exp(rng.uniform(-0.5, 0.3))
        prof = _profile(rng, dist)
        # Keep every object visible: its mean brightness at least 3 noise sigmas.
        inside = alpha >= 0.5
        contrast = max(contrast, 3 * noise / max(float(prof[inside].mean()) if inside.any() else 1.0, 0.2))
        value = contrast * prof
        if rng.random() < 0.3:  # granular interior texture
            tex = ndi.gaussian_filter(rng.normal(0, 1, alpha.shape), 1.2 * sc)
            value = value * (1 + 0.25 * tex / (tex.std() + 1e-9))
        cover = alpha
        paint = alpha * value
        if blur > 0:
            cover = ndi.gaussian_filter(cover, blur)
            paint = ndi.gaussian_filter(paint, blur)
        # Paste the patch where it overlaps the frame.
        h = alpha.shape[0] // 2
        y0, x0 = int(round(cy)) - h, int(round(cx)) - h
        ys, xs = slice(max(y0, 0), min(y0 + alpha.shape[0], size)), slice(max(x0, 0), min(x0 + alpha.shape[1], size))
        if ys.start >= ys.stop or xs.start >= xs.stop:
            continue
        ps = (slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0))
        # Later objects lie over earlier ones (partial occlusion).
        signal[ys, xs] = signal[ys, xs] * (1 - cover[ps]) + paint[ps]
        truth[ys, xs] |= alpha[ps] >= 0.5

    # Uneven illumination: a tilted plane times a vignette, multiplying background and objects.
    ang = rng.uniform(0, 2 * math.pi)
    tilt = rng.uniform(0, 0.35)
    vign = rng.uniform(0, 0.5)
    cx0, cy0 = rng.uniform(-0.2, 0.2, 2)
    illum = (1 + tilt * (xx * math.cos(ang) + yy * math.sin(ang))) * (1 - vign * ((xx - cx0) ** 2 + (yy - cy0) ** 2))
    clean = illum * (background + signal)
    # Slight optical blur of the whole frame, then shot noise and read noise.
    clean = ndi.gaussian_filter(clean, 0.6 * sc)
    noisy = rng.poisson(np.clip(clean, 0, None) * gain) / gain + rng.normal(0, read_noise, clean.shape)
    img = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    return img, truth, n


# ---------------------------------------------------------------- corruptions


def _grow_until(mask: np.ndarray, op, test, max_r: int) -> np.ndarray:
    out = mask
    for r in range(1, max_r + 1):
        out = op(mask, structure=morphology.disk(r))
        if test(out):
            break
    return out


def _corrupt(rng: np.random.Generator, kind: str, mask: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Apply one corruption to a given (classical) mask; each is big enough that a person
    looking at it would call the mask wrong: Dice of at most 2/3 against the mask it came from
    (half the foreground removed, as much again added, area halved or doubled, or shifted
    until Dice <= 0.5)."""
    m = mask.astype(bool)
    area = int(m.sum())
    size = m.shape[0]
    if kind == "object_removed":
        # Remove whole connected objects (random picks among the larger half of those left)
        # until at least half of the foreground is gone.
        lab, k = ndi.label(m)
        areas = np.bincount(lab.ravel())[1:]
        order = list(rng.permutation(k) + 1)
        out = m.copy()
        removed = 0
        while order and removed < 0.5 * area:
            # Prefer objects that matter: pick among the larger half of what is left.
            order.sort(key=lambda i: -areas[i - 1])
            j = order.pop(int(rng.integers(max(1, (len(order) + 1) // 2))))
            out[lab == j] = False
            removed += areas[j - 1]
        return out
    if kind == "false_object":
        # Add 1-3 wobbly blobs on background where nothing is, together at least as big as
        # the existing foreground (and at least a mid-sized object's worth on an empty mask).
        out = m.copy()
        want = min(max(1.0 * area, 250.0 * (size / 128) ** 2), 0.25 * size * size)
        added = 0
        k = int(rng.integers(1, 4))
        for i in range(k + 3):  # up to 3 extra blobs if overlaps ate into the first ones
            if added >= want:
                break
            left = max(k - i, 1)
            r = max(2.5 * size / 128, math.sqrt((want - added) / math.pi / left))
            alpha, _ = _blob(rng, r, 1)
            blob = alpha >= 0.5
            h = blob.shape[0] // 2
            for _ in range(30):  # find a free spot; else keep the last try
                cy, cx = rng.integers(0, size, 2)
                y0, x0 = cy - h, cx - h
                ys = slice(max(y0, 0), min(y0 + blob.shape[0], size))
                xs = slice(max(x0, 0), min(x0 + blob.shape[1], size))
                ps = (slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0))
                inside = blob[ps].sum() >= 0.8 * blob.sum()
                if inside and not (blob[ps] & (out[ys, xs] | truth[ys, xs])).any():
                    break
            out[ys, xs] |= blob[ps]
            added = int(out.sum()) - area
        return out
    if kind == "eroded":
        return _grow_until(m, ndi.binary_erosion, lambda o: o.sum() <= 0.5 * area, max(2, size // 8))
    if kind == "dilated":
        return _grow_until(m, ndi.binary_dilation, lambda o: o.sum() >= 2.0 * area, max(2, size // 8))
    if kind == "shifted":
        # Shift by whole pixels (zero fill) in a random direction, far enough that the mask
        # overlaps its old self with Dice <= 0.5.
        ang = rng.uniform(0, 2 * math.pi)
        for d in range(2, size // 3):
            dy, dx = int(round(d * math.sin(ang))), int(round(d * math.cos(ang)))
            out = ndi.shift(m, (dy, dx), order=0, mode="constant", cval=False)
            if dice(out, m) <= 0.5:
                break
        return out
    raise ValueError(f"unknown corruption kind {kind!r}; allowed: {', '.join(CORRUPTIONS)}")


def _normalise_mix(mix: Mapping[str, float] | Sequence[str] | str | None) -> dict[str, float]:
    if mix is None:
        mix = list(CORRUPTIONS)
    if isinstance(mix, str):
        mix = [mix]
    if not isinstance(mix, Mapping):
        mix = {k: 1.0 for k in mix}
    bad = [k for k in mix if k not in CORRUPTIONS]
    if bad:
        raise ValueError(f"unknown corruption kind(s) {bad}; allowed: {', '.join(CORRUPTIONS)}")
    if any(float(w) < 0 for w in mix.values()) or sum(float(w) for w in mix.values()) <= 0:
        raise ValueError(f"corruption_mix weights must be >= 0 with a positive sum, got {dict(mix)}")
    total = sum(float(w) for w in mix.values())
    return {k: float(mix[k]) / total for k in CORRUPTIONS if k in mix and float(mix[k]) > 0}


def _quotas(n: int, mix: dict[str, float]) -> list[str]:
    """Split n corruptions over the kinds by largest remainder, so the shares follow the mix
    exactly (a random draw would often leave a kind out of a small set)."""
    exact = {k: n * w for k, w in mix.items()}
    counts = {k: int(math.floor(v)) for k, v in exact.items()}
    rest = sorted(mix, key=lambda k: (-(exact[k] - counts[k]), CORRUPTIONS.index(k)))
    for k in rest[: n - sum(counts.values())]:
        counts[k] += 1
    return [k for k in mix for _ in range(counts[k])]


# ---------------------------------------------------------------- writing


def _png_bytes(a: np.ndarray) -> bytes:
    buf = BytesIO()
    Image.fromarray(a, mode="L").save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def make_demo(
    root: Path | str,
    *,
    count: int = 96,
    size: int = 128,
    seed: int = 0,
    corrupt_frac: float = 0.25,
    corruption_mix: Mapping[str, float] | Sequence[str] | str | None = None,
    overwrite: bool = False,
    project: Project | None = None,
) -> dict[str, Any]:
    """Write the demo data set to `root` and its truth to `<root>-truth/`; return a summary.

    `corruption_mix`: kinds to use, as a list (equal shares) or a {kind: weight} mapping;
    default all of CORRUPTIONS equally. `round(corrupt_frac * count)` masks are corrupted
    (kinds that alter existing foreground go to masks that have some; if too few have any,
    the rest become 'false_object').
    `root` must be absent or hold only hidden entries unless `overwrite`; with `overwrite`, earlier demo files
    (img_*.png, the truth folder) are replaced and nothing else in `root` is touched. When
    `root` is a project (`project`, else the state found in `root`), the masks replaced or
    removed are kept in its mask history first (HistoryError, a ValueError, and nothing
    changed when they cannot be); the caller indexes the folder afterwards.
    """
    root = Path(root)
    if count < 1 or size < 16:
        raise ValueError(f"count must be >= 1 and size >= 16 (got count={count}, size={size})")
    if not 0.0 <= corrupt_frac <= 1.0:
        raise ValueError(f"corrupt_frac must be within [0, 1], got {corrupt_frac}")
    mix = _normalise_mix(corruption_mix)
    tdir = truth_dir(root)
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"{root}: exists and is not a folder")
    # Hidden entries (the .segtriage state folder, dotfiles) do not make the folder "used".
    if root.exists() and any(not p.name.startswith(".") for p in root.iterdir()) and not overwrite:
        raise FileExistsError(f"{root}: folder is not empty (pass overwrite to regenerate the demo there)")
    root.mkdir(parents=True, exist_ok=True)
    width = max(3, len(str(count - 1)))
    names = [f"img_{i:0{width}d}" for i in range(count)]
    opened = None
    if overwrite and project is None:
        project = opened = _project_of(root)
    try:
        if overwrite:
            _clear(root, project, {f"{n}_mask.png" for n in names})
            if tdir.is_dir():
                shutil.rmtree(tdir)
        return _make(root, tdir, names, size, seed, corrupt_frac, mix, project)
    finally:
        if opened is not None:
            opened.close()


def _project_of(root: Path) -> Project | None:
    """The project whose state is in ``root``, or None (a new folder, a bare demo)."""
    try:
        return Project.open(root, create=False)
    except StoreError:
        return None


def _clear(root: Path, project: Project | None, rewritten: set[str]) -> None:
    """Remove the earlier demo files, but the masks about to be rewritten; in a project, every
    earlier mask is kept in its history first, before anything changes."""
    old = sorted(p.name for p in root.iterdir() if p.is_file() and _NAME_RE.match(p.name))
    masks = [n for n in old if n.endswith("_mask.png")]
    if project is not None:
        try:
            for n in masks:
                keep_current(project, n)
            for n in masks:
                if n not in rewritten:
                    history.remove_mask(project, n)
        except (OSError, ValueError, RuntimeError) as e:  # BackupError is a RuntimeError
            raise HistoryError(f"{root}: the demo was not regenerated: its masks could not be "
                               f"kept in the mask history ({e})") from None
    for n in old:
        if project is not None and n.endswith("_mask.png"):
            continue  # removed above, or replaced through the history below
        (root / n).unlink()


def _make(root: Path, tdir: Path, names: list[str], size: int, seed: int, corrupt_frac: float,
          mix: dict[str, float], project: Project | None) -> dict[str, Any]:
    """Render the frames, write them, their masks and the truth; the summary."""
    count = len(names)
    (tdir / "masks").mkdir(parents=True, exist_ok=True)
    images, truths, givens, nobj = [], [], [], []
    for i in range(count):
        rng = np.random.Generator(np.random.PCG64([seed, i]))
        img, truth, n = _render(rng, size)
        images.append(img)
        truths.append(truth)
        givens.append(threshold_mask(img, "otsu").astype(bool))
        nobj.append(n)

    # Which masks to corrupt, and how: its own stream so the images do not depend on it.
    crng = np.random.Generator(np.random.PCG64([seed, 1_000_003]))
    n_bad = int(math.floor(corrupt_frac * count + 0.5))
    kinds = _quotas(n_bad, mix)
    kinds = [kinds[j] for j in crng.permutation(len(kinds))]
    pool = [int(j) for j in crng.permutation(count)]
    corrupted: dict[int, str] = {}
    for kind in sorted(kinds, key=lambda k: k not in _NEEDS_FOREGROUND):  # fussy kinds first
        pick = next((j for j in pool if kind not in _NEEDS_FOREGROUND or givens[j].sum() >= _MIN_FG_PX), None)
        if pick is None:
            kind = "false_object"
            pick = pool[0]
        pool.remove(pick)
        corrupted[pick] = kind
    for j in sorted(corrupted):
        givens[j] = _corrupt(crng, corrupted[j], givens[j], truths[j])

    for name, img, given, truth in zip(names, images, givens, truths):
        atomic_write_bytes(root / f"{name}.png", _png_bytes(img))
        mask = _png_bytes(given.astype(np.uint8) * 255)
        if project is not None:  # the mask there now is kept in history first
            history.replace_mask(project, f"{name}_mask.png", mask, "demo", recheck=False)
        else:
            atomic_write_bytes(root / f"{name}_mask.png", mask)
        atomic_write_bytes(tdir / "masks" / f"{name}_mask.png", _png_bytes(truth.astype(np.uint8) * 255))

    by_kind = {k: 0 for k in mix}
    for k in corrupted.values():
        by_kind[k] = by_kind.get(k, 0) + 1
    manifest = {
        "generator": GENERATOR,
        "seed": seed,
        "count": count,
        "size": size,
        "corrupt_frac": corrupt_frac,
        "corruption_mix": mix,
        "images": [f"{n}.png" for n in names],
        "masks": [f"{n}_mask.png" for n in names],
        "truth_masks": "masks",
        "corrupted": {f"{names[j]}_mask.png": corrupted[j] for j in sorted(corrupted)},
        "corrupted_counts": by_kind,
        # How wrong every given mask is (classical faults + corruption): lets a benchmark
        # also ask "does the order find the masks that are actually bad?".
        "given_dice": {f"{n}_mask.png": round(dice(g, t), 4) for n, g, t in zip(names, givens, truths)},
        "objects": {f"{n}.png": k for n, k in zip(names, nobj)},
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    atomic_write_bytes(tdir / "manifest.json", text.encode("utf-8"), sync=True)
    return {
        "root": str(root),
        "truth": str(tdir),
        "count": count,
        "size": size,
        "seed": seed,
        "corrupted": len(corrupted),
        "corrupted_by_kind": by_kind,
        "empty_images": sum(1 for k in nobj if k == 0),
    }
