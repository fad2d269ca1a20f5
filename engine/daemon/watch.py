"""Watching the data folder: watchdog events → debounced relative paths for the engine.

Editors save by writing a temp file and renaming it; copies arrive over seconds. So an event
only marks a path as pending; the engine takes it once no event touched it for ``debounce_s``
and reads it then, complete. Hidden, temp and state-folder paths are dropped here.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from ..project import layout

log = logging.getLogger("segtriage.engine")


class WatchError(RuntimeError):
    """`[engine] watch = "native"` and the native observer cannot start: no silent polling."""


class FolderWatcher:
    def __init__(self, root: Path, cfg, mode: str = "auto"):
        self.root = Path(root).resolve()
        self.cfg = cfg
        self.mode = mode
        self.state_dir = cfg.state_path(self.root).resolve()
        self._pending: dict[str, float] = {}
        self._lock = threading.Lock()
        self._observer = None
        self.rescan_needed = False
        self.state = "off"
        self.last_event: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self.mode == "off":
            self.state = "off (config)"
            return
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        watcher = self

        class Handler(FileSystemEventHandler):
            def __init__(self, seen_as: tuple[str, str] | None = None):
                super().__init__()
                self.seen_as = seen_as  # (target, link): events under a linked folder

            def _path(self, p):
                p = os.fsdecode(p)
                if self.seen_as is not None:
                    target, link = self.seen_as
                    if p == target or p.startswith(target + os.sep):
                        p = link + p[len(target):]
                return p

            def on_any_event(self, event):  # noqa: N802 - watchdog's name
                if event.event_type in ("opened", "closed_no_write"):
                    return
                watcher._note(self._path(event.src_path), event.is_directory,
                              event.event_type)
                dest = getattr(event, "dest_path", None)
                if dest:
                    watcher._note(self._path(dest), event.is_directory, event.event_type)

        kinds = {"polling": [PollingObserver], "native": [Observer]}.get(
            self.mode, [Observer, PollingObserver])
        if self.mode == "native" and issubclass(Observer, PollingObserver):
            self._refuse_native("watchdog has no native observer on this platform")
        for kind in kinds:
            try:
                obs = kind(timeout=1.0) if kind is PollingObserver else kind()
                obs.schedule(Handler(), str(self.root), recursive=True)
                # the scan follows links to folders outside the data folder; watchdog does
                # not, so each gets a watch of its own, its events named by the link's path
                for link, target in self._linked_folders():
                    obs.schedule(Handler((target, link)), target, recursive=True)
                obs.daemon = True
                obs.start()
            except Exception as e:  # noqa: BLE001 - inotify limits, odd file systems
                if self.mode == "native":
                    self._refuse_native(f"{kind.__name__} failed: {e}")
                log.warning("watcher %s failed: %s", kind.__name__, e)
                continue
            self._observer = obs
            self.state = "polling" if kind is PollingObserver else "watching"
            return
        self.state = "failed"

    def _refuse_native(self, why: str) -> None:
        msg = (f'[engine] watch = "native" for {self.root}: the native file watcher cannot '
               f'start ({why}); set watch = "auto" (falls back to polling) or "polling"')
        log.error(msg)
        self.state = "failed"
        raise WatchError(msg)

    def _linked_folders(self) -> list[tuple[str, str]]:
        """(link path, real target) of links to folders outside the data folder, as the
        scan follows them (layout._walk); one level: links inside them are not watched."""
        out = []
        root = str(self.root)
        for d, dirs, _files in os.walk(root):
            rel_d = os.path.relpath(d, root)
            keep = []
            for name in dirs:
                rel = name if rel_d == "." else f"{rel_d}/{name}"
                if layout.is_ignored(rel, self.cfg):
                    continue
                path = os.path.join(d, name)
                if os.path.islink(path):
                    target = os.path.realpath(path)
                    if os.path.isdir(target) and not layout.is_within(target, root):
                        out.append((path, target))
                else:
                    keep.append(name)
            dirs[:] = keep
        return out

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
        self.state = "stopped"

    # -- events ------------------------------------------------------------------------------
    def _note(self, path: str | bytes, is_dir: bool, kind: str) -> None:
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        p = Path(path)
        try:
            p.resolve().relative_to(self.state_dir)
            return  # our own writes
        except (ValueError, OSError):
            pass
        try:
            rel = p.relative_to(self.root).as_posix()
        except ValueError:
            return
        if rel in ("", ".") or layout.is_ignored(rel, self.cfg):
            return
        if is_dir:
            if kind in ("deleted", "moved"):
                self.rescan_needed = True  # a whole folder went: let a scan sort it out
            return
        with self._lock:
            self._pending[rel] = time.monotonic()
        self.last_event = f"{kind} {rel}"

    def due(self, debounce_s: float) -> list[str]:
        """Paths quiet for ``debounce_s``, removed from the pending set."""
        now = time.monotonic()
        with self._lock:
            ready = [p for p, t in self._pending.items() if now - t >= debounce_s]
            for p in ready:
                del self._pending[p]
        return sorted(ready)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)
