"""The mask's name on the painter's status line, first, so that it shows at 80 x 24 (the
terminal's window title is not always on screen: tmux, SSH)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from segtriage.tui.paint.app import PaintApp, shown_name
from segtriage.tui.paint.document import open_document


def test_shown_name_is_one_line_and_short():
    assert shown_name("cells_mask.png") == "cells_mask.png"
    assert shown_name("a\nb\tc.png") == "a?b?c.png"
    # 28 characters: the first 13, an ellipsis, the last 14
    got = shown_name("plate 7 well B12 field 0042 ünï cødé_mask.png")
    assert got == "plate 7 well … cødé_mask.png" and len(got) == 28


async def test_the_status_line_starts_with_the_masks_name(tmp_path):
    name = "plate 7 well B12 field 0042 ünï cødé_mask.png"
    Image.fromarray(np.zeros((12, 16), np.uint8)).save(tmp_path / name)
    app = PaintApp(open_document(tmp_path / name))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        status = str(app.query_one("#paint-status").render())
        assert status.startswith("plate 7 well … cødé_mask.png  x 8 y 6")
        await pilot.press("space")                       # a message comes after the name
        status = str(app.query_one("#paint-status").render())
        assert status.startswith("plate 7 well … cødé_mask.png  paint | x 8 y 6")
        # what the terminal shows: the screen's bottom rows hold the name
        screen = app.export_screenshot()
        assert "plate&#160;7&#160;well&#160;…&#160;cødé_mask.png" in screen
