"""The TUI never imports torch or fastai, not even through the engine modules it uses."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = {"torch", "fastai", "torchvision"}


def _top_modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json\n"
                          "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"],
                         capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_app_import_pulls_no_torch_and_no_numpy():
    loaded = _top_modules_after("import segtriage.tui.app.app")
    assert not loaded & HEAVY
    # the list starts without numpy/scipy: they load in workers when a preview is drawn
    assert not loaded & {"numpy", "scipy"}


def test_engine_modules_the_tui_calls_lazily_pull_no_torch():
    loaded = _top_modules_after(
        "import segtriage.tui.app.app, segtriage.engine.project.review\n"
        "from segtriage.engine.project import history, index, segment, imageio\n"
        "from segtriage.engine.daemon import control\n"
        "from segtriage.tui.paint.renderers import select_renderer\n"
        "select_renderer('halfcell')")
    assert not loaded & HEAVY
