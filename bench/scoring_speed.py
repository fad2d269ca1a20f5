"""Speed of per-image scoring from stored probabilities (a bench, not a test).

Prints ms per image at 128² and 256² for a scene of many blobs, with the mask right, with an
object removed, and without a mask. Issue 4 asks for ≤ 100 ms at 256² (a mask edit re-scores
the image from its stored probability map).

    .venv/bin/python bench/scoring_speed.py [--repeat 30] [--objects 40]
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np
from scipy import ndimage as ndi

from segtriage.engine.project import scoring


def scene(size: int, n_objects: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    truth = np.zeros((size, size), bool)
    centres = []
    for _ in range(n_objects):
        cy, cx = rng.integers(0, size, 2)
        r = rng.uniform(3, 10) * size / 256
        truth |= (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        centres.append((cy, cx, r))
    sd = ndi.distance_transform_edt(truth) - ndi.distance_transform_edt(~truth)
    noise = ndi.gaussian_filter(rng.normal(0, 1, (size, size)), 3) * 4
    prob = np.round(255 / (1 + np.exp(-(1.5 * sd + noise)))).astype(np.uint8)  # as stored
    wrong = truth.copy()
    cy, cx, r = centres[0]
    wrong[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = False
    return prob, truth.astype(np.uint8), wrong.astype(np.uint8)


def time_ms(fn, repeat: int) -> float:
    fn()  # warm-up
    best = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best.append(time.perf_counter() - t)
    return 1000 * float(np.median(best))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--objects", type=int, default=40, help="objects per 256² image")
    a = ap.parse_args()
    print(f"# scoring speed, {platform.processor() or platform.machine()}, "
          f"python {platform.python_version()}, median of {a.repeat}")
    print(f"{'size':>6} {'objects':>8} {'right mask':>11} {'wrong mask':>11} {'no mask':>9}")
    for size in (128, 256):
        n = max(1, a.objects * size * size // (256 * 256))
        prob, right, wrong = scene(size, n)
        row = [time_ms(lambda m=m: scoring.score_image(prob, m), a.repeat)
               for m in (right, wrong, None)]
        print(f"{size:>5}² {scoring.score_image(prob, right)['n_mask']:>8} "
              + " ".join(f"{v:>8.1f} ms" for v in row))


if __name__ == "__main__":
    main()
