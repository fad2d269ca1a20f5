"""Snapshot commands: backup (a job in the engine), backups, verify, restore, prune.

STORE is the snapshot store (default [backup] destination); the use cases are
engine/project/backup/.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..common import config, folder, open_project, open_store, state_db
from ..follow import submit_and_follow
from ..output import err, escape, fmt, new_console
from . import Command, dir_arg

STORE_HELP = "snapshot store (default [backup] destination)"


def _dest(a) -> Path | None:
    """The snapshot store given with --to (or restore's --from), resolved; None: the
    config's."""
    d = getattr(a, "to", None) or getattr(a, "store_dir", None)
    return Path(d).resolve() if d else None


def backup_arguments(p: argparse.ArgumentParser) -> None:
    dir_arg(p)
    p.add_argument("--to", metavar="STORE", help=STORE_HELP)
    p.add_argument("--note", help="a note stored with the snapshot")
    p.add_argument("--take-over", action="store_true",
                   help="make the destination this project's, though another project (or "
                        "this one before a move) owned it: prune then covers its snapshots")
    p.add_argument("--detach", action="store_true")


def run_backup(a) -> int:
    root = folder(a.dir)
    params = {"dest": str(Path(a.to).resolve())} if a.to else {}
    if a.note:
        params["note"] = a.note
    if a.take_over:
        params["take_over"] = True
    return submit_and_follow(root, "backup", params, a.detach)


def backups_arguments(p: argparse.ArgumentParser) -> None:
    dir_arg(p)
    p.add_argument("--to", metavar="STORE", help=STORE_HELP)
    p.add_argument("--json", action="store_true")


def run_backups(a) -> int:
    from ....engine.project import backup

    root = folder(a.dir)
    # the project's notes are joined in where it has a state; a wiped folder lists them too
    snaps = backup.list_snapshots(root, config(root), dest=_dest(a),
                                  store=open_store(root) if state_db(root).exists() else None)
    if a.json:
        print(json.dumps(snaps, indent=2, default=str))
        return 0
    from rich.table import Table

    # the id holds the time (UTC); sizes in MiB: fits 80 columns with a short note
    t = Table(show_header=True, box=None, pad_edge=False, padding=(0, 2, 0, 0))
    t.add_column("snapshot", no_wrap=True)
    for c in ("files", "added", "masks changed"):
        t.add_column(c, no_wrap=True, justify="right")
    t.add_column("note", overflow="fold")
    for s in snaps:
        if s.get("error"):
            t.add_row(str(s.get("id")), "", "", "", f"[red]unreadable:[/] {escape(s['error'])}")
            continue
        added = s.get("bytes_added")
        t.add_row(str(s.get("id")), fmt(s.get("files")),
                  "–" if added is None else f"{added / 2**20:.1f} MiB",
                  fmt(s.get("masks_changed")), escape(s.get("note") or ""))
    new_console().print(t)
    return 0


def verify_arguments(p: argparse.ArgumentParser) -> None:
    dir_arg(p)
    p.add_argument("--to", metavar="STORE", help=STORE_HELP)


def run_verify(a) -> int:
    from ....engine.project import backup

    root = folder(a.dir)
    try:
        rep = backup.verify(root, config(root), dest=_dest(a))
    except backup.BackupError as e:
        return err(str(e))
    c = new_console()
    for line in rep.lines():
        c.print(line, markup=False)
    return 0 if rep.ok else 1


def restore_arguments(p: argparse.ArgumentParser) -> None:
    dir_arg(p)
    p.add_argument("snapshot", help="snapshot id (see `segtriage backups`)")
    p.add_argument("--to", dest="target", metavar="FOLDER",
                   help="restore into this folder instead of DIR")
    p.add_argument("--from", dest="store_dir", metavar="STORE", help=STORE_HELP)


def _undo_args(a, res: dict) -> str:
    """The restore that puts back what ``res`` replaced: same target, same store."""
    import shlex

    args = [a.dir, res["undo"]]
    if a.target:
        args += ["--to", a.target]
    if a.store_dir:
        args += ["--from", a.store_dir]
    return " ".join(shlex.quote(x) for x in args)


def run_restore(a) -> int:
    from ....engine.project import backup

    root = folder(a.dir)
    try:
        res = backup.restore(open_project(root), a.snapshot,
                             to=Path(a.target).resolve() if a.target else None, dest=_dest(a))
    except backup.BackupError as e:
        return err(str(e))
    print(f"restored snapshot {res['snapshot']} into {res['target']}: {res['restored']} "
          f"file(s) written, {res['unchanged']} unchanged, {len(res['kept'])} replaced "
          "version(s) kept in the store"
          + (f" as snapshot {res['undo']} (`segtriage restore {_undo_args(a, res)}` undoes "
             "this)" if res.get("undo") else ""))
    if res.get("index_error"):
        print(f"segtriage: restored, but {res['index_error']}", file=sys.stderr)
        return 1
    return 0


def prune_arguments(p: argparse.ArgumentParser) -> None:
    dir_arg(p)
    p.add_argument("--keep", type=int, required=True)
    p.add_argument("--to", metavar="STORE", help=STORE_HELP)


def run_prune(a) -> int:
    from ....engine.project import backup

    root = folder(a.dir)
    try:
        res = backup.prune(open_project(root), keep=a.keep, dest=_dest(a))
    except backup.BackupError as e:
        return err(str(e))
    print(f"deleted {len(res['deleted'])} snapshot(s) {' '.join(res['deleted'])}; "
          f"{res['objects_deleted']} object(s), {res['bytes_freed']} bytes freed; "
          f"{len(res['kept'])} kept")
    return 0


COMMANDS = [
    Command("backup", "snapshot images, masks, config and models", backup_arguments,
            run_backup),
    Command("backups", "list snapshots", backups_arguments, run_backups),
    Command("verify", "re-hash every stored object; non-zero exit on damage", verify_arguments,
            run_verify),
    Command("restore", "restore a snapshot byte-identically", restore_arguments, run_restore),
    Command("prune", "keep only the newest N snapshots", prune_arguments, run_prune),
]
