"""Finding image/mask pairs: both layouts, nesting, mixed extensions, ignoring, loops."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from segtriage.engine.project.config import default_config
from segtriage.engine.project.layout import Pair, classify, detect_kind, discover, discover_one, is_ignored, orphan_problem, why_ignored


def touch(root: Path, *rels: str) -> None:
    for rel in rels:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")


@pytest.fixture
def cfg():
    return default_config()


# -- seed layout -------------------------------------------------------------------------

def test_seed_nested_mixed_extensions(tmp_path, cfg):
    touch(tmp_path, "0.bmp", "0_mask.bmp", "1.png", "1_mask.tif", "a/b/2.jpg", "a/b/2_mask.png",
          "a/3.tif", "a/b/4.jpeg", "orph_mask.png", "a/zz_mask.bmp", "README.md",
          "segtriage.toml")
    d = discover(tmp_path, cfg)
    assert d.kind == "seed"
    assert d.pairs == [
        Pair("0.bmp", "0_mask.bmp", "0_mask.bmp"),
        Pair("1.png", "1_mask.tif", "1_mask.tif"),
        Pair("a/3.tif", None, "a/3_mask.tif"),           # the image's own extension
        Pair("a/b/2.jpg", "a/b/2_mask.png", "a/b/2_mask.png"),
        # a jpeg mask would not keep class values: the folder's most common mask extension
        Pair("a/b/4.jpeg", None, "a/b/4_mask.bmp"),
    ]
    assert d.orphan_masks == ["a/zz_mask.bmp", "orph_mask.png"]
    assert d.problems == []


def test_seed_jpeg_target_defaults_to_png(tmp_path, cfg):
    touch(tmp_path, "x.JPG")
    assert discover(tmp_path, cfg).pairs == [Pair("x.JPG", None, "x_mask.png")]


def test_uppercase_extensions_and_custom_suffix(tmp_path, cfg):
    cfg = cfg.with_values(layout={"mask_suffix": "-label"})
    touch(tmp_path, "A.PNG", "A-label.PNG", "B.Tif")
    d = discover(tmp_path, cfg)
    assert d.pairs == [Pair("A.PNG", "A-label.PNG", "A-label.PNG"),
                       Pair("B.Tif", None, "B-label.Tif")]


def test_duplicate_names_and_masks_are_reported(tmp_path, cfg):
    touch(tmp_path, "x.png", "x.jpg", "x_mask.png", "x_mask.bmp")
    d = discover(tmp_path, cfg)
    assert d.pairs == [Pair("x.jpg", None, "x_mask.png"), Pair("x.png", "x_mask.png",
                                                               "x_mask.png")]
    kinds = {(p, k) for p, k, _m in d.problems}
    assert kinds == {("x_mask.bmp", "duplicate-mask"), ("x.jpg", "duplicate-name")}
    msg = dict((p, m) for p, _k, m in d.problems)
    assert msg["x.jpg"] == ("same name as image x.png, which owns the mask x_mask.png; "
                            "rename one of them")


# -- split layout --------------------------------------------------------------------------

def test_split_nested_mixed_extensions(tmp_path, cfg):
    touch(tmp_path, "images/a.png", "masks/a.bmp", "images/sub/b.jpg", "masks/sub/b.png",
          "images/sub/deep/c.tif", "masks/sub/zz.png", "images/d.bmp", "stray.png",
          "masks/e_mask.png", "images/e.png")
    d = discover(tmp_path, cfg)
    assert d.kind == "split"
    assert d.pairs == [
        Pair("images/a.png", "masks/a.bmp", "masks/a.bmp"),
        Pair("images/d.bmp", None, "masks/d.png"),
        Pair("images/e.png", None, "masks/e.png"),
        Pair("images/sub/b.jpg", "masks/sub/b.png", "masks/sub/b.png"),
        Pair("images/sub/deep/c.tif", None, "masks/sub/deep/c.png"),
    ]
    assert d.orphan_masks == ["masks/e_mask.png", "masks/sub/zz.png"]


def test_split_default_extension_follows_existing_masks(tmp_path, cfg):
    touch(tmp_path, "images/a.png", "images/b.png", "masks/a.tif")
    d = discover(tmp_path, cfg)
    assert d.pairs[1] == Pair("images/b.png", None, "masks/b.tif")


def test_split_custom_folder_names_and_override(tmp_path, cfg):
    cfg = cfg.with_values(layout={"images_dir": "img", "masks_dir": "lbl"})
    touch(tmp_path, "img/a.png", "lbl/a.png", "x.png", "x_mask.png")
    assert detect_kind(tmp_path, cfg) == "split"
    assert discover(tmp_path, cfg).pairs == [Pair("img/a.png", "lbl/a.png", "lbl/a.png")]
    cfg = cfg.with_values(layout={"kind": "seed"})  # the override wins over detection
    d = discover(tmp_path, cfg)
    assert d.kind == "seed"
    assert [p.image for p in d.pairs] == ["img/a.png", "lbl/a.png", "x.png"]


def test_split_forced_without_folders_reports_them(tmp_path, cfg):
    cfg = cfg.with_values(layout={"kind": "split"})
    touch(tmp_path, "images/a.png")
    d = discover(tmp_path, cfg)
    assert d.pairs == [Pair("images/a.png", None, "masks/a.png")]
    assert d.problems == [("masks", "missing-folder",
                           "split layout, but this folder does not exist")]


# -- ignoring ------------------------------------------------------------------------------

IGNORED = [".hidden.png", ".dir/a.png", ".segtriage/preds/a.png", "a.png~", ".a.png.swp",
           ".a.png.swx", ".#a.png", "#a.png#", "4913", "a.tmp", "sub/4913", "sub/.x_mask.png"]


@pytest.mark.parametrize("rel", IGNORED)
def test_is_ignored(rel, cfg):
    assert is_ignored(rel, cfg)


@pytest.mark.parametrize("rel", ["a.png", "sub/a_mask.png", "x.segtriage.png", "a~b.png",
                                 "4913.png", "-dash.png"])
def test_not_ignored(rel, cfg):
    assert not is_ignored(rel, cfg)


def test_ignored_files_are_not_discovered(tmp_path, cfg):
    touch(tmp_path, "a.png", *IGNORED)
    assert [p.image for p in discover(tmp_path, cfg).pairs] == ["a.png"]


def test_config_ignore_globs_and_state_dir(tmp_path, cfg):
    cfg = cfg.with_values(layout={"ignore": ["rejected", "raw/*.tif", "*_old.png"]},
                          project={"state_dir": "state"})
    touch(tmp_path, "a.png", "rejected/b.png", "x/rejected/c.png", "raw/d.tif", "raw/e.png",
          "f_old.png", "state/g.png", "x/state/h.png")
    assert [p.image for p in discover(tmp_path, cfg).pairs] == ["a.png", "raw/e.png",
                                                                "x/state/h.png"]
    assert is_ignored("state/g.png", cfg) and not is_ignored("x/state/h.png", cfg)
    assert is_ignored("x/rejected/c.png", cfg) and is_ignored("raw/d.tif", cfg)


def test_absolute_state_dir_inside_root(tmp_path, cfg):
    cfg = cfg.with_values(project={"state_dir": str(tmp_path / "st")})
    touch(tmp_path, "a.png", "st/b.png")
    assert [p.image for p in discover(tmp_path, cfg).pairs] == ["a.png"]


# -- symlinks ------------------------------------------------------------------------------

@pytest.mark.timeout(30)
def test_symlink_loops_do_not_hang(tmp_path, cfg):
    touch(tmp_path, "a.png", "sub/b.png")
    os.symlink("..", tmp_path / "sub" / "up")            # loop to its parent
    os.symlink(".", tmp_path / "sub" / "self")           # loop to itself
    os.symlink(str(tmp_path.parent), tmp_path / "above")  # the folder above the root
    os.symlink("sub", tmp_path / "alias")                # a second name for a folder inside
    os.symlink("a.png", tmp_path / "c.png")              # a symlinked file is fine
    os.symlink("nothing.png", tmp_path / "dead.png")
    d = discover(tmp_path, cfg)
    assert [p.image for p in d.pairs] == ["a.png", "c.png", "sub/b.png"]
    assert {(p, k) for p, k, _ in d.problems} == {
        ("sub/up", "symlink-loop"), ("sub/self", "symlink-loop"), ("above", "symlink-loop"),
        ("alias", "symlink-duplicate"), ("dead.png", "broken-link")}


def test_symlinked_folder_outside_root_is_followed_once(tmp_path, cfg):
    ext = tmp_path / "external"
    touch(ext, "e.png", "e_mask.png")
    os.symlink("..", ext / "back")  # a loop inside the external folder
    root = tmp_path / "root"
    touch(root, "a.png")
    os.symlink(str(ext), root / "ext")
    d = discover(root, cfg)
    assert d.pairs == [Pair("a.png", None, "a_mask.png"),
                       Pair("ext/e.png", "ext/e_mask.png", "ext/e_mask.png")]
    assert [k for _p, k, _m in d.problems] == ["symlink-loop"]


def test_non_utf8_name_is_reported(tmp_path, cfg):
    touch(tmp_path, "a.png")
    try:
        with open(os.path.join(os.fsencode(tmp_path), b"b\xff.png"), "wb") as f:
            f.write(b"x")
    except OSError:
        pytest.skip("file system refuses non-UTF-8 names")
    d = discover(tmp_path, cfg)
    assert [p.image for p in d.pairs] == ["a.png"]
    assert d.problems == [("b\\xff.png", "bad-name",
                           "file name is not valid UTF-8; rename it to be indexed")]


# -- classify and discover_one (the watcher's view of one file) ------------------------------

def test_classify_seed_and_split(cfg):
    assert classify("a/b/x_mask.png", cfg, "seed") == ("mask", "a/b/x")
    assert classify("a/b/x.PNG", cfg, "seed") == ("image", "a/b/x")
    assert classify("x.txt", cfg, "seed") == (None, "")
    assert classify(".x.png.swp", cfg, "seed") == (None, "")
    assert classify("./y.png", cfg, "seed") == ("image", "y")
    assert classify("images/a/x.png", cfg, "split") == ("image", "a/x")
    assert classify("masks/a/x.bmp", cfg, "split") == ("mask", "a/x")
    assert classify("other/x.png", cfg, "split") == (None, "")
    with pytest.raises(ValueError):
        classify("x.png", cfg, "auto")


def test_discover_one_matches_discover(tmp_path, cfg):
    touch(tmp_path, "d/x.png", "d/x_mask.bmp", "d/y.png", "d/x.jpg", "e/x.png")
    full = {p.image: p for p in discover(tmp_path, cfg).pairs}
    one = discover_one(tmp_path, cfg, "d/x_mask.bmp")
    assert {p.image for p in one.pairs} == {"d/x.png", "d/x.jpg"}
    for p in one.pairs:
        assert full[p.image] == p
    assert discover_one(tmp_path, cfg, "d/zz_mask.png").orphan_masks == []  # gone: nothing
    touch(tmp_path, "d/zz_mask.png")
    assert discover_one(tmp_path, cfg, "d/zz_mask.png").orphan_masks == ["d/zz_mask.png"]
    assert discover_one(tmp_path, cfg, "d/notes.txt").pairs == []


def test_discover_one_split(tmp_path, cfg):
    touch(tmp_path, "images/s/a.png", "masks/s/a.png", "images/s/b.png")
    one = discover_one(tmp_path, cfg, "masks/s/a.png")
    assert one.kind == "split"
    assert one.pairs == [Pair("images/s/a.png", "masks/s/a.png", "masks/s/a.png")]


def test_output_is_sorted_and_deterministic(tmp_path, cfg):
    names = [f"{i:03d}.png" for i in range(50)][::-1]
    touch(tmp_path, *names, *[f"z/{n}" for n in names])
    a, b = discover(tmp_path, cfg), discover(tmp_path, cfg)
    assert a == b
    imgs = [p.image for p in a.pairs]
    assert imgs == sorted(imgs) and len(imgs) == 100


# -- orphan masks: what is true about their image ----------------------------------------------

@pytest.mark.parametrize("setting, value, why", [
    ("extensions", [".png"], 'excluded by [layout] extensions (".jpg" is not listed)'),
    ("ignore", ["img/a/*.jpg"], 'excluded by [layout] ignore ("img/a/*.jpg")'),
    ("ignore", ["*.jpg"], 'excluded by [layout] ignore ("*.jpg")'),
    ("ignore", ["/im04.jpg/"], 'excluded by [layout] ignore ("im04.jpg")'),
])
def test_a_mask_whose_image_the_config_leaves_out_says_so(tmp_path, cfg, setting, value, why):
    # it said "mask without an image (no image img/a/im04.* beside it)" beside im04.jpg
    cfg = cfg.with_values(layout={setting: value})
    touch(tmp_path, "img/a/im04.jpg", "img/a/im04_mask.png", "img/a/im04.json",
          "img/a/im05.png", "img/a/im05_mask.png")
    expected = ("img/a/im04_mask.png", "orphan-mask",
                f"mask without an indexed image: its image img/a/im04.jpg is {why}")
    d = discover(tmp_path, cfg)
    assert d.orphan_masks == ["img/a/im04_mask.png"]
    assert orphan_problem(cfg, d, "img/a/im04_mask.png") == expected
    one = discover_one(tmp_path, cfg, "img/a/im04_mask.png")  # the watcher's view
    assert orphan_problem(cfg, one, "img/a/im04_mask.png") == expected


def test_a_split_mask_whose_image_folder_is_ignored_says_so(tmp_path, cfg):
    cfg = cfg.with_values(layout={"ignore": ["images/old"]})
    touch(tmp_path, "images/old/x.png", "masks/old/x.png", "images/y.tif", "images/y.png",
          "masks/y.png", "masks/old/z.png")
    cfg = cfg.with_values(layout={"extensions": [".png"]})
    d = discover(tmp_path, cfg)
    assert d.orphan_masks == ["masks/old/x.png", "masks/old/z.png"]
    assert [orphan_problem(cfg, d, m)[2] for m in d.orphan_masks] == [
        'mask without an indexed image: its image images/old/x.png is excluded by [layout] '
        'ignore ("images/old") on its folder images/old',
        "mask without an image (no image images/old/z.*)"]
    assert d.excluded_images == {"masks/old/x.png": [
        ("images/old/x.png", 'excluded by [layout] ignore ("images/old") on its folder '
                             'images/old')]}


def test_a_mask_with_no_image_at_all_keeps_its_message(tmp_path, cfg):
    # a sidecar of the same name is no image; neither is a folder of that name
    touch(tmp_path, "orph_mask.png", "orph.json", "orph.png/inside.txt", "b/zz_mask.bmp")
    d = discover(tmp_path, cfg)
    assert [orphan_problem(cfg, d, m) for m in d.orphan_masks] == [
        ("b/zz_mask.bmp", "orphan-mask", "mask without an image (no image b/zz.* beside it)"),
        ("orph_mask.png", "orphan-mask", "mask without an image (no image orph.* beside it)")]
    assert d.excluded_images == {}


def test_several_left_out_images_are_all_named(tmp_path, cfg):
    cfg = cfg.with_values(layout={"extensions": [".png"], "ignore": ["*.tif"]})
    touch(tmp_path, "k.jpg", "k.tif", "k_mask.png")
    d = discover(tmp_path, cfg)
    assert orphan_problem(cfg, d, "k_mask.png")[2] == (
        'mask without an indexed image: its image k.jpg is excluded by [layout] extensions '
        '(".jpg" is not listed); k.tif is excluded by [layout] ignore ("*.tif")')


@pytest.mark.parametrize("rel", IGNORED + ["rejected/b.png", "x/rejected/c.png", "raw/d.tif",
                                           "f_old.png", "state/g.png"])
def test_why_ignored_gives_a_reason_exactly_when_is_ignored(rel, cfg):
    cfg = cfg.with_values(layout={"ignore": ["rejected", "raw/*.tif", "*_old.png"]},
                          project={"state_dir": "state"})
    assert is_ignored(rel, cfg) and why_ignored(rel, cfg)
    for fine in ("a.png", "raw/e.png", "x/state/h.png", "4913.png"):
        assert not is_ignored(fine, cfg) and why_ignored(fine, cfg) is None
