#!/usr/bin/env python
"""The loop, measured: what a person's fixes buy, in which order (issue #16, part 2).

For each replicate (demo seed × training seed) this
  1. builds a demo set (`engine.project.demo.make_demo`) and a held-out test set (seed +
     1000, its truth masks only) that never enters any project: nothing can train on it;
  2. round 0: runs a real engine process on the demo folder, submits `train` through the
     Store (which queues its own `predict`: probabilities and scores), stops the engine, and
     copies the folder with its state once per order, so every order starts from the same
     round-0 model;
  3. each round, for each order: reads the real report (`segtriage report DIR --format
     json`), takes the top B masks (B = 1/8 of the set) of the order that are not fixed yet,
     writes each one's truth through `engine.project.history.write_mask` (source "editor",
     as the mask editor does: the row becomes "edited" and is re-scored), then submits
     `train` and waits for it and its predict; records the test-set Dice, the unfixed "needs
     fixing" masks (corrupted, or given Dice to truth < 0.5) and the wall time;
  4. orders: `priority` (segtriage's default), `cleanlab` (the real package's soft-minimum,
     `cleanlab.segmentation.rank.get_label_quality_scores`, on the stored probabilities),
     `1-dice`, `confidence` (mean max-probability, least confident first), `random`; and the
     ceiling: the round-0 copy with every mask replaced by its truth, trained once.
It prints a table, a verdict per goal (met or missed, by how much, with the spread over the
replicates) and a terminal plot, and writes a PNG. The test set is predicted in this process
with the engine's own inference class (`engine.ml.infer.Predictor`) on the weights of the
round's current model: the same code and weights as the predict job, without adding the test
images to any project (a person's fix could reach them there).

The default setting (docs/benchmarks.md, "The loop", says what was tried and why): 96 images
of 64², half the masks eroded (a threshold set too high: real thresholded masks are wrong the
same way, not at random), resnet18, 120 steps, demo seeds 0–2. With the demo's own mix (a
quarter of the masks, five kinds) fixing moved the test Dice less than the spread: a U-Net
shrugs off a minority of unbiased errors. Sizing for the hour: 12 trainings a replicate, 120
steps cost about 90 s at 64² with one core free (mostly the data pipeline and per-epoch
overheads, so 96 images cost hardly more than 48), about 1.8 s a step at 128².

  .venv/bin/python bench/loop.py --work W --keep --png loop.png --json loop.json
  .venv/bin/python bench/loop.py --report a.json b.json   # replicates run in two sittings
  .venv/bin/python bench/loop.py --quick     # smoke test: 24 images, 30 steps, 2 orders
  .venv/bin/python bench/loop.py --corrupt-frac 0.25 --corrupt-mix   # the demo's default mix
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
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
from segtriage.engine.project.project import Project  # noqa: E402

ORDERS = ("priority", "cleanlab", "1-dice", "confidence", "random")
DEFAULT_TRAIN_SEED = 42  # [model] seed's default
SEC_PER_STEP_64 = 0.7  # a step with its share of the epoch overheads, engine, bf16, 1 thread


def write_config(root: Path, a, train_seed: int) -> None:
    (root / "segtriage.toml").write_text(
        "[model]\n"
        f'arch = "{a.arch}"\nepochs = 1\nmin_steps = {a.min_steps}\nlr = {a.lr}\n'
        f"image_size = {a.size}\nseed = {train_seed}\n"
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


def run_replicate(seed: int, tseed: int, work: Path, a) -> list[dict]:
    """One replicate: demo seed `seed`, training seed `tseed` (`[model] seed`: weight init,
    shuffling and the validation split), round 0, every order's rounds and the ceiling."""
    recs = []
    base = work / (f"s{seed}" if tseed == DEFAULT_TRAIN_SEED else f"s{seed}-t{tseed}")
    r0 = base / "round0"
    test_root = base / "test"
    for p in (r0, test_root):
        shutil.rmtree(p, ignore_errors=True)
        shutil.rmtree(truth_dir(p), ignore_errors=True)
    make_demo(r0, count=a.count, size=a.size, seed=seed, corrupt_frac=a.corrupt_frac,
              corruption_mix=a.mix)
    make_demo(test_root, count=a.test_count, size=a.size, seed=seed + 1000, corrupt_frac=0.0)
    write_config(r0, a, tseed)
    need = needs_fixing(r0, a.bad_dice)
    n_masks = a.count
    batch = max(1, round(n_masks / 8))
    print(f"== seed {seed}, training seed {tseed}: {n_masks} masks, {len(need)} need fixing, "
          f"B = {batch}", file=sys.stderr, flush=True)

    def rec(order, rnd, fixed, root, sec, picked=()):
        names = {Path(p).name for p in picked}
        recs.append({"seed": seed, "train_seed": tseed, "order": order, "round": rnd,
                     "fixed": fixed, "test_dice": test_dice(root, test_root),
                     "unfixed_need": len(need - names), "seconds": round(sec, 1),
                     "picked": sorted(picked), "load": round(os.getloadavg()[0], 2)})
        r = recs[-1]
        print(f"  {order} round {rnd}: fixed {fixed}, test Dice {r['test_dice']:.3f}, "
              f"unfixed needs fixing {r['unfixed_need']} ({sec:.0f} s, load {r['load']})",
              file=sys.stderr, flush=True)

    eng = Engine(r0, a.job_timeout)
    try:
        sec = eng.train()
    finally:
        eng.stop()
    rec("round0", 0, 0, r0, sec)
    cfg = load_config(r0)
    for order in [*a.orders, *(["ceiling"] if a.ceiling else [])]:
        root = base / order
        copy_folder(r0, root)
        rng = np.random.default_rng(seed * 7919 + tseed * 104729 + 17)
        eng = Engine(root, a.job_timeout)
        try:
            if order == "ceiling":
                t0 = time.monotonic()
                every = sorted(load_manifest(root)["given_dice"])
                fix(root, cfg, every)
                eng.train()
                rec("ceiling", None, n_masks, root, time.monotonic() - t0, every)
                continue
            fixed: list[str] = []
            for rnd in range(1, a.rounds + 1):
                t0 = time.monotonic()
                rows = order_rows(root, cfg, report(root), order, rng)
                pick = [r["mask"] for r in rows if r["mask"] not in fixed][:batch]
                fix(root, cfg, pick)
                fixed += pick
                eng.train()
                rec(order, rnd, len(fixed), root, time.monotonic() - t0, fixed)
        finally:
            eng.stop()
    return recs


