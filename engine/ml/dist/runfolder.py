"""The run folder: how the engine and the ranks of a distributed job talk, through files only.

The SQLite database is opened by the engine alone (several writers on one SQLite file over a
network file system corrupt it). Ranks, possibly on other hosts, see only
``<state>/runs/job-<id>[/<part>]/`` on shared storage:

=====================  ========  =============================================================
file                   writer    what
=====================  ========  =============================================================
``spec.json``          engine    what to do: items, codes, model config, outputs, epochs, …
``heartbeat``          engine    a counter rewritten every ~2 s; ranks stop when it stalls
``cancel``             engine    exists once a cancel (or engine stop) is asked; holds why
``events.jsonl``       rank 0    progress, per-epoch figures, log lines (engine tails it)
``rank-<r>.json``      rank r    marker: pid, host, device, final state, batches, sums
``preds-rank-<r>.jsonl`` rank r  predict: one line per image (id, prob PNG, precision)
``result.json``        rank 0    train: the TrainResult (written after the weights)
``launch.log``         engine    stdout/stderr of torchrun and the ranks
=====================  ========  =============================================================

JSON-lines files are appended one whole line per ``write`` and flushed; readers take only
complete lines, so a half-written tail is read on the next poll. No torch here: the engine
imports this module at job time, tests and clients may import it freely.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Sequence, TypeVar

from ...project.imageio import atomic_write_bytes

T = TypeVar("T")

SPEC = "spec.json"
HEARTBEAT = "heartbeat"
CANCEL = "cancel"
EVENTS = "events.jsonl"
RESULT = "result.json"
LAUNCH_LOG = "launch.log"
KEEP_RUNS = 20  # newest run folders kept for post-mortems; older ones are removed


def shard(items: Sequence[T], rank: int, world: int) -> list[T]:
    """Rank `rank`'s share of `items` (every world-th item from rank): disjoint, covering,
    and balanced to within one item."""
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"bad shard: rank {rank} of world size {world}")
    return list(items[rank::world])


def _dump(obj: Any) -> bytes:
    return (json.dumps(obj, indent=1, default=str) + "\n").encode()


class JsonlTail:
    """Reads the complete lines appended to a JSON-lines file since the last call."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offset = 0
        self.bad = 0  # lines that were not JSON (never expected: counted, skipped)

    def read(self) -> list[dict]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        out = []
        for line in data[:end].splitlines():
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                self.bad += 1
        return out


class RunFolder:
    def __init__(self, path: Path | str):
        self.path = Path(path)

    @classmethod
    def create(cls, state: Path, job_id: int, part: str | None = None) -> "RunFolder":
        """A fresh, empty ``<state>/runs/job-<id>[/<part>]`` (an old one of that name is
        removed: a re-queued job gets a new id, so it is never a live run)."""
        runs = Path(state) / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        if part is None:
            prune_runs(runs, keep=KEEP_RUNS - 1)
        path = runs / f"job-{int(job_id)}"
        if part is not None:
            path = path / part
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return cls(path)

    @property
    def state(self) -> Path:
        """The state folder this run folder lives in (``<state>/runs/job-N[/part]``)."""
        p = self.path.resolve()
        while p.parent != p and p.parent.name != "runs":
            p = p.parent
        return p.parent.parent

    def file(self, name: str) -> Path:
        return self.path / name

    # -- engine → ranks ------------------------------------------------------------------------
    def write_spec(self, spec: dict) -> None:
        atomic_write_bytes(self.file(SPEC), _dump(spec))

    def spec(self) -> dict:
        try:
            return json.loads(self.file(SPEC).read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.file(SPEC)}: no run spec (is --run the folder the "
                                    "engine wrote, on storage this host shares?)") from None
        except ValueError as e:
            raise ValueError(f"{self.file(SPEC)}: unreadable run spec: {e}") from None

    def beat(self, n: int) -> None:
        # plain write, not atomic: a reader seeing a torn value just sees "changed"
        self.file(HEARTBEAT).write_text(str(n))

    def heartbeat(self) -> str | None:
        try:
            return self.file(HEARTBEAT).read_text()
        except OSError:
            return None

    def request_cancel(self, why: str = "cancel") -> None:
        if not self.file(CANCEL).exists():
            atomic_write_bytes(self.file(CANCEL), why.encode())

    def cancel_reason(self) -> str | None:
        try:
            return self.file(CANCEL).read_text() or "cancel"
        except OSError:
            return None

    # -- ranks → engine ------------------------------------------------------------------------
    def append(self, name: str, record: dict) -> None:
        """One JSON line, one write, flushed (the engine may read it at any moment)."""
        line = (json.dumps(record, default=str) + "\n").encode()
        with open(self.file(name), "ab") as f:
            f.write(line)
            f.flush()

    def event(self, kind: str, **data: Any) -> None:
        self.append(EVENTS, {"t": time.time(), "kind": kind, **data})

    def events(self) -> JsonlTail:
        return JsonlTail(self.file(EVENTS))

    def write_rank(self, rank: int, info: dict) -> None:
        atomic_write_bytes(self.file(f"rank-{int(rank)}.json"), _dump(info))

    def ranks(self) -> dict[int, dict]:
        out = {}
        for p in sorted(self.path.glob("rank-*.json")):
            try:
                out[int(p.stem.split("-", 1)[1])] = json.loads(p.read_text())
            except (ValueError, OSError):
                continue
        return out

    @staticmethod
    def preds_name(rank: int) -> str:
        return f"preds-rank-{int(rank)}.jsonl"

    def pred_files(self) -> Iterator[Path]:
        return iter(sorted(self.path.glob("preds-rank-*.jsonl")))

    def write_result(self, result: dict) -> None:
        atomic_write_bytes(self.file(RESULT), _dump(result))

    def result(self) -> dict | None:
        try:
            return json.loads(self.file(RESULT).read_text())
        except FileNotFoundError:
            return None

    def log_tail(self, n: int = 2000) -> str:
        try:
            data = self.file(LAUNCH_LOG).read_bytes()[-n:]
        except OSError:
            return ""
        return data.decode(errors="replace").strip()


def prune_runs(runs: Path, keep: int = KEEP_RUNS) -> None:
    """Remove all but the newest `keep` job run folders (by job id)."""
    def job_no(p: Path) -> int:
        try:
            return int(p.name.split("-", 1)[1])
        except (IndexError, ValueError):
            return -1

    olds = sorted((p for p in runs.glob("job-*") if p.is_dir() and job_no(p) >= 0), key=job_no)
    for p in olds[:max(0, len(olds) - keep)]:
        shutil.rmtree(p, ignore_errors=True)


# -- process lifetime ---------------------------------------------------------------------------

PR_SET_PDEATHSIG = 1


def _libc_prctl():
    """libc's prctl, looked up once (before any fork: nothing is loaded in a forked child)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _libc_prctl()


def set_parent_death_signal(sig: int = signal.SIGTERM, expect_parent: int | None = None) -> bool:
    """Linux: the kernel sends `sig` to this process when its parent dies (even by kill -9).

    Used by the torchrun launched by the engine (as ``preexec_fn``) and by every rank (parent:
    the torchrun agent), so a killed engine takes its ranks along instead of leaving them
    orphaned. When `expect_parent` is given and the parent is already another process (it died
    before the signal was armed), this process exits at once. False where unsupported.
    """
    if _PRCTL is None:
        return False
    ok = _PRCTL(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    if expect_parent is not None and os.getppid() != expect_parent:
        os._exit(1)
    return ok
