"""The `segtriage` command: parses, dispatches, prints with rich.

Only argparse is imported at start so `segtriage --help` answers at once; each command imports
what it needs. Nothing here imports torch or fastai: commands that compute submit a job to the
engine process and follow its progress from the project state.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

COMMANDS = (
    "demo", "init", "scan", "segment", "engine", "train", "predict", "crossval", "rescore",
    "jobs", "cancel", "report", "models", "rollback", "status", "backup", "backups", "verify",
    "restore", "prune", "history", "revert", "accept", "flag", "use-prediction", "open",
)

# Commands that live in a module of their own: name -> (module under segtriage.tui, help).
# The module has add_arguments(parser) and run(args) -> int, and imports only argparse at its
# top (the parser is built at every start); run() imports what the command needs.
MODULE_COMMANDS: dict[str, tuple[str, str]] = {
    "paint": ("commands.paint", "edit a mask in the terminal (zoom, brush, object fixes, undo)"),
    "fix": ("commands.fix", "fix masks headless: drop unseen, add predicted, fill holes, grow/shrink"),
    "measure": ("commands.measure", "object size, shape and number density per object, image and data set"),
}
COMMANDS = COMMANDS + tuple(MODULE_COMMANDS)

EPILOG = """\
examples:
  segtriage demo                 make a demo data set in ./demo and open it
  segtriage ~/data/bubbles       open the triage app on a folder (starts the engine)
  segtriage train DIR --epochs 8 retrain and follow progress (Ctrl-C detaches)
  segtriage report DIR --format json --limit 20
