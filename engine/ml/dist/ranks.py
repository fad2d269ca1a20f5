"""The rank side of a distributed job:
``python -m segtriage.engine.ml.dist.ranks train|predict --run-dir DIR`` under ``torchrun``.

The engine writes the run folder (``engine.runfolder`` describes every file) and starts
``torchrun --nproc_per_node N -m segtriage.engine.ml.dist.ranks ...``; on a cluster the same entry
point runs under torchrun's rendezvous (``--nnodes``, ``--rdzv-backend c10d``,
``--rdzv-endpoint``), see docs/scaling.md. A rank never opens the SQLite database.

train: every rank builds the same learner as ``ml.train.train`` and trains under
``learn.distrib_ctx(sync_bn=False, cpu=...)`` (DDP through Accelerate; gloo on CPU ranks, nccl
on GPUs, one rank per GPU). Each batch rank 0 decides whether to stop (cancel file, stalled
engine heartbeat) and broadcasts it, so all ranks leave the fit at the same step and none waits
forever in a gradient all-reduce. The per-epoch valid loss and Dice are summed over all ranks
(fastai's own metrics see one rank's shard, with padding duplicates). Rank 0 alone writes the
weights (atomically, via ``ml.weights.save_weights``), computes the valid Dice over the whole valid
set at native size exactly as ``ml.train.train`` does, and writes ``result.json``.

predict: rank r predicts items ``r::N`` (``runfolder.shard``), writes the probability PNGs into
``<state>/preds`` and one JSON line per image into ``preds-rank-<r>.jsonl``; the engine scores
them and writes the rows. No collective is needed: each rank checks the cancel file itself.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import re
import socket
import sys
import time
import traceback
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

from ...project.config import ModelConfig
from ...project.scoring import probs
from .runfolder import RunFolder, set_parent_death_signal, shard

PROGRESS_EVERY_S = 0.25   # rank 0's progress lines: a few a second is what clients show
CHECK_EVERY_S = 0.5       # how often the cancel file and heartbeat are read
RANK_LOCAL_EPOCH_LINE = re.compile(r"^epoch \d+/\d+: train_loss ")


def dist_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) without it."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


class StopCheck:
    """Should this rank stop? The cancel file, or an engine heartbeat that stopped changing.

    Files are read at most every CHECK_EVERY_S; `collective=True` (training) makes rank 0's
    answer everyone's through a broadcast at every call, so all ranks stop at the same step.
    """

    def __init__(self, run: RunFolder, rank: int, world: int, *, timeout_s: float,
                 collective: bool):
        self.run, self.rank, self.world = run, rank, world
        self.timeout_s = timeout_s
        self.collective = collective and world > 1
        self.reason: str | None = None
        self._beat = run.heartbeat()
        self._beat_seen = time.monotonic()
        self._next = 0.0
        self.calls = 0

    def _local(self) -> str | None:
        now = time.monotonic()
        if self.reason is not None or now < self._next:
            return self.reason
        self._next = now + CHECK_EVERY_S
        why = self.run.cancel_reason()
        if why:
            return why
        beat = self.run.heartbeat()
        if beat != self._beat:
            self._beat, self._beat_seen = beat, now
        elif now - self._beat_seen > self.timeout_s:
            return f"engine heartbeat stalled for {self.timeout_s:.0f} s (engine gone?)"
        return None

    def __call__(self) -> bool:
        self.calls += 1
        why = self._local() if (self.rank == 0 or not self.collective) else None
        if self.collective:
            import torch
            import torch.distributed as dist

            flag = torch.tensor([1 if why else 0], dtype=torch.int32)
            dist.broadcast(flag, 0)  # CPU tensor: gloo on CPU ranks, gloo side of cpu:gloo,cuda:nccl
            if flag.item() and why is None:
                why = "stopped by rank 0"
        if why:
            self.reason = why
        return self.reason is not None


def _valid_reducer(world: int):
    """Callback: valid loss and Dice summed over all ranks, padding duplicates dropped.

    fastai's DistributedDL pads the valid set to a multiple of the world size by repeating
    items; a sample's global position (rank's offset + position in its slice) ≥ n is such a pad.
    """
    import torch
    import torch.nn.functional as F
    from fastai.callback.core import Callback

    class ValidReducer(Callback):
        order = 55
        names = ("inter", "union", "loss_sum", "pixels", "images")

        def before_fit(self):
            self.epochs: list[dict] = []   # per epoch: this rank's sums and the reduced totals
            self.train_batches = 0

        def before_validate(self):
            self.sums = torch.zeros(5, dtype=torch.float64)

        def _keep(self, n: int) -> torch.Tensor:
            dl = self.learn.dl
            if not all(hasattr(dl, a) for a in ("i", "n", "n_padded", "rank", "world_size")):
                return torch.ones(n, dtype=torch.bool)
            start = dl.rank * dl.n_padded // dl.world_size + dl.i - n  # dl.i counts this batch
            return torch.arange(start, start + n) < dl.n

        def after_batch(self):
            if self.training:
                self.train_batches += 1
                return
            pred = self.learn.pred.detach().float()
            targ = self.learn.yb[0].detach().as_subclass(torch.Tensor).long()
            keep = self._keep(len(targ)).to(pred.device)
            pred, targ = pred[keep], targ[keep]
            if not len(targ):
                return
            yhat = pred.argmax(dim=1)          # fastai's Dice: argmax, foreground = class 1
            loss = F.cross_entropy(pred, targ, reduction="sum")
            s = torch.tensor([float((yhat * targ).sum()), float((yhat + targ).sum()),
                              float(loss), float(targ.numel()), float(len(targ))],
                             dtype=torch.float64)
            self.sums += s

        def after_validate(self):
            total = self.sums.clone()
            if world > 1:
                import torch.distributed as dist
                dist.all_reduce(total)  # every rank validates the same number of batches
            loc = dict(zip(self.names, self.sums.tolist()))
            tot = dict(zip(self.names, total.tolist()))
            self.epochs.append({
                "local": loc, "total": tot,
                "valid_loss": tot["loss_sum"] / tot["pixels"] if tot["pixels"] else None,
                "valid_dice": 2 * tot["inter"] / tot["union"] if tot["union"] else None})

    return ValidReducer()


# -- train -----------------------------------------------------------------------------------

def _device_for(spec: dict, local_rank: int) -> str:
    """'cuda:<local rank>' or 'cpu'. 'auto' (external launches: the engine's host may have no
    GPU while the ranks' hosts do) is decided here."""
    import torch

    dev = spec.get("device") or "auto"
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    if dev == "cuda":
        torch.cuda.set_device(local_rank)
        return f"cuda:{local_rank}"
    return "cpu"


def _init_group(device: str, world: int, timeout_s: float) -> str | None:
    if world <= 1:
        return None
    import torch.distributed as dist
    # cpu:gloo alongside nccl: the stop flag is a CPU tensor on every kind of rank
    backend = "cpu:gloo,cuda:nccl" if device.startswith("cuda") else "gloo"
    dist.init_process_group(backend=backend,
                            timeout=datetime.timedelta(seconds=timeout_s))
    return backend


def run_train(run: RunFolder, spec: dict, root: Path, rank: int, world: int, local_rank: int,
              marker: dict) -> dict:
    from .. import train as training
    from ..callbacks import fmt
    from ..fastai_compat import patch_distributed_for_cpu

    device = _device_for(spec, local_rank)
    marker.update(device=device, backend=_init_group(device, world,
                                                     spec.get("collective_timeout_s", 1800)))
    if device == "cpu":
        marker["fastai_patched"] = patch_distributed_for_cpu()
    main = rank == 0
    state = run.state
    # "cuda" is this rank's GPU: _device_for made cuda:<local rank> the current device
    mcfg = replace(ModelConfig(**spec["model"]), device=device.split(":")[0])
    items = [(root / a, root / b) for a, b in spec["items"]]
    out = state / "models" / spec["out"]
    stop = StopCheck(run, rank, world, timeout_s=float(spec.get("heartbeat_timeout_s", 60)),
                     collective=True)
    reducer = _valid_reducer(world)
    last = [0.0]

    def on_progress(frac: float, msg: str, eta: float | None) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S or frac >= 1.0:
            last[0] = now
            run.event("progress", fraction=frac, message=msg, eta=eta)

    def on_epoch(rec: dict) -> None:
        # fastai's figures are rank 0's shard only: replace them with the all-rank sums
        red = reducer.epochs[-1] if reducer.epochs else {}
        rec = {**rec, "valid_loss": red.get("valid_loss"), "valid_dice": red.get("valid_dice"),
               "n_valid": int(red.get("total", {}).get("images", 0)), "ranks": world}
        run.event("epoch", data=rec)
        run.event("log", message="epoch {epoch}: train_loss {t} valid_loss {v} valid_dice {d} "
                  "(valid figures over all {w} ranks)".format(
                      epoch=rec["epoch"], t=fmt(rec["train_loss"]),
                      v=fmt(rec["valid_loss"]), d=fmt(rec["valid_dice"]), w=world))

    def say(msg: str) -> None:
        if RANK_LOCAL_EPOCH_LINE.match(msg):
            return  # training.train's epoch line has rank 0's shard figures; on_epoch logs sums
        run.event("log", message=msg)

    def fit_context(learn):
        if world <= 1:
            return nullcontext()
        return learn.distrib_ctx(sync_bn=False, cpu=device == "cpu")

    try:
        res = training.train(items, spec["codes"], mcfg, out, epochs=spec.get("epochs"),
                          valid_idx=spec.get("valid_idx"),
                          on_progress=on_progress if main else None,
                          on_epoch=on_epoch if main else None, should_cancel=stop,
                          log=say if main else None, fit_context=fit_context,
                          extra_cbs=[reducer], save=main)
    except training.TrainCancelled as e:
        marker.update(state="cancelled", reason=stop.reason, message=str(e))
        if main:
            run.event("cancelled", reason=stop.reason)
        return marker
    finally:
        marker.update(train_batches=getattr(reducer, "train_batches", 0), stop_checks=stop.calls,
                      valid_sums=[e["local"] for e in getattr(reducer, "epochs", [])])
    if main:
        steps = res.steps_per_epoch
        rel = lambda p: _rel(root, p)  # noqa: E731
        # the history's valid figures from the all-rank sums, as the epoch events had them
        red = reducer.epochs + [{}] * (len(res.history) - len(reducer.epochs))  # no valid set
        history = [{**h, "valid_loss": e.get("valid_loss"), "valid_dice": e.get("valid_dice")}
                   for h, e in zip(res.history, red)]
        run.write_result({
            "weights": spec["out"], "arch": res.arch, "epochs": res.epochs,
            "train_loss": res.train_loss,
            "valid_loss": history[-1]["valid_loss"] if history else None,
            "valid_dice": res.valid_dice, "n_train": res.n_train, "n_valid": res.n_valid,
            "valid_items": [rel(p) for p in res.valid_items], "history": history,
            "device": f"{res.device} ×{world} ranks" if world > 1 else res.device,
            "seconds": res.seconds, "batch_size": res.batch_size,
            "steps_per_epoch": math.ceil(steps / world) if steps else steps,
            "image_size": res.image_size, "skipped": [[rel(p), why] for p, why in res.skipped],
            "epoch_valid_dice": reducer.epochs[-1]["valid_dice"] if reducer.epochs else None,
            "ranks": world})
    marker.update(state="done")
    return marker


def _rel(root: Path, p) -> str:
    try:
        return Path(p).relative_to(root).as_posix()
    except ValueError:
        return str(p)


# -- predict ---------------------------------------------------------------------------------

def run_predict(run: RunFolder, spec: dict, root: Path, rank: int, world: int,
                local_rank: int, marker: dict) -> dict:
    from .. import infer

    device = _device_for(spec, local_rank)
    marker["device"] = device
    state = run.state
    mcfg = ModelConfig(**spec["model"])
    mine = shard(spec["items"], rank, world)
    marker["assigned"] = len(mine)
    predictor = infer.Predictor([state / "models" / w for w in spec["weights"]], spec["arch"],
                                spec["codes"], mcfg, device=device)
    marker["precision"] = predictor.precision_tag
    stop = StopCheck(run, rank, world, timeout_s=float(spec.get("heartbeat_timeout_s", 60)),
                     collective=False)
    out_name = run.preds_name(rank)
    mid = spec["model_id"]
    bs = predictor.default_batch_size
    done = 0
    groups: dict = {}
    for it in mine:  # one fold model per group (out-of-fold scoring of crossval models)
        groups.setdefault(it.get("fold"), []).append(it)
    with probs.ProbWriter() as writer:
        for fold, grp in groups.items():
            by_path = {str(root / it["path"]): it for it in grp}
            pending: list[dict] = []
            for path, prob in predictor.predict(list(map(Path, by_path)), fold=fold,
                                                batch_size=bs):
                it = by_path[str(path)]
                rec = {"id": it["id"], "path": it["path"], "fold": fold,
                       "precision": predictor.precision_tag, "t": round(time.time(), 3)}
                if isinstance(prob, Exception):
                    rec["error"] = str(prob)
                else:
                    rel = probs.prob_relpath(it.get("sha") or f"id{it['id']}", mid, fold)
                    writer.save(prob, state / rel)
                    rec["prob"] = rel
                pending.append(rec)
                if len(pending) >= bs:
                    done += _flush(run, writer, out_name, pending)
                    if stop():
                        break
            done += _flush(run, writer, out_name, pending)
            if stop.reason:
                break
    marker["predicted"] = done
    if stop.reason:
        marker.update(state="cancelled", reason=stop.reason)
    else:
        marker["state"] = "done"
    return marker


def _flush(run: RunFolder, writer, name: str, pending: list[dict]) -> int:
    """PNGs on disk first, then their lines: the engine reads a PNG as soon as it sees one."""
    if not pending:
        return 0
    writer.flush()
    failed = {str(p) for p, _ in writer.errors}
    n = 0
    for rec in pending:
        if rec.get("prob") and any(f.endswith(rec["prob"]) for f in failed):
            rec = {**rec, "error": f"cannot write {rec.pop('prob')}"}
        run.append(name, rec)
        n += 1
    pending.clear()
    return n


# -- entry point -----------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m segtriage.engine.ml.dist.ranks",
                                 description="one rank of a distributed segtriage job "
                                             "(run under torchrun; see docs/scaling.md)")
    ap.add_argument("kind", choices=["train", "predict"])
    # --run-dir, not --run: torchrun's own parser would take "--run" for its --run-path
    ap.add_argument("--run-dir", "--run", dest="run", required=True, type=Path,
                    help="the job's run folder (written by the engine)")
    ap.add_argument("--root", type=Path, default=None,
                    help="the data folder as mounted on this host (default: as in the spec)")
    a = ap.parse_args(argv)
    set_parent_death_signal()  # the torchrun agent killed -9: this rank goes with it
    rank, world, local_rank = dist_env()
    run = RunFolder(a.run)
    marker = {"rank": rank, "world": world, "local_rank": local_rank, "pid": os.getpid(),
              "host": socket.gethostname(), "state": "running", "started": time.time()}
    try:
        spec = run.spec()
        if spec.get("kind") != a.kind:
            raise ValueError(f"{run.path}: the spec is for a {spec.get('kind')!r} job, "
                             f"not {a.kind!r}")
        root = (a.root or Path(spec["root"])).resolve()
        run.write_rank(rank, marker)
        if world > 1 and os.environ.get("OMP_NUM_THREADS"):
            import torch
            torch.set_num_threads(max(1, int(os.environ["OMP_NUM_THREADS"])))
        fn = run_train if a.kind == "train" else run_predict
        fn(run, spec, root, rank, world, local_rank, marker)
        rc = 0
    except Exception as e:  # noqa: BLE001 - reported through the run folder, then exit 1
        marker.update(state="failed", error=f"{type(e).__name__}: {e}",
                      traceback=traceback.format_exc()[-4000:])
        if rank == 0:
            try:
                run.event("failed", error=marker["error"])
            except OSError:
                pass
        print(f"rank {rank}: {marker['error']}", file=sys.stderr)
        rc = 1
    marker["finished"] = time.time()
    try:
        run.write_rank(rank, marker)
    except OSError as e:
        print(f"rank {rank}: cannot write its marker: {e}", file=sys.stderr)
    _teardown()
    return rc


def _teardown() -> None:
    try:
        import torch.distributed as dist
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    except Exception:  # noqa: BLE001 - exiting anyway
        pass


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # everything is written (markers atomically, lines flushed to the kernel); skipping the
    # interpreter's teardown of torch and fastai saves ~2 s per rank and job
    os._exit(code)
