#!/usr/bin/env python
"""Inference speed on one model and one image set, in one run (ratios are what to compare).

Rows, in images per second:
  learn.predict loop       fastai's one-image API, called per file
  learn.get_preds          fastai's batched API over dls.test_dl(files)
  bare forward fp32        model(x) on pre-decoded, pre-normalised batches, inference_mode
  bare forward bf16+CL     the same with autocast(bf16) and channels_last (CPU with bf16)
  Predictor.predict        segtriage: decode + prepare + forward + map back to native size
  predict path             the above + read mask + scoring.score_image + probability PNG
                           (atomic, fsynced) + score row in a real SQLite store
  ... via ProbWriter       the same, the PNG writes (and their fsyncs) on a background thread

Goal (issue 3): predict path ≥ 2.5× the learn.predict loop, ≤ 10 % slower than the bare
forward of the same precision.

  .venv/bin/python bench/inference.py                   # demo set, trains resnet34 1 epoch
  .venv/bin/python bench/inference.py --weights W.pt    # an existing model (sidecar beside it)
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from segtriage.engine.project import imageio
from segtriage.engine.ml.device import autocast_dtype, pick_device, pick_precision
from segtriage.engine.ml.infer import Predictor
from segtriage.engine.project.scoring.probs import ProbWriter, prob_relpath, save_prob_png
from segtriage.engine.ml.learner import build_learner
from segtriage.engine.ml.train import train
from segtriage.engine.ml.weights import load_model, read_sidecar, spec_from
from segtriage.engine.project.config import ModelConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model  # noqa: E402

CODES = ["naw", "aye"]


def chunks(seq, n):
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=64, help="images to predict (default 64)")
    ap.add_argument("--size", type=int, default=128, help="demo image side (default 128)")
    ap.add_argument("--arch", default="resnet34")
    ap.add_argument("--epochs", type=int, default=1, help="training epochs without --weights")
    ap.add_argument("--weights", type=Path, help="use this model instead of training one")
    ap.add_argument("--bs", type=int, default=8, help="batch size for every batched row")
    ap.add_argument("--repeat", type=int, default=2,
                    help="rounds; each row reports its best round (default 2)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="segtriage-bench-"))
    try:
        return run(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


def run(args, work: Path) -> int:
    from segtriage.engine.project.demo import make_demo

    data = work / "data"
    make_demo(data, count=args.count, size=args.size, seed=0)
    items = [(p, p.with_name(p.stem + "_mask.png")) for p in sorted(data.glob("img_*.png"))
             if not p.stem.endswith("_mask")]
    paths = [p for p, _ in items]
    dev = pick_device(args.device)
    mcfg = ModelConfig(arch=args.arch, pretrained=False, size_policy="resize",
                       image_size=args.size, batch_size=8, epochs=args.epochs, min_steps=0,
                       lr=1e-3, valid_pct=0.2, seed=42, device=dev.type, precision="auto")
    if args.weights:
        weights = args.weights
        meta = read_sidecar(weights) or {}
        mcfg.arch = meta.get("arch", args.arch)
        mcfg.image_size = spec_from(meta, mcfg).image_size
        print(f"model: {weights}", file=sys.stderr)
    else:
        weights = work / "models" / "m1.pt"
        t0 = time.perf_counter()
        res = train(items, CODES, mcfg, weights, epochs=args.epochs)
        print(f"trained {args.arch} {args.epochs} epoch(s) on {res.n_train} images in "
              f"{time.perf_counter() - t0:.0f} s (valid Dice {res.valid_dice:.3f})",
              file=sys.stderr)

    # fastai's learner with the same weights, for its own predict / get_preds
    learn = build_learner(items, CODES, mcfg)
    learn.model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    learn.model.eval()
    spec = spec_from(read_sidecar(weights), mcfg)
    precision = pick_precision("auto", dev)
    dtype = autocast_dtype(precision)

    # pre-decoded, pre-normalised input for the bare forward rows (decode not timed there)
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    pred0 = Predictor.from_models([load_model(weights, mcfg.arch, 2)], CODES, spec,
                                  device=dev, precision="fp32")
    arrays = [pred0._prepare(imageio.read_image(p))[0] for p in paths]
    xs = [((torch.from_numpy(np.stack(b)).permute(0, 3, 1, 2).float() / 255 - mean) / std)
          .contiguous() for b in chunks(arrays, args.bs)]
    m_fp32 = load_model(weights, mcfg.arch, 2, dev)
    m_cl = load_model(weights, mcfg.arch, 2, dev).to(memory_format=torch.channels_last)
    xs_cl = [x.to(dev).contiguous(memory_format=torch.channels_last) for x in xs]
    xs = [x.to(dev) for x in xs]

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def bare(model, batches, dt):
        with torch.inference_mode(), torch.autocast(dev.type, dtype=dt or torch.bfloat16,
                                                    enabled=dt is not None):
            for x in batches:
                model(x)
        sync()

    predictor = Predictor(weights, mcfg.arch, CODES, mcfg, device=dev)
    state = work / "state"
    store, model_id, ids = open_store(state, paths, mcfg.arch)

    def predictor_only():
        for _path, prob in predictor.predict(paths, batch_size=args.bs):
            assert not isinstance(prob, Exception), prob

    scoring = None
    try:
        from segtriage.engine.project import scoring
    except ImportError:
        pass

    def predict_path(writer: ProbWriter | None = None):
        masks = dict(items)
        for path, prob in predictor.predict(paths, batch_size=args.bs):
            mask = imageio.read_mask(masks[path], CODES, expect_shape=prob.shape)
            metrics = scoring.score_image(prob, mask) if scoring else {}
            rel = prob_relpath(f"{ids[path]:064d}", model_id)
            if writer is None:
                save_prob_png(prob, state / rel)
            else:
                writer.save(prob, state / rel)
            if store is not None:
                store.put_score(ids[path], model_id, fold=None, image_sha256=None,
                                mask_sha256=None, precision=predictor.precision_tag,
                                prob_path=rel, category=metrics.get("category"),
                                metrics=metrics)

    def predict_path_writer():
        with ProbWriter() as writer:
            predict_path(writer)

    rows = [
        ("learn.predict loop", lambda: [learn.predict(p) for p in paths]),
        (f"learn.get_preds (bs {args.bs})",
         lambda: learn.get_preds(dl=learn.dls.test_dl(paths, bs=args.bs))),
        ("bare forward fp32", lambda: bare(m_fp32, xs, None)),
        (f"bare forward {precision}+channels_last", lambda: bare(m_cl, xs_cl, dtype)),
        (f"Predictor.predict ({predictor.precision_tag})", predictor_only),
        ("predict path: + mask, scores, PNG, SQLite" if store is not None and scoring else
         "predict path: + mask, PNG (no scoring/store module)", predict_path),
        ("predict path, PNGs via ProbWriter thread", predict_path_writer),
    ]
    with learn.no_bar(), learn.no_logging():
        for _, fn in rows:  # warm-up: first calls pick kernels and fill caches
            fn()
        times: dict[str, list[float]] = {name: [] for name, _ in rows}
        for _ in range(args.repeat):  # interleaved rounds: load changes hit every row alike
            for name, fn in rows:
                t0 = time.perf_counter()
                fn()
                sync()
                times[name].append(time.perf_counter() - t0)

    n = len(paths)
    rate = {name: n / min(ts) for name, ts in times.items()}
    loop = rate[rows[0][0]]
    bare_same = rate[rows[3][0]] if precision != "fp32" else rate[rows[2][0]]
    path_rate = max(rate[rows[5][0]], rate[rows[6][0]])

    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    print(f"### Inference speed ({now})\n")
    print(f"- machine: {platform.platform()}, {cpu_model()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"fastai {_fastai_version()}, Python {platform.python_version()}")
    print(f"- model: {mcfg.arch} U-Net, {spec.image_size}² input ({spec.size_policy}), "
          f"{n} images of {args.size}², batch {args.bs}, device {dev}, "
          f"best of {args.repeat} interleaved rounds; load average "
          f"{os.getloadavg()[0]:.1f} at the end\n")
    print("| path | img/s | × predict loop | median img/s |")
    print("|---|---:|---:|---:|")
    for name, _ in rows:
        print(f"| {name} | {rate[name]:.1f} | {rate[name] / loop:.2f}× | "
              f"{n / statistics.median(times[name]):.1f} |")
    overhead = bare_same / path_rate - 1
    print(f"\nGoal ≥ 2.5× the predict loop: {path_rate / loop:.2f}× "
          f"({'met' if path_rate / loop >= 2.5 else 'missed'}). "
          f"Goal ≤ 10 % over the bare {precision} forward: {overhead * 100:+.1f} % "
          f"({'met' if overhead <= 0.10 else 'missed'}).")
    return 0


def open_store(state: Path, paths, arch):
    """A real SQLite store with one image row per file, or (None, 0, ids) when unavailable."""
    ids = {p: i + 1 for i, p in enumerate(paths)}
    try:
        from segtriage.engine.store import Store
        store = Store(state / "state.db")
        mid = store.add_model(kind="plain", arch=arch, weights=["m1.pt"], config={}, epochs=1,
                              train_loss=None, valid_loss=None, valid_dice=None, n_train=0,
                              n_valid=0, manifest=[])
        ids = {p: store.upsert_image(p.name, mask_path=p.stem + "_mask.png") for p in paths}
        return store, mid, ids
    except Exception as e:  # noqa: BLE001 - the bench still measures the rest
        print(f"store unavailable ({type(e).__name__}: {e}); PNG writes only", file=sys.stderr)
        return None, 1, ids


def _fastai_version() -> str:
    import fastai
    return fastai.__version__


if __name__ == "__main__":
    sys.exit(main())
