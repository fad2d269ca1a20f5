"""The metrics pane: the selected image's scores and object statistics, then data-set
summaries (means, a histogram of the sort column, counts per category and status).

Metric names come from the engine's scorer; known ones are shown first with short labels, any
other number it adds is listed after them, so a new metric appears without a TUI change.
"""

from __future__ import annotations

from textual.markup import escape
from textual.widgets import Static

from .sparkline import bars

# (key, label) in display order, grouped into lines
KNOWN: tuple[tuple[tuple[str, str], ...], ...] = (
    (("priority", "priority"), ("confidence", "conf"), ("region_confidence", "region conf")),
    (("dice", "Dice"), ("iou", "IoU"), ("ce", "CE"), ("label_quality", "LQ")),
    (("entropy", "entropy"), ("margin", "margin"), ("frac_uncertain", "uncertain")),
    (("n_pred", "objects pred"), ("n_mask", "mask"), ("missed", "missed"), ("extra", "extra"),
     ("merged", "merged"), ("split", "split")),
)
HIDDEN = {"image_id", "model_id", "fold", "image_sha256", "mask_sha256", "precision",
          "prob_path", "computed_at", "category", "error", "metrics", "s_img_sha",
          "s_mask_sha"}


def fmt_value(v) -> str:
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
    shown = set()
    for group in KNOWN:
        chips = []
        for key, label in group:
            if key in score and score[key] is not None:
                value = fmt_value(score[key])
                chips.append((f"{label} {value}", f"{label} [b]{value}[/b]"))
                shown.add(key)
        lines += pack(chips, width)
    others = [(f"{k} {fmt_value(v)}", f"[$foreground-muted]{escape(k)}[/] {fmt_value(v)}")
              for k, v in sorted(score.items())
              if k not in shown and k not in HIDDEN and _plain_number(v)]
    return lines + pack(others, width)


def summary_lines(summary: dict | None, hist: dict | None = None, width: int = 60) -> list[str]:
    if not summary:
        return []
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
        self.update("\n".join(score_lines(score, row, width) + [""]
                               + summary_lines(summary, hist, width)), layout=False)
