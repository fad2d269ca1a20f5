"""The fastai U-Net learner: data block, size policies, batch size, augmentation.

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
image's native resolution (``engine.ml.infer``; bilinear for the probability map).

Batch size: fastai's training loader drops the last partial batch, so 13 images at batch size 8
give one optimizer step per epoch, and a U-Net given a handful of steps learns almost nothing.
The batch size is therefore lowered until an epoch has at least ``MIN_STEPS_PER_EPOCH`` steps
(never below 2 while there are 2 training images), and ``mcfg.min_steps`` (when set) raises the
number of epochs until training makes at least that many optimizer steps.

Pretrained: ``pretrained = true`` loads torchvision's cached ImageNet weights (never downloads:
a missing file is a TrainError saying how to pre-cache it) and, unlike fastai's default of a
frozen encoder, trains every layer with the same fit_one_cycle.

Precision: on a GPU, fastai's mixed precision (bf16 where supported, else fp16); on a CPU with
native bf16 (AMX / AVX512-BF16, measured faster by ``device.cpu_bf16_is_faster``) a bf16
autocast callback (fastai's own is CUDA-only), about 1.7× faster per step on the dev machine.
Weights stay fp32 either way; ``precision = "fp32"`` turns it off.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import torch

from ..project import imageio
from ..project.config import ModelConfig
from .device import pick_device
from .weights import IMAGENET_MEAN, IMAGENET_STD, InputSpec, ModelError, arch_fn

SIZE_POLICIES = ("resize", "crop", "pad")
MIN_STEPS_PER_EPOCH = 4


class TrainError(RuntimeError):
    """Training cannot run or failed; the message says why and what to do."""


def round32(n: float) -> int:
    return max(32, int(round(n / 32.0)) * 32)


def resolve_image_size(mcfg: ModelConfig, first_image_hw: tuple[int, int] | None) -> int:
    """S from the config; 0 → the first image's side (see module doc), rounded to 32."""
    size = int(mcfg.image_size)
    if size > 0:
        return size
    if first_image_hw is None:
        raise TrainError("image_size = 0 needs at least one readable image")
    h, w = first_image_hw
    side = min(h, w) if mcfg.size_policy == "crop" else max(h, w)
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


def build_learner(items: Sequence[tuple[Path, Path]], codes: Sequence[str], mcfg: ModelConfig,
                  *,
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
    arch = mcfg.arch
    try:
        fn = arch_fn(arch)
    except ModelError as e:
        raise TrainError(str(e)) from None
    pretrained = bool(mcfg.pretrained)
    if pretrained:
        check_pretrained_cached(arch)
    policy = mcfg.size_policy
    if image_size is None:
        image_size = resolve_image_size(mcfg, imageio.read_image(items[0][0]).shape[:2])
    seed = int(mcfg.seed)
    if valid_idx is None:
        valid_idx = split_valid(items, float(mcfg.valid_pct), seed)
    valid_idx = sorted(set(int(i) for i in valid_idx))
    if valid_idx and not (0 <= valid_idx[0] and valid_idx[-1] < len(items)):
        raise TrainError(f"valid_idx {valid_idx} out of range for {len(items)} images")
    n_train = len(items) - len(valid_idx)
    if n_train < 1:
        raise TrainError(f"no training images left after taking {len(valid_idx)} for validation")
    bs = effective_batch_size(n_train, int(bs or mcfg.batch_size))
    device = pick_device(mcfg.device)

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
                       batch_tfms=[*_augment(mcfg.augment),
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