# ------------------------------------------------------------------------------ the output
def sd(x) -> float:
    """Sample standard deviation (n − 1); 0 for a single value."""
    x = np.asarray(x, dtype=float)
    return float(x.std(ddof=1)) if x.size > 1 else 0.0


def at(recs: list[dict], order: str, fixed: int) -> dict[tuple, dict]:
    """{(seed, training seed): record} of an order after `fixed` fixes (round 0 for any
    order at 0)."""
    if fixed == 0 and order != "ceiling":
        order = "round0"
    return {(r["seed"], r["train_seed"]): r for r in recs
            if r["order"] == order and r["fixed"] == fixed}


def points(recs: list[dict]) -> list[tuple[str, int]]:
    """(order, masks fixed) of every row of the table: round 0 first, the ceiling last."""
    orders = [o for o in ORDERS if any(r["order"] == o for r in recs)]
    keys = [("round0", 0)] + [(o, f) for o in orders
                              for f in sorted({r["fixed"] for r in recs if r["order"] == o})]
    return keys + [("ceiling", f) for f in sorted({r["fixed"] for r in recs
                                                   if r["order"] == "ceiling"})]


def table(recs: list[dict]) -> str:
    lines = ["| order | masks fixed | test Dice mean ± sd | unfixed needs fixing mean ± sd | "
             "seconds mean | replicates |", "|---|---:|---:|---:|---:|---:|"]
    for order, fixed in points(recs):
        g = list(at(recs, order, fixed).values())
        d = [r["test_dice"] for r in g]
        u = [r["unfixed_need"] for r in g]
        lines.append(f"| {'round 0' if order == 'round0' else order} | {fixed} | "
                     f"{np.mean(d):.3f} ± {sd(d):.3f} | {np.mean(u):.1f} ± {sd(u):.1f} | "
                     f"{np.mean([r['seconds'] for r in g]):.0f} | {len(g)} |")
    return "\n".join(lines)


