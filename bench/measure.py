"""What the review loop buys for the measurement a person wants: number density and mean
object size, measured from the demo's truth masks, compared with the same measured from

- the given masks (the classical threshold, some deliberately corrupted),
- the current model's predictions (P(object) > 0.5),
- the masks after one round of fixing the top of the review order (the first 1/8 of the
  default order replaced by their truth through engine.project.history.write_mask, as a person
  fixing them would), and "best" after that round (fixed masks, predictions elsewhere),

each with objects as connected components and with the watershed split (engine/project/measure/),
as relative errors |x − truth| / truth per image (median, 90th percentile) and over the set.

    .venv/bin/python bench/measure.py --dir DEMO     # an existing trained demo (DEMO-truth/)
    .venv/bin/python bench/measure.py                # a fresh demo, trained by the engine

DEMO itself is never written: it is copied (without its backups) into a scratch folder
(--work, default a temporary one) and the round of fixes happens on the copy.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from segtriage.engine.project import history, measure
from segtriage.engine.project.config import load_config
from segtriage.engine.project.demo import make_demo, truth_dir
from segtriage.engine.store import Store
from segtriage.engine.project.project import Project



def _cli() -> list[str]:
    exe = Path(sys.executable).with_name("segtriage")
    return [str(exe)] if exe.exists() else [sys.executable, "-c",
                                            "from segtriage.tui.cli import main; "
                                            "raise SystemExit(main())"]


def _copy(src: Path, work: Path) -> Path:
    dst = work / "demo"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("backups", "*.lock", "engine.pid"))
    shutil.copytree(truth_dir(src), truth_dir(dst))
    return dst


def _fresh(work: Path, count: int, size: int, seed: int, timeout: float) -> Path:
    root = work / "demo"
    make_demo(root, count=count, size=size, seed=seed)
    cli = _cli()
    subprocess.run(cli + ["scan", str(root)], check=True, stdout=subprocess.DEVNULL)
    try:
        subprocess.run(cli + ["train", str(root)], check=True, timeout=timeout)
        cfg = load_config(root)
        store = Store(cfg.state_path(root) / "state.db")
        t0 = time.time()
        while time.time() - t0 < timeout:  # the engine re-predicts after the training
            mid = store.current_model_id()
            if mid is not None and len(store.scores_for_model(mid)) >= len(store.images()) \
                    and not store.active_jobs():
                break
            time.sleep(2)
        store.close()
    finally:
        subprocess.run(cli + ["engine", "stop", str(root)], stdout=subprocess.DEVNULL)
    return root


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L")) > 127


def _figures(masks: dict[str, np.ndarray], settings: measure.Settings) -> dict[str, dict]:
    """image → {"count", "density", "size" (mean area of sized objects or None), "px"}."""
    out = {}
    for name, m in masks.items():
        objs, st = measure.measure_mask(m, None, settings)
        sized = [o["area_px"] for o in objs
                 if not (settings.exclude_border_from_sizes and o["touches_border"])]
        out[name] = {"count": st["objects"], "density": st["density_px"],
                     "size": st["area_mean_px"], "sized": sized, "px": m.size}
    return out


def _set(fig: dict[str, dict]) -> tuple[float, float | None]:
    n = sum(f["count"] for f in fig.values())
    px = sum(f["px"] for f in fig.values())
    sized = [a for f in fig.values() for a in f["sized"]]
    return n / px, (float(np.mean(sized)) if sized else None)


def _errors(fig: dict, truth: dict, key: str) -> list[float]:
    errs = []
    for name, t in truth.items():
        tv, v = t[key], fig[name][key]
        if tv is None or tv == 0:
            continue  # relative error undefined (no object, or no sized object, in truth)
        errs.append(abs((v or 0.0) - tv) / tv)
    return errs


def _masks_from_targets(root, cfg, store, source) -> dict[str, np.ndarray]:
    out = {}
    project = Project(root, cfg, store)
    for t in measure.plan(project, source):
        if t.error:
            raise SystemExit(f"{t.image}: {t.error}")
        out[t.image] = measure.read_target(project, t)[0]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, help="an existing trained demo (its truth in DIR-truth)")
    ap.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    ap.add_argument("--count", type=int, default=96)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fix-share", type=float, default=1 / 8)
    ap.add_argument("--min-distance", type=int, default=measure.DEFAULT_MIN_DISTANCE)
    ap.add_argument("--train-timeout", type=float, default=3600)
    ap.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    a = ap.parse_args(argv)

    tmp = None
    if a.work is None:
        tmp = tempfile.TemporaryDirectory(prefix="segtriage-measure-")
        work = Path(tmp.name)
    else:
        work = a.work
        work.mkdir(parents=True, exist_ok=True)
        if (work / "demo").exists():
            raise SystemExit(f"{work / 'demo'} exists: give an empty --work folder")
    t0 = time.time()
    if a.dir is not None:
        root = _copy(a.dir.resolve(), work)
        origin = f"copy of {a.dir}"
    else:
        root = _fresh(work, a.count, a.size, a.seed, a.train_timeout)
        origin = f"fresh demo count={a.count} size={a.size} seed={a.seed}"
    cfg = load_config(root)
    store = Store(cfg.state_path(root) / "state.db")
    model = store.current_model()
    if model is None:
        raise SystemExit(f"{root}: no trained model")
    manifest = json.loads((truth_dir(root) / "manifest.json").read_text())
    names = sorted(r.path for r in store.images())
    truth = {n: _read(truth_dir(root) / "masks" / (Path(n).stem + "_mask.png")) for n in names}
    given = _masks_from_targets(root, cfg, store, "masks")
    preds = _masks_from_targets(root, cfg, store, "predictions")

    # one round of fixes: the top of the default review order gets its truth
    k = max(1, round(a.fix_share * len(names)))
    top = store.list_head(k).rows
    for r in top:
        row = store.image(r.id)
        history.write_mask(Project(root, cfg, store), row, truth[row.path].astype(np.uint8),
                           source="editor")
    fixed = _masks_from_targets(root, cfg, store, "masks")
    best = _masks_from_targets(root, cfg, store, "best")
    fixed_names = {r.path for r in top}
    corrupted_fixed = sum(1 for n in fixed_names
                          if Path(n).stem + "_mask.png" in manifest.get("corrupted", {}))

    sets = {"given masks": given, "predictions": preds, "after fixing 1/8": fixed,
            "best after fixing": best}
    results = {}
    for split in ("none", "watershed"):
        st = measure.Settings(split=split, min_distance=a.min_distance)
        tf = _figures(truth, st)
        t_density, t_size = _set(tf)
        results[split] = {"truth": {"density": t_density, "size": t_size,
                                    "objects": sum(f["count"] for f in tf.values())}}
        for label, masks in sets.items():
            f = _figures(masks, st)
            d, s = _set(f)
            de, se = _errors(f, tf, "density"), _errors(f, tf, "size")
            results[split][label] = {
                "objects": sum(x["count"] for x in f.values()),
                "density_median": float(np.median(de)), "density_p90": float(
                    np.percentile(de, 90)),
                "size_median": float(np.median(se)), "size_p90": float(np.percentile(se, 90)),
                "density_set": (d - t_density) / t_density,
                "size_set": (s - t_size) / t_size if (s is not None and t_size) else None,
                "n_density": len(de), "n_size": len(se)}
    true_objects = sum(manifest["objects"].get(n, 0) for n in names)

    print(f"# bench/measure.py · {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · "
          f"{platform.node()} {platform.machine()} · {origin}")
    print(f"# {len(names)} images, model v{model.id} ({model.arch}, valid Dice "
          f"{model.valid_dice or float('nan'):.3f}); fixed the top {k} of the review "
          f"order ({corrupted_fixed} of them deliberately corrupted); watershed min_distance "
          f"{a.min_distance}; border objects out of sizes, in density")
    print(f"# objects drawn by the generator: {true_objects}; found in the truth masks: "
          f"{results['none']['truth']['objects']} as connected components, "
          f"{results['watershed']['truth']['objects']} with the watershed split")
    print()
    print("| split | masks | objects (truth) | density: median / p90 per image | set | "
          "mean size: median / p90 per image | set |")
    print("|---|---|---|---|---|---|---|")
    for split, rows in results.items():
        tobj = rows["truth"]["objects"]
        for label, r in rows.items():
            if label == "truth":
                continue
            size_set = "–" if r["size_set"] is None else f"{r['size_set']:+.1%}"
            print(f"| {split} | {label} | {r['objects']} ({tobj}) | "
                  f"{r['density_median']:.1%} / {r['density_p90']:.1%} | "
                  f"{r['density_set']:+.1%} | {r['size_median']:.1%} / {r['size_p90']:.1%} | "
                  f"{size_set} |")
    print()
    print(f"# per-image errors over the {results['none']['given masks']['n_density']} images "
          "with an object in the truth (density) and those with a sized object (size); 'set': "
          "signed error of all objects over all pixels / of the mean over all sized objects")
    print(f"# {time.time() - t0:.0f} s")
    if a.json:
        print(json.dumps(results, indent=1))
    store.close()
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
