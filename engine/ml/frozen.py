"""Frozen copies of the masks for one training run, and the cleanup of those a killed run
left. No torch here: the engine cleans up at start without importing it."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

FROZEN_PREFIX = ".train-masks-"


def remove_stale_frozen_masks(where: Path) -> int:
    """Delete the frozen-mask folders a killed training left in ``where`` (call when no
    training runs: the engine at start). Returns how many."""
    n = 0
    for d in Path(where).glob(FROZEN_PREFIX + "*"):
        shutil.rmtree(d, ignore_errors=True)
        n += 1
    return n


@contextmanager
def frozen_masks(items: Sequence[tuple[Path, Path]], where: Path):
    """The pairs with each mask replaced by a copy taken now, deleted afterwards.

    fastai reads every mask again each epoch, and fixing masks while the model trains is the
    loop this tool is for: a save mid-run (half-written, a new size, a deleted file) would
    otherwise fail the whole job, and a finished edit would mix two versions into one model.
    Copies are plain file copies (masks are small); a mask that cannot be copied keeps its
    path and check_items reports it."""
    where.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=FROZEN_PREFIX, dir=where) as d:
        out = []
        for i, (img, msk) in enumerate(items):
            copy = Path(d) / f"{i}{Path(msk).suffix}"
            try:
                shutil.copyfile(msk, copy)
            except OSError:
                copy = Path(msk)
            out.append((Path(img), copy))
        yield out
