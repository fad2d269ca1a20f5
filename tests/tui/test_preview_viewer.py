"""The preview is the painter's viewer, read-only: zoom, pan (keys, drags, the wheel), the next
disagreement centred, overlays toggled as in the painter, split outlines with the project's
[measure] settings; no key or drag changes the mask or the selected row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from textual import events

from fakes import picture_widget
from segtriage.engine.project.config import load_config
from segtriage.engine.project.index import scan
from segtriage.engine.project.project import Project
from segtriage.engine.store import Store

from .conftest import T0, make_app, settle

N = 96                       # the images are N x N
OBJECT = (20, 36, 20, 36)    # y0, y1, x0, x1: in the mask and in the prediction
MISSED = (60, 68, 64, 72)    # only in the prediction: the one disagreement


def _square(box) -> np.ndarray:
    a = np.zeros((N, N), bool)
    a[box[0]:box[1], box[2]:box[3]] = True
    return a


def build(root: Path, monkeypatch, toml: str = "") -> Path:
    """Two images ("one" with the missed square, "two" agreeing), their masks, one model."""
    from segtriage.engine.store import db as store_db

    monkeypatch.setattr(store_db, "now", lambda: T0)
    root.mkdir(parents=True)
    if toml:
        (root / "segtriage.toml").write_text(toml)
    mask = _square(OBJECT)
    for name in ("one", "two"):
        img = np.where(mask, 200, 60).astype(np.uint8)
        Image.fromarray(np.stack([img] * 3, axis=2), "RGB").save(root / f"{name}.png")
        Image.fromarray(mask.astype(np.uint8) * 255, "L").save(root / f"{name}_mask.png")
    cfg = load_config(root)
    store = Store(cfg.state_path(root) / "state.db")
    scan(Project(root, cfg, store))
    mid = store.add_model(kind="plain", arch="resnet18", weights=[], config={}, epochs=8,
                          train_loss=0.2, valid_loss=0.2, valid_dice=0.9, n_train=2,
                          n_valid=0, manifest=[])
    preds = cfg.state_path(root) / "preds"
    preds.mkdir(exist_ok=True)
    for name, pred in (("one", mask | _square(MISSED)), ("two", mask)):
        row = store.image(f"{name}.png")
        Image.fromarray(np.where(pred, 230, 20).astype(np.uint8), "L").save(
            preds / f"{name}.png")
        store.put_score(row.id, mid, fold=None, image_sha256=row.img_sha256,
                        mask_sha256=row.mask_sha256, precision="fp32",
                        prob_path=f"preds/{name}.png",
                        category="disagrees" if name == "one" else "agrees",
                        metrics={"priority": 2.0 if name == "one" else 0.5, "dice": 0.9})
    store.close()
    return root


def note(app) -> str:
    return str(app.query_one("#preview-note").render())


async def zoomed(pilot) -> None:
    """z at 80 x 24: the preview large (38 x 19 cells), the keys on its viewer."""
    await settle(pilot)
    await pilot.press("z")
    await settle(pilot)
    v = pilot.app.preview.viewer
    assert pilot.app.focused is v
    assert (v.vp.cols, v.vp.rows) == (38, 19)     # 38 x 38 dots: fit is 38/96 of a cell


async def test_zoom_from_the_list_keeps_the_keys_and_the_row(tmp_path, monkeypatch):
    root = build(tmp_path / "p", monkeypatch)
    app = make_app(root)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        v = app.preview.viewer
        assert app.current_row.name == "one.png" and v.vp.is_fit() and v.vp.shows_all()
        fit = v.vp.zoom
        await pilot.press("plus")
        assert v.vp.zoom > fit and not v.vp.shows_all()
        await pilot.press("equals_sign")
        assert v.vp.zoom == 2 * [z for z in v.vp.levels() if z > fit][0]
        assert "fit" not in str(app.preview.border_subtitle)
        await pilot.press("minus", "minus")
        assert v.vp.is_fit()
        await pilot.press("plus", "plus", "0")
        assert v.vp.is_fit()
        # the list kept the keys and the row all along
        assert app.focused is app.result_list and app.current_row.name == "one.png"


async def test_z_zooms_in_steps_and_pans_with_keys_drags_and_the_wheel(tmp_path, monkeypatch):
    root = build(tmp_path / "p", monkeypatch)
    app = make_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await zoomed(pilot)
        v = app.preview.viewer
        assert v.vp.zoom == 38 / 96 and v.vp.levels()[1:3] == [0.5, 1.0]
        await pilot.press("plus")
        assert v.vp.zoom == 0.5
        await pilot.press("1")                     # 1:1 at the cursor (the image's centre)
        assert v.cursor == (48, 48) and (v.vp.zoom, v.vp.cy, v.vp.cx) == (1.0, 48.5, 48.5)
        assert v.vp.window() == (29, 29, 68, 68)   # 38 x 38 pixels around the centre
        await pilot.press("L")                     # a screen right: 0.9 x 38 = 34 pixels,
        assert v.vp.cx == 96 - 19                  # stopped at the image's right edge
        assert v.vp.window() == (29, 58, 68, 96) and v.cursor == (48, 82)
        await pilot.press("h", "h")                # the cursor moves, the view stays
        assert v.cursor == (48, 80) and v.vp.cx == 77
        # a drag pans: 20 cells right moves the view 20 pixels left (no stroke, no edit)
        await pilot.mouse_down(v, offset=(10, 10))
        assert v.cursor == (50, 68)                # the pixel under the press
        await pilot.hover(v, offset=(30, 10))
        await pilot.mouse_up(v, offset=(30, 10))
        assert (v.vp.cy, v.vp.cx) == (48.5, 57.0)
        # the wheel: 3 cells of rows down (6 pixels at 1:1); with shift, sideways
        v.post_message(events.MouseScrollDown(v, 5, 5, 0, 1, 0, False, False, False))
        await pilot.pause()
        assert (v.vp.cy, v.vp.cx) == (54.5, 57.0)
        v.post_message(events.MouseScrollUp(v, 5, 5, 0, -1, 0, True, False, False))
        await pilot.pause()
        assert (v.vp.cy, v.vp.cx) == (54.5, 51.0)
        assert "1x" in str(app.preview.border_subtitle)
        assert note(app).startswith("x 68 y 50 · mask 0 · P 0.08")


async def test_the_next_disagreement_is_centred_at_a_zoom_that_shows_it(tmp_path, monkeypatch):
    root = build(tmp_path / "p", monkeypatch)
    app = make_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await zoomed(pilot)
        v = app.preview.viewer
        await pilot.press("n")
        await settle(pilot)                        # found in a worker the first time
        # the missed square (rows 60-67, columns 64-71): the largest zoom at which 8 pixels
        # fill at most half of 38 dots is 2, centred on (64, 68); the cursor on its pixel
        # nearest the centroid (63.5, 67.5), the first of four in reading order
        assert (v.vp.zoom, v.vp.cy, v.vp.cx) == (2.0, 64.0, 68.0)
        assert v.vp.window() == (54, 58, 74, 78) and v.cursor == (63, 67)
        assert note(app).startswith("1/1 missed (64 px) · x 67 y 63 · mask 0 · P 0.90")
        await pilot.press("0", "N")                # the previous one: the same, only one
        assert (v.vp.zoom, v.vp.cy, v.vp.cx) == (2.0, 64.0, 68.0)
        assert app.current_row.name == "one.png"


async def test_the_bracket_keys_jump_from_the_list(tmp_path, monkeypatch):
    root = build(tmp_path / "p", monkeypatch)
    app = make_app(root)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        v = app.preview.viewer
        await pilot.press("right_square_bracket")
        await settle(pilot)
        assert (v.vp.cy, v.vp.cx) == (64.0, 68.0) and not v.vp.is_fit()
        y0, x0, y1, x1 = v.vp.window()
        assert y0 <= 60 and 68 <= y1 and x0 <= 64 and 72 <= x1
        assert note(app).startswith("1/1 missed (64 px) · unreviewed · disagrees")
        assert app.focused is app.result_list
        await pilot.press("j")                     # another image: the view fits it again
        await settle(pilot)
        assert app.current_row.name == "two.png" and v.vp.is_fit()
        await pilot.press("left_square_bracket")
        await settle(pilot)
        assert v.vp.is_fit() and any("no disagreement between the model and the mask"
                                     in n.message for n in app._notifications)


async def test_no_key_or_drag_of_the_preview_edits_the_mask_or_moves_the_row(tmp_path,
                                                                             monkeypatch):
    root = build(tmp_path / "p", monkeypatch)
    mask_file = root / "one_mask.png"
    before = mask_file.read_bytes()
    app = make_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await zoomed(pilot)
        v = app.preview.viewer
        shown = v.scene.mask.copy()
        keys = ["h", "j", "k", "l", "left", "right", "up", "down", "H", "J", "K", "L",
                "shift+left", "shift+down", "1", "n", "N", "c", "plus", "minus", "0",
                "right_square_bracket", "left_square_bracket", "m", "o", "v", "O", "C",
                # painter keys that no app action has: nothing either
                "space", "i", "I", "g", "G", "U", "w", "ctrl+r"]
        for key in keys:
            await pilot.press(key)
        await settle(pilot)
        for button in (1, 2, 3):                   # every button pans
            await pilot.mouse_down(v, offset=(5, 5), button=button)
            await pilot.hover(v, offset=(15, 8))
            await pilot.mouse_up(v, offset=(15, 8))
        await settle(pilot)
        assert app.focused is v and app.screen.has_class("-zoom")
        assert np.array_equal(v.scene.mask, shown) and mask_file.read_bytes() == before
        store = Store(load_config(root).state_path(root) / "state.db")
        assert [m.source for m in store.mask_versions("one_mask.png")] == ["scan"]
        assert store.image("one.png").status == "unreviewed"
        assert app.current_row.name == "one.png" and app.current_row.status == "unreviewed"
        await pilot.press("escape")                # the keys back on the list, out of z
        assert app.focused is app.result_list and not app.screen.has_class("-zoom")
        await pilot.press("j")
        assert app.current_row.name == "two.png"


async def test_tab_puts_the_keys_on_the_preview_and_escape_takes_them_back(tmp_path,
                                                                            monkeypatch):
    root = build(tmp_path / "p", monkeypatch)
    app = make_app(root)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        v = app.preview.viewer
        await pilot.press("tab")
        assert app.focused is v and v.cursor == (48, 48)
        await pilot.press("j", "j", "l")           # the viewer's cursor, not the list's
        assert v.cursor == (50, 49) and app.current_row.name == "one.png"
        assert note(app).startswith("x 49 y 50 · mask 0 · P 0.08")
        await pilot.press("escape")
        assert app.focused is app.result_list
        assert note(app).startswith("unreviewed · disagrees")
        await pilot.press("j")
        assert app.current_row.name == "two.png"


async def test_overlays_toggle_as_in_the_painter_and_splits_use_the_measure_settings(
        tmp_path, monkeypatch):
    root = build(tmp_path / "p", monkeypatch,
                 "[measure]\nmin_distance = 7\ncompactness = 0.5\n")
    app = make_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await zoomed(pilot)
        v, pv = app.preview.viewer, app.preview
        assert (v.overlays.mask, v.overlays.prediction, v.overlays.outline) == (True, True, True)
        await pilot.press("c")                     # as in the painter
        await settle(pilot)
        assert pv.show_splits and v.overlays.splits
        assert v._split_labels().settings == {"min_distance": 7, "compactness": 0.5}
        assert "split" in str(pv.border_subtitle)
        await pilot.press("C", "m", "o", "v", "O")
        assert (v.overlays.splits, v.overlays.mask, v.overlays.prediction,
                v.overlays.uncertainty, v.overlays.outline) == (False, False, False, True, False)
        assert "□mask" in str(pv.border_subtitle) and "tint" in str(pv.border_subtitle)


async def test_a_preview_key_is_rebindable_and_may_be_an_app_key(tmp_path, monkeypatch):
    root = build(tmp_path / "p", monkeypatch, '[keymap]\npreview_next = "x"\n')
    app = make_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await zoomed(pilot)
        assert not any("keymap" in n.message for n in app._notifications)
        one = app.current_row.id
        await pilot.press("x")                     # in the preview: the next disagreement
        await settle(pilot)
        assert (app.preview.viewer.vp.cy, app.preview.viewer.vp.cx) == (64.0, 68.0)
        assert app.current_row.status == "unreviewed"
        await pilot.press("escape", "x")           # in the list: flag, as ever
        await settle(pilot)
        assert app.model.by_id[one].status == "flagged"


async def test_kitty_and_sixel_get_a_picture_of_the_cells_pixels(tmp_path, monkeypatch):
    from segtriage.tui.paint.renderers import Renderer

    root = build(tmp_path / "p", monkeypatch)
    picture_cls = picture_widget()
    app = make_app(root, renderer=Renderer("kitty", widget=picture_cls, cell_px=(4, 8)))
    async with app.run_test(size=(80, 24)) as pilot:
        await zoomed(pilot)
        v = app.preview.viewer
        assert (v.vp.dot_w, v.vp.dot_h) == (4, 8)
        pic = v.query_one(picture_cls)
        # 38 x 19 cells of 4 x 8 pixels; fit: 152 / 96 pixels per image pixel
        assert pic.image.size == (152, 152) and v.vp.zoom == 152 / 96 / 4
        assert (pic.styles.width.value, pic.styles.height.value) == (38, 19)
        n = len(pic.shown)
        await pilot.press("1")                     # one cell per image pixel, at the cursor
        await settle(pilot)
        assert len(pic.shown) > n and (v.vp.zoom, v.vp.cy, v.vp.cx) == (1.0, 48.5, 48.5)
        frame = np.asarray(pic.image)
        assert frame.shape == (152, 152, 3)
        # 4 picture pixels per image pixel; the view starts at 48.5 - 152/2/4 = 29.5, so the
        # cursor's pixel (48, 48) is picture pixels 74..77, drawn as its outline
        cursor = tuple(v.scene.colors["cursor"])
        assert all(tuple(frame[74, x]) == cursor for x in range(74, 78))
        assert tuple(frame[77, 74]) == cursor and tuple(frame[75, 75]) != cursor
        assert tuple(frame[73, 74]) != cursor and tuple(frame[74, 78]) != cursor


async def test_textual_images_own_kitty_widget_and_the_unicode_lines(tmp_path, monkeypatch):
    from textual_image.widget import TGPImage

    from segtriage.tui.paint.renderers import select_renderer

    root = build(tmp_path / "p", monkeypatch)
    kitty = select_renderer("kitty")
    app = make_app(root, renderer=kitty)
    async with app.run_test(size=(80, 24)) as pilot:
        await zoomed(pilot)
        pic = app.preview.viewer.query_one("#preview-picture")
        cw, ch = kitty.cell_px
        assert isinstance(pic, TGPImage) and pic.image.size == (38 * cw, 19 * ch)
    app = make_app(root, renderer=select_renderer("unicode"))
    async with app.run_test(size=(80, 24)) as pilot:
        await zoomed(pilot)
        v = app.preview.viewer
        lines = [v.render_line(y) for y in range(19)]
        assert all(line.cell_length == 38 for line in lines)
        assert "▀" not in "".join(line.text for line in lines)   # not the half-cell lines


async def test_the_scenes_kept_for_the_last_rows_stay_within_their_pixels(tmp_path,
                                                                          monkeypatch):
    from segtriage.tui.app.widgets import preview

    root = build(tmp_path / "p", monkeypatch)
    for budget, kept in ((40_000_000, 2), (N * N, 1)):   # room for both, then for one 96²
        monkeypatch.setattr(preview, "SCENE_PIXELS", budget)
        app = make_app(root)
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot)
            await pilot.press("j")
            await settle(pilot)
            scenes = app.preview._scenes
            assert len(scenes) == kept
            assert [files[0] for (files, _stamps) in scenes][-1] == "two.png"
