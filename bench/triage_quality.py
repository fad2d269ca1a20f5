#!/usr/bin/env python
"""Triage quality: does the review order put the wrong masks first?

For each configuration (demo seed × corruption mix) this
  1. builds the demo data set (`engine.demo.make_demo`; its `<root>-truth/manifest.json` says
     which masks were corrupted and each given mask's Dice to the truth),
  2. runs a real engine process on it and submits `train`, then `crossval`, through the Store
     (each queues its own `predict` of the stale rows, which stores probabilities and scores),
  3. reads the score rows of both models — the plain model (in-sample: it trained on most of
     the masks it scores) and the crossval model (out-of-fold: every image scored by the fold
     model that never saw its mask) — and measures, for every score column with a direction
     in `scoring.SORT_KEYS`, how well sorting by it finds
       * the masks that need fixing (the target, reported first): corrupted, or given Dice
         to truth < --bad-dice,
       * the corrupted masks (manifest "corrupted") among all masks (the goal),
       * the corrupted masks among the corrupted and the good ones: uncorrupted masks that
         are wrong anyway (given Dice to truth < --bad-dice, default 0.5, e.g. an Otsu mask
         that missed every faint object) take no part, since putting them high is right, and
       * the actually bad masks (given Dice to truth < --bad-dice) among all masks,
     as precision@K (= recall@K, since K is the number of positives), average precision and
     ROC AUC (Mann–Whitney, ties count ½; bench/ranking.py), beside random order (P@K = K/N,
     AUC 0.5), the real cleanlab package (`cleanlab.segmentation.rank.
     get_label_quality_scores`, softmin, on the same stored probabilities; the `bench`
     extra) and the project's own soft-minimum (`lq_softmin`). Seeds other than TUNED_SEEDS
     (0–2, which the scoring was tuned on) are marked held out.
Ties are broken fairly: precision@K is the expected value over a random order within a tie
(a column that gives half the images the same value gets no credit from the input order).

  .venv/bin/python bench/triage_quality.py                 # full: 5 configurations (seeds
                        # 0, 3, 5 all kinds; 4, 6 eroded + shifted), each trained and
                        # cross-validated, resnet18: about 33 min a configuration on the
                        # 2-core CPU with nothing else training, ~2.8 h in all (printed at start)
  .venv/bin/python bench/triage_quality.py --quick         # smoke test: a few minutes
  .venv/bin/python bench/triage_quality.py --work W --keep # keep folders and models in W
  .venv/bin/python bench/triage_quality.py --work W --rescore   # no training: re-score W's
                        # stored probabilities with the current scoring code (scorer work)
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from segtriage.engine.project import imageio, scoring
from segtriage.engine.project.scoring import objects
from segtriage.engine.project.config import load_config
from segtriage.engine.project.demo import load_manifest, make_demo, truth_dir
from segtriage.engine.project.project import Project
from segtriage.engine.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402
from ranking import average_precision, precision_at_k, roc_auc  # noqa: E402

ALL_KINDS = "object_removed+false_object+eroded+dilated+shifted"
# headline columns, in this order, in the summary table
CLEANLAB = "cleanlab"  # the real package's soft-minimum, on the stored probabilities
HEADLINE = ("priority", CLEANLAB, "lq_softmin", "label_quality", "lq_pixel", "lq_object",
            "dice", "ce", "soft_dice", "confidence")
# Seeds the scoring was tuned on (docs/benchmarks.md, "Version 2 → version 3": version 3's
# change was chosen on seeds 0–2; the priority has not changed since). Any other seed is
# held out.
TUNED_SEEDS = frozenset({0, 1, 2})
# The default plan: five configurations, both corruption mixes, four of them held out.
DEFAULT_SEEDS = [0, 3, 5]
DEFAULT_EXTRA = ["4:eroded+shifted", "6:eroded+shifted"]
# Measured one configuration at a time on the 2-core CPU (docs/benchmarks.md, "Triage
# quality"): resnet18, 96 images of 128², 200 steps, train + 3-fold crossval + predicts:
# 23.5, 31, 33 and 44 min. resnet34 trains the same steps in about twice the time.
MIN_PER_CONFIG = {"resnet18": 33.0, "resnet34": 60.0, "resnet50": 90.0}
MODEL_KINDS = ("plain", "crossval")
LABEL = {"plain": "in-sample (train)", "crossval": "out-of-fold (crossval)"}


# ----------------------------------------------------------------------------------------
# ranking figures
# ----------------------------------------------------------------------------------------
def oriented(rows: list[dict], col: str) -> np.ndarray:
    """Column values turned so that larger = more likely wrong (SORT_KEYS direction);
    missing values go last, as in the review list."""
    desc = scoring.SORT_KEYS.get(col, "asc") == "desc"
    out = np.empty(len(rows))
    for i, r in enumerate(rows):
        v = r.get(col)
        if col == "category":
            v = scoring.CATEGORIES.index(v) if v in scoring.CATEGORIES else None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            out[i] = -np.inf
        else:
            out[i] = v if desc else -v
    return out


def evaluate(rows: list[dict], pos: np.ndarray, cols: list[str],
             keep: np.ndarray | None = None) -> dict:
    if keep is not None:
        rows, pos = [r for r, k in zip(rows, keep) if k], pos[keep]
    k = int(pos.sum())
    base = k / len(rows) if rows else None
    res = {"_random": {"auc": 0.5, "p_at_k": base, "ap": base}, "_k": k, "_n": len(rows)}
    for c in [*cols, ORACLE]:
        s = oriented(rows, c)
        if np.all(s == -np.inf):
            continue
        res[c] = {"auc": roc_auc(s, pos), "p_at_k": precision_at_k(s, pos, k),
                  "ap": average_precision(s, pos)}
    return res


def cleanlab_quality(prob: np.ndarray, mask: np.ndarray | None, temperature: float
                     ) -> float | None:
    """cleanlab's own label quality score of one image (`cleanlab.segmentation.rank.
    get_label_quality_scores`, method "softmin", the package's default), from the stored
    P(foreground): pred_probs (1, 2, H, W) = (1 − p, p), labels (1, H, W) = mask ≥ 1.
    Lower = the label is more likely wrong; None without a mask."""
    if mask is None:
        return None
    from cleanlab.segmentation.rank import get_label_quality_scores

    p = np.asarray(prob, dtype=np.float64)
    pred = np.stack([1.0 - p, p])[None]
    labels = (np.asarray(mask) > 0).astype(np.int64)[None]
    scores, _ = get_label_quality_scores(labels, pred, method="softmin",
                                         temperature=temperature, verbose=False)
    return float(scores[0])


def score_columns(rows: list[dict]) -> list[str]:
    """Every SORT_KEYS column that holds numbers in these rows (priority first), and
    cleanlab's score."""
    present = set().union(*(r.keys() for r in rows)) if rows else set()
    skip = {"path"}
    cols = [c for c in [*scoring.SORT_KEYS, CLEANLAB] if c in present and c not in skip]
    return sorted(cols, key=lambda c: (c != "priority", c not in HEADLINE,
                                       HEADLINE.index(c) if c in HEADLINE else 0))


# ----------------------------------------------------------------------------------------
# running the engine
# ----------------------------------------------------------------------------------------
def write_config(root: Path, a) -> None:
    (root / "segtriage.toml").write_text(
        "[model]\n"
        f'arch = "{a.arch}"\nepochs = {a.epochs}\nmin_steps = {a.min_steps}\nlr = {a.lr}\n'
        f"folds = {a.folds}\nimage_size = {a.size}\n"
        "[engine]\nidle_exit_s = 0\nwatch = \"off\"\n"
        "[backup]\nbefore_train = false\n")


def wait_idle(store: Store, jid: int, what: str, timeout: float, engine: subprocess.Popen,
              log: Path) -> dict:
    """Wait for job `jid`, then for the predict jobs it queued; raise on any failure."""
    t0 = time.monotonic()
    last = 0.0
    while True:
        if engine.poll() is not None:
            raise RuntimeError(f"engine exited ({engine.returncode}); log tail:\n"
                               + log.read_text()[-3000:])
        active = store.active_jobs()
        if not active and not store.job(jid).active:
            break
        now = time.monotonic()
        if now - t0 > timeout:
            raise TimeoutError(f"{what}: not done after {timeout:.0f} s")
        if now - last > 30 and active:
            j = active[0]
            print(f"    [{now - t0:5.0f} s] {j.kind} {100 * (j.progress or 0):3.0f}% "
                  f"{j.message or ''}", file=sys.stderr, flush=True)
            last = now
        time.sleep(1.0)
    failed = [j for j in store.jobs(limit=200) if j.id >= jid and j.state != "done"]
    if failed:
        raise RuntimeError(f"{what}: job(s) did not finish: "
                           + "; ".join(f"{j.kind} {j.state}: {j.error}" for j in failed))
    return {"seconds": round(time.monotonic() - t0, 1)}


def stop_engine(eng: subprocess.Popen) -> None:
    """SIGTERM the engine (it finishes its current step and leaves), SIGKILL after 120 s."""
    if eng.poll() is None:
        eng.send_signal(signal.SIGTERM)
        try:
            eng.wait(120)
        except subprocess.TimeoutExpired:
            eng.kill()
            eng.wait()


def train_and_score(root: Path, a) -> dict:
    """Run an engine on `root`; submit train, then crossval; return timings per kind."""
    store = Project.open(root).store
    log = root / ".bench-engine.log"
    times: dict[str, float] = {}
    with open(log, "ab") as lf:
        eng = subprocess.Popen([sys.executable, "-m", "segtriage.engine", "run", str(root)],
                               stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                               start_new_session=True)
        try:
            for kind in MODEL_KINDS if not a.no_crossval else ("plain",):
                job_kind = "train" if kind == "plain" else "crossval"
                print(f"  {job_kind} ...", file=sys.stderr, flush=True)
                jid = store.submit_job(job_kind, {}, requested_by="bench")
                times[kind] = wait_idle(store, jid, job_kind, a.job_timeout, eng, log)["seconds"]
                print(f"  {job_kind} + predict: {times[kind]:.0f} s", file=sys.stderr,
                      flush=True)
        finally:
            stop_engine(eng)
    store.close()
    return times


# ----------------------------------------------------------------------------------------
# reading the scores back
# ----------------------------------------------------------------------------------------
def model_rows(root: Path, kind: str, rescore: bool) -> tuple[list[dict], dict] | None:
    """Score rows of the newest model of `kind` (each with 'path', 'mask_path'), and info."""
    from segtriage.engine.project.scoring.probs import load_prob
    from segtriage.engine.project.scoring.rescore import read_current_mask

    store = Project.open(root).store
    cfg = load_config(root)
    state = cfg.state_path(root)
    models = [m for m in store.models() if m.kind == kind]
    if not models:
        return None
    m = models[-1]
    images = {r.id: r for r in store.images()}
    rows, diffs = [], []
    unmatched = {side: {"real": 0, "not": 0} for side in ("extra", "missed")}
    for row in store.scores_for_model(m.id):
        img = images[row.image_id]
        if row.error:
            raise RuntimeError(f"{img.path}: score error: {row.error}")
        prob = load_prob(state, row.prob_path)
        mask = read_current_mask(Project(root, cfg, store), img)
        sc = {"category": row.category, **row.metrics}
        if rescore:
            sc = {**sc, **scoring.score_image(prob, mask, cfg_scoring=cfg.scoring)}
        if not rescore:  # re-scored rows come from these same PNGs: nothing to compare
            # cleanlab's soft-minimum recomputed from the stored 8-bit probabilities
            lq_png = scoring.softmin_quality(prob, mask, cfg.scoring.lq_temperature)
            diffs.append(abs(lq_png - sc["lq_softmin"]))
        truth = imageio.read_mask(truth_dir(root) / "masks" / Path(img.mask_path).name,
                                  cfg.project.codes) > 0
        rows.append({**sc, "path": img.path, "mask_path": img.mask_path,
                     CLEANLAB: cleanlab_quality(prob, mask, cfg.scoring.lq_temperature),
                     "_pred_dice_truth": scoring.dice(prob > 0.5, truth)})
        unmatched_vs_truth(prob, mask, truth, cfg.scoring.match_iou, unmatched)
    rows.sort(key=lambda r: r["path"])
    info = {"model": m.id, "valid_dice": m.valid_dice, "epochs": m.epochs,
            "arch": m.arch, "n_train": m.n_train, "n_valid": m.n_valid,
            "softmin_png_max_abs_diff": max(diffs) if diffs else None,
            # how well the model segments: its prediction against the hidden truth
            "pred_dice_truth": float(np.mean([r["_pred_dice_truth"] for r in rows])),
            "categories": {c: sum(r.get("category") == c for r in rows)
                           for c in scoring.CATEGORIES},
            "unmatched_objects": unmatched}
    if kind == "crossval":
        info["folds"] = m.info.get("folds")
    store.close()
    return rows, info


def unmatched_vs_truth(prob, mask, truth, match_iou: float, counts: dict,
                       min_px: int = 9) -> None:
    """Count the unmatched objects (≥ min_px) of prediction and mask by whether they are real
    (mostly on the truth's foreground): how often the model is right when it sees an object
    the mask lacks ('extra') and when it does not see one the mask has ('missed'); the
    evidence behind lq_object counting extra objects only (docs/scoring.md)."""
    if mask is None:
        return
    lp, n_pred = objects.label(prob > 0.5)
    lm, n_mask = objects.label(mask > 0)
    m = objects.match_labels(lp, n_pred, lm, n_mask, match_iou)
    for side, labels, n, area, matched in (
            ("extra", lp, n_pred, m.pred_areas, m.pred_matched),
            ("missed", lm, n_mask, m.mask_areas, m.mask_matched)):
        if n == 0:
            continue
        on_truth = np.bincount(labels.ravel(), truth.ravel().astype(np.float64),
                               minlength=n + 1)[1:]
        keep = ~matched & (area >= min_px)
        real = keep & (on_truth >= 0.5 * area)
        counts[side]["real"] += int(real.sum())
        counts[side]["not"] += int((keep & ~real).sum())


ORACLE = "_oracle"


TARGETS = ("needs fixing", "corrupted", "corrupted vs good", "bad")


def targets(root: Path, rows: list[dict], bad_dice: float
            ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per target: (positives, rows taking part); also sets each row's ORACLE value (given
    Dice to truth).

    needs fixing (the target since issue #16): corrupted, or given Dice to truth < bad_dice,
      against all others: every mask a person would want to redraw, whatever made it wrong.

    corrupted: the manifest's corrupted masks against all others (the issue's goal).
    corrupted vs good: the same positives against the uncorrupted masks that are good (given
      Dice to truth ≥ bad_dice); uncorrupted masks that are wrong anyway (an Otsu mask that
      missed every faint object) take no part: putting them high is right, not a false alarm.
    bad: given Dice to truth < bad_dice, corrupted or not, against all others.
    """
    man = load_manifest(root)
    masks = [Path(r["mask_path"]).name for r in rows]
    for r, m in zip(rows, masks):
        r[ORACLE] = man["given_dice"][m]
    corrupted = np.array([m in man["corrupted"] for m in masks])
    bad = np.array([man["given_dice"][m] < bad_dice for m in masks])
    every = np.ones(len(rows), bool)
    return {"needs fixing": (corrupted | bad, every), "corrupted": (corrupted, every), "corrupted vs good": (corrupted, corrupted | ~bad),
            "bad": (bad, every)}


def kind_recall(root: Path, rows: list[dict], col: str, k: int,
                bad_dice: float) -> dict[str, str]:
    """For the corrupted masks: how many of each corruption kind land in the top k; and how
    many uncorrupted masks do, with how many of those are wrong anyway (given Dice to truth
    < bad_dice)."""
    man = load_manifest(root)
    s = oriented(rows, col)
    top = set(np.argsort(-s, kind="mergesort")[:k])
    out = {}
    for kind in sorted(set(man["corrupted"].values())):
        idx = [i for i, r in enumerate(rows)
               if man["corrupted"].get(Path(r["mask_path"]).name) == kind]
        out[kind] = f"{sum(i in top for i in idx)}/{len(idx)}"
    clean = [Path(rows[i]["mask_path"]).name for i in top]
    clean = [m for m in clean if m not in man["corrupted"]]
    wrong = sum(man["given_dice"][m] < bad_dice for m in clean)
    out["uncorrupted"] = f"{len(clean)} ({wrong} of them with given Dice to truth < {bad_dice})"
    return out


# ----------------------------------------------------------------------------------------
# the report
# ----------------------------------------------------------------------------------------
def f2(v) -> str:
    return "–" if v is None else f"{v:.2f}"


def config_table(res: dict) -> str:
    """One markdown table per configuration: every column × (target, model)."""
    kinds = [k for k in MODEL_KINDS if k in res["eval"]]
    heads, keys = [], []
    for tgt in TARGETS:
        for kind in kinds:
            short = "in-sample" if kind == "plain" else "out-of-fold"
            heads += [f"{tgt} {short} P@K", f"{tgt} {short} AP", f"{tgt} {short} AUC"]
            keys.append((kind, tgt))
    lines = ["| column | dir | " + " | ".join(heads) + " |",
             "|---|---|" + "---:|" * len(heads)]
    first = res["eval"][kinds[0]][TARGETS[0]]
    cols = [c for c in first if not c.startswith("_")]
    for c in ["_random", ORACLE] + cols:
        cells = []
        for kind, tgt in keys:
            e = res["eval"][kind][tgt].get(c) or {}
            cells += [f2(e.get("p_at_k")), f2(e.get("ap")), f2(e.get("auc"))]
        name = {"_random": "random order", ORACLE: "oracle: given Dice to truth",
                CLEANLAB: "**cleanlab** (package, softmin)"}.get(
                    c, f"**{c}**" if c in ("priority", "lq_softmin") else c)
        d = "" if c == "_random" else scoring.SORT_KEYS.get(c, "asc")
        lines.append(f"| {name} | {d} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def needs_fixing_table(results: list[dict]) -> str:
    """The target of issue #16, one row per configuration and model: P@K, AP and AUROC of the
    default order beside the real cleanlab package and the project's own soft-minimum, and
    whether the goals are met (P@K ≥ 0.9; AP above cleanlab's)."""
    tgt = "needs fixing"
    cols = ("priority", CLEANLAB, "lq_softmin")
    lines = ["| configuration | held out | model | K/N | "
             + " | ".join(f"{m}: {c}" for m in ("P@K", "AP", "AUROC")
                          for c in ("**priority**", "cleanlab", "lq_softmin"))
             + " | P@K ≥ 0.9 | AP > cleanlab |",
             "|---|---|---|---|" + "---:|" * 9 + "---|---|"]
    means: dict[tuple[str, str], list[float]] = {}
    for res in results:
        for kind in (k for k in MODEL_KINDS if k in res["eval"]):
            ev = res["eval"][kind][tgt]
            cells = []
            for m in ("p_at_k", "ap", "auc"):
                for c in cols:
                    v = (ev.get(c) or {}).get(m)
                    cells.append(f2(v))
                    if v is not None:
                        means.setdefault((m, c), []).append(v)
            pk = (ev.get("priority") or {}).get("p_at_k")
            ap, ap_cl = ((ev.get(c) or {}).get("ap") for c in ("priority", CLEANLAB))
            ok1 = "–" if pk is None else ("yes" if pk >= 0.9 else "no")
            ok2 = "–" if None in (ap, ap_cl) else ("yes" if ap > ap_cl else "no")
            lines.append(f"| {res['name']} | {'yes' if res.get('held_out') else 'no (tuned)'} "
                         f"| {'in-sample' if kind == 'plain' else 'out-of-fold'} | "
                         f"{ev['_k']}/{ev['_n']} | " + " | ".join(cells) + f" | {ok1} | {ok2} |")
    if results:
        lines.append("| **mean** | | | | " + " | ".join(
            f2(float(np.mean(means[(m, c)]))) if means.get((m, c)) else "–"
            for m in ("p_at_k", "ap", "auc") for c in cols) + " | | |")
    return "\n".join(lines)


def summary_table(results: list[dict]) -> str:
    lines = ["| configuration | model | target (K/N) | random P@K | oracle P@K | "
             "priority P@K / AP (AUC) | cleanlab P@K / AP (AUC) | "
             "lq_softmin P@K / AP (AUC) | label_quality P@K / AP (AUC) | dice P@K / AP (AUC) | "
             "confidence P@K / AP (AUC) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for res in results:
        for kind in (k for k in MODEL_KINDS if k in res["eval"]):
            for tgt in TARGETS:
                ev = res["eval"][kind][tgt]
                cell = lambda c: (  # noqa: E731
                    f"{f2(ev[c]['p_at_k'])} / {f2(ev[c]['ap'])} ({f2(ev[c]['auc'])})"
                    if c in ev else "–")
                lines.append(
                    f"| {res['name']} | {'in-sample' if kind == 'plain' else 'out-of-fold'} | "
                    f"{tgt} ({ev['_k']}/{ev['_n']}) | {f2(ev['_random']['p_at_k'])} | "
                    f"{f2(ev[ORACLE]['p_at_k'])} | "
                    f"{cell('priority')} | {cell(CLEANLAB)} | {cell('lq_softmin')} | "
                    f"{cell('label_quality')} | "
                    f"{cell('dice')} | {cell('confidence')} |")
    return "\n".join(lines)


def glance_table(results: list[dict]) -> str:
    """P@K only, a row per configuration and model: the default order beside the
    soft-minimum, hard Dice and the oracle, for each target."""
    cols = ("priority", CLEANLAB, "lq_softmin", "dice", ORACLE)
    names = {"priority": "**priority**", CLEANLAB: "cleanlab", "lq_softmin": "soft-min",
             "dice": "Dice", ORACLE: "oracle"}
    lines = ["| configuration | model | valid Dice | "
             + " | ".join(f"{t}: {names[c]}" for t in TARGETS for c in cols) + " |",
             "|---|---|---:|" + "---:|" * (len(TARGETS) * len(cols))]
    for res in results:
        for kind in (k for k in MODEL_KINDS if k in res["eval"]):
            inf = res["info"][kind]
            vd = f2(inf["valid_dice"])
            if inf.get("folds"):
                vd = " / ".join(f2(f["valid_dice"]) for f in inf["folds"])
            cells = []
            for tgt in TARGETS:
                ev = res["eval"][kind][tgt]
                for c in cols:
                    v = f2(ev[c]["p_at_k"]) if c in ev else "–"
                    cells.append(f"**{v}**" if c == "priority" else v)
            lines.append(f"| {res['name']} | {LABEL[kind]} | {vd} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def details(res: dict) -> str:
    out = []
    for kind in (k for k in MODEL_KINDS if k in res["info"]):
        inf = res["info"][kind]

        def real_of(side: str, c=inf["unmatched_objects"]) -> str:
            return f"{c[side]['real']}/{c[side]['real'] + c[side]['not']}"

        extra = ""
        if inf.get("folds"):
            extra = ", fold valid Dice " + " / ".join(f2(f["valid_dice"]) for f in inf["folds"])
        out.append(f"- {LABEL[kind]}: model {inf['model']} {inf['arch']}, {inf['epochs']} "
                   f"epochs, valid Dice {f2(inf['valid_dice'])}{extra}; prediction's mean "
                   f"Dice to the truth {f2(inf['pred_dice_truth'])}; "
                   + (f"{res['seconds'][kind]:.0f} s with predict; " if kind in res["seconds"]
                      else "") + "categories "
                   + ", ".join(f"{c} {n}" for c, n in inf["categories"].items() if n)
                   + "; in priority's top K (corrupted): corrupted by kind "
                   + ", ".join(f"{k} {v}" for k, v in res["kinds"][kind].items())
                   + "; unmatched objects that are real objects (truth): model sees, mask "
                   + f"lacks {real_of('extra')}, mask has, model does not see {real_of('missed')}"
                   + ("" if inf.get("cleanlab_vs_lq_softmin_max_abs_diff") is None else
                      "; cleanlab package vs lq_softmin max |Δ| "
                      f"{inf['cleanlab_vs_lq_softmin_max_abs_diff']:.4f}")
                   + ("" if inf["softmin_png_max_abs_diff"] is None else
                      f"; lq_softmin PNG recompute max |Δ| "
                      f"{inf['softmin_png_max_abs_diff']:.4f}"))
    return "\n".join(out)


# ----------------------------------------------------------------------------------------
def parse_configs(a) -> list[tuple[str, int, str]]:
    cfgs = [(f"seed {s}, all kinds", s, ALL_KINDS) for s in a.seeds]
    for spec in a.extra_mix:
        seed_s, _, mix = spec.partition(":") if ":" in spec else (str(a.seeds[0] if a.seeds else 0), "", spec)
        cfgs.append((f"seed {seed_s}, {mix.replace('+', ' + ')}", int(seed_s), mix))
    return cfgs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 1)[1])
    ap.add_argument("--seeds", type=int, nargs="*", default=DEFAULT_SEEDS,
                    help="demo seeds run with all corruption kinds (default "
                         + " ".join(map(str, DEFAULT_SEEDS)) + ")")
    ap.add_argument("--extra-mix", nargs="*", default=DEFAULT_EXTRA,
                    help="further configurations SEED:KIND+KIND (default "
                         + " ".join(DEFAULT_EXTRA) + "; without SEED: the first seed)")
    ap.add_argument("--count", type=int, default=96)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--corrupt-frac", type=float, default=0.25)
    ap.add_argument("--arch", default="resnet18",
                    help="U-Net encoder (default resnet18, as in every run in the docs; the "
                         "config's own default is resnet34)")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--min-steps", type=int, default=200)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--bad-dice", type=float, default=0.5,
                    help="'actually bad' = given mask's Dice to truth below this (0.5)")
    ap.add_argument("--no-crossval", action="store_true")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: first seed only, 48 images, resnet18, 3 epochs, 2 folds")
    ap.add_argument("--work", type=Path, help="work folder (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--rescore", action="store_true",
                    help="no training: re-score the stored probabilities in --work")
    ap.add_argument("--job-timeout", type=float, default=3600)
    ap.add_argument("--json", type=Path, help="also write all figures to this JSON file")
    a = ap.parse_args(argv)
    if a.quick:
        a.seeds, a.extra_mix = a.seeds[:1], []
        a.count, a.arch, a.epochs, a.min_steps, a.folds = 48, "resnet18", 3, 0, 2
    if a.rescore and not a.work:
        ap.error("--rescore needs --work (a folder kept from an earlier run)")

    work = a.work or Path(tempfile.mkdtemp(prefix="segtriage-tq-"))
    work.mkdir(parents=True, exist_ok=True)
    started = _dt.datetime.now().astimezone()
    t_all = time.monotonic()
    results = []
    plan = parse_configs(a)
    held = [name for name, seed, _ in plan if seed not in TUNED_SEEDS]
    print(f"plan: {len(plan)} configurations ({'; '.join(n for n, _, _ in plan)}); held out "
          f"(the scoring was tuned on seeds {sorted(TUNED_SEEDS)}): "
          f"{'; '.join(held) or 'none'}", file=sys.stderr, flush=True)
    if not a.rescore:
        per = MIN_PER_CONFIG.get(a.arch, 60.0) * (a.count / 96) * max(a.min_steps, 50) / 200 * (
            (a.size / 128) ** 2) * ((1 + a.folds) / 4 if not a.no_crossval else 0.25)
        if a.quick:
            per = 4.0
        print(f"expected run time on the 2-core CPU, one configuration at a time, nothing "
              f"else training: about {per:.0f} min a configuration, {len(plan) * per / 60:.1f} h "
              "in all (measured: resnet18, 96 images, 200 steps, train + 3-fold crossval: "
              "23.5-44 min; docs/benchmarks.md)", file=sys.stderr, flush=True)
    try:
        for name, seed, mix in plan:
            root = work / f"s{seed}-{mix.replace('+', '_')}"
            if seed not in TUNED_SEEDS:
                name += " (held out)"
            print(f"== {name}  ({root})", file=sys.stderr, flush=True)
            seconds: dict[str, float] = {}
            if a.rescore and not (root / ".segtriage").is_dir():
                print(f"   {root}: no kept run here (trained with --work {work} --keep?); "
                      "skipped", file=sys.stderr, flush=True)
                continue
            if not a.rescore:
                if root.exists():
                    shutil.rmtree(root)
                shutil.rmtree(str(root) + "-truth", ignore_errors=True)
                make_demo(root, count=a.count, size=a.size, seed=seed,
                          corrupt_frac=a.corrupt_frac, corruption_mix=mix.split("+"))
                write_config(root, a)
                seconds = train_and_score(root, a)
            res = {"name": name, "seed": seed, "mix": mix, "held_out": seed not in TUNED_SEEDS,
                   "eval": {}, "info": {},
                   "kinds": {}, "seconds": seconds}
            for kind in MODEL_KINDS:
                got = model_rows(root, kind, a.rescore)
                if got is None:
                    continue
                rows, info = got
                tg = targets(root, rows, a.bad_dice)
                cols = score_columns(rows)
                res["eval"][kind] = {t: evaluate(rows, pos, cols, keep)
                                     for t, (pos, keep) in tg.items()}
                res["info"][kind] = info
                res["kinds"][kind] = kind_recall(root, rows, "priority",
                                                 int(tg["corrupted"][0].sum()), a.bad_dice)
                cl_png = [abs(r[CLEANLAB] - r["lq_softmin"]) for r in rows
                          if r.get(CLEANLAB) is not None and r.get("lq_softmin") is not None]
                info["cleanlab_vs_lq_softmin_max_abs_diff"] = max(cl_png) if cl_png else None
            results.append(res)
            print(f"\n### {name}\n\n{details(res)}\n\n{config_table(res)}\n", flush=True)
    finally:
        if not a.keep and not a.work:
            shutil.rmtree(work, ignore_errors=True)
        elif a.keep or a.work:
            print(f"work folder kept: {work}", file=sys.stderr)

    total = time.monotonic() - t_all
    head = (f"Triage quality, {started:%Y-%m-%d %H:%M %Z}; machine: {machine()}\n"
            f"data: {a.count} demo images of {a.size}², {a.corrupt_frac:.0%} corrupted; "
            + (f"models: as stored in {work} (see each configuration); " if a.rescore else
               f"model: {a.arch}, {a.epochs} epochs (min_steps {a.min_steps}), lr {a.lr:g}, "
               f"{a.folds} folds; ")
            + f"bad = given Dice to truth < {a.bad_dice}; needs fixing = corrupted or bad; "
            f"held out = seeds other than {sorted(TUNED_SEEDS)} (the scoring was tuned on those); "
            f"{'re-scored from stored probabilities with the current scoring code; ' if a.rescore else ''}"
            f"total {f'{total / 60:.1f} min' if total >= 60 else f'{total:.0f} s'}. "
            "P@K = R@K (K = number of positives).")
    print(f"## Summary\n\n{head}\n\nNeeds fixing (the target; goals: priority P@K >= 0.9, AP "
          f"above cleanlab's):\n\n{needs_fixing_table(results)}\n\n{summary_table(results)}"
          f"\n\nP@K at a glance:\n\n{glance_table(results)}\n", flush=True)
    if a.json:
        a.json.write_text(json.dumps({"header": head, "results": results}, indent=1,
                                     default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
