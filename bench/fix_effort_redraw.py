#!/usr/bin/env python
"""Redraw timing of the mask editor, for bench/fix_effort.py (issue #15, part 2).

For demo frames of 128², 1024² and 4096² it times the painter's own code (tui/paint/view.py
`Scene.render_lines`, exactly what `PaintView` draws a frame with; no terminal, no App) at
canvases of 160x48 and 80x22 cells (160x50 and 80x24 terminals less the status and hint
lines), with the prediction layer on, as the painter opens a project mask:
  * open: the first frame of a new Scene (it builds the zoom-out pyramid);
  * a brush drag segment at fit and at 1:1: `ops.stroke` + `Scene.set_mask` + `render_lines`
    (one mouse move of a drag: PaintApp.on_paint_view_stroke);
  * the space key at 1:1: `ops.brush` + `History.push` + `Scene.set_mask` + `render_lines`
    (PaintApp.action_brush);
  * a zoom step: `Viewport.zoom_in`/`zoom_out` around the cursor + `render_lines`, from fit to
    the top level and back.
Not included: Textual's compositing of the lines and the terminal's own drawing.

The frames are made here (`make_demo`, one image; the P map is the truth smoothed, only its
drawing cost matters) and timed in a fresh process that has imported what the painter imports
(tui/paint/app.py), so the garbage collector walks a heap like the painter's: a full
(generation 2) collection during a frame costs time in proportion to every live object (with
torch imported it is several times longer).
Each setting runs twice: after `gc.freeze()` at start-up, as the painter runs
(tui/run.py, run_frozen), and with the collector as is, to show what the freeze buys.

  .venv/bin/python bench/fix_effort.py --no-oracle       # the table, with machine and date
  .venv/bin/python bench/fix_effort_redraw.py FOLDER --gc freeze   # (the timing process)
"""
from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from segtriage.tui.paint import ops


