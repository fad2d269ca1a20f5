"""The metrics pane: the selected image's scores and object statistics, its measured object
figures (count, density, area fraction, sizes: tui/app/objects_feed.py measures them off the UI
thread), data-set summaries (means, a histogram of the sort column, counts per category and
status), then every other number the scorer stored.

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
    # a negative id: an early ranking's checkpoint of a training still running (no version)
    meta = ("checkpoint of the running training" if model is not None and model < 0
            else f"model v{model}" + (f" fold {fold}" if fold is not None else ""))
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


def num(v) -> str:
    """A measured quantity with 3 significant digits (sizes, densities): 81, 20.2, 0.00188,
    1.88e-05; 100 and more without decimals (112, 4096)."""
    if v is None:
        return "·"
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    v = float(v)
    if v != v:
        return "nan"
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}" if a >= 1e-4 or a == 0 else f"{v:.2e}"


def _unit_part(v, unit: str | None, power: str = "²") -> str:
    return f" ({num(v)} {escape(unit)}{power})" if unit and v is not None else ""


def object_lines(figures: dict | None, width: int = 60, pending: bool = False) -> list[str]:
    """The selected image's object figures (ObjectFigures: measure_target's image row with
    ``components``, ``split`` and ``unit``), or a line saying they are being measured."""
    head = "[$primary]── objects ──[/]"
    if figures is None:
        return [f"{head} [$foreground-muted]measuring…[/]"] if pending else []
    if figures.get("error"):
        return [f"{head} [$foreground-muted]{escape(str(figures['error']))}[/]"]
    source = figures.get("source")
    model = figures.get("model")
    where = {"reviewed": "reviewed mask", "mask": "mask",
             "prediction": f"model v{model} prediction" if model else "prediction"}
    lines = [f"{head} {escape(where.get(source, str(source)))}"
             + (" [$foreground-muted]…[/]" if pending else "")]
    unit = figures.get("unit")
    n = figures.get("objects")
    chips = []
    if figures.get("split", "none") != "none" and figures.get("components") is not None:
        chips.append((f"objects {figures['components']} → {n} split",
                      f"objects [b]{figures['components']}[/b] → [b]{n}[/b] split"))
    else:
        chips.append((f"objects {n}", f"objects [b]{n}[/b]"))
    chips.append((f"border {figures.get('border_objects')}",
                  f"border [b]{figures.get('border_objects')}[/b]"))
    dens = f"{num(figures.get('density_px'))}/px²"
    if unit and figures.get("density_unit") is not None:
        dens += f" · {num(figures['density_unit'])}/{escape(unit)}²"
    chips.append((f"density {dens}", f"density [b]{dens}[/b]"))
    frac = figures.get("area_fraction")
    area = "·" if frac is None else f"{frac:.1%}"
    chips.append((f"area {area}", f"area [b]{area}[/b]"))
    lines += pack(chips, width)
    chips = []
    for stat in ("mean", "median"):
        v = figures.get(f"area_{stat}_px")
        if v is None:
            continue
        text = f"{num(v)} px²" + _unit_part(figures.get(f"area_{stat}_unit"), unit)
        chips.append((f"size {stat} {text}", f"size {stat} [b]{text}[/b]"))
    sized = figures.get("sized_objects")
    if sized is not None and sized != n:
        chips.append((f"({sized} sized: border left out)",
                      f"[$foreground-muted]({sized} sized: border left out)[/]"))
    lines += pack(chips, width)
    return lines


class MetricsPane(Static):
    """Scores, object figures and data-set summaries of the selected row.

    ``show(score, row, summary, hist)`` draws the scores and summaries (the app calls it when
    the row or the rows change). ``request_objects(row)`` asks for the row's object figures:
    they are measured in a thread worker (ObjectFigures) and drawn when ready, below the
    scores; until the app calls it the pane shows no object figures."""

    def __init__(self, *args, project=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._project = project
        self._feed = None
        self._shown: tuple = (None, None, None, None)
        self._objects_id: int | None = None
        self._objects: dict | None = None
        self._objects_pending = False

    @property
    def objects(self):
        """The ObjectFigures feed of this pane (the project: given, else the app's)."""
        if self._feed is None:
            from ..objects_feed import ObjectFigures

            project = self._project if self._project is not None else self.app.project
            self._feed = ObjectFigures(self, project)
        return self._feed

    def request_objects(self, row) -> None:
        """Measure the object figures of ``row`` (None: none) off the UI thread and show them
        when ready; the figures last measured for it show meanwhile. Cheap when nothing
        changed (two queries in the worker): call it whenever the selected row is shown."""
        image_id = None if row is None else row.id
        if image_id != self._objects_id:
            self._objects = None
        self._objects_id = image_id
        known = self.objects.request(image_id)
        if known is not None:
            self._objects = known
        self._objects_pending = image_id is not None
        self._draw()

    def on_object_figures_ready(self, message) -> None:
        if message.image_id == self._objects_id:
            self._objects = message.figures
            self._objects_pending = False
            self._draw()

    def show(self, score: dict | None, row, summary: dict | None, hist: dict | None) -> None:
        self._shown = (score, row, summary, hist)
        self._draw()

    def _draw(self) -> None:
        score, row, summary, hist = self._shown
        width = self.content_size.width or 40
        # a fixed-size pane: no layout pass when the selected row changes
        lines = score_lines(score, row, width)
        if row is not None and row.id == self._objects_id:
            lines += object_lines(self._objects, width, self._objects_pending)
        lines += [""] + summary_lines(summary, hist, width)
        more = other_lines(score, width)
        if more:
            lines += ["", "[$primary]── more ──[/]", *more]
        self.update("\n".join(lines), layout=False)
