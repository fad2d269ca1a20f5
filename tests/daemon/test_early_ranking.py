"""The early ranking (issue #16): a checkpoint of a running training scores the images no model
version has scored; its rows are marked, the status says which checkpoint, the final model's
predict replaces them; and the training ends with the same weights as without it."""

from __future__ import annotations

import os
import random
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from conftest import make_tiny_demo
from segtriage.engine.project import index
from segtriage.engine.project.config import load_config
from segtriage.engine.project.project import Project
from segtriage.engine.project.queries import report_rows, status_facts
from segtriage.engine.store import Store, StoreError


# -- the schedule --------------------------------------------------------------------------

def test_schedule_first_at_its_time_then_doubling_within_a_share_and_half_the_steps():
    from segtriage.engine.ml.callbacks import RankingSchedule

    s = RankingSchedule(30.0, steps=200)
    assert not s.due(29.9, 12) and s.due(30.0, 12)
    s.ran(31.0, 39.0)                 # 8 s: next at max(2·31, 8/0.2) = 62
    assert s.next_at == 62.0 and not s.due(61.9, 25) and s.due(62.0, 25)
    s.ran(62.0, 92.0)                 # a slow pass (30 s): 38 s spent, next at 38/0.2 = 190
    assert s.next_at == 190.0 and not s.due(189.0, 80) and s.due(190.0, 80)
    assert s.due(500.0, 100) and not s.due(500.0, 101)   # none after half the steps
    assert not RankingSchedule(0.0, 200).due(1e9, 1)     # 0: off
    assert not RankingSchedule(5.0, 200).due(6.0, 0)     # after a training step only
    s.stop()
    assert not s.due(1e9, 1)


# -- the store -----------------------------------------------------------------------------

def _score(store, image_id, model_id, priority):
    store.put_score(image_id, model_id, fold=None, image_sha256=store.image(image_id).img_sha256,
                    mask_sha256=store.image(image_id).mask_sha256, precision="cpu-fp32",
                    prob_path=None, category="agrees", metrics={"priority": priority})


def _model(store):
    return store.add_model(kind="plain", arch="resnet18", weights=["w.pt"], config={},
                           epochs=1, train_loss=None, valid_loss=None, valid_dice=0.8,
                           n_train=2, n_valid=1, manifest=[])


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "state.db")
    for name in ("a.png", "b.png", "c.png"):
        s.upsert_image(name, mask_path=name.replace(".png", "_mask.png"), img_sha256=name,
                       mask_sha256="m" + name)
    return s


def test_checkpoints_are_not_model_versions(store):
    c1 = store.add_checkpoint(arch="resnet18", config={}, step=10, steps=200, job_id=1)
    c2 = store.add_checkpoint(arch="resnet18", config={}, step=20, steps=200, job_id=1)
    assert (c1, c2) == (-1, -2)               # each below every other
    assert store.next_model_id() == 1
    assert _model(store) == 1                 # not rowid's 0 after the negative ids
    assert [m.id for m in store.models()] == [1] and store.current_model_id() == 1
    assert [m.id for m in store.checkpoints()] == [-2, -1]
    assert store.model(-2).info == {"step": 20, "steps": 200} and store.model(-2).weights == []
    with pytest.raises(StoreError, match="checkpoint, not a model version"):
        store.set_current_model(-1)
    with pytest.raises(StoreError, match="use add_checkpoint"):
        store.add_model(kind="checkpoint", arch="x", weights=[], config={}, epochs=1,
                        train_loss=None, valid_loss=None, valid_dice=None, n_train=0,
                        n_valid=0, manifest=[])
    assert store.add_checkpoint(arch="resnet18", config={}, step=5, steps=9, job_id=2) == -3