def curves(recs: list[dict]):
    """{order: (masks fixed, test Dice means, sds, unfixed needs-fixing means)}, from 0."""
    out = {}
    for order in [o for o in ORDERS if any(r["order"] == o for r in recs)]:
        xs = [0] + sorted({r["fixed"] for r in recs if r["order"] == order})
        gs = [list(at(recs, order, x).values()) for x in xs]
        out[order] = (xs, [np.mean([r["test_dice"] for r in g]) for g in gs],
                      [sd([r["test_dice"] for r in g]) for g in gs],
                      [np.mean([r["unfixed_need"] for r in g]) for g in gs])
    return out


def verdicts(recs: list[dict], a, total: float, loads: tuple[float, float]) -> str:
    """The issue's three goals, each met or missed and by how much, with the spread over
    the replicates; and whether fixing moves the test Dice beyond that spread at all."""
    batch = max(1, round(a.count / 8))
    n_rep = len({(r["seed"], r["train_seed"]) for r in recs})
    d = lambda g: [r["test_dice"] for r in g.values()]  # noqa: E731
    out = [f"spread: sample sd over the {n_rep} replicates (demo seed × training seed); "
           "'beyond the spread': two means differ by more than the larger of their sds"]
    r0, ceil = d(at(recs, "round0", 0)), d(at(recs, "ceiling", a.count))
    last = {o: d(at(recs, o, a.rounds * batch)) for o in a.orders}
    if a.rounds and a.orders:
        best = max(last, key=lambda o: np.mean(last[o]))
        move = np.mean(last[best]) - np.mean(r0)
        spread = max(sd(r0), sd(last[best]))
        out.append(f"signal: fixing {a.rounds * batch} masks moves the test Dice by at most "
                   f"{move:+.3f} ({best}; round 0 {np.mean(r0):.3f} ± {sd(r0):.3f})"
                   + (f", the ceiling is {np.mean(ceil) - np.mean(r0):+.3f} above round 0"
                      if ceil else "") + f"; spread {spread:.3f}: "
                   + ("beyond the spread" if move > spread else
                      "WITHIN the spread: this setting cannot tell orders apart by test Dice"))
    k = next((r for r in range(1, a.rounds + 1) if r * batch >= 0.25 * a.count), None)
    if "priority" in a.orders and ceil and k:
        p = d(at(recs, "priority", k * batch))
        ratio = np.mean(p) / np.mean(ceil)
        per = [p_ / c_ for key, p_ in zip(at(recs, "priority", k * batch), p)
               for c_ in [at(recs, "ceiling", a.count).get(key, {}).get("test_dice")] if c_]
        out.append(f"goal 1, >= 95 % of the ceiling after fixing {k * batch} masks "
                   f"({k * batch / a.count:.0%}) in priority order: {ratio:.1%} (priority "
                   f"{np.mean(p):.3f} ± {sd(p):.3f}, ceiling {np.mean(ceil):.3f} ± "
                   f"{sd(ceil):.3f}; per replicate {min(per):.1%}–{max(per):.1%}): "
                   + (f"met by {100 * (ratio - 0.95):.1f} points" if ratio >= 0.95
                      else f"MISSED by {100 * (0.95 - ratio):.1f} points"))
    else:
        out.append("goal 1: not measured (needs the priority order, the ceiling and a round "
                   "at 25 % fixed)")
    others = [o for o in a.orders if o != "priority"]
    if "priority" in a.orders and others:
        out.append("goal 2, priority at or above every other order at every round, beyond the "
                   "spread:\n\n| round | fixed | other order | priority − other | larger sd | "
                   "paired difference mean ± sd | same picks | verdict |\n"
                   "|---:|---:|---|---:|---:|---:|---:|---|")
        cells = []
        for rnd in range(1, a.rounds + 1):
            gp = at(recs, "priority", rnd * batch)
            for o in others:
                go = at(recs, o, rnd * batch)
                keys = sorted(set(gp) & set(go))
                dp = [gp[k_]["test_dice"] for k_ in keys]
                do = [go[k_]["test_dice"] for k_ in keys]
                diff, spread = np.mean(dp) - np.mean(do), max(sd(dp), sd(do))
                pair = np.subtract(dp, do)
                same = np.mean([len(set(gp[k_]["picked"]) & set(go[k_]["picked"]))
                                for k_ in keys])
                v = ("above" if diff > spread else "BELOW" if diff < -spread else "within")
                cells.append((rnd, o, v))
                out[-1] += (f"\n| {rnd} | {rnd * batch} | {o} | {diff:+.3f} | {spread:.3f} | "
                            f"{pair.mean():+.3f} ± {sd(pair):.3f} | {same:.1f} / "
                            f"{rnd * batch} | {v} |")
        bad = [c for c in cells if c[2] != "above"]
        out[-1] += ("\n\ngoal 2: " + ("met" if not bad else
                    f"MISSED in {len(bad)} of {len(cells)} comparisons (" + "; ".join(
                        f"{o} round {r}: {v}" for r, o, v in bad) + ")")
                    + ("; never below beyond the spread" if not any(
                        v == "BELOW" for *_, v in cells) else ""))
    out.append(f"goal 3, the whole benchmark under an hour on the 2-core CPU: {total / 60:.1f} "
               "min: " + (f"met by {60 - total / 60:.1f} min" if total < 3600 else
                          f"MISSED by {total / 60 - 60:.1f} min")
               + f" (load average {loads[0]:.2f} before, {loads[1]:.2f} after, "
               f"{np.mean([r['load'] for r in recs]):.2f} mean after each training)")
    return "\n\n".join(out)


