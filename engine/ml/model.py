"""fastai training of the segmentation U-Net, and rebuilding it for inference without pickle.

Only the engine process imports this module (it imports torch; fastai is imported inside the
functions). The job runner passes file lists and callbacks; nothing here knows about SQLite.

Size policy (``mcfg.size_policy``; S = ``mcfg.image_size``, the square network input side):

* ``'resize'`` (default): every image is squished to S×S, aspect ratio not kept (fastai
  ``Resize(S, method='squish')``). Inference does the same and resizes the probability map back.
* ``'pad'``: the image is zero-padded (centred; at a random offset in training) to a square of
  its longer side, keeping the aspect ratio, then resized to S×S (fastai ``Resize(S,
  method='pad', pad_mode='zeros')``; padded mask pixels are background). Inference pads
  centred, then drops the padding from the probability map and resizes it back.
* ``'crop'``: native scale, for large images whose small objects a downscale would erase.
  Training takes a random S×S crop of each image (centre crop for validation; an image smaller
  than S is zero-padded). Inference runs the fully convolutional network on the whole image at
  native resolution (zero-padded to a multiple of 32), so memory grows with the image size.

``image_size = 0`` means S = the first image's longer side ('resize', 'pad') or shorter side
('crop'), rounded to a multiple of 32. Whatever the policy, predictions always come back at each
image's native resolution (``engine.infer``; bilinear for the probability map).

Batch size: fastai's training loader drops the last partial batch, so 13 images at batch size 8
give one optimizer step per epoch, and a U-Net given a handful of steps learns almost nothing.
The batch size is therefore lowered until an epoch has at least ``MIN_STEPS_PER_EPOCH`` steps
(never below 2 while there are 2 training images), and ``mcfg.min_steps`` (when set) raises the
number of epochs until training makes at least that many optimizer steps.

Pretrained: ``pretrained = true`` loads torchvision's cached ImageNet weights (never downloads:
a missing file is a TrainError saying how to pre-cache it) and, unlike fastai's default of a
frozen encoder, trains every layer with the same fit_one_cycle.

Augmentation (``mcfg.augment``, default on): random flips and 90° turns, small rotations,
zooms and warps, and brightness/contrast jitter on training batches only; masks follow every
geometric change. On 96 demo images (resnet18, 150 steps) it raised the valid Dice from 0.78
to 0.81, and fewer memorised pixels mean the model copies fewer wrong masks.

Precision: on a GPU, fastai's mixed precision (bf16 where supported, else fp16); on a CPU with
native bf16 (AMX / AVX512-BF16, measured faster by ``device.cpu_bf16_is_faster``) a bf16
autocast callback (fastai's own is CUDA-only), about 1.7× faster per step on the dev machine.
Weights stay fp32 either way; ``precision = "fp32"`` turns it off.

Normalisation: ImageNet mean/std is added explicitly to ``batch_tfms`` (fastai adds it only
for pretrained=True), and recorded in the sidecar so inference scales input the same way.

Persistence: ``<weights>`` is a plain ``torch.save(state_dict)`` (tensors only; loads with
``weights_only=True``: no pickle of code), beside a JSON sidecar ``<weights>.json`` with the
arch, codes, image size, size policy and normalisation. Both are written to a temp file, fsynced
and renamed (sidecar first), so a crash never leaves a corrupt or half-described model.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Sequence

import numpy as np
import torch

from ..project import imageio
from .frozen import frozen_masks
from .device import pick_device, pick_precision, set_cpu_threads

ARCHS = ("resnet18", "resnet34", "resnet50")
SIZE_POLICIES = ("resize", "crop", "pad")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MIN_STEPS_PER_EPOCH = 4
SIDECAR_FORMAT = "segtriage-unet/1"


class TrainError(RuntimeError):
    """Training cannot run or failed; the message says why and what to do."""


class TrainCancelled(Exception):
    """should_cancel() asked to stop; no weights were written."""


class ModelError(RuntimeError):
    """A weights file (or its sidecar) cannot be loaded; the message names the file."""


@dataclass
class TrainResult:
    weights: Path
    arch: str
    epochs: int
    train_loss: float | None
    valid_loss: float | None
    valid_dice: float | None       # one foreground Dice over the whole valid set, native size
    n_train: int
    n_valid: int
    valid_items: list[Path]
    history: list[dict]            # per epoch: epoch, train_loss, valid_loss, valid_dice
    device: str
    seconds: float
    batch_size: int = 0            # after lowering for small sets
    steps_per_epoch: int = 0
    image_size: int = 0            # resolved S
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # unusable pairs, why


@dataclass(frozen=True)
class InputSpec:
    """How an image becomes network input: everything inference must repeat from training."""
    image_size: int
    size_policy: str = "resize"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD


# -- small helpers ---------------------------------------------------------------------------

def _cfg(mcfg: Any, name: str, default: Any) -> Any:
    v = getattr(mcfg, name, default)
    return default if v is None else v


def arch_fn(arch: str) -> Callable:
    """The torchvision constructor for an arch name (fastai's model_meta is keyed by it)."""
    if arch not in ARCHS:
        raise TrainError(f"unknown arch {arch!r}; use one of {', '.join(ARCHS)}")
    import torchvision.models as tvm
    return getattr(tvm, arch)


def round32(n: float) -> int:
    return max(32, int(round(n / 32.0)) * 32)


def resolve_image_size(mcfg: Any, first_image_hw: tuple[int, int] | None) -> int:
    """S from the config; 0 → the first image's side (see module doc), rounded to 32."""
    size = int(_cfg(mcfg, "image_size", 128))
    if size > 0:
        return size
    if first_image_hw is None:
        raise TrainError("image_size = 0 needs at least one readable image")
    h, w = first_image_hw
    side = min(h, w) if _cfg(mcfg, "size_policy", "resize") == "crop" else max(h, w)
    return round32(side)


def split_valid(items: Sequence[tuple[Path, Path]], valid_pct: float, seed: int) -> list[int]:
    """Deterministic validation indices: the images whose hash of (seed, name) sorts first.

    Independent of the order of `items`, and an image keeps its side when others are added
    (mostly: the cut moves with the count). At least one image stays on each side when there
    are two or more images and valid_pct > 0.
    """
    n = len(items)
    if n == 0 or valid_pct <= 0:
        return []
    k = int(round(valid_pct * n))
    k = min(max(k, 1), n - 1) if n >= 2 else 0

    def key(i: int) -> tuple[str, str]:
        p = Path(items[i][0])
        return hashlib.sha256(f"{seed}:{p.name}".encode()).hexdigest(), str(p)

    return sorted(sorted(range(n), key=key)[:k])


def effective_batch_size(n_train: int, bs: int) -> int:
    """Lower bs so an epoch has >= MIN_STEPS_PER_EPOCH optimizer steps (see module doc)."""
    if n_train <= 1:
        return max(1, n_train)
    return max(2, min(bs, n_train // MIN_STEPS_PER_EPOCH))


def check_items(items: Sequence[tuple[Path, Path]], codes: Sequence[str],
                mask_names: Sequence[Path] | None = None
                ) -> tuple[list[int], list[tuple[Path, str]], tuple[int, int] | None]:
    """Decode every pair once before training: (usable indices, [(file, problem)], first HW).

    A bad file found mid-training would kill the run; found here it is skipped and reported.
    ``mask_names``: the masks' own paths where ``items`` holds frozen copies (messages name
    the person's file, not the copy).
    """
    good, bad, first = [], [], None
    for i, (img, msk) in enumerate(items):
        try:
            h, w = imageio.read_image(img).shape[:2]
            imageio.read_mask(msk, codes, expect_shape=(h, w))
        except (imageio.ImageError, imageio.MaskError, OSError, ValueError) as e:
            msg = str(e)
            if mask_names is not None:
                msg = msg.replace(str(msk), str(mask_names[i]))
            bad.append((Path(img), msg))
            continue
        good.append(i)
        if first is None:
            first = (h, w)
    return good, bad, first


# -- learner ---------------------------------------------------------------------------------

def _item_tfms(policy: str, size: int) -> list:
    from fastai.vision.all import PadMode, RandomCrop, Resize, ResizeMethod
    if policy == "resize":
        return [Resize(size, method=ResizeMethod.Squish)]
    if policy == "pad":
        return [Resize(size, method=ResizeMethod.Pad, pad_mode=PadMode.Zeros)]
    if policy == "crop":
        return [RandomCrop(size)]
    raise TrainError(f"unknown size_policy {policy!r}; use one of {', '.join(SIZE_POLICIES)}")


def _augment(on: bool) -> list:
    """Training-only batch augmentation: the eight flips/rotations by 90° (objects under a
    microscope have no up or left), small rotations, zooms and warps, and brightness/contrast
    jitter. Masks follow every geometric change (nearest-neighbour); fastai skips these
    transforms on the validation set and at inference. Fewer memorised pixels also means the
    model copies fewer wrong masks, which is what the triage relies on."""
    if not on:
        return []
    from fastai.vision.all import aug_transforms
    return aug_transforms(do_flip=True, flip_vert=True, max_rotate=15.0, min_zoom=0.9,
                          max_zoom=1.1, max_warp=0.1, max_lighting=0.2, p_affine=0.75,
                          p_lighting=0.75, pad_mode="reflection")


def _pretrained_cache(arch: str) -> Path:
    import torchvision.models as tvm
    weights = tvm.get_model_weights(arch).DEFAULT
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def check_pretrained_cached(arch: str) -> None:
    """Raise TrainError (no network attempt: it would hang or fail offline) when missing."""
    path = _pretrained_cache(arch)
    if path.is_file():
        return
    raise TrainError(
        f"pretrained = true needs the ImageNet weights of {arch}, which are not cached at {path} "
        f"and cannot be downloaded from here. Pre-cache them on a machine with internet access: "
        f"python -c \"import torchvision; torchvision.models.{arch}(weights='DEFAULT')\", then "
        f"copy {path.name} into {path.parent} on this machine (or point TORCH_HOME at a folder "
        f"holding checkpoints/{path.name}); or set pretrained = false in [model].")


def build_learner(items: Sequence[tuple[Path, Path]], codes: Sequence[str], mcfg: Any, *,
                  valid_idx: Sequence[int] | None = None, bs: int | None = None,
                  image_size: int | None = None):
    """A fastai unet_learner over (image, mask) pairs; see the module doc for the policies.

    `valid_idx` overrides the seeded split (`mcfg.valid_pct`, `mcfg.seed`); `image_size`
    overrides the resolution of `mcfg.image_size` (train passes the resolved S).
    """
    from fastai.vision.all import (DataBlock, Dice, ImageBlock, IndexSplitter, MaskBlock,
                                   Normalize, PILImage, PILMask, ProgressCallback, set_seed,
                                   unet_learner)

    items = [(Path(a), Path(b)) for a, b in items]
    if not items:
        raise TrainError("no images to train on")
    codes = list(codes)
    arch = _cfg(mcfg, "arch", "resnet34")
    fn = arch_fn(arch)
    pretrained = bool(_cfg(mcfg, "pretrained", False))
    if pretrained:
        check_pretrained_cached(arch)
    policy = _cfg(mcfg, "size_policy", "resize")
    if image_size is None:
        image_size = resolve_image_size(mcfg, imageio.read_image(items[0][0]).shape[:2])
    seed = int(_cfg(mcfg, "seed", 42))
    if valid_idx is None:
        valid_idx = split_valid(items, float(_cfg(mcfg, "valid_pct", 0.2)), seed)
    valid_idx = sorted(set(int(i) for i in valid_idx))
    if valid_idx and not (0 <= valid_idx[0] and valid_idx[-1] < len(items)):
        raise TrainError(f"valid_idx {valid_idx} out of range for {len(items)} images")
    n_train = len(items) - len(valid_idx)
    if n_train < 1:
        raise TrainError(f"no training images left after taking {len(valid_idx)} for validation")
    bs = effective_batch_size(n_train, int(bs or _cfg(mcfg, "batch_size", 8)))
    device = pick_device(_cfg(mcfg, "device", "auto"))

    # The DataBlock's items are indices: fastai transforms map over tuples element-wise, so
    # (image, mask) tuples as items would be split apart.
    def get_x(i):  # same decoding as inference (engine.imageio), not PIL's own
        return PILImage.create(imageio.read_image(items[i][0]))

    def get_y(i):  # masks may be 0/255 or 0/1 on disk: read_mask gives class indices
        return PILMask.create(imageio.read_mask(items[i][1], codes))

    set_seed(seed)  # weight init and shuffling repeat for the same seed
    dblock = DataBlock(blocks=(ImageBlock, MaskBlock(codes)), get_x=get_x, get_y=get_y,
                       splitter=IndexSplitter(valid_idx),
                       item_tfms=_item_tfms(policy, image_size),
                       batch_tfms=[*_augment(_cfg(mcfg, "augment", True)),
                                   Normalize.from_stats(IMAGENET_MEAN, IMAGENET_STD)])
    # num_workers=0: DataLoader workers make training slower on this kind of 2-core machine
    dls = dblock.dataloaders(list(range(len(items))), bs=bs, num_workers=0, device=device)
    try:
        learn = unet_learner(dls, fn, pretrained=pretrained, n_out=len(codes), metrics=[Dice()])
    except Exception as e:  # e.g. a corrupt cached checkpoint
        raise TrainError(f"cannot build the {arch} U-Net: {type(e).__name__}: {e}") from e
    if pretrained:
        learn.unfreeze()  # fit_one_cycle trains every layer, as with random init (see doc)
    learn.remove_cb(ProgressCallback)   # no console progress bars in the engine log
    learn.logger = lambda *a, **k: None  # the Recorder's per-epoch table: on_epoch has it
    learn.segtriage_spec = InputSpec(image_size, policy)
    learn.segtriage_bs = bs
    learn.segtriage_valid_idx = valid_idx
    return learn


# -- training --------------------------------------------------------------------------------

def _job_callback(epochs: int, on_progress, on_epoch, should_cancel, log):
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
                    n=epochs, t=_fmt(rec["train_loss"]), v=_fmt(rec["valid_loss"]),
                    d=_fmt(rec["valid_dice"]), epoch=rec["epoch"]))
            if on_epoch is not None:
                on_epoch(dict(rec))

    return JobCallback()


def _cpu_bf16_callback():
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


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def train(items: Sequence[tuple[Path, Path]], codes: Sequence[str], mcfg: Any, out_path: Path,
          *, epochs: int | None = None, valid_idx: Sequence[int] | None = None,
          on_progress: Callable[[float, str, float | None], None] | None = None,
          on_epoch: Callable[[dict], None] | None = None,
          should_cancel: Callable[[], bool] | None = None,
          log: Callable[[str], None] | None = None,
          fit_context: Callable[[Any], ContextManager] | None = None,
          extra_cbs: Sequence[Any] = (), save: bool = True) -> TrainResult:
    """Train a U-Net with fit_one_cycle and write its weights atomically to `out_path`.

    Unusable pairs are skipped (listed in `TrainResult.skipped` and logged). `valid_idx`
    indexes `items`. Raises TrainCancelled (nothing written) or TrainError.

    For data-parallel ranks (``engine.distributed``): `fit_context(learn)` wraps the fit (e.g.
    ``learn.distrib_ctx``), `extra_cbs` join it, and `save=False` (ranks other than 0) skips
    writing the weights and the valid Dice (``valid_dice`` is then None).
    """
    items = [(Path(a), Path(b)) for a, b in items]
    with frozen_masks(items, Path(out_path).parent) as frozen:
        return _train(frozen, [m for _, m in items], codes, mcfg, out_path, epochs=epochs,
                      valid_idx=valid_idx, on_progress=on_progress, on_epoch=on_epoch,
                      should_cancel=should_cancel, log=log, fit_context=fit_context,
                      extra_cbs=extra_cbs, save=save)


def _train(items, mask_names, codes, mcfg, out_path, *, epochs, valid_idx, on_progress,
           on_epoch, should_cancel, log, fit_context, extra_cbs, save) -> TrainResult:
    t0 = time.monotonic()
    say = log or (lambda msg: None)
    out_path = Path(out_path)
    codes = list(codes)
    good, bad, first_hw = check_items(items, codes, mask_names)
    for path, why in bad:
        say(f"skipping {path}: {why}")
    if not good:
        raise TrainError(f"none of the {len(items)} image/mask pairs is usable"
                         + (f" (first problem: {bad[0][1]})" if bad else ""))
    if valid_idx is not None:
        pos = {orig: new for new, orig in enumerate(good)}
        valid_idx = [pos[i] for i in valid_idx if i in pos]
    items = [items[i] for i in good]
    size = resolve_image_size(mcfg, first_hw)
    learn = build_learner(items, codes, mcfg, valid_idx=valid_idx, image_size=size)
    dev = pick_device(_cfg(mcfg, "device", "auto"))
    prec, cpu_bf16 = pick_precision(_cfg(mcfg, "precision", "auto"), dev), None
    if dev.type == "cuda":  # mixed precision training: weights stay fp32
        if prec == "bf16":
            learn.to_bf16()
        elif prec == "fp16":
            learn.to_fp16()
    elif dev.type == "cpu" and prec == "bf16":  # CPUs with AMX/AVX512-BF16 (~1.7× here)
        cpu_bf16 = _cpu_bf16_callback()
        learn.add_cb(cpu_bf16)
    else:
        prec = "fp32"
    threads = set_cpu_threads(dev, prec, _cfg(mcfg, "cpu_threads", 0))

    bs, steps = learn.segtriage_bs, len(learn.dls.train)
    n_epochs = int(epochs or _cfg(mcfg, "epochs", 8))
    min_steps = int(_cfg(mcfg, "min_steps", 0))
    if min_steps and steps and n_epochs * steps < min_steps:
        n_epochs = math.ceil(min_steps / steps)
        say(f"epochs raised to {n_epochs} to reach min_steps {min_steps} ({steps} steps/epoch)")
    lr = float(_cfg(mcfg, "lr", 1e-3))
    n_valid = len(learn.dls.valid_ds)
    say(f"training {learn.segtriage_spec} arch {_cfg(mcfg, 'arch', 'resnet34')} on {dev}: "
        f"{len(learn.dls.train_ds)} train / {n_valid} valid images, bs {bs}, {steps} steps "
        f"x {n_epochs} epochs, lr {lr}, {prec}"
        + (f", {threads} CPU thread{'s' if threads != 1 else ''}" if threads else ""))

    cb = _job_callback(n_epochs, on_progress, on_epoch, should_cancel, log)
    try:
        with fit_context(learn) if fit_context is not None else nullcontext():
            learn.fit_one_cycle(n_epochs, lr_max=lr, cbs=[cb, *extra_cbs])
    except (RuntimeError, ValueError, OSError) as e:
        raise TrainError(f"training failed: {type(e).__name__}: {e}") from e
    finally:
        if cpu_bf16 is not None:
            cpu_bf16._exit()  # an error fastai does not see as a cancel skips after_fit
    if cb.cancelled:
        raise TrainCancelled(f"training cancelled after {len(cb.history)} of {n_epochs} epochs")

    spec = learn.segtriage_spec
    arch = _cfg(mcfg, "arch", "resnet34")
    valid_pairs = [items[i] for i in learn.segtriage_valid_idx]
    valid_dice = None
    if save:
        if on_progress is not None:
            on_progress(1.0, "saving model", 0.0)
        save_weights(learn.model, out_path, arch=arch, codes=codes, spec=spec,
                     extra={"pretrained": bool(_cfg(mcfg, "pretrained", False)),
                            "epochs": n_epochs, "batch_size": bs, "lr": lr,
                            "train_precision": prec})
        valid_dice = _valid_dice(learn.model, valid_pairs, codes, spec, dev)
        say(f"saved {out_path}; valid Dice (native size, whole valid set) {_fmt(valid_dice)}")
    last = cb.history[-1] if cb.history else {}
    return TrainResult(
        weights=out_path, arch=arch, epochs=n_epochs, train_loss=last.get("train_loss"),
        valid_loss=last.get("valid_loss"), valid_dice=valid_dice,
        n_train=len(learn.dls.train_ds), n_valid=n_valid,
        valid_items=[p for p, _ in valid_pairs], history=cb.history, device=str(dev),
        seconds=round(time.monotonic() - t0, 3), batch_size=bs, steps_per_epoch=steps,
        image_size=spec.image_size, skipped=bad)


def _valid_dice(model, pairs, codes, spec: InputSpec, device) -> float | None:
    """One foreground Dice over the whole valid set: predictions at native size, fp32."""
    if not pairs:
        return None
    from .infer import Predictor
    pred = Predictor.from_models([model], codes, spec, device=device, precision="fp32")
    inter = total = 0
    masks = dict(pairs)
    for path, prob in pred.predict([p for p, _ in pairs]):
        if isinstance(prob, Exception):
            continue
        y = imageio.read_mask(masks[path], codes) > 0
        yhat = prob > 0.5
        inter += int(np.count_nonzero(y & yhat))
        total += int(np.count_nonzero(y)) + int(np.count_nonzero(yhat))
    return 1.0 if total == 0 else 2.0 * inter / total


# -- persistence -----------------------------------------------------------------------------

def sidecar_path(weights: Path) -> Path:
    weights = Path(weights)
    return weights.with_name(weights.name + ".json")


def save_weights(model: torch.nn.Module, out_path: Path, *, arch: str, codes: Sequence[str],
                 spec: InputSpec, extra: dict | None = None) -> None:
    """State dict (tensors only) + JSON sidecar, each via temp file, fsync and rename."""
    import io

    import fastai
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": SIDECAR_FORMAT, "arch": arch, "codes": list(codes),
            "n_classes": len(codes), "image_size": spec.image_size,
            "size_policy": spec.size_policy,
            "normalize": {"mean": list(spec.mean), "std": list(spec.std)},
            "torch": torch.__version__, "fastai": fastai.__version__,
            "weights_file": out_path.name, **(extra or {})}
    # contiguous CPU copies: loadable on any device, independent of channels_last
    sd = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    torch.save(sd, buf)
    meta["weights_sha256"] = hashlib.sha256(buf.getbuffer()).hexdigest()
    imageio.atomic_write_bytes(sidecar_path(out_path),
                               (json.dumps(meta, indent=2) + "\n").encode())
    imageio.atomic_write_bytes(out_path, buf.getvalue())


