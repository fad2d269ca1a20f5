#!/usr/bin/env python
"""Scaling table: training and inference throughput for 1 process vs N ranks, same code path.

Every configuration runs the real rank entry point (``python -m segtriage.engine.ml.dist.ranks``)
under ``torchrun --nproc_per_node N`` through the engine's own launcher
(``engine.daemon.jobs.launch.supervise``), on a generated demo set, with no engine and no database:

  training img/s    training images of the last epoch / that epoch's seconds (from rank 0's
                    epoch events; the first epoch pays for warm-up), validation included
  inference img/s   images / seconds between the first and the last prediction written by any
                    rank (steady state: imports and model loading excluded)
  wall s            the whole torchrun, imports and start-up included (what a small job costs)

CPU ranks share the machine's cores (--configs RANKSxTHREADS, e.g. 1x2, 1x1, 2x1). On this
2-core box 2 ranks give each rank one core, so the table measures the cost of data parallelism (gradient
all-reduce over gloo, duplicated start-up), not a speed-up. GPUs add a device per rank.

  .venv/bin/python bench/scaling.py                          # 64 images 128², resnet34
  .venv/bin/python bench/scaling.py --configs 1x1 2x1 --count 24 --size 64 --arch resnet18
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from segtriage.engine.daemon.jobs import dist, launch
from segtriage.engine.project.demo import make_demo
from segtriage.engine.ml.dist.runfolder import RunFolder
from segtriage.engine.project.config import ModelConfig
from segtriage.engine.project.project import Project

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model  # noqa: E402

CODES = ["naw", "aye"]
LAST_PREDICT: RunFolder | None = None


class BenchCtx:
    """What supervise() needs from a job: never cancelled, progress ignored."""
    stopping = threading.Event()

    def should_cancel(self) -> bool:
        return False

    def check(self) -> None:
        pass

    def progress(self, *a, **k) -> None:
        pass

    def event(self, *a, **k) -> None:
        pass


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def run(kind: str, folder: RunFolder, nproc: int, threads: int) -> float:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": str(threads)}
    la = launch.Launch(folder, launch.torchrun_cmd(kind, folder.path, nproc),
                       env_for_slot=lambda slot: env)
    t0 = time.perf_counter()
    launch.supervise(BenchCtx(), [la], on_tick=lambda: None)
    return time.perf_counter() - t0


def bench_train(root: Path, state: Path, pairs, mcfg, nproc: int, threads: int, device: str,
                tag: str):
    folder = RunFolder.create(state, 1, f"train-{tag}")
    folder.write_spec(dist.train_spec(job_id=1, root=root, pairs=pairs, codes=CODES,
                                      mcfg=mcfg, out_name=f"bench-{tag}.pt", device=device,
                                      valid_idx=None))
    wall = run("train", folder, nproc, threads)
    res = folder.result()
    epochs = [e for e in folder.events().read() if e["kind"] == "epoch"]
    if len(epochs) >= 2:
        secs = epochs[-1]["t"] - epochs[-2]["t"]
    else:  # one epoch: from the first progress line (first batch done) to the epoch event
        first = next(e for e in folder.events().read() if e["kind"] == "progress")
        secs = epochs[-1]["t"] - first["t"]
    return {"img_s": res["n_train"] / secs, "epoch_s": secs, "wall_s": wall,
            "valid_dice": res["valid_dice"], "n_train": res["n_train"]}, f"bench-{tag}.pt"


def bench_predict(root: Path, state: Path, names, mcfg, weights: str, nproc: int,
                  threads: int, device: str, tag: str):
    folder = RunFolder.create(state, 2, f"predict-{tag}")
    items = [{"id": i, "path": n, "sha": f"bench{tag}{i:06d}", "fold": None}
             for i, n in enumerate(names)]
    folder.write_spec(dist.predict_spec(
        job_id=2, root=root, items=items, codes=CODES, mcfg=mcfg, device=device,
        model={"weights": [weights], "arch": mcfg.arch, "id": f"bench{tag}"}))
    wall = run("predict", folder, nproc, threads)
    global LAST_PREDICT
    LAST_PREDICT = folder
    total, rate = 0, 0.0
    for p in folder.pred_files():
        ts = sorted(rec["t"] for rec in map(json.loads, p.read_text().splitlines()))
        total += len(ts)
        # a chunk's images all get their time after its forward pass: the rate counts the
        # images after this rank's first chunk, over the time after it; ranks add up
        after = [t for t in ts if t > ts[0] + 0.05]
        if after:
            rate += len(after) / (after[-1] - ts[0])
    assert total == len(names), f"{total} of {len(names)} predicted"
    return {"img_s": rate, "wall_s": wall}


def bench_merge(root: Path, predict_folder: RunFolder, arch: str, weights: str) -> float:
    """The engine's serial part of a sharded prediction: per reported image, the PNG read,
    the scoring against the mask and the score row (``dist.store_prediction``), img/s."""
    from segtriage.engine.project import index
    from segtriage.engine.project.config import load_config

    cfg = load_config(root)
    store = Project.open(root).store
    index.scan(Project(root, cfg, store))
    mid = store.add_model(kind="plain", arch=arch, weights=[weights], config={}, epochs=0,
                          train_loss=None, valid_loss=None, valid_dice=None, n_train=0,
                          n_valid=0, manifest=[])
    recs = [rec for p in predict_folder.pred_files()
            for rec in map(json.loads, p.read_text().splitlines())]
    rows = {r.path: r for r in store.images()}
    t0 = time.perf_counter()
    for rec in recs:
        assert dist.store_prediction(Project(root, cfg, store), mid, rows[rec["path"]],
                                     rec) is None
    return len(recs) / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", nargs="+", default=["1x2", "1x1", "2x1"],
                    help="RANKSxTHREADS per rank (1x2: one process using both cores)")
    ap.add_argument("--count", type=int, default=64)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--arch", default="resnet34")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--device", default="cpu", help="cpu (gloo ranks) or cuda (one per GPU)")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    a = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="segtriage-scaling-"))
    root = tmp / "data"
    make_demo(root, count=a.count, size=a.size, seed=3)
    state = root / ".segtriage"
    (state / "models").mkdir(parents=True)
    names = sorted(p.name for p in root.glob("img_*.png") if "_mask" not in p.name)
    pairs = [(n, n.replace(".png", "_mask.png")) for n in names]
    mcfg = ModelConfig(arch=a.arch, pretrained=False, size_policy="resize", image_size=a.size,
                       batch_size=a.batch_size, epochs=a.epochs, min_steps=0, lr=1e-3,
                       valid_pct=0.2, seed=42, device=a.device, precision="auto", folds=3,
                       gpus=1)
    load0 = _loadavg()
    print(f"# segtriage scaling bench — {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"# {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"device {a.device}")
    print(f"# {a.count} demo images {a.size}², {a.arch}, batch {a.batch_size} per rank, "
          f"{a.epochs} epochs; inference precision auto")
    print()
    print("| ranks | threads/rank | train img/s | epoch s | train wall s | "
          "infer img/s | infer wall s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    base = None
    try:
        for conf in a.configs:
            n, threads = (int(x) for x in conf.lower().split("x"))
            tag = f"r{n}t{threads}"
            tr, weights = bench_train(root, state, pairs, mcfg, n, threads, a.device, tag)
            pr = bench_predict(root, state, names, mcfg, weights, n, threads, a.device, tag)
            base = base or (tr["img_s"], pr["img_s"])
            print(f"| {n} | {threads} | {tr['img_s']:.2f} ({tr['img_s'] / base[0]:.2f}×) | "
                  f"{tr['epoch_s']:.1f} | {tr['wall_s']:.1f} | "
                  f"{pr['img_s']:.1f} ({pr['img_s'] / base[1]:.2f}×) | {pr['wall_s']:.1f} |",
                  flush=True)
        merge = bench_merge(root, LAST_PREDICT, a.arch, weights)
        print(f"\nengine merge (PNG read + scoring + score row, one process, serial): "
              f"{merge:.0f} img/s — the ceiling of a sharded prediction however many ranks")
        print(f"\n# load average before/after: {load0} / {_loadavg()} (other work on the "
              "machine slows multi-threaded runs most)")
    finally:
        if a.keep:
            print(f"\n(kept {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
