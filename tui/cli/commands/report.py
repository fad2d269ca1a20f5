"""Commands that show the project: report (one row per image), models and rollback, status."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from ....engine.store.rows import EngineState
from ..common import folder, open_project, open_store
from ..output import ago, err, escape, fmt, new_console
from . import Command, dir_arg


def sort_rows(rows: list[dict], key: str, reverse: bool = False) -> list[dict]:
    """Rows in the column's own direction (SORT_KEYS: the rows most worth a look first);
    ``reverse`` flips it. Rows without a value stay last either way."""
    from ....engine.project import scoring

    desc = scoring.SORT_KEYS.get(key, "asc") == "desc"
    return scoring.review_order(rows, key=key, reverse=desc != reverse)


def report_columns(rows: list[dict]) -> list[str]:
    """Every column any row has, in first-seen order: unscored rows lack the score columns,
    and the first row must not decide what the others may show."""
    return list(dict.fromkeys(k for r in rows for k in r)) or ["image"]


def report_arguments(p: argparse.ArgumentParser) -> None:
    dir_arg(p)
    p.add_argument("--sort", default="priority", help="column to sort by (default priority)")
    p.add_argument("--reverse", action="store_true", help="reverse the sort")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--limit", type=int, default=0, help="at most N rows (0: all)")


def run_report(a) -> int:
    root = folder(a.dir)
    from ....engine.project import scoring
    from ....engine.project.queries import report_rows

    rows = report_rows(open_project(root, create=False))
    columns = report_columns(rows)
    if a.sort not in columns and a.sort not in scoring.SORT_KEYS:
        return err(f"unknown sort column {a.sort!r}; columns: {', '.join(columns)}")
    rows = [dict.fromkeys(columns) | r for r in rows]  # every row carries every column
    if a.sort == "image":
        rows.sort(key=lambda r: r["image"], reverse=a.reverse)
    else:
        rows = sort_rows(rows, a.sort, a.reverse)
    if a.limit:
        rows = rows[:a.limit]
    if a.format == "json":
        print(json.dumps(rows, indent=1, default=str))
    elif a.format == "csv":
        import csv

        w = csv.DictWriter(sys.stdout, fieldnames=columns)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    else:
        _print_report_table(rows)
    return 0


def _print_report_table(rows: list[dict]) -> None:
    from rich.table import Table

    # the app's list in short: fits 80 columns with names of 12 characters; names may
    # take up to 24 before folding, which squeezes the numbers; every column is in csv/json
    t = Table(show_header=True, box=None, pad_edge=False, padding=(0, 1, 0, 0))
    t.add_column("~", no_wrap=True)
    t.add_column("image", overflow="fold",
                 min_width=min(24, max((len(r["image"]) for r in rows), default=5)))
    for head in ("status", "category", "prio", "conf", "LQ", "Dice", "IoU", "CE", "obj p/m"):
        t.add_column(head, no_wrap=True, justify="left" if head in (
            "status", "category") else "right")
    for r in rows:
        objs = "–" if r.get("n_pred") is None else f"{r.get('n_pred')}/{fmt(r.get('n_mask'))}"
        mark = "c" if r.get("checkpoint") is not None else "~" if r["stale"] else ""
        t.add_row(mark, escape(r["image"]), r["status"],
                  r["category"] or "–",
                  *(fmt(r.get(c)) for c in ("priority", "confidence", "label_quality",
                                            "dice", "iou", "ce")), objs)
    new_console().print(t)


def models_arguments(p: argparse.ArgumentParser) -> None:
    dir_arg(p)
    p.add_argument("--json", action="store_true")


def run_models(a) -> int:
    store = open_store(folder(a.dir), create=False)
    models, cur = store.models(), store.current_model_id()
    if a.json:
        print(json.dumps([{k: v for k, v in asdict(m).items() if k != "manifest"} | {
            "current": m.id == cur} for m in models], indent=2, default=str))
        return 0
    from rich.table import Table

    t = Table(show_header=True)
    for c in ("version", "kind", "arch", "created", "epochs", "train", "valid loss",
              "valid Dice", ""):
        t.add_column(c)
    for m in models:
        t.add_row(str(m.id), m.kind, m.arch or "", ago(m.created_at),
                  fmt(m.epochs), fmt(m.n_train), fmt(m.valid_loss),
                  fmt(m.valid_dice), "current" if m.id == cur else "")
    new_console().print(t)
    return 0


def rollback_arguments(p: argparse.ArgumentParser) -> None:
    dir_arg(p)
    p.add_argument("version", type=int)


def run_rollback(a) -> int:
    root = folder(a.dir)
    store = open_store(root, create=False)
    from ....engine.store import StoreError

    try:
        store.set_current_model(a.version)
    except StoreError as e:
        return err(str(e))
    print(f"model {a.version} is current; rows scored by other versions are stale "
          "(the engine re-predicts them)")
    from ....engine.daemon.control import engine_pid

    if engine_pid(root):
        store.submit_job("predict", {"scope": "stale"}, requested_by="rollback")
    return 0


def status_dict(root: Path) -> dict:
    """`status --json`: the project's status facts, with the engine's pid."""
    from ....engine.daemon.control import engine_pid
    from ....engine.project.queries import status_facts

    st = status_facts(open_store(root, create=False))  # a bad state_dir is reported here
    pid = engine_pid(root)
    eng = st.engine if pid else EngineState()
    m, b = st.model, st.last_backup
    return {
        "folder": str(root),
        "engine": {"running": pid is not None, "pid": pid, "state": eng.state,
                   "device": eng.device, "watcher": eng.watcher,
                   "last_event": eng.last_event},
        "images": st.images,
        "problems": st.problems,
        "model": None if m is None else {
            "version": m.id, "kind": m.kind, "created_at": m.created_at,
            "n_train": m.n_train, "valid_dice": m.valid_dice},
        "edits_since_train": st.edits_since_train,
        # an early ranking's checkpoint that some rows still show (no model scored them yet)
        "checkpoint": None if st.checkpoint is None else {
            "step": st.checkpoint.info.get("step"), "steps": st.checkpoint.info.get("steps"),
            "valid_dice": st.checkpoint.valid_dice, "rows": st.checkpoint_rows},
        "backup": {"last": None if b is None else b.created_at,
                   "snapshot": None if b is None else b.snapshot,
                   "edits_since": st.edits_since_backup},
        "jobs": [{"id": j.id, "kind": j.kind, "state": j.state, "progress": j.progress,
                  "message": j.message, "eta": j.eta} for j in st.active],
    }


def status_arguments(p: argparse.ArgumentParser) -> None:
    dir_arg(p)
    p.add_argument("--json", action="store_true")


def run_status(a) -> int:
    root = folder(a.dir)
    st = status_dict(root)
    if a.json:
        print(json.dumps(st, indent=2, default=str))
        return 0
    c = new_console()
    e = st["engine"]
    c.print(f"[bold]{escape(str(root))}[/]")
    known = [f"pid {e['pid']}", e["state"], e["device"]]  # device: None until probed
    c.print("engine   " + (escape(", ".join(str(x) for x in known if x is not None))
                           if e["running"] else "not running"))
    c.print("images   " + ", ".join(f"{k} {v}" for k, v in sorted(st["images"].items()))
            + (f"; {st['problems']} problem file(s)" if st["problems"] else ""))
    m = st["model"]
    c.print("model    " + ("none yet" if m is None else
                           f"v{m['version']} ({m['kind']}), {ago(m['created_at'])}, "
                           f"{m['n_train']} masks, valid Dice {fmt(m['valid_dice'])}"))
    if (ck := st["checkpoint"]) is not None:
        c.print(f"ranking  {ck['rows']} row(s) from the checkpoint at step {ck['step']} of "
                f"{ck['steps']}, valid Dice {fmt(ck['valid_dice'])}")
    c.print(f"edits    {st['edits_since_train']} mask(s) changed since the last train")
    b = st["backup"]
    c.print(f"backup   last {ago(b['last'])}" + (f" ({b['snapshot']})" if b["snapshot"] else "")
            + f", {b['edits_since']} mask(s) changed since")
    for j in st["jobs"]:
        gone = j["state"] == "running" and not e["running"]
        c.print(f"job      {j['id']} {j['kind']} {j['state']} {j['progress'] * 100:.0f}% "
                + ("(stopped with the engine: it resumes when the engine starts)" if gone
                   else escape(j["message"] or "")))
    return 0


COMMANDS = [
    Command("report", "one row per image, in the review order", report_arguments, run_report),
    Command("models", "list model versions", models_arguments, run_models),
    Command("rollback", "make model version N current", rollback_arguments, run_rollback),
    Command("status", "engine, jobs, model, backups and edits at a glance", status_arguments,
            run_status),
]
