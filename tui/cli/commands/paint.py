"""``segtriage paint MASK [--image IMAGE] [--prob PROB] [--project DIR] [--renderer NAME]``:
the mask editor.

Only argparse (and the renderers' names, standard library only) at the top: the parser is
built at every start of the command line."""

from __future__ import annotations

import argparse

from ...paint.renderers import RENDERERS
from . import Command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("mask", help="the mask to edit (PNG; 0/1, 0/255 or a palette)")
    p.add_argument("--image", help="its image (default: the project's image of this mask; "
                                   "standalone: the mask itself is shown)")
    p.add_argument("--prob", help="P(object) as an 8-bit PNG (default: the project's stored "
                                  "prediction)")
    p.add_argument("--project", metavar="DIR",
                   help="the project folder (default: the nearest folder above the mask with "
                        "segtriage.toml or .segtriage/)")
    p.add_argument("--renderer", choices=RENDERERS,
                   help="how the picture reaches the terminal (default: the project's [tui] "
                        "image_renderer, halfcell outside a project)")


def renderer_name(args: argparse.Namespace, doc) -> str:
    """``--renderer``, else the project's ``[tui] image_renderer``, else half-cell."""
    if args.renderer:
        return args.renderer
    return (doc.cfg.tui.image_renderer if doc.cfg is not None else None) or "halfcell"


def run(args: argparse.Namespace) -> int:
    import sys

    from ...paint.document import DocumentError, open_document
    from ...paint.renderers import select_renderer

    try:
        doc = open_document(args.mask, image=args.image, prob=args.prob, project=args.project)
    except DocumentError as e:
        print(f"segtriage paint: {e}", file=sys.stderr)
        return 2
    try:
        renderer = select_renderer(renderer_name(args, doc))   # before the app runs: it probes
    except ValueError as e:
        print(f"segtriage paint: {e}", file=sys.stderr)
        return 2
    from ...paint.app import PaintApp
    from ...run import run_frozen

    app = PaintApp(doc, renderer=renderer)
    result = run_frozen(app)
    return result if isinstance(result, int) else (app.return_code or 0)


COMMANDS = [
    Command("paint", "edit a mask in the terminal (zoom, brush, object fixes, undo)",
            add_arguments, run),
]
