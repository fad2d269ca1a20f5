"""engine/project/measure/: shapes with known answers, the watershed split, units, the border rule,
reproducible output and the sources of a small project."""

from __future__ import annotations

import math

import numpy as np
import pytest

from segtriage.engine.project import measure


def disk(shape, cy, cx, r):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def ellipse(shape, cy, cx, a, b, theta):
    """Semi-axes a (along the direction theta from the row axis) and b."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(float)
    dy, dx = yy - cy, xx - cx
    u = dy * math.cos(theta) + dx * math.sin(theta)
    v = -dy * math.sin(theta) + dx * math.cos(theta)
    return (u / a) ** 2 + (v / b) ** 2 <= 1


# -- split_labels ---------------------------------------------------------------------------

def test_two_touching_disks_split_into_two_objects_of_the_right_areas():
    d1, d2 = disk((80, 120), 40, 40, 15), disk((80, 120), 40, 68, 15)
    m = d1 | d2
    assert (d1 & d2).any()  # they overlap: one connected component
    merged = measure.split_labels(m, method="none")
    assert merged.max() == 1 and merged.dtype == np.int32
    lab = measure.split_labels(m)
    assert lab.dtype == np.int32 and lab.max() == 2
    assert ((lab > 0) == m).all()  # every mask pixel is in exactly one object
    areas = np.bincount(lab.ravel())[1:]
    half = (m.sum() - (d1 & d2).sum()) / 2 + (d1 & d2).sum() / 2
    assert np.allclose(areas, half, rtol=0.03), (areas, half)
    # object 1 is the one whose first pixel comes first in raster order: the left disk
    assert lab[40, 30] == 1 and lab[40, 78] == 2


@pytest.mark.parametrize("shape_", ["bar", "square", "disk"])
def test_a_single_convex_object_is_never_cut(shape_):
    m = np.zeros((60, 120), bool)
    if shape_ == "bar":
        m[10:20, 5:115] = True     # a ridge of equal distance maxima
    elif shape_ == "square":
        m[5:45, 5:45] = True
    else:
        m = disk(m.shape, 30, 60, 20.5)
    assert measure.split_labels(m, min_distance=3).max() == 1


def test_split_none_is_the_connected_components_of_objects():
    from segtriage.engine.project.scoring import objects

    rng = np.random.default_rng(3)
    m = rng.random((64, 64)) > 0.7
    lab, n = objects.label(m)
    got = measure.split_labels(m, method="none")
    assert got.max() == n
    # the same partition, numbered in raster order of each object's first pixel
    assert len(np.unique(np.stack([lab.ravel(), got.ravel()]), axis=1).T) == n + 1
    firsts = [np.flatnonzero(got.ravel() == k)[0] for k in range(1, n + 1)]
    assert firsts == sorted(firsts)


def test_split_keeps_every_pixel_and_every_component():
    rng = np.random.default_rng(7)
    m = np.zeros((96, 96), bool)
    for _ in range(25):
        m |= disk(m.shape, *rng.uniform(0, 96, 2), rng.uniform(1, 12))
    m[0, 0] = True  # a single pixel
    lab = measure.split_labels(m)
    assert ((lab > 0) == m).all()
    assert lab.max() >= measure.split_labels(m, method="none").max()
    assert np.array_equal(lab, measure.split_labels(m.copy()))  # deterministic


@pytest.mark.parametrize("kw, msg", [
    (dict(min_distance=0), "min_distance must be an integer >= 1"),
    (dict(min_distance=2.5), "min_distance must be an integer >= 1"),
    (dict(compactness=-1.0), "compactness must be a finite number >= 0"),
    (dict(method="magic"), "split method must be one of none, watershed"),
])
def test_bad_split_settings_are_named(kw, msg):
    with pytest.raises(ValueError, match=msg):
        measure.split_labels(np.ones((4, 4), bool), **kw)


# -- one image: shapes with known answers ---------------------------------------------------

def only(rows):
    assert len(rows) == 1, rows
    return rows[0]


@pytest.mark.parametrize("r", [8, 15, 30])
def test_a_disk_has_the_area_diameter_and_eccentricity_of_a_disk(r):
    m = disk((100, 100), 50, 50, r)
    obj = only(measure.measure_mask(m)[0])
    assert obj["area_px"] == pytest.approx(math.pi * r * r, rel=0.03)
    assert obj["equivalent_diameter_px"] == pytest.approx(2 * r, rel=0.02)
    assert obj["eccentricity"] < 0.1
    assert obj["major_axis_px"] == pytest.approx(2 * r, rel=0.05)
    assert obj["perimeter_px"] == pytest.approx(2 * math.pi * r, rel=0.06)
    assert obj["solidity"] > 0.9  # a digital disk against its hull of pixel centres
    assert (obj["centroid_row_px"], obj["centroid_col_px"]) == pytest.approx((50, 50))
    assert (obj["bbox_min_row"], obj["bbox_min_col"], obj["bbox_max_row"],
            obj["bbox_max_col"]) == (50 - r, 50 - r, 51 + r, 51 + r)
    assert obj["touches_border"] is False


@pytest.mark.parametrize("theta", [0.0, 0.5, -1.0])
def test_an_ellipse_has_its_axes_and_orientation(theta):
    a, b = 30.0, 12.0
    m = ellipse((120, 120), 60, 60, a, b, theta)
    obj = only(measure.measure_mask(m)[0])
    assert obj["major_axis_px"] == pytest.approx(2 * a, rel=0.02)
    assert obj["minor_axis_px"] == pytest.approx(2 * b, rel=0.03)
    assert obj["eccentricity"] == pytest.approx(math.sqrt(1 - (b / a) ** 2), abs=0.01)
    # skimage: the angle between the row axis and the major axis, in (-pi/2, pi/2]
    assert obj["orientation"] == pytest.approx(theta, abs=0.02)
    assert obj["area_px"] == pytest.approx(math.pi * a * b, rel=0.02)


def test_intensity_under_the_object_is_the_images():
    m = disk((40, 40), 20, 20, 6)
    img = np.full((40, 40), 10.0)
    img[m] = 100.0
    img[20, 20] = 250.0
    obj = only(measure.measure_mask(m, img)[0])
    n = m.sum()
    assert obj["intensity_mean"] == pytest.approx((100.0 * (n - 1) + 250.0) / n)
    assert obj["intensity_max"] == 250.0
    rgb = np.stack([img, img, img], axis=2).astype(np.uint8)
    assert measure.grey(rgb)[20, 20] == pytest.approx(250.0)


def test_a_border_object_is_flagged_left_out_of_sizes_and_counted_for_density():
    m = disk((100, 100), 50, 50, 10) | disk((100, 100), 0, 50, 10)  # one cut by the top edge
    objs, img = measure.measure_mask(m)
    assert [o["touches_border"] for o in objs] == [True, False]
    inner = objs[1]["area_px"]
    assert img["objects"] == 2 and img["border_objects"] == 1 and img["sized_objects"] == 1
    assert img["density_px"] == 2 / (100 * 100)
    assert img["area_mean_px"] == img["area_median_px"] == inner
    assert img["area_fraction"] == m.sum() / m.size
    both = measure.measure_mask(m, settings=measure.Settings(exclude_border_from_sizes=False))[1]
    assert both["sized_objects"] == 2
    assert both["area_mean_px"] == pytest.approx((inner + objs[0]["area_px"]) / 2)
    assert both["density_px"] == img["density_px"]


def test_physical_units_scale_areas_by_the_square_lengths_linearly_density_inversely():
    m = ellipse((90, 90), 45, 45, 20, 10, 0.3) | disk((90, 90), 10, 10, 4)
    s = 0.65
    objs_px, img_px = measure.measure_mask(m)
    objs_u, img_u = measure.measure_mask(m, settings=measure.Settings(pixel_size=s, unit="µm"))
    for o in objs_px:
        assert o["area_unit"] is None and o["perimeter_unit"] is None
    for p, u in zip(objs_px, objs_u):
        assert u["area_unit"] == pytest.approx(p["area_px"] * s * s)
        for name in ("equivalent_diameter", "perimeter", "major_axis", "minor_axis",
                     "centroid_row", "centroid_col"):
            assert u[f"{name}_unit"] == pytest.approx(p[f"{name}_px"] * s)
        assert u["eccentricity"] == p["eccentricity"]  # no unit
    assert img_px["density_unit"] is None
    assert img_u["density_unit"] == pytest.approx(img_px["objects"] / (90 * 90 * s * s))
    assert img_u["area_mean_unit"] == pytest.approx(img_px["area_mean_px"] * s * s)
    assert img_u["equivalent_diameter_median_unit"] == pytest.approx(
        img_px["equivalent_diameter_median_px"] * s)


def test_the_watershed_split_is_used_for_counts_and_sizes():
    d1, d2 = disk((80, 120), 40, 40, 15), disk((80, 120), 40, 68, 15)
    m = d1 | d2
    one = measure.measure_mask(m)[1]
    two = measure.measure_mask(m, settings=measure.Settings(split="watershed"))[1]
    assert (one["objects"], two["objects"]) == (1, 2)
    assert two["area_mean_px"] == pytest.approx(m.sum() / 2)
    assert one["area_mean_px"] == m.sum()


# -- the config -----------------------------------------------------------------------------

def test_config_pixel_size_unit_and_measure_section(tmp_path):
    from segtriage.engine.project.config import default_config, load_config

    d = default_config()
    assert d.project.pixel_size is None and d.measure.split == "none"
    assert measure.settings_from(d) == measure.Settings()
    (tmp_path / "segtriage.toml").write_text(
        '[project]\npixel_size = 0.65\nunit = "nm"\n[measure]\nsplit = "watershed"\n'
        'min_distance = 3\ncompactness = 0.5\nexclude_border_from_sizes = false\n')
    s = measure.settings_from(load_config(tmp_path))
    assert s == measure.Settings(split="watershed", min_distance=3, compactness=0.5,
                                 exclude_border_from_sizes=False, pixel_size=0.65, unit="nm")
    assert measure.settings_from(load_config(tmp_path), split="none").split == "none"


@pytest.mark.parametrize("text, expected", [
    ("[project]\npixel_size = 0", "project.pixel_size = 0 is not allowed; expected a finite "
                                  "number > 0.0"),
    ("[project]\npixel_size = -1.5", "project.pixel_size = -1.5 is not allowed"),
    ("[project]\npixel_size = nan", "project.pixel_size = nan is not allowed"),
    ('[project]\npixel_size = "0.65"', "project.pixel_size = '0.65' is not allowed"),
    ('[project]\nunit = ""', "project.unit = '' is not allowed; expected a short unit name"),
    ('[measure]\nsplit = "yes"', "measure.split = 'yes' is not allowed; expected one of "
                                 "'none', 'watershed'"),
    ("[measure]\nmin_distance = 0", "measure.min_distance = 0 is not allowed; expected an "
                                    "integer ≥ 1 and ≤ 1000"),
    ("[measure]\ncompactness = -1", "measure.compactness = -1 is not allowed"),
    ('[measure]\nexclude_border_from_sizes = "no"', "measure.exclude_border_from_sizes = 'no'"),
    ("[measure]\nborder = true", "unknown key measure.border; allowed: split"),
])
def test_bad_measure_settings_are_named_with_the_file(tmp_path, text, expected):
    from segtriage.engine.project.config import ConfigError, load_config

    (tmp_path / "segtriage.toml").write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path)
    assert expected in str(e.value) and str(tmp_path / "segtriage.toml") in str(e.value)


def test_the_template_shows_pixel_size_commented_and_round_trips(tmp_path):
    from segtriage.engine.project.config import default_config, load_config, template, write_template

    text = template()
    assert "# pixel_size = 0.65" in text and "[measure]" in text
    write_template(tmp_path)
    assert load_config(tmp_path).as_dict() == default_config().as_dict()
    (tmp_path / "segtriage.toml").write_text(text.replace("# pixel_size = 0.65",
                                                          "pixel_size = 0.65"))
    assert load_config(tmp_path).project.pixel_size == 0.65


# -- one image of a project, for the app's metrics pane ---------------------------------------

def test_measure_target_counts_the_components_before_the_split(tmp_path):
    """Two disks of radius 6 whose edges share one pixel: one connected component, two
    objects after the watershed; ``components`` says both (and equals ``objects`` unsplit)."""
    from PIL import Image

    from segtriage.engine.project.index import scan
    from segtriage.engine.project.project import Project

    m = disk((40, 40), 20, 14, 6) | disk((40, 40), 20, 26, 6)
    assert m.sum() == 113 + 113 - 1  # Gauss's circle count N(6) = 113, one pixel shared
    Image.fromarray(np.where(m, 200, 30).astype(np.uint8), "L").save(tmp_path / "pair.png")
    Image.fromarray(m.astype(np.uint8) * 255, "L").save(tmp_path / "pair_mask.png")
    project = Project.open(tmp_path)
    scan(project)
    row = project.store.image("pair.png")
    project.store.set_status([row.id], "accepted")
    t = measure.target_for(project, project.store.image(row.id), "best")
    assert t.source == "reviewed"
    split = measure.Settings(split="watershed")
    _objs, img = measure.measure_target(project, t, split, components=True)
    assert (img["components"], img["objects"], img["area_fraction"]) == (1, 2, 225 / 1600)
    _objs, img = measure.measure_target(project, t, measure.Settings(), components=True)
    assert (img["components"], img["objects"]) == (1, 1)
    assert "components" not in measure.measure_target(project, t, split)[1]
    project.close()


# -- a prediction target: the current model's map, through the guarded reader ---------------

@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_prediction_is_measured_from_the_current_map_and_a_bomb_map_is_an_error(tmp_path):
    from PIL import Image

    from segtriage.engine.project.index import scan
    from segtriage.engine.project.project import Project
    from tests.project.test_review import bomb_png

    m = np.zeros((30, 40), bool)
    m[5:15, 10:20] = True          # 100 pixels
    Image.fromarray(np.full((30, 40), 90, np.uint8), "L").save(tmp_path / "a.png")
    project = Project.open(tmp_path)
    scan(project)
    row = project.store.image("a.png")
    mid = project.store.add_model(kind="plain", arch="resnet18", weights=[], config={},
                                  epochs=1, train_loss=0.2, valid_loss=0.2, valid_dice=0.8,
                                  n_train=2, n_valid=1, manifest=[])
    path = project.state / "preds" / "a.png"
    Image.fromarray(np.where(m, 200, 10).astype(np.uint8), "L").save(path)
    project.store.put_score(row.id, mid, fold=None, image_sha256=row.img_sha256,
                            mask_sha256=None, precision="fp32", prob_path="preds/a.png",
                            category=None, metrics={})
    t = measure.target_for(project, row, "best")
    assert (t.source, t.model, t.path, t.shape) == ("prediction", mid, path, (30, 40))
    img = measure.measure_target(project, t, measure.Settings())[1]
    assert (img["objects"], img["error"]) == (1, None) and img["area_fraction"] == 100 / 1200
    bomb_png(path)
    img = measure.measure_target(project, t, measure.Settings())[1]
    assert img["error"].startswith(f"{path}: declares 10000×10000 pixels")
    assert "decompression bomb" in img["error"]
    project.close()
