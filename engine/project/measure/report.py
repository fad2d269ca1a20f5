"""Measuring a project: which mask each image is measured from (its reviewed mask, its mask or
the current model's prediction), every image, and the report as CSV or JSON (same masks and
model, same bytes).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .. import imageio
from ...store.rows import ModelRow
from ..project import Project
from ..scoring import objects
from ..scoring.current import NoPrediction, prediction_for
from ..scoring.probs import read_prediction
from .shapes import (IMAGE_COLUMNS, OBJECT_COLUMNS, REVIEWED, SOURCES, Settings, grey,
                     measure_mask, settings_from, summarize)

@dataclass
class Target:
    """One image to measure: from its mask file, or from a stored probability map."""
    image_id: int
    image: str                  # image path relative to the data folder
    status: str
    source: str                 # "reviewed" | "mask" | "prediction"
    path: Path | None           # the file the mask comes from
    shown: str | None           # that file as the report names it
    model: int | None = None
    shape: tuple[int, int] | None = None
    error: str | None = None


@dataclass
class Report:
    header: dict
    objects: list[dict] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    @property
    def errors(self) -> list[dict]:
        return [r for r in self.images if r.get("error")]


def _prediction_target(project: Project, row, model_id: int | None) -> Target:
    t = Target(row.id, row.path, row.status, "prediction", None, None,
               model=model_id, shape=row.shape)
    try:
        t.path = prediction_for(project, row, model_id=model_id).path
    except NoPrediction as e:
        t.error = e.reason
        return t
    t.shown = (str(t.path.relative_to(project.root)) if t.path.is_relative_to(project.root)
               else str(t.path))
    return t


def plan(project: Project, source: str) -> list[Target]:
    """Which mask every image of the project is measured from, by ``source``:

    - ``reviewed``: the masks a person accepted or edited (other images are left out);
    - ``masks``: every image with a mask (flagged ones left out: a person said it is wrong);
    - ``predictions``: the current model's stored P(object) > 0.5, every image;
    - ``best``: the reviewed mask where there is one, the current model's prediction elsewhere.

    A mask the scan found unusable, or a missing prediction, is a Target with ``error``."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    model_id = project.store.current_model_id()
    out = []
    for row in sorted(project.store.images(), key=lambda r: r.path):
        t = target_for(project, row, source, model_id=model_id)
        if t is not None:
            out.append(t)
    return out


def target_for(project: Project, row, source: str, *,
               model_id: int | None | str = "current") -> Target | None:
    """The Target of one image row under ``source`` (see ``plan``); None when the source
    leaves the image out."""
    if model_id == "current":
        model_id = project.store.current_model_id()
    reviewed = row.status in REVIEWED
    if source == "reviewed" and not reviewed:
        return None
    if source == "masks" and (not row.mask_path or row.status == "flagged"):
        return None
    if source in ("reviewed", "masks") or (source == "best" and reviewed):
        t = Target(row.id, row.path, row.status,
                   "reviewed" if reviewed else "mask", project.path(row.mask_path)
                   if row.mask_path else None, row.mask_path, shape=row.shape)
        if row.error:
            t.error = row.error
        elif not row.mask_path:
            t.error = "no mask"
        return t
    return _prediction_target(project, row, model_id)


def _sha256(path: Path) -> str:
    return imageio.sha256_file(path)


def model_sha256(state: Path, model: ModelRow | None) -> str | None:
    """sha256 over the model's weight files (their own hashes, in order), or None."""
    if model is None or not model.weights:
        return None
    h = hashlib.sha256()
    for w in model.weights:
        p = state / "models" / w
        try:
            h.update(_sha256(p).encode())
        except OSError:
            return None
    return h.hexdigest()


def read_target(project: Project, t: Target) -> tuple[np.ndarray, np.ndarray]:
    """(bool mask, intensity) of a target; ImageError/MaskError/OSError name the file."""
    intensity = grey(imageio.read_image_raw(project.path(t.image)))
    shape = intensity.shape[:2]
    if t.source == "prediction":
        mask = read_prediction(t.path, shape) > 0   # P(object) > 0.5 of the 8-bit map
    else:
        mask = imageio.read_mask(t.path, project.cfg.project.codes, expect_shape=shape) > 0
    return mask, intensity


