"""Pure pieces of the widgets: overlay composition, sparklines, status lines, columns."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from segtriage.tui.app.widgets.preview import Layers, compose
from segtriage.tui.app.widgets.result_list import COLUMNS, fmt_num, layout_columns
from segtriage.tui.app.widgets.sparkline import bars, spark
from segtriage.tui.app.widgets.status import age, duration, format_status, job_line

COLORS = {"seg-mask": (0, 255, 0), "seg-pred": (255, 0, 255), "seg-uncertain": (255, 128, 0)}


def _scene():
    image = np.full((8, 8, 3), 100, np.uint8)
    mask = np.zeros((8, 8), np.uint8)
    mask[2:6, 2:6] = 1
    prob = np.zeros((8, 8), np.uint8)
    prob[4:8, 4:8] = 255
    return image, mask, prob


def test_outline_draws_the_boundary_only_and_mask_over_prediction():
    image, mask, prob = _scene()
    out = np.asarray(compose(image, mask, prob, (8, 8), Layers(), COLORS))
    assert out.shape == (8, 8, 3)
    assert tuple(out[2, 2]) == (0, 255, 0)          # mask corner: boundary
    assert tuple(out[3, 3]) == (100, 100, 100)      # mask inside: untouched
    assert tuple(out[5, 5]) == (0, 255, 0)          # both boundaries: the mask wins
    assert tuple(out[7, 7]) == (255, 0, 255)        # prediction corner
    assert tuple(out[0, 0]) == (100, 100, 100)


def test_tint_blends_and_toggles_hide_layers():
    image, mask, prob = _scene()
    out = np.asarray(compose(image, mask, prob, (8, 8),
                             Layers(prediction=False, outline=False), COLORS))
    # 100 * 0.55 + 255 * 0.45 = 169.75 → 169 (truncated)
    assert tuple(out[3, 3]) == (55, 169, 55)
    assert tuple(out[7, 7]) == (100, 100, 100)
    out = np.asarray(compose(image, mask, prob, (8, 8), Layers(mask=False, prediction=False),
                             COLORS))
    assert (out == 100).all()


def test_uncertainty_map_marks_half_probabilities():
    image = np.full((4, 4, 3), 0, np.uint8)
    prob = np.array([[128] * 4, [0] * 4, [255] * 4, [64] * 4], np.uint8)
    out = np.asarray(compose(image, None, prob, (4, 4),
                             Layers(mask=False, prediction=False, uncertainty=True), COLORS))
    assert out[0, 0, 0] > 200 and (out[1] == 0).all() and (out[2] == 0).all()
    assert 0 < out[3, 0, 0] < out[0, 0, 0]


def test_compose_fits_the_pane_keeping_the_aspect_ratio():
    image = np.zeros((10, 40, 3), np.uint8)
    pic = compose(image, None, None, (20, 30), Layers(), COLORS)
    assert pic.size == (20, 4)   # 20 wide, 5 high → even for half-cells
    pic = compose(image, None, None, (80, 100), Layers(), COLORS)
    assert pic.size == (80, 20)


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
    info = {"pid": 4242, "engine": {"device": "cpu", "state": "idle", "watcher": "native",
                                    "heartbeat": 1000.0},
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
    """The built-in half-cell lines draw what textual-image's half-cell renderable draws."""
    import io

    from PIL import Image
    from rich.console import Console
    from rich.segment import Segment
    from textual_image.renderable.halfcell import Image as TIHalfcell

    from segtriage.tui.app.widgets.preview import halfcell_strips

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    a[0:2, 0:3] = 7                                   # a run of equal cells: one segment
    pic = Image.fromarray(a, "RGB")
    ours = halfcell_strips(pic)
    console = Console(file=io.StringIO(), width=5, height=3, color_system="truecolor")
    theirs = list(Segment.split_lines(console.render(TIHalfcell(pic, width=5, height=3),
                                                     console.options)))
    assert len(ours) == 3 and [s.cell_length for s in ours] == [5, 5, 5]

    def cells(segments):
        return [(ch, seg.style.color.triplet, seg.style.bgcolor.triplet)
                for seg in segments for ch in seg.text]

    for mine, lib in zip(ours, theirs):
        assert cells(list(mine)) == cells(lib)
    assert len(list(ours[0])) == 3                    # 3 equal cells, then 2 different


def test_renderer_choice():
    from segtriage.tui.app.widgets.preview import halfcell_strips, select_renderer

    assert select_renderer(None).strips is halfcell_strips
    assert select_renderer("kitty").widget.__name__ == "TGPImage"
    assert select_renderer("sixel").widget.__name__ == "Image"   # textual-image's Sixel widget
    from PIL import Image
    lines = select_renderer("unicode").strips(Image.new("RGB", (4, 4), (200, 200, 200)))
    assert len(lines) == 2 and all(s.cell_length == 4 for s in lines)