def test_checkpoint_scores_show_marked_only_where_no_model_scored(tmp_path, store):
    a, b, c = (store.image(n).id for n in ("a.png", "b.png", "c.png"))
    ck = store.add_checkpoint(arch="resnet18", config={}, step=40, steps=200, job_id=3)
    for i, p in ((a, 0.2), (b, 0.9), (c, 0.5)):
        _score(store, i, ck, p)
    rows = {r.path: r for r in store.list_rows()}
    assert all(r.checkpoint and r.model_id == -1 and not r.stale for r in rows.values())
    assert [r.path for r in store.list_head(2).rows] == ["b.png", "c.png"]
    assert store.checkpoint_shown() == {-1: 3}
    assert [r.path for r in store.without_model_score()] == ["a.png", "b.png", "c.png"]
    st = status_facts(store)
    assert st.model is None and st.checkpoint.id == -1 and st.checkpoint_rows == 3
    assert st.checkpoint.info["step"] == 40

    mid = _model(store)                       # the final model has scored a only
    _score(store, a, mid, 0.7)
    rows = {r.path: r for r in store.review_rows()}
    assert (rows["a.png"].model_id, rows["a.png"].checkpoint) == (1, False)
    assert (rows["b.png"].model_id, rows["b.png"].checkpoint) == (-1, True)
    assert not rows["b.png"].stale            # not stale for being a checkpoint's
    assert store.checkpoint_shown() == {-1: 2}
    assert [r.path for r in store.without_model_score()] == ["b.png", "c.png"]
    st = status_facts(store)
    assert st.model.id == 1 and st.checkpoint_rows == 2

    assert store.drop_checkpoints(keep=[-1]) == []
    assert store.drop_checkpoints() == [-1]
    assert store.checkpoints() == [] and store.scores_for_model(-1) == []
    rows = {r.path: r for r in store.list_rows()}
    assert rows["b.png"].model_id is None and not rows["b.png"].checkpoint
    assert status_facts(store).checkpoint is None


def test_report_gives_the_checkpoint_step_instead_of_a_model(tmp_path):
    root = make_tiny_demo(tmp_path / "data", count=3)
    project = Project.open(root)
    index.scan(project)
    store = project.store
    ids = [r.id for r in store.images()]
    ck = store.add_checkpoint(arch="resnet18", config={}, step=40, steps=200, job_id=3)
    _score(store, ids[0], ck, 0.5)
    mid = _model(store)
    _score(store, ids[1], mid, 0.5)
    rows = {r["image"]: r for r in report_rows(project)}
    first, second, third = (rows[store.image(i).path] for i in ids)
    assert (first["model"], first["checkpoint"]) == (None, 40)
    assert (second["model"], second["checkpoint"]) == (1, None)
    assert (third["model"], third["checkpoint"], third["category"]) == (None, None, "no-model")


# -- a ranking pass, without a model ----------------------------------------------------------

@pytest.fixture
def project(tmp_path):
    root = make_tiny_demo(tmp_path / "data", count=4, size=32)
    project = Project.open(root)
    index.scan(project)
    return project


def _context(project, job_kind="train"):
    from segtriage.engine.daemon.jobs.context import JobContext

    jid = project.store.submit_job(job_kind, {})
    job = project.store.claim_job(os.getpid())
    assert job.id == jid
    return JobContext(project, job, threading.Event())


class FakePredictor:
    """Yields P = ``value`` everywhere for each image; ``cancel_after`` images, then asks the
    job to stop (as a person's cancel would)."""
    precision_tag = "cpu-fp32"

    def __init__(self, value, ctx=None, cancel_after=None):
        self.value, self.ctx, self.cancel_after = value, ctx, cancel_after

    def predict(self, paths):
        for k, p in enumerate(paths):
            if k == self.cancel_after:
                self.ctx.store.request_cancel(self.ctx.job.id)
            h, w = np.asarray(Image.open(p)).shape[:2]
            yield p, np.full((h, w), self.value, np.float32)


def _checkpoint(project, step, predictor):
    return SimpleNamespace(step=step, steps=100, seconds=1.0, predictor=predictor,
                           valid_items=[project.root / project.store.images()[0].path])


