"""Finding image/mask pairs in a data folder.

Two layouts (``cfg.layout.kind``; ``auto`` picks *split* when the folder has both
``images_dir`` and ``masks_dir``, else *seed*):

* seed:  ``NAME.EXT`` beside ``NAME{mask_suffix}.EXT`` (the mask may use another extension);
* split: ``images/REL/NAME.EXT`` and ``masks/REL/NAME.EXT`` (any extension on either side).

Both nest in sub-folders. A pair is identified by its *key*: the image path without extension
(seed: ``dir/NAME``; split: ``REL/NAME`` below the images folder). In the split layout only the
two folders are walked; other files at the top are not part of the data set.

Ignored: hidden files and folders, the state folder, editor temp/backup files and
``cfg.layout.ignore`` globs (a glob without ``/`` matches any single name, one with ``/`` the
relative path). Folder symlinks are followed only when they lead outside the data folder and
not to a folder already walked, so loops and duplicates are reported instead of walked.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from PIL import Image

from .imageio import LOSSY_EXTENSIONS

# editor swap/backup/temp files: vim (*~, .*.swp, 4913 probe), emacs (.#*, #*#), generic
EDITOR_GLOBS = ("*~", ".*.sw?", "*.swp", ".#*", "#*#", "4913", "*.tmp")


@dataclass(frozen=True)
class Pair:
    image: str                 # posix path relative to the data folder
    mask: str | None           # idem, None when the image has no mask yet
    mask_target: str           # where a mask for this image is (or would be) written


@dataclass
class Discovery:
    kind: str                                   # 'seed' | 'split'
    pairs: list[Pair] = field(default_factory=list)
    orphan_masks: list[str] = field(default_factory=list)
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (path, kind, message)
    # orphan mask → [(its image on disk, why the image is not part of the data set)]: an
    # orphan is most often a mask whose image [layout] extensions or ignore leave out
    excluded_images: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


# -- ignoring ------------------------------------------------------------------------------

class _Ignorer:
    def __init__(self, state_dir: str, ignore: tuple[str, ...]):
        name_globs = list(EDITOR_GLOBS)
        path_globs = []
        for g in ignore:
            g = g.strip().strip("/")
            if g:
                (path_globs if "/" in g else name_globs).append(g)
        self.name_re = re.compile("|".join(fnmatch.translate(g) for g in name_globs))
        self.path_re = (re.compile("|".join(fnmatch.translate(g) for g in path_globs))
                        if path_globs else None)
        sd = state_dir.replace(os.sep, "/").strip("/")
        self.state_rel = None if os.path.isabs(state_dir) else (sd or None)
        self.state_abs = os.path.realpath(state_dir) if os.path.isabs(state_dir) else None

    def name(self, name: str) -> bool:
        return name.startswith(".") or self.name_re.match(name) is not None

    def path(self, rel: str) -> bool:
        if self.state_rel is not None and rel == self.state_rel:
            return True
        return self.path_re is not None and self.path_re.match(rel) is not None

    def entry(self, name: str, rel: str) -> bool:
        return self.name(name) or self.path(rel)


@lru_cache(maxsize=16)
def _ignorer_for(state_dir: str, ignore: tuple[str, ...]) -> _Ignorer:
    return _Ignorer(state_dir, ignore)


def _ignorer(cfg) -> _Ignorer:
    return _ignorer_for(str(cfg.project.state_dir), tuple(cfg.layout.ignore))


def norm_rel(relpath: str | os.PathLike) -> str:
    rel = str(relpath).replace(os.sep, "/")
    while rel.startswith("./"):
        rel = rel[2:]
    return rel.strip("/")


def is_ignored(relpath: str | os.PathLike, cfg) -> bool:
    """True when the file (or any folder above it) is not part of the data set."""
    rel = norm_rel(relpath)
    ign = _ignorer(cfg)
    parts = rel.split("/")
    for i, name in enumerate(parts):
        if ign.entry(name, "/".join(parts[: i + 1])):
            return True
    return False


def why_ignored(relpath: str | os.PathLike, cfg) -> str | None:
    """Why is_ignored holds for a path, as words that name the setting (``excluded by
    [layout] ignore ("img/a/*.jpg")``), or None when it does not."""
    rel = norm_rel(relpath)
    ign = _ignorer(cfg)
    globs = [g for g in (g.strip().strip("/") for g in cfg.layout.ignore) if g]
    parts = rel.split("/")
    for i, name in enumerate(parts):
        sub = "/".join(parts[: i + 1])
        on = "" if i == len(parts) - 1 else f" on its folder {sub}"
        # as _Ignorer: a glob with "/" matches the relative path, one without a single name
        glob = next((g for g in globs if fnmatch.fnmatchcase(sub if "/" in g else name, g)),
                    None)
        if glob is not None:
            return f'excluded by [layout] ignore ("{glob}"){on}'
        if ign.path(sub):
            return f"inside the state folder ([project] state_dir){on}"
        if name.startswith("."):
            return f"hidden (a name starting with '.'){on}"
        if ign.name(name):
            return f"named like an editor temp or backup file{on}"
    return None


# -- classifying one path --------------------------------------------------------------------

def detect_kind(root: Path | str, cfg, known: str | None = None) -> str:
    """``[layout] kind``, or for ``auto`` what the folder looks like. ``known``: the kind the
    project was indexed as; a split project whose masks folder is gone for a moment (an
    unmounted disk, a rename) stays split rather than turning every image maskless."""
    kind = cfg.layout.kind
    if kind in ("seed", "split"):
        return kind
    root = Path(root)
    if (root / cfg.layout.images_dir).is_dir() and (
            known == "split" or (root / cfg.layout.masks_dir).is_dir()):
        return "split"
    return "seed"


def _split_ext(name: str) -> tuple[str, str]:
    stem, ext = os.path.splitext(name)
    return stem, ext


def classify(relpath: str | os.PathLike, cfg, kind: str) -> tuple[str | None, str]:
    """``('image' | 'mask' | None, key)`` for one path; an image and its mask share the key."""
    if kind not in ("seed", "split"):
        raise ValueError(f"classify needs a resolved layout kind, got {kind!r}")
    rel = norm_rel(relpath)
    if not rel or is_ignored(rel, cfg):
        return None, ""
    d, _, name = rel.rpartition("/")
    stem, ext = _split_ext(name)
    if not stem or ext.lower() not in cfg.layout.extensions:
        return None, ""
    if kind == "seed":
        suffix = cfg.layout.mask_suffix
        if suffix and stem.endswith(suffix):
            base = stem[: -len(suffix)]
            return "mask", f"{d}/{base}" if d else base
        return "image", f"{d}/{stem}" if d else stem
    for role, top in (("image", cfg.layout.images_dir), ("mask", cfg.layout.masks_dir)):
        top = norm_rel(top)
        if rel.startswith(top + "/"):
            key = rel[len(top) + 1:]
            return role, key[: len(key) - len(ext)]
    return None, ""


# -- walking -----------------------------------------------------------------------------

def is_within(child: str, parent: str) -> bool:
    return child == parent or child.startswith(parent.rstrip("/") + "/")


def _safe_name(name: str) -> str | None:
    """The name as printable text, or None when it is valid UTF-8 (the normal case)."""
    try:
        name.encode("utf-8")
        return None
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "backslashreplace")


def _walk(root: str, start: str, ign: _Ignorer, problems: list, *, recursive: bool = True):
    """Yield ``(rel_dir, [file names])`` for each folder below ``root/start``, sorted."""
    root_real = os.path.realpath(root)
    seen: set[str] = set()
    stack = [start]
    while stack:
        rel = stack.pop()
        absd = os.path.join(root, rel) if rel else root
        real = os.path.realpath(absd)
        if real in seen:
            continue
        seen.add(real)
        try:
            with os.scandir(absd) as it:
                entries = list(it)
        except OSError as e:
            problems.append((rel or ".", "unreadable", f"cannot list folder: {e.strerror or e}"))
            continue
        files, subdirs = [], []
        for e in entries:
            name = e.name
            relp = f"{rel}/{name}" if rel else name
            shown = _safe_name(name)
            if shown is not None:
                shown_rel = f"{rel}/{shown}" if rel else shown
                problems.append((shown_rel, "bad-name",
                                 "file name is not valid UTF-8; rename it to be indexed"))
                continue
            if ign.entry(name, relp):
                continue
            try:
                if e.is_dir():  # follows symlinks
                    if not recursive:
                        continue
                    if ign.state_abs and os.path.realpath(e.path) == ign.state_abs:
                        continue
                    if e.is_symlink():
                        target = os.path.realpath(e.path)
                        if is_within(root_real, target) or is_within(real, target) or \
                                target in seen:
                            problems.append((relp, "symlink-loop",
                                             "symbolic link to a folder above it (a loop); "
                                             "skipped"))
                            continue
                        if is_within(target, root_real):
                            problems.append((relp, "symlink-duplicate",
                                             "symbolic link to a folder inside the data "
                                             f"folder ({os.path.relpath(target, root_real)});"
                                             " skipped, its files are indexed there"))
                            continue
                    subdirs.append(relp)
                elif e.is_file():
                    files.append(name)
                elif e.is_symlink():
                    problems.append((relp, "broken-link", "symbolic link to nothing; skipped"))
            except OSError as err:
                problems.append((relp, "unreadable", f"cannot stat: {err.strerror or err}"))
        files.sort()
        yield rel, files
        stack.extend(sorted(subdirs, reverse=True))


# -- pairing -------------------------------------------------------------------------------

def _ext(p: str) -> str:
    return os.path.splitext(p)[1]


def _default_mask_ext(mask_paths) -> str:
    """Extension new masks get when nothing better is known: the most common lossless mask
    extension in the folder, else .png."""
    c = Counter(_ext(m).lower() for m in mask_paths if _ext(m).lower() not in LOSSY_EXTENSIONS)
    if not c:
        return ".png"
    best = max(c.values())
    return min(e for e, n in c.items() if n == best)


def _mask_target(image: str, key: str, kind: str, cfg, default_ext: str) -> str:
    if kind == "seed":
        ext = _ext(image)
        if ext.lower() in LOSSY_EXTENSIONS:  # a JPEG mask would not keep class values
            ext = default_ext
        return f"{key}{cfg.layout.mask_suffix}{ext}"
    return f"{norm_rel(cfg.layout.masks_dir)}/{key}{default_ext}"


def _pair(images: dict[str, list[str]], masks: dict[str, list[str]], kind: str, cfg,
          disc: Discovery) -> None:
    default_ext = _default_mask_ext(m for ms in masks.values() for m in ms)
    for key in sorted(images):
        imgs = sorted(images[key])
        ms = sorted(masks.get(key, ()))
        mask_exts = {_ext(m).lower() for m in ms}
        owner = next((i for i in imgs if _ext(i).lower() in mask_exts), imgs[0])
        mask = next((m for m in ms if _ext(m).lower() == _ext(owner).lower()), ms[0]) \
            if ms else None
        target = mask or _mask_target(owner, key, kind, cfg, default_ext)
        disc.pairs.append(Pair(owner, mask, target))
        for m in ms:
            if m != mask:
                disc.problems.append((m, "duplicate-mask",
                                      f"a second mask for image {owner} (using {mask}); "
                                      "this one is ignored"))
        for i in imgs:
            if i != owner:
                disc.pairs.append(Pair(i, None, target))
                disc.problems.append((i, "duplicate-name",
                                      f"same name as image {owner}, which owns the mask "
                                      f"{target}; rename one of them"))
    for key in sorted(set(masks) - set(images)):
        disc.orphan_masks.extend(sorted(masks[key]))
    disc.pairs.sort(key=lambda p: p.image)


def _collect(root: str, cfg, kind: str, starts: list[str], disc: Discovery,
             key_filter: str | None = None, recursive: bool = True):
    """Image and mask paths by key, from the folders ``starts`` (relative to root)."""
    images: dict[str, list[str]] = {}
    masks: dict[str, list[str]] = {}
    ign = _ignorer(cfg)
    exts = set(cfg.layout.extensions)
    suffix = cfg.layout.mask_suffix
    tops = {norm_rel(cfg.layout.images_dir): images, norm_rel(cfg.layout.masks_dir): masks}
    for start in starts:
        if kind == "split":  # the role comes from the top folder the walk started in
            top = next(t for t in tops if is_within(start, t))
            into, cut = tops[top], len(top) + 1
        for rel_dir, names in _walk(root, start, ign, disc.problems, recursive=recursive):
            for name in names:
                stem, ext = os.path.splitext(name)
                if not stem or ext.lower() not in exts:
                    continue
                relp = f"{rel_dir}/{name}" if rel_dir else name
                if kind == "split":
                    key, bucket = relp[cut: len(relp) - len(ext)], into
                elif suffix and stem.endswith(suffix):
                    base = stem[: -len(suffix)]
                    key, bucket = (f"{rel_dir}/{base}" if rel_dir else base), masks
                else:
                    key, bucket = (f"{rel_dir}/{stem}" if rel_dir else stem), images
                if key_filter is None or key == key_filter:
                    bucket.setdefault(key, []).append(relp)
    return images, masks


@lru_cache(maxsize=1)
def _pil_extensions() -> frozenset[str]:
    return frozenset(Image.registered_extensions())  # its init() registers every plugin once


def _image_like(ext: str, cfg) -> bool:
    return ext in cfg.layout.extensions or ext in _pil_extensions()


def _explain_orphans(root: str, cfg, kind: str, disc: Discovery) -> None:
    """Fill ``disc.excluded_images``: for each orphan mask, the files on disk that would be its
    image but are left out by the config (a mask of im04.jpg is an orphan under
    ``extensions = [".png"]`` or ``ignore = ["*.jpg"]``, and "no image" would be untrue)."""
    listed: dict[str, list[str]] = {}
    suffix = cfg.layout.mask_suffix
    for mask in disc.orphan_masks:
        _role, key = classify(mask, cfg, kind)
        d, _, base = key.rpartition("/")
        if kind == "split":
            d = f"{norm_rel(cfg.layout.images_dir)}/{d}" if d else norm_rel(cfg.layout.images_dir)
        if d not in listed:
            try:
                listed[d] = sorted(os.listdir(os.path.join(root, d) if d else root))
            except OSError:
                listed[d] = []
        found = []
        for name in listed[d]:
            stem, ext = _split_ext(name)
            if stem != base or (kind == "seed" and suffix and stem.endswith(suffix)) or \
                    not _image_like(ext.lower(), cfg):  # im04.json beside it is no image
                continue
            rel = f"{d}/{name}" if d else name
            if not os.path.isfile(os.path.join(root, rel)):
                continue
            why = why_ignored(rel, cfg)
            if why is None and ext.lower() not in cfg.layout.extensions:
                why = f'excluded by [layout] extensions ("{ext}" is not listed)'
            found.append((rel, why or "not indexed (see the other problems)"))
        if found:
            disc.excluded_images[mask] = found


def orphan_problem(cfg, disc: Discovery, mask: str) -> tuple[str, str, str]:
    """The (path, 'orphan-mask', message) problem of one of ``disc.orphan_masks``: where its
    image would be, or which setting leaves out the image that is there."""
    excluded = disc.excluded_images.get(mask)
    if excluded:
        msg = "; ".join(f"{img} is {why}" for img, why in excluded)
        return (mask, "orphan-mask", f"mask without an indexed image: its image {msg}")
    _role, key = classify(mask, cfg, disc.kind)
    if disc.kind == "seed":
        where = f"no image {key}.* beside it"
    else:
        where = f"no image {norm_rel(cfg.layout.images_dir)}/{key}.*"
    return (mask, "orphan-mask", f"mask without an image ({where})")


def discover(root: Path | str, cfg, known: str | None = None) -> Discovery:
    """Every image/mask pair under ``root``: sorted, deterministic, never following loops.
    ``known`` as in detect_kind."""
    root_s = os.fspath(root)
    kind = detect_kind(root_s, cfg, known)
    disc = Discovery(kind)
    if kind == "seed":
        starts = [""]
    else:
        starts = [norm_rel(cfg.layout.images_dir), norm_rel(cfg.layout.masks_dir)]
        for s in starts:
            if not os.path.isdir(os.path.join(root_s, s)):
                disc.problems.append((s, "missing-folder",
                                      "split layout, but this folder does not exist"))
        starts = [s for s in starts if os.path.isdir(os.path.join(root_s, s))]
    images, masks = _collect(root_s, cfg, kind, starts, disc)
    _pair(images, masks, kind, cfg, disc)
    _explain_orphans(root_s, cfg, kind, disc)
    disc.problems.sort()
    return disc


def discover_one(root: Path | str, cfg, relpath: str, kind: str | None = None) -> Discovery:
    """Discovery restricted to the pair group that ``relpath`` (an image or a mask) belongs
    to, reading only its folder(s). Empty when the path is ignored or not image-like."""
    root_s = os.fspath(root)
    kind = kind or detect_kind(root_s, cfg)
    disc = Discovery(kind)
    role, key = classify(relpath, cfg, kind)
    if role is None:
        return disc
    d = key.rpartition("/")[0]
    if kind == "seed":
        starts = [d]
    else:
        starts = [f"{norm_rel(t)}/{d}" if d else norm_rel(t)
                  for t in (cfg.layout.images_dir, cfg.layout.masks_dir)]
    starts = [s for s in starts if os.path.isdir(os.path.join(root_s, s) if s else root_s)]
    scratch = Discovery(kind)  # folder-level problems belong to the full scan
    images, masks = _collect(root_s, cfg, kind, starts, scratch, key_filter=key,
                             recursive=False)
    _pair(images, masks, kind, cfg, disc)
    _explain_orphans(root_s, cfg, kind, disc)
    return disc
