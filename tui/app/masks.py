"""Mask changes the TUI makes, all through the engine's mask history (never a bare write).

Every function here runs in a worker thread (its own SQLite connection) and returns a short
message for the status bar, or raises an error whose message is for a person (MaskActionError
here, the engine's HistoryError / BackupError / MaskError there). The engine modules are
imported on first use: they pull numpy and scipy, which the app's start does not need.
"""

from __future__ import annotations

from pathlib import Path


class MaskActionError(RuntimeError):
    pass


def _image_row(store, image_id: int):
    row = store.image(image_id)
    if row is None:
        raise MaskActionError(f"image #{image_id} is no longer in the project")
    return row


def prediction_mask(state_dir: Path, prob_rel: str, shape: tuple[int, int] | None):
    """The model's prediction as a 0/1 mask: P(object) > 0.5 from the stored 8-bit map."""
    import numpy as np
    from PIL import Image

    path = Path(state_dir) / prob_rel
    try:
        with Image.open(path) as im:
            im = im.convert("L")
            if shape is not None and im.size != (shape[1], shape[0]):
                im = im.resize((shape[1], shape[0]), Image.BILINEAR)
            prob = np.asarray(im)
    except OSError as e:
        raise MaskActionError(f"{path}: cannot read the prediction: {e}") from None
    return (prob > 127).astype(np.uint8)


def _shape(row) -> tuple[int, int] | None:
    return (row["height"], row["width"]) if row["height"] and row["width"] else None


def _prob_rel(store, image_id: int) -> str | None:
    score = store.score(image_id)
    return score.get("prob_path") if score else None


def nudge_index(root: Path, cfg, store, rel_mask: str) -> None:
    """Tell the index about a mask an editor changed now (the row turns 'edited' at once, also
    with the engine offline); the engine's watcher then re-scores it. Masks written through
    the engine's history (prediction, undo) are re-indexed there."""
    from ...engine.project.index import index_one

    index_one(root, cfg, store, rel_mask)


def replace_with_prediction(root: Path, cfg, store, image_id: int) -> str:
    from ...engine.project import history

    row = _image_row(store, image_id)
    prob_rel = _prob_rel(store, image_id)
    if not prob_rel:
        raise MaskActionError(f"{row['path']}: no prediction yet (predict it first)")
    mask = prediction_mask(cfg.state_path(root), prob_rel, _shape(row))
    history.write_mask(root, cfg, store, row, mask, source="prediction")  # re-indexes the row
    return f"{row['path']}: mask replaced by the prediction"


def undo(root: Path, cfg, store, image_id: int) -> str:
    from ...engine.project import history

    row = _image_row(store, image_id)
    result = history.revert(root, cfg, store, row["mask_path"] or row["path"])  # re-indexes
    return f"{result['path']}: back to version {result['version']} (u again undoes the undo)"


def prepare_edit(root: Path, cfg, store, image_id: int) -> tuple[Path, Path]:
    """Make sure the image has a mask (from the prediction, else a threshold) and keep the
    current version in history; returns (mask path, image path) to hand to the editor."""
    from ...engine.project import history

    row = _image_row(store, image_id)
    if not row["mask_path"] or not (root / row["mask_path"]).exists():
        prob_rel = _prob_rel(store, image_id)
        if prob_rel and (cfg.state_path(root) / prob_rel).exists():
            mask = prediction_mask(cfg.state_path(root), prob_rel, _shape(row))
            source = "prediction"
        else:
            from ...engine.project.imageio import read_image
            from ...engine.project.segment import threshold_mask

            mask = threshold_mask(read_image(root / row["path"]), "otsu")
            source = "segment"
        history.write_mask(root, cfg, store, row, mask, source=source)
        row = _image_row(store, image_id)
        if not row["mask_path"]:
            raise MaskActionError(f"{row['path']}: a mask was written but the project does not "
                                  "know its path")
    else:
        history.save_mask_version(root, cfg, store, row["mask_path"], source="editor")
    return root / row["mask_path"], root / row["path"]
