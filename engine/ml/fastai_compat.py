"""The one place where segtriage patches fastai. Keep every such patch here.

``patch_distributed_for_cpu()``: fastai 2.8.12's ``DistributedDL._broadcast`` (which sends
rank 0's shuffled sample order to the other ranks each epoch) builds its tensor with
``LongTensor(t).cuda()`` unconditionally ("nccl only works with cuda tensors"). Under gloo on
CPU ranks, the CI stand-in for several GPUs, that raises (no CUDA driver). The patch keeps the
tensor on the CPU unless the process group's backend is plain nccl.

When it can go: as soon as fastai's own ``_broadcast`` stops calling ``.cuda()``
unconditionally. ``cpu_patch_needed()`` reads the installed source, so the patch is skipped by
itself on a fixed fastai; then delete this module and its call in ``engine.ml.dist.ranks``.
"""

from __future__ import annotations

import inspect
import logging

log = logging.getLogger("segtriage.engine")

_PATCH_MARK = "_segtriage_cpu_patch"


def _broadcast_cpu_safe(self, t, rank):
    """fastai's DistributedDL._broadcast, with the tensor on the CPU unless nccl needs CUDA."""
    import torch
    import torch.distributed as dist

    x = torch.as_tensor(t, dtype=torch.long)
    if dist.get_backend() == "nccl":  # nccl alone cannot move CPU tensors
        x = x.cuda()
    dist.broadcast(x, rank)
    return x.cpu().tolist()


setattr(_broadcast_cpu_safe, _PATCH_MARK, True)


def cpu_patch_needed(cls=None) -> bool:
    """True when `cls._broadcast` (default: fastai's DistributedDL) calls ``.cuda()``
    unconditionally, i.e. when CPU ranks over gloo would fail without the patch."""
    if cls is None:
        from fastai.distributed import DistributedDL as cls
    fn = getattr(cls, "_broadcast", None)
    if fn is None or getattr(fn, _PATCH_MARK, False):
        return False
    try:
        src = inspect.getsource(fn)
    except (OSError, TypeError):  # no source (frozen install): assume the known-bad code
        return True
    return ".cuda()" in src


def patch_distributed_for_cpu(cls=None) -> bool:
    """Apply the CPU patch to fastai's DistributedDL (or `cls`) when needed; idempotent.
    Returns True when it patched."""
    if cls is None:
        from fastai.distributed import DistributedDL as cls
    if not cpu_patch_needed(cls):
        return False
    cls._broadcast = _broadcast_cpu_safe
    try:
        import fastai
        ver = fastai.__version__
    except Exception:  # noqa: BLE001
        ver = "?"
    log.info("fastai %s: patched DistributedDL._broadcast for CPU ranks (see fastai_compat)",
             ver)
    return True
