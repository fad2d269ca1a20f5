"""The data-set view: every image measured (``measure_project``, source ``best``) in a thread
worker, then the distributions as terminal plots (textual-plotext): object size, objects per
image and number density per image, under a few summary numbers.

The screen measures when it opens and shows a progress line meanwhile; escape closes it at any
time and cancels the measuring (``measure_project(cancelled=...)`` stops before the next
image). It is a modal screen, so the app's review keys do nothing while it is open.

Open it with ``app.push_screen(DatasetScreen(app.project))``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.color import Color
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import ProgressBar, Static
from textual.worker import Worker, WorkerState, get_current_worker
from textual_plotext import PlotextPlot

from ..widgets.metrics import num, pack

SOURCE = "best"
PROGRESS_EVERY_S = 0.1   # at most this often a progress message (a 100k-image project)
BINS = 20                # histogram bins of object size and density
MAX_BARS = 30            # objects per image: one bar per count up to this many counts

SOURCE_NAMES = {"reviewed": "reviewed", "mask": "masks", "prediction": "predictions"}


# ----------------------------------------------------------------------------------------
# what the plots show (plain data: tested without a terminal)
# ----------------------------------------------------------------------------------------
def bins_for(n: int) -> int:
    """Histogram bins for ``n`` values: about √n, at least 5, at most BINS."""
    return max(5, min(BINS, math.ceil(math.sqrt(n))))


def histogram(values: list[float], bins: int | None = None) -> tuple[list[float], list[int],
                                                                     list[float]]:
    """(bin centres, counts, edges) of ``values`` in ``bins`` (default ``bins_for``) equal
    bins from their min to their max (numpy's rule: the last bin holds the max). All values
    equal: one bin."""
    import numpy as np

    if not values:
        return [], [], []
    lo, hi = float(min(values)), float(max(values))
    if lo == hi:
        return [lo], [len(values)], [lo, hi]
    counts, edges = np.histogram(values, bins=bins or bins_for(len(values)), range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    return [float(c) for c in centres], [int(c) for c in counts], [float(e) for e in edges]


@dataclass
class Bars:
    """One plot: bars of ``ys`` at ``xs``, ``width`` wide, labelled at ``ticks``."""
    title: str
    xs: list[float] = field(default_factory=list)
    ys: list[int] = field(default_factory=list)
    width: float = 0.8
    ticks: list[float] = field(default_factory=list)


def hist_bars(title: str, values: list[float]) -> Bars:
    """A histogram as Bars, labelled at five evenly spaced values from its min to its max."""
    centres, n, edges = histogram(values)
    if not centres:
        return Bars(title)
    if len(edges) == 2 and edges[0] == edges[1]:   # every value the same
        return Bars(title, centres, n, 0.8, centres)
    lo, hi = edges[0], edges[-1]
    ticks = [lo + i * (hi - lo) / 4 for i in range(4)] + [hi]
    return Bars(title, centres, n, (edges[1] - edges[0]) * 0.9, ticks)


def count_bars(title: str, counts: list[int]) -> Bars:
    """Objects per image: one bar per count from the smallest to the largest (0 images
    included) when there are at most MAX_BARS of them, else a histogram."""
    if not counts:
        return Bars(title)
    lo, hi = min(counts), max(counts)
    if hi - lo + 1 > MAX_BARS:
        return hist_bars(title, [float(c) for c in counts])
    xs = [float(x) for x in range(lo, hi + 1)]
    step = math.ceil(len(xs) / 8)
    return Bars(title, xs, [counts.count(int(x)) for x in xs], 0.8, xs[::step])


def scale_of(values: list[float]) -> int:
    """The power of ten to show small numbers (densities per px²) in: 0 for values from 0.1
    up, else the exponent (a multiple of 3) that brings the largest to 0.1 … 1000."""
    top = max((abs(v) for v in values), default=0.0)
    if top == 0 or top >= 0.1:
        return 0
    return int(math.floor(math.log10(top) / 3) * 3)


def _superscript(n: int) -> str:
    return str(n).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))


def tick_label(v: float) -> str:
    if v == int(v) and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.3g}"


def plot_data(report, settings) -> dict[str, Bars]:
    """The three distributions of a report ("size", "count", "density"), in the unit when
    the project has a pixel size; sizes leave out border objects as the summary does."""
    unit = settings.unit if settings.pixel_size else None
    ok = [r for r in report.images if not r.get("error")]
    sized = [o for o in report.objects
             if not (settings.exclude_border_from_sizes and o["touches_border"])]
    sizes = [float(o["area_unit" if unit else "area_px"]) for o in sized]
    what = f"{len(sizes)} objects" + (", border ones left out"
                                      if settings.exclude_border_from_sizes else "")
    dens = [float(r["density_unit" if unit else "density_px"]) for r in ok]
    k = scale_of(dens)
    per = f"{f'×10{_superscript(k)} ' if k else ''}/{unit or 'px'}²"
    return {
        "size": hist_bars(f"object size ({unit or 'px'}²) · {what}", sizes),
        "count": count_bars(f"objects per image · {len(ok)} images",
                            [int(r["objects"]) for r in ok]),
        "density": hist_bars(f"number density per image ({per})",
                             [d / 10 ** k for d in dens]),
    }


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def summary_chips(report, settings) -> list[list[tuple[str, str]]]:
    """The numbers above the plots, as groups of (plain, markup) chips; a group starts a
    line (and wraps when the screen is narrow)."""
    s, h = report.summary, report.header
    unit = settings.unit if settings.pixel_size else None

    def chip(label: str, value: str) -> tuple[str, str]:
        return f"{label} {value}", f"[$foreground-muted]{label}[/] [b]{value}[/b]"

    by = [_n(s[f"from_{k}"], one) for k, one in (("reviewed", "reviewed mask"),
                                                  ("masks", "mask"),
                                                  ("predictions", "prediction"))
          if s[f"from_{k}"]]
    plain, markup = chip("images measured", str(s["measured"]))
    if by:
        plain += " (" + ", ".join(by) + ")"
        markup += " (" + ", ".join(by) + ")"
    images = [(plain, markup)]
    if s["errors"]:
        images.append((f"{s['errors']} not measured",
                       f"[$warning]{s['errors']} not measured[/]"))
    objects = [chip("objects", str(s["objects"])),
               chip("on the border", str(s["border_objects"]))]
    if s["objects_per_image_mean"] is not None:
        objects.append(chip("per image", f"{num(s['objects_per_image_mean'])} (median "
                                         f"{num(s['objects_per_image_median'])})"))
    objects.append(chip("area", "·" if s["area_fraction"] is None
                        else f"{s['area_fraction']:.1%}"))
    sizes = [chip("density", f"{num(s['density_px'])}/px²"
                  + (f" · {num(s['density_unit'])}/{escape(unit)}²" if unit else ""))]
    for stat in ("mean", "median"):
        v = s[f"area_{stat}_px"]
        text = "·" if v is None else f"{num(v)} px²"
        if unit and v is not None:
            text += f" ({num(s[f'area_{stat}_unit'])} {escape(unit)}²)"
        sizes.append(chip("size mean" if stat == "mean" else "median", text))
    split = h["split"]
    if split == "watershed":
        split += f" (min_distance {h['min_distance']}, compactness {h['compactness']:g})"
    how = [chip("split", split),
           ("border objects not sized" if h["exclude_border_from_sizes"]
            else "border objects sized",) * 2,
           (f"{h['pixel_size']:g} {escape(h['unit'])}/px",) * 2 if h.get("pixel_size")
           else ("no pixel size",) * 2]
    return [images, objects, sizes, how]


# ----------------------------------------------------------------------------------------
# the screen
# ----------------------------------------------------------------------------------------
class DatasetScreen(ModalScreen[None]):
    """Objects over the data set: summary numbers and three distributions.

    ``DatasetScreen(project)`` measures ``project`` with ``source="best"`` and the settings of
    its config (or ``settings``) when it mounts. ``report`` holds the result once done."""

    DEFAULT_CSS = """
    DatasetScreen {
        align: left top;
        background: $background;
    }
    #dataset {
        width: 100%;
        height: 100%;
        background: $surface;
    }
    #dataset-title {
        height: 1;
        padding: 0 1;
        background: $panel;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    #dataset-progress {
        height: 1;
        padding: 0 1;
    }
    #dataset-progress ProgressBar {
        width: auto;
        padding-left: 1;
    }
    #dataset-progress-text {
        width: auto;
    }
    #dataset-summary {
        height: auto;
        padding: 0 1;
    }
    #dataset-errors {
        height: 1;
        padding: 0 1;
        color: $warning;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    #plot-size {
        height: 1fr;
    }
    #dataset-lower {
        height: 1fr;
    }
    #plot-count {
        margin-right: 2;
    }
    """

    BINDINGS = [Binding("escape,q", "close", "Close", show=False)]

    class Progress(Message):
        def __init__(self, done: int, total: int) -> None:
            super().__init__()
            self.done = done
            self.total = total

    class Measured(Message):
        def __init__(self, report, plots: dict[str, Bars]) -> None:
            super().__init__()
            self.report = report
            self.plots = plots

    class Failed(Message):
        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    def __init__(self, project, *, settings=None, source: str = SOURCE) -> None:
        super().__init__()
        self.project = project
        self.source = source
        self._settings = settings
        self.report = None
        self.plots: dict[str, Bars] | None = None
        self.error: str | None = None
        self.worker: Worker | None = None

    @property
    def settings(self):
        if self._settings is None:
            from ....engine.project.measure import settings_from

            self._settings = settings_from(self.project.cfg)
        return self._settings

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.state in (WorkerState.PENDING,
                                                                 WorkerState.RUNNING)

    def compose(self) -> ComposeResult:
        with Vertical(id="dataset"):
            yield Static(self._title(), id="dataset-title")
            with Horizontal(id="dataset-progress"):
                yield Static("measuring…", id="dataset-progress-text")
                yield ProgressBar(total=None, show_eta=False, id="dataset-bar")
            yield Static("", id="dataset-summary")
            yield Static("", id="dataset-errors", markup=False)
            yield PlotextPlot(id="plot-size")
            with Horizontal(id="dataset-lower"):
                yield PlotextPlot(id="plot-count")
                yield PlotextPlot(id="plot-density")

    def _title(self) -> str:
        return (f"[b]Objects in the data set[/b] · {escape(self.project.root.name)} · "
                f"[$foreground-muted]source {escape(self.source)} · esc closes[/]")

    def on_mount(self) -> None:
        self.query_one("#dataset-errors").display = False
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)
        self.worker = self._measure_worker()

    def _theme_changed(self, _theme) -> None:
        if self.plots is not None:   # the bars take the theme's colours
            self._draw()

    # -- measuring -------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="dataset-measure", exit_on_error=False)
    def _measure_worker(self) -> None:
        from ....engine.project import measure

        worker = get_current_worker()
        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if done == total or now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                if not worker.is_cancelled:
                    self.post_message(self.Progress(done, total))

        try:
            report = measure.measure_project(self.project, source=self.source,
                                             settings=self.settings, progress=progress,
                                             cancelled=lambda: worker.is_cancelled)
        except Exception as e:  # noqa: BLE001 - shown on the screen, the app goes on
            if not worker.is_cancelled:
                self.post_message(self.Failed(str(e) or type(e).__name__))
            return
        plots = plot_data(report, self.settings)   # numpy over every object: here too
        if not worker.is_cancelled:
            self.post_message(self.Measured(report, plots))

    def on_dataset_screen_progress(self, message: Progress) -> None:
        self.query_one("#dataset-progress-text", Static).update(
            f"measuring {message.done}/{message.total} images")
        bar = self.query_one("#dataset-bar", ProgressBar)
        bar.update(total=message.total, progress=message.done)

    def on_dataset_screen_failed(self, message: Failed) -> None:
        self.error = message.error
        self.query_one("#dataset-progress").display = False
        self.query_one("#dataset-summary", Static).update(
            f"[$error]cannot measure: {escape(message.error)}[/]")

    def on_dataset_screen_measured(self, message: Measured) -> None:
        self.report = message.report
        self.plots = message.plots
        self.query_one("#dataset-progress").display = False
        errors = self.report.errors
        if errors:
            box = self.query_one("#dataset-errors", Static)
            shown = "; ".join(f"{r['image']}: {r['error']}" for r in errors[:3])
            box.update(f"not measured: {shown}" + (f"; … {len(errors) - 3} more"
                                                   if len(errors) > 3 else ""))
            box.display = True
        self._show_summary()
        self._draw()

    def on_resize(self) -> None:
        if self.report is not None:
            self._show_summary()

    def _show_summary(self) -> None:
        box = self.query_one("#dataset-summary", Static)
        width = max(20, (self.size.width or 80) - 2)
        lines = []
        for group in summary_chips(self.report, self.settings):
            lines += pack(group, width)
        box.update("\n".join(lines))

    def _draw(self) -> None:
        for name, color in (("size", "primary"), ("count", "accent"), ("density", "success")):
            draw_bars(self.query_one(f"#plot-{name}", PlotextPlot), self.plots[name],
                      self._rgb(color))

    def _rgb(self, name: str) -> tuple[int, int, int]:
        var = self.app.theme_variables
        return Color.parse(var.get(name, var.get("foreground", "white"))).rgb

    # -- closing ---------------------------------------------------------------------------
    def action_close(self) -> None:
        """Close now; a running measurement stops before its next image."""
        if self.worker is not None:
            self.worker.cancel()
        self.dismiss(None)


def draw_bars(widget: PlotextPlot, bars: Bars, color) -> None:
    """Bars with integer y ticks (0, half, top) and the x ticks of ``bars``."""
    plt = widget.plt
    plt.clear_figure()
    plt.title(bars.title)   # it says how many (0: an empty frame)
    if bars.xs:
        plt.bar(bars.xs, bars.ys, width=bars.width, color=color)
        top = max(bars.ys)
        yt = sorted({0, top // 2, top})
        plt.yticks(yt, [str(t) for t in yt])
        plt.ylim(0, max(top, 1))
        plt.xticks(bars.ticks, [tick_label(x) for x in bars.ticks])
    widget.refresh()
