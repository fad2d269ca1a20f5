"""How the viewer's frames reach the terminal: ``select_renderer(name)`` → ``Renderer``.

Half-cell blocks are the default (every terminal, tmux, SSH, 256 colours): drawn by the viewer
itself (scene.py), because importing textual-image's renderables probes the terminal for Sixel
and Kitty support first, which costs 0.3 s of every start inside tmux (two 0.1 s time-outs).
Kitty (TGP), Sixel, "auto" and textual-image's unicode renderer are opt-in; for those
``select_renderer`` imports textual-image, and it must run before ``App.run()`` (the probe
reads the terminal's answers). With textual-image 0.12 (Python 3.11), "auto" inside tmux finds
no graphics protocol and falls back to half-cell.

Shared by the painter (``segtriage paint --renderer``) and the review app's preview. Nothing
but the standard library at import time: the command line's parser reads ``RENDERERS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

RENDERERS = ("halfcell", "auto", "kitty", "sixel", "unicode")


@dataclass(frozen=True)
class Renderer:
    name: str
    strips: Callable | None = None  # picture (PIL) → terminal lines (unicode)
    widget: Any = None              # textual-image widget class (kitty, sixel, auto)
    cell_px: tuple[int, int] = (1, 2)  # picture pixels per cell (half-cell: 1 wide, 2 high)


def _renderable_strips(renderable_cls: Any) -> Callable:
    """Lines from a textual-image rich renderable (the unicode one), rendered off-screen."""
    def strips(picture) -> list:
        import io

        from rich.console import Console
        from rich.segment import Segment
        from textual.strip import Strip

        w, h = picture.width, max(1, picture.height // 2)
        console = Console(file=io.StringIO(), width=w, height=h, color_system="truecolor",
                          legacy_windows=False, force_terminal=True)
        lines = Segment.split_and_crop_lines(
            console.render(renderable_cls(picture, width=w, height=h),
                           console.options.update(width=w, height=h)),
            w, pad=True, include_new_lines=False)
        return [Strip(line, w) for line in list(lines)[:h]]
    return strips


def select_renderer(name: str | None) -> Renderer:
    """The renderer called ``name`` (None: half-cell); textual-image (and its terminal probe)
    only when asked for. ValueError for a name not in ``RENDERERS``."""
    name = name or "halfcell"
    if name not in RENDERERS:
        raise ValueError(f"unknown image renderer {name!r}; one of {', '.join(RENDERERS)}")
    if name == "halfcell":
        return Renderer(name)
    if name == "unicode":
        from textual_image.renderable.unicode import Image as Unicode

        return Renderer(name, strips=_renderable_strips(Unicode))
    from textual_image import renderable
    from textual_image import widget as tiw  # probes the cell size (pixels per cell)
    from textual_image._terminal import get_cell_size

    if name == "auto" and renderable.Image not in (renderable.TGPImage, renderable.SixelImage):
        return Renderer("halfcell")   # no graphics protocol found (tmux, no terminal)
    cell = get_cell_size()
    cls = {"kitty": tiw.TGPImage, "sixel": tiw.SixelImage, "auto": tiw.Image}[name]
    return Renderer(name, widget=cls, cell_px=(cell.width, cell.height))
