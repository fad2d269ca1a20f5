"""The status pane: engine, running job (progress, ETA, loss / valid-Dice curve), model,
edits and backups. ``format_status`` is pure (facts + clock → markup) so it is easy to test."""

from __future__ import annotations

from typing import Callable

from textual.markup import escape
from textual.widgets import Static

from ....engine.store.rows import EngineState
from ..actions import BY_ID
from .sparkline import spark

KeyOf = Callable[[str], str]


def default_key(action_id: str) -> str:
    """An action's first default key, as the registry writes it."""
    return BY_ID[action_id].keys.split(",")[0]


def age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m" if s < 36000 else f"{s // 3600}h"
    return f"{s // 86400}d"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def progress_bar(fraction: float, width: int = 16) -> str:
    f = max(0.0, min(1.0, fraction or 0.0))
    full = int(round(f * width))
    return "[$success]" + "█" * full + "[/]" + "[$foreground-muted]" + "░" * (width - full) + "[/]"


def _num(v, fmt: str = ".3f") -> str:
    return "?" if v is None else format(v, fmt)


def engine_line(info: dict, now: float) -> str:
    pid = info.get("pid")
    eng = info.get("engine") or EngineState()
    if pid is None:
        if info.get("engine_starting"):
            return "[$warning]◌ starting the engine…[/]"
        why = info.get("engine_problem")
        tail = f" ({escape(why)})" if why else " — queued jobs wait until it runs"
        return f"[$error]○ engine offline[/]{tail}"
    parts = [f"[$success]● engine[/] {pid}"]
    if eng.device:
        parts.append(escape(str(eng.device)))
    if eng.state:
        parts.append(escape(str(eng.state)))
    if eng.heartbeat is not None and now - eng.heartbeat > 30:
        parts.append(f"[$warning]no heartbeat for {age(now - eng.heartbeat)}[/]")
    if eng.watcher:
        parts.append(f"watch {escape(str(eng.watcher))}")
    if eng.last_event:
        parts.append(f"last: {escape(str(eng.last_event))}")
    return " · ".join(parts)


def job_line(info: dict, now: float, width: int = 80) -> str:
    job = info.get("running")
    queued = info.get("queued") or []
    q = f" · {len(queued)} queued" if queued else ""
    if job is None:
        if queued:
            return f"[$warning]⏸[/] {queued[-1].kind} #{queued[-1].id} queued{q if len(queued) > 1 else ''}"
        last = info.get("last_job")
        if last is None:
            return "[$foreground-muted]no job running[/]"
        when = age(now - last.finished_at) if last.finished_at else "?"
        colour = {"done": "$success", "failed": "$error"}.get(last.state, "$warning")
        text = f"[$foreground-muted]no job running · last:[/] {last.kind} #{last.id} " \
               f"[{colour}]{last.state}[/] {when} ago"
        if last.error:
            text += f": {escape(last.error.splitlines()[0][:60])}"
        return text
    if info.get("pid") is None and "pid" in info:  # the engine died in it: no ETA counting down
        return (f"[$warning]⏸ {job.kind} #{job.id}[/] {progress_bar(job.progress)} "
                f"{job.progress * 100:3.0f}% · stopped with the engine: it resumes when the "
                f"engine runs again{q}")
    parts = [f"[$accent]▶ {job.kind} #{job.id}[/] {progress_bar(job.progress)} "
             f"{job.progress * 100:3.0f}%"]
    if job.cancel_requested:
        parts.append("[$warning]cancelling…[/]")
    if job.message:
        parts.append(escape(job.message))
    if job.eta is not None:
        since = now - job.heartbeat if job.heartbeat else 0.0
        parts.append(f"ETA {duration(max(0.0, job.eta - since))}")
    curve = info.get("curve") or []
    if curve:
        losses = [c.get("train_loss") for c in curve if c.get("train_loss") is not None]
        dices = [c.get("valid_dice") for c in curve if c.get("valid_dice") is not None]
        if losses:
            parts.append(f"loss [$warning]{spark(losses, 12)}[/] {_num(losses[-1], '.3g')}")
        if dices:
            parts.append(f"Dice [$success]{spark(dices, 12, 0.0, 1.0)}[/] {_num(dices[-1])}")
    return " · ".join(parts) + q


def checkpoint_text(ck) -> str:
    """Which checkpoint an early ranking comes from: "checkpoint (step 40 of 200)"."""
    info = ck.info  # a ModelRow of kind checkpoint: info holds step and steps
    return f"checkpoint (step {info.get('step', '?')} of {info.get('steps', '?')})"


def model_line(info: dict, now: float, key: KeyOf = default_key) -> str:
    """The model the ranking comes from: a model version, or an early ranking's checkpoint
    (the rows it scored are marked c in the list) until the final model has scored them."""
    m = info.get("model")
    edits = info.get("edits_since_train", 0)
    ck, ck_rows = info.get("checkpoint"), info.get("checkpoint_rows", 0)
    if m is None:
        training = [j for j in [info.get("running"), *(info.get("queued") or [])]
                    if j is not None and j.kind in ("train", "crossval")]
        if ck is not None and ck_rows:
            then = (f"{training[0].kind} #{training[0].id} makes the model" if training
                    else "no training running")
            return (f"[$warning]c[/] ranking from {checkpoint_text(ck)} · valid Dice "
                    f"{_num(ck.valid_dice)} · {then} · {_edits(edits)}")
        hint = f"{training[0].kind} #{training[0].id} makes one" if training else f"{key('retrain')} trains one"
        return f"[$foreground-muted]no model yet ({hint})[/] · {_edits(edits)}"
    kind = " crossval" if m.kind == "crossval" else ""
    text = (f"model [b]v{m.id}[/b]{kind} · {age(now - m.created_at)} ago · "
            f"{m.n_train or 0} masks · valid Dice {_num(m.valid_dice)}")
    if ck is not None and ck_rows:
        text += f" · [$warning]c[/] {ck_rows} from {checkpoint_text(ck)}"
    colour = "$warning" if edits else "$foreground-muted"
    return text + f" · [{colour}]{_edits(edits)} since[/]"


def backup_line(info: dict, now: float, key: KeyOf = default_key) -> str:
    at = info.get("backup_at")
    edits = info.get("edits_since_backup", 0)
    if at is None:
        return f"[$warning]no backup yet[/] ({key('backup')} backs up) · {_edits(edits)}"
    colour = "$warning" if edits else "$foreground-muted"
    return f"backup {age(now - at)} ago · [{colour}]{_edits(edits)} since[/]"


def _edits(n: int) -> str:
    return f"{n} mask edit" + ("" if n == 1 else "s")


def format_status(info: dict, now: float, key: KeyOf = default_key) -> str:
    """The four lines; ``key(action_id)`` names the key that runs an action (the app's own
    keymap: a rebound key is named as bound)."""
    return "\n".join([engine_line(info, now), job_line(info, now), model_line(info, now, key),
                      backup_line(info, now, key)])


class StatusPane(Static):
    """Four lines at the bottom of the screen."""

    def show(self, info: dict, now: float, key: KeyOf = default_key) -> None:
        self.update(format_status(info, now, key), layout=False)  # four fixed lines
