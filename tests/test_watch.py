"""The folder watcher: real watchdog observers on real files."""

from __future__ import annotations

import time

import pytest

from segtriage.engine.config import default_config
from segtriage.engine.watch import FolderWatcher


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
