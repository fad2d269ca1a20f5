#!/usr/bin/env python
"""The TUI on big projects: 10k and 100k synthetic rows in a real state database.

Launch, old and new way in the same run (each in a fresh process, interleaved, --rounds times,
median): "old" waits for every row (first_page=0), "new" shows the first page of the review
order read with ORDER BY … LIMIT (first_page=200) while the rest loads.
  first rows                  process start (before any import) until the frame that shows
                              the first rows is drawn, headless; and, when tmux is installed,
                              the app in a real terminal (tmux) until the top row of the
                              review order shows on the terminal
  full list                   the same until every row is loaded and drawn (headless: the
                              app's `loaded`; tmux: the header no longer says "loading")
  full load                   the loader thread's time for every row (store query, rows, sort)
  peak RSS (launch)           the launch-only process's peak RSS

Interaction (the new way, one process per size, after the full list is in):
  key during load             while the rest loads behind the first page: a `j` every 50 ms,
                              key event until the frame with the moved cursor (median, max)
  key press (j), net          a cursor move through Pilot minus an unbound key (the harness's
                              own cost): CPU time of the whole process (all threads, so the
                              preview decode a move starts is counted) and wall time (which
                              Pilot's idle detection inflates on a loaded machine)
  re-sort (s), net            the same for `s` (sort by the next column: all rows re-sorted)
  peak memory                 the process's peak RSS after all of the above
  store: head / all           list_head(200) (best of 5) and every row of list_rows()

Goals (issue 5): launch ≤ 1 s, key ≤ 30 ms, re-sort ≤ 100 ms, memory ≤ 300 MB.

  .venv/bin/python bench/tui.py              # 10k and 100k
  .venv/bin/python bench/tui.py --sizes 1000 # other sizes
The synthetic projects are cached in $TMPDIR/segtriage-bench-tui/ (images are hard links of
one 64×64 PNG, so 100k of them take no space); a cached database is migrated to the current
schema before anything is timed (that one-time cost is printed).
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
FIRST_PAGE = 200
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


async def _measure(root: Path, presses: int, first_page: int) -> dict:
    import asyncio

    from segtriage.tui.app.app import SegtriageApp
    from segtriage.tui.app.data import SORTS
    from segtriage.tui.paint.renderers import select_renderer

    app = SegtriageApp(root, renderer=select_renderer("halfcell"), start_engine=False,
                       first_page=first_page)
    out: dict = {}
    async def drawn() -> float:
        """Seconds since process start when the next screen refresh is done: the frame that
        shows what the app holds now. (Not pilot.pause(): it waits for the whole app to be
        idle, which a loader thread holding the GIL stretches far past the frame.)"""
        stamp: list[float] = []
        app.call_after_refresh(lambda: stamp.append(time.perf_counter()))
        while not stamp:
            await asyncio.sleep(0.002)
        return stamp[0] - T_START

    async with app.run_test(size=(120, 40)) as pilot:
        while not app.model.view:
            await asyncio.sleep(0.002)
        out["first_rows_s"] = await drawn()
        out["first_rows"] = len(app.model.rows)
        out["first_top"] = app.model.view[0].path
        during: list[float] = []
        while not app.loaded:
            if presses and app.model.partial:
                # keys while the rest loads (the interaction run only): key event → the frame
                # that shows the moved cursor, one press every 50 ms
                from textual import events

                c0, t = app.result_list.cursor, time.perf_counter()
                key = events.Key("j", "j")
                key.set_sender(app)
                app._driver.send_message(key)
                while app.result_list.cursor == c0 and app.model.partial:
                    await asyncio.sleep(0)
                if app.result_list.cursor != c0:
                    during.append(await drawn() + T_START - t)
                await asyncio.sleep(0.05)
            else:
                await asyncio.sleep(0.005)
        out["during_load_ms"] = sorted(during)[len(during) // 2] * 1000 if during else None
        out["during_load_max_ms"] = max(during) * 1000 if during else None
        out["launch_s"] = await drawn()
        await pilot.pause()
        out["rows"] = len(app.model.rows)
        out["load_s"] = app._load_seconds           # the loader thread: store + rows + sort
        out["full_top"] = app.model.view[0].path
        if not presses:
            await app.workers.wait_for_complete()
            out["rss_mb"] = peak_rss_mb()
            return out

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
    return out


def child(root: Path, presses: int, first_page: int) -> None:
    import asyncio

    print(json.dumps(asyncio.run(_measure(root, presses, first_page))))


# what `segtriage DIR --no-engine` runs (the command-line module imported too), with the
# first page as an argument so the old and the new launch run the same code otherwise
TMUX_APP = ("import sys; from segtriage.tui import cli; from segtriage.tui.app.app import run_app; "
            "sys.exit(run_app(sys.argv[1], start_engine=False, first_page=int(sys.argv[2])))")


def tmux_launch(root: Path, first_name: str, first_page: int,
                timeout: float = 60.0) -> tuple[float | None, float | None]:
    """The app in a real terminal: seconds until the top row shows, and until the header stops
    saying "loading" (every row in)."""
    import shlex

    tmux = shutil.which("tmux")
    if tmux is None:
        return None, None
    sock = Path(tempfile.mkdtemp()) / "sock"
    cmd = shlex.join([sys.executable, "-c", TMUX_APP, str(root), str(first_page)])
    first = full = None
    t0 = time.perf_counter()
    subprocess.run([tmux, "-S", str(sock), "-f", "/dev/null", "new-session", "-d", "-x", "120",
                    "-y", "40", cmd], check=True)
    try:
        while time.perf_counter() - t0 < timeout:
            shot = subprocess.run([tmux, "-S", str(sock), "capture-pane", "-p"],
                                  capture_output=True, text=True).stdout
            now = time.perf_counter() - t0
            if first is None and first_name in shot:
                first = now
            if first is not None and "loading" not in shot.split("\n", 1)[0]:
                full = now
                return first, full
            time.sleep(0.01)
        return first, full
    finally:
        subprocess.run([tmux, "-S", str(sock), "kill-server"], capture_output=True)


def store_times(root: Path) -> dict:
    from segtriage.engine.store import Store

    st = Store(root / ".segtriage" / "state.db")
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        st.list_head(FIRST_PAGE)
        best = min(best, time.perf_counter() - t)
    t = time.perf_counter()
    for _ in st.list_rows():
        pass
    return {"head_ms": best * 1000, "all_s": time.perf_counter() - t}


def run_child(root: Path, presses: int, first_page: int) -> dict:
    r = subprocess.run([sys.executable, __file__, "--child", str(root), "--presses",
                        str(presses), "--first-page", str(first_page)],
                       capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def median(values):
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    k = len(vals) // 2
    return vals[k] if len(vals) % 2 else (vals[k - 1] + vals[k]) / 2


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--presses", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3, help="launches per way and size")
    ap.add_argument("--first-page", type=int, default=FIRST_PAGE, help=argparse.SUPPRESS)
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.presses, a.first_page)
        return 0
    from segtriage.engine.store import Store

    cache = Path(tempfile.gettempdir()) / "segtriage-bench-tui"
    ways = (("old", 0), ("new", FIRST_PAGE))
    launch: list[tuple[int, str, dict]] = []
    inter: list[tuple[int, dict]] = []
    for n in a.sizes:
        root = cache / f"rows-{n}"
        t = time.perf_counter()
        build(root, n)
        built = time.perf_counter() - t
        if built > 1:
            print(f"built {n} rows in {built:.0f} s", file=sys.stderr)
        t = time.perf_counter()
        st = Store(root / ".segtriage" / "state.db")  # migrates a cached older database
        print(f"{n} rows: schema v{st.schema_version()} ready in "
              f"{time.perf_counter() - t:.2f} s", file=sys.stderr)
        rows = list(st.list_rows())
        first = max(rows, key=lambda d: -1 if d["priority"] is None else d["priority"])["path"]
        del rows
        st.close()
        runs: dict[str, list[dict]] = {w: [] for w, _ in ways}
        for _ in range(a.rounds):
            for way, page in ways:                  # interleaved: the load drifts between
                res = run_child(root, 0, page)
                res["tmux_first_s"], res["tmux_full_s"] = tmux_launch(root, first, page)
                runs[way].append(res)
        for way, _ in ways:
            rs = runs[way]
            assert all(r["first_top"] == r["full_top"] == first for r in rs), rs
            agg = {k: median(r[k] for r in rs) for k in
                   ("first_rows_s", "launch_s", "load_s", "tmux_first_s", "tmux_full_s",
                    "rss_mb")}
            agg["first_rows"] = rs[0]["first_rows"]
            for k in ("first_rows_s", "tmux_first_s"):
                vals = [r[k] for r in rs if r[k] is not None]
                agg[k + "_range"] = (min(vals), max(vals)) if vals else None
            launch.append((n, way, agg))
        res = run_child(root, a.presses, FIRST_PAGE)
        res.update(store_times(root))
        inter.append((n, res))

    def cell(v, fmt):
        return "n/a" if v is None else format(v, fmt)

    def spread(r, k):
        lo_hi = r[k + "_range"]
        return "" if lo_hi is None else f"{lo_hi[0]:.2f}–{lo_hi[1]:.2f}"

    lines = [f"launch, median of {a.rounds} interleaved rounds (old: every row first; new: "
             f"first {FIRST_PAGE} rows, then the rest)",
             f"{'rows':>8} | {'way':>3} | {'first rows headless':>19} | {'full list headless':>18}"
             f" | {'first row tmux':>14} | {'full list tmux':>14} | {'full load':>9} | "
             f"{'peak RSS':>8}", "-" * 118]
    for n, way, r in launch:
        lines.append(f"{n:>8} | {way:>3} | {cell(r['first_rows_s'], '.2f'):>17} s | "
                     f"{cell(r['launch_s'], '.2f'):>16} s | "
                     f"{cell(r['tmux_first_s'], '.2f'):>12} s | "
                     f"{cell(r['tmux_full_s'], '.2f'):>12} s | {r['load_s']:>7.2f} s | "
                     f"{r['rss_mb']:>5.0f} MB")
    lines += ["", "first rows, min–max over the rounds (headless / tmux):"]
    lines += [f"{n:>8} | {way:>3} | {spread(r, 'first_rows_s'):>11} s / "
              f"{spread(r, 'tmux_first_s'):>11} s" for n, way, r in launch]
    lines += ["", "interaction after the full list (new way)",
              f"{'rows':>8} | {'key j: CPU / wall':>17} | {'re-sort s: CPU / wall':>21} | "
              f"{'sort only':>9} | {'peak RSS':>8} | {'store: head / all rows':>22} | "
              f"{'key during load: median / max':>29}", "-" * 132]
    for n, r in inter:
        lines.append(f"{n:>8} | {r['key_cpu_ms']:>5.1f} / {r['key_ms']:>5.1f} ms | "
                     f"{r['resort_cpu_ms']:>8.1f} / {r['resort_ms']:>6.1f} ms | "
                     f"{r['sort_only_ms']:>6.1f} ms | {r['rss_mb']:>5.0f} MB | "
                     f"{r['head_ms']:>7.1f} ms / {r['all_s']:>5.2f} s | "
                     f"{cell(r['during_load_ms'], '.0f'):>10} ms / "
                     f"{cell(r['during_load_max_ms'], '.0f'):>5} ms")
    h = inter[-1][1]
    lines.append(f"goals: launch ≤ {GOALS['launch_s']} s, key ≤ {GOALS['key_ms']:.0f} ms, "
                 f"re-sort ≤ {GOALS['resort_ms']:.0f} ms, memory ≤ {GOALS['rss_mb']:.0f} MB. "
                 f"Key costs are net of the harness (an unbound key: {h['harness_cpu_ms']:.1f} ms "
                 f"CPU, {h['harness_ms']:.1f} ms wall); CPU counts all threads.")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
