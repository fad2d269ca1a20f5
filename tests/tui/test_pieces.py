"""Pure pieces of the widgets: the preview's overlays, sparklines, status lines, columns."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from segtriage.engine.store.rows import EngineState
from segtriage.tui.paint.view import Layers, Scene, Viewport
from segtriage.tui.app.widgets.result_list import COLUMNS, fmt_num, layout_columns
from segtriage.tui.app.widgets.sparkline import bars, spark
from segtriage.tui.app.widgets.status import age, duration, format_status, job_line

COLORS = {"seg-mask": (0, 255, 0), "seg-pred": (255, 0, 255), "seg-uncertain": (255, 128, 0)}
# what the preview shows by default: mask and prediction as outlines
SHOWN = Layers(prediction=True, minimap=False)


def _scene():
    image = np.full((8, 8, 3), 100, np.uint8)
    mask = np.zeros((8, 8), np.uint8)
    mask[2:6, 2:6] = 1
    prob = np.zeros((8, 8), np.uint8)
    prob[4:8, 4:8] = 255
    return image, mask, prob


def _one_to_one(h: int, w: int) -> Viewport:
    """The whole image, one dot per pixel (half-cells: w columns, h / 2 rows)."""
    return Viewport(h, w, cols=w, rows=h // 2, zoom=1.0)


def test_outline_draws_the_boundary_only_and_mask_over_prediction():
    image, mask, prob = _scene()
    out = Scene(image, mask, prob, colors=COLORS).render(_one_to_one(8, 8), SHOWN)
    assert out.shape == (8, 8, 3)
    assert tuple(out[2, 2]) == (0, 255, 0)          # mask corner: boundary
    assert tuple(out[3, 3]) == (100, 100, 100)      # mask inside: untouched
    assert tuple(out[5, 5]) == (0, 255, 0)          # both boundaries: the mask wins
    assert tuple(out[7, 7]) == (255, 0, 255)        # prediction corner
    assert tuple(out[0, 0]) == (100, 100, 100)


def test_tint_blends_and_toggles_hide_layers():
    image, mask, prob = _scene()
    scene = Scene(image, mask, prob, colors=COLORS)
    out = scene.render(_one_to_one(8, 8), Layers(outline=False, minimap=False))
    # 100 * 0.55 + 255 * 0.45 = 169.75 → 169 (truncated)
    assert tuple(out[3, 3]) == (55, 169, 55)
    assert tuple(out[7, 7]) == (100, 100, 100)
    out = scene.render(_one_to_one(8, 8), Layers(mask=False, prediction=False, minimap=False))
    assert (out == 100).all()


def test_uncertainty_map_marks_half_probabilities():
    image = np.full((4, 4, 3), 0, np.uint8)
    prob = np.array([[128] * 4, [0] * 4, [255] * 4, [64] * 4], np.uint8)
    out = Scene(image, None, prob, colors=COLORS).render(
        _one_to_one(4, 4), Layers(mask=False, uncertainty=True, minimap=False))
    # P 128/255: u = 1 - |2P - 1| = 254/255, blended at 0.9 u = 0.8965 over black:
    # (255, 128, 0) × 0.8965 = (228.6, 114.7, 0), truncated; P 64/255: u = 128/255, 0.9 u =
    # 0.4518: (115.2, 57.8, 0); P 0 and 1: u = 0, nothing
    assert [tuple(v) for v in out[0]] == [(228, 114, 0)] * 4
    assert [tuple(v) for v in out[3]] == [(115, 57, 0)] * 4
    assert (out[1] == 0).all() and (out[2] == 0).all()


def test_the_preview_fits_the_image_keeping_the_aspect_ratio():
    image = np.full((10, 40, 3), 90, np.uint8)
    outside = (7, 8, 9)                              # the theme's background
    vp = Viewport(10, 40, cols=20, rows=15)          # 20 x 30 dots: half as wide as the image
    assert vp.zoom == 0.5 and vp.window() == (0, 0, 10, 40)
    out = Scene(image, colors={"outside": outside}).render(vp, Layers(minimap=False))
    # 10 rows at half scale are 5 dot rows, centred in 30: rows 12..16, the full width
    inside = (out == 90).all(axis=(1, 2))
    assert np.flatnonzero(inside).tolist() == [12, 13, 14, 15, 16]
    assert (out[~inside] == outside).all()


def test_sparklines_and_histograms():
    assert spark([0, 1, 2, 3, 4, 5, 6, 7], 8) == "▁▂▃▄▅▆▇█"
    assert spark([1.0, 0.5], 5, 0.0, 1.0) == "█▅"
    assert spark(list(range(100)), 4) == "▁▃▆█"
    assert spark([], 5) == "" and spark([2, 2], 3) == "▅▅"
    assert bars([0, 2, 4]) == " ▅█"   # 2/4 of 7 steps = 3.5 → 4


def test_ages_durations_and_numbers():
    assert [age(s) for s in (5, 125, 7260, 40000, 200000)] == ["5s", "2m", "2h01m", "11h", "2d"]
    assert duration(75) == "1m15s" and duration(3725) == "1h02m"
    assert fmt_num(None) == "    ·" and fmt_num(0.8734) == "0.873" and fmt_num(12.34) == " 12.3"


def test_columns_drop_least_needed_first_on_narrow_lists():
    assert [c.id for c, _ in layout_columns(200)] == [c.id for c in COLUMNS]
    narrow = [c.id for c, _ in layout_columns(50)]
    assert "name" in narrow and "dice" in narrow and "status" in narrow
    assert "objects" not in narrow and "category" not in narrow
    assert sum(w for _, w in layout_columns(77)) + len(layout_columns(77)) - 1 == 77


class _Job:
    id, kind, state, progress, message, eta, heartbeat = 7, "train", "running", 0.5, \
        "epoch 2/4", 90.0, 1000.0
    cancel_requested = False
    finished_at = error = None


def test_status_lines():
    info = {"pid": 4242, "engine": EngineState(device="cpu", state="idle", watcher="native",
                                               heartbeat=1000.0),
            "running": _Job(), "queued": [], "curve": [
                {"train_loss": 0.9, "valid_dice": 0.2}, {"train_loss": 0.5, "valid_dice": 0.6}],
            "model": SimpleNamespace(id=3, created_at=1000.0 - 7200, n_train=40,
                                     valid_dice=0.8123, kind="plain"),
            "edits_since_train": 5, "backup_at": None, "edits_since_backup": 2}
    text = format_status(info, 1030.0)
    lines = text.splitlines()
    assert lines[0].startswith("[$success]● engine[/] 4242 · cpu · idle · watch native")
    assert "50%" in lines[1] and "epoch 2/4" in lines[1] and "ETA 1m00s" in lines[1]
    assert "0.5" in lines[1] and "0.600" in lines[1]
    assert "model [b]v3[/b] · 2h00m ago · 40 masks · valid Dice 0.812" in lines[2]
    assert "5 mask edits since" in lines[2]
    assert lines[3].startswith("[$warning]no backup yet")
    info["pid"] = None
    lines = format_status(info, 1030.0).splitlines()
    assert "engine offline" in lines[0]
    # a job the engine died in: no ETA counting down, a word on what happens next
    assert "stopped with the engine" in lines[1] and "ETA" not in lines[1]
    info["running"] = None
    assert "no job running" in job_line(info, 1030.0)
    # no model yet: the job that is making one is named
    info.update(model=None, queued=[_Job()])
    assert "no model yet (train #7 makes one)" in format_status(info, 1030.0).splitlines()[2]
    info["queued"] = []
    assert "no model yet (r trains one)" in format_status(info, 1030.0).splitlines()[2]
    rebound = format_status(info, 1030.0, {"retrain": "T", "backup": "^b"}.get).splitlines()
    assert "no model yet (T trains one)" in rebound[2] and "(^b backs up)" in rebound[3]


def test_status_names_the_checkpoint_an_early_ranking_comes_from():
    ck = SimpleNamespace(id=-2, valid_dice=0.41234, info={"step": 15, "steps": 200})
    info = {"model": None, "running": _Job(), "queued": [], "edits_since_train": 0,
            "checkpoint": ck, "checkpoint_rows": 96}
    line = format_status(info | {"pid": 1, "engine": {}, "backup_at": None,
                                 "edits_since_backup": 0}, 1030.0).splitlines()[2]
    assert line == ("[$warning]c[/] ranking from checkpoint (step 15 of 200) · valid Dice "
                    "0.412 · train #7 makes the model · 0 mask edits")
    # the final model has scored 90 of them: the other 6 still show the checkpoint's
    info.update(model=SimpleNamespace(id=1, created_at=1000.0, n_train=77, valid_dice=0.8,
                                      kind="plain"), checkpoint_rows=6, running=None)
    line = format_status(info | {"pid": 1, "engine": {}, "backup_at": None,
                                 "edits_since_backup": 0}, 1030.0).splitlines()[2]
    assert line == ("model [b]v1[/b] · 30s ago · 77 masks · valid Dice 0.800 · [$warning]c[/] "
                    "6 from checkpoint (step 15 of 200) · [$foreground-muted]0 mask edits "
                    "since[/]")
    info.update(checkpoint=None, checkpoint_rows=0)
    assert "checkpoint" not in format_status(info | {"pid": 1, "engine": {}, "backup_at": None,
                                                     "edits_since_backup": 0}, 1030.0)


def test_halfcell_lines_match_textual_image_halfcell():
    """The viewer's half-cell lines draw what textual-image's half-cell renderable draws
    (colours a multiple of 4: the viewer keeps 6 bits a channel)."""
    import io

    from PIL import Image
    from rich.console import Console
    from rich.segment import Segment
    from textual_image.renderable.halfcell import Image as TIHalfcell

    from segtriage.tui.paint.scene import StripCache

    rng = np.random.default_rng(0)
    a = (rng.integers(0, 64, (6, 5, 3)) * 4).astype(np.uint8)
    a[0:2, 0:3] = 8                                   # a run of equal cells: one segment
    pic = Image.fromarray(a, "RGB")
    ours = StripCache().strips(a)
    console = Console(file=io.StringIO(), width=5, height=3, color_system="truecolor")
    theirs = list(Segment.split_lines(console.render(TIHalfcell(pic, width=5, height=3),
                                                     console.options)))
    assert len(ours) == 3 and [s.cell_length for s in ours] == [5, 5, 5]

    def cells(segments):
        return [(ch, seg.style.color.triplet, seg.style.bgcolor.triplet)
                for seg in segments for ch in seg.text]

    assert len(theirs) == 3
    for mine, lib in zip(ours, theirs):
        assert cells(list(mine)) == cells(lib)
    assert len(list(ours[0])) == 3                    # 3 equal cells, then 2 different


def test_renderer_choice():
    from segtriage.tui.paint.renderers import select_renderer

    plain = select_renderer(None)                     # the viewer's own half-cell lines
    assert (plain.name, plain.strips, plain.widget) == ("halfcell", None, None)
    assert select_renderer("kitty").widget.__name__ == "TGPImage"
    assert select_renderer("sixel").widget.__name__ == "Image"   # textual-image's Sixel widget
    from PIL import Image
    lines = select_renderer("unicode").strips(Image.new("RGB", (4, 4), (200, 200, 200)))
    assert len(lines) == 2 and all(s.cell_length == 4 for s in lines)
