"""Shared fixtures: tiny demo folders, a real engine process, waiting helpers."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from segtriage.engine.project.project import Project

TINY_CONFIG = """\
[model]
arch = "resnet18"
image_size = 64
batch_size = 4
epochs = 1
min_steps = 0
[engine]
idle_exit_s = 0
debounce_s = 0.2
[backup]
before_train = true
"""


def wait_for(pred, timeout: float = 120.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def make_tiny_demo(root: Path, count: int = 16, size: int = 64, seed: int = 1) -> Path:
    from segtriage.engine.project.demo import make_demo

    make_demo(root, count=count, size=size, seed=seed)
    (root / "segtriage.toml").write_text(TINY_CONFIG)
    return root


@contextmanager
def engine_process(root: Path):
    """A real engine for ``root`` (own session, like a detached one); stopped afterwards."""
    from segtriage.engine.daemon.control import engine_pid

    log = open(root / ".engine-test.log", "ab")
    p = subprocess.Popen([sys.executable, "-m", "segtriage.engine", "run", str(root)],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        wait_for(lambda: engine_pid(root) is not None or p.poll() is not None, 60,
                 what="engine start")
        assert p.poll() is None, (root / ".engine-test.log").read_text()

        st = Project.open(root).store
        # ready = scanned and watching (the pid appears as soon as the lock is taken)
        wait_for(lambda: st.engine_state().pid == p.pid
                 and st.engine_state().state != "scanning", 60, what="engine ready")
        yield p
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(120)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        log.close()


def wait_job(store, job_id: int, timeout: float = 300.0):
    wait_for(lambda: not store.job(job_id).active, timeout, interval=0.25,
             what=f"job {job_id}")
    return store.job(job_id)


def _copy_file(src: str, dst: str) -> None:
    """shutil.copy2, but a SQLite -wal or -shm file that vanished mid-copy is skipped: a
    reader's connection closing elsewhere removes them, and a reader's WAL holds no data."""
    try:
        shutil.copy2(src, dst)
    except FileNotFoundError:
        if not src.endswith(("-wal", "-shm")):
            raise


def copy_project(root: Path, dst: Path) -> Path:
    """A copy of a project folder (and its demo truth) to write in; no lock or pid file."""
    shutil.copytree(root, dst, ignore=shutil.ignore_patterns("engine.lock", "engine.pid"),
                    copy_function=_copy_file)
    truth = Path(str(root) + "-truth")
    if truth.exists():
        shutil.copytree(truth, Path(str(dst) + "-truth"))
    return dst


@pytest.fixture(scope="session")
def trained_demo(tmp_path_factory):
    """A tiny demo folder with one trained model (v1) and every image scored, trained once
    for the whole run and shared by the engine and fault tests. Read it only: a test that
    writes works on ``copy_project(trained_demo, tmp_path / ...)``."""

    root = make_tiny_demo(tmp_path_factory.mktemp("trained") / "data")
    store = Project.open(root).store
    with engine_process(root):
        jid = store.submit_job("train", {"epochs": 1})
        job = wait_job(store, jid)
        assert job.state == "done", job.error
        preds = [j for j in store.jobs() if j.kind == "predict"]
        assert preds, "a train job queues a predict of the stale rows"
        assert wait_job(store, preds[0].id).state == "done", preds[0].error
    # closed now, not whenever it is collected: the last connection's close removes the WAL
    # files, which failed a later copy (shutil.Error: state.db-wal vanished mid-copy)
    store.close()
    return root


@pytest.fixture
def tiny_demo(tmp_path):
    return make_tiny_demo(tmp_path / "data")


def kill_tree(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