"""


def _dir_arg(p: argparse.ArgumentParser, default: str | None = None) -> None:
    if default is None:
        p.add_argument("dir", help="data folder")
    else:
        p.add_argument("dir", nargs="?", default=default, help=f"data folder (default {default})")


def _scale_args(p: argparse.ArgumentParser, *, launch: bool) -> None:
    p.add_argument("--gpus", type=int, metavar="N",
                   help="N GPUs (one torchrun rank each; N CPU ranks without CUDA); "
                        "default [model] gpus")
    if launch:
        p.add_argument("--launch", choices=["local", "external"],
                       help="external: the engine writes the run folder and waits for ranks "
                            "started elsewhere (SLURM, other hosts; docs/scaling.md)")


def _seconds(text: str) -> float:
    """A number of seconds >= 0 (argparse type): nan and inf would mean 'never' silently."""
    import math

    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not math.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="segtriage", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Triage image segmentation masks: train a U-Net, let it point at the masks "
                    "that are probably wrong, fix those, retrain.\n"
                    "`segtriage [DIR]` opens the app on DIR (default: the current folder).")
    p.add_argument("--version", action="version", version="segtriage 0.1.0")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")

    s = sub.add_parser("open", help="open the triage app on DIR (same as `segtriage DIR`)")
    _dir_arg(s, ".")
    s.add_argument("--renderer", choices=["halfcell", "auto", "kitty", "sixel", "unicode"],
                   help="terminal image protocol for the preview")
    s.add_argument("--no-engine", action="store_true", help="do not start the engine")

    s = sub.add_parser("demo", help="generate the built-in demo data set and open it")
    _dir_arg(s, "demo")
    # None: the existing demo's value when DIR holds one, else the default (DEMO_DEFAULTS)
    s.add_argument("--count", type=int, help="images (default 96)")
    s.add_argument("--size", type=int, help="image side in pixels (default 128)")
    s.add_argument("--seed", type=int, help="random seed (default 0)")
    s.add_argument("--regenerate", action="store_true",
                   help="replace the demo in DIR by one with other --count/--size/--seed")
    s.add_argument("--no-tui", action="store_true", help="print the scan summary instead")
    s.add_argument("--no-train", action="store_true",
                   help="do not start the first training job")
    s.add_argument("--renderer", choices=["halfcell", "auto", "kitty", "sixel", "unicode"])

    s = sub.add_parser("init", help="write a commented default segtriage.toml into DIR")
    _dir_arg(s)
    s.add_argument("--force", action="store_true", help="overwrite an existing config")

    s = sub.add_parser("scan", help="index DIR into the project state and print a summary")
    _dir_arg(s)
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--rehash", action="store_true", help="re-hash every file")

    s = sub.add_parser("segment", help="threshold masks for images that have none (Otsu or local)")
    _dir_arg(s)
    s.add_argument("--method", choices=["otsu", "local"], default="otsu")
    s.add_argument("--overwrite", action="store_true",
                   help="also replace existing masks (old versions are kept in the history)")

    s = sub.add_parser("engine", help="run or manage the background engine of DIR")
    s.add_argument("action", choices=["run", "start", "stop", "status"])
    _dir_arg(s)
    s.add_argument("--idle-exit", type=_seconds, default=None,
                   help="seconds idle with no client before exiting (0: never)")

    s = sub.add_parser("train", help="train a new model version (a job in the engine)")
    _dir_arg(s)
    s.add_argument("--epochs", type=int)
    s.add_argument("--arch", choices=["resnet18", "resnet34", "resnet50"])
    _scale_args(s, launch=True)
    s.add_argument("--detach", action="store_true", help="submit and return at once")

    s = sub.add_parser("crossval", help="train K fold models and score out-of-fold")
    _dir_arg(s)
    s.add_argument("--folds", type=int)
    s.add_argument("--epochs", type=int)
    _scale_args(s, launch=False)
    s.add_argument("--detach", action="store_true")

    s = sub.add_parser("predict", help="score images with the current model")
    _dir_arg(s)
    s.add_argument("--all", action="store_true", help="re-predict every image, not only stale")
    s.add_argument("images", nargs="*", help="only these images: image or mask paths, from "
                   "the current folder or relative to DIR")
    _scale_args(s, launch=True)
    s.add_argument("--detach", action="store_true")

    s = sub.add_parser("rescore", help="re-score every image from its stored probabilities "
                                       "(after a [scoring] change; no model run)")
    _dir_arg(s)
    s.add_argument("--detach", action="store_true")

    s = sub.add_parser("jobs", help="list jobs")
    _dir_arg(s)
    s.add_argument("--json", action="store_true")
    s.add_argument("--limit", type=int, default=20)

    s = sub.add_parser("cancel", help="cancel a queued or running job")
    _dir_arg(s)
    s.add_argument("job", type=int, nargs="?", help="job id (default: the running one)")

    s = sub.add_parser("report", help="one row per image, in the review order")
    _dir_arg(s)
    s.add_argument("--sort", default="priority", help="column to sort by (default priority)")
    s.add_argument("--reverse", action="store_true", help="reverse the sort")
    s.add_argument("--format", choices=["table", "csv", "json"], default="table")
    s.add_argument("--limit", type=int, default=0, help="at most N rows (0: all)")

    s = sub.add_parser("models", help="list model versions")
    _dir_arg(s)
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("rollback", help="make model version N current")
    _dir_arg(s)
    s.add_argument("version", type=int)

    s = sub.add_parser("status", help="engine, jobs, model, backups and edits at a glance")
    _dir_arg(s)
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("backup", help="snapshot images, masks, config and models")
    _dir_arg(s)
    s.add_argument("--to", metavar="STORE", help="snapshot store (default [backup] destination)")
    s.add_argument("--note", help="a note stored with the snapshot")
    s.add_argument("--take-over", action="store_true",
                   help="make the destination this project's, though another project (or "
                        "this one before a move) owned it: prune then covers its snapshots")
    s.add_argument("--detach", action="store_true")

    s = sub.add_parser("backups", help="list snapshots")
    _dir_arg(s)
    s.add_argument("--to", metavar="STORE", help="snapshot store (default [backup] destination)")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("verify", help="re-hash every stored object; non-zero exit on damage")
    _dir_arg(s)
    s.add_argument("--to", metavar="STORE", help="snapshot store (default [backup] destination)")

    s = sub.add_parser("restore", help="restore a snapshot byte-identically")
    _dir_arg(s)
    s.add_argument("snapshot", help="snapshot id (see `segtriage backups`)")
    s.add_argument("--to", dest="target", metavar="FOLDER",
                   help="restore into this folder instead of DIR")
    s.add_argument("--from", dest="store_dir", metavar="STORE",
                   help="snapshot store (default [backup] destination)")

    s = sub.add_parser("prune", help="keep only the newest N snapshots")
    _dir_arg(s)
    s.add_argument("--keep", type=int, required=True)
    s.add_argument("--to", metavar="STORE", help="snapshot store (default [backup] destination)")

    s = sub.add_parser("history", help="versions of one mask")
    _dir_arg(s)
    s.add_argument("path", help="image or mask, relative to DIR")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("revert", help="bring back a mask version (default: undo the last change)")
    _dir_arg(s)
    s.add_argument("path", help="image or mask, relative to DIR")
    s.add_argument("version", type=int, nargs="?")

    # the app's review keys, headless (a, x, P): DIR is required, the images follow it
    s = sub.add_parser("accept", help="mark masks as correct (the app's a)")
    s.add_argument("dir", help="data folder")
    s.add_argument("images", nargs="+", help="images or their masks, from here or DIR")

    s = sub.add_parser("flag", help="flag images: left out of training (the app's x)")
    s.add_argument("dir", help="data folder")
    s.add_argument("images", nargs="+", help="images or their masks, from here or DIR")
    s.add_argument("--clear", action="store_true", help="unflag them (back to unreviewed)")

    s = sub.add_parser("use-prediction",
                       help="replace masks by the current model's prediction (the app's P; "
                            "the old mask stays in history, `revert` undoes)")
    s.add_argument("dir", help="data folder")
    s.add_argument("images", nargs="+", help="images or their masks, from here or DIR")

    for name, (module, help_text) in MODULE_COMMANDS.items():
        s = sub.add_parser(name, help=help_text)
        _command_module(name).add_arguments(s)
    return p


def _command_module(name: str):
    import importlib

    return importlib.import_module(f".{MODULE_COMMANDS[name][0]}", __package__)


# -- helpers -------------------------------------------------------------------------------

def _console():
    from rich.console import Console

    return Console()


def escape(text: str) -> str:
    """Text shown through rich printed as written: '[backup]' in a message, a path or an
    image name is not markup (rich is imported here, not at start: --help stays fast)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def _err(msg: str) -> int:
    print(f"segtriage: {msg}", file=sys.stderr)
    return 2


