"""Builds the bad-input folder (seed layout) in a temporary directory at test time.

Every file is made here from code, so no binary fixtures are committed. ``build(root)``
returns what a scan must find: the good rows and their status, the error rows with a phrase
their message must contain, and the problems (path → kind).
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

W, H = 48, 40


@dataclass
class Expect:
    good: dict[str, str] = field(default_factory=dict)      # image → status
    errors: dict[str, str] = field(default_factory=dict)    # image → phrase in the error text
    problems: dict[str, str] = field(default_factory=dict)  # path → problem kind
    ignored: list[str] = field(default_factory=list)        # paths that must not be indexed


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def huge_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid-looking PNG whose IHDR declares width×height (8-bit grey) with one tiny IDAT:
    decoding it naively would allocate width*height bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat)
            + png_chunk(b"IEND", b""))


def blob(h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    """A 0/1 mask with one disc, placed by ``seed``."""
    yy, xx = np.mgrid[:h, :w]
    cy, cx = h // 2 + seed % 5, w // 2 - seed % 7
    return ((yy - cy) ** 2 + (xx - cx) ** 2 < (min(h, w) // 4) ** 2).astype(np.uint8)


def grey(h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 60, (h, w)) + 150 * blob(h, w, seed)).astype(np.uint8)


def save(path: Path, arr: np.ndarray, mode: str | None = None, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(arr)
    if mode and im.mode != mode:
        im = im.convert(mode)
    im.save(path, **kw)
    return path


def mask255(path: Path, h: int = H, w: int = W, seed: int = 0) -> Path:
    return save(path, blob(h, w, seed) * 255)


def build(root: Path) -> Expect:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    ex = Expect()
    g = grey()

    # -- good images, every format -------------------------------------------------------
    save(root / "grey.png", g)
    mask255(root / "grey_mask.png")
    save(root / "rgb.png", np.stack([g, g // 2, 255 - g], -1))
    save(root / "rgb_mask.png", blob(seed=1))                                   # 0/1 mask
    rgba = np.dstack([g, g, g, np.full_like(g, 128)])
    save(root / "rgba.png", rgba)
    save(root / "rgba_mask.png", np.repeat((blob(seed=2) * 255)[:, :, None], 3, 2))  # grey RGB
    pal = Image.fromarray(g // 64).convert("P")
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
    pal.save(root / "palimg.png")
    pm = Image.fromarray(blob(seed=3), "L").convert("P")
    pm.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    pm.save(root / "palimg_mask.png")                                  # palette indices 0/1
    save(root / "photo.jpg", np.stack([g, g, g], -1), quality=90)
    mask255(root / "photo_mask.png", seed=4)
    save(root / "bitmap.bmp", g)
    mask255(root / "bitmap_mask.bmp", seed=5)
    save(root / "scan.tif", g)
    mask255(root / "scan_mask.tif", seed=6)
    deep = (1000 + g.astype(np.uint16) * 12).astype(np.uint16)
    Image.fromarray(deep).save(root / "deep16png.png")                 # I;16 PNG
    mask255(root / "deep16png_mask.png", seed=7)
    Image.fromarray(deep).save(root / "deep16tif.tif")                 # I;16 TIFF
    mask255(root / "deep16tif_mask.tif", seed=8)
    opaque = np.dstack([blob(seed=9) * 255] * 3 + [np.full((H, W), 255, np.uint8)])
    save(root / "opaque.png", g)
    save(root / "opaque_mask.png", opaque.astype(np.uint8))            # RGBA, alpha all 255
    for name in ("grey", "rgb", "rgba", "palimg", "photo", "bitmap", "scan", "deep16png",
                 "deep16tif", "opaque"):
        ext = {"photo": ".jpg", "bitmap": ".bmp", "scan": ".tif", "deep16tif": ".tif"}.get(
            name, ".png")
        ex.good[name + ext] = "unreviewed"

    # -- awkward names (never passed to a shell; `pwned` must never appear) ------------------
    for i, name in enumerate(["with space", "quote's \"dq\"", "$(touch pwned)", "ünïcødé 日本",
                              "-dash", "--help"]):
        save(root / f"{name}.png", grey(seed=i + 10))
        mask255(root / f"{name}_mask.png", seed=i + 10)
        ex.good[f"{name}.png"] = "unreviewed"
    save(root / "nested" / "deeper" / "n.png", g)
    mask255(root / "nested" / "deeper" / "n_mask.png")
    ex.good["nested/deeper/n.png"] = "unreviewed"
    os.symlink("grey.png", root / "linked.png")                        # symlinked files are fine
    os.symlink("grey_mask.png", root / "linked_mask.png")
    ex.good["linked.png"] = "unreviewed"
    save(root / "lonely.png", g)                                       # missing mask
    ex.good["lonely.png"] = "no-mask"

    # -- bad images ------------------------------------------------------------------------
    full = (root / "grey.png").read_bytes()
    (root / "truncated.png").write_bytes(full[: len(full) // 2])
    mask255(root / "truncated_mask.png")
    ex.errors["truncated.png"] = "truncated"
    (root / "empty.png").write_bytes(b"")
    mask255(root / "empty_mask.png")
    ex.errors["empty.png"] = "empty file"
    (root / "text.png").write_text("hello, I am not a PNG\n")
    mask255(root / "text_mask.png")
    ex.errors["text.png"] = "not an image"
    (root / "huge.png").write_bytes(huge_png())
    mask255(root / "huge_mask.png")
    ex.errors["huge.png"] = "decompression bomb"

    # -- bad masks -------------------------------------------------------------------------
    save(root / "wrongsize.png", g)
    mask255(root / "wrongsize_mask.png", h=16, w=32)
    ex.errors["wrongsize.png"] = "mask is 32×16 but its image is 48×40"
    save(root / "alien.png", g)
    al = blob(seed=11) * 3
    al[0, 0] = 7
    save(root / "alien_mask.png", al.astype(np.uint8))
    ex.errors["alien.png"] = "mask has values {0, 3, 7}; expected 0..1 or 0/255"
    save(root / "rgbamask.png", g)
    tr = np.dstack([np.full((H, W), 255, np.uint8)] * 3 + [blob(seed=12) * 255])
    save(root / "rgbamask_mask.png", tr.astype(np.uint8))
    ex.errors["rgbamask.png"] = "transparent"
    save(root / "badmask.png", g)
    (root / "badmask_mask.png").write_bytes(b"")
    ex.errors["badmask.png"] = "empty file"
    save(root / "colourmask.png", g)
    cm = np.zeros((H, W, 3), np.uint8)
    cm[blob(seed=13) > 0] = (255, 0, 0)
    save(root / "colourmask_mask.png", cm)
    ex.errors["colourmask.png"] = "colour"

    # -- files that are problems, not rows -------------------------------------------------
    mask255(root / "orphan_mask.png")
    ex.problems["orphan_mask.png"] = "orphan-mask"
    (root / "loop").mkdir()
    os.symlink("..", root / "loop" / "up")                             # a folder loop
    ex.problems["loop/up"] = "symlink-loop"
    os.symlink("does-not-exist.png", root / "dangling.png")
    ex.problems["dangling.png"] = "broken-link"
    try:
        bad = os.path.join(os.fsencode(root), b"bad\xffname.png")
        with open(bad, "wb") as f:
            f.write(full)
        ex.problems["bad\\xffname.png"] = "bad-name"
    except OSError:  # a file system that insists on UTF-8 names
        pass

    # -- ignored -----------------------------------------------------------------------------
    for rel in (".hidden.png", ".hiddendir/x.png", ".segtriage/junk.png", "grey.png~",
                ".grey.png.swp", ".#grey.png", "4913", "a.tmp", "x.png.tmp", "notes.txt",
                "segtriage-truth.png~"):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(full)
        ex.ignored.append(rel)
    return ex
