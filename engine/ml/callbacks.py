"""fastai callbacks a training job uses, one concern each: job progress, epoch figures and
the cancel check (``job_callback``); bf16 autocast on CPUs (``cpu_bf16_callback``); the early
ranking's checkpoints (``early_ranking_callback``, ``RankingSchedule``, ``untouched``).

fastai is imported when a callback is made: the engine stays light until it trains.
"""

from __future__ import annotations

import math
import random
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

def job_callback(epochs: int, on_progress, on_epoch, should_cancel, log):
    """A fastai Callback: progress per batch, epoch figures, cancel checked before each batch."""
    from fastai.callback.core import Callback, CancelFitException

    class JobCallback(Callback):
        order = 60  # after the Recorder (50), so after_epoch sees this epoch's values
        VALID_WEIGHT = 0.35  # a validation batch costs about a third of a training batch

        def before_fit(self):
            self.t0 = time.monotonic()
            self.cancelled = False
            self.history: list[dict] = []
            self.n_tr = len(self.dls.train)
            self.n_va = len(self.dls.valid) if self.dls.valid is not None else 0
            self.total = epochs * (self.n_tr + self.VALID_WEIGHT * self.n_va) or 1.0
            self.done = 0.0

        def before_batch(self):
            if should_cancel is not None and should_cancel():
                self.cancelled = True
                raise CancelFitException()

        def after_batch(self):
            if self.training:
                self.done += 1
                loss = float(self.learn.smooth_loss)
                msg = (f"epoch {self.epoch + 1}/{epochs} batch {self.iter + 1}/{self.n_tr} "
                       f"loss {loss:.3g}")
            else:
                self.done += self.VALID_WEIGHT
                msg = f"epoch {self.epoch + 1}/{epochs} validating {self.iter + 1}/{self.n_va}"
            if on_progress is not None:
                frac = min(self.done / self.total, 1.0)
                el = time.monotonic() - self.t0
                eta = el / frac * (1 - frac) if frac > 0 else None
                on_progress(frac, msg, eta)

        def after_epoch(self):
            vals = list(self.recorder.values[-1]) if self.recorder.values else []
            vals += [None] * (3 - len(vals))
            num = lambda v: None if v is None or not math.isfinite(float(v)) else float(v)  # noqa
            rec = {"epoch": self.epoch + 1, "train_loss": num(vals[0]),
                   "valid_loss": num(vals[1]), "valid_dice": num(vals[2])}
            self.history.append(rec)
            if log is not None:
                log("epoch {epoch}/{n}: train_loss {t} valid_loss {v} valid_dice {d}".format(
                    n=epochs, t=fmt(rec["train_loss"]), v=fmt(rec["valid_loss"]),
                    d=fmt(rec["valid_dice"]), epoch=rec["epoch"]))
            if on_epoch is not None:
                on_epoch(dict(rec))

    return JobCallback()


def cpu_bf16_callback():
    """bf16 autocast for CPU training. fastai's MixedPrecision only knows CUDA; bf16 has fp32's
    range, so no loss scaling is needed and autocast around forward + loss is all of it."""
    from fastai.callback.core import Callback
    from fastai.torch_core import to_float

    class CpuBf16(Callback):
        order = 10  # where fastai's MixedPrecision sits: before every metric and our progress

        def before_batch(self):
            self._exit()
            self._ac = torch.autocast("cpu", dtype=torch.bfloat16)
            self._ac.__enter__()

        def after_pred(self):
            self.learn.pred = to_float(self.pred)  # loss and metrics in fp32

        def after_loss(self):
            self._exit()

        # autocast state is per thread: never leave it on after a cancel
        after_cancel_batch = after_cancel_fit = after_fit = after_loss

        def _exit(self):
            ac, self._ac = getattr(self, "_ac", None), None
            if ac is not None:
                ac.__exit__(None, None, None)

    return CpuBf16()


