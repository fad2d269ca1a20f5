"""Batched inference at native resolution, and the stored probability maps.

Speed (see NOTES and bench/inference.py): one batched forward under ``torch.inference_mode``,
channels_last, autocast (bf16 on a CPU with native bf16, bf16/fp16 on CUDA), no DataLoader
workers (slower on 2 cores), batches of 8 on the CPU. Images are decoded one chunk at a time and
results are yielded and dropped, so memory stays flat for 100k images.

Input preparation repeats training exactly (``engine.ml.learner`` documents the size policies):
the same decoder (``imageio.read_image``), the same Pillow bilinear resize and fastai's padding
geometry, ``/255`` then the sidecar's mean/std. The probability map of the object class is
mapped back to the image's native size (bilinear; padding removed).
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..project import imageio
from ..project.config import ModelConfig
from .device import autocast_dtype, pick_device, pick_precision, precision_tag, set_cpu_threads
from .weights import InputSpec, ModelError, load_model, read_sidecar, spec_from


class PredictError(RuntimeError):
    """A forward pass failed for an image; the message names it."""


def pad_geometry(w: int, h: int, size: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """fastai's Resize(method='pad') geometry for validation: (square side (w, h), top-left).

    Copied formula for formula (float rounding included), so inference pads exactly like
    training did.
    """
    m = w / size if w / size > h / size else h / size
    cp = (int(m * size), int(m * size))
    tl = (int(0.5 * (w - cp[0])), int(0.5 * (h - cp[1])))
    return cp, tl


class Predictor:
    """One model, or K fold models, ready for batched prediction of P(object) per pixel."""

    def __init__(self, weights: Sequence[Path] | Path, arch: str, codes: Sequence[str],
                 mcfg: ModelConfig | None = None, *, device: torch.device | str | None = None,
                 precision: str | None = None):
        paths = [Path(weights)] if isinstance(weights, (str, Path)) else [Path(w) for w in weights]
        if not paths:
            raise ModelError("Predictor needs at least one weights file")
        mcfg = mcfg or ModelConfig()
        dev = pick_device(str(device) if device is not None else mcfg.device)
        metas = [read_sidecar(p) for p in paths]
        spec = spec_from(metas[0], mcfg)
        for p, meta in zip(paths[1:], metas[1:]):
            if spec_from(meta, mcfg) != spec:
                raise ModelError(f"{p}: fold model was trained with different input settings "
                                 f"({spec_from(meta, mcfg)}) from {paths[0]} ({spec})")
        models = [load_model(p, arch, len(codes), dev, image_size=spec.image_size)
                  for p in paths]
        self._setup(models, codes, spec, dev,
                    precision if precision is not None else mcfg.precision)
        set_cpu_threads(dev, self.precision, mcfg.cpu_threads)
        self.weights = paths

    @classmethod
    def from_models(cls, models: Sequence[torch.nn.Module], codes: Sequence[str],
                    spec: InputSpec, *, device: torch.device | str = "cpu",
                    precision: str = "fp32") -> "Predictor":
        """Wrap models already in memory (e.g. a fastai learner's, right after training)."""
        self = cls.__new__(cls)
        dev = pick_device(str(device))
        self._setup([m.to(dev) for m in models], codes, spec, dev, precision)
        self.weights = []
        return self

    def _setup(self, models, codes, spec: InputSpec, dev: torch.device, precision: str) -> None:
        self.codes = list(codes)
        self.spec = spec
        self.device = dev
        self.precision = pick_precision(precision, dev)
        self.precision_tag = precision_tag(dev, self.precision)
        self.models = [m.eval().to(memory_format=torch.channels_last) for m in models]
        self._mean = torch.tensor(spec.mean, dtype=torch.float32, device=dev).view(1, -1, 1, 1)
        self._std = torch.tensor(spec.std, dtype=torch.float32, device=dev).view(1, -1, 1, 1)
        self.default_batch_size = 32 if dev.type == "cuda" else 8

    def __len__(self) -> int:
        return len(self.models)

    # -- the public loop ----------------------------------------------------------------------

    def predict(self, paths: Iterable[Path], *, batch_size: int | None = None,
                fold: int | None = None) -> Iterator[tuple[Path, np.ndarray | Exception]]:
        """Yield (path, P(object) float32 (H, W) at native size) in input order, or
        (path, exception) for an image that cannot be read: the run goes on.

        `fold=k` uses fold model k alone; `fold=None` averages all models' probabilities.
        """
        if fold is None:
            models = self.models
        elif 0 <= fold < len(self.models):
            models = [self.models[fold]]
        else:
            raise ValueError(f"fold {fold} out of range: this predictor has {len(self.models)} "
                             "model(s)")
        bs = max(1, int(batch_size or self.default_batch_size))
        it = iter(paths)
        while chunk := [Path(p) for p in itertools.islice(it, bs)]:
            yield from self._predict_chunk(chunk, models, bs)

    def _predict_chunk(self, chunk: list[Path], models, bs: int):
        out: list[Any] = [None] * len(chunk)
        groups: dict[tuple, list] = {}
        for i, path in enumerate(chunk):
            try:
                img = imageio.read_image(path)
            except Exception as e:  # noqa: BLE001 - reported per image, the run goes on
                out[i] = e
                continue
            x, geo = self._prepare(img)
            groups.setdefault(x.shape, []).append((i, x, geo))
        for shape, grp in groups.items():
            # native-size inputs ('crop') of large images: keep a batch's pixels bounded
            per = max(1, (bs * self.spec.image_size ** 2) // (shape[0] * shape[1]))
            for k in range(0, len(grp), per):
                part = grp[k:k + per]
                try:
                    probs = self._forward(np.stack([x for _, x, _ in part]), models)
                    for (i, _, geo), pr in zip(part, probs):
                        out[i] = self._restore(pr, geo)
                except RuntimeError as e:  # e.g. out of memory on one huge image
                    for i, _, _ in part:
                        out[i] = PredictError(f"{chunk[i]}: forward pass failed: {e}")
        for path, res in zip(chunk, out):
            yield path, res

    # -- steps --------------------------------------------------------------------------------

    def _prepare(self, img: np.ndarray) -> tuple[np.ndarray, tuple]:
        """(H, W, 3) uint8 → network input (h, w, 3) uint8, and what _restore needs."""
        h, w = img.shape[:2]
        s = self.spec.image_size
        policy = self.spec.size_policy
        if policy == "resize":
            if (h, w) != (s, s):
                img = np.asarray(Image.fromarray(img).resize((s, s), Image.BILINEAR))
            return img, ("resize", h, w)
        if policy == "pad":
            cp, tl = pad_geometry(w, h, s)
            c = (max(tl[0], 0), max(tl[1], 0))
            img = img[c[1]:min(tl[1] + cp[1], h), c[0]:min(tl[0] + cp[0], w)]
            p = (max(-tl[0], 0), max(-tl[1], 0))
            f = (max(cp[0] - w + tl[0], 0), max(cp[1] - h + tl[1], 0))
            if any(p) or any(f):
                img = np.pad(img, ((p[1], f[1]), (p[0], f[0]), (0, 0)))
            if img.shape[:2] != (s, s):
                img = np.asarray(Image.fromarray(img).resize((s, s), Image.BILINEAR))
            return img, ("pad", h, w, cp, tl)
        if policy == "crop":  # native scale, whole image, zero-padded to a multiple of 32
            ph, pw = -h % 32, -w % 32
            if ph or pw:
                img = np.pad(img, ((0, ph), (0, pw), (0, 0)))
            return img, ("crop", h, w)
        raise ValueError(f"unknown size_policy {policy!r}")

    def _forward(self, batch: np.ndarray, models) -> torch.Tensor:
        """(B, h, w, 3) uint8 → (B, h, w) P(object), float32 on the device."""
        dtype = autocast_dtype(self.precision)
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device, non_blocking=True)
            # NHWC memory permuted to NCHW *is* channels_last; same arithmetic as fastai's
            # IntToFloatTensor + Normalize
            x = x.permute(0, 3, 1, 2).float().div_(255.0)
            x = ((x - self._mean) / self._std).contiguous(memory_format=torch.channels_last)
            acc = None
            for m in models:
                with torch.autocast(self.device.type, dtype=dtype or torch.bfloat16,
                                    enabled=dtype is not None):
                    logits = m(x)
                p = torch.softmax(logits.float(), dim=1)
                fg = p[:, 1] if p.shape[1] == 2 else 1.0 - p[:, 0]
                acc = fg if acc is None else acc + fg
            return acc / len(models) if len(models) > 1 else acc

    def _restore(self, pr: torch.Tensor, geo: tuple) -> np.ndarray:
        """A probability map in network geometry → float32 (H, W) at native size."""
        kind, h, w = geo[:3]
        with torch.inference_mode():
            if kind == "resize":
                if pr.shape != (h, w):
                    pr = F.interpolate(pr[None, None], size=(h, w), mode="bilinear",
                                       align_corners=False)[0, 0]
            elif kind == "pad":
                cp, tl = geo[3], geo[4]
                if pr.shape != (cp[1], cp[0]):
                    pr = F.interpolate(pr[None, None], size=(cp[1], cp[0]), mode="bilinear",
                                       align_corners=False)[0, 0]
                # image pixel x sits at canvas x - tl; clamping covers a rounding-cropped edge
                ys = (torch.arange(h, device=pr.device) - tl[1]).clamp_(0, cp[1] - 1)
                xs = (torch.arange(w, device=pr.device) - tl[0]).clamp_(0, cp[0] - 1)
                pr = pr.index_select(0, ys).index_select(1, xs)
            else:
                pr = pr[:h, :w]
            return pr.float().cpu().numpy().astype(np.float32, copy=False)
