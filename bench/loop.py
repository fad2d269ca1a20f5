#!/usr/bin/env python
"""The loop, measured: what a person's fixes buy, in which order (issue #16, part 2).

Run so far: `--quick` once (2026-12-05 00:22 UTC, 2-core CPU, nothing else training): 2.7
min in all, each training of 30 steps on 24 images of 64² with its predict about 35 s (the
engine's start and per-epoch overheads dominate at that size; the estimate said 2 min). The
default plan has not been run yet.

For each seed this
  1. builds a demo set (`engine.demo.make_demo`) and a held-out test set (seed + 1000, its
     truth masks only) that never enters any project: nothing can train on it;
  2. round 0: runs a real engine process on the demo folder, submits `train` through the
     Store (which queues its own `predict`: probabilities and scores), stops the engine, and
     copies the folder with its state (`shutil.copytree`, engine stopped) once per order, so
     every order starts from the same round-0 model;
  3. each round, for each order: reads the real report (`segtriage report DIR --format
     json`, the CLI a person uses), takes the top B masks (B = 1/8 of the set) of the order
     that are not fixed yet, writes each one's truth through `engine.history.write_mask`
     (source "editor", as the mask editor does), then submits `train` and waits for it and
     its predict; records the test-set Dice, the unfixed "needs fixing" masks (corrupted, or
     given Dice to truth < 0.5) and the wall time;
  4. orders: `priority` (segtriage's default order), `cleanlab` (the real package's
     soft-minimum, `cleanlab.segmentation.rank.get_label_quality_scores`, on the stored
     probabilities), `1-dice`, `confidence` (mean max-probability, least confident first),
     `random`; and the ceiling: the round-0 copy with every mask replaced by its truth,
     trained once.

The test set is predicted in this process with the engine's own inference class
(`engine.infer.Predictor`) on the weights file the round's current model row names: the same
code and weights the engine's predict job uses, without adding the test images to any
project (as images without masks in the demo folder they would enter the report, the
counts and each predict job, and a person's fix could reach them).

Sizing (the issue: the whole benchmark under an hour on the 2-core CPU): per seed 1 + 5 ×
rounds + 1 trainings. Measured in docs/benchmarks.md: resnet18 in the engine, 96 images of
128², about 1.7 s an optimizer step with its epoch overheads (15 s an epoch of 9 steps), the
demo's resnet34 2.05 s. The default (2 seeds, 48 images of 64², resnet18, 120 steps, 2 rounds
= 25 % fixed) is estimated from that scaled by pixel count, printed at start; calibrate it
with the per-training seconds the table prints.

  .venv/bin/python bench/loop.py                 # the default plan (estimate printed)
  .venv/bin/python bench/loop.py --quick         # smoke test: 24 images of 64², 30 steps,
                                                 # 2 orders, 1 round, 1 seed
  .venv/bin/python bench/loop.py --work W --keep --png loop.png --json loop.json
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from triage_quality import cleanlab_quality, machine, wait_idle  # noqa: E402

from segtriage.engine.project import history, imageio, scoring  # noqa: E402
from segtriage.engine.project.config import load_config  # noqa: E402
from segtriage.engine.project.demo import load_manifest, make_demo, truth_dir  # noqa: E402
from segtriage.engine.project.project import Project

ORDERS = ("priority", "cleanlab", "1-dice", "confidence", "random")
SEC_PER_STEP_128 = 1.7  # resnet18 in the engine, docs/benchmarks.md ("CPU threads")


def write_config(root: Path, a) -> None:
    (root / "segtriage.toml").write_text(
        "[model]\n"
        f'arch = "{a.arch}"\nepochs = 1\nmin_steps = {a.min_steps}\nlr = {a.lr}\n'
        f"image_size = {a.size}\n"
        "[engine]\nidle_exit_s = 0\nwatch = \"off\"\n"
        "[backup]\nbefore_train = false\n")


class Engine:
    """A real engine process on one folder; `train()` submits a job and waits for it and
    the predict it queues."""

    def __init__(self, root: Path, timeout: float):
        self.root, self.timeout = root, timeout
        self.log = root / ".bench-engine.log"
        self.lf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "segtriage.engine", "run", str(root)],
            stdin=subprocess.DEVNULL, stdout=self.lf, stderr=subprocess.STDOUT,
            start_new_session=True)
        self.store = Project.open(root).store

    def train(self) -> float:
        jid = self.store.submit_job("train", {}, requested_by="bench")
        return wait_idle(self.store, jid, "train", self.timeout, self.proc, self.log)["seconds"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.store.close()
        self.lf.close()


def report(root: Path) -> list[dict]:
    """The real report, every row (the CLI's default order: priority)."""
    out = subprocess.run([str(Path(sys.executable).parent / "segtriage"), "report", str(root),
                          "--format", "json", "--limit", "0"], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def order_rows(root: Path, cfg, rows: list[dict], order: str, rng) -> list[dict]:
    rows = [r for r in rows if r.get("mask")]
    if order == "priority":
        return rows  # the report's own order
    if order == "random":
        return [rows[i] for i in rng.permutation(len(rows))]
    if order == "cleanlab":
        from segtriage.engine.project.scoring.rescore import read_current_mask

        store = Project.open(root).store
        for r in rows:
            from PIL import Image

            with Image.open(root / r["prob"]) as im:
                prob = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
            mask = read_current_mask(Project(root, cfg, store), store.image(r["image"]))
            r["_cl"] = cleanlab_quality(prob, mask, cfg.scoring.lq_temperature)
        store.close()
        return sorted(rows, key=lambda r: (r["_cl"] is None, r["_cl"] or 0.0))
    key = {"1-dice": "dice", "confidence": "confidence"}[order]
    return scoring.review_order(rows, key=key, reverse=False)  # both ascending: worst first


def truth_mask(root: Path, cfg, mask_rel: str) -> np.ndarray:
    return imageio.read_mask(truth_dir(root) / "masks" / Path(mask_rel).name,
                             cfg.project.codes)


def fix(root: Path, cfg, mask_rels: list[str]) -> None:
    """The simulated person: each mask replaced by its truth, through the mask history."""
    store = Project.open(root).store
    for rel in mask_rels:
        row = store.image_by_mask(rel)
        history.write_mask(Project(root, cfg, store), row, truth_mask(root, cfg, rel), "editor")
    store.close()


def test_dice(root: Path, test_root: Path) -> float:
    """Mean foreground Dice on the held-out test set of the folder's current model."""
    from segtriage.engine.ml import infer

    cfg = load_config(root)
    store = Project.open(root).store
    m = store.current_model()
    store.close()
    state = cfg.state_path(root)
    pred = infer.Predictor([state / "models" / w for w in m.weights][0], m.arch,
                           cfg.project.codes, cfg.model)
    imgs = sorted(p for p in test_root.glob("img_*.png") if not p.name.endswith("_mask.png"))
    ds = []
    for path, prob in pred.predict(imgs):
        if isinstance(prob, Exception):
            raise prob
        t = imageio.read_mask(truth_dir(test_root) / "masks" / f"{path.stem}_mask.png",
                              cfg.project.codes) > 0
        ds.append(scoring.dice(prob > 0.5, t))
    return float(np.mean(ds))


def needs_fixing(root: Path, bad_dice: float) -> set[str]:
    man = load_manifest(root)
    return {m for m, d in man["given_dice"].items() if m in man["corrupted"] or d < bad_dice}


def copy_folder(src: Path, dst: Path) -> None:
    for a, b in ((src, dst), (truth_dir(src), truth_dir(dst))):
        if b.exists():
            shutil.rmtree(b)
        shutil.copytree(a, b, symlinks=True)
    (dst / ".bench-engine.log").unlink(missing_ok=True)


def run_seed(seed: int, work: Path, a) -> list[dict]:
    recs = []
    base = work / f"s{seed}"
    r0 = base / "round0"
    test_root = base / "test"
    for p in (r0, test_root):
        shutil.rmtree(p, ignore_errors=True)
        shutil.rmtree(truth_dir(p), ignore_errors=True)
    make_demo(r0, count=a.count, size=a.size, seed=seed, corrupt_frac=a.corrupt_frac)
    make_demo(test_root, count=a.test_count, size=a.size, seed=seed + 1000, corrupt_frac=0.0)
    write_config(r0, a)
    need = needs_fixing(r0, a.bad_dice)
    n_masks = a.count
    batch = max(1, round(n_masks / 8))
    print(f"== seed {seed}: {n_masks} masks, {len(need)} need fixing, B = {batch}",
          file=sys.stderr, flush=True)
    eng = Engine(r0, a.job_timeout)
    try:
        sec = eng.train()
    finally:
        eng.stop()
    d0 = test_dice(r0, test_root)
    print(f"  round 0: test Dice {d0:.3f} ({sec:.0f} s)", file=sys.stderr, flush=True)
    for order in a.orders:
        recs.append({"seed": seed, "order": order, "round": 0, "fixed": 0,
                     "test_dice": d0, "unfixed_need": len(need), "seconds": sec})
    cfg = load_config(r0)
    for order in [*a.orders, "ceiling"]:
        root = base / order
        copy_folder(r0, root)
        rng = np.random.default_rng(seed * 7919 + 17)
        eng = Engine(root, a.job_timeout)
        try:
            if order == "ceiling":
                t0 = time.monotonic()
                fix(root, cfg, sorted(load_manifest(root)["given_dice"]))  # every mask
                sec = eng.train() + (time.monotonic() - t0)
                recs.append({"seed": seed, "order": "ceiling", "round": None,
                             "fixed": n_masks, "test_dice": test_dice(root, test_root),
                             "unfixed_need": 0, "seconds": sec})
                print(f"  ceiling: test Dice {recs[-1]['test_dice']:.3f}", file=sys.stderr,
                      flush=True)
                continue
            fixed: set[str] = set()
            for rnd in range(1, a.rounds + 1):
                t0 = time.monotonic()
                rows = order_rows(root, cfg, report(root), order, rng)
                pick = [r["mask"] for r in rows if r["mask"] not in fixed][:batch]
                fix(root, cfg, pick)
                fixed |= set(pick)
                eng.train()
                sec = time.monotonic() - t0
                names = {Path(p).name for p in fixed}
                recs.append({"seed": seed, "order": order, "round": rnd, "fixed": len(fixed),
                             "test_dice": test_dice(root, test_root),
                             "unfixed_need": len(need - names), "seconds": sec})
                print(f"  {order} round {rnd}: fixed {len(fixed)}, test Dice "
                      f"{recs[-1]['test_dice']:.3f}, unfixed needs fixing "
                      f"{recs[-1]['unfixed_need']} ({sec:.0f} s)", file=sys.stderr, flush=True)
        finally:
            eng.stop()
    return recs


def table(recs: list[dict]) -> str:
    keys = sorted({(r["order"], r["fixed"]) for r in recs},
                  key=lambda k: (k[0] == "ceiling", k[0], k[1]))
    lines = ["| order | masks fixed | test Dice mean ± sd | unfixed needs fixing mean ± sd | "
             "seconds mean | seeds |", "|---|---:|---:|---:|---:|---:|"]
    for order, fixed in keys:
        g = [r for r in recs if r["order"] == order and r["fixed"] == fixed]
        d = np.array([r["test_dice"] for r in g])
        u = np.array([r["unfixed_need"] for r in g])
        s = np.array([r["seconds"] for r in g])
        lines.append(f"| {order} | {fixed} | {d.mean():.3f} ± {d.std():.3f} | "
                     f"{u.mean():.1f} ± {u.std():.1f} | {s.mean():.0f} | {len(g)} |")
    return "\n".join(lines)


def curves(recs: list[dict]):
    out = {}
    for order in sorted({r["order"] for r in recs} - {"ceiling"}):
        g = [r for r in recs if r["order"] == order]
        xs = sorted({r["fixed"] for r in g})
        out[order] = (xs, [np.mean([r["test_dice"] for r in g if r["fixed"] == x]) for x in xs],
                      [np.std([r["test_dice"] for r in g if r["fixed"] == x]) for x in xs],
                      [np.mean([r["unfixed_need"] for r in g if r["fixed"] == x]) for x in xs])
    return out


def plot_png(recs: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for order, (xs, d, sd, u) in curves(recs).items():
        ax1.errorbar(xs, d, yerr=sd, marker="o", capsize=3, label=order)
        ax2.plot(xs, u, marker="o", label=order)
    ceil = [r["test_dice"] for r in recs if r["order"] == "ceiling"]
    if ceil:
        ax1.axhline(np.mean(ceil), ls="--", c="k", label="ceiling (all truth)")
    ax1.set(xlabel="masks fixed", ylabel="test-set Dice (mean ± sd over seeds)")
    ax2.set(xlabel="masks fixed", ylabel="'needs fixing' masks still unfixed")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_terminal(recs: list[dict]) -> None:
    import plotext as plt

    for i, what in enumerate(("test Dice", "unfixed needs fixing")):
        plt.clear_figure()
        for order, (xs, d, _sd, u) in curves(recs).items():
            plt.plot(xs, d if i == 0 else u, label=order, marker="dot")
        plt.title(f"{what} vs masks fixed")
        plt.plotsize(80, 20)
        plt.show()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 1)[1])
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1])
    ap.add_argument("--count", type=int, default=48)
    ap.add_argument("--test-count", type=int, default=48)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--corrupt-frac", type=float, default=0.25)
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--min-steps", type=int, default=120)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--orders", nargs="*", default=list(ORDERS), choices=ORDERS)
    ap.add_argument("--bad-dice", type=float, default=0.5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--work", type=Path)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--png", type=Path, default=Path("loop.png"))
    ap.add_argument("--json", type=Path)
    ap.add_argument("--job-timeout", type=float, default=3600)
    a = ap.parse_args(argv)
    if a.quick:
        a.seeds, a.count, a.test_count, a.size = a.seeds[:1], 24, 12, 64
        a.min_steps, a.rounds, a.orders = 30, 1, ["priority", "random"]
    n_train = len(a.seeds) * (2 + len(a.orders) * a.rounds)
    est = n_train * (a.min_steps * SEC_PER_STEP_128 * max(0.25, (a.size / 128) ** 2) + 20)
    print(f"plan: {len(a.seeds)} seeds × (round 0 + {len(a.orders)} orders × {a.rounds} rounds "
          f"+ ceiling) = {n_train} trainings of {a.min_steps} steps; expected about "
          f"{est / 60:.0f} min on the 2-core CPU with nothing else training",
          file=sys.stderr, flush=True)
    work = a.work or Path(tempfile.mkdtemp(prefix="segtriage-loop-"))
    work.mkdir(parents=True, exist_ok=True)
    started = _dt.datetime.now().astimezone()
    t0 = time.monotonic()
    recs: list[dict] = []
    try:
        for seed in a.seeds:
            recs += run_seed(seed, work, a)
    finally:
        if not a.keep and not a.work:
            shutil.rmtree(work, ignore_errors=True)
    total = time.monotonic() - t0
    print(f"## Loop benchmark, {started:%Y-%m-%d %H:%M %Z}; machine: {machine()}\n"
          f"{a.count} images of {a.size}², {a.corrupt_frac:.0%} corrupted, {a.arch}, "
          f"{a.min_steps} steps, B = {max(1, round(a.count / 8))}, seeds {a.seeds}; total "
          f"{total / 60:.1f} min\n\n{table(recs)}\n", flush=True)
    plot_png(recs, a.png)
    print(f"plot: {a.png}", file=sys.stderr)
    plot_terminal(recs)
    if a.json:
        a.json.write_text(json.dumps(recs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