def read_sidecar(weights: Path) -> dict | None:
    """The sidecar dict, or None when there is none; ModelError when it is unreadable."""
    p = sidecar_path(weights)
    if not p.exists():
        return None
    try:
        meta = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"{p}: cannot read model sidecar: {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != SIDECAR_FORMAT:
        raise ModelError(f"{p}: not a segtriage model sidecar (format {meta.get('format')!r})"
                         if isinstance(meta, dict) else f"{p}: not a segtriage model sidecar")
    return meta


def spec_from(meta: dict | None, mcfg: Any = None) -> InputSpec:
    """The InputSpec a model was trained with: the sidecar wins, the config fills gaps."""
    meta = meta or {}
    size = int(meta.get("image_size") or _cfg(mcfg, "image_size", 128) or 128)
    norm = meta.get("normalize") or {}
    return InputSpec(size, meta.get("size_policy") or _cfg(mcfg, "size_policy", "resize"),
                     tuple(norm.get("mean", IMAGENET_MEAN)), tuple(norm.get("std", IMAGENET_STD)))


def create_model(arch: str, n_classes: int, image_size: int = 128) -> torch.nn.Module:
    """The same DynamicUnet unet_learner builds (random init; pretrained weights not needed)."""
    from fastai.vision.learner import create_unet_model
    return create_unet_model(arch_fn(arch), n_classes, (image_size, image_size), pretrained=False)


