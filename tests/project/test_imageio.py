"""Image and mask reading, conversions, clear errors, atomic writes."""

from __future__ import annotations

import hashlib
import os
import stat

import numpy as np
import pytest
import tifffile
from PIL import Image

from segtriage.engine.project import imageio
from segtriage.engine.project.imageio import ImageError, MaskError, atomic_write_bytes, fingerprint, image_info, read_image, read_image_raw, read_mask, sha256_file, write_mask

from badinput import huge_png

CODES = ["naw", "aye"]


def _save(path, arr, **kw):
    Image.fromarray(arr).save(path, **kw)
    return path


# -- read_image: every mode to (H, W, 3) uint8 -----------------------------------------------

def test_grey_becomes_three_equal_channels(tmp_path):
    g = np.array([[0, 10, 20], [30, 40, 255]], np.uint8)
    out = read_image(_save(tmp_path / "g.png", g))
    assert out.shape == (2, 3, 3) and out.dtype == np.uint8
    for c in range(3):
        assert np.array_equal(out[:, :, c], g)


def test_rgb_is_unchanged(tmp_path):
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 7
    assert np.array_equal(read_image(_save(tmp_path / "c.png", rgb)), rgb)


def test_rgba_drops_alpha_without_compositing(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = 200, 100, 50
    rgba[..., 3] = [[0, 255], [128, 10]]
    out = read_image(_save(tmp_path / "a.png", rgba))
    assert out.shape == (2, 2, 3)
    assert (out[..., 0] == 200).all() and (out[..., 1] == 100).all() and (out[..., 2] == 50).all()


def test_palette_goes_through_its_palette(tmp_path):
    im = Image.fromarray(np.array([[0, 1], [2, 1]], np.uint8), "L").convert("P")
    im.putpalette([10, 20, 30, 40, 50, 60, 70, 80, 90] + [0] * 759)
    im.save(tmp_path / "p.png")
    out = read_image(tmp_path / "p.png")
    assert out[0, 0].tolist() == [10, 20, 30]
    assert out[0, 1].tolist() == [40, 50, 60]
    assert out[1, 0].tolist() == [70, 80, 90]


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_grey_is_stretched_by_its_own_min_max(tmp_path, ext):
    a = np.array([[1000, 1800], [2600, 5000]], np.uint16)
    p = _save(tmp_path / f"d{ext}", a)
    assert image_info(p)[2].startswith("I;16")
    out = read_image(p)
    # (v - 1000) * 255 / 4000 → 0, 51, 102, 255
    assert out[:, :, 0].tolist() == [[0, 51], [102, 255]]
    assert read_image_raw(p).dtype == np.uint16
    assert read_image_raw(p).tolist() == a.tolist()


def test_16bit_tif_via_tifffile_reads_with_pillow(tmp_path):
    """Pillow reads tifffile's 16-bit grey TIFF itself: no tifffile dependency needed."""
    a = np.array([[0, 65535], [32768, 100]], np.uint16)
    tifffile.imwrite(tmp_path / "t.tif", a)
    assert read_image_raw(tmp_path / "t.tif").tolist() == a.tolist()
    assert read_image(tmp_path / "t.tif")[:, :, 0].tolist() == [[0, 255], [128, 0]]


def test_flat_16bit_image_and_float_and_int32_modes(tmp_path):
    flat = np.full((2, 2), 65535, np.uint16)
    assert (read_image(_save(tmp_path / "f.png", flat)) == 255).all()
    f = np.array([[0.0, 0.5], [1.0, np.nan]], np.float32)
    out = read_image(_save(tmp_path / "f.tif", f))
    assert out[:, :, 0].tolist() == [[0, 128], [255, 0]]
    i32 = np.array([[-10, 0], [10, 0]], np.int32)
    out = read_image(_save(tmp_path / "i.tif", i32))
    assert out[:, :, 0].tolist() == [[0, 128], [255, 128]]


@pytest.mark.parametrize("ext", [".jpg", ".bmp", ".tif", ".png"])
def test_every_format_reads(tmp_path, ext):
    g = np.full((8, 6), 100, np.uint8)
    p = _save(tmp_path / f"x{ext}", np.stack([g] * 3, -1))
    out = read_image(p)
    assert out.shape == (8, 6, 3)
    assert abs(int(out.mean()) - 100) <= 1  # jpeg is lossy, but a flat field survives
    assert image_info(p)[:2] == (6, 8)


# -- errors: name the file and the problem ---------------------------------------------------

def test_zero_byte_file(tmp_path):
    (tmp_path / "z.png").write_bytes(b"")
    with pytest.raises(ImageError, match=r"z\.png: empty file \(0 bytes\)"):
        read_image(tmp_path / "z.png")
    with pytest.raises(ImageError, match="empty file"):
        image_info(tmp_path / "z.png")


def test_text_named_png(tmp_path):
    (tmp_path / "t.png").write_text("not a png at all")
    with pytest.raises(ImageError, match=r"t\.png: not an image Pillow can read .*b'not a pn'"):
        read_image(tmp_path / "t.png")


def test_truncated_png_header_ok_decode_fails(tmp_path):
    data = (_save(tmp_path / "ok.png", np.random.default_rng(0).integers(
        0, 255, (64, 64), dtype=np.uint8))).read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    assert image_info(tmp_path / "cut.png") == (64, 64, "L")  # the header alone looks fine
    with pytest.raises(ImageError, match=r"cut\.png: truncated"):
        image_info(tmp_path / "cut.png", decode=True)
    with pytest.raises(ImageError, match=r"cut\.png: truncated"):
        read_image(tmp_path / "cut.png")


def test_huge_header_is_refused_before_allocating(tmp_path):
    (tmp_path / "huge.png").write_bytes(huge_png(100_000, 100_000))
    msg = r"huge\.png: declares 10,000,000,000 pixels, above the limit .*decompression bomb"
    with pytest.raises(ImageError, match=msg):
        image_info(tmp_path / "huge.png")
    with pytest.raises(ImageError, match=msg):
        read_image(tmp_path / "huge.png")
    with pytest.raises(MaskError, match="decompression bomb"):
        read_mask(tmp_path / "huge.png", CODES)


def test_header_between_limit_and_pillow_hard_limit(tmp_path, monkeypatch):
    """Pillow only warns up to 2x its limit; we refuse from MAX_PIXELS on."""
    monkeypatch.setattr(imageio, "MAX_PIXELS", 100)
    _save(tmp_path / "s.png", np.zeros((11, 10), np.uint8))
    with pytest.raises(ImageError, match=r"s\.png: declares 10×11 pixels \(110\)"):
        read_image(tmp_path / "s.png")


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match=r"nope\.png: cannot read: No such file"):
        read_image(tmp_path / "nope.png")


