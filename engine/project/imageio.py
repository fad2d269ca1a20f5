"""Reading images, normalising masks to class indices, and atomic writes (numpy + Pillow).

Decisions (the README's data section repeats them):

* ``read_image`` always returns ``(H, W, 3) uint8``: grey is repeated into 3 channels, palette
  images go through their palette, and an **alpha channel is dropped, not composited**: the
  colour data under a transparent pixel is the measurement, and microscopy exports often carry a
  meaningless alpha.
* **16-bit and wider** single-channel images (Pillow modes ``I;16*``, ``I``, ``F``) are
  **stretched by the image's own min/max** to 0..255. Scientific 16-bit images rarely use the full
  range (a 12-bit camera tops out at 4095), so dividing by 65535 would give near-black pictures.
  A flat image (min == max) maps to ``value * 255 // 65535`` (clipped). NaN becomes 0.
  16-bit *colour* files are reduced to 8 bits by Pillow itself (it keeps the high byte).
* ``read_mask`` maps to class indices 0..len(codes)-1: values already below len(codes) are the
  indices (0/1 masks); with two codes 0/255 (and 0/65535 for 16-bit) also work. Palette masks use
  their **palette indices** when they all are valid class indices, otherwise the palette colours
  (which must then be grey). Colour masks must be grey (R == G == B). An alpha channel must be
  fully opaque: a mask with transparent pixels is an **error** (a transparent background hides
  what the painter meant; guessing would silently change the mask).
* Decompression bombs: a declared size above ``MAX_PIXELS`` is refused from the header alone,
  before any pixel memory is allocated.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

# Pillow's own default (about 89 M pixels, ~ 9459²); above it we refuse to decode.
MAX_PIXELS: int = Image.MAX_IMAGE_PIXELS or 89_478_485

LOSSY_EXTENSIONS = (".jpg", ".jpeg")
_FORMATS = {".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}


class ImageError(ValueError):
    """An image file that cannot be used; the message names the file and the problem."""


class MaskError(ValueError):
    """A mask file that cannot be turned into class indices; the message says why."""


# -- opening -----------------------------------------------------------------------------

def _describe_unreadable(path: Path, exc: Exception) -> str:
    try:
        size = path.stat().st_size
    except OSError as e:
        return f"{path}: cannot read: {e.strerror or e}"
    if size == 0:
        return f"{path}: empty file (0 bytes)"
    if isinstance(exc, UnidentifiedImageError):
        try:
            with open(path, "rb") as f:
                head = f.read(8)
        except OSError:
            head = b""
        return f"{path}: not an image Pillow can read (file starts with {head!r}, {size} bytes)"
    if isinstance(exc, Image.DecompressionBombError):
        m = re.search(r"\((\d+) pixels\)", str(exc))
        n = f"{int(m.group(1)):,} pixels" if m else "too many pixels"
        return (f"{path}: declares {n}, above the limit of {MAX_PIXELS:,}; refusing to decode "
                "(decompression bomb?)")
    text = str(exc) or type(exc).__name__
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return f"{path}: truncated or damaged image ({text})"
    return f"{path}: cannot decode image ({type(exc).__name__}: {text})"


class _Opened:
    """Context manager: a Pillow image whose header was read and whose size is checked."""

    def __init__(self, path: Path | str, err: type[ValueError] = ImageError):
        self.path = Path(path)
        self.err = err
        self.f = None

    def __enter__(self) -> Image.Image:
        try:
            self.f = open(self.path, "rb")
            im = Image.open(self.f)
        except Exception as e:  # noqa: BLE001 - every decoder failure becomes a clear message
            self.__exit__()
            if isinstance(e, OSError) and not isinstance(e, UnidentifiedImageError) and \
                    e.errno is not None:
                raise self.err(f"{self.path}: cannot read: {e.strerror}") from None
            raise self.err(_describe_unreadable(self.path, e)) from None
        w, h = im.size
        if w * h > MAX_PIXELS:
            self.__exit__()
            raise self.err(f"{self.path}: declares {w}×{h} pixels ({w * h:,}), above the limit "
                           f"of {MAX_PIXELS:,}; refusing to decode (decompression bomb?)")
        if w == 0 or h == 0:
            self.__exit__()
            raise self.err(f"{self.path}: image has zero size ({w}×{h})")
        return im

    def __exit__(self, *exc) -> None:
        if self.f is not None:
            self.f.close()
            self.f = None


def _load(im: Image.Image, path: Path, err: type[ValueError]) -> None:
    try:
        im.load()
    except Exception as e:  # noqa: BLE001
        raise err(_describe_unreadable(path, e)) from None


def image_info(path: Path | str, *, decode: bool = False) -> tuple[int, int, str]:
    """``(width, height, mode)`` from the header only; ``decode=True`` also decodes the pixels
    (catches truncated files, which a header read cannot see)."""
    path = Path(path)
    with _Opened(path) as im:
        if decode:
            _load(im, path, ImageError)
        return im.size[0], im.size[1], im.mode


# -- images ------------------------------------------------------------------------------

def read_image_raw(path: Path | str) -> np.ndarray:
    """The pixels as Pillow decodes them (native dtype; palette expanded to RGB/RGBA)."""
    path = Path(path)
    with _Opened(path) as im:
        _load(im, path, ImageError)
        if im.mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif im.mode == "PA":
            im = im.convert("RGBA")
        return np.array(im)


def _stretch(a: np.ndarray) -> np.ndarray:
    """Wide single-channel data → uint8 by the image's own min/max (see module doc)."""
    a = a.astype(np.float64)
    finite = np.isfinite(a)
    if not finite.any():
        return np.zeros(a.shape, np.uint8)
    lo, hi = float(a[finite].min()), float(a[finite].max())
    a = np.where(finite, a, lo)
    if hi > lo:
        out = np.rint((a - lo) * (255.0 / (hi - lo)))
    else:
        out = np.full(a.shape, np.clip(lo * 255.0 / 65535.0, 0, 255) // 1)
    return np.clip(out, 0, 255).astype(np.uint8)


def read_image(path: Path | str) -> np.ndarray:
    """``(H, W, 3) uint8`` for display and the model (see module doc for the conversions)."""
    path = Path(path)
    with _Opened(path) as im:
        _load(im, path, ImageError)
        mode = im.mode
        try:
            if mode in ("RGB",):
                return np.asarray(im, dtype=np.uint8).copy()
            if mode in ("L", "1"):
                g = np.asarray(im.convert("L"), dtype=np.uint8)
                return np.repeat(g[:, :, None], 3, axis=2)
            if mode == "LA":
                g = np.asarray(im, dtype=np.uint8)[:, :, 0]
                return np.repeat(g[:, :, None], 3, axis=2)
            if mode == "RGBA":
                return np.asarray(im, dtype=np.uint8)[:, :, :3].copy()
            if mode.startswith("I") or mode == "F":
                g = _stretch(np.asarray(im))
                return np.repeat(g[:, :, None], 3, axis=2)
            # P, PA, CMYK, YCbCr, LAB, HSV, RGBX, ...: Pillow knows the way to RGB
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
        except Exception as e:  # noqa: BLE001
            raise ImageError(f"{path}: cannot convert image mode {mode} to RGB ({e})") from None


# -- masks -------------------------------------------------------------------------------

def _fmt_values(vals: np.ndarray) -> str:
    vals = [int(v) if float(v).is_integer() else float(v) for v in vals]
    if len(vals) > 12:
        shown = ", ".join(map(str, vals[:10]))
        return f"{{{shown}, …, {vals[-1]}}} ({len(vals)} distinct values)"
    return "{" + ", ".join(map(str, vals)) + "}"


def _expected(n: int) -> str:
    return f"0..{n - 1}" + (" or 0/255" if n == 2 else "")


def _grey_to_indices(g: np.ndarray, codes: Sequence[str], path: Path, what: str = "mask"
                     ) -> np.ndarray:
    n = len(codes)
    vals = np.unique(g)
    if vals.size and np.issubdtype(vals.dtype, np.floating) and not np.all(np.mod(vals, 1) == 0):
        raise MaskError(f"{path}: {what} has non-integer values {_fmt_values(vals)}; expected "
                        f"{_expected(n)} for codes {list(codes)}")
    if vals.size == 0 or (vals.min() >= 0 and vals.max() < n):
        return g.astype(np.uint8)
    if n == 2:
        for top in (255, 65535):
            if set(vals.tolist()) <= {0, top}:
                return (g == top).astype(np.uint8)
    hint = (" (JPEG is lossy: save masks as PNG)"
            if path.suffix.lower() in LOSSY_EXTENSIONS else "")
    raise MaskError(f"{path}: {what} has values {_fmt_values(vals)}; expected {_expected(n)} "
                    f"for codes {list(codes)}{hint}")


def _check_alpha(a: np.ndarray, path: Path) -> None:
    lo, hi = int(a.min()), int(a.max())
    if lo != 255:
        raise MaskError(f"{path}: mask has a transparent alpha channel (alpha {lo}..{hi}); "
                        "save it without transparency (grey or 0/255)")


def _rgb_to_grey(rgb: np.ndarray, path: Path, what: str = "mask") -> np.ndarray:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    if not (np.array_equal(r, g) and np.array_equal(g, b)):
        colours = np.unique(rgb.reshape(-1, 3), axis=0)
        shown = ", ".join(str(tuple(int(x) for x in c)) for c in colours[:6])
        more = f", … ({len(colours)} colours)" if len(colours) > 6 else ""
        raise MaskError(f"{path}: {what} is in colour (R, G, B differ: {shown}{more}); "
                        "expected grey class values")
    return r


def read_mask(path: Path | str, codes: Sequence[str],
              expect_shape: tuple[int, int] | None = None) -> np.ndarray:
    """``(H, W) uint8`` class indices into ``codes``; MaskError names the file and the problem.

    ``expect_shape`` is ``(H, W)`` of the image; a different mask size is an error (checked from
    the header, before decoding).
    """
    path = Path(path)
    with _Opened(path, MaskError) as im:
        w, h = im.size
        if expect_shape is not None and (h, w) != tuple(expect_shape[:2]):
            eh, ew = expect_shape[:2]
            raise MaskError(f"{path}: mask is {w}×{h} but its image is {ew}×{eh} (width×height)")
        _load(im, path, MaskError)
        mode = im.mode
        if mode == "1":
            return np.asarray(im, dtype=np.uint8).copy()
        if mode == "P" or mode == "PA":
            if mode == "PA":
                _check_alpha(np.asarray(im)[:, :, 1], path)  # indices are channel 0 below
            idx = np.asarray(im)
            idx = idx[:, :, 0] if idx.ndim == 3 else idx
            if "transparency" in im.info:
                rgba = np.asarray(im.convert("RGBA"))
                _check_alpha(rgba[:, :, 3], path)
            if idx.size and int(idx.max()) < len(codes):
                return idx.astype(np.uint8).copy()
            rgb = np.asarray(im.convert("RGB"))
            return _grey_to_indices(_rgb_to_grey(rgb, path, "palette mask"), codes, path,
                                    "palette mask (colours)")
        a = np.asarray(im)
        if mode == "LA":
            _check_alpha(a[:, :, 1], path)
            a = a[:, :, 0]
        elif mode == "RGBA":
            _check_alpha(a[:, :, 3], path)
            a = _rgb_to_grey(a[:, :, :3], path)
        elif mode == "RGB":
            a = _rgb_to_grey(a, path)
        elif a.ndim == 3:
            try:
                a = _rgb_to_grey(np.asarray(im.convert("RGB")), path)
            except MaskError:
                raise
            except Exception as e:  # noqa: BLE001
                raise MaskError(f"{path}: unsupported mask mode {mode} ({e})") from None
        return _grey_to_indices(a, codes, path)


def _mask_convention(like: Path, n: int) -> tuple[str, int, list[int] | None]:
    """(mode, scale, palette) used by an existing mask file; defaults when unreadable."""
    default = ("L", 255 if n == 2 else 1, None)
    try:
        with _Opened(like, MaskError) as im:
            _load(im, like, MaskError)
            mode = im.mode
            if mode == "1":
                return ("1", 1, None)
            if mode == "P":
                idx = np.asarray(im)
                if idx.size and int(idx.max()) < n:
                    return ("P", 1, im.getpalette())
                return default
            a = np.asarray(im)
            if a.ndim == 3:
                a = a[..., 0]
            top = int(a.max()) if a.size else 0
            scale = 1 if 0 < top < n else (255 if n == 2 else 1)
            if top == 0:
                scale = default[1]  # an empty mask tells nothing about the convention
            out_mode = mode if mode in ("L", "RGB", "RGBA", "LA") else "L"
            return (out_mode, scale, None)
    except (MaskError, OSError):
        return default


def encode_mask(mask: np.ndarray, ext: str, *, n_codes: int = 2,
                like: Path | str | None = None) -> bytes:
    """The file bytes of a class-index mask in the format of ``ext``."""
    ext = ext.lower()
    if ext in LOSSY_EXTENSIONS:
        raise MaskError(f"refusing to write a mask as {ext}: JPEG is lossy and would change "
                        "class values (use .png)")
    fmt = _FORMATS.get(ext)
    if fmt is None:
        raise MaskError(f"cannot write a mask with extension {ext!r}; use .png, .bmp or .tif")
    m = np.asarray(mask)
    if m.ndim != 2:
        raise MaskError(f"mask must be 2-D class indices, got shape {m.shape}")
    if m.size and (int(m.min()) < 0 or int(m.max()) >= n_codes):
        raise MaskError(f"mask has class indices {_fmt_values(np.unique(m))} outside "
                        f"0..{n_codes - 1}")
    m = m.astype(np.uint8)
    if like is not None and Path(like).exists():
        mode, scale, palette = _mask_convention(Path(like), n_codes)
    else:
        mode, scale, palette = "L", (255 if n_codes == 2 else 1), None
    if mode == "1":
        im = Image.fromarray(m * 255, "L").convert("1")
    elif mode == "P":
        im = Image.fromarray(m, "L").convert("P")
        im.putpalette(palette)
    else:
        g = Image.fromarray((m * scale).astype(np.uint8), "L")
        im = g if mode == "L" else g.convert(mode)
    buf = io.BytesIO()
    try:
        im.save(buf, format=fmt)
    except (OSError, ValueError, KeyError):  # e.g. a mode the format cannot hold
        buf = io.BytesIO()
        Image.fromarray((m * (255 if n_codes == 2 else 1)).astype(np.uint8), "L").save(
            buf, format=fmt)
    return buf.getvalue()


def write_mask(path: Path | str, mask: np.ndarray, *, like: Path | str | None = None,
               n_codes: int = 2) -> None:
    """Write class indices atomically; 0/255 for two codes, or the convention of ``like``
    (an existing mask: 0/1 stays 0/1, palette stays palette, RGB stays RGB). A mask that
    cannot be written so raises MaskError naming ``path``."""
    path = Path(path)
    try:
        data = encode_mask(mask, path.suffix, n_codes=n_codes, like=like)
    except MaskError as e:
        raise MaskError(f"{path}: {e}") from None
    atomic_write_bytes(path, data)


# -- files -------------------------------------------------------------------------------

def atomic_write_bytes(path: Path | str, data: bytes, *, sync: bool = True) -> None:
    """Temp file in the same folder (hidden, ``.tmp``: ignored by the scanner), fsync,
    os.replace, fsync the folder. Keeps the permission bits of a file it replaces.
    ``sync=False`` skips both fsyncs (still atomic, not durable): for rebuildable caches."""
    path = Path(path)
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if not sync:
        return
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def fingerprint(path: Path | str) -> tuple[int, int]:
    """``(size, mtime_ns)``: the cheap change detector (follows symlinks)."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns
