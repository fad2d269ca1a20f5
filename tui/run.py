"""Running a Textual app for a person: the app and the painter start through ``run_frozen``."""
from __future__ import annotations

import gc


def run_frozen(app):
    """``app.run()`` with what start-up made moved out of the garbage collector's way.

    Every frame makes thousands of short-lived Segments and Strips, so Python runs a full
    collection every few dozen frames, and it walks every live object: 20-45 ms with the
    painter's imports, longer than a frame. ``gc.freeze()`` once the imports and the
    document are in leaves those out of every later collection (docs/benchmarks.md, redraw).
    """
    gc.collect()
    gc.freeze()
    return app.run()