# -- masks ---------------------------------------------------------------------------------

M01 = np.array([[0, 1, 1], [0, 0, 1]], np.uint8)


@pytest.mark.parametrize("scale", [1, 255])
def test_mask_0_1_and_0_255(tmp_path, scale):
    p = _save(tmp_path / "m.png", M01 * scale)
    assert read_mask(p, CODES).tolist() == M01.tolist()
    assert read_mask(p, CODES).dtype == np.uint8


def test_mask_all_255_is_all_foreground(tmp_path):
    p = _save(tmp_path / "m.png", np.full((2, 2), 255, np.uint8))
    assert read_mask(p, CODES).tolist() == [[1, 1], [1, 1]]


def test_mask_grey_stored_as_rgb_and_opaque_rgba(tmp_path):
    rgb = np.repeat((M01 * 255)[:, :, None], 3, 2)
    assert read_mask(_save(tmp_path / "c.png", rgb), CODES).tolist() == M01.tolist()
    rgba = np.dstack([rgb, np.full(M01.shape, 255, np.uint8)])
    assert read_mask(_save(tmp_path / "a.png", rgba), CODES).tolist() == M01.tolist()
    assert read_mask(_save(tmp_path / "c.bmp", rgb), CODES).tolist() == M01.tolist()


def test_mask_with_varying_alpha_is_an_error(tmp_path):
    rgba = np.dstack([np.repeat((M01 * 255)[:, :, None], 3, 2), M01 * 255])
    with pytest.raises(MaskError, match=r"a\.png: mask has a transparent alpha channel "
                                        r"\(alpha 0\.\.255\)"):
        read_mask(_save(tmp_path / "a.png", rgba), CODES)


def test_palette_mask_uses_indices_when_they_are_codes(tmp_path):
    im = Image.fromarray(M01, "L").convert("P")
    im.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)  # index 1 drawn black: still class 1
    im.save(tmp_path / "p.png")
    assert read_mask(tmp_path / "p.png", CODES).tolist() == M01.tolist()