def load_model(weights: Path, arch: str, n_classes: int, device: torch.device | str = "cpu",
               *, image_size: int | None = None) -> torch.nn.Module:
    """Rebuild the U-Net in code and load the state dict with weights_only=True (no pickle)."""
    weights = Path(weights)
    meta = read_sidecar(weights) or {}
    if meta.get("arch") not in (None, arch):
        raise ModelError(f"{weights}: trained as {meta['arch']}, asked to load as {arch}")
    if meta.get("n_classes") not in (None, n_classes):
        raise ModelError(f"{weights}: trained for {meta['n_classes']} classes, asked for "
                         f"{n_classes} (codes changed since training?)")
    size = int(image_size or meta.get("image_size") or 128)
    try:
        sd = torch.load(weights, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"{weights}: model weights file is missing") from None
    except Exception as e:  # noqa: BLE001 - truncated/corrupt/not-a-state-dict files
        raise ModelError(f"{weights}: cannot load model weights ({type(e).__name__}: {e})") \
            from None
    if not isinstance(sd, dict):
        raise ModelError(f"{weights}: not a state dict")
    model = create_model(arch, n_classes, size)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise ModelError(f"{weights}: weights do not fit a {arch} U-Net with {n_classes} "
                         f"classes: {str(e).splitlines()[0]}") from None
    return model.eval().to(torch.device(device))
