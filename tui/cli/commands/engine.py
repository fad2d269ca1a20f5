"""`segtriage engine run|start|stop|status DIR`: the folder's background engine."""

from __future__ import annotations

import argparse
import os
import sys

from ..common import config, engine_log, folder, open_store
from ..output import err
from . import Command, dir_arg


def seconds(text: str) -> float:
    """A number of seconds >= 0 (argparse type): nan and inf would mean 'never' silently."""
    import math

    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not math.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return v


def engine_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["run", "start", "stop", "status"])
    dir_arg(p)
    p.add_argument("--idle-exit", type=seconds, default=None,
                   help="seconds idle with no client before exiting (0: never)")


def run_engine(a) -> int:
    from ....engine.daemon import control

    root = folder(a.dir)
    if a.action == "run":
        config(root)  # an engine starts only on a valid config
        # the engine process proper (torch and fastai are its own): this one becomes it
        argv = [sys.executable, "-m", "segtriage.engine", "run", str(root)]
        if a.idle_exit is not None:
            argv += ["--idle-exit", repr(a.idle_exit)]
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, argv)
    # stop and status need the state folder only: they work while [model] (say) is broken
    log = engine_log(root)
    if a.action == "start":
        pid = control.engine_pid(root)
        if pid:
            print(f"engine already running (pid {pid})")
            return 0
        config(root)  # an engine starts only on a valid config
        pid = control.start_detached(root, idle_exit_s=a.idle_exit)
        if pid is None:
            return err(f"the engine did not start; see {log}")
        print(f"engine started (pid {pid}); log: {log}")
        return 0
    if a.action == "stop":
        if control.engine_pid(root) is None:
            print("no engine running")
            return 0
        ok = control.stop_engine(root)
        print("engine stopped" if ok else "engine did not stop in time")
        return 0 if ok else 1
    pid = control.engine_pid(root)
    if not pid:
        print("engine not running")
        return 3
    st = open_store(root).engine_state()
    # the device is known once the engine has probed it (torch loads in the background)
    print(f"engine running (pid {pid}), {st.state or '?'}"
          + (f", device {st.device}" if st.device else ""))
    return 0


COMMANDS = [
    Command("engine", "run or manage the background engine of DIR", engine_arguments,
            run_engine),
]
