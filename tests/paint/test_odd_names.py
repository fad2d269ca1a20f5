"""Names with spaces, quotes, `$(…)`, unicode and a leading dash reach the painter intact:
its argv goes to the OS as a list (no shell), the command line parses it back to the same
paths, and a save writes exactly that file (docs/safety.md)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from segtriage.tui.cli import build_parser
from segtriage.tui.app.editor import editor_argv
from segtriage.tui.paint.app import PaintApp
from segtriage.tui.paint.document import open_document

ODD = ["-lead dash", "two  spaces", "q'uo\"te", "$(touch PWNED)", "ünï cødé", "semi;colon"]


async def test_odd_names_through_the_painter(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for stem in ODD:
        folder = tmp_path / stem  # an odd folder too
        folder.mkdir()
        image, mask = folder / f"{stem}.png", folder / f"{stem}_mask.png"
        Image.fromarray(np.full((8, 8), 90, np.uint8)).save(image)
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(mask)
        # the app's default editor: the painter's argv, parsed back by the real parser
        argv = editor_argv("", mask, image, env={})
        args = build_parser().parse_args(argv[3:])
        assert (args.cmd, args.mask, args.image) == ("paint", str(mask), str(image))
        # a relative mask that starts with a dash is still the mask, not an option
        rel = editor_argv("", mask.relative_to(tmp_path / stem), image, env={})
        assert build_parser().parse_args(rel[3:]).mask == mask.name
        doc = open_document(args.mask, image=args.image)
        app = PaintApp(doc)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press("space", "w")
            await pilot.pause()
        saved = np.asarray(Image.open(mask))
        assert 0 < np.count_nonzero(saved) < saved.size, stem  # the brush, not all
        assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == \
            sorted([image.name, mask.name, f"{stem}_mask.orig-1.png"]), stem
    assert not list(tmp_path.rglob("PWNED"))
