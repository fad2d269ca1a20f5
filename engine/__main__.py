"""`python -m segtriage.engine run DIR`: the engine process (what clients start, detached)."""

from __future__ import annotations

import argparse
import os
import sys

# OpenMP threads that spin while waiting steal the cores from everything else on a shared box
# (measured: tiny trainings 4x slower under load). Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m segtriage.engine")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the engine for DIR in the foreground")
    r.add_argument("dir")
    r.add_argument("--idle-exit", type=float, default=None,
                   help="seconds idle with no client before exiting (0: never)")
    a = p.parse_args(argv)
    if a.cmd == "run":
        from .daemon.main import run

        return run(a.dir, idle_exit_s=a.idle_exit)
    return 2


if __name__ == "__main__":
    sys.exit(main())
