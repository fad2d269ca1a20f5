"""The selected image's object figures for the metrics pane: measured in a thread worker, one
image at a time, cached per (image, mask, model).

``ObjectFigures(host, project)`` belongs to a widget (the metrics pane is its host).
``request(row)`` asks for the figures of a row (anything with ``.id``, an image id, or None)
and returns at once: the figures last measured for that image when there are some, else None.
The measuring (reading the mask and image, scipy and scikit-image: ``measure_target`` with
source ``best``) runs in a thread worker of the host, never on the UI thread; its answer is
posted to the host as ``ObjectFigures.Ready`` (handler ``on_object_figures_ready``) when it is
for the row asked for last. One worker at a time: rows passed over while it runs are skipped,
and the last one asked for is measured next, so holding j never queues work.

A request first looks the image up (a few small queries): the cache key is (image id, source,
the mask's sha256 as indexed — or, for a prediction, the image's sha256 and the map's file —
model id, the reason it cannot be measured, the measure settings). A request for the same row
after the rows reload (a mask edit, a new model) measures again only when that key changed.

The figures are ``measure_target``'s image row (IMAGE_COLUMNS: ``objects``,
``border_objects``, ``density_px``, ``density_unit``, ``area_fraction``, ``area_mean_px``…,
``source``, ``model``, ``error``) plus ``components`` (the count before the watershed split),
``split`` and ``unit`` (None without a pixel size).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from functools import partial

from textual.message import Message
from textual.widget import Widget
from textual.worker import get_current_worker

SOURCE = "best"
CACHE_SIZE = 512   # images whose figures are kept (a few hundred bytes each)


class ObjectFigures:
    """Object figures of one image at a time for ``host``, measured off the UI thread."""

    class Ready(Message):
        """The figures of ``image_id`` (a dict, see the module docstring; ``error`` says why
        an image cannot be measured)."""

        def __init__(self, image_id: int, figures: dict) -> None:
            super().__init__()
            self.image_id = image_id
            self.figures = figures

    def __init__(self, host: Widget, project, *, settings=None,
                 cache_size: int = CACHE_SIZE) -> None:
        self.host = host
        self.project = project
        self._settings = settings
        self.cache_size = cache_size
        self.wanted: int | None = None     # the image asked for last
        self.measured = 0                  # figures computed (not from the cache): tests
        self._busy = False
        self._again = False
        self._lock = threading.Lock()
        self._by_key: OrderedDict = OrderedDict()     # key -> figures
        self._latest: dict[int, dict] = {}            # image id -> its last figures

    @property
    def settings(self):
        if self._settings is None:
            from ...engine.project.measure import settings_from

            self._settings = settings_from(self.project.cfg)
        return self._settings

    # -- the UI thread -----------------------------------------------------------------------
    def request(self, row) -> dict | None:
        """Ask for the figures of ``row`` (a row with ``.id``, an image id, or None for no
        row). Returns the figures last measured for it, or None; ``Ready`` follows."""
        image_id = row if isinstance(row, int) or row is None else row.id
        self.wanted = image_id
        if image_id is None:
            return None
        if self._busy:
            self._again = True
        else:
            self._start(image_id)
        with self._lock:
            return self._latest.get(image_id)

    def cached(self, image_id: int) -> dict | None:
        """The figures last measured for ``image_id`` (maybe before its mask changed)."""
        with self._lock:
            return self._latest.get(image_id)

    def _start(self, image_id: int) -> None:
        self._busy = True
        self._again = False
        self.host.run_worker(partial(self._work, image_id, self.host.app), thread=True,
                             group="object-figures", exit_on_error=False,
                             name=f"object figures of image {image_id}")

    def _finished(self, image_id: int, figures: dict) -> None:
        self._busy = False
        if image_id == self.wanted:
            self.host.post_message(self.Ready(image_id, figures))
        if self.wanted is not None and (self._again or self.wanted != image_id):
            self._start(self.wanted)

    # -- the worker thread -------------------------------------------------------------------
    def _work(self, image_id: int, app) -> None:
        try:
            figures = self.figures(image_id)
        except Exception as e:  # noqa: BLE001 - shown in the pane; the app goes on
            figures = {"error": f"cannot measure: {e}" if str(e) else type(e).__name__}
        if get_current_worker().is_cancelled:   # the host is gone
            return
        try:
            app.call_from_thread(self._finished, image_id, figures)
        except RuntimeError:   # the app is shutting down
            pass

    def figures(self, image_id: int) -> dict:
        """The figures of one image, from the cache when its key is unchanged (any thread but
        the UI's: it may read the mask and run the measuring)."""
        from ...engine.project import measure

        project, settings = self.project, self.settings
        row = project.store.image(image_id)
        if row is None:
            return {"error": "the image is no longer in the project"}
        t = measure.target_for(project, row, SOURCE)
        if t is None:   # cannot happen for "best"; kept for another source
            return {"error": f"no {SOURCE} mask"}
        which = ((row.img_sha256, str(t.path)) if t.source == "prediction"
                 else row.mask_sha256)
        key = (image_id, t.source, which, t.model, t.error, settings)
        with self._lock:
            hit = self._by_key.get(key)
            if hit is not None:
                self._by_key.move_to_end(key)
                self._latest[image_id] = hit
                return hit
        _objects, figures = measure.measure_target(project, t, settings, components=True)
        figures["split"] = settings.split
        figures["unit"] = settings.unit if settings.pixel_size else None
        with self._lock:
            self.measured += 1
            self._by_key[key] = figures
            self._latest[image_id] = figures
            while len(self._by_key) > self.cache_size:
                old_key, _old = self._by_key.popitem(last=False)
                if self._latest.get(old_key[0]) is _old:
                    del self._latest[old_key[0]]
        return figures
