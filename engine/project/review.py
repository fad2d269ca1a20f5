"""Review use cases every client shares: the decisions a person may make about a mask, and
the mask changes a review makes (use the prediction, undo, prepare an edit), all through the
mask history (never a bare write).

The mask changes return a short message for a status line, or raise an error whose message
is for a person (ReviewError here; HistoryError / BackupError / MaskError from below). The
modules they need are imported on first use: they pull numpy and scipy, which the app's start
does not need (the app runs these in worker threads).
"""

from __future__ import annotations

from pathlib import Path

from .project import Project


# -- what a review decision may do (the app's a / x and the CLI's accept / flag) ------------
def accept_problem(mask_path: str | None, error: str | None) -> str | None:
    """Why an image cannot be accepted, or None: there is no mask to call right, or its mask
    is unusable (accepting that would hide the error and send the mask into training)."""
    if error:
        return "its mask is unusable (fix it first: see its error)"
    if not mask_path:
        return "it has no mask yet"
    return None


def unflagged_status(mask_path: str | None, error: str | None) -> str:
    """The status a flagged image goes back to: the one a scan gives it undecided."""
    if error:
        return "error"
    return "unreviewed" if mask_path else "no-mask"


# -- mask changes ------------------------------------------------------------------------------


class ReviewError(RuntimeError):
    """A review action that cannot be done (the message says why, for a person)."""


def _image_row(store, image_id: int):
    row = store.image(image_id)
    if row is None:
        raise ReviewError(f"image #{image_id} is no longer in the project")
    return row


def prediction_mask(project: Project, row):
    """The current model's prediction of ``row`` as a 0/1 mask of the image's size; ReviewError
    when there is none or its map cannot be read."""
    from .scoring.current import NoPrediction, prediction_for

    try:
        pred = prediction_for(project, row)
    except NoPrediction as e:
        raise ReviewError(str(e)) from None
    return _read_prediction(pred, row)


def _read_prediction(pred, row):
    from .imageio import ImageError
    from .scoring.probs import read_prediction

    try:
        return read_prediction(pred.path, row.shape)
    except ImageError as e:
        raise ReviewError(f"cannot read the prediction: {e}") from None


def nudge_index(project: Project, rel_mask: str) -> None:
    """Tell the index about a mask an editor changed now (the row turns 'edited' at once, also
    with the engine offline); the engine's watcher then re-scores it. Masks written through
    the engine's history (prediction, undo) are re-indexed there."""
    from .index import index_one

    index_one(project, rel_mask)


def replace_with_prediction(project: Project, image_id: int) -> str:
    from . import history

    row = _image_row(project.store, image_id)
    mask = prediction_mask(project, row)
    history.write_mask(project, row, mask, source="prediction")  # re-indexes the row
    return f"{row.path}: mask replaced by the prediction"


def undo(project: Project, image_id: int) -> str:
    from . import history

    row = _image_row(project.store, image_id)
    result = history.revert(project, row.mask_path or row.path)  # re-indexes
    return f"{result['path']}: back to version {result['version']}"


def prepare_edit(project: Project, image_id: int) -> tuple[Path, Path]:
    """Make sure the image has a mask (from the current model's prediction, else a threshold
    of the image read as ``segtriage segment`` reads it: 16-bit at its native depth) and keep
    the current version in history; returns (mask path, image path) to hand to the editor."""
    from . import history, versions
    from .scoring.current import NoPrediction, prediction_for

    store, root = project.store, project.root
    row = _image_row(store, image_id)
    if not row.mask_path or not (root / row.mask_path).exists():
        try:
            pred = prediction_for(project, row)
        except NoPrediction:
            pred = None
        if pred is not None and pred.path.exists():
            mask = _read_prediction(pred, row)
            source = "prediction"
        else:
            from .segment import read_for_threshold, threshold_mask

            mask = threshold_mask(read_for_threshold(root / row.path), "otsu")
            source = "segment"
        history.write_mask(project, row, mask, source=source)
        row = _image_row(store, image_id)
        if not row.mask_path:
            raise ReviewError(f"{row.path}: a mask was written but the project does not "
                                  "know its path")
    else:
        versions.save_mask_version(project, row.mask_path, source="editor")
    return root / row.mask_path, root / row.path
