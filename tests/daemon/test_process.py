"""Engine lifecycle from the clients' side: finding, stopping and asking a running engine while
the config file is broken elsewhere, and a detached engine's idle exit.

Most tests use a stand-in engine: a small process that holds the folder's engine lock like the
real one (no torch, a fraction of a second); the idle-exit test runs the real engine, briefly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import kill_tree, make_tiny_demo, wait_for
from segtriage.engine.daemon import control
from segtriage.engine.daemon.control import engine_pid
from segtriage.engine.store import Store
from segtriage.tui import cli

BAD_MODEL = '[model]\nlr = "fast"\n'
GOOD = '[project]\nstate_dir = "state"\n[model]\nlr = 0.001\n'

STAND_IN = textwrap.dedent("""\
    import signal, sys, time
    from pathlib import Path
    from segtriage.engine.daemon.control import EngineLock, clear_pid, write_pid
    state = Path(sys.argv[1])
    lock = EngineLock(state)
    assert lock.acquire()
    write_pid(state)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    deadline = time.monotonic() + 120  # never outlives a test run, whatever happens
    while not stop and time.monotonic() < deadline:
        time.sleep(0.05)
    clear_pid(state)
    lock.release()
""")


def _alive(pid: int) -> bool:
    """Running (a zombie left for its parent to reap has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@contextmanager
def stand_in_engine(root: Path, state: Path):
    """A process holding ``root``'s engine lock in ``state``, as a running engine does."""
    p = subprocess.Popen([sys.executable, "-c", STAND_IN, str(state)],
                         stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: engine_pid(root) == p.pid or p.poll() is not None, 30,
                 what="stand-in engine")
        assert p.poll() is None
        yield p
    finally:
        kill_tree(p.pid)
        p.wait(10)


@pytest.fixture
def project(tmp_path):
    """A folder with a state database in a state_dir of its own and one running job."""
    root = tmp_path / "data"
    root.mkdir()
    (root / "segtriage.toml").write_text(GOOD)
    state = root / "state"
    store = Store(state / "state.db")
    job = store.submit_job("train", {})
    assert store.claim_job(os.getpid()).id == job
    store.set_engine_state(state=f"running job {job}", job=job, device=None)
    store.close()
    return root


def _break(root: Path) -> None:
    # the typo of the issue: [model] is re-read for every job, the rest only at engine start
    (root / "segtriage.toml").write_text(GOOD.replace("lr = 0.001", 'lr = "fast"'))


def test_a_bad_model_value_does_not_lock_anyone_out_of_the_running_engine(project, capsys):
    root = project
    with stand_in_engine(root, root / "state") as eng:
        _break(root)
        assert engine_pid(root) == eng.pid
        assert cli.main(["engine", "status", str(root)]) == 0
        out = capsys.readouterr().out
        assert f"engine running (pid {eng.pid}), running job 1" in out
        assert "None" not in out  # the device is not probed yet: left out
        probed = Store(root / "state" / "state.db")
        probed.set_engine_state(device="cpu")
        probed.close()
        assert cli.main(["engine", "status", str(root)]) == 0
        out = capsys.readouterr().out
        assert f"engine running (pid {eng.pid}), running job 1, device cpu" in out
        assert cli.main(["status", str(root)]) == 0
        out = capsys.readouterr().out
        assert f"pid {eng.pid}, running job 1" in out and "None" not in out
        assert cli.main(["jobs", str(root), "--json"]) == 0
        assert '"state": "running"' in capsys.readouterr().out
        assert cli.main(["cancel", str(root), "1"]) == 0
        assert "cancel requested for job 1" in capsys.readouterr().out
        # what needs the whole file still names the bad key
        assert cli.main(["train", str(root), "--detach"]) == 2
        assert "model.lr = 'fast' is not allowed" in capsys.readouterr().err
        assert cli.main(["engine", "stop", str(root)]) == 0
        assert "engine stopped" in capsys.readouterr().out
        eng.wait(10)
    assert engine_pid(root) is None


def test_engine_start_reports_a_broken_config_and_starts_nothing(project, capsys,
                                                                 monkeypatch):
    monkeypatch.setattr(control.subprocess, "Popen", lambda *a, **k: pytest.fail("started"))
    _break(project)
    assert cli.main(["engine", "start", str(project)]) == 2
    assert "model.lr = 'fast' is not allowed" in capsys.readouterr().err
    # and the engine's own entry points: one place judges the file
    from segtriage.engine.project.config import ConfigError

    with pytest.raises(ConfigError, match="model.lr"):
        control.start_detached(project)


def test_a_bad_state_dir_is_named(project, capsys):
    (project / "segtriage.toml").write_text('[project]\nstate_dir = 5\n')
    for argv in (["engine", "status"], ["engine", "stop"], ["jobs"], ["cancel"], ["status"]):
        assert cli.main([*argv, str(project)]) == 2, argv
        err = capsys.readouterr().err
        assert "project.state_dir = 5 is not allowed; expected a folder" in err, argv


def test_the_open_app_keeps_seeing_the_running_engine(project, monkeypatch):
    # the app was opened on a good file; a typo in [model] must not turn the live engine
    # into "engine offline" nor make the app try to start a second one
    from segtriage.tui.app.app import SegtriageApp
    from segtriage.tui.paint.renderers import select_renderer

    monkeypatch.setenv("XDG_CONFIG_HOME", str(project.parent / "xdg"))
    monkeypatch.setattr(control, "start_detached", lambda *a, **k: pytest.fail("second engine"))
    app = SegtriageApp(project, renderer=select_renderer("halfcell"))
    notes: list[str] = []
    app.notify = lambda message, **kw: notes.append(str(message))

    async def run() -> str:
        async with app.run_test(size=(120, 36)) as pilot:
            app._refresh_status()
            for _ in range(100):
                await pilot.pause(0.05)
                if app.engine_pid is not None and not app._status_busy:
                    break
            return str(app.query_one("#status").render())

    with stand_in_engine(project, project / "state") as eng:
        _break(project)
        status = asyncio.run(run())
        assert app.engine_pid == eng.pid
    assert "engine offline" not in status
    assert not [n for n in notes if "cannot start the engine" in n]


def test_detached_engine_honours_idle_exit(tmp_path, capsys):
    # the folder's config says never (idle_exit_s = 0); --idle-exit 1 must win
    root = make_tiny_demo(tmp_path / "data", count=4, size=32)
    pid = None
    try:
        assert cli.main(["engine", "start", str(root), "--idle-exit", "1"]) == 0
        pid = engine_pid(root)
        assert pid is not None, capsys.readouterr()
        assert f"engine started (pid {pid})" in capsys.readouterr().out
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert b"--idle-exit" in cmdline
        # how soon: bench/idle_exit.py; here only that it does exit, and says why
        wait_for(lambda: not _alive(pid), 60, interval=0.2, what="the idle engine to exit")
        assert engine_pid(root) is None
        log = (root / ".segtriage" / "logs" / "engine.log").read_text()
        assert "with no client: exiting" in log
    finally:
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_the_dead_engine_rule_restarts_after_two_checks_and_not_again_at_once():
    t = [0.0]
    rule = control.DeadEngineRule(min_interval_s=60.0, clock=lambda: t[0])
    dead = dict(job_running=True, engine_alive=False)
    assert rule.restart_now(**dead) is False           # the lock may be free while it starts
    assert rule.restart_now(**dead) is True            # twice in a row: it died in the job
    assert rule.restart_now(**dead) is False
    assert rule.restart_now(**dead) is False           # seen twice again, but within a minute
    t[0] = 61.0
    assert rule.restart_now(**dead) is True
    # an engine that holds its lock, or no job running (a stop interrupts its job): never
    assert not any(rule.restart_now(job_running=r, engine_alive=a)
                   for r, a in [(True, True), (False, False), (False, True)] * 3)
    t[0] = 500.0
    assert rule.restart_now(**dead) is False           # a check in between resets the count
