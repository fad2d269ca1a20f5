"""The models folder's weight files: which belong to a model, which a run that did not finish left.

A training writes its weights (``mNNNN.pt``, a crossval one ``mNNNN_fK.pt`` per fold, each
with a ``.json`` sidecar) before its model row exists; the number is the next model id. A
run that does not finish (cancelled, failed, the engine stopped or killed) adds no row, so
its files belong to no model: the next model takes the same number (a plain m0003.pt beside
a cancelled crossval's m0003_f0.pt) and every snapshot copied them (119 MB a fold). Nothing
resumes from them: a re-queued training starts over. So a run that does not finish removes
every file it was to write, and one a killed engine could not clean up is listed in a hidden
marker (``.unfinished-job-N.json``, never in a snapshot) that the next engine start deletes
with its files. A file a model row names is never deleted.
"""

from __future__ import annotations

import glob
import json
import logging
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..store import Store
from .imageio import atomic_write_bytes

log = logging.getLogger(__name__)

UNFINISHED_PREFIX = ".unfinished-job-"
_WEIGHTS = re.compile(r"m(\d+)(?:_f\d+)?\.pt(?:\.json)?")
_WEIGHTS_TMP = re.compile(r"\.m\d+(?:_f\d+)?\.pt(?:\.json)?\..+\.tmp")  # atomic_write's


def _referenced(store: Store) -> set[str]:
    """Every file a model row names: its weights and their sidecars."""
    names: set[str] = set()
    for m in store.models():
        for w in m.weights:
            names.update((w, f"{w}.json"))
    return names


def _with_sidecars(names) -> set[str]:
    return {n for w in names for n in (w, f"{w}.json")}


def _markers(models_dir: Path) -> list[Path]:
    try:
        return sorted(models_dir.glob(f"{UNFINISHED_PREFIX}*.json"))
    except OSError:
        return []


def _marked(marker: Path) -> set[str]:
    try:
        files = json.loads(marker.read_text()).get("files") or []
    except (OSError, ValueError, AttributeError):
        return set()
    return _with_sidecars(f for f in files if isinstance(f, str) and _WEIGHTS.fullmatch(f))


def unfinished_weights(models_dir: Path, store: Store) -> set[str]:
    """Names of the weight files in ``models_dir`` that belong to no model: those listed by the
    marker of a training that did not finish and named by no model row. Nothing is guessed
    from names alone: a file no row names may come from before ``state.db`` was lost or
    rebuilt, and the next model may reuse its number, so only a marker says a file is waste."""
    if not models_dir.is_dir():
        return set()
    keep = _referenced(store)
    found: set[str] = set()
    for marker in _markers(models_dir):
        found |= _marked(marker)
    return {n for n in found if n not in keep and (models_dir / n).is_file()}


def _remove(models_dir: Path, names: set[str]) -> int:
    n = 0
    for name in sorted(names):
        try:
            (models_dir / name).unlink()
            n += 1
        except FileNotFoundError:
            pass
        except OSError as e:
            log.warning("cannot remove %s of an unfinished training: %s", models_dir / name, e)
    return n


def remove_unfinished_weights(models_dir: Path, store: Store) -> int:
    """At engine start (no training runs): delete the weight files of trainings that did not
    finish (see above), their markers and the temp files of a weights write that was killed.
    Returns the number of files deleted."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return 0
    n = _remove(models_dir, unfinished_weights(models_dir, store))
    for p in list(models_dir.iterdir()):
        if _WEIGHTS_TMP.fullmatch(p.name):
            n += _remove(models_dir, {p.name})
    for marker in _markers(models_dir):  # kept while a file it lists could not be deleted
        if not any((models_dir / f).is_file() for f in _marked(marker) - _referenced(store)):
            marker.unlink(missing_ok=True)
    return n


@contextmanager
def weights_of_run(store: Store, job_id: int, models_dir: Path, names: list[str]
                   ) -> Iterator[None]:
    """Around a training that writes ``names``: when it ends without its model row (a cancel,
    a failure, the engine stopping), those files and their sidecars are deleted; a marker
    lists them meanwhile for the case the engine is killed."""
    models_dir.mkdir(parents=True, exist_ok=True)
    marker = models_dir / f"{UNFINISHED_PREFIX}{job_id}.json"
    atomic_write_bytes(marker, json.dumps({"job": job_id, "files": names}).encode())
    try:
        yield
    finally:
        try:
            # a file a model row names stays: the run finished, or got that far
            gone = _with_sidecars(names) - _referenced(store)
            # and the temp file of a weights write a killed rank cut short
            _remove(models_dir, {t.name for n in gone
                                 for t in models_dir.glob(f".{glob.escape(n)}.*.tmp")})
            if _remove(models_dir, gone):
                log.info("job %d did not finish: removed its weights %s", job_id,
                         ", ".join(sorted(n for n in gone if n.endswith(".pt"))))
            if not any((models_dir / f).is_file() for f in gone):
                marker.unlink(missing_ok=True)
        except Exception as e:  # noqa: BLE001 - never hide the job's own outcome
            log.warning("job %d: cleaning up its weights failed (the next engine start "
                        "retries): %s", job_id, e)
