"""The demo data set: same arguments give the same bytes, and its truth manifest is right."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi

from segtriage.engine.project.demo import CORRUPTIONS, dice, load_manifest, make_demo, truth_dir
from segtriage.engine.project.segment import threshold_mask


def _hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under root and its truth folder, keyed by a path that names which."""
    out = {}
    for base, tag in ((root, "data"), (truth_dir(root), "truth")):
        for p in sorted(base.rglob("*")):
            if p.is_file():
                out[f"{tag}/{p.relative_to(base).as_posix()}"] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _load(path: Path) -> np.ndarray:
    return np.array(Image.open(path))


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict, dict]:
    """The default demo set (96 images of 128², seed 0), built once for this module."""
    root = tmp_path_factory.mktemp("demo") / "demo"
    summary = make_demo(root)
    return root, summary, load_manifest(root)


# ---------------------------------------------------------------- determinism


def test_same_arguments_give_identical_bytes(tmp_path):
    a = _hashes(_made(tmp_path / "a" / "d", seed=3))
    b = _hashes(_made(tmp_path / "b" / "d", seed=3))
    assert a == b
    # 12 images, 12 masks, 12 truth masks, the manifest
    assert len(a) == 37


def test_another_seed_gives_other_images(tmp_path):
    a = _hashes(_made(tmp_path / "a" / "d", seed=3))
    c = _hashes(_made(tmp_path / "c" / "d", seed=4))
    images = [k for k in a if k.startswith("data/") and not k.endswith("_mask.png")]
    assert images and all(a[k] != c[k] for k in images)


def _made(root: Path, seed: int) -> Path:
    make_demo(root, count=12, size=64, seed=seed)
    return root


# ---------------------------------------------------------------- layout and manifest


def test_seed_layout_files_and_formats(demo):
    root, summary, m = demo
    names = sorted(p.name for p in root.iterdir())
    assert len(names) == 192
    assert names[:2] == ["img_000.png", "img_000_mask.png"]
    im = Image.open(root / "img_000.png")
    assert (im.mode, im.size) == ("L", (128, 128))
    values = set()
    for p in root.glob("*_mask.png"):
        mk = Image.open(p)
        assert (mk.mode, mk.size) == ("L", (128, 128))
        values |= set(np.unique(np.array(mk)).tolist())
    assert values == {0, 255}
    # PIL wrote no metadata chunks (time, text) that could differ between runs
    assert not Image.open(root / "img_000.png").info


def test_truth_lives_outside_the_data_folder(demo):
    root, summary, m = demo
    tdir = truth_dir(root)
    assert tdir == root.parent / "demo-truth"
    assert Path(summary["truth"]) == tdir
    assert not any(p.name == "manifest.json" for p in root.rglob("*"))
    assert sorted(p.name for p in (tdir / "masks").iterdir()) == sorted(p.name for p in root.glob("*_mask.png"))


def test_manifest_fields(demo):
    root, summary, m = demo
    assert (m["seed"], m["count"], m["size"], m["corrupt_frac"]) == (0, 96, 128, 0.25)
    assert m["corruption_mix"] == {k: 0.2 for k in CORRUPTIONS}
    assert m["images"] == [f"img_{i:03d}.png" for i in range(96)]
    assert all((root / p).is_file() for p in m["images"])
    assert all((root / p).is_file() for p in m["corrupted"])
    assert set(m["given_dice"]) == set(m["masks"]) and set(m["objects"]) == set(m["images"])
    # sorted keys, so the file itself is stable
    text = (truth_dir(root) / "manifest.json").read_text()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def test_corrupted_share_and_kinds(demo):
    root, summary, m = demo
    # round(0.25 * 96) = 24; 24 / 5 kinds = 4.8 each: four kinds get 5 and the last (in
    # CORRUPTIONS order, all remainders being equal) gets 4
    assert len(m["corrupted"]) == 24 == summary["corrupted"]
    counts = {k: list(m["corrupted"].values()).count(k) for k in CORRUPTIONS}
    assert counts == {"object_removed": 5, "false_object": 5, "eroded": 5, "dilated": 5, "shifted": 4}
    assert m["corrupted_counts"] == counts == summary["corrupted_by_kind"]


def test_every_corrupted_mask_is_substantially_wrong(demo):
    root, _, m = demo
    for rel, kind in m["corrupted"].items():
        given = _load(root / rel) > 0
        classical = threshold_mask(_load(root / rel.replace("_mask.png", ".png"))).astype(bool)
        true = _load(truth_dir(root) / "masks" / rel) > 0
        # each kind halves/doubles the foreground or shifts it off itself: Dice <= 2/3
        assert dice(given, classical) <= 2 / 3 + 1e-9, (rel, kind)
        assert dice(given, true) < 0.8, (rel, kind)
        assert m["given_dice"][rel] == round(dice(given, true), 4)


