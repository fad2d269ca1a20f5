#!/usr/bin/env python
"""A detached engine's idle exit: how long after `segtriage engine start DIR --idle-exit S`
the engine is gone, on a tiny demo folder, for a few values of S (median of --rounds).

  start → pid      the CLI call until the engine holds the folder's lock
  start → exit     the CLI call until the engine process has exited
  overshoot        start → exit minus S (scan, start-up and the loop's check interval)

  .venv/bin/python bench/idle_exit.py [--rounds 3] [--idle 1 3]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def one(root: Path, idle: float) -> tuple[float, float]:
    from segtriage.engine.daemon.control import engine_pid

    exe = Path(sys.executable).with_name("segtriage")
    t0 = time.monotonic()
    subprocess.run([str(exe), "engine", "start", str(root), "--idle-exit", str(idle)],
                   check=True, capture_output=True)
    pid = engine_pid(root)
    t_pid = time.monotonic() - t0
    deadline = time.monotonic() + 120
    while pid is not None and _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid is not None and _alive(pid):
        raise SystemExit(f"engine {pid} did not exit within 120 s of --idle-exit {idle}")
    return t_pid, time.monotonic() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--idle", type=float, nargs="+", default=[1.0, 3.0])
    a = ap.parse_args(argv)
    from segtriage.engine.project.demo import make_demo

    print(f"Idle exit, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; "
          f"median of {a.rounds}, 4 images of 32²")
    print("| --idle-exit | start → pid | start → exit | overshoot |")
    print("|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        make_demo(root, count=4, size=32, seed=0)
        (root / "segtriage.toml").write_text("[engine]\nidle_exit_s = 0\n")
        for idle in a.idle:
            runs = [one(root, idle) for _ in range(a.rounds)]
            p = statistics.median(r[0] for r in runs)
            e = statistics.median(r[1] for r in runs)
            print(f"| {idle:g} s | {p:.2f} s | {e:.2f} s | {e - idle:.2f} s |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