def test_a_pass_replaces_the_previous_checkpoint_at_its_end_and_a_cancelled_one_is_dropped(
        project):
    from segtriage.engine.daemon.jobs.early import prob_dir, ranking_pass

    ctx = _context(project)
    state = project.state
    on_checkpoint = ranking_pass(ctx, project.cfg.model, lambda: 0.25)
    on_checkpoint(_checkpoint(project, 10, FakePredictor(0.9)))
    (ck1,) = project.store.checkpoints()
    assert ck1.info["step"] == 10 and ck1.info["images"] == 4 and ck1.job_id == ctx.job.id
    assert ck1.valid_dice is not None
    rows = project.store.review_rows()
    assert all(r.checkpoint and r.model_id == ck1.id for r in rows)
    assert all((state / r.prob_path).is_file() for r in rows)
    assert (state / prob_dir(ck1.id)).is_dir() and prob_dir(ck1.id) == f"preds/m{ck1.id}"
    job = project.store.job(ctx.job.id)
    assert job.message.startswith("early ranking (checkpoint at step 10 of 100): ")
    assert job.progress == 0.25

    on_checkpoint(_checkpoint(project, 20, FakePredictor(0.1)))
    (ck2,) = project.store.checkpoints()                    # the first one is dropped
    assert ck2.id == ck1.id - 1 and ck2.info["step"] == 20
    assert all(r.model_id == ck2.id for r in project.store.review_rows())
    assert not (state / prob_dir(ck1.id)).exists()

    # a pass the job's cancel cuts short: its rows go, the previous ranking stays whole
    on_checkpoint(_checkpoint(project, 30, FakePredictor(0.5, ctx, cancel_after=2)))
    assert [m.id for m in project.store.checkpoints()] == [ck2.id]
    assert all(r.model_id == ck2.id for r in project.store.review_rows())

    # nothing left to rank (a model version scored every image): no pass, no row
    mid = _model(project.store)
    for r in project.store.images():
        _score(project.store, r.id, mid, 0.3)
    on_checkpoint(_checkpoint(project, 40, FakePredictor(0.5)))
    assert [m.id for m in project.store.checkpoints()] == [ck2.id]


# -- the real training: same weights, and the final model's rows replace the checkpoint's -------

def _tiny_train_cfg(root: Path, early_s: float) -> None:
    (root / "segtriage.toml").write_text(
        "[model]\narch = \"resnet18\"\nimage_size = 32\nbatch_size = 8\nepochs = 2\n"
        f"min_steps = 0\nprecision = \"fp32\"\ndevice = \"cpu\"\ncpu_threads = 1\n"
        f"early_ranking_s = {early_s}\n"
        "[backup]\nbefore_train = false\n")


@pytest.fixture
def fires_at(monkeypatch):
    """The schedule fires after exactly these training steps (a 4-step epoch: step 4 is the
    last batch before the validation and the next epoch's shuffle)."""
    from segtriage.engine.ml.callbacks import RankingSchedule

    steps: list[int] = []
    monkeypatch.setattr(RankingSchedule, "due", lambda self, elapsed, step: step in steps)
    return steps