def plot_png(recs: list[dict], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, (order, (xs, dm, ds, u)) in enumerate(curves(recs).items()):
        off = (i - 2) * 0.08  # error bars side by side, not on top of each other
        ax1.errorbar(np.add(xs, off), dm, yerr=ds, marker="o", capsize=3, label=order)
        ax2.plot(xs, u, marker="o", label=order)
    ceil = [r["test_dice"] for r in recs if r["order"] == "ceiling"]
    if ceil:
        m, s_ = np.mean(ceil), sd(ceil)
        ax1.axhline(m, ls="--", c="k", label="ceiling (every truth mask)")
        ax1.axhspan(m - s_, m + s_, color="k", alpha=0.08)
        ax1.axhline(0.95 * m, ls=":", c="grey", label="95 % of the ceiling")
    ax1.set(xlabel="masks fixed", ylabel="test-set Dice (mean ± sd over replicates)")
    ax2.set(xlabel="masks fixed", ylabel="'needs fixing' masks still unfixed (mean)")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_terminal(recs: list[dict]) -> None:
    import plotext as plt

    for i, what in enumerate(("test Dice", "unfixed needs fixing")):
        plt.clear_figure()
        plt.theme("clear")
        for order, (xs, dm, _sd, u) in curves(recs).items():
            plt.plot(xs, dm if i == 0 else u, label=order, marker="dot")
        ceil = [r["test_dice"] for r in recs if r["order"] == "ceiling"]
        if ceil and i == 0:
            plt.hline(float(np.mean(ceil)))
        plt.title(f"{what} vs masks fixed" + (" (line: ceiling)" if ceil and i == 0 else ""))
        plt.plotsize(80, 20)
        plt.show()


def report_saved(a, setting: str) -> int:
    """--report: the records of earlier runs, one replicate in one file only, reported as a
    run would report them; the time is what the rounds took, without set-up between them."""
    recs: list[dict] = []
    seen: dict[tuple, Path] = {}
    for path in a.report:
        got = json.loads(path.read_text())
        for key in sorted({(r["seed"], r["train_seed"]) for r in got}):
            if key in seen:
                raise SystemExit(f"{path}: replicate seed {key[0]}, training seed {key[1]} "
                                 f"is also in {seen[key]}")
            seen[key] = path
        recs += got
    loads = [r["load"] for r in recs if r.get("load") is not None]
    total = sum(r["seconds"] for r in recs)
    files = ", ".join(map(str, a.report))
    return print_results(recs, a, f"## Loop benchmark, records of {files}; machine: "
                         f"{machine()}\n{setting}; rounds' time in all {total / 60:.1f} min",
                         total, (min(loads, default=0), max(loads, default=0)), setting)


def print_results(recs: list[dict], a, head: str, total: float,
                  loads: tuple[float, float], title: str) -> int:
    """What a run prints and draws: ``head``, the table, the verdicts, the PNG (``title``)
    and the terminal plot."""
    print(f"{head}\n\n{table(recs)}\n\n{verdicts(recs, a, total, loads)}\n", flush=True)
    plot_png(recs, a.png, title)
    print(f"plot: {a.png}", file=sys.stderr)
    plot_terminal(recs)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 1)[1])
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2], help="demo seeds")
    ap.add_argument("--train-seeds", type=int, nargs="*", default=[DEFAULT_TRAIN_SEED],
                    help="[model] seed of every training; each demo seed × training seed is "
                         "one replicate")
    ap.add_argument("--count", type=int, default=96)
    ap.add_argument("--test-count", type=int, default=48)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--corrupt-frac", type=float, default=0.5)
    ap.add_argument("--corrupt-mix", nargs="*", default=["eroded"], metavar="KIND[=W]",
                    help="make_demo's corruption_mix; none given: all kinds equally")
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--min-steps", type=int, default=120)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--orders", nargs="*", default=list(ORDERS), choices=ORDERS)
    ap.add_argument("--no-ceiling", dest="ceiling", action="store_false")
    ap.add_argument("--bad-dice", type=float, default=0.5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--work", type=Path)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--png", type=Path, default=Path("loop.png"))
    ap.add_argument("--json", type=Path)
    ap.add_argument("--job-timeout", type=float, default=3600)
    ap.add_argument("--report", type=Path, nargs="+", metavar="JSON",
                    help="no training: print the table, verdicts and plots of the records in "
                         "these --json files (runs of the same setting, e.g. replicates run "
                         "in two sittings); the total time is the sum of the rounds' times")
    a = ap.parse_args(argv)
    if a.quick:
        a.seeds, a.train_seeds, a.count, a.test_count = a.seeds[:1], a.train_seeds[:1], 24, 12
        a.min_steps, a.rounds, a.orders = 30, 1, ["priority", "random"]
    try:
        a.mix = (None if not a.corrupt_mix else
                 {k: float(w or 1) for k, _, w in (m.partition("=") for m in a.corrupt_mix)})
    except ValueError:
        ap.error(f"--corrupt-mix: KIND or KIND=WEIGHT, got {a.corrupt_mix}")
    reps = [(s, t) for s in a.seeds for t in a.train_seeds]
    n_train = len(reps) * (1 + len(a.orders) * a.rounds + a.ceiling)
    est = n_train * (a.min_steps * SEC_PER_STEP_64 * (a.size / 64) ** 1.4 + 15)
    mix = ("all kinds" if not a.mix else
           " + ".join(f"{k}" + (f"×{w:g}" if len(a.mix) > 1 else "") for k, w in a.mix.items()))
    setting = (f"{a.count} images of {a.size}², {a.corrupt_frac:.0%} corrupted ({mix}), "
               f"{a.arch}, {a.min_steps} steps, B = {max(1, round(a.count / 8))}, "
               f"{a.rounds} rounds, demo seeds {a.seeds} × training seeds {a.train_seeds}")
    print(f"plan: {setting}: {len(reps)} replicates × (round 0 + {len(a.orders)} orders × "
          f"{a.rounds} rounds{' + ceiling' if a.ceiling else ''}) = {n_train} trainings; "
          f"expected about {est / 60:.0f} min on the 2-core CPU with one core free",
          file=sys.stderr, flush=True)
    if a.report:
        return report_saved(a, setting)
    work = a.work or Path(tempfile.mkdtemp(prefix="segtriage-loop-"))
    work.mkdir(parents=True, exist_ok=True)
    started = _dt.datetime.now().astimezone()
    load0 = os.getloadavg()[0]
    t0 = time.monotonic()
    recs: list[dict] = []
    try:
        for seed, tseed in reps:
            recs += run_replicate(seed, tseed, work, a)
            if a.json:  # what is done so far survives a stop
                a.json.write_text(json.dumps(recs, indent=1))
    finally:
        if not a.keep and not a.work:
            shutil.rmtree(work, ignore_errors=True)
    total = time.monotonic() - t0
    command = " ".join(["bench/loop.py", *(argv if argv is not None else sys.argv[1:])])
    return print_results(recs, a, f"## Loop benchmark, {started:%Y-%m-%d %H:%M %Z}; machine: "
                         f"{machine()}\ncommand: {command}\n{setting}; total {total / 60:.1f} min",
                         total, (load0, os.getloadavg()[0]), f"{setting}, {started:%Y-%m-%d}")


if __name__ == "__main__":
    sys.exit(main())