def test_palette_mask_falls_back_to_grey_colours(tmp_path):
    im = Image.fromarray((M01 * 200 + 5).astype(np.uint8), "L").convert("P")  # indices 5, 205
    pal = [0] * 768
    pal[5 * 3: 5 * 3 + 3] = [0, 0, 0]
    pal[205 * 3: 205 * 3 + 3] = [255, 255, 255]
    im.putpalette(pal)
    im.save(tmp_path / "p.png")
    assert read_mask(tmp_path / "p.png", CODES).tolist() == M01.tolist()


def test_palette_mask_with_colours_is_an_error(tmp_path):
    im = Image.fromarray((M01 * 3).astype(np.uint8), "L").convert("P")
    im.putpalette([0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 0, 0] + [0] * 756)
    im.save(tmp_path / "p.png")
    with pytest.raises(MaskError, match=r"p\.png: palette mask is in colour.*\(255, 0, 0\)"):
        read_mask(tmp_path / "p.png", CODES)


def test_bilevel_mode_1_mask(tmp_path):
    Image.fromarray(M01 * 255).convert("1").save(tmp_path / "b.png")
    assert read_mask(tmp_path / "b.png", CODES).tolist() == M01.tolist()


def test_alien_values_are_named(tmp_path):
    a = np.array([[0, 3], [7, 0]], np.uint8)
    with pytest.raises(MaskError) as e:
        read_mask(_save(tmp_path / "m.png", a), CODES)
    assert str(e.value) == (f"{tmp_path / 'm.png'}: mask has values {{0, 3, 7}}; expected "
                            "0..1 or 0/255 for codes ['naw', 'aye']")


def test_many_alien_values_are_summarised(tmp_path):
    a = np.arange(100, dtype=np.uint8).reshape(10, 10)
    with pytest.raises(MaskError, match=r"values \{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, …, 99\} "
                                        r"\(100 distinct values\)"):
        read_mask(_save(tmp_path / "m.png", a), CODES)


def test_colour_mask_is_an_error(tmp_path):
    c = np.zeros((2, 2, 3), np.uint8)
    c[0, 0] = (255, 0, 0)
    with pytest.raises(MaskError, match=r"mask is in colour \(R, G, B differ: \(0, 0, 0\), "
                                        r"\(255, 0, 0\)\)"):
        read_mask(_save(tmp_path / "m.png", c), CODES)


def test_shape_mismatch_names_both_sizes(tmp_path):
    p = _save(tmp_path / "m.png", np.zeros((16, 32), np.uint8))
    with pytest.raises(MaskError, match=r"m\.png: mask is 32×16 but its image is 48×40"):
        read_mask(p, CODES, expect_shape=(40, 48))
    assert read_mask(p, CODES, expect_shape=(16, 32)).shape == (16, 32)


def test_16bit_mask_0_65535(tmp_path):
    p = _save(tmp_path / "m.png", (M01.astype(np.uint16) * 65535))
    assert read_mask(p, CODES).tolist() == M01.tolist()


def test_three_codes(tmp_path):
    a = np.array([[0, 1, 2]], np.uint8)
    assert read_mask(_save(tmp_path / "m.png", a), ["bg", "a", "b"]).tolist() == [[0, 1, 2]]
    with pytest.raises(MaskError, match=r"values \{0, 255\}; expected 0\.\.2 for codes"):
        read_mask(_save(tmp_path / "n.png", np.array([[0, 255]], np.uint8)), ["bg", "a", "b"])


def test_truncated_and_empty_masks_are_mask_errors(tmp_path):
    (tmp_path / "e.png").write_bytes(b"")
    with pytest.raises(MaskError, match=r"e\.png: empty file"):
        read_mask(tmp_path / "e.png", CODES)


# -- writing -------------------------------------------------------------------------------

def test_write_mask_0_255_by_default_roundtrip(tmp_path):
    p = tmp_path / "w.png"
    write_mask(p, M01)
    assert np.asarray(Image.open(p)).tolist() == (M01 * 255).tolist()
    assert read_mask(p, CODES).tolist() == M01.tolist()
    assert [f for f in os.listdir(tmp_path)] == ["w.png"]  # no temp file left behind


