#!/usr/bin/env python
"""The TUI on big projects: 10k and 100k synthetic rows in a real state database.

Rows (each size measured in a fresh process, so memory is that process's own):
  launch → first full frame   process start (before any import) until the list shows its
                              first rows, headless; and, when tmux is installed, the same
                              `segtriage DIR` in a real terminal (tmux) until the row appears
  key press (j), net          a cursor move through Pilot minus an unbound key (the harness's
                              own cost): CPU time of the whole process (all threads, so the
                              preview decode a move starts is counted) and wall time (which
                              Pilot's idle detection inflates on a loaded machine)
  re-sort (s), net            the same for `s` (sort by the next column: all rows re-sorted)
  rows load / store           the loader thread's time (store query, rows, first sort) and,
                              of it, the store's review_rows() alone
  peak memory                 the process's peak RSS after all of the above

Goals (issue 5): launch ≤ 1 s, key ≤ 30 ms, re-sort ≤ 100 ms, memory ≤ 300 MB.

  .venv/bin/python bench/tui.py              # 10k and 100k
  .venv/bin/python bench/tui.py --sizes 1000 # other sizes
The synthetic projects are cached in $TMPDIR/segtriage-bench-tui/ (images are hard links of
one 64×64 PNG, so 100k of them take no space).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

T_START = time.perf_counter()  # before the heavy imports: launch time counts them

GOALS = {"launch_s": 1.0, "key_ms": 30.0, "resort_ms": 100.0, "rss_mb": 300.0}
CATEGORIES = ("disagrees", "uncertain", "agrees")


def build(root: Path, n: int) -> None:
    """A seed-layout folder with ``n`` image/mask pairs and a scored, current model."""
    import random

    import numpy as np
    from PIL import Image

    from segtriage.engine.store import Store

    done = root / ".segtriage" / "bench-complete"
    if done.exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    proto = root / ".proto"
    proto.mkdir()
    yy, xx = np.mgrid[0:64, 0:64]
    disk = ((xx - 30) ** 2 + (yy - 34) ** 2) < 14 ** 2
    # one file per 50 000 links: ext4 allows 65 000 links to a file
    for k in range(n // 50_000 + 1):
        Image.fromarray(np.where(disk, 190, 50).astype(np.uint8)).save(proto / f"img{k}.png")
        Image.fromarray(disk.astype(np.uint8) * 255).save(proto / f"mask{k}.png")
    prob = np.where(((xx - 32) ** 2 + (yy - 33) ** 2) < 13 ** 2, 235, 15).astype(np.uint8)
    store = Store(root / ".segtriage" / "state.db")
    (root / ".segtriage" / "preds").mkdir(exist_ok=True)
    Image.fromarray(prob).save(root / ".segtriage" / "preds" / "p.png")
    rng = random.Random(5)
    with store.tx():
        mid = store.add_model(kind="plain", arch="resnet34", weights=[], config={}, epochs=8,
                              train_loss=0.2, valid_loss=0.25, valid_dice=0.87, n_train=n,
                              n_valid=n // 5, manifest=[])
        for i in range(n):
            name = f"img_{i:06d}"
            os.link(proto / f"img{i // 50_000}.png", root / f"{name}.png")
            os.link(proto / f"mask{i // 50_000}.png", root / f"{name}_mask.png")
            iid = store.upsert_image(f"{name}.png", mask_path=f"{name}_mask.png", width=64,
                                     height=64, img_sha256="a" * 64, mask_sha256="b" * 64,
                                     status="unreviewed")
            cat = rng.choice(CATEGORIES)
            store.put_score(iid, mid, fold=None, image_sha256="a" * 64, mask_sha256="b" * 64,
                            precision="fp32", prob_path="preds/p.png", category=cat, metrics={
                                "priority": rng.random() + CATEGORIES[::-1].index(cat),
                                "confidence": rng.random(), "region_confidence": rng.random(),
                                "label_quality": rng.random(), "dice": rng.random(),
                                "iou": rng.random(), "ce": rng.random() * 2,
                                "n_pred": rng.randint(0, 9), "n_mask": rng.randint(0, 9)})
    done.touch()


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _measure(root: Path, presses: int) -> dict:
    import asyncio

    from segtriage.tui.app import SegtriageApp
    from segtriage.tui.data import SORTS
    from segtriage.tui.widgets.preview import select_renderer

    app = SegtriageApp(root, renderer=select_renderer("halfcell"), start_engine=False)
    out: dict = {}
    async with app.run_test(size=(120, 40)) as pilot:
        while not app.loaded:
            await asyncio.sleep(0.005)
        await pilot.pause()
        out["launch_s"] = time.perf_counter() - T_START
        out["rows"] = len(app.model.rows)
        out["load_s"] = app._load_seconds           # the loader thread: store + rows + sort

        async def timed(key: str, n: int) -> tuple[float, float]:
            """(wall, CPU) ms per press; CPU counts every thread of this process."""
            t, c = time.perf_counter(), time.process_time()
            for _ in range(n):
                await pilot.press(key)
            await app.workers.wait_for_complete()   # the preview work a move started
            return ((time.perf_counter() - t) / n * 1000, (time.process_time() - c) / n * 1000)

        await timed("f12", 5)                       # warm-up
        base = await timed("f12", presses)          # an unbound key: the harness's own cost
        move = await timed("j", presses)
        sort = await timed("s", len(SORTS))         # one full cycle of sort columns
        out.update(harness_ms=base[0], harness_cpu_ms=base[1],
                   key_ms=move[0] - base[0], key_cpu_ms=move[1] - base[1],
                   resort_ms=sort[0] - base[0], resort_cpu_ms=sort[1] - base[1])
        t = time.perf_counter()
        app.model.next_sort()
        out["sort_only_ms"] = (time.perf_counter() - t) * 1000
        await app.workers.wait_for_complete()
    out["rss_mb"] = peak_rss_mb()
    t = time.perf_counter()
    app.store.review_rows()
    out["store_s"] = time.perf_counter() - t         # of which the store's query alone
    return out


def child(root: Path, presses: int) -> None:
    import asyncio

    print(json.dumps(asyncio.run(_measure(root, presses))))


def tmux_launch(root: Path, first_name: str, timeout: float = 30.0) -> float | None:
    """`segtriage DIR --no-engine` in a real terminal: seconds until the first row shows."""
    tmux = shutil.which("tmux")
    exe = Path(sys.executable).with_name("segtriage")
    if tmux is None or not exe.exists():
        return None
    sock = Path(tempfile.mkdtemp()) / "sock"
    t0 = time.perf_counter()
    subprocess.run([tmux, "-S", str(sock), "-f", "/dev/null", "new-session", "-d", "-x", "120",
                    "-y", "40", f"{exe} {root} --no-engine"], check=True)
    try:
        while time.perf_counter() - t0 < timeout:
            shot = subprocess.run([tmux, "-S", str(sock), "capture-pane", "-p"],
                                  capture_output=True, text=True).stdout
            if first_name in shot:
                return time.perf_counter() - t0
            time.sleep(0.01)
        return None
    finally:
        subprocess.run([tmux, "-S", str(sock), "kill-server"], capture_output=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--presses", type=int, default=100)
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.presses)
        return 0
    cache = Path(tempfile.gettempdir()) / "segtriage-bench-tui"
    results = []
    for n in a.sizes:
        root = cache / f"rows-{n}"
        t = time.perf_counter()
        build(root, n)
        built = time.perf_counter() - t
        if built > 1:
            print(f"built {n} rows in {built:.0f} s", file=sys.stderr)
        r = subprocess.run([sys.executable, __file__, "--child", str(root), "--presses",
                            str(a.presses)], capture_output=True, text=True)
        if r.returncode:
            print(r.stderr, file=sys.stderr)
            return 1
        res = json.loads(r.stdout.strip().splitlines()[-1])
        from segtriage.engine.store import Store

        rows = Store(root / ".segtriage" / "state.db").review_rows()
        first = max(rows, key=lambda d: d["priority"] or -1)["path"]
        res["tmux_launch_s"] = tmux_launch(root, first)
        results.append((n, res))

    def cell(v, fmt):
        return "n/a" if v is None else format(v, fmt)

    lines = [f"{'rows':>8} | {'launch headless':>15} | {'launch tmux':>11} | "
             f"{'rows load / store':>17} | "
             f"{'key j: CPU / wall':>17} | {'re-sort s: CPU / wall':>21} | {'sort only':>9} | "
             f"{'peak RSS':>8}", "-" * 130]
    for n, r in results:
        lines.append(f"{n:>8} | {cell(r['launch_s'], '.2f'):>13} s | "
                     f"{cell(r['tmux_launch_s'], '.2f'):>9} s | "
                     f"{r['load_s']:>6.2f} / {r['store_s']:>5.2f} s | "
                     f"{r['key_cpu_ms']:>5.1f} / {r['key_ms']:>5.1f} ms | "
                     f"{r['resort_cpu_ms']:>8.1f} / {r['resort_ms']:>6.1f} ms | "
                     f"{r['sort_only_ms']:>6.1f} ms | {r['rss_mb']:>5.0f} MB")
    h = results[-1][1]
    lines.append(f"goals: launch ≤ {GOALS['launch_s']} s, key ≤ {GOALS['key_ms']:.0f} ms, "
                 f"re-sort ≤ {GOALS['resort_ms']:.0f} ms, memory ≤ {GOALS['rss_mb']:.0f} MB. "
                 f"Key costs are net of the harness (an unbound key: {h['harness_cpu_ms']:.1f} ms "
                 f"CPU, {h['harness_ms']:.1f} ms wall); CPU counts all threads.")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
