"""Scale-out on torchrun: 2 CPU ranks over gloo stand in for 2 GPUs (CI has no GPU).

Cheap unit tests first (shard split, the fastai CPU patch, the crossval plan, the launcher's
pool / failure / cancel handling with tiny child processes); then, through the real engine
process, a 2-rank training + 2-rank sharded prediction (one module fixture), and a kill -9 +
restart + cancel of a 2-rank training.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from conftest import TINY_CONFIG, engine_process, kill_tree, make_tiny_demo, wait_for, wait_job
from segtriage.engine.daemon.jobs import dist, launch
from segtriage.engine.project.config import load_config
from segtriage.engine.ml.dist.runfolder import JsonlTail, RunFolder, shard
from segtriage.engine.daemon.jobs import JobCancelled
from segtriage.engine.project.project import Project


# -- unit: shard split, run folder -------------------------------------------------------------

def test_shard_split_is_disjoint_covering_and_balanced():
    items = list(range(17))
    parts = [shard(items, r, 3) for r in range(3)]
    assert parts == [[0, 3, 6, 9, 12, 15], [1, 4, 7, 10, 13, 16], [2, 5, 8, 11, 14]]
    assert sorted(sum(parts, [])) == items
    assert shard(items, 0, 1) == items
    assert shard([1, 2], 1, 4) == [2] and shard([1, 2], 3, 4) == []  # more ranks than items
    for bad in ((2, 2), (-1, 2), (0, 0)):
        with pytest.raises(ValueError):
            shard(items, *bad)


def test_jsonl_tail_reads_only_complete_lines(tmp_path):
    p = tmp_path / "x.jsonl"
    tail = JsonlTail(p)
    assert tail.read() == []  # no file yet
    p.write_bytes(b'{"a": 1}\n{"b": ')
    assert tail.read() == [{"a": 1}]
    with open(p, "ab") as f:
        f.write(b'2}\nnot json\n')
    assert tail.read() == [{"b": 2}] and tail.bad == 1
    assert tail.read() == []


def test_run_folder_state_and_prune(tmp_path):
    state = tmp_path / ".segtriage"
    for i in range(1, 6):
        RunFolder.create(state, i)
    fold = RunFolder.create(state, 5, "fold-1")
    assert fold.state == state.resolve() and fold.path.parent.name == "job-5"
    from segtriage.engine.ml.dist.runfolder import prune_runs
    prune_runs(state / "runs", keep=2)
    assert sorted(p.name for p in (state / "runs").iterdir()) == ["job-4", "job-5"]


def test_ranks_find_the_shared_state_through_a_symlinked_runs_folder(tmp_path):
    """docs/scaling.md: state.db on the engine's local disk, runs/ models/ preds/ symlinked
    to shared storage; a rank given the run folder writes to the shared models/ and preds/."""
    shared, local = tmp_path / "shared", tmp_path / "local" / ".segtriage"
    for sub in ("runs", "models", "preds"):
        (shared / sub).mkdir(parents=True)
    local.mkdir(parents=True)
    for sub in ("runs", "models", "preds"):
        (local / sub).symlink_to(shared / sub)
    run = RunFolder.create(local, 7)
    assert run.state == shared.resolve()
    assert (run.state / "models").resolve() == (local / "models").resolve()


def test_auto_device_is_decided_by_the_rank():
    from segtriage.engine.ml.dist.ranks import _device_for

    import torch
    want = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert _device_for({"device": "auto"}, 0) == want
    assert _device_for({"device": "cpu"}, 1) == "cpu"


# -- unit: the fastai CPU patch ------------------------------------------------------------------

def test_fastai_cpu_patch_is_applied_only_when_needed():
    import fastai
    from fastai.distributed import DistributedDL

    from segtriage.engine.ml import fastai_compat

    class Broken:  # the 2.8.12 code: .cuda() whatever the backend
        def _broadcast(self, t, rank):
            t = LongTensor(t).cuda()  # noqa: F821
            return t

    class Fixed:
        def _broadcast(self, t, rank):
            return t

    assert fastai_compat.cpu_patch_needed(Broken)
    assert fastai_compat.patch_distributed_for_cpu(Broken) is True
    assert Broken._broadcast is fastai_compat._broadcast_cpu_safe
    assert fastai_compat.patch_distributed_for_cpu(Broken) is False  # idempotent
    assert not fastai_compat.cpu_patch_needed(Fixed)
    assert fastai_compat.patch_distributed_for_cpu(Fixed) is False
    assert Fixed._broadcast is not fastai_compat._broadcast_cpu_safe
    # the installed fastai: 2.8.12 needs it (when this fails, fastai fixed it: drop the patch)
    if fastai.__version__ == "2.8.12":
        assert (fastai_compat.cpu_patch_needed(DistributedDL)
                or DistributedDL._broadcast is fastai_compat._broadcast_cpu_safe)


def test_patched_broadcast_works_on_a_cpu_gloo_group(tmp_path):
    """The patched function itself, on a real (one-process) gloo group: no CUDA involved."""
    code = textwrap.dedent(f"""
        import torch.distributed as dist
        from segtriage.engine.ml.fastai_compat import _broadcast_cpu_safe
        dist.init_process_group("gloo", init_method="file://{tmp_path}/store", rank=0,
                                world_size=1)
        print(_broadcast_cpu_safe(None, [3, 1, 2], 0))
        dist.destroy_process_group()
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[3, 1, 2]"