def test_write_mask_keeps_0_1_convention(tmp_path):
    like = _save(tmp_path / "old.png", M01)
    write_mask(like, 1 - M01, like=like)
    assert np.asarray(Image.open(like)).tolist() == (1 - M01).tolist()


def test_write_mask_keeps_palette_and_rgb(tmp_path):
    im = Image.fromarray(M01, "L").convert("P")
    im.putpalette([0, 0, 0, 255, 0, 255] + [0] * 762)
    im.save(tmp_path / "p.png")
    write_mask(tmp_path / "p.png", 1 - M01, like=tmp_path / "p.png")
    back = Image.open(tmp_path / "p.png")
    assert back.mode == "P" and back.getpalette()[3:6] == [255, 0, 255]
    assert np.asarray(back).tolist() == (1 - M01).tolist()
    rgb = _save(tmp_path / "c.png", np.repeat((M01 * 255)[:, :, None], 3, 2))
    write_mask(rgb, 1 - M01, like=rgb)
    back = Image.open(rgb)
    assert back.mode == "RGB" and read_mask(rgb, CODES).tolist() == (1 - M01).tolist()


def test_write_mask_empty_like_uses_default(tmp_path):
    like = _save(tmp_path / "old.png", np.zeros((2, 3), np.uint8))
    write_mask(like, M01, like=like)
    assert np.asarray(Image.open(like)).tolist() == (M01 * 255).tolist()


@pytest.mark.parametrize("ext", [".bmp", ".tif", ".tiff"])
def test_write_mask_formats(tmp_path, ext):
    p = tmp_path / f"w{ext}"
    write_mask(p, M01)
    assert Image.open(p).format == {".bmp": "BMP"}.get(ext, "TIFF")
    assert read_mask(p, CODES).tolist() == M01.tolist()


def test_write_mask_refuses_jpeg_and_bad_values(tmp_path):
    # the message names the file: a save of many masks says which one was refused
    with pytest.raises(MaskError) as e:
        write_mask(tmp_path / "w.jpg", M01)
    assert str(e.value) == (f"{tmp_path / 'w.jpg'}: refusing to write a mask as .jpg: JPEG is "
                            "lossy and would change class values (use .png)")
    with pytest.raises(MaskError, match=r"w\.png: mask has class indices \{0, 2\} outside "
                                        r"0\.\.1"):
        write_mask(tmp_path / "w.png", M01 * 2)
    with pytest.raises(MaskError, match=r"w\.gif: cannot write a mask with extension '\.gif'"):
        write_mask(tmp_path / "w.gif", M01)
    assert not list(tmp_path.iterdir())


def test_write_mask_three_codes_writes_indices(tmp_path):
    write_mask(tmp_path / "w.png", np.array([[0, 1, 2]], np.uint8), n_codes=3)
    assert np.asarray(Image.open(tmp_path / "w.png")).tolist() == [[0, 1, 2]]


def test_atomic_write_keeps_permissions_and_leaves_no_temp(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"old")
    os.chmod(p, 0o640)
    atomic_write_bytes(p, b"new")
    assert p.read_bytes() == b"new"
    assert stat.S_IMODE(p.stat().st_mode) == 0o640
    assert os.listdir(tmp_path) == ["f.bin"]


def test_atomic_write_failure_keeps_old_file(tmp_path, monkeypatch):
    p = tmp_path / "f.bin"
    p.write_bytes(b"old")

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(imageio.os, "replace", boom)
    with pytest.raises(OSError, match="No space"):
        atomic_write_bytes(p, b"new")
    assert p.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_sha256_and_fingerprint(tmp_path):
    data = os.urandom(3 << 20) + b"tail"  # several chunks
    p = tmp_path / "b.bin"
    p.write_bytes(data)
    assert sha256_file(p) == hashlib.sha256(data).hexdigest()
    st = p.stat()
    assert fingerprint(p) == (len(data), st.st_mtime_ns)


def test_jpeg_mask_values_get_a_hint(tmp_path):
    a = (np.random.default_rng(0).integers(0, 2, (16, 16)) * 255).astype(np.uint8)
    p = _save(tmp_path / "m.jpg", a, quality=50)
    with pytest.raises(MaskError, match=r"m\.jpg: mask has values .*distinct values\); expected "
                                        r"0\.\.1 or 0/255 for codes \['naw', 'aye'\] \(JPEG is "
                                        r"lossy: save masks as PNG\)"):
        read_mask(p, CODES)
