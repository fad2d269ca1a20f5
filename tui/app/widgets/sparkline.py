"""One-line charts in block characters: the loss / valid-Dice curve and histograms."""

from __future__ import annotations

from typing import Sequence

BARS = "▁▂▃▄▅▆▇█"


def resample(values: Sequence[float], width: int) -> list[float]:
    """At most ``width`` values: bucket means when there are more."""
    vals = [v for v in values if v is not None and v == v]
    if len(vals) <= width:
        return vals
    out = []
    for i in range(width):
        a, b = i * len(vals) // width, (i + 1) * len(vals) // width
        chunk = vals[a:max(b, a + 1)]
        out.append(sum(chunk) / len(chunk))
    return out


def spark(values: Sequence[float], width: int, lo: float | None = None,
          hi: float | None = None) -> str:
    """A sparkline of ``values`` in at most ``width`` cells (empty string for no values)."""
    vals = resample(values, max(1, width))
    if not vals:
        return ""
    lo = min(vals) if lo is None else lo
    hi = max(vals) if hi is None else hi
    if hi <= lo:
        return BARS[len(BARS) // 2] * len(vals)
    top = len(BARS) - 1
    return "".join(BARS[max(0, min(top, round((v - lo) / (hi - lo) * top)))] for v in vals)


def bars(counts: Sequence[int]) -> str:
    """A histogram: one cell per bin, the tallest bin full height, empty bins a space."""
    peak = max(counts) if counts else 0
    if peak == 0:
        return " " * len(counts)
    top = len(BARS) - 1
    return "".join(" " if c == 0 else BARS[max(0, min(top, round(c / peak * top)))]
                   for c in counts)