@pytest.mark.slow
def test_the_final_weights_are_bit_identical_with_and_without_checkpoints(tmp_path, fires_at):
    """The evidence that the final model is as good as before: the same small training (CPU,
    fp32) with a ranking pass after steps 1 and 4 ends with exactly the weights it ends with
    without one, even though the pass draws random numbers of its own (they are given back)."""
    import torch

    from segtriage.engine.ml.train import train
    from segtriage.engine.project.config import ModelConfig

    root = make_tiny_demo(tmp_path / "data", count=16, size=64)
    items = sorted((p, p.with_name(p.stem + "_mask.png")) for p in root.glob("img_*.png")
                   if not p.stem.endswith("_mask"))
    mcfg = ModelConfig(arch="resnet18", image_size=32, batch_size=8, epochs=2, min_steps=0,
                       precision="fp32", device="cpu", early_ranking_s=1.0, cpu_threads=1)
    passes: list[tuple[int, int, dict]] = []

    def on_checkpoint(ck):
        torch.rand(3), np.random.rand(3), random.random()   # a careless pass
        probs = {p.name: pr for p, pr in ck.predictor.predict([p for p, _ in items])}
        passes.append((ck.step, ck.steps, probs))

    def run(out, **kw):
        res = train(items, ["naw", "aye"], mcfg, out, **kw)
        return res, torch.load(out, weights_only=True)

    fires_at[:] = [1, 4]
    with_res, with_sd = run(tmp_path / "with.pt", on_checkpoint=on_checkpoint)
    plain_res, plain_sd = run(tmp_path / "plain.pt")
    assert [(s, n) for s, n, _ in passes] == [(1, 8), (4, 8)]   # 13 train images, bs 3
    assert with_res.steps_per_epoch == 4 and len(passes[0][2]) == 16
    # the model moved between the checkpoints: the passes saw different weights
    assert any(not np.array_equal(passes[0][2][k], passes[1][2][k]) for k in passes[0][2])
    assert with_sd.keys() == plain_sd.keys()
    assert all(torch.equal(with_sd[k], plain_sd[k]) for k in plain_sd), \
        [k for k in plain_sd if not torch.equal(with_sd[k], plain_sd[k])][:5]
    assert with_res.valid_dice == plain_res.valid_dice
    assert [h["train_loss"] for h in with_res.history] == \
        [h["train_loss"] for h in plain_res.history]


@pytest.mark.slow
def test_checkpoint_rows_are_marked_then_replaced_by_the_final_models(tmp_path, fires_at):
    from segtriage.engine.daemon import jobs
    from segtriage.engine.daemon.jobs.early import prob_dir

    root = make_tiny_demo(tmp_path / "data", count=8, size=64)
    _tiny_train_cfg(root, 1.0)
    project = Project.open(root)
    index.scan(project)
    store = project.store
    fires_at[:] = [1, 3]
    ctx = _context(project, "train")
    jobs.run_job(ctx)
    assert store.job(ctx.job.id).state == "done", store.job(ctx.job.id).error
    logs = [e.data["message"] for e in store.events(job_id=ctx.job.id, kind="log")]
    assert sum("early ranking of 8 images from the checkpoint at step" in m
               for m in logs) == 2, logs
    # model v1 exists (current) but has scored nothing: every row shows the checkpoint's
    (ck,) = store.checkpoints()                       # step 3's replaced step 1's
    assert ck.id == -2 and ck.info["step"] == 3 and ck.info["steps"] == 6  # 6 train, bs 2
    assert store.current_model_id() == 1 and [m.id for m in store.models()] == [1]
    rows = store.list_rows()
    assert len(rows := list(rows)) == 8
    assert all(r.checkpoint and r.model_id == -2 and r.priority is not None for r in rows)
    st = status_facts(store)
    assert st.model.id == 1 and st.checkpoint.id == -2 and st.checkpoint_rows == 8
    assert (project.state / prob_dir(-2)).is_dir() and not (project.state / prob_dir(-1)).exists()

    (pred,) = [j for j in store.jobs() if j.kind == "predict" and j.active]
    job = store.claim_job(os.getpid())
    assert job.id == pred.id
    jobs.run_job(jobs.JobContext(project, job, threading.Event()))
    assert store.job(job.id).state == "done", store.job(job.id).error
    assert store.job(job.id).result["checkpoints_dropped"] == 1
    rows = list(store.list_rows())
    assert all(not r.checkpoint and r.model_id == 1 and not r.stale for r in rows)
    assert store.checkpoints() == [] and status_facts(store).checkpoint is None
    assert not (project.state / prob_dir(-2)).exists()
    assert load_config(root).model.early_ranking_s == 1.0
