"""Starting and watching torchrun: the command, each rank's environment, one ``Launch`` per run
folder, and ``supervise`` (heartbeat, cancel and engine stop relayed, grace periods, then
SIGTERM and SIGKILL), for the distributed jobs of dist.py.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ...ml.dist.runfolder import LAUNCH_LOG, RunFolder, set_parent_death_signal
from .context import JobCancelled, JobContext

log = logging.getLogger("segtriage.engine")

TICK_S = 0.2
BEAT_S = 1.0
CANCEL_GRACE_S = 60.0        # after the cancel file: then SIGTERM to torchrun
STOP_GRACE_S = 20.0          # the same when the engine stops (the daemon waits 120 s)
KILL_GRACE_S = 15.0          # after SIGTERM: then SIGKILL
FINAL_STATES = ("done", "cancelled", "failed")


def visible_gpus() -> list[str]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [x.strip() for x in env.split(",") if x.strip()]
    import torch
    return [str(i) for i in range(torch.cuda.device_count())]


def gpu_groups(slots: int, per_slot: int, visible: list[str]) -> list[str]:
    """CUDA_VISIBLE_DEVICES for each slot: disjoint groups of `per_slot` visible GPUs."""
    if slots * per_slot > len(visible):
        raise ValueError(f"{slots} x {per_slot} GPUs wanted, {len(visible)} visible")
    return [",".join(visible[i * per_slot:(i + 1) * per_slot]) for i in range(slots)]


def torchrun_cmd(kind: str, run_dir: Path, nproc: int) -> list[str]:
    """torchrun on one host; --standalone picks a free rendezvous port (jobs never collide)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc_per_node", str(int(nproc)), "-m", "segtriage.engine.ml.dist.ranks", kind,
            "--run-dir", str(run_dir)]


def rank_env(device: str, nproc: int, extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    if device == "cpu":  # N CPU ranks share the cores: one thread each on this 2-core box
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // int(nproc))))
    env.update(extra or {})
    return env


# -- launching and supervising ---------------------------------------------------------------------

@dataclass
class Launch:
    """One torchrun (or, with cmd None, ranks started elsewhere) working in one run folder."""
    run: RunFolder
    cmd: list[str] | None
    env_for_slot: Callable[[int], dict] | None = None
    proc: subprocess.Popen | None = None
    rc: int | None = None
    slot: int = 0
    stop_sent: float | None = None
    term_sent: float | None = None
    killed: bool = False
    extra: dict = field(default_factory=dict)

    def start(self, slot: int = 0) -> None:
        self.slot = slot
        if self.cmd is None:
            return
        engine_pid = os.getpid()
        env = self.env_for_slot(slot) if self.env_for_slot else None
        with open(self.run.file(LAUNCH_LOG), "ab") as logf:
            # same session as the engine, and a parent-death signal: a killed engine takes
            # torchrun (and through theirs, the ranks) along. The preexec function only makes
            # one prctl call through a function looked up before the fork.
            self.proc = subprocess.Popen(
                self.cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                env=env, cwd=self.run.path, start_new_session=False,
                preexec_fn=lambda: set_parent_death_signal(signal.SIGTERM,
                                                           expect_parent=engine_pid))

    def poll(self) -> int | None:
        if self.rc is None:
            self.rc = self.proc.poll() if self.proc is not None else _external_rc(self.run)
        return self.rc

    def request_stop(self, why: str) -> None:
        if self.stop_sent is None:
            self.stop_sent = time.monotonic()
            self.run.request_cancel(why)

    def escalate(self, grace: float) -> None:
        """Ranks that ignore the cancel file past `grace`: SIGTERM torchrun, then SIGKILL."""
        if self.stop_sent is None or self.rc is not None:
            return
        now = time.monotonic()
        if self.proc is None:  # external ranks: nothing to signal; stop waiting for them
            running = any(r.get("state") == "running" for r in self.run.ranks().values())
            if not running or now - self.stop_sent > grace:
                self.rc = -1
            return
        if self.term_sent is None and now - self.stop_sent > grace:
            self.term_sent = now
            log.warning("ranks in %s ignored the cancel for %.0f s: SIGTERM to torchrun",
                        self.run.path, grace)
            self.proc.terminate()
        elif self.term_sent is not None and not self.killed and now - self.term_sent > KILL_GRACE_S:
            self.killed = True
            self.proc.kill()  # the ranks get their parent-death signal

    def kill_now(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _external_rc(run: RunFolder) -> int | None:
    """Ranks started elsewhere: finished when every rank's marker says so."""
    ranks = run.ranks()
    if not ranks:
        return None
    world = max(int(r.get("world", 1)) for r in ranks.values())
    if len(ranks) < world or any(r.get("state") not in FINAL_STATES for r in ranks.values()):
        return None
    return 0 if all(r.get("state") != "failed" for r in ranks.values()) else 1


def failure_message(launch: Launch) -> str:
    """The first failing rank's own error, else the end of torchrun's output."""
    for r, m in sorted(launch.run.ranks().items()):
        if m.get("state") == "failed":
            return f"rank {r}: {m.get('error')}"
    tail = launch.run.log_tail(1500)
    return (f"torchrun exited with {launch.rc}; end of {launch.run.file(LAUNCH_LOG)}:\n{tail}"
            if tail else f"torchrun exited with {launch.rc}")


def supervise(ctx: JobContext, launches: list[Launch], *, on_tick: Callable[[], None],
              slots: int = 1) -> None:
    """Run `launches` (at most `slots` at a time), beat the heartbeat, relay cancel and engine
    stop, call `on_tick` a few times a second. Raises JobCancelled / JobInterrupted, or
    RuntimeError naming the failure."""
    pending, running, finished = list(launches), [], []
    free = list(range(slots))
    beat, last_beat = 0, 0.0
    stop_why: str | None = None
    failed: Launch | None = None
    try:
        while pending or running:
            while pending and free and stop_why is None:
                la = pending.pop(0)
                la.run.beat(beat)
                la.start(free.pop(0))
                running.append(la)
            on_tick()
            for la in list(running):
                if la.poll() is not None:
                    running.remove(la)
                    finished.append(la)
                    free.append(la.slot)
                    if la.rc != 0 and failed is None and la.stop_sent is None:
                        failed = la
            now = time.monotonic()
            if now - last_beat >= BEAT_S:
                beat, last_beat = beat + 1, now
                for la in running:
                    la.run.beat(beat)
            if stop_why is None and (failed is not None or ctx.should_cancel()):
                stop_why = ("engine stopping" if ctx.stopping.is_set() else
                            "another part of the job failed" if failed is not None else "cancel")
                pending.clear()
                for la in running:
                    la.request_stop(stop_why)
            for la in running:
                la.escalate(STOP_GRACE_S if ctx.stopping.is_set() else CANCEL_GRACE_S)
            if running or pending:
                time.sleep(TICK_S)
    finally:
        for la in running:  # only on an exception in here: never leave ranks behind
            la.request_stop("engine error")
            la.kill_now()
    on_tick()
    if failed is not None:
        raise RuntimeError(f"distributed job failed: {failure_message(failed)}")
    if stop_why is not None:
        ctx.check()  # JobInterrupted when the engine stops, JobCancelled on a cancel
        raise JobCancelled()