def test_uncorrupted_masks_are_the_classical_method_imperfect_but_close(demo):
    root, _, m = demo
    scores = []
    for rel in m["masks"]:
        if rel in m["corrupted"]:
            continue
        given = _load(root / rel) > 0
        assert np.array_equal(given, threshold_mask(_load(root / rel.replace("_mask.png", ".png"))) > 0), rel
        scores.append(dice(given, _load(truth_dir(root) / "masks" / rel) > 0))
    assert len(scores) == 72
    assert 0.5 < np.mean(scores) < 0.98
    assert min(scores) < 0.5  # some are badly wrong by themselves (missed or merged objects)
    assert np.median(scores) > 0.85  # but most are close
    corrupted = [m["given_dice"][r] for r in m["corrupted"]]
    assert np.mean(corrupted) < np.mean(scores) - 0.25


def test_objects_vary_in_number_and_size(demo):
    root, summary, m = demo
    counts = list(m["objects"].values())
    assert summary["empty_images"] == counts.count(0) >= 1
    assert max(counts) >= 15
    areas = []
    for rel in m["masks"]:
        lab, n = ndi.label(_load(truth_dir(root) / "masks" / rel) > 0)
        areas += np.bincount(lab.ravel())[1:].tolist()
    assert min(areas) < 30 and max(areas) > 1000
    # empty frames have empty truth
    for img, n in m["objects"].items():
        if n == 0:
            assert not _load(truth_dir(root) / "masks" / img.replace(".png", "_mask.png")).any()


def test_images_are_noisy_and_unevenly_lit(demo):
    root, _, m = demo
    img = _load(root / m["images"][0]).astype(float)
    assert img.std() > 1.0 and len(np.unique(img)) > 20
    means = [_load(root / p).mean() for p in m["images"]]
    assert max(means) - min(means) > 15  # exposure and lighting vary between frames


# ---------------------------------------------------------------- options and errors


def test_custom_mix_and_fraction(tmp_path):
    s = make_demo(tmp_path / "d", count=10, size=48, seed=1, corrupt_frac=0.5,
                  corruption_mix={"eroded": 3, "shifted": 1})
    m = load_manifest(tmp_path / "d")
    # 5 corruptions at 3:1 → 3.75 / 1.25 → 3 + 1, the larger remainder (eroded) gets the 5th
    assert sorted(m["corrupted"].values()) == ["eroded"] * 4 + ["shifted"]
    assert m["corruption_mix"] == {"eroded": 0.75, "shifted": 0.25}
    assert s["corrupted_by_kind"] == {"eroded": 4, "shifted": 1}


def test_no_corruption(tmp_path):
    make_demo(tmp_path / "d", count=6, size=48, corrupt_frac=0.0)
    m = load_manifest(tmp_path / "d")
    assert m["corrupted"] == {}


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="unknown corruption kind.*'melted'.*allowed: object_removed"):
        make_demo(tmp_path / "d", corruption_mix=["melted"])
    with pytest.raises(ValueError, match="corrupt_frac"):
        make_demo(tmp_path / "d", corrupt_frac=1.5)
    with pytest.raises(ValueError, match="count"):
        make_demo(tmp_path / "d", count=0)


def test_refuses_a_non_empty_folder_unless_overwrite(tmp_path):
    root = tmp_path / "d"
    (root / ".segtriage").mkdir(parents=True)  # hidden state alone does not count
    make_demo(root, count=2, size=32)
    (root / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        make_demo(root, count=3, size=32)
    make_demo(root, count=5, size=32, seed=1, overwrite=True)
    make_demo(root, count=3, size=32, seed=2, overwrite=True)  # stale img_003, img_004 go
    assert (root / "keep.txt").read_text() == "mine"  # not a demo file: left alone
    assert sorted(p.name for p in root.glob("img_*.png")) == [
        "img_000.png", "img_000_mask.png", "img_001.png", "img_001_mask.png", "img_002.png", "img_002_mask.png"]
    assert load_manifest(root)["seed"] == 2


def test_load_manifest_without_truth(tmp_path):
    with pytest.raises(FileNotFoundError, match="no demo truth manifest"):
        load_manifest(tmp_path / "nothing")
    assert truth_dir("/x/data/") == Path("/x/data-truth")
