#!/usr/bin/env python
"""First ranking: how long after the engine starts does a person have a full ranking to work
on, and how long until the final model's? (issue #16, "A ranking to work on while the model
trains"; docs/scoring.md, "Early ranking".)

It makes the demo as `segtriage demo DIR --no-tui` does (96 images of 128², the default
config: resnet34, 200 steps), queues its first training, starts a real engine process and
reads the store every half second, as the app does. Each time every image shows a score from
one source (an early ranking's checkpoint, then the final model) it notes the time since the
engine started, where the ranking comes from, and how well it finds the masks that need
fixing (corrupted, or given Dice to truth < 0.5: P@K with K the number of them, AP; see
bench/ranking.py). The load average is printed beside the figures: other work on the machine
slows the engine down.

  .venv/bin/python bench/first_ranking.py                    # the demo as a new user gets it
  .venv/bin/python bench/first_ranking.py --early-ranking-s 0   # without the early ranking
  .venv/bin/python bench/first_ranking.py --work W --keep    # keep the demo folder in W
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from segtriage.engine.project.demo import load_manifest
from segtriage.engine.project.project import Project

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402
from ranking import average_precision, precision_at_k  # noqa: E402
from triage_quality import stop_engine  # noqa: E402

BAD_DICE = 0.5


def quality(root: Path, rows) -> tuple[float | None, float | None, int]:
    """P@K and AP of the shown priority for "needs fixing" (rows with a mask)."""
    man = load_manifest(root)
    keep = [r for r in rows if r.mask_path and r.priority is not None]
    names = [Path(r.mask_path).name for r in keep]
    pos = np.array([m in man["corrupted"] or man["given_dice"][m] < BAD_DICE for m in names])
    s = np.array([r.priority for r in keep], float)
    k = int(pos.sum())
    return precision_at_k(s, pos, k), average_precision(s, pos), k


def source_of(store, ids: set[int]) -> str:
    if len(ids) != 1:
        return "mixed"
    (mid,) = ids
    m = store.model(mid)
    if m is None:
        return f"model {mid} (gone)"
    if m.kind == "checkpoint":
        return f"checkpoint, step {m.info.get('step')} of {m.info.get('steps')}"
    return f"model v{mid}"


def run(a, work: Path) -> dict:
    root = work / "demo"
    cli = [sys.executable, "-m", "segtriage.tui.cli"]
    subprocess.run([*cli, "demo", str(root), "--no-tui", "--no-train"], check=True,
                   stdout=subprocess.DEVNULL)
    if a.early_ranking_s is not None:
        (root / "segtriage.toml").write_text(f"[model]\nearly_ranking_s = {a.early_ranking_s}\n")
    project = Project.open(root)
    store = project.store
    jid = store.submit_job("train", {}, requested_by="bench")
    log = work / "engine.log"
    loads = [os.getloadavg()[0]]
    seen: list[dict] = []
    last_key = None
    with open(log, "ab") as lf:
        wall0, t0 = time.time(), time.monotonic()
        eng = subprocess.Popen([sys.executable, "-m", "segtriage.engine", "run", str(root)],
                               stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                               start_new_session=True)
        try:
            last_load = t0
            while True:
                now = time.monotonic()
                if eng.poll() is not None:
                    raise RuntimeError(f"engine exited ({eng.returncode}): "
                                       + log.read_text()[-2000:])
                if now - t0 > a.timeout:
                    raise TimeoutError(f"no final ranking after {a.timeout:.0f} s")
                if now - last_load >= 10:
                    loads.append(os.getloadavg()[0])
                    last_load = now
                rows = list(store.list_rows())
                ids = {r.model_id for r in rows}
                if rows and None not in ids and len(ids) == 1:
                    if ids != last_key:
                        last_key = ids
                        p, ap, k = quality(root, rows)
                        rec = {"seconds": round(now - t0, 1), "source": source_of(store, ids),
                               "p_at_k": p, "ap": ap, "k": k, "n": len(rows),
                               "valid_dice": store.model(next(iter(ids))).valid_dice}
                        seen.append(rec)
                        print(f"  [{rec['seconds']:6.1f} s] full ranking from "
                              f"{rec['source']}: P@{k} {p:.2f}, AP {ap:.2f}", file=sys.stderr,
                              flush=True)
                    if next(iter(ids)) > 0 and not store.active_jobs():
                        break  # the final model's ranking, and nothing left to do
                time.sleep(0.5)
        finally:
            stop_engine(eng)
    job = store.job(jid)
    trained = job.finished_at - wall0 if job and job.finished_at else None
    started = job.started_at - wall0 if job and job.started_at else None
    msgs = [e.data.get("message", "") for e in store.events(job_id=jid, kind="log")]
    final = store.current_model()
    sidecar = project.state / "models" / f"{final.weights[0]}.json" if final else None
    out = {"seen": seen, "train_started": started, "train_done": trained, "loads": loads,
           "early": [m for m in msgs if m.startswith("early ranking")],
           "weights_sha256": json.loads(sidecar.read_text()).get("weights_sha256")
           if sidecar and sidecar.exists() else None}
    store.close()
    return out


def table(res: dict) -> str:
    lines = ["| ranking | from | s after engine start | valid Dice | P@K needs fixing | AP |",
             "|---|---|---:|---:|---:|---:|"]
    for i, r in enumerate(res["seen"]):
        what = "first full" if i == 0 else ("final" if r["source"].startswith("model")
                                            else "refined")
        vd = "–" if r["valid_dice"] is None else f"{r['valid_dice']:.3f}"
        lines.append(f"| {what} | {r['source']} | {r['seconds']:.0f} | {vd} | "
                     f"{r['p_at_k']:.2f} (K = {r['k']}) | {r['ap']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, help="folder for the demo (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--early-ranking-s", type=float, default=None,
                    help="[model] early_ranking_s for the run (default: the config default)")
    ap.add_argument("--timeout", type=float, default=3600.0)
    a = ap.parse_args(argv)
    work = a.work or Path(tempfile.mkdtemp(prefix="segtriage-first-ranking-"))
    work.mkdir(parents=True, exist_ok=True)
    started = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    try:
        res = run(a, work)
    finally:
        if not a.keep and a.work is None:
            shutil.rmtree(work, ignore_errors=True)
    loads = res["loads"]
    print(f"# first ranking, {started}; {machine()}")
    print(f"# load average (1 min) while it ran: {min(loads):.2f}–{max(loads):.2f}, mean "
          f"{sum(loads) / len(loads):.2f} (2 cores)")
    print(f"# training job started {res['train_started']:.0f} s and ended "
          f"{res['train_done']:.0f} s after the engine started")
    print(f"# final model's weights: sha256 {res['weights_sha256']}")
    for line in res["early"]:
        print(f"# {line}")
    print()
    print(table(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
