"""The folder watcher: real watchdog observers on real files."""

from __future__ import annotations

import signal
import time

import pytest

from segtriage.engine.project.config import default_config
from segtriage.engine.daemon.watch import FolderWatcher


def _wait_for(watcher, rel, timeout=10.0) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and rel not in got:
        got += watcher.due(0.0)
        time.sleep(0.05)
    return got


@pytest.mark.parametrize("mode", ["auto", "polling"])
def test_changes_inside_a_linked_folder_are_seen_under_the_links_name(tmp_path, mode):
    # the scan indexes folders linked from outside the data folder; their edits must reach
    # the engine too, named as the scan names them
    root, outside = tmp_path / "data", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    (outside / "0.png").write_bytes(b"x")
    (root / "more").symlink_to(outside, target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)   # inside: not watched twice
    w = FolderWatcher(root, default_config(), mode)
    w.start()
    try:
        assert w.state in ("watching", "polling")
        assert [link for link, _t in w._linked_folders()] == [str(root.resolve() / "more")]
        time.sleep(1.2 if mode == "polling" else 0.2)
        (outside / "0_mask.png").write_bytes(b"mask")            # saved by an editor there
        assert "more/0_mask.png" in _wait_for(w, "more/0_mask.png")
        (root / "a.png").write_bytes(b"y")                       # the data folder itself
        assert "a.png" in _wait_for(w, "a.png")
    finally:
        w.stop()


class _BrokenNative:
    """A native observer that cannot start, as when the inotify watch limit is reached."""

    def __init__(self, *a, **k):
        pass

    def schedule(self, *a, **k):
        raise OSError(28, "inotify watch limit reached")


def test_native_is_honoured_or_refused_never_polling_silently(tmp_path, monkeypatch):
    import watchdog.observers

    from segtriage.engine.daemon.watch import WatchError

    root = tmp_path / "data"
    root.mkdir()
    w = FolderWatcher(root, default_config(), "native")
    w.start()
    try:
        assert w.state == "watching"
        assert type(w._observer).__name__ != "PollingObserver"
    finally:
        w.stop()
    monkeypatch.setattr(watchdog.observers, "Observer", _BrokenNative)
    w = FolderWatcher(root, default_config(), "native")
    with pytest.raises(WatchError, match=r'watch = "native".*inotify watch limit reached'
                                         r'.*"polling"'):
        w.start()
    assert w.state == "failed" and w._observer is None
    w = FolderWatcher(root, default_config(), "auto")   # auto does fall back, and says so
    w.start()
    try:
        assert w.state == "polling"
    finally:
        w.stop()


def test_an_engine_told_native_stops_with_the_reason(tmp_path, monkeypatch, capsys):
    import watchdog.observers

    from segtriage.engine.daemon import main
    from segtriage.engine.daemon.control import engine_pid

    root = tmp_path / "data"
    root.mkdir()
    (root / "segtriage.toml").write_text('[engine]\nwatch = "native"\n')
    monkeypatch.setattr(watchdog.observers, "Observer", _BrokenNative)
    sigs = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        assert main.run(root) == 2   # in this process: it sets the engine's handlers
    finally:
        for s, h in sigs.items():
            signal.signal(s, h)
    err = capsys.readouterr().err
    assert 'watch = "native"' in err and "inotify watch limit reached" in err
    assert engine_pid(root) is None   # lock and pid file released
    log = (root / ".segtriage" / "logs" / "engine.log").read_text()
    assert "native file watcher cannot start" in log
