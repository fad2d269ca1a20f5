"""Measuring the objects of binary masks: size, shape and number density, per object, per
image and over a data set, in pixels and in the project's physical unit.

shapes.py   one mask: objects (connected components or the watershed split), regionprops,
            the image's figures; a data set's summary
report.py   a project: which mask each image is measured from, every image, CSV and JSON

numpy / scipy / scikit-image only (clients import this package: no torch, no textual).
"""

from .report import (SUMMARY_COLUMNS, Report, Target, measure_project, measure_target,
                     model_sha256, plan, read_target, rows_of, target_for, to_csv, to_json,
                     version)
from .shapes import (DEFAULT_COMPACTNESS, DEFAULT_MIN_DISTANCE, IMAGE_COLUMNS, OBJECT_COLUMNS,
                     REVIEWED, SOURCES, SPLIT_METHODS, Settings, grey, image_stats,
                     measure_labels, measure_mask, settings_from, split_labels, summarize)

__all__ = ["DEFAULT_COMPACTNESS", "DEFAULT_MIN_DISTANCE", "IMAGE_COLUMNS",
           "SUMMARY_COLUMNS",
           "OBJECT_COLUMNS", "REVIEWED", "Report", "SOURCES", "SPLIT_METHODS", "Settings",
           "Target", "grey", "image_stats", "measure_labels", "measure_mask",
           "measure_project", "measure_target", "model_sha256", "plan", "read_target",
           "rows_of", "settings_from", "split_labels", "summarize", "target_for", "to_csv",
           "to_json", "version"]
