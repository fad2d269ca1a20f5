"""The engine process end to end, with real fastai training on a tiny demo set.

One folder is trained once for the whole run (``trained_demo`` in tests/conftest.py, shared
with test_faults.py); the tests that write work on copies of it, so that a previous model exists.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import (copy_project, engine_process, kill_tree, make_tiny_demo, wait_for,
                      wait_job)
from segtriage.engine.project.config import load_config
from segtriage.engine.daemon.control import EngineLock, engine_pid
from segtriage.engine.project.project import Project

pytestmark = pytest.mark.slow


@pytest.fixture
def trained(trained_demo):
    """The shared tiny demo folder with model 1 (tests/conftest.py): read only."""
    return trained_demo


def test_one_engine_per_folder(tiny_demo):
    state = load_config(tiny_demo).state_path(tiny_demo)
    a, b = EngineLock(state), EngineLock(state)
    assert a.acquire()
    assert not b.acquire()
    a.release()
    assert b.acquire()
    b.release()


def test_second_engine_refuses_and_first_keeps_running(tiny_demo):
    with engine_process(tiny_demo) as p:
        pid = engine_pid(tiny_demo)
        assert pid == p.pid
        out = subprocess.run([sys.executable, "-m", "segtriage.engine", "run", str(tiny_demo)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 1
        assert "already runs" in out.stderr and str(pid) in out.stderr
        assert engine_pid(tiny_demo) == pid
    assert engine_pid(tiny_demo) is None


@pytest.fixture
def trained_store(trained):
    """The shared folder's store, read only, closed when the test ends: a connection left to
    the garbage collector removes the WAL files whenever it is collected, which once broke a
    later test's copy of the folder mid-copy."""
    store = Project.open(trained).store
    yield store
    store.close()


def test_train_writes_a_versioned_model_and_scores_everything(trained, trained_store):
    store = trained_store
    (m,) = store.models()
    assert m.id == 1 and store.current_model_id() == 1 and m.kind == "plain"
    weights = load_config(trained).state_path(trained) / "models" / m.weights[0]
    assert weights.exists() and m.valid_dice is not None
    assert len(m.manifest) == m.n_train + m.n_valid or len(m.manifest) >= m.n_train
    assert all(e["mask_sha256"] for e in m.manifest)
    epochs = store.events(kind="epoch")
    assert epochs and {"train_loss", "valid_loss", "valid_dice"} <= set(epochs[0].data)
    rows = store.review_rows()
    assert rows and all(r.model_id == 1 and not r.stale for r in rows)
    state = load_config(trained).state_path(trained)
    for r in rows:
        assert (state / r.prob_path).exists()
        assert r.category in ("disagrees", "uncertain", "agrees")
    # a backup was taken before training
    assert len(store.backups()) >= 1


