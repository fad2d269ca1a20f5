#!/usr/bin/env python
"""Fix effort: how many of the editor's own operations fix a wrong mask, and how fast it redraws.

Part 1, the oracle (issue #15). On a demo project whose truth (`DIR-truth/`) is known, an
oracle fixes every mask that needs it: every corrupted mask and every given mask whose Dice to
truth is under --bad-dice (0.5). It uses only the operation functions of tui/paint/ops/
(through its registry `OPS`; the painter's keys call the same functions), recording each step
in an `ops.History` as the painter does. At each step it tries every candidate operation and
applies the one that raises Dice to truth the most (on a tie, one that is not the brush), and
it stops at Dice >= --goal (0.9), after --max-ops (20) operations, or when no candidate helps.
Every candidate counts as one operation; moving the cursor does not count:
  * point operations (flood fill, erase-fill, fill holes, delete object, grow, shrink, add the
    predicted object) at: each error region's pixel nearest its centroid and its innermost
    pixel (error regions: the 8-connected pieces of truth-not-mask and of mask-not-truth, the
    largest 12 of each), each mask object's and each predicted object's central pixel;
  * grow and shrink by one pixel (what one key press does: g, s; G, S for every object);
  * one brush dab (a disk of radius r at one point; r from 0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32
    and the error region's inner radius) at an error region's innermost pixel, painting where
    the truth has more, erasing where it has less;
  * one stroke (one mouse drag, or pen down / move / pen up) through five points along an error
    region (its pixels' mean in five bins along the region's main axis), of a radius about
    half the region's thickness;
  * a box of prediction: the bounding box of an error region (as is, and 2 px larger), of a
    predicted object (1 px larger), and the whole image;
  * the no-position operations: fill every hole, grow or shrink every object, add every unseen
    predicted object, drop every mask object the model does not see.
Modes: `pred` (every operation; the prediction is the stored model's P(object) > 0.5, as the
painter shows it) and `nopred` (the operations that need no prediction: brush, stroke, fills,
delete, grow, shrink), so the table shows what the prediction buys. A fix that has not reached
the goal after --max-ops operations counts as --max-ops + 1 ("> 20") in the percentiles.

Where the prediction comes from: --project DIR (repeatable) reads a trained demo project: each
image's latest score row names its stored 8-bit probability map (`.segtriage/preds/...`). The
project is opened read-only and nothing in it is written. --train instead builds a demo
(--count, --size, --seed) in --work and trains a model on it with a real engine process
(bench/loop.py's Engine: minutes of CPU).

Part 2, redraw timing (bench/fix_effort_redraw.py): the painter's own frame code after one
brush stroke, one press of the space key and one zoom step, for 128², 1024² and 4096² images at
160x50 and 80x24 terminals.

  .venv/bin/python bench/fix_effort.py --project /path/to/demo        # both parts
  .venv/bin/python bench/fix_effort.py --project P --no-redraw -v      # oracle, each fix listed
  .venv/bin/python bench/fix_effort.py --no-oracle                    # redraw timing only
  .venv/bin/python bench/fix_effort.py --train --work W               # train a demo first
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))

from segtriage.engine.project import imageio  # noqa: E402
from segtriage.engine.project.config import load_config  # noqa: E402
from segtriage.engine.project.demo import (CORRUPTIONS, dice, load_manifest,  # noqa: E402
                                           make_demo, truth_dir)
from segtriage.engine.project.scoring.objects import label  # noqa: E402
from segtriage.engine.store import Store  # noqa: E402
from segtriage.tui.paint import ops  # noqa: E402

from fix_effort_redraw import redraw_rows, redraw_table  # noqa: E402

RADII = (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
TOP_REGIONS = 12
UNCORRUPTED = "bad given"  # an uncorrupted mask with given Dice to truth < --bad-dice


# ------------------------------------------------------------------------------- the cases

@dataclass
class Case:
    name: str
    kind: str
    mask: np.ndarray
    truth: np.ndarray
    prob: np.ndarray | None     # uint8 P(object) x 255, as the painter reads it
    project: str
    in_training: bool | None = None   # the model trained on this mask (not a validation item)


def load_cases(root: Path, bad_dice: float) -> tuple[list[Case], dict, list[str]]:
    """The masks of a demo project that need fixing, with truth and stored prediction; the
    project's current model row; warnings."""
    man = load_manifest(root)
    cfg = load_config(root)
    store = Store(cfg.state_path(root) / "state.db", create=False, readonly=True)
    warn: list[str] = []
    try:
        model = store.current_model()
        valid = set(model.info.get("valid_items") or []) if model else set()
        trained = {m["mask"] for m in model.manifest} if model else set()
        cases = []
        for m_name, given in sorted(man["given_dice"].items()):
            kind = man["corrupted"].get(m_name)
            if kind is None and given >= bad_dice:
                continue
            row = store.image_by_mask(m_name)
            if row is None:
                warn.append(f"{root / m_name}: not in the project's state, left out")
                continue
            mask = imageio.read_mask(root / m_name, cfg.project.codes,
                                     expect_shape=row.shape) > 0
            truth = np.asarray(Image.open(truth_dir(root) / man["truth_masks"] / m_name)) > 0
            if abs(dice(mask, truth) - given) > 1e-3:
                warn.append(f"{root / m_name}: the mask is no longer the given one (Dice to "
                            f"truth {dice(mask, truth):.3f}, given {given:.3f}): left out")
                continue
            sc = store.score(row.id)
            prob = None
            if sc and sc.prob_path and sc.image_sha256 == row.img_sha256:
                with Image.open(cfg.state_path(root) / sc.prob_path) as im:
                    prob = np.asarray(im.convert("L")).copy()
            else:
                warn.append(f"{root / m_name}: no stored prediction for the current image")
            cases.append(Case(m_name, kind or UNCORRUPTED, mask, truth, prob, str(root),
                              in_training=(m_name in trained and row.path not in valid)
                              if model else None))
        return cases, model, warn
    finally:
        store.close()


