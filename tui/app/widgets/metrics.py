"""The metrics pane: the selected image's scores and object statistics, data-set summaries
(means, a histogram of the sort column, counts per category and status), then every other
number the scorer stored.

Metric names come from the engine's scorer (docs/scoring.md); known ones are shown first with
short labels, pred/mask pairs side by side, and any other number it adds is listed last, so a
new metric appears without a TUI change.
"""

from __future__ import annotations

from textual.markup import escape
from textual.widgets import Static

from .sparkline import bars

# lines of (label, key) or (label, (pred key, mask key)) in display order
KNOWN: tuple[tuple[tuple[str, str | tuple[str, str]], ...], ...] = (
    (("priority", "priority"), ("conf", "confidence"), ("region", "region_confidence"),
     ("core", "core_confidence")),
    (("Dice", "dice"), ("IoU", "iou"), ("CE", "ce"), ("LQ", "label_quality")),
    (("objects p/m", ("n_pred", "n_mask")), ("matched", "matched"), ("missed", "missed"),
     ("extra", "extra"), ("merged", "merged"), ("split", "split")),
    (("area p/m", ("area_pred_mean", "area_mask_mean")),
     ("solidity", ("solidity_pred", "solidity_mask")),
     ("ecc", ("eccentricity_pred", "eccentricity_mask"))),
    (("doubt inside", "uncertainty_interior"), ("edge", "uncertainty_boundary"),
     ("uncertain px", "frac_uncertain")),
)
HIDDEN = {"image_id", "model_id", "fold", "image_sha256", "mask_sha256", "precision",
          "prob_path", "computed_at", "category", "error", "metrics", "s_img_sha",
          "s_mask_sha", "scoring_version"}


def fmt_value(v) -> str:
    if v is None:
        return "·"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v:
            return "nan"
        return f"{v:.3g}" if abs(v) >= 100 or (v != 0 and abs(v) < 0.001) else f"{v:.3f}"
    return escape(str(v))


def _plain_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def pack(chips: list[tuple[str, str]], width: int, sep: str = " · ") -> list[str]:
    """Join (plain, markup) chips into lines no wider than ``width`` (plain length)."""
    lines: list[str] = []
    plain_len, cur = 0, []
    for plain, markup in chips:
        add = len(plain) + (len(sep) if cur else 0)
        if cur and plain_len + add > width:
            lines.append(sep.join(cur))
            plain_len, cur = 0, []
            add = len(plain)
        cur.append(markup)
        plain_len += add
    if cur:
        lines.append(sep.join(cur))
    return lines


def score_lines(score: dict | None, row=None, width: int = 60) -> list[str]:
    if row is None:
        return ["[$foreground-muted]no image selected[/]"]
    head = f"[b]{escape(row.name)}[/b]"
    if score is None:
        msg = "not scored yet" if not row.error else escape(row.error)
        return [head, f"[$foreground-muted]{msg}[/]"]
    cat = score.get("category")
    model = score.get("model_id")
    fold = score.get("fold")
    meta = f"model v{model}" + (f" fold {fold}" if fold is not None else "")
    if row.stale:
        meta += " [$warning](stale)[/]"
    lines = [head, (f"[$accent]{escape(cat)}[/] · " if cat else "") + meta]
    if score.get("error"):
        lines.append(f"[$error]{escape(str(score['error']))}[/]")
    for group in KNOWN:
        chips = []
        for label, key in group:
            keys = key if isinstance(key, tuple) else (key,)
            if all(score.get(k) is None for k in keys):
                continue
            value = "/".join(fmt_value(score.get(k)) for k in keys)
            chips.append((f"{label} {value}", f"{label} [b]{value}[/b]"))
        lines += pack(chips, width)
    return lines


def other_lines(score: dict | None, width: int = 60) -> list[str]:
    """Every other number of the score row, by name."""
    if not score:
        return []
    shown = {k for group in KNOWN for _label, key in group
             for k in (key if isinstance(key, tuple) else (key,))}
    chips = [(f"{k} {fmt_value(v)}", f"[$foreground-muted]{escape(k)}[/] {fmt_value(v)}")
             for k, v in sorted(score.items())
             if k not in shown and k not in HIDDEN and _plain_number(v)]
    return pack(chips, width)


def summary_lines(summary: dict | None, hist: dict | None = None, width: int = 60) -> list[str]:
    if not summary:
        return []
    if summary.get("loading"):  # only the first page is in: no counts or means yet
        return [f"[$primary]── data set ──[/] {summary['n']} images · "
                "[$foreground-muted]loading…[/]"]
    lines = [f"[$primary]── data set ──[/] {summary['n']} images · {summary['scored']} scored"
             + (f" · [$warning]{summary['stale']} stale[/]" if summary["stale"] else "")]
    means = summary["means"]
    labels = {"confidence": "conf", "label_quality": "LQ", "dice": "Dice", "ce": "CE"}
    chips = [(f"{labels[k]} {fmt_value(v)}",) * 2 for k, v in means.items() if v is not None]
    if chips:
        lines += pack([("mean", "[$foreground-muted]mean[/]"), *chips], width)
    if hist:
        lines.append(f"{escape(hist['title'])} [$accent]{bars(hist['counts'])}[/] "
                     f"{fmt_value(hist['lo'])}…{fmt_value(hist['hi'])}")
    for counts in (summary.get("category") or {}, summary.get("status") or {}):
        chips = [(f"{k} {v}", f"{escape(k)} [b]{v}[/b]")
                 for k, v in sorted(counts.items(), key=lambda kv: -kv[1])]
        lines += pack(chips, width)
    return lines


class MetricsPane(Static):
    def show(self, score: dict | None, row, summary: dict | None, hist: dict | None) -> None:
        width = self.content_size.width or 40
        # a fixed-size pane: no layout pass when the selected row changes
        lines = score_lines(score, row, width) + [""] + summary_lines(summary, hist, width)
        more = other_lines(score, width)
        if more:
            lines += ["", "[$primary]── more ──[/]", *more]
        self.update("\n".join(lines), layout=False)