def test_report_json_has_every_column(trained):
    out = subprocess.run([sys.executable, "-m", "segtriage.tui.cli", "report", str(trained),
                          "--format", "json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 16
    for key in ("image", "mask", "status", "model", "stale", "prob", "category", "priority",
                "confidence", "dice", "iou", "ce", "label_quality", "n_pred", "n_mask"):
        assert key in rows[0], key
    assert (trained / rows[0]["prob"]).exists()
    prios = [r["priority"] for r in rows]
    assert prios == sorted(prios, reverse=True)  # the default review order


def test_stored_probabilities_match_a_reloaded_model(trained, trained_store):
    from segtriage.engine.ml import infer

    store = trained_store
    cfg = load_config(trained)
    m = store.current_model()
    state = cfg.state_path(trained)
    pred = infer.Predictor(state / "models" / m.weights[0], m.arch, cfg.project.codes,
                           cfg.model)
    row = store.review_rows()[0]
    sc = store.score(row.id)
    (_, prob), = list(pred.predict([trained / row.path]))
    stored = np.asarray(Image.open(state / sc.prob_path), dtype=np.float32) / 255
    assert stored.shape == prob.shape
    assert np.abs(stored - prob).max() <= 1 / 255 + 1e-6


_copy = copy_project


def test_watcher_indexes_new_images_and_rescores_edited_masks(trained, tmp_path):
    root = _copy(trained, tmp_path / "w")
    store = Project.open(root).store
    with engine_process(root):
        n_predict = len([j for j in store.jobs() if j.kind == "predict"])
        # an edited mask, saved the way editors do: temp file, then rename
        row = store.image("img_003.png")
        mask_path = root / row.mask_path
        m = np.asarray(Image.open(mask_path)).copy()
        m[:20, :20] = 255 - m[:20, :20]
        tmp = mask_path.with_name(".img_003_mask.png.tmp")
        Image.fromarray(m).save(tmp, format="PNG")
        os.replace(tmp, mask_path)

        def rescored():
            r = store.image("img_003.png")
            sc = store.score(r.id)
            return r.mask_sha256 != row.mask_sha256 and sc.mask_sha256 == r.mask_sha256

        wait_for(rescored, 30, what="re-score of the edited mask")
        assert store.image("img_003.png").status == "edited"
        assert len([j for j in store.jobs() if j.kind == "predict"]) == n_predict  # no model run
        # a new image is indexed and predicted with the current model
        shutil.copy(root / "img_000.png", root / "new_one.png")
        wait_for(lambda: store.image("new_one.png") is not None, 30, what="new image row")
        assert store.image("new_one.png").status == "no-mask"
        def predicted():
            sc = store.score(store.image("new_one.png").id)
            return sc is not None and sc.model_id == 1

        wait_for(predicted, 120, what="prediction of the new image")
        # a deleted image's row goes
        (root / "new_one.png").unlink()
        wait_for(lambda: store.image("new_one.png") is None, 30, what="row removal")


def test_kill_9_during_training_is_recovered(trained, tmp_path):
    root = _copy(trained, tmp_path / "k")
    store = Project.open(root).store
    cfg = load_config(root)
    masks_before = {p: p.read_bytes() for p in root.glob("*_mask.png")}
    with engine_process(root) as p:
        jid = store.submit_job("train", {"epochs": 20})
        wait_for(lambda: store.job(jid).state == "running" and store.job(jid).progress > 0.01,
                 180, what="training under way")
        kill_tree(p.pid)
        p.wait()
    assert engine_pid(root) is None  # the kernel dropped the lock with the process
    assert store.job(jid).state == "running"  # nobody has noticed yet
    with engine_process(root):
        wait_for(lambda: store.job(jid).state == "interrupted", 60, what="interrupted mark")
        again = [j for j in store.jobs() if j.params.get("resumed_from") == jid]
        assert len(again) == 1 and again[0].kind == "train"
        assert store.current_model_id() == 1  # the previous model stays current
        # cancelling the re-queued training takes effect within a batch or so
        wait_for(lambda: store.job(again[0].id).state == "running", 120, what="requeued run")
        store.request_cancel(again[0].id)
        assert wait_job(store, again[0].id, 120).state == "cancelled"
    assert store.current_model_id() == 1
    from segtriage.engine.ml.weights import load_model

    m = store.current_model()
    load_model(cfg.state_path(root) / "models" / m.weights[0], m.arch, 2)
    assert masks_before == {p: p.read_bytes() for p in root.glob("*_mask.png")}


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_engine_outlives_the_terminal_that_started_it(trained, tmp_path):
    root = _copy(trained, tmp_path / "t")
    store = Project.open(root).store
    sock = tmp_path / "tmux.sock"
    seg = Path(sys.executable).with_name("segtriage")
    cmd = f"{seg} train {root} --epochs 1"
    t0 = time.time()
    subprocess.run(["tmux", "-S", str(sock), "-f", "/dev/null", "new-session", "-d", "-x", "120",
                    "-y", "30", cmd], check=True)
    try:
        wait_for(lambda: any(j.kind == "train" and j.state == "running" and j.created_at > t0
                             for j in store.jobs()),
                 120, what="train job running")
    finally:
        subprocess.run(["tmux", "-S", str(sock), "kill-server"], check=False)
    time.sleep(1.0)
    pid = engine_pid(root)
    assert pid is not None, "the engine died with the terminal"
    (train,) = [j for j in store.jobs() if j.kind == "train" and j.created_at > t0]
    try:
        assert wait_job(store, train.id, 300).state == "done"
        assert store.current_model_id() == 2
    finally:
        subprocess.run([sys.executable, "-m", "segtriage.tui.cli", "engine", "stop", str(root)],
                       timeout=150)
    assert engine_pid(root) is None


def test_masks_edited_while_the_engine_was_down_are_rescored_at_start(trained, tmp_path):
    root = _copy(trained, tmp_path / "o")
    store = Project.open(root).store
    row = store.image("img_005.png")
    mask_path = root / row.mask_path
    m = np.asarray(Image.open(mask_path)).copy()
    m[10:30, 10:30] = 255
    Image.fromarray(m).save(mask_path, format="PNG")
    n_predict = len([j for j in store.jobs() if j.kind == "predict"])
    with engine_process(root):
        new = store.image("img_005.png")
        assert new.mask_sha256 != row.mask_sha256 and new.status == "edited"
        wait_for(lambda: store.score(new.id).mask_sha256 == new.mask_sha256, 30,
                 what="re-score at start")
        assert len([j for j in store.jobs() if j.kind == "predict"]) == n_predict


def test_rows_from_an_older_scoring_version_are_rescored_at_start(trained, tmp_path):
    # as after an upgrade whose formulas changed: the rows carry an older scoring_version
    # and a priority on another scale; the engine re-scores them from the stored
    # probabilities (a 'rescore' job, no model run) so that one order holds one scale
    from segtriage.engine.project import scoring
    root = _copy(trained, tmp_path / "v")
    store = Project.open(root).store
    with store.tx() as c:
        c.execute("UPDATE scores SET priority = priority + 2, metrics = "
                  "json_set(metrics, '$.scoring_version', 1)")
    n = len(store.review_rows())
    assert store.outdated_scores(scoring.SCORING_VERSION) == n > 0
    n_predict = len([j for j in store.jobs() if j.kind == "predict"])
    with engine_process(root):
        wait_for(lambda: any(j.kind == "rescore" for j in store.jobs()), 30, what="rescore job")
        (job,) = [j for j in store.jobs() if j.kind == "rescore"]
        assert wait_job(store, job.id).state == "done" and "scoring version" in job.params["reason"]
    assert store.outdated_scores(scoring.SCORING_VERSION) == 0
    rows = store.review_rows(full=True)
    assert all(r.get("scoring_version") == scoring.SCORING_VERSION for r in rows)
    assert all(r.get("priority") is None or 0 <= r.get("priority") < 1 for r in rows)
    assert len([j for j in store.jobs() if j.kind == "predict"]) == n_predict


def test_crossval_scores_each_mask_with_the_fold_model_that_never_saw_it(trained, tmp_path):
    root = _copy(trained, tmp_path / "cv")
    store = Project.open(root).store
    with engine_process(root):
        jid = store.submit_job("crossval", {"folds": 2, "epochs": 1, "no_backup": True})
        job = wait_job(store, jid)
        assert job.state == "done", job.error
        m = store.current_model()
        assert m.kind == "crossval" and len(m.weights) == 2 and m.id == 2
        fold_of = {e["path"]: e["fold"] for e in m.manifest}
        assert sorted(set(fold_of.values())) == [0, 1]
        (pred,) = [j for j in store.jobs() if j.kind == "predict" and j.id > jid]
        assert wait_job(store, pred.id).state == "done"
    for r in store.review_rows():
        sc = store.score(r.id)
        assert sc.model_id == 2 and not r.stale
        assert sc.fold == fold_of[r.path], r.path  # out-of-fold
    # each fold model validated on exactly its held-out fold
    for f, info in enumerate(m.info["folds"]):
        assert info["n_train"] == sum(1 for v in fold_of.values() if v != f)


def test_each_job_reads_the_config_file_anew(trained, tmp_path):
    # `segtriage rescore` after editing [scoring] must use the edit, with the engine already
    # running; a broken config file fails that job with the file's message, and the engine
    # goes on to run the next job once the file is fixed
    root = _copy(trained, tmp_path / "c")
    store = Project.open(root).store
    before = {r.path: r.get("frac_uncertain") for r in store.review_rows(full=True)}
    with engine_process(root):
        (root / "segtriage.toml").write_text("[scoring]\nuncertain_threshold = 0.999\n")
        from segtriage.tui import cli

        assert cli.main(["rescore", str(root)]) == 0  # follows the job until it is done
        (jid,) = [j.id for j in store.jobs() if j.kind == "rescore"]
        assert wait_job(store, jid).state == "done"
        after = {r.path: r.get("frac_uncertain") for r in store.review_rows(full=True)}
        assert all(after[p] >= before[p] for p in before)
        assert sum(after.values()) > sum(before.values())  # more pixels count as unsure
        (root / "segtriage.toml").write_text("[scoring]\nuncertain_threshold = 'high'\n")
        job = wait_job(store, store.submit_job("rescore", {}))
        assert job.state == "failed" and "segtriage.toml" in job.error
        assert "uncertain_threshold" in job.error
        (root / "segtriage.toml").write_text("")
        assert wait_job(store, store.submit_job("rescore", {})).state == "done"
        # back to the default τ (from the stored 8-bit maps, so not bit-equal to the first)
        restored = {r.path: r.get("frac_uncertain") for r in store.review_rows(full=True)}
        assert restored == pytest.approx(before, abs=0.05)
        assert sum(restored.values()) < sum(after.values())
        # a mask edited after a config edit is re-scored (no job) with the edited config too
        (root / "segtriage.toml").write_text("[scoring]\nuncertain_threshold = 0.999\n")
        row = store.image("img_005.png")
        mask_path = root / row.mask_path
        m = np.asarray(Image.open(mask_path)).copy()
        m[10:30, 10:30] = 255
        Image.fromarray(m).save(mask_path, format="PNG")
        wait_for(lambda: store.score(row.id).mask_sha256 != row.mask_sha256, 30,
                 what="re-score of the edited mask")
        (now,) = [r for r in store.review_rows(full=True) if r.path == "img_005.png"]
        assert now.get("frac_uncertain") == pytest.approx(after["img_005.png"])
        assert now.get("frac_uncertain") > restored["img_005.png"]


# -- weights of a training that does not finish ------------------------------------------------

def _models_dir(root: Path) -> Path:
    return load_config(root).state_path(root) / "models"


def _weight_files(root: Path) -> list[str]:
    d = _models_dir(root)
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


@pytest.fixture
def fake_training(tmp_path, monkeypatch):
    """A scanned tiny demo folder and a stand-in for one model's training: it writes the
    weights and sidecar where the real one does (a fold's file is as big as a model's), and
    ``fail`` = {fold: kind} makes that fold end the way a cancel, a failure or an engine stop
    would (after writing a partial file, like a run killed mid-save). No fastai here."""
    import threading
    from types import SimpleNamespace

    from segtriage.engine.daemon.jobs import train as train_jobs
    from segtriage.engine.ml.train import TrainResult
    from segtriage.engine.project import index
    from segtriage.engine.daemon import jobs

    root = make_tiny_demo(tmp_path / "data", count=8)
    cfg = load_config(root)
    store = Project.open(root).store
    index.scan(Project(root, cfg, store))
    fail: dict = {}

    def train_one(ctx, rows, mcfg, out, *, span, label, fold=None, valid_idx=None,
                  early=False):
        kind = fail.get(fold)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"weights" * 100)
        if kind == "partial":
            return SimpleNamespace()  # the job breaks on the missing fields
        out.with_name(out.name + ".json").write_text("{}")
        if kind == "cancel":
            store.request_cancel(ctx.job.id)
            ctx.check()
        if kind == "stop":
            ctx.stopping.set()
            ctx.check()
        if kind == "fail":
            raise RuntimeError("CUDA out of memory")
        # the real result type: the jobs read its fields as attributes (no fastai imported)
        return TrainResult(weights=out, arch="resnet18", epochs=1, train_loss=0.1,
                           valid_loss=0.2, valid_dice=0.5, n_train=len(rows), n_valid=1,
                           valid_items=[], history=[], device="cpu", seconds=0.1)

    monkeypatch.setattr(train_jobs, "_train_one", train_one)

    def run(kind: str, params: dict | None = None):
        for j in store.jobs():  # the predict a finished training queues: not run here
            if j.active:
                store.request_cancel(j.id)
        jid = store.submit_job(kind, {"no_backup": True, **(params or {})})
        job = store.claim_job(os.getpid())
        assert job.id == jid
        jobs.run_job(jobs.JobContext(Project(root, cfg, store), job, threading.Event()))
        return store.job(job.id)

    return SimpleNamespace(root=root, cfg=cfg, store=store, fail=fail, run=run)


@pytest.mark.parametrize("how", ["cancel", "fail", "stop", "partial"])
def test_a_crossval_that_does_not_finish_leaves_no_fold_weights(fake_training, how):
    """The report: a cancelled 2-fold crossval kept m0001_f0.pt and m0001_f1.pt; the next
    plain training became m0001.pt beside them and every snapshot copied them."""
    from segtriage.engine.project import backup

    t = fake_training
    t.fail[1] = how                                   # fold 0 is done when fold 1 breaks
    job = t.run("crossval", {"folds": 2})
    assert job.state == {"cancel": "cancelled", "fail": "failed", "stop": "running",
                         "partial": "failed"}[how], job.error
    assert t.store.models() == [] and _weight_files(t.root) == []  # no marker left either
    t.fail.clear()
    assert t.run("train").state == "done"
    assert _weight_files(t.root) == ["m0001.pt", "m0001.pt.json"]
    snap = backup.snapshot(Project(t.root, t.cfg, t.store))
    (manifest,) = backup.ObjectStore(backup.default_destination(t.root, t.cfg)).manifests()[0]
    assert sorted(manifest["models"]["files"]) == ["m0001.pt", "m0001.pt.json"]
    assert snap["id"] == manifest["id"]


def test_a_plain_training_that_does_not_finish_leaves_no_weights(fake_training):
    t = fake_training
    assert t.run("train").state == "done"
    t.fail[None] = "cancel"          # cancelled after its weights were written (valid Dice)
    assert t.run("train").state == "cancelled"
    t.fail[None] = "fail"
    assert t.run("train").state == "failed"
    assert _weight_files(t.root) == ["m0001.pt", "m0001.pt.json"]  # the model stays
    t.fail.clear()
    assert t.run("crossval", {"folds": 2}).state == "done"
    assert _weight_files(t.root) == ["m0001.pt", "m0001.pt.json", "m0002_f0.pt",
                                     "m0002_f0.pt.json", "m0002_f1.pt", "m0002_f1.pt.json"]


def test_weights_a_killed_engine_left_are_removed_at_its_next_start(fake_training):
    """kill -9 in the middle of a crossval (its marker lists the folds) and the temp file of
    a killed weights write: neither goes into a snapshot, the next engine start deletes them.
    Weights no marker lists stay, even numbered like a model whose row names other files:
    they may come from before state.db was rebuilt (the new model 1 reusing the number)."""
    from segtriage.engine.project import backup
    from segtriage.engine.project.models_dir import remove_unfinished_weights

    t = fake_training
    assert t.run("train").state == "done"                            # model 1: m0001.pt
    d = _models_dir(t.root)
    for name in ("m0001_f0.pt", "m0001_f0.pt.json", "m0001_f1.pt",    # an older state.db's
                 "m0002_f0.pt", "m0002_f0.pt.json",                   # kill -9 in fold 1
                 ".m0002_f1.pt.k3j2x9.tmp", "m0007.pt", "notes.txt"):
        (d / name).write_bytes(b"x" * 64)
    (d / ".unfinished-job-9.json").write_text(
        json.dumps({"job": 9, "files": ["m0002_f0.pt", "m0002_f1.pt"]}))
    snap = backup.snapshot(Project(t.root, t.cfg, t.store))
    kept = ["m0001.pt", "m0001.pt.json", "m0001_f0.pt", "m0001_f0.pt.json", "m0001_f1.pt",
            "m0007.pt", "notes.txt"]
    assert snap["model_files"] == len(kept)
    with engine_process(t.root):
        pass
    assert _weight_files(t.root) == kept
    assert remove_unfinished_weights(d, t.store) == 0  # nothing more to do


def test_a_cancelled_crossval_keeps_no_fold_weights_end_to_end(trained, tmp_path):
    """The report's repro with real fastai folds: cancelled while fold 2 of 2 trains (fold 1's
    weights are written by then); nothing of it stays, and no snapshot gets it."""
    from segtriage.engine.project import backup

    root = _copy(trained, tmp_path / "cvc")
    store = Project.open(root).store
    models = _models_dir(root)
    with engine_process(root):
        jid = store.submit_job("crossval", {"folds": 2, "epochs": 8, "no_backup": True})
        wait_for(lambda: (models / "m0002_f0.pt").exists() and store.job(jid).progress > 0.55,
                 300, what="fold 1 written, fold 2 under way")
        assert store.request_cancel(jid)
        assert wait_job(store, jid, 120).state == "cancelled"
    assert [m.id for m in store.models()] == [1]
    assert _weight_files(root) == ["m0001.pt", "m0001.pt.json"]
    snap = backup.snapshot(Project(root, load_config(root), store))
    assert snap["model_files"] == 2


@pytest.mark.parametrize("kind", ["train", "crossval"])
def test_a_bad_rank_count_fails_before_the_backup(fake_training, kind):
    # it used to back the whole project up first (100+ MiB with models), then fail
    t = fake_training
    job = t.run(kind, {"launch": "external", "gpus": 1, "no_backup": False, "folds": 2})
    assert job.state == "failed" and "launch = external needs gpus" in job.error
    assert t.store.last_backup() is None and t.store.backups() == []


# -- the loop's commands against a real engine: flag, train, rollback, predict IMAGE ---------

def test_flagged_masks_stay_out_of_training_and_rollback_makes_rows_stale(trained, tmp_path,
                                                                           capsys):
    from segtriage.tui import cli

    root = _copy(trained, tmp_path / "rb")
    store = Project.open(root).store
    with engine_process(root):
        assert cli.main(["flag", str(root), "img_002.png", "img_007_mask.png"]) == 0
        assert {store.image(n).status for n in ("img_002.png", "img_007.png")} == {"flagged"}
        capsys.readouterr()
        assert cli.main(["train", str(root), "--epochs", "2"]) == 0   # follows to the end
        out = capsys.readouterr().out
        # each epoch once: the engine's own log line of an epoch is not printed beside it
        for e in (1, 2):
            assert len(re.findall(rf"^\s*epoch {e}\b.*valid Dice", out, re.M)) == 1, out
        assert not re.search(r"epoch \d+/\d+: train_loss", out), out
        m2 = store.current_model()
        assert m2.id == 2 and m2.epochs == 2
        held = {e["path"] for e in m2.manifest}
        assert held and not held & {"img_002.png", "img_007.png"}
        assert m2.n_train + m2.n_valid == 14 == len(held)
        train = max(j.id for j in store.jobs() if j.kind == "train")
        (pred,) = [j for j in store.jobs() if j.kind == "predict" and j.id > train]
        assert wait_job(store, pred.id).state == "done"
        assert all(r.model_id == 2 and not r.stale for r in store.review_rows())
        last = max(j.id for j in store.jobs())
        assert cli.main(["rollback", str(root), "1"]) == 0
        assert store.current_model_id() == 1
        rows = store.review_rows()
        # scored by model 2, which is no longer current: stale, until the engine re-predicts
        assert all(r["stale"] for r in rows if r.model_id == 2)
        (again,) = [j for j in store.jobs() if j.id > last]
        assert again.kind == "predict" and again.params == {"scope": "stale"}
        assert wait_job(store, again.id).state == "done", again.error
    assert cli.main(["rollback", str(root), "9"]) == 2
    assert "no model version 9" in capsys.readouterr().err and store.current_model_id() == 1


def test_rollback_brings_back_the_scores_of_the_model_rolled_back_to(trained, tmp_path,
                                                                      capsys):
    # no training: model 2 is model 1's weights under a new version number
    from segtriage.tui import cli

    root = _copy(trained, tmp_path / "rb2")
    store = Project.open(root).store
    m1 = store.current_model()
    v1 = {r.path: r.prob_path for r in store.review_rows()}
    store.add_model(kind="plain", arch=m1.arch, weights=m1.weights, config=m1.config,
                    epochs=1, train_loss=None, valid_loss=None, valid_dice=None,
                    n_train=m1.n_train, n_valid=m1.n_valid, manifest=m1.manifest)
    with engine_process(root):
        wait_for(lambda: all(r.model_id == 2 and not r.stale
                             for r in store.review_rows()), 120, what="rows scored by model 2")
        wait_for(lambda: not store.active_jobs(), 60, what="no job")
        assert cli.main(["rollback", str(root), "1"]) == 0
        wait_for(lambda: not store.active_jobs(), 60, what="the rollback's predict")
    rows = store.review_rows()
    assert all(r.model_id == 1 and not r.stale for r in rows)
    assert {r.path: r.prob_path for r in rows} == v1


def test_predict_named_images_is_a_job_that_scores_only_them(trained, tmp_path, capsys):
    from segtriage.tui import cli

    root = _copy(trained, tmp_path / "pi")
    store = Project.open(root).store
    before = {r.path: store.score(r.id).computed_at for r in store.review_rows()}
    with engine_process(root):
        # an image by its name, another by its mask's path from the current folder
        assert cli.main(["predict", str(root), "img_004.png",
                         str(root / "img_009_mask.png")]) == 0
        (job,) = [j for j in store.jobs() if j.kind == "predict" and j.params.get("scope")
                  == "list"]
        assert job.state == "done" and job.result["predicted"] == 2 and job.result["model"] == 1
        assert sorted(job.params["images"]) == ["img_004.png", "img_009.png"]
        assert f"job {job.id} " in capsys.readouterr().out
    after = {r.path: store.score(r.id).computed_at for r in store.review_rows()}
    assert {p for p in after if after[p] != before[p]} == {"img_004.png", "img_009.png"}
    assert cli.main(["predict", str(root), "no_such.png", "--detach"]) == 2
    assert "no_such.png" in capsys.readouterr().err