def _root(d: str, *, must_exist: bool = True) -> Path:
    root = Path(d).expanduser()
    if must_exist and not root.is_dir():
        raise SystemExit(_err(f"{d}: no such folder"))
    return root.resolve()


def _new_root(d: str) -> Path:
    """A folder that may not exist yet (created here); a file of that name is an error."""
    root = _root(d, must_exist=False)
    if root.exists() and not root.is_dir():
        raise SystemExit(_err(f"{d}: not a folder"))
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SystemExit(_err(f"cannot create {d}: {e}")) from None
    return root


def _cfg(root: Path):
    from ...engine.project.config import ConfigError, load_config

    try:
        return load_config(root)
    except ConfigError as e:
        raise SystemExit(_err(str(e))) from None


def _state_path(root: Path) -> Path:
    """DIR's state folder from [project] state_dir alone: a broken [model] (say) must not keep
    anyone from the running engine, its jobs and its status."""
    from ...engine.project.config import ConfigError, state_path

    try:
        return state_path(root)
    except ConfigError as e:
        raise SystemExit(_err(str(e))) from None


def _state_db(root: Path) -> Path:
    return _state_path(root) / "state.db"


def _store(root: Path, *, create: bool = True):
    """The folder's project state. ``create=False`` (commands that only read or change what is
    there) refuses a folder that was never indexed instead of leaving a new state behind."""
    import sqlite3

    from ...engine.store import Store, StoreError

    db = _state_db(root)
    if not create and not db.exists():
        raise SystemExit(_err(f"{root} is not a segtriage project yet (no {db}); index it "
                              f"with `segtriage scan {root}` or open it with `segtriage {root}`"))
    try:
        return Store(db)
    except (StoreError, OSError, sqlite3.Error) as e:
        raise SystemExit(_err(f"cannot open the project state of {root}: {e}")) from None


def _project(root: Path, *, create: bool = True):
    """The folder's project: its config (checked: a bad one is reported) and its state (see
    _store for ``create``)."""
    from ...engine.project.project import Project

    return Project(root, _cfg(root), _store(root, create=create))


def _ago(ts: float | None) -> str:
    if not ts:
        return "never"
    s = max(0, time.time() - ts)
    for unit, n in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= n:
            return f"{s / n:.0f} {unit} ago"
    return f"{s:.0f} s ago"


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.2f}" if abs(v) >= 10 else f"{v:.3f}"
    return str(v)


def _engine_log(root: Path) -> Path:
    from ...engine.daemon.control import LOG_NAME

    return _state_path(root) / "logs" / LOG_NAME


def _need_engine(root: Path) -> int:
    from ...engine.daemon.control import ensure_engine

    pid = ensure_engine(root)
    if pid is None:
        raise SystemExit(_err(f"the engine did not start; see {_engine_log(root)}"))
    return pid


ENGINE_CHECK_S = 2.0  # how often a follower looks whether the engine still holds its lock


def _resumed_as(store, job_id: int):
    """The job an interrupted one was queued again as (recover_interrupted), or None."""
    return next((j for j in store.jobs(limit=200)
                 if (j.params or {}).get("resumed_from") == job_id), None)


