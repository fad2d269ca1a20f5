"""What clients ask of a project (engine.project.queries): the status facts' backup and edit
counts, the engine's own report as a row, and which job a cancel without an id means."""

from __future__ import annotations

import os

import pytest

from segtriage.engine.project.queries import job_to_cancel, status_facts
from segtriage.engine.store import Store, db
from segtriage.engine.store.rows import EngineState


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A fresh store whose clock is a counter: each row stamped one second after the last."""
    clock = iter(range(1000, 2000))
    monkeypatch.setattr(db, "now", lambda: float(next(clock)))
    return Store(tmp_path / "state.db")


def test_the_last_backup_and_the_masks_edited_since(store):
    st = status_facts(store)
    assert st.last_backup is None and st.edits_since_backup == 0
    store.add_mask_version("a_mask.png", "s1", "scan")       # the first scan: no edit
    store.add_mask_version("a_mask.png", "s2", "editor")
    assert status_facts(store).edits_since_backup == 1       # no backup yet: every edit
    store.add_backup(destination="/d", snapshot="snap-1", files=3, bytes_added=10,
                     masks_changed=1)
    st = status_facts(store)
    assert (st.last_backup.snapshot, st.edits_since_backup) == ("snap-1", 0)
    store.add_mask_version("a_mask.png", "s3", "editor")     # the same mask twice: one mask
    store.add_mask_version("a_mask.png", "s4", "revert")
    store.add_mask_version("b_mask.png", "t2", "segment")
    store.add_mask_version("c_mask.png", "u1", "scan")       # a new file found: no edit
    assert status_facts(store).edits_since_backup == 2
    # what a restore kept is not a whole snapshot: the last backup stays snap-1
    store.add_backup(destination="/d", snapshot="kept-1", files=1, bytes_added=0,
                     masks_changed=0, partial=True)
    st = status_facts(store)
    assert (st.last_backup.snapshot, st.edits_since_backup) == ("snap-1", 2)


def test_the_engines_report_is_a_row(store):
    st = status_facts(store)
    assert st.engine == EngineState()  # no engine ever ran: every field unknown
    assert st.engine.pid is None and st.engine.state is None
    store.set_engine_state(pid=4242, host="h", state="idle", watcher="native", device=None,
                           job=None)
    store.set_engine_state(state="running job 7", job=7, last_event="edited a_mask.png")
    e = status_facts(store).engine
    assert (e.pid, e.host, e.state, e.watcher, e.device, e.job, e.last_event) == (
        4242, "h", "running job 7", "native", None, 7, "edited a_mask.png")
    assert e.heartbeat == db.now() - 1  # stamped by the last set_engine_state
    store.set_meta("engine", {"pid": 1, "from_a_newer_engine": True})  # extra keys: ignored
    assert store.engine_state() == EngineState(pid=1)


def test_a_cancel_without_an_id_means_the_running_job_else_the_next_queued_one(store):
    assert job_to_cancel(store) is None
    first, second = store.submit_job("predict"), store.submit_job("backup")
    assert job_to_cancel(store).id == first  # the oldest queued: the engine runs it next
    assert store.claim_job(os.getpid()).id == first
    third = store.submit_job("rescore")
    assert job_to_cancel(store).id == first  # running beats every queued one
    store.finish_job(first, "done")
    assert job_to_cancel(store).id == second
    store.request_cancel(second)
    assert job_to_cancel(store).id == third
    store.request_cancel(third)
    assert job_to_cancel(store) is None
