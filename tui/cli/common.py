"""What most commands start from: DIR as a folder, its config, its project state and project,
the engine's log, a running engine, and image paths as a person types them.

Each refuses bad input with `segtriage: ...` on stderr and exit status 2 (SystemExit), so a
command reads as its happy path. Only the standard library at the top; the engine's modules
are imported when called.
"""

from __future__ import annotations

import os
from pathlib import Path

from .output import err


def folder(d: str, *, must_exist: bool = True) -> Path:
    """DIR as typed, resolved; it must be a folder unless ``must_exist`` is false."""
    root = Path(d).expanduser()
    if must_exist and not root.is_dir():
        raise SystemExit(err(f"{d}: no such folder"))
    return root.resolve()


def new_folder(d: str) -> Path:
    """A folder that may not exist yet (created here); a file of that name is an error."""
    root = folder(d, must_exist=False)
    if root.exists() and not root.is_dir():
        raise SystemExit(err(f"{d}: not a folder"))
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SystemExit(err(f"cannot create {d}: {e}")) from None
    return root


def config(root: Path):
    """DIR's config, checked: a bad one is reported."""
    from ...engine.project.config import ConfigError, load_config

    try:
        return load_config(root)
    except ConfigError as e:
        raise SystemExit(err(str(e))) from None


def state_path(root: Path) -> Path:
    """DIR's state folder from [project] state_dir alone: a broken [model] (say) must not keep
    anyone from the running engine, its jobs and its status."""
    from ...engine.project.config import ConfigError, state_path as config_state_path

    try:
        return config_state_path(root)
    except ConfigError as e:
        raise SystemExit(err(str(e))) from None


def state_db(root: Path) -> Path:
    """DIR's state database."""
    return state_path(root) / "state.db"


def open_store(root: Path, *, create: bool = True):
    """The folder's project state. ``create=False`` (commands that only read or change what is
    there) refuses a folder that was never indexed instead of leaving a new state behind."""
    import sqlite3

    from ...engine.store import Store, StoreError

    db = state_db(root)
    if not create and not db.exists():
        raise SystemExit(err(f"{root} is not a segtriage project yet (no {db}); index it "
                             f"with `segtriage scan {root}` or open it with `segtriage {root}`"))
    try:
        return Store(db)
    except (StoreError, OSError, sqlite3.Error) as e:
        raise SystemExit(err(f"cannot open the project state of {root}: {e}")) from None


def open_project(root: Path, *, create: bool = True):
    """The folder's project: its config (checked: a bad one is reported) and its state (see
    open_store for ``create``)."""
    from ...engine.project.project import Project

    return Project(root, config(root), open_store(root, create=create))


def engine_log(root: Path) -> Path:
    """The log file of DIR's engine."""
    from ...engine.daemon.control import LOG_NAME

    return state_path(root) / "logs" / LOG_NAME


def need_engine(root: Path) -> int:
    """The pid of DIR's engine, started if it is not running."""
    from ...engine.daemon.control import ensure_engine

    pid = ensure_engine(root)
    if pid is None:
        raise SystemExit(err(f"the engine did not start; see {engine_log(root)}"))
    return pid


def image_paths(root: Path, store, args: list[str], given: str | None = None) -> list[str]:
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
        raise SystemExit(err(f"not an image of {root} (or its mask): {', '.join(unknown)}; "
                             "`segtriage report DIR` lists them"))
    return list(dict.fromkeys(out))
