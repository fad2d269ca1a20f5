"""Annotation safety under faults that need a real engine (issue: backups and safety).

kill -9 during prediction and during a backup, and two clients editing beside one engine.
Each checks that no mask is lost or changed, `verify` passes and the job is re-queued.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import (copy_project, engine_process, kill_tree, make_tiny_demo, wait_for,
                      wait_job)
from segtriage.engine.project import backup
from segtriage.engine.project.config import load_config
from segtriage.engine.daemon.control import engine_pid
from segtriage.engine.project.project import Project

pytestmark = pytest.mark.slow


def _masks(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.glob("*_mask.png"))}


def test_kill_9_during_backup_leaves_no_half_snapshot(tmp_path):
    # many small files: each stored object is fsynced, so a snapshot takes a few seconds
    root = make_tiny_demo(tmp_path / "b", count=300, size=64, seed=3)
    store = Project.open(root).store
    cfg = load_config(root)
    before = _masks(root)
    with engine_process(root) as p:
        jid = store.submit_job("backup", {})
        wait_for(lambda: store.job(jid).state == "running" and 0.05 < store.job(jid).progress
                 < 0.9, 120, interval=0.02, what="backup under way")
        kill_tree(p.pid)
        p.wait()
    assert backup.list_snapshots(root, cfg) == []  # the half snapshot does not count
    assert store.backups() == []
    assert backup.verify(root, cfg).ok  # whatever objects were written are whole
    with engine_process(root):
        wait_for(lambda: store.job(jid).state == "interrupted", 60, what="interrupted mark")
        (again,) = [j for j in store.jobs() if j.params.get("resumed_from") == jid]
        assert wait_job(store, again.id, 300).state == "done"
    (snap,) = backup.list_snapshots(root, cfg)
    assert snap["files"] == 601  # 300 images, 300 masks, segtriage.toml
    assert backup.verify(root, cfg).ok
    assert _masks(root) == before


def test_kill_9_during_prediction_resumes_where_it_stopped(trained_demo, tmp_path):
    # the shared trained folder (16 images, model 1) and 32 more images, so that a
    # prediction of all 48 takes long enough to be killed in the middle
    from segtriage.engine.project.demo import make_demo

    root = copy_project(trained_demo, tmp_path / "p")
    more = tmp_path / "more"
    make_demo(more, count=32, size=64, seed=4)
    for img in sorted(more.glob("img_*.png")):
        if not img.stem.endswith("_mask"):
            shutil.copy(img, root / f"more_{img.name}")
            shutil.copy(img.with_name(img.stem + "_mask.png"), root / f"more_{img.stem}_mask.png")
    store = Project.open(root).store
    cfg = load_config(root)
    with engine_process(root) as p:
        # the engine indexes the new images at start and predicts them itself first
        wait_for(lambda: len(rows := store.review_rows()) == 48 and not store.active_jobs()
                 and all(r.model_id == 1 and not r.stale for r in rows), 180,
                 what="the new images predicted")
        before = _masks(root)
        assert len(before) == 48
        jid = store.submit_job("predict", {"scope": "all"})
        wait_for(lambda: store.job(jid).state == "running" and 0.2 < store.job(jid).progress
                 < 0.8, 120, interval=0.02, what="prediction under way")
        kill_tree(p.pid)
        p.wait()
    assert engine_pid(root) is None
    with engine_process(root):
        wait_for(lambda: store.job(jid).state == "interrupted", 60, what="interrupted mark")
        (again,) = [j for j in store.jobs() if j.params.get("resumed_from") == jid]
        job = wait_job(store, again.id, 300)
        assert job.state == "done", job.error
        # it continued where it stopped instead of starting over
        assert 0 < job.result["predicted"] < 48
    rows = store.review_rows()
    assert len(rows) == 48 and all(r.model_id == 1 and not r.stale for r in rows)
    assert _masks(root) == before
    from segtriage.engine.ml.weights import load_model

    m = store.current_model()
    load_model(cfg.state_path(root) / "models" / m.weights[0], m.arch, 2)


CLIENT = textwrap.dedent("""
    import sys, numpy as np
    from pathlib import Path
    from segtriage.engine.project.config import load_config
    from segtriage.engine.project import history
    from segtriage.engine.project.project import Project
    root = Path(sys.argv[1]); which = int(sys.argv[2])
    cfg = load_config(root); st = Project.open(root).store
    rows = st.images()
    mine = [r for i, r in enumerate(rows) if i % 2 == which]
    for k, r in enumerate(mine):
        st.set_status([r.id], "accepted" if which == 0 else "flagged")
        if k % 3 == 0:  # and edit some masks through the history
            m = np.zeros((r.height, r.width), np.uint8); m[k:k + 10, 5:25] = 1
            history.write_mask(Project(root, cfg, st), st.image(r.id), m, "editor")
    print("ok", len(mine))
""")


def test_two_clients_and_an_engine_lose_nothing(tmp_path):
    root = make_tiny_demo(tmp_path / "c", count=40, size=64, seed=5)
    store = Project.open(root).store
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    with engine_process(root):
        # the engine works at the same time: a backup job and the watcher seeing the edits
        store.submit_job("backup", {})
        procs = [subprocess.Popen([sys.executable, str(script), str(root), str(w)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for w in (0, 1)]
        outs = [p.communicate(timeout=120) for p in procs]
        for p, (out, err) in zip(procs, outs):
            assert p.returncode == 0, err
            assert "database is locked" not in err
        wait_for(lambda: not store.active_jobs(), 120, what="engine jobs")
    decisions = store.events(kind="decision", limit=10_000)
    assert len(decisions) == 40
    rows = store.images()
    by_id = {r.id: r for r in rows}
    # every image got exactly the decision of the client that owned it (the last word)
    last = {}
    for d in decisions:
        last[d.data["image_id"]] = d.data["status"]
    for iid, status in last.items():
        assert by_id[iid].status in (status, "edited"), by_id[iid]["path"]
    # each edited mask (every third of each client's 20: 7 + 7) has its old version kept
    edited = [r for r in rows
              if any(v.source == "editor" for v in store.mask_versions(r.mask_path))]
    assert len(edited) == 14
    for r in edited:
        assert store.mask_versions(r.mask_path)[0].source == "scan", r["path"]
    assert backup.verify(root, load_config(root)).ok
