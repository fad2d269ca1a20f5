"""Scoring an image's stored prediction against its current mask, without running a model.

Used by the predict job (after the forward pass) and whenever a mask changes: the probability
map of an image is stored as an 8-bit PNG keyed by image hash and model (probs.py), so an
edited mask is re-scored in milliseconds. numpy/Pillow only: clients call it too.
"""

from __future__ import annotations

import numpy as np

from ...store import Store
from .. import imageio
from ..project import Project
from .metrics import score_image
from .probs import load_prob


def read_current_mask(project: Project, image_row) -> np.ndarray | None:
    """The image's mask as a foreground boolean map, or None when it has none."""
    if not image_row.mask_path:
        return None
    m = imageio.read_mask(project.path(image_row.mask_path), project.cfg.project.codes,
                          expect_shape=image_row.shape)
    return (m > 0).astype(np.uint8)


def store_score_error(store: Store, image_row, *, model_id: int, fold: int | None,
                      precision: str, prob_rel: str | None, error: str) -> None:
    """The score row of an image that could not be scored: the reason, no figures. The one
    place such a row is written (a failed prediction, an unreadable map, an unusable mask)."""
    store.put_score(image_row.id, model_id, fold=fold, image_sha256=image_row.img_sha256,
                    mask_sha256=image_row.mask_sha256, precision=precision,
                    prob_path=prob_rel, category=None, metrics={}, error=error)


def score_and_store(project: Project, image_row, *, model_id: int, fold: int | None,
                    prob: np.ndarray, precision: str, prob_rel: str) -> dict:
    """Score one image from its probability map and write the score row."""
    def failed(msg: str) -> dict:
        store_score_error(project.store, image_row, model_id=model_id, fold=fold,
                          precision=precision, prob_rel=prob_rel, error=msg)
        return {"error": msg}

    try:
        mask = read_current_mask(project, image_row)
    except (imageio.MaskError, imageio.ImageError, OSError) as e:
        return failed(str(e))
    if mask is not None and mask.shape != prob.shape:
        # predictions come back at native resolution; a mismatch means the mask is bad
        return failed(f"{image_row.mask_path}: mask is {mask.shape[1]}×{mask.shape[0]}, "
                      f"image is {prob.shape[1]}×{prob.shape[0]}")
    metrics = score_image(prob, mask, cfg_scoring=project.cfg.scoring)
    project.store.put_score(image_row.id, model_id, fold=fold,
                            image_sha256=image_row.img_sha256,
                            mask_sha256=image_row.mask_sha256, precision=precision,
                            prob_path=prob_rel, category=metrics.get("category"),
                            metrics=metrics)
    return metrics


def rescore_image(project: Project, image_id: int, *, force: bool = False) -> bool:
    """Re-score an image whose mask changed, from the stored probabilities of its newest score.

    Returns False when there is nothing to re-score from (no score, the image itself changed
    since it was predicted, or the probability file is gone): it then needs a model run.
    """
    store = project.store
    row = store.image(image_id)
    if row is None:
        return False
    sc = store.score(image_id)
    if sc is None or not sc.prob_path or sc.image_sha256 != row.img_sha256:
        return False
    if not force and sc.mask_sha256 == row.mask_sha256 and not sc.error:
        return True  # already current
    try:
        prob = load_prob(project.state, sc.prob_path)
    except (imageio.ImageError, OSError):   # missing or damaged: predict it again
        return False
    score_and_store(project, row, model_id=sc.model_id, fold=sc.fold, prob=prob,
                    precision=sc.precision or "", prob_rel=sc.prob_path)
    return True
