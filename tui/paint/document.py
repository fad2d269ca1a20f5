"""The painter's files: what it opens and how it saves (no Textual).

Opening: the mask (required), its image (``--image``; inside a project the image row's file;
else the mask itself is shown), P(object) (``--prob``; inside a project the current model's
stored 8-bit map of that image, engine/project/scoring/probs.py's files).

Which project: ``--project DIR``, else the nearest folder above the mask holding
segtriage.toml or a ``.segtriage/`` state folder. The mask belongs to it when the project's
state knows it as the mask of one of its images; otherwise it is edited as a plain file.

Saving inside a project: through ``engine.project.history.write_mask`` (the old content is kept as a
version first, the write is atomic, the row turns 'edited'; ``u`` in the app and
``segtriage revert`` undo it), then the image is re-scored at once from its stored
probabilities (``engine.project.scoring.rescore``: numpy only, milliseconds), so the row's
scores are current whether an engine runs or not (a running engine's watcher then finds the
score current and does nothing more).

Saving a plain file (outside a project): the first save of a session keeps the file as it was
opened next to it as ``NAME.orig-<n>.SUFFIX`` (n: the first number not taken), then the new
mask replaces the file atomically (temp file + os.replace), keeping its convention (0/1,
0/255, palette). Later saves of the same session replace it again (the session's undo covers
them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

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
    cfg: object = None
    image_id: int | None = None
    note: str = ""                   # shown once at start (e.g. why not a project mask)
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
        return self._save_plain(m)

    def _save_project(self, m: np.ndarray) -> str:
        from ...engine.project import history
        from ...engine.project.backup import BackupError
        from ...engine.project.imageio import MaskError
        from ...engine.project.project import Project
        from ...engine.project.scoring import rescore

        project = Project.open(self.root, cfg=self.cfg, create=False)
        try:
            row = project.store.image(self.image_id)
            if row is None:
                raise DocumentError(f"{self.name}: its image is no longer in the project "
                                    f"{self.root}")
            try:  # re-scores it from its stored prediction too
                history.write_mask(project, row, m, source="editor")
            except (BackupError, MaskError, OSError) as e:
                raise DocumentError(f"{self.name}: not saved: {e}") from None
            scored = rescore.rescore_image(project, self.image_id)  # True: it is current
        finally:
            project.close()
        return (f"saved {self.name} (a new version; u in the app undoes it)"
                + ("; re-scored" if scored else "; scored at the next prediction"))

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


def find_project(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` with segtriage.toml or .segtriage/."""
    start = start.resolve()
    for d in (start, *start.parents):
        if any((d / m).exists() for m in STATE_MARKERS):
            return d
    return None


def _read_prob(path: Path, shape) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("L")
            if im.size != (shape[1], shape[0]):
                raise DocumentError(f"{path}: the probability map is {im.size[0]}×{im.size[1]}"
                                    f" but the mask is {shape[1]}×{shape[0]}")
            return np.asarray(im).copy()
    except FileNotFoundError:
        raise DocumentError(f"{path}: no such file") from None
    except OSError as e:
        raise DocumentError(f"{path}: cannot read the probability map: {e}") from None


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
    cfg, row, prob_rel, note = None, None, None, ""
    if root is not None:
        try:
            cfg = load_config(root)
        except ConfigError as e:
            raise DocumentError(str(e)) from None
        db = cfg.state_path(root) / "state.db"
        try:
            rel = mask.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            rel = None
        if rel is None:
            note = f"not inside the project {root}: saved as a plain file"
        elif not db.exists():
            note = f"{root} has no project state yet: saved as a plain file"
        else:
            from ...engine.store import Store

            store = Store(db, create=False)
            try:
                row = store.image_by_mask(rel)
                if row is not None:
                    sc = store.score(row.id)
                    prob_rel = sc.prob_path if sc else None
            finally:
                store.close()
            if row is None:
                note = f"not a mask of the project {root}: saved as a plain file"
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
    if prob is not None:
        prob_path = Path(prob)
    elif prob_rel and cfg is not None:
        p = cfg.state_path(root) / prob_rel
        prob_path = p if p.exists() else None
    if prob_path is not None:
        prob_arr = _read_prob(prob_path, m.shape)
    return Document(mask_path=mask, image=picture, mask=m, prob=prob_arr, image_path=img_path,
                    prob_path=prob_path, root=root if row is not None else None, cfg=cfg,
                    image_id=row.id if row is not None else None, note=note)
