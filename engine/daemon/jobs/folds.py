"""Out-of-fold rules, in one place: the fold each image is held out of when crossval trains,
and the fold model that predicts each image afterwards."""

from __future__ import annotations

import random

from ...store.rows import ImageRow, ModelRow


def fold_assignment(paths: list[str], k: int, seed: int) -> dict[str, int]:
    """Deterministic, balanced fold of each path (same seed and set → same folds)."""
    order = sorted(paths)
    random.Random(seed).shuffle(order)
    return {p: i % k for i, p in enumerate(order)}


def fold_of(model: ModelRow) -> dict[str, int]:
    """image path → the fold model of a crossval ``model`` that never saw its mask (images
    outside its manifest: new, or without a mask then, are predicted by every fold model)."""
    if model.kind != "crossval":
        return {}
    return {e["path"]: e["fold"] for e in model.manifest or []}


def fold_groups(model: ModelRow, rows: list[ImageRow]) -> list[tuple[int | None, list]]:
    """``rows`` grouped by the fold that predicts them (None: the whole model), folds first."""
    of = fold_of(model)
    groups: dict[int | None, list] = {}
    for r in rows:
        groups.setdefault(of.get(r.path), []).append(r)
    return sorted(groups.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
