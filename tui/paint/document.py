"""The painter's files: what it opens and how it saves (no Textual).

Opening: the mask (required), its image (``--image``; inside a project the image row's file;
else the mask itself is shown), P(object) (``--prob``; inside a project the current model's
stored 8-bit map of the image as it is now, engine/project/scoring/probs.py's files; one of
another size than the mask is left out and ``note`` says why).

Which project: ``--project DIR``, else the nearest folder above the mask holding
segtriage.toml or a ``.segtriage/`` state folder. The mask belongs to it when the project's
state knows it as the mask of one of its images. A mask inside a project's folder that the
project does not know yet (or a folder with no state yet) can be looked at and painted, but
not saved: a plain save would write outside the mask history and leave a copy of the old file
in the data folder that the next scan takes for an image; the message says to scan first.

Saving inside a project: through ``engine.project.history.write_mask`` (the old content is kept as a
version first, the write is atomic, the row turns 'edited'; ``u`` in the app and
``segtriage revert`` undo it), then the image is re-scored at once from its stored
probabilities (``engine.project.scoring.rescore``: numpy only, milliseconds), so the row's
scores are current whether an engine runs or not (a running engine's watcher then finds the
score current and does nothing more).

Saving a plain file (outside any project's folder): the first save of a session keeps the file as it was
opened next to it as ``NAME.orig-<n>.SUFFIX`` (n: the first number not taken), then the new
mask replaces the file atomically (temp file + os.replace), keeping its convention (0/1,
0/255, palette). Later saves of the same session replace it again (the session's undo covers
them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ...engine.project.config import Config

STATE_MARKERS = ("segtriage.toml", ".segtriage")


class DocumentError(RuntimeError):
    """A file the painter cannot use; the message names the file."""


@dataclass
class Document:
    mask_path: Path
    image: np.ndarray
    mask: np.ndarray                 # bool
    prob: np.ndarray | None = None   # uint8 P(object) × 255
    image_path: Path | None = None
    prob_path: Path | None = None
    root: Path | None = None         # the project, when the mask is one of its masks
    cfg: Config | None = None         # the project's config (None: a plain file)
    image_id: int | None = None
    note: str = ""                   # shown once at start (e.g. why not a project mask)
    refused: str = ""                # why a save is refused (a mask the project does not know)
    _backed_up: bool = field(default=False, repr=False)

    @property
    def in_project(self) -> bool:
        return self.image_id is not None

    @property
    def name(self) -> str:
        if self.root is not None:
            try:
                return self.mask_path.resolve().relative_to(self.root.resolve()).as_posix()
            except ValueError:
                pass
        return str(self.mask_path)

    # -- saving ----------------------------------------------------------------------------
    def save(self, mask: np.ndarray) -> str:
        """Write ``mask``; returns a message for the status line. Raises DocumentError."""
        m = (np.asarray(mask) > 0).astype(np.uint8)
        if self.in_project:
            return self._save_project(m)
        if self.refused:
            raise DocumentError(self.refused)
        return self._save_plain(m)

    def _save_project(self, m: np.ndarray) -> str:
        """Every failure is a DocumentError naming the file (the app shows it and keeps the
        edits); one after the mask was written says so: "saved, not re-scored"."""
        from ...engine.project import history
        from ...engine.project.scoring import rescore

        project = _open_project(self.root, self.cfg, f"{self.name}: not saved: ")
        try:
            try:
                row = project.store.image(self.image_id)
            except Exception as e:  # noqa: BLE001 - a damaged state (sqlite3.Error, ...)
                raise DocumentError(f"{self.name}: not saved: cannot read the project state "
                                    f"of {self.root}: {_text(e)}") from None
            if row is None:
                raise DocumentError(f"{self.name}: not saved: its image is no longer in the "
                                    f"project {self.root}")
            try:  # writes the mask, then re-scores it from its stored prediction
                history.write_mask(project, row, m, source="editor")
            except Exception as e:  # noqa: BLE001 - a save must never lose the edits to a crash
                if self._holds(m):
                    raise DocumentError(f"{self.name}: saved, not re-scored: {_text(e)}"
                                        ) from None
                raise DocumentError(f"{self.name}: not saved: {_text(e)}") from None
            try:
                scored = rescore.rescore_image(project, self.image_id)  # True: it is current
            except Exception as e:  # noqa: BLE001 - the mask is saved: say so, and why not scored
                raise DocumentError(f"{self.name}: saved, not re-scored: {_text(e)}") from None
        finally:
            project.close()
        return (f"saved {self.name} (a new version: undo in the app brings the old one back)"
                + ("; re-scored" if scored else "; scored at the next prediction"))

    def _holds(self, m: np.ndarray) -> bool:
        """Whether the mask file now holds ``m`` (a failure after the write, or before it)."""
        from ...engine.project import imageio

        try:
            codes = self.cfg.project.codes
            return bool(np.array_equal(imageio.read_mask(self.mask_path, codes) > 0, m > 0))
        except Exception:  # noqa: BLE001 - unreadable: not what was meant to be saved
            return False

    def _save_plain(self, m: np.ndarray) -> str:
        import shutil

        from ...engine.project.imageio import write_mask

        path = self.mask_path
        kept = ""
        if not self._backed_up and path.exists():
            n = 1
            while (orig := path.with_name(f"{path.stem}.orig-{n}{path.suffix}")).exists():
                n += 1
            try:
                shutil.copy2(path, orig)
            except OSError as e:
                raise DocumentError(f"{path}: not saved: cannot keep the old file as {orig}: "
                                    f"{e}") from None
            self._backed_up = True
            kept = f" (the old one kept as {orig.name})"
        try:
            write_mask(path, m, like=path if path.exists() else None, n_codes=2)
        except (OSError, ValueError) as e:
            raise DocumentError(f"{path}: not saved: {e}") from None
        return f"saved {path}{kept}"


def _text(e: BaseException) -> str:
    return str(e) or type(e).__name__


def _open_project(root: Path, cfg, prefix: str = ""):
    """The project of ``root`` (its state must exist); DocumentError when its state cannot be
    opened (missing, damaged, unreadable)."""
    import sqlite3

    from ...engine.project.project import Project
    from ...engine.store import StoreError

    try:
        return Project.open(root, cfg=cfg, create=False)
    except (StoreError, OSError, sqlite3.Error) as e:
        raise DocumentError(f"{prefix}cannot open the project state of {root}: {_text(e)}"
                            ) from None


def find_project(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` with segtriage.toml or .segtriage/."""
    start = start.resolve()
    for d in (start, *start.parents):
        if any((d / m).exists() for m in STATE_MARKERS):
            return d
    return None


