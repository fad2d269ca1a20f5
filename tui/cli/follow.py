"""Following a job in the engine from the command line: a progress bar, the job's log lines
and epochs, Ctrl-C to detach; an engine that dies in the job is started again by the
dead-engine rule (engine/daemon/control.py DeadEngineRule), and the job recovery queues in
its place is followed.

Only the standard library at the top; rich and the engine's modules are imported when a job
is followed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .common import need_engine, open_project
from .output import escape, fmt, new_console

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

    console = console or new_console()
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
                        f"  {fold}epoch {d.get('epoch')}: train loss {fmt(d.get('train_loss'))}"
                        f"  valid loss {fmt(d.get('valid_loss'))}"
                        f"  valid Dice {fmt(d.get('valid_dice'))}")
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
                        need_engine(root)
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


def submit_and_follow(root: Path, kind: str, params, detach: bool) -> int:
    """Index DIR, submit the job, start the engine if needed, follow. ``params`` is a dict,
    or a function of the store giving one once the scan has run."""
    from ...engine.project import index

    project = open_project(root)
    store = project.store
    index.scan(project)
    if callable(params):
        params = params(store)
    job_id = store.submit_job(kind, params, requested_by="cli")
    pid = need_engine(root)
    console = new_console()
    console.print(f"job {job_id} ({kind}) queued; engine pid {pid}")
    if detach:
        return 0
    return follow_job(store, job_id, console=console, root=root)