# -- unit: dispatch plans -------------------------------------------------------------------------

def test_crossval_plan_and_gpu_groups():
    assert dist.crossval_plan(1, 3, "cuda") == (1, 1)      # single process loop
    assert dist.crossval_plan(2, 3, "cpu") == (1, 2)       # CPU ranks: folds in turn
    assert dist.crossval_plan(2, 3, "cuda") == (2, 1)      # 2 folds at a time
    assert dist.crossval_plan(3, 3, "cuda") == (3, 1)      # all folds side by side
    assert dist.crossval_plan(8, 3, "cuda") == (3, 2)      # each fold on 2 GPUs
    assert launch.gpu_groups(3, 2, list("01234567")) == ["0,1", "2,3", "4,5"]
    assert launch.gpu_groups(2, 1, ["3", "5"]) == ["3", "5"]  # CUDA_VISIBLE_DEVICES kept
    with pytest.raises(ValueError):
        launch.gpu_groups(3, 1, ["0", "1"])


def test_gpus_come_from_the_job_then_the_config(tiny_demo):
    cfg = load_config(tiny_demo)
    ctx = SimpleNamespace(cfg=cfg, job=SimpleNamespace(params={}))
    assert dist.job_gpus(ctx) == 1
    ctx.job.params["gpus"] = 2
    assert dist.job_gpus(ctx) == 2
    ctx.job.params["gpus"] = 0
    with pytest.raises(ValueError, match=r"model.gpus = 0 is not allowed; expected an integer "
                                         r"≥ 1 and ≤ 1024"):
        dist.job_gpus(ctx)
    ctx.job.params["gpus"] = "2"  # the check of [model] gpus: no quiet conversion
    with pytest.raises(ValueError, match=r"model.gpus = '2' is not allowed"):
        dist.job_gpus(ctx)
    ctx.job.params.update(gpus=1, launch="external")  # would silently run here, single
    with pytest.raises(ValueError, match="total number of ranks"):
        dist.job_gpus(ctx)


def test_too_few_images_for_the_ranks_is_a_clear_error():
    with pytest.raises(ValueError, match="too few for 4 ranks.*--gpus 1 or fewer"):
        dist.train_one(FakeCtx(), [{}] * 7, SimpleNamespace(), Path("m.pt"), gpus=4,
                            span=(0.0, 1.0), label="")


def test_launch_command_needs_no_path_lookup_and_no_ambiguous_flag(tmp_path):
    cmd = launch.torchrun_cmd("train", tmp_path, 2)
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--run" not in cmd and cmd[-2:] == ["--run-dir", str(tmp_path)]
    assert launch.rank_env("cpu", 2, {"X": "1"})["X"] == "1"


# -- unit: the launcher (pool, failure, cancel, escalation) with tiny child processes -----------

class FakeCtx:
    def __init__(self, cancel_after: int | None = None):
        self.stopping = threading.Event()
        self.calls = 0
        self.cancel_after = cancel_after
        self.messages: list = []

    def should_cancel(self) -> bool:
        self.calls += 1
        return self.cancel_after is not None and self.calls > self.cancel_after

    def check(self) -> None:
        if self.should_cancel():
            raise JobCancelled()

    def progress(self, *a, **k):
        self.messages.append(a)

    def event(self, *a, **k):
        pass


