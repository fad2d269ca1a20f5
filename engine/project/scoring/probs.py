"""Stored probability maps: P(object) per image and model as 8-bit PNGs in the state folder.

The predict job writes them (ProbWriter, off the forward pass's thread); re-scoring an edited
mask, the app's preview and the painter read them. numpy and Pillow only: clients use this.

A stored map read as a 0/1 mask (use-prediction, the editor's first mask, measuring,
`segtriage fix`) goes through ``read_prediction``: the project's guarded image reader (it
refuses decompression bombs and names the file in its errors), resized bilinearly to the
image when the sizes differ, cut at ``PRED_CUT``.
"""

from __future__ import annotations

import io
import queue
import re
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from ..imageio import ImageError, atomic_write_bytes, read_image_raw

# P(object) > 0.5 on the 8-bit map: round(p * 255) > 127. tui/paint/scene.py keeps its own
# copy (importing this package pulls scipy, which the app's preview does not need); a test
# keeps the two equal.
PRED_CUT = 127

_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def prob_relpath(image_sha256: str, model_id: int | str, fold: int | None = None) -> str:
    """Where an image's P(object) PNG lives, relative to the state folder:
    ``preds/m{model}/{sha[:2]}/{sha}.png`` (fold models: ``preds/m{model}/f{fold}/...``)."""
    sha = str(image_sha256)
    if not _SAFE.match(sha) or not _SAFE.match(str(model_id)):
        raise ValueError(f"unsafe key for a prediction path: {sha!r}, model {model_id!r}")
    base = f"preds/m{model_id}" + (f"/f{int(fold)}" if fold is not None else "")
    return f"{base}/{sha[:2]}/{sha}.png"


def prob_to_u8(prob: np.ndarray) -> np.ndarray:
    """round(p * 255) as uint8; NaN → 0, values clipped to [0, 1]."""
    a = np.nan_to_num(np.asarray(prob, dtype=np.float32), nan=0.0)
    if a.ndim != 2:
        raise ValueError(f"probability map must be 2-D, got shape {a.shape}")
    return np.rint(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)


def _png_bytes(u8: np.ndarray) -> bytes:
    # compress_level 1: ~3× faster than Pillow's default 6; these maps are a rewritten cache
    buf = io.BytesIO()
    Image.fromarray(u8, "L").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def encode_prob_png(prob: np.ndarray) -> bytes:
    """8-bit greyscale PNG of P(object): round(p * 255)."""
    return _png_bytes(prob_to_u8(prob))


def _write(path: Path, data: bytes, sync: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data, sync=sync)


def save_prob_png(prob: np.ndarray, path: Path, *, sync: bool = True) -> None:
    """Write P(object) atomically (temp file, rename). `sync=False` skips the fsyncs: the maps
    can be recomputed (a lost one reads as missing and is predicted again)."""
    _write(Path(path), encode_prob_png(prob), sync)


class ProbWriter:
    """Writes probability PNGs on one background thread (encode, temp file, fsync, rename).

    A synchronous save costs ~2 fsyncs (file and folder: several ms on this disk, more than
    the scoring of the image); here they wait for the disk while the next batch runs forward.
    `save` returns at once (blocking only when `max_pending` writes are queued); `close` (or
    leaving the with-block) waits for every write and raises OSError when any failed; `errors`
    lists (path, exception). A score row may thus name a PNG a few ms before it exists: a
    reader that finds it missing treats it like any lost prediction (re-predict).
    """

    def __init__(self, *, sync: bool = True, max_pending: int = 64):
        self.sync = sync
        self.errors: list[tuple[Path, BaseException]] = []
        self._q: queue.Queue = queue.Queue(max_pending)
        self._t = threading.Thread(target=self._run, name="prob-writer", daemon=True)
        self._t.start()
        self._closed = False

    def save(self, prob: np.ndarray, path: Path) -> None:
        if self._closed:
            raise RuntimeError("ProbWriter is closed")
        # uint8 now: a quarter of the memory in the queue, and the caller may reuse `prob`
        self._q.put((prob_to_u8(prob), Path(path)))

    def _run(self) -> None:
        while True:
            item = self._q.get()
            try:
                if item is None:
                    return
                u8, path = item
                try:
                    _write(path, _png_bytes(u8), self.sync)
                except BaseException as e:  # noqa: BLE001 - reported by close()
                    self.errors.append((path, e))
            finally:
                self._q.task_done()

    def flush(self) -> None:
        """Wait until everything queued so far is on disk."""
        self._q.join()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._q.put(None)
            self._t.join()
        if self.errors:
            path, e = self.errors[0]
            raise OSError(f"{len(self.errors)} probability map(s) not written; first: "
                          f"{path}: {e}")

    def __enter__(self) -> "ProbWriter":
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is not None:  # already failing: finish the writes, keep the first error
            try:
                self.close()
            except OSError:
                pass
            return
        self.close()


def load_prob_png(path: Path) -> np.ndarray:
    """P(object) float32 in [0, 1] (multiples of 1/255) from a stored PNG, read as
    ``read_prob_u8`` reads it (ImageError names the file)."""
    return read_prob_u8(path).astype(np.float32) / np.float32(255.0)


def load_prob(state: Path, prob_rel: str) -> np.ndarray:
    """P(object) of a score row's ``prob_path`` (relative to the state folder ``state``)."""
    return load_prob_png(Path(state) / prob_rel)


def prediction_of(prob_u8: np.ndarray) -> np.ndarray:
    """The model's prediction (bool) from an 8-bit P(object) map: P > 0.5."""
    return np.asarray(prob_u8) > PRED_CUT


def read_prob_u8(path: Path | str, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A stored P(object) map as ``(H, W) uint8`` (round(p * 255)), read through the project's
    guarded image reader: ImageError names the file (missing, damaged, a decompression bomb,
    not an 8-bit greyscale map). ``shape`` (H, W): a map of another size is resized to it
    bilinearly; None: as stored."""
    path = Path(path)
    a = read_image_raw(path)
    if a.dtype == bool:          # a 1-bit file
        a = a.astype(np.uint8) * 255
    if a.ndim != 2 or a.dtype != np.uint8:
        raise ImageError(f"{path}: not an 8-bit greyscale probability map "
                         f"({a.dtype}, {'×'.join(map(str, a.shape))})")
    if shape is not None and a.shape != tuple(shape[:2]):
        h, w = shape[:2]
        a = np.asarray(Image.fromarray(a, "L").resize((w, h), Image.BILINEAR))
    return a


def read_prediction(path: Path | str, shape: tuple[int, int] | None = None) -> np.ndarray:
    """The model's prediction as a ``(H, W) uint8`` 0/1 mask from a stored map (see
    ``read_prob_u8`` for ``shape`` and the errors)."""
    return prediction_of(read_prob_u8(path, shape)).astype(np.uint8)
