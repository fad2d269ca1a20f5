"""Engine lifecycle: the per-folder lock, the pid file, detached start and stop.

One engine per data folder, enforced with an exclusive ``flock`` on ``.segtriage/engine.lock``.
The kernel drops the lock when the holder dies (even on kill -9), so a lock "left" by a killed
engine is simply free again: the pid file is only a hint for people and for ``stop``; the lock
is the truth. Nothing here imports torch: clients use it to find or start the engine.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..project.config import load_config, state_path  # state_path: reads [project] state_dir only

LOCK_NAME = "engine.lock"
PID_NAME = "engine.pid"
LOG_NAME = "engine.log"


class EngineLock:
    """Holds the folder's engine lock for the life of the process."""

    def __init__(self, state: Path):
        self.path = state / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = None


def _lock_is_held(state: Path) -> bool:
    path = state / LOCK_NAME
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _read_pid(state: Path) -> int | None:
    try:
        return int((state / PID_NAME).read_text().strip())
    except (OSError, ValueError):
        return None


def engine_pid(root: Path | str) -> int | None:
    """The pid of the engine running for this folder, or None."""
    state = state_path(Path(root))
    if not _lock_is_held(state):
        return None
    return _read_pid(state)


def write_pid(state: Path) -> None:
    tmp = state / (PID_NAME + ".tmp")
    tmp.write_text(f"{os.getpid()}\n")
    os.replace(tmp, state / PID_NAME)


def clear_pid(state: Path) -> None:
    if _read_pid(state) == os.getpid():
        try:
            (state / PID_NAME).unlink()
        except OSError:
            pass


def start_detached(root: Path | str, *, idle_exit_s: float | None = None,
                   wait_s: float = 15.0) -> int | None:
    """Start an engine in its own session (it survives the terminal and an SSH drop).

    ``idle_exit_s`` overrides ``[engine] idle_exit_s``. Returns its pid once it holds the lock,
    or None if it did not come up in ``wait_s``. A config the engine would refuse raises
    ConfigError here, with the file's message, instead of a start that fails in the log.
    """
    root = Path(root).resolve()
    state = load_config(root).state_path(root)
    (state / "logs").mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "segtriage.engine", "run", str(root)]
    if idle_exit_s is not None:
        argv += ["--idle-exit", str(idle_exit_s)]
    with open(state / "logs" / LOG_NAME, "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True, cwd=str(root),
        )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:  # exited: another engine won the lock, or it failed
            return engine_pid(root)
        pid = engine_pid(root)
        if pid is not None:
            return pid
        time.sleep(0.05)
    return engine_pid(root)


def ensure_engine(root: Path | str) -> int | None:
    """The running engine's pid, starting one detached when none runs."""
    pid = engine_pid(root)
    if pid is not None:
        return pid
    try:
        return start_detached(root)
    except OSError:
        return None


def stop_engine(root: Path | str, *, timeout_s: float = 30.0) -> bool:
    """Ask the engine to stop (SIGTERM: the running job is interrupted and re-queued)."""
    pid = engine_pid(root)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if engine_pid(root) is None:
            return True
        time.sleep(0.1)
    return engine_pid(root) is None


class DeadEngineRule:
    """When a client starts the engine again, in one place for the app and a CLI follower.

    A job still 'running' while no engine holds the lock means the engine died in it (kill
    -9, out of memory): an engine that stops on its own marks its job interrupted first, so
    `segtriage engine stop` is never undone here. Seen on two checks in a row (the lock is
    free for a moment while an engine starts), the client starts it again, and the new
    engine's recovery re-queues the job (it fails the job after repeated crashes); at most
    once every ``min_interval_s``."""

    def __init__(self, *, min_interval_s: float = 60.0, clock=time.monotonic):
        self.min_interval_s = min_interval_s
        self.clock = clock
        self.seen = 0
        self.restarted_at: float | None = None

    def restart_now(self, *, job_running: bool, engine_alive: bool) -> bool:
        """One check: True when the engine died in a job and should be started now."""
        self.seen = self.seen + 1 if (job_running and not engine_alive) else 0
        if self.seen < 2:
            return False
        now = self.clock()
        if self.restarted_at is not None and now - self.restarted_at < self.min_interval_s:
            return False
        self.seen, self.restarted_at = 0, now
        return True