CHILD = textwrap.dedent("""
    import json, os, sys, time
    run, pool, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    me = os.path.join(pool, str(os.getpid()))
    open(me, "w").close()
    seen = len(os.listdir(pool))
    json.dump({"slot": os.environ.get("SLOT"), "seen": seen},
              open(os.path.join(run, "child.json"), "w"))
    if mode == "fail":
        json.dump({"rank": 0, "world": 1, "state": "failed", "error": "ValueError: boom"},
                  open(os.path.join(run, "rank-0.json"), "w"))
        sys.exit(1)
    deadline = time.time() + (0.3 if mode == "ok" else 60)
    while time.time() < deadline:
        if mode == "cancel" and os.path.exists(os.path.join(run, "cancel")):
            break
        time.sleep(0.05)
    os.unlink(me)
""")


def _child_launches(tmp_path: Path, modes: list[str]) -> list:
    pool = tmp_path / "pool"
    pool.mkdir()
    out = []
    for i, mode in enumerate(modes):
        run = RunFolder.create(tmp_path / "state", 1, f"part-{i}")
        out.append(launch.Launch(run, [sys.executable, "-c", CHILD, str(run.path), str(pool),
                                          mode],
                                    env_for_slot=lambda s: {**os.environ, "SLOT": str(s)}))
    return out


def test_supervise_runs_at_most_slots_at_once(tmp_path):
    launches = _child_launches(tmp_path, ["ok", "ok", "ok"])
    ticks = []
    launch.supervise(FakeCtx(), launches, on_tick=lambda: ticks.append(1), slots=2)
    seen = [json.loads(la.run.file("child.json").read_text()) for la in launches]
    assert all(la.rc == 0 for la in launches) and ticks
    assert max(s["seen"] for s in seen) <= 2
    assert {s["slot"] for s in seen} <= {"0", "1"}
    assert seen[0]["slot"] != seen[1]["slot"]  # the first two run side by side
    assert all(la.run.heartbeat() is not None for la in launches)


def test_supervise_reports_the_failing_ranks_own_error(tmp_path):
    launches = _child_launches(tmp_path, ["fail"])
    with pytest.raises(RuntimeError, match="rank 0: ValueError: boom"):
        launch.supervise(FakeCtx(), launches, on_tick=lambda: None)


def test_supervise_cancel_writes_the_cancel_file_and_ranks_stop(tmp_path):
    launches = _child_launches(tmp_path, ["cancel"])
    with pytest.raises(JobCancelled):
        launch.supervise(FakeCtx(cancel_after=3), launches, on_tick=lambda: None)
    assert launches[0].run.cancel_reason() == "cancel"
    assert launches[0].rc == 0 and launches[0].term_sent is None  # stopped by itself


def test_supervise_terminates_ranks_that_ignore_the_cancel(tmp_path, monkeypatch):
    monkeypatch.setattr(launch, "CANCEL_GRACE_S", 0.3)
    launches = _child_launches(tmp_path, ["hang"])
    with pytest.raises(JobCancelled):
        launch.supervise(FakeCtx(cancel_after=3), launches, on_tick=lambda: None)
    assert launches[0].term_sent is not None and launches[0].proc.poll() is not None


def test_external_ranks_are_done_when_every_marker_says_so(tmp_path):
    run = RunFolder.create(tmp_path, 1)
    assert launch._external_rc(run) is None
    run.write_rank(0, {"rank": 0, "world": 2, "state": "done"})
    assert launch._external_rc(run) is None  # rank 1 has not reported
    run.write_rank(1, {"rank": 1, "world": 2, "state": "running"})
    assert launch._external_rc(run) is None
    run.write_rank(1, {"rank": 1, "world": 2, "state": "done"})
    assert launch._external_rc(run) == 0
    run.write_rank(1, {"rank": 1, "world": 2, "state": "failed"})
    assert launch._external_rc(run) == 1