def demo_frame(size: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, given mask, P map for drawing) of a one-image demo of size²; the P map is the
    truth smoothed (only its drawing cost matters here)."""
    from PIL import Image
    from scipy import ndimage as ndi

    from segtriage.engine.project.demo import make_demo, truth_dir

    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "frame"
        make_demo(root, count=1, size=size, seed=seed, corrupt_frac=0.0)
        img = np.asarray(Image.open(root / "img_000.png")).copy()
        mask = np.asarray(Image.open(root / "img_000_mask.png")) > 0
        truth = np.asarray(Image.open(truth_dir(root) / "masks" / "img_000_mask.png")) > 0
    prob = np.clip(ndi.gaussian_filter(truth.astype(np.float32), 2.0) * 255 + 0.5, 0, 255)
    return img, mask, prob.astype(np.uint8)


class Frames:
    """Times frames: wall ms, CPU ms of this thread (wall without CPU: the process waited for
    the core), whether a full (generation 2) garbage collection ran in it, and the wall ms of
    the named parts recorded with ``part``."""

    def __init__(self) -> None:
        self.full_gc = False
        self.parts: dict[str, float] = {}
        gc.callbacks.append(self._cb)

    def _cb(self, phase, info) -> None:
        if phase == "start" and info["generation"] == 2:
            self.full_gc = True

    def part(self, name: str, fn):
        t = time.perf_counter()
        out = fn()
        self.parts[name] = (time.perf_counter() - t) * 1e3
        return out

    def time(self, fn) -> dict:
        self.full_gc, self.parts = False, {}
        t, c = time.perf_counter(), time.thread_time()
        fn()
        return {"wall": (time.perf_counter() - t) * 1e3, "cpu": (time.thread_time() - c) * 1e3,
                "gc": self.full_gc, "parts": self.parts}


PARTS = ("op", "undo record", "set_mask", "render")


def time_redraws(size: int, cols: int, rows: int, repeats: int, frame, clock: Frames
                 ) -> list[dict]:
    """The painter's frames for one image size and canvas (see the module docstring)."""
    from segtriage.tui.paint.view import Layers, Marks, Scene, Viewport

    img, mask0, prob = frame
    layers = Layers(prediction=True)
    cy, cx = size // 2, size // 2
    out = []
    st = {"mask": mask0, "hist": ops.History(mask0)}

    def rec(action, samples):
        wall = np.array([f["wall"] for f in samples])
        calm = [f["wall"] for f in samples if not f["gc"]]
        parts = {k: float(np.median([f["parts"][k] for f in samples])) for k in PARTS
                 if all(k in f["parts"] for f in samples)}
        out.append({"size": size, "canvas": f"{cols}x{rows}", "action": action,
                    "n": len(samples), "median": float(np.median(wall)),
                    "max": float(wall.max()), "cpu_max": max(f["cpu"] for f in samples),
                    "max_calm": max(calm) if calm else None,
                    "full_gc": sum(f["gc"] for f in samples), "parts": parts})

    scene = vp = None

    def open_():
        nonlocal scene, vp
        scene = Scene(img, mask0, prob)
        vp = Viewport(size, size, cols, rows)
        scene.render_lines(vp, layers, Marks(cursor=(cy, cx), brush=3))
    rec("open (first frame)", [clock.time(open_)])

    def drag(i, step):  # one mouse move of a drag: PaintApp.on_paint_view_stroke
        p0 = (cy + (i % 5) * step - 2 * step, cx - 2 * step)
        p1 = (p0[0], p0[1] + step)
        st["mask"] = clock.part("op", lambda: ops.stroke(st["mask"], [p0, p1], 3, i % 2 == 0))
        clock.part("set_mask", lambda: scene.set_mask(st["mask"]))
        clock.part("render", lambda: scene.render_lines(vp, layers, Marks(cursor=p1, brush=3)))

    def key(i):  # the space key: PaintApp.action_brush -> _apply
        y, x = cy + (i % 7) - 3, cx + (i % 5) - 2
        h = st["hist"]
        new = clock.part("op", lambda: ops.brush(h.current, y, x, 3, i % 2 == 0))
        clock.part("undo record", lambda: h.push(new, "paint"))
        clock.part("set_mask", lambda: scene.set_mask(h.current))
        clock.part("render", lambda: scene.render_lines(vp, layers, Marks(cursor=(y, x),
                                                                         brush=3)))

    for name, run in (("brush drag segment, fit", None), ("brush drag segment, 1:1", "1:1"),
                      ("space key (dab + undo record), 1:1", "key")):
        if run == "1:1":
            vp.set_zoom(1.0, (cy + 0.5, cx + 0.5))
        step = max(1, round(4 / vp.scale))  # a mouse move of 4 dots
        rec(name, [clock.time(lambda: key(i) if run == "key" else drag(i, step))
                   for i in range(repeats)])

    vp.set_zoom(vp.fit_zoom())
    n = len(vp.levels()) - 1
    samples = []
    for _ in range(max(1, repeats // max(1, 2 * n))):
        for move in [vp.zoom_in] * n + [vp.zoom_out] * n:
            samples.append(clock.time(lambda: (move((cy + 0.5, cx + 0.5)), scene.render_lines(
                vp, layers, Marks(cursor=(cy, cx), brush=3)))))
    rec(f"zoom step (fit to {vp.levels()[-1]:g} cells/px and back)", samples)
    return out


def redraw_child(folder: Path, a) -> list[dict]:
    """The timing, in a process that has imported what the painter imports (a heap like the
    painter's: a full garbage collection walks every live object)."""
    import segtriage.tui.paint.app  # noqa: F401

    frames = {}
    for size in [int(v) for v in a.sizes.split(",") if v]:
        with np.load(folder / f"{size}.npz") as z:
            frames[size] = (z["img"], z["mask"], z["prob"])
    if a.gc == "freeze":
        gc.collect()
        gc.freeze()
    clock, rows = Frames(), []
    for size, frame in frames.items():
        for c in [c for c in a.canvases.split(",") if c]:
            cols, nrows = (int(v) for v in c.split("x"))
            rows += time_redraws(size, cols, nrows, a.repeats, frame, clock)
    return rows


def redraw_rows(a) -> dict[str, list[dict]]:
    """Demo frames made here, timed in a fresh process per garbage-collector setting."""
    out = {}
    with tempfile.TemporaryDirectory() as d:
        for size in [int(v) for v in a.sizes.split(",") if v]:
            t = time.perf_counter()
            img, mask, prob = demo_frame(size, seed=7)
            np.savez(Path(d) / f"{size}.npz", img=img, mask=mask, prob=prob)
            print(f"# demo frame {size}² made in {time.perf_counter() - t:.1f} s",
                  file=sys.stderr, flush=True)
        for mode in ("as-is", "freeze"):
            cmd = [sys.executable, str(Path(__file__).resolve()), d, "--gc", mode, "--sizes",
                   a.sizes, "--canvases", a.canvases, "--repeats", str(a.repeats)]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode:
                raise SystemExit(f"the redraw timing failed:\n{res.stderr}")
            out[mode] = json.loads(res.stdout)
    return out


def redraw_table(rows: list[dict]) -> str:
    lines = ["| image | canvas (cells) | action | n | median ms | max ms | max CPU ms | max ms "
             "without a full GC | frames with a full GC | median ms: op / undo record / "
             "set_mask / render |", "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        calm = "–" if r["max_calm"] is None else f"{r['max_calm']:.1f}"
        parts = " / ".join(f"{r['parts'][k]:.1f}" if k in r["parts"] else "–" for k in PARTS)
        lines.append(f"| {r['size']}² | {r['canvas']} | {r['action']} | {r['n']} | "
                     f"{r['median']:.1f} | {r['max']:.1f} | {r['cpu_max']:.1f} | {calm} | "
                     f"{r['full_gc']} | {parts if r['parts'] else ''} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="the redraw timing process (see the docstring)")
    ap.add_argument("folder", type=Path, help="holds SIZE.npz frames (img, mask, prob)")
    ap.add_argument("--gc", default="as-is", choices=("as-is", "freeze"))
    ap.add_argument("--sizes", default="128,1024,4096")
    ap.add_argument("--canvases", default="160x48,80x22")
    ap.add_argument("--repeats", type=int, default=30)
    print(json.dumps(redraw_child(ap.parse_args(argv).folder, ap.parse_args(argv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
