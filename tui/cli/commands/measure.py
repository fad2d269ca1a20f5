"""`segtriage measure DIR`: object size, shape and number density, per object, per image and
over the data set (engine/project/measure/ does the measuring; this module parses and prints).

Only argparse at the top: the parser is built at every start of the command line.
"""

from __future__ import annotations

import argparse

from ..common import folder, open_project
from ..output import err, escape, new_console
from . import Command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", help="data folder")
    p.add_argument("--source", choices=["reviewed", "masks", "predictions", "best"],
                   default="best",
                   help="reviewed: accepted or edited masks; masks: every usable mask; "
                        "predictions: the current model's; best (default): reviewed where "
                        "there is one, the prediction elsewhere")
    p.add_argument("--split", choices=["none", "watershed"],
                   help="split touching objects (default [measure] split)")
    p.add_argument("--per", choices=["object", "image", "summary"],
                   help="the table --format or --out writes (default object)")
    p.add_argument("--format", choices=["table", "csv", "json"],
                   help="table (default without --out): a summary on the terminal; csv, json: "
                        "the --per table (default with --out: from its extension, else csv)")
    p.add_argument("--out", metavar="FILE",
                   help="write the --per table to FILE (with --per object, the default, also "
                        "FILE's images and summary beside it: NAME-images.csv, "
                        "NAME-summary.csv)")


def _sibling(out, what: str):
    return out.with_name(f"{out.stem}-{what}{out.suffix}")


def run(a) -> int:
    import sys
    from pathlib import Path

    from ....engine.project import measure

    root = folder(a.dir)
    project = open_project(root, create=False)
    settings = measure.settings_from(project.cfg, split=a.split)
    if a.source in ("predictions",) and project.store.current_model_id() is None:
        return err(f"{root}: no model yet, so no predictions to measure (train one "
                   "first, or use --source masks)")
    out = Path(a.out).expanduser() if a.out else None
    fmt = a.format or ((("json" if out.suffix.lower() == ".json" else "csv") if out
                        else "table"))
    if fmt == "table" and out is not None:
        return err("--out writes csv or json (--format csv|json), not a table")
    per = a.per or "object"
    console = new_console()
    show_progress = sys.stderr.isatty() and fmt == "table"

    def progress(done: int, total: int) -> None:
        if show_progress:
            print(f"\rmeasuring {done}/{total}", end="", file=sys.stderr, flush=True)

    report = measure.measure_project(project, source=a.source, settings=settings,
                                     progress=progress)
    if show_progress:
        print("\r" + " " * 30 + "\r", end="", file=sys.stderr)
    for r in report.errors:
        print(f"segtriage: {r['image']}: not measured: {r['error']}", file=sys.stderr)
    write = measure.to_json if fmt == "json" else measure.to_csv
    if fmt != "table":
        if out is None:
            sys.stdout.write(write(report, per))
            return 0
        written = [(out, per)]
        if per == "object" and a.per is None:
            written += [(_sibling(out, "images"), "image"), (_sibling(out, "summary"),
                                                             "summary")]
        from ....engine.project.imageio import atomic_write_bytes

        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            for path, what in written:
                atomic_write_bytes(path, write(report, what).encode("utf-8"), sync=False)
        except OSError as e:
            return err(f"cannot write {out}: {e}")
        for path, what in written:
            print(f"{what} rows → {path}", file=sys.stderr)
    _print_summary(console, report, escape)
    return 0


def _num(v, unit: str = "") -> str:
    if v is None:
        return "–"
    if isinstance(v, int):
        return f"{v}{unit}"
    return f"{v:.4g}{unit}"


def _print_summary(console, report, escape) -> None:
    from rich.table import Table

    h, s = report.header, report.summary
    unit = h.get("unit")
    split = h["split"] + (f" (min_distance {h['min_distance']}, compactness "
                          f"{h['compactness']:g})" if h["split"] == "watershed" else "")
    console.print(f"[b]segtriage measure[/b] {h['segtriage']} · source {h['source']} · "
                  f"split {escape(split)} · "
                  + (f"pixel {h['pixel_size']:g} {escape(unit)}" if h.get("pixel_size")
                     else escape("pixels (no [project] pixel_size)"))
                  + (f" · model v{h['model']}" if h.get("model") else ""))
    t = Table(show_header=True, box=None, pad_edge=False, padding=(0, 2, 0, 0))
    t.add_column("data set")
    t.add_column("", justify="right")
    t.add_column("" if not unit else escape(unit), justify="right")
    rows = [
        ("images measured", _num(s["measured"]), ""),
        ("  from reviewed / masks / predictions",
         f"{s['from_reviewed']} / {s['from_masks']} / {s['from_predictions']}", ""),
        ("  not measured (errors)", _num(s["errors"]), ""),
        ("objects (touching the border)", f"{s['objects']} ({s['border_objects']})", ""),
        ("objects per image mean / median",
         f"{_num(s['objects_per_image_mean'])} / {_num(s['objects_per_image_median'])}", ""),
        ("density per px² / per unit²", _num(s["density_px"]), _num(s["density_unit"])),
        ("area fraction", _num(s["area_fraction"]), ""),
        ("area mean / median (px² | unit²)",
         f"{_num(s['area_mean_px'])} / {_num(s['area_median_px'])}",
         f"{_num(s['area_mean_unit'])} / {_num(s['area_median_unit'])}"),
        ("equivalent diameter mean / median",
         f"{_num(s['equivalent_diameter_mean_px'])} / {_num(s['equivalent_diameter_median_px'])}",
         f"{_num(s['equivalent_diameter_mean_unit'])} / "
         f"{_num(s['equivalent_diameter_median_unit'])}"),
    ]
    for r in rows:
        t.add_row(*r)
    console.print(t)
    if h["exclude_border_from_sizes"]:
        console.print("[dim]sizes leave out objects touching the border; every object counts "
                      "for density[/dim]")


COMMANDS = [
    Command("measure", "object size, shape and number density per object, image and data set",
            add_arguments, run),
]
