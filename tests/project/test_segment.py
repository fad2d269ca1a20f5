"""00 SEGMENT: the threshold itself on hand-made images, and segment_folder on real folders."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi

from segtriage.engine.project.config import load_config
from segtriage.engine.project.demo import dice
from segtriage.engine.project.imageio import read_mask
from segtriage.engine.project.project import Project
from segtriage.engine.project.segment import segment_folder, threshold_mask, to_grey

N = 96
YY, XX = np.mgrid[0:N, 0:N]


def disk(cy: int, cx: int, r: int) -> np.ndarray:
    return (YY - cy) ** 2 + (XX - cx) ** 2 <= r * r


DISK = disk(40, 50, 15)


def noisy(clean: np.ndarray, sigma: float = 8.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 255).astype(np.uint8)


BRIGHT = noisy(40 + 100 * DISK)


# ---------------------------------------------------------------- threshold_mask


def test_bright_disk_is_recovered():
    m = threshold_mask(BRIGHT)
    assert m.dtype == np.uint8 and m.shape == (N, N) and set(np.unique(m)) <= {0, 1}
    assert dice(m, DISK) > 0.95


def test_polarity_is_the_minority_side():
    dark = 255 - BRIGHT  # a dark disk on a bright background
    assert dice(threshold_mask(dark), DISK) > 0.95
    # forcing the other polarity gives the background instead
    assert dice(threshold_mask(dark, polarity="bright"), ~DISK) > 0.95
    assert dice(threshold_mask(BRIGHT, polarity="dark"), ~DISK) > 0.95


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_constant_image_gives_an_empty_mask(dtype):
    for value in (0, 7):
        m = threshold_mask(np.full((20, 30), value, dtype=dtype))
        assert m.shape == (20, 30) and m.dtype == np.uint8 and not m.any()
    assert not threshold_mask(np.full((20, 30, 3), 9, np.uint8)).any()


def test_colour_input_is_read_as_grey():
    rgb = np.zeros((N, N, 3), np.uint8)
    rgb[..., 0] = 60                      # reddish background
    rgb[..., 1] = np.where(DISK, 200, 20)  # green disk
    rgb = noisy(rgb.astype(float), 5)
    assert dice(threshold_mask(rgb), DISK) > 0.95
    rgba = np.dstack([rgb, np.full((N, N), 255, np.uint8)])
    assert np.array_equal(threshold_mask(rgba), threshold_mask(rgb))
    assert np.array_equal(threshold_mask(BRIGHT[..., None]), threshold_mask(BRIGHT))
    # luma weights (ITU-R 709): pure green counts 0.7154, pure red 0.2125
    assert to_grey(np.array([[[0, 255, 0], [255, 0, 0]]], np.uint8)).tolist() == [[0.7154 * 255, 0.2125 * 255]]


def test_16_bit_input_keeps_its_precision_and_gives_the_same_mask():
    wide = BRIGHT.astype(np.uint16) * 257  # 0..255 → 0..65535, a pure rescale
    assert np.array_equal(threshold_mask(wide), threshold_mask(BRIGHT))
    # a disk only 40 grey levels of 65535 above the background is still found
    faint = (1000 + 40 * DISK + np.random.default_rng(1).normal(0, 4, DISK.shape)).astype(np.uint16)
    assert dice(threshold_mask(faint), DISK) > 0.95
    assert dice(threshold_mask(BRIGHT.astype(np.float64) / 255.0), DISK) > 0.95


def test_frames_without_objects_give_empty_masks():
    rng = np.random.default_rng(2)
    assert not threshold_mask(40 + rng.normal(0, 8, (N, N))).any()
    ramp = 30 + 60 * XX / (N - 1) + rng.normal(0, 5, (N, N))  # uneven light, no objects
    assert not threshold_mask(ramp).any()
    # with a disk on it the split is kept; global Otsu also takes the bright end of the
    # ramp (its classic fault under uneven light), but the disk is all in
    m = threshold_mask(ramp + 80 * DISK).astype(bool)
    assert (m & DISK).sum() / DISK.sum() > 0.97 and m.sum() > 1.5 * DISK.sum()


def test_classical_faults_touching_objects_merge_and_speckle_goes():
    two = disk(48, 30, 12) | disk(48, 54, 12)  # 24 px apart, radius 12: they touch
    m = threshold_mask(noisy(40 + 100 * two, 5))
    assert ndi.label(m)[1] == 1  # one object where there are two
    speck = (40 + 100 * DISK).astype(float)
    speck[80, 10] = 255  # one hot pixel
    assert threshold_mask(noisy(speck, 3))[80, 10] == 0  # the opening drops it
    assert threshold_mask(noisy(speck, 3), opening=0, sigma=0)[80, 10] == 1


def test_local_threshold_copes_with_strongly_uneven_light():
    small = disk(20, 20, 6) | disk(20, 75, 6) | disk(70, 20, 6) | disk(70, 75, 6) | disk(45, 48, 6)
    img = 20 + 150 * XX / (N - 1) + 40 * small + np.random.default_rng(0).normal(0, 4, (N, N))
    assert dice(threshold_mask(img, "otsu"), small) < 0.5   # the light, not the objects
    assert dice(threshold_mask(img, "local"), small) > 0.9
    assert dice(threshold_mask(img, "local", block_size=25), small) > 0.9


def test_unknown_method_or_polarity_is_named():
    with pytest.raises(ValueError, match="unknown threshold method 'magic'; allowed: otsu, local"):
        threshold_mask(BRIGHT, "magic")
    with pytest.raises(ValueError, match="unknown polarity 'up'; allowed: auto, bright, dark"):
        threshold_mask(BRIGHT, polarity="up")
    with pytest.raises(ValueError, match="shape"):
        threshold_mask(np.zeros((2, 3, 5)))


# ---------------------------------------------------------------- segment_folder


def _png(path: Path, a: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


SQUARE = np.zeros((N, N), np.uint8)
SQUARE[10:30, 10:30] = 255


@pytest.fixture
def folder(tmp_path) -> Path:
    """Seed layout: a has a (deliberately wrong) mask, b and 'c d' have none, e is empty."""
    root = tmp_path / "data"
    _png(root / "a.png", BRIGHT)
    _png(root / "a_mask.png", SQUARE)
    _png(root / "b.png", noisy(40 + 100 * disk(60, 30, 10), seed=3))
    _png(root / "c d.png", 255 - BRIGHT)
    _png(root / "e.png", np.full((N, N), 50, np.uint8))
    return root


def test_writes_only_missing_masks(folder):
    cfg = load_config(folder)
    before = _sha(folder / "a_mask.png")
    s = segment_folder(Project.open(folder, cfg=cfg))
    assert sorted(s["written"]) == ["b_mask.png", "c d_mask.png", "e_mask.png"]
    assert s["skipped_existing"] == ["a_mask.png"]
    assert s["empty"] == ["e_mask.png"] and s["errors"] == [] and s["method"] == "otsu"
    assert _sha(folder / "a_mask.png") == before
    got = read_mask(folder / "b_mask.png", cfg.project.codes)
    assert np.array_equal(got, threshold_mask(np.array(Image.open(folder / "b.png"))))
    assert dice(got, disk(60, 30, 10)) > 0.9
    assert dice(read_mask(folder / "c d_mask.png", cfg.project.codes), DISK) > 0.95
    assert set(np.unique(np.array(Image.open(folder / "b_mask.png")))) == {0, 255}

    again = segment_folder(Project.open(folder, cfg=cfg))
    assert again["written"] == [] and len(again["skipped_existing"]) == 4


def test_overwrite_replaces_and_keeps_history(folder):
    cfg = load_config(folder)
    old = _sha(folder / "a_mask.png")
    project = Project.open(folder, cfg=cfg)
    store = project.store
    try:
        s = segment_folder(project, overwrite=True)
        assert len(s["written"]) == 4 and s["skipped_existing"] == [] and s["errors"] == []
        assert dice(read_mask(folder / "a_mask.png", cfg.project.codes), DISK) > 0.95
        versions = store.mask_versions("a_mask.png")
        assert [(v.sha256, v.source) for v in versions] == [
            (old, "scan"), (_sha(folder / "a_mask.png"), "segment")]
        assert [v.source for v in store.mask_versions("b_mask.png")] == ["segment"]
    finally:
        store.close()


def test_overwrite_keeps_the_mask_file_convention(folder):
    _png(folder / "a_mask.png", (SQUARE // 255).astype(np.uint8))  # a 0/1 mask
    segment_folder(Project.open(folder, cfg=load_config(folder)), overwrite=True)
    assert set(np.unique(np.array(Image.open(folder / "a_mask.png")))) == {0, 1}


def test_bad_image_is_reported_and_the_rest_still_done(folder):
    (folder / "bad.png").write_text("not a png at all")
    s = segment_folder(Project.open(folder, cfg=load_config(folder)))
    assert [p for p, _ in s["errors"]] == ["bad.png"]
    assert "bad.png" in s["errors"][0][1]
    assert len(s["written"]) == 3
    assert not (folder / "bad_mask.png").exists()


def test_split_layout_and_16_bit_tiff(tmp_path):
    root = tmp_path / "split"
    _png(root / "images" / "x.png", BRIGHT)
    wide = (1000 + 40 * DISK + np.random.default_rng(1).normal(0, 4, DISK.shape)).astype(np.uint16)
    (root / "images").mkdir(exist_ok=True)
    Image.fromarray(wide).save(root / "images" / "deep.tif")
    (root / "masks").mkdir()
    cfg = load_config(root)
    s = segment_folder(Project.open(root, cfg=cfg))
    assert sorted(s["written"]) == ["masks/deep.png", "masks/x.png"]
    assert dice(read_mask(root / "masks" / "x.png", cfg.project.codes), DISK) > 0.95
    # the 16-bit frame is thresholded at full depth (8 bits would leave this disk 40/257 levels)
    assert dice(read_mask(root / "masks" / "deep.png", cfg.project.codes), DISK) > 0.95

    s = segment_folder(Project.open(root, cfg=cfg), method="local", overwrite=True)
    assert s["method"] == "local" and len(s["written"]) == 2
    assert np.array_equal(read_mask(root / "masks" / "x.png", cfg.project.codes), threshold_mask(BRIGHT, "local"))


def test_bad_method_fails_before_writing(folder):
    with pytest.raises(ValueError, match="allowed: otsu, local"):
        segment_folder(Project.open(folder, cfg=load_config(folder)), method="magic")
    assert not (folder / "b_mask.png").exists()


def test_progress_is_reported(folder):
    seen = []
    segment_folder(Project.open(folder, cfg=load_config(folder)), progress=lambda i, n: seen.append((i, n)))
    assert seen == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