# ------------------------------------------------------------------------------- the oracle

def _centre_pixel(rr: np.ndarray, cc: np.ndarray) -> tuple[int, int]:
    j = int(np.argmin((rr - rr.mean()) ** 2 + (cc - cc.mean()) ** 2))
    return int(rr[j]), int(cc[j])


def _objects(m: np.ndarray, top: int) -> list[dict]:
    """The ``top`` largest 8-connected objects of ``m``: central pixel, innermost pixel and
    its distance to the outside, bounding box, pixel coordinates."""
    lab, n = label(m)
    if n == 0:
        return []
    areas = np.bincount(lab.ravel(), minlength=n + 1)
    out = []
    slices = ndi.find_objects(lab)
    for i in sorted(range(1, n + 1), key=lambda i: -areas[i])[:top]:
        sl = slices[i - 1]
        part = lab[sl] == i
        rr, cc = np.nonzero(part)
        rr, cc = rr + sl[0].start, cc + sl[1].start
        edt = ndi.distance_transform_edt(np.pad(part, 1))[1:-1, 1:-1]
        k = np.unravel_index(int(np.argmax(edt)), edt.shape)
        out.append({"centre": _centre_pixel(rr, cc),
                    "inner": (int(k[0]) + sl[0].start, int(k[1]) + sl[1].start),
                    "depth": float(edt[k]), "area": int(areas[i]), "rr": rr, "cc": cc,
                    "box": (sl[0].start, sl[1].start, sl[0].stop, sl[1].stop)})
    return out


def _stroke_path(reg: dict, bins: int = 5) -> tuple[list[tuple[int, int]], int] | None:
    """Five points along an error region (pixel means in bins along its main axis) and a
    radius of about half its thickness; None for a region too short for a stroke."""
    rr, cc = reg["rr"].astype(float), reg["cc"].astype(float)
    if rr.size < 6:
        return None
    yx = np.stack([rr - rr.mean(), cc - cc.mean()], 1)
    _, vecs = np.linalg.eigh(yx.T @ yx)
    t = yx @ vecs[:, -1]
    length = float(t.max() - t.min()) + 1
    thick = reg["area"] / length
    if length < 2 * thick:
        return None
    edges = np.linspace(t.min(), t.max() + 1e-9, bins + 1)
    pts = []
    for a, b in zip(edges, edges[1:]):
        sel = (t >= a) & (t < b)
        if sel.any():
            pts.append((int(round(rr[sel].mean())), int(round(cc[sel].mean()))))
    return pts, max(0, int(round(thick / 2)))