def measure_target(project: Project, t: Target, settings: Settings,
                   model_shas: dict | None = None, *,
                   components: bool = False) -> tuple[list[dict], dict]:
    """(object rows, image row) of one target; a problem becomes the image row's error.

    ``components``: the image row also holds ``components``, the count of connected
    components before any split (equal to ``objects`` without one), so a person sees what
    the watershed did (the app's metrics pane; not a report column)."""
    base = {"image": t.image, "source": t.source, "status": t.status, "mask": t.shown,
            "model": t.model, "mask_sha256": None,
            "model_sha256": (model_shas or {}).get(t.model)}
    if t.error:
        return [], dict.fromkeys(IMAGE_COLUMNS) | base | {"error": t.error}
    try:
        mask, intensity = read_target(project, t)
        base["mask_sha256"] = _sha256(t.path)
        objs, stats = measure_mask(mask, intensity, settings)
        if components:
            stats["components"] = (stats["objects"] if settings.split == "none"
                                   else objects.label(mask)[1])
    except (imageio.ImageError, imageio.MaskError, OSError, ValueError) as e:
        return [], dict.fromkeys(IMAGE_COLUMNS) | base | {"error": str(e)}
    head = {"image": t.image, "source": t.source, "model": t.model}
    return ([dict.fromkeys(OBJECT_COLUMNS) | head | r for r in objs],
            dict.fromkeys(IMAGE_COLUMNS) | base | stats)


def version() -> str:
    try:
        from importlib.metadata import version as v

        return v("segtriage")
    except Exception:  # noqa: BLE001 - a source tree without metadata
        return "unknown"


def measure_project(project: Project, *, source: str = "best",
                    settings: Settings | None = None,
                    progress: Callable[[int, int], None] | None = None,
                    cancelled: Callable[[], bool] | None = None) -> Report:
    """Measure every image of ``source`` (see ``plan``); rows sorted by image, objects by
    id. ``progress(done, total)`` after each image; ``cancelled()`` stops early."""
    store = project.store
    settings = settings or settings_from(project.cfg)
    targets = plan(project, source)
    state = project.state
    models = {t.model for t in targets if t.model is not None}
    shas = {m: model_sha256(state, store.model(m)) for m in sorted(models)}
    report = Report(header={"segtriage": version(), "source": source, **settings.header(),
                            "model": store.current_model_id()})
    for i, t in enumerate(targets):
        if cancelled is not None and cancelled():
            break
        objs, img = measure_target(project, t, settings, shas)
        report.objects += objs
        report.images.append(img)
        if progress is not None:
            progress(i + 1, len(targets))
    report.header["models"] = {str(m): shas[m] for m in sorted(models)}
    report.summary = summarize(report.images, report.objects, settings)
    return report


# ----------------------------------------------------------------------------------------
# output: the same report gives the same bytes
# ----------------------------------------------------------------------------------------
SUMMARY_COLUMNS = tuple(summarize([], [], Settings()))


def fmt(v) -> str:
    """A CSV cell: integers as written, floats with 10 significant digits, booleans as
    true/false, None as an empty cell, strings always quoted."""
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if not math.isfinite(v):
            return ""
        return format(v, ".10g")
    return '"' + str(v).replace('"', '""') + '"'


def _header_lines(header: dict, per: str) -> list[str]:
    lines = [f"# segtriage measure {header.get('segtriage')}: one row per "
             f"{'object' if per == 'object' else 'image' if per == 'image' else 'data set'}"]
    for k in sorted(header):
        lines.append(f"# {k}: {json.dumps(header[k], sort_keys=True, ensure_ascii=False)}")
    return lines


def rows_of(report: Report, per: str) -> tuple[tuple[str, ...], list[dict]]:
    if per == "object":
        return OBJECT_COLUMNS, report.objects
    if per == "image":
        return IMAGE_COLUMNS, report.images
    if per == "summary":
        return SUMMARY_COLUMNS, [report.summary]
    raise ValueError(f"per must be object, image or summary, got {per!r}")


def to_csv(report: Report, per: str = "object") -> str:
    """The ``per`` table as CSV: ``#`` lines with the report header (segtriage version,
    source, split settings, pixel size and unit, model hashes), then a header row and the
    rows. Read it with ``pandas.read_csv(path, comment="#")``."""
    columns, rows = rows_of(report, per)
    out = _header_lines(report.header, per) + [",".join(columns)]
    out += [",".join(fmt(r.get(c)) for c in columns) for r in rows]
    return "\n".join(out) + "\n"


def _json_value(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return float(format(v, ".10g")) if math.isfinite(v) else None
    return v


def to_json(report: Report, per: str = "object") -> str:
    """``{"header": ..., "rows": [...]}`` (rows of the ``per`` table, every column) and, for
    any ``per``, the data-set ``summary`` and the ``errors`` (image, file, reason)."""
    columns, rows = rows_of(report, per)
    doc = {"header": report.header, "per": per,
           "rows": [{c: _json_value(r.get(c)) for c in columns} for r in rows],
           "summary": {k: _json_value(v) for k, v in report.summary.items()},
           "errors": [{"image": r["image"], "file": r["mask"], "error": r["error"]}
                      for r in report.errors]}
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
