"""An image's current prediction: the current model's stored P(object) map of the image as it is
now. The one place these checks are made (measuring, use-prediction, the editor's first mask,
`segtriage fix`, the painter).

The score the app shows for a row may be an older model's, an early-ranking checkpoint's
(negative model ids) or one made before the image file was replaced; none of those is the
current prediction, and a mask made from one would be a different image's or model's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..project import Project


class NoPrediction(LookupError):
    """The image has no current prediction; ``reason`` says why (without the image name)."""

    def __init__(self, image: str, reason: str) -> None:
        self.image = image
        self.reason = reason
        super().__init__(f"no current prediction for {image}: {reason}")


@dataclass(frozen=True)
class Prediction:
    model_id: int
    rel: str        # the map's path relative to the state folder (the score row's prob_path)
    path: Path      # the map's path


def prediction_for(project: Project, row, *, model_id: int | None | str = "current"
                   ) -> Prediction:
    """The current prediction of image ``row`` (an ImageRow): the score row of the current
    model (or of ``model_id``) for this image, made from the image's content now. Raises
    NoPrediction when there is none. Whether the map file is still there is the reader's
    question (it may be written a few ms after its score row, see probs.ProbWriter)."""
    if model_id == "current":
        model_id = project.store.current_model_id()
    if model_id is None:
        raise NoPrediction(row.path, "no model yet (train one first)")
    sc = project.store.score(row.id, model_id)
    if sc is None or not sc.prob_path:
        raise NoPrediction(row.path, f"no prediction of model v{model_id} yet "
                                     "(predict it first)")
    if row.img_sha256 is None or sc.image_sha256 != row.img_sha256:
        raise NoPrediction(row.path, f"the image changed since model v{model_id} predicted "
                                     "it (predict it again)")
    return Prediction(model_id, sc.prob_path, project.state / sc.prob_path)