class RankingSchedule:
    """When a training stops for an early ranking (docs/scoring.md, "Early ranking").

    The first checkpoint is due after the training batch that ends ``first_s`` seconds into
    the fit; the next ones at twice the time of the one before, and never before the ranking
    passes so far are at most ``SHARE`` of the time. None is due once half the steps are done:
    the final model is then nearer than the next checkpoint would be worth. Time, not steps,
    sets the first one: a person waits in seconds, and a step costs 0.05 s on one machine and
    10 s on another. ``first_s = 0``: never.
    """

    SHARE = 0.2

    def __init__(self, first_s: float, steps: int):
        self.next_at = float(first_s)
        self.steps = int(steps)
        self.spent = 0.0

    def due(self, elapsed: float, step: int) -> bool:
        return 0 < self.next_at <= elapsed and 0 < step and 2 * step <= self.steps

    def ran(self, start: float, end: float) -> None:
        """A ranking pass ran from ``start`` to ``end`` (seconds into the fit)."""
        self.spent += max(0.0, end - start)
        self.next_at = max(2.0 * start, self.spent / self.SHARE)

    def stop(self) -> None:
        self.next_at = 0.0


@contextmanager
def untouched(model: torch.nn.Module) -> Iterator[None]:
    """Whatever runs inside leaves the training as it found it: every random generator
    (python, numpy, torch's CPU and CUDA ones) is put back, each module's train/eval flag
    restored, and autocast is checked to be as it was. The early ranking runs a separate
    model, so batch-norm statistics and weights are not in reach; this guards the rest."""
    py, npy, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    modes = [(m, m.training) for m in model.modules()]
    autocast = {d: torch.is_autocast_enabled(d) for d in ("cpu", "cuda")}
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        for m, training in modes:
            m.training = training
        now = {d: torch.is_autocast_enabled(d) for d in ("cpu", "cuda")}
        if now != autocast:  # a context left open: a defect, never a silent change
            raise RuntimeError(f"autocast changed during an early ranking: {autocast} → {now}")


@dataclass
class Checkpoint:
    """What an early ranking gets: the model as it is at ``step`` of ``steps``, ready to
    predict (``predictor``: an ``infer.Predictor`` over a copy of the weights)."""
    step: int
    steps: int
    seconds: float          # into the fit
    predictor: object
    valid_items: list       # the image paths the training validates on


def early_ranking_callback(first_s: float, make_predictor: Callable[[torch.nn.Module], object],
                           on_checkpoint: Callable[[Checkpoint], None],
                           valid_items: list, log: Callable[[str], None] | None = None):
    """A fastai Callback that, after a training batch where ``RankingSchedule`` says so, hands
    ``on_checkpoint`` a Checkpoint. ``make_predictor(model)`` builds the predictor once, over a
    model of its own; each checkpoint copies the training weights into it. Inside
    ``untouched``: the fit goes on exactly as without it (tests/daemon/test_early_ranking.py). An
    error in a ranking pass ends the early ranking, not the training."""
    from fastai.callback.core import Callback

    say = log or (lambda msg: None)

    class EarlyRanking(Callback):
        order = 70  # after the job's progress (60): its message is this step's

        def before_fit(self):
            self.t0 = time.monotonic()
            self.schedule = RankingSchedule(first_s, self.n_epoch * len(self.dls.train))
            self.predictor = None

        def after_batch(self):
            if not self.training:
                return
            start = time.monotonic() - self.t0
            if not self.schedule.due(start, self.learn.train_iter):
                return
            try:
                with untouched(self.learn.model), torch.no_grad():
                    if self.predictor is None:
                        self.predictor = make_predictor(self.learn.model)
                    self.predictor.models[0].load_state_dict(self.learn.model.state_dict())
                    on_checkpoint(Checkpoint(self.learn.train_iter, self.schedule.steps, start,
                                             self.predictor, list(valid_items)))
            except Exception as e:  # noqa: BLE001 - the training matters more
                say(f"early ranking stopped: {type(e).__name__}: {e}")
                self.schedule.stop()
            self.schedule.ran(start, time.monotonic() - self.t0)

        def after_fit(self):
            self.predictor = None  # its model's memory back before the weights are saved

    return EarlyRanking()


# the line train() logs after each epoch (beside on_epoch): a job shows the epoch once, from
# its epoch event, and leaves this line to the engine log
EPOCH_LINE = re.compile(r"^epoch \d+/\d+: train_loss ")


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