def test_supervise_waits_for_external_ranks_and_a_cancel_ends_the_wait(tmp_path):
    run = RunFolder.create(tmp_path, 1)
    la = launch.Launch(run, None)  # ranks started by SLURM / on another host

    def ranks_report():
        run.write_rank(1, {"rank": 1, "world": 2, "state": "done"})
        run.write_rank(0, {"rank": 0, "world": 2, "state": "done"})

    t = threading.Timer(0.5, ranks_report)
    t.start()
    launch.supervise(FakeCtx(), [la], on_tick=lambda: None)
    t.join()
    assert la.rc == 0 and run.heartbeat() is not None
    # cancelled while no rank has started: nothing to wait for
    run2 = RunFolder.create(tmp_path, 2)
    with pytest.raises(JobCancelled):
        launch.supervise(FakeCtx(cancel_after=2), [launch.Launch(run2, None)],
                         on_tick=lambda: None)
    assert run2.cancel_reason() == "cancel"


def test_cli_passes_gpus_and_launch_to_the_jobs(monkeypatch, tmp_path):
    from segtriage.tui import cli
    from segtriage.tui.cli.commands import jobs

    got = []
    # params may be a function of the store (predict IMAGE … resolves paths after the scan)
    monkeypatch.setattr(jobs, "submit_and_follow", lambda root, kind, params, detach: got.append(
        (kind, params(None) if callable(params) else params)) or 0)
    monkeypatch.setattr(jobs, "folder", lambda d, **k: Path(d))
    for argv in (["train", str(tmp_path), "--gpus", "2"],
                 ["crossval", str(tmp_path), "--gpus", "4", "--folds", "3"],
                 ["predict", str(tmp_path), "--all", "--gpus", "2", "--launch", "external"],
                 ["train", str(tmp_path)]):
        assert cli.main(argv) == 0
    assert got == [("train", {"gpus": 2}), ("crossval", {"folds": 3, "gpus": 4}),
                   ("predict", {"scope": "all", "gpus": 2, "launch": "external"}),
                   ("train", {})]


def _image_row(iid: int, path: str):
    from segtriage.engine.store.rows import ImageRow

    return ImageRow(id=iid, path=path, mask_path=None, width=8, height=8, img_size=64,
                    img_mtime_ns=0, img_sha256=f"sha{iid}", mask_size=None, mask_mtime_ns=None,
                    mask_sha256=None, status="no-mask", error=None, added_at=0.0,
                    updated_at=0.0, reviewed_at=None, kept_status=None, kept_mask_sha=None)


def test_an_image_no_rank_reported_is_named_with_the_run_folder(tmp_path):
    by_id = {3: _image_row(3, "a.png"), 5: _image_row(5, "sub/b.png"),
             9: _image_row(9, "c.png")}
    dist.check_all_reported(by_id, {3, 5, 9}, tmp_path)  # every image reported: no error
    with pytest.raises(RuntimeError) as e:
        dist.check_all_reported(by_id, {3, 9}, tmp_path)
    assert str(e.value) == (f"the ranks reported 2 of 3 images (first missing: sub/b.png); "
                            f"see {tmp_path}")


def test_follow_up_predict_keeps_local_gpus_only():
    job = lambda **p: SimpleNamespace(job=SimpleNamespace(params=p))  # noqa: E731
    assert dist.follow_up_params(job()) == {}
    assert dist.follow_up_params(job(gpus=4)) == {"gpus": 4}
    assert dist.follow_up_params(job(gpus=4, launch="external")) == {}


def test_stop_check_sees_the_cancel_file_and_a_stalled_heartbeat(tmp_path):
    from segtriage.engine.ml.dist import ranks

    run = RunFolder.create(tmp_path, 1)
    run.beat(1)
    stop = ranks.StopCheck(run, 0, 1, timeout_s=3600, collective=False)
    assert not stop()
    run.request_cancel("cancel")
    stop._next = 0.0
    assert stop() and stop.reason == "cancel"
    run2 = RunFolder.create(tmp_path, 2)
    run2.beat(1)
    stalled = ranks.StopCheck(run2, 0, 1, timeout_s=0.0, collective=False)
    stalled._beat_seen -= 1.0
    assert stalled() and "heartbeat" in stalled.reason


# -- through the real engine: 2 CPU ranks -----------------------------------------------------

GPUS2_CONFIG = TINY_CONFIG.replace("[model]\n", "[model]\ngpus = 2\n")


def make_gpus2_demo(root: Path) -> Path:
    make_tiny_demo(root)
    (root / "segtriage.toml").write_text(GPUS2_CONFIG)
    return root


