"""The operations' registry: each with what it takes, for the benchmark's oracle and the tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .drawing import brush, fill_holes, flood_fill, stroke
from .objects import (add_predicted_object, add_unseen_predicted, delete_object, drop_unseen,
                      grow, shrink, take_prediction_in_box)


@dataclass(frozen=True)
class Op:
    """One operation, for the benchmark's oracle and the tests.

    at: what position it takes: "point" (y, x required), "object" (y, x or None for all
    objects), "points" (a stroke), "box" (y0, x0, y1, x1) or "none".
    pred: it needs the prediction (passed right after the mask). brush: a painting tool."""
    name: str
    func: Callable[..., np.ndarray]
    description: str
    at: str
    pred: bool = False
    brush: bool = False


OPS: dict[str, Op] = {op.name: op for op in (
    Op("brush", brush, "paint (or erase) a disk at the cursor", "point", brush=True),
    Op("stroke", stroke, "paint (or erase) along a line of points", "points", brush=True),
    Op("flood_fill", flood_fill, "fill the 4-connected area of equal value", "point"),
    Op("fill_holes", fill_holes, "fill the holes of the object (or of all objects)", "object"),
    Op("delete_object", delete_object, "delete the object under the cursor", "point"),
    Op("add_predicted_object", add_predicted_object,
       "add the predicted object under the cursor", "point", pred=True),
    Op("take_prediction_in_box", take_prediction_in_box,
       "replace the mask by the prediction inside a box", "box", pred=True),
    Op("grow", grow, "grow the object (or all objects) by px pixels", "object"),
    Op("shrink", shrink, "shrink the object (or all objects) by px pixels", "object"),
    Op("add_unseen_predicted", add_unseen_predicted,
       "add every predicted object the mask lacks", "none", pred=True),
    Op("drop_unseen", drop_unseen, "remove every mask object the model does not see", "none",
       pred=True),
)}