def candidates(mask: np.ndarray, truth: np.ndarray, pred: np.ndarray | None):
    """Every candidate operation as (name in ops.OPS, text, arguments after the mask): the
    oracle calls ``ops.OPS[name].func(mask, *arguments)``. ``pred`` None: only the
    operations that need no prediction."""
    h, w = mask.shape
    missing, extra = _objects(truth & ~mask, TOP_REGIONS), _objects(mask & ~truth, TOP_REGIONS)
    pobjs = _objects(pred, 3 * TOP_REGIONS) if pred is not None else []
    points = []
    for reg in missing + extra:
        points += [reg["centre"], reg["inner"]]
    points += [o["centre"] for o in _objects(mask, 3 * TOP_REGIONS) + pobjs]

    for y, x in dict.fromkeys(points):
        at = f"({y},{x})"
        yield "flood_fill", f"{at} paint", (y, x, True)
        yield "flood_fill", f"{at} erase", (y, x, False)
        if mask[y, x]:
            for name in ("fill_holes", "delete_object"):
                yield name, at, (y, x)
            for name in ("grow", "shrink"):
                yield name, at, (y, x, 1)
        elif pred is not None and pred[y, x]:
            yield "add_predicted_object", at, (pred, y, x)
    yield "fill_holes", "all", ()
    yield "grow", "all", (None, None, 1)
    yield "shrink", "all", (None, None, 1)

    for value, regs in ((True, missing), (False, extra)):
        verb = "paint" if value else "erase"
        for reg in regs:
            y, x = reg["inner"]
            fit = int(reg["depth"])
            for r in sorted(set(RADII) | {fit}):
                if r > max(1, 2 * fit + 1):
                    break
                yield "brush", f"({y},{x}) r{r} {verb}", (y, x, r, value)
            path = _stroke_path(reg)
            if path is not None:
                pts, r0 = path
                for r in sorted({max(0, r0 - 1), r0, r0 + 1}):
                    yield "stroke", f"{pts} r{r} {verb}", (pts, r, value)

    if pred is None:
        return
    boxes = [(0, 0, h, w)]
    for reg in missing + extra:
        y0, x0, y1, x1 = reg["box"]
        boxes += [(y0, x0, y1, x1), (y0 - 2, x0 - 2, y1 + 2, x1 + 2)]
    for o in pobjs:
        y0, x0, y1, x1 = o["box"]
        boxes.append((y0 - 1, x0 - 1, y1 + 1, x1 + 1))
    for b in dict.fromkeys((max(0, a), max(0, c), min(h, e), min(w, f)) for a, c, e, f in boxes):
        yield "take_prediction_in_box", f"{b}", (pred, *b)
    yield "add_unseen_predicted", "", (pred,)
    yield "drop_unseen", "", (pred,)


@dataclass
class Fix:
    name: str
    kind: str
    mode: str
    dice0: float
    dice: float = 0.0
    steps: list = field(default_factory=list)    # (op name, args, Dice after)
    reached: bool = False
    problems: list = field(default_factory=list)

    @property
    def n_ops(self) -> int:
        return len(self.steps)

    @property
    def brush(self) -> bool:
        return any(ops.OPS[s[0]].brush for s in self.steps)


def fix_one(mask: np.ndarray, truth: np.ndarray, pred: np.ndarray | None, *, goal: float,
            max_ops: int, name: str = "", kind: str = "", mode: str = "") -> Fix:
    """Greedy oracle: apply the candidate with the largest Dice to truth until ``goal``."""
    hist = ops.History(mask)
    cur = hist.current
    d = dice(cur, truth)
    fx = Fix(name, kind, mode, dice0=d, dice=d)
    now = (round(d, 12), -int((cur ^ truth).sum()))
    while d < goal and fx.n_ops < max_ops:
        best = None
        for op_name, args, argv in candidates(cur, truth, pred):
            new = ops.OPS[op_name].func(cur, *argv)
            nd = dice(new, truth)
            # Dice first; on equal Dice fewer wrong pixels (Dice stays 0 while the mask has no
            # true pixel, however many false ones go), then an operation that is not the brush
            key = (round(nd, 12), -int((new ^ truth).sum()), not ops.OPS[op_name].brush)
            if best is None or key > best[0]:
                best = (key, op_name, args, new, nd)
        if best is None or best[0][:2] <= now:
            break  # nothing helps (cannot happen while the brush is allowed and Dice < 1)
        (*now, _), op_name, args, new, d = best
        now = tuple(now)
        if not hist.push(new, op_name):
            fx.problems.append(f"{op_name} {args}: History.push saw no change")
        cur = hist.current
        fx.steps.append((op_name, args, round(d, 4)))
    fx.dice, fx.reached = d, d >= goal
    # the editor's undo and redo must give back every state
    for _ in fx.steps:
        hist.undo()
    if not np.array_equal(hist.current, ops.as_mask(mask)):
        fx.problems.append("undo to the start did not give back the opened mask")
    for _ in fx.steps:
        hist.redo()
    if not np.array_equal(hist.current, cur):
        fx.problems.append("redo to the end did not give back the fixed mask")
    return fx


