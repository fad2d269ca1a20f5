"""Commands that open, make and index a data folder: open, demo, init, scan, segment."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..common import config, folder, need_engine, new_folder, open_project
from ..output import err, escape, new_console
from ...paint.renderers import RENDERERS
from . import Command, dir_arg


def open_arguments(p: argparse.ArgumentParser) -> None:
    dir_arg(p, ".")
    p.add_argument("--renderer", choices=RENDERERS,
                   help="terminal image protocol for the preview")
    p.add_argument("--no-engine", action="store_true", help="do not start the engine")


def run_open(a) -> int:
    root = folder(a.dir)
    config(root)  # a bad config is reported before the screen switches
    from ...app.app import run_app

    return run_app(root, renderer=a.renderer, start_engine=not a.no_engine)


DEMO_DEFAULTS = {"count": 96, "size": 128, "seed": 0}


def demo_arguments(p: argparse.ArgumentParser) -> None:
    dir_arg(p, "demo")
    # None: the existing demo's value when DIR holds one, else the default (DEMO_DEFAULTS)
    p.add_argument("--count", type=int, help="images (default 96)")
    p.add_argument("--size", type=int, help="image side in pixels (default 128)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--regenerate", action="store_true",
                   help="replace the demo in DIR by one with other --count/--size/--seed")
    p.add_argument("--no-tui", action="store_true", help="print the scan summary instead")
    p.add_argument("--no-train", action="store_true",
                   help="do not start the first training job")
    p.add_argument("--renderer", choices=RENDERERS)


def run_demo(a) -> int:
    from ....engine.project import demo, index

    root = folder(a.dir, must_exist=False)
    if root.exists() and not root.is_dir():
        return err(f"{a.dir}: not a folder")
    manifest = demo.truth_dir(root) / "manifest.json"
    given = {k: getattr(a, k) for k in DEMO_DEFAULTS}
    have = None
    if manifest.exists():
        try:
            m = json.loads(manifest.read_text())
            have = {k: m[k] for k in DEMO_DEFAULTS}
        except (ValueError, KeyError, TypeError):
            return err(f"{manifest}: not a readable demo manifest; choose another DIR")
    # Reopening a demo never rewrites it: its masks may hold the person's edits and its
    # rows their decisions. Other settings replace it only when asked to.
    want = {k: given[k] if given[k] is not None else (have or DEMO_DEFAULTS)[k]
            for k in DEMO_DEFAULTS}
    console = new_console()
    if want != have:
        if have is not None and not a.regenerate:
            flags = " ".join(f"--{k} {v}" for k, v in have.items())
            return err(f"{root} holds a demo made with {flags}; open it with "
                       f"`segtriage demo {a.dir}`, or pass --regenerate to replace its "
                       "images and masks (edits and decisions on them are lost: "
                       "`segtriage backup` first)")
        if root.exists() and any(p for p in root.iterdir() if p.name != ".segtriage"):
            if have is None:
                return err(f"{root} exists and is not a segtriage demo folder; "
                           "choose another DIR")
        try:
            summary = demo.make_demo(root, **want, overwrite=have is not None)
        except ValueError as e:
            return err(str(e))
        console.print(f"demo data set: {summary.get('count')} images of {want['size']}² in "
                      f"{escape(str(root))}; truth in {escape(str(demo.truth_dir(root)))}")
    project = open_project(root)
    rep = index.scan(project)
    store = project.store
    if not a.no_train and store.current_model_id() is None and not any(
            j.kind in ("train", "crossval") for j in store.active_jobs()):
        jid = store.submit_job("train", {}, requested_by="demo")
        console.print(f"first training queued as job {jid}")
    if a.no_tui:
        print_scan(rep, root, console)
        pid = need_engine(root) if not a.no_train else None
        if pid:
            console.print(f"engine pid {pid} is training; follow with "
                          f"`segtriage jobs {escape(a.dir)}` or open `segtriage {escape(a.dir)}`")
        return 0
    from ...app.app import run_app

    return run_app(root, renderer=a.renderer)


def init_arguments(p: argparse.ArgumentParser) -> None:
    dir_arg(p)
    p.add_argument("--force", action="store_true", help="overwrite an existing config")


def run_init(a) -> int:
    from ....engine.project.config import ConfigError, write_template

    root = new_folder(a.dir)
    try:
        path = write_template(root, force=a.force)
    except ConfigError as e:
        return err(str(e))
    print(f"wrote {path}")
    return 0


def print_scan(rep, root: Path, console) -> None:
    """A scan's counts per status, its warnings and every problem with its file."""
    from rich.table import Table

    d = rep.to_json()
    t = Table(title=f"scan of {escape(str(root))}", show_header=True)
    t.add_column("status")
    t.add_column("images", justify="right")
    for k, v in sorted((d.get("counts") or {}).items()):
        t.add_row(k, str(v))
    console.print(t)
    extra = {k: d.get(k) for k in ("new", "changed", "removed") if d.get(k) is not None}
    if extra:
        console.print("  " + ", ".join(f"{k}: {v}" for k, v in extra.items()))

    for w in d.get("warnings") or []:
        console.print(f"[yellow]warning[/] {escape(w)}", highlight=False)
    problems = list(d.get("errors") or []) + list(d.get("problems") or [])
    if problems:
        pt = Table(title=f"{len(problems)} problem(s)", show_header=True)
        pt.add_column("file", overflow="fold")
        pt.add_column("problem", overflow="fold")
        for p in problems:
            if isinstance(p, dict):
                pt.add_row(escape(p.get("path", "")), escape(p.get("message", "")))
            else:
                pt.add_row(escape(str(p[0])), escape(str(p[-1])))
        console.print(pt)


def scan_arguments(p: argparse.ArgumentParser) -> None:
    dir_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--rehash", action="store_true", help="re-hash every file")


def run_scan(a) -> int:
    from ....engine.project import index

    root = folder(a.dir)
    rep = index.scan(open_project(root), rehash=a.rehash)
    if a.json:
        print(json.dumps(rep.to_json(), indent=2, default=str))
    else:
        print_scan(rep, root, new_console())
    return 0


def segment_arguments(p: argparse.ArgumentParser) -> None:
    dir_arg(p)
    p.add_argument("--method", choices=["otsu", "local"], default="otsu")
    p.add_argument("--overwrite", action="store_true",
                   help="also replace existing masks (old versions are kept in the history)")


def run_segment(a) -> int:
    from ....engine.project import index, segment

    root = folder(a.dir)
    project = open_project(root)
    res = segment.segment_folder(project, method=a.method, overwrite=a.overwrite)
    index.scan(project)
    console = new_console()
    console.print(f"masks written: {len(res['written'])}, existing kept: "
                  f"{len(res['skipped_existing'])}, no clear objects (empty mask): "
                  f"{len(res.get('empty') or [])}")
    for path, msg in res.get("errors") or []:
        # image errors name their file already (its full path): not twice
        named = str(msg).startswith((str(root / path), str(path)))
        console.print(f"[red]error[/] {escape(msg if named else f'{path}: {msg}')}")
    return 1 if res.get("errors") else 0


COMMANDS = [
    Command("open", "open the triage app on DIR (same as `segtriage DIR`)",
            open_arguments, run_open),
    Command("demo", "generate the built-in demo data set and open it", demo_arguments, run_demo),
    Command("init", "write a commented default segtriage.toml into DIR", init_arguments,
            run_init),
    Command("scan", "index DIR into the project state and print a summary", scan_arguments,
            run_scan),
    Command("segment", "threshold masks for images that have none (Otsu or local)",
            segment_arguments, run_segment),
]
