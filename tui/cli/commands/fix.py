"""`segtriage fix DIR IMAGE...`: the editor's object operations on the command line.

Operations run in this fixed order, whatever the order of the options: --drop-unseen,
--add-predicted, --fill-holes, --grow N, --shrink N (grow then shrink is a closing). Each
mask is written through the engine's mask history (source "editor"), so `segtriage revert`
and the app's u undo it. Only argparse is imported at the top: the parser is built at every
start of `segtriage`.
"""

from __future__ import annotations

import argparse

from ..common import folder, image_paths, open_project
from ..output import err
from . import Command

ORDER = ("drop_unseen", "add_predicted", "fill_holes", "grow", "shrink")


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of pixels: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 pixel, got {n}")
    return n


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", help="data folder")
    p.add_argument("images", nargs="+", help="images or their masks, from here or DIR")
    p.add_argument("--drop-unseen", action="store_true",
                   help="remove every mask object the model's prediction does not touch")
    p.add_argument("--add-predicted", action="store_true",
                   help="add every predicted object the mask has nothing of")
    p.add_argument("--fill-holes", action="store_true", help="fill the holes of every object")
    p.add_argument("--grow", type=_count, metavar="N", help="grow every object by N pixels")
    p.add_argument("--shrink", type=_count, metavar="N",
                   help="shrink every object by N pixels")
    p.add_argument("--dry-run", action="store_true", help="say what would change, write nothing")


def fix_mask(mask, pred, *, drop_unseen=False, add_predicted=False, fill_holes=False,
             grow=None, shrink=None):
    """The operations on one mask, in ORDER. ``pred`` may be None when no operation that
    needs it is asked for."""
    from ...paint import ops

    m = ops.as_mask(mask)
    if drop_unseen:
        m = ops.drop_unseen(m, pred)
    if add_predicted:
        m = ops.add_unseen_predicted(m, pred)
    if fill_holes:
        m = ops.fill_holes(m)
    if grow or shrink:  # one go: grow then shrink gives an object cut by the frame back
        m = ops.grow_shrink(m, [grow or 0, -(shrink or 0)])
    return m


def run(a) -> int:
    import sys

    from ....engine.project import history
    from ....engine.project.backup import BackupError
    from ....engine.project.imageio import ImageError, MaskError
    from ....engine.project.scoring.objects import label
    from ....engine.project.scoring.rescore import read_current_mask
    from ....engine.project.review import ReviewError, prediction_mask

    wanted = dict(drop_unseen=a.drop_unseen, add_predicted=a.add_predicted,
                  fill_holes=a.fill_holes, grow=a.grow, shrink=a.shrink)
    if not any(wanted.values()):
        return err("fix: nothing to do: give at least one of --drop-unseen, "
                   "--add-predicted, --fill-holes, --grow N, --shrink N")
    needs_pred = a.drop_unseen or a.add_predicted
    root = folder(a.dir)
    project = open_project(root, create=False)
    store = project.store
    rows = {r.path: r for r in store.images()}
    failed = 0

    def fail(p: str, why: str) -> None:
        nonlocal failed
        failed += 1
        print(f"segtriage: {p}: left as it is: {why}", file=sys.stderr)

    for p in image_paths(root, store, a.images, a.dir):
        row = rows[p]
        if not row.mask_path:
            fail(p, "it has no mask yet (`segtriage use-prediction` or the editor makes one)")
            continue
        if row.error:
            fail(p, f"its mask is unusable: {row.error}")
            continue
        try:
            mask = read_current_mask(project, row).astype(bool)
        except (MaskError, ImageError, OSError) as e:
            fail(p, f"its mask is unusable: {e}")
            continue
        pred = None
        if needs_pred:
            try:  # the current model's, of the image as it is now
                pred = prediction_mask(project, row).astype(bool)
            except ReviewError as e:
                fail(p, str(e))
                continue
        new = fix_mask(mask, pred, **wanted)
        added, removed = int((new & ~mask).sum()), int((mask & ~new).sum())
        n0, n1 = label(mask)[1], label(new)[1]
        change = f"+{added} -{removed} pixels, objects {n0} -> {n1}"
        if not added and not removed:
            fail(p, "no change (" + change + ")")
            continue
        if a.dry_run:
            print(f"{p}: would change: {change}")
            continue
        try:
            history.write_mask(project, row, new.astype("uint8"), source="editor")
        except (BackupError, MaskError, OSError, ValueError) as e:
            fail(p, f"cannot write the mask: {e}")
            continue
        print(f"{p}: {change} (`segtriage revert {a.dir} {p}` undoes)")
    return 1 if failed else 0


COMMANDS = [
    Command("fix", "fix masks headless: drop unseen, add predicted, fill holes, grow/shrink",
            add_arguments, run),
]
