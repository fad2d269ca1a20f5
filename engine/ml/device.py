"""Choosing the torch device and the inference precision.

The precision tag (`precision_tag`) is recorded with every score, so scores made in bf16 and
in fp32 are never mixed in one ranking (their argmax agree on ~99.998 % of pixels, not all).
"""
from __future__ import annotations

import functools
import os
import time
from pathlib import Path

import torch

PRECISIONS = ("fp32", "bf16", "fp16")


class DeviceError(ValueError):
    """A requested device or precision is not available here."""


def pick_device(pref: str = "auto") -> torch.device:
    """'auto' → cuda, then mps, then cpu; 'cuda', 'cuda:1', 'mps', 'cpu' are checked, not guessed."""
    pref = (pref or "auto").strip().lower()
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(pref)
    except RuntimeError as e:
        raise DeviceError(f"unknown device {pref!r} (use auto, cpu, cuda, cuda:N or mps)") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {pref!r} requested but torch sees no CUDA GPU here")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"device {pref!r} requested but only {torch.cuda.device_count()} "
                              "CUDA GPU(s) are visible")
    elif dev.type == "mps":
        if not _mps_available():
            raise DeviceError("device 'mps' requested but torch has no MPS backend here")
    elif dev.type != "cpu":
        raise DeviceError(f"unsupported device {pref!r} (use auto, cpu, cuda, cuda:N or mps)")
    return dev


def pick_precision(pref: str, device: torch.device) -> str:
    """Inference precision: 'fp32', 'bf16' or 'fp16'.

    'auto': bf16 on a CPU with native bf16 (AVX512-BF16 or AMX) *and* measured faster than fp32
    on a small conv; bf16 on a CUDA GPU that supports it, else fp16; fp32 on mps and elsewhere.
    An explicit choice is honoured where the device can run it at all.
    """
    pref = (pref or "auto").strip().lower()
    device = torch.device(device)
    if pref == "auto":
        if device.type == "cuda":
            with torch.cuda.device(device):
                return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if device.type == "cpu":
            return "bf16" if cpu_bf16_is_faster() else "fp32"
        return "fp32"
    if pref not in PRECISIONS:
        raise DeviceError(f"unknown precision {pref!r} (use auto, fp32, bf16 or fp16)")
    if device.type == "mps" and pref != "fp32":
        raise DeviceError(f"precision {pref!r} is not supported on mps here; use fp32")
    return pref


# torch's own choice, read at import: before anything here changes it (the bf16 probe
# below sets 1 thread for a moment, possibly in another thread)
_DEFAULT_THREADS = torch.get_num_threads()


def set_cpu_threads(device: torch.device, precision: str, setting: int = 0) -> int | None:
    """Set torch's intra-op threads for work on the CPU; the number set, None off the CPU.

    setting > 0: that many. 0 (auto): torch's default (one per core, or OMP_NUM_THREADS when
    set), but in bf16 one fewer, at least 1. oneDNN's bf16 kernels wait for every thread at
    each step, so one thread pushed off its core by any other busy process stalls them all:
    measured on 2 cores (bench/cpu_threads.py, docs/benchmarks.md "CPU threads"), a step with
    both cores ran 3x slower beside one busy process and 8x beside a second training, while
    one thread ran as fast in every case, and an engine training alone took ~1.2x as long per
    epoch with one thread as with two. fp32 degrades gently and keeps every core.
    """
    if torch.device(device).type != "cpu":
        return None
    n = int(setting or 0)
    if n <= 0:
        n = _DEFAULT_THREADS
        if precision == "bf16" and "OMP_NUM_THREADS" not in os.environ:
            n -= 1
    n = max(1, n)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def precision_tag(device: torch.device, precision: str) -> str:
    """'cpu-bf16', 'cuda-fp16', ...: stored beside scores so precisions never mix in a ranking."""
    return f"{torch.device(device).type}-{precision}"


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype for a precision; None means plain fp32 (no autocast)."""
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def cpu_has_bf16() -> bool:
    """True when this CPU computes bf16 natively (oneDNN says so, or the cpuinfo flags do)."""
    try:
        if torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return True
    except (AttributeError, RuntimeError):
        pass
    return bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})


@functools.lru_cache(maxsize=1)
def cpu_bf16_is_faster() -> bool:
    """Native bf16 support, and bf16 autocast measured faster than fp32 on a small conv.

    Emulated bf16 (no native support) is much slower than fp32, so the flag is checked first;
    the measurement (~0.05 s, once per process) guards against a CPU whose flags overpromise.
    """
    if not cpu_has_bf16():
        return False
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).eval().to(memory_format=torch.channels_last)
    x = torch.randn(2, 64, 32, 32).contiguous(memory_format=torch.channels_last)
    best = {True: float("inf"), False: float("inf")}
    threads = torch.get_num_threads()
    # One thread, interleaved rounds, the minimum of each kind: with other processes on the
    # cores, a multi-threaded run waits for its slowest (descheduled) thread and says nothing.
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            for r in range(10):
                for bf in (True, False):
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf):
                        t0 = time.perf_counter()
                        conv(x)
                        dt = time.perf_counter() - t0
                    if r >= 2:  # the first rounds pay for kernel selection
                        best[bf] = min(best[bf], dt)
    except RuntimeError:
        return False
    finally:
        torch.set_num_threads(threads)
    # native bf16 is ~4x faster on this conv; only a clear loss falls back to fp32
    return best[True] < 1.1 * best[False]


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())