def summarize(fixes: list[Fix], max_ops: int) -> dict:
    """n, median and p90 of operations (an unfixed mask counts as max_ops + 1), share within
    5, share fixed without the brush, share reaching the goal."""
    n = len(fixes)
    if n == 0:
        return {"n": 0}
    cost = np.array([f.n_ops if f.reached else max_ops + 1 for f in fixes])
    return {"n": n, "median": float(np.median(cost)),
            "p90": float(np.percentile(cost, 90, method="inverted_cdf")),
            "within5": float(np.mean([f.reached and f.n_ops <= 5 for f in fixes])),
            "no_brush": float(np.mean([f.reached and not f.brush for f in fixes])),
            "reached": float(np.mean([f.reached for f in fixes])),
            "dice0": float(np.mean([f.dice0 for f in fixes])),
            "dice": float(np.mean([f.dice for f in fixes]))}


def _ops_text(v: float, max_ops: int) -> str:
    return f"> {max_ops}" if v > max_ops else f"{v:g}"


def oracle_table(fixes: list[Fix], modes: list[str], kinds: list[str], max_ops: int) -> str:
    lines = ["| mode | kind | n | median ops | p90 ops | <= 5 ops | without brush | "
             "reach Dice >= goal | mean Dice before -> after |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for mode in modes:
        for kind in [*kinds, "all"]:
            fs = [f for f in fixes if f.mode == mode and (kind == "all" or f.kind == kind)]
            s = summarize(fs, max_ops)
            if not s["n"]:
                continue
            lines.append(f"| {mode} | {kind} | {s['n']} | {_ops_text(s['median'], max_ops)} | "
                         f"{_ops_text(s['p90'], max_ops)} | {s['within5']:.0%} | "
                         f"{s['no_brush']:.0%} | {s['reached']:.0%} | "
                         f"{s['dice0']:.2f} -> {s['dice']:.2f} |")
    return "\n".join(lines)


def op_usage(fixes: list[Fix], modes: list[str]) -> str:
    lines = []
    for mode in modes:
        count: dict[str, int] = {}
        for f in fixes:
            if f.mode == mode:
                for s in f.steps:
                    count[s[0]] = count.get(s[0], 0) + 1
        tot = sum(count.values()) or 1
        lines.append(f"  {mode}: " + ", ".join(
            f"{k} {v} ({v / tot:.0%})" for k, v in sorted(count.items(), key=lambda kv: -kv[1])))
    return "\n".join(lines)


# ------------------------------------------------------------------------------- training

def train_demo(a) -> Path:
    """A demo in a.work/demo with a model trained by a real engine process (bench/loop.py)."""
    from loop import Engine, write_config

    root = Path(a.work) / "demo"
    make_demo(root, count=a.count, size=a.size, seed=a.seed, overwrite=True)
    ns = argparse.Namespace(arch=a.arch, min_steps=a.min_steps, lr=1e-3, size=a.size)
    write_config(root, ns)
    eng = Engine(root, timeout=3600)
    try:
        sec = eng.train()
    finally:
        eng.stop()
    print(f"trained {a.arch} on {root} in {sec:.0f} s", file=sys.stderr, flush=True)
    return root


# ------------------------------------------------------------------------------- main

def run_oracle(a, modes: list[str]) -> list[Fix]:
    projects = list(a.project) + ([train_demo(a)] if a.train else [])
    fixes: list[Fix] = []
    seen: set[str] = set()
    t_all = time.perf_counter()
    for root in projects:
        cases, model, warn = load_cases(root, a.bad_dice)
        for w in warn:
            print(f"warning: {w}", file=sys.stderr)
        man = load_manifest(root)
        print(f"\n## {root}: {man['count']} images of {man['size']}², demo seed {man['seed']}, "
              f"{len(cases)} masks need fixing ({sum(c.kind != UNCORRUPTED for c in cases)} "
              "corrupted)")
        if model:
            print(f"   model m{model.id}: {model.arch}, {model.kind}, image size "
                  f"{model.config.get('image_size')}, {model.epochs} epochs, trained "
                  f"on {model.n_train} masks as given (corrupted ones included), "
                  f"validation Dice {model.valid_dice or 0:.3f}; "
                  f"{sum(bool(c.in_training) for c in cases)} of the {len(cases)} masks to fix "
                  "were in its training set")
        for c in cases:
            seen.add(c.kind)
            for mode in modes:
                pred = None
                if mode == "pred":
                    if c.prob is None:
                        print(f"   {c.name}: no prediction, left out of mode pred")
                        continue
                    pred = c.prob > 127  # the painter's Scene.pred
                f = fix_one(c.mask, c.truth, pred, goal=a.goal, max_ops=a.max_ops,
                            name=f"seed {man['seed']} {c.name}", kind=c.kind, mode=mode)
                fixes.append(f)
                for p in f.problems:
                    print(f"   PROBLEM {c.name} ({mode}): {p}")
                if a.verbose:
                    print(f"   {mode:6s} {c.name} {c.kind:14s} Dice {f.dice0:.3f} -> "
                          f"{f.dice:.3f} in {f.n_ops}: "
                          + "; ".join(f"{s[0]} {s[1]} ({s[2]:.3f})" for s in f.steps))
    kinds = [k for k in (*CORRUPTIONS, UNCORRUPTED) if k in seen]
    print(f"\n## operations per fix (goal Dice >= {a.goal}, at most {a.max_ops}; the oracle "
          f"took {time.perf_counter() - t_all:.0f} s)\n")
    print(oracle_table(fixes, modes, kinds, a.max_ops))
    print("\noperations used:")
    print(op_usage(fixes, modes))
    for mode in modes:
        s = summarize([f for f in fixes if f.mode == mode], a.max_ops)
        if s["n"]:
            ok = s["median"] <= 3 and s["within5"] >= 0.8
            print(f"goal ({mode}): median <= 3 and >= 80 % within 5: "
                  f"{'met' if ok else 'MISSED'} (median {_ops_text(s['median'], a.max_ops)}, "
                  f"{s['within5']:.0%} within 5)")
    return fixes


def run_redraw(a) -> dict:
    res = redraw_rows(a)
    print("\n## redraw, ms (the edit or zoom, then Scene.render_lines; no terminal)\n")
    print(redraw_table(res["freeze"]))  # the painter freezes its start-up heap (tui/run.py)
    for mode, what in (("freeze", "as the painter runs (gc.freeze() after start-up)"),
                       ("as-is", "without gc.freeze()")):
        edits = [r for r in res[mode] if not r["action"].startswith("open")]
        worst = max(edits, key=lambda r: r["max"])
        cpu = max(r["cpu_max"] for r in edits)
        calm = max((r["max_calm"] or 0) for r in edits)
        med = max(r["median"] for r in edits)
        print(f"goal: a redraw <= 30 ms, {what}: {'met' if worst['max'] <= 30 else 'MISSED'} "
              f"(worst frame {worst['max']:.1f} ms: {worst['size']}², {worst['canvas']}, "
              f"{worst['action']}; worst CPU {cpu:.1f} ms; worst without a full GC "
              f"{calm:.1f} ms; worst median {med:.1f} ms; {sum(r['full_gc'] for r in edits)} "
              f"of {sum(r['n'] for r in edits)} frames had a full GC)")
    print(f"# load average after the timing {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--project", action="append", default=[], type=Path,
                    help="a trained demo project (repeatable); its truth is DIR-truth")
    ap.add_argument("--train", action="store_true", help="build and train a demo in --work")
    ap.add_argument("--work", type=Path, default=None, help="folder for --train")
    ap.add_argument("--count", type=int, default=48)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--min-steps", type=int, default=120)
    ap.add_argument("--modes", default="pred,nopred")
    ap.add_argument("--bad-dice", type=float, default=0.5)
    ap.add_argument("--goal", type=float, default=0.9)
    ap.add_argument("--max-ops", type=int, default=20)
    ap.add_argument("--no-oracle", action="store_true")
    ap.add_argument("--no-redraw", action="store_true")
    ap.add_argument("--sizes", default="128,1024,4096")
    ap.add_argument("--canvases", default="160x48,80x22")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--json", type=Path, default=None, help="write every fix and timing here")
    ap.add_argument("-v", "--verbose", action="store_true", help="list each fix's operations")
    a = ap.parse_args(argv)
    modes = [m for m in a.modes.split(",") if m]
    bad = [m for m in modes if m not in ("pred", "nopred")]
    if bad:
        ap.error(f"--modes: unknown mode(s) {bad}; allowed: pred, nopred")
    if not a.no_oracle and not a.project and not a.train:
        ap.error("the oracle needs a trained demo project: --project DIR, or --train (or "
                 "--no-oracle for the redraw timing alone)")
    if a.train and a.work is None:
        ap.error("--train needs --work W (the demo and its model are made there)")

    from machine import machine

    print(f"# fix_effort  {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"# {machine()}")
    print(f"# load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"# {' '.join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])}")
    record: dict = {}
    if not a.no_oracle:
        record["fixes"] = [f.__dict__ for f in run_oracle(a, modes)]
    if not a.no_redraw:
        record["redraw"] = run_redraw(a)
    if a.json:
        a.json.write_text(json.dumps(record, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
