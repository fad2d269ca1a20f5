"""Mask editing operations: plain functions on numpy arrays (no Textual, no torch).

The painter's keys, `segtriage fix` and bench/fix_effort.py all call exactly these.

Conventions
- A mask is a 2-D array, HxW: bool, or any numbers where non-zero is foreground. Every
  operation returns a NEW bool array of the same shape and never changes its input.
- A prediction (``pred``) is a mask of the same shape: the model's P(object) > 0.5.
- An *object* is a connected component with 8-connectivity, the same as the scorer's
  (engine/project/scoring/objects.py). Background regions (flood fill of background,
  holes) are 4-connected, the complement of 8-connected objects: a diagonal chain of object
  pixels closes a hole.
- Coordinates are (y, x) = (row, column). An operation that acts on "the thing under (y, x)"
  raises ``OutsideImage`` (a ValueError naming the point and the image size) for a point
  outside the image. The brush and strokes are clipped instead: a disk whose centre lies
  outside paints the part of it that overlaps the image (a mouse drag may leave the picture),
  and boxes are clipped to the image (a box entirely outside changes nothing).
- Grow and shrink go one 4-neighbour step per pixel (``px`` steps: a diamond of radius px),
  for one object or all alike. Grow never lets an object touch, and so merge with, another
  object; shrink takes only the object's own pixels. An object cut by the image frame
  continues straight beyond it: shrinking does not eat it from the frame's side. Grow then
  shrink (a closing) belongs in one ``grow_shrink`` call: it remembers what grew up to the
  frame from inside and takes it back; two calls cannot (the pixels are the same as those of
  an object the frame cuts), so they glue an object that was near the frame to it.

Modules: base.py (argument checks, the region under a point), drawing.py (brush, strokes,
flood fill, holes), objects.py (one object or every object: delete, add the predicted one,
the prediction in a box, grow and shrink, unseen objects), registry.py (``OPS``, for the
benchmark's oracle and the tests). Every public name is here: ``ops.brush``, ``ops.OPS``...
"""

from __future__ import annotations

from ..disagree import Region, disagreements  # noqa: F401  (ops.disagreements, ops.Region)
from ..history import History  # noqa: F401  (undo and redo, in history.py; ops.History)
from .base import CROSS, OutsideImage, as_mask  # noqa: F401
from .drawing import brush, fill_holes, flood_fill, stroke  # noqa: F401
from .objects import (add_predicted_object, add_unseen_predicted, delete_object,  # noqa: F401
                      drop_unseen, grow, grow_shrink, object_at, shrink,
                      take_prediction_in_box)
from .registry import OPS, Op  # noqa: F401
