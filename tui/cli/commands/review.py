"""Commands on single masks: their history (history, revert) and the app's review keys
headless (accept: a, flag: x, use-prediction: P). DIR is required; the images follow it."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from ..common import folder, image_paths, open_project, open_store
from ..output import ago, err, escape, fmt, new_console
from . import Command, dir_arg


def history_arguments(p: argparse.ArgumentParser) -> None:
    dir_arg(p)
    p.add_argument("path", help="image or mask, relative to DIR")
    p.add_argument("--json", action="store_true")


def run_history(a) -> int:
    from ....engine.project import history

    root = folder(a.dir)
    from ....engine.project.backup import BackupError

    try:
        versions = history.history(open_project(root, create=False), a.path)
    except (BackupError, KeyError, ValueError, FileNotFoundError) as e:
        return err(str(e))
    if a.json:
        print(json.dumps([asdict(v) for v in versions], indent=2))
        return 0
    from rich.table import Table

    t = Table(title=f"mask history of {a.path}", show_header=True,
              caption="on disk: the version the mask file holds now" if versions else None)
    for c in ("version", "time", "source", "pixels changed", "Dice to previous", "sha256",
              "on disk"):
        t.add_column(c)
    for v in versions:
        t.add_row(str(v.version), ago(v.created_at), escape(v.source), fmt(v.pixels_changed),
                  fmt(v.dice_prev), v.sha[:12], "◀" if v.current else "")
    new_console().print(t)
    return 0


def revert_arguments(p: argparse.ArgumentParser) -> None:
    dir_arg(p)
    p.add_argument("path", help="image or mask, relative to DIR")
    p.add_argument("version", type=int, nargs="?")


def run_revert(a) -> int:
    from ....engine.project import history

    root = folder(a.dir)
    from ....engine.project.backup import BackupError

    try:
        res = history.revert(open_project(root, create=False), a.path, a.version)
    except (BackupError, KeyError, ValueError, FileNotFoundError) as e:
        return err(str(e))
    if res.get("changed"):
        print(f"{res['path']}: version {res['version']} brought back as version "
              f"{res['new_version']}")
    else:
        print(f"{res['path']}: version {res['version']} is already current")
    return 0


def images_arguments(p: argparse.ArgumentParser) -> None:
    """DIR, then one image or more (accept, flag, use-prediction)."""
    p.add_argument("dir", help="data folder")
    p.add_argument("images", nargs="+", help="images or their masks, from here or DIR")


def _decide(a, decide) -> int:
    """Review decisions for the images named, by the app's rules: ``decide(row)`` gives the
    new status, or ``(None, why)`` to leave the row as it is."""
    root = folder(a.dir)
    store = open_store(root, create=False)
    rows = {r.path: r for r in store.images()}
    left, by_status = 0, {}
    for p in image_paths(root, store, a.images, a.dir):
        status, why = decide(rows[p])
        if status is None:
            left += 1
            print(f"{p}: left as it is: {why}")
        else:
            by_status.setdefault(status, []).append(rows[p].id)
            print(f"{p}: {status}")
    for status, ids in by_status.items():  # one transaction each, not one per image
        store.set_status(ids, status, by="cli")
    return 1 if left else 0


def run_accept(a) -> int:
    from ....engine.project.review import accept_problem

    def decide(r):
        why = accept_problem(r.mask_path, r.error)
        return (None, why) if why else ("accepted", None)

    return _decide(a, decide)


def flag_arguments(p: argparse.ArgumentParser) -> None:
    images_arguments(p)
    p.add_argument("--clear", action="store_true", help="unflag them (back to unreviewed)")


def run_flag(a) -> int:
    from ....engine.project.review import unflagged_status

    def decide(r):
        if not a.clear:
            return "flagged", None
        if r.status != "flagged":
            return None, f"{r.status}, not flagged"
        return unflagged_status(r.mask_path, r.error), None

    return _decide(a, decide)


def run_use_prediction(a) -> int:
    from ....engine.project.backup import BackupError
    from ....engine.project.review import ReviewError, replace_with_prediction

    root = folder(a.dir)
    project = open_project(root, create=False)
    store = project.store
    rows = {r.path: r for r in store.images()}
    failed = 0
    for p in image_paths(root, store, a.images, a.dir):
        try:
            print(replace_with_prediction(project, rows[p].id)
                  + f" (`segtriage revert {a.dir} {p}` undoes)")
        except (ReviewError, BackupError, OSError, ValueError) as e:
            failed += 1
            print(f"segtriage: {e}", file=sys.stderr)
    return 1 if failed else 0


COMMANDS = [
    Command("history", "versions of one mask", history_arguments, run_history),
    Command("revert", "bring back a mask version (default: undo the last change)",
            revert_arguments, run_revert),
    Command("accept", "mark masks as correct (the app's a)", images_arguments, run_accept),
    Command("flag", "flag images: left out of training (the app's x)", flag_arguments,
            run_flag),
    Command("use-prediction", "replace masks by the current model's prediction (the app's P; "
                              "the old mask stays in history, `revert` undoes)",
            images_arguments, run_use_prediction),
]