def _read_prob(path: Path, shape) -> np.ndarray:
    """P(object) × 255 of ``path`` through the project's guarded reader; a map of another
    size than ``shape`` is a DocumentError (a painted mask is never resized)."""
    from ...engine.project.imageio import ImageError
    from ...engine.project.scoring.probs import read_prob_u8

    if not path.exists():
        raise DocumentError(f"{path}: no such file")
    try:
        a = read_prob_u8(path)
    except ImageError as e:
        raise DocumentError(f"cannot read the probability map: {e}") from None
    if a.shape != tuple(shape[:2]):
        raise DocumentError(f"{path}: the probability map is {a.shape[1]}×{a.shape[0]}"
                            f" but the mask is {shape[1]}×{shape[0]}")
    return a


def _project_state(root: Path, cfg, rel: str, shown: str) -> tuple:
    """(image row or None, the current prediction's map path or None, note, why a save is
    refused) of the mask ``rel`` in the project of ``root``."""
    from ...engine.project.scoring.current import NoPrediction, prediction_for

    refused = (f"{shown} is not in the project {root} yet: run `segtriage scan {root}` "
               "first (not saved)")
    if not (cfg.state_path(root) / "state.db").exists():
        return None, None, f"{root} has no project state yet: saving is refused", refused
    project = _open_project(root, cfg)
    try:
        try:
            row = project.store.image_by_mask(rel)
            if row is None:
                return (None, None, f"not a mask of the project {root} yet: saving is refused",
                        refused)
            try:
                return row, prediction_for(project, row).path, "", ""
            except NoPrediction as e:
                return row, None, str(e), ""
        except Exception as e:  # noqa: BLE001 - a damaged state (sqlite3.Error, ...)
            raise DocumentError(f"cannot open the project state of {root}: {_text(e)}"
                                ) from None
    finally:
        project.close()


def open_document(mask: Path | str, image: Path | str | None = None,
                  prob: Path | str | None = None, project: Path | str | None = None
                  ) -> Document:
    """Read what the painter shows; DocumentError names the file that is missing or bad."""
    from ...engine.project import imageio
    from ...engine.project.config import ConfigError, default_config, load_config

    mask = Path(mask)
    if not mask.is_file():
        raise DocumentError(f"{mask}: no such file" if not mask.exists() else
                            f"{mask}: not a file")
    root = Path(project) if project is not None else find_project(mask.parent)
    if project is not None and not root.is_dir():
        raise DocumentError(f"{root}: not a folder (--project)")
    cfg, row, stored_prob, note, refused = None, None, None, "", ""
    if root is not None:
        try:
            cfg = load_config(root)
        except ConfigError as e:
            raise DocumentError(str(e)) from None
        rel = _inside(mask, root)
        if rel is None:
            note = f"not inside the project {root}: saved as a plain file"
        else:
            shown = (_inside(Path(image), root) if image is not None else None) or rel
            row, stored_prob, note, refused = _project_state(root, cfg, rel, shown)
    codes = cfg.project.codes if cfg is not None else default_config().project.codes
    img_path = Path(image) if image is not None else (
        root / row.path if row is not None else None)
    picture = None
    if img_path is not None:
        if not img_path.exists():
            raise DocumentError(f"{img_path}: no such file")
        try:
            picture = imageio.read_image(img_path)
        except (imageio.ImageError, OSError) as e:
            raise DocumentError(str(e) if str(img_path) in str(e) else f"{img_path}: {e}") \
                from None
    try:
        idx = imageio.read_mask(mask, codes, expect_shape=None if picture is None
                                else picture.shape[:2])
    except (imageio.MaskError, OSError) as e:
        raise DocumentError(str(e) if str(mask) in str(e) else f"{mask}: {e}") from None
    m = idx > 0
    if picture is None:
        picture = np.where(m, 160, 40).astype(np.uint8)
    prob_arr = prob_path = None
    if prob is not None:                 # asked for: a problem with it is an error
        prob_path = Path(prob)
        prob_arr = _read_prob(prob_path, m.shape)
    elif stored_prob is not None and stored_prob.exists():
        try:                             # the project's: opened without it, and why
            prob_arr, prob_path = _read_prob(stored_prob, m.shape), stored_prob
        except DocumentError as e:
            note = f"the prediction is not shown: {e}"
    return Document(mask_path=mask, image=picture, mask=m, prob=prob_arr, image_path=img_path,
                    prob_path=prob_path, root=root if row is not None else None, cfg=cfg,
                    image_id=row.id if row is not None else None, note=note,
                    refused=refused)


def _inside(path: Path, root: Path) -> str | None:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None
