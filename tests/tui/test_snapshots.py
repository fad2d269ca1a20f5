"""Snapshot tests (pytest-textual-snapshot, Textual pinned): main screen, help, the retrain
dialog, the 80×24 layout and the preview zoomed in at 80×24. Deterministic: fixed clock and data, no engine, half-cell
preview, cursor blink off, workers finished before the picture is taken.

Update after a deliberate change: pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from textual.widgets import Input

from .conftest import make_app, settle


def _ready(*keys: str):
    async def run_before(pilot) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        for box in pilot.app.screen.query(Input):
            box.cursor_blink = False
        await settle(pilot)
    return run_before


def test_main_screen(project, snap_compare):
    assert snap_compare(make_app(project), terminal_size=(120, 36), run_before=_ready("j"))


def test_help_screen(project, snap_compare):
    assert snap_compare(make_app(project), terminal_size=(120, 40),
                        run_before=_ready("question_mark"))


def test_retrain_dialog(project, snap_compare):
    assert snap_compare(make_app(project), terminal_size=(100, 30), run_before=_ready("r"))


def test_80x24(project, snap_compare):
    assert snap_compare(make_app(project), terminal_size=(80, 24), run_before=_ready())


def test_80x24_zoomed(project, snap_compare):
    assert snap_compare(make_app(project), terminal_size=(80, 24), run_before=_ready("z"))


def test_80x24_preview_zoomed_in(project, snap_compare):
    # z, then two steps in: 4 cells a pixel around the image's centre, the cursor and the
    # overview in the corner
    assert snap_compare(make_app(project), terminal_size=(80, 24),
                        run_before=_ready("z", "plus", "plus"))
