"""How the app changes things: one short store write on the UI thread, or file work in a
thread worker; both turn every failure into a message (a mixin of ``SegtriageApp``).

``store_write``: one short store write (a decision, a job request, the client heartbeat) on
this thread's connection, the one the poller reads data_version from. A connection does not
see its own commits there, so accepting a row does not reload 100k rows; the engine commits
in short transactions, so the busy wait is short.
``write``: file work (masks, history) in a worker; its commits do reload the rows, as the
mask fingerprint and status of a row change.
"""

from __future__ import annotations

from typing import Callable

from textual import work

from .data import Row


class StoreWrites:
    """``_store_write`` and ``_write`` (see the module), and the row an action works on."""

    def _store_write(self, fn: Callable[[], object], done: str | None = None,
                     after: Callable[[object], None] | None = None) -> None:
        try:
            result = fn()
        except Exception as e:  # noqa: BLE001
            self.notify(str(e) or type(e).__name__, severity="error", timeout=8)
            return
        self._wrote(result, done, after)

    def _write(self, fn: Callable[[], object], done: str | None = None,
               after: Callable[[object], None] | None = None) -> None:
        self._write_worker(fn, done, after)

    @work(thread=True, group="write")
    def _write_worker(self, fn, done, after) -> None:
        try:
            result = fn()
        except Exception as e:  # noqa: BLE001
            self.call_from_thread(self.notify, str(e) or type(e).__name__, severity="error",
                                  timeout=8)
            return
        self.call_from_thread(self._wrote, result, done, after)

    def _wrote(self, result, done: str | None, after) -> None:
        if done:
            self.notify(done.replace("{}", str(result)))
        if after is not None:
            after(result)

    def _need_row(self) -> Row | None:
        row = self.current_row
        if row is None:
            self.bell()
        return row
