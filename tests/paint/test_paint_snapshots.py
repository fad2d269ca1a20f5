"""Snapshot tests of the painter (pytest-textual-snapshot, Textual pinned): 80×24 at fit with
the prediction, and 160×50 zoomed in (overview, cursor, brush) with the uncertainty map.

Update after a deliberate change: pytest tests/paint/test_paint_snapshots.py --snapshot-update
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from segtriage.tui.paint.app import PaintApp
from segtriage.tui.paint.document import open_document


def _doc(tmp_path):
    yy, xx = np.mgrid[0:96, 0:128]
    blob = (xx - 40) ** 2 + (yy - 48) ** 2 <= 20 ** 2
    blob2 = (xx - 95) ** 2 + (yy - 40) ** 2 <= 14 ** 2
    img = np.where(blob | blob2, 190, 50).astype(np.uint8) + (xx % 7).astype(np.uint8)
    mask = blob.copy()
    mask[40:46, 55:62] = False                       # a bite out of the first object
    prob = np.where(blob | blob2, 235, 15).astype(np.uint8)
    prob[((xx - 95) ** 2 + (yy - 40) ** 2 <= 17 ** 2) & ~blob2] = 128   # a doubtful rim
    Image.fromarray(img).save(tmp_path / "cells.png")
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "cells_mask.png")
    Image.fromarray(prob).save(tmp_path / "cells_prob.png")
    return open_document(tmp_path / "cells_mask.png", image=tmp_path / "cells.png",
                         prob=tmp_path / "cells_prob.png")


def test_paint_80x24(tmp_path, snap_compare):
    assert snap_compare(PaintApp(_doc(tmp_path)), terminal_size=(80, 24))


def test_paint_160x50_zoomed(tmp_path, snap_compare):
    async def run_before(pilot) -> None:
        await pilot.pause()
        await pilot.press("l", "l", "l", "plus", "plus", "v", "right_square_bracket")
        await pilot.pause()

    assert snap_compare(PaintApp(_doc(tmp_path)), terminal_size=(160, 50),
                        run_before=run_before)
