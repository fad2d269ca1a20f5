"""How torch's CPU threads hold up when the machine is shared (docs/benchmarks.md, CPU threads).

A training step of a resnet18 (forward, backward, SGD step; batch 8 of 128², the engine's
default input) in fp32 and in bf16 autocast, timed with 1 thread and with every core:
alone, beside one busy process (a pure-Python loop), and beside a second copy of itself.
oneDNN's bf16 kernels wait for every thread at each step, so a thread pushed off its core
stalls them all; `[model] cpu_threads` and engine/device.py's `set_cpu_threads` act on this.

    .venv/bin/python bench/cpu_threads.py            # about 2 minutes on 2 cores
    .venv/bin/python bench/cpu_threads.py --steps 30
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

BUSY = "import time\nt = time.time()\nwhile time.time() - t < 600: pass\n"


def step_time(precision: str, threads: int, steps: int) -> float:
    """Seconds per training step in this process."""
    import torch
    import torchvision

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    m = torchvision.models.resnet18(num_classes=2)
    opt = torch.optim.SGD(m.parameters(), 0.01)
    x = torch.randn(8, 3, 128, 128)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            y = m(x).float().sum()
        y.backward()
        opt.step()
        opt.zero_grad()

    for _ in range(3):  # kernel selection
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps


def run(precision: str, threads: int, beside: str, steps: int) -> list[float]:
    """Per-step seconds of each measured copy; beside: 'nothing', 'busy' or 'itself'."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}  # as the engine sets it
    cmd = [sys.executable, __file__, "--child", precision, str(threads), str(steps)]
    extra = None
    if beside == "busy":
        extra = subprocess.Popen([sys.executable, "-c", BUSY])
        time.sleep(0.5)
    copies = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
              for _ in range(2 if beside == "itself" else 1)]
    try:
        return [float(p.communicate()[0].split()[-1]) for p in copies]
    finally:
        if extra is not None:
            extra.kill()
            extra.wait()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        prec, threads, steps = a.child
        print(step_time(prec, int(threads), int(steps)))
        return 0
    import torch

    cores = torch.get_num_threads()
    from segtriage.engine.ml.device import cpu_has_bf16

    precisions = ["fp32"] + (["bf16"] if cpu_has_bf16() else [])
    print(f"CPU threads, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; "
          f"torch's default {cores} threads; {os.cpu_count()} CPUs; seconds per training step "
          f"(resnet18, batch 8 of 128², mean of {a.steps} steps; two values: each copy)\n")
    print("| precision | threads | alone | beside a busy process | beside a second copy |")
    print("|---|---:|---:|---:|---:|")
    for prec in precisions:
        for threads in sorted({1, max(1, cores - 1), cores}):
            cells = []
            for beside in ("nothing", "busy", "itself"):
                cells.append(" / ".join(f"{v:.3f}" for v in run(prec, threads, beside, a.steps)))
            print(f"| {prec} | {threads} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
