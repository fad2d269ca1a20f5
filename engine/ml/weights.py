"""Model weights without pickle: the U-Net rebuilt in code, its state dict and JSON sidecar.

Normalisation: ImageNet mean/std is added explicitly to ``batch_tfms`` (fastai adds it only
for pretrained=True), and recorded in the sidecar so inference scales input the same way.
The sidecar also carries what inference must repeat from training (``InputSpec``: the input
side, the size policy and the normalisation).
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..project import imageio
from ..project.config import ModelConfig

ARCHS = ("resnet18", "resnet34", "resnet50")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SIDECAR_FORMAT = "segtriage-unet/1"


class ModelError(RuntimeError):
    """A weights file (or its sidecar) cannot be loaded; the message names the file."""


@dataclass(frozen=True)
class InputSpec:
    """How an image becomes network input: everything inference must repeat from training."""
    image_size: int
    size_policy: str = "resize"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD


def arch_fn(arch: str) -> Callable:
    """The torchvision constructor for an arch name (fastai's model_meta is keyed by it)."""
    if arch not in ARCHS:
        raise ModelError(f"unknown arch {arch!r}; use one of {', '.join(ARCHS)}")
    import torchvision.models as tvm
    return getattr(tvm, arch)


def sidecar_path(weights: Path) -> Path:
    weights = Path(weights)
    return weights.with_name(weights.name + ".json")


def save_weights(model: torch.nn.Module, out_path: Path, *, arch: str, codes: Sequence[str],
                 spec: InputSpec, extra: dict | None = None) -> None:
    """State dict (tensors only) + JSON sidecar, each via temp file, fsync and rename."""
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


def spec_from(meta: dict | None, mcfg: ModelConfig | None = None) -> InputSpec:
    """The InputSpec a model was trained with: the sidecar wins, the config fills gaps."""
    meta, mcfg = meta or {}, mcfg or ModelConfig()
    size = int(meta.get("image_size") or mcfg.image_size or 128)
    norm = meta.get("normalize") or {}
    return InputSpec(size, meta.get("size_policy") or mcfg.size_policy,
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
