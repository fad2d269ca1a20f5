"""fastai callbacks a training job uses, one concern each: job progress, epoch figures and
the cancel check (``job_callback``); bf16 autocast on CPUs (``cpu_bf16_callback``).

fastai is imported when a callback is made: the engine stays light until it trains.
"""

from __future__ import annotations

import math
import re
import time

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


# the line train() logs after each epoch (beside on_epoch): a job shows the epoch once, from
# its epoch event, and leaves this line to the engine log
EPOCH_LINE = re.compile(r"^epoch \d+/\d+: train_loss ")


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


