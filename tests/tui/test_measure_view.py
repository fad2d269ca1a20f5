"""Measuring in the app: the metrics pane's object figures (measured off the UI thread, cached
per image, mask and model) and the data-set screen (summary numbers, three distributions, closed
while it runs), on a tiny project whose figures are worked out by hand below.

The project (40×40 px, pixel size 0.5 µm, [measure] split = "watershed"):
- two.png, accepted mask: disks of radius 5 at (12, 12) and (27, 27), 81 px each (Gauss's circle
  count N(5) = 81), and a disk of radius 3 at (35, 0) cut by the left edge: 7 + 5 + 5 + 1 = 18 px.
  3 objects, 1 on the border; density 3/1600 = 0.001875/px², 3/(1600·0.25) = 0.0075/µm²; area
  fraction 180/1600; sizes (border left out) 81 px² = 20.25 µm².
- pair.png, no mask, model v1's prediction: disks of radius 6 at (20, 14) and (20, 26) sharing
  one pixel: one component of 113 + 113 − 1 = 225 px, two objects after the watershed (113 and
  112 px); density 2/1600 = 0.00125/px², 0.005/µm²; mean size 112.5 px² = 28.125 µm².
- none.png, no mask and no prediction: not measured ("no prediction of model v1 yet").
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from textual.app import App, ComposeResult

from .conftest import T0, make_app, screen_text, settle, wait_until

SIZE = 40


def _disk(cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


TWO = _disk(12, 12, 5) | _disk(27, 27, 5) | _disk(35, 0, 3)
PAIR = _disk(20, 14, 6) | _disk(20, 26, 6)


def build(root, monkeypatch, toml: str = '[project]\npixel_size = 0.5\nunit = "µm"\n'
                                         '[measure]\nsplit = "watershed"\n'):
    from segtriage.engine.project.index import scan
    from segtriage.engine.project.project import Project
    from segtriage.engine.store import db as store_db

    monkeypatch.setattr(store_db, "now", lambda: T0)
    root.mkdir(parents=True)
    (root / "segtriage.toml").write_text(toml, encoding="utf-8")
    for name, m in (("two", TWO), ("pair", PAIR), ("none", np.zeros((SIZE, SIZE), bool))):
        Image.fromarray(np.where(m, 200, 30).astype(np.uint8), "L").save(root / f"{name}.png")
    Image.fromarray(TWO.astype(np.uint8) * 255, "L").save(root / "two_mask.png")
    project = Project.open(root)
    scan(project)
    store = project.store
    store.set_status([store.image("two.png").id], "accepted")
    mid = store.add_model(kind="plain", arch="resnet18", weights=[], config={}, epochs=1,
                          train_loss=0.2, valid_loss=0.2, valid_dice=0.9, n_train=1,
                          n_valid=1, manifest=[])
    row = store.image("pair.png")
    Image.fromarray(np.where(PAIR, 230, 20).astype(np.uint8), "L").save(
        project.state / "preds" / "pair.png")
    store.put_score(row.id, mid, fold=None, image_sha256=row.img_sha256, mask_sha256=None,
                    precision="fp32", prob_path="preds/pair.png", category="agrees",
                    metrics={})
    project.close()
    return root


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    return build(tmp_path / "tiny", monkeypatch)


def test_the_hand_worked_shapes():
    assert (_disk(12, 12, 5).sum(), _disk(35, 0, 3).sum(), TWO.sum()) == (81, 18, 180)
    assert PAIR.sum() == 225


# -- the pane on its own -----------------------------------------------------------------------

class PaneApp(App):
    """The metrics pane alone, wired as the app is asked to wire it."""

    CSS = "MetricsPane { height: 1fr; }"   # as in the app: a fixed size, no re-layout
    _detail_timer = None   # what conftest.settle looks at

    def __init__(self, root) -> None:
        super().__init__()
        from segtriage.engine.project.project import Project

        self.project = Project.open(root)

    def compose(self) -> ComposeResult:
        from segtriage.tui.app.widgets.metrics import MetricsPane

        self.pane = MetricsPane("", project=self.project)
        yield self.pane

    def select(self, name: str | None):
        row = None
        if name is not None:
            r = self.project.store.image(name)
            row = SimpleNamespace(id=r.id, name=name, error=None, stale=False)
        self.pane.show(None, row, None, None)
        self.pane.request_objects(row)
        return row


def pane_text(app) -> str:
    return screen_text(app)


async def _figures(pilot, name):
    app = pilot.app
    row = app.select(name)
    await settle(pilot)
    return app.pane.objects.cached(row.id), pane_text(app)


async def test_the_pane_shows_a_reviewed_masks_figures_worked_out_by_hand(tiny):
    app = PaneApp(tiny)
    async with app.run_test(size=(90, 20)) as pilot:
        fig, text = await _figures(pilot, "two.png")
        assert fig["source"] == "reviewed" and fig["model"] is None
        assert (fig["components"], fig["objects"], fig["border_objects"]) == (3, 3, 1)
        assert fig["sized_objects"] == 2
        assert fig["density_px"] == 3 / 1600 and fig["density_unit"] == 3 / (1600 * 0.25)
        assert fig["area_fraction"] == 180 / 1600
        assert fig["area_mean_px"] == fig["area_median_px"] == 81
        assert fig["area_mean_unit"] == 81 * 0.25
        assert "── objects ── reviewed mask" in text
        # 3/1600 = 0.001875 is 0.00187499… as a double: 3 digits show 0.00187
        assert "objects 3 → 3 split · border 1 · density 0.00187/px² · 0.0075/µm²" in text
        assert f"area {180 / 1600:.1%}" in text
        assert "size mean 81 px² (20.2 µm²) · size median 81 px² (20.2 µm²)" in text
        assert "(2 sized: border left out)" in text


async def test_the_pane_shows_the_split_of_a_prediction_and_why_an_image_is_not_measured(tiny):
    app = PaneApp(tiny)
    async with app.run_test(size=(90, 20)) as pilot:
        fig, text = await _figures(pilot, "pair.png")
        assert fig["source"] == "prediction" and fig["model"] == 1
        assert (fig["components"], fig["objects"], fig["border_objects"]) == (1, 2, 0)
        assert fig["area_fraction"] == 225 / 1600
        assert fig["area_mean_px"] == 112.5 and fig["area_mean_unit"] == 112.5 * 0.25
        assert "── objects ── model v1 prediction" in text
        assert "objects 1 → 2 split · border 0 · density 0.00125/px² · 0.005/µm²" in text
        assert "size mean 112 px² (28.1 µm²)" in text and "sized" not in text
        fig, text = await _figures(pilot, "none.png")
        assert fig["error"] == "no prediction of model v1 yet (predict it first)"
        assert "── objects ── no prediction of model v1 yet (predict it first)" in text
        app.select(None)
        await settle(pilot)
        assert "objects" not in pane_text(app)


async def test_without_a_split_or_pixel_size_the_pane_says_pixels_only(tmp_path, monkeypatch):
    root = build(tmp_path / "plain", monkeypatch, toml="")
    app = PaneApp(root)
    async with app.run_test(size=(90, 20)) as pilot:
        fig, text = await _figures(pilot, "pair.png")
        assert (fig["components"], fig["objects"], fig["unit"]) == (1, 1, None)
        assert "objects 1 · border 0 · density 0.000625/px² · area" in text
        assert "size mean 225 px² · size median 225 px²" in text and "µm" not in text


async def test_figures_are_cached_per_image_mask_and_model(tiny):
    from segtriage.engine.project import history

    app = PaneApp(tiny)
    async with app.run_test(size=(90, 20)) as pilot:
        feed = app.pane.objects
        await _figures(pilot, "two.png")
        await _figures(pilot, "pair.png")
        assert feed.measured == 2
        for name in ("two.png", "pair.png", "two.png"):   # back and forth: from the cache
            await _figures(pilot, name)
        assert feed.measured == 2
        # a new mask (written through its history, then indexed): measured again
        project = app.project
        row = project.store.image("two.png")
        one = _disk(20, 20, 5)
        history.write_mask(project, row, one.astype(np.uint8), "edit")   # indexes it too
        fig, text = await _figures(pilot, "two.png")
        assert feed.measured == 3
        assert (fig["objects"], fig["border_objects"], fig["area_mean_px"]) == (1, 0, 81)
        assert "objects 1 → 1 split · border 0" in text
        # a new model: the prediction is measured again; the reviewed mask is not
        store = project.store
        mid = store.add_model(kind="plain", arch="resnet18", weights=[], config={},
                              epochs=1, train_loss=0.2, valid_loss=0.2, valid_dice=0.9,
                              n_train=1, n_valid=1, manifest=[])
        pair = store.image("pair.png")
        store.put_score(pair.id, mid, fold=None, image_sha256=pair.img_sha256,
                        mask_sha256=None, precision="fp32", prob_path="preds/pair.png",
                        category="agrees", metrics={})
        fig, _text = await _figures(pilot, "pair.png")
        assert fig["model"] == mid and feed.measured == 4
        fig, _text = await _figures(pilot, "two.png")
        assert feed.measured == 4


def slow_measuring(monkeypatch) -> tuple[threading.Event, list[str]]:
    """measure_target waits for the returned gate; the images it was called for, in order."""
    from segtriage.engine.project import measure
    from segtriage.engine.project.measure import report

    gate = threading.Event()
    calls: list[str] = []
    real = report.measure_target

    def slow(project, t, *a, **kw):
        calls.append(t.image)
        assert gate.wait(10), "the test never opened the gate"
        return real(project, t, *a, **kw)

    monkeypatch.setattr(report, "measure_target", slow)    # measure_project's
    monkeypatch.setattr(measure, "measure_target", slow)   # the package's (the pane's)
    return gate, calls


# -- in the app: the cursor never waits --------------------------------------------------------

async def test_a_slow_measurement_never_holds_the_cursor(tiny, monkeypatch):
    gate, calls = slow_measuring(monkeypatch)
    app = make_app(tiny)   # the app asks for the figures on every cursor move itself
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_until(pilot, lambda: app.loaded and len(calls) == 1, "the first measuring")
        names = [r.path for r in app.model.view]
        assert len(names) == 3
        # the worker is stuck in the first image: the cursor still moves, row by row
        for i in (1, 2):
            await pilot.press("j")
            assert app.current_row.path == names[i]
        await pilot.pause(0.1)
        assert "measuring…" in screen_text(app)
        gate.set()
        await wait_until(pilot, lambda: "── objects ──" in screen_text(app)
                         and "measuring…" not in screen_text(app), "the last row's figures")
        await settle(pilot)
        # the row passed over was never measured: the first one, then the last one asked for
        assert calls == [names[0], names[2]]


# -- the data-set screen -----------------------------------------------------------------------

def test_plot_data_of_small_sets():
    from segtriage.tui.app.screens.dataset import Bars, count_bars, hist_bars, histogram, scale_of

    assert count_bars("c", [3, 2]) == Bars("c", [2.0, 3.0], [1, 1], 0.8, [2.0, 3.0])
    assert count_bars("c", [0, 2, 2]) == Bars("c", [0.0, 1.0, 2.0], [1, 0, 2], 0.8,
                                              [0.0, 1.0, 2.0])
    assert count_bars("c", []) == Bars("c")
    many = count_bars("c", list(range(0, 100, 3)))   # 0 … 99: 100 counts, a histogram instead
    assert len(many.xs) == 6 and sum(many.ys) == 34 and many.ticks[::4] == [0.0, 99.0]
    assert histogram([1.0, 2.0, 2.0, 3.0], bins=2) == ([1.5, 2.5], [1, 3], [1.0, 2.0, 3.0])
    assert histogram([5.0, 5.0]) == ([5.0], [2], [5.0, 5.0])
    sizes = hist_bars("s", [20.25, 20.25, 28.0, 28.25])   # 4 values: 5 bins of 1.6
    assert sizes.ys == [2, 0, 0, 0, 2] and sizes.xs == pytest.approx([21.05, 22.65, 24.25,
                                                                      25.85, 27.45])
    assert sizes.ticks == [20.25, 22.25, 24.25, 26.25, 28.25]
    assert (scale_of([0.001875, 0.00125]), scale_of([0.0075]), scale_of([0.5, 3.0])) == (
        -3, -3, 0)
    assert scale_of([2e-5]) == -6 and scale_of([]) == 0


async def _open(pilot):
    from segtriage.tui.app.screens.dataset import DatasetScreen

    app = pilot.app
    await settle(pilot)
    screen = DatasetScreen(app.project)
    await app.push_screen(screen)
    await wait_until(pilot, lambda: screen.report is not None, "the data set measured")
    await settle(pilot)
    return screen


async def test_the_data_set_screen_shows_the_numbers_of_a_known_project(tiny):
    app = make_app(tiny)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await _open(pilot)
        s = screen.report.summary
        assert (s["measured"], s["from_reviewed"], s["from_predictions"], s["errors"]) == (
            2, 1, 1, 1)
        assert (s["objects"], s["border_objects"], s["sized_objects"]) == (5, 1, 4)
        text = screen_text(app)
        assert "Objects in the data set · tiny · source best · esc closes" in text
        assert "images measured 2 (1 reviewed mask, 1 prediction) · 1 not measured" in text
        assert "objects 5 · on the border 1 · per image 2.5 (median 2.5) · area 12.7%" in text
        # 5 objects over 3200 px; sizes 81, 81, 113, 112 px²: mean 96.75, median 96.5
        assert ("density 0.00156/px² · 0.00625/µm² · size mean 96.8 px² (24.2 µm²) · median "
                "96.5 px² (24.1 µm²)") in text
        assert ("split watershed (min_distance 5, compactness 0) · border objects not sized · "
                "0.5 µm/px") in text
        assert "not measured: none.png: no prediction of model v1 yet" in text
        assert "object size (µm²) · 4 objects, border ones left out" in text
        assert "objects per image · 2 images" in text
        assert "number density per image (×10⁻³ /µm²)" in text
        # the modal screen keeps the review keys away: a is not "accept" here
        before = app.project.store.image("pair.png").status
        await pilot.press("a")
        await settle(pilot)
        assert app.project.store.image("pair.png").status == before
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is not screen and "Objects in the data set" not in screen_text(app)


async def test_escape_closes_the_data_set_screen_while_it_measures(tiny, monkeypatch):
    from segtriage.tui.app.screens.dataset import DatasetScreen

    from segtriage.tui.app.widgets.metrics import MetricsPane

    gate, calls = slow_measuring(monkeypatch)
    # only the data-set screen measures here: the pane's figures of the selected row would
    # wait at the same gate
    monkeypatch.setattr(MetricsPane, "request_objects", lambda self, row: None)
    app = make_app(tiny)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = DatasetScreen(app.project)
        await app.push_screen(screen)
        await wait_until(pilot, lambda: len(calls) == 1, "the first image measuring")
        assert screen.running and "measuring…" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not screen
        assert screen.worker.is_cancelled
        gate.set()
        await wait_until(pilot, lambda: not screen.running, "the worker to stop")
        # it stopped before the second of the three images, and never drew anything
        assert calls == ["none.png"] and screen.report is None


async def test_an_empty_project_and_a_failed_measuring_are_said(tmp_path, monkeypatch):
    from segtriage.engine.project import measure
    from segtriage.engine.project.project import Project
    from segtriage.tui.app.screens.dataset import DatasetScreen

    root = tmp_path / "empty"
    root.mkdir()
    Project.open(root).close()
    app = make_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot)
        text = screen_text(app)
        assert screen.report.summary["images"] == 0
        assert "images measured 0 · " not in text and "images measured 0" in text
        assert "objects 0 · on the border 0 · area ·" in text
        assert "density ·/px² · size mean · · median ·" in text
        assert "· no pixel size" in text and "split none" in text
        assert "object size (px²) · 0 objects, border ones left out" in text
        assert "objects per image · 0 images" in text

    def broken(*a, **kw):
        raise OSError("the disk is gone")

    monkeypatch.setattr(measure, "measure_project", broken)
    app = make_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = DatasetScreen(app.project)
        await app.push_screen(screen)
        await wait_until(pilot, lambda: screen.error is not None, "the error")
        await settle(pilot)
        assert "cannot measure: the disk is gone" in screen_text(app)


# -- snapshots ---------------------------------------------------------------------------------

def _dataset_before():
    async def run_before(pilot) -> None:
        await _open(pilot)
    return run_before


def test_dataset_80x24(tiny, snap_compare):
    assert snap_compare(make_app(tiny), terminal_size=(80, 24), run_before=_dataset_before())


def test_dataset_160x50(tiny, snap_compare):
    assert snap_compare(make_app(tiny), terminal_size=(160, 50), run_before=_dataset_before())