@pytest.fixture(autouse=True)
def one_thread_per_rank(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def _run_of(root: Path, job_id: int) -> RunFolder:
    return RunFolder(load_config(root).state_path(root) / "runs" / f"job-{job_id}")


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@pytest.fixture(scope="module")
def trained2(tmp_path_factory):
    """A tiny demo trained on 2 CPU ranks, then predicted by 2 ranks ([model] gpus = 2)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("OMP_NUM_THREADS", "1")
    root = make_gpus2_demo(tmp_path_factory.mktemp("dist") / "data")
    store = Project.open(root).store
    try:
        with engine_process(root):
            jid = store.submit_job("train", {"epochs": 1, "no_backup": True})
            job = wait_job(store, jid)
            assert job.state == "done", job.error
            (pred,) = [j for j in store.jobs() if j.kind == "predict"]
            pjob = wait_job(store, pred.id)
            assert pjob.state == "done", pjob.error
    finally:
        mp.undo()
    return SimpleNamespace(root=root, train=job, predict=pjob)


@pytest.mark.slow
def test_both_ranks_trained_and_one_model_version_was_written(trained2):
    root, store = trained2.root, Project.open(trained2.root).store
    run = _run_of(root, trained2.train.id)
    ranks = run.ranks()
    assert sorted(ranks) == [0, 1]
    assert {r["state"] for r in ranks.values()} == {"done"}
    assert {r["world"] for r in ranks.values()} == {2}
    assert ranks[0]["pid"] != ranks[1]["pid"]
    assert {r["backend"] for r in ranks.values()} == {"gloo"}
    assert all(r["fastai_patched"] for r in ranks.values())
    assert ranks[0]["train_batches"] == ranks[1]["train_batches"] > 0
    # exactly one model version: one row, one weights file (+ its sidecar), no temp files
    (m,) = store.models()
    assert m.id == 1 and store.current_model_id() == 1 and m.kind == "plain"
    models = load_config(root).state_path(root) / "models"
    assert sorted(p.name for p in models.iterdir()) == ["m0001.pt", "m0001.pt.json"]
    assert m.weights == ["m0001.pt"]
    assert "2 ranks" in m.info["device"]
    assert store.events(kind="epoch")


@pytest.mark.slow
def test_valid_dice_is_the_whole_valid_sets(trained2):
    """Recomputed here from the saved model over every valid image, and per epoch from the
    ranks' own sums (each valid image counted once, on one rank)."""
    from segtriage.engine.project import imageio
    from segtriage.engine.ml.infer import Predictor

    root, store = trained2.root, Project.open(trained2.root).store
    cfg = load_config(root)
    (m,) = store.models()
    valid = [root / p for p in m.info["valid_items"]]
    assert len(valid) == m.n_valid == 3
    pred = Predictor(cfg.state_path(root) / "models" / "m0001.pt", m.arch, cfg.project.codes,
                     cfg.model, device="cpu", precision="fp32")
    inter = total = 0
    for path, prob in pred.predict(valid):
        y = imageio.read_mask(path.with_name(path.stem + "_mask.png"), cfg.project.codes) > 0
        yhat = prob > 0.5
        inter += int(np.count_nonzero(y & yhat))
        total += int(np.count_nonzero(y)) + int(np.count_nonzero(yhat))
    assert m.valid_dice == pytest.approx(2 * inter / total if total else 1.0, abs=1e-12)
    # the epoch figure: all-reduced sums of both ranks, padding duplicates dropped
    ranks = _run_of(root, trained2.train.id).ranks()
    sums = [ranks[r]["valid_sums"][-1] for r in (0, 1)]
    assert sum(s["images"] for s in sums) == m.n_valid
    assert all(s["images"] >= 1 for s in sums)  # both ranks validated a part
    (ep,) = [e.data for e in store.events(kind="epoch")]
    want = 2 * sum(s["inter"] for s in sums) / sum(s["union"] for s in sums)
    assert ep["valid_dice"] == pytest.approx(want, abs=1e-12) and ep["n_valid"] == 3
    assert m.info["history"][-1]["valid_dice"] == pytest.approx(want, abs=1e-12)


@pytest.mark.slow
def test_sharded_prediction_scored_every_image_exactly_once(trained2):
    root, store = trained2.root, Project.open(trained2.root).store
    cfg = load_config(root)
    state = cfg.state_path(root)
    res = trained2.predict.result
    assert res["ranks"] == 2 and res["predicted"] == 16 and res["errors"] == 0
    run = _run_of(root, trained2.predict.id)
    ranks = run.ranks()
    assert sorted(ranks) == [0, 1] and {r["state"] for r in ranks.values()} == {"done"}
    lines = {r: [json.loads(x) for x in run.file(run.preds_name(r)).read_text().splitlines()]
             for r in (0, 1)}
    ids = {r: [x["id"] for x in lines[r]] for r in (0, 1)}
    assert len(ids[0]) == ranks[0]["predicted"] == 8 and len(ids[1]) == 8  # both ranks worked
    assert not set(ids[0]) & set(ids[1])  # disjoint shards
    images = {r.id for r in store.images()}
    assert sorted(ids[0] + ids[1]) == sorted(images)  # every image once
    scores = store.scores_for_model(1)
    assert sorted(s.image_id for s in scores) == sorted(images)
    t0, t1 = trained2.predict.started_at, trained2.predict.finished_at
    for s in scores:
        assert s.error is None and s.model_id == 1
        assert t0 <= s.computed_at <= t1  # written by this job, by the engine
        assert (state / s.prob_path).exists()
    rows = store.review_rows()
    assert len(rows) == 16 and all(r.model_id == 1 and not r.stale for r in rows)
    # a rank's stored map is what the saved model predicts (same precision rule)
    from segtriage.engine.ml.infer import Predictor

    pred = Predictor(state / "models" / "m0001.pt", "resnet18", cfg.project.codes, cfg.model,
                     device="cpu")
    row = store.image("img_004.png")
    (_, prob), = list(pred.predict([root / "img_004.png"]))
    stored = np.asarray(Image.open(state / store.score(row.id).prob_path),
                        dtype=np.float32) / 255
    assert pred.precision_tag == store.score(row.id).precision
    assert np.abs(stored - prob).max() <= 1 / 255 + 1e-6


@pytest.mark.slow
def test_kill_9_takes_the_ranks_along_and_cancel_stops_both(tmp_path):
    root = make_gpus2_demo(tmp_path / "data")
    store = Project.open(root).store
    models = load_config(root).state_path(root) / "models"
    with engine_process(root) as p:
        jid = store.submit_job("train", {"epochs": 40, "no_backup": True})
        wait_for(lambda: store.job(jid).progress > 0.001, 240, what="2-rank training under way")
        ranks = _run_of(root, jid).ranks()
        pids = [ranks[r]["pid"] for r in (0, 1)]
        assert all(_alive(x) for x in pids)
        kill_tree(p.pid)
        p.wait()
    # the parent-death signal reaches torchrun, which stops both ranks
    wait_for(lambda: not any(_alive(x) for x in pids), 90, what="ranks gone after kill -9")
    assert store.job(jid).state == "running"  # nobody has noticed yet
    with engine_process(root):
        wait_for(lambda: store.job(jid).state == "interrupted", 60, what="interrupted mark")
        (again,) = [j for j in store.jobs() if j.params.get("resumed_from") == jid]
        wait_for(lambda: store.job(again.id).progress > 0.001, 240,
                 what="re-queued 2-rank training under way")
        assert store.request_cancel(again.id)
        assert wait_job(store, again.id, 180).state == "cancelled"
        ranks = _run_of(root, again.id).ranks()
    assert sorted(ranks) == [0, 1]
    assert {r["state"] for r in ranks.values()} == {"cancelled"}
    assert ranks[0]["reason"] == "cancel" and ranks[1]["reason"] == "stopped by rank 0"
    # both left the fit at the same step: rank 0 decided, the broadcast told rank 1
    assert ranks[0]["train_batches"] == ranks[1]["train_batches"]
    assert ranks[0]["stop_checks"] == ranks[1]["stop_checks"]
    assert not any(_alive(r["pid"]) for r in ranks.values())
    assert store.models() == [] and store.current_model_id() is None
    assert models.is_dir()  # the engine made it at start: the checks below look at something
    assert not any(models.glob("*.pt"))
    assert not any(p.name.endswith(".tmp") for p in models.iterdir())