def follow_job(store, job_id: int, *, console=None, root: Path | None = None) -> int:
    """Follow a job with a progress bar until it ends. Ctrl-C detaches; the job goes on.

    With ``root``, the follower also watches the engine (which this command started): when
    it dies in the job (kill -9, out of memory) it is started again, and the job that
    recovery queues in its place is followed; a job an engine stop interrupted is reported
    with how it goes on, instead of a bar that never moves."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from ...engine.daemon.control import DeadEngineRule, engine_pid

    console = console or _console()
    client = store.register_client("cli")
    last_event, dead_engine = 0, DeadEngineRule()
    try:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                      TextColumn("{task.percentage:>5.1f}%"), TimeRemainingColumn(),
                      TextColumn("{task.fields[msg]}"), console=console,
                      transient=False) as prog:
            job = store.job(job_id)
            task = prog.add_task(f"job {job_id} {job.kind}", total=1.0, msg="queued")
            beat = checked = time.monotonic()
            while True:
                job = store.job(job_id)
                prog.update(task, completed=job.progress, msg=escape(job.message or job.state))
                for ev in store.events(job_id=job_id, after_id=last_event):
                    last_event = ev.id
                    d = ev.data or {}
                    if ev.kind == "log" and d.get("message"):  # backup, epochs, skipped
                        prog.console.print(f"  {escape(str(d['message']))}")
                    if ev.kind != "epoch":
                        continue
                    fold = f"fold {d['fold'] + 1} " if d.get("fold") is not None else ""
                    prog.console.print(
                        f"  {fold}epoch {d.get('epoch')}: train loss {_fmt(d.get('train_loss'))}"
                        f"  valid loss {_fmt(d.get('valid_loss'))}"
                        f"  valid Dice {_fmt(d.get('valid_dice'))}")
                if job.state == "interrupted" and root is not None:
                    nxt = _resumed_as(store, job_id)
                    if nxt is not None and engine_pid(root) is not None:
                        prog.console.print(f"job {job_id} was interrupted; it goes on as job "
                                           f"{nxt.id}")
                        job_id, last_event = nxt.id, 0
                        prog.update(task, description=f"job {job_id} {nxt.kind}")
                        continue
                if not job.active:
                    break
                now = time.monotonic()
                if root is not None and now - checked > ENGINE_CHECK_S:
                    checked = now
                    if dead_engine.restart_now(job_running=job.state == "running",
                                               engine_alive=engine_pid(root) is not None):
                        prog.console.print(f"the engine stopped while job {job_id} ran: "
                                           "starting it again (the job resumes)")
                        _need_engine(root)
                if now - beat > 10:
                    store.client_heartbeat(client)
                    beat = now
                time.sleep(0.25)
    except KeyboardInterrupt:
        if root is not None and engine_pid(root) is None:
            console.print(f"\ndetached: job {job_id} waits for the engine, which is not "
                          "running (`segtriage engine start DIR`)")
        else:
            console.print(f"\ndetached: job {job_id} goes on in the engine "
                          f"(`segtriage jobs DIR`, `segtriage cancel DIR {job_id}`)")
        return 0
    finally:
        store.unregister_client(client)
    style = {"done": "green", "failed": "red"}.get(job.state, "yellow")
    console.print(f"job {job_id} [{style}]{job.state}[/]"
                  + (f": {escape(job.error)}" if job.error else "")
                  + (f" {escape(json.dumps(job.result))}" if job.result else ""))
    if job.state == "interrupted":
        nxt = _resumed_as(store, job_id)
        console.print(f"the engine stopped; job {job_id} is queued again"
                      + (f" as job {nxt.id}" if nxt else "")
                      + " and runs when it starts (`segtriage engine start DIR`)")
    return 0 if job.state == "done" else 1


def _submit_and_follow(root: Path, kind: str, params, detach: bool) -> int:
    """Index DIR, submit the job, start the engine if needed, follow. ``params`` is a dict,
    or a function of the store giving one once the scan has run."""
    from ...engine.project import index

    project = _project(root)
    store = project.store
    index.scan(project)
    if callable(params):
        params = params(store)
    job_id = store.submit_job(kind, params, requested_by="cli")
    pid = _need_engine(root)
    console = _console()
    console.print(f"job {job_id} ({kind}) queued; engine pid {pid}")
    if detach:
        return 0
    return follow_job(store, job_id, console=console, root=root)


# -- commands ------------------------------------------------------------------------------

def cmd_open(a) -> int:
    root = _root(a.dir)
    _cfg(root)  # a bad config is reported before the screen switches
    from ..app.app import run_app

    return run_app(root, renderer=a.renderer, start_engine=not a.no_engine)


DEMO_DEFAULTS = {"count": 96, "size": 128, "seed": 0}


def cmd_demo(a) -> int:
    from ...engine.project import demo, index

    root = _root(a.dir, must_exist=False)
    if root.exists() and not root.is_dir():
        return _err(f"{a.dir}: not a folder")
    manifest = demo.truth_dir(root) / "manifest.json"
    given = {k: getattr(a, k) for k in DEMO_DEFAULTS}
    have = None
    if manifest.exists():
        try:
            m = json.loads(manifest.read_text())
            have = {k: m[k] for k in DEMO_DEFAULTS}
        except (ValueError, KeyError, TypeError):
            return _err(f"{manifest}: not a readable demo manifest; choose another DIR")
    # Reopening a demo never rewrites it: its masks may hold the person's edits and its
    # rows their decisions. Other settings replace it only when asked to.
    want = {k: given[k] if given[k] is not None else (have or DEMO_DEFAULTS)[k]
            for k in DEMO_DEFAULTS}
    console = _console()
    if want != have:
        if have is not None and not a.regenerate:
            flags = " ".join(f"--{k} {v}" for k, v in have.items())
            return _err(f"{root} holds a demo made with {flags}; open it with "
                        f"`segtriage demo {a.dir}`, or pass --regenerate to replace its "
                        "images and masks (edits and decisions on them are lost: "
                        "`segtriage backup` first)")
        if root.exists() and any(p for p in root.iterdir() if p.name != ".segtriage"):
            if have is None:
                return _err(f"{root} exists and is not a segtriage demo folder; "
                            "choose another DIR")
        try:
            summary = demo.make_demo(root, **want, overwrite=have is not None)
        except ValueError as e:
            return _err(str(e))
        console.print(f"demo data set: {summary.get('count')} images of {want['size']}² in "
                      f"{escape(str(root))}; truth in {escape(str(demo.truth_dir(root)))}")
    project = _project(root)
    rep = index.scan(project)
    store = project.store
    if not a.no_train and store.current_model_id() is None and not any(
            j.kind in ("train", "crossval") for j in store.active_jobs()):
        jid = store.submit_job("train", {}, requested_by="demo")
        console.print(f"first training queued as job {jid}")
    if a.no_tui:
        _print_scan(rep, root, console)
        pid = _need_engine(root) if not a.no_train else None
        if pid:
            console.print(f"engine pid {pid} is training; follow with "
                          f"`segtriage jobs {escape(a.dir)}` or open `segtriage {escape(a.dir)}`")
        return 0
    from ..app.app import run_app

    return run_app(root, renderer=a.renderer)


def cmd_init(a) -> int:
    from ...engine.project.config import ConfigError, write_template

    root = _new_root(a.dir)
    try:
        path = write_template(root, force=a.force)
    except ConfigError as e:
        return _err(str(e))
    print(f"wrote {path}")
    return 0


def _print_scan(rep, root: Path, console) -> None:
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


def cmd_scan(a) -> int:
    from ...engine.project import index

    root = _root(a.dir)
    rep = index.scan(_project(root), rehash=a.rehash)
    if a.json:
        print(json.dumps(rep.to_json(), indent=2, default=str))
    else:
        _print_scan(rep, root, _console())
    return 0


def cmd_segment(a) -> int:
    from ...engine.project import index, segment

    root = _root(a.dir)
    project = _project(root)
    res = segment.segment_folder(project, method=a.method, overwrite=a.overwrite)
    index.scan(project)
    console = _console()
    console.print(f"masks written: {len(res['written'])}, existing kept: "
                  f"{len(res['skipped_existing'])}, no clear objects (empty mask): "
                  f"{len(res.get('empty') or [])}")
    for path, msg in res.get("errors") or []:
        # image errors name their file already (its full path): not twice
        named = str(msg).startswith((str(root / path), str(path)))
        console.print(f"[red]error[/] {escape(msg if named else f'{path}: {msg}')}")
    return 1 if res.get("errors") else 0


def cmd_engine(a) -> int:
    from ...engine.daemon import control

    root = _root(a.dir)
    if a.action == "run":
        _cfg(root)  # an engine starts only on a valid config
        # the engine process proper (torch and fastai are its own): this one becomes it
        argv = [sys.executable, "-m", "segtriage.engine", "run", str(root)]
        if a.idle_exit is not None:
            argv += ["--idle-exit", repr(a.idle_exit)]
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, argv)
    # stop and status need the state folder only: they work while [model] (say) is broken
    log = _engine_log(root)
    if a.action == "start":
        pid = control.engine_pid(root)
        if pid:
            print(f"engine already running (pid {pid})")
            return 0
        _cfg(root)  # an engine starts only on a valid config
        pid = control.start_detached(root, idle_exit_s=a.idle_exit)
        if pid is None:
            return _err(f"the engine did not start; see {log}")
        print(f"engine started (pid {pid}); log: {log}")
        return 0
    if a.action == "stop":
        if control.engine_pid(root) is None:
            print("no engine running")
            return 0
        ok = control.stop_engine(root)
        print("engine stopped" if ok else "engine did not stop in time")
        return 0 if ok else 1
    pid = control.engine_pid(root)
    if not pid:
        print("engine not running")
        return 3
    st = _store(root).engine_state()
    # the device is known once the engine has probed it (torch loads in the background)
    print(f"engine running (pid {pid}), {st.get('state') or '?'}"
          + (f", device {st['device']}" if st.get("device") else ""))
    return 0


def cmd_train(a) -> int:
    root = _root(a.dir)
    if a.launch == "external":  # the engine says so too, but only after its backup
        gpus = a.gpus if a.gpus is not None else getattr(_cfg(root).model, "gpus", 1)
        if gpus < 2:
            return _err(f"--launch external needs --gpus N (or [model] gpus), the total number "
                        f"of ranks you will start, 2 or more (now {gpus}); docs/scaling.md")
    params = {k: v for k, v in (("epochs", a.epochs), ("arch", a.arch), ("gpus", a.gpus),
                                ("launch", a.launch)) if v is not None}
    return _submit_and_follow(root, "train", params, a.detach)


def cmd_crossval(a) -> int:
    params = {k: v for k, v in (("folds", a.folds), ("epochs", a.epochs), ("gpus", a.gpus))
              if v is not None}
    return _submit_and_follow(_root(a.dir), "crossval", params, a.detach)


def _image_paths(root: Path, store, args: list[str], given: str | None = None) -> list[str]:
    """The project's image paths (relative to DIR) for paths given on the command line:
    relative to the current folder or to DIR, absolute, or a mask's path for its image.
    Links are taken as written first (an indexed folder may be a link), then resolved;
    ``given``: DIR as typed, when it is a link to ``root``."""
    rows = store.images()
    image_of = {r.mask_path: r.path for r in rows if r.mask_path}
    image_of.update((r.path, r.path) for r in rows)
    bases = list(dict.fromkeys([root, Path(os.path.abspath(os.path.expanduser(given or root)))]))
    # here as the shell says it ($PWD keeps the links getcwd() resolves), if it is here
    here, pwd = os.getcwd(), os.environ.get("PWD")
    try:
        if pwd and os.path.samefile(pwd, here):
            here = pwd
    except OSError:
        pass

    def rels(arg: str):  # the paths relative to DIR that ``arg`` may mean, likeliest first
        arg_x = os.path.expanduser(arg)
        # '..' is the physical parent when a file is opened: the logical $PWD only without it
        start = os.getcwd() if ".." in Path(arg_x).parts else here
        for base in bases:
            for cand in (Path(os.path.normpath(os.path.join(start, arg_x))),
                         Path(os.path.abspath(base / arg))):
                for c in (cand, cand.resolve()):
                    rel = os.path.relpath(c, base)
                    if not (rel == ".." or rel.startswith(".." + os.sep)):
                        yield Path(rel).as_posix()

    from ..app.data import common_dir

    # the names the app shows: the folder every image shares left out ("images/" when split)
    shown = common_dir([r.path for r in rows])
    out, unknown = [], []
    for arg in args:
        found = next((image_of[r] for r in rels(arg) if r in image_of), None)
        if found is None and shown:
            found = image_of.get(shown + Path(arg).as_posix())
        (out if found else unknown).append(found or arg)
    if unknown:
        raise SystemExit(_err(f"not an image of {root} (or its mask): {', '.join(unknown)}; "
                              "`segtriage report DIR` lists them"))
    return list(dict.fromkeys(out))


def cmd_predict(a) -> int:
    root = _root(a.dir)
    scale = {k: v for k, v in (("gpus", a.gpus), ("launch", a.launch)) if v is not None}

    def params(store) -> dict:
        if a.images:
            return {"scope": "list", "images": _image_paths(root, store, a.images, a.dir),
                    **scale}
        return {"scope": "all" if a.all else "stale", **scale}

    return _submit_and_follow(root, "predict", params, a.detach)


def cmd_rescore(a) -> int:
    return _submit_and_follow(_root(a.dir), "rescore", {}, a.detach)


def cmd_jobs(a) -> int:
    store = _store(_root(a.dir), create=False)
    jobs = store.jobs(limit=a.limit)
    if a.json:
        print(json.dumps([vars(j) for j in jobs], indent=2, default=str))
        return 0
    from rich.table import Table

    t = Table(show_header=True)
    for c in ("id", "kind", "state", "progress", "message", "created", "error"):
        t.add_column(c, overflow="fold")
    for j in jobs:
        t.add_row(str(j.id), j.kind, j.state, f"{j.progress * 100:.0f}%",
                  escape(j.message or ""), _ago(j.created_at), escape(j.error or ""))
    _console().print(t)
    return 0


def cmd_cancel(a) -> int:
    store = _store(_root(a.dir), create=False)
    job_id = a.job
    if job_id is None:
        running = [j for j in store.active_jobs() if j.state == "running"]
        if not running:
            return _err("no running job")
        job_id = running[0].id
    if not store.request_cancel(job_id):
        return _err(f"job {job_id} is not queued or running")
    print(f"cancel requested for job {job_id}")
    return 0


def sort_rows(rows: list[dict], key: str, reverse: bool = False) -> list[dict]:
    """Rows in the column's own direction (SORT_KEYS: the rows most worth a look first);
    ``reverse`` flips it. Rows without a value stay last either way."""
    from ...engine.project import scoring

    desc = scoring.SORT_KEYS.get(key, "asc") == "desc"
    return scoring.review_order(rows, key=key, reverse=desc != reverse)


def report_columns(rows: list[dict]) -> list[str]:
    """Every column any row has, in first-seen order: unscored rows lack the score columns,
    and the first row must not decide what the others may show."""
    return list(dict.fromkeys(k for r in rows for k in r)) or ["image"]


def cmd_report(a) -> int:
    root = _root(a.dir)
    from ...engine.project import scoring

    from ...engine.project.queries import report_rows

    rows = report_rows(_project(root, create=False))
    columns = report_columns(rows)
    if a.sort not in columns and a.sort not in scoring.SORT_KEYS:
        return _err(f"unknown sort column {a.sort!r}; columns: {', '.join(columns)}")
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
        from rich.table import Table

        # the app's list in short: fits 80 columns with names of 12 characters; names may
        # take up to 24 before folding, which squeezes the numbers; every column is in csv/json
        t = Table(show_header=True, box=None, pad_edge=False, padding=(0, 1, 0, 0))
        t.add_column("~", no_wrap=True)
        t.add_column("image", overflow="fold",
                     min_width=min(24, max((len(r["image"]) for r in rows), default=5)))
        for head in ("status", "category", "prio", "conf", "LQ", "Dice", "IoU", "CE",
                     "obj p/m"):
            t.add_column(head, no_wrap=True, justify="left" if head in (
                "status", "category") else "right")
        for r in rows:
            objs = "–" if r.get("n_pred") is None else f"{r.get('n_pred')}/{_fmt(r.get('n_mask'))}"
            t.add_row("~" if r["stale"] else "", escape(r["image"]), r["status"], r["category"] or "–",
                      *(_fmt(r.get(c)) for c in ("priority", "confidence", "label_quality",
                                                 "dice", "iou", "ce")), objs)
        _console().print(t)
    return 0


def cmd_models(a) -> int:
    store = _store(_root(a.dir), create=False)
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
        t.add_row(str(m.id), m.kind, m.arch or "", _ago(m.created_at),
                  _fmt(m.epochs), _fmt(m.n_train), _fmt(m.valid_loss),
                  _fmt(m.valid_dice), "current" if m.id == cur else "")
    _console().print(t)
    return 0


def cmd_rollback(a) -> int:
    root = _root(a.dir)
    store = _store(root, create=False)
    from ...engine.store import StoreError

    try:
        store.set_current_model(a.version)
    except StoreError as e:
        return _err(str(e))
    print(f"model {a.version} is current; rows scored by other versions are stale "
          "(the engine re-predicts them)")
    from ...engine.daemon.control import engine_pid

    if engine_pid(root):
        store.submit_job("predict", {"scope": "stale"}, requested_by="rollback")
    return 0


def status_dict(root: Path) -> dict:
    """`status --json`: the project's status facts, with the engine's pid."""
    from ...engine.daemon.control import engine_pid
    from ...engine.project.queries import status_facts

    st = status_facts(_store(root, create=False))  # a bad state_dir is reported here
    pid = engine_pid(root)
    eng = st.engine if pid else {}
    m, b = st.model, st.last_backup
    return {
        "folder": str(root),
        "engine": {"running": pid is not None, "pid": pid, "state": eng.get("state"),
                   "device": eng.get("device"), "watcher": eng.get("watcher"),
                   "last_event": eng.get("last_event")},
        "images": st.images,
        "problems": st.problems,
        "model": None if m is None else {
            "version": m.id, "kind": m.kind, "created_at": m.created_at,
            "n_train": m.n_train, "valid_dice": m.valid_dice},
        "edits_since_train": st.edits_since_train,
        "backup": {"last": None if b is None else b.created_at,
                   "snapshot": None if b is None else b.snapshot,
                   "edits_since": st.edits_since_backup},
        "jobs": [{"id": j.id, "kind": j.kind, "state": j.state, "progress": j.progress,
                  "message": j.message, "eta": j.eta} for j in st.active],
    }


def cmd_status(a) -> int:
    root = _root(a.dir)
    st = status_dict(root)
    if a.json:
        print(json.dumps(st, indent=2, default=str))
        return 0
    c = _console()
    e = st["engine"]
    c.print(f"[bold]{escape(str(root))}[/]")
    known = [f"pid {e['pid']}", e["state"], e["device"]]  # device: None until probed
    c.print("engine   " + (escape(", ".join(str(x) for x in known if x is not None))
                           if e["running"] else "not running"))
    c.print("images   " + ", ".join(f"{k} {v}" for k, v in sorted(st["images"].items()))
            + (f"; {st['problems']} problem file(s)" if st["problems"] else ""))
    m = st["model"]
    c.print("model    " + ("none yet" if m is None else
                           f"v{m['version']} ({m['kind']}), {_ago(m['created_at'])}, "
                           f"{m['n_train']} masks, valid Dice {_fmt(m['valid_dice'])}"))
    c.print(f"edits    {st['edits_since_train']} mask(s) changed since the last train")
    b = st["backup"]
    c.print(f"backup   last {_ago(b['last'])}" + (f" ({b['snapshot']})" if b["snapshot"] else "")
            + f", {b['edits_since']} mask(s) changed since")
    for j in st["jobs"]:
        gone = j["state"] == "running" and not e["running"]
        c.print(f"job      {j['id']} {j['kind']} {j['state']} {j['progress'] * 100:.0f}% "
                + ("(stopped with the engine: it resumes when the engine starts)" if gone
                   else escape(j["message"] or "")))
    return 0


def cmd_backup(a) -> int:
    root = _root(a.dir)
    params = {"dest": str(Path(a.to).resolve())} if a.to else {}
    if a.note:
        params["note"] = a.note
    if a.take_over:
        params["take_over"] = True
    return _submit_and_follow(root, "backup", params, a.detach)


def _dest(a) -> Path | None:
    d = getattr(a, "to", None) or getattr(a, "store_dir", None)
    return Path(d).resolve() if d else None


def cmd_backups(a) -> int:
    from ...engine.project import backup

    root = _root(a.dir)
    # the project's notes are joined in where it has a state; a wiped folder lists them too
    snaps = backup.list_snapshots(root, _cfg(root), dest=_dest(a),
                                  store=_store(root) if _state_db(root).exists() else None)
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
        t.add_row(str(s.get("id")), _fmt(s.get("files")),
                  "–" if added is None else f"{added / 2**20:.1f} MiB",
                  _fmt(s.get("masks_changed")), escape(s.get("note") or ""))
    _console().print(t)
    return 0


def cmd_verify(a) -> int:
    from ...engine.project import backup

    root = _root(a.dir)
    try:
        rep = backup.verify(root, _cfg(root), dest=_dest(a))
    except backup.BackupError as e:
        return _err(str(e))
    c = _console()
    for line in rep.lines():
        c.print(line, markup=False)
    return 0 if rep.ok else 1


def _undo_args(a, res: dict) -> str:
    """The restore that puts back what ``res`` replaced: same target, same store."""
    import shlex

    args = [a.dir, res["undo"]]
    if a.target:
        args += ["--to", a.target]
    if a.store_dir:
        args += ["--from", a.store_dir]
    return " ".join(shlex.quote(x) for x in args)


def cmd_restore(a) -> int:
    from ...engine.project import backup

    root = _root(a.dir)
    try:
        res = backup.restore(_project(root), a.snapshot,
                             to=Path(a.target).resolve() if a.target else None, dest=_dest(a))
    except backup.BackupError as e:
        return _err(str(e))
    print(f"restored snapshot {res['snapshot']} into {res['target']}: {res['restored']} "
          f"file(s) written, {res['unchanged']} unchanged, {len(res['kept'])} replaced "
          "version(s) kept in the store"
          + (f" as snapshot {res['undo']} (`segtriage restore {_undo_args(a, res)}` undoes "
             "this)" if res.get("undo") else ""))
    if res.get("index_error"):
        print(f"segtriage: restored, but {res['index_error']}", file=sys.stderr)
        return 1
    return 0


def cmd_prune(a) -> int:
    from ...engine.project import backup

    root = _root(a.dir)
    try:
        res = backup.prune(_project(root), keep=a.keep, dest=_dest(a))
    except backup.BackupError as e:
        return _err(str(e))
    print(f"deleted {len(res['deleted'])} snapshot(s) {' '.join(res['deleted'])}; "
          f"{res['objects_deleted']} object(s), {res['bytes_freed']} bytes freed; "
          f"{len(res['kept'])} kept")
    return 0


def cmd_history(a) -> int:
    from ...engine.project import history

    root = _root(a.dir)
    from ...engine.project.backup import BackupError

    try:
        versions = history.history(_project(root, create=False), a.path)
    except (BackupError, KeyError, ValueError, FileNotFoundError) as e:
        return _err(str(e))
    if a.json:
        print(json.dumps(versions, indent=2, default=str))
        return 0
    from rich.table import Table

    t = Table(title=f"mask history of {a.path}", show_header=True)
    for c in ("version", "time", "source", "pixels changed", "Dice to previous", "sha256"):
        t.add_column(c)
    for v in versions:
        t.add_row(str(v.get("version")), _ago(v.get("created_at") or v.get("time")),
                  escape(str(v.get("source"))), _fmt(v.get("pixels_changed")), _fmt(v.get("dice_prev")),
                  str(v.get("sha256") or v.get("sha") or "")[:12])
    _console().print(t)
    return 0


def cmd_revert(a) -> int:
    from ...engine.project import history

    root = _root(a.dir)
    from ...engine.project.backup import BackupError

    try:
        res = history.revert(_project(root, create=False), a.path, a.version)
    except (BackupError, KeyError, ValueError, FileNotFoundError) as e:
        return _err(str(e))
    if res.get("changed"):
        print(f"{res['path']}: version {res['version']} brought back as version "
              f"{res['new_version']}")
    else:
        print(f"{res['path']}: version {res['version']} is already current")
    return 0


def _decide(a, decide) -> int:
    """Review decisions for the images named, by the app's rules: ``decide(row)`` gives the
    new status, or ``(None, why)`` to leave the row as it is."""
    root = _root(a.dir)
    store = _store(root, create=False)
    rows = {r.path: r for r in store.images()}
    left, by_status = 0, {}
    for p in _image_paths(root, store, a.images, a.dir):
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


def cmd_accept(a) -> int:
    from ...engine.project.review import accept_problem

    def decide(r):
        why = accept_problem(r.mask_path, r.error)
        return (None, why) if why else ("accepted", None)

    return _decide(a, decide)


def cmd_flag(a) -> int:
    from ...engine.project.review import unflagged_status

    def decide(r):
        if not a.clear:
            return "flagged", None
        if r.status != "flagged":
            return None, f"{r.status}, not flagged"
        return unflagged_status(r.mask_path, r.error), None

    return _decide(a, decide)


def cmd_use_prediction(a) -> int:
    from ...engine.project.backup import BackupError
    from ...engine.project.review import ReviewError, replace_with_prediction

    root = _root(a.dir)
    project = _project(root, create=False)
    store = project.store
    rows = {r.path: r for r in store.images()}
    failed = 0
    for p in _image_paths(root, store, a.images, a.dir):
        try:
            print(replace_with_prediction(project, rows[p].id)
                  + f" (`segtriage revert {a.dir} {p}` undoes)")
        except (ReviewError, BackupError, OSError, ValueError) as e:
            failed += 1
            print(f"segtriage: {e}", file=sys.stderr)
    return 1 if failed else 0


HANDLERS = {name: globals()[f"cmd_{name.replace('-', '_')}"] for name in COMMANDS
            if name not in MODULE_COMMANDS}
HANDLERS.update({name: (lambda a, n=name: _command_module(n).run(a)) for name in MODULE_COMMANDS})


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `segtriage [DIR]` opens the app: anything that is not a command or an option is a folder
    if argv and argv[0] not in COMMANDS and not argv[0].startswith("-") \
            and not Path(argv[0]).expanduser().exists():
        import difflib

        near = difflib.get_close_matches(argv[0], COMMANDS, n=1)
        if near or len(argv) > 1:  # `segtriage reprot DIR`: a mistyped command, not a folder
            hint = f"; did you mean {near[0]!r}?" if near else ""
            return _err(f"{argv[0]!r} is neither a command nor a folder{hint} "
                        f"(commands: {', '.join(COMMANDS)})")
    if not argv or (argv[0] not in COMMANDS and not argv[0].startswith("-")):
        argv = ["open", *argv]
    elif argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv = ["open", *argv]
    a = build_parser().parse_args(argv)
    try:
        return HANDLERS[a.cmd](a) or 0
    except SystemExit as e:
        return int(e.code or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `segtriage report DIR | head`: the reader left; no traceback, and none at exit when
        # Python flushes stdout again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141

